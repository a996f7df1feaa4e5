"""Pinhole views of lens images: a fisheye or panorama render resampled into a pinhole view
shows what a pinhole render from that view shows; OPENCV photos undistorted for fitting as the
whole-image float64 undistortion did, with one float32 map per camera and little memory."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import REPO, look_at, random_gaussians, traced_peak

from splatfilm.errors import SplatfilmError
from splatfilm.fit import lens_views, load_capture
from splatfilm.fit.init import carve_by_masks, points_where_views_agree
from splatfilm.fit.lens_views import pinhole_views
from splatfilm.io.camera_files import read_colmap, write_transforms_json
from splatfilm.io.images import to_uint8
from splatfilm.render import rasterization
from splatfilm.render.metrics import psnr
from splatfilm.scene.cameras import Cameras


def _scene():
    # Gaussians all around the origin, where the cameras stand: every direction sees some.
    return random_gaussians(600, sh_degree=0, dtype=torch.float32, seed=3, spread=1.5, log_scale=(-2.5, 0.3),
                            opacity=(0.6, 0.95))


def _render(g, cams: Cameras, i: int) -> np.ndarray:
    return to_uint8(rasterization(g, **cams[i].render_arguments(), backend="cpu").rgb[0].numpy())


def _psnr(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> float:
    t = lambda x: torch.from_numpy(x).float() / 255  # noqa: E731
    return float(psnr(t(a), t(b), torch.from_numpy(valid).float()))


def test_fisheye_and_panorama_resample_into_what_a_pinhole_sees():
    g = _scene()
    pose = look_at((0.3, -0.2, 0.1), (1.0, 2.0, 0.3)).numpy()
    fisheye = Cameras(pose, np.array([[60.0, 0, 64], [0, 60.0, 48], [0, 0, 1]]), 128, 96,
                      [0.05, -0.02, 0.004, -0.001, 0, 0], "OPENCV_FISHEYE")
    pano = Cameras(pose, np.array([[256 / (2 * math.pi), 0, 128], [0, 128 / math.pi, 64], [0, 0, 1]]), 256, 128,
                   None, "EQUIRECTANGULAR")
    cams = Cameras.concat([fisheye, pano])
    views = pinhole_views(cams, [_render(g, cams, 0), _render(g, cams, 1)])
    assert views.source.tolist() == [0] + [1] * 6
    assert set(views.cameras.camera_model) == {"PINHOLE"}
    # The fisheye's view: the same pose and intrinsics; the cube faces share the panorama's centre.
    np.testing.assert_allclose(views.cameras.viewmats[0], fisheye.viewmats[0])
    np.testing.assert_allclose(views.cameras.centers[1:], np.repeat(pano.centers, 6, axis=0), atol=1e-9)
    scores = []
    for v in range(len(views.cameras)):
        assert views.valid[v].mean() > 0.95
        truth = _render(g, views.cameras, v)
        scores.append(_psnr(views.images[v], truth, views.valid[v]))
    # Resampling blurs a little (the panorama has ~41 pixels per radian, its faces as many in
    # their centre and more at their edges), but every view shows the same scene in place.
    assert min(scores) > 21.0, scores
    # A face compared with its neighbour's pinhole render (another direction) is far off: the
    # test would notice a face rotated the wrong way.
    wrong = _psnr(views.images[1], _render(g, views.cameras, 2)[:, :, :], views.valid[1])
    assert wrong < min(scores) - 8.0, (wrong, scores)


def test_pinhole_searches_refuse_lens_cameras_and_carving_uses_the_lens():
    pose = look_at((0.0, -3.0, 0.0), (0.0, 0.0, 0.0)).numpy()
    K = np.array([[20.0, 0, 32], [0, 20.0, 24], [0, 0, 1]])
    fisheye = Cameras(pose, K, 64, 48, [0.1, 0, 0, 0, 0, 0], "OPENCV_FISHEYE")
    with pytest.raises(SplatfilmError, match="PINHOLE cameras, got OPENCV_FISHEYE"):
        points_where_views_agree(fisheye, [np.zeros((48, 64, 3), np.uint8)], [0], 10, np.random.default_rng(0))
    # A point 70 degrees off the axis: outside a pinhole's image at this focal length, inside the fisheye's.
    a = math.radians(70)
    point = np.array([[3.0 * math.sin(a), -3.0 + 3.0 * math.cos(a), 0.0]])
    mask = np.ones((48, 64, 1), np.float32)
    assert carve_by_masks(point, fisheye, [mask]).tolist() == [True]
    mask[:, 48:] = 0  # the right quarter of the fisheye image is not the object
    assert carve_by_masks(point, fisheye, [mask]).tolist() == [False]


FLOWERPOT = REPO / "tests" / "fixtures" / "flowerpot"


def _phone_capture(folder, photos: list[int], turned: set[int] = frozenset(), scale: int = 1) -> Cameras:
    """A transforms.json capture of the flowerpot fixture's OPENCV photos (indices into its
    model), enlarged `scale` times with the intrinsics scaled alike; the i-th in `turned` turned
    a quarter clockwise with its camera (a phone's landscape photo beside portrait ones)."""
    from PIL import Image

    model = read_colmap(FLOWERPOT / "sparse" / "0")
    (folder / "images").mkdir(parents=True)
    cams = []
    for i, j in enumerate(photos):
        src = model[j]
        w, h = int(src.widths[0]) * scale, int(src.heights[0]) * scale
        K = src.Ks[0] * np.array([[scale], [scale], [1.0]])
        d = src.distortion[0]
        photo = Image.open(FLOWERPOT / "images" / src.names[0]).convert("RGB")
        pixels = np.asarray(photo.resize((w, h), Image.BICUBIC) if scale != 1 else photo)
        viewmat = src.viewmats[0]
        if i in turned:  # x' = h - y, y' = x; in the camera (X, Y) -> (-Y, X)
            pixels = np.rot90(pixels, -1)
            K = np.array([[K[1, 1], 0, h - K[1, 2]], [0, K[0, 0], K[0, 2]], [0, 0, 1]])
            d = np.array([d[0], d[1], d[2], d[3], d[5], -d[4]])
            turn = np.eye(4)
            turn[:2, :2] = [[0, -1], [1, 0]]
            viewmat = turn @ viewmat
            w, h = h, w
        name = f"images/{i:02d}.png"
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / name)
        cams.append(Cameras(viewmat[None], K[None], w, h, d[None], "OPENCV", [name]))
    cams = Cameras.concat(cams)
    write_transforms_json(folder / "transforms.json", cams)
    return cams


