"""PlayCanvas SOG files read as splat-transform reads them: each fixture (tests/fixtures/sog,
made by make.py there) beside splat-transform 2.7.1's own decoding of it to a PLY."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_error, random_gaussians

from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sog"


@pytest.mark.parametrize("name, degree", [("degree3", 3), ("degree0", 0), ("v1_degree2", 2)])
def test_a_sog_reads_as_splat_transform_decodes_it(name, degree):
    got = load_gaussians(FIXTURES / f"{name}.sog")
    want = load_gaussians(FIXTURES / f"{name}.decoded.ply")
    assert got.sh_degree == degree and len(got) == len(want) > 0
    for field in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        a, b = getattr(got, field).numpy(), getattr(want, field).numpy()
        assert a.shape == b.shape and np.array_equal(a, b), (field, np.abs(a - b).max())


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


def test_a_sog_that_is_no_zip_and_writing_one(tmp_path):
    (tmp_path / "a.sog").write_bytes(b"ply\n")
    with pytest.raises(SplatfilmError, match="a.sog: not a SOG file"):
        load_gaussians(tmp_path / "a.sog")
    with pytest.raises(SplatfilmError, match="b.sog: SOG files are read, not written"):
        save_gaussians(tmp_path / "b.sog", random_gaussians(2))
