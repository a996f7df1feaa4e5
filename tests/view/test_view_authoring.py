"""Keys authored in the viewer -> a shot file or a film's shot, read back within 1e-4."""

import contextlib
import dataclasses
import math
import types
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
        keyed.add(keyframe_from_viewer(view, t, float(fov_deg_to_focal_mm(math.degrees(vfov), session.lens.image_height_mm))), HALF)
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


# ---- a shot file saved back from the viewer --------------------------------------------------------

class FakeClient:
    """A browser as the viewer's key buttons see it: its camera is put where the viewer says and
    faces its look-at with the up the viewer gives (as viser's does), on a canvas of the frame's shape."""

    def __init__(self, aspect: float):
        self.client_id = 0
        self.camera = types.SimpleNamespace(position=np.zeros(3), look_at=np.array([0.0, 1.0, 0.0]),
                                            up_direction=np.array([0.0, 0.0, 1.0]), fov=0.7, aspect=aspect)

    def atomic(self):
        return contextlib.nullcontext()

    def aim(self) -> None:
        cam = self.camera
        # OpenCV camera axes, the up given opposite its y: the rotation the viewer asked for.
        z = np.asarray(cam.look_at, float) - np.asarray(cam.position, float)
        z /= np.linalg.norm(z)
        x = np.cross(z, np.asarray(cam.up_direction, float))
        x /= np.linalg.norm(x)
        cam.wxyz = quat_from_rotation(np.stack([x, np.cross(z, x), z], axis=1))


@pytest.fixture
def viewer_of():
    from splatfilm.view.app import Viewer
    from splatfilm.view.ports import free_port

    viewers = []

    def make(session):
        viewers.append(Viewer(session, "127.0.0.1", free_port(), backend="cpu"))
        # Its first frame is applied on its worker thread: settled, so a test setting `frame`
        # is not overtaken by it (a key then landed at time 0 one run in five).
        assert viewers[-1].wait_idle()
        return viewers[-1]

    yield make
    for v in viewers:
        v.stop()


SHOT_A = """# Shot A: the table, then the vase.
version: 1
name: shotA
fps: 24
duration: 8
first_frame: 1
resolution: [640, 268]
lens: {focal_mm: 40, sensor_width_mm: 24.89, f_stop: 2.8, focus_distance: 2.0}
points: {table: [0, 0, 0.8]}
keyframes:
  - {time: 1, position: [2.4, -2.6, 1.7], look_at: table}
  - {time: 3, position: [1.2, -1.8, 1.3], look_at: table, tension: 0.5, bias: -0.3, ease_out: 0.4}
  - {frame: 121, position: [0.3, -1.5, 1.1], look_at: [0.25, 0.05, 0.9], roll: -4, focus_distance: 1.2}
  - {time: 6, position: [0.9, -0.9, 1.05], look_at: [0.25, 0.05, 0.9], focal_mm: 50}
interpolation: {speed: constant, tension: 0.2, ease: 0.5}
"""


def _frames_apart(a, b) -> float:
    """Largest difference (m, rotation entries, mm) between two shots' cameras over every frame."""
    assert (a.frame_count, a.first_frame) == (b.frame_count, b.first_frame)
    sa, sb = a.sample(), b.sample()
    ca, cb = sa.to_cameras(a.lens), sb.to_cameras(b.lens)
    return max(float(np.abs(ca.to_c2w_opencv() - cb.to_c2w_opencv()).max()), float(np.abs(sa.focal_mm - sb.focal_mm).max()),
               float(np.abs(np.nan_to_num(sa.focus_distance) - np.nan_to_num(sb.focus_distance)).max()))


