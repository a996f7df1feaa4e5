"""Temporal and cross-shot consistency: the warping error E_warp between two rendered frames.

Frame A's pixels are lifted to 3D with A's rendered depth, projected into frame B with the
known cameras, and compared with B's colour there. Only co-visible, non-occluded pixels
count: A's pixel must be covered (alpha), its point must land inside B in front of the
camera, and B's own depth there must agree with the point's depth (else something in B
hides it). E_warp is the mean squared colour difference over those pixels, in [0,1]^2
units; a frame compared with itself, or two frames rendered from one static 3D scene with
view-independent colour, give (almost) zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from splatfilm.render.camera_models import lens_visible, pixel_rays, project_points
from splatfilm.scene.cameras import Cameras, world_to_camera

ArrayLike = npt.ArrayLike | torch.Tensor


@dataclass
class Warp:
    """Result of warping frame A into frame B. e_warp: mean squared RGB difference over the
    co-visible pixels; covisible: their fraction of A's pixels; mask [H,W] bool."""

    e_warp: float
    covisible: float
    mask: np.ndarray


def _t(x, dtype=torch.float64) -> torch.Tensor:
    if torch.is_tensor(x):
        return x.detach().to(device="cpu", dtype=dtype)
    return torch.tensor(np.array(x), dtype=dtype)


def _bilinear(image: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Sample image [H,W,C] at continuous pixel coordinates (u, v) (pixel centres at +0.5)."""
    h, w = image.shape[:2]
    x = (u - 0.5).clamp(0, w - 1)
    y = (v - 0.5).clamp(0, h - 1)
    x0 = x.floor().long().clamp(max=max(w - 2, 0))
    y0 = y.floor().long().clamp(max=max(h - 2, 0))
    x1 = (x0 + 1).clamp(max=w - 1)
    y1 = (y0 + 1).clamp(max=h - 1)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bot = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def reproject(depth_a: ArrayLike, camera_a: Cameras, rgb_b: ArrayLike, depth_b: ArrayLike, camera_b: Cameras,
              alpha_a: ArrayLike | None = None, depth_tolerance: float = 0.02,
              min_alpha: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame B's colours seen from camera A: each of A's pixels is lifted with A's depth,
    projected into B and sampled there (bilinear), each through its camera's own lens
    (`camera_models.pixel_rays` and `project_points`).

    depth_a [H,W(,1)]: A's rendered depth in scene units (camera z; the distance from the
    camera for EQUIRECTANGULAR, as `rasterization` gives it); camera_a, camera_b: 1-element `Cameras`
    that rendered A and B (A's at H x W); rgb_b [Hb,Wb,C] (any channels, [0,1] for colour);
    depth_b [Hb,Wb(,1)] like depth_a; alpha_a [H,W(,1)] in [0,1] (default: depth > 0 counts as
    covered, else alpha >= `min_alpha` and depth > 0). Arrays or tensors; computed in float64
    on the CPU. Returns (warped [H,W,C] float64, visible [H,W] bool): visible marks A's pixels
    that are covered, land inside B where its lens sees them, and agree with B's depth there
    within `depth_tolerance` (relative), i.e. that B really sees.
    """
    rgb_b = _t(rgb_b)
    zb_img = _t(depth_b).reshape(rgb_b.shape[:2])
    za = _t(depth_a)
    za = za.reshape(za.shape[:2])
    h, w = za.shape
    covered = (za > 0) if alpha_a is None else (_t(alpha_a).reshape(h, w) >= min_alpha) & (za > 0)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                            indexing="ij")
    model_a, model_b = camera_a.camera_model[0], camera_b.camera_model[0]
    rays, ok_a = pixel_rays(torch.stack([xs, ys], -1).reshape(1, -1, 2), _t(camera_a.Ks), model_a,
                            _t(camera_a.distortion))
    cam_a = rays.reshape(h, w, 3) * za[..., None]
    Va = _t(camera_a.viewmats[0])
    world = (cam_a - Va[:3, 3]) @ Va[:3, :3]  # R^T (x - t), row vectors
    cam_b = world_to_camera(world, _t(camera_b.viewmats[0]))
    # What B's depth measures of the point, and where its lens sees it.
    zb = torch.linalg.vector_norm(cam_b, dim=-1) if model_b == "EQUIRECTANGULAR" else cam_b[..., 2]
    front = torch.from_numpy(lens_visible(cam_b.reshape(-1, 3).numpy(), model_b, camera_b.distortion[0])).reshape(h, w)
    # Points B cannot see still get finite (unused) pixels: bilinear sampling indexes with them.
    safe = torch.where(front[..., None], cam_b, cam_b.new_tensor([0.0, 0.0, 1.0]))
    u, v = project_points(safe.reshape(1, -1, 3), _t(camera_b.Ks), model_b,
                          _t(camera_b.distortion))[0].reshape(h, w, 2).unbind(-1)
    hb, wb = zb_img.shape
    inside = front & (u >= 0.5) & (u <= wb - 0.5) & (v >= 0.5) & (v <= hb - 0.5)
    z_seen = _bilinear(zb_img[..., None], u, v)[..., 0]
    visible = (inside & covered & ok_a.reshape(h, w) & (z_seen > 0)
               & ((z_seen - zb).abs() <= depth_tolerance * zb))
    return _bilinear(rgb_b, u, v), visible


def warp_error(rgb_a: ArrayLike, depth_a: ArrayLike, camera_a: Cameras, rgb_b: ArrayLike, depth_b: ArrayLike,
               camera_b: Cameras, alpha_a: ArrayLike | None = None, depth_tolerance: float = 0.02,
               min_alpha: float = 0.5) -> Warp:
    """E_warp of frame A against frame B: the mean squared RGB difference, in [0,1]^2 units,
    between A and B's colours reprojected into A (`reproject`) over the pixels B really sees.

    rgb_a, rgb_b [H,W,3] in [0,1]; depth_a, depth_b [H,W] or [H,W,1] rendered depth in scene
    units (camera z; distance for EQUIRECTANGULAR); camera_a, camera_b: the 1-element `Cameras`
    that rendered them, lens included; alpha_a [H,W(,1)] in [0,1] (default: depth > 0 counts as
    covered). depth_tolerance: relative depth disagreement above which a pixel counts as
    occluded in B. Arrays or tensors; computed in float64 on the CPU. e_warp is nan (and
    covisible 0) when no pixel is co-visible.
    """
    rgb_a = _t(rgb_a)
    warped, visible = reproject(depth_a, camera_a, rgb_b, depth_b, camera_b, alpha_a, depth_tolerance, min_alpha)
    if not visible.any():
        return Warp(e_warp=float("nan"), covisible=0.0, mask=visible.numpy())
    err = ((rgb_a - warped) ** 2).mean(dim=-1)[visible].mean()
    return Warp(e_warp=float(err), covisible=float(visible.double().mean()), mask=visible.numpy())
