"""Spherical harmonics, the colour stage: view-dependent RGB from SH coefficients (gsplat's
`spherical_harmonics`, the same real basis its kernels evaluate)."""

from __future__ import annotations

import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.sh import num_sh_bases, sh_basis


def spherical_harmonics(degree: int, coeffs: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Colour from SH coefficients, gsplat's way (0.5 added, clamped at 0).

    coeffs [..., K, 3] with K >= (degree+1)^2; dirs [..., 3], any length (normalised
    here; a zero direction gives the degree-0 colour). Returns RGB [..., 3].
    """
    n = num_sh_bases(degree)
    if coeffs.shape[-2] < n:
        raise SplatfilmError(f"SH degree {degree} needs {n} coefficients, got {coeffs.shape[-2]}")
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    basis = sh_basis(degree, dirs)
    rgb = (basis[..., None] * coeffs[..., :n, :]).sum(dim=-2)
    return (rgb + 0.5).clamp_min(0.0)
