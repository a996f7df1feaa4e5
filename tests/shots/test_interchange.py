"""Shots to and from nerfstudio (camera_path.json, transforms.json) and USD, checked against
nerfstudio's own parse of its fixture and read back with pxr."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from helpers import CAMERAS, FIXTURES, cli_error

from splatfilm.errors import SplatfilmError
from splatfilm.io.camera_files import nerfstudio_viewer_path, read_camera_path_json, read_transforms_json, viewer_path
from splatfilm.shots import export_format, export_shot, import_camera_path_json, load_shot, parse_shot, read_usd_camera



def _shot(fps=24, zoom=True):
    """A keyframed shot with a zoom and a rack focus, 640x360."""
    return parse_shot({
        "name": "sh010", "fps": fps, "resolution": [640, 360],
        "lens": {"focal_mm": 35, "f_stop": 2.8, "focus_distance": 3.0, "near": 0.05, "far": 200},
        "keyframes": [
            {"time": 0, "position": [0, -3, 1.2], "look_at": [0, 0, 0.75]},
            {"time": 1, "position": [1.2, -2.4, 1.5], "look_at": [0, 0, 0.8], "focal_mm": 50 if zoom else 35,
             "focus_distance": 2.0},
            {"time": 2, "position": [2, -1, 1.3], "pan": 160, "tilt": -12, "roll": 4},
        ],
    }, "test")


def _assert_same_cameras(a, b, rtol_K=1e-12):
    assert len(a) == len(b)
    np.testing.assert_allclose(a.to_c2w_opencv(), b.to_c2w_opencv(), atol=1e-12)
    np.testing.assert_allclose(a.Ks, b.Ks, rtol=rtol_K)
    assert list(a.widths) == list(b.widths) and list(a.heights) == list(b.heights)


# ---- nerfstudio camera_path.json ------------------------------------------------------------------


@pytest.mark.parametrize("fps", [24, "24000/1001"])
def test_camera_path_round_trip(tmp_path, fps):
    shot = _shot(fps)
    out = tmp_path / "camera_path.json"
    assert export_shot(shot, out) == "camera_path"
    back = read_camera_path_json(out)
    _assert_same_cameras(back.cameras, shot.cameras(), rtol_K=1e-12)
    assert back.fps == shot.fps  # what ns-render plays: len(camera_path) / seconds
    meta = json.loads(out.read_text())
    assert meta["camera_type"] == "perspective" and meta["render_width"] == 640 and meta["render_height"] == 360
    assert len(meta["camera_path"]) == shot.frame_count and len(meta["camera_path"][0]["camera_to_world"]) == 16
    assert meta["camera_path"][0]["fov"] == pytest.approx(shot.lens.vfov_deg)
    # The viewer's keys, with their transition times, for editing the path there: it plays the shot from them.
    _assert_viewer_plays(meta)
    # Re-importing gives the same frames again.
    again = import_camera_path_json(out)
    assert again.fps == shot.fps and again.frame_count == shot.frame_count
    _assert_same_cameras(again.cameras(), shot.cameras(), rtol_K=1e-9)


def test_import_matches_nerfstudios_parse_of_the_fixture(tmp_path):
    ref = json.loads((FIXTURES / "camera_path_parsed.json").read_text())
    shot = import_camera_path_json(FIXTURES / "camera_path.json")
    assert shot.frame_count == 12 and shot.fps == 24 and shot.name == "camera_path"
    cams = shot.cameras()
    np.testing.assert_allclose(cams.to_c2w_opengl()[:, :3], ref["camera_to_worlds"], atol=1e-6)
    for key in ("fx", "fy", "cx", "cy"):
        np.testing.assert_allclose(getattr(cams, key), ref[key], rtol=1e-9)
    assert list(cams.widths) == ref["width"] and list(cams.heights) == ref["height"]
    # ... and exporting it writes what nerfstudio would parse the same way.
    export_shot(shot, tmp_path / "again.json")
    _assert_same_cameras(read_camera_path_json(tmp_path / "again.json").cameras,
                         read_camera_path_json(FIXTURES / "camera_path.json").cameras, rtol_K=1e-9)


def test_camera_path_in_a_nerfstudio_runs_world(tmp_path):
    R = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    dp = tmp_path / "dataparser_transforms.json"
    dp.write_text(json.dumps({"transform": np.hstack([R, [[0.1], [0.2], [-0.3]]]).tolist(), "scale": 0.25}))
    shot = _shot()
    out = tmp_path / "path.json"
    export_shot(shot, out, dataparser_transforms=dp)
    assert not np.allclose(read_camera_path_json(out).cameras.viewmats, shot.cameras().viewmats)
    _assert_same_cameras(read_camera_path_json(out, dataparser_transforms=dp).cameras, shot.cameras(), rtol_K=1e-12)
    with pytest.raises(SplatfilmError, match="only apply to a camera_path"):
        export_shot(shot, tmp_path / "x.usda", dataparser_transforms=dp)


def _assert_viewer_plays(meta: dict) -> None:
    """nerfstudio's viewer, loading `meta`'s keyframes (a fresh viewer: its 75 degree default fov),
    plays every frame of `camera_path` within 1 mm, 0.01 degrees of turn and of field of view."""
    want = np.array([np.reshape(c["camera_to_world"], (4, 4)) for c in meta["camera_path"]])
    want_fov = np.array([c["fov"] for c in meta["camera_path"]])
    got, got_fov = nerfstudio_viewer_path(meta, np.arange(len(want)) / meta["fps"])
    np.testing.assert_allclose(got[:, :3, 3], want[:, :3, 3], atol=1e-3)
    turn = np.einsum("fji,fjk->fik", got[:, :3, :3], want[:, :3, :3])
    np.testing.assert_allclose(np.degrees(np.arccos(np.clip((np.trace(turn, axis1=1, axis2=2) - 1) / 2, -1, 1))), 0,
                               atol=0.01)
    np.testing.assert_allclose(got_fov, want_fov, atol=0.01)
    # The keys span the shot's seconds, so the viewer renders as many frames again.
    transitions = [k["override_transition_sec"] for k in meta["keyframes"]][0 if meta["is_cycle"] else 1:]
    assert sum(transitions) == pytest.approx(meta["seconds"])


@pytest.mark.parametrize("name", ["orbit_table", "dolly_zoom_figure"])
def test_nerfstudio_viewer_plays_an_exported_move(tmp_path, name):
    # The viewer rebuilds its path from `keyframes` alone: a turntable's two ends at one place
    # played a still camera (2.1 m off), a dolly zoom's two keys blended its field of view.
    export_shot(load_shot(CAMERAS / f"{name}.yaml"), tmp_path / "path.json")
    _assert_viewer_plays(json.loads((tmp_path / "path.json").read_text()))


def test_keys_that_play_in_the_viewer_are_the_shots_own(tmp_path):
    shot = parse_shot({"name": "sh", "fps": 24, "duration": 2, "resolution": [64, 36], "lens": 35, "keyframes": [
        {"time": t, "position": [t, -3.0, 1.2], "pan": 10, "tilt": -5} for t in (0, 1, 2)]}, "test")
    export_shot(shot, tmp_path / "path.json")
    meta = json.loads((tmp_path / "path.json").read_text())
    assert len(meta["keyframes"]) == 3 and [k["override_transition_sec"] for k in meta["keyframes"]] == [None, 1, 1]
    # Each key keeps its own fov: one equal to `default_fov` would take the viewer's slider.
    assert all(abs(k["fov"] - meta["default_fov"]) > 1e-3 for k in meta["keyframes"])
    _assert_viewer_plays(meta)


@pytest.mark.filterwarnings("ignore:`row_stack` alias is deprecated:DeprecationWarning")  # splines' closed rotation spline
def test_viewer_path_is_nerfstudios_interpolation():
    """viewer_path against render_panel.py's construction, transcribed (closed splines for a loop)."""
    import splines
    import splines.quaternion as squat
    from scipy.interpolate import PchipInterpolator
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(3)
    c2w = np.tile(np.eye(4), (5, 1, 1))
    c2w[:, :3, :3] = Rotation.random(5, random_state=4).as_matrix()
    c2w[:, :3, 3] = rng.normal(size=(5, 3))
    fovs, transitions, times = rng.uniform(20, 60, 5), rng.uniform(0.2, 1.0, 5), np.linspace(0, 2, 17)
    flip = np.diag([1.0, -1.0, -1.0])
    for loop in (False, True):
        ends, tcb = ("closed" if loop else "natural"), (0.3, 0.0, 0.0)
        q = squat.KochanekBartels([squat.UnitQuaternion.from_unit_xyzw(Rotation.from_matrix(m[:3, :3] @ flip).as_quat())
                                   for m in c2w], tcb=tcb, endconditions=ends)
        p = splines.KochanekBartels(list(c2w[:, :3, 3] * 10.0), tcb=tcb, endconditions=ends)
        f = splines.KochanekBartels(list(np.radians(fovs)), tcb=tcb, endconditions=ends)
        cum = np.concatenate([[0.0], np.cumsum(transitions[1:])] + ([[transitions[1:].sum() + transitions[0]]] if loop else []))
        idx = np.arange(len(cum))
        warp = (PchipInterpolator(np.concatenate([[-(cum[-1] - cum[-2])], cum, cum[-1:] + cum[1:2]]),
                                  np.concatenate([[-1], idx, [idx[-1] + 1]])) if loop else PchipInterpolator(cum, idx))
        s = np.clip(warp(times), 0, idx[-1])
        got, got_fov = viewer_path(c2w, fovs, transitions, times, loop=loop, tension=0.3)
        np.testing.assert_allclose(got[:, :3, 3], np.array(p.evaluate(s)) / 10.0, atol=1e-12)
        R = Rotation.from_quat([[*v.vector, v.scalar] for v in q.evaluate(s)]).as_matrix() @ flip
        np.testing.assert_allclose(got[:, :3, :3], R, atol=1e-12)
        np.testing.assert_allclose(got_fov, np.degrees(f.evaluate(s)), atol=1e-12)