def test_a_shot_file_saved_back_from_the_viewer_is_the_same_shot(tmp_path, viewer_of):
    from splatfilm.view.session import open_session

    path = tmp_path / "shotA.yaml"
    path.write_text(SHOT_A)
    original = load_shot(path)
    v = viewer_of(open_session(path))
    assert v.save_text.value == str(path) and len(v.keyed.keys) == 4
    assert v.duration_number.value == 8.0  # the file's own length
    v.save_file()  # "Save shot file": over the file opened
    saved = load_shot(path)
    # Was: 121 frames from 1001, the keys a second early, interpolation, tension and bias, the
    # end eases, the stop and the focus gone: the camera 0.83 m off at the same frame.
    assert (saved.frame_count, saved.first_frame) == (192, 1)
    assert saved.lens == original.lens
    assert _frames_apart(saved, original) < 1e-6
    text = path.read_text()
    assert text.startswith("# Shot A: the table, then the vase.\nversion: 1\nname: shotA\nfps: 24\nduration: 8\nfirst_frame: 1\n")
    assert "interpolation: {speed: constant, tension: 0.2, ease: 0.5}" in text and "look_at: table" in text
    assert (tmp_path / "shotA.yaml.bak").read_text() == SHOT_A


def test_check_reproduces_compares_every_frame_not_only_the_keys(tmp_path):
    from splatfilm.view.authoring import check_reproduces
    from splatfilm.view.session import open_session

    path = tmp_path / "shotA.yaml"
    path.write_text(SHOT_A)
    s = open_session(path)
    keyed = KeyedShot.for_session(s)
    fields = keyed.file_fields(s)
    check_reproduces(parse_shot(fields), keyed, s, "ok")
    # Even speed dropped: every key still where it was at its time, the frames between not.
    fields["interpolation"] = {"tension": 0.2, "ease": 0.5}
    with pytest.raises(SplatfilmError, match="does not reproduce"):
        check_reproduces(parse_shot(fields), keyed, s, "x")


def test_a_shot_of_moves_is_never_replaced_by_keys(tmp_path, viewer_of):
    from helpers import CAMERAS
    from splatfilm.view.session import open_session

    path = tmp_path / "dolly_in_table.yaml"
    original = (CAMERAS / "dolly_in_table.yaml").read_text()
    path.write_text(original)
    v = viewer_of(open_session(path))
    assert v.keyed.name == "dolly_in_table_keyed" and v.save_text.value == str(tmp_path / "dolly_in_table_keyed.yaml")
    p, t = np.array([0.5, -3.0, 1.5]), np.array([0.0, 0.0, 0.8])
    v.add_key(ViewerCamera(p, quat_from_rotation(look_at_rotation(p, t)), 0.7, t, 16 / 9))
    with pytest.raises(SplatfilmError, match="is a shot made of moves"):
        v.save_file(path)
    saved = v.save_file()
    assert path.read_text() == original and not (tmp_path / "dolly_in_table.yaml.bak").exists()
    assert load_shot(saved).frame_count == 96  # the dolly's 4 s, keyed over the same frames
    film = tmp_path / "film.yaml"
    film.write_text((SCENES / "set" / "film.yaml").read_text())
    with pytest.raises(SplatfilmError, match="is a film script"):
        v.save_file(film)


def test_go_to_and_re_key_without_moving_change_nothing(tmp_path, viewer_of):
    from splatfilm.view.session import open_session

    path = tmp_path / "shotA.yaml"
    path.write_text(SHOT_A)
    s = open_session(path)
    v = viewer_of(s)
    client = FakeClient(s.width / s.height)
    before = [dataclasses.replace(k) for k in v.keyed.keys]
    for i, key in enumerate(before):
        v.key_dropdown.value = v.key_dropdown.options[i]
        v._key_action("Go to", client)
        client.aim()
        # The lens field reads the key's lens, as the browser shows it (was 40 on the 50 mm key).
        assert v.lens_number.value == pytest.approx(key.focal_mm or 40.0)
        v._key_action("Re-key", client)
    for old, new in zip(before, v.keyed.keys):
        assert np.abs(new.position - old.position).max() < 1e-9 and np.abs(new.look_at - old.look_at).max() < 1e-9
        assert (new.time, new.focal_mm, new.focus_distance, new.ease_in, new.ease_out, new.tension, new.bias) == \
               (old.time, old.focal_mm, old.focus_distance, old.ease_in, old.ease_out, old.tension, old.bias)
        assert new.roll_deg == pytest.approx(old.roll_deg, abs=1e-6)
    v.save_file()
    assert _frames_apart(load_shot(path), parse_shot(yaml.safe_load(SHOT_A))) < 1e-6
    # A lens changed before re-keying is the key's new lens.
    v.key_dropdown.value = v.key_dropdown.options[0]
    v._key_action("Go to", client)
    client.aim()
    client.camera.fov = math.radians(float(Lens(focal_mm=60, sensor_width_mm=24.89, width=640, height=268).vfov_deg))
    v._key_action("Re-key", client)
    assert v.keyed.keys[0].focal_mm == pytest.approx(60, abs=1e-4)


