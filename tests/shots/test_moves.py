"""Camera moves: directions and signs, composition, and the invariants each move promises."""

from __future__ import annotations

import numpy as np
import pytest

from splatfilm.errors import SplatfilmError
from splatfilm.shots import (
    Keyframe,
    KeyframePath,
    Lens,
    PointTrack,
    Pose,
    arc,
    crane,
    dolly,
    dolly_zoom,
    follow,
    handheld,
    look_at,
    orbit,
    pan,
    pedestal,
    push_in,
    rack_focus,
    roll,
    rotation_to_pan_tilt_roll,
    tilt,
    truck,
    zoom,
)

TABLE = np.array([0.0, 0.0, 0.75])
CAM = Pose.look_at([0.0, -3.0, 1.2], TABLE, focal_mm=35.0, focus_distance=3.0)
T = np.linspace(0, 4, 97)


def _project(cameras, points):
    """Pixel coordinates [C,P,2] of world points [P,3] in every camera."""
    ph = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    cam = np.einsum("cij,pj->cpi", cameras.viewmats, ph)[..., :3]
    uvw = np.einsum("cij,cpj->cpi", cameras.Ks, cam)
    return uvw[..., :2] / uvw[..., 2:]


def _ptr(s):
    return rotation_to_pan_tilt_roll(s.rotations)


def test_translations_go_where_the_crew_expects():
    d = dolly(CAM, 1.5, duration=4).sample(T)
    np.testing.assert_allclose(d.positions[-1], [0, -1.5, 1.2], atol=1e-12)  # forward, level
    np.testing.assert_allclose(d.rotations, CAM.rotation[None].repeat(len(T), 0))
    t = truck(CAM, 1.0, duration=4).sample(T)
    np.testing.assert_allclose(t.positions[-1], [1.0, -3.0, 1.2], atol=1e-12)  # camera right is +x here
    p = pedestal(CAM, 0.5, duration=4).sample(T)
    np.testing.assert_allclose(p.positions[-1], [0, -3.0, 1.7], atol=1e-12)
    np.testing.assert_allclose(np.diff(p.positions[:, 2]), 0.5 / 96, atol=1e-12)  # linear without ease
    assert crane is pedestal


def test_rotations_turn_the_expected_way():
    start = rotation_to_pan_tilt_roll(CAM.rotation)
    assert _ptr(pan(CAM, 30, duration=4).sample([4]))[0, 0] == pytest.approx(start[0] + 30)  # left
    assert _ptr(tilt(CAM, 10, duration=4).sample([4]))[0, 1] == pytest.approx(start[1] + 10)  # up
    assert _ptr(roll(CAM, 15, duration=4).sample([4]))[0, 2] == pytest.approx(15)
    # Positive roll turns the camera's top (-y in OpenCV axes) towards its right (+x).
    R = roll(CAM, 15, duration=4).sample([4]).rotations[0]
    up_in_old_camera = CAM.rotation.T @ (-R[:, 1])
    assert up_in_old_camera[0] > 0


def test_moves_compose_crane_while_panning():
    path = pan(crane(CAM, height=1.0, duration=4, ease=0.5), degrees=30, ease=0.5)
    s = path.sample(T)
    np.testing.assert_allclose(s.positions[:, :2], np.broadcast_to([0, -3.0], (len(T), 2)), atol=1e-12)
    assert s.positions[-1, 2] == pytest.approx(2.2)
    pan_deg = _ptr(s)[:, 0]
    assert pan_deg[-1] - pan_deg[0] == pytest.approx(30.0)
    # Eased: starts and ends slowly, both moves in step.
    assert s.positions[1, 2] - s.positions[0, 2] < 0.6 * 1.0 / 96
    np.testing.assert_allclose((pan_deg - pan_deg[0]) / 30, s.positions[:, 2] - 1.2, atol=1e-9)
    # A move given its own span runs only then.
    s = pan(crane(CAM, 1.0, duration=4), 30, span=(1, 2)).sample([0.5, 1.0, 2.0, 3.0])
    p = _ptr(s)[:, 0]
    assert p[0] == p[1] and p[2] == p[3] == pytest.approx(p[0] + 30)


def test_orbit_keeps_radius_and_aims_at_the_centre():
    s = orbit(TABLE, 2.0, height=1.5, degrees=360, duration=8).sample(np.linspace(0, 8, 193))
    r = np.linalg.norm(s.positions[:, :2] - TABLE[:2], axis=1)
    np.testing.assert_allclose(r, 2.0, atol=1e-12)
    np.testing.assert_allclose(s.positions[:, 2], 1.5)
    np.testing.assert_allclose(s.positions[0], s.positions[-1], atol=1e-12)
    to_centre = TABLE - s.positions
    fwd = s.rotations[:, :, 2]
    np.testing.assert_allclose(np.sum(fwd * to_centre, 1) / np.linalg.norm(to_centre, axis=1), 1.0, atol=1e-12)
    a = arc(CAM, 90, TABLE, duration=4).sample([4])
    np.testing.assert_allclose(a.positions[0], [3.0, 0.0, 1.2], atol=1e-12)  # counter-clockwise from above