# ---- transforms.json -------------------------------------------------------------------------------


def test_transforms_json_round_trip(tmp_path):
    shot = _shot()
    out = tmp_path / "transforms.json"
    assert export_shot(shot, out) == "transforms"
    cams = read_transforms_json(out)
    _assert_same_cameras(cams, shot.cameras())
    assert cams.names[0] == "images/sh010.1001.png" and cams.camera_model == ["PINHOLE"] * shot.frame_count
    meta = json.loads(out.read_text())
    assert "fl_x" in meta["frames"][0] and "fl_x" not in meta  # the zoom changes it per frame
    assert meta["w"] == 640 and meta["cx"] == 320.0 and meta["splatfilm"]["fps"] == "24"
    export_shot(_shot(zoom=False), out)
    meta = json.loads(out.read_text())
    assert "fl_x" in meta and "fl_x" not in meta["frames"][0]


# ---- USD ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["shot.usda", "shot.usd"])
def test_usd_round_trip_with_pxr(tmp_path, name):
    from pxr import Gf, Usd, UsdGeom

    shot = _shot("24000/1001")
    out = tmp_path / name
    assert export_shot(shot, out) == "usd"
    stage = Usd.Stage.Open(str(out))
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0 and UsdGeom.GetStageUpAxis(stage) == "Z"
    assert stage.GetTimeCodesPerSecond() == pytest.approx(24000 / 1001)
    assert stage.GetFramesPerSecond() == pytest.approx(24000 / 1001)
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (1001, 1001 + shot.frame_count - 1)
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/sh010"))
    assert cam and stage.GetDefaultPrim().GetPath() == "/World"
    sample = shot.sample()
    c2w_gl = shot.cameras().to_c2w_opengl()
    for i, frame in enumerate(shot.frame_numbers):
        t = Usd.TimeCode(int(frame))
        # Focal length in tenths of a scene unit (metres): 35 mm is 0.35.
        assert cam.GetFocalLengthAttr().Get(t) * 100 == pytest.approx(sample.focal_mm[i], rel=1e-6)
        m = np.array(cam.ComputeLocalToWorldTransform(t)).T  # USD matrices are row-vector
        np.testing.assert_allclose(m, c2w_gl[i], atol=1e-12)
        assert cam.GetFocusDistanceAttr().Get(t) == pytest.approx(sample.focus_distance[i], rel=1e-6)
        # The USD camera sees what the shot's camera sees: same vertical field of view.
        gf = cam.GetCamera(t)
        assert gf.GetFieldOfView(Gf.Camera.FOVVertical) == pytest.approx(
            np.degrees(2 * np.arctan(180 / shot.cameras().fy[i])), rel=1e-5)
    assert cam.GetHorizontalApertureAttr().Get() == pytest.approx(0.36)
    assert cam.GetVerticalApertureAttr().Get() == pytest.approx(0.36 * 360 / 640)
    assert cam.GetFStopAttr().Get() == pytest.approx(2.8)
    assert tuple(cam.GetClippingRangeAttr().Get()) == pytest.approx((0.05, 200))
    cams, frames, fps = read_usd_camera(out)
    assert frames == list(shot.frame_numbers) and fps == Fraction(24000, 1001)
    _assert_same_cameras(cams, shot.cameras(), rtol_K=1e-6)  # USD stores lens values as float32


