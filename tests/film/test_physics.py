"""Physics-driven motion: dropped props come to rest on the floor without passing through it,
thrown ones land further along, knocked-over ones settle on a face; the set's ground plane or
mesh is the collider; trajectories are cached; scripts are read with errors naming the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import REPO, splats

from splatfilm.film import physics
from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.assets.ground import GroundPlane, write_ground
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.assets.meshing import MeshSettings
from splatfilm.film.physics import (
    BakedMotion,
    PhysicsSpec,
    bake_physics,
    body_points,
    body_shape,
    floor_collider,
    parse_physics,
    physics_motion,
    scene_collider,
)
from splatfilm.film.world import Asset, World
from splatfilm.scene.transforms import Similarity, euler_xyz_rotation, yaw_rotation
from splatfilm.yamlfields import At
from splatfilm.io.digest import file_digest

FPS = 24
TOL = 0.003  # metres: "a few mm"


def cube_points(side: float = 0.2, count: int = 9) -> np.ndarray:
    """Points on a cube's surface in its canonical frame: base on z = 0, centred on the z axis."""
    g = np.linspace(-side / 2, side / 2, count)
    pts = np.array([[x, y, z] for x in g for y in g for z in g])
    pts = pts[np.abs(pts).max(axis=1) > side / 2 - 1e-9]
    return pts + [0, 0, side / 2]


def prop(side: float = 0.2) -> Asset:
    return Asset("cube", splats(cube_points(side), size=0.01))


def lowest(motion: BakedMotion, pts: np.ndarray, times) -> np.ndarray:
    """The lowest z [T] of the body's points at each time."""
    return np.array([motion.at(t).apply(pts)[:, 2].min() for t in times])


def fine_times(m: BakedMotion) -> np.ndarray:
    return np.linspace(m.start, m.end, int((m.end - m.start) * 240) + 1)


