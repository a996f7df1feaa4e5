"""`splatfilm rig`: bind a fitted capture to the skeleton of a rigged glTF."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatfilm.cli.args import Subparsers
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_TYPES


def _cmd_rig(args: argparse.Namespace) -> None:
    from splatfilm.assets.rig_binding import rig_capture
    from splatfilm.io.rig_files import joints_text

    sidecar = rig_capture(args.fitted, args.skeleton, args.output, same_frame=args.same_frame, icp=not args.no_icp,
                          max_distance=args.max_distance, smooth=args.smooth,
                          floater_distance=args.floater_distance)
    b = sidecar["rig"]["binding"]
    icp = b.get("icp")
    frame = "same frame" if args.same_frame else "through the canonical frames" + (
        f", ICP {1000 * icp['rms_before']:.1f} -> {1000 * icp['rms_after']:.1f} milli-units RMS" if icp else "")
    print(f"wrote {args.output} ({sidecar['num_gaussians']} Gaussians, {joints_text(sidecar['rig'])}, clips: "
          f"{', '.join(sidecar['rig']['clips']) or 'none'}), {Path(args.output).with_suffix('.rig.npz')} and "
          f"{Path(args.output).with_suffix('.json')}")
    print(f"binding: {frame}; median distance to the surface {b['median_distance']:.4g}, 95% within "
          f"{b['p95_distance']:.4g}; {b['far']} Gaussians ({100 * b['far_share_of_opaque']:.1f}% of the opaque) "
          f"beyond {b['max_distance']:.4g} follow the nearest bone ({b['floaters']} floaters beyond "
          f"{b['floater_distance']:.4g} the root node)")


def add_rig_command(sub: Subparsers) -> None:
    """Register `rig` with the CLI's subparsers."""
    p = sub.add_parser("rig", help="bind a fitted capture to the skeleton of a rigged glTF (weights from its surface)",
                       description="Give FITTED's Gaussians the skin weights of RIGGED's surface where they sit "
                                   "(smoothed over the surface; Gaussians far from it follow the nearest bone) and "
                                   "write HERO (the Gaussians unchanged), HERO.json and HERO.rig.npz, so `splatfilm "
                                   "pose` and film scripts can play RIGGED's clips on the capture. The skeleton is "
                                   "placed through both assets' canonical frames and refined by ICP, or taken as is "
                                   "with --same-frame.")
    p.add_argument("fitted", help=f"fitted capture ({GAUSSIAN_FILE_TYPES}; its sidecar .json gives its canonical "
                                   "frame)")
    p.add_argument("--skeleton", required=True, metavar="RIGGED", help="skinned glTF (.glb or .gltf) of the figure")
    p.add_argument("-o", "--output", required=True, help=f"the bound asset ({GAUSSIAN_FILE_TYPES}); .json and .rig.npz "
                                                         "beside it")
    p.add_argument("--same-frame", action="store_true",
                   help="the skeleton's glTF scene frame is already the capture's frame (no canonical mapping, no ICP)")
    p.add_argument("--no-icp", action="store_true", help="keep the canonical-frame placement without refining it")
    p.add_argument("--max-distance", type=float, metavar="D",
                   help="Gaussians farther than D (asset units) from the surface follow the nearest bone "
                        "(default 5%% of the surface's bounding-box diagonal)")
    p.add_argument("--floater-distance", type=float, metavar="F",
                   help="Gaussians farther than F from the surface are the capture's floaters and follow the "
                        "skeleton's root node, not a limb (default 4 x the max distance)")
    p.add_argument("--smooth", type=float, metavar="R",
                   help="width of the weight smoothing over nearby surface points, asset units (default 1%% of the "
                        "diagonal)")
    p.set_defaults(func=_cmd_rig)
