"""The browser's camera and splatfilm's, both ways.

viser reports its client camera as a position, a (w, x, y, z) quaternion of the
camera-to-world rotation in OpenCV axes (x right, y down, looking along +z: splatfilm's own,
docs/CONVENTIONS.md), a vertical field of view in radians, the canvas aspect, and the point it
orbits (look_at). A lens maps that field of view to a focal length in mm on its sensor: the
image's height on the sensor is `Lens.image_height_mm` (its film back and fit), so the browser,
framing the same vertical field, sees what the shot frames (plus whatever extra width a wider
canvas shows). A canvas narrower than the frame (the panel docked on a laptop's screen) would
cut the frame's sides off: there the browser's field is opened until its width holds the
frame's (`canvas_vfov`), and read back to the frame's (`frame_vfov`) for keys and renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from splatfilm.errors import SplatfilmError
from splatfilm.scene.cameras import Cameras, centred_K, focal_px_for_fov, fov_for_focal_px
from splatfilm.scene.transforms import (WORLD_UP, look_at_rotation, quat_from_rotation, rotation_between,
                                       rotation_from_quat)
from splatfilm.shots.keyframes import Keyframe


@dataclass
class ViewerCamera:
    """The browser's camera: position [3] (m), wxyz [4] (camera-to-world, OpenCV axes),
    vfov (vertical field of view, radians), look_at [3] (the orbit centre, m) and aspect
    (canvas width / height)."""

    position: np.ndarray
    wxyz: np.ndarray
    vfov: float
    look_at: np.ndarray
    aspect: float = 16 / 9

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, dtype=np.float64).reshape(3)
        self.wxyz = np.asarray(self.wxyz, dtype=np.float64).reshape(4)
        self.look_at = np.asarray(self.look_at, dtype=np.float64).reshape(3)
        self.vfov = float(self.vfov)
        if not 0.0 < self.vfov < math.pi:
            raise SplatfilmError(f"viewer camera: vertical field of view {self.vfov} rad is not in (0, pi)")

    @property
    def rotation(self) -> np.ndarray:
        """Camera-to-world rotation [3,3], OpenCV axes."""
        return rotation_from_quat(self.wxyz)

    def c2w(self) -> np.ndarray:
        """Camera-to-world [4,4], OpenCV axes."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.position
        return m


def canvas_vfov(vfov: float, frame_aspect: float, canvas_aspect: float) -> float:
    """The browser's vertical field of view (radians) that shows a whole frame of aspect
    `frame_aspect` (width / height) whose vertical field is `vfov`: the same on a canvas at
    least as wide, wider on a narrower one (its width then spans the frame's)."""
    if canvas_aspect <= 0 or canvas_aspect >= frame_aspect:
        return float(vfov)
    return 2.0 * math.atan(math.tan(0.5 * vfov) * frame_aspect / canvas_aspect)


def frame_vfov(view: ViewerCamera, frame_aspect: float) -> float:
    """The vertical field of view (radians) of the frame of aspect `frame_aspect` that the
    browser's canvas (`view`: its field and aspect) frames: canvas_vfov's inverse."""
    if view.aspect <= 0 or view.aspect >= frame_aspect:
        return view.vfov
    return 2.0 * math.atan(math.tan(0.5 * view.vfov) * view.aspect / frame_aspect)


