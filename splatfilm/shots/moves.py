"""Camera moves: each move described once, and the paths that lay moves over a camera.

A move is a small frozen dataclass of its parameters (metres, degrees, mm) with one method,
`apply(s, u)`: the camera of a path sample `s` moved by fraction u [T] of the move. `MOVES`
maps a shot file's move `type` to the dataclass, and a shot file's move fields are that
dataclass's fields, each read as its `param` kind says (`shots.shot_yaml`); so a new move
is one dataclass and one line in `MOVES`. `Orbit` and `Follow` (`STARTING_MOVES`) place the
camera themselves: their `path(duration)` starts a shot.

`lay` lays moves over the camera they start from, a `Pose` (a camera standing still) or any
path, and returns a `MovePath`; laying moves over a `MovePath` adds them, so moves compose,
and run at the same time unless their spans say otherwise:

    cam = Pose.look_at([0, -3, 1.2], [0, 0, 0.75], focal_mm=35)
    shot = lay(cam, Pedestal(height=1.0), Pan(degrees=30), duration=4)   # crane up while panning left

Each move is applied, in order, to the pose that the base and the moves before it give at
that instant, so directions are the camera's own at that moment ("dolly" goes where the
camera faces). A move's progress u runs from 0 to 1 over its span (default: the whole path),
shaped by its ease (`scene.easing.ease_curve`); before the span it has not started, after
it it has finished. A move that `loops` (whole turns, no ease, no span of its own) runs in a
shot over [0, frame_count / fps): the frame after its last would be its first.

Moves (shot file `type` in brackets; signs in the film crew's sense, see `pose` for
pan/tilt/roll):
    Dolly (dolly)     along the camera's horizontal heading (positive: push in)
    Truck (truck)     along the camera's horizontal right (positive: to the right)
    Pedestal (pedestal, crane)   straight up the world's z (positive: up)
    Pan, Tilt, Roll (pan, tilt, roll)   turn the camera about world up / its right axis / its
                      view axis
    Arc (arc)         swing around a vertical axis through `pivot` (positive: counter-clockwise
                      seen from above), turning with it; `Orbit` (orbit) starts a camera on a circle
    PushIn (push_in)  move along the line of sight towards a target, keeping it centred
    Zoom (zoom)       focal length change (geometric, the perceptually even zoom)
    RackFocus (rack_focus)   focus distance change (linear in dioptres, like a focus pull), to
                      or from a distance or a subject (`pose.FocusOn`), after the moves that
                      place the camera
    DollyZoom (dolly_zoom)   push in (or pull out) on a subject while the focal length follows
                      the distance, so the subject keeps its size in frame while the
                      background's perspective changes (the "Vertigo" shot)
    LookAt (look_at)  aim at a fixed or moving target; `Follow` (follow) also carries the
                      camera with it
    Handheld (handheld)   seeded, smooth shake in position and angle
Dolly, Truck and Pedestal take an optional `target` to keep aimed at while moving.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Protocol

import numpy as np
import splines

from splatfilm.errors import SplatfilmError
from splatfilm.scene.easing import check_ease, ease_curve
from splatfilm.scene.transforms import WORLD_UP, axis_rotation, look_at_rotation, rotation_about, rotation_slerp
from splatfilm.shots.pose import CameraPath, Focus, FocusOn, PathSample, Pose, Target, target_points

# ---- targets -------------------------------------------------------------------------------


@dataclass
class PointTrack:
    """A moving point: `points` [K,3] (metres) at strictly increasing `times` [K] (seconds),
    Catmull-Rom between them (linear for two), held before the first and after the last."""

    times: np.ndarray
    points: np.ndarray

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        self.points = np.asarray(self.points, dtype=np.float64).reshape(-1, 3)
        if len(self.times) != len(self.points) or len(self.times) == 0:
            raise SplatfilmError(f"a point track needs as many times as points "
                                 f"(got {len(self.times)} and {len(self.points)})")
        if np.any(np.diff(self.times) <= 0):
            raise SplatfilmError("a point track's times must be strictly increasing")
        self._spline = None if len(self.times) == 1 else splines.CatmullRom(list(self.points), grid=list(self.times))

    def __call__(self, times: np.ndarray | float) -> np.ndarray:
        """Where the point is at each of `times` [T] (seconds): [T,3] metres."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if self._spline is None:
            return np.broadcast_to(self.points[0], (len(times), 3)).copy()
        clipped = np.clip(times, self.times[0], self.times[-1])
        return np.array([self._spline.evaluate(float(t)) for t in clipped]).reshape(len(times), 3)


