"""MP4 encoding, the OTIO / EDL timeline read back by OpenTimelineIO, and the warping error."""

from __future__ import annotations

from fractions import Fraction

import imageio.v3 as iio
import numpy as np
import pytest
import opentimelineio as otio
import torch
from helpers import intrinsics, look_at, random_gaussians

from splatfilm.render.consistency import warp_error
from splatfilm.render import rasterization
from splatfilm.scene.cameras import Cameras
from splatfilm.film.cut import ShotClip
from splatfilm.handoff.editorial import build_timeline, write_timeline
from splatfilm.io.video import concat_videos, encode_sequence, probe_frames

FPS = Fraction(24000, 1001)


def _sequence(folder, name, frames, size=(37, 65)):
    folder.mkdir(parents=True)
    for f in range(1001, 1001 + frames):
        iio.imwrite(folder / f"{name}.{f:04d}.png", np.full(size + (3,), (f * 7) % 255, np.uint8))


def test_mp4_frame_count_even_size_and_concat(tmp_path):
    _sequence(tmp_path / "a", "sh010", 20)
    _sequence(tmp_path / "b", "sh020", 13)
    a = encode_sequence(tmp_path / "a" / "sh010.%04d.png", 1001, FPS, tmp_path / "sh010.mp4")
    b = encode_sequence(tmp_path / "b" / "sh020.%04d.png", 1001, FPS, tmp_path / "sh020.mp4")
    assert probe_frames(a) == (20, (66, 38))  # odd sizes padded to even for yuv420p
    assert probe_frames(b)[0] == 13
    film = concat_videos([a, b], tmp_path / "film.mp4")
    assert probe_frames(film)[0] == 33
    assert not list(tmp_path.glob(".*.tmp*"))


def test_a_movie_that_cannot_be_written_is_a_one_line_error(tmp_path):
    """ffmpeg's finished movie could not take the place of a folder of the output's name: the
    rename's OSError came out as a traceback."""
    from splatfilm.errors import SplatfilmError

    _sequence(tmp_path / "a", "sh010", 2, size=(8, 8))
    (tmp_path / "sh010.mp4").mkdir()
    with pytest.raises(SplatfilmError, match=r"sh010\.mp4: cannot write: it is a folder, not a file"):
        encode_sequence(tmp_path / "a" / "sh010.%04d.png", 1001, FPS, tmp_path / "sh010.mp4")
    assert not list(tmp_path.glob(".*.tmp*"))


@pytest.mark.parametrize("codec, suffix", [("h264", ".mp4"), ("prores422hq", ".mov"), ("prores4444", ".mov")])
def test_movies_are_rec709_through_the_709_matrix_and_say_so(tmp_path, codec, suffix):
    """An HD frame's RGB goes to YUV through the BT.709 matrix (swscale's default was BT.601,
    which players read as a hue shift) and every movie is tagged Rec.709 primaries and matrix,
    sRGB transfer, whatever the PNGs carry (a PNG without an sRGB chunk left masters untagged)."""
    import subprocess

    import imageio.v3 as iio

    from splatfilm.io.video import ffmpeg_exe

    y, x = np.mgrid[0:64, 0:96]
    rgb = np.stack([x * 255 // 96, y * 255 // 64, 255 - x * 255 // 96], -1).astype(np.uint8)
    (tmp_path / "f").mkdir()
    for i in range(2):
        iio.imwrite(tmp_path / "f" / f"f.{1001 + i:04d}.png", rgb)  # no sRGB chunk
    movie = encode_sequence(tmp_path / "f" / "f.%04d.png", 1001, FPS, tmp_path / f"m{suffix}", codec=codec)
    info = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(movie)], capture_output=True, text=True).stderr
    if codec != "h264":  # ProRes has no sRGB transfer: its masters are Rec.709 throughout (below)
        assert "(tv, bt709, progressive)" in info, info
        rgb = _bt1886_signal(rgb)
    else:
        assert "bt709/bt709/iec61966-2-1" in info, info

    def decoded(matrix: str) -> np.ndarray:
        out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(movie), "-frames:v", "1", "-vf",
                              f"scale=in_color_matrix={matrix}:in_range=tv", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"],
                             capture_output=True).stdout
        return np.frombuffer(out, np.uint8).reshape(64, 96, 3).astype(int)

    assert np.abs(decoded("bt709") - rgb).mean() < np.abs(decoded("bt601") - rgb).mean() - 1