def test_export_format_by_name():
    assert export_format("a/b.usda") == export_format("b.USD") == "usd"
    assert export_format("out/transforms.json") == "transforms"
    assert export_format("shot_010.json") == "camera_path"
    with pytest.raises(SplatfilmError, match="unknown export format"):
        export_format("shot.abc")


def test_usd_camera_depth_of_field_only_when_the_frames_have_it(tmp_path):
    from pxr import Usd, UsdGeom

    shot = _shot()
    out = tmp_path / "sharp.usda"
    export_shot(shot, out, depth_of_field=False)
    stage = Usd.Stage.Open(str(out))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/sh010"))
    # Unauthored: readers see the schema's fStop 0 (no depth of field), as the frames were rendered.
    assert not cam.GetFStopAttr().HasAuthoredValue() and not cam.GetFocusDistanceAttr().HasAuthoredValue()
    assert cam.GetFStopAttr().Get() == 0
    # The lens in mm rides along as customData; the schema's values stay in tenths of a unit.
    assert cam.GetPrim().GetCustomDataByKey("splatfilm:focal_mm")[0] == pytest.approx(35.0)  # this shot zooms
    assert cam.GetPrim().GetCustomDataByKey("splatfilm:lens_f_stop") == pytest.approx(2.8)
    assert cam.GetFocalLengthAttr().Get(1001) == pytest.approx(0.35)
    out = tmp_path / "dof.usda"
    export_shot(shot, out, depth_of_field=True)
    stage = Usd.Stage.Open(str(out))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/sh010"))
    assert cam.GetFStopAttr().Get() == pytest.approx(2.8)
    assert cam.GetFocusDistanceAttr().Get(1001) == pytest.approx(3.0)


