"""Fitting a capture that has poses but no point cloud: held-out PSNR from the capture's points
vs from the random fallback, at the same step count (issue 19, item 3).

    python benchmarks/init.py                          # all captures, 1500 steps, 160x120
    python benchmarks/init.py --captures room --steps 3000 --size 320

Captures (written to --work, reused on a rerun):
- room:  inside-out. 72 views from a ring of 0.7 m radius inside a closed 5 x 4 x 2.6 m
         textured room (furniture-sized boxes and a ball), looking outward: the cameras are
         inside the scene. Rendered from flat Gaussians with the cpu backend.
- orbit: 48 views on rings around boxes and balls standing on a textured 7 x 7 m floor.
- set:   the bundled Mitsuba film set (scenes/set; cameras in front of an open room looking
         in), its images resized to --size.
"points" starts from a point cloud: for room and orbit 6,000 surface samples seen by at
least two training cameras, jittered by 5 mm (what SfM would triangulate), for set its
shipped SfM cloud. "triangulated" strips the points, and the fit triangulates its own from
the images with the known poses; "random" strips them and turns that off, so the fit falls
back to its last resort (points placed where the views agree). Run it with another checkout first on PYTHONPATH to measure that one's
fallback (the table's `code` column says which).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: another checkout may be measured

import splatfilm  # noqa: E402
from splatfilm.fit import FitConfig, run_fit  # noqa: E402
from splatfilm.scene.cameras import Cameras  # noqa: E402
from splatfilm.scene.gaussians import Gaussians  # noqa: E402
from splatfilm.scene.sh import C0  # noqa: E402
from splatfilm.scene.transforms import look_at_rotation, rotmat_to_quat  # noqa: E402
from splatfilm.io.camera_files import write_transforms_json  # noqa: E402
from splatfilm.io.images import to_uint8  # noqa: E402
from splatfilm.render import rasterization  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# ---- synthetic scenes made of flat Gaussians ---------------------------------------------


def _noise(p: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth value noise in [0,1] [N,3] (one value per colour channel) at positions p [N,3]."""
    table = np.random.default_rng(seed).uniform(0, 1, (32, 32, 32, 3))
    q = p / cell
    i0 = np.floor(q).astype(int)
    f = q - i0
    f = f * f * (3 - 2 * f)
    out = np.zeros((len(p), 3))
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = (f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1]) * (f[:, 2] if dz else 1 - f[:, 2])
                idx = (i0 + [dx, dy, dz]) % 32
                out += w[:, None] * table[idx[:, 0], idx[:, 1], idx[:, 2]]
    return out


