"""Our numba rasterizer (splatfilm.render.rasterize_to_pixels) against a brute-force per-pixel compositor,
its hand-written backward against finite differences and against autograd through that
compositor, and its gradients for determinism."""

from __future__ import annotations

import numba
import pytest
import torch

from helpers import intrinsics, look_at, random_gaussians
from splatfilm.render.rasterize_to_pixels import rasterize_to_pixels, rasterize_to_pixels_reference, set_num_threads
from splatfilm.render.projection import project_gaussians, quat_scale_to_covar

F64 = torch.float64


def project_scene(gs, viewmats, Ks, width, height, antialiased=False):
    """Screen-space inputs for rasterize_to_pixels from Gaussians, as rasterization() builds them
    (opacity-aware radii), in the Gaussians' dtype."""
    op = gs.activated_opacities
    proj = project_gaussians(gs.means, quat_scale_to_covar(gs.quats, gs.activated_scales), viewmats.to(gs.dtype),
                             Ks.to(gs.dtype), width, height, opacities=op, antialiased=antialiased)
    C = viewmats.shape[0]
    ops = op[None].expand(C, -1) * (proj.compensations if antialiased else 1.0)
    g = torch.Generator().manual_seed(11)
    colors = torch.rand(C, len(gs), 3, generator=g, dtype=F64).to(gs.dtype)
    feats = torch.cat([colors, proj.depths[..., None]], -1)
    return proj.means2d, proj.conics, ops, feats, proj.radii, proj.depths


def scene(name, dtype):
    """Named test scenes: (inputs to rasterize_to_pixels, width, height)."""
    if name == "mixed":  # two cameras, one inside the cloud (Gaussians behind it, near it)
        gs = random_gaussians(250, 0, F64, seed=1)
        V = torch.stack([look_at((0.2, -4.0, 1.0), (0, 0, 0)), look_at((1.0, 0.6, 0.2), (-1.0, 0.3, 0.0))])
        K = torch.stack([intrinsics(45.0, 44.0, 22.0, 18.5), intrinsics(30.0, 30.0, 24.0, 17.0)])
        W, H = 45, 37
    elif name == "dense":  # opaque and crowded: most pixels stop on the transmittance threshold
        gs = random_gaussians(500, 0, F64, seed=2, spread=0.6, log_scale=(-1.9, 0.3), opacity=(0.85, 0.999))
        V = torch.stack([look_at((0.0, -4.0, 0.5), (0, 0, 0)), look_at((4.0, 0.0, 0.0), (0, 0, 0))])
        K = torch.stack([intrinsics(45.0, 45.0, 20.0, 17.0), intrinsics(40.0, 40.0, 19.0, 16.5)])
        W, H = 41, 33
    elif name == "big":  # a few Gaussians spanning many 16 px tiles over small ones
        small = random_gaussians(60, 0, F64, seed=3)
        big = random_gaussians(6, 0, F64, seed=4, spread=0.5, log_scale=(0.0, 0.2), opacity=(0.3, 0.8))
        from splatfilm.scene.gaussians import Gaussians

        gs = Gaussians.concat([small, big])
        V = torch.stack([look_at((0.0, -4.0, 0.5), (0, 0, 0)), look_at((-3.0, -3.0, 1.0), (0, 0, 0))])
        K = torch.stack([intrinsics(60.0, 60.0, 35.0, 25.0), intrinsics(50.0, 55.0, 33.0, 26.0)])
        W, H = 70, 50
    else:
        raise KeyError(name)
    return project_scene(gs.to(dtype=dtype), V, K, W, H), W, H


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", ["mixed", "dense", "big"])
def test_forward_matches_brute_force(name, dtype):
    inputs, W, H = scene(name, dtype)
    feats, alpha = rasterize_to_pixels(*inputs, W, H)
    assert feats.dtype == dtype and alpha.dtype == dtype
    assert feats.shape == (2, H, W, 4) and alpha.shape == (2, H, W, 1)
    ref_f, ref_a, stopped = rasterize_to_pixels_reference(*inputs, W, H)
    tol = dict(rtol=0, atol=1e-9) if dtype == torch.float64 else dict(rtol=0, atol=1e-5)
    torch.testing.assert_close(alpha.double(), ref_a, **tol)
    torch.testing.assert_close(feats[..., :3].double(), ref_f[..., :3], **tol)
    # Accumulated depth: values are a few units, compare relatively.
    tol_d = dict(rtol=1e-9, atol=1e-9) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(feats[..., 3].double(), ref_f[..., 3], **tol_d)
    assert (alpha > 0).float().mean() > 0.3
    n_radii = inputs[4]
    if name == "dense":
        assert min(stopped) > 0.3 * W * H, stopped  # the threshold is really exercised
    if name == "big":
        assert (n_radii.amax(-1) > 32).sum() >= 4  # boxes spanning several tiles
    if name == "mixed":
        assert (n_radii[1] == 0).all(-1).sum() > 20  # camera 1 culls many (behind it, off-screen)