def test_usd_camera_of_a_zoom_carries_every_frames_millimetres_and_typed_render_settings(tmp_path):
    """customData cannot be time-sampled: a zoom's `splatfilm:focal_mm` is one value per frame (it
    held the first frame's 35 mm for a 35 -> 50 mm zoom). /Render is a Scope, not an untyped prim."""
    from pxr import Usd, UsdGeom, UsdRender

    shot = _shot(zoom=True)
    out = tmp_path / "zoom.usda"
    export_shot(shot, out)
    stage = Usd.Stage.Open(str(out))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/sh010"))
    focal = shot.sample().focal_mm
    assert focal.max() - focal.min() > 10  # the shot zooms
    mm = list(cam.GetPrim().GetCustomDataByKey("splatfilm:focal_mm"))
    assert mm == pytest.approx(list(focal), rel=1e-12)
    samples = cam.GetFocalLengthAttr().GetTimeSamples()
    assert [cam.GetFocalLengthAttr().Get(t) * 100 for t in samples] == pytest.approx(mm, rel=1e-6)
    # A fixed lens keeps one number.
    export_shot(_shot(zoom=False), tmp_path / "prime.usda")
    prime = Usd.Stage.Open(str(tmp_path / "prime.usda"))
    assert prime.GetPrimAtPath("/World/sh010").GetCustomDataByKey("splatfilm:focal_mm") == pytest.approx(35.0)
    assert stage.GetPrimAtPath("/Render").IsA(UsdGeom.Scope)
    assert stage.GetPrimAtPath("/Render/Settings").IsA(UsdRender.Settings)
    assert not [p.GetPath() for p in stage.Traverse() if not p.GetTypeName()]


