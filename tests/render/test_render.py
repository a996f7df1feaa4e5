"""rasterization(..., backend='cpu') end to end against an independent reference assembled from
gsplat's pure-PyTorch pieces (projection, SH) and a brute-force per-pixel compositor, plus
gradients of the whole pipeline w.r.t. the Gaussians' raw parameters, and the API's errors."""

from __future__ import annotations


import pytest
import torch

from helpers import intrinsics, look_at, random_gaussians
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics
from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.render import RENDER_MODES, RenderOutput, rasterization, resolve_backend
from splatfilm.render.projection import project_gaussians, quat_scale_to_covar
from splatfilm.render.rasterize_to_pixels import rasterize_to_pixels_reference
from splatfilm.render.spherical_harmonics import spherical_harmonics as eval_sh

F64 = torch.float64


def reference_stages(gs: Gaussians, viewmats, Ks, W, H, degree, mode="classic", near_plane=0.01, far_plane=1e10):
    """What gsplat's `_rasterization` hands its compositor, from its pure-PyTorch projection
    and SH in float64: means2d, conics, opacities, feats (colour and depth), radii, depths."""
    C = viewmats.shape[0]
    means, quats = gs.means.to(F64), gs.quats.to(F64)
    scales, ops = torch.exp(gs.scales.to(F64)), torch.sigmoid(gs.opacities.to(F64))
    viewmats, Ks = viewmats.to(F64), Ks.to(F64)
    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    per_gaussian = isinstance(mode, torch.Tensor)  # bool [N]: True where antialiased
    radii, means2d, depths, conics, comps = _fully_fused_projection(
        means, covars, viewmats, Ks, W, H, near_plane=near_plane, far_plane=far_plane,
        calc_compensations=per_gaussian or mode == "antialiased",
    )
    ops = ops[None].expand(C, -1)
    if per_gaussian:
        ops = torch.where(mode[None], ops * comps, ops)
    elif mode == "antialiased":
        ops = ops * comps
    campos = torch.inverse(viewmats)[:, :3, 3]
    dirs = means[None] - campos[:, None]
    sh = gs.sh.to(F64)[None].expand(C, -1, -1, -1)
    colors = torch.clamp_min(_spherical_harmonics(degree, dirs, sh) + 0.5, 0.0)
    feats = torch.cat([colors, depths[..., None]], -1)
    return means2d, conics, ops, feats, radii, depths


def reference_render(gs: Gaussians, viewmats, Ks, W, H, degree, background=None, mode="classic",
                     near_plane=0.01, far_plane=1e10):
    """gsplat's `_rasterization` recipe, in float64, without tiles or CUDA."""
    C = viewmats.shape[0]
    stages = reference_stages(gs, viewmats, Ks, W, H, degree, mode, near_plane, far_plane)
    acc, alpha, stopped = rasterize_to_pixels_reference(*stages, W, H)
    rgb = acc[..., :3]
    if background is not None:
        bg = torch.as_tensor(background, dtype=F64).expand(C, 3)
        rgb = rgb + (1.0 - alpha) * bg[:, None, None, :]
    depth = acc[..., 3:] / alpha.clamp(min=1e-10)
    return rgb, alpha, depth, stopped


