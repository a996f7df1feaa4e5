"""`splatfilm clean`: remove the floaters of a fitted scene (Gaussians no capture view supports)."""

from __future__ import annotations

import argparse

from splatfilm.cli.args import Subparsers, add_backend, image_side, positive_int
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_TYPES, GAUSSIAN_READ_TYPES


def _cmd_clean(args: argparse.Namespace) -> None:
    from splatfilm.assets.cleanup import CleanupSettings, clean_asset

    settings = CleanupSettings(min_views=args.min_views, width=args.width,
                               **({} if args.min_peak is None else {"min_peak": args.min_peak}))
    info = clean_asset(args.scene, args.output, args.cameras, settings, args.backend)
    total = info["kept"] + info["removed"]
    print(f"wrote {args.output}: removed {info['removed']} of {total} Gaussians "
          f"({100 * info['removed'] / max(total, 1):.1f}%) that fewer than {args.min_views} of the "
          f"{info['views']} capture views show"
          + ("" if info["outside_hull"] is None else
             f" or that lie outside the object's outline in half the views that frame them ({info['outside_hull']})")
          + f", in {info['seconds']:.0f} s")


def add_clean_command(sub: Subparsers) -> None:
    """Register `clean` with the CLI's subparsers."""
    p = sub.add_parser("clean", help="remove floaters: Gaussians that fewer than 2 capture views show",
                       description="Render SCENE from its capture's cameras (those fit recorded beside it as "
                                   "SCENE.cameras.json, or --cameras) and remove the Gaussians that fewer than "
                                   "--min-views of them show (unseen ones, and ones only one photo shows): what "
                                   "floats in front of new views. An object fitted with masks or alpha also loses "
                                   "the Gaussians outside its outline (SCENE.masks.npz) in half the views. Writes OUTPUT and its sidecar (and, for a rigged "
                                   "SCENE, OUTPUT.rig.npz binding the Gaussians kept); SCENE is kept.")
    p.add_argument("scene", help=f"fitted Gaussian scene ({GAUSSIAN_READ_TYPES})")
    p.add_argument("-o", "--output", required=True, help=f"the clean copy ({GAUSSIAN_FILE_TYPES})")
    p.add_argument("--cameras", help="the capture's camera file (default: SCENE.cameras.json beside SCENE)")
    p.add_argument("--min-views", type=positive_int, default=2, help="views that must show a Gaussian (default 2)")
    p.add_argument("--min-peak", type=float,
                   help="a Gaussian's largest blend weight in a view (alpha x transmittance at its best pixel) that "
                        "counts as showing it there (default 1/255)")
    p.add_argument("--width", type=image_side, help="render the views this wide (default: the cameras' own size)")
    add_backend(p)
    p.set_defaults(func=_cmd_clean)