# ---- appending to the film --------------------------------------------------------------------------

def test_appending_twice_is_refused_the_first_backup_stays_and_the_shot_can_be_looked_through(demo_session, tmp_path,
                                                                                               viewer_of):
    film = tmp_path / "film.yaml"
    original = (SCENES / "set" / "film.yaml").read_text()
    film.write_text(original)
    # The film without its world: the viewer's keys and shots are what is tested, in seconds.
    session = dataclasses.replace(demo_session, path=film, world=World({}))
    v = viewer_of(session)
    for t, position, target, roll, vfov in POSES:
        v.frame = session.frame_of(t)
        R = look_at_rotation(position, target, roll_deg=roll)
        v.add_key(ViewerCamera(position, quat_from_rotation(R), vfov, target, 16 / 9))
    v._guarded(v._append)  # the button
    first = film.read_text()
    # Was: a second sh040 (the film no longer read), and the .bak the first append's script.
    v._guarded(v._append)
    assert v.status.startswith("error:") and "already has a shot called 'sh040'" in v.status
    assert film.read_text() == first
    v.name_text.value = "sh050"
    v._guarded(v._append)
    assert (tmp_path / "film.yaml.bak").read_text() == original
    assert [s["name"] for s in yaml.safe_load(film.read_text())["shots"]] == ["sh010", "sh020", "sh030", "sh040", "sh050"]
    assert v.look_dropdown.options[-2:] == ("sh040", "sh050")
    assert [fs.name for fs in session.shots] == ["sh010", "sh020", "sh030", "sh040", "sh050"]
    assert len(demo_session.shots) == 3
    fs = session.shot_named("sh050")  # on the timeline as the film has it: its 4 handles round the cut
    assert fs.handles == 4 and fs.cut_start == pytest.approx(POSES[0][0])


def test_appending_keeps_every_comment_when_shots_is_not_the_last_field(demo_session, tmp_path):
    original = (SCENES / "set" / "film.yaml").read_text()
    moved = original.replace("handles: 4\n", "") + "# four frames each end for the edit\nhandles: 4   # the cut's handles\n"
    film = tmp_path / "film.yaml"
    film.write_text(moved)
    session = dataclasses.replace(demo_session, path=film)
    keyed = _keys(session, POSES)
    keyed.name = "sh040"
    append_to_film(keyed, session)
    text = film.read_text()
    shots_end = moved.index("# four frames")
    assert text.startswith(moved[:shots_end]) and text.endswith(moved[shots_end:])
    assert text[shots_end:].startswith("  - name: sh040\n    time: 2.0\n    keyframes:\n")
    data = yaml.safe_load(text)
    assert data["handles"] == 4 and data["shots"][-1]["name"] == "sh040"


