"""The browser's camera <-> splatfilm's: poses, fields of view and lenses, keys at the viewer's camera."""

import math

import numpy as np
import pytest
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import look_at_rotation, quat_from_rotation, rotation_from_quat
from splatfilm.shots.lens import Lens
from splatfilm.shots.lens import focal_mm_to_fov_deg, fov_deg_to_focal_mm
from splatfilm.view.camera import (ViewerCamera, canvas_camera, canvas_vfov, frame_vfov, keyframe_from_viewer,
                                   roll_about_look_at, viewer_from_camera)
from splatfilm.view.splats import splat_arrays


def _random_view(rng, aspect=16 / 9) -> ViewerCamera:
    position = rng.uniform(-3, 3, 3)
    target = rng.uniform(-1, 1, 3)
    R = look_at_rotation(position, target, roll_deg=rng.uniform(-40, 40))
    return ViewerCamera(position, quat_from_rotation(R), rng.uniform(0.3, 1.4), target, aspect)


def test_viewer_camera_refuses_a_field_of_view_outside_0_to_pi():
    with pytest.raises(SplatfilmError):
        ViewerCamera([0, 0, 0], [1, 0, 0, 0], 0.0, [0, 0, 1])


def test_canvas_camera_is_the_viewer_camera_and_round_trips():
    rng = np.random.default_rng(0)
    for _ in range(5):
        view = _random_view(rng)
        cams = canvas_camera(view, 640, 360)
        c2w = cams.to_c2w_opencv()[0]
        np.testing.assert_allclose(c2w[:3, :3], rotation_from_quat(view.wxyz), atol=1e-12)
        np.testing.assert_allclose(c2w[:3, 3], view.position, atol=1e-12)
        # Same vertical field of view; principal point at the centre.
        assert 2 * math.atan(180 / cams.fy[0]) == pytest.approx(view.vfov, abs=1e-12)
        assert (cams.cx[0], cams.cy[0]) == (320, 180)
        back = viewer_from_camera(c2w, float(cams.fy[0]), 360, 16 / 9)
        np.testing.assert_allclose(back.rotation, view.rotation, atol=1e-12)
        np.testing.assert_allclose(back.position, view.position, atol=1e-12)
        assert back.vfov == pytest.approx(view.vfov, abs=1e-12)
        # The orbit centre lies straight ahead of the camera it comes back with.
        ahead = (back.look_at - back.position) @ back.rotation[:, 2]
        assert ahead == pytest.approx(np.linalg.norm(back.look_at - back.position))


def test_a_canvas_narrower_than_the_frame_shows_the_whole_frame():
    """A 16:9 frame on a 1.59 canvas (the panel docked): the canvas's width spans the frame's,
    its height shows more; read back, the canvas gives the frame's field. A wider canvas shows
    the frame's own vertical field (and more width)."""
    vfov, frame = math.radians(40), 16 / 9
    wide = canvas_vfov(vfov, frame, 2.2)
    assert wide == vfov
    narrow = canvas_vfov(vfov, frame, 636 / 400)
    assert math.tan(narrow / 2) * 636 / 400 == pytest.approx(math.tan(vfov / 2) * frame, abs=1e-12)
    for canvas, field in ((636 / 400, narrow), (2.2, wide)):
        view = ViewerCamera([0, 0, 0], [1, 0, 0, 0], field, [0, 0, 1], canvas)
        assert frame_vfov(view, frame) == pytest.approx(vfov, abs=1e-12)


def test_the_look_at_point_lands_in_the_middle_of_the_canvas():
    view = ViewerCamera([1, -3, 1.5], quat_from_rotation(look_at_rotation([1, -3, 1.5], [0, 0, 0.8])), 0.8,
                        [0, 0, 0.8])
    cams = canvas_camera(view, 320, 180)
    p = cams.viewmats[0] @ np.array([0, 0, 0.8, 1.0])
    uv = (cams.Ks[0] @ p[:3])[:2] / p[2]
    np.testing.assert_allclose(uv, [160, 90], atol=1e-9)


def test_a_key_at_the_viewer_camera_keeps_its_exact_orientation_and_lens():
    rng = np.random.default_rng(1)
    lens = Lens(focal_mm=35, width=640, height=360)
    for _ in range(8):
        view = _random_view(rng)
        key = keyframe_from_viewer(view, 1.25, float(fov_deg_to_focal_mm(math.degrees(view.vfov), lens.image_height_mm)))
        assert key.time == 1.25 and key.look_at is not None
        np.testing.assert_allclose(key.orientation(), view.rotation, atol=1e-9)
        np.testing.assert_allclose(key.position, view.position)
        assert math.radians(focal_mm_to_fov_deg(key.focal_mm, lens.image_height_mm)) == pytest.approx(view.vfov, abs=1e-6)


