"""Bad input to every command ends in one line `error: FILE: what is wrong` and exit status 2,
before any long work starts: the cases that once escaped as tracebacks."""

from __future__ import annotations

import copy
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import FIXTURES, REPO, cli_error

from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.scene.gaussians import Gaussians

TRANSFORMS = FIXTURES / "transforms.json"
CAMERA_PATH = FIXTURES / "camera_path.json"
HERO_GLB = REPO / "scenes" / "demo" / "hero.glb"
CRATE_OBJ = REPO / "scenes" / "demo" / "crate.obj"

SHOT = """\
name: tiny
fps: 24
frames: 2
resolution: [32, 18]
lens: 35mm
move: {type: dolly, from: [0, -3.2, 1.3], target: [0, 0, 0.75], distance: 1.5}
"""


@pytest.fixture
def scene(tmp_path) -> Path:
    """A small random Gaussian scene (no ground plane in it)."""
    g = torch.Generator().manual_seed(0)
    n = 300
    gs = Gaussians.from_activated(torch.randn(n, 3, generator=g) * 0.5, torch.randn(n, 4, generator=g),
                                  torch.rand(n, 3, generator=g) * 0.05 + 0.01, torch.full((n,), 0.9),
                                  colors=torch.rand(n, 3, generator=g))
    path = tmp_path / "scene.ply"
    save_gaussians(path, gs)
    return path


@pytest.fixture
def afile(tmp_path) -> Path:
    """A plain file standing where an output folder would have to be."""
    p = tmp_path / "afile"
    p.write_text("x")
    return p


def must_not_run(*_, **__):
    raise AssertionError("the long work started before the bad output was noticed")


# ---- core types ----------------------------------------------------------------------------


def test_core_types_raise_splatfilm_errors():
    from splatfilm.scene.sh import sh_basis

    z = torch.zeros
    with pytest.raises(SplatfilmError, match="Gaussians.quats has shape"):
        Gaussians(z(2, 3), z(2, 3), z(2, 3), z(2), z(2, 1, 3), z(2, 0, 3))
    with pytest.raises(SplatfilmError, match="no SH degree|not \\(d\\+1\\)\\^2"):
        Gaussians(z(2, 3), z(2, 4), z(2, 3), z(2), z(2, 1, 3), z(2, 2, 3))
    with pytest.raises(SplatfilmError, match="scale must be > 0"):
        Gaussians.empty().transformed(scale=0.0)
    with pytest.raises(SplatfilmError, match="SH degree must be 0-4"):
        sh_basis(5, z(1, 3))


# ---- camera files --------------------------------------------------------------------------


@pytest.mark.parametrize("model", [["OPENCV"], {"name": "OPENCV"}])
def test_transforms_json_camera_model_of_the_wrong_type(tmp_path, scene, capsys, model):
    meta = json.loads(TRANSFORMS.read_text())
    meta["camera_model"] = model
    bad = tmp_path / "transforms.json"
    bad.write_text(json.dumps(meta))
    err = cli_error(capsys, ["render-cameras", scene, bad, "-o", tmp_path / "out"], bad)
    assert "camera_model" in err and "is not supported" in err


@pytest.mark.parametrize("matrix, message", [
    ([1, 2, 3], "has 3 numbers, expected 16"),
    (["1"] * 16, "is not a list of numbers"),
    ([True] * 16, "is not a list of numbers"),
    ([[1, 2, 3, 4], [1, 2], [1, 2, 3, 4], [1]], "is not a list of numbers"),
    ([[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]], "is not a list of numbers"),
    ({"a": 1}, "is not a list of numbers"),
    (None, "is not a list of numbers"),
    ([0] * 16, "singular"),
])
def test_camera_path_with_a_malformed_matrix(tmp_path, scene, capsys, matrix, message):
    meta = json.loads(CAMERA_PATH.read_text())
    meta["camera_path"][1]["camera_to_world"] = matrix
    bad = tmp_path / "camera_path.json"
    bad.write_text(json.dumps(meta))
    err = cli_error(capsys, ["render-cameras", scene, bad, "-o", tmp_path / "out"], bad)
    assert message in err


