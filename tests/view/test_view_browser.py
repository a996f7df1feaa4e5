"""`splatfilm view` in a real headless Chromium (the system's; skipped with the reason where it
or chromedriver is absent): the demo film's splats draw and look like splatfilm's own render of
the same camera, the walking character moves when the timeline moves, and two keys added with
the page's buttons save as a shot file that reproduces them. Screenshots of each step go to the
test's tmp folder."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

import chromium
from splatfilm.shots.shot_yaml import load_shot
from splatfilm.view.authoring import REPRODUCE_TOLERANCE
from splatfilm.view.camera import ViewerCamera, canvas_camera, frame_vfov
from splatfilm.view.ports import free_port

pytestmark = pytest.mark.skipif(chromium.missing() is not None, reason=chromium.missing() or "")

# Browser splats (view-independent colour, their own sort and footprint) against splatfilm's
# render: the same image, loosely; an unrelated image or a blank canvas scores well below.
MIN_CORRELATION = 0.75


def _grey(rgb: np.ndarray, size=(96, 60)) -> np.ndarray:
    im = Image.fromarray(rgb.astype(np.uint8)).convert("L").resize(size, Image.BOX)
    return np.asarray(im, dtype=np.float64)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two RGB images, greyscale and downsized to 96 x 60."""
    x, y = _grey(a).ravel(), _grey(b).ravel()
    x, y = x - x.mean(), y - y.mean()
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))


# Seconds to wait for the server or the page to get somewhere (a condition, polled): generous,
# as chromium.CALL_TIMEOUT_S is, for a loaded runner; a passing run waits only as long as it takes.
WAIT_S = 120.0


