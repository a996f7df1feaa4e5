"""Posing Gaussians with a skeleton: linear blend or dual-quaternion skinning, per Gaussian.

Each Gaussian follows up to 4 joints of its rig (`splatfilm.scene.skeleton.Rig`). A joint's
skinning matrix is its global transform times its inverse bind, S_j = G_j IBM_j (glTF's
formula). A Gaussian's blended transform A maps bind space to the posed asset frame:

- "lbs" (linear blend skinning): A = sum_k w_k S_jk.
- "dqs" (dual-quaternion skinning, Kavan et al. 2007): each S_j is split into a rigid
  part (its nearest rotation R_j and translation t_j) and what is left, K_j = R_j^T L_j (scale
  and shear; the identity for rigid joints); the rigid parts are blended as unit dual
  quaternions (on one hemisphere), the K_j linearly: A x = DQ(K x). A twisted joint keeps
  its volume (no candy wrapper), where LBS collapses it.

The asset's Gaussians are stored at the rest pose, so posing applies A_pose A_rest^-1 per
Gaussian (A_rest: the same blend at the rest pose). When every joint's rest skinning matrix
is the same C (the usual case: the bind pose is the rest pose), that is the blend of
S_j C^-1 = G_j(pose) G_j(rest)^-1, each joint's move from its rest, which is what is blended
then (no per-Gaussian inverse, and no float32 rounding of the stored inverse binds).

A Gaussian moved by an affine map M (linear part L, translation t) becomes mean L mu + t,
covariance L Sigma L^T. The covariance is refactored into a rotation and log-scales
starting from the Gaussian's own axes carried along by M's rotation (the rotation nearest
to L), then a few Jacobi sweeps: a rigid M gives back exactly the rotated quaternion and the
same scales, and no axes swap. View-dependent colour turns with the rotation nearest to L
(per-Gaussian SH rotation of bands 1-3).
"""

from __future__ import annotations

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene import skinning_kernels as kernels
from splatfilm.scene.sh import rotate_sh_coeffs_batch, sh_x90
from splatfilm.scene.skeleton import Rig
from splatfilm.scene.transforms import quat_multiply, quat_to_rotmat, rotmat_to_quat

__all__ = ["METHODS", "affine_inverse", "blend_transforms", "dual_quaternions", "joint_globals_array",
           "nearest_rotation", "pose_gaussians", "refactor_covariance", "skinning_matrices",
           "transform_gaussians_affine"]

METHODS = ("lbs", "dqs")
# Jacobi sweeps stop at off-diagonal terms this small against the diagonal, and a linear
# part this close to orthonormal (max |L^T L - I|) counts as a rotation: float32 rounding
# (glTF stores float32), which must not turn a disc's two equal axes by up to 45 degrees.
JACOBI_THRESHOLD = 1e-6
RIGID_TOLERANCE = 1e-6
# Newton's iteration for the nearest rotation stops when no entry moves by more: it converges
# quadratically, so the error left is about the square of that (1e-12).
POLAR_TOLERANCE = 1e-6


def _on_cpu_without_grad(*tensors: torch.Tensor) -> bool:
    """Whether the fused numba kernels can stand in for the torch code."""
    return all(t.device.type == "cpu" and not t.requires_grad for t in tensors)


# ---- per joint (small, float64) -----------------------------------------------------------


def joint_globals_array(rig: Rig, joint_globals: np.ndarray | torch.Tensor) -> np.ndarray:
    """Global joint transforms as float64 numpy [J,4,4], checked against the rig."""
    G = joint_globals.detach().cpu().double().numpy() if isinstance(joint_globals, torch.Tensor) \
        else np.asarray(joint_globals, np.float64)
    if G.shape != (rig.num_joints, 4, 4):
        raise SplatfilmError(f"joint transforms have shape {G.shape}; the rig has {rig.num_joints} joints")
    return G


def skinning_matrices(rig: Rig, joint_globals: np.ndarray | torch.Tensor) -> np.ndarray:
    """S_j = G_j IBM_j [J,4,4] (float64) from global joint transforms [J,4,4]."""
    return joint_globals_array(rig, joint_globals) @ rig.inverse_binds


