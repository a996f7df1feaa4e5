"""What the viewer sends the browser and how it stops, without a browser: a big scene sent as
its most visible Gaussians (renders keep all), a scene that is not Z up orbiting about its own
up, the frame marked while looking through, and Ctrl-C / SIGTERM ending `view` as every
command ends (130 / 143)."""

import json
import math

import numpy as np
import pytest
import torch

from helpers import random_gaussians
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.view.camera import ViewerCamera, canvas_camera
from splatfilm.view.ports import free_port
from splatfilm.view.session import open_session


@pytest.fixture()
def viewers():
    made = []

    def make(session, **kwargs):
        from splatfilm.view.app import Viewer

        made.append(Viewer(session, "127.0.0.1", free_port(), backend="cpu", **kwargs))
        return made[-1]

    yield make
    for v in made:
        v.stop()


def _sent(node) -> int:
    return int(node.buffer.shape[0])


def test_a_big_scene_sends_its_most_visible_gaussians_and_renders_them_all(tmp_path, viewers):
    """1.54M Gaussians took 83 s to a first frame at 0.06 fps: --max-splats sends the ones with
    the most opacity x footprint, the same ones every time, and says how many were left out."""
    g = random_gaussians(3000, sh_degree=1, dtype=torch.float32, seed=3)
    save_gaussians(tmp_path / "big.ply", g)
    session = open_session(tmp_path / "big.ply")
    whole = viewers(session)
    assert _sent(whole.static_node) == 3000 and whole.note == ""
    v = viewers(session, max_splats=1000)
    assert _sent(v.static_node) == 1000
    assert "1,000 of the 3,000" in v.note and "2,000 left out" in v.note
    # The sent ones are the 1000 with the most opacity x footprint (the product of the two
    # largest scales); their centres, float32, match exactly ...
    scales = np.sort(g.activated_scales.double().numpy(), axis=1)
    score = g.activated_opacities.double().numpy() * scales[:, 1] * scales[:, 2]
    sent = v.static_node.buffer[:, :3].copy().view(np.float32)
    top = g.means.numpy()[np.sort(np.argsort(-score, kind="stable")[:1000])]
    np.testing.assert_array_equal(sent, top)
    # ... and the same ones again.
    again = viewers(open_session(tmp_path / "big.ply"), max_splats=1000)
    np.testing.assert_array_equal(again.static_node.buffer, v.static_node.buffer)
    # Renders are of every Gaussian.
    view = ViewerCamera([0, -4, 0.5], [0.7071068, -0.7071068, 0, 0], 0.8, [0, 0, 0], 16 / 9)
    np.testing.assert_array_equal(v.render_frame(view), whole.render_frame(view))


def test_a_film_shares_the_budget_between_the_set_and_what_moves(demo_session, viewers):
    v = viewers(demo_session, max_splats=20000)
    sent = _sent(v.static_node) + sum(_sent(n) for n in v.moving_nodes.values())
    assert sent == 20000 and all(_sent(n) > 0 for n in v.moving_nodes.values())
    hero = len(demo_session.moving_gaussians(0.0)["hero"])
    v.request(demo_session.frame_of(2.0))
    assert v.wait_idle()
    assert _sent(v.moving_nodes["hero"]) == v.sent["hero"] < hero  # re-sent at its count


def _y_down_scene(tmp_path, sidecar: dict | None):
    """A floor in the plane y = 0.5 of an INRIA/COLMAP frame (y down), a box standing up it (-y)."""
    rng = np.random.default_rng(0)
    floor = np.column_stack([rng.uniform(-2, 2, 2000), np.full(2000, 0.5), rng.uniform(-2, 2, 2000)])
    box = np.column_stack([rng.uniform(-0.3, 0.3, 500), rng.uniform(-1.0, 0.5, 500), rng.uniform(-0.3, 0.3, 500)])
    from helpers import splats

    save_gaussians(tmp_path / "scene.ply", splats(np.concatenate([floor, box])))
    if sidecar is not None:
        (tmp_path / "scene.json").write_text(json.dumps(sidecar))
    return open_session(tmp_path / "scene.ply")


def _upright(view: ViewerCamera, up) -> float:
    """How upright the view is about `up`: the cosine between the camera's up (-y) and it."""
    return float(-view.rotation[:, 1] @ np.asarray(up, dtype=np.float64))