def test_dropped_prop_comes_to_rest_on_the_floor():
    a = prop()
    spec = PhysicsSpec(position=[0.3, -0.2, 1.0], collider="ground", duration=3.0, start=1.0)
    m = physics_motion(spec, a, None, None)
    pts = body_points(a.gaussians)
    low = lowest(m, pts, fine_times(m))
    assert low.min() >= -TOL  # never through the floor
    assert abs(low[-1]) < TOL and abs(m.positions[-1, 2]) < TOL  # resting, base on the floor
    assert np.linalg.norm(m.positions[-1] - m.positions[-physics.STEP_HZ // 2]) < 1e-3  # still for the last half second
    assert m.notes == []  # the rest check finds nothing wrong
    # Before the start it waits at the start pose; after the end it holds the last one.
    assert m.at(0.0).translation == pytest.approx([0.3, -0.2, 1.0])
    assert np.allclose(m.at(99.0).matrix(), m.at(m.end).matrix())
    # It fell freely first: z = 1 - g t^2 / 2 at 0.25 s after the start.
    assert m.at(1.25).translation[2] == pytest.approx(1.0 - 0.5 * 9.81 * 0.25**2, abs=0.01)
    assert m.times[1] - m.times[0] == pytest.approx(1 / physics.STEP_HZ)  # every step recorded


def test_rest_check_names_bodies_that_fall_through_keep_moving_or_float_over_the_set():
    a = prop()
    # A mesh collider: a 1 m square shelf at z = 0.5 and nothing else.
    shelf = physics.Collider(vertices=np.array([[-0.5, -0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, 0.5], [-0.5, 0.5, 0.5]]),
                             triangles=np.array([[0, 1, 2], [0, 2, 3]]))
    pts = body_points(a.gaussians)
    # Not centred on the shelf's diagonal: a box landing square on a mesh's internal edge slides
    # along it (9 cm here), a known limit of Bullet's triangle-mesh contacts.
    on_shelf = bake_physics([physics.Body(PhysicsSpec(position=[0.25, 0.1, 1.0], collider="mesh", duration=2.0), pts, shelf)])[0]
    assert on_shelf.positions[-1, 2] == pytest.approx(0.5, abs=0.01) and on_shelf.notes == []
    off = bake_physics([physics.Body(PhysicsSpec(position=[2.0, 0, 1.0], collider="mesh", duration=2.0), pts, shelf)])[0]
    assert len(off.notes) == 1 and off.notes[0].startswith("has nothing under it at the end")
    short = bake_physics([physics.Body(PhysicsSpec(position=[0, 0, 3.0], collider="mesh", duration=0.3), pts, shelf)])[0]
    assert len(short.notes) == 1 and short.notes[0].startswith("is still moving")
    assert BakedMotion.from_dict(short.to_dict()).notes == short.notes  # cached with the motion
    # Against the set as it looks: a shelf the set shows (Gaussians at z = 0.5) holds it; a set
    # whose only surface is the floor means the collider holds it in the air; one whose floor
    # is above it means it sank.
    u = np.linspace(-1, 1, 21)
    floor = lambda z: np.array([[x, y, z] for x in u for y in u])  # noqa: E731
    assert physics.surface_notes(on_shelf, pts, np.r_[floor(0.0), floor(0.5)]) == []
    floating = physics.surface_notes(on_shelf, pts, floor(0.0))
    assert len(floating) == 1 and floating[0].startswith("comes to rest 0.50 m above the set's surface")
    sunk = physics.surface_notes(on_shelf, pts, floor(0.9))
    assert len(sunk) == 1 and "below every surface" in sunk[0]
    stray = np.r_[floor(0.0), [[0.0, 0.0, 0.45]]]  # one floater under it is not a surface
    assert len(physics.surface_notes(on_shelf, pts, stray)) == 1


def test_thrown_prop_lands_further_along():
    a = prop()
    dropped = physics_motion(PhysicsSpec(position=[0, 0, 1.0], collider="ground", duration=3.0), a, None, None)
    thrown = physics_motion(PhysicsSpec(position=[0, 0, 1.0], velocity=[2.0, 0, 0], collider="ground", duration=3.0),
                            a, None, None)
    assert thrown.positions[-1, 0] > dropped.positions[-1, 0] + 0.5
    assert abs(thrown.positions[-1, 1]) < 0.25 * thrown.positions[-1, 0]
    assert lowest(thrown, body_points(a.gaussians), fine_times(thrown)).min() >= -TOL


def test_a_ball_bounces_as_its_restitution_says_and_a_box_does_not_sink():
    # Bullet's default 2 cm contact margin caught falling bodies before they touched at our short
    # sub-steps, so nothing bounced: a ball with restitution 0.6 dropped 0.9 m rose 1 cm.
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(400, 3))
    sphere = 0.1 * sphere / np.linalg.norm(sphere, axis=1, keepdims=True) + [0, 0, 0.1]
    ball = Asset("ball", splats(sphere, size=0.005))
    m = physics_motion(PhysicsSpec(position=[0, 0, 0.9], restitution=0.6, collider="ground", duration=1.5, shape="sphere"),
                       ball, None, None)
    z = m.positions[:, 2]
    rest = z[-1]  # the origin's height once it lies on the floor
    first = int(np.argmax(z < rest + 0.01))  # the first landing
    rebound = z[first:].max() - rest
    drop = 0.9 - rest
    assert 0.6 * 0.36 * drop < rebound < 1.4 * 0.36 * drop  # e^2 h
    dropped = physics_motion(PhysicsSpec(position=[0, 0, 1.0], collider="ground", duration=1.0, restitution=0.0),
                             prop(), None, None)
    assert lowest(dropped, body_points(prop().gaussians), fine_times(dropped)).min() > -0.005


def test_knocked_over_box_settles_on_a_face():
    a = prop()
    spec = PhysicsSpec(position=[0, 0, 0.3], rotation=euler_xyz_rotation([35, 0, 0]), angular_velocity=[4.0, 0, 0],
                       collider="ground", duration=3.0, shape="box")
    m = physics_motion(spec, a, None, None)
    R = m.at(m.end).rotation
    assert np.abs(R[2]).max() > 0.999  # some face of the cube points straight down
    assert lowest(m, body_points(a.gaussians), [m.end])[0] == pytest.approx(0.0, abs=TOL)


def test_ground_plane_from_the_sidecar_and_the_set_placement(tmp_path):
    scene = tmp_path / "set.ply"
    save_gaussians(scene, splats(np.random.default_rng(0).uniform(-1, 1, (100, 3)), size=0.01))
    write_ground(scene, GroundPlane(np.array([0.0, 0.0, 1.0]), -0.3))  # z = 0.3 in the set's frame
    set_asset = Asset("set", Gaussians.empty(), placement=Similarity(np.eye(3), [0, 0, 0.2]), source=str(scene))
    collider = scene_collider("ground", scene, set_asset.world_transform(0.0))
    assert collider.plane.offset == pytest.approx(-0.5)
    m = physics_motion(PhysicsSpec(position=[0, 0, 1.5], collider="ground", duration=2.0), prop(), set_asset, None)
    assert m.positions[-1, 2] == pytest.approx(0.5, abs=TOL)
    # No ground recorded: estimated from the set's Gaussians (as a film's on_ground does); a
    # set with no floor-like plane is a clear error, not a silent floor at z = 0.
    (tmp_path / "set.json").unlink()
    with pytest.raises(SplatfilmError, match="no plane within 20 degrees"):
        scene_collider("ground", scene)
    floor = tmp_path / "floor.ply"
    u = np.arange(-1, 1, 0.05)
    a, b = np.meshgrid(u, u)
    save_gaussians(floor, splats(np.c_[a.ravel(), b.ravel(), np.full(a.size, 0.25)], size=0.01))
    assert scene_collider("ground", floor).plane.offset == pytest.approx(-0.25, abs=0.01)


def test_mesh_collider(tmp_path):
    """A set that is a floor at z = 0.25: the prop comes to rest on its collision mesh, which
    lies on the floor, and so within 5 mm of it. (Fused from the renderer's expected depth,
    which sits about a footprint sigma of the surface Gaussians in front of them at oblique
    views, the mesh lay 3 cm above the floor and the prop rested 4 cm up.)"""
    u = np.arange(-1, 1, 0.03) + 0.015
    a, b = np.meshgrid(u, u)
    g = splats(np.c_[a.ravel(), b.ravel(), np.full(a.size, 0.25)], size=0.02)
    g = Gaussians(g.means, g.quats, g.scales + torch.log(torch.tensor([1.0, 1.0, 0.1])), g.opacities, g.sh0, g.shN)
    scene = tmp_path / "floor.ply"
    save_gaussians(scene, g)
    settings = MeshSettings(voxel=0.04, views=12, width=160, height=120)
    collider = scene_collider("mesh", scene, mesh_settings=settings, progress=False)
    assert (tmp_path / "floor.collision.obj").exists()
    mesh_floor = float(np.median(collider.vertices[:, 2]))
    assert mesh_floor == pytest.approx(0.25, abs=0.002)
    # The set's floor plane lies under the mesh, closing the holes no camera saw.
    assert collider.plane is not None and collider.plane.offset == pytest.approx(-0.25, abs=0.01)
    set_asset = Asset("set", g, source=str(scene))
    # Dropped 35 cm: from a metre, a box landing square on the mesh can be thrown onto its side
    # by Bullet's contacts with the triangles' edges, and rocks past the end of the simulation.
    m = physics_motion(PhysicsSpec(position=[0.1, 0.1, 0.6], collider="mesh", duration=2.0), prop(), set_asset,
                       None, mesh_settings=settings, progress=False)
    low = lowest(m, body_points(prop().gaussians), fine_times(m))
    assert low[-1] == pytest.approx(0.25, abs=0.005)
    assert low.min() >= low[-1] - 0.01  # it did not sink through the mesh on impact
    assert np.linalg.norm(m.positions[-1] - m.positions[-physics.STEP_HZ // 2]) < 1e-3


def test_cache_returns_the_same_trajectory(tmp_path, monkeypatch):
    pts = cube_points()
    spec = PhysicsSpec(position=[0, 0, 0.8], velocity=[1.0, 0.5, 0], angular_velocity=[0, 0, 3.0], collider="ground",
                       duration=1.5)
    first = bake_physics([physics.Body(spec, pts, floor_collider())], tmp_path)[0]
    files = list(tmp_path.glob("physics-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["key"]

    def fail(*a, **k):
        raise AssertionError("simulated again")

    monkeypatch.setattr(physics, "simulate_world", fail)
    again = bake_physics([physics.Body(spec, pts, floor_collider())], tmp_path)[0]
    for name in ("times", "positions", "quats"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    # Any other input is another simulation.
    with pytest.raises(AssertionError, match="simulated again"):
        bake_physics([physics.Body(PhysicsSpec(position=[0, 0, 0.8], collider="ground", duration=1.5, mass=2.0), pts, floor_collider())], tmp_path)[0]
    with pytest.raises(AssertionError, match="simulated again"):
        bake_physics([physics.Body(spec, pts, floor_collider(0.1))], tmp_path)[0]


def test_a_machine_without_pybullet_renders_the_bake(tmp_path, monkeypatch):
    pts = cube_points()
    spec = PhysicsSpec(position=[0, 0, 0.8], velocity=[1.0, 0.5, 0], collider="ground", duration=1.0)
    first = bake_physics([physics.Body(spec, pts, floor_collider())], tmp_path)[0]
    (record,) = tmp_path.glob("physics-*.json")
    assert json.loads(record.read_text())["pybullet"] == physics.simulator_version()

    monkeypatch.setattr(physics, "simulator_version", lambda: None)  # a render node: no pybullet
    again = bake_physics([physics.Body(spec, pts, floor_collider())], tmp_path)[0]
    assert np.array_equal(first.positions, again.positions) and np.array_equal(first.quats, again.quats)
    with pytest.raises(SplatfilmError, match="needs pybullet .* does not hold it") as e:
        bake_physics([physics.Body(spec, pts, floor_collider(0.1))], tmp_path)[0]  # other inputs: no bake to read
    assert "\n" not in str(e.value)

    # Another pybullet version simulates again rather than trusting the bake.
    monkeypatch.setattr(physics, "simulator_version", lambda: -1)
    monkeypatch.setattr(physics, "simulate_world", lambda *a: (_ for _ in ()).throw(AssertionError("simulated again")))
    with pytest.raises(AssertionError, match="simulated again"):
        bake_physics([physics.Body(spec, pts, floor_collider())], tmp_path)[0]


def test_importing_pybullet_prints_nothing():
    # pybullet's C extension prints a build-time banner to stderr on import; a command's stderr
    # holds only its one-line error. A fresh process: this one may have imported pybullet.
    pytest.importorskip("pybullet")
    code = "from splatfilm.film import physics; assert physics.simulator_version() is not None"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr


def test_simulation_is_deterministic():
    pts = cube_points()
    spec = PhysicsSpec(position=[0, 0, 0.8], velocity=[1.0, 0, 0], angular_velocity=[2.0, 1.0, 0], collider="ground",
                       duration=1.0)
    a = bake_physics([physics.Body(spec, pts, floor_collider())])[0]
    b = bake_physics([physics.Body(spec, pts, floor_collider())])[0]
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.quats, b.quats)


def test_baked_motion_drives_an_asset():
    quarter_turn = [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]  # 90 degrees about z
    m = BakedMotion([0.0, 1.0], [[0, 0, 0], [2.0, 0, 0]], [[1.0, 0, 0, 0], quarter_turn], scale=2.0)
    mid = m.at(0.5)
    assert mid.translation == pytest.approx([1.0, 0, 0])
    assert mid.rotation == pytest.approx(yaw_rotation(45.0))
    assert mid.scale == 2.0
    world = World({"cube": Asset("cube", splats(cube_points(), size=0.01), motion=m)})
    assert world.compose(1.0).means[:, 0].mean().item() == pytest.approx(2.0, abs=1e-5)
    assert world.signature(0.25) != world.signature(0.75)
    back = BakedMotion.from_dict(json.loads(json.dumps(m.to_dict())))
    assert np.allclose(back.at(0.3).matrix(), m.at(0.3).matrix())


def test_body_shapes():
    pts = cube_points(0.2)
    hull = body_shape(pts, "hull", scale=2.0)
    assert hull.com == pytest.approx([0, 0, 0.2]) and len(hull.vertices) == 8
    box = body_shape(pts, "box")
    assert box.half_extents == pytest.approx([0.1, 0.1, 0.1])
    # A sphere around every point, as the docs say: through the cube's corners, not its faces.
    assert body_shape(pts, "sphere").radius == pytest.approx(0.1 * np.sqrt(3))
    card = body_shape(np.c_[np.random.default_rng(0).uniform(-1, 1, (50, 2)), np.zeros(50)], "hull")
    assert card.kind == "box" and card.half_extents[2] > 0  # flat: a thin box, not a Qhull error


def test_parse_physics_defaults_and_fields():
    base = Similarity(yaw_rotation(30.0), [1.0, 2.0, 0.0], 1.5)
    spec = parse_physics({}, At("film.yaml", "assets.cup.physics"), base)
    assert spec.position == pytest.approx([1, 2, 0]) and spec.rotation == pytest.approx(base.rotation)
    assert spec.scale == 1.5 and spec.collider == "mesh" and spec.shape == "hull" and spec.duration == 4.0
    spec = parse_physics({"position": [0, 0, 1], "velocity": [1, 0, 0], "angular_velocity": [0, 0, 180],
                          "orientation": [0, 0, 90], "mass": 2, "friction": 0.3, "restitution": 0.5, "start": 1.5,
                          "duration": 2, "collider": "ground", "shape": "box", "rolling_friction": 0.01},
                         At("f.yaml"), base)
    assert spec.angular_velocity == pytest.approx([0, 0, np.pi])  # degrees/s in, rad/s kept
    assert spec.rotation == pytest.approx(yaw_rotation(90.0))
    assert (spec.mass, spec.friction, spec.restitution, spec.start, spec.duration) == (2, 0.3, 0.5, 1.5, 2)
    assert parse_physics({"drop_from": [0, 0, 2]}, At("f.yaml")).position == pytest.approx([0, 0, 2])


@pytest.mark.parametrize("value, message", [
    ({"mass": 0}, r"f\.yaml: assets\.cup\.physics\.mass: must be > 0"),
    ({"masss": 1}, r"assets\.cup\.physics\.masss: unknown field"),
    ({"restitution": 2}, r"physics\.restitution: must be between 0 and 1"),
    ({"collider": "walls"}, r"physics\.collider: expected one of mesh, ground"),
    ({"shape": "cone"}, r"physics\.shape: expected one of hull, box, sphere"),
    ({"drop_from": [0, 0, 1], "velocity": [1, 0, 0]}, r"physics\.drop_from: a drop starts at rest"),
    ({"drop_from": [0, 0, 1], "position": [0, 0, 1]}, r"physics: give `drop_from`"),
    ({"velocity": [1, 0]}, r"physics\.velocity: expected \[x, y, z\]"),
    ({"duration": 1000}, r"physics\.duration: at most 600 s"),
    ([1, 2], r"assets\.cup\.physics: expected a mapping"),
])
def test_parse_physics_errors_name_the_field(value, message):
    with pytest.raises(SplatfilmError, match=message):
        parse_physics(value, At("f.yaml", "assets.cup.physics"))


def test_mesh_collider_is_the_set_as_the_film_shows_it(tmp_path):
    """A set edited in the film (here: a post deleted) collides as edited, not as its file."""
    u = np.arange(-1, 1, 0.03) + 0.015
    a, b = np.meshgrid(u, u)
    floor = np.c_[a.ravel(), b.ravel(), np.zeros(a.size)]
    z = np.arange(0.02, 0.6, 0.03)
    post = np.array([[x, y, h] for x in (-0.06, 0.0, 0.06) for y in (-0.06, 0.0, 0.06) for h in z])
    g = splats(np.r_[floor, post], size=0.02)
    scene = tmp_path / "set.ply"
    save_gaussians(scene, g)
    shown = g.select(torch.arange(len(floor)))  # the film deleted the post
    settings = MeshSettings(voxel=0.04, views=12, width=96, height=72)
    spec = PhysicsSpec(position=[0.0, 0.0, 1.0], collider="mesh", duration=2.0)
    pts = body_points(prop().gaussians)
    as_file = physics_motion(spec, prop(), Asset("set", g, source=str(scene), digest=file_digest(scene)), None,
                             mesh_settings=settings, progress=False)
    edited = physics_motion(spec, prop(), Asset("set", shown, source=str(scene), digest="edited"), None,
                            mesh_settings=settings, progress=False)
    # On the post, or knocked off it: pushed aside further than the edited set's 5 cm (here 8.6 cm,
    # leaning on the post).
    assert lowest(as_file, pts, [as_file.end])[0] > 0.4 or abs(as_file.positions[-1, 0]) > 0.06
    assert lowest(edited, pts, [edited.end])[0] < 0.1  # nothing there: on the floor
    assert abs(edited.positions[-1, 0]) < 0.05


def _platform_collider(monkeypatch, top: float, half: float = 0.5):
    """The set's collider made a box `top` m high, 2 `half` m square, on the floor z = 0 (a
    stand-in for meshing): (its ground plane, corners [8,3], triangles [12,3])."""
    box = np.array([[x, y, z] for z in (0.0, top) for y in (-half, half) for x in (-half, half)])
    faces = np.array([[4, 5, 7], [4, 7, 6], [0, 2, 3], [0, 3, 1], [0, 1, 5], [0, 5, 4],
                      [2, 6, 7], [2, 7, 3], [0, 4, 6], [0, 6, 2], [1, 3, 7], [1, 7, 5]])
    plane = GroundPlane(np.array([0.0, 0.0, 1.0]), 0.0)
    monkeypatch.setattr(physics, "scene_collider",
                        lambda *a, **k: physics.Collider(plane=plane, vertices=box, triangles=faces))
    return plane, box, faces


def test_a_bodys_contact_shadow_is_laid_on_the_mesh_it_collides_with(monkeypatch):
    """physics_motion gives the body's contact shadow its collider's mesh (film.shadow), so the
    shadow lies where the body rests: on a platform 0.4 m up that the set's centres (a floor
    alone) do not show."""
    from splatfilm.film.shadow import ContactShadow, set_surface

    top = 0.4
    plane, box, faces = _platform_collider(monkeypatch, top)
    u = np.arange(-1, 1, 0.05)
    a, b = np.meshgrid(u, u)
    floor = splats(np.c_[a.ravel(), b.ravel(), np.zeros(a.size)])
    set_asset = Asset("set", floor, source="set.ply")
    body = prop()
    body.shadow = ContactShadow(plane, 0.07, surface=set_surface(floor, Similarity()))
    m = physics_motion(PhysicsSpec(position=[0.0, 0.0, 0.6], collider="mesh", duration=1.5), body, set_asset, None,
                       progress=False)
    assert body.shadow.mesh is not None and len(body.shadow.mesh) == len(faces)
    body.motion = m
    world = World({"cube": body})
    assert lowest(m, body_points(body.gaussians), [m.end])[0] == pytest.approx(top, abs=TOL)
    assert world.shadow_surface("cube", m.end) == pytest.approx(top, abs=1e-6)
    patch = world.shadow_patch("cube", m.end)
    assert patch is not None and np.allclose(patch.means[:, 2].numpy(), top + 0.01, atol=1e-4)


def test_a_body_at_rest_on_its_side_has_its_shadow_under_the_face_it_lies_on(monkeypatch):
    """A cube dropped on its side onto a platform's mesh rests there with its base (canonical
    origin) at the middle of an edge, 10 cm off the middle of the face it lies on: the patch
    lies under that middle, not under the base (half of it off the cube)."""
    from splatfilm.film.shadow import ContactShadow

    top = 0.4
    plane, box, faces = _platform_collider(monkeypatch, top)
    body = prop()
    body.shadow = ContactShadow(plane, 0.07)
    m = physics_motion(PhysicsSpec(position=[0.0, 0.0, 0.55], rotation=euler_xyz_rotation(np.array([90.0, 0.0, 0.0])),
                                   collider="mesh", duration=1.5), body, Asset("set", splats(box), source="set.ply"),None, progress=False)
    body.motion = m
    world = World({"cube": body})
    rest = m.at(m.end)
    assert abs(rest.rotation[2, 2]) < 0.05 and world.tipped("cube", m.end)  # on its side
    middle = rest.apply(np.array([0.0, 0.0, 0.1]))[:2]  # over the middle of the face it lies on
    assert np.linalg.norm(rest.translation[:2] - middle) == pytest.approx(0.1, abs=0.01)
    patch = world.shadow_patch("cube", m.end)
    assert patch is not None and np.allclose(patch.means[:, 2].numpy(), top + 0.01, atol=1e-3)
    assert np.linalg.norm(patch.means.double().numpy()[:, :2].mean(axis=0) - middle) < 0.01  # was 0.1


@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_a_films_set_is_meshed_for_collisions_in_its_rasterize_mode(tmp_path, monkeypatch, mode):
    """The film's set (in its mode: its file's, or the script's for it) is meshed in that mode;
    its collision mesh was rendered classic whatever the set."""
    from splatfilm.assets import meshing

    scene = tmp_path / "set.ply"
    g = splats(np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]]))
    save_gaussians(scene, g)
    asked = []

    def mesh(*a, **k):
        asked.append(k.get("rasterize_mode"))
        raise SplatfilmError("stop here")

    monkeypatch.setattr(meshing, "collision_mesh", mesh)
    set_asset = Asset("set", g, source=str(scene), digest=file_digest(scene), rasterize_mode=mode)
    with pytest.raises(SplatfilmError, match="stop here"):
        physics_motion(PhysicsSpec(position=[0, 0, 1.0], collider="mesh", duration=1.0), prop(), set_asset, None,
                       progress=False)
    assert asked == [mode]


def _floor(folder: Path, half: float) -> None:
    """floor.ply: a grid of splats 5 cm apart over [-half, half)^2 m at z = 0, its ground plane recorded."""
    u = np.arange(-half, half, 0.05)
    a, b = np.meshgrid(u, u)
    save_gaussians(folder / "floor.ply", splats(np.c_[a.ravel(), b.ravel(), np.zeros(a.size)], size=0.02))
    write_ground(folder / "floor.ply", GroundPlane(np.array([0.0, 0.0, 1.0]), 0.0))


def _crate_film(folder: Path, top_mass: float = 1.0) -> Path:
    """A film of two 0.3 m crates on a floor (z = 0), the second dropped onto the first."""
    _floor(folder, 1.0)
    save_gaussians(folder / "crate.ply", splats(cube_points(0.3), size=0.01))
    (folder / "film.yaml").write_text(f"""version: 1
fps: 24
resolution: [64, 36]
assets:
  set: {{file: floor.ply, shadow: false}}
  low: {{file: crate.ply, shadow: false, physics: {{drop_from: [0, 0, 0.4], orientation: [3, 2, 0], duration: 2, collider: ground}}}}
  high: {{file: crate.ply, shadow: false, physics: {{drop_from: [0.02, 0, 1.1], orientation: [2, 3, 10], duration: 2,
                                                     collider: ground, mass: {top_mass}}}}}
shots:
  - {{name: sh010, duration: 1, camera: {{position: [0, -3, 0.6], look_at: [0, 0, 0.2]}}}}
""")
    return Path(folder / "film.yaml")


def test_a_films_bodies_collide_with_each_other(tmp_path, monkeypatch):
    """Blender's Rigid Body World and Houdini's Bullet solver simulate a film's bodies together:
    a crate dropped onto another comes to rest on it, not inside it (each alone in its own world,
    the top one fell through the bottom one to the floor). One bake holds both, and changes when
    any body's settings do."""
    from splatfilm.film.checks import film_notes
    from splatfilm.film.script import parse_film

    film = parse_film(_crate_film(tmp_path))
    pts = cube_points(0.3)
    low, high = (film.world.assets[n].motion for n in ("low", "high"))
    assert lowest(high, pts, [high.end])[0] >= 0.29  # on the lower crate (0.3 m tall), not on the floor
    assert lowest(low, pts, [low.end])[0] == pytest.approx(0.0, abs=0.01)
    assert film_notes(film) == []  # resting on another body is not floating over the set
    assert len(list((tmp_path / ".splatfilm-cache").glob("physics-*.json"))) == 1  # one bake for both

    def fail(*a, **k):
        raise AssertionError("simulated again")

    monkeypatch.setattr(physics, "simulate_world", fail)
    parse_film(tmp_path / "film.yaml")  # the same world: read from the bake
    with pytest.raises(AssertionError, match="simulated again"):
        parse_film(_crate_film(tmp_path, top_mass=5.0))  # one body's setting changed: the world is simulated again


def _table_film(folder: Path, table: str = "position: [0.5, 0.2, 0], yaw: 20", crate: str = "") -> Path:
    """A film of a 0.3 m crate dropped over a table standing on a floor (z = 0): the table a
    prop placed by the script (sidecar `kind: object`), 0.6 m square and 0.75 m tall, with no
    physics of its own; `table` and `crate`: more of their fields."""
    _floor(folder, 1.5)
    save_gaussians(folder / "table.ply", splats(cube_points(1.0, 13) * [0.6, 0.6, 0.75], size=0.01))
    (folder / "table.json").write_text(json.dumps({"kind": "object"}))
    save_gaussians(folder / "crate.ply", splats(cube_points(0.3), size=0.01))
    (folder / "film.yaml").write_text(f"""version: 1
fps: 24
resolution: [64, 36]
assets:
  set: {{file: floor.ply, shadow: false}}
  table: {{file: table.ply, {table}}}
  crate: {{file: crate.ply, {crate} physics: {{drop_from: [0.45, 0.25, 1.3], orientation: [3, 2, 10], duration: 2,
                                               collider: ground}}}}
shots:
  - {{name: sh010, duration: 1, camera: {{position: [0, -3, 0.6], look_at: [0, 0, 0.2]}}}}
""")
    return Path(folder / "film.yaml")


def test_a_body_dropped_over_a_standing_prop_rests_on_its_top(tmp_path, monkeypatch):
    """A prop the script stands in the world without physics (a table) collides with the bodies
    as its hull where it stands, as Blender's passive rigid bodies and Unreal's placed meshes do:
    a crate dropped over it rests on its top (it passed through it to the floor), no note is told,
    and moving the table simulates again. `collide: false` lets bodies pass through it."""
    from splatfilm.film.checks import film_notes
    from splatfilm.film.script import parse_film

    film = parse_film(_table_film(tmp_path))
    crate = film.world.assets["crate"].motion
    assert lowest(crate, cube_points(0.3), [crate.end])[0] == pytest.approx(0.75, abs=0.01)  # on the table top
    assert film_notes(film) == []  # resting on a prop is not floating over the set

    def fail(*a, **k):
        raise AssertionError("simulated again")

    with monkeypatch.context() as m:
        m.setattr(physics, "simulate_world", fail)
        parse_film(tmp_path / "film.yaml")  # the same world: read from the bake
        with pytest.raises(AssertionError, match="simulated again"):
            parse_film(_table_film(tmp_path, "position: [0.5, 0.3, 0], yaw: 20"))  # the table moved

    film = parse_film(_table_film(tmp_path, "position: [0.5, 0.2, 0], yaw: 20, collide: false"))
    crate = film.world.assets["crate"].motion
    assert lowest(crate, cube_points(0.3), [crate.end])[0] == pytest.approx(0.0, abs=0.01)  # through it, on the floor


def test_a_bodys_shadow_lies_on_the_standing_prop_it_rests_on(tmp_path):
    """A crate at rest on a table prop (a colliding asset the set does not show) has its contact
    shadow on the table's top, where the hull it rests on is: it lay on the floor 0.75 m below,
    faded to nothing, and the crate floated. The frame darkens around the crate's foot."""
    from splatfilm.film.frame_render import FrameRenderer
    from splatfilm.film.script import parse_film

    film = _table_film(tmp_path, crate="on_ground: set, shadow: true,")
    film.write_text(film.read_text().replace("{name: sh010, duration: 1, camera: {position: [0, -3, 0.6], look_at: [0, 0, 0.2]}}",
                                             "{name: sh010, time: 2, duration: 1, camera: {position: [1.9, -1.3, 1.7], "
                                             "look_at: [0.5, 0.2, 0.7]}}"))
    film = parse_film(film)
    world, end = film.world, 2.0
    assert world.assets["crate"].motion.end == pytest.approx(end, abs=0.01)
    assert world.shadow_surface("crate", end) == pytest.approx(0.75, abs=0.01)  # was 0: the floor
    patch = world.shadow_patch("crate", end)
    assert patch is not None and np.allclose(patch.means[:, 2].numpy(), 0.76, atol=0.01)  # was None
    assert float(patch.activated_opacities.max()) > 0.2  # in contact: as dark as on the floor
    lit = FrameRenderer(film, "cpu").render(film.shots[0], 0)[0]
    world.assets["crate"].shadow = None
    plain = FrameRenderer(film, "cpu").render(film.shots[0], 0)[0]
    darker = plain.mean(axis=-1) - lit.mean(axis=-1)
    assert darker.max() > 0.05 and darker.min() > -1e-6  # the table top darkens under the crate, nothing brightens


def test_a_keyed_cups_shadow_lies_on_the_standing_table_prop_it_is_placed_on(tmp_path):
    """Not only a body's: a cup keyed along the top of a table prop (no physics; `shadow: true`
    without on_ground keeps its z and lies on the set's ground) has its shadow on the table's
    hull as the bodies meet it, and the frame darkens there. It lay on the floor 0.75 m below,
    faded to nothing. A table that says `collide: false` is no surface for it either."""
    from splatfilm.film.frame_render import FrameRenderer
    from splatfilm.film.script import parse_film

    film = _table_film(tmp_path)
    text = film.read_text()
    keys = "animation: {keyframes: [{time: 0, position: [0.4, 0.1, 0.75]}, {time: 1, position: [0.6, 0.3, 0.75]}]}"
    text = text[:text.index("  crate:")] + f"  cup: {{file: crate.ply, scale: 0.3, shadow: true, {keys}}}\n" + \
        text[text.index("shots:"):]
    film.write_text(text.replace("camera: {position: [0, -3, 0.6], look_at: [0, 0, 0.2]}",
                                 "camera: {position: [1.9, -1.3, 1.7], look_at: [0.5, 0.2, 0.7]}"))
    parsed = parse_film(film)
    world = parsed.world
    for t in (0.0, 0.5, 1.0):
        assert world.shadow_surface("cup", t) == pytest.approx(0.75, abs=0.01)  # was 0: the floor
    patch = world.shadow_patch("cup", 0.5)
    assert patch is not None and np.allclose(patch.means[:, 2].numpy(), 0.76, atol=0.01)  # was None: faded
    lit = FrameRenderer(parsed, "cpu").render(parsed.shots[0], 12)[0]
    world.assets["cup"].shadow = None
    plain = FrameRenderer(parsed, "cpu").render(parsed.shots[0], 12)[0]
    darker = plain.mean(axis=-1) - lit.mean(axis=-1)
    assert darker.max() > 0.05 and darker.min() > -1e-6  # the table top darkens under the cup, nothing brightens
    film.write_text(film.read_text().replace("table: {file: table.ply,", "table: {file: table.ply, collide: false,"))
    world = parse_film(film).world
    assert world.shadow_surface("cup", 0.5) == 0.0 and world.shadow_patch("cup", 0.5) is None


def test_a_shadow_lies_on_the_nearest_surface_below_among_the_set_and_the_props():
    """Props' hulls (triangles where each stands at a frame's time) are surfaces as the set's mesh
    is: the highest of them no higher than the body's lowest part wins, and a prop that moves away
    leaves the surface under the body to the set."""
    from splatfilm.film.shadow import ContactShadow

    plane = GroundPlane(np.array([0.0, 0.0, 1.0]), 0.0)
    platform = np.array([[[-1, -1, 0.4], [1, -1, 0.4], [1, 1, 0.4]], [[-1, -1, 0.4], [1, 1, 0.4], [-1, 1, 0.4]]])
    shelf = body_shape(cube_points(1.0, 5) * [0.5, 0.5, 0.02], "hull").triangles()  # 2 cm thick, its base at 0
    assert shelf.shape[1:] == (3, 3)
    here = Similarity(translation=np.array([0.0, 0.0, 0.7]))
    gone = Similarity(translation=np.array([3.0, 0.0, 0.7]))
    place = lambda t: here if t < 1 else gone  # noqa: E731
    under = lambda z: np.array([[x, y, z] for x in (-0.05, 0.05) for y in (-0.05, 0.05)])  # noqa: E731
    floor = np.c_[np.random.default_rng(0).uniform(-1, 1, (400, 2)), np.zeros(400)]
    for shadow in (ContactShadow(plane, 0.08, mesh=platform, props=[(shelf, place)]),
                   ContactShadow(plane, 0.08, surface=floor, props=[(shelf, place)])):
        low = 0.4 if shadow.mesh is not None else 0.0  # the set's surface: the platform, or the floor's centres
        assert shadow.surface_height(np.array([0.0, 0.0, low + 0.05]), low + 0.05, under(low + 0.05), 0.0) == \
            pytest.approx(low)  # under the shelf: the shelf is above it
        assert shadow.surface_height(np.array([0.0, 0.0, 0.75]), 0.75, under(0.75), 0.0) == pytest.approx(0.72)
        assert shadow.surface_height(np.array([0.0, 0.0, 0.75]), 0.75, under(0.75), 2.0) == pytest.approx(low)
        assert shadow.surface_height(np.array([0.0, 0.0, 0.75]), 0.75, under(0.75)) == pytest.approx(low)  # no t: no props
    # A box (a flat prop's hull) has its faces too.
    box = body_shape(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.0]]), "hull")
    assert box.kind == "box" and box.triangles().shape == (12, 3, 3)
    assert box.triangles()[..., 2].max() == pytest.approx(5e-4)