def frame_mask(view: ViewerCamera, frame_aspect: float, distance: float, edge: float,
               margin: float = 4.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What marks the frame (aspect `frame_aspect`, width / height) on the browser's canvas
    (`view`: its field and aspect) while looking through a shot: two flat rings in the camera's
    own axes (OpenCV: x right, y down, z ahead) at `distance` m ahead. The mask covers the
    canvas outside the frame and its edge, out to `margin` canvases wide (so a camera turning
    faster than the server re-places it stays covered); the edge is a band `edge` m wide (at
    `distance`) just outside the frame, so the frame's picture is whole.
    Returns (mask vertices [8,3], edge vertices [8,3], faces [8,3]): the faces of either ring."""
    vfov = frame_vfov(view, frame_aspect)
    h = distance * math.tan(0.5 * vfov)
    frame = np.array([h * frame_aspect, h])
    canvas_h = distance * math.tan(0.5 * view.vfov)
    outer = margin * max(canvas_h * view.aspect, canvas_h, frame[0], frame[1]) * np.ones(2)

    def ring(inner: np.ndarray, out: np.ndarray) -> np.ndarray:
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
        xy = np.concatenate([corners * inner, corners * out])
        return np.column_stack([xy, np.full(8, float(distance))])

    faces = np.array([[i, (i + 1) % 4, 4 + i] for i in range(4)]
                     + [[(i + 1) % 4, 4 + (i + 1) % 4, 4 + i] for i in range(4)], dtype=np.uint32)
    return ring(frame + edge, outer), ring(frame, frame + edge), faces


def view_of_points(points: np.ndarray, vfov: float, aspect: float, up: ArrayLike = WORLD_UP) -> ViewerCamera:
    """A camera in front of and above `points` [N,3] (m) that has all of them in sight: their
    robust bounds (1st to 99th percentile on each axis, so a few floaters do not shrink the
    rest) as a sphere, fitted into the narrower of the vertical field `vfov` (radians) and the
    horizontal one at `aspect`; looking from the front and above, as a turntable shows an
    object: from -y for a world whose `up` [3] is +z, that view turned with the up otherwise."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(points):
        lo, hi = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
        centre, radius = (lo + hi) / 2, max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
    else:
        centre, radius = np.zeros(3), 1.0
    field = min(vfov, 2.0 * math.atan(math.tan(0.5 * vfov) * aspect))
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    direction = rotation_between(WORLD_UP, up) @ (np.array([0.0, -1.0, 0.5]) / math.sqrt(1.25))
    position = centre + radius / math.sin(0.5 * field) * direction
    return ViewerCamera(position, quat_from_rotation(look_at_rotation(position, centre, up)), vfov, centre, aspect)


def viewer_from_camera(c2w: np.ndarray, focal_px: float, height: int, aspect: float,
                       orbit_distance: float = 2.0) -> ViewerCamera:
    """The viewer camera that sees what a pinhole camera sees: c2w [4,4] (OpenCV axes), its
    focal length in pixels over an image `height` pixels tall; the orbit centre is
    `orbit_distance` m ahead (viser orbits it)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    vfov = fov_for_focal_px(focal_px, height)
    position = c2w[:3, 3]
    return ViewerCamera(position, quat_from_rotation(c2w[:3, :3]), vfov, position + orbit_distance * c2w[:3, 2], aspect)


def canvas_camera(view: ViewerCamera, width: int, height: int) -> Cameras:
    """A splatfilm camera [1] seeing what the browser's canvas (width x height pixels) shows:
    same pose, same vertical field of view, principal point at the centre."""
    fy = focal_px_for_fov(view.vfov, height)
    K = centred_K(fy, fy, width, height)
    return Cameras.from_c2w_opencv(view.c2w()[None], K[None], width, height)


def roll_about_look_at(position: np.ndarray, target: np.ndarray, rotation: np.ndarray,
                       up: ArrayLike = WORLD_UP) -> float | None:
    """The roll (degrees) that makes `look_at_rotation(position, target, up, roll)` equal
    `rotation` [3,3], or None when no roll does (the target is not straight ahead, or the
    view is along `up`, where the look-at frame is undefined)."""
    forward = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    forward = forward / np.linalg.norm(forward)
    if abs(float(forward @ np.asarray(up, dtype=np.float64))) > 1.0 - 1e-6:
        return None
    level = look_at_rotation(position, target, up, 0.0)
    rel = level.T @ rotation
    roll = math.degrees(math.atan2(rel[1, 0], rel[0, 0]))
    for candidate in (roll, -roll):
        if np.allclose(look_at_rotation(position, target, up, candidate), rotation, atol=1e-9):
            return candidate
    return None


def keyframe_from_viewer(view: ViewerCamera, time: float, focal_mm: float) -> Keyframe:
    """A keyframe (time in seconds from its shot's start) at the viewer's camera: its position,
    its orbit centre as the look-at (with the roll that keeps its exact orientation), and the
    focal length. A camera whose orbit centre is not straight ahead, or that looks straight up
    or down, is keyed by its rotation instead."""
    rotation = view.rotation
    target = view.look_at
    if np.linalg.norm(target - view.position) < 1e-6:
        target = view.position + rotation[:, 2]
    roll = roll_about_look_at(view.position, target, rotation)
    if roll is None:
        # Aim straight ahead at the orbit distance; the rotation itself, when even that fails.
        target = view.position + max(float(np.linalg.norm(view.look_at - view.position)), 1.0) * rotation[:, 2]
        roll = roll_about_look_at(view.position, target, rotation)
    # Rounded far inside the 1e-4 a saved shot must reproduce, so its file reads cleanly.
    focal_mm = round(float(focal_mm), 6)
    if roll is None:
        return Keyframe(time, view.position, rotation=rotation, focal_mm=focal_mm)
    return Keyframe(time, view.position, look_at=target, roll_deg=round(roll, 9) + 0.0, focal_mm=focal_mm)
