"""The gated post-render pass: refine a shot's frames without letting the refiner flicker.

Frame by frame, in shot order:
1. the previous output frame is reprojected into this frame through this frame's rendered
   depth and the known camera motion; the refiner gets it as its reference;
2. the detail the refiner adds (refined - raw) is blended, over the co-visible pixels, with
   the previous frame's added detail reprojected the same way (`carry` of it), so detail
   that was there stays where the 3D scene puts it; the raw render itself is never
   resampled, so nothing blurs from frame to frame;
3. the gate: the candidate's warping error against the previous output frame must not
   exceed the raw render's against the previous raw frame by more than `tolerance`
   (relative); else the raw frame is kept. The first frame, having no previous one, is
   judged against the next frame's own candidate instead.

Outputs are quantised to 8 bits before they become the next frame's reference, as the PNG on
disk is, so a resumed run that reads the previous frame back from disk gives the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from splatfilm.io.images import to_uint8
from splatfilm.render.consistency import reproject, warp_error
from splatfilm.scene.cameras import Cameras
from splatfilm.refine.refiner import Refiner


@dataclass
class GateConfig:
    """tolerance: relative E_warp increase a refined frame may cost over the raw render;
    floor: absolute E_warp slack (in [0,1]^2 units) so frames with almost no error are not
    rejected over rounding; carry: weight of the previous frame's reprojected detail."""

    tolerance: float = 0.05
    floor: float = 2e-6
    carry: float = 0.5


@dataclass
class Frame:
    """A raw render with what reprojection needs: rgb [H,W,3] in [0,1], depth and alpha
    [H,W,1] (depth as `render` gives it), camera: the 1-element `Cameras` it was rendered
    with, lens included."""

    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    camera: Cameras


@dataclass
class GateResult:
    """outputs: per frame [H,W,3] float32 in [0,1] (8-bit values); accepted: per frame, was
    the refined frame kept; e_raw / e_out: per frame its warping error against the previous
    frame (nan for the first)."""

    outputs: list[torch.Tensor] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    e_raw: list[float] = field(default_factory=list)
    e_out: list[float] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(not a for a in self.accepted)


def quantize(rgb: torch.Tensor) -> torch.Tensor:
    """`rgb` [H,W,3] in [0,1] as the 8-bit values its PNG holds (`io.images.to_uint8`, which
    `write_png` rounds with), back as float32 in [0,1] on the same device."""
    return torch.from_numpy(to_uint8(rgb.detach().double().cpu().numpy())).to(rgb.device).float() / 255


def _e(a: torch.Tensor, fa: Frame, b: torch.Tensor, fb: Frame) -> float:
    return warp_error(a, fa.depth, fa.camera, b, fb.depth, fb.camera, alpha_a=fa.alpha).e_warp


def _masked_e(a: torch.Tensor, warped: torch.Tensor, vis: torch.Tensor) -> float:
    """`warp_error`'s E_warp from an already reprojected frame (float64, as it computes)."""
    if not vis.any():
        return float("nan")
    return float(((a.double() - warped) ** 2).mean(dim=-1)[vis].mean())


def _candidate(refiner: Refiner, f: Frame, warped: torch.Tensor | None, vis: torch.Tensor | None,
               cfg: GateConfig) -> torch.Tensor:
    """The refined frame; warped [H,W,6]: the previous output and the detail it added,
    reprojected into f (None for a shot's first frame), vis [H,W] where they are valid."""
    if warped is None:
        return refiner.refine(f.rgb[None])[0].float().clamp(0, 1)
    ref, ref_detail = warped[..., :3], warped[..., 3:6]
    m = vis[..., None].float()
    cand = refiner.refine(f.rgb[None], (ref.float() * m)[None], m[None], f.depth[None])[0].float()
    detail = cand - f.rgb
    detail = detail * (1 - cfg.carry * m) + cfg.carry * m * ref_detail.float()
    return (f.rgb + detail).clamp(0, 1)


def gated_refine(frames: list[Frame] | Callable[[int], Frame], count: int, refiner: Refiner,
                 cfg: GateConfig = GateConfig(), start: int = 0, previous_output: torch.Tensor | None = None,
                 on_frame: Callable[[int, torch.Tensor, bool], None] | None = None) -> GateResult:
    """Refine frames start..count-1 of a shot. frames: a list, or a function i -> Frame (so
    a long shot need not be held in memory). previous_output: frame start-1's output as
    written (when resuming mid-shot). on_frame(i, output, accepted) is called as each frame
    is decided (to write it)."""
    get = frames.__getitem__ if isinstance(frames, list) else frames
    res = GateResult()
    prev = get(start - 1) if start > 0 else None
    prev_out = previous_output if start > 0 else None
    if start > 0 and prev_out is None:
        prev_out = prev.rgb
    cur = get(start)
    for i in range(start, count):
        nxt = get(i + 1) if i + 1 < count else None
        warped = vis = None
        if prev is not None:
            # One reprojection serves the reference, the carried detail and both warping errors.
            warped, vis = reproject(cur.depth, cur.camera,
                                    torch.cat([prev_out, prev_out - prev.rgb, quantize(prev.rgb)], -1),
                                    prev.depth, prev.camera, alpha_a=cur.alpha)
        cand = quantize(_candidate(refiner, cur, warped, vis, cfg))
        raw = quantize(cur.rgb)
        if prev is not None:
            e_raw = _masked_e(raw, warped[..., 6:], vis)
            e_out = _masked_e(cand, warped[..., :3], vis)
        elif nxt is not None:
            # No previous frame: the candidate must agree with the next frame's own candidate.
            e_raw = _e(raw, cur, quantize(nxt.rgb), nxt)
            e_out = _e(cand, cur, quantize(_candidate(refiner, nxt, None, None, cfg)), nxt)
        else:
            e_raw = e_out = float("nan")
        ok = not (e_out > e_raw * (1 + cfg.tolerance) + cfg.floor)  # nan (nothing co-visible) accepts
        out = cand if ok else raw
        res.outputs.append(out)
        res.accepted.append(ok)
        res.e_raw.append(e_raw if prev is not None else float("nan"))
        res.e_out.append(e_out if prev is not None else float("nan"))
        if on_frame is not None:
            on_frame(i, out, ok)
        prev, prev_out, cur = cur, out, nxt
    return res
