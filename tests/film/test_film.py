"""Films: script validation, one-call composition, animation, outputs read back with their own
libraries, hash-based re-rendering and resume, workers, lens effects."""

from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import opentimelineio as otio
import pytest
import torch
import yaml
from helpers import blob_splats, cli_error, square_splats

from splatfilm.errors import SplatfilmError
from splatfilm.film import FrameRenderer, RenderOptions, parse_film, render_film
from splatfilm.scene.gaussians import Gaussians
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.io.video import probe_frames, probe_timecode
from splatfilm.film.checks import continuity_notes
from splatfilm.film.world import KeyedMotion, PathWalk


def _render(film_dir: Path, out: Path, **options):
    """The film in film_dir rendered on the CPU into `out`, quietly."""
    return render_film(film_dir / "film.yaml", out, RenderOptions(backend="cpu", **options), progress=False,
                       log=lambda *_: None)


def _edit(folder: Path, fn) -> None:
    data = yaml.safe_load((folder / "film.yaml").read_text())
    fn(data)
    (folder / "film.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_script_errors_name_file_and_field(film_dir):
    cases = [
        (lambda d: d["shots"][1].update(hide=["ghost"]), "shots[1].hide[0]: unknown asset 'ghost'"),
        (lambda d: d["shots"][0].update(handles=-1), "shots[0].handles: must be >= 0, got -1"),
        (lambda d: d["shots"][1].update(include="shots/none.yaml"), "shots[1].camera: an included shot takes only"),
        (lambda d: d["assets"]["hero"].update(yaw="left"), "assets.hero.yaw: expected a number"),
        (lambda d: d["assets"]["wall"].update(file="nope.ply"), "assets.wall.file:"),
        (lambda d: d.update(colour=1), "colour: unknown field"),
        (lambda d: d.update(version=2), "version: 2 is newer than this splatfilm reads (up to 1)"),
        (lambda d: d.update(version="one"), "version: expected a whole number >= 1"),
        (lambda d: d["shots"][1].update(name="sh010"), "shots[1].name: another shot is already called 'sh010'"),
        (lambda d: d["shots"][0]["camera"].update(look_at=[0, -4, 1.0]), "shots[0]"),
        (lambda d: d["assets"]["hero"].update(walk={"points": [[0, 0, 0]], "speed": 1}), "assets.hero.walk.points"),
        # The title names the cut's files in the output folder: not a path, not a shot's movie.
        (lambda d: d.update(title="../../evil"), "title: expected a file name"),
        (lambda d: d.update(title=["a"]), "title: expected a file name"),
        (lambda d: d.update(title="sh010"), "title: 'sh010' is also a shot's name"),
        # H.264 4:2:0 and ProRes 422 code no odd sizes: refused before any frame renders.
        (lambda d: d.update(resolution=[321, 181]), "resolution: 321x181: width and height must be even"),
        # Rendered as the lesser of this and each asset's degree: an impossible one passed unnoticed.
        (lambda d: d.update(sh_degree=5), "sh_degree: must be 0-4"),
        (lambda d: d.update(effects={"motion_blur": {"samples": "many"}}),
         "effects.motion_blur.samples: expected a whole number >= 2 or auto, got 'many'"),
        # The edit counts in timecode (EDL, the movies' tracks): a rate without one, before rendering.
        (lambda d: d.update(fps=12), "fps: 12 fps has no SMPTE timecode"),
        # Every frame is written with its timecode: a negative frame number stopped the render
        # after its first frame with "error: frame -5: ..." (no file named).
        (lambda d: d["shots"][0].update(first_frame=-5), "shots[0].first_frame: frame -5: timecode counts from"),
        (lambda d: d["shots"][0].update(frame_range=[-2, 3]) or d["shots"][0].pop("frames"),
         "shots[0].frame_range: frame -3: timecode counts from frame 0 (the first of its 1 head handle"),
        # A shutter open longer than the frame, and focus inside the focal length (which depth of
        # field clamped), rendered without a word.
        (lambda d: d.update(effects={"motion_blur": {"shutter_deg": 720}}),
         "effects.motion_blur.shutter_deg: must be at most 360 degrees"),
        (lambda d: d.update(lens={"focal_mm": 35, "f_stop": 2, "focus_distance": 0.02},
                            effects={"depth_of_field": True}),
         "shots[0].lens.focus_distance: 0.02 m is nearer than the focal length (35 mm)"),
        (lambda d: d["shots"][0]["camera"].update(focus_distance=0.03),
         "shots[0].camera.focus_distance: 0.03 m is nearer than the focal length (35 mm)"),
        (lambda d: d["shots"][0]["camera"].update(focus_distance=2) or d["shots"][0].update(
            move={"type": "rack_focus", "to_distance": 0.02}),
         "shots[0].move: frame 1005: focus_distance 0.0331126 m is nearer"),
        # The cut's record start is a timecode at the film's rate, read with the script.
        (lambda d: d.update(record_start="01:00:00;00"), "record_start: 01:00:00;00: ';' marks drop-frame timecode"),
        (lambda d: d.update(record_start="1:00:00:00"), "record_start: expected a timecode \"HH:MM:SS:FF\""),
        (lambda d: d.update(record_start="01:00:00:24"), "record_start: 01:00:00:24: out of range"),
        (lambda d: d.update(record_start=36000), "record_start: expected a timecode string such as"),
        (lambda d: d.update(fps="30000/1001", record_start="01:00:00:00"),
         "record_start: 01:00:00:00: timecode at 29.97 fps is drop-frame; write 01:00:00;00"),
        (lambda d: d.update(fps="30000/1001", record_start="01:01:00;01"),
         "record_start: 01:01:00;01: no frame has this timecode"),
        (lambda d: d.update(record_start="23:59:59:20"), "record_start: the cut (11 frames) would run past 24 hours"),
        # Assets placed by their sidecars' frame.origin_offset: the film's anchor, an asset's opt-out.
        (lambda d: d.update(origin_offset=[4e6, 5e5]), "origin_offset: expected [x, y, z]"),
        (lambda d: d["assets"]["wall"].update(origin_offset="no"), "assets.wall.origin_offset: expected true or false"),
    ]
    original = (film_dir / "film.yaml").read_text()
    for change, message in cases:
        (film_dir / "film.yaml").write_text(original)
        _edit(film_dir, change)
        with pytest.raises(SplatfilmError) as e:
            parse_film(film_dir / "film.yaml")
        assert str(e.value).startswith(str(film_dir / "film.yaml") + ": ") and message in str(e.value), str(e.value)
    (film_dir / "film.yaml").write_text("title: [unclosed")
    with pytest.raises(SplatfilmError, match="invalid YAML at line"):
        parse_film(film_dir / "film.yaml")
    # A key given twice: PyYAML kept the last without a word.
    (film_dir / "film.yaml").write_text(original.replace("resolution:", "fps: 24\nresolution:", 1)
                                        if "fps:" in original else original + "\ntitle: a\ntitle: b\n")
    with pytest.raises(SplatfilmError, match=r"invalid YAML at line \d+, column \d+: the key '(fps|title)' is given twice"):
        parse_film(film_dir / "film.yaml")
    (film_dir / "film.yaml").write_text(original)


def test_one_rasterization_call_gets_occlusion_right(film_dir):
    film = parse_film(film_dir / "film.yaml")
    fs = film.shots[0]
    hero_px = (32, 18)  # the camera looks straight at the wall; the hero stands on that axis
    rgb, _, _ = FrameRenderer(film, "cpu").render(fs, 0)
    assert rgb[hero_px[1], hero_px[0], 2] > 0.6 and rgb[hero_px[1], hero_px[0], 0] < 0.4  # in front: seen
    film.world.assets["hero"].placement.translation[:] = [0, 1.0, 0.5]  # behind the wall
    rgb, _, _ = FrameRenderer(film, "cpu").render(fs, 0)
    assert rgb[hero_px[1], hero_px[0], 0] > 0.6 and rgb[hero_px[1], hero_px[0], 2] < 0.3  # hidden by the wall


def test_frames_of_a_static_world_copy_none_of_its_gaussians(tmp_path, monkeypatch):
    """A world that never moves is not joined (Gaussians.concat) nor its SH bands joined
    (Gaussians.sh) again for every frame: no torch.cat reads the asset's own tensors."""
    from helpers import random_gaussians

    save_gaussians(tmp_path / "set.ply", random_gaussians(400, 2, torch.float32, seed=3))
    (tmp_path / "film.yaml").write_text(yaml.safe_dump({
        "title": "still", "fps": 24, "resolution": [48, 32], "handles": 0, "assets": {"set": {"file": "set.ply"}},
        "shots": [{"name": "sh010", "frames": 2, "camera": {"position": [0, -4, 0.5], "look_at": [0, 0, 0]},
                   "move": {"type": "dolly", "distance": 0.3}}]}, sort_keys=False))
    film = parse_film(tmp_path / "film.yaml")
    own = {getattr(film.world.assets["set"].gaussians, f).data_ptr() for f in ("means", "quats", "scales",
                                                                          "opacities", "sh0", "shN")}
    copies, cat = [], torch.cat

    def counting_cat(tensors, *args, **kwargs):
        copies.extend(t for t in tensors if isinstance(t, torch.Tensor) and t.data_ptr() in own)
        return cat(tensors, *args, **kwargs)

    monkeypatch.setattr(torch, "cat", counting_cat)
    renderer = FrameRenderer(film, "cpu")
    frames = [renderer.render(film.shots[0], i)[0] for i in range(2)]
    assert copies == []
    assert all(np.ptp(f) > 0.2 for f in frames) and not np.array_equal(frames[0], frames[1])


def test_a_film_shot_may_give_its_frame_range(film_dir):
    # The film's first_frame is a default a shot inherits: a shot giving frame_range was refused
    # with "shots[0].first_frame: frame_range already sets the first frame", a field it never set.
    _edit(film_dir, lambda d: d["shots"][0].update(frame_range=[2001, 2006]) or d["shots"][0].pop("frames"))
    fs = parse_film(film_dir / "film.yaml").shots[0]
    # The range is the cut's; its handles lie either side of it.
    assert (fs.cut_in, fs.cut_frames, fs.shot.first_frame, fs.shot.frame_count) == (2001, 6, 2000, 6 + 2)


def test_script_frame_numbers_are_the_frame_numbers_written(film_dir):
    # With handles, a key's `frame:` and a move's `frames:` counted from the first handle frame:
    # handles 4 and frame_range [1001, 1024] put a key at frame 1011 on file frame (and USD
    # time, EDL source frame) 1015, and the files ran 1001-1032.
    def keyed(d):
        shot = d["shots"][0]
        for k in ("frames", "camera", "move"):
            shot.pop(k)
        shot.update(frame_range=[1001, 1006], keyframes=[
            {"frame": 1001, "position": [0, -4, 1.0], "pan": 0},
            {"frame": 1004, "position": [0.3, -4, 1.0], "pan": 0},
            {"frame": 1006, "position": [0.3, -4, 1.0], "pan": 0}])
        d["shots"][1]["move"]["frames"] = [1003, 1005]  # sh020: first_frame 1001 is its head handle's
    _edit(film_dir, keyed)
    a, b = parse_film(film_dir / "film.yaml").shots
    assert list(a.shot.frame_numbers) == list(range(1000, 1008)) and (a.cut_in, a.cut_frames) == (1001, 6)
    x = dict(zip(a.shot.frame_numbers, a.shot.cameras().centers[:, 0]))
    assert (x[1001], x[1004], x[1006]) == pytest.approx((0.0, 0.3, 0.3), abs=1e-12)
    assert b.shot.first_frame == 1001 and b.cut_in == 1002  # first_frame numbers the first rendered frame
    pan = dict(zip(b.shot.frame_numbers, np.degrees(np.arctan2(*b.shot.cameras().viewmats[:, 2, :2].T))))
    assert pan[1002] == pan[1003] != pan[1004] != pan[1005] == pan[1006]  # the move runs on frames 1003-1005


def test_animation_hits_keys_turns_short_way_and_walks_at_constant_speed():
    m = KeyedMotion(np.array([0.0, 1.0, 3.0]), np.array([[0, 0, 0], [1, 0, 0], [1, 2, 0.0]]),
                    np.array([350.0, 10.0, 40.0]), np.array([1.0, 2.0, 2.0]))
    for t, p in zip([0.0, 1.0, 3.0], [[0, 0, 0], [1, 0, 0], [1, 2, 0]]):
        np.testing.assert_allclose(m.at(t).translation, p, atol=1e-12)
    yaw_half = math.degrees(math.atan2(m.at(0.5).rotation[1, 0], m.at(0.5).rotation[0, 0]))
    assert abs(yaw_half) < 5  # 350 -> 10 degrees passes through 0, not 180
    assert 1.0 <= m.at(0.5).scale <= 2.0 and m.at(2.0).scale == pytest.approx(2.0)  # monotone: no overshoot
    walk = PathWalk(np.array([[0, 0, 0], [2, 0, 0], [2, 2, 0.0]]), speed=0.5, start=1.0)
    steps = [np.linalg.norm(walk.at(t + 0.1).translation - walk.at(t).translation) for t in np.arange(1.0, 6.0, 0.1)]
    assert np.std(steps) < 0.1 * np.mean(steps) and np.mean(steps) == pytest.approx(0.05, rel=0.1)
    np.testing.assert_allclose(walk.at(0.0).translation, [0, 0, 0], atol=1e-9)  # waits before its start
    front = walk.at(1.5).rotation @ np.array([0, -1.0, 0])  # canonical front is -y
    assert front @ np.array([1.0, 0, 0]) > 0.95  # faces along the path (+x at first)


def _hero_keys(film_dir: Path, keys: list[dict], yaw: float | None = None) -> KeyedMotion:
    """The hero's KeyedMotion once the tiny film (handles 1: its first shot's cut starts at
    frame 1002, world time 0) keys it with `keys` (and stands it at `yaw`)."""
    def keyed(d):
        d["assets"]["hero"]["animation"] = {"keyframes": keys}
        if yaw is not None:
            d["assets"]["hero"]["yaw"] = yaw
    _edit(film_dir, keyed)
    return parse_film(film_dir / "film.yaml").world.assets["hero"].motion


def test_an_asset_key_by_frame_lands_where_its_time_and_a_camera_key_at_that_frame_do(film_dir):
    # Asset keys took `time:` alone: `frame: 1014`, as a camera key takes it, was an unknown field.
    by_time = _hero_keys(film_dir, [{"time": 0, "position": [0, -1, 0.5]}, {"time": 0.5, "position": [1, -1, 0.5]},
                                    {"time": 1.25, "position": [1, 0, 0.5]}])
    by_frame = _hero_keys(film_dir, [{"frame": 1002, "position": [0, -1, 0.5]}, {"frame": 1014, "position": [1, -1, 0.5]},
                                     {"frame": 1032, "position": [1, 0, 0.5]}])
    assert by_frame.times.tolist() == by_time.times.tolist() == [0.0, 0.5, 1.25]
    assert by_frame.key() == by_time.key()  # the same motion, the same cache keys
    first = parse_film(film_dir / "film.yaml").shots[0]
    assert first.world_start + first.shot.time_of_frame(1014) == pytest.approx(0.5, abs=1e-12)  # where the first shot's frame 1014 is


def test_an_asset_key_eases_as_a_camera_key_does(film_dir):
    plain = [{"time": 0, "position": [0, -1, 0.5]}, {"time": 1, "position": [1, -1, 0.5]}]
    linear = _hero_keys(film_dir, plain)
    eased = _hero_keys(film_dir, [plain[0], {**plain[1], "ease": 1}])
    for t in (0.0, 1.0):  # the keys are where they were
        np.testing.assert_allclose(eased.at(t).translation, linear.at(t).translation, atol=1e-12)
    x = lambda m, t: m.at(t).translation[0]
    assert x(linear, 1.0) - x(linear, 0.99) == pytest.approx(0.01, rel=1e-6)
    assert x(eased, 1.0) - x(eased, 0.99) < 1e-3  # it comes to rest at the key it eases into
    assert linear.key() != eased.key()


def test_asset_key_fields_a_camera_key_takes_and_an_asset_key_cannot_are_one_line(film_dir):
    keys = [{"time": 0, "position": [0, -1, 0.5]}, {"time": 1, "position": [1, -1, 0.5]}]
    cases = [({"tension": 0.5}, "keyframes[1].tension: asset keys move on Catmull-Rom curves"),
             ({"look_at": [0, 0, 1]}, "keyframes[1].look_at: unknown field (expected one of ease, ease_in, ease_out, "
                                      "frame, position, scale, time, yaw)"),
             ({"frame": 1026}, "keyframes[1]: give exactly one of `time` (seconds) or `frame`"),
             ({"ease": 2}, "keyframes[1].ease: must be in [0, 1]")]
    for extra, message in cases:
        with pytest.raises(SplatfilmError) as e:
            _hero_keys(film_dir, [keys[0], {**keys[1], **extra}])
        assert "\n" not in str(e.value) and f"assets.hero.animation.{message}" in str(e.value), str(e.value)


def test_an_asset_keys_unset_yaw_is_the_yaw_it_stands_at(film_dir):
    m = _hero_keys(film_dir, [{"time": 0}, {"time": 1, "position": [1, -1, 0.5]}], yaw=-150.0)
    assert m.yaw_deg.tolist() == pytest.approx([-150.0, -150.0], abs=1e-12)


def test_a_walk_that_doubles_back_turns_at_its_turn_rate():
    """A path that turns back (to x = 2 and back to the start) faced along its tangent, which
    flips at the turn: the body turned 171 degrees in one frame. It now turns at most
    turn_rate degrees a second and faces the way it walks once the turn is done."""
    walk = PathWalk(np.array([[0, 0, 0], [2, 0, 0], [0, 0.01, 0.0]]), speed=1.0)  # turn_rate 180 by default
    times = np.arange(-0.5, walk.end + 2.0, 1 / 24)
    fronts = np.array([walk.at(float(t)).rotation @ np.array([0, -1.0, 0]) for t in times])  # canonical front: -y
    facing = np.unwrap(np.arctan2(fronts[:, 1], fronts[:, 0]))
    per_frame = np.degrees(np.abs(np.diff(facing)))
    assert per_frame.max() < 180.0 / 24 + 0.5, per_frame.max()
    assert np.degrees(abs(facing[-1] - facing[0])) == pytest.approx(180.0, abs=1.0)  # turned back round in the end
    assert fronts[times.searchsorted(0.5)] @ [1, 0, 0] > 0.99  # faces along the path before the turn
    assert fronts[times.searchsorted(3.5)] @ [-1, 0, 0] > 0.99  # and after it
    with pytest.raises(SplatfilmError, match="turn_rate"):
        PathWalk(np.array([[0, 0, 0], [2, 0, 0.0]]), speed=1.0, turn_rate=0.0)


def test_a_walk_slows_into_a_turn_it_cannot_keep_up_with_turns_and_walks_on():
    """The walk kept its full speed while its facing came round the turn above: for most of
    a second it walked backwards and sideways (facing 176 degrees off its travel at 1 m/s), a
    moonwalk. It now slows into the turn, turns standing and walks on, facing its way;
    distance() is the distance so walked and the walk arrives that much later. A path its
    facing keeps up with (the demo's explorer) walks as before, bit for bit."""
    walk = PathWalk(np.array([[0, 0, 0], [2, 0, 0], [0, 0.01, 0.0]]), speed=1.0)
    dt = 1 / 240
    times = np.arange(0.0, walk.end + 0.5, dt)
    pos = np.array([walk.at(float(t)).translation[:2] for t in times])
    fronts = np.array([(walk.at(float(t)).rotation @ [0, -1.0, 0])[:2] for t in times])  # canonical front: -y
    velocity = np.diff(pos, axis=0) / dt
    speed = np.linalg.norm(velocity, axis=1)
    lag = np.degrees(np.arccos(np.clip(np.sum(velocity * fronts[:-1], 1) / np.maximum(speed, 1e-12), -1, 1)))
    assert lag[speed > 0.1].max() < 45, lag[speed > 0.1].max()  # degrees between facing and travel
    assert lag[speed > 0.3].max() < 5, lag[speed > 0.3].max()
    walked = np.array([walk.distance(float(t)) for t in times])
    assert speed[walked[:-1].searchsorted(1.9)] < 0.7  # slowing 10 cm before the turn
    facing = np.degrees(np.unwrap(np.arctan2(fronts[:, 1], fronts[:, 0])))
    standing = speed < 1e-3
    assert np.abs(np.diff(facing))[standing & (times[:-1] < walk.end)].sum() > 120  # most of the turn stood
    assert np.abs(np.diff(facing))[~standing].max() <= 180 * dt + 1e-6  # and no faster than turn_rate
    # distance() is what was walked, up to arriving late by the time it slowed and stood.
    np.testing.assert_allclose(walked - walked[0], np.concatenate([[0], np.cumsum(speed * dt)]), atol=0.01)
    assert walk.end > walk.start + walk.length / walk.speed + 1.0  # the half turn took a second at least
    assert walk.distance(walk.end) == pytest.approx(walk.length)
    assert walk.distance(walk.end - 0.05) < walk.length - 0.001  # arrives at end, not before

    # The demo film's explorer: its path bends slower than turn_rate, so nothing changes.
    demo = np.array([[-1.5, -1.9, 0], [-0.95, -1.1, 0], [-0.45, -0.6, 0]])
    walk, free = PathWalk(demo, 0.6, 0.3, 1.6), PathWalk(demo, 0.6, 0.3, 1.6, turn_rate=1e9)
    assert walk.end == 0.3 + walk.length / 0.6
    for t in np.arange(0.0, 4.0, 1 / 96):
        assert walk.distance(t) == min(max((t - 0.3) * 0.6, 0.0), walk.length)
        a, b = walk.at(t), free.at(t)
        assert np.array_equal(a.rotation, b.rotation) and np.array_equal(a.translation, b.translation)


def test_a_walker_stands_facing_the_way_it_sets_off():
    """The curve through a walk's points leaves the first one along its own tangent, which
    with natural end conditions is off the line to the second point (11.3 degrees on a
    corner, 14.6 on this S, 1.8 for the demo's explorer): the walker walks the curve, so it
    sets off along that tangent, and stands facing it. A standing facing turned to the first
    leg would be that far off the way it goes, and turn back as it set off."""
    paths = {"corner": [[0, 0, 0], [2, 0, 0], [2, 2, 0]], "S": [[0, 0, 0], [1, 0.5, 0], [2, -0.5, 0], [3, 0, 0]],
             "explorer": [[-1.5, -1.9, 0], [-0.95, -1.1, 0], [-0.45, -0.6, 0]]}

    def degrees(v) -> float:
        return math.degrees(math.atan2(v[1], v[0]))

    for name, points in paths.items():
        walk = PathWalk(np.array(points, float), speed=0.6, start=0.3)
        facing = [degrees(walk.at(t).rotation @ [0, -1.0, 0]) for t in (0.0, 0.3, 0.3 + 1 / 24)]  # front: -y
        for dt, within in ((1 / 24, 0.05), (0.2 / 0.6, 0.5)):  # its first frame, its first 0.2 m (bending)
            travel = degrees(walk.at(0.3 + dt).translation - walk.at(0.3).translation)
            assert abs(facing[0] - travel) < within, (name, dt, facing[0], travel)
        assert max(facing) - min(facing) < 0.05, (name, facing)  # no turn as it sets off


def test_film_outputs_read_back_and_rerender_only_what_changed(film_dir):
    from splatfilm.handoff.editorial import write_editorial

    out = film_dir / "out"
    res = _render(film_dir, out)
    # The film writes no timeline: the hand-off does, after the render (`splatfilm render` runs it).
    assert not (out / "tiny.otio").exists() and not (out / "tiny.edl").exists()
    assert write_editorial(res.film, out, log=lambda *_: None) == (out / "tiny.otio", out / "tiny.edl")
    assert res.rendered == {"sh010": 6 + 2, "sh020": 5 + 2}  # handles: one more frame at each end
    png = iio.imread(out / "sh010" / "sh010.1001.png")
    assert png.shape == (36, 64, 3) and png.std() > 10
    assert probe_frames(out / "sh010.mp4") == (8, (64, 36))
    assert probe_timecode(out / "sh010.mp4") == "00:00:41:17"  # frame 1001 at 24 fps
    assert probe_frames(out / "tiny.mp4")[0] == 6 + 5  # the cut is the scripted frames, handles left out
    tl = otio.adapters.read_from_file(str(out / "tiny.otio"))
    clips = list(tl.find_clips())
    assert [(c.name, c.source_range.start_time.value, c.source_range.duration.value) for c in clips] == [
        ("sh010", 1002, 6), ("sh020", 1002, 5)]
    # The .otio and the .edl name the same media: the shot MP4, whose timecode matches frame numbers.
    assert clips[0].media_reference.target_url == "sh010.mp4"
    assert clips[0].media_reference.available_range.start_time.value == 1001
    seq = clips[0].media_references()["png_sequence"]
    assert (out / seq.target_url_for_image_number(1)).name == "sh010.1002.png"
    edl = otio.adapters.read_from_file(str(out / "tiny.edl"), rate=24)
    assert [c.source_range.duration.value for c in edl.find_clips()] == [6, 5]
    assert [c.media_reference.target_url for c in edl.find_clips()] == ["sh010.mp4", "sh020.mp4"]
    edl_in = next(iter(edl.find_clips())).source_range.start_time
    assert otio.opentime.to_timecode(edl_in, 24) == "00:00:41:18"  # = the MP4's timecode + 1 handle frame
    # The cut lines up with the EDL's record side by timecode: its track starts at the first
    # record in, and its last frame is the last record out's frame before.
    lines = (out / "tiny.edl").read_text().splitlines()
    assert lines[1] == "FCM: NON-DROP FRAME"
    events = [line.split() for line in lines if line[:3].isdigit()]
    # Its record side starts at 01:00:00:00, where editorial timelines start a programme.
    assert probe_timecode(out / "tiny.mp4") == events[0][6] == "01:00:00:00" == otio.opentime.to_timecode(
        tl.global_start_time, 24)
    assert otio.opentime.from_timecode(events[-1][7], 24).value == 86400 + probe_frames(out / "tiny.mp4")[0]
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(out / "cameras" / "sh010.usda"))
    cams = [p for p in stage.Traverse() if p.IsA(UsdGeom.Camera)]
    assert cams and stage.GetStartTimeCode() == 1001 and stage.GetEndTimeCode() == 1008
    assert abs(UsdGeom.Camera(cams[0]).GetFocalLengthAttr().Get(1001) - 0.35) < 1e-6  # 35 mm in tenths of a unit
    sheet = iio.imread(out / "contact_sheet.png")
    assert sheet.shape[:2] == (2 * (90 + 18 + 6) + 6, 2 * (160 + 6) + 6)  # a row per shot, first and last cut frame
    first = {p: p.read_bytes() for p in out.glob("sh0*/*.png")}

    # Same script again: nothing renders, same pixels.
    res = _render(film_dir, out)
    assert res.rendered == {"sh010": 0, "sh020": 0}
    # Move the character: sh020 hides it, so only sh010 renders again.
    _edit(film_dir, lambda d: d["assets"]["hero"].update(position=[0.3, -1.0, 0.5]))
    res = _render(film_dir, out)
    assert res.rendered == {"sh010": 8, "sh020": 0}
    # Change one shot's camera: only that shot, and only the frames whose camera moved (a pan
    # starts from the same first frame, which the head handle holds).
    _edit(film_dir, lambda d: d["shots"][1]["move"].update(degrees=8))
    res = _render(film_dir, out)
    assert res.rendered == {"sh010": 0, "sh020": 5}
    # An interrupted render: a lost frame comes back, nothing else renders twice.
    (out / "sh020" / "sh020.1003.png").unlink()
    res = _render(film_dir, out)
    assert res.rendered == {"sh010": 0, "sh020": 1}
    assert not list(out.rglob(".*.tmp*"))
    assert first  # (kept for the determinism test below)
    # Another encoder quality: the same frames, every movie encoded again.
    movies = {p.name: p.read_bytes() for p in out.glob("*.mp4")}
    _edit(film_dir, lambda d: d.update(crf=40))
    res = _render(film_dir, out)
    assert res.rendered == {"sh010": 0, "sh020": 0}
    assert all((out / name).read_bytes() != data for name, data in movies.items())


