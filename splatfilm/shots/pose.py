"""Camera poses on a path: a single `Pose`, and the `PathSample` batch every path returns.

Rotations are camera-to-world [3,3] in splatfilm's OpenCV camera axes (x right, y down,
looking down +z), like `Cameras`; look-at and pan/tilt/roll orientations are built by
`scene.transforms` (whose docstring defines the angles). The film world is Z up, metres.

A focus distance is metres, or a `FocusOn`: focus held on a subject (a point, or a moving
one), as Blender's focus object and Unreal's focus tracking hold it. Its distance at each
time is the subject's camera z, along the optical axis, as a lens's focus distance is
measured (a subject off the axis is in focus on the plane through it, not at its slant
range), from the camera as the path finally places it: a path whose focus follows a subject
gives its samples a `refocus`, which the moves laid over it call once they have moved the
camera (`moves.MovePath`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Union, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from splatfilm.scene.cameras import Cameras
from splatfilm.errors import SplatfilmError
from splatfilm.scene.transforms import WORLD_UP, look_at_rotation
from splatfilm.shots.lens import Lens

Target = Union[np.ndarray, list, tuple, Callable[[np.ndarray], np.ndarray]]
"""A point [3], or a moving one: any function of times [T] (seconds) -> points [T,3] (a
`moves.PointTrack`, a film's walking asset)."""


def target_points(target: Target, times: np.ndarray | float) -> np.ndarray:
    """Where `target` is at each of `times` [T] (seconds): [T,3] metres."""
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if callable(target):
        pts = np.asarray(target(times), dtype=np.float64)
    else:
        pts = np.asarray(target, dtype=np.float64)
    try:
        return np.array(np.broadcast_to(pts, (len(times), 3)))
    except ValueError:
        raise SplatfilmError(f"a target must be a point [3] or give [T,3] points, got shape {pts.shape}") from None


@dataclass(frozen=True)
class FocusOn:
    """Focus held on a subject: `target`, a point [3] (metres) or a moving one (`Target`);
    `name` is what a shot file called it (for messages and for writing it back)."""

    target: Target
    name: str | None = None

    def distances(self, times: ArrayLike, positions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
        """Focus distances [T] in metres of cameras at `positions` [T,3] with camera-to-world
        `rotations` [T,3,3] (OpenCV axes) at `times` [T] (seconds): the subject's camera z
        there, negative where it is behind the camera."""
        pts = target_points(self.target, times)
        return np.einsum("ti,ti->t", pts - np.asarray(positions, np.float64), np.asarray(rotations, np.float64)[:, :, 2])


Focus = Union[float, FocusOn, None]
"""A focus distance as a camera or key gives it: metres, a subject, or None (unset)."""


def focus_values(focus: Focus, times: np.ndarray, positions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """`focus` [T] in metres for cameras at `positions` [T,3], `rotations` [T,3,3] at `times` [T]:
    a subject's distances, a number repeated, NaN for None."""
    if isinstance(focus, FocusOn):
        return focus.distances(times, positions, rotations)
    return np.full(len(np.atleast_1d(times)), np.nan if focus is None else float(focus))


@dataclass
class Pose:
    """One camera: position [3] (metres), rotation [3,3] camera-to-world (OpenCV axes), and
    optionally its focal length (mm) and focus distance (metres, or a `FocusOn` subject);
    None: the lens's."""

    position: np.ndarray
    rotation: np.ndarray
    focal_mm: float | None = None
    focus_distance: Focus = None

    def __post_init__(self) -> None:
        self.position = np.array(self.position, dtype=np.float64).reshape(3)
        self.rotation = np.array(self.rotation, dtype=np.float64).reshape(3, 3)
        if not (np.all(np.isfinite(self.position)) and np.all(np.isfinite(self.rotation))):
            raise SplatfilmError("camera pose has non-finite values")

    @staticmethod
    def look_at(position: ArrayLike, target: ArrayLike, up: ArrayLike = WORLD_UP, roll_deg: float = 0.0,
                focal_mm: float | None = None, focus_distance: Focus = None) -> "Pose":
        """A camera at `position` looking at `target` (both [3], metres), then rolled by `roll_deg`.
        SplatfilmError where they coincide."""
        return Pose(position, look_at_rotation(position, target, up, roll_deg), focal_mm, focus_distance)

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
    refocus                  None, or where the focus follows a subject: a function of the
                             cameras as finally placed, positions [T,3] and rotations
                             [T,3,3], to their focus distances [T] (metres); the times are
                             the sample's own, bound in. `focus_distance` already holds what
                             it gives for the cameras as sampled.
    """

    times: np.ndarray
    positions: np.ndarray
    rotations: np.ndarray
    focal_mm: np.ndarray = field(default=None)  # type: ignore[assignment]
    focus_distance: np.ndarray = field(default=None)  # type: ignore[assignment]
    refocus: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = field(default=None, repr=False)

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
        s = PathSample(times, pose.position, pose.rotation, nan if pose.focal_mm is None else pose.focal_mm)
        s.follow_focus(pose.focus_distance)
        return s

    def follow_focus(self, focus: Focus | Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Set the focus to `focus` (a `Focus`, or a function of times [T], positions [T,3]
        and rotations [T,3,3] to distances [T]): its distances for the cameras as they are
        now, and where it depends on the camera, the `refocus` that gives them for the cameras
        as finally placed."""
        times = self.times
        distances = focus.distances if isinstance(focus, FocusOn) else focus
        if not callable(distances):
            self.refocus = None
            self.focus_distance = focus_values(focus, times, self.positions, self.rotations)
            return
        self.refocus = lambda positions, rotations: distances(times, positions, rotations)
        self.focus_distance = self.refocus(self.positions, self.rotations)

    def settle_focus(self) -> None:
        """Make `focus_distance` that of the cameras as they are now, and final (`refocus`: None)."""
        if self.refocus is not None:
            self.focus_distance = np.asarray(self.refocus(self.positions, self.rotations), dtype=np.float64)
            self.refocus = None

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
