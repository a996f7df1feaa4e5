"""Load and save Gaussians by file extension: `.ply` (INRIA layout) or `.splat` (antimatter15)."""

from __future__ import annotations

import os
from pathlib import Path

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import check_output_file
from splatfilm.scene.gaussians import Gaussians
from splatfilm.io.ply import read_ply, write_ply
from splatfilm.io.splat import read_splat, write_splat

__all__ = ["load_gaussians", "save_gaussians", "check_gaussian_output", "GAUSSIAN_FILE_EXTENSIONS"]

GAUSSIAN_FILE_EXTENSIONS = (".ply", ".splat")


def _kind(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in GAUSSIAN_FILE_EXTENSIONS:
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        raise SplatfilmError(f"{path}: unsupported Gaussian file type ({shown}); use .ply or .splat")
    return ext


def load_gaussians(path: str | os.PathLike) -> Gaussians:
    """Read Gaussians (float32, raw parameters) from a `.ply` or `.splat` file."""
    path = Path(path)
    return read_ply(path) if _kind(path) == ".ply" else read_splat(path)


def check_gaussian_output(path: str | os.PathLike) -> Path:
    """`path` as a Path if Gaussians can be saved there (.ply or .splat, a writable place), else a
    SplatfilmError naming it: commands check their output before the work that fills it."""
    path = Path(path)
    _kind(path)
    return check_output_file(path)


def save_gaussians(path: str | os.PathLike, g: Gaussians, sh_degree: int | None = None) -> None:
    """Write Gaussians to a `.ply` or `.splat` file (atomically).

    `sh_degree` applies to `.ply` (truncate / zero-pad the SH bands); `.splat` holds degree 0 only.
    """
    path = Path(path)
    if _kind(path) == ".ply":
        write_ply(path, g, sh_degree=sh_degree)
    else:
        write_splat(path, g)
