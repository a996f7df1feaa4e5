"""Rotations and similarity transforms: the one place splatfilm builds, converts and
interpolates them.

Conventions: quaternions are (w, x, y, z); rotation matrices act on column vectors
(x' = R @ x); the film world is Z up (`WORLD_UP`); angles a user gives are degrees, the
functions that take radians say so. Camera rotations are camera-to-world in OpenCV axes (x
right, y down, looking down +z), like `Cameras`; in the film crew's terms:

    pan   heading of the view in the ground plane, counter-clockwise from +x seen from above
          (pan 90 looks along +y); a positive pan move turns the camera left
    tilt  elevation of the view above the horizon (positive looks up)
    roll  rotation about the view axis; positive turns the camera's top towards its right
          (clockwise as the operator behind the camera sees it), so the image's horizon
          turns counter-clockwise (a Dutch angle)

Two families: torch (batched over leading dimensions, differentiable) for Gaussians and the
renderer -- quat_multiply, quat_to_rotmat, rotmat_to_quat; numpy float64 for poses,
placements and physics -- everything else. Rendered frames are made of these numbers, so an
implementation here changes only if the bundled demo's frames stay bit-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
import torch

from splatfilm.errors import SplatfilmError

if TYPE_CHECKING:
    from splatfilm.scene.gaussians import Gaussians

WORLD_UP = np.array([0.0, 0.0, 1.0])

# Below this length (metres), a view direction or a cross product is treated as zero.
_TINY = 1e-9


# ---- torch: Gaussians' quaternions --------------------------------------------------------


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b of (w, x, y, z) quaternions [..., 4]."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] from (w, x, y, z) quaternions [..., 4] (normalised here)."""
    w, x, y, z = torch.nn.functional.normalize(q, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def rotmat_to_quat(R: torch.Tensor) -> torch.Tensor:
    """(w, x, y, z) unit quaternions [..., 4] with w >= 0 from rotation matrices [..., 3, 3].

    Shepperd's method: of the four ways to recover the quaternion, use the one built on the
    largest of (trace, R00, R11, R22), which never divides by a small number.
    """
    m = R
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    tr = m00 + m11 + m22
    candidates = torch.stack(
        [
            torch.stack([1 + tr, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            torch.stack([m02 - m20, m01 + m10, 1 + m11 - m00 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 + m22 - m00 - m11], -1),
        ],
        dim=-2,
    )  # [..., 4 candidates, 4]
    best = torch.stack([tr, m00, m11, m22], -1).argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4)))[..., 0, :]
    q = torch.nn.functional.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


# ---- similarity transforms --------------------------------------------------------------


