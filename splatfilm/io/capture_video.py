"""A capture's video sampled for fitting: `frames_from_video` writes evenly spaced frames of a
capture's video as PNGs for SfM, decoding the video once, each frame written atomically and kept
while the video's bytes stay the same. A sampled frame that shows the same picture as the frame
kept before it (a frozen or duplicated stretch: a held frame, a stalled stream, a clip padded to a
constant rate) is dropped and said, since SfM would pose it at the same place and the fit weigh
that view once per copy; frames.json says which source frame each PNG is. Movies are written,
counted and probed by `io.video`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from splatfilm import report
from splatfilm.errors import SplatfilmError, last_line
from splatfilm.io.atomic import make_folder
from splatfilm.io.cache import CacheEntry
from splatfilm.io.digest import file_digest
from splatfilm.io.images import write_png
from splatfilm.io.video import count_frames, ffmpeg_exe


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
                      log: Callable[[str], None] | None = report.status) -> list[Path]:
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
