"""What the gsplat backend draws beyond tests/render/test_gsplat_parity.py and
test_gsplat_lens_parity.py, against the cpu backend, on a CUDA machine: per-Gaussian
rasterize modes (classic and antialiased assets in one call, `_render_gsplat_mixed`), SH
degree 4, extra feature channels with per-camera features and backgrounds, a lower SH degree
than stored, near and far planes, an empty scene, render modes and AbsGS's absgrad.

The CUDA tests are skipped where CUDA is not available (CI); run with `-s` to see the figures:
    python -m pytest tests/render/test_gsplat_options_parity.py -s -m cuda
Each builds its cases in a `*_failures` function that returns what disagrees. The last test
runs those same functions on the CPU through `_gsplat_on_the_cpu`, a stand-in for
`gsplat.rasterization` made of the cpu backend: splatfilm's own gsplat-path code (the mixed
path's per-camera loop and compensated opacities, the features' SH and backgrounds) runs
unchanged, and the checks must pass there and fail when the stand-in is made wrong in one
group, one SH band, one plane or the features' background. Tolerances are test_gsplat_parity.py's.
"""

from __future__ import annotations

import math
import types

import pytest
import torch

from helpers import intrinsics, look_at, random_gaussians
from splatfilm.render import rasterization, rasterize_modes
from splatfilm.scene.gaussians import Gaussians

PARAMS = ("means", "quats", "scales", "opacities", "sh0", "shN")
W, H = 96, 72
N_CLASSIC = 1500  # the mixed scene's first group; the rest render antialiased


def _cameras(focal_scale: float = 1.0):
    V = torch.stack([look_at((0.3, -4.0, 1.0), (0, 0, 0)), look_at((2.5, 1.8, 0.6), (-0.2, 0.1, 0.0))]).float()
    f = 90.0 * focal_scale
    K = torch.stack([intrinsics(f, f * 0.98, W / 2 + 0.5, H / 2 - 1.5), intrinsics(f * 0.9, f * 0.9, W / 2, H / 2)])
    return V, K.float()


def _backgrounds():
    return torch.tensor([[0.2, 0.5, 0.9], [1.0, 1.0, 1.0]])


def _mixed_scene():
    """Two assets: a classic one of mid-size Gaussians, and an antialiased one of Gaussians
    under a pixel wide, where the antialiased compensation dims them most."""
    classic = random_gaussians(N_CLASSIC, 3, torch.float32, seed=200, spread=0.8, sh_rest=0.3)
    fine = random_gaussians(1500, 3, torch.float32, seed=201, spread=0.6, log_scale=(-4.2, 0.4), opacity=(0.5, 0.99))
    gs = Gaussians.concat([classic, fine])
    return gs, rasterize_modes([(len(classic), "classic"), (len(fine), "antialiased")])