def test_transforms_json_matrix_of_strings(tmp_path, scene, capsys):
    meta = json.loads(TRANSFORMS.read_text())
    meta["frames"][0]["transform_matrix"] = [[str(v) for v in row] for row in meta["frames"][0]["transform_matrix"]]
    bad = tmp_path / "transforms.json"
    bad.write_text(json.dumps(meta))
    assert "is not a matrix of numbers" in cli_error(capsys, ["render-cameras", scene, bad, "-o", tmp_path / "o"], bad)


# ---- files and folders ---------------------------------------------------------------------


def test_an_output_under_a_file(tmp_path, scene, afile, capsys):
    film = _film(tmp_path)
    cases = [
        ["render", film, "-o", afile / "out"],
        ["render-cameras", scene, TRANSFORMS, "-o", afile / "out"],
        ["import-mesh", CRATE_OBJ, "-o", afile / "crate.ply", "--count", "50"],
        ["path", "export", _shot(tmp_path), "-o", afile / "cam.usda"],
        ["path", "export", _shot(tmp_path), "-o", afile / "cam.json"],
    ]
    for args in cases:
        err = cli_error(capsys, args, afile)
        assert "is a file, not a folder" in err


def test_an_output_folder_that_is_a_file(tmp_path, scene, afile, capsys):
    err = cli_error(capsys, ["render", _film(tmp_path), "-o", afile, "--backend", "cpu"], afile)
    assert err == f"error: {afile}: cannot write: it is a file, not a folder"
    err = cli_error(capsys, ["render-cameras", scene, TRANSFORMS, "-o", afile, "--backend", "cpu"], afile)
    assert err == f"error: {afile}: cannot write: it is a file, not a folder"


def test_an_output_file_that_is_a_folder(tmp_path, scene, capsys):
    folder = tmp_path / "taken.ply"
    folder.mkdir()
    for args in (["import-mesh", CRATE_OBJ, "-o", folder, "--count", "50"],
                 ["edit", scene, _edits(tmp_path), "-o", folder],
                 ["fit", FIXTURES, "-o", folder, "--steps", "1", "--backend", "cpu"]):
        assert cli_error(capsys, args, folder) == f"error: {folder}: cannot write: it is a folder, not a file"


def test_folders_given_as_input_files(tmp_path, scene, capsys):
    folder = tmp_path / "film.yaml"
    folder.mkdir()
    assert "is a folder" in cli_error(capsys, ["render", folder, "-o", tmp_path / "out"], folder)
    assert "is a folder" in cli_error(capsys, ["edit", scene, folder, "-o", tmp_path / "e.ply"], folder)
    assert "is a folder" in cli_error(capsys, ["path", "export", folder, "-o", tmp_path / "c.json"], folder)
    assert "is a folder" in cli_error(capsys, ["render-cameras", scene, CAMERA_PATH, "-o", tmp_path / "o",
                                              "--dataparser-transforms", folder], folder)


