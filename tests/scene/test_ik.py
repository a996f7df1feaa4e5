"""Skeleton maths after clips (splatfilm.scene.ik, splatfilm.scene.locomotion): two-bone IK
reaches, keeps bone lengths, the knee's side and the foot's orientation; a pelvis lowers just
enough; a head aims at a target and clamps at its limit; a cycle's stride."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from splatfilm.errors import SplatfilmError
from splatfilm.io.rig_files import load_rig
from splatfilm.scene.ik import aim_joint, check_chain, common_ancestor, joint_axes, lower_to_reach, two_bone_ik
from splatfilm.scene.locomotion import CHECKPOINT_STEPS, FootPlants, cycle_stride
from splatfilm.scene.skeleton import Animation, Channel, JointTRS, Rig, global_transforms
from splatfilm.scene.transforms import quat_from_rotation, rotation_about

NAMES = ["root", "hip", "knee", "foot", "toe", "head"]
PARENTS = np.array([-1, 0, 1, 2, 3, 0])
OFFSETS = np.array([[0, 0, 0], [0.1, 0, 1.0], [0, 0, -0.5], [0, 0, -0.45], [0, -0.15, -0.05], [0, 0, 1.6]], float)
LEG = (1, 2, 3)
REPO = Path(__file__).resolve().parents[2]


def rig(clips=None) -> Rig:
    n = len(NAMES)
    rest = JointTRS(OFFSETS.copy(), np.tile([1.0, 0, 0, 0], (n, 1)), np.ones((n, 3)))
    r = Rig(NAMES, PARENTS, rest, np.eye(4)[None].repeat(n, 0), clips or {}, np.zeros((1, 4), int),
            np.array([[1.0, 0, 0, 0]]))
    r.inverse_binds = np.linalg.inv(r.rest_globals())
    return r


def bent(r: Rig, knee_deg=30.0) -> np.ndarray:
    """Local matrices with the knee bent forward (-y is the front here) by knee_deg."""
    pose = r.rest.copy()
    pose.rotation[1] = quat_from_rotation(rotation_about([1, 0, 0], math.radians(-knee_deg / 2)))
    pose.rotation[2] = quat_from_rotation(rotation_about([1, 0, 0], math.radians(knee_deg)))
    return pose.matrices()


def test_two_bone_ik_reaches_and_keeps_lengths_knee_side_and_foot_orientation():
    r = rig()
    L = bent(r)
    G0 = global_transforms(r, L)
    target = G0[3, :3, 3] + np.array([0.05, -0.1, 0.2])  # up, forward and out: the knee bends more
    G = global_transforms(r, two_bone_ik(r, L, LEG, target))
    assert np.allclose(G[3, :3, 3], target, atol=1e-9)
    for a, b in ((1, 2), (2, 3), (3, 4)):
        assert np.linalg.norm(G[b, :3, 3] - G[a, :3, 3]) == pytest.approx(np.linalg.norm(G0[b, :3, 3] - G0[a, :3, 3]))
    assert np.allclose(G[1, :3, 3], G0[1, :3, 3])  # the hip stays
    # The knee stays on the animated knee's side of the hip -> target line (forward, -y).
    line = (target - G[1, :3, 3]) / np.linalg.norm(target - G[1, :3, 3])
    off = G[2, :3, 3] - G[1, :3, 3]
    off -= (off @ line) * line
    assert off[1] < -0.1
    assert np.allclose(G[3, :3, :3], G0[3, :3, :3], atol=1e-9)  # the foot keeps its orientation ...
    assert np.allclose(G[4, :3, 3] - G[3, :3, 3], G0[4, :3, 3] - G0[3, :3, 3], atol=1e-9)  # ... and its toe
    assert np.allclose(G[5], G0[5])  # other joints untouched
    # A turn for the foot (a slope).
    tilt = rotation_about([0, 1, 0], math.radians(10))
    G = global_transforms(r, two_bone_ik(r, L, LEG, target, end_turn=tilt))
    assert np.allclose(G[3, :3, :3], tilt @ G0[3, :3, :3], atol=1e-9)


def test_out_of_reach_straightens_towards_the_target_and_a_straight_leg_uses_the_pole():
    r = rig()
    L = r.rest.matrices()  # straight leg
    hip = global_transforms(r, L)[1, :3, 3]
    target = hip + np.array([0.0, -0.5, -2.0])
    G = global_transforms(r, two_bone_ik(r, L, LEG, target, pole=[0, -1, 0]))
    direction = (target - hip) / np.linalg.norm(target - hip)
    assert np.allclose(G[3, :3, 3], hip + 0.95 * direction, atol=1e-6)  # full length, straight at it
    # Reachable from a straight leg: the knee goes the pole's way.
    G = global_transforms(r, two_bone_ik(r, L, LEG, hip + [0, 0, -0.8], pole=[0, -1, 0]))
    assert G[2, 1, 3] < -0.1
    G = global_transforms(r, two_bone_ik(r, L, LEG, hip + [0, 0, -0.8], pole=[0, 1, 0]))
    assert G[2, 1, 3] > 0.1


def test_a_nearly_straight_knee_keeps_its_side_when_the_target_swings_the_leg():
    """The knee bent in the plane of the hip, the target and the animated knee: a clip knee
    bent 4 degrees forward, its foot carried 0.2 forward and 0.1 up, was projected onto the
    new hip-to-target line behind it and bent 0.18 backwards. The clip's bend is now carried
    onto the new line."""
    r = rig()
    L = bent(r, knee_deg=4.0)
    G0 = global_transforms(r, L)
    for move in ([0, -0.2, 0.1], [0, -0.1, 0.05], [0, 0.2, 0.1], [0.15, 0, 0.1]):
        target = G0[3, :3, 3] + np.array(move, float)
        G = global_transforms(r, two_bone_ik(r, L, LEG, target))
        line = (target - G[1, :3, 3]) / np.linalg.norm(target - G[1, :3, 3])
        off = G[2, :3, 3] - G[1, :3, 3]
        off -= (off @ line) * line
        assert off[1] < -0.1 and abs(off[0]) < 0.01, (move, off)  # forward (-y), as the clip had it


def test_a_leg_follows_its_turned_foot_without_twisting_the_shin():
    """A foot turned 30 degrees about the vertical (held on its plant as the body turns):
    with follow_end the leg turns about the hip-to-target line with it, so the knee points
    the foot's way and the foot keeps its clip orientation against the shin (no twist about
    the shin); without, the shin keeps the clip's roll and the foot is wrung 30 degrees
    against it."""
    r = rig()
    L = bent(r)
    G0 = global_transforms(r, L)
    hip = G0[1, :3, 3]
    target = np.array([hip[0], hip[1], G0[3, 2, 3] + 0.05])  # right below the hip: the turn's axis is vertical
    turn = rotation_about([0, 0, 1], math.radians(30))

    def shin_twist(G: np.ndarray) -> float:
        q = quat_from_rotation(G[2, :3, :3].T @ G[3, :3, :3] @ (G0[2, :3, :3].T @ G0[3, :3, :3]).T)
        return math.degrees(2 * math.atan2(q[3], q[0]))  # about the shin's own axis (z here)

    G = global_transforms(r, two_bone_ik(r, L, LEG, target, end_turn=turn, follow_end=True))
    np.testing.assert_allclose(G[3, :3, 3], target, atol=1e-9)
    np.testing.assert_allclose(G[3, :3, :3], turn @ G0[3, :3, :3], atol=1e-9)
    assert abs(shin_twist(G)) < 0.5
    knee = G[2, :3, 3] - hip
    assert math.degrees(math.atan2(knee[0], -knee[1])) == pytest.approx(30.0, abs=0.5)  # heading from the front
    G = global_transforms(r, two_bone_ik(r, L, LEG, target, end_turn=turn))
    assert shin_twist(G) > 25.0


def test_lowering_the_pelvis_just_enough():
    r = rig()
    L = r.rest.matrices()
    hip = global_transforms(r, L)[1, :3, 3]
    low = hip + np.array([0.0, -0.3, -1.1])  # below the straight leg's reach
    out, drop = lower_to_reach(r, L, 0, [LEG], [low], np.array([0, 0, 1.0]), slack=1e-3)
    G = global_transforms(r, out)
    assert drop > 0
    assert np.linalg.norm(low - G[1, :3, 3]) == pytest.approx(0.95 * (1 - 1e-3), abs=1e-9)
    assert np.allclose(G[1, :3, 3], hip - [0, 0, drop])
    _, none = lower_to_reach(r, L, 0, [LEG], [hip + [0, 0, -0.8]], np.array([0, 0, 1.0]))
    assert none == 0.0


def test_aim_turns_towards_the_target_and_clamps_at_the_limit():
    r = rig()
    L = r.rest.matrices()
    forward, up = joint_axes(r, 5, np.array([0, -1.0, 0]), np.array([0, 0, 1.0]))
    head = global_transforms(r, L)[5, :3, 3]

    def look(target, limit):
        G = global_transforms(r, aim_joint(r, L, 5, target, forward, up, limit))
        return G[5, :3, :3] @ forward, G[5, :3, :3] @ up

    f, u = look(head + [1.0, -1.0, 0.3], 90)
    want = np.array([1.0, -1.0, 0.3]) / np.linalg.norm([1.0, -1.0, 0.3])
    assert np.allclose(f, want, atol=1e-9)
    assert abs(u @ np.cross(want, [0, 0, 1.0])) < 1e-9  # no roll: up stays in the vertical plane
    f, u = look(head + [3.0, 0.0, 0.0], 50)  # 90 degrees round: clamped at 50
    assert math.degrees(math.acos(f @ [0, -1.0, 0])) == pytest.approx(50.0, abs=1e-6)
    assert f[0] > 0 and abs(f[2]) < 1e-9 and np.allclose(u, [0, 0, 1.0])
    f, _ = look(head + [0.0, -2.0, 0.0], 10)  # straight ahead: nothing to do
    assert np.allclose(f, [0, -1.0, 0])


def test_chains_ancestors_and_stride():
    r = rig()
    check_chain(r, LEG)
    with pytest.raises(SplatfilmError, match="'knee' is not below 'foot'"):
        check_chain(r, (1, 3, 2))
    with pytest.raises(SplatfilmError, match="'head' is not below 'knee'"):
        check_chain(r, (1, 2, 5))
    assert common_ancestor(r, [1, 5]) == 0 and common_ancestor(r, [3, 4]) == 2 and common_ancestor(r, [0]) is None
    # A cycle that slides the foot (here the hip's translation) back 0.6 m per 1 s while
    # down, lifting it to swing forward: stride 0.6 m; the same without sliding: 0.
    times = np.linspace(0, 1, 41)
    phase = times
    z = np.where(phase < 0.5, 0.0, 0.2 * np.sin(np.pi * (phase - 0.5) / 0.5))
    y = np.where(phase < 0.5, -0.15 + 0.6 * phase, 0.15 - 0.3 * (phase - 0.5) / 0.5)
    slide = Channel(1, "translation", "LINEAR", times, np.stack([np.full_like(y, 0.1), y, 1.0 + z], 1))
    walk = Animation("walk", 1.0, [slide])
    assert cycle_stride(r, walk, [3], np.array([0, 0, 1.0])) == pytest.approx(0.6, rel=1e-6)
    still = Channel(1, "translation", "LINEAR", times, np.stack([np.full_like(y, 0.1), np.zeros_like(y), 1.0 + z], 1))
    assert cycle_stride(r, Animation("lift", 1.0, [still]), [3], np.array([0, 0, 1.0])) == 0.0


def test_a_chain_naming_the_wrong_joints_is_refused_and_a_name_without_its_namespace_is_pointed_out():
    """Mixamo's layout (Hips -> LeftUpLeg -> LeftLeg -> LeftFoot -> LeftToeBase, every name
    `mixamorig:`-prefixed): [Hips, LeftUpLeg, LeftFoot] passed, the pelvis taken for the hip
    and the real knee held rigid. Lopsided bones and a bend skipped are refused, naming the
    joints (and the chain meant, where one fits); `LeftFoot` for `mixamorig:LeftFoot` is
    pointed out."""
    names = ["mixamorig:" + n for n in ("Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "Spine")]
    parents = np.array([-1, 0, 1, 2, 3, 0])
    offsets = np.array([[0, 0, 1.0], [0.09, 0, -0.066], [0, 0, -0.42], [0, 0, -0.41], [0, -0.12, -0.06],
                        [0, 0, 0.1]], float)
    n = len(names)
    r = Rig(names, parents, JointTRS(offsets, np.tile([1.0, 0, 0, 0], (n, 1)), np.ones((n, 3))),
            np.eye(4)[None].repeat(n, 0), {}, np.zeros((1, 4), int), np.array([[1.0, 0, 0, 0]]))
    check_chain(r, (1, 2, 3))
    with pytest.raises(SplatfilmError, match=r"^'mixamorig:LeftUpLeg' is not the knee: mixamorig:LeftUpLeg->"
                                             r"mixamorig:LeftFoot is 7\.4 times as long as mixamorig:Hips->"
                                             r"mixamorig:LeftUpLeg .*; did you mean \[mixamorig:LeftUpLeg, "
                                             r"mixamorig:LeftLeg, mixamorig:LeftFoot\]\?$"):
        check_chain(r, (0, 1, 3))
    with pytest.raises(SplatfilmError, match=r"^'mixamorig:LeftFoot' is not the knee: .* did you mean "
                                             r"\[mixamorig:LeftUpLeg, mixamorig:LeftLeg, mixamorig:LeftFoot\]\?$"):
        check_chain(r, (1, 3, 4))  # the foot taken for the knee, the toe for the foot
    with pytest.raises(SplatfilmError, match=r"^'mixamorig:LeftUpLeg', between 'mixamorig:Hips' and "
                                             r"'mixamorig:LeftLeg', stands 15% of that bone off its line at rest"):
        check_chain(r, (0, 2, 3))  # bones of like length, but the hip joint skipped
    # The bundled explorer's legs pass, and its pelvis named as the hip does not.
    hero = load_rig(REPO / "scenes" / "character" / "fitted" / "hero.rig.npz")
    for side in "lr":
        check_chain(hero, tuple(hero.joint_index(f"{j}_{side}") for j in ("thigh", "shin", "foot")))
        with pytest.raises(SplatfilmError, match=f"'thigh_{side}' is not the knee: .* did you mean \\[thigh_{side}, "
                                                 f"shin_{side}, foot_{side}\\]"):
            check_chain(hero, tuple(hero.joint_index(j) for j in ("hips", f"thigh_{side}", f"foot_{side}")))
    with pytest.raises(SplatfilmError, match=r"^no joint 'LeftFoot' \(did you mean 'mixamorig:LeftFoot'\?\); "
                                             r"the rig has: mixamorig:Hips, "):
        r.joint_index("LeftFoot")
    with pytest.raises(SplatfilmError, match=r"^no joint 'mixamorig:leftfot' \(did you mean 'mixamorig:LeftFoot'\?"):
        r.joint_index("mixamorig:leftfot")
    with pytest.raises(SplatfilmError, match=r"^no joint 'Tail'; the rig has"):
        r.joint_index("Tail")


def test_a_leg_with_twist_bones_between_its_joints_bends_as_the_plain_leg():
    """Rigify-style legs: thigh -> thigh twist -> shin -> shin twist -> foot. Named as
    [thigh, shin, foot], the IK reaches the same target with the same knee and foot as the
    leg without them, and the twist bones ride along on their bones (the chain was refused:
    each joint had to be its parent's child)."""
    names = ["root", "hip", "hip_twist", "knee", "knee_twist", "foot", "toe", "head"]
    parents = np.array([-1, 0, 1, 2, 3, 4, 5, 0])
    offsets = np.array([[0, 0, 0], [0.1, 0, 1.0], [0, 0, -0.25], [0, 0, -0.25], [0, 0, -0.2], [0, 0, -0.25],
                        [0, -0.15, -0.05], [0, 0, 1.6]], float)
    n = len(names)
    rest = JointTRS(offsets, np.tile([1.0, 0, 0, 0], (n, 1)), np.ones((n, 3)))
    twisted = Rig(names, parents, rest, np.eye(4)[None].repeat(n, 0), {}, np.zeros((1, 4), int),
                  np.array([[1.0, 0, 0, 0]]))
    check_chain(twisted, (1, 3, 5))
    pose = twisted.rest.copy()
    pose.rotation[1] = quat_from_rotation(rotation_about([1, 0, 0], math.radians(-15)))
    pose.rotation[2] = quat_from_rotation(rotation_about([0, 0, 1], math.radians(40)))  # twist about the thigh
    pose.rotation[3] = quat_from_rotation(rotation_about([0, 0, 1], math.radians(-40)) @
                                          rotation_about([1, 0, 0], math.radians(30)))  # untwist, bend
    L = pose.matrices()
    G0 = global_transforms(twisted, L)
    plain = rig()
    Lp = bent(plain)
    Gp0 = global_transforms(plain, Lp)
    for t, p in ((1, 1), (3, 2), (5, 3), (6, 4)):  # the same leg, posed alike
        np.testing.assert_allclose(G0[t, :3, 3], Gp0[p, :3, 3], atol=1e-12)
    target = G0[5, :3, 3] + np.array([0.05, -0.1, 0.2])
    G = global_transforms(twisted, two_bone_ik(twisted, L, (1, 3, 5), target))
    Gp = global_transforms(plain, two_bone_ik(plain, Lp, LEG, target))
    for t, p in ((1, 1), (3, 2), (5, 3), (6, 4)):
        np.testing.assert_allclose(G[t, :3, 3], Gp[p, :3, 3], atol=1e-9)
    np.testing.assert_allclose(G[5, :3, :3], G0[5, :3, :3], atol=1e-9)  # the foot keeps its orientation
    for twist, (top, bottom) in ((2, (1, 3)), (4, (3, 5))):  # each twist joint stays on its bone, where it was
        u = np.linalg.norm(G0[twist, :3, 3] - G0[top, :3, 3]) / np.linalg.norm(G0[bottom, :3, 3] - G0[top, :3, 3])
        np.testing.assert_allclose(G[twist, :3, 3], G[top, :3, 3] + u * (G[bottom, :3, 3] - G[top, :3, 3]), atol=1e-9)
    np.testing.assert_allclose(G[7], G0[7])  # other joints untouched


def _stepping_feet(t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two feet of a figure walking +x at 1.2 m/s on an in-place cycle (each foot down half
    of every second, sliding back 0.5 m, then lifted forward), turning slowly: lifts [2],
    positions [2,3], headings [2] and hips [2,3] (0.9 m over the body's middle) at world time t."""
    phase = (t + np.array([0.0, 0.5])) % 1.0
    down = phase < 0.5
    lift = np.where(down, 0.0, 0.1 * np.sin(np.pi * (phase - 0.5) / 0.5))
    slide = np.where(down, 0.25 - phase, -0.25 + (phase - 0.5))
    x = 1.2 * t + slide
    y = np.array([-0.1, 0.1]) + 0.3 * math.sin(0.2 * t)
    hips = np.stack([np.full(2, 1.2 * t), y, np.full(2, 0.9)], 1)
    return lift, np.stack([x, y, lift], 1), np.full(2, 20.0 * math.sin(0.1 * t)), hips


def _plants() -> FootPlants:
    return FootPlants(_stepping_feet, np.full(2, 0.01), np.full(2, 0.03), np.full(2, 0.4), 0.0,
                      leg_length=np.full(2, 0.95), release_drop=np.full(2, 0.01))


def test_foot_plants_keep_few_states_and_do_not_depend_on_the_order_of_frames():
    """A long film asks plants up to its end: the states held stay a few per second of it
    (they grew by one per 1/240 s step, 144,000 for ten minutes), and a frame asked after a
    later one (a shot earlier in world time, the viewer scrubbed back) has the feet it has
    asked in order, bit for bit."""
    times = np.arange(0.0, 60.0, 1 / 24)
    in_order = _plants()
    held = [in_order.held(float(t), *_stepping_feet(float(t))[1:3]) for t in times]
    steps = len(times) * 10
    assert in_order.states_kept <= steps // CHECKPOINT_STEPS + CHECKPOINT_STEPS + 2
    assert sum(np.any(a[0] != _stepping_feet(float(t))[1][:, :2]) for a, t in zip(held, times)) > 100  # feet held
    backwards = _plants()
    picks = [len(times) - 1, 5, 1000, 999, 1200, 200, 0, 720, 719, 1438]
    for i in picks:
        t = float(times[i])
        got = backwards.held(t, *_stepping_feet(t)[1:3])
        for a, b in zip(got, held[i]):
            assert np.array_equal(a, b), (i, a, b)
    assert backwards.states_kept <= steps // CHECKPOINT_STEPS + CHECKPOINT_STEPS + 2


def test_a_planted_foot_is_let_go_before_the_hips_would_have_to_drop_for_it():
    """A body walking on at 1 m/s, hips 0.9 m up on a 0.95 m leg, over a foot the clip keeps
    under it but lifts too little to leave its plant: held until the clip had carried it the
    radius away (0.5 m), the hips had to drop 9 cm to reach it. Watching the hips, the plant
    lets it go once they would drop 1 cm (0.33 m on), on flat ground or walking up a slope
    (its foot held on the ground below)."""
    def gliding(t: float, slope: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ground = slope * t  # the ground's height under the body (rising along +x)
        return np.zeros(1), np.array([[t, 0.0, ground]]), np.zeros(1), np.array([[t, 0.0, ground + 0.9]])

    def foot_x(plants: FootPlants, t: float, slope: float = 0.0) -> float:
        return float(plants.held(t, *gliding(t, slope)[1:3])[0][0, 0])

    def foot_up(plants: FootPlants, t: float, slope: float = 0.0) -> float:
        """The height its step lifts it by: let go off the floor, it rises before it goes (LIFT_OFF)."""
        return float(plants.held(t, *gliding(t, slope)[1:3])[1][0])

    blind = FootPlants(gliding, np.full(1, 0.01), np.full(1, 0.03), np.full(1, 0.5), 0.0)
    assert foot_x(blind, 0.49) == 0.0 and foot_up(blind, 0.49) == 0.0 and foot_up(blind, 0.52) > 0.0
    for slope in (0.0, 0.2):
        normal = np.array([-slope, 0.0, 1.0]) / math.hypot(slope, 1.0)
        watched = FootPlants(lambda t, s=slope: gliding(t, s), np.full(1, 0.01), np.full(1, 0.03), np.full(1, 0.5),
                             0.0, leg_length=np.full(1, 0.95), release_drop=np.full(1, 0.01), normal=normal)
        # The foot stays on the ground behind: uphill the hips rise away from it, so it goes sooner.
        t = np.linspace(0.0, 0.5, 50001)
        let_go = t[np.argmax(slope * t + 0.9 - np.sqrt(0.95 ** 2 - t * t) > 0.01)]  # 0.332 s flat, 0.197 s up
        assert foot_x(watched, let_go - 0.01, slope) == 0.0 and foot_up(watched, let_go - 0.01, slope) == 0.0, slope
        assert foot_up(watched, let_go + 0.02, slope) > 0.0, slope


def _settling_feet(t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, None]:
    """Two feet as a crossfade from a walk into an idle (1.0 s to 1.4 s) carries them: the
    blend slides the right foot (y -0.1) on along the ground from x 0 to 0.15 m, and lifts the
    left one (y 0.1, 5 cm up from 1.05 s to 1.35 s) from 0.3 m behind to beside it: lifts [2],
    positions [2,3], headings [2] (metres, degrees) at world time t; no hips."""
    u = min(max((t - 1.0) / 0.4, 0.0), 1.0)
    lift = np.array([0.0, 0.05 * math.sin(math.pi * (t - 1.05) / 0.3) if 1.05 < t < 1.35 else 0.0])
    return lift, np.array([[0.15 * u, -0.1, 0.0], [-0.3 + 0.45 * u, 0.1, lift[1]]]), np.zeros(2), None


def test_foot_plants_settle_the_feet_where_the_clips_will_stand_them_keeping_one_down():
    """While the clips settle their feet (until 1.4 s), one foot stays planted: the right one,
    carried past its radius (0.1 m) while the left is in the air, waits for the left to land
    before it steps; and each foot comes to rest where the clips stand it at the end (0.15 m),
    not where it was put down while the blend still carried it on."""
    from splatfilm.scene.locomotion import SETTLE_NEAR

    plants = FootPlants(_settling_feet, np.full(2, 0.01), np.full(2, 0.03), np.full(2, 0.1), 0.0,
                        settle=lambda t: 1.4 if 1.0 <= t < 1.4 else t)
    times = np.arange(0.9, 2.0, 1 / 240)
    feet = np.array([plants.held(float(t), *_settling_feet(float(t))[1:3])[0] for t in times])  # [T,2,2]
    moved = np.linalg.norm(np.diff(feet, axis=0), axis=2)  # [T-1,2]
    assert (moved.min(axis=1) < 1e-12).all(), times[1:][moved.min(axis=1) >= 1e-12]  # one foot always still
    assert moved[times[1:] < 1.3, 0].max() < 1e-12  # the right foot waited while the left was up
    end = np.array([[0.15, -0.1], [0.15, 0.1]])
    assert np.abs(feet[-1] - end).max() <= SETTLE_NEAR * 0.1 + 1e-9, feet[-1]


def _stepping_feet(t: float):
    """Two feet for FootPlants: the right planted at x 0; the left lifted 0.90-0.98 s, carried
    from -0.2 to 0 by 1.0 s, then slid on to 0.03 m (the idle's spot) over a crossfade 1.0-1.4 s."""
    lift = np.array([0.0, 0.05 * np.sin(np.pi * (t - 0.90) / 0.08) if 0.90 < t < 0.98 else 0.0])
    x = -0.2 + 0.2 * min(max((t - 0.9) / 0.1, 0.0), 1.0) if t < 1.0 else 0.03 * min((t - 1.0) / 0.4, 1.0)
    return lift, np.array([[0.0, -0.1, 0.0], [x, 0.1, lift[1]]]), np.zeros(2), None


def _left_foot(settle, times):
    from splatfilm.scene.locomotion import FootPlants

    plants = FootPlants(_stepping_feet, np.full(2, 0.01), np.full(2, 0.03), np.full(2, 0.1), 0.0, settle=settle)
    return np.array([plants.held(float(t), *_stepping_feet(float(t))[1:3])[0][1] for t in times])


def test_a_foot_whose_release_ends_inside_a_settling_does_not_jump_and_a_settling_cut_short_lets_go():
    """A foot let go just before the clips settle into an idle faded to the clips' own foot,
    then the settling drew it toward the idle's spot: 7.7 mm in one 1/240 s step. And a
    settling the clips stop early (a walk taken up again inside the crossfade) kept the feet
    aiming at its spots to the window's end (12.5 mm off where they go without it)."""
    times = np.arange(0.85, 1.6, 1 / 240)
    settled = _left_foot(lambda t: 1.4 if 1.0 <= t < 1.4 else t, times)
    steps = np.linalg.norm(np.diff(settled, axis=0), axis=1)[times[1:] > 1.05]  # past the clips' own carry
    assert steps.max() < 0.002, steps.max()
    cut_short = _left_foot(lambda t: 1.4 if 1.0 <= t < 1.02 else t, times)
    plain = _left_foot(None, times)
    assert np.abs(cut_short[times > 1.1] - plain[times > 1.1]).max() < 1e-9


def _turning_feet(t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, None]:
    """Two feet 0.1 m either side of a body turning on the spot at 90 degrees a second from
    0.2 s, the clips keeping both down (an idle under a keyed turn): lifts [2], positions
    [2,3] and headings [2] (degrees; the feet face +x at first) at world time t; no hips."""
    yaw = 90.0 * max(t - 0.2, 0.0)
    a = math.radians(yaw)
    side = np.array([[-math.sin(a), math.cos(a)]]) * np.array([[0.1], [-0.1]])
    return np.zeros(2), np.column_stack([side, np.zeros(2)]), np.full(2, yaw), None


def test_a_planted_foot_swivels_on_its_ball_as_the_body_turns_past_pivot_yaw():
    """A body turning over planted feet: held on its heading, a foot lagged the body's turn
    by up to YAW_RELEASE (30 degrees), its leg rolled that far in the hip, before it was let
    go. Now past PIVOT_YAW it swivels on the ball of the foot (BALL of its reach ahead of
    the ankle, which stays put), lagging by PIVOT_YAW at most."""
    BALL, PIVOT_YAW = 0.7, 14.0  # locomotion's (named here, not imported, to fail on old code by behaviour)
    reach = np.full(2, 0.2)
    plants = FootPlants(_turning_feet, np.full(2, 0.01), np.full(2, 0.03), np.full(2, 0.5), 0.0, reach=reach)
    times = np.arange(0.0, 0.7, 1 / 240)
    lags, balls = [], []
    for t in times:
        positions, headings = _turning_feet(float(t))[1:3]
        xy, lift, yaw = plants.held(float(t), positions, headings)
        assert (lift == 0).all()  # both stay down: the clips keep them so, and the feet swivel
        lags.append(headings - yaw)
        h = np.radians(yaw)
        balls.append(xy + BALL * reach[:, None] * np.stack([np.cos(h), np.sin(h)], 1))
    lags, balls = np.array(lags), np.array(balls)
    assert lags.max() == pytest.approx(PIVOT_YAW, abs=1e-9) and lags.max() < 20.0, lags.max()
    assert np.abs(balls - balls[0]).max() < 1e-9  # the balls of the feet stay put


def test_a_foot_without_a_ball_is_held_then_let_go_not_spun_about_its_ankle():
    """A foot no Gaussians follow has reach 0: it swivelled about its ankle (the spin on the
    floor the plants exist to stop), its heading never let go. It is held and let go at
    yaw_release, as plants without reaches do; a foot with a ball swivels, lagging 14 degrees."""
    def feet(t):
        yaw = 120.0 * max(t - 0.2, 0.0) + 30 * math.sin(3 * t)
        a = math.radians(yaw)
        side = np.array([[-math.sin(a), math.cos(a)]]) * np.array([[0.1], [-0.1]])
        pos = np.column_stack([side + np.array([0.2 * t, 0.0]), np.zeros(2)])
        lifts = np.array([max(0, math.sin(4 * t)) * 0.05, max(0, -math.sin(4 * t)) * 0.05])
        return lifts, pos, np.full(2, yaw), None

    plants = FootPlants(feet, np.full(2, 0.01), np.full(2, 0.03), np.full(2, 0.15), 0.0, reach=np.array([0.0, 0.2]))
    lags = []
    for t in np.arange(0, 6, 1 / 24):
        positions, headings = feet(float(t))[1:3]
        lags.append(headings - plants.held(float(t), positions, headings)[2])
    worst = np.abs(np.array(lags)).max(axis=0)
    assert worst[0] > 25.0 and worst[1] == pytest.approx(14.0, abs=1e-6), worst
