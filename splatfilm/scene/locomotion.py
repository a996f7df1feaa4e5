"""Walk cycles: how far a clip's feet carry a character per cycle.

A walk cycle made in place (as most tools export them: the hips stay over the origin) slides
each planted foot backwards under the body, like a treadmill. The ground the character
covers per cycle, its stride, is that belt's speed times the cycle's duration: played while
the character moves at v metres per second, the cycle must run stride / v seconds per
cycle for a planted foot to stand still on the ground (no foot skate).

A foot is planted (in contact) while its height along `up` is within `contact_fraction` of
its lift above its lowest point in the clip; the belt speed is the median speed of the
planted feet across `up` (the ground plane): the median, because a foot slowing down at the
start of its swing is still low for a moment.

A walk cycle with root motion (Mixamo's without "In Place": the hips advance a stride per
cycle and the planted feet stand still) is told by its root (`root_motion`): the joint's net
travel along the ground over one pass is at least ROOT_MOTION_SHARE of the distance its feet
go along the ground (an in-place walk's hips come back where they started, while its feet
go back and forth). `splatfilm.scene.skeleton.lock_root` takes that travel out, spread
evenly over the pass (as Unreal's root lock and Unity's Bake Into Pose do), keeping the hips'
bob, sway and surge within the cycle: the clip then plays in place, its planted feet sliding
back a stride per cycle like any in-place walk's.

Foot plants (`FootPlants`), as leg IK in animation tools locks feet: a foot the clips put down
(lifted less than `plant_lift`) is planted where it stands and held there, along the ground,
its heading about the ground's normal locked with it, while the clips (a crossfade from a
walk into an idle, a cycle played off the ground's pace, a body turning over the foot) would
slide or spin it; it is let go when the clips lift it past `release_lift`, carry it further
than `radius` from its plant (the leg could not follow), turn it more than `yaw_release`
degrees from its planted heading (the knee would twist; a foot whose toe's `reach` is known
swivels on its ball instead once the clips turn `pivot_yaw` past it, the ball staying put,
so the leg rolls no further in the hip), or when the hips, where the clips
put them, would have to drop more than `release_drop` further than for the clips' own foot
to reach it (a body walking on over a trailing foot held on a nearly straight leg: a dip,
well before the foot is `radius` away), and then eases back to where and
how the clips put it over `release_time` seconds, the way the plant held it off the clips'
foot closing as it goes with their swing, lifted over that way like a step (a person
stopping brings a trailing foot under the body so; one turning on the spot steps each foot
round). While the clips settle their feet (`settle`: a crossfade into an idle, whose feet
stay put, says by when), they are put where the clips will stand them then: a foot being put
down is drawn there over the last SETTLE_PULL of its radius and planted within SETTLE_NEAR
of it, a foot let go steps there rather than back to the clips' (still moving) foot, and one
foot stays planted while the other is off the ground (of two the clips would have let go, the
less urgent waits; so too while a foot swivels on its ball, turning on the spot). A foot
let go from the floor rises before it leaves its plant, and a foot stepping onto the spot the
clips settle it (one in the air as they begin settling steps there too, kept clear of the
floor) is over it before it comes down: LIFT_OFF of the step each. Plants are worked out forward in time on a fixed
step from a start where nothing moves yet, so a frame's feet do not depend on which frames
were asked for before it. Only every CHECKPOINT_STEPS-th step's state is kept, with the
steps since the last one: a time before those is worked out again from the checkpoint
before it (the same steps, so the same plants, bit for bit), and a long film holds a few
states a second of it, not one per step.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from splatfilm.scene.easing import smoothstep
from splatfilm.scene.ik import drop_to_reach
from splatfilm.scene.skeleton import Animation, Rig, global_transforms, sample_clip
from splatfilm.scene.transforms import wrap_degrees

__all__ = ["BALL", "CHECKPOINT_STEPS", "CONTACT_FRACTION", "LIFT_FIRST", "LIFT_OFF", "PIVOT_YAW", "PLANT_STEP",
           "RELEASE_TIME", "ROOT_MOTION_SHARE", "SETTLE_NEAR", "SETTLE_PULL", "STEP_HEIGHT", "YAW_RELEASE",
           "FootPlants", "cycle_stride", "foot_tracks", "root_motion"]

CONTACT_FRACTION = 0.1
# A clip whose root's net travel along the ground over one pass is at least this share of its
# feet's mean path along the ground moves the character itself (root motion): about 1 for a
# walk with root motion, near 0 for one in place (its feet go back and forth, its hips stay).
ROOT_MOTION_SHARE = 0.25
# Plants are worked out on this fixed step (seconds): fine against any frame rate.
PLANT_STEP = 1.0 / 240.0
# Every this many steps a plant state is kept for good (one a second at PLANT_STEP): a frame
# asked out of order is at most this many steps from one to work forward from.
CHECKPOINT_STEPS = 240
# Seconds a let-go foot takes to step from its plant back to where the clips put it, and how
# high that step lifts it (a fraction of the way it goes, at the middle of the step).
RELEASE_TIME = 0.25
STEP_HEIGHT = 0.3
# Degrees a planted foot's heading may lag the one the clips give it before it is let go and
# steps round (a foot that cannot pivot, PIVOT_YAW: one whose toe's reach is not known).
YAW_RELEASE = 30.0
# Degrees a planted foot's heading may lag the clips' before it swivels on the ball of its
# foot, BALL of its toe's reach ahead of the foot joint, the ball staying put: the leg turns
# about its hip as far as the foot lags (the thigh rolls), and a hip rolled past about 15
# degrees against its pelvis reads as a wrung leg. Held flat on its heading instead, the
# walker turning on the spot (180 degrees a second) rolled his thighs 30-32 degrees before
# each foot was let go, and with each plant that short both feet were off the floor at once
# for over half the turn.
PIVOT_YAW = 14.0
BALL = 0.7
# The fraction of its step a foot let go from swivelling on its ball (PIVOT_YAW) rises
# before it moves along the ground, and comes down after: eased over the whole step, it slid
# 0.5 mm with its toe still on the floor, and 0.1 mm landing.
LIFT_FIRST = 0.08
# While the clips settle their feet (a crossfade into an idle), a foot they put down within
# SETTLE_PULL of its radius of where they will stand it is drawn there, and planted within
# SETTLE_NEAR of it.
SETTLE_PULL = 0.5
SETTLE_NEAR = 0.05
# The fraction of its step a foot let go from the floor (the clips lift it no more than
# plant_lift) rises before it leaves its plant along the ground, and a foot stepping onto the
# spot the clips settle it comes down over, standing over it (a 1/24 s frame and a little
# more, at RELEASE_TIME).
LIFT_OFF = 0.25


# The fields of a plant state (`FootPlants._state`): bool or float, and the shape after the feet's axis.
_STATE_FIELDS = ((bool, ()), (float, (2,)), (float, (2,)), (float, ()), (float, ()), (float, ()), (float, (2,)),
                 (bool, ()), (bool, ()), (float, (3,)), (float, ()), (float, (2,)), (float, ()))


def foot_tracks(rig: Rig, clip: Animation, feet: list[int], samples: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Sample times [S+1] over one pass of the clip (clip seconds, its start to its end) and
    the feet's positions [S+1, F, 3] in the asset's frame."""
    times = np.linspace(clip.start, clip.end, samples + 1)
    pos = np.array([global_transforms(rig, sample_clip(rig, clip, float(t)))[feet, :3, 3] for t in times])
    return times, pos


