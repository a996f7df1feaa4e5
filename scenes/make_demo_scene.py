"""Build the bundled demo scene: a small film set made directly of Gaussians.

A corner of a room (floor, two walls), a table with a ball and a vase on it, and a simple
standing figure, in a Z-up world in metres (the film-world convention). Surfaces are
covered by flat Gaussians with Lambert shading baked into their colour; the ball has a
view-dependent sheen in SH band 1. Also writes 24 orbiting cameras as a nerfstudio
transforms.json (320x240). Deterministic: the same seed writes the same files.

    python scenes/make_demo_scene.py            # writes scenes/demo/scene.ply, transforms.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from splatfilm.scene.gaussians import Gaussians
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.io.images import srgb_to_linear, to_uint8
from splatfilm.scene.transforms import look_at_rotation, rotmat_to_quat
from splatfilm.assets.sidecar import Sidecar
from splatfilm.scene.sh import C0

LIGHT = np.array([0.4, -0.6, 0.7]) / np.linalg.norm([0.4, -0.6, 0.7])


def _frame_from_normal(n: np.ndarray) -> np.ndarray:
    """Rotation matrices [N,3,3] whose third column is the unit normal n [N,3]."""
    helper = np.where(np.abs(n[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    t1 = np.cross(helper, n)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    return np.stack([t1, t2, n], axis=2)


class Builder:
    """Collects surface samples: position, normal, base colour, footprint radius."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, pos, normal, color, radius, sheen=0.0):
        n = len(pos)
        self.parts.append((pos, normal, color, np.full(n, radius), np.full(n, sheen)))

    def plane(self, origin, u, v, nu, nv, color_fn, spacing):
        """Rectangle origin + s*u + t*v, s,t in [0,1]; normal u x v."""
        origin, u, v = map(np.asarray, (origin, u, v))
        s, t = np.meshgrid((np.arange(nu) + 0.5) / nu, (np.arange(nv) + 0.5) / nv, indexing="ij")
        s = s.ravel() + self.rng.uniform(-0.3, 0.3, s.size) / nu
        t = t.ravel() + self.rng.uniform(-0.3, 0.3, t.size) / nv
        pos = origin + s[:, None] * u + t[:, None] * v
        normal = np.cross(u, v)
        normal = np.broadcast_to(normal / np.linalg.norm(normal), pos.shape)
        self.add(pos, normal, color_fn(pos), spacing)

    def box(self, lo, hi, color, spacing):
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        d = hi - lo
        n = lambda a: max(2, int(round(a / spacing)))  # noqa: E731
        col = lambda p: np.broadcast_to(color, p.shape)  # noqa: E731
        x, y, z = np.eye(3)
        self.plane(lo + [0, 0, d[2]], x * d[0], y * d[1], n(d[0]), n(d[1]), col, spacing)  # top
        self.plane(lo, y * d[1], x * d[0], n(d[1]), n(d[0]), col, spacing)  # bottom
        self.plane(lo, x * d[0], z * d[2], n(d[0]), n(d[2]), col, spacing)  # front (-y)
        self.plane(lo + [0, d[1], 0], z * d[2], x * d[0], n(d[2]), n(d[0]), col, spacing)  # back
        self.plane(lo, z * d[2], y * d[1], n(d[2]), n(d[1]), col, spacing)  # -x
        self.plane(lo + [d[0], 0, 0], y * d[1], z * d[2], n(d[1]), n(d[2]), col, spacing)  # +x

    def sphere(self, center, radius, color_fn, spacing, sheen=0.0):
        count = int(4 * math.pi * radius**2 / spacing**2)
        i = np.arange(count) + 0.5
        z = 1 - 2 * i / count
        r = np.sqrt(1 - z * z)
        phi = math.pi * (3 - math.sqrt(5)) * i
        normal = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
        pos = np.asarray(center) + radius * normal
        self.add(pos, normal, color_fn(pos, normal), spacing, sheen)

    def cylinder(self, center, radius, height, color, spacing):
        nu = max(8, int(2 * math.pi * radius / spacing))
        nv = max(2, int(height / spacing))
        a, h = np.meshgrid(np.arange(nu) / nu * 2 * math.pi, (np.arange(nv) + 0.5) / nv * height, indexing="ij")
        normal = np.stack([np.cos(a.ravel()), np.sin(a.ravel()), np.zeros(a.size)], axis=1)
        pos = np.asarray(center) + radius * normal + np.outer(h.ravel(), [0, 0, 1])
        self.add(pos, normal, np.broadcast_to(color, pos.shape), spacing)
        # cap
        k = max(4, int(math.pi * radius**2 / spacing**2))
        rr = radius * np.sqrt((np.arange(k) + 0.5) / k)
        aa = np.arange(k) * math.pi * (3 - math.sqrt(5))
        cap = np.asarray(center) + np.stack([rr * np.cos(aa), rr * np.sin(aa), np.full(k, height)], axis=1)
        self.add(cap, np.broadcast_to([0.0, 0.0, 1.0], cap.shape), np.broadcast_to(color, cap.shape), spacing)

    def gaussians(self) -> Gaussians:
        pos, normal, color, radius, sheen = (np.concatenate(x) for x in zip(*self.parts))
        shade = 0.35 + 0.65 * np.clip(normal @ LIGHT, 0.0, None)
        rgb = np.clip(color * shade[:, None], 0.0, 1.0)
        R = _frame_from_normal(normal)
        quats = rotmat_to_quat(torch.from_numpy(R)).numpy()
        scales = np.stack([radius * 0.6, radius * 0.6, np.full_like(radius, 0.002)], axis=1)
        opac = np.full(len(pos), 0.95)
        sh = np.zeros((len(pos), 4, 3))
        sh[:, 0] = (rgb - 0.5) / C0
        # Band-1 sheen facing the light: brighter seen from the light's side.
        l1 = np.array([-LIGHT[1], LIGHT[2], -LIGHT[0]])  # band-1 basis order (y, z, x), signs of sh_basis
        sh[:, 1:4] = -(sheen[:, None, None] * l1[None, :, None]) / 0.4886025119029199 * 0.5
        t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        return Gaussians.from_activated(t(pos), t(quats), t(scales), t(opac), sh=t(sh))


