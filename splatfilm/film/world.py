"""A film world: persistent assets placed by similarity transforms, animated over time, and
composed into one set of Gaussians per frame.

Frames of reference (docs/CONVENTIONS.md): an asset's PLY keeps its own frame; an object asset's
sidecar gives the similarity into its canonical local frame (base on z = 0, centred, up +z,
front -y); the film script places the canonical frame in the film world (Z up, metres). An
asset stored centred from a capture far from the origin (its sidecar's frame.origin_offset)
is first moved by its offset less the film's anchor (`Asset.align_to`), so assets of one
georeferenced site stand where their captures put them.
Composition transforms every visible asset (SH rotated too) and concatenates them, so a
frame is rendered in one rasterization call: depth order between a character and the set
is resolved per Gaussian, not per object.

A rigged asset with a performance (`splatfilm.film.performance`: clips, IK, look-at) is
posed per frame before it is placed; a look-at aimed at the camera needs the frame's camera
centre, which `compose` and `signature` take (`needs_camera` says when).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import splines

from splatfilm.errors import SplatfilmError
from splatfilm.film.performance import Performance
from splatfilm.film.shadow import ContactShadow, contact_centre, contact_points, lowest_point
from splatfilm.io.digest import content_digest
from splatfilm.io.spz import SPZ_DEFAULT_AXES
from splatfilm.render.rendering import rasterize_mode_key
from splatfilm.scene.easing import eased_time, smoothstep
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.skinning import pose_gaussians
from splatfilm.scene.transforms import Similarity, wrap_degrees, yaw_rotation

if TYPE_CHECKING:
    import torch

    from splatfilm.render.rendering import RasterizeMode

# How fast a walker's facing turns at most (degrees per second): a person walking round a
# corner or turning back turns about half a turn a second.
DEFAULT_TURN_RATE = 180.0
# The time step (seconds) on which a walk's turns are worked out: fine enough that any frame
# rate sees a smooth turn, and fixed, so every frame (rendered alone or in a sequence) agrees.
TURN_STEP = 1.0 / 240.0
# How far (degrees) a walker's facing may lag its direction of travel before it stops to turn:
# it keeps its full speed facing its way and slows, smoothly in the lag's cosine, to a stand
# at this lag, as a person slows into a sharp turn, turns and walks on.
STOP_LAG = 45.0
# How fast (m/s^2) a walker slows ahead of a turn it must slow for, and gets back up to speed
# after it: a person stops from a walk within a step or two.
WALK_ACCEL = 1.5
# The fraction of its speed a walker slowing ahead of a turn comes down to (the turn itself
# stops it, if it must): with nothing left it would never get there.
CREEP = 0.1
# The spacing (metres) of the distances at which that slowing is worked out.
BRAKE_STEP = 0.01


@dataclass
class KeyedMotion:
    """Placement keyed over world time: positions [K,3] (Catmull-Rom through them, exact at
    the keys, held outside), yaw in degrees [K] (unwrapped, Catmull-Rom) and uniform scale [K]
    (monotone cubic: it never overshoots), at increasing times [K] in seconds.

    ease_in, ease_out [K] (each in [0, 1]; None: all 0) slow the arrival at and the departure
    from each key as a camera key's do (`scene.easing.eased_time`): time is warped within
    each transition and the curves are the same, so each key is still reached at its time.
    A transition neither of whose ends eases is left unwarped."""

    times: np.ndarray
    positions: np.ndarray
    yaw_deg: np.ndarray
    scales: np.ndarray
    ease_in: np.ndarray | None = None
    ease_out: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        # Shortest turn between keys: 350 -> 10 degrees turns 20, not 340.
        self.yaw_deg = np.unwrap(np.asarray(self.yaw_deg, dtype=np.float64), period=360.0)
        self.scales = np.asarray(self.scales, dtype=np.float64)
        for name in ("ease_in", "ease_out"):
            value = getattr(self, name)
            value = np.zeros(len(self.times)) if value is None else np.asarray(value, dtype=np.float64).reshape(-1)
            if len(value) != len(self.times) or np.any((value < 0) | (value > 1)):
                raise SplatfilmError(f"animation keyframes' {name}: expected {len(self.times)} values in [0, 1]")
            setattr(self, name, value)
        if np.any(np.diff(self.times) <= 0):
            raise SplatfilmError("animation keyframe times must be strictly increasing")
        if len(self.times) > 1:
            grid = list(self.times)
            self._pos = splines.CatmullRom(list(self.positions), grid=grid)
            self._yaw = splines.CatmullRom(list(self.yaw_deg), grid=grid)
            self._scale = splines.PiecewiseMonotoneCubic(self.scales, grid=self.times)

    def key(self) -> str:
        """A content hash of the keys (what a cache of work done along this motion is keyed by)."""
        keyed = [a.tolist() for a in (self.times, self.positions, self.yaw_deg, self.scales)]
        if self.ease_in.any() or self.ease_out.any():  # keys without ease keep the hash they had
            keyed += [self.ease_in.tolist(), self.ease_out.tolist()]
        return content_digest({"keyed": keyed})

    def at(self, t: float) -> Similarity:
        """Canonical frame -> world at world time t (seconds), holding the first and last keys outside them."""
        if len(self.times) == 1:
            return Similarity(yaw_rotation(self.yaw_deg[0]), self.positions[0], self.scales[0])
        tc = min(max(t, self.times[0]), self.times[-1])
        k = min(int(np.searchsorted(self.times, tc, side="right")) - 1, len(self.times) - 2)
        if self.ease_out[k] or self.ease_in[k + 1]:
            tc = eased_time(tc, float(self.times[k]), float(self.times[k + 1]),
                            float(self.ease_out[k]), float(self.ease_in[k + 1]))
        pos = np.asarray(self._pos.evaluate(tc), dtype=np.float64)
        return Similarity(yaw_rotation(float(self._yaw.evaluate(tc))), pos, float(self._scale.evaluate(tc)))


@dataclass
class PathWalk:
    """Walking along a path on the ground: through `points` [P,3] (Catmull-Rom) at `speed` m/s
    from world time `start`, facing along the path's tangent (the canonical front, -y, turns to
    the direction of travel). Before `start` and after the end it stands still.

    The facing turns at most `turn_rate` degrees per second, as a walking person turns, and
    the travel follows the facing, so that it never walks sideways or backwards at speed while
    its body comes round. Where the path bends faster than turn_rate (a sharp corner, a path
    that doubles back) the walker slows into the bend, at most WALK_ACCEL, to the speed at
    which its facing turns with the path; where even that cannot keep up (a turn on a point)
    the facing lags the path's direction and the walker slows with the lag, standing at
    STOP_LAG or more (`_pace`), turns on the spot, and walks on. A turn left over when it
    arrives finishes on the spot. `distance(t)` is the distance so walked and `end` comes that
    much later than length / speed; `stepping(t)` also counts turning faster than it walks
    (a walk clip is paced by it). A path that bends no
    faster than turn_rate faces exactly along its tangent at constant speed, bit for bit as
    if it had no turn rate."""

    points: np.ndarray
    speed: float
    start: float = 0.0
    scale: float = 1.0
    turn_rate: float = DEFAULT_TURN_RATE

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float64).reshape(-1, 3)
        if len(self.points) < 2:
            raise SplatfilmError("a walk needs at least two points")
        if not self.speed > 0:
            raise SplatfilmError(f"a walk's speed must be > 0 m/s, got {self.speed}")
        if not self.turn_rate > 0:
            raise SplatfilmError(f"a walk's turn_rate must be > 0 degrees/s, got {self.turn_rate}")
        self._curve = splines.CatmullRom(list(self.points), endconditions="natural")
        # Arc length table for constant speed.
        u = np.linspace(self._curve.grid[0], self._curve.grid[-1], 64 * len(self.points))
        pts = np.array([self._curve.evaluate(x) for x in u])
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        self._u, self._s = u, np.concatenate([[0.0], np.cumsum(seg)])
        self._turns()

    def key(self) -> str:
        """A content hash of the walk (what a cache of work done along it is keyed by)."""
        return content_digest({"walk": [self.points.tolist(), self.speed, self.start, self.scale, self.turn_rate]})

    def _turns(self) -> None:
        """Facing and distance together, forward in time on a fixed grid of TURN_STEP seconds
        from the start (`_walk`). A walk that had to slow for a turn is walked again, slowing
        into that turn ahead of it (`_braking`) instead of at it. _lost: metres behind a walk
        at constant speed at each step (all 0 on a path the facing keeps up with, whose
        distance then stays exactly (t - start) * speed); _limited marks the steps where the
        turn rate held the facing back."""
        raw, held, lost, end, walked, speeds = self._walk(None)
        if lost[-1] > 0.0:
            limit = self._braking(np.array(raw[:len(walked)]), np.array(walked), np.array(speeds))
            raw, held, lost, end, _, _ = self._walk(limit)
        self._end = end
        self._turn_times = self.start + TURN_STEP * np.arange(len(held))
        self._heading = np.array(held)
        self._lost = np.array(lost)
        self._limited = np.abs(wrap_degrees(np.array(raw) - self._heading)) > 1e-9
        self._turn_steps = np.zeros(len(held))
        if self._lost[-1] > 0.0:
            # Turning faster than it walks, the walker steps round: a turn at turn_rate counts
            # as walking at speed. Where it walks at full pace it cannot turn faster than
            # turn_rate, so nothing is added there (bit for bit).
            walked = np.clip((self._turn_times - self.start) * self.speed - self._lost, 0.0, self.length)
            turned = self.speed * np.abs(np.diff(self._heading)) / self.turn_rate
            extra = np.where(turned > np.diff(walked) * (1.0 + 1e-9) + 1e-12, turned - np.diff(walked), 0.0)
            self._turn_steps = np.concatenate([[0.0], np.cumsum(extra)])

    def _walk(self, limit: Callable[[float], float] | None) -> tuple[list, list, list, float, list, list]:
        """One walk on the TURN_STEP grid: each step the facing follows the tangent's heading
        at the distance walked by at most turn_rate * TURN_STEP degrees, and the walker covers
        speed * TURN_STEP * _pace(lag) metres, lag being how far the facing trails that
        heading; limit(s) (m/s), where given, caps the speed s metres along, and then the
        speed grows at most WALK_ACCEL. Past the end it stands, turning until it has caught
        up. Returns per step the tangent's heading and the facing (degrees), metres lost
        against constant speed, then the arrival time (s), and up to it the distance walked
        (m) and each step's speed (m/s)."""
        step, most, length = TURN_STEP, self.turn_rate * TURN_STEP, self.length
        raw, held, lost, walked = [self._direction(0.0)], [self._direction(0.0)], [0.0], [0.0]
        speeds: list[float] = []
        end, pace = None, 1.0
        while end is None or abs(wrap_degrees(raw[-1] - held[-1])) > 1e-9:
            k = len(held) - 1
            s = walked[-1]
            if end is None:
                wanted = _pace(float(wrap_degrees(raw[k] - held[k])))
                if limit is not None:
                    wanted = min(wanted, limit(s) / self.speed, pace + WALK_ACCEL * step / self.speed)
                pace = wanted
                lost.append(lost[k] + self.speed * step * (1.0 - pace))
                # (t - start) as distance(t) has it at the grid time t: a walk that never slows
                # stays bit for bit at (t - start) * speed.
                ahead = (self.start + step * (k + 1) - self.start) * self.speed - lost[-1]
                if ahead >= length:  # it arrives during this step
                    end = (self.start + length / self.speed if lost[-1] == 0.0
                           else self.start + step * k + (length - s) / (self.speed * pace))
                walked.append(min(max(ahead, 0.0), length))
                speeds.append(self.speed * pace)
                s = walked[-1]
            else:
                lost.append(lost[k])
            raw.append(self._direction(s))
            held.append(held[k] + float(np.clip(wrap_degrees(raw[-1] - held[k]), -most, most)))
        return raw, held, lost, end, walked, speeds

    def _braking(self, raw: np.ndarray, walked: np.ndarray, speeds: np.ndarray) -> Callable[[float], float]:
        """The fastest (m/s) the walker may go s metres along: where a walk (per step, the
        tangent's heading raw [K+1] (degrees), the distance walked [K+1] (m) and its speed
        [K] (m/s)) found the path turning faster than turn_rate, the speed at which it turns
        at turn_rate there, reached from behind slowing at most WALK_ACCEL, and never under
        CREEP of its speed (the lag stops it at a turn on the spot)."""
        h = BRAKE_STEP
        cap = np.full(int(self.length / h) + 2, self.speed)
        turned = np.abs(wrap_degrees(np.diff(raw)))  # degrees the tangent turned in each step
        fast = turned > self.turn_rate * TURN_STEP
        keep_up = np.zeros_like(speeds)
        keep_up[fast] = speeds[fast] * self.turn_rate * TURN_STEP / turned[fast]
        first, last = np.floor(walked[:-1] / h).astype(int), np.floor(walked[1:] / h).astype(int) + 1
        for a, b, v in zip(first[fast], last[fast], keep_up[fast]):
            cap[a:b + 1] = np.minimum(cap[a:b + 1], v)  # at both nodes round the step: the cap between holds it too
        for i in range(len(cap) - 2, -1, -1):
            cap[i] = min(cap[i], math.sqrt(cap[i + 1] ** 2 + 2.0 * WALK_ACCEL * h))
        nodes, least = h * np.arange(len(cap)), CREEP * self.speed
        return lambda s: max(float(np.interp(s, nodes, cap)), least)

    @property
    def length(self) -> float:
        """The path's length (metres)."""
        return float(self._s[-1])

    @property
    def end(self) -> float:
        """World time (seconds) it arrives: length / speed after `start`, and later by the
        time it slowed for turns."""
        return self._end

    @property
    def stops(self) -> float:
        """World time (seconds) its legs stop: `end`, or later where a turn left over when it
        arrives finishes on the spot (stepping(t) is constant from here on)."""
        grows = np.flatnonzero(np.diff(self._turn_steps) > 0.0)
        return max(self._end, float(self._turn_times[grows[-1] + 1])) if len(grows) else self._end

    def distance(self, t: float) -> float:
        """Metres walked by world time t (0 before the start, the path's length from `end`
        on): speed * (t - start) less what it lost slowing for turns."""
        walked = (t - self.start) * self.speed
        if self._lost[-1] > 0.0:
            walked -= float(np.interp(t, self._turn_times, self._lost))
        return min(max(walked, 0.0), self.length)

    def stepping(self, t: float) -> float:
        """Metres of stepping by world time t, that a walk cycle is paced by: the distance
        walked, and where the walker turns faster than it walks (slowing into a sharp bend,
        turning on the spot) speed * (degrees turned) / turn_rate instead, so its legs keep
        stepping round at the walk's cadence at the full turn rate. Equal to distance(t) on
        a path the facing keeps up with."""
        if self._turn_steps[-1] == 0.0:
            return self.distance(t)
        return self.distance(t) + float(np.interp(t, self._turn_times, self._turn_steps))

    def stride_scale(self, t: float) -> float:
        """The fraction (0 to 1) of the stepping at world time t that carries the walker over
        the ground: 1 while it walks its way, 0 turning on the spot (its steps there go
        round, not forward: a walk cycle's strides shrink by it)."""
        if self._turn_steps[-1] == 0.0:
            return 1.0
        k = math.floor((t - self.start) / TURN_STEP)
        if k < 0 or k + 1 >= len(self._turn_times):
            return 1.0
        extra = self._turn_steps[k + 1] - self._turn_steps[k]
        if extra <= 0.0:
            return 1.0
        walked = max(self.distance(float(self._turn_times[k + 1])) - self.distance(float(self._turn_times[k])), 0.0)
        return walked / (walked + extra)

    def _param(self, s: float) -> float:
        """The curve's parameter s metres along it."""
        return float(np.interp(s, self._s, self._u))

    def _direction(self, s: float) -> float:
        """Degrees from +x to the path's direction of travel s metres along it."""
        tangent = np.asarray(self._curve.evaluate(self._param(s), 1), dtype=np.float64)
        if np.linalg.norm(tangent[:2]) < 1e-9:
            tangent = self.points[-1] - self.points[0]
        return math.degrees(math.atan2(tangent[1], tangent[0]))

    def heading(self, t: float) -> float:
        """Degrees from +x to where the walker faces at world time t (turn-rate limited)."""
        k = math.floor((t - self.start) / TURN_STEP)
        if k < 0 or k + 1 >= len(self._heading) or not (self._limited[k] or self._limited[k + 1]):
            return self._direction(self.distance(t))
        # Between two grid steps of a turn: the held heading (unwrapped, so no wrap at +-180).
        return float(np.interp(t, self._turn_times[k:k + 2], self._heading[k:k + 2]))

    def at(self, t: float) -> Similarity:
        """Canonical frame -> world at world time t (seconds): on the path, facing `heading(t)`."""
        pos = np.asarray(self._curve.evaluate(self._param(self.distance(t))), dtype=np.float64)
        # Canonical front is -y (heading -90 deg): turn it to the travel heading.
        return Similarity(yaw_rotation(self.heading(t) + 90.0), pos, self.scale)


