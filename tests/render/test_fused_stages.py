"""The fused CPU stages against their readable references, in float64, outputs and gradients:
the projection against quat_scale_to_covar + project_gaussians (on a cloud with Gaussians
behind, beside (clamped tangents) and in front of two cameras), the colour against
spherical_harmonics at every degree, and band 4 against gsplat's own reference."""

from __future__ import annotations

import pytest
import torch

from gsplat.cuda._torch_impl import _spherical_harmonics
from helpers import intrinsics, look_at
from splatfilm.render.fused_projection import fully_fused_projection
from splatfilm.render.projection import project_gaussians, quat_scale_to_covar
from splatfilm.render.spherical_harmonics import fused_spherical_harmonics, spherical_harmonics

F64 = torch.float64


def cloud(n=1500, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=F64) * torch.tensor([3.0, 3.0, 2.0], dtype=F64)
    quats = torch.randn(n, 4, generator=g, dtype=F64) * 2.0  # any norm: both normalise
    scales = torch.rand(n, 3, generator=g, dtype=F64) * 0.4 + 0.005
    opacities = torch.rand(n, generator=g, dtype=F64)
    V = torch.stack([look_at((0.0, -5.0, 0.5), (0, 0, 0)), look_at((1.0, 0.5, 0.2), (-1.0, 0.3, 0.0))]).to(F64)
    K = torch.stack([intrinsics(60.0, 58.0, 40.0, 30.0), intrinsics(45.0, 45.0, 36.0, 25.0)]).to(F64)
    return means, quats, scales, opacities, V, K


@pytest.mark.parametrize("antialiased", [False, True])
def test_fused_projection_matches_the_reference_and_its_gradients(antialiased):
    means, quats, scales, opacities, V, K = cloud()
    W, H = 80, 60
    leaves = [t.clone().requires_grad_() for t in (means, quats, scales)]
    ref = project_gaussians(leaves[0], quat_scale_to_covar(leaves[1], leaves[2]), V, K, W, H, opacities=opacities,
                            antialiased=antialiased)
    fused_leaves = [t.clone().requires_grad_() for t in (means, quats, scales)]
    fused = fully_fused_projection(*fused_leaves, V, K, W, H, opacities=opacities, antialiased=antialiased)

    drawn = ref.radii[..., 0] > 0
    assert torch.equal(fused.radii, ref.radii)
    assert 200 < int(drawn.sum()) < drawn.numel() - 200  # some drawn, some culled
    behind = torch.einsum("cij,nj->cni", V[:, :3, :3], means)[..., 2] + V[:, None, 2, 3] < 0.01
    assert behind.any()
    for name in ("means2d", "conics", "depths", "compensations"):
        torch.testing.assert_close(getattr(fused, name), getattr(ref, name), rtol=1e-10, atol=1e-10, msg=name)

    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(getattr(ref, k).shape, generator=g, dtype=F64)
               for k in ("means2d", "conics", "depths", "compensations")]

    def loss(p):
        return sum((getattr(p, k) * w).sum() for k, w in zip(("means2d", "conics", "depths", "compensations"), weights))

    ref_grads = torch.autograd.grad(loss(ref), leaves)
    fused_grads = torch.autograd.grad(loss(fused), fused_leaves)
    for name, a, b in zip(("means", "quats", "scales"), fused_grads, ref_grads):
        assert b.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9 * float(b.abs().max()), msg=name)


