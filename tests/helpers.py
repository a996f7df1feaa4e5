"""Helpers the tests share: paths, cameras, random Gaussians, a brute-force compositor, small
splat surfaces, tiny films and captures, and a CLI error checker. Plain functions, imported
as `from helpers import ...` (pytest puts tests/ on the path: `pythonpath` in pyproject.toml);
fixtures more than one test folder uses are in conftest.py."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import look_at_rotation

if TYPE_CHECKING:
    from splatfilm.fit import FitConfig

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "nerfstudio"  # written by nerfstudio's own code (fixtures/README.md)
SCENES = REPO / "scenes"
CAMERAS = REPO / "cameras"
T = TypeVar("T")


def look_at(eye, target, up=(0.0, 0.0, 1.0), dtype=torch.float64) -> torch.Tensor:
    """World-to-camera viewmat [4,4] in OpenCV axes (x right, y down, looking down +z)."""
    eye = torch.as_tensor(eye, dtype=torch.float64)
    V = torch.eye(4, dtype=torch.float64)
    V[:3, :3] = torch.from_numpy(look_at_rotation(eye.numpy(), target, up).T)
    V[:3, 3] = -V[:3, :3] @ eye
    return V.to(dtype)


def intrinsics(fx, fy, cx, cy, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)


def traced_peak(run: Callable[[], T]) -> tuple[T, int]:
    """(run()'s result, the most bytes Python's allocations held at once while it ran, as
    tracemalloc counts them: numpy and torch buffers included), for tests of peak memory."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def float32_nbytes(g: Gaussians) -> int:
    """Bytes Gaussians `g` hold as float32: their own size, which a reader's peak is measured against."""
    return sum(t.numel() * 4 for t in (g.means, g.quats, g.scales, g.opacities, g.sh0, g.shN))


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


def assert_same_gaussians(got: Gaussians, want: Gaussians, what: object = "") -> None:
    """Every parameter of `got` equal to `want`'s, bit for bit (a reader against a reference
    decoding); a failure names the field, its largest difference and `what`."""
    for field in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        a, b = getattr(got, field).numpy(), getattr(want, field).numpy()
        assert a.shape == b.shape and np.array_equal(a, b), (what, field, a.shape, b.shape,
                                                             np.abs(a - b).max() if a.shape == b.shape else None)


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


def square_splats(center, size, color, normal_axis: int, spacing=0.04) -> Gaussians:
    """Opaque square of flat Gaussians, perpendicular to `normal_axis`."""
    u = np.arange(-size / 2, size / 2 + 1e-9, spacing)
    a, b = np.meshgrid(u, u, indexing="ij")
    pts = np.zeros((a.size, 3))
    axes = [i for i in range(3) if i != normal_axis]
    pts[:, axes[0]], pts[:, axes[1]] = a.ravel(), b.ravel()
    pts += np.asarray(center)
    scales = np.full((len(pts), 3), spacing * 0.7)
    scales[:, normal_axis] = 0.002
    n = len(pts)
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1
    return Gaussians.from_activated(t(pts), quats, t(scales), torch.full((n,), 0.98), colors=t(np.tile(color, (n, 1))))


def blob_splats(color, radius=0.15) -> Gaussians:
    """300 round Gaussians of `color` about 2 x `radius` across: a character."""
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(300, 3, generator=g) * radius * 0.5
    pts[:, 2] += radius + 0.2  # standing on z = 0 in its canonical frame
    quats = torch.zeros(300, 4)
    quats[:, 0] = 1
    return Gaussians.from_activated(pts, quats, torch.full((300, 3), radius * 0.35), torch.full((300,), 0.95),
                                    colors=torch.tensor(color).expand(300, 3))


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


# ---- tiny captures to fit (tests/fit, tests/refine) ----------------------------------------------

CAPTURE_W, CAPTURE_H = 64, 48  # make_capture's image size


def _ring_cameras(n: int, radius: float = 3.0) -> Cameras:
    """`n` cameras on a ring of `radius` around the origin, bobbing in height, looking at it."""
    viewmats = []
    for i in range(n):
        a = 2 * math.pi * i / n
        eye = (radius * math.cos(a), radius * math.sin(a), 0.8 + 0.3 * math.sin(3 * a))
        viewmats.append(look_at(eye, (0.0, 0.0, 0.0)).numpy())
    K = np.array([[55.0, 0, CAPTURE_W / 2], [0, 55.0, CAPTURE_H / 2], [0, 0, 1]])
    return Cameras(np.stack(viewmats), K, CAPTURE_W, CAPTURE_H,
                   names=[f"images/frame_{i:05d}.png" for i in range(n)])


