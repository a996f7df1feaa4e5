"""Captured characters get a skeleton: `splatfilm rig FITTED.ply --skeleton RIGGED.glb -o HERO.ply`.

A fitted capture is a cloud of Gaussians with no skeleton; a rigged mesh of the same figure
has one. Binding gives every Gaussian the skin weights of the rigged surface where it sits:

1. Frames. The Gaussians stay where they are (HERO.ply is the fitted file, unchanged); the
   skeleton and its surface are carried into the asset's frame by a similarity M. By default
   M goes through both assets' canonical object frames (base on z = 0, centred, up +z, front
   -y): the glTF's from import-mesh's rule (`canonical_from_vertices` with glTF's up +y and
   front +z), the fit's from its sidecar's `canonical_transform`, so M = fit_canonical^-1 *
   gltf_canonical. Both frames centre a bounding box (the fit's a robust one), so they agree
   to a few per cent of the size (floaters stretch a fit's bounds); M is then refined by
   trimmed rigid ICP of the surface onto the opaque Gaussians, its reach shrinking from a
   quarter of the size to max_distance (`--no-icp` keeps M as it is). `--same-frame`: the skeleton is already in the
   asset's coordinates (M = identity, no ICP).
2. Weights. The vertex weights are diffused over the mesh graph a few steps (coincident
   vertices welded, so UV seams do not cut it; each edge mixes by its length against
   `smooth`, so a coarse mesh is not blurred more than a fine one), interpolated at dense samples of the surface
   (barycentric, as import-mesh does), and each Gaussian averages the samples near it with a
   Gaussian kernel of width `smooth` on the extra distance beyond the nearest sample: a
   Gaussian of a sleeve between an arm and the torso blends both, so posing stretches it
   instead of tearing it. The 4 heaviest joints are kept, renormalised.
3. Gaussians farther than `max_distance` from the surface (floaters, a coat the mesh lacks)
   follow the nearest bone rigidly: the joint whose segments (joint to each child joint, or
   the joint itself for a leaf) pass closest, among the joints the surface is skinned to.
   Gaussians farther than `floater_distance` (default 4 x max_distance) are the capture's
   floaters, not part of the figure: they follow the skeleton's root node (above the hips;
   it moves only with root motion), so they stay where the fit put them. A fit places such
   floaters to paint single views (a hat brim seen from above); on a limb's or the hips'
   lever they sweep across the frame as blobs.
   When most opaque Gaussians are beyond max_distance, the frames do not overlap: an error,
   not a rig.

The rig written beside HERO.ply (`splatfilm.io.rig_files`) is the glTF's skeleton and clips
under one extra root joint, "gltf_scene_frame", whose rest transform is M (omitted with
`--same-frame`): each joint then moves in the asset's frame exactly as it moves in the glTF
scene frame (skinning matrices conjugated by M), and no clip touches that root.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from splatfilm.assets.mesh_import import RiggedSurface, canonical_from_vertices, rigged_surface
from splatfilm.assets.rig import MAX_INFLUENCES
from splatfilm.assets.sidecar import Sidecar, carry_rasterize_mode, check_sidecar_free
from splatfilm.io.asset_files import carry_capture_cameras, read_capture_cameras, rig_path, sidecar_path
from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write, check_output_file
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_EXTENSIONS, GAUSSIAN_FILE_TYPES, load_gaussians, save_gaussians
from splatfilm.io.inputs import read_input
from splatfilm.io.ply import is_compressed_ply_name
from splatfilm.io.rig_files import RIG_FORMAT_VERSION, carry_rig, skin_joint_count
from splatfilm.scene.skeleton import Channel, JointTRS, Rig, joint_depths
from splatfilm.scene.transforms import Similarity, quat_from_rotation, rotation_angle_deg, umeyama
from splatfilm.version import __version__

__all__ = ["Binding", "bind_gaussians", "closest_points_on_triangles", "rig_capture", "FRAME_JOINT"]

FRAME_JOINT = "gltf_scene_frame"
GLTF_UP, GLTF_FRONT = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
# Defaults as fractions of the surface's bounding-box diagonal.
MAX_DISTANCE_OF_DIAGONAL = 0.05
SMOOTH_OF_DIAGONAL = 0.01
DIFFUSION_STEPS = 2
NEIGHBOURS = 16  # surface samples each Gaussian averages
MAX_SAMPLES = 400_000
FLOATER_OF_MAX_DISTANCE = 4.0
OVERLAP_FAIL = 0.5  # more opaque Gaussians than this share far from the surface: frames do not overlap
ICP_ITERATIONS = 60
ICP_START_OF_DIAGONAL = 0.25  # the first ICP pairs may be this far apart (fraction of the diagonal)


@dataclass
class Binding:
    """Per-Gaussian joints [N,4] (indices into the glTF rig's joints) and weights [N,4]
    (float32, rows sum to 1), the distance [N] of each Gaussian to the surface, which ones
    follow the nearest bone (far [N] bool), and the frame map used (glTF scene frame ->
    asset frame) with notes on how it was found."""

    joints: np.ndarray
    weights: np.ndarray
    distance: np.ndarray
    far: np.ndarray
    frame: Similarity
    notes: dict = field(default_factory=dict)


# ---- geometry -------------------------------------------------------------------------------


def closest_points_on_triangles(points: np.ndarray, tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closest point [P,3] on triangle tris[i] [P,3,3] to points[i] [P,3] and its
    barycentric coordinates [P,3] (Ericson, Real-Time Collision Detection 5.1.5)."""
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    ab, ac, ap = b - a, c - a, points - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp = points - b
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp = points - c
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    bary = np.empty((len(points), 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v, w = vb / denom, vc / denom
        bary[:] = np.stack([1 - v - w, v, w], axis=1)  # inside the face
        # Edges (in the order that makes the region tests exclusive, as Ericson's branches do).
        t = d4 - d3
        s = t / (t + (d5 - d6))
        m = (va <= 0) & (t >= 0) & ((d5 - d6) >= 0)
        bary[m] = np.stack([0 * s, 1 - s, s], axis=1)[m]  # edge bc
        s = d2 / (d2 - d6)
        m = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        bary[m] = np.stack([1 - s, 0 * s, s], axis=1)[m]  # edge ac
        s = d1 / (d1 - d3)
        m = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        bary[m] = np.stack([1 - s, s, 0 * s], axis=1)[m]  # edge ab
    for corner, m in ((2, (d6 >= 0) & (d5 <= d6)), (1, (d3 >= 0) & (d4 <= d3)), (0, (d1 <= 0) & (d2 <= 0))):
        bary[m] = np.eye(3)[corner]
    bary = np.nan_to_num(bary, nan=1.0 / 3.0)  # a degenerate (zero-area) triangle
    return np.einsum("pk,pkc->pc", bary, tris), bary


def _dense_weights(surface: RiggedSurface, num_joints: int) -> np.ndarray:
    """Vertex weights as a dense [V,J] matrix."""
    W = np.zeros((len(surface.vertices), num_joints))
    rows = np.repeat(np.arange(len(surface.vertices)), surface.joints.shape[1])
    np.add.at(W, (rows, surface.joints.reshape(-1)), surface.weights.reshape(-1))
    return W


def _diffuse(vertices: np.ndarray, faces: np.ndarray, W: np.ndarray, steps: int, width: float) -> np.ndarray:
    """W [V,J] smoothed over the mesh graph: coincident vertices (within 1e-6 of `width`)
    welded, then `steps` times each vertex becomes the mean of itself (weight 1) and its
    neighbours (weight exp(-d^2 / 2 width^2) for an edge of length d). So the smoothing
    reaches about width * sqrt(steps) whatever the tessellation: long edges of a coarse mesh
    barely mix, the short ones of a fine mesh and the seams between parts do."""
    from scipy.sparse import coo_matrix

    if steps <= 0 or len(faces) == 0:
        return W
    key = np.round(vertices / (1e-6 * width)).astype(np.int64)
    _, first, weld = np.unique(key, axis=0, return_index=True, return_inverse=True)
    weld = weld.reshape(-1)
    n = len(first)
    counts = np.bincount(weld, minlength=n).astype(np.float64)
    Wu = np.zeros((n, W.shape[1]))
    np.add.at(Wu, weld, W)
    Wu /= counts[:, None]
    f = weld[faces]
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    edges = np.unique(np.stack([i, j], axis=1)[i != j], axis=0)  # duplicate edges count once
    length = np.linalg.norm(vertices[first[edges[:, 0]]] - vertices[first[edges[:, 1]]], axis=1)
    A = coo_matrix((np.exp(-0.5 * (length / width) ** 2), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    total = 1.0 + np.asarray(A.sum(axis=1)).reshape(-1)
    for _ in range(steps):
        Wu = (Wu + A @ Wu) / total[:, None]
    return Wu[weld]


def _triangle_areas(tris: np.ndarray) -> np.ndarray:
    """Areas [F] of triangles [F,3,3]."""
    return 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)


def _surface_samples(tris: np.ndarray, spacing: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points spread over the triangles [F,3,3] about `spacing` apart (and every corner's
    centroid, so small faces are not missed): face index [S] and barycentric coordinates [S,3]."""
    areas = _triangle_areas(tris)
    count = int(min(MAX_SAMPLES, max(len(tris), math.ceil(areas.sum() / spacing ** 2))))
    face = rng.choice(len(tris), size=count, p=areas / areas.sum()) if areas.sum() > 0 else np.zeros(0, int)
    u = rng.random((count, 2))
    fold = u.sum(1) > 1
    u[fold] = 1 - u[fold]
    bary = np.column_stack([1 - u.sum(1), u])
    face = np.concatenate([np.arange(len(tris)), face])  # one at each face's centroid
    bary = np.concatenate([np.full((len(tris), 3), 1.0 / 3.0), bary])
    return face, bary


def _bones(rig_parents: np.ndarray, heads: np.ndarray, skinned: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bone segments of the skinned joints: owner joint [B], start [B,3], end [B,3] (a joint
    to each child; a joint with no child a point)."""
    owner, start, end = [], [], []
    for j in np.nonzero(skinned)[0]:
        children = np.nonzero(rig_parents == j)[0]
        children = children[skinned[children]] if skinned[children].any() else children
        for c in children if len(children) else [j]:
            owner.append(j)
            start.append(heads[j])
            end.append(heads[c])
    return np.array(owner, dtype=np.int64), np.array(start).reshape(-1, 3), np.array(end).reshape(-1, 3)


def _nearest_bone(points: np.ndarray, owner: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The joint [P] whose bone segment passes closest to each point [P,3]."""
    out = np.empty(len(points), dtype=np.int64)
    seg = end - start
    length2 = np.maximum((seg ** 2).sum(1), 1e-30)
    for lo in range(0, len(points), 50_000):
        p = points[lo:lo + 50_000, None, :]
        t = np.clip(((p - start) * seg).sum(-1) / length2, 0.0, 1.0)
        d = np.linalg.norm(p - (start + t[..., None] * seg), axis=-1)
        out[lo:lo + 50_000] = owner[np.argmin(d, axis=1)]
    return out


class _Surface:
    """The skinned surface in the asset's frame, densely sampled, for nearest-point queries."""

    def __init__(self, tris: np.ndarray, sample_face: np.ndarray, sample_bary: np.ndarray, sample_w: np.ndarray):
        from scipy.spatial import cKDTree

        self.tris = tris
        self.face, self.bary, self.w = sample_face, sample_bary, sample_w
        self.points = np.einsum("sk,skc->sc", sample_bary, tris[sample_face])
        self.tree = cKDTree(self.points)

    def closest(self, points: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Closest point on the surface [P,3] and its distance [P]: the exact point on the best
        of the triangles under the k nearest samples."""
        _, idx = self.tree.query(points, k=k)
        idx = idx.reshape(len(points), k)
        best_q, best_d = None, None
        for c in range(k):
            q, _ = closest_points_on_triangles(points, self.tris[self.face[idx[:, c]]])
            d = np.linalg.norm(points - q, axis=1)
            if best_d is None:
                best_q, best_d = q, d
            else:
                better = d < best_d
                best_q[better], best_d[better] = q[better], d[better]
        return best_q, best_d


def _icp(surface: "_Surface", targets: np.ndarray, reach: float, start_reach: float, with_scale: bool = False
         ) -> tuple[Similarity, float, float]:
    """Rigid ICP moving the surface onto `targets` [T,3] (opaque Gaussians); with_scale: a
    similarity (when the start's scale is only an estimate of the capture's units). Pairs count
    within a reach that shrinks from `start_reach` to `reach` (so a start a few centimetres
    off still converges, while floaters far from the figure never pull), and only the
    closest 80% of those (trimmed ICP: a capture has parts the mesh lacks). Returns the move
    (surface -> asset frame) and the RMS distance of the pairs within `reach`, before and after."""
    move = Similarity()
    rms: list[float] = []
    current = max(start_reach, reach)
    for it in range(ICP_ITERATIONS + 1):
        # Closest points on the moved surface = the move applied to closest points on the
        # unmoved one, queried from the targets moved back.
        back = (targets - move.translation) @ move.rotation / move.scale  # the rotation is orthonormal
        q, d = surface.closest(back)
        near = d < reach
        if near.sum() >= 10:
            rms.append(float(np.sqrt(np.mean(d[near] ** 2))))
        keep = d < current
        if it == ICP_ITERATIONS or keep.sum() < 10:
            break
        keep &= d <= np.percentile(d[keep], 80)
        R, t, s = umeyama(q[keep], targets[keep], with_scale=with_scale)
        step = (np.abs(t - move.translation).max() + reach * np.abs(R - move.rotation).max()
                + reach * abs(s - move.scale))
        move = Similarity(R, t, s)
        if current == reach and step < 1e-6 * reach:  # converged (no rms test: slides along a symmetric
            break                                     # surface converge slowly)
        current = max(reach, 0.8 * current)
    return move, (rms[0] if rms else float("nan")), (rms[-1] if rms else float("nan"))


# ---- binding --------------------------------------------------------------------------------


def bind_gaussians(means: np.ndarray, opacities: np.ndarray, surface: RiggedSurface, frame: Similarity,
                   icp: bool = True, max_distance: float | None = None, smooth: float | None = None,
                   floater_distance: float | None = None, diffusion_steps: int = DIFFUSION_STEPS, seed: int = 0,
                   name: str = "the capture", scaled: bool = False) -> Binding:
    """Skin weights for Gaussians at `means` [N,3] (asset frame; `opacities` [N] in [0,1])
    from a skinned surface in the glTF scene frame, carried into the asset frame by `frame`
    (refined by rigid ICP when `icp`; by a similarity when `scaled`: the frame's scale is an
    estimate of the capture's units). max_distance, smooth: asset units (default 5% and 1%
    of the surface's bounding-box diagonal there). Raises when most opaque Gaussians are
    farther than max_distance (the frames do not overlap)."""
    rigged = surface.rig
    J = len(rigged.joint_names)
    verts = frame.apply(surface.vertices)
    diagonal = float(np.linalg.norm(verts.max(0) - verts.min(0)))
    if not diagonal > 0:
        raise SplatfilmError("the skeleton's surface has no extent")
    max_distance = MAX_DISTANCE_OF_DIAGONAL * diagonal if max_distance is None else float(max_distance)
    smooth = SMOOTH_OF_DIAGONAL * diagonal if smooth is None else float(smooth)
    if not (max_distance > 0 and math.isfinite(max_distance)):
        raise SplatfilmError(f"--max-distance must be a positive distance, got {max_distance}")
    if not (smooth > 0 and math.isfinite(smooth)):
        raise SplatfilmError(f"--smooth must be a positive distance, got {smooth}")
    floater_distance = FLOATER_OF_MAX_DISTANCE * max_distance if floater_distance is None else float(floater_distance)
    if not floater_distance >= max_distance:
        raise SplatfilmError(f"--floater-distance must be at least the max distance ({max_distance:.4g}), "
                             f"got {floater_distance}")

    W = _diffuse(verts, surface.faces, _dense_weights(surface, J), diffusion_steps, smooth)
    tris = verts[surface.faces]
    rng = np.random.default_rng(seed)
    face, bary = _surface_samples(tris, smooth / 3.0, rng)
    sample_w = np.einsum("sk,skj->sj", bary, W[surface.faces[face]])
    surf = _Surface(tris, face, bary, sample_w)

    opaque = opacities >= 0.5
    ref = means[opaque] if opaque.sum() >= 10 else means
    notes: dict = {"diagonal": diagonal, "max_distance": max_distance, "floater_distance": floater_distance,
                   "smooth": smooth,
                   "diffusion_steps": diffusion_steps}
    if icp:
        targets = ref if len(ref) <= 50_000 else ref[rng.choice(len(ref), 50_000, replace=False)]
        move, before, after = _icp(surf, targets, max_distance, ICP_START_OF_DIAGONAL * diagonal,
                                   with_scale=scaled)
        if not move.is_identity():
            frame = move @ frame
            verts = move.apply(verts)
            tris = verts[surface.faces]
            surf = _Surface(tris, face, bary, sample_w)
        angle = rotation_angle_deg(move.rotation)
        notes["icp"] = {"rms_before": before, "rms_after": after, "moved_by": float(np.linalg.norm(move.translation)),
                        "turned_by_degrees": angle, **({"scaled_by": move.scale} if scaled else {})}

    # Distances, and the surface samples near each Gaussian (chunked: [chunk, k, J] at once).
    _, dist = surf.closest(means)
    far = dist > max_distance
    floater = dist > floater_distance
    far_share = float(far[opaque].mean()) if opaque.sum() >= 10 else float(far.mean())
    notes.update({"far": int(far.sum()), "far_share_of_opaque": far_share, "floaters": int(floater.sum()),
                  "median_distance": float(np.median(dist)), "p95_distance": float(np.percentile(dist, 95))})
    if far_share > OVERLAP_FAIL:
        raise SplatfilmError(f"{name}: {100 * far_share:.0f}% of the opaque Gaussians are farther than "
                             f"{max_distance:.3g} from the skeleton's surface (median {np.median(dist):.3g}): the "
                             "frames do not overlap; check the skeleton is the same figure, or give --same-frame, "
                             "or a larger --max-distance")
    dense = np.zeros((len(means), J), dtype=np.float32)
    k = min(NEIGHBOURS, len(surf.points))
    for lo in range(0, len(means), 50_000):
        p = means[lo:lo + 50_000]
        d, idx = surf.tree.query(p, k=k)
        d, idx = d.reshape(len(p), k), idx.reshape(len(p), k)
        kernel = np.exp(-0.5 * ((d - d[:, :1]) / smooth) ** 2)  # the nearest sample always counts fully
        dense[lo:lo + len(p)] = np.einsum("pk,pkj->pj", kernel, sample_w[idx]) / kernel.sum(1, keepdims=True)

    # Far Gaussians: the nearest bone among the joints the surface is skinned to.
    if far.any():
        local = rigged.rest.matrices()
        G = np.empty_like(local)
        for j, p in enumerate(rigged.parents):  # parents come first
            G[j] = local[j] if p < 0 else G[p] @ local[j]
        heads = frame.apply(G[:, :3, 3])
        owner, start, end = _bones(rigged.parents, heads, W.max(axis=0) > 0)
        bone = _nearest_bone(means[far], owner, start, end)
        skinned = np.nonzero(W.max(axis=0) > 0)[0]
        top = skinned[np.argmin(joint_depths(rigged.parents)[skinned])]
        while rigged.parents[top] >= 0:  # up to the skeleton's root node
            top = rigged.parents[top]
        bone[floater[far]] = top
        dense[far] = 0.0
        dense[np.nonzero(far)[0], bone] = 1.0

    top = np.argsort(-dense, axis=1, kind="stable")[:, :MAX_INFLUENCES]
    weights = np.take_along_axis(dense, top, axis=1)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-30)
    joints = np.where(weights > 0, top, 0).astype(np.int32)
    return Binding(joints, weights.astype(np.float32), dist, far, frame, notes)


# A capture's units are SfM's, not metres: when the fitted figure's height in its canonical
# frame differs from the skeleton mesh's by more than this factor, the glTF is scaled to it.
UNIT_SCALE_TOLERANCE = 1.1


def _gltf_to_asset(surface: RiggedSurface, fitted: Path, sidecar: Sidecar | None, means: np.ndarray,
                   opacities: np.ndarray) -> tuple[Similarity, bool]:
    """glTF scene frame -> the fitted asset's frame through both canonical frames, the glTF
    scaled to the capture's units when its figure's height differs from the mesh's by more
    than UNIT_SCALE_TOLERANCE (then True: an estimate, for ICP to refine). Heights are measured
    alike: 1st to 99th percentile along up of the opaque Gaussians and of points spread evenly
    over the mesh."""
    ct = sidecar.canonical_transform if sidecar is not None else None
    if ct is None:
        what = "has no sidecar" if sidecar is None else "has a sidecar without a canonical_transform"
        raise SplatfilmError(f"{fitted}: {what} (is it an object capture fitted by splatfilm?); give --same-frame "
                             "when the skeleton is already in the asset's coordinates")
    gltf = Similarity.from_dict(canonical_from_vertices(surface.vertices, GLTF_UP, GLTF_FRONT))
    def height(points: np.ndarray) -> float:
        return float(np.percentile(points[:, 2], 99) - np.percentile(points[:, 2], 1))

    solid = means[opacities > 0.5] if (opacities > 0.5).sum() >= 10 else means
    tris = gltf.apply(surface.vertices)[surface.faces]
    face, bary = _surface_samples(tris, math.sqrt(float(_triangle_areas(tris).sum()) / 20_000), np.random.default_rng(0))
    capture_height = height(ct.apply(solid))
    mesh_height = height(np.einsum("sk,skc->sc", bary, tris[face]))
    scale = capture_height / mesh_height if mesh_height > 0 and capture_height > 0 else 1.0
    if max(scale, 1.0 / scale) < UNIT_SCALE_TOLERANCE:
        return ct.inverse() @ gltf, False
    return ct.inverse() @ Similarity(scale=scale) @ gltf, True


def bound_rig(surface: RiggedSurface, binding: Binding, frame_joint: bool, source: dict) -> Rig:
    """The glTF's skeleton and clips in the asset's frame, binding the Gaussians: under a new
    root joint FRAME_JOINT at the frame map when `frame_joint` (module docstring)."""
    r = surface.rig
    if not frame_joint:
        return Rig(list(r.joint_names), r.parents.copy(), r.rest.copy(), r.inverse_binds.copy(), dict(r.clips),
                   binding.joints, binding.weights, source, r.in_skin)
    M = binding.frame
    name = FRAME_JOINT
    while name in r.joint_names:
        name += "_"
    rest = JointTRS(np.vstack([M.translation, r.rest.translation]),
                    np.vstack([quat_from_rotation(M.rotation), r.rest.rotation]),
                    np.vstack([np.full(3, M.scale), r.rest.scale]))
    M_inv = np.linalg.inv(M.matrix())
    ibm = np.concatenate([M_inv[None], r.inverse_binds @ M_inv])
    parents = np.concatenate([[-1], np.where(r.parents >= 0, r.parents + 1, 0)])
    clips = {c.name: replace(c, channels=[Channel(ch.joint + 1, ch.path, ch.interpolation, ch.times, ch.values)
                                          for ch in c.channels]) for c in r.clips.values()}
    joints = np.where(binding.weights > 0, binding.joints + 1, 0).astype(np.int32)
    in_skin = None if r.in_skin is None else np.concatenate([[False], r.in_skin])
    return Rig([name] + list(r.joint_names), parents.astype(np.int64), rest, ibm, clips, joints, binding.weights,
               source, in_skin)


def rig_capture(fitted: str | Path, skeleton: str | Path, output: str | Path, same_frame: bool = False,
                icp: bool = True, max_distance: float | None = None, smooth: float | None = None,
                floater_distance: float | None = None) -> Sidecar:
    """Bind a fitted capture to a skinned glTF and write OUTPUT (the fitted Gaussians,
    unchanged), OUTPUT.json (the fit's sidecar noting the binding) and OUTPUT.rig.npz.
    Nothing is written when any check fails. Returns the sidecar."""
    fitted, skeleton, output = Path(fitted), Path(skeleton), Path(output)
    if output.suffix.lower() not in GAUSSIAN_FILE_EXTENSIONS:
        raise SplatfilmError(f"{output}: the bound asset is a {GAUSSIAN_FILE_TYPES} file (sidecar .json and .rig.npz "
                             "beside it)")
    for other, what in ((fitted, "the fitted capture"), (skeleton, "the skeleton")):
        if output.resolve() == other.resolve() or rig_path(output).resolve() == other.resolve() \
                or sidecar_path(output).resolve() == other.resolve():
            raise SplatfilmError(f"{output}: would overwrite {what} ({other}); write the bound asset to another file")
    if sidecar_path(output).resolve() == sidecar_path(fitted).resolve():
        raise SplatfilmError(f"{output}: its sidecar would overwrite the fitted capture's ({sidecar_path(fitted)})")
    check_output_file(output)
    check_sidecar_free(output)
    if fitted.suffix.lower() not in GAUSSIAN_FILE_EXTENSIONS:
        raise SplatfilmError(f"{fitted}: not a Gaussian splat file ({GAUSSIAN_FILE_TYPES}); `rig` binds a fitted "
                             "capture")
    data = read_input(fitted, "fitted capture")
    gaussians = load_gaussians(fitted)
    if len(gaussians) == 0:
        raise SplatfilmError(f"{fitted}: has no Gaussians to bind")
    sidecar = Sidecar.of_asset(fitted)
    cameras = read_capture_cameras(fitted)  # carried to the bound asset: binding moves no Gaussian
    surface = rigged_surface(skeleton)
    means = gaussians.means.detach().double().cpu().numpy()
    opacities = gaussians.activated_opacities.detach().double().cpu().numpy()
    frame, scaled = (Similarity(), False) if same_frame else _gltf_to_asset(surface, fitted, sidecar, means, opacities)
    binding = bind_gaussians(means, opacities, surface, frame, icp=icp and not same_frame, max_distance=max_distance,
                             smooth=smooth, floater_distance=floater_distance, name=str(fitted), scaled=scaled)
    rig = bound_rig(surface, binding, frame_joint=not same_frame,
                    source={"file": skeleton.name, "nodes": surface.rig.nodes, "bound_to": fitted.name})

    out = Sidecar(sidecar.data if sidecar is not None else {})
    out.setdefault("splatfilm_version", __version__)
    out.setdefault("kind", "object")
    out["asset"] = output.name
    out["num_gaussians"] = len(gaussians)
    M = binding.frame
    out["rig"] = {
        "file": rig_path(output).name, "version": RIG_FORMAT_VERSION, "joints": rig.num_joints,
        **({} if skin_joint_count(rig) is None else {"skin_joints": skin_joint_count(rig)}),
        "clips": {c.name: c.duration for c in rig.clips.values()},
        "influences": "each Gaussian follows up to 4 joints: the skin weights of the skeleton's surface near it "
                      "(diffused over the mesh, averaged over nearby surface points), the 4 heaviest renormalised; "
                      "Gaussians beyond max_distance follow the nearest bone, floaters beyond floater_distance the "
                      "skeleton's root node",
        "binding": {
            "fitted": fitted.name, "skeleton": skeleton.name,
            "frame": "same frame (--same-frame)" if same_frame else
                     "glTF scene frame -> asset frame through both canonical frames"
                     + (f", scaled {M.scale:.4g}x to the capture's units (the figures' heights)" if scaled else "")
                     + ((", refined by ICP with scale" if scaled else ", refined by rigid ICP") if icp else ""),
            "frame_joint": None if same_frame else rig.joint_names[0],
            "gltf_to_asset": {"rotation": M.rotation.tolist(), "translation": M.translation.tolist(),
                              "scale": M.scale},
            **binding.notes,
        },
    }
    antialiased = carry_rasterize_mode(fitted, out)  # an .spz's flag alone said so too
    written = None  # the rows bind the Gaussians as the fitted file holds them
    if output.suffix.lower() == fitted.suffix.lower() \
            and is_compressed_ply_name(output) == is_compressed_ply_name(fitted):  # the same layout
        atomic_write(output, [data])  # the fitted file byte for byte
    else:
        written = save_gaussians(output, gaussians, antialiased=antialiased)
    carry_rig(output, rig, None, written=written)
    carry_capture_cameras(fitted, output, cameras)  # so `clean` and `mesh` of the bound asset find its capture
    out.write(sidecar_path(output))
    return out
