"""`splatfilm view`: previs in the browser (splatfilm.view)."""

from __future__ import annotations

import argparse
import time


def _cmd_view(args: argparse.Namespace) -> None:
    from splatfilm.view.app import Viewer
    from splatfilm.view.ports import check_port
    from splatfilm.view.session import open_session

    check_port(args.host, args.port)  # before the minutes a film may take to load
    print(f"reading {args.input} ...", flush=True)
    session = open_session(args.input, args.scene)
    for note in session.notes:  # said while the film is planned, as `render` says them
        print(f"warning: {note}", flush=True)
    check_port(args.host, args.port)
    viewer = Viewer(session, args.host, args.port, args.backend)
    print(f"splatfilm view: {viewer.url}  (open it in a browser; Ctrl-C stops the viewer)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()


def add_view_command(sub: argparse._SubParsersAction) -> None:
    """Register `view` with the CLI's subparsers."""
    p = sub.add_parser("view", help="previs in the browser: fly the world, scrub the film, key and save shots",
                       description="Serve a local web viewer (viser) of a film script, a Gaussian scene or a "
                                   "shot file: the world at a film time with every asset composed as `render` "
                                   "composes it, the capture cameras, every shot's path and camera, a timeline "
                                   "with the shots' cuts, look-through at each shot's lens, keyframing at the "
                                   "viewer's camera saved as a shot file or appended to the film, and splatfilm's "
                                   "own render of the frame beside the live view.")
    p.add_argument("input", help="FILM.yaml, SCENE.ply / .splat / .spz, or SHOT.yaml")
    p.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--scene", help="with a SHOT.yaml: the Gaussian scene to see it in")
    p.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto",
                   help="renderer for 'Render this frame' (default auto)")
    p.set_defaults(func=_cmd_view)
