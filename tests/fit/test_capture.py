"""How `fit` reads a capture folder as nerfstudio reads it: `mask_path` leaves pixels out of the
loss (it does not make an object capture), frames sorted by file name and split as the file's
train/val/test_filenames say, COLMAP models where ns-process-data keeps them, images_N/ copies
for --downscale N, and what the loader does not use said rather than dropped."""

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
from splatfilm.fit import evaluate, fit, load_capture, run_fit


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory) -> Path:
    return make_capture(tmp_path_factory.mktemp("cap") / "scene", n_views=8)


def _with_mask(folder: Path, rows: int) -> np.ndarray:
    """Give every frame of `folder`'s transforms.json the mask masks/mask.png, black in its last
    `rows` rows, as ns-process-data --crop-factor writes it; returns the mask, bool [H,W,1]."""
    meta = json.loads((folder / "transforms.json").read_text())
    mask = np.full((meta["h"], meta["w"]), 255, np.uint8)
    mask[-rows:] = 0
    (folder / "masks").mkdir()
    Image.fromarray(mask).save(folder / "masks" / "mask.png")
    for frame in meta["frames"]:
        frame["mask_path"] = "masks/mask.png"
    (folder / "transforms.json").write_text(json.dumps(meta))
    return mask[..., None] > 0


def test_a_nerfstudio_mask_leaves_pixels_out_of_the_loss_and_is_no_object(capture_dir, tmp_path):
    """nerfstudio's mask_path marks pixels to ignore (black); it made an object capture, its
    black pixels trained to alpha 0 over a random background. Now: a scene, the masked pixels
    out of the loss and the metrics: the same capture with other colours there fits to the same
    Gaussians and scores the same."""
    clean, noisy = tmp_path / "clean", tmp_path / "noisy"
    shutil.copytree(capture_dir, clean)
    keep = _with_mask(clean, rows=12)
    shutil.copytree(clean, noisy)
    for p in (noisy / "images").iterdir():
        im = np.asarray(Image.open(p).convert("RGB")).copy()
        im[~keep[..., 0]] = (255, 0, 40)  # a tripod, say
        Image.fromarray(im).save(p)
    a, b = load_capture(clean, tmp_path / "w"), load_capture(noisy, tmp_path / "w")
    assert not a.is_object and a.masks is None
    assert all(np.array_equal(v, keep) for v in a.valid)
    cfg = small_cfg(steps=20, test_every=4)
    fa, fb = fit(a, cfg, progress=False), fit(b, cfg, progress=False)
    for k in ("means", "sh0", "opacities"):
        assert torch.equal(getattr(fa.gaussians, k), getattr(fb.gaussians, k)), k
    assert fa.metrics["test"] == fb.metrics["test"]
    # Without the mask the red rows do count.
    b.valid = None
    assert evaluate(fb.gaussians, b, [0, 4], "cpu")["psnr"] < fa.metrics["test"]["psnr"] - 3


def test_a_mask_joins_undistortions_border_in_valid(tmp_path):
    """An OPENCV capture's mask is undistorted with its image: a pixel counts where the lens
    sampled the photo and every photo pixel it sampled is unmasked."""
    folder = tmp_path / "ns"
    shutil.copytree(FIXTURES, folder)
    plain = load_capture(folder, tmp_path / "w")
    _with_mask(folder, rows=12)
    masked = load_capture(folder, tmp_path / "w")
    assert not masked.is_object
    for v, m in zip(plain.valid, masked.valid):
        assert not (m & ~v).any() and not m[38:].any()
        assert np.array_equal(m[:34], v[:34])


