"""Time on a shot: exact frame rates and frame numbers (its ease curves: `scene.easing`).

Frame rates are exact fractions (24, 25, 30, 24000/1001). Frame i of a shot (i = 0, 1, ...)
is shown at i / fps seconds after the shot starts and carries the film frame number
FIRST_FRAME + i (docs/CONVENTIONS.md: film frame numbers start at 1001).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np

from splatfilm.errors import SplatfilmError

FIRST_FRAME = 1001
"""Film frame number of a shot's first frame."""

# Rates that cameras and editors write as rounded decimals; "23.976" means 24000/1001, never
# 2997/125, and so does "23.98", the two-decimal label of the same rate (Final Cut's and many
# cameras' menus; Avid, Premiere and Resolve say 23.976).
_NTSC = {Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001), Fraction(48000, 1001),
         Fraction(120000, 1001)}

DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))
"""Rates whose timecode drops frame numbers to keep to the clock (23.976 and 47.952 do not):
a film at one of them counts drop-frame timecode (`film.timeline.timecode_fields`)."""

# A rate labelled with its timecode count, as cameras and editors label them: "29.97 DF", "59.94DF", "23.976 NDF".
_COUNT_LABEL = re.compile(r"(.*?)\s*(N?DF)", re.IGNORECASE)


def parse_fps(value: object) -> Fraction:
    """An exact frame rate from 24, 23.976, 23.98, "24000/1001", "23.976" or a Fraction.

    Decimals within 0.005 of an NTSC rate (N * 1000 / 1001) mean that rate exactly: its
    three-decimal name (23.976, 29.97, 47.952, 59.94) and its two-decimal label (23.98, 47.95,
    119.88) alike; no other rate lies that close to one. A rate may carry the timecode count it
    is labelled with: "29.97 DF" (or "29.97DF", "59.94 DF") is the NTSC rate, whose timecode is
    drop-frame (`DROP_FRAME_RATES`), and "23.976 NDF" the rate alone; a count the rate does not
    have (drop-frame at 24, non-drop-frame at 29.97, which splatfilm always counts drop-frame)
    is refused, saying which the rate counts.
    Raises SplatfilmError for anything that is not a positive rate.
    """
    if isinstance(value, str):
        m = _COUNT_LABEL.fullmatch(value.strip())
        if m:
            try:
                fps = parse_fps(m.group(1))
            except SplatfilmError:
                raise SplatfilmError(f"frame rate must be a number or a fraction like 24000/1001 (or a drop-frame "
                                     f"rate, \"29.97 DF\"), got {value!r}") from None
            drop = m.group(2).upper() == "DF"
            if drop != (fps in DROP_FRAME_RATES):
                rates = " and ".join(_rate_label(r) for r in DROP_FRAME_RATES)
                raise SplatfilmError(f"{value!r}: timecode at {_rate_label(fps)} fps is "
                                     f"{'drop-frame' if fps in DROP_FRAME_RATES else 'non-drop-frame'} "
                                     f"(only {rates} count drop-frame, and always do); write {m.group(1)!r}")
            return fps
    if isinstance(value, bool):
        raise SplatfilmError(f"frame rate must be a number or a fraction like 24000/1001, got {value!r}")
    try:
        if isinstance(value, Fraction):
            fps = value
        elif isinstance(value, (int, np.integer)):
            fps = Fraction(int(value))
        elif isinstance(value, (float, np.floating)):
            fps = Fraction(repr(float(value)))
        elif isinstance(value, str):
            fps = Fraction(value.strip().replace(" ", ""))
        else:
            raise ValueError
    except (ValueError, ZeroDivisionError):
        raise SplatfilmError(f"frame rate must be a number or a fraction like 24000/1001, got {value!r}") from None
    if fps <= 0:
        raise SplatfilmError(f"frame rate must be > 0, got {value!r}")
    if fps.denominator != 1001:
        for ntsc in _NTSC:
            if fps != ntsc and abs(fps - ntsc) < Fraction(1, 200):
                return ntsc
    return fps


def _rate_label(fps: Fraction) -> str:
    """A rate as editors write it: 24, 29.97, 23.976, 59.94."""
    if fps.denominator == 1001:
        return f"{float(fps):.3f}".rstrip("0")
    return f"{float(fps):g}"


def frame_times(count: int, fps: Fraction) -> np.ndarray:
    """Times in seconds [count] of frames 0..count-1: exactly i / fps, rounded once to float64."""
    return np.array([float(Fraction(i) / fps) for i in range(count)], dtype=np.float64)


def duration_frames(seconds: float, fps: Fraction) -> int:
    """Frames of a shot `seconds` long (a `duration:`), the nearest whole number at `fps`, the
    decimal taken as written (2.5 s at 24 fps: 60 frames, the last at 59/24 s)."""
    return round(Fraction(repr(float(seconds))) * fps)


def frames_through(seconds: float, fps: Fraction) -> int:
    """Frames of a shot that ends on `seconds` (from its first frame, >= 0; a last key): through
    the frame at that time when one falls there (within a millionth of a frame, as the decimal
    written gives it), else through the last frame before it."""
    return math.floor(Fraction(repr(float(seconds))) * fps + Fraction(1, 10**6)) + 1
