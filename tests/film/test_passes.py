"""Compositing passes (`render --passes`): mattes from the one rasterization call that add up to
alpha, scene-linear RGBA, depth, and motion vectors that predict the next frame."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from helpers import write_walking_film
from splatfilm.errors import SplatfilmError
from splatfilm.film import FrameRenderer, RenderOptions, parse_film, render_film
from splatfilm.film.passes import parse_passes
from splatfilm.io.images import read_exr_layers, srgb_to_linear, write_exr_layers
from splatfilm.render.consistency import reproject


@pytest.fixture(scope="module")
def film_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("passes")
    write_walking_film(d)
    return d


@pytest.fixture(scope="module")
def rendered(film_dir) -> Path:
    out = film_dir / "out"
    render_film(film_dir / "film.yaml", out, RenderOptions(backend="cpu", passes=parse_passes("all")),
                progress=False, log=lambda *_: None)
    return out


def test_pass_names(capsys):
    assert parse_passes("all") == ("rgba", "depth", "mattes", "motion")
    assert parse_passes("motion,mattes") == ("rgba", "mattes", "motion") == parse_passes(["motion", "mattes"])
    assert parse_passes(None) == parse_passes(()) == ()
    with pytest.raises(SplatfilmError, match="--passes: unknown pass 'normals'"):
        parse_passes("depth,normals")


def test_mattes_add_up_to_alpha_and_are_one_where_only_their_asset_is_seen(rendered):
    channels, header = read_exr_layers(rendered / "sh010" / "sh010.1002.exr")
    assert {"R", "G", "B", "A", "Z", "forward.u", "forward.v", "matte_wall.A", "matte_hero.A"} <= set(channels)
    assert header["colorSpace"] == "Linear Rec.709 (sRGB)" and header["ocioConfig"].startswith("ocio://")
    a, wall, hero = channels["A"], channels["matte_wall.A"], channels["matte_hero.A"]
    assert np.abs(wall + hero - a).max() < 1e-5  # with (1 - A) of background: the whole frame
    for mine, other in ((wall, hero), (hero, wall)):
        alone = (other < 1e-6) & (a > 0.999)
        assert alone.sum() > 20
        assert np.abs(mine[alone] - 1.0).max() < 1e-3
    # Both assets really overlap: the hero stands in front of the wall, and covers it there.
    assert ((hero > 0.99) & (a > 0.999)).sum() > 20


def test_exr_rgba_is_the_png_decoded_to_linear_and_depth_is_camera_z(rendered):
    channels, _ = read_exr_layers(rendered / "sh010" / "sh010.1001.exr")
    png = iio.imread(rendered / "sh010" / "sh010.1001.png").astype(np.float64) / 255.0
    a = channels["A"]
    solid = a > 0.999
    linear = np.stack([channels[c] for c in "RGB"], -1)
    assert np.abs(linear[solid] - srgb_to_linear(png[solid])).max() < 0.01  # 8-bit rounding of the PNG
    z = channels["Z"][solid]
    assert 2.0 < z.min() and z.max() < 5.0  # the wall and the hero are 3-4 m from the camera


def test_motion_vectors_predict_the_next_frame_better_than_static_reprojection(film_dir):
    film = parse_film(film_dir / "film.yaml")
    r = FrameRenderer(film, "cpu", passes=parse_passes("all"))
    fs = film.shots[0]
    a, b = r.render_frame(fs, 0), r.render_frame(fs, 1)
    ca, cb = r.camera(fs, 0), r.camera(fs, 1)
    warped_static, visible = reproject(a.depth, ca.viewmats[0], ca.Ks[0], b.rgb, b.depth, cb.viewmats[0], cb.Ks[0],
                                       a.alpha)
    h, w = a.alpha.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    u, v = xs + a.motion[..., 0], ys + a.motion[..., 1]
    inside = (u >= 0.5) & (u <= w - 0.5) & (v >= 0.5) & (v <= h - 0.5)
    grid = torch.tensor(np.stack([(u / w) * 2 - 1, (v / h) * 2 - 1], -1))[None]
    img = torch.tensor(b.rgb).permute(2, 0, 1)[None]
    warped_flow = torch.nn.functional.grid_sample(img, grid, align_corners=False)[0].permute(1, 2, 0).numpy()
    mask = visible.numpy() & inside
    assert mask.mean() > 0.3
    e_flow = ((warped_flow - a.rgb) ** 2).mean(-1)[mask].mean()
    e_static = ((warped_static.numpy() - a.rgb) ** 2).mean(-1)[mask].mean()
    hero = a.mattes["hero"] > 0.5
    assert np.linalg.norm(a.motion[hero], axis=-1).mean() > 1.0  # the hero walks: pixels move
    print(f"E_warp on {mask.mean():.0%} co-visible pixels: motion vectors {e_flow:.2e}, depth reprojection {e_static:.2e}")
    assert e_flow <= e_static, (e_flow, e_static)
    # On the walking hero, where a static world's reprojection goes wrong, the flow does far better.
    on_hero = inside & (a.mattes["hero"] > 0.99)
    h_flow = ((warped_flow - a.rgb) ** 2).mean(-1)[on_hero].mean()
    h_static = ((warped_static.numpy() - a.rgb) ** 2).mean(-1)[on_hero].mean()
    print(f"on the hero ({on_hero.sum()} px): motion vectors {h_flow:.2e}, depth reprojection {h_static:.2e}")
    assert h_flow < 0.5 * h_static


def test_passes_leave_the_frames_as_they_were(film_dir, rendered, tmp_path):
    plain = tmp_path / "plain"
    render_film(film_dir / "film.yaml", plain, RenderOptions(backend="cpu"), progress=False, log=lambda *_: None)
    for f in ("sh010.1001.png", "sh010.1003.png"):
        assert (plain / "sh010" / f).read_bytes() == (rendered / "sh010" / f).read_bytes()
    assert not list((plain / "sh010").glob("*.exr"))


def test_an_unwritable_passes_file_is_one_error(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder must be")
    with pytest.raises(SplatfilmError, match="cannot write"):
        write_exr_layers(tmp_path / "blocker" / "x.exr", {"R": np.zeros((2, 2))})


def test_a_subset_of_passes_composites_only_what_it_needs(film_dir):
    film = parse_film(film_dir / "film.yaml")
    fs = film.shots[0]
    full = FrameRenderer(film, "cpu", passes=parse_passes("all")).render_frame(fs, 1)
    motion = FrameRenderer(film, "cpu", passes=parse_passes("motion")).render_frame(fs, 1)
    depth = FrameRenderer(film, "cpu", passes=parse_passes("depth")).render_frame(fs, 1)
    assert motion.mattes is None and depth.mattes is None and depth.motion is None
    assert np.abs(motion.motion - full.motion).max() < 1e-5
    for image in (motion, depth):  # extra channels leave the frame itself as it was
        assert np.array_equal(image.rgb, full.rgb) and np.array_equal(image.alpha, full.alpha)
