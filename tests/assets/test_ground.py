"""Ground planes: RANSAC on opaque Gaussian centres picks the lowest large near-horizontal plane
(not a big table top), follows the capture's up, lands in the sidecar; placing on the ground."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import splats

from splatfilm.cli import main
from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.assets.ground import (
    GroundPlane,
    estimate_ground,
    ground_height,
    place_on_ground,
    read_ground,
    write_ground,
)
from splatfilm.assets.asset_frame import sidecar_up
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.transforms import Similarity, yaw_rotation


def _rect(origin, u, v, spacing: float, rng) -> np.ndarray:
    """Points on the rectangle origin + s u + t v (s, t in [0, 1]), jittered grid."""
    origin, u, v = map(np.asarray, (origin, u, v))
    nu, nv = max(2, int(np.linalg.norm(u) / spacing)), max(2, int(np.linalg.norm(v) / spacing))
    s, t = np.meshgrid((np.arange(nu) + 0.5) / nu, (np.arange(nv) + 0.5) / nv, indexing="ij")
    s = s.ravel() + rng.uniform(-0.2, 0.2, s.size) / nu
    t = t.ravel() + rng.uniform(-0.2, 0.2, t.size) / nv
    return origin + s[:, None] * u + t[:, None] * v


def room_with_table(rng=None) -> np.ndarray:
    """A 3 x 3 m floor at z = 0, a back wall, and a 1.5 x 1.5 m table top at 0.75 m (a quarter
    of the floor's area: large enough to be a candidate, and higher)."""
    rng = rng or np.random.default_rng(0)
    floor = _rect([-1.5, -1.5, 0], [3, 0, 0], [0, 3, 0], 0.05, rng)
    wall = _rect([-1.5, 1.5, 0], [3, 0, 0], [0, 0, 2], 0.05, rng)
    table = _rect([-0.75, -0.75, 0.75], [1.5, 0, 0], [0, 1.5, 0], 0.05, rng)
    noise = rng.uniform([-1.5, -1.5, 0], [1.5, 1.5, 2], (200, 3))  # floaters
    return np.concatenate([floor, wall, table, noise])


def test_floor_not_table_top():
    plane = estimate_ground(splats(room_with_table()))
    assert plane.normal[2] > 0.9999
    assert abs(plane.offset) < 0.005
    assert 0.3 < plane.inliers < 0.6  # the floor's share of the opaque centres
    assert abs(ground_height(plane, 0.4, -0.7)) < 0.005


def test_transparent_gaussians_are_ignored():
    pts = room_with_table()
    g = Gaussians.concat([splats(pts), splats(np.random.default_rng(1).uniform(-1, 1, (5000, 3)) + [0, 0, -1.0],
                                                 opacity=0.1)])
    assert abs(estimate_ground(g).offset) < 0.005


def test_follows_the_capture_up():
    """A capture in some other frame (y up, turned, moved, scaled): the plane moves with it."""
    R = yaw_rotation(25.0) @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    sim = Similarity(R, [0.3, -2.0, 1.0], 2.0)
    g = splats(sim.apply(room_with_table()))
    plane = estimate_ground(g, up=R @ [0, 0, 1.0])
    expected = GroundPlane(np.array([0, 0, 1.0]), 0.0).transformed(sim)
    assert plane.normal @ expected.normal > 0.9999
    assert abs(plane.offset - expected.offset) < 0.01
    # Points above the floor are on the positive side.
    assert plane.signed_distance(sim.apply([0.0, 0.0, 1.0])) == pytest.approx(2.0, abs=0.01)


def test_no_horizontal_plane():
    rng = np.random.default_rng(0)
    wall = _rect([-1, 0, 0], [2, 0, 0], [0, 0, 2], 0.05, rng)
    with pytest.raises(SplatfilmError, match="no plane within"):
        estimate_ground(splats(wall))


def test_cli_writes_the_sidecar(tmp_path, capsys):
    scene = tmp_path / "room.ply"
    save_gaussians(scene, splats(room_with_table()))
    assert main(["ground", str(scene)]) == 0
    meta = json.loads((tmp_path / "room.json").read_text())
    assert meta["asset"] == "room.ply" and set(meta["ground"]) == {"normal", "offset", "inliers"}
    assert read_ground(scene).normal[2] > 0.9999
    assert "ground of" in capsys.readouterr().out
    # An existing sidecar keeps its other fields, and its frame.up is the one used.
    (tmp_path / "room.json").write_text(json.dumps({"asset": "room.ply", "kind": "scene", "frame": {"up": [0, 0, 2]}}))
    assert main(["ground", str(scene)]) == 0
    meta = json.loads((tmp_path / "room.json").read_text())
    assert meta["kind"] == "scene" and meta["frame"]["up"] == [0, 0, 2] and "ground" in meta
    assert np.allclose(sidecar_up(scene), [0, 0, 1])


def test_bad_sidecar_is_one_line(tmp_path):
    scene = tmp_path / "s.ply"
    (tmp_path / "s.json").write_text("{nope")
    with pytest.raises(SplatfilmError, match=r"s\.json: invalid JSON"):
        write_ground(scene, GroundPlane(np.array([0, 0, 1.0]), 0.0))
    (tmp_path / "s.json").write_text(json.dumps({"ground": {"normal": [0, 0]}}))
    with pytest.raises(SplatfilmError, match=r"s\.json: ground\.normal: expected \[x, y, z\], got \[0, 0\]"):
        read_ground(scene)


def test_place_on_ground_on_a_slope():
    n = np.array([0.2, 0.0, 1.0])
    plane = GroundPlane(n, -0.5)  # normalised on construction
    assert np.linalg.norm(plane.normal) == pytest.approx(1.0)
    place = place_on_ground([1.0, 2.0], plane, yaw=90.0)
    base = place.translation
    assert base[:2] == pytest.approx([1.0, 2.0])
    assert plane.signed_distance(base) == pytest.approx(0.0, abs=1e-12)
    assert base[2] == pytest.approx(ground_height(plane, 1.0, 2.0))
    # Up follows the slope's normal; the yaw turned the canonical front (-y) to +x first.
    assert place.rotation @ [0, 0, 1.0] == pytest.approx(plane.normal)
    front = place.rotation @ [0, -1.0, 0]
    assert front[0] > 0.95 and abs(front @ plane.normal) < 1e-9
    # A given z is replaced; align=False stays upright; scale passes through.
    upright = place_on_ground([1.0, 2.0, 7.0], plane, align=False, scale=2.0)
    assert upright.translation == pytest.approx(base) and np.allclose(upright.rotation, np.eye(3))
    assert upright.scale == 2.0


def test_vertical_plane_has_no_height():
    wall = GroundPlane(np.array([1.0, 0, 0]), 0.0)
    with pytest.raises(SplatfilmError, match="vertical"):
        ground_height(wall, 0.0, 0.0)
    with pytest.raises(SplatfilmError, match="parallel"):
        place_on_ground([0.0, 0.0], wall)


def _cameras_pitched_down(pitch_deg: float, azimuths_deg) -> Cameras:
    """Cameras 3 m out on the -y side of the origin, 2 m up, at the given azimuths, each
    pitched `pitch_deg` below the horizon (no roll)."""
    from splatfilm.assets.meshing import look_at_viewmat

    views = []
    for a in np.radians(np.asarray(azimuths_deg, dtype=float)):
        eye = np.array([3 * np.sin(a), -3 * np.cos(a), 2.0])
        target = np.array([0.0, 0.0, 2.0 - 3 * np.tan(np.radians(pitch_deg))])
        views.append(look_at_viewmat(eye, target, np.array([0.0, 0.0, 1.0])))
    K = np.array([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])
    return Cameras(np.stack(views), K, 64, 48)


def test_the_recorded_up_is_not_biased_by_the_cameras_pitch(tmp_path, capsys):
    """fit recorded the mean camera up, which leans toward the side the cameras stand on by
    their mean pitch (12.3 degrees on the bundled set); cameras pitched 30 degrees down from one
    side put it 30 degrees off the floor normal, and `ground` then found no plane within 20
    degrees of it. The up perpendicular to every camera's x axis (nerfstudio's "vertical")
    does not lean; where the x axes share one direction (a dolly) the mean up stays."""
    from helpers import cli_error

    from splatfilm.assets.sidecar import Sidecar
    from splatfilm.assets.asset_frame import estimate_up

    cams = _cameras_pitched_down(30.0, np.linspace(-50, 50, 9))
    up = estimate_up(cams)
    assert np.degrees(np.arccos(up[2])) < 3.0, up
    scene = tmp_path / "room.ply"
    save_gaussians(scene, splats(room_with_table()))
    Sidecar({"asset": "room.ply", "kind": "scene", "frame": {"up": up.tolist()}}).write(tmp_path / "room.json")
    assert main(["ground", str(scene)]) == 0
    assert read_ground(scene).normal[2] > 0.9999

    # A sidecar that records the old, leaning up: the error says what to do, and --up does it
    # (the room without its floaters, among which RANSAC found a plane leaning as up did).
    save_gaussians(scene, splats(room_with_table()[:-200]))
    leaning = -cams.to_c2w_opencv()[:, :3, 1].mean(axis=0)
    Sidecar({"asset": "room.ply", "kind": "scene", "frame": {"up": leaning.tolist()}}).write(tmp_path / "room.json")
    err = cli_error(capsys, ["ground", scene], scene)
    assert "no plane within 20 degrees of up" in err and "--up X Y Z" in err and "--max-tilt (now 20)" in err
    assert main(["ground", str(scene), "--up", "0", "0", "2"]) == 0
    assert read_ground(scene).normal[2] > 0.9999
    assert "--up must be a non-zero vector" in cli_error(capsys, ["ground", scene, "--up", "0", "0", "0"], scene)

    # A dolly (every camera's x axis the same): the x axes say nothing of the pitch; the mean up.
    dolly = _cameras_pitched_down(10.0, [0.0])
    dolly = type(dolly).concat([dolly] * 3)
    np.testing.assert_allclose(estimate_up(dolly), [0, np.sin(np.radians(10)), np.cos(np.radians(10))], atol=1e-9)
    np.testing.assert_allclose(estimate_up(_cameras_pitched_down(10.0, [0.0])), estimate_up(dolly), atol=1e-12)


# ---- a scene's scale to metres ------------------------------------------------------------------

# A capture's frame: SfM's arbitrary units (2.5 to the metre), turned and moved.
UNITS = Similarity(yaw_rotation(30.0) @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), [0.4, -1.0, 2.0], 2.5)


