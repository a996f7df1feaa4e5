"""Floater clean-up: blend weights count what each view shows of each Gaussian; Gaussians
fewer than two capture views show are removed, by `splatfilm clean` and by a film's `clean:`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import cli_error, splats

from splatfilm.assets import cleanup
from splatfilm.assets.cleanup import CleanupSettings, supported
from splatfilm.assets.meshing import look_at_viewmat
from splatfilm.io.asset_files import capture_cameras_path
from splatfilm.io.camera_files import write_transforms_json
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.render.contributions import blend_weights, peak_weights
from splatfilm.scene.cameras import Cameras

UP = np.array([0.0, 0.0, 1.0])


def cameras(eyes, target=(0.0, 0.0, 0.0), size=48) -> Cameras:
    f = size * 0.9
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    return Cameras(np.stack([look_at_viewmat(np.array(e, float), np.array(target), UP) for e in eyes]), K, size, size)


def wall_with_floaters():
    """A wall in the plane y = 1 (seen by four cameras from y = -3), one splat hanging right in
    front of camera 0 (only it sees it) and one behind the wall (nobody does)."""
    u = np.linspace(-1.5, 1.5, 41)
    a, b = np.meshgrid(u, u)
    wall = np.c_[a.ravel(), np.ones(a.size), b.ravel()]
    eyes = [(-0.6, -3, 0.3), (0.6, -3, 0.3), (-0.6, -3, -0.3), (0.6, -3, -0.3)]
    floater = np.array([[-0.6, -2.6, 0.3]])  # 0.4 m in front of camera 0, outside the others' frames
    hidden = np.array([[0.0, 1.5, 0.0]])
    g = splats(np.r_[wall, floater, hidden], size=0.07, opacity=0.99)
    return g, cameras(eyes, target=(0, 1, 0)), len(wall)


def test_blend_weights_count_the_pixels_each_gaussian_shows_in():
    g, cams, n_wall = wall_with_floaters()
    w = blend_weights(g, cams, backend="cpu")
    assert w.shape == (4, len(g))
    assert w[0, n_wall] > 20 and torch.all(w[1:, n_wall] < 1e-3)  # the floater: a big blob in camera 0 only
    assert torch.all(w[:, n_wall + 1] < 0.01)  # behind the wall: hidden from every view
    # Every pixel's weights add up to its alpha, so a view's weights add up to its alpha's sum.
    from splatfilm.render import rasterization

    viewmats, Ks = cams.to_tensors(torch.float32)
    alpha = rasterization(g, viewmats, Ks, 48, 48, backend="cpu").alpha
    np.testing.assert_allclose(w.sum(dim=1).numpy(), alpha.sum(dim=(1, 2, 3)).numpy(), rtol=1e-4)


def test_supported_keeps_what_two_views_show():
    g, cams, n_wall = wall_with_floaters()
    keep = supported(g, cams, CleanupSettings())
    assert not keep[n_wall] and not keep[n_wall + 1]  # the floater and the hidden splat go
    assert keep[:n_wall].float().mean() > 0.9  # the wall stays (its corners only one camera sees)
    assert supported(g, cams, CleanupSettings(min_views=1))[n_wall]  # one view is enough with min_views 1
    with pytest.raises(ValueError, match="min_views must be >= 1"):
        CleanupSettings(min_views=0)


def test_peak_weights_are_the_largest_weight_a_view_composites():
    """A Gaussian's peak in a view is its largest alpha * T over the image, as `rasterization`
    composites it: checked against each Gaussian's own weight image (a one-hot feature per
    Gaussian composites with exactly the blend weights), in float64, both modes."""
    from splatfilm.render import rasterization
    from splatfilm.render.rendering import peak_blend_weights

    rng = np.random.default_rng(3)
    pts = rng.uniform([-0.6, -0.4, -0.6], [0.6, 0.4, 0.6], (40, 3))
    g = splats(pts, size=0.12, opacity=0.6).to(dtype=torch.float64)
    g = type(g)(g.means, g.quats, g.scales + torch.as_tensor(rng.normal(0, 0.5, (40, 3))), g.opacities, g.sh0,
                g.shN.to(torch.float64))
    cams = cameras([(-0.5, -3, 0.2), (0.7, -2.5, -0.4)], size=40)
    viewmats, Ks = cams.to_tensors(torch.float64)
    for mode in ("classic", "antialiased"):
        per_pixel = rasterization(g, viewmats, Ks, 40, 40, backend="cpu", rasterize_mode=mode,
                                  features=torch.eye(40, dtype=torch.float64)).features  # [C,H,W,N]
        peaks = peak_blend_weights(g, viewmats, Ks, 40, 40, rasterize_mode=mode)
        np.testing.assert_allclose(peaks.numpy(), per_pixel.amax(dim=(1, 2)).numpy(), rtol=1e-12, atol=1e-15)
        assert (peaks > 0.05).sum() > 40 and (peaks < per_pixel.sum(dim=(1, 2))).all()  # a peak, not a sum


def test_a_faint_veil_every_view_sees_is_kept():
    """A view counted a Gaussian when its summed blend weight reached 0.05 px: faint splats
    every view sees (a sheer veil; 1.5 mm at opacity 0.02 in the bundled set: 0.29 alpha where
    it lies, in all 48 views, removed whole) fell under it. Its peak, 2 to 2.5 of 255 here,
    shows in the 8-bit image: kept. The floaters still go."""
    from splatfilm.scene.gaussians import Gaussians

    g, cams, n_wall = wall_with_floaters()
    u = np.linspace(-0.8, 0.8, 9)
    a, b = np.meshgrid(u, u)
    veil = splats(np.c_[a.ravel(), np.zeros(a.size), b.ravel()], size=0.03, opacity=0.01)
    scene = Gaussians.concat([g, veil])
    assert blend_weights(scene, cams, backend="cpu")[:, len(g):].max() < 0.03  # under the old 0.05 px everywhere
    keep = supported(scene, cams, CleanupSettings())
    assert keep[len(g):].all()
    assert not keep[n_wall] and not keep[n_wall + 1] and keep[:n_wall].float().mean() > 0.9
    # A veil below the 8-bit step (opacity 0.003 < 1/255) is nothing the renderer draws: it goes.
    faint = Gaussians.concat([g, splats(veil.means.numpy(), size=0.03, opacity=0.003)])
    assert not supported(faint, cams, CleanupSettings())[len(g):].any()


def test_a_smaller_render_keeps_what_the_full_size_keeps():
    """A view rendered at a third of the cameras' size counts what the full size counts: a
    Gaussian's peak blend weight does not shrink with the pixels, as a summed one did."""
    g, cams, n_wall = wall_with_floaters()
    full = supported(g, cams, CleanupSettings(min_views=3))
    small = supported(g, cams, CleanupSettings(min_views=3, width=16))
    assert (small != full).float().mean() < 0.05 and small[:n_wall].float().mean() > 0.85


