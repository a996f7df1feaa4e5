"""Posing Gaussians (splatfilm.scene.skinning): linear blend skinning against the glTF
specification's formula on small rigs of every kind, the bind pose, covariances and SH
under per-Gaussian transforms, view-dependent colour under a rigid move of the whole rig
(rendered), dual quaternions on a twisted joint, and the fused CPU kernels against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import intrinsics, look_at, random_gaussians
from rigged_gltf import distance_to_triangles, spec_skin, write_limb

from splatfilm.assets.mesh_import import import_mesh
from splatfilm.io.gaussian_files import load_gaussians
from splatfilm.io.rig_files import load_rig
from splatfilm.io.asset_files import rig_path
from splatfilm.render import rasterization
from splatfilm.scene.sh import rotate_sh_coeffs, rotate_sh_coeffs_batch
from splatfilm.scene.skeleton import global_transforms, joint_depths, sample_clip
from splatfilm.scene.skinning import pose_gaussians, transform_gaussians_affine
from splatfilm.scene.transforms import quat_multiply, quat_to_rotmat, rotmat_to_quat

VARIANTS = {
    "trs nodes, float weights": {},
    "root with a transform": {"armature": ((1.0, 0.2, 0.5), [0.0, 0.2588190451, 0.0, 0.9659258263], (1, 1, 1))},
    "matrix nodes, ushort weights": {"matrix_nodes": True, "weights_as": "ushort"},
    "interleaved, ubyte weights": {"weights_as": "ubyte", "interleaved": True},
    "sparse weights": {"sparse_weights": True},
    "two meshes, two weight sets": {"second_mesh": True, "extra_set": True},
    "bind pose is not the rest pose": {"bind_differs": True},
    "gltf with a data uri": {"how": "datauri"},
    "gltf with a .bin": {"how": "bin"},
}
POSES = [(None, 0.0), ("bend", 0.6), ("bend", 1.0), ("twist", 0.75), ("hop", 0.7), ("grow", 1.3)]


def limb_asset(tmp_path, count=3000, sh_degree=0, **kw):
    ext = ".glb" if kw.get("how", "glb") == "glb" else ".gltf"
    limb = write_limb(tmp_path / f"limb{ext}", **kw)
    import_mesh(tmp_path / f"limb{ext}", tmp_path / "limb.ply", count=count, sh_degree=sh_degree)
    return limb, load_gaussians(tmp_path / "limb.ply"), load_rig(rig_path(tmp_path / "limb.ply"))


def globals_at(rig, clip, t):
    return rig.rest_globals() if clip is None else global_transforms(rig, sample_clip(rig, clip, t))


def quat_close(a, b, atol):
    """Quaternions equal up to sign, [N,4] each."""
    d = torch.minimum((a - b).abs().amax(-1), (a + b).abs().amax(-1))
    return bool(d.max() <= atol), float(d.max())


# ---- LBS against the specification ---------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lbs_puts_gaussians_on_the_posed_reference_surface(tmp_path, variant):
    """Each posed Gaussian lies on the mesh skinned by v' = sum w G IBM v (written from the
    glTF specification in tests/rigged_gltf.py). Off the surface only by the difference
    between blending a point's weights and blending its corners' positions: second order,
    within a few percent of a triangle; Gaussians bound to one joint lie on it exactly."""
    limb, g, rig = limb_asset(tmp_path, **VARIANTS[variant])
    single = rig.weights.max(axis=1) > 0.9999
    assert single.sum() > 0.3 * len(g)
    for clip, t in POSES:
        ref = spec_skin(limb, clip, t)
        verts = np.concatenate([v for v, _ in ref])
        offsets = np.cumsum([0] + [len(v) for v, _ in ref])
        faces = np.concatenate([f + o for (_, f), o in zip(ref, offsets)])
        posed = pose_gaussians(g, rig, globals_at(rig, clip, t), "lbs")
        d = distance_to_triangles(posed.means.double().numpy(), verts, faces)
        assert d.max() < 0.02 and d.mean() < 0.002, (clip, t, d.max(), d.mean())
        assert d[single].max() < 2e-5, (clip, t, d[single].max())


def test_a_wrong_pose_is_caught_by_the_reference(tmp_path):
    """The reference test can fail: posing at another time is centimetres off."""
    limb, g, rig = limb_asset(tmp_path)
    ref = spec_skin(limb, "bend", 1.0)
    posed = pose_gaussians(g, rig, globals_at(rig, "bend", 0.9), "lbs")
    assert distance_to_triangles(posed.means.double().numpy(), *ref[0]).max() > 0.1


@pytest.mark.parametrize("variant", ["trs nodes, float weights", "bind pose is not the rest pose"])
@pytest.mark.parametrize("method", ["lbs", "dqs"])
def test_the_rest_pose_gives_back_the_imported_gaussians(tmp_path, variant, method):
    _, g, rig = limb_asset(tmp_path, sh_degree=3, **VARIANTS[variant])
    g.shN = torch.randn(g.shN.shape, generator=torch.Generator().manual_seed(1)) * 0.2
    posed = pose_gaussians(g, rig, rig.rest_globals(), method)
    np.testing.assert_allclose(posed.means.numpy(), g.means.numpy(), atol=2e-6)
    ok, err = quat_close(posed.quats, torch.nn.functional.normalize(g.quats, dim=-1), 2e-5)
    assert ok, err
    np.testing.assert_allclose(posed.scales.numpy(), g.scales.numpy(), atol=2e-5)
    np.testing.assert_allclose(posed.shN.numpy(), g.shN.numpy(), atol=2e-5)


# ---- view-dependent colour under a rigid move of the whole rig ------------------------------------


def test_sh_turns_with_each_gaussian_so_a_moved_rig_renders_the_same(tmp_path):
    """Pose the limb, render it; move the whole rig rigidly by T (turn + shift) and the camera
    with it: the image is the same only if each Gaussian's SH turned with it."""
    _, g, rig = limb_asset(tmp_path, count=6000, sh_degree=3)
    gen = torch.Generator().manual_seed(0)
    g.shN = torch.randn(g.shN.shape, generator=gen) * 0.35  # strong view dependence
    G = globals_at(rig, "bend", 0.8)
    T = np.eye(4)
    T[:3, :3] = quat_to_rotmat(torch.tensor([0.8, 0.3, -0.4, 0.33], dtype=torch.float64)).numpy()
    T[:3, 3] = [0.5, -0.2, 1.0]
    W = H = 64
    K = intrinsics(70.0, 70.0, W / 2, H / 2, torch.float32)[None]
    view = look_at([2.2, 1.3, 3.0], [-0.3, 1.0, 0.0], up=(0, 1, 0), dtype=torch.float64)
    view_moved = (view @ torch.from_numpy(np.linalg.inv(T))).float()

    def image(gs, v):
        return rasterization(gs, v[None], K, W, H, backend="cpu").rgb[0]

    a = image(pose_gaussians(g, rig, G, "lbs"), view.float())
    moved = pose_gaussians(g, rig, T @ G, "lbs")
    b = image(moved, view_moved)
    assert a.max() > 0.2 and (a - b).abs().max() < 2e-3, float((a - b).abs().max())
    # Without turning the SH the colours would differ: the test can fail.
    unturned = type(moved)(moved.means, moved.quats, moved.scales, moved.opacities, moved.sh0,
                           pose_gaussians(g, rig, G, "lbs").shN)
    assert (a - image(unturned, view_moved)).abs().max() > 0.05


