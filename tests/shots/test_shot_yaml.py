"""Shot YAML: the five-line shot, frame timing, embedding in a larger file, and errors that
name the file, the field and the problem."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import CAMERAS, cli_error

from splatfilm.errors import SplatfilmError
from splatfilm.shots import Shot, load_shot, parse_shot


FIVE_LINES = """\
fps: 24
duration: 4
lens: 35mm
move: {type: dolly, from: [0, -3.2, 1.3], target: [0, 0, 0.75], distance: 1.5}
"""


def _write(tmp_path: Path, text: str, name: str = "shot.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_five_line_dolly_in(tmp_path):
    shot = load_shot(_write(tmp_path, FIVE_LINES, "dolly_in.yaml"))
    assert isinstance(shot, Shot)
    assert shot.name == "dolly_in" and shot.fps == 24 and shot.frame_count == 96
    assert shot.first_frame == 1001 and shot.last_frame == 1096 and shot.duration == 4
    assert shot.lens.focal_mm == 35 and (shot.lens.width, shot.lens.height) == (1920, 1080)
    cams = shot.cameras()
    assert len(cams) == 96 and cams.names[0] == "dolly_in.1001.png" and cams.names[-1] == "dolly_in.1096.png"
    np.testing.assert_allclose(cams.centers[0], [0, -3.2, 1.3], atol=1e-12)
    np.testing.assert_allclose(cams.centers[-1], [0, -1.7, 1.3], atol=1e-12)  # the move lands on the last frame
    np.testing.assert_allclose(cams.fx, 35 / 36 * 1920)
    # Always aimed at the table: it projects to the image centre.
    table = np.array([0, 0, 0.75, 1.0])
    uv = np.einsum("cij,cj->ci", cams.Ks, np.einsum("cij,j->ci", cams.viewmats, table)[:, :3])
    np.testing.assert_allclose(uv[:, :2] / uv[:, 2:], np.broadcast_to([960, 540], (96, 2)), atol=1e-9)


def test_lens_distortion_is_a_lens_property(tmp_path):
    text = FIVE_LINES.replace("lens: 35mm", "lens: {focal_mm: 24, model: opencv, k1: -0.12, k2: 0.03, p1: 0.001, p2: -0.002}")
    shot = load_shot(_write(tmp_path, text))
    assert shot.lens.model == "opencv" and shot.lens.distortion == (-0.12, 0.03, 0.0, 0.0, 0.001, -0.002)
    cams = shot.cameras()
    assert cams.camera_model == ["OPENCV"] * 96
    np.testing.assert_allclose(cams.distortion, np.tile([-0.12, 0.03, 0, 0, 0.001, -0.002], (96, 1)))
    fish = load_shot(_write(tmp_path, FIVE_LINES.replace("lens: 35mm", "lens: {fov_deg: 150, model: fisheye, k1: 0.02}")))
    assert fish.cameras().camera_model[0] == "OPENCV_FISHEYE" and fish.lens.hfov_deg == pytest.approx(150)
    # Equidistant: the image's half width sits 75 degrees off the axis.
    assert fish.cameras().fx[0] == pytest.approx(960 / np.radians(75))
    pano = load_shot(_write(tmp_path, FIVE_LINES.replace("lens: 35mm", "lens: {model: equirectangular}")))
    cams = pano.cameras()
    assert cams.camera_model[0] == "EQUIRECTANGULAR" and (pano.lens.hfov_deg, pano.lens.vfov_deg) == (360, 180)
    np.testing.assert_allclose([cams.fx[0], cams.fy[0]], [1920 / (2 * np.pi), 1080 / np.pi])


def test_frame_times_are_exact_at_ntsc_rates():
    shot = parse_shot({"fps": "24000/1001", "duration": 4, "camera": {"position": [0, -3, 1], "look_at": [0, 0, 1]},
                       "move": {"type": "pan", "degrees": 10}})
    assert shot.fps == Fraction(24000, 1001) and shot.frame_count == 96
    assert shot.times[95] == float(Fraction(95 * 1001, 24000))
    assert shot.time_of_frame(1049) == float(Fraction(48 * 1001, 24000))


def test_keyframes_by_time_and_frame_and_shot_ends_on_the_last_key():
    shot = parse_shot({"fps": 24, "lens": {"focal_mm": 28}, "points": {"table": [0, 0, 0.8]}, "keyframes": [
        {"time": 0, "position": [2, -2, 1.5], "look_at": "table"},
        {"frame": 1049, "position": [1, -2, 1.2], "look_at": "table", "focal_mm": 50, "ease": 0.5},
        {"time": 3.5, "position": [0, -2, 1.0], "pan": 90, "tilt": -10, "roll": 5},
    ]})
    assert shot.frame_count == 3.5 * 24 + 1  # frames 1001..1085, the last on the last key
    s = shot.sample([0.0, 2.0, 3.5])
    np.testing.assert_allclose(s.positions, [[2, -2, 1.5], [1, -2, 1.2], [0, -2, 1.0]], atol=1e-12)
    assert list(s.focal_mm) == pytest.approx([28, 50, 28])


def test_embedded_in_a_larger_document_with_defaults_and_points():
    film = yaml.safe_load("""
    fps: 25
    resolution: [1280, 720]
    shots:
      - name: sh010
        duration: 2
        camera: {position: [0, -3, 1.2], look_at: table}
        move: {type: crane, height: 0.5}
      - name: sh020
        frame_range: [1001, 1010]
        keyframes: [{time: 0, position: [1, 1, 1], look_at: table}]
    """)
    defaults = {"fps": film["fps"], "resolution": film["resolution"]}
    shots = [parse_shot(s, "film.yaml", f"shots[{i}]", points={"table": [0, 0, 0.75]}, defaults=defaults)
             for i, s in enumerate(film["shots"])]
    assert [s.name for s in shots] == ["sh010", "sh020"]
    assert shots[0].fps == 25 and shots[0].frame_count == 50 and shots[0].lens.width == 1280
    assert shots[1].frame_count == 10
    bad = dict(film["shots"][1], keyframes=[{"time": 0, "position": [1, 1, 1], "look_at": "chair"}])
    with pytest.raises(SplatfilmError, match=r"^film\.yaml: shots\[1\]\.keyframes\[0\]\.look_at: unknown point name"):
        parse_shot(bad, "film.yaml", "shots[1]", points={"table": [0, 0, 0.75]})


KEYS = [{"time": 0, "position": [0, -3, 1], "look_at": [0, 0, 1]},
        {"time": 1, "position": [1, -3, 1], "look_at": [0, 0, 1]},
        {"time": 2, "position": [2, -3, 1], "look_at": [0, 0, 1]}]


@pytest.mark.parametrize("edit, field, problem", [
    # a keyframe out of order
    (lambda d: d["keyframes"][2].update(time=0.5), r"keyframes\[2\]\.time", "not after keyframes\\[1\\]"),
    (lambda d: d["keyframes"][1].update(time=0), r"keyframes\[1\]\.time", "time order"),
    # zero-length shots
    (lambda d: d.update(duration=0), "duration", "zero-length"),
    (lambda d: d.update(frames=0), "frames", "zero-length"),
    (lambda d: d.update(frame_range=[1010, 1001]), "frame_range", "zero-length"),
    # a look-at target on the camera itself
    (lambda d: d["keyframes"][1].update(look_at=[1, -3, 1]), r"keyframes\[1\]\.look_at", "camera's own position"),
    # and the rest
    (lambda d: d["keyframes"][0].pop("position"), r"keyframes\[0\]", "missing `position`"),
    (lambda d: d["keyframes"][0].update(pan=10), r"keyframes\[0\]", "exactly one orientation"),
    (lambda d: d["keyframes"][0].update(focal=35), r"keyframes\[0\]\.focal", "unknown field"),
    (lambda d: d["keyframes"][0].update(ease=2), r"keyframes\[0\]\.ease", "in \\[0, 1\\]"),
    (lambda d: d["keyframes"][0].update(position=[0, 1]), r"keyframes\[0\]\.position", "expected \\[x, y, z\\]"),
    (lambda d: d.update(fps="fast"), "fps", "frame rate"),
    (lambda d: d.update(lens="35 inches"), "lens", "35mm"),
    (lambda d: d.update(lens={"focal_mm": -1}), r"lens\.focal_mm", "> 0"),
    (lambda d: d.update(lens={"model": "anamorphic"}), r"lens\.model", "one of pinhole, opencv, fisheye"),
    (lambda d: d.update(lens={"model": "fisheye", "p1": 0.01}), "lens", "fisheye lens with p1 = 0.01: the model has no p1"),
    (lambda d: d.update(lens={"k1": 0.1}), "lens", "pinhole lens with k1 = 0.1: the model has no k1"),
    (lambda d: d.update(lens={"model": "opencv", "k2": "big"}), r"lens\.k2", "number"),
    (lambda d: d.update(lens={"model": "opencv", "k5": 0.1}), r"lens\.k5", "unknown field"),
    (lambda d: d.update(resolution=[1920]), "resolution", "width, height"),
    (lambda d: d.update(duration=1), r"keyframes\[2\]", "after the shot's end"),
    (lambda d: d.update(interpolation={"speed": "fast"}), r"interpolation\.speed", "constant"),
    (lambda d: d.update(interpolation={"loop": True}), r"interpolation\.loop", "loop needs `duration`"),
    (lambda d: d.update(camera={"position": [0, 0, 0], "look_at": [1, 0, 0]}), "camera", "keyframes already"),
])
def test_errors_name_the_file_field_and_problem(tmp_path, edit, field, problem):
    data = {"name": "sh", "fps": 24, "keyframes": [dict(k) for k in KEYS]}
    edit(data)
    path = _write(tmp_path, yaml.safe_dump(data))
    with pytest.raises(SplatfilmError, match=f"shot.yaml: .*{field}.*{problem}|shot.yaml: {problem}") as e:
        load_shot(path)
    assert str(e.value).count("shot.yaml") == 1, str(e.value)  # named once, not wrapped twice
    assert f"{field}: {field}:" not in str(e.value), str(e.value)  # nor its field


@pytest.mark.parametrize("move, problem", [
    ({"type": "dolly", "distance": 1}, "needs a starting camera"),
    ({"type": "dolyl", "distance": 1}, "unknown move"),
    ({"type": "dolly"}, "needs `distance`"),
    ({"type": "dolly", "distance": 1, "speed": 2}, "unknown field"),
    ({"type": "dolly", "distance": 1, "from": [0, 0, 1]}, "no fixed target"),
    ({"type": "dolly", "distance": 1, "target": [0, 0, 1], "from": [0, 0, 1]}, "own look-at target"),
    ({"type": "push_in", "target": [0, 0, 1], "from": [0, -3, 1]}, "exactly one of `distance` or `to_distance`"),
    ({"type": "pan", "degrees": 10, "span": [2, 1], "from": [0, 0, 1]}, "must end after it starts"),
    ({"type": "push_in", "target": [0, 0, 1], "distance": 5, "from": [0, -3, 1]}, "would reach the target"),
])
def test_move_errors(tmp_path, move, problem):
    path = _write(tmp_path, yaml.safe_dump({"duration": 2, "move": move}))
    with pytest.raises(SplatfilmError, match=f"shot.yaml: move.*{problem}"):
        load_shot(path)


@pytest.mark.parametrize("move, problem", [
    # Refused when the move is built: the message once carried no file name.
    ({"type": "follow", "target": [0, 0, 0], "offset": [0, -2, 1], "look_offset": [0, -2, 1]},
     r"move: follow: the camera offset equals the look offset"),
    # A type that is not a name was a TypeError traceback (unhashable list).
    ({"type": ["pan"], "degrees": 3}, r"move\.type: unknown move \['pan'\]"),
    # No type at all read "unknown move None".
    ({"degrees": 3}, r"move: missing `type` \(one of arc, "),
])
def test_move_errors_name_the_file(move, problem):
    with pytest.raises(SplatfilmError, match=rf"^s\.yaml: {problem}"):
        parse_shot({"duration": 2, "move": move}, "s.yaml")


def test_the_move_list_in_the_docs_is_each_moves_fields():
    # Shot files read a move's fields from its dataclass: the module's list must say the same.
    from dataclasses import fields

    from splatfilm.shots import MOVES, STARTING_MOVES, shot_yaml

    doc = shot_yaml.__doc__.split("Move types and their fields")[1].split("Every move takes")[0]
    words = set(re.findall(r"[a-z_]+", doc))
    for kind, cls in {**MOVES, **STARTING_MOVES}.items():
        assert kind in words and {f.name for f in fields(cls)} <= words, kind
    for path in [Path(shot_yaml.__file__).parents[2] / "docs" / "film-script.md"]:
        assert all(kind in path.read_text() for kind in {**MOVES, **STARTING_MOVES}), path


def test_moves_need_a_duration_and_two_frames(tmp_path):
    cam = {"position": [0, -3, 1], "look_at": [0, 0, 1]}
    with pytest.raises(SplatfilmError, match="missing `duration`"):
        parse_shot({"camera": cam, "move": {"type": "pan", "degrees": 5}}, "s.yaml")
    with pytest.raises(SplatfilmError, match="at least two frames"):
        parse_shot({"frames": 1, "camera": cam, "move": {"type": "pan", "degrees": 5}}, "s.yaml")


def test_file_level_errors(tmp_path):
    with pytest.raises(SplatfilmError, match="no such file"):
        load_shot(tmp_path / "missing.yaml")
    with pytest.raises(SplatfilmError, match="invalid YAML at line 2"):
        load_shot(_write(tmp_path, "fps: 24\n  duration: [4\n"))
    with pytest.raises(SplatfilmError, match="a shot is a mapping"):
        load_shot(_write(tmp_path, "- 1\n- 2\n"))


@pytest.mark.parametrize("path", sorted(CAMERAS.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_shots_load(path):
    shot = load_shot(path)
    assert shot.name == path.stem
    cams = shot.cameras()
    assert len(cams) == shot.frame_count > 1
    # Every example stays in the demo room's neighbourhood and looks somewhere sensible.
    assert np.all(np.abs(cams.centers[:, :2]) < 5) and np.all((cams.centers[:, 2] > 0.2) & (cams.centers[:, 2] < 3.5))


@pytest.mark.parametrize("version, ok", [(None, True), (1, True), (2, False), ("1", False), (0, False), (True, False)])
def test_schema_version(tmp_path, version, ok):
    head = "" if version is None else yaml.safe_dump({"version": version})
    path = _write(tmp_path, head + "duration: 1\nmove: {type: dolly, from: [0, -3, 1], target: [0, 0, 1], distance: 1}\n")
    if ok:
        assert load_shot(path).frame_count == 24
    else:
        with pytest.raises(SplatfilmError, match=r"shot\.yaml: version: "):
            load_shot(path)


def test_a_camera_alone_is_a_locked_off_shot():
    shot = parse_shot({"duration": 2, "camera": {"position": [0, -3, 1.2], "look_at": [0, 0, 1], "roll": 5}}, "x.yaml")
    cams = shot.cameras()
    assert len(cams) == 48
    np.testing.assert_allclose(cams.viewmats, np.broadcast_to(cams.viewmats[0], cams.viewmats.shape), atol=0)
    np.testing.assert_allclose(cams.to_c2w_opencv()[0, :3, 3], [0, -3, 1.2], atol=1e-12)
    with pytest.raises(SplatfilmError, match=r"^x\.yaml: a shot needs `keyframes`, a `move` / `moves`, or a `camera`"):
        parse_shot({"duration": 2}, "x.yaml")


def test_a_whole_turn_loops_without_repeating_its_first_frame():
    # The bundled turntable: 192 frames of one turn, 360/192 degrees apart, the frame after
    # the last being the first (it showed the first pose twice, 360/191 degrees apart).
    shot = load_shot(CAMERAS / "orbit_table.yaml")
    p = shot.sample().positions
    azimuth = np.degrees(np.unwrap(np.arctan2(p[:, 1], p[:, 0])))
    np.testing.assert_allclose(np.diff(azimuth), 360 / 192, atol=1e-9)
    np.testing.assert_allclose(shot.sample([float(shot.duration)]).positions[0], p[0], atol=1e-12)
    # So does an arc of two turns laid over a camera; an eased turn or one with its own span
    # still runs from the first frame to the last, where it ends at rest.
    base = {"fps": 24, "frames": 48, "camera": {"position": [0, -2, 1], "look_at": [0, 0, 1]}}
    arc = parse_shot({**base, "move": {"type": "arc", "degrees": 720, "pivot": [0, 0, 1]}})
    az = np.degrees(np.unwrap(np.arctan2(*arc.sample().positions[:, 1::-1].T)))
    np.testing.assert_allclose(np.diff(az), 720 / 48, atol=1e-9)
    for timing in ({"ease": 0.5}, {"frames": [1001, 1048]}):
        eased = parse_shot({**base, "move": {"type": "arc", "degrees": 360, "pivot": [0, 0, 1], **timing}})
        np.testing.assert_allclose(eased.sample().positions[-1], eased.sample().positions[0], atol=1e-12)


def test_a_shot_lens_is_laid_over_the_films_field_by_field():
    # `lens: 50mm` replaced the film's whole lens: on a 24.89 mm (Super 35) back it went back
    # to 36 mm and framed wider than the film's 35 mm (39.6 degrees, not 27.95).
    film = {"lens": {"focal_mm": 35, "sensor_width_mm": 24.89, "f_stop": 2.8, "focus_distance": 3, "near": 0.05,
                     "model": "opencv", "k1": -0.05}}
    cam = {"frames": 1, "camera": {"position": [0, 0, 0], "look_at": [0, 1, 0]}}
    lens = parse_shot({**cam, "lens": "50mm"}, defaults=film).lens
    assert (lens.focal_mm, lens.sensor_width_mm, lens.f_stop, lens.focus_distance, lens.near) == (
        50, 24.89, 2.8, 3, 0.05)
    assert lens.model == "opencv" and lens.distortion[0] == -0.05
    assert lens.hfov_deg == pytest.approx(27.9538, abs=1e-4)  # the longer lens frames tighter
    assert parse_shot(cam, defaults=film).lens.hfov_deg == pytest.approx(39.1479, abs=1e-4)
    # A field of view replaces the film's focal length (not "give one of"); naming the glass
    # (model or a coefficient) replaces the film's model and its distortion as a set.
    assert parse_shot({**cam, "lens": {"fov_deg": 40}}, defaults=film).lens.hfov_deg == pytest.approx(40)
    plain = parse_shot({**cam, "lens": {"model": "pinhole", "f_stop": 4}}, defaults=film).lens
    assert (plain.model, plain.distortion, plain.f_stop, plain.focal_mm) == ("pinhole", (0.0,) * 6, 4, 35)



def test_a_lens_names_its_film_back_and_how_the_image_fits_it(tmp_path, capsys):
    # `sensor_width_mm: super35` was refused (not a number); `sensor_height_mm` and
    # `sensor_fit` were unknown fields.
    cam = {"frames": 1, "resolution": [1920, 800], "camera": {"position": [0, 0, 0], "look_at": [0, 1, 0]}}
    s35 = parse_shot({**cam, "lens": {"focal_mm": 35, "sensor_width_mm": "super35"}}).lens
    assert (s35.sensor_width_mm, s35.sensor_height_mm) == (24.89, 18.67)  # Unreal's default filmback
    assert s35.hfov_deg == pytest.approx(39.1479, abs=1e-4)
    vert = parse_shot({**cam, "lens": {"focal_mm": 35, "sensor_width_mm": 24.89, "sensor_height_mm": 18.67,
                                       "sensor_fit": "vertical"}}).lens
    assert vert.vfov_deg == pytest.approx(2 * math.degrees(math.atan(18.67 / 70)))  # 29.85 down the back
    from splatfilm.shots.shot_yaml import lens_fields
    assert parse_shot({**cam, "lens": lens_fields(vert)}).lens == vert  # what `view` writes reads back
    # The back and its fit carry over from the film's lens; a shot naming a back changes both dimensions.
    film = {"lens": {"focal_mm": 35, "sensor_width_mm": "alexa35", "sensor_fit": "overscan"}}
    shot = parse_shot({**cam, "lens": "50mm"}, defaults=film).lens
    assert (shot.sensor_width_mm, shot.sensor_height_mm, shot.sensor_fit, shot.fit_axis) == (
        27.99, 19.22, "overscan", "vertical")
    mft = parse_shot({**cam, "lens": {"sensor_width_mm": 17.3}}, defaults=film).lens
    assert (mft.sensor_width_mm, mft.sensor_height_mm, mft.focal_mm) == (17.3, None, 35)
    # Bad backs and fits are one-line errors naming the field.
    for lens, says in (({"sensor_width_mm": "super36"}, "sensor_width_mm: expected millimetres or a named back"),
                       ({"sensor_width_mm": "super35", "sensor_height_mm": 18}, "the named back super35 gives"),
                       ({"sensor_fit": "auto"}, "sensor_fit: expected one of horizontal, vertical, fill, overscan"),
                       ({"sensor_height_mm": -1}, "sensor_height_mm")):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({**cam, "lens": {"focal_mm": 35, **lens}}))
        assert says in cli_error(capsys, ["path", "export", path, "-o", tmp_path / "x.usda"], path)


def _camera_z(sample, point) -> np.ndarray:
    """Camera z [T] of `point` [3] or points [T,3] from the cameras of a path sample."""
    return np.einsum("ti,ti->t", np.asarray(point, dtype=np.float64) - sample.positions, sample.rotations[:, :, 2])


@pytest.mark.parametrize("where", ["lens", "camera"])
def test_focus_on_a_point_holds_it_through_a_dolly(where):
    """focus_distance naming a point is that point's camera z on every frame, from the camera
    as the moves leave it (a dolly in past it, panning off it), not its first-frame distance."""
    table = [0.3, 0.0, 0.75]
    shot = {"duration": 2, "points": {"table": table}, "lens": {"focal_mm": 50, "f_stop": 2},
            "camera": {"position": [0, -4, 1.4], "look_at": [0, 0, 1.0]},
            "moves": [{"type": "dolly", "distance": 2.0, "ease": 0.5}, {"type": "pan", "degrees": 10}]}
    shot[where]["focus_distance"] = "table"
    s = parse_shot(shot).sample()
    z = _camera_z(s, table)
    assert z[0] == pytest.approx(4.0, abs=0.1) and z[-1] == pytest.approx(2.0, abs=0.1)  # the dolly moved it
    np.testing.assert_allclose(s.focus_distance, z, rtol=1e-12)


def test_keyframes_and_racks_focus_on_named_subjects():
    """A keyframe's focus on a subject holds it between keys on it; a rack to a named subject
    ends on its distance and stays there as the camera keeps moving; one from it starts on it."""
    points = {"table": [0.0, 0.0, 0.75], "door": [1.0, 2.0, 1.0]}
    keys = [{"time": 0, "position": [0, -4, 1.4], "look_at": "table", "focus_distance": "table"},
            {"time": 1, "position": [0, -3, 1.3], "look_at": "table", "focus_distance": "table"},
            {"time": 2, "position": [0, -2.5, 1.2], "look_at": "table", "focus_distance": 6.0}]
    s = parse_shot({"points": points, "keyframes": keys}).sample()
    on_table = s.times <= 1 + 1e-9
    np.testing.assert_allclose(s.focus_distance[on_table], _camera_z(s, points["table"])[on_table], rtol=1e-12)
    assert s.focus_distance[-1] == pytest.approx(6.0)

    rack = parse_shot({"duration": 2, "points": points,
                       "camera": {"position": [0, -4, 1.4], "look_at": "table", "focus_distance": 3.0},
                       "moves": [{"type": "rack_focus", "to_distance": "door", "span": [0.5, 1.0]},
                                 {"type": "dolly", "distance": 1.0}]}).sample()
    door = _camera_z(rack, points["door"])
    assert rack.focus_distance[0] == pytest.approx(3.0)
    after = rack.times >= 1.0 - 1e-9
    np.testing.assert_allclose(rack.focus_distance[after], door[after], rtol=1e-12)
    assert np.ptp(door[after]) > 0.05  # the dolly changes it: the rack keeps to the door

    back = parse_shot({"duration": 1, "points": points, "camera": {"position": [0, -4, 1.4], "look_at": "table"},
                       "move": {"type": "rack_focus", "from_distance": "table", "to_distance": 1.5}}).sample()
    assert back.focus_distance[0] == pytest.approx(_camera_z(back, points["table"])[0])
    assert back.focus_distance[-1] == pytest.approx(1.5)


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["lens"].update(focus_distance="tabel"), "lens.focus_distance"),
    (lambda d: d["camera"].update(focus_distance="tabel"), "camera.focus_distance"),
    (lambda d: d.update(move={"type": "rack_focus", "to_distance": "tabel"}), "move.to_distance"),
])
def test_an_unknown_focus_subject_names_the_field_and_the_known_points(edit, field):
    shot = {"duration": 1, "points": {"table": [0, 0, 0.75], "door": [1, 2, 1]}, "lens": {"focal_mm": 35},
            "camera": {"position": [0, -4, 1.4], "look_at": "table"}}
    edit(shot)
    with pytest.raises(SplatfilmError) as e:
        parse_shot(shot, "shot.yaml")
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"shot.yaml: {field}: unknown point name 'tabel'") and "(known: door, table)" in message


def test_a_subject_behind_the_camera_is_refused_naming_the_frame():
    with pytest.raises(SplatfilmError, match=r"camera: frame 1001: focus_distance -1 m: the subject focused on is "
                                             r"behind the camera"):
        parse_shot({"duration": 1, "points": {"back": [0, -5, 1.4]},
                    "camera": {"position": [0, -4, 1.4], "look_at": [0, 0, 1.4], "focus_distance": "back"}}, "shot.yaml")


@pytest.mark.parametrize("label, rate", [("29.97 DF", Fraction(30000, 1001)), ("29.97DF", Fraction(30000, 1001)),
                                         ("59.94 DF", Fraction(60000, 1001)), ("23.976 NDF", Fraction(24000, 1001))])
def test_a_rate_labelled_with_its_timecode_count_is_that_rate(label, rate):
    assert parse_shot({"fps": label, "frames": 2, "camera": {"position": [0, -4, 1], "look_at": [0, 0, 1]}}).fps == rate


@pytest.mark.parametrize("label, problem", [("24 DF", "timecode at 24 fps is non-drop-frame"),
                                            ("29.97 NDF", "timecode at 29.97 fps is drop-frame")])
def test_a_timecode_count_the_rate_does_not_have_is_refused(label, problem):
    with pytest.raises(SplatfilmError, match=f"shot.yaml: fps: '{label}': {problem}"):
        parse_shot({"fps": label, "frames": 2, "camera": {"position": [0, -4, 1], "look_at": [0, 0, 1]}}, "shot.yaml")


def test_scientific_notation_reads_as_yaml_1_2_numbers_and_nan_stays_refused():
    """PyYAML follows YAML 1.1, whose floats need a dot and a signed exponent: `duration: 1e1`
    was the text '1e1' and failed as "expected a number, got '1e1'"."""
    from splatfilm.yamlfields import load_yaml

    doc = load_yaml("a: 1e1\nb: 2.5E-1\nc: -3e+0\nd: .5e1\ne: '1e1'\nf: 1.0e+1\ng: 12\nh: nan\ni: 1e\n", "t.yaml")
    assert doc == {"a": 10.0, "b": 0.25, "c": -3.0, "d": 5.0, "e": "1e1", "f": 10.0, "g": 12, "h": "nan", "i": "1e"}
    assert isinstance(doc["g"], int)
    text = "fps: 24\nduration: 1e1\ncamera: {position: [0, -3, 1], look_at: [0, 0, 1e0]}\n"
    assert parse_shot(load_yaml(text, "s.yaml"), "s.yaml").duration == 10
    with pytest.raises(SplatfilmError, match="duration: expected a number, got 'nan'"):
        parse_shot(load_yaml(text.replace("1e1", "nan"), "s.yaml"), "s.yaml")


def test_an_exponent_after_a_bare_dot_and_underscore_stays_text():
    """`._e5` is no number in YAML 1.1 or 1.2; read as one it crashed float('.e5') with a
    ValueError traceback instead of staying text that a field refuses in one line."""
    from splatfilm.yamlfields import load_yaml

    assert load_yaml("a: ._e5\nb: .5_0e1\n", "t.yaml") == {"a": "._e5", "b": 5.0}
