"""The `splatfilm` command line."""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading
import time
from pathlib import Path

from splatfilm.cli.args import (frame_range, image_side, non_negative_float, non_negative_int, positive_float,
                                positive_int, rgb_triple, seed, sh_degree, video_frames)
from splatfilm.errors import SplatfilmError
from splatfilm.io.cache import CACHE_ENV, cache_root_for
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_TYPES

SCENES_DIR = Path(__file__).resolve().parents[2] / "scenes"
DEMO_FILM = SCENES_DIR / "set" / "film.yaml"


def _add_render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto",
                   help="gsplat (CUDA; not yet run on a GPU by splatfilm's checks), cpu (ours), auto: gsplat when "
                        "CUDA is available (default)")
    p.add_argument("--width", type=image_side, help="output width in pixels (default: the camera's)")
    p.add_argument("--height", type=image_side, help="output height in pixels (default: the camera's)")
    p.add_argument("--sh-degree", type=sh_degree, help="SH bands to use (default: all the scene stores)")
    bg = p.add_mutually_exclusive_group()
    bg.add_argument("--background", type=rgb_triple, default=(0.0, 0.0, 0.0), help="R,G,B in [0,1] (default 0,0,0)")
    bg.add_argument("--transparent", action="store_true", help="write RGBA PNGs with the rendered alpha")
    p.add_argument("--depth", action="store_true",
                   help="also write expected depth (camera z, metres; 1e10 where nothing is seen) beside each PNG")
    p.add_argument("--depth-format", choices=["exr", "npy"], default="exr", help="32-bit float EXR (default) or .npy")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--rasterize-mode", choices=["classic", "antialiased"],
                      help="gsplat's mode (default: the scene's own, as its sidecar or .spz flag records it)")
    mode.add_argument("--antialiased", dest="rasterize_mode", action="store_const", const="antialiased",
                      help="--rasterize-mode antialiased")


def _settings(args: argparse.Namespace):
    from splatfilm.assets.sidecar import asset_rasterize_mode
    from splatfilm.render.render_cameras import RenderSettings

    return RenderSettings(
        backend=args.backend, width=args.width, height=args.height, sh_degree=args.sh_degree,
        background=args.background, transparent=args.transparent,
        depth=args.depth_format if args.depth else None,
        # A scene renders as it was trained unless told otherwise.
        rasterize_mode=args.rasterize_mode or asset_rasterize_mode(args.scene),
    )


def _cmd_render_cameras(args: argparse.Namespace) -> None:
    from splatfilm.assets.asset_frame import origin_offset
    from splatfilm.io.camera_files import camera_path_world_note, holds_camera_path
    from splatfilm.render.render_cameras import render_cameras

    t0 = time.perf_counter()
    paths = render_cameras(args.scene, args.cameras, args.output, _settings(args),
                           dataparser_transforms=args.dataparser_transforms, transforms_json=args.transforms_json,
                           origin_offset=origin_offset(args.scene))
    print(f"wrote {len(paths)} frame(s) to {args.output} in {time.perf_counter() - t0:.1f} s")
    # After the render: a file that does not read ends in its one error line alone.
    if args.dataparser_transforms is None and holds_camera_path(args.cameras):
        print(camera_path_world_note(args.cameras, written=False), file=sys.stderr)


def _cmd_demo(args: argparse.Namespace) -> None:
    from splatfilm.film import RenderOptions, render_film

    if not DEMO_FILM.exists():
        raise SplatfilmError(f"{DEMO_FILM}: the bundled demo film is missing from this checkout")
    with cache_root_for(args.cache_dir, Path(args.output) / ".splatfilm-cache"):  # an installed demo is read-only
        res = render_film(DEMO_FILM, args.output, RenderOptions(backend=args.backend, workers=args.workers,
                                                                provenance=True))
    print(f"demo film: {res.film_mp4} ({sum(res.rendered.values())} frames rendered, "
          f"{sum(res.kept.values())} kept, {res.seconds:.0f} s); timeline {res.otio}, contact sheet {res.contact_sheet}")


