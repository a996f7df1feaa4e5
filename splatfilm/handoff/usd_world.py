"""A film's world as one OpenUSD stage, for layout in a DCC: `splatfilm export-usd FILM.yaml -o WORLD.usda`.

Stage (docs/CONVENTIONS.md, "Files splatfilm writes"): Z up, metersPerUnit 1,
timeCodesPerSecond = framesPerSecond = the film's fps. Time code = first_frame + world seconds
x fps, so world time 0 is frame 1001 and a shot's frames sit where its world time puts them
(its handles may reach before 1001). start/end time codes span every shot's frames.

    /World                              Xform, the default prim (kind assembly)
      Assets/<asset>                    Xform (component): the asset's film transform (asset frame
                                        -> world; `xformOp:transform` per frame where it moves:
                                        keyframes, walks, physics), `visibility` per frame when a
                                        shot hides it
        Gaussians                       ParticleField3DGaussianSplat in the asset's own frame
                                        (`splatfilm.io.usd_splats`); a performing character's
                                        positions, orientations, scales and SH per frame (posed)
      Shadows/<asset>                   its contact shadow's splats, world frame, per frame (component)
      Ground/<scene>                    the ground plane of each scene others stand on: a quad Mesh
                                        (component) with purpose "guide" (shown, never rendered)
      Cameras/<shot>                    every shot's camera, animated with its lens
                                        (`splatfilm.shots.interchange.define_usd_camera`; no kind):
                                        a distorting lens's pinhole with its distortion in customData
                                        `splatfilm:lens`; a film with a panorama shot is refused
    /Render/<shot>                      UsdRender settings (in a Scope): image size, pixel aspect (squeeze), the shot's camera

Assets, Shadows, Ground and Cameras are Scopes of kind group: the model hierarchy usdview's
and Houdini's kind-based picking selects by.

Paths the stage records (the layer's `film`, each asset's customData `splatfilm:source`) are
relative to its folder, as the .otio's media are, so it names no folder of the machine that
wrote it and moves with the film's folder.

Where the world depends on the camera (a look-at aimed at the camera, contact shadows drawn
toward it) or a shot hides an asset, a frame follows the shot whose cut holds its world time
(in its handles, the first shot whose frames do): cut frames render from the stage exactly as
the film renders them. Motion blur's sub-frame times are not sampled (the cameras carry the
shutter); depth of field is the cameras' fStop and focusDistance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.film.script import Film, FilmShot, ground_plane
from splatfilm.io.atomic import check_output_file
from splatfilm.io.paths import recorded_path
from splatfilm.io.usd_splats import export_usd_stage, write_splat_prim
from splatfilm.scene.gaussians import Gaussians
from splatfilm.shots.interchange import (define_usd_camera, define_usd_render_settings, usd_camera_problem, usd_conform_policy,
                                         usd_name)
from splatfilm.version import __version__
from splatfilm import report

USD_WORLD_EXTENSIONS = (".usda", ".usdc", ".usd")


@dataclass
class WorldSample:
    """One time code of the stage: its world time (s) and the shot it follows (index)."""

    code: float
    time: float
    owner: int


@dataclass
class UsdWorldSummary:
    """What `export_usd_world` wrote: the stage's `path`; how many `assets` (the film world's)
    and `cameras` (one per shot) it holds; `samples`, the number of time codes (every frame
    some shot renders, handles included); and the first and last of them, `start` and `end`
    (time codes: first_frame + world seconds * fps)."""

    path: Path
    assets: int
    cameras: int
    samples: int
    start: float
    end: float


def time_code(film: Film, world_time: float) -> float:
    """The stage time code of world time `world_time` (s): first_frame + t * fps."""
    return round(film.first_frame + world_time * float(film.fps), 6)


def shot_time_codes(film: Film, fs: FilmShot) -> list[float]:
    """The time code of each of a shot's rendered frames (handles included)."""
    return [time_code(film, fs.world_start + float(t)) for t in fs.shot.times]


def world_samples(film: Film) -> list[WorldSample]:
    """Every time code some shot renders, with its world time and the shot that owns it: the
    one whose cut holds it, else the first whose frames do."""
    found: dict[float, list[tuple[int, float]]] = {}
    for i, fs in enumerate(film.shots):
        for code, t in zip(shot_time_codes(film, fs), fs.shot.times):
            found.setdefault(code, []).append((i, fs.world_start + float(t)))
    eps = 1e-6  # seconds: frame times and cut ends are the same fractions, computed in floats
    out = []
    for code in sorted(found):
        shots = found[code]
        cut = [(i, t) for i, t in shots if film.shots[i].cut_start - eps <= t < film.shots[i].cut_end - eps]
        i, t = (cut or shots)[0]
        out.append(WorldSample(code, t, i))
    return out


