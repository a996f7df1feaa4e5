"""What COLMAP (pycolmap) prints: its glog lines kept to errors unless asked for, and the
process's stderr silenced around the calls no log setting reaches.

pycolmap logs through glog to the process's stderr (file descriptor 2), below Python's
sys.stderr, so only its own level setting or the descriptor itself can quiet it. Some of its
calls also reset that level: `bundle_adjustment` sets it to 0 before logging its heading (it
builds a fresh set of COLMAP options, logging ones included), and GLOMAP's global mapping leaves
it at 0. Everything here restores the caller's level afterwards.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

# glog's levels: 0 INFO, 1 WARNING, 2 ERROR.
ERRORS_ONLY = 2


@contextmanager
def colmap_log(pycolmap, verbose: bool):
    """COLMAP logs every file and bundle adjustment step: keep only its errors unless `verbose`."""
    old = pycolmap.logging.minloglevel
    if not verbose:
        pycolmap.logging.minloglevel = ERRORS_ONLY
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = old


@contextmanager
def kept_log_level(pycolmap):
    """Around a pycolmap call that resets COLMAP's log level (see the module docstring): stderr
    silenced for the call while the caller wants quiet, and the caller's level back after it."""
    level = pycolmap.logging.minloglevel
    try:
        with stderr_silenced(level > 0):
            yield
    finally:
        pycolmap.logging.minloglevel = level


@contextmanager
def stderr_silenced(active: bool):
    """Point the process's stderr (file descriptor 2) at /dev/null while `active`. Also for
    prints no log setting reaches, such as faiss's "WARNING clustering 1000 points to 63
    centroids" from the loop detector's vocabulary build (about the index's coarse quantiser
    over the words, and harmless)."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
