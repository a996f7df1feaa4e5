"""Camera moves: directions and signs, composition, and the invariants each move promises."""

from __future__ import annotations

import numpy as np
import pytest

from splatfilm.errors import SplatfilmError
from splatfilm.shots import (
    MOVES,
    Arc,
    Dolly,
    DollyZoom,
    Follow,
    Handheld,
    Keyframe,
    KeyframePath,
    Lens,
    LookAt,
    Orbit,
    Pan,
    Pedestal,
    PointTrack,
    Pose,
    PushIn,
    RackFocus,
    Roll,
    Span,
    Tilt,
    Truck,
    Zoom,
    lay,
    rotation_to_pan_tilt_roll,
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
    d = lay(CAM, Dolly(1.5), duration=4).sample(T)
    np.testing.assert_allclose(d.positions[-1], [0, -1.5, 1.2], atol=1e-12)  # forward, level
    np.testing.assert_allclose(d.rotations, CAM.rotation[None].repeat(len(T), 0))
    t = lay(CAM, Truck(1.0), duration=4).sample(T)
    np.testing.assert_allclose(t.positions[-1], [1.0, -3.0, 1.2], atol=1e-12)  # camera right is +x here
    p = lay(CAM, Pedestal(0.5), duration=4).sample(T)
    np.testing.assert_allclose(p.positions[-1], [0, -3.0, 1.7], atol=1e-12)
    np.testing.assert_allclose(np.diff(p.positions[:, 2]), 0.5 / 96, atol=1e-12)  # linear without ease
    assert MOVES["crane"] is MOVES["pedestal"] is Pedestal


def test_rotations_turn_the_expected_way():
    start = rotation_to_pan_tilt_roll(CAM.rotation)
    assert _ptr(lay(CAM, Pan(30), duration=4).sample([4]))[0, 0] == pytest.approx(start[0] + 30)  # left
    assert _ptr(lay(CAM, Tilt(10), duration=4).sample([4]))[0, 1] == pytest.approx(start[1] + 10)  # up
    assert _ptr(lay(CAM, Roll(15), duration=4).sample([4]))[0, 2] == pytest.approx(15)
    # Positive roll turns the camera's top (-y in OpenCV axes) towards its right (+x).
    R = lay(CAM, Roll(15), duration=4).sample([4]).rotations[0]
    up_in_old_camera = CAM.rotation.T @ (-R[:, 1])
    assert up_in_old_camera[0] > 0


def test_moves_compose_crane_while_panning():
    path = lay(CAM, Pedestal(height=1.0), Pan(degrees=30), duration=4, ease=0.5)
    s = path.sample(T)
    np.testing.assert_allclose(s.positions[:, :2], np.broadcast_to([0, -3.0], (len(T), 2)), atol=1e-12)
    assert s.positions[-1, 2] == pytest.approx(2.2)
    pan_deg = _ptr(s)[:, 0]
    assert pan_deg[-1] - pan_deg[0] == pytest.approx(30.0)
    # Eased: starts and ends slowly, both moves in step.
    assert s.positions[1, 2] - s.positions[0, 2] < 0.6 * 1.0 / 96
    np.testing.assert_allclose((pan_deg - pan_deg[0]) / 30, s.positions[:, 2] - 1.2, atol=1e-9)
    # A move given its own span runs only then.
    s = lay(lay(CAM, Pedestal(1.0), duration=4), Pan(30), span=(1, 2)).sample([0.5, 1.0, 2.0, 3.0])
    p = _ptr(s)[:, 0]
    assert p[0] == p[1] and p[2] == p[3] == pytest.approx(p[0] + 30)


def test_orbit_keeps_radius_and_aims_at_the_centre():
    s = Orbit(TABLE, 2.0, height=1.5, degrees=360).path(8).sample(np.linspace(0, 8, 193))
    r = np.linalg.norm(s.positions[:, :2] - TABLE[:2], axis=1)
    np.testing.assert_allclose(r, 2.0, atol=1e-12)
    np.testing.assert_allclose(s.positions[:, 2], 1.5)
    np.testing.assert_allclose(s.positions[0], s.positions[-1], atol=1e-12)
    to_centre = TABLE - s.positions
    fwd = s.rotations[:, :, 2]
    np.testing.assert_allclose(np.sum(fwd * to_centre, 1) / np.linalg.norm(to_centre, axis=1), 1.0, atol=1e-12)
    a = lay(CAM, Arc(90, TABLE), duration=4).sample([4])
    np.testing.assert_allclose(a.positions[0], [3.0, 0.0, 1.2], atol=1e-12)  # counter-clockwise from above


def test_dolly_zoom_keeps_the_subject_size_constant():
    head = np.array([1.1, -0.6, 1.52])
    cam = Pose.look_at([1.1, -4.0, 1.52], head, focal_mm=85.0)
    lens = Lens(width=1920, height=1080)
    for kwargs in ({"to_focal_mm": 24.0}, {"distance": -1.0}):
        s = lay(cam, DollyZoom(head, **kwargs), duration=4, ease=0.4).sample(T)
        cams = s.to_cameras(lens)
        # Two points on the subject, across the view axis: their image distance must not change.
        subject = _project(cams, np.array([head + [-0.15, 0, 0], head + [0.15, 0, 0.1]]))
        size = np.linalg.norm(subject[:, 1] - subject[:, 0], axis=1)
        np.testing.assert_allclose(size, size[0], rtol=1e-10)
        # ... while the background's size changes: that is the effect.
        wall = _project(cams, np.array([[0.0, 2.0, 1.0], [1.0, 2.0, 1.0]]))
        wall_size = np.linalg.norm(wall[:, 1] - wall[:, 0], axis=1)
        assert abs(wall_size[-1] / wall_size[0] - 1) > 0.05
    s = lay(cam, DollyZoom(head, to_focal_mm=24.0), duration=4).sample([4])
    assert s.focal_mm[0] == pytest.approx(24.0)
    with pytest.raises(SplatfilmError, match="reach the subject"):
        lay(cam, DollyZoom(head, distance=5.0), duration=4).sample(T)


def test_push_in_zoom_and_rack_focus():
    ball = np.array([-0.25, 0.0, 0.89])
    s = lay(CAM, PushIn(ball, to_distance=0.6), duration=3).sample(np.linspace(0, 3, 10))
    assert np.linalg.norm(ball - s.positions[-1]) == pytest.approx(0.6)
    fwd = s.rotations[:, :, 2]
    to_ball = (ball - s.positions) / np.linalg.norm(ball - s.positions, axis=1, keepdims=True)
    np.testing.assert_allclose(fwd, to_ball, atol=1e-12)
    z = lay(CAM, Zoom(70.0), duration=2).sample([0, 1, 2]).focal_mm
    np.testing.assert_allclose(z, [35, 35 * np.sqrt(2), 70])  # geometric: an even zoom
    f = lay(CAM, RackFocus(1.0), duration=2).sample([0, 1, 2]).focus_distance
    np.testing.assert_allclose(1 / f, [1 / 3, (1 / 3 + 1) / 2, 1])  # linear in dioptres


def test_look_at_follows_a_moving_target():
    walker = PointTrack([0, 2, 4], [[1, -1, 1.2], [0, -0.5, 1.2], [-1, -1, 1.2]])
    s = lay(lay(CAM, Dolly(0.5), duration=4), LookAt(walker)).sample(T)
    tgt = walker(T)
    to_t = (tgt - s.positions) / np.linalg.norm(tgt - s.positions, axis=1, keepdims=True)
    np.testing.assert_allclose(s.rotations[:, :, 2], to_t, atol=1e-12)
    f = Follow(walker, [0.5, -2.0, 0.3]).path(4).sample(T)
    np.testing.assert_allclose(f.positions, tgt + [0.5, -2.0, 0.3], atol=1e-12)
    # Over a span, the camera turns onto the target and stays on it.
    s = lay(CAM, LookAt([1.1, -0.6, 1.5]), span=(1, 2), ease=0.5, duration=4).sample([0.5, 2.5])
    np.testing.assert_allclose(s.rotations[0], CAM.rotation, atol=1e-12)
    fwd = s.rotations[1][:, 2]
    assert np.dot(fwd, ([1.1, -0.6, 1.5] - CAM.position) / np.linalg.norm([1.1, 2.4, 0.3])) == pytest.approx(1.0)


def test_moves_lay_over_keyframed_paths():
    keys = KeyframePath([Keyframe(0, [0, -3, 1.2], look_at=TABLE), Keyframe(2, [1, -3, 1.2], look_at=TABLE)],
                        focal_mm=35)
    s = lay(keys, Pedestal(0.4)).sample([0, 1, 2])
    np.testing.assert_allclose(s.positions[:, 2], [1.2, 1.4, 1.6])


def test_handheld_is_seeded_small_and_smooth():
    base = lay(CAM, Dolly(1.0), duration=4)
    a = lay(base, Handheld(seed=3)).sample(T)
    b = lay(base, Handheld(seed=3)).sample(T)
    c = lay(base, Handheld(seed=4)).sample(T)
    clean = base.sample(T)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)
    offset = a.positions - clean.positions
    assert 0.001 < np.sqrt(np.mean(offset**2)) < 0.02
    angles = np.degrees(np.arccos(np.clip(np.sum(a.rotations[:, :, 2] * clean.rotations[:, :, 2], 1), -1, 1)))
    assert angles.max() < 2.0
    assert np.abs(np.diff(offset, 2, axis=0)).max() < 1e-3  # smooth, not jitter