def _camera_centre(film: Film, sample: WorldSample) -> np.ndarray | None:
    """The owning shot's camera centre [3] at this sample, as the frame renderer samples it, or
    None when nothing the shot sees depends on the camera."""
    fs = film.shots[sample.owner]
    if not film.world.needs_camera(fs.visible):
        return None
    t_shot = float(fs.shot.times[int(np.argmin(np.abs(np.asarray(shot_time_codes(film, fs)) - sample.code)))])
    return fs.shot.sample(np.array([t_shot])).to_cameras(fs.shot.lens).centers[0]


def _standing_grounds(film: Film) -> list[str]:
    """Scene assets other assets stand on (`on_ground`), in script order."""
    raw = film.raw.get("assets", {}) or {}
    named = {str(block.get("on_ground")) for block in raw.values() if isinstance(block, dict) and "on_ground" in block}
    return [n for n in film.world.assets if n in named]


def _define_ground(stage, prim_path: str, film: Film, name: str) -> None:
    from pxr import Gf, Kind, Usd, UsdGeom, Vt

    from splatfilm.assets.asset_frame import robust_bounds
    from splatfilm.scene.transforms import rotation_between

    asset = film.world.assets[name]
    plane = ground_plane(asset)
    lo, hi = robust_bounds(asset.world_transform(0.0).transform_gaussians(asset.gaussians))
    centre = (lo + hi) / 2
    centre = centre - plane.signed_distance(centre) * plane.normal
    half = 0.5 * float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
    R = rotation_between([0.0, 0.0, 1.0], plane.normal)
    corners = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]]) @ R.T + centre
    mesh = UsdGeom.Mesh.Define(stage, prim_path)
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(corners.astype(np.float32)))
    mesh.CreateFaceVertexCountsAttr([4])
    mesh.CreateFaceVertexIndicesAttr([0, 1, 2, 3])
    mesh.CreateNormalsAttr(Vt.Vec3fArray([Gf.Vec3f(*plane.normal.astype(float))]))
    mesh.SetNormalsInterpolation(UsdGeom.Tokens.constant)
    mesh.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(np.stack([corners.min(0), corners.max(0)]).astype(np.float32)))
    mesh.CreateDisplayColorAttr(Vt.Vec3fArray([Gf.Vec3f(0.4, 0.4, 0.4)]))
    mesh.CreatePurposeAttr(UsdGeom.Tokens.guide)
    Usd.ModelAPI(mesh.GetPrim()).SetKind(Kind.Tokens.component)
    mesh.GetPrim().SetCustomDataByKey("splatfilm:ground_of", name)
    mesh.GetPrim().SetCustomDataByKey("splatfilm:plane", Gf.Vec4d(*plane.normal.astype(float), float(plane.offset)))


def _recorded_path(path: str | os.PathLike, stage_path: str | os.PathLike) -> str:
    """`path` as the stage at `stage_path` records it: relative to the stage's folder; the
    absolute path where none exists (another drive)."""
    return recorded_path(path, Path(os.path.abspath(stage_path)).parent)


def check_usd_world_output(path: str | os.PathLike) -> Path:
    """`path` as a Path if a USD world can be written there, else a one-line SplatfilmError."""
    path = Path(path)
    if path.suffix.lower() not in USD_WORLD_EXTENSIONS:
        raise SplatfilmError(f"{path}: a USD world is written as .usda (text), .usdc or .usd (binary)")
    return check_output_file(path)


