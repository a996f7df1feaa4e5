"""Fully fused projection, our CPU fast path: quaternion, scale and mean to screen-space Gaussians
in one numba pass per camera, with a hand-written backward (gsplat's `fully_fused_projection`).

The maths is `projection.quat_scale_to_covar` followed by `projection.project_gaussians` for a
pinhole camera, which stay the readable reference (the tests hold this to them in float64):
Sigma = R S S^T R^T, camera covariance W Sigma W^T, cov2d = J (W Sigma W^T) J^T with the tangent
clamped to 1.3x the field of view, 0.3 px blur, conics, antialiasing compensation,
opacity-aware radii. Why a kernel: in PyTorch each of those steps is a pass over N Gaussians
(batched 3x3 products are slow on the CPU), about 50 ms of a 100k-Gaussian fit step forward and
backward; fused, each Gaussian is read once and its maths stays in registers.
Computed in float64 whatever the inputs' precision (read as they are, no converted copy);
outputs in the inputs' precision.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit, prange

from splatfilm.render.projection import ALPHA_THRESHOLD, Projected

_EXTEND = 3.33  # sigmas of a Gaussian's box when its opacity does not bound it tighter
_CHUNK = 1024  # Gaussians per parallel task (scratch arrays are made once per task)


@njit(cache=True)
def _rotation(qw, qx, qy, qz):
    """Rotation matrix (row-major 9-tuple) of a unit quaternion."""
    return (1.0 - 2.0 * (qy * qy + qz * qz), 2.0 * (qx * qy - qw * qz), 2.0 * (qx * qz + qw * qy),
            2.0 * (qx * qy + qw * qz), 1.0 - 2.0 * (qx * qx + qz * qz), 2.0 * (qy * qz - qw * qx),
            2.0 * (qx * qz - qw * qy), 2.0 * (qy * qz + qw * qx), 1.0 - 2.0 * (qx * qx + qy * qy))


@njit(cache=True)
def _camera_covariance(quat, scale, W, WM, Sc):
    """Sc (3x3, out) = W R S S^T R^T W^T (WM: 3x3 scratch); returns the quaternion's norm and
    the rotation R of the unit quaternion."""
    qw, qx, qy, qz = float(quat[0]), float(quat[1]), float(quat[2]), float(quat[3])
    norm = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    inv = 1.0 / max(norm, 1e-12)
    R = _rotation(qw * inv, qx * inv, qy * inv, qz * inv)
    # WM = W R S: the camera-space axes of the Gaussian, scaled.
    for i in range(3):
        for j in range(3):
            WM[i, j] = (W[i, 0] * R[j] + W[i, 1] * R[3 + j] + W[i, 2] * R[6 + j]) * float(scale[j])
    for i in range(3):
        for k in range(3):
            Sc[i, k] = WM[i, 0] * WM[k, 0] + WM[i, 1] * WM[k, 1] + WM[i, 2] * WM[k, 2]
    return norm, R


@njit(cache=True)
def _jacobian(x, y, zs, fx, fy, cx, cy, width, height):
    """Entries of J (J00, J02, J11, J12) at the clamped tangent, and whether x, y were clamped
    (then the tangent follows the depth, not the point)."""
    tan_fovx = 0.5 * width / fx
    tan_fovy = 0.5 * height / fy
    lxp = (width - cx) / fx + 0.3 * tan_fovx
    lxn = cx / fx + 0.3 * tan_fovx
    lyp = (height - cy) / fy + 0.3 * tan_fovy
    lyn = cy / fy + 0.3 * tan_fovy
    u = min(max(x / zs, -lxn), lxp)
    v = min(max(y / zs, -lyn), lyp)
    clamp_x = not (-lxn < x / zs < lxp)
    clamp_y = not (-lyn < y / zs < lyp)
    tx = zs * u
    ty = zs * v
    return fx / zs, -fx * tx / (zs * zs), fy / zs, -fy * ty / (zs * zs), tx, ty, u, v, clamp_x, clamp_y


@njit(cache=True)
def _to_camera(V, mean, near, far):
    """A mean in camera space (x, y, z), whether z is within [near, far], and the depth the
    Jacobian uses (1 where culled, so no inf reaches the backward)."""
    p0, p1, p2 = float(mean[0]), float(mean[1]), float(mean[2])
    x = V[0, 0] * p0 + V[0, 1] * p1 + V[0, 2] * p2 + V[0, 3]
    y = V[1, 0] * p0 + V[1, 1] * p1 + V[1, 2] * p2 + V[1, 3]
    z = V[2, 0] * p0 + V[2, 1] * p1 + V[2, 2] * p2 + V[2, 3]
    in_depth = near <= z <= far
    return x, y, z, in_depth, (z if in_depth else 1.0)


@njit(cache=True)
def _screen_covariance(j00, j02, j11, j12, Sc):
    """Entries (a, b, c) of J Sc J^T for J = [[j00, 0, j02], [0, j11, j12]], before the blur."""
    a = j00 * j00 * Sc[0, 0] + 2.0 * j00 * j02 * Sc[0, 2] + j02 * j02 * Sc[2, 2]
    b = j00 * j11 * Sc[0, 1] + j00 * j12 * Sc[0, 2] + j02 * j11 * Sc[2, 1] + j02 * j12 * Sc[2, 2]
    c = j11 * j11 * Sc[1, 1] + 2.0 * j11 * j12 * Sc[1, 2] + j12 * j12 * Sc[2, 2]
    return a, b, c


@njit(cache=True)
def _blur(a0, b, c0, eps2d, in_depth):
    """The blurred diagonal (a, c), det before the blur, the determinant to divide by (1 where
    the Gaussian is culled, so no inf reaches the backward) and whether it is kept."""
    a = a0 + eps2d
    c = c0 + eps2d
    det = a * c - b * b
    valid = in_depth and det > 0.0
    return a, c, a0 * c0 - b * b, (det if valid else 1.0), valid


@njit(parallel=True, cache=True)
def _forward(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far, antialiased,
             radius_clip, out_means2d, out_conics, out_depths, out_radii, out_comp):
    C = viewmats.shape[0]
    N = means.shape[0]
    n_chunks = (N + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        Sc = np.empty((3, 3))
        WM = np.empty((3, 3))
        for n in range(chunk * _CHUNK, min(N, (chunk + 1) * _CHUNK)):
            for c in range(C):
                V = viewmats[c]
                K = Ks[c]
                fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
                x, y, z, in_depth, zs = _to_camera(V, means[n], near, far)
                _camera_covariance(quats[n], scales[n], V, WM, Sc)
                j00, j02, j11, j12, _, _, _, _, _, _ = _jacobian(x, y, zs, fx, fy, cx, cy, width, height)
                a0, b, c0 = _screen_covariance(j00, j02, j11, j12, Sc)
                a, cc, det_orig, det_safe, valid = _blur(a0, b, c0, eps2d, in_depth)
                comp = math.sqrt(max(det_orig / det_safe, 0.0))
                out_conics[c, n, 0] = cc / det_safe
                out_conics[c, n, 1] = -b / det_safe
                out_conics[c, n, 2] = a / det_safe
                out_comp[c, n] = comp
                mx = fx * x / zs + cx
                my = fy * y / zs + cy
                out_means2d[c, n, 0] = mx
                out_means2d[c, n, 1] = my
                out_depths[c, n] = z
                extend = _EXTEND
                if opacities.shape[0] > 0:
                    op = float(opacities[n]) * comp if antialiased else float(opacities[n])
                    valid = valid and op >= ALPHA_THRESHOLD
                    extend = min(extend, math.sqrt(2.0 * math.log(max(op, ALPHA_THRESHOLD) / ALPHA_THRESHOLD)))
                rx = math.ceil(extend * math.sqrt(max(a, 0.0)))
                ry = math.ceil(extend * math.sqrt(max(cc, 0.0)))
                valid = valid and not (rx <= radius_clip and ry <= radius_clip)
                valid = valid and mx + rx > 0 and mx - rx < width and my + ry > 0 and my - ry < height
                out_radii[c, n, 0] = np.int32(rx) if valid else 0
                out_radii[c, n, 1] = np.int32(ry) if valid else 0


@njit(parallel=True, cache=True)
def _backward(means, quats, scales, viewmats, Ks, width, height, eps2d, near, far, g_means2d, g_conics, g_depths,
              g_comp, v_means, v_quats, v_scales):
    C = viewmats.shape[0]
    N = means.shape[0]
    n_chunks = (N + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        Sc = np.empty((3, 3))
        WM = np.empty((3, 3))
        gS = np.empty((3, 3))  # dL/dSigma (world), summed over cameras
        JS0 = np.empty(3)
        JS1 = np.empty(3)
        gR = np.empty(9)
        for n in range(chunk * _CHUNK, min(N, (chunk + 1) * _CHUNK)):
            gS[:, :] = 0.0
            gmx = 0.0
            gmy = 0.0
            gmz = 0.0
            norm = 1.0
            R = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
            for c in range(C):
                V = viewmats[c]
                K = Ks[c]
                fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
                x, y, z, in_depth, zs = _to_camera(V, means[n], near, far)
                norm, R = _camera_covariance(quats[n], scales[n], V, WM, Sc)
                j00, j02, j11, j12, tx, ty, u, v, clamp_x, clamp_y = _jacobian(x, y, zs, fx, fy, cx, cy, width, height)
                a0, b, c0 = _screen_covariance(j00, j02, j11, j12, Sc)
                a, cc, det_orig, det_safe, valid = _blur(a0, b, c0, eps2d, in_depth)
                # conics (cc, -b, a) / det_safe, compensation sqrt(det_orig / det_safe): d/d(a, b, cc).
                k0, k1, k2 = float(g_conics[c, n, 0]), float(g_conics[c, n, 1]), float(g_conics[c, n, 2])
                ga = k2 / det_safe
                gb = -k1 / det_safe
                gc = k0 / det_safe
                r = det_orig / det_safe
                g_det = 0.0
                if valid:
                    g_det = -(k0 * cc - k1 * b + k2 * a) / (det_safe * det_safe)
                if r > 0.0:
                    gr = float(g_comp[c, n]) * 0.5 / math.sqrt(r)
                    ga += gr * (c0 / det_safe)
                    gb += gr * (-2.0 * b / det_safe)
                    gc += gr * (a0 / det_safe)
                    if valid:
                        g_det -= gr * r / det_safe
                ga += g_det * cc
                gb += g_det * (-2.0 * b)
                gc += g_det * a
                # cov2d = J Sc J^T with G = [[ga, gb/2], [gb/2, gc]]: dSc = J^T G J, dJ = 2 G J Sc.
                J0 = (j00, 0.0, j02)
                J1 = (0.0, j11, j12)
                G01 = 0.5 * gb
                for i in range(3):
                    for k in range(3):
                        gSc = (J0[i] * (ga * J0[k] + G01 * J1[k]) + J1[i] * (G01 * J0[k] + gc * J1[k]))
                        # dSigma_world = W^T dSc W
                        for p in range(3):
                            for q in range(3):
                                gS[p, q] += V[i, p] * gSc * V[k, q]
                for k in range(3):
                    JS0[k] = J0[0] * Sc[0, k] + J0[1] * Sc[1, k] + J0[2] * Sc[2, k]
                    JS1[k] = J1[0] * Sc[0, k] + J1[1] * Sc[1, k] + J1[2] * Sc[2, k]
                gJ00 = 2.0 * (ga * JS0[0] + G01 * JS1[0])
                gJ02 = 2.0 * (ga * JS0[2] + G01 * JS1[2])
                gJ11 = 2.0 * (G01 * JS0[1] + gc * JS1[1])
                gJ12 = 2.0 * (G01 * JS0[2] + gc * JS1[2])
                z2 = zs * zs
                g_zs = -gJ00 * fx / z2 - gJ11 * fy / z2 + gJ02 * 2.0 * fx * tx / (z2 * zs) + gJ12 * 2.0 * fy * ty / (z2 * zs)
                g_tx = -gJ02 * fx / z2
                g_ty = -gJ12 * fy / z2
                gx = 0.0
                gy = 0.0
                if clamp_x:
                    g_zs += g_tx * u
                else:
                    gx += g_tx
                if clamp_y:
                    g_zs += g_ty * v
                else:
                    gy += g_ty
                # means2d = (fx x / zs + cx, fy y / zs + cy); depth = z
                gm0, gm1 = float(g_means2d[c, n, 0]), float(g_means2d[c, n, 1])
                gx += gm0 * fx / zs
                gy += gm1 * fy / zs
                g_zs -= (gm0 * fx * x + gm1 * fy * y) / z2
                gz = float(g_depths[c, n]) + (g_zs if in_depth else 0.0)
                gmx += V[0, 0] * gx + V[1, 0] * gy + V[2, 0] * gz
                gmy += V[0, 1] * gx + V[1, 1] * gy + V[2, 1] * gz
                gmz += V[0, 2] * gx + V[1, 2] * gy + V[2, 2] * gz
            v_means[n, 0] = gmx
            v_means[n, 1] = gmy
            v_means[n, 2] = gmz
            # Sigma = M M^T with M = R S: dM = 2 dSigma M (dSigma symmetrised); dR = dM S; dS = diag(R^T dM).
            for j in range(3):
                sj = float(scales[n, j])
                gs = 0.0
                for i in range(3):
                    gMij = 0.0
                    for k in range(3):
                        gMij += (gS[i, k] + gS[k, i]) * R[3 * k + j] * sj
                    gR[3 * i + j] = gMij * sj
                    gs += gMij * R[3 * i + j]
                v_scales[n, j] = gs
            inv = 1.0 / max(norm, 1e-12)
            w, qx = float(quats[n, 0]) * inv, float(quats[n, 1]) * inv
            qy, qz = float(quats[n, 2]) * inv, float(quats[n, 3]) * inv
            g00, g01, g02, g10, g11, g12, g20, g21, g22 = gR[0], gR[1], gR[2], gR[3], gR[4], gR[5], gR[6], gR[7], gR[8]
            gw = 2.0 * (-qz * g01 + qy * g02 + qz * g10 - qx * g12 - qy * g20 + qx * g21)
            gx_ = 2.0 * (qy * g01 + qz * g02 + qy * g10 - 2.0 * qx * g11 - w * g12 + qz * g20 + w * g21 - 2.0 * qx * g22)
            gy_ = 2.0 * (-2.0 * qy * g00 + qx * g01 + w * g02 + qx * g10 + qz * g12 - w * g20 + qz * g21 - 2.0 * qy * g22)
            gz_ = 2.0 * (-2.0 * qz * g00 - w * g01 + qx * g02 + w * g10 - 2.0 * qz * g11 + qy * g12 + qx * g20 + qy * g21)
            # q_hat = q / |q|: project out the radial part.
            dot = w * gw + qx * gx_ + qy * gy_ + qz * gz_
            v_quats[n, 0] = (gw - w * dot) * inv
            v_quats[n, 1] = (gx_ - qx * dot) * inv
            v_quats[n, 2] = (gy_ - qy * dot) * inv
            v_quats[n, 3] = (gz_ - qz * dot) * inv


def _np(t: torch.Tensor, dtype=None) -> np.ndarray:
    t = t.detach() if dtype is None else t.detach().to(dtype)
    return t.contiguous().cpu().numpy()


class _FusedProjection(torch.autograd.Function):
    # The kernels read the Gaussians as they are (float32 in fits and films) and compute in
    # float64 (the cameras are converted: 16 + 9 numbers each); outputs in the Gaussians' dtype.
    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near, far, antialiased,
                radius_clip):
        C, N = viewmats.shape[0], means.shape[0]
        dtype = _np(means).dtype
        m, q, s = _np(means), _np(quats, means.dtype), _np(scales, means.dtype)
        vm, K = _np(viewmats, torch.float64), _np(Ks, torch.float64)
        op = np.zeros(0, dtype) if opacities is None else _np(opacities, means.dtype)
        means2d = np.empty((C, N, 2), dtype)
        conics = np.empty((C, N, 3), dtype)
        depths = np.empty((C, N), dtype)
        radii = np.empty((C, N, 2), dtype=np.int32)
        comp = np.empty((C, N), dtype)
        _forward(m, q, s, op, vm, K, float(width), float(height), float(eps2d), float(near), float(far),
                 bool(antialiased), float(radius_clip), means2d, conics, depths, radii, comp)
        ctx.save_for_backward(means, quats, scales, viewmats, Ks)
        ctx.settings = (float(width), float(height), float(eps2d), float(near), float(far))
        radii_t = torch.from_numpy(radii)
        ctx.mark_non_differentiable(radii_t)
        return (torch.from_numpy(means2d), torch.from_numpy(conics), torch.from_numpy(depths), radii_t,
                torch.from_numpy(comp))

    @staticmethod
    def backward(ctx, g_means2d, g_conics, g_depths, _g_radii, g_comp):
        means, quats, scales, viewmats, Ks = ctx.saved_tensors
        dt = means.dtype
        m, q, s = _np(means), _np(quats, dt), _np(scales, dt)
        vm, K = _np(viewmats, torch.float64), _np(Ks, torch.float64)
        C, N = vm.shape[0], m.shape[0]

        def grad(g, shape):
            return np.zeros(shape, m.dtype) if g is None else _np(g, dt)

        v_means = np.empty((N, 3), m.dtype)
        v_quats = np.empty((N, 4), m.dtype)
        v_scales = np.empty((N, 3), m.dtype)
        _backward(m, q, s, vm, K, *ctx.settings, grad(g_means2d, (C, N, 2)), grad(g_conics, (C, N, 3)),
                  grad(g_depths, (C, N)), grad(g_comp, (C, N)), v_means, v_quats, v_scales)
        return (torch.from_numpy(v_means), torch.from_numpy(v_quats), torch.from_numpy(v_scales), None, None, None,
                None, None, None, None, None, None, None)


def fully_fused_projection(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    opacities: torch.Tensor | None = None,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    antialiased: bool = False,
    radius_clip: float = 0.0,
) -> Projected:
    """`project_gaussians(means, quat_scale_to_covar(quats, scales), ...)` for pinhole cameras,
    in one fused pass.

    means [N,3] world units; quats [N,4] (w,x,y,z), any norm; scales [N,3] activated standard
    deviations; viewmats [C,4,4] world-to-camera (OpenCV axes); Ks [C,3,3] pixels; opacities
    [N] activated, for opacity-aware radii and culling. Differentiable with respect to means,
    quats and scales (not the cameras: camera gradients take the reference path).
    """
    means2d, conics, depths, radii, comp = _FusedProjection.apply(
        means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane, antialiased,
        radius_clip)
    return Projected(means2d=means2d, conics=conics, depths=depths, radii=radii, compensations=comp)