def _disagreements(label: str, gpu, cpu, psnr_floor: float = 50.0) -> list[str]:
    """What differs between two RenderOutputs beyond test_gsplat_parity.py's tolerances (with
    a PSNR floor below 50 dB, a lens through gsplat's own model: the PSNR alone, as
    test_gsplat_lens_parity.py checks); printed as figures."""
    rgb_g, rgb_c = gpu.rgb.detach().cpu().double(), cpu.rgb.detach().cpu().double()
    alpha_g, alpha_c = gpu.alpha.detach().cpu().double(), cpu.alpha.detach().cpu().double()
    if rgb_g.shape != rgb_c.shape or alpha_g.shape != alpha_c.shape:
        return [f"{label}: shapes {tuple(rgb_g.shape)} {tuple(rgb_c.shape)}"]
    mse = float(((rgb_g - rgb_c) ** 2).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
    err_rgb, err_alpha = float((rgb_g - rgb_c).abs().max()), float((alpha_g - alpha_c).abs().max())
    checks = [(psnr > psnr_floor, f"PSNR {psnr:.1f} dB"), (float(alpha_c.mean()) > 0.1, "a nearly empty CPU image")]
    figures = f"rgb PSNR {psnr:.1f} dB, max |d rgb| {err_rgb:.2e}, max |d alpha| {err_alpha:.2e}"
    if psnr_floor >= 50.0 and cpu.depth is not None:
        depth_g, depth_c = gpu.depth.detach().cpu().double(), cpu.depth.detach().cpu().double()
        solid = alpha_c[..., 0] > 0.2
        rel = ((depth_g - depth_c)[..., 0].abs() / depth_c[..., 0].abs().clamp_min(1e-6))[solid]
        mean, p999 = float(rel.mean()), float(torch.quantile(rel, 0.999))
        figures += f", depth rel. error (alpha > 0.2) mean {mean:.2e} p99.9 {p999:.2e}"
        checks += [(err_rgb < 5e-3, f"max rgb error {err_rgb:.2e}"),
                   (err_alpha < 5e-3, f"max alpha error {err_alpha:.2e}"),
                   (mean < 1e-4, f"mean depth rel. error {mean:.2e}"), (p999 < 1e-3, f"p99.9 depth rel. error {p999:.2e}")]
    if (gpu.features is None) != (cpu.features is None):
        checks.append((False, "features on one backend only"))
    elif cpu.features is not None:
        err = float((gpu.features.detach().cpu().double() - cpu.features.detach().double()).abs().max())
        figures += f", max |d features| {err:.2e}"
        checks.append((err < 2e-3, f"max features error {err:.2e}"))  # test_render_features.py's
    print(f"\n[{label}] {figures}")
    return [f"[{label}] {msg}" for ok, msg in checks if not ok]


def _both(label: str, gs, V, K, psnr_floor: float = 50.0, **kwargs) -> list[str]:
    return _disagreements(label, rasterization(gs, V, K, W, H, backend="gsplat", **kwargs),
                          rasterization(gs, V, K, W, H, backend="cpu", **kwargs), psnr_floor)


def _mixed_failures() -> list[str]:
    gs, mixed = _mixed_scene()
    V, K = _cameras()
    bg = _backgrounds()
    # The scene tells the modes apart: the mixed image is neither all-classic nor all-antialiased.
    on_cpu = {m: rasterization(gs, V, K, W, H, backend="cpu", rasterize_mode=m).rgb
              for m in ("classic", "antialiased")}
    own = rasterization(gs, V, K, W, H, backend="cpu", rasterize_mode=mixed).rgb
    failures = [f"[mixed] the CPU's mixed image is {m}'s (max diff {d:.3f})" for m, d in
                ((m, float((own - img).abs().max())) for m, img in on_cpu.items()) if d < 0.05]
    onehot = torch.nn.functional.one_hot((~mixed).long(), 2).float()  # coverage of each asset
    extra = torch.cat([onehot, torch.randn(len(gs), 1, generator=torch.Generator().manual_seed(3))], -1)
    fisheye_K = _cameras(0.6)[1]
    failures += _both("mixed, 2 cameras, a background each", gs, V, K, rasterize_mode=mixed, background=bg)
    failures += _both("mixed, 1 camera, features", gs, V[1:], K[1:], rasterize_mode=mixed, background=(0.3, 0.2, 0.1),
                      features=extra)
    failures += _both("mixed, 2 cameras, near and far planes", gs, V, K, rasterize_mode=mixed, near_plane=3.0,
                      far_plane=5.0)
    failures += _both("all antialiased as a per-Gaussian mask", gs, V, K,
                      rasterize_mode=torch.ones(len(gs), dtype=torch.bool), background=bg)
    # An undistorted fisheye: gsplat's EWA fisheye, test_gsplat_lens_parity.py's 45 dB floor.
    failures += _both("mixed, undistorted fisheye, 2 cameras", gs, V, fisheye_K, 45.0, rasterize_mode=mixed,
                      background=bg, camera_model="OPENCV_FISHEYE", distortion=torch.zeros(2, 6))
    return failures


def _grad_run(backend: str, gs: Gaussians, V, K, weights, **kwargs):
    leaves = [getattr(gs, p).detach().clone().requires_grad_(True) for p in PARAMS]
    out = rasterization(Gaussians(*leaves), V, K, W, H, backend=backend, **kwargs)
    ((out.rgb.cpu() * weights[0]).sum() + (out.alpha.cpu() * weights[1]).sum()).backward()
    return out, {p: t.grad.detach().cpu().double() for p, t in zip(PARAMS, leaves)}


def _sh4_failures() -> list[str]:
    gs = random_gaussians(2500, 4, torch.float32, seed=300, spread=0.8, sh_rest=0.4)
    V, K = _cameras()
    bg = _backgrounds()
    g = torch.Generator().manual_seed(0)
    weights = (torch.randn(2, H, W, 3, generator=g), torch.randn(2, H, W, 1, generator=g))
    gpu, grads_g = _grad_run("gsplat", gs, V, K, weights, background=bg)
    cpu, grads_c = _grad_run("cpu", gs, V, K, weights, background=bg)
    failures = _disagreements("SH degree 4, 2 cameras, a background each", gpu, cpu)
    three = rasterization(gs, V, K, W, H, backend="cpu", background=bg, sh_degree=3)
    band4 = float((cpu.rgb.detach() - three.rgb).abs().max())
    if band4 < 0.05:
        failures.append(f"[SH degree 4] band 4 changes the CPU image by only {band4:.3f}")
    for name in PARAMS:
        a, b = grads_c[name].flatten(), grads_g[name].flatten()
        cos = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
        rel = float((a - b).norm() / b.norm().clamp_min(1e-30))
        print(f"  d/d{name:<9} cosine {cos:.6f}  rel. error {rel:.2e}")
        if not (cos > 0.99 and rel < 0.05):
            failures.append(f"[SH degree 4] d/d{name} cosine {cos:.4f} rel. error {rel:.3f}")
    # With features, band 4 is ours (render's SH feeding gsplat's plain colours).
    extra = torch.rand(len(gs), 2, generator=g)
    failures += _both("SH degree 4 with features", gs, V, K, background=bg, features=extra)
    return failures


def _options_failures() -> list[str]:
    gs = random_gaussians(3000, 3, torch.float32, seed=400, spread=0.8, sh_rest=0.3)
    V, K = _cameras()
    bg = _backgrounds()
    per_camera = torch.randn(2, len(gs), 3, generator=torch.Generator().manual_seed(5))
    failures = _both("features per camera, a background each, SH degree 0 of 3", gs, V, K, sh_degree=0,
                     background=bg, features=per_camera)
    failures += _both("SH degree 1 of 3, near and far planes", gs, V, K, sh_degree=1, background=bg,
                      near_plane=3.5, far_plane=4.5)
    failures += _both("antialiased, features, undistorted fisheye", gs, V, _cameras(0.6)[1], 45.0,
                      rasterize_mode="antialiased", features=per_camera[0], camera_model="OPENCV_FISHEYE")
    # The planes cut the scene: without them the image is another.
    cut = rasterization(gs, V, K, W, H, backend="cpu", sh_degree=1, background=bg, near_plane=3.5, far_plane=4.5)
    whole = rasterization(gs, V, K, W, H, backend="cpu", sh_degree=1, background=bg)
    if float((cut.alpha - whole.alpha).abs().max()) < 0.2:
        failures.append("[near and far planes] they cut nothing on the CPU")
    return failures


def _modes_failures() -> list[str]:
    """Every render_mode (with features too) and absgrad against the cpu backend."""
    gs = random_gaussians(2000, 3, torch.float32, seed=500, spread=0.8, sh_rest=0.3)
    V, K = _cameras()
    bg = _backgrounds()
    extra = torch.rand(len(gs), 2, generator=torch.Generator().manual_seed(6))
    failures = []
    for mode in ("RGB", "D", "ED", "RGB+D"):
        for features in (None, extra):
            label = f"render_mode {mode}{', features' if features is not None else ''}"
            gpu, cpu = (rasterization(gs, V, K, W, H, backend=b, background=bg, render_mode=mode, features=features)
                        for b in ("gsplat", "cpu"))
            if (gpu.rgb is None) != (cpu.rgb is None) or (gpu.depth is None) != (cpu.depth is None):
                failures.append(f"[{label}] returns other fields")
            elif cpu.rgb is not None:
                failures += _disagreements(label, gpu, cpu)
            else:  # depth only: the depth (where coverage is solid) and the features
                solid = cpu.alpha[..., 0] > 0.2
                a, b = (o.depth.detach().cpu().double()[..., 0][solid] for o in (gpu, cpu))
                err = float(torch.quantile((a - b).abs() / b.abs().clamp_min(1e-6), 0.999))
                if err > 1e-3:
                    failures.append(f"[{label}] p99.9 depth rel. error {err:.2e}")
                if features is not None and float((gpu.features.cpu() - cpu.features).abs().max()) > 2e-3:
                    failures.append(f"[{label}] max features error")
    g = torch.Generator().manual_seed(1)
    weights = (torch.randn(2, H, W, 3, generator=g), torch.randn(2, H, W, 1, generator=g))
    absgrads = []
    for backend in ("gsplat", "cpu"):
        leaves = [getattr(gs, p).detach().clone().requires_grad_(True) for p in PARAMS]
        out = rasterization(Gaussians(*leaves), V, K, W, H, backend=backend, background=bg, absgrad=True)
        ((out.rgb.cpu() * weights[0]).sum() + (out.alpha.cpu() * weights[1]).sum()).backward()
        absgrads.append(out.info["means2d"].absgrad.detach().cpu().double().flatten())
    a, b = absgrads[1], absgrads[0]
    cos = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
    rel = float((a - b).norm() / b.norm().clamp_min(1e-30))
    print(f"  absgrad cosine {cos:.6f}  rel. error {rel:.2e}")
    if not (cos > 0.99 and rel < 0.05):
        failures.append(f"[absgrad] cosine {cos:.4f} rel. error {rel:.3f}")
    return failures


def _empty_failures() -> list[str]:
    V, K = _cameras()
    bg = _backgrounds()
    out = rasterization(Gaussians.empty(sh_degree=3), V, K, W, H, backend="gsplat", background=bg,
                        features=torch.zeros(0, 2))
    failures = []
    if not (out.alpha.abs().max() == 0 and out.depth.abs().max() == 0 and out.features.abs().max() == 0):
        failures.append("[empty] something drawn")
    if not torch.allclose(out.rgb.cpu(), bg[:, None, None, :].expand(2, H, W, 3)):
        failures.append("[empty] rgb is not the background")
    return failures


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU for gsplat")
@pytest.mark.parametrize("checks", [
    _mixed_failures,  # per-Gaussian rasterize modes match the cpu backend
    _sh4_failures,  # SH degree 4, with gradients
    _options_failures,  # features, planes and lower SH degrees
    _empty_failures,  # an empty scene is the background
    _modes_failures,  # render modes and absgrad
], ids=["rasterize_modes", "sh_degree_4", "features_planes_sh", "empty_scene", "render_modes_absgrad"])
def test_gsplat_matches_the_cpu_backend(checks):
    pytest.importorskip("gsplat")
    failures = checks()
    assert not failures, "; ".join(failures)


# ---- the same checks on the CPU, through a stand-in for gsplat.rasterization ----------------


def _gsplat_on_the_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane=0.01,
                       far_plane=1e10, sh_degree=None, packed=True, backgrounds=None, render_mode="RGB",
                       rasterize_mode="classic", camera_model="pinhole", with_ut=False, with_eval3d=False,
                       radial_coeffs=None, tangential_coeffs=None, absgrad=False):
    """`gsplat.rasterization` (1.5) for the arguments splatfilm's gsplat path passes, drawn by
    the cpu backend: colours [N,K,3] with sh_degree, or plain [C,N,D] without (composited as
    features, the background added as gsplat adds it); every render_mode as gsplat composes
    it from the accumulated depth; absgrad."""
    assert not packed
    C, n = viewmats.shape[0], means.shape[0]
    lens = {}
    if camera_model == "fisheye" or radial_coeffs is not None:
        d = torch.zeros(C, 6)
        if camera_model == "fisheye" and radial_coeffs is not None:
            d[:, :4] = radial_coeffs
        elif radial_coeffs is not None:
            d[:, :3], d[:, 4:] = radial_coeffs[:, :3], tangential_coeffs
        lens = {"camera_model": "OPENCV_FISHEYE" if camera_model == "fisheye" else "OPENCV", "distortion": d}
    common = dict(backend="cpu", near_plane=near_plane, far_plane=far_plane, rasterize_mode=rasterize_mode,
                  render_mode="RGB+D", absgrad=absgrad, **lens)
    log_scales, logits = torch.log(scales), torch.logit(opacities)
    if sh_degree is None:
        g = Gaussians(means, quats, log_scales, logits, torch.zeros(n, 1, 3), torch.zeros(n, 0, 3))
        out = rasterization(g, viewmats, Ks, width, height, features=colors, **common)
        rgb = out.features if backgrounds is None else out.features + (1 - out.alpha) * backgrounds[:, None, None]
    else:
        g = Gaussians(means, quats, log_scales, logits, colors[:, :1], colors[:, 1:])
        out = rasterization(g, viewmats, Ks, width, height, sh_degree=sh_degree, background=backgrounds, **common)
        rgb = out.rgb
    depth = out.depth / out.alpha.clamp(min=1e-10) if render_mode.endswith("ED") else out.depth
    colors = {"RGB": [rgb], "D": [depth], "ED": [depth]}.get(render_mode, [rgb, depth])
    return torch.cat(colors, -1), out.alpha, dict(out.info)