# ---- timing of a move ----------------------------------------------------------------------


@dataclass
class Span:
    """When a move runs: from `start` to `end` seconds (None: the path's own start / end),
    with ease-in (arrival) and ease-out (departure) in [0, 1] (`scene.easing.ease_curve`)."""

    start: float | None = None
    end: float | None = None
    ease_in: float = 0.0
    ease_out: float = 0.0

    def __post_init__(self) -> None:
        self.ease_in = check_ease(self.ease_in, "ease_in")
        self.ease_out = check_ease(self.ease_out, "ease_out")
        if self.start is not None and self.end is not None and not self.end > self.start:
            raise SplatfilmError(f"a move's span must end after it starts (got {self.start} to {self.end} s)")

    def progress(self, times: np.ndarray, start: float, end: float) -> np.ndarray:
        """Progress u [T] in [0, 1] at `times`, with `start` / `end` standing in for unset bounds."""
        t0 = start if self.start is None else self.start
        t1 = end if self.end is None else self.end
        if not t1 > t0:
            raise SplatfilmError(f"a move needs a span of time to run in (got {t0} to {t1} s); give the shot a duration")
        return ease_curve((times - t0) / (t1 - t0), self.ease_in, self.ease_out)


def _span(span: tuple[float | None, float | None] | Span | None, ease: float, ease_in: float | None,
          ease_out: float | None) -> Span:
    """A `Span` from `lay`'s timing arguments: a Span as given, or (start, end) seconds and eases."""
    if isinstance(span, Span):
        return span
    start, end = (None, None) if span is None else span
    return Span(start, end, ease if ease_in is None else ease_in, ease if ease_out is None else ease_out)


def _whole_turns(degrees: float) -> bool:
    return degrees != 0 and math.remainder(degrees, 360.0) == 0


def loops(move: Any, span: Span) -> bool:
    """Whether `move` laid over `span` repeats seamlessly: a whole number of turns (an `Arc` or
    `Orbit` of 360, -720, ... degrees) at an even speed (no ease) over the path's default span (no start
    or end of its own). Played over and over, such a move's frame after the last is its first:
    a shot gives it [0, frame_count / fps) (`shots.shot_yaml`), so its last frame is one step
    short of the first, as a turntable's frame range is cut in Blender; spanning first to last
    frame would show the start pose twice at the seam."""
    return (isinstance(move, (Arc, Orbit)) and _whole_turns(move.degrees) and span.start is None
            and span.end is None and span.ease_in == 0 and span.ease_out == 0)


# ---- move parameters ------------------------------------------------------------------------

PARAM_KINDS = ("number", "positive", "nonneg", "int", "vec3", "point", "target", "focus")
"""What a move parameter is. number: any finite number; positive: > 0; nonneg: >= 0; int: a
whole number; vec3: an offset [3] in metres; point: a fixed point [3] in metres (a shot file
may name one of its `points`); target: a point or a moving one (`Target`); focus: a distance
> 0 in metres or a subject to focus on (`pose.FocusOn`)."""


def param(kind: str, default: Any = MISSING) -> Any:
    """A move dataclass field of `kind` (one of `PARAM_KINDS`), required unless it has a
    `default`. The kind says how a shot file gives the field and what `lay` accepts."""
    if kind not in PARAM_KINDS:
        raise ValueError(f"unknown move parameter kind {kind!r}")
    return field(default=default, metadata={"kind": kind})


def param_kind(f: Any) -> str:
    """The kind (`PARAM_KINDS`) of a move dataclass field `f` (a `dataclasses.Field`)."""
    return f.metadata["kind"]


def check_params(move: Any) -> None:
    """Raise SplatfilmError naming the move and field if a positive or nonneg parameter is not."""
    for f in fields(move):
        value, kind = getattr(move, f.name), param_kind(f)
        if value is None:
            continue
        if kind == "focus" and isinstance(value, FocusOn):
            continue
        if kind in ("positive", "focus") and not value > 0:
            raise SplatfilmError(f"{move_type(move)}: {f.name} must be > 0, got {value}")
        if kind == "nonneg" and not value >= 0:
            raise SplatfilmError(f"{move_type(move)}: {f.name} must be >= 0, got {value}")


