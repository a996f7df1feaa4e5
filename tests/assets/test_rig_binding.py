"""`splatfilm rig`: binding a fitted capture to the skeleton of a rigged glTF, and the
explorer's rigged glTF that scenes/make_captures.py writes.

The synthetic capture is the limb of tests/rigged_gltf.py (a tube along +y, bones root,
mid, tip) covered by Gaussians on its surface (import-mesh's samples, whose weights are the
mesh's), a few pushed off the surface (still within reach) and a few far away."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from helpers import REPO, cli_error
from rigged_gltf import spec_skin, distance_to_triangles, write_limb

from splatfilm.assets.mesh_import import import_mesh
from splatfilm.assets.posing import pose_asset
from splatfilm.assets.rig_binding import FRAME_JOINT, closest_points_on_triangles, rig_capture
from splatfilm.assets.sidecar import Sidecar
from splatfilm.cli import main
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.io.rig_files import load_rig
from splatfilm.io.asset_files import rig_path
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import Similarity, axis_rotation

COUNT = 3000
# Far Gaussians (glTF frame; the limb's diagonal is 2.08: max distance 0.104, floaters beyond
# 0.416): beside the root-mid bone, beside the mid-tip bone, and a floater past the tip,
# which follows the skeleton's root node (the armature).
FAR = np.array([[0.0, 0.4, 0.48], [-0.5, 1.6, 0.0], [1.2, 2.3, 0.0]])
FAR_BONES = ["root", "mid", "Armature"]
JITTER = 0.03  # off the surface along its normal (the tube's radial direction)


def dense(joints: np.ndarray, weights: np.ndarray, names: list[str], order: list[str]) -> np.ndarray:
    """Weights [N, len(order)] by joint name."""
    out = np.zeros((len(joints), len(order)))
    for k in range(joints.shape[1]):
        for i, name in enumerate(order):
            out[:, i] += np.where(np.array(names)[joints[:, k]] == name, weights[:, k], 0.0)
    return out


def capture(tmp_path, to_asset: Similarity = Similarity(), sidecar: dict | None = None):
    """The limb, its import (the reference), and a 'fitted' capture made of the import's
    Gaussians plus jittered and far ones, in the asset frame `to_asset` (of the glTF frame).
    Returns (limb, import Gaussians, import rig, capture path, index of the jittered ones)."""
    limb = write_limb(tmp_path / "limb.glb")
    import_mesh(tmp_path / "limb.glb", tmp_path / "import.ply", count=COUNT)
    g = load_gaussians(tmp_path / "import.ply")
    rig = load_rig(rig_path(tmp_path / "import.ply"))
    means = g.means.double().numpy()
    rng = np.random.default_rng(1)
    pick = rng.choice(len(means), 200, replace=False)
    pick = pick[(means[pick, 1] > 0.1) & (means[pick, 1] < 1.9)]  # the tube's side, not its open ends
    radial = means[pick] * [1, 0, 1]
    jittered = means[pick] + JITTER * radial / np.linalg.norm(radial, axis=1, keepdims=True)
    extra = np.vstack([jittered, FAR])
    n = len(extra)
    more = Gaussians.from_activated(
        means=torch.from_numpy(extra).float(), quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        scales=torch.full((n, 3), 0.01), opacities=torch.full((n,), 0.9), colors=torch.full((n, 3), 0.5))
    allg = to_asset.transform_gaussians(Gaussians.concat([g, more]))
    path = tmp_path / "fitted.ply"
    save_gaussians(path, allg)
    if sidecar is not None:
        Sidecar(sidecar).write(path.with_suffix(".json"))
    jit = np.arange(len(g), len(g) + len(jittered))
    return limb, g, rig, path, jit, pick


def test_bind_same_frame_weights_smoothness_far_and_pose(tmp_path, capsys):
    from splatfilm.io.asset_files import capture_cameras_path, read_capture_cameras, write_capture_cameras
    from splatfilm.scene.cameras import Cameras

    limb, g, rig, fitted, jit, pick = capture(tmp_path)
    n = len(g)
    # The capture's cameras come along, so `clean` and `mesh` of the bound asset find them (they were dropped).
    cams = Cameras.from_c2w_opengl(np.eye(4)[None], np.array([[[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]]), [64], [48],
                                   names=["view_0.png"])
    write_capture_cameras(fitted, cams)
    capsys.readouterr()
    assert main(["rig", str(fitted), "--skeleton", str(tmp_path / "limb.glb"), "-o", str(tmp_path / "hero.ply"),
                 "--same-frame"]) == 0
    # The limb's armature and mesh node are kept as nodes, not counted as the skin's joints.
    assert "5 nodes, 3 of them skin joints, clips:" in capsys.readouterr().out
    hero = tmp_path / "hero.ply"
    assert hero.read_bytes() == fitted.read_bytes()  # the Gaussians unchanged
    # An antialiased capture whose .spz flag alone says so keeps it bound (it became classic).
    from splatfilm.assets.sidecar import asset_rasterize_mode
    from splatfilm.io.spz import spz_antialiased

    flagged = tmp_path / "aa" / "limb.spz"
    flagged.parent.mkdir()
    save_gaussians(flagged, load_gaussians(fitted), antialiased=True)
    for out in ("hero.spz", "bound.ply"):
        assert main(["rig", str(flagged), "--skeleton", str(tmp_path / "limb.glb"), "-o",
                     str(tmp_path / "aa" / out), "--same-frame"]) == 0
        assert asset_rasterize_mode(tmp_path / "aa" / out) == "antialiased"
    assert spz_antialiased(tmp_path / "aa" / "hero.spz")
    assert capture_cameras_path(hero).exists() and read_capture_cameras(hero).names == ["view_0.png"]
    bound = load_rig(rig_path(hero), n + len(jit) + len(FAR))
    assert bound.joint_names == rig.joint_names and set(bound.clips) == set(rig.clips)
    assert bound.in_skin.tolist() == rig.in_skin.tolist()
    order = ["root", "mid", "tip", "Armature"]
    mine = dense(bound.joints, bound.weights, bound.joint_names, order)
    ref = dense(rig.joints, rig.weights, rig.joint_names, order)

    # On the surface: the mesh's weights (smoothing moves them only where they bend).
    diff = np.abs(mine[:n] - ref).max(axis=1)
    assert np.median(diff) < 0.01 and diff.max() < 0.08, (np.median(diff), diff.max())
    # Jittered off the surface: the weights of the surface point below.
    diff_j = np.abs(mine[jit] - ref[pick]).max(axis=1)
    assert diff_j.max() < 0.08, diff_j.max()
    # Smooth across the mid joint: close neighbours never differ much.
    from scipy.spatial import cKDTree

    means = load_gaussians(hero).means.double().numpy()[:n]
    pairs = cKDTree(means).query_pairs(0.05, output_type="ndarray")
    jump = np.abs(mine[pairs[:, 0]] - mine[pairs[:, 1]]).max(axis=1)
    assert jump.max() < 0.15, jump.max()
    # Far ones: rigidly on the nearest bone.
    far = mine[-len(FAR):]
    for row, bone in zip(far, FAR_BONES):
        assert row[order.index(bone)] == pytest.approx(1.0)

    # Posed: the surface Gaussians follow the surface as the mesh import's do, the jittered ones
    # stay their distance off the posed surface.
    pose_asset(hero, tmp_path / "hero_bend.ply", "bend", 1.0)
    pose_asset(tmp_path / "import.ply", tmp_path / "import_bend.ply", "bend", 1.0)
    posed = load_gaussians(tmp_path / "hero_bend.ply").means.double().numpy()
    ref_posed = load_gaussians(tmp_path / "import_bend.ply").means.double().numpy()
    err = np.linalg.norm(posed[:n] - ref_posed, axis=1)
    assert np.median(err) < 2e-3 and err.max() < 0.03, (np.median(err), err.max())
    (v, f), = spec_skin(limb, "bend", 1.0)
    d = distance_to_triangles(posed[jit], v, f)
    assert np.all((d > 0.3 * JITTER) & (d < 1.5 * JITTER)), (d.min(), d.max())  # attached, no tearing
    rigid = np.abs(load_gaussians(fitted).means.double().numpy()[jit, 1] - 1.0) > 0.35  # outside the bend's blend
    assert rigid.sum() > 20 and np.all(np.abs(d[rigid] - JITTER) < 4e-3), d[rigid]
    # pose --list works on the bound asset.
    capsys.readouterr()
    assert main(["pose", str(hero), "--list"]) == 0
    assert "bend" in capsys.readouterr().out


def test_bound_to_a_compressed_ply_it_is_one_and_its_rig_rows_follow_its_order(tmp_path):
    """`rig FITTED.ply -o HERO.compressed.ply` writes SuperSplat's compressed layout (it copied
    the plain PLY's bytes: the extensions alone matched), its rig's rows in the order the file
    holds the Gaussians (Morton order), so posed it is the bound .ply posed."""
    _, _, _, fitted, _, _ = capture(tmp_path)
    plain, packed = tmp_path / "hero.ply", tmp_path / "hero.compressed.ply"
    for out in (plain, packed):
        rig_capture(fitted, tmp_path / "limb.glb", out, same_frame=True)
    assert b"element chunk " in packed.read_bytes()[:1000]
    # The order the writer gives (a fitted capture has Gaussians closer than its quantisation).
    g = load_gaussians(plain)
    rows = save_gaussians(tmp_path / "probe.compressed.ply", g)
    assert (load_gaussians(packed).means - g.means[rows]).abs().max() < 2e-3
    bound, copied = load_rig(rig_path(plain)), load_rig(rig_path(packed))
    np.testing.assert_array_equal(copied.joints, bound.joints[rows])
    np.testing.assert_array_equal(copied.weights, bound.weights[rows])
    for out in (plain, packed):
        pose_asset(out, tmp_path / f"{out.name.split('.')[0]}_{len(out.suffixes)}_bend.ply", "bend", 1.0)
    posed = load_gaussians(tmp_path / "hero_2_bend.ply").means.double().numpy()
    ref = load_gaussians(tmp_path / "hero_1_bend.ply").means.double().numpy()
    assert np.abs(posed - ref[rows]).max() < 4e-3


@pytest.mark.parametrize("units", [1.0, 2.5])
def test_bind_through_canonical_frames(tmp_path, units):
    """A capture in its own Z-up frame, its sidecar's canonical transform a little off (as a
    fit's robust bounds are): the canonical frames place the skeleton, ICP takes out the rest,
    and posing the bound capture matches posing the mesh import, carried into that frame.
    units: the capture's units per metre (SfM's are arbitrary; a fit's canonical frame keeps
    them, scale 1): the skeleton is scaled to the figure's height."""
    R = axis_rotation("z", 0.4) @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # Y-up -> Z-up, turned
    to_asset = Similarity(R, np.array([0.5, -0.2, 0.1]), units)
    # The limb's canonical frame from the glTF: up +y -> z, front +z -> -y, centred, base on 0.
    from splatfilm.assets.mesh_import import canonical_from_vertices

    limb = write_limb(tmp_path / "probe.glb")
    canon = Similarity.from_dict(canonical_from_vertices(limb.meshes[0][0], np.array([0.0, 1, 0]),
                                                         np.array([0.0, 0, 1])))
    # asset -> canonical, with a 2 cm error in the sidecar (the true one is canon @ to_asset^-1,
    # in the capture's units as a fit writes it).
    truth = Similarity(scale=units) @ canon @ to_asset.inverse()
    # (tilted about x: a turn about the tube's own axis would not show, nor matter)
    wrong = Similarity(axis_rotation("x", 0.02) @ truth.rotation, truth.translation + units * np.array([0.02, -0.01, 0.01]))
    sidecar = {"kind": "object", "canonical_transform": {"rotation": wrong.rotation.tolist(),
                                                         "translation": wrong.translation.tolist(), "scale": 1.0}}
    limb, g, rig, fitted, jit, pick = capture(tmp_path, to_asset, sidecar)
    sc = rig_capture(fitted, tmp_path / "limb.glb", tmp_path / "hero.ply")
    frame = Similarity.from_dict(sc["rig"]["binding"]["gltf_to_asset"])
    # The tube's axis lands on its place (a turn about the axis itself is barely observable).
    axis = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 1.0, 0.0]])
    # 0.2% of its length; in other units, whose scale is estimated (heights, then ICP with
    # scale), 0.6%: a tube's scale and its place along its axis trade against each other.
    np.testing.assert_allclose(frame.apply(axis), to_asset.apply(axis), atol=(4e-3 if units == 1 else 1.2e-2) * units)
    assert sc["canonical_transform"] == sidecar["canonical_transform"]  # the fit's frame is kept
    bound = load_rig(rig_path(tmp_path / "hero.ply"))
    assert bound.joint_names[0] == FRAME_JOINT and bound.joint_names[1:] == rig.joint_names
    assert bound.in_skin.tolist() == [False] + rig.in_skin.tolist()  # the frame is no bone either
    # The inverse binds map the asset's frame into each joint's space: at the rest pose (this
    # file's bind pose) every skinning matrix is the identity, as in the glTF.
    from splatfilm.scene.skeleton import global_transforms

    S = global_transforms(bound, bound.rest) @ bound.inverse_binds
    np.testing.assert_allclose(S, np.broadcast_to(np.eye(4), S.shape), atol=1e-9)

    pose_asset(tmp_path / "hero.ply", tmp_path / "hero_bend.ply", "bend", 1.5)
    pose_asset(tmp_path / "import.ply", tmp_path / "import_bend.ply", "bend", 1.5)
    posed = load_gaussians(tmp_path / "hero_bend.ply").means.double().numpy()[:len(g)]
    ref = to_asset.apply(load_gaussians(tmp_path / "import_bend.ply").means.double().numpy())
    err = np.linalg.norm(posed - ref, axis=1) / units  # in metres of the figure
    assert np.median(err) < (3e-3 if units == 1 else 7e-3) and err.max() < 0.03, (np.median(err), err.max())