def test_a_films_record_start_moves_the_cuts_record_side_and_nothing_else(film_dir):
    """`record_start` (default 01:00:00:00) is where the cut sits on the record side: the EDL's
    record column, the .otio's global start, the cut MP4's timecode and its provenance; the
    shots' own timecodes (frame 1001 is 00:00:41:17 at 24 fps) stay as they were."""
    from splatfilm.film.cut import movie_record
    from splatfilm.handoff.editorial import build_timeline, write_timeline

    _edit(film_dir, lambda d: d.update(fps="30000/1001", record_start="00:59:50;00"))
    film = parse_film(film_dir / "film.yaml")
    assert film.record_start == 107892 - 300  # ten seconds (300 frames) before 01:00:00;00, frame 107892
    facts = {"film": "film.yaml", "film_sha256": "0" * 64, "assets": {}}
    assert movie_record(film, facts, [0, 1], set(), cut=True)["timecode"] == "00:59:50;00"
    assert movie_record(film, facts, [0], set())["timecode"] == "00:00:33;11"  # frame 1001 at 29.97 drop-frame
    _edit(film_dir, lambda d: d.pop("record_start"))
    assert parse_film(film_dir / "film.yaml").record_start == 107892  # 01:00:00;00 at 29.97
    _edit(film_dir, lambda d: d.update(fps=24))
    film = parse_film(film_dir / "film.yaml")
    assert film.record_start == 86400  # 01:00:00:00
    out = film_dir / "edit"
    from splatfilm.film.cut import shot_clips

    timeline = build_timeline(film.title, shot_clips(film, out), film.fps, out, film.record_start)
    edl = write_timeline(film_dir / "tiny.edl", timeline).read_text().splitlines()
    events = [line.split() for line in edl if line[:3].isdigit()]
    assert [e[4:8] for e in events] == [["00:00:41:18", "00:00:42:00", "01:00:00:00", "01:00:00:06"],
                                        ["00:00:41:18", "00:00:41:23", "01:00:00:06", "01:00:00:11"]]


