"""Keys authored in the viewer -> a shot file or a film's shot, read back within 1e-4."""

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
import yaml

from helpers import SCENES
from splatfilm.errors import SplatfilmError
from splatfilm.film.world import World
from splatfilm.scene.transforms import look_at_rotation, quat_from_rotation
from splatfilm.shots.lens import Lens, fov_deg_to_focal_mm
from splatfilm.shots.shot_yaml import format_shot_yaml, load_shot, parse_shot
from splatfilm.view.authoring import (REPRODUCE_TOLERANCE, KeyedShot, append_to_film, next_shot_name,
                                      save_shot_file)
from splatfilm.view.camera import ViewerCamera, keyframe_from_viewer
from splatfilm.view.session import Session

HALF = 0.5 / 24


def _session(tmp_path, fps=Fraction(24)) -> Session:
    lens = Lens(focal_mm=35, width=640, height=360, sensor_width_mm=30)
    return Session(tmp_path / "scene.ply", "scene", None, World({}), [], fps, 640, 360, lens, (0, 0, 0), 0.0, 10.0)


def _keys(session, poses) -> KeyedShot:
    keyed = KeyedShot("sh_new")
    for t, position, target, roll, vfov in poses:
        R = look_at_rotation(position, target, roll_deg=roll)
        view = ViewerCamera(position, quat_from_rotation(R), vfov, target)
        keyed.add(keyframe_from_viewer(view, t, float(fov_deg_to_focal_mm(math.degrees(vfov), session.lens.sensor_height_mm))), HALF)
    return keyed


POSES = [(2.0, [0.5, -3.0, 1.6], [0.0, 0.3, 0.9], 0.0, 0.6),
         (2.5 + 1 / 3, [1.1, -2.2, 1.4], [0.1, 0.2, 0.85], -7.5, 0.45),
         (4.0, [1.7, -1.0, 1.2], [0.0, 0.4, 0.8], 3.0, 0.5)]


def test_keys_add_in_time_order_replace_at_the_same_frame_retime_and_delete(tmp_path):
    s = _session(tmp_path)
    keyed = _keys(s, [POSES[2], POSES[0]])
    assert [k.time for k in keyed.keys] == [2.0, 4.0]
    replaced = _keys(s, [(2.01, *POSES[1][1:])]).keys[0]
    assert keyed.add(replaced, HALF) == 0 and len(keyed.keys) == 2
    assert keyed.retime(0, 5.0, HALF) == 1 and [k.time for k in keyed.keys] == [4.0, 5.0]
    with pytest.raises(SplatfilmError, match="already"):
        keyed.retime(0, 5.0, HALF)
    keyed.delete(0)
    assert [k.time for k in keyed.keys] == [5.0]
    with pytest.raises(SplatfilmError, match="no key 3"):
        keyed.delete(2)


def test_a_saved_shot_file_reproduces_the_keyed_cameras(tmp_path):
    s = _session(tmp_path)
    keyed = _keys(s, POSES)
    path = save_shot_file(keyed, s, tmp_path / "shots" / "sh_new.yaml")
    text = path.read_text()
    assert text.startswith("version: 1\nname: sh_new\nfps: 24\nresolution: [640, 360]\n")
    assert "keyframes:\n  - {time: 0.0, position: [0.5, -3.0, 1.6], look_at: [0.0, 0.3, 0.9]" in text
    shot = load_shot(path)
    assert shot.lens.sensor_width_mm == 30 and (shot.lens.width, shot.lens.height) == (640, 360)
    assert shot.frame_count == 49  # 2 s at 24 fps, both ends
    times = np.array([k.time - 2.0 for k in keyed.keys])
    got = shot.sample(times).to_cameras(shot.lens)
    want = keyed.key_cameras(s.lens)
    assert np.abs(got.to_c2w_opencv() - want.to_c2w_opencv()).max() < REPRODUCE_TOLERANCE
    np.testing.assert_allclose(got.Ks, want.Ks, rtol=1e-6)
    np.testing.assert_allclose(shot.sample(times).focal_mm, [k.focal_mm for k in keyed.keys], atol=1e-6)
    # An existing file is kept as .bak when saved over.
    save_shot_file(_keys(s, POSES[:2]), s, path)
    assert (tmp_path / "shots" / "sh_new.yaml.bak").read_text() == text
    assert len(load_shot(path).path.keyframes) == 2


def test_a_shot_saved_beside_a_film_names_the_include_line_that_finds_it(tmp_path):
    s = dataclasses.replace(_session(tmp_path), path=tmp_path / "film.yaml", kind="film")
    text = save_shot_file(_keys(s, POSES), s, tmp_path / "shots" / "sh_new.yaml").read_text()
    assert "in the film: - {include: shots/sh_new.yaml, time: 2.0}" in text.splitlines()[0]


def test_saving_without_keys_or_into_a_folder_is_a_one_line_error(tmp_path):
    s = _session(tmp_path)
    with pytest.raises(SplatfilmError, match="no keys yet"):
        save_shot_file(KeyedShot("x"), s, tmp_path / "x.yaml")
    with pytest.raises(SplatfilmError, match="folder"):
        save_shot_file(_keys(s, POSES), s, tmp_path)


def test_numbers_round_trip_exactly_through_the_writer():
    values = [1e-05, 1e20, -0.0, 0.1 + 0.2, 1 / 3, 123456789.125, 5e-324]
    fields = {"name": "odd name: yes", "keyframes": [{"time": v, "position": [v, -v, 1.0]} for v in values]}
    back = yaml.safe_load(format_shot_yaml(fields))
    assert back["name"] == "odd name: yes"
    for v, k in zip(values, back["keyframes"]):
        assert isinstance(k["time"], float) and k["time"] == v and k["position"] == [v, -v, 1.0]


def test_appending_to_the_film_keeps_its_text_and_a_backup(demo_session, tmp_path):
    film = tmp_path / "film.yaml"
    original = (SCENES / "set" / "film.yaml").read_text()
    film.write_text(original)
    session = dataclasses.replace(demo_session, path=film)
    keyed = _keys(session, POSES)
    keyed.name = next_shot_name(session)
    assert keyed.name == "sh040"
    append_to_film(keyed, session)
    text = film.read_text()
    assert text.startswith(original.rstrip("\n")) and (tmp_path / "film.yaml.bak").read_text() == original
    data = yaml.safe_load(text)
    entry = data["shots"][-1]
    assert entry["name"] == "sh040" and entry["time"] == 2.0 and len(entry["keyframes"]) == 3
    shot = parse_shot({k: v for k, v in entry.items() if k != "time"}, str(film),
                      defaults={"fps": 24, "resolution": [640, 360], "lens": data["lens"]})
    got = shot.sample(np.array([k.time - 2.0 for k in keyed.keys])).to_cameras(shot.lens)
    assert np.abs(got.to_c2w_opencv() - keyed.key_cameras(session.lens).to_c2w_opencv()).max() < REPRODUCE_TOLERANCE
    with pytest.raises(SplatfilmError, match="already has a shot called 'sh010'"):
        keyed.name = "sh010"
        append_to_film(keyed, session)
