"""Walk cycles: how far a clip's feet carry a character per cycle.

A walk cycle made in place (as most tools export them: the hips stay over the origin) slides
each planted foot backwards under the body, like a treadmill. The ground the character
covers per cycle, its stride, is that belt's speed times the cycle's duration: played while
the character moves at v metres per second, the cycle must run stride / v seconds per
cycle for a planted foot to stand still on the ground (no foot skate).

A foot is planted (in contact) while its height along `up` is within `contact_fraction` of
its lift above its lowest point in the clip; the belt speed is the median speed of the
planted feet across `up` (the ground plane): the median, because a foot slowing down at the
start of its swing is still low for a moment.
"""

from __future__ import annotations

import numpy as np

from splatfilm.scene.skeleton import Clip, Rig, global_transforms, sample_clip

__all__ = ["CONTACT_FRACTION", "cycle_stride", "foot_tracks"]

CONTACT_FRACTION = 0.1


def foot_tracks(rig: Rig, clip: Clip, feet: list[int], samples: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Sample times [S+1] over the clip (0 to its duration) and the feet's positions
    [S+1, F, 3] in the asset's frame."""
    times = np.linspace(0.0, clip.duration, samples + 1)
    pos = np.array([global_transforms(rig, sample_clip(rig, clip, float(t)))[feet, :3, 3] for t in times])
    return times, pos


def cycle_stride(rig: Rig, clip: Clip, feet: list[int], up: np.ndarray, samples: int = 96,
                 contact_fraction: float = CONTACT_FRACTION) -> float:
    """Ground covered per cycle of an in-place walk clip (asset-frame units): the planted
    feet's mean speed across `up` [3] times the clip's duration. 0 for a clip whose planted
    feet do not slide (an idle), or one without duration."""
    if clip.duration <= 0 or not feet:
        return 0.0
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    times, pos = foot_tracks(rig, clip, feet, samples)
    height = pos @ up  # [S+1, F]
    lo, hi = height.min(0), height.max(0)
    flat = pos - height[..., None] * up
    velocity = np.diff(flat, axis=0) / np.diff(times)[:, None, None]  # [S, F, 3]
    mid = (height[1:] + height[:-1]) / 2
    planted = mid <= lo + contact_fraction * np.maximum(hi - lo, 1e-9)
    if not planted.any():
        return 0.0
    speed = np.linalg.norm(velocity, axis=-1)[planted]
    return float(np.median(speed) * clip.duration)
