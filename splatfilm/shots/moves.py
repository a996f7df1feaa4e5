"""Camera moves: functions that return paths, and that compose.

Every move function takes the camera it starts from as its first argument, a `Pose` (a
camera standing still) or any path, and returns a `MovePath`: that base with the move laid
over it. Giving a move function a `MovePath` adds the move to it, so moves compose, and
run at the same time unless their spans say otherwise:

    cam = Pose.look_at([0, -3, 1.2], [0, 0, 0.75], focal_mm=35)
    shot = pan(crane(cam, height=1.0, duration=4), degrees=30)    # crane up while panning left

Each move is applied, in order, to the pose that the base and the moves before it give at
that instant, so directions are the camera's own at that moment ("dolly" goes where the
camera faces). A move's progress u runs from 0 to 1 over its span (default: the whole path),
shaped by its ease (`timing.ease_curve`); before the span it has not started, after it it
has finished.

Moves (signs in the film crew's sense; see `pose` for pan/tilt/roll):
    dolly        along the camera's horizontal heading (positive: push in)
    truck        along the camera's horizontal right (positive: to the right)
    pedestal     straight up the world's z (positive: up); `crane` is the same move
    pan / tilt / roll   turn the camera about world up / its right axis / its view axis
    arc          swing around a vertical axis through `pivot` (positive: counter-clockwise
                 seen from above), turning with it; `orbit` starts a camera on a circle
    push_in      move along the line of sight towards a target, keeping it centred
    zoom         focal length change (geometric, the perceptually even zoom)
    rack_focus   focus distance change (linear in dioptres, like a focus pull)
    dolly_zoom   push in (or pull out) on a subject while the focal length follows the
                 distance, so the subject keeps its size in frame while the background's
                 perspective changes (the "Vertigo" shot)
    look_at      aim at a fixed or moving target; `follow` also carries the camera with it
    handheld     seeded, smooth shake in position and angle
dolly, truck and pedestal take an optional `target` to keep aimed at while moving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Union

import numpy as np
import splines

from splatfilm.errors import SplatfilmError
from splatfilm.scene.transforms import WORLD_UP, axis_rotation, look_at_rotation, rotation_about, rotation_slerp
from splatfilm.shots.pose import CameraPath, PathSample, Pose
from splatfilm.shots.timing import check_ease, ease_curve

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

    def __call__(self, times) -> np.ndarray:
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if self._spline is None:
            return np.broadcast_to(self.points[0], (len(times), 3)).copy()
        clipped = np.clip(times, self.times[0], self.times[-1])
        return np.array([self._spline.evaluate(float(t)) for t in clipped]).reshape(len(times), 3)


Target = Union[np.ndarray, list, tuple, PointTrack, Callable[[np.ndarray], np.ndarray]]
"""A point [3], or a moving one: a `PointTrack`, or any function of times [T] -> points [T,3]."""


def target_points(target: Target, times) -> np.ndarray:
    """Where `target` is at each of `times` [T]: [T,3]."""
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if callable(target):
        pts = np.asarray(target(times), dtype=np.float64)
    else:
        pts = np.asarray(target, dtype=np.float64)
    try:
        return np.array(np.broadcast_to(pts, (len(times), 3)))
    except ValueError:
        raise SplatfilmError(f"a target must be a point [3] or give [T,3] points, got shape {pts.shape}") from None


# ---- timing of a move ----------------------------------------------------------------------


@dataclass
class Span:
    """When a move runs: from `start` to `end` seconds (None: the path's own start / end),
    with ease-in (arrival) and ease-out (departure) in [0, 1]."""

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
    if isinstance(span, Span):
        return span
    start, end = (None, None) if span is None else span
    return Span(start, end, ease if ease_in is None else ease_in, ease if ease_out is None else ease_out)


# ---- the moves ------------------------------------------------------------------------------


def _horizontal(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Unit vectors [T,3]: v with its world-up part removed; `fallback`'s where v is vertical."""
    h = v - np.sum(v * WORLD_UP, axis=-1, keepdims=True) * WORLD_UP
    n = np.linalg.norm(h, axis=-1, keepdims=True)
    hf = fallback - np.sum(fallback * WORLD_UP, axis=-1, keepdims=True) * WORLD_UP
    hf = hf / np.maximum(np.linalg.norm(hf, axis=-1, keepdims=True), 1e-12)
    return np.where(n > 1e-9, h / np.maximum(n, 1e-12), hf)


def _aim(s: PathSample, target: Target | None) -> None:
    if target is not None:
        s.rotations = look_at_rotation(s.positions, target_points(target, s.times))


def _lens_value(values: np.ndarray, given: float | None, what: str, move: str) -> np.ndarray:
    if given is not None:
        return np.full_like(values, float(given))
    if np.any(np.isnan(values)):
        raise SplatfilmError(f"{move} needs the starting {what}: give the camera (or the lens) one")
    return values


@dataclass
class Move:
    """A move laid over a path; `apply` changes a sample in place given progress u [T]."""

    span: Span = field(default_factory=Span, kw_only=True)

    def weight(self, times: np.ndarray, start: float, end: float) -> np.ndarray:
        """Progress u [T] of this move at `times`, on a path whose moves run from `start` to `end` by default."""
        return self.span.progress(times, start, end)

    def apply(self, s: PathSample, u: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Dolly(Move):
    distance: float
    target: Target | None = None

    def apply(self, s, u):
        heading = _horizontal(s.rotations[:, :, 2], -s.rotations[:, :, 1])
        s.positions = s.positions + (self.distance * u)[:, None] * heading
        _aim(s, self.target)


@dataclass
class Truck(Move):
    distance: float
    target: Target | None = None

    def apply(self, s, u):
        right = _horizontal(s.rotations[:, :, 0], s.rotations[:, :, 0])
        s.positions = s.positions + (self.distance * u)[:, None] * right
        _aim(s, self.target)


@dataclass
class Pedestal(Move):
    height: float
    target: Target | None = None

    def apply(self, s, u):
        s.positions = s.positions + (self.height * u)[:, None] * WORLD_UP
        _aim(s, self.target)


@dataclass
class Pan(Move):
    degrees: float

    def apply(self, s, u):
        s.rotations = axis_rotation("z", np.radians(self.degrees * u)) @ s.rotations


@dataclass
class Tilt(Move):
    degrees: float

    def apply(self, s, u):
        # Rotating about the camera's +x turns +z (forward) towards -y, which is up in OpenCV axes.
        s.rotations = s.rotations @ axis_rotation("x", np.radians(self.degrees * u))


@dataclass
class Roll(Move):
    degrees: float

    def apply(self, s, u):
        s.rotations = s.rotations @ axis_rotation("z", np.radians(self.degrees * u))


@dataclass
class Arc(Move):
    degrees: float
    pivot: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def apply(self, s, u):
        R = axis_rotation("z", np.radians(self.degrees * u))
        pivot = np.asarray(self.pivot, dtype=np.float64)
        s.positions = pivot + np.einsum("tij,tj->ti", R, s.positions - pivot)
        s.rotations = R @ s.rotations


@dataclass
class Zoom(Move):
    to_focal_mm: float
    from_focal_mm: float | None = None

    def apply(self, s, u):
        f0 = _lens_value(s.focal_mm, self.from_focal_mm, "focal length", "zoom")
        s.focal_mm = f0 * (self.to_focal_mm / f0) ** u


@dataclass
class RackFocus(Move):
    to_distance: float
    from_distance: float | None = None

    def apply(self, s, u):
        d0 = _lens_value(s.focus_distance, self.from_distance, "focus distance", "rack_focus")
        s.focus_distance = 1.0 / ((1.0 - u) / d0 + u / self.to_distance)


@dataclass
class PushIn(Move):
    target: Target
    distance: float | None = None
    to_distance: float | None = None

    def apply(self, s, u):
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


@dataclass
class DollyZoom(Move):
    target: Target
    distance: float | None = None
    to_focal_mm: float | None = None

    def apply(self, s, u):
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


@dataclass
class LookAt(Move):
    """Aim at a fixed or moving target, rolled by `roll_deg`. Without a span it aims all
    through; with one, the camera turns onto the target over the span and stays on it."""

    target: Target
    roll_deg: float = 0.0

    def weight(self, times, start, end):
        if self.span.start is None and self.span.end is None:
            return np.ones_like(times)
        return self.span.progress(times, start, end)

    def apply(self, s, u):
        aimed = look_at_rotation(s.positions, target_points(self.target, s.times), WORLD_UP, self.roll_deg)
        s.rotations = aimed if np.all(u >= 1.0) else rotation_slerp(s.rotations, aimed, u)


@dataclass
class Handheld(Move):
    """Seeded, smooth shake: a sum of sinusoids per axis, position in the camera's own axes
    (RMS `amplitude_m` metres per axis) and angle about them (RMS `amplitude_deg` degrees),
    around `frequency_hz`. The same seed always gives the same shake."""

    amplitude_m: float = 0.004
    amplitude_deg: float = 0.25
    frequency_hz: float = 1.0
    seed: int = 0

    def weight(self, times, start, end):
        t0 = -np.inf if self.span.start is None else self.span.start
        t1 = np.inf if self.span.end is None else self.span.end
        return ((times >= t0) & (times <= t1)).astype(np.float64)

    def _noise(self, times: np.ndarray) -> np.ndarray:
        """[T,6] unit-RMS smooth noise: 3 translation, 3 rotation channels."""
        rng = np.random.default_rng(self.seed)
        freqs = self.frequency_hz * rng.uniform(0.4, 2.5, size=(6, 4))
        phases = rng.uniform(0.0, 2 * math.pi, size=(6, 4))
        amps = 1.0 / freqs  # more sway than jitter, like a body holding a camera
        amps /= np.sqrt(np.sum(amps**2, axis=1, keepdims=True) / 2)  # RMS of each channel = 1
        return np.sum(amps * np.sin(2 * math.pi * freqs * times[:, None, None] + phases), axis=2)

    def apply(self, s, u):
        n = self._noise(s.times) * u[:, None]
        s.positions = s.positions + np.einsum("tij,tj->ti", s.rotations, n[:, :3] * self.amplitude_m)
        rotvec = np.radians(n[:, 3:] * self.amplitude_deg)
        angle = np.linalg.norm(rotvec, axis=1)
        axis = np.where(angle[:, None] > 0, rotvec / np.maximum(angle, 1e-300)[:, None], [0.0, 0.0, 1.0])
        s.rotations = s.rotations @ rotation_about(axis, angle)


# ---- paths made of moves ----------------------------------------------------------------------


@dataclass
class FollowPath:
    """A camera carried with a moving target: at `target(t) + offset` (world metres), looking
    at `target(t) + look_offset`; implements `CameraPath` over [start, end] seconds."""

    target: Target
    offset: np.ndarray
    look_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    start_time: float = 0.0
    end_time: float = 0.0
    focal_mm: float | None = None
    focus_distance: float | None = None

    def __post_init__(self) -> None:
        self.offset = np.asarray(self.offset, dtype=np.float64).reshape(3)
        self.look_offset = np.asarray(self.look_offset, dtype=np.float64).reshape(3)
        if np.linalg.norm(self.offset - self.look_offset) < 1e-9:
            raise SplatfilmError("follow: the camera offset equals the look offset (the camera would look at itself)")

    @property
    def start(self) -> float:
        return self.start_time

    @property
    def end(self) -> float:
        return self.end_time

    def sample(self, times) -> PathSample:
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        pts = target_points(self.target, np.clip(times, self.start_time, max(self.end_time, self.start_time)))
        pos = pts + self.offset
        nan = float("nan")
        return PathSample(times, pos, look_at_rotation(pos, pts + self.look_offset),
                          nan if self.focal_mm is None else self.focal_mm,
                          nan if self.focus_distance is None else self.focus_distance)


@dataclass
class MovePath:
    """A base (a still `Pose` or any path) with moves laid over it, in order; implements `CameraPath`.

    duration: seconds the moves run by default when the base is a Pose (a base path's own
    span otherwise); moves with their own span may run past it.
    """

    base: Pose | CameraPath
    moves: list[Move] = field(default_factory=list)
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.duration is not None and not self.duration >= 0:
            raise SplatfilmError(f"a move's duration must be >= 0 seconds, got {self.duration}")

    @property
    def start(self) -> float:
        return 0.0 if isinstance(self.base, Pose) else float(self.base.start)

    @property
    def _default_end(self) -> float:
        if self.duration is not None:
            return self.start + self.duration
        return self.start if isinstance(self.base, Pose) else float(self.base.end)

    @property
    def end(self) -> float:
        ends = [self._default_end] + [m.span.end for m in self.moves if m.span.end is not None]
        return float(max(ends))

    @property
    def key_times(self) -> list[float]:
        """Where moves start and stop (and the base path's keys): times worth a frustum in a preview."""
        times = {self.start, self.end}
        times.update(getattr(self.base, "key_times", []))
        for m in self.moves:
            times.update(t for t in (m.span.start, m.span.end) if t is not None)
        return sorted(times)

    def then(self, *moves: Move) -> "MovePath":
        """This path with more moves laid over it."""
        return replace(self, moves=[*self.moves, *moves])

    def sample(self, times) -> PathSample:
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        s = PathSample.from_pose(self.base, times) if isinstance(self.base, Pose) else self.base.sample(times)
        for move in self.moves:
            move.apply(s, move.weight(times, self.start, self._default_end))
        return s


def _lay(camera: Pose | CameraPath, move: Move, duration: float | None) -> MovePath:
    """`camera` with `move` laid over it (appended when it is already a MovePath)."""
    if isinstance(camera, MovePath):
        return replace(camera, moves=[*camera.moves, move],
                       duration=camera.duration if duration is None else duration)
    if isinstance(camera, Pose) or isinstance(camera, CameraPath):
        return MovePath(camera, [move], duration)
    raise SplatfilmError(f"a move starts from a Pose or a path, got {type(camera).__name__}")


# ---- move functions --------------------------------------------------------------------------

def dolly(camera, distance: float, *, target: Target | None = None, duration=None, span=None, ease=0.0,
          ease_in=None, ease_out=None) -> MovePath:
    """Dolly `distance` metres along the camera's horizontal heading (positive: push in, negative:
    pull out), aiming at `target` all the way if given."""
    return _lay(camera, Dolly(float(distance), target, span=_span(span, ease, ease_in, ease_out)), duration)


def truck(camera, distance: float, *, target: Target | None = None, duration=None, span=None, ease=0.0,
          ease_in=None, ease_out=None) -> MovePath:
    """Truck `distance` metres along the camera's horizontal right (negative: left)."""
    return _lay(camera, Truck(float(distance), target, span=_span(span, ease, ease_in, ease_out)), duration)


def pedestal(camera, height: float, *, target: Target | None = None, duration=None, span=None, ease=0.0,
             ease_in=None, ease_out=None) -> MovePath:
    """Raise the camera `height` metres straight up (negative: down), aiming at `target` if given."""
    return _lay(camera, Pedestal(float(height), target, span=_span(span, ease, ease_in, ease_out)), duration)


crane = pedestal


def pan(camera, degrees: float, *, duration=None, span=None, ease=0.0, ease_in=None, ease_out=None) -> MovePath:
    """Turn the camera `degrees` about the world's vertical (positive: left, counter-clockwise from above)."""
    return _lay(camera, Pan(float(degrees), span=_span(span, ease, ease_in, ease_out)), duration)


def tilt(camera, degrees: float, *, duration=None, span=None, ease=0.0, ease_in=None, ease_out=None) -> MovePath:
    """Tilt the camera `degrees` about its right axis (positive: up)."""
    return _lay(camera, Tilt(float(degrees), span=_span(span, ease, ease_in, ease_out)), duration)


def roll(camera, degrees: float, *, duration=None, span=None, ease=0.0, ease_in=None, ease_out=None) -> MovePath:
    """Roll the camera `degrees` about its view axis (positive: its top turns right)."""
    return _lay(camera, Roll(float(degrees), span=_span(span, ease, ease_in, ease_out)), duration)


def arc(camera, degrees: float, pivot, *, duration=None, span=None, ease=0.0, ease_in=None, ease_out=None) -> MovePath:
    """Swing the camera `degrees` around the vertical axis through `pivot` [3] (positive:
    counter-clockwise from above), turning with it: a camera aimed at the pivot stays aimed."""
    p = np.asarray(pivot, dtype=np.float64).reshape(3)
    return _lay(camera, Arc(float(degrees), p, span=_span(span, ease, ease_in, ease_out)), duration)


def orbit(center, radius: float, *, height: float | None = None, start_deg: float = -90.0, degrees: float = 360.0,
          look_at=None, duration: float, focal_mm: float | None = None, focus_distance: float | None = None,
          span=None, ease=0.0, ease_in=None, ease_out=None) -> MovePath:
    """Circle `center` [3] at `radius` metres and `height` (default the centre's z), starting at
    azimuth `start_deg` (counter-clockwise from +x; -90 is on the -y side) and sweeping `degrees`
    (positive: counter-clockwise from above), looking at `look_at` (default the centre)."""
    c = np.asarray(center, dtype=np.float64).reshape(3)
    if not radius > 0:
        raise SplatfilmError(f"orbit radius must be > 0, got {radius}")
    a = math.radians(start_deg)
    z = c[2] if height is None else float(height)
    pos = np.array([c[0] + radius * math.cos(a), c[1] + radius * math.sin(a), z])
    aim = c if look_at is None else np.asarray(look_at, dtype=np.float64).reshape(3)
    base = Pose.look_at(pos, aim, focal_mm=focal_mm, focus_distance=focus_distance)
    # The look-at point turns with the camera only if it lies on the orbit's axis.
    moves: list[Move] = [Arc(float(degrees), c, span=_span(span, ease, ease_in, ease_out))]
    if np.linalg.norm(aim[:2] - c[:2]) > 1e-9:
        moves.append(LookAt(aim))
    return MovePath(base, moves, float(duration))


def zoom(camera, to_focal_mm: float, *, from_focal_mm: float | None = None, duration=None, span=None, ease=0.0,
         ease_in=None, ease_out=None) -> MovePath:
    """Zoom to `to_focal_mm` (from the camera's focal length, or `from_focal_mm`)."""
    if not to_focal_mm > 0:
        raise SplatfilmError(f"zoom: to_focal_mm must be > 0, got {to_focal_mm}")
    move = Zoom(float(to_focal_mm), from_focal_mm, span=_span(span, ease, ease_in, ease_out))
    return _lay(camera, move, duration)


def rack_focus(camera, to_distance: float, *, from_distance: float | None = None, duration=None, span=None,
               ease=0.0, ease_in=None, ease_out=None) -> MovePath:
    """Pull focus to `to_distance` metres (from the camera's focus distance, or `from_distance`)."""
    if not to_distance > 0:
        raise SplatfilmError(f"rack_focus: to_distance must be > 0, got {to_distance}")
    move = RackFocus(float(to_distance), from_distance, span=_span(span, ease, ease_in, ease_out))
    return _lay(camera, move, duration)


def push_in(camera, target: Target, *, distance: float | None = None, to_distance: float | None = None,
            duration=None, span=None, ease=0.0, ease_in=None, ease_out=None) -> MovePath:
    """Move straight along the line of sight to `target`, keeping it centred: `distance` metres
    (negative: pull back), or until `to_distance` metres from it."""
    if (distance is None) == (to_distance is None):
        raise SplatfilmError("push_in: give exactly one of distance or to_distance")
    if to_distance is not None and not to_distance > 0:
        raise SplatfilmError(f"push_in: to_distance must be > 0, got {to_distance}")
    move = PushIn(target, distance, to_distance, span=_span(span, ease, ease_in, ease_out))
    return _lay(camera, move, duration)


def dolly_zoom(camera, target: Target, *, distance: float | None = None, to_focal_mm: float | None = None,
               duration=None, span=None, ease=0.0, ease_in=None, ease_out=None) -> MovePath:
    """Push in on the subject at `target` by `distance` metres (negative: pull out), or until the
    focal length is `to_focal_mm`, with the focal length scaled by the distance to the subject so
    the subject keeps its size in frame."""
    if (distance is None) == (to_focal_mm is None):
        raise SplatfilmError("dolly_zoom: give exactly one of distance or to_focal_mm")
    if to_focal_mm is not None and not to_focal_mm > 0:
        raise SplatfilmError(f"dolly_zoom: to_focal_mm must be > 0, got {to_focal_mm}")
    move = DollyZoom(target, distance, to_focal_mm, span=_span(span, ease, ease_in, ease_out))
    return _lay(camera, move, duration)


def look_at(camera, target: Target, *, roll_deg: float = 0.0, duration=None, span=None, ease=0.0, ease_in=None,
            ease_out=None) -> MovePath:
    """Keep the camera aimed at `target`, fixed or moving (a `PointTrack` or a function of time).
    With a span, the camera turns onto the target over it (eased) and stays on it after."""
    move = LookAt(target, float(roll_deg), span=_span(span, ease, ease_in, ease_out))
    return _lay(camera, move, duration)


def follow(target: Target, offset, *, look_offset=(0.0, 0.0, 0.0), duration: float, start: float = 0.0,
           focal_mm: float | None = None, focus_distance: float | None = None) -> FollowPath:
    """A camera carried with `target` at `offset` [3] metres from it (world axes), looking at
    `target + look_offset`, for `duration` seconds from `start`."""
    return FollowPath(target, offset, look_offset, float(start), float(start) + float(duration), focal_mm,
                      focus_distance)


def handheld(camera, *, amplitude_m: float = 0.004, amplitude_deg: float = 0.25, frequency_hz: float = 1.0,
             seed: int = 0, duration=None, span=None) -> MovePath:
    """Lay seeded handheld shake over `camera` (see `Handheld`); all through unless a span is given."""
    if amplitude_m < 0 or amplitude_deg < 0 or not frequency_hz > 0:
        raise SplatfilmError("handheld: amplitudes must be >= 0 and frequency_hz > 0")
    move = Handheld(float(amplitude_m), float(amplitude_deg), float(frequency_hz), int(seed),
                    span=_span(span, 0.0, None, None))
    return _lay(camera, move, duration)