def _bt1886_signal(encoded: np.ndarray) -> np.ndarray:
    """8-bit sRGB-encoded values as the Rec.709 signal (8-bit scale, float) that shows their
    light on a BT.1886 display (gamma 2.4)."""
    from splatfilm.io.images import srgb_to_linear

    return srgb_to_linear(np.asarray(encoded) / 255.0) ** (1 / 2.4) * 255.0


def _decoded_rgba(movie, width: int, height: int) -> np.ndarray:
    """The first frame of a ProRes 4444 movie as RGBA floats on the 8-bit scale, through the
    BT.709 matrix at limited range, colour as coded (no unpremultiply)."""
    import subprocess

    from splatfilm.io.video import ffmpeg_exe

    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(movie), "-frames:v", "1", "-vf",
                          "scale=in_color_matrix=bt709:in_range=tv:flags=accurate_rnd+full_chroma_int",
                          "-pix_fmt", "rgba64le", "-f", "rawvideo", "-"], capture_output=True).stdout
    return np.frombuffer(out, np.uint16).reshape(height, width, 4).astype(np.float64) / 65535 * 255


@pytest.mark.parametrize("codec", ["prores422hq", "prores4444"])
def test_prores_says_a_transfer_apple_defines_and_carries_the_light_of_the_frames(tmp_path, codec):
    """ProRes's frame header and the MOV's colr said transfer 13 (sRGB), which Apple's ProRes
    does not define (1, 2, 16, 18): Apple's decoders and Unreal read it as BT.709 and showed the
    sRGB frames on BT.1886 (gamma 2.4), shadows up to 60% darker. Now tagged 1-1-1, the signal
    re-encoded so that a BT.1886 display shows the light an sRGB display shows of the PNG."""
    import struct
    import subprocess

    from splatfilm.io.video import ffmpeg_exe

    ramp = np.repeat(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], 16, 0).repeat(3, -1)  # 64 levels
    (tmp_path / "f").mkdir()
    for i in range(2):
        iio.imwrite(tmp_path / "f" / f"f.{1001 + i:04d}.png", ramp)
    movie = encode_sequence(tmp_path / "f" / "f.%04d.png", 1001, FPS, tmp_path / "m.mov", codec=codec)
    data = movie.read_bytes()
    frame = data.index(b"icpf") + 4  # the frame header: size, version, creator, width, height, flags, 0
    primaries, transfer, matrix = data[frame + 14:frame + 17]
    assert struct.unpack(">HH", data[frame + 8:frame + 12]) == (64, 16)  # the header is where we think
    assert transfer in (1, 2, 16, 18) and (primaries, transfer, matrix) == (1, 1, 1)
    colr = data.index(b"colr") + 4  # 'nclc' and primaries, transfer, matrix as three 16-bit numbers
    assert data[colr:colr + 4] in (b"nclc", b"nclx")
    assert struct.unpack(">HHH", data[colr + 4:colr + 10]) == (1, 1, 1)
    info = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(movie)], capture_output=True, text=True).stderr
    assert "(tv, bt709, progressive)" in info and "iec61966" not in info, info
    shown = _decoded_rgba(movie, 64, 16)[..., :3]
    assert np.abs(shown - _bt1886_signal(ramp)).max() < 1.5  # 10-bit coding, prores_ks's quantizer
    # Mid-grey's light: what an sRGB display makes of 128 is what BT.1886 makes of the master.
    assert abs((shown[8, 32, 0] / 255) ** 2.4 - 0.2158) < 0.005