def test_clean_command_and_a_films_clean_option(tmp_path, capsys, monkeypatch):
    from splatfilm.cli import main
    from splatfilm.film import parse_film

    g, cams, n_wall = wall_with_floaters()
    scene = tmp_path / "set.ply"
    save_gaussians(scene, g)
    out = tmp_path / "clean.ply"
    err = cli_error(capsys, ["clean", scene, "-o", out], scene)
    assert "no capture cameras recorded beside it" in err
    write_transforms_json(capture_cameras_path(scene), cams)
    assert main(["clean", str(scene), "-o", str(out), "--backend", "cpu"]) == 0
    assert "that fewer than 2 of the 4 capture views show" in capsys.readouterr().out
    clean = load_gaussians(out)
    assert len(g) - len(clean) >= 2
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["cleaned"]["removed"] == len(g) - len(clean) and side["num_gaussians"] == len(clean)
    assert capture_cameras_path(out).exists()  # the clean copy keeps its cameras for meshing
    assert "overwrite the input" in cli_error(capsys, ["clean", scene, "-o", scene])

    # In a film: counted at load, then cached beside the script.
    script = {"resolution": [32, 18], "assets": {"set": {"file": "set.ply", "clean": True}},
              "shots": [{"frames": 2, "camera": {"position": [0, -3, 0], "look_at": [0, 1, 0]}}]}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
    assert len(parse_film(tmp_path / "film.yaml").world.assets["set"].gaussians) == len(clean)

    def fail(*a, **k):
        raise AssertionError("counted again")

    monkeypatch.setattr(cleanup, "supported", fail)
    assert len(parse_film(tmp_path / "film.yaml").world.assets["set"].gaussians) == len(clean)
    script["assets"]["set"]["clean"] = {"min_views": 0}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
    with pytest.raises(ValueError, match=r"film.yaml: assets.set.clean.min_views: must be >= 1"):
        parse_film(tmp_path / "film.yaml")
    script["assets"]["set"]["clean"] = {"min_weight": 0.05}  # the summed-weight rule's setting
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
    with pytest.raises(ValueError, match=r"film.yaml: assets.set.clean.min_weight: is gone: a view now shows"):
        parse_film(tmp_path / "film.yaml")


