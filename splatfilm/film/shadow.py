"""Contact shadows: a soft dark patch on the surface under an asset that stands on it, so a
character or prop inserted into a captured set sits on the floor (or the table) instead of
hovering.

The patch is splats, not a light: a 9 x 9 grid of flat black Gaussians on the ground plane
around the point under the asset's base, their opacities falling off as a Gaussian of the
distance (sigma = the asset's footprint radius), so they composite over the floor like any
splat. Splats are sorted by their centres' depth, so a patch lying on the floor would
interleave with the floor's own splats and lose half its darkening: each splat is drawn 5 cm
toward the frame's camera along its line of sight and shrunk by the same perspective factor,
which keeps its footprint on screen and sorts it just in front of the floor. Small splats
rather than one big one, for the same reason. The patch fades as the base rises above the
surface (gone at three footprint radii), so a prop dropped from above gains its shadow as it
lands.

The surface is the ground plane unless the set shows a raised one under the asset (a table
top, a step): among the set's opaque Gaussian centres within the footprint radius of the point
under the asset's base, and no higher than SURFACE_REACH above its lowest part (things above
it, a table top over a crate that rolled under it, do not count), the highest band of heights
SURFACE_BAND thick whose upper half spreads across the footprint (at least a radius along both
of the plane's axes, SURFACE_POINTS centres or more) is that surface, at the SURFACE_PERCENTILE of its
centres' heights (a surface's splats lie in and under it: the top of the band is its face).
A table leg or a plant's stem beside a bouncing prop is a column of centres, not a surface, and
a stray splat is too few. Higher than SURFACE_SNAP above the ground plane, the patch lies on a
plane parallel to the ground at that height; lower, on the ground plane itself, so a floor's
own bumps do not move it and a frame on the floor keeps the key it had (World.signature adds
the height only where it is not 0).

A simulated body (film.physics) that collides with the set's mesh rests on that mesh, not on
the centres: on the demo set's table top the two differ by -1 to +2.7 cm from spot to spot,
and where the top's few large splats leave fewer than SURFACE_POINTS centres in the footprint
the centres show no surface at all, so a crate resting there had its shadow put on the floor
0.75 m below, faded to nothing. Such a body's shadow lies on its collider (`mesh`, which
physics_motion gives it): the highest point of the mesh straight under the body's lowest part
(`contact_points`) no higher than SURFACE_REACH above it, the surface physics holds it up with,
so shadow and contact agree; SURFACE_SNAP and the ground plane as above (the collider's plane
closes the mesh's holes). Under its lowest part, not under its base: a crate come to rest on
its side has its base at an edge, and the mesh within a footprint of that (a globe's foot
beside it, the floor past the table's edge) is not what holds it up. The patch is still drawn
toward the camera, which keeps it over the set's own splats there (they lie within a
centimetre or two of the mesh).

The point the patch lies under is the asset's base (its canonical origin) while it stands
upright: the canonical frame centres the base on its footprint. A tipped rigid body (a simulated
one tumbling, or at rest on its side or upside down: World.tipped) touches with another part,
and its base is anywhere: a 30 cm crate dropped on the demo set's floor and at rest on its side had
its base 15 cm off the middle of the face it lay on, and the patch at that face's edge, half of it on
bare floor. Its patch lies under the middle of its lowest part (`contact_centre`): its centres
weighted by nearness to the surface, 1 at its lowest falling to 0 a footprint radius above, so
at rest on a face the middle of that face, and while it rocks from edge to edge the patch stays
under it instead of jumping from one edge's strip to the other's (CONTACT_BAND's points do). A
character's lowest part is whichever foot is down; its patch stays under its base.

An asset also rests on the film's colliding props (a table standing on the floor, a keyed
cart: film.physics' kinematic bodies), which the set's centres and mesh do not show: a 0.3 m
crate at rest on a 0.75 m table prop, or a cup keyed onto its top, had its patch on the floor
under the table, faded to nothing. Every shadow knows their collision hulls, its own asset's
aside (`props`: each hull's triangles, as physics simulates it, and where the prop stands at a
world time; physics.lay_prop_shadows), placed at the frame's time and looked under the asset's
lowest part as a mesh is; the highest of those surfaces and the set's (mesh or centres) no
higher than SURFACE_REACH above that part, the nearest below it, is the one the patch lies on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from splatfilm.assets.ground import GroundPlane
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import Similarity, quat_from_rotation, rotation_between

_GRID = 9  # splats a side
_LIFT = 0.01  # metres off the plane
_TOWARD_CAMERA = 0.05  # metres each splat is drawn toward the camera (at most half its distance)
_FADE_RADII = 3.0  # the shadow is gone when the base is this many radii above the ground
# The surface under an asset (module docstring), in metres: set centres up to SURFACE_REACH above
# its lowest part count (one resting on a surface sits among that surface's splats, which spread
# a few centimetres: the demo set's table top, 0.72-0.78 m); a surface is a band SURFACE_BAND
# thick of at least SURFACE_POINTS centres, at that percentile of their heights (0.755 m there, where
# the prop rests); one less than SURFACE_SNAP above the ground is the ground.
SURFACE_REACH = 0.03
SURFACE_BAND = 0.06
SURFACE_POINTS = 4
SURFACE_PERCENTILE = 90
SURFACE_SNAP = 0.05
# The body's lowest part, whose points a mesh surface is looked for under (m above its lowest
# point), and at most how many of them.
CONTACT_BAND = 0.01
CONTACT_POINTS = 64
# Of those, the ones touching the mesh: at most this much further from it than the closest (m).
TOUCH = 0.002


@dataclass
class ContactShadow:
    """plane: the world ground plane it lies on; radius: the footprint radius (m), the falloff
    sigma; opacity: the darkening at its centre when the asset stands on the ground; surface:
    the set's opaque Gaussian centres [N,3] (world, `set_surface`) whose raised surfaces (a
    table top) it lies on where the asset stands on one, or None: the ground plane only; mesh:
    the triangles [F,3,3] (world, metres: three corners each) of the collider a simulated body
    rests on, which it lies on in place of `surface` (module docstring), or None; props: the
    colliding props the asset may rest on besides its set (module docstring), each the
    triangles [F,3,3] of its collision hull (metres, its canonical frame, scaled) and its
    placement at a world time t (s): canonical frame -> world, of which its rotation and
    translation place the hull (as physics moves it)."""

    plane: GroundPlane
    radius: float
    opacity: float = 0.5
    surface: np.ndarray | None = field(default=None, repr=False)
    mesh: np.ndarray | None = field(default=None, repr=False)
    props: list[tuple[np.ndarray, Callable[[float], Similarity]]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._found: dict[tuple[bytes, float | None, bytes | None, float | None], float] = {}
        self._to_patch = rotation_between([0.0, 0.0, 1.0], self.plane.normal)
        if self.mesh is not None:
            tris = np.asarray(self.mesh, dtype=np.float64).reshape(-1, 3, 3)
            self.mesh = tris
            self._mesh_tris = self._triangles(tris)
        self.props = [(np.asarray(tris, dtype=np.float64).reshape(-1, 3, 3), place) for tris, place in self.props]
        if self.surface is not None:
            pts = np.asarray(self.surface, dtype=np.float64).reshape(-1, 3)
            self.surface = pts
            # Heights above the plane and where the points lie along it, once for every frame.
            self._heights = self.plane.signed_distance(pts)
            self._along = (pts - self._heights[:, None] * self.plane.normal) @ self._to_patch

    def key(self) -> str:
        """What the patch depends on besides the asset's pose, the camera and the surface under
        it (World.signature adds `surface_height` where it is not the ground plane, and the
        point a drawn patch lies under where that is not the base: World.tipped)."""
        return f"shadow {self.plane.normal.round(9).tolist()} {self.plane.offset:.9f} {self.radius:.9f} {self.opacity:.9f}"

    def surface_height(self, base: np.ndarray, lowest: float | None = None, under: np.ndarray | None = None,
                       t: float | None = None) -> float:
        """Height (m) above the ground plane of the surface the patch under `base` [3] (the
        asset's canonical origin in the world) lies on: 0 for the ground plane itself, else a
        raised surface of the set under it (module docstring). lowest: as for `gaussians`; the
        surface is looked for below the base or, when lower, below the asset's lowest part (a
        prop that landed on its side under a table rests on the floor, not on the shelf its
        base is level with). Never higher with `lowest` than without it. With a `mesh`, its
        surface under `under` [K,3] (world: `contact_points`; None: under the base alone);
        else the set's centres', where `under` does not count. t: the world time (s) at which
        the `props` stand where they are looked for; with props and a t, the highest of their
        hulls' surfaces under `under` (found as on a mesh) and the set's."""
        props = self.props if t is not None else []
        if self.mesh is None and (self.surface is None or len(self.surface) == 0) and not props:
            return 0.0
        base = np.asarray(base, dtype=np.float64)
        if self.mesh is None and not props:
            under = None
        elif under is not None:
            under = np.ascontiguousarray(under, dtype=np.float64).reshape(-1, 3)
        asked = (base.tobytes(), None if lowest is None else float(lowest), None if under is None else under.tobytes(),
                 float(t) if props else None)
        if asked not in self._found:
            if len(self._found) >= 4096:  # a long film's worth of frames need not stay
                self._found.clear()
            if under is not None and len(under):
                points = under
                bottom = float(self.plane.signed_distance(under).min()) if lowest is None else float(lowest)
            else:
                points = base[None]
                height = float(self.plane.signed_distance(base))
                bottom = height if lowest is None else min(height, float(lowest))
            placed = []
            for tris, place in props:
                where = place(float(t))
                placed.append(self._triangles(tris @ where.rotation.T + where.translation))
            if self.mesh is not None:
                self._found[asked] = self._mesh_height(points, bottom, [self._mesh_tris] + placed)
            else:
                on_props = self._mesh_height(points, bottom, placed) if placed else 0.0
                self._found[asked] = max(self._surface_height(base, lowest), on_props)
        return self._found[asked]

    def _triangles(self, tris: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Of triangles [F,3,3] (world): each corner's height above the plane [F,3] and where it
        lies along it [F,3,2], and each triangle's box along it (lowest, highest [F,2])."""
        heights = self.plane.signed_distance(tris.reshape(-1, 3)).reshape(-1, 3)
        along = (tris.reshape(-1, 3) @ self._to_patch)[:, :2].reshape(-1, 3, 2)
        return heights, along, along.min(axis=1), along.max(axis=1)

    def _mesh_height(self, points: np.ndarray, bottom: float,
                     meshes: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> float:
        """surface_height on the triangles of `meshes` (`_triangles` of each: the collider
        `mesh`, the props' hulls) under `points` [K,3] (world) whose lowest lies `bottom` m above
        the plane: under each, the highest point of them no higher than SURFACE_REACH above that
        (none: the plane's 0); where the body touches, the median of those under the points
        closest to theirs (within TOUCH of the closest)."""
        tri_heights, tri_along, tri_lo, tri_hi = (np.concatenate(a) for a in zip(*meshes))
        reach = bottom + SURFACE_REACH
        rays = (points @ self._to_patch)[:, :2]  # [P,2]: straight down the plane's normal from each
        near = (np.all(tri_hi >= rays.min(axis=0), axis=1) & np.all(tri_lo <= rays.max(axis=0), axis=1)
                & (tri_heights.min(axis=1) <= reach))
        tri, h = tri_along[near], tri_heights[near]
        under = np.zeros(len(points))
        if len(tri):
            # Barycentric coordinates of every ray in every triangle [F,P]; edge-on triangles are missed.
            a, b, c = tri[:, 0, None, :], tri[:, 1, None, :], tri[:, 2, None, :]
            p = rays[None]
            det = (b[..., 1] - c[..., 1]) * (a[..., 0] - c[..., 0]) + (c[..., 0] - b[..., 0]) * (a[..., 1] - c[..., 1])
            flat = np.abs(det) < 1e-12
            det = np.where(flat, 1.0, det)
            l1 = ((b[..., 1] - c[..., 1]) * (p[..., 0] - c[..., 0]) + (c[..., 0] - b[..., 0]) * (p[..., 1] - c[..., 1])) / det
            l2 = ((c[..., 1] - a[..., 1]) * (p[..., 0] - c[..., 0]) + (a[..., 0] - c[..., 0]) * (p[..., 1] - c[..., 1])) / det
            l3 = 1.0 - l1 - l2
            at = l1 * h[:, 0, None] + l2 * h[:, 1, None] + l3 * h[:, 2, None]
            hit = ~flat & (l1 >= 0) & (l2 >= 0) & (l3 >= 0) & (at <= reach)
            under = np.maximum(np.where(hit, at, 0.0).max(axis=0), 0.0)
        gaps = self.plane.signed_distance(points) - under
        top = float(np.median(under[gaps <= gaps.min() + TOUCH]))
        return top if top > SURFACE_SNAP else 0.0

    def _surface_height(self, base: np.ndarray, lowest: float | None) -> float:
        height = float(self.plane.signed_distance(base))
        bottom = height if lowest is None else min(height, float(lowest))
        # Where the points lie along the plane: x, y in the patch's frame (z is the plane's offset).
        foot = (base - height * self.plane.normal) @ self._to_patch
        near = np.sum((self._along[:, :2] - foot[:2]) ** 2, axis=1) <= self.radius**2
        keep = near & (self._heights <= bottom + SURFACE_REACH)
        heights, flat = self._heights[keep], self._along[keep, :2]
        order = np.argsort(heights, kind="stable")
        heights, flat = heights[order], flat[order]
        # From the top down, the first band that is a surface. A higher top only drops centres
        # below and adds ones above, so the height found never falls as `bottom` rises.
        for j in range(len(heights) - 1, SURFACE_POINTS - 2, -1):
            if heights[j] <= SURFACE_SNAP:
                break
            i = int(np.searchsorted(heights, heights[j] - SURFACE_BAND, side="left"))
            # Its upper half must spread: a band reaching down to the floor spreads through the floor.
            k = int(np.searchsorted(heights, heights[j] - SURFACE_BAND / 2, side="left"))
            if j + 1 - k >= SURFACE_POINTS and np.all(np.ptp(flat[k : j + 1], axis=0) >= self.radius):
                top = float(np.percentile(heights[i : j + 1], SURFACE_PERCENTILE))
                return top if top > SURFACE_SNAP else 0.0
        return 0.0

    def strength(self, base: np.ndarray, lowest: float | None = None, under: np.ndarray | None = None,
                 t: float | None = None) -> float:
        """The darkening at the centre of the patch `gaussians` lays with these arguments: up to
        `opacity`, less as the asset rises off the surface; 0 where it draws none."""
        return self._lay(base, lowest, under, t)[2]

    def _lay(self, base: np.ndarray, lowest: float | None, under: np.ndarray | None,
             t: float | None) -> tuple[GroundPlane, float, float]:
        """The plane the patch lies on, the height (m) of `base` above it and the patch's
        strength (0: none), for `gaussians`' arguments."""
        n = self.plane.normal
        lift = self.surface_height(base, lowest, under, t)
        if lift:  # a raised surface: the ground plane lifted to it
            plane = GroundPlane(n, self.plane.offset - lift, self.plane.inliers)
            lowest = None if lowest is None else float(lowest) - lift
        else:
            plane = self.plane
        height = float(plane.signed_distance(base))
        above = height if lowest is None else min(height, max(0.0, float(lowest)))
        strength = self.opacity * float(np.clip(1.0 - above / (_FADE_RADII * self.radius), 0.0, 1.0))
        return plane, height, (strength if strength > 1e-3 else 0.0)

    def gaussians(self, base: np.ndarray, camera: np.ndarray | None = None,
                  lowest: float | None = None, under: np.ndarray | None = None,
                  t: float | None = None) -> Gaussians | None:
        """The patch [81 Gaussians, world frame, SH degree 0] under `base` [3] (world: the
        asset's canonical origin, or for a tipped rigid one the middle of its lowest part,
        `contact_centre`; World.shadow_patch says which), on the surface under it
        (`surface_height`), as seen from `camera` [3] (its centre; None: left on the surface),
        or None once the asset is too high to cast one. It fades with the height above that
        surface of `base` or, when lower, of `lowest` (m above the ground plane: the asset's
        lowest part; a prop that lands on its side or upside down rests on another part than
        its base); under, t: as for `surface_height`."""
        n = self.plane.normal
        _, height, strength = self._lay(base, lowest, under, t)
        if not strength:
            return None
        R = self._to_patch  # the patch's z -> the plane's normal
        spacing = self.radius / 2
        u = (np.arange(_GRID) - (_GRID - 1) / 2) * spacing
        a, b = np.meshgrid(u, u)
        local = np.c_[a.ravel(), b.ravel(), np.zeros(a.size)]
        foot = base - height * n  # the point under the base, on the surface
        means = foot + _LIFT * n + local @ R.T
        sigma = np.full(len(means), 0.6 * spacing)
        if camera is not None:
            to_cam = np.asarray(camera, dtype=np.float64) - means
            dist = np.linalg.norm(to_cam, axis=1, keepdims=True)
            pull = np.minimum(_TOWARD_CAMERA, 0.5 * dist)
            means = means + pull * to_cam / np.maximum(dist, 1e-9)
            sigma = sigma * (1.0 - pull[:, 0] / np.maximum(dist[:, 0], 1e-9))
        # Overlapping splats at this spacing and sigma add up to about 2.26x one splat's peak.
        falloff = np.exp(-np.sum(local**2, axis=1) / (2 * self.radius**2))
        alphas = np.clip(strength * falloff / 2.26, 0.0, 0.99)
        t = lambda x: torch.tensor(np.ascontiguousarray(x), dtype=torch.float32)  # noqa: E731
        quat = np.tile(quat_from_rotation(R), (len(means), 1))
        scales = np.c_[sigma, sigma, np.full(len(means), 1e-3)]
        return Gaussians.from_activated(t(means), t(quat), t(scales), t(alphas), colors=t(np.zeros((len(means), 3))))


def set_surface(g: Gaussians, placement: Similarity) -> np.ndarray:
    """The centres [N,3] (world, metres) of a set's opaque Gaussians (opacity >= 0.5) `g`,
    placed by `placement` (its asset frame -> world): the surfaces a contact shadow may lie on
    and a simulated body rests against as the set looks."""
    with torch.no_grad():
        opaque = (g.activated_opacities >= 0.5).cpu().numpy().reshape(-1)
        return placement.apply(g.means.detach().cpu().double().numpy()[opaque])


def _body_points(g: Gaussians) -> np.ndarray:
    """The centres [N,3] of `g` that count for where it touches: its opaque Gaussians' (all
    of them when fewer than 10 are opaque)."""
    # Masked in numpy: torch's boolean indexing on a busy CPU took 15 ms for 6,000 rows, every frame.
    opaque = g.activated_opacities.detach().cpu().numpy().reshape(-1) > 0.5
    means = g.means.detach().double().cpu().numpy()
    return means[opaque] if int(opaque.sum()) >= 10 else means


def lowest_point(g: Gaussians, shadow: ContactShadow) -> float:
    """Height (m) above `shadow`'s plane of the lowest part of `g` (an asset placed in the
    world): the 1st percentile of its opaque Gaussians' distances to the plane, so a stray
    splat below does not count."""
    means = _body_points(g)
    if len(means) == 0:
        return float("inf")
    return float(np.percentile(shadow.plane.signed_distance(means), 1))


def contact_points(g: Gaussians, shadow: ContactShadow, lowest: float) -> np.ndarray:
    """The lowest part of `g` (an asset placed in the world) [K,3] (world, m): its opaque
    Gaussians' centres at most CONTACT_BAND above `lowest` (lowest_point's height above
    `shadow`'s plane), at most CONTACT_POINTS of them (an even subsample), where it touches
    what holds it up; all its centres' lowest when none is opaque."""
    means = _body_points(g)
    if len(means) == 0:
        return np.zeros((0, 3))
    heights = shadow.plane.signed_distance(means)
    low = means[heights <= max(lowest, float(heights.min())) + CONTACT_BAND]
    if len(low) > CONTACT_POINTS:
        low = low[np.linspace(0, len(low) - 1, CONTACT_POINTS).astype(np.int64)]
    return low


def contact_centre(g: Gaussians, shadow: ContactShadow, lowest: float) -> np.ndarray:
    """The point [3] (world, m) in the middle of the lowest part of `g` (an asset placed in the
    world), at `lowest` m above `shadow`'s plane (lowest_point): the mean of its opaque
    Gaussians' centres weighted by how near the plane they are, 1 at `lowest` falling to 0 a
    footprint radius above it (module docstring). The origin [3] when it has none."""
    means = _body_points(g)
    if len(means) == 0:
        return np.zeros(3)
    heights = shadow.plane.signed_distance(means)
    # At least its centres at or below `lowest` (lowest_point: 1% of them) weigh 1.
    weights = np.clip(1.0 - (heights - lowest) / shadow.radius, 0.0, 1.0)
    centre = weights @ means / weights.sum()
    return centre - (float(shadow.plane.signed_distance(centre)) - lowest) * shadow.plane.normal
