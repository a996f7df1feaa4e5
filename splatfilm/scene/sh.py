"""Real spherical harmonics as 3D Gaussian Splatting and gsplat use them: the basis and its rotation.

Basis order within a band is m = -l..l with the sign convention of the original 3DGS
`eval_sh` (the same basis gsplat's kernels evaluate). Colour from coefficients is the render
stage `splatfilm.render.spherical_harmonics`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from splatfilm.errors import SplatfilmError

if TYPE_CHECKING:
    import numpy as np

MAX_SH_DEGREE = 4
"""The highest SH degree splatfilm holds: gsplat's (its kernels and `_eval_sh_bases_fast` stop
at band 4; 3DGS's stop at 3). The basis, its rotation and the CPU renderer cover every band up
to it, so a file of a higher degree is refused when read rather than misrendered later."""

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
# Band 4, m = -4..4: (3/4) sqrt(35/pi), -(3/4) sqrt(35/2pi), (3/4) sqrt(5/pi), -(3/4) sqrt(5/2pi),
# (3/16) sqrt(1/pi), ..., (3/16) sqrt(35/pi); the odd-m functions negative, as gsplat's basis.
C4 = (
    2.5033429417967046,
    -1.7701307697799304,
    0.9461746957575601,
    -0.6690465435572892,
    0.10578554691520431,
    -0.6690465435572892,
    0.47308734787878004,
    -1.7701307697799304,
    0.6258357354491761,
)


def rgb_to_sh0(rgb: float | np.ndarray | torch.Tensor) -> float | np.ndarray | torch.Tensor:
    """Degree-0 SH coefficients of a view-independent colour: (rgb - 0.5) / C0, the inverse of
    `sh0_to_rgb`. rgb in [0,1] (any shape; floats, numpy arrays or torch tensors)."""
    return (rgb - 0.5) / C0


def sh0_to_rgb(sh0: float | np.ndarray | torch.Tensor) -> float | np.ndarray | torch.Tensor:
    """The colour [0,1] the degree-0 band gives, 0.5 + C0 * sh0, before the renderer's clamp at
    0 (any shape; floats, numpy arrays or torch tensors)."""
    return sh0 * C0 + 0.5


def num_sh_bases(degree: int) -> int:
    """Coefficients per channel for SH up to `degree`: (degree + 1)^2."""
    return (degree + 1) ** 2


def sh_degree_of(count: int) -> int:
    """The SH degree d of `count` coefficients per channel, (d + 1)^2 (the inverse of
    `num_sh_bases`); SplatfilmError unless it is one for a degree 0..MAX_SH_DEGREE."""
    d = math.isqrt(max(count, 0)) - 1
    if (d + 1) ** 2 != count or d < 0:
        raise SplatfilmError(f"{count} SH coefficients per channel is not (d+1)^2 for a degree 0-{MAX_SH_DEGREE}")
    if d > MAX_SH_DEGREE:
        raise SplatfilmError(f"SH degree {d} is not supported: splatfilm renders and rotates SH up to degree "
                             f"{MAX_SH_DEGREE}")
    return d


def sh_basis(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    """Real SH basis functions at unit directions.

    dirs [..., 3] (unit length) -> [..., (degree+1)^2]. Degrees 0..MAX_SH_DEGREE.
    """
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise SplatfilmError(f"SH degree must be 0-{MAX_SH_DEGREE}, got {degree}")
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
    if degree >= 4:
        # Homogeneous quartics (as bands 2 and 3): on the unit sphere these are gsplat's Sloan
        # recurrences, e.g. 6zz - xx - yy = 7zz - 1.
        rr = xx + yy
        out += [
            C4[0] * x * y * (xx - yy),
            C4[1] * y * z * (3.0 * xx - yy),
            C4[2] * x * y * (6.0 * zz - rr),
            C4[3] * y * z * (4.0 * zz - 3.0 * rr),
            C4[4] * (zz * (8.0 * zz - 24.0 * rr) + 3.0 * rr * rr),
            C4[5] * x * z * (4.0 * zz - 3.0 * rr),
            C4[6] * (xx - yy) * (6.0 * zz - rr),
            C4[7] * x * z * (xx - 3.0 * yy),
            C4[8] * (xx * (xx - 3.0 * yy) - yy * (3.0 * xx - yy)),
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

    R [3,3] rotation. Returns [D_1 [3,3], D_2 [5,5], ...] up to D_degree [2 degree + 1, 2 degree + 1],
    such that coefficients c of band l rotate as c' = D_l @ c: the rotated function at direction d
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
    degree = sh_degree_of(shN.shape[1] + 1)
    if degree == 0:
        return shN
    mats = sh_rotation_matrices(R, degree)
    out = []
    for band, D in enumerate(mats, start=1):
        lo, hi = band * band - 1, (band + 1) * (band + 1) - 1
        out.append(torch.einsum("ij,njc->nic", D.to(shN.dtype).to(shN.device), shN[:, lo:hi]))
    return torch.cat(out, dim=1)


_X90: list[torch.Tensor] = []


def sh_x90() -> list[torch.Tensor]:
    """D_l of a quarter turn about +x for bands 2..MAX_SH_DEGREE ([5,5], [7,7], [9,9], float64;
    entries that are zero up to rounding set to exactly zero): the fixed, sparse part of
    rotating SH as Rz(a) Rx(-90) Rz(b) Rx(90) Rz(c) (computed once)."""
    if not _X90:
        quarter = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
        for D in sh_rotation_matrices(quarter, MAX_SH_DEGREE)[1:]:
            _X90.append(torch.where(D.abs() < 1e-12, torch.zeros_like(D), D))
    return _X90


def zyz_angles(R: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cosines and sines (ca, sa, cb, sb, cc, sc) [N] of the angles with R = Rz(a) Ry(b) Rz(c),
    for rotations R [N,3,3] (no trigonometry; where sin b is 0, c = 0)."""
    cb = R[:, 2, 2].clamp(-1.0, 1.0)
    sb = torch.sqrt(R[:, 0, 2] ** 2 + R[:, 1, 2] ** 2)
    ok = sb > 1e-9
    safe = torch.where(ok, sb, torch.ones_like(sb))
    ca = torch.where(ok, R[:, 0, 2] / safe, R[:, 1, 1])
    sa = torch.where(ok, R[:, 1, 2] / safe, -R[:, 0, 1])
    cc = torch.where(ok, -R[:, 2, 0] / safe, torch.ones_like(sb))
    sc = torch.where(ok, R[:, 2, 1] / safe, torch.zeros_like(sb))
    cb = torch.where(ok, cb, torch.sign(cb))
    sb = torch.where(ok, sb, torch.zeros_like(sb))
    return ca, sa, cb, sb, cc, sc


