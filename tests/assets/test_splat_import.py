"""`splatfilm import`: what the output keeps (said on stdout), other tools' formats, and splats
far from their world's origin written centred."""

from __future__ import annotations

import json

import numpy as np
import torch
from helpers import cli_error, random_gaussians

from splatfilm.cli import main
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.io.ply import ply_header


def _ply_with_extras(path, g) -> None:
    """`g` as an INRIA PLY with two more vertex properties, a per-Gaussian id and a segment label."""
    save_gaussians(path, g)
    raw = path.read_bytes()
    header = ply_header(len(g), g.sh_degree)
    rows = np.frombuffer(raw[len(header):], "<f4").reshape(len(g), -1)
    extra = np.stack([np.arange(len(g)), np.zeros(len(g))], axis=1).astype("<f4")
    head = header.decode().replace("end_header\n", "property float id\nproperty float segment\nend_header\n")
    path.write_bytes(head.encode() + np.concatenate([rows, extra], axis=1).tobytes())


def test_import_says_the_written_degree_and_what_is_dropped(tmp_path, capsys):
    g = random_gaussians(50, 3, dtype=torch.float32, seed=1)
    _ply_with_extras(tmp_path / "in.ply", g)
    capsys.readouterr()
    assert main(["import", str(tmp_path / "in.ply"), "-o", str(tmp_path / "out.splat")]) == 0
    out, err = capsys.readouterr()  # the result on stdout, the notes on stderr
    assert "(50 Gaussians, SH degree 0)" in out and "note:" not in out, out
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1, err
    assert "SH bands 1-3 (45 coefficients a Gaussian" in notes[0] and "id, segment" in notes[0], notes[0]
    # A PLY output keeps the bands, not the extra properties; --sh-degree cuts bands on request.
    assert main(["import", str(tmp_path / "in.ply"), "-o", str(tmp_path / "deg1.ply"), "--sh-degree", "1"]) == 0
    out, err = capsys.readouterr()
    assert "SH degree 1)" in out and "SH bands 2-3 (36 coefficients" in err and "id, segment" in err, err
    assert load_gaussians(tmp_path / "deg1.ply").sh_degree == 1
    # Nothing lost, nothing said.
    assert main(["import", str(tmp_path / "deg1.ply"), "-o", str(tmp_path / "again.spz")]) == 0
    out, err = capsys.readouterr()
    assert "note:" not in out + err and "SH degree 1)" in out, out
    # An output named as SuperSplat's compressed PLY is one (degree 3 at most), its loss said.
    assert main(["import", str(tmp_path / "deg1.ply"), "-o", str(tmp_path / "x.compressed.ply")]) == 0
    err = capsys.readouterr().err
    assert "without full precision (a compressed PLY" in err and "SH band" not in err, err
    assert b"element chunk 1\n" in (tmp_path / "x.compressed.ply").read_bytes()[:1000]
    assert load_gaussians(tmp_path / "x.compressed.ply").sh_degree == 1
    deg4 = random_gaussians(20, 4, seed=5)
    save_gaussians(tmp_path / "deg4.ply", deg4)
    assert main(["import", str(tmp_path / "deg4.ply"), "-o", str(tmp_path / "y.compressed.ply")]) == 0
    err = capsys.readouterr().err
    assert "SH band 4 (27 coefficients a Gaussian; y.compressed.ply holds degree 3)" in err, err
    assert load_gaussians(tmp_path / "y.compressed.ply").sh_degree == 3


def test_lcc_points_at_splat_transform(tmp_path, capsys):
    for name in ("a.lcc",):
        (tmp_path / name).write_bytes(b"")
        err = cli_error(capsys, ["import", tmp_path / name, "-o", tmp_path / "a.ply"], name)
        assert "unsupported Gaussian file type" in err and f"splat-transform {name} a.ply" in err, err


def test_a_splat_far_from_its_origin_is_written_centred(tmp_path, capsys):
    """An SPZ (georeferenced: 1,000 km out, a few units across) comes in centred, its offset in
    the sidecar's frame.origin_offset; one near the origin stays where it is."""
    g = random_gaussians(200, 1, dtype=torch.float32, seed=2)
    far = np.array([1.0e6, -2.0e5, 30.0])
    g_far = type(g)(g.means.clamp(-2, 2) + torch.tensor(far, dtype=torch.float32), g.quats, g.scales,
                    g.opacities, g.sh0, g.shN)
    save_gaussians(tmp_path / "far.spz", g_far)
    stored = load_gaussians(tmp_path / "far.spz").means.double()
    np.testing.assert_allclose(stored.numpy(), g_far.means.double().numpy(), atol=0.5)  # as given both ways
    capsys.readouterr()
    assert main(["import", str(tmp_path / "far.spz"), "-o", str(tmp_path / "far.ply")]) == 0
    assert "note: the splat lies" in capsys.readouterr().err
    sidecar = json.loads((tmp_path / "far.json").read_text())
    assert sidecar["source"]["spz_axes"] == "ply"  # the axes it was taken to hold, default or not
    offset = np.array(sidecar["frame"]["origin_offset"])
    np.testing.assert_allclose(offset, far, atol=1.0)
    centred = load_gaussians(tmp_path / "far.ply").means.double()
    assert centred.abs().max() < 5
    np.testing.assert_allclose((centred + torch.tensor(offset)).numpy(), stored.numpy(), atol=0.1)

    save_gaussians(tmp_path / "near.spz", g)
    assert main(["import", str(tmp_path / "near.spz"), "-o", str(tmp_path / "near.ply")]) == 0
    assert "origin_offset" not in json.dumps(json.loads((tmp_path / "near.json").read_text()))


