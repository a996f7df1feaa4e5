"""Time on a shot: exact frame rates and frame numbers (its ease curves: `scene.easing`).

Frame rates are exact fractions (24, 25, 30, 24000/1001). Frame i of a shot (i = 0, 1, ...)
is shown at i / fps seconds after the shot starts and carries the film frame number
FIRST_FRAME + i (docs/CONVENTIONS.md: film frame numbers start at 1001).
"""

from __future__ import annotations

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


def parse_fps(value: object) -> Fraction:
    """An exact frame rate from 24, 23.976, 23.98, "24000/1001", "23.976" or a Fraction.

    Decimals within 0.005 of an NTSC rate (N * 1000 / 1001) mean that rate exactly: its
    three-decimal name (23.976, 29.97, 47.952, 59.94) and its two-decimal label (23.98, 47.95,
    119.88) alike; no other rate lies that close to one.
    Raises SplatfilmError for anything that is not a positive rate.
    """
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


def frame_times(count: int, fps: Fraction) -> np.ndarray:
    """Times in seconds [count] of frames 0..count-1: exactly i / fps, rounded once to float64."""
    return np.array([float(Fraction(i) / fps) for i in range(count)], dtype=np.float64)