def test_a_camera_looking_straight_down_is_keyed_by_its_rotation():
    R = np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])  # OpenCV: +z (forward) = world -z
    view = ViewerCamera([0, 0, 3], quat_from_rotation(R), 0.7, [0, 0, 0])
    assert roll_about_look_at(view.position, view.look_at, R) is None
    key = keyframe_from_viewer(view, 0.0, 35.0)
    assert key.look_at is None
    np.testing.assert_allclose(key.orientation(), R, atol=1e-12)


def test_splat_arrays_are_the_gaussians_covariances_colours_and_opacities():
    q = np.array([[math.cos(0.3), 0, 0, math.sin(0.3)]])  # 0.6 rad about z
    g = Gaussians(means=torch.tensor([[1.0, 2.0, 3.0]]), quats=torch.tensor(q, dtype=torch.float32),
                  scales=torch.log(torch.tensor([[0.1, 0.2, 0.3]])), opacities=torch.tensor([0.0]),
                  sh0=torch.tensor([[[1.0, -10.0, 0.0]]]), shN=torch.zeros(1, 0, 3))
    a = splat_arrays(g)
    R = rotation_from_quat(q[0])
    want = R @ np.diag([0.01, 0.04, 0.09]) @ R.T
    np.testing.assert_allclose(a.covariances[0], want, atol=1e-6)
    np.testing.assert_allclose(a.centers[0], [1, 2, 3])
    np.testing.assert_allclose(a.rgbs[0], [0.5 + 0.28209479177387814, 0.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(a.opacities[0], [0.5])
    assert a.centers.dtype == np.float32 and a.opacities.shape == (1, 1) and len(a) == 1


def test_a_level_camera_orbits_about_the_worlds_up_and_a_rolled_one_about_its_own():
    """viser orbits about the camera's up_direction: the camera's own up, tilted by its pitch,
    rolled every horizontal drag (keys came out at -19.5 deg from a level start)."""
    import contextlib
    from types import SimpleNamespace

    from splatfilm.scene.transforms import WORLD_UP
    from splatfilm.view.app import Viewer

    viewer = SimpleNamespace(_framing={}, up=WORLD_UP)
    viewer._set_client_fov = lambda c, vfov, aspect: Viewer._set_client_fov(viewer, c, vfov, aspect)
    client = SimpleNamespace(client_id=1, atomic=contextlib.nullcontext,
                             camera=SimpleNamespace(aspect=636 / 400, fov=None, up_direction=None, position=None,
                                                    look_at=None))
    position, target = np.array([3.0, -3.0, 2.2]), np.array([0.0, 0.0, 0.8])  # looking down at 19 deg
    for roll, up in ((0.0, WORLD_UP), (12.0, None)):
        R = look_at_rotation(position, target, roll_deg=roll)
        Viewer._set_client_camera(viewer, client, ViewerCamera(position, quat_from_rotation(R), 0.7, target, 16 / 9))
        np.testing.assert_allclose(client.camera.up_direction, up if up is not None else -R[:, 1], atol=1e-12)
    assert client.camera.fov == pytest.approx(canvas_vfov(0.7, 16 / 9, 636 / 400))


def test_a_lone_figure_starts_whole_in_view():
    """A 1.8 m figure standing on z = 0 (the start view framed 2 std of its points and showed its
    middle metre): every point projects inside a 16:9 frame at 35 mm."""
    from splatfilm.view.camera import view_of_points

    rng = np.random.default_rng(0)
    points = rng.uniform([-0.25, -0.15, 0.0], [0.25, 0.15, 1.8], (4000, 3))
    vfov = math.radians(Lens(focal_mm=35, width=640, height=360).vfov_deg)
    view = view_of_points(points, vfov, 16 / 9)
    cams = canvas_camera(view, 640, 360)
    cam = (points - view.position) @ view.rotation  # camera axes: x right, y down, z ahead
    u = cams.fx[0] * cam[:, 0] / cam[:, 2] + 320
    v = cams.fy[0] * cam[:, 1] / cam[:, 2] + 180
    assert (cam[:, 2] > 0).all() and (0 <= u).all() and (u < 640).all() and (0 <= v).all() and (v < 360).all()
    assert v.max() - v.min() > 0.5 * 360  # and not a speck in the middle
