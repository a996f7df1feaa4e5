"""Anamorphic lenses (`lens: {squeeze: 2}`): the squeezed plate is rendered (fx = fy / squeeze)
and every output carries its pixel aspect: the EXR header, the movies' sample aspect ratio,
the USD render settings, transforms.json; contact sheets are shown desqueezed."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import cli_error

from splatfilm.errors import SplatfilmError
from splatfilm.film import FrameRenderer, RenderOptions, parse_film, render_film
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.render.lens_effects import apply_depth_of_field
from splatfilm.render.projection import project_gaussians, quat_scale_to_covar
from splatfilm.scene.gaussians import Gaussians
from splatfilm.shots import Lens


def _ball(radius: float = 0.2) -> Gaussians:
    """One round Gaussian (standard deviation `radius` metres) at the origin, white and opaque."""
    return Gaussians(torch.zeros((1, 3)), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), math.log(radius)),
                     torch.tensor([6.0]), torch.full((1, 1, 3), 1.7725), torch.zeros((1, 0, 3)))


def _ball_film(folder: Path, lens: dict, shots: int = 1, frames: int = 1) -> Path:
    save_gaussians(folder / "ball.ply", _ball())
    (folder / "film.yaml").write_text(yaml.safe_dump({
        "title": "ana", "fps": 24, "resolution": [96, 96], "lens": lens,
        "assets": {"ball": {"file": "ball.ply"}},
        "shots": [{"name": f"sh0{k + 1}0", "frames": frames, "camera": {"position": [0, -2.0, 0], "look_at": [0, 0, 0]}}
                  for k in range(shots)]}, sort_keys=False))
    return folder / "film.yaml"


def test_a_squeezed_lens_sees_squeeze_times_wider_on_the_same_back():
    sph = Lens(focal_mm=50, width=1920, height=1080)
    ana = Lens(focal_mm=50, width=1920, height=1080, squeeze=2)
    K, Ks = ana.K(), sph.K()
    assert K[1, 1] == Ks[1, 1] and K[0, 0] == pytest.approx(K[1, 1] / 2)  # fx = fy / squeeze
    assert (K[0, 2], K[1, 2]) == (960.0, 540.0)
    assert ana.vfov_deg == sph.vfov_deg
    assert math.tan(math.radians(ana.hfov_deg) / 2) == pytest.approx(2 * math.tan(math.radians(sph.hfov_deg) / 2))
    assert np.tan(np.radians(ana.hfov_deg) / 2) == pytest.approx(960 / K[0, 0])
    assert ana.display_aspect == pytest.approx(2 * 1920 / 1080)
    # A horizontal field of view is the desqueezed one.
    assert Lens.from_fov(90.0, width=1920, height=1080, squeeze=1.5).hfov_deg == pytest.approx(90.0)
    assert ana.K(np.array([25.0, 50.0]))[:, 0, 0] == pytest.approx(ana.K(np.array([25.0, 50.0]))[:, 1, 1] / 2)


@pytest.mark.parametrize("bad", [0, -1.5, math.inf, math.nan])
def test_a_bad_squeeze_is_refused(bad):
    with pytest.raises(SplatfilmError, match="squeeze must be a finite number > 0"):
        Lens(squeeze=bad)


@pytest.mark.parametrize("value, said", [(0, "must be > 0"), (".inf", "finite"), ("wide", "expected a number")])
def test_a_bad_squeeze_in_a_film_is_a_one_line_error(tmp_path, capsys, value, said):
    path = _ball_film(tmp_path, {"focal_mm": 35})
    path.write_text(path.read_text().replace("focal_mm: 35", f"focal_mm: 35\n  squeeze: {value}"))
    err = cli_error(capsys, ["render", path, "-o", tmp_path / "out"], name=path)
    assert "squeeze" in err and said in err


def test_a_film_mixing_squeezes_is_a_one_line_error(tmp_path, capsys):
    path = _ball_film(tmp_path, {"focal_mm": 35, "squeeze": 2}, shots=2)
    data = yaml.safe_load(path.read_text())
    data["shots"][1]["lens"] = {"squeeze": 1.5}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    err = cli_error(capsys, ["render", path, "-o", tmp_path / "out"], name=path)
    assert "shots[1].lens.squeeze" in err and "one anamorphic squeeze" in err, err


def _spread(alpha: np.ndarray) -> tuple[float, float]:
    """Standard deviations (pixels) of an alpha image [H,W] across (x) and down (y)."""
    ys, xs = np.mgrid[:alpha.shape[0], :alpha.shape[1]] + 0.5
    w = alpha / alpha.sum()
    mx, my = (w * xs).sum(), (w * ys).sum()
    return float(np.sqrt((w * (xs - mx) ** 2).sum())), float(np.sqrt((w * (ys - my) ** 2).sum()))


def test_an_anamorphic_camera_comes_back_in_as_its_lens():
    """K's fy / fx is the squeeze and fy the focal length (a 50 mm 2x, not a 25 mm; it was
    refused as "non-square pixels"); a squeeze said must match K's."""
    lens = Lens(focal_mm=50, width=320, height=180, squeeze=2)
    for back in (Lens.from_K(lens.K(), 320, 180), Lens.from_K(lens.K(), 320, 180, squeeze=2)):
        assert back.squeeze == 2 and back.focal_mm == pytest.approx(50)
        assert np.allclose(back.K(), lens.K())
    with pytest.raises(SplatfilmError, match="fy / fx = 2 .*squeeze 1.5"):
        Lens.from_K(lens.K(), 320, 180, squeeze=1.5)
    assert Lens.from_K(Lens(focal_mm=50).K(), 1920, 1080) == Lens(focal_mm=50)