def build_scene(seed: int = 0) -> Gaussians:
    rng = np.random.default_rng(seed)
    b = Builder(rng)
    sp = 0.035

    def floor_color(p):
        checker = (np.floor(p[:, 0] / 0.5) + np.floor(p[:, 1] / 0.5)) % 2
        grain = 0.06 * np.sin(p[:, 0] * 40 + 3 * np.sin(p[:, 1] * 7))
        base = np.where(checker[:, None] > 0, [0.55, 0.38, 0.22], [0.42, 0.27, 0.15])
        return np.clip(base + grain[:, None], 0, 1)

    def wall_color(p):
        stripe = (np.floor(p[:, 0] * 4 + p[:, 1] * 4) % 2)[:, None]
        dado = (p[:, 2] < 0.9)[:, None]
        return np.where(dado, [0.25, 0.35, 0.45], np.where(stripe > 0, [0.85, 0.8, 0.68], [0.78, 0.72, 0.6]))

    b.plane([-2, -2, 0], [4, 0, 0], [0, 4, 0], int(4 / sp), int(4 / sp), floor_color, sp)
    b.plane([-2, 2, 0], [4, 0, 0], [0, 0, 2.4], int(4 / sp), int(2.4 / sp), wall_color, sp)  # back wall, faces -y
    b.plane([-2, -2, 0], [0, 4, 0], [0, 0, 2.4], int(4 / sp), int(2.4 / sp), wall_color, sp)  # left wall, faces +x
    # The rest of the room, behind the cameras (seen by reverse angles): floor, right and front walls.
    far = 0.05
    b.plane([2, -3.4, 0], [1.4, 0, 0], [0, 5.4, 0], int(1.4 / far), int(5.4 / far), floor_color, far)
    b.plane([-2, -3.4, 0], [4, 0, 0], [0, 1.4, 0], int(4 / far), int(1.4 / far), floor_color, far)
    b.plane([3.4, -3.4, 0], [0, 0, 2.4], [0, 5.4, 0], int(2.4 / far), int(5.4 / far), wall_color, far)  # faces -x
    b.plane([-2, -3.4, 0], [0, 0, 2.4], [5.4, 0, 0], int(2.4 / far), int(5.4 / far), wall_color, far)  # faces +y
    # A door in the front wall and a picture on the right wall.
    b.plane([0.2, -3.39, 0.0], [0, 0, 2.0], [0.9, 0, 0], 40, 18, lambda p: np.broadcast_to([0.35, 0.2, 0.1], p.shape), far)
    b.plane([3.39, -1.0, 1.1], [0, 0, 0.7], [0, 1.0, 0], 14, 20,
            lambda p: np.stack([0.2 + 0.6 * (np.sin(p[:, 1] * 9) > 0), 0.5 + 0.3 * np.cos(p[:, 2] * 8),
                                np.full(len(p), 0.3)], 1), far)
    # A window on the back wall: a light panel standing slightly proud of it.
    b.plane([0.6, 1.99, 1.1], [0.9, 0, 0], [0, 0, 0.8], 26, 23, lambda p: np.broadcast_to([0.75, 0.9, 1.0], p.shape), sp)

    wood = np.array([0.45, 0.25, 0.12])
    b.box([-0.6, -0.35, 0.72], [0.6, 0.35, 0.77], wood, 0.025)  # table top
    for x in (-0.55, 0.5):
        for y in (-0.3, 0.25):
            b.box([x, y, 0.0], [x + 0.05, y + 0.05, 0.72], wood * 0.8, 0.025)
    b.sphere([-0.25, 0.0, 0.89], 0.12, lambda p, n: np.broadcast_to([0.85, 0.12, 0.1], p.shape), 0.012, sheen=0.35)
    b.cylinder([0.25, 0.05, 0.77], 0.07, 0.25, np.array([0.15, 0.55, 0.3]), 0.012)

    # A standing figure: legs, body, head.
    fx, fy = 1.1, -0.6
    b.cylinder([fx - 0.07, fy, 0.0], 0.06, 0.8, np.array([0.2, 0.22, 0.45]), 0.015)
    b.cylinder([fx + 0.07, fy, 0.0], 0.06, 0.8, np.array([0.2, 0.22, 0.45]), 0.015)
    b.cylinder([fx, fy, 0.8], 0.17, 0.55, np.array([0.85, 0.6, 0.1]), 0.015)
    b.sphere([fx, fy, 1.52], 0.13, lambda p, n: np.broadcast_to([0.9, 0.7, 0.55], p.shape), 0.012)
    return b.gaussians()