class _Surfaces:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.pos, self.nrm, self.col = [], [], []
        self.seed = seed

    def plane(self, origin, u, v, base, spacing=0.03, posters=0):
        """Rectangle origin + s u + t v (s, t in [0,1]), normal u x v, textured around `base`."""
        origin, u, v = map(lambda a: np.asarray(a, float), (origin, u, v))
        nu, nv = max(2, int(np.linalg.norm(u) / spacing)), max(2, int(np.linalg.norm(v) / spacing))
        s, t = np.meshgrid((np.arange(nu) + 0.5) / nu, (np.arange(nv) + 0.5) / nv, indexing="ij")
        s, t = s.ravel(), t.ravel()
        p = origin + s[:, None] * u + t[:, None] * v
        self.seed += 1
        c = np.asarray(base) * (0.65 + 0.5 * _noise(p, 0.45, self.seed).mean(1, keepdims=True))
        c = c + 0.25 * (_noise(p, 0.08, self.seed + 100) - 0.5)
        for _ in range(posters):  # printed rectangles with stripes: texture for the eye and for SfM
            s0, t0 = self.rng.uniform(0.05, 0.75, 2)
            ds, dt = self.rng.uniform(0.08, 0.2, 2)
            inside = (s > s0) & (s < s0 + ds) & (t > t0) & (t < t0 + dt)
            stripes = (np.floor((s - s0) / ds * self.rng.integers(3, 9)) % 2)[:, None]
            c1, c2 = self.rng.uniform(0, 1, (2, 3))
            c[inside] = (stripes * c1 + (1 - stripes) * c2)[inside]
        n = np.cross(u, v)
        self.pos.append(p)
        self.nrm.append(np.broadcast_to(n / np.linalg.norm(n), p.shape))
        self.col.append(np.clip(c, 0.02, 0.98))

    def box(self, lo, hi, base, spacing=0.03, posters=0):
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        d = hi - lo
        x, y, z = np.eye(3) * d
        self.plane(lo + z, x, y, base, spacing, posters)
        self.plane(lo, y, x, base, spacing)
        self.plane(lo, x, z, base, spacing, posters)
        self.plane(lo + y, z, x, base, spacing, posters)
        self.plane(lo, z, y, base, spacing, posters)
        self.plane(lo + x, y, z, base, spacing, posters)

    def ball(self, centre, radius, base, spacing=0.03):
        n = int(4 * math.pi * radius**2 / spacing**2)
        i = np.arange(n) + 0.5
        zz = 1 - 2 * i / n
        r = np.sqrt(1 - zz * zz)
        phi = math.pi * (3 - math.sqrt(5)) * i
        d = np.stack([r * np.cos(phi), r * np.sin(phi), zz], 1)
        p = np.asarray(centre) + radius * d
        self.seed += 1
        c = np.asarray(base) * (0.6 + 0.6 * _noise(p, 0.1, self.seed))
        self.pos.append(p)
        self.nrm.append(d)
        self.col.append(np.clip(c, 0.02, 0.98))

    def gaussians(self, spacing=0.03) -> Gaussians:
        p, n, c = (np.concatenate(a) for a in (self.pos, self.nrm, self.col))
        helper = np.where(np.abs(n[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
        t1 = np.cross(helper, n)
        t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
        R = np.stack([t1, np.cross(n, t1), n], axis=2)
        quats = rotmat_to_quat(torch.tensor(R, dtype=torch.float32))
        scales = np.log(np.array([0.7 * spacing, 0.7 * spacing, 0.05 * spacing]))
        t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        return Gaussians(t(p), quats, t(np.broadcast_to(scales, p.shape)), torch.full((len(p),), 4.0),
                         t((c - 0.5) / C0)[:, None, :], torch.zeros(len(p), 0, 3))


def room_scene(seed: int = 3) -> Gaussians:
    """A closed room, x in [-2.5, 2.5], y in [-2, 2], z in [0, 2.6], with furniture."""
    s = _Surfaces(seed)
    X, Y, Z = 5.0, 4.0, 2.6
    s.plane((-2.5, -2, 0), (0, Y, 0), (X, 0, 0), (0.55, 0.38, 0.22))  # floor, normal +z
    s.plane((-2.5, -2, Z), (X, 0, 0), (0, Y, 0), (0.85, 0.85, 0.8))  # ceiling, normal -z
    s.plane((-2.5, -2, 0), (X, 0, 0), (0, 0, Z), (0.75, 0.5, 0.4), posters=4)  # y = -2 wall, normal +y
    s.plane((-2.5, 2, 0), (0, 0, Z), (X, 0, 0), (0.5, 0.6, 0.7), posters=4)  # y = 2, normal -y
    s.plane((-2.5, -2, 0), (0, 0, Z), (0, Y, 0), (0.6, 0.7, 0.5), posters=3)  # x = -2.5, normal +x
    s.plane((2.5, -2, 0), (0, Y, 0), (0, 0, Z), (0.8, 0.75, 0.5), posters=3)  # x = 2.5, normal -x
    s.box((1.2, 0.8, 0), (2.2, 1.7, 0.8), (0.5, 0.3, 0.15), posters=1)  # table
    s.box((-2.2, -1.7, 0), (-1.5, -1.0, 0.6), (0.7, 0.55, 0.3), posters=1)  # crates
    s.box((-2.2, -1.7, 0.6), (-1.7, -1.2, 1.0), (0.6, 0.45, 0.25), posters=1)
    s.box((-0.4, 1.5, 0), (0.6, 1.9, 1.8), (0.3, 0.3, 0.45), posters=2)  # shelf
    s.ball((1.7, 1.2, 1.05), 0.25, (0.3, 0.5, 0.8))
    s.ball((1.6, -1.4, 0.4), 0.4, (0.8, 0.3, 0.3))
    return s.gaussians()


def orbit_scene(seed: int = 5) -> Gaussians:
    """Boxes and balls around the origin on a 7 x 7 m floor, nothing else (black beyond)."""
    s = _Surfaces(seed)
    s.plane((-3.5, -3.5, 0), (0, 7, 0), (7, 0, 0), (0.5, 0.5, 0.45), posters=6)
    s.box((-0.5, -0.4, 0), (0.3, 0.4, 0.7), (0.7, 0.5, 0.3), spacing=0.02, posters=2)
    s.box((0.35, -0.6, 0), (0.75, -0.2, 0.35), (0.3, 0.5, 0.7), spacing=0.02, posters=1)
    s.ball((0.55, 0.45, 0.3), 0.3, (0.8, 0.4, 0.3), spacing=0.02)
    s.ball((-0.1, 0.0, 0.95), 0.25, (0.4, 0.8, 0.4), spacing=0.02)
    s.box((-1.0, 0.5, 0), (-0.6, 0.9, 0.5), (0.6, 0.6, 0.2), spacing=0.02, posters=1)
    return s.gaussians()


def _cameras(eyes, targets, width, height, hfov_deg) -> Cameras:
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    R = look_at_rotation(np.asarray(eyes), np.asarray(targets))
    V = np.tile(np.eye(4), (len(eyes), 1, 1))
    V[:, :3, :3] = np.transpose(R, (0, 2, 1))
    V[:, :3, 3] = -np.einsum("nij,nj->ni", V[:, :3, :3], eyes)
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])
    return Cameras(V, K, width, height, names=[f"images/frame_{i:05d}.png" for i in range(len(eyes))])


def room_cameras(n=72, width=160, height=120) -> Cameras:
    a = 2 * np.pi * np.arange(n) / n
    eyes = np.stack([0.7 * np.cos(a), 0.7 * np.sin(a), 1.5 + 0.25 * np.sin(3 * a)], 1)
    look = a + 0.35 * np.sin(2 * a)
    targets = eyes + np.stack([np.cos(look), np.sin(look), -0.15 + 0.2 * np.cos(5 * a)], 1)
    return _cameras(eyes, targets, width, height, 70.0)


def orbit_cameras(n=48, width=160, height=120) -> Cameras:
    a = 2 * np.pi * np.arange(n) / n * 2  # two turns, at two heights
    r = np.where(np.arange(n) < n // 2, 2.6, 2.2)
    z = np.where(np.arange(n) < n // 2, 1.0, 1.9)
    eyes = np.stack([r * np.cos(a), r * np.sin(a), z], 1)
    return _cameras(eyes, np.tile([0.0, 0.0, 0.35], (n, 1)), width, height, 60.0)


def _write_points(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(xyz)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n").encode()
    rows = np.zeros(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    rows["x"], rows["y"], rows["z"] = xyz.T
    rows["r"], rows["g"], rows["b"] = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8).T
    path.write_bytes(header + rows.tobytes())


def write_synthetic(folder: Path, gs: Gaussians, cams: Cameras, n_points: int = 6000, test_every: int = 8,
                    seed: int = 0) -> None:
    """Render `gs` from `cams` into a nerfstudio folder with a `sparse_pc.ply` of surface
    samples that at least two training cameras see (in front, inside the image)."""
    if (folder / "transforms.json").exists():
        return
    (folder / "images").mkdir(parents=True, exist_ok=True)
    depth_maps = []
    for i in range(len(cams)):
        vm, K = cams[i].to_tensors()
        out = rasterization(gs, vm, K, int(cams.widths[i]), int(cams.heights[i]), backend="cpu")
        iio.imwrite(folder / cams.names[i], to_uint8(out.rgb[0].numpy()))
        depth_maps.append(out)
    p = gs.means.numpy().astype(np.float64)
    colours = np.clip(gs.sh0[:, 0].numpy() * C0 + 0.5, 0, 1)
    seen = np.zeros(len(p), int)
    for i in range(len(cams)):
        if test_every and i % test_every == 0:
            continue
        pc = p @ cams.viewmats[i, :3, :3].T + cams.viewmats[i, :3, 3]
        z = np.maximum(pc[:, 2], 1e-9)
        u = cams.Ks[i, 0, 0] * pc[:, 0] / z + cams.Ks[i, 0, 2]
        v = cams.Ks[i, 1, 1] * pc[:, 1] / z + cams.Ks[i, 1, 2]
        seen += (pc[:, 2] > 0.05) & (u >= 0) & (u < cams.widths[i]) & (v >= 0) & (v < cams.heights[i])
    rng = np.random.default_rng(seed)
    pick = rng.choice(np.flatnonzero(seen >= 2), n_points, replace=False)
    _write_points(folder / "sparse_pc.ply", p[pick] + rng.normal(0, 0.005, (n_points, 3)), colours[pick])
    write_transforms_json(folder / "transforms.json", cams, {"ply_file_path": "sparse_pc.ply"})


def resized_set(folder: Path, size: int) -> None:
    """scenes/set with its images resized to `size` pixels wide (its SfM cloud kept)."""
    if (folder / "transforms.json").exists():
        return
    from splatfilm.fit import load_capture

    cap = load_capture(ROOT / "scenes" / "set", folder / "work", max_size=size)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name, im in zip(cap.cameras.names, cap.images):
        iio.imwrite(folder / name, im)
    shutil.copy(ROOT / "scenes" / "set" / "sparse_pc.ply", folder / "sparse_pc.ply")
    write_transforms_json(folder / "transforms.json", cap.cameras, {"ply_file_path": "sparse_pc.ply"})


def without_points(folder: Path) -> Path:
    """A copy of the capture's transforms.json without `ply_file_path` (images shared)."""
    bare = folder.parent / (folder.name + "-nopoints")
    bare.mkdir(exist_ok=True)
    meta = json.loads((folder / "transforms.json").read_text())
    meta.pop("ply_file_path", None)
    (bare / "transforms.json").write_text(json.dumps(meta))
    if not (bare / "images").exists():
        (bare / "images").symlink_to((folder / "images").resolve())
    return bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", default="room,orbit,set", help="comma-separated: room, orbit, set")
    parser.add_argument("--inits", default="points,triangulated,random",
                        help="comma-separated: points, triangulated, random")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--size", type=int, default=160, help="image width in pixels (default 160)")
    parser.add_argument("--sh-degree", type=int, default=1)
    parser.add_argument("--work", default="/tmp/splatfilm-bench-init", help="where captures and fits go")
    args = parser.parse_args()

    work = Path(args.work)
    code = str(Path(splatfilm.__file__).resolve().parent.parent)
    rows = []
    for name in args.captures.split(","):
        folder = work / f"{name}-{args.size}"
        h = args.size * 3 // 4
        if name == "room":
            write_synthetic(folder, room_scene(), room_cameras(72, args.size, h))
        elif name == "orbit":
            write_synthetic(folder, orbit_scene(), orbit_cameras(48, args.size, h))
        elif name == "set":
            resized_set(folder, args.size)
        else:
            raise SystemExit(f"unknown capture {name!r}")
        for init in args.inits.split(","):
            data = folder if init == "points" else without_points(folder)
            cfg = FitConfig(steps=args.steps, backend="cpu", sh_degree=args.sh_degree, checkpoint_every=0)
            out = work / "fits" / Path(code).name / f"{name}-{args.size}-{init}-{args.steps}" / "fit.ply"
            out.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            sc = run_fit(data, out, cfg, progress=False, triangulate=init == "triangulated")
            rows.append((name, init, args.steps, sc["num_gaussians"], sc["metrics"]["test"]["psnr"],
                         sc["metrics"]["test"]["ssim"], time.perf_counter() - t0))
            print(f"| {name} | {init} | {args.steps} | {rows[-1][3]} | {rows[-1][4]:.2f} | {rows[-1][5]:.3f} | "
                  f"{rows[-1][6]:.0f} |", flush=True)
    print(f"\ncode: {code}; images {args.size} px wide; sh degree {args.sh_degree}; cpu backend")
    print("| capture | init | steps | Gaussians | held-out PSNR | SSIM | s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.2f} | {r[5]:.3f} | {r[6]:.0f} |")


if __name__ == "__main__":
    main()