def test_prores_4444_colour_is_premultiplied_as_apples_encoders_write_it(tmp_path):
    """ProRes 4444's colour was straight, which neither the bitstream nor the MOV can say;
    Apple's readers take it as premultiplied (their default), brightening every soft edge."""
    rgba = np.zeros((16, 64, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.arange(0, 256, 4, dtype=np.uint8)[None, :]
    (tmp_path / "f").mkdir()
    for i in range(2):
        iio.imwrite(tmp_path / "f" / f"f.{1001 + i:04d}.png", rgba)
    movie = encode_sequence(tmp_path / "f" / "f.%04d.png", 1001, FPS, tmp_path / "m.mov", codec="prores4444")
    decoded = _decoded_rgba(movie, 64, 16)
    assert np.abs(decoded[..., 3] - rgba[..., 3]).max() < 0.5
    assert np.abs(decoded[..., 0] - 255.0 * rgba[..., 3] / 255.0).max() < 1.5  # white times its alpha


def test_timeline_reads_back_with_frame_ranges_and_rate(tmp_path):
    shots = []
    for name, frames in (("sh010", 20), ("sh020", 16)):
        _sequence(tmp_path / name, name, frames)
        shots.append(ShotClip(name, 1001, frames, 1005, frames - 8, tmp_path / name, f"{name}.",
                               tmp_path / f"{name}.mp4"))
    tl = build_timeline("film", shots, FPS, tmp_path)
    write_timeline(tmp_path / "film.otio", tl)
    write_timeline(tmp_path / "film.edl", tl)
    back = otio.adapters.read_from_file(str(tmp_path / "film.otio"))
    clips = list(back.find_clips())
    assert [c.name for c in clips] == ["sh010", "sh020"]
    assert clips[0].source_range.start_time.value == 1005 and clips[0].source_range.duration.value == 12
    assert clips[1].source_range.duration.value == 8
    assert abs(clips[0].source_range.start_time.rate - 24000 / 1001) < 1e-9
    seq = clips[0].media_references()["png_sequence"]
    assert (tmp_path / seq.target_url_for_image_number(0)).name == "sh010.1001.png"
    assert (tmp_path / seq.target_url_for_image_number(0)).exists()
    assert clips[1].media_reference.target_url == "sh020.mp4"  # the active media: what the EDL names too
    edl = otio.adapters.read_from_file(str(tmp_path / "film.edl"), rate=24000 / 1001)
    edl_clips = list(edl.find_clips())
    assert [c.source_range.duration.value for c in edl_clips] == [12, 8]
    assert edl.duration().value == 20


def test_warp_error_zero_for_one_scene_and_large_for_a_changed_one():
    gs = random_gaussians(600, sh_degree=0, dtype=torch.float64, seed=1, spread=0.6, opacity=(0.9, 0.99),
                          log_scale=(-2.5, 0.2))
    K = intrinsics(60.0, 60.0, 40.0, 30.0)
    Va = look_at((3.0, 0.0, 0.5), (0, 0, 0))
    Vb = look_at((2.9, 0.4, 0.6), (0, 0, 0))
    ca, cb = Cameras(Va[None], K, 80, 60), Cameras(Vb[None], K, 80, 60)
    a = rasterization(gs, Va[None], K[None], 80, 60, backend="cpu")
    b = rasterization(gs, Vb[None], K[None], 80, 60, backend="cpu")
    same = warp_error(a.rgb[0], a.depth[0], ca, b.rgb[0], b.depth[0], cb, alpha_a=a.alpha[0])
    assert same.covisible > 0.2
    assert same.e_warp < 2e-3
    self_warp = warp_error(a.rgb[0], a.depth[0], ca, a.rgb[0], a.depth[0], ca, alpha_a=a.alpha[0])
    assert self_warp.e_warp < 1e-20
    other = random_gaussians(600, sh_degree=0, dtype=torch.float64, seed=1, spread=0.6, opacity=(0.9, 0.99),
                             log_scale=(-2.5, 0.2))
    other.sh0 = other.sh0.flip(0)  # the same geometry, colours shuffled: a re-invented scene
    c = rasterization(other, Vb[None], K[None], 80, 60, backend="cpu")
    changed = warp_error(a.rgb[0], a.depth[0], ca, c.rgb[0], c.depth[0], cb, alpha_a=a.alpha[0])
    assert changed.e_warp > 20 * same.e_warp


def test_odd_sizes_pad_with_the_edge_and_prores422_refuses_an_odd_width(tmp_path):
    """yuv420p's 2x2 chroma averaged the last row and column with a black pad (a tinted edge);
    prores_ks wrote a zero last chroma column at an odd width (a green edge)."""
    import imageio_ffmpeg

    from splatfilm.errors import SplatfilmError

    (tmp_path / "f").mkdir()
    rgb = np.zeros((37, 65, 3), np.uint8)
    rgb[...] = (200, 60, 40)
    iio.imwrite(tmp_path / "f" / "f.1001.png", rgb)
    movie = encode_sequence(tmp_path / "f" / "f.%04d.png", 1001, FPS, tmp_path / "m.mp4")
    frames = imageio_ffmpeg.read_frames(str(movie), pix_fmt="rgb24")
    w, h = next(frames)["size"]
    got = np.frombuffer(next(frames), np.uint8).reshape(h, w, 3).astype(int)
    assert (w, h) == (66, 38)
    assert np.abs(got[:37, :65] - rgb).max() <= 4  # the last real row and column too
    with pytest.raises(SplatfilmError, match="even width"):
        encode_sequence(tmp_path / "f" / "f.%04d.png", 1001, FPS, tmp_path / "m.mov", codec="prores422hq")


def test_timeline_media_stay_relative_through_a_symlinked_shot_folder(tmp_path):
    (tmp_path / "farm").mkdir()
    _sequence(tmp_path / "farm" / "sh010", "sh010", 4)
    (tmp_path / "film").mkdir()
    (tmp_path / "film" / "sh010").symlink_to(tmp_path / "farm" / "sh010")
    base = tmp_path / "film"
    tl = build_timeline("film", [ShotClip("sh010", 1001, 4, 1002, 2, base / "sh010", "sh010.", base / "sh010.mp4")], FPS, base)
    refs = tl.find_clips()[0].media_references()
    assert refs["png_sequence"].target_url_base == "sh010/" and refs["DEFAULT_MEDIA"].target_url == "sh010.mp4"


def test_timecode_counts_as_opentimelineio_drop_frame_only_at_29_97_and_59_94():
    """One count of timecode for the EDL, the .otio and the movies' timecode tracks: OTIO's
    (SMPTE 12M), drop-frame (";") at 29.97 and 59.94 only; a rate without timecode is a
    one-line error, not OpenTimelineIO's ValueError after the render."""
    from splatfilm.errors import SplatfilmError
    from splatfilm.shots.timing import frame_timecode

    drop_frame_rates = {Fraction(30000, 1001), Fraction(60000, 1001)}
    rng = np.random.default_rng(0)
    timecode_rates = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                      Fraction(48000, 1001), Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60)]
    for fps in timecode_rates:
        rate, day = float(fps), round(fps) * 86400
        # every frame around the first minutes' drops, and frames spread over the day (OTIO
        # 0.18 wraps 47.952 at 24 clock hours, not 24 timecode hours: compared up to there)
        for frame in [*range(0, 20000, 7), *rng.integers(0, int(fps * 86400), 300).tolist()]:
            assert frame_timecode(frame, fps) == otio.opentime.to_timecode(otio.opentime.RationalTime(frame, rate),
                                                                            rate), (fps, frame)
        # a timecode day later the count starts again (a drop-frame day is 144 ten-minute blocks)
        wrap = {Fraction(30000, 1001): 144 * 17982, Fraction(60000, 1001): 144 * 35964}.get(fps, day)
        assert frame_timecode(wrap + 5, fps) == frame_timecode(5, fps) and frame_timecode(wrap - 1, fps) > "23:59:59"
        assert (";" in frame_timecode(1001, fps)) == (fps in drop_frame_rates)
    assert frame_timecode(1800, Fraction(30000, 1001)) == "00:01:00;02"  # ;00 and ;01 are skipped
    assert frame_timecode(17982, Fraction(30000, 1001)) == "00:10:00;00"  # but not on the tenth minute
    for fps in (Fraction(12), Fraction(15), Fraction(120)):
        with pytest.raises(SplatfilmError, match="has no SMPTE timecode"):
            frame_timecode(1001, fps)


