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
`packed_*` vertex properties; lossy by design).
Every problem is a `SplatfilmError` with one line naming the file.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians, opacity_logit
from splatfilm.scene.sh import MAX_SH_DEGREE, rgb_to_sh0
from splatfilm.io.atomic import atomic_write, read_input

__all__ = ["read_ply", "read_ply_points", "write_ply", "ply_header", "ply_extra_properties"]

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


def _read_header(f, path: Path) -> tuple[str | None, list[_Element]]:
    """Parse the header of an open binary file, leaving it at the first byte of data.

    Returns (byte order '<' / '>' or None for ascii, elements).
    """
    first = f.readline(64)
    if first.rstrip(b"\r\n") != b"ply":
        raise _error(path, "not a PLY file (it does not start with a 'ply' line)")
    # Collect the header lines first, so that a missing end_header is reported as such
    # (rather than as whatever the binary data after the last header line looks like).
    raw_lines: list[bytes] = []
    size = len(first)
    while True:
        raw = f.readline(_MAX_HEADER_BYTES)
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
    return order, elements


# ---- body ----------------------------------------------------------------------------------


def _truncated(path: Path, element: _Element, need: str, have: str) -> SplatfilmError:
    return _error(path, f"file is truncated: element {_show(element.name)} ({element.count} rows) "
                        f"needs {need}, only {have} left")


def _read_binary(data: bytes, order: str, elements: list[_Element], wanted: set[str], path: Path):
    """Columns {element: {property: array}} of the wanted elements, and {element: [rows, props]
    matrix} for those whose properties all have one type (the fast path)."""
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
            break  # nothing we need comes after this variable-size element
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
    return out, mats


def _read_ascii(data: bytes, elements: list[_Element], wanted: set[str], path: Path):
    """As `_read_binary` (values as float64)."""
    tokens = data.split()
    out: dict[str, dict[str, np.ndarray]] = {}
    mats: dict[str, np.ndarray] = {}
    last_wanted = max((i for i, e in enumerate(elements) if e.name in wanted), default=-1)
    pos = 0
    for i, el in enumerate(elements):
        if not el.has_lists:
            width = len(el.properties)
            need = el.count * width
            if len(tokens) - pos < need:
                raise _truncated(path, el, f"{need} values", f"{len(tokens) - pos}")
            if el.name in wanted and el.name not in out:
                try:
                    table = np.array(tokens[pos : pos + need], dtype=bytes).astype(np.float64)
                except ValueError:
                    raise _error(path, f"element {_show(el.name)} holds a value that is not a number") from None
                mats[el.name] = table = table.reshape(el.count, width)
                out[el.name] = {p.name: table[:, j] for j, p in enumerate(el.properties)}
            pos += need
            continue
        if el.name in wanted and el.name not in out:
            raise _error(path, f"list properties in element {_show(el.name)} are not supported")
        if i > last_wanted:
            break
        for _ in range(el.count):
            for p in el.properties:
                if pos >= len(tokens):
                    raise _truncated(path, el, "more values", "none")
                if p.list_code is None:
                    pos += 1
                    continue
                try:
                    n = int(tokens[pos])
                except ValueError:
                    raise _error(path, f"bad list length in element {_show(el.name)}") from None
                pos += 1 + n
        if pos > len(tokens):
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


def _check_finite(table: np.ndarray, names: list[str], path: Path, what: str) -> None:
    """Refuse NaN / inf in a [N, len(names)] table, saying how many and in which property."""
    counts = np.count_nonzero(~np.isfinite(table), axis=0) if table.size else np.zeros(len(names), int)
    bad = [(name, int(c)) for name, c in zip(names, counts) if c]
    if bad:
        total = sum(c for _, c in bad)
        parts = [f"{c} in {name}" for name, c in bad[:6]]
        more = f", and {len(bad) - 6} more properties" if len(bad) > 6 else ""
        raise _error(path, f"{what} {total} non-finite values (NaN/inf): {', '.join(parts)}{more}")


def _canonical_names(f_rest: list[str]) -> list[str]:
    """The Gaussian properties in INRIA order (without normals), with the file's f_rest names."""
    return ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", *f_rest, "opacity",
            "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def _assemble(table: np.ndarray, names: list[str], path: Path) -> Gaussians:
    """Gaussians from a float32 [N, 17 + 3K] table in `_canonical_names` order."""
    _check_finite(table, names, path, "has")
    n, k = table.shape[0], (table.shape[1] - 14) // 3
    r = 6 + 3 * k
    tt = torch.from_numpy(np.require(table, dtype=np.float32, requirements=["C", "W"]))
    own = lambda a: a.clone(memory_format=torch.contiguous_format)  # noqa: E731
    return Gaussians(
        means=own(tt[:, 0:3]),
        quats=own(tt[:, r + 4 : r + 8]),
        scales=own(tt[:, r + 1 : r + 4]),
        opacities=own(tt[:, r]),
        sh0=own(tt[:, 3:6].reshape(n, 1, 3)),
        shN=own(tt[:, 6:r].reshape(n, 3, k).transpose(1, 2)),  # channel-major -> [N, K, 3]
    )


