"""The Gaussians container, quaternion helpers, SH evaluation (against gsplat's reference)
and SH rotation, including the render-level invariance of Gaussians.transformed."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import intrinsics, look_at, random_gaussians
from gsplat.cuda._torch_impl import _eval_sh_bases_fast, _spherical_harmonics
from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import quat_multiply, quat_to_rotmat, rotmat_to_quat
from splatfilm.render.projection import quat_scale_to_covar
from splatfilm.render import rasterization
from splatfilm.render.spherical_harmonics import spherical_harmonics as eval_sh
from splatfilm.scene.sh import C0, rotate_sh_coeffs, sh_basis, sh_rotation_matrices

F64 = torch.float64


def random_rotation(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return quat_to_rotmat(torch.randn(4, generator=g, dtype=F64))


def axis_angle(axis, angle) -> torch.Tensor:
    axis = torch.nn.functional.normalize(torch.as_tensor(axis, dtype=F64), dim=0)
    q = torch.cat([torch.tensor([math.cos(angle / 2)], dtype=F64), math.sin(angle / 2) * axis])
    return quat_to_rotmat(q)


# ---- spherical harmonics --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_eval_sh_matches_gsplat(degree, dtype):
    g = torch.Generator().manual_seed(degree)
    n = 500
    dirs = (torch.randn(n, 3, generator=g, dtype=F64) * 3).to(dtype)  # any length
    coeffs = torch.randn(n, 25, 3, generator=g, dtype=F64).to(dtype)  # large: many colours < 0
    ours = eval_sh(degree, coeffs, dirs)
    ref = torch.clamp_min(_spherical_harmonics(degree, dirs, coeffs) + 0.5, 0.0)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == F64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, ref, **tol)
    assert (ours == 0).any() and (ours > 0).any()  # the clamp is exercised
    # Only the first (degree+1)^2 coefficients matter.
    more = coeffs.clone()
    more[:, (degree + 1) ** 2:] = 0
    torch.testing.assert_close(eval_sh(degree, more, dirs), ours)


def test_sh_basis_matches_gsplat():
    dirs = torch.nn.functional.normalize(torch.randn(300, 3, generator=torch.Generator().manual_seed(0), dtype=F64), dim=-1)
    for degree in range(5):  # gsplat's basis goes to degree 4 (25 functions)
        n = (degree + 1) ** 2
        torch.testing.assert_close(sh_basis(degree, dirs), _eval_sh_bases_fast(n, dirs), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        sh_basis(5, dirs)
    with pytest.raises(ValueError):
        eval_sh(3, torch.zeros(2, 9, 3), torch.ones(2, 3))


def test_sh_rotation_rotates_the_function():
    """c' = D c: the rotated function at R d equals the original at d, band by band (to 4)."""
    g = torch.Generator().manual_seed(1)
    coeffs = torch.randn(40, 25, 3, generator=g, dtype=F64)
    dirs = torch.randn(40, 3, generator=g, dtype=F64)
    for seed in range(3):
        R = random_rotation(seed)
        rot = torch.cat([coeffs[:, :1], rotate_sh_coeffs(coeffs[:, 1:], R)], 1)
        for degree in (1, 2, 3, 4):
            torch.testing.assert_close(eval_sh(degree, rot, dirs @ R.T), eval_sh(degree, coeffs, dirs), rtol=1e-10, atol=1e-10)
    # Wigner matrices are orthogonal and compose like the rotations.
    R1, R2 = random_rotation(7), random_rotation(8)
    for D in sh_rotation_matrices(R1, 4):
        torch.testing.assert_close(D @ D.T, torch.eye(D.shape[0], dtype=F64), rtol=0, atol=1e-10)
    twice = rotate_sh_coeffs(rotate_sh_coeffs(coeffs[:, 1:], R1), R2)
    torch.testing.assert_close(twice, rotate_sh_coeffs(coeffs[:, 1:], R2 @ R1), rtol=1e-10, atol=1e-10)
    assert rotate_sh_coeffs(coeffs[:, :0], R1).shape == (40, 0, 3)


# ---- quaternions ----------------------------------------------------------------------------


