"""Contact shadows: a soft dark patch on the ground under an asset that stands on it, so a
character or prop inserted into a captured set sits on the floor instead of hovering.

The patch is splats, not a light: a 9 x 9 grid of flat black Gaussians on the ground plane
around the point under the asset's base, their opacities falling off as a Gaussian of the
distance (sigma = the asset's footprint radius), so they composite over the floor like any
splat. Splats are sorted by their centres' depth, so a patch lying on the floor would
interleave with the floor's own splats and lose half its darkening: each splat is drawn 5 cm
toward the frame's camera along its line of sight and shrunk by the same perspective factor,
which keeps its footprint on screen and sorts it just in front of the floor. Small splats
rather than one big one, for the same reason. The patch fades as the base rises above the
ground (gone at three footprint radii), so a prop dropped from above gains its shadow as it
lands.

In a film script, under an asset standing `on_ground`: `shadow: true` (the default for
assets with a canonical frame: characters and props), `shadow: false`, or
`shadow: {opacity: 0.5, radius: 0.3}` (radius in world metres; default from the asset's
footprint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from splatfilm.assets.ground import GroundPlane
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import quat_from_rotation, rotation_between

_GRID = 9  # splats a side
_LIFT = 0.01  # metres off the plane
_TOWARD_CAMERA = 0.05  # metres each splat is drawn toward the camera (at most half its distance)
_FADE_RADII = 3.0  # the shadow is gone when the base is this many radii above the ground


@dataclass
class ContactShadow:
    """plane: the world ground plane it lies on; radius: the footprint radius (m), the falloff
    sigma; opacity: the darkening at its centre when the asset stands on the ground."""

    plane: GroundPlane
    radius: float
    opacity: float = 0.5

    def key(self) -> str:
        return f"shadow {self.plane.normal.round(9).tolist()} {self.plane.offset:.9f} {self.radius:.9f} {self.opacity:.9f}"

    def gaussians(self, base: np.ndarray, camera: np.ndarray | None = None,
                  lowest: float | None = None) -> Gaussians | None:
        """The patch [81 Gaussians, world frame, SH degree 0] under `base` [3] (the asset's
        canonical origin in the world) as seen from `camera` [3] (its centre; None: left on the
        plane), or None once the asset is too high to cast one. It fades with the height of the
        base or, when lower, of `lowest` (m above the plane: the asset's lowest part; a prop
        that lands on its side or upside down rests on another part than its base)."""
        n = self.plane.normal
        height = float(self.plane.signed_distance(base))
        above = height if lowest is None else min(height, max(0.0, float(lowest)))
        strength = self.opacity * float(np.clip(1.0 - above / (_FADE_RADII * self.radius), 0.0, 1.0))
        if strength <= 1e-3:
            return None
        R = rotation_between([0.0, 0.0, 1.0], n)  # the patch's z -> the plane's normal
        spacing = self.radius / 2
        u = (np.arange(_GRID) - (_GRID - 1) / 2) * spacing
        a, b = np.meshgrid(u, u)
        local = np.c_[a.ravel(), b.ravel(), np.zeros(a.size)]
        foot = base - height * n  # the point under the base, on the plane
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


def lowest_point(g: Gaussians, shadow: ContactShadow) -> float:
    """Height (m) above `shadow`'s plane of the lowest part of `g` (an asset placed in the
    world): the 1st percentile of its opaque Gaussians' distances to the plane, so a stray
    splat below does not count."""
    opaque = g.activated_opacities.detach() > 0.5
    means = (g.means.detach()[opaque] if int(opaque.sum()) >= 10 else g.means.detach()).double().cpu().numpy()
    if len(means) == 0:
        return float("inf")
    return float(np.percentile(shadow.plane.signed_distance(means), 1))
