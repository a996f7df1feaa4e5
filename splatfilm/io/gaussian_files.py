"""Load and save Gaussians by file extension: `.ply` (INRIA layout; `*.compressed.ply` is written
in SuperSplat's compressed layout, and either is read), `.splat` (antimatter15),
`.spz` (Niantic, versions 2 to 4), `.sog` (PlayCanvas, versions 1 and 2 read, 2 written) or a
USD file (`.usd`, `.usda`, `.usdc`: one `ParticleField3DGaussianSplat` prim,
`splatfilm.io.usd_splats`); GaussianSplats3D's `.ksplat` is read, not written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import check_output_file
from splatfilm.io.digest import content_digest, file_digest
from splatfilm.io.ksplat import read_ksplat
from splatfilm.scene.gaussians import Gaussians
from splatfilm.io.ply import (
    COMPRESSED_PLY_MAX_SH_DEGREE,
    is_compressed_ply_name,
    read_ply,
    read_ply_centred,
    write_compressed_ply,
    write_ply,
)
from splatfilm.io.sog import SOG_MAX_SH_DEGREE, read_sog, write_sog
from splatfilm.io.splat import read_splat, write_splat
from splatfilm.io.spz import SPZ_DEFAULT_AXES, read_spz, write_spz
from splatfilm import report

__all__ = ["load_gaussians", "load_gaussians_centred", "save_gaussians", "check_gaussian_output", "saved_sh_degree",
           "gaussian_file_digest",
           "GAUSSIAN_FILE_EXTENSIONS", "GAUSSIAN_FILE_TYPES", "GAUSSIAN_READ_EXTENSIONS", "GAUSSIAN_READ_TYPES",
           "USD_EXTENSIONS"]

USD_EXTENSIONS = (".usd", ".usda", ".usdc")
GAUSSIAN_FILE_EXTENSIONS = (".ply", ".splat", ".spz", ".sog") + USD_EXTENSIONS
# The same list in words, for help texts and messages: ".ply, .splat, .spz, .sog or .usd/.usda/.usdc".
GAUSSIAN_FILE_TYPES = ", ".join(GAUSSIAN_FILE_EXTENSIONS[:-len(USD_EXTENSIONS)]) + " or " + "/".join(USD_EXTENSIONS)


# Formats read but not written.
_READ_ONLY_EXTENSIONS = (".ksplat",)
# Every format `load_gaussians` reads, and the same in words for what commands read:
# ".ply, .splat, .spz, .sog, .ksplat or .usd/.usda/.usdc".
GAUSSIAN_READ_EXTENSIONS = GAUSSIAN_FILE_EXTENSIONS[:-len(USD_EXTENSIONS)] + _READ_ONLY_EXTENSIONS + USD_EXTENSIONS
GAUSSIAN_READ_TYPES = ", ".join(GAUSSIAN_READ_EXTENSIONS[:-len(USD_EXTENSIONS)]) + " or " + "/".join(USD_EXTENSIONS)
# Formats of other tools that PlayCanvas's splat-transform (behind SuperSplat) converts to a PLY.
_SPLAT_TRANSFORM_EXTENSIONS = (".lcc",)


def _kind(path: Path, reading: bool = False) -> str:
    """The format of `path` by its lower-case extension; `reading`: the read-only ones too."""
    ext = path.suffix.lower()
    if ext in _READ_ONLY_EXTENSIONS:
        if reading:
            return ext
        raise SplatfilmError(f"{path}: {ext} files are read, not written; write {GAUSSIAN_FILE_TYPES}")
    if ext not in GAUSSIAN_FILE_EXTENSIONS:
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        hint = (f"; convert it with PlayCanvas's splat-transform (`splat-transform {path.name} "
                f"{path.stem}.ply`) and use the .ply" if ext in _SPLAT_TRANSFORM_EXTENSIONS else "")
        also = f" (or a {', '.join(_READ_ONLY_EXTENSIONS)} to read)" if reading else ""
        raise SplatfilmError(f"{path}: unsupported Gaussian file type ({shown}); use {GAUSSIAN_FILE_TYPES}{also}{hint}")
    return ext


def load_gaussians(path: str | os.PathLike, spz_axes: str = SPZ_DEFAULT_AXES, prim: str | None = None) -> Gaussians:
    """Read Gaussians (float32, raw parameters) from a `.ply`, `.splat`, `.spz`, `.sog`, `.ksplat` or
    USD file;
    spz_axes: an .spz file's axes (`io.spz`: "ply", as stored, or "rub", turned from RUB into
    the PLY's); prim: a USD file's splat prim, by its path (default the file's only one), read
    in its own frame (its local positions) at the stage's start
    (`splatfilm.io.usd_splats.read_usd_splats` picks others).
    What the reader did to the file's values (a PLY's Mip-Splatting filter fused, its double
    positions rounded), and bytes after the end its format gives (PLY, SPZ, SOG), are said in
    a note on stderr."""
    return _load(Path(path), spz_axes, prim, centre=False)[0]


def gaussian_file_digest(path: str | os.PathLike, spz_axes: str = SPZ_DEFAULT_AXES, prim: str | None = None) -> str:
    """The content key of the Gaussians `load_gaussians(path, spz_axes, prim)` reads: the file's
    SHA-256, and for an .spz or a USD prim what is read of it (another prim, or an .spz read
    in other axes, is other content; the .spz default axes have changed, so its key says them)."""
    digest = file_digest(path)
    if prim is None and Path(path).suffix.lower() != ".spz":
        return digest
    return content_digest((digest + repr({"prim": prim, "spz_axes": spz_axes})).encode())


def load_gaussians_centred(path: str | os.PathLike, spz_axes: str = SPZ_DEFAULT_AXES,
                           prim: str | None = None) -> tuple[Gaussians, np.ndarray | None]:
    """As `load_gaussians`, keeping a file's double positions (a georeferenced PLY) to their
    precision: (Gaussians, origin), origin float64 [3] with x_file = means + origin, or None
    when the file's positions are float32 and the Gaussians are `load_gaussians`'s
    (`io.ply.read_ply_centred`). For `import`, which stores such a splat centred."""
    return _load(Path(path), spz_axes, prim, centre=True)


def _load(path: Path, spz_axes: str, prim: str | None, centre: bool) -> tuple[Gaussians, np.ndarray | None]:
    kind = _kind(path, reading=True)
    if prim is not None and kind not in USD_EXTENSIONS:
        raise SplatfilmError(f"{path}: a prim is picked in USD files only ({', '.join(USD_EXTENSIONS)})")
    if spz_axes != SPZ_DEFAULT_AXES and kind != ".spz":
        raise SplatfilmError(f"{path}: SPZ axes apply to .spz files only")
    origin = None
    notes: list[str] = []
    if kind == ".ply":
        g, origin = read_ply_centred(path, notes) if centre else (read_ply(path, notes), None)
    elif kind == ".splat":
        g = read_splat(path)
    elif kind == ".spz":
        g = read_spz(path, axes=spz_axes, notes=notes)
    elif kind == ".sog":
        g = read_sog(path, notes)
    elif kind == ".ksplat":
        g = read_ksplat(path, notes)
    else:
        from splatfilm.io.usd_splats import read_usd_splats

        g = read_usd_splats(path, prim)
    for note in notes:
        report.note(note)
    if len(g) == 0:  # every format can say "none"; nothing would render but black frames
        raise SplatfilmError(f"{path}: holds no Gaussians")
    return g, origin


def check_gaussian_output(path: str | os.PathLike) -> Path:
    """`path` as a Path if Gaussians can be saved there (a known extension, a writable place), else
    a SplatfilmError naming it: commands check their output before the work that fills it."""
    path = Path(path)
    _kind(path)
    return check_output_file(path)


def saved_sh_degree(path: str | os.PathLike, sh_degree: int) -> int:
    """The SH degree `save_gaussians(path, ...)` stores for Gaussians of degree `sh_degree`:
    `.splat` holds degree 0 only, a `*.compressed.ply` and a `.sog` up to 3, every other format
    what it is given."""
    kind = _kind(Path(path))
    if kind == ".splat":
        return 0
    if kind == ".sog":
        return min(sh_degree, SOG_MAX_SH_DEGREE)
    return min(sh_degree, COMPRESSED_PLY_MAX_SH_DEGREE) if is_compressed_ply_name(path) else sh_degree


def save_gaussians(path: str | os.PathLike, g: Gaussians, sh_degree: int | None = None,
                   spz_axes: str = SPZ_DEFAULT_AXES, antialiased: bool = False) -> np.ndarray | None:
    """Write Gaussians to a `.ply`, `.splat`, `.spz` (version 3), `.sog` (version 2,
    `io.sog.write_sog`: lossy, SH degree 3 at most) or USD file (atomically); a
    `*.compressed.ply` in SuperSplat's compressed layout (`io.ply.write_compressed_ply`: lossy,
    SH degree 3 at most).

    Returns the order the file holds the Gaussians in: int64 [N], indices into `g` (the file's
    Gaussian r is g[order[r]]), or None where it holds them as given. A `*.compressed.ply`
    (Morton order, so each chunk of 256 is small) and a `.splat` (antimatter15's, biggest first)
    reorder them; whatever is kept per Gaussian beside the file must follow the order returned
    (a rig: `io.rig_files.carry_rig`), as loading the file gives them back in it.

    `sh_degree` (truncate / zero-pad the SH bands) applies to every format but `.splat`, which
    holds degree 0 only; spz_axes: an .spz file's axes (`io.spz`: by default as given, "rub"
    turned into RUB); antialiased: an .spz file's header flag (the other formats have no place
    for it: the sidecar's `rasterize_mode` says it)."""
    path = Path(path)
    kind = _kind(path)
    if kind == ".ply":
        if is_compressed_ply_name(path):
            return write_compressed_ply(path, g, sh_degree=sh_degree)
        write_ply(path, g, sh_degree=sh_degree)
        return None
    if kind == ".splat":
        return write_splat(path, g)
    if kind == ".sog":
        write_sog(path, g, sh_degree=sh_degree)
        return None
    if sh_degree is not None:
        g = g.with_sh_degree(sh_degree)
    if kind == ".spz":
        write_spz(path, g, axes=spz_axes, antialiased=antialiased)
    else:
        from splatfilm.io.usd_splats import write_usd_splats

        write_usd_splats(path, g)
    return None
