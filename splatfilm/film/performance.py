"""A rigged asset's performance in a film: which clips it plays when, how its feet meet the
ground and where its head looks (the `clips:`, `ik:` and `look_at:` fields of an asset).

Per frame, in this order: the clip schedule gives local joint transforms (a crossfade blends
the clip before into the next one, each still advancing); IK puts the named legs' feet on
the set's ground plane (lowering the pelvis where a leg cannot reach); the look-at joint
turns towards its target within its limit. The result is global joint transforms [J,4,4]
in the asset's frame, for `splatfilm.scene.skinning.pose_gaussians`.

Clip time. A play starting at world time `start` runs at `speed` (clip seconds per world
second). When the asset walks (`walk:`) and a play has a stride (ground metres per cycle,
given as `stride:` or measured from the clip's planted feet by
`splatfilm.scene.locomotion.cycle_stride`), its clip time follows the ground instead:
(metres stepped since its start) / stride cycles, so planted feet stay planted, whatever the
walk's speed. Metres stepped are metres walked, except where the walk turns faster than it
walks (`splatfilm.film.world.PathWalk.stepping`): turning on the spot, the cycle keeps
stepping at the walk's cadence, and its strides shrink by the walk's `stride_scale` (the
feet's forward reach from under the hips; as animation tools warp strides to the ground
speed), to nothing on the spot, so the legs step in place while the body turns. A looping
clip wraps; a clip that does not loop holds its last pose. Before the first play starts, the
first clip holds its first pose. Clip time counts from the clip's first key (a Blender export
keyed from frame 1 has its keys from 1/fps s) and a clip loops over its keys, first to last.
A play starts `offset` seconds into its clip (0: its first key); one that follows the walk
after another that does (a walk into a run, or into itself) joins at the phase (the fraction
of its cycle) the one before has reached (`sync`, as Unreal's sync groups keep a blend's
cycles in step), so the crossfade blends like feet with like.

Root motion. A clip that carries the character itself (its hips advance a stride per cycle,
`splatfilm.scene.locomotion.root_motion`: Mixamo's walks without "In Place") played along a
walk has its root's travel along the ground taken out (`root_motion: lock`, the default there;
`splatfilm.scene.skeleton.lock_root`): the walk carries the body, the clip's own travel would
carry it twice as far and snap it back every cycle. Its stride is that travel. `root_motion:
keep` plays it as it is.

Feet on the ground. A foot joint's sole height is its height above the character's base
(z = 0 of the canonical frame) at the rest pose. Each frame the foot is put that far above
the ground plane (along its normal), plus whatever the clip lifts it above its sole height,
right below (along world up) where the clip put it: a planted foot stands on a slope, a
swinging one clears it by what the clip says. Feet tilt with the slope (`align_feet`). A
knee follows its foot (`splatfilm.scene.ik.two_bone_ik` with `follow_end`, the pole the
foot's front along the ground): the leg turns from the hip as far as the foot is turned
about it, so a foot held on its heading does not wring the shin, and a knee the clip leaves
nearly straight bends the foot's way.

Foot plants. A foot the clips lift less than PLANT_LIFT of its leg's length is planted and
held where it stands along the ground, heading as it was put down
(`splatfilm.scene.locomotion.FootPlants`), until they lift it past RELEASE_LIFT, carry it
RELEASE_RADIUS of its leg's length away (or turn it locomotion.YAW_RELEASE degrees, where the
plants are given no foot reach to swivel about), or until
holding it would lower the pelvis RELEASE_DROP of the leg below where the clips' own foot has
it (the hips of the clips' pose against the leg at full stretch); a foot let go steps
back to where and how the clips put it. In a crossfade from a walk into an idle the planted
foot stays put while the blend moves the body over it, and a foot left too far behind steps
in (before the leg straightens under a body walking on), instead of sliding to where the
idle would have it; while such a crossfade settles the feet (`Performance.settle`), one foot
stays planted, the one the blend puts down is planted where the idle will stand it, and the
other then steps there; a body turning over a planted foot
does not spin it about its ankle (the toe would skate): past locomotion.PIVOT_YAW the foot
swivels on its ball, its heel raised by up to PIVOT_HEEL degrees, so the thigh rolls little
against the pelvis, until it is let go as above (the clips lift it, the body carries it off
its plant, the hips would drop for it) and steps round.
The plants are worked out forward in time from the walk's start; a film keeps them in its
.splatfilm-cache/ (`Performance.keep_plants`), so a late frame in another run or process
starts from the states kept there.

Heel peel. A foot held behind the hips (planted while the other steps, or stepping back from
its plant) that the leg could reach only by lowering the pelvis RELEASE_DROP of the leg below
where the clips' own foot has it pivots heel up about its toe instead, by at most HEEL_OFF
degrees, its boot's lowest easing down onto the floor over the first HEEL_REST of them: from
no pitch, so the foot peels from and settles back into its pose without a jump.

Toe and heel clearance. The foot's own Gaussians (those bound to the foot joint or below it)
say where its sole is: standing at rest, their lowest (SOLE_PERCENTILE) lies LEVEL above the
base. However the clip pitches the foot, the IK keeps its lowest that high above the ground,
raising the foot where a toe-down swing (or a heel strike) would put the boot through the
floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np

from splatfilm.assets.ground import GroundPlane
from splatfilm.assets.posing import asset_rig
from splatfilm.errors import SplatfilmError
from splatfilm.scene.easing import smoothstep
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.ik import (aim_joint, check_chain, common_ancestor, drop_to_reach, joint_axes, lower_to_reach,
                               two_bone_ik)
from splatfilm.io.cache import CacheEntry
from splatfilm.io.digest import array_digest, content_digest
from splatfilm.scene import locomotion
from splatfilm.scene.locomotion import BALL, PIVOT_YAW, FootPlants, cycle_stride, root_motion
from splatfilm.scene.skeleton import (Animation, JointTRS, Rig, blend_poses, global_transforms, lock_root, sample_clip,
                                      subtree)
from splatfilm.scene.skinning import METHODS
from splatfilm.scene.transforms import (WORLD_UP, Similarity, heading_about, quat_from_rotation, quat_slerp,
                                       rotation_about, rotation_between, rotation_from_quat, wrap_degrees)
from splatfilm.yamlfields import At, mapping, number, show, vec3

__all__ = ["AnimationPlay", "CANONICAL_FRONT", "HEEL_OFF", "HEEL_REST", "HeadAim", "LegIK", "MIN_STRIDE", "PERFORMANCE_FIELDS", "PIVOT_EASE", "PIVOT_HEEL", "PLANT_LIFT",
           "PLANTS_VERSION", "Performance", "RELEASE_DROP", "RELEASE_LIFT", "RELEASE_RADIUS", "ROOT_MOTION_MODES",
           "SOLE_PERCENTILE", "parse_performance"]

PERFORMANCE_FIELDS = {"clips", "look_at", "ik", "skinning"}
CANONICAL_FRONT = np.array([0.0, -1.0, 0.0])
# A measured stride shorter than this (world metres per cycle) is a clip whose feet stay put
# (an idle): it plays in time, not with the ground.
MIN_STRIDE = 0.01
DEFAULT_LOOK_LIMIT = 60.0
# A play's `root_motion:` (module docstring).
ROOT_MOTION_MODES = ("lock", "keep")
# Foot plants, as fractions of the leg's length (hip to knee to foot at rest): planted while
# the clips lift the foot less than PLANT_LIFT (an idle's sway lifts a foot under 1%, a walk
# sets it down from 2% in the last frame before contact), let go above RELEASE_LIFT, or when
# the clips carry it RELEASE_RADIUS from its plant: further, a straight leg held there would
# have to drop the hips by over 1% of its length (d^2 / 2 leg), a visible crouch.
PLANT_LIFT = 0.03
RELEASE_LIFT = 0.06
RELEASE_RADIUS = 0.15
# A planted foot is also let go once holding it would drop the hips this much (a fraction of
# the leg) below where the clips' own foot has them: a trailing foot held on a nearly straight
# leg while the body walks on into an idle dipped the pelvis 16 mm before it was RELEASE_RADIUS
# away.
RELEASE_DROP = 0.01
# Degrees a foot held down behind the hips may peel its heel off the ground, pivoting on its
# toe, before the pelvis drops for it.
HEEL_OFF = 30.0
# Degrees of that peel by which the boot's lowest has come down onto the floor from where the
# foot stood (a clip's lift holds a trailing foot's flattened boot a few mm up): rested
# gradually, the foot peels from its pose unbroken.
HEEL_REST = 10.0
# Degrees a foot swivelling on its ball (locomotion.PIVOT_YAW) lifts its heel, eased in over
# the last PIVOT_EASE degrees of lag before it swivels: its heel sweeping round flat on the
# floor skated 0.2 m over a turn on the spot.
PIVOT_HEEL = 8.0
PIVOT_EASE = 4.0
# The version of the way foot plants are worked out (this module's clip feet, locomotion's
# FootPlants), in their cache's key: bump it when either changes what they give, and plants
# cached the old way are worked out again.
PLANTS_VERSION = 1
# The percentile of a foot's Gaussians' heights that counts as its sole: low, but past a
# stray splat or two.
SOLE_PERCENTILE = 0.5


@dataclass
class AnimationPlay:
    """One entry of the schedule: `clip` from world time `start` (seconds) at `speed`,
    looping or not, faded in from what played before over `crossfade` seconds. stride:
    world metres per cycle when the asset's walk drives it (None: it plays in time);
    offset: seconds into the clip (from its first key) it starts at; sync: it starts at the
    phase the play before it has reached instead (offset unused); root_travel: world metres
    per cycle its clip's own root motion carries the character, kept (0: none, or locked
    out of `clip`)."""

    clip: Animation
    start: float
    speed: float = 1.0
    loop: bool = True
    crossfade: float = 0.0
    stride: float | None = None
    offset: float = 0.0
    sync: bool = False
    root_travel: float = 0.0


@dataclass
class HeadAim:
    """A performance's `look_at:` (`shots.moves.LookAt` aims the camera instead): turn `joint`
    (its forward axis `forward` [3], keeping `up` [3] near, both in the joint's space) towards
    `target`: a world point [3], an asset's name or "camera" (the shot camera of the frame
    being rendered), by at most `limit_deg` from the clip's pose."""

    joint: int
    target: np.ndarray | str
    limit_deg: float
    forward: np.ndarray
    up: np.ndarray


