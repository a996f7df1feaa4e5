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
    assert lens.image_height_mm == pytest.approx(20.25)
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
    with pytest.raises(SplatfilmError, match="squeeze 2 makes them 2"):
        Lens.from_K(K, 1920, 1080, squeeze=2)


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


def test_a_film_back_with_a_height_and_a_fit_frames_as_maya_and_blender_do():
    # Before backs had heights: no `sensor_height_mm` or `sensor_fit` (TypeError).
    wide = {"focal_mm": 35.0, "width": 1920, "height": 800, "sensor_width_mm": 24.89, "sensor_height_mm": 18.67}
    across = float(focal_mm_to_fov_deg(35.0, 24.89))  # 39.15 degrees across the back's width
    down = float(focal_mm_to_fov_deg(35.0, 18.67))    # 29.85 degrees down its height
    h = Lens(**wide)  # horizontal, the default: the image spans the back's width
    assert h.hfov_deg == pytest.approx(across) and h.image_height_mm == pytest.approx(24.89 / 2.4)
    v = Lens(**wide, sensor_fit="vertical")  # the image spans the back's height
    assert v.vfov_deg == pytest.approx(down) and v.image_width_mm == pytest.approx(18.67 * 2.4)
    assert v.K()[1, 1] == pytest.approx(35.0 / 18.67 * 800)
    # A 2.4:1 image is wider than the 1.33:1 back: fill fits it inside (horizontal),
    # overscan holds the back inside it (vertical); a tall image the other way round.
    assert Lens(**wide, sensor_fit="fill").hfov_deg == pytest.approx(across)
    assert Lens(**wide, sensor_fit="overscan").vfov_deg == pytest.approx(down)
    tall = {**wide, "width": 800, "height": 1920}
    assert Lens(**tall, sensor_fit="fill").vfov_deg == pytest.approx(down)
    assert Lens(**tall, sensor_fit="overscan").hfov_deg == pytest.approx(across)
    # from_fov measures the field across the fitted dimension.
    assert Lens.from_fov(40.0, "vertical", **{k: v for k, v in wide.items() if k != "focal_mm"},
                         sensor_fit="vertical").vfov_deg == pytest.approx(40.0)
    # Without a height the back has the image's aspect: every fit is today's, bit for bit.
    for fit in ("horizontal", "vertical", "fill", "overscan"):
        old = Lens(focal_mm=35.0, width=1920, height=800, sensor_fit=fit)
        assert old.K().tobytes() == Lens(focal_mm=35.0, width=1920, height=800).K().tobytes()
        assert old.image_height_mm == 36.0 * 800 / 1920 and old.back_height_mm == 36.0 * 800 / 1920
    with pytest.raises(SplatfilmError, match="sensor_fit must be one of"):
        Lens(sensor_fit="auto")
    with pytest.raises(SplatfilmError, match="sensor_height_mm must be a finite number > 0"):
        Lens(sensor_height_mm=0)
