"""Movies from PNG sequences, with the ffmpeg that imageio-ffmpeg ships: H.264 MP4s, and
ProRes .mov masters for editorial.

The frame rate goes to ffmpeg as an exact fraction (24000/1001 stays 24000/1001). H.264 is
yuv420p (what players and editors expect), sizes padded to even numbers as yuv420p needs,
quality set by CRF, tagged Rec.709 with the sRGB transfer (the frames are display sRGB).
ProRes (prores_ks) is 422 HQ (profile 3, yuv422p10le) or 4444 with the PNGs' alpha (profile
4, yuva444p10le, colour premultiplied), Rec.709 throughout (`PRORES_REC709`): the signal
re-encoded for a BT.1886 (gamma 2.4) display, so it shows the light an sRGB display shows of
the PNG. A movie may carry a timecode track (`tmcd`) naming its first frame, with a
reel name, so an editing system lines it up with an EDL's source timecodes, a sample (pixel)
aspect ratio when the frames are an anamorphic plate (players desqueeze by it), and a
provenance record in its "comment" metadata (io/provenance.py), sealed with the hash of its
coded video packets. Files are written to a temporary name and renamed, so an interrupted
encode leaves no broken movie behind.

Reading video: `count_frames` counts a movie's frames from its container (ffmpeg reads the
packets without decoding them), and `frames_from_video` writes evenly spaced frames of a
capture's video as PNGs for SfM, decoding the video once, each frame written atomically and
kept while the video's bytes stay the same. A sampled frame that shows the same picture as the
frame kept before it (a frozen or duplicated stretch: a held frame, a stalled stream, a clip
padded to a constant rate) is dropped and said, since SfM would pose it at the same place and
the fit weigh that view once per copy; frames.json says which source frame each PNG is.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from splatfilm.errors import SplatfilmError, last_line
from splatfilm.io.atomic import atomic_path, make_folder, temp_path_for
from splatfilm.io.cache import CacheEntry
from splatfilm.io.digest import file_digest
from splatfilm.io.images import write_png


class _TurnedFramesFilter(logging.Filter):
    """Drops imageio-ffmpeg's warning that a video's frames are read at another size than it
    stores them: ffmpeg turns a phone video upright by its rotation (display matrix), as players
    show it, which is what SfM wants; the line read as a fault in every portrait phone capture."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is different from the source frame size" not in record.getMessage()


logging.getLogger("imageio_ffmpeg").addFilter(_TurnedFramesFilter())


def ffmpeg_exe() -> str:
    """The ffmpeg binary imageio-ffmpeg brings (a dependency); SplatfilmError if it is missing."""
    try:
        import imageio_ffmpeg
    except ImportError as e:  # a dependency, so only a broken install gets here
        raise SplatfilmError(f"video needs imageio-ffmpeg ({e})") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg(args: list[str]) -> subprocess.CompletedProcess:
    """ffmpeg run with `args`, its stdout and stderr captured as text. Its reports echo file
    names as their bytes, so they are decoded with errors="replace": a folder whose name is not
    UTF-8 (b"caf\xe9") made probe_timecode a UnicodeDecodeError after the movie was written."""
    return subprocess.run([ffmpeg_exe(), *args], capture_output=True, text=True, errors="replace")


def _run(args: list[str], output: Path) -> None:
    with atomic_path(output) as tmp:
        res = _ffmpeg(["-y", "-loglevel", "error", *args, str(tmp)])
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise SplatfilmError(f"{output}: ffmpeg failed: {last}")


# prores_ks settings per master: profile, pixel format, and more.
# Every movie is Rec.709 (an MP4 with the sRGB transfer, the frames' encoding; the ProRes masters
# below with BT.709's): RGB to YUV through the
# BT.709 matrix (swscale's default is BT.601, which players read as a hue shift on HD), and the
# frames' colour properties set rather than taken from the PNGs (a PNG without an sRGB chunk left
# a master's transfer unspecified while its neighbour's said sRGB).
REC709 = ("scale=out_color_matrix=bt709:out_range=tv,"
          "setparams=color_primaries=bt709:color_trc=iec61966-2-1:colorspace=bt709:range=tv")