@pytest.mark.parametrize("squeeze", [4 / 3, 1.0000015])
def test_a_squeeze_of_more_than_six_digits_comes_back_in_as_a_shot(squeeze):
    """Float32 cameras of a 4/3 squeeze (or one 1.5e-6 off square): shot_from_cameras checks
    every camera against the first's squeeze, which was rounded to 6 digits (1.33333, 2.5e-6
    off; 1) and refused them all ("fy / fx = 1.33333 ... squeeze 1.33333 makes them 1.33333")."""
    from splatfilm.scene.cameras import Cameras
    from splatfilm.shots.interchange import shot_from_cameras

    lens = Lens(focal_mm=50, width=320, height=180, squeeze=squeeze)
    K = lens.K().astype(np.float32)
    cams = Cameras(np.repeat(np.eye(4)[None], 2, 0), np.stack([K, K]), np.full(2, 320), np.full(2, 180))
    back = shot_from_cameras(cams, 24)
    assert back.lens.squeeze == pytest.approx(squeeze, rel=1e-6)
    assert back.cameras().Ks == pytest.approx(np.stack([K, K]), rel=1e-6)


def test_a_squeezed_usd_camera_comes_back_in_as_a_shot(tmp_path):
    """USD -> read_usd_camera -> shot_from_cameras: a 50 mm 2x, frame for frame."""
    pytest.importorskip("pxr")
    from splatfilm.shots.interchange import read_usd_camera, shot_from_cameras, write_usd_camera

    path = _ball_film(tmp_path, {"focal_mm": 50, "squeeze": 2}, frames=3)
    shot = parse_film(path).shots[0].shot
    write_usd_camera(tmp_path / "sh010.usda", shot)
    cams, _, fps = read_usd_camera(tmp_path / "sh010.usda")
    back = shot_from_cameras(cams, fps)
    assert back.lens.squeeze == 2 and back.lens.focal_mm == pytest.approx(50, rel=1e-6)
    assert [k.focal_mm for k in back.path.keyframes] == pytest.approx([50] * 3, rel=1e-6)
    assert back.cameras().Ks == pytest.approx(shot.cameras().Ks, rel=1e-6)


def test_a_squeezed_shot_goes_to_nerfstudio_desqueezed(tmp_path):
    """A 50 mm 2x on a 36 mm back at 320 x 180: camera_path.json holds the picture shown,
    640 x 180 square pixels, fov the vertical field 22.895 degrees, aspect 640 / 180, and a
    note (it was refused); read back, its cameras see what the plate's do (fy, heights)."""
    from splatfilm.io.camera_files import read_camera_path_json
    from splatfilm.shots.interchange import write_shot_camera_path_json

    path = _ball_film(tmp_path, {"focal_mm": 50, "squeeze": 2}, frames=3)
    film = yaml.safe_load(path.read_text())
    film["resolution"] = [320, 180]
    path.write_text(yaml.safe_dump(film, sort_keys=False))
    shot = parse_film(path).shots[0].shot
    write_shot_camera_path_json(tmp_path / "camera_path.json", shot)
    cp = json.loads((tmp_path / "camera_path.json").read_text())
    assert (cp["render_width"], cp["render_height"]) == (640, 180)
    assert [c["fov"] for c in cp["camera_path"]] == pytest.approx([22.895] * 3, abs=1e-3)
    assert cp["camera_path"][0]["aspect"] == pytest.approx(640 / 180)
    assert "squeeze 2" in cp["splatfilm_note"] and "desqueezed" in cp["splatfilm_note"]
    back = read_camera_path_json(tmp_path / "camera_path.json").cameras
    assert back.fx == pytest.approx(shot.cameras().fy) and back.fy == pytest.approx(shot.cameras().fy)
    assert back.viewmats == pytest.approx(shot.cameras().viewmats, abs=1e-9)