def make_scene(name):
    """(Gaussians in float64, viewmats [2,4,4], Ks [2,3,3], W, H, background)."""
    if name == "mixed":  # camera 1 sits inside the cloud: Gaussians behind it and close to it
        gs = random_gaussians(150, 3, F64, seed=10)
        V = torch.stack([look_at((0.3, -4.0, 1.0), (0, 0, 0)), look_at((1.0, 0.6, 0.2), (-1.0, 0.3, 0.0))])
        K = torch.stack([intrinsics(45.0, 44.0, 22.0, 18.5), intrinsics(30.0, 30.0, 24.0, 17.0)])
        return gs, V, K, 45, 37, (0.2, 0.5, 0.9)
    if name == "dense":  # opaque and crowded: pixels stop on the transmittance threshold
        gs = random_gaussians(500, 3, F64, seed=11, spread=0.6, log_scale=(-1.9, 0.3), opacity=(0.85, 0.999))
        V = torch.stack([look_at((0.0, -4.0, 0.5), (0, 0, 0)), look_at((4.0, 0.5, 0.0), (0, 0, 0))])
        K = torch.stack([intrinsics(45.0, 45.0, 20.0, 17.0), intrinsics(40.0, 40.0, 19.0, 16.5)])
        return gs, V, K, 41, 33, torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.3, 0.1]], dtype=F64)
    if name == "big":  # Gaussians spanning many tiles over small ones; no background
        gs = Gaussians.concat([
            random_gaussians(60, 3, F64, seed=12),
            random_gaussians(6, 1, F64, seed=13, spread=0.5, log_scale=(0.0, 0.2), opacity=(0.3, 0.8)),
        ])
        V = torch.stack([look_at((0.0, -4.0, 0.5), (0, 0, 0)), look_at((-3.0, -3.0, 1.0), (0, 0, 0))])
        K = torch.stack([intrinsics(60.0, 60.0, 35.0, 25.0), intrinsics(50.0, 55.0, 33.0, 26.0)])
        return gs, V, K, 70, 50, None
    raise KeyError(name)