def test_tile_size_does_not_change_the_image():
    inputs, W, H = scene("mixed", F64)
    f16, a16 = rasterize_to_pixels(*inputs, W, H)
    for ts in (8, 32):
        f, a = rasterize_to_pixels(*inputs, W, H, tile_size=ts)
        torch.testing.assert_close(f, f16, rtol=0, atol=1e-12)
        torch.testing.assert_close(a, a16, rtol=0, atol=1e-12)


def test_gaussian_with_one_zero_radius_is_culled():
    """gsplat's tile intersection drops a Gaussian when either radius is 0."""
    m2 = torch.tensor([[[5.0, 5.0]]], dtype=F64)
    con = torch.tensor([[[0.1, 0.0, 0.1]]], dtype=F64)
    op = torch.tensor([[0.9]], dtype=F64)
    fe = torch.ones(1, 1, 3, dtype=F64)
    d = torch.ones(1, 1, dtype=F64)
    for r in ([10, 0], [0, 10], [0, 0]):
        _, a = rasterize_to_pixels(m2, con, op, fe, torch.tensor([[r]], dtype=torch.int32), d, 10, 10)
        assert (a == 0).all(), r
    _, a = rasterize_to_pixels(m2, con, op, fe, torch.tensor([[[10, 10]]], dtype=torch.int32), d, 10, 10)
    assert (a > 0).all()


def test_indefinite_conics_skip_negative_sigma():
    """Conics that are not positive definite (never produced by the projection, but legal
    input): pixels where sigma < 0 are skipped, forward and backward, as in gsplat."""
    g = torch.Generator().manual_seed(5)
    C, N, W, H = 1, 6, 21, 19
    means2d = torch.rand(C, N, 2, generator=g, dtype=F64) * torch.tensor([W, H], dtype=F64)
    conics = torch.tensor([[[0.05, 0.2, 0.05], [0.1, 0.0, -0.02], [-0.03, 0.0, 0.08],
                            [0.04, -0.1, 0.06], [0.3, 0.05, 0.2], [0.02, 0.03, 0.01]]], dtype=F64)
    ops = 0.2 + 0.6 * torch.rand(C, N, generator=g, dtype=F64)
    feats = torch.rand(C, N, 3, generator=g, dtype=F64)
    radii = torch.full((C, N, 2), 40, dtype=torch.int32)
    depths = torch.rand(C, N, generator=g, dtype=F64)
    grads = []
    for fn in (rasterize_to_pixels, lambda *args: rasterize_to_pixels_reference(*args)[:2]):
        diff = [t.clone().requires_grad_(True) for t in (means2d, conics, ops, feats)]
        f, a = fn(*diff, radii, depths, W, H)
        (f.sum() + 2 * a.sum()).backward()
        grads.append(([f.detach(), a.detach()], [t.grad for t in diff]))
    (outs, g_ours), (refs, g_ref) = grads
    for x, y in zip(outs + g_ours, refs + g_ref):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)
    assert (outs[1] > 0).float().mean() > 0.5


def test_empty_inputs():
    z = lambda *s: torch.zeros(s, dtype=F64)  # noqa: E731
    f, a = rasterize_to_pixels(z(1, 0, 2), z(1, 0, 3), z(1, 0), z(1, 0, 3), torch.zeros(1, 0, 2, dtype=torch.int32), z(1, 0), 20, 17)
    assert f.shape == (1, 17, 20, 3) and (f == 0).all() and (a == 0).all()


# ---- gradients -----------------------------------------------------------------------------


def _conics_from_cov(sx, sy, rho):
    a, c, b = sx * sx, sy * sy, rho * sx * sy
    det = a * c - b * b
    return torch.stack([c / det, -b / det, a / det], -1)


def smooth_inputs():
    """Broad, semi-transparent Gaussians covering the whole (multi-tile) image: every alpha is
    well inside (1/255, 0.999) and T stays far above 1e-4, so the image is smooth in every
    input and finite differences are meaningful."""
    g = torch.Generator().manual_seed(7)
    C, N, W, H = 2, 5, 20, 18
    means2d = torch.tensor([W / 2, H / 2], dtype=F64) + (torch.rand(C, N, 2, generator=g, dtype=F64) - 0.5) * 6
    sx = 6 + 3 * torch.rand(C, N, generator=g, dtype=F64)
    sy = 6 + 3 * torch.rand(C, N, generator=g, dtype=F64)
    rho = (torch.rand(C, N, generator=g, dtype=F64) - 0.5) * 0.8
    conics = _conics_from_cov(sx, sy, rho)
    ops = 0.2 + 0.3 * torch.rand(C, N, generator=g, dtype=F64)
    feats = torch.randn(C, N, 4, generator=g, dtype=F64)
    radii = torch.full((C, N, 2), 40, dtype=torch.int32)  # every pixel of every tile
    depths = torch.rand(C, N, generator=g, dtype=F64) + 1.0
    return (means2d, conics, ops, feats, radii, depths), W, H


