"""A shot: a camera path through the scene, sampled at an exact frame rate through a lens.

Frame i (i = 0 .. frame_count-1) is shown at exactly i / fps seconds into the shot and
carries the film frame number first_frame + i; its image is `{name}.{frame:04d}.png`
(docs/CONVENTIONS.md: `shot_010.1001.png`, `shot_010.1002.png`, ...).

Handles, as editors mean them, are extra frames outside the cut: `Shot.with_handles(h)` adds
h frames before the first and after the last, during which the camera holds its first and
last marks (a `CameraPath` holds its ends outside its span) while the world goes on. The
cut's frames keep their numbers; the head handle's are the h numbers before them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from splatfilm.scene.cameras import Cameras
from splatfilm.errors import SplatfilmError
from splatfilm.shots.lens import Lens
from splatfilm.shots.pose import CameraPath, PathSample
from splatfilm.shots.timing import FIRST_FRAME, frame_times


@dataclass
class DelayedPath:
    """`path` started `delay` seconds later; implements `CameraPath`. A shot's head handle
    plays before the path's time 0."""

    path: CameraPath
    delay: float

    @property
    def start(self) -> float:
        return float(self.path.start) + self.delay

    @property
    def end(self) -> float:
        return float(self.path.end) + self.delay

    @property
    def key_times(self) -> list[float]:
        keys = getattr(self.path, "key_times", None) or [float(self.path.start), float(self.path.end)]
        return [t + self.delay for t in keys]

    def sample(self, times: ArrayLike) -> PathSample:
        """`path` at `times` [T] less the delay (seconds); the sample keeps the times asked for."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        s = self.path.sample(times - self.delay)
        s.times = times
        return s


@dataclass
class Shot:
    """A named camera path sampled as frames.

    name:         shot name, used for image names (`shot_010` -> `shot_010.1001.png`)
    path:         any `CameraPath` (times in seconds from the shot's start)
    lens:         image size, sensor and default focal length / focus / clipping
    fps:          exact frame rate
    frame_count:  number of frames (>= 1)
    first_frame:  film frame number of frame 0 (default 1001)
    loop:         the path is a closed loop (the frame after the last would be the first)
    """

    name: str
    path: CameraPath
    lens: Lens
    fps: Fraction
    frame_count: int
    first_frame: int = FIRST_FRAME
    loop: bool = False

    def __post_init__(self) -> None:
        self.fps = Fraction(self.fps)
        if self.fps <= 0:
            raise SplatfilmError(f"shot {self.name}: fps must be > 0, got {self.fps}")
        if int(self.frame_count) != self.frame_count or self.frame_count < 1:
            raise SplatfilmError(f"shot {self.name}: needs at least one frame, got {self.frame_count}")
        self.frame_count = int(self.frame_count)

    def __repr__(self) -> str:
        return (f"Shot({self.name!r}, frames {self.first_frame}-{self.last_frame} at {self.fps} fps, "
                f"{self.lens.focal_mm:g} mm {self.lens.width}x{self.lens.height}, {type(self.path).__name__})")

    @property
    def duration(self) -> Fraction:
        """Screen time in seconds: frame_count / fps (exact)."""
        return Fraction(self.frame_count) / self.fps

    @property
    def times(self) -> np.ndarray:
        """Time of each frame in seconds [frame_count]: exactly i / fps."""
        return frame_times(self.frame_count, self.fps)

    @property
    def frame_numbers(self) -> np.ndarray:
        """Film frame number of each frame [frame_count] (int64)."""
        return np.arange(self.first_frame, self.first_frame + self.frame_count, dtype=np.int64)

    @property
    def last_frame(self) -> int:
        return self.first_frame + self.frame_count - 1

    def image_names(self) -> list[str]:
        """`{name}.{frame:04d}.png` for every frame."""
        return [f"{self.name}.{f:04d}.png" for f in self.frame_numbers]

    def time_of_frame(self, frame: int) -> float:
        """Seconds from the shot's start of film frame number `frame` (exact, then rounded once)."""
        return float(Fraction(int(frame) - self.first_frame) / self.fps)

    def key_times(self) -> list[float]:
        """Times within the shot worth marking in a preview: the path's keys, or its two ends."""
        end = float(self.times[-1])
        keys = getattr(self.path, "key_times", None) or [0.0, end]
        keys = [t for t in keys if -1e-9 <= t <= float(self.duration) + 1e-9]
        return keys or [0.0]

    def with_handles(self, handles: int) -> "Shot":
        """This shot with `handles` frames added before its first frame and after its last;
        the camera holds its first and last marks during them. Its frames keep their numbers
        (a key at frame N is still shown on frame N): the head handle is numbered
        first_frame - handles .. first_frame - 1, the tail handle last_frame + 1 ..
        last_frame + handles."""
        if handles == 0:
            return self
        return Shot(self.name, DelayedPath(self.path, float(Fraction(handles) / self.fps)), self.lens, self.fps,
                    self.frame_count + 2 * handles, self.first_frame - handles, self.loop)

    def sample(self, times: ArrayLike | None = None) -> PathSample:
        """The path at every frame (or at `times`), with the lens's focal length and focus
        distance where the path leaves them unset."""
        return self.path.sample(self.times if times is None else times).with_lens_defaults(self.lens)

    def cameras(self) -> Cameras:
        """One camera per frame, named after its image (`shot_010.1001.png`, ...)."""
        return self.path.sample(self.times).to_cameras(self.lens, self.image_names())
