"""`splatfilm render FILM.yaml -o OUT`: every shot from the one world, then the edit.

Layout of OUT:
    shot_010/shot_010.1001.png ...      frames (plus .depth.exr / .alpha.exr on request)
    shot_010.mp4                        the shot, handles included
    TITLE.mp4                           the cut: every shot without its handles, in order
    TITLE.otio, TITLE.edl               the edit, clips pointing at the shot media
    (with --refine: frames are refined by the gated post-render pass, refine/gate.py)
    cameras/shot_010.usda               each shot's camera as an animated USD camera
    contact_sheet.png                   a thumbnail per shot
    .splatfilm-film.json                the manifest: a content hash per frame

A frame's hash covers everything it depends on: the visible assets' file contents and world
transforms at its (sub-frame) times, its cameras, size and render settings. On a rerun a
frame whose files exist with the same hash is kept; only changed frames render again, and
MP4s are re-encoded only for shots that changed. Every file is written atomically, so an
interrupted render resumes with no half-written file and no finished frame rendered twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from splatfilm.errors import SplatfilmError
from splatfilm.io.images import write_depth, write_png
from splatfilm.io.atomic import atomic_write, check_output_folder, make_folder
from splatfilm.render.lens_effects import apply_depth_of_field, shutter_times
from splatfilm.render import render, resolve_backend
from splatfilm.film.script import Film, FilmShot, parse_film

MANIFEST = ".splatfilm-film.json"


@dataclass
class FilmOutputs:
    """What a render wrote and did: per shot, frames rendered and kept."""

    out_dir: Path
    rendered: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    film_mp4: Path | None = None
    otio: Path | None = None
    edl: Path | None = None
    contact_sheet: Path | None = None
    seconds: float = 0.0
    refine_rejected: int | None = None


@dataclass
class FrameJob:
    shot_index: int
    frame_index: int
    key: str
    png: Path
    depth: Path | None
    alpha: Path | None


def _sub_times(film: Film, fs: FilmShot, i: int) -> list[float]:
    """Shot-relative times (seconds) a frame samples: one, or the open shutter's."""
    t = float(fs.shot.times[i])
    if film.motion_blur:
        return shutter_times(t, float(film.fps), film.motion_blur["shutter_deg"], film.motion_blur["samples"])
    return [t]


def _dof_settings(film: Film, fs: FilmShot, times: list[float]) -> list[tuple[float, float, float] | None]:
    lens = fs.shot.lens
    if not film.depth_of_field:
        return [None] * len(times)
    if lens.f_stop is None:
        raise SplatfilmError(f"{film.path}: shot {fs.name}: depth_of_field needs the lens's f_stop")
    sample = fs.shot.sample(np.array(times))
    out = []
    for k in range(len(times)):
        focus = sample.focus_distance[k]
        if not np.isfinite(focus):
            raise SplatfilmError(f"{film.path}: shot {fs.name}: depth_of_field needs a focus_distance")
        out.append((float(sample.focal_mm[k]), float(lens.f_stop), float(focus)))
    return out


