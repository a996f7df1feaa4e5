"""Frames rendered elsewhere: local worker processes, or tasks on a Ray cluster.

Each worker parses the film script itself (a parsed film holds every asset's Gaussians: cheaper
to load again than to send) and renders whole jobs, writing their files; the caller records a
job as done when its chunk comes back. Every file is written atomically, so a chunk lost with
its worker costs only that chunk's unfinished frames.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Callable

import torch

from splatfilm.errors import SplatfilmError
from splatfilm.film.frame_render import FrameJob, FrameRenderer
from splatfilm.film.script import parse_film

# This process's renderer when it is a worker: (script, backend, depth, alpha, passes, provenance, png_bits,
# exr) -> FrameRenderer.
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


def _init_process(spec: tuple, threads: int) -> None:
    _worker_renderer(spec, threads)


def _render_jobs(jobs: list[FrameJob]) -> list[FrameJob]:
    renderer = _WORKER["renderer"]
    for job in jobs:
        renderer.write(job)
    return jobs


def _ray_render_jobs(spec: tuple, jobs: list[FrameJob]) -> list[FrameJob]:
    _worker_renderer(spec, max(1, os.cpu_count() or 1))
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
    CPU threads split between them; done(job) as each comes back."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_process,
                             initargs=(_spec(renderer), threads)) as pool:
        futures = [pool.submit(_render_jobs, chunk) for chunk in chunks(jobs, 4)]
        for fut in as_completed(futures):
            for job in fut.result():
                done(job)


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
