"""Helpers the tests share: paths, cameras, random Gaussians, a brute-force compositor, small
splat surfaces and a CLI error checker. Plain functions, imported as `from helpers import ...`
(pytest puts tests/ on the path: `pythonpath` in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import look_at_rotation

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "nerfstudio"  # written by nerfstudio's own code (fixtures/README.md)
SCENES = REPO / "scenes"
CAMERAS = REPO / "cameras"

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4


def look_at(eye, target, up=(0.0, 0.0, 1.0), dtype=torch.float64) -> torch.Tensor:
    """World-to-camera viewmat [4,4] in OpenCV axes (x right, y down, looking down +z)."""
    eye = torch.as_tensor(eye, dtype=torch.float64)
    V = torch.eye(4, dtype=torch.float64)
    V[:3, :3] = torch.from_numpy(look_at_rotation(eye.numpy(), target, up).T)
    V[:3, 3] = -V[:3, :3] @ eye
    return V.to(dtype)


def intrinsics(fx, fy, cx, cy, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)


def random_gaussians(
    n: int,
    sh_degree: int = 3,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    spread: float = 0.8,
    log_scale: tuple[float, float] = (-2.5, 0.5),
    opacity: tuple[float, float] = (0.05, 0.99),
    sh_rest: float = 0.15,
) -> Gaussians:
    """Random Gaussians around the origin: means ~ N(0, spread^2), log scales ~ N(mu, sd^2),
    opacities uniform in `opacity`, sh0 around a mid grey, higher bands ~ N(0, sh_rest^2)."""
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    k = (sh_degree + 1) ** 2 - 1
    op = opacity[0] + (opacity[1] - opacity[0]) * torch.rand(n, generator=g, dtype=f64)
    gs = Gaussians(
        means=torch.randn(n, 3, generator=g, dtype=f64) * spread,
        quats=torch.randn(n, 4, generator=g, dtype=f64),
        scales=log_scale[0] + log_scale[1] * torch.randn(n, 3, generator=g, dtype=f64),
        opacities=torch.log(op) - torch.log1p(-op),
        sh0=torch.randn(n, 1, 3, generator=g, dtype=f64) * 0.8,
        shN=torch.randn(n, k, 3, generator=g, dtype=f64) * sh_rest,
    )
    return gs.to(dtype=dtype)


def composite_reference(means2d, conics, opacities, feats, radii, depths, width, height):
    """Brute-force, per-pixel front-to-back compositing with gsplat 1.5.3's rules, in float64.

    Every pixel sees every Gaussian with both radii > 0 (no tiles, no bounding boxes), in
    stable depth order: alpha = min(0.999, o exp(-sigma)), d = mean2d - pixel centre,
    skipped when sigma < 0 or alpha < 1/255, stop before T would reach <= 1e-4.
    Differentiable with autograd. [C,N,...] in; returns feats [C,H,W,K], alpha [C,H,W,1]
    and the number of pixels that stopped on the transmittance threshold, per camera.
    """
    C, N, K = feats.shape
    f64 = torch.float64
    means2d, conics, opacities, feats = (t.to(f64) for t in (means2d, conics, opacities, feats))
    ys, xs = torch.meshgrid(torch.arange(height, dtype=f64) + 0.5, torch.arange(width, dtype=f64) + 0.5, indexing="ij")
    xs, ys = xs.reshape(-1), ys.reshape(-1)
    out_f, out_a, stopped = [], [], []
    for c in range(C):
        ids = torch.nonzero((radii[c] > 0).all(-1))[:, 0]
        order = ids[torch.argsort(depths[c, ids].detach(), stable=True)]
        T = torch.ones(xs.shape[0], dtype=f64)
        acc = torch.zeros(xs.shape[0], K, dtype=f64)
        done = torch.zeros(xs.shape[0], dtype=torch.bool)
        for g in order.tolist():
            dx = means2d[c, g, 0] - xs
            dy = means2d[c, g, 1] - ys
            a, b, cc = conics[c, g]
            sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
            alpha = torch.clamp_max(opacities[c, g] * torch.exp(-sigma), ALPHA_MAX)
            use = ~done & (sigma >= 0) & (alpha >= ALPHA_MIN)
            next_T = T * (1.0 - alpha)
            stop = use & (next_T <= T_MIN)
            done = done | stop
            use = use & ~stop
            w = torch.where(use, alpha * T, torch.zeros_like(T))
            acc = acc + w[:, None] * feats[c, g][None, :]
            T = torch.where(use, next_T, T)
        out_f.append(acc.reshape(height, width, K))
        out_a.append((1.0 - T).reshape(height, width, 1))
        stopped.append(int(done.sum()))
    return torch.stack(out_f), torch.stack(out_a), stopped


def splats(points: np.ndarray, size: float = 0.02, opacity: float = 0.9) -> Gaussians:
    """Small grey isotropic splats [N] at `points` [N,3] (float32): surfaces for ground, meshing
    and physics tests."""
    n = len(points)
    t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    return Gaussians.from_activated(t(points), t(np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))), t(np.full((n, 3), size)),
                                    t(np.full(n, opacity)), colors=t(np.full((n, 3), 0.5)))


def textured_square(center, size, color, spacing=0.05) -> Gaussians:
    """An opaque square of flat Gaussians in the plane y = center[1], its colour noisy (a
    texture, so warps between frames can be judged)."""
    u = np.arange(-size / 2, size / 2 + 1e-9, spacing)
    a, b = np.meshgrid(u, u, indexing="ij")
    pts = np.c_[a.ravel(), np.zeros(a.size), b.ravel()] + np.asarray(center)
    n = len(pts)
    scales = np.tile([spacing * 0.7, 0.002, spacing * 0.7], (n, 1))
    colors = np.clip(np.asarray(color) + 0.25 * np.random.default_rng(0).standard_normal((n, 3)), 0, 1)
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1
    return Gaussians.from_activated(t(pts), quats, t(scales), torch.full((n,), 0.98), colors=t(colors))


def write_walking_film(folder: Path, frames: int = 3) -> Path:
    """A tiny film in `folder` (64x40, one shot sh010 of `frames` frames at 24 fps): a textured
    wall and a hero walking fast in front of it while the camera dollies in. Returns film.yaml."""
    import json

    import yaml

    from splatfilm.io.gaussian_files import save_gaussians

    folder = Path(folder)
    save_gaussians(folder / "wall.ply", textured_square([0, 0, 1.0], 2.4, [0.8, 0.3, 0.2]))
    save_gaussians(folder / "hero.ply", textured_square([0, 0, 0.4], 0.5, [0.1, 0.3, 0.8], spacing=0.04))
    (folder / "hero.json").write_text(json.dumps({"kind": "object", "canonical_transform": {
        "rotation": np.eye(3).tolist(), "translation": [0, 0, 0], "scale": 1.0}}))
    script = {
        "title": "passes", "fps": 24, "resolution": [64, 40],
        "assets": {"wall": {"file": "wall.ply"},
                   "hero": {"file": "hero.ply", "walk": {"points": [[-0.6, -1.0, 0.3], [0.6, -1.0, 0.3]],
                                                         "speed": 3.0}}},
        "shots": [{"name": "sh010", "frames": frames,
                   "camera": {"position": [0.3, -4, 1.0], "look_at": [0, 0, 0.8]},
                   "move": {"type": "dolly", "distance": 0.6}}],
    }
    (folder / "film.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    return folder / "film.yaml"


def cli_error(capsys, args: list, name=None) -> str:
    """Run the `splatfilm` CLI; check exit status 2 and a single `error: ...` line (naming `name`
    when given); return that line."""
    from splatfilm.cli import main

    capsys.readouterr()
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    if name is not None:
        assert str(name) in err, err
    return err