def test_shots_that_share_a_reel_name_get_told_apart():
    from splatfilm.handoff.editorial import reel_names

    assert reel_names(["sh010", "sh020"]) == {"sh010": "sh010", "sh020": "sh020"}
    # The first 8 letters and digits alike: the last 8 tell them apart.
    assert reel_names(["seq01_sh010", "seq01_sh020", "b"]) == {"seq01_sh010": "q01sh010", "seq01_sh020": "q01sh020",
                                                              "b": "b"}
    # Alike at both ends: numbered.
    names = reel_names(["a_long_xx_tail_end", "a_long_yy_tail_end"])
    assert len(set(names.values())) == 2 and all(len(r) <= 8 for r in names.values())


def test_same_script_same_pixels_with_workers(film_dir):
    a = _render(film_dir, film_dir / "a")
    b = _render(film_dir, film_dir / "b", workers=2)
    assert a.rendered == b.rendered
    for p in sorted((film_dir / "a").glob("sh0*/*.png")):
        assert p.read_bytes() == (film_dir / "b" / p.relative_to(film_dir / "a")).read_bytes()


def test_a_script_edited_while_workers_render_is_refused_not_kept_under_the_old_keys(film_dir, monkeypatch):
    """Each worker parses the script again: edited after the frames were planned, the workers
    wrote the new film's frames under the old one's keys, and every later render kept them. A
    worker checks each frame's key against its own and refuses; a render of the edited script
    then renders every frame."""
    from splatfilm.film import render as render_module

    planned = render_module.render_with_processes

    def edit_then_render(*args, **kwargs):
        _edit(film_dir, lambda d: d.update(background=[0.9, 0.1, 0.1]))  # after planning, before the workers
        return planned(*args, **kwargs)

    monkeypatch.setattr(render_module, "render_with_processes", edit_then_render)
    with pytest.raises(SplatfilmError, match=r"film\.yaml: changed .* while the film was being rendered"):
        _render(film_dir, film_dir / "out", workers=2, shots=["sh010"])
    monkeypatch.undo()
    assert _render(film_dir, film_dir / "out", shots=["sh010"]).rendered == {"sh010": 8}


def test_a_stop_with_workers_starts_no_more_frames_and_records_every_one_written(film_dir):
    """Ctrl-C or SIGTERM with workers: the pool went on rendering every queued frame before
    the stop left it, and none of those was recorded (to be rendered again). Now no frame
    starts after the stop, and every frame written is recorded."""
    from splatfilm.film.workers import render_with_processes

    renderer = FrameRenderer(parse_film(film_dir / "film.yaml"), "cpu")
    out = film_dir / "out"
    jobs = [renderer.job(out, k, i, renderer.key(fs, i)) for k, fs in enumerate(renderer.film.shots)
            for i in range(len(fs.shot.frame_numbers))]
    recorded = []

    def done(job):
        recorded.append(job.png)
        if len(recorded) == 1:
            raise KeyboardInterrupt  # as Ctrl-C (or the CLI's SIGTERM) would, with the first frame back

    with pytest.raises(KeyboardInterrupt):
        render_with_processes(renderer, jobs, 2, done)
    assert recorded and sorted(out.rglob("*.png")) == sorted(recorded)


def test_what_follows_a_render_runs_while_it_still_holds_the_folder(film_dir):
    """The hand-off's masters and signatures (`then`) ran after the render let go of its folder:
    a second render could start between the frames and the masters made of them, each saving
    its own record. They now run with the folder held and the frames' record saved."""
    from splatfilm.film import RenderOptions, render_film
    from splatfilm.io.atomic import work_lock
    from splatfilm.io.manifest import Manifest

    out, seen = film_dir / "out", []

    def then(res) -> None:
        with pytest.raises(SplatfilmError, match="another render is using this folder"):
            with work_lock(out, "render"):
                pass
        seen.append(sorted(Manifest.load(out / ".splatfilm-film.json").frames))

    render_film(film_dir / "film.yaml", out, RenderOptions(backend="cpu", frames=(1001, 1001)), progress=False,
                then=then)
    assert seen and len(seen[0]) == 2, seen


def test_a_second_render_into_a_folder_in_use_is_refused_and_a_killed_ones_scratch_cleared(film_dir):
    """Two renders into one folder each saved their own record of its frames, the last to save
    winning: a frame of the other's script was kept as done. A second render is refused while
    the first holds the folder. What a killed render left half written (atomic writes' hidden
    scratch, a frame's and a listing's) is cleared by the next."""
    from splatfilm.io.atomic import work_lock

    out = film_dir / "out"
    with work_lock(out, "render"):
        with pytest.raises(SplatfilmError, match=r"out: another render is using this folder"):
            _render(film_dir, out, frames_only=True)
    assert not list(out.rglob("*.png"))
    scratch = [out / "sh010" / ".sh010.1007.png.3105.6abb6dac.tmp" / "sh010.1007.png",
               out / ".tiny.txt.3105.6abb6dac.tmp.txt"]
    for p in scratch:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    assert _render(film_dir, out, frames=(1001, 1001)).rendered == {"sh010": 1, "sh020": 1}
    assert not list(out.rglob(".*.tmp*"))


def test_shot_subset_and_unknown_shot(film_dir):
    res = _render(film_dir, film_dir / "o", shots=["sh020"])
    assert res.rendered == {"sh020": 7} and res.film_mp4 is None
    with pytest.raises(SplatfilmError, match="no shot called 'sh999'"):
        _render(film_dir, film_dir / "o", shots=["sh999"])


@pytest.mark.parametrize("cached", [False, True])
def test_the_bar_says_why_the_first_frame_takes_long(film_dir, capsys, monkeypatch, cached):
    """After an install the first frame also compiles the CPU kernels (about 20 s on 2 cores)
    while the bar sat at 0% without a word; it now says so until that frame is done, and only
    when numba's cache does not hold them yet."""
    import splatfilm.film.render as film_render
    from splatfilm.render.rasterize_to_pixels import FIRST_RENDER_NOTE
    from splatfilm.render.rasterize_to_pixels import kernels_cached

    monkeypatch.setattr(film_render, "kernels_cached", lambda: cached)
    render_film(film_dir / "film.yaml", film_dir / "o", RenderOptions(backend="cpu", shots=["sh020"]),
                progress=True, log=lambda *_: None)
    assert kernels_cached()  # numba's cache holds them once a frame has rendered
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    first, done = [ln for ln in bar if "0/7" in ln], [ln for ln in bar if "7/7" in ln]
    assert first and all((FIRST_RENDER_NOTE in ln) != cached for ln in first)
    assert done and not any(FIRST_RENDER_NOTE in ln for ln in done)


def test_depth_of_field_blurs_out_of_focus_and_keeps_energy(film_dir):
    def frame(focus):
        _edit(film_dir, lambda d: d.update(effects={"depth_of_field": focus is not None}, resolution=[160, 90],
                                           lens={"focal_mm": 50, "f_stop": 1.4, "focus_distance": focus or 1.0}))
        film = parse_film(film_dir / "film.yaml")
        return FrameRenderer(film, "cpu").render(film.shots[0], 0)[0]

    sharp = frame(None)
    near_focus = frame(1.0)  # wall (4 m) and hero (3 m) far behind the focus: both soften
    on_hero = frame(3.0)  # the hero sharp, the wall a little soft
    # Gradient energy: blurring an edge spreads its step over more pixels, so this drops.
    grad = lambda im: (np.diff(im, axis=1) ** 2).mean() + (np.diff(im, axis=0) ** 2).mean()  # noqa: E731
    assert grad(near_focus) < 0.8 * grad(sharp)
    assert grad(near_focus) < grad(on_hero) <= grad(sharp) * 1.001
    for im in (near_focus, on_hero):  # energy preserving: the picture keeps its brightness
        assert abs(im.mean() - sharp.mean()) < 0.03


def test_focus_follows_a_walking_asset_it_names(film_dir):
    """`focus_distance: hero` on a hero walking toward the camera: every frame's depth of field
    (handles included) is focused at the camera z of the point shots aim at on the hero."""
    _edit(film_dir, lambda d: (d["assets"]["hero"].update(walk={"points": [[0, -0.5, 0], [0, -3, 0]], "speed": 1.5}),
                               d.update(effects={"depth_of_field": True},
                                        lens={"focal_mm": 50, "f_stop": 2, "focus_distance": "hero"})))
    film = parse_film(film_dir / "film.yaml")
    renderer, fs, hero = FrameRenderer(film, "cpu"), film.shots[0], film.world.assets["hero"]
    focus, subject = [], []
    for i in range(fs.shot.frame_count):
        sample = renderer.sample(fs, i)
        point = hero.target(fs.world_start + float(fs.shot.times[i]))
        subject.append((sample.cameras.viewmats[0] @ np.append(point, 1.0))[2])  # camera z (OpenCV: +z ahead)
        focus.append(sample.dof[0][2])
    np.testing.assert_allclose(focus, subject, rtol=1e-9)
    assert subject[0] - subject[-1] > 0.3  # it walked toward the camera (more than the dolly's 0.5 m over 8 frames)


