"""`splatfilm demo`: render the bundled demo film (scenes/set/film.yaml)."""

from __future__ import annotations

import argparse
from pathlib import Path

from splatfilm.cli.args import Subparsers, add_backend, add_cache_dir, positive_int
from splatfilm.errors import SplatfilmError
from splatfilm.io.cache import cache_root_for

SCENES_DIR = Path(__file__).resolve().parents[2] / "scenes"
DEMO_FILM = SCENES_DIR / "set" / "film.yaml"


def _cmd_demo(args: argparse.Namespace) -> None:
    from splatfilm.film import RenderOptions, render_film
    from splatfilm.handoff.editorial import write_editorial

    if not DEMO_FILM.exists():
        raise SplatfilmError(f"{DEMO_FILM}: the bundled demo film is missing from this checkout")

    def finish(res) -> None:
        # The edit is the hand-off's, written while the render still holds the folder (as `render` does).
        edit = write_editorial(res.film, res.out_dir)
        print(f"demo film: {res.film_mp4} ({sum(res.rendered.values())} frames rendered, "
              f"{sum(res.kept.values())} kept, {res.seconds:.0f} s); timeline {edit and edit[0]}, "
              f"contact sheet {res.contact_sheet}")

    with cache_root_for(args.cache_dir, Path(args.output) / ".splatfilm-cache"):  # an installed demo is read-only
        render_film(DEMO_FILM, args.output, RenderOptions(backend=args.backend, workers=args.workers, provenance=True),
                    then=finish)


def add_demo_command(sub: Subparsers) -> None:
    """Register `demo` with the CLI's subparsers."""
    p = sub.add_parser("demo", help="render the bundled demo film (scenes/set/film.yaml)",
                       description="Render the bundled demo film: three shots of one world (the fitted film set, a "
                                   "captured explorer bound to a skeleton, walking, a crate under physics, an edit), "
                                   "edited into "
                                   "an MP4 with its OpenTimelineIO timeline.")
    p.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    add_backend(p)
    p.add_argument("--workers", type=positive_int, default=1, help="local processes rendering frames")
    add_cache_dir(p, "OUTPUT")
    p.set_defaults(func=_cmd_demo)
