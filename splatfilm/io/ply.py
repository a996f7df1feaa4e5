"""INRIA-style Gaussian splat PLY files (3D Gaussian Splatting, gsplat, nerfstudio), numpy only.

Writing produces exactly what the original 3DGS `save_ply` and nerfstudio's
`ns-export gaussian-splat` write (gsplat's `export_splats` writes the same minus the three
zero normals)::

    ply
    format binary_little_endian 1.0
    element vertex N
    property float x, y, z, nx, ny, nz, f_dc_0..2, f_rest_0..3K-1, opacity,
                   scale_0..2, rot_0..3          (one `property float NAME` line each)
    end_header

Values are raw parameters: log scales, logit opacity, quaternions (w, x, y, z) as stored
(not normalised); `f_rest` is channel-major (all red coefficients, then green, then blue).

Reading accepts any PLY those tools (or plyfile, SuperSplat, ...) produce: ascii and binary of
either byte order, any property order and type, extra properties and extra elements (ignored),
comments / obj_info, SH degree 0-4 (`scene.sh.MAX_SH_DEGREE`, gsplat's highest: 72 `f_rest_*`)
from the number of `f_rest_*` properties, `red green blue` instead of `f_dc_*` (nerfstudio's
`ply_color_mode=rgb`), and SuperSplat / PlayCanvas compressed PLY (`chunk` element with
`packed_*` vertex properties; lossy by design). Mip-Splatting's `filter_3D` is fused into the
scales and opacities on read, as its `save_fused_ply` does; double positions (a georeferenced
splat) are kept to their precision by `read_ply_centred`. `write_compressed_ply` writes the
compressed layout as PlayCanvas's splat-transform does (Morton-ordered chunks, SH degree <= 3). A binary file is mapped, not read
whole, and an ASCII one split a block at a time: reading costs about the Gaussians' own size.
Every problem is a `SplatfilmError` with one line naming the file.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians, opacity_logit
from splatfilm.scene.sh import MAX_SH_DEGREE, rgb_to_sh0, sh0_to_rgb
from splatfilm.io.atomic import atomic_write
from splatfilm.io.inputs import map_input, trailing_bytes_note

__all__ = ["read_ply", "read_ply_centred", "read_ply_points", "write_ply", "write_compressed_ply", "smallest_three",
           "is_compressed_ply_name", "COMPRESSED_PLY_MAX_SH_DEGREE", "ply_header", "ply_extra_properties"]

# PLY scalar type names (both the classic and the sized spellings) -> numpy type codes.
_TYPES = {
    "char": "i1", "int8": "i1",
    "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4",
    "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_MAX_HEADER_BYTES = 16 * 1024 * 1024
_F_REST = re.compile(r"f_rest_(\d+)$")
# SuperSplat / PlayCanvas compressed PLY: splats per chunk.
_CHUNK_SIZE = 256
# The highest SH band a compressed PLY holds (splat-transform writes 0-3; SuperSplat reads no more).
COMPRESSED_PLY_MAX_SH_DEGREE = 3


@dataclass
class _Property:
    name: str
    code: str  # numpy type code of the value (list: of each item)
    list_code: str | None = None  # numpy type code of a list's length, None for scalars


@dataclass
class _Element:
    name: str
    count: int
    properties: list[_Property] = field(default_factory=list)

    @property
    def has_lists(self) -> bool:
        return any(p.list_code is not None for p in self.properties)

    def names(self) -> list[str]:
        return [p.name for p in self.properties]


def _error(path: Path | str, problem: str) -> SplatfilmError:
    """One-line error naming the file."""
    return SplatfilmError(f"{path}: {' '.join(str(problem).split())}")


def _show(text: str, limit: int = 60) -> str:
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text)


# ---- header --------------------------------------------------------------------------------


def _line(buf, pos: int, limit: int) -> bytes:
    """buf's line from `pos`, up to and with its newline, at most `limit` bytes (a file's readline)."""
    end = buf.find(b"\n", pos, pos + limit)
    return bytes(buf[pos : pos + limit if end < 0 else end + 1])


def _read_header(buf, path: Path) -> tuple[str | None, list[_Element], int]:
    """Parse the header at the start of `buf` (bytes or a mapped file).

    Returns (byte order '<' / '>' or None for ascii, elements, offset of the first byte of data).
    """
    first = _line(buf, 0, 64)
    if first.rstrip(b"\r\n") != b"ply":
        raise _error(path, "not a PLY file (it does not start with a 'ply' line)")
    # Collect the header lines first, so that a missing end_header is reported as such
    # (rather than as whatever the binary data after the last header line looks like).
    raw_lines: list[bytes] = []
    size = len(first)
    while True:
        raw = _line(buf, size, _MAX_HEADER_BYTES)
        size += len(raw)
        if not raw or size > _MAX_HEADER_BYTES:
            raise _error(path, "PLY header has no 'end_header' line")
        if raw.strip() == b"end_header":
            break
        raw_lines.append(raw)
    fmt_seen = False
    order: str | None = None
    elements: list[_Element] = []
    for lineno, raw in enumerate(raw_lines, start=2):
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise _error(path, f"PLY header line {lineno} is not ASCII text") from None
        tokens = line.split()
        if not tokens:
            continue
        key = tokens[0]
        if key in ("comment", "obj_info"):
            continue
        if key == "format":
            if len(tokens) != 3 or tokens[1] not in _FORMATS:
                raise _error(path, f"unsupported PLY format line {_show(line)} (expected ascii, "
                                   "binary_little_endian or binary_big_endian)")
            if tokens[2] not in ("1.0", "1"):
                raise _error(path, f"unsupported PLY version {_show(tokens[2])} (expected 1.0)")
            order = _FORMATS[tokens[1]]
            fmt_seen = True
        elif key == "element":
            if len(tokens) != 3:
                raise _error(path, f"bad PLY header line {lineno}: {_show(line)}")
            try:
                count = int(tokens[2])
            except ValueError:
                count = -1
            if count < 0:
                raise _error(path, f"bad element count in PLY header line {lineno}: {_show(line)}")
            elements.append(_Element(tokens[1], count))
        elif key == "property":
            if not elements:
                raise _error(path, f"PLY header line {lineno} declares a property before any element")
            if len(tokens) == 5 and tokens[1] == "list":
                count_t, item_t, name = tokens[2], tokens[3], tokens[4]
                if count_t not in _TYPES or item_t not in _TYPES or _TYPES[count_t][0] == "f":
                    raise _error(path, f"bad list property in PLY header line {lineno}: {_show(line)}")
                prop = _Property(name, _TYPES[item_t], _TYPES[count_t])
            elif len(tokens) == 3:
                if tokens[1] not in _TYPES:
                    raise _error(path, f"unknown property type {_show(tokens[1])} in PLY header line {lineno}")
                prop = _Property(tokens[2], _TYPES[tokens[1]])
            else:
                raise _error(path, f"bad PLY header line {lineno}: {_show(line)}")
            element = elements[-1]
            if prop.name in element.names():
                raise _error(path, f"property {_show(prop.name)} appears twice in element {_show(element.name)}")
            element.properties.append(prop)
        else:
            raise _error(path, f"unexpected PLY header line {lineno}: {_show(line)}")
    if not fmt_seen:
        raise _error(path, "PLY header has no 'format' line")
    return order, elements, size


# ---- body ----------------------------------------------------------------------------------


def _truncated(path: Path, element: _Element, need: str, have: str) -> SplatfilmError:
    return _error(path, f"file is truncated: element {_show(element.name)} ({element.count} rows) "
                        f"needs {need}, only {have} left")


def _read_binary(data: bytes, order: str, elements: list[_Element], wanted: set[str], path: Path):
    """Columns {element: {property: array}} of the wanted elements, {element: [rows, props]
    matrix} for those whose properties all have one type (the fast path), and the count of
    bytes after the last element (None where a list element is left unread)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    mats: dict[str, np.ndarray] = {}
    last_wanted = max((i for i, e in enumerate(elements) if e.name in wanted), default=-1)
    offset = 0
    for i, el in enumerate(elements):
        if not el.has_lists:
            dtype = np.dtype([(p.name, order + p.code) for p in el.properties])
            need = el.count * dtype.itemsize
            if len(data) - offset < need:
                raise _truncated(path, el, f"{need} bytes", f"{len(data) - offset}")
            if el.name in wanted and el.name not in out:
                codes = {p.code for p in el.properties}
                if dtype.itemsize == 0:  # an element without properties (gsplat's empty 'sh')
                    out[el.name] = {}
                elif len(codes) == 1:
                    width = len(el.properties)
                    mat = np.frombuffer(data, dtype=order + codes.pop(), count=el.count * width, offset=offset)
                    mats[el.name] = mat = mat.reshape(el.count, width)
                    out[el.name] = {p.name: mat[:, j] for j, p in enumerate(el.properties)}
                else:
                    rows = np.frombuffer(data, dtype=dtype, count=el.count, offset=offset)
                    out[el.name] = {p.name: rows[p.name] for p in el.properties}
            offset += need
            continue
        if el.name in wanted and el.name not in out:
            raise _error(path, f"list properties in element {_show(el.name)} are not supported")
        if i > last_wanted:
            return out, mats, None  # nothing we need comes after this variable-size element
        # Skip a variable-size element (say, mesh faces) row by row.
        for _ in range(el.count):
            for p in el.properties:
                if p.list_code is None:
                    offset += np.dtype(p.code).itemsize
                    continue
                width = np.dtype(p.list_code).itemsize
                if len(data) - offset < width:
                    raise _truncated(path, el, "more bytes", "none")
                n = int(np.frombuffer(data, dtype=order + p.list_code, count=1, offset=offset)[0])
                offset += width + n * np.dtype(p.code).itemsize
            if offset > len(data):
                raise _truncated(path, el, "more bytes", "none")
    return out, mats, len(data) - offset


