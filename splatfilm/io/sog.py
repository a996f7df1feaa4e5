"""PlayCanvas SOG files (`.sog`, "spatially ordered Gaussians", what SuperSplat and
splat-transform write): a zip of lossless WebP images and a `meta.json`. Versions 1 and 2 are
read, version 2 written (`write_sog`). (An unzipped one, its `meta.json` beside the images, is
read once zipped: an asset's sidecar is its name with `.json`, which would be that meta.json
itself.)

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
from splatfilm.io.atomic import atomic_write
from splatfilm.io.inputs import read_input, trailing_bytes_note
from splatfilm.io.ply import smallest_three
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import MAX_SH_DEGREE
from splatfilm.version import __version__

__all__ = ["SOG_MAX_SH_DEGREE", "read_sog", "write_sog"]

# SH bands a SOG holds (its palette's entries are 3, 8 or 15 coefficients).
SOG_MAX_SH_DEGREE = 3

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


# ---- writing (version 2) -----------------------------------------------------------------------

# Lloyd iterations of the codebooks and the SH palette: fixed, so a file is a function of its
# Gaussians (splat-transform's default for the palette is 10 too).
_ITERATIONS = 10
# The SH palette's k-means starts from Gaussians picked by a generator of this seed.
_SEED = 0
# Entries of the largest SH palette: the labels are 16-bit.
_MAX_PALETTE = 65536
# The palette is fitted on at most this many rows per entry (a seeded pick of the Gaussians).
_SAMPLE_PER_ENTRY = 2
# Nearest-centre search: a kd-tree up to this many dimensions (SH degree 1: 9), where it is
# exact and fast; above, matmuls, over every pair up to this many (points x centres)...
_KD_TREE_DIMS = 9
_BRUTE_PAIRS = 1 << 26
# ...else over the centres of each point's this many nearest groups, the groups' k-means
# taking this many rounds.
_PROBES = 8
_GROUP_ITERATIONS = 4
# Distances computed at a time (float32): 64 MB.
_CHUNK_FLOATS = 1 << 24
# Every member of the archive carries this time (the zip format's earliest), so the bytes do
# not depend on when a file was written.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_sog(path: str | os.PathLike, g: Gaussians, sh_degree: int | None = None) -> None:
    """Write `g` as a PlayCanvas SOG version 2 file, atomically (what SuperSplat publishes and
    its viewer and splat-transform read). Lossy: each Gaussian keeps its row (the file's order
    is `g`'s, so a rig's weights still match) and
      positions   16 bits per axis of sign(x) log(1 + |x|) over the Gaussians' range, rounded
      rotations   smallest-three, 8 bits per component (`io.ply.smallest_three`)
      log scales  a byte into a 256-entry codebook shared by the three axes (1D k-means)
      DC colour   the same, its own codebook
      opacity     sigmoid(opacity) to 1/255, rounded
      SH 1-3      a palette of up to 65,536 entries (the largest power of two not above N, as
                  splat-transform sizes it), k-means from a seeded pick, fitted on at most two
                  Gaussians per entry (a seeded pick: a 1M-Gaussian scene costs what 131,072
                  do), each coefficient a byte into a 256-entry codebook; each Gaussian its
                  nearest entry's index (at SH degree 2-3 with many Gaussians, searched among
                  the entries near it: now and then one nearly as near).
    Images are lossless WebP keeping the colour of transparent pixels (an opacity of 0 still
    has its colour); the same Gaussians give the same bytes. `sh_degree` truncates or zero-pads
    the SH bands (default: `g`'s); bands above 3, which the format has no place for, are dropped.
    Non-finite values are refused (SplatfilmError)."""
    path = Path(path)
    degree = g.sh_degree if sh_degree is None else sh_degree
    if not (isinstance(degree, int) and 0 <= degree <= MAX_SH_DEGREE):
        raise SplatfilmError(f"{path}: sh_degree must be an integer 0-{MAX_SH_DEGREE}, got {sh_degree!r}")
    g = g.with_sh_degree(min(degree, SOG_MAX_SH_DEGREE)).detach().to(device="cpu", dtype=torch.float32)
    n = len(g)
    fields = {"means": g.means, "quats": g.quats, "scales": g.scales, "opacities": g.opacities, "sh0": g.sh0,
              "shN": g.shN}
    bad = {name: int((~torch.isfinite(t)).sum()) for name, t in fields.items()}
    if any(bad.values()):
        where = ", ".join(f"{c} in {name}" for name, c in bad.items() if c)
        raise SplatfilmError(f"{path}: cannot write Gaussians with non-finite values (NaN/inf): {where}")
    if n == 0:  # as every reader refuses one
        raise SplatfilmError(f"{path}: no Gaussians to write")
    # A texture of whole 4x4 blocks, as splat-transform lays it out (at least one block).
    width = max(4, math.ceil(math.sqrt(n) / 4) * 4)
    height = max(4, math.ceil(n / width / 4) * 4)

    def image(rgba: np.ndarray, shape: tuple[int, int] = (height, width)) -> bytes:
        """Rows of RGBA [M,4] uint8 as a lossless WebP of `shape` (rows, columns), zero-filled."""
        full = np.zeros((shape[0] * shape[1], 4), np.uint8)
        full[:len(rgba)] = rgba
        out = io.BytesIO()
        Image.fromarray(full.reshape(shape[0], shape[1], 4), "RGBA").save(out, "WEBP", lossless=True, exact=True)
        return out.getvalue()

    files: dict[str, bytes] = {}
    means = g.means.numpy().astype(np.float64)
    logged = np.sign(means) * np.log1p(np.abs(means))
    mins, maxs = logged.min(axis=0), logged.max(axis=0)
    span = maxs - mins
    steps = np.rint((logged - mins) / np.where(span > 0, span, 1.0) * 65535.0).astype(np.uint32)
    opaque = np.full((n, 1), 255, np.uint8)
    files["means_l.webp"] = image(np.concatenate([(steps & 0xFF).astype(np.uint8), opaque], axis=1))
    files["means_u.webp"] = image(np.concatenate([(steps >> 8).astype(np.uint8), opaque], axis=1))

    largest, others = smallest_three(g.quats.numpy().astype(np.float64))
    files["quats.webp"] = image(np.concatenate([_bytes(others), (252 + largest)[:, None].astype(np.uint8)], axis=1))

    scales_book, scales = _codebook(g.scales.numpy())
    files["scales.webp"] = image(np.concatenate([scales, opaque], axis=1))

    alpha = _bytes(1.0 / (1.0 + np.exp(-np.clip(g.opacities.numpy().astype(np.float64), -100.0, 100.0))))
    sh0_book, sh0 = _codebook(g.sh0.numpy().reshape(n, 3))
    files["sh0.webp"] = image(np.concatenate([sh0, alpha[:, None]], axis=1))

    meta: dict[str, Any] = {
        "version": 2, "asset": {"generator": f"splatfilm {__version__}"}, "count": n,
        "means": {"mins": mins.tolist(), "maxs": maxs.tolist(), "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": scales_book.tolist(), "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": sh0_book.tolist(), "files": ["sh0.webp"]},
    }
    if g.sh_degree:
        coeffs = g.shN.shape[1]
        entries = min(_MAX_PALETTE, 1 << (n.bit_length() - 1))
        palette = _sh_palette(g.shN.numpy().reshape(n, coeffs * 3), entries)
        shN_book, palette_bytes = _codebook(palette)
        # Entry e's coefficient j at row e // 64, column (e % 64) * coeffs + j, RGB its channels.
        table = np.concatenate([palette_bytes.reshape(-1, coeffs, 3),
                                np.full((len(palette), coeffs, 1), 255, np.uint8)], axis=2)
        rows = math.ceil(entries / _PALETTE_ROW)
        files["shN_centroids.webp"] = image(table.reshape(-1, 4), (rows, _PALETTE_ROW * coeffs))
        # Each Gaussian takes the entry nearest it as the file decodes it (the palette's bytes).
        decoded = shN_book[palette_bytes.astype(np.int64)].astype(np.float64)
        labels = _nearest(g.shN.numpy().reshape(n, coeffs * 3), decoded)
        files["shN_labels.webp"] = image(np.stack([labels & 0xFF, labels >> 8, np.zeros(n, np.int64),
                                                   np.full(n, 255)], axis=1).astype(np.uint8))
        meta["shN"] = {"count": entries, "bands": g.sh_degree, "codebook": shN_book.tolist(),
                       "files": ["shN_centroids.webp", "shN_labels.webp"]}
    files = {"meta.json": json.dumps(meta).encode(), **files}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # WebP is compressed already
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data)
    atomic_write(path, [out.getbuffer()])


def _bytes(fractions: np.ndarray) -> np.ndarray:
    """Fractions in [0, 1] (any shape) to the nearest of 256 steps, uint8."""
    return np.clip(np.rint(np.asarray(fractions, np.float64) * 255.0), 0, 255).astype(np.uint8)


def _codebook(values: np.ndarray, entries: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A 1D codebook for every value of `values` (any shape) pooled, as SOG version 2 stores
    scales, colours and the SH palette: (codebook [entries] float32 ascending, indices of the
    shape of `values`, uint8), each value's index its nearest entry. The distinct values
    themselves when there are no more than `entries` (exact), else `_ITERATIONS` rounds of
    Lloyd's k-means, deterministic (no random start)."""
    flat = np.asarray(values, np.float64).reshape(-1)
    ordered, n = np.sort(flat), len(flat)  # one sort serves the distinct values and the k-means
    distinct = ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if n else ordered
    if len(distinct) <= entries:
        book = np.concatenate([distinct, np.full(entries - len(distinct), distinct[-1] if len(distinct) else 0.0)])
    else:
        # Plain k-means (and quantile starts) spend every entry on the dense middle and leave
        # the sparse tails (a floater's large scale, a saturated colour) off by a unit or more;
        # starts halfway between quantiles and even steps, and each value weighted by the
        # square root of its neighbours' spacing (density to the power -1/2), keep them within
        # a tenth of that (on scenes/set: log scales 2.9 -> 0.1, DC colour 0.87 -> 0.02).
        rank = np.arange(n)
        place = 0.5 * rank / n + 0.5 * (ordered - ordered[0]) / (ordered[-1] - ordered[0])
        book = ordered[np.minimum(np.searchsorted(place, (2 * np.arange(entries) + 1) / (2 * entries)), n - 1)]
        reach = max(1, n // 1024)
        spacing = ordered[np.minimum(rank + reach, n - 1)] - ordered[np.maximum(rank - reach, 0)]
        weight = np.sqrt(np.maximum(spacing, 1e-12))
        for _ in range(_ITERATIONS):
            label = np.searchsorted((book[1:] + book[:-1]) / 2, ordered)
            mass = np.bincount(label, weights=weight, minlength=entries)
            sums = np.bincount(label, weights=weight * ordered, minlength=entries)
            book = np.sort(np.where(mass > 0, sums / np.where(mass > 0, mass, 1.0), book))
    book = book.astype(np.float32)
    wide = book.astype(np.float64)  # what a reader will see: the indices are chosen against it
    index = np.searchsorted((wide[1:] + wide[:-1]) / 2, flat)
    return book, index.astype(np.uint8).reshape(np.shape(values))


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The index [N] (int64) of the nearest of centres [K,D] to each of points [N,D], the same
    on every run. Up to `_KD_TREE_DIMS` dimensions (an SH degree of 1) scipy's kd-tree, exact;
    above, where a kd-tree visits nearly every centre, float32 distances as matmuls
    (|x|^2 - 2 x.c + |c|^2): every centre while N x K is small, else the centres grouped and each
    point searching only its `_PROBES` nearest groups (`_probed_nearest`). (The matmuls' float32
    rounding is the same each run on one machine; another BLAS could break a near-tie otherwise.)"""
    if points.shape[1] <= _KD_TREE_DIMS:
        from scipy.spatial import cKDTree

        return cKDTree(centres).query(points, workers=-1)[1].astype(np.int64)
    x = torch.from_numpy(np.ascontiguousarray(points, np.float32))
    c = torch.from_numpy(np.ascontiguousarray(centres, np.float32))
    if len(x) * len(c) <= _BRUTE_PAIRS:
        return _brute_nearest(x, c).numpy()
    return _probed_nearest(x, c).numpy()


def _brute_nearest(x: torch.Tensor, c: torch.Tensor, k: int = 1) -> torch.Tensor:
    """The indices [N] (k = 1) or [N,k] of the nearest k of centres c [K,D] to each of x [N,D]
    (float32), every pair's distance computed, in chunks of rows whose distances fit
    `_CHUNK_FLOATS`."""
    c_t = c.T.contiguous()
    c_norm = (c * c).sum(1)
    out = torch.empty((len(x), k) if k > 1 else (len(x),), dtype=torch.int64)
    step = max(1, _CHUNK_FLOATS // max(1, len(c)))
    for i in range(0, len(x), step):
        # |x|^2 is the same for every centre: it changes no ranking.
        d = torch.addmm(c_norm, x[i:i + step], c_t, alpha=-2.0)
        out[i:i + step] = d.argmin(1) if k == 1 else d.topk(k, dim=1, largest=False).indices
    return out


def _probed_nearest(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The index [N] of the nearest of centres c [K,D] to each of x [N,D] (float32) among those
    in the point's `_PROBES` nearest groups: the centres grouped by k-means into about sqrt(K)
    groups (from a seeded pick), each point's distance taken to the groups' means, then to each
    centre of its nearest few. Near-exact (a miss lies close to a group border, where the centre
    taken is nearly as near) at about (sqrt(K) + probes sqrt(K)) / K of the brute-force cost."""
    k = len(c)
    n_groups = max(1, math.isqrt(k))
    c64 = c.numpy().astype(np.float64)
    means = c[np.sort(np.random.default_rng(_SEED).choice(k, n_groups, replace=False))]
    for _ in range(_GROUP_ITERATIONS):
        group = _brute_nearest(c, means).numpy()
        means = torch.from_numpy(_means(c64, group, n_groups, means.numpy().astype(np.float64)).astype(np.float32))
    group = _brute_nearest(c, means).numpy()
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1)).tolist()
    grouped = c[torch.from_numpy(order)]  # each group's centres one slice
    grouped_norm = (grouped * grouped).sum(1)
    n_probes = min(_PROBES, n_groups)
    probes = _brute_nearest(x, means, n_probes).reshape(-1)
    # The (point, probe) pairs sorted by group: each group's askers one slice, and its answers
    # (distance, entry) filled in place, then taken back to the [N, probes] table.
    asking = torch.argsort(probes, stable=True)
    asked = torch.searchsorted(probes[asking], torch.arange(n_groups + 1)).tolist()
    value = torch.full((len(probes),), float("inf"))
    entry = torch.zeros(len(probes), dtype=torch.int64)
    for g in range(n_groups):
        a, b, lo, hi = asked[g], asked[g + 1], bounds[g], bounds[g + 1]
        if a == b or lo == hi:
            continue
        d = torch.addmm(grouped_norm[lo:hi], x.index_select(0, asking[a:b] // n_probes), grouped[lo:hi].T, alpha=-2.0)
        value[a:b], entry[a:b] = d.min(1)
        entry[a:b] += lo
    table_value = torch.empty_like(value)
    table_value[asking] = value
    table_entry = torch.empty_like(entry)
    table_entry[asking] = entry
    # A tie keeps the nearer group's entry (the first probe): the same labels every run.
    pick = table_value.reshape(-1, n_probes).argmin(1)
    sorted_entry = table_entry.reshape(-1, n_probes).gather(1, pick[:, None])[:, 0]
    return torch.from_numpy(order)[sorted_entry]


def _means(data: np.ndarray, labels: np.ndarray, k: int, previous: np.ndarray) -> np.ndarray:
    """The mean [k,D] float64 of the rows of data [N,D] labelled each of 0..k-1 (labels [N]);
    a label no row has keeps its `previous` row. Sums by bincount: the same in every run."""
    counts = np.bincount(labels, minlength=k)
    sums = np.stack([np.bincount(labels, weights=data[:, j], minlength=k) for j in range(data.shape[1])], axis=1)
    return np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], previous)


def _sh_palette(points: np.ndarray, entries: int) -> np.ndarray:
    """k-means of points [N,D] (float32: a Gaussian's higher SH coefficients) into `entries`
    centres [entries, D] float64; `entries` >= N: the points themselves.
    Fitted on at most `_SAMPLE_PER_ENTRY` x `entries` rows of a seeded pick (with an entry for
    every 1-2 rows, more rows would move the entries little and cost a round in proportion),
    started from the rows of `entries` Gaussians of a seeded pick (equal rows give equal
    starts), `_ITERATIONS` rounds; a centre that loses all its rows keeps its place."""
    n = len(points)
    if entries >= n:
        return points.astype(np.float64)
    rng = np.random.default_rng(_SEED)
    if n > _SAMPLE_PER_ENTRY * entries:
        points = points[np.sort(rng.choice(n, _SAMPLE_PER_ENTRY * entries, replace=False))]
        n = len(points)
    data = points.astype(np.float64)
    centres = data[np.sort(rng.choice(n, entries, replace=False))]
    for _ in range(_ITERATIONS):
        centres = _means(data, _nearest(data, centres), entries, centres)
    return centres
