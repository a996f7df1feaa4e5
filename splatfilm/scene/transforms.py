"""Quaternions (w, x, y, z) and rotation matrices: the one place splatfilm converts between them.

Torch functions, batched over leading dimensions; numpy callers wrap them with
`torch.from_numpy(...)` / `.numpy()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from splatfilm.scene.gaussians import Gaussians


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
        return np.allclose(self.rotation, np.eye(3)) and np.allclose(self.translation, 0) and self.scale == 1.0

    def transform_gaussians(self, g: Gaussians) -> Gaussians:
        if self.is_identity():
            return g
        return g.transformed(torch.tensor(self.rotation, dtype=g.dtype), torch.tensor(self.translation, dtype=g.dtype),
                             self.scale)

    @staticmethod
    def from_dict(d: dict) -> "Similarity":
        return Similarity(np.array(d["rotation"]), np.array(d["translation"]), float(d.get("scale", 1.0)))


def yaw_rotation(degrees: float | np.ndarray) -> np.ndarray:
    """Rotations [...,3,3] about +z (counter-clockwise seen from above)."""
    a = np.radians(np.asarray(degrees, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.moveaxis(np.array([[c, -s, z], [s, c, z], [z, z, o]]), (0, 1), (-2, -1))