class Move(Protocol):
    """A camera move: a frozen dataclass of `param` fields with one method, `apply`.

    A move may also define `progress(span, times, start, end) -> u [T]` when its progress is
    not `Span.progress` (an aim that holds without a span, a shake that ramps in and out). A
    move that only pulls focus says `pulls_focus = True`: `MovePath` applies it after the
    moves that place the camera, so a subject's distance is measured from where they put it.
    """

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """Move the cameras of `s` [T] in place by fraction u [T] (0: not started, 1: done)."""


# ---- the moves ------------------------------------------------------------------------------


def _horizontal(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Unit vectors [T,3]: v with its world-up part removed; `fallback`'s where v is vertical."""
    h = v - np.sum(v * WORLD_UP, axis=-1, keepdims=True) * WORLD_UP
    n = np.linalg.norm(h, axis=-1, keepdims=True)
    hf = fallback - np.sum(fallback * WORLD_UP, axis=-1, keepdims=True) * WORLD_UP
    hf = hf / np.maximum(np.linalg.norm(hf, axis=-1, keepdims=True), 1e-12)
    return np.where(n > 1e-9, h / np.maximum(n, 1e-12), hf)


def _aim(s: PathSample, target: Target | None) -> None:
    """Turn the cameras of `s` to look at `target` (if one is given), world up kept up."""
    if target is not None:
        s.rotations = look_at_rotation(s.positions, target_points(target, s.times))


def _lens_value(values: np.ndarray, given: float | None, what: str, move: str) -> np.ndarray:
    """The starting lens values [T]: `given` if set, else the camera's (which must be set)."""
    if given is not None:
        return np.full_like(values, float(given))
    if np.any(np.isnan(values)):
        raise SplatfilmError(f"{move} needs the starting {what}: give the camera (or the lens) one")
    return values


@dataclass(frozen=True)
class Dolly:
    """Move `distance` metres along the camera's horizontal heading (positive: push in,
    negative: pull out), aiming at `target` all the way if one is given."""

    distance: float = param("number")
    target: Target | None = param("point", None)

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` dollied by `distance` * u [T] metres."""
        heading = _horizontal(s.rotations[:, :, 2], -s.rotations[:, :, 1])
        s.positions = s.positions + (self.distance * u)[:, None] * heading
        _aim(s, self.target)


@dataclass(frozen=True)
class Truck:
    """Move `distance` metres along the camera's horizontal right (negative: left), aiming at
    `target` all the way if one is given."""

    distance: float = param("number")
    target: Target | None = param("point", None)

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` trucked by `distance` * u [T] metres."""
        right = _horizontal(s.rotations[:, :, 0], s.rotations[:, :, 0])
        s.positions = s.positions + (self.distance * u)[:, None] * right
        _aim(s, self.target)


@dataclass(frozen=True)
class Pedestal:
    """Raise the camera `height` metres straight up the world's z (negative: down), aiming at
    `target` all the way if one is given. A crane shot's rise is the same move."""

    height: float = param("number")
    target: Target | None = param("point", None)

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` raised by `height` * u [T] metres."""
        s.positions = s.positions + (self.height * u)[:, None] * WORLD_UP
        _aim(s, self.target)


@dataclass(frozen=True)
class Pan:
    """Turn the camera `degrees` about the world's vertical (positive: left, counter-clockwise
    seen from above)."""

    degrees: float = param("number")

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` panned by `degrees` * u [T]."""
        s.rotations = axis_rotation("z", np.radians(self.degrees * u)) @ s.rotations


@dataclass(frozen=True)
class Tilt:
    """Tilt the camera `degrees` about its own right axis (positive: up)."""

    degrees: float = param("number")

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` tilted by `degrees` * u [T]."""
        # Rotating about the camera's +x turns +z (forward) towards -y, which is up in OpenCV axes.
        s.rotations = s.rotations @ axis_rotation("x", np.radians(self.degrees * u))


@dataclass(frozen=True)
class Roll:
    """Roll the camera `degrees` about its view axis (positive: its top turns right)."""

    degrees: float = param("number")

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` rolled by `degrees` * u [T]."""
        s.rotations = s.rotations @ axis_rotation("z", np.radians(self.degrees * u))


@dataclass(frozen=True)
class Arc:
    """Swing the camera `degrees` around the vertical axis through `pivot` [3] (metres;
    positive: counter-clockwise seen from above), turning with it: a camera aimed at the
    pivot stays aimed."""

    degrees: float = param("number")
    pivot: np.ndarray = param("point")

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` swung by `degrees` * u [T] about the pivot's vertical."""
        R = axis_rotation("z", np.radians(self.degrees * u))
        pivot = np.asarray(self.pivot, dtype=np.float64)
        s.positions = pivot + np.einsum("tij,tj->ti", R, s.positions - pivot)
        s.rotations = R @ s.rotations


@dataclass(frozen=True)
class Zoom:
    """Zoom to `to_focal_mm` (mm) from the camera's focal length, or from `from_focal_mm`;
    geometric in the focal length, the perceptually even zoom."""

    to_focal_mm: float = param("positive")
    from_focal_mm: float | None = param("positive", None)

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The focal lengths of `s` a fraction u [T] of the way, geometrically."""
        f0 = _lens_value(s.focal_mm, self.from_focal_mm, "focal length", "zoom")
        s.focal_mm = f0 * (self.to_focal_mm / f0) ** u


@dataclass(frozen=True)
class RackFocus:
    """Pull focus to `to_distance` from the camera's focus distance, or from `from_distance`;
    linear in dioptres, like a focus puller's. Either may be metres or a subject (a
    `FocusOn`): the pull starts from, or lands on and then stays on, that subject's camera-z
    distance at each moment."""

    to_distance: Focus = param("focus")
    from_distance: Focus = param("focus", None)
    pulls_focus = True  # a class attribute, not a field: MovePath applies it last

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The focus distances of `s` a fraction u [T] of the way, linearly in dioptres."""
        if isinstance(self.from_distance, FocusOn):
            d0 = self.from_distance.distances(s.times, s.positions, s.rotations)
        else:
            d0 = _lens_value(s.focus_distance, self.from_distance, "focus distance", "rack_focus")
        d1 = self.to_distance
        if isinstance(d1, FocusOn):
            d1 = d1.distances(s.times, s.positions, s.rotations)
        s.focus_distance = 1.0 / ((1.0 - u) / d0 + u / d1)


