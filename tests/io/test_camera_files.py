"""Camera file readers against files written and read by nerfstudio 1.1.5 and pycolmap (see fixtures README)."""

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from helpers import FIXTURES

from splatfilm.errors import SplatfilmError
from splatfilm.io.camera_files import (
    ViewerCameraPath,
    read_camera_path_json,
    read_cameras,
    read_colmap,
    read_transforms_json,
    write_camera_path_json,
    write_transforms_json,
)

TRANSFORMS = FIXTURES / "transforms.json"
CAMERA_PATH = FIXTURES / "camera_path.json"
COLMAP = FIXTURES / "colmap" / "sparse" / "0"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def to4x4(m) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    out = np.tile(np.eye(4), m.shape[:-2] + (1, 1))
    out[..., : m.shape[-2], :] = m
    return out


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


# ---- transforms.json --------------------------------------------------------------------------


def test_transforms_json_matches_nerfstudio_dataparser():
    cams = read_transforms_json(TRANSFORMS)
    ref = load("nerfstudio_dataparser_outputs.json")
    meta = load("transforms.json")
    assert len(cams) == 6
    assert [Path(n).name for n in cams.names] == ref["image_filenames"]
    assert cams.names[0] == "images/frame_00000.png"
    # nerfstudio's dataparser_transform maps the world BEFORE transforms.json's applied_transform
    # (COLMAP's) into its normalised world, so undo applied_transform first.
    T = to4x4(ref["dataparser_transform"]) @ np.linalg.inv(to4x4(meta["applied_transform"]))
    normalised = T @ cams.to_c2w_opengl()
    normalised[:, :3, 3] *= ref["dataparser_scale"]
    np.testing.assert_allclose(normalised[:, :3], ref["camera_to_worlds"], atol=1e-5)
    np.testing.assert_allclose(cams.fx, ref["fx"], rtol=1e-6)
    np.testing.assert_allclose(cams.fy, ref["fy"], rtol=1e-6)
    np.testing.assert_allclose(cams.cx, ref["cx"], rtol=1e-6)
    np.testing.assert_allclose(cams.cy, ref["cy"], rtol=1e-6)
    assert list(cams.widths) == ref["width"] and list(cams.heights) == ref["height"]
    np.testing.assert_allclose(cams.distortion, ref["distortion_params"], atol=1e-8)
    assert cams.camera_model == ["OPENCV"] * 6


def test_transforms_json_poses_used_as_written():
    cams = read_transforms_json(TRANSFORMS)
    written = np.array([f["transform_matrix"] for f in load("transforms.json")["frames"]])
    np.testing.assert_allclose(cams.to_c2w_opengl(), written, atol=1e-12)


def test_transforms_json_per_frame_intrinsics_override(tmp_path):
    meta = load("transforms.json")
    meta["frames"][2].update({"fl_x": 40.0, "w": 128, "k1": 0.0, "camera_model": "OPENCV_FISHEYE", "k4": 0.01})
    for key in ("fl_y", "cx", "cy", "h"):  # move these to every frame
        value = meta.pop(key)
        for f in meta["frames"]:
            f.setdefault(key, value)
    cams = read_transforms_json(write_json(tmp_path / "transforms.json", meta))
    assert cams.fx[2] == 40.0 and cams.fx[1] == 52.5
    assert cams.widths[2] == 128 and cams.widths[0] == 64 and cams.heights[2] == 48
    assert cams.camera_model[2] == "OPENCV_FISHEYE" and cams.camera_model[0] == "OPENCV"
    np.testing.assert_allclose(cams.distortion[2], [0.0, -0.002, 0, 0.01, 0.0005, -0.0003])


def test_transforms_json_pinhole_defaults(tmp_path):
    meta = load("transforms.json")
    for key in ("k1", "k2", "p1", "p2", "camera_model"):
        meta.pop(key)
    cams = read_transforms_json(write_json(tmp_path / "t.json", meta))
    assert cams.camera_model == ["PINHOLE"] * 6 and not cams.distortion.any()


