"""Reading video (splatfilm.io.video): frames counted one way, evenly spaced frames decoded for
SfM, each written whole, and kept only while the video's bytes and the count stay the same."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from helpers import REPO

from splatfilm.errors import SplatfilmError
from splatfilm.io.capture_video import frames_from_video
from splatfilm.io.video import count_frames, probe_frames


def _numbered_clip(folder, frames: int = 20):
    """An H.264 clip of `frames` flat frames whose red channel is 12 x the frame number (flat, so
    the codec keeps it)."""
    pytest.importorskip("imageio_ffmpeg")
    pictures = np.zeros((frames, 64, 96, 3), np.uint8)
    pictures[..., 0] = (np.arange(frames) * 12)[:, None, None]
    video = folder / "clip.mp4"
    iio.imwrite(video, pictures, plugin="FFMPEG", fps=10, codec="libx264", quality=10, macro_block_size=16)
    return video


def test_frames_are_counted_one_way(tmp_path):
    video = _numbered_clip(tmp_path, 13)
    assert count_frames(video) == 13 and probe_frames(video) == (13, (96, 64))


def test_a_turned_phone_video_gives_upright_frames_without_a_warning(tmp_path, caplog, capsys):
    """A portrait phone video stores landscape frames with a rotation: ffmpeg turns them upright
    (as players show them) and imageio-ffmpeg warned "The frame size for reading (64, 96) is
    different from the source frame size (96, 64)." on every capture."""
    import imageio_ffmpeg

    video = _numbered_clip(tmp_path, 4)
    turned = tmp_path / "portrait.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation", "90", "-i",
                    str(video), "-c", "copy", str(turned)], check=True)
    paths = frames_from_video(turned, tmp_path / "frames", 2, log=None)
    assert iio.imread(paths[0]).shape == (96, 64, 3)
    said = caplog.text + "".join(capsys.readouterr())
    assert "different from the source frame size" not in said, said


def test_video_that_does_not_decode(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(SplatfilmError, match=r"clip\.mp4: cannot decode video"):
        frames_from_video(bad, tmp_path / "frames", 5, log=None)
    with pytest.raises(SplatfilmError, match="no such video"):
        frames_from_video(tmp_path / "missing.mp4", tmp_path / "frames", 5, log=None)
    # Sound alone (ffmpeg's own last line: "Error opening output files: Invalid argument").
    import imageio_ffmpeg

    sound = tmp_path / "sound.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=0.5", "-c:a", "aac", str(sound)], check=True)
    with pytest.raises(SplatfilmError, match=r"sound\.mp4: the file has no video stream"):
        frames_from_video(sound, tmp_path / "frames", 5, log=None)


def test_frames_from_video_samples_evenly_and_reuses(tmp_path):
    video = _numbered_clip(tmp_path)  # flat frames, so the codec keeps each one's number
    paths = frames_from_video(video, tmp_path / "frames", 5, log=None)
    assert [p.name for p in paths] == [f"frame_{i:05d}.png" for i in range(5)]
    reds = [float(iio.imread(p)[..., 0].mean()) for p in paths]
    # Frames round(k * 19 / 4): 0, 5, 10, 14, 19.
    np.testing.assert_allclose(reds, [0, 60, 120, 168, 228], atol=6)
    messages = []
    again = frames_from_video(video, tmp_path / "frames", 5, log=messages.append)
    assert again == paths and "reusing" in messages[0]


def test_frames_from_a_video_rewritten_in_place_are_decoded_again(tmp_path):
    """The frames were kept while the video's size and modification time stayed: a clip
    exported again under its name (copied with its time kept) gave the old clip's frames."""
    pytest.importorskip("imageio_ffmpeg")
    video = tmp_path / "clip.avi"

    def write_clip(grey: int) -> None:  # uncompressed: any picture gives a file of the same size
        iio.imwrite(video, np.full((4, 16, 32, 3), grey, np.uint8), plugin="FFMPEG", codec="rawvideo", fps=10,
                    macro_block_size=16)

    write_clip(60)
    first = frames_from_video(video, tmp_path / "frames", 2, log=None)
    assert abs(float(iio.imread(first[0]).mean()) - 60) < 3
    stat = video.stat()
    write_clip(200)
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert video.stat().st_size == stat.st_size and video.stat().st_mtime_ns == stat.st_mtime_ns
    messages = []
    again = frames_from_video(video, tmp_path / "frames", 2, log=messages.append)
    assert not any("reusing" in m for m in messages)
    assert abs(float(iio.imread(again[0]).mean()) - 200) < 3


