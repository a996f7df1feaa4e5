"""GaussianSplats3D `.ksplat` files read as splat-transform reads them: each fixture
(tests/fixtures/ksplat, made by make.py there) beside splat-transform 2.7.1's own decoding of it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_same_gaussians, cli_error, random_gaussians

from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ksplat"


@pytest.mark.parametrize("name, degree", [("level0_degree1", 1), ("level1_degree2", 2), ("level2_degree2", 2),
                                          ("level2_degree3", 3)])
def test_a_ksplat_reads_as_splat_transform_decodes_it(name, degree):
    got = load_gaussians(FIXTURES / f"{name}.ksplat")
    want = load_gaussians(FIXTURES / f"{name}.decoded.ply")
    assert got.sh_degree == degree and len(got) == len(want) > 0
    assert_same_gaussians(got, want, name)


def test_a_ksplat_keeps_what_it_was_made_from():
    """Level 1 against the Gaussians make.py wrote, matched back by position (a section's
    Gaussians are stored bucket by bucket): positions to half a step of 2.5 m / 32767 about their
    bucket's centre (a wrong centre, bucket or axis would miss by metres), scales and rotations to
    half floats, SH band 2 in its own slots."""
    spec = importlib.util.spec_from_file_location("ksplat_fixtures_make", FIXTURES / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    source, got = make.gaussians(300, 2, seed=11), load_gaussians(FIXTURES / "level1_degree2.ksplat")
    means = source.means.numpy().astype(np.float64) * 4.0
    order = np.argmin(((got.means.numpy()[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert sorted(order.tolist()) == list(range(300))
    assert np.abs(got.means.numpy() - means[order]).max() < 0.5 * 2.5 / 32767 + 1e-5
    assert np.abs(got.scales.numpy() - source.scales.numpy()[order]).max() < 1e-3
    q = source.quats.numpy()[order]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    assert np.abs(got.quats.numpy() - q).max() < 1e-3
    assert np.abs(got.shN.numpy() - source.shN.numpy()[order]).max() < 1e-3


def test_a_broken_ksplat_is_one_line(tmp_path, capsys):
    data = (FIXTURES / "level1_degree2.ksplat").read_bytes()
    (tmp_path / "cut.ksplat").write_bytes(data[:-100])
    err = cli_error(capsys, ["import", tmp_path / "cut.ksplat", "-o", tmp_path / "a.ply"], "cut.ksplat")
    assert "runs past the file's end" in err, err
    (tmp_path / "small.ksplat").write_bytes(b"ply\n")
    with pytest.raises(SplatfilmError, match="small.ksplat: not a .ksplat file"):
        load_gaussians(tmp_path / "small.ksplat")
    with pytest.raises(SplatfilmError, match="b.ksplat: .ksplat files are read, not written"):
        save_gaussians(tmp_path / "b.ksplat", random_gaussians(2))
