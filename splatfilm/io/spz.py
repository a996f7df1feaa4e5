"""Niantic's compressed `.spz` splat files: versions 2 and 3 read and written, version 4 read
(written from the published format description, github.com/nianticlabs/spz README and
load-spz.cc; no code taken from it).

A version 2 or 3 file is one gzip stream holding a 16-byte little-endian header::

    uint32 magic = 0x5053474e ("NGSP")   uint32 version (2 or 3)   uint32 count N
    uint8 sh_degree (0-3; 4 in v3)   uint8 fractional_bits   uint8 flags (0x1 antialiased)   uint8 0

(flag 0x1: the splats were trained in gsplat's antialiased mode; `spz_antialiased` reads it,
and an asset's sidecar `rasterize_mode`, when it has one, says the same)

then the attributes, each for every Gaussian in turn:

    positions   N x 3 x 24-bit signed fixed point, x = value / 2^fractional_bits
    alphas      N x uint8, sigmoid(opacity) * 255
    colours     N x 3 x uint8, sh0 * 0.15 * 255 + 127.5 (0.15, not C0: room for colours
                outside [0, 1] that the higher bands bring back)
    scales      N x 3 x uint8, (log scale + 10) * 16
    rotations   v2: N x 3 x uint8, x y z of the unit quaternion with w >= 0, q * 127.5 + 127.5;
                v3: N x uint32 "smallest three": bits 30-31 the index (in x y z w order) of the
                largest component, made positive and left out; the other three in order, 10
                bits each from bit 20 down: a sign bit then 9 bits of |q| / sqrt(1/2) * 511
    sh          N x K x 3 x uint8 (K = (d+1)^2 - 1, coefficient-major, colour inner, our
                `shN` layout), round(x * 128) + 128 snapped to 5 significant bits for band 1
                and 4 for the higher bands (the snapping only helps gzip; reading is (b - 128) / 128)

Every value is rounded to the nearest step and clamped to 0..255. A version 4 file (what
SuperSplat and Niantic's converter write by default) is not gzipped: a 32-byte header (the
same first 15 bytes, then uint8 stream count, uint32 offset of the table of streams, 12
reserved bytes), a table of (compressed, uncompressed) uint64 sizes, and the same attributes
as separate zstd streams, an empty one (no SH) left out. Extensions (flag 0x2: records of
uint32 type, uint32 length, payload; github.com/nianticlabs/spz extensions/README.md) follow
the attributes in a version 2 or 3 stream and sit between the header and the table in version
4; they are skipped, as Niantic's library built without extensions does (one,
SPZ_ADOBE_coordinate_system, names the axes the file was stored in: its files are read like
any other, in the axes below). Version 1 (never released) and unknown versions are refused with a
one-line error. Writing stays at version 3: Spark, the common web viewer, reads only 1-3.
SH degree 4 is written as version 3 allows, with a note on stderr: SuperSplat's
splat-transform reads SPZ up to degree 3 only.

Coordinates. SPZ's spec and Niantic's library call its axes RUB (x right, y up, z back), but
the library converts only when asked (PackOptions.from, UnpackOptions.to; unspecified, their
default, keeps the values as they are) and a file records neither, so `.spz` files in use hold
one of two. PlayCanvas's splat-transform 3.x (the latest, behind SuperSplat: "no coordinate
conversion", `from: UNSPECIFIED`) and Niantic's library run without options store a PLY's
axes as they are (RDF: x right, y down, z forward). That is the default here (axes="ply"):
their `.spz` reads back onto the PLY it was made from, and splatfilm's version 3 payload of the
test fixture's PLY is splat-transform 3.7.0's byte for byte. splat-transform 2.x (through
Niantic's wasm with from RDF), Scaniverse's captures and converters run with `--from-coord RDF
--to-coord RUB` store RUB, which read as stored stands upside down: axes="rub" (`splatfilm
import --spz-axes rub`, film scripts' `spz_axes: rub`) reads or writes such a file, y and z
negated, a half turn about x applied to positions, rotations and SH. splatfilm's own `.spz`
files written on 2026-11-30 before "ply" became the default again are RUB too.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write
from splatfilm.io.inputs import read_input, trailing_bytes_note
from splatfilm.scene.gaussians import Gaussians, opacity_logit, opacity_sigmoid
from splatfilm.scene.sh import sh_degree_of
from splatfilm import report

__all__ = ["read_spz", "write_spz", "encode_spz", "decode_spz", "spz_antialiased", "SPZ_MAGIC", "SPZ_VERSIONS",
           "SPZ_AXES", "SPZ_DEFAULT_AXES", "RUB_TURN"]

SPZ_MAGIC = 0x5053474E
SPZ_VERSIONS = (2, 3)  # written; version 4 is read too
SPZ_AXES = ("ply", "rub")
SPZ_DEFAULT_AXES = "ply"  # as stored, as splat-transform 3.x writes them; "rub": turned (module docstring)
# The half turn about x between a PLY's axes and RUB (its own inverse): what one .spz end read
# or written in the other axes than the default does to positions, so a sidecar's frame (its
# up, canonical transform, ground) can follow it.
RUB_TURN = np.diag([1.0, -1.0, -1.0])
COLOR_SCALE = 0.15
DEFAULT_FRACTIONAL_BITS = 12  # Niantic's choice: ~0.24 mm steps, positions within +-2048 units
_FLAG_ANTIALIASED = 0x1
_FLAG_EXTENSIONS = 0x2
_HEADER = np.dtype([("magic", "<u4"), ("version", "<u4"), ("count", "<u4"), ("sh_degree", "u1"),
                    ("fractional_bits", "u1"), ("flags", "u1"), ("reserved", "u1")])
_HEADER_V4 = np.dtype([("magic", "<u4"), ("version", "<u4"), ("count", "<u4"), ("sh_degree", "u1"),
                       ("fractional_bits", "u1"), ("flags", "u1"), ("streams", "u1"), ("toc_offset", "<u4"),
                       ("reserved", "V12")])
_SQRT1_2 = math.sqrt(0.5)
_MAX_COUNT = 1 << 28  # a header claiming more is not a splat file we can hold
# Alphas of 0 and 255 read as these, so their logits stay finite (as the .splat reader does).
_ALPHA_EPS = 0.5 / 255
# Gaussians a block when decoding and encoding: float64 temporaries of a few MB, not of the scene.
_BLOCK = 1 << 14


def _error(path, problem: str) -> SplatfilmError:
    return SplatfilmError(f"{path}: {problem}")


def rdf_rub_sh_signs(degree: int) -> np.ndarray:
    """Per-coefficient signs [(d+1)^2 - 1] of `shN` under the half turn about x (y, z -> -y, -z).

    In spherical angles about z the turn is (theta, phi) -> (pi - theta, -phi): the associated
    Legendre factor gains (-1)^(l+|m|) and the sin(|m| phi) functions (m < 0) flip once more."""
    signs = []
    for lv in range(1, degree + 1):
        for m in range(-lv, lv + 1):
            s = (-1) ** (lv + abs(m))
            signs.append(-s if m < 0 else s)
    return np.array(signs, dtype=np.float64)


def _flip_frame(means: np.ndarray, quats: np.ndarray, shN: np.ndarray) -> tuple[np.ndarray, ...]:
    """Between RDF and RUB (its own inverse): y, z negate; a rotation R becomes F R F with
    F = diag(1, -1, -1), i.e. quaternion (w, x, -y, -z); SH coefficients by `rdf_rub_sh_signs`."""
    flip = np.diag(RUB_TURN)
    degree = sh_degree_of(shN.shape[1] + 1)
    return (means * flip, quats * np.array([1.0, 1.0, -1.0, -1.0]),
            shN * rdf_rub_sh_signs(degree).astype(shN.dtype)[None, :, None])


def _round_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _fractional_bits(extent: float, path) -> int:
    """The finest step (at most 12 fractional bits) whose 24-bit range holds positions up to
    `extent` (the largest |coordinate|) from the origin."""
    limit = (1 << 23) - 1
    for bits in range(DEFAULT_FRACTIONAL_BITS, -1, -1):
        if round(extent * (1 << bits)) <= limit:
            return bits
    raise _error(path, f"a position {extent:.6g} units from the origin does not fit SPZ's 24-bit coordinates "
                       f"(at most {limit} units)")


# For each index of the largest component (x y z w order), the other three in order.
_OTHER_THREE = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])


def _pack_smallest_three(q: np.ndarray) -> np.ndarray:
    """Unit quaternions [N,4] in x y z w order -> uint32 [N] (v3 layout, module docstring)."""
    largest = np.argmax(np.abs(q), axis=1)
    negate = np.take_along_axis(q, largest[:, None], axis=1)[:, 0] < 0
    others = np.take_along_axis(q, _OTHER_THREE[largest], axis=1)
    comp = largest.astype(np.uint32)
    for slot in range(3):
        v = others[:, slot]
        sign = ((v < 0) ^ negate).astype(np.uint32)
        mag = np.minimum(np.floor(511.0 * np.abs(v) / _SQRT1_2 + 0.5), 511).astype(np.uint32)
        comp = (comp << np.uint32(10)) | (sign << np.uint32(9)) | mag
    return comp


def _unpack_smallest_three(comp: np.ndarray) -> np.ndarray:
    """uint32 [N] -> unit quaternions [N,4] in x y z w order."""
    comp = comp.astype(np.uint64)
    n = len(comp)
    largest = (comp >> np.uint64(30)).astype(np.int64)
    q = np.zeros((n, 4))
    rest = comp.copy()
    # The last stored component sits in the lowest bits: walk the slots from the last.
    order = _OTHER_THREE[largest]
    for slot in (2, 1, 0):
        mag = (rest & np.uint64(511)).astype(np.float64)
        neg = ((rest >> np.uint64(9)) & np.uint64(1)).astype(bool)
        rest = rest >> np.uint64(10)
        v = _SQRT1_2 * mag / 511.0
        q[np.arange(n), order[:, slot]] = np.where(neg, -v, v)
    q[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1.0 - (q**2).sum(axis=1)))
    return q


def _check_axes(axes: str) -> None:
    if axes not in SPZ_AXES:
        raise SplatfilmError(f"SPZ axes {axes!r} is not one of {', '.join(SPZ_AXES)}")


def encode_spz(g: Gaussians, version: int = 3, path: str | Path = "<spz>", axes: str = SPZ_DEFAULT_AXES,
               antialiased: bool = False) -> bytes:
    """The uncompressed SPZ payload (header and attributes) of `g` (version 2 or 3), in the
    asset's own axes or, with axes="rub", turned into RUB (module docstring); antialiased sets
    the header's flag 0x1 (the splats were trained in gsplat's antialiased mode)."""
    return bytes(_encode(g, version, path, axes, antialiased))


def _encode(g: Gaussians, version: int, path, axes: str, antialiased: bool) -> bytearray:
    """`encode_spz`'s payload, written a block of Gaussians at a time into one buffer (the
    float64 and integer steps held whole cost about 30x the file)."""
    _check_axes(axes)
    if version not in SPZ_VERSIONS:
        raise _error(path, f"SPZ version {version} is not written (use 2 or 3)")
    g = g.detach().to("cpu")
    degree = g.sh_degree
    if degree > (4 if version >= 3 else 3):
        raise _error(path, f"SPZ version {version} holds SH up to degree {4 if version >= 3 else 3}, not {degree}")
    n = len(g)
    k = (degree + 1) ** 2 - 1
    # float64 for the per-Gaussian attributes, whose rounding the format fixes; the SH bands (45
    # values a Gaussian at degree 3) stay in their float32: x * 128 and the steps below are exact
    # there, so the bytes are the same at a quarter of the memory.
    # Converted in numpy, not torch: torch's ops on blocks this small waited on its thread pool
    # (6 ms a block, seconds a file, on a busy machine). float16 and bfloat16 go through float32,
    # exactly.
    own = lambda t: t.numpy() if t.dtype in (torch.float32, torch.float64) else t.float().numpy()  # noqa: E731
    f64 = lambda t: own(t).astype(np.float64)  # noqa: E731
    attrs = {"means": g.means, "quats": g.quats, "scales": g.scales, "opacities": g.opacities, "sh0": g.sh0,
             "shN": g.shN}
    # Finiteness and the position extent in a first pass, so nothing is encoded for a refusal: a
    # number is finite in float64 exactly when it is in its own dtype, and the half turn leaves
    # |x| as it is.
    bad = dict.fromkeys(attrs, 0)
    extent = 0.0
    for r0 in range(0, n, _BLOCK):
        for name, t in attrs.items():
            bad[name] += int(np.count_nonzero(~np.isfinite(own(t[r0:r0 + _BLOCK]))))
        if not any(bad.values()):
            extent = max(extent, float(np.abs(own(g.means[r0:r0 + _BLOCK])).max()))
    bad = {name: count for name, count in bad.items() if count}
    if bad:
        raise _error(path, "cannot write Gaussians with non-finite values (NaN/inf): "
                           + ", ".join(f"{count} in {name}" for name, count in bad.items()))
    bits = _fractional_bits(extent, path)
    header = np.zeros(1, _HEADER)
    header[0] = (SPZ_MAGIC, version, n, degree, bits, _FLAG_ANTIALIASED if antialiased else 0, 0)
    rot_bytes = 4 if version >= 3 else 3
    sizes = [("positions", 9), ("alphas", 1), ("colours", 3), ("scales", 3), ("rotations", rot_bytes),
             ("sh", 3 * k)]
    payload = bytearray(_HEADER.itemsize + n * sum(size for _, size in sizes))
    buf = np.frombuffer(payload, np.uint8)
    buf[:_HEADER.itemsize] = header.view(np.uint8)
    cols, at = {}, _HEADER.itemsize
    for name, size in sizes:
        cols[name] = buf[at:at + n * size].reshape(n, size)
        at += n * size
    step = np.full(k, 16, dtype=np.int16)  # 4 bits for bands 2+
    step[:3] = 8  # 5 bits for band 1
    step = step[None, :, None]
    for r0 in range(0, n, _BLOCK):
        r1 = min(n, r0 + _BLOCK)
        m = r1 - r0
        means, quats, shN = f64(g.means[r0:r1]), f64(g.quats[r0:r1]), own(g.shN[r0:r1])
        if axes == "rub":
            means, quats, shN = _flip_frame(means, quats, shN)
        fixed = np.rint(means * (1 << bits)).astype(np.int64).reshape(-1) & 0xFFFFFF
        cols["positions"][r0:r1] = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF],
                                            axis=1).reshape(m, 9)
        cols["alphas"][r0:r1, 0] = _round_u8(255.0 * opacity_sigmoid(f64(g.opacities[r0:r1])))
        cols["colours"][r0:r1] = _round_u8(f64(g.sh0[r0:r1]).reshape(m, 3) * (COLOR_SCALE * 255.0) + 127.5)
        cols["scales"][r0:r1] = _round_u8((f64(g.scales[r0:r1]) + 10.0) * 16.0)
        norm = np.linalg.norm(quats, axis=1, keepdims=True)
        q = np.where(norm > 0, quats / np.where(norm > 0, norm, 1.0), np.array([1.0, 0.0, 0.0, 0.0]))
        q_xyzw = q[:, [1, 2, 3, 0]]
        if version >= 3:
            cols["rotations"][r0:r1] = _pack_smallest_three(q_xyzw).astype("<u4").view(np.uint8).reshape(m, 4)
        else:
            q_xyzw = np.where(q_xyzw[:, 3:] < 0, -q_xyzw, q_xyzw)
            cols["rotations"][r0:r1] = _round_u8(q_xyzw[:, :3] * 127.5 + 127.5)
        if degree > 0:
            # round(x * 128) + 128 snapped to the nearest step (ties up) and clamped to 0..255, in
            # integers; clamping first to a range wider than 0..255 changes none of the results.
            q_sh = np.rint(shN * 128.0)
            np.clip(q_sh, -512.0, 512.0, out=q_sh)
            q_sh = q_sh.astype(np.int16)
            q_sh += 128
            q_sh += step // 2
            q_sh //= step
            q_sh *= step
            cols["sh"][r0:r1] = np.clip(q_sh, 0, 255).astype(np.uint8).reshape(m, 3 * k)
    return payload


def decode_spz(data: bytes, path: str | Path = "<spz>", axes: str = SPZ_DEFAULT_AXES) -> Gaussians:
    """Gaussians (float32) from an uncompressed SPZ version 2 or 3 payload, as stored or, with
    axes="rub", turned from RUB into the PLY's axes (module docstring)."""
    _check_axes(axes)
    if len(data) < _HEADER.itemsize:
        raise _error(path, f"SPZ data of {len(data)} bytes is shorter than its 16-byte header")
    h = np.frombuffer(data[:_HEADER.itemsize], _HEADER)[0]
    if int(h["magic"]) != SPZ_MAGIC:
        raise _error(path, f"not an SPZ file (magic 0x{int(h['magic']):08x}, expected 0x{SPZ_MAGIC:08x})")
    version, n, degree, bits, flags = (int(h[k]) for k in ("version", "count", "sh_degree", "fractional_bits", "flags"))
    if version not in SPZ_VERSIONS:
        raise _error(path, f"SPZ version {version} is not supported in a gzip stream (versions 2 and 3; "
                           "version 4 files are not gzipped)")
    if degree > (4 if version >= 3 else 3):
        raise _error(path, f"SH degree {degree} is not valid in an SPZ version {version} file")
    if n > _MAX_COUNT:
        raise _error(path, f"claims {n} Gaussians; not a plausible SPZ file")
    if bits > 23:
        raise _error(path, f"{bits} fractional bits do not fit 24-bit coordinates")
    k = (degree + 1) ** 2 - 1
    rot_bytes = 4 if version >= 3 else 3
    sizes = [("positions", 9), ("alphas", 1), ("colours", 3), ("scales", 3), ("rotations", rot_bytes),
             ("sh", 3 * k)]
    need = _HEADER.itemsize + n * sum(s for _, s in sizes)
    if len(data) < need:
        raise _error(path, f"truncated: {n} Gaussians need {need} bytes of SPZ data, the file holds {len(data)}")
    # Extension records (flag 0x2) follow the attributes: skipped, as Niantic's library built
    # without extensions does; none changes how the attributes read here.
    if len(data) > need and not flags & _FLAG_EXTENSIONS:
        raise _error(path, f"{len(data) - need} bytes after the last attribute; not an SPZ version {version} file")
    buf = np.frombuffer(data, np.uint8)
    at = _HEADER.itemsize
    cols = {}
    for name, size in sizes:
        cols[name] = buf[at:at + n * size].reshape(n, size)
        at += n * size
    out = {"means": np.empty((n, 3), np.float32), "quats": np.empty((n, 4), np.float32),
           "scales": np.empty((n, 3), np.float32), "opacities": np.empty(n, np.float32),
           "sh0": np.empty((n, 1, 3), np.float32), "shN": np.empty((n, k, 3), np.float32)}
    # A block of Gaussians at a time into the float32 outputs: the float64 steps below (each
    # value rounds to float32 once) held whole would cost about 35x the file.
    for r0 in range(0, n, _BLOCK):
        r1 = min(n, r0 + _BLOCK)
        m = r1 - r0
        p = cols["positions"][r0:r1].reshape(m, 3, 3).astype(np.int64)
        fixed = p[..., 0] | (p[..., 1] << 8) | (p[..., 2] << 16)
        fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
        means = fixed.astype(np.float64) / (1 << bits)
        out["opacities"][r0:r1] = opacity_logit(cols["alphas"][r0:r1, 0].astype(np.float64) / 255.0, _ALPHA_EPS)
        out["sh0"][r0:r1, 0] = (cols["colours"][r0:r1].astype(np.float64) / 255.0 - 0.5) / COLOR_SCALE
        out["scales"][r0:r1] = cols["scales"][r0:r1].astype(np.float64) / 16.0 - 10.0
        if version >= 3:
            q_xyzw = _unpack_smallest_three(cols["rotations"][r0:r1].copy().view("<u4")[:, 0])
        else:
            xyz = cols["rotations"][r0:r1].astype(np.float64) / 127.5 - 1.0
            q_xyzw = np.c_[xyz, np.sqrt(np.maximum(0.0, 1.0 - (xyz**2).sum(axis=1)))]
        quats = q_xyzw[:, [3, 0, 1, 2]]
        # (b - 128) / 128 of a byte is exact in float32: no float64 needed for the largest part.
        shN = cols["sh"][r0:r1].reshape(m, k, 3).astype(np.float32)
        shN -= 128
        shN /= 128
        if axes == "rub":
            means, quats, shN = _flip_frame(means, quats, shN)
        out["means"][r0:r1], out["quats"][r0:r1], out["shN"][r0:r1] = means, quats, shN
    return Gaussians(**{name: torch.from_numpy(a) for name, a in out.items()})


