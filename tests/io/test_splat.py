"""antimatter15 .splat reading and writing, and load_gaussians / save_gaussians dispatch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.io.ply import write_ply
from splatfilm.io.splat import SPLAT_DTYPE, read_splat, splat_order, write_splat


def random_gaussians(n: int = 50, degree: int = 0, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    k = (degree + 1) ** 2 - 1
    return Gaussians(r(n, 3), r(n, 4), r(n, 3) - 3, 2 * r(n), 0.6 * r(n, 1, 3), 0.3 * r(n, k, 3))


def antimatter15_convert(g: Gaussians) -> bytes:
    """antimatter15/splat convert.py's process_ply_to_splat, record by record, on PLY-style float32 values."""
    means, scales, quats = g.means.numpy(), g.scales.numpy(), g.quats.numpy()
    op, dc = g.opacities.numpy(), g.sh0[:, 0].numpy()
    sorted_indices = np.argsort(-np.exp(scales[:, 0] + scales[:, 1] + scales[:, 2]) / (1 + np.exp(-op)), kind="stable")
    out = bytearray()
    sh_c0 = 0.28209479177387814
    for idx in sorted_indices:
        out += np.array(means[idx], dtype=np.float32).tobytes()
        out += np.exp(np.array(scales[idx], dtype=np.float32)).tobytes()
        color = np.array([0.5 + sh_c0 * float(dc[idx, 0]), 0.5 + sh_c0 * float(dc[idx, 1]),
                          0.5 + sh_c0 * float(dc[idx, 2]), 1 / (1 + np.exp(-float(op[idx])))])
        out += (color * 255).clip(0, 255).astype(np.uint8).tobytes()
        rot = np.array(quats[idx], dtype=np.float32)
        out += ((rot / np.linalg.norm(rot)) * 128 + 128).clip(0, 255).astype(np.uint8).tobytes()
    return bytes(out)


def assert_close_after_quantisation(h: Gaussians, ref: Gaussians) -> None:
    assert h.dtype == torch.float32 and h.sh_degree == 0 and len(h) == len(ref)
    assert torch.equal(h.means, ref.means)
    torch.testing.assert_close(h.scales, ref.scales, atol=1e-6, rtol=1e-6)  # float32 exp/log
    # rgb and alpha are truncated to 1/255 steps; rgb outside [0, 1] is clipped.
    assert (h.base_colors - ref.base_colors.clamp(0, 1)).abs().max() <= 1 / 255 + 1e-6
    assert (h.activated_opacities - ref.activated_opacities).abs().max() <= 1 / 255 + 1e-6
    # Quaternion components are truncated to 1/128 steps.
    cos = (h.activated_quats * ref.activated_quats).sum(-1).abs()
    assert cos.min() > 0.999


def test_round_trip_within_quantisation(tmp_path):
    g = random_gaussians(300, degree=2)
    write_splat(tmp_path / "a.splat", g)
    assert (tmp_path / "a.splat").stat().st_size == 300 * 32
    h = read_splat(tmp_path / "a.splat")
    ref = g.select(torch.from_numpy(splat_order(g))).with_sh_degree(0)
    assert_close_after_quantisation(h, ref)


def test_writer_matches_antimatter15_convert_byte_for_byte(tmp_path):
    g = random_gaussians(200, seed=1)
    write_splat(tmp_path / "a.splat", g)
    ours = (tmp_path / "a.splat").read_bytes()
    ref = antimatter15_convert(g)
    a = np.frombuffer(ours, dtype=SPLAT_DTYPE)
    b = np.frombuffer(ref, dtype=SPLAT_DTYPE)
    assert np.array_equal(a["position"], b["position"])  # same order
    np.testing.assert_allclose(a["scale"], b["scale"], rtol=1e-6)  # float64 vs float32 exp
    # uint8 fields: the same truncation; float32 vs float64 arithmetic may flip a value on an exact step.
    assert np.abs(a["rgba"].astype(int) - b["rgba"]).max() <= 1
    assert np.mean(a["rgba"] == b["rgba"]) > 0.99
    assert np.abs(a["rot"].astype(int) - b["rot"]).max() <= 1
    assert np.mean(a["rot"] == b["rot"]) > 0.99


def test_order_is_biggest_and_most_opaque_first(tmp_path):
    g = random_gaussians(100, seed=2)
    write_splat(tmp_path / "a.splat", g)
    h = read_splat(tmp_path / "a.splat")
    # Find each record's source Gaussian by its (exact) position.
    index = {tuple(m): i for i, m in enumerate(g.means.tolist())}
    order = torch.tensor([index[tuple(m)] for m in h.means.tolist()])
    key = torch.exp(g.scales.double().sum(1)) * torch.sigmoid(g.opacities.double())
    assert (key[order][1:] <= key[order][:-1]).all()
    assert not torch.equal(order, torch.arange(100))


def test_reads_gsplat_splat_export(tmp_path):
    from gsplat import export_splats

    g = random_gaussians(150, degree=1, seed=3)
    path = tmp_path / "gsplat.splat"
    export_splats(g.means, g.scales, g.quats, g.opacities, g.sh0, g.shN, format="splat", save_to=str(path))
    h = read_splat(path)
    # gsplat writes the same records in Morton order: match them up by position.
    order_h = np.lexsort(h.means.numpy().T[::-1])
    order_g = np.lexsort(g.means.numpy().T[::-1])
    assert_close_after_quantisation(h.select(torch.from_numpy(order_h)), g.select(torch.from_numpy(order_g)))


