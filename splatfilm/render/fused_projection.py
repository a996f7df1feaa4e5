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
def _camera_covariance(quat, scale, V):
    """The Gaussian's covariance in camera space, W R S S^T R^T W^T for W = V's rotation, as its
    six entries (s00, s01, s02, s11, s12, s22); also the quaternion's norm and the rotation R
    (row-major 9-tuple) of the unit quaternion. Scalars throughout: they stay in registers."""
    qw, qx, qy, qz = float(quat[0]), float(quat[1]), float(quat[2]), float(quat[3])
    norm = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    inv = 1.0 / max(norm, 1e-12)
    R = _rotation(qw * inv, qx * inv, qy * inv, qz * inv)
    s0, s1, s2 = float(scale[0]), float(scale[1]), float(scale[2])
    # M = W R S: the camera-space axes of the Gaussian, scaled.
    m00 = (V[0, 0] * R[0] + V[0, 1] * R[3] + V[0, 2] * R[6]) * s0
    m01 = (V[0, 0] * R[1] + V[0, 1] * R[4] + V[0, 2] * R[7]) * s1
    m02 = (V[0, 0] * R[2] + V[0, 1] * R[5] + V[0, 2] * R[8]) * s2
    m10 = (V[1, 0] * R[0] + V[1, 1] * R[3] + V[1, 2] * R[6]) * s0
    m11 = (V[1, 0] * R[1] + V[1, 1] * R[4] + V[1, 2] * R[7]) * s1
    m12 = (V[1, 0] * R[2] + V[1, 1] * R[5] + V[1, 2] * R[8]) * s2
    m20 = (V[2, 0] * R[0] + V[2, 1] * R[3] + V[2, 2] * R[6]) * s0
    m21 = (V[2, 0] * R[1] + V[2, 1] * R[4] + V[2, 2] * R[7]) * s1
    m22 = (V[2, 0] * R[2] + V[2, 1] * R[5] + V[2, 2] * R[8]) * s2
    S = (m00 * m00 + m01 * m01 + m02 * m02, m00 * m10 + m01 * m11 + m02 * m12, m00 * m20 + m01 * m21 + m02 * m22,
         m10 * m10 + m11 * m11 + m12 * m12, m10 * m20 + m11 * m21 + m12 * m22, m20 * m20 + m21 * m21 + m22 * m22)
    return norm, R, S


def _lens_limits(Ks: np.ndarray, width: float, height: float) -> np.ndarray:
    """Per camera [C,8]: fx, fy, cx, cy and the clamp box of the tangent (x-, x+, y-, y+): the
    image's extent plus 0.3x its half field of view on each side, as gsplat clamps."""
    fx, fy, cx, cy = Ks[:, 0, 0], Ks[:, 1, 1], Ks[:, 0, 2], Ks[:, 1, 2]
    tan_fovx = 0.5 * width / fx
    tan_fovy = 0.5 * height / fy
    return np.ascontiguousarray(np.stack([fx, fy, cx, cy, cx / fx + 0.3 * tan_fovx, (width - cx) / fx + 0.3 * tan_fovx,
                                          cy / fy + 0.3 * tan_fovy, (height - cy) / fy + 0.3 * tan_fovy], axis=1))


