"""`splatfilm export-usd` (a film's world as one USD stage) and `splatfilm import` (Gaussians from
any splat file splatfilm reads: a USD splat prim, SPZ, SOG, `.splat` or PLY, into an asset file)."""

from __future__ import annotations

import argparse

from splatfilm.cli.args import Subparsers, sh_degree
from splatfilm.io.spz import SPZ_AXES, SPZ_DEFAULT_AXES


def _cmd_export_usd(args: argparse.Namespace) -> None:
    from splatfilm.film.script import parse_film
    from splatfilm.handoff.usd_world import check_usd_world_output, export_usd_world

    check_usd_world_output(args.output)
    summary = export_usd_world(parse_film(args.film), args.output)
    print(f"wrote {summary.path}: {summary.assets} asset(s), {summary.cameras} camera(s), time codes "
          f"{summary.start:g}-{summary.end:g} ({summary.samples} frames); open it with `usdview {summary.path}`")


def _cmd_import(args: argparse.Namespace) -> None:
    from splatfilm.io.asset_files import sidecar_path
    from splatfilm.assets.splat_import import import_splats

    g, _ = import_splats(args.source, args.output, args.prim, args.frame, args.world, args.spz_axes,
                         args.dataparser_transforms, args.transforms_json, args.sh_degree)
    print(f"wrote {args.output} ({len(g)} Gaussians, SH degree {g.sh_degree}) and {sidecar_path(args.output)}")


def add_exchange_commands(sub: Subparsers) -> None:
    """Register `export-usd` and `import` with the CLI's subparsers."""
    p = sub.add_parser("export-usd", help="write a film's world as a USD stage (splats, ground, animated cameras)",
                       description="Write FILM's world as one OpenUSD stage for layout in a DCC: each asset a "
                                   "UsdVol ParticleField3DGaussianSplat in its own frame under an Xform with its "
                                   "film transform (time-sampled where it moves; characters posed per frame), "
                                   "the ground plane as a guide mesh, and every shot's camera animated with its "
                                   "lens; Z up, metres, time code = first frame + world seconds x fps.")
    p.add_argument("film", help="film script (FILM.yaml)")
    p.add_argument("-o", "--output", required=True, help="the stage: .usda (text), .usdc or .usd (binary)")
    p.set_defaults(func=_cmd_export_usd)

    p = sub.add_parser("import", help="Gaussians from a USD splat prim, .spz, .sog, .ksplat, .splat or .ply into an "
                                      "asset file",
                       description="Read SOURCE's Gaussians (a USD file's ParticleField3DGaussianSplat prim, an "
                                   "SPZ file (versions 2, 3, 4), a PlayCanvas .sog, a GaussianSplats3D .ksplat, an "
                                   "antimatter15 .splat or a PLY) and write them as "
                                   "OUTPUT (.ply, .splat, .spz, .sog or .usda/.usdc/.usd, by its extension) with a "
                                   "sidecar OUTPUT.json recording the source.")
    p.add_argument("source", help="the file to read")
    p.add_argument("-o", "--output", required=True,
                   help="the asset to write (.ply, .splat, .spz, .sog, .usda, .usdc, .usd)")
    p.add_argument("--sh-degree", type=sh_degree, metavar="DEGREE",
                   help="SH degree to write, 0-4 (default: the source's; a .splat holds 0, a .sog or "
                        ".compressed.ply 3): bands above are dropped, missing ones zero")
    p.add_argument("--prim", metavar="PATH", help="USD: the splat prim to read (default: the file's only one)")
    p.add_argument("--frame", type=float, metavar="TIME_CODE",
                   help="USD: the time code to read a moving prim at (default: its first sample)")
    p.add_argument("--world", action="store_true",
                   help="USD: place the Gaussians by the prim's transform, Z up in metres (default: the prim's "
                        "own frame, as stored)")
    p.add_argument("--spz-axes", choices=SPZ_AXES, default=SPZ_DEFAULT_AXES,
                   help="SPZ source or output: ply (default) keeps the axes as stored, as splat-transform 3.x "
                        "(SuperSplat) and Niantic's library without options do; rub turns between RUB and the "
                        "PLY's (y and z negated) for a file stored in RUB (splat-transform 2.x, Scaniverse, "
                        "converters run with --from-coord RDF --to-coord RUB; splatfilm's own of 2026-11-30 "
                        "before ply became the default again), which otherwise comes in upside down")
    p.add_argument("--dataparser-transforms", metavar="FILE",
                   help="a nerfstudio run's dataparser_transforms.json: the splat (as `ns-export gaussian-splat` "
                        "writes it, in the run's normalised world) is moved back into the capture's world, where "
                        "its transforms.json cameras are")
    p.add_argument("--transforms-json", metavar="FILE",
                   help="with --dataparser-transforms: the transforms.json the run trained on, so the splat lands "
                        "in its world (without it: the world before its applied_transform, COLMAP's)")
    p.set_defaults(func=_cmd_import)