def test_degenerate_values(tmp_path):
    g = random_gaussians(4)
    g.quats[0] = 0.0  # no direction: written and read as the identity
    g.opacities[1] = 50.0  # alpha 255 -> stays finite
    g.opacities[2] = -50.0  # alpha 0 -> stays finite
    g.scales[3] = -200.0  # underflows to a linear scale of 0 -> stays finite
    write_splat(tmp_path / "d.splat", g)
    h = read_splat(tmp_path / "d.splat")
    assert torch.isfinite(h.scales).all() and torch.isfinite(h.opacities).all()
    assert ((h.activated_quats - torch.tensor([1.0, 0, 0, 0])).abs().sum(1) < 0.01).sum() >= 1
    assert h.activated_opacities.max() > 0.99 and h.activated_opacities.min() < 0.01


def test_empty(tmp_path):
    write_splat(tmp_path / "e.splat", Gaussians.empty(1))
    assert (tmp_path / "e.splat").stat().st_size == 0
    assert len(read_splat(tmp_path / "e.splat")) == 0


def _raises_one_line(path: Path, match: str, fn, *args) -> str:
    with pytest.raises(SplatfilmError) as info:
        fn(path, *args)
    msg = str(info.value)
    assert "\n" not in msg and path.name in msg and match.lower() in msg.lower(), msg
    return msg


def test_error_bad_size(tmp_path):
    p = tmp_path / "bad.splat"
    p.write_bytes(bytes(32 * 3 + 7))
    _raises_one_line(p, "multiple of 32", read_splat)


def test_error_missing_file_and_ply_content(tmp_path):
    _raises_one_line(tmp_path / "none.splat", "no such file", read_splat)
    write_ply(tmp_path / "x.ply", random_gaussians(2))
    (tmp_path / "really_ply.splat").write_bytes((tmp_path / "x.ply").read_bytes())
    _raises_one_line(tmp_path / "really_ply.splat", "PLY", read_splat)


def test_error_non_finite(tmp_path):
    p = tmp_path / "nan.splat"
    rec = np.zeros(2, dtype=SPLAT_DTYPE)
    rec["position"][1, 2] = np.nan
    p.write_bytes(rec.tobytes())
    _raises_one_line(p, "1 non-finite", read_splat)
    g = random_gaussians(3)
    g.sh0[0, 0, 1] = float("inf")
    g.scales[1, 0] = 100.0  # exp overflows float32
    msg = _raises_one_line(tmp_path / "out.splat", "2 non-finite", write_splat, g)
    assert "1 in sh0" in msg and "1 in scales" in msg
    assert not (tmp_path / "out.splat").exists()


# ---- dispatch ---------------------------------------------------------------------------------


def test_dispatch_by_extension(tmp_path):
    g = random_gaussians(20, degree=3, seed=5)
    save_gaussians(tmp_path / "a.ply", g)
    h = load_gaussians(tmp_path / "a.ply")
    assert h.sh_degree == 3 and torch.equal(h.shN, g.shN)
    save_gaussians(str(tmp_path / "b.SPLAT"), g)
    assert (tmp_path / "b.SPLAT").read_bytes()[:3] != b"ply"
    assert load_gaussians(tmp_path / "b.SPLAT").sh_degree == 0
    save_gaussians(tmp_path / "c.ply", g, sh_degree=1)
    assert load_gaussians(tmp_path / "c.ply").sh_degree == 1
    assert sorted(os.listdir(tmp_path)) == ["a.ply", "b.SPLAT", "c.ply"]


@pytest.mark.parametrize("name", ["a.ply", "a.compressed.ply", "a.splat", "a.spz", "a.sog", "a.usda"])
def test_save_gaussians_returns_the_order_the_file_holds_them_in(tmp_path, name):
    """A `*.compressed.ply` (Morton order) and a `.splat` (biggest first) hold the Gaussians in
    another order than given, and say which (what lies beside the file per Gaussian, a rig's
    rows, must follow it); the other formats keep the given order and return None."""
    g = random_gaussians(300, degree=1, seed=8)
    grid = torch.stack(torch.meshgrid(*[torch.arange(7.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    g.means[:] = 0.1 * grid[torch.randperm(len(grid), generator=torch.Generator().manual_seed(8))[:300]]
    order = save_gaussians(tmp_path / name, g)
    assert (order is None) == (name not in ("a.compressed.ply", "a.splat"))
    expected = g.means if order is None else g.means[torch.from_numpy(order)]
    assert (load_gaussians(tmp_path / name).means - expected).abs().max() < 0.01  # within each format's steps


@pytest.mark.parametrize("name", ["scene.lcc", "scene", "scene.ply.gz"])
def test_dispatch_unknown_extension(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"ply\n")
    _raises_one_line(p, "unsupported Gaussian file type", load_gaussians)
    _raises_one_line(p, ".ply, .splat, .spz, .sog or .usd/.usda/.usdc", save_gaussians, random_gaussians(1))