@dataclass(frozen=True)
class PushIn:
    """Move straight along the line of sight to `target`, keeping it centred: `distance`
    metres (negative: pull back), or until `to_distance` metres from it (exactly one)."""

    target: Target = param("point")
    distance: float | None = param("number", None)
    to_distance: float | None = param("positive", None)

    def __post_init__(self) -> None:
        if (self.distance is None) == (self.to_distance is None):
            raise SplatfilmError("push_in needs exactly one of `distance` or `to_distance`")

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` a fraction u [T] of the way in, aimed at the target."""
        tgt = target_points(self.target, s.times)
        offset = tgt - s.positions
        d0 = np.linalg.norm(offset, axis=1)
        if np.any(d0 < 1e-9):
            raise SplatfilmError("push_in: the target is at the camera itself")
        travel = d0 - self.to_distance if self.distance is None else np.full_like(d0, self.distance)
        if np.any(travel >= d0):
            raise SplatfilmError(f"push_in: moving {float(np.max(travel)):.3f} m would reach the target "
                                 f"({float(np.min(d0)):.3f} m away)")
        s.positions = s.positions + (travel * u / d0)[:, None] * offset
        s.rotations = look_at_rotation(s.positions, tgt)


@dataclass(frozen=True)
class DollyZoom:
    """Push in on the subject at `target` by `distance` metres (negative: pull out), or until
    the focal length is `to_focal_mm` (mm; exactly one), scaling the focal length with the
    distance to the subject so that it keeps its size in frame."""

    target: Target = param("point")
    distance: float | None = param("number", None)
    to_focal_mm: float | None = param("positive", None)

    def __post_init__(self) -> None:
        if (self.distance is None) == (self.to_focal_mm is None):
            raise SplatfilmError("dolly_zoom needs exactly one of `distance` or `to_focal_mm`")

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` a fraction u [T] of the way, aimed at the subject, focal lengths scaled."""
        tgt = target_points(self.target, s.times)
        offset = tgt - s.positions
        d0 = np.linalg.norm(offset, axis=1)
        if np.any(d0 < 1e-9):
            raise SplatfilmError("dolly_zoom: the subject is at the camera itself")
        f0 = _lens_value(s.focal_mm, None, "focal length", "dolly_zoom")
        # Image size of the subject ~ focal / distance: keep that ratio, move the camera.
        travel = d0 * (1.0 - self.to_focal_mm / f0) if self.distance is None else np.full_like(d0, self.distance)
        if np.any(travel >= d0):
            raise SplatfilmError(f"dolly_zoom: moving {float(np.max(travel)):.3f} m would reach the subject "
                                 f"({float(np.min(d0)):.3f} m away)")
        d = d0 - travel * u
        s.positions = tgt - (d / d0)[:, None] * offset
        s.rotations = look_at_rotation(s.positions, tgt)
        s.focal_mm = f0 * d / d0


@dataclass(frozen=True)
class LookAt:
    """Aim at `target`, fixed or moving (a `PointTrack` or a function of time), rolled by
    `roll` degrees. Without a span it aims all through; with one, the camera turns onto the
    target over the span (eased) and stays on it."""

    target: Target = param("target")
    roll: float = param("number", 0.0)

    def progress(self, span: Span, times: np.ndarray, start: float, end: float) -> np.ndarray:
        """u [T]: 1 all through without a span of its own, else `span.progress`."""
        if span.start is None and span.end is None:
            return np.ones_like(times)
        return span.progress(times, start, end)

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` turned a fraction u [T] of the way onto the target."""
        aimed = look_at_rotation(s.positions, target_points(self.target, s.times), WORLD_UP, self.roll)
        s.rotations = aimed if np.all(u >= 1.0) else rotation_slerp(s.rotations, aimed, u)


