"""The edit of a rendered film: each shot's MP4 and USD camera, and once every shot has its
frames (`cut_ready`), the cut MP4 (the shots without their handles, in order) and a contact
sheet. The cut's timeline (.otio, .edl) is the hand-off's (handoff/editorial.py), made from
the same `shot_clips` after the render.

Each movie is made again only when the frames it shows changed: `movies` (a section of the
film's manifest) keeps, per file, the digest of the frame keys it was made from. While a shot
has no MP4 the cut waits, and the earlier cut's files are removed: they show another cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from splatfilm import report
from splatfilm.film.script import Film
from splatfilm.shots.timing import frame_timecode
from splatfilm.io.digest import content_digest


@dataclass
class ShotClip:
    """One rendered shot as a clip of the edit. first_frame: number of its first file (1001);
    frames: how many were rendered, handles included; cut_in, cut_frames: its cut,
    `cut_frames` frames from frame number `cut_in` (the film's FilmShot.cut_in / cut_frames);
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


@dataclass
class CutOutputs:
    """What the edit wrote; the film-wide files are None until every shot has been rendered."""

    film_mp4: Path | None = None
    contact_sheet: Path | None = None


def movie_record(film: Film, facts: dict, shots: list[int], refined: set[str], cut: bool = False, **extra) -> dict:
    """The provenance record of a movie of one shot (`shots` = [its index]: its name and
    frame range) or, with `cut`, of the film's cut of `shots`; `facts` from
    FrameRenderer.facts(); `refined`: names of shots with a frame a generative refiner changed.
    Its `timecode` is the movie's first frame's, as its timecode track says: a shot's first
    frame number's, or the cut's record start (the film's `record_start`)."""
    from splatfilm.io.provenance import provenance_record

    names = [film.shots[k].name for k in shots]
    if cut:
        extra["cut"] = names
        extra["timecode"] = frame_timecode(film.record_start, film.fps)
    else:
        shot = film.shots[shots[0]].shot
        extra["frame_range"] = [shot.first_frame, shot.last_frame]
        extra["timecode"] = frame_timecode(shot.first_frame, film.fps)
    return provenance_record(**facts, shot=None if cut else names[0], refined=any(n in refined for n in names),
                             **extra)


def write_shot_media(film: Film, out_dir: Path, shot_index: int, frame_keys: list[str], movies: dict,
                     facts: dict | None = None, refined: set[str] | None = None) -> None:
    """out_dir/SHOT.mp4 (every frame, handles included; its timecode track starts at the first
    frame number's timecode; MP4 keeps no reel name, the masters' MOVs do) and out_dir/cameras/SHOT.usda,
    unless they exist and were made from the same frames (`frame_keys`, in order). With
    `facts` (FrameRenderer.facts()) the MP4 carries its provenance record. SHOT.usda carries
    the film's motion-blur shutter as the world stage's cameras do. A distorting lens's
    SHOT.usda is the pinhole camera plus its distortion (`shots.interchange.usd_lens_data`); a
    shot whose lens no USD camera holds (a panorama) gets none, which a note says."""
    from splatfilm.io.usd_splats import usd_path_problem
    from splatfilm.io.video import encode_sequence
    from splatfilm.shots.interchange import export_shot, usd_camera_problem

    fs = film.shots[shot_index]
    timecode = frame_timecode(fs.shot.first_frame, film.fps)
    # The encoder's quality is in the key too: a changed crf encodes again.
    digest = content_digest(("".join(frame_keys) + timecode + f"crf{film.crf}").encode())
    mp4 = out_dir / f"{fs.name}.mp4"
    if movies.get(mp4.name) != digest or not mp4.exists():
        record = None if facts is None else movie_record(film, facts, [shot_index], refined or set())
        encode_sequence(out_dir / fs.name / f"{fs.name}.%04d.png", fs.shot.first_frame, film.fps, mp4, crf=film.crf,
                        timecode=timecode, provenance=record, pixel_aspect=film.pixel_aspect)
        movies[mp4.name] = digest
    usd = out_dir / "cameras" / f"{fs.name}.usda"
    shutter = film.motion_blur["shutter_deg"] if film.motion_blur else None
    # The camera file says what the frames were shot with, shutter included: one written
    # before it carried the shutter is written again.
    usd_digest = content_digest(f"{digest}shutter{shutter}".encode())
    problem = usd_camera_problem(fs.shot.lens) or usd_path_problem(usd)
    if problem:
        # Refusing here would end the render after every frame was made, with no cut or
        # timeline; a camera file left from an earlier take would not match the frames.
        usd.unlink(missing_ok=True)
        movies.pop(usd.name, None)
        report.note(f"{fs.name}: no USD camera ({problem})")
    elif movies.get(usd.name) != usd_digest or not usd.exists():
        export_shot(fs.shot, usd, depth_of_field=film.depth_of_field, shutter_deg=shutter)
        movies[usd.name] = usd_digest


def shot_clips(film: Film, out_dir: Path) -> list[ShotClip]:
    """Every shot's clip of the edit (its rendered media in out_dir), in film order."""
    return [ShotClip(fs.name, fs.shot.first_frame, fs.shot.frame_count, fs.cut_in, fs.cut_frames,
                      out_dir / fs.name, f"{fs.name}.", out_dir / f"{fs.name}.mp4") for fs in film.shots]


def cut_ready(film: Film, out_dir: Path, movies: dict) -> bool:
    """Whether every shot of `film` has its MP4 in out_dir, made by a render (recorded in
    `movies`, the manifest's section): the cut and its timeline (handoff/editorial.py) wait
    until then."""
    return all((out_dir / f"{fs.name}.mp4").exists() and movies.get(f"{fs.name}.mp4") for fs in film.shots)


def remove_earlier_cut(paths: list[Path], waiting: str, record: dict | None = None) -> None:
    """While the cut waits for a shot (not `cut_ready`): remove `paths`, files of an earlier
    cut (of a film without that shot, they would show, and relink to, other frames), drop
    their entries from `record` (a manifest section naming them), and say as a status line
    that `waiting` ("the timeline waits") until every shot has been rendered."""
    stale = [p for p in paths if p.exists()]
    for p in paths:
        p.unlink(missing_ok=True)
        if record is not None:
            record.pop(p.name, None)
    report.status(f"{waiting} until every shot has been rendered"
                  + (f" (removed the earlier {', '.join(p.name for p in stale)})" if stale else ""))


def write_cut(film: Film, out_dir: Path, movies: dict, facts: dict | None = None,
              refined: set[str] | None = None) -> Path:
    """out_dir/TITLE.mp4: each shot's cut range (its handles left out), joined, with a timecode
    track from the EDL's record start (the film's `record_start`); made again only when a
    shot's MP4, handles or the record start changed. With `facts` it carries its provenance record."""
    from splatfilm.io.video import add_provenance, concat_videos, encode_sequence

    media = shot_clips(film, out_dir)
    timecode = frame_timecode(film.record_start, film.fps)
    digest = content_digest([movies[f"{m.name}.mp4"] for m in media] + [fs.handles for fs in film.shots]
                            + [timecode])
    film_mp4 = out_dir / f"{film.title}.mp4"
    if movies.get(film_mp4.name) != digest or not film_mp4.exists():
        parts = []
        for m in media:
            # The cut leaves the handles out: encode each shot's cut range, then join them.
            parts.append(encode_sequence(m.sequence_dir / f"{m.prefix}%04d.png", m.cut_in, film.fps,
                                         out_dir / ".cut" / f"{m.name}.mp4", crf=film.crf, frames=m.cut_frames,
                                         pixel_aspect=film.pixel_aspect))
        # An editor lines the cut up against the EDL's record side by this timecode (MP4 keeps no reel name).
        concat_videos(parts, film_mp4, timecode=timecode)
        if facts is not None:
            add_provenance(film_mp4, movie_record(film, facts, list(range(len(film.shots))), refined or set(), cut=True))
        movies[film_mp4.name] = digest
    return film_mp4


def write_contact_sheet(film: Film, out_dir: Path) -> Path:
    """out_dir/contact_sheet.png: a row per shot of its cut frames, one a second (at most 8),
    160 px wide, each labelled with its shot, frame number and world time. An anamorphic
    film's frames are shown desqueezed (height / pixel aspect), as its movies play, and made
    small in linear light (`downscale_display`)."""
    from splatfilm.io.images import downscale_display, read_image
    from splatfilm.shots.preview import contact_sheet_picks, tile_images

    rows = []
    for m, fs in zip(shot_clips(film, out_dir), film.shots):
        row = []
        for i in contact_sheet_picks(m.cut_frames, every=max(1, round(float(film.fps))), most=8):
            frame = m.cut_in + i
            im = read_image(m.sequence_dir / f"{m.prefix}{frame:04d}.png")[..., :3]
            w = 160
            h = max(1, round(w * im.shape[0] / (im.shape[1] * film.pixel_aspect)))
            world_t = fs.world_start + fs.shot.time_of_frame(frame)
            row.append((downscale_display(im, w, h), f"{fs.name} {frame}  t={world_t:.1f}s"))
        rows.append(row)
    columns = max(len(r) for r in rows)
    cells = [cell for r in rows for cell in r + [(None, "")] * (columns - len(r))]
    path = out_dir / "contact_sheet.png"
    tile_images([c[0] for c in cells], [c[1] for c in cells], path, columns=columns)
    return path


def write_edit(film: Film, out_dir: Path, shot_keys: dict[int, list[str]], movies: dict,
               log: Callable[[str], None] | None = None, facts: dict | None = None,
               refined: set[str] | None = None) -> CutOutputs:
    """The shot media of the shots in `shot_keys` (shot index -> its frames' keys); then, when
    every shot of the film has its MP4 (`cut_ready`), the cut and the contact sheet. With
    `facts` (FrameRenderer.facts()) the movies carry provenance; `refined`: shots a
    generative refiner changed; `log`: called with the line that says what was written (a
    result, for stdout), where there is one."""
    for k, keys in shot_keys.items():
        write_shot_media(film, out_dir, k, keys, movies, facts, refined)
    result = CutOutputs()
    if not cut_ready(film, out_dir, movies):
        remove_earlier_cut([out_dir / f"{film.title}.mp4", out_dir / "contact_sheet.png"],
                           "the film MP4 and contact sheet wait", movies)
        return result
    film_mp4 = write_cut(film, out_dir, movies, facts, refined)
    result.contact_sheet = write_contact_sheet(film, out_dir)
    result.film_mp4 = film_mp4
    media = shot_clips(film, out_dir)
    if log is not None:
        log(f"wrote {film_mp4.name} ({sum(m.cut_frames for m in media)} frames at {film.fps} fps), "
            "contact_sheet.png")
    return result