@njit(cache=True)
def _jacobian(x, y, zs, lens):
    """Entries of J (J00, J02, J11, J12) at the clamped tangent, the clamped point (tx, ty),
    tangent (u, v), whether x, y were clamped (then the tangent follows the depth, not the
    point), and 1 / zs. lens: one row of `_lens_limits`."""
    fx, fy, lxn, lxp, lyn, lyp = lens[0], lens[1], lens[4], lens[5], lens[6], lens[7]
    inv_z = 1.0 / zs
    xn = x * inv_z
    yn = y * inv_z
    u = min(max(xn, -lxn), lxp)
    v = min(max(yn, -lyn), lyp)
    clamp_x = not (-lxn < xn < lxp)
    clamp_y = not (-lyn < yn < lyp)
    tx = zs * u
    ty = zs * v
    return (fx * inv_z, -fx * tx * inv_z * inv_z, fy * inv_z, -fy * ty * inv_z * inv_z, tx, ty, u, v, clamp_x, clamp_y,
            inv_z)


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
def _screen_covariance(j00, j02, j11, j12, S):
    """Entries (a, b, c) of J Sc J^T for J = [[j00, 0, j02], [0, j11, j12]] and Sc's six
    entries S, before the blur."""
    s00, s01, s02, s11, s12, s22 = S
    a = j00 * j00 * s00 + 2.0 * j00 * j02 * s02 + j02 * j02 * s22
    b = j00 * j11 * s01 + j00 * j12 * s02 + j02 * j11 * s12 + j02 * j12 * s22
    c = j11 * j11 * s11 + 2.0 * j11 * j12 * s12 + j12 * j12 * s22
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
def _forward(means, quats, scales, opacities, viewmats, lenses, width, height, eps2d, near, far, antialiased,
             radius_clip, out_means2d, out_conics, out_depths, out_radii, out_comp):
    C = viewmats.shape[0]
    N = means.shape[0]
    n_chunks = (N + _CHUNK - 1) // _CHUNK
    has_opacity = opacities.shape[0] > 0
    for chunk in prange(n_chunks):
        for n in range(chunk * _CHUNK, min(N, (chunk + 1) * _CHUNK)):
            for c in range(C):
                V = viewmats[c]
                lens = lenses[c]
                x, y, z, in_depth, zs = _to_camera(V, means[n], near, far)
                _, _, S = _camera_covariance(quats[n], scales[n], V)
                j00, j02, j11, j12, _, _, _, _, _, _, inv_z = _jacobian(x, y, zs, lens)
                a0, b, c0 = _screen_covariance(j00, j02, j11, j12, S)
                a, cc, det_orig, det_safe, valid = _blur(a0, b, c0, eps2d, in_depth)
                inv_det = 1.0 / det_safe
                comp = math.sqrt(max(det_orig * inv_det, 0.0))
                out_conics[c, n, 0] = cc * inv_det
                out_conics[c, n, 1] = -b * inv_det
                out_conics[c, n, 2] = a * inv_det
                out_comp[c, n] = comp
                mx = lens[0] * x * inv_z + lens[2]
                my = lens[1] * y * inv_z + lens[3]
                out_means2d[c, n, 0] = mx
                out_means2d[c, n, 1] = my
                out_depths[c, n] = z
                extend = _EXTEND
                if has_opacity:
                    op = float(opacities[n]) * comp if antialiased[n] else float(opacities[n])
                    valid = valid and op >= ALPHA_THRESHOLD
                    extend = min(extend, math.sqrt(2.0 * math.log(max(op, ALPHA_THRESHOLD) / ALPHA_THRESHOLD)))
                rx = math.ceil(extend * math.sqrt(max(a, 0.0)))
                ry = math.ceil(extend * math.sqrt(max(cc, 0.0)))
                valid = valid and not (rx <= radius_clip and ry <= radius_clip)
                valid = valid and mx + rx > 0 and mx - rx < width and my + ry > 0 and my - ry < height
                out_radii[c, n, 0] = np.int32(rx) if valid else 0
                out_radii[c, n, 1] = np.int32(ry) if valid else 0


