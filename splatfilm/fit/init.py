"""Initial Gaussians for a fit: from a point cloud; for a capture without one, random pixels of
its views pushed to the depth where neighbouring views see the same colour
(`points_where_views_agree`); inside an object capture's visual hull (`carve_by_masks`); or,
as a last resort, random points in the cameras' frustums. The plane sweep and the frustums are
pinhole maths: the fit gives them pinhole views of fisheye and panorama images
(`splatfilm.fit.lens_views`); the carving projects through each camera's own lens."""

from __future__ import annotations

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.cameras import Cameras, world_to_camera
from splatfilm.scene.gaussians import Gaussians, opacity_logit
from splatfilm.scene.sh import rgb_to_sh0
from splatfilm.io.images import downscale
from splatfilm.assets.visual_hull import hull_votes
from splatfilm.render.camera_models import project_points


def knn_scales(points: np.ndarray, k: int = 3) -> np.ndarray:
    """Per point, the root mean squared distance to its k nearest neighbours [P] (3DGS's
    initial scale), floored so duplicate points do not give zero scales."""
    from scipy.spatial import cKDTree

    if len(points) <= k:
        return np.full(len(points), 0.01)
    d, _ = cKDTree(points).query(points, k=k + 1)
    rms = np.sqrt((d[:, 1:] ** 2).mean(axis=1))
    floor = max(np.median(rms) * 1e-2, 1e-7)
    return np.maximum(rms, floor)


def gaussians_from_points(points: np.ndarray, colors: np.ndarray | None, sh_degree: int, opacity: float = 0.1,
                          scale_factor: float = 1.0) -> Gaussians:
    """Isotropic Gaussians at points [P,3] with colours [P,3] in [0,1] (grey when None),
    size from their 3 nearest neighbours, opacity `opacity`, higher SH bands zero."""
    n = len(points)
    colors = np.full((n, 3), 0.5, np.float32) if colors is None else colors.astype(np.float32)
    scales = np.log(knn_scales(points) * scale_factor)[:, None].repeat(3, axis=1)
    sh0 = rgb_to_sh0(colors)[:, None, :]
    k = (sh_degree + 1) ** 2 - 1
    t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    logit = float(opacity_logit(opacity))
    return Gaussians(t(points), quats, t(scales), torch.full((n,), logit), t(sh0), torch.zeros(n, k, 3))


def _focus_point(cameras: Cameras) -> np.ndarray:
    """The point closest (least squares) to every camera's optical axis: what they look at."""
    c2w = cameras.to_c2w_opencv()
    o, d = c2w[:, :3, 3], c2w[:, :3, 2]
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for oi, di in zip(o, d):
        P = np.eye(3) - np.outer(di, di)
        A += P
        b += P @ oi
    if np.linalg.cond(A) > 1e8:  # parallel axes (a forward-facing capture): look 1 scene unit ahead
        return o.mean(axis=0) + d.mean(axis=0)
    return np.linalg.solve(A, b)


def _require_pinhole(cameras: Cameras, what: str) -> None:
    """These searches unproject pixels with K: another lens would put every point in the wrong place."""
    others = sorted(set(cameras.camera_model) - {"PINHOLE"})
    if others:
        raise SplatfilmError(f"{what} takes PINHOLE cameras, got {', '.join(others)} "
                             "(look through splatfilm.fit.lens_views.pinhole_views)")


def random_points_in_frustums(cameras: Cameras, count: int, generator: np.random.Generator) -> np.ndarray:
    """`count` points [count,3] uniformly over the cameras' images, at depths spread around the
    distance from the cameras to what they look at (0.25x to 1.75x). PINHOLE cameras only."""
    _require_pinhole(cameras, "random_points_in_frustums")
    focus = _focus_point(cameras)
    dist = np.linalg.norm(cameras.centers - focus, axis=1)
    c2w = cameras.to_c2w_opencv()
    cam = generator.integers(0, len(cameras), count)
    u = generator.uniform(0, 1, count) * cameras.widths[cam]
    v = generator.uniform(0, 1, count) * cameras.heights[cam]
    Ks = cameras.Ks[cam]
    x = (u - Ks[:, 0, 2]) / Ks[:, 0, 0]
    y = (v - Ks[:, 1, 2]) / Ks[:, 1, 1]
    depth = dist[cam] * generator.uniform(0.25, 1.75, count)
    p_cam = np.stack([x * depth, y * depth, depth], axis=1)
    return np.einsum("nij,nj->ni", c2w[cam, :3, :3], p_cam) + c2w[cam, :3, 3]