class _Tokens:
    """The whitespace-separated tokens of an ASCII PLY body, a block at a time: splitting a
    large file whole costs a Python object per value, ten times the file's size."""

    _TOKEN = re.compile(rb"\S+")
    _SPACE = re.compile(rb"\s")
    _BLOCK = 1 << 18  # bytes split at a time

    def __init__(self, data) -> None:
        self.data, self.pos = data, 0

    def next(self) -> bytes | None:
        """The next token, None at the end."""
        m = self._TOKEN.search(self.data, self.pos)
        if m is None:
            self.pos = len(self.data)
            return None
        self.pos = m.end()
        return m.group()

    def blocks(self, count: int) -> Iterable[list[bytes]]:
        """The next `count` tokens as lists of consecutive ones (fewer in all at the end)."""
        left, size = count, len(self.data)
        while left > 0 and self.pos < size:
            end = min(size, self.pos + self._BLOCK)
            if end < size:  # never cut a token in two
                m = self._SPACE.search(self.data, end)
                end = size if m is None else m.start()
            tokens = bytes(self.data[self.pos : end]).split(None, left)
            if len(tokens) > left:  # the block holds more than this element: give the rest back
                end -= len(tokens.pop())
            self.pos = end
            left -= len(tokens)
            yield tokens


def _read_ascii(data, elements: list[_Element], wanted: set[str], path: Path):
    """As `_read_binary` (values as float64)."""
    tokens = _Tokens(data)
    out: dict[str, dict[str, np.ndarray]] = {}
    mats: dict[str, np.ndarray] = {}
    last_wanted = max((i for i, e in enumerate(elements) if e.name in wanted), default=-1)
    for i, el in enumerate(elements):
        if not el.has_lists:
            width = len(el.properties)
            need = el.count * width
            keep = el.name in wanted and el.name not in out
            table = np.empty(need if keep else 0, dtype=np.float64)
            got = 0
            for block in tokens.blocks(need):
                if keep:
                    try:
                        table[got : got + len(block)] = np.array(block, dtype=bytes).astype(np.float64)
                    except ValueError:
                        raise _error(path, f"element {_show(el.name)} holds a value that is not a number") from None
                got += len(block)
            if got < need:
                raise _truncated(path, el, f"{need} values", f"{got}")
            if keep:
                mats[el.name] = table = table.reshape(el.count, width)
                out[el.name] = {p.name: table[:, j] for j, p in enumerate(el.properties)}
            continue
        if el.name in wanted and el.name not in out:
            raise _error(path, f"list properties in element {_show(el.name)} are not supported")
        if i > last_wanted:
            break
        for _ in range(el.count):
            for p in el.properties:
                token = tokens.next()
                if token is None:
                    raise _truncated(path, el, "more values", "none")
                if p.list_code is None:
                    continue
                try:
                    n = int(token)
                except ValueError:
                    raise _error(path, f"bad list length in element {_show(el.name)}") from None
                for _ in range(n):
                    if tokens.next() is None:
                        raise _truncated(path, el, "more values", "none")
    return out, mats