# ---- dual quaternions ------------------------------------------------------------------------------


def test_dqs_keeps_a_twisted_joint_round_where_lbs_collapses(tmp_path):
    """Mid turned 180 degrees about the bone (clip 'twist' at 1 s): LBS pinches the tube at
    the joint to nothing (candy wrapper); DQS keeps its radius (0.2) and its volume."""
    _, g, rig = limb_asset(tmp_path, count=6000)
    G = globals_at(rig, "twist", 1.0)
    ring = (g.means[:, 1] > 0.95) & (g.means[:, 1] < 1.05)
    radius = {}
    for method in ("lbs", "dqs"):
        p = pose_gaussians(g, rig, G, method)
        radius[method] = float(torch.linalg.norm(p.means[ring][:, [0, 2]], dim=1).mean())
        vol = p.scales[ring].sum(1).exp().mean() / g.scales[ring].sum(1).exp().mean()
        radius[method + " volume"] = float(vol)
    assert radius["lbs"] < 0.03 and radius["lbs volume"] < 0.1, radius
    assert abs(radius["dqs"] - 0.2) < 0.01 and abs(radius["dqs volume"] - 1.0) < 0.05, radius


def test_dqs_and_lbs_agree_where_one_joint_rules(tmp_path):
    """Gaussians bound to one joint move rigidly under both (the tip scaled by 'grow' too)."""
    _, g, rig = limb_asset(tmp_path)
    single = torch.from_numpy(rig.weights.max(axis=1) > 0.9999)
    for clip, t in [("bend", 0.6), ("grow", 1.3), ("twist", 0.7)]:
        G = globals_at(rig, clip, t)
        a, b = pose_gaussians(g, rig, G, "lbs"), pose_gaussians(g, rig, G, "dqs")
        np.testing.assert_allclose(a.means[single].numpy(), b.means[single].numpy(), atol=1e-5)
        np.testing.assert_allclose(a.scales[single].numpy(), b.scales[single].numpy(), atol=1e-4)


# ---- per-Gaussian affine maps ---------------------------------------------------------------------


def covariance(g):
    R = quat_to_rotmat(g.quats.double())
    M = R * g.scales.double().exp()[:, None, :]
    return M @ M.transpose(1, 2)