def _wait_for(condition, timeout: float = WAIT_S) -> bool:
    """Poll `condition()` until it holds (True) or `timeout` seconds pass (False)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


def _client(viewer, timeout=WAIT_S):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        clients = list(viewer.server.get_clients().values())
        if clients:
            return clients[0]
        time.sleep(0.2)
    raise TimeoutError("the page never connected to the viewer")


def _drawn_canvas(d, path, timeout=WAIT_S, ready=None) -> np.ndarray:
    """The canvas once the splats are drawn (the background alone is flat), `ready` (the canvas
    [H,W,3] -> bool) holds if given, and the page has settled: two screenshots two frames apart
    alike. What the server sent reaches the page in pieces (the mask, then a moving asset's
    splats, sorted off the main thread a few frames later), so one change seen on the canvas
    is not yet all of them. Past `timeout` the last screenshot, as it is."""
    end = time.monotonic() + timeout
    last = None
    while True:
        chromium.after_frames(d, 2)
        shot = chromium.canvas_png(d, path)
        drawn = _grey(shot).std() > 12 and (ready is None or ready(shot))
        if (drawn and last is not None and np.array_equal(shot, last)) or time.monotonic() > end:
            return shot
        last = shot if drawn else None


@pytest.fixture(scope="module")
def viewer(demo_session):
    from splatfilm.view.app import Viewer

    v = Viewer(demo_session, "127.0.0.1", free_port(), backend="cpu")
    yield v
    v.stop()


@pytest.fixture(scope="module")
def browser(viewer):
    d = chromium.open_browser(viewer.url)
    yield d
    chromium.close_browser(d)


def test_the_page_draws_the_film_as_splatfilm_renders_it(viewer, browser, tmp_path):
    d = browser
    client = _client(viewer)
    chromium.wait_for_canvas(d)
    chromium.close_notifications(d)
    viewer.guides_box.value = False  # the comparison is of the splats alone
    viewer.look_dropdown.value = "sh010"
    assert viewer.wait_idle(WAIT_S)
    # The frame's mask reaches the page after the splats (the top rows flat and dark once it has).
    shot = _drawn_canvas(d, tmp_path / "1_look_through_sh010.png",
                         ready=lambda s: s[:12].mean() < 20 and s[:12].mean(-1).std() < 6)
    view = Viewer_view(client)
    h, w = shot.shape[:2]
    assert abs(w / h - view.aspect) < 0.02, (shot.shape, view.aspect)
    # The browser's camera is the shot's camera at the frame: same pose, and the whole frame in
    # sight: the same vertical field on a canvas as wide as the frame, its width spanning the
    # frame's on this narrower one (the panel takes a third of the 960 px window).
    fs = viewer.session.shot_named("sh010")
    want = viewer.session.shot_camera(fs, viewer.session.time_of(viewer.frame))
    np.testing.assert_allclose(view.position, want.centers[0], atol=1e-4)
    frame_aspect = viewer.session.width / viewer.session.height
    assert view.aspect < frame_aspect
    assert frame_vfov(view, frame_aspect) == pytest.approx(2 * np.arctan(180 / want.fy[0]), abs=1e-4)
    assert view.vfov > 2 * np.arctan(180 / want.fy[0]) + 0.01
    # The frame is marked: the rows above and below it (this canvas is narrower than the frame)
    # are masked, dark and flat (the mask hides the splats behind it: no set drawn there), and
    # its edge is a light band just outside it. They were drawn unmarked.
    rows = (h - w / frame_aspect) / 2
    grey = shot.astype(np.float64).mean(-1)
    outside = np.concatenate([grey[:int(rows) - 3], grey[h - int(rows) + 3:]])
    inside = grey[int(rows) + 3:h - int(rows) - 3]
    edge = max(grey[r].mean() for r in range(int(rows) - 3, int(rows) + 1))
    print(f"frame rows {rows:.1f} each side: outside mean {outside.mean():.1f} std {outside.std():.1f}, "
          f"edge {edge:.1f}, inside mean {inside.mean():.1f}")
    assert outside.mean() < 20 and outside.std() < 6 and inside.mean() > 40
    assert edge > outside.mean() + 80
    ours = viewer.renders.camera(canvas_camera(view, w, h), viewer.session.time_of(viewer.frame), fs.visible)
    ours = (np.clip(ours, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(ours).save(tmp_path / "1_splatfilm_render.png")
    band = slice(int(rows) + 3, h - int(rows) - 3)  # the frame, which the mask leaves as drawn
    shot, ours = shot[band], ours[band]
    r = correlation(shot, ours)
    blank = correlation(np.roll(ours, w // 3, axis=1), ours)
    print(f"correlation browser vs splatfilm {r:.3f} (shifted third: {blank:.3f}); screenshots in {tmp_path}")
    assert r > MIN_CORRELATION and r > blank + 0.2


def Viewer_view(client) -> ViewerCamera:
    from splatfilm.view.app import Viewer

    return Viewer.client_view(client)


def test_the_walking_character_moves_with_the_timeline(viewer, browser, tmp_path):
    d = browser
    viewer.look_dropdown.value = "free camera"
    s = viewer.session
    viewer.request(s.frame_of(0.6))
    assert viewer.wait_idle(WAIT_S)
    client = _client(viewer)
    view = Viewer_view(client)
    before = _drawn_canvas(d, tmp_path / "2_t0.6.png", ready=lambda s: s[:12].mean() > 40)
    # Out of look-through, the frame's mask is gone: the set is drawn to the canvas's edges.
    assert not viewer._masks and before[:12].mean() > 40
    frame = viewer.frame
    chromium.click_button(d, "▶▶")  # to the next cut: sh020 at 2.5 s
    _wait_for(lambda: viewer.frame != frame)
    assert viewer.wait_idle(WAIT_S) and viewer.frame == s.marks()[1][0]
    # The server has sent the new frame's splats; the page may draw them a few frames later.
    after = _drawn_canvas(d, tmp_path / "3_t2.5.png",
                          ready=lambda s: np.abs(s.astype(float) - before.astype(float)).mean() > 0.5)
    h, w = before.shape[:2]
    cams = canvas_camera(view, w, h)
    diff = np.abs(before.astype(float) - after.astype(float)).mean(-1)
    hero = s.world.assets["hero"]

    def box(t):
        p = hero.place_at(t).translation + np.array([0, 0, 0.5])
        q = cams.viewmats[0] @ np.append(p, 1.0)
        u, v = (cams.Ks[0] @ q[:3])[:2] / q[2]
        r = int(0.45 * cams.fy[0] / q[2])  # half a metre around his middle
        return slice(max(0, int(v) - r), max(0, int(v) + r)), slice(max(0, int(u) - r), max(0, int(u) + r))

    where = [box(0.6), box(2.5)]
    assert all(diff[b].size for b in where), "the character is out of the starting view"
    moved = max(float(diff[b].mean()) for b in where)
    mask = np.ones_like(diff, dtype=bool)
    for b in where:
        mask[b] = False
    print(f"mean change where he was / is {moved:.1f}, elsewhere {diff[mask].mean():.1f}")
    assert moved > 8.0 and moved > 3 * float(diff[mask].mean())


def test_two_keys_from_the_page_save_a_shot_that_reproduces_them(viewer, browser, tmp_path):
    d = browser
    t0 = time.monotonic()
    client = _client(viewer)
    viewer.save_text.value = str(tmp_path / "sh040.yaml")
    poses = [([0.6, -3.1, 1.6], [0.0, 0.3, 0.9]), ([1.4, -2.4, 1.45], [-0.2, 0.2, 0.8])]
    for k, (position, target) in enumerate(poses):
        with client.atomic():
            client.camera.up_direction = (0.0, 0.0, 1.0)
            client.camera.position = position
            client.camera.look_at = target
        chromium.after_frames(d, 1)  # the page takes the camera and reports it back
        print(f"{time.monotonic() - t0:.1f} s: camera set")
        chromium.click_button(d, "Add key")
        print(f"{time.monotonic() - t0:.1f} s: clicked Add key")
        _wait_for(lambda: len(viewer.keyed.keys) >= k + 1)
        assert len(viewer.keyed.keys) == k + 1, viewer.status
        if k == 0:
            chromium.click_button(d, "▶▶")
            # The second key goes at the frame the click moved to (at the first key's time it
            # would replace the first); the frame is set before the lock "Add key" waits on.
            assert _wait_for(lambda: viewer.session.time_of(viewer.frame) > viewer.keyed.keys[0].time), viewer.status
    print(f"{time.monotonic() - t0:.1f} s: keyed")
    chromium.canvas_png(d, tmp_path / "4_two_keys.png")
    chromium.click_button(d, "Save shot file")
    print(f"{time.monotonic() - t0:.1f} s: clicked save")
    out = tmp_path / "sh040.yaml"
    assert _wait_for(out.exists), viewer.status
    shot = load_shot(out)
    keys = viewer.keyed.keys
    times = np.array([k.time - keys[0].time for k in keys])
    got = shot.sample(times).to_cameras(shot.lens)
    want = viewer.keyed.key_cameras(viewer.session.lens)
    assert np.abs(got.to_c2w_opencv() - want.to_c2w_opencv()).max() < REPRODUCE_TOLERANCE
    # The keys are where the browser's camera was: the positions set, looking at the targets.
    for (position, target), c2w in zip(poses, got.to_c2w_opencv()):
        np.testing.assert_allclose(c2w[:3, 3], position, atol=1e-3)
        forward = np.subtract(target, position) / np.linalg.norm(np.subtract(target, position))
        assert c2w[:3, 2] @ forward > 0.9999
    print(out.read_text())