def _speck_film(folder: Path, effects: dict) -> FrameRenderer:
    """A white 1.5 mm speck 2 m ahead of a camera trucking left at 8.3 m/s (160x90, 35 mm:
    the speck crosses about 39 px a frame), with `effects`."""
    save_gaussians(folder / "speck.ply", Gaussians(
        torch.tensor([[0.0, 2.0, 0.0]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), math.log(0.0015)),
        torch.tensor([6.0]), torch.full((1, 1, 3), 1.7725), torch.zeros((1, 0, 3))))
    (folder / "film.yaml").write_text(yaml.safe_dump({
        "title": "speck", "fps": 24, "resolution": [160, 90], "handles": 0, "effects": effects,
        "lens": {"focal_mm": 35, "sensor_width_mm": 24.89, "f_stop": 2.0, "focus_distance": 2.0},
        "assets": {"speck": {"file": "speck.ply"}},
        "shots": [{"name": "sh010", "frames": 5, "camera": {"position": [1.0, 0, 0], "look_at": [1.0, 1, 0]},
                   "move": {"type": "truck", "distance": -1.39, "ease": 0}}]}, sort_keys=False))
    return FrameRenderer(parse_film(folder / "film.yaml"), "cpu")


def test_motion_blur_streaks_a_moving_point_over_the_shutter_angle(tmp_path):
    """Sub-frames at both ends of the shutter (5 by default) lit five dots, the end ones
    brighter, spread as a 0.354 L streak: 22% longer than a box of the shutter's length L.
    Stratified over the open shutter, the streak has the box's spread, sqrt(L^2 / 12 + s0^2)."""
    def profile(renderer, i):
        a = renderer.render(renderer.film.shots[0], i)[1][..., 0].sum(axis=0)
        x = np.arange(a.size) + 0.5
        c = (a * x).sum() / a.sum()
        return c, math.sqrt((a * (x - c) ** 2).sum() / a.sum())

    sharp = _speck_film(tmp_path, {})
    (c1, s0), (c3, _) = profile(sharp, 1), profile(sharp, 3)
    length = abs(c3 - c1) / 2 * 0.5  # pixels per frame x the 180 degree shutter's half frame
    blurred = _speck_film(tmp_path, {"motion_blur": {"shutter_deg": 180, "samples": 5}})
    c2, s2 = profile(blurred, 2)
    assert 18 < length < 21 and s0 < 1.0
    assert abs(c2 - (c1 + c3) / 2) < 0.1  # centred on the frame's own time
    assert abs(s2 / math.sqrt(length**2 / 12 + s0**2) - 1.0) < 0.05, (s2, length, s0)


def test_auto_shutter_samples_follow_the_screen_motion(tmp_path):
    """Five sub-frames of a speck crossing 19.5 px while the shutter is open are five dots
    3.9 px apart (intensities 47/25/46/25/47 with samples at the ends). `samples: auto` takes
    as many as keep its images within 2 sigma of each other (sigma 0.55 px: 18), so the
    streak is smooth; a frame where nothing moves on screen renders once."""
    blurred = _speck_film(tmp_path, {"motion_blur": {"shutter_deg": 180, "samples": "auto"}})
    fs = blurred.film.shots[0]
    assert len(blurred.sample(fs, 2).times) == 18
    a = blurred.render(fs, 2)[1][..., 0].sum(axis=0)
    inside = a[a > 0.5 * a.max()][1:-1]  # the streak but its two partly covered end pixels
    assert inside.size >= 15 and inside.min() > 0.93 * inside.max()  # even, no dots (5 samples: 0.5)
    _edit(tmp_path, lambda d: d["shots"][0].pop("move"))
    still = FrameRenderer(parse_film(tmp_path / "film.yaml"), "cpu")
    assert still.sample(still.film.shots[0], 2).times == [2 / 24]


def test_lens_effects_version_only_their_frames_keys(tmp_path, monkeypatch):
    """Depth of field's alpha and motion blur's sample times changed what their frames look
    like, so those frames carry a version in their keys (a rerun renders them again); frames
    without them keep the keys they had."""
    from splatfilm.film import frame_render

    keyed = []
    monkeypatch.setattr(frame_render, "content_digest", lambda d: keyed.append(d) or "key")
    for effects in ({}, {"depth_of_field": True}, {"motion_blur": {"shutter_deg": 180, "samples": 3}}):
        renderer = _speck_film(tmp_path, effects)
        renderer.key(renderer.film.shots[0], 0)
    plain, dof, blur = ({k: v for k, v in d.items() if k.endswith("_version")} for d in keyed)
    assert plain == {} and dof == {"dof_version": 2} and blur == {"shutter_version": 3}


def test_frames_only_then_the_edit_from_the_kept_frames(film_dir):
    from splatfilm.handoff.editorial import write_editorial

    out = film_dir / "out"
    res = _render(film_dir, out, frames_only=True)  # a render node: frames, nothing made from them
    assert res.rendered == {"sh010": 8, "sh020": 7} and res.film_mp4 is None
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["sh010", "sh020"]
    first = iio.imread(out / "sh010" / "sh010.1001.png")
    res = _render(film_dir, out)  # the edit, later, from the same frames
    assert res.rendered == {"sh010": 0, "sh020": 0} and res.kept == {"sh010": 8, "sh020": 7}
    write_editorial(res.film, out, log=lambda *_: None)  # the hand-off's step, as `splatfilm render` runs it
    assert probe_frames(out / "tiny.mp4")[0] == 6 + 5 and (out / "tiny.otio").exists()
    assert np.array_equal(iio.imread(out / "sh010" / "sh010.1001.png"), first)


def test_a_distorting_lens_renders_through_its_model(film_dir):
    def frame(lens):
        def edit(d):
            d.update(resolution=[96, 54], lens=lens)
            d["shots"][0].update(camera={"position": [0, -1.3, 1.0], "look_at": [0, 0, 1.0]}, hide=["hero"])

        _edit(film_dir, edit)
        film = parse_film(film_dir / "film.yaml")
        r = FrameRenderer(film, "cpu")
        return r.render(film.shots[0], 0)[0], r.key(film.shots[0], 0)

    pinhole, key_p = frame({"focal_mm": 14})
    fisheye, key_f = frame({"focal_mm": 14, "model": "fisheye"})
    barrel, key_b = frame({"focal_mm": 14, "model": "opencv", "k1": -0.2})
    assert len({key_p, key_f, key_b}) == 3  # the lens is part of a frame's content key
    red = lambda im: float((im[..., 0] > 0.5).mean())  # noqa: E731  (the wall's share of the frame)
    # Same focal length: an equidistant fisheye and a barrel both squeeze the periphery inwards
    # (measured: the wall covers 62% of the pinhole frame, 47% fisheye, 49% barrel).
    assert 0.3 < red(fisheye) < 0.9 * red(pinhole) and 0.3 < red(barrel) < 0.95 * red(pinhole)


def test_a_fisheye_shot_gets_its_usd_camera_and_a_panorama_its_cut_without_one(film_dir, capsys):
    """A matchmove hand-off delivers a distorting lens's camera: the pinhole of its intrinsics
    plus its distortion (render wrote no SHOT.usda for a fisheye). A panorama still gets none
    (USD has no spherical camera): its cut is made, the log says why, and a camera left from an
    earlier take goes, as it would not match the new frames."""
    pytest.importorskip("pxr")
    from pxr import Usd, UsdGeom

    out = film_dir / "out"
    _edit(film_dir, lambda d: d["shots"][0].update(lens={"focal_mm": 14, "model": "fisheye", "k1": 0.02}))
    _render(film_dir, out)
    stage = Usd.Stage.Open(str(out / "cameras" / "sh010.usda"))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/sh010"))
    assert cam.GetFocalLengthAttr().Get() == pytest.approx(0.14)
    lens = cam.GetPrim().GetCustomDataByKey("splatfilm:lens")
    assert lens["model"] == "fisheye" and list(lens["distCoeffs"]) == pytest.approx([0.02, 0, 0, 0])
    _edit(film_dir, lambda d: d["shots"][0].update(lens={"focal_mm": 14, "model": "equirectangular"}))
    said = []
    capsys.readouterr()
    res = render_film(film_dir / "film.yaml", out, RenderOptions(backend="cpu"), progress=False, log=said.append)
    from splatfilm.handoff.editorial import write_editorial

    assert res.rendered["sh010"] == 8 and res.film_mp4 is not None
    assert write_editorial(res.film, out) is not None
    assert not (out / "cameras" / "sh010.usda").exists() and (out / "cameras" / "sh020.usda").exists()
    noted = capsys.readouterr().err.splitlines()  # a note (splatfilm.report); `log` has the results alone
    assert any(line.startswith("note: sh010: no USD camera") and "no spherical projection" in line for line in noted)
    assert len(said) == 1 and said[0].startswith("wrote ") and ".mp4 (" in said[0], said


def test_ray_renders_the_same_frames(film_dir):
    ray = pytest.importorskip("ray")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        a = _render(film_dir, film_dir / "a")
        b = _render(film_dir, film_dir / "b", ray_address="local")
    finally:
        ray.shutdown()
    assert b.rendered == a.rendered == {"sh010": 8, "sh020": 7}
    for p in sorted((film_dir / "a").glob("sh0*/*.png")):
        assert p.read_bytes() == (film_dir / "b" / p.relative_to(film_dir / "a")).read_bytes()


def test_edits_hold_in_every_shot_and_rerender(film_dir):
    out = film_dir / "out"
    _render(film_dir, out)
    before = (film_dir / "hero.ply").read_bytes()
    # Remove the hero's top half (asset frame, z above 0.3 m): the wall shows where it was.
    _edit(film_dir, lambda d: d["assets"]["hero"].update(edits=[{"op": "delete", "box": {"min": [-1, -1, 0.3],
                                                                                       "max": [1, 1, 2]}}]))
    film = parse_film(film_dir / "film.yaml")
    rgb, _, _ = FrameRenderer(film, "cpu").render(film.shots[0], 0)
    assert rgb[18, 32, 0] > 0.6 and rgb[18, 32, 2] < 0.3
    assert 0 < len(film.world.assets["hero"].gaussians) < 300
    assert (film_dir / "hero.ply").read_bytes() == before  # the captured asset is never rewritten
    res = _render(film_dir, out)
    assert res.rendered == {"sh010": 8, "sh020": 0}  # sh020 hides the hero anyway


def test_on_ground_and_physics_in_a_film_script(film_dir):
    save_gaussians(film_dir / "floor.ply",
                   square_splats([0, 0, 0.25], 4.0, [0.5, 0.5, 0.5], normal_axis=2, spacing=0.08))
    _edit(film_dir, lambda d: d.update(assets={
        "floor": {"file": "floor.ply"},
        "wall": {"file": "wall.ply"},
        "hero": {"file": "hero.ply", "on_ground": "floor", "position": [0.5, -1.0, 3.0],
                 "walk": {"points": [[0.5, -1.0, 9], [-0.5, -1.2, 9]], "speed": 1.0}},
        "box": {"file": "hero.ply", "on_ground": "floor",
                "physics": {"drop_from": [0.0, -0.5, 1.5], "duration": 2.0, "collider": "ground", "shape": "box"}}}))
    film = parse_film(film_dir / "film.yaml")
    hero, box = film.world.assets["hero"], film.world.assets["box"]
    for t in (0.0, 0.5, 2.0):  # the walk's heights snap to the floor (z = 0.25), whatever the script said
        assert hero.world_transform(t).translation[2] == pytest.approx(0.25, abs=0.01)
    centres = box.gaussians.means[box.gaussians.activated_opacities > 0.5].double().numpy()
    lowest = [box.world_transform(t).apply(centres)[:, 2].min() for t in np.linspace(0.0, 2.0, 49)]
    assert lowest[0] > 1.0  # dropped from 1.5 m ...
    assert lowest[-1] == pytest.approx(0.25, abs=0.01)  # ... came to rest on the floor (z = 0.25) ...
    assert min(lowest) > 0.25 - 0.01  # ... and never went through it
    assert list((film_dir / ".splatfilm-cache").glob("physics-*.json"))  # baked: renders replay it


def _capture_cameras(asset: Path) -> None:
    """Four capture cameras recorded beside `asset` (ASSET.cameras.json, as fit writes), from
    in front of the wall (y = 0), so `clean` may count against them."""
    from splatfilm.assets.meshing import look_at_viewmat
    from splatfilm.io.asset_files import capture_cameras_path
    from splatfilm.io.camera_files import write_transforms_json
    from splatfilm.scene.cameras import Cameras

    eyes = [(-0.6, -3, 1.3), (0.6, -3, 1.3), (-0.6, -3, 0.7), (0.6, -3, 0.7)]
    views = np.stack([look_at_viewmat(np.array(e, float), np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]))
                      for e in eyes])
    write_transforms_json(capture_cameras_path(asset), Cameras(views, np.array([[43.0, 0, 24], [0, 43.0, 24],
                                                                                [0, 0, 1]]), 48, 48))


