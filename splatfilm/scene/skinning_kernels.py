"""CPU kernels for posing: blending skinning transforms and moving Gaussians by them, fused.

The same computation as the torch code in `splatfilm.scene.skinning` (which runs on any
device and carries gradients), written as numba loops for CPU tensors: one pass over the
Gaussians instead of hundreds of small tensor operations. Float64 inside.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


CHUNK = 2048  # Gaussians per parallel task

# ---- small 3x3 and quaternion pieces --------------------------------------------------------


@njit(cache=True, inline="always")
def _quat_mul(a0, a1, a2, a3, b0, b1, b2, b3):
    return (a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
            a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2,
            a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1,
            a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0)


@njit(cache=True)
def _mat_quat(m):
    """(w, x, y, z) with w >= 0 of a rotation matrix [3,3] (Shepperd, as transforms.rotmat_to_quat)."""
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr >= m[0, 0] and tr >= m[1, 1] and tr >= m[2, 2]:
        w, x, y, z = 1 + tr, m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]
    elif m[0, 0] >= m[1, 1] and m[0, 0] >= m[2, 2]:
        w, x, y, z = m[2, 1] - m[1, 2], 1 + m[0, 0] - m[1, 1] - m[2, 2], m[0, 1] + m[1, 0], m[0, 2] + m[2, 0]
    elif m[1, 1] >= m[2, 2]:
        w, x, y, z = m[0, 2] - m[2, 0], m[0, 1] + m[1, 0], 1 + m[1, 1] - m[0, 0] - m[2, 2], m[1, 2] + m[2, 1]
    else:
        w, x, y, z = m[1, 0] - m[0, 1], m[0, 2] + m[2, 0], m[1, 2] + m[2, 1], 1 + m[2, 2] - m[0, 0] - m[1, 1]
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if w < 0:
        n = -n
    return w / n, x / n, y / n, z / n


@njit(cache=True)
def _quat_mat(w, x, y, z, m):
    """Rotation matrix of a (w, x, y, z) quaternion (normalised here) into m [3,3]."""
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    m[0, 0], m[0, 1], m[0, 2] = 1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)
    m[1, 0], m[1, 1], m[1, 2] = 2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)
    m[2, 0], m[2, 1], m[2, 2] = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)


@njit(cache=True)
def _det3(m):
    return (m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]) - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
            + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]))


@njit(cache=True)
def _cofactor(m, c):
    """c = cofactor matrix of m (m^-T = c / det m)."""
    c[0, 0] = m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]
    c[0, 1] = m[1, 2] * m[2, 0] - m[1, 0] * m[2, 2]
    c[0, 2] = m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]
    c[1, 0] = m[0, 2] * m[2, 1] - m[0, 1] * m[2, 2]
    c[1, 1] = m[0, 0] * m[2, 2] - m[0, 2] * m[2, 0]
    c[1, 2] = m[0, 1] * m[2, 0] - m[0, 0] * m[2, 1]
    c[2, 0] = m[0, 1] * m[1, 2] - m[0, 2] * m[1, 1]
    c[2, 1] = m[0, 2] * m[1, 0] - m[0, 0] * m[1, 2]
    c[2, 2] = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]


@njit(cache=True)
def nearest_rotation_into(L: np.ndarray, X: np.ndarray, C: np.ndarray, iterations: int, tol: float,
                          rigid_tol: float) -> bool:
    """X [3,3] = the rotation nearest to L [3,3] (orthogonal polar factor; -L's for a mirror), by
    Newton's iteration with determinant scaling, at most `iterations` steps, stopping when no
    entry moves more than `tol`. C: scratch [3,3]. All float64. Returns whether L was a
    rotation already (max |L^T L - I| <= rigid_tol), so X = L."""
    sign = -1.0 if _det3(L) < 0 else 1.0
    off = 0.0  # how far L is from a rotation already (rigidly bound Gaussians: rounding only)
    for i in range(3):
        for j in range(3):
            X[i, j] = sign * L[i, j]
            d = L[0, i] * L[0, j] + L[1, i] * L[1, j] + L[2, i] * L[2, j] - (1.0 if i == j else 0.0)
            off = max(off, abs(d))
    if off <= rigid_tol and sign > 0:
        return True
    for _ in range(iterations):
        _cofactor(X, C)
        det = max(X[0, 0] * C[0, 0] + X[0, 1] * C[0, 1] + X[0, 2] * C[0, 2], 1e-300)
        # Determinant scaling speeds up the first steps from far off; near a rotation it is
        # about 1 and not worth its cube root.
        g = det ** (-1.0 / 3.0) if abs(det - 1.0) > 0.1 else 1.0
        change = 0.0
        for i in range(3):
            for j in range(3):
                v = 0.5 * (g * X[i, j] + C[i, j] / (g * det))
                change = max(change, abs(v - X[i, j]))
                X[i, j] = v
        if change <= tol:
            break
    return False


# ---- blends -----------------------------------------------------------------------------------


@njit(cache=True)
def _blend_lbs(S, joints, weights, n, out):
    for r in range(3):
        for c in range(4):
            acc = 0.0
            for k in range(joints.shape[1]):
                w = weights[n, k]
                if w != 0.0:
                    acc += w * S[joints[n, k], r, c]
            out[r, c] = acc


@njit(cache=True)
def _blend_dqs(real, dual, K, rigid_joints, joints, weights, n, out, R):
    kmax = 0
    for k in range(joints.shape[1]):
        if weights[n, k] > weights[n, kmax]:
            kmax = k
    p = joints[n, kmax]
    r0 = r1 = r2 = r3 = d0 = d1 = d2 = d3 = 0.0
    for k in range(joints.shape[1]):
        w = weights[n, k]
        if w == 0.0:
            continue
        j = joints[n, k]
        if real[j, 0] * real[p, 0] + real[j, 1] * real[p, 1] + real[j, 2] * real[p, 2] + real[j, 3] * real[p, 3] < 0:
            w = -w  # same hemisphere as the heaviest joint
        r0 += w * real[j, 0]
        r1 += w * real[j, 1]
        r2 += w * real[j, 2]
        r3 += w * real[j, 3]
        d0 += w * dual[j, 0]
        d1 += w * dual[j, 1]
        d2 += w * dual[j, 2]
        d3 += w * dual[j, 3]
    nr = max(math.sqrt(r0 * r0 + r1 * r1 + r2 * r2 + r3 * r3), 1e-12)
    r0, r1, r2, r3, d0, d1, d2, d3 = r0 / nr, r1 / nr, r2 / nr, r3 / nr, d0 / nr, d1 / nr, d2 / nr, d3 / nr
    _, tx, ty, tz = _quat_mul(d0, d1, d2, d3, r0, -r1, -r2, -r3)
    _quat_mat(r0, r1, r2, r3, R)
    if rigid_joints:  # every K is the identity
        for r in range(3):
            for c in range(3):
                out[r, c] = R[r, c]
    else:
        for r in range(3):
            for c in range(3):
                acc = 0.0
                for m in range(3):
                    kb = 0.0
                    for k in range(joints.shape[1]):
                        kb += weights[n, k] * K[joints[n, k], m, c]
                    acc += R[r, m] * kb
                out[r, c] = acc
    out[0, 3], out[1, 3], out[2, 3] = 2.0 * tx, 2.0 * ty, 2.0 * tz


@njit(cache=True)
def _all_identity(K):
    """Whether every matrix of K [J,3,3] is the identity (rigid joints: DQS skips blending K)."""
    for j in range(K.shape[0]):
        for r in range(3):
            for c in range(3):
                if abs(K[j, r, c] - (1.0 if r == c else 0.0)) > 1e-12:
                    return False
    return True


@njit(cache=True)
def _invert_affine(A, out, C):
    _cofactor(A[:, :3], C)
    det = A[0, 0] * C[0, 0] + A[0, 1] * C[0, 1] + A[0, 2] * C[0, 2]
    for r in range(3):
        for c in range(3):
            out[r, c] = C[c, r] / det
    for r in range(3):
        out[r, 3] = -(out[r, 0] * A[0, 3] + out[r, 1] * A[1, 3] + out[r, 2] * A[2, 3])


@njit(parallel=True, cache=True)
def blend_kernel(method: int, S: np.ndarray, real: np.ndarray, dual: np.ndarray, K: np.ndarray, S_rest: np.ndarray,
                 real_rest: np.ndarray, dual_rest: np.ndarray, K_rest: np.ndarray, general: bool,
                 joints: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Blended transforms A [N,3,4] float64: of the pose (S [J,3,4] skinning matrices for LBS, or
    `skinning.dual_quaternions`' real [J,4], dual [J,4], K [J,3,3] for DQS), composed with the
    inverse of the rest blend (the *_rest arrays) when `general`. method 0 = LBS, 1 = DQS.
    joints [N,4] int64 indices into J, weights [N,4] float64."""
    n_g = joints.shape[0]
    rigid = _all_identity(K)
    rigid_rest = _all_identity(K_rest)
    A = np.empty((n_g, 3, 4))
    chunks = (n_g + CHUNK - 1) // CHUNK
    for chunk in prange(chunks):
        P = np.empty((3, 4))
        Q = np.empty((3, 4))
        Qi = np.empty((3, 4))
        R = np.empty((3, 3))
        for n in range(chunk * CHUNK, min(n_g, (chunk + 1) * CHUNK)):
            _blend_one(n, method, S, real, dual, K, rigid, S_rest, real_rest, dual_rest, K_rest, rigid_rest, general,
                       joints, weights, A, P, Q, Qi, R)
    return A


@njit(cache=True, inline="always")
def _blend_one(n, method, S, real, dual, K, rigid, S_rest, real_rest, dual_rest, K_rest, rigid_rest, general, joints,
               weights, A, P, Q, Qi, R):
    """Gaussian n of blend_kernel (P, Q, Qi, R are scratch)."""
    if method == 0:
        _blend_lbs(S, joints, weights, n, P)
    else:
        _blend_dqs(real, dual, K, rigid, joints, weights, n, P, R)
    if general:
        if method == 0:
            _blend_lbs(S_rest, joints, weights, n, Q)
        else:
            _blend_dqs(real_rest, dual_rest, K_rest, rigid_rest, joints, weights, n, Q, R)
        _invert_affine(Q, Qi, R)
        for r in range(3):
            for c in range(4):
                acc = P[r, 3] if c == 3 else 0.0
                for m in range(3):
                    acc += P[r, m] * Qi[m, c]
                A[n, r, c] = acc
    else:
        for r in range(3):
            for c in range(4):
                A[n, r, c] = P[r, c]


# ---- moving Gaussians -------------------------------------------------------------------------


@njit(cache=True)
def _jacobi(B, V, p, q, thresh):
    bpq = B[p, q]
    if not abs(bpq) > thresh * (abs(B[p, p]) + abs(B[q, q])):
        return False
    theta = (B[q, q] - B[p, p]) / (2.0 * bpq)
    t = 1.0 if theta == 0 else math.copysign(1.0, theta) / (abs(theta) + math.sqrt(theta * theta + 1.0))
    c = 1.0 / math.sqrt(t * t + 1.0)
    s = t * c
    r = 3 - p - q
    brp, brq = B[r, p], B[r, q]
    B[p, p] -= t * bpq
    B[q, q] += t * bpq
    B[p, q] = B[q, p] = 0.0
    B[r, p] = B[p, r] = c * brp - s * brq
    B[r, q] = B[q, r] = s * brp + c * brq
    for i in range(3):
        vp, vq = V[i, p], V[i, q]
        V[i, p] = c * vp - s * vq
        V[i, q] = s * vp + c * vq
    return True


@njit(cache=True, inline="always")
def _z_turn(v, k, size, cos, sin):
    """Turn one band's coefficients v[k, :size, :3] (size = 2l+1) about z: the pair (m, -m)
    by m times the angle (cos, sin), as sh._z_turn. (Rows of a scratch array rather than
    views of it: a view costs reference counting, which dominates loops this small.)"""
    l = (size - 1) // 2
    cm, sm = cos, sin
    for m in range(1, l + 1):
        i, j = l - m, l + m  # indices of -m and +m
        for ch in range(3):
            a, b = v[k, i, ch], v[k, j, ch]
            v[k, i, ch] = cm * a + sm * b
            v[k, j, ch] = cm * b - sm * a
        cm, sm = cm * cos - sm * sin, sm * cos + cm * sin


@njit(cache=True, inline="always")
def _band_apply(M, v, src, dst, size, transpose):
    """v[dst] = M v[src] (or M^T) for one band's coefficients [size, 3]; M is sparse-ish."""
    for i in range(size):
        a0 = a1 = a2 = 0.0
        for j in range(size):
            m = M[j, i] if transpose else M[i, j]
            if m != 0.0:
                a0 += m * v[src, j, 0]
                a1 += m * v[src, j, 1]
                a2 += m * v[src, j, 2]
        v[dst, i, 0], v[dst, i, 1], v[dst, i, 2] = a0, a1, a2


@njit(cache=True, inline="always")
def _refactor(L, X, Cs, Rg, B, V, q0, q1, q2, q3, x0, x1, x2, x3, log_scales, thresh, n, out_quats, out_scales):
    """Quaternion and log-scales of L Sigma L^T for Gaussian n (Jacobi from the frame X Rg)."""
    for r in range(3):
        for c in range(3):
            V[r, c] = 1.0 if r == c else 0.0
    # Covariance in the carried frame: C = Rg^T X^T L Rg S; B = C C^T.
    _quat_mat(q0, q1, q2, q3, Rg)
    for r in range(3):  # Cs = X^T L
        for c in range(3):
            Cs[r, c] = X[0, r] * L[0, c] + X[1, r] * L[1, c] + X[2, r] * L[2, c]
    for r in range(3):  # B = Cs Rg (temporarily)
        for c in range(3):
            B[r, c] = Cs[r, 0] * Rg[0, c] + Cs[r, 1] * Rg[1, c] + Cs[r, 2] * Rg[2, c]
    s0, s1, s2 = math.exp(log_scales[n, 0]), math.exp(log_scales[n, 1]), math.exp(log_scales[n, 2])
    for r in range(3):  # Cs = Rg^T B S
        for c in range(3):
            Cs[r, c] = (Rg[0, r] * B[0, c] + Rg[1, r] * B[1, c] + Rg[2, r] * B[2, c]) * (s0 if c == 0 else (
                s1 if c == 1 else s2))
    for r in range(3):
        for c in range(3):
            B[r, c] = Cs[r, 0] * Cs[c, 0] + Cs[r, 1] * Cs[c, 1] + Cs[r, 2] * Cs[c, 2]
    for _ in range(8):
        changed = _jacobi(B, V, 0, 1, thresh)
        changed = _jacobi(B, V, 0, 2, thresh) or changed
        changed = _jacobi(B, V, 1, 2, thresh) or changed
        if not changed:
            break
    for k in range(3):
        out_scales[n, k] = 0.5 * math.log(max(B[k, k], 1e-300))
    v0, v1, v2, v3 = _mat_quat(V)
    a0, a1, a2, a3 = _quat_mul(x0, x1, x2, x3, q0, q1, q2, q3)
    out_quats[n, 0], out_quats[n, 1], out_quats[n, 2], out_quats[n, 3] = _quat_mul(a0, a1, a2, a3, v0, v1, v2, v3)


@njit(parallel=True, cache=True)
def affine_kernel(means: np.ndarray, quats: np.ndarray, log_scales: np.ndarray, shN: np.ndarray, A: np.ndarray,
                  x90_2: np.ndarray, x90_3: np.ndarray, x90_4: np.ndarray, thresh: float, rigid_tol: float,
                  polar_tol: float, out_means: np.ndarray, out_quats: np.ndarray, out_scales: np.ndarray,
                  out_shN: np.ndarray) -> None:
    """Move each Gaussian by its affine map A [N,3,4] (float64): the loop of
    `splatfilm.scene.skinning.transform_gaussians_affine`, writing into the out arrays, which
    have the shapes of means [N,3], quats [N,4], log_scales [N,3] and shN [N,K,3] (out_shN
    starts as a copy of shN). x90_2 [5,5], x90_3 [7,7], x90_4 [9,9]: `sh.sh_x90`; thresh: the
    Jacobi threshold; rigid_tol, polar_tol: as `nearest_rotation_into`."""
    n_g = means.shape[0]
    chunks = (n_g + CHUNK - 1) // CHUNK
    for chunk in prange(chunks):  # scratch arrays once per chunk, not per Gaussian
        L = np.empty((3, 3))
        X = np.empty((3, 3))
        Cs = np.empty((3, 3))
        Rg = np.empty((3, 3))
        B = np.empty((3, 3))
        V = np.empty((3, 3))
        vals = np.empty((2, 9, 3))  # one band's coefficients, up to band 4
        for n in range(chunk * CHUNK, min(n_g, (chunk + 1) * CHUNK)):
            _move_one(n, means, quats, log_scales, shN, A, x90_2, x90_3, x90_4, thresh, rigid_tol, polar_tol,
                      out_means, out_quats, out_scales, out_shN, L, X, Cs, Rg, B, V, vals)


@njit(cache=True, inline="always")
def _move_one(n, means, quats, log_scales, shN, A, x90_2, x90_3, x90_4, thresh, rigid_tol, polar_tol, out_means,
              out_quats, out_scales, out_shN, L, X, Cs, Rg, B, V, vals):
    """Gaussian n of affine_kernel (the other arguments are scratch)."""
    k_sh = shN.shape[1]
    for r in range(3):
        for c in range(3):
            L[r, c] = A[n, r, c]
        out_means[n, r] = L[r, 0] * means[n, 0] + L[r, 1] * means[n, 1] + L[r, 2] * means[n, 2] + A[n, r, 3]
    rigid = nearest_rotation_into(L, X, Cs, 20, polar_tol, rigid_tol)
    q0, q1, q2, q3 = quats[n, 0], quats[n, 1], quats[n, 2], quats[n, 3]
    qn = math.sqrt(q0 * q0 + q1 * q1 + q2 * q2 + q3 * q3)
    q0, q1, q2, q3 = q0 / qn, q1 / qn, q2 / qn, q3 / qn
    x0, x1, x2, x3 = _mat_quat(X)
    if rigid:  # the axes turn with X and keep their lengths
        out_quats[n, 0], out_quats[n, 1], out_quats[n, 2], out_quats[n, 3] = _quat_mul(x0, x1, x2, x3, q0, q1,
                                                                                       q2, q3)
        for k in range(3):
            out_scales[n, k] = log_scales[n, k]
    else:
        _refactor(L, X, Cs, Rg, B, V, q0, q1, q2, q3, x0, x1, x2, x3, log_scales, thresh, n, out_quats,
                  out_scales)
    if k_sh == 0:
        return
    # Band 1: a vector a = (-c2, -c0, c1) turning as X a.
    for ch in range(3):
        a0_, a1_, a2_ = -shN[n, 2, ch], -shN[n, 0, ch], shN[n, 1, ch]
        b0 = X[0, 0] * a0_ + X[0, 1] * a1_ + X[0, 2] * a2_
        b1 = X[1, 0] * a0_ + X[1, 1] * a1_ + X[1, 2] * a2_
        b2 = X[2, 0] * a0_ + X[2, 1] * a1_ + X[2, 2] * a2_
        out_shN[n, 0, ch], out_shN[n, 1, ch], out_shN[n, 2, ch] = -b1, b2, -b0
    if k_sh < 8:
        return
    # Bands 2 and up: R = Rz(a) Rx(-90) Rz(b) Rx(90) Rz(c) (sh.rotate_sh_coeffs_batch).
    cb = min(1.0, max(-1.0, X[2, 2]))
    sb = math.sqrt(X[0, 2] * X[0, 2] + X[1, 2] * X[1, 2])
    if sb > 1e-9:
        ca, sa, cc, sc = X[0, 2] / sb, X[1, 2] / sb, -X[2, 0] / sb, X[2, 1] / sb
    else:
        ca, sa, cc, sc = X[1, 1], -X[0, 1], 1.0, 0.0
        cb, sb = (1.0 if cb >= 0 else -1.0), 0.0
    degree = 4 if k_sh >= 24 else (3 if k_sh >= 15 else 2)
    for band in range(2, degree + 1):
        lo, size = band * band - 1, 2 * band + 1
        M = x90_2 if band == 2 else (x90_3 if band == 3 else x90_4)
        for i in range(size):
            for ch in range(3):
                vals[0, i, ch] = shN[n, lo + i, ch]
        _z_turn(vals, 0, size, cc, sc)
        _band_apply(M, vals, 0, 1, size, False)
        _z_turn(vals, 1, size, cb, sb)
        _band_apply(M, vals, 1, 0, size, True)
        _z_turn(vals, 0, size, ca, sa)
        for i in range(size):
            for ch in range(3):
                out_shN[n, lo + i, ch] = vals[0, i, ch]
