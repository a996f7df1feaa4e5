"""Keyframed camera paths: splines that pass exactly through every keyframe, at its time.

The spline maths is the `splines` package's (also what nerfstudio's viewer uses):

- positions, look-at targets and roll: one Kochanek-Bartels spline (tension = continuity =
  bias = 0 is Catmull-Rom) over the vector [position, target?, roll?], its tangents clamped
  per coordinate as Blender's default "Auto Clamped" handles are (`clamped_tangents`): flat
  where a key is a turning point or equals a neighbour, and never so steep that the curve
  passes its neighbours' values. So a hold holds: keys x = 0, 1, 1 stay at 1 after the second
  (plain Kochanek-Bartels drifted 14 cm past it and back), and a key at the end of a rise is
  the top of it, while a move through its keys in one direction keeps its own tangents;
- focal length and focus distance: a piecewise monotone cubic each
  (`splines.PiecewiseMonotoneCubic`, Catmull-Rom slopes limited Fritsch-Carlson style). Also
  C1 and exact at the keys, but it never overshoots: Catmull-Rom through 28, 28, 28, 50 mm
  dips to 26.4 mm before the zoom, a lens move no focus puller or zoom motor would make. A
  key whose focus is on a subject (`pose.FocusOn`) stands, at every moment, for that
  subject's camera-z distance from the camera as finally placed, and the curve runs through
  the keys' values of that moment: between two keys on one subject the focus stays on it
  (a monotone cubic between equal values is flat), and to or from a number it pulls smoothly;
- orientations given as rotations: a Kochanek-Bartels rotation spline
  (`splines.quaternion.KochanekBartels`, De Casteljau with slerp), which canonicalises the
  quaternions so consecutive keys are on the same hemisphere: q and -q are the same
  rotation, and taking the shortest arc keeps the camera from spinning the long way round;
- when every keyframe has a look-at target, the target is splined and the camera looks at
  it every frame, with roll splined as a number: the horizon stays level between keys.

The spline's parameter grid is the keyframe times themselves (a non-uniform spline), so key
k is reached at exactly t_k and velocity is continuous across keys (C1 in time) whatever
the transition lengths. Within each transition a monotone time warp (`scene.easing.ease_curve`)
applies the ease-out of the key it leaves and the ease-in of the key it reaches; a key
whose ease-in equals its ease-out (a plain `ease`) keeps the path C1 there. With
`constant_speed`, the camera instead travels the position curve at constant speed from the
first key to the last (the path's ease, if any, at its two ends); orientation and lens
values follow the same curve parameter, so each key's orientation is still where its
position is. A closed loop returns to the first key at `loop_time`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
import splines
from numpy.typing import ArrayLike
import splines.quaternion as squat

from splatfilm.errors import SplatfilmError
from splatfilm.scene.easing import check_ease, ease_curve, eased_time
from splatfilm.scene.transforms import WORLD_UP, axis_rotation, look_at_rotation, quat_from_rotation, rotation_from_quat
from splatfilm.shots.pose import Focus, FocusOn, PathSample, focus_values


# Constant speed: each transition is cut into this many pieces for the arc-length table, each
# integrated with 5-point Gauss-Legendre (exact for the degree-6 squared speed of a cubic to
# rounding; the norm's square root is what leaves a tiny error).
_ARC_PIECES = 32
_GAUSS_X, _GAUSS_W = np.polynomial.legendre.leggauss(5)


@dataclass
class Keyframe:
    """One key of a camera path.

    time:            seconds from the shot's start
    position:        [3] camera centre, metres
    look_at:         [3] point the camera looks at, or None (then `rotation` is required)
    rotation:        [3,3] camera-to-world rotation (OpenCV axes), or None (then `look_at`)
    roll_deg:        rotation about the view axis in degrees (module `pose` docstring); with
                     `rotation` it is applied on top of it
    focal_mm:        focal length in mm, or None: the path's default
    focus_distance:  metres, a subject (`pose.FocusOn`), or None: the path's default
    tension, continuity, bias:  Kochanek-Bartels parameters at this key (interior keys only)
    ease_in, ease_out:          in [0, 1]: slow the arrival at / departure from this key
                                (1: zero speed at the key)
    """

    time: float
    position: np.ndarray
    look_at: np.ndarray | None = None
    rotation: np.ndarray | None = None
    roll_deg: float = 0.0
    focal_mm: float | None = None
    focus_distance: Focus = None
    tension: float = 0.0
    continuity: float = 0.0
    bias: float = 0.0
    ease_in: float = 0.0
    ease_out: float = 0.0

    def __post_init__(self) -> None:
        self.time = float(self.time)
        self.position = np.array(self.position, dtype=np.float64).reshape(3)
        if self.look_at is not None:
            self.look_at = np.array(self.look_at, dtype=np.float64).reshape(3)
        if self.rotation is not None:
            self.rotation = np.array(self.rotation, dtype=np.float64).reshape(3, 3)
        if (self.look_at is None) == (self.rotation is None):
            raise SplatfilmError(f"keyframe at t={self.time}: give exactly one of look_at or rotation")
        if self.look_at is not None and np.linalg.norm(self.look_at - self.position) < 1e-9:
            raise SplatfilmError(f"keyframe at t={self.time}: look_at target is the camera position itself")
        self.ease_in = check_ease(self.ease_in, "ease_in")
        self.ease_out = check_ease(self.ease_out, "ease_out")
        for name in ("tension", "continuity", "bias"):
            v = float(getattr(self, name))
            if not -1.0 <= v <= 1.0:
                raise SplatfilmError(f"keyframe at t={self.time}: {name} must be in [-1, 1], got {v}")
            setattr(self, name, v)

    def orientation(self, up: ArrayLike = WORLD_UP) -> np.ndarray:
        """This key's camera-to-world rotation [3,3] (OpenCV axes), roll included; `up` [3] (world,
        default +z) keeps a look-at key's horizon level."""
        if self.look_at is not None:
            return look_at_rotation(self.position, self.look_at, up, self.roll_deg)
        return self.rotation @ axis_rotation("z", math.radians(self.roll_deg)) if self.roll_deg else self.rotation


