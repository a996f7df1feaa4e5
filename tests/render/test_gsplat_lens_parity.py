"""Lens models on both backends, on a CUDA machine: rasterization(..., backend='gsplat') against 'cpu'.

Skipped where CUDA is not available (CI). Run with `-s` to see the figures:
    python -m pytest tests/render/test_gsplat_lens_parity.py -s
gsplat draws an undistorted fisheye with the same EWA maths as ours (tight agreement), and
distorted cameras with its 3DGUT path (unscented transform + evaluation along each pixel's
ray), which only approximately matches our exact-Jacobian EWA: looser thresholds there.
"""

from __future__ import annotations

import math

import pytest
import torch

from helpers import intrinsics, look_at, random_gaussians
from splatfilm.errors import SplatfilmError
from splatfilm.render import rasterization
from splatfilm.scene.gaussians import Gaussians

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU for gsplat"),
]

PARAMS = ("means", "quats", "scales", "opacities", "sh0", "shN")
W, H = 160, 120
# (model, distortion, focal scale, rgb PSNR floor in dB, gradient cosine floor)
CASES = [
    ("OPENCV_FISHEYE", [0, 0, 0, 0, 0, 0], 0.6, 45.0, 0.99),
    ("OPENCV", [-0.2, 0.05, 0.0, 0.0, 0.001, -0.002], 1.0, 28.0, 0.9),
    ("OPENCV_FISHEYE", [0.05, -0.01, 0.002, 0.0, 0.0, 0.0], 0.6, 28.0, 0.9),
]


def _run(backend, gs, V, K, model, d, weights):
    leaves = [getattr(gs, p).detach().clone().requires_grad_(True) for p in PARAMS]
    out = rasterization(Gaussians(*leaves), V, K, W, H, backend=backend, sh_degree=3, camera_model=model,
                        distortion=torch.tensor([d] * V.shape[0]))
    rgb, alpha = out.rgb.cpu(), out.alpha.cpu()
    ((rgb * weights[0]).sum() + (alpha * weights[1]).sum()).backward()
    grads = {p: t.grad.detach().cpu().double() for p, t in zip(PARAMS, leaves)}
    return rgb.detach().double(), alpha.detach().double(), grads


def test_lens_models_agree_across_backends():
    pytest.importorskip("gsplat")
    gs = random_gaussians(3000, 3, torch.float32, seed=7, spread=0.9, sh_rest=0.2, log_scale=(-3.0, 0.4))
    V = torch.stack([look_at((0.3, -3.0, 0.8), (0, 0, 0)), look_at((2.0, 1.0, 0.3), (-0.2, 0.1, 0.0))]).float()
    g = torch.Generator().manual_seed(0)
    weights = (torch.randn(2, H, W, 3, generator=g), torch.randn(2, H, W, 1, generator=g))
    failures = []
    for model, d, scale, psnr_floor, cos_floor in CASES:
        K = torch.stack([intrinsics(150.0 * scale, 150.0 * scale, W / 2, H / 2)] * 2).float()
        rgb_g, alpha_g, grads_g = _run("gsplat", gs, V, K, model, d, weights)
        rgb_c, alpha_c, grads_c = _run("cpu", gs, V, K, model, d, weights)
        mse = float(((rgb_g - rgb_c) ** 2).mean())
        psnr = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
        print(f"\n{model} {d}: rgb PSNR {psnr:.1f} dB, mean alpha gsplat {float(alpha_g.mean()):.3f} "
              f"cpu {float(alpha_c.mean()):.3f}")
        checks = [(psnr > psnr_floor, f"{model} {d}: PSNR {psnr:.1f} dB"),
                  (float(rgb_c.mean()) > 0.05, f"{model} {d}: black CPU image")]
        for name in PARAMS:
            a, b = grads_c[name].flatten(), grads_g[name].flatten()
            cos = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
            print(f"  d/d{name:<9} cosine {cos:.4f}")
            checks.append((cos > cos_floor and bool(torch.isfinite(b).all()), f"{model} {d}: d/d{name} cosine {cos:.3f}"))
        failures += [msg for ok, msg in checks if not ok]
    K = torch.stack([intrinsics(W / (2 * math.pi), H / math.pi, W / 2, H / 2)] * 2).float()
    with pytest.raises(SplatfilmError, match="no equirectangular camera"):
        rasterization(gs, V, K, W, H, backend="gsplat", camera_model="EQUIRECTANGULAR")
    assert not failures, "; ".join(failures)