def test_a_scene_that_is_not_z_up_orbits_about_its_own_up(tmp_path, viewers):
    """A COLMAP-frame scene (y down) opened sideways with the orbit locked to +z: its sidecar's
    up (the ground plane's normal where it records one) is the viewer's, `up` overrides it, and
    "reset up direction" takes the camera's."""
    from splatfilm.view.app import scene_up

    down = np.array([0.0, -1.0, 0.0])
    s = _y_down_scene(tmp_path, {"asset": "scene.ply", "frame": {"up": [0.05, -0.99, 0.1]},
                                 "ground": {"normal": [0.0, 1.0, 0.0], "offset": -0.5}})
    np.testing.assert_allclose(scene_up(s), down, atol=1e-12)  # the ground's normal, turned to the capture's up
    v = viewers(s)
    np.testing.assert_allclose(v.up, down, atol=1e-12)
    start = v._start_view()
    assert _upright(start, down) > 0.8
    # The start view looks at the box from the front and above (the box's top is at y = -1).
    assert start.position[1] < -0.5 and abs(start.rotation[:, 2] @ down) < 0.9
    # A bare scene (no sidecar) is +z unless told.
    (tmp_path / "scene.json").unlink()
    s = open_session(tmp_path / "scene.ply")
    np.testing.assert_allclose(scene_up(s), [0, 0, 1])
    told = viewers(s, up=down)
    assert _upright(told._start_view(), down) > 0.8
    # A film's world is Z up, whatever its assets' captures say.
    from helpers import SCENES

    assert scene_up(open_session(SCENES / "set" / "film.yaml")) @ [0, 0, 1] == 1.0


def test_reset_up_direction_takes_the_cameras_up():
    from types import SimpleNamespace

    from splatfilm.scene.transforms import look_at_rotation, quat_from_rotation
    from splatfilm.view.app import Viewer

    said = []
    cam = SimpleNamespace(position=np.array([0.0, -3.0, 0.0]), look_at=np.zeros(3), fov=0.8, aspect=1.5,
                          up_direction=None)
    cam.wxyz = quat_from_rotation(look_at_rotation(cam.position, cam.look_at, up=[0, -1, 0.2]))
    client = SimpleNamespace(camera=cam)
    scene_up = []
    viewer = SimpleNamespace(up=np.array([0.0, 0.0, 1.0]), _say=said.append,
                             server=SimpleNamespace(scene=SimpleNamespace(set_up_direction=scene_up.append),
                                                    get_clients=lambda: {1: client}),
                             client_view=Viewer.client_view)
    Viewer._reset_up(viewer, client)
    R = look_at_rotation(cam.position, cam.look_at, up=[0, -1, 0.2])
    np.testing.assert_allclose(viewer.up, -R[:, 1], atol=1e-12)
    np.testing.assert_allclose(cam.up_direction, -R[:, 1], atol=1e-12)
    np.testing.assert_allclose(scene_up[0], -R[:, 1], atol=1e-12)


def test_a_bad_up_axis_is_a_one_line_error(capsys):
    from helpers import SCENES, cli_error

    cli_error(capsys, ["view", SCENES / "set" / "film.yaml", "--up=-q"], "--up")


@pytest.mark.parametrize("canvas, frame_px", [((1596, 640), (1138, 640)), ((636, 400), (636, 358))])
def test_looking_through_marks_the_frame_on_the_canvas(canvas, frame_px):
    """sh020 (16:9) on a 1596 x 640 canvas: the frame is the central 1138 px, 229 px each side
    were drawn unmarked; a narrow canvas had unmarked rows. The mask's hole is the frame, its
    edge a band just outside, and the mask covers the rest of the canvas."""
    from splatfilm.view.camera import canvas_vfov, frame_mask

    w, h = canvas
    frame = 16 / 9
    vfov = canvas_vfov(math.radians(30), frame, w / h)
    view = ViewerCamera([0.3, -2, 1.2], [0.8, -0.6, 0, 0], vfov, [0, 0, 1], w / h)
    edge_px = 2.0
    d = 0.05
    edge = edge_px * 2 * d * math.tan(vfov / 2) / h
    mask, band, faces = frame_mask(view, frame, d, edge)
    K = canvas_camera(view, w, h).Ks[0]

    def pixels(v):  # camera-frame vertices -> canvas pixels
        return (K @ v.T).T[:, :2] / v[:, 2:3]

    fw, fh = frame_px
    hole = pixels(band[:4])
    np.testing.assert_allclose(hole.min(0), [(w - fw) / 2, (h - fh) / 2], atol=0.6)
    np.testing.assert_allclose(hole.max(0), [(w + fw) / 2, (h + fh) / 2], atol=0.6)
    np.testing.assert_allclose(pixels(band[4:]).min(0), hole.min(0) - edge_px, atol=1e-6)
    np.testing.assert_allclose(pixels(mask[:4]), pixels(band[4:]), atol=1e-9)
    outer = pixels(mask[4:])
    assert (outer.min(0) < [-w, -h]).all() and (outer.max(0) > [2 * w, 2 * h]).all()
    # The faces tile the ring: its area is the outer square's less the hole.
    def area(v):
        p = v[:, :2]
        cross = lambda u, v: u[0] * v[1] - u[1] * v[0]
        return sum(0.5 * abs(cross(p[b] - p[a], p[c] - p[a])) for a, b, c in faces)

    span = lambda v: np.ptp(v[:, 0]) * np.ptp(v[:, 1])
    assert area(mask) == pytest.approx(span(mask[4:]) - span(mask[:4]))
    assert area(band) == pytest.approx(span(band[4:]) - span(band[:4]))