@pytest.mark.parametrize("table, crate, ground, message", [
    ("collide: 1", "", "", r"assets\.table\.collide: expected true or false, got 1"),
    ("yaw: 0", "collide: false,", "", r"assets\.crate\.collide: a simulated body always collides"),
    ("yaw: 0", "", "collide: false", r"assets\.crate\.physics: falls onto set, which says `collide: false`"),
])
def test_collide_errors_name_the_field(tmp_path, table, crate, ground, message):
    from splatfilm.film.script import parse_film

    film = _table_film(tmp_path, table, crate)
    film.write_text(film.read_text().replace("shadow: false}", f"shadow: false, {ground}}}" if ground else "shadow: false}"))
    with pytest.raises(SplatfilmError, match=message):
        parse_film(film)


def test_masses_decide_a_collision():
    """A box slid into a resting one pushes it far when it is the heavier, hardly when it is the lighter."""
    pts = cube_points(0.2)

    def pushed(ratio: float) -> float:
        rest = PhysicsSpec(position=[0, 0, 0], mass=1.0, collider="ground", duration=1.5)
        slid = PhysicsSpec(position=[-0.5, 0, 0.001], velocity=[3.0, 0, 0], mass=ratio, collider="ground", duration=1.5)
        struck, _ = bake_physics([physics.Body(rest, pts, floor_collider()), physics.Body(slid, pts, floor_collider())])
        return float(struck.positions[-1, 0])

    heavy, light = pushed(10.0), pushed(0.1)
    assert heavy > 0.3 and light < 0.5 * heavy


