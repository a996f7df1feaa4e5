"""Physics-driven motion: a prop or character dropped, thrown, rolled or knocked over by a
rigid-body simulation (pybullet, DIRECT mode, CPU) instead of keyframes.

The moving body is a convex hull (or a box, or a sphere) around the asset's opaque Gaussian
centres in its canonical frame; the static collider is the scene's mesh (`meshing.collision_mesh`,
cached beside the scene) or its ground plane. The simulation runs at a fixed 240 Hz step (each
solved in 8 substeps) under gravity along the film world's -z (9.81 m/s^2), and the pose of the
asset's canonical origin is sampled every 1/fps s and baked into a `BakedMotion`, which
`.at(t)` interpolates like
`KeyedMotion` / `PathWalk`. Trajectories are cached as JSON keyed by a hash of every input, so
a film renders the same frames on every run and machine. A bake records the pybullet version
that made it: a machine with another version simulates again, and one without pybullet (a
render node) renders the bake it is given, as a farm renders a baked simulation cache.

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
"""

from __future__ import annotations

import dataclasses
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
_CACHE_VERSION = 3  # 2: the rest check's notes are cached with the motion; 3: the simulator's version beside the key
# The rest check: a body further than this above the surface under it floats (m); one moving
# faster than this at the end has not settled (m/s).
REST_GAP = 0.03
REST_SPEED = 0.05


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
    from splatfilm.assets.sidecar import sidecar_up
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
        return BodyShape("sphere", centre, radius=max(float((hi - lo).max()) / 2, 5e-4))
    if kind == "hull":
        try:
            hull = ConvexHull(pts)
            verts = pts[hull.vertices]
            return BodyShape("hull", _hull_centroid(pts, hull.simplices), vertices=verts)
        except QhullError:
            pass  # flat: fall through to a thin box
    return BodyShape("box", centre, half_extents=np.maximum((hi - lo) / 2, 5e-4))


# ---- simulation --------------------------------------------------------------------------------


def simulate(spec: PhysicsSpec, shape: BodyShape, collider: Collider, fps: float) -> BakedMotion:
    """Run the simulation at STEP_HZ and sample the canonical origin's pose every 1/fps s from
    spec.start to spec.start + spec.duration (interpolated between steps)."""
    pb = _pybullet()

    if not fps > 0:
        raise SplatfilmError(f"physics needs a positive sampling rate, got {fps}")
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
        # The set: friction and restitution 1, rolling and spinning friction 0, so the prop's
        # values are the contact's: Bullet multiplies friction and restitution, and combines
        # rolling friction as r0 * f1 + f0 * r1.
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
        for static in statics:
            pb.changeDynamics(static, -1, lateralFriction=1.0, restitution=1.0, rollingFriction=0.0,
                              spinningFriction=0.0, physicsClientId=cid)

        # The body's frame is its centre of mass (pybullet reports and sets that pose).
        if shape.kind == "hull":
            body_shape_id = pb.createCollisionShape(pb.GEOM_MESH, vertices=(shape.vertices - shape.com).tolist(),
                                                    physicsClientId=cid)
        elif shape.kind == "box":
            body_shape_id = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=shape.half_extents.tolist(),
                                                    physicsClientId=cid)
        else:
            body_shape_id = pb.createCollisionShape(pb.GEOM_SPHERE, radius=shape.radius, physicsClientId=cid)
        R0 = spec.rotation
        com0 = spec.position + R0 @ shape.com
        q0 = quat_from_rotation(R0)
        body = pb.createMultiBody(spec.mass, body_shape_id, basePosition=com0.tolist(),
                                  baseOrientation=[q0[1], q0[2], q0[3], q0[0]], physicsClientId=cid)
        pb.changeDynamics(body, -1, lateralFriction=spec.friction, restitution=spec.restitution,
                          rollingFriction=spec.rolling_friction, spinningFriction=spec.rolling_friction,
                          physicsClientId=cid)
        # Bullet puts slow bodies to sleep, which can freeze a box balanced on an edge mid-fall.
        pb.changeDynamics(body, -1, activationState=pb.ACTIVATION_STATE_DISABLE_SLEEPING, physicsClientId=cid)
        pb.resetBaseVelocity(body, spec.velocity.tolist(), spec.angular_velocity.tolist(), physicsClientId=cid)

        steps = int(math.ceil(spec.duration * STEP_HZ - 1e-9))
        com = np.empty((steps + 1, 3))
        quat = np.empty((steps + 1, 4))  # (w, x, y, z)
        for k in range(steps + 1):
            if k:
                pb.stepSimulation(physicsClientId=cid)
            p, q = pb.getBasePositionAndOrientation(body, physicsClientId=cid)
            com[k], quat[k] = p, (q[3], q[0], q[1], q[2])
        pb.removeBody(body, physicsClientId=cid)  # so the rays below see the set, not the body
        notes = _rest_notes(shape, com, quat, collider, spec, cid)
    finally:
        pb.disconnect(cid)

    # Sample every 1/fps s; between two steps, interpolate.
    count = int(math.floor(spec.duration * fps + 1e-9)) + 1
    rel = np.arange(count) / fps
    if rel[-1] < spec.duration - 1e-9:
        rel = np.append(rel, spec.duration)
    positions, quats = np.empty((len(rel), 3)), np.empty((len(rel), 4))
    for j, s in enumerate(rel):
        x = min(s * STEP_HZ, steps)
        k = min(int(math.floor(x)), steps - 1) if steps else 0
        u = x - k if steps else 0.0
        q = quat_slerp(quat[k], quat[min(k + 1, steps)], u)
        R = rotation_from_quat(q)
        c = (1 - u) * com[k] + u * com[min(k + 1, steps)]
        positions[j] = c - R @ shape.com  # the canonical origin, not the centre of mass
        quats[j] = q if q[0] >= 0 else -q
    return BakedMotion(spec.start + rel, positions, quats, spec.scale, notes)


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