def _lens_shot(lens: dict):
    """A 640x360 shot on `lens` that zooms 20 -> 28 mm over its second."""
    return parse_shot({"name": "sh010", "fps": 24, "resolution": [640, 360], "lens": lens, "keyframes": [
        {"time": 0, "position": [0, -3, 1.2], "look_at": [0, 0, 0.75]},
        {"time": 1, "position": [1.2, -2.4, 1.5], "look_at": [0, 0, 0.8], "focal_mm": 28}]})


@pytest.mark.parametrize("lens", [
    {"focal_mm": 20, "model": "opencv", "k1": -0.12, "k2": 0.03, "k3": -0.004, "p1": 0.002, "p2": -0.001},
    {"focal_mm": 20, "model": "fisheye", "k1": 0.02, "k2": -0.01, "k3": 0.003, "k4": -0.0005},
])
def test_usd_camera_of_a_distorting_lens_redistorts_onto_the_frames(tmp_path, lens):
    """A distorting lens gets its USD camera (it was refused), the matchmove way: the pinhole
    of its intrinsics, which usdview renders undistorted, plus customData `splatfilm:lens` with
    OpenCV's K and distCoeffs. A world point projected through the USD camera's frustum and then
    distorted by cv2 lands where the shot's frames show it, within 1e-3 px (measured ~2e-5:
    float32 focalLength), every frame of a zoom. The registered validators find nothing."""
    cv2 = pytest.importorskip("cv2")
    import torch
    from pxr import Usd, UsdGeom, UsdValidation

    from splatfilm.render.camera_models import project_points

    shot = _lens_shot(lens)
    out = tmp_path / "shot.usda"
    export_shot(shot, out)
    stage = Usd.Stage.Open(str(out))
    context = UsdValidation.ValidationContext(UsdValidation.ValidationRegistry().GetOrLoadAllValidators())
    assert [e.GetMessage() for e in context.Validate(stage)] == []
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/sh010"))
    assert cam.GetHorizontalApertureOffsetAttr().HasAuthoredValue()  # the principal point, said outright
    assert tuple(cam.GetClippingRangeAttr().Get()) == pytest.approx((shot.lens.near, shot.lens.far))
    data = cam.GetPrim().GetCustomDataByKey("splatfilm:lens")
    assert data["model"] == lens["model"] and tuple(data["image_size"]) == (640, 360)
    D = np.array(data["distCoeffs"])
    cams = shot.cameras()
    assert len(data["K"]) == len(cams)  # a zoom: one K per frame, as focalLength's time samples
    rng = np.random.default_rng(0)
    worst = 0.0
    for i, frame in enumerate(shot.frame_numbers):
        frustum = cam.GetCamera(Usd.TimeCode(int(frame))).frustum
        world_to_ndc = np.array(frustum.ComputeViewMatrix()) @ np.array(frustum.ComputeProjectionMatrix())
        c2w = cams.to_c2w_opencv()[i]
        depth = rng.uniform(1, 5, (40, 1))
        p_cam = np.stack([rng.uniform(-0.6, 0.6, 40), rng.uniform(-0.3, 0.3, 40), np.ones(40)], 1) * depth
        p_world = p_cam @ c2w[:3, :3].T + c2w[:3, 3]
        h = np.c_[p_world, np.ones(40)] @ world_to_ndc  # USD matrices act on row vectors
        ndc = h[:, :2] / h[:, 3:]
        # usdview's undistorted image, in OpenCV's pixels (centres at integers)
        u, v = (ndc[:, 0] + 1) / 2 * 640 - 0.5, (1 - ndc[:, 1]) / 2 * 360 - 0.5
        K = np.array(data["K"][i])
        rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(40)], 1)
        if lens["model"] == "opencv":
            uv, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), K, D)
        else:
            uv, _ = cv2.fisheye.projectPoints(rays[None], np.zeros(3), np.zeros(3), K, D)
        ours = project_points(torch.tensor(p_cam[None]), torch.tensor(cams.Ks[i:i + 1]), cams.camera_model[i],
                              torch.tensor(cams.distortion[i:i + 1]))[0].numpy()
        worst = max(worst, float(np.abs(uv.reshape(-1, 2) + 0.5 - ours).max()))
    assert worst < 1e-3
    # Read back, the camera keeps its lens.
    back, _, _ = read_usd_camera(out)
    assert set(back.camera_model) == {shot.lens.camera_model}
    np.testing.assert_allclose(back.distortion, np.tile(shot.lens.distortion, (len(cams), 1)))
    np.testing.assert_allclose(back.Ks, cams.Ks, rtol=1e-6)


