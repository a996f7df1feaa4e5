"""Gaussians -> what viser's splat shader draws: centres, 3D covariances, colours, opacities.

viser draws view-independent colour, so only the degree-0 SH band is sent (the browser's
splats are an approximation; "render this frame" shows splatfilm's own render).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from splatfilm.render.projection import quat_scale_to_covar
from splatfilm.scene.gaussians import Gaussians


@dataclass
class SplatArrays:
    """Arrays for `viser.SceneApi.add_gaussian_splats` / `GaussianSplatHandle.set_gaussians`.

    centers [N,3] float32 (world, metres); covariances [N,3,3] float32; rgbs [N,3] float32 in
    [0, 1]; opacities [N,1] float32 in (0, 1)."""

    centers: np.ndarray
    covariances: np.ndarray
    rgbs: np.ndarray
    opacities: np.ndarray

    def __len__(self) -> int:
        return int(self.centers.shape[0])

    def as_args(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(centers, covariances, rgbs, opacities): the positional arguments viser's splat calls take."""
        return self.centers, self.covariances, self.rgbs, self.opacities


def splat_arrays(g: Gaussians) -> SplatArrays:
    """The viser arrays of Gaussians g (N may be 0)."""
    with torch.no_grad():
        g = g.to("cpu", torch.float32)
        covariances = quat_scale_to_covar(g.quats, g.activated_scales)
        return SplatArrays(
            g.means.numpy().astype(np.float32, copy=True),
            covariances.numpy().astype(np.float32, copy=False),
            g.base_colors.clamp(0.0, 1.0).numpy().astype(np.float32, copy=False),
            g.activated_opacities.reshape(-1, 1).numpy().astype(np.float32, copy=False),
        )
