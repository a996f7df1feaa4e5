"""Film lenses: focal length in millimetres on a sensor, and the pixel intrinsics they make.

A film lens is described the way a camera department describes it: a focal length in mm on
a sensor (film back) of a given width and height in mm (default 36 mm wide, full frame),
or a field of view. Pixels are square (but for an anamorphic lens's, below) and the principal
point is the image centre, so (docs/CONVENTIONS.md)

    fx = fy = focal_mm / image_width_mm * width         (pixels)
    cx, cy  = width / 2, height / 2                     (pixel-edge convention)

where image_width_mm x image_height_mm is the part of the film plane the image covers, which
has the image's aspect. How it sits on the back is the `sensor_fit`, Maya's film fit
(Blender's sensor fit has the first two):

    horizontal  the image spans the back's width (the default, and all there was before
                backs had heights): image_width_mm = sensor_width_mm
    vertical    the image spans the back's height: image_height_mm = sensor_height_mm
    fill        the image fits inside the back, touching it on two sides: horizontal when
                the image is wider than the back (width / height >= the back's), else vertical
    overscan    the back fits inside the image: vertical when the image is wider, else horizontal

so a focal length's field of view is measured across the back's width (horizontal) or its
height (vertical) and the other field follows from the image's aspect. A back with no
`sensor_height_mm` has the image's aspect (height sensor_width_mm * height / width): every
fit is then the horizontal one. Named backs (`FILM_BACKS`) give both dimensions.

A lens may be anamorphic (`squeeze`, the squeeze factor s: 1.33, 1.5, 1.8, 2; default 1): it
squeezes the scene horizontally by s onto the sensor, so the recorded plate keeps the sensor's
pixel grid (width x height, square photosites on the sensor) and is shown desqueezed, each
pixel s times as wide as it is high (its pixel aspect ratio), width x s by height. As Nuke,
Resolve and OpenEXR do, splatfilm renders the squeezed plate and carries the pixel aspect:

    fy = focal_mm / image_height_mm * height            (the spherical lens's, unchanged)
    fx = fy / s                                          (the horizontal field is s times wider)

The film back, its fit and every millimetre above are the sensor's (squeezed) ones; the
horizontal field of view is measured across s x image_width_mm.

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

FILM_BACKS = {
    # 35 mm still frame, 36 x 24 mm (ISO 1222's 135 format; Blender's default sensor 36 x 24).
    "full_frame": (36.0, 24.0),
    # Super 35 mm 4-perf: Unreal's CineCameraComponent default filmback (SensorWidth 24.89,
    # SensorHeight 18.67).
    "super35": (24.89, 18.67),
    # ARRI ALEXA LF technical data: LF Open Gate, 4448 x 3096 photosites, 36.70 x 25.54 mm.
    "alexa_lf_open_gate": (36.70, 25.54),
    # ARRI ALEXA 35 technical data: 4.6K 3:2 Open Gate, 4608 x 3164 photosites, 27.99 x 19.22 mm.
    "alexa35": (27.99, 19.22),
    # APS-C as Nikon (DX) and Sony (APS-C type) specify it: 23.5 x 15.6 mm (Canon's is 22.3 x 14.9).
    "apsc": (23.5, 15.6),
    # Four Thirds system image area (Olympus / Panasonic), 17.3 x 13.0 mm.
    "micro_four_thirds": (17.3, 13.0),
}
"""Named film backs: name -> (width, height) in millimetres, for a lens's `sensor_width_mm`."""