def _pace(lag: float) -> float:
    """The fraction of its speed a walker keeps whose facing trails its direction of travel
    by `lag` degrees: 1 facing its way, easing (smoothstep in the cosine) to 0 at STOP_LAG."""
    if abs(lag) <= 1e-9:
        return 1.0
    stop = math.cos(math.radians(STOP_LAG))
    u = min(max((math.cos(math.radians(lag)) - stop) / (1.0 - stop), 0.0), 1.0)
    return smoothstep(u)



Motion = KeyedMotion | PathWalk


@dataclass
class Asset:
    """A persistent asset in a film world.

    gaussians: in the asset's own frame (as its file stores them); local: asset frame ->
    canonical frame (identity for scenes; a scene's `upright_frame` with `upright: true`; for
    one moved by its origin_offset, the move by `shift`; times its sidecar's
    frame.scale_to_metres where that is known); placement: canonical -> world when `motion` is
    None; motion: world-time-dependent placement; look_height: metres above the canonical
    origin that shots aim at when they name this asset; source: file path; digest: content
    hash of the file (frames depend on it; with a performance, of its rig file too);
    performance: clips, IK and look-at of a rigged asset, or None (it stands as stored);
    shadow: its contact shadow on the surface under it (film.shadow), or None; kept: which
    of its file's Gaussians `gaussians` holds after its clean and edits, bool [N_file] (the
    order is the file's), or None for all of them: a rig's rows follow it; rasterize_mode:
    gsplat's "classic" or "antialiased", as it was trained (its Gaussians render so in any frame);
    origin_offset: its sidecar's frame.origin_offset [3] (float64, x_capture = x_asset +
    origin_offset) where it is shown in that frame (not its canonical one), else None; shift:
    what `align_to` moved its frame by [3] (float64 metres), or None."""

    name: str
    gaussians: Gaussians
    local: Similarity = field(default_factory=Similarity)
    placement: Similarity = field(default_factory=Similarity)
    motion: Motion | None = None
    look_height: float = 0.0
    source: str = ""
    digest: str = ""
    performance: Performance | None = None
    shadow: ContactShadow | None = None
    kept: np.ndarray | None = None
    rasterize_mode: str = "classic"
    origin_offset: np.ndarray | None = None
    shift: np.ndarray | None = None

    def align_to(self, anchor: np.ndarray) -> None:
        """Stand this asset where its capture put it in a film world that is the captures'
        world moved by -`anchor` [3] (float64): its frame moved by origin_offset - anchor
        before its placement (position, yaw, scale, motion act on it after, about the film's
        origin), and shots naming it aim above its own origin so moved. Nothing moves where
        that is zero (the anchor's own asset). Taken in float64: offsets millions of metres
        out differ by exactly what they differ by, a few metres that float32 then holds."""
        shift = np.asarray(self.origin_offset, dtype=np.float64) - np.asarray(anchor, dtype=np.float64)
        if not np.any(shift):
            return
        self.shift = shift
        self.local = Similarity(translation=shift) @ self.local

    def place_at(self, t: float) -> Similarity:
        """Canonical frame -> world at world time t (seconds)."""
        return self.motion.at(t) if self.motion is not None else self.placement

    def world_transform(self, t: float) -> Similarity:
        """Asset frame -> world at world time t (seconds)."""
        place = self.motion.at(t) if self.motion is not None else self.placement
        return place @ self.local

    def target(self, t: float) -> np.ndarray:
        """The point shots aim at when they name this asset [3]: look_height above its
        canonical origin (an asset moved by its origin_offset: above its own origin)."""
        place = self.motion.at(t) if self.motion is not None else self.placement
        aim = np.array([0.0, 0.0, self.look_height])
        return place.apply(aim if self.shift is None else aim + self.shift)


