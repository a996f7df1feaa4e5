"""Frames rendered elsewhere: local worker processes, or tasks on a Ray cluster.

Each worker parses the film script itself (a parsed film holds every asset's Gaussians: cheaper
to load again than to send) and renders whole jobs, writing their files; the caller records a
job as done when its chunk comes back. A worker checks each job's key against its own before
rendering it: a script, included file or asset changed since the caller planned the jobs is a
SplatfilmError, not frames of the new film kept under the old one's keys. Every file is
written atomically, so a chunk lost with its worker costs only that chunk's unfinished frames.
Local processes get a frame at a time, so that a stop (Ctrl-C, SIGTERM) or a failed frame
starts no other and records every frame written (`render_with_processes`).
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Callable

import torch

from splatfilm.errors import SplatfilmError
from splatfilm.film.frame_render import FrameJob, FrameRenderer
from splatfilm.film.script import parse_film

# This process's renderer when it is a worker: (script, backend, depth, alpha, passes, provenance, png_bits,
# exr) -> FrameRenderer, and for a local process its caller's stop (a multiprocessing Event).
_WORKER: dict = {}


def _worker_renderer(spec: tuple, threads: int) -> FrameRenderer:
    if _WORKER.get("spec") != spec:
        from splatfilm.render.rasterize_to_pixels import set_num_threads  # numba: loaded only when needed

        torch.set_num_threads(threads)
        set_num_threads(threads)
        script, backend, depth, alpha, passes, provenance, png_bits, exr = spec
        _WORKER["renderer"] = FrameRenderer(parse_film(script), backend, depth, alpha, passes, provenance, png_bits,
                                            exr)
        _WORKER["spec"] = spec
    return _WORKER["renderer"]


def _init_process(spec: tuple, threads: int, stop) -> None:
    _WORKER["stop"] = stop
    _worker_renderer(spec, threads)


def _planned(renderer: FrameRenderer, job: FrameJob) -> bool:
    """Whether `renderer` makes the frame `job` was planned as (its key): not when the film
    (script, included file, asset) changed since the caller made the key."""
    film = renderer.film
    return (job.shot_index < len(film.shots) and job.frame_index < len(film.shots[job.shot_index].shot.frame_numbers)
            and renderer.key(film.shots[job.shot_index], job.frame_index) == job.key)


def _render_jobs(jobs: list[FrameJob]) -> list[FrameJob]:
    """Render and write `jobs`, in order, until the caller's stop is set; the jobs written."""
    renderer = _WORKER["renderer"]
    stop = _WORKER.get("stop")
    written = []
    for job in jobs:
        if stop is not None and stop.is_set():
            break
        # The script is parsed again here: edited since the caller made the keys, its frames would
        # be written as the old script's and kept as such by every later render.
        if not _planned(renderer, job):
            raise SplatfilmError(f"{renderer.film.path}: changed (the script, an included file or an asset) while "
                                 f"the film was being rendered: {job.png.name} would not be the frame planned; "
                                 "render again")
        renderer.write(job)
        written.append(job)
    return written


def _ray_render_jobs(spec: tuple, jobs: list[FrameJob]) -> list[FrameJob]:
    threads = max(1, os.cpu_count() or 1)
    if jobs and not _planned(_worker_renderer(spec, threads), jobs[0]):
        # A Ray worker outlives a render: its film may be an earlier render's, edited since.
        _WORKER.pop("spec")
        _worker_renderer(spec, threads)
    return _render_jobs(jobs)


def _spec(renderer: FrameRenderer) -> tuple:
    return (str(renderer.film.path), renderer.backend, renderer.depth, renderer.alpha, renderer.passes,
            renderer.provenance, renderer.png_bits, renderer.exr)


def chunks(jobs: list[FrameJob], size: int) -> list[list[FrameJob]]:
    """`jobs` in consecutive runs of at most `size`."""
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


def render_with_processes(renderer: FrameRenderer, jobs: list[FrameJob], workers: int,
                          done: Callable[[FrameJob], None]) -> None:
    """Render `jobs` in `workers` local processes (spawned: no state shared by fork), the
    CPU threads split between them; done(job) as each comes back. On an exception here (Ctrl-C,
    SIGTERM as the CLI raises it, a failed frame) no further frame starts: those being rendered
    finish (Ctrl-C at a terminal stops them too), done(job) is called for every frame written,
    and the exception goes on."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = get_context("spawn")
    stop = context.Event()
    recorded: set[Future] = set()

    def record(fut: Future) -> None:
        recorded.add(fut)
        for job in fut.result():
            done(job)

    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_process,
                             initargs=(_spec(renderer), threads, stop)) as pool:
        futures = [pool.submit(_render_jobs, [job]) for job in jobs]
        try:
            for fut in as_completed(futures):
                record(fut)
        except BaseException:
            # Without this the pool would render every queued frame before the exception left
            # it, and none of them would be recorded.
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for fut in futures:
                if fut not in recorded and fut.done() and not fut.cancelled() and fut.exception() is None:
                    record(fut)
            raise


def connect_ray(address: str) -> None:
    """Join the Ray cluster at `address` ("local" starts one in this process, "auto" finds a
    running one), or a one-line SplatfilmError when there is none: checked before any frame
    is rendered. Nothing to do when Ray is already initialised here."""
    try:
        import ray
    except ImportError:
        raise SplatfilmError("--ray needs the ray package: pip install 'splatfilm[ray]'") from None
    if ray.is_initialized():
        return
    host, _, port = address.rpartition(":")
    if address not in ("local", "auto") and "://" not in address and host and port.isdigit():
        # Ray retries an address where nothing listens for minutes; a plain connect says at once.
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as e:
            raise SplatfilmError(f"--ray {address}: no Ray cluster there ({e.strerror or e})") from None
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if address == "local":
            raise SplatfilmError(f"--ray local: cannot start a Ray cluster here ({first})") from None
        raise SplatfilmError(f"--ray {address}: no Ray cluster there ({first})") from None


def render_with_ray(renderer: FrameRenderer, jobs: list[FrameJob], done: Callable[[FrameJob], None]) -> None:
    """Render `jobs` as tasks on the Ray cluster joined by `connect_ray`; done(job) as each
    comes back."""
    import ray

    # Retried on worker loss: a chunk lost mid-render costs only that chunk (its finished
    # frames are already on disk, written atomically).
    task = ray.remote(max_retries=3, retry_exceptions=False)(_ray_render_jobs)
    spec = _spec(renderer)
    pending = [task.remote(spec, chunk) for chunk in chunks(jobs, 8)]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for job in ray.get(ready[0]):
            done(job)
