"""Changing a skeleton's pose after its clips: two-bone IK, lowering a pelvis so legs reach
(and how far it would have to go), and aiming a joint (a head) at a point within a limit.

Every function takes and returns local joint matrices [J,4,4] (each joint relative to its
parent, `splatfilm.scene.skeleton.JointTRS.matrices()`), works in the asset's frame (the
frame of `global_transforms`), and leaves the local transforms of every joint it does not
name alone, so children (toes, fingers, the rest of the body) ride along.

A chain's joints need not be parent and child: joints between them (twist bones) keep their
local transforms and ride along.

Two-bone IK is analytic (law of cosines): the chain's first joint (hip) stays, the middle
one (knee) bends the way the clip bent it off the line from the hip to the animated end,
that line turned onto the one to the target (the smallest turn), so the knee keeps pointing
where the clip pointed it; a nearly straight knee (off its line by under STRAIGHT of the
thigh, where the clip says little about its way) eases towards a pole (the foot's front).
The end joint (foot) keeps its animated orientation in the asset's frame, optionally turned
by a given rotation (tilted onto a slope, turned on its plant); asked to, the whole leg
turns about the hip-to-target line with it, as a knee follows its foot (the hip takes the
turn), so the shin does not twist against the foot. A target out of reach straightens the
chain towards it.
"""

from __future__ import annotations

import math

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.scene.easing import smoothstep
from splatfilm.scene.skeleton import Rig, global_transforms
from splatfilm.scene.transforms import (quat_from_rotation, rotation_about, rotation_angle_deg, rotation_between,
                                       rotation_from_quat)

__all__ = ["LIMB_RATIO", "SKIPPED_BEND", "STRAIGHT", "aim_joint", "check_chain", "common_ancestor", "drop_to_reach",
           "joint_axes", "lower_to_reach", "two_bone_ik"]

_TINY = 1e-9
# A knee off its hip-to-end line by less than this fraction of the thigh is nearly straight:
# the way it bends is blended towards the pole (all the way at straight), since a clip's leg
# at full stretch points its knee anywhere (or nowhere).
STRAIGHT = 0.1
# A chain's bones at rest: a thigh and its shin are near the same length (1:1 in people,
# within 1:1.6 in stylised rigs), so one LIMB_RATIO times the other names the wrong joint
# (the pelvis as the hip: Mixamo's Hips->LeftUpLeg is a sixth to a ninth of LeftUpLeg->
# LeftFoot, the bundled explorer's hips->thigh_l a third of thigh_l->foot_l). A
# joint between two of the chain's off the line between them by over SKIPPED_BEND of its
# length is a bend the chain skips (a twist bone lies on it).
LIMB_RATIO = 2.5
SKIPPED_BEND = 0.1


def _unit_columns(M: np.ndarray) -> np.ndarray:
    """The rotation of a linear part [3,3] with (positive) scales on its columns."""
    return M / np.linalg.norm(M, axis=0, keepdims=True)


def _set_global(rig: Rig, local: np.ndarray, G: np.ndarray, j: int, new_global: np.ndarray) -> None:
    """Make joint j's global transform `new_global` [4,4] by changing its local one (in place)."""
    p = rig.parents[j]
    local[j] = new_global if p < 0 else np.linalg.inv(G[p]) @ new_global
    G[j] = new_global


def _between(rig: Rig, top: int, bottom: int) -> list[int] | None:
    """The joints strictly between `top` and its descendant `bottom`, top down ([] for a
    parent and its child), or None when `bottom` does not hang below `top`."""
    path = []
    j = int(rig.parents[bottom])
    while j >= 0 and j != top:
        path.append(j)
        j = int(rig.parents[j])
    return path[::-1] if j == top else None