def test_keys_are_written_on_their_frames_without_float_noise(demo_session, tmp_path):
    # The demo's timeline starts at its first head handle, -4/24 s: frame 7 is 0.12500000000000003 s.
    s = dataclasses.replace(demo_session, path=tmp_path / "film.yaml")
    film = tmp_path / "film.yaml"
    film.write_text((SCENES / "set" / "film.yaml").read_text())
    t0, t1 = s.time_of(7), s.time_of(31)
    assert repr(t0) == "0.12500000000000003"
    keyed = _keys(s, [(t0, [0.1 + 0.2, -3.0, 1.6], [0.0, 0.3, 0.9], 0.0, 0.6),
                      (t1, [1.1, -2.2, 1.4 + 1e-12], [0.1, 0.2, 0.85], 0.0, 0.6)])
    keyed.name = "sh040"
    text = save_shot_file(keyed, s, tmp_path / "sh040.yaml").read_text()
    assert "{time: 0.0, position: [0.3, -3.0, 1.6]" in text and "{time: 1.0, position: [1.1, -2.2, 1.4]" in text
    assert "time: 0.125}" in text.splitlines()[0]
    append_to_film(keyed, s)
    entry = film.read_text().splitlines()
    assert "  - name: sh040" in entry and "    time: 0.125" in entry


@pytest.mark.parametrize("key_focus", [", focus_distance: 1.2", ""])
def test_a_shot_file_whose_lens_focuses_on_a_point_keeps_it_when_saved(tmp_path, key_focus):
    from splatfilm.view.session import open_session

    path = tmp_path / "shotF.yaml"
    path.write_text(SHOT_A.replace("focus_distance: 2.0}", "focus_distance: table}")
                    .replace(", focus_distance: 1.2", key_focus))
    original = load_shot(path)
    s = open_session(path)
    save_shot_file(KeyedShot.for_session(s), s, path)
    # Was: with a key's own focus, "keyframe 0 has no focus_distance"; without, written without
    # the lens's, the focus gone from every frame (and the check passed).
    assert "focus_distance: table" in path.read_text().split("keyframes:")[0]
    assert _frames_apart(load_shot(path), original) < 1e-6


@pytest.mark.parametrize("subject", ["table", "hero"])
def test_a_shot_appended_to_a_film_whose_lens_focuses_on_a_subject_renders_in_focus_there(tmp_path, subject):
    from helpers import write_walking_film
    from splatfilm.film.render import RenderOptions, render_film
    from splatfilm.film.script import parse_film
    from splatfilm.view.session import open_session

    film = write_walking_film(tmp_path)
    script = yaml.safe_load(film.read_text())
    script.update(lens={"focal_mm": 30, "f_stop": 2, "focus_distance": subject}, points={"table": [0.0, 0.0, 0.8]},
                  effects={"depth_of_field": True})
    film.write_text(yaml.safe_dump(script, sort_keys=False))
    session = open_session(film)
    keyed = _keys(session, [(1.0, [0.3, -3.5, 1.1], [0.0, 0.0, 0.8], 0.0, 0.5),
                            (1.25, [0.1, -3.0, 1.0], [0.0, 0.0, 0.7], 0.0, 0.5)])
    keyed.name = "sh020"
    # Was: "shots[1].lens.focus_distance: unknown point name 'table'" (or 'hero'), nothing saved.
    append_to_film(keyed, session)
    assert yaml.safe_load(film.read_text())["shots"][-1]["name"] == "sh020"
    fs = parse_film(film).shots[-1]
    assert fs.name == "sh020" and fs.shot.frame_count == 7
    sampled = fs.shot.sample()
    c2w = sampled.to_cameras(fs.shot.lens).to_c2w_opencv()
    world = session.world
    subject_at = np.array([world.assets["hero"].target(fs.world_start + t) for t in fs.shot.times]) \
        if subject == "hero" else np.array([0.0, 0.0, 0.8])
    np.testing.assert_allclose(sampled.focus_distance, np.einsum("ti,ti->t", subject_at - c2w[:, :3, 3], c2w[:, :3, 2]),
                               atol=1e-6)
    out = tmp_path / "out"
    render_film(film, out, RenderOptions(backend="cpu", shots=["sh020"], frames_only=True), progress=False,
                log=lambda *_: None)
    from PIL import Image

    frame = np.asarray(Image.open(out / "sh020" / "sh020.1004.png"), dtype=np.float64)
    assert frame.std() > 5  # the wall's texture, not an empty frame