def test_quat_helpers():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(50, 4, generator=g, dtype=F64), torch.randn(50, 4, generator=g, dtype=F64)
    torch.testing.assert_close(quat_to_rotmat(quat_multiply(a, b)), quat_to_rotmat(a) @ quat_to_rotmat(b))
    Rs = quat_to_rotmat(a)
    torch.testing.assert_close(Rs @ Rs.transpose(-1, -2), torch.eye(3, dtype=F64).expand(50, 3, 3))
    assert torch.allclose(torch.linalg.det(Rs), torch.ones(50, dtype=F64))
    # rotmat_to_quat: every branch of Shepperd's method (trace > 0, and each largest diagonal).
    cases = [random_rotation(s) for s in range(20)]
    cases += [axis_angle(ax, ang) for ax in ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0.2, -1, 3))
              for ang in (math.pi, math.pi - 1e-3, 2.5, 0.0)]
    for R in cases:
        q = rotmat_to_quat(R)
        assert q[0] >= 0 and abs(float(q.norm()) - 1) < 1e-12
        torch.testing.assert_close(quat_to_rotmat(q), R, rtol=0, atol=1e-12)


# ---- the container --------------------------------------------------------------------------


def test_shapes_are_validated():
    gs = random_gaussians(5, 2)
    good = dict(means=gs.means, quats=gs.quats, scales=gs.scales, opacities=gs.opacities, sh0=gs.sh0, shN=gs.shN)
    bad = {
        "means": torch.zeros(5, 2, dtype=F64),
        "quats": torch.zeros(5, 3, dtype=F64),
        "scales": torch.zeros(4, 3, dtype=F64),
        "opacities": torch.zeros(5, 1, dtype=F64),
        "sh0": torch.zeros(5, 3, dtype=F64),
    }
    for name, value in bad.items():
        with pytest.raises(ValueError, match=name):
            Gaussians(**{**good, name: value})
    for shN in (torch.zeros(5, 5, 3), torch.zeros(5, 8, 4), torch.zeros(4, 8, 3), torch.zeros(5, 8), torch.zeros(5, 35, 3)):
        with pytest.raises(ValueError):
            Gaussians(**{**good, "shN": shN.to(F64)})
    with pytest.raises(SplatfilmError, match="SH degree 5 is not supported"):
        Gaussians(**{**good, "shN": torch.zeros(5, 35, 3, dtype=F64)})
    assert Gaussians(**{**good, "shN": torch.zeros(5, 24, 3, dtype=F64)}).sh_degree == 4  # gsplat's highest


def test_sizes_and_accessors():
    gs = random_gaussians(7, 2)
    assert len(gs) == 7 and gs.sh_degree == 2 and gs.dtype == F64 and gs.device.type == "cpu"
    assert gs.sh.shape == (7, 9, 3)
    torch.testing.assert_close(gs.sh[:, :1], gs.sh0)
    torch.testing.assert_close(gs.activated_quats.norm(dim=-1), torch.ones(7, dtype=F64))
    torch.testing.assert_close(gs.activated_scales, torch.exp(gs.scales))
    torch.testing.assert_close(gs.activated_opacities, torch.sigmoid(gs.opacities))
    torch.testing.assert_close(gs.base_colors, (gs.sh0[:, 0] * C0 + 0.5).clamp_min(0))
    dark = Gaussians(gs.means, gs.quats, gs.scales, gs.opacities, torch.full_like(gs.sh0, -5.0), gs.shN)
    assert (dark.base_colors == 0).all()
    empty = Gaussians.empty(sh_degree=3)
    assert len(empty) == 0 and empty.sh_degree == 3 and empty.dtype == torch.float32


def test_from_activated_round_trip():
    g = torch.Generator().manual_seed(3)
    n = 20
    means = torch.randn(n, 3, generator=g, dtype=F64)
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g, dtype=F64), dim=-1)
    scales = torch.rand(n, 3, generator=g, dtype=F64) + 0.01
    ops = torch.rand(n, generator=g, dtype=F64) * 0.98 + 0.01
    colors = torch.rand(n, 3, generator=g, dtype=F64)
    gs = Gaussians.from_activated(means, quats, scales, ops, colors=colors)
    assert gs.sh_degree == 0
    torch.testing.assert_close(gs.means, means)
    torch.testing.assert_close(gs.activated_quats, quats)
    torch.testing.assert_close(gs.activated_scales, scales)
    torch.testing.assert_close(gs.activated_opacities, ops)
    torch.testing.assert_close(gs.base_colors, colors)
    sh = torch.randn(n, 16, 3, generator=g, dtype=F64)
    gs3 = Gaussians.from_activated(means, quats, scales, ops, sh=sh)
    assert gs3.sh_degree == 3
    torch.testing.assert_close(gs3.sh, sh)
    # Opacities of exactly 0 or 1 stay finite.
    edge = Gaussians.from_activated(means[:2], quats[:2], scales[:2], torch.tensor([0.0, 1.0], dtype=F64), colors=colors[:2])
    assert torch.isfinite(edge.opacities).all()
    with pytest.raises(ValueError):
        Gaussians.from_activated(means, quats, scales, ops)
    with pytest.raises(ValueError):
        Gaussians.from_activated(means, quats, scales, ops, colors=colors, sh=sh)


