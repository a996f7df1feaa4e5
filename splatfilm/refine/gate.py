"""The gated post-render pass: refine a shot's frames without letting the refiner flicker.

Frame by frame, in shot order:
1. the previous output frame is reprojected into this frame through this frame's rendered
   depth and the known camera motion; the refiner gets it as its reference;
2. when the previous output carries refined detail, the detail the refiner adds now
   (refined - raw) is blended, over the co-visible pixels, with that detail reprojected the
   same way (`carry` of it), so detail that was there stays where the 3D scene puts it; the
   raw render itself is never resampled, so nothing blurs from frame to frame;
3. the gate judges the detail's flicker, not its presence: the candidate's detail is compared
   with a neighbour's detail reprojected into this frame, both low-passed alike (a Gaussian of
   `blur` pixels, normalised over the co-visible pixels) so that the bilinear resampling of
   fine detail does not count as change. The neighbour is the previous output when it carries
   detail; else (a shot's first frame, or after a rejected frame) the next frame's own
   candidate, so one bad frame does not hold the rest of the shot raw; else (the last frame
   after a rejection) the previous frame's own candidate (refined without a reference, as the
   next frame's is: what a resumed run can make again). The refined frame is kept when the
   changed energy is at most `tolerance` of the detail's energy (the mean of the two) plus
   `floor`; else the raw frame is kept.

Outputs are quantised to 8 bits before they become the next frame's reference, as the PNG on
disk is, and whether the previous output carries detail is read from it (output != raw), so
a resumed run that reads the previous frame back from disk gives the same frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from splatfilm.errors import SplatfilmError
from splatfilm.io.images import to_uint8
from splatfilm.render.consistency import reproject
from splatfilm.render.metrics import gaussian_window_1d
from splatfilm.scene.cameras import Cameras
from splatfilm.refine.refiner import Refiner

# What a refined frame's cache key says about the rule that judged it: frames a different
# rule kept are made again.
GATE_RULE = "detail-flicker-1"


@dataclass
class GateConfig:
    """tolerance: the share of the refined detail's energy that may change between a frame
    and its neighbour once reprojected (0.5: half); floor: absolute slack on that change (in
    [0,1]^2 units) so detail of a few 8-bit steps is not rejected over rounding; carry: weight
    of the previous frame's reprojected detail; blur: the low-pass both details get before they
    are compared, a Gaussian's sigma in pixels (0: none)."""

    tolerance: float = 0.5
    floor: float = 2e-6
    carry: float = 0.5
    blur: float = 1.0

    def __post_init__(self) -> None:
        for name in ("tolerance", "floor", "blur"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise SplatfilmError(f"refine gate: {name} must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.carry, (int, float)) and 0 <= self.carry <= 1):
            raise SplatfilmError(f"refine gate: carry must be in [0, 1], got {self.carry!r}")


@dataclass
class Frame:
    """A raw render with what reprojection needs: rgb [H,W,3] in [0,1], depth and alpha
    [H,W,1] (depth as `rasterization` gives it), camera: the 1-element `Cameras` it was rendered
    with, lens included."""

    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    camera: Cameras


@dataclass
class GateResult:
    """outputs: per frame [H,W,3] float32 in [0,1] (8-bit values); accepted: per frame, was
    the refined frame kept; flicker: per frame the share of its detail's energy that changed
    against the neighbour it was judged by (nan where nothing was co-visible or there was no
    neighbour; the gate compares it with `GateConfig.tolerance`)."""

    outputs: list[torch.Tensor] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    flicker: list[float] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(not a for a in self.accepted)


def quantize(rgb: torch.Tensor) -> torch.Tensor:
    """`rgb` [H,W,3] in [0,1] as the 8-bit values its PNG holds (`io.images.to_uint8`, which
    `write_png` rounds with), back as float32 in [0,1] on the same device."""
    return torch.from_numpy(to_uint8(rgb.detach().double().cpu().numpy())).to(rgb.device).float() / 255


def _lowpass(x: torch.Tensor, weight: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x [H,W,C] low-passed by a Gaussian of `sigma` px over the pixels where weight [H,W] is
    1 only (normalised convolution, so pixels outside do not leak in), and where that is
    defined (at least half the kernel's weight on such pixels)."""
    if sigma <= 0:
        return x * weight[..., None], weight > 0.5
    r = max(1, math.ceil(3 * sigma))
    k = gaussian_window_1d(2 * r + 1, sigma, torch.float64)
    y = torch.cat([x * weight[..., None], weight[..., None]], -1).permute(2, 0, 1)[None]
    c = y.shape[1]
    y = F.conv2d(F.pad(y, (r, r, 0, 0)), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.conv2d(F.pad(y, (0, 0, r, r)), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)[0].permute(1, 2, 0)
    w = y[..., -1]
    return y[..., :-1] / w.clamp(min=1e-12)[..., None], w > 0.5


def detail_change(detail: torch.Tensor, neighbour: torch.Tensor, visible: torch.Tensor,
                  blur: float = 1.0) -> tuple[float, float]:
    """How much refined detail changed between two frames: (changed, energy), mean squared
    values in [0,1]^2 units over the co-visible pixels, of the difference and of the two
    details (their mean), both low-passed by a Gaussian of `blur` pixels first.

    detail [H,W,3]: this frame's (refined - raw); neighbour [H,W,3]: the other frame's detail
    reprojected into this one (`render.consistency.reproject`); visible [H,W] bool: where that
    is valid. (nan, nan) when nothing is co-visible."""
    m = visible.to(torch.float64)
    a, ok = _lowpass(detail.double().cpu(), m, blur)
    b, _ = _lowpass(neighbour.double().cpu(), m, blur)
    ok = ok & visible
    if not ok.any():
        return float("nan"), float("nan")
    changed = ((a - b) ** 2).mean(-1)[ok].mean()
    energy = ((a**2 + b**2) / 2).mean(-1)[ok].mean()
    return float(changed), float(energy)


def _candidate(refiner: Refiner, f: Frame, warped: torch.Tensor | None, vis: torch.Tensor | None,
               carried: torch.Tensor | None, cfg: GateConfig) -> torch.Tensor:
    """The refined frame; warped [H,W,3]: the previous output reprojected into f (None for a
    shot's first frame), vis [H,W] where it is valid; carried [H,W,3]: the previous output's
    detail reprojected the same way, or None when it carries none."""
    if warped is None:
        return refiner.refine(f.rgb[None])[0].float().clamp(0, 1)
    m = vis[..., None].float()
    cand = refiner.refine(f.rgb[None], (warped.float() * m)[None], m[None], f.depth[None])[0].float()
    if carried is None:
        return cand.clamp(0, 1)
    detail = cand - f.rgb
    detail = detail * (1 - cfg.carry * m) + cfg.carry * m * carried.float()
    return (f.rgb + detail).clamp(0, 1)


def _own_detail(refiner: Refiner, other: Frame, f: Frame, cfg: GateConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The detail [H,W,3] of `other`'s own candidate (refined without a reference, 8-bit)
    reprojected into f, and where it is valid [H,W]."""
    detail = quantize(_candidate(refiner, other, None, None, None, cfg)) - quantize(other.rgb)
    return reproject(f.depth, f.camera, detail, other.depth, other.camera, alpha_a=f.alpha)


def gated_refine(frames: list[Frame] | Callable[[int], Frame], count: int, refiner: Refiner,
                 cfg: GateConfig = GateConfig(), start: int = 0, previous_output: torch.Tensor | None = None,
                 on_frame: Callable[[int, torch.Tensor, bool], None] | None = None) -> GateResult:
    """Refine frames start..count-1 of a shot (module docstring). frames: a list, or a
    function i -> Frame (so a long shot need not be held in memory). previous_output: frame
    start-1's output as written (when resuming mid-shot). on_frame(i, output, accepted) is
    called as each frame is decided (to write it)."""
    get = frames.__getitem__ if isinstance(frames, list) else frames
    res = GateResult()
    prev = get(start - 1) if start > 0 else None
    prev_out = previous_output if start > 0 else None
    if start > 0 and prev_out is None:
        prev_out = prev.rgb
    cur = get(start)
    for i in range(start, count):
        nxt = get(i + 1) if i + 1 < count else None
        raw = quantize(cur.rgb)
        warped = vis = carried = None
        if prev is not None:
            prev_raw = quantize(prev.rgb)
            # One reprojection serves the reference, the carried detail and the gate.
            warped, vis = reproject(cur.depth, cur.camera,
                                    torch.cat([prev_out, prev_out - prev_raw], -1),
                                    prev.depth, prev.camera, alpha_a=cur.alpha)
            if not torch.equal(prev_out, prev_raw):
                carried = warped[..., 3:6]
        cand = quantize(_candidate(refiner, cur, None if warped is None else warped[..., :3], vis, carried, cfg))
        if carried is not None:
            neighbour, seen = carried, vis
        elif nxt is not None or prev is not None:
            # Nothing refined to follow: the candidate must agree with a neighbour's own candidate.
            neighbour, seen = _own_detail(refiner, nxt if nxt is not None else prev, cur, cfg)
        else:
            neighbour = seen = None
        changed = energy = float("nan")
        if neighbour is not None:
            changed, energy = detail_change(cand - raw, neighbour, seen, cfg.blur)
        ok = not (changed > cfg.tolerance * energy + cfg.floor)  # nan (nothing co-visible) accepts
        out = cand if ok else raw
        res.outputs.append(out)
        res.accepted.append(ok)
        res.flicker.append(changed / energy if energy > 0 else (0.0 if changed == 0 else float("nan")))
        if on_frame is not None:
            on_frame(i, out, ok)
        prev, prev_out, cur = cur, out, nxt
    return res