def test_a_moving_asset_pushes_a_body():
    """Another asset moving by its own motion (a walk, keys) is a kinematic body: it shoves a
    box in its way and is not shoved."""
    pts = cube_points(0.2)
    box = physics.Body(PhysicsSpec(position=[0, 0, 0], collider="ground", duration=2.0), pts, floor_collider())
    wall = cube_points(0.4) * [0.5, 2.0, 1.0]  # 0.2 m thick, 0.8 m wide, 0.4 m tall
    mover = physics.Mover(wall, lambda t: Similarity(translation=[-0.5 + 0.8 * t, 0, 0]))  # along +x at 0.8 m/s
    (alone,) = bake_physics([box])
    (shoved,) = bake_physics([box], movers=[mover])
    assert abs(alone.positions[-1, 0]) < 1e-3
    assert shoved.positions[-1, 0] > 0.9  # the wall's front ends at x = 1.2 m; the box's back was at -0.1 m


def test_a_flat_mover_moved_in_its_own_frame_is_simulated_again(tmp_path, monkeypatch):
    """A flat mover (a card: a box, not a hull) keyed by its extents alone would keep its bake
    when its points move in its canonical frame (its origin set again): the key holds where the
    box is too."""
    spec = PhysicsSpec(position=[0, 0, 0.3], collider="ground", duration=0.1)
    body = physics.Body(spec, cube_points(0.2), floor_collider())
    g = np.linspace(-0.2, 0.2, 5)
    card = np.array([[x, 0.0, z] for x in g for z in g]) + [0.0, 0.0, 0.2]  # flat in y: a box

    def path(t: float) -> Similarity:  # standing out of the body's way
        return Similarity(translation=[1.0, 0, 0])

    bake_physics([body], tmp_path, [physics.Mover(card, path)])

    def fail(*a, **k):
        raise AssertionError("simulated again")

    monkeypatch.setattr(physics, "simulate_world", fail)
    bake_physics([body], tmp_path, [physics.Mover(card, path)])  # the same inputs: the bake
    with pytest.raises(AssertionError, match="simulated again"):
        bake_physics([body], tmp_path, [physics.Mover(card + [0.0, 0.0, 0.5], path)])


