"""Physics-driven motion: a prop or character dropped, thrown, rolled or knocked over by a
rigid-body simulation (pybullet, DIRECT mode, CPU) instead of keyframes.

The moving body is a convex hull (or a box, or a sphere) around the asset's opaque Gaussian
centres in its canonical frame; the static collider is the scene's mesh (`meshing.collision_mesh`,
cached beside the scene) or its ground plane. Every body of a film is simulated in one world
(`simulate_world`), as Blender's Rigid Body World and Houdini's Bullet solver do: bodies collide
with each other (their masses count) and each with its own set's collider; a body waits at its
start pose until its `start` and holds its last pose after its `duration`, as a fixed body others
still hit. The film's other colliding assets (a walking character, keyed props, and props
standing still: a table, a globe; a script's `collide: false` leaves one out) are kinematic
bodies: the convex hull of their opaque Gaussian centres in their canonical frame (a rigged
figure's stored pose: its limbs do not follow its clips), moved where they stand at every step
(a standing one never moves: a static collider, as Blender's passive rigid bodies); they push
the bodies and are not pushed, and a body dropped over a standing table comes to rest on its
top. The simulation runs at a fixed 240 Hz step (each solved in 8 substeps) under gravity
along the film world's -z (9.81 m/s^2), and the pose of each body's canonical origin after
every step is baked into a `BakedMotion`, which `.at(t)` interpolates like `KeyedMotion` /
`PathWalk`: every frame and motion-blur sub-frame sees the body as simulated, contacts
included. Trajectories are cached as JSON keyed by a hash of every input of the whole world
(the colliding assets' hulls and poses too), so a film renders the same frames on every run
and machine. A bake records the pybullet version that made it: a machine with another version
simulates again, and one without pybullet (a render node) renders the bake it is given, as a
farm renders a baked simulation cache.

Film script syntax (`parse_physics`), under an asset:

    physics:
      drop_from: [x, y, z]         # start at rest here (base of the canonical frame), or
      position: [x, y, z]          # start here (default: the asset's `position`)
      orientation: [rx, ry, rz]    # degrees about world x, then y, then z (default: the asset's yaw)
      velocity: [vx, vy, vz]       # m/s, of the centre of mass (not with drop_from)
      angular_velocity: [wx, wy, wz]  # degrees/s about world axes through the centre of mass
      mass: 1.0                    # kg
      friction: 0.6                # Coulomb coefficient against the set
      restitution: 0.2             # bounciness, 0..1
      rolling_friction: 0.0        # resistance to rolling (a ball stops), metres of lever arm
      start: 0.0                   # world time (s) the simulation starts; before it, the start pose
      duration: 4.0                # seconds simulated; after it, the last pose holds
      collider: mesh               # mesh (the set's meshed surface, its ground plane under it) or ground
      shape: hull                  # hull, box or sphere around the opaque Gaussian centres
                                   # (a sphere: centred on their bounding box, through the farthest)

After the bake, each body is checked (`BakedMotion.notes`, the film's notes): where it rests
(`_rest_notes`, `surface_notes`), whether its path passes through the set as it looks
(`swept_notes`: the set's opaque Gaussians above its floor inside the body, as a ground-plane
collider lets a body fall through a table), and whether its set's ground plane is level
(`tilt_notes`: gravity is always -z).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.assets.ground import GroundPlane, read_ground
from splatfilm.film.shadow import set_surface
from splatfilm.film.world import Asset
from splatfilm.io.digest import content_digest
from splatfilm.io.cache import CacheEntry
from splatfilm.scene.transforms import Similarity, euler_xyz_rotation, quat_from_rotation, quat_slerp, rotation_from_quat
from splatfilm.yamlfields import At, mapping, number, show, vec3

if TYPE_CHECKING:
    from splatfilm.assets.meshing import MeshSettings

STEP_HZ = 240
CONTACT_BREAKING = 0.001  # m: contacts are kept from this far apart (simulate)
SUBSTEPS = 8  # per step: with none, a box dropped 1 m sinks 2.5 cm into the floor on impact; with 8, none
GRAVITY = 9.81
COLLIDERS = ("mesh", "ground")
SHAPES = ("hull", "box", "sphere")
_FIELDS = {"drop_from", "position", "orientation", "velocity", "angular_velocity", "mass", "friction", "restitution",
           "rolling_friction", "start", "duration", "collider", "shape"}
_MAX_DURATION = 600.0
_MESH_CHUNK = 100_000  # triangles per pybullet mesh shape
# 2: the rest check's notes are cached with the motion; 3: the simulator's version beside the key;
# 4: one bake for all of a film's bodies, recorded at every step
_CACHE_VERSION = 4
# The rest check: a body further than this above the surface under it floats (m); one moving
# faster than this at the end has not settled (m/s).
REST_GAP = 0.03
REST_SPEED = 0.05
# The swept check: set Gaussians this far (m) inside the body, at least SWEPT_COUNT of them,
# more than REST_GAP above the set's floor, at SWEPT_HZ samples of the path, are furniture the
# body passed through.
SWEPT_INSET = 0.01
SWEPT_COUNT = 5
SWEPT_HZ = 60
# The tilt check: gravity is -z, so a set whose floor tilts more than this (degrees) rolls bodies off it.
MAX_TILT = 2.0


# ---- what a script asks for ------------------------------------------------------------------


@dataclass
class PhysicsSpec:
    """A rigid-body simulation of one asset, in the film world (Z up, metres, seconds).

    position [3]: the canonical origin (the asset's base) at `start`; rotation [3,3]: the
    canonical frame's orientation then; scale: the asset's uniform scale; velocity [3] m/s and
    angular_velocity [3] rad/s of the centre of mass; mass kg; friction, restitution,
    rolling_friction: the prop's (the set counts as 1); collider: "mesh" or "ground"; shape:
    "hull", "box" or "sphere"."""

    position: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    scale: float = 1.0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    mass: float = 1.0
    friction: float = 0.6
    restitution: float = 0.2
    rolling_friction: float = 0.0
    start: float = 0.0
    duration: float = 4.0
    collider: str = "mesh"
    shape: str = "hull"

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, dtype=np.float64).reshape(3)
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        self.velocity = np.asarray(self.velocity, dtype=np.float64).reshape(3)
        self.angular_velocity = np.asarray(self.angular_velocity, dtype=np.float64).reshape(3)
        if self.collider not in COLLIDERS:
            raise SplatfilmError(f"physics collider must be one of {', '.join(COLLIDERS)}, got {self.collider!r}")
        if self.shape not in SHAPES:
            raise SplatfilmError(f"physics shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")

    def to_dict(self) -> dict:
        """Every field as JSON values (rounded to 1e-12 so the cache key is stable)."""
        r = lambda a: np.round(np.asarray(a, dtype=np.float64), 12).tolist()  # noqa: E731
        return {"position": r(self.position), "rotation": r(self.rotation), "scale": r(self.scale),
                "velocity": r(self.velocity), "angular_velocity": r(self.angular_velocity), "mass": r(self.mass),
                "friction": r(self.friction), "restitution": r(self.restitution),
                "rolling_friction": r(self.rolling_friction), "start": r(self.start), "duration": r(self.duration),
                "collider": self.collider, "shape": self.shape}


def parse_physics(value: Any, at: At, base: Similarity | None = None) -> PhysicsSpec:
    """A `physics:` mapping of a film script (module docstring) -> PhysicsSpec. `base`: the
    asset's placement (position, yaw, scale fields), used for what the mapping leaves out.
    Errors name the field path: `film.yaml: assets.cup.physics.mass: must be > 0, got 0`."""
    base = base if base is not None else Similarity()
    data = mapping(value, at, _FIELDS)
    if "drop_from" in data and "position" in data:
        at.fail("give `drop_from` (start at rest) or `position`, not both")
    if "drop_from" in data and ("velocity" in data or "angular_velocity" in data):
        at["drop_from"].fail("a drop starts at rest; use `position` with `velocity` to throw")
    if "drop_from" in data:
        position = vec3(data["drop_from"], at["drop_from"])
    elif "position" in data:
        position = vec3(data["position"], at["position"])
    else:
        position = base.translation.copy()
    rotation = euler_xyz_rotation(vec3(data["orientation"], at["orientation"])) if "orientation" in data else base.rotation
    velocity = vec3(data["velocity"], at["velocity"]) if "velocity" in data else np.zeros(3)
    spin = vec3(data["angular_velocity"], at["angular_velocity"]) if "angular_velocity" in data else np.zeros(3)

    def num(key: str, default: float, kind: str = "number") -> float:
        return number(data.get(key, default), at[key], kind)

    mass = num("mass", 1.0, "positive")
    friction = num("friction", 0.6, "nonneg")
    restitution = num("restitution", 0.2, "nonneg")
    if restitution > 1:
        at["restitution"].fail(f"must be between 0 and 1, got {restitution:g}")
    rolling = num("rolling_friction", 0.0, "nonneg")
    start = num("start", 0.0)
    duration = num("duration", 4.0, "positive")
    if duration > _MAX_DURATION:
        at["duration"].fail(f"at most {_MAX_DURATION:g} s of simulation, got {duration:g}")
    collider = data.get("collider", "mesh")
    if collider not in COLLIDERS:
        at["collider"].fail(f"expected one of {', '.join(COLLIDERS)}, got {show(collider)}")
    shape = data.get("shape", "hull")
    if shape not in SHAPES:
        at["shape"].fail(f"expected one of {', '.join(SHAPES)}, got {show(shape)}")
    return PhysicsSpec(position, rotation, base.scale, velocity, np.radians(spin), mass, friction, restitution,
                       rolling, start, duration, collider, shape)


# ---- the baked trajectory ---------------------------------------------------------------------


@dataclass
class BakedMotion:
    """A recorded rigid motion: the canonical origin at `positions` [T,3] with orientations
    `quats` [T,4] (w, x, y, z) at world times `times` [T] (s, increasing), uniform `scale`.
    `.at(t)` interpolates (linear positions, slerp orientations) and holds the ends. `notes`:
    what the check after the simulation found wrong with where the body came to rest."""

    times: np.ndarray
    positions: np.ndarray
    quats: np.ndarray
    scale: float = 1.0
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.quats = np.asarray(self.quats, dtype=np.float64).reshape(-1, 4)
        self.scale = float(self.scale)
        if len(self.times) == 0 or len(self.positions) != len(self.times) or len(self.quats) != len(self.times):
            raise SplatfilmError("a baked motion needs as many positions and orientations as times (at least one)")
        if np.any(np.diff(self.times) <= 0):
            raise SplatfilmError("a baked motion's times must be strictly increasing")

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def at(self, t: float) -> Similarity:
        """Canonical frame -> world at world time t (seconds)."""
        times = self.times
        if t <= times[0] or len(times) == 1:
            i, u = 0, 0.0
        elif t >= times[-1]:
            i, u = len(times) - 2, 1.0
        else:
            i = int(np.searchsorted(times, t, side="right")) - 1
            u = (t - times[i]) / (times[i + 1] - times[i])
        if len(times) == 1:
            return Similarity(rotation_from_quat(self.quats[0]), self.positions[0], self.scale)
        pos = (1 - u) * self.positions[i] + u * self.positions[i + 1]
        return Similarity(rotation_from_quat(quat_slerp(self.quats[i], self.quats[i + 1], u)), pos, self.scale)

    def to_dict(self) -> dict:
        """The bake's JSON record (lists of floats; `from_dict` reads it back)."""
        return {"times": self.times.tolist(), "positions": self.positions.tolist(), "quats": self.quats.tolist(),
                "scale": self.scale, "notes": list(self.notes)}

    @staticmethod
    def from_dict(d: dict) -> "BakedMotion":
        """The motion a `to_dict` record holds; KeyError, TypeError, ValueError or SplatfilmError
        for a damaged one (`bake_physics` then simulates again)."""
        return BakedMotion(np.array(d["times"]), np.array(d["positions"]), np.array(d["quats"]), float(d["scale"]),
                           [str(n) for n in d.get("notes", [])])


class BakeFailed(Exception):
    """A PendingBake's SplatfilmError on its way out of whatever asked where the body is. Not
    a SplatfilmError, so that a caller labelling its own errors (a shot parser names the shot's
    field that aimed at the body) lets it through as the bake said it; the film script's
    reader raises `error` in its place."""

    def __init__(self, error: SplatfilmError) -> None:
        super().__init__(str(error))
        self.error = error


class PendingBake:
    """A body's motion, simulated when first asked for rather than when its script is read.
    A cold simulation meshes the set (40 s for the demo's on a CPU) and steps pybullet: a film script
    bakes its bodies after its shots are checked, so a typo in a shot is told at once; a shot
    aimed at the body asks for it earlier, as its camera follows the trajectory.

    bake: makes the BakedMotion (SplatfilmError naming the script's field when it cannot);
    `motion()` runs it once; `at(t)` is the motion's, with bake errors as BakeFailed."""

    def __init__(self, bake: Callable[[], BakedMotion]) -> None:
        self._bake = bake
        self._motion: BakedMotion | None = None

    def motion(self) -> BakedMotion:
        """The baked motion: simulated (or read from its cache) on the first call."""
        if self._motion is None:
            self._motion = self._bake()
        return self._motion

    def at(self, t: float) -> Similarity:
        """Canonical frame -> world at world time t (seconds), as BakedMotion.at."""
        try:
            return self.motion().at(t)
        except SplatfilmError as e:
            raise BakeFailed(e) from None


# ---- what collides -----------------------------------------------------------------------------


@dataclass
class Collider:
    """The static world the body falls onto, in film-world coordinates: a ground plane, a
    triangle mesh (vertices [V,3] m, triangles [F,3] vertex indices), or both (a captured
    room's mesh has holes where no camera saw the floor; its ground plane closes them)."""

    plane: GroundPlane | None = None
    vertices: np.ndarray | None = None
    triangles: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.plane is None and self.vertices is None:
            raise SplatfilmError("a collider is a ground plane, a mesh or both")
        if self.vertices is not None:
            self.vertices = np.asarray(self.vertices, dtype=np.float64).reshape(-1, 3)
            self.triangles = np.asarray(self.triangles, dtype=np.int64).reshape(-1, 3)
            if len(self.triangles) == 0:
                raise SplatfilmError("a mesh collider needs at least one triangle")

    def key(self) -> str:
        """A hash of the collider's geometry."""
        if self.vertices is None:
            return content_digest(self.plane.to_dict())
        mesh = content_digest(np.ascontiguousarray(np.round(self.vertices, 9)).tobytes(),
                              np.ascontiguousarray(self.triangles).tobytes())
        return mesh if self.plane is None else content_digest(mesh + content_digest(self.plane.to_dict()))


def floor_collider(height: float = 0.0) -> Collider:
    """The film world's floor: the plane z = height."""
    return Collider(plane=GroundPlane(np.array([0.0, 0.0, 1.0]), -height))


def scene_collider(kind: str, scene: str | Path | None, placement: Similarity | None = None,
                   mesh_settings: MeshSettings | None = None, progress: bool = True, gaussians: Gaussians | None = None,
                   variant: str | None = None, rasterize_mode: str | None = None) -> Collider:
    """The collider of a set asset file placed in the world by `placement` (its asset frame ->
    world). kind "ground": the sidecar's `ground` (record it with `splatfilm ground`), else one
    estimated from the set's Gaussians; "mesh": the scene's collision mesh, made and cached
    beside it on first use (see meshing.collision_mesh), with that ground plane under it when
    the set has one. No scene: the floor z = 0. `gaussians` / `variant`: the set as the film
    shows it and its digest, meshed in place of its file where it differs (meshing.collision_mesh);
    rasterize_mode: the set's as the film renders it, None: the file's own."""
    if scene is None:
        if kind == "mesh":
            raise SplatfilmError("physics collider `mesh` needs a set to mesh; use collider: ground")
        return floor_collider()
    from splatfilm.assets.ground import estimate_ground
    from splatfilm.assets.asset_frame import sidecar_up
    from splatfilm.io.gaussian_files import load_gaussians

    placement = placement if placement is not None else Similarity()
    if kind not in COLLIDERS:
        raise SplatfilmError(f"physics collider must be one of {', '.join(COLLIDERS)}, got {kind!r}")
    plane = read_ground(scene)
    if kind == "ground":
        if plane is None:
            plane = estimate_ground(load_gaussians(scene), sidecar_up(scene))
        return Collider(plane=plane.transformed(placement))
    from splatfilm.assets.meshing import MeshSettings, collision_mesh

    v, f = collision_mesh(scene, mesh_settings or MeshSettings(), progress, gaussians=gaussians, variant=variant,
                          rasterize_mode=rasterize_mode)
    if plane is None:
        try:  # the floor under the mesh, where the set has one: it closes holes no camera saw
            plane = estimate_ground(load_gaussians(scene), sidecar_up(scene))
        except SplatfilmError:
            plane = None  # a set without a floor (a tabletop, an object): the mesh alone
    return Collider(plane=plane.transformed(placement) if plane is not None else None,
                    vertices=placement.apply(v), triangles=f)


# ---- the moving body ---------------------------------------------------------------------------


def body_points(gaussians: Gaussians, local: Similarity | None = None, min_opacity: float = 0.5,
                max_points: int = 20_000) -> np.ndarray:
    """Opaque Gaussian centres [M,3] in the asset's canonical frame (via `local`), at most
    `max_points` (an even, deterministic subsample), for the body's shape."""
    with torch.no_grad():
        keep = gaussians.activated_opacities >= min_opacity
        pts = gaussians.means[keep] if int(keep.sum()) >= 4 else gaussians.means
        pts = pts.detach().cpu().double().numpy()
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    pts = local.apply(pts) if local is not None else pts
    if len(pts) < 4:
        raise SplatfilmError(f"a physics body needs at least 4 Gaussians, got {len(pts)}")
    if len(pts) > max_points:
        pts = pts[np.linspace(0, len(pts) - 1, max_points).astype(np.int64)]
    return pts


@dataclass
class BodyShape:
    """The body in its canonical frame, scaled: kind "hull" (vertices [H,3]), "box" (half
    extents [3]) or "sphere" (radius); `com` [3] the centre of mass (uniform density)."""

    kind: str
    com: np.ndarray
    vertices: np.ndarray | None = None
    half_extents: np.ndarray | None = None
    radius: float = 0.0

    def triangles(self) -> np.ndarray:
        """Its surface as triangles [F,3,3] (its canonical frame, scaled, metres): a hull's
        faces or a box's twelve, what a contact shadow lies on (film.shadow: `props`). A
        sphere's is not made (ValueError)."""
        if self.kind == "hull":
            from scipy.spatial import ConvexHull

            return self.vertices[ConvexHull(self.vertices).simplices]
        if self.kind == "box":
            corners = self.com + self.half_extents * np.array([[x, y, z] for z in (-1, 1) for y in (-1, 1)
                                                                for x in (-1, 1)], dtype=np.float64)
            faces = np.array([[4, 5, 7], [4, 7, 6], [0, 2, 3], [0, 3, 1], [0, 1, 5], [0, 5, 4],
                              [2, 6, 7], [2, 7, 3], [0, 4, 6], [0, 6, 2], [1, 3, 7], [1, 7, 5]])
            return corners[faces]
        raise ValueError(f"no triangles for a {self.kind} shape")


def _hull_centroid(points: np.ndarray, simplices: np.ndarray) -> np.ndarray:
    """Volume centroid [3] of a closed convex hull (fan of tetrahedra from an inside point)."""
    inside = points.mean(axis=0)
    a, b, c = points[simplices[:, 0]], points[simplices[:, 1]], points[simplices[:, 2]]
    vol = np.abs(np.einsum("ij,ij->i", a - inside, np.cross(b - inside, c - inside))) / 6
    cent = (a + b + c + inside) / 4
    return (vol[:, None] * cent).sum(axis=0) / max(vol.sum(), 1e-30)


def body_shape(points: np.ndarray, kind: str = "hull", scale: float = 1.0) -> BodyShape:
    """The collision shape around canonical-frame points [M,3], times `scale`. A flat or
    degenerate set of points (a card, a sheet) gets a box at least 1 mm thick."""
    from scipy.spatial import ConvexHull, QhullError

    pts = np.asarray(points, dtype=np.float64) * scale
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2
    if kind == "sphere":
        # Around every point, as the docs say: half the largest extent left a box's corners 5.5 cm inside the floor.
        return BodyShape("sphere", centre, radius=max(float(np.linalg.norm(pts - centre, axis=1).max()), 5e-4))
    if kind == "hull":
        try:
            hull = ConvexHull(pts)
            verts = pts[hull.vertices]
            return BodyShape("hull", _hull_centroid(pts, hull.simplices), vertices=verts)
        except QhullError:
            pass  # flat: fall through to a thin box
    return BodyShape("box", centre, half_extents=np.maximum((hi - lo) / 2, 5e-4))


# ---- simulation --------------------------------------------------------------------------------


@dataclass
class Body:
    """One simulated body of a physics world: `spec`, its opaque Gaussian centres `points`
    [M,3] in its canonical frame (unscaled), and the static `collider` it falls onto."""

    spec: PhysicsSpec
    points: np.ndarray
    collider: Collider

    @functools.cached_property
    def shape(self) -> BodyShape:
        """Its simulated shape (`body_shape` of its points as spec.shape and spec.scale say),
        made once for the simulation and the checks after it."""
        return body_shape(self.points, self.spec.shape, self.spec.scale)


@dataclass
class Mover:
    """A kinematic body: an asset that moves by its own motion (a walk, keys) or stands still (a
    placed table: `place` the same at every t), which simulated bodies collide with and cannot
    push. `points` [M,3]: its opaque Gaussian centres in its canonical frame (unscaled); `place`:
    canonical frame -> world at world time t (s)."""

    points: np.ndarray
    place: Callable[[float], Similarity]

    def shape(self, t0: float) -> BodyShape:
        """Its collision shape in a world whose clock starts at t0 (s): the hull of its points
        at its scale then."""
        return body_shape(self.points, "hull", self.place(t0).scale)


def _add_shape(pb, shape: BodyShape, cid: int) -> int:
    """A pybullet collision shape for `shape`, centred on its centre of mass."""
    if shape.kind == "hull":
        return pb.createCollisionShape(pb.GEOM_MESH, vertices=(shape.vertices - shape.com).tolist(), physicsClientId=cid)
    if shape.kind == "box":
        return pb.createCollisionShape(pb.GEOM_BOX, halfExtents=shape.half_extents.tolist(), physicsClientId=cid)
    return pb.createCollisionShape(pb.GEOM_SPHERE, radius=shape.radius, physicsClientId=cid)


def _add_collider(pb, collider: Collider, cid: int) -> list[int]:
    """The static bodies of `collider` in client `cid`."""
    statics = []
    if collider.plane is not None:
        n = collider.plane.normal
        static_shape = pb.createCollisionShape(pb.GEOM_PLANE, planeNormal=n.tolist(), physicsClientId=cid)
        statics.append(pb.createMultiBody(0, static_shape, basePosition=(-collider.plane.offset * n).tolist(),
                                          physicsClientId=cid))
    if collider.vertices is not None:
        # pybullet takes at most ~500k indices per mesh shape: large meshes go in pieces.
        for first in range(0, len(collider.triangles), _MESH_CHUNK):
            tris = collider.triangles[first : first + _MESH_CHUNK]
            used, local = np.unique(tris, return_inverse=True)
            static_shape = pb.createCollisionShape(pb.GEOM_MESH, vertices=collider.vertices[used].tolist(),
                                                   indices=local.reshape(-1).tolist(),
                                                   flags=pb.GEOM_FORCE_CONCAVE_TRIMESH, physicsClientId=cid)
            statics.append(pb.createMultiBody(0, static_shape, physicsClientId=cid))
    # The set: friction and restitution 1, rolling and spinning friction 0, so the prop's
    # values are the contact's: Bullet multiplies friction and restitution, and combines
    # rolling friction as r0 * f1 + f0 * r1.
    for static in statics:
        pb.changeDynamics(static, -1, lateralFriction=1.0, restitution=1.0, rollingFriction=0.0,
                          spinningFriction=0.0, physicsClientId=cid)
    return statics


def _pb_quat(R: np.ndarray) -> list[float]:
    """pybullet's (x, y, z, w) of rotation R [3,3]."""
    q = quat_from_rotation(R)
    return [q[1], q[2], q[3], q[0]]


def world_steps(specs: list[PhysicsSpec]) -> tuple[float, list[int], list[int], int]:
    """The shared clock of a world of bodies `specs`: its first step's world time t0 (s), each
    body's release step and last step (its start and its start + duration, on the STEP_HZ grid
    from t0), and the number of steps."""
    t0 = min(s.start for s in specs)
    first = [int(round((s.start - t0) * STEP_HZ)) for s in specs]
    last = [f + int(math.ceil(s.duration * STEP_HZ - 1e-9)) for f, s in zip(first, specs)]
    return t0, first, last, max(last)


def simulate_world(bodies: list[tuple[PhysicsSpec, BodyShape, Collider]],
                   movers: list[tuple[BodyShape, Callable[[float], Similarity]]] = ()) -> list[BakedMotion]:
    """Simulate `bodies` (spec, shape, collider) together at STEP_HZ, colliding with each other,
    each with its own collider, and all with the kinematic `movers` (shape in the mover's
    canonical frame, scaled; place: canonical -> world at world time t). One BakedMotion per
    body, its canonical origin's pose after every step from its start to its start + duration:
    the bodies share one clock from the earliest start, each released at the step nearest its
    start (within 1/480 s of it) and held, as a fixed body, before it and after its end."""
    pb = _pybullet()

    cid = pb.connect(pb.DIRECT)
    try:
        pb.setGravity(0, 0, -GRAVITY, physicsClientId=cid)
        # Bullet keeps a contact from 2 cm apart by default; with sub-steps that short, a falling
        # body is caught and stopped before it touches, and never bounces (a ball with restitution
        # 0.6 dropped 0.9 m rose 1 cm). At 1 mm it bounces to 0.37 m (e^2 h = 0.32 m). The setting is
        # global to the process, so it is made on every run.
        pb.setPhysicsEngineParameter(fixedTimeStep=1.0 / STEP_HZ, numSubSteps=SUBSTEPS,
                                     deterministicOverlappingPairs=1, contactBreakingThreshold=CONTACT_BREAKING,
                                     physicsClientId=cid)
        # Each set's collider once; a body collides with its own set's only.
        statics: dict[str, list[int]] = {}
        for _, _, collider in bodies:
            if collider.key() not in statics:
                statics[collider.key()] = _add_collider(pb, collider, cid)

        specs = [spec for spec, _, _ in bodies]
        t0, first, last, steps = world_steps(specs)
        ids, starts = [], []
        for spec, shape, collider in bodies:
            # The body's frame is its centre of mass (pybullet reports and sets that pose).
            com0 = spec.position + spec.rotation @ shape.com
            body = pb.createMultiBody(spec.mass, _add_shape(pb, shape, cid), basePosition=com0.tolist(),
                                      baseOrientation=_pb_quat(spec.rotation), physicsClientId=cid)
            pb.changeDynamics(body, -1, lateralFriction=spec.friction, restitution=spec.restitution,
                              rollingFriction=spec.rolling_friction, spinningFriction=spec.rolling_friction,
                              physicsClientId=cid)
            # Bullet puts slow bodies to sleep, which can freeze a box balanced on an edge mid-fall.
            pb.changeDynamics(body, -1, activationState=pb.ACTIVATION_STATE_DISABLE_SLEEPING, physicsClientId=cid)
            for key, others in statics.items():
                if key != collider.key():
                    for other in others:
                        pb.setCollisionFilterPair(body, other, -1, -1, 0, physicsClientId=cid)
            ids.append(body)
            starts.append((com0.tolist(), _pb_quat(spec.rotation)))
        kinematic = []
        for shape, place in movers:
            kinematic.append((pb.createMultiBody(0, _add_shape(pb, shape, cid), physicsClientId=cid), shape, place))

        com = [np.empty((b - a + 1, 3)) for a, b in zip(first, last)]
        quat = [np.empty((b - a + 1, 4)) for a, b in zip(first, last)]  # (w, x, y, z)
        # Each mover's centre of mass at the previous step: its velocity over a step is the change.
        centres = [None] * len(kinematic)
        for k in range(steps + 1):
            for j, (mover, shape, place) in enumerate(kinematic):
                # Where the mover stands at the end of this step, its velocity over the step.
                at = place(t0 + k / STEP_HZ)
                c, c0 = at.translation + at.rotation @ shape.com, centres[j]
                centres[j] = c
                if k:
                    pb.resetBasePositionAndOrientation(mover, c.tolist(), _pb_quat(at.rotation), physicsClientId=cid)
                    pb.resetBaseVelocity(mover, ((c - c0) * STEP_HZ).tolist(), [0.0, 0.0, 0.0], physicsClientId=cid)
            if k:
                pb.stepSimulation(physicsClientId=cid)
            for i, body in enumerate(ids):
                if k <= first[i]:  # waiting at its start pose
                    pb.resetBasePositionAndOrientation(body, *starts[i], physicsClientId=cid)
                    pb.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=cid)
                    if k == first[i]:  # released with its start velocity
                        pb.resetBaseVelocity(body, specs[i].velocity.tolist(), specs[i].angular_velocity.tolist(),
                                             physicsClientId=cid)
                elif k > last[i]:  # done: held where it ended
                    p, q = com[i][-1], quat[i][-1]
                    pb.resetBasePositionAndOrientation(body, p.tolist(), [q[1], q[2], q[3], q[0]], physicsClientId=cid)
                    pb.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=cid)
                if first[i] <= k <= last[i]:
                    p, q = pb.getBasePositionAndOrientation(body, physicsClientId=cid)
                    com[i][k - first[i]], quat[i][k - first[i]] = p, (q[3], q[0], q[1], q[2])
        for body in ids + [m for m, _, _ in kinematic]:
            pb.removeBody(body, physicsClientId=cid)  # so the rays below see the set, not the bodies
        notes = [_rest_notes(shape, com[i], quat[i], collider, spec, cid) for i, (spec, shape, collider) in enumerate(bodies)]
    finally:
        pb.disconnect(cid)

    motions = []
    for i, (spec, shape, _) in enumerate(bodies):
        quats = np.where(quat[i][:, :1] >= 0, quat[i], -quat[i])
        R = np.stack([rotation_from_quat(q) for q in quats])
        positions = com[i] - R @ shape.com  # the canonical origin, not the centre of mass
        times = spec.start + np.arange(len(com[i])) / STEP_HZ
        motions.append(BakedMotion(times, positions, quats, spec.scale, notes[i]))
    return motions