def _captured_room(folder, heights_m, names=None):
    """room.ply: `room_with_table` (metres) in UNITS' frame, with a scene sidecar (its up) and
    capture cameras beside it at `heights_m` metres above the floor, 1.2 m out from the table's
    middle and looking at it. Returns the scene's path and the cameras in metres."""
    from splatfilm.assets.meshing import look_at_viewmat
    from splatfilm.assets.sidecar import Sidecar
    from splatfilm.io.asset_files import write_capture_cameras

    scene = folder / "room.ply"
    save_gaussians(scene, splats(UNITS.apply(room_with_table())))
    up = UNITS.rotation @ [0, 0, 1.0]
    Sidecar({"asset": "room.ply", "kind": "scene", "frame": {"up": up.tolist(), "scale_to_metres": None}}).write(
        folder / "room.json")
    views = [look_at_viewmat(np.array([1.2 * np.cos(a), 1.2 * np.sin(a), h]), np.array([0, 0, 0.75]),
                             np.array([0, 0, 1.0]))
             for a, h in zip(np.linspace(0, 2 * np.pi, len(heights_m), endpoint=False), heights_m)]
    metres = Cameras(np.stack(views), np.array([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]]), 64, 48,
                     names=names or [f"images/IMG_{i:04d}.jpg" for i in range(len(heights_m))])
    write_capture_cameras(scene, metres.transformed(UNITS.rotation, UNITS.translation, UNITS.scale))
    return scene, metres


