"""pycolmap's effects on the whole process, kept in hand: importing it (`load_pycolmap`), what
COLMAP prints (its glog lines kept to errors unless asked for, and the process's stderr silenced
around the calls no log setting reaches).

Importing pycolmap installs glog's failure signal handler, which answers SIGTERM (`kill`, a
job scheduler, `timeout`) with a native stack trace on stderr instead of the process's own
handling; `load_pycolmap` puts the Python handler back, so a terminated run ends as an
interrupted one does (the CLI: "terminated", exit 143, a fit's checkpoint written). Only the
main thread can set it: the CLI imports pycolmap there.

pycolmap logs through glog to the process's stderr (file descriptor 2), below Python's
sys.stderr, so only its own level setting or the descriptor itself can quiet it. Some of its
calls also reset that level: `bundle_adjustment` sets it to 0 before logging its heading (it
builds a fresh set of COLMAP options, logging ones included), and GLOMAP's global mapping leaves
it at 0. Everything here restores the caller's level afterwards.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TextIO

# glog's levels: 0 INFO, 1 WARNING, 2 ERROR.
ERRORS_ONLY = 2


def load_pycolmap() -> ModuleType:
    """The pycolmap module, imported after Pillow and with the process's SIGTERM handling as
    it was before the import. Pillow first: loaded first, pycolmap's extension supplies the zlib
    symbols that Pillow's PNG encoder then binds to, and the first PNG written aborts the
    process ("free(): invalid pointer" in deflateEnd; pycolmap 4.2.1, Pillow 13)."""
    import PIL.Image  # noqa: F401  (before pycolmap: see above)

    import pycolmap

    if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGTERM))
    return pycolmap


@contextmanager
def colmap_log(pycolmap: ModuleType, verbose: bool) -> Iterator[None]:
    """COLMAP logs every file and bundle adjustment step: keep only its errors unless `verbose`."""
    old = pycolmap.logging.minloglevel
    if not verbose:
        pycolmap.logging.minloglevel = ERRORS_ONLY
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = old


@contextmanager
def kept_log_level(pycolmap: ModuleType) -> Iterator[None]:
    """Around a pycolmap call that resets COLMAP's log level (see the module docstring): stderr
    silenced for the call while the caller wants quiet, and the caller's level back after it.
    Silenced means COLMAP's error lines too ("Failed to create any sparse model", one per
    attempt): the caller says what failed in its own words; `--verbose` shows them all."""
    level = pycolmap.logging.minloglevel
    try:
        with stderr_silenced(level > 0):
            yield
    finally:
        pycolmap.logging.minloglevel = level


@contextmanager
def stderr_silenced(active: bool) -> Iterator[TextIO]:
    """Point the process's stderr (file descriptor 2) at /dev/null while `active`, yielding a
    text stream on the stderr that was there (sys.stderr when not active), for what should still
    reach the terminal (progress bars). Also for prints no log setting reaches, such as faiss's
    "WARNING clustering 1000 points to 63 centroids" from the loop detector's vocabulary build
    (about the index's coarse quantiser over the words, and harmless), and COLMAP's "Stopping
    thread..." error line when Ctrl-C stops extraction or matching.

    Only the native writers are silenced: sys.stderr is that stream meanwhile, so what Python
    says (`report.status`, `report.note`: SfM's own lines, said inside these calls) still reaches
    the user."""
    if not active:
        yield sys.stderr
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    saved = os.dup(2)
    try:  # sys.stderr writes to file descriptor 2 (not when replaced, as under a test): keep it reachable
        on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        on_fd2 = False
    # As sys.stderr encodes (the CLI's: a path not UTF-8 escaped, not an error).
    terminal = (os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(python_stderr, "encoding", None),
                          errors=getattr(python_stderr, "errors", None)) if on_fd2 else python_stderr)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        sys.stderr = terminal
        yield terminal
    finally:
        sys.stderr = python_stderr
        if terminal is not python_stderr:
            terminal.close()
        os.dup2(saved, 2)
        os.close(saved)
