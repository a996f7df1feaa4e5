"""`splatfilm render FILM.yaml -o OUT`: every shot from the one world, then the edit.

Layout of OUT:
    shot_010/shot_010.1001.png ...      frames (plus .depth.exr / .alpha.exr on request)
    shot_010/shot_010.1001.exr ...      with passes: the compositing passes (film/passes.py)
    shot_010.mp4                        the shot, handles included
    TITLE.mp4                           the cut: every shot without its handles, in order
    TITLE.otio, TITLE.edl               the edit, clips pointing at the shot media (the hand-off
                                        writes them after the render: handoff/editorial.py)
    (with --refine: frames are refined by the gated post-render pass, refine/gate.py)
    cameras/shot_010.usda               each shot's camera as an animated USD camera
    contact_sheet.png                   a row per shot: up to 8 cut frames, one a second
    .splatfilm-film.json                the manifest (io.manifest): a content key per frame
    .splatfilm.lock                     held while a render writes here: a second one is refused

A frame's key covers everything it depends on (film/frame_render.py). On a rerun a frame
whose files exist with the same key is kept; only changed frames render again, and MP4s are
re-encoded only for shots that changed (film/cut.py). Nothing in OUT is left showing old
frames: a frame rendered again loses the depth / alpha / passes EXRs this render does not
write, and while the cut waits for a shot the earlier cut and contact sheet go. Every file is written atomically
and the manifest saved after every frame, so an interrupted render (even a killed one, whose
scratch the next render clears) resumes with no half-written file and no finished frame
rendered twice.

Frames render here, in local worker processes or on a Ray cluster (film/workers.py), or
through the refine gate (film/refinement.py). With `frames_only` a render stops after the
frames, as a farm's render nodes do: a later run without it keeps every frame (same keys) and
makes the movies, cameras and edit, on a machine that has ffmpeg and usd-core. With `frames`
(`render --frames FIRST-LAST`) only those film frame numbers of each selected shot render, a
quick look, and the render stops as with `frames_only` (a shot's movie needs all its frames).
After each shot, a visible asset that no rendered frame can see is named (`unseen_assets`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.film.cut import write_edit
from splatfilm.film.frame_render import FrameJob, FrameRenderer
from splatfilm.film.passes import parse_passes
from splatfilm.film.refinement import Refinement, refine_shots
from splatfilm.film.checks import film_notes
from splatfilm.film.script import Film, find_shot, parse_film
from splatfilm.film.workers import connect_ray, render_with_processes, render_with_ray
from splatfilm.io.images import ExrFormat
from splatfilm.io.manifest import Manifest
from splatfilm.io.atomic import check_output_folder, clear_scratch, make_folder, work_lock
from splatfilm.render import resolve_backend
from splatfilm.render.rasterize_to_pixels import FIRST_RENDER_NOTE, kernels_cached
from splatfilm import report

MANIFEST = ".splatfilm-film.json"


@dataclass
class RenderOptions:
    """How to render a film. backend: auto, cpu or gsplat; shots: names of the shots to render
    (None: all); workers: local processes; ray_address: a Ray cluster ("local", "auto" or
    host:port) instead; depth, alpha: also write them as EXRs beside each frame; refine: a
    refiner folder (`refine.loader.load_refiner`): frames go through the gated post-render
    pass, a refined frame kept only if at most `refine_tolerance` of its added detail changes
    against its neighbour's (`refine.gate.GateConfig`); refine_prompt: a diffusion refiner's
    text prompt; passes: names of the passes
    to write as a multi-layer EXR per frame (film.passes.parse_passes); provenance: every
    frame and movie carries its provenance record (io/provenance.py); frames_only: write the
    frames and stop (no MP4s, USD cameras or contact sheet); frames: (first, last)
    film frame numbers (inclusive, as the PNGs are numbered): render only those of each
    selected shot, a quick look, and stop as frames_only does (the movies, cameras and edit
    need every frame); png_bits: 8 or 16 bits a channel in the frames' PNGs; exr: how the
    passes EXR stores its channels (io.images.ExrFormat)."""

    backend: str = "auto"
    shots: list[str] | None = None
    workers: int = 1
    ray_address: str | None = None
    depth: bool = False
    alpha: bool = False
    refine: str | Path | None = None
    refine_tolerance: float = 0.5
    refine_prompt: str = ""
    passes: tuple[str, ...] | str = ()
    provenance: bool = False
    frames_only: bool = False
    frames: tuple[int, int] | None = None
    png_bits: int = 8
    exr: ExrFormat = field(default_factory=ExrFormat)


@dataclass
class FilmOutputs:
    """What a render wrote and did: per shot, frames rendered and kept; `film`: the film it
    rendered, parsed."""

    out_dir: Path
    film: Film
    rendered: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    film_mp4: Path | None = None
    contact_sheet: Path | None = None
    seconds: float = 0.0
    refine_rejected: int | None = None


def _selected_shots(film: Film, shots: list[str] | None) -> list[int]:
    for name in shots or ():
        find_shot(film.shots, name, film.path)
    return [k for k, fs in enumerate(film.shots) if not shots or fs.name in shots]


def _frames_in(film: Film, selected: list[int], frames: tuple[int, int] | None) -> dict[int, list[int]]:
    """Per selected shot, the indices of its frames to render: those numbered within `frames`
    (first, last; None: all), a SplatfilmError naming the shot whose frames it misses."""
    picked = {}
    for k in selected:
        numbers = film.shots[k].shot.frame_numbers
        picked[k] = [i for i, n in enumerate(numbers) if frames is None or frames[0] <= n <= frames[1]]
        if not picked[k]:
            raise SplatfilmError(f"{film.path}: --frames {frames[0]}-{frames[1]}: no frame of shot "
                                 f"{film.shots[k].name} (its frames are {numbers[0]}-{numbers[-1]})")
    return picked


def _plan(renderer: FrameRenderer, out: Path, selected: list[int], manifest: Manifest,
          refinement: Refinement | None, result: FilmOutputs,
          picked: dict[int, list[int]]) -> tuple[list[FrameJob], dict[int, list[str]]]:
    """The frames to render (those of `picked` not kept) and, per selected shot, every frame's key."""
    todo: list[FrameJob] = []
    shot_keys: dict[int, list[str]] = {}
    for k in selected:
        fs = renderer.film.shots[k]
        keys: list[str] = []
        redo = False
        wanted = set(picked[k])
        result.kept[fs.name] = result.rendered[fs.name] = 0
        for i in range(len(fs.shot.frame_numbers)):
            key = renderer.key(fs, i)
            if refinement is not None:
                key = refinement.chain_key(key, keys[-1] if keys else None)
            keys.append(key)
            if i not in wanted:
                continue
            job = renderer.job(out, k, i, key)
            if not redo and manifest.is_done(str(job.png.relative_to(out)), key, job.files):
                result.kept[fs.name] += 1
            else:
                todo.append(job)
                redo = refinement is not None  # every later frame refers back to this one
        shot_keys[k] = keys
    return todo, shot_keys