@dataclass
class LegIK:
    """Two-bone IK on `legs` (hip, knee, foot joint indices) onto the world `ground` plane.
    sole_heights [L]: each foot joint's height above the canonical base at rest (canonical
    units); pelvis: the joint lowered when a leg cannot reach (None: none is lowered);
    align_feet: tilt the feet onto the slope. leg_lengths [L]: hip to knee to foot at rest
    (canonical units). soles: per leg, the foot's Gaussians [K,3] in the foot joint's rest
    frame (asset units) and their SOLE_PERCENTILE height at rest above the base (canonical
    units), or None (no clearance kept). fronts [L,3]: each foot's front at rest (the
    canonical front) in the foot joint's own axes, that its heading is measured by; reach
    [L]: how far its Gaussians reach from the foot joint along the ground (canonical units;
    0 where none follow it)."""

    legs: list[tuple[int, int, int]]
    ground: GroundPlane
    sole_heights: np.ndarray
    pelvis: int | None = None
    align_feet: bool = True
    leg_lengths: np.ndarray | None = None
    soles: list[tuple[np.ndarray, float] | None] = field(default_factory=list)
    fronts: np.ndarray | None = None
    reach: np.ndarray | None = None


@dataclass
class Performance:
    """A rigged asset's clips, IK and look-at (module docstring). walk_steps: world metres
    stepped by world time t (the asset's `walk:`, `PathWalk.stepping`), or None;
    stride_scale: the fraction (0 to 1) of a stride that goes forward at world time t
    (`PathWalk.stride_scale`), or None (all of it)."""

    rig: Rig
    plays: list[AnimationPlay]
    look_at: HeadAim | None = None
    ik: LegIK | None = None
    method: str = "lbs"
    walk_steps: Callable[[float], float] | None = None
    stride_scale: Callable[[float], float] | None = None
    _plants: tuple | None = field(default=None, repr=False)
    _plants_cache: tuple | None = field(default=None, repr=False)

    @cached_property
    def _rest(self) -> np.ndarray:
        """The rig's rest-pose globals [J,4,4], once: the feet read them every frame and every
        foot-plant sample."""
        return self.rig.rest_globals()

    def keep_plants(self, folder: Path, placement: str, place_at: Callable[[float], Similarity]) -> None:
        """Keep the foot plants worked out for the placement `place_at` (canonical -> world by
        world time; `placement`: the content key of it, the asset's file and its rig) in the cache
        folder `folder` (a film's .splatfilm-cache/), keyed by all they are made from: a later
        parse of the film, another worker or a viewer starts from them, not from the walk's first
        step (the plants are worked out forward from it, PLANT_STEP at a time)."""
        self._plants_cache = (Path(folder), placement, place_at)

    @property
    def plant_steps_worked(self) -> int:
        """How many steps of its foot plants this process has worked out (those resumed from the
        film's cache are not)."""
        return 0 if self._plants is None else self._plants[1].steps_worked

    def clip_time(self, play: AnimationPlay, t: float) -> float:
        """Seconds into `play`'s clip at world time t, from its first key (0 to its duration;
        `Animation.start` + this is the file's time)."""
        i = next(k for k, p in enumerate(self.plays) if p is play)
        return self._clip_time(play, t, self._joins[i])

    def _clip_time(self, play: AnimationPlay, t: float, join: float) -> float:
        """clip_time for a play that starts `join` seconds into its clip."""
        if play.stride is not None and self.walk_steps is not None:
            elapsed = (self.walk_steps(t) - self.walk_steps(play.start)) / play.stride * play.clip.duration
        else:
            elapsed = (t - play.start) * play.speed
        duration = play.clip.duration
        if duration <= 0:
            return 0.0
        elapsed = max(elapsed, 0.0) + join
        return math.fmod(elapsed, duration) if play.loop else min(elapsed, duration)

    @cached_property
    def _joins(self) -> list[float]:
        """Seconds into its clip each play starts at [P]: its offset, or, for one that syncs,
        the fraction of its clip's duration that the play before has reached of its own by
        then. Worked out once: the plays are fixed once the performance is made."""
        joins: list[float] = []
        for i, play in enumerate(self.plays):
            join = play.offset
            if play.sync and i > 0 and play.clip.duration > 0:
                before = self.plays[i - 1]
                if before.clip.duration > 0:
                    phase = self._clip_time(before, play.start, joins[i - 1]) / before.clip.duration
                    join = phase * play.clip.duration
            joins.append(join)
        return joins

    def local_pose(self, t: float) -> JointTRS:
        """Local joint transforms at world time t: the schedule, crossfades blended."""
        return self._pose(self._current(t), t)

    def play_weights(self, t: float) -> np.ndarray:
        """How much each play shows in the pose at world time t [P] (summing to 1): the one
        playing, and the ones before it that its crossfade (and theirs) still blend in."""
        weights = np.zeros(len(self.plays))
        i, rest = self._current(t), 1.0
        while True:
            w = self._fade(i, t)
            if i == 0 or w >= 1.0:
                weights[i] += rest
                return weights
            weights[i] += rest * w
            rest *= 1.0 - w
            i -= 1

    def _current(self, t: float) -> int:
        """The index of the play started last by world time t (the first before any starts)."""
        current = 0
        for i, play in enumerate(self.plays):
            if play.start <= t:
                current = i
        return current

    def _fade(self, i: int, t: float) -> float:
        """The weight (0 to 1) of play i over the pose before it at world time t: its
        crossfade's smoothstep (no kick at either end), 1 once faded in or without one."""
        play = self.plays[i]
        u = (t - play.start) / play.crossfade if play.crossfade > 0 else 1.0
        if u >= 1.0:
            return 1.0
        return smoothstep(u)

    def _pose(self, i: int, t: float) -> JointTRS:
        play = self.plays[i]
        pose = sample_clip(self.rig, play.clip, play.clip.start + self._clip_time(play, t, self._joins[i]))
        w = self._fade(i, t)
        if i == 0 or w >= 1.0:
            return pose
        return blend_poses(self._pose(i - 1, t), pose, w)

    def joint_globals(self, t: float, place_at: Callable[[float], Similarity], local: Similarity,
                      look_target: np.ndarray | None = None) -> np.ndarray:
        """Global joint transforms [J,4,4] (asset frame) at world time t, for an asset whose
        canonical frame stands at `place_at(t)` (canonical -> world, by world time: planted
        feet look back at where it stood) and whose own frame goes to the canonical one by
        `local`. look_target: the world point [3] the look-at joint turns to (None: no
        look-at this frame)."""
        L = self.local_pose(t).matrices()
        place = place_at(t)
        to_world = place @ local
        to_asset = Similarity(to_world.rotation.T, -to_world.rotation.T @ to_world.translation / to_world.scale,
                              1.0 / to_world.scale)
        if self.ik is not None:
            L = self._feet_on_ground(t, L, place_at, local, to_world, to_asset)
        if self.look_at is not None and look_target is not None:
            la = self.look_at
            L = aim_joint(self.rig, L, la.joint, to_asset.apply(np.asarray(look_target, np.float64)), la.forward,
                          la.up, la.limit_deg)
        return global_transforms(self.rig, L)

    def settle(self, t: float) -> float:
        """The world time (seconds, >= t) by which the clips stop carrying the feet on from
        where they put them at t: the end of a crossfade under way into a clip that plays in
        time (an idle, whose feet stay put), else t."""
        i = self._current(t)
        play = self.plays[i]
        if i == 0 or play.stride is not None or t >= play.start + play.crossfade:
            return t
        return play.start + play.crossfade

    def _stride_scale(self, t: float) -> float:
        """The walk's stride scale at world time t where a play it paces is playing, else 1."""
        if self.stride_scale is None:
            return 1.0
        playing = [p for p in self.plays if p.start <= t]
        if not playing or playing[-1].stride is None:
            return 1.0
        return self.stride_scale(t)

    def _clip_feet(self, G: np.ndarray, place: Similarity, local: Similarity,
                   w: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """How far the clip lifts each IK foot above its sole height [L] (canonical units),
        where it puts it [L,3] (world; its reach forward of the hip shrunk by the stride scale
        w, `_stride_scale` at that time) and its heading about the ground's normal [L]
        (degrees), from the clip's global transforms G [J,4,4]."""
        ik = self.ik
        feet = [leg[2] for leg in ik.legs]
        p = local.apply(G[feet, :3, 3])  # canonical
        lifts = np.maximum(p[:, 2] - ik.sole_heights, 0.0)
        if w < 1.0:
            rest = self._rest
            hips = [leg[0] for leg in ik.legs]
            under = local.apply(G[hips, :3, 3]) + local.apply(rest[feet, :3, 3]) - local.apply(rest[hips, :3, 3])
            p = p + ((w - 1.0) * ((p - under) @ CANONICAL_FRONT))[:, None] * CANONICAL_FRONT[None, :]
        return lifts, place.apply(p), self._headings(G, feet, (place @ local).rotation)

    def _headings(self, G: np.ndarray, feet: list[int], R: np.ndarray) -> np.ndarray:
        """The feet's headings [L] (degrees about the ground's normal, world) for the feet's
        global transforms G [J,4,4] in the asset's frame, R [3,3] turning it to the world's."""
        n = self.ik.ground.normal
        return np.array([heading_about(R @ G[foot, :3, :3] @ front, n) for foot, front in zip(feet, self.ik.fronts)])

    def _foot_plants(self, place_at: Callable[[float], Similarity], local: Similarity) -> FootPlants:
        """The feet's plants for this schedule and placement (made again when either changes)."""
        # Ids are safe here: the cached plants' sampler holds place_at (and its asset) and local,
        # and the plays hold their clips, so none of them can be freed and its id reused.
        key = (id(place_at.__self__) if hasattr(place_at, "__self__") else id(place_at), id(local),
               tuple((id(p.clip), p.start, p.speed, p.loop, p.crossfade, p.stride, j)
                     for p, j in zip(self.plays, self._joins)))
        if self._plants is not None and self._plants[0] == key:
            return self._plants[1]
        ik = self.ik

        hips = [leg[0] for leg in ik.legs]

        def sample(t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            G = global_transforms(self.rig, self.local_pose(t).matrices())
            place = place_at(t)
            return (*self._clip_feet(G, place, local, self._stride_scale(t)), (place @ local).apply(G[hips, :3, 3]))

        begin = min(0.0, self.plays[0].start)
        legs = ik.leg_lengths if ik.leg_lengths is not None else np.ones(len(ik.legs))
        scale = place_at(begin).scale
        plants = FootPlants(sample, PLANT_LIFT * legs, RELEASE_LIFT * legs, RELEASE_RADIUS * legs * scale, begin,
                            reach=None if ik.reach is None else ik.reach * scale,
                            leg_length=None if ik.leg_lengths is None else ik.leg_lengths * scale,
                            release_drop=RELEASE_DROP * legs * scale, normal=ik.ground.normal, settle=self.settle,
                            lift_unit=scale)
        if self._plants_cache is not None and self._plants_cache[2] == place_at:
            self._cached_plants(plants, local)
        self._plants = (key, plants)
        return plants

    def _cached_plants(self, plants: FootPlants, local: Similarity) -> None:
        """Resume `plants` from the film's cache (`keep_plants`) and keep their checkpoints there as
        they are worked out: rewritten as their count grows by a quarter, so a long film writes a
        few times what it keeps."""
        folder, placement, _ = self._plants_cache
        ik = self.ik
        settings = {name: getattr(locomotion, name) for name in locomotion.__all__ if name.isupper()}
        probes = sorted({plants.begin} | {t for p in self.plays for t in (p.start, p.start + p.crossfade)})
        key = content_digest({
            "version": PLANTS_VERSION, "placement": placement, "local": local.matrix().tolist(), "settings": settings,
            "plants": {name: np.asarray(value, np.float64).tolist() for name, value in (
                ("plant_lift", plants.plant_lift), ("release_lift", plants.release_lift), ("radius", plants.radius),
                ("begin", plants.begin), ("release_time", plants.release_time), ("step", plants.step),
                ("yaw_release", plants.yaw_release), ("pivot_yaw", plants.pivot_yaw), ("lift_unit", plants.lift_unit),
                ("normal", plants.normal)) + tuple((name, value) for name, value in (
                    ("reach", plants.reach), ("leg_length", plants.leg_length), ("release_drop", plants.release_drop))
                    if value is not None)},
            # A clip by its keys, not its name: `root_motion: lock` changes a clip's keys under its name.
            "plays": [[_clip_digest(p.clip), p.clip.start, p.clip.duration, p.start, p.speed, p.loop, p.crossfade,
                       p.stride, p.offset, p.sync, p.root_travel] for p in self.plays],
            "ik": {"legs": [list(leg) for leg in ik.legs], "ground": [*ik.ground.normal.tolist(), ik.ground.offset],
                   "soles": ik.sole_heights.tolist(), "fronts": None if ik.fronts is None else ik.fronts.tolist()},
            # What the clips do at the schedule's turns, as this code samples them: a change to how
            # clips are timed or read moves them, and the plants are worked out again.
            "probes": [[np.asarray(a, np.float64).tolist() for a in plants.sample(t) if a is not None] for t in probes]})
        try:
            entry = CacheEntry.in_folder(folder, "plants", key)
        except SplatfilmError:
            return  # nowhere to keep them (a read-only film and no cache root): worked out each run
        record = entry.lookup()
        stored = 0
        if record is not None and plants.resume(record.get("checkpoints")):
            stored = len(record["checkpoints"])

        def keep(worked: FootPlants) -> None:
            nonlocal stored
            states = worked.checkpoint_record()
            if len(states) < max(stored + 1, stored * 5 // 4):
                return
            try:
                entry.store(checkpoints=states)  # its folder made as it is written (under the cache root, maybe)
            except (OSError, SplatfilmError):
                return  # a cache that cannot be written: the plants are worked out again next time
            stored = len(states)

        plants.on_checkpoint = keep

    def _feet_on_ground(self, t: float, L: np.ndarray, place_at: Callable[[float], Similarity], local: Similarity,
                        to_world: Similarity, to_asset: Similarity) -> np.ndarray:
        ik = self.ik
        place = place_at(t)
        G = global_transforms(self.rig, L)
        n = ik.ground.normal
        R = to_world.rotation
        turn = R.T @ rotation_between(WORLD_UP, n) @ R if ik.align_feet else np.eye(3)
        up = R.T @ WORLD_UP
        rest = self._rest
        stepping = self._stride_scale(t)
        lifts, placed, headings = self._clip_feet(G, place, local, stepping)
        lifts = lifts * place.scale
        ground_xy, steps, held_headings = self._foot_plants(place_at, local).held(t, placed, headings)
        targets, turns, heights = [], [], []
        for i, ((_, _, foot), sole) in enumerate(zip(ik.legs, ik.sole_heights)):
            # A planted foot stands flat: its rest-pose up turned back to the body's up (a clip's
            # pitch would put the toe or heel through the floor), fully at no lift, easing off
            # as the clip lifts the foot by its sole height (heel strike, toe off, swing).
            carried = G[foot, :3, :3] @ np.linalg.solve(rest[foot, :3, :3], up)
            flat = rotation_between(carried, up)
            w = min(max(1.0 - lifts[i] / max(float(ik.sole_heights.max()) * place.scale, 1e-9), 0.0), 1.0)
            w = smoothstep(w)
            # Stepping in place (turning on the spot) a lifted foot stays flat too: its toe
            # clears the floor instead of sweeping round over it with the body.
            w = max(w, 1.0 - stepping)
            part = rotation_from_quat(quat_slerp(np.array([1.0, 0.0, 0.0, 0.0]), quat_from_rotation(flat), w))
            turns.append(turn @ part)
            spin = float(wrap_degrees(held_headings[i] - headings[i]))
            if spin != 0.0:  # a planted foot keeps its heading as the body turns over it (a stepping one eases round)
                turns[-1] = R.T @ rotation_about(n, math.radians(spin)) @ R @ turns[-1]
            # The foot joint above the ground, along its normal. A let-go foot's step lifts it at
            # least so high: a swing the clips already lift that high clears the floor as it is
            # (added on top, both feet stepping at a walk's start rose together, a crouch).
            height = sole * place.scale + max(lifts[i], steps[i])
            if i < len(ik.soles) and ik.soles[i] is not None:
                # However the foot is pitched, its sole stays as high above the ground as at rest.
                points, level = ik.soles[i]
                below = to_world.scale * (points @ (turns[-1] @ G[foot, :3, :3]).T @ R.T @ n)
                height = max(height, level * place.scale - float(np.percentile(below, SOLE_PERCENTILE)))
            P = np.array([ground_xy[i, 0], ground_xy[i, 1], placed[i, 2]])
            on_ground = P - ik.ground.signed_distance(P) / n[2] * WORLD_UP  # straight down (or up) onto the plane
            targets.append(to_asset.apply(on_ground + height * n))
            heights.append(height)
            self._swivel(i, G, targets, turns, (height - max(lifts[i], steps[i])) / to_world.scale, abs(spin), R, local)
        if ik.pelvis is not None:
            own = [to_asset.apply(p - ik.ground.signed_distance(p) / n[2] * WORLD_UP + h * n)
                   for p, h in zip(placed, heights)]
            targets, turns = self._heel_off(G, targets, turns, own, [h / to_world.scale for h in heights], R, local)
            L, _ = lower_to_reach(self.rig, L, ik.pelvis, ik.legs, targets, R.T @ WORLD_UP)
        # A knee points where its foot does, as a rig's knee pole follows the foot: the leg
        # turns with a foot held on the ground as the body turns over it (else the shin would
        # twist against the foot like a sweet wrapper), and a knee the clip leaves nearly
        # straight bends towards the foot's front along the ground.
        ground_up = R.T @ n
        for i, (leg, target, end_turn) in enumerate(zip(ik.legs, targets, turns)):
            pole = local.rotation.T @ CANONICAL_FRONT
            front = self._foot_heading(i, end_turn @ G[leg[2], :3, :3], ground_up)
            if front is not None:
                pole = front
            L = two_bone_ik(self.rig, L, leg, target, pole, end_turn, follow_end=True)
        return L

    def _foot_heading(self, i: int, foot: np.ndarray, ground_up: np.ndarray) -> np.ndarray | None:
        """Leg i's foot (its rotation `foot` [3,3], asset frame) pointing along the ground
        (`ground_up` [3] its normal): the unit direction [3] its toe points, or None where the
        rig has no foot fronts or the toe points at the floor (its heading says little)."""
        if self.ik.fronts is None:
            return None
        front = foot @ self.ik.fronts[i]
        front = front - (front @ ground_up) * ground_up
        norm = np.linalg.norm(front)
        return front / norm if norm >= 0.3 else None

    def _swivel(self, i: int, G: np.ndarray, targets: list[np.ndarray], turns: list[np.ndarray], height: float,
                lag: float, R: np.ndarray, local: Similarity) -> None:
        """Leg i's foot (its target targets[i] [3], asset frame, `height` above the ground in
        asset units; its turn turns[i] [3,3]) pitched heel up about its ball by up to
        PIVOT_HEEL degrees (in place) as its heading's lag behind the clips' (`lag`, degrees)
        nears locomotion.PIVOT_YAW, where the foot swivels on its ball: the heel comes off
        the floor rather than sweeping over it. G: the clips' globals [J,4,4]; R: the asset's
        rotation to the world's."""
        ik = self.ik
        if ik.reach is None or ik.fronts is None or ik.reach[i] <= 0:
            return
        u = (lag - (PIVOT_YAW - PIVOT_EASE)) / PIVOT_EASE
        if u <= 0.0:
            return
        ground_up = R.T @ ik.ground.normal
        foot = G[ik.legs[i][2], :3, :3]
        front = self._foot_heading(i, turns[i] @ foot, ground_up)
        if front is None:
            return
        ball = targets[i] - height * ground_up + front * BALL * ik.reach[i] / local.scale  # on the ground
        angle = np.array([math.radians(PIVOT_HEEL) * smoothstep(min(u, 1.0))])
        pivots, at = self._on_toe(i, foot, turns[i], targets[i], ball, front, angle, ground_up, local.scale)
        targets[i], turns[i] = at[0], pivots[0] @ turns[i]

    def _heel_off(self, G: np.ndarray, targets: list[np.ndarray], turns: list[np.ndarray], own: list[np.ndarray],
                  heights: list[float], R: np.ndarray, local: Similarity) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The feet's targets [L][3] (asset frame) and turns [L][3,3], each foot the hips
        [G: the clips' globals, J,4,4] could reach only by dropping more than RELEASE_DROP of
        its leg below what the clips' own foot (`own` [L][3]) needs risen onto its toe instead
        (heights [L]: each foot joint's above the ground, asset units), by at most HEEL_OFF
        degrees: a foot held behind a body walking on over it (planted while the other is off
        the ground, or stepping back from its plant) peels its heel as a walker's trailing
        foot does, rather than pulling the pelvis down. R: the asset's rotation to the world's."""
        ik = self.ik
        up, ground_up = R.T @ WORLD_UP, R.T @ ik.ground.normal
        pitches = np.radians(np.arange(0.0, HEEL_OFF + 0.5, 1.0))
        targets, turns = list(targets), list(turns)
        for i, (a, b, c) in enumerate(ik.legs):
            if ik.reach is None or ik.fronts is None or ik.leg_lengths is None or ik.reach[i] <= 0:
                continue
            hip = G[a, :3, 3]
            reach = (np.linalg.norm(G[b, :3, 3] - hip) + np.linalg.norm(G[c, :3, 3] - G[b, :3, 3])) * (1 - 1e-3)
            allowed = drop_to_reach(hip[None], own[i][None], np.array([reach]), up)[0] \
                + RELEASE_DROP * ik.leg_lengths[i] / local.scale
            if drop_to_reach(hip[None], targets[i][None], np.array([reach]), up)[0] <= allowed:
                continue
            front = self._foot_heading(i, turns[i] @ G[c, :3, :3], ground_up)
            if front is None:
                continue
            toe = targets[i] - heights[i] * ground_up + front * ik.reach[i] / local.scale  # on the ground
            pivots, candidates = self._on_toe(i, G[c, :3, :3], turns[i], targets[i], toe, front, pitches, ground_up,
                                              local.scale)
            need = drop_to_reach(np.repeat(hip[None], len(pitches), 0), candidates, np.full(len(pitches), reach), up)
            k = int(np.argmax(need <= allowed)) if (need <= allowed).any() else len(pitches) - 1
            angle = pitches[k]
            if 0 < k and need[k] <= allowed < need[k - 1]:  # between the grid's degrees: no jitter frame to frame
                angle = pitches[k - 1] + (pitches[k] - pitches[k - 1]) * (need[k - 1] - allowed) / (need[k - 1] - need[k])
            pivots, chosen = self._on_toe(i, G[c, :3, :3], turns[i], targets[i], toe, front, np.array([angle]),
                                          ground_up, local.scale)
            targets[i] = chosen[0]
            turns[i] = pivots[0] @ turns[i]
        return targets, turns

    def _on_toe(self, i: int, foot: np.ndarray, turn: np.ndarray, ankle: np.ndarray, toe: np.ndarray,
                front: np.ndarray, angles: np.ndarray, ground_up: np.ndarray,
                scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Leg i's foot (its clip rotation `foot` [3,3] turned by `turn` [3,3], its joint at
        `ankle` [3], asset frame) pitched heel up by each of `angles` [A] (radians) about its
        toe [3] (`front` [3] its way along the ground, `ground_up` [3] the ground's normal):
        the pitches [A,3,3] and where the foot joint goes [A,3]."""
        pivots = rotation_about(np.cross(ground_up, front), angles)
        out = toe + (pivots @ (ankle - toe))
        if i < len(self.ik.soles) and self.ik.soles[i] is not None:
            # The boot's own lowest stays where it was (on the floor for a planted foot), not the
            # toe's furthest reach, which a rounded toe cap holds off the ground; at no pitch the
            # foot is as it was, so a foot peels from and settles back to its pose unbroken.
            points, level = self.ik.soles[i]
            lowest = np.percentile(points @ (turn @ foot).T @ ground_up, SOLE_PERCENTILE)
            pitched = np.percentile(points @ np.einsum("aij,j->ai", np.swapaxes(pivots @ turn @ foot, 1, 2),
                                                       ground_up).T, SOLE_PERCENTILE, axis=0)
            above = (ankle - toe) @ ground_up + lowest - level / scale  # the boot's lowest over the floor
            rest = above * np.minimum(angles / math.radians(HEEL_REST), 1.0) if above > 0 else 0.0
            out += ((ankle - out) @ ground_up + lowest - pitched - rest)[:, None] * ground_up
        return pivots, out

    def needs_camera(self) -> bool:
        """Whether the head looks at the shot's camera (look_at: camera), so a pose depends on the shot."""
        return self.look_at is not None and isinstance(self.look_at.target, str) and self.look_at.target == "camera"


# ---- the film script's side ---------------------------------------------------------------


def _joint(rig: Rig, value: Any, at: At) -> int:
    if not isinstance(value, str):
        at.fail(f"expected a joint name, got {show(value)}")
    try:
        return rig.joint_index(value)
    except SplatfilmError as e:
        at.fail(str(e))


def _feet(rig: Rig, ik: LegIK | None) -> list[int]:
    """The foot joints a stride is measured from: the IK legs' ends, else joints named *foot* or *ankle*."""
    if ik is not None:
        return [leg[2] for leg in ik.legs]
    return [j for j, name in enumerate(rig.joint_names) if "foot" in name.lower() or "ankle" in name.lower()]


def _parse_ik(raw: Any, at: At, rig: Rig, local: Similarity, ground_of: Callable[[Any, At], GroundPlane],
              default_ground: str | None, gaussians: Gaussians) -> LegIK:
    ik = mapping(raw, at, {"legs", "ground", "align_feet"})
    legs_raw = ik.get("legs")
    if not isinstance(legs_raw, list) or not legs_raw:
        at["legs"].fail("expected a list of legs, each [hip, knee, foot] joint names")
    legs = []
    for i, leg in enumerate(legs_raw):
        if not isinstance(leg, list) or len(leg) != 3:
            at["legs"][i].fail(f"expected [hip, knee, foot] joint names, got {show(leg)}")
        chain = tuple(_joint(rig, name, at["legs"][i][k]) for k, name in enumerate(leg))
        try:
            check_chain(rig, chain)
        except SplatfilmError as e:
            at["legs"][i].fail(str(e))
        legs.append(chain)
    ground_name = ik.get("ground", default_ground)
    if ground_name is None:
        at["ground"].fail("missing: the asset whose ground plane the feet stand on (or give the asset on_ground)")
    plane = ground_of(ground_name, at["ground"])
    if abs(plane.normal[2]) < 0.1:
        at["ground"].fail(f"the ground plane of {ground_name!r} is too steep to stand on "
                          f"(normal {np.round(plane.normal, 3).tolist()})")
    align = ik.get("align_feet", True)
    if not isinstance(align, bool):
        at["align_feet"].fail(f"expected true or false, got {show(align)}")
    rest = rig.rest_globals()
    soles = np.array([max(float(local.apply(rest[foot, :3, 3])[2]), 0.0) for _, _, foot in legs])
    pelvis = common_ancestor(rig, [leg[0] for leg in legs])
    lengths = np.array([(np.linalg.norm(rest[b, :3, 3] - rest[a, :3, 3]) + np.linalg.norm(rest[c, :3, 3] - rest[b, :3, 3]))
                        * local.scale for a, b, c in legs])
    feet = [_sole(rig, foot, local, gaussians) for _, _, foot in legs]
    fronts = np.array([np.linalg.solve(rest[foot, :3, :3], local.rotation.T @ CANONICAL_FRONT) for _, _, foot in legs])
    fronts /= np.linalg.norm(fronts, axis=1, keepdims=True)
    # The toe's reach: what a foot turning on its plant sweeps round (a high percentile, past a stray splat).
    reach = np.array([0.0 if sole is None else
                      float(np.percentile(np.linalg.norm(((sole[0] @ rest[foot, :3, :3].T) @ local.rotation.T)[:, :2],
                                                         axis=1), 100 - SOLE_PERCENTILE)) * local.scale
                      for sole, (_, _, foot) in zip(feet, legs)])
    return LegIK(legs, plane, soles, pelvis, align, lengths, feet, fronts, reach)


# At most this many of a foot's Gaussians stand for its sole: plenty for a low percentile.
_SOLE_POINTS = 2048


def _sole(rig: Rig, foot: int, local: Similarity, gaussians: Gaussians) -> tuple[np.ndarray, float] | None:
    """A foot's opaque Gaussians (those following the foot joint or a joint below it most)
    [K,3] in the foot joint's rest frame, and their SOLE_PERCENTILE height above the base at
    rest (canonical units); None when no Gaussian follows the foot."""
    below = subtree(rig.parents, foot)
    strongest = rig.joints[np.arange(len(rig.joints)), rig.weights.argmax(1)]
    opaque = gaussians.opacities.detach().cpu().numpy() > 0.0  # opacity above one half
    mine = below[strongest] & opaque
    if not mine.any():
        return None
    means = gaussians.means.detach().cpu().double().numpy()[mine]
    means = means[:: max(1, math.ceil(len(means) / _SOLE_POINTS))]
    rest = rig.rest_globals()[foot]
    points = (means - rest[:3, 3]) @ np.linalg.inv(rest[:3, :3]).T
    return points, float(np.percentile(local.apply(means)[:, 2], SOLE_PERCENTILE))


def _parse_look_at(raw: Any, at: At, rig: Rig, local: Similarity, own_name: str, asset_names: list[str]) -> HeadAim:
    la = mapping(raw, at, {"joint", "target", "limit"})
    if "joint" not in la:
        at["joint"].fail("missing: the joint that turns (a head or neck)")
    joint = _joint(rig, la["joint"], at["joint"])
    if "target" not in la:
        at["target"].fail("missing: a point [x, y, z], an asset's name, or camera")
    target = la["target"]
    if isinstance(target, str):
        if target != "camera" and target not in asset_names:
            at["target"].fail(f"expected a point [x, y, z], camera, or one of the assets ({', '.join(asset_names)}), "
                              f"got {show(target)}")
        if target == own_name:
            at["target"].fail("an asset cannot look at itself")
    else:
        target = vec3(target, at["target"])
    limit = number(la.get("limit", DEFAULT_LOOK_LIMIT), at["limit"], "positive")
    if limit > 180:
        at["limit"].fail(f"expected degrees in (0, 180], got {show(la['limit'])}")
    forward, up = joint_axes(rig, joint, local.rotation.T @ CANONICAL_FRONT, local.rotation.T @ WORLD_UP)
    return HeadAim(joint, target, limit, forward, up)


def _clip_digest(clip: Animation) -> str:
    """A content hash of a clip's keys: each channel's joint, path, interpolation, times and values."""
    return array_digest({f"{k}:{ch.joint}:{ch.path}:{ch.interpolation}:{part}": np.asarray(a, np.float64)
                         for k, ch in enumerate(clip.channels) for part, a in (("times", ch.times), ("values", ch.values))})


def _parse_plays(raw: Any, at: At, rig: Rig, walks: bool, stride_of: Callable[[Animation], float],
                 travel_of: Callable[[Animation], float],
                 locked: Callable[[Animation], Animation]) -> list[AnimationPlay]:
    """The plays of a `clips:` list. stride_of(clip): world metres per cycle its planted
    feet slide back; travel_of(clip): world metres per cycle its root motion carries the
    character (0: none); locked(clip): the clip with its root motion taken out."""
    if not isinstance(raw, list) or not raw:
        at.fail("expected a list of {clip, start, speed, loop, crossfade, stride, offset, sync, root_motion}")
    plays: list[AnimationPlay] = []
    for i, entry in enumerate(raw):
        p_at = at[i]
        p = mapping(entry, p_at, {"clip", "start", "speed", "loop", "crossfade", "stride", "offset", "sync",
                                  "root_motion"})
        if "clip" not in p:
            p_at["clip"].fail("missing: the clip's name")
        try:
            clip = rig.clip(str(p["clip"]))
        except SplatfilmError as e:
            p_at["clip"].fail(str(e))
        start = number(p.get("start", 0.0), p_at["start"], "nonneg")
        if plays and not start > plays[-1].start:
            p_at["start"].fail(f"is not after clips[{i - 1}] ({plays[-1].start:g} s); list clips in the order they play")
        loop = p.get("loop", True)
        if not isinstance(loop, bool):
            p_at["loop"].fail(f"expected true or false, got {show(loop)}")
        crossfade = number(p.get("crossfade", 0.0), p_at["crossfade"], "nonneg")
        mode = p.get("root_motion")
        if mode is not None and mode not in ROOT_MOTION_MODES:
            p_at["root_motion"].fail(f"expected lock or keep, got {show(mode)}")
        travel = travel_of(clip)
        # Along a walk a clip's own root motion is locked unless kept: the walk carries the body.
        if mode == "lock" or (mode is None and walks and travel > 0):
            clip, kept = locked(clip), 0.0
        else:
            kept = travel
        stride = None
        if "stride" in p:
            if not walks:
                p_at["stride"].fail("a stride sets the cycle's rate from a walk's ground speed; this asset has no walk")
            stride = number(p["stride"], p_at["stride"], "positive")
        elif walks and kept == 0.0:
            measured = travel if travel > 0 else stride_of(clip)
            stride = measured if measured >= MIN_STRIDE else None
        if stride is not None and "speed" in p:
            p_at["speed"].fail(f"clip {clip.name!r} follows the walk (stride {stride:.3f} m per cycle), so its rate "
                               "comes from the ground speed; drop speed (or give stride to change it)")
        speed = number(p.get("speed", 1.0), p_at["speed"], "positive")
        offset = number(p.get("offset", 0.0), p_at["offset"], "nonneg")
        # A walk cycle after one joins in step by default (its feet land where the other's do).
        sync = p.get("sync", "offset" not in p and stride is not None and bool(plays) and plays[-1].stride is not None)
        if not isinstance(sync, bool):
            p_at["sync"].fail(f"expected true or false, got {show(sync)}")
        if sync and "offset" in p:
            p_at["offset"].fail("a play that syncs starts at the phase of the one before; drop offset or sync")
        if sync and not plays:
            p_at["sync"].fail("the first clip has no clip before it to join in step with")
        plays.append(AnimationPlay(clip, start, speed, loop, crossfade, stride, offset, sync, kept))
    return plays


def parse_performance(data: dict, at: At, name: str, asset_path: Path, gaussians: Gaussians, local: Similarity,
                      scale: float, walk_steps: Callable[[float], float] | None,
                      ground_of: Callable[[Any, At], GroundPlane], asset_names: list[str],
                      stride_scale: Callable[[float], float] | None = None,
                      kept: np.ndarray | None = None) -> Performance | None:
    """The performance an asset block asks for (`clips`, `ik`, `look_at`, `skinning`), or
    None when it asks for none. local: the asset's frame -> canonical; scale: canonical ->
    world (the placement's); walk_steps: the asset's walk (metres stepped by world time) or None;
    stride_scale: the walk's stride scale by world time, or None;
    ground_of(name, at): a named asset's world ground plane; gaussians: the asset's, at rest
    in its own frame (the feet's soles are read from them); kept: bool [N_file], which of the
    file's Gaussians `gaussians` are (its edits deleted the rest; None: all), so the rig binds
    those rows of its file."""
    if not any(k in data for k in PERFORMANCE_FIELDS):
        return None
    try:
        rig = asset_rig(asset_path, len(gaussians) if kept is None else len(kept))
        if kept is not None:
            rig = rig.select_gaussians(kept)
    except SplatfilmError as e:
        key = next(k for k in ("clips", "ik", "look_at", "skinning") if k in data)
        at[key].fail(f"{e}; clips, ik and look_at need a rigged asset")
    method = data.get("skinning", "lbs")
    if method not in METHODS:
        at["skinning"].fail(f"expected lbs or dqs, got {show(method)}")
    ik = _parse_ik(data["ik"], at["ik"], rig, local, ground_of, data.get("on_ground"), gaussians) if "ik" in data else None
    look = _parse_look_at(data["look_at"], at["look_at"], rig, local, name, asset_names) if "look_at" in data else None
    feet = _feet(rig, ik)
    up = local.rotation.T @ WORLD_UP

    def stride_of(clip: Animation) -> float:
        return cycle_stride(rig, clip, feet, up) * local.scale * scale

    # The root whose travel is root motion: the pelvis the legs hang from (the feet's common
    # ancestor: a joint above it, a root bone, moves it too).
    root = ik.pelvis if ik is not None else common_ancestor(rig, feet) if len(feet) > 1 else None
    travels: dict[str, float] = {}
    locks: dict[str, Animation] = {}

    def travel_of(clip: Animation) -> float:
        if clip.name not in travels:
            moved = 0.0 if root is None else float(np.linalg.norm(root_motion(rig, clip, root, feet, up)))
            moved = moved * local.scale * scale  # world metres
            travels[clip.name] = moved if moved >= MIN_STRIDE else 0.0
        return travels[clip.name]

    def locked(clip: Animation) -> Animation:
        if clip.name not in locks:
            locks[clip.name] = clip if root is None else lock_root(rig, clip, root, up)
        return locks[clip.name]

    if "clips" in data:
        plays = _parse_plays(data["clips"], at["clips"], rig, walk_steps is not None, stride_of, travel_of, locked)
    else:  # IK or look-at on the rest pose, held
        rest = Animation("rest", 0.0, [])
        plays = [AnimationPlay(rest, 0.0)]
    return Performance(rig, plays, look, ik, str(method), walk_steps, stride_scale)
