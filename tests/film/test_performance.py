"""Rigged assets performing in films (splatfilm.film.performance): clip schedules and
crossfades, a walk whose cycle follows the ground (no foot skate), feet on a sloped ground
by IK, a head looking at a target within its limit, field-path errors, and a rendered film
whose clip edits re-render only the frames they change.

The figure is tests/rigged_gltf.py's biped (walk authored with a 1 m stride), imported once
per module through import-mesh."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import yaml
from helpers import capture_beside_rigged
from rigged_gltf import SOLE, WALK_STRIDE, write_biped

from splatfilm.assets.ground import GroundPlane, write_ground
from splatfilm.assets.mesh_import import import_mesh
from splatfilm.errors import SplatfilmError
from splatfilm.film import RenderOptions, parse_film, render_film
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.scene.gaussians import Gaussians

LEGS = [["thigh_l", "shin_l", "foot_l"], ["thigh_r", "shin_r", "foot_r"]]
FEET = (6, 9)
SPEED = 1.2  # m/s along the walk: not the clip's own belt speed (1 m per 1 s cycle)


def _floor(size=6.0, spacing=0.1, tilt_deg=0.0, colour=(0.45, 0.5, 0.45)) -> Gaussians:
    """A square of flat Gaussians through the origin, tilted about y by tilt_deg (rising along +x)."""
    u = np.arange(-size / 2, size / 2 + 1e-9, spacing)
    a, b = np.meshgrid(u, u, indexing="ij")
    pts = np.stack([a.ravel(), b.ravel(), np.zeros(a.size)], 1)
    c, s = math.cos(math.radians(tilt_deg)), math.sin(math.radians(tilt_deg))
    R = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
    pts = pts @ R.T
    n = len(pts)
    scales = np.tile([spacing * 0.7, spacing * 0.7, 0.002], (n, 1))
    q = torch.zeros(n, 4, dtype=torch.float32)
    q[:, 0] = 1
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    from splatfilm.scene.transforms import rotmat_to_quat

    q = rotmat_to_quat(torch.tensor(R)).float().expand(n, 4).contiguous()
    checker = ((np.floor(a.ravel() / 0.5) + np.floor(b.ravel() / 0.5)) % 2)[:, None]
    colours = np.where(checker > 0, colour, np.asarray(colour) * 0.6)
    return Gaussians.from_activated(t(pts), q, t(scales), torch.full((n,), 0.98), colors=t(colours))


def _slope_plane(tilt_deg: float) -> GroundPlane:
    a = math.radians(tilt_deg)
    return GroundPlane([-math.sin(a), 0.0, math.cos(a)], 0.0)


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("performance")
    write_biped(d / "figure.glb")
    import_mesh(d / "figure.glb", d / "figure.ply", count=1500)
    # The same figure as Blender exports it (keys from frame 1 at 30 fps), with a walk that
    # carries its hips a stride a cycle too (Mixamo's without "In Place").
    write_biped(d / "mover.glb", t0=1 / 30, root_motion=True)
    import_mesh(d / "mover.glb", d / "mover.ply", count=1500)
    save_gaussians(d / "floor.ply", _floor())
    write_ground(d / "floor.ply", GroundPlane([0, 0, 1], 0.0))
    save_gaussians(d / "hill.ply", _floor(tilt_deg=12.0))
    write_ground(d / "hill.ply", _slope_plane(12.0))
    return d


def _film(folder: Path, hero: dict, ground="floor", shots=None, **top) -> Path:
    """A film of the ground and the figure ("hero": its asset block, over a default)."""
    block = {"file": "figure.ply", "on_ground": ground, "position": [0, 0, 0]}
    block.update(hero)
    script = {"title": "walk", "fps": 24, "resolution": [64, 48],
              "assets": {ground: {"file": f"{ground}.ply"}, "hero": block},
              "shots": shots or [{"name": "sh010", "frames": 6, "camera": {"position": [0, -5, 1.2], "look_at": [0, 0, 0.9]},
                           "move": {"type": "pan", "degrees": 0}}]}
    script.update(top)
    path = folder / "film.yaml"
    path.write_text(yaml.safe_dump(script, sort_keys=False))
    return path


def _copy(assets: Path, tmp_path: Path) -> Path:
    for p in assets.iterdir():
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


def _walk(**over) -> dict:
    hero = {"walk": {"points": [[-2.0, 0.0, 0.0], [2.0, 0.0, 0.0]], "speed": SPEED, "start": 0.0},
            "clips": [{"clip": "walk", "start": 0.0}], "ik": {"legs": LEGS}}
    hero.update(over)
    return hero


def _no_ik(**over) -> dict:
    """_walk without IK: the clips' own feet."""
    hero = _walk(**over)
    del hero["ik"]
    return hero


def _feet_world(world, t: float, camera=None) -> np.ndarray:
    """World positions [2,3] of the figure's foot joints at world time t."""
    G = world.joint_globals("hero", t, camera)
    return world.assets["hero"].world_transform(t).apply(G[list(FEET), :3, 3])


def _clip_feet_world(world, t: float) -> np.ndarray:
    """World positions [2,3] of the foot joints where the clips alone put them (no IK)."""
    from splatfilm.scene.skeleton import global_transforms

    perf = world.assets["hero"].performance
    G = global_transforms(perf.rig, perf.local_pose(t).matrices())
    return world.assets["hero"].world_transform(t).apply(G[list(FEET), :3, 3])


def _skate(world, plane: GroundPlane, times: np.ndarray, sole: float, clip: bool = False,
           during: np.ndarray | None = None) -> tuple[float, int]:
    """Foot skate: mean speed (m/s) of the foot joints along the ground while in contact
    (within 2 mm of their planted height above the plane), and how many samples were.
    clip: of the feet where the clips alone put them; during [T-1]: only these intervals."""
    pos = np.array([(_clip_feet_world if clip else _feet_world)(world, float(t)) for t in times])  # [T,2,3]
    height = plane.signed_distance(pos)
    along = pos - height[..., None] * plane.normal
    speed = np.linalg.norm(np.diff(along, axis=0), axis=-1) / np.diff(times)[:, None]
    contact = (height[1:] <= sole + 0.002) & (height[:-1] <= sole + 0.002)
    if during is not None:
        contact &= np.asarray(during, bool)[:, None]
    return float(speed[contact].mean()), int(contact.sum())


# ---- walking ------------------------------------------------------------------------------------


def test_stride_matched_walk_does_not_skate_and_a_wrong_rate_does(assets, tmp_path):
    folder = _copy(assets, tmp_path)
    times = np.linspace(0.5, 2.5, 241)
    plane = GroundPlane([0, 0, 1], 0.0)
    film = parse_film(_film(folder, _walk()))
    perf = film.world.assets["hero"].performance
    assert perf.plays[0].stride == pytest.approx(WALK_STRIDE, rel=0.01)  # measured from the planted feet
    sole = float(perf.ik.sole_heights[0])  # the foot joint's height above the soles (the base is the lowest vertex)
    assert sole == pytest.approx(SOLE, abs=0.003)
    skate, samples = _skate(film.world, plane, times, sole)
    assert samples > 150  # both feet are down more than half the time
    assert skate < 0.03  # m/s, against a ground speed of 1.2 m/s

    assert _skate(film.world, plane, times, sole, clip=True)[0] < 0.03  # the clip's own feet: the plants barely act

    # A given stride that is wrong (the clip covers 1 m per cycle, not 0.7): the clip's feet
    # slide; the foot plants hold them (and step them on when the clip carries them too far).
    wrong = parse_film(_film(folder, _walk(clips=[{"clip": "walk", "start": 0.0, "stride": 0.7}])))
    assert _skate(wrong.world, plane, times, sole, clip=True)[0] > 0.3
    assert _skate(wrong.world, plane, times, sole)[0] < 0.03
    # Played in time instead (walk not followed): a 1 m/s belt under a 1.2 m/s walk.
    perf.plays[0].stride = None
    assert _skate(film.world, plane, times, sole, clip=True)[0] > 0.1


def test_foot_plants_are_kept_in_the_films_cache_and_a_later_parse_resumes_from_them(assets, tmp_path):
    """Foot plants are worked out forward from the walk's start, 240 steps a second, and were
    kept only in memory: a late frame cost every process (a shot rendered alone, each worker, a
    viewer scrubbing to the end) the whole walk again, 24 s for a 91 m walk. They are now kept
    in the film's .splatfilm-cache/: a second parse answers a late frame from there, with the
    same joint transforms, bit for bit; a damaged record is worked out again, and another walk
    does not read them."""
    from splatfilm.scene.locomotion import CHECKPOINT_STEPS

    folder = _copy(assets, tmp_path)
    path = _film(folder, _walk())
    times = (3.1, 0.5, 1.37)
    first = parse_film(path).world
    poses = [first.joint_globals("hero", t) for t in times]
    assert first.assets["hero"].performance.plant_steps_worked >= 3.1 * 240
    kept = list((folder / ".splatfilm-cache").glob("plants-*.json"))
    assert len(kept) == 1
    again = parse_film(path).world
    assert all(np.array_equal(again.joint_globals("hero", t), G) for t, G in zip(times, poses))
    assert again.assets["hero"].performance.plant_steps_worked < 2 * CHECKPOINT_STEPS
    kept[0].write_text('{"key": ' + kept[0].read_text()[8:80])  # cut short
    damaged = parse_film(path).world
    assert np.array_equal(damaged.joint_globals("hero", 3.1), poses[0])
    assert damaged.assets["hero"].performance.plant_steps_worked >= 3.1 * 240
    slower = parse_film(_film(folder, _walk(walk={"points": [[-2.0, 0.0, 0.0], [2.0, 0.0, 0.0]], "speed": 1.0}))).world
    slower.joint_globals("hero", 3.1)
    assert slower.assets["hero"].performance.plant_steps_worked >= 3.1 * 240


