"""EWA projection of 3D Gaussians into cameras, with gsplat 1.5's semantics.

Pure PyTorch, differentiable through autograd; the CPU backend uses it ahead of its
rasterization kernels. The maths follows gsplat's fused projection kernel: camera-space
covariance J W Sigma W^T J^T with the tangent clamped to 1.3x the field of view, 0.3 px
added to the 2D covariance diagonal, opacity-aware tight bounding boxes. Lens models other
than the pinhole (render/camera_models.py) project the mean exactly and use the exact
Jacobian of their projection at the mean as J (docs/CONVENTIONS.md, "Camera models").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from splatfilm.render.camera_models import fisheye_limits, lens_projection, opencv_limits
from splatfilm.scene.transforms import quat_to_rotmat

ALPHA_THRESHOLD = 1.0 / 255.0
# depth_planes: a Gaussian's plane is taken no closer to grazing its rays than this (degrees).
DEPTH_PLANE_GRAZING_DEG = 5.0


@dataclass
class Projected:
    """Per-camera screen-space Gaussians. C cameras, N Gaussians.

    means2d [C,N,2] pixel coordinates (pixel (i, j) has its centre at (i+0.5, j+0.5));
    conics [C,N,3] upper triangle (a, b, c) of the inverse 2D covariance;
    depths [C,N] camera-space z; radii [C,N,2] int32 half extents in pixels, 0 when culled;
    compensations [C,N] sqrt(det(cov)/det(cov + eps I)), the antialiasing opacity factor.
    gaussian_ids [N'] or None: when not None, entry j is a copy of Gaussian gaussian_ids[j]
    (an equirectangular camera draws a Gaussian on the seam twice, once each side), and
    every [C,N] field above has N' entries; the first N are the Gaussians themselves.
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    radii: torch.Tensor
    compensations: torch.Tensor
    gaussian_ids: torch.Tensor | None = None


def quat_scale_to_covar(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """3D covariances R S S^T R^T [N,3,3] from quats [N,4] (w,x,y,z; normalised here) and
    activated scales [N,3] (standard deviations)."""
    M = quat_to_rotmat(quats) * scales[:, None, :]
    return M @ M.transpose(-1, -2)


def compensated_opacities(opacities: torch.Tensor, compensations: torch.Tensor,
                          antialiased: bool | torch.Tensor) -> torch.Tensor:
    """The opacities a Gaussian composites with: [C,N] from opacities [N] or [C,N] (activated)
    times compensations [C,N] (`Projected.compensations`) where `antialiased` (True for all,
    False for none, or bool [N] per Gaussian): gsplat's antialiased mode, Mip-Splatting's 2D
    filter keeping a small Gaussian's summed alpha."""
    if isinstance(antialiased, torch.Tensor):
        flags = antialiased.to(compensations.device, torch.bool)[None]
        return opacities * torch.where(flags, compensations, torch.ones_like(compensations))
    return opacities * compensations if antialiased else opacities.expand_as(compensations)


def project_gaussians(
    means: torch.Tensor,
    covars: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    opacities: torch.Tensor | None = None,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    antialiased: bool | torch.Tensor = False,
    radius_clip: float = 0.0,
    camera_model: str = "PINHOLE",
    distortion: torch.Tensor | None = None,
) -> Projected:
    """Project Gaussians into C cameras of one model.

    means [N,3] and covars [N,3,3] in world units; viewmats [C,4,4] world-to-camera
    (OpenCV axes); Ks [C,3,3] intrinsics in pixels; width, height in pixels.
    opacities [N] activated: when given, radii are gsplat's opacity-aware extents and
    Gaussians that can never reach alpha 1/255 are culled (the image is the same either
    way; this only shortens tile lists). With `antialiased` (True for all Gaussians, or bool
    [N] per Gaussian), the compensation factor enters that opacity, as it will in compositing. camera_model: one of
    scene.cameras.CAMERA_MODELS, with distortion [C,6] (k1, k2, k3, k4, p1, p2) for OPENCV
    and OPENCV_FISHEYE.
    """
    if camera_model != "PINHOLE":
        return _project_lens(means, covars, viewmats, Ks, width, height, opacities, eps2d, near_plane, far_plane,
                             antialiased, radius_clip, camera_model, distortion)
    means2d, z, in_depth, covars_c, J = _pinhole_camera_space(means, covars, viewmats, Ks, width, height,
                                                              near_plane, far_plane)
    cov2d = J @ covars_c @ J.transpose(-1, -2)  # [C,N,2,2]
    return _screen_gaussians(means2d, cov2d, z, in_depth, width, height, opacities, eps2d, antialiased, radius_clip)


def _pinhole_camera_space(means, covars, viewmats, Ks, width, height, near_plane, far_plane):
    """Pinhole means2d [C,N,2] (pixels), depths z [C,N], in_depth [C,N], camera-space
    covariances [C,N,3,3] and the projection's Jacobian J [C,N,2,3] at the mean, with the
    tangent clamped to 1.3x the field of view."""
    R = viewmats[:, :3, :3]
    t = viewmats[:, :3, 3]
    means_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # [C,N,3]
    covars_c = torch.einsum("cij,njk,clk->cnil", R, covars, R)  # [C,N,3,3]

    x, y, z = means_c.unbind(-1)
    in_depth = (z >= near_plane) & (z <= far_plane)
    # Culled Gaussians get a harmless depth so no inf/nan enters the backward pass.
    zs = torch.where(in_depth, z, torch.ones_like(z))

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx = 0.5 * width / fx
    tan_fovy = 0.5 * height / fy
    # Clamp the tangent used by the Jacobian to 1.3x the field of view, as gsplat does, so
    # Gaussians far outside the frame do not blow up into screen-filling ellipses.
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    tx = zs * torch.minimum(torch.maximum(x / zs, -lim_x_neg), lim_x_pos)
    ty = zs * torch.minimum(torch.maximum(y / zs, -lim_y_neg), lim_y_pos)

    zero = torch.zeros_like(zs)
    J = torch.stack([fx / zs, zero, -fx * tx / zs**2, zero, fy / zs, -fy * ty / zs**2], dim=-1)
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], dim=-1)
    return means2d, z, in_depth, covars_c, J.reshape(zs.shape + (2, 3))


