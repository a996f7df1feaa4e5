"""splatfilm's SOG writer on the bundled film set, and against PlayCanvas's splat-transform.

    python benchmarks/sog.py [--asset scenes/set/fitted/set.ply] [--splat-transform "npx splat-transform"]
                             [--theirs]
    python benchmarks/sog.py --synthetic 1000000 [--degree 3]

Writes the asset as a SOG (`splatfilm.io.sog.write_sog`), reads it back, and prints the time,
the size and what the round trip moved: positions (m), log scales, rotation angle (degrees),
DC colour (as 0.2821 * sh0, the colour it adds), opacity (sigmoid) and the higher SH bands.
With splat-transform (a command; default `splat-transform` on PATH, else none) it also
decodes splatfilm's SOG to a PLY and compares that with splatfilm's own reading of it (the
same numbers are the check that the file means to splat-transform what it means to us), and
with --theirs encodes the asset itself (minutes on a CPU: its SH k-means) and prints its
size and time, with its errors measured on the Gaussians matched back by position (its
files are in Morton order). Nothing here needs a network; without splat-transform only the
first part runs. --synthetic N writes N random Gaussians instead (SH coefficients independent
normal noise, a palette's worst case) and also prints the process's peak resident memory; run one
size per process, so that the peak is that size's.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from splatfilm.io.gaussian_files import load_gaussians
from splatfilm.io.sog import write_sog
from splatfilm.scene.gaussians import Gaussians

ROOT = Path(__file__).resolve().parents[1]


def errors(got: Gaussians, want: Gaussians) -> str:
    """What `got` moved from `want`, row for row: max (and mean) per quantity."""
    def stats(d: torch.Tensor) -> str:
        return f"{d.max().item():.3g} ({d.mean().item():.3g})"
    qa = want.quats / want.quats.norm(dim=1, keepdim=True)
    qb = got.quats / got.quats.norm(dim=1, keepdim=True)
    angle = torch.rad2deg(2 * torch.acos((qa * qb).sum(1).abs().clamp(max=1)))
    parts = [f"position {stats((got.means - want.means).norm(dim=1))}",
             f"log scale {stats((got.scales - want.scales).abs())}",
             f"rotation {stats(angle)} deg",
             f"colour {stats(0.28209479 * (got.sh0 - want.sh0).abs())}",
             f"opacity {stats((torch.sigmoid(got.opacities) - torch.sigmoid(want.opacities)).abs())}"]
    if got.sh_degree:
        parts.append(f"SH 1-{got.sh_degree} {stats((got.shN - want.shN[:, :got.shN.shape[1]]).abs())}")
    return "max (mean): " + ", ".join(parts)


def synthetic(n: int, degree: int, seed: int = 0) -> Gaussians:
    """n random float32 Gaussians: means ~ N(0, 2^2) m, log scales ~ N(-4, 1), opacities and DC
    colour spread over their ranges, higher SH bands independent N(0, 0.15^2)."""
    g = torch.Generator().manual_seed(seed)
    return Gaussians(means=torch.randn(n, 3, generator=g) * 2.0, quats=torch.randn(n, 4, generator=g),
                     scales=torch.randn(n, 3, generator=g) - 4.0, opacities=torch.randn(n, generator=g) * 3.0,
                     sh0=torch.randn(n, 1, 3, generator=g) * 0.8,
                     shN=torch.randn(n, (degree + 1) ** 2 - 1, 3, generator=g) * 0.15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--asset", default=str(ROOT / "scenes" / "set" / "fitted" / "set.ply"))
    ap.add_argument("--splat-transform", default="splat-transform" if shutil.which("splat-transform") else None,
                    help="the command that runs PlayCanvas's splat-transform")
    ap.add_argument("--theirs", action="store_true", help="also time splat-transform's own SOG of the asset")
    ap.add_argument("--synthetic", type=int, metavar="N", help="N random Gaussians in place of the asset")
    ap.add_argument("--degree", type=int, default=3, help="the random Gaussians' SH degree (with --synthetic)")
    args = ap.parse_args()
    if args.synthetic:
        source = synthetic(args.synthetic, args.degree)
        print(f"{args.synthetic} random Gaussians, SH degree {args.degree}")
        args.splat_transform = None
    else:
        source = load_gaussians(args.asset)
        print(f"{args.asset}: {len(source)} Gaussians, SH degree {source.sh_degree}, "
              f"{Path(args.asset).stat().st_size / 1e6:.2f} MB")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        ours = Path(tmp) / "ours.sog"
        t0, cpu0 = time.perf_counter(), time.process_time()
        write_sog(ours, source)
        t1, cpu = time.perf_counter(), time.process_time() - cpu0
        back = load_gaussians(ours)
        t2 = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"splatfilm SOG: {ours.stat().st_size / 1e6:.2f} MB, write {t1 - t0:.2f} s ({cpu:.1f} s CPU), "
              f"read {t2 - t1:.2f} s, "
              f"peak RSS {peak:.0f} MB ({peak - rss_before:+.0f} over the Gaussians loaded); {errors(back, source)}")
        if not args.splat_transform:
            print("splat-transform: not found (--splat-transform CMD); cross-tool checks skipped")
            return
        tool = shlex.split(args.splat_transform)
        decoded = Path(tmp) / "ours.decoded.ply"
        subprocess.run([*tool, "-q", "-w", str(ours), str(decoded)], check=True)
        theirs_reading = load_gaussians(decoded)
        same = {f: float((getattr(back, f) - getattr(theirs_reading, f)).abs().max())
                for f in ("means", "quats", "scales", "opacities", "sh0", "shN")}
        print(f"splat-transform's decoding of splatfilm's SOG against splatfilm's: max |difference| {same}")
        if not args.theirs:
            return
        theirs = Path(tmp) / "theirs.sog"
        t0 = time.perf_counter()
        subprocess.run([*tool, "-q", "-w", "-g", "cpu", args.asset, str(theirs)], check=True)
        t1 = time.perf_counter()
        got = load_gaussians(theirs)
        from scipy.spatial import cKDTree

        order = cKDTree(source.means.numpy()).query(got.means.numpy())[1]
        unique = np.flatnonzero(np.bincount(order, minlength=len(source))[order] == 1)
        print(f"splat-transform SOG: {theirs.stat().st_size / 1e6:.2f} MB, write {t1 - t0:.2f} s (CPU); on the "
              f"{len(unique)} Gaussians matched back by position alone, "
              f"{errors(got.select(torch.from_numpy(unique)), source.select(torch.from_numpy(order[unique])))}")


if __name__ == "__main__":
    main()