@pytest.mark.parametrize("fps, fcm, record_start", [(Fraction(24000, 1001), "FCM: NON-DROP FRAME", None),
                                                    (Fraction(30000, 1001), "FCM: DROP FRAME", None),
                                                    (Fraction(30000, 1001), "FCM: DROP FRAME", "00:59:50;00")])
def test_edl_header_says_its_frame_count_mode_and_every_timecode_agrees(tmp_path, fps, fcm, record_start):
    """The EDL's header names its timecodes' count (OTIO's cmx_3600 writer left FCM out); a
    shot's movie's timecode track, the EDL's source in, the .otio's ranges and global start
    count the same way, over a minute boundary where drop-frame skips numbers. The record
    side starts at 01:00:00:00 (01:00:00;00 drop-frame) unless told otherwise, in the EDL's
    record column too (OTIO's writer counts it from 0 whatever global_start_time says)."""
    from splatfilm.shots.timing import frame_timecode, timecode_frame
    from splatfilm.io.video import probe_timecode

    first, frames = 2000, 1900  # starts past a minute; the cut record crosses one too
    shots = [ShotClip("sh010", first, frames, first + 4, frames - 8, tmp_path / "sh010", "sh010.",
                       tmp_path / "sh010.mp4"),
             ShotClip("sh020", first, 30, first + 4, 22, tmp_path / "sh020", "sh020.", tmp_path / "sh020.mp4")]
    drop = fcm == "FCM: DROP FRAME"
    start = timecode_frame(record_start or ("01:00:00;00" if drop else "01:00:00:00"), fps)
    tl = build_timeline("film", shots, fps, tmp_path, None if record_start is None else start)
    write_timeline(tmp_path / "film.edl", tl)
    write_timeline(tmp_path / "film.otio", tl)
    lines = (tmp_path / "film.edl").read_text().splitlines()
    assert lines[:3] == ["TITLE: film", fcm, ""]
    events = [line.split() for line in lines if line[:3].isdigit()]
    assert all((";" in tc) == drop for e in events for tc in e[4:8])
    assert [e[0] for e in events] == ["001", "002"]  # the gap that moves the record side is no event
    assert events[0][6] == frame_timecode(start, fps) == (record_start or ("01:00:00;00" if drop else "01:00:00:00"))
    assert events[0][4] == frame_timecode(first + 4, fps)
    cuts = [frames - 8, 30 - 8]
    for i, e in enumerate(events):  # every event's record in and out, against the cut
        assert e[6:8] == [frame_timecode(start + sum(cuts[:i]), fps), frame_timecode(start + sum(cuts[:i + 1]), fps)]
    back = otio.adapters.read_from_file(str(tmp_path / "film.edl"), rate=float(fps))
    assert [(c.source_range.start_time.value, c.source_range.duration.value) for c in back.find_clips()] == [
        (first + 4, frames - 8), (first + 4, 22)]
    assert -back.tracks[0].source_range.start_time.value == start  # OTIO's reader keeps the first record in there
    timeline = otio.adapters.read_from_file(str(tmp_path / "film.otio"))
    assert timeline.global_start_time.value == start
    assert otio.opentime.to_timecode(timeline.global_start_time, float(fps)) == events[0][6]
    assert timeline.metadata["splatfilm"]["start_timecode"] == events[0][6]
    assert timeline.metadata["splatfilm"]["drop_frame"] is drop
    # ffmpeg writes the same count into a movie's timecode track (";": its drop-frame flag)
    _sequence(tmp_path / "sh010", "sh010", 2, size=(16, 16))
    (tmp_path / "sh010" / "sh010.1001.png").rename(tmp_path / "sh010" / f"sh010.{first}.png")
    (tmp_path / "sh010" / "sh010.1002.png").rename(tmp_path / "sh010" / f"sh010.{first + 1}.png")
    movie = encode_sequence(tmp_path / "sh010" / "sh010.%04d.png", first, fps, tmp_path / "sh010.mp4",
                            timecode=frame_timecode(first, fps))
    assert probe_timecode(movie) == frame_timecode(first, fps) == ("00:01:06;22" if drop else "00:01:23:08")