def _with_a_dropped_box(film_dir: Path) -> None:
    """The tiny film with a floor and a box dropped onto it under physics."""
    save_gaussians(film_dir / "floor.ply",
                   square_splats([0, 0, 0.25], 4.0, [0.5, 0.5, 0.5], normal_axis=2, spacing=0.08))
    _edit(film_dir, lambda d: d["assets"].update(
        floor={"file": "floor.ply"},
        box={"file": "hero.ply", "on_ground": "floor",
             "physics": {"drop_from": [0.0, -0.5, 1.5], "duration": 1.0, "collider": "ground", "shape": "box"}}))


def _slow_work_forbidden(film_dir, monkeypatch, before: str) -> None:
    """The film with a dropped box (a bake: meshing and simulating, a minute cold) and a
    cleaned wall (its capture's views rendered, half a minute for the bundled set), each of
    which fails the test if it runs: `before` says what should have come first."""
    from splatfilm.assets import cleanup
    from splatfilm.film import physics

    _with_a_dropped_box(film_dir)
    _capture_cameras(film_dir / "wall.ply")
    _edit(film_dir, lambda d: d["assets"]["wall"].update(clean=True))

    def bake(*args, **kwargs):
        raise AssertionError(f"baked before {before}")

    def clean(*args, **kwargs):
        raise AssertionError(f"cleaned before {before}")

    monkeypatch.setattr(physics, "physics_motions", bake)
    monkeypatch.setattr(cleanup, "supported", clean)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["shots"][0]["camera"].update(look_at="ghost"), "shots[0].camera.look_at: unknown point name 'ghost'"),
    (lambda d: d["shots"][1].update(hide=["vase"]), "shots[1].hide[0]: unknown asset 'vase'"),
    (lambda d: d["shots"][1].update(lens="wide"), "shots[1].lens:"),
    (lambda d: d["shots"][1].update(name="sh010"), "shots[1].name: another shot is already called 'sh010'"),
    (lambda d: d["shots"][1].update(resolution=[32, 18]), "shots[1].resolution: shots of one film share"),
    (lambda d: d["shots"][1].update(duraton=2), "shots[1].duraton: unknown field"),
    (lambda d: d.update(title="sh020"), "title: 'sh020' is also a shot's name"),
    (lambda d: d.update(points={"box": [0, 0, 1]}), "points.box: has the name of an asset"),
], ids=["look_at", "hide", "lens", "duplicate", "resolution", "misspelt", "title", "points"])
def test_a_typo_in_a_shot_is_told_before_any_physics_bakes_or_cleaning(film_dir, monkeypatch, change, message):
    """A bake meshes the set and simulates (a minute cold), an asset's `clean` renders its
    capture's views (half a minute for the bundled set): the shots are checked first."""
    _slow_work_forbidden(film_dir, monkeypatch, "the shots were checked")
    _edit(film_dir, change)
    with pytest.raises(SplatfilmError) as e:
        parse_film(film_dir / "film.yaml")
    assert str(e.value).startswith(f"{film_dir / 'film.yaml'}: {message}"), str(e.value)


@pytest.mark.parametrize("command, message", [
    (["render", "{film}", "-o", "{out}", "--shots", "sh010,sh999"], "film.yaml: no shot called 'sh999' (shots: sh010"),
    (["render", "{film}", "-o", "{out}", "--refine", "{out}/no_refiner"], "no_refiner: refiner not found"),
    (["render", "{film}", "-o", "{out}", "--refine", "{film_dir}/broken_refiner"], "broken_refiner"),
    (["path", "preview", "{film}", "--shot", "sh999", "-o", "{out}/pv.png"], "film.yaml: no shot called 'sh999'"),
    (["path", "preview", "{film}", "-o", "{out}/pv.png"], "film.yaml: has 2 shots; name one with --shot (sh010, sh020)"),
], ids=["render --shots", "render --refine", "render --refine, broken", "path preview --shot",
        "path preview, no --shot"])
def test_a_wrong_shot_name_or_refiner_is_told_before_any_physics_bakes_or_cleaning(film_dir, monkeypatch, capsys,
                                                                                 command, message):
    """`render --shots` and `path preview --shot` named a shot the film lacks, and `render
    --refine` a folder holding no refiner, only after the film's assets were cleaned and its
    bodies baked (18.6 s and 17.7 s on a cold cache for a script with `clean: true`, and
    another ~40 s for the demo's mesh collider). They are told first now."""
    _slow_work_forbidden(film_dir, monkeypatch, "the check")
    broken = film_dir / "broken_refiner"  # a refiner.json that is not one
    broken.mkdir()
    (broken / "refiner.json").write_text("{not json")
    args = [a.format(film=film_dir / "film.yaml", out=film_dir / "out", film_dir=film_dir) for a in command]
    assert message in cli_error(capsys, args)


def test_a_shot_aimed_at_a_body_bakes_it_once_and_follows_it(film_dir, monkeypatch):
    from splatfilm.film import physics
    from splatfilm.film.physics import BakedMotion

    _with_a_dropped_box(film_dir)
    _edit(film_dir, lambda d: d["shots"][1].update(move={"type": "look_at", "target": "box"}))
    bakes = []
    real = physics.physics_motions
    monkeypatch.setattr(physics, "physics_motions", lambda *a, **k: bakes.extend(b[1].name for b in a[0]) or real(*a, **k))
    film = parse_film(film_dir / "film.yaml")
    assert bakes == ["box"]  # baked for sh020's aim, not again once the shots were read
    box = film.world.assets["box"]
    assert isinstance(box.motion, BakedMotion)
    shot = film.shots[1]
    cams = shot.shot.cameras()
    aims = []
    for k in (0, shot.shot.frame_count - 1):  # each frame looks at where the falling box is then
        aim = box.target(shot.world_start + k / 24)
        centre = -cams.viewmats[k, :3, :3].T @ cams.viewmats[k, :3, 3]
        forward = cams.viewmats[k, 2, :3]  # the camera's +z (OpenCV) in the world
        assert np.allclose(forward, (aim - centre) / np.linalg.norm(aim - centre), atol=1e-6)
        aims.append(aim)
    assert aims[1][2] < aims[0][2] - 0.3

    # A bake that fails while a shot aims at the body says what the bake said, where its field is.
    def fail(*args, **kwargs):
        raise SplatfilmError("simulating needs pybullet")

    monkeypatch.setattr(physics, "physics_motions", fail)
    with pytest.raises(SplatfilmError) as e:
        parse_film(film_dir / "film.yaml")
    assert str(e.value) == f"{film_dir / 'film.yaml'}: assets.box.physics: simulating needs pybullet"


def test_an_output_folder_that_is_a_file_is_told_before_cleaning_or_baking(film_dir, monkeypatch, capsys):
    from splatfilm.cli import main

    _slow_work_forbidden(film_dir, monkeypatch, "the output folder was checked")
    (film_dir / "out").write_text("")
    assert main(["render", str(film_dir / "film.yaml"), "-o", str(film_dir / "out"), "--backend", "cpu"]) == 2
    assert capsys.readouterr().err == f"error: {film_dir / 'out'}: cannot write: it is a file, not a folder\n"


def test_a_cleaned_set_is_cleaned_once_before_what_reads_it(film_dir, monkeypatch):
    """Cleaning waits for the shots, yet whatever reads the set's Gaussians sees them cleaned
    and then edited, as when cleaning came first: a bake that a shot aimed at the box asks for
    while the shots are read, and the contact shadows lying on the set."""
    from splatfilm.assets import cleanup
    from splatfilm.assets.ground import GroundPlane, write_ground
    from splatfilm.film import physics

    _with_a_dropped_box(film_dir)
    _capture_cameras(film_dir / "floor.ply")
    write_ground(film_dir / "floor.ply", GroundPlane(np.array([0.0, 0.0, 1.0]), -0.25))  # none estimated

    def change(d):
        floor = {**d["assets"].pop("floor"), "clean": True,
                 "edits": [{"op": "delete", "box": {"center": [-1.5, 0, 0.25], "size": [1.0, 4.2, 0.2]}}]}
        d["assets"] = {"floor": floor, **d["assets"]}
        d["assets"]["hero"].update(on_ground="floor", position=[1.0, -1.0, 0])
        d["shots"][1].update(move={"type": "look_at", "target": "box"})

    _edit(film_dir, change)
    counted, baked_against = [], []

    def supported(gaussians, cameras, settings=None, backend="auto", progress=False, rasterize_mode="classic"):
        counted.append(len(gaussians))
        return gaussians.means[:, 0] < 1.5  # a strip at x > 1.5 "no view supports"

    real = physics.physics_motions
    monkeypatch.setattr(cleanup, "supported", supported)
    monkeypatch.setattr(physics, "physics_motions", lambda *a, **k: baked_against.extend(len(b[2].gaussians) for b in a[0])
                        or real(*a, **k))
    film = parse_film(film_dir / "film.yaml")
    floor = film.world.assets["floor"].gaussians
    means = floor.means.numpy()
    assert counted == [51 * 51]  # counted once, on the floor as loaded
    assert means[:, 0].max() < 1.5 and means[:, 0].min() > -1.0 + 0.01  # cleaned, then edited
    assert len(floor) == int(((means[:, 0] > -1.0) & (means[:, 0] < 1.5)).sum()) and len(floor) < 51 * 40
    assert baked_against == [len(floor)]  # simulated on the set as the film shows it
    for name in ("hero", "box"):  # the shadows lie on it too
        assert len(film.world.assets[name].shadow.surface) == len(floor)


def test_a_frame_samples_its_camera_path_once(film_dir, monkeypatch):
    from splatfilm.shots.shot import Shot

    _edit(film_dir, lambda d: d.update(effects={"motion_blur": {"shutter_deg": 180, "samples": 3}}))
    film = parse_film(film_dir / "film.yaml")
    calls = []
    sample = Shot.sample
    monkeypatch.setattr(Shot, "sample", lambda self, times=None: calls.append(len(times)) or sample(self, times))
    renderer = FrameRenderer(film, "cpu")
    fs = film.shots[0]
    key = renderer.key(fs, 2)
    renderer.render(fs, 2)
    assert renderer.key(fs, 2) == key and calls == [3]  # key and render share the shutter's three cameras
    renderer.camera(fs, 2)
    renderer.camera(fs, 2)
    assert calls == [3, 1]  # the frame's own time, for the refine gate: once too


def test_a_shots_usd_camera_has_the_films_shutter(film_dir):
    # cameras/SHOT.usda had no shutter with motion blur on (export-usd's stage had it).
    from pxr import Usd, UsdGeom

    _edit(film_dir, lambda d: d.update(handles=0, effects={"motion_blur": {"shutter_deg": 172.8, "samples": 2}})
          or d["shots"][0].update(frames=2))
    out = film_dir / "out"
    _render(film_dir, out, shots=["sh010"])
    stage = Usd.Stage.Open(str(out / "cameras" / "sh010.usda"))
    cam = UsdGeom.Camera(next(p for p in stage.Traverse() if p.IsA(UsdGeom.Camera)))
    assert (cam.GetShutterOpenAttr().Get(), cam.GetShutterCloseAttr().Get()) == pytest.approx((-0.24, 0.24))


