"""A capture's photos: finding them (`list_images`, `photo_folder`; `unread_photos_note` names
the camera formats left out), their EXIF orientation (`photo_orientation`, and `write_upright` for
an upright copy SfM reads), and their pixels (`read_photo`, converted to sRGB from an embedded ICC
profile, which `read_photo_profiled` names too). Rendered frames are written, and read back, by
`io.images` (its `read_image` decodes with `read_photo`: one decoder for every image file
splatfilm reads).
"""

from __future__ import annotations

import io
import os
import struct
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_path


# Image formats a capture's camera file may name (read_photo reads them with Pillow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
# Bare photos go through COLMAP's SfM, which reads these (pycolmap 4.2 fails on WebP).
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# Camera formats not read as bare photos: iPhones' HEIC, camera raw, and WebP (COLMAP). Named
# when found, so a folder of them is not just "no images", nor a mixed folder silently fitted
# from its JPEGs alone.
UNREAD_PHOTO_SUFFIXES = (".heic", ".heif", ".avif", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2",
                         ".webp")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The bare photos directly in `folder` (PHOTO_SUFFIXES, any case), sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise SplatfilmError(f"{d}: not a folder of images")
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)


def photo_folder(folder: str | os.PathLike) -> Path:
    """Where a capture folder's bare photos are: the folder itself when it holds any, else its
    images/ subfolder when there is one (the layout of COLMAP and nerfstudio datasets)."""
    d = Path(folder)
    if list_images(d) or not (d / "images").is_dir():
        return d
    return d / "images"


def unread_photos_note(folder: str | os.PathLike) -> str:
    """'' or a note naming the photos in `folder` that are left out: '3 photos in .heic are not
    read here; convert them to JPEG or PNG to use them'."""
    d = Path(folder)
    counts = Counter(p.suffix.lower() for p in (d.iterdir() if d.is_dir() else ())
                     if p.is_file() and p.suffix.lower() in UNREAD_PHOTO_SUFFIXES)
    if not counts:
        return ""
    n = sum(counts.values())
    photos, are, them = ("photos", "are", "them") if n > 1 else ("photo", "is", "it")
    return f"{n} {photos} in {', '.join(sorted(counts))} {are} not read here; convert {them} to JPEG or PNG to use {them}"


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """An image file's pixels as stored (a photo, a mask, a rendered frame PNG), uint8 [H,W,3],
    or [H,W,4] when it carries alpha: `read_photo_profiled`'s pixels."""
    return read_photo_profiled(path)[0]


def read_photo_profiled(path: str | os.PathLike) -> tuple[np.ndarray, str | None]:
    """(an image file's pixels as stored, uint8 [H,W,3] or [H,W,4] when it carries alpha; the
    name (ICC description) of the colour profile they were converted to sRGB from, "Display
    P3", None when they were not), the file opened once.

    Greyscale, palette, CMYK (print-ready JPEGs), YCbCr and LAB images come as RGB; 16-bit
    values are reduced to 8. An RGB or RGBA photo carrying an ICC profile other than sRGB (a
    phone's Display P3, Adobe RGB) is converted to sRGB with Pillow's ImageCms (relative
    colorimetric), since everything downstream takes the values as sRGB; the profile of a file
    stored otherwise (CMYK, grey, palette) is not applied, nor named. The EXIF orientation is
    not applied: camera files (COLMAP's, nerfstudio's) describe the stored pixels, as COLMAP
    and nerfstudio read them (SfM of bare photos reads upright copies of turned ones instead:
    `fit.sfm`). Raises SplatfilmError naming the file when it does not decode."""
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise SplatfilmError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16L", "I;16B", "I"):  # 16-bit grey (PNG, TIFF): 0..65535
                grey = np.asarray(im).astype(np.int64)
                return np.repeat((np.clip(grey, 0, 65535) // 257).astype(np.uint8)[..., None], 3, axis=-1), None
            if mode == "F":
                raise SplatfilmError(f"{path}: floating-point pixels are not a photo (expected 8 or 16 bit)")
            has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info)
            if mode not in ("RGB", "RGBA"):
                im = im.convert("RGBA" if has_alpha else "RGB")
            profile = _profile_name(im.info.get("icc_profile")) if mode in ("RGB", "RGBA") else None
            if profile:
                im = _to_srgb(im)
            return np.asarray(im).copy(), profile
    except SplatfilmError:
        raise
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ... for undecodable files
        first = str(e).splitlines()[0][:120] if str(e) else ""
        raise SplatfilmError(f"{path}: cannot read image ({type(e).__name__}{': ' + first if first else ''})") from None


def _profile_name(icc: bytes | None) -> str | None:
    """The description of an ICC profile that is not sRGB; None for none, sRGB or unreadable."""
    if not icc:
        return None
    from PIL import ImageCms

    try:
        name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except (OSError, ImageCms.PyCMSError):
        return None
    return None if "srgb" in name.lower().replace(" ", "") else (name or "unnamed")


def _to_srgb(im: Any) -> Any:
    """A PIL RGB / RGBA image in its embedded profile converted to sRGB (itself if it cannot be)."""
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"),
                                         renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode=im.mode)
    except (OSError, ImageCms.PyCMSError):
        return im


# EXIF orientations (tag 0x0112) that store the picture turned a quarter: width and height swap.
QUARTER_TURNS = (5, 6, 7, 8)


def photo_orientation(path: str | os.PathLike) -> int:
    """A photo's EXIF orientation (1: stored upright, 2-8: stored mirrored and/or turned, as
    phones store portrait photos); 1 without EXIF or when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return exif_orientation(im.getexif())
    except Exception:  # no image, or a broken EXIF block: the decode step names real problems
        return 1


def exif_orientation(exif: Mapping[int, Any]) -> int:
    """The orientation (1-8) a PIL Exif block holds; 1 for none or a value out of range."""
    value = exif.get(0x0112, 1)
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def write_upright(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Write `source` turned upright by its EXIF orientation to `target` (atomically), in its
    own format (JPEG at quality 95 without chroma subsampling), keeping its other EXIF tags and
    colour profile. Raises SplatfilmError naming `source` when it cannot be read or turned,
    naming `target` when it cannot be written."""
    from PIL import Image, ImageOps

    try:
        with Image.open(source) as im:
            fmt, icc = im.format, im.info.get("icc_profile")
            upright = ImageOps.exif_transpose(im)
            exif = upright.getexif()
            exif[0x0112] = 1
            options = {"exif": exif.tobytes()}
    except (OSError, ValueError, SyntaxError, struct.error) as e:  # Pillow's errors for bad files and EXIF
        raise SplatfilmError(f"{source}: cannot write an upright copy ({type(e).__name__}: {e})") from None
    if icc:
        options["icc_profile"] = icc
    if fmt in ("JPEG", "MPO"):  # MPO: a JPEG with a second picture (phones' depth or gain maps)
        fmt = "JPEG"
        options.update(quality=95, subsampling=0)
    try:
        with atomic_path(target) as tmp:  # its OSErrors name the target
            upright.save(tmp, format=fmt, **options)
    except SplatfilmError:
        raise
    except (ValueError, SyntaxError, struct.error) as e:  # Pillow refusing what it would write (EXIF too long)
        raise SplatfilmError(f"{target}: cannot write an upright copy ({type(e).__name__}: {e})") from None