def test_instant_ngp_is_fisheye_reads_as_opencv_fisheye(tmp_path):
    """instant-ngp's colmap2nerf.py writes `is_fisheye: true` with k1..k4 and no camera_model for
    COLMAP's fisheye models, at the top level or per frame; it was read as OPENCV."""
    meta = load("transforms.json")
    meta.pop("camera_model")
    meta.update({"k1": 0.05, "k2": -0.01, "k3": 0.002, "k4": -0.001, "p1": 0.0, "p2": 0.0, "is_fisheye": True})
    meta["frames"][4]["is_fisheye"] = False
    cams = read_transforms_json(write_json(tmp_path / "transforms.json", meta))
    assert cams.camera_model == ["OPENCV_FISHEYE"] * 4 + ["OPENCV", "OPENCV_FISHEYE"]
    np.testing.assert_allclose(cams.distortion[0], [0.05, -0.01, 0.002, -0.001, 0, 0])
    meta["camera_model"] = "OPENCV"
    with pytest.raises(SplatfilmError, match=r"frame 0 .*is_fisheye is true but camera_model is 'OPENCV'"):
        read_transforms_json(write_json(tmp_path / "transforms.json", meta))


def test_distortion_params_list_reads_as_nerfstudio_reads_it(tmp_path):
    """nerfstudio reads a `distortion_params` list [k1, k2, k3, k4, p1, p2], top level or per
    frame, in place of the six keys; it was dropped (the cameras read undistorted)."""
    meta = load("transforms.json")
    want = [meta.pop(k, 0.0) for k in ("k1", "k2", "k3", "k4", "p1", "p2")]
    meta["distortion_params"] = want
    meta["frames"][3]["distortion_params"] = [0.1, 0, 0, 0, 0, 0]
    meta["frames"][5]["k1"] = 0.2  # a frame's own keys win over the top level's list
    cams = read_transforms_json(write_json(tmp_path / "transforms.json", meta))
    ref = read_transforms_json(TRANSFORMS)
    np.testing.assert_allclose(cams.distortion[[0, 1, 2, 4]], ref.distortion[[0, 1, 2, 4]])
    np.testing.assert_allclose(cams.distortion[3], [0.1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(cams.distortion[5], [0.2, 0, 0, 0, 0, 0])
    meta["distortion_params"] = [0.1, 0.2]
    with pytest.raises(SplatfilmError, match=r"frame 0 .*distortion_params is \[0.1, 0.2\], expected 6 numbers"):
        read_transforms_json(write_json(tmp_path / "transforms.json", meta))


# ---- camera_path.json -------------------------------------------------------------------------


def test_camera_path_matches_nerfstudio():
    result = read_camera_path_json(CAMERA_PATH)
    ref = load("camera_path_parsed.json")
    assert isinstance(result, ViewerCameraPath)
    cams = result.cameras
    assert len(cams) == len(ref["fx"]) == 12
    np.testing.assert_allclose(cams.to_c2w_opengl()[:, :3], ref["camera_to_worlds"], atol=1e-6)
    for key in ("fx", "fy", "cx", "cy"):
        np.testing.assert_allclose(getattr(cams, key), ref[key], rtol=1e-9)
    assert list(cams.widths) == ref["width"] and list(cams.heights) == ref["height"]
    assert cams.names == [None] * 12 and cams.camera_model == ["PINHOLE"] * 12
    assert result.seconds == 0.5 and result.file_fps == 24.0
    assert result.fps == Fraction(24)


@pytest.mark.parametrize("camera_type", ["fisheye", "equirectangular"])
def test_camera_path_fisheye_and_equirectangular(tmp_path, camera_type):
    meta = load("camera_path.json")
    meta["camera_type"] = camera_type
    w, h = meta["render_width"], meta["render_height"]
    if camera_type == "equirectangular":
        for cam in meta["camera_path"]:
            cam.pop("fov")  # nerfstudio ignores it for panoramas; not required
    cams = read_camera_path_json(write_json(tmp_path / "p.json", meta)).cameras
    ref = load("camera_path_parsed.json")
    np.testing.assert_allclose(cams.to_c2w_opengl()[:, :3], ref["camera_to_worlds"], atol=1e-6)
    if camera_type == "fisheye":
        # nerfstudio's get_path_from_json: the same focal length as a perspective path.
        assert cams.camera_model == ["OPENCV_FISHEYE"] * 12 and not cams.distortion.any()
        np.testing.assert_allclose(cams.fx, ref["fx"], rtol=1e-9)
    else:
        # nerfstudio's fx = width / 2, fy = height span pi radians; ours are pixels per radian.
        assert cams.camera_model == ["EQUIRECTANGULAR"] * 12
        np.testing.assert_allclose(cams.fx, w / 2 / np.pi)
        np.testing.assert_allclose(cams.fy, h / np.pi)
    np.testing.assert_allclose(cams.cx, w / 2)
    # And back: the writer keeps the camera type.
    out = tmp_path / "out.json"
    write_camera_path_json(out, cams, seconds=1.0)
    assert json.loads(out.read_text())["camera_type"] == camera_type
    again = read_camera_path_json(out).cameras
    assert again.camera_model == cams.camera_model
    np.testing.assert_allclose(again.Ks, cams.Ks, rtol=1e-9)


def test_transforms_json_equirectangular_and_fisheye_round_trip(tmp_path):
    meta = load("transforms.json")
    for key in ("k1", "k2", "k3", "k4", "p1", "p2"):
        meta.pop(key, None)
    meta.update({"camera_model": "EQUIRECTANGULAR", "w": 200, "h": 100, "fl_x": 100.0, "fl_y": 100.0,
                 "cx": 100.0, "cy": 50.0})
    meta["frames"][1].update({"camera_model": "OPENCV_FISHEYE", "k1": 0.05, "k4": -0.001, "fl_x": 60.0})
    cams = read_transforms_json(write_json(tmp_path / "t.json", meta))
    assert cams.camera_model[0] == "EQUIRECTANGULAR" and cams.camera_model[1] == "OPENCV_FISHEYE"
    # nerfstudio's equirectangular fl_x = w / 2 spans pi radians: 200 / 2 pi pixels per radian here.
    np.testing.assert_allclose([cams.fx[0], cams.fy[0]], [100 / np.pi, 100 / np.pi])
    np.testing.assert_allclose(cams.distortion[1], [0.05, 0, 0, -0.001, 0, 0])
    assert cams.fx[1] == 60.0
    write_transforms_json(tmp_path / "back.json", cams)
    back = json.loads((tmp_path / "back.json").read_text())
    assert back["frames"][0]["fl_x"] == pytest.approx(100.0) and back["frames"][0]["camera_model"] == "EQUIRECTANGULAR"
    again = read_transforms_json(tmp_path / "back.json")
    np.testing.assert_allclose(again.Ks, cams.Ks)
    np.testing.assert_allclose(again.distortion, cams.distortion)
    assert again.camera_model == cams.camera_model


def test_camera_path_fps_is_exact_fraction(tmp_path):
    meta = load("camera_path.json")
    meta["seconds"] = 0.5005  # 12 frames at 24000/1001
    assert read_camera_path_json(write_json(tmp_path / "p.json", meta)).fps == Fraction(24000, 1001)
    del meta["seconds"]
    assert read_camera_path_json(write_json(tmp_path / "p.json", meta)).fps is None


def test_camera_path_dataparser_round_trip(tmp_path):
    # nerfstudio's normalised cameras of this dataset, written as a viewer camera path: undoing
    # the dataparser transform must give back the capture-world cameras.
    ref = load("nerfstudio_dataparser_outputs.json")
    meta = load("transforms.json")
    path = {
        "camera_type": "perspective",
        "render_width": 64,
        "render_height": 48,
        "seconds": 1.0,
        "camera_path": [
            {"camera_to_world": to4x4(m).reshape(-1).tolist(), "fov": 50.0} for m in ref["camera_to_worlds"]
        ],
    }
    path_file = write_json(tmp_path / "camera_path.json", path)
    dp = {"transform": ref["dataparser_transform"], "scale": ref["dataparser_scale"]}
    dp_file = write_json(tmp_path / "dataparser_transforms.json", dp)
    ds = tmp_path / "dataset"
    ds.mkdir()
    shutil.copy(TRANSFORMS, ds / "transforms.json")

    capture = read_transforms_json(TRANSFORMS).to_c2w_opengl()
    colmap_world = np.linalg.inv(to4x4(meta["applied_transform"])) @ capture

    # Without transforms_json: the world before applied_transform (COLMAP's).
    got = read_camera_path_json(path_file, dataparser_transforms=dp_file).cameras
    np.testing.assert_allclose(got.to_c2w_opengl(), colmap_world, atol=1e-5)
    np.testing.assert_allclose(got.to_c2w_opengl(), read_colmap(COLMAP).to_c2w_opengl(), atol=1e-5)
    # With it: transforms.json's own world.
    got = read_camera_path_json(path_file, dataparser_transforms=dp_file, transforms_json=ds / "transforms.json").cameras
    np.testing.assert_allclose(got.to_c2w_opengl(), capture, atol=1e-5)
    via_dispatch = read_cameras(path_file, dataparser_transforms=dp_file, transforms_json=ds / "transforms.json")
    np.testing.assert_allclose(via_dispatch.viewmats, got.viewmats, atol=1e-12)


def test_a_splat_from_nerfstudios_training_world_is_imported_into_the_captures(tmp_path, capsys):
    # `ns-export gaussian-splat` writes Gaussians in the run's normalised world; `splatfilm import
    # --dataparser-transforms` moves them where the dataset's transforms.json cameras are. Here a
    # Gaussian at each of nerfstudio's own normalised camera centres lands on that camera.
    import torch
    from helpers import cli_error

    from splatfilm.cli import main
    from splatfilm.io.gaussian_files import load_gaussians
    from splatfilm.io.ply import write_ply
    from splatfilm.scene.gaussians import Gaussians

    ref = load("nerfstudio_dataparser_outputs.json")
    centres = np.array([to4x4(m)[:3, 3] for m in ref["camera_to_worlds"]])
    n = len(centres)
    g = Gaussians(torch.tensor(centres, dtype=torch.float32), torch.tensor([[1.0, 0, 0, 0]] * n),
                  torch.full((n, 3), -3.0), torch.zeros(n), torch.zeros(n, 1, 3), torch.zeros(n, 0, 3))
    write_ply(tmp_path / "splat.ply", g)
    dp_file = write_json(tmp_path / "dataparser_transforms.json",
                         {"transform": ref["dataparser_transform"], "scale": ref["dataparser_scale"]})
    ds = tmp_path / "dataset"
    ds.mkdir()
    shutil.copy(TRANSFORMS, ds / "transforms.json")
    assert main(["import", str(tmp_path / "splat.ply"), "-o", str(tmp_path / "asset.ply"), "--dataparser-transforms",
                 str(dp_file), "--transforms-json", str(ds / "transforms.json")]) == 0
    got = load_gaussians(tmp_path / "asset.ply")
    capture = read_transforms_json(TRANSFORMS).to_c2w_opengl()[:, :3, 3]
    np.testing.assert_allclose(got.means.numpy(), capture, atol=1e-4)
    np.testing.assert_allclose(got.scales.numpy(), -3.0 - np.log(ref["dataparser_scale"]), atol=1e-5)
    side = json.loads((tmp_path / "asset.json").read_text())["source"]
    assert side["dataparser_transforms"] == "dataparser_transforms.json"
    # Without --transforms-json: COLMAP's world, as for a camera path.
    assert main(["import", str(tmp_path / "splat.ply"), "-o", str(tmp_path / "colmap.ply"), "--dataparser-transforms",
                 str(dp_file)]) == 0
    np.testing.assert_allclose(load_gaussians(tmp_path / "colmap.ply").means.numpy(),
                               read_colmap(COLMAP).to_c2w_opengl()[:, :3, 3], atol=1e-4)
    # transforms.json's cameras take no dataparser transform: the error says what to do instead.
    err = cli_error(capsys, ["render-cameras", tmp_path / "asset.ply", TRANSFORMS, "-o", tmp_path / "r",
                             "--dataparser-transforms", dp_file], "transforms.json")
    assert "splatfilm import SPLAT --dataparser-transforms" in err
    assert "goes with --dataparser-transforms" in cli_error(
        capsys, ["import", tmp_path / "splat.ply", "-o", tmp_path / "x.ply", "--transforms-json", TRANSFORMS])


def test_a_splat_from_a_georeferenced_capture_is_imported_centred_to_the_millimetre(tmp_path, capsys):
    # A nerfstudio run on a UTM capture (4e6 m out): the splat its ns-export writes is in the
    # run's normalised world; moved back and written in float32 its Gaussians were held to
    # 0.25 m (0.17 m off at worst here). Imported centred as fit writes such a capture:
    # frame.origin_offset recorded, and the Gaussians plus it land where the capture's world
    # has them (2e-6 m off at worst).
    import torch

    from splatfilm.cli import main
    from splatfilm.io.camera_files import nerfstudio_to_capture
    from splatfilm.io.gaussian_files import load_gaussians
    from splatfilm.io.ply import write_ply
    from splatfilm.scene.gaussians import Gaussians
    from splatfilm.scene.transforms import axis_rotation

    rng = np.random.default_rng(3)
    n = 200
    normalised = rng.uniform(-0.8, 0.8, (n, 3)).astype(np.float32)
    g = Gaussians(torch.tensor(normalised), torch.tensor([[1.0, 0, 0, 0]] * n), torch.full((n, 3), -4.0),
                  torch.full((n,), 3.0), torch.zeros(n, 1, 3), torch.zeros(n, 0, 3))
    write_ply(tmp_path / "splat.ply", g)
    centre = np.array([4_000_123.456, 512_345.678, 231.5])  # UTM easting, northing, height
    R = axis_rotation("z", 0.3) @ axis_rotation("x", -0.2)
    dp = write_json(tmp_path / "dataparser_transforms.json",
                    {"transform": np.hstack([R, (-R @ centre)[:, None]]).tolist(), "scale": 0.05})
    assert main(["import", str(tmp_path / "splat.ply"), "-o", str(tmp_path / "asset.ply"),
                 "--dataparser-transforms", str(dp)]) == 0
    out = capsys.readouterr().err
    sidecar = json.loads((tmp_path / "asset.json").read_text())
    offset = np.array(sidecar["frame"]["origin_offset"])
    np.testing.assert_array_equal(offset, [4_000_120.0, 512_350.0, 230.0])  # the centre to 10 m (the splat is some 30 m across)
    assert "note: the splat lies" in out and "the sidecar's frame.origin_offset" in out
    got = load_gaussians(tmp_path / "asset.ply").means.numpy().astype(np.float64)
    assert np.abs(got).max() < 30  # written centred
    expected = nerfstudio_to_capture(dp).apply(normalised.astype(np.float64))
    assert np.abs(got + offset - expected).max() < 1e-3


def test_camera_path_focal_from_vertical_fov(tmp_path):
    meta = load("camera_path.json")
    meta["render_width"], meta["render_height"] = 100, 200
    meta["camera_path"][0]["fov"] = 90.0
    cams = read_camera_path_json(write_json(tmp_path / "p.json", meta)).cameras
    assert cams.fx[0] == pytest.approx(100.0) and cams.fy[0] == pytest.approx(100.0)
    assert cams.cx[0] == 50.0 and cams.cy[0] == 100.0


# ---- COLMAP -----------------------------------------------------------------------------------


def test_colmap_matches_transforms_json():
    colmap = read_colmap(COLMAP)
    ns = read_transforms_json(TRANSFORMS)
    assert colmap.names == [Path(n).name for n in ns.names]
    # colmap_to_json: transforms.json c2w = applied_transform @ COLMAP c2w, in OpenGL axes.
    A = to4x4(load("transforms.json")["applied_transform"])
    np.testing.assert_allclose(A @ colmap.to_c2w_opengl(), ns.to_c2w_opengl(), atol=1e-9)
    np.testing.assert_allclose(colmap.Ks, ns.Ks, atol=1e-9)
    np.testing.assert_allclose(colmap.distortion, ns.distortion, atol=1e-12)
    assert colmap.camera_model == ns.camera_model == ["OPENCV"] * 6
    assert list(colmap.widths) == [64] * 6 and list(colmap.heights) == [48] * 6


def test_colmap_parent_folders_text_and_legacy(tmp_path):
    ref = read_colmap(COLMAP)
    for folder in (FIXTURES, FIXTURES / "colmap", FIXTURES / "colmap" / "sparse"):
        np.testing.assert_array_equal(read_colmap(folder).viewmats, ref.viewmats)
    import pycolmap

    # A text model without rigs/frames (what COLMAP before 3.12 writes).
    text = tmp_path / "sparse" / "0"
    text.mkdir(parents=True)
    pycolmap.Reconstruction(str(COLMAP)).write_text(str(text))
    for name in ("rigs.txt", "frames.txt"):
        (text / name).unlink(missing_ok=True)
    got = read_cameras(tmp_path)
    np.testing.assert_allclose(got.viewmats, ref.viewmats, atol=1e-12)
    np.testing.assert_allclose(got.Ks, ref.Ks, atol=1e-12)
    assert got.names == ref.names


@pytest.mark.parametrize(
    "model, params, fx, fy, dist, ours",
    [
        ("SIMPLE_PINHOLE", [50, 32, 24], 50, 50, [0] * 6, "PINHOLE"),
        ("PINHOLE", [50, 55, 32, 24], 50, 55, [0] * 6, "PINHOLE"),
        ("SIMPLE_RADIAL", [50, 32, 24, 0.1], 50, 50, [0.1, 0, 0, 0, 0, 0], "OPENCV"),
        ("RADIAL", [50, 32, 24, 0.1, 0.2], 50, 50, [0.1, 0.2, 0, 0, 0, 0], "OPENCV"),
        ("OPENCV", [50, 55, 32, 24, 0.1, 0.2, 0.3, 0.4], 50, 55, [0.1, 0.2, 0, 0, 0.3, 0.4], "OPENCV"),
        ("OPENCV_FISHEYE", [50, 55, 32, 24, 0.1, 0.2, 0.3, 0.4], 50, 55, [0.1, 0.2, 0.3, 0.4, 0, 0], "OPENCV_FISHEYE"),
    ],
)
def test_colmap_camera_models(tmp_path, model, params, fx, fy, dist, ours):
    import pycolmap

    recon = pycolmap.Reconstruction(str(COLMAP))
    cam = recon.cameras[1]
    cam.model = getattr(pycolmap.CameraModelId, model)
    cam.params = params
    recon.write_binary(str(tmp_path))
    cams = read_colmap(tmp_path)
    np.testing.assert_allclose(cams.fx, fx)
    np.testing.assert_allclose(cams.fy, fy)
    np.testing.assert_allclose(cams.cx, 32)
    np.testing.assert_allclose(cams.cy, 24)
    np.testing.assert_allclose(cams.distortion, np.tile(dist, (6, 1)))
    assert cams.camera_model == [ours] * 6


# ---- dispatch ---------------------------------------------------------------------------------


def test_read_cameras_dispatch(tmp_path):
    np.testing.assert_array_equal(read_cameras(COLMAP).viewmats, read_colmap(COLMAP).viewmats)
    np.testing.assert_array_equal(read_cameras(TRANSFORMS).viewmats, read_transforms_json(TRANSFORMS).viewmats)
    np.testing.assert_array_equal(read_cameras(CAMERA_PATH).viewmats, read_camera_path_json(CAMERA_PATH).cameras.viewmats)
    # A dataset folder with only a transforms.json reads that.
    shutil.copy(TRANSFORMS, tmp_path / "transforms.json")
    assert read_cameras(tmp_path).names == read_transforms_json(TRANSFORMS).names
    with pytest.raises(SplatfilmError, match=r"other\.json.*neither"):
        read_cameras(write_json(tmp_path / "other.json", {"hello": 1}))
    with pytest.raises(SplatfilmError, match="dataparser_transforms only applies"):
        read_cameras(TRANSFORMS, dataparser_transforms=tmp_path / "x.json")


# ---- errors: one line, naming the file --------------------------------------------------------


def _broken_transforms(tmp_path, edit) -> Path:
    meta = load("transforms.json")
    edit(meta)
    return write_json(tmp_path / "broken_transforms.json", meta)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m["frames"][1]["transform_matrix"][0].__setitem__(3, float("nan")), "frame 1 .*non-finite"),
        (lambda m: m["frames"][1]["transform_matrix"][0].__setitem__(3, float("inf")), "non-finite"),
        (lambda m: m["frames"][0].__setitem__("transform_matrix", [[1, 0, 0], [0, 1, 0], [0, 0, 1]]), "shape 3x3"),
        (lambda m: m["frames"][0].__setitem__("transform_matrix", "eye"), "not a matrix"),
        (lambda m: m["frames"][0].pop("transform_matrix"), "no transform_matrix"),
        (lambda m: m.pop("fl_x"), r"frame 0 .*no intrinsics `fl_x`"),
        (lambda m: m.pop("h"), "no intrinsics `h`"),
        (lambda m: m.__setitem__("fl_y", -3), "fl_y is -3"),
        (lambda m: m.__setitem__("w", 64.5), "whole"),
        (lambda m: m.__setitem__("cx", "middle"), "expected a number"),
        (lambda m: m.__setitem__("camera_model", "FISHEYE624"), "camera_model 'FISHEYE624' is not supported"),
        (lambda m: m.__setitem__("camera_model", "VR180_L"), "not supported"),
        (lambda m: m.__setitem__("frames", []), "frames"),
        (lambda m: m["frames"][3]["transform_matrix"][0].__setitem__(0, 2.0), "rotation"),
        # `fit` joined these to the capture folder: a TypeError traceback, not one line
        (lambda m: m["frames"][2].__setitem__("mask_path", 5), "frame 2 mask_path is 5, expected a string"),
        (lambda m: m.__setitem__("ply_file_path", ["points.ply"]), r"ply_file_path is \['points.ply'\]"),
        (lambda m: m["frames"][0].__setitem__("file_path", 7), "frame 0 file_path is 7"),
    ],
)
def test_transforms_json_errors(tmp_path, edit, match):
    path = _broken_transforms(tmp_path, edit)
    with pytest.raises(SplatfilmError, match=match) as info:
        read_transforms_json(path)
    msg = str(info.value)
    assert "broken_transforms.json" in msg and "\n" not in msg