def _z_turn(c: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Band coefficients c [N, 2l+1, 3] turned about z by an angle with cosine and sine [N]:
    the pair (m, -m) turns by |m| times the angle (3DGS basis order and signs)."""
    l = (c.shape[1] - 1) // 2
    cm, sm = [torch.ones_like(cos)], [torch.zeros_like(sin)]
    for _ in range(l):  # cos/sin of m times the angle
        cm.append(cm[-1] * cos - sm[-1] * sin)
        sm.append(sm[-1] * cos + cm[-2] * sin)
    m = [abs(i - l) for i in range(2 * l + 1)]
    cosm = torch.stack([cm[k] for k in m], dim=1)[:, :, None]
    sinm = torch.stack([sm[k] if i < l else -sm[k] for i, k in enumerate(m)], dim=1)[:, :, None]
    return cosm * c + sinm * c.flip(1)


def rotate_sh_coeffs_batch(shN: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Rotate each Gaussian's higher-band SH coefficients by its own rotation.

    shN [N, K, 3] (bands 1..d, d <= MAX_SH_DEGREE); R [N, 3, 3] rotations. Returns [N, K, 3] with the
    convention of `rotate_sh_coeffs`: Gaussian i's rotated function at direction v equals
    its original at R_i^T v. Band 1 is a vector in disguise (c = C1 (-v_y, v_z, -v_x)), so
    it rotates as one; bands 2 and up go through R = Rz(a) Rx(-90) Rz(b) Rx(90) Rz(c) (Ry(b)
    written with quarter turns about x): turns about z act on (m, -m) pairs, the quarter
    turns are fixed sparse matrices.
    """
    degree = sh_degree_of(shN.shape[1] + 1)
    if degree == 0:
        return shN
    R = R.to(shN.dtype)
    # Band 1: f(v) = C1 (-c0 v_y + c1 v_z - c2 v_x) = C1 a . v with a = (-c2, -c0, c1); f(R^T v) = C1 (R a) . v.
    c = shN[:, 0:3]
    a = torch.stack([-c[:, 2], -c[:, 0], c[:, 1]], dim=1)  # [N,3,3ch]
    ra = R @ a
    out = [torch.stack([-ra[:, 1], ra[:, 2], -ra[:, 0]], dim=1)]
    if degree >= 2:
        ca, sa, cb, sb, cc, sc = zyz_angles(R)
        for band, X in zip(range(2, degree + 1), sh_x90()):
            X = X.to(shN.dtype).to(shN.device)
            lo = band * band - 1
            v = _z_turn(shN[:, lo:lo + 2 * band + 1], cc, sc)
            v = _z_turn(torch.einsum("ij,njc->nic", X, v), cb, sb)
            out.append(_z_turn(torch.einsum("ji,njc->nic", X, v), ca, sa))
    return torch.cat(out, dim=1)
