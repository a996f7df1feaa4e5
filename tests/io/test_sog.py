"""PlayCanvas SOG files read as splat-transform reads them: each fixture (tests/fixtures/sog,
made by make.py there) beside splat-transform 2.7.1's own decoding of it to a PLY."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_same_gaussians, cli_error, random_gaussians

from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sog"


@pytest.mark.parametrize("name, degree", [("degree3", 3), ("degree0", 0), ("v1_degree2", 2)])
def test_a_sog_reads_as_splat_transform_decodes_it(name, degree):
    got = load_gaussians(FIXTURES / f"{name}.sog")
    want = load_gaussians(FIXTURES / f"{name}.decoded.ply")
    assert got.sh_degree == degree and len(got) == len(want) > 0
    assert_same_gaussians(got, want, name)


def test_a_sog_keeps_what_it_was_made_from():
    """The v2 fixture against the Gaussians make.py encoded: positions to their 16-bit log
    grid, rotations to 8-bit smallest-three, opacity to 1/255, floored (a wrong axis, bit order or
    quaternion slot would miss by the Gaussians' spread)."""
    import sys

    sys.path.insert(0, str(FIXTURES))
    try:
        from make import gaussians
    finally:
        sys.path.remove(str(FIXTURES))
    source, got = gaussians(300, 3, seed=0), load_gaussians(FIXTURES / "degree3.sog")
    # SOG orders Gaussians along a space-filling curve: match each back by position.
    order = np.argmin(((got.means.numpy()[:, None] - source.means.numpy()[None]) ** 2).sum(-1), axis=1)
    assert len(set(order.tolist())) == len(source)
    assert np.abs(got.means.numpy() - source.means.numpy()[order]).max() < 2e-4
    q = source.quats.numpy()[order]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    assert np.abs((q * got.quats.numpy()).sum(1)).min() > 0.999
    alpha = lambda x: 1 / (1 + np.exp(-x))
    assert np.abs(alpha(got.opacities.numpy()) - alpha(source.opacities.numpy()[order])).max() < 1 / 255 + 1e-6


def _archive(path: Path, edit) -> Path:
    """A copy of the degree-3 fixture with its meta.json changed by `edit`."""
    with zipfile.ZipFile(FIXTURES / "degree3.sog") as z:
        files = {name: z.read(name) for name in z.namelist()}
    meta = json.loads(files["meta.json"])
    edit(meta, files)
    files["meta.json"] = json.dumps(meta).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda m, f: m.update(version=3), "SOG version 3 is not read"),
    (lambda m, f: m.update(count=10_000), "means_l.webp has 320 pixels for 10000 Gaussians"),
    (lambda m, f: m.pop("quats"), "lacks or misstates a field"),
    (lambda m, f: f.pop("scales.webp"), "has no scales.webp"),
    (lambda m, f: f.update({"sh0.webp": b"not an image"}), "sh0.webp is not a readable image"),
    (lambda m, f: m["shN"].update(count=3), "SH palette labels lie past its 3 entries"),
])
def test_a_broken_sog_is_one_line(tmp_path, capsys, edit, words):
    bad = _archive(tmp_path / "bad.sog", edit)
    err = cli_error(capsys, ["import", bad, "-o", tmp_path / "a.ply"], "bad.sog")
    assert words in err, err


def test_a_sog_that_is_no_zip(tmp_path):
    (tmp_path / "a.sog").write_bytes(b"ply\n")
    with pytest.raises(SplatfilmError, match="a.sog: not a SOG file"):
        load_gaussians(tmp_path / "a.sog")


def _angle_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.degrees(2 * np.arccos(np.clip(np.abs((a * b).sum(1)), 0, 1)))


def test_a_written_sog_reads_back_within_its_quantisation(tmp_path):
    """Each Gaussian in its own row (a rig's weights still match), within what the format keeps:
    positions to half a step of a 16-bit log grid, rotations to 8-bit smallest-three (under 0.9
    degrees at most here), opacity to half of 1/255; scales, DC colour and SH through 256-entry
    codebooks (0.019, 0.024 and 0.0084 at most here; 2048 Gaussians have a palette entry each). A
    fully transparent Gaussian keeps its colour (lossless WebP drops the RGB under alpha 0 unless
    told to keep it)."""
    g = random_gaussians(2048, 3, torch.float32, seed=3)
    g.opacities[7] = -40.0
    save_gaussians(tmp_path / "a.sog", g)
    got = load_gaussians(tmp_path / "a.sog")
    assert len(got) == len(g) and got.sh_degree == 3
    src = {f: getattr(g, f).numpy().astype(np.float64) for f in ("means", "quats", "scales", "opacities", "sh0", "shN")}
    out = {f: getattr(got, f).numpy().astype(np.float64) for f in src}
    logged = np.sign(src["means"]) * np.log1p(np.abs(src["means"]))
    half_step = (logged.max(0) - logged.min(0)) / 65535 / 2
    assert (np.abs(out["means"] - src["means"]) <= half_step * (1 + np.abs(src["means"])) * 1.001 + 1e-7).all()
    assert _angle_degrees(out["quats"], src["quats"]).max() < 0.9
    alpha = lambda x: 1 / (1 + np.exp(-x))
    assert np.abs(alpha(out["opacities"]) - alpha(src["opacities"])).max() <= 0.5 / 255 + 1e-6
    assert np.abs(out["scales"] - src["scales"]).max() < 0.03
    assert np.abs(out["sh0"] - src["sh0"]).max() < 0.04
    assert np.abs(out["sh0"][7] - src["sh0"][7]).max() < 0.04
    assert np.abs(out["shN"] - src["shN"]).max() < 0.012


