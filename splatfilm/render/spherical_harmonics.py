"""Spherical harmonics, the colour stage: view-dependent RGB from SH coefficients (gsplat's
`spherical_harmonics`, the same real basis its kernels evaluate).

`spherical_harmonics` is the readable reference (PyTorch, on scene.sh's basis);
`fused_spherical_harmonics` is the CPU fast path, one numba pass per camera with a
hand-written backward (gsplat's kernel does the same on CUDA): in PyTorch every basis
function and product is a pass over N Gaussians with a [C,N,25,3] temporary (up to band 4).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit, prange

from splatfilm.errors import SplatfilmError
from splatfilm.scene.sh import C0, C1, C2, C3, C4, MAX_SH_DEGREE, num_sh_bases, sh_basis


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


@njit(cache=True)
def _basis(degree, x, y, z, out):
    """The real SH basis at a unit direction into out[:(degree+1)^2] (scene.sh's order)."""
    out[0] = C0
    if degree >= 1:
        out[1] = -C1 * y
        out[2] = C1 * z
        out[3] = -C1 * x
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out[4] = C2[0] * x * y
        out[5] = C2[1] * y * z
        out[6] = C2[2] * (2.0 * zz - xx - yy)
        out[7] = C2[3] * x * z
        out[8] = C2[4] * (xx - yy)
        if degree >= 3:
            out[9] = C3[0] * y * (3.0 * xx - yy)
            out[10] = C3[1] * x * y * z
            out[11] = C3[2] * y * (4.0 * zz - xx - yy)
            out[12] = C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy)
            out[13] = C3[4] * x * (4.0 * zz - xx - yy)
            out[14] = C3[5] * z * (xx - yy)
            out[15] = C3[6] * x * (xx - 3.0 * yy)
            if degree >= 4:
                rr = xx + yy
                out[16] = C4[0] * x * y * (xx - yy)
                out[17] = C4[1] * y * z * (3.0 * xx - yy)
                out[18] = C4[2] * x * y * (6.0 * zz - rr)
                out[19] = C4[3] * y * z * (4.0 * zz - 3.0 * rr)
                out[20] = C4[4] * (zz * (8.0 * zz - 24.0 * rr) + 3.0 * rr * rr)
                out[21] = C4[5] * x * z * (4.0 * zz - 3.0 * rr)
                out[22] = C4[6] * (xx - yy) * (6.0 * zz - rr)
                out[23] = C4[7] * x * z * (xx - 3.0 * yy)
                out[24] = C4[8] * (xx * (xx - 3.0 * yy) - yy * (3.0 * xx - yy))


