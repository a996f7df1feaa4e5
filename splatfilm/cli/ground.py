"""`splatfilm ground`: find a scene's ground plane (and its scale to metres) for its sidecar .json."""

from __future__ import annotations

import argparse

from splatfilm.cli.args import Subparsers, positive_float
from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import GAUSSIAN_READ_TYPES


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


def add_ground_command(sub: Subparsers) -> None:
    """Register `ground` with the CLI's subparsers."""
    p = sub.add_parser("ground", help="find a scene's ground plane (and its scale to metres) for its sidecar .json",
                       description="Estimate SCENE's ground plane by RANSAC on its opaque Gaussians: the lowest large "
                                   "plane facing the capture's up (--up, else the sidecar's frame.up, else +z). Writes "
                                   "`ground: {normal, offset, inliers}` (n.x + offset = 0) into SCENE.json. Structure "
                                   "from motion has no scale: --camera-height or --known-distance measure one on the "
                                   "capture's cameras and record it as frame.scale_to_metres, so a film places the "
                                   "scene in metres and `mesh` writes metres.")
    p.add_argument("scene", help=f"Gaussian scene ({GAUSSIAN_READ_TYPES})")
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