def test_closest_points_on_triangles_against_brute_force():
    rng = np.random.default_rng(3)
    tris = rng.normal(size=(400, 3, 3))
    pts = rng.normal(size=(400, 3)) * 2
    q, bary = closest_points_on_triangles(pts, tris)
    assert np.all(bary >= -1e-9) and np.allclose(bary.sum(1), 1)
    # Brute force: a fine grid of barycentric points on each triangle.
    u, v = np.meshgrid(np.linspace(0, 1, 60), np.linspace(0, 1, 60))
    keep = u + v <= 1
    grid = np.stack([1 - u[keep] - v[keep], u[keep], v[keep]], 1)
    cand = np.einsum("gk,pkc->pgc", grid, tris)
    brute = np.linalg.norm(cand - pts[:, None], axis=-1).min(1)
    mine = np.linalg.norm(q - pts, axis=1)
    assert np.all(mine <= brute + 1e-9) and np.all(brute - mine < 0.05)


# ---- errors: one line, exit 2, nothing written ---------------------------------------------------


def _static_glb(path):
    import trimesh

    trimesh.creation.box().export(path)


def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, capsys):
    limb, g, rig, fitted, jit, pick = capture(tmp_path)
    skel = tmp_path / "limb.glb"
    out = tmp_path / "out" / "hero.ply"
    _static_glb(tmp_path / "box.glb")
    import trimesh

    trimesh.creation.box().export(tmp_path / "mesh.ply")
    (tmp_path / "notes.ply").write_text("hello\n")
    (tmp_path / "cut.glb").write_bytes(skel.read_bytes()[:40])  # cut inside its JSON chunk
    (tmp_path / "notes.glb").write_text("hello\n")
    far = tmp_path / "far.ply"
    save_gaussians(far, g.transformed(torch.eye(3), torch.tensor([10.0, 0.0, 0.0])))
    cases = [
        (["rig", fitted, "--skeleton", tmp_path / "box.glb", "-o", out], "has no skin"),
        (["rig", fitted, "--skeleton", tmp_path / "missing.glb", "-o", out], "no such file"),
        (["rig", fitted, "--skeleton", tmp_path / "cut.glb", "-o", out], "cut.glb: cannot read the mesh: the header"),
        (["rig", fitted, "--skeleton", tmp_path / "notes.glb", "-o", out], "notes.glb: cannot read the mesh: not a binary"),
        (["rig", tmp_path / "mesh.ply", "--skeleton", skel, "-o", out, "--same-frame"], "mesh.ply"),
        (["rig", tmp_path / "notes.ply", "--skeleton", skel, "-o", out, "--same-frame"], "notes.ply"),
        (["rig", fitted, "--skeleton", skel, "-o", fitted, "--same-frame"], "would overwrite the fitted capture"),
        (["rig", far, "--skeleton", skel, "-o", out, "--same-frame"], "the frames do not overlap"),
        (["rig", fitted, "--skeleton", skel, "-o", out], "has no sidecar"),  # no sidecar: no frame
        (["rig", fitted, "--skeleton", skel, "-o", tmp_path / "out" / "hero.obj", "--same-frame"],
         ".ply, .splat, .spz, .sog or .usd/.usda/.usdc file"),
        (["rig", fitted, "--skeleton", skel, "-o", out, "--same-frame", "--max-distance", "-1"], "--max-distance"),
    ]
    before = fitted.read_bytes()
    for args, message in cases:
        err = cli_error(capsys, args)
        assert message in err, (args, err)
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), args
    assert fitted.read_bytes() == before and not rig_path(fitted).exists()


