"""The `splatfilm` command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import SplatfilmError

SCENES_DIR = Path(__file__).resolve().parent.parent / "scenes"
DEMO_FILM = SCENES_DIR / "demo" / "film.yaml"


def _rgb(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected R,G,B with values in [0,1], e.g. 1,1,1; got {text!r}")
    return values  # type: ignore[return-value]


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _add_render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto",
                   help="gsplat (CUDA), cpu (ours), auto: gsplat when CUDA is available (default)")
    p.add_argument("--width", type=_positive_int, help="output width in pixels (default: the camera's)")
    p.add_argument("--height", type=_positive_int, help="output height in pixels (default: the camera's)")
    p.add_argument("--sh-degree", type=int, help="SH bands to use (default: all the scene stores)")
    bg = p.add_mutually_exclusive_group()
    bg.add_argument("--background", type=_rgb, default=(0.0, 0.0, 0.0), help="R,G,B in [0,1] (default 0,0,0)")
    bg.add_argument("--transparent", action="store_true", help="write RGBA PNGs with the rendered alpha")
    p.add_argument("--depth", action="store_true", help="also write expected depth (camera z) beside each PNG")
    p.add_argument("--depth-format", choices=["exr", "npy"], default="exr", help="32-bit float EXR (default) or .npy")
    p.add_argument("--antialiased", action="store_true", help="gsplat's 'antialiased' mode instead of 'classic'")


def _settings(args: argparse.Namespace):
    from .render_cameras import RenderSettings

    return RenderSettings(
        backend=args.backend, width=args.width, height=args.height, sh_degree=args.sh_degree,
        background=args.background, transparent=args.transparent,
        depth=args.depth_format if args.depth else None,
        rasterize_mode="antialiased" if args.antialiased else "classic",
    )


def _cmd_render_cameras(args: argparse.Namespace) -> None:
    from .render_cameras import render_cameras

    t0 = time.perf_counter()
    paths = render_cameras(args.scene, args.cameras, args.output, _settings(args),
                           dataparser_transforms=args.dataparser_transforms, transforms_json=args.transforms_json)
    print(f"wrote {len(paths)} frame(s) to {args.output} in {time.perf_counter() - t0:.1f} s")


def _cmd_demo(args: argparse.Namespace) -> None:
    from .film import render_film

    if not DEMO_FILM.exists():
        raise SplatfilmError(f"{DEMO_FILM}: the bundled demo film is missing from this checkout")
    res = render_film(DEMO_FILM, args.output, backend=args.backend, workers=args.workers)
    print(f"demo film: {res.film_mp4} ({sum(res.rendered.values())} frames rendered, "
          f"{sum(res.kept.values())} kept, {res.seconds:.0f} s); timeline {res.otio}, contact sheet {res.contact_sheet}")


def _cmd_fit(args: argparse.Namespace) -> None:
    from .fit import FitConfig, run_fit

    cfg = FitConfig(steps=args.steps, backend=args.backend, sh_degree=args.sh_degree, strategy=args.strategy,
                    max_gaussians=args.max_gaussians, seed=args.seed, test_every=args.test_every,
                    eval_every=args.eval_every, checkpoint_every=args.checkpoint_every)
    sidecar = run_fit(args.data, args.output, cfg, resume=args.resume, downscale=args.downscale,
                      max_size=args.max_size, eval_data=args.eval_data)
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
    from .film import render_film

    shots = [s for s in args.shots.split(",") if s] if args.shots else None
    res = render_film(args.film, args.output, backend=args.backend, shots=shots, workers=args.workers,
                      ray_address=args.ray, depth=args.depth, alpha=args.alpha)
    total = sum(res.rendered.values())
    print(f"rendered {total} frame(s), kept {sum(res.kept.values())} in {res.seconds:.1f} s -> {args.output}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="splatfilm", description="Films from persistent 3D Gaussian scenes.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("render-cameras", help="render a .ply/.splat from every camera of a camera file",
                       description="Render SCENE (.ply or .splat) from every camera in CAMERAS (a nerfstudio "
                                   "transforms.json, a nerfstudio viewer camera_path.json, or a COLMAP model "
                                   "folder), in the camera file's own world frame, one PNG per camera.")
    p.add_argument("scene", help="Gaussian splat file (.ply INRIA layout, or .splat)")
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
                                   "OpenTimelineIO timeline (.otio, .edl), USD cameras and a contact sheet. "
                                   "Frames whose inputs did not change since the last run are kept.")
    p.add_argument("film", help="film script (YAML)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto")
    p.add_argument("--shots", help="comma-separated shot names to render (default: all)")
    p.add_argument("--workers", type=_positive_int, default=1, help="local processes rendering frames (default 1)")
    p.add_argument("--ray", metavar="ADDRESS", help="render on a Ray cluster ('local' starts one here)")
    p.add_argument("--depth", action="store_true", help="also write depth as EXR beside each frame")
    p.add_argument("--alpha", action="store_true", help="also write alpha as EXR beside each frame")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("fit", help="fit a persistent Gaussian asset (.ply + sidecar .json) to a capture",
                       description="Fit 3D Gaussians to DATA: a nerfstudio dataset folder (transforms.json), a COLMAP "
                                   "folder (sparse/0 + images/), a folder of bare images or a video (poses by "
                                   "structure-from-motion first). RGBA images or masks make an object capture.")
    p.add_argument("data", help="capture folder or video file")
    p.add_argument("-o", "--output", required=True, help="output .ply (sidecar .json, checkpoint and SfM work folder beside it)")
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto")
    p.add_argument("--steps", type=_positive_int, help="optimisation steps (default 30000 on gsplat, 3000 on cpu)")
    p.add_argument("--sh-degree", type=int, default=3, help="highest SH degree, raised every 1000 steps (default 3)")
    p.add_argument("--strategy", choices=["default", "mcmc"], default="default",
                   help="densification: gsplat's DefaultStrategy, or MCMCStrategy (CUDA only)")
    p.add_argument("--max-gaussians", type=_positive_int, help="cap on the number of Gaussians")
    p.add_argument("--downscale", type=float, help="divide image sizes by this factor")
    p.add_argument("--max-size", type=_positive_int, help="cap on the longer image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-every", type=int, default=8, help="hold out every Nth image for evaluation (0: none)")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate held-out views every N steps (0: only at the end)")
    p.add_argument("--eval-data", help="another capture (e.g. a held-out camera path with images) to evaluate at the end")
    p.add_argument("--checkpoint-every", type=int, default=500, help="write a checkpoint every N steps (0: never)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT's checkpoint")
    p.set_defaults(func=_cmd_fit)

    from .paths.cli import add_path_commands

    add_path_commands(sub)

    p = sub.add_parser("demo", help="render the bundled demo film (scenes/demo/film.yaml)",
                       description="Render the bundled demo film: three shots of one world (a set and a character), "
                                   "edited into an MP4 with its OpenTimelineIO timeline.")
    p.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto")
    p.add_argument("--workers", type=_positive_int, default=1, help="local processes rendering frames")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SplatfilmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again (fit: with --resume) to continue",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