def export_usd_world(film: Film, path: str | os.PathLike, progress: bool = True) -> UsdWorldSummary:
    """Write `film`'s world, ground and shot cameras as one USD stage at `path` (atomically)."""
    try:
        from pxr import Gf, Kind, Usd, UsdGeom, UsdVol, Vt
    except ImportError as e:
        raise SplatfilmError(f"USD export needs usd-core >= 26.03 ({e}); pip install usd-core") from None
    path = check_usd_world_output(path)
    for fs in film.shots:
        problem = usd_camera_problem(fs.shot.lens)
        if problem:
            raise SplatfilmError(f"{film.path}: shot {fs.name}: {problem}")
    samples = world_samples(film)
    world = film.world
    fps = float(film.fps)

    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    stage.SetTimeCodesPerSecond(fps)
    stage.SetFramesPerSecond(fps)
    stage.SetStartTimeCode(samples[0].code)
    stage.SetEndTimeCode(samples[-1].code)
    stage.GetRootLayer().customLayerData = {"splatfilm": {
        "splatfilm_version": __version__, "film": _recorded_path(film.path, path), "title": film.title,
        "fps": str(film.fps), "first_frame": str(film.first_frame), "time_code": "first_frame + world seconds * fps",
        "paths": "relative to this file's folder"}}
    root = UsdGeom.Xform.Define(stage, "/World")
    stage.SetDefaultPrim(root.GetPrim())

    def group(prim_path: str) -> None:
        UsdGeom.Scope.Define(stage, prim_path)
        Usd.ModelAPI(stage.GetPrimAtPath(prim_path)).SetKind(Kind.Tokens.group)

    # The model hierarchy (assembly > group > component) is what usdview's and Houdini's
    # kind-based picking selects by: a click on a splat picks its asset, not the whole world.
    Usd.ModelAPI(root.GetPrim()).SetKind(Kind.Tokens.assembly)

    names = list(world.assets)
    hidden = {n for n in names if any(n not in fs.visible for fs in film.shots)}
    moving = {n for n in names if world.assets[n].motion is not None}
    performing = {n for n in names if world.assets[n].performance is not None}
    shadowed = [n for n in names if world.assets[n].shadow is not None]
    xforms, fields, shadows = {}, {}, {}
    group("/World/Assets")
    for n in names:
        asset = world.assets[n]
        xf = UsdGeom.Xform.Define(stage, f"/World/Assets/{usd_name(n)}")
        xf.GetPrim().SetCustomDataByKey("splatfilm:asset", n)
        Usd.ModelAPI(xf.GetPrim()).SetKind(Kind.Tokens.component)
        xf.GetPrim().SetCustomDataByKey("splatfilm:source",
                                        _recorded_path(asset.source, path) if asset.source else "")
        xforms[n] = (xf, xf.AddTransformOp())
        if n not in moving:
            xforms[n][1].Set(Gf.Matrix4d(asset.world_transform(0.0).matrix().T.tolist()))
        fields[n] = UsdVol.ParticleField3DGaussianSplat.Define(stage, xf.GetPath().AppendChild("Gaussians"))
        if n not in performing:
            write_splat_prim(fields[n], asset.gaussians)
    if shadowed:
        group("/World/Shadows")
        for n in shadowed:
            shadows[n] = UsdVol.ParticleField3DGaussianSplat.Define(stage, f"/World/Shadows/{usd_name(n)}")
            Usd.ModelAPI(shadows[n].GetPrim()).SetKind(Kind.Tokens.component)

    bar = report.progress_bar(samples, desc="export-usd", unit="frame", show=progress)
    for s in bar:
        owner = film.shots[s.owner]
        camera = _camera_centre(film, s) if (performing or shadowed) else None
        for n in names:
            asset = world.assets[n]
            visible = n in owner.visible
            if n in moving:
                xforms[n][1].Set(Gf.Matrix4d(asset.world_transform(s.time).matrix().T.tolist()), Usd.TimeCode(s.code))
            if n in hidden:
                xforms[n][0].GetVisibilityAttr().Set(UsdGeom.Tokens.inherited if visible else UsdGeom.Tokens.invisible,
                                                     Usd.TimeCode(s.code))
            posed = world.posed(n, s.time, camera) if n in performing else asset.gaussians
            if n in performing:
                write_splat_prim(fields[n], posed, s.code)
            if n in shadows:
                # As a render has it: on the surface under the asset's lowest part, fading with its height.
                placed = asset.world_transform(s.time).transform_gaussians(posed) if visible else None
                patch = world.shadow_patch(n, s.time, camera, placed) if visible else None
                write_splat_prim(shadows[n], patch if patch is not None else Gaussians.empty(), s.code)

    grounds = _standing_grounds(film)
    if grounds:
        group("/World/Ground")
        for n in grounds:
            _define_ground(stage, f"/World/Ground/{usd_name(n)}", film, n)

    # Cameras are not models (the model hierarchy holds what a layout places and picks): their
    # Scope is a group, as the others, and they themselves have no kind.
    group("/World/Cameras")
    shutter = film.motion_blur["shutter_deg"] if film.motion_blur else None
    for fs in film.shots:
        cam = define_usd_camera(stage, f"/World/Cameras/{usd_name(fs.name)}", fs.shot, shot_time_codes(film, fs),
                                depth_of_field=film.depth_of_field, shutter_deg=shutter)
        prim = cam.GetPrim()
        prim.SetCustomDataByKey("splatfilm:shot", fs.name)
        prim.SetCustomDataByKey("splatfilm:first_frame", int(fs.shot.first_frame))
        prim.SetCustomDataByKey("splatfilm:handles", int(fs.handles))
        prim.SetCustomDataByKey("splatfilm:first_time_code", shot_time_codes(film, fs)[0])
        prim.SetCustomDataByKey("splatfilm:visible", Vt.StringArray(list(fs.visible)))
        define_usd_render_settings(stage, f"/Render/{usd_name(fs.name)}", cam, film.width, film.height,
                                   usd_conform_policy(fs.shot.lens), fs.shot.lens.squeeze)
    export_usd_stage(stage, path)
    return UsdWorldSummary(path, len(names), len(film.shots), len(samples), samples[0].code, samples[-1].code)
