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
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
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
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            C2[0] * x * y,
            C2[1] * y * z,
            C2[2] * (2.0 * zz - xx - yy),
            C2[3] * x * z,
            C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            C3[0] * y * (3.0 * xx - yy),
            C3[1] * x * y * z,
            C3[2] * y * (4.0 * zz - xx - yy),
            C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            C3[4] * x * (4.0 * zz - xx - yy),
            C3[5] * z * (xx - yy),
            C3[6] * x * (xx - 3.0 * yy),
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


def _probe_dirs() -> torch.Tensor:
    """7 unit directions [7,3] on which bands 2 and 3 are well determined (the 7x7 basis
    matrix of band 3 and the 7x5 one of band 2 are best conditioned among fixed random
    draws), so a band's coefficients follow from its values there."""
    gen = torch.Generator().manual_seed(7)
    best, best_cond = None, math.inf
    for _ in range(256):
        d = torch.nn.functional.normalize(torch.randn(7, 3, generator=gen, dtype=torch.float64), dim=-1)
        Y = sh_basis(3, d)
        cond = max(float(torch.linalg.cond(Y[:, 4:9])), float(torch.linalg.cond(Y[:, 9:16])))
        if cond < best_cond:
            best, best_cond = d, cond
    return best


_PROBES: dict[str, torch.Tensor] = {}


def sh_probes() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The probe directions [7,3] and the maps from a band's values there to its
    coefficients: band 2 [5,7], band 3 [7,7] (float64, computed once)."""
    if not _PROBES:
        d = _probe_dirs()
        Y = sh_basis(3, d)
        _PROBES["dirs"] = d
        _PROBES["fit2"] = torch.linalg.pinv(Y[:, 4:9])
        _PROBES["fit3"] = torch.linalg.inv(Y[:, 9:16])
    return _PROBES["dirs"], _PROBES["fit2"], _PROBES["fit3"]


def rotate_sh_coeffs_batch(shN: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Rotate each Gaussian's higher-band SH coefficients by its own rotation.

    shN [N, K, 3] (bands 1..d, d <= 3); R [N, 3, 3] rotations. Returns [N, K, 3] with the
    convention of `rotate_sh_coeffs`: Gaussian i's rotated function at direction v equals
    its original at R_i^T v. Band 1 is a vector in disguise (c = C1 (-v_y, v_z, -v_x)), so
    it rotates as one; bands 2 and 3 are evaluated at 7 probe directions turned by R_i^T and
    fitted back (exact: a rotated band stays in its band).
    """
    k = shN.shape[1]
    degree = int(round(math.sqrt(k + 1))) - 1
    if (degree + 1) ** 2 - 1 != k or degree > 3:
        raise ValueError(f"rotate_sh_coeffs_batch handles SH degrees 0-3, got {k} higher-band coefficients")
    if degree == 0:
        return shN
    R = R.to(shN.dtype)
    # Band 1: f(v) = C1 (-c0 v_y + c1 v_z - c2 v_x) = C1 a . v with a = (-c2, -c0, c1); f(R^T v) = C1 (R a) . v.
    c = shN[:, 0:3]
    a = torch.stack([-c[:, 2], -c[:, 0], c[:, 1]], dim=1)  # [N,3,3ch]
    ra = R @ a
    out = [torch.stack([-ra[:, 1], ra[:, 2], -ra[:, 0]], dim=1)]
    if degree >= 2:
        dirs, fit2, fit3 = sh_probes()
        turned = dirs.to(shN.dtype) @ R  # [N,7,3]: rows are (R^T d)^T
        Y = sh_basis(degree, turned)  # [N,7,(d+1)^2]
        values = Y[:, :, 4:9] @ shN[:, 3:8]  # band 2 at the turned probes [N,7,3]
        out.append(fit2.to(shN.dtype) @ values)
        if degree >= 3:
            out.append(fit3.to(shN.dtype) @ (Y[:, :, 9:16] @ shN[:, 8:15]))
    return torch.cat(out, dim=1)
