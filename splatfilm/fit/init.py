"""Initial Gaussians for a fit: from a point cloud, or random inside the cameras' frustums."""

from __future__ import annotations

import numpy as np
import torch

from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import C0


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
    sh0 = ((colors - 0.5) / C0)[:, None, :]
    k = (sh_degree + 1) ** 2 - 1
    t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    logit = float(np.log(opacity / (1 - opacity)))
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


def random_points_in_frustums(cameras: Cameras, count: int, generator: np.random.Generator) -> np.ndarray:
    """`count` points [count,3] uniformly over the cameras' images, at depths spread around the
    distance from the cameras to what they look at (0.25x to 1.75x)."""
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
    in at least `keep_ratio` of the views that see them. Returns a boolean mask [P]."""
    inside = np.zeros(len(points))
    seen = np.zeros(len(points))
    for i, mask in enumerate(masks):
        V, K = cameras.viewmats[i], cameras.Ks[i]
        pc = points @ V[:3, :3].T + V[:3, 3]
        z = pc[:, 2]
        front = z > 1e-6
        u = np.where(front, K[0, 0] * pc[:, 0] / np.where(front, z, 1) + K[0, 2], -1)
        v = np.where(front, K[1, 1] * pc[:, 1] / np.where(front, z, 1) + K[1, 2], -1)
        h, w = mask.shape[:2]
        in_view = front & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        ui = np.clip(u.astype(int), 0, w - 1)
        vi = np.clip(v.astype(int), 0, h - 1)
        seen += in_view
        inside += in_view & (mask[vi, ui, 0] >= 0.5)
    return (seen > 0) & (inside >= keep_ratio * seen)
