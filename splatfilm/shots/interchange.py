"""Shots to and from the files other tools speak.

- nerfstudio viewer `camera_path.json` (what `ns-render camera-path` renders), both ways;
- an animated USD camera (`.usda` text or `.usd` / `.usdc` binary; usd-core's `pxr`): a
  time-sampled transform per film frame, focal length and apertures in USD's units (tenths
  of a scene unit), f-stop and focus distance when the frames have depth of field, fps and
  frame range on the stage, image size on a RenderSettings prim; Blender, Houdini and Nuke
  import it; read back with `read_usd_camera` (`splatfilm.handoff.usd_world` puts every
  shot's camera into the film's world stage with `define_usd_camera`). A distorting lens
  (opencv, fisheye) is delivered as a matchmove camera: the pinhole of its intrinsics plus its
  distortion in OpenCV's terms (`usd_lens_data`), to render undistorted and redistort; a
  panorama has no USD camera (`usd_camera_problem`);
- nerfstudio `transforms.json` with one camera per frame, which any tool can render (an
  anamorphic lens's fl_x is fl_y / squeeze; a camera_path.json, square pixels only, holds it desqueezed).

Every export writes the shot's frames as they are (`Shot.cameras()`), so a render of the
exported file matches a render of the shot frame for frame.
"""

from __future__ import annotations

import math
import os
import re
from fractions import Fraction
from pathlib import Path as FsPath
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from splatfilm.scene.cameras import Cameras
from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import check_output_file
from splatfilm.io.usd_splats import export_usd_stage
from splatfilm.io.camera_files import read_camera_path_json, viewer_path, write_camera_path_json, write_transforms_json
from splatfilm.shots.keyframes import Keyframe, KeyframePath
from splatfilm.render.camera_models import check_lens
from splatfilm.shots.lens import DISTORTION_KEYS, FULL_FRAME_MM, LENS_MODELS, Lens, pixels_to_focal_mm
from splatfilm.shots.shot import Shot
from splatfilm.shots.timing import FIRST_FRAME, frame_times, parse_fps

if TYPE_CHECKING:
    from pxr import Usd, UsdGeom, UsdRender

PathLike = str | os.PathLike

# USD's camera focalLength and apertures are in tenths of a scene unit (the UsdGeomCamera
# schema; docs/CONVENTIONS.md): with metersPerUnit = m, one lens unit is 100 * m millimetres, so
# under metersPerUnit 1 a 35 mm lens is 0.35. Kept after checking the readers that matter:
# Blender's USD importer and exporter scale by 100 * metersPerUnit (usd_reader_camera.cc,
# usd_writer_camera.cc), and Omniverse RTX documents "on a meter stage, the same 25 mm focal
# length is authored as 0.25". A reader that takes the values as millimetres whatever the
# stage's units shows 0.35 mm on a 0.36 mm sensor: the same field of view, a wrong label; the
# camera's customData carries the millimetres for it.
_MM_PER_USD_LENS_UNIT = 100.0

# A lens's sensor_fit as UsdRender's aspectRatioConformPolicy, which says how an image whose
# aspect is not the apertures' is framed on them: keep the width (horizontal), the height
# (vertical), crop the back to the image (fill) or expand it to hold the back (overscan).
_CONFORM_POLICIES = {"horizontal": "adjustApertureHeight", "vertical": "adjustApertureWidth",
                     "fill": "cropAperture", "overscan": "expandAperture"}

# usd-core (26.11) has no lens distortion schema (UsdGeomCamera projects "perspective" or
# "orthographic" only; the camera working group's lens proposals are not in it), so a distorting
# lens rides in customData, as the millimetres do.
USD_LENS_KEY = "splatfilm:lens"
"""The camera customData key holding a distorting lens's model and coefficients (`usd_lens_data`)."""


# ---- export -----------------------------------------------------------------------------------


def export_format(path: PathLike) -> str:
    """"usd", "transforms" or "camera_path": what `export_shot` writes for this file name."""
    name = FsPath(path).name.lower()
    if name.endswith((".usda", ".usd", ".usdc")):
        return "usd"
    if name == "transforms.json":
        return "transforms"
    if name.endswith(".json"):
        return "camera_path"
    raise SplatfilmError(f"{path}: unknown export format (use .usda/.usd for USD, transforms.json for nerfstudio "
                         "dataset cameras, or another .json for a nerfstudio camera path)")