def test_missing_and_invalid_files(tmp_path):
    for reader in (read_transforms_json, read_camera_path_json, read_cameras):
        with pytest.raises(SplatfilmError, match=r"nope\.json: no such file"):
            reader(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"frames": [1, 2,, ]}')
    for reader in (read_transforms_json, read_camera_path_json, read_cameras):
        with pytest.raises(SplatfilmError, match=r"bad\.json: invalid JSON .*line 1") as info:
            reader(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(SplatfilmError, match=r"list\.json: expected a JSON object"):
        read_transforms_json(write_json(tmp_path / "list.json", [1, 2]))
    with pytest.raises(SplatfilmError, match=r"nothing.*no such"):
        read_colmap(tmp_path / "nothing")
    with pytest.raises(SplatfilmError, match=r"empty.*no COLMAP model"):
        (tmp_path / "empty").mkdir()
        read_colmap(tmp_path / "empty")


def test_corrupt_colmap(tmp_path):
    shutil.copytree(COLMAP, tmp_path / "m")
    (tmp_path / "m" / "images.bin").write_bytes(b"\x00\x01garbage")
    with pytest.raises(SplatfilmError, match=r"m: cannot read COLMAP model") as info:
        read_colmap(tmp_path / "m")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m["camera_path"][4]["camera_to_world"].__setitem__(3, float("nan")), r"camera_path\[4\].*non-finite"),
        (lambda m: m["camera_path"][0].__setitem__("camera_to_world", [1, 0, 0, 0]), "4 numbers, expected 16"),
        (lambda m: m["camera_path"][0].pop("fov"), r"camera_path\[0\] has no `fov`"),
        (lambda m: m["camera_path"][0].__setitem__("fov", 180), "fov is 180"),
        (lambda m: m.pop("render_height"), "no `render_height`"),
        (lambda m: m.__setitem__("render_width", 0), "render_width"),
        (lambda m: m.__setitem__("camera_type", "vr180"), "camera_type 'vr180' is not supported"),
        (lambda m: m.__setitem__("camera_type", "omnidirectional"), "not supported"),
        (lambda m: m.__setitem__("camera_type", 3), "not supported"),
        (lambda m: m.__setitem__("seconds", -1), "seconds"),
        (lambda m: m.__setitem__("camera_path", []), "camera_path"),
    ],
)
def test_camera_path_errors(tmp_path, edit, match):
    meta = load("camera_path.json")
    edit(meta)
    path = write_json(tmp_path / "broken_path.json", meta)
    with pytest.raises(SplatfilmError, match=match) as info:
        read_camera_path_json(path)
    assert "broken_path.json" in str(info.value) and "\n" not in str(info.value)


def test_bad_dataparser_transforms(tmp_path):
    for data, match in [({"scale": 1.0}, "no `transform`"), ({"transform": np.eye(4)[:3].tolist(), "scale": 0}, "scale"),
                        ({"transform": [[1, 0], [0, 1]], "scale": 1.0}, "shape")]:
        dp = write_json(tmp_path / "dataparser_transforms.json", data)
        with pytest.raises(SplatfilmError, match=rf"dataparser_transforms\.json: .*{match}"):
            read_camera_path_json(CAMERA_PATH, dataparser_transforms=dp)