def simulate(spec: PhysicsSpec, shape: BodyShape, collider: Collider) -> BakedMotion:
    """One body alone in its world (simulate_world)."""
    return simulate_world([(spec, shape, collider)])[0]


def _support_points(shape: BodyShape) -> np.ndarray:
    """Points [P,3] of the body's surface relative to its centre of mass, where it can touch."""
    if shape.kind == "hull":
        return shape.vertices - shape.com
    if shape.kind == "box":
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        return signs * shape.half_extents
    return np.array([[0.0, 0.0, -shape.radius]])  # a sphere touches below its centre


def _rest_notes(shape: BodyShape, com: np.ndarray, quat: np.ndarray, collider: Collider, spec: PhysicsSpec,
                cid: int) -> list[str]:
    """What is wrong with where the body ends (final centre of mass com[-1], orientation
    quat[-1]; the body already removed from pybullet client `cid`): nothing under it (it fell
    through the collider or left the set), resting in the air above the surface under it, or
    still moving. Rays go straight down from the body's lowest points."""
    pb = _pybullet()

    notes = []
    end = spec.start + spec.duration
    # A sphere touches straight below its centre however it has rolled.
    turn = np.eye(3) if shape.kind == "sphere" else rotation_from_quat(quat[-1])
    pts = com[-1] + _support_points(shape) @ turn.T
    lowest = pts[np.argsort(pts[:, 2])[:8]]
    starts = lowest + [0.0, 0.0, 0.02]  # from just above each point: a touching point still sees its support
    hits = pb.rayTestBatch(starts.tolist(), (lowest - [0.0, 0.0, 100.0]).tolist(), physicsClientId=cid)
    gaps = [float(p[2] - h[3][2]) for p, h in zip(lowest, hits) if h[0] >= 0]
    where = ", ".join(f"{v:.2f}" for v in pts.mean(axis=0))
    speed = float(np.linalg.norm(com[-1] - com[-2])) * STEP_HZ if len(com) > 1 else 0.0
    if not gaps:
        notes.append(f"has nothing under it at the end (at [{where}] m): it fell through the set's "
                     f"{'ground plane' if collider.vertices is None else 'mesh'} or left the set")
    elif speed > REST_SPEED:
        notes.append(f"is still moving at {speed:.2f} m/s when its simulation ends at t = {end:g} s "
                     f"(give a longer duration)")
    return notes


