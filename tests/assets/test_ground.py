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
