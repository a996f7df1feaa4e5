"""Structure-from-motion (splatfilm.fit.sfm): input errors, video frames, and a real pycolmap run
on a subset of the bundled film set, checked against the set's true cameras."""

from __future__ import annotations

import shutil
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from helpers import REPO

from splatfilm.scene.cameras import Cameras
from splatfilm.errors import SplatfilmError
from splatfilm.io.camera_files import read_colmap, read_transforms_json
from splatfilm.fit.sfm import align_cameras, frames_from_video, read_sfm_summary, run_sfm
from splatfilm.scene.transforms import umeyama

SET = REPO / "scenes" / "set"

# Ten views of the bundled set: every other view of the low ring (10.7 degrees apart) and two
# of the high ring, enough overlap for exhaustive matching, few enough to run in seconds.
SUBSET = [0, 2, 4, 6, 8, 10, 12, 14, 20, 26]


def _noise_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


# ---- input errors ----------------------------------------------------------------------------


def test_no_images(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    with pytest.raises(SplatfilmError, match="no images"):
        run_sfm(tmp_path / "imgs", tmp_path / "work", log=None)
    with pytest.raises(SplatfilmError, match="no such folder"):
        run_sfm(tmp_path / "missing", tmp_path / "work", log=None)
    with pytest.raises(SplatfilmError, match="no images given"):
        run_sfm([], tmp_path / "work", log=None)


def test_mixed_sizes(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    d.mkdir()
    iio.imwrite(d / "a.png", _noise_image(rng, 24, 32))
    iio.imwrite(d / "b.png", _noise_image(rng, 24, 32))
    iio.imwrite(d / "c.png", _noise_image(rng, 30, 40))
    with pytest.raises(SplatfilmError, match=r"differ in size \(a.png is 32x24, c.png is 40x30\)"):
        run_sfm(d, tmp_path / "work", log=None)


def test_unreadable_image(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    d.mkdir()
    iio.imwrite(d / "a.png", _noise_image(rng, 24, 32))
    (d / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a PNG")
    with pytest.raises(SplatfilmError, match=r"b\.png: cannot read image"):
        run_sfm(d, tmp_path / "work", log=None)
    # A truncated file: the header says PNG, the data stops half way.
    good = (d / "a.png").read_bytes()
    (d / "b.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(SplatfilmError, match=r"b\.png: cannot read image"):
        run_sfm(d, tmp_path / "work", log=None)


def test_too_few_registered_says_how_many_and_why(tmp_path):
    # Smooth gradients: SIFT finds (almost) nothing, so nothing registers.
    d = tmp_path / "imgs"
    d.mkdir()
    yy, xx = np.mgrid[0:120, 0:160]
    for i in range(4):
        img = np.stack([xx * 1.5 + i, yy * 2.0, np.full_like(xx, 128)], -1).clip(0, 255).astype(np.uint8)
        iio.imwrite(d / f"f{i}.png", img)
    with pytest.raises(SplatfilmError, match=r"registered 0 of 4 images .*too little texture"):
        run_sfm(d, tmp_path / "work", log=None)
    assert not (tmp_path / "work" / "sparse" / "0").exists()


def test_bad_options(tmp_path):
    with pytest.raises(SplatfilmError, match="matcher"):
        run_sfm(tmp_path, tmp_path / "work", matcher="vocabtree", log=None)
    with pytest.raises(SplatfilmError, match="camera_model"):
        run_sfm(tmp_path, tmp_path / "work", camera_model="FISHEYE", log=None)


# ---- video -------------------------------------------------------------------------------------


def test_video_that_does_not_decode(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(SplatfilmError, match=r"clip\.mp4: cannot decode video"):
        frames_from_video(bad, tmp_path / "frames", 5, log=None)
    with pytest.raises(SplatfilmError, match="no such video"):
        frames_from_video(tmp_path / "missing.mp4", tmp_path / "frames", 5, log=None)


def test_frames_from_video_samples_evenly_and_reuses(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    # 20 frames whose frame number is written into the red channel (flat, so the codec keeps it).
    frames = np.zeros((20, 64, 96, 3), np.uint8)
    frames[..., 0] = (np.arange(20) * 12)[:, None, None]
    video = tmp_path / "clip.mp4"
    iio.imwrite(video, frames, plugin="FFMPEG", fps=10, codec="libx264", quality=10, macro_block_size=16)
    paths = frames_from_video(video, tmp_path / "frames", 5, log=None)
    assert [p.name for p in paths] == [f"frame_{i:05d}.png" for i in range(5)]
    reds = [float(iio.imread(p)[..., 0].mean()) for p in paths]
    # Frames round(k * 19 / 4): 0, 5, 10, 14, 19.
    np.testing.assert_allclose(reds, [0, 60, 120, 168, 228], atol=6)
    messages = []
    again = frames_from_video(video, tmp_path / "frames", 5, log=messages.append)
    assert again == paths and "reusing" in messages[0]


def test_png_writing_survives_pycolmap():
    # pycolmap loaded before Pillow makes Pillow's PNG encoder abort the process; splatfilm.fit.sfm
    # loads Pillow first. A fresh interpreter, since this process has Pillow loaded already.
    code = ("import splatfilm.fit.sfm, pycolmap, numpy as np, imageio.v3 as iio, io; "
            "iio.imwrite(io.BytesIO(), np.zeros((8, 8, 3), np.uint8), extension='.png')")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-500:]


# ---- alignment -------------------------------------------------------------------------------


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(12, 3))
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                  [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                  [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    t, s = np.array([0.3, -2.0, 5.0]), 2.7
    R2, t2, s2 = umeyama(src, s * src @ R.T + t)
    np.testing.assert_allclose(R2, R, atol=1e-10)
    np.testing.assert_allclose(t2, t, atol=1e-10)
    assert s2 == pytest.approx(s)


def test_align_cameras_undoes_a_similarity():
    ref = read_transforms_json(SET / "transforms.json")[:8]
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    moved = ref.transformed(R, np.array([1.0, 2.0, 3.0]), 0.25)
    a = align_cameras(moved, ref)
    assert a.scale == pytest.approx(4.0)
    assert a.centre_errors.max() < 1e-9 and a.rotation_errors.max() < 1e-5


# ---- a real SfM run on the bundled set ----------------------------------------------------------


def test_sfm_registers_bundled_set_subset_and_matches_true_poses(tmp_path):
    truth = read_transforms_json(SET / "transforms.json")
    images = [SET / truth.names[i] for i in SUBSET]
    messages: list[str] = []
    model = run_sfm(images, tmp_path / "work", log=messages.append, seed=0)
    assert model == tmp_path / "work" / "sparse" / "0"
    summary = read_sfm_summary(tmp_path / "work")
    assert summary is not None and summary.registered == len(SUBSET), messages

    est = read_colmap(model)
    assert len(est) == len(SUBSET)
    assert est.camera_model == ["PINHOLE"] * len(SUBSET)  # SIMPLE_PINHOLE, one shared camera
    assert np.ptp(est.fx) == 0
    a = align_cameras(est, truth[SUBSET])
    assert len(a.names) == len(SUBSET)
    # The views span ~4 m; SfM on exact renders should put every camera within a few cm.
    span = np.ptp(truth[SUBSET].centers, axis=0).max()
    assert a.centre_errors.max() < 0.01 * span + 0.02, a.centre_errors
    assert a.rotation_errors.max() < 1.0, a.rotation_errors
    assert est.fx[0] == pytest.approx(truth.fx[0], rel=0.03)

    # A second call with the same images reuses the model instead of running again.
    again: list[str] = []
    assert run_sfm(images, tmp_path / "work", log=again.append, seed=0) == model
    assert len(again) == 1 and "reusing" in again[0]
    # Different images (one dropped) run SfM afresh.
    shutil.rmtree(tmp_path / "work" / "sparse")
    assert isinstance(read_colmap(run_sfm(images[:-1], tmp_path / "work", log=None)), Cameras)