def test_handheld_in_a_span_ramps_in_and_out_and_eases():
    # A span switched the shake on and off: 0.62 degrees between two frames at the span's start
    # (six times a step within it), and its `ease` was accepted but did nothing.
    frames = np.arange(97) / 24

    def steps(**timing):
        R = lay(CAM, Handheld(frequency_hz=2), duration=4, **timing).sample(frames).rotations  # ramps of 0.5 s
        rel = np.einsum("tji,tjk->tik", R[:-1], R[1:])
        return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))

    whole, plain, eased = steps(), steps(span=(1, 3)), steps(span=(1, 3), ease=1)
    assert np.all(plain[:24] == 0) and np.all(plain[72:] == 0)  # still outside the span
    assert plain.max() <= whole[24:72].max()  # no step bigger than the shake's own
    assert plain[24] < 0.25 * whole[24:72].max() and eased[24] < 0.5 * plain[24]  # it builds up, slower with ease
    np.testing.assert_allclose(plain[48:50], whole[48:50], rtol=1e-9)  # full strength in the middle
    assert not np.allclose(plain[24:30], eased[24:30])


def test_move_errors():
    with pytest.raises(SplatfilmError, match="span of time"):
        lay(CAM, Dolly(1.0)).sample(T)  # a still camera and no duration
    with pytest.raises(SplatfilmError, match="exactly one"):
        PushIn(TABLE)
    with pytest.raises(SplatfilmError, match="reach the target"):
        lay(CAM, PushIn(TABLE, distance=10), duration=2).sample(T)
    with pytest.raises(SplatfilmError, match="end after"):
        lay(CAM, Pan(10), span=(2, 1))


def test_move_parameters_keep_their_kinds():
    # One rule per parameter, for lay() as for shot files: a zoom from -5 mm was NaN cameras.
    with pytest.raises(SplatfilmError, match=r"^zoom: from_focal_mm must be > 0, got -5"):
        lay(CAM, Zoom(70.0, from_focal_mm=-5), duration=2)
    with pytest.raises(SplatfilmError, match=r"^handheld: amplitude_m must be >= 0"):
        lay(CAM, Handheld(amplitude_m=-0.1))
    with pytest.raises(SplatfilmError, match=r"^orbit: radius must be > 0"):
        Orbit(TABLE, 0.0).path(4)
    # A span given as a Span is kept as it is; as a tuple it takes the eases.
    span = Span(1.0, 2.0, 0.5, 0.0)
    assert lay(CAM, Pan(10), span=span).moves[0][1] is span
    assert lay(CAM, Pan(10), span=(1, 2), ease=0.3).moves[0][1] == Span(1, 2, 0.3, 0.3)
