"""Do imported assets read as solid? Alpha coverage of an asset's silhouette from every side.

    python benchmarks/silhouette.py                               # scenes/demo/hero.glb and crate.obj
    python benchmarks/silhouette.py --mesh M.glb --counts 25000 100000 400000

For each mesh and Gaussian count: `import-mesh` it, then render the asset from 8 azimuths
(and 2 elevations) at 640x360 with it filling 80% of the frame height, and ray-cast the mesh
itself (open3d) for its true silhouette. Within the silhouette (eroded by one pixel, so the
soft edge does not count), report the share of pixels the splats leave see-through (alpha
below 0.9) and the 1st percentile of alpha. A solid asset has 0% and an alpha near 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splatfilm.assets.mesh_import import import_mesh  # noqa: E402
from splatfilm.assets.meshing import look_at_viewmat  # noqa: E402
from splatfilm.assets.open3d_loader import load_open3d  # noqa: E402
from splatfilm.io.gaussian_files import load_gaussians  # noqa: E402
from splatfilm.render import rasterization  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
W, H = 640, 360


def views(lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(world-to-camera [4,4], K [3,3]) around the box lo..hi: 8 azimuths x 2 elevations."""
    centre, size = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
    f = 0.8 * H / (size / 2.5)  # the asset fills about 80% of the frame height at distance 2.5 * size
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    out = []
    for elev in (10.0, 40.0):
        for az in range(0, 360, 45):
            a, e = np.radians(az), np.radians(elev)
            eye = centre + 2.5 * size * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])
            out.append((look_at_viewmat(eye, centre, np.array([0.0, 0.0, 1.0])), K))
    return out


def mesh_mask(scene, viewmat: np.ndarray, K: np.ndarray) -> np.ndarray:
    """[H,W] bool: pixels whose ray through the centre hits the mesh."""
    o3d = load_open3d()
    c2w = np.linalg.inv(viewmat)
    j, i = np.mgrid[0:H, 0:W]
    dirs = np.stack([(i + 0.5 - K[0, 2]) / K[0, 0], (j + 0.5 - K[1, 2]) / K[1, 1], np.ones_like(i, float)], -1)
    dirs = dirs @ c2w[:3, :3].T
    rays = np.concatenate([np.broadcast_to(c2w[:3, 3], dirs.shape), dirs], -1).reshape(-1, 6).astype(np.float32)
    hit = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
    return np.isfinite(hit).reshape(H, W)


def erode(mask: np.ndarray) -> np.ndarray:
    m = mask.copy()
    m[1:] &= mask[:-1]
    m[:-1] &= mask[1:]
    m[:, 1:] &= mask[:, :-1]
    m[:, :-1] &= mask[:, 1:]
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mesh", nargs="*", default=[str(REPO / "scenes/demo/hero.glb"), str(REPO / "scenes/demo/crate.obj")])
    ap.add_argument("--counts", nargs="*", type=int, default=[25_000, 100_000])
    args = ap.parse_args()
    o3d = load_open3d()
    print(f"{'mesh':>10} {'Gaussians':>9} {'see-through %':>13} {'alpha p1':>8} {'worst view %':>12} {'s':>5}")
    with tempfile.TemporaryDirectory() as work:
        for mesh_path in args.mesh:
            mesh = o3d.io.read_triangle_mesh(mesh_path)
            scene = o3d.t.geometry.RaycastingScene()
            scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
            v = np.asarray(mesh.vertices)
            for count in args.counts:
                t0 = time.perf_counter()
                out = Path(work) / f"{Path(mesh_path).stem}-{count}.ply"
                import_mesh(mesh_path, out, count=count)
                g = load_gaussians(out)
                holes, alphas, worst = 0, [], 0.0
                total = 0
                for viewmat, K in views(v.min(0), v.max(0)):
                    inside = erode(mesh_mask(scene, viewmat, K))
                    a = rasterization(g, torch.tensor(viewmat[None], dtype=torch.float32),
                                      torch.tensor(K[None], dtype=torch.float32), W, H,
                                      backend="cpu").alpha[0, ..., 0].numpy()
                    vals = a[inside]
                    holes += int((vals < 0.9).sum())
                    total += len(vals)
                    alphas.append(vals)
                    worst = max(worst, float((vals < 0.9).mean()) if len(vals) else 0.0)
                p1 = float(np.percentile(np.concatenate(alphas), 1))
                print(f"{Path(mesh_path).stem:>10} {len(g):9d} {100 * holes / max(total, 1):13.3f} {p1:8.3f} "
                      f"{100 * worst:12.3f} {time.perf_counter() - t0:5.0f}", flush=True)


if __name__ == "__main__":
    main()