@njit(parallel=True, cache=True)
def _backward(means, quats, scales, viewmats, lenses, width, height, eps2d, near, far, g_means2d, g_conics, g_depths,
              g_comp, v_means, v_quats, v_scales):
    C = viewmats.shape[0]
    N = means.shape[0]
    n_chunks = (N + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        gS = np.empty((3, 3))  # dL/dSigma (world), summed over cameras
        T = np.empty((3, 3))
        for n in range(chunk * _CHUNK, min(N, (chunk + 1) * _CHUNK)):
            gS[:, :] = 0.0
            gmx = 0.0
            gmy = 0.0
            gmz = 0.0
            norm = 1.0
            R = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
            for c in range(C):
                V = viewmats[c]
                lens = lenses[c]
                fx, fy = lens[0], lens[1]
                x, y, z, in_depth, zs = _to_camera(V, means[n], near, far)
                norm, R, S = _camera_covariance(quats[n], scales[n], V)
                j00, j02, j11, j12, tx, ty, u, v, clamp_x, clamp_y, inv_z = _jacobian(x, y, zs, lens)
                a0, b, c0 = _screen_covariance(j00, j02, j11, j12, S)
                a, cc, det_orig, det_safe, valid = _blur(a0, b, c0, eps2d, in_depth)
                inv_det = 1.0 / det_safe
                # conics (cc, -b, a) / det_safe, compensation sqrt(det_orig / det_safe): d/d(a, b, cc).
                k0, k1, k2 = float(g_conics[c, n, 0]), float(g_conics[c, n, 1]), float(g_conics[c, n, 2])
                ga = k2 * inv_det
                gb = -k1 * inv_det
                gc = k0 * inv_det
                r = det_orig * inv_det
                g_det = 0.0
                if valid:
                    g_det = -(k0 * cc - k1 * b + k2 * a) * inv_det * inv_det
                if r > 0.0:
                    gr = float(g_comp[c, n]) * 0.5 / math.sqrt(r)
                    ga += gr * (c0 * inv_det)
                    gb += gr * (-2.0 * b * inv_det)
                    gc += gr * (a0 * inv_det)
                    if valid:
                        g_det -= gr * r * inv_det
                ga += g_det * cc
                gb += g_det * (-2.0 * b)
                gc += g_det * a
                # cov2d = J Sc J^T with G = [[ga, gb/2], [gb/2, gc]]: dSc = J^T G J, dJ = 2 G J Sc.
                G01 = 0.5 * gb
                # Rows of G J (the first entry of the second row is not needed: dSc is symmetric).
                A0, A1, A2 = ga * j00, G01 * j11, ga * j02 + G01 * j12
                B1, B2 = gc * j11, G01 * j02 + gc * j12
                d00, d01, d02 = j00 * A0, j00 * A1, j00 * A2
                d11, d12 = j11 * B1, j11 * B2
                d22 = j02 * A2 + j12 * B2
                # dSigma_world += W^T dSc W, as T = dSc W, then W^T T.
                for q in range(3):
                    T[0, q] = d00 * V[0, q] + d01 * V[1, q] + d02 * V[2, q]
                    T[1, q] = d01 * V[0, q] + d11 * V[1, q] + d12 * V[2, q]
                    T[2, q] = d02 * V[0, q] + d12 * V[1, q] + d22 * V[2, q]
                for p in range(3):
                    for q in range(3):
                        gS[p, q] += V[0, p] * T[0, q] + V[1, p] * T[1, q] + V[2, p] * T[2, q]
                s00, s01, s02, s11, s12, s22 = S
                JS0_0, JS0_1, JS0_2 = j00 * s00 + j02 * s02, j00 * s01 + j02 * s12, j00 * s02 + j02 * s22
                JS1_0, JS1_1, JS1_2 = j11 * s01 + j12 * s02, j11 * s11 + j12 * s12, j11 * s12 + j12 * s22
                gJ00 = 2.0 * (ga * JS0_0 + G01 * JS1_0)
                gJ02 = 2.0 * (ga * JS0_2 + G01 * JS1_2)
                gJ11 = 2.0 * (G01 * JS0_1 + gc * JS1_1)
                gJ12 = 2.0 * (G01 * JS0_2 + gc * JS1_2)
                iz2 = inv_z * inv_z
                g_zs = (-gJ00 * fx - gJ11 * fy + (gJ02 * 2.0 * fx * tx + gJ12 * 2.0 * fy * ty) * inv_z) * iz2
                g_tx = -gJ02 * fx * iz2
                g_ty = -gJ12 * fy * iz2
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
                gx += gm0 * fx * inv_z
                gy += gm1 * fy * inv_z
                g_zs -= (gm0 * fx * x + gm1 * fy * y) * iz2
                gz = float(g_depths[c, n]) + (g_zs if in_depth else 0.0)
                gmx += V[0, 0] * gx + V[1, 0] * gy + V[2, 0] * gz
                gmy += V[0, 1] * gx + V[1, 1] * gy + V[2, 1] * gz
                gmz += V[0, 2] * gx + V[1, 2] * gy + V[2, 2] * gz
            v_means[n, 0] = gmx
            v_means[n, 1] = gmy
            v_means[n, 2] = gmz
            # Sigma = M M^T with M = R S: dM = 2 dSigma M (dSigma symmetrised); dR = dM S; dS = diag(R^T dM).
            s0, s1, s2 = float(scales[n, 0]), float(scales[n, 1]), float(scales[n, 2])
            h00, h11, h22 = 2.0 * gS[0, 0], 2.0 * gS[1, 1], 2.0 * gS[2, 2]
            h01, h02, h12 = gS[0, 1] + gS[1, 0], gS[0, 2] + gS[2, 0], gS[1, 2] + gS[2, 1]
            # gM[i][j] = sum_k H[i][k] R[k][j] s_j, H = gS + gS^T
            gM00 = (h00 * R[0] + h01 * R[3] + h02 * R[6]) * s0
            gM01 = (h00 * R[1] + h01 * R[4] + h02 * R[7]) * s1
            gM02 = (h00 * R[2] + h01 * R[5] + h02 * R[8]) * s2
            gM10 = (h01 * R[0] + h11 * R[3] + h12 * R[6]) * s0
            gM11 = (h01 * R[1] + h11 * R[4] + h12 * R[7]) * s1
            gM12 = (h01 * R[2] + h11 * R[5] + h12 * R[8]) * s2
            gM20 = (h02 * R[0] + h12 * R[3] + h22 * R[6]) * s0
            gM21 = (h02 * R[1] + h12 * R[4] + h22 * R[7]) * s1
            gM22 = (h02 * R[2] + h12 * R[5] + h22 * R[8]) * s2
            v_scales[n, 0] = gM00 * R[0] + gM10 * R[3] + gM20 * R[6]
            v_scales[n, 1] = gM01 * R[1] + gM11 * R[4] + gM21 * R[7]
            v_scales[n, 2] = gM02 * R[2] + gM12 * R[5] + gM22 * R[8]
            g00, g01, g02 = gM00 * s0, gM01 * s1, gM02 * s2
            g10, g11, g12 = gM10 * s0, gM11 * s1, gM12 * s2
            g20, g21, g22 = gM20 * s0, gM21 * s1, gM22 * s2
            inv = 1.0 / max(norm, 1e-12)
            w, qx = float(quats[n, 0]) * inv, float(quats[n, 1]) * inv
            qy, qz = float(quats[n, 2]) * inv, float(quats[n, 3]) * inv
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
        vm = _np(viewmats, torch.float64)
        lenses = _lens_limits(_np(Ks, torch.float64), float(width), float(height))
        op = np.zeros(0, dtype) if opacities is None else _np(opacities, means.dtype)
        means2d = np.empty((C, N, 2), dtype)
        conics = np.empty((C, N, 3), dtype)
        depths = np.empty((C, N), dtype)
        radii = np.empty((C, N, 2), dtype=np.int32)
        comp = np.empty((C, N), dtype)
        # One flag per Gaussian: a film composes classic and antialiased assets into one call.
        aa = (np.full(N, bool(antialiased)) if not isinstance(antialiased, torch.Tensor)
              else _np(antialiased).astype(np.bool_).reshape(N))
        _forward(m, q, s, op, vm, lenses, float(width), float(height), float(eps2d), float(near), float(far),
                 aa, float(radius_clip), means2d, conics, depths, radii, comp)
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
        vm = _np(viewmats, torch.float64)
        lenses = _lens_limits(_np(Ks, torch.float64), ctx.settings[0], ctx.settings[1])
        C, N = vm.shape[0], m.shape[0]

        def grad(g, shape):
            return np.zeros(shape, m.dtype) if g is None else _np(g, dt)

        v_means = np.empty((N, 3), m.dtype)
        v_quats = np.empty((N, 4), m.dtype)
        v_scales = np.empty((N, 3), m.dtype)
        _backward(m, q, s, vm, lenses, *ctx.settings, grad(g_means2d, (C, N, 2)), grad(g_conics, (C, N, 3)),
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
    antialiased: bool | torch.Tensor = False,
    radius_clip: float = 0.0,
) -> Projected:
    """`project_gaussians(means, quat_scale_to_covar(quats, scales), ...)` for pinhole cameras,
    in one fused pass.

    means [N,3] world units; quats [N,4] (w,x,y,z), any norm; scales [N,3] activated standard
    deviations; viewmats [C,4,4] world-to-camera (OpenCV axes); Ks [C,3,3] pixels; opacities
    [N] activated, for opacity-aware radii and culling; antialiased: for all Gaussians, or
    per Gaussian (bool [N]), as in `project_gaussians`. Differentiable with respect to means,
    quats and scales (not the cameras: camera gradients take the reference path).
    """
    means2d, conics, depths, radii, comp = _FusedProjection.apply(
        means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane, antialiased,
        radius_clip)
    return Projected(means2d=means2d, conics=conics, depths=depths, radii=radii, compensations=comp)
