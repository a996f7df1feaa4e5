"""One `rasterization()` for every part of splatfilm (gsplat's name for its entry), with two
backends that compute the same image.

- "gsplat": gsplat's CUDA rasterizer (`gsplat.rasterization`), where CUDA is available.
- "cpu": ours (EWA projection in PyTorch, numba tile kernels with a hand-written backward).
- "auto" (default): gsplat when CUDA is available, else cpu.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians, opacity_logit
from splatfilm.render.camera_models import check_lens
from splatfilm.render.fused_projection import fully_fused_projection
from splatfilm.render.projection import compensated_opacities, project_gaussians, quat_scale_to_covar
from splatfilm.render.spherical_harmonics import fused_spherical_harmonics, spherical_harmonics

Backend = Literal["auto", "cpu", "gsplat"]
RasterizeMode = Literal["classic", "antialiased"]
RASTERIZE_MODES = ("classic", "antialiased")
RenderMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]
RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")


def rasterize_mode_key(mode: str) -> dict[str, str]:
    """What a content key records of a rasterize mode: nothing for classic, so keys made before
    assets had a mode (every cached frame, count, mesh and refiner) stay valid; else
    {"rasterize_mode": mode}."""
    return {} if mode == "classic" else {"rasterize_mode": mode}


@dataclass
class RenderOutput:
    """C images of H x W pixels, as `rasterization()`'s `render_mode` asks for them.

    rgb [C,H,W,3] sRGB-encoded values (background composited), None in the depth-only modes
    "D" and "ED"; alpha [C,H,W,1] accumulated opacity; depth [C,H,W,1] camera-space z in the
    scene's units, None in mode "RGB": in "ED" and "RGB+ED" (the default) the expected depth,
    accumulated depth over alpha (0 where alpha is 0), in "D" and "RGB+D" the accumulated
    depth, sum of blend weight times z (not divided by alpha, so it is alpha times the
    expected depth); features [C,H,W,F] the extra per-Gaussian features composited with the
    same blend weights as the colour (no background, not divided by alpha), or None when none
    were given; info: what densification strategies read (means2d [C,N,2] with grad, and
    after a backward with `absgrad` its `.absgrad` [C,N,2]; radii [C,N,2], width, height,
    n_cameras, backend).
    """

    rgb: torch.Tensor | None
    alpha: torch.Tensor
    depth: torch.Tensor | None
    info: dict = field(default_factory=dict)
    features: torch.Tensor | None = None


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (what "auto" picks gsplat by)."""
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


def rasterize_modes(pieces: Iterable[tuple[int, str]]) -> RasterizeMode | torch.Tensor:
    """The `rasterize_mode` of Gaussians joined (in order) from pieces of (count, mode): that mode
    where every piece has it (so an all-classic frame renders as it always has), else a
    per-Gaussian bool [N], True where a Gaussian renders antialiased."""
    pieces = list(pieces)
    modes = {m for n, m in pieces if n > 0}
    if len(modes) <= 1:
        return next(iter(modes), "classic")
    return torch.cat([torch.full((n,), m == "antialiased", dtype=torch.bool) for n, m in pieces])


def _check_mode(mode, N: int) -> RasterizeMode | torch.Tensor:
    """`mode` as "classic", "antialiased" or a mixed bool [N] (one that is all one way becomes
    that mode's name: the same image, by the same path)."""
    if isinstance(mode, torch.Tensor):
        if mode.shape != (N,) or mode.dtype != torch.bool:
            raise SplatfilmError(f"a per-Gaussian rasterize_mode must be bool [{N}], got {mode.dtype} "
                                 f"{tuple(mode.shape)}")
        if bool(mode.all()) and N:
            return "antialiased"
        return mode if bool(mode.any()) else "classic"
    if mode not in RASTERIZE_MODES:
        raise SplatfilmError(f"unknown rasterize_mode {mode!r}; choose classic or antialiased")
    return mode


