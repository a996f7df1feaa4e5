"""A scene's ground plane, estimated from its Gaussians, and placing things on it.

The plane is found by RANSAC plane segmentation (open3d's `segment_plane`) on the centres of
the opaque Gaussians: planes are peeled off one at a time, the near-horizontal ones (normal
within `max_tilt_deg` of the capture's up) that are large (at least `min_relative_size` of the
largest such plane) are candidates, and the lowest candidate along up is the ground, so a
table top or a shelf, however big, is not taken for the floor. The plane is then refitted by
least squares to its inliers.

A plane is n . x + d = 0 with n a unit normal pointing up (towards the side the scene stands
on) and d in the scene's units: points above it have n . x + d > 0. The asset sidecar keeps
it as `ground: {normal, offset, inliers}` (`offset` is d, `inliers` the fraction of the
opaque centres on the plane).

A scene fitted by structure from motion has no scale; `scale_from_camera_height` and
`scale_from_known_distance` measure one on its capture cameras (metres per scene unit), which
`ground_scene` records as the sidecar's frame.scale_to_metres beside the plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from splatfilm.assets.sidecar import Sidecar
from splatfilm.io.asset_files import capture_cameras_path, sidecar_path
from splatfilm.assets.asset_frame import asset_up, sidecar_up, stand_on_base
from splatfilm import report
from splatfilm.errors import SplatfilmError
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import WORLD_UP, Similarity, rotation_between, unit_vector, yaw_rotation


@dataclass
class GroundPlane:
    """n . x + d = 0. normal [3] unit, pointing up; offset d (scene units); inliers: the
    fraction of the opaque Gaussian centres within the RANSAC distance of the plane."""

    normal: np.ndarray
    offset: float
    inliers: float = 1.0

    def __post_init__(self) -> None:
        n = np.asarray(self.normal, dtype=np.float64).reshape(3)
        length = float(np.linalg.norm(n))
        if not np.isfinite(length) or length < 1e-9:
            raise SplatfilmError(f"a ground plane needs a non-zero normal, got {n.tolist()}")
        # Keep n . x + d = 0 describing the same plane while n becomes unit length.
        self.normal, self.offset, self.inliers = n / length, float(self.offset) / length, float(self.inliers)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance [...] of points [...,3] above the plane (negative below)."""
        return np.asarray(points, dtype=np.float64) @ self.normal + self.offset

    def transformed(self, sim: Similarity) -> "GroundPlane":
        """The same plane after x -> s R x + t (e.g. a scene's placement in a film world)."""
        n = sim.rotation @ self.normal
        # A point on the plane moves to s R p + t; the new offset keeps it on the plane.
        p = sim.apply(-self.offset * self.normal)
        return GroundPlane(n, -float(n @ p), self.inliers)

    def to_dict(self) -> dict:
        """The sidecar's `ground` record: normal (rounded to 1e-9), offset (1e-9), inliers (1e-6)."""
        return {"normal": [round(float(v), 9) for v in self.normal], "offset": round(self.offset, 9),
                "inliers": round(self.inliers, 6)}

    @staticmethod
    def from_dict(d: dict, source: str = "ground") -> "GroundPlane":
        """A plane from a `ground` record (`to_dict`'s); SplatfilmError naming `source` when a
        field is missing or not a number."""
        try:
            normal = np.array(d["normal"], dtype=np.float64)
            return GroundPlane(normal, float(d["offset"]), float(d.get("inliers", 1.0)))
        except (KeyError, TypeError, ValueError) as e:
            raise SplatfilmError(f"{source}: ground must be {{normal: [x, y, z], offset: d, inliers: f}} ({e})"
                                 ) from None


