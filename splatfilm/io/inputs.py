"""Input files read with one-line errors: a file's bytes (`read_input`), mapped into memory
(`map_input`) or as UTF-8 text (`read_text`), each a SplatfilmError naming the file when it is
missing, a folder or unreadable; and the note for bytes a file holds after the end its own format
gives (`trailing_bytes_note`). Files are written by `io.atomic`.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from splatfilm.errors import SplatfilmError


def _input_error(path: Path, kind: str, e: OSError) -> SplatfilmError:
    if isinstance(e, FileNotFoundError):
        return SplatfilmError(f"{path}: no such file")
    if isinstance(e, IsADirectoryError):
        return SplatfilmError(f"{path}: is a folder, not a {kind}")
    return SplatfilmError(f"{path}: cannot read: {e.strerror or e}")


def read_input(path: str | os.PathLike, kind: str) -> bytes:
    """The bytes of an input file, or a SplatfilmError naming it: missing, a folder, unreadable.
    kind: what the file should be, for the message ("PLY file", ".splat file")."""
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as e:
        raise _input_error(path, kind, e) from None


def trailing_bytes_note(path: str | os.PathLike, count: int, end: str) -> str:
    """The note for an input file holding `count` bytes after the end its own format gives
    (`end`: "the PLY's rows", "the GLB header's length"). A note, not an error: some tools pad
    their files; but bytes appended by mistake (two files joined, a copy gone wrong) are named."""
    return f"note: {path}: {count} byte{'s' if count != 1 else ''} after {end} were not read"


def map_input(path: str | os.PathLike, kind: str) -> mmap.mmap | bytes:
    """An input file's bytes mapped read-only into memory (its bytes read when it cannot be
    mapped: empty, a pipe), with `read_input`'s errors. Mapped, a large file costs no memory
    of its own: numpy views of it read the pages as they are touched. The map closes when the
    last view of it goes."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            try:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (ValueError, OSError):
                return f.read()
    except OSError as e:
        raise _input_error(path, kind, e) from None


def read_text(path: str | os.PathLike, kind: str) -> str:
    """The UTF-8 text of an input file (a YAML or JSON file), or a SplatfilmError naming it:
    missing, a folder, unreadable, or not text. kind: what the file should be ("film script")."""
    data = read_input(path, kind)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SplatfilmError(f"{path}: not a text file (byte {e.start} is not UTF-8); expected a {kind}") from None