def _cmd_fit(args: argparse.Namespace) -> None:
    from splatfilm.fit import FitConfig, run_fit

    cfg = FitConfig(steps=args.steps, backend=args.backend, sh_degree=args.sh_degree, strategy=args.strategy,
                    max_gaussians=args.max_gaussians, seed=args.seed, test_every=args.test_every,
                    eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, appearance=args.appearance,
                    antialiased=args.antialiased, absgrad=args.absgrad)
    sidecar = run_fit(args.data, args.output, cfg, resume=args.resume, downscale=args.downscale,
                      max_size=args.max_size, eval_data=args.eval_data, triangulate=not args.no_triangulate,
                      video_frames=args.video_frames, camera_model=args.camera_model, masks=args.masks,
                      known_height=args.known_height)
    if "interrupted_at" in sidecar:
        print(f"stopped at step {sidecar['interrupted_at']}; continue with --resume")
        return
    m = sidecar["metrics"]
    parts = [f"{sidecar['num_gaussians']} Gaussians", f"{sidecar['timing']['seconds']:.0f} s"]
    if "test" in m:
        parts.append(f"held-out PSNR {m['test']['psnr']:.2f} dB SSIM {m['test']['ssim']:.4f} ({m['test']['views']} views)")
    if "eval_data" in m:
        parts.append(f"eval-data PSNR {m['eval_data']['psnr']:.2f} dB SSIM {m['eval_data']['ssim']:.4f}")
    print(f"wrote {args.output} and {Path(args.output).with_suffix('.json')}: " + ", ".join(parts))


def _cmd_render(args: argparse.Namespace) -> None:
    from splatfilm.cli.handoff import finish_render, handoff_options
    from splatfilm.film import RenderOptions, render_film

    shots = [s for s in args.shots.split(",") if s] if args.shots else None
    frames = frame_range(args.frames) if args.frames is not None else None
    handoff = handoff_options(args)  # checked before any work
    # render_film checks the output folder, the shot names and the refiner before the slow work on the film.
    def finish(res) -> None:
        total = sum(res.rendered.values())
        print(f"rendered {total} frame(s), kept {sum(res.kept.values())} in {res.seconds:.1f} s -> {args.output}")
        finish_render(handoff, res.film, args.output, args.frames_only or frames is not None)

    with cache_root_for(args.cache_dir, Path(args.output) / ".splatfilm-cache"):
        render_film(args.film, args.output, RenderOptions(
            backend=args.backend, shots=shots, workers=args.workers, ray_address=args.ray, depth=args.depth,
            alpha=args.alpha or handoff.needs_alpha, refine=args.refine, refine_tolerance=args.refine_tolerance,
            refine_prompt=args.refiner_prompt,
            passes=handoff.passes, provenance=handoff.provenance, frames_only=args.frames_only, frames=frames,
            png_bits=handoff.png_bits, exr=handoff.exr), then=finish)


def _cmd_refine(args: argparse.Namespace) -> None:
    from splatfilm.refine.distill import DistillConfig
    from splatfilm.refine.pairs import PairConfig
    from splatfilm.refine.run import run_refine
    from splatfilm.refine.scene_refiner import SceneRefinerConfig

    if args.shots:
        from splatfilm.film.asset_cameras import film_cameras_for_asset
        from splatfilm.film.script import parse_film

        targets = film_cameras_for_asset(parse_film(args.shots), args.scene)
    else:
        from splatfilm.assets.asset_frame import cameras_in_asset_frame
        from splatfilm.io.camera_files import read_cameras

        targets = cameras_in_asset_frame(args.scene, read_cameras(args.cameras), args.cameras)
    train_cfg = SceneRefinerConfig(seed=args.seed)
    if args.refiner_iterations:
        train_cfg.iterations = args.refiner_iterations
    dcfg = DistillConfig(rounds=args.rounds, views=args.views, steps=args.steps, pseudo_weight=args.pseudo_weight,
                         seed=args.seed, backend=args.backend)
    pcfg = PairConfig(folds=args.folds, steps=args.pair_steps, seed=args.seed, backend=args.backend)
    sidecar = run_refine(args.scene, args.data, args.output, targets, args.shots or args.cameras,
                         refiner=args.refiner, pair_cfg=pcfg, train_cfg=train_cfg, distill_cfg=dcfg,
                         downscale=args.downscale, refiner_prompt=args.refiner_prompt)
    print(f"wrote {args.output} ({sidecar['num_gaussians']} Gaussians) and {Path(args.output).with_suffix('.json')} "
          f"in {sidecar['refined']['seconds']:.0f} s")


def _add_refiner_prompt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--refiner-prompt", default="", metavar="TEXT",
                   help="text a diffusers refiner is conditioned on (default: none, as sd-turbo wants; Difix "
                        "was trained with \"remove degradation\")")