@njit(cache=True)
def _basis_vjp(degree, x, y, z, g):
    """d(sum_k g[k] basis_k)/d(x, y, z) at a unit direction (before normalisation)."""
    gx = 0.0
    gy = 0.0
    gz = 0.0
    if degree >= 1:
        gx -= C1 * g[3]
        gy -= C1 * g[1]
        gz += C1 * g[2]
    if degree >= 2:
        gx += C2[0] * y * g[4] - 2.0 * C2[2] * x * g[6] + C2[3] * z * g[7] + 2.0 * C2[4] * x * g[8]
        gy += C2[0] * x * g[4] + C2[1] * z * g[5] - 2.0 * C2[2] * y * g[6] - 2.0 * C2[4] * y * g[8]
        gz += C2[1] * y * g[5] + 4.0 * C2[2] * z * g[6] + C2[3] * x * g[7]
        if degree >= 3:
            xx, yy, zz = x * x, y * y, z * z
            gx += (6.0 * C3[0] * x * y * g[9] + C3[1] * y * z * g[10] - 2.0 * C3[2] * x * y * g[11]
                   - 6.0 * C3[3] * x * z * g[12] + C3[4] * (4.0 * zz - 3.0 * xx - yy) * g[13]
                   + 2.0 * C3[5] * x * z * g[14] + C3[6] * (3.0 * xx - 3.0 * yy) * g[15])
            gy += (C3[0] * (3.0 * xx - 3.0 * yy) * g[9] + C3[1] * x * z * g[10]
                   + C3[2] * (4.0 * zz - xx - 3.0 * yy) * g[11] - 6.0 * C3[3] * y * z * g[12]
                   - 2.0 * C3[4] * x * y * g[13] - 2.0 * C3[5] * y * z * g[14] - 6.0 * C3[6] * x * y * g[15])
            gz += (C3[1] * x * y * g[10] + 8.0 * C3[2] * y * z * g[11] + C3[3] * (6.0 * zz - 3.0 * xx - 3.0 * yy) * g[12]
                   + 8.0 * C3[4] * x * z * g[13] + C3[5] * (xx - yy) * g[14])
            if degree >= 4:
                rr = xx + yy
                gx += (C4[0] * y * (3.0 * xx - yy) * g[16] + 6.0 * C4[1] * x * y * z * g[17]
                       + C4[2] * y * (6.0 * zz - 3.0 * xx - yy) * g[18] - 6.0 * C4[3] * x * y * z * g[19]
                       + 12.0 * C4[4] * x * (rr - 4.0 * zz) * g[20]
                       + C4[5] * z * (4.0 * zz - 9.0 * xx - 3.0 * yy) * g[21]
                       + 4.0 * C4[6] * x * (3.0 * zz - xx) * g[22] + 3.0 * C4[7] * z * (xx - yy) * g[23]
                       + 4.0 * C4[8] * x * (xx - 3.0 * yy) * g[24])
                gy += (C4[0] * x * (xx - 3.0 * yy) * g[16] + 3.0 * C4[1] * z * (xx - yy) * g[17]
                       + C4[2] * x * (6.0 * zz - xx - 3.0 * yy) * g[18]
                       + C4[3] * z * (4.0 * zz - 3.0 * xx - 9.0 * yy) * g[19]
                       + 12.0 * C4[4] * y * (rr - 4.0 * zz) * g[20] - 6.0 * C4[5] * x * y * z * g[21]
                       - 4.0 * C4[6] * y * (3.0 * zz - yy) * g[22] - 6.0 * C4[7] * x * y * z * g[23]
                       + 4.0 * C4[8] * y * (yy - 3.0 * xx) * g[24])
                gz += (C4[1] * y * (3.0 * xx - yy) * g[17] + 12.0 * C4[2] * x * y * z * g[18]
                       + 3.0 * C4[3] * y * (4.0 * zz - rr) * g[19]
                       + 16.0 * C4[4] * z * (2.0 * zz - 3.0 * rr) * g[20]
                       + 3.0 * C4[5] * x * (4.0 * zz - rr) * g[21] + 12.0 * C4[6] * z * (xx - yy) * g[22]
                       + C4[7] * x * (xx - 3.0 * yy) * g[23])
    return gx, gy, gz


