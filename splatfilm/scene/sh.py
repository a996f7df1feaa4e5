"""Real spherical harmonics as 3D Gaussian Splatting and gsplat use them: the basis and its rotation.

Basis order within a band is m = -l..l with the sign convention of the original 3DGS
`eval_sh` (the same basis gsplat's kernels evaluate). Colour from coefficients is the render
stage `splatfilm.render.spherical_harmonics`.
"""

from __future__ import annotations

import math

import torch

from splatfilm.errors import SplatfilmError

C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def num_sh_bases(degree: int) -> int:
    """Coefficients per channel for SH up to `degree`: (degree + 1)^2."""
    return (degree + 1) ** 2


def sh_basis(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    """Real SH basis functions at unit directions.

    dirs [..., 3] (unit length) -> [..., (degree+1)^2]. Degrees 0-3.
    """
    if not 0 <= degree <= 3:
        raise SplatfilmError(f"SH degree must be 0-3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            _C2[0] * x * y,
            _C2[1] * y * z,
            _C2[2] * (2.0 * zz - xx - yy),
            _C2[3] * x * z,
            _C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            _C3[0] * y * (3.0 * xx - yy),
            _C3[1] * x * y * z,
            _C3[2] * y * (4.0 * zz - xx - yy),
            _C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            _C3[4] * x * (4.0 * zz - xx - yy),
            _C3[5] * z * (xx - yy),
            _C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(out, dim=-1)


def _sample_dirs(count: int, dtype: torch.dtype) -> torch.Tensor:
    """Deterministic, well spread unit directions (Fibonacci sphere) [count, 3]."""
    i = torch.arange(count, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / count
    r = torch.sqrt(1.0 - z * z)
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=-1).to(dtype)


def sh_rotation_matrices(R: torch.Tensor, degree: int) -> list[torch.Tensor]:
    """Real Wigner-D matrices of a rotation, one per band 1..degree.

    R [3,3] rotation. Returns [D_1 [3,3], D_2 [5,5], D_3 [7,7]] (up to `degree`), such that
    coefficients c of band l rotate as c' = D_l @ c: the rotated function at direction d
    equals the original at R^T d. Each band is an invariant subspace, so D_l is found
    exactly (to float64 rounding) by least squares on sample directions.
    """
    R64 = R.detach().to(torch.float64).cpu()
    dirs = _sample_dirs(64, torch.float64)
    A = sh_basis(degree, dirs)  # Y(d)
    B = sh_basis(degree, dirs @ R64)  # Y(R^T d): rows of dirs @ R are (R^T d)^T
    mats = []
    for band in range(1, degree + 1):
        lo, hi = band * band, (band + 1) * (band + 1)
        # Want f'(d) = f(R^T d): Y(d) c' = Y(R^T d) c  =>  c' = pinv(Y(d)) Y(R^T d) c
        mats.append(torch.linalg.lstsq(A[:, lo:hi], B[:, lo:hi]).solution)
    return mats


def rotate_sh_coeffs(shN: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Rotate higher-band SH coefficients by a world rotation.

    shN [N, K, 3] (bands 1..d, K = (d+1)^2 - 1); R [3,3]. Returns [N, K, 3].
    """
    k = shN.shape[1]
    degree = int(round(math.sqrt(k + 1))) - 1
    if degree == 0:
        return shN
    mats = sh_rotation_matrices(R, degree)
    out = []
    for band, D in enumerate(mats, start=1):
        lo, hi = band * band - 1, (band + 1) * (band + 1) - 1
        out.append(torch.einsum("ij,njc->nic", D.to(shN.dtype).to(shN.device), shN[:, lo:hi]))
    return torch.cat(out, dim=1)