def test_select_concat_degrees_and_dtype():
    a, b, c = random_gaussians(4, 1, seed=1), random_gaussians(3, 3, seed=2), random_gaussians(2, 0, seed=3)
    cat = Gaussians.concat([a, b, c])
    assert len(cat) == 9 and cat.sh_degree == 3
    torch.testing.assert_close(cat.means, torch.cat([a.means, b.means, c.means]))
    torch.testing.assert_close(cat.shN[:4, :3], a.shN)
    assert (cat.shN[:4, 3:] == 0).all() and (cat.shN[7:] == 0).all()
    torch.testing.assert_close(cat.shN[4:7], b.shN)
    with pytest.raises(ValueError):
        Gaussians.concat([])

    # One part is itself, not a copy: a film frame of one static asset joins it every frame.
    assert Gaussians.concat([a]) is a and Gaussians.concat([a]).means.data_ptr() == a.means.data_ptr()

    idx = torch.tensor([5, 0, 5])
    sel = cat.select(idx)
    assert len(sel) == 3
    torch.testing.assert_close(sel.means, cat.means[idx])
    torch.testing.assert_close(sel.shN, cat.shN[idx])
    mask = torch.zeros(9, dtype=torch.bool)
    mask[[1, 4, 8]] = True
    sel = cat.select(mask)
    assert len(sel) == 3
    torch.testing.assert_close(sel.opacities, cat.opacities[mask])
    with pytest.raises(ValueError):
        cat.select(torch.ones(5, dtype=torch.bool))

    down = b.with_sh_degree(1)
    assert down.sh_degree == 1 and torch.equal(down.shN, b.shN[:, :3])
    up = a.with_sh_degree(2)
    assert up.sh_degree == 2 and torch.equal(up.shN[:, :3], a.shN) and (up.shN[:, 3:] == 0).all()
    assert b.with_sh_degree(0).shN.shape == (3, 0, 3)

    f32 = cat.to(dtype=torch.float32)
    assert all(getattr(f32, f).dtype == torch.float32 for f in ("means", "quats", "scales", "opacities", "sh0", "shN"))
    torch.testing.assert_close(f32.means, cat.means.float())
    assert f32.to("cpu").device.type == "cpu"
    cl = cat.clone()
    cl.means[0, 0] = 100.0
    assert cat.means[0, 0] != 100.0
    req = cat.clone()
    req.means.requires_grad_(True)
    assert not req.detach().means.requires_grad


# ---- similarity transforms ------------------------------------------------------------------


