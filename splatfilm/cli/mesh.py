"""`splatfilm mesh`: a triangle mesh of a scene (.glb/.ply/.obj) by depth fusion."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatfilm.cli.args import Subparsers, add_backend, add_cache_dir, image_side, non_negative_int, positive_int
from splatfilm.io.cache import cache_root_for
from splatfilm.io.gaussian_files import GAUSSIAN_READ_TYPES


def _cmd_mesh(args: argparse.Namespace) -> None:
    from splatfilm.assets.meshing import MeshSettings, export_scene_mesh

    settings = MeshSettings(voxel=args.voxel, views=args.views, width=args.width, height=args.height,
                            min_alpha=args.min_alpha, trunc_voxels=args.trunc, min_component=args.min_component,
                            backend=args.backend)
    with cache_root_for(args.cache_dir, Path(args.output).parent / ".splatfilm-cache"):
        info = export_scene_mesh(args.scene, args.output, args.cameras, settings)
    print(f"wrote {args.output}: {info['vertices']} vertices, {info['triangles']} triangles "
          f"(voxel {info['voxel']:.4g}, {info['views']} views {info['cameras']}, {info['seconds']:.0f} s)")


def add_mesh_command(sub: Subparsers) -> None:
    """Register `mesh` with the CLI's subparsers."""
    p = sub.add_parser("mesh", help="a triangle mesh of a scene (.glb/.ply/.obj) by depth fusion",
                       description="Render depth and colour of SCENE from many views (CAMERAS, else the capture's "
                                   "cameras recorded beside it, else an orbit above "
                                   "it), fuse them into a TSDF and extract a vertex-coloured mesh. A .ply is in "
                                   "the scene's frame and units; a .glb or .obj is turned so that the scene's up "
                                   "(its ground's normal, else its capture's up) is +y and scaled to metres where "
                                   "the sidecar knows the scale. Pixels less opaque than --min-alpha are left out.")
    p.add_argument("scene", help=f"Gaussian scene ({GAUSSIAN_READ_TYPES})")
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
    add_backend(p, "renderer of the depth views")
    add_cache_dir(p, "OUTPUT's folder")
    p.set_defaults(func=_cmd_mesh)