def _unpack_v4(raw: bytes, path, notes: list[str] | None = None) -> bytes:
    """The version 4 container (module docstring) as the equivalent version 3 payload: its
    header, then its zstd streams decompressed in order; bytes after the last stream are
    noted in `notes`."""
    if len(raw) < _HEADER_V4.itemsize:
        raise _error(path, f"an SPZ version 4 file needs a 32-byte header; this one has {len(raw)} bytes")
    h = np.frombuffer(raw[:_HEADER_V4.itemsize], _HEADER_V4)[0]
    version, n, flags, streams, toc = (int(h[k]) for k in ("version", "count", "flags", "streams", "toc_offset"))
    if version != 4:
        raise _error(path, f"SPZ version {version} is not supported (versions 2, 3 and 4 are read)")
    if n > _MAX_COUNT:
        raise _error(path, f"claims {n} Gaussians; not a plausible SPZ file")
    if not 1 <= streams <= 6 or toc < _HEADER_V4.itemsize or toc + 16 * streams > len(raw):
        raise _error(path, f"a table of {streams} streams at byte {toc} does not fit the file's {len(raw)} bytes")
    sizes = [(int(c), int(u)) for c, u in np.frombuffer(raw[toc:toc + 16 * streams], "<u8").reshape(streams, 2)]
    import zstandard

    at, parts = toc + 16 * streams, []
    for compressed, size in sizes:
        if at + compressed > len(raw) or size > 72 * n + 1024:
            raise _error(path, "truncated or damaged: a stream runs past the end of the file")
        try:
            declared = zstandard.frame_content_size(raw[at:at + compressed])
        except zstandard.ZstdError:
            raise _error(path, "truncated or damaged: a zstd stream's header does not read") from None
        if declared not in (-1, size):  # zstd trusts a frame's own size: a damaged one could ask for any memory
            raise _error(path, f"a zstd stream declares {declared} bytes where the table says {size}")
        try:
            part = zstandard.ZstdDecompressor().decompress(raw[at:at + compressed], max_output_size=int(size))
        except zstandard.ZstdError as e:
            raise _error(path, f"a zstd stream is damaged ({e})") from None
        if len(part) != size:
            raise _error(path, f"a zstd stream holds {len(part)} bytes where the table says {size}")
        parts.append(part)
        at += compressed
    if notes is not None and at < len(raw):
        notes.append(trailing_bytes_note(path, len(raw) - at, "its last zstd stream"))
    header = np.zeros(1, _HEADER)
    header[0] = (SPZ_MAGIC, 3, n, int(h["sh_degree"]), int(h["fractional_bits"]), flags, 0)
    return b"".join([header.tobytes(), *parts])  # one copy: `+` after join made two


