"""Render speed and memory, per backend: frames per second and peak memory for forward and for
forward+backward, at 10k / 100k / 500k Gaussians x 320x240 / 640x360 / 1280x720; on the CPU
also the rasterizer's own time and its rate against a measured roofline.

    python benchmarks/render.py                 # every backend available here, full grid
    python benchmarks/render.py --sizes 100k --resolutions 640x360 --repeats 5
    python benchmarks/render.py --scenes init,fitted --resolutions 320x240   # the fitting-like rows
    python benchmarks/render.py --backends gsplat,gsplat-bare --rows 1m@1920x1080,3m@1920x1080   # on a GPU

Backends: cpu, gsplat (splatfilm's `rasterization` on gsplat), gsplat-bare (`gsplat.rasterization`
called directly on the same tensors, as a gsplat user would: activations and the SH
concatenation in the timed call, RGB+ED out, so the two do the same work). With both gsplat
backends the table ends with splatfilm's frame rate as a fraction of the bare call's.
--rows adds box-scene rows (COUNT@WxH) to the grid.

Scenes (--scenes):
- box: Gaussians filling a 4 x 3 x 2 m box seen from 4 m away (it fills the frame), SH degree
  3, opacities uniform in [0.1, 1], each Gaussian about half the mean spacing in size: sparse
  (few Gaussians per pixel), depth complexity similar as N grows. Sizes from --sizes.
- init: what a fit starts from: N Gaussians sampled around the bundled set's SfM points
  (scenes/set/sparse_pc.ply; each point's neighbourhood by its nearest-neighbour distance),
  sized, coloured and at opacity 0.1 as `fit.init.gaussians_from_points` makes them, seen from
  the set's first capture camera. Dense: hundreds of Gaussians per pixel. Sizes from --init-sizes.
- fitted: the bundled set fitted (scenes/set/fitted/set.ply, 70k Gaussians, SH degree 1) from
  the same camera.

CPU rows also time `rasterize_to_pixels` alone (forward, and backward of a random weighting of
its outputs) and count its work: blends, the (pixel, Gaussian) pairs that contribute (alpha >=
1/255, the pixel not yet stopped), which the forward composites and the backward
differentiates. Blends per second per thread is set against the roofline: the forward's
per-blend arithmetic (conic, exp, alpha, transmittance, 4 channels) in a tight vectorised
loop on one thread over a 16x16 tile, measured in the same run; what separates the forward
kernel from it is the work around it (tile lists, boxes, lanes that do not contribute). The
backward's rate is set against the same roofline, so its percentage understates it (a
backward blend is about 2.5x the arithmetic; a tight loop of it did not vectorise in numba,
so it measured nothing useful). Lanes split the gap in two: the pixel lanes the forward
evaluates (each (tile, Gaussian) pair's box rows, 16 pixels a row, up to the tile's last
contribution), and lanes per second against the same roofline, where every lane counts. A
kernel near 100% there does its lanes as fast as the tight loop; what is left is lanes that
do not blend (outside the ellipse, below 1/255, stopped pixels).

Each CPU measurement runs in a fresh process, so memory figures do not inherit earlier rows'
allocations; CUDA rows run in this process (their peak is reset per row, and a fresh CUDA
process would cost seconds a row). Memory on the CPU: the process's peak resident set (VmHWM: torch, numba and
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

import numpy as np
import torch
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splatfilm.scene.gaussians import Gaussians  # noqa: E402
from splatfilm.render import rasterization  # noqa: E402
from splatfilm.render.rasterize_to_pixels import exp_neg  # noqa: E402


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


ROOT = Path(__file__).resolve().parent.parent


def set_camera(width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled set's first capture camera, its focal length scaled to `width`."""
    from splatfilm.io.camera_files import read_transforms_json

    cams = read_transforms_json(ROOT / "scenes" / "set" / "transforms.json")
    K = cams.Ks[0].copy()
    K[:2, :2] *= width / cams.widths[0]
    K[0, 2], K[1, 2] = width / 2, height / 2
    return torch.tensor(cams.viewmats[:1], dtype=torch.float32), torch.tensor(K[None], dtype=torch.float32)