def export_shot(shot: Shot, path: PathLike, *, dataparser_transforms: PathLike | None = None,
                transforms_json: PathLike | None = None, depth_of_field: bool | None = None,
                shutter_deg: float | None = None) -> str:
    """Write `shot` to `path` in the format its name picks (`export_format`); returns the format.

    dataparser_transforms / transforms_json apply to a camera_path.json only: they put the
    poses into a nerfstudio run's normalised world (see `write_camera_path_json`).
    depth_of_field and shutter_deg (a film's motion-blur shutter in degrees) apply to USD
    (`define_usd_camera`).
    """
    kind = export_format(path)
    if kind != "camera_path" and (dataparser_transforms is not None or transforms_json is not None):
        raise SplatfilmError(f"{path}: dataparser transforms only apply to a camera_path.json export")
    check_output_file(path)
    if kind == "usd":
        write_usd_camera(path, shot, depth_of_field, shutter_deg)
    elif kind == "transforms":
        write_shot_transforms_json(path, shot)
    else:
        write_shot_camera_path_json(path, shot, dataparser_transforms=dataparser_transforms,
                                    transforms_json=transforms_json)
    return kind


def _shot_info(shot: Shot) -> dict:
    return {"shot": shot.name, "fps": str(shot.fps), "first_frame": shot.first_frame,
            "frame_count": shot.frame_count, "sensor_width_mm": shot.lens.sensor_width_mm,
            **({} if shot.lens.squeeze == 1 else {"squeeze": shot.lens.squeeze})}


def write_shot_transforms_json(path: PathLike, shot: Shot) -> None:
    """The shot's frames as a nerfstudio transforms.json (`images/shot_010.1001.png`, ...)."""
    cams = shot.cameras()
    cams.names = [f"images/{n}" for n in cams.names]
    write_transforms_json(path, cams, extra={"splatfilm": _shot_info(shot)})


# How close nerfstudio's viewer must play a shot's frames from the keys `viewer_key_times` picks:
# 1 mm in the shot's world (metres), 0.01 degrees of turn (a quarter pixel across 1920 pixels of
# a 28 mm lens) and of field of view.
VIEWER_POSITION_TOLERANCE_M = 1e-3
VIEWER_ANGLE_TOLERANCE_DEG = 0.01
# Frames between keys tried, longest first, where a shot's own keys do not play back in the viewer.
VIEWER_KEY_STRIDES = (24, 16, 12, 8, 6, 4, 3, 2)


def _viewer_keys(shot: Shot, times: list[float]) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    """(camera-to-world [K,4,4] OpenGL, vertical fov [K] degrees, transitions [K] seconds) of
    the shot's cameras at key `times`, as camera_path.json's `keyframes` hold them."""
    cams = shot.path.sample(np.array(times)).to_cameras(shot.lens)
    fovs = np.degrees(2 * np.arctan(cams.heights / 2 / cams.fy))
    transitions: list[float | None] = [None] + [b - a for a, b in zip(times[:-1], times[1:])]
    if shot.loop:
        transitions[0] = float(shot.duration) - times[-1]
    return cams.to_c2w_opengl(), fovs, transitions