def test_kept_foot_plants_are_keyed_by_what_the_clips_do(assets, tmp_path, monkeypatch):
    """`root_motion: lock` on a clip whose root travel is not taken for root motion (under
    ROOT_MOTION_SHARE of its feet's path, or MIN_STRIDE) changes the clip but nothing the plants'
    key named (its name, timing and kept travel, and its poses where plays start, where a
    lock takes nothing off): a later parse resumed the unlocked clip's plants, the feet planted
    where the unlocked hips had carried them."""
    from splatfilm.scene import locomotion

    monkeypatch.setattr(locomotion, "ROOT_MOTION_SHARE", 2.0)  # walk_root's 1 m a cycle goes unseen
    hero = {"file": "mover.ply", "clips": [{"clip": "walk_root"}], "ik": {"legs": LEGS}}
    folder = _copy(assets, tmp_path)
    parse_film(_film(folder, hero)).world.joint_globals("hero", 1.5)  # its plants kept in the cache
    hero["clips"][0]["root_motion"] = "lock"
    locked = parse_film(_film(folder, hero)).world
    fresh_folder = tmp_path / "fresh"
    fresh_folder.mkdir()
    fresh = parse_film(_film(_copy(assets, fresh_folder), hero)).world  # no cache
    np.testing.assert_array_equal(locked.joint_globals("hero", 1.5), fresh.joint_globals("hero", 1.5))
    assert locked.assets["hero"].performance.plant_steps_worked >= 1.5 * 240


def test_a_frame_poses_its_walker_once_for_its_key_and_its_render(assets, tmp_path, monkeypatch):
    """The walk and its IK (Performance.joint_globals) run once per frame time, shared by the
    frame's key (World.signature, its contact shadow's lay too) and its render: they were run
    four times a frame. The frames and keys are those posed afresh."""
    from splatfilm.film import FrameRenderer
    from splatfilm.film.performance import Performance

    film = parse_film(_film(_copy(assets, tmp_path), _walk(shadow=True)))
    fs = film.shots[0]
    fresh = FrameRenderer(film, "cpu")
    expected = [(fresh.key(fs, i), fresh.render(fs, i)[0]) for i in (0, 5)]
    calls, pose = [], Performance.joint_globals

    def counting(self, t, *args, **kwargs):
        calls.append(t)
        return pose(self, t, *args, **kwargs)

    monkeypatch.setattr(Performance, "joint_globals", counting)
    renderer, n = FrameRenderer(film, "cpu"), len(fs.shot.times)
    keys = [renderer.key(fs, i) for i in range(n)]
    frames = [renderer.render(fs, i)[0] for i in range(n)]
    assert len(calls) == len(set(calls)) == n
    assert (keys[0], keys[5]) == (expected[0][0], expected[1][0]) and keys[0] != keys[5]
    assert np.array_equal(frames[0], expected[0][1]) and np.array_equal(frames[5], expected[1][1])


def test_planted_feet_stay_put_while_a_walk_blends_into_an_idle(assets, tmp_path):
    """The walk ends (1.5 s) inside a 0.4 s crossfade into the idle: the blend carried the
    planted feet toward the idle's stance along the floor (centimetres of skate). A foot now
    stays where it was planted while in contact; one left too far behind is lifted and steps."""
    folder = _copy(assets, tmp_path)
    hero = _walk(walk={"points": [[-0.6, 0.0, 0.0], [0.6, 0.0, 0.0]], "speed": 0.8, "start": 0.0},
                 clips=[{"clip": "walk", "start": 0.0}, {"clip": "idle", "start": 1.3, "crossfade": 0.4}])
    world = parse_film(_film(folder, hero)).world
    sole = world.assets["hero"].performance.ik.sole_heights
    times = np.arange(0.9 * 24, 2.5 * 24 + 1) / 24
    pos = np.array([_feet_world(world, float(t)) for t in times])  # [T,2,3]
    height = pos[..., 2] - sole  # the flat floor: the sole's height
    contact = (height[1:] < 0.005) & (height[:-1] < 0.005)  # within 5 mm of standing, both frames
    slide = np.linalg.norm(np.diff(pos[..., :2], axis=0), axis=-1)[contact]
    assert contact.sum() > 40
    assert slide.sum() < 0.003, np.round(slide * 1000, 1)  # m, summed over both feet


def test_a_walk_that_doubles_back_stops_to_turn_and_its_feet_do_not_slide(assets, tmp_path):
    """Through a turn back the walk kept its full speed while the body came round: the cycle,
    paced by the distance walked, stepped forwards while the body went sideways and
    backwards, and the clip's planted feet slid over the floor at 0.47 m/s. The walk now
    slows, turns standing and walks on, its cycle paced by the slowed distance: while it
    walks, the clip's own feet stay put where they are down, as on a straight walk (turning
    on the spot, the body carries them round and the foot plants hold them)."""
    folder = _copy(assets, tmp_path)
    hero = _walk(walk={"points": [[-1.2, 0.0, 0.0], [1.2, 0.0, 0.0], [-1.2, 0.01, 0.0]], "speed": SPEED, "start": 0.0})
    world = parse_film(_film(folder, hero)).world
    walk = world.assets["hero"].motion
    sole = float(world.assets["hero"].performance.ik.sole_heights[0])
    plane = GroundPlane([0, 0, 1], 0.0)
    times = np.arange(0.5, walk.end, 1 / 48)
    walking = np.diff([walk.distance(float(t)) for t in times]) / np.diff(times) > 0.25 * SPEED
    skate, samples = _skate(world, plane, times, sole, clip=True, during=walking)
    assert samples > 100
    assert skate < 0.03, skate  # m/s
    assert _skate(world, plane, times, sole)[0] < 0.03  # the feet as the plants hold them, turning too


def test_turning_on_the_spot_steps_round_without_spinning_a_planted_foot(assets, tmp_path):
    """At a path's reversal the walker turns standing. The walk cycle, paced by the distance
    walked, froze mid-stride, and the planted foot, held in position only, spun about its
    ankle with the body: over the 0.4 s standing its feet turned 82 degrees while down and
    their toes and heels swept 32 cm over the floor (summed). A planted foot now keeps its heading and is let go to step
    round once the body has turned YAW_RELEASE past it, and the cycle keeps stepping (in
    place) while the body turns."""
    folder = _copy(assets, tmp_path)
    hero = _walk(walk={"points": [[-1.2, 0.0, 0.0], [1.2, 0.0, 0.0], [-1.2, 0.01, 0.0]], "speed": SPEED, "start": 0.0})
    world = parse_film(_film(folder, hero)).world
    asset, walk = world.assets["hero"], world.assets["hero"].motion
    perf = asset.performance
    sole = perf.ik.sole_heights
    ends = np.array([[0.0, 0.0, 0.17], [0.0, 0.0, -0.05]])  # toe and heel in the foot joint's frame (glTF: +z front)
    times = np.arange(0.0, walk.end, 1 / 96)
    distance = np.array([walk.distance(float(t)) for t in times])
    heading = np.unwrap([walk.heading(float(t)) for t in times], period=360)
    spot = (np.diff(distance) == 0) & (np.abs(np.diff(heading)) > 0)  # [T-1]: turning standing
    assert spot.sum() > 30  # a third of a second or more
    inside = np.flatnonzero(spot)
    window = times[inside[0]:inside[-1] + 2]
    yaw, down, tips = [], [], []
    for t in window:
        G = world.joint_globals("hero", float(t))
        W = asset.world_transform(float(t))
        R = W.rotation @ G[list(FEET), :3, :3]  # [2,3,3]
        front = R[:, :, 2]
        yaw.append(np.degrees(np.arctan2(front[:, 1], front[:, 0])))
        down.append(W.apply(G[list(FEET), :3, 3])[:, 2] - sole < 0.002)
        tips.append([[W.apply(G[f, :3, 3] + G[f, :3, :3] @ end) for end in ends] for f in FEET])
    yaw, down, tips = np.unwrap(np.array(yaw), axis=0, period=360), np.array(down), np.array(tips)
    both = down[1:] & down[:-1]  # [T-1, 2]: a foot down at both ends of a step
    assert both.any()
    turned = np.where(both, np.abs(np.diff(yaw, axis=0)), 0.0)
    slide = np.linalg.norm(np.diff(tips[..., :2], axis=0), axis=-1)  # [T-1, 2 feet, toe/heel]
    assert turned.sum() < 1.0, turned.sum()  # degrees a planted foot turned, summed over the turn
    assert (slide * both[..., None]).sum() < 0.01, (slide * both[..., None]).sum()  # metres toe and heel slid
    # Both feet step round: each lifted clear and set down again at the new heading, by at
    # most YAW_RELEASE (and the step's ease) from the body's.
    assert down.any(axis=0).all() and (~down).any(axis=0).all()
    from splatfilm.scene.locomotion import YAW_RELEASE

    body = np.unwrap([walk.heading(float(t)) for t in window], period=360)  # the figure faces its heading
    assert np.abs((yaw - body[:, None] + 180) % 360 - 180).max() < YAW_RELEASE + 15
    # The cycle keeps stepping while the body turns: a stride's pace (from the turn), not frozen.
    play = perf.plays[0]
    start, end = float(window[0]), float(window[-1])
    stepped = perf.walk_steps(end) - perf.walk_steps(start)
    assert stepped / play.stride > 0.4  # cycles, about the walk's cadence at the full turn rate
    assert walk.stride_scale(0.5 * (start + end)) == 0.0  # in place: its strides go nowhere
    # A walk that never turns faster than it walks steps exactly its distance.
    straight = parse_film(_film(folder, _walk())).world.assets["hero"].motion
    assert all(straight.stepping(t) == straight.distance(t) and straight.stride_scale(t) == 1.0
               for t in np.linspace(-1, 5, 61))


