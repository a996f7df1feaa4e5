"""`splatfilm sfm`: camera poses for a folder of images (or a video) by checked structure-from-motion."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from splatfilm.cli.args import Subparsers, positive_float, positive_int, seed, video_frames
from splatfilm.errors import SplatfilmError


def _threads(text: str) -> int:
    """CPU threads: -1 (all, as the memory allows) or a positive count."""
    if text.strip() == "-1":
        return -1
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected -1 (all) or a positive number of threads, got {text!r}") from None


def _min_kept(text: str) -> float:
    """Fewest images that must keep a pose: a fraction in (0, 1] or a whole count of at least
    3 (structure from motion needs three views; run_sfm's floor)."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (0 < v <= 1 or (v >= 3 and v.is_integer() and math.isfinite(v))):
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1] or a whole count of at least 3 images, "
                                         f"got {text!r}")
    return int(v) if v > 1 else v


def _cmd_sfm(args: argparse.Namespace) -> None:
    from splatfilm.fit.capture import VIDEO_SUFFIXES
    from splatfilm.fit.pose_check import PoseLimits
    from splatfilm.fit.sfm import read_sfm_summary, run_sfm
    from splatfilm.io.capture_video import frames_from_video
    from splatfilm.io.photos import photo_folder
    from splatfilm.io.atomic import check_output_folder

    source, out = Path(args.images), check_output_folder(args.output)
    if not source.exists():
        raise SplatfilmError(f"{source}: no such folder or video")
    ordered = False
    if source.is_file():
        if source.suffix.lower() not in VIDEO_SUFFIXES:
            raise SplatfilmError(f"{source}: expected a folder of images or a video "
                                 f"({', '.join(sorted(VIDEO_SUFFIXES))})")
        source, ordered = out / "frames", True
        frames_from_video(args.images, source, args.video_frames)
    else:
        source = photo_folder(source)  # a capture folder: its images/ subfolder
    limits = PoseLimits(max_reproj_px=args.max_reproj)
    model = run_sfm(source, out, matcher=args.matcher, mapper=args.mapper, camera_model=args.camera_model,
                    focal_px=args.focal, min_registered=args.min_kept, seed=args.seed, ordered=ordered or args.ordered,
                    limits=limits, verbose=args.verbose, num_threads=args.threads)
    summary = read_sfm_summary(out)
    kept = (f"{summary.kept} of {summary.images} images kept, {summary.points} points, {summary.mapper} mapping"
            if summary else "done")
    print(f"wrote {model} (COLMAP model: cameras.bin, images.bin, points3D.bin) and {out / 'poses.tsv'}: {kept}")


def add_sfm_command(sub: Subparsers) -> None:
    """Register `sfm` with the CLI's subparsers."""
    from splatfilm.fit.pose_check import MAX_MEAN_REPROJ_PX
    from splatfilm.fit.sfm import CAMERA_MODELS, MAPPERS, MATCHERS

    p = sub.add_parser("sfm", help="camera poses for a folder of images or a video (COLMAP SfM, every pose checked)",
                       description="Estimate the cameras of IMAGES (a folder of images, or a video) with "
                                   "COLMAP's structure-from-motion on the CPU, then check every registered pose "
                                   "(reprojection error, observed points, relative rotations against its matched "
                                   "neighbours') and drop the ones that fail. Images of one size and lens (EXIF) "
                                   "share a camera. Writes a COLMAP project to MODEL: database.db, "
                                   "sparse/0/{cameras,images,points3D}.bin and poses.tsv (per image: kept or "
                                   "dropped, and why); a run that fails leaves the model that was there (its verdicts in "
                                   "poses.failed.tsv). A rerun with the same images reuses the model; one after an "
                                   "interruption goes on where extraction, matching or incremental mapping stopped, and "
                                   "does not map again what it mapped.")
    p.add_argument("images", help="folder of images (or a capture folder with images/), or a video file")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="output folder (a COLMAP project)")
    p.add_argument("--matcher", choices=MATCHERS, default="auto",
                   help="exhaustive (every pair), sequential (neighbours in name order, with loop detection), "
                        "auto: sequential for video, else exhaustive up to 120 images (default)")
    p.add_argument("--mapper", choices=MAPPERS, default="auto",
                   help="incremental (COLMAP), global (GLOMAP: rotation averaging, global positioning), "
                        "auto: incremental, and global too when incremental leaves images out (default)")
    p.add_argument("--camera-model", choices=CAMERA_MODELS, default="SIMPLE_PINHOLE",
                   help="COLMAP camera model, one camera for each image size and lens (default "
                        "SIMPLE_PINHOLE; OPENCV for lens distortion)")
    p.add_argument("--focal", type=positive_float, metavar="PX", help="starting focal length in pixels, for "
                                                                        "every camera (default 1.2 x the longer side)")
    p.add_argument("--max-reproj", type=positive_float, default=MAX_MEAN_REPROJ_PX, metavar="PX",
                   help=f"drop images whose mean reprojection error is over PX (default {MAX_MEAN_REPROJ_PX:g})")
    p.add_argument("--min-kept", type=_min_kept, default=0.5, metavar="N",
                   help="fewest images that must keep a pose: a fraction (<= 1) or a whole count of at least 3 "
                        "(default 0.5)")
    p.add_argument("--ordered", action="store_true", help="the images are video frames in name order")
    p.add_argument("--video-frames", type=video_frames, default=60, metavar="N", help="frames taken from a video (default 60)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--threads", type=_threads, default=-1, metavar="N",
                   help="CPU threads for features and matching (default -1: all, and for SIFT extraction "
                        "as many as the free memory holds, about 2.3 GB a thread for 12 MP photos); 1 repeats "
                        "the model byte for byte (on more, COLMAP's matcher now and then does not)")
    p.add_argument("--verbose", action="store_true", help="show COLMAP's own log")
    p.set_defaults(func=_cmd_sfm)
