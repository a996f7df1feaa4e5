"""Rendered frames' image files: reading one back (`read_image`; a capture's photos are read by
`io.photos`), and writing them: 8-bit PNG (RGB or RGBA, `to_uint8` rounding) or 16-bit
(`to_uint16`, for grading: near black one 8-bit step is ~8% in linear light), every PNG tagged
sRGB; 32-bit float depth as EXR or .npy, and multi-layer EXRs of compositing passes (32-bit
float, or half with Z kept float, and a choice of OpenEXR compression: `ExrFormat`). A film
frame's EXRs carry OpenEXR's standard attributes for it (`exr_frame_header`): timeCode,
framesPerSecond, an anamorphic frame's pixelAspectRatio, and the camera as worldToCamera /
worldToNDC in OpenEXR's own camera convention (`exr_world_to_camera`, `exr_world_to_ndc`).
Images are made smaller with a box filter (`downscale`; `downscale_display` averages a picture's
light, for thumbnails).

Colour: the renderer's colours are display sRGB-encoded values (the assets were fitted to
photos), so PNGs (and the movies made from them) are display sRGB as they come. EXRs are
scene-linear: `srgb_to_linear` (the sRGB EOTF, IEC 61966-2-1) decodes them, Rec.709
primaries and a D65 white, named for OCIO as `LINEAR_COLORSPACE` of `OCIO_CONFIG`;
`linear_to_srgb` encodes back. A frame rendered over a background becomes straight colour and
alpha with `unpremultiply`. What a frame hands off to compositing (depth files, alpha and
passes EXRs) holds BACKGROUND_Z where nothing is seen (`handoff_depth`) and alpha 1 where the
pixel is fully covered (`handoff_alpha`), where the renderer has 0 and up to 0.9999.

Every write is atomic (see `io.atomic`): an interrupted job never leaves a half-written frame.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_path, atomic_write
from splatfilm.io.photos import read_photo
from splatfilm.io.png import (PNG_COMPRESS_LEVEL, SRGB_INTENT, decode_png16, encode_png16, png_bit_depth, png_chunk,
                              png_with_chunk)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Floats [..., C] in [0,1] -> the uint8 [..., C] an 8-bit PNG stores: clipped to [0,1],
    times 255, rounded half up (0.5 / 255 is 1), in the input's float precision."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_uint16(image: np.ndarray) -> np.ndarray:
    """Floats [..., C] in [0,1] -> the uint16 [..., C] a 16-bit PNG stores: clipped to [0,1],
    times 65535, rounded half up."""
    return (np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def unpremultiply(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """The straight (not premultiplied) colour [H,W,3] of a frame: `rgb` [H,W,3] in [0,1] is
    the colour composited over `background` (RGB [3] in [0,1]; None: black) with coverage
    `alpha` [H,W,1] in [0,1]. The background is taken off and the rest divided by alpha; 0
    where alpha is at most 1e-6 (uncovered: a renderer drops contributions below 1/255, so
    what is left there is rounding)."""
    over = rgb if background is None else rgb - (1.0 - alpha) * np.asarray(background, dtype=np.float64)
    return np.where(alpha > 1e-6, over / np.maximum(alpha, 1e-6), 0.0)


def premultiplied_linear(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """The light [H,W,3] a frame's pixels hold, premultiplied: `rgb` [H,W,3] (sRGB-encoded,
    composited over `background` with coverage `alpha` [H,W,1], as the renderer makes it)
    with the background taken off (`unpremultiply`), decoded by the sRGB EOTF and multiplied
    by alpha again. Such light adds up: sub-frames average in it."""
    return srgb_to_linear(unpremultiply(rgb, alpha, background)) * alpha


def composite_encoded(light: np.ndarray, alpha: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """The inverse of `premultiplied_linear`: premultiplied linear `light` [H,W,3] with coverage
    `alpha` [H,W,1] as a frame's sRGB-encoded rgb [H,W,3], the straight colour encoded and laid
    over `background` (None: black) as the renderer lays its colour (in encoded values), so
    `unpremultiply` of the result gives the encoded straight colour back."""
    straight = linear_to_srgb(np.where(alpha > 1e-6, light / np.maximum(alpha, 1e-6), 0.0)) * alpha
    return straight if background is None else straight + (1.0 - alpha) * np.asarray(background, dtype=np.float64)


# What a depth file holds where nothing is seen: camera z in metres, "infinitely" far. Cycles
# writes 1e10 for its background; a finite value keeps Nuke's ZDefocus, depth merges and fog
# working (+inf turns their arithmetic to NaN), where the renderer's 0 would put the sky at the lens.
BACKGROUND_Z = 1e10

# Transmittance at or below which a frame's hand-off alpha is 1 (solid). The renderer stops a
# pixel before the Gaussian that would take it to 1e-4 (gsplat's rule), which leaves it anywhere
# up to ~1e-2 (measured on the demo film: 1.4e-4 typically, 99.9% of stopped pixels at most
# 1/255; the rest stay at 0.990-0.996); 1/255 is the smallest opacity it composites at all,
# and the 8-bit step: a solid EXR pixel is exactly one whose 8-bit alpha (the masters') is 255.
SOLID_TRANSMITTANCE = 1.0 / 255.0


def handoff_depth(depth: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The depth [H,W,1] (or [H,W]) a depth file or Z pass holds, float64: the renderer's
    expected camera z in metres (accumulated depth over accumulated alpha, gsplat's "ED", so a
    partly covered pixel holds the depth of what covers it), and BACKGROUND_Z where `alpha`
    (same shape) is 0, where the renderer's 0 means "nothing seen"."""
    return np.where(np.asarray(alpha) > 0.0, np.asarray(depth, dtype=np.float64), BACKGROUND_Z)


