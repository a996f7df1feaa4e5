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
packets without decoding them) and `probe_frames` its size. A capture's video is sampled into
frames for SfM by `io.capture_video`.
"""

from __future__ import annotations

import logging
import re
import subprocess
from fractions import Fraction
from pathlib import Path

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_path, make_folder, temp_path_for


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
def _bt1886(v: str) -> str:
    """ffmpeg's expression of an sRGB-encoded value `v` (an expression in [0, 1]) re-encoded for
    BT.1886, in [0, 1]."""
    return f"if(lte({v}\\,0.04045)\\,pow({v}/12.92\\,1/2.4)\\,({v}+0.055)/1.055)"


_LUT_BT1886 = _bt1886("val/maxval") + "*maxval"
PRORES_SIGNAL = {
    "prores422hq": f"format=gbrp16le,lutrgb=r={_LUT_BT1886}:g={_LUT_BT1886}:b={_LUT_BT1886}",
    "prores4444": "format=gbrap16le,geq=" + ":".join(c + "=" + _bt1886(c + "(X\\,Y)/65535") + "*alpha(X\\,Y)"
                                                     for c in "rgb")
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
    `io.capture_video.frames_from_video` does once). A cut-short file may hold a last packet
    that does not decode; `frames_from_video` notices. Raises SplatfilmError naming the file
    when it has no video stream, cannot be read or has no frames."""
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