@pytest.mark.parametrize("stop, status", [("interrupt", 130), ("terminate", 143)])
def test_ctrl_c_and_sigterm_end_the_viewer_as_every_command_ends(monkeypatch, capsys, tmp_path, stop, status):
    """`view` swallowed both stops and exited 0; now 130 / 143 as the README says, with a
    warning where keys had changes not saved."""
    from types import SimpleNamespace

    import splatfilm.cli.view as cli_view
    from splatfilm.view import app
    from splatfilm.cli import Terminated, main

    save_gaussians(tmp_path / "scene.ply", random_gaussians(200, sh_degree=0, dtype=torch.float32))

    class KeyedViewer(app.Viewer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_key(ViewerCamera([0, -3, 1], [0.7071068, -0.7071068, 0, 0], 0.8, [0, 0, 1]))

    def sleep(_seconds):
        raise Terminated() if stop == "terminate" else KeyboardInterrupt()

    monkeypatch.setattr(app, "Viewer", KeyedViewer)
    monkeypatch.setattr(cli_view, "time", SimpleNamespace(sleep=sleep))
    assert main(["view", str(tmp_path / "scene.ply"), "--port", str(free_port())]) == status
    err = capsys.readouterr().err
    assert "note: 1 key(s) of sh010 had changes not saved" in err


def test_a_moving_asset_sends_the_same_gaussians_at_every_time(demo_session, viewers):
    """Under --max-splats a moving asset's subset was re-ranked every frame from its posed
    scales, so Gaussians near the cut came and went as it moved (flicker): it is picked once."""
    from splatfilm.view.splats import splat_arrays

    v = viewers(demo_session, max_splats=20000)
    ids = v.sent_ids["hero"]
    assert ids is not None and len(ids) == v.sent["hero"]
    for t in (1.0, 2.0):
        v.request(demo_session.frame_of(t))
        assert v.wait_idle()
        assert v.sent_ids["hero"] is ids
        posed = demo_session.moving_gaussians(t, demo_session.eye(t, None))["hero"]
        want = splat_arrays(posed.select(ids)).as_args()[0]
        np.testing.assert_array_equal(v.moving_nodes["hero"].buffer[:, :3].copy().view(np.float32), want)


def test_most_visible_ids_partitions_and_keeps_the_stable_sorts_pick(monkeypatch):
    """`view` took 14.5 s to serve 6M Gaussians, most of it sorting: each row's three scales,
    then every score. A partition picks the same subset: ties (here many: scales on a grid)
    in file order, as the stable sort kept them."""
    from splatfilm.view.splats import most_visible_ids, visibility

    g = random_gaussians(2000, sh_degree=0, dtype=torch.float32, seed=5)
    g.scales = torch.log(torch.exp(g.scales).mul(4).round().clamp_min(1) / 4)
    g.opacities = torch.where(torch.arange(2000) % 3 == 0, 0.0, 2.0)
    s = np.sort(g.activated_scales.double().numpy(), axis=1)
    score = g.activated_opacities.double().numpy() * s[:, 1] * s[:, 2]
    np.testing.assert_array_equal(visibility(g), score)
    picks = {k: np.sort(np.argsort(-score, kind="stable")[:k]) for k in (0, 1, 37, 700, 1999)}
    assert len(np.unique(score)) < 200  # ties at the cut

    def no_sort(*args, **kwargs):
        raise AssertionError("sorted every Gaussian")

    monkeypatch.setattr(np, "argsort", no_sort)
    monkeypatch.setattr(torch, "sort", no_sort)
    for k, want in picks.items():
        np.testing.assert_array_equal(most_visible_ids(g, k).numpy(), want)
    assert most_visible_ids(g, 2000) is None


def test_most_visible_ids_ranks_a_nan_score_last_as_the_stable_sort_did():
    """A NaN score (a NaN opacity here; 0 * inf from a float32 scale overflowing at zero
    opacity) sorts last: the partition's cut falls on one when fewer numbers than asked are
    there, and every number must still be kept (it kept only the NaNs)."""
    from splatfilm.view.splats import most_visible_ids, visibility

    g = random_gaussians(6, sh_degree=0, dtype=torch.float32, seed=5)
    g.opacities = torch.tensor([0.0, 1.0, 2.0, 3.0, float("nan"), float("nan")])
    score = visibility(g)
    assert np.isnan(score).sum() == 2
    for k in (1, 4, 5):
        np.testing.assert_array_equal(most_visible_ids(g, k).numpy(), np.sort(np.argsort(-score, kind="stable")[:k]))
