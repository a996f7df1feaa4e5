"""The asset sidecar (ASSET.json): one type, one read policy, one writer. Round trips keep
unknown keys; every bad input is one line naming the file and the field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import REPO

from splatfilm.assets.ground import GroundPlane, read_ground, write_ground
from splatfilm.assets.sidecar import SIDECAR_VERSION, Sidecar
from splatfilm.io.asset_files import sidecar_path
from splatfilm.assets.asset_frame import sidecar_up
from splatfilm.errors import SplatfilmError
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.transforms import Similarity


FULL = {
    "splatfilm_version": "0.1.0",
    "asset": "hero.ply",
    "kind": "object",
    "source": {"type": "mesh", "path": "hero.glb", "faces": 12},
    "frame": {"note": "its own frame", "up": [0.0, 2.0, 0.0], "front": [0.0, 0.0, 1.0], "scale_to_metres": None,
              "bounds_min": [-1.0, 0.0, -1.0], "bounds_max": [1.0, 2.0, 1.0]},
    "num_gaussians": 100,
    "canonical_transform": {"rotation": [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]],
                            "translation": [0.0, 0.0, 0.5], "scale": 2.0},
    "ground": {"normal": [0.0, 0.0, 1.0], "offset": -0.25, "inliers": 0.4},
    "metrics": {"test": {"psnr": 30.5}},
    # Written by some other version: kept as they are.
    "future_field": {"nested": [1, 2, {"x": None}]},
}


def test_round_trip_keeps_every_key_and_writes_the_version_first(tmp_path):
    path = Sidecar(FULL).write(tmp_path / "hero.json")
    text = path.read_text()
    assert text.startswith('{\n  "version": 1,') and text.endswith("}\n")
    back = Sidecar.read(path)
    assert back == {"version": SIDECAR_VERSION, **FULL}
    assert back.version == 1 and back.source == str(path)
    # Written again unchanged: the same bytes.
    back.write(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text


def test_typed_accessors(tmp_path):
    s = Sidecar(FULL)
    np.testing.assert_array_equal(s.up, [0.0, 1.0, 0.0])  # unit length
    ct = s.canonical_transform
    assert isinstance(ct, Similarity) and ct.scale == 2.0
    np.testing.assert_array_equal(ct.rotation, FULL["canonical_transform"]["rotation"])
    np.testing.assert_array_equal(ct.translation, [0.0, 0.0, 0.5])
    assert s.ground == FULL["ground"] and s.frame["note"] == "its own frame"
    empty = Sidecar()
    assert empty.up is None and empty.canonical_transform is None and empty.ground is None and empty.frame == {}
    assert empty.version == 1


def test_missing_file_is_none_and_up_defaults_to_z(tmp_path):
    assert Sidecar.read(tmp_path / "nothing.json") is None
    assert Sidecar.of_asset(tmp_path / "nothing.ply") is None
    np.testing.assert_array_equal(sidecar_up(tmp_path / "nothing.ply"), [0.0, 0.0, 1.0])
    assert sidecar_path(tmp_path / "a.splat") == tmp_path / "a.json"


def test_a_file_without_version_is_version_1_and_gets_one_when_rewritten(tmp_path):
    old = {"asset": "room.ply", "kind": "scene", "frame": {"up": [0, 0, 2]}, "someone_else": True}
    (tmp_path / "room.json").write_text(json.dumps(old))
    s = Sidecar.of_asset(tmp_path / "room.ply")
    assert s.version == 1 and "version" not in s
    write_ground(tmp_path / "room.ply", GroundPlane(np.array([0.0, 0.0, 1.0]), -0.1))
    meta = json.loads((tmp_path / "room.json").read_text())
    assert list(meta)[0] == "version" and meta["version"] == 1
    assert {k: meta[k] for k in old} == old  # every other key kept
    assert read_ground(tmp_path / "room.ply").offset == pytest.approx(-0.1)


def test_a_newer_version_is_a_clear_error(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"version": 2, "asset": "a.ply"}))
    with pytest.raises(SplatfilmError) as e:
        Sidecar.read(tmp_path / "a.json")
    assert str(e.value) == (f"{tmp_path / 'a.json'}: version: 2 is newer than this splatfilm reads (up to 1); "
                            "update splatfilm")


def test_camera_files_in_a_centred_assets_capture_world_are_moved_into_its_frame(tmp_path, capsys):
    # fit writes an asset fitted from a capture far from the origin centred (frame.origin_offset);
    # clean --cameras and mesh --cameras take the capture's own camera file there, and the
    # asset's own cameras (already in its frame) as they are.
    from helpers import look_at

    from splatfilm.assets.cleanup import capture_cameras_of
    from splatfilm.io.camera_files import write_transforms_json

    offset = [5e5, -2e6, 30.0]
    asset = tmp_path / "scan.ply"
    asset.write_bytes(b"")
    Sidecar({"frame": {"origin_offset": offset}}).write(sidecar_path(asset))
    eyes = [(3 * np.cos(a), 3 * np.sin(a), 0.8) for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]
    ring = Cameras(np.stack([look_at(eye, (0.0, 0.0, 0.0)).numpy() for eye in eyes]),
                   np.array([[55.0, 0, 32], [0, 55.0, 24], [0, 0, 1]]), 64, 48)
    write_transforms_json(tmp_path / "capture.json", ring.transformed(translation=offset))
    write_transforms_json(tmp_path / "own.json", ring)
    moved = capture_cameras_of(asset, tmp_path / "capture.json")
    np.testing.assert_allclose(moved.viewmats, ring.viewmats, atol=1e-7)
    assert "capture.json: in the capture's world" in capsys.readouterr().err
    np.testing.assert_allclose(capture_cameras_of(asset, tmp_path / "own.json").viewmats, ring.viewmats, atol=1e-12)
    assert "note" not in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("{nope", "invalid JSON (Expecting property name enclosed in double quotes at line 1)"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('"text"', "expected a JSON object, got str"),
    ({"version": "1"}, "version: expected a whole number >= 1, got '1'"),
    ({"version": 0}, "version: expected a whole number >= 1, got 0"),
    ({"kind": 3}, "kind: expected a string, got 3"),
    ({"source": "capture"}, "source: expected an object, got 'capture'"),
    ({"num_gaussians": 1.5}, "num_gaussians: expected a whole number, got 1.5"),
    ({"frame": [0, 0, 1]}, "frame: expected an object, got [0, 0, 1]"),
    ({"frame": {"up": [0, 1]}}, "frame.up: expected [x, y, z], got [0, 1]"),
    ({"frame": {"up": [0, "1", 0]}}, "frame.up[1]: expected a number, got '1'"),
    ({"frame": {"up": [0, 0, 0]}}, "frame.up: must be a non-zero vector, got [0, 0, 0]"),
    ({"frame": {"bounds_min": None}}, "frame.bounds_min: expected [x, y, z], got None"),
    ({"frame": {"scale_to_metres": -1}}, "frame.scale_to_metres: must be > 0, got -1"),
    ({"frame": {"scale_from": 1.6}}, "frame.scale_from: expected an object, got 1.6"),
    ({"frame": {"origin_offset": [4e6, 4e6]}}, "frame.origin_offset: expected [x, y, z], got [4000000.0, 4000000.0]"),
    ({"canonical_transform": [1]}, "canonical_transform: expected an object, got [1]"),
    ({"canonical_transform": {"translation": [0, 0, 0]}},
     "canonical_transform: missing `rotation` (expected {rotation: [3][3], translation: [3], scale: s})"),
    ({"canonical_transform": {"rotation": [[1, 0, 0], [0, 1, 0]], "translation": [0, 0, 0]}},
     "canonical_transform.rotation: expected 3 rows of 3 numbers, got [[1, 0, 0], [0, 1, 0]]"),
    ({"canonical_transform": {"rotation": [[1, 0, 0], [0, 1, "x"], [0, 0, 1]], "translation": [0, 0, 0]}},
     "canonical_transform.rotation[1][2]: expected a number, got 'x'"),
    ({"canonical_transform": {"rotation": [[2, 0, 0], [0, 1, 0], [0, 0, 1]], "translation": [0, 0, 0]}},
     "canonical_transform.rotation: is not a rotation matrix (scaled, sheared or mirrored)"),
    ({"canonical_transform": {"rotation": np.eye(3).tolist()}},
     "canonical_transform: missing `translation` (expected {rotation: [3][3], translation: [3], scale: s})"),
    ({"canonical_transform": {"rotation": np.eye(3).tolist(), "translation": [0, 0, 0], "scale": 0}},
     "canonical_transform.scale: must be > 0, got 0"),
    ({"ground": {"normal": [0, 0, 1]}}, "ground: missing `offset` (expected {normal: [x, y, z], offset: d, inliers: f})"),
    ({"ground": {"normal": [0, 0], "offset": 0}}, "ground.normal: expected [x, y, z], got [0, 0]"),
    ({"ground": {"normal": [0, 0, 1], "offset": "low"}}, "ground.offset: expected a number, got 'low'"),
])
def test_bad_input_is_one_line_naming_the_file_and_field(tmp_path, content, message):
    path = tmp_path / "asset.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(SplatfilmError) as e:
        Sidecar.read(path)
    assert str(e.value) == f"{path}: {message}"


def test_the_writer_refuses_what_the_reader_would(tmp_path):
    with pytest.raises(SplatfilmError, match=r"out\.json: num_gaussians: expected a whole number"):
        Sidecar({"num_gaussians": "many"}).write(tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_every_bundled_sidecar_reads(tmp_path):
    assets = [p for p in REPO.glob("scenes/**/*.ply") if sidecar_path(p).exists()]
    assert len(assets) >= 4  # scenes/demo/{scene,hero,crate}.ply, scenes/set/fitted/set.ply
    for asset in assets:
        s = Sidecar.of_asset(asset)
        assert s.version == 1 and s["asset"] == asset.name
        # Round trip through the writer: same content, plus the version.
        back = Sidecar.read(Sidecar(s).write(tmp_path / f"{asset.stem}.json"))
        assert back == {"version": 1, **s}
        assert s.canonical_transform is not None or s["kind"] == "scene"


def test_cli_bad_sidecar_is_one_line_before_any_work(tmp_path, capsys):
    from splatfilm.cli import main
    from splatfilm.io.gaussian_files import save_gaussians
    from splatfilm.scene.gaussians import Gaussians

    import torch

    src = tmp_path / "hero.ply"
    save_gaussians(src, Gaussians.from_activated(means=torch.rand(20, 3), quats=torch.tensor([[1.0, 0, 0, 0]]).expand(20, 4),
                                                 scales=torch.full((20, 3), 0.05), opacities=torch.full((20,), 0.9),
                                                 colors=torch.full((20, 3), 0.5)))
    (tmp_path / "hero.json").write_text(json.dumps({"asset": "hero.ply", "frame": {"up": "z"}}))
    (tmp_path / "edits.yaml").write_text("- {op: opacity, factor: 0.5}\n")
    out = tmp_path / "edited.ply"
    assert main(["edit", str(src), str(tmp_path / "edits.yaml"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'hero.json'}: frame.up: expected [x, y, z], got 'z'\n"
    assert not out.exists()


def test_rasterize_mode_is_checked_and_its_sidecar_outranks_an_spz_flag(tmp_path):
    """The asset's mode: the sidecar's `rasterize_mode` (checked), else an .spz file's flag,
    else classic; an edit's copy keeps it (sidecar and .spz flag)."""
    import json

    import pytest
    import torch
    from helpers import random_gaussians

    from splatfilm.assets.edits import bake_edits
    from splatfilm.assets.sidecar import Sidecar, asset_rasterize_mode
    from splatfilm.errors import SplatfilmError
    from splatfilm.io.spz import spz_antialiased, write_spz

    g = random_gaussians(20, 0, dtype=torch.float32, seed=3)
    write_spz(tmp_path / "a.spz", g, antialiased=True)
    assert asset_rasterize_mode(tmp_path / "a.spz") == "antialiased"
    (tmp_path / "a.json").write_text(json.dumps({"asset": "a.spz", "rasterize_mode": "classic"}))
    assert asset_rasterize_mode(tmp_path / "a.spz") == "classic"
    # Another tool's JSON of the same stem is no record of ours: the file's own flag still counts
    # (render-cameras and import of such a splat stopped at "expected a JSON object").
    (tmp_path / "a.json").write_text(json.dumps([{"camera": 1}]))
    assert asset_rasterize_mode(tmp_path / "a.spz") == "antialiased"
    (tmp_path / "a.json").unlink()
    assert asset_rasterize_mode(tmp_path / "none.ply") == "classic"
    with pytest.raises(SplatfilmError, match="rasterize_mode: expected classic or antialiased"):
        Sidecar({"rasterize_mode": "mip"}, "x.json").check()
    (tmp_path / "edits.yaml").write_text("- {op: delete, sphere: {center: [100, 0, 0], radius: 0.1}}\n")
    bake_edits(tmp_path / "a.spz", tmp_path / "edits.yaml", tmp_path / "b.spz")
    assert spz_antialiased(tmp_path / "b.spz")
    assert json.loads((tmp_path / "b.json").read_text())["rasterize_mode"] == "antialiased"


def test_asset_up_prefers_what_is_measured(tmp_path):
    """An asset's up: an object's canonical +z, else its ground's normal (turned to frame.up's
    side), else frame.up (the capture cameras' mean up, 12 degrees off the floor on the bundled
    set), else +z. `mesh` turned its output by frame.up alone."""
    from splatfilm.assets.asset_frame import asset_up

    asset = tmp_path / "a.ply"
    tilted = [0.0, np.sin(np.radians(12)), np.cos(np.radians(12))]
    np.testing.assert_allclose(asset_up(asset), [0, 0, 1])  # no sidecar
    for data, up in (({"frame": {"up": tilted}}, tilted),
                     ({"frame": {"up": tilted}, "ground": {"normal": [0.0, 0.0, -2.0], "offset": 0.0}}, [0, 0, 1]),
                     ({"frame": {"up": tilted}, "ground": {"normal": [0.0, 0.0, 1.0], "offset": 0.0},
                       "canonical_transform": FULL["canonical_transform"]}, [0, 1, 0])):
        Sidecar(data).write(sidecar_path(asset))
        np.testing.assert_allclose(asset_up(asset), up, atol=1e-12)