def test_turning_on_the_spot_swivels_a_planted_foot_on_its_ball_and_keeps_the_thighs_roll_small(assets, tmp_path):
    """Turning on the spot, a planted foot held on its heading while the body turned over it
    rolled its thigh against the pelvis by up to 32 degrees (beyond the clip's own) before
    YAW_RELEASE let it go, and with such short plants both feet were in the air together for
    0.4 s of the 0.7 s turn. A planted foot now swivels on its ball, heel up, once it lags
    the body by PIVOT_YAW: the thighs roll under 15 degrees, the ball stays put while it
    touches the floor."""
    from splatfilm.scene.skeleton import global_transforms
    from splatfilm.scene.transforms import quat_from_rotation

    BALL = 0.7  # locomotion.BALL: where the ball of the foot is, along its reach (named here, not imported, to fail on old code)
    folder = _copy(assets, tmp_path)
    hero = _walk(walk={"points": [[-1.2, 0.0, 0.0], [1.2, 0.0, 0.0], [-1.2, 0.01, 0.0]], "speed": SPEED, "start": 0.0})
    world = parse_film(_film(folder, hero)).world
    asset, perf = world.assets["hero"], world.assets["hero"].performance
    ik, rest = perf.ik, perf.rig.rest_globals()
    up = asset.local.rotation.T @ np.array([0.0, 0.0, 1.0])
    rolls, balls, touch = [], [], []
    for t in np.arange(2.3, 3.3, 1 / 96):
        G, W = world.joint_globals("hero", float(t)), asset.world_transform(float(t))
        G0 = global_transforms(perf.rig, perf.local_pose(float(t)).matrices())
        for i, (a, b, c) in enumerate(ik.legs):
            p = perf.rig.parents[a]
            q = quat_from_rotation((G0[p, :3, :3].T @ G0[a, :3, :3]).T @ (G[p, :3, :3].T @ G[a, :3, :3]))
            axis = np.linalg.solve(rest[a, :3, :3], rest[b, :3, 3] - rest[a, :3, 3])
            rolls.append(math.degrees(2 * math.atan2(q[1:] @ axis / np.linalg.norm(axis), q[0])))  # about its length
            below = G[c, :3, :3] @ np.linalg.solve(rest[c, :3, :3], up) * ik.sole_heights[i] / asset.local.scale
            front = G[c, :3, :3] @ ik.fronts[i]
            balls.append(W.apply(G[c, :3, 3] - below + BALL * ik.reach[i] / asset.local.scale * front))
    rolls, balls = np.abs(rolls).reshape(-1, 2), np.array(balls).reshape(-1, 2, 3)
    assert rolls.max() < 15.0, rolls.max()  # degrees
    touch = balls[..., 2] < 0.003  # [T,2]: the ball of the foot on the floor
    still = touch[1:] & touch[:-1]
    moved = np.linalg.norm(np.diff(balls[..., :2], axis=0), axis=-1)
    assert (moved * still).sum() < 0.005, (moved * still).sum()  # metres, summed over the turn


def _keyed_half_turn(assets, tmp_path, yaw: float):
    """The world of the test figure idling, keyed round 180 degrees from `yaw` between 0.5 and
    1.5 s over its planted feet."""
    keys = [(0.0, yaw), (0.5, yaw), (1.5, yaw + 180.0)]
    hero = {"animation": {"keyframes": [{"time": t, "position": [0, 0, 0], "yaw": y} for t, y in keys]},
            "clips": [{"clip": "idle", "start": 0.0}], "ik": {"legs": LEGS}}
    return parse_film(_film(_copy(assets, tmp_path), hero)).world


def test_a_foot_stepping_round_across_the_half_turn_takes_the_short_way(assets, tmp_path):
    """A foot let go from swivelling blended its heading toward its landing one in a straight
    line: where the two lay either side of +-180 degrees (an idle keyed from 150 to 330), it
    spun the long way round, 130 degrees and 126 mm in one frame."""
    world = _keyed_half_turn(assets, tmp_path, 150.0)
    asset, perf = world.assets["hero"], world.assets["hero"].performance
    feet = [c for _, _, c in perf.ik.legs]
    yaw, pos = [], []
    for t in np.arange(0.4, 2.2, 1 / 96):
        G, W = world.joint_globals("hero", float(t)), asset.world_transform(float(t))
        R = W.rotation @ G[feet, :3, :3]
        yaw.append(np.degrees(np.arctan2(R[:, 1, 2], R[:, 0, 2])))
        pos.append(W.apply(G[feet, :3, 3]))
    turn = np.abs((np.diff(yaw, axis=0) + 180) % 360 - 180).max()
    move = np.linalg.norm(np.diff(pos, axis=0), axis=-1).max()
    assert turn < 8.0 and move < 0.025, (turn, move)  # 4.8 degrees and 17.6 mm from any other start


def test_a_body_keyed_round_over_planted_feet_neither_skates_nor_spins_a_foot_on_the_floor(assets, tmp_path):
    """An idle keyed round 180 degrees in a second over its planted feet: a foot let go from
    swivelling on its ball went on with the clips' foot, carried round the turning body, and
    so skated while its toe was still down, and it came down turning and sliding with the
    body (11 mm over the turn when held flat till let go at 30 degrees, more so). Now
    it rises before it moves and comes to rest where and as the clips put it at its step's
    end before it touches: the ball and heel of a foot on the floor stay put."""
    world = _keyed_half_turn(assets, tmp_path, 0.0)
    asset, perf = world.assets["hero"], world.assets["hero"].performance
    ik, rest = perf.ik, perf.rig.rest_globals()
    up = asset.local.rotation.T @ np.array([0.0, 0.0, 1.0])
    points = []  # [T,2,2,3]: each foot's ball (0.7 of its reach ahead, locomotion.BALL) and heel, on its sole
    for t in np.arange(0.4, 2.2, 1 / 96):
        G, W = world.joint_globals("hero", float(t)), asset.world_transform(float(t))
        for i, (_, _, c) in enumerate(ik.legs):
            below = G[c, :3, :3] @ np.linalg.solve(rest[c, :3, :3], up) * ik.sole_heights[i] / asset.local.scale
            front = G[c, :3, :3] @ ik.fronts[i]
            points += [W.apply(G[c, :3, 3] - below + 0.7 * ik.reach[i] / asset.local.scale * front),
                       W.apply(G[c, :3, 3] - below)]
    points = np.array(points).reshape(-1, 2, 2, 3)
    down = points[..., 2] < 0.003
    moved = np.linalg.norm(np.diff(points[..., :2], axis=0), axis=-1) * (down[1:] & down[:-1])
    assert moved.sum() < 0.001, moved.sum()  # metres, summed over both feet and the turn


# ---- clips keyed after 0, root motion, phase -----------------------------------------------------


def _joints(world, t: float) -> np.ndarray:
    """The figure's joint positions [J,3] in the world at world time t (no IK, no look-at)."""
    return world.assets["hero"].world_transform(t).apply(world.joint_globals("hero", t)[:, :3, 3])


