"""SPZ and SOG against PLY on the bundled assets: file size and the render PSNR of a round trip.

    python benchmarks/spz.py [--size 320x180] [--views 8] [--backend cpu]

Each asset (the fitted film set, the explorer, the crate) is written as PLY, `.splat`, SPZ
version 2, SPZ version 3 and PlayCanvas SOG (version 2), read back, and rendered from --views
of the set's capture cameras (scenes/set/transforms.json, evenly picked, resized to --size; the
character and the crate from cameras on a ring around them looking at their centre). PSNR is against the render of the PLY
itself (the lossless reference), over all views' pixels (black background; the reference row
says how much of the frame the asset covers); the .splat row shows what the older
compact format keeps (degree-0 colour only). Sizes are of the files as written.
"""

from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from splatfilm.io.camera_files import read_transforms_json
from splatfilm.io.gaussian_files import load_gaussians
from splatfilm.io.ply import write_ply
from splatfilm.io.sog import write_sog
from splatfilm.io.splat import write_splat
from splatfilm.io.spz import write_spz
from splatfilm.render import rasterization
from splatfilm.render.metrics import psnr_from_mse
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import look_at_rotation

ROOT = Path(__file__).resolve().parents[1] / "scenes"
ASSETS = {"set": ROOT / "set" / "fitted" / "set.ply", "explorer": ROOT / "character" / "fitted" / "explorer.ply",
          "crate": ROOT / "demo" / "crate.ply"}


def ring_cameras(g: Gaussians, views: int, width: int, height: int) -> Cameras:
    """`views` cameras on a ring around the Gaussians' opaque centre, 35 mm on full frame."""
    keep = torch.sigmoid(g.opacities) > 0.5
    pts = g.means[keep].double().numpy()
    lo, hi = np.percentile(pts, 2, axis=0), np.percentile(pts, 98, axis=0)
    centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
    up = np.array([0.0, 0.0, 1.0]) if (hi - lo)[2] >= (hi - lo)[1] else np.array([0.0, 1.0, 0.0])
    c2w = []
    for k in range(views):
        a = 2 * math.pi * k / views
        side = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
        side /= np.linalg.norm(side)
        other = np.cross(up, side)
        eye = centre + 1.2 * radius * (math.cos(a) * side + math.sin(a) * other) + 0.3 * radius * up
        m = np.eye(4)
        m[:3, :3] = look_at_rotation(eye, centre, up)
        m[:3, 3] = eye
        c2w.append(m)
    f = 35 / 36 * width
    K = np.tile([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]], (views, 1, 1))
    return Cameras.from_c2w_opencv(np.stack(c2w), K, width, height)


def capture_cameras(views: int, width: int, height: int) -> Cameras:
    cams = read_transforms_json(ROOT / "set" / "transforms.json")
    pick = np.linspace(0, len(cams) - 1, views).round().astype(int)
    return cams[list(pick)].resized(width, height)


def renders(g: Gaussians, cams: Cameras, backend: str) -> tuple[torch.Tensor, float]:
    """RGB [V,H,W,3] and the share of pixels the Gaussians cover (alpha > 0.5)."""
    out, cover = [], []
    for i in range(len(cams)):
        viewmats, Ks = cams[i].to_tensors(torch.float32)
        with torch.no_grad():
            r = rasterization(g, viewmats, Ks, int(cams.widths[i]), int(cams.heights[i]), backend=backend,
                              background=(0.0, 0.0, 0.0))
        out.append(r.rgb[0])
        cover.append(float((r.alpha[0] > 0.5).float().mean()))
    return torch.stack(out), float(np.mean(cover))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--save", metavar="FOLDER", help="write each asset's first reference view there (PNG)")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(f"# {platform.machine()} {platform.system()}, torch {torch.__version__}, backend {args.backend}, "
          f"{args.views} views at {width}x{height}, {time.strftime('%Y-%m-%d')}")
    print("| asset | Gaussians | SH | format | size MB | PLY / size | write s | read s | PSNR dB vs PLY render |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in ASSETS.items():
            g = load_gaussians(path)
            cams = capture_cameras(args.views, width, height) if name == "set" else \
                ring_cameras(g, args.views, width, height)
            writers = {"PLY": (".ply", write_ply), ".splat": (".splat", write_splat),
                       "SPZ v2": (".spz", lambda p, x: write_spz(p, x, version=2)),
                       "SPZ v3": (".spz", lambda p, x: write_spz(p, x, version=3)), "SOG": (".sog", write_sog)}
            reference = None
            ply_size = None
            for label, (ext, write) in writers.items():
                out = Path(tmp) / f"{name}.{label.replace(' ', '').replace('.', '')}{ext}"
                t0 = time.perf_counter()
                write(out, g)
                t1 = time.perf_counter()
                back = load_gaussians(out)
                t2 = time.perf_counter()
                size = out.stat().st_size
                rgb, cover = renders(back, cams, args.backend)
                if reference is None:
                    reference, ply_size = rgb, size
                    score = f"reference ({100 * cover:.0f}% of pixels covered)"
                    if args.save:
                        from splatfilm.io.images import write_png

                        write_png(Path(args.save) / f"{name}.png", rgb[0].double().numpy())
                else:
                    mse = float(((rgb - reference) ** 2).mean())
                    score = f"{psnr_from_mse(mse):.2f}" if mse > 0 else "inf"
                print(f"| {name} | {len(g)} | {g.sh_degree} | {label} | {size / 1e6:.2f} | {ply_size / size:.1f}x | "
                      f"{t1 - t0:.2f} | {t2 - t1:.2f} | {score} |", flush=True)


if __name__ == "__main__":
    main()