def _add_refine(sub) -> None:
    p = sub.add_parser("refine", help="add detail with a refiner and distil it back into the scene (Difix3D-style)",
                       description="Render SCENE along the target cameras (stepping out from the capture), refine "
                                   "the renders, add them as lower-weight pseudo-views and continue optimising the "
                                   "same Gaussians; repeat. Every shot then renders the same added detail. Without "
                                   "--refiner, a per-scene refiner is first trained on pairs made from DATA.")
    p.add_argument("scene", help="the fitted scene (.ply)")
    p.add_argument("data", help="the capture SCENE was fitted from (as `splatfilm fit` takes it)")
    t = p.add_mutually_exclusive_group(required=True)
    t.add_argument("--shots", metavar="FILM.yaml", help="refine toward every camera of the film's shots that see SCENE")
    t.add_argument("--cameras", metavar="CAMERAS", help="refine toward these cameras (any file render-cameras reads)")
    p.add_argument("-o", "--output", required=True, help="output .ply (sidecar .json and work folder .refine/ beside it)")
    p.add_argument("--refiner", metavar="FOLDER", help="a local refiner: a diffusers sd-turbo-class img2img folder, "
                                                       "or a folder a previous refine trained (default: train one)")
    _add_refiner_prompt(p)
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto")
    p.add_argument("--rounds", type=positive_int, default=3, help="progressive rounds (default 3)")
    p.add_argument("--views", type=non_negative_int, default=12, help="pseudo-views per round, 0 = every target (default 12)")
    p.add_argument("--steps", type=positive_int, default=400, help="optimisation steps per round (default 400)")
    p.add_argument("--pseudo-weight", type=non_negative_float, default=0.5,
                   help="loss weight of a pseudo-view; a photo's is 1 (default 0.5)")
    p.add_argument("--folds", type=int, default=3, help="leave-fold-out fits for the refiner's pairs (default 3)")
    p.add_argument("--pair-steps", type=positive_int, default=800, help="steps of each fit made for pairs (default 800)")
    p.add_argument("--refiner-iterations", type=positive_int, help="training iterations of the per-scene refiner")
    p.add_argument("--downscale", type=float, help="divide the capture's image sizes by this factor")
    p.add_argument("--seed", type=seed, default=0)
    p.set_defaults(func=_cmd_refine)


def _cmd_import_mesh(args: argparse.Namespace) -> None:
    from splatfilm.assets.mesh_import import import_mesh
    from splatfilm.io.rig_files import joints_text

    sidecar = import_mesh(args.mesh, args.output, count=args.count, density=args.density, sh_degree=args.sh_degree,
                          seed=args.seed, up=args.up, front=args.front)
    print(f"wrote {args.output} ({sidecar['num_gaussians']} Gaussians, colour from "
          f"{', '.join(sidecar['source']['colour']) or 'none'}) and {Path(args.output).with_suffix('.json')}")
    rig = sidecar.get("rig")
    if rig is not None:
        clips = ", ".join(f"{name} ({seconds:.2f} s)" for name, seconds in rig["clips"].items()) or "none"
        print(f"rig: {rig['file']} ({joints_text(rig)}; clips: {clips}); `splatfilm pose "
              f"{args.output} --joints` names the joints")
        for note in rig.get("ignored", []):
            print(f"note: {note}")
    for warning in sidecar["import"].get("warnings", []):
        print(f"warning: {args.mesh}: {warning}")


def _add_import_mesh(sub) -> None:
    p = sub.add_parser("import-mesh", help="turn a mesh (glTF/GLB, OBJ, PLY, STL) into a Gaussian asset",
                       description="Cover MESH's surface with flat Gaussians coloured from its texture, vertex "
                                   "colours or material. The asset keeps the mesh's frame; its sidecar .json "
                                   "gives the canonical frame (base on z = 0, up +z, front -y).")
    p.add_argument("mesh", help="mesh file: .glb, .gltf, .obj, .ply or .stl")
    p.add_argument("-o", "--output", required=True, help="output .ply (or .splat); sidecar .json beside it")
    n = p.add_mutually_exclusive_group()
    n.add_argument("--count", type=positive_int, help="number of Gaussians (default 100000)")
    n.add_argument("--density", type=float, help="Gaussians per square unit of surface (per m^2 for a mesh in metres)")
    p.add_argument("--sh-degree", type=sh_degree, default=0, help="SH bands to store, 0-4 (default 0: colour is unlit)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--up", help="the mesh's up axis: x, y, z, -x, -y, -z; a negative one as --up=-z "
                                "(default: y for glTF and OBJ, z for PLY and STL)")
    p.add_argument("--front", help="the axis the mesh's front faces, e.g. --front=-y "
                                   "(default: z for glTF and Y-up meshes, -y otherwise)")
    p.set_defaults(func=_cmd_import_mesh)


