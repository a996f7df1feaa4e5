"""PlayCanvas SOG files (`.sog`, "spatially ordered Gaussians", what SuperSplat and
splat-transform write): a zip of lossless WebP images and a `meta.json`. Reading only. (An
unzipped one, its `meta.json` beside the images, is read once zipped: an asset's sidecar is
its name with `.json`, which would be that meta.json itself.)

Each Gaussian owns one pixel (row-major, in the file's order) of every image:
    means_l, means_u  16-bit position per axis (low, high byte) in [mins, maxs] of
                      sign(x) * log(1 + |x|) (more precision near the origin)
    quats             the three smallest components of the unit quaternion (w, x, y, z) times
                      sqrt(2), as byte / 255 * 2 - 1, and in alpha 252 + the largest's index
                      (taken positive, from the unit length)
    scales            log scales per axis: version 2 a byte into a 256-entry codebook, version
                      1 a byte between per-axis mins and maxs
    sh0               DC colour per channel as scales are; alpha: version 2 sigmoid(opacity)
                      as byte / 255, version 1 the opacity logit between mins[3] and maxs[3]
    shN_labels        (optional) a 16-bit palette index (red low, green high) into
    shN_centroids     a palette of 64 entries per row, each as many pixels as the higher
                      bands' coefficients (3, 8, 15), a coefficient's RGB per pixel: version 2
                      bytes into a codebook, version 1 between one scalar min and max
Positions, rotations and the SH layout are the INRIA PLY's (splat-transform converts a PLY's
columns without a change of axes).
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from splatfilm.errors import SplatfilmError
from splatfilm.io.inputs import read_input, trailing_bytes_note
from splatfilm.scene.gaussians import Gaussians

__all__ = ["read_sog"]

# Coefficients per colour channel of the higher SH bands, by degree.
_REST_COEFFS = (0, 3, 8, 15)
# Palette entries per row of the centroids image.
_PALETTE_ROW = 64
# Alpha bytes of 0 and 255 clipped this far inside (0, 1): a finite opacity logit, +-13.8 (as
# splat-transform's reader clips them).
_ALPHA_EPS = 1e-6


def read_sog(path: str | os.PathLike, notes: list[str] | None = None) -> Gaussians:
    """Read a `.sog` file, version 1 or 2, into float32 `Gaussians` (raw parameters, SH degree
    from its `shN`, 0 without one). notes: a list the one-line notes for the reader are
    appended to (bytes after the zip archive's end)."""
    path = Path(path)
    data = read_input(path, ".sog file")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise SplatfilmError(f"{path}: not a SOG file (a .sog is a zip archive; this is not one)") from None
    left = _after_archive(data)
    if notes is not None and left:
        notes.append(trailing_bytes_note(path, left, "the zip archive's end record"))
    names = {Path(n).name: n for n in archive.namelist()}

    def load(name: str) -> bytes:
        if name not in names:
            raise SplatfilmError(f"{path}: the SOG archive has no {name}")
        try:
            return archive.read(names[name])
        except (zipfile.BadZipFile, OSError, EOFError) as e:  # a truncated or corrupt archive
            raise SplatfilmError(f"{path}: its {name} cannot be read from the archive ({e})") from None
    try:
        meta = json.loads(load("meta.json"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SplatfilmError(f"{path}: its meta.json is not JSON ({e})") from None
    try:
        return _decode(meta, load, path)
    except SplatfilmError:
        raise
    except (KeyError, TypeError, IndexError, ValueError) as e:
        raise SplatfilmError(f"{path}: its meta.json lacks or misstates a field ({type(e).__name__}: {e})") from None


def _after_archive(data: bytes) -> int:
    """The count of bytes after a zip archive's end-of-central-directory record and its
    comment (zipfile finds the record within padding after it, and says nothing of it)."""
    end = data.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(data):
        return 0
    comment = int.from_bytes(data[end + 20:end + 22], "little")
    return max(0, len(data) - (end + 22 + comment))


def _decode(meta: dict[str, Any], load: Callable[[str], bytes], path: Path) -> Gaussians:
    if not isinstance(meta, dict):
        raise SplatfilmError(f"{path}: its meta.json is not an object")
    version = meta.get("version", 1)
    if version not in (1, 2):
        raise SplatfilmError(f"{path}: SOG version {version} is not read (versions 1 and 2 are)")
    count = int(meta["count"] if version == 2 else meta["means"]["shape"][0])
    if count < 0:
        raise SplatfilmError(f"{path}: a negative Gaussian count ({count})")

    def pixels(name: str) -> np.ndarray:
        """The first `count` RGBA pixels [count, 4] uint8 of an image, row-major."""
        try:
            with Image.open(io.BytesIO(load(name))) as image:
                rgba = np.asarray(image.convert("RGBA"), np.uint8).reshape(-1, 4)
        except (UnidentifiedImageError, OSError) as e:
            raise SplatfilmError(f"{path}: its {name} is not a readable image ({e})") from None
        if len(rgba) < count:
            raise SplatfilmError(f"{path}: its {name} has {len(rgba)} pixels for {count} Gaussians")
        return rgba[:count]

    lo, hi = (pixels(name).astype(np.uint32) for name in meta["means"]["files"][:2])
    packed = (lo[:, :3] | (hi[:, :3] << 8)).astype(np.float64) / 65535.0
    mins, maxs = (np.asarray(meta["means"][k], np.float64) for k in ("mins", "maxs"))
    logged = mins + (maxs - mins) * packed
    means = np.sign(logged) * np.expm1(np.abs(logged))

    quats = _unpack_quats(pixels(meta["quats"]["files"][0]))

    if version == 2:
        def lookup(section: str, values: np.ndarray) -> np.ndarray:
            codebook = np.asarray(meta[section]["codebook"], np.float32)
            if len(codebook) != 256:
                raise SplatfilmError(f"{path}: its {section} codebook has {len(codebook)} entries, not 256")
            return codebook[values]
    else:
        def lookup(section: str, values: np.ndarray) -> np.ndarray:
            lo_, hi_ = (np.asarray(meta[section][k], np.float64) for k in ("mins", "maxs"))
            if lo_.ndim:  # per channel: as many as the values' last axis
                lo_, hi_ = lo_[:values.shape[-1]], hi_[:values.shape[-1]]
            return (lo_ + (hi_ - lo_) * (values / 255.0)).astype(np.float32)

    scales = lookup("scales", pixels(meta["scales"]["files"][0])[:, :3])
    sh0_pixels = pixels(meta["sh0"]["files"][0])
    sh0 = lookup("sh0", sh0_pixels[:, :3])
    if version == 2:
        alpha = np.clip(sh0_pixels[:, 3] / 255.0, _ALPHA_EPS, 1.0 - _ALPHA_EPS)
        opacities = np.log(alpha / (1.0 - alpha))
    else:
        lo_, hi_ = meta["sh0"]["mins"][3], meta["sh0"]["maxs"][3]
        opacities = lo_ + (hi_ - lo_) * (sh0_pixels[:, 3] / 255.0)

    shN = np.zeros((count, 0, 3), np.float32)
    if meta.get("shN"):
        shN = _rest_bands(meta, version, lookup, pixels, load, count, path)
    return Gaussians(
        means=torch.from_numpy(means.astype(np.float32)),
        quats=torch.from_numpy(quats),
        scales=torch.from_numpy(np.ascontiguousarray(scales, np.float32)),
        opacities=torch.from_numpy(np.asarray(opacities, np.float32)),
        sh0=torch.from_numpy(np.ascontiguousarray(sh0, np.float32)[:, None, :]),
        shN=torch.from_numpy(shN),
    )


def _unpack_quats(rgba: np.ndarray) -> np.ndarray:
    """Unit quaternions [N,4] (w, x, y, z) float32 from smallest-three pixels [N,4] uint8; a
    pixel whose alpha is no index (below 252) reads as the identity, as splat-transform's."""
    n = len(rgba)
    largest = rgba[:, 3].astype(np.int64) - 252
    small = (rgba[:, :3].astype(np.float64) / 255.0 * 2.0 - 1.0) / math.sqrt(2.0)
    quats = np.zeros((n, 4), np.float64)
    valid = (largest >= 0) & (largest <= 3)
    # The three smaller components fill the slots other than the largest's, in order.
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[np.clip(largest, 0, 3)]
    rows = np.arange(n)[:, None]
    quats[rows, others] = small
    quats[np.arange(n), np.clip(largest, 0, 3)] = np.sqrt(np.clip(1.0 - (small * small).sum(1), 0.0, None))
    quats[~valid] = (1.0, 0.0, 0.0, 0.0)
    return quats.astype(np.float32)


def _rest_bands(meta, version, lookup, pixels, load, count, path) -> np.ndarray:
    """The higher SH bands [N, K, 3] float32 from the palette (`shN_centroids`) and labels."""
    section = meta["shN"]
    centroids_name, labels_name = section["files"][:2]
    try:
        with Image.open(io.BytesIO(load(centroids_name))) as image:
            palette = np.asarray(image.convert("RGBA"), np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise SplatfilmError(f"{path}: its {centroids_name} is not a readable image ({e})") from None
    width = palette.shape[1]
    if version == 2:
        coeffs = _REST_COEFFS[int(section["bands"])] if 0 <= int(section["bands"]) <= 3 else -1
        entries = int(section["count"])
    else:  # the band count is in the palette's width
        coeffs = width // _PALETTE_ROW if width in (_PALETTE_ROW * k for k in _REST_COEFFS[1:]) else -1
        entries = (width // max(coeffs, 1)) * palette.shape[0]
    if coeffs <= 0 or width != _PALETTE_ROW * coeffs:
        raise SplatfilmError(f"{path}: its {centroids_name} is {width} pixels wide; a palette of SH bands is "
                             f"64 entries of 3, 8 or 15 pixels")
    # Entry e's coefficient j lies at row e // 64, column (e % 64) * coeffs + j.
    table = palette[..., :3].reshape(palette.shape[0], _PALETTE_ROW, coeffs, 3).reshape(-1, coeffs, 3)
    labels = pixels(labels_name).astype(np.int64)
    label = labels[:, 0] | (labels[:, 1] << 8)
    bad = int((label >= min(entries, len(table))).sum())
    if bad:
        raise SplatfilmError(f"{path}: {bad} Gaussians' SH palette labels lie past its {entries} entries")
    if version == 2:
        return lookup("shN", table[label])
    low, high = float(section["mins"]), float(section["maxs"])
    return (low + (high - low) * (table[label] / 255.0)).astype(np.float32)