def _background_rows(bg: torch.Tensor, C: int) -> torch.Tensor:
    """A background as one RGB row per camera [C,3] (gsplat's layout): from [3], [C,3], one
    per camera shaped like the images, [C,1,1,3] (as a trainer adds it to them), or any shape
    that broadcasts to one of those."""
    if bg.ndim == 4 and bg.shape[1:3] == (1, 1):
        bg = bg[:, 0, 0]
    try:
        return torch.broadcast_to(bg, (C, 3))
    except RuntimeError:
        raise SplatfilmError(f"background must be an RGB colour [3], or one per camera [{C},3] or [{C},1,1,3], "
                             f"got {tuple(bg.shape)}") from None


def _backgrounds(background, C: int, dtype, device) -> torch.Tensor | None:
    if background is None:
        return None
    return _background_rows(torch.as_tensor(background, dtype=dtype, device=device), C)


def _image_size(width, height) -> tuple[int, int]:
    """width, height as whole pixels (an integral float such as 640.0 passes), or a SplatfilmError."""
    sizes = []
    for v in (width, height):
        try:
            sizes.append(operator.index(v))
        except TypeError:
            if not (isinstance(v, numbers.Real) and float(v).is_integer()):
                raise SplatfilmError(f"image size must be whole pixels, got {width!r}x{height!r}") from None
            sizes.append(int(v))
    if sizes[0] <= 0 or sizes[1] <= 0:
        raise SplatfilmError(f"image size must be positive, got {width}x{height}")
    return sizes[0], sizes[1]


def _one_dtype(g: Gaussians) -> Gaussians:
    """`g` checked: both backends render float32 Gaussians, the cpu backend float64 too
    (gsplat's own check is its backend's); one dtype for every tensor. An empty shN (SH degree
    0, as `torch.zeros(n, 0, 3)` makes it, float32 whatever the rest) holds no values: it takes
    the means' dtype rather than being refused."""
    if g.shN.numel() == 0 and g.shN.dtype != g.dtype:
        g = Gaussians(g.means, g.quats, g.scales, g.opacities, g.sh0, g.shN.to(g.dtype))
    for name in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        dtype = getattr(g, name).dtype
        if dtype not in (torch.float32, torch.float64):
            raise SplatfilmError(f"Gaussians.{name} is {str(dtype).replace('torch.', '')}; render takes float32 "
                                 f"(or float64 on the cpu backend): convert with gaussians.to(dtype=torch.float32)")
        if dtype != g.dtype:
            raise SplatfilmError(f"Gaussians.{name} is {str(dtype).replace('torch.', '')} but means are "
                                 f"{str(g.dtype).replace('torch.', '')}: give every tensor one dtype")
    return g


