"""`splatfilm fit`: fit a persistent Gaussian asset (.ply + sidecar .json) to a capture."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatfilm import report
from splatfilm.cli.args import Subparsers, add_backend, non_negative_int, positive_float, positive_int, seed, sh_degree, video_frames
from splatfilm.fit.capture import SFM_CAMERA_MODEL
from splatfilm.fit.sfm import CAMERA_MODELS


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
        report.status(f"stopped at step {sidecar['interrupted_at']}; continue with --resume")
        return
    m = sidecar["metrics"]
    parts = [f"{sidecar['num_gaussians']} Gaussians", f"{sidecar['timing']['seconds']:.0f} s"]
    if "test" in m:
        parts.append(f"held-out PSNR {m['test']['psnr']:.2f} dB SSIM {m['test']['ssim']:.4f} ({m['test']['views']} views)")
    if "eval_data" in m:
        parts.append(f"eval-data PSNR {m['eval_data']['psnr']:.2f} dB SSIM {m['eval_data']['ssim']:.4f}")
    print(f"wrote {args.output} and {Path(args.output).with_suffix('.json')}: " + ", ".join(parts))


def add_fit_command(sub: Subparsers) -> None:
    """Register `fit` with the CLI's subparsers."""
    p = sub.add_parser("fit", help="fit a persistent Gaussian asset (.ply + sidecar .json) to a capture",
                       description="Fit 3D Gaussians to DATA: a nerfstudio dataset folder (transforms.json), a COLMAP "
                                   "folder (sparse/0 or colmap/sparse/0 + images/), a folder of bare images or a "
                                   "video (poses by structure-from-motion first). RGBA images make an object "
                                   "capture, and so do masks given with --masks (white = the object); a transforms.json "
                                   "mask_path leaves its black pixels out of the loss, as in nerfstudio.")
    p.add_argument("data", help="capture folder or video file")
    p.add_argument("-o", "--output", required=True, help="output .ply (sidecar .json, checkpoint and SfM work folder beside it)")
    add_backend(p, "the renderer it optimises through")
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