def _compare(out: RenderOutput, ref, dtype):
    rgb, alpha, depth, _ = ref
    tol = dict(rtol=0, atol=1e-6) if dtype == F64 else dict(rtol=0, atol=1e-4)
    torch.testing.assert_close(out.rgb.double(), rgb, **tol)
    torch.testing.assert_close(out.alpha.double(), alpha, **tol)
    # Expected depth divides by alpha: compare relatively where there is coverage.
    cov = alpha[..., 0] > 1e-3
    rel = ((out.depth.double() - depth)[..., 0].abs() / depth[..., 0].abs().clamp_min(1e-6))[cov]
    assert rel.max() < (1e-6 if dtype == F64 else 1e-4), float(rel.max())
    assert (out.depth[alpha == 0] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
@pytest.mark.parametrize("name", ["mixed", "dense", "big"])
def test_render_cpu_matches_reference(name, mode, dtype):
    gs, V, K, W, H, bg = make_scene(name)
    gs = gs.to(dtype=dtype)
    out = rasterization(gs, V.to(dtype), K.to(dtype), W, H, backend="cpu", background=bg, rasterize_mode=mode)
    assert out.rgb.shape == (2, H, W, 3) and out.alpha.shape == (2, H, W, 1) and out.depth.shape == (2, H, W, 1)
    assert out.rgb.dtype == dtype
    ref = reference_render(gs, V, K, W, H, gs.sh_degree, bg, mode)
    _compare(out, ref, dtype)
    assert (ref[1] > 0).float().mean() > 0.3
    if name == "dense":
        assert min(ref[3]) > 0.2 * W * H, ref[3]
    if name == "big":
        assert (out.info["radii"].amax(-1) > 32).sum() >= 4


def every_other(n: int) -> torch.Tensor:
    """A per-Gaussian rasterize_mode: every other Gaussian antialiased."""
    return torch.arange(n) % 2 == 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", ["mixed", "dense"])
def test_render_cpu_per_gaussian_mode_matches_reference(name, dtype):
    """Antialiased and classic Gaussians in one call (a film's assets of both kinds): each
    Gaussian composited with its own opacity (times its compensation where flagged)."""
    gs, V, K, W, H, bg = make_scene(name)
    gs = gs.to(dtype=dtype)
    flags = every_other(len(gs))
    out = rasterization(gs, V.to(dtype), K.to(dtype), W, H, backend="cpu", background=bg, rasterize_mode=flags)
    _compare(out, reference_render(gs, V, K, W, H, gs.sh_degree, bg, flags), dtype)
    # Neither mode alone: the flags reach the compositor.
    for mode in ("classic", "antialiased"):
        other = rasterization(gs, V.to(dtype), K.to(dtype), W, H, backend="cpu", background=bg, rasterize_mode=mode)
        assert (other.rgb - out.rgb).abs().max() > 1e-3, mode
    # All one way is that mode, image for image.
    for mode, fill in (("classic", False), ("antialiased", True)):
        same = rasterization(gs, V, K, W, H, backend="cpu", background=bg, rasterize_mode=torch.full((len(gs),), fill))
        assert torch.equal(same.rgb,
                           rasterization(gs, V, K, W, H, backend="cpu", background=bg, rasterize_mode=mode).rgb)


def test_render_per_gaussian_mode_through_the_lens_path():
    """The reference projection (lens models, camera gradients) takes the per-Gaussian flags
    too: a pinhole with camera gradients renders as the fused path does."""
    gs, V, K, W, H, bg = make_scene("mixed")
    flags = every_other(len(gs))
    fused = rasterization(gs, V, K, W, H, backend="cpu", background=bg, rasterize_mode=flags)
    ref_path = rasterization(gs, V.clone().requires_grad_(True), K, W, H, backend="cpu", background=bg,
                             rasterize_mode=flags)
    torch.testing.assert_close(ref_path.rgb.detach(), fused.rgb, rtol=0, atol=1e-9)
    torch.testing.assert_close(ref_path.alpha.detach(), fused.alpha, rtol=0, atol=1e-9)


def test_rasterize_modes_of_pieces():
    from splatfilm.render import rasterize_modes

    assert rasterize_modes([(3, "classic"), (0, "antialiased"), (2, "classic")]) == "classic"
    assert rasterize_modes([(3, "antialiased")]) == "antialiased"
    assert rasterize_modes([]) == "classic"
    assert rasterize_modes([(2, "classic"), (1, "antialiased"), (1, "classic")]).tolist() == [False, False, True,
                                                                                               False]


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_render_cpu_sh_degrees(degree):
    gs, V, K, W, H, bg = make_scene("mixed")
    gs = gs.select(torch.arange(100))
    for stored in (gs, gs.with_sh_degree(degree)):  # use fewer bands than stored, or all of them
        out = rasterization(stored, V, K, W, H, backend="cpu", sh_degree=degree, background=bg)
        _compare(out, reference_render(gs, V, K, W, H, degree, bg), F64)
    # View dependence is real: degree > 0 changes the image.
    if degree > 0:
        flat = rasterization(gs, V, K, W, H, backend="cpu", sh_degree=0, background=bg)
        assert (flat.rgb - out.rgb).abs().max() > 1e-3


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_render_cpu_degree_4_matches_gsplats_sh(dtype, tmp_path):
    """A degree-4 scene (gsplat's highest SH degree) through the public rasterization(), against the
    reference composed with gsplat's own `_spherical_harmonics`; band 4 shows in the image."""
    _, V, K, W, H, bg = make_scene("mixed")
    gs = random_gaussians(120, 4, F64, seed=14, sh_rest=0.4).to(dtype=dtype)
    out = rasterization(gs, V.to(dtype), K.to(dtype), W, H, backend="cpu", background=bg)
    ref = reference_render(gs, V, K, W, H, 4, bg)
    _compare(out, ref, dtype)
    assert (ref[1] > 0.1).float().mean() > 0.3  # not an empty frame
    three = rasterization(gs, V.to(dtype), K.to(dtype), W, H, backend="cpu", background=bg, sh_degree=3)
    assert (out.rgb - three.rgb).abs().max() > 1e-2


def test_render_near_far_planes():
    gs, V, K, W, H, bg = make_scene("mixed")
    for near, far in ((2.0, 1e10), (0.01, 4.0)):
        out = rasterization(gs, V, K, W, H, backend="cpu", near_plane=near, far_plane=far)
        ref = reference_render(gs, V, K, W, H, 3, None, near_plane=near, far_plane=far)
        _compare(out, ref, F64)
        full = rasterization(gs, V, K, W, H, backend="cpu")
        assert (full.alpha - out.alpha).abs().max() > 1e-2


def test_render_info_and_empty_scene():
    gs, V, K, W, H, bg = make_scene("mixed")
    out = rasterization(gs, V, K, W, H, backend="cpu")
    assert out.info["backend"] == "cpu" and out.info["width"] == W and out.info["height"] == H
    assert out.info["n_cameras"] == 2
    assert out.info["means2d"].shape == (2, len(gs), 2) and out.info["radii"].shape == (2, len(gs), 2)
    empty = rasterization(Gaussians.empty(sh_degree=2, dtype=F64), V, K, W, H, backend="cpu",
                          background=(0.1, 0.2, 0.3))
    assert (empty.alpha == 0).all() and (empty.depth == 0).all()
    torch.testing.assert_close(empty.rgb, torch.tensor([0.1, 0.2, 0.3], dtype=F64).expand(2, H, W, 3))


def test_render_errors():
    gs, V, K, W, H, bg = make_scene("mixed")
    with pytest.raises(SplatfilmError):
        rasterization(gs, V, K, W, H, backend="cpu", rasterize_mode="fancy")
    with pytest.raises(SplatfilmError, match="per-Gaussian"):
        rasterization(gs, V, K, W, H, backend="cpu", rasterize_mode=torch.ones(len(gs) - 1, dtype=torch.bool))
    with pytest.raises(SplatfilmError):
        rasterization(gs, V, K, W, H, backend="cpu", sh_degree=4)
    with pytest.raises(SplatfilmError):
        rasterization(gs.with_sh_degree(1), V, K, W, H, backend="cpu", sh_degree=2)
    with pytest.raises(SplatfilmError):
        rasterization(gs, V, K, 0, H, backend="cpu")
    with pytest.raises(SplatfilmError):
        rasterization(gs, V[0], K, W, H, backend="cpu")
    with pytest.raises(SplatfilmError):
        rasterization(gs, V, K[:1], W, H, backend="cpu")
    with pytest.raises(SplatfilmError):
        rasterization(gs, V, K, W, H, backend="cpu", background=(0.0, 1.0))
    with pytest.raises(SplatfilmError):
        rasterization(gs, V, K, W, H, backend="vulkan")


def test_render_refuses_what_it_cannot_draw_in_one_line():
    """Half-precision Gaussians, fractional image sizes and mixed dtypes are refused up front
    with a SplatfilmError naming the input (they raised numba TypingErrors and torch TypeErrors,
    or rendered 53 pixels for 53.7)."""
    gs, V, K, W, H, _ = make_scene("mixed")
    for dtype in (torch.float16, torch.bfloat16):
        with pytest.raises(SplatfilmError, match=r"Gaussians\.means is (float16|bfloat16); render takes float32"):
            rasterization(gs.to(dtype=dtype), V, K, W, H, backend="cpu")
    mixed = Gaussians(gs.means, gs.quats, gs.scales, gs.opacities, gs.sh0.float(), gs.shN)
    with pytest.raises(SplatfilmError, match=r"Gaussians\.sh0 is float32 but means are float64"):
        rasterization(mixed, V, K, W, H, backend="cpu")
    with pytest.raises(SplatfilmError, match="whole pixels, got 53.7x37"):
        rasterization(gs, V, K, 53.7, H, backend="cpu")
    with pytest.raises(SplatfilmError, match="whole pixels"):
        rasterization(gs, V, K, W, "37", backend="cpu")
    for bad in ((0.0, 1.0), torch.zeros(3, 3), torch.zeros(2, 4, 4, 3)):
        with pytest.raises(SplatfilmError, match=r"background must be an RGB colour \[3\], or one per camera"):
            rasterization(gs, V, K, W, H, backend="cpu", background=bad)


def test_render_takes_an_empty_sh_rest_of_any_float_dtype():
    """SH degree 0 Gaussians built with `torch.zeros(n, 0, 3)` (float32 by default) around
    float64 tensors rendered before dtypes were checked; that empty shN holds no values, so
    the one-dtype check does not refuse it."""
    gs, V, K, W, H, bg = make_scene("mixed")
    deg0 = gs.with_sh_degree(0)
    want = rasterization(deg0, V, K, W, H, backend="cpu", background=bg)
    for empty in (torch.zeros(len(gs), 0, 3), torch.zeros(len(gs), 0, 3, dtype=torch.float16)):
        loose = Gaussians(deg0.means, deg0.quats, deg0.scales, deg0.opacities, deg0.sh0, empty)
        got = rasterization(loose, V, K, W, H, backend="cpu", background=bg)
        assert torch.equal(got.rgb, want.rgb) and torch.equal(got.depth, want.depth)


def test_render_takes_sizes_and_backgrounds_that_mean_the_same():
    """An integral float size is that many pixels; a background per camera shaped like the
    images ([C,1,1,3], as a trainer adds it to them) or broadcasting ([1,3]) is the [C,3] one
    (gsplat's layout)."""
    gs, V, K, W, H, _ = make_scene("mixed")
    rows = torch.tensor([[0.2, 0.5, 0.9], [0.9, 0.1, 0.3]], dtype=F64)
    want = rasterization(gs, V, K, W, H, backend="cpu", background=rows).rgb
    assert want.shape == (2, H, W, 3)
    assert torch.equal(rasterization(gs, V, K, float(W), float(H), backend="cpu", background=rows).rgb, want)
    assert torch.equal(rasterization(gs, V, K, W, H, backend="cpu", background=rows[:, None, None, :]).rgb, want)
    one = rasterization(gs, V, K, W, H, backend="cpu", background=rows[:1]).rgb
    assert torch.equal(one, rasterization(gs, V, K, W, H, backend="cpu", background=tuple(rows[0].tolist())).rgb)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to put the inputs on")
def test_render_cpu_returns_images_on_the_gaussians_device():
    gs, V, K, W, H, bg = make_scene("mixed")
    ts = [getattr(gs, p).cuda().requires_grad_(True) for p in PARAMS]
    out = rasterization(Gaussians(*ts), V.cuda(), K.cuda(), W, H, backend="cpu", background=bg)
    assert out.rgb.device.type == out.alpha.device.type == out.depth.device.type == "cuda"
    here = rasterization(gs, V, K, W, H, backend="cpu", background=bg)
    assert torch.equal(out.rgb.cpu(), here.rgb)
    out.rgb.sum().backward()
    assert ts[0].grad is not None and ts[0].grad.device.type == "cuda"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_backend_resolution_without_cuda():
    assert resolve_backend("auto") == "cpu"
    assert resolve_backend("cpu") == "cpu"
    with pytest.raises(SplatfilmError, match="CUDA"):
        resolve_backend("gsplat")
    gs, V, K, W, H, bg = make_scene("big")
    a = rasterization(gs, V, K, W, H)  # auto
    b = rasterization(gs, V, K, W, H, backend="cpu")
    assert a.info["backend"] == "cpu" and torch.equal(a.rgb, b.rgb)


# ---- gradients of the whole pipeline ---------------------------------------------------------

PARAMS = ("means", "quats", "scales", "opacities", "sh0", "shN")


def smooth_scene():
    """Six broad, semi-transparent Gaussians filling two small views: every (pixel, Gaussian)
    alpha is well inside (1/255, 0.999), T stays far above 1e-4, every box covers the whole
    image, colours stay positive (no clamp) and centres stay inside the tangent clamp, so
    rgb, alpha and depth are smooth in every raw parameter."""
    g = torch.Generator().manual_seed(21)
    n = 6
    op = 0.25 + 0.3 * torch.rand(n, generator=g, dtype=F64)
    gs = Gaussians(
        means=torch.randn(n, 3, generator=g, dtype=F64) * 0.15,
        quats=torch.randn(n, 4, generator=g, dtype=F64),
        scales=torch.log(0.5 + 0.3 * torch.rand(n, 3, generator=g, dtype=F64)),
        opacities=torch.log(op) - torch.log1p(-op),
        sh0=0.3 * torch.randn(n, 1, 3, generator=g, dtype=F64),
        shN=0.1 * torch.randn(n, 15, 3, generator=g, dtype=F64),
    )
    V = torch.stack([look_at((0.0, -3.0, 0.4), (0, 0, 0)), look_at((2.5, -1.0, -0.5), (0, 0, 0))])
    K = torch.stack([intrinsics(30.0, 30.0, 6.0, 5.5), intrinsics(28.0, 29.0, 6.5, 5.0)])
    return gs, V, K, 12, 11


def test_smooth_scene_margins():
    gs, V, K, W, H = smooth_scene()
    out = rasterization(gs, V, K, W, H, backend="cpu")
    m, r = out.info["means2d"].detach(), out.info["radii"]
    assert ((m - r <= 0.5) & (m + r >= torch.tensor([W - 0.5, H - 0.5], dtype=F64))).all()  # boxes cover the image
    ref = reference_render(gs, V, K, W, H, 3)
    _compare(out, ref, F64)
    means2d, conics = out.info["means2d"].detach(), out.info["conics"].detach()
    ys, xs = torch.meshgrid(torch.arange(H, dtype=F64) + 0.5, torch.arange(W, dtype=F64) + 0.5, indexing="ij")
    dx = means2d[..., 0, None, None] - xs
    dy = means2d[..., 1, None, None] - ys
    a, b, c = (conics[..., i, None, None] for i in range(3))
    raw = gs.activated_opacities[None, :, None, None] * torch.exp(-(0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy))
    assert raw.min() > 3 / 255 and raw.max() < 0.95
    assert (1 - out.alpha).min() > 1e-3
    campos = torch.inverse(V)[:, :3, 3]
    rgb = eval_sh(3, gs.sh[None], gs.means[None] - campos[:, None])
    assert rgb.min() > 0.1


@pytest.mark.parametrize("mode", ["classic", "antialiased", "per-gaussian"])
def test_render_gradcheck_raw_params(mode):
    """Finite differences vs our analytic gradient, through rgb, alpha and depth: the full
    Jacobian in classic mode, random projections v^T J u (fast_mode) in antialiased mode."""
    gs, V, K, W, H = smooth_scene()
    tensors = [getattr(gs, p).clone().requires_grad_(True) for p in PARAMS]
    if mode == "per-gaussian":
        mode = every_other(len(gs))

    def fn(*ts):
        out = rasterization(Gaussians(*ts), V, K, W, H, backend="cpu", background=(0.3, 0.2, 0.1), rasterize_mode=mode)
        return out.rgb, out.alpha, out.depth

    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=not isinstance(mode, str) or mode != "classic")