def surface_notes(motion: BakedMotion, points: np.ndarray, set_means: np.ndarray) -> list[str]:
    """What is wrong with where a body rests against the set as it looks (its opaque Gaussian
    centres `set_means` [N,3], world), not as its collider has it: resting above every surface
    under it (held up by a collider surface the set does not show) or below every one (sunk
    through the floor). `points` [M,3]: the body in its canonical frame. Surfaces under the
    body: the set's Gaussians inside its footprint; the top one is the median of the ten
    highest below the body, so a stray floater does not count."""
    if len(set_means) == 0:
        return []
    body = motion.at(motion.end).apply(points)
    bottom = float(body[:, 2].min())
    lo, hi = body[:, :2].min(axis=0) - 0.02, body[:, :2].max(axis=0) + 0.02
    inside = set_means[np.all((set_means[:, :2] >= lo) & (set_means[:, :2] <= hi), axis=1)]
    where = ", ".join(f"{v:.2f}" for v in body.mean(axis=0))
    if len(inside) == 0:
        return [f"comes to rest where the set has no surface under it (at [{where}] m): it left the set"]
    below = np.sort(inside[inside[:, 2] <= bottom + REST_GAP, 2])
    if len(below) == 0:
        return [f"comes to rest below every surface of the set there (at [{where}] m): it sank through the floor"]
    top = float(np.median(below[-10:]))
    if bottom - top > 2 * REST_GAP:
        return [f"comes to rest {bottom - top:.2f} m above the set's surface under it (at [{where}] m): its "
                f"collider holds it where the set shows nothing"]
    return []