def _cmd_edit(args: argparse.Namespace) -> None:
    from splatfilm.assets.edits import bake_edits

    sidecar = bake_edits(args.input, args.edits, args.output)
    print(f"wrote {args.output} ({sidecar['num_gaussians']} Gaussians) and {Path(args.output).with_suffix('.json')}")


def _add_edit(sub) -> None:
    p = sub.add_parser("edit", help="bake a list of edits (delete, keep, recolour, opacity) into a copy of an asset",
                       description="Apply the edits in EDITS.yaml (asset frame) to IN and write OUT with a sidecar "
                                   "noting them; IN's rig (IN.rig.npz, for the Gaussians kept) and capture cameras "
                                   "(IN.cameras.json) come along. IN is left as it is; film scripts can apply the "
                                   "same edits without a copy.")
    p.add_argument("input", help=f"Gaussian asset ({GAUSSIAN_FILE_TYPES})")
    p.add_argument("edits", help="YAML: a list of edits, or a mapping with `edits:`")
    p.add_argument("-o", "--output", required=True,
                   help=f"the edited copy ({GAUSSIAN_FILE_TYPES}); its sidecar .json, and the input's rig and "
                        "capture cameras if it has them, beside it")
    p.set_defaults(func=_cmd_edit)


def _cmd_ground(args: argparse.Namespace) -> None:
    from splatfilm.assets.ground import ground_scene
    from splatfilm.io.asset_files import sidecar_path

    known = None
    if args.known_distance is not None:
        a, b, metres = args.known_distance
        try:
            known = (a, b, positive_float(metres))
        except argparse.ArgumentTypeError as e:
            raise SplatfilmError(f"{args.scene}: --known-distance A B METRES: METRES {e}") from None
    plane, scale = ground_scene(args.scene, args.up, camera_height=args.camera_height, known_distance=known,
                                cameras=args.cameras, min_opacity=args.min_opacity, distance=args.distance,
                                max_tilt_deg=args.max_tilt)
    n = ", ".join(f"{v:.4f}" for v in plane.normal)
    print(f"ground of {args.scene}: normal [{n}], offset {plane.offset:.4f} ({100 * plane.inliers:.1f}% of the opaque "
          f"Gaussians on it) -> {sidecar_path(args.scene)}")
    if scale is not None:
        print(f"scale of {args.scene}: {scale.text} -> scale_to_metres {scale.scale_to_metres:.6g} "
              f"(1 m = {1 / scale.scale_to_metres:.4g} units)")


def _add_ground(sub) -> None:
    p = sub.add_parser("ground", help="find a scene's ground plane (and its scale to metres) for its sidecar .json",
                       description="Estimate SCENE's ground plane by RANSAC on its opaque Gaussians: the lowest large "
                                   "plane facing the capture's up (--up, else the sidecar's frame.up, else +z). Writes "
                                   "`ground: {normal, offset, inliers}` (n.x + offset = 0) into SCENE.json. Structure "
                                   "from motion has no scale: --camera-height or --known-distance measure one on the "
                                   "capture's cameras and record it as frame.scale_to_metres, so a film places the "
                                   "scene in metres and `mesh` writes metres.")
    p.add_argument("scene", help=f"Gaussian scene ({GAUSSIAN_FILE_TYPES})")
    p.add_argument("--min-opacity", type=float, default=0.5, help="Gaussians at least this opaque count (default 0.5)")
    p.add_argument("--distance", type=float, help="RANSAC inlier distance in scene units (default: 0.4%% of the "
                                                  "scene's diagonal)")
    p.add_argument("--max-tilt", type=float, default=20.0, help="degrees a ground may lean from up (default 20)")
    p.add_argument("--up", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help="the capture's up in the scene's frame, searched around in place of the sidecar's frame.up")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--camera-height", type=positive_float, metavar="METRES",
                       help="the capture cameras' median height above the floor in metres: the scene's scale to "
                            "metres (a handheld phone or camera is typically held at 1.4-1.7 m, eye level less a "
                            "little; a tripod's or a drone's own height where known)")
    scale.add_argument("--known-distance", nargs=3, metavar=("A", "B", "METRES"),
                       help="two capture cameras (image name, as frame_00012.png or frame_00012) and the metres "
                            "between their centres (measured on set, or the phone moved along a tape): the "
                            "scene's scale to metres")
    p.add_argument("--cameras", help="the camera file to measure the scale on (transforms.json, camera_path.json or "
                                     "a COLMAP model folder; default: the capture's cameras fit recorded beside SCENE "
                                     "as SCENE.cameras.json)")
    p.set_defaults(func=_cmd_ground)


