"""Film lenses: millimetres <-> pixels <-> field of view, and the intrinsics they make."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from splatfilm.errors import SplatfilmError
from splatfilm.shots import Lens, fov_deg_to_focal_mm, parse_fps
from splatfilm.shots.lens import focal_mm_to_fov_deg, focal_mm_to_pixels, pixels_to_focal_mm


def test_focal_mm_to_pixels_follows_conventions():
    # docs/CONVENTIONS.md: fx_pixels = focal_mm / sensor_width_mm * width_pixels
    assert focal_mm_to_pixels(35.0, 1920) == pytest.approx(35 / 36 * 1920)
    assert focal_mm_to_pixels(50.0, 4000, 23.5) == pytest.approx(50 / 23.5 * 4000)
    assert pixels_to_focal_mm(focal_mm_to_pixels(35.0, 1920), 1920) == pytest.approx(35.0)


def test_full_frame_fields_of_view():
    # Well-known full-frame values: 50 mm is 39.6 degrees across, 24 mm is 73.7.
    assert focal_mm_to_fov_deg(50.0) == pytest.approx(39.5978, abs=1e-4)
    assert focal_mm_to_fov_deg(24.0) == pytest.approx(73.7398, abs=1e-4)
    assert fov_deg_to_focal_mm(focal_mm_to_fov_deg(35.0)) == pytest.approx(35.0)


def test_lens_intrinsics_and_fovs():
    lens = Lens(focal_mm=35.0, width=1920, height=1080)
    K = lens.K()
    assert K[0, 0] == K[1, 1] == pytest.approx(1866.6666667)
    assert (K[0, 2], K[1, 2], K[2, 2]) == (960.0, 540.0, 1.0)
    assert lens.sensor_height_mm == pytest.approx(20.25)
    # The vertical fov is what nerfstudio's camera path stores; it matches the pixel focal.
    assert np.tan(np.radians(lens.vfov_deg) / 2) == pytest.approx(540 / K[1, 1])
    assert np.tan(np.radians(lens.hfov_deg) / 2) == pytest.approx(960 / K[0, 0])
    Ks = lens.K(np.array([24.0, 50.0]))
    assert Ks.shape == (2, 3, 3) and Ks[1, 0, 0] == pytest.approx(50 / 36 * 1920)


def test_lens_from_fov_and_from_K_round_trip():
    h = Lens.from_fov(60.0, "horizontal", width=1280, height=720)
    assert h.hfov_deg == pytest.approx(60.0)
    v = Lens.from_fov(40.0, "vertical", width=1280, height=720, sensor_width_mm=24.0)
    assert v.vfov_deg == pytest.approx(40.0) and v.sensor_width_mm == 24.0
    back = Lens.from_K(v.K(), 1280, 720, sensor_width_mm=24.0)
    assert back.focal_mm == pytest.approx(v.focal_mm)


@pytest.mark.parametrize("kwargs, match", [
    ({"focal_mm": 0}, "focal_mm"),
    ({"width": 0}, "width"),
    ({"near": 2.0, "far": 1.0}, "near"),
    ({"f_stop": -1.0}, "f_stop"),
])
def test_lens_rejects_bad_values(kwargs, match):
    with pytest.raises(SplatfilmError, match=match):
        Lens(**kwargs)


def test_from_K_rejects_what_a_film_lens_cannot_say():
    K = Lens().K()
    K[0, 2] += 3
    with pytest.raises(SplatfilmError, match="principal point"):
        Lens.from_K(K, 1920, 1080)
    K = Lens().K()
    K[1, 1] *= 1.1
    with pytest.raises(SplatfilmError, match="square"):
        Lens.from_K(K, 1920, 1080)


def test_parse_fps_is_exact():
    assert parse_fps(24) == 24
    assert parse_fps("24000/1001") == Fraction(24000, 1001)
    assert parse_fps(23.976) == Fraction(24000, 1001)
    assert parse_fps("29.97") == Fraction(30000, 1001)
    assert parse_fps(25.0) == 25
    # The two-decimal labels of the same rates: 23.98 was 1199/50, which a film refuses.
    assert parse_fps(23.98) == parse_fps("23.98") == Fraction(24000, 1001)
    assert (parse_fps(47.95), parse_fps(119.88)) == (Fraction(48000, 1001), Fraction(120000, 1001))
    assert parse_fps(23.9) == Fraction(239, 10) and parse_fps(24.0) == 24  # not every rate near one
    for bad in (0, -24, "fast", True, None):
        with pytest.raises(SplatfilmError):
            parse_fps(bad)