def _inside(shape: BodyShape, inset: float) -> Callable[[np.ndarray], np.ndarray]:
    """A test of points [N,3] (the body's scaled canonical frame) -> bool [N]: which lie more
    than `inset` metres inside `shape`."""
    if shape.kind == "sphere":
        return lambda local: np.linalg.norm(local - shape.com, axis=1) < shape.radius - inset
    if shape.kind == "box":
        return lambda local: np.all(np.abs(local - shape.com) < shape.half_extents - inset, axis=1)
    from scipy.spatial import ConvexHull

    eq = ConvexHull(shape.vertices).equations  # outward unit normals n, offsets d: n.x + d <= 0 inside
    return lambda local: np.all(local @ eq[:, :3].T + eq[:, 3] < -inset, axis=1)


def swept_notes(motion: BakedMotion, shape: BodyShape, set_means: np.ndarray, floor: GroundPlane | None) -> list[str]:
    """What the body's path passes through as the set looks (its opaque Gaussian centres
    `set_means` [N,3], world): at least SWEPT_COUNT of them more than REST_GAP above the set's
    `floor` and SWEPT_INSET inside `shape` (the body as simulated, scaled canonical frame) at
    one of SWEPT_HZ samples of its path, furniture that the collider does not hold (a table
    under a ground-plane collider). Nothing to check without a floor."""
    if floor is None or len(set_means) == 0:
        return []
    above = set_means[(set_means @ floor.normal + floor.offset) * np.sign(floor.normal[2] or 1.0) > REST_GAP]
    if len(above) == 0:
        return []
    stride = max(1, int(round(1 / (SWEPT_HZ * np.median(np.diff(motion.times))))) if len(motion.times) > 1 else 1)
    if shape.kind == "hull":
        reach = float(np.linalg.norm(shape.vertices - shape.com, axis=1).max())
    elif shape.kind == "box":
        reach = float(np.linalg.norm(shape.half_extents))
    else:
        reach = shape.radius
    inside = _inside(shape, SWEPT_INSET)
    samples = [(float(t), motion.at(float(t))) for t in list(motion.times[::stride]) + [motion.end]]
    centres = np.array([place.translation + place.rotation @ shape.com for _, place in samples])
    # Only the set's Gaussians within reach of the path's box can be near a sample: a big set
    # is searched once, not at every sample.
    lo, hi = centres.min(axis=0) - reach, centres.max(axis=0) + reach
    above = above[np.all((above >= lo) & (above <= hi), axis=1)]
    hits = []
    for (t, place), centre in zip(samples, centres):
        near = above[np.linalg.norm(above - centre, axis=1) < reach]
        if len(near):
            count = int(inside((near - place.translation) @ place.rotation).sum())
            if count >= SWEPT_COUNT:
                hits.append((count, float(t), centre))
    if not hits:
        return []
    count, t, centre = max(hits, key=lambda h: h[0])
    where = ", ".join(f"{v:.2f}" for v in centre)
    return [f"passes through the set from t = {hits[0][1]:.2f} s ({count} of the set's Gaussians above its floor "
            f"inside it at t = {t:.2f} s, at [{where}] m): its collider does not hold what the set shows there "
            f"(give it collider: mesh, or drop it where it lands clear)"]


