"""Writing files, with one-line errors. Writes are atomic: a temporary file in the target folder,
then a rename over the target, so an interrupted job never leaves a half-written file behind
and a failed write leaves the old file (if any) untouched.

What guards a write is here too: an output path checked before long work (`check_output_file`,
`check_output_folder`), folders made (`make_folder`), the one-line error of a failed write
(`cannot_write`, which `atomic_path` raises), a job's lock on its folder (`work_lock`) and
scratch names (`temp_path_for`, `clear_scratch`). Input files are read by `io.inputs`.
"""

from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from splatfilm.errors import SplatfilmError

# Held (flock) by the job writing in a folder (`work_lock`); hidden, as it is no output.
WORK_LOCK = ".splatfilm.lock"


def atomic_write(path: str | os.PathLike, chunks: Iterable[bytes | memoryview]) -> None:
    """Write `chunks` to `path` via a temporary file in the same folder and `os.replace`
    (`atomic_path`).

    Readers never see a half-written file; on failure the old file (if any) is untouched.
    Parent folders are created. Errors are `SplatfilmError`s naming the file.
    """
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary path to write `path` at, for writers that want a file name (an
    encoder, ffmpeg, a library that writes a whole folder): on a clean exit what was written
    there (a file, flushed to disk, or a folder) replaces `path` (a folder replacing a folder
    moves the old one aside first); on any error it is removed and `path` is left as it was.
    Parent folders are created. OSErrors making, filling (the writer's own, on the temporary
    path) or moving it into place become the one-line `cannot_write(path)`; an OSError of
    another file met inside (an input, a missing program) stays itself, naming that file.

    The temporary path has `path`'s own name, inside a hidden folder of its own beside it
    (.NAME.PID.RANDOM.tmp/NAME): two writers of the same file never share it, writers that
    pick a format by the suffix or record their file's name (an OBJ's object name) see the
    real one, and side files a writer puts next to it (an OBJ's .mtl) go with the folder.
    """
    path = Path(path)
    scratch = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        try:
            scratch.mkdir(parents=True)
        except OSError as e:
            raise cannot_write(path, e) from None
        tmp = scratch / path.name
        try:
            yield tmp
        except OSError as e:
            if e.filename is not None and not _inside(Path(os.fsdecode(e.filename)), scratch):
                raise
            raise cannot_write(path, e) from None
        try:
            if tmp.is_file():
                # Read-write: Windows refuses to flush a handle opened read-only.
                fd = os.open(tmp, os.O_RDWR | getattr(os, "O_BINARY", 0))
                try:
                    os.fsync(fd)  # on disk before the rename makes it the file: a crash leaves old or new
                finally:
                    os.close(fd)
            old = None
            if tmp.is_dir() and path.is_dir():
                old = scratch / ".replaced"
                os.replace(path, old)  # a folder is not renamed over another
            try:
                os.replace(tmp, path)
            except BaseException:
                if old is not None:  # put the old folder back: on any error `path` is left as it was
                    os.replace(old, path)
                raise
        except OSError as e:
            raise cannot_write(path, e) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def clear_scratch(folder: str | os.PathLike) -> None:
    """Remove what writers killed mid-write left in `folder`: `atomic_path`'s hidden
    .NAME.PID.RANDOM.tmp folders and `temp_path_for`'s .NAME.PID.RANDOM.tmp.SUFFIX files. Only
    for a folder one job owns (held under `work_lock`): another process's write in progress
    there would go too."""
    for scratch in [*Path(folder).glob(".*.tmp"), *Path(folder).glob(".*.tmp.*")]:
        if scratch.is_dir():
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            scratch.unlink(missing_ok=True)


@contextmanager
def work_lock(folder: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold folder/.splatfilm.lock (flock, created with the folder when missing) while a job
    writes there; a SplatfilmError naming the folder when another job holds it. `what`: the
    job, for the message ("sfm run", "render"). A second job on one folder would undo the
    first's work: two runs sharing a feature database lose features where they collide, and
    two renders each save their own record of the frames, the last one to save winning. The
    lock goes with its process, however it ends. Not POSIX: the folder is made, with no lock."""
    folder = make_folder(folder)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(folder / WORK_LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SplatfilmError(f"{folder}: another {what} is using this folder; wait for it to end or stop it") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies in it (both as given, not resolved)."""
    return path == folder or folder in path.parents


def cannot_write(path: str | os.PathLike, error: OSError) -> SplatfilmError:
    """The one-line error for an OSError met writing `path` (a file or a folder), naming what is in the way."""
    path = Path(path)
    blocker = _file_above(path)
    if blocker is not None:
        return SplatfilmError(f"{path}: cannot write: {blocker} is a file, not a folder")
    if path.is_dir():
        return SplatfilmError(f"{path}: cannot write: it is a folder, not a file")
    return SplatfilmError(f"{path}: cannot write: {error.strerror or error}")


def _file_above(path: Path) -> Path | None:
    """The nearest existing path above `path` when it is a file (where a folder has to be), else None."""
    for p in path.parents:
        if p.exists():
            return None if p.is_dir() else p
    return None


def _nearest_folder(path: Path) -> Path:
    """The nearest existing folder at or above `path` (what creating `path` writes into)."""
    for p in [path, *path.parents]:
        if p.is_dir():
            return p
    return Path(".")


def check_output_file(path: str | os.PathLike) -> Path:
    """Fail early, before long work, when `path` cannot be written as a file: it is a folder,
    a file stands where one of its folders has to be, or its folder is not writable.
    Creates nothing. Returns `path` as a Path; errors are SplatfilmErrors naming it."""
    path = Path(path)
    if path.is_dir():
        raise SplatfilmError(f"{path}: cannot write: it is a folder, not a file")
    _check_writable(path)
    return path


def check_output_folder(path: str | os.PathLike) -> Path:
    """Fail early when `path` cannot be an output folder: it is a file, a file stands where one
    of the folders above it has to be, or it cannot be created or written in. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SplatfilmError(f"{path}: cannot write: it is a file, not a folder")
    _check_writable(path)
    return path


def _check_writable(path: Path) -> None:
    blocker = _file_above(path)
    if blocker is not None:
        raise SplatfilmError(f"{path}: cannot write: {blocker} is a file, not a folder")
    folder = _nearest_folder(path if path.is_dir() else path.parent)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SplatfilmError(f"{path}: cannot write: {folder} is not writable")


def make_folder(path: str | os.PathLike) -> Path:
    """Create the folder `path` (and its parents) if needed; a SplatfilmError naming it when it
    cannot be (a file in the way, no permission, a read-only disk). Returns `path` as a Path."""
    path = check_output_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cannot_write(path, e) from None
    return path


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside `path` (.NAME.PID.RANDOM.tmp.SUFFIX), for scratch files;
    `atomic_path` writes a file in place of another."""
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}"