def test_a_decode_stopped_part_way_leaves_no_record_of_other_frames(tmp_path, monkeypatch):
    """A run for another frame count stopped part way (Ctrl-C) left the first run's record
    beside its own frames of the same names: the next run for the first count reused the wrong
    pictures (frames 0, 2, 4, 6, 8 for 0, 5, 10, 14, 19)."""
    video = _numbered_clip(tmp_path)
    frames_from_video(video, tmp_path / "frames", 5, log=None)
    decode = iio.imiter

    def stopped_at_frame_12(*args, **kwargs):
        frames = decode(*args, **kwargs)
        try:
            for index, frame in enumerate(frames):
                if index == 12:
                    raise KeyboardInterrupt
                yield frame
        finally:
            frames.close()

    monkeypatch.setattr(iio, "imiter", stopped_at_frame_12)
    with pytest.raises(KeyboardInterrupt):
        frames_from_video(video, tmp_path / "frames", 10, log=None)  # frames 0, 2, 4, 6, 8, 11 written
    monkeypatch.undo()
    messages: list[str] = []
    paths = frames_from_video(video, tmp_path / "frames", 5, log=messages.append)
    assert not any("reusing" in m for m in messages), messages
    reds = [float(iio.imread(p)[..., 0].mean()) for p in paths]
    np.testing.assert_allclose(reds, [0, 60, 120, 168, 228], atol=6)


def test_a_held_frame_is_sampled_once_and_every_frame_names_its_source(tmp_path):
    """A clip whose camera pans 2 px a frame but holds frame 7 for 20 frames (7-26: a stalled
    stream): of 25 evenly spaced frames, 9 (source frames 8-24) were the same picture, written
    as 9 PNGs that SfM posed at one place and the fit weighed 9 times, without a word. Now the
    repeats are dropped with a note naming them, and frames.json says which source frame each
    PNG is."""
    import json

    pytest.importorskip("imageio_ffmpeg")
    rng = np.random.default_rng(0)
    texture = (rng.random((96, 160 + 100, 3)) * 255).astype(np.uint8)
    texture = ((texture[:, :-1].astype(np.uint16) + texture[:, 1:]) // 2).astype(np.uint8)  # softer: kept by the codec
    shown = [7 if 7 <= i < 27 else i for i in range(50)]
    video = tmp_path / "held.mp4"
    iio.imwrite(video, np.stack([texture[:, 2 * k: 2 * k + 160] for k in shown]), plugin="FFMPEG", fps=10,
                codec="libx264", quality=8, macro_block_size=16)
    messages: list[str] = []
    paths = frames_from_video(video, tmp_path / "frames", 25, log=messages.append)
    repeats = [10, 12, 14, 16, 18, 20, 22, 24]  # the picks round(k * 49 / 24) inside the hold, but its first
    assert len(paths) == 25 - len(repeats), messages
    assert messages[0] == (f"video: note: 8 sampled frames of {video} repeat the frame before (source frames "
                           "10, 12, 14, 16, 18, 20, 22, 24: a frozen or duplicated stretch); dropped, so that view "
                           "is posed and fitted once"), messages
    record = json.loads((tmp_path / "frames" / "frames.json").read_text())
    picks = [round(k * 49 / 24) for k in range(25)]
    assert record["source_frames"] == [i for i in picks if i not in repeats] and record["repeated_frames"] == repeats
    assert record["frames"] == [p.name for p in paths]
    # Each PNG shows the pan where the source frame it names has it (compared in grey: the codec
    # keeps little of the texture's colour).
    grey = texture.astype(float).mean(axis=2)
    for path, source in zip(paths, record["source_frames"]):
        picture = iio.imread(path).astype(float).mean(axis=2)
        nearest = min(range(50), key=lambda k: np.abs(picture - grey[:, 2 * k: 2 * k + 160]).mean())
        assert nearest == shown[source], (path.name, source, nearest)
    messages = []
    assert frames_from_video(video, tmp_path / "frames", 25, log=messages.append) == paths
    assert "reusing 17 frames" in messages[0] and messages[1].startswith("video: note: 8 sampled frames"), messages


def test_a_frame_that_cannot_be_written_is_not_called_a_bad_video(tmp_path):
    """A frame the disk refuses (here: over the process's file size limit) is a one-line error
    naming the frame, not "cannot decode video" naming a good video."""
    pytest.importorskip("imageio_ffmpeg")
    noise = (np.random.default_rng(0).random((3, 64, 96, 3)) * 255).astype(np.uint8)  # PNGs of ~18 kB
    video = tmp_path / "clip.mp4"
    iio.imwrite(video, noise, plugin="FFMPEG", fps=10, codec="libx264", quality=10, macro_block_size=16)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not a killed process

    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-m", "splatfilm", "sfm", str(video), "-o", str(tmp_path / "m"),
                             "--video-frames", "3"], capture_output=True, text=True, env=env, cwd=tmp_path,
                            preexec_fn=small_files, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "frame_00000.png: cannot write" in err and "decode" not in err, err