def saturating_inputs():
    """Front to back: a Gaussian clamped at alpha 0.999 everywhere (zero gradient through its
    opacity and shape), one at ~0.5 (T ~ 5e-4), one at >0.85 that would take T under 1e-4 so
    every pixel stops before it, and one behind that is never reached. Smooth, with margins."""
    W, H = 10, 8
    centre = torch.tensor([W / 2, H / 2], dtype=F64)
    means2d = (centre + torch.tensor([[0.3, -0.2], [-0.4, 0.1], [0.2, 0.5], [0.0, 0.0]], dtype=F64))[None]
    s = torch.tensor([30.0, 40.0, 35.0, 20.0], dtype=F64)
    conics = _conics_from_cov(s, s * 1.1, torch.tensor([0.1, -0.2, 0.0, 0.3], dtype=F64))[None]
    ops = torch.tensor([[1.2, 0.52, 0.95, 0.7]], dtype=F64)
    feats = torch.tensor([[[0.2, 0.4, 0.6], [0.9, 0.1, 0.3], [0.5, 0.5, 0.5], [1.0, 0.0, 1.0]]], dtype=F64)
    radii = torch.full((1, 4, 2), 30, dtype=torch.int32)
    depths = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=F64)
    return (means2d, conics, ops, feats, radii, depths), W, H


def _check_margins(inputs, W, H):
    """All (pixel, Gaussian) alphas well away from 1/255 and 0.999, and T away from 1e-4."""
    means2d, conics, ops, feats, radii, depths = inputs
    ys, xs = torch.meshgrid(torch.arange(H, dtype=F64) + 0.5, torch.arange(W, dtype=F64) + 0.5, indexing="ij")
    dx = means2d[..., 0, None, None] - xs
    dy = means2d[..., 1, None, None] - ys
    a, b, c = (conics[..., i, None, None] for i in range(3))
    raw = ops[..., None, None] * torch.exp(-(0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy))
    assert raw.min() > 3 * (1 / 255)
    assert ((raw - 0.999).abs() > 0.01).all()
    _, alpha, _ = rasterize_to_pixels_reference(*inputs, W, H)
    T = 1 - alpha
    assert ((T - 1e-4).abs() > 2e-5).all()


@pytest.mark.parametrize("make", [smooth_inputs, saturating_inputs])
def test_gradcheck_rasterize(make):
    inputs, W, H = make()
    _check_margins(inputs, W, H)
    means2d, conics, ops, feats, radii, depths = (t.clone() for t in inputs)
    diff = [t.requires_grad_(True) for t in (means2d, conics, ops, feats)]

    def fn(m, co, o, f):
        return rasterize_to_pixels(m, co, o, f, radii, depths, W, H)

    # fast_mode checks v^T J u for random u, v: every Jacobian entry enters, at a fraction of
    # the cost of one backward per output pixel.
    assert torch.autograd.gradcheck(fn, diff, eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=make is smooth_inputs)


def test_saturating_case_gradients_vanish_where_expected():
    inputs, W, H = saturating_inputs()
    means2d, conics, ops, feats, radii, depths = (t.clone().requires_grad_(t.is_floating_point()) for t in inputs)
    f, a = rasterize_to_pixels(means2d, conics, ops, feats, radii, depths, W, H)
    _, _, stopped = rasterize_to_pixels_reference(*inputs, W, H)
    assert stopped == [W * H]
    (f.sum() + a.sum()).backward()
    # Gaussian 0 is clamped at 0.999: no gradient through its opacity or shape.
    assert ops.grad[0, 0] == 0 and (means2d.grad[0, 0] == 0).all() and (conics.grad[0, 0] == 0).all()
    # Gaussians 2 and 3 are never composited.
    for g in (2, 3):
        assert ops.grad[0, g] == 0 and (feats.grad[0, g] == 0).all() and (means2d.grad[0, g] == 0).all()
    assert (feats.grad[0, 0] > 0).all() and ops.grad[0, 1] != 0