REC709_TAGS = ["-color_primaries", "bt709", "-color_trc", "iec61966-2-1", "-colorspace", "bt709", "-color_range", "tv"]

# ProRes cannot say sRGB: Apple's frame header defines transfer 1 (BT.709), 2, 16 and 18 only,
# so Apple's decoders, Unreal and Resolve read the 13 H.264 carries as BT.709 and show it on
# BT.1886, gamma 2.4: the sRGB-graded frames' shadows came out up to 60% darker. The masters
# are tagged 1-1-1 and their signal is what that tag promises: each code value the BT.1886
# inverse (power 1/2.4) of the light the sRGB EOTF gives the PNG's, so a Rec.709 reference
# monitor shows what an sRGB display shows of the PNG (Resolve's sRGB -> Rec.709 (gamma 2.4)).
# On the power segment that is (V + 0.055) / 1.055, a lift; the toe is (V / 12.92)^(1/2.4).
# Leaving the code values and tagging 1-1-1 would keep the tag honest in name only. The curve
# works at 16 bits (the frames' 8 widened), before the matrix, on the straight colour; 4444's
# colour is then premultiplied, in the signal's values, as Apple's encoders write it (a reader
# cannot tell: neither the bitstream nor the MOV says which). 4444 goes through geq, since
# lutrgb at 16 bits also rewrites alpha (65535 came out 65343, a solid matte let 0.3% through).
def _bt1886(c: str) -> str:
    """geq's expression of a plane `c` (r, g, b) at 16 bits re-encoded sRGB -> BT.1886, in [0, 1]."""
    return (f"if(lte({c}(X\\,Y)/65535\\,0.04045)\\,pow({c}(X\\,Y)/65535/12.92\\,1/2.4)\\,"
            f"({c}(X\\,Y)/65535+0.055)/1.055)")


_LUT_BT1886 = "if(lte(val/maxval\\,0.04045)\\,pow(val/maxval/12.92\\,1/2.4)\\,(val/maxval+0.055)/1.055)*maxval"
PRORES_SIGNAL = {
    "prores422hq": f"format=gbrp16le,lutrgb=r={_LUT_BT1886}:g={_LUT_BT1886}:b={_LUT_BT1886}",
    "prores4444": "format=gbrap16le,geq=" + ":".join(f"{c}={_bt1886(c)}*alpha(X\\,Y)" for c in "rgb")
                  + ":a=alpha(X\\,Y)",
}
PRORES_REC709 = ("scale=out_color_matrix=bt709:out_range=tv,"
                 "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv")
PRORES_TAGS = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv"]

PRORES = {
    "prores422hq": ["-profile:v", "3", "-pix_fmt", "yuv422p10le"],
    "prores4444": ["-profile:v", "4", "-pix_fmt", "yuva444p10le", "-alpha_bits", "16"],
}