def clamped_tangents(values: ArrayLike, grid: ArrayLike, tcb: ArrayLike, closed: bool = False) -> np.ndarray:
    """Kochanek-Bartels tangents of `values` [K,D] at times `grid` [K] (seconds; [K+1] when
    `closed`, the last being the return to the first key), clamped per coordinate as Blender's
    Auto Clamped handles are; the tangents `splines.CubicHermite` takes, two per segment (its
    start's outgoing, its end's incoming), [2(K-1),D] or closed [2K,D], in units per second.

    tcb [N,3]: tension, continuity, bias of the interior keys (N = K-2; closed: every key, the
    first's first). Unclamped, these are `splines.KochanekBartels`'s tangents, with its
    natural ends (zero curvature at the first and last key). Clamped, in each coordinate: a
    key that is a turning point (neither neighbour on the far side of it; an equal neighbour
    counts) gets a flat tangent, and elsewhere its tangents are at most 3 times the lesser
    slope of the two segments either side, the Fritsch-Carlson bound past which a cubic
    overshoots the next key's value (a Bezier handle, a third of the segment long, would pass
    that value); one bound for both sides keeps a key whose sides matched C1.
    Natural ends follow from their clamped neighbour, so they keep within the same bound."""
    x = np.asarray(values, dtype=np.float64)
    grid = [float(t) for t in grid]
    k_count = len(x)
    tcb = np.asarray(tcb, dtype=np.float64).reshape(-1, 3)
    if closed:
        x = np.concatenate([x, x[:1]])
    elif k_count == 2:
        line = (x[1] - x[0]) / (grid[1] - grid[0])
        return np.stack([line, line])
    inner = range(k_count) if closed else range(1, k_count - 1)
    tangents = []
    for j, k in enumerate(inner):
        # Neighbours of key k; a closed path's first key looks back across the loop's return.
        prev, nxt = (k - 1) % k_count, k + 1
        t_prev = grid[k] - grid[k - 1] if k > 0 else grid[-1] - grid[-2]
        t_next = grid[k + 1] - grid[k]
        T, C, B = tcb[j]
        a = (1 - T) * (1 + C) * (1 + B)
        b = (1 - T) * (1 - C) * (1 - B)
        c = (1 - T) * (1 - C) * (1 + B)
        d = (1 - T) * (1 + C) * (1 - B)
        v_prev = (x[k] - x[prev]) / t_prev
        v_next = (x[nxt] - x[k]) / t_next
        incoming = (c * t_next * v_prev + d * t_prev * v_next) / (t_prev + t_next)
        outgoing = (a * t_next * v_prev + b * t_prev * v_next) / (t_prev + t_next)
        # One bound for both sides, as Blender's aligned handles: a key stays C1 where it was.
        bound = np.where(v_prev * v_next <= 0, 0.0, 3 * np.minimum(np.abs(v_prev), np.abs(v_next)))
        incoming = np.sign(incoming) * np.minimum(np.abs(incoming), bound)
        outgoing = np.sign(outgoing) * np.minimum(np.abs(outgoing), bound)
        tangents += [incoming, outgoing]
    if closed:
        return np.stack(tangents[1:] + tangents[:1])  # the first key's incoming ends the last segment
    first = 3 * (x[1] - x[0]) / (2 * (grid[1] - grid[0])) - tangents[0] / 2
    last = 3 * (x[-1] - x[-2]) / (2 * (grid[-1] - grid[-2])) - tangents[-1] / 2
    return np.stack([first, *tangents, last])