def frame_key(film: Film, fs: FilmShot, i: int, backend: str, aux: tuple[bool, bool]) -> str:
    """Content hash of one frame's inputs (see the module docstring)."""
    times = _sub_times(film, fs, i)
    cams = fs.shot.path.sample(np.array(times)).to_cameras(fs.shot.lens)
    desc = {
        "world": [film.world.signature(fs.world_start + t, fs.visible) for t in times],
        "viewmats": np.round(cams.viewmats, 9).tolist(),
        "Ks": np.round(cams.Ks, 9).tolist(),
        "size": [film.width, film.height],
        "near_far": [fs.shot.lens.near, fs.shot.lens.far],
        "background": list(film.background),
        "sh_degree": film.sh_degree,
        "backend": backend,
        "dof": _dof_settings(film, fs, times),
        "aux": list(aux),
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def render_frame(film: Film, fs: FilmShot, i: int, backend: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB [H,W,3] (background composited), alpha [H,W,1] and depth [H,W,1] of frame i of a
    shot: every visible asset in one rasterization call; sub-frame samples averaged for
    motion blur (depth and alpha from the centre sample's time average)."""
    times = _sub_times(film, fs, i)
    cams = fs.shot.path.sample(np.array(times)).to_cameras(fs.shot.lens)
    dof = _dof_settings(film, fs, times)
    lens = fs.shot.lens
    rgb = alpha = depth = None
    for k, t in enumerate(times):
        g = film.world.compose(fs.world_start + t, fs.visible)
        degree = min(film.sh_degree, g.sh_degree) if film.sh_degree is not None else None
        viewmats, Ks = cams[k].to_tensors(g.dtype)
        if dof[k] is not None:
            g = apply_depth_of_field(g, viewmats[0], Ks[0], film.width, film.height, *dof[k], lens.sensor_width_mm)
        with torch.no_grad():
            out = render(g, viewmats, Ks, film.width, film.height, backend=backend, sh_degree=degree,
                         background=film.background, near_plane=lens.near, far_plane=lens.far)
        r, a, d = (x[0].cpu().double().numpy() for x in (out.rgb, out.alpha, out.depth))
        rgb = r if rgb is None else rgb + r
        alpha = a if alpha is None else alpha + a
        depth = d if depth is None else depth + d
    n = len(times)
    return rgb / n, alpha / n, depth / n


def _gate_frame(film: Film, fs: FilmShot, i: int, backend: str):
    """The raw frame and its camera (at the frame's own time) for the gated refine pass."""
    from splatfilm.refine.gate import Frame

    rgb, alpha, depth = render_frame(film, fs, i, backend)
    cam = fs.shot.path.sample(np.array([float(fs.shot.times[i])])).to_cameras(fs.shot.lens)
    return Frame(torch.from_numpy(rgb).float(), torch.from_numpy(depth).float(), torch.from_numpy(alpha).float(),
                 cam.viewmats[0], cam.Ks[0])


def _refine_shots(film: Film, out: Path, backend: str, jobs: list[FrameJob], refiner, gate_cfg, done, bar,
                  log) -> None:
    """The gated post-render pass over the shots that have frames to do, each shot in order
    from its first frame to do to its end (a refined frame depends on the ones before it, so
    every later frame is in `jobs` too); the frame before it is re-rendered as the reference
    and its written PNG read back."""
    import imageio.v3 as iio

    from splatfilm.refine.gate import gated_refine

    by_shot: dict[int, dict[int, FrameJob]] = {}
    for job in jobs:
        by_shot.setdefault(job.shot_index, {})[job.frame_index] = job
    for k, todo in by_shot.items():
        fs = film.shots[k]
        start = min(todo)
        count = len(fs.shot.frame_numbers)
        prev_out = None
        if start > 0:
            stem = f"{fs.name}.{int(fs.shot.frame_numbers[start - 1]):04d}"
            prev_out = torch.from_numpy(iio.imread(out / fs.name / f"{stem}.png")[..., :3].astype(np.float32) / 255)
        cache: dict[int, object] = {}

        def frame(i: int, fs=fs, cache=cache):
            if i not in cache:
                for old in [j for j in cache if j < i - 2]:  # the pass looks back one frame, ahead one
                    del cache[old]
                cache[i] = _gate_frame(film, fs, i, backend)
            return cache[i]

        def write(i: int, rgb: torch.Tensor, ok: bool, todo=todo) -> None:
            job = todo[i]
            f = frame(i)
            if job.depth is not None:
                write_depth(job.depth, f.depth.double().numpy())
            if job.alpha is not None:
                write_depth(job.alpha, f.alpha.double().numpy(), channel="A")
            write_png(job.png, rgb.double().numpy())
            done(job, ok)
            bar.update(1)

        bar.set_description(f"film {fs.name} (refine)")
        res = gated_refine(frame, count, refiner, gate_cfg, start=start, previous_output=prev_out, on_frame=write)
        log(f"{fs.name}: refine kept {len(res.accepted) - res.rejected} of {len(res.accepted)} refined frame(s); "
            f"{res.rejected} rejected by the consistency gate (raw frame kept)")


def _write_frame(film: Film, job: FrameJob, backend: str) -> None:
    fs = film.shots[job.shot_index]
    rgb, alpha, depth = render_frame(film, fs, job.frame_index, backend)
    # Side files first, the PNG last: a PNG on disk means the frame is complete.
    if job.depth is not None:
        write_depth(job.depth, depth)
    if job.alpha is not None:
        write_depth(job.alpha, alpha, channel="A")
    write_png(job.png, rgb)


# ---- workers (local processes or Ray) ----------------------------------------------------------

_WORKER: dict = {}


def _init_worker(script: str, backend: str, threads: int) -> None:
    from splatfilm.render.rasterize_to_pixels import set_num_threads

    torch.set_num_threads(threads)
    set_num_threads(threads)
    _WORKER["film"] = parse_film(script)
    _WORKER["backend"] = backend


def _worker_render(jobs: list[FrameJob]) -> list[FrameJob]:
    for job in jobs:
        _write_frame(_WORKER["film"], job, _WORKER["backend"])
    return jobs


def _ray_render(script: str, backend: str, jobs: list[FrameJob]) -> list[FrameJob]:
    if "film" not in _WORKER or _WORKER.get("script") != script:
        _init_worker(script, backend, max(1, (os.cpu_count() or 1)))
        _WORKER["script"] = script
    return _worker_render(jobs)


def _chunks(jobs: list[FrameJob], size: int) -> list[list[FrameJob]]:
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


# ---- the film ------------------------------------------------------------------------------------


def render_film(film: Film | str | Path, out_dir: str | Path, backend: str = "auto", shots: list[str] | None = None,
                workers: int = 1, ray_address: str | None = None, depth: bool = False, alpha: bool = False,
                progress: bool = True, log=print, refine: str | Path | None = None,
                refine_tolerance: float = 0.05) -> FilmOutputs:
    """Render a film script (or a parsed `Film`) into `out_dir` (layout in the module docstring).
    shots: names of the shots to render (default all); the edit, film MP4 and timeline are
    written when every shot of the film has its frames. workers: local processes; ray_address:
    a Ray cluster ("auto", "local" or an address) instead. refine: a refiner folder
    (`refine.load_refiner`): frames go through the gated post-render pass, each shot in
    order in this process, a refined frame kept only if its warping error against the
    previous frame is at most `refine_tolerance` (relative) above the raw render's."""
    t0 = time.perf_counter()
    check_output_folder(out_dir)
    if not isinstance(film, Film):
        film = parse_film(film)
    backend = resolve_backend(backend)
    out = make_folder(out_dir)
    names = [fs.name for fs in film.shots]
    if shots:
        unknown = [s for s in shots if s not in names]
        if unknown:
            raise SplatfilmError(f"--shots: no shot called {unknown[0]!r} in {film.path} (shots: {', '.join(names)})")
    selected = [k for k, fs in enumerate(film.shots) if not shots or fs.name in shots]
    refiner = gate_cfg = None
    refine_id = ""
    if refine is not None:
        from splatfilm.refine.gate import GateConfig
        from splatfilm.refine.refiner import load_refiner, refiner_digest

        # The refiner runs where the renders do, so a forced --backend cpu stays on the CPU.
        refiner = load_refiner(refine, device="cuda" if backend == "gsplat" else "cpu")
        gate_cfg = GateConfig(tolerance=refine_tolerance)
        refine_id = json.dumps([refiner_digest(Path(refine)), dataclasses.asdict(gate_cfg)])

    manifest_path = out / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except (OSError, json.JSONDecodeError):
        manifest = {}
    frames_m: dict = manifest.setdefault("frames", {})
    movies_m: dict = manifest.setdefault("movies", {})
    result = FilmOutputs(out)

    todo: list[FrameJob] = []
    shot_keys: dict[str, list[str]] = {}
    for k in selected:
        fs = film.shots[k]
        folder = out / fs.name
        keys = []
        kept = 0
        redo = False
        for i, frame in enumerate(fs.shot.frame_numbers):
            stem = f"{fs.name}.{int(frame):04d}"
            key = frame_key(film, fs, i, backend, (depth, alpha))
            if refiner is not None:
                # A refined frame depends on every frame before it in its shot (the reference chain).
                key = hashlib.sha256(json.dumps([key, refine_id, keys[-1] if keys else ""]).encode()).hexdigest()
            keys.append(key)
            job = FrameJob(k, i, key, folder / f"{stem}.png", folder / f"{stem}.depth.exr" if depth else None,
                           folder / f"{stem}.alpha.exr" if alpha else None)
            files = [p for p in (job.png, job.depth, job.alpha) if p is not None]
            if frames_m.get(str(job.png.relative_to(out))) == key and all(p.exists() for p in files) and not redo:
                kept += 1
            else:
                todo.append(job)
                redo = refiner is not None
        shot_keys[fs.name] = keys
        result.kept[fs.name] = kept
        result.rendered[fs.name] = 0

    refine_m: dict = manifest.setdefault("refine", {})

    def done(job: FrameJob, accepted: bool | None = None) -> None:
        frames_m[str(job.png.relative_to(out))] = job.key
        result.rendered[film.shots[job.shot_index].name] += 1
        if accepted is not None:
            refine_m[str(job.png.relative_to(out))] = accepted

    def save_manifest() -> None:
        atomic_write(manifest_path, [json.dumps(manifest, indent=1, sort_keys=True).encode()])

    bar = tqdm(total=len(todo), desc="film", unit="frame", disable=not progress or not todo)
    try:
        if refiner is not None:
            _refine_shots(film, out, backend, todo, refiner, gate_cfg, done, bar, log)
        elif ray_address:
            _render_with_ray(film, backend, todo, ray_address, done, bar)
        elif workers > 1 and len(todo) > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            ctx = get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(str(film.path), backend, threads)) as pool:
                futures = [pool.submit(_worker_render, chunk) for chunk in _chunks(todo, 4)]
                for fut in as_completed(futures):
                    for job in fut.result():
                        done(job)
                        bar.update(1)
                    save_manifest()
        else:
            current = None
            for job in todo:
                name = film.shots[job.shot_index].name
                if name != current:
                    bar.set_description(f"film {name}")
                    current = name
                _write_frame(film, job, backend)
                done(job)
                bar.update(1)
                if result.rendered[name] % 8 == 0:
                    save_manifest()
    finally:
        save_manifest()
        bar.close()

    for k in selected:
        fs = film.shots[k]
        log(f"{fs.name}: rendered {result.rendered[fs.name]} frame(s), kept {result.kept[fs.name]} unchanged")
    if refiner is not None:
        pngs = [str((out / film.shots[k].name / f"{film.shots[k].name}.{int(n):04d}.png").relative_to(out))
                for k in selected for n in film.shots[k].shot.frame_numbers]
        result.refine_rejected = sum(refine_m.get(p) is False for p in pngs)
        log(f"refine: {result.refine_rejected} of {len(pngs)} frame(s) rejected by the consistency gate "
            f"(tolerance {refine_tolerance:.0%}); their raw renders were kept")

    _write_edit(film, out, selected, shot_keys, movies_m, result, log)
    save_manifest()
    result.seconds = time.perf_counter() - t0
    return result


def _render_with_ray(film: Film, backend: str, todo: list[FrameJob], address: str, done, bar) -> None:
    try:
        import ray
    except ImportError:
        raise SplatfilmError("--ray needs the ray package: pip install 'splatfilm[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False)
    # Retried on worker loss: a chunk lost mid-render costs only that chunk (its finished
    # frames are already on disk, written atomically).
    task = ray.remote(max_retries=3, retry_exceptions=False)(_ray_render)
    pending = [task.remote(str(film.path), backend, chunk) for chunk in _chunks(todo, 8)]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for job in ray.get(ready[0]):
            done(job)
            bar.update(1)


def _write_edit(film: Film, out: Path, selected: list[int], shot_keys: dict, movies_m: dict, result: FilmOutputs,
                log) -> None:
    """Shot MP4s, USD cameras; and when every shot exists, the film MP4, timeline, contact sheet."""
    import imageio.v3 as iio

    from splatfilm.shots.interchange import export_shot
    from splatfilm.shots.preview import tile_images
    from splatfilm.film.timeline import ShotMedia, build_timeline, write_timeline
    from splatfilm.io.video import concat_videos, encode_sequence

    for k in selected:
        fs = film.shots[k]
        digest = hashlib.sha256("".join(shot_keys[fs.name]).encode()).hexdigest()
        mp4 = out / f"{fs.name}.mp4"
        if movies_m.get(mp4.name) != digest or not mp4.exists():
            encode_sequence(out / fs.name / f"{fs.name}.%04d.png", fs.shot.first_frame, film.fps, mp4, crf=film.crf)
            movies_m[mp4.name] = digest
        usd = out / "cameras" / f"{fs.name}.usda"
        if movies_m.get(usd.name) != digest or not usd.exists():
            export_shot(fs.shot, usd)
            movies_m[usd.name] = digest

    complete = all((out / f"{fs.name}.mp4").exists() and movies_m.get(f"{fs.name}.mp4") for fs in film.shots)
    if not complete:
        log("the film MP4 and timeline wait until every shot has been rendered")
        return
    media = [ShotMedia(fs.name, fs.shot.first_frame, fs.shot.frame_count, fs.handles, out / fs.name, f"{fs.name}.",
                       out / f"{fs.name}.mp4") for fs in film.shots]
    cut_digest = hashlib.sha256(json.dumps([movies_m[f"{m.name}.mp4"] for m in media] +
                                           [m.handles for m in media]).encode()).hexdigest()
    film_mp4 = out / f"{film.title}.mp4"
    if movies_m.get(film_mp4.name) != cut_digest or not film_mp4.exists():
        parts = []
        cut_dir = out / ".cut"
        for m in media:
            # The cut leaves the handles out: encode each shot's cut range, then join them.
            part = encode_sequence(m.sequence_dir / f"{m.prefix}%04d.png", m.cut_in, film.fps, cut_dir / f"{m.name}.mp4",
                                   crf=film.crf, frames=m.cut_frames)
            parts.append(part)
        concat_videos(parts, film_mp4)
        movies_m[film_mp4.name] = cut_digest
    timeline = build_timeline(film.title, media, film.fps, out)
    result.otio = write_timeline(out / f"{film.title}.otio", timeline)
    result.edl = write_timeline(out / f"{film.title}.edl", timeline)
    thumbs, labels = [], []
    for m, fs in zip(media, film.shots):
        mid = m.cut_in + m.cut_frames // 2
        im = iio.imread(m.sequence_dir / f"{m.prefix}{mid:04d}.png")[..., :3]
        w = 240
        h = max(1, round(w * im.shape[0] / im.shape[1]))
        from PIL import Image

        thumbs.append(np.asarray(Image.fromarray(im).resize((w, h), Image.BOX)))
        labels.append(f"{fs.name}  {m.cut_in}-{m.cut_in + m.cut_frames - 1}  {fs.shot.lens.focal_mm:g} mm")
    result.contact_sheet = out / "contact_sheet.png"
    tile_images(thumbs, labels, result.contact_sheet)
    result.film_mp4 = film_mp4
    log(f"wrote {film_mp4.name} ({sum(m.cut_frames for m in media)} frames at {film.fps} fps), "
        f"{film.title}.otio, {film.title}.edl, contact_sheet.png")