def _cmd_mesh(args: argparse.Namespace) -> None:
    from splatfilm.assets.meshing import MeshSettings, export_scene_mesh

    settings = MeshSettings(voxel=args.voxel, views=args.views, width=args.width, height=args.height,
                            min_alpha=args.min_alpha, trunc_voxels=args.trunc, min_component=args.min_component,
                            backend=args.backend)
    with cache_root_for(args.cache_dir, Path(args.output).parent / ".splatfilm-cache"):
        info = export_scene_mesh(args.scene, args.output, args.cameras, settings)
    print(f"wrote {args.output}: {info['vertices']} vertices, {info['triangles']} triangles "
          f"(voxel {info['voxel']:.4g}, {info['views']} views {info['cameras']}, {info['seconds']:.0f} s)")


def _add_mesh(sub) -> None:
    p = sub.add_parser("mesh", help="a triangle mesh of a scene (.glb/.ply/.obj) by depth fusion",
                       description="Render depth and colour of SCENE from many views (CAMERAS, else the capture's "
                                   "cameras recorded beside it, else an orbit above "
                                   "it), fuse them into a TSDF and extract a vertex-coloured mesh. A .ply is in "
                                   "the scene's frame and units; a .glb or .obj is turned so that the scene's up "
                                   "(its ground's normal, else its capture's up) is +y and scaled to metres where "
                                   "the sidecar knows the scale. Pixels less opaque than --min-alpha are left out.")
    p.add_argument("scene", help=f"Gaussian scene ({GAUSSIAN_FILE_TYPES})")
    p.add_argument("-o", "--output", required=True, help="output mesh: .glb (upright for glTF viewers), .ply or .obj")
    p.add_argument("--cameras", help="transforms.json, camera_path.json or a COLMAP model folder to render from "
                                     "(default: the capture's cameras that fit recorded beside SCENE as SCENE.cameras.json, "
                                     "else orbit views, which suit objects, not rooms seen from inside)")
    p.add_argument("--voxel", type=float, help="TSDF voxel size in scene units (default: scene diagonal / 200)")
    p.add_argument("--views", type=positive_int, default=48, help="orbit views without --cameras (default 48)")
    p.add_argument("--width", type=image_side, default=320, help="render width in pixels (default 320)")
    p.add_argument("--height", type=image_side, default=240, help="orbit render height in pixels (default 240)")
    p.add_argument("--trunc", type=float, default=4.0,
                   help="TSDF truncation in voxels, at least 1 (default 4; open3d's sdf_trunc is this times --voxel)")
    p.add_argument("--min-alpha", type=float, default=0.5,
                   help="pixels less opaque than this are not fused, in (0, 1] (default 0.5)")
    p.add_argument("--min-component", type=non_negative_int, default=50,
                   help="connected pieces of fewer triangles are dropped as floaters (default 50; 0 keeps all)")
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto")
    _add_cache_dir(p, "OUTPUT's folder")
    p.set_defaults(func=_cmd_mesh)


def _add_cache_dir(p: argparse.ArgumentParser, output: str) -> None:
    p.add_argument("--cache-dir", metavar="FOLDER",
                   help=f"where caches go (TSDF and collision meshes, physics bakes, clean counts, foot plants) when the "
                        f"folder beside their inputs cannot be written, as on a read-only published set; those "
                        f"already beside them are still read (default: ${CACHE_ENV}, else "
                        f"{output}/.splatfilm-cache)")


