"""Backend parity on a CUDA machine: rasterization(..., backend='gsplat') against backend='cpu'.

Skipped where CUDA is not available (CI). Run with `-s` to see the figures:
    python -m pytest tests/render/test_gsplat_parity.py -s
One test function, so gsplat's CUDA extension is loaded (compiled, the first time) once.
"""

from __future__ import annotations

import math
import time

import pytest
import torch

from helpers import intrinsics, look_at, random_gaussians
from splatfilm.scene.gaussians import Gaussians
from splatfilm.render import rasterization

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU for gsplat"),
]

PARAMS = ("means", "quats", "scales", "opacities", "sh0", "shN")


def _scene():
    gs = Gaussians.concat([
        random_gaussians(3000, 3, torch.float32, seed=100, spread=0.8, sh_rest=0.3),
        random_gaussians(30, 3, torch.float32, seed=101, spread=0.5, log_scale=(-0.3, 0.2), opacity=(0.2, 0.7)),
    ])
    V = torch.stack([look_at((0.3, -4.0, 1.0), (0, 0, 0)), look_at((1.2, 0.8, 0.2), (-1.0, 0.3, 0.0))]).float()
    K = torch.stack([intrinsics(120.0, 118.0, 61.0, 48.5), intrinsics(80.0, 80.0, 64.0, 47.0)]).float()
    bg = torch.tensor([[0.2, 0.5, 0.9], [1.0, 1.0, 1.0]])
    return gs, V, K, 123, 97, bg


def _run(backend, gs, V, K, W, H, bg, mode, weights):
    """Render, backpropagate a fixed random loss; return images (on the CPU) and gradients."""
    leaves = [getattr(gs, p).detach().clone().requires_grad_(True) for p in PARAMS]
    t0 = time.perf_counter()
    out = rasterization(Gaussians(*leaves), V, K, W, H, backend=backend, sh_degree=3, background=bg,
                        rasterize_mode=mode)
    rgb, alpha, depth = (x.cpu() for x in (out.rgb, out.alpha, out.depth))
    w_rgb, w_alpha, w_depth, depth_mask = weights
    loss = (rgb * w_rgb).sum() + (alpha * w_alpha).sum() + (depth * w_depth * depth_mask).sum()
    loss.backward()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    grads = {p: t.grad.detach().cpu().double() for p, t in zip(PARAMS, leaves)}
    info = {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in out.info.items() if k in ("radii", "means2d", "depths")}
    return rgb.detach().double(), alpha.detach().double(), depth.detach().double(), grads, info, seconds


def test_gsplat_and_cpu_backends_agree():
    pytest.importorskip("gsplat")
    gs, V, K, W, H, bg = _scene()
    C = V.shape[0]
    g = torch.Generator().manual_seed(0)
    w_rgb = torch.randn(C, H, W, 3, generator=g)
    w_alpha = torch.randn(C, H, W, 1, generator=g)
    w_depth = torch.randn(C, H, W, 1, generator=g) * 0.1
    failures = []
    for mode in ("classic", "antialiased"):
        # The depth term only where coverage is solid (expected depth divides by alpha).
        probe = rasterization(gs, V, K, W, H, backend="cpu", sh_degree=3, rasterize_mode=mode)
        depth_mask = (probe.alpha.detach() > 0.2).float()
        weights = (w_rgb, w_alpha, w_depth, depth_mask)
        _run("gsplat", gs, V, K, W, H, bg, mode, weights)  # warm-up: CUDA context, extension load
        rgb_g, alpha_g, depth_g, grads_g, info_g, t_g = _run("gsplat", gs, V, K, W, H, bg, mode, weights)
        rgb_c, alpha_c, depth_c, grads_c, info_c, t_c = _run("cpu", gs, V, K, W, H, bg, mode, weights)

        mse = float(((rgb_g - rgb_c) ** 2).mean())
        psnr = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
        err_rgb = float((rgb_g - rgb_c).abs().max())
        err_alpha = float((alpha_g - alpha_c).abs().max())
        solid = alpha_c[..., 0] > 0.2
        rel_depth = ((depth_g - depth_c)[..., 0].abs() / depth_c[..., 0].abs().clamp_min(1e-6))[solid]
        depth_p999 = float(torch.quantile(rel_depth, 0.999))
        radii_same = float((info_g["radii"] == info_c["radii"]).all(-1).float().mean())
        both = (info_g["radii"] > 0).all(-1) & (info_c["radii"] > 0).all(-1)
        err_m2 = float((info_g["means2d"].double() - info_c["means2d"].double()).abs()[both].max())
        print(f"\n[{mode}] N={len(gs)} C={C} {W}x{H}  gsplat {t_g * 1e3:.1f} ms, cpu {t_c * 1e3:.1f} ms (forward+backward)")
        print(f"  rgb PSNR {psnr:.1f} dB, max |d rgb| {err_rgb:.2e}, max |d alpha| {err_alpha:.2e}, "
              f"expected depth rel. error (alpha > 0.2) mean {float(rel_depth.mean()):.2e} p99.9 {depth_p999:.2e} "
              f"max {float(rel_depth.max()):.2e}")
        print(f"  radii identical for {radii_same * 100:.3f}% of (camera, Gaussian); max |d means2d| {err_m2:.2e} px")
        checks = [
            (psnr > 50, f"PSNR {psnr:.1f} dB"),
            (err_rgb < 5e-3, f"max rgb error {err_rgb:.2e}"),
            (err_alpha < 5e-3, f"max alpha error {err_alpha:.2e}"),
            (float(rel_depth.mean()) < 1e-4, f"mean depth rel. error {float(rel_depth.mean()):.2e}"),
            (depth_p999 < 1e-3, f"p99.9 depth rel. error {depth_p999:.2e}"),
            (radii_same > 0.995, f"radii agree on {radii_same:.4f}"),
            (err_m2 < 1e-2, f"means2d error {err_m2:.2e} px"),
        ]
        for name in PARAMS:
            a, b = grads_c[name].flatten(), grads_g[name].flatten()
            cos = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
            rel = float((a - b).norm() / b.norm().clamp_min(1e-30))
            print(f"  d/d{name:<9} |grad| gsplat {float(b.norm()):.3e} cpu {float(a.norm()):.3e}  cosine {cos:.6f}  rel. error {rel:.2e}")
            checks += [(cos > 0.99, f"d/d{name} cosine {cos:.4f}"), (rel < 0.05, f"d/d{name} rel. error {rel:.3f}")]
        failures += [f"[{mode}] {msg}" for ok, msg in checks if not ok]
    assert not failures, "; ".join(failures)