def _inria_table(el: _Element, cols: dict[str, np.ndarray], mat: np.ndarray | None, path: Path):
    """(float32 table, names) of the Gaussian properties of an INRIA-layout vertex element."""
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
    if mat is not None and not use_rgb:
        # Fast path: one gather of the wanted columns, one conversion.
        position = {name: j for j, name in enumerate(el.names())}
        table = np.take(mat, [position[k] for k in wanted], axis=1).astype(np.float32, copy=False)
        return table, wanted
    table = np.empty((el.count, len(wanted)), dtype=np.float32)
    types = {p.name: p.code for p in el.properties}
    for j, k in enumerate(wanted):
        if use_rgb and k in dc:  # nerfstudio ply_color_mode=rgb: uchar 0-255 (or float 0-1) colours
            c = cols[rgb[dc.index(k)]].astype(np.float64)
            if types[rgb[dc.index(k)]][0] in "iu":
                c = c / 255.0
            table[:, j] = rgb_to_sh0(c)
        else:
            table[:, j] = cols[k]
    return table, wanted


def _is_compressed(elements: dict[str, _Element]) -> bool:
    return "chunk" in elements or "packed_position" in elements.get("vertex", _Element("", 0)).names()


def _unorm(v: np.ndarray, shift: int, bits: int) -> np.ndarray:
    mask = (1 << bits) - 1
    return ((v >> np.uint32(shift)) & np.uint32(mask)).astype(np.float64) / mask


def _decompress(by_name: dict[str, _Element], data: dict, path: Path) -> tuple[np.ndarray, list[str]]:
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
    ci = np.arange(n) // _CHUNK_SIZE
    c = {k: np.asarray(a, dtype=np.float64)[ci] for k, a in chunk.items()}
    u = {k: np.asarray(v[k]).astype(np.uint32) for k in packed}

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
    q = np.empty((n, 4))
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
    f_rest: list[str] = []
    if "sh" in by_name:
        sh = data.get("sh", {})
        if by_name["sh"].count != n:
            raise _error(path, f"compressed PLY has {by_name['sh'].count} rows of SH for {n} splats")
        f_rest = _f_rest_names(sh, path, "sh element")
        for k in f_rest:
            b = np.asarray(sh[k]).astype(np.float64)
            t = np.where(b <= 0, 0.0, np.where(b >= 255, 1.0, (b + 0.5) / 256))
            out[k] = (t - 0.5) * 8
    names = _canonical_names(f_rest)
    table = np.empty((n, len(names)), dtype=np.float32)
    for j, k in enumerate(names):
        table[:, j] = out[k]
    return table, names


def _read_elements(path: Path, wanted_of) -> tuple[dict[str, _Element], dict, dict]:
    """Parse a PLY file: (elements by name, columns {element: {property: array}}, matrices).
    `wanted_of(by_name)` names the elements to load."""
    f = io.BytesIO(read_input(path, "PLY file"))
    order, elements = _read_header(f, path)
    body = f.read()
    by_name: dict[str, _Element] = {}
    for el in elements:
        by_name.setdefault(el.name, el)
    if "vertex" not in by_name:
        raise _error(path, "PLY file has no 'vertex' element")
    wanted = wanted_of(by_name)
    if order is None:
        data, mats = _read_ascii(body, elements, wanted, path)
    else:
        data, mats = _read_binary(body, order, elements, wanted, path)
    return by_name, data, mats


def read_ply(path: str | os.PathLike) -> Gaussians:
    """Read Gaussian splats from a PLY file into float32 `Gaussians` (raw parameters).

    Accepts the INRIA layout in any property order/type, ascii or binary, extra properties and
    elements (ignored), SH degree 0-4 from the `f_rest_*` count, and SuperSplat compressed PLY.
    """
    path = Path(path)
    by_name, data, mats = _read_elements(
        path, lambda els: {"vertex", "chunk", "sh"} if _is_compressed(els) else {"vertex"})
    if _is_compressed(by_name):
        table, names = _decompress(by_name, data, path)
    else:
        table, names = _inria_table(by_name["vertex"], data["vertex"], mats.get("vertex"), path)
    return _assemble(table, names, path)


def read_ply_points(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """A plain point cloud (COLMAP / nerfstudio `sparse_pc.ply`): xyz [N,3] float64 (a file's
    double coordinates keep their precision: a georeferenced cloud's cm at 4e6 m) and, when
    the file has `red green blue`, colours [N,3] in [0,1] float32 (else None)."""
    path = Path(path)
    _, data, _ = _read_elements(path, lambda els: {"vertex"})
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
_GAUSSIAN_PROPERTY = re.compile(r"^(x|y|z|nx|ny|nz|f_dc_\d+|f_rest_\d+|opacity|scale_\d|rot_\d|red|green|blue)$")


def ply_extra_properties(path: str | os.PathLike) -> list[str]:
    """The vertex properties of a Gaussian PLY that `read_ply` does not keep (per-Gaussian ids,
    segment labels, Mip-Splatting's `filter_3D`, ...), in file order; reads the header only. A
    SuperSplat compressed PLY has none (its packed properties are all decoded). Normals are not
    listed: INRIA-style writers store zeros there."""
    path = Path(path)
    with open(path, "rb") as f:
        _, elements = _read_header(f, path)
    by_name = {el.name: el for el in reversed(elements)}
    if "vertex" not in by_name or _is_compressed(by_name):
        return []
    return [n for n in by_name["vertex"].names() if not _GAUSSIAN_PROPERTY.match(n)]
