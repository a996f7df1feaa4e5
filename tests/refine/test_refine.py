"""Refinement kept consistent: reprojection, training pairs, the gated post-render pass,
the progressive 3D update, and `splatfilm refine` / `render --refine` end to end, on tiny
scenes with refiners whose behaviour is known (noise, a screen-space pattern, a constant)."""

from __future__ import annotations

import hashlib
import json
import math
import re

import numpy as np
import pytest
import torch
from helpers import look_at, make_capture, make_lens_capture

from splatfilm.scene.cameras import Cameras
from splatfilm.cli import main
from splatfilm.render.consistency import reproject, warp_error
from splatfilm.fit import FitConfig, load_capture, run_fit
from splatfilm.scene.gaussians import Gaussians
from splatfilm.io.gaussian_files import load_gaussians
from splatfilm.refine.distill import DistillConfig, progressive_update, step_toward
from splatfilm.refine.gate import Frame, GateConfig, gated_refine, quantize
from splatfilm.refine.pairs import PairConfig, make_pairs, render_view

W, H = 64, 48
K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])


def textured_wall(seed: int = 0, spacing: float = 0.05) -> Gaussians:
    """A 2 x 1.5 m wall in the plane y = 0 of flat Gaussians with random colours (texture
    that makes warping errors visible), facing -y."""
    g = torch.Generator().manual_seed(seed)
    u = np.arange(-1.0, 1.0 + 1e-9, spacing)
    v = np.arange(0.25, 1.75 + 1e-9, spacing)
    a, b = np.meshgrid(u, v, indexing="ij")
    pts = np.stack([a.ravel(), np.zeros(a.size), b.ravel()], -1)
    n = len(pts)
    scales = np.full((n, 3), spacing * 0.6)
    scales[:, 1] = 0.003
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1
    colors = torch.rand(n, 3, generator=g) * 0.8 + 0.1
    return Gaussians.from_activated(torch.tensor(pts, dtype=torch.float32), quats,
                                    torch.tensor(scales, dtype=torch.float32), torch.full((n,), 0.99), colors=colors)


def cams_along(eyes, target=(0.0, 0.0, 1.0)) -> Cameras:
    return Cameras(np.stack([look_at(e, target).numpy() for e in eyes]), K, W, H)


def frames_of(g: Gaussians, cams: Cameras) -> list[Frame]:
    out = []
    for i in range(len(cams)):
        v = render_view(g, cams[i], "cpu")
        out.append(Frame(v.rgb, v.depth, v.alpha, cams[i]))
    return out


class NoiseRefiner:
    """Adds fresh noise to every frame (deterministic per input, different per frame)."""

    name = "noise"

    def refine(self, images, reference=None, reference_mask=None, depth=None):
        seed = int(hashlib.sha256(images.numpy().tobytes()).hexdigest()[:8], 16)
        noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed)) * 0.06
        return (images + noise).clamp(0, 1)


class BrightenRefiner:
    """A consistent change: every pixel a little brighter."""

    name = "brighten"

    def refine(self, images, reference=None, reference_mask=None, depth=None):
        return (images + 0.04).clamp(0, 1)


