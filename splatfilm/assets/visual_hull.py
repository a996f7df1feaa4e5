"""An object's visual hull from its masks: how the capture's views vote on points (`hull_votes`),
for fit's initial points (`fit.init.carve_by_masks`) and `clean`'s hull test
(`assets.cleanup.outside_hull`).
"""

from __future__ import annotations

import numpy as np
import torch

from splatfilm.render.camera_models import lens_visible, project_points
from splatfilm.scene.cameras import Cameras, world_to_camera


def hull_votes(points: np.ndarray, cameras: Cameras, masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For points [P,3] (world units) and C views with masks ([H,W,1] at each camera's size, the
    object where >= 0.5): (how many views have each point in frame, in front of the lens; how
    many of those put it on the object), int [P] each."""
    inside = np.zeros(len(points), np.int64)
    seen = np.zeros(len(points), np.int64)
    for i, mask in enumerate(masks):
        pc = world_to_camera(points, cameras.viewmats[i])
        front = lens_visible(pc, cameras.camera_model[i], cameras.distortion[i])
        # Points the lens cannot see project as if at z = 1, so no pixel is inf.
        safe = np.where(front[:, None], pc, [0.0, 0.0, 1.0])
        uv = project_points(torch.from_numpy(safe)[None], torch.tensor(cameras.Ks[i : i + 1]),
                            cameras.camera_model[i], torch.tensor(cameras.distortion[i : i + 1]))[0].numpy()
        u, v = np.where(front, uv[:, 0], -1), np.where(front, uv[:, 1], -1)
        h, w = mask.shape[:2]
        in_view = front & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        ui = np.clip(u.astype(int), 0, w - 1)
        vi = np.clip(v.astype(int), 0, h - 1)
        seen += in_view
        inside += in_view & (mask[vi, ui, 0] >= 0.5)
    return seen, inside