def test_a_georeferenced_ply_is_imported_centred_to_the_millimetre(tmp_path, capsys):
    """A PLY of double positions 4e6 m out: float32 holds them to 0.25 m, and import wrote them
    so (0.125 m off, no word). Read centred in float64 and written less the sidecar's
    frame.origin_offset, they are kept to well under a millimetre."""
    g = random_gaussians(40, 0, dtype=torch.float32, seed=12)
    xyz = g.means.double().numpy() * 7 + np.array([500000.0, 4000000.0, 310.0]) + 0.123456
    cols = {**{k: xyz[:, i] for i, k in enumerate("xyz")},
            **{f"f_dc_{i}": g.sh0[:, 0, i].numpy() for i in range(3)}, "opacity": g.opacities.numpy(),
            **{f"scale_{i}": g.scales[:, i].numpy() for i in range(3)},
            **{f"rot_{i}": g.quats[:, i].numpy() for i in range(4)}}
    table = np.zeros(len(g), dtype=[(k, "<f8" if k in "xyz" else "<f4") for k in cols])
    for k, v in cols.items():
        table[k] = v
    header = "".join(f"property {'double' if k in 'xyz' else 'float'} {k}\n" for k in cols)
    (tmp_path / "geo.ply").write_bytes(f"ply\nformat binary_little_endian 1.0\nelement vertex {len(g)}\n{header}"
                                       f"end_header\n".encode() + table.tobytes())
    assert main(["import", str(tmp_path / "geo.ply"), "-o", str(tmp_path / "out.ply")]) == 0
    offset = np.array(json.loads((tmp_path / "out.json").read_text())["frame"]["origin_offset"])
    written = load_gaussians(tmp_path / "out.ply").means.double().numpy()
    assert np.abs(written + offset - xyz).max() < 1e-4


