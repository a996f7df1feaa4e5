"""Pinhole views of lens images: a fisheye or panorama render resampled into a pinhole view
shows what a pinhole render from that view shows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import look_at, random_gaussians

from splatfilm.errors import SplatfilmError
from splatfilm.fit.init import carve_by_masks, points_where_views_agree
from splatfilm.fit.lens_views import pinhole_views
from splatfilm.io.images import to_uint8
from splatfilm.render import render
from splatfilm.render.metrics import psnr
from splatfilm.scene.cameras import Cameras


def _scene():
    # Gaussians all around the origin, where the cameras stand: every direction sees some.
    return random_gaussians(600, sh_degree=0, dtype=torch.float32, seed=3, spread=1.5, log_scale=(-2.5, 0.3),
                            opacity=(0.6, 0.95))


def _render(g, cams: Cameras, i: int) -> np.ndarray:
    vm, K = cams[i].to_tensors()
    return to_uint8(render(g, vm, K, int(cams.widths[i]), int(cams.heights[i]), backend="cpu",
                           **cams.lens_arguments(i)).rgb[0].numpy())


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