def test_render_gradients_deterministic():
    gs, V, K, W, H, bg = make_scene("dense")

    def grads():
        ts = [getattr(gs, p).clone().requires_grad_(True) for p in PARAMS]
        out = rasterization(Gaussians(*ts), V, K, W, H, backend="cpu", background=bg)
        g = torch.Generator().manual_seed(0)
        loss = sum((t * torch.randn(t.shape, generator=g, dtype=F64)).sum() for t in (out.rgb, out.alpha, out.depth))
        loss.backward()
        return [t.grad for t in ts]

    first, second = grads(), grads()
    for name, a, b in zip(PARAMS, first, second):
        assert torch.equal(a, b), name
        assert a.abs().max() > 0, name


# ---- render modes and AbsGS's absolute gradients ------------------------------------------------


def test_render_modes_return_gsplats_colour_and_depths(monkeypatch):
    """render_mode as gsplat's: "D" and "RGB+D" the accumulated depth (the reference's expected
    depth times its alpha), "ED" and "RGB+ED" (the default) the expected depth, "RGB" no depth,
    "D" and "ED" no colour and no SH evaluated; features composite the same in every mode."""
    gs, V, K, W, H, bg = make_scene("mixed")
    rgb, alpha, depth, _ = reference_render(gs, V, K, W, H, 3, bg)
    ids = torch.nn.functional.one_hot(torch.arange(len(gs)) % 3, 3).to(F64)
    outs = {m: rasterization(gs, V, K, W, H, backend="cpu", background=bg, render_mode=m, features=ids)
            for m in RENDER_MODES}
    default = rasterization(gs, V, K, W, H, backend="cpu", background=bg, features=ids)
    for m in ("RGB", "RGB+D", "RGB+ED"):
        torch.testing.assert_close(outs[m].rgb, rgb, rtol=0, atol=1e-9)
    for m in ("D", "RGB+D"):
        torch.testing.assert_close(outs[m].depth, depth * alpha, rtol=1e-9, atol=1e-9)
    covered = alpha > 1e-3
    for m in ("ED", "RGB+ED"):
        torch.testing.assert_close(outs[m].depth[covered], depth[covered], rtol=1e-9, atol=1e-9)
    assert outs["RGB"].depth is None and outs["D"].rgb is None and outs["ED"].rgb is None
    assert (depth * alpha - depth).abs().max() > 0.5  # partly covered pixels: the two depths differ
    for m, out in outs.items():
        torch.testing.assert_close(out.alpha, alpha, rtol=0, atol=1e-9)
        assert torch.equal(out.features, default.features), m
    assert torch.equal(default.rgb, outs["RGB+ED"].rgb) and torch.equal(default.depth, outs["RGB+ED"].depth)

    def no_sh(*args, **kwargs):
        raise AssertionError("a depth-only render evaluated SH")

    from splatfilm.render import rendering

    monkeypatch.setattr(rendering, "fused_spherical_harmonics", no_sh)
    assert torch.equal(rasterization(gs, V, K, W, H, backend="cpu", render_mode="D").depth, outs["D"].depth)
    with pytest.raises(SplatfilmError, match="unknown render_mode 'RGBD'"):
        rasterization(gs, V, K, W, H, backend="cpu", render_mode="RGBD")