def check_chain(rig: Rig, chain: tuple[int, int, int]) -> None:
    """A two-bone chain is three joints, each below the one before (hip, knee, foot): a
    parent and its child, or with joints between (a rig's twist bones), which ride along.
    At the rest pose, a joint between two of the chain's must lie on the line between them
    (within SKIPPED_BEND of its length: a twist bone does, a knee skipped does not), and
    neither bone may be LIMB_RATIO times the other's length (the pelvis named as the hip,
    the foot as the knee). SplatfilmError (one line) names the joints otherwise."""
    a, b, c = chain
    names = rig.joint_names
    for parent, child in ((a, b), (b, c)):
        if _between(rig, parent, child) is None:
            raise SplatfilmError(f"joint {names[child]!r} is not below {names[parent]!r} "
                                 "(a leg is [hip, knee, foot], each a child, or a descendant, of the one before)")
    p = rig.rest_globals()[:, :3, 3]
    for top, bottom in ((a, b), (b, c)):
        bone = p[bottom] - p[top]
        length = float(np.linalg.norm(bone))
        for j in _between(rig, top, bottom):
            u = float(np.clip((p[j] - p[top]) @ bone / max(length * length, _TINY), 0.0, 1.0))
            off = float(np.linalg.norm(p[j] - p[top] - u * bone))
            if off > SKIPPED_BEND * length:
                raise SplatfilmError(f"{names[j]!r}, between {names[top]!r} and {names[bottom]!r}, stands "
                                     f"{off / max(length, _TINY):.0%} of that bone off its line at rest: a bend the "
                                     "chain would hold rigid (a leg is [hip, knee, foot]; joints between are twist "
                                     "bones along it)")
    l1, l2 = float(np.linalg.norm(p[b] - p[a])), float(np.linalg.norm(p[c] - p[b]))
    if min(l1, l2) <= max(l1, l2) / LIMB_RATIO:
        short, long_ = ((a, b), (b, c)) if l1 < l2 else ((b, c), (a, b))
        ratio = f"{max(l1, l2) / min(l1, l2):.1f} times" if min(l1, l2) > _TINY else "infinitely"
        fix = _balanced(rig, chain, p)
        meant = f"; did you mean [{', '.join(names[j] for j in fix)}]?" if fix else ""
        raise SplatfilmError(f"{names[b]!r} is not the knee: {names[long_[0]]}->{names[long_[1]]} is {ratio} as long "
                             f"as {names[short[0]]}->{names[short[1]]} at rest, where a thigh and shin are near the "
                             f"same length{meant}")


def _balanced(rig: Rig, chain: tuple[int, int, int], p: np.ndarray) -> tuple[int, int, int] | None:
    """The chain a lopsided one likely meant, keeping its end on the long side: the short
    bone's outer joint dropped and a joint from within the long bone taken as the knee (the
    pelvis named as the hip: [thigh, shin, foot]); None when no joint there balances it."""
    a, b, c = chain
    l1, l2 = float(np.linalg.norm(p[b] - p[a])), float(np.linalg.norm(p[c] - p[b]))
    top, bottom = (b, c) if l1 < l2 else (a, b)
    for j in _between(rig, top, bottom) or []:
        fix = (top, j, bottom)
        m1, m2 = float(np.linalg.norm(p[j] - p[top])), float(np.linalg.norm(p[bottom] - p[j]))
        if min(m1, m2) > max(m1, m2) / LIMB_RATIO:
            try:
                check_chain(rig, fix)
            except SplatfilmError:
                continue
            return fix
    return None


def common_ancestor(rig: Rig, joints: list[int]) -> int | None:
    """The nearest joint that is a strict ancestor of every joint listed, or None (different roots)."""
    def ancestors(j: int) -> list[int]:
        out = []
        while rig.parents[j] >= 0:
            j = int(rig.parents[j])
            out.append(j)
        return out

    lists = [ancestors(j) for j in joints]
    for j in lists[0]:
        if all(j in other for other in lists[1:]):
            return j
    return None