class _TorchWithoutCuda(types.ModuleType):
    """torch, but torch.device(...) is the CPU: splatfilm's gsplat path moves its tensors to
    "cuda", which this machine lacks."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def device(*args, **kwargs):
        return torch.device("cpu")


def test_the_gsplat_checks_pass_through_a_cpu_stand_in_and_catch_a_wrong_one(monkeypatch):
    gsplat = pytest.importorskip("gsplat")
    from splatfilm.render import rendering as module
    monkeypatch.setattr(module, "cuda_available", lambda: True)
    monkeypatch.setattr(module, "torch", _TorchWithoutCuda("torch"))
    monkeypatch.setattr(gsplat, "rasterization", _gsplat_on_the_cpu)
    # The stand-in agrees with the cpu backend: every check passes.
    for check in (_mixed_failures, _sh4_failures, _options_failures, _empty_failures, _modes_failures):
        assert check() == [], check.__name__

    def wrong(**change):
        def stand_in(*args, **kwargs):
            kwargs = {**kwargs, **{k: f(kwargs) for k, f in change.items()}}
            return _gsplat_on_the_cpu(*args, **kwargs)
        monkeypatch.setattr(gsplat, "rasterization", stand_in)

    # The antialiased asset 3% too faint (its compensation, say).
    wrong(opacities=lambda kw: torch.where(torch.arange(len(kw["opacities"])) < N_CLASSIC, 1.0, 0.97)
          * kw["opacities"])
    failures = _mixed_failures()
    assert any("[mixed, 2 cameras" in f for f in failures) and any("[mixed, 1 camera, features]" in f
                                                                  for f in failures), failures
    # Band 4 dropped, or taken from the wrong coefficients.
    wrong(sh_degree=lambda kw: None if kw["sh_degree"] is None else min(kw["sh_degree"], 3))
    assert any("[SH degree 4, 2 cameras" in f for f in _sh4_failures())
    # The near plane ignored.
    wrong(near_plane=lambda kw: 0.01)
    assert any("near and far planes]" in f for f in _options_failures())
    # A background on the feature channels (gsplat's N-channel background must be zero there).
    wrong(backgrounds=lambda kw: None if kw["backgrounds"] is None
          else torch.cat([kw["backgrounds"][:, :3], kw["backgrounds"][:, 3:] + 0.1], -1))
    assert any("max features error" in f for f in _options_failures())
    # Accumulated depth made expected, and expected accumulated.
    wrong(render_mode=lambda kw: {"D": "ED", "RGB+D": "RGB+ED", "ED": "D"}.get(kw["render_mode"], kw["render_mode"]))
    failures = _modes_failures()
    assert all(any(f"[render_mode {m}" in f for f in failures) for m in ("D", "ED", "RGB+D")), failures
