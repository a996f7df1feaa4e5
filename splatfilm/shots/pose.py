"""Camera poses on a path: look-at and pan/tilt/roll orientations, a single `Pose`, and the
`PathSample` batch every path returns.

Rotations are camera-to-world [3,3] in splatfilm's OpenCV camera axes (x right, y down,
looking down +z), like `Cameras`. The film world is Z up, metres. Angles a user gives are
degrees, in the film crew's sense:

    pan   heading of the view in the ground plane, counter-clockwise from +x seen from above
          (pan 90 looks along +y); a positive pan move turns the camera left
    tilt  elevation of the view above the horizon (positive looks up)
    roll  rotation about the view axis; positive turns the camera's top towards its right
          (clockwise as the operator behind the camera sees it), so the image's horizon
          turns counter-clockwise (a Dutch angle)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from splatfilm.scene.cameras import Cameras
from splatfilm.errors import SplatfilmError
from splatfilm.scene.transforms import quat_to_rotmat, rotmat_to_quat
from splatfilm.shots.lens import Lens

WORLD_UP = np.array([0.0, 0.0, 1.0])

# Below this length (metres), a view direction or a cross product is treated as zero.
_TINY = 1e-9


def quat_from_rotation(R) -> np.ndarray:
    """(w, x, y, z) unit quaternions [...,4], w >= 0, from rotation matrices [...,3,3] (numpy float64)."""
    return rotmat_to_quat(torch.from_numpy(np.ascontiguousarray(R, dtype=np.float64))).numpy()


def rotation_from_quat(q) -> np.ndarray:
    """Rotation matrices [...,3,3] from (w, x, y, z) quaternions [...,4] (normalised here)."""
    q = np.asarray(q, dtype=np.float64)
    if not np.all(np.linalg.norm(q, axis=-1) > 0):
        raise SplatfilmError("a quaternion has zero length")
    return quat_to_rotmat(torch.from_numpy(np.ascontiguousarray(q))).numpy()


def axis_rotation(axis: str, radians) -> np.ndarray:
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


def rotation_about(axis, radians) -> np.ndarray:
    """Rotations [...,3,3] by `radians` [...] about unit vectors `axis` [...,3] (Rodrigues)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k, axis=-1, keepdims=True)
    a = np.asarray(radians, dtype=np.float64)[..., None, None]
    K = np.zeros(np.broadcast_shapes(k.shape[:-1], a.shape[:-2]) + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * (K @ K)


def look_at_rotation(position, target, up=WORLD_UP, roll_deg=0.0) -> np.ndarray:
    """Camera-to-world rotations [...,3,3] (OpenCV axes) looking from `position` at `target`.

    The camera's right axis is horizontal (perpendicular to `up`) before `roll_deg` is
    applied. Looking straight along `up` has no horizontal right axis; then the world's +x
    (or +y) stands in, so the result is defined but its roll is arbitrary.
    Raises SplatfilmError where target and position coincide.
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    return direction_rotation(forward, up, roll_deg)


def direction_rotation(forward, up=WORLD_UP, roll_deg=0.0) -> np.ndarray:
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


def pan_tilt_roll_rotation(pan_deg, tilt_deg=0.0, roll_deg=0.0) -> np.ndarray:
    """Camera-to-world rotations [...,3,3] from pan (heading), tilt and roll in degrees (module docstring)."""
    pan, tilt = np.radians(pan_deg), np.radians(tilt_deg)
    forward = np.stack(np.broadcast_arrays(np.cos(tilt) * np.cos(pan), np.cos(tilt) * np.sin(pan), np.sin(tilt)), -1)
    return direction_rotation(forward, WORLD_UP, roll_deg)


def rotation_to_pan_tilt_roll(R) -> np.ndarray:
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


@dataclass
class Pose:
    """One camera: position [3] (metres), rotation [3,3] camera-to-world (OpenCV axes), and
    optionally its focal length (mm) and focus distance (metres); None: the lens's."""

    position: np.ndarray
    rotation: np.ndarray
    focal_mm: float | None = None
    focus_distance: float | None = None

    def __post_init__(self) -> None:
        self.position = np.array(self.position, dtype=np.float64).reshape(3)
        self.rotation = np.array(self.rotation, dtype=np.float64).reshape(3, 3)
        if not (np.all(np.isfinite(self.position)) and np.all(np.isfinite(self.rotation))):
            raise SplatfilmError("camera pose has non-finite values")

    @staticmethod
    def look_at(position, target, up=WORLD_UP, roll_deg: float = 0.0, focal_mm: float | None = None,
                focus_distance: float | None = None) -> "Pose":
        """A camera at `position` looking at `target` (both [3], metres), then rolled by `roll_deg`."""
        return Pose(position, look_at_rotation(position, target, up, roll_deg), focal_mm, focus_distance)

    @staticmethod
    def from_pan_tilt_roll(position, pan_deg: float, tilt_deg: float = 0.0, roll_deg: float = 0.0,
                           focal_mm: float | None = None, focus_distance: float | None = None) -> "Pose":
        """A camera at `position` with the given pan, tilt and roll in degrees (module docstring)."""
        return Pose(position, pan_tilt_roll_rotation(pan_deg, tilt_deg, roll_deg), focal_mm, focus_distance)

    @property
    def forward(self) -> np.ndarray:
        """Unit view direction [3]."""
        return self.rotation[:, 2].copy()


@dataclass
class PathSample:
    """A camera path sampled at T times.

    times           [T]      seconds from the shot's start
    positions       [T,3]    camera centres, metres
    rotations       [T,3,3]  camera-to-world rotations, OpenCV axes
    focal_mm        [T]      focal lengths in mm; NaN: the lens's
    focus_distance  [T]      focus distances in metres; NaN: the lens's (or none)
    """

    times: np.ndarray
    positions: np.ndarray
    rotations: np.ndarray
    focal_mm: np.ndarray = field(default=None)  # type: ignore[assignment]
    focus_distance: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.times = np.atleast_1d(np.asarray(self.times, dtype=np.float64))
        t = self.times.shape[0]
        self.positions = np.array(np.broadcast_to(self.positions, (t, 3)), dtype=np.float64)
        self.rotations = np.array(np.broadcast_to(self.rotations, (t, 3, 3)), dtype=np.float64)
        for name in ("focal_mm", "focus_distance"):
            v = getattr(self, name)
            setattr(self, name, np.full(t, np.nan) if v is None else np.array(np.broadcast_to(v, (t,)), dtype=np.float64))

    def __len__(self) -> int:
        return self.times.shape[0]

    @staticmethod
    def from_pose(pose: Pose, times) -> "PathSample":
        """A camera standing still at `pose` for every time in `times`."""
        nan = float("nan")
        return PathSample(times, pose.position, pose.rotation,
                          nan if pose.focal_mm is None else pose.focal_mm,
                          nan if pose.focus_distance is None else pose.focus_distance)

    def pose(self, i: int) -> Pose:
        """The camera at sample i."""
        f, d = self.focal_mm[i], self.focus_distance[i]
        return Pose(self.positions[i], self.rotations[i], None if np.isnan(f) else float(f),
                    None if np.isnan(d) else float(d))

    def c2w_opencv(self) -> np.ndarray:
        """Camera-to-world matrices [T,4,4], OpenCV axes."""
        m = np.tile(np.eye(4), (len(self), 1, 1))
        m[:, :3, :3] = self.rotations
        m[:, :3, 3] = self.positions
        return m

    def with_lens_defaults(self, lens: Lens) -> "PathSample":
        """A copy whose unset (NaN) focal lengths and focus distances are the lens's."""
        focal = np.where(np.isnan(self.focal_mm), lens.focal_mm, self.focal_mm)
        default_focus = np.nan if lens.focus_distance is None else lens.focus_distance
        focus = np.where(np.isnan(self.focus_distance), default_focus, self.focus_distance)
        return PathSample(self.times, self.positions, self.rotations, focal, focus)

    def to_cameras(self, lens: Lens, names: list[str | None] | None = None) -> Cameras:
        """`Cameras` [T] through `lens` (its image size and sensor; the focal length per sample)."""
        s = self.with_lens_defaults(lens)
        if np.any(s.focal_mm <= 0):
            i = int(np.argmax(s.focal_mm <= 0))
            raise SplatfilmError(f"focal length at t={s.times[i]:.4f} s is {s.focal_mm[i]} mm (must be > 0)")
        return Cameras.from_c2w_opencv(s.c2w_opencv(), lens.K(s.focal_mm), lens.width, lens.height, names=names)


@runtime_checkable
class CameraPath(Protocol):
    """Anything that places a camera at any time: keyframed paths, camera moves, imports.

    start, end: the span in seconds on which the path is defined (sampling outside it holds
    the nearest end, or wraps around for a closed loop). sample(times [T]) -> PathSample.
    """

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    def sample(self, times) -> PathSample: ...
