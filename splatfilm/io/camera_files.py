"""Readers for camera files: nerfstudio transforms.json and camera_path.json, COLMAP models.

Every reader returns cameras in splatfilm's convention (`Cameras`: OpenCV axes, world-to-camera)
in the world frame the file itself is written in, and raises SplatfilmError with a one-line
message naming the file and the problem for bad input.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from splatfilm.scene.cameras import Cameras, centred_K, focal_px_for_fov
from splatfilm.scene.transforms import Similarity
from splatfilm.errors import SplatfilmError
from splatfilm.io.inputs import read_text
from splatfilm.io.colmap_library import load_pycolmap

PathLike = str | Path

_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")

# transforms.json `camera_model` values (nerfstudio's CAMERA_MODEL_TO_TYPE keys that splatfilm
# renders) -> the model a `Cameras` holds.
_NERFSTUDIO_MODELS = {
    "SIMPLE_PINHOLE": "PINHOLE",
    "PINHOLE": "PINHOLE",
    "SIMPLE_RADIAL": "OPENCV",
    "RADIAL": "OPENCV",
    "OPENCV": "OPENCV",
    "OPENCV_FISHEYE": "OPENCV_FISHEYE",
    "EQUIRECTANGULAR": "EQUIRECTANGULAR",
}

# camera_path.json `camera_type` values -> our model (nerfstudio's viewer writes these three).
_CAMERA_PATH_TYPES = {"perspective": "PINHOLE", "fisheye": "OPENCV_FISHEYE", "equirectangular": "EQUIRECTANGULAR"}
_CAMERA_PATH_TYPE_OF = {v: k for k, v in _CAMERA_PATH_TYPES.items()}

# nerfstudio's equirectangular focal length f_ns spans pi radians (longitude = pi (u - cx) / f_ns,
# so f_ns = width / 2 for a full panorama); ours is pixels per radian: f = f_ns / pi.
_EQUIRECT_NS_SCALE = math.pi

# nerfstudio's colmap_to_json uses this when transforms.json predates `applied_transform`
# and a colmap/sparse/0 folder sits beside it.
_LEGACY_APPLIED_TRANSFORM = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, -1, 0]]


@dataclass(eq=False)
class ViewerCameraPath:
    """What a nerfstudio viewer camera_path.json holds: the cameras and their timing.

    cameras:  one per rendered frame, in order.
    seconds:  the path's duration in seconds (`seconds` in the file), None if absent.
    file_fps: the `fps` the viewer wrote, None if absent. nerfstudio's renderer ignores it and
              plays len(cameras) / seconds frames a second (`fps`).
    """

    cameras: Cameras
    seconds: float | None = None
    file_fps: float | None = None

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def fps(self) -> Fraction | None:
        """Frames a second as nerfstudio renders the path: len(cameras) / seconds, an exact fraction.

        `seconds` is read as the decimal the file wrote (0.5005 -> 1001/2000), so 12 frames
        over 0.5005 s give 24000/1001.
        """
        if self.seconds is None:
            return None
        return Fraction(len(self.cameras)) / Fraction(repr(self.seconds)).limit_denominator(10**9)


# ---- helpers -----------------------------------------------------------------------------


def _fail(path: PathLike, message: str) -> NoReturn:
    raise SplatfilmError(f"{path}: {message}")


def _load_json(path: PathLike) -> dict[str, Any]:
    """The top-level JSON object of `path`, or a one-line SplatfilmError."""
    p = Path(path)
    if not p.exists():
        _fail(path, "no such file")
    if p.is_dir():
        _fail(path, "is a folder, expected a JSON file")
    text = read_text(path, "JSON file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        _fail(path, f"invalid JSON ({e.msg} at line {e.lineno} column {e.colno})")
    if not isinstance(data, dict):
        _fail(path, f"expected a JSON object at the top level, got {type(data).__name__}")
    return data


def _numbers(value: Any) -> np.ndarray | None:
    """float64 array of nested JSON lists of numbers; None if ragged or anything is not a number.

    Strings ("1.0") and booleans are refused, as `_number` refuses them, rather than converted.
    """
    try:
        a = np.array(value)
    except (TypeError, ValueError):  # ragged nesting
        return None
    return a.astype(np.float64) if a.dtype.kind in "iuf" else None


def _matrix(value: Any, path: PathLike, what: str, rows: tuple[int, ...] = (3, 4)) -> np.ndarray:
    """A 4x4 float64 matrix from nested lists with `rows` x 4 entries (a 3x4 gets [0,0,0,1])."""
    m = _numbers(value)
    if m is None:
        _fail(path, f"{what} is not a matrix of numbers")
    if m.ndim != 2 or m.shape[1] != 4 or m.shape[0] not in rows:
        want = " or ".join(f"{r}x4" for r in rows)
        _fail(path, f"{what} has shape {'x'.join(map(str, m.shape)) or 'scalar'}, expected {want}")
    if not np.all(np.isfinite(m)):
        _fail(path, f"{what} has non-finite values (NaN or inf)")
    if m.shape[0] == 3:
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    return m


def _number(value: Any, path: PathLike, what: str, positive: bool = False, whole: bool = False) -> float:
    """A finite float from a JSON value (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(path, f"{what} is {value!r}, expected a number")
    x = float(value)
    if not math.isfinite(x):
        _fail(path, f"{what} is {x}, expected a finite number")
    if positive and not x > 0:
        _fail(path, f"{what} is {value}, expected a number > 0")
    if whole and x != int(x):
        _fail(path, f"{what} is {value}, expected a whole number")
    return x


def _build(path: PathLike, build) -> Cameras:
    """Run a Cameras constructor, putting the file name on any validation error."""
    try:
        return build()
    except SplatfilmError as e:
        _fail(path, str(e))


# ---- nerfstudio transforms.json ------------------------------------------------------------


# transforms.json keys naming a dataset's split, as nerfstudio's dataparser reads them.
SPLIT_KEYS = ("train_filenames", "val_filenames", "test_filenames")


@dataclass
class TransformsJson:
    """What a capture's `transforms.json` names besides its cameras: per frame its `mask_path`
    (relative to the file's folder, None where the frame has none; nerfstudio's meaning: black
    pixels are left out of the loss), whether any frame has a `depth_file_path`, the file's
    `ply_file_path` (its point cloud, None where it has none) and its split: `splits` maps each
    of SPLIT_KEYS the file has to its list of file paths (as written)."""

    cameras: Cameras
    mask_paths: list[str | None]
    ply_file_path: str | None
    has_depth: bool = False
    splits: dict[str, list[str]] = field(default_factory=dict)


def read_transforms_json(path: PathLike) -> Cameras:
    """Cameras of a nerfstudio / instant-ngp `transforms.json` (`read_transforms_json_capture`)."""
    return read_transforms_json_capture(path).cameras


def read_transforms_json_capture(path: PathLike) -> TransformsJson:
    """Cameras, masks and point cloud of a nerfstudio / instant-ngp `transforms.json`, the
    cameras in that file's own world frame.

    Intrinsics `fl_x fl_y cx cy w h`, distortion `k1 k2 k3 k4 p1 p2` (0 when absent) and
    `camera_model` come from the top level, each overridden by the same key in a frame. A
    `distortion_params` list (nerfstudio's [k1, k2, k3, k4, p1, p2]) stands for the six keys:
    a frame's own list, else its own keys, else the top level's list, else its keys.
    `transform_matrix` (camera-to-world, OpenGL axes, 4x4 or 3x4) is used as written: no
    `applied_transform`, no normalisation. Frames keep the file's order; names are `file_path`.

    camera_model: SIMPLE_PINHOLE / PINHOLE -> "PINHOLE" (or "OPENCV" when distortion is
    non-zero, since nerfstudio applies distortion whatever the name); SIMPLE_RADIAL / RADIAL /
    OPENCV -> "OPENCV"; OPENCV_FISHEYE and EQUIRECTANGULAR kept (an equirectangular fl_x fl_y
    are nerfstudio's pi-radian focal lengths, divided by pi here into pixels per radian).
    Absent: "OPENCV" if any distortion is non-zero, else "PINHOLE", unless instant-ngp's
    `is_fisheye` is true (its colmap2nerf.py writes that, with k1..k4 and no camera_model, for
    COLMAP's fisheye models): "OPENCV_FISHEYE". Other models are refused.
    """
    meta = _load_json(path)
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        _fail(path, "no `frames` list (or it is empty)")
    ply = meta.get("ply_file_path")
    if ply is not None and not isinstance(ply, str):
        _fail(path, f"ply_file_path is {ply!r}, expected a string")
    splits = {}
    for key in SPLIT_KEYS:
        if key in meta:
            names = meta[key]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                _fail(path, f"{key} is not a list of file paths")
            splits[key] = names
    has_depth = False
    c2ws, Ks, widths, heights, dists, models, names, masks = [], [], [], [], [], [], [], []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            _fail(path, f"frame {i} is not a JSON object")
        for key in ("file_path", "mask_path", "depth_file_path"):
            if frame.get(key) is not None and not isinstance(frame[key], str):
                _fail(path, f"frame {i} {key} is {frame[key]!r}, expected a string")
        name = frame.get("file_path")
        masks.append(frame.get("mask_path"))
        has_depth |= frame.get("depth_file_path") is not None
        where = f"frame {i}" + (f" ({name})" if name else "")

        def get(key: str, default: Any = None) -> Any:
            return frame[key] if key in frame else meta.get(key, default)

        if "transform_matrix" not in frame:
            _fail(path, f"{where} has no transform_matrix")
        c2ws.append(_matrix(frame["transform_matrix"], path, f"{where} transform_matrix", rows=(3, 4)))
        intr = {}
        for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
            value = get(key)
            if value is None:
                _fail(path, f"{where} has no intrinsics `{key}` (needed at the top level or in the frame)")
            whole = key in ("w", "h")
            intr[key] = _number(value, path, f"{where} {key}", positive=whole or key.startswith("fl_"), whole=whole)
        Ks.append([[intr["fl_x"], 0.0, intr["cx"]], [0.0, intr["fl_y"], intr["cy"]], [0.0, 0.0, 1.0]])
        widths.append(int(intr["w"]))
        heights.append(int(intr["h"]))
        dist = _frame_distortion(meta, frame, path, where)
        dists.append(dist)
        model = get("camera_model")
        fisheye = get("is_fisheye", False)
        if not isinstance(fisheye, bool):
            _fail(path, f"{where} is_fisheye is {fisheye!r}, expected true or false")
        if fisheye and model is not None and _NERFSTUDIO_MODELS.get(model) != "OPENCV_FISHEYE":
            _fail(path, f"{where} is_fisheye is true but camera_model is {model!r}")
        if model is None:
            models.append("OPENCV_FISHEYE" if fisheye else "OPENCV" if any(dist) else "PINHOLE")
        elif not isinstance(model, str) or model not in _NERFSTUDIO_MODELS:
            _fail(path, f"{where} camera_model {model!r} is not supported (one of {', '.join(_NERFSTUDIO_MODELS)})")
        else:
            mapped = _NERFSTUDIO_MODELS[model]
            models.append("OPENCV" if mapped == "PINHOLE" and any(dist) else mapped)
            if mapped == "EQUIRECTANGULAR":
                Ks[-1][0][0] /= _EQUIRECT_NS_SCALE
                Ks[-1][1][1] /= _EQUIRECT_NS_SCALE
        names.append(name)
    cameras = _build(
        path,
        lambda: Cameras.from_c2w_opengl(np.stack(c2ws), np.array(Ks), widths, heights, np.array(dists), models, names),
    )
    return TransformsJson(cameras, masks, ply or None, has_depth, splits)


def _frame_distortion(meta: dict[str, Any], frame: dict[str, Any], path: PathLike, where: str) -> list[float]:
    """A frame's (k1, k2, k3, k4, p1, p2): its `distortion_params`, else its own keys over the
    top level's (`read_transforms_json_capture`), else the top level's `distortion_params`."""
    own_keys = any(k in frame for k in _DISTORTION_KEYS)
    params = frame.get("distortion_params")
    if params is None and not own_keys:
        params = meta.get("distortion_params")
    if params is None:
        return [_number(frame.get(k, meta.get(k, 0.0)), path, f"{where} {k}") for k in _DISTORTION_KEYS]
    values = _numbers(params)
    if values is None or values.shape != (len(_DISTORTION_KEYS),):
        _fail(path, f"{where} distortion_params is {params!r}, expected 6 numbers [k1, k2, k3, k4, p1, p2]")
    return [_number(float(v), path, f"{where} distortion_params") for v in values]


# ---- nerfstudio camera_path.json -----------------------------------------------------------


def _read_dataparser_transforms(path: PathLike) -> tuple[np.ndarray, float]:
    """(transform [4,4], scale) of a nerfstudio dataparser_transforms.json."""
    meta = _load_json(path)
    for key in ("transform", "scale"):
        if key not in meta:
            _fail(path, f"no `{key}` (is this a nerfstudio dataparser_transforms.json?)")
    T = _matrix(meta["transform"], path, "transform", rows=(3, 4))
    if np.abs(np.linalg.det(T[:3, :3]) - 1.0) > 1e-3:
        _fail(path, "transform's 3x3 block is not a rotation")
    return T, _number(meta["scale"], path, "scale", positive=True)


def nerfstudio_to_capture(dataparser_transforms: PathLike, transforms_json: PathLike | None = None) -> Similarity:
    """The similarity from a nerfstudio run's normalised training world (where its viewer's
    camera paths and `ns-export gaussian-splat`'s Gaussians are) back to the capture's.

    nerfstudio's dataparser maps pose' = transform @ pose, then position' *= scale; this undoes
    that. nerfstudio folds the dataset's `applied_transform` into `transform`, so without
    `transforms_json` the result lands in the world BEFORE it (COLMAP's, for a COLMAP-made
    dataset); with the transforms.json the run trained on, its `applied_transform` and
    `applied_scale` are applied again and the result lands in that file's world."""
    T, scale = _read_dataparser_transforms(dataparser_transforms)
    try:
        sim = Similarity.from_matrix(T, tol=1e-4).inverse() @ Similarity(scale=1.0 / scale)
    except SplatfilmError as e:
        _fail(dataparser_transforms, f"transform: {e}")
    if transforms_json is not None:
        A, applied_scale = _read_applied_transform(transforms_json)
        try:
            sim = Similarity(scale=applied_scale) @ Similarity.from_matrix(A, tol=1e-4) @ sim
        except SplatfilmError as e:
            _fail(transforms_json, f"applied_transform: {e}")
    return sim


def _read_applied_transform(path: PathLike) -> tuple[np.ndarray, float]:
    """(applied_transform [4,4], applied_scale) of a transforms.json, as nerfstudio's dataparser reads them."""
    meta = _load_json(path)
    if "applied_transform" in meta:
        A = _matrix(meta["applied_transform"], path, "applied_transform", rows=(3, 4))
    elif (Path(path).parent / "colmap" / "sparse" / "0").exists():
        A = _matrix(_LEGACY_APPLIED_TRANSFORM, path, "applied_transform", rows=(3,))
    else:
        A = np.eye(4)
    scale = _number(meta.get("applied_scale", 1.0), path, "applied_scale", positive=True)
    return A, scale


def read_camera_path_json(
    path: PathLike,
    dataparser_transforms: PathLike | None = None,
    transforms_json: PathLike | None = None,
) -> ViewerCameraPath:
    """Cameras and timing of a nerfstudio viewer `camera_path.json`.

    Per camera: `camera_to_world` is 16 floats, row-major, OpenGL axes; `fov` is the VERTICAL
    field of view in degrees. All cameras render `render_width` x `render_height` with
    fx = fy = render_height / 2 / tan(fov / 2) and the principal point at the image centre, as
    nerfstudio's `get_path_from_json` does (`aspect` is ignored there too). Names are None.
    `camera_type`: "perspective" (default) -> PINHOLE; "fisheye" -> OPENCV_FISHEYE without
    distortion (equidistant, the same focal length from `fov`, as nerfstudio computes it);
    "equirectangular" -> EQUIRECTANGULAR covering 360 x 180 degrees (fx = width / 2 pi,
    fy = height / pi pixels per radian; `fov` is not needed). Other types are refused.

    Without `dataparser_transforms`, poses stay in the file's frame: nerfstudio's normalised
    training world. With it (the run's dataparser_transforms.json: `transform` 3x4, `scale`),
    nerfstudio's `pose' = transform @ pose; position' *= scale` is undone. Note that nerfstudio
    folds the dataset's `applied_transform` into that `transform`, so this lands in the world
    BEFORE applied_transform (COLMAP's, for a COLMAP-made dataset), not transforms.json's.
    Give `transforms_json` (the dataset file the run trained on) to re-apply its
    `applied_transform` (and `applied_scale`) and land in transforms.json's world.
    """
    meta = _load_json(path)
    path_list = meta.get("camera_path")
    if not isinstance(path_list, list) or not path_list:
        _fail(path, "no `camera_path` list (or it is empty)")
    camera_type = meta.get("camera_type", "perspective")
    if not isinstance(camera_type, str) or camera_type not in _CAMERA_PATH_TYPES:
        _fail(path, f"camera_type {camera_type!r} is not supported (one of {', '.join(_CAMERA_PATH_TYPES)})")
    model = _CAMERA_PATH_TYPES[camera_type]
    for key in ("render_width", "render_height"):
        if key not in meta:
            _fail(path, f"no `{key}`")
    w = int(_number(meta["render_width"], path, "render_width", positive=True, whole=True))
    h = int(_number(meta["render_height"], path, "render_height", positive=True, whole=True))

    c2ws, focals = [], []
    for i, cam in enumerate(path_list):
        if not isinstance(cam, dict):
            _fail(path, f"camera_path[{i}] is not a JSON object")
        for key in ("camera_to_world", "fov") if model != "EQUIRECTANGULAR" else ("camera_to_world",):
            if key not in cam:
                _fail(path, f"camera_path[{i}] has no `{key}`")
        flat = _numbers(cam["camera_to_world"])
        if flat is None or flat.ndim not in (1, 2):
            _fail(path, f"camera_path[{i}] camera_to_world is not a list of numbers")
        flat = flat.reshape(-1)
        if flat.size != 16:
            _fail(path, f"camera_path[{i}] camera_to_world has {flat.size} numbers, expected 16 (4x4 row-major)")
        c2ws.append(_matrix(flat.reshape(4, 4), path, f"camera_path[{i}] camera_to_world", rows=(4,)))
        if model == "EQUIRECTANGULAR":
            focals.append(None)
            continue
        fov = _number(cam["fov"], path, f"camera_path[{i}] fov")
        if not 0 < fov < 180:
            _fail(path, f"camera_path[{i}] fov is {fov}, expected degrees in (0, 180)")
        focals.append(focal_px_for_fov(math.radians(fov), h))
    c2w = np.stack(c2ws)

    if transforms_json is not None and dataparser_transforms is None:
        _fail(path, "transforms_json is only meaningful together with dataparser_transforms")
    if dataparser_transforms is not None:
        sim = nerfstudio_to_capture(dataparser_transforms, transforms_json)
        c2w[:, :3, :3] = sim.rotation @ c2w[:, :3, :3]
        c2w[:, :3, 3] = sim.apply(c2w[:, :3, 3])

    if model == "EQUIRECTANGULAR":
        fx, fy = np.full(len(focals), w / (2 * math.pi)), np.full(len(focals), h / math.pi)
    else:
        fx = fy = np.asarray(focals, dtype=np.float64)
    Ks = centred_K(fx, fy, w, h)
    cameras = _build(path, lambda: Cameras.from_c2w_opengl(c2w, Ks, w, h, camera_model=model))
    seconds = meta.get("seconds")
    if seconds is not None:
        seconds = _number(seconds, path, "seconds", positive=True)
    file_fps = meta.get("fps")
    if file_fps is not None:
        file_fps = _number(file_fps, path, "fps", positive=True)
    return ViewerCameraPath(cameras, seconds, file_fps)


# ---- COLMAP ---------------------------------------------------------------------------------


def _colmap_intrinsics(model: str, params: np.ndarray) -> tuple[float, float, float, float, list[float], str] | None:
    """(fx, fy, cx, cy, distortion (k1,k2,k3,k4,p1,p2), our model) for a COLMAP camera, None if unsupported."""
    p = [float(x) for x in params]
    n = {"SIMPLE_PINHOLE": 3, "PINHOLE": 4, "SIMPLE_RADIAL": 4, "RADIAL": 5, "OPENCV": 8, "OPENCV_FISHEYE": 8,
         "FULL_OPENCV": 12, "SIMPLE_RADIAL_FISHEYE": 4, "RADIAL_FISHEYE": 5}.get(model)
    if n is None or len(p) != n:
        return None
    z = 0.0
    if model == "SIMPLE_PINHOLE":
        return p[0], p[0], p[1], p[2], [z] * 6, "PINHOLE"
    if model == "PINHOLE":
        return p[0], p[1], p[2], p[3], [z] * 6, "PINHOLE"
    if model == "SIMPLE_RADIAL":
        return p[0], p[0], p[1], p[2], [p[3], z, z, z, z, z], "OPENCV"
    if model == "RADIAL":
        return p[0], p[0], p[1], p[2], [p[3], p[4], z, z, z, z], "OPENCV"
    if model == "OPENCV":  # fx fy cx cy k1 k2 p1 p2
        return p[0], p[1], p[2], p[3], [p[4], p[5], z, z, p[6], p[7]], "OPENCV"
    if model == "OPENCV_FISHEYE":  # fx fy cx cy k1 k2 k3 k4
        return p[0], p[1], p[2], p[3], [p[4], p[5], p[6], p[7], z, z], "OPENCV_FISHEYE"
    if model == "SIMPLE_RADIAL_FISHEYE":  # f cx cy k (equidistant, like OPENCV_FISHEYE with k1)
        return p[0], p[0], p[1], p[2], [p[3], z, z, z, z, z], "OPENCV_FISHEYE"
    if model == "RADIAL_FISHEYE":
        return p[0], p[0], p[1], p[2], [p[3], p[4], z, z, z, z], "OPENCV_FISHEYE"
    # FULL_OPENCV: fx fy cx cy k1 k2 p1 p2 k3 k4 k5 k6; the rational k4..k6 terms have no slot.
    if any(p[9:12]):
        return None
    return p[0], p[1], p[2], p[3], [p[4], p[5], p[8], z, p[6], p[7]], "OPENCV"


def find_colmap_model(path: PathLike) -> Path | None:
    """The folder holding a COLMAP model (cameras.bin or cameras.txt): `path` itself, or 0,
    sparse/0, sparse, colmap/sparse/0 under it (the last where ns-process-data keeps it), None
    if none.

    Model 0 first, the one nerfstudio's ns-process-data uses.
    """
    path = Path(path)
    for sub in (".", "0", "sparse/0", "sparse", "colmap/sparse/0"):
        d = path / sub
        if (d / "cameras.bin").exists() or (d / "cameras.txt").exists():
            return d
    return None


def read_colmap(path: PathLike) -> Cameras:
    """Registered images of a COLMAP sparse model (binary or text), sorted by image name.

    `path` is the model folder (cameras/images[/rigs/frames/points3D] .bin or .txt) or a folder
    holding one at 0, sparse/0, sparse or colmap/sparse/0. Poses are COLMAP's world-to-camera
    (OpenCV axes) in COLMAP's world; names are the image names. Camera models: SIMPLE_PINHOLE,
    PINHOLE -> "PINHOLE"; SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV (k4-k6 zero) -> "OPENCV";
    OPENCV_FISHEYE, SIMPLE_RADIAL_FISHEYE, RADIAL_FISHEYE -> "OPENCV_FISHEYE".
    """
    pycolmap = load_pycolmap()  # here: it is heavy and only this reader needs it

    root = Path(path)
    if not root.exists():
        _fail(path, "no such file or folder")
    if not root.is_dir():
        _fail(path, "expected a COLMAP model folder")
    model_dir = find_colmap_model(root)
    if model_dir is None:
        _fail(path, "no COLMAP model (cameras.bin or cameras.txt) here or in 0, sparse/0, sparse, colmap/sparse/0")
    try:
        recon = pycolmap.Reconstruction(str(model_dir))
    except Exception as e:  # pycolmap raises ValueError/RuntimeError with C++ file:line prefixes
        _fail(model_dir, f"cannot read COLMAP model ({str(e).splitlines()[0] if str(e) else type(e).__name__})")

    images = [image for image in recon.images.values() if image.has_pose]
    if not images:
        _fail(model_dir, "COLMAP model has no registered images")
    images.sort(key=lambda im: im.name)

    viewmats, Ks, widths, heights, dists, models, names = [], [], [], [], [], [], []
    for image in images:
        v = np.eye(4)
        v[:3, :4] = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
        camera = recon.cameras[image.camera_id]
        model_name = camera.model.name if hasattr(camera.model, "name") else str(camera.model)
        intr = _colmap_intrinsics(model_name, np.asarray(camera.params))
        if intr is None:
            _fail(model_dir, f"image {image.name}: COLMAP camera model {model_name} is not supported")
        fx, fy, cx, cy, dist, model = intr
        viewmats.append(v)
        Ks.append([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        widths.append(int(camera.width))
        heights.append(int(camera.height))
        dists.append(dist)
        models.append(model)
        names.append(image.name)
    return _build(
        model_dir, lambda: Cameras(np.stack(viewmats), np.array(Ks), widths, heights, np.array(dists), models, names)
    )


# ---- dispatch --------------------------------------------------------------------------------


def read_cameras(
    path: PathLike,
    dataparser_transforms: PathLike | None = None,
    transforms_json: PathLike | None = None,
) -> Cameras:
    """Cameras from any supported file, chosen by what `path` is.

    A folder: a COLMAP model (see `read_colmap`), else its transforms.json. A .json file:
    a camera_path.json if it has `camera_path` (then `dataparser_transforms` and
    `transforms_json` apply; see `read_camera_path_json`), else a transforms.json if it has
    `frames`. Use `read_camera_path_json` directly for a path's timing.
    """
    p = Path(path)
    if not p.exists():
        _fail(path, "no such file or folder")
    if p.is_dir():
        if find_colmap_model(p) is None and (p / "transforms.json").exists():
            return read_cameras(p / "transforms.json", dataparser_transforms, transforms_json)
        if dataparser_transforms is not None or transforms_json is not None:
            _fail(path, "dataparser_transforms only applies to a camera_path.json (COLMAP poses are in the capture's world)")
        return read_colmap(p)
    if p.suffix.lower() != ".json":
        _fail(path, "unknown camera file type (expected a .json file or a COLMAP model folder)")
    meta = _load_json(p)
    if "camera_path" in meta:
        return read_camera_path_json(p, dataparser_transforms, transforms_json).cameras
    if "frames" in meta:
        if dataparser_transforms is not None or transforms_json is not None:
            _fail(path, "dataparser_transforms only applies to a camera_path.json (transforms.json is in the capture's "
                        "world; to bring a splat from nerfstudio's training world into it, `splatfilm import SPLAT "
                        "--dataparser-transforms FILE`)")
        return read_transforms_json(p)
    _fail(path, "JSON has neither `camera_path` (nerfstudio camera path) nor `frames` (transforms.json)")


def holds_camera_path(path: PathLike) -> bool:
    """Whether `read_cameras` reads `path` as a nerfstudio camera_path.json (a .json file with
    `camera_path`); False for anything else, unreadable files included (their reader says why)."""
    p = Path(path)
    if p.suffix.lower() != ".json" or not p.is_file():
        return False
    try:
        return "camera_path" in _load_json(p)
    except SplatfilmError:
        return False


def camera_path_world_note(path: PathLike, *, written: bool) -> str:
    """The one-line note (for stderr) on a camera_path.json written (`written`) or read without
    a nerfstudio run's dataparser_transforms.json: the world its poses are in, and how to give
    the transforms. nerfstudio's viewer and ns-render work in the run's normalised world, so a
    path crossing between it and a capture's world without them lands in the wrong place."""
    how = "--dataparser-transforms RUN/dataparser_transforms.json (and --transforms-json DATA/transforms.json)"
    if written:
        return (f"note: {path}: the camera path is in the shot's world; ns-render and nerfstudio's viewer play it in "
                f"a run's normalised world: give {how} to write it there")
    return (f"note: {path}: camera path poses are taken as written, in nerfstudio's normalised world for a path from "
            f"its viewer (an `ns-export gaussian-splat` splat is there too); for a scene in the capture's world give {how}")


# ---- writers ----------------------------------------------------------------------------------

# camera_model values a transforms.json gets for each of ours (nerfstudio's names).
_MODEL_TO_NERFSTUDIO = {"PINHOLE": "PINHOLE", "OPENCV": "OPENCV", "OPENCV_FISHEYE": "OPENCV_FISHEYE",
                        "EQUIRECTANGULAR": "EQUIRECTANGULAR"}


def _write_json(path: PathLike, data: dict[str, Any]) -> None:
    from splatfilm.io.atomic import atomic_write

    atomic_write(path, [(json.dumps(data, indent=1) + "\n").encode("utf-8")])


def _row_major(m: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(m, dtype=np.float64).reshape(-1)]


def frame_names(cameras: Cameras) -> list[str]:
    """Each camera's `file_path` in a transforms.json `write_transforms_json` writes: its name,
    else `images/frame_{i:05d}.png`."""
    return [name or f"images/frame_{i:05d}.png" for i, name in enumerate(cameras.names)]


def write_transforms_json(path: PathLike, cameras: Cameras, extra: dict[str, Any] | None = None) -> None:
    """Write `cameras` as a nerfstudio `transforms.json` (atomically), readable by
    `read_transforms_json` and nerfstudio's dataparser.

    Per frame: `file_path` (the camera's name, else `images/frame_{i:05d}.png`) and
    `transform_matrix` (camera-to-world 4x4, OpenGL axes). Intrinsics `fl_x fl_y cx cy w h`,
    distortion and `camera_model` go at the top level when every camera shares them, else in
    each frame (a zoom changes fl_x per frame). `extra`: more top-level keys (nerfstudio
    ignores keys it does not know). EQUIRECTANGULAR focal lengths are written in nerfstudio's
    pi-radian unit (pixels per radian times pi).
    """
    c2w = cameras.to_c2w_opengl()
    names = frame_names(cameras)
    per_frame: list[dict[str, Any]] = []
    for i in range(len(cameras)):
        K = cameras.Ks[i]
        f_scale = _EQUIRECT_NS_SCALE if cameras.camera_model[i] == "EQUIRECTANGULAR" else 1.0
        values: dict[str, Any] = {
            "fl_x": float(K[0, 0] * f_scale), "fl_y": float(K[1, 1] * f_scale), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
            "w": int(cameras.widths[i]), "h": int(cameras.heights[i]),
            "camera_model": _MODEL_TO_NERFSTUDIO[cameras.camera_model[i]],
        }
        if np.any(cameras.distortion[i]):
            values.update({k: float(v) for k, v in zip(_DISTORTION_KEYS, cameras.distortion[i])})
        per_frame.append(values)
    shared = {k: v for k, v in per_frame[0].items() if all(f.get(k) == v for f in per_frame)}
    frames = []
    for i, values in enumerate(per_frame):
        frame = {"file_path": names[i], "transform_matrix": c2w[i].tolist()}
        frame.update({k: v for k, v in values.items() if k not in shared})
        frames.append(frame)
    _write_json(path, {**shared, **(extra or {}), "frames": frames})


def write_camera_path_json(
    path: PathLike,
    cameras: Cameras,
    seconds: float,
    *,
    keyframes: Cameras | None = None,
    transitions: list[float | None] | None = None,
    fps: float | None = None,
    is_cycle: bool = False,
    smoothness_value: float = 0.0,
    dataparser_transforms: PathLike | None = None,
    transforms_json: PathLike | None = None,
    note: str | None = None,
) -> None:
    """Write a nerfstudio viewer `camera_path.json` (atomically) that `ns-render camera-path`
    renders as `cameras`, and that `read_camera_path_json` reads back as the same cameras.

    cameras: one per frame; all the same size and model (PINHOLE, OPENCV_FISHEYE without
    coefficients, or a full EQUIRECTANGULAR panorama: `camera_type` perspective, fisheye,
    equirectangular), square pixels, principal point at the image centre (what the format can say). `fov` is written as the vertical field of view
    in degrees; nerfstudio plays len(cameras) / seconds frames a second, so `seconds` sets
    the frame rate (`fps` is only what the viewer's own field shows; default that ratio).
    keyframes / transitions: the viewer's editable keys (cameras, and the seconds from the
    previous key to each, None for the first unless `is_cycle`); default: none. What the viewer
    makes of them is `nerfstudio_viewer_path`; `default_fov` is then `viewer_default_fov`, so
    every key keeps its own field of view there.
    dataparser_transforms (and transforms_json): write the poses in the nerfstudio run's
    normalised world, the inverse of what `read_camera_path_json` undoes.
    note: said in the file's `splatfilm_note` (nerfstudio reads only its own keys); none by default.
    """

    def check(cams: Cameras, what: str) -> tuple[np.ndarray, list[float]]:
        w, h = int(cams.widths[0]), int(cams.heights[0])
        if np.any(cams.widths != w) or np.any(cams.heights != h):
            _fail(path, f"{what}: a camera path has one image size for all cameras")
        if any(m != model for m in cams.camera_model) or model not in _CAMERA_PATH_TYPE_OF:
            _fail(path, f"{what}: a camera path holds cameras of one model, PINHOLE, OPENCV_FISHEYE or EQUIRECTANGULAR")
        if np.any(cams.distortion != 0):
            _fail(path, f"{what}: a camera path cannot hold lens distortion coefficients")
        fx, fy = cams.fx, cams.fy
        if model == "EQUIRECTANGULAR":
            if np.any(np.abs(fx - w / (2 * math.pi)) > 1e-6 * fx) or np.any(np.abs(fy - h / math.pi) > 1e-6 * fy):
                _fail(path, f"{what}: an equirectangular camera path covers 360 x 180 degrees "
                            "(fx = width / 2 pi, fy = height / pi)")
        elif np.any(np.abs(fx - fy) > 1e-6 * fx):
            _fail(path, f"{what}: a camera path needs square pixels (fx = fy)")
        if np.any(np.abs(cams.cx - w / 2) > 1e-6 * w) or np.any(np.abs(cams.cy - h / 2) > 1e-6 * h):
            _fail(path, f"{what}: a camera path needs the principal point at the image centre")
        c2w = cams.to_c2w_opengl()
        if transforms_json is not None:
            if dataparser_transforms is None:
                _fail(path, "transforms_json is only meaningful together with dataparser_transforms")
            A, applied_scale = _read_applied_transform(transforms_json)
            c2w[:, :3, 3] /= applied_scale
            c2w = np.linalg.inv(A) @ c2w
        if dataparser_transforms is not None:
            T, scale = _read_dataparser_transforms(dataparser_transforms)
            c2w = T @ c2w
            c2w[:, :3, 3] *= scale
        # nerfstudio: focal = H / 2 / tan(fov / 2), so fov = 2 atan(H / 2 / fy).
        fovs = [math.degrees(2 * math.atan(h / 2 / f)) for f in fy]
        return c2w, fovs

    if not seconds > 0:
        _fail(path, f"seconds must be > 0, got {seconds}")
    model = cameras.camera_model[0]
    w, h = int(cameras.widths[0]), int(cameras.heights[0])
    c2w, fovs = check(cameras, "cameras")
    aspect = w / h
    keys_out = []
    if keyframes is not None:
        kc2w, kfovs = check(keyframes, "keyframes")
        if int(keyframes.widths[0]) != w or int(keyframes.heights[0]) != h:
            _fail(path, "keyframes must have the cameras' image size")
        transitions = transitions or [None] * len(keyframes)
        for i in range(len(keyframes)):
            sec = transitions[i] if i < len(transitions) else None
            keys_out.append({
                "matrix": _row_major(kc2w[i]), "fov": kfovs[i], "aspect": aspect,
                "override_transition_enabled": sec is not None,
                "override_transition_sec": None if sec is None else float(sec),
            })
    known = [t for t in (transitions or []) if t is not None]
    data = {
        "default_fov": viewer_default_fov([f["fov"] for f in keys_out]) if keys_out else fovs[0],
        "default_transition_sec": float(np.mean(known)) if known else float(seconds),
        "keyframes": keys_out,
        "camera_type": _CAMERA_PATH_TYPE_OF.get(model, "perspective"),
        "render_height": h,
        "render_width": w,
        "fps": float(len(cameras) / seconds) if fps is None else float(fps),
        "seconds": float(seconds),
        "is_cycle": bool(is_cycle),
        "smoothness_value": float(smoothness_value),
        "camera_path": [
            {"camera_to_world": _row_major(c2w[i]), "fov": fovs[i], "aspect": aspect} for i in range(len(cameras))
        ],
        **({} if note is None else {"splatfilm_note": note}),
    }
    _write_json(path, data)


# ---- what nerfstudio's viewer plays -------------------------------------------------------------

NERFSTUDIO_VIEWER_FOV_DEG = 75.0
"""The field of view nerfstudio's viewer starts with ("Default FOV", degrees): what a
camera_path.json key whose `fov` equals the file's `default_fov` gets there."""


def viewer_default_fov(key_fovs: list[float]) -> float:
    """A camera_path.json `default_fov` (degrees) that none of `key_fovs` (degrees) is within
    1e-3 of: nerfstudio's viewer "Load Path" gives such a key its own `fov` and any other key
    the viewer's slider (which loading leaves as it was, 75 degrees at first), so writing the
    lens's field of view there would hand every key of a fixed lens to the slider. ns-render
    reads only `camera_path`. Returns `NERFSTUDIO_VIEWER_FOV_DEG` unless a key is that wide."""
    fov = NERFSTUDIO_VIEWER_FOV_DEG
    # Steps of 0.5 degrees: each key rules out at most one candidate, so this ends.
    while any(abs(fov - f) <= 2e-3 for f in key_fovs):
        fov += 0.5
    return fov


def viewer_path(key_c2w: np.ndarray, key_fov_deg: np.ndarray, transitions: np.ndarray, times: np.ndarray, *,
                loop: bool = False, tension: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The cameras nerfstudio's viewer plays at `times` [T] (seconds) from its keyframes, as its
    render panel (nerfstudio/viewer/render_panel.py, `CameraPath`) interpolates them and
    writes `camera_path` when a path is saved: (camera-to-world [T,4,4] OpenGL axes, vertical
    field of view [T] in degrees).

    key_c2w [K,4,4] (OpenGL axes), key_fov_deg [K]: the keys as the viewer holds them;
    transitions [K]: seconds from the previous key to each (the first: from the last key round
    to the first, used by a loop only). The viewer splines positions, orientations (unit
    quaternions) and fields of view with Kochanek-Bartels splines on a uniform grid, one step
    a key (`splines`, tension = the viewer's "Spline tension", continuity = bias = 0; natural
    ends, or closed with `loop`), and maps seconds to that grid with a monotone PCHIP through
    the keys' cumulative transition times: times between keys are not where the keys' own
    path has them unless the keys are close. Before the first key and after the last (the
    loop's end) it holds them. Positions are scaled by 10 there (VISER_NERFSTUDIO_SCALE_RATIO)
    and back, which a spline, an affine combination, does not change."""
    import splines
    import splines.quaternion as squat
    from scipy.interpolate import PchipInterpolator

    from splatfilm.scene.transforms import quat_from_rotation, rotation_from_quat

    key_c2w = np.asarray(key_c2w, dtype=np.float64)
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    count = len(key_c2w)
    # The viewer holds each key turned half a turn about x (viser's camera looks down +z).
    flip = np.diag([1.0, -1.0, -1.0])
    wxyz = quat_from_rotation(key_c2w[:, :3, :3] @ flip)
    quats = [squat.UnitQuaternion.from_unit_xyzw(np.roll(q, -1)) for q in wxyz]
    positions = list(key_c2w[:, :3, 3])
    fovs = list(np.radians(np.asarray(key_fov_deg, dtype=np.float64)))
    transitions = np.asarray(transitions, dtype=np.float64)
    cumsum = np.concatenate([[0.0], np.cumsum(transitions[1:])])
    grid = np.arange(count, dtype=np.float64)
    if loop:
        cumsum = np.append(cumsum, cumsum[-1] + transitions[0])
        # The viewer's closed splines; a key's tangent depends only on its neighbours, so open
        # splines over the keys padded with the wrap-around ones are the same curves on [0, K]
        # (as `shots.keyframes` builds its loops; splines' closed rotation spline calls the
        # deprecated np.row_stack).
        quats, positions, fovs = ([v[-1], *v, v[0], v[1 % count]] for v in (quats, positions, fovs))
        grid = np.arange(-1.0, count + 2.0)
        to_grid = PchipInterpolator(np.concatenate([[-(cumsum[-1] - cumsum[-2])], cumsum, cumsum[-1:] + cumsum[1:2]]),
                                    np.arange(-1.0, count + 2.0))
        last = float(count)
    else:
        to_grid = PchipInterpolator(cumsum, grid)
        last = float(count - 1)
    tcb = (tension, 0.0, 0.0)
    spline_t = np.clip(to_grid(np.clip(times, 0.0, cumsum[-1])), 0.0, last)
    position = splines.KochanekBartels(positions, grid=list(grid), tcb=tcb, endconditions="natural")
    rotation = squat.KochanekBartels(quats, grid=list(grid), tcb=tcb, endconditions="natural")
    fov = splines.KochanekBartels(fovs, grid=list(grid), tcb=tcb, endconditions="natural")
    c2w = np.tile(np.eye(4), (len(times), 1, 1))
    c2w[:, :3, 3] = np.asarray(position.evaluate(spline_t), dtype=np.float64).reshape(len(times), 3)
    c2w[:, :3, :3] = rotation_from_quat(np.array([q.wxyz for q in rotation.evaluate(spline_t)])) @ flip
    return c2w, np.degrees(np.asarray(fov.evaluate(spline_t), dtype=np.float64).reshape(len(times)))


def nerfstudio_viewer_path(data: dict[str, Any], times: np.ndarray, *, viewer_fov_deg: float = NERFSTUDIO_VIEWER_FOV_DEG,
                           loop: bool | None = None, tension: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """What nerfstudio's viewer plays at `times` [T] (seconds) after "Load Path" of a
    camera_path.json's content `data` (its `keyframes` alone: `camera_path` is what ns-render
    reads, and the viewer rewrites it from the keys when the path is saved): (camera-to-world
    [T,4,4] OpenGL axes, vertical field of view [T] degrees), by `viewer_path`.

    As the viewer loads: a key's `fov` counts where it differs from `default_fov` by more than
    1e-3, otherwise the key takes the viewer's slider, `viewer_fov_deg`; a key's transition is
    its `override_transition_sec` where enabled, else `default_transition_sec`. The viewer's
    Loop and tension controls are not in what it loads: `loop` (default: the file's
    `is_cycle`, as a user who ticks Loop for it sees) and `tension` stand for them. Needs at
    least two keys (the viewer plays nothing with fewer)."""
    keys = data.get("keyframes") or []
    if len(keys) < 2:
        raise SplatfilmError("the nerfstudio viewer plays a camera path of at least two keyframes")
    default_fov = float(data.get("default_fov", 0.0))
    default_sec = float(data.get("default_transition_sec", 0.5))
    c2w = np.array([np.asarray(k["matrix"], dtype=np.float64).reshape(4, 4) for k in keys])
    fovs = np.array([float(k["fov"]) if abs(float(k["fov"]) - default_fov) > 1e-3 else viewer_fov_deg for k in keys])
    transitions = np.array([float(k["override_transition_sec"])
                            if k.get("override_transition_enabled") and k.get("override_transition_sec") is not None
                            else default_sec for k in keys])
    return viewer_path(c2w, fovs, transitions, times, loop=bool(data.get("is_cycle", False)) if loop is None else loop,
                       tension=tension)