def build_parser() -> argparse.ArgumentParser:
    """The `splatfilm` parser with every subcommand; each sets `func`, which `main` calls with the args."""
    parser = argparse.ArgumentParser(prog="splatfilm", description="Films from persistent 3D Gaussian scenes.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("render-cameras", help="render a Gaussian scene from every camera of a camera file",
                       description=f"Render SCENE ({GAUSSIAN_FILE_TYPES}) from every camera in CAMERAS (a nerfstudio "
                                   "transforms.json, a nerfstudio viewer camera_path.json, or a COLMAP model "
                                   "folder), in the camera file's own world frame, one PNG per camera.")
    p.add_argument("scene", help=f"Gaussian splat file ({GAUSSIAN_FILE_TYPES}; .ply in the INRIA layout)")
    p.add_argument("cameras", help="transforms.json, camera_path.json or a COLMAP sparse model folder")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--dataparser-transforms", help="nerfstudio dataparser_transforms.json: maps a camera_path.json "
                                                   "from nerfstudio's normalised world back to the capture's")
    p.add_argument("--transforms-json", help="with --dataparser-transforms: the transforms.json the scene was fitted "
                                             "from, so poses land in its world (nerfstudio's dataparser transform "
                                             "starts from COLMAP's world, before transforms.json's applied_transform)")
    _add_render_options(p)
    p.set_defaults(func=_cmd_render_cameras)

    p = sub.add_parser("render", help="render a film script: every shot from one world, then the edit",
                       description="Render FILM.yaml: per shot a PNG sequence and an MP4, the film MP4, an "
                                   "OpenTimelineIO timeline (.otio, .edl), USD cameras and a contact sheet; with "
                                   "--passes a scene-linear EXR of compositing passes per frame, with --masters "
                                   "ProRes masters. Every file carries its provenance record. "
                                   "Frames whose inputs did not change since the last run are kept.")
    p.add_argument("film", help="film script (YAML)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto")
    p.add_argument("--shots", help="comma-separated shot names to render (default: all)")
    p.add_argument("--frames", metavar="FIRST-LAST",
                   help="render only these film frame numbers of each shot rendered (e.g. 1010-1020, as the PNGs "
                        "are numbered), a quick look; as with --frames-only, no movies, cameras or edit are made")
    p.add_argument("--workers", type=positive_int, default=1, help="local processes rendering frames (default 1)")
    p.add_argument("--ray", metavar="ADDRESS", help="render on a Ray cluster ('local' starts one here)")
    p.add_argument("--depth", action="store_true",
                   help="also write depth as EXR beside each frame (32-bit float; --exr-compression applies)")
    p.add_argument("--alpha", action="store_true",
                   help="also write alpha as EXR beside each frame (stored as --exr-half and --exr-compression say)")
    p.add_argument("--refine", metavar="REFINER", help="refine final frames with this refiner folder (a diffusers "
                   "pipeline, or OUT.refine/refiner from `splatfilm refine`), gated for consistency")
    p.add_argument("--refine-tolerance", type=non_negative_float, default=0.5,
                   help="the share of the refined detail that may change from frame to frame once reprojected "
                        "through depth (default 0.5); a frame over it keeps its raw render")
    _add_refiner_prompt(p)
    p.add_argument("--frames-only", action="store_true",
                   help="write the frames and stop, as a render node does (no ffmpeg or usd-core needed); a later "
                        "run without it keeps the frames and makes the movies, cameras and edit")
    from splatfilm.cli.handoff import add_handoff_options, add_provenance_command

    add_handoff_options(p)
    _add_cache_dir(p, "OUTPUT")
    p.set_defaults(func=_cmd_render)

    from splatfilm.fit.capture import SFM_CAMERA_MODEL
    from splatfilm.fit.sfm import CAMERA_MODELS

    p = sub.add_parser("fit", help="fit a persistent Gaussian asset (.ply + sidecar .json) to a capture",
                       description="Fit 3D Gaussians to DATA: a nerfstudio dataset folder (transforms.json), a COLMAP "
                                   "folder (sparse/0 or colmap/sparse/0 + images/), a folder of bare images or a "
                                   "video (poses by structure-from-motion first). RGBA images make an object "
                                   "capture, and so do masks given with --masks (white = the object); a transforms.json "
                                   "mask_path leaves its black pixels out of the loss, as in nerfstudio.")
    p.add_argument("data", help="capture folder or video file")
    p.add_argument("-o", "--output", required=True, help="output .ply (sidecar .json, checkpoint and SfM work folder beside it)")
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto")
    p.add_argument("--steps", type=positive_int, help="optimisation steps (default 30000 on gsplat, 3000 on cpu)")
    p.add_argument("--sh-degree", type=sh_degree, default=3, help="highest SH degree 0-4, one more every 1000 steps; the file stores the degree reached (default 3)")
    p.add_argument("--strategy", choices=["default", "mcmc"], default="default",
                   help="densification: gsplat's DefaultStrategy, or MCMCStrategy (CUDA only)")
    p.add_argument("--max-gaussians", type=positive_int, help="cap on the number of Gaussians")
    p.add_argument("--downscale", type=float, help="divide image sizes by this factor (then no size cap unless "
                                                    "--max-size is given too)")
    p.add_argument("--max-size", type=positive_int, help="cap on the longer image side in pixels (default 1600 "
                                                         "when --downscale is not given; 3DGS caps the width at 1600)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--video-frames", type=video_frames, default=60, metavar="N",
                   help="evenly spaced frames taken from a video DATA (default 60), as `sfm --video-frames`")
    p.add_argument("--masks", metavar="DIR",
                   help="a folder of black-and-white masks, white = the object, named like the images (or with .png; "
                        "a video's like its frames in OUTPUT.sfm/frames): an object capture, as RGBA images make one "
                        "(a masks/ folder beside images/ is nerfstudio's pixels to leave out: not read without it)")
    p.add_argument("--known-height", type=positive_float, metavar="METRES",
                   help="an object capture's real height (base to top, up its canonical +z): recorded as the "
                        "sidecar's scale_to_metres, so films stand it at its true size")
    p.add_argument("--camera-model", choices=CAMERA_MODELS, default=SFM_CAMERA_MODEL,
                   help=f"COLMAP camera model structure-from-motion gives bare images and video frames, one camera "
                        f"for each size and lens (default {SFM_CAMERA_MODEL}: lens distortion, undistorted for the fit; "
                        "SIMPLE_PINHOLE for rendered or rectified images), as `sfm --camera-model`")
    p.add_argument("--test-every", type=non_negative_int, default=8,
                   help="hold out every Nth image for evaluation (0: none); a transforms.json's "
                        "train/val/test_filenames split it instead, unless 0")
    p.add_argument("--eval-every", type=non_negative_int, default=0, help="evaluate held-out views every N steps (0: only at the end)")
    p.add_argument("--eval-data", help="another capture (e.g. a held-out camera path with images) to evaluate at the end")
    p.add_argument("--checkpoint-every", type=non_negative_int, default=500, help="write a checkpoint every N steps (0: never)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT's checkpoint")
    p.add_argument("--no-triangulate", action="store_true",
                   help="a capture with poses but no point cloud starts from points placed where its views "
                        "agree in colour (a plane sweep; an object capture: inside its alpha's visual hull) instead "
                        "of points triangulated from its images")
    p.add_argument("--appearance", default="auto", metavar="{auto,affine,none}",
                   help="per-image colour transforms absorbing exposure and white balance: auto (default: on for "
                        "photos, i.e. COLMAP models, bare images and videos; off for transforms.json captures), "
                        "affine, none. Written to OUTPUT.appearance.json; the .ply stays the plain scene")
    p.add_argument("--antialiased", action="store_true",
                   help="train in gsplat's antialiased mode (Mip-Splatting's 2D filter with opacity compensation, "
                        "simple_trainer's --antialiased); the sidecar records it and every render of the asset uses it")
    p.add_argument("--absgrad", action="store_true",
                   help="densify by AbsGS's absolute 2D gradients (gsplat's absgrad, with simple_trainer's "
                        "--grow_grad2d 0.0008); the default strategy only")
    p.set_defaults(func=_cmd_fit)

    from splatfilm.cli.pose import add_pose_command
    from splatfilm.cli.clean import add_clean_command
    from splatfilm.cli.exchange import add_exchange_commands
    from splatfilm.cli.rig import add_rig_command
    from splatfilm.cli.sfm import add_sfm_command
    from splatfilm.cli.shots import add_path_commands
    from splatfilm.cli.view import add_view_command

    add_path_commands(sub)
    _add_import_mesh(sub)
    add_rig_command(sub)
    add_pose_command(sub)
    add_sfm_command(sub)
    _add_edit(sub)
    add_clean_command(sub)
    _add_ground(sub)
    _add_mesh(sub)
    _add_refine(sub)
    add_provenance_command(sub)
    add_exchange_commands(sub)
    add_view_command(sub)

    p = sub.add_parser("demo", help="render the bundled demo film (scenes/set/film.yaml)",
                       description="Render the bundled demo film: three shots of one world (the fitted film set, a "
                                   "captured explorer bound to a skeleton, walking, a crate under physics, an edit), "
                                   "edited into "
                                   "an MP4 with its OpenTimelineIO timeline.")
    p.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto")
    p.add_argument("--workers", type=positive_int, default=1, help="local processes rendering frames")
    _add_cache_dir(p, "OUTPUT")
    p.set_defaults(func=_cmd_demo)
    return parser