@dataclass
class World:
    """Assets by name, in script order. origin_offset: the anchor [3] (float64) of the assets
    placed by their frame.origin_offset (`Asset.align_to`): the point of their captures' world
    at the film world's origin; None where none is."""

    assets: dict[str, Asset]
    origin_offset: np.ndarray | None = None
    _joint_memo: dict | None = field(default=None, init=False, repr=False)

    # Poses `remembering` keeps: [J,4,4] float64 each (a 60-joint rig's 7.7 KB: 31 MB at most),
    # room for every sub-frame of a few minutes of film between its keys and its renders.
    JOINT_MEMO_SIZE = 4096

    @contextmanager
    def remembering(self, memo: dict) -> Iterator[None]:
        """Within it, `joint_globals` keeps its results in `memo` (by asset, time and, for a
        look-at at the camera, camera centre) and gives them again: a frame's key (`signature`)
        and its render pose its performers once, not once per use (the walk and its IK are
        the costly part of a frame). The caller keeps `memo` only as long as the world does not
        change (film.frame_render.FrameRenderer: its lifetime); the oldest entries go past
        JOINT_MEMO_SIZE."""
        before, self._joint_memo = self._joint_memo, memo
        try:
            yield
        finally:
            self._joint_memo = before

    def joint_globals(self, name: str, t: float, camera: np.ndarray | None = None) -> np.ndarray:
        """Global joint transforms [J,4,4] of a performing asset at world time t, in its own
        frame. camera: the frame's camera centre [3] (world), for a look-at at the camera;
        without it such a look-at is left out. Within `remembering`, the array may be one
        given before: not to be changed in place."""
        asset = self.assets[name]
        perf = asset.performance
        if perf is None:
            raise SplatfilmError(f"asset {name!r} has no clips, IK or look-at")
        memo = self._joint_memo
        if memo is None:
            return self._joint_globals(name, t, camera)
        eye = None if camera is None or not perf.needs_camera() else np.asarray(camera, np.float64).tobytes()
        key = (name, float(t), eye)
        G = memo.get(key)
        if G is None:
            G = memo[key] = self._joint_globals(name, t, camera)
            if len(memo) > self.JOINT_MEMO_SIZE:
                del memo[next(iter(memo))]
        return G

    def _joint_globals(self, name: str, t: float, camera: np.ndarray | None) -> np.ndarray:
        asset = self.assets[name]
        perf = asset.performance
        target = None
        if perf.look_at is not None:
            aim = perf.look_at.target
            if isinstance(aim, str):
                target = camera if aim == "camera" else self.assets[aim].target(t)
            else:
                target = aim
        return perf.joint_globals(t, asset.place_at, asset.local, target)

    def needs_camera(self, visible: list[str] | None = None) -> bool:
        """Whether a visible asset depends on the shot's camera: one that looks at it, or one
        with a contact shadow (its splats are drawn toward the camera to sort over the floor)."""
        names = list(self.assets) if visible is None else visible
        return any((self.assets[n].performance is not None and self.assets[n].performance.needs_camera())
                   or self.assets[n].shadow is not None for n in names)

    def posed(self, name: str, t: float, camera: np.ndarray | None = None) -> Gaussians:
        """An asset's Gaussians at world time t in its own frame: posed if it performs."""
        asset = self.assets[name]
        if asset.performance is None:
            return asset.gaussians
        return pose_gaussians(asset.gaussians, asset.performance.rig, self.joint_globals(name, t, camera),
                              asset.performance.method)

    def parts(self, t: float, visible: list[str] | None = None,
              camera: np.ndarray | None = None) -> list[tuple[str, Gaussians]]:
        """The pieces `compose` joins, in its order, each named: every visible asset (its
        name) at world time t in world coordinates, then the contact shadows ("NAME.shadow")."""
        names = list(self.assets) if visible is None else visible
        parts = [(n, self.placed(n, t, camera)) for n in names]
        for n, (_, placed) in zip(names, list(parts)):
            patch = self.shadow_patch(n, t, camera, placed)
            if patch is not None:
                parts.append((f"{n}.shadow", patch.to(parts[0][1].device, parts[0][1].dtype)))
        return parts

    def placed(self, name: str, t: float, camera: np.ndarray | None = None) -> Gaussians:
        """An asset's Gaussians at world time t in world coordinates: posed if it performs."""
        return self.assets[name].world_transform(t).transform_gaussians(self.posed(name, t, camera))

    def shadow_patch(self, name: str, t: float, camera: np.ndarray | None = None,
                     placed: Gaussians | None = None) -> Gaussians | None:
        """An asset's contact shadow at world time t (film.shadow: world frame; None without
        one or when it is too high to cast one), on the surface under its lowest part.
        placed: its Gaussians as `placed` gives them, when already at hand."""
        asset = self.assets[name]
        if asset.shadow is None:
            return None
        placed = placed if placed is not None else self.placed(name, t, camera)
        base, lowest, under, at = self._shadow_lay(name, t, placed)
        return asset.shadow.gaussians(base, camera, lowest=lowest, under=under, t=at)

    def tipped(self, name: str, t: float) -> bool:
        """Whether an asset's contact shadow at world time t lies under the middle of its lowest
        part (film.shadow.contact_centre) rather than under its base: a rigid asset (no clips,
        IK or look-at) whose canonical up is off the world's +z (a simulated body, tumbling or
        at rest on its side; a script stands every other prop upright by a yaw). Upright, its
        base is the middle of its footprint (the canonical frame centres it); a character's
        lowest part is whichever foot is down, which a patch under it would follow from step to
        step."""
        asset = self.assets[name]
        return asset.performance is None and not np.array_equal(asset.place_at(t).rotation[:, 2], [0.0, 0.0, 1.0])

    def _shadow_lay(self, name: str, t: float,
                    placed: Gaussians) -> tuple[np.ndarray, float, np.ndarray | None, float | None]:
        """The point an asset's contact shadow at world time t lies under (its canonical origin,
        or when `tipped` its contact_centre), lowest_point of it `placed`, its contact_points
        where its shadow lies on a collider's mesh or on props' hulls (elsewhere they do not
        count: not worked out), and t, at which its props stand (ContactShadow.surface_height's
        arguments)."""
        asset = self.assets[name]
        shadow = asset.shadow
        lowest = lowest_point(placed, shadow)
        under = contact_points(placed, shadow, lowest) if shadow.mesh is not None or shadow.props else None
        base = contact_centre(placed, shadow, lowest) if self.tipped(name, t) else asset.place_at(t).translation
        return base, lowest, under, t

    def shadow_surface(self, name: str, t: float, camera: np.ndarray | None = None) -> float:
        """Height (m) above its ground plane of the surface an asset's contact shadow lies on
        at world time t (ContactShadow.surface_height): 0 on the ground plane, and without a
        shadow. An upright asset is placed (and posed) only where a raised surface is under its
        base."""
        asset = self.assets[name]
        shadow = asset.shadow
        if shadow is None:
            return 0.0
        # An upper bound on the set's centres: nothing raised under the base, none under its lowest
        # part. Not on a mesh or props' hulls, looked for under the lowest part alone (a rigid body:
        # cheap to place).
        if (shadow.mesh is None and not shadow.props and not self.tipped(name, t)
                and not shadow.surface_height(asset.place_at(t).translation)):
            return 0.0
        return shadow.surface_height(*self._shadow_lay(name, t, self.placed(name, t, camera)))

    def compose(self, t: float, visible: list[str] | None = None, camera: np.ndarray | None = None) -> Gaussians:
        """All visible assets at world time t, in world coordinates, as one Gaussians.
        camera: the frame's camera centre [3] (world), for assets that look at it."""
        return self.join(self.parts(t, visible, camera))[0]

    def join(self, parts: list[tuple[str, Gaussians]]) -> tuple[Gaussians, RasterizeMode | torch.Tensor]:
        """`parts` (as `parts` gives them) joined in order into one Gaussians (empty for none),
        and `rasterization`'s rasterize_mode for it: each asset's own mode for its Gaussians (contact
        shadows classic), one mode's name when all share it, else a per-Gaussian bool [N]."""
        from splatfilm.render import rasterize_modes

        g = Gaussians.concat([p for _, p in parts]) if parts else Gaussians.empty()
        return g, rasterize_modes((len(p), self.assets[n].rasterize_mode if n in self.assets else "classic")
                                  for n, p in parts)

    def signature(self, t: float, visible: list[str] | None = None, camera: np.ndarray | None = None) -> str:
        """A hash of what a frame at world time t sees of this world: which assets, their
        file contents and world transforms, and the joint transforms of performing ones.
        Equal signatures render equal frames."""
        names = list(self.assets) if visible is None else visible
        desc = []
        for n in names:
            asset = self.assets[n]
            entry = (n, asset.digest, np.round(asset.world_transform(t).matrix(), 9).tolist())
            entry += tuple(rasterize_mode_key(asset.rasterize_mode).values())
            if asset.performance is not None:
                # The pose, not the script's clip list: an edit to the schedule changes only the frames it moves.
                entry += (asset.performance.method, np.round(self.joint_globals(n, t, camera), 9).tolist())
            if asset.shadow is not None:
                entry += (asset.shadow.key(),)
                lay = self._shadow_lay(n, t, self.placed(n, t, camera)) if self.tipped(n, t) else None
                # The set's surface under it, where not the ground plane (which the key covers).
                lift = self.shadow_surface(n, t, camera) if lay is None else asset.shadow.surface_height(*lay)
                if lift:
                    entry += (round(lift, 9),)
                # A tipped body's patch, where it draws one, lies under its lowest part, not its
                # base as it did before: its frames render again; the others keep their keys.
                if lay is not None and asset.shadow.strength(*lay):
                    entry += (("under", np.round(lay[0], 9).tolist()),)
            desc.append(entry)
        return content_digest(desc)

    def target_function(self, name: str, world_start: float) -> Callable[[np.ndarray], np.ndarray]:
        """A moving target for a shot that starts at `world_start`: shot times [T] -> [T,3]."""
        asset = self.assets[name]
        return lambda times: np.array([asset.target(world_start + float(t)) for t in np.atleast_1d(times)])


