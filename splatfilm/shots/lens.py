"""Film lenses: focal length in millimetres on a sensor, and the pixel intrinsics they make.

A film lens is described the way a camera department describes it: a focal length in mm on
a sensor of a given width in mm (default 36 mm, full frame), or a field of view. Pixels are
square and the principal point is the image centre, so (docs/CONVENTIONS.md)

    fx = fy = focal_mm / sensor_width_mm * width        (pixels)
    cx, cy  = width / 2, height / 2                     (pixel-edge convention)

The sensor height follows from the image's aspect ratio: sensor_width_mm * height / width
(the part of the sensor the image uses, the way Blender's "horizontal" sensor fit works).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from splatfilm.errors import SplatfilmError

FULL_FRAME_MM = 36.0
"""Width of a full-frame (35 mm still) sensor in millimetres, the default sensor."""


def focal_mm_to_pixels(focal_mm, width, sensor_width_mm: float = FULL_FRAME_MM):
    """Focal length in pixels from millimetres: focal_mm / sensor_width_mm * width (arrays broadcast)."""
    return np.asarray(focal_mm, dtype=np.float64) / sensor_width_mm * np.asarray(width, dtype=np.float64)


def pixels_to_focal_mm(focal_px, width, sensor_width_mm: float = FULL_FRAME_MM):
    """Focal length in millimetres from pixels (the inverse of `focal_mm_to_pixels`)."""
    return np.asarray(focal_px, dtype=np.float64) * sensor_width_mm / np.asarray(width, dtype=np.float64)


def fov_deg_to_focal_mm(fov_deg, aperture_mm: float = FULL_FRAME_MM):
    """Focal length in mm whose field of view across `aperture_mm` of sensor is `fov_deg` degrees."""
    return 0.5 * aperture_mm / np.tan(np.radians(np.asarray(fov_deg, dtype=np.float64)) / 2)


def focal_mm_to_fov_deg(focal_mm, aperture_mm: float = FULL_FRAME_MM):
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
    """

    focal_mm: float = 35.0
    width: int = 1920
    height: int = 1080
    sensor_width_mm: float = FULL_FRAME_MM
    near: float = 0.01
    far: float = 1000.0
    f_stop: float | None = None
    focus_distance: float | None = None

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

    # ---- construction ---------------------------------------------------------------------

    @staticmethod
    def from_fov(fov_deg: float, axis: str = "horizontal", **kwargs) -> "Lens":
        """A lens with the given field of view in degrees across the image's `axis`
        ("horizontal" or "vertical"); other arguments as the fields (focal_mm excluded)."""
        if not 0 < fov_deg < 180:
            raise SplatfilmError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
        probe = Lens(**kwargs)
        if axis == "horizontal":
            aperture = probe.sensor_width_mm
        elif axis == "vertical":
            aperture = probe.sensor_height_mm
        else:
            raise SplatfilmError(f"field of view axis must be 'horizontal' or 'vertical', got {axis!r}")
        return replace(probe, focal_mm=float(fov_deg_to_focal_mm(fov_deg, aperture)))

    @staticmethod
    def from_K(K, width: int, height: int, sensor_width_mm: float = FULL_FRAME_MM, **kwargs) -> "Lens":
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
    def sensor_height_mm(self) -> float:
        """Height of the sensor area the image uses, in mm (square pixels)."""
        return self.sensor_width_mm * self.height / self.width

    @property
    def aspect(self) -> float:
        """Image width / height."""
        return self.width / self.height

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view in degrees."""
        return float(focal_mm_to_fov_deg(self.focal_mm, self.sensor_width_mm))

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view in degrees (what nerfstudio's camera_path.json `fov` holds)."""
        return float(focal_mm_to_fov_deg(self.focal_mm, self.sensor_height_mm))

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (fx = fy)."""
        return float(focal_mm_to_pixels(self.focal_mm, self.width, self.sensor_width_mm))

    def K(self, focal_mm=None) -> np.ndarray:
        """Pinhole intrinsics in pixels: [3,3] for this lens, or [...,3,3] for an array of focal
        lengths in mm (a zoom through the lens's format)."""
        f = self.focal_mm if focal_mm is None else focal_mm
        fpx = focal_mm_to_pixels(f, self.width, self.sensor_width_mm)
        K = np.zeros(fpx.shape + (3, 3))
        K[..., 0, 0] = K[..., 1, 1] = fpx
        K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = self.width / 2, self.height / 2, 1.0
        return K