# Module -> the package that installs it, for the dependencies imported where they are used:
# the render and fit path runs with torch, numpy, numba, gsplat and the light ones alone.
OPTIONAL_PACKAGES = {
    "open3d": "open3d-cpu", "pybullet": "pybullet", "pycolmap": "pycolmap", "pxr": "usd-core", "OpenEXR": "OpenEXR",
    "ray": "'splatfilm[ray]'", "diffusers": "'splatfilm[diffusion]'", "transformers": "'splatfilm[diffusion]'",
    "viser": "viser", "c2pa": "'splatfilm[c2pa]'", "imageio_ffmpeg": "imageio-ffmpeg",
    "opentimelineio": "opentimelineio", "otio_cmx3600_adapter": "otio-cmx3600-adapter", "trimesh": "trimesh",
    "pygltflib": "pygltflib", "splines": "splines", "gsplat": "gsplat", "scipy": "scipy", "cv2": "opencv-python-headless",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a job scheduler, `timeout`), handled as Ctrl-C is: finished work kept,
    a fit's checkpoint written."""


# The stop signals received during this run. A signal's exception raised while a C extension
# converts its arguments (pybind11) comes back as that call's TypeError: what was asked for
# was still a stop, and it ends as one.
_stops: list[int] = []


def _stop(signum, frame) -> None:
    _stops.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


