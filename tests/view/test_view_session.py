"""The viewer's session: input validation before any server, the demo film on a timeline, the
world split into a static set (sent once) and moving assets (re-sent), busy ports."""

import socket

import numpy as np
import pytest

from helpers import CAMERAS, SCENES, cli_error
from splatfilm.errors import SplatfilmError
from splatfilm.view.ports import check_port, free_port
from splatfilm.view.session import open_session


def test_bad_input_is_a_one_line_error_before_any_server(capsys, tmp_path):
    cli_error(capsys, ["view", tmp_path / "missing.yaml"], "missing.yaml")
    cli_error(capsys, ["view", tmp_path], "is a folder")
    (tmp_path / "notes.txt").write_text("x")
    cli_error(capsys, ["view", tmp_path / "notes.txt"], "expected a film script")
    bad = tmp_path / "film.yaml"
    bad.write_text("assets:\n  set: {file: nowhere.ply}\nshots: [{duration: 1, camera: {position: [0, 0, 1], look_at: [1, 0, 1]}}]\n")
    err = cli_error(capsys, ["view", bad], "film.yaml")
    assert "assets.set.file" in err
    broken = tmp_path / "shot.yaml"
    broken.write_text("keyframes: [{time: 0, position: [0, 0, 1]}]\n")
    cli_error(capsys, ["view", broken], "keyframes[0]")
    cli_error(capsys, ["view", CAMERAS / "orbit_table.yaml", "--scene", tmp_path / "none.ply"], "none.ply")
    # A film script with `assets:` misspelt is still a film: the film's error, not a shot file's.
    bad.write_text(bad.read_text().replace("assets:", "asset:"))
    assert "asset: unknown field (expected one of assets" in cli_error(capsys, ["view", bad], "film.yaml")


def test_a_busy_port_says_so_and_names_a_free_one(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SplatfilmError, match=rf"port {port} on 127.0.0.1 is busy .*try --port \d+"):
            check_port("127.0.0.1", port)
        err = cli_error(capsys, ["view", SCENES / "set" / "film.yaml", "--port", port], f"port {port}")
        suggested = int(err.rsplit("--port ", 1)[1].strip(")"))
        assert suggested != port
    check_port("127.0.0.1", free_port())
    with pytest.raises(SplatfilmError, match="1 to 65535"):
        check_port("127.0.0.1", 70000)


def test_a_shot_file_opens_with_its_keys_and_a_scene(tmp_path):
    s = open_session(CAMERAS / "keyframes_table.yaml", SCENES / "set" / "fitted" / "set.ply")
    assert s.kind == "shot" and len(s.shots) == 1 and s.static == ["set"] and s.moving == []
    assert (s.width, s.height) == (1920, 1080) and s.lens.focal_mm == 28
    assert s.label(1.0).startswith("t = 1.000 s · keyframes_table frame 1025")


def test_the_demo_film_on_the_timeline(demo_session):
    s = demo_session
    assert s.kind == "film" and s.static == ["set"] and s.moving == ["hero", "crate"]
    # Three 2.5 s shots with 4 handles at 24 fps: world time from the first head handle.
    assert s.start == pytest.approx(-4 / 24) and s.fps == 24
    assert [name for _, name in s.marks()] == ["sh010", "sh020", "sh030"]
    assert [f for f, _ in s.marks()] == [4, 64, 124]
    assert s.time_of(64) == pytest.approx(2.5)
    assert s.shot_at(1.0).name == "sh010" and s.shot_at(2.5).name == "sh020"
    assert s.shot_at(2.55, prefer="sh010").name == "sh010"  # its tail handle
    assert s.label(2.5) == "t = 2.500 s · sh020 frame 1005"
    assert s.label(-0.1).endswith("(handle)")
    assert s.lens.focal_mm == 30 and (s.width, s.height) == (640, 360)


def test_static_and_moving_assets_make_the_composed_world(demo_session):
    s = demo_session
    t = 1.3
    eye = s.eye(t)
    np.testing.assert_allclose(eye, s.shot_camera(s.shot_at(t), t).centers[0])
    whole = s.world.compose(t, None, eye)
    static = s.static_gaussians()
    moving = s.moving_gaussians(t, eye)
    assert len(static) + sum(len(g) for g in moving.values()) == len(whole)
    # The walking character moves between two times; the set does not.
    a = s.moving_gaussians(0.5, s.eye(0.5))["hero"].means.mean(0)
    b = s.moving_gaussians(2.0, s.eye(2.0))["hero"].means.mean(0)
    assert float((a - b).norm()) > 0.5


def test_the_demo_set_shows_its_capture_cameras_and_ground(demo_session):
    cams = demo_session.capture_cameras()
    # The set's 48, and the explorer's 30 (hero.cameras.json: `rig` carries them), placed with him at time 0.
    assert list(cams) == ["set", "hero"] and len(cams["set"]) == 48 and len(cams["hero"]) == 30
    ground = demo_session.ground_planes()
    assert list(ground) == ["set"] and ground["set"].normal[2] > 0.99


