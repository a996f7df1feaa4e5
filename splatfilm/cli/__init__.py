"""The `splatfilm` command line: `main`, its error handling and the registration of every command; each
command's parser and handler live in a module of cli/, most named for the command (cli/fit.py, cli/ground.py,
...); `render-cameras` is in cli/render.py, `path` in cli/shots.py, `import` and `export-usd` in cli/exchange.py,
`provenance` in cli/handoff.py."""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading

from splatfilm import report
from splatfilm.errors import SplatfilmError


def build_parser() -> argparse.ArgumentParser:
    """The `splatfilm` parser with every subcommand; each sets `func`, which `main` calls with the args."""
    parser = argparse.ArgumentParser(prog="splatfilm", description="Films from persistent 3D Gaussian scenes.")
    sub = parser.add_subparsers(dest="command", required=True)

    from splatfilm.cli.clean import add_clean_command
    from splatfilm.cli.demo import add_demo_command
    from splatfilm.cli.edit import add_edit_command
    from splatfilm.cli.exchange import add_exchange_commands
    from splatfilm.cli.fit import add_fit_command
    from splatfilm.cli.ground import add_ground_command
    from splatfilm.cli.handoff import add_provenance_command
    from splatfilm.cli.import_mesh import add_import_mesh_command
    from splatfilm.cli.mesh import add_mesh_command
    from splatfilm.cli.pose import add_pose_command
    from splatfilm.cli.refine import add_refine_command
    from splatfilm.cli.render import add_render_commands
    from splatfilm.cli.rig import add_rig_command
    from splatfilm.cli.sfm import add_sfm_command
    from splatfilm.cli.shots import add_path_commands
    from splatfilm.cli.view import add_view_command

    add_render_commands(sub)
    add_fit_command(sub)
    add_path_commands(sub)
    add_import_mesh_command(sub)
    add_rig_command(sub)
    add_pose_command(sub)
    add_sfm_command(sub)
    add_edit_command(sub)
    add_clean_command(sub)
    add_ground_command(sub)
    add_mesh_command(sub)
    add_refine_command(sub)
    add_provenance_command(sub)
    add_exchange_commands(sub)
    add_view_command(sub)
    add_demo_command(sub)
    return parser


# Module -> the package that installs it, for the dependencies imported where they are used:
# the render and fit path runs with torch, numpy, numba, gsplat and the light ones alone.
OPTIONAL_PACKAGES = {
    "open3d": "open3d-cpu", "pybullet": "pybullet", "pycolmap": "pycolmap", "pxr": "usd-core", "OpenEXR": "OpenEXR",
    "ray": "'splatfilm[ray]'", "diffusers": "'splatfilm[diffusion]'", "transformers": "'splatfilm[diffusion]'",
    "viser": "viser", "c2pa": "'splatfilm[c2pa]'", "imageio_ffmpeg": "imageio-ffmpeg",
    "opentimelineio": "opentimelineio", "otio_cmx3600_adapter": "otio-cmx3600-adapter", "trimesh": "trimesh",
    "pygltflib": "pygltflib", "splines": "splines", "gsplat": "gsplat", "scipy": "scipy", "cv2": "opencv-python-headless",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a job scheduler, `timeout`), handled as Ctrl-C is: finished work kept,
    a fit's checkpoint written."""


# The stop signals received during this run. A signal's exception raised while a C extension
# converts its arguments (pybind11) comes back as that call's TypeError: what was asked for
# was still a stop, and it ends as one.
_stops: list[int] = []


def _stop(signum, frame) -> None:
    _stops.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


# The commands that keep finished work and pick up from it when run again (with what to add).
_RESUMING = {"render": "", "demo": "", "sfm": "", "refine": "", "fit": " with --resume"}


def _stopped(terminated: bool, command: str | None) -> int:
    how = "terminated" if terminated else "interrupted"
    if command in _RESUMING:
        how += f": finished work is kept; run the same command again{_RESUMING[command]} to continue"
    report.status(how)
    return 143 if terminated else 130


def main(argv: list[str] | None = None) -> int:
    """Run the command in `argv` (default sys.argv[1:]); returns the exit status: 0 done, 2 a
    SplatfilmError, a missing optional package or a file the OS refused (printed as one
    `error:` line), 130 / 143 interrupted / terminated (SIGINT / SIGTERM), 141 a closed pipe.
    argparse exits 2 itself on bad arguments."""
    # A path whose bytes are not UTF-8 (held as surrogate escapes) is printed escaped, as
    # Python's own stderr prints it: under a UTF-8 locale other than C.UTF-8 stdout is strict,
    # and the closing "wrote ..." line would end a finished job with a traceback.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    on_main_thread = threading.current_thread() is threading.main_thread()
    _stops.clear()
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)} if on_main_thread else {}
    try:
        return _run(args)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run(args: argparse.Namespace) -> int:
    try:
        args.func(args)
    except SplatfilmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        # An optional dependency missing where it is first used (a slim install, a render node).
        package = OPTIONAL_PACKAGES.get((e.name or "").split(".")[0])
        if package is None:
            raise
        print(f"error: this needs the Python package {package}, which is not installed here: pip install {package}",
              file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of our output went away (`splatfilm pose X --joints | head`): stop quietly,
        # as `git log | head` does, with stdout pointed where a final flush cannot fail again.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
        return 141  # 128 + SIGPIPE, the status a shell gives a command a closed pipe stopped
    except OSError as e:
        # A file of the user's that the OS refused (a folder given as a file, no permission, a full
        # or read-only disk) where no reader or writer put it into words first. Others are bugs.
        if e.filename is None:
            raise
        print(f"error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return _stopped(isinstance(e, Terminated), getattr(args, "command", None))
    except Exception:
        if _stops:  # a stop that surfaced as another error (see _stops)
            return _stopped(signal.SIGTERM in _stops, getattr(args, "command", None))
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
