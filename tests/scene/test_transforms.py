"""scene.transforms, the one home of rotations: conventions (Euler order, yaw direction,
quaternion order and sign), interpolation end points, and that the numpy and torch
families agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.transforms import (
    WORLD_UP,
    axis_rotation,
    euler_xyz_rotation,
    look_at_rotation,
    quat_from_rotation,
    quat_slerp,
    quat_to_rotmat,
    rotation_about,
    rotation_between,
    rotation_from_quat,
    rotation_slerp,
    rotmat_to_quat,
    umeyama,
    yaw_rotation,
)


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return rotation_from_quat(q)


def angle_between(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip((np.trace(Ra.T @ Rb) - 1) / 2, -1.0, 1.0)))


# ---- conventions --------------------------------------------------------------------------


def test_euler_xyz_is_x_then_y_then_z_about_fixed_axes():
    rng = np.random.default_rng(1)
    for deg in rng.uniform(-180, 180, (20, 3)):
        rx, ry, rz = (axis_rotation(a, math.radians(d)) for a, d in zip("xyz", deg))
        np.testing.assert_allclose(euler_xyz_rotation(deg), rz @ ry @ rx, atol=1e-15)
    # 90 about x takes +y to +z; then 90 about z takes +z to itself and +x to +y.
    np.testing.assert_allclose(euler_xyz_rotation([90, 0, 0]) @ [0, 1, 0], [0, 0, 1], atol=1e-15)
    np.testing.assert_allclose(euler_xyz_rotation([90, 0, 90]) @ [1, 0, 0], [0, 1, 0], atol=1e-15)


def test_yaw_is_the_z_axis_rotation_bit_for_bit():
    """Placements (yaw) and camera moves (axis_rotation) share one formula: the same bits."""
    degrees = np.array([0.0, 12.5, -90.0, 181.0, 359.9, 1e-7])
    np.testing.assert_array_equal(yaw_rotation(degrees), axis_rotation("z", np.radians(degrees)))
    for d in degrees:
        np.testing.assert_array_equal(yaw_rotation(float(d)), axis_rotation("z", math.radians(d)))
    # Counter-clockwise seen from above: +x turns to +y.
    np.testing.assert_allclose(yaw_rotation(90.0) @ [1, 0, 0], [0, 1, 0], atol=1e-15)


def test_axis_rotations_are_right_handed_and_rodrigues_agrees():
    for axis, v, w in (("x", [0, 1, 0], [0, 0, 1]), ("y", [0, 0, 1], [1, 0, 0]), ("z", [1, 0, 0], [0, 1, 0])):
        np.testing.assert_allclose(axis_rotation(axis, math.pi / 2) @ v, w, atol=1e-15)
        e = np.eye(3)["xyz".index(axis)]
        np.testing.assert_allclose(rotation_about(2 * e, 0.7), axis_rotation(axis, 0.7), atol=1e-15)


def test_rotation_between():
    rng = np.random.default_rng(2)
    for a, b in rng.normal(size=(20, 2, 3)):
        R = rotation_between(a, b)
        np.testing.assert_allclose(R @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-12)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
    # Opposite directions: a half turn about an axis perpendicular to them.
    R = rotation_between(WORLD_UP, -WORLD_UP)
    np.testing.assert_allclose(R @ WORLD_UP, -WORLD_UP, atol=1e-15)
    assert np.linalg.det(R) == pytest.approx(1.0)
    with pytest.raises(SplatfilmError, match="b must be a non-zero vector"):
        rotation_between(WORLD_UP, [0, 0, 0])


def test_look_at_rotation_opencv_axes():
    R = look_at_rotation([1.0, -3.0, 1.5], [0.0, 0.0, 1.0])
    forward = np.array([-1.0, 3.0, -0.5]) / np.linalg.norm([-1.0, 3.0, -0.5])
    np.testing.assert_allclose(R[:, 2], forward, atol=1e-15)  # looks down +z
    assert abs(R[2, 0]) < 1e-15  # right axis horizontal
    assert R[2, 1] < 0  # image down is world down
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-15)
    with pytest.raises(SplatfilmError, match="at the camera itself"):
        look_at_rotation([1, 2, 3], [1, 2, 3])


def test_mesh_views_use_the_look_at_rotation():
    from splatfilm.assets.meshing import look_at_viewmat

    eye, target = np.array([2.0, -1.0, 3.0]), np.array([0.1, 0.2, 0.3])
    V = look_at_viewmat(eye, target, WORLD_UP)
    c2w = np.linalg.inv(V)
    np.testing.assert_allclose(c2w[:3, :3], look_at_rotation(eye, target), atol=1e-14)
    np.testing.assert_allclose(c2w[:3, 3], eye, atol=1e-14)


# ---- quaternions --------------------------------------------------------------------------


def test_quaternion_order_sign_and_round_trip():
    # (w, x, y, z): 90 degrees about z.
    q = np.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
    np.testing.assert_allclose(rotation_from_quat(q), axis_rotation("z", math.pi / 2), atol=1e-15)
    np.testing.assert_allclose(quat_from_rotation(axis_rotation("z", math.pi / 2)), q, atol=1e-15)
    R = random_rotations(50)
    qs = quat_from_rotation(R)
    assert qs.shape == (50, 4) and np.all(qs[:, 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(qs, axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(rotation_from_quat(qs), R, atol=1e-14)
    assert quat_from_rotation(R.reshape(5, 10, 3, 3)).shape == (5, 10, 4)
    assert quat_from_rotation(np.zeros((0, 3, 3))).shape == (0, 4)


def test_numpy_and_torch_quaternions_agree():
    q = np.random.default_rng(3).normal(size=(100, 4))
    np.testing.assert_allclose(rotation_from_quat(q), quat_to_rotmat(torch.from_numpy(q)).numpy(), atol=1e-15)
    R = rotation_from_quat(q)
    np.testing.assert_allclose(quat_from_rotation(R), rotmat_to_quat(torch.from_numpy(R)).numpy(), atol=1e-15)


def test_rotation_from_quat_single_is_the_batched_one_bit_for_bit():
    """Physics replays one quaternion at a time; a batch must give the same bits (and the
    same as the formula physics baked its trajectories with: q / |q| by a dot product)."""
    q = np.random.default_rng(4).normal(size=(200, 4))
    batch = rotation_from_quat(q)
    for qi, Ri in zip(q, batch):
        np.testing.assert_array_equal(rotation_from_quat(qi), Ri)
        w, x, y, z = qi / np.linalg.norm(qi)
        np.testing.assert_array_equal(Ri, np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]))
    with pytest.raises(SplatfilmError, match="zero length"):
        rotation_from_quat([[1.0, 0, 0, 0], [0.0, 0, 0, 0]])


# ---- interpolation ------------------------------------------------------------------------


def test_quat_slerp_end_points_midpoint_and_short_way():
    qa, qb = quat_from_rotation(random_rotations(2, seed=5))
    np.testing.assert_allclose(quat_slerp(qa, qb, 0.0), qa, atol=1e-15)
    np.testing.assert_allclose(quat_slerp(qa, qb, 1.0), qb, atol=1e-15)
    Ra, Rb = rotation_from_quat(qa), rotation_from_quat(qb)
    mid = rotation_from_quat(quat_slerp(qa, qb, 0.5))
    assert angle_between(Ra, mid) == pytest.approx(angle_between(mid, Rb), abs=1e-9)
    assert angle_between(Ra, mid) == pytest.approx(angle_between(Ra, Rb) / 2, abs=1e-9)
    # -qb is the same rotation: the interpolation goes the short way, to the same place.
    np.testing.assert_allclose(rotation_from_quat(quat_slerp(qa, -qb, 0.5)), mid, atol=1e-14)
    # Nearly equal quaternions take the linear branch and stay unit length.
    near = qa + 1e-6 * np.array([0.0, 1.0, 0.0, 0.0])
    assert np.linalg.norm(quat_slerp(qa, near / np.linalg.norm(near), 0.3)) == pytest.approx(1.0, abs=1e-15)


def test_rotation_slerp_matches_quat_slerp():
    Ra, Rb = random_rotations(6, seed=6).reshape(2, 3, 3, 3)
    w = np.array([0.0, 0.4, 1.0])
    out = rotation_slerp(Ra, Rb, w)
    np.testing.assert_allclose(out[0], Ra[0], atol=1e-14)
    np.testing.assert_array_equal(out[2], Rb[2])
    qa, qb = quat_from_rotation(Ra[1]), quat_from_rotation(Rb[1])
    np.testing.assert_allclose(out[1], rotation_from_quat(quat_slerp(qa, qb, 0.4)), atol=1e-12)
    # A half turn has no unique axis from the antisymmetric part; it still turns half way.
    half = rotation_slerp(np.eye(3)[None], np.diag([1.0, -1.0, -1.0])[None], np.array([0.5]))[0]
    np.testing.assert_allclose(half @ [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], atol=1e-12)  # about x (either way)
    assert angle_between(np.eye(3), half) == pytest.approx(90.0, abs=1e-9)


def test_similarity_from_matrix_round_trips_and_refuses_the_rest():
    from splatfilm.scene.transforms import Similarity

    sim = Similarity(random_rotations(1, seed=5)[0], np.array([1.0, -2.0, 0.5]), 1.7)
    back = Similarity.from_matrix(sim.matrix())
    np.testing.assert_allclose(back.rotation, sim.rotation, atol=1e-12)
    np.testing.assert_allclose(back.translation, sim.translation)
    assert back.scale == pytest.approx(1.7, rel=1e-12)
    for bad, why in [(np.diag([1.0, 2.0, 1.0, 1.0]), "unevenly"), (np.diag([1.0, 1.0, -1.0, 1.0]), "mirrors"),
                     (np.array([[1, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "shears"),
                     (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0.1, 1.0]]), "last row")]:
        with pytest.raises(SplatfilmError, match=why):
            Similarity.from_matrix(bad)


def test_rotation_angle_is_accurate_at_every_angle_and_batched():
    from splatfilm.scene.transforms import rotation_about, rotation_angle_deg

    axis = np.array([1.0, 2.0, -2.0]) / 3.0
    for deg in (1e-7, 3e-4, 0.05, 37.0, 179.9999, 180.0):
        # arccos of the trace read 1e-7 degrees as 0 and 3e-4 as 2.4e-4 (float64)
        assert rotation_angle_deg(rotation_about(axis, np.radians(deg))) == pytest.approx(deg, rel=1e-6, abs=1e-12)
    angles = [0.0, 1e-5, 90.0, 179.0]
    out = rotation_angle_deg(np.stack([rotation_about(axis, np.radians(a)) for a in angles]))
    assert out.shape == (4,) and np.allclose(out, angles, rtol=1e-6, atol=1e-12)
    assert isinstance(rotation_angle_deg(np.eye(3)), float)


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(12, 3))
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                  [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                  [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    t, s = np.array([0.3, -2.0, 5.0]), 2.7
    R2, t2, s2 = umeyama(src, s * src @ R.T + t)
    np.testing.assert_allclose(R2, R, atol=1e-10)
    np.testing.assert_allclose(t2, t, atol=1e-10)
    assert s2 == pytest.approx(s)