def tilt_notes(collider: Collider) -> list[str]:
    """A collider whose ground plane leans more than MAX_TILT degrees from the film's +z:
    gravity is -z, so bodies slide and roll downhill on it."""
    if collider.plane is None:
        return []
    tilt = math.degrees(math.acos(min(1.0, abs(float(collider.plane.normal[2])))))
    if tilt <= MAX_TILT:
        return []
    return [f"falls onto a set whose floor tilts {tilt:.1f} degrees from the film's up (+z); gravity is -z, so "
            f"bodies slide and roll downhill on it: level the set (its capture's up, or `splatfilm ground`)"]


def simulator_version() -> int | None:
    """pybullet's API version, or None where pybullet is not installed."""
    try:
        pb = _pybullet()
    except ImportError:
        return None
    return pb.getAPIVersion()


def _pybullet():
    """The pybullet module. Its C extension prints a build-time banner to stderr when first
    imported, which would stand before a command's one-line error (and on every run that
    simulates), so that first import runs with stderr pointed at /dev/null."""
    if "pybullet" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
                import pybullet  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    import pybullet  # already loaded: the plain import honours a module blocked in sys.modules

    return pybullet


def physics_key(bodies: list[Body], movers: list[tuple[BodyShape, np.ndarray]] = ()) -> str:
    """sha256 of every input of one world's simulation: each body's spec, shape points and
    collider, in order, and each mover's shape and its poses at every step (`movers`: shape and
    [S,4,4] canonical -> world). The simulator's version is kept beside it in the bake
    (`bake_physics`), so a machine without pybullet can still find the bake."""
    parts = [{"spec": b.spec.to_dict(), "collider": b.collider.key(),
              "points": content_digest(np.ascontiguousarray(np.round(b.points, 9)).tobytes())} for b in bodies]
    # A box's extents do not say where it is in the mover's frame: its centre goes in too.
    moving = [{"shape": content_digest(np.round(shape.vertices if shape.vertices is not None else shape.half_extents, 9)),
               "com": np.round(shape.com, 9).tolist(),
               "poses": content_digest(np.ascontiguousarray(np.round(poses, 9)))} for shape, poses in movers]
    return content_digest({"version": _CACHE_VERSION, "step_hz": STEP_HZ, "substeps": SUBSTEPS,
                           "contact_breaking": CONTACT_BREAKING, "gravity": GRAVITY, "bodies": parts, "movers": moving})


