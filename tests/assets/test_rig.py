"""Skinned glTF import (`splatfilm import-mesh RIGGED.glb`), the rig file, clip sampling and
`splatfilm pose`: small rigs built here with pygltflib (tests/rigged_gltf.py), every
broken-file case through the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from helpers import capture_beside_rigged, cli_error
from rigged_gltf import FLOAT, UBYTE, quat_xyzw, write_limb

from splatfilm.assets.cleanup import CleanupSettings, supported
from splatfilm.assets.mesh_import import import_mesh
from splatfilm.io.asset_files import capture_cameras_path, rig_path
from splatfilm.cli import main
from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.io.rig_files import load_rig, save_rig
from splatfilm.scene.skeleton import Animation, global_transforms, sample_channel, sample_clip

COUNT = 3000


def imported(tmp_path, name="limb", count=COUNT, **kw):
    """Write a limb (write_limb options), import it; returns (limb, Gaussians, Rig, sidecar)."""
    ext = ".glb" if kw.get("how", "glb") == "glb" else ".gltf"
    limb = write_limb(tmp_path / f"{name}{ext}", **kw)
    sidecar = import_mesh(tmp_path / f"{name}{ext}", tmp_path / f"{name}.ply", count=count)
    return limb, load_gaussians(tmp_path / f"{name}.ply"), load_rig(rig_path(tmp_path / f"{name}.ply")), sidecar


def channel(rig, clip):
    (ch,) = rig.clips[clip].channels
    return ch


def saved_from(copy: Path, g, tol: float) -> np.ndarray:
    """For each Gaussian of the asset file `copy` (a copy of the Gaussians g, in whatever order
    its format keeps), the row of g it was saved from: the nearest by rest position, within
    `tol` (the format's quantisation), checked to be one to one."""
    from scipy.spatial import cKDTree

    gap, rows = cKDTree(g.means.double().numpy()).query(load_gaussians(copy).means.double().numpy())
    assert gap.max() < tol and len(np.unique(rows)) == len(rows), (gap.max(), len(np.unique(rows)), len(rows))
    return rows


def posed_means(asset: Path, tmp_path: Path) -> np.ndarray:
    """`splatfilm pose ASSET --clip bend --time 1` (the limb's top at 90 degrees): its means [N,3]."""
    out = tmp_path / f"{asset.name.split('.')[0]}_bent.ply"
    assert main(["pose", str(asset), "--clip", "bend", "--time", "1", "-o", str(out)]) == 0
    return load_gaussians(out).means.double().numpy()


# ---- import -------------------------------------------------------------------------------------


def test_rigged_import_writes_asset_rig_and_sidecar(tmp_path):
    limb, g, rig, sidecar = imported(tmp_path)
    assert rig.joint_names == ["Armature", "root", "mid", "tip", "body0"]
    assert rig.parents.tolist() == [-1, 0, 1, 2, -1]
    assert list(rig.clips) == ["bend", "hop", "grow", "twist"]
    assert rig.clips["bend"].duration == pytest.approx(2.0) and rig.clips["hop"].duration == pytest.approx(1.0)
    assert rig.joints.shape == (len(g), 4) and rig.weights.shape == (len(g), 4)
    np.testing.assert_allclose(rig.weights.sum(1), 1.0, atol=1e-6)
    # The Gaussians follow the bones their height says: root low, mid above the blend zone.
    y = g.means[:, 1].numpy()
    heaviest = rig.joints[np.arange(len(g)), rig.weights.argmax(1)]
    assert np.all(heaviest[y < 0.6] == 1) and np.all(heaviest[(y > 1.4) & (y < 1.6)] == 2)
    assert sidecar["rig"]["file"] == "limb.rig.npz" and sidecar["rig"]["version"] == 1
    assert sidecar["rig"]["clips"] == {"bend": 2.0, "hop": 1.0, "grow": 2.0, "twist": 1.0}
    on_disk = json.loads((tmp_path / "limb.json").read_text())
    assert on_disk["rig"]["joints"] == 5


def test_rigged_import_lands_where_the_static_copy_does(tmp_path):
    """A skeleton whose root has a transform (turned, moved): the rigged file imports to the
    same Gaussians as the same file without its skin (trimesh's static placement)."""
    arm = ((1.0, 0.2, 0.5), quat_xyzw([0, 1, 0], 30), (1.0, 1.0, 1.0))
    _, g, _, sidecar = imported(tmp_path, armature=arm)

    def unskin(b, limb):
        b.g.skins = []
        for n in b.g.nodes:
            n.skin = None
        for m in b.g.meshes:
            for p in m.primitives:
                p.attributes.JOINTS_0 = p.attributes.WEIGHTS_0 = None

    write_limb(tmp_path / "static.glb", armature=arm, mutate=unskin)
    static_sidecar = import_mesh(tmp_path / "static.glb", tmp_path / "static.ply", count=COUNT)
    static = load_gaussians(tmp_path / "static.ply")
    assert not rig_path(tmp_path / "static.ply").exists() and "rig" not in static_sidecar
    np.testing.assert_allclose(g.means.numpy(), static.means.numpy(), atol=1e-5)
    np.testing.assert_allclose(sidecar["canonical_transform"]["translation"],
                               static_sidecar["canonical_transform"]["translation"], atol=1e-5)


def test_rigged_import_to_a_static_mesh_removes_the_old_rig(tmp_path):
    imported(tmp_path)
    assert rig_path(tmp_path / "limb.ply").exists()

    def unskin(b, limb):
        b.g.skins = []
        for n in b.g.nodes:
            n.skin = None

    write_limb(tmp_path / "plain.glb", mutate=unskin)
    import_mesh(tmp_path / "plain.glb", tmp_path / "limb.ply", count=500)
    assert not rig_path(tmp_path / "limb.ply").exists()


# ---- sampling: hand-computed values -------------------------------------------------------------


def test_step_sampling(tmp_path):
    _, _, rig, _ = imported(tmp_path, count=300)
    ch = channel(rig, "hop")
    assert ch.interpolation == "STEP" and ch.path == "translation" and rig.joint_names[ch.joint] == "root"
    for t, y in [(0.0, 0.0), (0.49, 0.0), (0.5, 0.3), (0.99, 0.3), (1.0, 0.1), (7.0, 0.1), (-1.0, 0.0)]:
        np.testing.assert_allclose(sample_channel(ch, t), [0.0, y, 0.0], atol=1e-6)


def test_linear_rotation_sampling_is_slerp(tmp_path):
    _, _, rig, _ = imported(tmp_path, count=300)
    ch = channel(rig, "bend")
    # keys: 0 deg at 0 s, 90 deg about z at 1 s, 45 deg at 2 s; (w, x, y, z)
    for t, deg in [(0.0, 0.0), (0.5, 45.0), (0.25, 22.5), (1.0, 90.0), (1.5, 67.5), (3.0, 45.0)]:
        h = np.radians(deg) / 2
        np.testing.assert_allclose(sample_channel(ch, t), [np.cos(h), 0.0, 0.0, np.sin(h)], atol=1e-6)
    # A clip replaces only what it animates: at 0.5 s mid turns, the rest keeps its rest pose.
    pose = sample_clip(rig, "bend", 0.5)
    np.testing.assert_allclose(pose.translation, rig.rest.translation)
    mid = rig.joint_index("mid")
    np.testing.assert_allclose(np.delete(pose.rotation, mid, 0), np.delete(rig.rest.rotation, mid, 0))


def test_cubicspline_sampling(tmp_path):
    _, _, rig, _ = imported(tmp_path, count=300)
    ch = channel(rig, "grow")
    assert ch.interpolation == "CUBICSPLINE" and ch.values.shape == (2, 3, 3)
    # keys: t=0 value (1,1,1) out-tangent (0.5,0,0); t=2 in-tangent (0,1,0) value (2,1,1).
    # At t=1 (u=0.5, dt=2): 0.5 p0 + 0.125 dt m0 + 0.5 p1 - 0.125 dt m1.
    np.testing.assert_allclose(sample_channel(ch, 1.0), [1.625, 0.75, 1.0], atol=1e-6)
    # u=0.25: h00=0.84375, h10=0.140625, h01=0.15625, h11=-0.046875
    np.testing.assert_allclose(sample_channel(ch, 0.5), [0.84375 + 0.140625 + 0.3125, 0.84375 + 0.15625 - 0.09375,
                                                         1.0], atol=1e-6)
    np.testing.assert_allclose(sample_channel(ch, 2.0), [2.0, 1.0, 1.0], atol=1e-6)


def test_rotation_keys_as_normalised_shorts_and_cubic_rotation(tmp_path):
    """Rotation outputs may be normalised SHORTs (KHR_mesh_quantization style); cubic
    rotations are normalised after the Hermite blend."""
    def nod(b, limb):
        q = np.array([[0, 0, 0, 1], quat_xyzw([1, 0, 0], 90)])
        out = b.accessor(np.round(q * 32767).astype("<i2").view("<u2"), 5123, "VEC4")
        b.g.accessors[out].componentType = 5122  # SHORT
        b.g.accessors[out].normalized = True
        inp = b.accessor(np.array([0.0, 1.0], np.float32), FLOAT, "SCALAR")
        cubic = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0],
                          [0, 0, 0, 0], quat_xyzw([1, 0, 0], 90), [0, 0, 0, 0]], np.float32)
        out2 = b.accessor(cubic, FLOAT, "VEC4")
        b.g.animations.append(pygltflib.Animation(name="nod", samplers=[
            pygltflib.AnimationSampler(input=inp, output=out, interpolation="LINEAR"),
            pygltflib.AnimationSampler(input=inp, output=out2, interpolation="CUBICSPLINE")], channels=[
            pygltflib.AnimationChannel(sampler=0, target=pygltflib.AnimationChannelTarget(node=3, path="rotation")),
            pygltflib.AnimationChannel(sampler=1, target=pygltflib.AnimationChannelTarget(node=2, path="rotation"))]))

    _, _, rig, _ = imported(tmp_path, count=300, mutate=nod)
    lin, cub = rig.clips["nod"].channels
    h = np.radians(45) / 2
    np.testing.assert_allclose(sample_channel(lin, 0.5), [np.cos(h), np.sin(h), 0, 0], atol=1e-4)
    # Zero tangents, symmetric keys: half way is the normalised mean of the two keys (45 deg).
    np.testing.assert_allclose(sample_channel(cub, 0.5), [np.cos(h), np.sin(h), 0, 0], atol=1e-6)