def absgrad_scene():
    """Forty Gaussians (SH degree 1, float64, leaves with gradients) in two views of 2 x 2
    tiles, and fixed random loss weights on colour, alpha and expected depth."""
    src = random_gaussians(40, 1, F64, seed=10)
    gs = Gaussians(*[getattr(src, p).clone().requires_grad_(True) for p in PARAMS])
    V = torch.stack([look_at((0.3, -4.0, 1.0), (0, 0, 0)), look_at((1.0, 0.6, 0.2), (-1.0, 0.3, 0.0))])
    K = torch.stack([intrinsics(25.0, 24.0, 11.0, 9.5), intrinsics(20.0, 20.0, 12.0, 9.0)])
    W, H = 23, 19
    g = torch.Generator().manual_seed(0)
    weights = [torch.randn(2, H, W, k, generator=g, dtype=F64) * s for k, s in ((3, 1.0), (1, 1.0), (1, 0.1))]
    return gs, V, K, W, H, weights


def test_absgrad_sums_each_pixels_absolute_gradient_of_the_2d_means():
    """rasterization(absgrad=True) leaves info["means2d"].absgrad: per Gaussian and camera the sum over
    pixels of |d(pixel's loss terms) / d(mean x)| and |... / d(mean y)| (gsplat's
    v_means2d_abs), here against autograd through the reference compositor with a copy of the
    2D means per pixel, so that each copy's gradient is one pixel's term."""
    gs, V, K, W, H, (w_rgb, w_alpha, w_depth) = absgrad_scene()
    bg = (0.2, 0.5, 0.9)

    def ours():
        out = rasterization(gs, V, K, W, H, backend="cpu", background=bg, absgrad=True)
        m2 = out.info["means2d"]
        m2.retain_grad()
        ((out.rgb * w_rgb).sum() + (out.alpha * w_alpha).sum() + (out.depth * w_depth).sum()).backward()
        return m2.grad, m2.absgrad

    grad, absgrad = ours()
    assert absgrad.shape == (2, len(gs), 2) and absgrad.dtype == F64
    means2d, conics, ops, feats, radii, depths = (t.detach() for t in reference_stages(gs, V, K, W, H, 1))
    per_pixel = means2d[..., None].expand(-1, -1, -1, H * W).clone().requires_grad_(True)  # [C,N,2,H*W]
    acc, alpha, _ = rasterize_to_pixels_reference(per_pixel, conics, ops, feats, radii, depths, W, H)
    rgb = acc[..., :3] + (1 - alpha) * torch.tensor(bg, dtype=F64)
    depth = acc[..., 3:] / alpha.clamp_min(1e-10)
    ((rgb * w_rgb).sum() + (alpha * w_alpha).sum() + (depth * w_depth).sum()).backward()
    torch.testing.assert_close(grad, per_pixel.grad.sum(-1), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(absgrad, per_pixel.grad.abs().sum(-1), rtol=1e-10, atol=1e-12)
    # Pixels pull most Gaussians both ways: the sums of absolute values are not |sum|.
    assert ((absgrad - grad.abs()) > 1e-3 * absgrad.amax()).float().mean() > 0.3
    assert (absgrad > 0).all(-1).sum() > 40
    assert torch.equal(ours()[1], absgrad)  # deterministic, and replaced (not added to) by a backward
    plain = rasterization(gs, V, K, W, H, backend="cpu")
    plain.rgb.sum().backward()
    assert not hasattr(plain.info["means2d"], "absgrad")


def test_absgrad_of_a_panorama_is_of_the_gaussians_own_draws():
    """An equirectangular render draws Gaussians on its seam twice; info's means2d (one row per
    Gaussian) gets the absgrad of its own draw, which bounds its gradient."""
    g = torch.Generator().manual_seed(3)
    n = 30
    pts = torch.randn(n, 3, generator=g, dtype=F64)
    src = Gaussians.from_activated(2.0 * pts / pts.norm(dim=1, keepdim=True), torch.randn(n, 4, generator=g, dtype=F64),
                                   torch.full((n, 3), 0.25, dtype=F64), torch.full((n,), 0.6, dtype=F64),
                                   colors=torch.rand(n, 3, generator=g, dtype=F64))
    gs = Gaussians(*[getattr(src, p).clone().requires_grad_(True) for p in PARAMS])
    W, H = 48, 24
    K = intrinsics(W / (2 * torch.pi), H / torch.pi, W / 2, H / 2)[None]
    drawn = project_gaussians(gs.means, quat_scale_to_covar(gs.quats, gs.activated_scales), torch.eye(4, dtype=F64)[None],
                              K, W, H, camera_model="EQUIRECTANGULAR").gaussian_ids
    assert drawn is not None and len(drawn) > n  # some straddle the seam
    out = rasterization(gs, torch.eye(4, dtype=F64)[None], K, W, H, backend="cpu", camera_model="EQUIRECTANGULAR",
                        absgrad=True)
    m2 = out.info["means2d"]
    m2.retain_grad()
    (out.rgb * torch.randn(out.rgb.shape, generator=g, dtype=F64)).sum().backward()
    assert m2.absgrad.shape == (1, n, 2)
    assert (m2.absgrad >= m2.grad.abs() - 1e-12).all() and m2.absgrad.amax() > 0


def test_default_strategy_densifies_by_absgrad_on_the_cpu():
    """gsplat's DefaultStrategy(absgrad=True) reads info["means2d"].absgrad after the backward
    (an AttributeError before the cpu backend set it): its statistic is that, in [-1, 1]
    screen units, where gsplat's CUDA backend would have put it."""
    from gsplat.strategy import DefaultStrategy

    gs, V, K, W, H, (w_rgb, _, _) = absgrad_scene()
    # float32, as fits train (gsplat's strategy keeps its statistics in float32)
    params = torch.nn.ParameterDict({p: torch.nn.Parameter(getattr(gs, p).detach().float()) for p in PARAMS})
    opts = {p: torch.optim.Adam([v], lr=1e-3) for p, v in params.items()}
    strategy = DefaultStrategy(absgrad=True, verbose=False, refine_start_iter=100)
    state = strategy.initialize_state()
    out = rasterization(Gaussians(**params), V, K, W, H, backend="cpu", absgrad=True)
    strategy.step_pre_backward(params, opts, state, 0, out.info)
    (out.rgb * w_rgb.float()).sum().backward()
    strategy.step_post_backward(params, opts, state, 0, out.info, packed=False)
    absgrad = out.info["means2d"].absgrad * torch.tensor([W / 2 * 2, H / 2 * 2])
    seen = (out.info["radii"] > 0).all(-1)
    torch.testing.assert_close(state["grad2d"], (absgrad.norm(dim=-1) * seen).sum(0))
    assert state["grad2d"].max() > 0