def cycle_stride(rig: Rig, clip: Animation, feet: list[int], up: np.ndarray, samples: int = 96,
                 contact_fraction: float = CONTACT_FRACTION) -> float:
    """Ground covered per cycle of an in-place walk clip (asset-frame units): the planted
    feet's mean speed across `up` [3] times the clip's duration. 0 for a clip whose planted
    feet do not slide (an idle), or one without duration."""
    if clip.duration <= 0 or not feet:
        return 0.0
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    times, pos = foot_tracks(rig, clip, feet, samples)
    height = pos @ up  # [S+1, F]
    lo, hi = height.min(0), height.max(0)
    flat = pos - height[..., None] * up
    velocity = np.diff(flat, axis=0) / np.diff(times)[:, None, None]  # [S, F, 3]
    mid = (height[1:] + height[:-1]) / 2
    planted = mid <= lo + contact_fraction * np.maximum(hi - lo, 1e-9)
    if not planted.any():
        return 0.0
    speed = np.linalg.norm(velocity, axis=-1)[planted]
    return float(np.median(speed) * clip.duration)


def root_motion(rig: Rig, clip: Animation, root: int, feet: list[int], up: np.ndarray, samples: int = 96) -> np.ndarray:
    """How far the clip carries joint `root` along the ground over one pass [3] (asset
    frame and units: where it ends less where it starts, across `up` [3]) when that is root
    motion (at least ROOT_MOTION_SHARE of the feet's mean path along the ground); zeros when
    the clip plays in place, has no duration or no feet."""
    if clip.duration <= 0 or not feet:
        return np.zeros(3)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    ends = [global_transforms(rig, sample_clip(rig, clip, t))[root, :3, 3] for t in (clip.start, clip.end)]
    travel = ends[1] - ends[0]
    travel = travel - (travel @ up) * up
    _, pos = foot_tracks(rig, clip, feet, samples)
    flat = pos - (pos @ up)[..., None] * up
    path = float(np.linalg.norm(np.diff(flat, axis=0), axis=-1).sum(0).mean())
    moved = float(np.linalg.norm(travel))
    return travel if moved > 0.0 and moved >= ROOT_MOTION_SHARE * path else np.zeros(3)