def test_matrix_nodes_and_trs_nodes_give_the_same_rig(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, g1, r1, _ = imported(tmp_path / "a", count=500)
    _, g2, r2, _ = imported(tmp_path / "b", count=500, matrix_nodes=True)
    np.testing.assert_allclose(r1.rest_globals(), r2.rest_globals(), atol=1e-6)
    np.testing.assert_allclose(global_transforms(r1, sample_clip(r1, "bend", 0.7)),
                               global_transforms(r2, sample_clip(r2, "bend", 0.7)), atol=1e-6)
    np.testing.assert_allclose(g1.means.numpy(), g2.means.numpy(), atol=1e-6)


# ---- the rig file -------------------------------------------------------------------------------


def test_rig_file_round_trip_and_versions(tmp_path):
    _, g, rig, _ = imported(tmp_path, count=300)
    save_rig(tmp_path / "copy.rig.npz", rig, "limb.ply")
    back = load_rig(tmp_path / "copy.rig.npz", len(g))
    assert back.joint_names == rig.joint_names and back.parents.tolist() == rig.parents.tolist()
    np.testing.assert_array_equal(back.joints, rig.joints)
    np.testing.assert_array_equal(back.weights, rig.weights)
    np.testing.assert_array_equal(back.inverse_binds, rig.inverse_binds)
    assert back.in_skin.tolist() == rig.in_skin.tolist() == [False, True, True, True, False]
    for name in rig.clips:
        for a, b in zip(rig.clips[name].channels, back.clips[name].channels):
            assert (a.joint, a.path, a.interpolation) == (b.joint, b.path, b.interpolation)
            np.testing.assert_array_equal(a.values, b.values)
    with pytest.raises(SplatfilmError, match="binds 300 Gaussians but the asset has 299"):
        load_rig(tmp_path / "copy.rig.npz", 299)

    data = dict(np.load(tmp_path / "copy.rig.npz"))
    header = json.loads(data["header"].tobytes())
    header["version"] = 2
    data["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "new.rig.npz", **data)
    with pytest.raises(SplatfilmError, match=r"new.rig.npz: header.version: is 2: written by a newer splatfilm"):
        load_rig(tmp_path / "new.rig.npz")
    data["gaussian_joints"] = data["gaussian_joints"] + 9
    header["version"] = 1
    data["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "bad.rig.npz", **data)
    with pytest.raises(SplatfilmError, match=r"bad.rig.npz: gaussian_joints: joint \d+ is out of range \(5 joints\)"):
        load_rig(tmp_path / "bad.rig.npz")
    (tmp_path / "junk.rig.npz").write_bytes(b"not a zip")
    with pytest.raises(SplatfilmError, match="junk.rig.npz: not a splatfilm rig file"):
        load_rig(tmp_path / "junk.rig.npz")


def test_a_clip_keyed_after_zero_spans_its_keys(tmp_path, capsys):
    """Blender keys an action from frame 1 (1/30 s at 30 fps) unless told to slide it to
    zero. Its duration was taken as its last key's time (1.033 s for a 1 s cycle), so it
    looped over [0, 1.033] holding its first pose a frame each cycle. It now spans its keys:
    the rig file keeps its start (a file written before that reads as starting at 0), `pose
    --list` says where the keys lie, and `pose --time` counts from the first key."""
    _, g, rig, _ = imported(tmp_path, count=300)
    asset = str(tmp_path / "limb.ply")
    assert main(["pose", asset, "--clip", "hop", "--time", "0.4", "-o", str(tmp_path / "from0.ply")]) == 0
    hop = rig.clips["hop"]
    rig.clips["hop"] = Animation.of_channels("hop", [replace(ch, times=ch.times + 1 / 30) for ch in hop.channels])
    save_rig(rig_path(asset), rig, "limb.ply")
    back = load_rig(rig_path(asset), len(g)).clips["hop"]
    assert back.start == pytest.approx(1 / 30) and back.duration == pytest.approx(hop.duration)
    capsys.readouterr()
    assert main(["pose", asset, "--list"]) == 0
    assert "hop    1.000 s  (keys at 0.033-1.033 s in the file)" in capsys.readouterr().out.splitlines()
    assert main(["pose", asset, "--clip", "hop", "--time", "0.4", "-o", str(tmp_path / "from1.ply")]) == 0
    np.testing.assert_allclose(load_gaussians(tmp_path / "from1.ply").means.numpy(),
                               load_gaussians(tmp_path / "from0.ply").means.numpy(), atol=1e-5)
    # A rig file from before clips kept their start: the clip starts at 0, lasting to its last key.
    data = dict(np.load(rig_path(asset)))
    header = json.loads(data["header"].tobytes())
    for clip in header["clips"]:
        clip["duration"] = clip.pop("start") + clip["duration"]
    data["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "old.rig.npz", **data)
    old = load_rig(tmp_path / "old.rig.npz").clips["hop"]
    assert old.start == 0.0 and old.duration == pytest.approx(1 + 1 / 30)


# ---- broken files: one line, exit 2, nothing written ---------------------------------------------


def _replace_attribute(b, name: str, fn):
    """Replace the first mesh's `name` accessor by fn(decoded values) (a fresh float/ubyte accessor)."""
    prim = b.g.meshes[0].primitives[0]
    acc = b.g.accessors[getattr(prim.attributes, name)]
    view = b.g.bufferViews[acc.bufferView]
    dtype = "<u1" if acc.componentType == UBYTE else "<f4"
    values = np.frombuffer(bytes(b.blob[view.byteOffset:view.byteOffset + view.byteLength]), dtype).reshape(-1, 4)
    new = fn(values.copy())
    setattr(prim.attributes, name, b.accessor(new, acc.componentType, "VEC4", normalized=acc.normalized))


def _joint_out_of_range(b, limb):
    def fn(j):
        j[7] = [5, 0, 0, 0]
        return j
    _replace_attribute(b, "JOINTS_0", fn)


def _zero_weights(b, limb):
    def fn(w):
        w[4] = 0.0
        return w
    _replace_attribute(b, "WEIGHTS_0", fn)


def _short_inverse_binds(b, limb):
    b.g.skins[0].inverseBindMatrices = b.accessor(np.array([np.eye(4).reshape(-1)] * 2), FLOAT, "MAT4")


def _singular_inverse_bind(b, limb):
    m = [np.linalg.inv(np.eye(4)).T.reshape(-1) for _ in range(3)]
    m[1] = np.diag([1.0, 0.0, 1.0, 1.0]).reshape(-1)
    b.g.skins[0].inverseBindMatrices = b.accessor(np.array(m), FLOAT, "MAT4")


def _channel_to_missing_node(b, limb):
    b.g.animations[0].channels[0].target.node = 99


def _accessor_past_the_end(b, limb):
    b.g.accessors[b.g.meshes[0].primitives[0].attributes.WEIGHTS_0].count = 10**6


def _sparse_index_out_of_range(b, limb):
    acc = b.g.accessors[b.g.meshes[0].primitives[0].attributes.WEIGHTS_0]
    idx = np.array([3, 10**4], np.uint16)
    vals = np.zeros((2, 4), np.float32)
    acc.sparse = pygltflib.Sparse(count=2, indices=pygltflib.AccessorSparseIndices(bufferView=b.view(idx.tobytes()),
                                                                                 componentType=5123),
                                  values=pygltflib.AccessorSparseValues(bufferView=b.view(vals.tobytes())))


def _sheared_matrix_node(b, limb):
    m = np.eye(4)
    m[0, 1] = 0.5
    b.g.nodes[2].translation = b.g.nodes[2].rotation = b.g.nodes[2].scale = None
    b.g.nodes[2].matrix = m.T.reshape(-1).tolist()


def _cycle(b, limb):
    b.g.nodes[3].children = [1]
    b.g.nodes[0].children = []
    b.g.scenes[0].nodes = [4]


def _skin_joint_missing(b, limb):
    b.g.skins[0].joints = [1, 2, 42]


def _bad_interpolation(b, limb):
    b.g.animations[1].samplers[0].interpolation = "BEZIER"


BROKEN = {
    "joint out of range": (_joint_out_of_range, r"meshes\[0\]\.primitives\[0\]\.attributes\.JOINTS_0: vertex 7 names "
                                                r"joint 5, but skins\[0\] has 3 joints"),
    "all-zero weights": (_zero_weights, r"meshes\[0\]\.primitives\[0\]\.attributes\.WEIGHTS_0: vertex 4 has all-zero "
                                        r"weights"),
    "missing inverse binds": (_short_inverse_binds, r"skins\[0\]\.inverseBindMatrices: has 2 matrices for 3 joints"),
    "non-invertible inverse bind": (_singular_inverse_bind, r"skins\[0\]\.inverseBindMatrices\[1\]: the matrix of "
                                                            r"joint 1 \(nodes\[2\]\) is not an invertible"),
    "channel at a missing node": (_channel_to_missing_node, r"animations\[0\]\.channels\[0\]\.target\.node: node 99 "
                                                            r"does not exist"),
    "accessor past the end": (_accessor_past_the_end, r"accessors\[\d+\]: 1000000 elements from byte 0 run past the "
                                                      r"end of bufferViews"),
    "sparse index out of range": (_sparse_index_out_of_range, r"accessors\[\d+\]\.sparse\.indices: index 10000 is out "
                                                              r"of range"),
    "sheared matrix node": (_sheared_matrix_node, r"nodes\[2\]\.matrix: is not a translation \* rotation \* scale"),
    "hierarchy cycle": (_cycle, r"nodes\[1\]: the node hierarchy has a cycle"),
    "skin joint missing": (_skin_joint_missing, r"skins\[0\]\.joints\[2\]: node 42 does not exist"),
    "bad interpolation": (_bad_interpolation, r"animations\[1\]\.samplers\[0\]\.interpolation: unknown interpolation "
                                              r"'BEZIER'"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_rigs_end_in_one_line_and_write_nothing(tmp_path, capsys, case):
    mutate, message = BROKEN[case]
    write_limb(tmp_path / "broken.glb", mutate=mutate)
    out = tmp_path / "out" / "hero.ply"
    assert main(["import-mesh", str(tmp_path / "broken.glb"), "-o", str(out), "--count", "200"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert str(tmp_path / "broken.glb") in err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---- splatfilm pose -------------------------------------------------------------------------------


def test_pose_list_and_write(tmp_path, capsys):
    imported(tmp_path, count=500)
    asset = str(tmp_path / "limb.ply")
    assert main(["pose", asset, "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["bend   2.000 s", "hop    1.000 s", "grow   2.000 s", "twist  1.000 s"]
    assert main(["pose", asset, "--clip", "bend", "--time", "1", "-o", str(tmp_path / "bent.ply")]) == 0
    capsys.readouterr()
    bent = load_gaussians(tmp_path / "bent.ply")
    side = json.loads((tmp_path / "bent.json").read_text())
    assert side["pose"]["clip"] == "bend" and side["pose"]["time"] == 1.0 and side["pose"]["method"] == "lbs"
    assert "rig" not in side and side["asset"] == "bent.ply"
    assert side["canonical_transform"] == json.loads((tmp_path / "limb.json").read_text())["canonical_transform"]
    assert not rig_path(tmp_path / "bent.ply").exists()
    # The top of the limb (mid at 90 degrees about z) now points along -x.
    assert bent.means[:, 0].min() < -0.9 and bent.means[:, 1].max() < 1.35


def test_pose_errors(tmp_path, capsys):
    imported(tmp_path, count=300)
    asset = str(tmp_path / "limb.ply")
    out = tmp_path / "posed.ply"
    assert main(["pose", asset, "--clip", "walk", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {asset}: no clip 'walk'; the rig has: bend (2.00 s), hop (1.00 s), grow (2.00 s), "
                   "twist (1.00 s)\n")
    rigless = tmp_path / "plain.ply"
    rigless.write_bytes((tmp_path / "limb.ply").read_bytes())
    for argv in (["pose", str(rigless), "--list"], ["pose", str(rigless), "--clip", "bend", "-o", str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {rigless}: has no rig (plain.rig.npz is not beside it)") and err.count("\n") == 1
    assert main(["pose", asset, "--clip", "bend", "--time", "-1", "-o", str(out)]) == 2
    assert "--time must be a number of seconds >= 0" in capsys.readouterr().err
    assert main(["pose", asset, "--clip", "bend", "-o", asset]) == 2
    assert "is the asset itself" in capsys.readouterr().err
    assert main(["pose", asset, "--clip", "bend"]) == 2
    assert "pose needs --clip NAME and -o POSED.ply" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".json").exists()


# ---- what import-mesh tells a user about another tool's file -----------------------------------


def _face_morphs(b, limb):
    """A morph target on the limb (x + 0.5, default weight 1, as viewers draw it) and a clip
    'smile' that animates only its weight."""
    prim = b.g.meshes[0].primitives[0]
    count = b.g.accessors[prim.attributes.POSITION].count
    offset = np.zeros((count, 3), np.float32)
    offset[:, 0] = 0.5
    prim.targets = [{"POSITION": b.accessor(offset)}]
    b.g.meshes[0].weights = [1.0]
    keys = b.accessor(np.array([0.0, 1.0], np.float32), FLOAT, "SCALAR")
    values = b.accessor(np.array([0.0, 1.0], np.float32), FLOAT, "SCALAR")
    b.g.animations.append(pygltflib.Animation(name="smile", samplers=[
        pygltflib.AnimationSampler(input=keys, output=values)], channels=[
        pygltflib.AnimationChannel(sampler=0, target=pygltflib.AnimationChannelTarget(node=4, path="weights"))]))


def test_morph_targets_are_noted_and_a_clip_of_morph_weights_alone_is_not_listed(tmp_path, capsys):
    """Morph targets are not imported: the rig notes the mesh's targets and the default
    weights left unapplied (it noted only animated weights, so a posed face was silently its
    base shape), and a clip that animates nothing else is left out (it was listed as a
    0-second clip that posed nothing)."""
    write_limb(tmp_path / "face.glb", mutate=_face_morphs)
    out = tmp_path / "face.ply"
    assert main(["import-mesh", str(tmp_path / "face.glb"), "-o", str(out), "--count", "300"]) == 0
    printed, err = capsys.readouterr()
    lines = printed.splitlines()
    # The armature and the mesh's node are no joints of the skin: the count says so (it said "5 joints").
    assert lines[1].startswith("rig: face.rig.npz (5 nodes, 3 of them skin joints; clips: bend (2.00 s), hop (1.00 s), "
                               "grow (2.00 s), "
                               "twist (1.00 s)); `splatfilm pose ") and lines[1].endswith(" --joints` names the joints")
    assert "note:" not in printed  # notes on stderr (splatfilm.report)
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert notes[0] == ("note: meshes[0]: 1 morph target(s) left out: the base shape is imported (the default weights "
                        "[1] that viewers apply are not)")
    assert notes[-1] == "note: animations[4] ('smile'): moves no node splatfilm poses; left out of the clips"
    assert "smile" not in load_rig(rig_path(out)).clips
    assert len(json.loads((tmp_path / "face.json").read_text())["rig"]["ignored"]) == 3
    assert main(["pose", str(out), "--clip", "smile", "-o", str(tmp_path / "smile.ply")]) == 2
    assert "no clip 'smile'" in capsys.readouterr().err


def test_pose_joints_prints_the_skeleton_as_a_tree(tmp_path, capsys):
    """The rig keeps every node, but the armature above the skin's joints and the mesh's node
    are marked: they were listed as joints a leg's IK could name, as Mixamo's `Armature` and
    `Beta_Surface` are. A rig file written before the skin was kept lists as it did."""
    _, _, rig, _ = imported(tmp_path, count=300)
    assert rig.in_skin.tolist() == [False, True, True, True, False]
    assert main(["pose", str(tmp_path / "limb.ply"), "--joints"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Armature  (not a joint: a node the skeleton hangs from)", "  root", "    mid", "      tip",
        "body0  (not a joint: a node outside the skeleton)"]
    data = dict(np.load(rig_path(tmp_path / "limb.ply")))
    header = json.loads(data["header"].tobytes())
    for joint in header["joints"]:
        del joint["skin"]
    data["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(rig_path(tmp_path / "limb.ply"), **data)
    assert load_rig(rig_path(tmp_path / "limb.ply")).in_skin is None
    assert main(["pose", str(tmp_path / "limb.ply"), "--joints"]) == 0
    assert capsys.readouterr().out.splitlines() == ["Armature", "  root", "    mid", "      tip", "body0"]


def test_the_bundled_hero_rig_marks_the_nodes_outside_its_skin(capsys):
    """scenes/character/fitted/hero.rig.npz was written before the skin was kept, so `pose
    --joints` listed gltf_scene_frame, explorer and explorer_mesh as joints a leg's IK could
    name; regenerated by scenes/README.md's commands, it marks them."""
    hero = Path(__file__).parents[2] / "scenes/character/fitted/hero.ply"
    rig = load_rig(rig_path(hero), 20000)
    assert rig.in_skin is not None and int(rig.in_skin.sum()) == 16
    assert [n for n, s in zip(rig.joint_names, rig.in_skin) if not s] == ["gltf_scene_frame", "explorer",
                                                                          "explorer_mesh"]
    assert main(["pose", str(hero), "--joints"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "gltf_scene_frame  (not a joint: a node the skeleton hangs from)"
    assert "explorer_mesh  (not a joint: a node outside the skeleton)" in [line.strip() for line in lines]


def test_a_figure_modelled_in_centimetres_is_pointed_out(tmp_path, capsys):
    """glTF counts in metres; a figure tens of metres tall (Khronos' Fox: 79) was modelled in
    centimetres: import-mesh says so and what scale places it (it said nothing)."""
    write_limb(tmp_path / "giant.glb", armature=((0.0, 0.0, 0.0), (0, 0, 0, 1), (40.0, 40.0, 40.0)))
    assert main(["import-mesh", str(tmp_path / "giant.glb"), "-o", str(tmp_path / "giant.ply"), "--count", "300"]) == 0
    out, err = capsys.readouterr()  # a note, on stderr (splatfilm.report); the result alone on stdout
    assert (f"note: {tmp_path / 'giant.glb'}: the mesh is 80 m tall: glTF counts in metres, so it was probably "
            "modelled in centimetres; place it in a film with scale: 0.01 (0.8 m)\n") in err
    assert "80 m tall" not in out and "note:" not in out and out.startswith("wrote ")
    write_limb(tmp_path / "limb.glb")
    assert main(["import-mesh", str(tmp_path / "limb.glb"), "-o", str(tmp_path / "limb.ply"), "--count", "300"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("wrote ") and "m tall" not in err  # a 2 m limb


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    """`splatfilm pose ASSET --joints | head -1` ended in a BrokenPipeError traceback once
    head had read its line; it now stops quietly with the shell's status for a closed pipe."""
    import subprocess
    import sys

    imported(tmp_path, count=300)
    # Many copies of the tree: the output outgrows the pipe's buffer after the reader has gone.
    script = ("import sys; from splatfilm.cli import main; "
              f"codes = (main(['pose', {str(tmp_path / 'limb.ply')!r}, '--joints']) for _ in range(20000)); "
              "sys.exit(next((c for c in codes if c), 0))")
    run = subprocess.run(f"{sys.executable} -c \"{script}\" | head -1", shell=True, capture_output=True, text=True,
                         executable="/bin/bash", timeout=120)
    assert run.stdout.splitlines() == ["Armature  (not a joint: a node the skeleton hangs from)"]
    assert run.stderr == ""


# ---- splatfilm edit of a rigged asset ---------------------------------------------------------------

CUT_MID = "- {op: delete, box: {min: [-1, 0.8, -1], max: [1, 1.2, 1]}}\n"  # a band around the mid joint
TINT_TOP = "- {op: recolour, sphere: {centre: [0, 2, 0], radius: 0.5}, tint: [1, 0.2, 0.2]}\n"
FADE_FOOT = "- {op: opacity, box: {min: [-1, -1, -1], max: [1, 0.3, 1]}, factor: 0.5}\n"


def test_edit_keeps_the_rig_for_the_gaussians_it_keeps(tmp_path, capsys):
    """`splatfilm edit` of a rigged asset writes EDITED.rig.npz: the same skeleton and clips
    binding the kept Gaussians, their rows in their order; so the edited copy posed is the
    posed original less what was deleted."""
    _, g, rig, _ = imported(tmp_path, count=600)
    asset = tmp_path / "limb.ply"
    (tmp_path / "cut.yaml").write_text(CUT_MID + TINT_TOP + FADE_FOOT)
    out = tmp_path / "cut" / "limb_cut.ply"
    assert main(["edit", str(asset), str(tmp_path / "cut.yaml"), "-o", str(out)]) == 0
    y = g.means[:, 1].numpy()
    kept = ~((y >= 0.8) & (y <= 1.2))
    edited = load_gaussians(out)
    assert 30 < (~kept).sum() < 300 and len(edited) == kept.sum()
    cut = load_rig(rig_path(out), len(edited))
    assert cut.joint_names == rig.joint_names and cut.parents.tolist() == rig.parents.tolist()
    assert {n: c.duration for n, c in cut.clips.items()} == {n: c.duration for n, c in rig.clips.items()}
    np.testing.assert_array_equal(cut.joints, rig.joints[kept])
    np.testing.assert_array_equal(cut.weights, rig.weights[kept])
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["rig"]["file"] == "limb_cut.rig.npz" and side["num_gaussians"] == len(edited)
    assert main(["pose", str(out), "--list"]) == 0
    assert capsys.readouterr().out.splitlines()[-4:] == ["bend   2.000 s", "hop    1.000 s", "grow   2.000 s",
                                                         "twist  1.000 s"]
    for src, posed in ((asset, tmp_path / "bent.ply"), (out, tmp_path / "bent_cut.ply")):
        assert main(["pose", str(src), "--clip", "bend", "--time", "1", "-o", str(posed)]) == 0
    bent, bent_cut = load_gaussians(tmp_path / "bent.ply"), load_gaussians(tmp_path / "bent_cut.ply")
    assert bent.means[:, 0].min() < -0.9  # bent: the top points along -x
    np.testing.assert_allclose(bent_cut.means.numpy(), bent.means.numpy()[kept], atol=1e-5)
    # A `keep` keeps the selected rows; recolour and fade keep every Gaussian and every row.
    (tmp_path / "keep.yaml").write_text("- {op: keep, box: {min: [-1, 0.8, -1], max: [1, 1.2, 1]}}\n")
    assert main(["edit", str(asset), str(tmp_path / "keep.yaml"), "-o", str(tmp_path / "band.ply")]) == 0
    np.testing.assert_array_equal(load_rig(rig_path(tmp_path / "band.ply")).joints, rig.joints[~kept])
    (tmp_path / "tint.yaml").write_text(TINT_TOP + FADE_FOOT)
    assert main(["edit", str(asset), str(tmp_path / "tint.yaml"), "-o", str(tmp_path / "tinted.ply")]) == 0
    np.testing.assert_array_equal(load_rig(rig_path(tmp_path / "tinted.ply"), len(g)).joints, rig.joints)


def test_edit_of_an_asset_without_a_rig_leaves_none_and_never_writes_over_the_inputs(tmp_path, capsys):
    _, g, rig, _ = imported(tmp_path, count=300)
    (tmp_path / "cut.yaml").write_text(CUT_MID)
    # An old rig beside the output would bind other Gaussians: an edit of a plain asset removes it.
    out = tmp_path / "plain_cut.ply"
    save_rig(rig_path(out), rig, out.name)
    plain = tmp_path / "plain.ply"
    save_gaussians(plain, g)
    assert main(["edit", str(plain), str(tmp_path / "cut.yaml"), "-o", str(out)]) == 0
    assert not rig_path(out).exists() and "rig" not in json.loads(out.with_suffix(".json").read_text())
    # limb.ply -> limb.spz shares limb.rig.npz; with no sidecar to refuse it, the rig does.
    (tmp_path / "limb.json").unlink()
    before = rig_path(tmp_path / "limb.ply").read_bytes()
    err = cli_error(capsys, ["edit", tmp_path / "limb.ply", tmp_path / "cut.yaml", "-o", tmp_path / "limb.spz"])
    assert "limb.rig.npz would overwrite or remove the input's" in err
    assert rig_path(tmp_path / "limb.ply").read_bytes() == before and not (tmp_path / "limb.spz").exists()


def test_clean_keeps_the_rig_for_the_gaussians_it_keeps(tmp_path, capsys):
    """`splatfilm clean` of a rigged asset writes CLEAN.rig.npz as `edit` does: the same
    skeleton and clips binding the Gaussians it keeps, their rows in the order the copy holds
    them (a `*.compressed.ply`'s, Morton order: `saved_from`); so the clean copy poses, as the
    posed original less its floaters (before: no rig, and pose refused it)."""
    _, _, rig0, _ = imported(tmp_path, count=600)
    asset = tmp_path / "limb.ply"
    cams, n = capture_beside_rigged(asset, (0.0, 1.0, 0.0))
    g, rig = load_gaussians(asset), load_rig(rig_path(asset))
    keep = supported(g, cams, CleanupSettings(), "cpu").numpy()
    assert not keep[n:].any() and keep[:n].mean() > 0.9  # the floaters go; the limb stays
    out = tmp_path / "clean" / "limb_clean.compressed.ply"
    assert main(["clean", str(asset), "-o", str(out), "--backend", "cpu"]) == 0
    rows = saved_from(out, g, 2e-3)
    cut = load_rig(rig_path(out), len(rows))
    assert sorted(rows) == np.flatnonzero(keep).tolist()
    assert cut.joint_names == rig0.joint_names and list(cut.clips) == list(rig0.clips)
    np.testing.assert_array_equal(cut.joints, rig.joints[rows])
    np.testing.assert_array_equal(cut.weights, rig.weights[rows])
    side = json.loads((tmp_path / "clean" / "limb_clean.compressed.json").read_text())
    assert side["rig"]["file"] == "limb_clean.compressed.rig.npz" and side["num_gaussians"] == len(rows)
    bent = posed_means(asset, tmp_path)
    assert bent[:n, 0].min() < -0.9  # bent: the top points along -x
    assert np.abs(posed_means(out, tmp_path) - bent[rows]).max() < 4e-3


# ---- a rigged asset in a format that holds its Gaussians in an order of its own -----------------


@pytest.mark.parametrize("ext, tol", [(".compressed.ply", 2e-3), (".splat", 1e-6)])
def test_a_rigged_copy_in_a_reordering_format_keeps_each_gaussians_rig_row(tmp_path, capsys, ext, tol):
    """A `*.compressed.ply` (Morton order) and a `.splat` (biggest first) hold their Gaussians
    in another order than they were given: the rig rows `import`, `edit` and `import-mesh`
    write beside one follow the Gaussians, so the copy posed is the original posed within the
    format's quantisation (they were copied in the given order: posed, a Gaussian lay up to
    1.4 m from where the original's did)."""
    limb, g, rig, _ = imported(tmp_path, count=600)
    asset = tmp_path / "limb.ply"
    bent = posed_means(asset, tmp_path)
    assert bent[:, 0].min() < -0.9  # bent: the top points along -x

    copy = tmp_path / f"copy{ext}"
    assert main(["import", str(asset), "-o", str(copy)]) == 0
    rows = saved_from(copy, g, tol)
    assert (rows != np.arange(len(g))).mean() > 0.5  # the format did reorder them
    copied = load_rig(rig_path(copy), len(g))
    np.testing.assert_array_equal(copied.joints, rig.joints[rows])
    np.testing.assert_array_equal(copied.weights, rig.weights[rows])
    assert np.abs(posed_means(copy, tmp_path) - bent[rows]).max() < 2 * tol

    # edit: the rows of the Gaussians it keeps, in the order the copy holds them.
    (tmp_path / "cut.yaml").write_text(CUT_MID)
    cut = tmp_path / f"cut{ext}"
    assert main(["edit", str(asset), str(tmp_path / "cut.yaml"), "-o", str(cut)]) == 0
    rows = saved_from(cut, g, tol)
    y = g.means[:, 1].numpy()
    assert len(rows) == np.count_nonzero(~((y >= 0.8) & (y <= 1.2)))
    np.testing.assert_array_equal(load_rig(rig_path(cut), len(rows)).joints, rig.joints[rows])
    assert np.abs(posed_means(cut, tmp_path) - bent[rows]).max() < 2 * tol

    # import-mesh straight to the format: the rig it makes binds the Gaussians as the file holds them.
    meshed = tmp_path / f"meshed{ext}"
    import_mesh(tmp_path / "limb.glb", meshed, count=600)
    rows = saved_from(meshed, g, tol)
    np.testing.assert_array_equal(load_rig(rig_path(meshed), len(g)).joints, rig.joints[rows])


def test_pose_clean_and_edit_never_remove_or_overwrite_what_lies_beside_the_input(tmp_path, capsys):
    """limb.ply -> limb.spz in one folder share limb.rig.npz and limb.cameras.json: pose removed
    the input's rig (its copy has none), clean wrote its cameras over the input's. All three
    commands refuse such a name, with one message, and leave the input's files as they were."""
    imported(tmp_path, count=300)
    asset = tmp_path / "limb.ply"
    capture_beside_rigged(asset, (0.0, 1.0, 0.0))
    (tmp_path / "limb.json").unlink()  # no sidecar to refuse limb.spz first
    (tmp_path / "cut.yaml").write_text(CUT_MID)
    beside = (rig_path(asset), capture_cameras_path(asset))
    before = [p.read_bytes() for p in beside]
    out = tmp_path / "limb.spz"
    for argv in (["pose", asset, "--clip", "bend", "-o", out], ["clean", asset, "-o", out, "--backend", "cpu"],
                 ["edit", asset, tmp_path / "cut.yaml", "-o", out]):
        err = cli_error(capsys, argv, out)
        assert "its limb.rig.npz would overwrite or remove the input's; give the copy another name" in err, argv
        assert [p.read_bytes() for p in beside] == before and not out.exists(), argv
    # A plain asset's capture cameras: clean --cameras wrote those over the input's.
    rig_path(asset).unlink()
    other = tmp_path / "other.json"
    other.write_bytes(before[1])
    err = cli_error(capsys, ["clean", asset, "-o", out, "--cameras", other, "--backend", "cpu"], out)
    assert "its limb.cameras.json would overwrite or remove the input's" in err
    assert capture_cameras_path(asset).read_bytes() == before[1] and not out.exists()
