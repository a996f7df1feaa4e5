"""Masks given with `fit --masks DIR` make an object capture, as RGBA alpha does (bare photos,
videos, COLMAP folders, nerfstudio datasets); a transforms.json mask_path and a masks/ folder
beside images/ keep nerfstudio's meaning (pixels to leave out); bad masks are one-line errors. An object's masks go beside the asset for `clean`, which
drops the Gaussians outside its visual hull."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FIXTURES, make_capture, small_cfg
from PIL import Image

from splatfilm.errors import SplatfilmError
from splatfilm.fit import load_capture, run_fit


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory) -> Path:
    return make_capture(tmp_path_factory.mktemp("cap") / "scene", n_views=8)


def _disc(w: int, h: int) -> np.ndarray:
    """A white disc on black, uint8 [h,w]: the object's outline."""
    y, x = np.mgrid[:h, :w]
    return np.where((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2, 255, 0).astype(np.uint8)


def _per_frame_masks(folder: Path) -> np.ndarray:
    meta = json.loads((folder / "transforms.json").read_text())
    disc = _disc(meta["w"], meta["h"])
    (folder / "masks").mkdir()
    for frame in meta["frames"]:
        name = Path(frame["file_path"]).with_suffix(".png").name
        Image.fromarray(disc).save(folder / "masks" / name)
        frame["mask_path"] = f"masks/{name}"
    (folder / "transforms.json").write_text(json.dumps(meta))
    return disc


def test_masks_make_an_object_fit_with_a_canonical_frame_and_mask_paths_stay_loss_masks(capture_dir, tmp_path):
    """A frame's mask_path keeps nerfstudio's meaning (a passer-by, a rig or a crop to leave
    out: trained as transparent, an object's outline would cut holes in a scene); --masks
    gives the object's outline."""
    folder = tmp_path / "ns"
    shutil.copytree(capture_dir, folder)
    assert not load_capture(folder, tmp_path / "w").is_object
    disc = _per_frame_masks(folder)
    cap = load_capture(folder, tmp_path / "w")
    assert not cap.is_object and cap.valid is not None
    cap = load_capture(folder, tmp_path / "w", masks=folder / "masks")
    assert cap.is_object
    assert all(np.array_equal(m[..., 0], disc / 255.0) for m in cap.masks)
    sidecar = run_fit(folder, tmp_path / "obj.ply", small_cfg(steps=2), progress=False, masks=folder / "masks")
    assert sidecar["kind"] == "object" and "rotation" in sidecar["canonical_transform"]
    from splatfilm.io.asset_files import read_capture_masks

    masks = read_capture_masks(tmp_path / "obj.ply")
    assert len(masks) == 8 and np.array_equal(masks[0][..., 0], disc > 0)


def _colmap(tmp_path: Path) -> Path:
    folder = tmp_path / "colmap"
    shutil.copytree(FIXTURES, folder, ignore=shutil.ignore_patterns("transforms.json"))
    return folder


def _masks_dir(folder: Path, tmp_path: Path, suffix: str = ".png") -> Path:
    out = tmp_path / "masks"
    out.mkdir(exist_ok=True)
    for p in sorted((folder / "images").iterdir()):
        w, h = Image.open(p).size
        Image.fromarray(_disc(w, h)).save(out / (p.stem + suffix))
    return out


def test_masks_make_a_colmap_capture_an_object(tmp_path):
    folder = _colmap(tmp_path)
    assert not load_capture(folder, tmp_path / "w").is_object
    cap = load_capture(folder, tmp_path / "w", masks=_masks_dir(folder, tmp_path))
    assert cap.is_object and len(cap.masks) == len(cap)
    assert 0.1 < float(np.mean([m.mean() for m in cap.masks])) < 0.6  # the disc, undistorted with its image


def test_bad_masks_are_one_line_errors(tmp_path):
    folder = _colmap(tmp_path)
    masks = _masks_dir(folder, tmp_path)
    first = sorted(masks.iterdir())[0]
    w, h = Image.open(first).size

    def fails(pattern: str) -> None:
        with pytest.raises(SplatfilmError, match=pattern) as e:
            load_capture(folder, tmp_path / "w", masks=masks)
        assert "\n" not in str(e.value)

    first.rename(first.with_suffix(".bak"))
    fails(r"masks: no mask for image \S+ \(looked for .*\.png; --masks\)")
    first.with_suffix(".bak").rename(first)
    Image.fromarray(_disc(w + 2, h)).save(first)
    fails(rf"{first.name}: mask is {w + 2}x{h}, image \S+ is {w}x{h}")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(first)
    fails(r"mask is not black and white \(\d+% of its pixels are grey\)")
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(first)
    fails(r"mask is in colour")
    first.write_bytes(b"not an image")
    fails(rf"{first.name}: cannot read image")
    with pytest.raises(SplatfilmError, match=r"nothing: no such folder \(--masks\)"):
        load_capture(folder, tmp_path / "w", masks=tmp_path / "nothing")


def test_a_masks_folder_beside_bare_photos_is_named_not_read(tmp_path, monkeypatch, capsys):
    """nerfstudio's layout: images/ and masks/ side by side, masks of pixels to leave out: not
    taken for an object's outline unless given as --masks. SfM is stood in for by the
    fixture's own model."""
    from splatfilm.fit import sfm

    folder = _colmap(tmp_path)
    model = folder / "colmap" / "sparse" / "0"
    shutil.move(str(folder / "colmap"), str(tmp_path / "model"))
    monkeypatch.setattr(sfm, "run_sfm", lambda *a, **k: tmp_path / "model" / "sparse" / "0")
    assert not load_capture(folder, tmp_path / "w").is_object
    shutil.move(str(_masks_dir(folder, tmp_path)), str(folder / "masks"))
    cap = load_capture(folder, tmp_path / "w")
    assert not cap.is_object
    assert any("not read; give it as --masks" in n for n in cap.source["notes"])
    assert load_capture(folder, tmp_path / "w", masks=folder / "masks").is_object
    del model


def test_a_masks_folder_beside_a_colmap_folders_images_is_named_not_read(tmp_path):
    """nerfstudio's colmap layout (images/, masks/ and the model): its masks are named and not
    read, as beside bare photos (no note was given)."""
    folder = _colmap(tmp_path)
    shutil.move(str(_masks_dir(folder, tmp_path)), str(folder / "masks"))
    cap = load_capture(folder, tmp_path / "w")
    assert not cap.is_object
    assert any("not read; give it as --masks" in n for n in cap.source.get("notes", []))


def test_clean_drops_what_lies_outside_an_objects_hull(tmp_path):
    """An object's Gaussians stay; one far off to the side, in frame of every view but off the
    object's outline in all of them, goes, though the views show it."""
    from splatfilm.assets.cleanup import clean_asset
    from splatfilm.io.gaussian_files import load_gaussians, save_gaussians

    folder = make_capture(tmp_path / "rgba", n_views=8, rgba=True)
    run_fit(folder, tmp_path / "obj.ply", small_cfg(steps=2, test_every=0), progress=False)
    g = load_gaussians(tmp_path / "obj.ply")
    assert (tmp_path / "obj.masks.npz").exists()  # the RGBA capture's alpha, which clean reads
    haze = g.select(torch.arange(1))
    haze.means[:] = torch.tensor([0.0, 0.0, -1.2])
    haze.opacities[:] = 5.0
    both = type(g).concat([g, haze])
    save_gaussians(tmp_path / "hazy.ply", both)
    shutil.copy(tmp_path / "obj.cameras.json", tmp_path / "hazy.cameras.json")
    shutil.copy(tmp_path / "obj.masks.npz", tmp_path / "hazy.masks.npz")
    info = clean_asset(tmp_path / "hazy.ply", tmp_path / "clean.ply", progress=False)
    out = load_gaussians(tmp_path / "clean.ply")
    assert info["outside_hull"] >= 1
    assert not (out.means == haze.means[0]).all(dim=1).any()
    assert (tmp_path / "clean.masks.npz").exists()


def test_the_first_cpu_step_says_it_compiles_the_renderer(capture_dir, monkeypatch, capsys):
    """A fresh install's first step compiles the kernels (~14 s) under an ETA of an hour: the
    bar says why, as the film render's does, until that step's numbers replace it."""
    from splatfilm.fit import fit
    from splatfilm.render import rasterize_to_pixels

    cap = load_capture(capture_dir, capture_dir.parent / "w")
    monkeypatch.setattr(rasterize_to_pixels, "kernels_cached", lambda: False)
    fit(cap, small_cfg(steps=1), progress=True)
    assert rasterize_to_pixels.FIRST_RENDER_NOTE in capsys.readouterr().err
    monkeypatch.setattr(rasterize_to_pixels, "kernels_cached", lambda: True)
    fit(cap, small_cfg(steps=1), progress=True)
    assert "compiles" not in capsys.readouterr().err


def test_a_known_height_gives_an_object_its_scale_in_metres(capture_dir, tmp_path, capsys):
    """Phone photos carry no scale: an object fitted from them stood 1.7 m tall in a film (SfM
    units read as metres). `fit --known-height` records scale_to_metres, and a film stands the
    object at that height; a scene capture refuses it in one line."""
    from helpers import cli_error

    from splatfilm.film.world import load_asset
    from splatfilm.scene.transforms import Similarity

    folder = tmp_path / "ns"
    shutil.copytree(capture_dir, folder)
    _per_frame_masks(folder)
    run_fit(folder, tmp_path / "obj.ply", small_cfg(steps=2), progress=False, masks=folder / "masks",
            known_height=0.3)
    frame = json.loads((tmp_path / "obj.json").read_text())["frame"]
    assert frame["scale_to_metres"] > 0
    asset = load_asset("pot", tmp_path / "obj.ply", Similarity())
    from splatfilm.assets.asset_frame import robust_bounds

    lo, hi = robust_bounds(asset.local.transform_gaussians(asset.gaussians))
    assert abs((hi[2] - lo[2]) - 0.3) < 1e-4 and abs(lo[2]) < 1e-4
    err = cli_error(capsys, ["fit", folder, "-o", tmp_path / "scene.ply", "--known-height", "0.3", "--steps", "2"],
                    "--known-height is an object's height")
    assert "this capture is a scene" in err
    from splatfilm.cli import main

    with pytest.raises(SystemExit) as e:  # argparse's usage error
        main(["fit", str(folder), "-o", str(tmp_path / "x.ply"), "--known-height", "-1"])
    assert e.value.code == 2 and "expected a positive number, got '-1'" in capsys.readouterr().err


def test_masks_on_a_nerfstudio_dataset_with_downscaled_copies_read_the_full_size_images(capture_dir, tmp_path):
    """--masks gives full-size outlines: a dataset's images_2/ copies are left unread for
    --downscale 2 (as for a COLMAP folder), so each mask meets its image at the image's size
    (the copies were read and every mask refused as the wrong size)."""
    folder = tmp_path / "ns"
    shutil.copytree(capture_dir, folder)
    masks = _masks_dir(folder, tmp_path)
    (folder / "images_2").mkdir()
    for p in sorted((folder / "images").iterdir()):
        with Image.open(p) as im:
            im.resize((im.width // 2, im.height // 2)).save(folder / "images_2" / p.name)
    cap = load_capture(folder, tmp_path / "w", downscale=2, masks=masks)
    assert cap.is_object and all(m.shape[:2] == im.shape[:2] for m, im in zip(cap.masks, cap.images))
    w = json.loads((folder / "transforms.json").read_text())["w"]
    assert cap.images[0].shape[1] == round(w / 2)