@dataclass
class KeyframePath:
    """A camera path through `keyframes` (see the module docstring); implements `CameraPath`.

    keyframes:       at least one, strictly increasing times
    focal_mm:        focal length for keys that give none (None: the lens's, NaN in samples)
    focus_distance:  focus distance (metres or a `pose.FocusOn`) for keys that give none (None: unset)
    loop:            close the path: after the last key it returns to the first at `loop_time`
    loop_time:       when the loop is back at the first key (> last key's time); required with loop
    constant_speed:  travel the position curve at constant speed (needs the camera to move)
    up:              world up for look-at keys (default +z)
    """

    keyframes: list[Keyframe]
    focal_mm: float | None = None
    focus_distance: Focus = None
    loop: bool = False
    loop_time: float | None = None
    constant_speed: bool = False
    up: np.ndarray = field(default_factory=lambda: WORLD_UP.copy())

    def __post_init__(self) -> None:
        ks = self.keyframes = list(self.keyframes)
        if not ks:
            raise SplatfilmError("a keyframed path needs at least one keyframe")
        for i in range(1, len(ks)):
            if not ks[i].time > ks[i - 1].time:
                raise SplatfilmError(f"keyframe {i} (t={ks[i].time}) is not after keyframe {i - 1} (t={ks[i - 1].time})")
        if self.loop:
            if len(ks) < 2:
                raise SplatfilmError("a closed loop needs at least two keyframes")
            if self.loop_time is None or not self.loop_time > ks[-1].time:
                raise SplatfilmError(f"loop_time ({self.loop_time}) must be after the last keyframe (t={ks[-1].time})")
        self.up = np.asarray(self.up, dtype=np.float64)
        self._times = [k.time for k in ks] + ([float(self.loop_time)] if self.loop else [])
        self._look_at_mode = all(k.look_at is not None for k in ks)
        self._build()

    # ---- construction of the splines ------------------------------------------------------

    def _channel(self, values: list[float | None], default: float | None, what: str) -> np.ndarray | None:
        """Per-key values with the default filled in; None when no key and no default sets any."""
        if all(v is None for v in values) and default is None:
            return None
        out = []
        for i, v in enumerate(values):
            if v is None:
                if default is None:
                    raise SplatfilmError(f"keyframe {i} has no {what} and the path has no default {what}")
                v = default
            out.append(float(v))
        return np.array(out)

    def _build(self) -> None:
        ks = self.keyframes
        cols = [np.stack([k.position for k in ks])]
        if self._look_at_mode:
            cols.append(np.stack([k.look_at for k in ks]))
            cols.append(np.array([[k.roll_deg] for k in ks]))
        self._focal = self._channel([k.focal_mm for k in ks], self.focal_mm, "focal_mm")
        keyed_focus = [self.focus_distance if k.focus_distance is None else k.focus_distance for k in ks]
        # Keys on a subject: the focus is splined through the keys' values at each moment (sample).
        self._focus_subjects = keyed_focus if any(isinstance(f, FocusOn) for f in keyed_focus) else None
        if self._focus_subjects is not None and any(f is None for f in keyed_focus):
            raise SplatfilmError(f"keyframe {keyed_focus.index(None)} has no focus_distance and the path has no "
                                 "default focus_distance")
        self._focus = None if self._focus_subjects else self._channel(
            [k.focus_distance for k in ks], self.focus_distance, "focus_distance")
        self._values = np.concatenate(cols, axis=1)  # [K, D]
        self._rotations = np.stack([k.orientation(self.up) for k in ks])
        if len(ks) == 1:
            self._spline = self._qspline = self._focal_spline = self._focus_spline = None
            return
        interior = ks if self.loop else ks[1:-1]
        tcb = np.array([[k.tension, k.continuity, k.bias] for k in interior]).reshape(-1, 3)
        vertices = list(self._values) + ([self._values[0]] if self.loop else [])
        self._spline = splines.CubicHermite(vertices, clamped_tangents(self._values, self._times, tcb, self.loop),
                                            self._times)
        self._focal_spline, self._focus_spline = (
            None if v is None else splines.PiecewiseMonotoneCubic(v, grid=self._times, closed=self.loop)
            for v in (self._focal, self._focus)
        )
        self._qspline = None
        if not self._look_at_mode:
            quats = [squat.UnitQuaternion.from_unit_xyzw(np.roll(q, -1)) for q in quat_from_rotation(self._rotations)]
            grid = self._times
            if self.loop:
                # splines' closed rotation spline calls np.row_stack (deprecated in NumPy 2). A
                # key's tangent depends only on its neighbours, so an open spline over the keys
                # padded with the loop's wrap-around keys is the same curve between t0 and loop_time.
                period = grid[-1] - grid[0]
                quats = [quats[-1], *quats, quats[0], quats[1]]
                grid = [grid[-2] - period, *grid, grid[1] + period]
                tcb = np.concatenate([tcb, tcb[:1]])
            self._qspline = squat.KochanekBartels(quats, grid=grid, tcb=tcb, endconditions="natural")
        self._arc = self._arc_length_table() if self.constant_speed else None

    def _speed(self, params) -> np.ndarray:
        """Camera speed in metres per unit of spline parameter at `params` [M]."""
        return np.linalg.norm(np.array([self._spline.evaluate(float(t), 1)[:3] for t in params]), axis=1)

    def _travel(self, a: float, b: float) -> float:
        """Camera travel in metres between spline parameters a <= b within one table piece (Gauss-Legendre)."""
        return 0.5 * (b - a) * float(_GAUSS_W @ self._speed(0.5 * (b - a) * _GAUSS_X + 0.5 * (a + b)))

    def _arc_length_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(spline parameters [M], cumulative camera travel in metres [M]) over the whole path."""
        params, lengths = [self._times[0]], [0.0]
        for t0, t1 in zip(self._times[:-1], self._times[1:]):
            edges = np.linspace(t0, t1, _ARC_PIECES + 1)
            for a, b in zip(edges[:-1], edges[1:]):
                params.append(b)
                lengths.append(lengths[-1] + self._travel(a, b))
        if lengths[-1] < 1e-9:
            raise SplatfilmError("constant speed needs a camera that moves, but every keyframe is at the same position")
        return np.array(params), np.array(lengths)

    def _param_at_travel(self, travel: float) -> float:
        """Spline parameter where the camera has travelled `travel` metres from the start."""
        params, lengths = self._arc
        j = int(np.clip(np.searchsorted(lengths, travel, side="right") - 1, 0, len(params) - 2))
        a, b, base = params[j], params[j + 1], lengths[j]
        piece = lengths[j + 1] - base
        if piece <= 0:
            return float(a)
        s = a + (b - a) * (travel - base) / piece
        # Newton on travel(a, s) = travel - base, kept inside the piece: the table alone would
        # leave ~1e-4 relative speed ripple; three steps bring it to ~1e-10.
        for _ in range(3):
            speed = float(self._speed([s])[0])
            if speed < 1e-12:
                break
            s = float(np.clip(s - (self._travel(a, s) - (travel - base)) / speed, a, b))
        return s

    # ---- CameraPath interface -------------------------------------------------------------------

    @property
    def start(self) -> float:
        return self._times[0]

    @property
    def end(self) -> float:
        return self._times[-1]

    @property
    def key_times(self) -> list[float]:
        """Times of the keys, in seconds (the loop's return to the first key not included)."""
        return [k.time for k in self.keyframes]

    def _spline_param(self, t: float) -> float:
        """Spline parameter (a time on the keyframe grid) that the camera is at at time t."""
        times = self._times
        if self.loop:
            period = times[-1] - times[0]
            t = times[0] + (t - times[0]) % period
        t = min(max(t, times[0]), times[-1])
        if self._arc is not None:
            first, last = self.keyframes[0], self.keyframes[0 if self.loop else -1]
            x = (t - times[0]) / (times[-1] - times[0])
            return self._param_at_travel(float(ease_curve(x, last.ease_in, first.ease_out)) * self._arc[1][-1])
        k = min(bisect_right(times, t) - 1, len(times) - 2)
        t0, t1 = times[k], times[k + 1]
        leaving = self.keyframes[k]
        arriving = self.keyframes[(k + 1) % len(self.keyframes)]
        return eased_time(t, t0, t1, leaving.ease_out, arriving.ease_in)

    def sample(self, times: ArrayLike) -> PathSample:
        """The path at `times` [T] (seconds; outside the keys it holds the nearest key, a loop
        wraps). Raises SplatfilmError where the interpolated look-at target meets the camera."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if self._spline is None:
            values = np.broadcast_to(self._values[0], (len(times), self._values.shape[1]))
            rotations = np.broadcast_to(self._rotations[0], (len(times), 3, 3))
        else:
            params = [self._spline_param(float(t)) for t in times]
            values = np.array([self._spline.evaluate(s) for s in params]).reshape(len(times), -1)
            if self._qspline is not None:
                wxyz = np.array([self._qspline.evaluate(s).wxyz for s in params])
                rotations = rotation_from_quat(wxyz)
        positions = values[:, :3]
        if self._look_at_mode:
            targets, roll = values[:, 3:6], values[:, 6]
            if self._spline is not None:
                near = np.linalg.norm(targets - positions, axis=1) < 1e-9
                if np.any(near):
                    raise SplatfilmError(
                        f"at t={times[np.argmax(near)]:.4f} s the interpolated look-at target meets the camera"
                    )
                rotations = look_at_rotation(positions, targets, self.up, roll)
        lens_values = []
        for keyed, spline in ((self._focal, self._focal_spline), (self._focus, self._focus_spline)):
            if keyed is None:
                lens_values.append(None)
            elif spline is None:
                lens_values.append(np.full(len(times), keyed[0]))
            else:
                lens_values.append(np.array([float(spline.evaluate(s)) for s in params]))
        sample = PathSample(times, positions, rotations, *lens_values)
        if self._focus_subjects is not None:
            sample.follow_focus(lambda t, p, r: self._subject_focus(t, p, r, None if self._spline is None else params))
        return sample

    def _subject_focus(self, times: np.ndarray, positions: np.ndarray, rotations: np.ndarray,
                       params: list[float] | None) -> np.ndarray:
        """Focus distances [T] (metres) of cameras at `positions` [T,3], `rotations` [T,3,3] at
        `times` [T], whose spline parameters are `params` [T] (None: a single key), when keys
        focus on subjects: the monotone cubic through each key's value at that moment."""
        per_key = np.stack([focus_values(f, times, positions, rotations) for f in self._focus_subjects])  # [K,T]
        if params is None:
            return per_key[0]
        return np.array([float(splines.PiecewiseMonotoneCubic(per_key[:, j], grid=self._times, closed=self.loop)
                               .evaluate(s)) for j, s in enumerate(params)])