def test_usd_camera_of_lenses_opencv_cannot_say_or_usd_cannot_hold(tmp_path, capsys):
    """nerfstudio's r^8 term has no place in OpenCV's distCoeffs: the named coefficients and a
    note say it instead. A panorama has no USD camera: a one-line error naming why."""
    from pxr import Usd

    export_shot(_lens_shot({"focal_mm": 20, "model": "opencv", "k1": -0.1, "k4": 0.001}), tmp_path / "r8.usda")
    stage = Usd.Stage.Open(str(tmp_path / "r8.usda"))
    data = stage.GetPrimAtPath("/World/sh010").GetCustomDataByKey("splatfilm:lens")
    assert "distCoeffs" not in data and data["k4"] == 0.001 and "r^8" in data["note"]
    with pytest.raises(SplatfilmError, match="no spherical projection"):
        export_shot(_lens_shot({"focal_mm": 20, "model": "equirectangular"}), tmp_path / "pano.usda")
    shot_yaml = tmp_path / "pano.yaml"
    shot_yaml.write_text(json.dumps({"name": "sh010", "fps": 24, "resolution": [64, 32],
                                     "lens": {"model": "equirectangular"},
                                     "keyframes": [{"time": 0, "position": [0, 0, 1], "look_at": [0, 1, 1]},
                                                   {"time": 1, "position": [0, 0.5, 1], "look_at": [0, 2, 1]}]}))
    assert "no spherical projection" in cli_error(capsys, ["path", "export", shot_yaml, "-o", tmp_path / "pano.usda"])
    assert not (tmp_path / "pano.usda").exists()


def test_usd_camera_principal_point_is_read_from_the_aperture_offsets(tmp_path):
    """The schema's aperture offsets shift the film back: a camera whose offsets are a tenth of
    its apertures reads back with the principal point where usdview's frustum images the optical
    axis, a tenth of the image off the centre (it was read as the centre whatever the file said)."""
    from pxr import Usd, UsdGeom

    export_shot(_shot(zoom=False), tmp_path / "shot.usda")
    stage = Usd.Stage.Open(str(tmp_path / "shot.usda"))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/sh010"))
    assert cam.GetHorizontalApertureOffsetAttr().Get() == 0 == cam.GetVerticalApertureOffsetAttr().Get()
    cam.GetHorizontalApertureOffsetAttr().Set(0.1 * cam.GetHorizontalApertureAttr().Get())
    cam.GetVerticalApertureOffsetAttr().Set(-0.1 * cam.GetVerticalApertureAttr().Get())
    stage.GetRootLayer().Export(str(tmp_path / "shifted.usda"))
    cams, frames, _ = read_usd_camera(tmp_path / "shifted.usda")
    frustum = cam.GetCamera(Usd.TimeCode(frames[0])).frustum
    on_axis = np.array(frustum.GetPosition()) + 5 * np.array(frustum.ComputeViewDirection())
    h = np.append(on_axis, 1.0) @ np.array(frustum.ComputeViewMatrix()) @ np.array(frustum.ComputeProjectionMatrix())
    ndc = h[:2] / h[3]
    axis_px = [(ndc[0] + 1) / 2 * 640, (1 - ndc[1]) / 2 * 360]
    assert axis_px == pytest.approx([320 - 64, 180 - 36], abs=1e-3)
    np.testing.assert_allclose(cams.Ks[0, :2, 2], axis_px, atol=1e-3)