class ScreenPatternRefiner:
    """Stripes fixed to the screen: the same in every frame, so they slide over the scene."""

    name = "pattern"

    def refine(self, images, reference=None, reference_mask=None, depth=None):
        x = torch.arange(images.shape[2])
        stripes = ((x // 3) % 2).float()[None, None, :, None] * 0.25 - 0.125
        return (images + stripes).clamp(0, 1)


def test_reproject_a_frame_into_itself_is_the_identity():
    g = textured_wall()
    f = frames_of(g, cams_along([(0.2, -3.0, 1.1)]))[0]
    warped, vis = reproject(f.depth, f.camera, f.rgb, f.depth, f.camera, alpha_a=f.alpha)
    assert vis.float().mean() > 0.3
    assert torch.allclose(warped[vis].float(), f.rgb[vis], atol=1e-5)
    # Two views of one static scene agree; a shifted copy of the image does not.
    f2 = frames_of(g, cams_along([(0.35, -3.0, 1.1)]))[0]
    e_same = warp_error(f2.rgb, f2.depth, f2.camera, f.rgb, f.depth, f.camera, alpha_a=f2.alpha).e_warp
    e_shift = warp_error(torch.roll(f2.rgb, 3, 1), f2.depth, f2.camera, f.rgb, f.depth, f.camera,
                         alpha_a=f2.alpha).e_warp
    assert e_same < 0.2 * e_shift


def _fisheye_wall_frame(eye, f: float = 40.0, w: int = 64, h: int = 48):
    """A 1-element equidistant fisheye camera at `eye` looking at the wall y = 0, and what it
    sees there in closed form: (camera, depth [h,w] camera z, rgb [h,w,3] of a smooth texture)."""
    V = look_at(eye, (0.0, 0.0, 1.0)).numpy()
    cam = Cameras(V[None], np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]]), w, h, None, "OPENCV_FISHEYE")
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    a, b = (xs - w / 2) / f, (ys - h / 2) / f
    theta = np.hypot(a, b)  # equidistant without coefficients: theta = r_px / f
    s = np.tan(theta) / np.maximum(theta, 1e-12)
    rays = np.stack([a * s, b * s, np.ones_like(a)], -1)  # camera z = 1
    R, t = V[:3, :3], V[:3, 3]
    centre, dirs = -R.T @ t, rays @ R
    z = -centre[1] / dirs[..., 1]
    X = centre + z[..., None] * dirs
    rgb = np.stack([0.5 + 0.4 * np.sin(X[..., 0]), 0.5 + 0.4 * np.cos(X[..., 2]),
                    0.5 + 0.2 * np.sin(X[..., 0] + X[..., 2])], -1)
    return cam, np.where(z > 0, z, 0.0), rgb


def test_reproject_goes_through_each_cameras_lens():
    """A fisheye frame warped into another of the same wall: the pinhole-only reprojection put
    pixels off the axis in the wrong place (E_warp 5.9e-6, 73% co-visible; through the lens
    2.2e-9 and 92%), which would have the refine gate judge fisheye shots by lens error."""
    ca, za, rgba = _fisheye_wall_frame((0.0, -1.2, 1.0))
    cb, zb, rgbb = _fisheye_wall_frame((0.25, -1.2, 1.1))
    warped, vis = reproject(za, ca, rgbb, zb, cb)
    assert vis.float().mean() > 0.85
    err = np.abs(warped.numpy() - rgba)[vis.numpy()]
    assert err.max() < 2e-3  # bilinear sampling of a smooth texture
    assert warp_error(rgba, za, ca, rgbb, zb, cb).e_warp < 1e-7


def test_step_toward_ends_at_start_and_target():
    a = cams_along([(0.0, -3.0, 1.0), (1.0, -3.0, 1.0)])
    b = cams_along([(0.5, -2.0, 1.5), (-1.0, -2.5, 0.8)], target=(0.3, 0.0, 0.9))
    assert np.allclose(step_toward(a, b, 0.0).viewmats, a.viewmats, atol=1e-9)
    assert np.allclose(step_toward(a, b, 1.0).viewmats, b.viewmats, atol=1e-9)
    mid = step_toward(a, b, 0.5)
    assert np.allclose(mid.centers, (a.centers + b.centers) / 2, atol=1e-9)


def test_gate_rejects_per_frame_noise_and_accepts_a_consistent_refiner():
    g = textured_wall()
    frames = frames_of(g, cams_along([(0.1 * i, -3.0 + 0.05 * i, 1.0) for i in range(6)]))
    noisy = gated_refine(frames, len(frames), NoiseRefiner(), GateConfig())
    assert noisy.rejected >= len(frames) - 1, noisy.accepted
    for out, f, ok in zip(noisy.outputs, frames, noisy.accepted):
        if not ok:
            assert (out - f.rgb).abs().max() <= 0.5 / 255 + 1e-6  # the raw frame (8-bit) was kept
    bright = gated_refine(frames, len(frames), BrightenRefiner(), GateConfig())
    assert bright.rejected == 0, bright.flicker
    assert all(float((o - f.rgb).mean()) > 0.02 for o, f in zip(bright.outputs, frames))