def two_bone_ik(rig: Rig, local: np.ndarray, chain: tuple[int, int, int], target: np.ndarray,
                pole: np.ndarray | None = None, end_turn: np.ndarray | None = None,
                follow_end: bool = False) -> np.ndarray:
    """Local matrices [J,4,4] with the chain (a, b, c) bent so that c's origin reaches
    `target` [3] (asset frame), or comes as close as the bone lengths allow.

    The knee b bends as the animated knee bends off the line from a to the animated c, turned
    onto the line to the target (module docstring); `pole` [3] (a direction, e.g. the foot's
    front) is where a nearly straight one bends (None: the animated bend, however slight).
    `end_turn` [3,3]: a rotation applied to c's animated orientation (asset frame); None
    keeps it. follow_end: the leg also turns about the line from a to the target as far as
    end_turn turns c about it, so the knee and the lower bone follow the end (the pole is
    taken as turned already). Each bone's own twist is otherwise kept (the smallest turn
    moves it)."""
    a, b, c = chain
    out = np.array(local, dtype=np.float64, copy=True)
    G = global_transforms(rig, out)
    pa, pb, pc = G[a, :3, 3], G[b, :3, 3], G[c, :3, 3]
    l1, l2 = float(np.linalg.norm(pb - pa)), float(np.linalg.norm(pc - pb))
    target = np.asarray(target, np.float64).reshape(3)
    to = target - pa
    dist = float(np.linalg.norm(to))
    if l1 < _TINY or l2 < _TINY or dist < _TINY:
        return out
    direction = to / dist
    d = min(max(dist, abs(l1 - l2) + 1e-9 * (l1 + l2)), (l1 + l2) * (1 - 1e-12))
    # The animated leg carried onto the target's line. Projecting the animated knee straight
    # onto the new line would not do: a nearly straight knee lies so close to its own line
    # that where the target swings the line, the projection can land behind it (a knee bent
    # backwards).
    reach = pc - pa
    carry = rotation_between(reach, direction) if np.linalg.norm(reach) > _TINY else np.eye(3)
    if follow_end and end_turn is not None:
        q = quat_from_rotation(np.asarray(end_turn, np.float64))
        carry = rotation_about(direction, 2.0 * math.atan2(float(q[1:] @ direction), float(q[0]))) @ carry
    line = reach / np.linalg.norm(reach) if np.linalg.norm(reach) > _TINY else direction
    knee_off = carry @ ((pb - pa) - float((pb - pa) @ line) * line)

    def across(v: np.ndarray | None) -> np.ndarray | None:
        """The unit direction of v [3] across the target's line, or None (along it, or none)."""
        if v is None:
            return None
        off = np.asarray(v, np.float64) - float(np.dot(v, direction)) * direction
        return off / np.linalg.norm(off) if np.linalg.norm(off) > 1e-6 * l1 else None

    knee_way, pole_way = across(knee_off), across(pole)
    bend = knee_way if knee_way is not None else pole_way
    if knee_way is not None and pole_way is not None:
        u = min(float(np.linalg.norm(knee_off)) / (STRAIGHT * l1), 1.0)
        u = smoothstep(u)
        mixed = u * knee_way + (1 - u) * pole_way
        if np.linalg.norm(mixed) > 1e-6:
            bend = mixed / np.linalg.norm(mixed)
        elif u < 0.5:  # exactly opposed, halfway: the nearer
            bend = pole_way
    if bend is None:  # straight, and no usable pole: any direction across the chain
        bend = np.cross(direction, [1.0, 0.0, 0.0])
        if np.linalg.norm(bend) < 1e-6:
            bend = np.cross(direction, [0.0, 1.0, 0.0])
        bend /= np.linalg.norm(bend)
    cos_a = np.clip((l1 * l1 + d * d - l2 * l2) / (2 * l1 * d), -1.0, 1.0)
    knee = pa + l1 * (cos_a * direction + math.sqrt(1 - cos_a * cos_a) * bend)
    end = pa + d * direction

    R1 = rotation_between(carry @ (pb - pa), knee - pa) @ carry
    Ga = G[a].copy()
    Ga[:3, :3] = R1 @ G[a, :3, :3]
    R2 = rotation_between(R1 @ (pc - pb), end - knee)
    Gb = G[b].copy()
    Gb[:3, :3] = R2 @ R1 @ G[b, :3, :3]
    Gb[:3, 3] = knee
    Gc = G[c].copy()
    if end_turn is not None:
        Gc[:3, :3] = np.asarray(end_turn, np.float64) @ G[c, :3, :3]
    Gc[:3, 3] = end
    # Joints between (twist bones) keep their local transforms: they swing with the hip,
    # then with the knee, so the knee's and the foot's parents are where those now put them.
    swing_hip, swing_knee = np.eye(4), np.eye(4)
    swing_hip[:3, :3], swing_hip[:3, 3] = R1, pa - R1 @ pa
    swing_knee[:3, :3], swing_knee[:3, 3] = R2, knee - R2 @ knee
    upper, lower = _between(rig, a, b) or [], _between(rig, b, c) or []
    _set_global(rig, out, G, a, Ga)
    for j in upper:
        G[j] = swing_hip @ G[j]
    _set_global(rig, out, G, b, Gb)
    for j in lower:
        G[j] = swing_knee @ swing_hip @ G[j]
    _set_global(rig, out, G, c, Gc)
    return out