def viewer_errors(shot: Shot, key_times: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How far nerfstudio's viewer, given the shot's cameras at `key_times` (seconds) as its
    keyframes (`io.camera_files.viewer_path`; a `loop` shot played as a loop), plays each frame
    from the shot's own: (position [F] metres, turn [F] degrees, vertical field of view [F]
    degrees)."""
    c2w, fovs, transitions = _viewer_keys(shot, key_times)
    got, got_fov = viewer_path(c2w, fovs, [0.0 if t is None else t for t in transitions], shot.times, loop=shot.loop)
    want = shot.cameras()
    want_c2w = want.to_c2w_opengl()
    want_fov = np.degrees(2 * np.arctan(want.heights / 2 / want.fy))
    position = np.linalg.norm(got[:, :3, 3] - want_c2w[:, :3, 3], axis=1)
    relative = np.einsum("fji,fjk->fik", got[:, :3, :3], want_c2w[:, :3, :3])
    turn = np.degrees(np.arccos(np.clip((np.trace(relative, axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)))
    return position, turn, np.abs(got_fov - want_fov)


def viewer_key_times(shot: Shot) -> list[float]:
    """Key times (seconds) for a shot's camera_path.json `keyframes`, from which nerfstudio's
    viewer, which rebuilds its path from those keys alone (`viewer_path`), plays every frame
    within `VIEWER_POSITION_TOLERANCE_M` and `VIEWER_ANGLE_TOLERANCE_DEG` (turn and field of
    view) of the shot's own.

    The shot's own keys (its keyframes; where its moves start and stop), the start and the
    shot's end (frame_count / fps, the time after the last frame: the viewer renders seconds
    x fps frames from 0, so keys spanning the shot's duration give back its frame count; a
    loop closes there instead) are kept alone where they already reproduce the shot. Else
    frames between them become keys too, evenly `stride` frames apart (the viewer's spline
    steps one key per unit, so even spacing keeps its speed even), the longest of
    `VIEWER_KEY_STRIDES` that reproduces the shot, else every frame, which the viewer passes
    exactly."""
    end = float(shot.duration)
    own = {t for t in shot.key_times() if 0.0 <= t < end or (t <= end and not shot.loop)}
    base = sorted(own | ({0.0} if shot.loop else {0.0, end}))
    bounds = base + ([end] if shot.loop else [])
    frames = shot.times

    def keys(stride: int) -> list[float]:
        step = stride / float(shot.fps)
        out = set(base)
        for a, b in zip(bounds[:-1], bounds[1:]):
            pieces = math.ceil((b - a) / step - 1e-9)
            inside = frames[(frames > a + 1e-9) & (frames < b - 1e-9)]
            for j in range(1, pieces):
                if len(inside):
                    out.add(float(inside[np.argmin(np.abs(inside - (a + j * (b - a) / pieces)))]))
        return sorted(out)

    def plays(times: list[float]) -> bool:
        position, turn, fov = viewer_errors(shot, times)
        return bool(np.all(position <= VIEWER_POSITION_TOLERANCE_M) and np.all(turn <= VIEWER_ANGLE_TOLERANCE_DEG)
                    and np.all(fov <= VIEWER_ANGLE_TOLERANCE_DEG))

    if plays(base):
        return base
    # Errors grow with the stride, though not strictly; the viewer's natural ends (zero
    # curvature at the first and last key) keep strides from reproducing a move that is
    # still turning at an end (a turntable lags a fifth of a degree near its ends at stride 2).
    for stride in VIEWER_KEY_STRIDES:
        if stride < shot.frame_count and plays(times := keys(stride)):
            return times
    return keys(1)


def write_shot_camera_path_json(path: PathLike, shot: Shot, *, dataparser_transforms: PathLike | None = None,
                                transforms_json: PathLike | None = None) -> None:
    """The shot as a nerfstudio viewer camera_path.json: every frame in `camera_path` (what
    ns-render renders), and in `keyframes`, with their transition times, keys from which the
    viewer's "Load Path" plays the same move (`viewer_key_times`) for editing there. A camera
    path holds one square-pixel field of view (nerfstudio makes fx = fy from `fov` and
    `render_height`), so an anamorphic shot is written desqueezed: `render_width` width x
    squeeze (rounded to whole pixels), `fov` the vertical field (the lens's), `aspect` the
    picture's as shown, and `splatfilm_note` says so; ns-render then renders the picture a
    player shows, not the squeezed plate."""
    key_times = viewer_key_times(shot)
    cameras, keys = shot.cameras(), shot.path.sample(np.array(key_times)).to_cameras(shot.lens)
    note = None
    if shot.lens.squeeze != 1:
        cameras, keys = (_desqueezed(c, shot.lens.squeeze) for c in (cameras, keys))
        note = (f"shot {shot.name}: anamorphic lens (squeeze {shot.lens.squeeze:g}) written desqueezed, "
                f"{int(cameras.widths[0])} x {shot.lens.height} square pixels (the plate is "
                f"{shot.lens.width} x {shot.lens.height}, each pixel {shot.lens.squeeze:g} wide)")
    transitions = _viewer_keys(shot, key_times)[2]
    write_camera_path_json(
        path, cameras, float(shot.duration), keyframes=keys, transitions=transitions,
        fps=float(shot.fps), is_cycle=shot.loop, dataparser_transforms=dataparser_transforms,
        transforms_json=transforms_json, note=note,
    )


def _desqueezed(cameras: Cameras, squeeze: float) -> Cameras:
    """Anamorphic `cameras` as square-pixel ones of the picture shown: width x squeeze
    (whole pixels) by height, fx = fy, the principal point the new centre."""
    widths = np.round(cameras.widths * squeeze)
    Ks = cameras.Ks.copy()
    Ks[:, 0, 0] = Ks[:, 1, 1]
    Ks[:, 0, 2] = widths / 2
    return Cameras(cameras.viewmats, Ks, widths, cameras.heights, cameras.distortion, cameras.camera_model,
                   cameras.names)


def usd_name(name: str) -> str:
    """A valid USD prim name from a shot name (letters, digits, _; not starting with a digit)."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


def usd_camera_problem(lens: Lens) -> str | None:
    """Why a USD camera cannot carry `lens`, or None when it can (pinhole, opencv, fisheye)."""
    if lens.model == "equirectangular":
        return ("a USD camera has no spherical projection (UsdGeom.Camera is perspective or orthographic), so an "
                "equirectangular lens has none (export the shot as transforms.json)")
    return None


def _opencv_K(lens: Lens, focal_mm) -> np.ndarray:
    """[...,3,3] the lens's intrinsics in pixels with OpenCV's pixel centres (integers: the
    top-left pixel's centre is (0, 0)), i.e. splatfilm's principal point less half a pixel."""
    K = lens.K(np.asarray(focal_mm, dtype=np.float64))
    K[..., 0, 2] -= 0.5
    K[..., 1, 2] -= 0.5
    return K


def usd_lens_data(lens: Lens, focal_mm: ArrayLike) -> dict | None:
    """The customData (`USD_LENS_KEY`) that lets a compositor redistort what the pinhole USD
    camera renders, or None for a pinhole lens. focal_mm: the focal length of each frame in mm
    [F] (or one number).

    model "opencv" or "fisheye" (the lens's); camera_model its name in COLMAP / nerfstudio
    (OPENCV, OPENCV_FISHEYE); the named coefficients k1 k2 k3 k4 p1 p2 the model has
    (docs/CONVENTIONS.md, "Camera models"); distCoeffs in OpenCV's order for `opencv_function`
    (cv2.projectPoints: k1 k2 p1 p2 k3; cv2.fisheye.projectPoints: k1 k2 k3 k4), left out with
    a `note` when an opencv lens has nerfstudio's r^8 term k4, which OpenCV has no place for;
    K the intrinsics in pixels in OpenCV's pixel convention (a Matrix3d, or for a zoom one per
    frame as focalLength's time samples) and image_size (width, height). The distortion acts
    on the pinhole camera's normalised coordinates (x/z, y/z; a fisheye on their angle), so
    cv2's projection of a camera-space point with K and distCoeffs is where the shot's frames
    show it, half a pixel less than splatfilm's pixel-edge coordinates."""
    from pxr import Gf, Vt

    if lens.model == "pinhole" or usd_camera_problem(lens):
        return None
    k1, k2, k3, k4, p1, p2 = lens.distortion
    focal = np.atleast_1d(np.asarray(focal_mm, dtype=np.float64))
    Ks = [Gf.Matrix3d(*K.ravel().tolist()) for K in _opencv_K(lens, focal)]
    data = {"model": lens.model, "camera_model": lens.camera_model,
            "image_size": Gf.Vec2i(int(lens.width), int(lens.height)),
            "K": Ks[0] if np.all(focal == focal[0]) else Vt.Matrix3dArray(Ks),
            "pixel_centres": "integers (OpenCV): splatfilm's pixel-edge u, v are 0.5 more"}
    if lens.model == "opencv":
        data |= {"k1": k1, "k2": k2, "k3": k3, "k4": k4, "p1": p1, "p2": p2,
                 "opencv_function": "cv2.projectPoints"}
        if k4 == 0:
            data["distCoeffs"] = Vt.DoubleArray([k1, k2, p1, p2, k3])
        else:
            data["note"] = ("k4 is nerfstudio's r^8 radial term: OpenCV has none (its k4 divides), so there are "
                            "no distCoeffs; R = 1 + k1 r^2 + k2 r^4 + k3 r^6 + k4 r^8")
    else:
        data |= {"k1": k1, "k2": k2, "k3": k3, "k4": k4, "opencv_function": "cv2.fisheye.projectPoints",
                 "distCoeffs": Vt.DoubleArray([k1, k2, k3, k4])}
    return data


def define_usd_camera(stage: Usd.Stage, prim_path: str, shot: Shot, time_codes: ArrayLike | None = None,
                      depth_of_field: bool | None = None, shutter_deg: float | None = None) -> UsdGeom.Camera:
    """Define `shot` as an animated UsdGeom.Camera at `prim_path` on `stage`; returns it.

    time_codes: the time code of each of the shot's frames (default: its frame numbers).
    Transform: `xformOp:transform` per frame, camera-to-world in USD's camera axes (-z
    forward, +y up; row-vector matrices). Lens, in the units of the schema (docs/CONVENTIONS.md,
    "USD cameras"): focalLength and the apertures in tenths of a scene unit (with
    metersPerUnit 1, 35 mm is 0.35: what Blender's and Omniverse's readers turn back into
    35 mm), focalLength per frame when it changes; the principal point as the aperture
    offsets (the image centre: 0); clippingRange in metres. An anamorphic lens's horizontal
    aperture (and offset) is squeeze x the back's width, the desqueezed picture's, so
    focalLength over it is the field the lens sees; its render settings' pixelAspectRatio is
    the squeeze (`define_usd_render_settings`). A distorting lens (opencv,
    fisheye) gets the pinhole camera of the same intrinsics, which renders the undistorted
    frames a compositor redistorts with customData `splatfilm:lens` (`usd_lens_data`); an
    equirectangular lens raises SplatfilmError (`usd_camera_problem`).
    depth_of_field: True writes the lens's fStop and focusDistance (metres, per frame when it
    changes), which DCCs take as "render with depth of field"; False leaves both unauthored, so
    readers see the schema's fStop 0 (everything sharp, as the frames were rendered; Blender
    turns depth of field on for any authored fStop, even 0). None: True when the lens has an
    f-stop. shutter_deg: the film's motion-blur shutter, written as shutter:open/close in
    frames around each frame (a centred shutter, as the renderer samples it).
    customData: `splatfilm:focal_mm` the focal length in mm (for a zoom, a list with one per
    frame, as focalLength's time samples), `splatfilm:sensor_mm` the sensor (width, height) in
    mm, `splatfilm:lens_f_stop` the lens's f-stop where it has one, `splatfilm:squeeze` an
    anamorphic lens's squeeze."""
    from pxr import Gf, Usd, UsdGeom, Vt

    lens = shot.lens
    problem = usd_camera_problem(lens)
    if problem:
        raise SplatfilmError(f"shot {shot.name}: {problem}")
    sample = shot.sample()
    codes = [float(f) for f in (shot.frame_numbers if time_codes is None else time_codes)]
    c2w = sample.c2w_opencv() @ np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV -> USD camera axes
    cam = UsdGeom.Camera.Define(stage, prim_path)
    op = cam.AddTransformOp()
    for code, m in zip(codes, c2w):
        op.Set(Gf.Matrix4d(m.T.tolist()), Usd.TimeCode(code))  # USD matrices act on row vectors
    cam.CreateProjectionAttr(UsdGeom.Tokens.perspective)

    def lens_units(mm):
        return np.asarray(mm, dtype=np.float64) / _MM_PER_USD_LENS_UNIT

    focal = cam.CreateFocalLengthAttr()
    zooms = not np.all(sample.focal_mm == sample.focal_mm[0])
    if not zooms:
        focal.Set(float(lens_units(sample.focal_mm[0])))
    else:
        for code, f in zip(codes, lens_units(sample.focal_mm)):
            focal.Set(float(f), Usd.TimeCode(code))
    # The apertures are the film back; the image's aspect is conformed to it as the render
    # settings say (`usd_conform_policy`, authored there when the back has its own height).
    # An anamorphic lens sees squeeze times the back's width: USD's apertures are the
    # desqueezed picture's (its image aspect is resolution x pixelAspectRatio), as Maya's
    # film back times its lens squeeze ratio.
    h_aperture_mm = lens.sensor_width_mm * lens.squeeze
    cam.CreateHorizontalApertureAttr(float(lens_units(h_aperture_mm)))
    cam.CreateVerticalApertureAttr(float(lens_units(lens.back_height_mm)))
    # The offsets shift the film back off the optical axis (same units as the apertures; +y
    # up): the axis, the principal point, lands `offset / aperture` of the image the other
    # way from the centre. Authored so a matchmove reader need not assume the default.
    K = lens.K()
    cam.CreateHorizontalApertureOffsetAttr(float(lens_units((lens.width / 2 - K[0, 2]) / lens.width
                                                            * h_aperture_mm)))
    cam.CreateVerticalApertureOffsetAttr(float(lens_units((K[1, 2] - lens.height / 2) / lens.height
                                                          * lens.back_height_mm)))
    cam.CreateClippingRangeAttr(Gf.Vec2f(lens.near, lens.far))
    if depth_of_field is None:
        depth_of_field = lens.f_stop is not None
    if depth_of_field and lens.f_stop is not None:
        cam.CreateFStopAttr(float(lens.f_stop))
        focus = sample.focus_distance
        if not np.all(np.isnan(focus)):
            attr = cam.CreateFocusDistanceAttr()
            if np.all(focus == focus[0]):
                attr.Set(float(focus[0]))
            else:
                for code, d in zip(codes, focus):
                    attr.Set(float(d), Usd.TimeCode(code))
    if shutter_deg:
        cam.CreateShutterOpenAttr(-shutter_deg / 720.0)
        cam.CreateShutterCloseAttr(shutter_deg / 720.0)
    # The lens in millimetres as well, for people reading the file and tools that take the
    # schema's values as millimetres whatever metersPerUnit says. customData cannot be
    # time-sampled: a zoom's millimetres are a list, one per focalLength time sample.
    cam.GetPrim().SetCustomDataByKey("splatfilm:focal_mm", Vt.DoubleArray([float(f) for f in sample.focal_mm])
                                     if zooms else float(sample.focal_mm[0]))
    cam.GetPrim().SetCustomDataByKey("splatfilm:sensor_mm", Gf.Vec2d(lens.sensor_width_mm, lens.back_height_mm))
    if lens.sensor_height_mm is not None:
        cam.GetPrim().SetCustomDataByKey("splatfilm:sensor_fit", lens.sensor_fit)
    if lens.f_stop is not None:
        cam.GetPrim().SetCustomDataByKey("splatfilm:lens_f_stop", float(lens.f_stop))
    if lens.squeeze != 1:
        cam.GetPrim().SetCustomDataByKey("splatfilm:squeeze", float(lens.squeeze))
    distortion = usd_lens_data(lens, sample.focal_mm)
    if distortion is not None:
        cam.GetPrim().SetCustomDataByKey(USD_LENS_KEY, distortion)
    return cam


def usd_conform_policy(lens: Lens) -> str | None:
    """UsdRender's aspectRatioConformPolicy that frames `lens`'s image on its film back (the
    camera's apertures) as its `sensor_fit` does, or None for a back of the image's own aspect
    (nothing to conform; left unauthored, as before backs had heights)."""
    if lens.sensor_height_mm is None:
        return None
    return _CONFORM_POLICIES[lens.sensor_fit]


def define_usd_render_settings(stage: Usd.Stage, prim_path: str, camera: UsdGeom.Camera, width: int,
                               height: int, conform: str | None = None,
                               pixel_aspect: float = 1.0) -> UsdRender.Settings:
    """Define UsdRender settings at `prim_path` (under /Render) rendering `camera` (a
    UsdGeom.Camera) at `width` x `height` pixels, each `pixel_aspect` (pixelAspectRatio: an
    anamorphic lens's squeeze; 1, square, by default) as wide as high; returns them. Their
    parent is made a Scope, USD's typed container (an untyped `def` is what Define leaves
    otherwise). `conform`: the aspectRatioConformPolicy to author (`usd_conform_policy`), or
    None for none."""
    from pxr import Gf, Sdf, UsdGeom, UsdRender

    parent = Sdf.Path(prim_path).GetParentPath()
    found = stage.GetPrimAtPath(parent)
    if not found or not found.GetTypeName():
        UsdGeom.Scope.Define(stage, parent)
    settings = UsdRender.Settings.Define(stage, prim_path)
    settings.CreateResolutionAttr(Gf.Vec2i(int(width), int(height)))
    settings.CreatePixelAspectRatioAttr(float(pixel_aspect))
    if conform is not None:
        settings.CreateAspectRatioConformPolicyAttr(conform)
    settings.CreateCameraRel().SetTargets([camera.GetPath()])
    return settings


def write_usd_camera(path: PathLike, shot: Shot, depth_of_field: bool | None = None,
                     shutter_deg: float | None = None) -> None:
    """The shot as an animated USD camera at /World/<name> (atomically).

    Stage: Z up, metersPerUnit 1, timeCodesPerSecond = framesPerSecond = fps, start/end time
    codes = the film frame range. The camera is `define_usd_camera`'s (depth_of_field and
    shutter_deg as there). /Render/Settings (UsdRender, in a Scope) holds the image size and
    pixel aspect (the lens's squeeze).
    """
    try:
        from pxr import Usd, UsdGeom
    except ImportError as e:
        raise SplatfilmError(f"USD export needs usd-core ({e}); pip install usd-core") from None

    path = FsPath(path)
    lens = shot.lens
    problem = usd_camera_problem(lens)
    if problem:
        raise SplatfilmError(f"{path}: shot {shot.name}: {problem}")
    frames = [int(f) for f in shot.frame_numbers]
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    fps = float(shot.fps)
    stage.SetTimeCodesPerSecond(fps)
    stage.SetFramesPerSecond(fps)
    stage.SetStartTimeCode(frames[0])
    stage.SetEndTimeCode(frames[-1])
    stage.GetRootLayer().customLayerData = {"splatfilm": {k: str(v) for k, v in _shot_info(shot).items()}}
    world = UsdGeom.Xform.Define(stage, "/World")
    stage.SetDefaultPrim(world.GetPrim())
    cam = define_usd_camera(stage, f"/World/{usd_name(shot.name)}", shot, depth_of_field=depth_of_field,
                            shutter_deg=shutter_deg)
    define_usd_render_settings(stage, "/Render/Settings", cam, lens.width, lens.height, usd_conform_policy(lens),
                               lens.squeeze)
    export_usd_stage(stage, path)


# ---- import -------------------------------------------------------------------------------------


def _usd_lens_model(data, path: PathLike) -> tuple[str, list[float]]:
    """(camera model, distortion [6] in DISTORTION_KEYS order) of a USD camera's customData
    `USD_LENS_KEY` (`usd_lens_data`; None or empty: a pinhole). Coefficients it leaves out are
    0; anything else that is not such a lens is a one-line SplatfilmError naming `path`, as
    the camera would otherwise render with a lens the file does not describe."""
    if not data:
        return "PINHOLE", [0.0] * len(DISTORTION_KEYS)
    what = f"{path}: customData {USD_LENS_KEY}"
    if not isinstance(data, dict) or data.get("model") not in ("opencv", "fisheye"):
        got = f"model {data.get('model')!r}" if isinstance(data, dict) else f"a {type(data).__name__}"
        raise SplatfilmError(f"{what} is not a distorting lens (a dictionary whose model is opencv or fisheye), "
                             f"got {got}")
    distortion = []
    for k in DISTORTION_KEYS:
        v = data.get(k, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SplatfilmError(f"{what}: {k} must be a finite number, got {v!r}")
        distortion.append(float(v))
    model = LENS_MODELS[data["model"]]
    try:
        check_lens(model, distortion)
    except SplatfilmError as e:
        raise SplatfilmError(f"{what}: {e}") from None
    return model, distortion


def _conform_apertures(hap: float, vap: float, aspect: float, policy: str) -> tuple[float, float]:
    """The apertures (any one unit) an image of `aspect` (width / height) covers on a film back
    of `hap` x `vap`, as UsdRender's aspectRatioConformPolicy `policy` frames it. A back within
    1e-6 of the image's aspect is returned as it is."""
    if abs(hap / vap - aspect) <= 1e-6 * aspect:
        return hap, vap
    back_wider = hap / vap > aspect
    keep_width = {"adjustApertureHeight": True, "adjustApertureWidth": False, "cropAperture": not back_wider,
                  "expandAperture": back_wider}.get(policy)
    if keep_width is None:  # adjustPixelAspectRatio: splatfilm's pixels are square
        raise SplatfilmError(f"aspectRatioConformPolicy {policy!r}: only square pixels are read")
    return (hap, hap / aspect) if keep_width else (vap * aspect, vap)


def read_usd_camera(path: PathLike, camera: str | None = None, width: int | None = None,
                    height: int | None = None) -> tuple[Cameras, list[int], Fraction]:
    """(cameras per time sample, their frame numbers, the stage's fps) of a USD camera.

    camera: the prim path (default: the first UsdGeom.Camera on the stage). The image size
    comes from the stage's UsdRender settings unless `width` and `height` are given. Poses
    are converted to metres and a Z-up world (a Y-up stage is turned Z-up); intrinsics from
    focalLength and the apertures (tenths of a scene unit), the principal point from the
    aperture offsets, the apertures read as the picture the resolution shows at the settings'
    pixelAspectRatio (an anamorphic plate's fx = fy / pixelAspectRatio); a camera splatfilm
    wrote for a distorting lens (customData
    `splatfilm:lens`) comes back with that lens's camera model and distortion.
    """
    try:
        from pxr import Usd, UsdGeom, UsdRender
    except ImportError as e:
        raise SplatfilmError(f"USD import needs usd-core ({e})") from None
    stage = Usd.Stage.Open(str(path)) if FsPath(path).exists() else None
    if stage is None:
        raise SplatfilmError(f"{path}: cannot open as a USD stage")
    prims = [stage.GetPrimAtPath(camera)] if camera else [p for p in stage.Traverse() if p.IsA(UsdGeom.Camera)]
    if not prims or not prims[0] or not prims[0].IsA(UsdGeom.Camera):
        raise SplatfilmError(f"{path}: no camera {camera or ''} on the stage".replace("  ", " "))
    cam = UsdGeom.Camera(prims[0])
    conform = "expandAperture"  # UsdRender's default
    pixel_aspect = 1.0
    # The render settings that render this camera (a world stage has one a shot), else the first.
    found = [UsdRender.Settings(p) for p in stage.Traverse() if p.IsA(UsdRender.Settings)]
    settings = next((s for s in found if cam.GetPath() in s.GetCameraRel().GetTargets()), found[0] if found else None)
    if settings is not None and settings.GetAspectRatioConformPolicyAttr().HasAuthoredValue():
        conform = str(settings.GetAspectRatioConformPolicyAttr().Get())
    if settings is not None and settings.GetPixelAspectRatioAttr().HasAuthoredValue():
        pixel_aspect = float(settings.GetPixelAspectRatioAttr().Get())
        if not (math.isfinite(pixel_aspect) and pixel_aspect > 0):
            raise SplatfilmError(f"{path}: pixelAspectRatio must be a finite number > 0, got {pixel_aspect}")
    if width is None or height is None:
        if settings is None:
            raise SplatfilmError(f"{path}: no UsdRender settings with a resolution; give width and height")
        res = settings.GetResolutionAttr().Get()
        width, height = int(res[0]), int(res[1])
    mpu = UsdGeom.GetStageMetersPerUnit(stage)
    times = sorted(set(cam.GetPrim().GetAttribute("xformOp:transform").GetTimeSamples()) |
                   set(cam.GetFocalLengthAttr().GetTimeSamples()))
    if not times:
        times = [stage.GetStartTimeCode()]
    up_to_z = np.eye(4)
    if UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y:
        up_to_z[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    c2ws, Ks = [], []
    for t in times:
        tc = Usd.TimeCode(t)
        m = up_to_z @ np.array(cam.ComputeLocalToWorldTransform(tc), dtype=np.float64).T
        m[:3, 3] *= mpu
        # Remove any scale the transform carries: a camera pose is rigid.
        m[:3, :3] /= np.linalg.norm(m[:3, :3], axis=0, keepdims=True)
        c2ws.append(m)
        focal = cam.GetFocalLengthAttr().Get(tc)
        hap, vap = cam.GetHorizontalApertureAttr().Get(tc), cam.GetVerticalApertureAttr().Get(tc)
        hoff, voff = cam.GetHorizontalApertureOffsetAttr().Get(tc), cam.GetVerticalApertureOffsetAttr().Get(tc)
        # The image's aspect is the resolution's at its pixel aspect (UsdRender's rule); the
        # horizontal aperture then spans the width's pixels, each pixel_aspect wide.
        hap, vap = _conform_apertures(hap, vap, width * pixel_aspect / height, conform)
        fx, fy = focal / hap * width, focal / vap * height
        cx, cy = width * (0.5 - hoff / hap), height * (0.5 + voff / vap)  # as in define_usd_camera
        Ks.append([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    model, distortion = _usd_lens_model(cam.GetPrim().GetCustomDataByKey(USD_LENS_KEY), path)
    cams = Cameras.from_c2w_opengl(np.stack(c2ws), np.array(Ks), width, height,
                                   distortion=np.array(distortion), camera_model=model)
    fps = parse_fps(stage.GetTimeCodesPerSecond())
    return cams, [int(round(t)) for t in times], fps


def shot_from_cameras(cameras: Cameras, fps: Fraction | float | str, name: str = "imported",
                      first_frame: int = FIRST_FRAME,
                      sensor_width_mm: float = FULL_FRAME_MM) -> Shot:
    """A shot whose frames are exactly `cameras` (one per frame, in order, at `fps`).

    The path keys every frame (Catmull-Rom in position and focal length, the quaternion
    spline in orientation), so frame i is camera i and times between frames are smooth.
    Cameras must share one image size, one pixel aspect (fy / fx: an anamorphic lens's squeeze,
    whose focal length is fy's) and a centred principal point (SplatfilmError otherwise, as for
    a bad `fps`).
    """
    fps = parse_fps(fps)
    w, h = int(cameras.widths[0]), int(cameras.heights[0])
    if np.any(cameras.widths != w) or np.any(cameras.heights != h):
        raise SplatfilmError("a shot's cameras must share one image size")
    lens = Lens.from_K(cameras.Ks[0], w, h, sensor_width_mm)
    for i in range(len(cameras)):
        Lens.from_K(cameras.Ks[i], w, h, sensor_width_mm, squeeze=lens.squeeze)  # one squeeze, centred
    focal = pixels_to_focal_mm(cameras.fx if lens.squeeze == 1 else cameras.fy, w, sensor_width_mm)
    c2w = cameras.to_c2w_opencv()
    times = frame_times(len(cameras), fps)
    keys = [Keyframe(time=t, position=m[:3, 3], rotation=m[:3, :3], focal_mm=float(f))
            for t, m, f in zip(times, c2w, focal)]
    return Shot(name=name, path=KeyframePath(keys), lens=lens, fps=fps, frame_count=len(cameras),
                first_frame=first_frame)


def import_camera_path_json(path: PathLike, name: str | None = None, *, fps: Fraction | float | str | None = None,
                            dataparser_transforms: PathLike | None = None, transforms_json: PathLike | None = None,
                            first_frame: int = FIRST_FRAME) -> Shot:
    """A shot from a nerfstudio viewer camera_path.json: its `camera_path` cameras, one per frame,
    at the rate nerfstudio renders them (len / seconds; else the file's fps; else `fps`, default 24).
    The dataparser arguments are `read_camera_path_json`'s."""
    cp = read_camera_path_json(path, dataparser_transforms, transforms_json)
    rate = cp.fps or (Fraction(repr(cp.file_fps)) if cp.file_fps else None) or fps or 24
    return shot_from_cameras(cp.cameras, rate, name or usd_name(FsPath(path).stem), first_frame)
