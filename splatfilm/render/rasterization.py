"""One `render()` for every part of splatfilm, with two backends that compute the same image.

- "gsplat": gsplat's CUDA rasterizer (`gsplat.rasterization`), where CUDA is available.
- "cpu": ours (EWA projection in PyTorch, numba tile kernels with a hand-written backward).
- "auto" (default): gsplat when CUDA is available, else cpu.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.render.projection import project_gaussians, quat_scale_to_covar
from splatfilm.render.spherical_harmonics import spherical_harmonics

Backend = Literal["auto", "cpu", "gsplat"]
RasterizeMode = Literal["classic", "antialiased"]


@dataclass
class RenderOutput:
    """C images of H x W pixels.

    rgb [C,H,W,3] sRGB-encoded values (background composited); alpha [C,H,W,1] accumulated
    opacity; depth [C,H,W,1] expected camera-space z (0 where alpha is 0); info: what
    densification strategies read (means2d [C,N,2] with grad, radii [C,N,2], width,
    height, n_cameras, backend).
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    info: dict = field(default_factory=dict)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_backend(backend: Backend) -> str:
    """The backend that `backend` stands for on this machine, or a clear error."""
    if backend == "auto":
        return "gsplat" if cuda_available() else "cpu"
    if backend == "gsplat":
        if not cuda_available():
            raise SplatfilmError("backend 'gsplat' needs a CUDA GPU and none is available; use --backend cpu")
        try:
            import gsplat  # noqa: F401
        except ImportError as e:
            raise SplatfilmError(f"backend 'gsplat' needs the gsplat package ({e}); pip install gsplat") from e
        return "gsplat"
    if backend == "cpu":
        return "cpu"
    raise SplatfilmError(f"unknown backend {backend!r}; choose auto, cpu or gsplat")


def _backgrounds(background, C: int, dtype, device) -> torch.Tensor | None:
    if background is None:
        return None
    bg = torch.as_tensor(background, dtype=dtype, device=device)
    if bg.shape == (3,):
        bg = bg.expand(C, 3)
    if bg.shape != (C, 3):
        raise SplatfilmError(f"background must be [3] or [C,3], got {tuple(bg.shape)}")
    return bg


def render(
    gaussians: Gaussians,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    *,
    backend: Backend = "auto",
    sh_degree: int | None = None,
    background: torch.Tensor | tuple[float, float, float] | None = None,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    rasterize_mode: RasterizeMode = "classic",
) -> RenderOutput:
    """Render Gaussians from C pinhole cameras.

    viewmats [C,4,4] world-to-camera in OpenCV axes; Ks [C,3,3] intrinsics in pixels;
    width, height in pixels. sh_degree: bands used (default: all stored). background:
    RGB [3] or [C,3] in [0,1] composited behind (default black, i.e. none). near/far
    planes in camera z units. rasterize_mode: gsplat's 'classic' or 'antialiased'.
    Differentiable with respect to the Gaussians' tensors on both backends.
    """
    if rasterize_mode not in ("classic", "antialiased"):
        raise SplatfilmError(f"unknown rasterize_mode {rasterize_mode!r}; choose classic or antialiased")
    if width <= 0 or height <= 0:
        raise SplatfilmError(f"image size must be positive, got {width}x{height}")
    degree = gaussians.sh_degree if sh_degree is None else sh_degree
    if not 0 <= degree <= gaussians.sh_degree:
        raise SplatfilmError(f"sh_degree {degree} is outside 0..{gaussians.sh_degree} (the degree the scene stores)")
    if viewmats.ndim != 3 or viewmats.shape[1:] != (4, 4) or Ks.shape != (viewmats.shape[0], 3, 3):
        raise SplatfilmError(f"viewmats must be [C,4,4] and Ks [C,3,3], got {tuple(viewmats.shape)} and {tuple(Ks.shape)}")
    which = resolve_backend(backend)
    fn = _render_gsplat if which == "gsplat" else _render_cpu
    return fn(gaussians, viewmats, Ks, int(width), int(height), degree, background, near_plane, far_plane, rasterize_mode)


def _render_cpu(g: Gaussians, viewmats, Ks, width, height, degree, background, near_plane, far_plane, mode) -> RenderOutput:
    from splatfilm.render.rasterize_to_pixels import rasterize_to_pixels

    if g.device.type != "cpu":
        g = g.to("cpu")
    dtype = g.dtype
    viewmats = viewmats.to(device="cpu", dtype=dtype)
    Ks = Ks.to(device="cpu", dtype=dtype)
    C = viewmats.shape[0]

    opacities = g.activated_opacities
    covars = quat_scale_to_covar(g.quats, g.activated_scales)
    proj = project_gaussians(
        g.means, covars, viewmats, Ks, width, height,
        opacities=opacities, near_plane=near_plane, far_plane=far_plane, antialiased=mode == "antialiased",
    )
    if degree == 0:
        colors = (g.sh0[:, 0] * 0.28209479177387814 + 0.5).clamp_min(0.0).expand(C, -1, -1)
    else:
        # View direction: Gaussian mean minus camera centre, per camera.
        R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]
        campos = -torch.einsum("cji,cj->ci", R, t)
        dirs = g.means[None] - campos[:, None]
        colors = spherical_harmonics(degree, g.sh[None], dirs)
    op = opacities[None].expand(C, -1)
    if mode == "antialiased":
        op = op * proj.compensations
    feats = torch.cat([colors, proj.depths[..., None]], dim=-1)
    acc, alpha = rasterize_to_pixels(proj.means2d, proj.conics, op, feats, proj.radii, proj.depths, width, height)

    rgb = acc[..., :3]
    bg = _backgrounds(background, C, dtype, rgb.device)
    if bg is not None:
        rgb = rgb + (1.0 - alpha) * bg[:, None, None, :]
    depth = acc[..., 3:4] / alpha.clamp_min(1e-10)
    info = {
        "backend": "cpu",
        "means2d": proj.means2d,
        "radii": proj.radii,
        "depths": proj.depths,
        "conics": proj.conics,
        "width": width,
        "height": height,
        "n_cameras": C,
        "tile_size": 16,
        # gsplat names these for its packed mode; densification strategies look them up.
        "gaussian_ids": None,
        "camera_ids": None,
    }
    return RenderOutput(rgb=rgb, alpha=alpha, depth=depth, info=info)


def _render_gsplat(g: Gaussians, viewmats, Ks, width, height, degree, background, near_plane, far_plane, mode) -> RenderOutput:
    from gsplat import rasterization

    device = torch.device("cuda") if g.device.type != "cuda" else g.device
    g = g.to(device)
    if g.dtype != torch.float32:
        raise SplatfilmError("backend 'gsplat' renders float32 Gaussians only")
    viewmats = viewmats.to(device=device, dtype=torch.float32)
    Ks = Ks.to(device=device, dtype=torch.float32)
    C = viewmats.shape[0]
    bg = _backgrounds(background, C, torch.float32, device)
    colors, alphas, info = rasterization(
        means=g.means,
        quats=g.quats,
        scales=g.activated_scales,
        opacities=g.activated_opacities,
        colors=g.sh[:, : (degree + 1) ** 2],
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        near_plane=near_plane,
        far_plane=far_plane,
        sh_degree=degree,
        packed=False,
        backgrounds=bg,
        render_mode="RGB+ED",
        rasterize_mode=mode,
    )
    info = dict(info)
    info["backend"] = "gsplat"
    return RenderOutput(rgb=colors[..., :3], alpha=alphas, depth=colors[..., 3:4], info=info)
