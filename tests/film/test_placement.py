"""Placing assets in a film: a fitted scene stood upright, a sidecar's scale to metres, the notes
on placements that go wrong without a word (a tilted scene, a z that on_ground replaces, an
asset no frame sees), and `render --frames`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import cli_error, square_splats

from splatfilm.film import RenderOptions, parse_film, render_film
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import axis_rotation

# A phone capture's frame: its up 136 degrees from +z (the reviewer's was (0.08, -0.69, -0.72)).
TILT = axis_rotation("x", np.radians(136.0))


def _edit(folder: Path, fn) -> None:
    data = yaml.safe_load((folder / "film.yaml").read_text())
    fn(data)
    (folder / "film.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _tilted_scene(folder: Path, scale_to_metres: float | None = None) -> np.ndarray:
    """table.ply: a 0.6 m floor (z = 0.1 before the tilt) with a small block on it, stored turned
    by TILT and moved, as a fitted scene (sidecar kind: scene, frame.up, its ground plane as
    `splatfilm ground` records it). Returns its up in its own frame [3]."""
    floor = square_splats([0, 0, 0.1], 0.6, [0.8, 0.5, 0.2], normal_axis=2, spacing=0.05)
    block = square_splats([0, 0, 0.3], 0.2, [0.2, 0.8, 0.2], normal_axis=0, spacing=0.05)
    g = Gaussians.concat([floor, block])
    shift = np.array([2.0, -1.0, 0.5])
    g = g.transformed(torch.tensor(TILT, dtype=g.dtype), torch.tensor(shift, dtype=g.dtype))
    save_gaussians(folder / "table.ply", g)
    up = TILT @ np.array([0.0, 0.0, 1.0])
    # n . x + d = 0 through the turned floor point TILT @ (0, 0, 0.1) + shift
    offset = -float(up @ (TILT @ np.array([0, 0, 0.1]) + shift))
    (folder / "table.json").write_text(json.dumps({
        "kind": "scene", "frame": {"up": up.tolist(), "scale_to_metres": scale_to_metres},
        "ground": {"normal": up.tolist(), "offset": offset, "inliers": 0.5}}))
    return up


def test_an_upright_scene_stands_on_its_ground_and_one_placed_as_stored_is_told(film_dir):
    from splatfilm.assets.ground import read_ground

    up = _tilted_scene(film_dir)
    _edit(film_dir, lambda d: d["assets"].update(table={"file": "table.ply", "upright": True,
                                                        "position": [0.3, -0.5, 0.2], "yaw": 20}))
    film = parse_film(film_dir / "film.yaml")
    table = film.world.assets["table"]
    w = table.world_transform(0.0)
    assert w.rotation @ up == pytest.approx([0, 0, 1], abs=1e-9)  # its ground normal along +z
    ground = read_ground(table.source).transformed(w)
    assert ground.normal == pytest.approx([0, 0, 1], abs=1e-9)
    assert -ground.offset == pytest.approx(0.2, abs=1e-6)  # its floor at the position's z
    # placed as an object: its bounds' middle (the floor's) over the position's (x, y)
    floor_mid = w.apply(TILT @ np.array([0, 0, 0.1]) + np.array([2.0, -1.0, 0.5]))
    assert floor_mid == pytest.approx([0.3, -0.5, 0.2], abs=0.03)
    assert not [n for n in film.notes if "table" in n]

    _edit(film_dir, lambda d: d["assets"]["table"].pop("upright"))  # as stored: 136 degrees over, told
    film = parse_film(film_dir / "film.yaml")
    note = [n for n in film.notes if "assets.table" in n]
    assert len(note) == 1 and "136 deg off" in note[0] and "upright: true" in note[0], film.notes
    assert "scale to metres is unknown" in note[0] and "scale:" in note[0]

    _edit(film_dir, lambda d: d["assets"]["table"].update(canonical=True, upright=True))
    with pytest.raises(Exception, match="canonical_transform|upright"):
        parse_film(film_dir / "film.yaml")


def test_a_sidecars_scale_to_metres_sizes_the_asset_before_the_scripts_scale(film_dir):
    _tilted_scene(film_dir, scale_to_metres=0.25)
    _edit(film_dir, lambda d: d["assets"].update(table={"file": "table.ply", "scale": 2.0}))
    film = parse_film(film_dir / "film.yaml")
    assert film.world.assets["table"].world_transform(0.0).scale == pytest.approx(0.5)
    assert not any("unknown" in n for n in film.notes)  # known: the note does not claim SfM units
    _edit(film_dir, lambda d: d["assets"]["table"].update(upright=True))
    film = parse_film(film_dir / "film.yaml")
    assert film.world.assets["table"].world_transform(0.0).scale == pytest.approx(0.5)


def test_on_ground_says_when_it_replaces_a_given_z(film_dir):
    save_gaussians(film_dir / "floor.ply", square_splats([0, 0, 0.0], 4.0, [0.5, 0.5, 0.5], normal_axis=2,
                                                         spacing=0.1))
    _edit(film_dir, lambda d: d.update(assets={"floor": {"file": "floor.ply"}, **d["assets"]}))
    _edit(film_dir, lambda d: d["assets"]["hero"].update(on_ground="floor", position=[0, -1.0, 0.755]))
    film = parse_film(film_dir / "film.yaml")
    assert film.world.assets["hero"].placement.translation[2] == pytest.approx(0.0, abs=0.01)
    note = [n for n in film.notes if "assets.hero.position" in n]
    assert len(note) == 1 and "z 0.755 is replaced" in note[0] and "drop on_ground" in note[0], film.notes
    _edit(film_dir, lambda d: d["assets"]["hero"].update(position=[0, -1.0, 0]))
    assert not [n for n in parse_film(film_dir / "film.yaml").notes if "assets.hero.position" in n]


def test_render_frames_writes_only_those_frames(film_dir, capsys):
    from splatfilm.cli import main

    out = film_dir / "out"
    assert main(["render", str(film_dir / "film.yaml"), "-o", str(out), "--backend", "cpu",
                 "--shots", "sh010", "--frames", "1002-1003"]) == 0
    assert sorted(p.name for p in out.rglob("*.png")) == ["sh010.1002.png", "sh010.1003.png"]
    assert not list(out.glob("*.mp4"))  # the movies wait for every frame
    assert "only: run again without --frames" in capsys.readouterr().err  # a status line (splatfilm.report)
    cli_error(capsys, ["render", film_dir / "film.yaml", "-o", out, "--frames", "1003-1002"], "--frames")
    cli_error(capsys, ["render", film_dir / "film.yaml", "-o", out, "--shots", "sh010", "--frames", "2000-2010"],
              "sh010")


def test_an_asset_no_frame_of_a_shot_sees_is_named(film_dir, capsys):
    said: list[str] = []

    def render() -> None:
        said.clear()
        capsys.readouterr()
        render_film(film_dir / "film.yaml", film_dir / "out", RenderOptions(backend="cpu", shots=["sh010"]),
                    progress=False)
        said.extend(capsys.readouterr().err.splitlines())  # notes: on stderr (splatfilm.report)

    render()
    assert not [s for s in said if "not seen" in s], said
    # behind the camera (at y = -4, looking along +y) in every frame
    _edit(film_dir, lambda d: d["assets"]["hero"].update(position=[0, -9.0, 0.5]))
    render()
    assert [s for s in said if s.startswith("note: hero is not seen in sh010")], said
    assert not [s for s in said if "wall is not seen" in s]


def test_an_imported_objects_scale_to_metres_is_not_applied_twice(tmp_path):
    """import through a nerfstudio dataparser scale moves the Gaussians by 2: the copy's frame
    knows scale_to_metres 0.5 and its canonical transform undoes the 2 already; the film stands
    both at the source's 0.4 m, not the copy at a quarter of it."""
    from splatfilm.assets.splat_import import import_splats
    from splatfilm.film.world import load_asset
    from splatfilm.scene.transforms import Similarity

    block = square_splats([0, 0, 0.2], 0.4, [0.2, 0.8, 0.2], normal_axis=0, spacing=0.05)
    save_gaussians(tmp_path / "prop.ply", block)
    (tmp_path / "prop.json").write_text(json.dumps({
        "kind": "object", "frame": {"up": [0, 0, 1], "scale_to_metres": 1.0},
        "canonical_transform": {"rotation": np.eye(3).tolist(), "translation": [0, 0, 0], "scale": 1.0}}))
    (tmp_path / "dataparser_transforms.json").write_text(json.dumps(
        {"transform": np.eye(4)[:3].tolist(), "scale": 0.5}))
    import_splats(tmp_path / "prop.ply", tmp_path / "copy.ply",
                  dataparser_transforms=tmp_path / "dataparser_transforms.json")

    def height(name: str) -> float:
        asset = load_asset(name, tmp_path / f"{name}.ply", Similarity())
        z = asset.world_transform(0.0).apply(asset.gaussians.means.detach().double().numpy())[:, 2]
        return float(z.max() - z.min())

    assert height("prop") == pytest.approx(0.4, abs=0.06)
    assert height("copy") == pytest.approx(height("prop"), rel=1e-6)


def test_a_scene_cropped_by_a_keep_edit_is_not_said_to_span_the_whole_set(film_dir):
    """The note on a stored scene advises a keep edit to crop it: once given, the scene's span is
    the crop's (the edit is applied after the note is judged), so the note says nothing of it."""
    floor = square_splats([0, 0, 0.0], 4.0, [0.8, 0.5, 0.2], normal_axis=2, spacing=0.1)
    save_gaussians(film_dir / "yard.ply", floor)
    (film_dir / "yard.json").write_text(json.dumps({"kind": "scene", "frame": {"up": [0, 0, 1],
                                                                               "scale_to_metres": 1.0}}))
    _edit(film_dir, lambda d: d["assets"].update(yard={"file": "yard.ply"}))
    note = [n for n in parse_film(film_dir / "film.yaml").notes if "assets.yard" in n]
    assert len(note) == 1 and "it spans" in note[0], note  # 4 m against the 2 m wall
    _edit(film_dir, lambda d: d["assets"]["yard"].update(
        edits=[{"op": "keep", "box": {"min": [-0.5, -0.5, -0.1], "max": [0.5, 0.5, 0.1]}}]))
    assert not [n for n in parse_film(film_dir / "film.yaml").notes if "assets.yard" in n]