def make_capture(folder: Path, n_views: int = 16, rgba: bool = False, points: bool = True, seed: int = 0) -> Path:
    """A nerfstudio dataset folder rendered from random Gaussians (and their means as the
    `ply_file_path` point cloud, as ns-process-data writes one)."""
    import imageio.v3 as iio

    from splatfilm.io.images import to_uint8
    from splatfilm.render import rasterization

    gs = random_gaussians(400, sh_degree=1, dtype=torch.float32, seed=seed, spread=0.5, log_scale=(-3.0, 0.3),
                          opacity=(0.5, 0.95))
    cams = _ring_cameras(n_views)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n_views):
        vm, K = cams[i].to_tensors()
        out = rasterization(gs, vm, K, CAPTURE_W, CAPTURE_H, backend="cpu")
        rgb = out.rgb[0].numpy()
        if rgba:
            a = out.alpha[0].numpy()
            im = np.concatenate([np.where(a > 0, rgb / np.maximum(a, 1e-8), 0), a], -1)
        else:
            im = rgb  # over black, which the fit renders behind the scene too
        iio.imwrite(folder / cams.names[i], to_uint8(im))
    c2w = cams.to_c2w_opengl()
    meta = {"fl_x": 55.0, "fl_y": 55.0, "cx": CAPTURE_W / 2, "cy": CAPTURE_H / 2, "w": CAPTURE_W, "h": CAPTURE_H,
            "camera_model": "PINHOLE",
            "frames": [{"file_path": cams.names[i], "transform_matrix": c2w[i].tolist()} for i in range(n_views)]}
    if points:
        _write_points(folder, gs.means.numpy())
        meta["ply_file_path"] = "sparse_pc.ply"
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


def shifted_capture(capture: Path, folder: Path, offset) -> Path:
    """A copy in `folder` of make_capture's dataset `capture` with its world moved by `offset`
    [3] (a georeferenced capture's coordinates): poses in float64 JSON, its point cloud written
    with double coordinates, as COLMAP and georeferencing tools keep them."""
    from splatfilm.io.ply import read_ply_points

    shutil.copytree(capture, folder)
    meta = json.loads((capture / "transforms.json").read_text())
    for frame in meta["frames"]:
        m = np.array(frame["transform_matrix"])
        m[:3, 3] += offset
        frame["transform_matrix"] = m.tolist()
    (folder / "transforms.json").write_text(json.dumps(meta))
    xyz, _ = read_ply_points(capture / "sparse_pc.ply")
    _write_points(folder, xyz + np.asarray(offset, np.float64), "f8")
    return folder


def _write_points(folder: Path, xyz: np.ndarray, dtype: str = "f4") -> None:
    """folder/sparse_pc.ply: grey points at xyz [P,3], as ns-process-data writes its cloud
    (coordinates as `dtype`: f4 float, f8 double)."""
    kind = {"f4": "float", "f8": "double"}[dtype]
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(xyz)}\n"
              f"property {kind} x\nproperty {kind} y\nproperty {kind} z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n").encode()
    rows = np.zeros(len(xyz), dtype=[("x", "<" + dtype), ("y", "<" + dtype), ("z", "<" + dtype), ("r", "u1"),
                                     ("g", "u1"), ("b", "u1")])
    rows["x"], rows["y"], rows["z"] = xyz.T
    rows["r"] = rows["g"] = rows["b"] = 128
    (folder / "sparse_pc.ply").write_bytes(header + rows.tobytes())


# Lenses a capture is fitted through (not undistorted): a wide fisheye with all four
# coefficients, and a full panorama (fx, fy pixels per radian).
LENSES = {
    "OPENCV_FISHEYE": (np.array([[20.0, 0, 32], [0, 20.0, 24], [0, 0, 1]]), 64, 48, [0.08, -0.02, 0.004, -0.001, 0, 0]),
    "EQUIRECTANGULAR": (np.array([[96 / (2 * math.pi), 0, 48], [0, 48 / math.pi, 24], [0, 0, 1]]), 96, 48, None),
}