def test_dolly_zoom_keeps_the_subject_size_constant():
    head = np.array([1.1, -0.6, 1.52])
    cam = Pose.look_at([1.1, -4.0, 1.52], head, focal_mm=85.0)
    lens = Lens(width=1920, height=1080)
    for kwargs in ({"to_focal_mm": 24.0}, {"distance": -1.0}):
        s = dolly_zoom(cam, head, duration=4, ease=0.4, **kwargs).sample(T)
        cams = s.to_cameras(lens)
        # Two points on the subject, across the view axis: their image distance must not change.
        subject = _project(cams, np.array([head + [-0.15, 0, 0], head + [0.15, 0, 0.1]]))
        size = np.linalg.norm(subject[:, 1] - subject[:, 0], axis=1)
        np.testing.assert_allclose(size, size[0], rtol=1e-10)
        # ... while the background's size changes: that is the effect.
        wall = _project(cams, np.array([[0.0, 2.0, 1.0], [1.0, 2.0, 1.0]]))
        wall_size = np.linalg.norm(wall[:, 1] - wall[:, 0], axis=1)
        assert abs(wall_size[-1] / wall_size[0] - 1) > 0.05
    s = dolly_zoom(cam, head, to_focal_mm=24.0, duration=4).sample([4])
    assert s.focal_mm[0] == pytest.approx(24.0)
    with pytest.raises(SplatfilmError, match="reach the subject"):
        dolly_zoom(cam, head, distance=5.0, duration=4).sample(T)


def test_push_in_zoom_and_rack_focus():
    ball = np.array([-0.25, 0.0, 0.89])
    s = push_in(CAM, ball, to_distance=0.6, duration=3).sample(np.linspace(0, 3, 10))
    assert np.linalg.norm(ball - s.positions[-1]) == pytest.approx(0.6)
    fwd = s.rotations[:, :, 2]
    to_ball = (ball - s.positions) / np.linalg.norm(ball - s.positions, axis=1, keepdims=True)
    np.testing.assert_allclose(fwd, to_ball, atol=1e-12)
    z = zoom(CAM, 70.0, duration=2).sample([0, 1, 2]).focal_mm
    np.testing.assert_allclose(z, [35, 35 * np.sqrt(2), 70])  # geometric: an even zoom
    f = rack_focus(CAM, 1.0, duration=2).sample([0, 1, 2]).focus_distance
    np.testing.assert_allclose(1 / f, [1 / 3, (1 / 3 + 1) / 2, 1])  # linear in dioptres


def test_look_at_follows_a_moving_target():
    walker = PointTrack([0, 2, 4], [[1, -1, 1.2], [0, -0.5, 1.2], [-1, -1, 1.2]])
    s = look_at(dolly(CAM, 0.5, duration=4), walker).sample(T)
    tgt = walker(T)
    to_t = (tgt - s.positions) / np.linalg.norm(tgt - s.positions, axis=1, keepdims=True)
    np.testing.assert_allclose(s.rotations[:, :, 2], to_t, atol=1e-12)
    f = follow(walker, [0.5, -2.0, 0.3], duration=4).sample(T)
    np.testing.assert_allclose(f.positions, tgt + [0.5, -2.0, 0.3], atol=1e-12)
    # Over a span, the camera turns onto the target and stays on it.
    s = look_at(CAM, [1.1, -0.6, 1.5], span=(1, 2), ease=0.5, duration=4).sample([0.5, 2.5])
    np.testing.assert_allclose(s.rotations[0], CAM.rotation, atol=1e-12)
    fwd = s.rotations[1][:, 2]
    assert np.dot(fwd, ([1.1, -0.6, 1.5] - CAM.position) / np.linalg.norm([1.1, 2.4, 0.3])) == pytest.approx(1.0)


def test_moves_lay_over_keyframed_paths():
    keys = KeyframePath([Keyframe(0, [0, -3, 1.2], look_at=TABLE), Keyframe(2, [1, -3, 1.2], look_at=TABLE)],
                        focal_mm=35)
    s = pedestal(keys, 0.4).sample([0, 1, 2])
    np.testing.assert_allclose(s.positions[:, 2], [1.2, 1.4, 1.6])


def test_handheld_is_seeded_small_and_smooth():
    base = dolly(CAM, 1.0, duration=4)
    a = handheld(base, seed=3).sample(T)
    b = handheld(base, seed=3).sample(T)
    c = handheld(base, seed=4).sample(T)
    clean = base.sample(T)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)
    offset = a.positions - clean.positions
    assert 0.001 < np.sqrt(np.mean(offset**2)) < 0.02
    angles = np.degrees(np.arccos(np.clip(np.sum(a.rotations[:, :, 2] * clean.rotations[:, :, 2], 1), -1, 1)))
    assert angles.max() < 2.0
    assert np.abs(np.diff(offset, 2, axis=0)).max() < 1e-3  # smooth, not jitter


def test_move_errors():
    with pytest.raises(SplatfilmError, match="span of time"):
        dolly(CAM, 1.0).sample(T)  # a still camera and no duration
    with pytest.raises(SplatfilmError, match="exactly one"):
        push_in(CAM, TABLE, duration=2)
    with pytest.raises(SplatfilmError, match="reach the target"):
        push_in(CAM, TABLE, distance=10, duration=2).sample(T)
    with pytest.raises(SplatfilmError, match="end after"):
        pan(CAM, 10, span=(2, 1))