def test_a_squeezed_masters_burn_in_says_the_squeeze_and_reads_upright_desqueezed(tmp_path):
    """The label is "50mm 2x" (it said "50mm"), and its text is drawn half as wide on the plate
    (it was as wide as on a spherical frame: stretched 2x once desqueezed)."""
    from splatfilm.handoff.masters import burn_in_text, draw_burn_in

    film = parse_film(_ball_film(tmp_path, {"focal_mm": 50, "squeeze": 2}))
    assert burn_in_text(film.shots[0], 1001) == "sh010  1001  50mm 2x"
    spherical = parse_film(_ball_film(tmp_path, {"focal_mm": 50}))
    assert burn_in_text(spherical.shots[0], 1001) == "sh010  1001  50mm"

    def text_width(pixel_aspect):
        image = draw_burn_in(np.zeros((360, 640, 3)), "sh010  1001  50mm 2x", pixel_aspect)
        lit = np.nonzero(image[..., 0].max(axis=0) > 0.5)[0]
        return lit[-1] - lit[0] + 1

    assert text_width(2.0) / text_width(1.0) == pytest.approx(0.5, abs=0.02)


def test_a_ball_renders_squeezed_into_an_ellipse(tmp_path):
    """A round Gaussian (0.2 m, 2 m off, 35 mm on 96 px: 9.3 px standard deviation) is as wide
    as high through a spherical lens and half as wide through a 2x anamorphic (the plate)."""
    def spread(lens):
        path = _ball_film(tmp_path, lens)
        film = parse_film(path)
        alpha = FrameRenderer(film, "cpu").render(film.shots[0], 0)[1][..., 0]
        return _spread(alpha)

    sx, sy = spread({"focal_mm": 35})
    ax, ay = spread({"focal_mm": 35, "squeeze": 2})
    assert sx == pytest.approx(sy, rel=0.01) and sy == pytest.approx(35 / 36 * 96 * 0.2 / 2, rel=0.02)
    assert ay == pytest.approx(sy, rel=1e-3)  # the vertical is the spherical lens's
    assert ax / ay == pytest.approx(0.5, abs=0.01)  # measured 0.5016 (the 0.3 px blur)


@pytest.mark.parametrize("turned", [False, True])
def test_depth_of_field_blurs_a_squeezed_plate_into_a_tall_oval(turned):
    """The circle of confusion is on the sensor: down the frame an anamorphic plate blurs as
    the spherical lens of its focal length does, and across it by 1 / squeeze^2, so once
    desqueezed the bokeh is a front anamorphic's oval, squeeze times taller than wide (it was
    1 / squeeze across the plate: round once desqueezed). The oval is the camera's, whichever
    way the camera is turned in the world."""
    g = Gaussians(torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64), torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64),
                  torch.full((1, 3), math.log(1e-6), dtype=torch.float64), torch.tensor([6.0], dtype=torch.float64),
                  torch.zeros((1, 1, 3), dtype=torch.float64), torch.zeros((1, 0, 3), dtype=torch.float64))
    viewmat = torch.eye(4, dtype=torch.float64)
    if turned:  # a camera rolled 30 degrees and panned 20: the world's axes are not the camera's
        from scipy.spatial.transform import Rotation
        viewmat[:3, :3] = torch.tensor(Rotation.from_euler("zy", [30, 20], degrees=True).as_matrix())
    viewmat[2, 3] = 8.0  # the splat 8 m in front

    def cov2d(squeeze):
        K = torch.tensor(Lens(focal_mm=50, width=640, height=360, squeeze=squeeze).K(), dtype=torch.float64)
        b = apply_depth_of_field(g, viewmat, K, 640, 360, 50.0, 1.4, 2.0, 36.0, pixel_aspect=squeeze)
        p = project_gaussians(b.means, quat_scale_to_covar(b.quats, b.activated_scales), viewmat[None], K[None], 640, 360)
        conic = p.conics[0, 0]
        # The drawn footprint less the renderer's 0.3 px^2 blur: the Gaussian's own image.
        cov = torch.linalg.inv(torch.tensor([[conic[0], conic[1]], [conic[1], conic[2]]])) - 0.3 * torch.eye(2)
        assert abs(float(cov[0, 1])) < 1e-9 * float(cov[1, 1])  # upright on the plate
        return float(cov[0, 0]) ** 0.5, float(cov[1, 1]) ** 0.5

    sx, sy = cov2d(1.0)
    ax, ay = cov2d(2.0)
    # The thin lens's circle: 0.687 mm on the sensor, 12.2 px across 640, a quarter of it the blur.
    assert sx == pytest.approx(sy) and sy == pytest.approx(12.2 / 4, rel=0.01)
    assert ay == pytest.approx(sy, rel=1e-6)
    assert ax == pytest.approx(sy / 4, rel=1e-6)  # measured before: sy / 2 (round desqueezed)
    assert 2 * ax == pytest.approx(ay / 2, rel=1e-6)  # as shown: half as wide as high


