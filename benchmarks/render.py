"""Render speed and memory, per backend: frames per second and peak memory for forward and for
forward+backward, at 10k / 100k / 500k Gaussians x 320x240 / 640x360 / 1280x720.

    python benchmarks/render.py                 # every backend available here, full grid
    python benchmarks/render.py --sizes 100k --resolutions 640x360 --repeats 5

The scene: Gaussians filling a 4 x 3 x 2 m box seen from 4 m away (it fills the frame),
SH degree 3, opacities uniform in [0.1, 1], each Gaussian about half the mean spacing in
size, so depth complexity stays similar as N grows, as it does in fitted scenes.

Each measurement runs in a fresh process, so memory figures do not inherit earlier rows'
allocations. Memory on the CPU: the process's peak resident set (VmHWM: torch, numba and
the scene included), and in brackets what rendering adds over the resident set just
before the timed runs. On CUDA: torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splatfilm.scene.gaussians import Gaussians  # noqa: E402
from splatfilm.render import render  # noqa: E402


def make_scene(n: int, seed: int = 0, device: str = "cpu") -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    extent = torch.tensor([4.0, 3.0, 2.0])
    means = (torch.rand(n, 3, generator=g) - 0.5) * extent
    spacing = (extent.prod().item() / n) ** (1 / 3)
    scales = torch.log(spacing * 0.5 * torch.exp(0.4 * torch.randn(n, 3, generator=g)))
    quats = torch.randn(n, 4, generator=g)
    op = torch.rand(n, generator=g) * 0.9 + 0.1
    opacities = torch.log(op) - torch.log1p(-op)
    sh0 = torch.randn(n, 1, 3, generator=g) * 0.5
    shN = torch.randn(n, 15, 3, generator=g) * 0.1
    return Gaussians(means, quats, scales, opacities, sh0, shN).to(device)


def make_camera(width: int, height: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    viewmat = torch.eye(4)
    viewmat[2, 3] = 4.0  # camera 4 m in front of the box centre, looking down +z
    f = 0.5 * width / math.tan(math.radians(60) / 2)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    return viewmat[None].to(device), K[None].to(device)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_one(backend: str, n: int, width: int, height: int, backward: bool, repeats: int) -> dict:
    device = "cuda" if backend == "gsplat" else "cpu"
    scene = make_scene(n, device=device)
    params = [scene.means, scene.quats, scene.scales, scene.opacities, scene.sh0, scene.shN]
    for p in params:
        p.requires_grad_(backward)
    viewmat, K = make_camera(width, height, device)

    def once():
        out = render(scene, viewmat, K, width, height, backend=backend)
        if backward:
            (out.rgb.sum() + out.depth.mean() + out.alpha.sum()).backward()
            for p in params:
                p.grad = None
        return out

    once()  # warm-up: numba compilation, CUDA kernel build
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = _rss_kib("VmRSS")
    can_reset = _reset_peak()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = once()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        del out
    best = min(times)
    if device == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
        added_mb = peak_mb
    else:
        peak = _rss_kib("VmHWM") if can_reset else float("nan")
        peak_mb = peak / 1024
        added_mb = (peak - base) / 1024
    return {"seconds": best, "fps": 1.0 / best, "peak_mb": peak_mb, "added_mb": added_mb}


def run_isolated(backend: str, n: int, width: int, height: int, backward: bool, repeats: int, threads: int | None) -> dict:
    """`run_one` in a fresh Python process (clean memory high-water mark)."""
    cmd = [sys.executable, __file__, "--one", json.dumps([backend, n, width, height, backward, repeats])]
    if threads:
        cmd += ["--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"benchmark row failed: {backend} {n} {width}x{height}:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def parse_count(text: str) -> int:
    text = text.lower()
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=None, help="comma list (default: cpu, and gsplat where CUDA is)")
    parser.add_argument("--sizes", default="10k,100k,500k")
    parser.add_argument("--resolutions", default="320x240,640x360,1280x720")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one row in this process, JSON out
    args = parser.parse_args()

    if args.threads:
        from splatfilm.render.rasterize_to_pixels import set_num_threads

        set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(run_one(*json.loads(args.one))))
        return
    backends = args.backends.split(",") if args.backends else (["cpu", "gsplat"] if torch.cuda.is_available() else ["cpu"])
    sizes = [parse_count(s) for s in args.sizes.split(",")]
    resolutions = [tuple(int(v) for v in r.split("x")) for r in args.resolutions.split(",")]

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print("| backend | Gaussians | resolution | fwd s | fwd fps | fwd peak MB (added) | fwd+bwd s | fwd+bwd fps | fwd+bwd peak MB (added) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for backend in backends:
        for n in sizes:
            for w, h in resolutions:
                reps = args.repeats if n * w * h <= 100_000 * 640 * 360 else max(1, args.repeats // 3)
                f = run_isolated(backend, n, w, h, False, reps, args.threads)
                b = run_isolated(backend, n, w, h, True, reps, args.threads)
                print(f"| {backend} | {n // 1000}k | {w}x{h} | {f['seconds']:.3f} | {f['fps']:.2f} | "
                      f"{f['peak_mb']:.0f} ({f['added_mb']:.0f}) | {b['seconds']:.3f} | {b['fps']:.2f} | "
                      f"{b['peak_mb']:.0f} ({b['added_mb']:.0f}) |", flush=True)


if __name__ == "__main__":
    main()