# The commands that keep finished work and pick up from it when run again (with what to add).
_RESUMING = {"render": "", "demo": "", "sfm": "", "refine": "", "fit": " with --resume"}


def _stopped(terminated: bool, command: str | None) -> int:
    how = "terminated" if terminated else "interrupted"
    if command in _RESUMING:
        how += f": finished work is kept; run the same command again{_RESUMING[command]} to continue"
    print(how, file=sys.stderr)
    return 143 if terminated else 130


def main(argv: list[str] | None = None) -> int:
    """Run the command in `argv` (default sys.argv[1:]); returns the exit status: 0 done, 2 a
    SplatfilmError, a missing optional package or a file the OS refused (printed as one
    `error:` line), 130 / 143 interrupted / terminated (SIGINT / SIGTERM), 141 a closed pipe.
    argparse exits 2 itself on bad arguments."""
    # A path whose bytes are not UTF-8 (held as surrogate escapes) is printed escaped, as
    # Python's own stderr prints it: under a UTF-8 locale other than C.UTF-8 stdout is strict,
    # and the closing "wrote ..." line would end a finished job with a traceback.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    on_main_thread = threading.current_thread() is threading.main_thread()
    _stops.clear()
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)} if on_main_thread else {}
    try:
        return _run(args)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run(args: argparse.Namespace) -> int:
    try:
        args.func(args)
    except SplatfilmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        # An optional dependency missing where it is first used (a slim install, a render node).
        package = OPTIONAL_PACKAGES.get((e.name or "").split(".")[0])
        if package is None:
            raise
        print(f"error: this needs the Python package {package}, which is not installed here: pip install {package}",
              file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of our output went away (`splatfilm pose X --joints | head`): stop quietly,
        # as `git log | head` does, with stdout pointed where a final flush cannot fail again.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
        return 141  # 128 + SIGPIPE, the status a shell gives a command a closed pipe stopped
    except OSError as e:
        # A file of the user's that the OS refused (a folder given as a file, no permission, a full
        # or read-only disk) where no reader or writer put it into words first. Others are bugs.
        if e.filename is None:
            raise
        print(f"error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return _stopped(isinstance(e, Terminated), getattr(args, "command", None))
    except Exception:
        if _stops:  # a stop that surfaced as another error (see _stops)
            return _stopped(signal.SIGTERM in _stops, getattr(args, "command", None))
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