def unseen_assets(renderer: FrameRenderer, k: int, frames: list[int]) -> list[str]:
    """The visible assets of shot k (index into the film's shots) that no frame of `frames`
    (indices into the shot) can show a pixel of: the box round all their Gaussians (means
    padded by 3 sigma, in the asset's frame, placed as at each frame's time) lies wholly on the
    outer side of one of the camera's own plane (behind it), or its left, right, top or bottom planes in every frame.
    From the bounds alone, no rendering. Only for a pinhole lens, and not for a posed (rigged,
    performing) asset, whose Gaussians leave its file's box: those are never named."""
    film = renderer.film
    fs = film.shots[k]
    if fs.shot.lens.model != "pinhole":
        return []
    unseen = []
    for name in fs.visible:
        asset = film.world.assets[name]
        if asset.performance is not None or len(asset.gaussians.means) == 0:
            continue
        with torch.no_grad():
            means = asset.gaussians.means.detach().cpu().double().numpy()
            pad = 3.0 * asset.gaussians.activated_scales.detach().cpu().double().numpy().max(axis=1, keepdims=True)
        lo, hi = (means - pad).min(axis=0), (means + pad).max(axis=0)
        corners = np.array([[(lo, hi)[a][0], (lo, hi)[b][1], (lo, hi)[c][2]]
                            for a in (0, 1) for b in (0, 1) for c in (0, 1)])
        seen = False
        for i in frames:
            cams = renderer.camera(fs, i)
            world = asset.world_transform(fs.world_start + float(fs.shot.times[i])).apply(corners)
            cam = world @ cams.viewmats[0, :3, :3].T + cams.viewmats[0, :3, 3]
            K = cams.Ks[0]
            z = cam[:, 2]
            u = K[0, 0] * cam[:, 0] + K[0, 2] * z  # pixel column times z
            v = K[1, 1] * cam[:, 1] + K[1, 2] * z
            outside = [z <= 0, u < 0, u > film.width * z, v < 0, v > film.height * z]
            if not any(np.all(o) for o in outside):
                seen = True
                break
        if not seen:
            unseen.append(name)
    return unseen


