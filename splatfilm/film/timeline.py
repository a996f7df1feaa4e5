"""The edit as OpenTimelineIO: an `.otio` timeline and a CMX3600 `.edl`, clips pointing at
the rendered shots with their frame ranges and rate.

Frame numbers follow docs/CONVENTIONS.md: a shot's files start at 1001, the first `handles`
frames are its head handle and the last `handles` its tail; the cut uses what lies between.
The .otio and the .edl name the same media: each clip's active media is the shot's MP4,
whose timecode track starts at the timecode of its first frame number (`frame_timecode`:
frame 1001 at 24 fps is 00:00:41:17), so the EDL's source timecodes land on the right
frames; the .otio keeps the PNG sequence as a second reference ("png_sequence", an
ImageSequenceReference whose frame numbers are exact) for tools that conform to images.
Each clip's reel is its shot's `reel_name` (the EDL's reel column, and the reel of the
timecode track of the shot's ProRes masters), not a truncation of its file name.

Timecode is counted here once (`timecode_fields`; `frame_timecode` writes it out), SMPTE 12M
as OpenTimelineIO and ffmpeg count it: at the rates in TIMECODE_RATES, drop-frame at 29.97 and
59.94 only (";" before the frames); a frame's EXRs carry it too (io.images.exr_frame_header).
The cut's record side starts at the film's `record_start` (by default RECORD_START,
01:00:00:00, as editorial timelines do; `timecode_frame` reads one): the EDL's first record in,
the .otio's global_start_time and the cut movies' timecode tracks, while the source side counts
the shots' frame numbers (1001...). The EDL's header says which count its timecodes use
(`FCM: NON-DROP FRAME` or `FCM: DROP FRAME`), which OpenTimelineIO's cmx_3600 writer leaves out.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write
from splatfilm.io.paths import relative_path
from splatfilm.shots.timing import DROP_FRAME_RATES

if TYPE_CHECKING:
    import opentimelineio as otio


@dataclass
class ShotMedia:
    """One rendered shot. first_frame: number of its first file (1001); frames: how many were
    rendered, handles included; cut_in, cut_frames: its cut, `cut_frames` frames from frame
    number `cut_in` (the film's FilmShot.cut_in / cut_frames: its clip's source range);
    sequence_dir, prefix: files are sequence_dir / f"{prefix}{frame:04d}.png"; movie: its MP4
    or None."""

    name: str
    first_frame: int
    frames: int
    cut_in: int
    cut_frames: int
    sequence_dir: Path
    prefix: str
    movie: Path | None = None


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


def edl_frame_count_mode(fps: Fraction) -> str:
    """The CMX3600 `FCM:` header line for timecodes at `fps`."""
    return f"FCM: {'DROP FRAME' if Fraction(fps) in DROP_FRAME_RATES else 'NON-DROP FRAME'}"


def _target_url(path: Path, base: Path) -> str:
    """`path` as a target_url: relative to `base` (the .otio's folder, `relative_path`); a
    file:// URL where no relative path exists (another drive)."""
    import os

    from opentimelineio.url_utils import url_from_filepath

    return relative_path(path, base) or url_from_filepath(os.path.abspath(path))


def _reel_letters(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", name) or "AX"


def reel_name(shot: str) -> str:
    """A name's reel name for EDLs and timecode tracks: its letters and digits, at most 8 (CMX3600's limit)."""
    return _reel_letters(shot)[:8]


def reel_names(shots: list[str]) -> dict[str, str]:
    """Each of a film's shots' reel names, told apart: an editor relinks by reel and timecode,
    and every shot starts at the same frame. The first 8 letters and digits (`reel_name`);
    where two shots share those (seq01_sh010, seq01_sh020), the last 8; where those too, the
    first 5 and a running number."""
    clean = {s: _reel_letters(s) for s in shots}
    first = Counter(c[:8] for c in clean.values())
    out = {s: c[:8] if first[c[:8]] == 1 else c[-8:] for s, c in clean.items()}
    shared, numbered = Counter(out.values()), Counter()
    for s in shots:
        if shared[out[s]] > 1:
            numbered[out[s]] += 1
            out[s] = f"{out[s][:5]}{numbered[out[s]]:03d}"
    return out


def build_timeline(title: str, shots: list[ShotMedia], fps: Fraction, base: Path,
                   record_start: int | None = None) -> otio.schema.Timeline:
    """An otio.schema.Timeline with one video track of `shots` in order; media paths are
    relative to `base` (the folder the .otio is written to). record_start: the frame number
    (at `fps`) of the cut's first frame on the record side, its global_start_time (None:
    `default_record_start`)."""
    import opentimelineio as otio

    rate = float(fps)
    record_start = default_record_start(fps) if record_start is None else int(record_start)
    timeline = otio.schema.Timeline(name=title)
    # OTIO leaves a relative target_url's base open (its own file-bundle tools take the cwd):
    # say which one these are.
    timeline.metadata["splatfilm"] = {"media_paths": "relative to this file's folder",
                                      "start_timecode": frame_timecode(record_start, fps),
                                      "drop_frame": fps in DROP_FRAME_RATES}
    timeline.global_start_time = otio.opentime.RationalTime(record_start, rate)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    reels = reel_names([s.name for s in shots])
    for s in shots:
        if s.cut_frames <= 0:
            raise SplatfilmError(f"shot {s.name}: its cut is empty ({s.cut_frames} frames from frame {s.cut_in})")
        available = otio.opentime.TimeRange(otio.opentime.RationalTime(s.first_frame, rate),
                                            otio.opentime.RationalTime(s.frames, rate))
        seq = otio.schema.ImageSequenceReference(
            target_url_base=_target_url(s.sequence_dir, base).rstrip("/") + "/",
            name_prefix=s.prefix, name_suffix=".png", start_frame=s.first_frame, frame_step=1,
            rate=rate, frame_zero_padding=4, available_range=available)
        refs = {"png_sequence": seq}
        if s.movie is not None:
            refs["DEFAULT_MEDIA"] = otio.schema.ExternalReference(target_url=_target_url(s.movie, base),
                                                                  available_range=available)
        clip = otio.schema.Clip(name=s.name, source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(s.cut_in, rate), otio.opentime.RationalTime(s.cut_frames, rate)))
        clip.set_media_references(refs, "DEFAULT_MEDIA" if s.movie is not None else "png_sequence")
        clip.metadata["cmx_3600"] = {"reel": reels[s.name]}
        track.append(clip)
    return timeline


def write_timeline(path: str | Path, timeline: otio.schema.Timeline) -> Path:
    """Write `.otio` (otio_json) or `.edl` (CMX3600), atomically. The EDL's record column
    starts at the timeline's global_start_time, as the .otio's does."""
    import opentimelineio as otio

    path = Path(path)
    if path.suffix == ".otio":
        text = otio.adapters.write_to_string(timeline, "otio_json")
    elif path.suffix == ".edl":
        edl = timeline.deepcopy()
        for clip in edl.find_clips():
            refs = clip.media_references()
            if "DEFAULT_MEDIA" not in refs:  # EDL has no image sequences: name the sequence folder as the source
                seq = refs["png_sequence"]
                clip.set_media_references({"DEFAULT_MEDIA": otio.schema.ExternalReference(
                    target_url=seq.target_url_base, available_range=seq.available_range)}, "DEFAULT_MEDIA")
            else:
                clip.active_media_reference_key = "DEFAULT_MEDIA"
        start = edl.global_start_time
        if start is not None and start.value:
            # The cmx_3600 writer counts record timecodes from the track's start, whatever
            # global_start_time says; a gap (which it writes as no event) moves them there.
            edl.tracks[0].insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, start.rate), start)))
        text = otio.adapters.write_to_string(edl, "cmx_3600", style="avid")
        # The adapter writes timecodes drop-frame or not by the rate, but no FCM line saying
        # which: put it under the title, where CMX3600 readers (Avid, Resolve, Premiere) look.
        fps = Fraction(edl.tracks[0].duration().rate).limit_denominator(1001)
        title, _, events = text.partition("\n\n") if text.startswith("TITLE:") else ("", "", text)
        text = "".join(f"{line}\n" for line in (title, edl_frame_count_mode(fps)) if line) + "\n" + events
    else:
        raise SplatfilmError(f"{path}: timelines are written as .otio or .edl")
    atomic_write(path, [text.encode()])
    return path