def test_anamorphic_depth_of_field_keeps_an_in_focus_flat_splat_as_it_was():
    """Float32 splats at the focus distance (no blur) with a thin axis 1e-5 of 5e-2, turned
    every way: re-split into axes, each keeps its thin axis (float32 eigh gave 0.76x to 3x)."""
    from scipy.spatial.transform import Rotation

    n = 200
    quats = torch.tensor(Rotation.random(n, random_state=2).as_quat()[:, [3, 0, 1, 2]], dtype=torch.float32)
    scales = torch.tensor([0.05, 0.05, 1e-5]).log().expand(n, 3)
    means = torch.tensor([0.0, 0.0, 2.0]).expand(n, 3)
    g = Gaussians(means, quats, scales, torch.full((n,), 3.0), torch.zeros((n, 1, 3)), torch.zeros((n, 0, 3)))
    K = torch.tensor(Lens(focal_mm=50, width=320, height=180, squeeze=2).K(), dtype=torch.float32)
    b = apply_depth_of_field(g, torch.eye(4), K, 320, 180, 50.0, 1.4, 2.0, 36.0, pixel_aspect=2.0)
    assert b.quats.dtype == torch.float32
    assert b.activated_scales.min(1).values.numpy() == pytest.approx(1e-5, rel=0.01)


def test_depth_of_field_of_the_reviewers_splat():
    """One splat at 5 m, 50 mm 2x at f/1.4 focused at 2 m, 320 x 180 on a 36 mm back: plate
    sigma_y 1.221 px (the 4.88 px circle / 4), sigma_x 1.221 / 4 = 0.305 (it was 0.61)."""
    g = Gaussians(torch.tensor([[0.0, 0.0, 5.0]], dtype=torch.float64), torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64),
                  torch.full((1, 3), math.log(1e-5), dtype=torch.float64), torch.tensor([6.0], dtype=torch.float64),
                  torch.zeros((1, 1, 3), dtype=torch.float64), torch.zeros((1, 0, 3), dtype=torch.float64))
    viewmat = torch.eye(4, dtype=torch.float64)
    K = torch.tensor(Lens(focal_mm=50, width=320, height=180, squeeze=2).K(), dtype=torch.float64)
    b = apply_depth_of_field(g, viewmat, K, 320, 180, 50.0, 1.4, 2.0, 36.0, pixel_aspect=2.0)
    p = project_gaussians(b.means, quat_scale_to_covar(b.quats, b.activated_scales), viewmat[None], K[None], 320, 180)
    a, _, c = p.conics[0, 0].tolist()
    sx, sy = (1 / a - 0.3) ** 0.5, (1 / c - 0.3) ** 0.5
    assert sy == pytest.approx(1.221, abs=1e-3) and sx == pytest.approx(sy / 4, rel=1e-4)