@pytest.mark.parametrize("fused", [True, False])
def test_affine_maps_move_covariances_and_keep_rotations_exact(fused):
    gen = torch.Generator().manual_seed(3)
    g = random_gaussians(500, 3, dtype=torch.float64)
    L = torch.eye(3, dtype=torch.float64) + 0.3 * torch.randn(500, 3, 3, generator=gen, dtype=torch.float64)
    A = torch.cat([L, torch.randn(500, 3, 1, generator=gen, dtype=torch.float64)], dim=2)
    h = transform_gaussians_affine(g, A, fused=fused)
    want = L @ covariance(g) @ L.transpose(1, 2)
    rel = (covariance(h) - want).abs().amax((1, 2)) / want.abs().amax((1, 2))
    assert float(rel.max()) < 1e-5
    np.testing.assert_allclose(h.means.numpy(), (L @ g.means[:, :, None])[:, :, 0] + A[:, :, 3], atol=1e-12)
    # A pure rotation: the quaternion is turned, the scales are the same, axes keep their order.
    R = quat_to_rotmat(torch.randn(500, 4, generator=gen, dtype=torch.float64))
    h = transform_gaussians_affine(g, torch.cat([R, torch.zeros(500, 3, 1, dtype=torch.float64)], 2), fused=fused)
    ok, err = quat_close(h.quats, quat_multiply(rotmat_to_quat(R), torch.nn.functional.normalize(g.quats, dim=-1)),
                         1e-12)
    assert ok, err
    np.testing.assert_array_equal(h.scales.numpy(), g.scales.numpy())
    # Discs (two equal axes) under a near-rotation keep their frame rather than spinning in-plane.
    disc = g.clone()
    disc.scales[:, 1] = disc.scales[:, 0]
    Lr = R @ (torch.eye(3, dtype=torch.float64) + 1e-9 * torch.randn(500, 3, 3, generator=gen, dtype=torch.float64))
    h = transform_gaussians_affine(disc, torch.cat([Lr, torch.zeros(500, 3, 1, dtype=torch.float64)], 2), fused=fused)
    ok, err = quat_close(h.quats, quat_multiply(rotmat_to_quat(R), torch.nn.functional.normalize(g.quats, dim=-1)),
                         1e-6)
    assert ok, err


def test_fused_kernels_match_torch(tmp_path):
    _, g, rig = limb_asset(tmp_path, sh_degree=3, bind_differs=True)
    g.shN = torch.randn(g.shN.shape, generator=torch.Generator().manual_seed(2)) * 0.2
    G = globals_at(rig, "bend", 0.6)
    G[2] = G[2] @ np.diag([1.3, 0.8, 1.0, 1.0])  # a joint that also stretches (IK or a scale key)
    for method in ("lbs", "dqs"):
        a = pose_gaussians(g, rig, G, method, fused=True)
        b = pose_gaussians(g, rig, G, method, fused=False)
        np.testing.assert_allclose(a.means.numpy(), b.means.numpy(), atol=1e-6)
        # Discs have two equal axes: their in-plane frame may differ, their covariance may not.
        ca, cb = covariance(a), covariance(b)
        assert float(((ca - cb).abs().amax((1, 2)) / cb.abs().amax((1, 2))).max()) < 1e-5
        np.testing.assert_allclose(a.shN.numpy(), b.shN.numpy(), atol=1e-5)


def test_batched_sh_rotation_matches_one_rotation_at_a_time():
    gen = torch.Generator().manual_seed(5)
    for degree in (1, 2, 3, 4):
        k = (degree + 1) ** 2 - 1
        sh = torch.randn(6, k, 3, generator=gen, dtype=torch.float64)
        R = quat_to_rotmat(torch.randn(6, 4, generator=gen, dtype=torch.float64))
        batch = rotate_sh_coeffs_batch(sh, R)
        for i in range(6):
            np.testing.assert_allclose(batch[i:i + 1].numpy(), rotate_sh_coeffs(sh[i:i + 1], R[i]).numpy(),
                                       atol=1e-12)
        g = random_gaussians(6, degree, dtype=torch.float64)
        g.shN = sh
        fused = transform_gaussians_affine(g, torch.cat([R, torch.zeros(6, 3, 1, dtype=torch.float64)], 2), fused=True)
        np.testing.assert_allclose(fused.shN.numpy(), batch.numpy(), atol=1e-12)


def test_joint_depths_count_ancestors_in_any_order():
    # pose --joints indents by it, rig binding finds the topmost skinned joint by it.
    assert joint_depths(np.array([-1, 0, 1, 1, -1])).tolist() == [0, 1, 2, 2, 0]
    assert joint_depths(np.array([2, 0, -1])).tolist() == [1, 2, 0]  # children listed before parents
    assert joint_depths(np.array([], dtype=int)).tolist() == []