def render_film(film: Film | str | Path, out_dir: str | Path, options: RenderOptions | None = None,
                progress: bool = True, log: Callable[[str], None] | None = None,
                then: Callable[[FilmOutputs], None] | None = None) -> FilmOutputs:
    """Render a film script (or a parsed `Film`) into `out_dir` (layout in the module
    docstring) as `options` say. The film MP4 and contact sheet are written when every shot
    of the film has its frames. Refined frames render in order in this process. `then`: run
    with the result while the folder is still this render's (the hand-off's timeline, masters
    and signatures: handoff.editorial.write_editorial, cli/handoff.py's finish_render), so a
    second render cannot start between the frames and what is made of them.
    `log`: called with the lines that tell a result a script may read ("wrote film.mp4 ...";
    the CLI prints them on stdout); notes and status lines go through splatfilm.report."""
    t0 = time.perf_counter()
    options = options or RenderOptions()
    check_output_folder(out_dir)
    unused = [o for o, given in (("--workers", options.workers > 1), ("--ray", options.ray_address)) if given]
    if options.refine is not None and unused:
        # A refined frame is the next one's reference, so each shot runs in order in this process.
        report.note(f"--refine renders each shot in order in this process; {' and '.join(unused)} "
                    f"{'is' if len(unused) == 1 else 'are'} not used")
    elif options.ray_address:
        connect_ray(options.ray_address)  # before any work: a wrong address fails at once
    if options.refine is not None and options.frames is not None:
        # A refined frame is judged against the one before it: a run of some frames is not the shot's.
        raise SplatfilmError("--frames does not go with --refine (each refined frame is judged against the one "
                             "before it); render the whole shot")
    refinement = None
    if options.refine is not None:
        # Loaded first: a wrong or broken refiner is told before the film's assets are cleaned
        # and its bodies baked (a minute on a cold cache).
        refinement = Refinement.load(options.refine, options.refine_tolerance, resolve_backend(options.backend),
                                     options.refine_prompt)
    if not isinstance(film, Film):
        film = parse_film(film, options.shots)
    for note in film.notes:
        report.note(note)
    for note in film_notes(film):
        report.note(note)
    selected = _selected_shots(film, options.shots)
    picked = _frames_in(film, selected, options.frames)
    renderer = FrameRenderer(film, options.backend, options.depth, options.alpha, parse_passes(options.passes),
                             options.provenance, options.png_bits, options.exr)
    out = make_folder(out_dir)
    result = FilmOutputs(out, film)

    # One render at a time in a folder: each keeps its own record of the frames and saves it,
    # so a second one's frames would be kept under the keys of the first's.
    with work_lock(out, "render"):
        with Manifest.load(out / MANIFEST) as manifest:  # saved after every frame
            # What a killed render was writing when it died (atomic writes' scratch): the folder is ours.
            for folder in (out, out / "cameras", *(out / fs.name for fs in film.shots)):
                clear_scratch(folder)
            todo, shot_keys = _plan(renderer, out, selected, manifest, refinement, result, picked)
            # A side file this render does not write would sit beside a new frame showing the old one.
            stale = [p for job in todo for p in job.unasked if p.exists()]
            for p in stale:
                p.unlink()
            if stale:
                report.status(f"removed {len(stale)} depth/alpha/passes EXR(s) of the frames rendered again, which "
                              "this render does not write (they showed the earlier frames)")
            verdicts = manifest.section("refine")

            def done(job: FrameJob, accepted: bool | None = None) -> None:
                name = str(job.png.relative_to(out))
                if accepted is not None:
                    verdicts[name] = accepted
                manifest.done(name, job.key)
                result.rendered[film.shots[job.shot_index].name] += 1

            # The CPU kernels compile on their first call after an install (about 20 s on 2 cores,
            # then cached): without a word the bar would sit at 0% through it.
            bar = report.progress_bar(total=len(todo), desc="film", unit="frame", show=progress and bool(todo),
                                      postfix=None if kernels_cached() else FIRST_RENDER_NOTE)  # until the first frame is done

            def step(job: FrameJob, accepted: bool | None = None) -> None:
                done(job, accepted)
                if bar.n == 0:
                    bar.set_postfix_str("", refresh=False)
                bar.update(1)

            try:
                if refinement is not None:
                    refine_shots(renderer, out, todo, refinement, done, bar)
                elif options.ray_address:
                    render_with_ray(renderer, todo, step)
                elif options.workers > 1 and len(todo) > 1:
                    render_with_processes(renderer, todo, options.workers, step)
                else:
                    for n, job in enumerate(todo):
                        if n == 0 or job.shot_index != todo[n - 1].shot_index:
                            bar.set_description(f"film {film.shots[job.shot_index].name}")
                        renderer.write(job)
                        step(job)
            finally:
                bar.close()

            for k in selected:
                name = film.shots[k].name
                report.status(f"{name}: rendered {result.rendered[name]} frame(s), kept {result.kept[name]} unchanged")
                for asset in unseen_assets(renderer, k, picked[k]):
                    report.note(f"{asset} is not seen in {name} (0 pixels in any frame: it lies wholly outside every "
                                f"frame's view); move it or the camera, or hide it in this shot")
            if refinement is not None:
                pngs = [str(renderer.job(out, k, i, "").png.relative_to(out))
                        for k in selected for i in range(len(film.shots[k].shot.frame_numbers))]
                result.refine_rejected = sum(verdicts.get(p) is False for p in pngs)
                report.status(f"refine: {result.refine_rejected} of {len(pngs)} frame(s) rejected by the consistency "
                              f"gate (tolerance {options.refine_tolerance:.0%}); their raw renders were kept")

            # Shots with a refined frame kept: their movies say a generative model touched them.
            refined = {fs.name for k, fs in enumerate(film.shots)
                       if any(verdicts.get(str(renderer.job(out, k, i, "").png.relative_to(out)))
                              for i in range(len(fs.shot.frame_numbers)))}
            if options.frames is not None:
                report.status(f"frames {options.frames[0]}-{options.frames[1]} only: run again without --frames for "
                              "the movies, cameras and edit (the frames are kept)")
            elif options.frames_only:
                report.status("frames only: run again without --frames-only for the movies, cameras and edit (the "
                              "frames are kept)")
            else:
                cut = write_edit(film, out, shot_keys, manifest.section("movies"), log,
                                 renderer.facts() if options.provenance else None, refined)
                result.film_mp4, result.contact_sheet = cut.film_mp4, cut.contact_sheet
        result.seconds = time.perf_counter() - t0
        if then is not None:
            # Still holding the folder, with the frames' record saved: what follows (timeline,
            # masters, signatures) records into the same manifest and reads the frames just written.
            then(result)
    return result