def test_camera_height_gives_a_scene_its_scale_in_metres(tmp_path, capsys, monkeypatch):
    """A scene from structure from motion had no way to say its size: scale_to_metres stayed
    null and a film's `scale` was guessed. `ground --camera-height 1.6` takes the capture
    cameras' median height above the floor it finds as 1.6 m; a film then stands the scene in
    metres (the table top at 0.75 m, the cameras at their heights) and `mesh` writes metres."""
    import trimesh

    from splatfilm.assets import meshing
    from splatfilm.assets.open3d_loader import load_open3d
    from splatfilm.film.world import load_asset
    from splatfilm.io.asset_files import read_capture_cameras

    heights = [1.45, 1.55, 1.6, 1.62, 1.75]  # median 1.6 m: 4 units
    scene, metres = _captured_room(tmp_path, heights)
    capsys.readouterr()
    assert main(["ground", str(scene), "--camera-height", "1.6"]) == 0
    out = capsys.readouterr().out
    assert "5 capture cameras' median height above the ground 4 units (10-90%: 3.725-4.245) = 1.6 m" in out, out
    assert "-> scale_to_metres 0.400" in out and "(1 m = 2.5 units)" in out, out
    frame = json.loads((tmp_path / "room.json").read_text())["frame"]
    assert frame["scale_to_metres"] == pytest.approx(0.4, rel=1e-3)
    assert frame["scale_from"] == {"method": "camera_height", "metres": 1.6}
    assert read_ground(scene) is not None  # the plane it was measured from, in the same write

    asset = load_asset("room", scene, Similarity(), upright=True)
    to_world = asset.world_transform(0.0)
    assert to_world.scale == pytest.approx(0.4, rel=1e-3)
    table = to_world.apply(UNITS.apply([[0.3, -0.2, 0.75], [-1.0, 1.0, 0.0]]))
    assert table[:, 2] == pytest.approx([0.75, 0.0], abs=0.005)  # the table top 0.75 m above the floor at 0
    centres = to_world.apply(read_capture_cameras(scene).centers)
    assert centres[:, 2] == pytest.approx(heights, abs=0.005)
    assert np.linalg.norm(centres[0] - centres[2]) == pytest.approx(np.linalg.norm(metres.centers[0] - metres.centers[2]),
                                                                    rel=1e-3)

    # `mesh` writes the floor's 3 m edge as 3 m (was 7.5 scene units, with a note).
    o3d = load_open3d()
    corners = UNITS.apply([[-1.5, -1.5, 0], [1.5, -1.5, 0], [1.5, 1.5, 0]])
    floor = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(corners), o3d.utility.Vector3iVector([[0, 1, 2]]))
    monkeypatch.setattr(meshing, "mesh_scene", lambda *a: floor)
    capsys.readouterr()
    assert main(["mesh", str(scene), "-o", str(tmp_path / "room.glb"), "--voxel", "0.1"]) == 0
    assert "note:" not in capsys.readouterr().err
    v = trimesh.load(tmp_path / "room.glb", force="mesh").vertices
    assert np.linalg.norm(v[1] - v[0]) == pytest.approx(3.0, rel=1e-3)
    assert np.ptp(v[:, 1]) < 0.005  # level: glTF's +y up


