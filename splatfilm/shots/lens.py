"""Film lenses: focal length in millimetres on a sensor, and the pixel intrinsics they make.

A film lens is described the way a camera department describes it: a focal length in mm on
a sensor of a given width in mm (default 36 mm, full frame), or a field of view. Pixels are
square and the principal point is the image centre, so (docs/CONVENTIONS.md)

    fx = fy = focal_mm / sensor_width_mm * width        (pixels)
    cx, cy  = width / 2, height / 2                     (pixel-edge convention)

The sensor height follows from the image's aspect ratio: sensor_width_mm * height / width
(the part of the sensor the image uses, the way Blender's "horizontal" sensor fit works).

A lens may also distort (`model`, docs/CONVENTIONS.md "Camera models"): "opencv" (radial-
tangential k1 k2 k3 p1 p2 on the same focal length), "fisheye" (equidistant: a point theta
radians off the axis lands focal_px * theta (1 + k1 theta^2 + ...) pixels from the centre), or
"equirectangular" (a 360 x 180 degree panorama; the focal length plays no part).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from splatfilm.errors import SplatfilmError
from splatfilm.render.camera_models import check_lens
from splatfilm.scene.cameras import centred_K

FULL_FRAME_MM = 36.0
"""Width of a full-frame (35 mm still) sensor in millimetres, the default sensor."""

LENS_MODELS = {"pinhole": "PINHOLE", "opencv": "OPENCV", "fisheye": "OPENCV_FISHEYE",
               "equirectangular": "EQUIRECTANGULAR"}
"""A lens's `model` -> the camera model its cameras render with (scene.cameras.CAMERA_MODELS)."""

DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
"""The names of `Lens.distortion`'s entries, in order (nerfstudio's)."""


def focal_mm_to_pixels(focal_mm: ArrayLike, width: ArrayLike,
                       sensor_width_mm: float = FULL_FRAME_MM) -> np.ndarray | float:
    """Focal length in pixels from millimetres: focal_mm / sensor_width_mm * width (arrays broadcast)."""
    return np.asarray(focal_mm, dtype=np.float64) / sensor_width_mm * np.asarray(width, dtype=np.float64)


def pixels_to_focal_mm(focal_px: ArrayLike, width: ArrayLike,
                       sensor_width_mm: float = FULL_FRAME_MM) -> np.ndarray | float:
    """Focal length in millimetres from pixels (the inverse of `focal_mm_to_pixels`)."""
    return np.asarray(focal_px, dtype=np.float64) * sensor_width_mm / np.asarray(width, dtype=np.float64)


def fov_deg_to_focal_mm(fov_deg: ArrayLike, aperture_mm: float = FULL_FRAME_MM) -> np.ndarray | float:
    """Focal length in mm whose field of view across `aperture_mm` of sensor is `fov_deg` degrees."""
    return 0.5 * aperture_mm / np.tan(np.radians(np.asarray(fov_deg, dtype=np.float64)) / 2)


def focal_mm_to_fov_deg(focal_mm: ArrayLike, aperture_mm: float = FULL_FRAME_MM) -> np.ndarray | float:
    """Field of view in degrees across `aperture_mm` of sensor for a focal length in mm."""
    return np.degrees(2 * np.arctan(0.5 * aperture_mm / np.asarray(focal_mm, dtype=np.float64)))