def rasterization(
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
    rasterize_mode: RasterizeMode | torch.Tensor = "classic",
    camera_model: str = "PINHOLE",
    distortion: torch.Tensor | None = None,
    features: torch.Tensor | None = None,
    render_mode: RenderMode = "RGB+ED",
    absgrad: bool = False,
) -> RenderOutput:
    """Render Gaussians from C cameras of one model.

    viewmats [C,4,4] world-to-camera in OpenCV axes; Ks [C,3,3] intrinsics in pixels;
    width, height in whole pixels. Gaussians in float32, or float64 on the cpu backend, whose
    images come back on the Gaussians' device (gsplat's on the GPU it draws on). sh_degree:
    bands used (default: all stored). background: RGB [3], [C,3] or [C,1,1,3] (or a shape
    broadcasting to one) in [0,1], composited behind (default black, i.e. none). near/far
    planes in camera z units (distance from the camera for EQUIRECTANGULAR).
    rasterize_mode: gsplat's 'classic' or 'antialiased' (Mip-Splatting's 2D filter: opacity
    times sqrt(det(cov2d) / det(cov2d + 0.3 I))) for every Gaussian, or per Gaussian a bool
    [N], True where antialiased (`rasterize_modes`: assets of both kinds in one frame, each
    composited as it was trained). camera_model: PINHOLE, OPENCV,
    OPENCV_FISHEYE or EQUIRECTANGULAR (docs/CONVENTIONS.md), with distortion [C,6] or [6]
    (k1, k2, k3, k4, p1, p2) for the two OPENCV models (e.g. `Cameras.distortion`).
    features: extra per-Gaussian channels [N,F] or [C,N,F] (gsplat's N-channel colours),
    composited in the same call with the same blend weights as the colour, e.g. a one-hot
    asset id (its coverage) or a screen-space motion; returned as `features`, colour and
    depth staying as they are without them.
    render_mode: gsplat's "RGB", "D", "ED", "RGB+D" or "RGB+ED" (default: colour and expected
    depth): which of colour and depth come back, and which depth (`RenderOutput`); the
    depth-only modes skip the colour (no SH evaluated). absgrad: after a backward,
    info["means2d"].absgrad [C,N,2] holds per Gaussian the sum over pixels of the absolute
    per-pixel gradient of its 2D mean (AbsGS's densification statistic, which gsplat's
    `DefaultStrategy(absgrad=True)` reads), as gsplat's `rasterization(absgrad=True)` sets it.
    Differentiable with respect to the Gaussians' tensors on both backends.
    """
    rasterize_mode = _check_mode(rasterize_mode, gaussians.means.shape[0])
    width, height = _image_size(width, height)
    gaussians = _one_dtype(gaussians)
    degree = gaussians.sh_degree if sh_degree is None else sh_degree
    if not 0 <= degree <= gaussians.sh_degree:
        raise SplatfilmError(f"sh_degree {degree} is outside 0..{gaussians.sh_degree} (the degree the scene stores)")
    if viewmats.ndim != 3 or viewmats.shape[1:] != (4, 4) or Ks.shape != (viewmats.shape[0], 3, 3):
        raise SplatfilmError(f"viewmats must be [C,4,4] and Ks [C,3,3], got {tuple(viewmats.shape)} and {tuple(Ks.shape)}")
    if background is not None:
        _background_rows(torch.as_tensor(background), viewmats.shape[0])  # its shape, before any work
    distortion = _lens_distortion(camera_model, distortion, viewmats.shape[0])
    if features is not None:
        features = _check_features(features, viewmats.shape[0], gaussians.means.shape[0])
    if render_mode not in RENDER_MODES:
        raise SplatfilmError(f"unknown render_mode {render_mode!r}; choose {', '.join(RENDER_MODES)}")
    which = resolve_backend(backend)
    lens = (camera_model, distortion)
    if which == "gsplat":
        return _render_gsplat(gaussians, viewmats, Ks, width, height, degree, background, near_plane,
                              far_plane, rasterize_mode, lens, features, render_mode, bool(absgrad))
    return _render_cpu(gaussians, viewmats, Ks, width, height, degree, background, near_plane, far_plane,
                       rasterize_mode, lens, features, render_mode, bool(absgrad))


def _lens_distortion(camera_model: str, distortion, C: int) -> torch.Tensor | None:
    """`distortion` checked against `camera_model` and made one float64 row per camera [C,6],
    or None for the models without coefficients (PINHOLE, EQUIRECTANGULAR) or where none were given."""
    check_lens(camera_model, distortion)
    if distortion is None or camera_model in ("PINHOLE", "EQUIRECTANGULAR"):
        return None
    return torch.as_tensor(distortion, dtype=torch.float64).reshape(-1, 6).expand(C, 6)


def _check_features(features: torch.Tensor, C: int, N: int) -> torch.Tensor:
    """features as [C,N,F], or a SplatfilmError naming the shape."""
    if features.ndim == 2:
        features = features[None].expand(C, -1, -1)
    if features.ndim != 3 or features.shape[:2] != (C, N) or features.shape[2] < 1:
        raise SplatfilmError(f"features must be [N,F] or [C,N,F] for {C} camera(s) and {N} Gaussians, "
                             f"got {tuple(features.shape)}")
    return features