def bake_physics(bodies: list[Body], cache_dir: str | Path | None = None, movers: list[Mover] = ()) -> list[BakedMotion]:
    """The simulated motions of `bodies`, together in one world with the kinematic `movers`
    (simulate_world): read from `cache_dir`/physics-KEY.json when an earlier run baked the same
    inputs (with this machine's pybullet, or with any where pybullet is not installed), else
    simulated and written there (no cache_dir: always simulated). SplatfilmError without
    pybullet and without a bake."""
    if not bodies:
        return []
    simulator = simulator_version()
    kinematic = []
    if movers:
        t0, _, _, steps = world_steps([b.spec for b in bodies])
        for m in movers:
            poses = np.stack([m.place(t0 + k / STEP_HZ).matrix() for k in range(steps + 1)])
            kinematic.append((m.shape(t0), poses, m.place))
    cache = (CacheEntry.in_folder(cache_dir, "physics", physics_key(bodies, [(s, p) for s, p, _ in kinematic]))
             if cache_dir is not None else None)
    data = cache.lookup() if cache is not None else None
    if data is not None and simulator in (None, data.get("pybullet")):
        try:
            motions = [BakedMotion.from_dict(d) for d in data["motions"]]
            if len(motions) == len(bodies):
                return motions
        except (KeyError, TypeError, ValueError, SplatfilmError):
            pass  # a damaged cache file is simulated again and replaced
    if simulator is None:
        where = f"{cache.path} does not hold it" if cache is not None else "no bake was given"
        raise SplatfilmError(f"simulating needs pybullet (pip install pybullet), and {where}: bake it where "
                             "pybullet is installed (render the film there once) and bring its .splatfilm-cache")
    motions = simulate_world([(b.spec, b.shape, b.collider) for b in bodies],
                             [(shape, place) for shape, _, place in kinematic])
    if cache is not None:
        cache.store(pybullet=simulator, specs=[b.spec.to_dict() for b in bodies],
                    motions=[m.to_dict() for m in motions])
    return motions