def test_input_files_that_are_not_text(tmp_path, scene, capsys):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01 not text")
    for args in (["render", binary, "-o", tmp_path / "out"],
                 ["edit", scene, binary, "-o", tmp_path / "e.ply"],
                 ["path", "export", binary, "-o", tmp_path / "c.json"]):
        assert "is not UTF-8" in cli_error(capsys, args, binary)
    binary_json = tmp_path / "transforms.json"
    binary_json.write_bytes(b"\xff\xfe\x00\x01")
    assert "is not UTF-8" in cli_error(capsys, ["render-cameras", scene, binary_json, "-o", tmp_path / "o"],
                                      binary_json)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_location(tmp_path, scene, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        err = cli_error(capsys, ["render-cameras", scene, TRANSFORMS, "-o", locked / "out"], locked / "out")
        assert "not writable" in err
        err = cli_error(capsys, ["import-mesh", CRATE_OBJ, "-o", locked / "c.ply", "--count", "50"], locked / "c.ply")
        assert "not writable" in err
    finally:
        locked.chmod(0o700)


def test_an_os_error_on_the_users_file_is_one_line(tmp_path, scene, capsys, monkeypatch):
    """Whatever the OS refuses mid-job (a full disk, permissions), naming the file, is one line."""
    import splatfilm.assets.edits as edits

    target = tmp_path / "e.ply"

    def refuse(*_, **__):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(edits, "edit_gaussians", refuse)
    err = cli_error(capsys, ["edit", scene, _edits(tmp_path), "-o", target], target)
    assert err == f"error: {target}: Permission denied"


def test_make_folder_maps_a_refused_mkdir(tmp_path, monkeypatch):
    from splatfilm.io.atomic import make_folder

    def refuse(self, *_, **__):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(SplatfilmError, match=r"out: cannot write: Permission denied$"):
        make_folder(tmp_path / "out")


# ---- ground ---------------------------------------------------------------------------------


def test_ground_errors_name_the_scene(scene, capsys):
    assert "no plane within" in cli_error(capsys, ["ground", scene], f"{scene}: ")
    assert "distance must be > 0" in cli_error(capsys, ["ground", scene, "--distance", "0"], f"{scene}: ")
    assert "min_opacity must be in [0, 1)" in cli_error(capsys, ["ground", scene, "--min-opacity", "2"], f"{scene}: ")
    assert not scene.with_suffix(".json").exists()


# ---- outputs checked before the work --------------------------------------------------------


def test_mesh_checks_its_output_before_rendering(tmp_path, scene, afile, capsys, monkeypatch):
    import splatfilm.assets.meshing as meshing

    monkeypatch.setattr(meshing, "mesh_scene", must_not_run)
    assert "unknown mesh format" in cli_error(capsys, ["mesh", scene, "-o", tmp_path / "x.fbx"], "x.fbx")
    cli_error(capsys, ["mesh", scene, "-o", afile / "x.glb"], afile)
    assert "voxel size must be > 0" in cli_error(capsys, ["mesh", scene, "-o", tmp_path / "x.glb", "--voxel", "0"],
                                                scene)
    for flag, value, message in (("--trunc", "0.5", "must be at least 1 voxel"), ("--trunc", "inf", "at least 1 voxel"),
                                 ("--min-alpha", "0", "must be in (0, 1]"), ("--min-alpha", "nan", "in (0, 1]"),
                                 ("--min-alpha", "1.5", "in (0, 1]")):
        assert message in cli_error(capsys, ["mesh", scene, "-o", tmp_path / "x.glb", flag, value], scene)


def test_fit_checks_its_output_before_reading_the_capture(tmp_path, afile, capsys, monkeypatch):
    import splatfilm.fit as fit

    monkeypatch.setattr(fit, "load_capture", must_not_run)
    cli_error(capsys, ["fit", FIXTURES, "-o", afile / "x.ply"], afile)
    assert "a .ply or .spz file" in cli_error(capsys, ["fit", FIXTURES, "-o", tmp_path / "x.splat"], "x.splat")


def test_edit_and_import_mesh_check_their_output_first(tmp_path, scene, capsys, monkeypatch):
    import splatfilm.assets.edits as edits
    import splatfilm.assets.mesh_import as mesh_import

    monkeypatch.setattr(edits, "edit_gaussians", must_not_run)
    monkeypatch.setattr(mesh_import, "mesh_to_gaussians", must_not_run)
    assert "unsupported Gaussian file type" in cli_error(capsys, ["edit", scene, _edits(tmp_path), "-o",
                                                                 tmp_path / "e.obj"], "e.obj")
    assert "is a .ply, .splat, .spz, .sog or .usd/.usda/.usdc file" in cli_error(capsys, ["import-mesh", CRATE_OBJ, "-o",
                                                                                tmp_path / "c.obj"], "c.obj")


def test_path_preview_checks_both_outputs_first(tmp_path, scene, capsys, monkeypatch):
    import splatfilm.io.gaussian_files as gaussian_files

    shot = _shot(tmp_path)
    monkeypatch.setattr(gaussian_files, "load_gaussians", must_not_run)
    assert "PNG" in cli_error(capsys, ["path", "preview", shot, scene, "-o", tmp_path / "p.jpg"], "p.jpg")
    assert "PNG" in cli_error(capsys, ["path", "preview", shot, scene, "-o", tmp_path / "p.png",
                                      "--contact-sheet", tmp_path / "s.txt"], "s.txt")
    assert not (tmp_path / "p.png").exists()


def test_import_import_mesh_and_mesh_refuse_to_overwrite_their_input(tmp_path, scene, capsys):
    # As edit, clean and pose refuse it: `-o` naming the input would replace a mesh by Gaussians,
    # a scene by its mesh, or an asset's sidecar (its frame and history) by a bare import record.
    import trimesh

    (tmp_path / "scene.json").write_text('{"version": 1, "kind": "object", "note": "keep me"}')
    mesh = tmp_path / "box.ply"
    trimesh.creation.box().export(mesh)
    before = {p: p.read_bytes() for p in (scene, tmp_path / "scene.json", mesh)}
    for args, message in ((["import", scene, "-o", scene], "would overwrite the source"),
                          (["import-mesh", mesh, "-o", mesh], "would overwrite the mesh"),
                          (["mesh", scene, "-o", scene], "would overwrite the scene")):
        assert message in cli_error(capsys, args, args[-1]), args
    assert {p: p.read_bytes() for p in before} == before


def test_render_cameras_refuses_to_overwrite_the_capture_photos(tmp_path, scene, capsys):
    # A PNG capture's renders are named as its photos: -o naming its image folder would replace them.
    from PIL import Image

    cap = tmp_path / "cap"
    (cap / "images").mkdir(parents=True)
    (cap / "sparse" / "0").mkdir(parents=True)
    Image.new("RGB", (32, 24), (200, 10, 10)).save(cap / "images" / "photo.png")
    pose = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3], [0, 0, 0, 1]]
    (cap / "transforms.json").write_text(json.dumps({
        "fl_x": 30, "fl_y": 30, "cx": 16, "cy": 12, "w": 32, "h": 24,
        "frames": [{"file_path": "images/photo.png", "transform_matrix": pose}]}))
    (cap / "sparse" / "0" / "cameras.txt").write_text("1 PINHOLE 32 24 30 30 16 12\n")
    (cap / "sparse" / "0" / "images.txt").write_text("1 1 0 0 0 0 0 3 1 photo.png\n\n")
    (cap / "sparse" / "0" / "points3D.txt").write_text("")
    photo = (cap / "images" / "photo.png").read_bytes()
    for cameras in (cap / "transforms.json", cap / "sparse" / "0", cap):
        err = cli_error(capsys, ["render-cameras", scene, cameras, "-o", cap / "images", "--backend", "cpu"])
        assert "photo.png), which its render would replace" in err, err
    assert (cap / "images" / "photo.png").read_bytes() == photo
    from splatfilm.cli import main

    assert main([str(a) for a in ["render-cameras", scene, cap, "-o", tmp_path / "out", "--backend", "cpu"]]) == 0
    assert (tmp_path / "out" / "photo.png").exists()