SENSOR_FITS = ("horizontal", "vertical", "fill", "overscan")
"""How an image sits on a film back (`Lens.sensor_fit`; Maya's filmFit, module docstring)."""

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
    width, height:    image size in pixels (the squeezed plate's for an anamorphic lens)
    sensor_width_mm:  sensor (film back) width in millimetres, default 36 (full frame)
    near, far:        clipping distances in metres (scene units), 0 < near < far
    f_stop:           aperture as an f-number (for depth of field in later passes), or None
    focus_distance:   focus distance in metres, or None (for depth of field in later passes)
    model:            "pinhole" (default), "opencv", "fisheye" or "equirectangular" (`LENS_MODELS`)
    distortion:       (k1, k2, k3, k4, p1, p2), zeros for none; only the coefficients the
                      model has may be set (opencv: all but k4 is nerfstudio's r^8; fisheye: k1-k4)
    sensor_height_mm: the film back's height in millimetres, or None: the image's aspect
                      (sensor_width_mm * height / width), as before backs had heights
    sensor_fit:       how the image sits on the back (`SENSOR_FITS`, module docstring):
                      "horizontal" (default), "vertical", "fill" or "overscan"
    squeeze:          anamorphic squeeze factor (> 0; 1 spherical, 1.33, 1.5, 1.8, 2 common):
                      the plate's pixel aspect ratio, fx = fy / squeeze (module docstring)
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
    sensor_height_mm: float | None = None
    sensor_fit: str = "horizontal"
    squeeze: float = 1.0

    def __post_init__(self) -> None:
        def positive(name: str, value) -> None:
            if value is None or isinstance(value, bool) or not (isinstance(value, (int, float, np.number))
                                                                and math.isfinite(value) and value > 0):
                raise SplatfilmError(f"lens {name} must be a finite number > 0, got {value!r}")

        for name in ("focal_mm", "sensor_width_mm", "near", "far", "squeeze"):
            positive(name, getattr(self, name))
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise SplatfilmError(f"lens {name} must be a whole number of pixels > 0, got {v!r}")
        if not self.near < self.far:
            raise SplatfilmError(f"lens near ({self.near}) must be less than far ({self.far})")
        for name in ("f_stop", "focus_distance", "sensor_height_mm"):
            if getattr(self, name) is not None:
                positive(name, getattr(self, name))
        if self.sensor_fit not in SENSOR_FITS:
            raise SplatfilmError(f"lens sensor_fit must be one of {', '.join(SENSOR_FITS)}, got {self.sensor_fit!r}")
        if self.model not in LENS_MODELS:
            raise SplatfilmError(f"lens model must be one of {', '.join(LENS_MODELS)}, got {self.model!r}")
        object.__setattr__(self, "squeeze", float(self.squeeze))
        if self.model == "equirectangular" and self.squeeze != 1:
            raise SplatfilmError(f"lens squeeze {self.squeeze:g}: an equirectangular lens is a full 360 x 180 degree "
                                 "panorama and cannot be anamorphic (squeeze 1)")
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
        if axis == "horizontal":  # an anamorphic lens sees squeeze times the sensor's width
            aperture = probe.image_width_mm * probe.squeeze
        elif axis == "vertical":
            aperture = probe.image_height_mm
        else:
            raise SplatfilmError(f"field of view axis must be 'horizontal' or 'vertical', got {axis!r}")
        if probe.model == "fisheye":  # equidistant: half the aperture sits fov / 2 radians off the axis
            return replace(probe, focal_mm=float(0.5 * aperture / math.radians(fov_deg / 2)))
        return replace(probe, focal_mm=float(fov_deg_to_focal_mm(fov_deg, aperture)))

    @staticmethod
    def from_K(K: ArrayLike, width: int, height: int, sensor_width_mm: float = FULL_FRAME_MM,
               squeeze: float | None = None, **kwargs: Any) -> "Lens":
        """The lens of pinhole intrinsics K [3,3] (pixels) for a `width` x `height` image.

        Pixels s = fy / fx times as wide as high are an anamorphic lens's (`squeeze` s; the
        focal length is then the vertical one's, fy): `squeeze` None takes s from K (square
        to 1e-6 relative: 1), a number must match it. Raises SplatfilmError where it does not,
        and unless the principal point is the centre (to 1e-6 relative), which is all a film
        lens can describe.
        """
        K = np.asarray(K, dtype=np.float64)
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        if not (fx > 0 and fy > 0):
            raise SplatfilmError(f"intrinsics have focal lengths fx={fx}, fy={fy}; both must be > 0")
        ratio = 1.0 if abs(fx - fy) <= 1e-6 * fx else float(fy / fx)
        if squeeze is None:
            # A squeeze is a lens's specification (1.33, 1.8, 2): float32 apertures leave ~1e-7,
            # rounded off where that stays within the tolerance (not 4/3's 1.33333, 2.5e-6 off).
            rounded = float(f"{ratio:.6g}")
            squeeze = rounded if abs(rounded - ratio) <= 1e-6 * ratio else ratio
        elif abs(ratio - squeeze) > 1e-6 * squeeze:
            raise SplatfilmError(f"intrinsics have pixels fy / fx = {ratio:.8g} (fx={fx:.8g}, fy={fy:.8g}); "
                                 f"an anamorphic squeeze {squeeze:g} makes them {squeeze:g}")
        if abs(cx - width / 2) > 1e-6 * width or abs(cy - height / 2) > 1e-6 * height:
            raise SplatfilmError(f"principal point ({cx}, {cy}) is not the image centre ({width / 2}, {height / 2})")
        # fy is the focal length the lens's field down the frame has (a spherical lens's fx, bit for bit).
        focal = float(pixels_to_focal_mm(fx if squeeze == 1 else fy, width, sensor_width_mm))
        return Lens(focal_mm=focal, width=int(width), height=int(height), sensor_width_mm=sensor_width_mm,
                    squeeze=squeeze, **kwargs)

    # ---- derived values -------------------------------------------------------------------

    @property
    def camera_model(self) -> str:
        """The camera model this lens's cameras render with (`LENS_MODELS`)."""
        return LENS_MODELS[self.model]

    @property
    def back_height_mm(self) -> float:
        """The film back's height in mm: `sensor_height_mm`, else the image's aspect's."""
        if self.sensor_height_mm is None:
            return self.sensor_width_mm * self.height / self.width
        return float(self.sensor_height_mm)

    @property
    def fit_axis(self) -> str:
        """The back's dimension the image spans, "horizontal" (its width) or "vertical" (its
        height): `sensor_fit` resolved against the image's and the back's aspects."""
        if self.sensor_height_mm is None or self.sensor_fit == "horizontal":
            return "horizontal"  # a back of the image's aspect: every fit is this one, bit for bit
        if self.sensor_fit == "vertical":
            return "vertical"
        image_wider = self.width * self.sensor_height_mm >= self.height * self.sensor_width_mm
        return "horizontal" if image_wider == (self.sensor_fit == "fill") else "vertical"

    @property
    def image_width_mm(self) -> float:
        """Width of the film plane the image covers, in mm (focal_px = focal_mm / this * width)."""
        if self.fit_axis == "horizontal":
            return self.sensor_width_mm
        return self.back_height_mm * self.width / self.height

    @property
    def image_height_mm(self) -> float:
        """Height of the film plane the image covers, in mm (square pixels)."""
        if self.fit_axis == "horizontal":
            return self.sensor_width_mm * self.height / self.width
        return self.back_height_mm

    @property
    def aspect(self) -> float:
        """Image width / height in pixels (the squeezed plate's)."""
        return self.width / self.height

    @property
    def display_aspect(self) -> float:
        """The picture's width / height as shown, desqueezed: width x squeeze / height."""
        return self.width * self.squeeze / self.height

    def _fov_deg(self, aperture_mm: float, panorama_deg: float) -> float:
        if self.model == "equirectangular":
            return panorama_deg
        if self.model == "fisheye":  # equidistant, without the distortion terms
            return float(math.degrees(aperture_mm / self.focal_mm))
        return float(focal_mm_to_fov_deg(self.focal_mm, aperture_mm))

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view in degrees (a fisheye's without its distortion terms; an
        anamorphic lens's across squeeze x the image's width on the sensor)."""
        return self._fov_deg(self.image_width_mm * self.squeeze, 360.0)

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view in degrees (what nerfstudio's camera_path.json `fov` holds)."""
        return self._fov_deg(self.image_height_mm, 180.0)

    @property
    def focal_px(self) -> float:
        """Focal length in pixels, vertical (fy; fx = fy / squeeze, which is fy when spherical)."""
        return float(focal_mm_to_pixels(self.focal_mm, self.width, self.image_width_mm))

    def K(self, focal_mm: ArrayLike | None = None) -> np.ndarray:
        """Intrinsics in pixels: [3,3] for this lens, or [...,3,3] for an array of focal lengths
        in mm (a zoom through the lens's format); an anamorphic lens's fx is fy / squeeze. An
        equirectangular lens ignores the focal length: fx = width / 2 pi and fy = height / pi
        pixels per radian (360 x 180 degrees)."""
        f = self.focal_mm if focal_mm is None else focal_mm
        fpx = focal_mm_to_pixels(f, self.width, self.image_width_mm)
        # A spherical lens's fx is fy itself, bit for bit (x / 1.0 is x in IEEE arithmetic).
        K = centred_K(fpx / self.squeeze, fpx, self.width, self.height)
        if self.model == "equirectangular":
            K[..., 0, 0], K[..., 1, 1] = self.width / (2 * math.pi), self.height / math.pi
        return K
