"""rasterization(..., features=...): extra per-Gaussian channels composited in the same call as the
colour, with its blend weights, leaving colour, alpha and depth as they were."""

from __future__ import annotations

import pytest
import torch

from helpers import intrinsics, look_at, random_gaussians
from splatfilm.errors import SplatfilmError
from splatfilm.render import rasterization


def _scene():
    gs = random_gaussians(60, sh_degree=1, dtype=torch.float32, seed=3)
    V = torch.stack([look_at((0.0, -3.0, 0.5), (0, 0, 0)), look_at((2.0, -2.5, 0.3), (0, 0, 0))]).float()
    K = intrinsics(40.0, 40.0, 24.0, 16.0).expand(2, 3, 3).float()
    return gs, V, K


def test_features_leave_colour_alone_and_one_hots_sum_to_alpha():
    gs, V, K = _scene()
    plain = rasterization(gs, V, K, 48, 32, backend="cpu", background=(0.2, 0.3, 0.4))
    owner = torch.arange(60) % 3
    onehot = torch.nn.functional.one_hot(owner, 3).float()
    out = rasterization(gs, V, K, 48, 32, backend="cpu", background=(0.2, 0.3, 0.4), features=onehot)
    assert plain.features is None
    assert out.features.shape == (2, 32, 48, 3)
    for a, b in ((plain.rgb, out.rgb), (plain.alpha, out.alpha), (plain.depth, out.depth)):
        assert torch.equal(a, b)  # bit for bit: every channel composites on its own
    # Coverage per owner adds up to the composite alpha, with no background in the features.
    assert torch.allclose(out.features.sum(-1, keepdim=True), out.alpha, atol=1e-5)
    assert out.alpha.max() > 0.5
    # A constant feature composites to alpha times the constant.
    const = rasterization(gs, V, K, 48, 32, backend="cpu", features=torch.full((2, 60, 1), 2.5))
    assert torch.allclose(const.features, 2.5 * const.alpha, atol=1e-5)


def test_features_of_the_wrong_shape_are_one_error():
    gs, V, K = _scene()
    with pytest.raises(SplatfilmError, match="features must be"):
        rasterization(gs, V, K, 48, 32, backend="cpu", features=torch.zeros(59, 2))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU for gsplat")
def test_gsplat_composites_features_as_the_cpu_backend_does():
    pytest.importorskip("gsplat")
    gs, V, K = _scene()
    onehot = torch.nn.functional.one_hot(torch.arange(60) % 3, 3).float()
    feats = torch.cat([onehot, torch.randn(60, 2, generator=torch.Generator().manual_seed(1))], -1)
    bg = (0.2, 0.3, 0.4)
    cpu = rasterization(gs, V, K, 48, 32, backend="cpu", background=bg, features=feats)
    gpu = rasterization(gs, V, K, 48, 32, backend="gsplat", background=bg, features=feats)
    plain = rasterization(gs, V, K, 48, 32, backend="gsplat", background=bg)
    assert gpu.features.shape == cpu.features.shape
    # Our SH evaluation feeding gsplat's plain-colour path: the colour is gsplat's own to float precision.
    assert (gpu.rgb - plain.rgb).abs().max() < 1e-4 and (gpu.depth - plain.depth).abs().max() < 1e-4
    assert (gpu.features.cpu() - cpu.features).abs().max() < 2e-3
    assert (gpu.features[..., :3].sum(-1, keepdim=True) - gpu.alpha).abs().max() < 1e-4