def test_transformed_identity_and_composition():
    gs = random_gaussians(30, 3, seed=4)
    same = gs.transformed()
    for f in ("means", "quats", "scales", "opacities", "sh0"):
        assert torch.equal(getattr(same, f), getattr(gs, f)), f
    torch.testing.assert_close(same.shN, gs.shN, rtol=0, atol=1e-12)

    R, t, s = random_rotation(5), torch.tensor([0.5, -2.0, 3.0], dtype=F64), 1.7
    moved = gs.transformed(R, t, s)
    torch.testing.assert_close(moved.means, s * gs.means @ R.T + t)
    torch.testing.assert_close(quat_to_rotmat(moved.quats), R @ quat_to_rotmat(gs.quats))
    cov = quat_scale_to_covar(gs.quats, gs.activated_scales)
    cov_moved = quat_scale_to_covar(moved.quats, moved.activated_scales)
    torch.testing.assert_close(cov_moved, s * s * R @ cov @ R.T)
    assert torch.equal(moved.opacities, gs.opacities) and torch.equal(moved.sh0, gs.sh0)
    # Two transforms compose; the inverse undoes.
    R2, t2, s2 = random_rotation(6), torch.tensor([1.0, 0.0, -1.0], dtype=F64), 0.5
    twice = moved.transformed(R2, t2, s2)
    once = gs.transformed(R2 @ R, s2 * R2 @ t + t2, s * s2)
    for f in ("means", "scales", "shN"):
        torch.testing.assert_close(getattr(twice, f), getattr(once, f), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(quat_to_rotmat(twice.quats), quat_to_rotmat(once.quats))
    back = moved.transformed(R.T, -(R.T @ t) / s, 1 / s)
    for f in ("means", "scales", "shN"):
        torch.testing.assert_close(getattr(back, f), getattr(gs, f), rtol=1e-10, atol=1e-10)
    # Gradients flow back through the transform to the original parameters.
    p = gs.clone()
    p.means.requires_grad_(True)
    p.shN.requires_grad_(True)
    out = p.transformed(R, t, s)
    (out.means.sum() + out.shN.sum()).backward()
    assert p.means.grad is not None and p.shN.grad is not None


def test_transformed_validates():
    gs = random_gaussians(3, 1)
    with pytest.raises(ValueError):
        gs.transformed(torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=F64)))  # reflection
    with pytest.raises(ValueError):
        gs.transformed(2 * torch.eye(3, dtype=F64))  # not orthonormal
    with pytest.raises(ValueError):
        gs.transformed(torch.eye(4, dtype=F64))
    with pytest.raises(ValueError):
        gs.transformed(translation=torch.zeros(4, dtype=F64))
    for s in (0.0, -1.0):
        with pytest.raises(ValueError):
            gs.transformed(scale=s)


@pytest.mark.parametrize("degree", [3, 4])
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_transformed_renders_the_same_from_the_moved_camera(mode, degree):
    """x' = s R x + t, and a camera moved with the asset: V' x' = s V x in camera space, so
    every projected mean, 2D covariance and view direction is unchanged; depth scales by s."""
    gs = random_gaussians(150, degree, seed=8, sh_rest=0.4)
    R, t, s = random_rotation(9), torch.tensor([3.0, -1.0, 0.5], dtype=F64), 1.7
    moved = gs.transformed(R, t, s)
    V = torch.stack([look_at((0.3, -4.0, 1.0), (0, 0, 0)), look_at((3.0, 2.0, -1.0), (0.2, 0.0, 0.1))])
    K = torch.stack([intrinsics(45.0, 44.0, 22.0, 18.5), intrinsics(38.0, 38.0, 20.0, 19.0)])
    Rv, tv = V[:, :3, :3], V[:, :3, 3]
    V2 = torch.eye(4, dtype=F64).repeat(2, 1, 1)
    V2[:, :3, :3] = Rv @ R.T
    V2[:, :3, 3] = -(Rv @ R.T @ t) + s * tv
    W, H = 45, 37
    bg = (0.1, 0.2, 0.3)
    a = rasterization(gs, V, K, W, H, backend="cpu", background=bg, rasterize_mode=mode)
    b = rasterization(moved, V2, K, W, H, backend="cpu", background=bg, rasterize_mode=mode)
    assert (a.alpha > 0.1).float().mean() > 0.3
    # float64: equal to rounding (observed ~1e-14).
    torch.testing.assert_close(b.rgb, a.rgb, rtol=0, atol=1e-8)
    torch.testing.assert_close(b.alpha, a.alpha, rtol=0, atol=1e-8)
    torch.testing.assert_close(b.depth, s * a.depth, rtol=1e-8, atol=1e-8)
    # The SH rotation matters: leaving the coefficients unrotated changes the colours.
    unrotated = Gaussians(moved.means, moved.quats, moved.scales, moved.opacities, moved.sh0, gs.shN)
    c = rasterization(unrotated, V2, K, W, H, backend="cpu", background=bg, rasterize_mode=mode)
    assert (c.rgb - a.rgb).abs().max() > 1e-2
    if degree == 4:  # band 4 on its own: the others rotated, it left as it was
        shN = torch.cat([moved.shN[:, :15], gs.shN[:, 15:]], 1)
        d = rasterization(Gaussians(moved.means, moved.quats, moved.scales, moved.opacities, moved.sh0, shN), V2, K,
                          W, H, backend="cpu", background=bg, rasterize_mode=mode)
        assert (d.rgb - a.rgb).abs().max() > 1e-2
