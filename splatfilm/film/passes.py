"""Compositing passes (AOVs) of a film frame, rendered in the frame's one rasterization call.

Beside colour, alpha and depth, each Gaussian carries extra features that the rasterizer
composites with the colour's own blend weights (`rasterization(..., features=...)`):

- mattes: a one-hot of the piece of the world it belongs to (an asset, or an asset's contact
  shadow, "NAME.shadow"). Composited, each channel is that piece's coverage inside the one
  composite: the mattes add up to the frame's alpha, and a matte is 1 where only its piece
  is seen and opaque. No second render per asset, so occlusion between pieces is exactly the
  composite's.
- motion: the Gaussian's screen-space displacement in pixels from this frame to the next
  (x right, y down): its mean at this frame's world time seen by this frame's camera, and at
  the next frame's world time (every asset's transform, pose and physics then) seen by the
  next frame's camera, both projected through the pinhole intrinsics (a lens's distortion is
  left out). Composited and divided by alpha it is the blend-weighted mean displacement of
  the Gaussians a pixel shows, as depth is their mean camera z.

A piece whose Gaussians change in number between the two times (a contact shadow that fades
out) moves with the camera only: its points are taken as standing still.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.film.world import World
from splatfilm.render.camera_models import project_points
from splatfilm.scene.cameras import world_to_camera
from splatfilm.scene.gaussians import Gaussians

PASS_NAMES = ("rgba", "depth", "mattes", "motion")


def parse_passes(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The passes a `--passes` value names ("all" or a comma-separated subset of PASS_NAMES,
    or a list of names), in PASS_NAMES order; rgba is always written (it is what the others
    are comped with). None or nothing: no passes."""
    names = [s.strip() for s in ((spec or "").split(",") if isinstance(spec, str) or spec is None else spec)
             if s.strip()]
    if not names:
        return ()
    if names == ["all"]:
        return PASS_NAMES
    unknown = [n for n in names if n not in PASS_NAMES]
    if unknown:
        raise SplatfilmError(f"--passes: unknown pass {unknown[0]!r}; choose all or some of {', '.join(PASS_NAMES)}")
    return tuple(n for n in PASS_NAMES if n in names or n == "rgba")


def matte_names(world: World) -> list[str]:
    """The pieces a frame of `world` can show, in a fixed order for every frame: each asset,
    then each asset's contact shadow ("NAME.shadow")."""
    return list(world.assets) + [f"{n}.shadow" for n, a in world.assets.items() if a.shadow is not None]


def layer_name(piece: str) -> str:
    """An EXR layer name for a piece of the world: matte_ and its name with anything but
    letters, digits and _ turned into _ (Nuke splits channel names at dots)."""
    return "matte_" + re.sub(r"[^A-Za-z0-9_]", "_", piece)


def _screen(points: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels [N,2], camera z [N]) of world points [N,3] through the pinhole part of a camera
    (viewmat [4,4], K [3,3]); a point at z = 0 is projected as if at z = 1 (its motion is
    dropped anyway), so no pixel is inf."""
    cam = world_to_camera(points, viewmat)
    z = cam[:, 2]
    safe = torch.cat([cam[:, :2], torch.where(z.abs() > 1e-9, z, torch.ones_like(z))[:, None]], -1)
    return project_points(safe[None], K[None], "PINHOLE")[0], z


def pass_features(parts: list[tuple[str, Gaussians]], pieces: list[str], mattes: bool,
                  motion: tuple[list[tuple[str, Gaussians]], torch.Tensor, torch.Tensor, torch.Tensor,
                               torch.Tensor] | None, near: float) -> torch.Tensor | None:
    """Per-Gaussian features [N,F] of a composed frame (`parts`, in `World.parts` order):
    with `mattes` a one-hot over `pieces` (F = len(pieces)); with `motion` = (the parts at the
    next frame's time, viewmat [4,4] and K [3,3] now, viewmat and K at the next frame) two
    more channels, the displacement in pixels (x, y). Gaussians in front of `near` at either
    time get no motion. None when neither is asked for."""
    if not parts or (not mattes and motion is None):
        return None
    index = {p: k for k, p in enumerate(pieces)}
    dtype = parts[0][1].dtype
    feats = []
    if mattes:
        owner = torch.cat([torch.full((len(g),), index[name], dtype=torch.long) for name, g in parts])
        feats.append(torch.nn.functional.one_hot(owner, len(pieces)).to(dtype))
    if motion is not None:
        after, V0, K0, V1, K1 = motion
        later = dict(after)
        shifts = []
        for name, g in parts:
            now = g.means.detach().to("cpu", torch.float64)
            nxt = later.get(name)
            nxt = now if nxt is None or len(nxt) != len(g) else nxt.means.detach().to("cpu", torch.float64)
            p0, z0 = _screen(now, V0, K0)
            p1, z1 = _screen(nxt, V1, K1)
            d = p1 - p0
            shifts.append(torch.where(((z0 > near) & (z1 > near))[:, None], d, torch.zeros_like(d)))
        feats.append(torch.cat(shifts).to(dtype))
    return torch.cat(feats, dim=-1)


def motion_to_nuke(motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) [H,W] float32 of a motion pass [H,W,2] (pixels, x right, y down) in Nuke's
    convention for the forward layer: pixels towards the next frame, u right, v up."""
    return motion[..., 0].astype(np.float32), (-motion[..., 1]).astype(np.float32)
