"""Gaussians -> what viser's splat shader draws: centres, 3D covariances, colours, opacities.

viser draws view-independent colour, so only the degree-0 SH band is sent (the browser's
splats are an approximation; "render this frame" shows splatfilm's own render).

A browser sorts and draws every splat it is sent on each camera move, so a scene of millions
is sent as a subset (`view --max-splats`): each asset's share of the budget (`split_budget`),
the Gaussians of it that cover most of any view, ranked by opacity x footprint
(`visibility`), deterministically. Renders are splatfilm's, of all of them.
"""

from __future__ import annotations

import math
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


def visibility(g: Gaussians) -> np.ndarray:
    """How much each Gaussian can cover of a view, float64 [N]: its opacity times its largest
    cross-section, the product of its two largest scales (m^2). View-independent, so a subset
    ranked by it does not change as the camera moves."""
    with torch.no_grad():
        a, b, c = g.activated_scales.detach().to("cpu", torch.float64).unbind(-1)
        # The largest and the middle of three without sorting each row (a sort per Gaussian
        # was most of `view`'s start at millions): the same two values, so the same products.
        high = torch.maximum(torch.maximum(a, b), c)
        middle = torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))
        opacity = g.activated_opacities.detach().to("cpu", torch.float64).reshape(-1)
        return (opacity * middle * high).numpy()


def most_visible_ids(g: Gaussians, count: int) -> torch.Tensor | None:
    """Indices [count] (ascending, on g's device) of the `count` Gaussians of g with the highest
    `visibility`, or None when g has no more than `count` (all of them)."""
    if len(g) <= count:
        return None
    k = max(int(count), 0)
    if k == 0:
        return torch.zeros(0, dtype=torch.int64, device=g.device)
    # Highest first; equal scores in file order, so the subset is deterministic: what a stable
    # sort of all N would keep, from a partition (O(N)) that places the k-th score alone.
    order = -visibility(g)
    cut = np.partition(order, k - 1)[k - 1]
    # A NaN score (0 * inf) sorts after every number, as the stable sort put it.
    nan = np.isnan(order)
    above = np.flatnonzero(~nan if np.isnan(cut) else order < cut)
    tied = np.flatnonzero(nan if np.isnan(cut) else order == cut)[:k - len(above)]
    keep = np.sort(np.concatenate([above, tied]))
    return torch.from_numpy(keep).to(g.device)


def split_budget(counts: dict[str, int], budget: int) -> dict[str, int]:
    """How many Gaussians of each group (`counts`: {name: N}) go to the browser under `budget`:
    all where they fit, else the same share of each (largest remainders rounded up, in order),
    so a small prop keeps its share rather than losing every Gaussian to a set's bigger ones.
    Sums to min(budget, total)."""
    total = sum(counts.values())
    if total <= budget:
        return dict(counts)
    exact = {name: n * max(int(budget), 0) / total for name, n in counts.items()}
    kept = {name: math.floor(x) for name, x in exact.items()}
    short = max(int(budget), 0) - sum(kept.values())
    for name in sorted(exact, key=lambda n: -(exact[n] - kept[n]))[:short]:  # sorted is stable: ties in order
        kept[name] += 1
    return kept


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
