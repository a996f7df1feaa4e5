"""Editorial masters: ProRes .mov of every shot and of the cut, beside the H.264 MP4s.

Layout in a render's folder:
    masters/SHOT.prores422hq.mov      every frame of the shot, handles included
    masters/TITLE.prores422hq.mov     the cut (handles left out), once every shot has frames
    (and .prores4444.mov: ProRes 4444 with the frames' alpha)

Timecode and reels match the edit (handoff/editorial.py): a shot's master starts at its first
frame number's timecode (frame 1001 at 24 fps is 00:00:41:17), as its MP4 and the EDL's
source column do, on the reel the EDL names; the cut's master starts at the EDL's record
start (the film's `record_start`, 01:00:00:00 by default). ProRes 4444's alpha is the alpha
the render wrote beside each frame (SHOT.FRAME.alpha.exr, or the passes EXR's A); its colour is
the frame with the film's background taken off, premultiplied by that alpha in the master's
Rec.709 signal (io.video.encode_sequence: the frames given it are straight). Burn-in
(for dailies) draws the shot name, frame number and focal length into the bottom of each
picture, at the frames' depth (a 16-bit frame stays 16-bit, of which the 10-bit master keeps
10 rather than 8: `draw_burn_in`).

A master is made again only when its frames (their keys in the render's manifest), codec,
burn-in or provenance changed (manifest section "masters"). Masters that exist are never left
stale: every later render into the folder, with or without `--masters`, remakes the codecs it
finds in masters/ with the burn-in they were made with (manifest section "master_codecs";
masters made before that record was kept are left as they are),
as a farm rebuilds a derived output whose inputs changed; an editor relinking the EDL to
them by reel and timecode would otherwise conform old pictures. While the cut cannot be made
(a shot has no frames), an existing cut master is removed, which a status line says.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from splatfilm import report
from splatfilm.errors import SplatfilmError
from splatfilm.film.cut import movie_record, remove_earlier_cut, shot_clips
from splatfilm.film.frame_render import provenance_facts
from splatfilm.film.render import MANIFEST
from splatfilm.film.script import Film, FilmShot
from splatfilm.handoff.editorial import reel_name, reel_names
from splatfilm.shots.timing import frame_timecode
from splatfilm.io.atomic import make_folder
from splatfilm.io.digest import content_digest
from splatfilm.io.manifest import Manifest
from splatfilm.io.video import PRORES, add_provenance, concat_videos, encode_sequence

MASTER_CODECS = tuple(PRORES)


def parse_masters(spec: str | None) -> tuple[str, ...]:
    """The codecs a `--masters` value names (comma-separated, from MASTER_CODECS)."""
    if not spec:
        return ()
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in MASTER_CODECS]
    if unknown or not names:
        raise SplatfilmError(f"--masters: unknown master {(unknown or [spec])[0]!r}; choose from {', '.join(MASTER_CODECS)}")
    return tuple(dict.fromkeys(names))


def kept_masters(out_dir: str | Path) -> dict[str, bool]:
    """The codecs (MASTER_CODECS) of the masters already in out_dir/masters whose making the
    manifest recorded, each with whether they were burnt in. A render into out_dir remakes
    them when their frames changed. Masters without a record (made before records were kept,
    or the manifest lost) are left alone: remade on a guess, a dailies master could lose its
    burn-in when no frame changed."""
    folder = Path(out_dir) / "masters"
    codecs = [c for c in MASTER_CODECS if folder.is_dir() and any(folder.glob(f"*.{c}.mov"))]
    if not codecs:
        return {}
    recorded = Manifest.load(Path(out_dir) / MANIFEST).section("master_codecs")
    return {c: bool(recorded[c].get("burn_in")) for c in codecs
            if isinstance(recorded.get(c), dict) and isinstance(recorded[c].get("burn_in"), bool)}


def burn_in_text(fs: FilmShot, frame: int) -> str:
    """What a dailies burn-in says of film frame `frame` of shot `fs`: name, frame, lens (with
    an anamorphic lens's squeeze: "50mm 2x")."""
    t = fs.shot.time_of_frame(frame)
    focal = float(fs.shot.sample(np.array([t])).focal_mm[0])
    squeeze = "" if fs.shot.lens.squeeze == 1 else f" {fs.shot.lens.squeeze:g}x"
    return f"{fs.name}  {frame}  {focal:.0f}mm{squeeze}"


def draw_burn_in(image: np.ndarray, text: str, pixel_aspect: float = 1.0) -> np.ndarray:
    """A copy of image [H,W,3|4] (floats in [0,1], the frame's sRGB-encoded values; a 4th
    channel is straight alpha) with `text` in white on a black band along its bottom (opaque
    there), float64 [H,W,3|4]. pixel_aspect: each pixel's width / height (an anamorphic plate's
    squeeze): the text is drawn 1 / pixel_aspect as wide, so it reads upright once the picture
    is desqueezed.

    Pillow draws in 8 bits, so it draws only the text's coverage (an 8-bit mask), which is laid
    over the frame's own values here: the picture outside the text keeps its depth (a 16-bit
    frame's 65536 codes, where drawing into the frame made it 8-bit). The text is laid over in
    the frame's encoded values, where the renderer composites and Pillow drew it before (and
    where the 4444's colour is premultiplied): on the black band white over it is the coverage
    itself, so an 8-bit frame's burn-in is what it was."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = image.shape[:2]
    size = max(8, h // 18)
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    band = box[3] - box[1] + size // 2
    mask = Image.new("L", (size // 2 + box[2] + 1, band), 0)
    ImageDraw.Draw(mask).text((size // 2, size // 4 - box[1]), text, font=font, fill=255)
    if pixel_aspect != 1:
        # Drawn square-pixelled as the desqueezed picture shows it, then squeezed onto the plate.
        mask = mask.resize((max(1, round(mask.width / pixel_aspect)), band), Image.Resampling.LANCZOS)
    out = np.array(image, dtype=np.float64)
    top = max(h - band, 0)  # a band taller than the picture fills it, its mask's top cut off
    out[top:, :, :3] = 0.0
    if out.shape[-1] == 4:
        out[top:, :, 3] = 1.0
    cover = np.asarray(mask, dtype=np.float64)[band - (h - top):, :w, None] / 255.0
    rows = out[top:, :cover.shape[1], :3]
    rows[...] = rows * (1.0 - cover) + cover
    return out


def _frame_alpha(stem: Path) -> np.ndarray | None:
    """The alpha [H,W] a render wrote beside a frame (stem: folder/SHOT.FRAME), or None."""
    from splatfilm.io.images import read_depth, read_exr_layers

    if stem.with_name(stem.name + ".alpha.exr").exists():
        return read_depth(stem.with_name(stem.name + ".alpha.exr"), channel="A")
    if stem.with_name(stem.name + ".exr").exists():
        return read_exr_layers(stem.with_name(stem.name + ".exr"))[0].get("A")
    return None


def _master_frames(film: Film, fs: FilmShot, src: Path, dst: Path, codec: str, burn_in: bool) -> bool:
    """Write the frames a master encodes into dst (SHOT.FRAME.png): with alpha for 4444 and
    the burn-in when asked, at the frames' own depth (16-bit frames stay 16-bit, burnt in or
    not). Returns whether every frame had its alpha."""
    from splatfilm.io.images import read_image_values, to_uint8, to_uint16, unpremultiply, write_png

    all_alpha = True
    for frame in fs.shot.frame_numbers:
        stem = src / f"{fs.name}.{int(frame):04d}"
        values, bits = read_image_values(stem.with_name(stem.name + ".png"))
        image = values[..., :3]
        if codec == "prores4444":
            alpha = _frame_alpha(stem)
            if alpha is None:
                all_alpha = False
                alpha = np.ones(image.shape[:2])
            a = np.asarray(alpha, dtype=np.float64)[..., None]
            image = np.concatenate([unpremultiply(image, a, film.background), a], axis=-1)
        if burn_in:
            image = draw_burn_in(image, burn_in_text(fs, int(frame)), fs.shot.lens.squeeze)
        image = to_uint16(image) if bits == 16 else to_uint8(image)
        write_png(dst / f"{fs.name}.{int(frame):04d}.png", image)
    return all_alpha


def write_masters(film: Film, out_dir: str | Path, codecs: tuple[str, ...], burn_in: bool = False,
                  provenance: bool = False, kept: dict[str, bool] | None = None) -> list[Path]:
    """Make the ProRes masters (module docstring) of the film rendered into out_dir, for
    each of `codecs` (MASTER_CODECS) with `burn_in`, and for the codecs already in
    out_dir/masters (`kept_masters`, with their recorded burn-in; `kept`: what it said, where
    the caller looked them up already); with `provenance` each carries its record. Shots
    whose frames are not all there are left out (and then the cut, whose old master is
    removed). Returns the masters' paths."""
    out = Path(out_dir)
    for c in codecs:
        if c not in MASTER_CODECS:
            raise SplatfilmError(f"unknown master {c!r}; choose from {', '.join(MASTER_CODECS)}")
    burnt = {**(kept_masters(out) if kept is None else kept), **{c: burn_in for c in codecs}}
    facts = provenance_facts(film) if provenance else None
    folder = make_folder(out / "masters")
    work = out / ".masters-frames"
    written: list[Path] = []
    with Manifest.load(out / MANIFEST) as manifest:
        made = manifest.section("masters")
        asked = manifest.section("master_codecs")
        verdicts = manifest.section("refine")
        media = shot_clips(film, out)
        keys: dict[int, list[str]] = {}  # per shot with every frame on disk, its frames' keys
        refined: set[str] = set()
        reels = reel_names([s.name for s in film.shots])
        for k, fs in enumerate(film.shots):
            names = [f"{fs.name}/{fs.name}.{int(f):04d}.png" for f in fs.shot.frame_numbers]
            if all((out / n).exists() for n in names):
                keys[k] = [manifest.frames.get(n, "") for n in names]
                if any(verdicts.get(n) for n in names):
                    refined.add(fs.name)
        complete = len(keys) == len(film.shots)
        for codec, burnt_in in burnt.items():
            asked[codec] = {"burn_in": burnt_in}
            parts: list[Path] = []
            for k in keys:
                fs, m = film.shots[k], media[k]
                timecode = frame_timecode(fs.shot.first_frame, film.fps)
                path = folder / f"{fs.name}.{codec}.mov"
                # "rec709": masters made before their signal was Rec.709 (tagged sRGB, 4444 straight) are made again;
                # "deep burn-in": burnt-in masters of 16-bit frames made when the burn-in cut them to 8 bits.
                digest = content_digest(keys[k], codec, burnt_in, provenance, timecode, sorted(refined), "rec709",
                                        *(("deep burn-in",) if burnt_in else ()))
                part = work / "cut" / f"{fs.name}.{codec}.mov"
                redo_master = made.get(path.name) != digest or not path.exists()
                redo_part = complete and (made.get(f"cut/{part.name}") != digest or not part.exists())
                src = out / fs.name
                if (redo_master or redo_part) and (burnt_in or codec == "prores4444"):
                    src = work / codec / fs.name
                    if not _master_frames(film, fs, out / fs.name, src, codec, burnt_in):
                        report.note(f"{path.name}: no alpha beside the frames (render with --alpha or --passes); "
                                    "its alpha is opaque")
                if redo_master:
                    record = None if facts is None else movie_record(film, facts, [k], refined, master=codec,
                                                                      burn_in=burnt_in)
                    encode_sequence(src / f"{fs.name}.%04d.png", fs.shot.first_frame, film.fps, path, codec=codec,
                                    timecode=timecode, reel=reels[fs.name], provenance=record,
                                    pixel_aspect=film.pixel_aspect)
                    made[path.name] = digest
                written.append(path)
                if complete:
                    if redo_part:  # the shot's cut range, to join into the cut's master
                        encode_sequence(src / f"{fs.name}.%04d.png", m.cut_in, film.fps, part, codec=codec,
                                        frames=m.cut_frames, pixel_aspect=film.pixel_aspect)
                        made[f"cut/{part.name}"] = digest
                    parts.append(part)
            path = folder / f"{film.title}.{codec}.mov"
            if not complete:
                remove_earlier_cut([path], f"the {codec} master of the cut waits", made)
                continue
            timecode = frame_timecode(film.record_start, film.fps)
            digest = content_digest([made[f"cut/{p.name}"] for p in parts], provenance, timecode)
            if made.get(path.name) != digest or not path.exists():
                reel = reel_name(film.title)
                concat_videos(parts, path, timecode=timecode, reel=reel)
                if facts is not None:
                    add_provenance(path, movie_record(film, facts, list(range(len(film.shots))), refined, cut=True,
                                                      master=codec, burn_in=burnt_in), reel)
                made[path.name] = digest
            written.append(path)
    for codec in burnt:  # the burnt-in and alpha frames were only the encoder's input; the cut's parts stay
        shutil.rmtree(work / codec, ignore_errors=True)
    return written