def _fit_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane (unit normal [3], d) through points [M,3]."""
    c = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - c, full_matrices=False)
    n = vt[-1]
    return n, -float(n @ c)


# Degrees a ground plane may lean from the given up, by default.
MAX_TILT_DEG = 20.0


def estimate_ground(
    gaussians: Gaussians,
    up: np.ndarray | None = None,
    *,
    min_opacity: float = 0.5,
    distance: float | None = None,
    max_tilt_deg: float = MAX_TILT_DEG,
    min_relative_size: float = 0.25,
    max_planes: int = 8,
    max_points: int = 30_000,
    seed: int = 0,
) -> GroundPlane:
    """The ground plane of a scene (in the scene's own frame and units).

    up [3]: the capture's up (default +z). distance: RANSAC inlier distance in scene units
    (default 0.4% of the opaque centres' bounding-box diagonal: 3 cm for an 8 m room).
    Candidates: planes within `max_tilt_deg` of up with at least `min_relative_size` times the
    inliers of the largest such plane; the lowest along up wins. Deterministic for a seed.
    Raises SplatfilmError when no near-horizontal plane is found.
    """
    from splatfilm.assets.open3d_loader import load_open3d

    if not 0.0 <= min_opacity < 1.0:
        raise SplatfilmError(f"min_opacity must be in [0, 1), got {min_opacity}")
    if distance is not None and not 0 < distance < float("inf"):
        raise SplatfilmError(f"distance must be > 0 scene units, got {distance}")
    if not 0.0 <= max_tilt_deg < 90.0:
        raise SplatfilmError(f"max_tilt_deg must be in [0, 90) degrees, got {max_tilt_deg}")
    o3d = load_open3d()
    up = WORLD_UP if up is None else unit_vector(up, "up")
    with torch.no_grad():
        keep = gaussians.activated_opacities >= min_opacity
        pts = gaussians.means[keep] if int(keep.sum()) >= 100 else gaussians.means
        pts = pts.detach().cpu().double().numpy()
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < 3:
        raise SplatfilmError(f"cannot find a ground plane in {len(pts)} Gaussian centres")
    rng = np.random.default_rng(seed)
    if len(pts) > max_points:  # RANSAC needs a sample, not every splat
        pts = pts[np.sort(rng.choice(len(pts), max_points, replace=False))]
    lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
    if distance is None:
        distance = max(0.004 * float(np.linalg.norm(hi - lo)), 1e-6)
    o3d.utility.random.seed(seed)

    cos_tilt = np.cos(np.radians(max_tilt_deg))
    remaining = np.arange(len(pts))
    candidates: list[tuple[np.ndarray, float, np.ndarray]] = []  # (normal, d, inlier indices)
    for _ in range(max_planes):
        if len(remaining) < max(3, 0.01 * len(pts)):
            break
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts[remaining]))
        _, idx = cloud.segment_plane(distance_threshold=distance, ransac_n=3, num_iterations=1000)
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) < 3:
            break
        inl = remaining[idx]
        n, d = _fit_plane(pts[inl])
        if n @ up < 0:
            n, d = -n, -d
        if n @ up >= cos_tilt:
            candidates.append((n, d, inl))
        remaining = np.delete(remaining, idx)
    if not candidates:
        raise SplatfilmError(f"no plane within {max_tilt_deg:g} degrees of up {np.round(up, 3).tolist()} "
                             f"among the {len(pts)} opaque Gaussian centres")
    biggest = max(len(c[2]) for c in candidates)
    large = [c for c in candidates if len(c[2]) >= min_relative_size * biggest]
    # Height along up of each plane, measured at its inliers' centroid.
    n, d, inl = min(large, key=lambda c: float(pts[c[2]].mean(axis=0) @ up))
    # Count every centre near the final plane, not only those RANSAC took first.
    on_plane = np.abs(pts @ n + d) <= distance
    return GroundPlane(n, d, float(on_plane.mean()))


def ground_height(plane: GroundPlane, x: float | np.ndarray, y: float | np.ndarray) -> float | np.ndarray:
    """z of the plane above (x, y) [...] (a z-up frame). Raises for a vertical plane."""
    n = plane.normal
    if abs(n[2]) < 1e-6:
        raise SplatfilmError(f"the ground plane with normal {np.round(n, 4).tolist()} is vertical: "
                             "no height above (x, y)")
    z = -(n[0] * np.asarray(x, dtype=np.float64) + n[1] * np.asarray(y, dtype=np.float64) + plane.offset) / n[2]
    return float(z) if np.ndim(z) == 0 else z


def place_on_ground(
    position: ArrayLike,
    plane: GroundPlane,
    up: ArrayLike = WORLD_UP,
    *,
    yaw: float = 0.0,
    scale: float = 1.0,
    align: bool = True,
) -> Similarity:
    """A placement (canonical frame -> world) standing on `plane`.

    position: [x, y] or [x, y, z]; the point moves along `up` (default +z) until it lies on the
    plane, so [x, y] means "on the ground above (x, y)" and a given z is replaced. yaw:
    degrees about the canonical +z, applied first; scale: uniform. align: tilt the canonical
    up (+z) onto the plane's normal (a prop on a slope leans with it); False keeps it upright.
    SplatfilmError for a position that is not 2 or 3 finite numbers, or an `up` parallel to
    the plane.
    """
    up = unit_vector(up, "up")
    p = np.asarray(position, dtype=np.float64).reshape(-1)
    if p.shape == (2,):
        p = np.array([p[0], p[1], 0.0])
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise SplatfilmError(f"a ground position is [x, y] or [x, y, z], got {np.asarray(position).tolist()}")
    along = float(plane.normal @ up)
    if abs(along) < 1e-6:
        raise SplatfilmError("cannot drop a point onto the ground along a direction parallel to it")
    base = p - plane.signed_distance(p) / along * up
    R = yaw_rotation(yaw)
    if align:
        R = rotation_between(WORLD_UP, plane.normal) @ R
    return Similarity(R, base, scale)


# ---- the ground in the sidecar -----------------------------------------------------------


def read_ground(scene: str | Path) -> GroundPlane | None:
    """The ground plane SCENE.json records, or None."""
    sidecar = Sidecar.of_asset(scene)
    g = sidecar.ground if sidecar is not None else None
    return None if g is None else GroundPlane.from_dict(g, sidecar.source)


def write_ground(scene: str | Path, plane: GroundPlane, scale: SceneScale | None = None) -> Path:
    """Record `plane` as `ground` in SCENE.json (created with the asset's name if missing), and
    where given the `scale` measured on the scene as frame.scale_to_metres and frame.scale_from,
    in one write."""
    sidecar = Sidecar.of_asset(scene) or Sidecar({"asset": Path(scene).name})
    sidecar["ground"] = plane.to_dict()
    if scale is not None:
        old = sidecar.frame.get("scale_to_metres")
        if old is not None and not np.isclose(old, scale.scale_to_metres, rtol=1e-6):
            # A scale measured twice differently is worth seeing: one of the measurements is off.
            report.note(f"{sidecar_path(scene).name}: scale_to_metres {old:.6g} (from "
                        f"{sidecar.frame.get('scale_from', {}).get('method', 'an earlier record')}) replaced by "
                        f"{scale.scale_to_metres:.6g}")
        sidecar["frame"] = {**sidecar.frame, "scale_to_metres": scale.scale_to_metres, "scale_from": scale.record}
    return sidecar.write(sidecar_path(scene))


# ---- a scene's scale to metres, measured on its capture cameras -------------------------------


@dataclass
class SceneScale:
    """A scene's scale to metres measured on its capture cameras: `units` scene units are
    `metres` metres, so scale_to_metres = metres / units (metres per scene unit). `record` is
    the sidecar's frame.scale_from (what the scale was measured from, in metres and camera
    names only: it stays true when `import` moves or rescales the asset); `text` says what was
    measured, for the command's output."""

    metres: float
    units: float
    record: dict
    text: str

    @property
    def scale_to_metres(self) -> float:
        """Metres per scene unit."""
        return self.metres / self.units


# Metres above which a capture camera's height is more likely a slip (centimetres) than a crane.
MAX_HANDHELD_HEIGHT = 5.0


def scale_from_camera_height(plane: GroundPlane, cameras: Cameras, metres: float) -> SceneScale:
    """The scale at which the capture cameras' median height above `plane` (scene units) is
    `metres` (a handheld capture is filmed from about 1.4-1.7 m; a tripod's or a drone's own
    height where known). cameras: the capture's, in the plane's frame. SplatfilmError for a
    height that is not a positive number, or a median camera at or below the ground (the plane
    is not the floor under them, or its normal points down)."""
    if not 0 < metres < float("inf"):
        raise SplatfilmError(f"a camera height must be a positive number of metres, got {metres}")
    heights = plane.signed_distance(cameras.centers)
    median = float(np.median(heights))
    below = int((heights < 0).sum())
    if not median > 0:
        raise SplatfilmError(f"the capture cameras' median height above the ground plane is {median:.4g} scene units "
                             f"({below} of {len(heights)} cameras below it): the plane is not the floor under "
                             "them (find it with --up X Y Z), or measure the scale with --known-distance")
    lo, hi = np.percentile(heights, [10, 90])
    text = (f"the {len(heights)} capture cameras' median height above the ground {median:.4g} units (10-90%: "
            f"{lo:.4g}-{hi:.4g}{f'; {below} below the ground' if below else ''}) = {metres:g} m")
    # Neither stops the job (a drone flies high; a crane shot varies), but each is a likely slip.
    if metres > MAX_HANDHELD_HEIGHT:
        report.note(f"a camera height of {metres:g} m is far above a handheld one (about 1.4-1.7 m): "
                    "the height is in metres, not centimetres")
    if hi - lo > median:
        report.note(f"the cameras' heights above the ground spread from {lo:.4g} to {hi:.4g} units (10-90%) about "
                    f"their median {median:.4g}: a median height is a rough scale here; --known-distance between "
                    "two cameras measured apart is a firmer one")
    return SceneScale(float(metres), median, {"method": "camera_height", "metres": float(metres)}, text)


def scale_from_known_distance(cameras: Cameras, a: str, b: str, metres: float) -> SceneScale:
    """The scale at which the centres of the capture cameras named `a` and `b`
    (`Cameras.index_of`: an image's path, file name or stem) are `metres` metres apart.
    SplatfilmError for an unknown or ambiguous name, one camera named twice, a distance that is
    not a positive number, or two cameras at one place (no scale can come from them)."""
    if not 0 < metres < float("inf"):
        raise SplatfilmError(f"a known distance must be a positive number of metres, got {metres}")
    i, j = cameras.index_of(a), cameras.index_of(b)
    if i == j:
        raise SplatfilmError(f"{a!r} and {b!r} are one camera ({cameras.names[i]}): a distance needs two")
    centres = cameras.centers
    units = float(np.linalg.norm(centres[i] - centres[j]))
    # Relative to the cameras' own size: float64 poses agree to ~1e-15 of it, so a gap under
    # 1e-9 of it is one place written twice (a duplicated frame), not a baseline.
    size = max(float(np.abs(centres).max()), float(np.ptp(centres, axis=0).max()), 1e-300)
    if not units > 1e-9 * size:
        raise SplatfilmError(f"cameras {a!r} and {b!r} are at one place ({units:.3g} scene units apart): "
                             "no scale can come from them")
    text = f"cameras {a} and {b} {units:.4g} units apart = {metres:g} m"
    return SceneScale(float(metres), units, {"method": "known_distance", "cameras": [a, b], "metres": float(metres)},
                      text)


def ground_scene(scene: str | Path, up: ArrayLike | None = None, *, camera_height: float | None = None,
                 known_distance: tuple[str, str, float] | None = None, cameras: str | Path | None = None,
                 **kwargs: Any) -> tuple[GroundPlane, SceneScale | None]:
    """Estimate a scene file's ground and record it there; with `camera_height` (metres, the
    capture cameras' median height above that ground) or `known_distance` (two capture
    cameras' names and the metres between their centres) its scale to metres too
    (`scale_from_camera_height`, `scale_from_known_distance`), both in one sidecar write.
    up [3]: the capture's up in the scene's frame (any length; default: its sidecar's
    frame.up, else +z); cameras: a camera file to measure on in place of the capture cameras
    recorded beside the scene (`assets.cleanup.capture_cameras_of`); kwargs are
    `estimate_ground`'s. Returns the plane and the scale (None when none was asked for).
    SplatfilmError naming the scene when no ground is found (saying which up was searched
    around and how to widen the search), a setting is out of range, or the scale cannot be
    measured; nothing is written then."""
    from splatfilm.assets.cleanup import capture_cameras_of
    from splatfilm.io.atomic import check_output_file
    from splatfilm.io.gaussian_files import load_gaussians

    if camera_height is not None and known_distance is not None:
        raise SplatfilmError(f"{scene}: give the scale by a camera height or a known distance, not both")
    if cameras is not None and camera_height is None and known_distance is None:
        raise SplatfilmError(f"{cameras}: cameras to measure a scale on, but no --camera-height or --known-distance "
                             "says what to measure")
    check_output_file(sidecar_path(scene))
    try:
        up = sidecar_up(scene) if up is None else unit_vector(up, "--up")
    except SplatfilmError as e:
        raise SplatfilmError(f"{scene}: {e}") from None
    capture = None
    scale = None
    record = Sidecar.of_asset(scene)
    if camera_height is not None and record is not None and record.get("kind") == "object":
        # An object capture's cameras orbit it: their height above its base says nothing of its size.
        raise SplatfilmError(f"{scene}: an object capture (its sidecar says kind: object) has no floor its cameras "
                             "stood on: give its real height with `splatfilm fit --known-height METRES`, or a "
                             "--known-distance between two of its cameras")
    if camera_height is not None or known_distance is not None:
        capture = capture_cameras_of(scene, cameras)  # before the RANSAC: a missing file fails at once
        if known_distance is not None:
            try:
                scale = scale_from_known_distance(capture, *known_distance)
            except SplatfilmError as e:
                raise SplatfilmError(f"{cameras or capture_cameras_path(scene)}: {e}") from None
    gaussians = load_gaussians(scene)
    try:
        plane = estimate_ground(gaussians, up, **kwargs)
    except SplatfilmError as e:
        hint = ""
        if str(e).startswith("no plane within"):
            # The recorded up may lean (a sidecar written by a fit before estimate_up took the
            # cameras' x axes leans by their mean pitch), or the floor may slope.
            hint = ("; give the floor's up with --up X Y Z, or allow more lean with --max-tilt "
                    f"(now {kwargs.get('max_tilt_deg', MAX_TILT_DEG):g})")
        raise SplatfilmError(f"{scene}: {e}{hint}") from None
    if camera_height is not None:
        try:
            scale = scale_from_camera_height(plane, capture, camera_height)
        except SplatfilmError as e:
            raise SplatfilmError(f"{scene}: {e}") from None
    write_ground(scene, plane, scale)
    return plane, scale


def upright_frame(path: Path, gaussians: Gaussians) -> Similarity:
    """A scene asset's frame -> its upright frame (`upright: true` in a film script): turned by
    the least rotation that takes its up (`assets.asset_frame.asset_up`: its recorded ground plane's
    normal, else frame.up) to +z, its ground plane (else the base of its opaque Gaussians) moved
    to z = 0 and the middle of its opaque Gaussians' bounds onto the z axis, as an object's
    canonical frame stands (`assets.asset_frame.stand_on_base`; no front is known: the turn
    about z is the least one). In the asset's own units; `path` is the asset file (its sidecar
    is beside it)."""
    plane = read_ground(path)
    return stand_on_base(gaussians, rotation_between(asset_up(path), WORLD_UP),
                         None if plane is None else -plane.offset * plane.normal)
