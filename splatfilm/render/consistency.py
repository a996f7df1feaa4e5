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
import torch


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


def reproject(depth_a, viewmat_a, K_a, rgb_b, depth_b, viewmat_b, K_b, alpha_a=None,
              depth_tolerance: float = 0.02, min_alpha: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame B's colours seen from camera A: each of A's pixels is lifted with A's depth,
    projected into B and sampled there (bilinear).

    depth_a [H,W(,1)] camera z of A; rgb_b [Hb,Wb,C]; depth_b [Hb,Wb(,1)]; viewmats [4,4]
    world-to-camera (OpenCV); K [3,3]; alpha_a [H,W(,1)] (default: depth > 0 counts as
    covered). Returns (warped [H,W,C] float64, visible [H,W] bool): visible marks A's pixels
    that are covered, land inside B in front of its camera, and agree with B's depth there
    within `depth_tolerance` (relative), i.e. that B really sees.
    """
    rgb_b = _t(rgb_b)
    zb_img = _t(depth_b).reshape(rgb_b.shape[:2])
    za = _t(depth_a)
    za = za.reshape(za.shape[:2])
    Va, Vb, Ka, Kb = _t(viewmat_a), _t(viewmat_b), _t(K_a), _t(K_b)
    h, w = za.shape
    covered = (za > 0) if alpha_a is None else (_t(alpha_a).reshape(h, w) >= min_alpha) & (za > 0)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                            indexing="ij")
    cam_a = torch.stack([(xs - Ka[0, 2]) / Ka[0, 0] * za, (ys - Ka[1, 2]) / Ka[1, 1] * za, za], dim=-1)
    Ra, ta = Va[:3, :3], Va[:3, 3]
    world = (cam_a - ta) @ Ra  # R^T (x - t), row vectors
    cam_b = world @ Vb[:3, :3].T + Vb[:3, 3]
    zb = cam_b[..., 2]
    front = zb > 1e-6
    zs = torch.where(front, zb, torch.ones_like(zb))
    u = Kb[0, 0] * cam_b[..., 0] / zs + Kb[0, 2]
    v = Kb[1, 1] * cam_b[..., 1] / zs + Kb[1, 2]
    hb, wb = zb_img.shape
    inside = front & (u >= 0.5) & (u <= wb - 0.5) & (v >= 0.5) & (v <= hb - 0.5)
    z_seen = _bilinear(zb_img[..., None], u, v)[..., 0]
    visible = inside & covered & (z_seen > 0) & ((z_seen - zb).abs() <= depth_tolerance * zb)
    return _bilinear(rgb_b, u, v), visible


def warp_error(rgb_a, depth_a, viewmat_a, K_a, rgb_b, depth_b, viewmat_b, K_b, alpha_a=None,
               depth_tolerance: float = 0.02, min_alpha: float = 0.5) -> Warp:
    """E_warp of frame A against frame B.

    rgb [H,W,3] in [0,1]; depth [H,W] or [H,W,1] expected camera z; viewmat [4,4]
    world-to-camera (OpenCV); K [3,3]; alpha_a [H,W(,1)] (default: depth > 0 counts as
    covered). depth_tolerance: relative depth disagreement above which a pixel counts as
    occluded in B. Arrays or tensors; computed in float64 on the CPU.
    """
    rgb_a = _t(rgb_a)
    warped, visible = reproject(depth_a, viewmat_a, K_a, rgb_b, depth_b, viewmat_b, K_b, alpha_a,
                                depth_tolerance, min_alpha)
    if not visible.any():
        return Warp(e_warp=float("nan"), covisible=0.0, mask=visible.numpy())
    err = ((rgb_a - warped) ** 2).mean(dim=-1)[visible].mean()
    return Warp(e_warp=float(err), covisible=float(visible.double().mean()), mask=visible.numpy())
