"""Shot descriptions in YAML: parsing and validation into a `Shot`.

A shot file (or one shot inside a larger YAML, such as a film script) is a mapping:

    version: 1                     # schema version (default 1)
    name: shot_010                 # default: the file's stem
    description: free text         # ignored
    fps: 24                        # or "24000/1001", 23.976 (or 23.98: the same rate), "29.97 DF"; default 24
    duration: 4                    # seconds; or `frames: 96`; or `frame_range: [1001, 1096]` (a film's
                                   # handles lie outside a frame_range: it is the cut's)
    first_frame: 1001              # film frame number of the first frame (default 1001; in a film
                                   # with handles, the first handle frame: the cut starts after them)
    resolution: [1920, 1080]       # default 1920x1080
    lens: 35mm                     # focal length in mm (35, "35mm"), or a mapping:
                                   #   {focal_mm | fov_deg (horizontal) | vfov_deg, sensor_width_mm: 36
                                   #    (or a named back: full_frame, super35, ..., lens.FILM_BACKS),
                                   #    sensor_height_mm (default: the image's aspect),
                                   #    sensor_fit: horizontal | vertical | fill | overscan (lens.Lens),
                                   #    squeeze: 1 (anamorphic squeeze: 1.33, 1.5, 1.8, 2; the plate's
                                   #    pixel aspect, fx = fy / squeeze),
                                   #    near: 0.01, far: 1000, f_stop, focus_distance (metres or a point: below),
                                   #    model: pinhole | opencv | fisheye | equirectangular,
                                   #    k1, k2, k3, k4, p1, p2}   (opencv: k1-k3 p1 p2; fisheye: k1-k4)
    points: {table: [0, 0, 0.75]}  # named points; any point below may be a name
    # EITHER keyframes:
    keyframes:
      - {time: 0, position: [0, -3, 1.2], look_at: table}       # or frame: 1001
      - {time: 2, position: [1, -2, 1.4], pan: 100, tilt: -10, focal_mm: 50, ease: 0.5}
    interpolation: {tension: 0, continuity: 0, bias: 0, ease: 0, speed: keyframes, loop: false}
    # OR moves (one `move:` mapping or a `moves:` list, run together unless their spans differ):
    camera: {position: [0, -3, 1.2], look_at: table}             # the camera at the first frame
                                   # (a `camera` with no moves is a locked-off shot)
    moves:
      - {type: crane, height: 1.0, ease: 0.5}
      - {type: pan, degrees: 30, span: [1, 3]}                   # or frames: [1025, 1073]

A keyframe has `time` (seconds from the first cut frame) or `frame` (film frame number: the
number of the file it is shown on, handles or not; in a shot file a film includes, the number
it has alone, without the film's handles: `parse_shot`'s numbered_alone), `position`, and one
orientation: `look_at` (a point), `pan` (+ `tilt`) in degrees, or `quat` [w, x, y, z]
(camera-to-world, OpenCV axes); `roll` in degrees goes with any; optional `focal_mm`,
`focus_distance`, `ease` (or `ease_in` / `ease_out`), `tension`, `continuity`, `bias`.
A shot with keyframes and no duration ends on its last keyframe. A loop returns to the
first keyframe at the shot's end (give a duration).

Move types and their fields (a type's fields are those of its dataclass in `moves.MOVES` or
`moves.STARTING_MOVES`, which says what each does):
    dolly distance [target]     truck distance [target]     pedestal|crane height [target]
    pan degrees     tilt degrees     roll degrees     arc degrees pivot
    orbit center radius [height start_deg degrees look_at]   (starts the camera itself)
    push_in target (distance | to_distance)     dolly_zoom target (distance | to_focal_mm)
    zoom to_focal_mm [from_focal_mm]     rack_focus to_distance [from_distance]   (metres or a point: below)
    look_at target [roll]     follow target offset [look_offset]   (starts the camera itself)
    handheld [amplitude_m amplitude_deg frequency_hz seed]   (in a span: ramps in and out, `moves.Handheld`)
Every move takes `span: [start, end]` (seconds) or `frames: [first, last]`, and `ease`
(or `ease_in` / `ease_out`); by default a move runs from the first frame to the last, but a
whole number of turns (orbit or arc of 360, 720, ... degrees) without ease or span of its own
runs to the shot's end, frame_count / fps: its last frame is one step before its first, so the
shot loops without showing the start twice (`moves.loops`). The
first move may give `from: [x, y, z]` instead of a `camera`: the camera starts there,
aimed at the move's target (or pivot). A target (look_at, follow) may move:
`target: {keyframes: [{time: 0, position: [..]}, {time: 4, position: [..]}]}`.

Focus may follow a subject: a `focus_distance` (the lens's, the camera's, a keyframe's) and a
rack_focus's `to_distance` / `from_distance` are metres, or a point to focus on: a name from
`points` (a film's assets are points: a still one its aim point, a moving one moving) or
[x, y, z] (`pose.FocusOn`). On each frame the distance is the point's camera z, along the
optical axis as focus distance is measured, from the camera as its moves leave it (rack_focus
is applied after the moves that place the camera); a rack, linear in dioptres, lands on the
subject and stays on it; keys on a subject are splined through each key's value at that
moment. A subject behind the camera on a frame is refused.

Errors are SplatfilmError naming the file and the field: `shot.yaml: keyframes[2].time: ...`.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, fields
from fractions import Fraction
from pathlib import Path as FsPath
from typing import Any

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.inputs import read_text
from splatfilm.shots.moves import MOVES, STARTING_MOVES, MovePath, PointTrack, Span, lay, loops, param_kind
from splatfilm.shots.keyframes import Keyframe, KeyframePath
from splatfilm.shots.lens import DISTORTION_KEYS, FILM_BACKS, LENS_MODELS, SENSOR_FITS, Lens
from splatfilm.scene.transforms import axis_rotation, pan_tilt_roll_rotation, quat_from_rotation, rotation_from_quat
from splatfilm.shots.pose import Focus, FocusOn, Pose, Target
from splatfilm.shots.shot import Shot
from splatfilm.shots.timing import FIRST_FRAME, duration_frames, frame_times, frames_through, parse_fps
from splatfilm.yamlfields import At, integer, load_yaml, mapping, number, schema_version, show, vec3

# Shot files carry `version: 1`; a file without one is version 1 (yamlfields.schema_version).
SHOT_VERSION = 1
_TOP = {"version", "name", "description", "fps", "duration", "frames", "frame_range", "first_frame", "resolution", "lens",
        "points", "keyframes", "interpolation", "camera", "move", "moves"}
_LENS = {"focal_mm", "fov_deg", "vfov_deg", "sensor_width_mm", "sensor_height_mm", "sensor_fit", "squeeze", "near",
         "far", "f_stop", "focus_distance", "model", *DISTORTION_KEYS}
_FOCAL = ("focal_mm", "fov_deg", "vfov_deg")  # one focal length, however given
_GLASS = ("model", *DISTORTION_KEYS)  # the lens's projection: one set
_BACK = ("sensor_width_mm", "sensor_height_mm")  # the film back: one body
_ORIENT = {"look_at", "pan", "tilt", "roll", "quat"}
_KEY = {"time", "frame", "position", "focal_mm", "focus_distance", "ease", "ease_in", "ease_out", "tension",
        "continuity", "bias"} | _ORIENT
_CAMERA = {"position", "focal_mm", "focus_distance"} | _ORIENT
_INTERP = {"tension", "continuity", "bias", "ease", "speed", "loop"}
_TIMING = {"type", "span", "frames", "ease", "ease_in", "ease_out", "from"}
_KINDS = {**MOVES, **STARTING_MOVES}  # every move `type`


def _point(value: Any, at: At, points: dict[str, np.ndarray]) -> np.ndarray:
    if isinstance(value, str):
        if value not in points:
            known = f" (known: {', '.join(sorted(points))})" if points else " (the shot defines no `points`)"
            at.fail(f"unknown point name {value!r}{known}")
        if callable(points[value]):
            # A moving target used where a fixed point is needed: where it is at the first frame.
            return np.asarray(points[value](np.array([0.0])), dtype=np.float64).reshape(3)
        return points[value].copy()
    return vec3(value, at)


def _focus(value: Any, at: At, points: dict[str, np.ndarray]) -> Focus:
    """A `focus_distance` (or a rack's `to_distance` / `from_distance`): metres > 0, or a
    subject to hold focus on, the name of a point (a film's asset: its aim point, moving with
    it) or a point [x, y, z] (`pose.FocusOn`)."""
    if isinstance(value, str):
        if value not in points:
            known = f" (known: {', '.join(sorted(points))})" if points else " (the shot defines no `points`)"
            at.fail(f"unknown point name {value!r}: expected a distance in metres or a point to focus on{known}")
        target = points[value]
        return FocusOn(target if callable(target) else target.copy(), value)
    if isinstance(value, (list, tuple)):
        return FocusOn(vec3(value, at))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        at.fail(f"expected a distance in metres, the name of a point (or asset) or [x, y, z], got {show(value)}")
    return number(value, at, "positive")


def key_ease(data: dict, at: At, default: float = 0.0) -> tuple[float, float]:
    """(ease_in, ease_out), each in [0, 1], from a key's or a move's `ease` / `ease_in` /
    `ease_out` (a number, or true / false for 1 / 0): `ease` sets both, the other two one
    side; `default` where none is given."""
    def one(key: str, fallback: float) -> float:
        if key not in data:
            return fallback
        v = data[key]
        if isinstance(v, bool):
            return 1.0 if v else 0.0
        x = number(v, at[key])
        if not 0.0 <= x <= 1.0:
            at[key].fail(f"must be in [0, 1] (0: none, 1: stops at zero speed), got {v}")
        return x

    both = one("ease", default)
    return one("ease_in", both), one("ease_out", both)


def key_time(data: dict, at: At, fps: Fraction, first_frame: int, world: bool = False) -> tuple[float, str]:
    """Seconds of a key's `time` or `frame` field, and which field it was: `frame: N` is
    (N - first_frame) / fps seconds, first_frame being the number of the frame at time 0 (a
    shot's first cut frame). A shot's keys lie in its cut, from its start on; a film asset's
    (`world`) are in world time, which a first shot's head handles reach before 0, so any
    time and any frame may be given."""
    if ("time" in data) == ("frame" in data):
        at.fail("give exactly one of `time` (seconds) or `frame` (film frame number)")
    if "time" in data:
        t = number(data["time"], at["time"])
        if t < 0 and not world:
            at["time"].fail(f"must be >= 0 (seconds from the shot's start), got {data['time']}")
        return t, "time"
    f = integer(data["frame"], at["frame"])
    if f < first_frame and not world:
        at["frame"].fail(f"frame {f} is before the shot's first cut frame {first_frame}")
    return float(Fraction(f - first_frame) / fps), "frame"


def _orientation(data: dict, at: At, position: np.ndarray, points: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(look_at point, rotation) of a keyframe or camera: exactly one is set; roll folded into the rotation."""
    given = [k for k in ("look_at", "pan", "quat") if k in data]
    if len(given) != 1:
        at.fail("give exactly one orientation: `look_at` (a point), `pan` (+ `tilt`) in degrees, or `quat` [w, x, y, z]"
                + (f" (got {', '.join(given)})" if given else ""))
    if "tilt" in data and "pan" not in data:
        at["tilt"].fail("`tilt` goes with `pan`")
    roll = number(data["roll"], at["roll"]) if "roll" in data else 0.0
    if "look_at" in data:
        target = _point(data["look_at"], at["look_at"], points)
        if np.linalg.norm(target - position) < 1e-9:
            at["look_at"].fail("the look-at target is the camera's own position")
        return target, None
    if "pan" in data:
        tilt = number(data["tilt"], at["tilt"]) if "tilt" in data else 0.0
        if not -90.0 < tilt < 90.0:
            at["tilt"].fail(f"must be between -90 and 90 degrees (exclusive), got {tilt}")
        return None, pan_tilt_roll_rotation(number(data["pan"], at["pan"]), tilt, roll)
    q = data["quat"]
    if not isinstance(q, (list, tuple)) or len(q) != 4:
        at["quat"].fail(f"expected [w, x, y, z], got {show(q)}")
    qv = np.array([number(v, at["quat"][i]) for i, v in enumerate(q)])
    if np.linalg.norm(qv) < 1e-9:
        at["quat"].fail("quaternion has zero length")
    return None, rotation_from_quat(qv) @ axis_rotation("z", math.radians(roll))


# ---- shot parts -----------------------------------------------------------------------------------


def _lens_fields(value: Any, at: At) -> dict:
    """A `lens` as its mapping of fields: "35mm" and 35 are {focal_mm: 35}."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*mm\s*", value)
        if not m:
            at.fail(f"expected a focal length like 35mm or a mapping, got {value!r}")
        value = {"focal_mm": float(m.group(1))}
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = {"focal_mm": value}
    return mapping(value, at, _LENS)


def _lens_over(inherited: Any, own: Any, at: At) -> dict:
    """A shot's `lens` laid over the one it inherits (a film's), field by field, as a camera
    body keeps its film back when the lens is changed: the sensor's fit (`sensor_fit`), the
    anamorphic squeeze (`squeeze`: the film's format, as a show shoots one anamorphic set), the
    clipping (`near`, `far`), the stop and the focus carry over unless the shot gives them.
    Three groups go as one: the film back (`sensor_width_mm`, a name or mm, and
    `sensor_height_mm`: a shot giving either changes the body), the focal length (`focal_mm`,
    `fov_deg`, `vfov_deg`: the shot's replaces whichever the film gave), and the glass (`model` and its distortion `k1`..`p2`:
    a shot naming any of them states its lens's whole model, pinhole and no distortion unless
    it says otherwise)."""
    under, over = _lens_fields(inherited, at), _lens_fields(own, at)
    for group in (_BACK, _FOCAL, _GLASS):
        if any(k in over for k in group):
            under = {k: v for k, v in under.items() if k not in group}
    return {**under, **over}


def _lens(value: Any, at: At, width: int, height: int, points: dict) -> tuple[Lens, Focus]:
    """The `Lens`, and its focus: the lens's `focus_distance`, or the subject it names (which
    the lens itself cannot hold: the shot's cameras carry it)."""
    if value is None:
        return Lens(width=width, height=height), None
    data = _lens_fields(value, at)
    kwargs: dict[str, Any] = {"width": width, "height": height}
    for key in ("sensor_width_mm", "sensor_height_mm", "near", "far", "f_stop", "squeeze"):
        if key == "sensor_width_mm" and isinstance(data.get(key), str):
            if data[key] not in FILM_BACKS:
                at[key].fail(f"expected millimetres or a named back ({', '.join(FILM_BACKS)}), got {data[key]!r}")
            if "sensor_height_mm" in data:
                at["sensor_height_mm"].fail(f"the named back {data[key]} gives the height; give millimetres "
                                            "for both, or the name alone")
            kwargs["sensor_width_mm"], kwargs["sensor_height_mm"] = FILM_BACKS[data[key]]
        elif key in data:
            kwargs[key] = number(data[key], at[key], "positive")
    if "sensor_fit" in data:
        if not isinstance(data["sensor_fit"], str) or data["sensor_fit"] not in SENSOR_FITS:
            at["sensor_fit"].fail(f"expected one of {', '.join(SENSOR_FITS)}, got {show(data['sensor_fit'])}")
        kwargs["sensor_fit"] = data["sensor_fit"]
    focus = _focus(data["focus_distance"], at["focus_distance"], points) if "focus_distance" in data else None
    if focus is not None and not isinstance(focus, FocusOn):
        kwargs["focus_distance"] = focus
    if "model" in data:
        if not isinstance(data["model"], str) or data["model"] not in LENS_MODELS:
            at["model"].fail(f"expected one of {', '.join(LENS_MODELS)}, got {show(data['model'])}")
        kwargs["model"] = data["model"]
    if any(k in data for k in DISTORTION_KEYS):
        kwargs["distortion"] = tuple(number(data[k], at[k]) if k in data else 0.0 for k in DISTORTION_KEYS)
    given = [k for k in ("focal_mm", "fov_deg", "vfov_deg") if k in data]
    if len(given) > 1:
        at.fail(f"give one of focal_mm, fov_deg or vfov_deg, not {' and '.join(given)}")
    if "near" in kwargs and "far" in kwargs and not kwargs["near"] < kwargs["far"]:
        at["near"].fail(f"must be less than far ({kwargs['far']}), got {kwargs['near']}")
    key = given[0] if given else None
    x = number(data[key], at[key], "positive") if key else None  # its errors name file and field already
    if key is not None and key != "focal_mm" and not x < 180:
        at[key].fail(f"must be less than 180 degrees, got {x}")
    try:  # what the Lens itself refuses, placed at the lens
        if key is None:
            lens = Lens(**kwargs)
        elif key == "focal_mm":
            lens = Lens(focal_mm=x, **kwargs)
        else:
            lens = Lens.from_fov(x, "horizontal" if key == "fov_deg" else "vertical", **kwargs)
    except SplatfilmError as e:
        at.fail(str(e).removeprefix("lens: "))
    if lens.focus_distance is not None and (problem := _focus_problem(lens.focus_distance, lens.focal_mm)):
        at["focus_distance"].fail(problem)
    return lens, focus


def _focus_problem(focus_distance: float, focal_mm: float) -> str | None:
    """Why a lens of `focal_mm` (mm) cannot focus at `focus_distance` (metres), or None. A thin
    lens images a point at distance S behind it at f S / (S - f): nothing at or inside f is in
    focus anywhere (depth of field would clamp it there and blur the frame for no reason)."""
    if focus_distance * 1000.0 > focal_mm:
        return None
    if focus_distance <= 0:  # only a subject's distance can be: its camera z
        return f"{focus_distance:g} m: the subject focused on is behind the camera"
    return (f"{focus_distance:g} m is nearer than the focal length ({focal_mm:g} mm): no lens focuses there "
            f"(focus further than {focal_mm / 1000:g} m; a real lens's closest focus is further still)")


def _resolution(value: Any, at: At) -> tuple[int, int]:
    if value is None:
        return 1920, 1080
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        at.fail(f"expected [width, height] in pixels, got {show(value)}")
    return integer(value[0], at[0], 1), integer(value[1], at[1], 1)


def _points(value: Any, at: At, outer: dict | None) -> dict[str, np.ndarray]:
    # Outer points may also be moving targets (functions of shot time), e.g. a film's animated assets.
    points = {k: v if callable(v) else np.asarray(v, dtype=np.float64).reshape(3) for k, v in (outer or {}).items()}
    if value is None:
        return points
    if not isinstance(value, dict):
        at.fail(f"expected a mapping of names to [x, y, z], got {show(value)}")
    for name, p in value.items():
        points[str(name)] = vec3(p, at[str(name)])
    return points


def _keyframes(value: Any, at: At, fps: Fraction, first_frame: int, points: dict, interp: dict,
               lens: Lens, lens_focus: Focus) -> list[Keyframe]:
    if not isinstance(value, list) or not value:
        at.fail("expected a non-empty list of keyframes")
    keys: list[Keyframe] = []
    prev: tuple[float, str] | None = None
    for i, raw in enumerate(value):
        k_at = at[i]
        data = mapping(raw, k_at, _KEY)
        t, field = key_time(data, k_at, fps, first_frame)
        if prev is not None and not t > prev[0]:
            k_at[field].fail(f"keyframe is not after keyframes[{i - 1}] ({prev[0]:g} s): keyframes must be in time order")
        prev = (t, field)
        if "position" not in data:
            k_at.fail("missing `position` [x, y, z]")
        position = _point(data["position"], k_at["position"], points)
        target, rotation = _orientation(data, k_at, position, points)
        ease_in, ease_out = key_ease(data, k_at)
        kwargs = {}
        for key in ("tension", "continuity", "bias"):
            v = number(data[key], k_at[key]) if key in data else interp[key]
            if not -1.0 <= v <= 1.0:
                k_at[key].fail(f"must be in [-1, 1], got {v}")
            kwargs[key] = v
        keys.append(Keyframe(
            time=t, position=position, look_at=target, rotation=rotation,
            roll_deg=number(data["roll"], k_at["roll"]) if "roll" in data and target is not None else 0.0,
            focal_mm=number(data["focal_mm"], k_at["focal_mm"], "positive") if "focal_mm" in data else None,
            focus_distance=(_focus(data["focus_distance"], k_at["focus_distance"], points)
                            if "focus_distance" in data else None),
            ease_in=ease_in, ease_out=ease_out, **kwargs,
        ))
    for i, k in enumerate(keys):  # a key's own focus against its own (or the lens's) focal length
        focal = lens.focal_mm if k.focal_mm is None else k.focal_mm
        focus = lens_focus if k.focus_distance is None else k.focus_distance
        # A subject's distance is known only on the frames (checked there, parse_shot).
        if focus is not None and not isinstance(focus, FocusOn) and (problem := _focus_problem(focus, focal)):
            at[i]["focus_distance" if k.focus_distance is not None else "focal_mm"].fail(problem)
    # The path's own ease applies to its two ends unless those keys set theirs.
    first, last = value[0], value[-1]
    if not ({"ease", "ease_out"} & set(first)):
        keys[0].ease_out = interp["ease"]
    if not ({"ease", "ease_in"} & set(last)):
        keys[-1].ease_in = interp["ease"]
    return keys


def _interpolation(value: Any, at: At) -> dict:
    data = mapping({} if value is None else value, at, _INTERP)
    out: dict[str, Any] = {}
    for key in ("tension", "continuity", "bias"):
        out[key] = number(data.get(key, 0.0), at[key])
        if not -1.0 <= out[key] <= 1.0:
            at[key].fail(f"must be in [-1, 1], got {out[key]}")
    out["ease"] = key_ease(data, at)[0] if "ease" in data else 0.0
    speed = data.get("speed", "keyframes")
    if speed not in ("keyframes", "constant"):
        at["speed"].fail(f"must be 'keyframes' (keys at their times) or 'constant' (even speed), got {show(speed)}")
    out["constant_speed"] = speed == "constant"
    loop = data.get("loop", False)
    if not isinstance(loop, bool):
        at["loop"].fail(f"expected true or false, got {show(loop)}")
    out["loop"] = loop
    return out


def _camera(value: Any, at: At, points: dict, lens: Lens, lens_focus: Focus) -> Pose:
    data = mapping(value, at, _CAMERA)
    if "position" not in data:
        at.fail("missing `position` [x, y, z]")
    position = _point(data["position"], at["position"], points)
    target, rotation = _orientation(data, at, position, points)
    focal = number(data["focal_mm"], at["focal_mm"], "positive") if "focal_mm" in data else lens.focal_mm
    focus = _focus(data["focus_distance"], at["focus_distance"], points) if "focus_distance" in data else lens_focus
    if focus is not None and not isinstance(focus, FocusOn) and (problem := _focus_problem(focus, focal)):
        at["focus_distance" if "focus_distance" in data else "focal_mm"].fail(problem)
    if target is not None:
        roll = number(data["roll"], at["roll"]) if "roll" in data else 0.0
        return Pose.look_at(position, target, roll_deg=roll, focal_mm=focal, focus_distance=focus)
    return Pose(position, rotation, focal, focus)


def _target(value: Any, at: At, points: dict, fps: Fraction, first_frame: int) -> Target:
    """A point, or a moving one: {keyframes: [{time|frame, position}, ...]}."""
    if isinstance(value, dict):
        data = mapping(value, at, {"keyframes"})
        keys = data.get("keyframes")
        if not isinstance(keys, list) or not keys:
            at["keyframes"].fail("expected a non-empty list of {time|frame, position}")
        times, pts = [], []
        for i, raw in enumerate(keys):
            k = mapping(raw, at["keyframes"][i], {"time", "frame", "position"})
            t, field = key_time(k, at["keyframes"][i], fps, first_frame)
            if times and not t > times[-1]:
                at["keyframes"][i][field].fail(f"is not after keyframes[{i - 1}] ({times[-1]:g} s)")
            if "position" not in k:
                at["keyframes"][i].fail("missing `position` [x, y, z]")
            times.append(t)
            pts.append(_point(k["position"], at["keyframes"][i]["position"], points))
        return PointTrack(np.array(times), np.array(pts))
    if isinstance(value, str) and callable(points.get(value)):
        return points[value]  # a moving target named by the caller (an animated asset)
    return _point(value, at, points)


def _move(data: dict, at: At, kind: str, points: dict, fps: Fraction, first_frame: int) -> Any:
    """The move dataclass of `kind` (`moves.MOVES` or `STARTING_MOVES`), its fields read from `data`
    as their `param` kinds say."""
    cls = _KINDS[kind]
    spec = fields(cls)
    mapping(data, at, {f.name for f in spec} | _TIMING)
    params: dict[str, Any] = {}
    for f in spec:
        if f.name not in data:
            if f.default is MISSING:
                at.fail(f"{kind} needs `{f.name}`")
            continue
        v, v_at, vkind = data[f.name], at[f.name], param_kind(f)
        if vkind in ("number", "positive", "nonneg"):
            params[f.name] = number(v, v_at, vkind)
        elif vkind == "int":
            params[f.name] = integer(v, v_at)
        elif vkind == "vec3":
            params[f.name] = vec3(v, v_at)
        elif vkind == "point":
            params[f.name] = _point(v, v_at, points)
        elif vkind == "focus":
            params[f.name] = _focus(v, v_at, points)
        else:
            params[f.name] = _target(v, v_at, points, fps, first_frame)
    try:  # what the move itself refuses (a choice of fields), placed at the move
        return cls(**params)
    except SplatfilmError as e:
        at.fail(str(e))


def _move_span(data: dict, at: At, fps: Fraction, first_frame: int) -> Span:
    if "span" in data and "frames" in data:
        at.fail("give `span` (seconds) or `frames` (film frame numbers), not both")
    start = end = None
    if "span" in data:
        v = data["span"]
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            at["span"].fail(f"expected [start, end] in seconds, got {show(v)}")
        start, end = number(v[0], at["span"][0]), number(v[1], at["span"][1])
        if start < 0:
            at["span"].fail(f"starts before the shot ({start} s)")
        if not end > start:
            at["span"].fail(f"must end after it starts, got [{start}, {end}]")
    if "frames" in data:
        v = data["frames"]
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            at["frames"].fail(f"expected [first, last] film frame numbers, got {show(v)}")
        f0, f1 = integer(v[0], at["frames"][0]), integer(v[1], at["frames"][1])
        if f0 < first_frame:
            at["frames"].fail(f"starts before the shot's first cut frame {first_frame}")
        if not f1 > f0:
            at["frames"].fail(f"must end after it starts, got [{f0}, {f1}]")
        start, end = float(Fraction(f0 - first_frame) / fps), float(Fraction(f1 - first_frame) / fps)
    ease_in, ease_out = key_ease(data, at)
    return Span(start, end, ease_in, ease_out)


def _moves(value: Any, at: At, base, points: dict, fps: Fraction, first_frame: int, lens: Lens, lens_focus: Focus,
           duration: float, times: np.ndarray, end: float):
    """Lay the moves over `base` (a Pose, a path, or None when the first move starts the camera).
    duration: seconds to the last frame, where moves end by default; end: the shot's end (one
    frame later), where a move that `loops` ends. Each move is tried at every frame `times` as
    it is added, so an error names the move."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        at.fail("expected at least one move")
    path = base
    for i, raw in enumerate(items):
        m_at = at[i] if isinstance(value, list) else at
        if not isinstance(raw, dict):
            m_at.fail(f"expected a mapping with a `type`, got {show(raw)}")
        kind = raw.get("type")
        if "type" not in raw:
            m_at.fail(f"missing `type` (one of {', '.join(sorted(_KINDS))})")
        if not isinstance(kind, str) or kind not in _KINDS:
            m_at["type"].fail(f"unknown move {show(kind)} (one of {', '.join(sorted(_KINDS))})")
        move = _move(raw, m_at, kind, points, fps, first_frame)
        span = _move_span(raw, m_at, fps, first_frame)
        if loops(move, span):
            span = Span(None, end)
        if kind in STARTING_MOVES:
            if path is not None:
                m_at["type"].fail(f"{kind} places the camera itself, so it must be the first move and the shot "
                                  "can have no `camera` or `keyframes`")
            if "from" in raw:
                m_at["from"].fail(f"{kind} places the camera itself; `from` does not apply")
            path = move.path(duration, focal_mm=lens.focal_mm, focus_distance=lens_focus, span=span)
            _try(path, times, m_at)
            continue
        if "from" in raw:
            if path is not None:
                m_at["from"].fail("only the first move of a shot without `camera` or `keyframes` may say where it starts")
            aim = getattr(move, "target", getattr(move, "pivot", None))
            if aim is None or not isinstance(aim, np.ndarray):
                m_at["from"].fail(f"{kind} has no fixed target to aim the starting camera at; give `camera` instead")
            start = _point(raw["from"], m_at["from"], points)
            if np.linalg.norm(aim - start) < 1e-9:
                m_at["from"].fail("the camera starts at its own look-at target")
            path = Pose.look_at(start, aim, focal_mm=lens.focal_mm, focus_distance=lens_focus)
        if path is None:
            m_at.fail("the shot needs a starting camera: give `camera: {position, look_at}`, `from` in the first "
                      "move, or `keyframes`")
        path = lay(path, move, span=span, duration=duration)
        _try(path, times, m_at)
    return path


def _try(path, times: np.ndarray, at: At) -> None:
    """Sample `path` at `times`; errors only sampling reveals (a target reached) name `at`."""
    try:
        path.sample(times)
    except SplatfilmError as e:
        at.fail(str(e))


def _first_frame(data: dict, at: At, handles: int) -> int:
    """Film frame number of the shot's first cut frame: `frame_range`'s first, or `handles`
    after `first_frame` (the first frame rendered, its head handle's first)."""
    given = [k for k in ("duration", "frames", "frame_range") if k in data]
    if len(given) > 1:
        at.fail(f"give one of duration, frames or frame_range, not {' and '.join(given)}")
    if "frame_range" in data:
        if "first_frame" in data:
            at["first_frame"].fail("frame_range already sets the first frame")
        v = data["frame_range"]
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            at["frame_range"].fail(f"expected [first, last] film frame numbers, got {show(v)}")
        f0, f1 = integer(v[0], at["frame_range"][0]), integer(v[1], at["frame_range"][1])
        if f1 < f0:
            at["frame_range"].fail(f"last frame {f1} is before first frame {f0} (a zero-length shot)")
        return f0
    return (integer(data["first_frame"], at["first_frame"]) if "first_frame" in data else FIRST_FRAME) + handles


def _frame_count(data: dict, at: At, fps: Fraction, keys: list[Keyframe] | None, loop: bool) -> int:
    """Number of frames from duration / frames / frame_range, or from the keyframes."""
    if "frame_range" in data:
        return data["frame_range"][1] - data["frame_range"][0] + 1
    if "frames" in data:
        n = integer(data["frames"], at["frames"])
        if n < 1:
            at["frames"].fail(f"a shot needs at least one frame, got {n} (a zero-length shot)")
        return n
    if "duration" in data:
        d = number(data["duration"], at["duration"])
        if not d > 0:
            at["duration"].fail(f"must be > 0 seconds, got {data['duration']} (a zero-length shot)")
        n = duration_frames(d, fps)
        if n < 1:
            at["duration"].fail(f"{d} s is shorter than one frame at {fps} fps")
        return n
    if keys is None:
        at.fail("missing `duration` (seconds), `frames` or `frame_range`")
    if loop:
        at["interpolation"]["loop"].fail("a loop needs `duration`, `frames` or `frame_range`: "
                                         "the loop returns to its first key at the shot's end")
    return frames_through(keys[-1].time, fps)


# ---- entry points -----------------------------------------------------------------------------------


def parse_shot(data: Any, source: str = "<shot>", where: str = "", *, points: dict | None = None,
               defaults: dict | None = None, default_name: str = "shot", handles: int = 0,
               numbered_alone: bool = False) -> Shot:
    """A `Shot` from a parsed YAML mapping (a shot file's content, or one shot of a larger file).

    source: file name for messages; where: the shot's place in that file (e.g. "shots[2]");
    points: named points [3] defined outside the shot (e.g. by a film script), which the
    shot's own `points` extend; a value may instead be a moving target, a function of shot
    times [T] (seconds) -> points [T,3]: it moves where a target may move (look_at, follow)
    and stands for its first-frame position elsewhere; defaults: top-level fields the shot inherits unless it sets
    them (e.g. a film's fps, resolution and lens; a lens it sets is laid over the inherited
    one field by field, `_lens_over`); handles: frames the shot will be rendered with before
    its cut (a film's, `Shot.with_handles`), so that `first_frame` numbers the first of them
    and the cut starts `handles` frames later, while a `frame_range` is the cut's own. The
    shot returned is the cut: its first_frame the number of its first cut frame, where its
    time 0 is, so a key's or a move's `frame: N` is file frame N. numbered_alone: the shot's
    frame numbers are those it has rendered alone, without handles (a shot file a film
    includes: its author saw the cut start at its `first_frame`), so `frame: N` keeps its place
    in the cut, as its `time:` keys do, and shows on file N + handles. Raises SplatfilmError
    naming the field.
    """
    at = At(source, where)
    if not isinstance(data, dict):
        at.fail(f"a shot is a mapping of fields, got {show(data)}")
    inherited = dict(defaults or {})
    if "frame_range" in data:  # it sets the first frame: an inherited one would read as given twice
        inherited.pop("first_frame", None)
    if inherited.get("lens") is not None and "lens" in data:  # `lens: null` is the inherited lens, as no `lens` is
        own = data["lens"]
        data = {**data, "lens": inherited["lens"] if own is None else _lens_over(inherited["lens"], own, at["lens"])}
    data = {**inherited, **data}
    mapping(data, at, _TOP)
    schema_version(data.get("version"), at["version"], SHOT_VERSION)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", name):
        at["name"].fail(f"expected a name of letters, digits, _ . - (used in file names), got {show(name)}")
    try:
        fps = parse_fps(data.get("fps", 24))
    except SplatfilmError as e:
        at["fps"].fail(str(e))
    width, height = _resolution(data.get("resolution"), at["resolution"])
    points_ = _points(data.get("points"), at["points"], points)
    lens, lens_focus = _lens(data.get("lens"), at["lens"], width, height, points_)

    has_keys, has_moves = "keyframes" in data, ("move" in data or "moves" in data)
    if "move" in data and "moves" in data:
        at.fail("give `move` (one) or `moves` (a list), not both")
    if not has_keys and not has_moves and "camera" not in data:
        at.fail("a shot needs `keyframes`, a `move` / `moves`, or a `camera` alone (a locked-off shot)")
    if has_keys and "camera" in data:
        at["camera"].fail("the keyframes already place the camera; `camera` is for moves")
    if "interpolation" in data and not has_keys:
        at["interpolation"].fail("only applies to keyframes")
    interp = _interpolation(data.get("interpolation"), at["interpolation"])

    first = _first_frame(data, at, handles)
    # The number a `frame:` counts from: the cut's first frame, as the file numbers it.
    numbered = first - handles if numbered_alone and "frame_range" not in data else first
    keys = _keyframes(data["keyframes"], at["keyframes"], fps, numbered, points_, interp, lens, lens_focus) if has_keys else None
    count = _frame_count(data, at, fps, keys, interp["loop"])
    end = float(Fraction(count) / fps)
    last_time = float(Fraction(count - 1) / fps)

    if keys is not None:
        for i, k in enumerate(keys):
            if k.time > end + 1e-9:
                at["keyframes"][i].fail(f"at {k.time:g} s, after the shot's end ({end:g} s, {count} frames at {fps} fps)")
        if interp["loop"] and len(keys) < 2:
            at["interpolation"]["loop"].fail("a loop needs at least two keyframes")
        if interp["loop"] and not keys[-1].time < end:
            at["keyframes"][len(keys) - 1].fail(f"a loop returns to the first key at the shot's end ({end:g} s); "
                                                "the last key must come before it")
        try:
            base = KeyframePath(keys, focal_mm=lens.focal_mm, focus_distance=lens_focus, loop=interp["loop"],
                                loop_time=end if interp["loop"] else None, constant_speed=interp["constant_speed"])
        except SplatfilmError as e:
            at["keyframes"].fail(str(e))
    elif "camera" in data:
        base = _camera(data["camera"], at["camera"], points_, lens, lens_focus)
    else:
        base = None

    # A camera with no moves is a locked-off shot: a MovePath with nothing laid over its Pose.
    path = MovePath(base, [], last_time) if isinstance(base, Pose) and not has_moves else base
    if has_moves:
        key = "moves" if "moves" in data else "move"
        if count < 2 and keys is None:
            at[key].fail("a move needs at least two frames (this shot has one)")
        path = _moves(data[key], at[key], base, points_, fps, numbered, lens, lens_focus, last_time, frame_times(count, fps),
                      end)
    shot = Shot(name=name, path=path, lens=lens, fps=fps, frame_count=count, first_frame=first,
                loop=interp["loop"])
    try:
        frames = shot.sample()  # between keys, and where moves pull focus or zoom: each frame's focus and focal length
        frames.to_cameras(lens)  # every frame must be a valid camera: catch what only sampling reveals
    except SplatfilmError as e:
        at.fail(str(e))
    for i in np.flatnonzero(np.isfinite(frames.focus_distance)):
        problem = _focus_problem(float(frames.focus_distance[i]), float(frames.focal_mm[i]))
        if problem:
            field = "keyframes" if has_keys else ("moves" if "moves" in data else "move") if has_moves else "camera"
            at[field].fail(f"frame {first + i}: focus_distance {problem}")
    return shot


def load_shot(path: str | FsPath, *, points: dict | None = None, defaults: dict | None = None,
              handles: int = 0, numbered_alone: bool = False) -> Shot:
    """The `Shot` described by a YAML file (see the module docstring; the arguments as `parse_shot`'s)."""
    p = FsPath(path)
    data = load_yaml(read_text(p, "shot YAML file"), str(path))
    return parse_shot(data, str(path), points=points, defaults=defaults, default_name=p.stem, handles=handles,
                      numbered_alone=numbered_alone)


# ---- writing -------------------------------------------------------------------------------------


def keyframe_fields(key: Keyframe, defaults: dict | None = None, digits: int | None = None) -> dict:
    """A keyframe as the mapping `keyframes:` reads back to the same key: `time`, `position`,
    `look_at` (+ `roll`) or `quat` (camera-to-world, roll folded in), and `focal_mm`,
    `focus_distance`, eases and `tension` / `continuity` / `bias` where set.

    defaults: what the reader gives this key for a field it leaves out (`tension`,
    `continuity`, `bias`: the shot's `interpolation`; `ease_in` / `ease_out`: its `ease` at the
    path's first and last key; 0 for any not named), so that only the fields that differ are
    written. digits: decimals that positions (m), angles (deg), quaternions and lens lengths
    (mm, m) are rounded to (None: written exactly); `time` is written as given."""
    d = {"tension": 0.0, "continuity": 0.0, "bias": 0.0, "ease_in": 0.0, "ease_out": 0.0, **(defaults or {})}

    def num(v: float) -> float:
        return float(v) if digits is None else round(float(v), digits) + 0.0  # + 0.0: no -0.0

    out: dict[str, Any] = {"time": float(key.time), "position": [num(v) for v in key.position]}
    if key.look_at is not None:
        out["look_at"] = [num(v) for v in key.look_at]
        if num(key.roll_deg):
            out["roll"] = num(key.roll_deg)
    else:
        out["quat"] = [num(v) for v in quat_from_rotation(key.orientation())]
    if key.focal_mm is not None:
        out["focal_mm"] = num(key.focal_mm)
    if isinstance(key.focus_distance, FocusOn):
        out["focus_distance"] = _focus_field(key.focus_distance)
    elif key.focus_distance is not None:
        out["focus_distance"] = num(key.focus_distance)
    ease_in, ease_out = float(key.ease_in), float(key.ease_out)
    if (ease_in, ease_out) != (d["ease_in"], d["ease_out"]):
        if ease_in == ease_out:
            out["ease"] = ease_in
        else:  # one of them alone leaves the other to its default
            out.update({k: v for k, v in (("ease_in", ease_in), ("ease_out", ease_out)) if v != d[k]})
    for name in ("tension", "continuity", "bias"):
        if float(getattr(key, name)) != d[name]:
            out[name] = float(getattr(key, name))
    return out


def lens_fields(lens: Lens, focus: FocusOn | None = None) -> dict:
    """A lens as the `lens:` mapping that reads back to it (image size aside: that is the
    shot's `resolution`): `focal_mm` and every other field that is not its default; `focus`, a
    subject the lens focuses on (which a `Lens` cannot hold), as its `focus_distance`."""
    out: dict[str, Any] = {"focal_mm": float(lens.focal_mm)}
    for f in fields(Lens):
        if f.name in ("focal_mm", "width", "height", "distortion"):
            continue
        value = getattr(lens, f.name)
        if value != f.default:
            out[f.name] = value if isinstance(value, str) else float(value)
    out.update({k: float(v) for k, v in zip(DISTORTION_KEYS, lens.distortion) if v})
    if focus is not None:
        out["focus_distance"] = _focus_field(focus)
    return out


def _focus_field(focus: FocusOn) -> str | list[float]:
    """A subject focus as a shot file gives it: its name, else its point."""
    if focus.name is not None:
        return focus.name
    if callable(focus.target):
        raise SplatfilmError("a focus on an unnamed moving subject cannot be written to a shot file")
    return [float(v) for v in np.asarray(focus.target, dtype=np.float64).reshape(3)]


def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        text = repr(float(value))
        if not math.isfinite(float(value)):
            raise SplatfilmError(f"cannot write the non-finite number {text} to a shot file")
        # repr round-trips exactly; YAML 1.1 (PyYAML) reads a float only with a '.' and a signed exponent.
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent and exponent[0] not in "+-":
            exponent = "+" + exponent
        return mantissa + (f"e{exponent}" if exponent else "")
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-/]*", text) and text not in ("true", "false", "null", "yes", "no", "on", "off"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def format_shot_yaml(fields: dict, indent: int = 0, comment: str | None = None) -> str:
    """YAML text of a shot's fields in the layout of `cameras/*.yaml`: one top-level field a
    line, small mappings and lists in flow style, and lists of mappings (keyframes, moves) one
    item a line. Numbers are written to round-trip exactly. `indent` spaces before every line
    (a shot inside a film script's `shots:` list); `comment`: a first line, as `# ...`."""
    pad = " " * indent
    lines = [f"{pad}# {line}" for line in (comment.splitlines() if comment else [])]
    for key, value in fields.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{pad}{_scalar(key)}:")
            lines.extend(f"{pad}  - {_flow(v)}" for v in value)
        else:
            lines.append(f"{pad}{_scalar(key)}: {_flow(value)}")
    return "\n".join(lines) + "\n"
