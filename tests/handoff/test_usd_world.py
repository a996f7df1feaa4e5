"""`splatfilm export-usd`: a tiny film (a floor, a walking character that looks at the camera and
casts a contact shadow, a keyframed prop hidden in one shot) written as a USD stage, read back
through pxr, and rendered from the stage alone: the same frames as the film renders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import cli_error, random_gaussians
from rigged_gltf import write_biped

pxr = pytest.importorskip("pxr")

from splatfilm.assets.ground import GroundPlane, write_ground  # noqa: E402
from splatfilm.assets.mesh_import import import_mesh  # noqa: E402
from splatfilm.cli import main  # noqa: E402
from splatfilm.film.frame_render import FrameRenderer  # noqa: E402
from splatfilm.film.script import parse_film  # noqa: E402
from splatfilm.handoff.usd_world import export_usd_world, shot_time_codes, world_samples  # noqa: E402
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians  # noqa: E402
from splatfilm.io.usd_splats import read_usd_splats, read_usd_world_splats  # noqa: E402
from splatfilm.render import rasterization  # noqa: E402
from splatfilm.scene.gaussians import Gaussians  # noqa: E402
from splatfilm.shots.interchange import read_usd_camera  # noqa: E402

from splatfilm.scene.transforms import rotmat_to_quat  # noqa: E402

LEGS = [["thigh_l", "shin_l", "foot_l"], ["thigh_r", "shin_r", "foot_r"]]


def _floor(size=4.0, spacing=0.2) -> Gaussians:
    u = np.arange(-size / 2, size / 2 + 1e-9, spacing)
    a, b = np.meshgrid(u, u, indexing="ij")
    pts = np.stack([a.ravel(), b.ravel(), np.zeros(a.size)], 1)
    n = len(pts)
    checker = ((np.floor(a.ravel() / 0.5) + np.floor(b.ravel() / 0.5)) % 2)[:, None]
    colours = np.where(checker > 0, [0.5, 0.55, 0.45], [0.3, 0.3, 0.35])
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    q = rotmat_to_quat(torch.eye(3, dtype=torch.float64)).float().expand(n, 4).contiguous()
    return Gaussians.from_activated(t(pts), q, t(np.tile([0.14, 0.14, 0.003], (n, 1))), torch.full((n,), 0.97),
                                    colors=t(colours))


@pytest.fixture(scope="module")
def film_folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("usd_world")
    write_biped(d / "figure.glb")
    import_mesh(d / "figure.glb", d / "figure.ply", count=300)
    save_gaussians(d / "floor.ply", _floor())
    write_ground(d / "floor.ply", GroundPlane([0, 0, 1], 0.0))
    prop = random_gaussians(60, 1, dtype=torch.float32, seed=4, spread=0.15, log_scale=(-3.0, 0.3))
    save_gaussians(d / "prop.ply", prop)
    script = {
        "title": "usd_round_trip", "fps": 24, "resolution": [48, 32], "handles": 1, "background": [0.1, 0.1, 0.12],
        "lens": {"focal_mm": 30, "f_stop": 2.8},
        "assets": {
            "floor": {"file": "floor.ply"},
            "hero": {"file": "figure.ply", "on_ground": "floor",
                     "walk": {"points": [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], "speed": 1.0, "start": 0.0},
                     "clips": [{"clip": "walk", "start": 0.0}], "ik": {"legs": LEGS},
                     "look_at": {"joint": "head", "target": "camera", "limit": 60}},
            "prop": {"file": "prop.ply",
                     "animation": {"keyframes": [{"time": 0, "position": [0.8, 0.5, 0.6], "yaw": 0},
                                                 {"time": 0.5, "position": [0.6, 0.9, 0.8], "yaw": 90, "scale": 1.5}]}},
        },
        "shots": [
            {"name": "sh010", "frames": 4, "camera": {"position": [0.0, -4.0, 1.3], "look_at": [0.0, 0.0, 0.6]},
             "move": {"type": "pan", "degrees": 4}},
            {"name": "sh020", "frames": 3, "hide": ["prop"],
             "camera": {"position": [2.5, -2.5, 1.4], "look_at": "hero"}, "move": {"type": "pan", "degrees": 0}},
        ],
    }
    (d / "film.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    return d


@pytest.fixture(scope="module")
def exported(film_folder, tmp_path_factory):
    film = parse_film(film_folder / "film.yaml")
    path = tmp_path_factory.mktemp("usd_out") / "world.usda"
    export_usd_world(film, path, progress=False)
    return film, path


def test_stage_layout_and_the_schema_conventions(exported):
    from pxr import Usd, UsdGeom, UsdVol

    film, path = exported
    stage = Usd.Stage.Open(str(path))
    assert UsdGeom.GetStageUpAxis(stage) == "Z" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert stage.GetTimeCodesPerSecond() == 24 and stage.GetFramesPerSecond() == 24
    # World time 0 is frame 1001; the first shot's head handle is one frame before.
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (1000, 1000 + 4 + 2 + 3 + 2 - 1 - 2)
    assert stage.GetDefaultPrim().GetPath() == "/World"
    floor = UsdVol.ParticleField3DGaussianSplat(stage.GetPrimAtPath("/World/Assets/floor/Gaussians"))
    src = film.world.assets["floor"].gaussians
    assert floor and floor.GetRadianceSphericalHarmonicsDegreeAttr().Get() == 0
    np.testing.assert_allclose(np.asarray(floor.GetPositionsAttr().Get()), src.means.numpy())
    # Linear scales and opacities (not log / logit); quaternions (real, i, j, k) normalised.
    np.testing.assert_allclose(np.asarray(floor.GetScalesAttr().Get()), src.scales.exp().numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(floor.GetOpacitiesAttr().Get()), torch.sigmoid(src.opacities).numpy(),
                               rtol=1e-6)
    q = floor.GetOrientationsAttr().Get()[0]
    assert (q.GetReal(), *q.GetImaginary()) == pytest.approx((1.0, 0.0, 0.0, 0.0), abs=1e-7)
    assert floor.GetProjectionModeHintAttr().Get() == "perspective" and floor.GetSortingModeHintAttr().Get() == "zDepth"
    prop = UsdVol.ParticleField3DGaussianSplat(stage.GetPrimAtPath("/World/Assets/prop/Gaussians"))
    g = film.world.assets["prop"].gaussians
    coeffs = np.asarray(prop.GetRadianceSphericalHarmonicsCoefficientsAttr().Get()).reshape(len(g), 4, 3)
    np.testing.assert_allclose(coeffs, g.sh.numpy())  # per particle: sh0 then band 1, m = -1..1
    assert prop.GetRadianceSphericalHarmonicsDegreeAttr().Get() == 1  # 4 coefficients a particle, by the schema
    # The prop moves: its transform is sampled per frame; it is hidden in sh020's frames.
    prop_xf = stage.GetPrimAtPath("/World/Assets/prop")
    assert len(prop_xf.GetAttribute("xformOp:transform").GetTimeSamples()) == len(world_samples(film))
    vis = UsdGeom.Imageable(prop_xf).GetVisibilityAttr()
    sh020 = shot_time_codes(film, film.shots[1])
    assert vis.Get(sh020[2]) == "invisible" and vis.Get(1001) == "inherited"
    # The character's Gaussians are posed per frame; the floor's are not animated.
    hero = UsdVol.ParticleField3DGaussianSplat(stage.GetPrimAtPath("/World/Assets/hero/Gaussians"))
    assert len(hero.GetPositionsAttr().GetTimeSamples()) == len(world_samples(film))
    assert not floor.GetPositionsAttr().GetTimeSamples()
    assert stage.GetPrimAtPath("/World/Shadows/hero").IsA(UsdVol.ParticleField3DGaussianSplat)
    ground = UsdGeom.Mesh(stage.GetPrimAtPath("/World/Ground/floor"))
    assert ground and ground.GetPurposeAttr().Get() == "guide"
    assert np.allclose(np.asarray(ground.GetPointsAttr().Get())[:, 2], 0.0, atol=1e-6)
    # Cameras: the lens in tenths of a scene unit (30 mm -> 0.3), the f-stop only with depth of field.
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/World/Cameras/sh010"))
    assert cam.GetFocalLengthAttr().Get() == pytest.approx(0.30) and cam.GetHorizontalApertureAttr().Get() == pytest.approx(0.36)
    assert not cam.GetFStopAttr().HasAuthoredValue() and not cam.GetFocusDistanceAttr().HasAuthoredValue()
    assert cam.GetPrim().GetCustomDataByKey("splatfilm:focal_mm") == pytest.approx(30.0)
    assert [int(t) for t in cam.GetPrim().GetAttribute("xformOp:transform").GetTimeSamples()] == \
        [int(c) for c in shot_time_codes(film, film.shots[0])]


def test_stage_names_files_relative_to_itself_types_every_prim_and_has_a_model_hierarchy(exported, film_folder):
    """Handed to another facility, the stage names no folder of this machine: the film script
    and each asset's source are relative to the stage's folder (they were absolute, the script
    as typed), as the .otio names its media. Every prim is typed (/Render was an untyped `def`)
    and assets, shadows and ground planes are components under groups under the /World
    assembly, which usdview's and Houdini's kind-based picking selects by. The registered
    validators find nothing."""
    from pxr import Kind, Usd, UsdGeom, UsdValidation

    film, path = exported
    stage = Usd.Stage.Open(str(path))
    info = stage.GetRootLayer().customLayerData["splatfilm"]
    assert info["paths"] == "relative to this file's folder"
    named = {info["film"]: film.path} | {
        stage.GetPrimAtPath(f"/World/Assets/{n}").GetCustomDataByKey("splatfilm:source"): Path(a.source)
        for n, a in film.world.assets.items()}
    for rel, target in named.items():
        assert not Path(rel).is_absolute() and (path.parent / rel).resolve() == target.resolve(), rel
    assert str(film_folder) not in path.read_text()

    assert not [p.GetPath() for p in stage.Traverse() if not p.GetTypeName()]
    assert stage.GetPrimAtPath("/Render").IsA(UsdGeom.Scope)
    kind = lambda p: Usd.ModelAPI(stage.GetPrimAtPath(p)).GetKind()  # noqa: E731
    assert kind("/World") == Kind.Tokens.assembly
    for group in ("/World/Assets", "/World/Shadows", "/World/Ground", "/World/Cameras"):
        assert kind(group) == Kind.Tokens.group
    components = [f"/World/Assets/{n}" for n in film.world.assets] + ["/World/Shadows/hero", "/World/Ground/floor"]
    for p in components:
        assert kind(p) == Kind.Tokens.component and stage.GetPrimAtPath(p).IsComponent(), p
    # Kind picking lands on the asset: a click on its splats selects the component above them.
    assert not stage.GetPrimAtPath("/World/Assets/hero/Gaussians").IsModel()
    assert sorted(str(p.GetPath()) for p in stage.Traverse() if p.IsComponent()) == sorted(components)

    context = UsdValidation.ValidationContext(UsdValidation.ValidationRegistry().GetOrLoadAllValidators())
    assert [e.GetMessage() for e in context.Validate(stage)] == []


def _usd_frame(path: Path, film, shot_index: int, i: int) -> np.ndarray:
    fs = film.shots[shot_index]
    code = shot_time_codes(film, fs)[i]
    g = read_usd_world_splats(path, code)
    cams, frames, _ = read_usd_camera(path, f"/World/Cameras/{fs.name}")
    k = frames.index(int(round(code)))
    viewmats, Ks = cams[k].to_tensors(g.dtype)
    with torch.no_grad():
        out = rasterization(g, viewmats, Ks, film.width, film.height, backend="cpu", background=film.background,
                            near_plane=fs.shot.lens.near, far_plane=fs.shot.lens.far)
    return out.rgb[0].double().numpy()


def test_frames_rendered_from_the_stage_match_the_film(exported):
    film, path = exported
    renderer = FrameRenderer(film, backend="cpu")
    # Cut frames of both shots (the character walks, looks at each shot's camera, casts its
    # shadow; the prop moves, and is hidden in sh020).
    for shot_index, i in [(0, 1), (0, 4), (1, 1), (1, 3)]:
        rgb, alpha, _ = renderer.render(film.shots[shot_index], i)
        assert alpha.max() > 0.5
        usd = _usd_frame(path, film, shot_index, i)
        assert np.abs(usd - rgb).max() < 1e-5, (shot_index, i, np.abs(usd - rgb).max())
    # The check can fail: another frame of the walk does not match.
    other = _usd_frame(path, film, 0, 4)
    rgb, _, _ = renderer.render(film.shots[0], 1)
    assert np.abs(other - rgb).max() > 0.05


def test_import_reads_a_prim_back(exported, tmp_path, capsys):
    film, path = exported
    out = tmp_path / "prop.ply"
    assert main(["import", str(path), "--prim", "/World/Assets/prop/Gaussians", "-o", str(out)]) == 0
    g, src = load_gaussians(out), film.world.assets["prop"].gaussians
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["source"]["type"] == "import" and side["source"]["prim"] == "/World/Assets/prop/Gaussians"
    assert side["num_gaussians"] == 60 and "frame" not in side
    np.testing.assert_allclose(g.means.numpy(), src.means.numpy())
    np.testing.assert_allclose(g.sh.numpy(), src.sh.numpy())
    np.testing.assert_allclose(torch.sigmoid(g.opacities).numpy(), torch.sigmoid(src.opacities).numpy(), rtol=1e-6)
    # --world places it where the film has it at that frame.
    placed = read_usd_splats(path, "/World/Assets/prop/Gaussians", 1004, world=True)
    expected = film.world.assets["prop"].world_transform(3 / 24).transform_gaussians(src)
    np.testing.assert_allclose(placed.means.numpy(), expected.means.numpy(), atol=1e-5)
    # A world file has several prims: without --prim, a one-line error names them.
    err = cli_error(capsys, ["import", path, "-o", tmp_path / "x.ply"], path)
    assert "/World/Assets/floor/Gaussians" in err and "--prim" in err


def test_bad_inputs_give_one_line_errors(film_folder, tmp_path, capsys):
    from pxr import Usd, UsdGeom

    empty = tmp_path / "cameras_only.usda"
    stage = Usd.Stage.CreateNew(str(empty))
    UsdGeom.Camera.Define(stage, "/cam")
    stage.Save()
    err = cli_error(capsys, ["import", empty, "-o", tmp_path / "x.ply"], empty)
    assert "no Gaussian splats" in err
    assert "no Gaussian splats" in cli_error(capsys, ["render-cameras", empty, empty, "-o", tmp_path / "r"], empty)
    junk = tmp_path / "junk.usda"
    junk.write_text("#usda 1.0\ndef Xform \"a\" {\n")
    cli_error(capsys, ["import", junk, "-o", tmp_path / "x.ply"], junk)
    err = cli_error(capsys, ["export-usd", film_folder / "film.yaml", "-o", tmp_path / "world.abc"])
    assert ".usda" in err
    assert "apply to USD" in cli_error(capsys, ["import", film_folder / "prop.ply", "--prim", "/a", "-o",
                                                tmp_path / "x.spz"])
    copy = tmp_path / "film"
    shutil.copytree(film_folder, copy)
    assert main(["import", str(copy / "prop.ply"), "-o", str(tmp_path / "prop.spz")]) == 0
    assert len(load_gaussians(tmp_path / "prop.spz")) == 60


def test_a_film_with_distorting_lenses_exports_their_cameras(film_folder, tmp_path, capsys):
    """export-usd refused a film with a fisheye or distorted shot; now each such shot's camera is
    the pinhole of its intrinsics with its distortion in customData `splatfilm:lens` (as a
    rendered SHOT.usda), and the validators find nothing. A panorama is still refused, in one line."""
    from pxr import Usd, UsdGeom, UsdValidation

    script = yaml.safe_load((film_folder / "film.yaml").read_text())
    script["assets"] = {"floor": {"file": str(film_folder / "floor.ply")}}
    script["shots"][1].update(hide=[], camera={"position": [2.5, -2.5, 1.4], "look_at": [0, 0, 0.5]})
    script["shots"][0]["lens"] = {"focal_mm": 18, "model": "opencv", "k1": -0.1, "p2": 0.001}
    script["shots"][1]["lens"] = {"focal_mm": 12, "model": "fisheye", "k1": 0.01}
    film_yaml = tmp_path / "film.yaml"
    film_yaml.write_text(yaml.safe_dump(script, sort_keys=False))
    out = tmp_path / "world.usda"
    assert main(["export-usd", str(film_yaml), "-o", str(out)]) == 0
    stage = Usd.Stage.Open(str(out))
    expected = {"sh010": ("opencv", 18, [-0.1, 0, 0, 0.001, 0]), "sh020": ("fisheye", 12, [0.01, 0, 0, 0])}
    for shot, (model, focal_mm, coefficients) in expected.items():
        cam = UsdGeom.Camera(stage.GetPrimAtPath(f"/World/Cameras/{shot}"))
        assert cam.GetFocalLengthAttr().Get() == pytest.approx(focal_mm / 100)  # tenths of a metre
        lens = cam.GetPrim().GetCustomDataByKey("splatfilm:lens")
        assert lens["model"] == model and list(lens["distCoeffs"]) == pytest.approx(coefficients)
        assert lens["K"][0][0] == pytest.approx(focal_mm / 36 * 48)  # pixels on the film's 48-pixel width
    context = UsdValidation.ValidationContext(UsdValidation.ValidationRegistry().GetOrLoadAllValidators())
    assert [e.GetMessage() for e in context.Validate(stage)] == []

    script["shots"][0]["lens"] = {"model": "equirectangular"}
    film_yaml.write_text(yaml.safe_dump(script, sort_keys=False))
    err = cli_error(capsys, ["export-usd", film_yaml, "-o", tmp_path / "pano.usda"], film_yaml)
    assert "shot sh010" in err and "no spherical projection" in err


def test_world_cameras_carry_each_shots_film_back(tmp_path):
    # The vertical aperture was the image's share of the back's width (0.36 * 40 / 64): a
    # film on an ALEXA 35 back lost its height, and a shot framing vertically its field.
    from helpers import write_walking_film
    from pxr import Usd, UsdGeom, UsdRender

    path = write_walking_film(tmp_path, frames=2)
    script = yaml.safe_load(path.read_text())
    script["lens"] = {"focal_mm": 30, "sensor_width_mm": "alexa35"}
    script["shots"].append({**script["shots"][0], "name": "sh020", "lens": {"sensor_fit": "vertical"}})
    path.write_text(yaml.safe_dump(script, sort_keys=False))
    film = parse_film(path)
    export_usd_world(film, tmp_path / "world.usda", progress=False)
    stage = Usd.Stage.Open(str(tmp_path / "world.usda"))
    for fs, policy in zip(film.shots, ("adjustApertureHeight", "adjustApertureWidth")):
        cam = UsdGeom.Camera(stage.GetPrimAtPath(f"/World/Cameras/{fs.name}"))
        assert (cam.GetHorizontalApertureAttr().Get(), cam.GetVerticalApertureAttr().Get()) == pytest.approx(
            (0.2799, 0.1922))
        settings = UsdRender.Settings(stage.GetPrimAtPath(f"/Render/{fs.name}"))
        assert settings.GetAspectRatioConformPolicyAttr().Get() == policy
        cams, _, _ = read_usd_camera(tmp_path / "world.usda", f"/World/Cameras/{fs.name}")
        np.testing.assert_allclose(cams.Ks[0], fs.shot.cameras().Ks[0], rtol=1e-6)
    assert film.shots[1].shot.lens.vfov_deg == pytest.approx(2 * np.degrees(np.arctan(19.22 / 60)))