def test_a_films_clean_reads_the_asset_file_once(tmp_path, monkeypatch):
    """A film's loader digests the asset's file; its clean's cache key takes that digest rather
    than reading the file a second time (twice a parse before: the bundled set's 7 MB each
    time), and the key is the one `splatfilm clean`'s cache always had."""
    from dataclasses import asdict

    from splatfilm.film import parse_film
    from splatfilm.io import digest, gaussian_files

    g, cams, _ = wall_with_floaters()
    scene = tmp_path / "set.ply"
    save_gaussians(scene, g)
    write_transforms_json(capture_cameras_path(scene), cams)
    script = {"resolution": [32, 18], "assets": {"set": {"file": "set.ply", "clean": True}},
              "shots": [{"frames": 2, "camera": {"position": [0, -3, 0], "look_at": [0, 1, 0]}}]}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
    real, read = digest.file_digest, []
    counting = lambda path, *a, **k: read.append(path) or real(path, *a, **k)  # noqa: E731
    monkeypatch.setattr(digest, "file_digest", counting)
    monkeypatch.setattr(gaussian_files, "file_digest", counting)  # the loader's key (gaussian_file_digest)
    for _ in range(2):  # counted, then from the cache
        read.clear()
        parse_film(tmp_path / "film.yaml")
        assert sum(Path(p).resolve() == scene.resolve() for p in read) == 1, read
    key = digest.content_digest({"scene_sha256": real(scene), "cameras_sha256": real(capture_cameras_path(scene)),
                                 "settings": asdict(CleanupSettings())})
    assert (tmp_path / ".splatfilm-cache" / f"clean-{key[:32]}.json").exists()


def test_blend_weights_in_antialiased_mode_add_up_to_the_alpha_render_gives():
    """blend_weights counted every scene classic: a Gaussian under a pixel across showed in
    classic mode (its 0.3 px dilation at full opacity) far more than an antialiased asset
    renders it. In the asset's mode its weights sum to the alpha `rasterization` composites there."""
    from splatfilm.render import rasterization

    g, cams, n_wall = wall_with_floaters()
    small = splats(g.means.numpy(), size=0.004, opacity=0.9)  # ~0.05 px at 3 m: sub-pixel splats
    viewmats, Ks = cams.to_tensors(torch.float32)
    sums = {}
    for mode in ("classic", "antialiased"):
        w = blend_weights(small, cams, backend="cpu", rasterize_mode=mode)
        alpha = rasterization(small, viewmats, Ks, 48, 48, backend="cpu", rasterize_mode=mode).alpha
        np.testing.assert_allclose(w.sum(dim=1).numpy(), alpha.sum(dim=(1, 2, 3)).numpy(), rtol=1e-4)
        # The lone floater in camera 0: its own weight is all the alpha it leaves in the image.
        alone = rasterization(small.select(torch.tensor([n_wall])), viewmats[:1], Ks[:1], 48, 48, backend="cpu",
                              rasterize_mode=mode).alpha
        assert float(w[0, n_wall]) == pytest.approx(float(alone.sum()), rel=1e-4)
        sums[mode] = w.sum(dim=1)
    assert torch.all(sums["antialiased"] < 0.2 * sums["classic"]), sums
    np.testing.assert_array_equal(blend_weights(small, cams, backend="cpu").numpy(),
                                  blend_weights(small, cams, "cpu", None, "classic").numpy())


