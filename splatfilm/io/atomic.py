"""File access with one-line errors. Writes are atomic: a temporary file in the target folder,
then a rename over the target, so an interrupted job never leaves a half-written file behind
and a failed write leaves the old file (if any) untouched.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Iterable

from splatfilm.errors import SplatfilmError


def atomic_write(path: str | os.PathLike, chunks: Iterable[bytes | memoryview]) -> None:
    """Write `chunks` to `path` via a temporary file in the same folder and `os.replace`.

    Readers never see a half-written file; on failure the old file (if any) is untouched.
    Parent folders are created. Errors are `SplatfilmError`s naming the file.
    """
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            blocker = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
            if blocker is not None and not blocker.is_dir():
                raise SplatfilmError(f"{path}: cannot write: {blocker} is a file, not a folder") from None
            raise SplatfilmError(f"{path}: cannot write: {e.strerror or e}") from None
        raise


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside `path`, for writers that need a file name (EXR)."""
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}"


def read_input(path: str | os.PathLike, kind: str) -> bytes:
    """The bytes of an input file, or a SplatfilmError naming it: missing, a folder, unreadable.
    kind: what the file should be, for the message ("PLY file", ".splat file")."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SplatfilmError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SplatfilmError(f"{path}: is a folder, not a {kind}") from None
    except OSError as e:
        raise SplatfilmError(f"{path}: cannot read: {e.strerror or e}") from None