@pytest.mark.parametrize("lens_data, says", [
    ("opencv", "not a distorting lens"),  # not a dictionary: was an AttributeError traceback
    ({"k1": -0.1}, "not a distorting lens"),  # no model: was a message naming no file
    ({"model": "opencv", "k1": "abc"}, "k1 must be a finite number"),  # was a ValueError traceback
    ({"model": "fisheye", "k1": 0.1, "p1": 0.01}, "has no p1"),  # was read as a fisheye, p1 and all
])
def test_usd_camera_read_back_with_a_lens_splatfilm_does_not_write_is_a_one_line_error(tmp_path, lens_data, says):
    """customData `splatfilm:lens` that is not a lens `usd_lens_data` writes is a one-line
    SplatfilmError naming the file; coefficients left out read as 0."""
    from pxr import Usd

    src = tmp_path / "src.usda"
    export_shot(_lens_shot({"focal_mm": 20, "model": "opencv", "k1": -0.1, "p1": 0.01}), src)
    stage = Usd.Stage.Open(str(src))
    prim = stage.GetPrimAtPath("/World/sh010")
    prim.ClearCustomDataByKey("splatfilm:lens")
    prim.SetCustomDataByKey("splatfilm:lens", lens_data)
    stage.GetRootLayer().Export(str(tmp_path / "odd.usda"))
    with pytest.raises(SplatfilmError) as e:
        read_usd_camera(tmp_path / "odd.usda")
    assert str(e.value).startswith(f"{tmp_path / 'odd.usda'}: customData splatfilm:lens")
    assert says in str(e.value) and "\n" not in str(e.value)
    prim.ClearCustomDataByKey("splatfilm:lens")
    prim.SetCustomDataByKey("splatfilm:lens", {"model": "opencv", "k1": -0.1})
    stage.GetRootLayer().Export(str(tmp_path / "sparse.usda"))
    cams, _, _ = read_usd_camera(tmp_path / "sparse.usda")
    assert set(cams.camera_model) == {"OPENCV"}
    np.testing.assert_allclose(cams.distortion[0], [-0.1, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("fit, policy", [("horizontal", "adjustApertureHeight"), ("vertical", "adjustApertureWidth"),
                                         ("fill", "cropAperture"), ("overscan", "expandAperture")])
def test_usd_camera_carries_the_film_back_and_its_fit(tmp_path, fit, policy):
    # The vertical aperture was the image's share of the width (0.36 * 360 / 640), whatever the
    # back: a super35 back came out 24.89 x 14.0 mm, with no fit for a reader to conform by.
    from pxr import Usd, UsdGeom, UsdRender

    shot = parse_shot({"name": "sh010", "resolution": [640, 360], "frames": 2,
                       "lens": {"focal_mm": 35, "sensor_width_mm": "super35", "sensor_fit": fit},
                       "camera": {"position": [0, -3, 1.2], "look_at": [0, 0, 0.75]}}, "test")
    out = tmp_path / "cam.usda"
    export_shot(shot, out)
    stage = Usd.Stage.Open(str(out))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/sh010"))
    assert cam.GetHorizontalApertureAttr().Get() == pytest.approx(0.2489)
    assert cam.GetVerticalApertureAttr().Get() == pytest.approx(0.1867)
    assert tuple(cam.GetPrim().GetCustomDataByKey("splatfilm:sensor_mm")) == pytest.approx((24.89, 18.67))
    assert cam.GetPrim().GetCustomDataByKey("splatfilm:sensor_fit") == fit
    assert UsdRender.Settings(stage.GetPrimAtPath("/Render/Settings")).GetAspectRatioConformPolicyAttr().Get() == policy
    # Read back through the conform policy: the shot's own intrinsics (a 16:9 image on a 4:3
    # back: horizontal and fill span its width, vertical and overscan its height).
    cams, _, _ = read_usd_camera(out)
    np.testing.assert_allclose(cams.Ks[0], shot.lens.K(), rtol=1e-6)
    assert shot.lens.fit_axis == ("horizontal" if fit in ("horizontal", "fill") else "vertical")


def test_usd_camera_of_a_back_without_a_height_is_as_before(tmp_path):
    from pxr import Usd, UsdRender

    out = tmp_path / "cam.usda"
    export_shot(_shot(), out)
    stage = Usd.Stage.Open(str(out))
    assert not UsdRender.Settings(stage.GetPrimAtPath("/Render/Settings")).GetAspectRatioConformPolicyAttr() \
        .HasAuthoredValue()
    assert stage.GetPrimAtPath("/World/sh010").GetCustomDataByKey("splatfilm:sensor_fit") is None
