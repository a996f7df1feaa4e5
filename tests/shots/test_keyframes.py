"""Keyframed paths: exact at the keys, C1 between them, shortest-arc orientation, timing, loops."""

from __future__ import annotations

import numpy as np
import pytest

from splatfilm.errors import SplatfilmError
from splatfilm.shots import Keyframe, KeyframePath, pan_tilt_roll_rotation, rotation_to_pan_tilt_roll
from splatfilm.scene.transforms import axis_rotation, look_at_rotation

H = 1e-6  # finite-difference step, seconds


def _rotvec(R: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle) of rotation matrices [...,3,3] with angle < pi."""
    angle = np.arccos(np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    axis = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    s = np.sin(angle)
    return axis * np.where(s > 1e-12, angle / (2 * np.maximum(s, 1e-300)), 0.5)[..., None]


def _look_at_keys(**kw) -> list[Keyframe]:
    return [
        Keyframe(0.0, [0, -3, 1.2], look_at=[0, 0, 0.75], focal_mm=35, **kw),
        Keyframe(0.5, [1, -2.5, 1.4], look_at=[0.2, 0, 0.8], roll_deg=5, **kw),
        Keyframe(3.0, [2.5, -0.5, 1.6], look_at=[0, 0.3, 0.9], focal_mm=50, **kw),
        Keyframe(4.0, [2.0, 1.5, 1.0], look_at=[0, 0, 0.7], focal_mm=50, **kw),
    ]


def _rotation_keys() -> list[Keyframe]:
    # Orientation keys (no look-at): a pan through more than 180 degrees with tilt and roll.
    return [
        Keyframe(0.0, [0, 0, 1], rotation=pan_tilt_roll_rotation(10, -5, 0)),
        Keyframe(1.0, [0.5, 0.2, 1.1], rotation=pan_tilt_roll_rotation(110, 5, 10)),
        Keyframe(2.5, [1.0, 0.0, 1.3], rotation=pan_tilt_roll_rotation(220, -10, -5)),
        Keyframe(3.0, [1.2, -0.5, 1.2], rotation=pan_tilt_roll_rotation(300, 0, 0)),
    ]


@pytest.mark.parametrize("make", [_look_at_keys, _rotation_keys])
def test_interpolation_hits_every_keyframe(make):
    keys = make()
    path = KeyframePath(keys, focal_mm=40.0)
    s = path.sample([k.time for k in keys])
    for i, k in enumerate(keys):
        np.testing.assert_allclose(s.positions[i], k.position, atol=1e-12)
        np.testing.assert_allclose(s.rotations[i], k.orientation(), atol=1e-12)
        assert s.focal_mm[i] == pytest.approx(k.focal_mm if k.focal_mm else 40.0, abs=1e-12)


@pytest.mark.parametrize("make", [_look_at_keys, _rotation_keys])
@pytest.mark.parametrize("ease", [0.0, 0.6])
def test_interpolation_is_c1_at_the_keys(make, ease):
    keys = make()
    for k in keys:
        k.ease_in = k.ease_out = ease
    path = KeyframePath(keys, focal_mm=40.0)
    for k in keys[1:-1]:
        t = k.time
        s = path.sample([t - H, t, t + H])
        v_in = (s.positions[1] - s.positions[0]) / H
        v_out = (s.positions[2] - s.positions[1]) / H
        np.testing.assert_allclose(v_in, v_out, atol=1e-4 * max(1.0, np.linalg.norm(v_in)))
        w_in = _rotvec(s.rotations[0].T @ s.rotations[1]) / H
        w_out = _rotvec(s.rotations[1].T @ s.rotations[2]) / H
        np.testing.assert_allclose(w_in, w_out, atol=1e-4 * max(1.0, np.linalg.norm(w_in)))
        f_in = (s.focal_mm[1] - s.focal_mm[0]) / H
        f_out = (s.focal_mm[2] - s.focal_mm[1]) / H
        assert f_in == pytest.approx(f_out, abs=1e-3 * max(1.0, abs(f_in)))
    # And smooth inside transitions: no frame-to-frame jumps.
    s = path.sample(np.linspace(keys[0].time, keys[-1].time, 2001))
    steps = np.linalg.norm(np.diff(s.positions, axis=0), axis=1)
    assert steps.max() < 0.01


def test_lens_values_do_not_overshoot():
    keys = [Keyframe(t, [t, 0, 1], look_at=[t, 5, 1], focal_mm=f) for t, f in ((0, 28), (1, 28), (2, 28), (3, 50))]
    f = KeyframePath(keys).sample(np.linspace(0, 3, 301)).focal_mm
    assert f.min() == pytest.approx(28.0) and f.max() == pytest.approx(50.0)
    assert np.all(np.diff(f) >= -1e-12)


def test_quaternion_hemisphere_flips_do_not_spin_the_camera():
    # Rotations about the vertical 0, 100, 200, 300 degrees: each step is a 100 degree turn the
    # short way. As unit quaternions with w >= 0, the 200 degree key sits on the other
    # hemisphere; a spline that ignored that would spin 260 degrees backwards.
    keys = [Keyframe(i, [0, 0, 1], rotation=pan_tilt_roll_rotation(100 * i)) for i in range(4)]
    s = KeyframePath(keys).sample(np.linspace(0, 3, 601))
    pan = rotation_to_pan_tilt_roll(s.rotations)[:, 0]
    step = (np.diff(pan) + 180) % 360 - 180
    assert np.all(step > 0) and step.max() < 2.0
    assert np.sum(step) == pytest.approx(300.0, abs=1e-6)


def test_negated_quaternion_keys_give_the_same_path():
    from splatfilm.shots.shot_yaml import parse_shot
    from splatfilm.scene.transforms import quat_from_rotation

    qs = [quat_from_rotation(pan_tilt_roll_rotation(p, -10)) for p in (0, 120, 240)]
    def shot(signs):
        return parse_shot({"fps": 24, "keyframes": [
            {"time": i, "position": [i, 0, 1], "quat": (sg * q).tolist()} for i, (q, sg) in enumerate(zip(qs, signs))]})
    a, b = shot([1, 1, 1]).sample(), shot([1, -1, 1]).sample()
    np.testing.assert_allclose(a.rotations, b.rotations, atol=1e-12)


def test_timing_honours_uneven_transitions_and_ease():
    keys = _look_at_keys()
    keys[1].ease_in = keys[1].ease_out = 1.0  # come to rest at the 0.5 s key
    path = KeyframePath(keys, focal_mm=40.0)
    s = path.sample([0.5 - 1e-4, 0.5, 0.5 + 1e-4, 3.0])
    np.testing.assert_allclose(s.positions[1], keys[1].position, atol=1e-12)
    np.testing.assert_allclose(s.positions[3], keys[2].position, atol=1e-12)
    assert np.linalg.norm(s.positions[2] - s.positions[1]) / 1e-4 < 1e-3  # at rest
    # Progress along the keys is monotone everywhere (no key reached early or late); an un-eased
    # transition runs on linear time, the eased one leaves its key slowly.
    params = [path._spline_param(t) for t in np.linspace(0, 4, 801)]
    assert np.all(np.diff(params) >= 0)
    assert path._spline_param(3.5) == pytest.approx(3.5, abs=1e-12)
    assert path._spline_param(1.75) < 1.75


def test_constant_speed_mode():
    path = KeyframePath(_look_at_keys(), focal_mm=40.0, constant_speed=True)
    s = path.sample(np.linspace(0, 4, 97))
    steps = np.linalg.norm(np.diff(s.positions, axis=0), axis=1)
    np.testing.assert_allclose(steps, steps.mean(), rtol=1e-3)
    np.testing.assert_allclose(s.positions[[0, -1]], [[0, -3, 1.2], [2.0, 1.5, 1.0]], atol=1e-9)
    with pytest.raises(SplatfilmError, match="moves"):
        KeyframePath([Keyframe(0, [0, 0, 1], look_at=[0, 1, 1]), Keyframe(1, [0, 0, 1], look_at=[1, 1, 1])],
                     constant_speed=True)


def test_closed_loop_returns_smoothly_to_the_first_key():
    keys = [Keyframe(float(i), [2 * np.cos(a), 2 * np.sin(a), 1.5], look_at=[0, 0, 1])
            for i, a in enumerate(np.radians([0, 90, 180, 270]))]
    path = KeyframePath(keys, loop=True, loop_time=4.0)
    s = path.sample([4.0 - H, 4.0, 4.0 + H, 0.0, H])
    np.testing.assert_allclose(s.positions[1], keys[0].position, atol=1e-12)
    np.testing.assert_allclose(s.positions[2], s.positions[4], atol=1e-12)  # wraps around
    v_in = (s.positions[1] - s.positions[0]) / H
    v_out = (s.positions[4] - s.positions[3]) / H
    np.testing.assert_allclose(v_in, v_out, atol=1e-4 * np.linalg.norm(v_in))
    with pytest.raises(SplatfilmError, match="loop_time"):
        KeyframePath(keys, loop=True, loop_time=3.0)


def test_single_keyframe_is_a_still_camera_and_bad_keys_are_rejected():
    s = KeyframePath([Keyframe(0, [0, 0, 1], look_at=[0, 1, 1], focal_mm=50)]).sample([0, 1, 2])
    np.testing.assert_allclose(s.positions, [[0, 0, 1]] * 3)
    assert list(s.focal_mm) == [50, 50, 50]
    with pytest.raises(SplatfilmError, match="not after"):
        KeyframePath([Keyframe(1, [0, 0, 1], look_at=[0, 1, 1]), Keyframe(1, [1, 0, 1], look_at=[0, 1, 1])])
    with pytest.raises(SplatfilmError, match="camera position itself"):
        Keyframe(0, [0, 0, 1], look_at=[0, 0, 1])
    with pytest.raises(SplatfilmError, match="exactly one"):
        Keyframe(0, [0, 0, 1])


def test_look_at_keys_keep_the_horizon_level():
    s = KeyframePath(_look_at_keys()[:1] + [Keyframe(2.0, [2, -2, 2], look_at=[0, 0, 0.7], focal_mm=35)]).sample(
        np.linspace(0, 2, 50))
    # Camera x axis (right) stays horizontal: the world up has no component along it.
    assert np.abs(s.rotations[:, 2, 0]).max() < 1e-12
    # Roll keys turn it: the 5 degree roll at the second key is exactly there.
    s = KeyframePath(_look_at_keys(), focal_mm=40.0).sample([0.5])
    level = look_at_rotation([1, -2.5, 1.4], [0.2, 0, 0.8])
    np.testing.assert_allclose(s.rotations[0], level @ axis_rotation("z", np.radians(5)), atol=1e-12)


def test_closed_loop_of_orientation_keys_is_c1_at_the_seam():
    keys = _rotation_keys()
    path = KeyframePath(keys, loop=True, loop_time=4.2)
    s = path.sample([4.2 - H, 4.2, H, 0.0] + [k.time for k in keys])
    np.testing.assert_allclose(s.rotations[1], keys[0].orientation(), atol=1e-12)
    for i, k in enumerate(keys):
        np.testing.assert_allclose(s.rotations[4 + i], k.orientation(), atol=1e-12)
    w_in = _rotvec(s.rotations[0].T @ s.rotations[1]) / H
    w_out = _rotvec(s.rotations[3].T @ s.rotations[2]) / H
    np.testing.assert_allclose(w_in, w_out, atol=1e-4 * np.linalg.norm(w_in))


def test_a_keyed_hold_holds_and_keys_are_not_overshot():
    # x = 0 at frame 1001, 1 at 1011 and 1 at 1024 (24 fps): plain Kochanek-Bartels drifted to
    # x = 1.140 m near frame 1020 and back, and 1.141 m with `ease: 1` on the middle key.
    level = axis_rotation("x", -np.pi / 2)  # looking along +y
    for ease in (0.0, 1.0):
        keys = [Keyframe(0.0, [0, 0, 1], rotation=level), Keyframe(10 / 24, [1, 0, 1], rotation=level, ease_in=ease,
                                                                   ease_out=ease),
                Keyframe(23 / 24, [1, 0, 1], rotation=level)]
        x = KeyframePath(keys).sample(np.linspace(0, 23 / 24, 461)).positions[:, 0]
        assert x.max() == 1.0 and np.all(np.diff(x) >= 0) and np.all(x[230:] == 1.0), ease
    # A key at the top of a rise is its top, in each coordinate; so is a roll key.
    keys = [Keyframe(t, [t, z, 1], look_at=[t, 5, 1], roll_deg=r) for t, z, r in ((0, 0, 0), (1, 1, 10), (3, 0.8, 9))]
    s = KeyframePath(keys).sample(np.linspace(0, 3, 301))
    assert s.positions[:, 1].max() == 1.0
    level = look_at_rotation(s.positions, s.positions + s.rotations[:, :, 2])  # the same aim, unrolled
    turn = np.einsum("tji,tjk->tik", level, s.rotations)
    roll = np.degrees(np.arctan2(turn[:, 1, 0], turn[:, 0, 0]))
    assert roll.max() == pytest.approx(10.0, abs=1e-9)
    # Keys moving one way with even steps keep plain Kochanek-Bartels's curve.
    import splines

    smooth = [Keyframe(t, [t, 2 * t, 1 + 0.1 * t], look_at=[t + 1, 2 * t + 1, 1]) for t in (0.0, 1.0, 2.0, 3.0)]
    plain = splines.KochanekBartels([np.concatenate([k.position, k.look_at, [0.0]]) for k in smooth],
                                    grid=[0.0, 1.0, 2.0, 3.0], endconditions="natural")
    times = np.linspace(0, 3, 61)
    np.testing.assert_allclose(KeyframePath(smooth).sample(times).positions,
                               np.array([plain.evaluate(t) for t in times])[:, :3], atol=1e-12)