def test_a_written_sog_is_the_same_bytes_each_time(tmp_path):
    """500 Gaussians share a palette of 256 (k-means from a seeded pick): the same file each
    time, and each Gaussian's SH nearer its entry than to nothing (a wrong label or layout
    would miss by more than the SH's own spread)."""
    g = random_gaussians(500, 2, torch.float32, seed=4)
    save_gaussians(tmp_path / "a.sog", g)
    save_gaussians(tmp_path / "b.sog", g)
    assert (tmp_path / "a.sog").read_bytes() == (tmp_path / "b.sog").read_bytes()
    miss = (load_gaussians(tmp_path / "a.sog").shN - g.shN).numpy()
    assert np.sqrt((miss ** 2).mean()) < 0.7 * np.sqrt((g.shN.numpy() ** 2).mean())


def test_import_writes_a_sog_to_degree_3_and_says_what_it_loses(tmp_path, capsys):
    from splatfilm.cli import main

    save_gaussians(tmp_path / "in.ply", random_gaussians(300, 4, torch.float32, seed=5))
    assert main(["import", str(tmp_path / "in.ply"), "-o", str(tmp_path / "out.sog")]) == 0
    out = capsys.readouterr().err  # notes go to stderr (splatfilm.report)
    assert "SH band 4" in out and "a SOG stores positions to 16 bits" in out, out
    got = load_gaussians(tmp_path / "out.sog")
    assert len(got) == 300 and got.sh_degree == 3


def test_gaussians_a_sog_cannot_hold_are_refused(tmp_path):
    g = random_gaussians(10, 0, torch.float32)
    g.scales[3, 1] = float("nan")
    with pytest.raises(SplatfilmError, match="a.sog: cannot write Gaussians with non-finite values .*1 in scales"):
        save_gaussians(tmp_path / "a.sog", g)
    with pytest.raises(SplatfilmError, match="b.sog: no Gaussians to write"):
        save_gaussians(tmp_path / "b.sog", random_gaussians(0, 0, torch.float32))
    assert not (tmp_path / "a.sog").exists()


def test_a_large_palette_is_fitted_on_a_sample(tmp_path, monkeypatch):
    """The SH palette's k-means rounds see at most 2 rows per entry (a seeded pick), so their
    cost stops growing with the Gaussians (a 1M-Gaussian capture has 65,536 entries, as 131,072
    do); every Gaussian is still labelled, and the file still decodes near its SH. Here the
    palette is cut to 64 entries so that 1000 Gaussians are many."""
    from splatfilm.io import sog

    monkeypatch.setattr(sog, "_MAX_PALETTE", 64)
    seen = []
    nearest = sog._nearest
    monkeypatch.setattr(sog, "_nearest", lambda points, centres: seen.append(len(points)) or nearest(points, centres))
    g = random_gaussians(1000, 3, torch.float32, seed=6)
    # SH in 8 clumps (a scene's few materials), which 64 entries can follow.
    gen = torch.Generator().manual_seed(6)
    g.shN = torch.randn(8, 15, 3, generator=gen)[torch.randint(0, 8, (1000,), generator=gen)] * 0.15 \
        + torch.randn(1000, 15, 3, generator=gen) * 0.01
    save_gaussians(tmp_path / "a.sog", g)
    assert seen[:-1] and max(seen[:-1]) == 128 and seen[-1] == 1000, seen
    miss = (load_gaussians(tmp_path / "a.sog").shN - g.shN).numpy()
    assert np.sqrt((miss ** 2).mean()) < 0.2 * np.sqrt((g.shN.numpy() ** 2).mean())


def test_nearest_entries_in_many_dimensions_by_groups(monkeypatch):
    """Above a kd-tree's dimensions, many points against many centres search only the groups of
    centres nearest each point: nearly always the nearest centre, else one nearly as near, and
    the same labels each time (45 dimensions: SH degree 3)."""
    from splatfilm.io import sog

    rng = np.random.default_rng(0)
    # 1024 centres in 16 clumps, as SH coefficients clump (a scene's few materials).
    centres = rng.normal(size=(16, 45))[rng.integers(0, 16, 1024)] + rng.normal(size=(1024, 45)) * 0.15
    points = centres[rng.integers(0, len(centres), 3000)] + rng.normal(size=(3000, 45)) * 0.05
    exact = np.argmin((centres ** 2).sum(1) - 2 * points @ centres.T, axis=1)
    monkeypatch.setattr(sog, "_BRUTE_PAIRS", 0)
    got = sog._nearest(points, centres)
    assert np.array_equal(got, sog._nearest(points, centres))
    dist = lambda labels: np.sqrt(((points - centres[labels]) ** 2).sum(1))
    assert (got == exact).mean() > 0.98 and (dist(got) - dist(exact)).max() < 0.05