def make_lens_capture(folder: Path, model: str, n_views: int = 8):
    """A nerfstudio dataset of `model` cameras (LENSES) on a ring inside a cloud of random
    Gaussians, rendered through that lens; the Gaussians' means as its point cloud.
    Returns (folder, the Gaussians)."""
    import imageio.v3 as iio

    from splatfilm.io.camera_files import write_transforms_json
    from splatfilm.io.images import to_uint8
    from splatfilm.render import rasterization

    gs = random_gaussians(400, sh_degree=1, dtype=torch.float32, seed=0, spread=1.0, log_scale=(-3.0, 0.3),
                          opacity=(0.5, 0.95))
    K, w, h, dist = LENSES[model]
    ring = _ring_cameras(n_views, radius=1.5 if model == "OPENCV_FISHEYE" else 1.0)
    cams = Cameras(ring.viewmats, K, w, h, dist, model, ring.names)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n_views):
        out = rasterization(gs, **cams[i].render_arguments(), backend="cpu")
        iio.imwrite(folder / cams.names[i], to_uint8(out.rgb[0].numpy()))
    _write_points(folder, gs.means.numpy())
    write_transforms_json(folder / "transforms.json", cams, {"ply_file_path": "sparse_pc.ply"})
    return folder, gs


def small_cfg(**kw) -> FitConfig:
    """A FitConfig for the tiny captures: 120 CPU steps at SH degree 1, no checkpoints; `kw` overrides."""
    from splatfilm.fit import FitConfig

    base = dict(steps=120, backend="cpu", sh_degree=1, sh_degree_interval=60, checkpoint_every=0, test_every=8)
    base.update(kw)
    return FitConfig(**base)


# ---- a rigged figure's capture, to clean -----------------------------------------------------


def capture_beside_rigged(asset: Path, centre, radius: float = 4.0, size: int = 48) -> tuple[Cameras, int]:
    """Make the rigged asset at `asset` (y up, as glTF's import keeps it) a capture to clean:
    six cameras of `size` px, 40 degrees wide, on a ring of `radius` m round the y axis through
    `centre`, the first on +z (glTF's front), all looking at it, recorded beside it as its
    capture cameras; and three magenta floaters 0.6 m in front of the first camera appended to
    the file and to its rig (following joint 0): only that camera sees them (the figure hides
    them from the one opposite, the rest look past them). Returns the cameras and the count of
    the figure's own Gaussians (the floaters follow them)."""
    import dataclasses

    from splatfilm.assets.meshing import look_at_viewmat
    from splatfilm.io.asset_files import capture_cameras_path, rig_path
    from splatfilm.io.camera_files import write_transforms_json
    from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
    from splatfilm.io.rig_files import load_rig, save_rig

    centre = np.asarray(centre, float)
    f = size * 0.5 / math.tan(math.radians(20))
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    eyes = [centre + radius * np.array([math.sin(a), 0.0, math.cos(a)]) for a in np.arange(6) * math.pi / 3]
    cams = Cameras(np.stack([look_at_viewmat(e, centre, np.array([0.0, 1.0, 0.0])) for e in eyes]), K, size, size)
    write_transforms_json(capture_cameras_path(asset), cams)
    g = load_gaussians(asset)
    rig = load_rig(rig_path(asset), len(g))
    near = eyes[0] + np.array([0.0, 0.0, -0.6])
    points = near + np.array([[-0.07, 0.0, 0.0], [0.0, 0.05, 0.0], [0.07, 0.0, 0.0]])
    t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)
    floaters = Gaussians.from_activated(t(points), t(np.tile([1.0, 0.0, 0.0, 0.0], (3, 1))), t(np.full((3, 3), 0.04)),
                                        t(np.full(3, 0.95)), colors=t(np.tile([1.0, 0.0, 1.0], (3, 1))))
    save_gaussians(asset, Gaussians.concat([g, floaters.to(dtype=g.dtype).with_sh_degree(g.sh_degree)]))
    rows = np.zeros((3, 4), rig.joints.dtype), np.tile(np.array([[1, 0, 0, 0]], rig.weights.dtype), (3, 1))
    save_rig(rig_path(asset), dataclasses.replace(rig, joints=np.concatenate([rig.joints, rows[0]]),
                                                  weights=np.concatenate([rig.weights, rows[1]])), asset.name)
    return cams, len(g)


def read_only(monkeypatch, *folders: Path) -> None:
    """Make `folders` (and what is inside them) unwritable to `io.cache`. Patched, not chmod:
    the tests run as root in CI, which chmod does not stop (a read-only mount stops even root,
    and os.access, which `folder_writable` asks, says so)."""
    from splatfilm.io import cache

    real = cache.folder_writable
    shut = [f.resolve() for f in folders]

    def writable(folder) -> bool:
        f = Path(folder).resolve()
        return not any(f == s or s in f.parents for s in shut) and real(folder)

    monkeypatch.setattr(cache, "folder_writable", writable)