def test_an_earlier_cut_goes_while_the_cut_waits_for_a_new_shot(tmp_path, capsys):
    """A shot added and another re-rendered with --shots: the earlier cut, timeline and
    contact sheet showed the old film (and old frames), so they go, and the log says so."""
    import yaml

    from helpers import write_walking_film
    from splatfilm.cli import main

    film = write_walking_film(tmp_path, frames=2)
    out = tmp_path / "out"
    assert main(["render", str(film), "-o", str(out), "--backend", "cpu"]) == 0
    assert (out / "passes.mp4").exists() and (out / "passes.edl").exists()
    script = yaml.safe_load(film.read_text())
    script["shots"][0]["camera"]["position"] = [-1.2, -3.0, 1.6]
    script["shots"].append({**script["shots"][0], "name": "sh020"})
    film.write_text(yaml.safe_dump(script, sort_keys=False))
    capsys.readouterr()
    assert main(["render", str(film), "-o", str(out), "--backend", "cpu", "--shots", "sh010"]) == 0
    said = capsys.readouterr().err  # status lines (splatfilm.report)
    # The film's cut and contact sheet go, and so does the hand-off's timeline (handoff.editorial).
    assert "removed the earlier passes.mp4, contact_sheet.png" in said
    assert "the timeline waits until every shot has been rendered (removed the earlier passes.otio, passes.edl)" in said
    assert not any((out / n).exists() for n in ("passes.mp4", "passes.otio", "passes.edl", "contact_sheet.png"))