def handoff_alpha(alpha: np.ndarray) -> np.ndarray:
    """The alpha (same shape, float64) a frame hands off (alpha EXR, passes, masters): the
    renderer's accumulated alpha, and exactly 1 where the transmittance left, 1 - alpha, is at
    most SOLID_TRANSMITTANCE, so a fully covered pixel is a solid matte that lets nothing of a
    plate behind it through. The colour that goes with it is the straight colour
    (`unpremultiply` with the renderer's own alpha) times this alpha."""
    alpha = np.asarray(alpha, dtype=np.float64)
    return np.where(alpha >= 1.0 - SOLID_TRANSMITTANCE, 1.0, alpha)


def downscale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` [H,W,C] (uint8, or floats: 32-bit out) box-filtered to [height,width,C] as
    Pillow's BOX filter does it: each output pixel the mean of the input area it covers, so
    nothing aliases. The image itself when it already has that size."""
    from PIL import Image

    if image.shape[1] == width and image.shape[0] == height:
        return image
    if image.dtype == np.uint8:  # Pillow's L, LA, RGB and RGBA modes filter all channels at once
        one = image if image.shape[-1] != 1 else image[..., 0]
        return np.array(Image.fromarray(np.ascontiguousarray(one)).resize((width, height), Image.BOX)
                        ).reshape(height, width, -1)
    # Pillow holds floats in mode F, one channel to an image.
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c])).resize((width, height), Image.BOX))
                     for c in range(image.shape[-1])], axis=-1)


def downscale_display(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 display sRGB-encoded pixels [H,W,3] (or [H,W,4], straight alpha) box-filtered to
    [height,width,C] in linear light, as a picture is seen: each output pixel the sRGB encoding
    of the mean linear light of the area it covers (colour weighted by alpha where there is
    one), `to_uint8` rounded. Averaging the encoded values darkens fine detail (a black and
    white checkerboard gave 128, where its light is 0.5, 188 encoded). The image itself when
    it already has that size."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    values = image.astype(np.float64) / 255.0
    linear = srgb_to_linear(values[..., :3])
    if image.shape[-1] == 4:
        alpha = values[..., 3:]
        small = downscale(np.concatenate([linear * alpha, alpha], axis=-1).astype(np.float32), width, height)
        a = small[..., 3:].astype(np.float64)
        colour = np.where(a > 0, small[..., :3] / np.maximum(a, 1e-12), 0.0)
        return to_uint8(np.concatenate([linear_to_srgb(colour), a], axis=-1))
    return to_uint8(linear_to_srgb(downscale(linear.astype(np.float32), width, height).astype(np.float64)))


# The OCIO names of the two encodings (the ACES studio config's colour spaces; the built-in
# config URI works in OCIO >= 2.3 and Nuke 15).
OCIO_CONFIG = "ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3"
LINEAR_COLORSPACE = "Linear Rec.709 (sRGB)"
DISPLAY_COLORSPACE = "sRGB - Texture"
REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)  # R, G, B, white (x, y)
# The Color Interop Forum's name for scene-linear Rec.709 (OpenEXR >= 3.4 `colorInteropID`, as
# Blender and OpenImageIO write it): the same space as the chromaticities and the OCIO name.
LINEAR_INTEROP_ID = "lin_rec709_scene"


def srgb_to_linear(encoded: np.ndarray) -> np.ndarray:
    """The sRGB EOTF (IEC 61966-2-1): display sRGB-encoded values -> scene-linear (same shape,
    float64). Not clipped: values above 1 (HDR, a refiner's overshoot) follow the power segment,
    below 0 stay linear (mirrored), so a value is what `linear_to_srgb` encoded. Clip before
    where the values must be colours in [0,1] (glTF textures are 8-bit, so they are)."""
    v = np.asarray(encoded, dtype=np.float64)
    a = np.abs(v)
    lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return np.sign(v) * lin


def srgb_to_linear_slope(encoded: np.ndarray) -> np.ndarray:
    """d(srgb_to_linear)/d(encoded), elementwise (same shape, float64): the EOTF's local slope,
    1/12.92 on its linear toe, extended beyond [0,1] as `srgb_to_linear` is (even in the sign).
    A change of an encoded value by a small delta changes the linear value by slope * delta."""
    a = np.abs(np.asarray(encoded, dtype=np.float64))
    return np.where(a <= 0.04045, 1 / 12.92, 2.4 / 1.055 * ((a + 0.055) / 1.055) ** 1.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """The sRGB encoding, the inverse of `srgb_to_linear`: scene-linear -> display sRGB-encoded
    (same shape, float64), extended the same way beyond [0,1] (not clipped)."""
    v = np.asarray(linear, dtype=np.float64)
    a = np.abs(v)
    enc = np.where(a <= 0.0031308, a * 12.92, 1.055 * a ** (1 / 2.4) - 0.055)
    return np.sign(v) * enc


PNG_BITS = (8, 16)


def write_png(path: str | os.PathLike, rgb: np.ndarray, alpha: np.ndarray | None = None,
              provenance: dict | None = None, pixel_aspect: float = 1.0, bits: int = 8) -> None:
    """Save a PNG atomically, 8 or 16 bits a channel (`bits`), with an sRGB chunk (the values
    are display sRGB-encoded, so viewers and compositing packages need not guess).

    rgb [H,W,3] floats in [0,1] (`to_uint8` or `to_uint16` rounds them), or uint8 / uint16
    [H,W,3|4] pixels stored as they are (their dtype says the depth). With `alpha` [H,W,1]
    (float rgb only) the PNG is RGBA with straight (not premultiplied) colour
    (`unpremultiply`), so `rgb` must be the colour composited over black, which is what a
    render without background returns. provenance: a record (io.provenance) to carry, sealed
    with the pixels' hash. pixel_aspect: each pixel's width / height (an anamorphic lens's
    squeeze), said in a pHYs chunk (`png_with_pixel_aspect`) unless 1.
    """
    import imageio.v3 as iio

    if bits not in PNG_BITS:
        raise ValueError(f"write_png: bits must be 8 or 16, got {bits}")
    if rgb.dtype in (np.uint8, np.uint16):
        if alpha is not None:
            raise ValueError("write_png: alpha goes with float colour; integer pixels carry their own")
        pixels = rgb
    else:
        quantise = to_uint16 if bits == 16 else to_uint8
        if alpha is not None:
            a = alpha.astype(np.float64)
            pixels = quantise(np.concatenate([unpremultiply(rgb, a), a], axis=-1))
        else:
            pixels = quantise(rgb)
    if provenance is not None:
        from splatfilm.io.provenance import png_with_provenance

        data = png_with_provenance(pixels, provenance)  # with its sRGB chunk
    elif pixels.dtype == np.uint16:
        data = encode_png16(pixels, [png_chunk(b"sRGB", SRGB_INTENT)])
    else:
        data = png_with_chunk(iio.imwrite("<bytes>", pixels, extension=".png", compress_level=PNG_COMPRESS_LEVEL),
                              png_chunk(b"sRGB", SRGB_INTENT))
    atomic_write(path, [png_with_pixel_aspect(data, pixel_aspect)])


def png_with_pixel_aspect(png: bytes, pixel_aspect: float) -> bytes:
    """PNG bytes with a pHYs chunk of unit 0 (the PNG spec: an aspect ratio only) saying that
    each pixel is `pixel_aspect` times as wide as it is high; `png` itself when it is 1.

    pHYs holds pixels per unit along x and y, so wide pixels are fewer per unit across:
    (x, y) = (q, p) for pixel_aspect p / q (2 -> (1, 2); 1.33 -> (100, 133)), as players and
    Pillow's `info["aspect"]` read it. Pillow's own `dpi=` writes unit 1 (per inch), which
    says a print size, not this."""
    if pixel_aspect == 1:
        return png
    ratio = Fraction(pixel_aspect).limit_denominator(10000)
    return png_with_chunk(png, png_chunk(b"pHYs", struct.pack(">IIB", ratio.denominator, ratio.numerator, 0)))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A rendered frame's (or any image file's) pixels as stored, uint8 [H,W,3], or [H,W,4] when it
    carries alpha; 16-bit values reduced to 8. Decoded as a capture's photos are
    (`io.photos.read_photo`: one decoder, so a frame reads as a photo of the same bytes would).
    Raises SplatfilmError naming the file when it does not decode."""
    return read_photo(path)


def read_image_values(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A rendered frame's values float64 [H,W,3], or [H,W,4] with alpha, in [0,1] at the depth
    its PNG stores, and that depth (8 or 16): a 16-bit RGB or RGBA PNG (`write_png`'s
    bits=16) read whole (`io.png.decode_png16`), where `read_image` reduces it to 8 bits;
    any other file as `read_image` reads it. Raises SplatfilmError naming the file when it
    does not decode."""
    try:
        with open(path, "rb") as f:
            head = f.read(29)  # signature and IHDR: bit depth, colour type (RGB 2, RGBA 6), interlace
            if len(head) == 29 and png_bit_depth(head) == 16 and head[25] in (2, 6) and head[28] == 0:
                return decode_png16(head + f.read()) / 65535.0, 16
    except (OSError, ValueError, zlib.error):  # missing, unreadable or broken: read_image says which
        pass
    return read_image(path) / 255.0, 8


def read_exr_provenance(path: str | os.PathLike) -> tuple[str | None, str]:
    """(the sealed record's text an EXR carries in its header, None when it carries none; the
    hash of its channels now, as `write_depth` and the frame writers seal it)."""
    from splatfilm.io.digest import array_digest
    from splatfilm.io.provenance import KEY

    channels, header = read_exr_layers(path)
    text = header.get(KEY)
    return (text if isinstance(text, str) else None), array_digest(channels)


def write_depth(path: str | os.PathLike, depth: np.ndarray, channel: str = "Z", provenance: dict | None = None,
                attributes: dict | None = None, fmt: ExrFormat | None = None) -> None:
    """Save depth [H,W] or [H,W,1] (or any one-channel float image, e.g. alpha with channel
    "A") as 32-bit float, atomically: `.exr` (one channel, named Z for depth as Nuke and
    Blender read it; ZIP compression, unless `fmt` says half or another compression, as for
    the passes EXR: `ExrFormat`, under which Z stays 32-bit) or `.npy`. provenance: a record
    (io.provenance) an EXR carries in its header, sealed with the channel's hash (as stored);
    a .npy has nowhere to keep one. attributes: more header entries for an EXR
    (`exr_frame_header`)."""
    path = Path(path)
    depth = np.ascontiguousarray(np.asarray(depth, dtype=np.float32).reshape(depth.shape[0], depth.shape[1]))
    if path.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, depth)
        atomic_write(path, [buf.getvalue()])
    elif path.suffix == ".exr":
        import OpenEXR

        fmt = fmt or ExrFormat()
        depth = np.ascontiguousarray(depth.astype(fmt.pixel_type(channel), copy=False))
        header = {"compression": fmt.openexr_compression(), "type": OpenEXR.scanlineimage, **(attributes or {})}
        if provenance is not None:
            from splatfilm.io.digest import array_digest
            from splatfilm.io.provenance import KEY, seal

            header[KEY] = seal(provenance, array_digest({channel: depth}))
        _write_exr(path, header, {channel: depth})
    else:
        raise SplatfilmError(f"{path}: depth is written as .exr or .npy, not {path.suffix!r}")


# OpenEXR's compressions a passes EXR may be written with (`ExrFormat`): lossless but for
# pxr24 (floats to 24 bits) and dwaa / dwab (lossy DCT on colour, as Nuke writes them).
EXR_COMPRESSIONS = ("zip", "zips", "piz", "rle", "none", "pxr24", "dwaa", "dwab")


@dataclass(frozen=True)
class ExrFormat:
    """How a multi-layer EXR stores its channels: `half` 16-bit floats for every channel but
    depth (Z stays 32-bit: half holds 2 m to 1 mm but 2000 m to 1 m, and the far value
    BACKGROUND_Z not at all), else all 32-bit float; `compression` one of EXR_COMPRESSIONS.
    The default is what splatfilm always wrote: 32-bit float, ZIP (16 scanlines a block)."""

    half: bool = False
    compression: str = "zip"

    def __post_init__(self) -> None:
        if self.compression not in EXR_COMPRESSIONS:
            raise SplatfilmError(f"EXR compression {self.compression!r}: choose from {', '.join(EXR_COMPRESSIONS)}")

    def pixel_type(self, channel: str) -> type:
        """The numpy dtype `channel` is stored as."""
        return np.float16 if self.half and channel != "Z" else np.float32

    def openexr_compression(self) -> Any:
        import OpenEXR

        return getattr(OpenEXR, f"{self.compression.upper()}_COMPRESSION"
                       if self.compression != "none" else "NO_COMPRESSION")


def write_exr_layers(path: str | os.PathLike, channels: dict[str, np.ndarray], provenance: dict | None = None,
                     attributes: dict | None = None, fmt: ExrFormat = ExrFormat()) -> None:
    """Save a multi-layer EXR atomically (scanline; 32-bit float, ZIP, unless `fmt` says half
    channels or another compression: `ExrFormat`): channels maps OpenEXR channel names ("R",
    "Z", "forward.u", "matte_hero.A") to [H,W] images. The header says
    the data is scene-linear Rec.709 (chromaticities, colorInteropID, and the OCIO colour
    space and config as "colorSpace" / "oiio:ColorSpace" and "ocioConfig"), plus any
    `attributes` (str values, or `exr_frame_header`'s); provenance: a record (io.provenance)
    to carry, sealed with the channels' hash (as stored: half channels hashed as half)."""
    import OpenEXR

    path = Path(path)
    data = {name: np.ascontiguousarray(np.asarray(c, dtype=fmt.pixel_type(name))) for name, c in channels.items()}
    header = {"compression": fmt.openexr_compression(), "type": OpenEXR.scanlineimage,
              "chromaticities": REC709_CHROMATICITIES, "colorInteropID": LINEAR_INTEROP_ID,
              "colorSpace": LINEAR_COLORSPACE, "oiio:ColorSpace": LINEAR_COLORSPACE, "ocioConfig": OCIO_CONFIG,
              **(attributes or {})}
    if provenance is not None:
        from splatfilm.io.digest import array_digest
        from splatfilm.io.provenance import KEY, seal

        header[KEY] = seal(provenance, array_digest(data))
    _write_exr(path, header, data)


# OpenEXR's camera space (its standard attributes' docs, as RenderMan's): x right, y up, looking
# along +z (left-handed). splatfilm's is OpenCV's, y down: the two differ in y alone.
_OPENCV_TO_EXR_CAMERA = np.diag([1.0, -1.0, 1.0, 1.0])


def exr_world_to_camera(viewmat: np.ndarray) -> np.ndarray:
    """OpenEXR's `worldToCamera` [4,4] float32 of a world-to-camera `viewmat` [4,4] (OpenCV
    axes, column vectors, metres): world to OpenEXR's camera space (x right, y up, +z the
    viewing direction, so a point in front has z > 0), laid out as Imath's row-vector matrix
    (p_cam = [x y z 1] @ M: the translation is the last row)."""
    # C order: the OpenEXR binding writes a matrix's buffer as it lies, whatever its strides.
    return np.ascontiguousarray((_OPENCV_TO_EXR_CAMERA @ np.asarray(viewmat, dtype=np.float64)).T, dtype=np.float32)


def exr_world_to_ndc(viewmat: np.ndarray, K: np.ndarray, width: int, height: int, near: float,
                     far: float) -> np.ndarray:
    """OpenEXR's `worldToNDC` [4,4] float32 of a pinhole camera (`viewmat` [4,4] world-to-camera
    in OpenCV axes, `K` [3,3] in pixels, the image `width` x `height` pixels, clipping `near` <
    `far` metres). [x y z 1] @ M, divided by its w (the camera z), is the point's NDC: x right
    and y down, (0, 0) the display window's top-left corner and (1, 1) its bottom-right (pixel
    u / width, v / height); z is 0 at `near` and 1 at `far`, as RenderMan's NDC. A lens's
    distortion is left out."""
    K = np.asarray(K, dtype=np.float64)
    ndc = np.zeros((4, 4))
    ndc[0, :3] = K[0] / width  # (fx x + s y + cx z) / (width z)
    ndc[1, :3] = K[1] / height
    ndc[2, 2:] = far / (far - near), -far * near / (far - near)
    ndc[3, 2] = 1.0  # w = camera z
    return np.ascontiguousarray((ndc @ np.asarray(viewmat, dtype=np.float64)).T, dtype=np.float32)


def exr_frame_header(timecode: tuple[int, int, int, int, bool], fps: Fraction | int, viewmat: np.ndarray | None = None,
                     K: np.ndarray | None = None, size: tuple[int, int] | None = None,
                     clip: tuple[float, float] | None = None, pixel_aspect: float = 1.0) -> dict:
    """OpenEXR's standard attributes of a film frame, for `write_exr_layers` / `write_depth`:
    `timeCode` from `timecode` (hours, minutes, seconds, frames, drop_frame, as
    shots.timing.timecode_fields counts it at `fps`; above 30 fps SMPTE 12-1 counts frame
    pairs, the second of a pair flagged by the field phase bit), `framesPerSecond` (`fps`, an
    exact fraction, as a rational), and with `viewmat` [4,4] (OpenCV world-to-camera)
    `worldToCamera`, and with `K` [3,3], `size` (width, height) and `clip` (near, far, metres)
    too `worldToNDC` (`exr_world_to_camera`, `exr_world_to_ndc`). `pixel_aspect`: the width /
    height of a pixel as shown (an anamorphic lens's squeeze), OpenEXR's `pixelAspectRatio`,
    authored only when not 1 (the library's default, so square-pixel headers stay as they were)."""
    import OpenEXR

    hours, minutes, seconds, frames, drop = timecode
    fps = Fraction(fps)
    tc = OpenEXR.TimeCode()
    tc.hours, tc.minutes, tc.seconds, tc.dropFrame = int(hours), int(minutes), int(seconds), bool(drop)
    if fps > 30:  # OpenEXR's (SMPTE's) frame field holds 0-29
        tc.frame, tc.fieldPhase = int(frames) // 2, bool(int(frames) % 2)
    else:
        tc.frame = int(frames)
    header = {"timeCode": tc, "framesPerSecond": fps}
    if pixel_aspect != 1:
        header["pixelAspectRatio"] = float(pixel_aspect)
    if viewmat is not None:
        header["worldToCamera"] = exr_world_to_camera(viewmat)
        if K is not None and size is not None and clip is not None:
            header["worldToNDC"] = exr_world_to_ndc(viewmat, K, size[0], size[1], clip[0], clip[1])
    return header


def _write_exr(path: Path, header: dict, data: dict[str, np.ndarray]) -> None:
    """Write an EXR atomically (a temporary file renamed into place)."""
    import OpenEXR

    # OpenEXR takes a path only as UTF-8 text: through a stream, a folder whose name is not
    # UTF-8 (held as surrogate escapes) is written as any other.
    buffer = io.BytesIO()
    with OpenEXR.File(header, data) as f:
        f.write(buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def read_exr_layers(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """The channels (name -> [H,W] float32, or float16 where written half) and header of an EXR
    `write_exr_layers` wrote."""
    import OpenEXR

    try:
        with open(path, "rb") as stream, OpenEXR.File(stream, separate_channels=True) as f:  # as _write_exr
            header = dict(f.header())
            channels = {name: np.asarray(c.pixels) for name, c in f.channels().items()}
    except Exception as e:  # OpenEXR raises plain Exceptions for unreadable files
        raise SplatfilmError(f"{path}: not a readable OpenEXR file ({str(e).splitlines()[0] if str(e) else e})") from None
    return channels, header


def read_depth(path: str | os.PathLike, channel: str = "Z") -> np.ndarray:
    """Read a one-channel map [H,W] float32 written by `write_depth`."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    import OpenEXR

    with open(path, "rb") as stream, OpenEXR.File(stream) as f:  # a stream, as _write_exr
        return np.asarray(f.channels()[channel].pixels, dtype=np.float32)
