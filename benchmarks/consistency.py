"""What persistence buys: the warping error E_warp of frames rendered from one world, next to
the same measure for two independently re-fitted copies of the scene.

    python benchmarks/consistency.py                       # the bundled demo film
    python benchmarks/consistency.py --fit-steps 1500 --width 320

E_warp (splatfilm.consistency): frame A's pixels are lifted with its rendered depth, moved
into frame B by the known cameras, and compared with B's colour over co-visible,
non-occluded pixels (mean squared RGB difference, [0,1] units; lower is better).

Rows:
- one world, consecutive frames: every pair of neighbouring frames of every shot;
- one world, across shots: frame pairs from two different shots that see the same part of
  the set (co-visibility >= 10%);
- re-fitted copies: the same pairs, but the two frames of a pair come from two separate fits
  of the set (same photos, different seeds), the way a generator re-invents a scene for
  every clip. Both copies are fitted here from photos rendered of the bundled set.
Only the static set is measured (the character is hidden), so the numbers isolate the scene.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splatfilm.scene.cameras import Cameras  # noqa: E402
from splatfilm.render.consistency import warp_error  # noqa: E402
from splatfilm.film import parse_film  # noqa: E402
from splatfilm.fit import FitConfig, run_fit  # noqa: E402
from splatfilm.io.images import write_png  # noqa: E402
from splatfilm.scene.gaussians import Gaussians  # noqa: E402
from splatfilm.io.camera_files import read_transforms_json  # noqa: E402
from splatfilm.io.gaussian_files import load_gaussians  # noqa: E402
from splatfilm.render import rasterization  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def shot_frames(film, every: int, width: int) -> list[tuple[str, Cameras]]:
    """(shot name, cameras of every `every`-th frame at `width` pixels wide) per shot."""
    out = []
    for fs in film.shots:
        cams = fs.shot.cameras()
        idx = np.arange(0, len(cams), every)
        h = round(width * film.height / film.width)
        out.append((fs.name, cams[idx].resized(width, h)))
    return out


def render_views(g: Gaussians, cams: Cameras, background) -> list[tuple]:
    views = []
    for i in range(len(cams)):
        vm, K = cams[i].to_tensors()
        with torch.no_grad():
            o = rasterization(g, vm, K, int(cams.widths[i]), int(cams.heights[i]), backend="cpu", background=background)
        views.append((o.rgb[0].numpy(), o.depth[0].numpy(), o.alpha[0].numpy(), cams[i]))
    return views


def pair_errors(views_a, views_b, pairs) -> tuple[float, float, int]:
    """Mean E_warp (and mean co-visibility) over pairs (i, j): frame i of views_a into frame j of views_b."""
    errs, covs = [], []
    for i, j in pairs:
        ra, da, aa, ca = views_a[i]
        rb, db, _, cb = views_b[j]
        w = warp_error(ra, da, ca, rb, db, cb, alpha_a=aa)
        if w.covisible >= 0.10:
            errs.append(w.e_warp)
            covs.append(w.covisible)
    return (float(np.mean(errs)) if errs else float("nan")), (float(np.mean(covs)) if covs else 0.0), len(errs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--film", default=str(ROOT / "scenes" / "demo" / "film.yaml"))
    parser.add_argument("--asset", default="set", help="the film asset to measure (static)")
    parser.add_argument("--capture-cameras", default=str(ROOT / "scenes" / "demo" / "transforms.json"),
                        help="cameras to photograph the asset from for the re-fits")
    parser.add_argument("--fit-steps", type=int, default=1500)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--every", type=int, default=6, help="use every Nth frame of each shot")
    args = parser.parse_args()

    t0 = time.perf_counter()
    film = parse_film(args.film)
    asset = film.world.assets[args.asset]
    world_set = asset.world_transform(0.0).transform_gaussians(asset.gaussians)
    shots = shot_frames(film, args.every, args.width)
    bg = film.background

    # Frame list across shots, with (shot index, frame index) labels.
    flat = [(s, k) for s, (_, cams) in enumerate(shots) for k in range(len(cams))]
    all_cams = Cameras.concat([c for _, c in shots])
    consecutive = [(a, a + 1) for a in range(len(flat) - 1) if flat[a][0] == flat[a + 1][0]]
    cross = [(a, b) for a, b in itertools.product(range(len(flat)), repeat=2) if flat[a][0] < flat[b][0]]

    one = render_views(world_set, all_cams, bg)
    rows = [("one world", "consecutive frames", *pair_errors(one, one, consecutive)),
            ("one world", "across shots", *pair_errors(one, one, cross))]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # Photos of the set from the capture cameras (in the set's own frame), then two fits.
        cams = read_transforms_json(args.capture_cameras)
        (tmp / "cap" / "images").mkdir(parents=True)
        for i in range(len(cams)):
            vm, K = cams[i].to_tensors()
            with torch.no_grad():
                o = rasterization(asset.gaussians, vm, K, int(cams.widths[i]), int(cams.heights[i]), backend="cpu")
            write_png(tmp / "cap" / cams.names[i], o.rgb[0].numpy())
        (tmp / "cap" / "transforms.json").write_text(Path(args.capture_cameras).read_text())
        copies = []
        for seed in (0, 1):
            cfg = FitConfig(steps=args.fit_steps, backend="cpu", seed=seed, checkpoint_every=0, test_every=0)
            run_fit(tmp / "cap", tmp / f"fit{seed}.ply", cfg, progress=False)
            fitted = load_gaussians(tmp / f"fit{seed}.ply")
            copies.append(asset.world_transform(0.0).transform_gaussians(fitted))
        v0 = render_views(copies[0], all_cams, bg)
        v1 = render_views(copies[1], all_cams, bg)
        rows.append(("fit copy 0 alone", "consecutive frames", *pair_errors(v0, v0, consecutive)))
        rows.append(("fit copy 0 alone", "across shots", *pair_errors(v0, v0, cross)))
        rows.append(("two re-fitted copies", "consecutive frames", *pair_errors(v0, v1, consecutive)))
        rows.append(("two re-fitted copies", "across shots", *pair_errors(v0, v1, cross)))

    print(f"film {args.film}, asset {args.asset}, {len(all_cams)} frames at {args.width} px wide, "
          f"re-fits of {args.fit_steps} steps, {time.perf_counter() - t0:.0f} s")
    print("| frames from | pairs | E_warp (x1e-3) | co-visible | pairs counted |")
    print("|---|---|---|---|---|")
    for src, kind, e, cov, n in rows:
        print(f"| {src} | {kind} | {e * 1e3:.3f} | {cov:.2f} | {n} |")
    print(json.dumps({f"{s} / {k}": e for s, k, e, _, _ in rows}))


if __name__ == "__main__":
    main()