@dataclass
class Similarity:
    """x -> scale * rotation @ x + translation. rotation [3,3] proper; translation [3]; scale > 0."""

    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0

    def __post_init__(self) -> None:
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        self.translation = np.asarray(self.translation, dtype=np.float64).reshape(3)
        self.scale = float(self.scale)

    def __matmul__(self, other: "Similarity") -> "Similarity":
        """self after other."""
        return Similarity(self.rotation @ other.rotation,
                          self.scale * self.rotation @ other.translation + self.translation,
                          self.scale * other.scale)

    def inverse(self) -> "Similarity":
        """x -> (rotation^T @ (x - translation)) / scale."""
        return Similarity(self.rotation.T, -self.rotation.T @ self.translation / self.scale, 1.0 / self.scale)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points [...,3]."""
        return self.scale * np.asarray(points) @ self.rotation.T + self.translation

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m

    def is_identity(self) -> bool:
        """Whether it moves nothing (rotation, translation and scale the identity's, to float tolerance)."""
        return np.allclose(self.rotation, np.eye(3)) and np.allclose(self.translation, 0) and self.scale == 1.0

    def transform_gaussians(self, g: Gaussians) -> Gaussians:
        """`g` moved by this similarity (means, rotations, scales and SH: Gaussians.transformed);
        `g` itself when it is the identity."""
        if self.is_identity():
            return g
        return g.transformed(torch.tensor(self.rotation, dtype=g.dtype), torch.tensor(self.translation, dtype=g.dtype),
                             self.scale)

    @staticmethod
    def from_matrix(m: np.ndarray, tol: float = 1e-6) -> "Similarity":
        """The similarity of a 4x4 (column-vector) matrix: uniform scale, proper rotation and
        translation; a SplatfilmError for shear, non-uniform or negative scale, or projection."""
        m = np.asarray(m, dtype=np.float64).reshape(4, 4)
        if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=tol):
            raise SplatfilmError("the matrix's last row is not (0, 0, 0, 1)")
        A = m[:3, :3]
        det = float(np.linalg.det(A))
        if not det > 0:
            raise SplatfilmError("the matrix mirrors or collapses space (determinant <= 0)")
        s = det ** (1.0 / 3.0)
        R = A / s
        if not np.allclose(R.T @ R, np.eye(3), atol=tol * 10):
            raise SplatfilmError("the matrix shears or scales unevenly")
        return Similarity(R, m[:3, 3], s)

    @staticmethod
    def from_dict(d: dict) -> "Similarity":
        """The similarity a record `{rotation: [3,3], translation: [3] (metres), scale}` holds (a
        sidecar's canonical_transform)."""
        return Similarity(np.array(d["rotation"]), np.array(d["translation"]), float(d.get("scale", 1.0)))


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares similarity dst ~ s * R @ src + t (Umeyama 1991).

    src, dst: [N,3] corresponding points (N >= 3, not all on a line). Returns R [3,3] (a proper
    rotation), t [3], s (1.0 when with_scale is False).
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or src.shape[0] < 3:
        raise SplatfilmError(f"umeyama needs two [N,3] arrays with N >= 3, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1  # a reflection would fit better; take the best rotation instead
    R = U @ S @ Vt
    var_s = (xs ** 2).sum() / len(src)
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale and var_s > 0 else 1.0
    t = mu_d - s * R @ mu_s
    return R, t, s


# ---- numpy: building rotations ------------------------------------------------------------


def unit_vector(v: ArrayLike, name: str) -> np.ndarray:
    """v [3] scaled to length 1; a SplatfilmError naming `name` for a zero or non-finite vector."""
    v = np.asarray(v, dtype=np.float64).reshape(3)
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n < 1e-9:
        raise SplatfilmError(f"{name} must be a non-zero vector, got {v.tolist()}")
    return v / n


def axis_rotation(axis: str, radians: ArrayLike) -> np.ndarray:
    """Rotations [...,3,3] by `radians` [...] about the coordinate axis "x", "y" or "z" (right-handed)."""
    a = np.asarray(radians, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    rows = {
        "x": [[o, z, z], [z, c, -s], [z, s, c]],
        "y": [[c, z, s], [z, o, z], [-s, z, c]],
        "z": [[c, -s, z], [s, c, z], [z, z, o]],
    }[axis]
    return np.moveaxis(np.array(rows), (0, 1), (-2, -1))


def yaw_rotation(degrees: float | np.ndarray) -> np.ndarray:
    """Rotations [...,3,3] by `degrees` [...] about +z (counter-clockwise seen from above)."""
    return axis_rotation("z", np.radians(np.asarray(degrees, dtype=np.float64)))


def wrap_degrees(degrees: float | np.ndarray) -> np.ndarray:
    """Angles in degrees [...] wrapped into [-180, 180): the shortest turn between headings."""
    return (np.asarray(degrees, dtype=np.float64) + 180.0) % 360.0 - 180.0


def heading_about(direction: ArrayLike, normal: ArrayLike) -> float:
    """Degrees about `normal` [3] (a ground's unit normal, z up) from +x to `direction` [3],
    both taken along the plane the normal stands on: a heading on that ground (on a flat
    floor, atan2(y, x))."""
    n = np.asarray(normal, dtype=np.float64)
    e1 = np.array([1.0, 0.0, 0.0]) - n[0] * n
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    d = np.asarray(direction, dtype=np.float64)
    return math.degrees(math.atan2(float(d @ e2), float(d @ e1)))


def euler_xyz_rotation(degrees: ArrayLike) -> np.ndarray:
    """Rotation [3,3] turning by degrees[0] about x, then degrees[1] about y, then degrees[2]
    about z, all fixed (world) axes: Rz @ Ry @ Rx, as Blender's default XYZ rotation mode."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("xyz", np.asarray(degrees, dtype=np.float64).reshape(3), degrees=True).as_matrix()


def rotation_about(axis: ArrayLike, radians: ArrayLike) -> np.ndarray:
    """Rotations [...,3,3] by `radians` [...] about the directions `axis` [...,3] (normalised
    here; Rodrigues)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k, axis=-1, keepdims=True)
    a = np.asarray(radians, dtype=np.float64)[..., None, None]
    K = np.zeros(np.broadcast_shapes(k.shape[:-1], a.shape[:-2]) + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * (K @ K)


def rotation_between(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """The smallest rotation [3,3] taking the direction a [3] to the direction b [3] (both
    normalised here; a zero vector is a SplatfilmError)."""
    a, b = unit_vector(a, "a"), unit_vector(b, "b")
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1 + 1e-9:  # opposite: half turn about any axis orthogonal to a
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


# ---- numpy: quaternions and interpolation -------------------------------------------------


def rotation_from_quat(q: ArrayLike) -> np.ndarray:
    """Rotation matrices [...,3,3] from (w, x, y, z) quaternions [...,4] (normalised here; a
    zero one is a SplatfilmError)."""
    q = np.asarray(q, dtype=np.float64)
    # |q| by a dot product (matmul), as physics' baked trajectories were always replayed.
    n = np.sqrt(q[..., None, :] @ q[..., :, None])[..., 0]
    if not np.all(n > 0):
        raise SplatfilmError("a quaternion has zero length")
    w, x, y, z = np.moveaxis(q / n, -1, 0)
    return np.moveaxis(np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                                 [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                                 [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]),
                       (0, 1), (-2, -1))


def quat_from_rotation(R: ArrayLike) -> np.ndarray:
    """(w, x, y, z) unit quaternions [...,4] with w >= 0 from rotation matrices [...,3,3] (scipy's
    conversion; a matrix a little off orthonormal gets the quaternion of the nearest rotation)."""
    from scipy.spatial.transform import Rotation

    R = np.asarray(R, dtype=np.float64)
    flat = R.reshape(-1, 3, 3)
    if len(flat) == 0:
        return np.zeros(R.shape[:-2] + (4,))
    q = Rotation.from_matrix(flat).as_quat()[:, [3, 0, 1, 2]]  # scipy's order is (x, y, z, w)
    q = np.where(q[:, :1] < 0, -q, q)
    return q.reshape(R.shape[:-2] + (4,))


def quat_slerp(q0: np.ndarray, q1: np.ndarray, u: float) -> np.ndarray:
    """Spherical interpolation [4] from unit quaternion q0 [4] (u = 0) to q1 [4] (u = 1) the
    shorter way round (q and -q are the same rotation)."""
    dot = float(q0 @ q1)
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly equal: linear is exact enough and stable
        q = q0 + u * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = math.acos(dot)
    return (math.sin((1 - u) * theta) * q0 + math.sin(u * theta) * q1) / math.sin(theta)


def rotation_angle_deg(R: np.ndarray) -> float | np.ndarray:
    """The angle of a rotation [3,3] (a float) or of each of [...,3,3] (an array [...]),
    degrees in [0, 180]. Accurate at every angle: arccos of the trace alone loses half the
    digits near 0 (1e-8 rad reads as 0; a pose check compares angles of a few hundredths of a
    degree), so the sine comes from the skew part and the cosine from the trace."""
    R = np.asarray(R, dtype=np.float64)
    sin2 = np.linalg.norm(np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                                    R[..., 1, 0] - R[..., 0, 1]], -1), axis=-1)  # 2 sin(angle)
    cos2 = np.trace(R, axis1=-2, axis2=-1) - 1.0  # 2 cos(angle)
    angle = np.degrees(np.arctan2(sin2, cos2))
    return float(angle) if angle.ndim == 0 else angle


def rotation_slerp(Ra: np.ndarray, Rb: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rotations [T,3,3] a fraction w [T] of the shortest turn from Ra [T,3,3] to Rb [T,3,3]
    (slerp on matrices; w >= 1 gives Rb)."""
    rel = np.swapaxes(Ra, -1, -2) @ Rb
    angle = np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0))
    axis = np.stack([rel[:, 2, 1] - rel[:, 1, 2], rel[:, 0, 2] - rel[:, 2, 0], rel[:, 1, 0] - rel[:, 0, 1]], -1)
    out = Rb.copy()
    for i in range(len(w)):
        if w[i] >= 1.0:
            continue
        n = np.linalg.norm(axis[i])
        if angle[i] < 1e-12:
            out[i] = Ra[i]
        elif n < 1e-9:  # a half turn: the axis is the eigenvector of eigenvalue 1
            vals, vecs = np.linalg.eigh((rel[i] + rel[i].T) / 2)
            out[i] = Ra[i] @ rotation_about(vecs[:, np.argmax(vals)], w[i] * angle[i])
        else:
            out[i] = Ra[i] @ rotation_about(axis[i] / n, w[i] * angle[i])
    return out


# ---- numpy: camera orientations (OpenCV axes, module docstring) ---------------------------


def look_at_rotation(position: ArrayLike, target: ArrayLike, up: ArrayLike = WORLD_UP,
                     roll_deg: float = 0.0) -> np.ndarray:
    """Camera-to-world rotations [...,3,3] (OpenCV axes) looking from `position` at `target`.

    The camera's right axis is horizontal (perpendicular to `up`) before `roll_deg` is
    applied. Looking straight along `up` has no horizontal right axis; then the world's +x
    (or +y) stands in, so the result is defined but its roll is arbitrary.
    Raises SplatfilmError where target and position coincide.
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    return direction_rotation(forward, up, roll_deg)


def direction_rotation(forward: ArrayLike, up: ArrayLike = WORLD_UP, roll_deg: float = 0.0) -> np.ndarray:
    """Camera-to-world rotations [...,3,3] looking along `forward` [...,3] (see `look_at_rotation`)."""
    forward = np.asarray(forward, dtype=np.float64)
    norm = np.linalg.norm(forward, axis=-1, keepdims=True)
    if np.any(norm < _TINY):
        raise SplatfilmError("the camera's look-at target is at the camera itself (no view direction)")
    z = forward / norm
    up = np.broadcast_to(np.asarray(up, dtype=np.float64), z.shape)
    x = np.cross(z, up)
    xn = np.linalg.norm(x, axis=-1, keepdims=True)
    degenerate = xn[..., 0] < 1e-9
    if np.any(degenerate):
        # Straight up or down: any horizontal right axis will do; take one from world x (or y).
        helper = np.where(np.abs(z[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        alt = np.cross(np.cross(z, helper), z)
        x = np.where(degenerate[..., None], alt, x)
        xn = np.linalg.norm(x, axis=-1, keepdims=True)
    x = x / xn
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=-1)
    if np.any(np.asarray(roll_deg) != 0):
        R = R @ axis_rotation("z", np.radians(roll_deg))
    return R


def pan_tilt_roll_rotation(pan_deg: float, tilt_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Camera-to-world rotations [...,3,3] from pan (heading), tilt and roll in degrees (module docstring)."""
    pan, tilt = np.radians(pan_deg), np.radians(tilt_deg)
    forward = np.stack(np.broadcast_arrays(np.cos(tilt) * np.cos(pan), np.cos(tilt) * np.sin(pan), np.sin(tilt)), -1)
    return direction_rotation(forward, WORLD_UP, roll_deg)


def rotation_to_pan_tilt_roll(R: ArrayLike) -> np.ndarray:
    """(pan, tilt, roll) in degrees [...,3] of camera-to-world rotations [...,3,3] (inverse of
    `pan_tilt_roll_rotation`; pan and roll are arbitrary when looking straight up or down)."""
    R = np.asarray(R, dtype=np.float64)
    z = R[..., :, 2]
    pan = np.degrees(np.arctan2(z[..., 1], z[..., 0]))
    tilt = np.degrees(np.arcsin(np.clip(z[..., 2], -1.0, 1.0)))
    level = direction_rotation(z, WORLD_UP)
    # Roll is the angle from the level right axis to the actual one, about the view axis.
    x_level, x = level[..., :, 0], R[..., :, 0]
    roll = np.degrees(np.arctan2(np.sum(np.cross(x_level, x) * z, axis=-1), np.sum(x_level * x, axis=-1)))
    return np.stack([pan, tilt, roll], axis=-1)