@dataclass(frozen=True)
class Handheld:
    """Seeded, smooth shake: a sum of sinusoids per axis, position in the camera's own axes
    (RMS `amplitude_m` metres per axis) and angle about them (RMS `amplitude_deg` degrees),
    around `frequency_hz` (Hz). The same seed always gives the same shake. Without a span it
    runs all through at full strength; within a span it builds up from nothing over the
    span's first 1 / frequency_hz seconds (one sway of the shake; at most half the span) and
    dies away over its last, each ramp shaped by the span's ease as a move's progress is (0:
    a steady ramp, 1: starting or stopping at zero rate). An ease without a span ramps the
    shake in at the first frame (ease_out) or out at the last (ease_in)."""

    amplitude_m: float = param("nonneg", 0.004)
    amplitude_deg: float = param("nonneg", 0.25)
    frequency_hz: float = param("positive", 1.0)
    seed: int = param("int", 0)

    def progress(self, span: Span, times: np.ndarray, start: float, end: float) -> np.ndarray:
        """The shake's strength u [T] in [0, 1] at `times` (seconds): 0 outside the span, 1
        inside it once ramped in, the ramps as the class docstring says; an end the span
        leaves unset (the path's `start` / `end` stand in) is open unless eased there."""
        t0 = start if span.start is None else span.start
        t1 = end if span.end is None else span.end
        u = np.ones_like(times)
        # A stepped shake jumped by as much as its whole amplitude between two frames.
        ramp = min(1.0 / self.frequency_hz, max(t1 - t0, 0.0) / 2)
        if span.start is not None or span.ease_out > 0:
            u = u * (ease_curve((times - t0) / ramp, 1.0, span.ease_out) if ramp > 0 else (times >= t0))
        if span.end is not None or span.ease_in > 0:
            u = u * (ease_curve((t1 - times) / ramp, 1.0, span.ease_in) if ramp > 0 else (times <= t1))
        return u

    def _noise(self, times: np.ndarray) -> np.ndarray:
        """[T,6] unit-RMS smooth noise: 3 translation, 3 rotation channels."""
        rng = np.random.default_rng(self.seed)
        freqs = self.frequency_hz * rng.uniform(0.4, 2.5, size=(6, 4))
        phases = rng.uniform(0.0, 2 * math.pi, size=(6, 4))
        amps = 1.0 / freqs  # more sway than jitter, like a body holding a camera
        amps /= np.sqrt(np.sum(amps**2, axis=1, keepdims=True) / 2)  # RMS of each channel = 1
        return np.sum(amps * np.sin(2 * math.pi * freqs * times[:, None, None] + phases), axis=2)

    def apply(self, s: PathSample, u: np.ndarray) -> None:
        """The cameras of `s` shaken, the shake scaled by u [T]."""
        n = self._noise(s.times) * u[:, None]
        s.positions = s.positions + np.einsum("tij,tj->ti", s.rotations, n[:, :3] * self.amplitude_m)
        rotvec = np.radians(n[:, 3:] * self.amplitude_deg)
        angle = np.linalg.norm(rotvec, axis=1)
        axis = np.where(angle[:, None] > 0, rotvec / np.maximum(angle, 1e-300)[:, None], [0.0, 0.0, 1.0])
        s.rotations = s.rotations @ rotation_about(axis, angle)