def read_spz(path: str | os.PathLike, axes: str = SPZ_DEFAULT_AXES, notes: list[str] | None = None) -> Gaussians:
    """Read an `.spz` file (version 2, 3 or 4) into float32 Gaussians; axes: see the module
    docstring. notes: a list the one-line notes for the reader are appended to (bytes after
    the end of the file's data)."""
    path = Path(path)
    _check_axes(axes)
    raw = read_input(path, ".spz file")
    if raw[:4] == SPZ_MAGIC.to_bytes(4, "little"):
        return decode_spz(_unpack_v4(raw, path, notes), path, axes)
    if raw[:2] != b"\x1f\x8b":
        raise _error(path, "not an SPZ file (no gzip header, as versions 2 and 3 have, nor the NGSP magic of "
                           "version 4)")
    # One gzip member, read by zlib rather than gzip.decompress, which passes over zeros after
    # it in silence: what follows the member's end is noted.
    stream = zlib.decompressobj(wbits=31)
    try:
        data = stream.decompress(raw)
    except zlib.error as e:
        raise _error(path, f"the gzip stream is damaged or truncated ({e})") from None
    if not stream.eof:
        raise _error(path, "the gzip stream is damaged or truncated (it ends before its end-of-stream marker)")
    if notes is not None and stream.unused_data:
        notes.append(trailing_bytes_note(path, len(stream.unused_data), "its gzip stream"))
    return decode_spz(data, path, axes)


