"""Cameras: conversions between conventions, indexing, resizing, validation."""

import numpy as np
import pytest
import torch

from splatfilm.scene.cameras import Cameras, align_cameras
from splatfilm.errors import SplatfilmError
from splatfilm.scene.transforms import quat_from_rotation, quat_to_rotmat, rotation_from_quat, rotmat_to_quat

FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


def random_c2w(n: int, seed: int = 0) -> np.ndarray:
    """n random rigid camera-to-world [n,4,4]."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    out = np.tile(np.eye(4), (n, 1, 1))
    out[:, :3, :3] = rotation_from_quat(q)
    out[:, :3, 3] = rng.normal(scale=3.0, size=(n, 3))
    return out


def make(n: int = 5, seed: int = 0) -> Cameras:
    K = np.array([[100.0, 0, 32], [0, 110.0, 24], [0, 0, 1]])
    return Cameras.from_c2w_opencv(random_c2w(n, seed), K, 64, 48, names=[f"im{i}.png" for i in range(n)])


def test_opencv_opengl_round_trip():
    c2w = random_c2w(20)
    cams = Cameras.from_c2w_opencv(c2w, np.eye(3) * [50, 50, 1] + [[0, 0, 10], [0, 0, 10], [0, 0, 0]], 20, 20)
    assert cams.viewmats.dtype == np.float64 and cams.viewmats.shape == (20, 4, 4)
    np.testing.assert_allclose(cams.to_c2w_opencv(), c2w, atol=1e-12)
    np.testing.assert_allclose(cams.to_c2w_opengl(), c2w @ FLIP, atol=1e-12)
    back = Cameras.from_c2w_opengl(cams.to_c2w_opengl(), cams.Ks, 20, 20)
    np.testing.assert_allclose(back.viewmats, cams.viewmats, atol=1e-12)
    np.testing.assert_allclose(cams.viewmats @ c2w, np.tile(np.eye(4), (20, 1, 1)), atol=1e-12)
    np.testing.assert_allclose(cams.centers, c2w[:, :3, 3], atol=1e-12)


def test_opengl_axes():
    # An OpenGL camera at the origin looking down world -z with y up is an OpenCV camera
    # looking down world -z with y down: a point at world (0, 1, -5) is above the centre.
    cams = Cameras.from_c2w_opengl(np.eye(4), np.array([[10.0, 0, 5], [0, 10.0, 5], [0, 0, 1]]), 10, 10)
    p_cam = cams.viewmats[0] @ [0, 1, -5, 1]
    assert p_cam[2] == pytest.approx(5)  # in front (+z)
    assert p_cam[1] < 0  # up is -y in OpenCV


def test_colmap_round_trip():
    cams = make(30, seed=1)
    q, t = cams.to_colmap()
    assert q.shape == (30, 4) and t.shape == (30, 3)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
    back = Cameras.from_colmap(q, t, cams.Ks, cams.widths, cams.heights)
    np.testing.assert_allclose(back.viewmats, cams.viewmats, atol=1e-12)
    # COLMAP's centre is -R^T t.
    R = cams.viewmats[:, :3, :3]
    np.testing.assert_allclose(cams.centers, -np.einsum("nji,nj->ni", R, t), atol=1e-12)


def test_quaternion_branches():
    # Rotations by pi about each axis exercise every branch of Shepperd's method (torch) and
    # of scipy's conversion (numpy).
    for R in [np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1]), np.eye(3)]:
        np.testing.assert_allclose(rotation_from_quat(quat_from_rotation(R[None])), R[None], atol=1e-12)
        back = quat_to_rotmat(rotmat_to_quat(torch.from_numpy(R[None]))).numpy()
        np.testing.assert_allclose(back, R[None], atol=1e-12)


def test_indexing_and_len():
    cams = make(5)
    assert len(cams) == 5
    one = cams[2]
    assert isinstance(one, Cameras) and len(one) == 1 and one.names == ["im2.png"]
    np.testing.assert_array_equal(one.viewmats[0], cams.viewmats[2])
    assert cams[-1].names == ["im4.png"]
    assert cams[1:4].names == ["im1.png", "im2.png", "im3.png"]
    assert cams[np.array([True, False, True, False, False])].names == ["im0.png", "im2.png"]
    assert cams[[4, 0]].names == ["im4.png", "im0.png"]
    assert [c.names[0] for c in cams] == cams.names
    with pytest.raises(IndexError):
        cams[5]
    both = Cameras.concat([cams[:2], cams[2:]])
    np.testing.assert_array_equal(both.viewmats, cams.viewmats)
    assert both.names == cams.names


def test_defaults_and_broadcast():
    cams = make(3)
    assert cams.widths.dtype == np.int64 and list(cams.widths) == [64] * 3
    assert cams.distortion.shape == (3, 6) and not cams.distortion.any()
    assert cams.camera_model == ["PINHOLE"] * 3
    d = Cameras(cams.viewmats, cams.Ks, 64, 48, distortion=[0.1, 0, 0, 0, 0, 0])
    assert d.camera_model == ["OPENCV"] * 3
    np.testing.assert_array_equal(cams.fx, [100.0] * 3)
    np.testing.assert_array_equal(cams.cy, [24.0] * 3)


def test_resized_scales_intrinsics_pixel_edge():
    cams = make(2)
    r = cams.resized(128, 24)
    assert list(r.widths) == [128, 128] and list(r.heights) == [24, 24]
    np.testing.assert_allclose(r.fx, 200.0)
    np.testing.assert_allclose(r.cx, 64.0)  # image centre stays the centre: cx * sx, no half-pixel shift
    np.testing.assert_allclose(r.fy, 55.0)
    np.testing.assert_allclose(r.cy, 12.0)
    np.testing.assert_array_equal(r.viewmats, cams.viewmats)
    with pytest.raises(SplatfilmError):
        cams.resized(0, 10)


def test_transformed_moves_cameras_like_points():
    cams = make(4)
    R = rotation_from_quat(np.array([0.3, 0.1, -0.5, 0.7]))
    t = np.array([1.0, -2.0, 0.5])
    s = 2.5
    moved = cams.transformed(R, t, s)
    np.testing.assert_allclose(moved.centers, s * cams.centers @ R.T + t, atol=1e-12)
    # A world point moved the same way has the same direction in camera space (depth scales by s).
    x = np.array([0.2, 0.4, 1.0, 1.0])
    x_moved = np.append(s * R @ x[:3] + t, 1.0)
    np.testing.assert_allclose(moved.viewmats @ x_moved, (cams.viewmats @ x) * [s, s, s, 1], atol=1e-10)


def test_to_tensors():
    cams = make(3)
    v, K = cams.to_tensors()
    assert v.dtype == torch.float32 and v.shape == (3, 4, 4)
    assert K.dtype == torch.float32 and K.shape == (3, 3, 3)
    v64, _ = cams.to_tensors(torch.float64, "cpu")
    np.testing.assert_array_equal(v64.numpy(), cams.viewmats)


def test_render_arguments_carry_each_cameras_lens():
    """A render call's camera arguments, whole: poses, intrinsics, size, and the model with its
    distortion [C,6] (None for the models without one); each camera its own in a mixed batch,
    which one call cannot draw."""
    base = make(3)
    d = [0.1, -0.02, 0.003, -0.0004, 0, 0]
    cams = Cameras(base.viewmats, base.Ks, 64, 48, [np.zeros(6), d, np.zeros(6)],
                   ["PINHOLE", "OPENCV_FISHEYE", "EQUIRECTANGULAR"])
    pin = cams[0].render_arguments()
    assert (pin["width"], pin["height"], pin["camera_model"], pin["distortion"]) == (64, 48, "PINHOLE", None)
    np.testing.assert_array_equal(pin["viewmats"].numpy(), cams[0].to_tensors()[0].numpy())
    fish = cams[1].render_arguments(torch.float64)
    assert fish["camera_model"] == "OPENCV_FISHEYE" and fish["distortion"].dtype == torch.float64
    assert fish["viewmats"].dtype == torch.float64 and fish["Ks"].shape == (1, 3, 3)
    np.testing.assert_array_equal(fish["distortion"].numpy(), [d])
    assert cams[-1].render_arguments()["camera_model"] == "EQUIRECTANGULAR"
    assert cams[-1].render_arguments()["distortion"] is None
    with pytest.raises(SplatfilmError, match="one camera model; these cameras have 64x48 through EQUIRECTANGULAR, "
                                             "OPENCV_FISHEYE, PINHOLE: render them one at a time"):
        cams.render_arguments()
    with pytest.raises(SplatfilmError, match=r"64x48 \(2\), 32x24 \(1\)"):
        Cameras.concat([base[:2], base[2].resized(32, 24)]).render_arguments()


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda v, K: v.__setitem__((1, 0, 3), np.nan), "non-finite"),
        (lambda v, K: K.__setitem__((0, 0, 2), np.inf), "non-finite"),
        (lambda v, K: K.__setitem__((0, 0, 0), -5.0), "focal"),
        (lambda v, K: K.__setitem__((2, 1, 1), 0.0), "focal"),
        (lambda v, K: v.__setitem__((0, slice(0, 3), 0), 2 * v[0, :3, 0]), "rotation"),
    ],
)
def test_validation(change, match):
    cams = make(3)
    v, K = cams.viewmats.copy(), cams.Ks.copy()
    change(v, K)
    with pytest.raises(SplatfilmError, match=match):
        Cameras(v, K, 64, 48)


def test_validation_sizes_and_shapes():
    cams = make(2)
    with pytest.raises(SplatfilmError, match="size"):
        Cameras(cams.viewmats, cams.Ks, 0, 48)
    with pytest.raises(SplatfilmError, match="whole"):
        Cameras(cams.viewmats, cams.Ks, 64.5, 48)
    with pytest.raises(SplatfilmError, match="shape"):
        Cameras(cams.viewmats[:, :3], cams.Ks, 64, 48)
    with pytest.raises(SplatfilmError, match="names"):
        Cameras(cams.viewmats, cams.Ks, 64, 48, names=["a"])
    with pytest.raises(SplatfilmError, match="PINHOLE"):
        Cameras(cams.viewmats, cams.Ks, 64, 48, distortion=[0.1, 0, 0, 0, 0, 0], camera_model="PINHOLE")
    with pytest.raises(SplatfilmError, match="camera model 'FISHEYE624' is not one of"):
        Cameras(cams.viewmats, cams.Ks, 64, 48, camera_model="FISHEYE624")
    with pytest.raises(SplatfilmError, match="EQUIRECTANGULAR camera with non-zero distortion"):
        Cameras(cams.viewmats, cams.Ks, 64, 48, distortion=[0.1, 0, 0, 0, 0, 0], camera_model="EQUIRECTANGULAR")
    assert Cameras(cams.viewmats, cams.Ks, 64, 48, camera_model="EQUIRECTANGULAR").camera_model == ["EQUIRECTANGULAR"] * 2
    with pytest.raises(SplatfilmError, match="non-finite"):
        Cameras.from_c2w_opengl(np.full((4, 4), np.nan), cams.Ks[0], 64, 48)


def test_align_cameras_undoes_a_similarity():
    ref = make(8)
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    moved = ref.transformed(R, np.array([1.0, 2.0, 3.0]), 0.25)
    a = align_cameras(moved, ref)
    assert a.scale == pytest.approx(4.0) and a.names == ref.names
    assert a.centre_errors.max() < 1e-9 and a.rotation_errors.max() < 1e-5


def _five_views() -> Cameras:
    """A camera at the origin, one beside it turned 60 degrees, one straight ahead of it 0.8 away
    looking the same way, and two further off."""
    from splatfilm.scene.transforms import rotation_about
    poses = np.tile(np.eye(4), (5, 1, 1))
    poses[:, :3, 3] = [[0, 0, 0], [0.1, 0, 0], [0.8, 0, 0], [-1, 0, 0], [1, 0, 0.5]]
    poses[1, :3, :3] = rotation_about([0, 1, 0], np.radians(60))
    return Cameras.from_c2w_opencv(poses, np.array([[100.0, 0, 50], [0, 100, 50], [0, 0, 1]]), 100, 100)


def test_nearest_views_weighs_distance_against_viewing_direction():
    from splatfilm.scene.cameras import nearest_views
    cams = _five_views()
    # Turned 60 degrees (1 - cos = 0.5) at 0.1 away against the same direction 0.8 away: the
    # angle weight decides (0.08 + 0.5 < 0.68; 0.08 + 1.0 > 0.68 with scale 1.18).
    assert nearest_views(cams, [1, 2], cams[[0]], scale=1.18, angle_weight=1.0) == [[1]]
    assert nearest_views(cams, [1, 2], cams[[0]], scale=1.18, angle_weight=2.0) == [[2]]
    # k best per query, best first; a query among the candidates picks itself first.
    assert nearest_views(cams, [1, 2, 3, 4], cams[[0, 3]], scale=1.18, angle_weight=2.0, k=3) == [[2, 3, 4], [3, 2, 4]]
    # Ties keep the candidates' order (camera 5 is camera 2 again).
    twice = Cameras.concat([cams, cams[2]])
    assert nearest_views(twice, [5, 2], cams[[0]], scale=1.18, angle_weight=1.0, k=2) == [[5, 2]]
    assert nearest_views(twice, [2, 5], cams[[0]], scale=1.18, angle_weight=1.0, k=2) == [[2, 5]]
    assert nearest_views(cams, [], cams[[0, 1]], scale=1.0, angle_weight=1.0) == [[], []]


def test_appearance_and_reference_sources_keep_their_own_angle_weights():
    # A held-out view borrows the appearance of the nearer view turned 60 degrees; the refiner's
    # reference, weighing direction twice, is the farther one looking the same way.
    from splatfilm.fit.appearance import appearance_sources
    from splatfilm.fit.capture import scene_extent
    from splatfilm.refine.pairs import reference_sources
    cams = _five_views()
    assert appearance_sources(cams, [1, 2], cams[[0]], scene_extent(cams)[1]) == [1]
    assert reference_sources(cams, [1, 2], cams[[0]], k=1) == [[2]]
    with pytest.raises(SplatfilmError, match="no training views"):
        appearance_sources(cams, [], cams[[0]], 1.0)


def test_index_of_names_a_camera_as_a_person_reads_its_image():
    """By the path the source wrote, its file name or its stem; a name two cameras share at
    that level (one file name in two folders) asks for the whole path; an unknown one lists some."""
    names = ["left/IMG_1.jpg", "right/IMG_1.jpg", "images/frame_00012.png", None]
    cams = Cameras(np.tile(np.eye(4), (4, 1, 1)), np.array([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]]), 64, 48,
                   names=names)
    assert [cams.index_of(n) for n in ("right/IMG_1.jpg", "frame_00012.png", "frame_00012")] == [1, 2, 2]
    with pytest.raises(SplatfilmError, match=r"2 cameras are named 'IMG_1\.jpg' \(left/IMG_1\.jpg, right/IMG_1\.jpg\); "
                                             "give its whole path"):
        cams.index_of("IMG_1.jpg")
    with pytest.raises(SplatfilmError, match=r"no camera named 'IMG_2' among the 4 cameras \(they are left/IMG_1\.jpg, "):
        cams.index_of("IMG_2")