@dataclass(frozen=True)
class Lens:
    """A film camera's lens and image format.

    focal_mm:         focal length in millimetres (> 0)
    width, height:    image size in pixels (square pixels)
    sensor_width_mm:  sensor (film back) width in millimetres, default 36 (full frame)
    near, far:        clipping distances in metres (scene units), 0 < near < far
    f_stop:           aperture as an f-number (for depth of field in later passes), or None
    focus_distance:   focus distance in metres, or None (for depth of field in later passes)
    model:            "pinhole" (default), "opencv", "fisheye" or "equirectangular" (`LENS_MODELS`)
    distortion:       (k1, k2, k3, k4, p1, p2), zeros for none; only the coefficients the
                      model has may be set (opencv: all but k4 is nerfstudio's r^8; fisheye: k1-k4)
    """

    focal_mm: float = 35.0
    width: int = 1920
    height: int = 1080
    sensor_width_mm: float = FULL_FRAME_MM
    near: float = 0.01
    far: float = 1000.0
    f_stop: float | None = None
    focus_distance: float | None = None
    model: str = "pinhole"
    distortion: tuple[float, ...] = (0.0,) * 6

    def __post_init__(self) -> None:
        def positive(name: str, value) -> None:
            if value is None or isinstance(value, bool) or not (isinstance(value, (int, float, np.number))
                                                                and math.isfinite(value) and value > 0):
                raise SplatfilmError(f"lens {name} must be a finite number > 0, got {value!r}")

        for name in ("focal_mm", "sensor_width_mm", "near", "far"):
            positive(name, getattr(self, name))
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise SplatfilmError(f"lens {name} must be a whole number of pixels > 0, got {v!r}")
        if not self.near < self.far:
            raise SplatfilmError(f"lens near ({self.near}) must be less than far ({self.far})")
        for name in ("f_stop", "focus_distance"):
            if getattr(self, name) is not None:
                positive(name, getattr(self, name))
        if self.model not in LENS_MODELS:
            raise SplatfilmError(f"lens model must be one of {', '.join(LENS_MODELS)}, got {self.model!r}")
        d = tuple(self.distortion)
        if len(d) != 6 or not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                   and math.isfinite(v) for v in d):
            raise SplatfilmError(f"lens distortion must be 6 finite numbers (k1 k2 k3 k4 p1 p2), got {self.distortion!r}")
        object.__setattr__(self, "distortion", tuple(float(v) for v in d))
        try:
            check_lens(self.camera_model, np.array(self.distortion))
        except SplatfilmError as e:
            raise SplatfilmError(f"lens: {str(e).replace(self.camera_model + ' camera', self.model + ' lens')}") from None

    # ---- construction ---------------------------------------------------------------------

    @staticmethod
    def from_fov(fov_deg: float, axis: str = "horizontal", **kwargs: Any) -> "Lens":
        """A lens with the given field of view in degrees across the image's `axis`
        ("horizontal" or "vertical"); other arguments as the fields (focal_mm excluded).
        A fisheye's field of view is equidistant. SplatfilmError for a field of view outside
        (0, 180) degrees or an unknown axis."""
        if not 0 < fov_deg < 180:
            raise SplatfilmError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
        probe = Lens(**kwargs)
        if axis == "horizontal":
            aperture = probe.sensor_width_mm
        elif axis == "vertical":
            aperture = probe.sensor_height_mm
        else:
            raise SplatfilmError(f"field of view axis must be 'horizontal' or 'vertical', got {axis!r}")
        if probe.model == "fisheye":  # equidistant: half the aperture sits fov / 2 radians off the axis
            return replace(probe, focal_mm=float(0.5 * aperture / math.radians(fov_deg / 2)))
        return replace(probe, focal_mm=float(fov_deg_to_focal_mm(fov_deg, aperture)))

    @staticmethod
    def from_K(K: ArrayLike, width: int, height: int, sensor_width_mm: float = FULL_FRAME_MM,
               **kwargs: Any) -> "Lens":
        """The lens of pinhole intrinsics K [3,3] (pixels) for a `width` x `height` image.

        Raises SplatfilmError unless pixels are square and the principal point is the centre
        (to 1e-6 relative), which is all a film lens can describe.
        """
        K = np.asarray(K, dtype=np.float64)
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        if abs(fx - fy) > 1e-6 * fx:
            raise SplatfilmError(f"intrinsics have non-square pixels (fx={fx}, fy={fy}); a film lens cannot describe them")
        if abs(cx - width / 2) > 1e-6 * width or abs(cy - height / 2) > 1e-6 * height:
            raise SplatfilmError(f"principal point ({cx}, {cy}) is not the image centre ({width / 2}, {height / 2})")
        focal = float(pixels_to_focal_mm(fx, width, sensor_width_mm))
        return Lens(focal_mm=focal, width=int(width), height=int(height), sensor_width_mm=sensor_width_mm, **kwargs)

    def with_focal(self, focal_mm: float) -> "Lens":
        """The same lens at another focal length (a zoom)."""
        return replace(self, focal_mm=float(focal_mm))

    # ---- derived values -------------------------------------------------------------------

    @property
    def camera_model(self) -> str:
        """The camera model this lens's cameras render with (`LENS_MODELS`)."""
        return LENS_MODELS[self.model]

    @property
    def sensor_height_mm(self) -> float:
        """Height of the sensor area the image uses, in mm (square pixels)."""
        return self.sensor_width_mm * self.height / self.width

    @property
    def aspect(self) -> float:
        """Image width / height."""
        return self.width / self.height

    def _fov_deg(self, aperture_mm: float, panorama_deg: float) -> float:
        if self.model == "equirectangular":
            return panorama_deg
        if self.model == "fisheye":  # equidistant, without the distortion terms
            return float(math.degrees(aperture_mm / self.focal_mm))
        return float(focal_mm_to_fov_deg(self.focal_mm, aperture_mm))

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view in degrees (a fisheye's without its distortion terms)."""
        return self._fov_deg(self.sensor_width_mm, 360.0)

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view in degrees (what nerfstudio's camera_path.json `fov` holds)."""
        return self._fov_deg(self.sensor_height_mm, 180.0)

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (fx = fy)."""
        return float(focal_mm_to_pixels(self.focal_mm, self.width, self.sensor_width_mm))

    def K(self, focal_mm: ArrayLike | None = None) -> np.ndarray:
        """Intrinsics in pixels: [3,3] for this lens, or [...,3,3] for an array of focal lengths
        in mm (a zoom through the lens's format). An equirectangular lens ignores the focal
        length: fx = width / 2 pi and fy = height / pi pixels per radian (360 x 180 degrees)."""
        f = self.focal_mm if focal_mm is None else focal_mm
        fpx = focal_mm_to_pixels(f, self.width, self.sensor_width_mm)
        K = centred_K(fpx, fpx, self.width, self.height)
        if self.model == "equirectangular":
            K[..., 0, 0], K[..., 1, 1] = self.width / (2 * math.pi), self.height / math.pi
        return K