class JitteredSceneRefiner:
    """Detail the 3D scene holds: each frame refined to the render of a copy of the wall with
    its colours jittered (the same copy for every frame), so the detail is consistent; frames
    listed in `glitch` get strong per-frame noise on top instead."""

    name = "jittered"

    def __init__(self, frames: list[Frame], amount: float = 0.3, glitch: tuple[int, ...] = ()):
        g = textured_wall()
        gen = torch.Generator().manual_seed(7)
        j = Gaussians(g.means, g.quats, g.scales, g.opacities, g.sh0 + amount * torch.randn(g.sh0.shape, generator=gen),
                      g.shN)
        self.out = {}
        for i, f in enumerate(frames):
            o = render_view(j, f.camera, "cpu").rgb
            if i in glitch:
                o = (o + 0.2 * torch.randn(o.shape, generator=torch.Generator().manual_seed(i))).clamp(0, 1)
            self.out[f.rgb.numpy().tobytes()] = o

    def refine(self, images, reference=None, reference_mask=None, depth=None):
        return torch.stack([self.out[im.numpy().tobytes()] for im in images])


def _walk(n: int) -> list[Frame]:
    return frames_of(textured_wall(), cams_along([(0.03 + 0.1 * i, -3.0 + 0.05 * i, 1.0) for i in range(n)]))


def test_gate_accepts_detail_the_scene_holds_and_rejects_noise():
    """Fine detail that stays on the surface is kept: bilinear resampling of it in the warp
    used to count as flicker (every frame rejected, E_warp 1.3-4x the raw render's), while
    per-frame noise of the same size is still rejected."""
    frames = _walk(6)
    refiner = JitteredSceneRefiner(frames)
    res = gated_refine(frames, len(frames), refiner, GateConfig())
    assert res.rejected == 0, res.flicker
    for o, f in zip(res.outputs, frames):
        added = float((refiner.refine(f.rgb[None])[0] - f.rgb).abs().mean())
        assert float((o - f.rgb).abs().mean()) > 0.7 * added > 0.005
    noisy = gated_refine(frames, len(frames), NoiseRefiner(), GateConfig())
    assert noisy.rejected == len(frames), noisy.flicker


def test_one_rejected_frame_does_not_turn_refinement_off_for_the_rest_of_the_shot():
    """A glitch on frame 3 is rejected; frame 4 on is refined again. The gate measured the next
    frame's detail against the raw frame kept (all its detail counted as error) and carried
    half of zero detail into it: every later frame was rejected too."""
    frames = _walk(8)
    res = gated_refine(frames, len(frames), JitteredSceneRefiner(frames, glitch=(3,)), GateConfig())
    assert res.accepted == [True, True, True, False, True, True, True, True], res.flicker
    # Frame 4 carries the refiner's detail in full, not half of it blended with nothing.
    want = quantize(JitteredSceneRefiner(frames).refine(frames[4].rgb[None])[0])
    assert torch.equal(res.outputs[4], want)


class ReferenceSensitiveRefiner(JitteredSceneRefiner):
    """The jittered scene's consistent detail, except per-frame noise for the frames in
    `glitch_alone` refined without a reference and in `glitch_with` refined with one."""

    def __init__(self, frames: list[Frame], glitch_alone: tuple[int, ...], glitch_with: tuple[int, ...]):
        super().__init__(frames)
        noisy = JitteredSceneRefiner(frames, glitch=tuple(range(len(frames))))
        keys = [f.rgb.numpy().tobytes() for f in frames]
        self.alone = {k: (noisy if i in glitch_alone else self).out[k] for i, k in enumerate(keys)}
        self.with_ref = {k: (noisy if i in glitch_with else self).out[k] for i, k in enumerate(keys)}

    def refine(self, images, reference=None, reference_mask=None, depth=None):
        table = self.alone if reference is None else self.with_ref
        return torch.stack([table[im.numpy().tobytes()] for im in images])