def test_known_distance_between_two_capture_cameras(tmp_path, capsys):
    """`--known-distance A B METRES`: two capture cameras named as their images are (path, file
    name or stem) whose centres were that far apart; nothing else is needed of them."""
    scene, metres = _captured_room(tmp_path, [1.2, 1.6, 0.9, 1.4])
    gap = float(np.linalg.norm(metres.centers[0] - metres.centers[2]))  # metres
    assert main(["ground", str(scene), "--known-distance", "IMG_0000", "IMG_0002.jpg", f"{gap:.9f}"]) == 0
    out = capsys.readouterr().out
    assert f"cameras IMG_0000 and IMG_0002.jpg {2.5 * gap:.4g} units apart = {gap:g} m" in out, out
    frame = json.loads((tmp_path / "room.json").read_text())["frame"]
    assert frame["scale_to_metres"] == pytest.approx(0.4, rel=1e-9)
    assert frame["scale_from"] == {"method": "known_distance", "cameras": ["IMG_0000", "IMG_0002.jpg"],
                                   "metres": pytest.approx(gap)}
    # Measured again the same: nothing said; measured otherwise: the replaced scale is named.
    assert main(["ground", str(scene), "--known-distance", "IMG_0000", "IMG_0002.jpg", f"{gap:.9f}"]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main(["ground", str(scene), "--camera-height", "1.6"]) == 0
    err = capsys.readouterr().err
    assert "note: room.json: scale_to_metres 0.4 (from known_distance) replaced by" in err, err


def test_a_scale_from_nonsense_is_refused_in_one_line(tmp_path, capsys):
    """Cameras below the floor (the plane is not the one under them), one camera twice, two at
    one place, a name no camera has, or no cameras at all: one line, exit 2, and the sidecar
    as it was (no ground written either)."""
    from helpers import cli_error

    from splatfilm.io.asset_files import read_capture_cameras, write_capture_cameras

    scene, _ = _captured_room(tmp_path, [-1.6, -1.5, -1.7, 1.6], names=["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    before = (tmp_path / "room.json").read_text()
    err = cli_error(capsys, ["ground", scene, "--camera-height", "1.6"], scene)
    assert "median height above the ground plane is -3.875 scene units (3 of 4 cameras below it)" in err, err
    err = cli_error(capsys, ["ground", scene, "--known-distance", "b", "b.jpg", "1"], "room.cameras.json")
    assert "are one camera" in err
    assert "no camera named 'e'" in cli_error(capsys, ["ground", scene, "--known-distance", "b", "e", "1"])
    assert "METRES expected a positive number, got '-1'" in cli_error(
        capsys, ["ground", scene, "--known-distance", "b", "c", "-1"], scene)
    assert (tmp_path / "room.json").read_text() == before

    cams = read_capture_cameras(scene)[[0, 1, 0]]  # a frame written twice, under another name
    cams.names[2] = "a2.jpg"
    write_capture_cameras(scene, cams)
    assert "at one place (0 scene units apart)" in cli_error(capsys, ["ground", scene, "--known-distance", "a", "a2",
                                                                      "1"])
    (tmp_path / "room.cameras.json").unlink()
    assert "no capture cameras recorded beside it" in cli_error(capsys, ["ground", scene, "--camera-height", "1.6"],
                                                                scene)


def test_a_camera_height_refused_on_an_object_and_noted_when_unlikely(tmp_path, capsys):
    """An object capture's cameras orbit it: `--camera-height` on one set the hero 2.5 times too
    big without a word; now refused. A height in centimetres (160) or heights spread wider than
    their median still measure, with a note saying which slip it may be."""
    from helpers import cli_error

    scene, _ = _captured_room(tmp_path, [1.45, 1.55, 1.6, 1.62, 1.75])
    assert main(["ground", str(scene), "--camera-height", "160"]) == 0
    assert "a camera height of 160 m is far above a handheld one" in capsys.readouterr().err
    assert main(["ground", str(scene), "--camera-height", "1.6"]) == 0
    assert "far above" not in capsys.readouterr().err

    spread, _ = _captured_room(tmp_path / "spread", [0.3, 0.5, 1.6, 3.5, 4.0])
    assert main(["ground", str(spread), "--camera-height", "1.6"]) == 0
    assert "a median height is a rough scale here" in capsys.readouterr().err

    record = json.loads((tmp_path / "room.json").read_text())
    (tmp_path / "room.json").write_text(json.dumps({**record, "kind": "object"}))
    err = cli_error(capsys, ["ground", str(scene), "--camera-height", "1.6"], scene)
    assert "an object capture (its sidecar says kind: object)" in err and "--known-height" in err
