"""Argument types and options the commands share: each type turns one command-line word into a value or says
what is wrong; each `add_*` adds an option several commands take."""

from __future__ import annotations

import argparse
import math
import re

from splatfilm.io.cache import CACHE_ENV


# What `ArgumentParser.add_subparsers()` returns, for the commands' `add_*` functions to take:
# argparse names no public type for it, so its one private name is spelt here only.
Subparsers = argparse._SubParsersAction


def rgb_triple(text: str) -> tuple[float, float, float]:
    """A colour "R,G,B", each in [0, 1] (display sRGB values), e.g. "1,1,1" for white."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected R,G,B with values in [0,1], e.g. 1,1,1; got {text!r}")
    return values  # type: ignore[return-value]


def frame_range(text: str) -> tuple[int, int]:
    """Film frame numbers "FIRST-LAST" (inclusive, FIRST <= LAST; "1010" alone is that one frame).
    Called by the command, not as an argparse type, so a bad range is one `error: --frames: ...`
    line (SplatfilmError) rather than argparse's usage block."""
    from splatfilm.errors import SplatfilmError

    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if m is None or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
        raise SplatfilmError(f"--frames: expected FIRST-LAST film frame numbers with FIRST <= LAST, e.g. "
                             f"1010-1020; got {text!r}")
    first = int(m.group(1))
    return first, int(m.group(2)) if m.group(2) is not None else first


def _whole_number(text: str, lowest: int, highest: float, expected: str) -> int:
    """`text` as an int in [lowest, highest], else argparse's error "expected {expected}"."""
    try:
        v = int(text)
    except ValueError:
        v = None
    if v is None or not lowest <= v <= highest:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def positive_int(text: str) -> int:
    """A whole number >= 1 (a count of views, frames, steps)."""
    return _whole_number(text, 1, float("inf"), "a positive integer")


def video_frames(text: str) -> int:
    """How many frames to take from a video: at least 3 (structure from motion needs three views)."""
    return _whole_number(text, 3, float("inf"), "a whole number >= 3 (structure from motion needs three views)")


def sh_degree(text: str) -> int:
    """An SH degree: 0 (view-independent colour) up to scene.sh.MAX_SH_DEGREE."""
    from splatfilm.scene.sh import MAX_SH_DEGREE

    return _whole_number(text, 0, MAX_SH_DEGREE, f"an SH degree from 0 to {MAX_SH_DEGREE}")


def _finite_number(text: str, zero_ok: bool, expected: str) -> float:
    """`text` as a finite float > 0 (>= 0 where `zero_ok`), else argparse's error "expected {expected}"."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not (math.isfinite(v) and (v > 0 or (zero_ok and v == 0))):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (a weight, a tolerance): nan, inf and negatives are refused."""
    return _finite_number(text, True, "a finite number >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0 (a length, a focal length): nan, inf, 0 and negatives are refused."""
    return _finite_number(text, False, "a positive number")


def non_negative_int(text: str) -> int:
    """A count or a period where 0 means none: 0, 1, 2, ..."""
    return _whole_number(text, 0, float("inf"), "0 or a positive integer")


# Seeds go to COLMAP (a C int; global mapping's starts use seed + 1, + 2), numpy and torch:
# a range all of them take with room to spare.
MAX_SEED = 2**30


def seed(text: str) -> int:
    """A random seed: 0 to MAX_SEED."""
    return _whole_number(text, 0, MAX_SEED, f"a seed from 0 to {MAX_SEED}")


def image_side(text: str) -> int:
    """An image width or height in pixels: 1 to MAX_IMAGE_SIDE."""
    from splatfilm.scene.cameras import MAX_IMAGE_SIDE

    v = positive_int(text)
    if v > MAX_IMAGE_SIDE:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_IMAGE_SIDE} pixels, got {text!r}")
    return v


def add_refiner_prompt(p: argparse.ArgumentParser) -> None:
    """Add --refiner-prompt (the text a diffusers refiner is conditioned on) to `p`."""
    p.add_argument("--refiner-prompt", default="", metavar="TEXT",
                   help="text a diffusers refiner is conditioned on (default: none, as sd-turbo wants; Difix "
                        "was trained with \"remove degradation\")")


def add_cache_dir(p: argparse.ArgumentParser, output: str) -> None:
    """Add --cache-dir to `p`; `output` names where the caches go by default (in its help)."""
    p.add_argument("--cache-dir", metavar="FOLDER",
                   help=f"where caches go (TSDF and collision meshes, physics bakes, clean counts, foot plants) when the "
                        f"folder beside their inputs cannot be written, as on a read-only published set; those "
                        f"already beside them are still read (default: ${CACHE_ENV}, else "
                        f"{output}/.splatfilm-cache)")


def add_backend(p: argparse.ArgumentParser, what: str = "renderer") -> None:
    """--backend, the renderer a command uses (`render.resolve_backend`), said alike everywhere;
    `what`: what it renders, e.g. "renderer for the contact sheet"."""
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto",
                   help=f"{what}: gsplat (CUDA; not yet run on a GPU by splatfilm's own checks), cpu (ours), or "
                        "auto, gsplat where CUDA is available (default)")