def encode_sequence(pattern: str | Path, start_number: int, fps: Fraction, output: str | Path, crf: int = 18,
                    frames: int | None = None, timecode: str | None = None, codec: str = "h264",
                    reel: str | None = None, provenance: dict | None = None, pixel_aspect: float = 1.0) -> Path:
    """Encode a numbered PNG sequence (`shot_010.%04d.png`, first frame `start_number`) into a
    movie at exactly `fps` frames per second: codec "h264" (MP4) or a key of PRORES (.mov),
    with a timecode track starting at `timecode` ("HH:MM:SS:FF") when given, named `reel`,
    and the provenance record sealed into its metadata when given. `pixel_aspect` (an
    anamorphic lens's squeeze, width / height of a pixel as shown) is the stream's sample
    aspect ratio (`sample_aspect_fraction`), set only when not 1. Returns the path."""
    output = Path(output)
    make_folder(output.parent)
    width, height = _first_frame_size(pattern, start_number)
    if codec == "prores422hq" and width % 2:
        # 4:2:2 halves the width: prores_ks writes a zero last chroma column (a green edge), prores_aw refuses
        raise SplatfilmError(f"{output}: ProRes 422 needs an even width, the frames are {width}x{height}")
    args = ["-framerate", f"{fps.numerator}/{fps.denominator}", "-start_number", str(start_number), "-i", str(pattern)]
    if frames is not None:
        args += ["-frames:v", str(frames)]
    # The sample aspect ratio rides in the stream (H.264's VUI, the MOV's pasp), so remuxes and
    # joins keep it; square pixels add nothing, leaving those movies as they were.
    sar = "" if pixel_aspect == 1 else f",setsar=r={sample_aspect_fraction(pixel_aspect)}:max={_SAR_MAX}"
    if codec == "h264":
        # yuv420p halves both sizes: an odd one is padded with a copy of the last column/row, so
        # the edge's chroma is not averaged with black
        pad = "" if not (width % 2 or height % 2) else (
            f"pad=ceil(iw/2)*2:ceil(ih/2)*2,fillborders=right={width % 2}:bottom={height % 2}:mode=smear,")
        args += ["-vf", f"{pad}{REC709}{sar}", "-c:v", "libx264", "-preset", "medium",
                 "-crf", str(crf), "-pix_fmt", "yuv420p", *REC709_TAGS, "-r", f"{fps.numerator}/{fps.denominator}",
                 "-movflags", "+faststart"]
    elif codec in PRORES:
        args += ["-vf", f"{PRORES_SIGNAL[codec]},{PRORES_REC709}{sar}", "-c:v", "prores_ks", *PRORES[codec], "-vendor", "apl0", *PRORES_TAGS,
                 "-r", f"{fps.numerator}/{fps.denominator}"]
    else:
        raise SplatfilmError(f"{output}: unknown codec {codec!r}; choose h264, {', '.join(PRORES)}")
    if timecode is not None:
        args += ["-timecode", timecode]
    if reel is not None:
        args += ["-metadata:s:v:0", f"reel_name={reel}"]
    _run(args, output)
    if provenance is not None:
        add_provenance(output, provenance, reel)
    return output


# The largest numerator or denominator of a sample aspect ratio: 1.33 is 133/100, 1.8 is 9/5.
_SAR_MAX = 1000


def sample_aspect_fraction(pixel_aspect: float) -> Fraction:
    """A pixel aspect ratio (> 0) as the fraction a movie's sample aspect ratio holds, its terms
    at most 1000 (2 -> 2/1, 1.33 -> 133/100)."""
    return Fraction(pixel_aspect).limit_denominator(_SAR_MAX)


def probe_sample_aspect(path: str | Path) -> Fraction:
    """The sample (pixel) aspect ratio of a movie's first video stream as ffmpeg reports it:
    1 when the stream says none (square pixels)."""
    res = _ffmpeg(["-hide_banner", "-i", str(path)])
    for line in res.stderr.splitlines():
        if "Video:" in line:
            m = re.search(r"\[SAR (\d+):(\d+)", line)
            return Fraction(int(m.group(1)), int(m.group(2))) if m and int(m.group(2)) else Fraction(1)
    raise SplatfilmError(f"{path}: no video stream")


def _first_frame_size(pattern: str | Path, start_number: int) -> tuple[int, int]:
    """(width, height) of a numbered sequence's first frame."""
    from PIL import Image

    first = Path(str(pattern) % start_number)
    try:
        with Image.open(first) as im:
            return im.size
    except OSError as e:
        raise SplatfilmError(f"{first}: cannot read the sequence's first frame ({e})") from None


def stream_digest(path: str | Path) -> str:
    """sha256 (hex) of a movie's first video stream's coded packets, as ffmpeg's hash muxer
    computes it: the same after a remux that only changes metadata, different once a picture is."""
    res = _ffmpeg(["-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
                   "-c", "copy", "-f", "hash", "-hash", "sha256", "-"])
    value = res.stdout.strip().partition("=")[2]
    if res.returncode != 0 or not value:
        last = (res.stderr.strip().splitlines() or ["no video stream"])[-1]
        raise SplatfilmError(f"{path}: cannot read its video: {last}")
    return value