def dual_quaternions(S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split affine matrices S [J,4,4] into unit dual quaternions of their rigid parts and
    the rest: real [J,4] and dual [J,4] parts ((w, x, y, z), real part w >= 0) and K [J,3,3]
    with S x = R (K x) + t, R the rotation nearest to S's linear part (polar decomposition;
    a mirror stays in K)."""
    L = S[:, :3, :3]
    U, _, Vt = np.linalg.svd(L)
    D = np.ones((len(S), 3))
    D[:, 2] = np.sign(np.linalg.det(U @ Vt))
    R = (U * D[:, None, :]) @ Vt
    K = np.swapaxes(R, 1, 2) @ L
    real = rotmat_to_quat(torch.from_numpy(np.ascontiguousarray(R))).numpy()
    t = np.concatenate([np.zeros((len(S), 1)), S[:, :3, 3]], axis=1)
    dual = 0.5 * quat_multiply(torch.from_numpy(t), torch.from_numpy(real)).numpy()
    return real, dual, K


# ---- per Gaussian blends --------------------------------------------------------------------


def blend_transforms(S: np.ndarray, joints: torch.Tensor, weights: torch.Tensor, method: str = "lbs",
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per-Gaussian blended transforms [N,3,4] (linear part | translation) of skinning
    matrices S [J,4,4] with joints [N,4] (int) and weights [N,4] (rows sum to 1)."""
    if method not in METHODS:
        raise SplatfilmError(f"unknown skinning method {method!r}; choose lbs or dqs")
    w = weights.to(dtype)

    def per_joint(a: np.ndarray) -> torch.Tensor:  # [J,...] gathered for each Gaussian's joints
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=joints.device, dtype=dtype)[joints]

    if method == "lbs":
        return torch.einsum("nk,nkc->nc", w, per_joint(S[:, :3, :].reshape(-1, 12))).reshape(-1, 3, 4)
    real, dual, K = dual_quaternions(S)
    qr, qd = per_joint(real), per_joint(dual)  # [N,4,4]
    # One hemisphere: flip each joint's dual quaternion to agree with the heaviest joint's.
    pivot = torch.gather(qr, 1, weights.argmax(dim=1)[:, None, None].expand(-1, 1, 4))
    sign = torch.where((qr * pivot).sum(-1) < 0, -1.0, 1.0).to(dtype)
    ws = w * sign
    br = torch.einsum("nk,nkc->nc", ws, qr)
    bd = torch.einsum("nk,nkc->nc", ws, qd)
    norm = br.norm(dim=1, keepdim=True).clamp_min(1e-12)
    br, bd = br / norm, bd / norm
    conj = br * br.new_tensor([1.0, -1.0, -1.0, -1.0])
    t = 2.0 * quat_multiply(bd, conj)[:, 1:]
    Kb = torch.einsum("nk,nkc->nc", w, per_joint(K.reshape(-1, 9))).reshape(-1, 3, 3)
    return torch.cat([quat_to_rotmat(br) @ Kb, t[:, :, None]], dim=2)


def affine_inverse(A: torch.Tensor) -> torch.Tensor:
    """Inverses [N,3,4] of affine maps [N,3,4] (linear part | translation), by cofactors."""
    L, t = A[:, :, :3], A[:, :, 3]
    c0, c1, c2 = L[:, :, 0], L[:, :, 1], L[:, :, 2]
    # Rows of the inverse are the cross products of columns over the determinant.
    rows = torch.stack([torch.linalg.cross(c1, c2), torch.linalg.cross(c2, c0), torch.linalg.cross(c0, c1)], dim=1)
    det = (c0 * rows[:, 0]).sum(-1)
    Li = rows / det[:, None, None]
    return torch.cat([Li, -(Li @ t[:, :, None])], dim=2)