def test_a_clip_keyed_from_frame_one_loops_over_its_keys(assets, tmp_path):
    """Blender keys an action from frame 1 (1/30 s) unless told to slide it to zero. The clip
    was taken to last to its last key (1.033 s) and looped from 0: each cycle held its first
    pose for a frame, and walked, its stride measured 3.3% long, its planted feet skated. It
    now spans its keys: it plays exactly as the same clip keyed from 0, walking or not."""
    folder = _copy(assets, tmp_path)
    mover = parse_film(_film(folder, {**_no_ik(), "file": "mover.ply"})).world
    figure = parse_film(_film(folder, _no_ik())).world
    assert mover.assets["hero"].performance.plays[0].stride == pytest.approx(
        figure.assets["hero"].performance.plays[0].stride, abs=1e-4)
    for t in (0.3, 0.81, 0.84, 1.0, 1.02, 2.5):
        np.testing.assert_allclose(_joints(mover, t), _joints(figure, t), atol=1e-4)
    walk = mover.assets["hero"].performance.rig.clips["walk"]
    assert walk.start == pytest.approx(1 / 30) and walk.duration == pytest.approx(1.0)
    # In time (no walk), across the loop: 0.99 s and 1.01 s into the play are 0.02 s apart.
    clips = {"clips": [{"clip": "walk", "start": 0.0}]}
    mover = parse_film(_film(folder, {**clips, "file": "mover.ply"})).world
    figure = parse_film(_film(folder, clips)).world
    for t in (0.5, 0.99, 1.0, 1.01, 1.03):
        np.testing.assert_allclose(_joints(mover, t), _joints(figure, t), atol=1e-4)


def test_a_walk_with_root_motion_is_locked_to_the_walk(assets, tmp_path):
    """Mixamo's walk without "In Place" carries its hips a stride per cycle, its planted feet
    standing still. Played along a walk, no stride was found (its feet do not slide), so it
    played in time: the hips walked on ahead of the walk at twice its pace and snapped back
    0.9 m each cycle, and the note said it would glide with its feet idle. Its root motion is
    now locked (the walk carries the body, the stride is the clip's travel), bob kept;
    `root_motion: keep` leaves it, and the note says what it does."""
    from splatfilm.film.checks import walk_notes

    folder = _copy(assets, tmp_path)
    # Filmed while it walks (it arrives at 3.33 s).
    walking_shot = [{"name": "sh010", "duration": 3, "camera": {"position": [0, -5, 1.2], "look_at": [0, 0, 0.9]}}]
    hero = {**_no_ik(clips=[{"clip": "walk_root", "start": 0.0}]), "file": "mover.ply"}
    film = parse_film(_film(folder, hero, shots=walking_shot))
    play = film.world.assets["hero"].performance.plays[0]
    assert play.stride == pytest.approx(WALK_STRIDE, abs=1e-3) and play.root_travel == 0.0
    assert walk_notes(film) == []
    motion = film.world.assets["hero"].motion
    times = np.arange(0.0, motion.end, 1 / 24)
    hips = np.array([_joints(film.world, float(t))[0] for t in times])
    path = np.array([film.world.assets["hero"].place_at(float(t)).translation for t in times])  # the walk's body
    assert np.ptp(hips[:, :2] - path[:, :2], axis=0).max() < 0.005  # carried with the walk, not ahead of it
    # Its planted feet stand still, as the in-place walk's do.
    inplace = parse_film(_film(folder, _no_ik())).world
    for t in (0.4, 1.3, 2.2):
        np.testing.assert_allclose(_joints(film.world, t), _joints(inplace, t), atol=1e-3)

    hero["clips"][0]["root_motion"] = "keep"
    film = parse_film(_film(folder, hero, shots=walking_shot))
    play = film.world.assets["hero"].performance.plays[0]
    assert play.stride is None and play.root_travel == pytest.approx(WALK_STRIDE, abs=1e-3)
    (note,) = walk_notes(film)
    assert "its own root motion carries it 1.00 m a cycle besides (root_motion: keep)" in note, note
    # An idle along the walk still glides with its feet idle.
    hero["clips"] = [{"clip": "idle", "start": 0.0}]
    (note,) = walk_notes(parse_film(_film(folder, hero, shots=walking_shot)))
    assert "idle" in note and "with its feet idle" in note and "root motion" not in note
    # Without a walk it plays as it is; root_motion: lock plays it in place.
    free = {"file": "mover.ply", "clips": [{"clip": "walk_root"}]}
    world = parse_film(_film(folder, free)).world
    assert _joints(world, 0.5)[0, 1] - _joints(world, 0.0)[0, 1] == pytest.approx(-0.5, abs=1e-3)  # front: -y
    free["clips"][0]["root_motion"] = "lock"
    world = parse_film(_film(folder, free)).world
    assert abs(_joints(world, 0.5)[0, 1] - _joints(world, 0.0)[0, 1]) < 1e-3


def test_a_root_motion_clip_looping_without_a_walk_is_noted(assets, tmp_path):
    """Without a walk, Mixamo's walk without "In Place" plays as it is: its hips walk a
    stride and snap back every loop, and nothing said so. walk_notes names the play, its
    travel and the ways out; locked, not looping, an in-place walk, or a shot too short to
    see it loop: nothing to say."""
    from splatfilm.film.checks import walk_notes

    folder = _copy(assets, tmp_path)
    shot = [{"name": "sh010", "duration": 2.5, "camera": {"position": [0, -5, 1.2], "look_at": [0, 0, 0.9]}}]
    free = {"file": "mover.ply", "clips": [{"clip": "walk_root"}]}
    assert walk_notes(parse_film(_film(folder, free, shots=shot))) == [(
        f"{folder / 'film.yaml'}: assets.hero.clips[0]: hero: walk_root carries it 1.00 m a cycle by its own root "
        "motion and loops, so it snaps back 1.00 m every 1.00 s (2 times in shot, first at 1.00 s); give it "
        "root_motion: lock to step on the spot, or the asset a walk: to carry it")]
    free["clips"][0]["speed"] = 2.0
    (note,) = walk_notes(parse_film(_film(folder, free, shots=shot)))
    assert "every 0.50 s (4 times in shot, first at 0.50 s)" in note, note
    for change in ({"root_motion": "lock"}, {"loop": False}, {"clip": "walk"}):
        free = {"file": "mover.ply", "clips": [{"clip": "walk_root", **change}]}
        assert walk_notes(parse_film(_film(folder, free, shots=shot))) == [], change
    free = {"file": "mover.ply", "clips": [{"clip": "walk_root"}]}
    assert walk_notes(parse_film(_film(folder, free))) == []  # 6 frames: it does not loop in shot


def test_a_walk_blended_into_a_walk_joins_in_step(assets, tmp_path):
    """A walk cycle crossfaded into another (or itself) started from its first key whatever
    phase the outgoing one had reached: half a cycle apart, the blend drew the feet together
    and skated the planted one. It now joins at the outgoing one's phase (`sync`, the
    default between two walk cycles), so the blend is the walk itself; `sync: false` and
    `offset:` start it where they say."""
    folder = _copy(assets, tmp_path)
    base = _no_ik()
    single = parse_film(_film(folder, base)).world
    twice = [{"clip": "walk", "start": 0.0}, {"clip": "walk", "start": 1.45, "crossfade": 0.5}]
    world = parse_film(_film(folder, {**base, "clips": twice})).world
    for t in (1.5, 1.7, 1.9, 2.3):
        np.testing.assert_allclose(_joints(world, t), _joints(single, t), atol=1e-6)
    assert world.assets["hero"].performance.plays[1].sync
    twice[1]["sync"] = False
    world = parse_film(_film(folder, {**base, "clips": twice})).world
    assert np.abs(_joints(world, 1.7) - _joints(single, 1.7)).max() > 0.05
    # offset: seconds into the clip from its first key (this one's keys start at 1/30 s).
    from splatfilm.scene.skeleton import global_transforms, sample_clip

    world = parse_film(_film(folder, {"file": "mover.ply", "clips": [{"clip": "walk", "offset": 0.25}]})).world
    perf = world.assets["hero"].performance
    clip = perf.rig.clips["walk"]
    np.testing.assert_allclose(world.joint_globals("hero", 0.1),
                               global_transforms(perf.rig, sample_clip(perf.rig, clip, clip.start + 0.35)), atol=1e-9)


# ---- the clip schedule against the walk -------------------------------------------------------

LONG_SHOT = [{"name": "sh010", "duration": 6, "camera": {"position": [0, -5, 1.2], "look_at": [0, 0, 0.9]}}]


def _suggested_start(note: str, clip: str) -> float:
    """The start (s) a walk note suggests for `clip` ("start idle at 2.35 s")."""
    return float(note.split(f"start {clip} at ")[1].split(" s")[0])


