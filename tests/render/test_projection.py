"""EWA projection (splatfilm.projection) against gsplat's pure-PyTorch reference.

gsplat.cuda._torch_impl runs on the CPU, so these checks need no GPU. Where gsplat's CUDA
kernel and its torch reference differ (opacity-aware radii, culling of Gaussians that can
never reach alpha 1/255, z == near_plane kept), we follow the CUDA kernel and test that
behaviour against a formula written here.
"""

from __future__ import annotations

import math

import pytest
import torch

from gsplat.cuda._torch_impl import (
    _fully_fused_projection,
    _persp_proj,
    _quat_scale_to_covar_preci,
    _world_to_cam,
)
from helpers import intrinsics, look_at
from splatfilm.render.projection import (
    ALPHA_THRESHOLD,
    DEPTH_PLANE_GRAZING_DEG,
    depth_planes,
    project_gaussians,
    quat_scale_to_covar,
)
from splatfilm.scene.transforms import rotmat_to_quat

W, H = 37, 29  # deliberately not multiples of 16
NEAR, FAR = 0.01, 20.0


def make_scene(dtype, seed=0, n=300):
    """Random Gaussians around the origin seen by two cameras, plus hand-placed Gaussians
    (in camera 0's frame) that must be culled, or must survive, for known reasons."""
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    means = torch.randn(n, 3, generator=g, dtype=f64) * 0.8
    quats = torch.randn(n, 4, generator=g, dtype=f64)
    scales = torch.exp(torch.randn(n, 3, generator=g, dtype=f64) * 0.6 - 2.5)
    viewmats = torch.stack([look_at((0.3, -4.0, 0.8), (0, 0, 0)), look_at((3.5, 2.0, -1.0), (0.1, 0.2, 0.0))])
    Ks = torch.stack([intrinsics(40.0, 42.0, 18.0, 15.0), intrinsics(30.0, 30.0, 20.5, 13.0)])

    # Special Gaussians, written in camera 0's coordinates: (x, y, z, scale, expect_visible)
    fx, cx = 40.0, 18.0
    lim_x = (W - cx) / fx + 0.3 * 0.5 * W / fx  # gsplat's tangent clamp limit
    special = [
        (0.0, 0.0, -1.0, 0.1, False),  # behind the camera
        (0.0, 0.0, 0.005, 0.001, False),  # in front of the camera but nearer than the near plane
        (0.0, 0.0, 30.0, 0.5, False),  # beyond the far plane
        (0.0, 0.0, 19.0, 0.5, True),  # just inside the far plane
        (0.0, 0.0, 0.02, 0.0005, True),  # just past the near plane
        (3.0 * 5.0, 0.0, 5.0, 0.01, False),  # off-screen to the right, small
        (-3.0 * 5.0, 0.5, 5.0, 0.01, False),  # off-screen to the left
        (0.0, 2.0 * 5.0, 5.0, 0.01, False),  # off-screen below
        # Centre outside the clamped frustum (tangent clamp active), large enough to reach in.
        (1.5 * lim_x * 4.0, 0.0, 4.0, 2.0, True),
    ]
    cam0_to_world = torch.linalg.inv(viewmats[0])
    sp = torch.tensor([[x, y, z, 1.0] for x, y, z, _, _ in special], dtype=f64)
    sp_means = (sp @ cam0_to_world.T)[:, :3]
    sp_scales = torch.tensor([[s, s, s] for *_, s, _ in special], dtype=f64)
    sp_quats = torch.randn(len(special), 4, generator=g, dtype=f64)
    means = torch.cat([means, sp_means])
    quats = torch.cat([quats, sp_quats])
    scales = torch.cat([scales, sp_scales])
    expect = torch.tensor([v for *_, v in special])
    opacities = torch.rand(len(means), generator=g, dtype=f64) * 0.98 + 0.01
    cast = lambda t: t.to(dtype)  # noqa: E731
    return dict(
        means=cast(means), quats=cast(quats), scales=cast(scales), opacities=cast(opacities),
        viewmats=cast(viewmats), Ks=cast(Ks), n_random=n, special_visible=expect,
    )


TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float32: dict(rtol=2e-5, atol=2e-5),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_covariance_matches_gsplat(dtype):
    s = make_scene(dtype)
    ours = quat_scale_to_covar(s["quats"], s["scales"])
    ref, _ = _quat_scale_to_covar_preci(s["quats"], s["scales"], compute_preci=False)
    torch.testing.assert_close(ours, ref, **TOL[dtype])
    # Symmetric positive definite.
    torch.testing.assert_close(ours, ours.transpose(-1, -2))
    assert (torch.linalg.eigvalsh(ours.double()) > 0).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_projection_matches_gsplat_torch_impl(dtype):
    s = make_scene(dtype)
    covars = quat_scale_to_covar(s["quats"], s["scales"])
    ours = project_gaussians(s["means"], covars, s["viewmats"], s["Ks"], W, H, opacities=None,
                             near_plane=NEAR, far_plane=FAR)
    radii, means2d, depths, conics, comps = _fully_fused_projection(
        s["means"], covars, s["viewmats"], s["Ks"], W, H, near_plane=NEAR, far_plane=FAR, calc_compensations=True
    )
    assert ours.radii.dtype == torch.int32 and ours.radii.shape == radii.shape == (2, len(s["means"]), 2)
    # Plain 3.33-sigma radii, culling included: identical.
    if dtype == torch.float64:
        assert torch.equal(ours.radii, radii)
    else:
        # float32 rounding may move ceil() across an integer on a rare Gaussian.
        assert (ours.radii - radii).abs().max() <= 1
        assert (ours.radii == radii).float().mean() > 0.995
    valid = (ours.radii > 0).all(-1) & (radii > 0).all(-1)
    assert valid.sum() > 200, "too few visible Gaussians for a meaningful test"
    torch.testing.assert_close(ours.depths, depths, **TOL[dtype])
    torch.testing.assert_close(ours.means2d[valid], means2d[valid], **TOL[dtype])
    torch.testing.assert_close(ours.conics[valid], conics[valid], **TOL[dtype])
    torch.testing.assert_close(ours.compensations[valid], comps[valid], **TOL[dtype])

    # The hand-placed Gaussians are culled (or kept) for the reasons they were placed for.
    n = s["n_random"]
    visible0 = (ours.radii[0, n:] > 0).all(-1)
    assert torch.equal(visible0, s["special_visible"]), visible0


def test_projection_culls_at_near_plane_like_cuda():
    """CUDA culls z < near; z == near is kept (the torch reference drops it: we follow CUDA)."""
    f64 = torch.float64
    V = torch.eye(4, dtype=f64)[None]
    K = intrinsics(40.0, 40.0, 18.0, 15.0)[None]
    means = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5 - 1e-9], [0.0, 0.0, 2.0], [0.0, 0.0, 2.0 + 1e-9]], dtype=f64)
    covars = torch.eye(3, dtype=f64).expand(4, 3, 3) * 1e-6
    p = project_gaussians(means, covars, V, K, W, H, near_plane=0.5, far_plane=2.0)
    assert (p.radii[0, :, 0] > 0).tolist() == [True, False, True, False]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("antialiased", [False, True])
