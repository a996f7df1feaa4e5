"""`splatfilm view`: previs in the browser (splatfilm.view)."""

from __future__ import annotations

import argparse
import time

from splatfilm import report
from splatfilm.cli.args import Subparsers, add_backend, non_negative_int
from splatfilm.io.gaussian_files import GAUSSIAN_READ_TYPES


def _cmd_view(args: argparse.Namespace) -> None:
    from splatfilm.assets.mesh_import import parse_axis
    from splatfilm.view.app import Viewer
    from splatfilm.view.ports import check_port
    from splatfilm.view.session import open_session

    # Both before the minutes a film may take to load.
    up = parse_axis(args.up, "--up") if args.up is not None else None
    check_port(args.host, args.port)
    # On stdout, though a status line: an input that does not read ends in its one error line alone on stderr.
    print(f"reading {args.input} ...", flush=True)
    session = open_session(args.input, args.scene)
    for note in session.notes:  # said while the film is planned, as `render` says them
        report.note(note)
    check_port(args.host, args.port)
    viewer = Viewer(session, args.host, args.port, args.backend, up=up,
                    max_splats=args.max_splats if args.max_splats > 0 else None)
    if viewer.note:
        report.note(viewer.note)
    print(f"splatfilm view: {viewer.url}  (open it in a browser; Ctrl-C stops the viewer)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        # Ctrl-C and SIGTERM end the viewer as they end every command: the CLI's 130 / 143.
        viewer.stop()
        if viewer.keys_unsaved():
            report.note(f"{len(viewer.keyed.keys)} key(s) of {viewer.keyed.name} had changes not saved with "
                        "'Save shot file' or 'Append to film'; they ended with the viewer")


# Gaussians sent to a browser at most unless --max-splats says: a browser sorts and draws all
# it holds on each camera move (measured: README, "Previs in the browser").
MAX_SPLATS_DEFAULT = 1_000_000


def add_view_command(sub: Subparsers) -> None:
    """Register `view` with the CLI's subparsers."""
    p = sub.add_parser("view", help="previs in the browser: fly the world, scrub the film, key and save shots",
                       description="Serve a local web viewer (viser) of a film script, a Gaussian scene or a "
                                   "shot file: the world at a film time with every asset composed as `render` "
                                   "composes it, the capture cameras, every shot's path and camera, a timeline "
                                   "with the shots' cuts, look-through at each shot's lens, keyframing at the "
                                   "viewer's camera saved as a shot file or appended to the film, and splatfilm's "
                                   "own render of the frame beside the live view.")
    p.add_argument("input", help=f"FILM.yaml, a Gaussian scene ({GAUSSIAN_READ_TYPES}), or SHOT.yaml")
    p.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--scene", help="with a SHOT.yaml: the Gaussian scene to see it in")
    add_backend(p, "renderer for 'Render this frame'")
    p.add_argument("--up", help="the world's up axis the browser orbits about: x, y, z, -x, -y, -z; a negative "
                                "one as --up=-y, as an INRIA/COLMAP scene needs (default: +z for a film; a "
                                "scene's own from its sidecar, else +z)")
    p.add_argument("--max-splats", type=non_negative_int, default=MAX_SPLATS_DEFAULT,
                   help="send the browser at most this many Gaussians, the most visible by opacity x footprint "
                        f"(default {MAX_SPLATS_DEFAULT:,}; 0: all); renders use all of them")
    p.set_defaults(func=_cmd_view)