def test_an_idle_starting_before_a_slowed_walk_arrives_is_named_with_the_arrival(assets, tmp_path):
    """A walk that doubles back stops to turn and arrives about a second after length / speed;
    an idle scheduled for length / speed played while the body was still carried along the
    floor (its planted feet dragged into steps), and nothing said so. walk_notes names the
    clip, its start and the walk's arrival from its motion, and the start it suggests is
    silent."""
    from splatfilm.film.checks import walk_notes

    folder = _copy(assets, tmp_path)
    walk = {"points": [[-1.2, 0.0, 0.0], [1.2, 0.0, 0.0], [-1.2, 0.01, 0.0]], "speed": SPEED, "start": 0.0}
    path = _film(folder, _walk(walk=walk), shots=LONG_SHOT)
    motion = parse_film(path).world.assets["hero"].motion
    full_pace = motion.length / SPEED
    assert motion.end > full_pace + 0.5  # slowed and turned on the spot
    clips = [{"clip": "walk", "start": 0.0}, {"clip": "idle", "start": round(full_pace, 2), "crossfade": 0.4}]
    film = parse_film(_film(folder, _walk(walk=walk, clips=clips), shots=LONG_SHOT))
    notes = walk_notes(film)
    assert len(notes) == 1, notes
    note = notes[0]
    assert "assets.hero.clips[1]: hero: idle starts at" in note and f"arrives at {motion.end:.2f} s" in note
    assert "slows for turns" in note
    # How far it glides while the idle has the most weight (from halfway through its crossfade).
    glide = motion.length - motion.distance(round(full_pace, 2) + 0.2)
    assert glide > 0.3
    assert float(note.split("glide ")[1].split(" m")[0]) == pytest.approx(glide, abs=0.02)
    clips[1]["start"] = _suggested_start(note, "idle")
    assert walk_notes(parse_film(_film(folder, _walk(walk=walk, clips=clips), shots=LONG_SHOT))) == []
    # A walk cycle starting after the walk sets off: the idle before it glides there.
    clips = [{"clip": "idle", "start": 0.0}, {"clip": "walk", "start": 0.6, "crossfade": 0.3},
             {"clip": "idle", "start": round(motion.end + 0.1 - 0.2, 2), "crossfade": 0.4}]
    walk["start"] = 0.1  # it arrives 0.1 s later too
    notes = walk_notes(parse_film(_film(folder, _walk(walk=walk, clips=clips), shots=LONG_SHOT)))
    assert len(notes) == 1 and "clips[1]: hero: walk starts at 0.60 s (half in at 0.75 s) but its walk sets off at 0.10 s" in notes[0], notes


def test_a_walk_cycle_still_playing_after_the_walk_arrives_is_named(assets, tmp_path):
    """The walk cycle follows the ground, so once the walk has arrived it stands frozen in a
    stride; a schedule with no idle after it (or one too late) said nothing."""
    from splatfilm.film.checks import walk_notes

    folder = _copy(assets, tmp_path)
    film = parse_film(_film(folder, _walk(), shots=LONG_SHOT))  # 4 m at 1.2 m/s: arrives at 3.33 s, filmed to 6 s
    perf, motion = film.world.assets["hero"].performance, film.world.assets["hero"].motion
    assert perf.clip_time(perf.plays[0], 4.0) == perf.clip_time(perf.plays[0], 5.0)  # frozen
    notes = walk_notes(film)
    assert len(notes) == 1, notes
    assert f"clips[0]: hero: walk still plays after its walk arrives at {motion.end:.2f} s" in notes[0]
    assert f"for {6.0 - motion.end:.2f} s in shot" in notes[0]
    clips = [{"clip": "walk", "start": 0.0}, {"clip": "idle", "start": 5.0, "crossfade": 0.5}]
    notes = walk_notes(parse_film(_film(folder, _walk(clips=clips), shots=LONG_SHOT)))
    assert len(notes) == 1 and "clips[1]: hero: walk still shows until 5.25 s" in notes[0], notes
    clips[1]["start"] = _suggested_start(notes[0], "idle")
    assert walk_notes(parse_film(_film(folder, _walk(clips=clips), shots=LONG_SHOT))) == []


