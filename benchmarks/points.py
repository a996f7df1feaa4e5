"""A capture with poses but no point cloud: fitted from points triangulated with its known poses,
against the same capture fitted from its SfM points, and from random points, at one step count.

    python benchmarks/points.py                          # scenes/set, 3000 steps, cpu
    python benchmarks/points.py --steps 600 --every 2    # quicker: every 2nd view, fewer steps

Prints, per start: the starting points, held-out PSNR/SSIM (every 8th view), Gaussians, seconds;
and the time the triangulation took. The target (issue 19): triangulated within 1 dB of SfM.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splatfilm.fit import FitConfig, fit, load_capture  # noqa: E402
from splatfilm.fit.triangulate import triangulate_known_poses  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT / "scenes" / "set"), help="a capture with a point cloud (nerfstudio/COLMAP)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--every", type=int, default=1, help="use every Nth view (default all)")
    ap.add_argument("--work", help="work folder (default: a temporary one)")
    args = ap.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="points-bench-"))
    capture = load_capture(args.data, work / "capture")
    capture = capture.subset(list(range(0, len(capture), args.every)))
    if capture.points is None:
        sys.exit(f"{args.data}: the capture has no point cloud to compare against")
    sfm_points, sfm_colors = capture.points, capture.point_colors
    t0 = time.perf_counter()
    tri_points, tri_colors = triangulate_known_poses(capture.images, capture.cameras, work / "triangulated")
    tri_seconds = time.perf_counter() - t0

    cfg = FitConfig(steps=args.steps, backend=args.backend, checkpoint_every=0, test_every=8)
    rows = []
    for label, points, colors in (("SfM points", sfm_points, sfm_colors),
                                  ("triangulated (known poses)", tri_points, tri_colors / 255.0),
                                  ("random (no points)", None, None)):
        capture.points = None if points is None else points.astype("float32")
        capture.point_colors = colors
        t = time.perf_counter()
        result = fit(capture, cfg, progress=False)
        m = result.metrics["test"]
        rows.append((label, 0 if points is None else len(points), m["psnr"], m["ssim"], len(result.gaussians),
                     time.perf_counter() - t))
        print(f"{label}: {rows[-1]}", flush=True)

    print(f"\n{args.data}: {len(capture)} views, {args.steps} steps, backend {args.backend}; "
          f"triangulation {tri_seconds:.0f} s\n")
    print("| start | points | held-out PSNR (dB) | SSIM | Gaussians | fit s |")
    print("|---|---|---|---|---|---|")
    for label, n, p, s, g, sec in rows:
        print(f"| {label} | {n} | {p:.2f} | {s:.4f} | {g} | {sec:.0f} |")


if __name__ == "__main__":
    main()