def make_init_scene(n: int, seed: int = 0) -> Gaussians:
    """n Gaussians as a fit initialises them, from points sampled around the set's SfM cloud."""
    import numpy as np

    from splatfilm.fit.init import gaussians_from_points, knn_scales
    from splatfilm.io.ply import read_ply_points

    pts, cols = read_ply_points(ROOT / "scenes" / "set" / "sparse_pc.ply")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(pts), n)
    spread = knn_scales(pts)[pick, None]
    return gaussians_from_points(pts[pick] + rng.normal(size=(n, 3)) * spread, cols[pick], 3, 0.1)


def load_scene(kind: str, n: int, width: int, height: int, device: str):
    """(Gaussians, viewmat [1,4,4], K [1,3,3]) for a row."""
    if kind == "box":
        return (make_scene(n, device=device), *make_camera(width, height, device))
    if kind == "init":
        g = make_init_scene(n)
    elif kind == "fitted":
        from splatfilm.io.ply import read_ply

        g = read_ply(ROOT / "scenes" / "set" / "fitted" / "set.ply")
    else:
        raise SystemExit(f"unknown scene {kind!r}; choose box, init or fitted")
    vm, K = set_camera(width, height)
    return g.to(device), vm.to(device), K.to(device)


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


def bare_gsplat_render(scene: Gaussians, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int):
    """`gsplat.rasterization` on the scene's tensors, as splatfilm's gsplat backend calls it:
    (rgb [1,H,W,3], alpha [1,H,W,1], depth [1,H,W,1])."""
    from gsplat import rasterization

    colors, alphas, _ = rasterization(
        scene.means, scene.quats, torch.exp(scene.scales), torch.sigmoid(scene.opacities),
        torch.cat([scene.sh0, scene.shN], 1), viewmat, K, width, height, sh_degree=scene.sh_degree,
        packed=False, render_mode="RGB+ED")
    return colors[..., :3], alphas, colors[..., 3:4]


def run_one(backend: str, kind: str, n: int, width: int, height: int, backward: bool, repeats: int) -> dict:
    device = "cuda" if backend.startswith("gsplat") else "cpu"
    scene, viewmat, K = load_scene(kind, n, width, height, device)
    params = [scene.means, scene.quats, scene.scales, scene.opacities, scene.sh0, scene.shN]
    for p in params:
        p.requires_grad_(backward)

    def once():
        if backend == "gsplat-bare":
            rgb, alpha, depth = bare_gsplat_render(scene, viewmat, K, width, height)
        else:
            out = rasterization(scene, viewmat, K, width, height, backend=backend)
            rgb, alpha, depth = out.rgb, out.alpha, out.depth
        if backward:
            (rgb.sum() + depth.mean() + alpha.sum()).backward()
            for p in params:
                p.grad = None
        return rgb

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
    row = {"seconds": best, "fps": 1.0 / best, "peak_mb": peak_mb, "added_mb": added_mb, "n": len(scene)}
    if backend == "cpu" and backward:
        row.update(rasterizer_work(scene, viewmat, K, width, height, repeats))
    return row