def load_asset(name: str, path: Path, placement: Similarity, motion: Motion | None = None, canonical: bool | None = None,
               look_height: float | None = None, rasterize_mode: str | None = None, prim: str | None = None,
               spz_axes: str = SPZ_DEFAULT_AXES, upright: bool = False) -> Asset:
    """Load an asset file and its sidecar (`path` with .json), if any: object assets use the
    sidecar's canonical transform as `local` unless canonical=False; upright: a scene stands
    in its `upright_frame` (not with a canonical frame); a sidecar's known
    frame.scale_to_metres scales `local` after either (less the canonical transform's own
    scale), so the script's placement acts on metres; rasterize_mode: the
    asset's own (`assets.sidecar.asset_rasterize_mode`) unless given; prim (a USD file's splat
    prim) and spz_axes (an .spz file's axes) go to `io.gaussian_files.load_gaussians`. One
    shown in its own frame keeps its sidecar's frame.origin_offset (`Asset.origin_offset`) and
    stands as stored until `Asset.align_to` moves it."""
    from splatfilm.assets.sidecar import Sidecar, asset_rasterize_mode
    from splatfilm.assets.asset_frame import robust_bounds
    from splatfilm.io.asset_files import sidecar_path
    from splatfilm.assets.ground import upright_frame
    from splatfilm.io.gaussian_files import gaussian_file_digest, load_gaussians

    g = load_gaussians(path, spz_axes=spz_axes, prim=prim)
    digest = gaussian_file_digest(path, spz_axes, prim)
    local = Similarity()
    sidecar = Sidecar.of_asset(path)
    to_canonical = sidecar.canonical_transform if sidecar is not None else None
    use_canonical = canonical if canonical is not None else to_canonical is not None
    if use_canonical:
        if to_canonical is None:
            raise SplatfilmError(f"{path}: canonical: true, but {sidecar_path(path).name} has no canonical_transform")
        local = to_canonical
    if upright:
        if use_canonical:
            raise SplatfilmError(f"{path}: upright: true stands a scene up; this asset is placed by its canonical "
                                 f"frame already (give canonical: false to stand it up by its up instead)")
        local = upright_frame(path, g)
    to_metres = sidecar.frame.get("scale_to_metres") if sidecar is not None else None
    # A canonical transform's own scale already takes the file's units to its frame's (import
    # through a dataparser scale of 2 records scale 0.5 there and scale_to_metres 0.5).
    to_metres = None if to_metres is None else float(to_metres) / local.scale
    if to_metres is not None and to_metres != 1:
        local = Similarity(scale=to_metres) @ local
    if look_height is None:
        look_height = 0.0
        if use_canonical or upright:  # aim at 85% of the standing height: a character's face, a prop's top
            _, hi = robust_bounds(local.transform_gaussians(g))
            look_height = 0.85 * float(hi[2])
    return Asset(name, g, local, placement, motion, look_height, str(path), digest,
                 rasterize_mode=rasterize_mode or asset_rasterize_mode(path),
                 # An object's canonical frame is its own, wherever its capture lay.
                 origin_offset=sidecar.origin_offset if sidecar is not None and not (use_canonical or upright)
                 else None)
