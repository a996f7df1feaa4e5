"""`splatfilm path ...`: export a shot's camera path, preview it over a scene.

    splatfilm path export SHOT.yaml -o OUT
    splatfilm path export FILM.yaml [--shot NAME] -o OUT
        OUT's name picks the format: *.usda / *.usd / *.usdc an animated USD camera,
        transforms.json nerfstudio dataset cameras (one per frame), any other *.json the
        nerfstudio viewer's camera_path.json (what `ns-render camera-path` renders; its
        `keyframes` play the same move in nerfstudio's viewer); a film's shot as `render`
        renders it (handles, the film's lens, asset targets where they stand), its USD
        camera as `render` writes cameras/SHOT.usda
        [--dataparser-transforms FILE [--transforms-json FILE]]  camera_path.json in a
        nerfstudio run's normalised world (without them, a note on stderr says so)
    splatfilm path preview SHOT.yaml SCENE.ply -o preview.png
    splatfilm path preview FILM.yaml [--shot NAME] -o preview.png
        top and front views of the path over the scene's Gaussians (a film's: the whole world
        as it stands when the shot's cut starts), with key frusta; a film's warnings are
        printed as `render` prints them
        [--contact-sheet SHEET.png [--every N] [--thumb-width W] [--backend auto|cpu|gsplat]]

`add_path_commands(subparsers)` registers them on the main parser's subparsers; each sets
`func(args)`, which raises SplatfilmError for bad input (the main CLI prints `error: ...`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from splatfilm import report
from splatfilm.cli.args import Subparsers, add_backend, image_side, positive_int
from splatfilm.io.gaussian_files import GAUSSIAN_READ_TYPES


def _cmd_export(args: argparse.Namespace) -> None:
    from splatfilm.errors import SplatfilmError
    from splatfilm.film.script import is_film_script
    from splatfilm.io.camera_files import camera_path_world_note
    from splatfilm.shots.interchange import export_format, export_shot
    from splatfilm.shots.shot_yaml import load_shot

    lens_effects = {}
    usd = export_format(args.output) == "usd"  # a wrong OUT is told before a film's slow work
    if is_film_script(args.shot):
        from splatfilm.film import parse_film
        from splatfilm.film.script import find_shot

        film = parse_film(args.shot, [args.shot_name])
        shot = find_shot(film.shots, args.shot_name, film.path).shot
        if usd:  # the camera file `render` writes
            lens_effects = {"depth_of_field": film.depth_of_field,
                            "shutter_deg": film.motion_blur["shutter_deg"] if film.motion_blur else None}
    else:
        if args.shot_name is not None:
            raise SplatfilmError(f"{args.shot}: --shot picks a shot of a film script; a shot file is one shot")
        shot = load_shot(args.shot)
    kind = export_shot(shot, args.output, dataparser_transforms=args.dataparser_transforms,
                       transforms_json=args.transforms_json, **lens_effects)
    what = {"usd": "USD camera", "transforms": "transforms.json", "camera_path": "nerfstudio camera path"}[kind]
    print(f"wrote {shot.name} ({shot.frame_count} frames {shot.first_frame}-{shot.last_frame} at {shot.fps} fps) "
          f"as a {what} to {args.output}")
    if kind == "camera_path" and args.dataparser_transforms is None:
        report.note(camera_path_world_note(args.output, written=True))


def _cmd_preview(args: argparse.Namespace) -> None:
    from splatfilm.errors import SplatfilmError
    from splatfilm.shots.preview import check_png_output

    if args.contact_sheet is None and (args.every is not None or args.thumb_width is not None):
        raise SplatfilmError("--every and --thumb-width go with --contact-sheet")
    for out in (args.output, args.contact_sheet):
        if out is not None:
            check_png_output(out)
    t0 = time.perf_counter()
    from splatfilm.film.script import is_film_script

    if is_film_script(args.shot):
        from splatfilm.film import parse_film
        from splatfilm.film.previs import draw_film_path_preview, render_film_contact_sheet
        from splatfilm.film.checks import film_notes
        from splatfilm.film.script import find_shot

        if args.scene is not None:
            raise SplatfilmError(f"{args.scene}: a film script brings its own world; give no SCENE with it")
        film = parse_film(args.shot, [args.shot_name])  # a wrong or missing --shot is told before the slow work
        fs = find_shot(film.shots, args.shot_name, film.path)
        for note in film.notes:  # said while the film is planned, as `render` says them
            report.note(note)
        for note in film_notes(film):
            report.note(note)
        draw_film_path_preview(film, fs, args.output)
        name = fs.name
        if args.contact_sheet is not None:
            frames = render_film_contact_sheet(film, fs, args.contact_sheet, every=args.every,
                                               thumb_width=args.thumb_width or 240, backend=args.backend)
    else:
        from splatfilm.film.world import load_asset
        from splatfilm.scene.transforms import Similarity
        from splatfilm.shots.preview import draw_path_preview, render_contact_sheet
        from splatfilm.shots.shot_yaml import load_shot

        # Read first: a missing or unreadable file is named as such, not as a shot without a SCENE.
        shot = load_shot(args.shot)
        if args.scene is None:
            raise SplatfilmError(f"{args.shot}: a shot file needs the SCENE to preview it over")
        if args.shot_name is not None:
            raise SplatfilmError(f"{args.shot}: --shot picks a shot of a film script; a shot file is one shot")
        # Where a film places the scene unmoved (an object in its canonical frame), as `view` shows it.
        scene = load_asset(Path(args.scene).stem, Path(args.scene), Similarity())
        gaussians = scene.local.transform_gaussians(scene.gaussians)
        draw_path_preview(shot, gaussians, args.output)
        name = shot.name
        if args.contact_sheet is not None:
            frames = render_contact_sheet(shot, gaussians, args.contact_sheet, every=args.every,
                                          thumb_width=args.thumb_width or 240, backend=args.backend,
                                          rasterize_mode=scene.rasterize_mode)
    print(f"wrote the path preview of {name} to {args.output}")
    if args.contact_sheet is not None:
        print(f"wrote a contact sheet of {len(frames)} frames ({frames[0]}..{frames[-1]}) to {args.contact_sheet} "
              f"in {time.perf_counter() - t0:.1f} s")


def add_path_commands(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add `path export` and `path preview` to the main parser's `subparsers`; returns `path`'s parser."""
    path = subparsers.add_parser("path", help="camera paths of shots: export to nerfstudio / USD, preview",
                                 description="Camera paths of shots (a shot YAML: keyframes or camera moves).")
    sub = path.add_subparsers(dest="path_command", required=True)

    p = sub.add_parser("export", help="write a shot's cameras as USD, a nerfstudio camera path or transforms.json",
                       description="Write SHOT's per-frame cameras to OUT, in the format OUT's name picks: "
                                   "*.usda/*.usd an animated USD camera (Blender, Houdini, Nuke); transforms.json "
                                   "nerfstudio dataset cameras; any other *.json a nerfstudio viewer camera path "
                                   "(ns-render camera-path).")
    p.add_argument("shot", help="shot YAML file, or a film script (with --shot NAME when it has several shots)")
    p.add_argument("--shot", dest="shot_name", metavar="NAME", help="film script: the shot to export")
    p.add_argument("-o", "--output", required=True, help="output file: *.usda, *.usd, transforms.json or *.json")
    p.add_argument("--dataparser-transforms", help="camera path only: a nerfstudio run's dataparser_transforms.json, "
                                                   "to write poses in that run's normalised world")
    p.add_argument("--transforms-json", help="with --dataparser-transforms: the transforms.json the run trained on "
                                             "(the shot is in that file's world)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("preview", help="draw a shot's path over a scene; optionally a contact sheet of frames",
                       description="Draw SHOT's camera path over SCENE's Gaussians (top and front views, a dot per "
                                   "frame, frusta at the keys), and with --contact-sheet render every Nth frame "
                                   "small, so you see the move before rendering it. Given a film script, the shot "
                                   "(--shot) is drawn over the whole world as it stands when its cut starts, and "
                                   "the contact sheet shows its frames as `render` renders them, characters, "
                                   "props and effects included.")
    p.add_argument("shot", help="shot YAML file, or a film script (with --shot NAME when it has several shots)")
    p.add_argument("scene", nargs="?", help=f"Gaussian splat file ({GAUSSIAN_READ_TYPES}); not with a film script")
    p.add_argument("--shot", dest="shot_name", metavar="NAME", help="the film script's shot to preview")
    p.add_argument("-o", "--output", required=True, help="preview PNG")
    p.add_argument("--contact-sheet", help="also render a contact sheet PNG of every Nth frame")
    p.add_argument("--every", type=positive_int, help="contact sheet: every Nth frame (default: about 12 frames)")
    p.add_argument("--thumb-width", type=image_side, help="contact sheet: thumbnail width in pixels (default 240)")
    add_backend(p, "renderer for the contact sheet")
    p.set_defaults(func=_cmd_preview)
    return path
