"""`splatfilm edit`: bake a list of edits (delete, keep, recolour, opacity) into a copy of an asset."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatfilm.cli.args import Subparsers
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_TYPES, GAUSSIAN_READ_TYPES


def _cmd_edit(args: argparse.Namespace) -> None:
    from splatfilm.assets.edits import bake_edits

    sidecar = bake_edits(args.input, args.edits, args.output)
    print(f"wrote {args.output} ({sidecar['num_gaussians']} Gaussians) and {Path(args.output).with_suffix('.json')}")


def add_edit_command(sub: Subparsers) -> None:
    """Register `edit` with the CLI's subparsers."""
    p = sub.add_parser("edit", help="bake a list of edits (delete, keep, recolour, opacity) into a copy of an asset",
                       description="Apply the edits in EDITS.yaml (asset frame) to IN and write OUT with a sidecar "
                                   "noting them; IN's rig (IN.rig.npz, for the Gaussians kept) and capture cameras "
                                   "(IN.cameras.json) come along. IN is left as it is; film scripts can apply the "
                                   "same edits without a copy.")
    p.add_argument("input", help=f"Gaussian asset ({GAUSSIAN_READ_TYPES})")
    p.add_argument("edits", help="YAML: a list of edits, or a mapping with `edits:`")
    p.add_argument("-o", "--output", required=True,
                   help=f"the edited copy ({GAUSSIAN_FILE_TYPES}); its sidecar .json, and the input's rig and "
                        "capture cameras if it has them, beside it")
    p.set_defaults(func=_cmd_edit)
