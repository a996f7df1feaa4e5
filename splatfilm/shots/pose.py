"""Camera poses on a path: a single `Pose`, and the `PathSample` batch every path returns.

Rotations are camera-to-world [3,3] in splatfilm's OpenCV camera axes (x right, y down,
looking down +z), like `Cameras`; look-at and pan/tilt/roll orientations are built by
`scene.transforms` (whose docstring defines the angles). The film world is Z up, metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from splatfilm.scene.cameras import Cameras
from splatfilm.errors import SplatfilmError
from splatfilm.scene.transforms import WORLD_UP, look_at_rotation, pan_tilt_roll_rotation
from splatfilm.shots.lens import Lens


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
    def look_at(position: ArrayLike, target: ArrayLike, up: ArrayLike = WORLD_UP, roll_deg: float = 0.0,
                focal_mm: float | None = None, focus_distance: float | None = None) -> "Pose":
        """A camera at `position` looking at `target` (both [3], metres), then rolled by `roll_deg`.
        SplatfilmError where they coincide."""
        return Pose(position, look_at_rotation(position, target, up, roll_deg), focal_mm, focus_distance)

    @staticmethod
    def from_pan_tilt_roll(position: ArrayLike, pan_deg: float, tilt_deg: float = 0.0, roll_deg: float = 0.0,
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
    def from_pose(pose: Pose, times: ArrayLike) -> "PathSample":
        """A camera standing still at `pose` for every time in `times` [T] (seconds)."""
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
        return Cameras.from_c2w_opencv(s.c2w_opencv(), lens.K(s.focal_mm), lens.width, lens.height,
                                       distortion=lens.distortion, camera_model=lens.camera_model, names=names)


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

    def sample(self, times: ArrayLike) -> PathSample:
        """The camera at `times` [T] (seconds from the shot's start)."""
        ...
