"""H.264 MP4 from PNG sequences, with the ffmpeg that imageio-ffmpeg ships.

The frame rate goes to ffmpeg as an exact fraction (24000/1001 stays 24000/1001). Output is
yuv420p (what players and editors expect), sizes padded to even numbers as yuv420p needs,
quality set by CRF. A movie may carry a timecode track (`tmcd`) naming its first frame, so
an editing system lines it up with an EDL's source timecodes. Files are written to a temporary name and renamed, so an interrupted
encode leaves no broken MP4 behind.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import make_folder, temp_path_for


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError as e:  # a dependency, so only a broken install gets here
        raise SplatfilmError(f"MP4 output needs imageio-ffmpeg ({e})") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(args: list[str], output: Path) -> None:
    tmp = temp_path_for(output)
    try:
        res = subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", *args, str(tmp)], capture_output=True, text=True)
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise SplatfilmError(f"{output}: ffmpeg failed: {last}")
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)


def encode_sequence(pattern: str | Path, start_number: int, fps: Fraction, output: str | Path, crf: int = 18,
                    frames: int | None = None, timecode: str | None = None) -> Path:
    """Encode a numbered PNG sequence (`shot_010.%04d.png`, first frame `start_number`) into an
    H.264 MP4 at exactly `fps` frames per second, with a timecode track starting at `timecode`
    ("HH:MM:SS:FF") when given. Returns the MP4 path."""
    output = Path(output)
    make_folder(output.parent)
    args = ["-framerate", f"{fps.numerator}/{fps.denominator}", "-start_number", str(start_number), "-i", str(pattern)]
    if frames is not None:
        args += ["-frames:v", str(frames)]
    args += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset", "medium", "-crf", str(crf),
             "-pix_fmt", "yuv420p", "-r", f"{fps.numerator}/{fps.denominator}", "-movflags", "+faststart"]
    if timecode is not None:
        args += ["-timecode", timecode]
    _run(args, output)
    return output


def probe_timecode(path: str | Path) -> str | None:
    """The start timecode ("HH:MM:SS:FF", ";" before FF when drop-frame) of a movie's timecode
    track or metadata, or None when it has none."""
    res = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    for line in res.stderr.splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "timecode" and value.strip():
            return value.strip()
    return None


def concat_videos(parts: list[Path], output: str | Path) -> Path:
    """Join MP4s of the same size and rate, in order, without re-encoding."""
    output = Path(output)
    if not parts:
        raise SplatfilmError(f"{output}: nothing to join")
    listing = temp_path_for(output.with_suffix(".txt"))
    try:
        listing.write_text("".join(f"file '{Path(p).resolve()}'\n" for p in parts))
        _run(["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", "-movflags", "+faststart"], output)
    finally:
        listing.unlink(missing_ok=True)
    return output


def probe_frames(path: str | Path) -> tuple[int, tuple[int, int]]:
    """(frame count, (width, height)) of a video, by decoding it."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    n = sum(1 for _ in reader)
    return n, tuple(meta["size"])