def rasterizer_work(scene: Gaussians, viewmat, K, width: int, height: int, repeats: int) -> dict:
    """`rasterize_to_pixels` alone on this row's projected Gaussians: best forward and backward
    seconds, blends, threads."""
    import numba

    from splatfilm.render.projection import project_gaussians, quat_scale_to_covar
    from splatfilm.render.rasterize_to_pixels import rasterize_to_pixels

    with torch.no_grad():
        op = scene.activated_opacities
        proj = project_gaussians(scene.means, quat_scale_to_covar(scene.quats, scene.activated_scales), viewmat, K,
                                 width, height, opacities=op)
        colors = (scene.sh0[:, 0] * 0.28209479177387814 + 0.5).clamp_min(0.0)
        feats = torch.cat([colors[None], proj.depths[..., None]], -1)
    diff = [x.detach().clone().requires_grad_(True) for x in (proj.means2d, proj.conics, op[None], feats)]
    gen = torch.Generator().manual_seed(0)
    wf = torch.rand(1, height, width, feats.shape[-1], generator=gen)
    wa = torch.rand(1, height, width, 1, generator=gen)
    fwd, bwd = [], []
    for _ in range(repeats + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        f, a = rasterize_to_pixels(*diff, proj.radii, proj.depths, width, height)
        t1 = time.perf_counter()
        ((f * wf).sum() + (a * wa).sum()).backward()
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
    blends, lanes = count_blends(*(x.detach()[0].numpy() for x in (proj.means2d, proj.conics, op[None], proj.radii,
                                                                   proj.depths)), width, height)
    return {"raster_fwd": min(fwd[1:]), "raster_bwd": min(bwd[1:]), "blends": blends, "lanes": lanes,
            "threads": numba.get_num_threads()}


def count_blends(means2d, conics, opacities, radii, depths, width: int, height: int) -> tuple[int, int]:
    """(blends, lanes): the (pixel, Gaussian) pairs that contribute to the image, by the
    compositing rules, and the pixel lanes the forward kernel evaluates to find them (each
    (tile, Gaussian) pair up to the tile's last contribution: its box rows within the tile,
    16 pixels a row)."""
    from splatfilm.render.tile_intersection import isect_tiles, tile_grid

    offsets, ids = isect_tiles(means2d, radii, depths, width, height)
    blends, lanes = _count_blends(means2d.astype(np.float64), conics.astype(np.float64),
                                  opacities.astype(np.float64), radii, offsets, ids, width, height, 16,
                                  tile_grid(width, height)[0])
    return int(blends.sum()), int(lanes.sum())


@njit(parallel=True, cache=True)
def _count_blends(means2d, conics, opacities, radii, tile_offsets, flat_ids, width, height, tile_size, tiles_x):
    n_tiles = tile_offsets.shape[0] - 1
    out = np.zeros(n_tiles, np.int64)
    lanes = np.zeros(n_tiles, np.int64)
    for t in prange(n_tiles):
        x0 = (t % tiles_x) * tile_size
        y0 = (t // tiles_x) * tile_size
        x1 = min(x0 + tile_size, width)
        y1 = min(y0 + tile_size, height)
        last = tile_offsets[t] - 1
        for py in range(y0, y1):
            for px in range(x0, x1):
                T = 1.0
                for k in range(tile_offsets[t], tile_offsets[t + 1]):
                    g = flat_ids[k]
                    dx = means2d[g, 0] - (px + 0.5)
                    dy = means2d[g, 1] - (py + 0.5)
                    sigma = 0.5 * (conics[g, 0] * dx * dx + conics[g, 2] * dy * dy) + conics[g, 1] * dx * dy
                    if sigma < 0.0:
                        continue
                    alpha = min(0.999, opacities[g] * math.exp(-sigma))
                    if alpha < 1.0 / 255.0:
                        continue
                    next_T = T * (1.0 - alpha)
                    if next_T <= 1e-4:
                        break
                    out[t] += 1
                    last = max(last, k)
                    T = next_T
        for k in range(tile_offsets[t], last + 1):
            g = flat_ids[k]
            if opacities[g] < 1.0 / 255.0:
                continue
            # The kernel's box rows: pixel centres within the radius, widened by one pixel.
            my, ry = means2d[g, 1], radii[g, 1]
            r0 = max(int(math.floor(my - ry - 0.5)) - 1, y0)
            r1 = min(int(math.ceil(my + ry - 0.5)) + 2, y1)
            lanes[t] += max(r1 - r0, 0) * tile_size
    return out, lanes


@njit(cache=True, fastmath={"contract"})
def _roofline_forward(params, feats, state, reps):
    """The forward's per-blend arithmetic over one 16x16 tile, Gaussian after Gaussian (with
    fused multiply-adds, as the kernel is compiled)."""
    half, one, zero = np.float32(0.5), np.float32(1.0), np.float32(0.0)
    a_min, a_max, t_min = np.float32(1.0 / 255.0), np.float32(0.999), np.float32(1e-4)
    n_pix = state.shape[1]
    for _ in range(reps):
        state[0, :] = one
        for g in range(params.shape[0]):
            mx, my, ca, cb, cc, op = params[g, 0], params[g, 1], params[g, 2], params[g, 3], params[g, 4], params[g, 5]
            for li in range(np.uint64(0), np.uint64(n_pix)):
                dx = mx - state[6, li]
                dy = my - state[7, li]
                sigma = half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                alpha = min(a_max, op * exp_neg(sigma))
                T = state[0, li]
                next_T = T * (one - alpha)
                use = (sigma >= zero) & (alpha >= a_min) & (next_T > t_min)
                w = alpha * T if use else zero
                state[0, li] = next_T if use else T
                state[1, li] += w * feats[g, 0]
                state[2, li] += w * feats[g, 1]
                state[3, li] += w * feats[g, 2]
                state[4, li] += w * feats[g, 3]


def roofline() -> float:
    """Blends per second on one thread in the tight loop above (best of 5)."""
    rng = np.random.default_rng(0)
    n = 2048
    cov = rng.uniform(2.0, 40.0, (n, 2))
    params = np.stack([rng.uniform(0, 16, n), rng.uniform(0, 16, n), 1 / cov[:, 0], rng.uniform(-0.01, 0.01, n),
                       1 / cov[:, 1], rng.uniform(0.05, 0.5, n)], 1).astype(np.float32)
    feats = rng.uniform(0, 1, (n, 4)).astype(np.float32)
    state = np.zeros((12, 256), np.float32)
    state[5:] = rng.uniform(0, 1, (7, 256))
    state[6] = np.arange(256) % 16 + 0.5
    state[7] = np.arange(256) // 16 + 0.5
    _roofline_forward(params, feats, state, 1)
    best = min(_timed(_roofline_forward, (params, feats, state), 20) for _ in range(5))
    return n * 256 * 20 / best


def _timed(fn, args, reps: int) -> float:
    t0 = time.perf_counter()
    fn(*args, reps)
    return time.perf_counter() - t0


def run_isolated(backend: str, kind: str, n: int, width: int, height: int, backward: bool, repeats: int,
                 threads: int | None) -> dict:
    """`run_one` in a fresh Python process (clean memory high-water mark); CUDA rows here."""
    if backend.startswith("gsplat"):
        row = run_one(backend, kind, n, width, height, backward, repeats)
        torch.cuda.empty_cache()
        return row
    cmd = [sys.executable, __file__, "--one", json.dumps([backend, kind, n, width, height, backward, repeats])]
    if threads:
        cmd += ["--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"benchmark row failed: {backend} {kind} {n} {width}x{height}:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def parse_count(text: str) -> int:
    text = text.lower()
    scale = {"k": 1000, "m": 1_000_000}.get(text[-1:])
    return int(float(text[:-1]) * scale) if scale else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=None,
                        help="comma list of cpu, gsplat, gsplat-bare (default: cpu, and both gsplat where CUDA is)")
    parser.add_argument("--scenes", default="box,init,fitted", help="comma list of box, init, fitted")
    parser.add_argument("--sizes", default="10k,100k,500k", help="Gaussian counts of the box scene")
    parser.add_argument("--init-sizes", default="100k,500k", help="Gaussian counts of the init scene")
    parser.add_argument("--resolutions", default="320x240,640x360,1280x720")
    parser.add_argument("--rows", default="", help="extra box-scene rows, comma list of COUNT@WxH (1m@1920x1080)")
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
    backends = args.backends.split(",") if args.backends else (
        ["cpu", "gsplat", "gsplat-bare"] if torch.cuda.is_available() else ["cpu"])
    unknown = set(backends) - {"cpu", "gsplat", "gsplat-bare"}
    if unknown:
        raise SystemExit(f"unknown backend {min(unknown)!r}; choose cpu, gsplat or gsplat-bare")
    if any(b.startswith("gsplat") for b in backends) and not torch.cuda.is_available():
        raise SystemExit("the gsplat backends need a CUDA GPU; none is available here")
    resolutions = [tuple(int(v) for v in r.split("x")) for r in args.resolutions.split(",") if r]
    rows = []  # (scene, count, [(w, h), ...])
    for kind in [k for k in args.scenes.split(",") if k]:
        sizes = {"box": args.sizes, "init": args.init_sizes, "fitted": "0"}[kind]
        rows += [(kind, parse_count(s), resolutions) for s in sizes.split(",")]
    for extra in [r for r in args.rows.split(",") if r]:
        count, _, size = extra.partition("@")
        rows.append(("box", parse_count(count), [tuple(int(v) for v in size.split("x"))]))

    import numba

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"numba {numba.__version__} ({numba.get_num_threads()} threads)"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "") + f"; load {_load()}")
    roof = roofline() if "cpu" in backends else None
    if roof:
        print(f"roofline, one thread: {roof / 1e6:.0f} M lanes/s (the forward's arithmetic, every pixel lane a blend)")
    print("| backend | scene | Gaussians | resolution | fwd s | fwd fps | fwd peak MB (added) | fwd+bwd s | fwd+bwd fps "
          "| fwd+bwd peak MB (added) | raster fwd s | raster bwd s | blends (M) | fwd M blends/s/thread (% roof) "
          "| bwd M blends/s/thread (% roof) | lanes (M) | fwd M lanes/s/thread (% roof) |")
    print("|---" * 17 + "|")
    fps = {}  # (backend, scene, n, w, h) -> (fwd fps, fwd+bwd fps)
    for backend in backends:
        for kind, n, sizes in rows:
            for w, h in sizes:
                small = max(n, 100_000) * w * h <= 100_000 * 640 * 360
                reps = args.repeats if small or backend != "cpu" else max(1, args.repeats // 3)
                f = run_isolated(backend, kind, n, w, h, False, reps, args.threads)
                b = run_isolated(backend, kind, n, w, h, True, reps, args.threads)
                work = "| | | | | | | |"
                if "blends" in b:
                    rf = b["blends"] / b["raster_fwd"] / b["threads"]
                    rb = b["blends"] / b["raster_bwd"] / b["threads"]
                    lf = b["lanes"] / b["raster_fwd"] / b["threads"]
                    work = (f"| {b['raster_fwd']:.3f} | {b['raster_bwd']:.3f} | {b['blends'] / 1e6:.1f} | "
                            f"{rf / 1e6:.1f} ({100 * rf / roof:.0f}%) | {rb / 1e6:.1f} ({100 * rb / roof:.0f}%) | "
                            f"{b['lanes'] / 1e6:.1f} | {lf / 1e6:.0f} ({100 * lf / roof:.0f}%) |")
                print(f"| {backend} | {kind} | {f['n'] // 1000}k | {w}x{h} | {f['seconds']:.3f} | {f['fps']:.2f} | "
                      f"{f['peak_mb']:.0f} ({f['added_mb']:.0f}) | {b['seconds']:.3f} | {b['fps']:.2f} | "
                      f"{b['peak_mb']:.0f} ({b['added_mb']:.0f}) " + work, flush=True)
                fps[backend, kind, f["n"], w, h] = (f["fps"], b["fps"])
    pairs = [(k[1:], v, fps[("gsplat-bare",) + k[1:]]) for k, v in fps.items()
             if k[0] == "gsplat" and ("gsplat-bare",) + k[1:] in fps]
    if pairs:
        print("\nsplatfilm's gsplat backend against the bare gsplat.rasterization call (goal: >= 0.95x its fps)")
        print("| scene | Gaussians | resolution | fwd fps | bare fwd fps | ratio | fwd+bwd fps | bare fwd+bwd fps | ratio |")
        print("|---" * 9 + "|")
        for (kind, n, w, h), (f, b), (bf, bb) in pairs:
            print(f"| {kind} | {n // 1000}k | {w}x{h} | {f:.1f} | {bf:.1f} | {f / bf:.2f}x | {b:.1f} | {bb:.1f} | "
                  f"{b / bb:.2f}x |")
    print(f"load at the end: {_load()}")


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