def add_provenance(path: str | Path, record: dict, reel: str | None = None) -> None:
    """Seal `record` with the movie's stream digest into its "comment" metadata (a remux: the
    coded pictures and the timecode stay as they are; the timecode track is made again, named
    `reel`)."""
    from splatfilm.io.provenance import seal

    path = Path(path)
    text = seal(record, stream_digest(path))
    args = ["-i", str(path), "-map", "0:v", "-c", "copy", "-map_metadata", "0", "-metadata", f"comment={text}"]
    timecode = probe_timecode(path)
    if timecode is not None:  # the timecode track is rebuilt from the metadata, with its reel name
        args += ["-timecode", timecode]
        if reel is not None:
            args += ["-metadata:s:v:0", f"reel_name={reel}"]
    if path.suffix.lower() == ".mp4":
        args += ["-movflags", "+faststart"]
    _run(args, path)


def read_movie_provenance(path: str | Path) -> tuple[str | None, str]:
    """(the sealed record's text a movie carries in its "comment" metadata, None when it
    carries none; `stream_digest` of its coded packets now)."""
    digest = stream_digest(path)
    return probe_metadata(path).get("comment"), digest


def probe_metadata(path: str | Path) -> dict[str, str]:
    """The container's metadata (key -> value)."""
    res = _ffmpeg(["-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "ffmetadata", "-"])
    meta: dict[str, str] = {}
    for line in res.stdout.splitlines():
        if line.startswith("["):
            break  # chapters and streams follow the global block
        if "=" in line and not line.startswith(";"):
            key, _, value = line.partition("=")
            meta.setdefault(key, re.sub(r"\\(.)", r"\1", value))  # ffmetadata escapes =;#\ and newlines with \
    return meta


def probe_reel(path: str | Path) -> str | None:
    """The reel name of a movie's timecode track, or None."""
    res = _ffmpeg(["-hide_banner", "-i", str(path)])
    for line in res.stderr.splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "reel_name" and value.strip():
            return value.strip()
    return None


def probe_timecode(path: str | Path) -> str | None:
    """The start timecode ("HH:MM:SS:FF", ";" before FF when drop-frame) of a movie's timecode
    track or metadata, or None when it has none."""
    res = _ffmpeg(["-hide_banner", "-i", str(path)])
    for line in res.stderr.splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "timecode" and value.strip():
            return value.strip()
    return None


def concat_videos(parts: list[Path], output: str | Path, timecode: str | None = None, reel: str | None = None) -> Path:
    """Join movies of the same size, rate and codec, in order, without re-encoding; with a
    timecode track starting at `timecode`, named `reel`, when given."""
    output = Path(output)
    if not parts:
        raise SplatfilmError(f"{output}: nothing to join")
    listing = temp_path_for(output.with_suffix(".txt"))
    extra = [] if timecode is None else ["-timecode", timecode]
    extra += [] if reel is None else ["-metadata:s:v:0", f"reel_name={reel}"]
    try:
        # ffmpeg reads the listing's names as bytes: surrogateescape gives a name that is not
        # UTF-8 its own bytes back; a quote is closed, escaped and reopened, as its quoting wants.
        listing.write_text("".join("file '{}'\n".format(str(Path(p).resolve()).replace("'", "'\\''"))
                                   for p in parts), encoding="utf-8", errors="surrogateescape")
        _run(["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v", "-c", "copy", *extra,
              "-movflags", "+faststart"], output)
    finally:
        listing.unlink(missing_ok=True)
    return output


def probe_frames(path: str | Path) -> tuple[int, tuple[int, int]]:
    """(frame count, as `count_frames` counts it; (width, height) in pixels) of a video."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        size = tuple(next(reader)["size"])  # the header ffmpeg reports before the first frame
    finally:
        reader.close()
    return count_frames(path), size


def count_frames(video: str | Path) -> int:
    """The number of frames `video`'s container holds: ffmpeg reads its first video stream's
    packets, one a frame, without decoding them (a decode of the whole stream is what
    `frames_from_video` does once). A cut-short file may hold a last packet that does not
    decode; `frames_from_video` notices. Raises SplatfilmError naming the file when it has no
    video stream, cannot be read or has no frames."""
    video = Path(video)
    res = _ffmpeg(["-hide_banner", "-nostdin", "-i", str(video), "-map", "0:v:0", "-c", "copy",
                   "-f", "null", "-"])
    if res.returncode != 0:
        # ffmpeg lists the streams it found before failing: a file of sound alone says so
        # there, where its last line ("Stream map '0:v:0' matches no streams") would not.
        if "Stream #" in res.stderr and ": Video:" not in res.stderr:
            raise SplatfilmError(f"{video}: the file has no video stream (sound only?)")
        last = (res.stderr.strip().splitlines() or ["unknown error"])[-1][:200]
        raise SplatfilmError(f"{video}: cannot decode video ({last})")
    # The final progress report ("frame=   20 fps=..."), after \r-separated interim ones
    reports = re.findall(r"frame=\s*(\d+)", res.stderr)
    n = int(reports[-1]) if reports else 0
    if n < 1:
        raise SplatfilmError(f"{video}: the video has no frames")
    return n


def _even_picks(total: int, count: int) -> list[int]:
    """The frame numbers of `count` frames spread evenly over `total`, first and last included."""
    return sorted({round(k * (total - 1) / (count - 1)) for k in range(count)}) if count > 1 else [0]


def _decoded_frames(video: Path) -> Iterator[np.ndarray]:
    """`video`'s frames as decoded, one a packet [H,W,C] uint8. Without passthrough ffmpeg's raw
    output runs at a constant rate, repeating frames of a variable-rate phone video (a 4 s clip
    of 80 frames came out as 120), so frame numbers would not match `count_frames` and the
    even picks would miss the end of the take. ffmpeg before 5.1 names the option -vsync."""
    import imageio.v3 as iio

    for option in (["-fps_mode", "passthrough"], ["-vsync", "passthrough"]):
        try:
            yield from iio.imiter(video, plugin="FFMPEG", output_params=option)
            return
        except Exception as e:
            if f"Unrecognized option '{option[0][1:]}'" not in str(e):
                raise
    raise SplatfilmError(f"{video}: this ffmpeg ({ffmpeg_exe()}) knows neither -fps_mode nor -vsync")


# A sampled frame repeats the frame kept before it when the mean absolute difference of their
# grey thumbnails (`_thumbnail`, 8-bit levels) is under this. Measured on an H.264 clip of a
# textured 160x96 picture (tests/io/test_video.py): a held frame's copies 0-0.001 levels from
# it; a sideways move between samples of 1 px 4.6 levels, of half a pixel 2.3 (pixel noise
# averages out in the thumbnail's blocks). A camera that did not move between samples gives
# SfM no new view either.
REPEATED_FRAME_LEVELS = 1.0
# The thumbnail's longer side in pixels, at most: blocks of the frame averaged to about this.
_THUMBNAIL_SIDE = 64


def _thumbnail(picture: np.ndarray) -> np.ndarray:
    """A grey float32 thumbnail of an [H,W,3] uint8 picture: blocks averaged so the longer side
    is about _THUMBNAIL_SIDE pixels (frames of one video share a size, so their thumbnails do)."""
    grey = picture.astype(np.float32).mean(axis=2)
    k = max(1, min(*grey.shape, -(-max(grey.shape) // _THUMBNAIL_SIDE)))
    h, w = grey.shape[0] // k * k, grey.shape[1] // k * k
    return grey[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def _write_picks(video: Path, out: Path, picks: list[int]) -> tuple[list[Path], int, list[int], list[int]]:
    """Decode `video` to its end, writing frames `picks` as out/frame_00000.png, ..., but a pick
    that repeats the frame written before it (REPEATED_FRAME_LEVELS). Returns (the PNGs written,
    the number of frames it decodes to, the source frame number of each PNG, the source frame
    numbers of the picks dropped as repeats): to the end, so a stream that decodes to more
    frames than the container's packets is noticed, not cut at the last pick."""
    for stale in out.glob("frame_*.png"):
        stale.unlink()
    paths, sources, repeats, wanted, decoded, last = [], [], [], set(picks), 0, None
    try:
        for index, frame in enumerate(_decoded_frames(video)):
            decoded = index + 1
            if index in wanted:
                picture = np.asarray(frame)[..., :3]
                thumbnail = _thumbnail(picture)
                if last is not None and float(np.abs(thumbnail - last).mean()) < REPEATED_FRAME_LEVELS:
                    repeats.append(index)
                    continue
                last = thumbnail
                p = out / f"frame_{len(paths):05d}.png"
                write_png(p, picture)
                paths.append(p)
                sources.append(index)
    except SplatfilmError:  # a frame that could not be written: said as such, not as a decoding failure
        raise
    except Exception as e:  # imageio-ffmpeg raises OSError/RuntimeError with ffmpeg's output
        raise SplatfilmError(f"{video}: cannot decode video ({last_line(e)})") from None
    return paths, decoded, sources, repeats


def _repeats_note(video: Path, repeats: list[int]) -> str:
    """The note on sampled frames dropped as repeats (their source frame numbers)."""
    k = len(repeats)
    listed = ", ".join(str(i) for i in repeats[:8]) + (", ..." if k > 8 else "")
    return (f"video: note: {k} sampled frame{'s' if k > 1 else ''} of {video} repeat{'' if k > 1 else 's'} the frame "
            f"before (source frame{'s' if k > 1 else ''} {listed}: a frozen or duplicated stretch); dropped, so that "
            "view is posed and fitted once")


def frames_from_video(video_path: str | Path, out_dir: str | Path, count: int,
                      log: Callable[[str], None] | None = print) -> list[Path]:
    """Decode `count` frames spread evenly over a video into out_dir/frame_00000.png, ...
    (8-bit RGB, each written atomically).

    Frame k of count is the video's frame round(k * (N - 1) / (count - 1)) (first and last
    included), numbered from 0 over the frames as decoded; one that repeats the frame written
    before it (REPEATED_FRAME_LEVELS) is dropped, with a note, so fewer than `count` may come
    back. out_dir/frames.json records the PNGs (`frames`), the source frame each one is
    (`source_frames`) and the picks dropped as repeats (`repeated_frames`); frames already
    written from the same video bytes and count are reused. Returns the PNG paths in order.
    Raises SplatfilmError if the video does not decode. log: called with one-line progress
    messages (None: quiet).
    """
    say = log or (lambda _msg: None)
    video, out = Path(video_path), Path(out_dir)
    if not video.is_file():
        raise SplatfilmError(f"{video}: no such video")
    if count < 1:
        raise SplatfilmError(f"{video}: frame count must be >= 1, got {count}")
    # The video's bytes, not its size and time: a clip rewritten in place (a new export under
    # the same name, its time kept by a copy) is another clip.
    # "sampling" 2: frames as decoded, numbered over what decodes (1 numbered a variable-rate
    # video's frames at a constant rate, with repeats, and stopped short of the take's end).
    # 3: repeated frames dropped.
    frames = CacheEntry(out / "frames.json", {"video_sha256": file_digest(video), "count": count, "sampling": 3})
    made = frames.lookup() or {}
    paths = [out / name for name in made.get("frames", [])]
    if paths and all(p.exists() for p in paths):
        short = (f" ({video} decodes to {made['decoded']} frames, its container holds {made['header']})"
                 if "header" in made else "")
        say(f"video: reusing {len(paths)} frames in {out}{short}")
        if made.get("repeated_frames"):
            say(_repeats_note(video, made["repeated_frames"]))
        return paths

    total = count_frames(video)
    picks = _even_picks(total, count)
    make_folder(out)
    # The old record goes before its frames are replaced: a run stopped part way through must
    # not leave the record of other frames beside frames of the same names.
    frames.path.unlink(missing_ok=True)
    paths, decoded, sources, repeats = _write_picks(video, out, picks)
    if not paths:
        raise SplatfilmError(f"{video}: the video has no frames")
    short = {}
    if decoded != total:
        # The container's packets are not its frames: a cut-short file (a last packet that does
        # not decode), a clip trimmed without re-encoding (an edit list hides packets), a stream
        # of packed frames. The picks were spread over the wrong count: said, and spread again
        # over what decodes (a second decode, only for such a file).
        say(f"video: note: {video} decodes to {decoded} frames, its container holds {total} (trimmed or cut "
            f"short?); taking {min(count, decoded)} frames spread over what decodes")
        paths, _, sources, repeats = _write_picks(video, out, _even_picks(decoded, count))
        short, total = {"decoded": decoded, "header": total}, decoded
    frames.store(frames=[p.name for p in paths], source_frames=sources, repeated_frames=repeats, **short)
    if repeats:
        say(_repeats_note(video, repeats))
    say(f"video: {len(paths)} of {total} frames -> {out}")
    return paths