# ---- the explorer's rigged glTF (scenes/make_captures.py --only rig) ------------------------------


def test_explorer_gltf_imports_with_its_joints_and_clips(tmp_path):
    sys.path.insert(0, str(REPO / "scenes"))
    try:
        import make_captures
    finally:
        sys.path.remove(str(REPO / "scenes"))
    make_captures.main(["--only", "rig", "--out", str(tmp_path)])
    glb = tmp_path / "character" / "explorer_rigged.glb"
    sidecar = import_mesh(glb, tmp_path / "explorer.ply", count=4000)
    rig = load_rig(rig_path(tmp_path / "explorer.ply"))
    for name in ("hips", "spine", "neck", "head", "upper_arm_l", "forearm_r", "thigh_l", "shin_r", "foot_l", "foot_r"):
        rig.joint_index(name)
    assert rig.clips["idle"].duration == pytest.approx(4.0) and rig.clips["walk"].duration == pytest.approx(1.0)
    for clip in rig.clips.values():  # loops: the last key is the first
        for ch in clip.channels:
            np.testing.assert_allclose(ch.values[-1], ch.values[0], atol=1e-6)
    # It lands where the explorer is: the glTF frame turned back to Z up is the capture's frame.
    means = load_gaussians(tmp_path / "explorer.ply").means.double().numpy() @ make_captures.Z_UP_TO_GLTF
    assert means[:, 2].min() == pytest.approx(0.0, abs=2e-3) and means[:, 2].max() == pytest.approx(0.66, abs=2e-3)
    head = means[:, 2] > 0.5  # the head, the face and the hat
    assert set(np.array(rig.joint_names)[rig.joints[head, 0]]) == {"head"}
    boots = means[:, 2] < 0.04
    assert set(np.array(rig.joint_names)[rig.joints[boots, 0]]) == {"foot_l", "foot_r"}
    ct = Similarity.from_dict(sidecar["canonical_transform"])  # the canonical frame: within 2 cm of it
    probe = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.66]]) @ make_captures.Z_UP_TO_GLTF.T
    assert np.abs(ct.apply(probe) - [[0, 0, 0], [0, 0, 0.66]]).max() < 0.02
    # The walk moves the legs: a foot joint travels, the head barely does.
    from splatfilm.scene.skeleton import global_transforms, sample_clip

    a = global_transforms(rig, sample_clip(rig, "walk", 0.0))
    b = global_transforms(rig, sample_clip(rig, "walk", 0.5))
    moved = np.linalg.norm(a[:, :3, 3] - b[:, :3, 3], axis=1)
    assert moved[rig.joint_index("foot_l")] > 0.05 and moved[rig.joint_index("head")] < 0.02
    assert json.loads(json.dumps(sidecar["rig"]["clips"])) == {"idle": 4.0, "walk": 1.0}