def test_gate_resumed_at_a_shots_last_frame_after_a_rejection_decides_as_a_whole_run():
    """Frame 1 is rejected (frame 2's own candidate is noise), frame 2 refined with its reference
    is consistent detail. A run resumed at frame 2 had only frame 1's written output (the raw
    frame) to judge it by and rejected it, where the whole run had accepted it."""
    frames = _walk(3)
    refiner = ReferenceSensitiveRefiner(frames, glitch_alone=(0, 2), glitch_with=())
    whole = gated_refine(frames, len(frames), refiner, GateConfig())
    assert whole.accepted[:2] == [False, False], whole.flicker
    resumed = gated_refine(frames, len(frames), refiner, GateConfig(), start=2, previous_output=whole.outputs[1])
    assert resumed.accepted == whole.accepted[2:], (whole.flicker, resumed.flicker)
    assert torch.equal(resumed.outputs[0], whole.outputs[2])
    assert whole.accepted[2], whole.flicker  # its detail agrees with frame 1's own


def test_gate_settings_must_be_finite_and_not_negative():
    from splatfilm.errors import SplatfilmError

    for bad in ({"tolerance": float("nan")}, {"tolerance": float("inf")}, {"tolerance": -0.5},
                {"floor": -1e-6}, {"carry": 1.5}):
        with pytest.raises(SplatfilmError, match="refine gate"):
            GateConfig(**bad)


def _wall_capture(g: Gaussians, n: int = 8):
    """Photos of the wall from a row of cameras, as a Capture."""
    from splatfilm.fit.capture import Capture

    cams = cams_along([(-1.2 + 2.4 * i / (n - 1), -3.0, 1.0 + 0.2 * math.sin(i)) for i in range(n)])
    images = [(render_view(g, cams[i], "cpu").rgb.numpy() * 255 + 0.5).astype(np.uint8) for i in range(n)]
    return Capture(cams, images, [f"v{i}" for i in range(n)])


def test_distillation_keeps_shots_consistent_where_per_frame_refinement_does_not():
    truth = textured_wall(seed=0)
    capture = _wall_capture(truth)
    # The scene to refine: the truth with its colours disturbed.
    gen = torch.Generator().manual_seed(1)
    scene = Gaussians(truth.means, truth.quats, truth.scales, truth.opacities,
                      truth.sh0 + 0.3 * torch.randn(truth.sh0.shape, generator=gen), truth.shN)
    shot_a = cams_along([(-0.4 + 0.1 * i, -2.6, 1.0) for i in range(4)])
    shot_b = cams_along([(0.5, -3.2, 1.3 - 0.1 * i) for i in range(4)], target=(0.2, 0.0, 1.0))
    refiner = ScreenPatternRefiner()
    cfg = DistillConfig(rounds=2, views=4, steps=40, backend="cpu")
    distilled = progressive_update(scene, capture, Cameras.concat([shot_a, shot_b]), refiner, cfg, progress=False)

    fa, fb = frames_of(distilled, shot_a), frames_of(distilled, shot_b)
    ra, rb = frames_of(scene, shot_a), frames_of(scene, shot_b)

    def e_cross(rgb_a, rgb_b, frames_a, frames_b):
        es = [warp_error(rgb_a[i], frames_a[i].depth, frames_a[i].camera, rgb_b[j], frames_b[j].depth,
                         frames_b[j].camera, alpha_a=frames_a[i].alpha).e_warp
              for i in range(4) for j in range(4)]
        return float(np.nanmean(es))

    per_frame_a = [refiner.refine(f.rgb[None])[0] for f in ra]
    per_frame_b = [refiner.refine(f.rgb[None])[0] for f in rb]
    e_per_frame = e_cross(per_frame_a, per_frame_b, ra, rb)
    e_distilled = e_cross([f.rgb for f in fa], [f.rgb for f in fb], fa, fb)
    e_raw = e_cross([f.rgb for f in ra], [f.rgb for f in rb], ra, rb)
    assert e_distilled < 0.5 * e_per_frame, (e_distilled, e_per_frame, e_raw)
    # Continued training on the photos pulled the disturbed colours back toward the truth.
    photos = [torch.from_numpy(im).float() / 255 for im in capture.images]
    err = lambda g: np.mean([float(((render_view(g, capture.cameras[i], "cpu").rgb - photos[i]) ** 2).mean())  # noqa: E731
                             for i in range(len(photos))])
    assert err(distilled) < 0.7 * err(scene)