def test_clean_counts_an_antialiased_asset_in_its_mode(tmp_path, monkeypatch):
    """`clean` and a film's `clean:` counted an antialiased asset's blend weights in classic
    mode; they take its mode (its sidecar's, or a film's `rasterize_mode:` for it). The count's
    cache key says so where it is not classic (a classic count keeps its key, above)."""
    from dataclasses import asdict

    from splatfilm.assets.sidecar import Sidecar
    from splatfilm.io.asset_files import sidecar_path
    from splatfilm.film import parse_film
    from splatfilm.io import digest

    g, cams, _ = wall_with_floaters()
    scene = tmp_path / "set.ply"
    save_gaussians(scene, g)
    write_transforms_json(capture_cameras_path(scene), cams)
    Sidecar({"rasterize_mode": "antialiased"}).write(sidecar_path(scene))
    real, modes = peak_weights, []

    def recording(*a, **k):
        modes.append(k.get("rasterize_mode", a[3] if len(a) > 3 else "classic"))
        return real(*a, **k)

    monkeypatch.setattr(cleanup, "peak_weights", recording)
    cleanup.clean_asset(scene, tmp_path / "clean.ply", settings=CleanupSettings(width=16), backend="cpu",
                        progress=False)
    assert modes == ["antialiased"]
    assert json.loads((tmp_path / "clean.json").read_text())["rasterize_mode"] == "antialiased"

    cache = tmp_path / "cache"
    settings = CleanupSettings(width=16)
    for mode, counted in (("classic", True), ("antialiased", True), (None, False), ("antialiased", False)):
        modes.clear()
        cleanup.cached_supported(scene, g, settings, cache, backend="cpu", progress=False, rasterize_mode=mode)
        assert modes == (["antialiased" if mode is None else mode] if counted else []), (mode, modes)
    record = {"scene_sha256": digest.file_digest(scene),
              "cameras_sha256": digest.file_digest(capture_cameras_path(scene)), "settings": asdict(settings)}
    for extra in ({}, {"rasterize_mode": "antialiased"}):
        assert (cache / f"clean-{digest.content_digest({**record, **extra})[:32]}.json").exists()

    # A film's set: in its own mode, or the script's for it.
    script = {"resolution": [32, 18], "assets": {"set": {"file": "set.ply", "clean": {"width": 17}}},
              "shots": [{"frames": 2, "camera": {"position": [0, -3, 0], "look_at": [0, 1, 0]}}]}
    for override, expected in ((None, "antialiased"), ("classic", "classic")):
        if override is not None:
            script["assets"]["set"]["rasterize_mode"] = override
        (tmp_path / "film.yaml").write_text(yaml.safe_dump(script))
        modes.clear()
        shown = parse_film(tmp_path / "film.yaml").world.assets["set"]
        assert modes == [expected]
        # Its frames' key: a classic count's is the one it always had; an antialiased count's
        # is not the classic count's (frames of it, cached before, are not taken for it).
        classic_key = digest.content_digest((digest.file_digest(scene) + repr(CleanupSettings(width=17))).encode())
        assert (shown.digest == classic_key) == (expected == "classic")


def off_axis_on_a_fisheye():
    """One splat 55 degrees off the axis of an OPENCV_FISHEYE camera (fx = 60 px, 128 x 96):
    inside the fisheye's frame (it lands ~58 px right of the centre), outside what a pinhole
    with the same K sees (tan 55 deg * 60 = 86 px, past the edge at 64)."""
    a = np.radians(55)
    g = splats(np.array([[3 * np.sin(a), 0.0, 3 * np.cos(a)], [0.0, 0.0, 3.0]]), size=0.08, opacity=0.95)
    K = np.array([[60.0, 0, 64], [0, 60, 48], [0, 0, 1]])
    return g, Cameras(np.eye(4)[None], K[None], 128, 96, np.zeros((1, 6)), ["OPENCV_FISHEYE"])