def test_opacity_aware_radii_like_cuda_kernel(dtype, antialiased):
    """gsplat's CUDA kernel: op' = op (* compensation when antialiased); culled if
    op' < 1/255; extent = min(3.33, sqrt(2 ln(255 op'))) sigma."""
    s = make_scene(dtype, seed=1)
    n_all = len(s["means"])
    g = torch.Generator().manual_seed(5)
    # Opacities spanning the threshold: some below 1/255, some just above it (tiny extents).
    op = torch.cat([
        torch.rand(n_all // 3, generator=g, dtype=torch.float64) * 0.9 * ALPHA_THRESHOLD,
        ALPHA_THRESHOLD * (1.0 + torch.rand(n_all // 3, generator=g, dtype=torch.float64) * 2.0),
        torch.rand(n_all - 2 * (n_all // 3), generator=g, dtype=torch.float64),
    ])
    op = op[torch.randperm(n_all, generator=g)].to(dtype)
    covars = quat_scale_to_covar(s["quats"], s["scales"])
    ours = project_gaussians(s["means"], covars, s["viewmats"], s["Ks"], W, H, opacities=op,
                             near_plane=NEAR, far_plane=FAR, antialiased=antialiased)

    # Expected, from gsplat's torch reference pieces, computed in float64.
    d = torch.float64
    means_c, covars_c = _world_to_cam(s["means"].to(d), covars.to(d), s["viewmats"].to(d))
    means2d, cov2d = _persp_proj(means_c, covars_c, s["Ks"].to(d), W, H)
    det_orig = cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0]
    cxx, cyy = cov2d[..., 0, 0] + 0.3, cov2d[..., 1, 1] + 0.3
    det = cxx * cyy - cov2d[..., 0, 1] * cov2d[..., 1, 0]
    comp = torch.sqrt(torch.clamp(det_orig / det, min=0))
    op_eff = op.to(d)[None].expand_as(comp) * (comp if antialiased else 1.0)
    z = means_c[..., 2]
    valid = (z >= NEAR) & (z <= FAR) & (det > 0) & (op_eff >= ALPHA_THRESHOLD)
    extend = torch.minimum(torch.full_like(op_eff, 3.33),
                           torch.sqrt(2.0 * torch.log(op_eff.clamp_min(ALPHA_THRESHOLD) * 255.0)))
    rx = torch.ceil(extend * torch.sqrt(cxx.clamp_min(0)))
    ry = torch.ceil(extend * torch.sqrt(cyy.clamp_min(0)))
    valid &= ~((rx <= 0) & (ry <= 0))
    valid &= (means2d[..., 0] + rx > 0) & (means2d[..., 0] - rx < W) & (means2d[..., 1] + ry > 0) & (means2d[..., 1] - ry < H)
    expected = (torch.stack([rx, ry], -1) * valid[..., None]).to(torch.int32)

    if dtype == torch.float64:
        assert torch.equal(ours.radii, expected)
    else:
        assert (ours.radii - expected).abs().max() <= 1
        assert (ours.radii == expected).float().mean() > 0.995
    # Below-threshold Gaussians are all culled; the opacity-aware box is never larger.
    assert (ours.radii[op_eff < ALPHA_THRESHOLD * 0.999] == 0).all()
    plain = project_gaussians(s["means"], covars, s["viewmats"], s["Ks"], W, H, near_plane=NEAR, far_plane=FAR)
    assert (ours.radii <= plain.radii).all()
    assert (ours.radii > 0).any(-1).sum() > 100
    if antialiased:
        # Some Gaussians pass the plain opacity test but fail once compensated.
        lost = (op[None] >= ALPHA_THRESHOLD) & (op_eff < ALPHA_THRESHOLD) & (plain.radii > 0).all(-1)
        assert lost.any()


def test_projection_gradients_match_gsplat_torch_impl():
    """Autograd through our projection equals autograd through gsplat's reference (float64),
    from quats/scales/means to means2d, conics, depths and compensations of visible Gaussians."""
    s = make_scene(torch.float64, seed=2, n=60)
    g = torch.Generator().manual_seed(3)
    params = {k: s[k].clone().requires_grad_(True) for k in ("means", "quats", "scales")}
    cov_o = quat_scale_to_covar(params["quats"], params["scales"])
    ours = project_gaussians(params["means"], cov_o, s["viewmats"], s["Ks"], W, H, near_plane=NEAR, far_plane=FAR)
    valid = (ours.radii > 0).all(-1)
    w = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in (ours.means2d, ours.conics, ours.depths, ours.compensations)]

    def loss(p):
        return ((p[0] * w[0]).sum(-1)[valid].sum() + (p[1] * w[1]).sum(-1)[valid].sum()
                + (p[2] * w[2])[valid].sum() + (p[3] * w[3])[valid].sum())

    grads_o = torch.autograd.grad(loss((ours.means2d, ours.conics, ours.depths, ours.compensations)), list(params.values()))
    cov_r, _ = _quat_scale_to_covar_preci(params["quats"], params["scales"], compute_preci=False)
    radii, m2, dep, con, comp = _fully_fused_projection(params["means"], cov_r, s["viewmats"], s["Ks"], W, H,
                                                        near_plane=NEAR, far_plane=FAR, calc_compensations=True)
    assert torch.equal((radii > 0).all(-1), valid)
    grads_r = torch.autograd.grad(loss((m2, con, dep, comp)), list(params.values()))
    for name, a, b in zip(params, grads_o, grads_r):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m: f"d/d{name}: {m}")


def test_projection_gradcheck():
    """Finite differences through the projection itself (means and covariances)."""
    s = make_scene(torch.float64, seed=4, n=8)
    sel = slice(0, 8)
    means = s["means"][sel].clone().requires_grad_(True)
    L = torch.linalg.cholesky(quat_scale_to_covar(s["quats"][sel], s["scales"][sel]))
    L = L.clone().requires_grad_(True)

    def fn(means, L):
        p = project_gaussians(means, L @ L.transpose(-1, -2), s["viewmats"], s["Ks"], W, H, near_plane=NEAR, far_plane=FAR)
        return p.means2d, p.conics, p.depths, p.compensations

    assert torch.autograd.gradcheck(fn, (means, L), eps=1e-6, atol=1e-6, rtol=1e-4)


def _flat_gaussian(normal) -> tuple[torch.Tensor, torch.Tensor]:
    """One 5 x 3 cm, 0.1 mm thick Gaussian at (0.1, 0.2, 0) whose plane has `normal`: means
    [1,3], covariances [1,3,3]."""
    n = torch.nn.functional.normalize(torch.tensor(normal, dtype=torch.float64), dim=0)
    a = torch.nn.functional.normalize(torch.linalg.cross(n, torch.tensor([0.3, 1.0, 0.2], dtype=torch.float64)), dim=0)
    R = torch.stack([a, torch.linalg.cross(n, a), n], dim=1)
    covars = quat_scale_to_covar(rotmat_to_quat(R)[None], torch.tensor([[0.05, 0.03, 1e-4]], dtype=torch.float64))
    return torch.tensor([[0.1, 0.2, 0.0]], dtype=torch.float64), covars


def test_depth_planes_follow_a_flat_gaussians_plane():
    """At pixels around a flat Gaussian, its depth plane is the camera z where the pixel's ray
    crosses its plane, to first order (the Gaussian's own slope, not the slope of its 0.3 px
    blurred footprint). Seen 35 degrees above its plane, 3.4 m away: its depth changes by
    4-6 cm over the 4 pixels tried, where a pixel's blend of centre depths reads none of it."""
    normal = [0.0, -0.2, 1.0]
    means, covars = _flat_gaussian(normal)
    V = look_at((0.0, -2.6, 2.2), (0.1, 0.2, 0.0))[None]
    K = intrinsics(300.0, 300.0, 200.0, 150.0)[None]
    means2d, depths, grads = depth_planes(means, covars, V, K, 400, 300)
    R, t = V[0, :3, :3], V[0, :3, 3]
    n_c = R @ torch.nn.functional.normalize(torch.tensor(normal, dtype=torch.float64), dim=0)
    p_c = R @ means[0] + t
    for du, dv in [(0, 0), (4, 0), (0, 4), (-3, 3), (2.5, -3.5)]:
        u, v = float(means2d[0, 0, 0]) + du, float(means2d[0, 0, 1]) + dv
        ray = torch.tensor([(u - 200.0) / 300.0, (v - 150.0) / 300.0, 1.0], dtype=torch.float64)
        truth = float((n_c @ p_c) / (n_c @ ray))  # camera z of the ray's crossing of the plane
        planar = float(depths[0, 0] + grads[0, 0] @ torch.tensor([du, dv], dtype=torch.float64))
        assert planar == pytest.approx(truth, abs=1e-3), (du, dv)
        if dv:
            assert abs(truth - float(depths[0, 0])) > 0.03


def test_depth_planes_cap_the_slope_of_a_gaussian_seen_nearly_edge_on():
    """A flat Gaussian seen almost along its plane has a slope that grows as its thickness over
    its width allows (here up to about 250 in dz / z per unit of normalised image coordinate)
    across the pixel-wide line it is drawn as: it is tilted no further than
    DEPTH_PLANE_GRAZING_DEG from the rays."""
    means, covars = _flat_gaussian([0.0, 0.0, 1.0])
    K = intrinsics(60.0, 60.0, 40.0, 30.0)[None]
    slopes = []
    for height in (0.001, 0.002, 0.004, 0.008, 0.6):
        V = look_at((0.1, -2.0, height), (0.1, 0.2, 0.0))[None]
        _, depths, grads = depth_planes(means, covars, V, K, 80, 60)
        slopes.append(float((grads[0, 0] * 60.0).norm() / depths[0, 0]))  # dz / z per normalised image unit
    cap = 1 / math.tan(math.radians(DEPTH_PLANE_GRAZING_DEG))
    assert max(slopes) == pytest.approx(cap, rel=1e-9)
    assert slopes[-1] == pytest.approx(2.2 / 0.6, rel=0.02)  # 15 degrees above it: its own slope, uncapped