def test_path_preview_names_a_missing_or_unreadable_script_first(tmp_path, capsys):
    # Given with --shot (a film's) or without SCENE, a file that is not there or does not parse
    # is reported as that, not as "a shot file needs the SCENE".
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "folder.yaml").mkdir()
    out = tmp_path / "p.png"
    for script, message in (("missing.yaml", "no such file"), ("list.yaml", "a shot is a mapping"),
                            ("folder.yaml", "is a folder")):
        for extra in (["--shot", "sh010"], []):
            err = cli_error(capsys, ["path", "preview", tmp_path / script, "-o", out, *extra], script)
            assert message in err, err
    assert not out.exists()


# ---- import-mesh on damaged files -----------------------------------------------------------


def _glb(tmp_path: Path, name: str, change=None, bin_chunk: bytes | None = None) -> Path:
    """hero.glb rebuilt with its JSON changed by `change` (and another BIN chunk)."""
    data = HERO_GLB.read_bytes()
    json_len = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + json_len])
    if change:
        change(doc)
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    rest = data[20 + json_len:] if bin_chunk is None else bin_chunk
    body = struct.pack("<I", len(text)) + b"JSON" + text + rest
    path = tmp_path / name
    path.write_bytes(b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body)
    return path


def test_import_mesh_on_damaged_files(tmp_path, capsys):
    out = ["-o", tmp_path / "o.ply", "--count", "50"]
    glb = HERO_GLB.read_bytes()
    cases: list[tuple[Path, str]] = []

    def add(name: str, data: bytes, message: str):
        (tmp_path / name).write_bytes(data)
        cases.append((tmp_path / name, message))

    add("truncated.glb", glb[: len(glb) // 2], "it is truncated")
    # A skinned one too: its container is checked as one reader reads it (it was named by the
    # rig reader as "buffers[0]: byteLength is ..."), not only for skins.
    rigged = (REPO / "scenes" / "character" / "explorer_rigged.glb").read_bytes()
    add("truncated_rigged.glb", rigged[:-100], "it is truncated (a damaged or incomplete glTF file)")
    add("empty.glb", b"", "the file is empty")
    add("empty.obj", b"", "the file is empty")
    add("broken_json.glb", glb[:20] + b"@@@@" + glb[24:], "invalid glTF JSON")
    add("broken.gltf", b"{not json", "invalid glTF JSON")
    add("faces.ply", b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                     b"element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n"
                     b"3 0 1 7\n", "a face refers to vertex 7, but the mesh has only 3 vertices")
    add("faces.obj", b"v 0 0 0\nv 1 0 0\nf 1 2 3\n", "cannot read the mesh: a damaged or invalid OBJ file")
    cases.append((_glb(tmp_path, "accessor.glb", lambda d: d["meshes"][0]["primitives"][0]["attributes"]
                       .update(POSITION=99)), "attributes.POSITION refers to accessors[99]"))
    cases.append((_glb(tmp_path, "node.glb", lambda d: d["scenes"][0].update(nodes=[7])),
                  "scenes[0].nodes[0] refers to nodes[7]"))
    cases.append((_glb(tmp_path, "nobin.glb", bin_chunk=b""), "no binary chunk"))
    for path, message in cases:
        err = cli_error(capsys, ["import-mesh", path, *out], path)
        assert message in err, err
    assert not (tmp_path / "o.ply").exists()


def test_import_mesh_refuses_more_gaussians_than_memory_allows(tmp_path, capsys):
    err = cli_error(capsys, ["import-mesh", CRATE_OBJ, "-o", tmp_path / "o.ply", "--density", "1e12"], CRATE_OBJ)
    assert "more than import-mesh makes" in err
    assert "density must be > 0" in cli_error(capsys, ["import-mesh", CRATE_OBJ, "-o", tmp_path / "o.ply",
                                                      "--density", "inf"], CRATE_OBJ)


def test_image_sizes_beyond_the_limit(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text(SHOT.replace("[32, 18]", "[100000, 100000]"))
    assert "pixels a side" in cli_error(capsys, ["path", "export", big, "-o", tmp_path / "c.json"], big)
    film = _film(tmp_path, resolution=[100000, 50])
    assert "pixels a side" in cli_error(capsys, ["render", film, "-o", tmp_path / "out", "--backend", "cpu"], film)


def test_a_missing_optional_package_is_one_line(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_otio(name, *args, **kwargs):  # a slim install: OpenTimelineIO left out
        if name.split(".")[0] == "opentimelineio":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    film = _film(tmp_path)
    monkeypatch.setattr(builtins, "__import__", no_otio)
    from splatfilm.cli import main

    capsys.readouterr()
    assert main(["render", str(film), "-o", str(tmp_path / "out"), "--backend", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the frames' progress bar
    assert err == ("error: this needs the Python package opentimelineio, which is not installed here: "
                   "pip install opentimelineio"), err


def test_masters_need_the_edit_that_frames_only_leaves_out(tmp_path, capsys):
    film = _film(tmp_path)
    assert "--frames-only" in cli_error(capsys, ["render", film, "-o", tmp_path / "out", "--frames-only",
                                                 "--masters", "prores422hq"])


# ---- helpers --------------------------------------------------------------------------------


def _shot(tmp_path: Path) -> Path:
    p = tmp_path / "shot.yaml"
    p.write_text(SHOT)
    return p


def _edits(tmp_path: Path) -> Path:
    p = tmp_path / "edits.yaml"
    p.write_text("- {op: delete, sphere: {center: [0, 0, 0], radius: 0.2}}\n")
    return p


def _film(tmp_path: Path, **top) -> Path:
    """A one-shot film of a small wall of Gaussians."""
    wall = tmp_path / "wall.ply"
    if not wall.exists():
        u = np.linspace(-1, 1, 12)
        a, b = np.meshgrid(u, u, indexing="ij")
        pts = np.stack([a.ravel(), np.zeros(a.size), b.ravel() + 1], axis=1)
        n = len(pts)
        quats = torch.zeros(n, 4)
        quats[:, 0] = 1
        save_gaussians(wall, Gaussians.from_activated(torch.tensor(pts, dtype=torch.float32), quats,
                                                      torch.full((n, 3), 0.08), torch.full((n,), 0.9),
                                                      colors=torch.full((n, 3), 0.5)))
    script = {"title": "tiny", "fps": 24, "resolution": [32, 18], "handles": 0, **copy.deepcopy(top),
              "assets": {"wall": {"file": "wall.ply"}},
              "shots": [{"name": "sh010", "frames": 2, "camera": {"position": [0, -4, 1.0], "look_at": [0, 0, 1.0]},
                         "move": {"type": "dolly", "distance": 0.2}}]}
    path = tmp_path / "film.yaml"
    path.write_text(yaml.safe_dump(script, sort_keys=False))
    return path


@pytest.mark.parametrize("args, message", [
    (["fit", "x", "-o", "a.ply", "--seed", "-1"], "expected a seed from 0 to 1073741824"),
    (["sfm", "x", "-o", "m", "--seed", "99999999999"], "expected a seed from 0 to 1073741824"),
    (["fit", "x", "-o", "a.ply", "--checkpoint-every", "-1"], "expected 0 or a positive integer"),
    (["fit", "x", "-o", "a.ply", "--eval-every", "-3"], "expected 0 or a positive integer"),
    (["fit", "x", "-o", "a.ply", "--test-every", "-1"], "expected 0 or a positive integer"),
    # these were told only after the capture was read or a video's frames extracted
    (["fit", "x", "-o", "a.ply", "--sh-degree", "5"], "expected an SH degree from 0 to 4"),
    (["import-mesh", "x.glb", "-o", "a.ply", "--sh-degree", "-1"], "expected an SH degree from 0 to 4"),
    (["sfm", "x", "-o", "m", "--video-frames", "1"], "expected a whole number >= 3"),
    (["fit", "x", "-o", "a.ply", "--video-frames", "0"], "expected a whole number >= 3"),
    (["mesh", "x.ply", "-o", "a.glb", "--min-component", "-1"], "expected 0 or a positive integer"),
    # --threads 0 reached COLMAP; --min-kept 1.5 was cut to a count of 1, then raised to 3
    (["sfm", "x", "-o", "m", "--threads", "0"], "expected -1 (all) or a positive number of threads, got '0'"),
    (["sfm", "x", "-o", "m", "--threads", "-3"], "expected -1 (all) or a positive number of threads"),
    (["sfm", "x", "-o", "m", "--min-kept", "1.5"], "expected a fraction in (0, 1] or a whole count of at least 3"),
    (["sfm", "x", "-o", "m", "--min-kept", "2"], "expected a fraction in (0, 1] or a whole count of at least 3"),
    (["sfm", "x", "-o", "m", "--min-kept", "0"], "expected a fraction in (0, 1] or a whole count of at least 3"),
])
def test_counts_and_seeds_out_of_range_are_usage_errors(args, message, capsys):
    # A negative period made a checkpoint every step; a negative seed a traceback from COLMAP.
    from splatfilm.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_sigterm_ends_a_run_as_ctrl_c_does(tmp_path):
    # pycolmap's import installs glog's failure handler, which answered SIGTERM with a native
    # stack trace; now `kill` or a scheduler's stop ends like Ctrl-C: one line, status 143.
    import signal
    import subprocess
    import sys

    run = "import sys; from splatfilm.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-u", "-c", run, "sfm", str(REPO / "tests" / "fixtures" / "lund" / "images"),
                             "-o", str(tmp_path / "m")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline().startswith("sfm: extracting")  # pycolmap is loaded by now (a status line)
        proc.send_signal(signal.SIGTERM)
        # The handler runs once COLMAP's extraction call returns: on a loaded machine, a while.
        _out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()  # a run that hung or a failed assertion leaves no process behind; none once it ended
    assert proc.returncode == 143, err
    assert "Aborted at" not in err and "stack trace" not in err, err
    assert not [line for line in err.splitlines() if line[:1] in "EWIF" and line[1:3] == "20"], err  # no glog lines
    assert err.strip().splitlines()[-1].startswith("terminated: finished work is kept"), err


def test_broken_yaml_reads_the_same_in_every_command(tmp_path, scene, capsys):
    """A film script, a shot file and an edits file with the same YAML mistake: one wording,
    with its line and column (`edit` said only 'while parsing a flow sequence')."""
    broken = "a: 1\nb: [2, 3\nc: 4\n"
    said = []
    for name, args in (("film.yaml", ["render", "{}", "-o", tmp_path / "out"]),
                       ("shot.yaml", ["path", "preview", "{}", scene, "-o", tmp_path / "p.png"]),
                       ("edits.yaml", ["edit", scene, "{}", "-o", tmp_path / "e.ply"])):
        path = tmp_path / name
        path.write_text(broken)
        err = cli_error(capsys, [path if a == "{}" else a for a in args], name=path)
        said.append(err.replace(str(path), "FILE"))
    assert said[0].startswith("error: FILE: invalid YAML at line 3, column 2: "), said
    assert said == [said[0]] * 3, said


def test_an_empty_yaml_file_is_told_as_empty(tmp_path, scene, capsys):
    """An empty film, shot or edits file said 'expected a mapping, got None'."""
    for name, args in (("film.yaml", ["render", "{}", "-o", tmp_path / "out"]),
                       ("shot.yaml", ["path", "preview", "{}", scene, "-o", tmp_path / "p.png"]),
                       ("edits.yaml", ["edit", scene, "{}", "-o", tmp_path / "e.ply"])):
        path = tmp_path / name
        path.write_text("# nothing yet\n")
        err = cli_error(capsys, [path if a == "{}" else a for a in args], name=path)
        assert err.endswith(": holds nothing (the file is empty or only comments)"), err


# ---- help texts -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["path", "preview"], ["clean"], ["ground"], ["mesh"], ["edit"], ["pose"], ["rig"],
                                     ["render-cameras"]])
def test_help_names_every_gaussian_file_type_that_loads(command, capsys):
    """A command reading a Gaussian file says which kinds it takes: what load_gaussians reads."""
    from splatfilm.cli import main
    from splatfilm.io.gaussian_files import GAUSSIAN_FILE_EXTENSIONS

    with pytest.raises(SystemExit):
        main(command + ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ".ply or .splat" not in text and ".ply/.splat" not in text
    assert all(ext in text for ext in GAUSSIAN_FILE_EXTENSIONS), text


@pytest.mark.parametrize("command, argv, said", [
    ("view", ["view", "scene.ply"], "interrupted"),
    ("render", ["render", "film.yaml", "-o", "out"], "interrupted: finished work is kept; run the same command again "
                                                     "to continue"),
])
def test_a_stop_says_how_to_go_on_only_where_a_command_goes_on(monkeypatch, capsys, command, argv, said):
    """A stopped viewer said to run it again `(fit: with --resume)` to continue: only commands
    that keep finished work say so."""
    import importlib

    from splatfilm.cli import main

    def stop(args):
        raise KeyboardInterrupt

    module, name = {"view": ("splatfilm.cli.view", "_cmd_view"), "render": ("splatfilm.cli.render", "_cmd_render")}[command]
    monkeypatch.setattr(importlib.import_module(module), name, stop)
    assert main(argv) == 130
    assert capsys.readouterr().err.strip() == said


# ---- where the commands live ------------------------------------------------------------------


def test_every_command_lives_in_its_own_module():
    """cli/__init__.py holds `main`, the error handling and the registration; each command's
    parser and handler live in the module named for its family (cli/fit.py, cli/render.py, ...),
    so a command is found, and changed, in one short file."""
    from splatfilm.cli import build_parser
    from splatfilm.cli.args import Subparsers

    def handlers(parser, prefix=""):
        # argparse lists a parser's subcommands only in its (private) _actions.
        for action in parser._actions:
            if isinstance(action, Subparsers):
                for name, sub in action.choices.items():
                    func = sub.get_default("func")
                    yield from [(prefix + name, func)] if func else handlers(sub, prefix + name + " ")

    found = dict(handlers(build_parser()))
    assert {"render-cameras", "render", "fit", "demo", "refine", "import-mesh", "edit", "ground", "mesh",
            "path export", "clean", "view"} <= set(found), sorted(found)
    left = sorted(name for name, func in found.items() if func.__module__ == "splatfilm.cli")
    assert left == [], f"handlers still in splatfilm/cli/__init__.py: {left}"