# ---- interpretation ------------------------------------------------------------------------


def _f_rest_names(names: Iterable[str], path: Path, where: str) -> list[str]:
    """`f_rest_*` names in index order, checked to be 0..M-1 with M = 3 * ((d+1)^2 - 1)."""
    by_index: dict[int, str] = {}
    for name in names:
        if m := _F_REST.match(name):
            if int(m.group(1)) in by_index:
                raise _error(path, f"{where} has f_rest_{int(m.group(1))} twice")
            by_index[int(m.group(1))] = name
    m = len(by_index)
    if sorted(by_index) != list(range(m)):
        missing = min(set(range(m)) - set(by_index))
        raise _error(path, f"{where} f_rest properties are not numbered 0..{m - 1} (no f_rest_{missing})")
    valid = [3 * ((d + 1) ** 2 - 1) for d in range(MAX_SH_DEGREE + 1)]
    if m % 3 == 0 and m not in valid and math.isqrt(m // 3 + 1) ** 2 == m // 3 + 1:
        raise _error(path, f"{where} has SH degree {math.isqrt(m // 3 + 1) - 1}: splatfilm renders and rotates SH "
                           f"up to degree {MAX_SH_DEGREE}")
    if m not in valid:
        raise _error(path, f"{where} has {m} f_rest properties, which is no SH degree "
                           f"(the count must be 3*((d+1)^2-1): {', '.join(map(str, valid))})")
    return [by_index[i] for i in range(m)]


def _non_finite(counts: np.ndarray, names: list[str], path: Path, what: str) -> SplatfilmError | None:
    """The error for counts [len(names)] of NaN / inf per property, saying how many and where
    (None when there are none)."""
    bad = [(name, int(c)) for name, c in zip(names, counts) if c]
    if not bad:
        return None
    total = sum(c for _, c in bad)
    parts = [f"{c} in {name}" for name, c in bad[:6]]
    more = f", and {len(bad) - 6} more properties" if len(bad) > 6 else ""
    return _error(path, f"{what} {total} non-finite values (NaN/inf): {', '.join(parts)}{more}")


def _check_finite(table: np.ndarray, names: list[str], path: Path, what: str) -> None:
    """Refuse NaN / inf in a [N, len(names)] table, saying how many and in which property."""
    counts = np.count_nonzero(~np.isfinite(table), axis=0) if table.size else np.zeros(len(names), int)
    if (error := _non_finite(counts, names, path, what)) is not None:
        raise error


def _canonical_names(f_rest: list[str]) -> list[str]:
    """The Gaussian properties in INRIA order (without normals), with the file's f_rest names."""
    return ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", *f_rest, "opacity",
            "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


# Rows converted at a time: the temporaries stay a few MB whatever the file's size.
_ROWS = 1 << 13
# Mip-Splatting's 3D smoothing filter: the standard deviation [N] (world units) it adds to
# each scale (autonomousvision/mip-splatting `save_ply`; gaussian-splatting-lightning spells
# it in lower case).
_FILTER_3D = ("filter_3D", "filter_3d")


@dataclass
class _Columns:
    """The Gaussian properties of a file, read a block of rows at a time."""

    names: list[str]  # `_canonical_names`, then "filter_3D" when the file has Mip-Splatting's filter
    count: int
    block: Callable[[int, int], np.ndarray]  # rows r0:r1 -> float32 [r1 - r0, len(names)]
    # rows r0:r1 -> float64 [r1 - r0, 3] positions, for a file that stores them as double
    positions: Callable[[int, int], np.ndarray] | None = None

    @property
    def filter_3d(self) -> bool:
        return self.names[-1] == _FILTER_3D[0]


def _fuse_filter_3d(log_scales: np.ndarray, logits: np.ndarray, filter_3d: np.ndarray) -> None:
    """Bake Mip-Splatting's 3D filter into raw log scales [N,3] and logit opacities [N] (float32,
    in place), as its `save_fused_ply` does: scales sqrt(s^2 + f^2) and opacities
    sigmoid(o) * sqrt(det(S^2) / det(S^2 + f^2 I)), taken back to log / logit.

    Worked in logs (float64), so a Gaussian far smaller than its filter neither underflows to
    opacity 0 nor saturates to 1; one whose filter is 0 keeps its values bit for bit."""
    ls = log_scales.astype(np.float64)
    with np.errstate(divide="ignore"):
        lf = np.log(np.abs(filter_3d.astype(np.float64)))
    fused = 0.5 * np.logaddexp(2 * ls, 2 * lf[:, None])
    log_coef = (ls - fused).sum(axis=1)  # log sqrt(det(S^2) / det(S^2 + f^2 I)) <= 0
    log_p = log_coef - np.logaddexp(0.0, -logits.astype(np.float64))
    with np.errstate(divide="ignore"):
        fused_logit = log_p - np.log(-np.expm1(log_p))
    changed = log_coef < 0
    log_scales[:] = fused
    logits[changed] = fused_logit[changed]


def _assemble(cols: _Columns, path: Path, notes: list[str] | None, centre: bool) -> tuple[Gaussians, np.ndarray | None]:
    """Gaussians from `cols`, filled a block of rows at a time (each output written once, no
    whole-file temporaries), and the float64 origin [3] their means are relative to (centre,
    double positions only; else None)."""
    n, names = cols.count, cols.names
    k = (len(names) - cols.filter_3d - 14) // 3
    r = 6 + 3 * k
    origin = None
    if cols.positions is not None and centre:
        lo, hi = _position_bounds(cols)
        origin = np.round((lo + hi) / 2) + 0.0 if n else np.zeros(3)  # + 0.0: no -0 in a note
    out = {"means": np.empty((n, 3), np.float32), "quats": np.empty((n, 4), np.float32),
           "scales": np.empty((n, 3), np.float32), "opacities": np.empty(n, np.float32),
           "sh0": np.empty((n, 1, 3), np.float32), "shN": np.empty((n, k, 3), np.float32)}
    bad = np.zeros(len(names), np.int64)
    saturated = 0  # opacities of +-inf: alpha 1 or 0 exactly
    cut, lo, hi = 0.0, np.full(3, np.inf), np.full(3, -np.inf)  # float32's loss on double positions
    for r0 in range(0, n, _ROWS):
        r1 = min(n, r0 + _ROWS)
        t = None  # the last block goes before the next is made
        t = cols.block(r0, r1)
        infinite = np.isinf(t[:, r])
        if infinite.any():
            # splat-transform decodes an 8-bit alpha of 255 (or 0) to a logit of +inf (-inf); the
            # viewers' sigmoid takes it as alpha 1 (0): read as a logit float32's sigmoid rounds so.
            saturated += int(infinite.sum())
            t[infinite, r] = np.sign(t[infinite, r]) * _SATURATED_LOGIT
        if not np.isfinite(t).all():
            bad += np.count_nonzero(~np.isfinite(t), axis=0)
        if bad.any():
            continue  # counted for the message, never used
        if cols.filter_3d:
            scales, opacity = t[:, r + 1 : r + 4], t[:, r]
            _fuse_filter_3d(scales, opacity, t[:, -1])
        out["means"][r0:r1] = t[:, 0:3]
        if cols.positions is not None:
            x = cols.positions(r0, r1)
            if origin is not None:
                out["means"][r0:r1] = x - origin
            else:
                cut = max(cut, float(np.abs(x - t[:, 0:3]).max(initial=0.0)))
                lo, hi = np.minimum(lo, x.min(axis=0)), np.maximum(hi, x.max(axis=0))
        out["quats"][r0:r1] = t[:, r + 4 : r + 8]
        out["scales"][r0:r1] = t[:, r + 1 : r + 4]
        out["opacities"][r0:r1] = t[:, r]
        out["sh0"][r0:r1] = t[:, 3:6].reshape(r1 - r0, 1, 3)
        for c in range(3):  # channel-major -> [N, K, 3]
            out["shN"][r0:r1, :, c] = t[:, 6 + c * k : 6 + (c + 1) * k]
    if (error := _non_finite(bad, names, path, "has")) is not None:
        raise error
    if notes is not None and saturated:
        notes.append(f"note: {path}: {saturated} opacities are +-inf (alpha 1 or 0), read as +-{_SATURATED_LOGIT:g}")
    if notes is not None and cols.filter_3d:
        notes.append(f"note: {path}: Mip-Splatting's 3D filter (filter_3D) fused into the scales and opacities, "
                     "as its save_fused_ply does")
    extent = float(np.linalg.norm(hi - lo)) if n else 0.0
    if notes is not None and origin is None and cut > _FLOAT32_CUT * extent:
        notes.append(f"note: {path}: positions are stored as double, {float(np.linalg.norm(lo + hi)) / 2:.6g} units "
                     f"from the origin; as float32 they move by up to {cut:.2g} units, over 1/{1 / _FLOAT32_CUT:.0f} "
                     f"of the splat's size ({extent:.6g}): import it to store it centred")
    g = Gaussians(**{name: torch.from_numpy(a) for name, a in out.items()})
    return g, origin


# An opacity logit of +-inf is read as this: float32's sigmoid of it is exactly 1 (or 2e-9).
_SATURATED_LOGIT = 20.0
# A note says so when float32 moves double positions by more than this share of the splat's size.
_FLOAT32_CUT = 1e-4


def _position_bounds(cols: _Columns) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest double positions [3] (float64) of `cols` (non-finite ones left out:
    `_assemble` refuses them)."""
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for r0 in range(0, cols.count, _ROWS):
        x = cols.positions(r0, min(cols.count, r0 + _ROWS))
        x = x[np.isfinite(x).all(axis=1)]
        if len(x):
            lo, hi = np.minimum(lo, x.min(axis=0)), np.maximum(hi, x.max(axis=0))
    return (lo, hi) if np.isfinite(lo).all() else (np.zeros(3), np.zeros(3))


def _inria_columns(el: _Element, cols: dict[str, np.ndarray], mat: np.ndarray | None, path: Path) -> _Columns:
    """The Gaussian properties of an INRIA-layout vertex element (views of the file's values,
    converted a block at a time)."""
    names = set(cols)
    required = ["x", "y", "z", "opacity", *(f"scale_{i}" for i in range(3)), *(f"rot_{i}" for i in range(4))]
    dc = [f"f_dc_{i}" for i in range(3)]
    rgb = ["red", "green", "blue"]
    use_rgb = not any(k in names for k in dc) and all(k in names for k in rgb)
    if not use_rgb:
        required[3:3] = dc
    missing = [k for k in required if k not in names]
    if missing:
        hint = ""
        if {"x", "y", "z"} <= names and not any(k.startswith(("scale_", "rot_")) for k in names):
            hint = " (this looks like a plain point cloud, not Gaussian splats)"
        raise _error(path, f"vertex element is missing properties: {', '.join(missing)}{hint}")
    f_rest = _f_rest_names(names, path, "vertex element")
    wanted = _canonical_names(f_rest)
    source = dict(zip(wanted, wanted))
    if (filt := next((k for k in _FILTER_3D if k in names), None)) is not None:
        wanted.append(_FILTER_3D[0])
        source[_FILTER_3D[0]] = filt
    types = {p.name: p.code for p in el.properties}
    positions = None
    if any(types[k] == "f8" for k in "xyz"):  # a georeferenced splat: float32 would cut it to cm or dm
        positions = lambda r0, r1: np.stack([cols[k][r0:r1] for k in "xyz"], axis=1).astype(np.float64)  # noqa: E731
    if mat is not None and not use_rgb:
        # Fast path: one gather of the wanted columns, one conversion.
        position = {name: j for j, name in enumerate(el.names())}
        index = [position[source[k]] for k in wanted]
        block = lambda r0, r1: np.take(mat[r0:r1], index, axis=1).astype(np.float32, copy=False)  # noqa: E731
        return _Columns(wanted, el.count, block, positions)

    def block(r0: int, r1: int) -> np.ndarray:
        table = np.empty((r1 - r0, len(wanted)), dtype=np.float32)
        for j, k in enumerate(wanted):
            if use_rgb and k in dc:  # nerfstudio ply_color_mode=rgb: uchar 0-255 (or float 0-1) colours
                c = cols[rgb[dc.index(k)]][r0:r1].astype(np.float64)
                if types[rgb[dc.index(k)]][0] in "iu":
                    c = c / 255.0
                table[:, j] = rgb_to_sh0(c)
            else:
                table[:, j] = cols[source[k]][r0:r1]
        return table

    return _Columns(wanted, el.count, block, positions)


def _is_compressed(elements: dict[str, _Element]) -> bool:
    return "chunk" in elements or "packed_position" in elements.get("vertex", _Element("", 0)).names()


def _unorm(v: np.ndarray, shift: int, bits: int) -> np.ndarray:
    mask = (1 << bits) - 1
    return ((v >> np.uint32(shift)) & np.uint32(mask)).astype(np.float64) / mask


def _decompress(by_name: dict[str, _Element], data: dict, path: Path) -> _Columns:
    """Decode SuperSplat / PlayCanvas compressed PLY into INRIA-named float32 columns."""
    v, chunk = data.get("vertex", {}), data.get("chunk", {})
    packed = ["packed_position", "packed_rotation", "packed_scale", "packed_color"]
    bounds = [f"{m}_{a}" for m in ("min", "max") for a in "xyz"]
    bounds += [f"{m}_scale_{a}" for m in ("min", "max") for a in "xyz"]
    missing = [f"vertex.{k}" for k in packed if k not in v] + [f"chunk.{k}" for k in bounds if k not in chunk]
    if "chunk" not in by_name or "vertex" not in by_name or missing:
        what = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        what = what or "its 'chunk' or 'vertex' element"
        raise _error(path, f"compressed PLY (SuperSplat) is missing {what}; decompress it with "
                           "`npx @playcanvas/splat-transform in.compressed.ply out.ply`")
    n, n_chunks = by_name["vertex"].count, by_name["chunk"].count
    if n_chunks != -(-n // _CHUNK_SIZE):
        raise _error(path, f"compressed PLY has {n_chunks} chunks for {n} splats "
                           f"(expected {-(-n // _CHUNK_SIZE)} of {_CHUNK_SIZE})")
    f_rest: list[str] = []
    sh = data.get("sh", {})
    if "sh" in by_name:
        if by_name["sh"].count != n:
            raise _error(path, f"compressed PLY has {by_name['sh'].count} rows of SH for {n} splats")
        f_rest = _f_rest_names(sh, path, "sh element")
    names = _canonical_names(f_rest)
    bounds64 = {k: np.asarray(a, dtype=np.float64) for k, a in chunk.items()}  # one row a chunk of 256

    # Decoded a block of rows at a time, as `_assemble` asks for them: a whole-file decode held
    # every attribute as float64 per splat (about 18x the file at SH degree 3). The arithmetic
    # stays float64, so each value rounds to float32 once, as before.
    def block(r0: int, r1: int) -> np.ndarray:
        ci = np.arange(r0, r1) // _CHUNK_SIZE
        c = {k: a[ci] for k, a in bounds64.items()}
        u = {k: np.asarray(v[k][r0:r1]).astype(np.uint32) for k in packed}

        def lerp(lo: str, hi: str, t: np.ndarray) -> np.ndarray:
            return c[lo] * (1 - t) + c[hi] * t

        out: dict[str, np.ndarray] = {}
        for axis, (shift, bits) in zip("xyz", [(21, 11), (11, 10), (0, 11)]):
            out[axis] = lerp(f"min_{axis}", f"max_{axis}", _unorm(u["packed_position"], shift, bits))
        for i, (axis, (shift, bits)) in enumerate(zip("xyz", [(21, 11), (11, 10), (0, 11)])):
            out[f"scale_{i}"] = lerp(f"min_scale_{axis}", f"max_scale_{axis}", _unorm(u["packed_scale"], shift, bits))
        # Rotation: 2 bits for the index of the largest component, then the other three.
        r = u["packed_rotation"]
        abc = [(_unorm(r, s, 10) - 0.5) * math.sqrt(2.0) for s in (20, 10, 0)]
        largest = np.sqrt(np.maximum(0.0, 1.0 - sum(a * a for a in abc)))
        which = (r >> np.uint32(30)).astype(np.int64)
        q = np.empty((r1 - r0, 4))
        for w in range(4):
            sel = which == w
            others = [j for j in range(4) if j != w]
            q[sel, w] = largest[sel]
            for j, a in zip(others, abc):
                q[sel, j] = a[sel]
        for i in range(4):
            out[f"rot_{i}"] = q[:, i]
        # Colour and opacity: 8 bits each; colour bounds per chunk in newer files.
        col = u["packed_color"]
        for i, (ch, shift) in enumerate(zip("rgb", (24, 16, 8))):
            t = _unorm(col, shift, 8)
            if f"min_{ch}" in c and f"max_{ch}" in c:
                t = lerp(f"min_{ch}", f"max_{ch}", t)
            out[f"f_dc_{i}"] = rgb_to_sh0(t)
        out["opacity"] = opacity_logit(_unorm(col, 0, 8), 0.5 / 255)
        for k in f_rest:
            b = np.asarray(sh[k][r0:r1]).astype(np.float64)
            t = np.where(b <= 0, 0.0, np.where(b >= 255, 1.0, (b + 0.5) / 256))
            out[k] = (t - 0.5) * 8
        table = np.empty((r1 - r0, len(names)), dtype=np.float32)
        for j, k in enumerate(names):
            table[:, j] = out[k]
        return table

    return _Columns(names, n, block)


def _read_elements(path: Path, wanted_of) -> tuple[dict[str, _Element], dict, dict, int | None]:
    """Parse a PLY file: (elements by name, columns {element: {property: array}}, matrices,
    the bytes a binary file holds after its last element: None where not known).
    `wanted_of(by_name)` names the elements to load. A binary file's columns are views of the
    file mapped into memory (`io.inputs.map_input`): copy what must outlive them."""
    buf = map_input(path, "PLY file")
    order, elements, start = _read_header(buf, path)
    body = memoryview(buf)[start:]
    by_name: dict[str, _Element] = {}
    for el in elements:
        by_name.setdefault(el.name, el)
    if "vertex" not in by_name:
        raise _error(path, "PLY file has no 'vertex' element")
    wanted = wanted_of(by_name)
    left = None  # an ASCII body ends in whitespace as it pleases
    if order is None:
        data, mats = _read_ascii(body, elements, wanted, path)
    else:
        data, mats, left = _read_binary(body, order, elements, wanted, path)
    return by_name, data, mats, left


def _read_gaussians(path: str | os.PathLike, notes: list[str] | None, centre: bool) -> tuple[Gaussians, np.ndarray | None]:
    path = Path(path)
    by_name, data, mats, left = _read_elements(
        path, lambda els: {"vertex", "chunk", "sh"} if _is_compressed(els) else {"vertex"})
    if notes is not None and left:
        notes.append(trailing_bytes_note(path, left, "the rows its header gives"))
    if _is_compressed(by_name):
        cols = _decompress(by_name, data, path)
    else:
        cols = _inria_columns(by_name["vertex"], data["vertex"], mats.get("vertex"), path)
    return _assemble(cols, path, notes, centre)


def read_ply(path: str | os.PathLike, notes: list[str] | None = None) -> Gaussians:
    """Read Gaussian splats from a PLY file into float32 `Gaussians` (raw parameters).

    Accepts the INRIA layout in any property order/type, ascii or binary, extra properties and
    elements (ignored), SH degree 0-4 from the `f_rest_*` count, and SuperSplat compressed PLY.
    Mip-Splatting's `filter_3D` is fused into the scales and opacities (as its
    `save_fused_ply` writes them). Double positions are rounded to float32 (`read_ply_centred`
    keeps them). notes: a list the one-line notes for the reader ("note: FILE: ...": the
    filter fused, double positions that float32 moves by over 1/10000 of the splat's size)
    are appended to."""
    return _read_gaussians(path, notes, centre=False)[0]


def read_ply_centred(path: str | os.PathLike, notes: list[str] | None = None) -> tuple[Gaussians, np.ndarray | None]:
    """As `read_ply`, keeping double positions (a georeferenced splat, 4e6 m out) to their
    precision: (Gaussians, origin). For a file with `property double x/y/z`, origin is float64
    [3] (world units: the centre of the positions' bounds, rounded to whole units) and the
    Gaussians' means are the file's positions less origin, taken in float64, so
    x_file = means + origin; for any other file, origin is None and the Gaussians are
    `read_ply`'s, bit for bit."""
    return _read_gaussians(path, notes, centre=True)


def read_ply_points(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """A plain point cloud (COLMAP / nerfstudio `sparse_pc.ply`): xyz [N,3] float64 (a file's
    double coordinates keep their precision: a georeferenced cloud's cm at 4e6 m) and, when
    the file has `red green blue`, colours [N,3] in [0,1] float32 (else None)."""
    path = Path(path)
    _, data, _, _ = _read_elements(path, lambda els: {"vertex"})
    cols = data["vertex"]
    missing = [k for k in ("x", "y", "z") if k not in cols]
    if missing:
        raise _error(path, f"vertex element is missing properties: {', '.join(missing)}")
    xyz = np.stack([cols[k] for k in ("x", "y", "z")], axis=1).astype(np.float64)
    _check_finite(xyz, ["x", "y", "z"], path, "has")
    rgb = None
    if all(k in cols for k in ("red", "green", "blue")):
        raw = np.stack([cols[k] for k in ("red", "green", "blue")], axis=1)
        scale = 255.0 if raw.dtype.kind in "iu" or raw.max(initial=0) > 1.0 else 1.0
        rgb = (raw.astype(np.float32) / scale).clip(0.0, 1.0)
    return xyz, rgb


# ---- writing -------------------------------------------------------------------------------


def _property_names(k: int) -> list[str]:
    return [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
        *(f"f_rest_{i}" for i in range(3 * k)),
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ]


def ply_header(n: int, sh_degree: int) -> bytes:
    """The header `write_ply` writes for `n` Gaussians of SH degree `sh_degree`."""
    k = (sh_degree + 1) ** 2 - 1
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    lines += [f"property float {name}" for name in _property_names(k)]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def write_ply(path: str | os.PathLike, g: Gaussians, sh_degree: int | None = None) -> None:
    """Write `g` as an INRIA PLY (binary little-endian float32, raw parameters), atomically.

    `sh_degree` truncates or zero-pads the SH bands (default: the degree `g` has).
    Non-finite values are refused (SplatfilmError) rather than written.
    """
    path = Path(path)
    if sh_degree is not None:
        if not (isinstance(sh_degree, int) and 0 <= sh_degree <= MAX_SH_DEGREE):
            raise _error(path, f"sh_degree must be an integer 0-{MAX_SH_DEGREE}, got {sh_degree!r}")
        g = g.with_sh_degree(sh_degree)
    g = g.detach().to(device="cpu", dtype=torch.float32)
    n, k = len(g), g.shN.shape[1]
    table = np.concatenate(
        [
            g.means.numpy(),
            np.zeros((n, 3), dtype=np.float32),
            g.sh0.reshape(n, 3).numpy(),
            g.shN.permute(0, 2, 1).reshape(n, 3 * k).numpy(),  # channel-major
            g.opacities.reshape(n, 1).numpy(),
            g.scales.numpy(),
            g.quats.numpy(),
        ],
        axis=1,
    ).astype("<f4")
    _check_finite(table, _property_names(k), path, "cannot write Gaussians with")
    atomic_write(path, [ply_header(n, g.sh_degree), memoryview(np.ascontiguousarray(table).reshape(-1).view(np.uint8))])


# Properties the reader turns into Gaussians (or that carry nothing: INRIA writers' zero normals).
# What read_ply keeps (filter_3D: fused into the scales and opacities).
_GAUSSIAN_PROPERTY = re.compile(r"^(x|y|z|nx|ny|nz|f_dc_\d+|f_rest_\d+|opacity|scale_\d|rot_\d|red|green|blue|filter_3[dD])$")


def ply_extra_properties(path: str | os.PathLike) -> list[str]:
    """The vertex properties of a Gaussian PLY that `read_ply` does not keep (per-Gaussian ids,
    segment labels, Mip-Splatting's `filter_3D`, ...), in file order; reads the header only. A
    SuperSplat compressed PLY has none (its packed properties are all decoded). Normals are not
    listed: INRIA-style writers store zeros there."""
    path = Path(path)
    _, elements, _ = _read_header(map_input(path, "PLY file"), path)
    by_name = {el.name: el for el in reversed(elements)}
    if "vertex" not in by_name or _is_compressed(by_name):
        return []
    return [n for n in by_name["vertex"].names() if not _GAUSSIAN_PROPERTY.match(n)]


def ply_mip_filtered(path: str | os.PathLike) -> bool:
    """Whether a Gaussian PLY carries Mip-Splatting's 3D filter (`filter_3D`): it was trained
    with Mip-Splatting's 2D filter too, which is gsplat's antialiased mode; reads the header only."""
    path = Path(path)
    _, elements, _ = _read_header(map_input(path, "PLY file"), path)
    return any(n in _FILTER_3D for el in elements if el.name == "vertex" for n in el.names())


# ---- compressed PLY (SuperSplat / PlayCanvas) --------------------------------------------------


def is_compressed_ply_name(path: str | os.PathLike) -> bool:
    """Whether `path` is named as a SuperSplat compressed PLY (`*.compressed.ply`, any case)."""
    return Path(path).name.lower().endswith(".compressed.ply")


def _part1by2(v: np.ndarray) -> np.ndarray:
    """The low 10 bits of `v` (uint32) spread to every third bit, for a 30-bit Morton code."""
    v = v & np.uint32(0x3FF)
    v = (v ^ (v << np.uint32(16))) & np.uint32(0xFF0000FF)
    v = (v ^ (v << np.uint32(8))) & np.uint32(0x0300F00F)
    v = (v ^ (v << np.uint32(4))) & np.uint32(0x030C30C3)
    return (v ^ (v << np.uint32(2))) & np.uint32(0x09249249)


def _morton_sorted(xyz: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`index` reordered by the Morton code of xyz[index] on a 1024^3 grid over their bounds;
    a run of over one chunk sharing a code is ordered again on its own bounds (as
    splat-transform's sortMortonOrder), so dense clusters still get tight chunks."""
    out = index.copy()
    stack = [(0, len(out))]
    while stack:
        a, b = stack.pop()
        p = xyz[out[a:b]]
        lo, hi = p.min(axis=0), p.max(axis=0)
        length = hi - lo
        if not (length > 0).any():
            continue  # all at one point: any order is as good
        mul = np.where(length > 0, 1024.0 / np.where(length > 0, length, 1.0), 0.0)
        cell = np.minimum(1023.0, (p - lo) * mul).astype(np.uint32)
        code = (_part1by2(cell[:, 2]) << np.uint32(2)) + (_part1by2(cell[:, 1]) << np.uint32(1)) + _part1by2(cell[:, 0])
        order = np.argsort(code, kind="stable")
        out[a:b] = out[a:b][order]
        code = code[order]
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
        ends = np.r_[starts[1:], len(code)]
        big = ends - starts > _CHUNK_SIZE
        stack.extend((a + int(s), a + int(e)) for s, e in zip(starts[big], ends[big]))
    return out


def _unit(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """v [C,256,...] as a fraction of each chunk's range lo..hi [C,1,...]: 0 at or below lo, 1
    at or above hi, 0 where the range is under 1e-5 (splat-transform's `normalize`)."""
    span = hi - lo
    t = (v - lo) / np.where(span < 1e-5, 1.0, span)
    t = np.where(span < 1e-5, 0.0, t)
    return np.where(v <= lo, 0.0, np.where(v >= hi, 1.0, t))


def _pack_unorm(t: np.ndarray, bits: int) -> np.ndarray:
    mask = (1 << bits) - 1
    return np.clip(np.floor(t * mask + 0.5), 0, mask).astype(np.uint32)


def _pack_11_10_11(t: np.ndarray) -> np.ndarray:
    """[..., 3] fractions in [0,1] -> uint32: 11 bits x, 10 bits y, 11 bits z (x highest)."""
    return (_pack_unorm(t[..., 0], 11) << np.uint32(21)) | (_pack_unorm(t[..., 1], 10) << np.uint32(11)) \
        | _pack_unorm(t[..., 2], 11)


def smallest_three(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quaternions [N,4] (w, x, y, z; any length, a zero one taken as the identity) in the
    smallest-three form PlayCanvas's formats share (compressed PLY, SOG): the index [N] (int64)
    of the largest |component|, and the other three in order [N,3] (float64; sign chosen so the
    largest is positive, so each lies within +-1/sqrt(2)) mapped to fractions in [0, 1]."""
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), np.array([1.0, 0.0, 0.0, 0.0]))
    largest = np.argmax(np.abs(q), axis=1)
    q = q * np.where(np.take_along_axis(q, largest[:, None], axis=1) < 0, -1.0, 1.0)
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    return largest, np.take_along_axis(q, others, axis=1) * (math.sqrt(2) / 2) + 0.5


def _pack_rotation(q: np.ndarray) -> np.ndarray:
    """Quaternions [N,4] -> uint32: 2 bits for the index of the largest |component|, then the
    other three (`smallest_three`) in 10 bits each, first one highest."""
    largest, others = smallest_three(q)
    packed = _pack_unorm(others, 10)
    return (largest.astype(np.uint32) << np.uint32(30)) | (packed[:, 0] << np.uint32(20)) \
        | (packed[:, 1] << np.uint32(10)) | packed[:, 2]


def _compressed_ply_header(n: int, sh_degree: int, comment: str = "Generated by splatfilm") -> bytes:
    """The header `write_compressed_ply` writes for `n` Gaussians of SH degree `sh_degree` (0-3)."""
    chunk = [f"{m}_{a}" for m in ("min", "max") for a in "xyz"]
    chunk += [f"{m}_scale_{a}" for m in ("min", "max") for a in "xyz"]
    chunk += [f"{m}_{c}" for m in ("min", "max") for c in "rgb"]
    lines = ["ply", "format binary_little_endian 1.0", f"comment {comment}",
             f"element chunk {-(-n // _CHUNK_SIZE)}", *(f"property float {k}" for k in chunk),
             f"element vertex {n}",
             *(f"property uint packed_{k}" for k in ("position", "rotation", "scale", "color"))]
    if sh_degree:  # as splat-transform: no sh element at degree 0
        lines += [f"element sh {n}", *(f"property uchar f_rest_{i}" for i in range(3 * ((sh_degree + 1) ** 2 - 1)))]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def write_compressed_ply(path: str | os.PathLike, g: Gaussians, sh_degree: int | None = None) -> np.ndarray:
    """Write `g` as a SuperSplat / PlayCanvas compressed PLY, atomically, as splat-transform
    writes it; returns the order the file holds them in (int64 [N]: row r is g[order[r]]), which
    whatever is kept per Gaussian beside the file (a rig's rows) must follow. The file holds the
    Gaussians in Morton order of their means (so each chunk is small), in chunks of 256 (the
    last one's bounds over its own Gaussians), each chunk's float32 min/max of position, log
    scale (bounds clamped to [-20, 20]) and base colour (0.5 + C0 * sh0); per Gaussian uint32
    position 11/10/11 bits and log scale 11/10/11 bits of those ranges, rotation smallest-three
    2+10/10/10, colour and opacity (sigmoid) 8 bits each; SH bands 1-3 as uchar trunc((v / 8 +
    0.5) * 256) clamped to 0-255 (|v| up to 4). Lossy by design (`read_ply` decodes it):
    positions to 1/2047 (y: 1/1023) of their chunk's extent.

    `sh_degree` truncates or zero-pads the SH bands (default: the degree `g` has); bands above 3,
    which the format has no place for, are dropped. Non-finite values are refused
    (SplatfilmError) rather than written. Numpy throughout: 2M Gaussians take seconds."""
    path = Path(path)
    degree = g.sh_degree if sh_degree is None else sh_degree
    if not (isinstance(degree, int) and 0 <= degree <= MAX_SH_DEGREE):
        raise _error(path, f"sh_degree must be an integer 0-{MAX_SH_DEGREE}, got {sh_degree!r}")
    g = g.with_sh_degree(min(degree, COMPRESSED_PLY_MAX_SH_DEGREE)).detach().to(device="cpu", dtype=torch.float32)
    n, k = len(g), g.shN.shape[1]
    shn = g.shN.permute(0, 2, 1).reshape(n, 3 * k).numpy()  # channel-major, as f_rest
    parts = [g.means.numpy(), g.sh0.reshape(n, 3).numpy(), shn, g.opacities.reshape(n, 1).numpy(),
             g.scales.numpy(), g.quats.numpy()]
    bad = np.concatenate([np.count_nonzero(~np.isfinite(a), axis=0) for a in parts])  # no [N, 62] copy
    if (error := _non_finite(bad, _canonical_names([f"f_rest_{i}" for i in range(3 * k)]), path,
                             "cannot write Gaussians with")) is not None:
        raise error
    order = _morton_sorted(g.means.numpy().astype(np.float64), np.arange(n)) if n else np.arange(0, dtype=np.int64)
    n_chunks = -(-n // _CHUNK_SIZE)
    # The last chunk is filled out with its last Gaussian, which leaves its bounds as they are.
    padded = np.concatenate([order, np.full(n_chunks * _CHUNK_SIZE - n, order[-1] if n else 0, order.dtype)])

    def chunked(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float64)[padded].reshape(n_chunks, _CHUNK_SIZE, a.shape[1])

    xyz, log_s = chunked(g.means.numpy()), chunked(g.scales.numpy())
    rgb = chunked(sh0_to_rgb(g.sh0.reshape(n, 3).numpy()))
    # float32 bounds, as stored: the packing is made against what the reader will see.
    bounds = {}
    for name, v, clamp in (("xyz", xyz, None), ("scale", log_s, 20.0), ("rgb", rgb, None)):
        lo, hi = v.min(axis=1, keepdims=True), v.max(axis=1, keepdims=True)
        if clamp is not None:  # a log scale can be -inf-like: keep the range finite
            lo, hi = np.clip(lo, -clamp, clamp), np.clip(hi, -clamp, clamp)
        bounds[name] = (lo.astype(np.float32).astype(np.float64), hi.astype(np.float32).astype(np.float64))
    with np.errstate(over="ignore"):  # a logit under -709: exp is inf and the opacity 0, as it should be
        opacity = 1.0 / (1.0 + np.exp(-chunked(g.opacities.numpy().reshape(n, 1))))
    vertex = np.empty((n_chunks, _CHUNK_SIZE, 4), dtype="<u4")
    vertex[..., 0] = _pack_11_10_11(_unit(xyz, *bounds["xyz"]))
    vertex[..., 1] = _pack_rotation(chunked(g.quats.numpy()).reshape(-1, 4)).reshape(n_chunks, _CHUNK_SIZE)
    vertex[..., 2] = _pack_11_10_11(_unit(log_s, *bounds["scale"]))
    colour = _pack_unorm(np.concatenate([_unit(rgb, *bounds["rgb"]), opacity], axis=2), 8)
    vertex[..., 3] = (colour[..., 0] << np.uint32(24)) | (colour[..., 1] << np.uint32(16)) \
        | (colour[..., 2] << np.uint32(8)) | colour[..., 3]
    chunk = np.concatenate([bounds["xyz"][0], bounds["xyz"][1], bounds["scale"][0], bounds["scale"][1],
                            bounds["rgb"][0], bounds["rgb"][1]], axis=2).reshape(n_chunks, 18).astype("<f4")
    parts = [_compressed_ply_header(n, g.sh_degree), memoryview(chunk.reshape(-1).view(np.uint8)),
             memoryview(np.ascontiguousarray(vertex.reshape(-1, 4)[:n]).reshape(-1).view(np.uint8))]
    if k:
        # trunc((v / 8 + 0.5) * 256) = floor(32 v) + 128 wherever it is not clamped to 0, and
        # exact in float32 (32 v is), which spares a float64 copy of every coefficient.
        sh = np.clip(np.floor(shn[order] * np.float32(32)) + np.float32(128), 0, 255).astype(np.uint8)
        parts.append(memoryview(np.ascontiguousarray(sh).reshape(-1)))
    atomic_write(path, parts)
    return order