def _part(mesh, color):
    import trimesh

    # glTF vertex colours are linear (its specification); these colours are picked as sRGB.
    rgba = np.r_[to_uint8(srgb_to_linear(color)), 255].astype(np.uint8)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile(rgba, (len(mesh.vertices), 1)))
    return mesh


def build_hero_mesh(path: Path) -> None:
    """The demo character as a mesh, the way an artist would hand one over: a GLB in glTF's
    convention (metres, +y up, facing +z), 1.75 m tall, vertex coloured. The Gaussian asset is
    made from it by `splatfilm import-mesh` (see main)."""
    import trimesh
    from trimesh.creation import cylinder, icosphere

    def cyl(x, y0, h, r, z=0.0):  # upright (+y) cylinder from height y0
        c = cylinder(radius=r, height=h, sections=32)
        c.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
        c.apply_translation([x, y0 + h / 2, z])
        return c

    def ball(x, y, z, r):
        b = icosphere(subdivisions=3, radius=r)
        b.apply_translation([x, y, z])
        return b

    trousers, coat, skin = [0.12, 0.13, 0.2], [0.75, 0.12, 0.1], [0.92, 0.72, 0.58]
    parts = []
    for x in (-0.08, 0.08):
        parts.append(_part(cyl(x, 0.0, 0.82, 0.065), trousers))
        parts.append(_part(cyl(x * 3.3, 0.78, 0.55, 0.045), [c * 0.9 for c in coat]))  # arms
        parts.append(_part(ball(x * 3.3, 0.76, 0.0, 0.05), skin))  # hands
    parts.append(_part(cyl(0.0, 0.8, 0.62, 0.19), coat))
    parts.append(_part(ball(0.0, 1.55, 0.0, 0.14), skin))
    for x in (-0.05, 0.05):
        parts.append(_part(ball(x, 1.58, 0.125, 0.022), [0.05, 0.05, 0.08]))  # eyes, on the front (+z)
    for y in (1.0, 1.15, 1.3):
        parts.append(_part(ball(0.0, y, 0.19, 0.02), [0.95, 0.85, 0.2]))  # buttons
    parts.append(_part(cyl(0.0, 1.66, 0.03, 0.16), [0.08, 0.08, 0.08]))  # hat brim
    parts.append(_part(cyl(0.0, 1.66, 0.14, 0.10), [0.08, 0.08, 0.08]))
    trimesh.util.concatenate(parts).export(path)


