"""The edit as OpenTimelineIO: an `.otio` timeline and a CMX3600 `.edl`, clips pointing at
the rendered shots with their frame ranges and rate.

The hand-off writes them after a render (`write_editorial`; `splatfilm render` and `splatfilm
demo` run it through render_film's `then`, while the render still holds the output folder):
TITLE.otio and TITLE.edl beside the cut once every shot has its MP4 (film.cut.cut_ready);
while the cut waits for a shot, the earlier ones are removed, as they show another cut.

Frame numbers follow docs/CONVENTIONS.md: a shot's files start at 1001, the first `handles`
frames are its head handle and the last `handles` its tail; the cut uses what lies between.
The .otio and the .edl name the same media: each clip's active media is the shot's MP4,
whose timecode track starts at the timecode of its first frame number (`frame_timecode`:
frame 1001 at 24 fps is 00:00:41:17), so the EDL's source timecodes land on the right
frames; the .otio keeps the PNG sequence as a second reference ("png_sequence", an
ImageSequenceReference whose frame numbers are exact) for tools that conform to images.
Each clip's reel is its shot's reel name (`reel_names`: the EDL's reel column, and the reel of the
timecode track of the shot's ProRes masters), not a truncation of its file name.

Timecode is counted once, in shots.timing (`timecode_fields`; `frame_timecode` writes it out).
The cut's record side starts at the film's `record_start` (by default shots.timing.RECORD_START,
01:00:00:00, as editorial timelines do): the EDL's first record in, the .otio's
global_start_time and the cut movies' timecode tracks, while the source side counts
the shots' frame numbers (1001...). The EDL's header says which count its timecodes use
(`FCM: NON-DROP FRAME` or `FCM: DROP FRAME`), which OpenTimelineIO's cmx_3600 writer leaves out.
"""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from splatfilm.errors import SplatfilmError
from splatfilm.film.cut import ShotClip, cut_ready, remove_earlier_cut, shot_clips
from splatfilm.film.render import MANIFEST
from splatfilm.film.script import Film
from splatfilm.io.atomic import atomic_write
from splatfilm.io.manifest import Manifest
from splatfilm.io.paths import relative_path
from splatfilm.shots.timing import DROP_FRAME_RATES, default_record_start, frame_timecode

if TYPE_CHECKING:
    import opentimelineio as otio


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


def build_timeline(title: str, shots: list[ShotClip], fps: Fraction, base: Path,
                   record_start: int | None = None) -> otio.schema.Timeline:
    """An otio.schema.Timeline with one video track of `shots` in order (each an OpenTimelineIO
    Clip: its cut is its source_range, its rendered frames its media's available_range, its MP4
    the ExternalReference, its PNGs the ImageSequenceReference); media paths are
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


def write_editorial(film: Film, out_dir: str | Path,
                    log: Callable[[str], None] | None = None) -> tuple[Path, Path] | None:
    """out_dir/TITLE.otio and out_dir/TITLE.edl, the edit of `film` as rendered into out_dir,
    once every shot has its MP4 there (`cut_ready`, as the cut MP4 is made); returns their
    paths. Until then the earlier ones are removed (they show another cut), a status line
    (splatfilm.report) says so and None is returned. `log`: called with the line that says
    what was written (the CLI prints it on stdout). Run it after render_film while the render
    still holds the folder (its `then`), as the CLI does."""
    out = Path(out_dir)
    paths = (out / f"{film.title}.otio", out / f"{film.title}.edl")
    if not cut_ready(film, out, Manifest.load(out / MANIFEST).section("movies")):
        remove_earlier_cut(list(paths), "the timeline waits")
        return None
    timeline = build_timeline(film.title, shot_clips(film, out), film.fps, out, film.record_start)
    for path in paths:
        write_timeline(path, timeline)
    if log is not None:
        log(f"wrote {paths[0].name}, {paths[1].name}")
    return paths
