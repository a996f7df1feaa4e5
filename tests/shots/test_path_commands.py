"""`splatfilm path export|preview` end to end, and renders of exported cameras matching the shot's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import REPO

from splatfilm.errors import SplatfilmError
from splatfilm.shots import load_shot
from splatfilm.cli.shots import add_path_commands

SCENE = REPO / "scenes" / "demo" / "scene.ply"

SMALL_SHOT = """\
name: tiny
fps: 24
frames: 4
resolution: [64, 36]
lens: 35mm
move: {type: dolly, from: [0, -3.2, 1.3], target: [0, 0, 0.75], distance: 1.5, ease: 0.5}
"""


def _run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="splatfilm")
    add_path_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


@pytest.fixture
def small_shot(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(SMALL_SHOT)
    return p


def test_export_all_formats(tmp_path, small_shot, capsys):
    for name, word in (("tiny.usda", "USD"), ("transforms.json", "transforms.json"), ("tiny.json", "camera path")):
        _run(["path", "export", str(small_shot), "-o", str(tmp_path / "out" / name)])
        assert (tmp_path / "out" / name).exists()
        assert word in capsys.readouterr().out
    with pytest.raises(SplatfilmError, match="unknown export format"):
        _run(["path", "export", str(small_shot), "-o", str(tmp_path / "tiny.txt")])
    with pytest.raises(SplatfilmError, match="no such file"):
        _run(["path", "export", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "x.json")])


def test_a_camera_path_without_a_runs_transforms_says_which_world_it_is_in(tmp_path, small_shot, capsys):
    out = tmp_path / "tiny.json"
    _run(["path", "export", str(small_shot), "-o", str(out)])
    err = capsys.readouterr().err
    assert err.startswith(f"note: {out}: ") and err.count("\n") == 1 and "--dataparser-transforms" in err
    dp = tmp_path / "dataparser_transforms.json"
    dp.write_text(json.dumps({"transform": np.eye(4)[:3].tolist(), "scale": 0.5}))
    _run(["path", "export", str(small_shot), "-o", str(out), "--dataparser-transforms", str(dp)])
    _run(["path", "export", str(small_shot), "-o", str(tmp_path / "tiny.usda")])
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(not SCENE.exists(), reason="bundled demo scene missing")
def test_preview_and_contact_sheet(tmp_path, small_shot):
    from PIL import Image

    _run(["path", "preview", str(small_shot), str(SCENE), "-o", str(tmp_path / "preview.png"),
          "--contact-sheet", str(tmp_path / "sheet.png"), "--every", "2", "--thumb-width", "48", "--backend", "cpu"])
    preview = np.asarray(Image.open(tmp_path / "preview.png"))
    assert preview.shape[0] > 300 and preview.shape[1] > 300 and preview.std() > 10  # the scene is drawn
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape[1] >= 3 * 48  # frames 1001, 1003 and the last, 1004
    with pytest.raises(SplatfilmError, match="go with --contact-sheet"):
        _run(["path", "preview", str(small_shot), str(SCENE), "-o", str(tmp_path / "p.png"), "--every", "2"])


@pytest.mark.skipif(not SCENE.exists(), reason="bundled demo scene missing")
def test_exported_cameras_render_the_shots_frames(tmp_path, small_shot):
    """What a user renders from the exported files is the shot, frame for frame."""
    from splatfilm.io.gaussian_files import load_gaussians
    from splatfilm.render import rasterization
    from splatfilm.render.render_cameras import RenderSettings, render_cameras

    shot = load_shot(small_shot)
    g = load_gaussians(SCENE)
    viewmats, Ks = shot.cameras().to_tensors(torch.float32)
    direct = rasterization(g, viewmats, Ks, 64, 36, backend="cpu").rgb.numpy()
    for name in ("transforms.json", "tiny.json"):
        exported = tmp_path / name
        _run(["path", "export", str(small_shot), "-o", str(exported)])
        out = tmp_path / f"render_{exported.stem}"
        pngs = render_cameras(SCENE, exported, out, RenderSettings(backend="cpu"), progress=False)
        assert len(pngs) == 4
        if name == "transforms.json":
            assert [p.name for p in pngs] == [f"tiny.{f}.png" for f in range(1001, 1005)]
        from PIL import Image

        for i, png in enumerate(pngs):
            img = np.asarray(Image.open(png), dtype=np.float64) / 255
            assert np.abs(img - direct[i]).max() <= 1 / 255 + 1e-6


def test_a_films_shot_exports_as_render_frames_it(film_dir, capsys):
    """`path export FILM.yaml --shot NAME` writes the film's shot (its handle frames, the
    film's resolution, asset targets where they stand), not a refusal of the script's fields."""
    from splatfilm.film import parse_film
    from splatfilm.film.script import find_shot
    from splatfilm.io.camera_files import read_cameras

    out = film_dir / "sh010.json"
    _run(["path", "export", str(film_dir / "film.yaml"), "--shot", "sh010", "-o", str(out)])
    assert "wrote sh010 (8 frames 1001-1008 at 24 fps)" in capsys.readouterr().out
    want = find_shot(parse_film(film_dir / "film.yaml", ["sh010"]).shots, "sh010", film_dir).shot.cameras()
    got = read_cameras(out)
    assert len(got) == len(want) == 8 and got.widths[0] == 64 and got.heights[0] == 36
    assert np.allclose(got.viewmats, want.viewmats, atol=1e-6) and np.allclose(got.Ks, want.Ks, atol=1e-6)
    _run(["path", "export", str(film_dir / "film.yaml"), "--shot", "sh020", "-o", str(film_dir / "sh020.usda")])
    assert (film_dir / "sh020.usda").exists()
    with pytest.raises(SplatfilmError, match="has 2 shots; name one with --shot"):
        _run(["path", "export", str(film_dir / "film.yaml"), "-o", str(film_dir / "x.json")])
    with pytest.raises(SplatfilmError, match="no shot called 'sh999'"):
        _run(["path", "export", str(film_dir / "film.yaml"), "--shot", "sh999", "-o", str(film_dir / "x.json")])


def test_shot_on_a_shot_file_names_the_file(small_shot, tmp_path):
    """`--shot` given with a shot file is bad input: its error names the file (`error: FILE: ...`)."""
    with pytest.raises(SplatfilmError, match=r"^\S*tiny\.yaml: --shot picks a shot of a film script"):
        _run(["path", "export", str(small_shot), "--shot", "tiny", "-o", str(tmp_path / "x.json")])
    with pytest.raises(SplatfilmError, match=r"^\S*tiny\.yaml: --shot picks a shot of a film script"):
        _run(["path", "preview", str(small_shot), str(SCENE), "--shot", "tiny", "-o", str(tmp_path / "x.png")])