def test_ray_address_without_a_cluster_is_a_one_line_error_before_any_work(film_dir, capsys):
    pytest.importorskip("ray")
    from splatfilm.cli import main

    out = film_dir / "out"
    code = main(["render", str(film_dir / "film.yaml"), "-o", str(out), "--backend", "cpu", "--ray", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --ray 127.0.0.1:1: no Ray cluster there (") and err.count("\n") == 1
    assert not out.exists()  # checked before anything was rendered


def test_film_cameras_for_asset_are_in_the_assets_own_frame(film_dir, capsys):
    from splatfilm.cli import main
    from splatfilm.film.asset_cameras import film_cameras_for_asset

    film = parse_film(film_dir / "film.yaml")
    cams = film_cameras_for_asset(film, film_dir / "hero.ply")
    assert len(cams) == 8  # sh010's frames, handles included: sh020 hides the hero
    world = film.shots[0].shot.cameras().to_c2w_opencv()[:, :3, 3]
    # The hero stands at [0, -1, 0.5] without turning or scaling: its frame is the world's, shifted.
    np.testing.assert_allclose(cams.to_c2w_opencv()[:, :3, 3], world - [0, -1.0, 0.5], atol=1e-9)
    with pytest.raises(SplatfilmError, match="no asset of this film is"):
        film_cameras_for_asset(film, film_dir / "film.yaml")
    # `refine --shots` resolves the film's cameras first: a wrong scene fails before the capture is read.
    code = main(["refine", str(film_dir / "film.yaml"), str(film_dir / "no-capture"), "--shots",
                 str(film_dir / "film.yaml"), "-o", str(film_dir / "r.ply")])
    assert code == 2 and "no asset of this film is" in capsys.readouterr().err


def test_frame_keys_do_not_depend_on_where_the_film_is(film_dir, tmp_path_factory):
    import shutil

    _edit(film_dir, lambda d: d["assets"]["hero"].update(edits=[{"op": "delete", "box": {"min": [-1, -1, 0.3],
                                                                                       "max": [1, 1, 2]}}]))
    moved = tmp_path_factory.mktemp("moved") / "project"
    shutil.copytree(film_dir, moved)
    keys = []
    for folder in (film_dir, moved):
        film = parse_film(folder / "film.yaml")
        keys.append(FrameRenderer(film, "cpu").key(film.shots[0], 0))
    assert keys[0] == keys[1]


def test_handles_are_extra_frames_around_the_cut_in_world_time(film_dir):
    film = parse_film(film_dir / "film.yaml")
    a, b = film.shots
    assert a.shot.frame_count == 6 + 2 and b.shot.frame_count == 5 + 2
    # The cut of sh010 covers world time [0, 6/24); sh020's cut follows on at 6/24 s.
    assert a.cut_start == pytest.approx(0.0) and a.cut_end == pytest.approx(6 / 24)
    assert b.cut_start == pytest.approx(6 / 24) and a.world_start == pytest.approx(-1 / 24)
    # The head handle holds the first mark; the first cut frame is the scripted first frame.
    cams = a.shot.cameras()
    np.testing.assert_allclose(cams.viewmats[0], cams.viewmats[1], atol=1e-12)
    unhandled = yaml.safe_load((film_dir / "film.yaml").read_text())
    unhandled["handles"] = 0
    (film_dir / "plain.yaml").write_text(yaml.safe_dump(unhandled, sort_keys=False))
    plain = parse_film(film_dir / "plain.yaml").shots[0].shot.cameras()
    np.testing.assert_allclose(cams.viewmats[1:7], plain.viewmats, atol=1e-12)
    np.testing.assert_allclose(cams.viewmats[7], plain.viewmats[5], atol=1e-12)  # the tail handle holds the last


def test_continuity_notes_name_cuts_that_jump_in_time_while_something_moves(film_dir):
    assert continuity_notes(parse_film(film_dir / "film.yaml")) == []  # follows on, and nothing moves
    _edit(film_dir, lambda d: d["shots"][1].update(time=0.1, hide=[]))
    assert continuity_notes(parse_film(film_dir / "film.yaml")) == []  # a time cut, but nothing moves
    _edit(film_dir, lambda d: d["assets"]["hero"].update(walk={"points": [[0, -1, 0], [1, -1, 0]], "speed": 0.5}))
    notes = continuity_notes(parse_film(film_dir / "film.yaml"))
    assert len(notes) == 1 and "sh020 starts 0.15 s of world time before sh010 ends" in notes[0] and "hero" in notes[0]
    _edit(film_dir, lambda d: d["shots"][1].update(hide=["hero"]))
    assert continuity_notes(parse_film(film_dir / "film.yaml")) == []  # the mover is not in both shots


def test_a_film_includes_shot_files(film_dir):
    data = yaml.safe_load((film_dir / "film.yaml").read_text())
    inline = parse_film(film_dir / "film.yaml").shots[1]
    shot = {k: v for k, v in data["shots"][1].items() if k not in ("hide", "name")}
    (film_dir / "shots").mkdir()
    (film_dir / "shots" / "sh020.yaml").write_text(yaml.safe_dump({"version": 1, **shot}))
    data["shots"][1] = {"include": "shots/sh020.yaml", "hide": ["hero"]}
    (film_dir / "film.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    included = parse_film(film_dir / "film.yaml").shots[1]
    assert included.name == "sh020" and included.visible == inline.visible  # named after its file
    np.testing.assert_allclose(included.shot.cameras().viewmats, inline.shot.cameras().viewmats, atol=1e-12)
    assert included.shot.lens.width == 64  # the film's resolution is the included shot's default
    (film_dir / "shots" / "sh020.yaml").write_text(yaml.safe_dump({**shot, "frames": 0}))
    with pytest.raises(SplatfilmError) as e:
        parse_film(film_dir / "film.yaml")
    assert str(e.value).startswith(f"{film_dir / 'film.yaml'}: shots[1].include: {film_dir / 'shots' / 'sh020.yaml'}: frames")
    data["shots"][1] = {"include": "shots/missing.yaml"}
    (film_dir / "film.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SplatfilmError, match=r"shots\[1\]\.include: .*missing.yaml: no such file"):
        parse_film(film_dir / "film.yaml")


def test_an_included_shot_files_frame_keys_keep_their_place_in_the_cut(film_dir):
    """A shot file's `frame:` keys are its frames alone (cut from 1001): included in a film with
    handles, they keep their place in the cut as its `time:` keys do (a key at frame 1097 beside
    one at 2 s moved 4 frames nearer it with 4 handles: the move retimed, 48 -> 44 frames)."""
    from splatfilm.shots.shot_yaml import load_shot

    (film_dir / "shots").mkdir()
    (film_dir / "shots" / "keys.yaml").write_text(yaml.safe_dump({"fps": 24, "duration": 5, "keyframes": [
        {"time": 0, "position": [0, -4, 1], "look_at": [0, 0, 1]},
        {"time": 2, "position": [1, -3, 1], "look_at": [0, 0, 1]},
        {"frame": 1097, "position": [2, -3, 1.2], "look_at": [0, 0, 1]}]}))
    alone = load_shot(film_dir / "shots" / "keys.yaml", defaults={"resolution": [64, 36]}).cameras().viewmats
    data = yaml.safe_load((film_dir / "film.yaml").read_text())
    data["handles"] = 4
    data["shots"][1] = {"include": "shots/keys.yaml"}
    (film_dir / "film.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    included = parse_film(film_dir / "film.yaml").shots[1]
    assert included.cut_in == 1005 and included.shot.first_frame == 1001
    # The cut's frames are the shot alone's, each on the file 4 frames later.
    np.testing.assert_allclose(included.shot.cameras().viewmats[4:-4], alone, atol=1e-9)


def test_the_reference_names_every_field_a_film_script_takes():
    """docs/film-script.md is the reference "every field" is in: an asset's `rasterize_mode`
    was taken by the code and never named there. Top-level fields are rows of its table, asset
    and performance fields keys of its examples."""
    from splatfilm.film.performance import PERFORMANCE_FIELDS
    from splatfilm.film.script import _ASSET, _TOP

    doc = (Path(__file__).parents[2] / "docs" / "film-script.md").read_text()
    assert [f for f in sorted(_TOP) if f"| `{f}` |" not in doc] == []
    assert [f for f in sorted(_ASSET | PERFORMANCE_FIELDS) if f"{f}:" not in doc] == []


def test_contact_sheet_shows_a_frame_a_second_of_each_cut():
    from splatfilm.shots.preview import contact_sheet_picks

    # what write_contact_sheet shows of a cut at 24 fps: one a second, at most 8
    assert contact_sheet_picks(60, 24, most=8) == [0, 24, 48, 59]  # 2.5 s: 0, 1, 2 s and the last
    assert contact_sheet_picks(1, 24, most=8) == [0]
    long = contact_sheet_picks(240, 24, most=8)  # 10 s: spread over at most 8
    assert len(long) == 8 and long[0] == 0 and long[-1] == 239


def test_path_preview_of_a_film_shot_shows_its_world(film_dir, capsys):
    from splatfilm.cli import main

    out, sheet = film_dir / "pv.png", film_dir / "sheet.png"
    assert main(["path", "preview", str(film_dir / "film.yaml"), "--shot", "sh010", "-o", str(out),
                 "--contact-sheet", str(sheet), "--every", "2", "--thumb-width", "64"]) == 0
    assert "contact sheet of 4 frames (1002..1007)" in capsys.readouterr().out  # the cut 1002-1007: every 2nd + last
    thumbs = iio.imread(sheet)
    assert thumbs.shape[1] == 4 * (64 + 6) + 6
    # The hero (blue) stands in sh010's world: the sheet shows blue where the shot file alone would not.
    rgb = thumbs[..., :3].astype(int)
    assert np.sum((rgb[..., 2] > 120) & (rgb[..., 0] < 80)) > 20
    assert iio.imread(out).std() > 10
    assert main(["path", "preview", str(film_dir / "film.yaml"), "-o", str(out)]) == 2
    assert "has 2 shots; name one with --shot (sh010, sh020)" in capsys.readouterr().err
    assert main(["path", "preview", str(film_dir / "film.yaml"), "--shot", "sh999", "-o", str(out)]) == 2
    assert "no shot called 'sh999'" in capsys.readouterr().err
    assert main(["path", "preview", str(film_dir / "film.yaml"), str(film_dir / "wall.ply"), "--shot", "sh010",
                 "-o", str(out)]) == 2
    assert "a film script brings its own world" in capsys.readouterr().err


def test_previs_contact_sheet_thumbnails_shrink_in_linear_light(film_dir, monkeypatch):
    """A frame of fine black and white detail thumbnails to the grey of its light (188
    encoded), as the render's contact sheet shows it, not the 128 of averaged encoded values."""
    from splatfilm.film import previs

    film = parse_film(film_dir / "film.yaml")
    checker = (np.indices((film.height, film.width)).sum(axis=0) % 2).astype(np.float64)
    monkeypatch.setattr(previs.FrameRenderer, "render", lambda self, fs, i: (np.repeat(checker[..., None], 3, -1),
                                                                              None, None))
    shown = []
    monkeypatch.setattr("splatfilm.shots.preview.tile_images", lambda thumbs, labels, output: shown.extend(thumbs))
    previs.render_film_contact_sheet(film, film.shots[0], film_dir / "sheet.png", every=2,
                                     thumb_width=film.width // 4, backend="cpu")
    assert shown and all(abs(int(t[1, 1, 0]) - 188) <= 1 for t in shown), [t[1, 1] for t in shown]


def test_previs_prints_the_films_warnings_as_render_does(film_dir, capsys):
    """A cut that jumps in world time while the hero walks: `render` warned of it, but
    `path preview` and `view`, where the film is planned, said nothing."""
    from splatfilm.cli import main
    from splatfilm.view.session import open_session

    _edit(film_dir, lambda d: (d["shots"][1].update(time=0.1, hide=[]),
                               d["assets"]["hero"].update(walk={"points": [[0, -1, 0], [1, -1, 0]], "speed": 0.5})))
    script = film_dir / "film.yaml"
    assert main(["path", "preview", str(script), "--shot", "sh020", "-o", str(film_dir / "pv.png")]) == 0
    out, err = capsys.readouterr()  # notes on stderr (splatfilm.report), the result alone on stdout
    warned = [line for line in err.splitlines() if line.startswith("note: ")]
    assert len(warned) == 1 and "sh020 starts 0.15 s of world time before sh010 ends" in warned[0], err
    assert "world time" not in out and out.startswith("wrote the path preview of sh020"), out
    render_film(script, film_dir / "out", RenderOptions(backend="cpu", shots=["sh010"], frames_only=True),
                progress=False)
    logged = capsys.readouterr().err.splitlines()
    assert [line for line in logged if line.startswith("note: ")] == warned  # word for word as render says it
    assert [f"note: {note}" for note in open_session(script).notes] == warned


def test_objects_on_the_ground_cast_a_soft_contact_shadow(tmp_path):
    save_gaussians(tmp_path / "floor.ply", square_splats([0, 0, 0.0], 3.0, [0.8, 0.8, 0.8], normal_axis=2))
    save_gaussians(tmp_path / "prop.ply", blob_splats([0.1, 0.2, 0.9]))
    (tmp_path / "prop.json").write_text(json.dumps({"kind": "object", "canonical_transform": {
        "rotation": np.eye(3).tolist(), "translation": [0, 0, 0], "scale": 1.0}}))
    script = {"resolution": [64, 48], "assets": {"floor": {"file": "floor.ply"},
                                                  "prop": {"file": "prop.ply", "on_ground": "floor"}},
              "shots": [{"frames": 1, "lens": {"fov_deg": 60},
                         "camera": {"position": [0, -2.0, 2.5], "look_at": [0, 0, 0]}}]}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
    film = parse_film(tmp_path / "film.yaml")
    assert film.world.assets["floor"].shadow is None  # a scene casts none
    shadow = film.world.assets["prop"].shadow
    assert shadow is not None and 0.05 < shadow.radius < 0.3  # from the prop's footprint
    lit = FrameRenderer(film, "cpu").render(film.shots[0], 0)[0]
    script["assets"]["prop"]["shadow"] = False
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
    film = parse_film(tmp_path / "film.yaml")
    assert film.world.assets["prop"].shadow is None
    plain = FrameRenderer(film, "cpu").render(film.shots[0], 0)[0]
    darker = plain.mean(axis=-1) - lit.mean(axis=-1)
    assert darker.max() > 0.08 and darker.min() > -1e-6  # the floor darkens around the foot, nothing brightens
    ys, xs = np.nonzero(darker > 0.05)
    assert abs(xs.mean() - 32) < 6  # around the prop's foot, in the middle of the frame
    # A high prop casts none: the shadow fades with the height of its base above the ground.
    assert shadow.gaussians(np.array([0.0, 0.0, 3 * shadow.radius + 0.01])) is None
    # Landed upside down, its base (canonical origin) on top: the part on the floor counts.
    from splatfilm.film.shadow import lowest_point

    resting = shadow.gaussians(np.array([0.0, 0.0, 0.3]), lowest=0.0)
    on_base = shadow.gaussians(np.array([0.0, 0.0, 0.0]))
    assert resting is not None and torch.allclose(resting.opacities, on_base.opacities)
    blob = blob_splats([0.1, 0.2, 0.9])
    assert abs(lowest_point(blob, shadow) - float(np.percentile(blob.means[:, 2].numpy(), 1))) < 1e-6
    # Asked for without on_ground (a cup keyed onto a table prop keeps its z): on the first asset's ground.
    script["assets"]["prop"]["shadow"] = {"opacity": 0.4}
    script["assets"]["prop"].pop("on_ground")
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
    unplaced = parse_film(tmp_path / "film.yaml").world.assets["prop"].shadow
    assert unplaced is not None and unplaced.opacity == 0.4
    assert np.allclose(unplaced.plane.normal, shadow.plane.normal) and unplaced.plane.offset == shadow.plane.offset
    script["assets"]["floor"]["shadow"] = True  # the first asset: no set before it
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
    with pytest.raises(SplatfilmError, match=r"assets.floor.shadow: a contact shadow lies on a ground plane"):
        parse_film(tmp_path / "film.yaml")


def test_a_contact_shadow_lies_on_the_raised_surface_the_prop_rests_on(tmp_path):
    # A floor with a platform 0.4 m high on it, and a post (a column of splats, not a surface)
    # beside the floor spot: a prop on the platform gets its shadow on the platform, not on the
    # floor 0.4 m below (where it faded to nothing: no shadow at all).
    from splatfilm.film.shadow import ContactShadow
    from splatfilm.scene.transforms import Similarity

    post = square_splats([1.6, 0.0, 0.2], 0.4, [0.3, 0.3, 0.3], normal_axis=0, spacing=0.01)
    post = post.select(torch.nonzero(post.means[:, 1].abs() < 0.025).reshape(-1))
    floor = Gaussians.concat([square_splats([0, 0, 0.0], 4.0, [0.8, 0.8, 0.8], normal_axis=2, spacing=0.08),
                              square_splats([0, 0, 0.4], 0.6, [0.5, 0.5, 0.5], normal_axis=2), post])
    save_gaussians(tmp_path / "floor.ply", floor)
    save_gaussians(tmp_path / "prop.ply", blob_splats([0.1, 0.2, 0.9]))
    (tmp_path / "prop.json").write_text(json.dumps({"kind": "object", "canonical_transform": {
        "rotation": np.eye(3).tolist(), "translation": [0, 0, 0], "scale": 1.0}}))
    script = {"resolution": [64, 48], "assets": {"floor": {"file": "floor.ply"},
                                                  "prop": {"file": "prop.ply", "on_ground": "floor"}},
              "shots": [{"frames": 1, "camera": {"position": [0, -2.0, 2.5], "look_at": [0, 0, 0]}}]}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
    world = parse_film(tmp_path / "film.yaml").world
    prop = world.assets["prop"]
    prop.placement = Similarity(translation=np.array([0.0, 0.0, 0.4]))  # standing on the platform
    patch = dict(world.parts(0.0)).get("prop.shadow")
    assert patch is not None and np.allclose(patch.means[:, 2].numpy(), 0.41, atol=0.01)
    assert float(patch.activated_opacities.max()) > 0.2  # in contact: as dark as on the floor
    assert abs(world.shadow_surface("prop", 0.0) - 0.4) < 0.01
    surface, plain = prop.shadow, ContactShadow(prop.shadow.plane, prop.shadow.radius, prop.shadow.opacity)
    on_platform = world.signature(0.0)
    prop.shadow = plain
    assert world.signature(0.0) != on_platform  # the frame's key knows the surface its shadow lies on
    # On the floor beside the platform, and hopping past the post: the ground plane, bit for bit
    # the patch of a shadow that knows no set surface, and the frame's key as it was.
    for spot in ([1.0, 0.0, 0.0], [1.5, 0.0, 0.1]):
        prop.placement = Similarity(translation=np.array(spot))
        prop.shadow = plain
        expected, key = world.shadow_patch("prop", 0.0), world.signature(0.0)
        prop.shadow = surface
        assert world.shadow_surface("prop", 0.0) == 0.0
        assert torch.equal(world.shadow_patch("prop", 0.0).means, expected.means) and world.signature(0.0) == key


def platform_triangles(top: float, half: float = 0.3) -> np.ndarray:
    """A box's top face at height `top`, |x|, |y| <= half, as triangles [2,3,3], and the floor
    round it (z = 0.003: a mesh's floor lies within millimetres of the ground plane)."""
    h, f = half, 2.0
    quad = lambda z, r: np.array([[[-r, -r, z], [r, -r, z], [r, r, z]], [[-r, -r, z], [r, r, z], [-r, r, z]]])  # noqa: E731
    return np.concatenate([quad(top, h), quad(0.003, f)])


def test_a_simulated_bodys_shadow_lies_on_the_mesh_it_rests_on():
    # A platform whose top the set's centres do not show (three stray centres: the demo set's
    # table top where the vase was cut out, or between its few large splats) but the collider's
    # mesh does, 0.4 m up. A body resting on it had its shadow on the floor, faded to nothing.
    from splatfilm.assets.ground import GroundPlane
    from splatfilm.film.shadow import ContactShadow, contact_points, lowest_point
    from splatfilm.film.world import Asset, World
    from splatfilm.scene.transforms import Similarity, euler_xyz_rotation

    floor = np.c_[np.random.default_rng(0).uniform(-1, 1, (400, 2)), np.zeros(400)]
    centres = np.r_[floor, [[0.0, 0.0, 0.42], [0.05, 0.0, 0.42], [0.0, 0.05, 0.42]]]
    plane = GroundPlane(np.array([0.0, 0.0, 1.0]), 0.0)
    mesh = platform_triangles(0.4)
    shadow = ContactShadow(plane, 0.08, surface=centres, mesh=mesh)
    body = Gaussians.from_activated(*(torch.tensor(a, dtype=torch.float32) for a in (
        np.c_[np.random.default_rng(1).uniform(-0.1, 0.1, (500, 2)), np.random.default_rng(2).uniform(0, 0.2, 500)],
        np.tile([1.0, 0, 0, 0], (500, 1)), np.full((500, 3), 0.01), np.full(500, 0.9))), colors=torch.full((500, 3), 0.5))
    world = World({"crate": Asset("crate", body, placement=Similarity(translation=np.array([0.0, 0.0, 0.4])),
                                  shadow=shadow)})
    assert world.shadow_surface("crate", 0.0) == pytest.approx(0.4, abs=1e-9)  # the mesh's, not the centres' 0
    patch = world.shadow_patch("crate", 0.0)
    assert patch is not None and np.allclose(patch.means[:, 2].numpy(), 0.41, atol=1e-4)
    assert float(patch.activated_opacities.max()) > 0.2  # in contact: as dark as on the floor
    # Without the mesh the centres show no surface there: the floor, where it fades to nothing.
    world.assets["crate"].shadow = ContactShadow(plane, 0.08, surface=centres)
    assert world.shadow_surface("crate", 0.0) == 0.0 and world.shadow_patch("crate", 0.0) is None
    world.assets["crate"].shadow = shadow
    # Come to rest on its side near the platform's edge, its base (canonical origin) over the
    # floor past the edge: the surface under its lowest part holds it up, not the floor under
    # its base.
    tipped = Similarity(euler_xyz_rotation(np.array([0.0, -90.0, 0.0])), np.array([0.32, 0.0, 0.5]))
    world.assets["crate"].placement = tipped
    placed = world.placed("crate", 0.0)
    low = lowest_point(placed, shadow)
    assert low == pytest.approx(0.4, abs=0.01)
    assert shadow.surface_height(tipped.translation, low) == 0.0  # under its base: the floor
    assert world.shadow_surface("crate", 0.0) == pytest.approx(0.4, abs=1e-9)
    under = contact_points(placed, shadow, low)
    assert 0 < len(under) <= 64 and np.all(under[:, 2] <= low + 0.01 + 1e-6)
    # Falling past a higher ledge beside it: only what lies below the body counts.
    shadow = ContactShadow(plane, 0.08, mesh=np.concatenate([mesh, platform_triangles(0.7, 0.6)[:2]]))
    assert shadow.surface_height(np.array([0.0, 0.0, 0.45]), 0.45) == pytest.approx(0.4)
    assert shadow.surface_height(np.array([0.0, 0.0, 0.75]), 0.75) == pytest.approx(0.7)


def test_a_tipped_bodys_shadow_lies_under_where_it_touches_not_under_its_base():
    # A 20 cm crate (its base, the canonical origin, the middle of its bottom face) come to rest
    # on its side: its base is at the middle of an edge of the face it lies on, 10 cm off its
    # middle, where the patch lay, half of it on bare floor. It lies under the middle of that face.
    from splatfilm.assets.ground import GroundPlane
    from splatfilm.film.shadow import ContactShadow, contact_points, lowest_point
    from splatfilm.film.world import Asset, World
    from splatfilm.scene.transforms import Similarity, euler_xyz_rotation, yaw_rotation

    def crate(shift: float = 0.0) -> Gaussians:
        rng = np.random.default_rng(3)
        pts = np.c_[rng.uniform(-0.1, 0.1, (2000, 2)), rng.uniform(0, 0.2, 2000)] + [shift, 0.0, 0.0]
        return Gaussians.from_activated(*(torch.tensor(a, dtype=torch.float32) for a in (
            pts, np.tile([1.0, 0, 0, 0], (2000, 1)), np.full((2000, 3), 0.01), np.full(2000, 0.9))),
            colors=torch.full((2000, 3), 0.5))

    floor = np.c_[np.random.default_rng(0).uniform(-1, 1, (400, 2)), np.zeros(400)]
    plane = GroundPlane(np.array([0.0, 0.0, 1.0]), 0.0)
    on_side = Similarity(euler_xyz_rotation(np.array([0.0, -90.0, 0.0])), np.array([0.3, 0.2, 0.1]))
    for mesh in (None, platform_triangles(0.4)[2:]):  # on the set's centres, and on a collider's mesh (its floor)
        world = World({"crate": Asset("crate", crate(), placement=on_side,
                                      shadow=ContactShadow(plane, 0.07, surface=floor, mesh=mesh))})
        assert world.tipped("crate", 0.0)
        placed = world.placed("crate", 0.0).means.double().numpy()
        touching = placed[placed[:, 2] < placed[:, 2].min() + 0.01]
        middle = on_side.apply(np.array([0.0, 0.0, 0.1]))  # over the middle of the face it lies on
        assert np.abs(touching[:, :2].mean(axis=0) - middle[:2]).max() < 0.01
        assert np.linalg.norm(on_side.translation[:2] - middle[:2]) == pytest.approx(0.1)
        patch = world.shadow_patch("crate", 0.0)
        assert patch is not None and float(patch.activated_opacities.max()) > 0.2
        assert np.linalg.norm(patch.means.double().numpy()[:, :2].mean(axis=0) - middle[:2]) < 0.01  # was 0.1
    # The frame's key knows where the patch lies: the same pose and file, the lowest part 3 cm
    # along (the patch follows it), is another frame; high above the floor, with no patch, it is not.
    key = world.signature(0.0)
    world.assets["crate"].gaussians = crate(0.03)
    assert world.signature(0.0) != key
    world.assets["crate"].placement = Similarity(on_side.rotation, on_side.translation + [0.0, 0.0, 2.0])
    assert world.tipped("crate", 0.0) and world.shadow_patch("crate", 0.0) is None
    high = world.signature(0.0)
    world.assets["crate"].gaussians = crate()
    assert world.signature(0.0) == high
    # Standing upright (turned by a yaw, as a script places a prop), it lies under its base as before.
    upright = Similarity(yaw_rotation(30.0), np.array([0.3, 0.2, 0.0]))
    world.assets["crate"].placement = upright
    assert not world.tipped("crate", 0.0)
    shadow, placed = world.assets["crate"].shadow, world.placed("crate", 0.0)
    low = lowest_point(placed, shadow)
    expected = shadow.gaussians(upright.translation, lowest=low, under=contact_points(placed, shadow, low))
    assert torch.equal(world.shadow_patch("crate", 0.0).means, expected.means)


def test_world_frame_edit_of_a_dropped_prop_is_taken_at_its_drop_pose(film_dir):
    # A simulated body stands at drop_from before its start: a world-frame selection there picks it
    # (it was resolved at the asset's placement on the floor, selected nothing and was skipped).
    save_gaussians(film_dir / "floor.ply",
                   square_splats([0, 0, 0.25], 4.0, [0.5, 0.5, 0.5], normal_axis=2, spacing=0.08))
    _edit(film_dir, lambda d: d.update(assets={
        "floor": {"file": "floor.ply"},
        "wall": {"file": "wall.ply"},
        "hero": {"file": "hero.ply", "on_ground": "floor",
                "physics": {"drop_from": [0.0, -0.5, 1.5], "start": 0.5, "duration": 1.0, "collider": "ground"},
                "edits": [{"op": "delete", "frame": "world", "box": {"min": [-1, -1.5, 1.0], "max": [1, 0.5, 1.5 + 0.35]}}]}}))
    from splatfilm.io.gaussian_files import load_gaussians

    whole = len(load_gaussians(film_dir / "hero.ply"))
    film = parse_film(film_dir / "film.yaml")
    assert 0 < len(film.world.assets["hero"].gaussians) < whole


def test_continuity_notes_leave_out_assets_that_stand_still_across_the_gap(film_dir):
    # A walk that has arrived (2 s at 0.5 m/s) stands still: a time cut after it is no jump.
    _edit(film_dir, lambda d: (d["assets"]["hero"].update(walk={"points": [[0, -1, 0], [1, -1, 0]], "speed": 0.5}),
                               d["shots"][0].update(time=3.0), d["shots"][1].update(time=4.0, hide=[])))
    assert continuity_notes(parse_film(film_dir / "film.yaml")) == []
    _edit(film_dir, lambda d: d["shots"][0].update(time=1.0))  # sh010 sees it still walking: it jumps
    notes = continuity_notes(parse_film(film_dir / "film.yaml"))
    assert len(notes) == 1 and "hero" in notes[0]


def test_depth_of_field_without_an_f_stop_is_a_script_error(film_dir):
    _edit(film_dir, lambda d: (d.update(effects={"depth_of_field": True}),
                               d["shots"][0].update(lens={"focal_mm": 35, "f_stop": 2.8, "focus_distance": 3})))
    with pytest.raises(SplatfilmError) as e:
        parse_film(film_dir / "film.yaml")
    assert str(e.value).startswith(f"{film_dir / 'film.yaml'}: shots[1].lens: effects.depth_of_field needs an f_stop")
    # An f_stop without a focus distance was told only when the shot's first frame rendered.
    _edit(film_dir, lambda d: d["shots"][1].update(lens={"focal_mm": 35, "f_stop": 2.8}))
    with pytest.raises(SplatfilmError) as e:
        parse_film(film_dir / "film.yaml")
    assert str(e.value).startswith(f"{film_dir / 'film.yaml'}: shots[1].lens: effects.depth_of_field needs a "
                                   "focus_distance at every frame")
    _edit(film_dir, lambda d: d["shots"][1].update(lens={"focal_mm": 35, "f_stop": 2.8, "focus_distance": 2}))
    parse_film(film_dir / "film.yaml")


def test_each_asset_renders_in_its_own_rasterize_mode(film_dir):
    """A hero trained antialiased (its sidecar says so) composites with its compensated opacity
    beside a classic wall in one call; the script overrides it per asset; frame keys follow."""
    from splatfilm.render import rasterization

    hero_sidecar = json.loads((film_dir / "hero.json").read_text())
    (film_dir / "hero.json").write_text(json.dumps({**hero_sidecar, "rasterize_mode": "antialiased"}))
    film = parse_film(film_dir / "film.yaml")
    assert film.world.assets["hero"].rasterize_mode == "antialiased"
    assert film.world.assets["wall"].rasterize_mode == "classic"
    fs = film.shots[0]
    renderer = FrameRenderer(film, "cpu")
    rgb = renderer.render(fs, 0)[0]
    # As if each asset were drawn in its own mode, in one call: the hero's Gaussians flagged.
    parts = film.world.parts(fs.world_start + float(fs.shot.times[0]), fs.visible)
    g = Gaussians.concat([p for _, p in parts])
    flags = torch.cat([torch.full((len(p),), n == "hero") for n, p in parts])
    V, K = renderer.sample(fs, 0).cameras[0].to_tensors(g.dtype)
    ref = rasterization(g, V, K, film.width, film.height, backend="cpu", background=film.background,
                        rasterize_mode=flags)
    np.testing.assert_allclose(rgb, ref.rgb[0].double().numpy(), atol=1e-6)

    _edit(film_dir, lambda d: d["assets"]["hero"].update(rasterize_mode="classic"))
    classic = parse_film(film_dir / "film.yaml")
    assert classic.world.assets["hero"].rasterize_mode == "classic"
    c_renderer = FrameRenderer(classic, "cpu")
    rgb_c = c_renderer.render(classic.shots[0], 0)[0]
    assert c_renderer.key(classic.shots[0], 0) != renderer.key(fs, 0)
    # The hero (before an opaque wall) changes; a shot of the wall alone is untouched.
    assert (np.abs(rgb - rgb_c).max(axis=-1) > 1e-3).sum() > 50
    wall_only = FrameRenderer(classic, "cpu").render(classic.shots[1], 0)[0]
    assert np.array_equal(wall_only, FrameRenderer(film, "cpu").render(film.shots[1], 0)[0])
    assert "assets.hero.rasterize_mode: expected classic or antialiased" in _script_error(
        film_dir, lambda d: d["assets"]["hero"].update(rasterize_mode="mip"))


def _script_error(folder: Path, fn) -> str:
    _edit(folder, fn)
    with pytest.raises(SplatfilmError) as e:
        parse_film(folder / "film.yaml")
    return str(e.value)


def _far_asset(folder: Path, name: str, color, offset) -> None:
    """A blob asset `name` in `folder`, fitted centred from a capture far out: its sidecar's
    frame.origin_offset is `offset` (x_capture = x_asset + offset)."""
    save_gaussians(folder / f"{name}.ply", blob_splats(color))
    (folder / f"{name}.json").write_text(json.dumps({"kind": "scene", "frame": {"origin_offset": list(offset)}}))


def test_assets_of_one_georeferenced_site_stand_where_their_captures_put_them(tmp_path, capsys):
    """Two assets fitted centred from two UTM captures of one site (4e6 m out, their centres
    1.2345 m apart) stood on top of each other at the film's origin; they stand side by side
    as their captures have them, to the millimetre, and a shot sees both there."""
    building, street = np.array([4_000_120.0, 512_350.0, 230.0]), np.array([4_000_121.2345, 512_350.0006, 230.0])
    _far_asset(tmp_path, "building", [0.9, 0.1, 0.1], building)
    _far_asset(tmp_path, "street", [0.1, 0.9, 0.1], street)
    save_gaussians(tmp_path / "prop.ply", blob_splats([0.1, 0.1, 0.9]))  # no offset: placed as ever
    script = {"title": "site", "resolution": [64, 36],
              "assets": {"building": {"file": "building.ply"}, "street": {"file": "street.ply"},
                         "prop": {"file": "prop.ply", "position": [0.6, -1.0, 0.0]}},
              "shots": [{"name": "sh010", "frames": 1, "assets": ["building", "street"],
                         "camera": {"position": [0.6, -4.0, 0.35], "look_at": [0.6, 0.0, 0.35]}}]}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    film = parse_film(tmp_path / "film.yaml")
    world = film.world
    own = blob_splats([0, 0, 0]).means.double().numpy()
    # The film world is the captures' world less the first such asset's offset: each placed
    # Gaussian plus that anchor is where its capture has it (float64 sums).
    for name, offset in (("building", building), ("street", street)):
        placed = world.placed(name, 0.0).means.double().numpy()
        assert np.abs(placed + building - (own + offset)).max() < 1e-3, name
    np.testing.assert_array_equal(world.origin_offset, building)
    np.testing.assert_array_equal(world.assets["prop"].world_transform(0.0).matrix()[:3, 3], [0.6, -1.0, 0.0])
    np.testing.assert_allclose(world.assets["street"].target(0.0), street - building, atol=1e-9)  # aimed at its own origin
    assert film.notes == [f"{tmp_path / 'film.yaml'}: building, street stand where their captures put them (their "
                          "sidecars' frame.origin_offset): the film world is their captures' world moved by "
                          "-(4000120, 512350, 230) (building's frame.origin_offset); moved before their own "
                          "placement: street by (1.2345, 0.0006, 0)"]
    # The shot looks at the middle between them: red on the left (x = 0), green on the right (x = 1.2345).
    rgb, _, _ = FrameRenderer(film, "cpu").render(film.shots[0], 0)
    red = (rgb[..., 0] > 0.5) & (rgb[..., 1] < 0.3)
    green = (rgb[..., 1] > 0.5) & (rgb[..., 0] < 0.3)
    assert red.sum() > 10 and green.sum() > 10
    px_per_m = film.shots[0].shot.lens.focal_px / 4.0  # the blobs stand 4 m from the lens
    assert abs(np.nonzero(red)[1].mean() + 0.5 - (32 - 0.6 * px_per_m)) < 1.5
    assert abs(np.nonzero(green)[1].mean() + 0.5 - (32 + (1.2345 - 0.6) * px_per_m)) < 1.5
    capsys.readouterr()
    render_film(tmp_path / "film.yaml", tmp_path / "out", RenderOptions(backend="cpu", frames_only=True),
                progress=False)
    logged = capsys.readouterr().err.splitlines()
    assert logged.count(f"note: {film.notes[0]}") == 1  # said once, as render's other notes are
    # The script's own origin_offset anchors instead (each such asset moves by its offset less
    # it), and an asset with `origin_offset: false` stays centred, as stored.
    script["origin_offset"] = [4_000_120.5, 512_350.0, 229.0]
    _far_asset(tmp_path, "kept", [0.9, 0.9, 0.1], street + [0.0, 5.0, 0.0])
    script["assets"]["kept"] = {"file": "kept.ply", "origin_offset": False}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    world = parse_film(tmp_path / "film.yaml").world
    np.testing.assert_allclose(world.assets["building"].world_transform(0.0).translation, [-0.5, 0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(world.assets["street"].world_transform(0.0).translation, [0.7345, 0.0006, 1.0],
                               atol=1e-9)
    assert world.assets["kept"].world_transform(0.0).is_identity()


def test_a_film_without_offsets_keeps_its_frame_keys(film_dir):
    """The frames of a film whose assets carry no frame.origin_offset keep the content keys they
    had before films placed assets by it (the digest of every frame key, taken then)."""
    from splatfilm.io.digest import content_digest

    film = parse_film(film_dir / "film.yaml")
    renderer = FrameRenderer(film, "cpu")
    keys = [renderer.key(fs, i) for fs in film.shots for i in range(fs.shot.frame_count)]
    assert content_digest(keys) == "5c11c72620ffc9002ccebbef16336b7a0cf087f172b6a9dc52c813f36c623f4a"
    assert film.world.origin_offset is None and film.notes == []


def test_assets_pick_a_usd_prim_and_spz_axes(film_dir):
    """`prim:` reads one splat prim of a multi-prim USD file, `spz_axes:` an .spz file's axes
    (default as stored, as splat-transform 3.x writes them; rub for a file stored in RUB), as
    `import --prim` / `--spz-axes` do; such assets, and every .spz asset (its axes part of its
    key: the default has changed), get their own frame keys, the others keep the file's digest
    (their frames' keys unchanged)."""
    from splatfilm.io.digest import file_digest
    from splatfilm.io.gaussian_files import load_gaussians
    from splatfilm.io.usd_splats import write_splat_prim, write_usd_splats

    pxr = pytest.importorskip("pxr")
    hero = load_gaussians(film_dir / "hero.ply")
    wall = load_gaussians(film_dir / "wall.ply")
    write_usd_splats(film_dir / "both.usda", wall, prim="/Wall")
    stage = pxr.Usd.Stage.Open(str(film_dir / "both.usda"))
    write_splat_prim(pxr.UsdVol.ParticleField3DGaussianSplat.Define(stage, "/Hero"), hero)
    stage.GetRootLayer().Save()
    save_gaussians(film_dir / "hero.spz", hero, spz_axes="ply")  # as stored, whatever the default
    plain = parse_film(film_dir / "film.yaml").world.assets

    _edit(film_dir, lambda d: d["assets"]["hero"].update(file="both.usda", prim="/Hero"))
    film = parse_film(film_dir / "film.yaml")
    assert torch.allclose(film.world.assets["hero"].gaussians.means, hero.means)
    assert film.world.assets["wall"].digest == plain["wall"].digest == file_digest(film_dir / "wall.ply")
    assert film.world.assets["hero"].digest != file_digest(film_dir / "both.usda")

    _edit(film_dir, lambda d: d["assets"]["hero"].update(file="hero.spz", prim=None))
    _edit(film_dir, lambda d: d["assets"]["hero"].pop("prim"))
    stored = parse_film(film_dir / "film.yaml").world.assets["hero"]
    assert (stored.gaussians.means - hero.means).abs().max() <= 2.0**-13 + 1e-6
    assert stored.digest != file_digest(film_dir / "hero.spz")
    _edit(film_dir, lambda d: d["assets"]["hero"].update(spz_axes="ply"))
    assert parse_film(film_dir / "film.yaml").world.assets["hero"].digest == stored.digest
    _edit(film_dir, lambda d: d["assets"]["hero"].update(spz_axes="rub"))
    rub = parse_film(film_dir / "film.yaml").world.assets["hero"]
    assert torch.equal(rub.gaussians.means, stored.gaussians.means * torch.tensor([1.0, -1.0, -1.0]))
    assert rub.digest not in (stored.digest, file_digest(film_dir / "hero.spz"))

    for change, message in ((lambda d: d["assets"]["wall"].update(prim="/Wall"), "assets.wall.prim:"),
                            (lambda d: d["assets"]["wall"].update(spz_axes="rub"), "assets.wall.spz_axes:"),
                            (lambda d: d["assets"]["hero"].update(spz_axes="lhs"), "assets.hero.spz_axes:")):
        before = (film_dir / "film.yaml").read_text()
        _edit(film_dir, change)
        with pytest.raises(SplatfilmError, match=message):
            parse_film(film_dir / "film.yaml")
        (film_dir / "film.yaml").write_text(before)