def test_fused_projection_keeps_the_inputs_precision():
    means, quats, scales, opacities, V, K = cloud(200)
    p = fully_fused_projection(means.float(), quats.float(), scales.float(), V.float(), K.float(), 80, 60,
                               opacities=opacities.float())
    assert p.means2d.dtype == p.conics.dtype == p.depths.dtype == p.compensations.dtype == torch.float32
    assert p.radii.dtype == torch.int32


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_fused_spherical_harmonics_matches_the_reference_and_its_gradients(degree):
    g = torch.Generator().manual_seed(degree)
    coeffs = torch.randn(400, 25, 3, generator=g, dtype=F64) * 2.0
    dirs = torch.randn(2, 400, 3, generator=g, dtype=F64) * 3.0
    dirs[0, 0] = 0.0  # a zero direction: the degree-0 colour
    a = [coeffs.clone().requires_grad_(), dirs.clone().requires_grad_()]
    b = [coeffs.clone().requires_grad_(), dirs.clone().requires_grad_()]
    ref = spherical_harmonics(degree, a[0][None], a[1])
    fused = fused_spherical_harmonics(degree, b[0], b[1])
    assert (ref == 0).any() and (ref > 0).any()  # the clamp at 0 is exercised
    torch.testing.assert_close(fused, ref, rtol=1e-12, atol=1e-12)
    w = torch.randn(ref.shape, generator=g, dtype=F64)
    ga = torch.autograd.grad((ref * w).sum(), a, allow_unused=True)  # degree 0 does not read dirs
    gb = torch.autograd.grad((fused * w).sum(), b)
    for x, y, leaf in zip(gb, ga, a):
        torch.testing.assert_close(x, torch.zeros_like(leaf) if y is None else y, rtol=1e-9, atol=1e-12)
    assert gb[0].abs().max() > 0 and (degree == 0 or gb[1].abs().max() > 0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("degree", [0, 2, 3])
def test_fused_spherical_harmonics_of_sh0_and_shN_apart_is_bit_identical(degree, dtype):
    """The bands as Gaussians stores them (sh0, shN: no joined copy per film frame) give the
    very colours and gradients of the joined coefficients; shN may hold more bands than used."""
    g = torch.Generator().manual_seed(7)
    coeffs = (torch.randn(300, 16, 3, generator=g, dtype=F64) * 2.0).to(dtype)
    dirs = (torch.randn(2, 300, 3, generator=g, dtype=F64) * 3.0).to(dtype)
    w = torch.randn(2, 300, 3, generator=g, dtype=dtype)
    joined = [coeffs.clone().requires_grad_(), dirs.clone().requires_grad_()]
    apart = [coeffs[:, :1].clone().requires_grad_(), coeffs[:, 1:].clone().requires_grad_(), dirs.clone().requires_grad_()]
    a = fused_spherical_harmonics(degree, joined[0], joined[1])
    b = fused_spherical_harmonics(degree, apart[0], apart[2], rest=apart[1])
    assert torch.equal(a, b) and (a > 0).any()
    ga = torch.autograd.grad((a * w).sum(), joined)
    gb = torch.autograd.grad((b * w).sum(), apart)
    assert torch.equal(ga[0], torch.cat([gb[0], gb[1]], dim=1)) and torch.equal(ga[1], gb[2])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_fused_spherical_harmonics_degree_4_matches_gsplats_reference(dtype):
    """Band 4 (gsplat's highest) against gsplat's own `_spherical_harmonics`: colours and the
    gradients autograd takes through it, for coefficients and for the view direction."""
    g = torch.Generator().manual_seed(44)
    coeffs = torch.randn(500, 25, 3, generator=g, dtype=F64) * 2.0
    dirs = torch.randn(2, 500, 3, generator=g, dtype=F64) * 3.0
    a = [coeffs.clone().requires_grad_(), dirs.clone().requires_grad_()]
    b = [coeffs.to(dtype).requires_grad_(), dirs.to(dtype).requires_grad_()]
    ref = torch.clamp_min(_spherical_harmonics(4, a[1], a[0][None].expand(2, -1, -1, -1)) + 0.5, 0.0)
    ours = fused_spherical_harmonics(4, b[0], b[1])
    assert ours.dtype == dtype and (ref == 0).any() and (ref > 0).any()
    # Measured: 5e-15 in float64; 9e-7 in float32 (inputs rounded to float32, then float64 inside).
    torch.testing.assert_close(ours.double(), ref, rtol=0, atol=1e-12 if dtype == F64 else 1e-5)
    w = torch.randn(ref.shape, generator=g, dtype=F64)
    ga = torch.autograd.grad((ref * w).sum(), a)
    gb = torch.autograd.grad((ours * w.to(dtype)).sum(), b)
    for x, y in zip(gb, ga):  # measured (f64): 4e-15 for coefficients, 2e-14 for directions
        torch.testing.assert_close(x.double(), y, rtol=1e-9 if dtype == F64 else 1e-3,
                                   atol=1e-12 if dtype == F64 else 1e-3)
    # And against finite differences, away from the clamp at 0 (not differentiable there).
    c = torch.randn(3, 25, 3, generator=g, dtype=F64) * 0.2
    c[:, 0] = 4.0
    d = torch.randn(2, 3, 3, generator=g, dtype=F64)
    assert torch.autograd.gradcheck(lambda c, d: fused_spherical_harmonics(4, c, d),
                                    (c.requires_grad_(), d.requires_grad_()))
