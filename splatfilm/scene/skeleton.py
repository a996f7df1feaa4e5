"""Skeletons and their animation clips: joints, rest pose, inverse binds, keyframed channels.

A `Rig` is a skeleton (joints with parents, a rest pose of local transforms, an inverse
bind matrix per joint), its clips, and the binding of an asset's Gaussians to it (up to 4
joints and weights per Gaussian). Every transform is in the asset's frame: a joint's
global transform maps the joint's local space into the asset's frame, as glTF's node
world matrices map into the glTF scene frame.

Local poses are `JointTRS` (translation, rotation as a (w, x, y, z) quaternion, scale per
joint): what clips animate, what a crossfade blends and what look-at overrides.
`global_transforms` turns them into 4x4 matrices [J,4,4] down the hierarchy; IK may
override those before skinning (`splatfilm.scene.skinning.pose_gaussians`).

Sampling follows glTF 2.0: LINEAR (rotation by spherical linear interpolation on the
shorter arc), STEP (the value of the key at or before the time) and CUBICSPLINE (Hermite
with per-key in/out tangents scaled by the key interval; rotations normalised after).
Before the first key a channel holds the first value, after the last key the last.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.scene.transforms import quat_from_rotation, quat_slerp, rotation_from_quat

__all__ = ["Animation", "Channel", "JointTRS", "Rig", "blend_poses", "global_transforms", "joint_depths", "lock_root",
           "matrix_to_trs", "sample_channel", "sample_clip", "subtree", "trs_to_matrix"]

PATHS = {"translation": 3, "rotation": 4, "scale": 3}
INTERPOLATIONS = ("LINEAR", "STEP", "CUBICSPLINE")


# ---- transforms as matrices (numpy, float64) -----------------------------------------------


def trs_to_matrix(translation: np.ndarray, rotation: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """4x4 matrices [..., 4, 4] = T * R * S (glTF's order) from translation [..., 3],
    (w, x, y, z) rotation [..., 4] (normalised here) and scale [..., 3]."""
    t = np.asarray(translation, np.float64)
    R = rotation_from_quat(rotation)
    m = np.zeros(t.shape[:-1] + (4, 4))
    m[..., :3, :3] = R * np.asarray(scale, np.float64)[..., None, :]
    m[..., :3, 3] = t
    m[..., 3, 3] = 1.0
    return m


def matrix_to_trs(m: np.ndarray, tol: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Translation [..., 3], (w, x, y, z) rotation [..., 4] and scale [..., 3] of affine
    matrices [..., 4, 4] with m = T * R * S, and whether every matrix is one (False: shear,
    a zero scale or a projective row; the result is then only the nearest TRS). A mirror
    (det < 0) is taken as a negative x scale."""
    m = np.asarray(m, np.float64)
    L = m[..., :3, :3]
    s = np.linalg.norm(L, axis=-2)  # column lengths
    det = np.linalg.det(L)
    s[..., 0] = np.where(det < 0, -s[..., 0], s[..., 0])
    ok = np.all(np.abs(s) > 1e-12, axis=-1)
    R = L / np.where(np.abs(s) > 1e-12, s, 1.0)[..., None, :]
    exact = bool(np.all(ok)) and np.allclose(np.swapaxes(R, -1, -2) @ R, np.eye(3), atol=tol) \
        and np.allclose(m[..., 3, :], [0.0, 0.0, 0.0, 1.0], atol=tol)
    if not exact:  # fall back to the rotation nearest to R, so the result is still a rotation
        U, _, Vt = np.linalg.svd(R)
        D = np.ones(R.shape[:-1])
        D[..., 2] = np.sign(np.linalg.det(U @ Vt))
        R = (U * D[..., None, :]) @ Vt
    return m[..., :3, 3].copy(), quat_from_rotation(R), s, exact


# ---- data ----------------------------------------------------------------------------------


@dataclass
class Channel:
    """One animated property of one joint.

    joint: index into the rig's joints; path: 'translation', 'rotation' or 'scale';
    interpolation: 'LINEAR', 'STEP' or 'CUBICSPLINE'; times [K] seconds, increasing;
    values [K, C] (C = 3, or 4 for rotation as (w, x, y, z)), or for CUBICSPLINE
    [K, 3, C]: in-tangent, value, out-tangent per key (tangents in units per second)."""

    joint: int
    path: str
    interpolation: str
    times: np.ndarray
    values: np.ndarray


@dataclass
class Animation:
    """A named animation, as glTF's (what a film script's `clips:` play: film.performance's
    AnimationPlay): its channels, its `start` (seconds: the first key of any channel, as the
    file times it) and `duration` (seconds from there to the last key of any channel).
    One pass of the clip is clip seconds [start, start + duration]: a clip exported keyed
    from frame 1 (Blender's default, no slide to zero) starts at 1/fps, and loops over its
    keys, not from 0. Times into a clip (a film's clip plays, `splatfilm pose --time`) count
    from its start; `sample_clip` takes the file's clip seconds."""

    name: str
    duration: float
    channels: list[Channel] = field(default_factory=list)
    start: float = 0.0

    @property
    def end(self) -> float:
        """Clip seconds of its last key: start + duration."""
        return self.start + self.duration

    @classmethod
    def of_channels(cls, name: str, channels: list[Channel]) -> Animation:
        """The clip of these channels, spanning their keys (no channels: empty, at 0)."""
        if not channels:
            return cls(name, 0.0, [])
        start = min(float(ch.times[0]) for ch in channels)
        return cls(name, max(float(ch.times[-1]) for ch in channels) - start, channels, start)


@dataclass
class JointTRS:
    """Local transforms of J joints: translation [J,3], rotation [J,4] (w, x, y, z), scale [J,3]."""

    translation: np.ndarray
    rotation: np.ndarray
    scale: np.ndarray

    def matrices(self) -> np.ndarray:
        """The local 4x4 matrices [J,4,4] (T * R * S)."""
        return trs_to_matrix(self.translation, self.rotation, self.scale)

    def copy(self) -> "JointTRS":
        """A deep copy: each of the three arrays copied, so edits to it leave this pose as it was."""
        return JointTRS(self.translation.copy(), self.rotation.copy(), self.scale.copy())


@dataclass
class Rig:
    """A skeleton, its clips, and an asset's Gaussians bound to it.

    joint_names [J]; parents [J] int (-1 for a root; a parent comes before its children);
    rest: the rest pose (JointTRS, local to the parent); inverse_binds [J,4,4]: from the
    asset's frame into each joint's space at bind time; clips by name (in file order);
    joints [N,4] int and weights [N,4] float (each row sums to 1; unused slots have weight
    0): the up-to-4 joints each Gaussian of the asset follows. The Gaussians are stored at
    the rest pose. `source`: free-form notes on where the rig came from. in_skin [J] bool:
    which joints a glTF skin lists (its `joints`): the others are nodes kept for what their
    transforms move or carry (an armature above the skeleton, a mesh's own node), not bones
    to name in IK; None where not known (a rig file written before it was kept)."""

    joint_names: list[str]
    parents: np.ndarray
    rest: JointTRS
    inverse_binds: np.ndarray
    clips: dict[str, Animation]
    joints: np.ndarray
    weights: np.ndarray
    source: dict = field(default_factory=dict)
    in_skin: np.ndarray | None = None

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def joint_index(self, name: str) -> int:
        """Index of the joint called `name`, or a SplatfilmError naming the joints there are,
        the likeliest meant first (`_near_joint_names`)."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            near = _near_joint_names(name, self.joint_names)
            hint = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
            raise SplatfilmError(f"no joint {name!r}{hint}; the rig has: {', '.join(self.joint_names)}") from None

    def clip(self, name: str) -> Animation:
        """The clip called `name`, or a SplatfilmError listing the clips there are."""
        if name not in self.clips:
            have = ", ".join(f"{c.name} ({c.duration:.2f} s)" for c in self.clips.values()) or "no clips"
            raise SplatfilmError(f"no clip {name!r}; the rig has: {have}")
        return self.clips[name]

    def rest_globals(self) -> np.ndarray:
        """Global transforms [J,4,4] of the rest pose."""
        return global_transforms(self, self.rest)

    def select_gaussians(self, kept: np.ndarray) -> Rig:
        """The same skeleton and clips binding only the Gaussians `kept` picks (a bool mask [N]
        or indices [M] into this rig's rows), in that order: the rig of an asset some of whose
        Gaussians were deleted (`splatfilm.assets.edits`)."""
        kept = np.asarray(kept)
        if kept.dtype == bool and kept.shape != (len(self.joints),):
            raise SplatfilmError(f"a mask of {kept.shape[0] if kept.ndim else 0} Gaussians selects from a rig that "
                                 f"binds {len(self.joints)}")
        return replace(self, joints=self.joints[kept], weights=self.weights[kept])


def _near_joint_names(name: str, names: list[str], most: int = 3) -> list[str]:
    """Up to `most` of `names` that `name` likely means: those it names without their
    namespace (`LeftFoot` for `mixamorig:LeftFoot`, as Mixamo and Maya prefix every joint;
    case aside), else those within a typo of it (difflib, namespaces and case aside)."""
    def bare(s: str) -> str:
        return re.split(r"[:|]", s)[-1].lower()

    want = bare(name)
    same = [n for n in names if bare(n) == want]
    if same:
        return same[:most]
    by_bare: dict[str, list[str]] = {}
    for n in names:
        by_bare.setdefault(bare(n), []).append(n)
    close = difflib.get_close_matches(want, list(by_bare), n=most, cutoff=0.8)
    return [n for b in close for n in by_bare[b]][:most]


# ---- sampling ------------------------------------------------------------------------------


def sample_channel(channel: Channel, time: float) -> np.ndarray:
    """The value [C] of a channel at `time` seconds (held before the first key and after
    the last; rotations come back as unit (w, x, y, z) quaternions)."""
    if not np.isfinite(time):
        raise SplatfilmError(f"a clip's time must be a finite number of seconds, got {time}")
    times, values = channel.times, channel.values
    cubic = channel.interpolation == "CUBICSPLINE"
    keys = values[:, 1] if cubic else values
    rotation = channel.path == "rotation"
    if time <= times[0] or len(times) == 1:
        v = keys[0]
    elif time >= times[-1]:
        v = keys[-1]
    else:
        k = int(np.searchsorted(times, time, side="right")) - 1  # times[k] <= time < times[k+1]
        dt = times[k + 1] - times[k]
        u = (time - times[k]) / dt
        if channel.interpolation == "STEP":
            v = keys[k]
        elif cubic:
            p0, m0 = values[k, 1], dt * values[k, 2]  # value and out-tangent of key k
            p1, m1 = values[k + 1, 1], dt * values[k + 1, 0]  # value and in-tangent of key k + 1
            u2, u3 = u * u, u * u * u
            v = (2 * u3 - 3 * u2 + 1) * p0 + (u3 - 2 * u2 + u) * m0 + (-2 * u3 + 3 * u2) * p1 + (u3 - u2) * m1
        elif rotation:
            v = quat_slerp(np.asarray(keys[k], np.float64), np.asarray(keys[k + 1], np.float64), float(u))
        else:
            v = (1 - u) * keys[k] + u * keys[k + 1]
    v = np.array(v, dtype=np.float64)
    if rotation:
        n = np.linalg.norm(v)
        v = v / n if n > 0 else np.array([1.0, 0.0, 0.0, 0.0])
    return v


def sample_clip(rig: Rig, clip: str | Animation, time: float) -> JointTRS:
    """Local joint transforms of `clip` (a name or an Animation) at `time` seconds as its file times
    its keys (a pass runs from `Animation.start`): the rest pose with every animated property
    replaced by its channel's value."""
    c = rig.clip(clip) if isinstance(clip, str) else clip
    pose = rig.rest.copy()
    for ch in c.channels:
        getattr(pose, ch.path)[ch.joint] = sample_channel(ch, time)
    return pose


def lock_root(rig: Rig, clip: Animation, root: int, up: np.ndarray) -> Animation:
    """The clip with joint `root`'s travel along the ground (across `up` [3], asset frame)
    taken out, as Unreal's root lock and Unity's Bake Into Pose play a clip with root motion
    in place: each translation channel of `root` and of the joints above it loses its own net
    travel across `up` over one pass, in proportion to the time into the pass at each key (a
    straight line through time taken off: exact for LINEAR and CUBICSPLINE keys spanning the
    pass), so the pass ends where it starts along the ground, its bob, sway and surge kept. A
    channel's travel is turned into the asset's frame by its parent as the clip's first pose
    has it."""
    if clip.duration <= 0:
        return clip
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    chain, j = [], root
    while j >= 0:
        chain.append(j)
        j = int(rig.parents[j])
    first = global_transforms(rig, sample_clip(rig, clip, clip.start))
    channels = []
    for ch in clip.channels:
        if ch.path != "translation" or ch.joint not in chain:
            channels.append(ch)
            continue
        parent = int(rig.parents[ch.joint])
        M = first[parent, :3, :3] if parent >= 0 else np.eye(3)
        moved = M @ (sample_channel(ch, clip.end) - sample_channel(ch, clip.start))
        drift = np.linalg.solve(M, moved - (moved @ up) * up)  # per pass, in the joint's parent's space
        u = ((np.asarray(ch.times, np.float64) - clip.start) / clip.duration)[:, None]
        values = np.array(ch.values, np.float64)
        if ch.interpolation == "CUBICSPLINE":
            values[:, 1] -= u * drift
            values[:, [0, 2]] -= drift / clip.duration  # tangents are per second
        else:
            values -= u * drift
        channels.append(Channel(ch.joint, ch.path, ch.interpolation, ch.times, values))
    return replace(clip, channels=channels)


def blend_poses(a: JointTRS, b: JointTRS, t: float | np.ndarray) -> JointTRS:
    """Crossfade from pose a to pose b: t in [0, 1] (scalar, or [J] per joint). Translation
    and scale linearly, rotation by slerp."""
    t = np.broadcast_to(np.asarray(t, np.float64), (len(a.rotation),))
    rotation = np.array([quat_slerp(qa, qb, float(u)) for qa, qb, u in zip(a.rotation, b.rotation, t)])
    tv = t[:, None]
    return JointTRS((1 - tv) * a.translation + tv * b.translation, rotation.reshape(-1, 4),
                    (1 - tv) * a.scale + tv * b.scale)


def joint_depths(parents: np.ndarray) -> np.ndarray:
    """How many ancestors each joint has [J] int (0 for a root), from parents [J] (-1 for a
    root; in any order)."""
    parents = np.asarray(parents)
    depths = np.zeros(len(parents), dtype=np.int64)
    for j in range(len(parents)):
        k = j
        while parents[k] >= 0:
            k, depths[j] = parents[k], depths[j] + 1
    return depths


def subtree(parents: np.ndarray, joint: int) -> np.ndarray:
    """Which joints are `joint` or hang below it [J] bool, from parents [J] (-1 for a root; a
    parent before its children, as a Rig keeps them)."""
    parents = np.asarray(parents)
    inside = np.zeros(len(parents), dtype=bool)
    inside[joint] = True
    for j in range(joint + 1, len(parents)):
        inside[j] = parents[j] >= 0 and inside[parents[j]]
    return inside


def global_transforms(rig: Rig, local: JointTRS | np.ndarray) -> np.ndarray:
    """Global transforms [J,4,4] (joint space -> asset frame) from local poses (a JointTRS,
    or local matrices [J,4,4]), composed down the hierarchy (parents come first)."""
    L = local.matrices() if isinstance(local, JointTRS) else np.asarray(local, np.float64)
    if L.shape != (rig.num_joints, 4, 4):
        raise SplatfilmError(f"local transforms have shape {L.shape}, expected ({rig.num_joints}, 4, 4)")
    G = np.empty_like(L)
    for j, p in enumerate(rig.parents):
        G[j] = L[j] if p < 0 else G[p] @ L[j]
    return G