def test_frames_sort_by_file_name_and_split_as_the_file_says(capture_dir, tmp_path, capsys):
    """nerfstudio's dataparser sorts frames by file name and honours train/val/test_filenames:
    they were taken in the file's order and split one in 8. A depth_file_path is said to be
    unused."""
    folder = tmp_path / "ns"
    shutil.copytree(capture_dir, folder)
    meta = json.loads((folder / "transforms.json").read_text())
    meta["frames"] = meta["frames"][::-1]
    names = sorted(f["file_path"] for f in meta["frames"])
    for f in meta["frames"]:
        f["depth_file_path"] = f["file_path"].replace("images/", "depths/")
    meta["val_filenames"] = [names[1], "./" + names[5]]
    meta["train_filenames"] = [n for i, n in enumerate(names) if i not in (1, 5, 6)]
    (folder / "transforms.json").write_text(json.dumps(meta))
    cap = load_capture(folder, tmp_path / "w")
    assert [Path(n).relative_to(folder).as_posix() for n in cap.names] == names
    assert cap.train_test(8) == ([0, 2, 3, 4, 7], [1, 5], "transforms.json's *_filenames")
    assert cap.train_test(0)[:2] == (list(range(8)), [])
    # A capture far from its origin is fitted moved (run_fit): its split moves with it.
    assert cap.translated(np.array([4e6, 4e6, 0.0])).train_test(8) == cap.train_test(8)
    sidecar = run_fit(folder, tmp_path / "a.ply", small_cfg(steps=2), progress=False)
    assert sidecar["metrics"]["test"]["views"] == 2
    out = capsys.readouterr().err  # status and notes: on stderr (splatfilm.report)
    assert "8 images (5 train, 2 held out: transforms.json's *_filenames)" in out
    assert out.count("depth_file_path depth maps are not used") == 1

    meta["test_filenames"] = ["images/nothing.png"]
    (folder / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(SplatfilmError, match=r"transforms.json: test_filenames names images/nothing.png, which is no frame"):
        load_capture(folder, tmp_path / "w")


def test_a_missing_point_cloud_is_an_error_not_a_fall_back(capture_dir, tmp_path):
    folder = tmp_path / "ns"
    shutil.copytree(capture_dir, folder)
    (folder / "sparse_pc.ply").unlink()
    with pytest.raises(SplatfilmError, match=r"transforms.json: ply_file_path sparse_pc.ply is not a file"):
        load_capture(folder, tmp_path / "w")


def test_a_nerfstudio_folder_without_transforms_json_reads_its_colmap_model(tmp_path, monkeypatch):
    """colmap/sparse/0 (where ns-process-data keeps the model) is found as read_cameras finds
    it; the capture loader looked only in sparse/0 and sparse, and ran SfM on the images."""
    from splatfilm.fit import sfm

    def no_sfm(*args, **kwargs):
        raise AssertionError("structure-from-motion ran on a folder with a COLMAP model")

    monkeypatch.setattr(sfm, "run_sfm", no_sfm)
    folder = tmp_path / "ns"
    shutil.copytree(FIXTURES, folder, ignore=shutil.ignore_patterns("transforms.json"))
    cap = load_capture(folder, tmp_path / "w")
    assert cap.source["type"] == "colmap" and cap.source["cameras"].endswith("colmap/sparse/0")
    assert len(cap) == 6 and len(cap.points) == 50


def test_a_colmap_folder_reads_its_images_n_copies(tmp_path):
    """--downscale 2 on a COLMAP folder (the Mip-NeRF 360 layout: sparse/0, images/,
    images_2/) reads images_2/ as gsplat's --data_factor does, as nerfstudio folders did."""
    folder = tmp_path / "colmap"
    shutil.copytree(FIXTURES / "colmap" / "sparse" / "0", folder / "sparse" / "0")
    (folder / "images_2").mkdir()
    for p in (FIXTURES / "images").iterdir():
        Image.open(p).resize((32, 24), Image.BOX).save(folder / "images_2" / p.name)
    shutil.copytree(FIXTURES / "images", tmp_path / "full" / "images")
    shutil.copytree(folder / "sparse", tmp_path / "full" / "sparse")
    want = load_capture(tmp_path / "full", tmp_path / "w1", downscale=2)
    cap = load_capture(folder, tmp_path / "w2", downscale=2)
    assert cap.images[0].shape == (24, 32, 3)
    np.testing.assert_allclose(cap.cameras.Ks, want.cameras.Ks)


def test_downscale_reads_masks_n_beside_images_n(capture_dir, tmp_path):
    """--downscale 2 with masks reads images_2/ and masks_2/ as nerfstudio does (masks kept
    the full-size images in use)."""
    folder = tmp_path / "ns"
    shutil.copytree(capture_dir, folder)
    _with_mask(folder, rows=12)
    for kind in ("images", "masks"):
        (folder / f"{kind}_2").mkdir()
        for p in (folder / kind).iterdir():
            Image.open(p).resize((32, 24), Image.NEAREST).save(folder / f"{kind}_2" / p.name)
        shutil.rmtree(folder / kind)
    cap = load_capture(folder, tmp_path / "w", downscale=2)
    assert cap.images[0].shape == (24, 32, 3) and not cap.is_object
    assert all(v[:18].all() and not v[18:].any() for v in cap.valid)


def test_a_sixteen_bit_mask_of_zeros_and_ones_keeps_its_ones(capture_dir, tmp_path):
    """A 16-bit mask of 0 and 1 (as label tools write them) was brought down to 8 bits first,
    every pixel 0: the whole image left out of the loss without a word."""
    folder = tmp_path / "ns"
    shutil.copytree(capture_dir, folder)
    keep = _with_mask(folder, rows=12)
    Image.fromarray(keep[..., 0].astype(np.uint16)).save(folder / "masks" / "mask.png")  # I;16
    cap = load_capture(folder, tmp_path / "w")
    assert all(np.array_equal(v, keep) for v in cap.valid)


def test_a_capture_opens_each_photo_once_and_names_its_profile(capture_dir, tmp_path, monkeypatch):
    """The capture read every photo, then opened it again for its colour profile: each file
    opened twice, its ICC profile read twice. (A LAB profile stands for any non-sRGB one.)"""
    from PIL import ImageCms

    folder = tmp_path / "ns"
    shutil.copytree(capture_dir, folder)
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    photos = sorted((folder / "images").iterdir())
    for p in photos[:2]:
        Image.open(p).convert("RGB").save(p, icc_profile=lab)
    opened: list[Path] = []
    real_open = Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(Path(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    cap = load_capture(folder, tmp_path / "w")
    assert sorted(p for p in opened if p.parent.name == "images") == photos
    notes = [n for n in cap.source["notes"] if "colour profile" in n]
    assert len(notes) == 1 and notes[0].startswith("note: 2 photos carry the colour profile ") and "lab" in notes[0].lower()


def test_the_size_cap_bounds_the_longer_side_not_the_width_as_3dgs_does():
    """FIT_MAX_SIZE caps the longer side, so a portrait photo trains as small as a landscape one
    (3DGS caps the width: it would train a 3000x4000 portrait at 1600x2133)."""
    from splatfilm.fit import capture as capture_module

    assert capture_module._target_size(3000, 4000, None, 1600) == (1200, 1600)
    assert capture_module._target_size(4000, 3000, None, 1600) == (1600, 1200)
    assert capture_module._target_size(1200, 1500, None, 1600) == (1200, 1500)
    assert capture_module._target_size(3000, 4000, 2, 1600) == (1200, 1600)