def _compose(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """A after B for affine maps [N,3,4]."""
    return torch.cat([A[:, :, :3] @ B[:, :, :3], A[:, :, :3] @ B[:, :, 3:] + A[:, :, 3:]], dim=2)


# ---- moving Gaussians by per-Gaussian affine maps -------------------------------------------


def nearest_rotation(L: torch.Tensor, iterations: int = 20, tol: float = POLAR_TOLERANCE) -> torch.Tensor:
    """The rotation [N,3,3] nearest to each of L [N,3,3] (the orthogonal polar factor), by
    Newton's iteration X <- (g X + X^-T / g) / 2, with determinant scaling g where det X is
    far from 1. A rotation comes back as itself; a mirror (det < 0) gives -L's."""
    X = torch.where((torch.linalg.det(L) < 0)[:, None, None], -L, L)
    for _ in range(iterations):
        c0, c1, c2 = X[:, :, 0], X[:, :, 1], X[:, :, 2]
        cof = torch.stack([torch.linalg.cross(c1, c2), torch.linalg.cross(c2, c0), torch.linalg.cross(c0, c1)], dim=2)
        det = (c0 * cof[:, :, 0]).sum(-1).clamp_min(1e-300)  # X^-T = cof / det
        g = torch.where((det - 1.0).abs() > 0.1, det.pow(-1.0 / 3.0), torch.ones_like(det))[:, None, None]
        Xn = 0.5 * (g * X + cof / (g * det[:, None, None]))
        done = bool((Xn - X).abs().max() <= tol)
        X = Xn
        if done:
            break
    return X


def _jacobi_rotate(B: list, V: list, p: int, q: int, thresh: float) -> torch.Tensor:
    """One Jacobi rotation zeroing B[p][q] of symmetric 3x3 matrices held as nested lists of
    [N] tensors; V (the same) collects the rotations in its columns p, q. Entries below
    `thresh` of the diagonal are left alone. Returns which matrices it turned [N] bool."""
    bpq = B[p][q]
    big = bpq.abs() > thresh * (B[p][p].abs() + B[q][q].abs())
    theta = (B[q][q] - B[p][p]) / (2.0 * torch.where(big, bpq, torch.ones_like(bpq)))
    t = torch.where(theta == 0, torch.ones_like(theta),
                    torch.sign(theta) / (theta.abs() + torch.sqrt(theta * theta + 1.0)))
    t = torch.where(big, t, torch.zeros_like(t))
    c = torch.rsqrt(t * t + 1.0)
    s = t * c
    r = 3 - p - q
    brp, brq = B[r][p], B[r][q]
    B[p][p], B[q][q] = B[p][p] - t * bpq, B[q][q] + t * bpq
    B[p][q] = B[q][p] = torch.where(big, torch.zeros_like(bpq), bpq)
    B[r][p] = B[p][r] = c * brp - s * brq
    B[r][q] = B[q][r] = s * brp + c * brq
    for i in range(3):
        vp, vq = V[i][p], V[i][q]
        V[i][p], V[i][q] = c * vp - s * vq, s * vp + c * vq
    return big


def refactor_covariance(L: torch.Tensor, R_L: torch.Tensor, quats: torch.Tensor, log_scales: torch.Tensor,
                        thresh: float = JACOBI_THRESHOLD, max_sweeps: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Quaternions [N,4] and log-scales [N,3] of L Sigma L^T, with Sigma = R S^2 R^T from
    quats [N,4] (w, x, y, z) and log_scales [N,3], L [N,3,3] and R_L [N,3,3] its nearest
    rotation. Axis k of the result is the eigenvector nearest to R_L times the Gaussian's
    axis k (Jacobi sweeps from that frame), so a rotation L = R_L gives back quaternion
    q(R_L) q and the same scales. Off-diagonal terms below `thresh` of the diagonal are
    taken as zero (rounding)."""
    q = torch.nn.functional.normalize(quats, dim=-1)
    Rg = quat_to_rotmat(q)
    s = torch.exp(log_scales)
    # In the carried frame Q0 = R_L Rg: C = Q0^T L Rg S, B = C C^T (diagonal for a rotation L).
    C = (Rg.transpose(1, 2) @ (R_L.transpose(1, 2) @ L) @ Rg) * s[:, None, :]
    Bm = C @ C.transpose(1, 2)
    B = [[Bm[:, i, j] for j in range(3)] for i in range(3)]
    one, zero = torch.ones_like(s[:, 0]), torch.zeros_like(s[:, 0])
    V = [[one if i == j else zero for j in range(3)] for i in range(3)]
    for _ in range(max_sweeps):
        turned = [_jacobi_rotate(B, V, p, qq, thresh) for p, qq in ((0, 1), (0, 2), (1, 2))]
        if not bool(torch.stack(turned).any()):
            break
    log_s = 0.5 * torch.log(torch.stack([B[0][0], B[1][1], B[2][2]], dim=1).clamp_min(1e-300))
    Vm = torch.stack([torch.stack(row, dim=-1) for row in V], dim=-2)
    q_new = quat_multiply(quat_multiply(rotmat_to_quat(R_L), q), rotmat_to_quat(Vm))
    return q_new, log_s


def transform_gaussians_affine(g: Gaussians, A: torch.Tensor, fused: bool | None = None) -> Gaussians:
    """Move each Gaussian by its own affine map A [N,3,4] (linear part | translation): means,
    covariances (refactored into quaternions and log-scales) and SH bands 1-3 (turned by
    the rotation nearest to the linear part). Opacity and base colour are kept. Float64
    inside. Where the linear part is a rotation already (a Gaussian bound to one joint), the
    quaternion is turned by it and the scales are kept as they are.
    fused: use the CPU kernels (default: for CPU tensors without gradients), else torch."""
    if fused is None:
        fused = _on_cpu_without_grad(A, g.means, g.quats, g.scales, g.shN)
    if fused:
        return _transform_gaussians_affine_cpu(g, A)
    f64 = torch.float64
    A = A.to(f64)
    L, t = A[:, :, :3], A[:, :, 3]
    means = (L @ g.means.to(f64)[:, :, None])[:, :, 0] + t
    eye = torch.eye(3, dtype=f64, device=L.device)
    rigid = ((L.transpose(1, 2) @ L - eye).abs().amax((1, 2)) <= RIGID_TOLERANCE) & (torch.linalg.det(L) > 0)
    R_L = torch.where(rigid[:, None, None], L, nearest_rotation(L))
    quats, scales = refactor_covariance(L, R_L, g.quats.to(f64), g.scales.to(f64))
    q_rigid = quat_multiply(rotmat_to_quat(R_L), torch.nn.functional.normalize(g.quats.to(f64), dim=-1))
    quats = torch.where(rigid[:, None], q_rigid, quats)
    scales = torch.where(rigid[:, None], g.scales.to(f64), scales)
    shN = rotate_sh_coeffs_batch(g.shN.to(f64), R_L) if g.shN.shape[1] else g.shN
    d = g.dtype
    return Gaussians(means.to(d), quats.to(d), scales.to(d), g.opacities, g.sh0, shN.to(d))


def _transform_gaussians_affine_cpu(g: Gaussians, A: torch.Tensor) -> Gaussians:
    """transform_gaussians_affine by the fused CPU kernel (float64 inside)."""
    x90 = [np.ascontiguousarray(X.numpy()) for X in sh_x90()]
    means, quats, scales, shN = (t.detach().contiguous().numpy() for t in (g.means, g.quats, g.scales, g.shN))
    out = [np.empty_like(a) for a in (means, quats, scales)] + [shN.copy()]
    kernels.affine_kernel(means, quats, scales, shN, np.ascontiguousarray(A.detach().double().numpy()), *x90,
                          JACOBI_THRESHOLD, RIGID_TOLERANCE, POLAR_TOLERANCE, *out)
    means, quats, scales, shN = (torch.from_numpy(a) for a in out)
    return Gaussians(means, quats, scales, g.opacities, g.sh0, shN)


def pose_gaussians(g: Gaussians, rig: Rig, joint_globals: np.ndarray | torch.Tensor, method: str = "lbs",
                   fused: bool | None = None) -> Gaussians:
    """The asset's Gaussians `g` (stored at the rest pose, bound by `rig`) moved to the pose
    given by global joint transforms [J,4,4] (`splatfilm.scene.skeleton.global_transforms`
    of a sampled clip, perhaps changed by IK or look-at). method: 'lbs' or 'dqs'. fused:
    use the CPU kernels (default: for CPU Gaussians without gradients), else torch."""
    if len(g) != len(rig.joints):
        raise SplatfilmError(f"the rig binds {len(rig.joints)} Gaussians but the asset has {len(g)}")
    if method not in METHODS:
        raise SplatfilmError(f"unknown skinning method {method!r}; choose lbs or dqs")
    G_pose = joint_globals_array(rig, joint_globals)
    G_rest = rig.rest_globals()
    S_pose, S_rest = G_pose @ rig.inverse_binds, G_rest @ rig.inverse_binds
    joints_np, weights_np = np.asarray(rig.joints, np.int64), np.asarray(rig.weights, np.float64)
    used = np.unique(joints_np[weights_np > 0])
    C = S_rest[used[0]] if len(used) else np.eye(4)
    general = not np.allclose(S_rest[used], C, rtol=0, atol=1e-5 * max(1.0, float(np.abs(C).max())))
    if not general:
        # One rest skinning matrix for all (bind pose = rest pose): blend each joint's move
        # from its rest, G_pose G_rest^-1 = S_pose C^-1, which leaves the float32 rounding of
        # the stored inverse binds out (a joint that only turns gives an exact rotation).
        with np.errstate(all="ignore"):
            S_pose = G_pose @ np.linalg.pinv(G_rest)
    if fused is None:
        fused = _on_cpu_without_grad(g.means, g.quats, g.scales, g.shN)
    if fused:
        A = torch.from_numpy(_blend_cpu(method, S_pose, S_rest, general, joints_np, weights_np))
    else:
        joints = torch.from_numpy(joints_np).to(g.device)
        weights = torch.from_numpy(weights_np).to(g.device)
        A = blend_transforms(S_pose, joints, weights, method, torch.float64)
        if general:  # joints bound in different rest poses: undo each Gaussian's own rest blend
            A = _compose(A, affine_inverse(blend_transforms(S_rest, joints, weights, method, torch.float64)))
    return transform_gaussians_affine(g, A.to(g.device), fused)


def _blend_cpu(method: str, S_pose: np.ndarray, S_rest: np.ndarray, general: bool, joints: np.ndarray,
               weights: np.ndarray) -> np.ndarray:
    """blend_transforms (and the rest inverse) by the fused CPU kernel: A [N,3,4] float64."""
    pose = dual_quaternions(S_pose) if method == "dqs" else (np.zeros((1, 4)), np.zeros((1, 4)), np.zeros((1, 3, 3)))
    rest = dual_quaternions(S_rest) if method == "dqs" and general else pose
    return kernels.blend_kernel(METHODS.index(method), np.ascontiguousarray(S_pose[:, :3]), *pose,
                                np.ascontiguousarray(S_rest[:, :3]), *rest, general, joints, weights)
