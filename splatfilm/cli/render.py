"""`splatfilm render-cameras`: a Gaussian scene from every camera of a camera file; and `splatfilm render`: a
film script, every shot from one world, then the edit and the hand-off."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from splatfilm import report
from splatfilm.cli.args import (Subparsers, add_backend, add_cache_dir, add_refiner_prompt, frame_range, image_side,
                                non_negative_float, positive_int, rgb_triple, sh_degree)
from splatfilm.cli.handoff import add_handoff_options
from splatfilm.io.cache import cache_root_for
from splatfilm.io.gaussian_files import GAUSSIAN_READ_TYPES


def _add_render_options(p: argparse.ArgumentParser) -> None:
    add_backend(p)
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
        report.note(camera_path_world_note(args.cameras, written=False))


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
            png_bits=handoff.png_bits, exr=handoff.exr), log=print, then=finish)


def add_render_commands(sub: Subparsers) -> None:
    """Register `render-cameras` and `render` with the CLI's subparsers."""
    p = sub.add_parser("render-cameras", help="render a Gaussian scene from every camera of a camera file",
                       description=f"Render SCENE ({GAUSSIAN_READ_TYPES}) from every camera in CAMERAS (a nerfstudio "
                                   "transforms.json, a nerfstudio viewer camera_path.json, or a COLMAP model "
                                   "folder), in the camera file's own world frame, one PNG per camera.")
    p.add_argument("scene", help=f"Gaussian splat file ({GAUSSIAN_READ_TYPES}; .ply in the INRIA layout)")
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
    add_backend(p)
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
    add_refiner_prompt(p)
    p.add_argument("--frames-only", action="store_true",
                   help="write the frames and stop, as a render node does (no ffmpeg or usd-core needed); a later "
                        "run without it keeps the frames and makes the movies, cameras and edit")
    add_handoff_options(p)
    add_cache_dir(p, "OUTPUT")
    p.set_defaults(func=_cmd_render)
