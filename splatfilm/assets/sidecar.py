"""What an asset's sidecar JSON records about its frame: up vector, bounds, canonical frame."""

from __future__ import annotations

import numpy as np
import torch

from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import WORLD_UP, axis_rotation, rotation_between


def estimate_up(cameras: Cameras) -> np.ndarray:
    """World up [3] (unit) as the mean of the cameras' up directions (-y in OpenCV axes):
    people hold cameras level, so this is the capture's up unless it was shot upside down."""
    up = -cameras.to_c2w_opencv()[:, :3, 1].mean(axis=0)
    n = np.linalg.norm(up)
    return up / n if n > 1e-8 else np.array([0.0, 0.0, 1.0])


def robust_bounds(gaussians: Gaussians, min_opacity: float = 0.5, percentile: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds (min [3], max [3]) of the means of Gaussians at least `min_opacity`
    opaque, between the `percentile` and 100 - `percentile` percentiles, so stray floaters do
    not stretch them."""
    with torch.no_grad():
        keep = gaussians.activated_opacities >= min_opacity
        pts = gaussians.means[keep] if keep.sum() >= 10 else gaussians.means
        pts = pts.cpu().double().numpy()
    if len(pts) == 0:
        return np.zeros(3), np.zeros(3)
    return np.percentile(pts, percentile, axis=0), np.percentile(pts, 100 - percentile, axis=0)


def canonical_transform(gaussians: Gaussians, cameras: Cameras, up: np.ndarray) -> dict:
    """Similarity from an object asset's own frame into its canonical local frame: base on
    z = 0, centred on the z axis, up +z, front facing -y. The front is taken to face the
    capture's first camera (turn the asset at placement if it does not). Returns
    {"rotation": [3][3], "translation": [3], "scale": 1.0} for x -> s R x + t."""
    R_up = rotation_between(up, WORLD_UP)
    lo, hi = robust_bounds(gaussians)
    centre = (lo + hi) / 2
    to_cam = R_up @ (cameras.centers[0] - centre)
    heading = np.arctan2(to_cam[1], to_cam[0])
    # Turn about z so the first camera's direction (seen from the object) becomes -y.
    turn = -np.pi / 2 - heading
    R = axis_rotation("z", turn) @ R_up
    moved = gaussians.transformed(torch.tensor(R, dtype=gaussians.dtype))
    lo2, hi2 = robust_bounds(moved)
    t = -np.array([(lo2[0] + hi2[0]) / 2, (lo2[1] + hi2[1]) / 2, lo2[2]])
    return {"rotation": R.tolist(), "translation": t.tolist(), "scale": 1.0}