def carve_by_masks(points: np.ndarray, cameras: Cameras, masks: list[np.ndarray], keep_ratio: float = 0.9) -> np.ndarray:
    """Keep the points [P,3] inside the visual hull: those that land on the object (mask >= 0.5)
    in at least `keep_ratio` of the views that see them (through each camera's own lens).
    Returns a boolean mask [P]."""
    seen, inside = hull_votes(points, cameras, masks)
    return (seen > 0) & (inside >= keep_ratio * seen)


def _working_images(cameras: Cameras, images: list[np.ndarray], width: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The images as float RGB in [0,1], box-filtered down to at most `width` pixels wide, and
    the matching intrinsics [C,3,3] (the same field of view)."""
    out, Ks = [], cameras.Ks.astype(np.float64).copy()
    for i, im in enumerate(images):
        h, w = im.shape[:2]
        s = min(1.0, width / w)
        if s < 1.0:
            size = (max(1, round(w * s)), max(1, round(h * s)))
            im = downscale(im[..., :3], *size)
            Ks[i, 0] *= size[0] / w
            Ks[i, 1] *= size[1] / h
        out.append(im[..., :3].astype(np.float32) / 255.0)
    return out, Ks


def _sample(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear colours [...,3] of image [H,W,3] at pixel coordinates (u, v) (pixel centres at
    +0.5), clamped at the borders."""
    h, w = image.shape[:2]
    x = np.clip(u - 0.5, 0, w - 1)
    y = np.clip(v - 0.5, 0, h - 1)
    x0 = np.minimum(x.astype(int), max(w - 2, 0))
    y0 = np.minimum(y.astype(int), max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bot = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def view_neighbours(cameras: Cameras, ids: list[int], count: int = 8, max_angle_deg: float = 50.0) -> dict[int, list[int]]:
    """For each camera in `ids`, up to `count` others of `ids` that look the same way (optical
    axes within `max_angle_deg`) from the nearest positions: the views that see what it sees."""
    c2w = cameras.to_c2w_opencv()
    o, d = c2w[ids, :3, 3], c2w[ids, :3, 2]
    cos = d @ d.T
    dist = np.linalg.norm(o[:, None] - o[None], axis=2)
    dist[cos < np.cos(np.radians(max_angle_deg))] = np.inf
    np.fill_diagonal(dist, np.inf)
    out = {}
    for a, i in enumerate(ids):
        order = [b for b in np.argsort(dist[a], kind="stable")[:count] if np.isfinite(dist[a, b])]
        out[i] = [ids[b] for b in order]
    return out


def depth_range(cameras: Cameras) -> tuple[float, float]:
    """(near, far) in scene units for the depth search of `points_where_views_agree`: from 1/30
    to 20 times the capture's size, the larger of the cameras' spread and their distance to
    the point they look at (an orbit's radius; for an inside-out capture, the ring's)."""
    centers = cameras.centers
    spread = float(np.linalg.norm(centers - centers.mean(axis=0), axis=1).max()) if len(centers) > 1 else 0.0
    look = float(np.median(np.linalg.norm(centers - _focus_point(cameras), axis=1)))
    size = max(spread, min(look, 10 * max(spread, 1e-6)), 1e-3)
    return size / 30.0, size * 20.0


def points_where_views_agree(cameras: Cameras, images: list[np.ndarray], ids: list[int], count: int,
                             generator: np.random.Generator, depths: int = 48, neighbours: int = 8,
                             work_width: int = 128, patch: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starting points for a capture without a point cloud: random pixels of the views `ids`,
    each pushed along its ray to the depth where its neighbouring views see the same colour.

    Per pixel, `depths` depths log-spaced over `depth_range` (jittered per pixel) are
    projected into up to `neighbours` views looking the same way; the cost of a depth is the
    mean colour difference (L1, [0,1] units) over the better half of the views that see it
    (so an occluder in some of them does not veto the surface); the cheapest depth is refined
    once more around itself. No feature matching: a plane sweep at `work_width` pixels wide,
    cheap on the CPU. Pixels no two neighbours see are dropped.

    Returns points [P,3], their pixel's colour [P,3] in [0,1] and their cost [P] (P <= count).
    PINHOLE cameras only.
    """
    _require_pinhole(cameras, "points_where_views_agree")
    work, Ks = _working_images(cameras, images, work_width)
    near, far = depth_range(cameras)
    nbrs = view_neighbours(cameras, ids, neighbours)
    V = cameras.viewmats.astype(np.float64)
    c2w = cameras.to_c2w_opencv()
    per_view = int(np.ceil(count / max(len(ids), 1)))
    log_lo, log_hi = np.log(near), np.log(far)
    step = (log_hi - log_lo) / depths
    pts, cols, costs = [], [], []
    for i in ids:
        js = nbrs[i]
        if len(js) < 2:
            continue
        h, w = work[i].shape[:2]
        u = generator.uniform(0, w, per_view)
        v = generator.uniform(0, h, per_view)
        offsets = [(0.0, 0.0)] + [(dx * patch, dy * patch) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))][: 4 if patch else 0]
        refs = [_sample(work[i], u + dx, v + dy) for dx, dy in offsets]  # each [P,3]
        rays = [np.stack([(u + dx - Ks[i, 0, 2]) / Ks[i, 0, 0], (v + dy - Ks[i, 1, 2]) / Ks[i, 1, 1], np.ones_like(u)], 1)
                @ c2w[i, :3, :3].T for dx, dy in offsets]  # world directions scaled to camera z = 1

        def cost_of(log_d: np.ndarray) -> np.ndarray:  # log depths [P,D] -> cost [P,D]
            diffs = []
            for j in js:
                hj, wj = work[j].shape[:2]
                d = 0.0
                seen = True
                for ref, ray in zip(refs, rays):  # a fronto-parallel patch at each depth
                    X = c2w[i, :3, 3] + np.exp(log_d)[..., None] * ray[:, None, :]  # [P,D,3]
                    pc = world_to_camera(X, V[j])
                    z = pc[..., 2]
                    safe = np.concatenate([pc[..., :2], np.where(z > 1e-6, z, 1.0)[..., None]], -1)
                    uj, vj = np.moveaxis(project_points(torch.from_numpy(safe.reshape(1, -1, 3)),
                                                        torch.from_numpy(Ks[j : j + 1]), "PINHOLE")
                                         [0].numpy().reshape(pc.shape[:-1] + (2,)), -1, 0)
                    seen = seen & (z > near * 0.5) & (uj >= 0) & (uj < wj) & (vj >= 0) & (vj < hj)
                    d = d + np.abs(_sample(work[j], uj, vj) - ref[:, None, :]).mean(-1)
                diffs.append(np.where(seen, d / len(offsets), np.inf))
            diffs = np.sort(np.stack(diffs, -1), -1)  # [P,D,M], unseen last
            n_seen = np.isfinite(diffs).sum(-1)
            k = np.maximum(n_seen // 2, 2)
            csum = np.cumsum(np.where(np.isfinite(diffs), diffs, 0.0), -1)
            best_half = np.take_along_axis(csum, (k - 1)[..., None], -1)[..., 0] / k
            return np.where(n_seen >= 2, best_half, np.inf)

        log_d = log_lo + (np.arange(depths) + generator.uniform(0, 1, (per_view, depths))) * step
        c = cost_of(log_d)
        centre = log_d[np.arange(per_view), np.argmin(c, 1)]
        fine = centre[:, None] + np.linspace(-step, step, 9)[None]
        c = cost_of(fine)
        best = np.argmin(c, 1)
        log_depth, cost = fine[np.arange(per_view), best], c[np.arange(per_view), best]
        keep = np.isfinite(cost)
        depth = np.exp(log_depth)[keep]
        pts.append(c2w[i, :3, 3] + depth[:, None] * rays[0][keep])
        cols.append(refs[0][keep])
        costs.append(cost[keep])
    if not pts:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(pts)[:count], np.concatenate(cols)[:count], np.concatenate(costs)[:count]