def depth_planes(means: torch.Tensor, covars: torch.Tensor, viewmats: torch.Tensor, Ks: torch.Tensor, width: int,
                 height: int, near_plane: float = 0.01, far_plane: float = 1e10,
                 min_grazing_deg: float = DEPTH_PLANE_GRAZING_DEG) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where along each pixel ray a Gaussian's density peaks, as a plane over the image
    (pinhole cameras; RaDe-GS's rasterized depth): camera z at pixel p is
    `depths + gradients . (p - means2d)`. In the projection's local affine approximation
    (u, v, z) is Gaussian and this is the mean of z given the image point (u, v): for a flat
    Gaussian, the ray's crossing of its plane. A blend of these depths puts a surface of
    overlapping flat Gaussians where it is at oblique views, where the blend of their centres'
    depths (expected depth) sits nearer the camera, since nearer Gaussians are composited
    first.

    The slope is the Gaussian's own, without the 0.3 pixels^2 the rasterizer adds to its 2D
    covariance: with it, a footprint under a pixel wide (a 1.5 cm splat 8 m away) would lose
    most of its slope and its surface would move back towards the camera. Seen edge on, a
    flat Gaussian's slope grows without bound while it is still drawn a pixel wide, so the
    plane is tilted no further than `min_grazing_deg` from the rays (dz / z per unit of
    normalised image coordinate at most cot of it).

    means [N,3], covars [N,3,3] world; viewmats [C,4,4], Ks [C,3,3] as `project_gaussians`.
    Returns means2d [C,N,2] pixels, depths [C,N] camera z (scene units), gradients [C,N,2]
    in scene units per pixel (0 where the Gaussian is behind the near plane or past far)."""
    means2d, z, in_depth, covars_c, J = _pinhole_camera_space(means, covars, viewmats, Ks, width, height,
                                                              near_plane, far_plane)
    cov2d = J @ covars_c @ J.transpose(-1, -2)  # [C,N,2,2]
    cross = (J @ covars_c[..., :, 2:3])[..., 0]  # [C,N,2]: covariance of (u, v) with z
    eye = torch.eye(2, dtype=means.dtype, device=means.device)
    # A hair of regularisation for Gaussians degenerate in the image (needles seen end on).
    tiny = 1e-9 * cov2d.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] + 1e-30
    gradients = torch.linalg.solve(cov2d + tiny * eye, cross[..., None])[..., 0]
    focal = torch.stack([Ks[:, 0, 0], Ks[:, 1, 1]], dim=-1)[:, None, :]  # [C,1,2]
    slope = torch.linalg.vector_norm(gradients * focal, dim=-1) / torch.where(in_depth, z, torch.ones_like(z)).abs()
    most = 1.0 / math.tan(math.radians(min_grazing_deg))
    gradients = gradients * torch.clamp(most / slope.clamp_min(1e-300), max=1.0)[..., None]
    return means2d, z, gradients * in_depth[..., None]


def _screen_gaussians(means2d, cov2d, depths, valid, width, height, opacities, eps2d, antialiased, radius_clip,
                      max_radius: float | None = None) -> Projected:
    """The stage every camera model shares: 2D covariance [C,N,2,2] -> conics, antialiasing
    compensation, opacity-aware radii and culling (`valid` [C,N]: what the model kept)."""
    a, b, c = cov2d[..., 0, 0], 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0]), cov2d[..., 1, 1]
    det_orig = a * c - b * b
    a = a + eps2d
    c = c + eps2d
    det = a * c - b * b
    valid = valid & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    compensations = torch.sqrt(torch.clamp(det_orig / det_safe, min=0.0))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)

    with torch.no_grad():
        extend = torch.full_like(a, 3.33)
        if opacities is not None:
            op = compensated_opacities(opacities.detach(), compensations.detach(), antialiased)
            valid = valid & (op >= ALPHA_THRESHOLD)
            extend = torch.minimum(extend, torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)))
        rx = torch.ceil(extend * torch.sqrt(a.detach().clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c.detach().clamp_min(0)))
        if max_radius is not None:
            rx, ry = rx.clamp_max(max_radius), ry.clamp_max(max_radius)
        valid = valid & ~((rx <= radius_clip) & (ry <= radius_clip))
        m2 = means2d.detach()
        inside = (m2[..., 0] + rx > 0) & (m2[..., 0] - rx < width) & (m2[..., 1] + ry > 0) & (m2[..., 1] - ry < height)
        valid = valid & inside
        radii = torch.stack([rx, ry], dim=-1) * valid[..., None]
        radii = radii.to(torch.int32)

    return Projected(means2d=means2d, conics=conics, depths=depths, radii=radii, compensations=compensations)


# A Gaussian's box is at most this many pixels a side in the lens path (keeps radii in int32
# whatever a degenerate Jacobian gives; the rasterizer clips boxes to the image anyway).
_MAX_LENS_RADIUS = float(1 << 20)


def _project_lens(means, covars, viewmats, Ks, width, height, opacities, eps2d, near_plane, far_plane,
                  antialiased, radius_clip, camera_model, distortion) -> Projected:
    """`project_gaussians` for OPENCV, OPENCV_FISHEYE and EQUIRECTANGULAR cameras."""
    R = viewmats[:, :3, :3]
    t = viewmats[:, :3, 3]
    means_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # [C,N,3]
    covars_c = torch.einsum("cij,njk,clk->cnil", R, covars, R)  # [C,N,3,3]
    C = means_c.shape[0]
    dist = (torch.zeros(C, 6, dtype=means.dtype, device=means.device) if distortion is None
            else torch.as_tensor(distortion, dtype=means.dtype, device=means.device).reshape(-1, 6).expand(C, 6))
    dist_np = dist.detach().cpu().double().numpy()
    x, y, z = means_c.unbind(-1)
    clamp = spread = None
    if camera_model == "EQUIRECTANGULAR":
        # Every direction is in view: the depth is the distance from the camera centre.
        depths = torch.linalg.vector_norm(means_c, dim=-1)
        valid = (depths >= near_plane) & (depths <= far_plane)
        safe = torch.where(valid[..., None], means_c, torch.ones_like(means_c))
        period = (2 * np.pi) * Ks[:, 0, 0].detach()
        spread = torch.sqrt(0.5 * (covars_c[..., 0, 0] + covars_c[..., 2, 2]).clamp_min(0))  # across the polar axis
    else:
        depths = z
        valid = (z >= near_plane) & (z <= far_plane)
        # Culled Gaussians get a harmless point so no inf/nan enters the backward pass.
        axis = torch.tensor([0.0, 0.0, 1.0], dtype=means_c.dtype, device=means_c.device)
        safe = torch.where(valid[..., None], means_c, axis.expand_as(means_c))
        if camera_model == "OPENCV":
            lims = opencv_limits(Ks.detach().cpu().double().numpy(), dist_np, width, height)
            clamp = torch.as_tensor(lims[:, :4], dtype=means.dtype, device=means.device)
            fold = torch.as_tensor(lims[:, 4:5], dtype=means.dtype, device=means.device)
            with torch.no_grad():
                zs = torch.where(valid, z, torch.ones_like(z))
                valid = valid & (torch.sqrt((x / zs) ** 2 + (y / zs) ** 2) < fold)
        elif camera_model == "OPENCV_FISHEYE":
            fold = torch.as_tensor(fisheye_limits(dist_np)[:, None], dtype=means.dtype, device=means.device)
            with torch.no_grad():
                valid = valid & (torch.atan2(torch.sqrt(x * x + y * y), z) < fold)
    means2d, J = lens_projection(safe, Ks, camera_model, dist, jacobian=True, clamp=clamp, spread=spread)
    cov2d = J @ covars_c @ J.transpose(-1, -2)  # [C,N,2,2]
    proj = _screen_gaussians(means2d, cov2d, depths, valid, width, height, opacities, eps2d, antialiased,
                             radius_clip, _MAX_LENS_RADIUS)
    return proj if camera_model != "EQUIRECTANGULAR" else _wrap_seam(proj, period, width)


def _wrap_seam(proj: Projected, period: torch.Tensor, width: int) -> Projected:
    """Draw Gaussians that cross an equirectangular image's left or right edge a second time,
    one period (2 pi fx pixels) over, so the seam shows no cut (period [C])."""
    C, N = proj.depths.shape
    P = period[:, None].to(proj.means2d.dtype)
    with torch.no_grad():
        m = proj.means2d.detach()[..., 0]
        rx = torch.minimum(proj.radii[..., 0].to(m.dtype), P)  # a box wider than the panorama wraps once
        ry = proj.radii[..., 1]
        radii = torch.stack([rx, ry.to(m.dtype)], dim=-1).to(torch.int32)
        vis = (radii[..., 0] > 0) & (radii[..., 1] > 0)
        # A copy one period to the right shows what crosses the left edge, and vice versa.
        right = vis & (m + P - rx < width)
        left = vis & (m - P + rx > 0)
        ids_r = torch.nonzero(right.any(0)).flatten()
        ids_l = torch.nonzero(left.any(0)).flatten()
    if len(ids_r) == 0 and len(ids_l) == 0:
        return Projected(proj.means2d, proj.conics, proj.depths, radii, proj.compensations)
    ids = torch.cat([torch.arange(N, device=ids_r.device), ids_r, ids_l])
    shift = torch.zeros(C, len(ids), 2, dtype=proj.means2d.dtype, device=proj.means2d.device)
    shift[:, N:N + len(ids_r), 0] = P
    shift[:, N + len(ids_r):, 0] = -P
    keep = torch.cat([torch.ones(C, N, dtype=torch.bool, device=vis.device), right[:, ids_r], left[:, ids_l]], dim=1)
    return Projected(
        means2d=proj.means2d[:, ids] + shift,
        conics=proj.conics[:, ids],
        depths=proj.depths[:, ids],
        radii=radii[:, ids] * keep[..., None],
        compensations=proj.compensations[:, ids],
        gaussian_ids=ids,
    )