def physics_key(spec: PhysicsSpec, points: np.ndarray, collider: Collider, fps: float) -> str:
    """sha256 of every input of a simulation. The simulator's version is kept beside it in the
    bake (`bake_physics`), so a machine without pybullet can still find the bake."""
    return content_digest({"version": _CACHE_VERSION, "step_hz": STEP_HZ,
                           "substeps": SUBSTEPS, "contact_breaking": CONTACT_BREAKING, "gravity": GRAVITY,
                           "spec": spec.to_dict(), "fps": float(fps),
                           "collider": collider.key()}, np.ascontiguousarray(np.round(points, 9)).tobytes())


def bake_physics(spec: PhysicsSpec, points: np.ndarray, collider: Collider, fps: float,
                 cache_dir: str | Path | None = None) -> BakedMotion:
    """The simulated motion of a body around canonical-frame `points` [M,3]: read from
    `cache_dir`/physics-KEY.json when an earlier run baked the same inputs (with this machine's
    pybullet, or with any where pybullet is not installed), else simulated and written there
    (no cache_dir: always simulated). SplatfilmError without pybullet and without a bake."""
    simulator = simulator_version()
    cache = (CacheEntry.in_folder(cache_dir, "physics", physics_key(spec, points, collider, fps))
             if cache_dir is not None else None)
    data = cache.lookup() if cache is not None else None
    if data is not None and simulator in (None, data.get("pybullet")):
        try:
            return BakedMotion.from_dict(data["motion"])
        except (KeyError, TypeError, ValueError, SplatfilmError):
            pass  # a damaged cache file is simulated again and replaced
    if simulator is None:
        where = f"{cache.path} does not hold it" if cache is not None else "no bake was given"
        raise SplatfilmError(f"simulating needs pybullet (pip install pybullet), and {where}: bake it where "
                             "pybullet is installed (render the film there once) and bring its .splatfilm-cache")
    motion = simulate(spec, body_shape(points, spec.shape, spec.scale), collider, fps)
    if cache is not None:
        cache.store(pybullet=simulator, spec=spec.to_dict(), motion=motion.to_dict())
    return motion


def physics_motion(spec: PhysicsSpec, asset: Asset, scene: Asset | None, fps: float, cache_dir: str | Path | None,
                   mesh_settings: MeshSettings | None = None, progress: bool = True) -> BakedMotion:
    """The motion of `asset` under `spec`, colliding with the set asset `scene` (its mesh or
    ground plane as spec.collider says; None: the floor z = 0), sampled at `fps`. A contact
    shadow of `asset` is laid on the mesh it collides with (film.shadow), where it has one."""
    points = body_points(asset.gaussians, asset.local)
    placement = scene.world_transform(spec.start) if scene is not None else Similarity()
    # A set changed by the film (edits, clean) collides as it is shown, not as its file stores
    # it: its digest is then not the file's (meshing.collision_mesh tells them apart).
    collider = scene_collider(spec.collider, scene.source if scene is not None else None, placement,
                              mesh_settings, progress, gaussians=scene.gaussians if scene is not None else None,
                              variant=scene.digest if scene is not None else None,
                              rasterize_mode=scene.rasterize_mode if scene is not None else None)
    motion = bake_physics(spec, points, collider, fps, cache_dir)
    if asset.shadow is not None and collider.vertices is not None:
        # On the surface the body rests on, not the set's centres, which can lie a few cm off it or show none.
        # The set's centres are then never read (the mesh answers): not kept, not re-projected.
        asset.shadow = dataclasses.replace(asset.shadow, mesh=collider.vertices[collider.triangles], surface=None)
    if scene is not None and len(scene.gaussians):
        motion.notes = motion.notes + surface_notes(motion, points, set_surface(scene.gaussians, placement))
    return motion