def test_every_frame_sees_the_body_as_simulated(tmp_path):
    """The demo's crate (its spec, on a floor): at every frame of the film (world time k/24, its
    start 0.6 s off the grid) and every sub-frame, the bake is where the simulation had it: the
    whole 240 Hz record is kept, so frames near a bounce show the contact (sampled every 1/24 s
    from the start and interpolated, a frame missed it by up to 7.4 cm)."""
    pts = cube_points(0.3)
    spec = PhysicsSpec(position=[1.0, -0.1, 2.6], rotation=euler_xyz_rotation(np.array([10.0, 15.0, 30.0])), start=0.6,
                       duration=6.0, mass=2.0, restitution=0.25, friction=0.6, collider="ground")
    physics_motion(spec, Asset("crate", splats(pts, size=0.01)), None, tmp_path)
    baked = physics_motion(spec, Asset("crate", splats(pts, size=0.01)), None, tmp_path)  # read back from the bake
    ref = physics.simulate(spec, body_shape(pts), floor_collider())
    times = np.r_[np.arange(0, 7 * FPS) / FPS, np.arange(0, 7 * FPS) / FPS + 0.25 / FPS]
    gap = [np.abs(baked.at(t).apply(pts) - ref.at(t).apply(pts)).max() for t in times]
    assert max(gap) < 0.005
    assert np.allclose(np.diff(baked.times), 1 / physics.STEP_HZ)