def test_peak_and_summed_weights_see_through_each_cameras_lens():
    """peak_weights and blend_weights counted every camera as a pinhole: a splat a fisheye
    capture shows 55 degrees off its axis got a peak of 0 (and `clean` removed it). Through the
    camera's own model both agree with what `rasterization` composites there: the fisheye, an
    equirectangular panorama (a splat on its seam drawn on both sides) and a distorted OPENCV."""
    from splatfilm.render import rasterization
    from splatfilm.render.rendering import peak_blend_weights

    g, fish = off_axis_on_a_fisheye()
    assert float(peak_weights(g, fish)[0, 0]) > 0.5
    assert float(blend_weights(g, fish, backend="cpu")[0, 0]) > 10
    # On the panorama's seam (straight behind it) and on its sides; an OPENCV lens's corner.
    pts = np.array([[0.0, 0.0, -3.0], [0.05, 0.3, -2.5], [3.0, 0.0, 0.0], [0.0, 0.0, 3.0], [1.6, 1.1, 3.0]])
    g = splats(pts, size=0.15, opacity=0.7).to(dtype=torch.float64)
    K = np.array([[40.0, 0, 48], [0, 40, 32], [0, 0, 1]])
    pano = Cameras(np.eye(4)[None], np.array([[96 / (2 * np.pi), 0, 48], [0, 64 / np.pi, 32], [0, 0, 1]])[None],
                   96, 64, None, ["EQUIRECTANGULAR"])
    for cams in (fish, pano, Cameras(np.eye(4)[None], K[None], 96, 64, [[0.2, 0.05, 0, 0, 0.01, 0]], ["OPENCV"])):
        camera = cams.render_arguments(torch.float64)
        per_pixel = rasterization(g, **camera, backend="cpu", features=torch.eye(len(g), dtype=torch.float64)).features
        peaks = peak_blend_weights(g, **camera)
        np.testing.assert_allclose(peaks.numpy(), per_pixel.amax(dim=(1, 2)).numpy(), rtol=1e-12, atol=1e-15)
        assert (peaks > 0.05).sum() >= 2, cams.camera_model
        alpha = rasterization(g.to(dtype=torch.float32), **cams.render_arguments(), backend="cpu").alpha
        np.testing.assert_allclose(blend_weights(g, cams, backend="cpu").sum().item(), alpha.sum().item(), rtol=1e-4)
    assert float(peak_blend_weights(g, **pano.render_arguments(torch.float64))[0, 0]) > 0.3  # the seam's


def test_clean_keeps_what_a_fisheye_capture_shows(tmp_path, capsys):
    """`clean` on a fisheye capture: two views that show the off-axis splat keep it."""
    from splatfilm.cli import main

    g, fish = off_axis_on_a_fisheye()
    scene = tmp_path / "set.ply"
    save_gaussians(scene, g)
    shifted = fish.transformed(translation=[0.0, 0.05, 0.0])
    write_transforms_json(capture_cameras_path(scene), Cameras.concat([fish, shifted]))
    out = tmp_path / "clean.ply"
    assert main(["clean", str(scene), "-o", str(out), "--backend", "cpu"]) == 0
    assert len(load_gaussians(out)) == 2


def test_a_film_beside_a_read_only_set_renders_with_its_caches_in_the_output(tmp_path, monkeypatch):
    """`render` of a film whose folder is read-only (a published set, mounted read-only on the
    render nodes) wrote its clean count into .splatfilm-cache/ beside the script and failed.
    Its caches go to the output's .splatfilm-cache/, or --cache-dir."""
    from helpers import read_only
    from splatfilm.cli import main
    from splatfilm.io.cache import CACHE_ENV

    monkeypatch.delenv(CACHE_ENV, raising=False)
    ro = tmp_path / "ro"
    ro.mkdir()
    g, cams, _ = wall_with_floaters()
    save_gaussians(ro / "set.ply", g)
    write_transforms_json(capture_cameras_path(ro / "set.ply"), cams)
    script = {"resolution": [32, 18], "assets": {"set": {"file": "set.ply", "clean": True}},
              "shots": [{"name": "sh010", "frames": 1, "camera": {"position": [0, -3, 0], "look_at": [0, 1, 0]}}]}
    (ro / "film.yaml").write_text(yaml.safe_dump(script))
    read_only(monkeypatch, ro)
    for out, given in ((tmp_path / "out", []), (tmp_path / "out2", ["--cache-dir", str(tmp_path / "cache")])):
        assert main(["render", str(ro / "film.yaml"), "-o", str(out), "--frames-only", "--backend", "cpu", *given]) == 0
        assert len(list(out.rglob("*.png"))) == 1
    assert sorted(p.name for p in ro.iterdir()) == ["film.yaml", "set.cameras.json", "set.ply"]
    assert len(list((tmp_path / "out" / ".splatfilm-cache").glob("*/clean-*.json"))) == 1
    assert len(list((tmp_path / "cache").glob("*/clean-*.json"))) == 1
    assert not (tmp_path / "out2" / ".splatfilm-cache").exists()