# ---- a keyed shot's duration ------------------------------------------------------------------------

def test_a_duration_makes_one_key_a_shot_and_is_written_as_duration(demo_session, tmp_path):
    s = _session(tmp_path)
    keyed = _keys(s, POSES[:1])
    assert keyed.shot(s).frame_count == 1  # one key alone: one frame
    keyed.set_duration(3.5, s.fps)
    shot = load_shot(save_shot_file(keyed, s, tmp_path / "held.yaml"))
    assert "duration: 3.5\n" in (tmp_path / "held.yaml").read_text()
    assert shot.frame_count == 84
    positions = shot.sample().positions
    assert np.abs(positions - np.array(POSES[0][1])).max() < 1e-9  # the key held to the end
    # Past the set length the shot still reaches its last key; 0 ends it there again.
    longer = _keys(s, POSES)  # keys over 2 s
    longer.set_duration(1.0, s.fps)
    assert longer.shot(s).frame_count == 49
    longer.set_duration(0, s.fps)
    assert longer.frame_count is None and longer.length_fields(s.fps) == {}
    for bad, message in ((-1.0, "must be > 0"), (float("nan"), "must be > 0"), (0.01, "shorter than one frame")):
        with pytest.raises(SplatfilmError, match=message):
            keyed.set_duration(bad, s.fps)
    # Appended to a film, the entry carries it (the film's `duration:` is its cut's length).
    film = tmp_path / "film.yaml"
    film.write_text((SCENES / "set" / "film.yaml").read_text())
    session = dataclasses.replace(demo_session, path=film, world=World({}))
    keyed.name = "sh040"
    append_to_film(keyed, session)
    entry = yaml.safe_load(film.read_text())["shots"][-1]
    assert entry["duration"] == 3.5 and len(entry["keyframes"]) == 1
    fs = session.shot_named("sh040")
    assert fs.cut_frames == 84 and fs.handles == 4


def test_the_duration_field_sets_the_shots_length_and_grows_the_timeline(tmp_path, viewer_of):
    from helpers import splats
    from splatfilm.io.gaussian_files import save_gaussians
    from splatfilm.view.session import SCENE_TIMELINE_S, open_session

    save_gaussians(tmp_path / "scene.ply", splats(np.random.default_rng(0).uniform(-1, 1, (200, 3))))
    s = open_session(tmp_path / "scene.ply")
    assert s.end == SCENE_TIMELINE_S
    v = viewer_of(s)
    p, t = np.array([0.5, -3.0, 1.5]), np.array([0.0, 0.0, 0.0])
    view = ViewerCamera(p, quat_from_rotation(look_at_rotation(p, t)), 0.7, t, 16 / 9)
    v.frame = s.frame_of(1.0)
    v.add_key(view)
    v.duration_number.value = 15.0  # as the browser sets it
    assert v.keyed.frame_count == 360 and "360 frames, 15.000 s" in v.status
    # Was: the timeline stopped at 10 s, and no key could go past it.
    assert s.end == pytest.approx(1.0 + 359 / 24) and v.slider.max == s.frame_count - 1 == 24 + 359
    v.frame = s.frame_of(14.0)
    v.add_key(ViewerCamera(p + [1.0, 0.0, 0.0], quat_from_rotation(look_at_rotation(p + [1.0, 0.0, 0.0], t)), 0.7, t,
                           16 / 9))
    assert [k.time for k in v.keyed.keys] == [1.0, 14.0]
    saved = v.save_file(tmp_path / "long.yaml")
    assert "duration: 15\n" in saved.read_text()
    shot = load_shot(saved)
    assert shot.frame_count == 360 and [k.time for k in shot.path.keyframes] == [0.0, 13.0]
    v.duration_number.value = -2.0
    assert v.status.startswith("error:") and "must be > 0" in v.status and v.keyed.frame_count == 360
