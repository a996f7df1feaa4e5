"""Time on a shot: exact frame rates, frame numbers and their timecode (its ease curves:
`scene.easing`).

Frame rates are exact fractions (24, 25, 30, 24000/1001). Frame i of a shot (i = 0, 1, ...)
is shown at i / fps seconds after the shot starts and carries the film frame number
FIRST_FRAME + i (docs/CONVENTIONS.md: film frame numbers start at 1001).

Timecode is counted here once (`timecode_fields`; `frame_timecode` writes it out, `timecode_frame`
reads it), SMPTE 12M as OpenTimelineIO and ffmpeg count it: at the rates in TIMECODE_RATES,
drop-frame at 29.97 and 59.94 only (";" before the frames). The edit (handoff.editorial: the EDL
and the .otio), the cut's movies and a frame's EXRs (io.images.exr_frame_header) carry it.
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
a film at one of them counts drop-frame timecode (`timecode_fields`)."""

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


TIMECODE_RATES = tuple(Fraction(n) for n in (24, 25, 30, 48, 50, 60)) + tuple(
    Fraction(n * 1000, 1001) for n in (24, 30, 48, 60))
"""The frame rates SMPTE timecode counts (OpenTimelineIO's timecode rates): a film's rate is one."""

RECORD_START = "01:00:00:00"
"""The cut's first timecode on the record side unless a film script says otherwise (its
`record_start`; "01:00:00;00" at the drop-frame rates): where Avid, Resolve, Premiere and
conform houses start a programme. The EDL's first record in, the .otio's global_start_time,
the timecode tracks of the cut's MP4 and masters."""

_TIMECODE = re.compile(r"(\d{2}):(\d{2}):(\d{2})([:;])(\d{2})")


def timecode_fields(frame: int, fps: Fraction) -> tuple[int, int, int, int, bool]:
    """(hours, minutes, seconds, frames, drop_frame) of film frame number `frame` (>= 0) at
    `fps` (one of TIMECODE_RATES): SMPTE 12M as OpenTimelineIO and ffmpeg count it, drop-frame
    at 29.97 and 59.94 (frame numbers 0 and 1, or 0-3, skipped each minute but every tenth),
    wrapping at 24 hours; frames counts to the nominal rate (0-59 at 60). SplatfilmError for
    another rate or a negative frame."""
    fps = Fraction(fps)
    if fps not in TIMECODE_RATES:
        raise SplatfilmError(f"{fps} fps has no SMPTE timecode (EDLs and timecode tracks count 23.976, 24, 25, "
                             "29.97, 30, 47.952, 48, 50, 59.94 or 60 frames a second)")
    nominal, frame = round(fps), int(frame)
    if frame < 0:
        raise SplatfilmError(f"frame {frame}: timecode counts from frame 0")
    drop = fps in DROP_FRAME_RATES
    if drop:
        skipped = nominal // 15  # frame numbers a drop-frame minute skips: 2 at 29.97, 4 at 59.94
        per_ten, per_minute = nominal * 600 - 9 * skipped, nominal * 60 - skipped
        tens, rest = divmod(frame, per_ten)
        frame += 9 * skipped * tens + (skipped * ((rest - skipped) // per_minute) if rest > skipped else 0)
    hours, minutes = frame // (nominal * 3600) % 24, frame // (nominal * 60) % 60
    return hours, minutes, frame // nominal % 60, frame % nominal, drop


def timecode_day(fps: Fraction) -> int:
    """Frames in 24 hours of timecode at `fps` (one of TIMECODE_RATES), where `timecode_fields`
    wraps: fewer than 24 h of frames at the drop-frame rates, whose timecode skips numbers."""
    fps = Fraction(fps)
    nominal = round(fps)
    return nominal * 86400 - (nominal // 15 * 1296 if fps in DROP_FRAME_RATES else 0)  # 1296 = 1440 - 144 minutes


def frame_timecode(frame: int, fps: Fraction) -> str:
    """Timecode ("HH:MM:SS:FF", "HH:MM:SS;FF" drop-frame) of film frame number `frame` at
    `fps` (`timecode_fields`), as OpenTimelineIO writes it into EDLs and ffmpeg into timecode
    tracks."""
    hours, minutes, seconds, frames, drop = timecode_fields(frame, fps)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{';' if drop else ':'}{frames:02d}"


def timecode_frame(timecode: str, fps: Fraction) -> int:
    """The frame number (>= 0) whose timecode at `fps` (`frame_timecode`) is `timecode`:
    "HH:MM:SS:FF", or "HH:MM:SS;FF" at the drop-frame rates (29.97, 59.94), which count no
    other. SplatfilmError saying what is wrong: another form, the other separator, a field out
    of range, or a frame number drop-frame skips."""
    fps = Fraction(fps)
    timecode_fields(0, fps)  # a rate SMPTE timecode counts
    m = _TIMECODE.fullmatch(timecode.strip()) if isinstance(timecode, str) else None
    if m is None:
        raise SplatfilmError(f"expected a timecode \"HH:MM:SS:FF\" (\"HH:MM:SS;FF\" drop-frame), got {timecode!r}")
    hours, minutes, seconds, frames = (int(m.group(k)) for k in (1, 2, 3, 5))
    nominal, drop, rate = round(fps), fps in DROP_FRAME_RATES, f"{float(fps):g} fps"
    given = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if drop and m.group(4) == ":":
        raise SplatfilmError(f"{timecode}: timecode at {rate} is drop-frame; write {given};{frames:02d}")
    if not drop and m.group(4) == ";":
        raise SplatfilmError(f"{timecode}: ';' marks drop-frame timecode, which {rate} does not count; "
                             f"write {given}:{frames:02d}")
    if hours >= 24 or minutes >= 60 or seconds >= 60 or frames >= nominal:
        raise SplatfilmError(f"{timecode}: out of range (hours 00-23, minutes and seconds 00-59, frames 00-"
                             f"{nominal - 1:02d} at {rate})")
    frame = (hours * 3600 + minutes * 60 + seconds) * nominal + frames
    if drop:
        skipped = nominal // 15  # as timecode_fields counts them
        if seconds == 0 and frames < skipped and minutes % 10:
            raise SplatfilmError(f"{timecode}: no frame has this timecode (drop-frame skips frames 00-"
                                 f"{skipped - 1:02d} of every minute but every tenth; the next is "
                                 f"{given};{skipped:02d})")
        total_minutes = hours * 60 + minutes
        frame -= skipped * (total_minutes - total_minutes // 10)
    return frame


def default_record_start(fps: Fraction) -> int:
    """The record side's first frame (a frame number at `fps`) when a film script gives no
    `record_start`: RECORD_START's, drop-frame at 29.97 and 59.94."""
    sep = ";" if Fraction(fps) in DROP_FRAME_RATES else ":"
    return timecode_frame(RECORD_START[:8] + sep + RECORD_START[9:], fps)