def test_a_film_in_a_folder_whose_name_is_not_utf8_renders_whole(tmp_path, capsys):
    """A folder named on a Latin-1 system (b"caf\\xe9", held by Python as a surrogate escape):
    ffmpeg's reports of it are read, the cut's listing names it, the EXR passes are written and
    read back, and the shot's USD camera, which USD cannot name, is left out with a note."""
    import os

    from helpers import write_walking_film

    from splatfilm.cli import main
    from splatfilm.io.images import read_exr_layers
    from splatfilm.io.video import probe_timecode, read_movie_provenance

    folder = tmp_path / os.fsdecode(b"caf\xe9 film")
    folder.mkdir()
    film = write_walking_film(folder, frames=2)
    out = folder / "out"
    capsys.readouterr()
    assert main(["render", str(film), "-o", str(out), "--backend", "cpu", "--passes"]) == 0
    printed, err = capsys.readouterr()  # a note on stderr (splatfilm.report)
    assert "note: sh010: no USD camera (USD needs a UTF-8 path)" in err and "no USD camera" not in printed
    assert not (out / "cameras" / "sh010.usda").exists()
    assert probe_timecode(out / "sh010.mp4") is not None
    assert read_movie_provenance(out / "sh010.mp4")[0] is not None
    assert probe_frames(out / "passes.mp4")[0] == 2
    assert {"R", "Z"} <= set(read_exr_layers(out / "sh010" / "sh010.1001.exr")[0])
    assert (out / "passes.otio").exists() and (out / "passes.edl").exists()


def test_a_cut_joins_movies_in_a_folder_with_a_quote_in_its_name(tmp_path):
    folder = tmp_path / "director's cut"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for k in range(2):
            iio.imwrite(folder / name / f"{name}.{1001 + k:04d}.png", np.full((16, 16, 3), 40 * k, np.uint8))
    parts = [encode_sequence(folder / n / f"{n}.%04d.png", 1001, FPS, folder / f"{n}.mp4") for n in ("a", "b")]
    assert probe_frames(concat_videos(parts, folder / "cut.mp4"))[0] == 4