def spz_antialiased(path: str | os.PathLike) -> bool:
    """Whether an `.spz` file's header carries flag 0x1: its splats were trained in gsplat's
    antialiased mode and render so (`rasterization(..., rasterize_mode="antialiased")`). Reads the
    header alone (a version 4 file's first 32 bytes, else the gzip stream's first 16)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(_HEADER_V4.itemsize)
            if head[:4] == SPZ_MAGIC.to_bytes(4, "little") and len(head) == _HEADER_V4.itemsize:
                return bool(np.frombuffer(head, _HEADER_V4)[0]["flags"] & _FLAG_ANTIALIASED)
            f.seek(0)
            with gzip.GzipFile(fileobj=f) as z:
                head = z.read(_HEADER.itemsize)
    except FileNotFoundError:
        raise _error(path, "no such file") from None
    except (OSError, EOFError, zlib.error) as e:
        raise _error(path, f"not a readable SPZ file ({getattr(e, 'strerror', None) or e})") from None
    if len(head) < _HEADER.itemsize or int(np.frombuffer(head, _HEADER)[0]["magic"]) != SPZ_MAGIC:
        raise _error(path, "not an SPZ file (its header does not read)")
    return bool(np.frombuffer(head, _HEADER)[0]["flags"] & _FLAG_ANTIALIASED)


def write_spz(path: str | os.PathLike, g: Gaussians, version: int = 3, axes: str = SPZ_DEFAULT_AXES,
              antialiased: bool = False) -> None:
    """Write `g` as an `.spz` file (atomically); version 3 (smallest-three rotations) or 2;
    axes: see the module docstring; antialiased: the header's flag 0x1 (`spz_antialiased`).

    Lossy by design: see the module docstring for each attribute's step. mtime 0 in the gzip
    header, so the same Gaussians give the same bytes."""
    path = Path(path)
    payload = _encode(g, version, path, axes, antialiased)  # the buffer itself: a bytes copy would hold it twice
    if g.sh_degree == 4:
        # Kept rather than cut to 3: the format and Niantic's library hold band 4, and a cut
        # cannot be undone; those who need the file in SuperSplat are told how to get one.
        report.note(f"{path}: written with SH degree 4, which SPZ version 3 allows but SuperSplat and "
                    "splat-transform (SPZ degree 0-3) refuse; for them write degree 3 (splatfilm import "
                    f"{path.name} -o NAME.spz --sh-degree 3)")
    # Level 6, zlib's default and what Niantic's library writes with: level 9 took twice as long
    # for a file 0.3 % smaller.
    atomic_write(path, [gzip.compress(payload, compresslevel=6, mtime=0)])