def _undistorted_before(photo: np.ndarray, K: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The undistortion splatfilm did before (the whole image at once in float64, and nerfstudio's
    r^8 term k4): image, valid."""
    h, w = photo.shape[:2]
    k1, k2, k3, k4, p1, p2 = d
    xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = (xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2 + k4 * r2**4
    u = (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)) * K[0, 0] + K[0, 2] - 0.5
    v = (y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y) * K[1, 1] + K[1, 2] - 0.5
    inside = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
    u, v = np.clip(u, 0, w - 1), np.clip(v, 0, h - 1)
    u0, v0 = np.minimum(np.floor(u).astype(int), w - 2), np.minimum(np.floor(v).astype(int), h - 2)
    fu, fv = (u - u0)[..., None], (v - v0)[..., None]
    im = photo.astype(np.float32)
    top = im[v0, u0] * (1 - fu) + im[v0, u0 + 1] * fu
    bot = im[v0 + 1, u0] * (1 - fu) + im[v0 + 1, u0 + 1] * fu
    return np.clip(top * (1 - fv) + bot * fv + 0.5, 0, 255).astype(np.uint8), inside[..., None]


def test_phone_photos_undistort_as_before_with_one_map_per_camera(tmp_path, monkeypatch):
    """Portrait and landscape photos (two cameras, interleaved): one map each, however many
    photos; every image as the whole-image float64 undistortion gave it, within float32
    rounding of the map (a level here and there); a turned photo's image is the turned image."""
    import imageio.v3 as iio

    cams = _phone_capture(tmp_path / "cap", [0, 0, 1, 1, 2], turned={1, 3})
    made = []
    make = getattr(lens_views, "lens_map", None)

    def counted(camera, *args, **kwargs):
        made.append((int(camera.widths[0]), int(camera.heights[0])))
        return make(camera, *args, **kwargs)

    monkeypatch.setattr(lens_views, "lens_map", counted, raising=False)
    cap = load_capture(tmp_path / "cap", tmp_path / "w")
    assert sorted(made) == [(388, 524), (524, 388)]
    assert set(cap.cameras.camera_model) == {"PINHOLE"} and cap.valid is not None
    for i in range(len(cap)):
        want, valid = _undistorted_before(iio.imread(tmp_path / "cap" / cams.names[i]), cams.Ks[i], cams.distortion[i])
        diff = np.abs(cap.images[i].astype(int) - want)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (i, diff.max(), (diff > 0).mean())
        assert np.array_equal(cap.valid[i], valid), i
        assert 0.9 < valid.mean() < 1.0  # the photos' barrel distortion leaves the corners empty
    for portrait, landscape in ((0, 1), (2, 3)):
        turned = np.rot90(cap.images[portrait], -1)
        assert np.abs(cap.images[landscape].astype(int) - turned).max() <= 1
        assert np.array_equal(cap.valid[landscape], np.rot90(cap.valid[portrait], -1))


def test_undistorting_a_photo_needs_its_map_not_gigabytes(tmp_path):
    """Loading two 1164x1572 OPENCV photos (1.8 MP) peaks at a few times the photos' own bytes
    (the float32 map, 9 bytes a pixel, and bands of working space): the whole-image float64
    undistortion took about 200 bytes a pixel (2.4 GB for a 12 MP phone photo)."""
    cams = _phone_capture(tmp_path / "cap", [0, 1], scale=3)
    pixels = int(cams.widths[0]) * int(cams.heights[0])
    load_capture(tmp_path / "cap", tmp_path / "w", max_size=64)  # imports and caches outside the count
    cap, peak = traced_peak(lambda: load_capture(tmp_path / "cap", tmp_path / "w"))
    assert cap.images[0].shape == (1572, 1164, 3)
    assert peak < 30 * pixels, f"{peak / pixels:.0f} bytes a pixel"


def test_an_opencv_k4_is_undistorted_with_its_r8_term(tmp_path):
    """nerfstudio's OPENCV k4 (the r^8 term the renderer draws) is undistorted with the rest; it
    was refused as "only used by fisheye cameras"."""
    import imageio.v3 as iio

    cams = _phone_capture(tmp_path / "cap", [0])
    d = cams.distortion[0].copy()
    d[3] = 2.0
    meta = json.loads((tmp_path / "cap" / "transforms.json").read_text())
    (tmp_path / "cap" / "transforms.json").write_text(json.dumps({**meta, "k4": 2.0}))
    cap = load_capture(tmp_path / "cap", tmp_path / "w")
    photo = iio.imread(tmp_path / "cap" / cams.names[0])
    want, valid = _undistorted_before(photo, cams.Ks[0], d)
    without, _ = _undistorted_before(photo, cams.Ks[0], cams.distortion[0])
    assert np.array_equal(cap.valid[0], valid)
    diff = np.abs(cap.images[0].astype(int) - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
    assert (np.abs(without.astype(int) - want).max(-1) > 8).mean() > 0.05  # k4 moves the corners