def test_a_video_shorter_than_its_header_says_is_noted(tmp_path, monkeypatch):
    """A cut-short file whose container promises more frames than decode gave fewer frames
    than asked for, without a word. It is said, and the frames are spread over what decodes."""
    from splatfilm.io import capture_video as video_module

    video = _numbered_clip(tmp_path)
    monkeypatch.setattr(video_module, "count_frames", lambda _path: 40)  # the header of a longer clip
    messages = []
    paths = frames_from_video(video, tmp_path / "frames", 5, log=messages.append)
    assert any("decodes to 20 frames, its container holds 40" in m for m in messages), messages
    reds = [float(iio.imread(p)[..., 0].mean()) for p in paths]
    np.testing.assert_allclose(reds, [0, 60, 120, 168, 228], atol=6)  # frames 0, 5, 10, 14, 19 of the 20
    messages.clear()  # and again when the frames are reused
    assert frames_from_video(video, tmp_path / "frames", 5, log=messages.append) == paths
    assert "decodes to 20 frames, its container holds 40" in messages[0], messages


def test_frames_from_video_decodes_the_video_once(tmp_path, monkeypatch):
    """The frame count decoded the whole video, then the extraction decoded it again: a phone
    capture's minutes of 4K were decoded twice. The count reads the container's packets."""
    video = _numbered_clip(tmp_path)
    exe = os.path.realpath(__import__("imageio_ffmpeg").get_ffmpeg_exe())
    decodes = []
    popen = subprocess.Popen

    class CountingPopen(popen):
        def __init__(self, args, *rest, **kwargs):
            argv = [str(a) for a in args]
            # an ffmpeg run on the clip that does not copy its packets decodes it
            if os.path.realpath(argv[0]) == exe and str(video) in argv and "copy" not in argv:
                decodes.append(argv)
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", CountingPopen)
    paths = frames_from_video(video, tmp_path / "frames", 5, log=None)
    assert len(paths) == 5 and len(decodes) == 1, decodes