def _project_cpu(g: Gaussians, viewmats, Ks, width, height, near_plane, far_plane, mode, lens):
    """The CPU backend's projection of float Gaussians on the CPU into C cameras (viewmats,
    Ks on the CPU in g's dtype): (projection, antialiased: a bool or a per-Gaussian bool [N])."""
    camera_model, distortion = lens
    mixed = isinstance(mode, torch.Tensor)
    antialiased = mode.cpu() if mixed else mode == "antialiased"
    opacities = g.activated_opacities
    if camera_model == "PINHOLE" and not (viewmats.requires_grad or Ks.requires_grad):
        proj = fully_fused_projection(g.means, g.quats, g.activated_scales, viewmats, Ks, width, height,
                                      opacities=opacities, near_plane=near_plane, far_plane=far_plane,
                                      antialiased=antialiased)
    else:  # lens models, and gradients for the cameras: the PyTorch reference
        proj = project_gaussians(
            g.means, quat_scale_to_covar(g.quats, g.activated_scales), viewmats, Ks, width, height,
            opacities=opacities, near_plane=near_plane, far_plane=far_plane, antialiased=antialiased,
            **({} if camera_model == "PINHOLE" else {"camera_model": camera_model, "distortion": distortion}),
        )
    return proj, antialiased


def _drawn_opacities(g: Gaussians, proj, antialiased) -> torch.Tensor:
    """Opacity [C,M] of each Gaussian the CPU backend draws (`_project_cpu`'s projection and
    antialiased), as the rasterizer composites it: times its compensation, and an
    equirectangular seam's second copy (proj.gaussian_ids) taking its Gaussian's."""
    op = g.activated_opacities[None].expand(proj.means2d.shape[0], -1)
    ids = proj.gaussian_ids
    if ids is not None:
        op = op[:, ids]
        if isinstance(antialiased, torch.Tensor):
            antialiased = antialiased[ids]
    return compensated_opacities(op, proj.compensations, antialiased)