@dataclass
class FootPlants:
    """Feet held where and as they were planted (module docstring), in the world.

    sample(t) -> (lifts [F], positions [F,3], headings [F], hips [F,3] or None): how far the
    clips lift each foot at world time t (any unit, the one plant_lift and release_lift [F]
    are in), where they put it (world metres, z up), its heading about the ground's normal
    (degrees) and where they put the top of its leg (world metres; None without leg_length).
    radius [F]: metres a clip may carry a planted foot away before it is let go. begin:
    world seconds before which nothing moves (feet are as the clips put them). reach [F]:
    metres from the foot joint to its toe along the ground, so that a foot stepping round
    lifts its toe clear of the floor, and a planted foot swivels on its ball (BALL of it) once
    the clips have turned pivot_yaw degrees past it (None, or 0 for a foot: it is held, and let
    go at yaw_release degrees). leg_length [F]: metres from the hip to the
    foot joint at full stretch (None: the hips are not watched); release_drop [F]: metres
    the hips may have to drop for a planted foot beyond what the clips' own foot needs (given
    with leg_length); normal [3]: the ground's, that a held foot moves along. settle: the
    world time (seconds, >= t) by which the clips stop carrying their feet on from where they
    put them at world time t, where they will stand them then (None: never settling).
    lift_unit: metres per unit of the clips' lifts. on_checkpoint(plants): called as new
    checkpoint states are kept (`checkpoint_record`), to keep them beyond this process (a
    later one `resume`s from them). steps_worked: how many steps this process has worked out
    (states resumed are not)."""

    sample: Callable[[float], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]
    plant_lift: np.ndarray
    release_lift: np.ndarray
    radius: np.ndarray
    begin: float
    release_time: float = RELEASE_TIME
    step: float = PLANT_STEP
    yaw_release: float = YAW_RELEASE
    pivot_yaw: float = PIVOT_YAW
    reach: np.ndarray | None = None
    leg_length: np.ndarray | None = None
    release_drop: np.ndarray | None = None
    normal: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    settle: Callable[[float], float] | None = None
    lift_unit: float = 1.0
    on_checkpoint: Callable[[FootPlants], None] | None = None
    steps_worked: int = field(default=0, repr=False)
    # State of step j * CHECKPOINT_STEPS at [j]; the states of steps _base, _base + 1, ...
    # (_base a checkpoint's step) in _recent; a lock, as the viewer renders a frame on one
    # thread while its timeline composes another.
    _checkpoints: list = field(default_factory=list, repr=False)
    _base: int = field(default=0, repr=False)
    _recent: list = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def checkpoint_record(self) -> list:
        """The checkpoint states kept (`_state`, one every CHECKPOINT_STEPS steps from step 0)
        as JSON values: per checkpoint, its fields in order, each a nested list."""
        with self._lock:
            return [[a.tolist() for a in state] for state in self._checkpoints]

    def resume(self, record: Any) -> bool:
        """Take the checkpoint states of a `checkpoint_record` of these same plants (the caller's
        content key says so) where they reach further than those worked out here: the steps from
        them are the ones that made them, so the plants are the same, bit for bit. False, taking
        nothing, for a record of another layout."""
        n = len(self.plant_lift)
        try:
            states = [tuple(np.array(v, dtype=bool if kind is bool else np.float64) for v, (kind, _) in
                            zip(state, _STATE_FIELDS, strict=True)) for state in record]
        except (TypeError, ValueError):
            return False
        if not all(a.shape == (n, *shape) for state in states for a, (_, shape) in zip(state, _STATE_FIELDS)):
            return False
        with self._lock:
            if len(states) <= len(self._checkpoints):
                return False
            self._checkpoints = states
            if not self._recent:
                self._base, self._recent = 0, [states[0]]
        return True

    @property
    def states_kept(self) -> int:
        """How many steps' plant states are held (checkpoints and those since the last one)."""
        return len(self._checkpoints) + len(self._recent)

    def _held(self, t: float, state: tuple, positions: np.ndarray,
              headings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ground positions [F,2], the step's lift [F] (metres) and headings [F] (degrees) at
        time t from the state of the step before it."""
        planted, lock, fade_from, fade_start, heading, turn_from, fade_clip, aim, swung, land, rise, dest, until = state
        out = positions[:, :2].copy()
        yaw = np.asarray(headings, np.float64).copy()
        lift = np.zeros(len(out))
        settling = ~planted & (t < until)
        if settling.any():
            # The clips are bringing their feet to where they will stand: a foot they are putting
            # down comes to rest there (eased in over the last SETTLE_PULL of its way, so it
            # does not plant a little short of it), and a foot that stepped waits there.
            off = out[settling] - dest[settling]
            d = np.linalg.norm(off, axis=1)
            pull = SETTLE_PULL * self.radius[settling]
            x = np.minimum(d / np.maximum(pull, 1e-12), 1.0)
            near = np.where(d < pull, pull * x * x * (2.0 - x) / np.maximum(d, 1e-12), 1.0)
            out[settling] = dest[settling] + off * near[:, None]
            out[settling & aim] = dest[settling & aim]
        # Over on the plant step it ends on, which the times' float sums can miss by an ulp (the
        # foot then went on with the clips' for a step before it was put down).
        fading = ~planted & (t - fade_start < self.release_time - 1e-9)
        if fading.any():
            u = np.clip((t - fade_start[fading]) / self.release_time, 0.0, 1.0)
            s = smoothstep(u)
            # The way the plant held it off the clips' foot when let go closes: the foot goes
            # with the clips' swing from there (eased to where they put it then, a foot that
            # swings on lagged behind it, and a held leg stretched hips down to reach it). A foot
            # let go while the clips settle their feet steps to where they will stand.
            clip = positions[fading, :2]
            gap = fade_from[fading] - fade_clip[fading]
            # Toward where the foot goes once the fade is over (the clips' foot, drawn to its
            # spot while they settle): no jump when the fade ends inside a settling.
            goal = np.where(aim[fading, None], dest[fading], out[fading])
            # A foot let go from the floor rises before it leaves its plant, and one stepping onto
            # the spot the clips settle it is over it before it comes down (LIFT_OFF): gone with
            # the clips' foot from the first, the walk's first step slid 24 mm along the floor in
            # a frame, and the last one, put down by the crossfade into the idle, 58 mm.
            low = rise[fading] <= self.plant_lift[fading]
            aloft = aim[fading] & ~low  # stepping onto its spot from a swing
            first, last = np.where(low, LIFT_OFF, 0.0), np.where(low | aim[fading], LIFT_OFF, 0.0)
            go = smoothstep(np.clip((u - first) / (1.0 - first - last), 0.0, 1.0))
            ride = clip + gap * (1.0 - go)[:, None] + (goal - clip) * go[:, None]
            ride = np.where(low[:, None], fade_from[fading] + (ride - fade_from[fading]) * go[:, None], ride)
            spin = wrap_degrees(turn_from[fading] - yaw[fading])
            # a foot that swivels lags the clips' by pivot_yaw at most, stepping too
            spin = np.where(self._swivels()[fading], np.clip(spin, -self.pivot_yaw, self.pivot_yaw), spin)
            turned = yaw[fading] + spin * (1.0 - s)
            # A foot let go from swivelling on its ball while the clips keep it down (a body
            # turning over it) steps from where it stands to where and as they put it at the
            # step's end (`land`), easing to rest there: gone with the clips' foot, carried round
            # the turning body, it skated 3 mm a frame before its toe left the floor and again as
            # it came down. Its heading lags the clips' by little more than it did swivelling.
            off, rest = swung[fading], 1.0 - s  # how much of its turn is left to go about its ball
            if off.any():
                to = land[fading][off]
                there = to[:, :2] + (goal[off] - clip[off])  # drawn with the clips' foot while they settle
                go = smoothstep(np.clip((u[off] - LIFT_FIRST) / (1.0 - 2.0 * LIFT_FIRST), 0.0, 1.0))
                ride[off] = fade_from[fading][off] * (1.0 - go[:, None]) + there * go[:, None]
                step = turn_from[fading][off] + wrap_degrees(to[:, 2] - turn_from[fading][off]) * go
                turned[off] = turned[off] + wrap_degrees(step - turned[off]) * go  # the short way round
                rest[off] = 1.0 - go
            out[fading] = ride
            yaw[fading] = turned
            if self.reach is not None:
                # A foot let go goes on turning about its ball as it rises, the way it swivelled
                # (turned about its ankle from the first step, the ball skated 8 mm a frame).
                ball = BALL * self.reach[fading, None]
                out[fading] += ball * (self._ahead(turn_from[fading]) - self._ahead(yaw[fading])) * rest[:, None]
            # A foot let go steps over: it rises by STEP_HEIGHT of the way its toe has to go
            # besides where the clips carry it (their own lift carries their swing; measured
            # to a clip foot swinging on, a walk starting from a crossfade that spread both
            # planted feet lifted both 5 cm at once, a crouch).
            reach = self.reach[fading] if self.reach is not None else 0.0
            way = np.where(aim[fading] & ~aloft, np.linalg.norm(fade_from[fading] - dest[fading], axis=1),
                           np.linalg.norm(gap, axis=1))
            lift[fading] = STEP_HEIGHT * (way + reach * np.radians(np.abs(spin))) * 4 * u * (1 - u)
            # A swing the clips settle (the crossfade brings it down as it goes on) keeps clear of
            # the floor, by what counts as down, till it is over its spot, and comes down there
            # over the last LIFT_OFF of its step; higher, with the trailing foot's heel peeling
            # meanwhile, neither boot stood on the floor at its height.
            clear = np.minimum(rise[fading], self.plant_lift[fading]) * self.lift_unit
            kept = clear * smoothstep(np.clip((1.0 - u) / LIFT_OFF, 0.0, 1.0))
            lift[fading] = np.where(aloft, np.maximum(lift[fading], kept), lift[fading])
        out[planted], yaw[planted] = self._pivot(lock, heading, yaw, planted)
        return out, lift, yaw

    def _pivot(self, lock: np.ndarray, heading: np.ndarray, headings: np.ndarray,
               planted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The planted feet's ground positions [P,2] and headings [P] (degrees), each held at
        lock [F,2] and heading [F] unless the clips' heading (headings [F]) has turned more
        than pivot_yaw from it: then swivelled on the ball of the foot (BALL of its reach ahead
        of the foot joint, along its heading; it stays put) to lag them by pivot_yaw."""
        out, yaw = lock[planted].copy(), heading[planted].copy()
        if self.reach is None:
            return out, yaw
        lag = wrap_degrees(np.asarray(headings, np.float64)[planted] - yaw)
        turn = np.where((np.abs(lag) > self.pivot_yaw) & self._swivels()[planted],
                        lag - np.sign(lag) * self.pivot_yaw, 0.0)
        ball = BALL * self.reach[planted, None]
        out += ball * (self._ahead(yaw) - self._ahead(yaw + turn))
        return out, yaw + turn

    def _swivels(self) -> np.ndarray:
        """Which feet [F] swivel on their ball: those with a reach (a foot no Gaussians follow has
        0, no ball to swivel on: held, it is let go at yaw_release, not spun about its ankle)."""
        return np.zeros(len(self.release_lift), bool) if self.reach is None else self.reach > 0

    def _ahead(self, headings: np.ndarray) -> np.ndarray:
        """Unit directions along the ground [N,2] (world x, y: a held foot moves along the
        ground's plane, its height found below it) of headings [N] (degrees about its normal)."""
        n = self.normal
        e1 = np.array([1.0, 0.0, 0.0]) - n[0] * n
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(n, e1)
        h = np.radians(np.asarray(headings, np.float64))
        return (np.cos(h)[:, None] * e1 + np.sin(h)[:, None] * e2)[:, :2]

    def _state(self, k: int) -> tuple:
        """The plants after step k (time begin + k step): (planted [F] bool, plant [F,2],
        the plant being let go [F,2], when it was let go [F] seconds, the planted heading
        [F] and the one being let go [F], degrees, where the clips put the foot when it was
        let go [F,2], whether it steps to where the clips settle it [F] bool, whether it was
        let go from swivelling on its ball, the clips keeping it down [F] bool, and where and
        as they put it when its step ends [F,3] (x, y, heading), how far the clips lifted it
        when its step began [F] (lift units), where the clips settle it [F,2] and when they are
        settled [F] seconds). Worked out forward from the nearest kept state at or before step
        k; on_checkpoint is then told of new checkpoints."""
        with self._lock:
            kept = len(self._checkpoints)
            state = self._step_to(k)
        if self.on_checkpoint is not None and len(self._checkpoints) > kept:
            self.on_checkpoint(self)
        return state

    def _step_to(self, k: int) -> tuple:
        """`_state(k)`, the lock held."""
        every = CHECKPOINT_STEPS
        if not self._checkpoints:
            self._checkpoints.append(self._advance(0, None))
            self._base, self._recent = 0, [self._checkpoints[0]]
        if not self._base <= k < self._base + len(self._recent):
            start = min(k // every, len(self._checkpoints) - 1) * every
            if self._base != start:  # the steps held are not the nearest way to step k
                self._base, self._recent = start, [self._checkpoints[start // every]]
        while self._base + len(self._recent) <= k:
            i = self._base + len(self._recent)
            state = self._advance(i, self._recent[-1])
            if i % every:
                self._recent.append(state)
                continue
            if i // every == len(self._checkpoints):
                self._checkpoints.append(state)
            self._base, self._recent = i, [state]
        return self._recent[k - self._base]

    def _advance(self, i: int, prev: tuple | None) -> tuple:
        """The state after step i (`_state`) from the one after step i - 1 (None for step 0)."""
        self.steps_worked += 1
        t = self.begin + i * self.step
        lifts, positions, headings, hips = self.sample(t)
        headings = np.asarray(headings, np.float64)
        if prev is None:
            n = len(lifts)
            prev = (np.zeros(n, bool), positions[:, :2].copy(), positions[:, :2].copy(), np.full(n, -np.inf),
                    headings.copy(), headings.copy(), positions[:, :2].copy(), np.zeros(n, bool), np.zeros(n, bool),
                    np.zeros((n, 3)), np.zeros(n),
                    positions[:, :2].copy(), np.full(n, -np.inf))
        prev = self._settling(t, prev)
        held, _, held_yaw = self._held(t, prev, positions, headings)
        planted, lock, fade_from, fade_start, heading, turn_from, fade_clip, aim, swung, land, rise, dest, until = (a.copy() for a in prev)
        lock[planted], heading[planted] = held[planted], held_yaw[planted]  # swivelled on its ball (_pivot)
        drift = np.linalg.norm(positions[:, :2] - lock, axis=1)
        spin = np.abs(wrap_degrees(headings - heading))
        # Turned past its yaw release a foot goes whatever the other does (held on, the knee
        # would wring; a body turning on the spot outturns steps taken one at a time).
        lifted = planted & ((lifts > self.release_lift) | (spin > self.yaw_release))
        urge = drift / self.radius
        if self.leg_length is not None:
            urge = np.maximum(urge, self._sink(positions, lock, hips) / self.release_drop)
        wanted = planted & ~lifted & (urge > 1.0)
        settling = t < until[0] if len(until) else False
        # A foot swivelling on its ball (the body turning on the spot over it) is carried off
        # its plant as the hips turn about their middle, not about it: stepped round while the
        # other was still in the air, both feet left the floor at once.
        pivoting = (wanted & self._swivels() & (spin >= self.pivot_yaw - 1e-6)).any()
        if (settling or pivoting) and len(planted) > 1 and wanted.any() and not (planted & ~lifted & ~wanted).any():
            # While the clips settle their feet, one stays on the ground: a foot they would keep down, that its plant
            # would only carry too far or drop the hips for (its heel peels instead, in
            # splatfilm.film.performance), waits while no other foot is planted; of two, the
            # less urgent waits.
            wanted[np.flatnonzero(wanted)[np.argmin(urge[wanted])]] = False
        let_go = lifted | wanted
        # A foot stepping back to the clip lands first: no plant before its release ends; while
        # the clips settle their feet, a foot is put down where they will stand it.
        plant = ~planted & (lifts <= self.plant_lift) & (t - fade_start >= self.release_time - 1e-9)
        plant &= (t >= until) | (np.linalg.norm(held - dest, axis=1) <= SETTLE_NEAR * self.radius)
        fade_from[let_go], turn_from[let_go], fade_start[let_go] = lock[let_go], heading[let_go], t
        fade_clip[let_go] = positions[let_go, :2]
        aim[let_go] = t < until[let_go]
        rise[let_go] = lifts[let_go]
        # A foot in the air as the clips begin settling steps onto the spot they will stand it
        # (they would put it down short of it, still swinging on, and carry it over the floor).
        aloft = ~planted & ~let_go & (t < until) & ~aim & (t - fade_start >= self.release_time - 1e-9)
        fade_from[aloft], turn_from[aloft], fade_start[aloft] = held[aloft], held_yaw[aloft], t
        fade_clip[aloft], rise[aloft], aim[aloft], swung[aloft] = positions[aloft, :2], lifts[aloft], True, False
        swung[let_go] = (spin[let_go] >= self.pivot_yaw - 1e-6) & (lifts[let_go] <= self.release_lift[let_go]) \
            & self._swivels()[let_go]
        if swung[let_go].any():  # `_held`: where the clips put it as its step ends
            _, ahead, ahead_yaw, _ = self.sample(t + self.release_time)
            land[let_go & swung] = np.column_stack([ahead[:, :2], ahead_yaw])[let_go & swung]
        planted[let_go] = False
        # Planted where and as it is: no jump.
        lock[plant], heading[plant], planted[plant] = held[plant], held_yaw[plant], True
        aim[plant] = swung[plant] = False
        return planted, lock, fade_from, fade_start, heading, turn_from, fade_clip, aim, swung, land, rise, dest, until

    def _settling(self, t: float, state: tuple) -> tuple:
        """The state with the clips' settling at time t (`settle`) in it: when they will stop
        carrying the feet [F] (seconds) and where they will stand them then [F,2]."""
        if self.settle is None:
            return state
        end = self.settle(t)
        if end <= t:
            # The clips stopped settling before the window said (a walk taken up again inside
            # the crossfade into an idle): the window closes, feet no longer aim at its spots.
            until = state[-1]
            return state if not (until > t).any() else (*state[:-1], np.minimum(until, t))
        if end == state[-1][0]:
            return state
        return (*state[:-2], self.sample(end)[1][:, :2].copy(), np.full(len(state[0]), end))

    def _sink(self, positions: np.ndarray, lock: np.ndarray, hips: np.ndarray) -> np.ndarray:
        """How much further [F] (metres) the hips [F,3] must drop to reach the feet held at
        lock [F,2] than to reach them where the clips put them (positions [F,3])."""
        n = self.normal
        way = lock - positions[:, :2]
        held = positions + np.column_stack([way, -(way @ n[:2]) / n[2]])  # along the ground
        up = np.array([0.0, 0.0, 1.0])
        return drop_to_reach(hips, held, self.leg_length, up) - drop_to_reach(hips, positions, self.leg_length, up)

    def held(self, t: float, positions: np.ndarray,
             headings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ground positions [F,2] (world x, y, metres) and headings [F] (degrees about the
        ground's normal) of the feet at world time t, given where and how the clips put them
        then (positions [F,3], headings [F]): planted feet held, let-go ones stepping back
        (and the height [F], metres, that step lifts them by, second), the others as given."""
        headings = np.asarray(headings, np.float64)
        if t < self.begin:
            return np.asarray(positions, np.float64)[:, :2].copy(), np.zeros(len(positions)), headings.copy()
        k = math.floor((t - self.begin) / self.step)
        return self._held(t, self._state(k), np.asarray(positions, np.float64), headings)