def drop_to_reach(hips: np.ndarray, targets: np.ndarray, reach: np.ndarray, up: np.ndarray) -> np.ndarray:
    """How far each hip [N,3] must go down along `up` [3] (a unit vector) for its leg, reaching
    `reach` [N] at most, to touch its target [N,3]: the smallest drop >= 0 [N] (the units of
    the positions; a target out of reach sideways: as close as lowering gets)."""
    w = np.asarray(targets, np.float64) - np.asarray(hips, np.float64)
    wu = w @ np.asarray(up, np.float64)
    # |w + drop up| = reach.
    disc = wu * wu - np.einsum("ni,ni->n", w, w) + np.asarray(reach, np.float64) ** 2
    need = np.where(disc >= 0, -wu - np.sqrt(np.maximum(disc, 0.0)), -wu)
    return np.maximum(need, 0.0)


def lower_to_reach(rig: Rig, local: np.ndarray, joint: int, chains: list[tuple[int, int, int]],
                   targets: list[np.ndarray], up: np.ndarray, slack: float = 1e-3) -> tuple[np.ndarray, float]:
    """Lower `joint` (a pelvis, an ancestor of every chain) along -up [3] just enough that
    every chain's end can reach its target [3] with the chain at most (1 - slack) of its
    full length (a leg stepping down a slope). Returns local matrices [J,4,4] and the drop
    (asset units, >= 0; 0 leaves the pose as it was)."""
    out = np.array(local, dtype=np.float64, copy=True)
    G = global_transforms(rig, out)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    hips = np.array([G[a, :3, 3] for a, _, _ in chains]).reshape(-1, 3)
    reach = np.array([np.linalg.norm(G[b, :3, 3] - G[a, :3, 3]) + np.linalg.norm(G[c, :3, 3] - G[b, :3, 3])
                      for a, b, c in chains]) * (1 - slack)
    drop = float(np.max(drop_to_reach(hips, np.asarray(targets, np.float64).reshape(-1, 3), reach, up), initial=0.0))
    if drop > 0:
        moved = G[joint].copy()
        moved[:3, 3] -= drop * up
        _set_global(rig, out, G, joint, moved)
    return out, drop


def joint_axes(rig: Rig, joint: int, forward: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A joint's own forward and up axes [3] each (unit, in its local space): the asset-frame
    directions `forward` and `up` [3] (e.g. the character's front and up) seen from the joint
    at the rest pose. `aim_joint` turns the forward axis to a target."""
    R = _unit_columns(rig.rest_globals()[joint, :3, :3])
    f = R.T @ (np.asarray(forward, np.float64) / np.linalg.norm(forward))
    u = R.T @ (np.asarray(up, np.float64) / np.linalg.norm(up))
    u = u - (u @ f) * f
    if np.linalg.norm(u) < 1e-6:
        raise SplatfilmError("a joint's forward and up axes must not be parallel")
    return f, u / np.linalg.norm(u)


def aim_joint(rig: Rig, local: np.ndarray, joint: int, target: np.ndarray, forward: np.ndarray, up: np.ndarray,
              limit_deg: float) -> np.ndarray:
    """Local matrices [J,4,4] with `joint` turned so that its forward axis (`forward` [3], in
    the joint's space; see `joint_axes`) points at `target` [3] (asset frame), keeping its up
    axis (`up` [3]) as near as it was, by at most `limit_deg` degrees from the animated pose
    (a target further round is followed to the limit, not beyond). Children turn with it."""
    out = np.array(local, dtype=np.float64, copy=True)
    G = global_transforms(rig, out)
    R = _unit_columns(G[joint, :3, :3])
    f, u = R @ np.asarray(forward, np.float64), R @ np.asarray(up, np.float64)
    d = np.asarray(target, np.float64).reshape(3) - G[joint, :3, 3]
    if np.linalg.norm(d) < _TINY:
        return out
    d /= np.linalg.norm(d)
    u2 = u - (u @ d) * d
    if np.linalg.norm(u2) < 1e-6:  # looking straight along its up: the smallest turn
        D = rotation_between(f, d)
    else:
        u2 /= np.linalg.norm(u2)
        D = np.stack([d, u2, np.cross(d, u2)], 1) @ np.stack([f, u, np.cross(f, u)], 1).T
    angle = rotation_angle_deg(D)
    if angle > limit_deg:
        q = quat_from_rotation(D)  # w >= 0: the short way round
        half = math.radians(limit_deg) / 2
        axis = q[1:] / np.linalg.norm(q[1:])
        D = rotation_from_quat(np.concatenate([[math.cos(half)], math.sin(half) * axis]))
    turned = G[joint].copy()
    turned[:3, :3] = D @ G[joint, :3, :3]
    _set_global(rig, out, G, joint, turned)
    return out