@njit(cache=True)
def _unit(dx, dy, dz):
    # torch.nn.functional.normalize's rule: divide by max(norm, 1e-12).
    n = max(math.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
    return dx / n, dy / n, dz / n, n


_CHUNK = 1024  # Gaussians per parallel task (scratch made once per task)
_MAX_BASES = num_sh_bases(MAX_SH_DEGREE)  # the per-task basis scratch holds every band


@njit(parallel=True, cache=True)
def _sh_forward(degree, head, rest, dirs, out):
    # Coefficient k is head[n, k] for k < head's K, else rest[n, k - K] (the bands kept apart,
    # as Gaussians stores them: sh0 and shN); summed in the same order either way.
    C, N = dirs.shape[0], dirs.shape[1]
    n_bases = (degree + 1) ** 2
    n_head = min(head.shape[1], n_bases)
    for chunk in prange((N + _CHUNK - 1) // _CHUNK):
        basis = np.empty(_MAX_BASES)
        for n in range(chunk * _CHUNK, min(N, (chunk + 1) * _CHUNK)):
            for c in range(C):
                x, y, z, _ = _unit(float(dirs[c, n, 0]), float(dirs[c, n, 1]), float(dirs[c, n, 2]))
                _basis(degree, x, y, z, basis)
                for ch in range(3):
                    v = 0.5
                    for k in range(n_head):
                        v += basis[k] * float(head[n, k, ch])
                    for k in range(n_head, n_bases):
                        v += basis[k] * float(rest[n, k - n_head, ch])
                    out[c, n, ch] = max(v, 0.0)


@njit(parallel=True, cache=True)
def _sh_backward(degree, head, rest, dirs, rgb, g_rgb, v_head, v_rest, v_dirs):
    # v_head and v_rest come zeroed; the bands past `degree` keep no gradient.
    C, N = dirs.shape[0], dirs.shape[1]
    n_bases = (degree + 1) ** 2
    n_head = min(head.shape[1], n_bases)
    for chunk in prange((N + _CHUNK - 1) // _CHUNK):
        basis = np.empty(_MAX_BASES)
        g_basis = np.empty(_MAX_BASES)
        for n in range(chunk * _CHUNK, min(N, (chunk + 1) * _CHUNK)):
            for c in range(C):
                x, y, z, norm = _unit(float(dirs[c, n, 0]), float(dirs[c, n, 1]), float(dirs[c, n, 2]))
                _basis(degree, x, y, z, basis)
                g_basis[:n_bases] = 0.0
                for ch in range(3):
                    g = float(g_rgb[c, n, ch]) if rgb[c, n, ch] > 0.0 else 0.0  # clamped at 0: no gradient
                    for k in range(n_head):
                        v_head[n, k, ch] += basis[k] * g
                        g_basis[k] += float(head[n, k, ch]) * g
                    for k in range(n_head, n_bases):
                        v_rest[n, k - n_head, ch] += basis[k] * g
                        g_basis[k] += float(rest[n, k - n_head, ch]) * g
                gx, gy, gz = _basis_vjp(degree, x, y, z, g_basis)
                dot = x * gx + y * gy + z * gz
                v_dirs[c, n, 0] = (gx - x * dot) / norm
                v_dirs[c, n, 1] = (gy - y * dot) / norm
                v_dirs[c, n, 2] = (gz - z * dot) / norm


class _FusedSH(torch.autograd.Function):
    # The kernels read the inputs as they are (float32 in fits and films) and compute in
    # float64: no converted copy of the [N, K, 3] coefficients, nor a joined one of sh0 and shN.
    @staticmethod
    def forward(ctx, degree, head, rest, dirs):
        out = np.empty(tuple(dirs.shape), dtype=_np(dirs).dtype)
        h = _np(head)
        # Without `rest`, head holds every band and the kernel never reads the stand-in.
        _sh_forward(degree, h, h if rest is None else _np(rest), _np(dirs), out)
        rgb = torch.from_numpy(out)
        ctx.save_for_backward(head, rest, dirs, rgb)
        ctx.degree = degree
        return rgb

    @staticmethod
    def backward(ctx, g_rgb):
        head, rest, dirs, rgb = ctx.saved_tensors
        h, di = _np(head), _np(dirs)
        r = h if rest is None else _np(rest)
        v_head = np.zeros(h.shape, dtype=h.dtype)
        v_rest = np.zeros(r.shape if rest is not None else (0, 0, 3), dtype=r.dtype)
        v_dirs = np.empty(di.shape, dtype=di.dtype)
        _sh_backward(ctx.degree, h, r, di, _np(rgb), _np(g_rgb.to(rgb.dtype)), v_head, v_rest, v_dirs)
        return (None, torch.from_numpy(v_head), None if rest is None else torch.from_numpy(v_rest),
                torch.from_numpy(v_dirs))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def fused_spherical_harmonics(degree: int, coeffs: torch.Tensor, dirs: torch.Tensor,
                              rest: torch.Tensor | None = None) -> torch.Tensor:
    """`spherical_harmonics` for CPU tensors in one numba pass per camera.

    coeffs [N, K, 3] (shared by the cameras) with K >= (degree+1)^2; or, with `rest`
    [N, K', 3], coeffs holds the first bands and rest the others (Gaussians' sh0 [N, 1, 3]
    and shN as stored: a film frame joins no [N, K, 3] copy of them). dirs [C, N, 3], any
    length, in coeffs' precision. Returns RGB [C, N, 3] in that precision (computed in
    float64), differentiable with respect to coeffs, rest and dirs.
    """
    n = num_sh_bases(degree)
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise SplatfilmError(f"SH degree must be 0-{MAX_SH_DEGREE}, got {degree}")
    have = coeffs.shape[-2] + (0 if rest is None else rest.shape[-2])
    if have < n:
        raise SplatfilmError(f"SH degree {degree} needs {n} coefficients, got {have}")
    if rest is not None and rest.dtype != coeffs.dtype:
        rest = rest.to(coeffs.dtype)
    return _FusedSH.apply(degree, coeffs, rest, dirs.to(coeffs.dtype))
