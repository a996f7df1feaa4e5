"""Lens effects (render.lens_effects): depth of field's blur follows the thin lens and keeps
the alpha a splat spreads over the image, in either rasterize mode; motion blur's sub-frame
times fill the open shutter evenly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from splatfilm.render import rasterization
from splatfilm.render.lens_effects import (
    apply_depth_of_field,
    circle_of_confusion_px,
    shutter_times,
)
from splatfilm.scene.gaussians import Gaussians

W, H, FOCAL_MM, SENSOR_MM = 160, 90, 35.0, 24.89
FX = FOCAL_MM / SENSOR_MM * W
# The camera at the origin looking down +y (OpenCV axes: x right, y down, z forward).
VIEWMAT = torch.tensor([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]], dtype=torch.float64)
K = torch.tensor([[FX, 0, W / 2], [0, FX, H / 2], [0, 0, 1]], dtype=torch.float64)


def _specks(points: list[tuple[float, float]], size_m: float) -> Gaussians:
    """White round Gaussians of standard deviation size_m at (x, depth) metres, opacity 0.88."""
    n = len(points)
    means = torch.tensor([[x, z, 0.0] for x, z in points], dtype=torch.float64)
    return Gaussians(means, torch.tensor([[1.0, 0, 0, 0]] * n, dtype=torch.float64),
                     torch.full((n, 3), math.log(size_m), dtype=torch.float64), torch.full((n,), 2.0, dtype=torch.float64),
                     torch.full((n, 1, 3), 1.7725, dtype=torch.float64), torch.zeros((n, 0, 3), dtype=torch.float64))


def _alpha(g: Gaussians, mode) -> np.ndarray:
    return rasterization(g, VIEWMAT[None], K[None], W, H, backend="cpu", rasterize_mode=mode).alpha[0, ..., 0].numpy()


def _defocus(g: Gaussians, f_stop: float, mode) -> Gaussians:
    modal = {} if isinstance(mode, str) and mode == "classic" else {"rasterize_mode": mode}  # classic: the default
    return apply_depth_of_field(g, VIEWMAT, K, W, H, FOCAL_MM, f_stop, 2.0, SENSOR_MM, **modal)


@pytest.mark.parametrize("mode", ["classic", "antialiased", "mixed"])
def test_an_out_of_focus_speck_blooms_and_keeps_its_alpha(mode):
    """A 1.5 mm highlight 8 m out, focused at 2 m (own sigma 0.04 px, CoC 3 px): its sharp
    footprint is almost all the renderer's 0.3 px^2 blur, which the opacity scaling left out,
    so it kept 2% of its summed alpha and vanished instead of blooming into bokeh. A 20 mm one
    beside it (1.1 px) checks the antialiased mode, whose compensation already takes that blur
    off: scaling by the blurred areas there would brighten it."""
    g = _specks([(-1.0, 8.0), (1.0, 8.0)], 0.0015)
    g = Gaussians(g.means, g.quats, torch.log(torch.tensor([[0.0015] * 3, [0.02] * 3], dtype=torch.float64)),
                  g.opacities, g.sh0, g.shN)
    rasterize = {"classic": "classic", "antialiased": "antialiased", "mixed": torch.tensor([False, True])}[mode]
    coc = circle_of_confusion_px(torch.tensor(8.0), FOCAL_MM, 1.0, 2.0, SENSOR_MM, W)
    assert 2.9 < float(coc) < 3.1
    sharp, soft = _alpha(g, rasterize), _alpha(_defocus(g, 1.0, rasterize), rasterize)
    # Antialiased, the 1.5 mm speck is below the renderer's 1/255 even in focus: the 20 mm one only.
    halves = [slice(W // 2, W)] if mode == "antialiased" else [slice(0, W // 2), slice(W // 2, W)]
    for half in halves:
        kept = soft[:, half].sum() / sharp[:, half].sum()
        assert soft[:, half].max() < 0.7 * sharp[:, half].max()  # spread out: bokeh, not a dot
        assert 0.93 < kept < 1.05, (half, kept)


def test_the_blur_is_the_thin_lens_circle_of_confusion():
    """Alpha's spread grows by (CoC / 4)^2 per axis: a point 8 m out at f/0.5 focused at 2 m
    (CoC 6 px) renders with variance own^2 + 0.3 + 1.5^2 px^2, less what the renderer's 1/255
    cut takes off its tails (alpha below it is not drawn)."""
    g = _specks([(0.0, 8.0)], 0.0015)
    coc = float(circle_of_confusion_px(torch.tensor(8.0), FOCAL_MM, 0.5, 2.0, SENSOR_MM, W))
    soft = _defocus(g, 0.5, "classic")
    a = _alpha(soft, "classic")
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    cx, cy = (a * xs).sum() / a.sum(), (a * ys).sum() / a.sum()
    var_x, var_y = (a * (xs - cx) ** 2).sum() / a.sum(), (a * (ys - cy) ** 2).sum() / a.sum()
    var = (0.0015 * FX / 8.0) ** 2 + 0.3 + (coc / 4.0) ** 2
    # A round Gaussian cut where it falls below 1/255: r^2 / var is chi-squared with 2 degrees
    # of freedom, kept below c, whose mean is 2 - c e^(-c/2) / (1 - e^(-c/2)).
    c = 2.0 * math.log(float(soft.activated_opacities[0]) * 255.0)
    expected = var * (1.0 - c * math.exp(-c / 2) / (2.0 * (1.0 - math.exp(-c / 2))))
    assert 5.9 < coc < 6.1 and abs(cx - W / 2) < 0.05 and abs(cy - H / 2) < 0.05
    for v in (var_x, var_y):
        assert abs(math.sqrt(v / expected) - 1.0) < 0.02, (v, expected)


@pytest.mark.parametrize("samples", [2, 5, 16])
def test_shutter_samples_fill_the_open_interval_evenly(samples):
    """One time at the middle of each of `samples` equal slices of the open shutter, so their
    spread is the open interval's own (a box's L^2 / 12, less 1 / samples^2 of it); sampling
    both ends stretched a streak to L sqrt((n + 1) / (12 (n - 1))) and lit its ends."""
    t, fps, deg = 1.25, 24.0, 180.0
    open_s = deg / 360.0 / fps
    times = np.array(shutter_times(t, fps, deg, samples))
    assert len(times) == samples and np.allclose(np.diff(times), open_s / samples)
    assert times.min() > t - open_s / 2 and times.max() < t + open_s / 2
    assert np.isclose(times.mean(), t)
    assert np.isclose(times.var(), open_s**2 / 12 * (1 - 1 / samples**2))
    assert shutter_times(t, fps, deg, 1) == [t]
