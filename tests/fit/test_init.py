"""The random fallback of a capture without a point cloud puts its points where the views see
surfaces: on the walls of a room the cameras stand inside, on the objects an orbit looks at
(the old placement, spread through the frustums around the distance to what the cameras
look at, put them between the cameras: grey fog)."""

from __future__ import annotations

import math

import numpy as np
import torch
from helpers import look_at

from splatfilm.fit.capture import Capture, split_indices
from splatfilm.fit.init import depth_range, points_where_views_agree, random_points_in_frustums, view_neighbours
from splatfilm.fit.trainer import FitConfig, fit
from splatfilm.io.images import to_uint8
from splatfilm.render import rasterization
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import C0

W, H = 64, 48
HALF = np.array([2.0, 1.5, 1.2])  # the room's half sizes, centred on the origin


def _splats(p: np.ndarray, colors: np.ndarray, size: float) -> Gaussians:
    n = len(p)
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1
    return Gaussians(torch.tensor(p, dtype=torch.float32), quats, torch.full((n, 3), math.log(size)),
                     torch.full((n,), 4.0), torch.tensor((colors - 0.5) / C0, dtype=torch.float32)[:, None],
                     torch.zeros(n, 0, 3))


def _blocks(p: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """A colour per `cell`-sized block of space: texture the views can agree on."""
    table = np.random.default_rng(seed).uniform(0.1, 0.9, (16, 16, 16, 3))
    k = np.floor(p / cell).astype(int) % 16
    return table[k[:, 0], k[:, 1], k[:, 2]]


def room() -> Gaussians:
    """The six faces of a box [-HALF, HALF], splats every 5 cm, coloured in 25 cm blocks."""
    g = np.arange(-1, 1, 0.05 / HALF.min()) + 0.01
    faces = []
    for axis in range(3):
        a, b = [i for i in range(3) if i != axis]
        u, v = np.meshgrid(g * HALF[a], g * HALF[b], indexing="ij")
        for sign in (-1, 1):
            p = np.zeros((u.size, 3))
            p[:, a], p[:, b], p[:, axis] = u.ravel(), v.ravel(), sign * HALF[axis]
            faces.append(p)
    p = np.concatenate(faces)
    return _splats(p, _blocks(p, 0.25, 1), 0.035)


def orbit_object() -> Gaussians:
    """A textured ball of radius 0.5 at the origin, nothing else (black around it)."""
    n = 3000
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (3 - math.sqrt(5)) * i
    d = np.stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z], 1)
    p = 0.5 * d
    return _splats(p, _blocks(p, 0.15, 2), 0.03)


def _capture(gs: Gaussians, eyes: np.ndarray, targets: np.ndarray, focal: float = 40.0) -> Capture:
    V = np.stack([look_at(e, t).numpy() for e, t in zip(eyes, targets)])
    cams = Cameras(V, np.array([[focal, 0, W / 2], [0, focal, H / 2], [0, 0, 1]]), W, H,
                   names=[f"frame_{i:03d}.png" for i in range(len(eyes))])
    images = []
    for i in range(len(cams)):
        vm, K = cams[i].to_tensors()
        images.append(to_uint8(rasterization(gs, vm, K, W, H, backend="cpu").rgb[0].numpy()))
    return Capture(cams, images, list(cams.names), source={"type": "nerfstudio"})


def inside_out_capture(n: int = 24) -> Capture:
    """Cameras on a ring of 0.5 m radius in the middle of the room, looking outward."""
    a = 2 * np.pi * np.arange(n) / n
    eyes = np.stack([0.5 * np.cos(a), 0.5 * np.sin(a), 0.1 * np.sin(3 * a)], 1)
    return _capture(room(), eyes, eyes + np.stack([np.cos(a), np.sin(a), -0.1 * np.ones(n)], 1))


def orbit_capture(n: int = 24) -> Capture:
    a = 2 * np.pi * np.arange(n) / n
    eyes = np.stack([3 * np.cos(a), 3 * np.sin(a), 0.8 + 0.4 * np.sin(2 * a)], 1)
    return _capture(orbit_object(), eyes, np.zeros((n, 3)), focal=60.0)


def _wall_distance(p: np.ndarray) -> np.ndarray:
    """Distance of points inside the box to its nearest face (negative outside)."""
    return (HALF - np.abs(p)).min(axis=1)


def test_inside_out_points_land_on_the_walls():
    cap = inside_out_capture()
    train, _ = split_indices(len(cap), 8)
    rng = np.random.default_rng(0)
    pts, colors, cost = points_where_views_agree(cap.cameras, cap.images, train, 4000, rng)
    assert len(pts) > 3000 and colors.shape == pts.shape and np.all(cost >= 0)
    d = _wall_distance(pts)
    assert np.mean(np.abs(d) < 0.3) > 0.7, np.mean(np.abs(d) < 0.3)  # the walls are 1.5-2.5 m from the cameras
    assert np.median(np.abs(d)) < 0.15, np.median(np.abs(d))
    # The old placement, around the distance to the point the cameras' axes meet (the ring's
    # centre), leaves most points in mid-air near the cameras.
    old = _wall_distance(random_points_in_frustums(cap.cameras, 4000, np.random.default_rng(0)))
    assert np.mean(np.abs(old) < 0.3) < 0.2 and np.median(np.abs(old)) > 0.5


def test_orbit_points_land_on_the_object():
    cap = orbit_capture()
    train, _ = split_indices(len(cap), 8)
    pts, colors, _ = points_where_views_agree(cap.cameras, cap.images, train, 4000, np.random.default_rng(0))
    on_object = colors.max(axis=1) > 0.05  # pixels of the ball, not of the black around it
    r = np.linalg.norm(pts[on_object], axis=1)
    assert on_object.sum() > 400
    assert np.mean(np.abs(r - 0.5) < 0.15) > 0.7, np.mean(np.abs(r - 0.5) < 0.15)
    old = random_points_in_frustums(cap.cameras, 4000, np.random.default_rng(0))
    assert np.mean(np.abs(np.linalg.norm(old, axis=1) - 0.5) < 0.15) < 0.1


def test_neighbours_and_depth_range_follow_the_layout():
    cap = inside_out_capture()
    nb = view_neighbours(cap.cameras, list(range(len(cap))), count=4)
    # On an outward ring the views that see the same wall are the adjacent ones.
    assert set(nb[0]) == {1, 2, 22, 23}
    near, far = depth_range(cap.cameras)
    assert near < 0.1 and far > 2.5  # the walls (1.2-2.2 m away) are inside the search
    near, far = depth_range(orbit_capture(8).cameras)
    assert near < 2.0 and far > 4.0


def test_fit_without_points_starts_from_the_views():
    cap = inside_out_capture(16)
    cfg = FitConfig(steps=1, backend="cpu", sh_degree=0, checkpoint_every=0, init_random=3000)
    res = fit(cap, cfg, progress=False)
    means = res.gaussians.means.numpy()
    assert len(means) > 2000 and np.median(np.abs(_wall_distance(means))) < 0.15
    # Coloured like their pixels, not at random: the first render already resembles the images.
    assert res.metrics["test"]["psnr"] > 13.0, res.metrics
