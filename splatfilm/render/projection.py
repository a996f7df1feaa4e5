"""EWA projection of 3D Gaussians into pinhole cameras, with gsplat 1.5's semantics.

Pure PyTorch, differentiable through autograd; the CPU backend uses it ahead of its
rasterization kernels. The maths follows gsplat's fused projection kernel: camera-space
covariance J W Sigma W^T J^T with the tangent clamped to 1.3x the field of view, 0.3 px
added to the 2D covariance diagonal, opacity-aware tight bounding boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from splatfilm.scene.transforms import quat_to_rotmat

ALPHA_THRESHOLD = 1.0 / 255.0


@dataclass
class Projected:
    """Per-camera screen-space Gaussians. C cameras, N Gaussians.

    means2d [C,N,2] pixel coordinates (pixel (i, j) has its centre at (i+0.5, j+0.5));
    conics [C,N,3] upper triangle (a, b, c) of the inverse 2D covariance;
    depths [C,N] camera-space z; radii [C,N,2] int32 half extents in pixels, 0 when culled;
    compensations [C,N] sqrt(det(cov)/det(cov + eps I)), the antialiasing opacity factor.
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    radii: torch.Tensor
    compensations: torch.Tensor


def quat_scale_to_covar(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """3D covariances R S S^T R^T [N,3,3] from quats [N,4] (w,x,y,z; normalised here) and
    activated scales [N,3] (standard deviations)."""
    M = quat_to_rotmat(quats) * scales[:, None, :]
    return M @ M.transpose(-1, -2)


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
    antialiased: bool = False,
    radius_clip: float = 0.0,
) -> Projected:
    """Project Gaussians into C pinhole cameras.

    means [N,3] and covars [N,3,3] in world units; viewmats [C,4,4] world-to-camera
    (OpenCV axes); Ks [C,3,3] intrinsics in pixels; width, height in pixels.
    opacities [N] activated: when given, radii are gsplat's opacity-aware extents and
    Gaussians that can never reach alpha 1/255 are culled (the image is the same either
    way; this only shortens tile lists). With `antialiased`, the compensation factor
    enters that opacity, as it will in compositing.
    """
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
    J = J.reshape(zs.shape + (2, 3))
    cov2d = J @ covars_c @ J.transpose(-1, -2)  # [C,N,2,2]

    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], dim=-1)

    a, b, c = cov2d[..., 0, 0], 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0]), cov2d[..., 1, 1]
    det_orig = a * c - b * b
    a = a + eps2d
    c = c + eps2d
    det = a * c - b * b
    valid = in_depth & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    compensations = torch.sqrt(torch.clamp(det_orig / det_safe, min=0.0))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)

    with torch.no_grad():
        extend = torch.full_like(a, 3.33)
        if opacities is not None:
            op = opacities.detach()[None, :].expand_as(a)
            if antialiased:
                op = op * compensations.detach()
            valid = valid & (op >= ALPHA_THRESHOLD)
            extend = torch.minimum(extend, torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)))
        rx = torch.ceil(extend * torch.sqrt(a.detach().clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c.detach().clamp_min(0)))
        valid = valid & ~((rx <= radius_clip) & (ry <= radius_clip))
        m2 = means2d.detach()
        inside = (m2[..., 0] + rx > 0) & (m2[..., 0] - rx < width) & (m2[..., 1] + ry > 0) & (m2[..., 1] - ry < height)
        valid = valid & inside
        radii = torch.stack([rx, ry], dim=-1) * valid[..., None]
        radii = radii.to(torch.int32)

    return Projected(means2d=means2d, conics=conics, depths=z, radii=radii, compensations=compensations)