def build_crate_mesh(path: Path) -> None:
    """A 30 cm wooden crate (a z-up OBJ with vertex colours: imported with up="z") for the physics prop."""
    import trimesh

    box = trimesh.creation.box(extents=[0.3, 0.3, 0.3]).subdivide().subdivide()
    v = box.vertices
    grain = 0.08 * np.sin(v[:, 0] * 60 + 5 * np.sin(v[:, 2] * 20))
    edge = (np.abs(v) > 0.13).sum(axis=1) >= 2  # darker along the crate's edges
    col = np.clip(np.array([0.62, 0.42, 0.22]) + grain[:, None] - 0.2 * edge[:, None], 0, 1)
    box.visual = trimesh.visual.ColorVisuals(box, vertex_colors=np.c_[col * 255, np.full(len(v), 255)].astype(np.uint8))
    box.apply_translation([0, 0, 0.15])  # base on z = 0
    box.export(path)


def asset_sidecar(g: Gaussians, name: str, kind: str) -> dict:
    """The sidecar splatfilm's fit writes, for a procedural asset: already in its canonical
    frame for an object (identity canonical transform)."""
    lo = g.means.min(0).values.tolist()
    hi = g.means.max(0).values.tolist()
    meta = {"asset": name, "kind": kind, "source": {"type": "procedural", "script": "scenes/make_demo_scene.py"},
            "frame": {"up": [0.0, 0.0, 1.0], "scale_to_metres": 1.0, "bounds_min": lo, "bounds_max": hi},
            "num_gaussians": len(g)}
    if kind == "object":
        meta["canonical_transform"] = {"rotation": np.eye(3).tolist(), "translation": [0.0, 0.0, 0.0], "scale": 1.0}
    return meta


def orbit_cameras(count: int = 24, width: int = 320, height: int = 240, hfov_deg: float = 65.0) -> dict:
    """nerfstudio transforms.json content for cameras orbiting the table, looking at it."""
    target = np.array([0.2, 0.0, 0.7])
    fl = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    frames = []
    for i in range(count):
        az = math.radians(-125 + 120 * i / (count - 1))  # the open side of the room, inside its walls
        pos = np.array([0.2 + 3.0 * math.cos(az), 3.0 * math.sin(az), 1.3 + 0.4 * math.sin(2 * math.pi * i / count)])
        c2w = np.eye(4)
        c2w[:3, :3], c2w[:3, 3] = look_at_rotation(pos, target) @ np.diag([1.0, -1.0, -1.0]), pos  # OpenGL axes
        frames.append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": c2w.round(9).tolist()})
    return {"camera_model": "OPENCV", "fl_x": fl, "fl_y": fl, "cx": width / 2, "cy": height / 2,
            "w": width, "h": height, "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "frames": frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(Path(__file__).parent / "demo"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    g = build_scene(args.seed)
    save_gaussians(out / "scene.ply", g)
    Sidecar(asset_sidecar(g, "scene.ply", "scene")).write(out / "scene.json")
    from splatfilm.assets.ground import ground_scene

    ground_scene(out / "scene.ply")  # records the floor plane in scene.json, as `splatfilm ground` does
    (out / "transforms.json").write_text(json.dumps(orbit_cameras(), indent=2) + "\n")
    # The character and the prop come from meshes, through splatfilm's own mesh import.
    from splatfilm.assets.mesh_import import import_mesh

    build_hero_mesh(out / "hero.glb")
    hero = import_mesh(out / "hero.glb", out / "hero.ply", count=50000, seed=args.seed)
    build_crate_mesh(out / "crate.obj")
    crate = import_mesh(out / "crate.obj", out / "crate.ply", count=6000, seed=args.seed, up="z")
    print(f"wrote {len(g)} Gaussians to {out / 'scene.ply'}, 24 cameras to {out / 'transforms.json'}, "
          f"a {hero['num_gaussians']}-Gaussian character from hero.glb and a {crate['num_gaussians']}-Gaussian crate")


if __name__ == "__main__":
    main()