@pytest.mark.parametrize("name", ["mixed", "dense", "big"])
def test_backward_matches_autograd_of_brute_force(name):
    """On whole scenes (thresholds, clamps and early stops included), the hand-written
    backward equals autograd through the brute-force compositor."""
    inputs, W, H = scene(name, F64)
    means2d, conics, ops, feats, radii, depths = (t.detach().clone() for t in inputs)
    g = torch.Generator().manual_seed(3)
    wf = torch.randn(2, H, W, 4, generator=g, dtype=F64)
    wa = torch.randn(2, H, W, 1, generator=g, dtype=F64)
    grads = []
    for fn in (rasterize_to_pixels, lambda *args: rasterize_to_pixels_reference(*args)[:2]):
        diff = [t.clone().requires_grad_(True) for t in (means2d, conics, ops, feats)]
        f, a = fn(*diff, radii, depths, W, H)
        ((f * wf).sum() + (a * wa).sum()).backward()
        grads.append([t.grad for t in diff])
    for label, ours, ref in zip(("means2d", "conics", "opacities", "feats"), *grads):
        scale = ref.abs().max()
        assert scale > 0
        torch.testing.assert_close(ours, ref, rtol=1e-8, atol=1e-10 * float(scale), msg=lambda m: f"{label}: {m}")


def _grads(inputs, W, H, seed=0):
    means2d, conics, ops, feats, radii, depths = inputs
    diff = [t.detach().clone().requires_grad_(True) for t in (means2d, conics, ops, feats)]
    f, a = rasterize_to_pixels(*diff, radii, depths, W, H)
    g = torch.Generator().manual_seed(seed)
    loss = (f * torch.randn(f.shape, generator=g, dtype=f.dtype)).sum() + (a * torch.randn(a.shape, generator=g, dtype=a.dtype)).sum()
    loss.backward()
    return [t.grad for t in diff]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradients_are_deterministic(dtype):
    inputs, W, H = scene("dense", dtype)
    first = _grads(inputs, W, H)
    second = _grads(inputs, W, H)
    for x, y in zip(first, second):
        assert torch.equal(x, y)
    # ... whatever the number of threads.
    n = numba.get_num_threads()
    try:
        set_num_threads(1)
        single = _grads(inputs, W, H)
    finally:
        set_num_threads(n)
    for x, y in zip(first, single):
        assert torch.equal(x, y)


def test_tile_lists_are_the_same_for_float32_and_float64_depths():
    """float32 depths take a packed-key sort, float64 a stable argsort: same lists, ties by id."""
    import numpy as np

    from splatfilm.render.tile_intersection import isect_tiles

    g = np.random.default_rng(4)
    n = 3000
    means2d = g.uniform(-10, 90, (n, 2)).astype(np.float32)
    radii = g.integers(0, 12, (n, 2)).astype(np.int32)
    depths = (g.uniform(0, 3, n).round(2)).astype(np.float32)  # many equal depths
    assert len(np.unique(depths)) < 400
    off32, ids32 = isect_tiles(means2d, radii, depths, 80, 64)
    off64, ids64 = isect_tiles(means2d, radii, depths.astype(np.float64), 80, 64)
    np.testing.assert_array_equal(off32, off64)
    np.testing.assert_array_equal(ids32, ids64)
    assert len(ids32) > 2000


def _openmp_spin_counts(**env) -> tuple[list[str], str]:
    """GOMP_SPINCOUNT of each libgomp a fresh process loads when it imports splatfilm and starts
    numba's threads (libgomp's own report, OMP_DISPLAY_ENV), and numba's threading layer."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = ("import splatfilm, numba; numba.set_num_threads(numba.config.NUMBA_NUM_THREADS); "
            "print(numba.threading_layer())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                         env={**clean, **env, "OMP_DISPLAY_ENV": "VERBOSE",
                              "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert run.returncode == 0, run.stderr
    return re.findall(r"GOMP_SPINCOUNT = '(\d+)'", run.stderr), run.stdout.strip()


def test_openmp_workers_sleep_between_regions():
    """Idle OpenMP workers spinning 300,000 times after each region took the cores from a CPU fit
    on a busy machine: splatfilm asks torch's and numba's libgomp to sleep (spin count 0)
    before either is loaded, and keeps a user's own choice."""
    counts, layer = _openmp_spin_counts()
    if not counts:
        pytest.skip("no libgomp in this process (it reports GOMP_SPINCOUNT)")
    # torch's libgomp, and numba's own when its threading layer is OpenMP
    assert len(counts) >= (2 if layer == "omp" else 1)
    assert counts == ["0"] * len(counts)
    counts, _ = _openmp_spin_counts(GOMP_SPINCOUNT="1234")
    assert counts == ["1234"] * len(counts)
    counts, _ = _openmp_spin_counts(OMP_WAIT_POLICY="ACTIVE")
    assert "0" not in counts
