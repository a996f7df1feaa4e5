"""Render time of each camera model against the pinhole, on the bundled film set.

    python benchmarks/lens.py [--size 640x360] [--repeats 3] [--backend cpu]

One camera of scenes/set (its transforms.json frame 5) resized to --size; the pinhole keeps the
capture's focal length, OPENCV adds a wide lens's barrel (k1 -0.25, k2 0.06, p1 0.002,
p2 -0.003), the fisheye shortens the focal length to 0.55x (about 160 degrees across) with and
without k1..k3, the panorama is 360 x 180 degrees. Prints the median wall and CPU time of a
forward render (no gradients) and of a forward + backward pass, and the CPU-time ratio to the
pinhole (CPU time is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch

from splatfilm.io.camera_files import read_transforms_json
from splatfilm.io.gaussian_files import load_gaussians
from splatfilm.render import rasterization
from splatfilm.scene.gaussians import Gaussians

SET = Path(__file__).resolve().parents[1] / "scenes" / "set"
PARAMS = ("means", "quats", "scales", "opacities", "sh0", "shN")


def cases(K: torch.Tensor, w: int, h: int):
    fish = K.clone()
    fish[:, :2, :2] *= 0.55
    pano = K.clone()
    pano[:, 0, 0], pano[:, 1, 1], pano[:, 0, 2], pano[:, 1, 2] = w / (2 * math.pi), h / math.pi, w / 2, h / 2
    return [
        ("PINHOLE", None, K),
        ("OPENCV", [-0.25, 0.06, 0.0, 0.0, 0.002, -0.003], K),
        ("OPENCV_FISHEYE (no k)", [0.0] * 6, fish),
        ("OPENCV_FISHEYE", [0.05, -0.01, 0.002, 0.0, 0.0, 0.0], fish),
        ("EQUIRECTANGULAR", None, pano),
    ]


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (all threads; steadier on a busy machine)."""
    fn()  # warm-up (kernel compilation, caches)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        from splatfilm.render.rasterize_to_pixels import set_num_threads

        torch.set_num_threads(args.threads)
        set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    g = load_gaussians(SET / "fitted" / "set.ply")
    cam = read_transforms_json(SET / "transforms.json")[5].resized(w, h)
    V, K = cam.to_tensors(torch.float32)
    print(f"scenes/set: {len(g)} Gaussians, {w}x{h}, backend {args.backend}, median of {args.repeats}")
    print(f"{'model':<24}{'forward ms':>12}{'cpu ms':>9}{'x pinhole':>11}{'fwd+bwd ms':>12}{'cpu ms':>9}{'x pinhole':>11}")
    base = None
    for name, d, Km in cases(K, w, h):
        model = name.split(" ")[0]

        def forward():
            with torch.no_grad():
                rasterization(g, V, Km, w, h, backend=args.backend, camera_model=model, distortion=d)

        def backward():
            leaves = [getattr(g, p).detach().clone().requires_grad_(True) for p in PARAMS]
            out = rasterization(Gaussians(*leaves), V, Km, w, h, backend=args.backend, camera_model=model, distortion=d)
            out.rgb.sum().backward()

        (f, fc), (b, bc) = timed(forward, args.repeats), timed(backward, args.repeats)
        base = base or (fc, bc)
        print(f"{name:<24}{f * 1e3:>12.0f}{fc * 1e3:>9.0f}{fc / base[0]:>11.2f}{b * 1e3:>12.0f}{bc * 1e3:>9.0f}"
              f"{bc / base[1]:>11.2f}")


if __name__ == "__main__":
    main()
