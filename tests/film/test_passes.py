"""Compositing passes (`render --passes`): mattes from the one rasterization call that add up to
alpha, scene-linear RGBA, depth, and motion vectors that predict the next frame."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from helpers import write_walking_film
from splatfilm.errors import SplatfilmError
from splatfilm.film import FrameRenderer, RenderOptions, parse_film, render_film
from splatfilm.film.passes import parse_passes
from splatfilm.shots.timing import frame_timecode
from splatfilm.io.images import read_exr_layers, srgb_to_linear, unpremultiply, write_exr_layers
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


def test_covered_pixels_hand_off_solid_alpha_and_empty_ones_far_depth(film_dir, rendered):
    # The renderer stops a pixel short of transmittance 1e-4 (its alpha tops out at 0.9999); the
    # hand-off calls a pixel with at most 1/255 left solid, and puts empty sky far, not at the lens.
    film = parse_film(film_dir / "film.yaml")
    raw = FrameRenderer(film, "cpu", passes=parse_passes("all")).render_frame(film.shots[0], 1)
    channels, _ = read_exr_layers(rendered / "sh010" / "sh010.1002.exr")
    a, ra = channels["A"], raw.alpha[..., 0]
    solid = ra >= 1 - 1 / 255
    assert raw.alpha.max() < 0.99991 and solid.sum() > 500
    assert np.all(a[solid] == 1.0) and np.array_equal(a[~solid], ra[~solid].astype(np.float32))
    # Premultiplied by the solid alpha: the straight colour itself, not 0.9999 of it.
    straight = srgb_to_linear(unpremultiply(raw.rgb, raw.alpha, film.background))
    linear = np.stack([channels[c] for c in "RGB"], -1)
    assert np.abs(linear[solid] - straight[solid]).max() < 1e-6
    hero, wall = channels["matte_hero.A"], channels["matte_wall.A"]
    assert np.abs(hero + wall - a).max() < 1e-5  # the mattes follow A
    assert np.abs(wall[solid & (raw.mattes["hero"] == 0)] - 1.0).max() < 1e-6  # a solid holdout
    z, empty = channels["Z"], ra == 0
    assert empty.sum() > 100 and np.all(z[empty] == 1e10) and z[~empty].max() < 10.0


def test_motion_blurred_depth_is_the_depth_of_what_is_seen(film_dir, tmp_path):
    # A pixel that the moving hero covers for part of the shutter: its depth is the hero's,
    # not an average with 0 (the lens) for the sub-frames that saw nothing there.
    import yaml

    script = yaml.safe_load((film_dir / "film.yaml").read_text())
    script["effects"] = {"motion_blur": {"shutter_deg": 180, "samples": 5}}
    script["assets"] = {n: {**a, "file": str(film_dir / a["file"])} for n, a in script["assets"].items()}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    film = parse_film(tmp_path / "film.yaml")
    image = FrameRenderer(film, "cpu").render_frame(film.shots[0], 1)
    partly = (image.alpha[..., 0] > 0) & (image.alpha[..., 0] < 0.5)
    assert partly.sum() > 10
    assert image.depth[..., 0][image.alpha[..., 0] > 0].min() > 2.0  # the wall and the hero are 3-4 m away


def _blurred_film(film_dir: Path, folder: Path, samples: int) -> Path:
    """The walking film with motion blur (180 degrees, `samples` sub-frames), in `folder`."""
    import yaml

    script = yaml.safe_load((film_dir / "film.yaml").read_text())
    script["effects"] = {"motion_blur": {"shutter_deg": 180, "samples": samples}}
    script["assets"] = {n: {**a, "file": str(film_dir / a["file"])} for n, a in script["assets"].items()}
    (folder / "film.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    return folder / "film.yaml"


def test_motion_blur_averages_light_not_encoded_values(film_dir, tmp_path, monkeypatch):
    # A pixel that sees white for half the shutter and black for the other half took in half the
    # light: 0.5 linear in the EXR, encoded once for the PNG (188), not 0.5 encoded (0.214 light).
    import splatfilm.film.frame_render as frame_render
    from splatfilm.io.images import linear_to_srgb, to_uint8
    from splatfilm.render.rendering import RenderOutput

    film = parse_film(_blurred_film(film_dir, tmp_path, 2))
    h, w = film.height, film.width
    calls = []

    def white_then_black(*args, features=None, **kwargs):
        calls.append(1)
        level = 1.0 if len(calls) % 2 else 0.0
        alpha = torch.ones(1, h, w, 1, dtype=torch.float64)
        alpha[:, :, : w // 2] = 0.5  # the left half half covered (over the film's background)
        rgb = level * alpha + (1 - alpha) * torch.tensor(film.background, dtype=torch.float64)
        return RenderOutput(rgb=rgb, alpha=alpha, depth=torch.full((1, h, w, 1), 3.0, dtype=torch.float64),
                            features=None if features is None else torch.zeros(1, h, w, features.shape[-1]))

    monkeypatch.setattr(frame_render, "rasterization", white_then_black)
    r = FrameRenderer(film, "cpu", passes=parse_passes("rgba"))
    job = r.job(tmp_path / "out", 0, 1, "key")
    r.write(job)
    assert len(calls) == 2
    channels, _ = read_exr_layers(job.passes)
    assert np.allclose(channels["R"][:, w // 2:], 0.5, atol=1e-6)  # solid: half the light
    assert np.allclose(channels["R"][:, : w // 2], 0.25, atol=1e-6)  # premultiplied by A = 0.5
    png = iio.imread(job.png)
    assert np.all(png[:, w // 2:] == to_uint8(linear_to_srgb(0.5)))
    back = to_uint8(linear_to_srgb(0.5) * 0.5 + 0.5 * np.asarray(film.background))
    assert np.all(png[:, : w // 2] == back)


def test_motion_vectors_predict_the_next_frame_better_than_static_reprojection(film_dir):
    film = parse_film(film_dir / "film.yaml")
    r = FrameRenderer(film, "cpu", passes=parse_passes("all"))
    fs = film.shots[0]
    a, b = r.render_frame(fs, 0), r.render_frame(fs, 1)
    ca, cb = r.camera(fs, 0), r.camera(fs, 1)
    warped_static, visible = reproject(a.depth, ca, b.rgb, b.depth, cb, a.alpha)
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


def _timecode_text(tc) -> str:
    return f"{tc.hours:02d}:{tc.minutes:02d}:{tc.seconds:02d}{';' if tc.dropFrame else ':'}{tc.frame:02d}"


def test_passes_exr_carries_the_frames_timecode_rate_and_camera_as_openexr_defines_them(film_dir, rendered):
    film = parse_film(film_dir / "film.yaml")
    fs = film.shots[0]
    r = FrameRenderer(film, "cpu")
    w, h = film.width, film.height
    for i, frame in enumerate((1001, 1002, 1003)):
        channels, header = read_exr_layers(rendered / "sh010" / f"sh010.{frame}.exr")
        assert _timecode_text(header["timeCode"]) == frame_timecode(frame, Fraction(24))  # 1001: 00:00:41:17
        assert header["framesPerSecond"] == Fraction(24)
        assert header["worldToCamera"].dtype == np.float32 and header["worldToNDC"].dtype == np.float32  # M44f
        cam = r.camera(fs, i)
        V, K = cam.viewmats[0], cam.Ks[0]
        to_cam, to_ndc = header["worldToCamera"].astype(np.float64), header["worldToNDC"].astype(np.float64)
        # OpenEXR's camera space: row vectors, the camera at the origin, x right, y up, +z ahead.
        assert np.abs(np.r_[cam.centers[0], 1] @ to_cam - [0, 0, 0, 1]).max() < 1e-5
        np.testing.assert_allclose(to_cam, (np.diag([1.0, -1, 1, 1]) @ V).T, atol=1e-6)
        assert np.linalg.det(to_cam[:3, :3]) == pytest.approx(-1, abs=1e-5)  # left-handed in a right-handed world
        # Every pixel the wall alone fills, taken back to the world through the header's matrices
        # at the Z pass's depth, lies on the wall (the plane y = 0) and projects back onto itself.
        wall = (channels["matte_wall.A"] > 0.999) & (channels["A"] > 0.999)
        assert wall.sum() > 100
        v, u = np.nonzero(wall)
        px, py = u + 0.5, v + 0.5
        z = channels["Z"][wall].astype(np.float64)
        in_cam = np.c_[(px - K[0, 2]) * z / K[0, 0], -(py - K[1, 2]) * z / K[1, 1], z, np.ones_like(z)]
        world = in_cam @ np.linalg.inv(to_cam)
        assert np.abs(world[:, 1]).max() < 0.01 and np.abs(world[:, 3] - 1).max() < 1e-9
        ndc = world @ to_ndc
        ndc = ndc[:, :3] / ndc[:, 3:]
        np.testing.assert_allclose(ndc[:, 0], px / w, atol=1e-4)  # (0, 0) top-left, (1, 1) bottom-right, y down
        np.testing.assert_allclose(ndc[:, 1], py / h, atol=1e-4)
        assert np.all((ndc[:, 2] > 0) & (ndc[:, 2] < 1))  # between near and far


def test_side_exrs_carry_the_same_standard_attributes(film_dir, tmp_path):
    film = parse_film(film_dir / "film.yaml")
    r = FrameRenderer(film, "cpu", depth=True, alpha=True)
    job = r.job(tmp_path, 0, 2, "key")
    r.write(job)
    alpha = read_exr_layers(job.alpha)[0]["A"]
    assert alpha.max() == 1.0  # hand-off alpha: solid where covered
    assert np.all(read_exr_layers(job.depth)[0]["Z"][alpha == 0] == 1e10)
    for path in (job.depth, job.alpha):
        _, header = read_exr_layers(path)
        assert _timecode_text(header["timeCode"]) == "00:00:41:19" and header["framesPerSecond"] == Fraction(24)
        V = r.camera(film.shots[0], 2).viewmats[0]
        np.testing.assert_allclose(header["worldToCamera"], (np.diag([1.0, -1, 1, 1]) @ V).T, atol=1e-6)


def test_exr_timecode_counts_drop_frame_and_frame_pairs_above_30_fps(tmp_path):
    import OpenEXR

    from splatfilm.shots.timing import timecode_fields
    from splatfilm.io.images import exr_frame_header

    z = np.zeros((2, 2))
    cases = [(Fraction(30000, 1001), 1800, (0, 1, 0, 2, True, False)),  # ;00 and ;01 skipped
             (Fraction(24000, 1001), 1001, (0, 0, 41, 17, False, False)),
             (Fraction(60), 1001, (0, 0, 16, 20, False, True)),  # frame 41 of the second: pair 20, its second
             (Fraction(50), 1000, (0, 0, 20, 0, False, False))]
    for fps, frame, want in cases:
        write_exr_layers(tmp_path / "t.exr", {"R": z}, attributes=exr_frame_header(timecode_fields(frame, fps), fps))
        _, header = read_exr_layers(tmp_path / "t.exr")
        tc = header["timeCode"]
        assert (tc.hours, tc.minutes, tc.seconds, tc.frame, tc.dropFrame, tc.fieldPhase) == want, fps
        assert header["framesPerSecond"] == fps
        assert header["colorInteropID"] == "lin_rec709_scene"
        assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK


def test_16_bit_frames_and_half_passes_are_written_when_asked(film_dir, tmp_path):
    """`render --png-bits 16 --passes --exr-half --exr-compression piz`: the frame PNG holds
    16-bit values, the EXR's channels half but Z float, PIZ; the keys change only then."""
    import OpenEXR

    from splatfilm.io.images import ExrFormat, read_image
    from splatfilm.io.png import decode_png16

    film = parse_film(film_dir / "film.yaml")
    plain = FrameRenderer(film, "cpu", passes=parse_passes("all"), provenance=True)
    deep = FrameRenderer(film, "cpu", passes=parse_passes("all"), provenance=True, png_bits=16,
                         exr=ExrFormat(half=True, compression="piz"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    jobs = plain.job(tmp_path / "a", 0, 1, "k"), deep.job(tmp_path / "b", 0, 1, "k")
    for r, job in zip((plain, deep), jobs):
        r.write(job)
    eight, sixteen = read_image(jobs[0].png), decode_png16(jobs[1].png.read_bytes())
    assert sixteen.dtype == np.uint16 and eight.std() > 10  # a picture, not a blank frame
    assert np.abs(sixteen / 257.0 - eight).max() <= 0.5 + 1e-9  # the same picture, finer
    assert len(np.unique(sixteen)) > 2 * len(np.unique(eight))
    with OpenEXR.File(str(jobs[1].passes), separate_channels=True) as f:
        assert f.header()["compression"] == OpenEXR.PIZ_COMPRESSION
        types = {name: c.type() for name, c in f.channels().items()}
    assert types.pop("Z") == OpenEXR.FLOAT and set(types.values()) == {OpenEXR.HALF}
    assert jobs[1].passes.stat().st_size < jobs[0].passes.stat().st_size
    keys = {r.key(film.shots[0], 1) for r in (plain, deep, FrameRenderer(film, "cpu", passes=parse_passes("all"),
                                                                          provenance=True))}
    assert len(keys) == 2


def test_depth_and_alpha_exrs_follow_the_exr_format(film_dir, tmp_path):
    """`--exr-half --exr-compression piz` shaped the passes EXR only: the `--alpha` and
    `--depth` EXRs beside the frame stayed 32-bit ZIP. Now alpha is half and both PIZ, depth
    still float; their provenance still verifies, and the keys change only then."""
    import json

    import OpenEXR

    from splatfilm.io.images import ExrFormat, read_depth, read_exr_provenance

    film = parse_film(film_dir / "film.yaml")
    plain = FrameRenderer(film, "cpu", depth=True, alpha=True, provenance=True)
    half = FrameRenderer(film, "cpu", depth=True, alpha=True, provenance=True, exr=ExrFormat(half=True, compression="piz"))
    jobs = plain.job(tmp_path / "a", 0, 1, "k"), half.job(tmp_path / "b", 0, 1, "k")
    for r, job in zip((plain, half), jobs):
        r.write(job)
    for path, channel, kind in ((jobs[1].alpha, "A", OpenEXR.HALF), (jobs[1].depth, "Z", OpenEXR.FLOAT)):
        with OpenEXR.File(str(path), separate_channels=True) as f:
            assert f.header()["compression"] == OpenEXR.PIZ_COMPRESSION
            assert {name: c.type() for name, c in f.channels().items()} == {channel: kind}
        text, digest = read_exr_provenance(path)
        assert json.loads(text)["content_sha256"] == digest
    with OpenEXR.File(str(jobs[0].alpha), separate_channels=True) as f:  # the default as it was
        assert f.header()["compression"] == OpenEXR.ZIP_COMPRESSION and f.channels()["A"].type() == OpenEXR.FLOAT
    alpha = read_depth(jobs[0].alpha, "A")
    assert 0 < alpha.mean() < 1  # a picture, not an empty frame
    assert np.abs(read_depth(jobs[1].alpha, "A") - alpha).max() <= 1e-3
    assert np.array_equal(read_depth(jobs[1].depth), read_depth(jobs[0].depth))
    keys = {r.key(film.shots[0], 1) for r in (plain, half, FrameRenderer(film, "cpu", depth=True, alpha=True,
                                                                       provenance=True))}
    assert len(keys) == 2