def test_distillation_resumes_from_finished_rounds(tmp_path):
    truth = textured_wall(seed=2, spacing=0.1)
    capture = _wall_capture(truth, n=5)
    targets = cams_along([(0.3, -2.5, 1.2), (-0.3, -2.8, 0.9)])
    cfg = DistillConfig(rounds=2, views=2, steps=5, backend="cpu")
    first = progressive_update(truth, capture, targets, BrightenRefiner(), cfg, work_dir=tmp_path, progress=False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len([f for f in files if f.endswith(".ply")]) == 2 and len([f for f in files if f.endswith(".npz")]) == 2
    again = progressive_update(truth, capture, targets, BrightenRefiner(), cfg, work_dir=tmp_path, progress=False)
    assert torch.equal(first.means, again.means) and torch.equal(first.sh0, again.sh0)


class ConstantRefiner:
    """Every pixel 64.5 / 255 in float32 (exactly 64.5 once times 255): a tie for 8-bit rounding."""

    name = "constant"

    def refine(self, images, reference=None, reference_mask=None, depth=None):
        return torch.full(images.shape, 64.5 / 255, dtype=torch.float32)


def test_pseudo_views_hold_the_8_bit_values_a_png_of_the_refined_image_would(tmp_path):
    from splatfilm.io.images import read_image, write_png
    from splatfilm.refine.distill import pseudo_views

    truth = textured_wall(seed=3, spacing=0.1)
    capture = _wall_capture(truth, n=3)
    _, images, _ = pseudo_views(truth, capture, cams_along([(0.2, -2.8, 1.0)]), ConstantRefiner(), 1.0, "cpu")
    write_png(tmp_path / "refined.png", np.full((H, W, 3), 64.5 / 255, dtype=np.float32))
    # Rounded half up as every PNG splatfilm writes (half to even gave 64, what no photo holds).
    assert np.array_equal(images[0], read_image(tmp_path / "refined.png")) and images[0][0, 0, 0] == 65


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refine")
    data = make_capture(folder / "cap", n_views=8)
    run_fit(data, folder / "scene.ply", FitConfig(steps=60, backend="cpu", sh_degree=1, checkpoint_every=0,
                                                  test_every=0), progress=False)
    return folder, data


def test_pairs_from_the_capture(tiny_fit):
    folder, data = tiny_fit
    capture = load_capture(data, folder / "work")
    scene = load_gaussians(folder / "scene.ply")
    pairs = make_pairs(capture, scene, PairConfig(folds=2, steps=20, undertrained=(0.2,), lowres=2.0,
                                                  backend="cpu"), progress=False)
    kinds = [p.kind for p in pairs]
    assert kinds.count("heldout") == 2 * 8 and kinds.count("undertrained") == 8
    assert kinds.count("lowres") == 8 and kinds.count("final") == 8
    for p in pairs:
        assert p.render.shape == p.target.shape == p.reference.shape == (H, W, 3)
        assert p.reference_mask.shape == (H, W, 1)
    final = [p for p in pairs if p.kind == "final"]
    # References come from the neighbouring photos: where valid, they show what the photo shows.
    cover = np.mean([float(p.reference_mask.mean()) for p in final])
    assert cover > 0.05
    m = torch.cat([p.reference_mask.bool().expand(-1, -1, 3).reshape(-1) for p in final])
    ref = torch.cat([p.reference.reshape(-1) for p in final])
    tgt = torch.cat([p.target.reshape(-1) for p in final])
    assert (ref[m] - tgt[m]).abs().mean() < (ref[m] - tgt[m].flip(0)).abs().mean()


def test_cli_refine_end_to_end_and_resume(tiny_fit, tmp_path, capsys):
    folder, data = tiny_fit
    out = tmp_path / "refined.ply"
    args = ["refine", str(folder / "scene.ply"), str(data), "--cameras", str(data / "transforms.json"), "-o", str(out),
            "--rounds", "1", "--steps", "10", "--views", "3", "--folds", "2", "--pair-steps", "20",
            "--refiner-iterations", "5", "--backend", "cpu"]
    assert main(args) in (0, None)
    assert out.exists()
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["refined"]["target_cameras"] == 8 and side["refined"]["refiner"].startswith("scene:")
    assert (tmp_path / "refined.refine" / "refiner" / "refiner.json").exists()
    first = out.read_bytes()
    capsys.readouterr()
    assert main(args) in (0, None)
    said = capsys.readouterr().err  # status lines go to stderr (splatfilm.report)
    assert "reusing" in said and "done before" in said
    assert list((tmp_path / "refined.refine" / "refiner").glob("pairs.*.npz"))
    # Interrupted after the pairs were made: they are reused, not made again.
    (tmp_path / "refined.refine" / "refiner" / "refiner.json").unlink()
    assert main(args) in (0, None)
    assert re.search(r"reusing the \d+ pairs", capsys.readouterr().err)
    assert out.read_bytes() == first
    # Target views: exactly one of --shots / --cameras.
    with pytest.raises(SystemExit) as e:
        main(args[:3] + ["-o", str(out)])
    assert e.value.code == 2


@pytest.mark.parametrize("said_by", ["sidecar", "spz"])
def test_refine_trains_and_renders_an_antialiased_scene_antialiased(tiny_fit, tmp_path, monkeypatch, said_by):
    """The scene's rasterize_mode holds through refine: its pair fits and continued training
    train in it, every render of it uses it, and the refined asset records it (an antialiased
    asset optimised under classic image formation, then rendered antialiased, was wrong; one
    an .spz flag alone called antialiased came out classic)."""
    import shutil

    from splatfilm.fit import trainer
    from splatfilm.io.gaussian_files import save_gaussians
    from splatfilm.refine import pairs as pairs_module
    from splatfilm.refine.run import run_refine
    from splatfilm.refine.scene_refiner import SceneRefinerConfig

    folder, data = tiny_fit
    if said_by == "sidecar":
        scene = tmp_path / "aa.ply"
        shutil.copy(folder / "scene.ply", scene)
        side = json.loads((folder / "scene.json").read_text())
        side.update(asset=scene.name, rasterize_mode="antialiased")
        scene.with_suffix(".json").write_text(json.dumps(side))
    else:
        scene = tmp_path / "aa.spz"
        save_gaussians(scene, load_gaussians(folder / "scene.ply"), antialiased=True)
    seen: dict[str, list[str]] = {"trained": [], "rendered": []}

    def recording(real, into):
        def rasterization(*args, **kwargs):
            seen[into].append(kwargs.get("rasterize_mode", "classic"))
            return real(*args, **kwargs)
        return rasterization

    monkeypatch.setattr(trainer, "rasterization", recording(trainer.rasterization, "trained"))
    monkeypatch.setattr(pairs_module, "rasterization", recording(pairs_module.rasterization, "rendered"))
    cams = load_capture(data, tmp_path / "w").cameras
    run_refine(scene, data, tmp_path / "out.ply", cams[:2], progress=False,
               pair_cfg=PairConfig(folds=2, steps=4, undertrained=(0.5,), lowres=0, backend="cpu"),
               train_cfg=SceneRefinerConfig(iterations=2, batch=2),
               distill_cfg=DistillConfig(rounds=1, views=2, steps=3, backend="cpu"))
    assert seen["trained"] and set(seen["trained"]) == {"antialiased"}
    assert seen["rendered"] and set(seen["rendered"]) == {"antialiased"}
    assert json.loads((tmp_path / "out.json").read_text())["rasterize_mode"] == "antialiased"


def test_render_film_with_refine_gates_each_shot_and_resumes_from_the_lost_frame(film_dir):
    import imageio.v3 as iio

    from splatfilm.film import RenderOptions, render_film
    from splatfilm.refine.scene_refiner import SceneRefiner

    refiner_dir = film_dir / "refiner"
    SceneRefiner.untrained().save(refiner_dir)  # the identity: every frame passes the gate unchanged
    quiet = dict(progress=False, log=lambda *_: None)
    raw, refine = RenderOptions(backend="cpu"), RenderOptions(backend="cpu", refine=refiner_dir)
    render_film(film_dir / "film.yaml", film_dir / "raw", raw, **quiet)
    res = render_film(film_dir / "film.yaml", film_dir / "refined", refine, **quiet)
    assert res.rendered == {"sh010": 8, "sh020": 7} and res.refine_rejected == 0
    for raw in sorted((film_dir / "raw").glob("sh0*/*.png")):
        refined = film_dir / "refined" / raw.relative_to(film_dir / "raw")
        diff = np.abs(iio.imread(raw).astype(int) - iio.imread(refined).astype(int))
        assert diff.max() <= 1, raw.name
    assert (film_dir / "refined" / "tiny.mp4").exists()
    manifest = json.loads((film_dir / "refined" / ".splatfilm-film.json").read_text())
    assert len(manifest["refine"]) == 15 and all(manifest["refine"].values())
    res = render_film(film_dir / "film.yaml", film_dir / "refined", refine, **quiet)
    assert res.rendered == {"sh010": 0, "sh020": 0}
    # A lost frame: it and every later frame of its shot (they depend on it) render again.
    (film_dir / "refined" / "sh010" / "sh010.1004.png").unlink()
    res = render_film(film_dir / "film.yaml", film_dir / "refined", refine, **quiet)
    assert res.rendered == {"sh010": 5, "sh020": 0}


def test_refine_refuses_a_lens_capture(tmp_path):
    """Refinement's pairs reproject through pinhole depth: a fisheye capture (which fit now
    accepts) is refused in one line instead of misaligned."""
    from splatfilm.errors import SplatfilmError
    from splatfilm.io.gaussian_files import save_gaussians
    from splatfilm.refine.run import run_refine

    folder, gs = make_lens_capture(tmp_path / "cap", "OPENCV_FISHEYE", n_views=2)
    save_gaussians(tmp_path / "scene.ply", gs)
    cams = load_capture(folder, tmp_path / "w").cameras
    with pytest.raises(SplatfilmError, match="refine takes pinhole .* OPENCV_FISHEYE"):
        run_refine(tmp_path / "scene.ply", folder, tmp_path / "out.ply", cams, progress=False)


def test_refine_notes_a_capture_it_moves_into_the_scenes_frame(tmp_path, monkeypatch, capsys):
    """A scene fitted centred from a capture far from the origin (frame.origin_offset) refines
    against that capture moved into its frame; refine moved it without a word, where `clean`,
    `mesh` and `render-cameras` say so (`Cameras.in_asset_frame`'s note)."""
    from splatfilm.assets.sidecar import Sidecar
    from splatfilm.io.asset_files import sidecar_path
    from splatfilm.io.gaussian_files import save_gaussians
    from splatfilm.refine import run

    offset = np.array([2e5, -1e5, 40.0])
    data = make_capture(tmp_path / "cap", n_views=2, points=False)
    meta = json.loads((data / "transforms.json").read_text())
    for frame in meta["frames"]:  # the capture in its own world, far from the origin
        frame["transform_matrix"] = (np.array(frame["transform_matrix"]) + np.pad(offset[:, None], ((0, 1), (3, 0)))
                                     ).tolist()
    (data / "transforms.json").write_text(json.dumps(meta))
    scene = tmp_path / "scene.ply"
    save_gaussians(scene, textured_wall())
    Sidecar({"frame": {"origin_offset": offset.tolist()}}).write(sidecar_path(scene))
    seen = []

    def stop(capture, *a, **k):
        seen.append(capture.cameras)
        raise RuntimeError("stop here")

    monkeypatch.setattr(run, "scene_refiner_for", stop)
    with pytest.raises(RuntimeError, match="stop here"):
        run.run_refine(scene, data, tmp_path / "out.ply", cams_along([(0.0, -3.0, 1.0)]), progress=False,
                       distill_cfg=DistillConfig(backend="cpu"), pair_cfg=PairConfig(backend="cpu"))
    own = load_capture(make_capture(tmp_path / "own", n_views=2, points=False), tmp_path / "w").cameras
    np.testing.assert_allclose(seen[0].centers, own.centers, atol=1e-6)
    err = capsys.readouterr().err
    assert f"note: {data}: in the capture's world, scene.ply's frame moved by its origin_offset" in err


def test_distillation_redoes_rounds_for_a_scene_changed_in_more_than_its_means(tmp_path, capsys):
    """The work folder's rounds were keyed on the Gaussians' means alone: a recoloured scene
    reused the old scene's rounds ("done before, kept") and the recolouring was lost."""
    truth = textured_wall(seed=2, spacing=0.1)
    capture = _wall_capture(truth, n=3)
    targets = cams_along([(0.3, -2.5, 1.2)])
    cfg = DistillConfig(rounds=1, views=1, steps=2, backend="cpu")
    progressive_update(truth, capture, targets, BrightenRefiner(), cfg, work_dir=tmp_path)
    recoloured = Gaussians(truth.means, truth.quats, truth.scales, truth.opacities, truth.sh0 * 0.5, truth.shN)
    capsys.readouterr()
    again = progressive_update(recoloured, capture, targets, BrightenRefiner(), cfg, work_dir=tmp_path)
    assert "done before" not in capsys.readouterr().err
    assert len(list(tmp_path.glob("round1.*.ply"))) == 2
    assert float((again.sh0 - truth.sh0).abs().mean()) > 0.05


@pytest.mark.parametrize("bad", ["nan", "inf", "-0.5"])
def test_tolerances_and_weights_must_be_finite_and_not_negative(bad, tmp_path, capsys):
    from splatfilm.errors import SplatfilmError

    for argv in (["render", "f.yaml", "-o", str(tmp_path / "o"), "--refine", "r", "--refine-tolerance", bad],
                 ["refine", "s.ply", "d", "--cameras", "c.json", "-o", "o.ply", "--pseudo-weight", bad]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and "expected a finite number >= 0" in capsys.readouterr().err
    with pytest.raises(SplatfilmError, match="pseudo-weight must be a finite number >= 0"):
        DistillConfig(pseudo_weight=float(bad))


def test_render_with_refine_says_it_does_not_use_workers_or_ray(film_dir, monkeypatch, capsys):
    """Refined frames render in order in this process: --workers and --ray were silently
    ignored (and --ray still started a cluster)."""
    from splatfilm.film import RenderOptions, render
    from splatfilm.refine.scene_refiner import SceneRefiner

    SceneRefiner.untrained().save(film_dir / "refiner")
    monkeypatch.setattr(render, "connect_ray", lambda *a: pytest.fail("connected to Ray for a refined render"))
    monkeypatch.setattr(render, "refine_shots", lambda *a: None)  # the notes are what is tested here
    for extra, said in (({"workers": 2}, "--workers is"), ({"ray_address": "local"}, "--ray is"),
                        ({"workers": 3, "ray_address": "local"}, "--workers and --ray are")):
        capsys.readouterr()
        render.render_film(film_dir / "film.yaml", film_dir / "out", RenderOptions(
            backend="cpu", refine=film_dir / "refiner", frames_only=True, **extra), progress=False)
        said_lines = capsys.readouterr().err.splitlines()  # a note, on stderr (splatfilm.report)
        assert f"note: --refine renders each shot in order in this process; {said} not used" in said_lines
