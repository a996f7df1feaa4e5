"""Paths as the files splatfilm writes record them: relative to the file that names them.

A file handed on (an .otio, a USD stage) that named other files by absolute path would give
away the folders of the machine that wrote it and break once its folder moves, so each names
them relative to its own folder and says so in its metadata.
"""

from __future__ import annotations

import os
from pathlib import Path


def relative_path(path: str | os.PathLike, base: str | os.PathLike) -> str | None:
    """`path` relative to the folder `base`, with "/" separators, or None where no relative
    path exists (Windows: another drive). Worked out on the paths as written (made absolute
    against the current directory, symlinks not followed), so a file reached through a
    symlinked folder stays relative to it."""
    path, base = os.path.abspath(path), os.path.abspath(base)
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # Windows: another drive
        return None


def recorded_path(path: str | os.PathLike, base: str | os.PathLike) -> str:
    """`path` as a file in the folder `base` records it: relative to `base` (`relative_path`),
    or its absolute path with "/" separators where no relative path exists (another drive)."""
    rel = relative_path(path, base)
    return rel if rel is not None else Path(os.path.abspath(path)).as_posix()