def peak_blend_weights(
    gaussians: Gaussians,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    rasterize_mode: RasterizeMode | torch.Tensor = "classic",
    camera_model: str = "PINHOLE",
    distortion: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per camera and Gaussian, the largest blend weight it gets in the image [C,N]: alpha * T
    at its best pixel (its opacity-and-falloff alpha times the transmittance left in front of
    it), as `rasterization` composites it on the cpu backend in `rasterize_mode` through
    `camera_model` (a Gaussian an equirectangular seam draws twice: its larger side); 0 where
    it blends nowhere (culled, off the image, behind what is opaque, alpha below 1/255).
    Counted by the cpu backend's kernels whatever backend renders (gsplat has no per-Gaussian
    maximum; both composite alike); float32 or float64 Gaussians; a CPU tensor; not
    differentiable. viewmats [C,4,4], Ks [C,3,3] and the rest as `rasterization`'s (all of them, for
    a `Cameras`: `**cams.render_arguments()`)."""
    from splatfilm.render.rasterize_to_pixels import rasterize_peak_weights

    rasterize_mode = _check_mode(rasterize_mode, gaussians.means.shape[0])
    width, height = _image_size(width, height)
    distortion = _lens_distortion(camera_model, distortion, viewmats.shape[0])
    with torch.no_grad():
        g = _one_dtype(gaussians).to("cpu")
        viewmats = viewmats.to(device="cpu", dtype=g.dtype)
        Ks = Ks.to(device="cpu", dtype=g.dtype)
        proj, antialiased = _project_cpu(g, viewmats, Ks, width, height, near_plane, far_plane, rasterize_mode,
                                         (camera_model, distortion))
        op = _drawn_opacities(g, proj, antialiased)
        peaks = rasterize_peak_weights(proj.means2d, proj.conics, op, proj.radii, proj.depths, width, height)
        ids = proj.gaussian_ids
        if ids is None:
            return peaks
        out = torch.zeros(peaks.shape[0], g.means.shape[0], dtype=peaks.dtype)
        return out.scatter_reduce_(1, ids.expand(peaks.shape[0], -1), peaks, "amax")


def _render_cpu(g: Gaussians, viewmats, Ks, width, height, degree, background, near_plane, far_plane, mode,
                lens=("PINHOLE", None), extra=None, render_mode="RGB+ED", absgrad=False) -> RenderOutput:
    from splatfilm.render.rasterize_to_pixels import rasterize_to_pixels

    device = g.device  # where the images go back to
    if device.type != "cpu":
        g = g.to("cpu")
    dtype = g.dtype
    viewmats = viewmats.to(device="cpu", dtype=dtype)
    Ks = Ks.to(device="cpu", dtype=dtype)
    C = viewmats.shape[0]

    proj, antialiased = _project_cpu(g, viewmats, Ks, width, height, near_plane, far_plane, mode, lens)
    with_rgb, with_depth = render_mode != "D" and render_mode != "ED", render_mode != "RGB"
    colors = None
    if with_rgb and degree == 0:
        colors = g.base_colors.expand(C, -1, -1)
    elif with_rgb:
        # View direction: Gaussian mean minus camera centre, per camera.
        R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]
        campos = -torch.einsum("cji,cj->ci", R, t)
        dirs = g.means[None] - campos[:, None]
        colors = fused_spherical_harmonics(degree, g.sh0, dirs, g.shN)
    ids = proj.gaussian_ids
    N = g.means.shape[0]
    means2d = proj.means2d
    if ids is not None:
        # Densification reads the gradient of info's means2d, one row per Gaussian: the
        # rasterizer must draw through that very tensor (the seam copies ride behind it).
        own = proj.means2d[:, :N]
        means2d = torch.cat([own, proj.means2d[:, N:]], dim=1)
    if extra is not None:
        extra = extra.to(device="cpu", dtype=dtype)
    if ids is not None:  # an equirectangular seam: some Gaussians are drawn twice
        colors = None if colors is None else colors[:, ids]
        extra = None if extra is None else extra[:, ids]
        if absgrad and means2d.requires_grad:
            # gsplat's absgrad is of the tensor in info, here the rows of the Gaussians' own
            # draws: hand them theirs once the rasterizer's backward has set it.
            raster_means2d = means2d
            means2d.register_hook(lambda _: setattr(own, "absgrad", raster_means2d.absgrad[:, :N]))
    op = _drawn_opacities(g, proj, antialiased)
    # Colour, depth, then extra features: every channel composites on its own, so each comes
    # out the same whichever others ride with it.
    feats = torch.cat(([colors] if with_rgb else []) + ([proj.depths[..., None]] if with_depth else [])
                      + ([] if extra is None else [extra]), dim=-1)
    acc, alpha = rasterize_to_pixels(means2d, proj.conics, op, feats, proj.radii, proj.depths, width, height,
                                     absgrad=absgrad)

    rgb = depth = None
    bg = _backgrounds(background, C, dtype, alpha.device)
    if with_rgb:
        rgb = acc[..., :3]
        if bg is not None:
            rgb = rgb + (1.0 - alpha) * bg[:, None, None, :]
    n_main = 3 * with_rgb + with_depth
    if with_depth:
        depth = acc[..., n_main - 1:n_main]
        if render_mode.endswith("ED"):
            depth = depth / alpha.clamp_min(1e-10)
    info = {
        "backend": "cpu",
        # Seam copies (ids) are left out: strategies expect one entry per Gaussian.
        "means2d": proj.means2d if ids is None else own,
        "radii": proj.radii if ids is None else proj.radii[:, :N],
        "depths": proj.depths if ids is None else proj.depths[:, :N],
        "conics": proj.conics if ids is None else proj.conics[:, :N],
        "width": width,
        "height": height,
        "n_cameras": C,
        "tile_size": 16,
        # gsplat names these for its packed mode; densification strategies look them up.
        "gaussian_ids": None,
        "camera_ids": None,
    }
    # The images go back to the caller's device (differentiably); info stays on the CPU, where
    # the rasterizer drew through its means2d: densification reads that tensor's gradient.
    rgb, depth = (None if x is None else x.to(device) for x in (rgb, depth))
    return RenderOutput(rgb=rgb, alpha=alpha.to(device), depth=depth, info=info,
                        features=None if extra is None else acc[..., n_main:].to(device))


def gsplat_lens_arguments(camera_model: str, distortion: torch.Tensor | None,
                          device: torch.device | str | None = None) -> dict:
    """The keyword arguments of `gsplat.rasterization` (1.5) that render `camera_model`.

    PINHOLE: none (the classic EWA path). OPENCV_FISHEYE without coefficients: gsplat's classic
    EWA fisheye (camera_model="fisheye"). Distorted models go through gsplat's 3DGUT path
    (with_ut=True projects with its unscented transform, with_eval3d=True evaluates each
    Gaussian along the distorted pixel rays; only that path is differentiable there):
    OPENCV -> "pinhole" with radial_coeffs [C,6] = (k1, k2, k3, 0, 0, 0) (gsplat's rational
    numerator k1-k3 over a unit denominator) and tangential_coeffs [C,2] = (p1, p2);
    OPENCV_FISHEYE -> "fisheye" with radial_coeffs [C,4] = (k1, k2, k3, k4).
    EQUIRECTANGULAR and OPENCV with nerfstudio's r^8 term k4 have no gsplat model: SplatfilmError.
    """
    if camera_model == "PINHOLE":
        return {}
    if camera_model == "EQUIRECTANGULAR":
        raise SplatfilmError("backend 'gsplat' has no equirectangular camera; the cpu backend renders it (--backend cpu)")
    d = (torch.zeros(1, 6, dtype=torch.float64) if distortion is None else torch.as_tensor(distortion).reshape(-1, 6))
    d = d.to(device=device, dtype=torch.float32)
    if camera_model == "OPENCV":
        if torch.any(d[:, 3] != 0):
            raise SplatfilmError("backend 'gsplat' has no r^8 radial term (k4) for OPENCV cameras; "
                                 "the cpu backend renders it (--backend cpu)")
        radial = torch.cat([d[:, :3], torch.zeros_like(d[:, :3])], dim=-1).contiguous()
        return {"camera_model": "pinhole", "with_ut": True, "with_eval3d": True,
                "radial_coeffs": radial, "tangential_coeffs": d[:, 4:6].contiguous()}
    if camera_model == "OPENCV_FISHEYE":
        if not torch.any(d[:, :4] != 0):
            return {"camera_model": "fisheye"}
        return {"camera_model": "fisheye", "with_ut": True, "with_eval3d": True,
                "radial_coeffs": d[:, :4].contiguous()}
    raise SplatfilmError(f"unknown camera model {camera_model!r}")


def _render_gsplat(g: Gaussians, viewmats, Ks, width, height, degree, background, near_plane, far_plane, mode,
                   lens=("PINHOLE", None), extra=None, render_mode="RGB+ED", absgrad=False) -> RenderOutput:
    if isinstance(mode, torch.Tensor):
        return _render_gsplat_mixed(g, viewmats, Ks, width, height, degree, background, near_plane, far_plane, mode,
                                    lens, extra, render_mode, absgrad)
    from gsplat import rasterization as gsplat_rasterization

    device = torch.device("cuda") if g.device.type != "cuda" else g.device
    g = g.to(device)
    if g.dtype != torch.float32:
        raise SplatfilmError("backend 'gsplat' renders float32 Gaussians only")
    viewmats = viewmats.to(device=device, dtype=torch.float32)
    Ks = Ks.to(device=device, dtype=torch.float32)
    C = viewmats.shape[0]
    camera_model, distortion = lens
    lens_args = gsplat_lens_arguments(camera_model, None if distortion is None else distortion.expand(C, 6), device)
    bg = _backgrounds(background, C, torch.float32, device)
    colors_in, sh_degree, gsplat_mode = g.sh[:, : (degree + 1) ** 2], degree, render_mode
    depth_only = render_mode in ("D", "ED")
    if depth_only:
        # gsplat's depth-only modes composite depth in place of the colours: features ride as
        # "colours" of its RGB+ modes instead, and without them no SH is worth evaluating.
        colors_in, sh_degree, bg = g.base_colors, None, None
        if extra is not None:
            colors_in, gsplat_mode = extra.to(device=device, dtype=torch.float32), "RGB+" + render_mode
    elif extra is not None:
        # gsplat composites N-channel colours natively, but only without SH: evaluate the SH
        # here as gsplat does (view direction from the camera centre, + 0.5, clamped at 0),
        # append the features, and give the rasterizer plain colours.
        if degree == 0:
            rgb_in = g.base_colors.expand(C, -1, -1)
        else:
            R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]
            campos = -torch.einsum("cji,cj->ci", R, t)
            rgb_in = spherical_harmonics(degree, g.sh[None], g.means[None] - campos[:, None])
        colors_in = torch.cat([rgb_in, extra.to(device=device, dtype=torch.float32)], dim=-1)
        sh_degree = None
        if bg is not None:
            bg = torch.cat([bg, torch.zeros(C, extra.shape[-1], device=device)], dim=-1)
    colors, alphas, info = gsplat_rasterization(
        means=g.means,
        quats=g.quats,
        scales=g.activated_scales,
        opacities=g.activated_opacities,
        colors=colors_in,
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        near_plane=near_plane,
        far_plane=far_plane,
        sh_degree=sh_degree,
        packed=False,
        backgrounds=bg,
        render_mode=gsplat_mode,
        rasterize_mode=mode,
        absgrad=absgrad,
        **lens_args,
    )
    info = dict(info)
    info["backend"] = "gsplat"
    # gsplat's modes with depth append it after every colour channel (features included).
    n_rgb = 0 if depth_only else 3
    end = colors.shape[-1] - (render_mode != "RGB")
    return RenderOutput(rgb=None if depth_only else colors[..., :3], alpha=alphas,
                        depth=None if render_mode == "RGB" else colors[..., end:], info=info,
                        features=None if extra is None else colors[..., n_rgb:end])


def _render_gsplat_mixed(g: Gaussians, viewmats, Ks, width, height, degree, background, near_plane, far_plane,
                         antialiased: torch.Tensor, lens, extra, render_mode, absgrad) -> RenderOutput:
    """gsplat's rasterizer with a per-Gaussian mode (bool [N], True: antialiased). gsplat takes
    one mode a call, so each camera is drawn in 'classic' mode with the flagged Gaussians'
    opacities already times their compensation (ours, EWA, per camera): what 'antialiased'
    composites, and its opacity-aware boxes follow from that same opacity."""
    device = torch.device("cuda") if g.device.type != "cuda" else g.device
    g = g.to(device)
    camera_model, distortion = lens
    model = {} if camera_model == "PINHOLE" else {"camera_model": camera_model, "distortion": distortion}
    proj = project_gaussians(g.means, quat_scale_to_covar(g.quats, g.activated_scales),
                             viewmats.to(device=device, dtype=g.dtype), Ks.to(device=device, dtype=g.dtype),
                             width, height, near_plane=near_plane, far_plane=far_plane, **model)
    flags = antialiased.to(device)
    N = flags.shape[0]
    backgrounds = _backgrounds(background, viewmats.shape[0], g.dtype, device)  # [C,3], whatever shape was given
    outs = []
    for c in range(viewmats.shape[0]):
        # Kept Gaussians' compensation is at most 1; a culled one's (ours: a lens fold gsplat's
        # 3DGUT may still draw) is not, and would make a faint antialiased Gaussian opaque.
        op = compensated_opacities(g.activated_opacities, proj.compensations[c:c + 1, :N].clamp(max=1.0), flags)[0]
        gc = Gaussians(g.means, g.quats, g.scales, opacity_logit(op, 1e-7), g.sh0, g.shN)
        bg = None if backgrounds is None else backgrounds[c:c + 1]
        outs.append(_render_gsplat(gc, viewmats[c:c + 1], Ks[c:c + 1], width, height, degree, bg, near_plane,
                                   far_plane, "classic",
                                   (camera_model, None if distortion is None else distortion[c:c + 1]),
                                   None if extra is None else extra[c:c + 1], render_mode, absgrad))
    if len(outs) == 1:
        return outs[0]
    # info (what densification reads) is the first camera's: fits use one mode, never this path.
    cat = lambda k: None if getattr(outs[0], k) is None else torch.cat([getattr(o, k) for o in outs])  # noqa: E731
    return RenderOutput(rgb=cat("rgb"), alpha=cat("alpha"), depth=cat("depth"), info=outs[0].info,
                        features=cat("features"))