def test_a_variable_rate_phone_video_is_sampled_to_its_last_frame(tmp_path):
    """A phone's variable-rate video: 60 frames at 30 fps, then every third of 60 more (80
    frames over 4 s), the red channel 2 x the source frame number. Decoded at a constant rate,
    ffmpeg repeated frames (120), so the picks, numbered over the 80 frames the file holds,
    stopped at 2.6 s and the end of the take was never sampled."""
    from splatfilm.io.video import ffmpeg_exe

    video = tmp_path / "phone.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "nullsrc=s=64x48:r=30:d=4,format=rgb24,geq=r='2*N':g=0:b=0",
                    "-vf", "select='lt(n\\,60)+not(mod(n\\,3))'", "-fps_mode", "vfr",
                    "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", str(video)], check=True)
    assert count_frames(video) == 80
    messages = []
    paths = frames_from_video(video, tmp_path / "frames", 3, log=messages.append)
    reds = [float(iio.imread(p)[..., 0].mean()) for p in paths]
    # Frames 0, 40 and 79 of the 80: source frames 0, 40 and 117.
    np.testing.assert_allclose(reds, [0, 80, 234], atol=4)
    assert not any("note" in m or "warning" in m for m in messages)


def test_a_clip_trimmed_without_re_encoding_and_a_single_frame_are_taken_without_a_false_note(tmp_path):
    """A clip trimmed by stream copy (a phone's Photos app, ffmpeg -ss -c copy) keeps packets
    its edit list hides: 30 packets, 22 frames. Its frames are spread over the 22 it decodes to,
    said once; one frame asked of a 20-frame clip was called cut short (the decode stopped at
    its one pick) and decoded twice."""
    from splatfilm.io.video import ffmpeg_exe

    video = _numbered_clip(tmp_path)
    messages = []
    assert len(frames_from_video(video, tmp_path / "one", 1, log=messages.append)) == 1
    assert not any("decodes to" in m for m in messages), messages
    long = tmp_path / "long.mp4"
    pictures = np.zeros((60, 64, 96, 3), np.uint8)
    pictures[..., 0] = (np.arange(60) * 4)[:, None, None]
    iio.imwrite(long, pictures, plugin="FFMPEG", fps=30, codec="libx264", quality=10, macro_block_size=16)
    trim = tmp_path / "trim.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", "0.75", "-i", str(long), "-t", "0.8", "-c", "copy",
                    str(trim)], check=True)
    decoded = [np.asarray(f)[..., 0].mean() for f in iio.imiter(trim, plugin="FFMPEG",
                                                               output_params=["-fps_mode", "passthrough"])]
    messages = []
    paths = frames_from_video(trim, tmp_path / "trim", 3, log=messages.append)
    reds = [float(iio.imread(p)[..., 0].mean()) for p in paths]
    n = len(decoded)
    np.testing.assert_allclose(reds, [decoded[0], decoded[round((n - 1) / 2)], decoded[-1]], atol=2)
    if count_frames(trim) != n:  # an edit list: said once, as what it is
        assert sum("decodes to" in m for m in messages) == 1, messages


@pytest.mark.parametrize("bits, most", [(8, 256), (16, None)])
def test_a_10_bit_prores_from_16_bit_frames_keeps_more_than_256_codes(tmp_path, bits, most):
    """The masters were filled from 8-bit PNGs: a smooth ramp kept 256 codes of the 1024 a
    10-bit ProRes holds. From 16-bit frames (`render --png-bits 16`) it keeps far more."""
    from fractions import Fraction

    from splatfilm.io.images import write_png
    from splatfilm.io.video import encode_sequence, ffmpeg_exe

    w, h = 1024, 16
    ramp = np.repeat(np.linspace(0, 1, w)[None, :, None], 3, axis=-1).repeat(h, axis=0)
    for i in range(2):
        write_png(tmp_path / f"r.{1001 + i:04d}.png", ramp, bits=bits)
    mov = encode_sequence(tmp_path / "r.%04d.png", 1001, Fraction(24), tmp_path / "r.mov", codec="prores422hq")
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(mov), "-vframes", "1", "-f", "rawvideo",
                          "-pix_fmt", "yuv422p10le", "-"], capture_output=True, check=True).stdout
    luma = np.frombuffer(out, np.uint16)[:w * h].reshape(h, w)
    codes = len(np.unique(luma[h // 2]))
    if most is not None:
        assert codes <= most
    else:
        assert codes > 800  # video range: 64..940, every one of them a ramp step