def test_a_sphere_holds_the_whole_body():
    """A box simulated as a sphere: the sphere reaches its corners, so none sinks into the floor
    (half the largest extent left them 5.5 cm under it)."""
    a = prop()
    spec = PhysicsSpec(position=[0, 0, 0.6], rotation=euler_xyz_rotation(np.array([30.0, 20.0, 0.0])), collider="ground",
                       duration=1.5, shape="sphere", rolling_friction=0.1)
    m = physics_motion(spec, a, None)
    assert lowest(m, body_points(a.gaussians), fine_times(m)).min() >= -TOL


def _leg_set(tmp_path):
    """A set: a floor at z = 0 and a table leg (a 6 cm column of Gaussians 0.7 m tall at x = 0.5)."""
    u = np.arange(-1.5, 1.5, 0.04)
    a, b = np.meshgrid(u, u)
    floor = np.c_[a.ravel(), b.ravel(), np.zeros(a.size)]
    g = np.arange(-0.03, 0.031, 0.015)
    leg = np.array([[0.5 + x, y, z] for x in g for y in g for z in np.arange(0.05, 0.7, 0.03)])
    scene = tmp_path / "set.ply"
    save_gaussians(scene, splats(np.r_[floor, leg], size=0.01))
    write_ground(scene, GroundPlane(np.array([0.0, 0.0, 1.0]), 0.0))
    return Asset("set", splats(np.r_[floor, leg], size=0.01), source=str(scene))