def test_converting_an_asset_carries_its_sidecar_rig_and_cameras(tmp_path, capsys):
    """`import` of a splatfilm asset is a conversion: the mesh-imported demo hero keeps its kind
    and canonical transform (it stood on its back in a film as a 'scene'), the rigged hero its
    rig, cameras and clips; a conversion that turns the Gaussians (--spz-axes rub) turns the
    canonical transform and cameras with them and drops the rig, saying so."""
    from pathlib import Path

    import yaml

    from splatfilm.io.asset_files import read_capture_cameras
    from splatfilm.film.script import parse_film
    from splatfilm.io.spz import read_spz

    scenes = Path(__file__).parents[2] / "scenes"
    mesh_hero, fitted_hero = scenes / "demo/hero.ply", scenes / "character/fitted/hero.ply"
    assert main(["import", str(mesh_hero), "-o", str(tmp_path / "mesh_hero.spz")]) == 0
    assert main(["import", str(fitted_hero), "-o", str(tmp_path / "hero.spz")]) == 0
    assert "note:" not in "".join(capsys.readouterr())
    assert main(["import", str(fitted_hero), "-o", str(tmp_path / "turned.spz"), "--spz-axes", "rub"]) == 0
    err = capsys.readouterr().err
    assert "without its rig (hero.rig.npz): import moved the Gaussians (--spz-axes)" in err, err

    side = json.loads((tmp_path / "mesh_hero.json").read_text())
    original = json.loads(mesh_hero.with_suffix(".json").read_text())
    assert side["kind"] == "object" and side["source"] == original["source"]
    np.testing.assert_allclose(side["canonical_transform"]["rotation"], [[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    assert side["converted"][-1]["type"] == "import" and side["converted"][-1]["format"] == "ply"
    rigged = json.loads((tmp_path / "hero.json").read_text())
    assert rigged["rig"]["file"] == "hero.rig.npz" and (tmp_path / "hero.rig.npz").exists()
    assert "training" in rigged and "edits" in rigged
    turned = json.loads((tmp_path / "turned.json").read_text())
    assert "rig" not in turned and not (tmp_path / "turned.rig.npz").exists()
    np.testing.assert_allclose(read_capture_cameras(tmp_path / "hero.spz").centers,
                               read_capture_cameras(fitted_hero).centers)
    # By default the .spz holds the PLY's axes as they are, as splat-transform 3.x stores them.
    on_disk = read_spz(tmp_path / "hero.spz", axes="ply").means
    assert (on_disk - load_gaussians(fitted_hero).means).abs().max() <= 2.0**-13 + 1e-6
    np.testing.assert_allclose(read_capture_cameras(tmp_path / "turned.spz").centers,
                               read_capture_cameras(fitted_hero).centers * [1, -1, -1], atol=1e-9)

    # In a film each copy stands where its original stands, and the rigged copy walks as it does.
    walk = [{"clip": "walk", "start": 0}]
    assets = {"mesh": {"file": str(mesh_hero)}, "mesh_spz": {"file": str(tmp_path / "mesh_hero.spz")},
              "hero": {"file": str(fitted_hero), "clips": walk}, "hero_spz": {"file": str(tmp_path / "hero.spz"),
                                                                             "clips": walk},
              "rest": {"file": str(fitted_hero)}, "turned": {"file": str(tmp_path / "turned.spz")}}
    (tmp_path / "film.yaml").write_text(yaml.safe_dump({
        "version": 1, "title": "t", "fps": 24, "resolution": [64, 40], "assets": assets,
        "shots": [{"name": "sh010", "frames": 2, "camera": {"position": [0, -4, 1], "look_at": [0, 0, 0.8]}}]}))
    world = parse_film(tmp_path / "film.yaml").world
    step = 2.0**-12  # an .spz's position step

    def placed(name: str):
        return world.placed(name, 0.3).means.numpy()

    assert np.abs(placed("mesh") - placed("mesh_spz")).max() < step
    assert placed("mesh_spz")[:, 2].max() > 1.7  # standing: 1.8 m tall up +z
    assert np.abs(placed("hero") - placed("rest")).max() > 0.05  # the walk moves him (0.65 m tall)
    assert np.abs(placed("hero") - placed("hero_spz")).max() < 2 * step
    assert np.abs(placed("rest") - placed("turned")).max() < 2 * step


def test_a_plain_splat_imported_over_an_asset_leaves_none_of_its_side_files(tmp_path, capsys):
    """`import` of a splat without a sidecar to the name of an earlier rigged asset: the rig,
    capture cameras and masks that asset left beside it go (the rig bound the new Gaussians
    when their count matched: `pose` and a film posed them with another figure's weights)."""
    from pathlib import Path

    from splatfilm.io.asset_files import capture_cameras_path, capture_masks_path, rig_path

    hero = Path(__file__).parents[2] / "scenes/character/fitted/hero.ply"
    out = tmp_path / "out.splat"
    assert main(["import", str(hero), "-o", str(out)]) == 0
    (tmp_path / "out.masks.npz").write_bytes(b"")
    assert rig_path(out).exists() and capture_cameras_path(out).exists()
    save_gaussians(tmp_path / "plain.ply", load_gaussians(hero))  # the same count, no sidecar
    assert main(["import", str(tmp_path / "plain.ply"), "-o", str(out)]) == 0
    assert not rig_path(out).exists() and not capture_cameras_path(out).exists()
    assert not capture_masks_path(out).exists()


def test_bytes_after_a_splat_files_end_are_noted_once(tmp_path, capsys):
    """100 zero bytes appended to a .ply, .spz (versions 3 and 4), .sog and .ksplat imported in silence:
    each says how many bytes its format's own end left over, in one note, and still imports."""
    import shutil
    from pathlib import Path

    fixtures = Path(__file__).parents[1] / "fixtures"
    save_gaussians(tmp_path / "a.ply", random_gaussians(20, 1, dtype=torch.float32, seed=2))
    sources = [tmp_path / "a.ply", fixtures / "spz" / "random.st370.v3.spz", fixtures / "spz" / "random.st370.v4.spz",
               fixtures / "sog" / "degree0.sog", fixtures / "ksplat" / "level1_degree2.ksplat"]
    for k, source in enumerate(sources):
        clean = tmp_path / f"clean{k}{source.suffix}"
        shutil.copyfile(source, clean)
        extra = tmp_path / f"extra{k}{source.suffix}"
        extra.write_bytes(source.read_bytes() + bytes(100))
        capsys.readouterr()
        assert main(["import", str(clean), "-o", str(tmp_path / f"clean{k}.out.ply")]) == 0
        assert "note:" not in capsys.readouterr().err
        assert main(["import", str(extra), "-o", str(tmp_path / f"extra{k}.out.ply")]) == 0
        notes = [line for line in capsys.readouterr().err.splitlines() if "were not read" in line]
        assert len(notes) == 1 and notes[0].startswith(f"note: {extra}: 100 bytes after "), notes
        assert (tmp_path / f"extra{k}.out.ply").read_bytes() == (tmp_path / f"clean{k}.out.ply").read_bytes()