def test_the_bundled_films_walk_in_time_with_their_clips(tmp_path):
    """The bundled films' walkers (the set film's explorer crossfades into his idle as he
    arrives; the demo film's hero has no clips) give no walk note. Their dropped crates are
    left out: they do not walk, and the demo's would mesh the set first (half a minute)."""
    from helpers import SCENES

    from splatfilm.film.checks import walk_notes

    for film in ("set", "demo"):
        script = yaml.safe_load((SCENES / film / "film.yaml").read_text())
        del script["assets"]["crate"]
        for block in script["assets"].values():
            block["file"] = str((SCENES / film / block["file"]).resolve())
        (tmp_path / f"{film}.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
        assert walk_notes(parse_film(tmp_path / f"{film}.yaml")) == [], film


def _leg_twist(perf, G: np.ndarray, G0: np.ndarray, up: np.ndarray,
               front_at_rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per IK leg [L]: how far the foot is turned about the shin's axis against the shin,
    less what the clip's pose G0 [J,4,4] has (degrees; the shin twisting like a sweet
    wrapper), and how far the knee stands off the hip-to-foot line towards the foot's front
    (along the ground, `up` [3] the asset's up and `front_at_rest` [3] its front, in its own
    frame; a fraction of the leg: below 0 it bends backwards), in the posed G [J,4,4]."""
    from splatfilm.scene.transforms import quat_from_rotation

    rest = perf.rig.rest_globals()
    twists, knees = [], []
    for i, (a, b, c) in enumerate(perf.ik.legs):
        ankle = G[b, :3, :3].T @ G[c, :3, :3] @ (G0[b, :3, :3].T @ G0[c, :3, :3]).T  # in the shin's axes
        axis = np.linalg.solve(rest[b, :3, :3], rest[c, :3, 3] - rest[b, :3, 3])
        q = quat_from_rotation(ankle)
        twists.append(math.degrees(2 * math.atan2(q[1:] @ axis / np.linalg.norm(axis), q[0])))
        pa, pb, pc = G[a, :3, 3], G[b, :3, 3], G[c, :3, 3]
        line = (pc - pa) / np.linalg.norm(pc - pa)
        off = (pb - pa) - ((pb - pa) @ line) * line
        front = G[c, :3, :3] @ np.linalg.solve(rest[c, :3, :3], front_at_rest)
        front -= (front @ up) * up
        knees.append(off @ front / np.linalg.norm(front) / perf.ik.leg_lengths[i])
    return np.array(twists), np.array(knees)


def test_knees_follow_their_feet_and_shins_do_not_twist(assets, tmp_path):
    """A planted foot keeps its heading while the body turns over it. The IK turned the
    foot but kept the shin's roll and bent the knee where the clip's knee projected onto the
    new hip-to-foot line: turning on the spot, each foot was wrung 31-32 degrees against its
    shin (a sweet-wrapper ankle), and a knee bent backwards of its foot by 16% of the leg.
    Now the leg turns about its hip-to-foot line with the foot (as a rig's knee pole follows
    the foot), a nearly straight knee bends towards the foot's front, and the clip's bend is
    carried onto the new line, not projected."""
    from splatfilm.scene.skeleton import global_transforms

    folder = _copy(assets, tmp_path)
    hero = _walk(walk={"points": [[-1.2, 0.0, 0.0], [1.2, 0.0, 0.0], [-1.2, 0.01, 0.0]], "speed": SPEED, "start": 0.3},
                 clips=[{"clip": "idle", "start": 0.0}, {"clip": "walk", "start": 0.15, "crossfade": 0.3}])
    world = parse_film(_film(folder, hero)).world
    asset = world.assets["hero"]
    perf = asset.performance
    up = asset.local.rotation.T @ np.array([0.0, 0.0, 1.0])
    front = asset.local.rotation.T @ np.array([0.0, -1.0, 0.0])  # the canonical front
    twists, knees = [], []
    for t in np.arange(0.0, asset.motion.end + 0.5, 1 / 48):
        G0 = global_transforms(perf.rig, perf.local_pose(float(t)).matrices())
        twist, knee = _leg_twist(perf, world.joint_globals("hero", float(t)), G0, up, front)
        twists.append(twist)
        knees.append(knee)
    twists, knees = np.abs(np.array(twists)), np.array(knees)
    # A foot swivelling on its ball (locomotion.PIVOT_YAW) is carried off from under its hip,
    # and the hip-to-foot line the leg turns about tilts with it: up to 7 degrees as he walks
    # off over it (1.5 in this film before the feet swivelled, held under 5).
    assert twists.max() < 7.0, twists.max()  # degrees
    assert knees.min() > -0.01, knees.min()  # never bent backwards of the foot by 1% of the leg


def test_ik_keeps_soles_on_a_sloped_ground(assets, tmp_path):
    """Walking up a 12 degree slope: each planted foot's sole (the foot joint less its rest
    height along the ground's normal) stays within 1 cm of the plane, never below it; without
    IK the downhill foot floats or sinks by centimetres."""
    folder = _copy(assets, tmp_path)
    plane = _slope_plane(12.0)
    times = np.linspace(0.5, 2.5, 121)
    film = parse_film(_film(folder, _walk(), ground="hill"))
    sole = film.world.assets["hero"].performance.ik.sole_heights
    pos = np.array([_feet_world(film.world, float(t)) for t in times])
    gap = plane.signed_distance(pos) - sole  # [T,2]: sole above the plane
    planted = gap.min(axis=1)  # the lower foot of each moment
    assert np.abs(planted).max() < 0.01
    assert gap.min() > -0.01  # nothing sinks
    # The feet tilt with the slope: the foot's up is the plane's normal.
    G = film.world.joint_globals("hero", 1.0)
    to_world = film.world.assets["hero"].world_transform(1.0)
    foot_up = to_world.rotation @ (G[FEET[0], :3, :3] @ np.array([0.0, 1.0, 0.0]))  # glTF +y is the figure's up
    assert np.degrees(np.arccos(np.clip(foot_up @ plane.normal, -1, 1))) < 0.5

    no_ik = parse_film(_film(folder, {k: v for k, v in _walk().items() if k != "ik"}, ground="hill"))
    pos = np.array([_feet_world(no_ik.world, float(t)) for t in times])
    gap = plane.signed_distance(pos) - sole
    assert np.abs(gap.min(axis=1)).max() > 0.03


def test_crossfades_are_continuous_and_land_on_the_next_clip(assets, tmp_path):
    folder = _copy(assets, tmp_path)
    hero = {"clips": [{"clip": "idle", "start": 0.0}, {"clip": "walk", "start": 1.0, "crossfade": 0.5},
                      {"clip": "idle", "start": 3.0, "crossfade": 0.4, "loop": False}]}
    film = parse_film(_film(folder, hero))
    perf = film.world.assets["hero"].performance
    from splatfilm.scene.skeleton import global_transforms, sample_clip

    def joints(t):
        return global_transforms(perf.rig, perf.local_pose(t))[:, :3, 3]

    dt = 1e-3
    ts = np.arange(0.0, 4.0, dt)
    steps = np.array([np.abs(joints(t + dt) - joints(t)).max() for t in ts[::5]])
    assert steps.max() < 0.01  # no jump anywhere (1 ms apart: at most 10 m/s, here < 2 m/s)
    for t in (0.999, 1.0, 1.001, 2.999, 3.0, 3.001):  # at the fades' starts: exactly what played before
        assert np.abs(joints(t + 1e-6) - joints(t)).max() < 1e-4
    # Outside the fades: the clips themselves (walk at 0.5 s into it, the last idle held at its end).
    assert np.allclose(joints(1.75), global_transforms(perf.rig, sample_clip(perf.rig, "walk", 0.75))[:, :3, 3])
    assert np.allclose(joints(9.0), global_transforms(perf.rig, sample_clip(perf.rig, "idle", 2.0))[:, :3, 3])
    # Mid-fade: between the two clips.
    a = global_transforms(perf.rig, sample_clip(perf.rig, "idle", 1.25))[:, :3, 3]
    b = global_transforms(perf.rig, sample_clip(perf.rig, "walk", 0.25))[:, :3, 3]
    mid = joints(1.25)
    assert np.abs(mid - a).max() > 1e-3 and np.abs(mid - b).max() > 1e-3


def test_head_looks_at_a_target_within_its_limit(assets, tmp_path):
    from splatfilm.film.performance import HeadAim

    folder = _copy(assets, tmp_path)

    def nose(look_at, t=0.0, camera=None):
        film = parse_film(_film(folder, {"clips": [{"clip": "idle"}], "look_at": look_at}))
        assert isinstance(film.world.assets["hero"].performance.look_at, HeadAim)  # not the camera move LookAt
        G = film.world.joint_globals("hero", t, camera)
        to_world = film.world.assets["hero"].world_transform(t)
        head = to_world.apply(G[3, :3, 3])
        forward = to_world.rotation @ G[3, :3, :3] @ np.array([0.0, 0.0, 1.0])  # glTF front: +z
        return head, forward / np.linalg.norm(forward)

    def angle(u, v):
        return float(np.degrees(np.arccos(np.clip(u @ v, -1, 1))))

    front = np.array([0.0, -1.0, 0.0])  # the figure faces -y (yaw 0)
    head, f = nose({"joint": "head", "target": [1.0, -3.0, 1.5], "limit": 60})
    to = np.array([1.0, -3.0, 1.5]) - head
    assert angle(f, to / np.linalg.norm(to)) < 0.5  # within the limit: straight at it
    head, f = nose({"joint": "head", "target": [3.0, 0.0, float(head[2])], "limit": 45})  # 90 degrees to its left side
    assert angle(f, front) == pytest.approx(45.0, abs=0.5)  # clamped at the limit ...
    assert f[0] > 0.6  # ... turned towards the target
    assert abs(f[2]) < 0.02  # and the head stays level
    # The camera: the frame's camera centre; none given, no look-at.
    _, f = nose({"joint": "head", "target": "camera", "limit": 80}, camera=np.array([-2.0, -2.0, float(head[2])]))
    assert f[0] < -0.6
    _, f = nose({"joint": "head", "target": "camera", "limit": 80})
    assert angle(f, front) < 1.0


def test_a_film_edit_that_deletes_part_of_a_rigged_figure_takes_its_rig_rows_along(assets, tmp_path):
    """A film's `delete` on a performing figure (its nose, as a prop it holds would be) drops
    those Gaussians' rig rows too: the figure posed is the unedited one posed, less the nose,
    and its content key covers the edit."""
    folder = _copy(assets, tmp_path)
    hero = {"clips": [{"clip": "walk"}], "look_at": {"joint": "head", "target": [2.0, -3.0, 1.6], "limit": 60}}
    nose = {"op": "delete", "sphere": {"centre": [0.0, 1.66, 0.13], "radius": 0.06}}  # asset frame: glTF's, y up
    plain = parse_film(_film(folder, hero)).world
    edited = parse_film(_film(folder, {**hero, "edits": [nose]})).world
    kept = edited.assets["hero"].kept
    assert kept is not None and 10 < (~kept).sum() < 100
    assert len(edited.assets["hero"].gaussians) == kept.sum() == len(edited.assets["hero"].performance.rig.joints)
    for t in (0.0, 0.3, 0.7):
        posed, posed_plain = edited.posed("hero", t), plain.posed("hero", t)
        torch.testing.assert_close(posed.means, posed_plain.means[torch.as_tensor(kept)])
    assert edited.assets["hero"].digest != plain.assets["hero"].digest
    assert edited.signature(0.3) != plain.signature(0.3)


def test_a_cleaned_performing_figure_takes_its_rig_rows_along(assets, tmp_path):
    """`clean: true` on a figure that performs (refused before: "clean it before rigging"):
    its floaters go and their rig rows with them, then its edits' (the nose), so the figure
    posed is the uncleaned one posed less those; the frame loses the floaters hanging between
    the camera and the figure."""
    folder = _copy(assets, tmp_path)
    _, n = capture_beside_rigged(folder / "figure.ply", (0.0, 0.9, 0.0))
    hero = {"clips": [{"clip": "walk"}], "look_at": {"joint": "head", "target": [2.0, -3.0, 1.6], "limit": 60}}
    nose = {"op": "delete", "sphere": {"centre": [0.0, 1.66, 0.13], "radius": 0.06}}
    shot = [{"name": "sh010", "frames": 1, "camera": {"position": [0.0, -5.0, 1.2], "look_at": [0.0, 0.0, 0.9]}}]
    worlds, magenta = [], []
    for name, block in (("plain", hero), ("cleaned", {**hero, "clean": True, "edits": [nose]})):
        path = _film(folder, block, shots=shot)
        worlds.append(parse_film(path).world)
        _render(path, folder / name)
        frame = iio.imread(folder / name / "sh010" / "sh010.1001.png").astype(int)
        magenta.append(int(((frame[..., 0] - frame[..., 1] > 60) & (frame[..., 2] - frame[..., 1] > 60)).sum()))
    plain, cleaned = worlds
    a = cleaned.assets["hero"]
    assert a.kept is not None and not a.kept[n:].any() and 0.85 < a.kept[:n].mean() < 0.99
    assert len(a.gaussians) == a.kept.sum() == len(a.performance.rig.joints)
    for t in (0.0, 0.3, 0.7):
        torch.testing.assert_close(cleaned.posed("hero", t).means, plain.posed("hero", t).means[torch.as_tensor(a.kept)])
    assert a.digest != plain.assets["hero"].digest
    assert magenta[0] > 20 and magenta[1] == 0, magenta


def test_errors_name_the_field(assets, tmp_path):
    folder = _copy(assets, tmp_path)
    cases = [
        ({"clips": [{"clip": "run"}]}, "assets.hero.clips[0].clip: no clip 'run'; the rig has: walk (1.00 s), idle"),
        ({"clips": [{"clip": "idle", "start": 1}, {"clip": "walk", "start": 1}]}, "assets.hero.clips[1].start: is not after"),
        ({"clips": [{"clip": "idle", "speed": 0}]}, "assets.hero.clips[0].speed:"),
        ({"clips": [{"clip": "idle", "stride": 1.0}]}, "assets.hero.clips[0].stride: a stride sets the cycle's rate"),
        (_walk(clips=[{"clip": "walk", "speed": 2}]), "assets.hero.clips[0].speed: clip 'walk' follows the walk"),
        ({"clips": "walk"}, "assets.hero.clips: expected a list"),
        ({"clips": [{"clip": "idle", "pace": 1}]}, "assets.hero.clips[0].pace: unknown field"),
        ({"look_at": {"joint": "skull", "target": "camera"}}, "assets.hero.look_at.joint: no joint 'skull'; the rig has: hips"),
        ({"look_at": {"joint": "head", "target": "moon"}}, "assets.hero.look_at.target: expected a point [x, y, z], camera"),
        ({"look_at": {"joint": "head", "target": "hero"}}, "assets.hero.look_at.target: an asset cannot look at itself"),
        ({"look_at": {"joint": "head", "target": "camera", "limit": 270}}, "assets.hero.look_at.limit: expected degrees"),
        ({"ik": {"legs": [["thigh_l", "foot_l", "shin_l"]]}},
         "assets.hero.ik.legs[0]: joint 'shin_l' is not below 'foot_l'"),
        ({"ik": {"legs": [["thigh_l", "shin_l"]]}}, "assets.hero.ik.legs[0]: expected [hip, knee, foot]"),
        ({"ik": {"legs": [["hips", "thigh_l", "foot_l"]]}},
         "assets.hero.ik.legs[0]: 'thigh_l' is not the knee: thigh_l->foot_l is 6.2 times as long as hips->thigh_l"),
        ({"look_at": {"joint": "Head", "target": "camera"}},
         "assets.hero.look_at.joint: no joint 'Head' (did you mean 'head'?); the rig has: hips"),
        ({"ik": {"legs": [["thigh_l", "shin_l", "toe_l"]]}}, "assets.hero.ik.legs[0][2]: no joint 'toe_l'"),
        ({"ik": {"legs": LEGS, "ground": "sky"}}, "assets.hero.ik.ground: expected the name of an asset listed before"),
        ({"skinning": "smooth", "clips": [{"clip": "idle"}]}, "assets.hero.skinning: expected lbs or dqs"),
        ({"clips": [{"clip": "idle", "root_motion": "bake"}]}, "assets.hero.clips[0].root_motion: expected lock or keep"),
        ({"clips": [{"clip": "idle", "sync": True}]}, "assets.hero.clips[0].sync: the first clip has no clip before"),
        ({"clips": [{"clip": "idle"}, {"clip": "walk", "start": 1, "sync": True, "offset": 0.5}]},
         "assets.hero.clips[1].offset: a play that syncs starts at the phase of the one before"),
        ({"clips": [{"clip": "idle", "offset": -1}]}, "assets.hero.clips[0].offset:"),
    ]
    for hero, message in cases:
        with pytest.raises(SplatfilmError) as e:
            parse_film(_film(folder, hero))
        assert message in str(e.value), (hero, str(e.value))
        assert str(e.value).startswith(str(folder / "film.yaml"))
    # An asset without a rig.
    save_gaussians(folder / "rock.ply", _floor(size=0.3))
    path = _film(folder, {"file": "rock.ply", "clips": [{"clip": "walk"}]})
    with pytest.raises(SplatfilmError, match=r"assets\.hero\.clips: .*rock\.ply: has no rig \(rock\.rig\.npz is not beside "
                                             r"it\).*clips, ik and look_at need a rigged asset"):
        parse_film(path)
    # IK without a ground to stand on.
    path = _film(folder, {"on_ground": None, "ik": {"legs": LEGS}})
    data = yaml.safe_load(path.read_text())
    del data["assets"]["hero"]["on_ground"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SplatfilmError, match=r"assets\.hero\.ik\.ground: missing"):
        parse_film(path)


# ---- rendering ----------------------------------------------------------------------------------


def _render(path: Path, out: Path):
    return render_film(path, out, RenderOptions(backend="cpu"), progress=False, log=lambda *_: None)


def test_a_walking_figure_renders_and_clip_edits_rerender_only_their_frames(assets, tmp_path):
    folder = _copy(assets, tmp_path)
    shot = [{"name": "sh010", "frames": 12, "camera": {"position": [0.0, -4.5, 1.0], "look_at": [0.0, 0.0, 0.8]},
             "move": {"type": "pan", "degrees": 0}}]
    hero = _walk(walk={"points": [[-0.6, 0.0, 0.0], [0.6, 0.0, 0.0]], "speed": 0.8, "start": 0.0},
                 clips=[{"clip": "walk", "start": 0.0}, {"clip": "idle", "start": 0.3, "crossfade": 0.1}],
                 look_at={"joint": "head", "target": "camera", "limit": 70})
    path = _film(folder, hero, shots=shot)
    out = folder / "out"
    res = _render(path, out)
    assert res.rendered == {"sh010": 12}
    first = iio.imread(out / "sh010" / "sh010.1001.png")
    assert first.shape == (48, 64, 3) and first.std() > 10
    frames = {p.name: p.read_bytes() for p in (out / "sh010").glob("*.png")}

    # Same script: nothing renders. The idle starts later (0.4 s, frame 10): frames before
    # 0.3 s (1001-1008) are untouched, the rest render again.
    assert _render(path, out).rendered == {"sh010": 0}
    data = yaml.safe_load(path.read_text())
    data["assets"]["hero"]["clips"][1]["start"] = 0.4
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    res = _render(path, out)
    assert res.rendered == {"sh010": 12 - 8}
    again = {p.name: p.read_bytes() for p in (out / "sh010").glob("*.png")}
    assert [n for n in sorted(frames) if frames[n] != again[n]] == [f"sh010.{f}.png" for f in range(1009, 1013)]
    # The look-at follows the shot's camera: moving the camera changes every frame (the pose too).
    film = parse_film(path)
    assert film.world.needs_camera(["hero"]) and not film.world.needs_camera(["floor"])


def test_the_bundled_explorers_boots_stand_on_the_floor_not_in_it(tmp_path):
    """The bundled walk clip pitches the foot 15 degrees toe-down at mid-stance; IK put only the
    ankle at its height, and the boots went 5 cm through the floor (median -27 mm over the
    walk). A planted foot now stands flat: its Gaussians' lowest stay within a few mm, and a
    swinging one's toe stays above the floor."""
    from helpers import SCENES

    script = {"title": "walk", "fps": 24, "resolution": [64, 36],
              "assets": {"set": {"file": str(SCENES / "set" / "fitted" / "set.ply")},
                         "hero": {"file": str(SCENES / "character" / "fitted" / "hero.ply"), "on_ground": "set",
                                  "scale": 1.6, "walk": {"points": [[-1.5, -1.9, 0], [-0.45, -0.6, 0]], "speed": 0.6},
                                  "clips": [{"clip": "walk", "start": 0.0}], "ik": {"legs": LEGS}}},
              "shots": [{"name": "sh010", "duration": 1, "camera": {"position": [0.6, -2.6, 0.7], "look_at": [-1, -1, 0.4]}}]}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    world = parse_film(tmp_path / "film.yaml").world
    hero = world.assets["hero"]
    rig, plane = hero.performance.rig, hero.performance.ik.ground
    bound = rig.joints[np.arange(len(rig.joints)), rig.weights.argmax(1)]
    opaque = torch.sigmoid(hero.gaussians.opacities).numpy() > 0.5
    boots = np.isin(bound, [rig.joint_index("foot_l"), rig.joint_index("foot_r")]) & opaque
    lowest = []
    for t in np.arange(0.3, 2.0, 1 / 24):
        means = hero.world_transform(t).transform_gaussians(world.posed("hero", t)).means.numpy().astype(float)
        lowest.append(np.percentile(plane.signed_distance(means[boots]), 0.5))
    lowest = np.array(lowest)
    assert np.median(lowest) > -0.01 and lowest.min() > -0.025, np.round(lowest * 1000, 1)
    # The swinging foot's toe (the clip pitches it 35 degrees toe-down mid-swing, 5 cm up)
    # went 16 mm through the floor; it now clears it: no boot goes lower than a flat one
    # standing (the right boot's splats sit 7.4 mm below the figure's base at rest).
    assert lowest.min() > -0.0085, np.round(lowest * 1000, 1)


def _legs_against_the_clip(world, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far the pelvis stands below where the clips alone put it [T] and how far each foot
    joint stands above it [T,L] (metres, along the ground's normal), with feet on the ground."""
    from splatfilm.scene.skeleton import global_transforms

    hero = world.assets["hero"]
    perf = hero.performance
    joints = [perf.ik.pelvis] + [leg[2] for leg in perf.ik.legs]
    drop, raised = [], []
    for t in times:
        T = hero.world_transform(float(t))
        ik = perf.ik.ground.signed_distance(T.apply(world.joint_globals("hero", float(t), None)[joints, :3, 3]))
        clip = perf.ik.ground.signed_distance(T.apply(global_transforms(perf.rig, perf.local_pose(float(t)).matrices())[joints, :3, 3]))
        drop.append(clip[0] - ik[0])
        raised.append(ik[1:] - clip[1:])
    return np.array(drop), np.array(raised)


def _bundled_explorer(folder: Path):
    """The world of the set film's explorer (his walk, clips and IK) on the fitted set, without the crate."""
    from helpers import SCENES

    hero = yaml.safe_load((SCENES / "set" / "film.yaml").read_text())["assets"]["hero"]
    hero = {k: hero[k] for k in ("on_ground", "scale", "walk", "clips", "ik")}
    hero["file"] = str(SCENES / "character" / "fitted" / "hero.ply")
    script = {"title": "walk", "fps": 24, "resolution": [64, 36],
              "assets": {"set": {"file": str(SCENES / "set" / "fitted" / "set.ply")}, "hero": hero},
              "shots": [{"name": "sh010", "duration": 1, "camera": {"position": [0.6, -2.6, 0.7], "look_at": [-1, -1, 0.4]}}]}
    (folder / "film.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    return parse_film(folder / "film.yaml").world


def test_the_bundled_explorers_walk_start_does_not_crouch(tmp_path):
    """The demo's hero crossfades from his idle into the walk before he sets off: the blend
    spreads both planted feet a stride apart, the plants let both go at once (0.27 s), and
    each step rose by STEP_HEIGHT of the way to a clip foot swinging on (up to 19 cm), lifting
    both feet 3 to 5 cm over the clip's at once, the legs shortened to 78%: a crouch. A let-go
    foot now closes only the way its plant held it off the clip's, within the clip's own lift;
    the pelvis stays within 1 cm of the clip's."""
    drop, raised = _legs_against_the_clip(_bundled_explorer(tmp_path), np.arange(0, 1.5, 1 / 48))
    assert drop.max() < 0.01, np.round(drop * 1000, 1)
    # A planted foot stood flat against a clip pitching it toe-down sits up to 13 mm above
    # the clip's (its sole on the floor): not a step.
    assert raised.max() < 0.02, np.round(raised * 1000, 1)


def test_the_bundled_explorers_walk_into_his_idle_does_not_dip(tmp_path):
    """Where his walk crossfades into the idle (2.9 s, 0.4 s), the trailing foot stayed planted
    while the body walked on over its nearly straight leg, until the clip had carried it
    RELEASE_RADIUS away: the pelvis had dropped 16 mm below the clip's by then (mid-walk
    plants dipped it 6 to 10 mm the same way), and it was let go with the leading foot, both
    rising 14 to 17 mm over the clip's at once. A planted foot is now let go as soon as holding
    it would lower the hips 1% of the leg (3 mm) below where the clips' own foot has them."""
    drop, raised = _legs_against_the_clip(_bundled_explorer(tmp_path), np.arange(0.5, 3.5, 1 / 96))
    assert drop.max() < 0.005, np.round(drop * 1000, 1)
    # The trailing foot steps in first, low; the leading one, set down while the crossfade
    # still carries it on, follows (the idle's legs are straight: held, either would dip the
    # hips). A planted foot standing flat over a clip's pitched one stands up to 5 mm over it.
    assert raised.min(axis=1).max() < 0.008, np.round(raised * 1000, 1)


def test_the_bundled_explorers_walk_into_his_idle_keeps_a_foot_down_and_ends_on_the_idles_spots(tmp_path):
    """Crossfading from his walk into the idle (2.9 s, 0.4 s), both feet were off the floor at
    once: the leading foot was planted while the blend still carried it and let go 37 ms later,
    the trailing one stepping meanwhile, so for 0.19 s neither boot stood on the floor (13 to
    16 mm up); and the trailing foot, landing before the crossfade ended, stood on in the idle
    15 mm from the idle's own spot. Now one boot is always down (the trailing one peels its
    heel while it waits for the leading one), and each foot lands where the idle stands it."""
    from splatfilm.scene.skeleton import global_transforms
    from splatfilm.scene.skinning import pose_gaussians

    world = _bundled_explorer(tmp_path)
    hero = world.assets["hero"]
    perf = hero.performance
    rig, plane = perf.rig, perf.ik.ground
    feet = [leg[2] for leg in perf.ik.legs]
    bound = rig.joints[np.arange(len(rig.joints)), rig.weights.argmax(1)]
    opaque = torch.sigmoid(hero.gaussians.opacities).numpy() > 0.5
    # Skinning moves each Gaussian by its own joints alone: the boots' (the opaque Gaussians each
    # foot binds), posed by themselves, land where `world.posed` puts them, in a tenth of the time.
    boots = [np.flatnonzero((bound == f) & opaque) for f in feet]
    kept = np.concatenate(boots)
    boots_rig, boots_g = rig.select_gaussians(kept), hero.gaussians.select(torch.from_numpy(kept))
    lowest = []
    for t in np.arange(2.8, 3.6, 1 / 96):
        T = hero.world_transform(float(t))
        posed = pose_gaussians(boots_g, boots_rig, world.joint_globals("hero", float(t), None), perf.method)
        means = T.transform_gaussians(posed).means.numpy().astype(float)
        lowest.append([np.percentile(plane.signed_distance(boot), 0.5)
                       - perf.ik.soles[i][1] * T.scale / hero.local.scale
                       for i, boot in enumerate(np.split(means, [len(boots[0])]))])
    lowest = np.array(lowest)
    assert lowest.min(axis=1).max() < 0.006, np.round(lowest * 1000, 1)  # a boot within 6 mm of standing
    t = 3.8
    T = hero.world_transform(t)
    ik = T.apply(world.joint_globals("hero", t, None)[feet, :3, 3])[:, :2]
    clip = T.apply(global_transforms(rig, perf.local_pose(t).matrices())[feet, :3, 3])[:, :2]
    assert np.linalg.norm(ik - clip, axis=1).max() < 0.005, np.round((ik - clip) * 1000, 1)


def test_the_bundled_explorers_heel_peel_eases_in_and_out(tmp_path):
    """A foot whose leg could reach it only by lowering the pelvis peels its heel about its
    toe. Pivoted onto the floor from wherever the clips held it, its boot jumped there the step
    the peel began and back the step it ended: mid-walk the trailing foot (1.64 s) moved 7 mm
    more in one 1/240 s step than in the next, and the foot kept down through his crossfade
    into the idle 18 mm (3.10 s). Now a peel begins from the foot as it stands and comes down
    onto the floor over its first HEEL_REST degrees: the foot joints' steps change by under
    5 mm from one to the next (the walk's own: 2 mm)."""
    world = _bundled_explorer(tmp_path)
    hero = world.assets["hero"]
    feet = [leg[2] for leg in hero.performance.ik.legs]
    for start in (1.6, 3.05):
        times = np.arange(start, start + 0.08, 1 / 240)
        at = np.array([hero.world_transform(float(t)).apply(world.joint_globals("hero", float(t), None)[feet, :3, 3])
                       for t in times])  # [T,2,3], world metres
        kick = np.linalg.norm(at[2:] - 2 * at[1:-1] + at[:-2], axis=2)
        assert kick.max() < 0.005, (start, np.round(kick.max(axis=1) * 1000, 1))
    # And the peel is there: into the idle the trailing foot's heel is up (its joint 10 to 35 mm
    # over the clip's) while the hips stay within 5 mm of the clip's; held flat instead
    # (HEEL_OFF 0) the pelvis dropped 23 mm.
    drop, raised = _legs_against_the_clip(world, np.arange(3.05, 3.13, 1 / 240))
    assert drop.max() < 0.005 and raised.max() > 0.02, (np.round(drop * 1000, 1), np.round(raised * 1000, 1))


def test_the_bundled_explorers_feet_do_not_slide_near_the_floor(tmp_path):
    """A foot near the floor does not slide along it: one being put down comes down onto its
    spot, and one lifting off rises before it travels. Set off as his walk began, the right
    foot went 24 mm along the floor in the frame it left (3 mm up); put down by the crossfade
    into the idle while still swinging on, the left one slid 53 and 26 mm a frame 3 to 6 mm
    over the floor before it stood. Now no foot joint within 5 mm of its standing height (its
    lowest) at either end of a 1/24 s frame moves more than 5 mm along the ground in it."""
    world = _bundled_explorer(tmp_path)
    hero = world.assets["hero"]
    plane = hero.performance.ik.ground
    feet = [leg[2] for leg in hero.performance.ik.legs]
    for start, end in ((0.0, 1.0), (2.7, 4.0)):  # the walk setting off, and into the idle
        times = np.arange(round(start * 24), round(end * 24) + 1) / 24
        at = np.array([hero.world_transform(float(t)).apply(world.joint_globals("hero", float(t), None)[feet, :3, 3])
                       for t in times])  # [T,2,3], world metres
        up = plane.signed_distance(at)
        step = np.diff(at, axis=0)
        along = np.linalg.norm(step - (step @ plane.normal)[..., None] * plane.normal, axis=-1)  # [T-1,2]
        near = np.minimum(up[1:], up[:-1]) - up.min(axis=0) <= 0.005
        assert (along[near] <= 0.005).all(), (start, np.round(np.where(near, along, 0).max(axis=0) * 1000, 1))
