"""Floater clean-up measured: held-out quality of a fitted scene before and after removing the
Gaussians that fewer than N of its capture views show (splatfilm.assets.cleanup).

    python benchmarks/cleanup.py                                   # the bundled set
    python benchmarks/cleanup.py --scene S.ply --heldout DIR --capture DIR

Rows: min_views 1 (only the unseen ones go), 2 (the default: also those one photo shows) and
3, a view showing a Gaussian when its peak blend weight there reaches 1/255 (--min-peak;
--sum-rule: the summed weight reaching 0.05 px, the rule before). Columns: Gaussians kept, PSNR/SSIM on the held-out capture (views
with ground truth that the fit never saw) and on the capture's own every-8th views.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splatfilm.assets.cleanup import capture_cameras_of  # noqa: E402
from splatfilm.fit import evaluate, load_capture  # noqa: E402
from splatfilm.io.gaussian_files import load_gaussians  # noqa: E402
from splatfilm.render.contributions import blend_weights, peak_weights  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", default=str(REPO / "scenes/set/fitted/set.ply"))
    ap.add_argument("--heldout", default=str(REPO / "scenes/set/heldout"))
    ap.add_argument("--capture", default=str(REPO / "scenes/set"))
    ap.add_argument("--min-peak", type=float, default=1 / 255)
    ap.add_argument("--sum-rule", action="store_true", help="count summed weights >= 0.05 px (the old rule)")
    args = ap.parse_args()

    g = load_gaussians(args.scene).to("cpu", torch.float32)
    t0 = time.perf_counter()
    if args.sum_rule:
        shown = (blend_weights(g, capture_cameras_of(args.scene), backend="cpu") >= 0.05).sum(dim=0)
    else:
        shown = (peak_weights(g, capture_cameras_of(args.scene)) >= args.min_peak).sum(dim=0)
    count_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as work:
        held = load_capture(args.heldout, Path(work) / "h")
        cap = load_capture(args.capture, Path(work) / "c")
        rows = []
        for min_views in (0, 1, 2, 3):
            kept = g.select(torch.nonzero(shown >= min_views).reshape(-1))
            h = evaluate(kept, held, list(range(len(held))), "cpu")
            c = evaluate(kept, cap, list(range(0, len(cap), 8)), "cpu")
            rows.append((min_views, len(kept), h["psnr"], h["ssim"], c["psnr"]))
    print(f"{args.scene}: {len(g)} Gaussians, blend weights from its capture views in {count_s:.0f} s")
    print(f"{'min_views':>9} {'kept':>7} {'removed':>8} {'held-out PSNR':>14} {'SSIM':>7} {'capture PSNR':>13}")
    for min_views, kept, hp, hs, cp in rows:
        label = "none" if min_views == 0 else str(min_views)
        print(f"{label:>9} {kept:7d} {len(g) - kept:8d} {hp:14.3f} {hs:7.4f} {cp:13.3f}")


if __name__ == "__main__":
    main()