def test_a_squeezed_film_carries_its_pixel_aspect_in_every_output(tmp_path):
    """EXR pixelAspectRatio, the shot and cut MP4s' sample aspect ratio (players desqueeze),
    the USD camera's desqueezed aperture and its render settings' pixelAspectRatio, the world
    stage's too, transforms.json's fl_x = fl_y / 2, a desqueezed contact sheet and camera path
    (square pixels only)."""
    pytest.importorskip("pxr")
    import OpenEXR
    from PIL import Image
    from pxr import Usd, UsdGeom, UsdRender

    from splatfilm.handoff.usd_world import export_usd_world
    from splatfilm.io.video import probe_frames, probe_sample_aspect
    from splatfilm.shots.interchange import read_usd_camera, write_shot_camera_path_json, write_shot_transforms_json

    path = _ball_film(tmp_path, {"focal_mm": 35, "squeeze": 2}, shots=2, frames=2)
    out = tmp_path / "out"
    render_film(path, out, RenderOptions(backend="cpu", depth=True), progress=False, log=lambda *_: None)
    with OpenEXR.File(str(out / "sh010" / "sh010.1001.depth.exr")) as f:
        assert f.header()["pixelAspectRatio"] == pytest.approx(2.0)
    with Image.open(out / "sh010" / "sh010.1001.png") as png:  # pHYs unit 0: 1 pixel per unit across, 2 down
        assert png.info["aspect"] == (1, 2)
    for movie in (out / "sh010.mp4", out / "ana.mp4"):
        assert probe_sample_aspect(movie) == Fraction(2)
        assert probe_frames(movie)[1] == (96, 96)  # the plate, stored as rendered
    stage = Usd.Stage.Open(str(out / "cameras" / "sh010.usda"))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/sh010"))
    assert cam.GetHorizontalApertureAttr().Get() == pytest.approx(0.72)  # 2 x the 36 mm back, in tenths of m
    assert cam.GetVerticalApertureAttr().Get() == pytest.approx(0.36)
    assert cam.GetPrim().GetCustomDataByKey("splatfilm:squeeze") == 2.0
    settings = UsdRender.Settings(stage.GetPrimAtPath("/Render/Settings"))
    assert settings.GetPixelAspectRatioAttr().Get() == 2.0
    assert tuple(settings.GetResolutionAttr().Get()) == (96, 96)
    cams = read_usd_camera(out / "cameras" / "sh010.usda")[0]
    film = parse_film(path)
    assert cams.Ks[0] == pytest.approx(film.shots[0].shot.cameras().Ks[0], rel=1e-6)  # fx = fy / 2 read back
    export_usd_world(film, tmp_path / "world.usda", progress=False)
    world = Usd.Stage.Open(str(tmp_path / "world.usda"))
    assert UsdRender.Settings(world.GetPrimAtPath("/Render/sh020")).GetPixelAspectRatioAttr().Get() == 2.0
    write_shot_transforms_json(tmp_path / "transforms.json", film.shots[0].shot)
    tj = json.loads((tmp_path / "transforms.json").read_text())
    assert tj["fl_x"] == pytest.approx(tj["fl_y"] / 2) and tj["fl_y"] == pytest.approx(35 / 36 * 96)
    write_shot_camera_path_json(tmp_path / "camera_path.json", film.shots[0].shot)
    assert json.loads((tmp_path / "camera_path.json").read_text())["render_width"] == 192  # desqueezed
    # The contact sheet shows the frames desqueezed: 160 px wide, 80 high, not 160 x 160.
    # Two rows (shots) of two frames, each cell 6 px apart with an 18 px label above.
    sheet = np.asarray(Image.open(out / "contact_sheet.png"))
    assert sheet.shape[:2] == (2 * (80 + 18 + 6) + 6, 2 * (160 + 6) + 6)


def test_spherical_frames_keep_their_keys_and_headers(tmp_path):
    """A spherical lens (squeeze 1, said or not) adds nothing: the same frame key, K bit for
    bit, and no pixelAspectRatio in the EXR header."""
    from splatfilm.io.images import exr_frame_header

    keys = []
    for lens in ({"focal_mm": 35}, {"focal_mm": 35, "squeeze": 1}):
        film = parse_film(_ball_film(tmp_path, lens))
        r = FrameRenderer(film, "cpu")
        keys.append(r.key(film.shots[0], 0))
        assert "pixelAspectRatio" not in r.exr_header(film.shots[0], 0)
    assert keys[0] == keys[1]
    assert np.array_equal(Lens(squeeze=1).K(), Lens().K())
    assert "pixelAspectRatio" not in exr_frame_header((1, 0, 0, 0, False), 24)
    film = parse_film(_ball_film(tmp_path, {"focal_mm": 35, "squeeze": 2}))
    assert FrameRenderer(film, "cpu").key(film.shots[0], 0) != keys[0]