class BodyError(SplatfilmError):
    """A SplatfilmError about body `index` of a physics_motions call (its collider, its
    points), so that a film script names that body's field."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def physics_motions(bodies: list[tuple[PhysicsSpec, Asset, Asset | None]], movers: list[Asset] = (),
                    cache_dir: str | Path | None = None, mesh_settings: MeshSettings | None = None,
                    progress: bool = True) -> list[BakedMotion]:
    """The motions of every (spec, asset, set asset) of `bodies`, simulated in one world
    (bake_physics), each colliding with its set asset (its mesh or ground plane as spec.collider
    says; None: the floor z = 0), with the others, and with the kinematic `movers` (the other
    colliding assets, moving by their own motion or standing, as placed by `Asset.place_at`). A
    contact shadow of a body is laid on the mesh it collides with (film.shadow), where it has one;
    on the movers' hulls by `lay_prop_shadows`, as every shadowed asset's (a film script does both).
    Each motion's notes: the rest check, where it rests against its set as the set looks (and on
    the other bodies and the movers), what its path passes through, and its set's tilt. BodyError
    names the body a collider failed for."""
    inputs, placements = [], []
    for i, (spec, asset, scene) in enumerate(bodies):
        try:
            points = body_points(asset.gaussians, asset.local)
            placement = scene.world_transform(spec.start) if scene is not None else Similarity()
            # A set changed by the film (edits, clean) collides as it is shown, not as its file stores
            # it: its digest is then not the file's (meshing.collision_mesh tells them apart).
            collider = scene_collider(spec.collider, scene.source if scene is not None else None, placement,
                                      mesh_settings, progress, gaussians=scene.gaussians if scene is not None else None,
                                      variant=scene.digest if scene is not None else None,
                                      rasterize_mode=scene.rasterize_mode if scene is not None else None)
        except SplatfilmError as e:
            raise BodyError(str(e), i) from None
        inputs.append(Body(spec, points, collider))
        placements.append(placement)
    kinematic = [Mover(body_points(m.gaussians, m.local), m.place_at) for m in movers]
    motions = bake_physics(inputs, cache_dir, kinematic)
    rests = [m.at(m.end).apply(b.points) for m, b in zip(motions, inputs)]
    for i, ((spec, asset, scene), body, motion) in enumerate(zip(bodies, inputs, motions)):
        if asset.shadow is not None and body.collider.vertices is not None:
            # On the surface the body rests on, not the set's centres, which can lie a few cm off it or show none.
            # The set's centres are then never read (the mesh answers): not kept, not re-projected.
            asset.shadow = dataclasses.replace(asset.shadow, mesh=body.collider.vertices[body.collider.triangles],
                                               surface=None)
        notes = list(motion.notes) + tilt_notes(body.collider)
        if scene is not None and len(scene.gaussians):
            shown = set_surface(scene.gaussians, placements[i])
            # Another body it lies on is a surface too, and so is a mover (a table standing on the set).
            others = [r for j, r in enumerate(rests) if j != i]
            others += [m.place(motion.end).apply(m.points) for m in kinematic]
            notes += surface_notes(motion, body.points, np.concatenate([shown] + others))
            notes += swept_notes(motion, body.shape, shown, body.collider.plane)
        motion.notes = notes
    return motions


def lay_prop_shadows(assets: list[Asset], movers: list[Asset], t0: float) -> None:
    """Give the contact shadow of every asset of `assets` that has one the hulls of the colliding
    props `movers` other than itself (film.shadow: ContactShadow.props), where each stands at a
    frame's time: a body at rest on a table prop, a cup keyed onto it, a character standing on a
    box have their shadows on its top, not on the floor under it. The hulls are the ones the
    simulated bodies meet (`Mover.shape` in a world whose clock starts at t0, s: the bodies'
    `world_steps`, or 0 without bodies), so a body's shadow and its contact agree. A prop of
    fewer than 4 Gaussians has no hull (a film without bodies never asked for one): none of the
    shadows lie on it."""
    shadowed = [a for a in assets if a.shadow is not None]
    if not shadowed or not any(m is not a for m in movers for a in shadowed):
        return
    hulls = []
    for m in movers:
        try:
            hulls.append((m, Mover(body_points(m.gaussians, m.local), m.place_at).shape(t0).triangles(), m.place_at))
        except SplatfilmError:
            continue
    for a in shadowed:
        props = [(tris, place) for m, tris, place in hulls if m is not a]
        if props:
            a.shadow = dataclasses.replace(a.shadow, props=props)


def physics_motion(spec: PhysicsSpec, asset: Asset, scene: Asset | None, cache_dir: str | Path | None = None,
                   mesh_settings: MeshSettings | None = None, progress: bool = True) -> BakedMotion:
    """The motion of `asset` alone under `spec` against `scene` (physics_motions)."""
    return physics_motions([(spec, asset, scene)], [], cache_dir, mesh_settings, progress)[0]
