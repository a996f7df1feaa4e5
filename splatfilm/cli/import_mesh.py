"""`splatfilm import-mesh`: turn a mesh (glTF/GLB, OBJ, PLY, STL) into a Gaussian asset."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatfilm import report
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_TYPES
from splatfilm.cli.args import Subparsers, positive_int, seed, sh_degree


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
            report.note(note)
    for warning in sidecar["import"].get("warnings", []):
        report.note(f"{args.mesh}: {warning}")


def add_import_mesh_command(sub: Subparsers) -> None:
    """Register `import-mesh` with the CLI's subparsers."""
    p = sub.add_parser("import-mesh", help="turn a mesh (glTF/GLB, OBJ, PLY, STL) into a Gaussian asset",
                       description="Cover MESH's surface with flat Gaussians coloured from its texture, vertex "
                                   "colours or material. The asset keeps the mesh's frame; its sidecar .json "
                                   "gives the canonical frame (base on z = 0, up +z, front -y).")
    p.add_argument("mesh", help="mesh file: .glb, .gltf, .obj, .ply or .stl")
    p.add_argument("-o", "--output", required=True, help=f"output ({GAUSSIAN_FILE_TYPES}); sidecar .json beside it")
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