def test_render_this_frame_is_the_films_frame_and_the_viewers_camera_path_agrees(demo_session):
    from splatfilm.film.frame_render import FrameRenderer
    from splatfilm.view.frames import FrameRenders

    s = demo_session
    renders = FrameRenders(s, "cpu")
    fs = s.shot_named("sh020")
    t = 3.0
    frame = renders.shot_frame(fs, t)
    i = s.shot_frame(fs, t)
    assert i == 16 and fs.shot.first_frame + i == 1017
    np.testing.assert_array_equal(frame, FrameRenderer(s.film, "cpu").render(fs, i)[0])
    # The viewer's own camera path, given the shot's camera, renders the same frame.
    lens = fs.shot.lens
    same = renders.camera(s.shot_camera(fs, t), t, fs.visible, lens.near, lens.far)
    assert np.abs(same - frame).max() < 1e-5


def test_a_lone_gltf_character_stands_up_as_a_film_places_it(tmp_path):
    """A Y-up glTF import keeps the mesh frame on disk; `view CHAR.ply` shows it in its
    canonical frame (Z up, base on z = 0), where a film script puts it unmoved, not lying down."""
    import trimesh

    from splatfilm.assets.mesh_import import import_mesh

    body = trimesh.creation.box(extents=[0.5, 1.8, 0.3])  # Blender's glTF: +y up, metres
    body.apply_translation([0, 0.9, 0])
    body.export(tmp_path / "char.glb")
    import_mesh(tmp_path / "char.glb", tmp_path / "char.ply", count=4000)
    means = open_session(tmp_path / "char.ply").static_gaussians().means.numpy()
    extent = means.max(0) - means.min(0)
    assert np.argmax(extent) == 2 and extent[2] == pytest.approx(1.8, abs=0.05)
    assert means[:, 2].min() == pytest.approx(0.0, abs=0.02)


def test_an_spz_scene_opens_as_render_reads_it(tmp_path):
    from splatfilm.io.gaussian_files import load_gaussians, save_gaussians

    g = load_gaussians(SCENES / "set" / "fitted" / "set.ply")
    save_gaussians(tmp_path / "set.spz", g)
    assert len(open_session(tmp_path / "set.spz").static_gaussians()) == len(g)


def test_a_sog_or_ksplat_scene_opens_as_render_reads_it(capsys):
    """Every file `render` reads is a scene `view` opens: SuperSplat's .sog and GaussianSplats3D's
    .ksplat were refused ("expected ... a scene (.ply, .splat, .spz)"), and the message names them."""
    from helpers import REPO
    from splatfilm.io.gaussian_files import load_gaussians

    for fixture in ("sog/degree3.sog", "ksplat/level1_degree2.ksplat"):
        path = REPO / "tests" / "fixtures" / fixture
        assert len(open_session(path).static_gaussians()) == len(load_gaussians(path))
    assert ".sog" in cli_error(capsys, ["view", REPO / "README.md"], "README.md")


def test_the_viewers_camera_renders_each_asset_in_its_own_mode(film_dir):
    """A hero trained antialiased beside a classic wall: the viewer's own camera on the world
    renders the film's frame (each asset in its mode), not the hero as classic."""
    import json

    from splatfilm.render import rasterization
    from splatfilm.view.frames import FrameRenders

    sidecar = json.loads((film_dir / "hero.json").read_text())
    (film_dir / "hero.json").write_text(json.dumps({**sidecar, "rasterize_mode": "antialiased"}))
    s = open_session(film_dir / "film.yaml")
    renders = FrameRenders(s, "cpu")
    fs = s.shot_named("sh010")
    t = fs.world_start + float(fs.shot.times[2])
    frame = renders.shot_frame(fs, t)
    cams = s.shot_camera(fs, t)
    same = renders.camera(cams, t, fs.visible, fs.shot.lens.near, fs.shot.lens.far)
    assert np.abs(same - frame).max() < 1e-5
    # ... and not the hero drawn classic.
    g = s.world.compose(t, fs.visible, cams.centers[0])
    V, K = cams.to_tensors(g.dtype)
    classic = rasterization(g, V, K, int(cams.widths[0]), int(cams.heights[0]), backend="cpu", background=s.background,
                            near_plane=fs.shot.lens.near, far_plane=fs.shot.lens.far).rgb[0].double().numpy()
    assert np.abs(same - classic).max() > 1e-2


def test_a_film_whose_lens_focuses_on_a_subject_opens(tmp_path):
    """`render` takes a film lens focused on a point (or an asset); the viewer opens it too, its
    new shots' lens the film's (the subject is the shots' to follow: a `Lens` holds metres)."""
    film = tmp_path / "film.yaml"
    film.write_text(f"""version: 1
resolution: [320, 180]
lens: {{focal_mm: 30, f_stop: 2.0, focus_distance: table}}
points: {{table: [0.0, 0.3, 0.85]}}
assets: {{crate: {{file: {SCENES.parent / "scenes" / "demo" / "crate.ply"}}}}}
shots: [{{name: sh010, duration: 1, camera: {{position: [0.2, -3.4, 1.75], look_at: table}}}}]
""")
    s = open_session(film)  # was: lens.lens.focus_distance: unknown point name 'table'
    assert (s.lens.focal_mm, s.lens.f_stop, s.lens.focus_distance) == (30, 2.0, None)
    focus = s.shots[0].shot.sample().focus_distance
    assert np.all(np.isfinite(focus)) and focus[0] == pytest.approx(3.85, abs=0.1)