# ---- paths made of moves ----------------------------------------------------------------------


@dataclass
class MovePath:
    """A base (a still `Pose` or any path) with moves laid over it, in order, each with its
    `Span`; implements `CameraPath`. Build one with `lay`.

    duration: seconds the moves run by default when the base is a Pose (a base path's own
    span otherwise); moves with their own span may run past it.
    """

    base: Pose | CameraPath
    moves: list[tuple[Move, Span]] = field(default_factory=list)
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.duration is not None and not self.duration >= 0:
            raise SplatfilmError(f"a move's duration must be >= 0 seconds, got {self.duration}")

    @property
    def start(self) -> float:
        """Seconds: the base path's start (0 for a Pose)."""
        return 0.0 if isinstance(self.base, Pose) else float(self.base.start)

    @property
    def _default_end(self) -> float:
        if self.duration is not None:
            return self.start + self.duration
        return self.start if isinstance(self.base, Pose) else float(self.base.end)

    @property
    def end(self) -> float:
        """Seconds: the latest of the default end and the moves' own span ends."""
        ends = [self._default_end] + [span.end for _, span in self.moves if span.end is not None]
        return float(max(ends))

    @property
    def key_times(self) -> list[float]:
        """Where moves start and stop (and the base path's keys): times worth a frustum in a preview."""
        times = {self.start, self.end}
        times.update(getattr(self.base, "key_times", []))
        for _, span in self.moves:
            times.update(t for t in (span.start, span.end) if t is not None)
        return sorted(times)

    def sample(self, times: np.ndarray | float) -> PathSample:
        """The cameras at `times` [T] (seconds): the base's, each move applied in order, those
        that only pull focus after the rest (a focus on a subject measured from the camera
        as placed); the sample's focus is final (no `refocus`)."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        s = PathSample.from_pose(self.base, times) if isinstance(self.base, Pose) else self.base.sample(times)
        end = self._default_end
        for pulls in (False, True):
            for move, span in self.moves:
                if getattr(move, "pulls_focus", False) == pulls:
                    own = getattr(move, "progress", None)
                    move.apply(s, span.progress(times, self.start, end) if own is None
                               else own(span, times, self.start, end))
            s.settle_focus()  # the camera placed: a subject's distance from where it is
        return s


def lay(camera: Pose | CameraPath, *moves: Move, duration: float | None = None,
        span: tuple[float | None, float | None] | Span | None = None, ease: float = 0.0,
        ease_in: float | None = None, ease_out: float | None = None) -> MovePath:
    """`camera` (a `Pose` or any path) with `moves` laid over it, all in the same span.

    duration: seconds the moves run by default over a Pose (a MovePath keeps its own unless
    given); span: (start, end) seconds, None ends meaning the path's, or a `Span`; ease (or
    ease_in / ease_out) in [0, 1]. Laid over a `MovePath`, the moves are added after its own.
    Raises SplatfilmError for a parameter out of its range (`check_params`).
    """
    when = _span(span, ease, ease_in, ease_out)
    for move in moves:
        check_params(move)
    laid = [(move, when) for move in moves]
    if isinstance(camera, MovePath):
        return replace(camera, moves=[*camera.moves, *laid], duration=camera.duration if duration is None else duration)
    if isinstance(camera, Pose) or isinstance(camera, CameraPath):
        return MovePath(camera, laid, duration)
    raise SplatfilmError(f"a move starts from a Pose or a path, got {type(camera).__name__}")


# ---- moves that place the camera themselves ------------------------------------------------------


@dataclass(frozen=True)
class Orbit:
    """Circle `center` [3] at `radius` metres and `height` metres (default the centre's z),
    starting at azimuth `start_deg` degrees (counter-clockwise from +x; -90 is on the -y side)
    and sweeping `degrees` (positive: counter-clockwise seen from above), looking at `look_at`
    [3] (default the centre)."""

    center: np.ndarray = param("point")
    radius: float = param("positive")
    height: float | None = param("number", None)
    start_deg: float = param("number", -90.0)
    degrees: float = param("number", 360.0)
    look_at: np.ndarray | None = param("point", None)

    def path(self, duration: float, *, focal_mm: float | None = None, focus_distance: Focus = None,
             span: Span | None = None) -> MovePath:
        """The orbit over `duration` seconds (the sweep eased by `span`), with `focal_mm` (mm)
        and `focus_distance` (metres) if given."""
        check_params(self)
        c = np.asarray(self.center, dtype=np.float64).reshape(3)
        a = math.radians(self.start_deg)
        z = c[2] if self.height is None else float(self.height)
        pos = np.array([c[0] + self.radius * math.cos(a), c[1] + self.radius * math.sin(a), z])
        aim = c if self.look_at is None else np.asarray(self.look_at, dtype=np.float64).reshape(3)
        base = Pose.look_at(pos, aim, focal_mm=focal_mm, focus_distance=focus_distance)
        # The look-at point turns with the camera only if it lies on the orbit's axis.
        moves: list[tuple[Move, Span]] = [(Arc(float(self.degrees), c), span or Span())]
        if np.linalg.norm(aim[:2] - c[:2]) > 1e-9:
            moves.append((LookAt(aim), Span()))
        return MovePath(base, moves, float(duration))


@dataclass(frozen=True)
class Follow:
    """A camera carried with a moving `target`, at `offset` [3] metres from it (world axes),
    looking at `target + look_offset` [3]."""

    target: Target = param("target")
    offset: np.ndarray = param("vec3")
    look_offset: np.ndarray | tuple[float, float, float] = param("vec3", (0.0, 0.0, 0.0))

    def __post_init__(self) -> None:
        gap = np.asarray(self.offset, dtype=np.float64).reshape(3) - np.asarray(self.look_offset, dtype=np.float64)
        if np.linalg.norm(gap) < 1e-9:
            raise SplatfilmError("follow: the camera offset equals the look offset (the camera would look at itself)")

    def path(self, duration: float, *, focal_mm: float | None = None, focus_distance: Focus = None,
             span: Span | None = None) -> MovePath:
        """The camera following for `duration` seconds from 0 (it follows throughout: `span`
        does not apply), with `focal_mm` (mm) and `focus_distance` (metres) if given."""
        return MovePath(FollowPath(self, 0.0, float(duration), focal_mm, focus_distance), [], duration)


@dataclass
class FollowPath:
    """The path of a `Follow` over [start, end] seconds; implements `CameraPath`. Before and
    after that span the camera holds where the target was at its ends."""

    follow: Follow
    start: float
    end: float
    focal_mm: float | None = None
    focus_distance: Focus = None

    def sample(self, times: np.ndarray | float) -> PathSample:
        """The cameras at `times` [T] (seconds)."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        pts = target_points(self.follow.target, np.clip(times, self.start, max(self.end, self.start)))
        pos = pts + np.asarray(self.follow.offset, dtype=np.float64).reshape(3)
        s = PathSample(times, pos, look_at_rotation(pos, pts + np.asarray(self.follow.look_offset, np.float64)),
                       float("nan") if self.focal_mm is None else self.focal_mm)
        s.follow_focus(self.focus_distance)
        return s


# ---- shot files' move types ------------------------------------------------------------------------

MOVES: dict[str, type] = {
    "dolly": Dolly, "truck": Truck, "pedestal": Pedestal, "crane": Pedestal, "pan": Pan, "tilt": Tilt,
    "roll": Roll, "arc": Arc, "push_in": PushIn, "dolly_zoom": DollyZoom, "zoom": Zoom, "rack_focus": RackFocus,
    "look_at": LookAt, "handheld": Handheld,
}
"""A shot file's move `type` -> the dataclass of a move laid over the camera."""

STARTING_MOVES: dict[str, type] = {"orbit": Orbit, "follow": Follow}
"""A shot file's move `type` -> the dataclass of a move that places the camera itself (`path`)."""


def move_type(move: Any) -> str:
    """The shot-file `type` of a move dataclass instance (its first name in `MOVES` or `STARTING_MOVES`)."""
    return next(name for name, cls in {**MOVES, **STARTING_MOVES}.items() if type(move) is cls)