def test_a_body_passing_through_the_set_is_named(tmp_path):
    """A ground-plane collider holds none of the set's furniture: a crate slid through a table
    leg is told (its name and when), one slid clear of it is not."""
    set_asset = _leg_set(tmp_path)
    through = physics_motion(PhysicsSpec(position=[0, 0, 0.0], velocity=[3.0, 0, 0], collider="ground", duration=1.0),
                             prop(), set_asset)
    swept = [n for n in through.notes if "passes through the set" in n]
    assert len(swept) == 1 and "t = 0.1" in swept[0], through.notes
    clear = physics_motion(PhysicsSpec(position=[0, 0.6, 0.0], velocity=[3.0, 0, 0], collider="ground", duration=1.0),
                           prop(), set_asset)
    assert not [n for n in clear.notes if "passes through" in n]


def test_a_tilted_set_is_told():
    """Gravity is -z: a set whose floor leans 10 degrees (a tilted capture world) is told, a level one not."""
    tilted = physics.Collider(plane=GroundPlane(euler_xyz_rotation(np.array([10.0, 0, 0])) @ [0, 0, 1.0], 0.0))
    (note,) = physics.tilt_notes(tilted)
    assert "tilts 10.0 degrees" in note
    assert physics.tilt_notes(physics.Collider(plane=GroundPlane(euler_xyz_rotation(np.array([1.0, 0, 0])) @ [0, 0, 1.0],
                                                                 0.0))) == []
    m = physics_motion(PhysicsSpec(position=[0, 0, 0.3], collider="ground", duration=0.2), prop(), None)
    assert not [n for n in m.notes if "tilts" in n]


def test_the_demo_films_crate_lands_clear_of_the_set():
    """The bundled demo: its crate collides with the set's mesh, so it bounces off the table's leg
    rather than through it (on the ground plane alone it passed 1 m through it), and no note is told."""
    from splatfilm.film.checks import film_notes
    from splatfilm.film.script import parse_film
    from splatfilm.film.shadow import set_surface

    film = parse_film(REPO / "scenes" / "set" / "film.yaml")
    assert film_notes(film) == []
    crate, scene = film.world.assets["crate"], film.world.assets["set"]
    shape = body_shape(body_points(crate.gaussians, crate.local), "hull", crate.motion.scale)
    shown = set_surface(scene.gaussians, scene.world_transform(0.0))
    assert physics.swept_notes(crate.motion, shape, shown, physics.read_ground(scene.source)) == []
