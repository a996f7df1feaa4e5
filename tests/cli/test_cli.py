"""`splatfilm render-cameras` end to end: a PLY written by gsplat's exporter, rendered from a
nerfstudio transforms.json, against an independent brute-force reference; outputs, resume
and errors as a user meets them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from helpers import FIXTURES, REPO, cli_error, random_gaussians
from gsplat import export_splats
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics

from splatfilm.cli import main
from splatfilm.io.images import read_depth
from splatfilm.io.camera_files import read_transforms_json
from splatfilm.render.rasterize_to_pixels import rasterize_to_pixels_reference

TRANSFORMS = FIXTURES / "transforms.json"


def _reference_images(gs, cams, background=(0.0, 0.0, 0.0)):
    """Per camera: RGB [H,W,3], alpha [H,W,1], expected depth [H,W,1], all float64, from gsplat's
    own PyTorch projection and SH, and a per-pixel brute-force compositor (no tiles)."""
    g = gs.to(dtype=torch.float64)
    out = []
    for i in range(len(cams)):
        viewmats, Ks = cams[i].to_tensors(torch.float64)
        w, h = int(cams.widths[i]), int(cams.heights[i])
        covars, _ = _quat_scale_to_covar_preci(g.quats, g.activated_scales, compute_preci=False, triu=False)
        radii, means2d, depths, conics, _ = _fully_fused_projection(g.means, covars, viewmats, Ks, w, h)
        campos = torch.linalg.inv(viewmats)[:, :3, 3]
        colors = _spherical_harmonics(g.sh_degree, g.means[None] - campos[:, None], g.sh[None].expand(1, -1, -1, -1))
        colors = (colors + 0.5).clamp_min(0.0)
        feats = torch.cat([colors, depths[..., None]], dim=-1)
        op = g.activated_opacities[None]
        acc, alpha, _ = rasterize_to_pixels_reference(means2d, conics, op, feats, radii, depths, w, h)
        rgb = acc[0, ..., :3] + (1 - alpha[0]) * torch.tensor(background, dtype=torch.float64)
        depth = acc[0, ..., 3:] / alpha[0].clamp_min(1e-10)
        out.append((rgb.numpy(), alpha[0].numpy(), depth.numpy()))
    return out


@pytest.fixture(scope="module")
def gsplat_ply(tmp_path_factory):
    """A degree-3 scene around the fixture cameras' target, written by gsplat's own exporter."""
    gs = random_gaussians(300, sh_degree=3, dtype=torch.float32, seed=3, spread=0.6, log_scale=(-2.8, 0.4),
                          opacity=(0.05, 0.9999))
    path = tmp_path_factory.mktemp("scene") / "gsplat_export.ply"
    export_splats(gs.means, gs.scales, gs.quats, gs.opacities, gs.sh0, gs.shN, format="ply", save_to=str(path))
    return path, gs


def _pinhole_copy(tmp_path) -> Path:
    """The fixture transforms.json without its lens distortion (the brute-force reference is a
    pinhole renderer; tests/render/test_render_cameras_lens.py covers distorted captures)."""
    meta = json.loads(TRANSFORMS.read_text())
    for key in ("k1", "k2", "k3", "k4", "p1", "p2"):
        meta.pop(key, None)
    meta["camera_model"] = "PINHOLE"
    path = tmp_path / "pinhole_transforms.json"
    path.write_text(json.dumps(meta))
    return path


def test_render_cameras_matches_brute_force_reference(gsplat_ply, tmp_path, capsys):
    ply, gs = gsplat_ply
    out = tmp_path / "out"
    pinhole = _pinhole_copy(tmp_path)
    assert main(["render-cameras", str(ply), str(pinhole), "-o", str(out), "--backend", "cpu",
                 "--background", "0.2,0.3,0.4", "--depth"]) == 0
    cams = read_transforms_json(pinhole)
    refs = _reference_images(gs, cams, background=(0.2, 0.3, 0.4))
    for i, (rgb, _, depth) in enumerate(refs):
        png = iio.imread(out / f"frame_{i:05d}.png")
        assert png.shape == (48, 64, 3)
        expected = np.clip(rgb, 0, 1) * 255
        # 8-bit output of a float32 render vs a float64 reference: at most one rounding step.
        assert np.abs(png.astype(np.float64) - expected).max() <= 1.0 + 1e-6
        assert png.std() > 5  # an actual picture, not a flat frame
        d = read_depth(out / f"frame_{i:05d}.depth.exr")
        covered = refs[i][1][..., 0] > 0.05
        assert covered.mean() > 0.05
        np.testing.assert_allclose(d[covered], depth[..., 0][covered], rtol=1e-4, atol=1e-4)
        empty = refs[i][1][..., 0] == 0  # nothing seen: far (1e10, as Cycles writes), not at the lens (0)
        assert empty.sum() > 20 and np.all(d[empty] == 1e10)
    # The fixture's own cameras are OPENCV (a mild k1..p2): rendered through their distortion,
    # not as pinholes, so they differ from the reference by more than 8-bit rounding (measured 4.5).
    assert main(["render-cameras", str(ply), str(TRANSFORMS), "-o", str(tmp_path / "lens"), "--backend", "cpu",
                 "--background", "0.2,0.3,0.4"]) == 0
    diff = np.abs(iio.imread(tmp_path / "lens" / "frame_00000.png").astype(np.float64) - np.clip(refs[0][0], 0, 1) * 255)
    assert diff.max() > 2.5


def test_transparent_writes_straight_alpha_rgba(gsplat_ply, tmp_path):
    ply, gs = gsplat_ply
    out = tmp_path / "out"
    pinhole = _pinhole_copy(tmp_path)
    assert main(["render-cameras", str(ply), str(pinhole), "-o", str(out), "--backend", "cpu", "--transparent",
                 "--depth", "--depth-format", "npy"]) == 0
    cams = read_transforms_json(pinhole)
    rgb, alpha, _ = _reference_images(gs, cams[:1])[0]
    png = iio.imread(out / "frame_00000.png")
    assert png.shape == (48, 64, 4)
    assert np.abs(png[..., 3].astype(np.float64) - alpha[..., 0] * 255).max() <= 1.0 + 1e-6
    solid = alpha[..., 0] > 0.5
    straight = rgb[solid] / alpha[solid]
    assert np.abs(png[..., :3][solid].astype(np.float64) - np.clip(straight, 0, 1) * 255).max() <= 1.5
    d = np.load(out / "frame_00000.depth.npy")
    assert np.all(d[alpha[..., 0] == 0] == 1e10) and d[solid].max() < 100


def test_rerun_keeps_finished_frames_and_rerenders_changed_ones(gsplat_ply, tmp_path, capsys):
    from splatfilm.io.atomic import work_lock

    ply, _ = gsplat_ply
    scene = tmp_path / "scene.ply"
    shutil.copy(ply, scene)
    out = tmp_path / "out"
    args = ["render-cameras", str(scene), str(TRANSFORMS), "-o", str(out), "--backend", "cpu"]
    assert main(args) == 0
    first = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert len(first) == 6
    # An interrupted run: one frame lost (a killed one: its scratch left half written). The
    # rerun renders only that one and clears the scratch; none while another render runs there.
    (out / "frame_00003.png").unlink()
    scratch = out / ".frame_00003.png.3105.6abb6dac.tmp" / "frame_00003.png"
    scratch.parent.mkdir()
    scratch.write_bytes(b"")
    capsys.readouterr()
    with work_lock(out, "render-cameras"):
        assert "another render-cameras is using this folder" in cli_error(capsys, args)
    assert main(args) == 0
    assert "kept 5 frame(s)" in capsys.readouterr().err
    assert not scratch.parent.exists()
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == first  # deterministic too
    # Frames of other cameras from an earlier render are left, and said to be there.
    shutil.copy(out / "frame_00000.png", out / "street_0001.png")
    assert main(args) == 0
    assert "also holds 1 other PNG(s) (street_0001.png)" in capsys.readouterr().err
    (out / "street_0001.png").unlink()
    # A changed setting re-renders everything.
    assert main(args + ["--background", "1,1,1"]) == 0
    assert "kept" not in capsys.readouterr().err
    assert not list(out.glob(".*.tmp*"))


def test_size_override_and_other_camera_files(gsplat_ply, tmp_path, capsys):
    ply, _ = gsplat_ply
    out = tmp_path / "a"
    assert main(["render-cameras", str(ply), str(TRANSFORMS), "-o", str(out), "--backend", "cpu", "--width", "32"]) == 0
    assert iio.imread(out / "frame_00000.png").shape == (24, 32, 3)
    out = tmp_path / "b"
    assert main(["render-cameras", str(ply), str(FIXTURES / "colmap" / "sparse" / "0"), "-o", str(out),
                 "--backend", "cpu"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [f"frame_{i:05d}.png" for i in range(6)]
    assert "note:" not in capsys.readouterr().err
    out = tmp_path / "c"
    assert main(["render-cameras", str(ply), str(FIXTURES / "camera_path.json"), "-o", str(out), "--backend", "cpu",
                 "--width", "64", "--height", "36"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:05d}.png" for i in range(12)]
    assert iio.imread(out / "00000.png").shape == (36, 64, 3)
    # Read without the run's dataparser_transforms.json, the path's world is said, on one line of stderr.
    note = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "camera_path.json" in note[0] and "--dataparser-transforms" in note[0]


def test_bad_inputs_give_one_line_errors(gsplat_ply, tmp_path, capsys):
    ply, _ = gsplat_ply
    out = str(tmp_path / "out")
    missing = tmp_path / "missing.ply"
    assert "missing.ply" in cli_error(capsys, ["render-cameras", str(missing), str(TRANSFORMS), "-o", out])
    truncated = tmp_path / "truncated.ply"
    truncated.write_bytes(ply.read_bytes()[:-100])
    assert "truncated.ply" in cli_error(capsys, ["render-cameras", str(truncated), str(TRANSFORMS), "-o", out])
    bad_cams = tmp_path / "bad.json"
    bad_cams.write_text(json.dumps({"frames": [{"file_path": "a.png", "transform_matrix": [[float("nan")] * 4] * 4}],
                                    "fl_x": 50, "fl_y": 50, "cx": 32, "cy": 24, "w": 64, "h": 48}))
    assert "bad.json" in cli_error(capsys, ["render-cameras", str(ply), str(bad_cams), "-o", out])
    assert "sh-degree" in cli_error(capsys, ["render-cameras", str(ply), str(TRANSFORMS), "-o", out, "--sh-degree", "4"])
    if not torch.cuda.is_available():
        assert "CUDA" in cli_error(capsys, ["render-cameras", str(ply), str(TRANSFORMS), "-o", out, "--backend", "gsplat"])
    assert not Path(out).exists() or not list(Path(out).glob("*.png"))


def test_bundled_scene_renders_from_its_cameras(tmp_path):
    scenes = REPO / "scenes" / "demo"
    out = tmp_path / "demo"
    assert main(["render-cameras", str(scenes / "scene.ply"), str(scenes / "transforms.json"), "-o", str(out),
                 "--backend", "cpu", "--width", "160"]) == 0
    frames = sorted(out.glob("*.png"))
    assert len(frames) == 24
    for f in frames[::8]:
        im = iio.imread(f)
        assert im.shape == (120, 160, 3)
        assert im.std() > 20 and im.mean() > 30  # a lit room, not a black or flat frame


def test_render_cameras_renders_a_scene_in_its_own_rasterize_mode(gsplat_ply, tmp_path):
    """A scene whose sidecar says it was trained antialiased renders so by default; the
    command line still picks either mode."""
    ply, _ = gsplat_ply
    scene = tmp_path / "scene.ply"
    shutil.copy(ply, scene)
    base = ["render-cameras", str(scene), str(TRANSFORMS), "--backend", "cpu", "--width", "32"]

    def frame(out, *extra):
        assert main(base + ["-o", str(tmp_path / out), *extra]) == 0
        return iio.imread(tmp_path / out / "frame_00000.png")

    classic, aa = frame("classic", "--rasterize-mode", "classic"), frame("aa", "--antialiased")
    assert np.abs(classic.astype(int) - aa.astype(int)).max() > 2
    assert np.array_equal(frame("default"), classic)
    (tmp_path / "scene.json").write_text(json.dumps({"asset": "scene.ply", "rasterize_mode": "antialiased"}))
    assert np.array_equal(frame("trained_aa"), aa)
    assert np.array_equal(frame("forced", "--rasterize-mode", "classic"), classic)
