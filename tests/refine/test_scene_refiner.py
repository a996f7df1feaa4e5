"""The per-scene refiner (splatfilm/refine/scene_refiner.py): identity at init, learns a toy
denoising task and generalises to unseen images, uses the reference, determinism, save/load,
checkpoint resume and one-line errors. Tiny configs keep the file to seconds on 2 CPU cores."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from splatfilm.errors import SplatfilmError
from splatfilm.render.metrics import psnr
from splatfilm.refine import scene_refiner as sr
from splatfilm.refine.loader import load_refiner
from splatfilm.refine.refiner import Pair, Refiner
from splatfilm.refine.scene_refiner import SceneRefiner, SceneRefinerConfig, train_scene_refiner

SIZE = 48
# Small enough to learn the toy tasks in seconds; FAST only has to run, not learn.
TINY = {"base": 16, "levels": 2, "max_channels": 32, "unshuffle": 1, "batch": 8, "crop": 32, "lr": 2e-3}
FAST = {"base": 8, "levels": 2, "max_channels": 16, "unshuffle": 1, "batch": 4, "crop": 16, "lr": 2e-3}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These nets and crops are tiny: a second thread buys nothing, and on a busy machine
    OpenMP's waiting between many small ops makes two threads many times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def smooth_images(n: int, seed: int, size: int = SIZE) -> torch.Tensor:
    """[n,size,size,3] in [0,1]: low-frequency random colour fields (6x6 noise, bicubic up)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g)
    up = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return up.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def add_noise(t: torch.Tensor, seed: int, sigma: float = 0.08) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (t + sigma * torch.randn(t.shape, generator=g)).clamp(0, 1)


def blur(t: torch.Tensor) -> torch.Tensor:
    """A strong box blur of [n,H,W,3] (replicate borders)."""
    x = t.permute(0, 3, 1, 2)
    x = F.avg_pool2d(F.pad(x, (4, 4, 4, 4), mode="replicate"), 9, stride=1)
    return x.permute(0, 2, 3, 1).contiguous()


def no_ref(size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(size, size, 3), torch.zeros(size, size, 1)


def denoise_pairs() -> list[Pair]:
    """12 noisy renders of smooth targets, plus 4 clean ones (render == target), so the net also
    sees renders that need nothing done."""
    targets = smooth_images(16, seed=1)
    renders = add_noise(targets, seed=2)
    z3, z1 = no_ref()
    pairs = [Pair(renders[i], targets[i], z3, z1, "noisy", f"n{i}") for i in range(12)]
    pairs += [Pair(targets[i], targets[i], z3, z1, "clean", f"c{i}") for i in range(12, 16)]
    return pairs


@pytest.fixture(scope="module")
def denoiser() -> SceneRefiner:
    return train_scene_refiner(denoise_pairs(), SceneRefinerConfig(iterations=150, **TINY), progress=False)


def test_untrained_net_is_exactly_the_identity():
    refiner = SceneRefiner.untrained(SceneRefinerConfig(base=8, levels=3, max_channels=16))
    assert isinstance(refiner, Refiner) and refiner.name == "scene"
    g = torch.Generator().manual_seed(0)
    # An odd size exercises the pad-to-a-multiple-of-8 and crop-back path.
    images = torch.rand(2, 37, 53, 3, generator=g)
    reference = torch.rand(2, 37, 53, 3, generator=g)
    mask = (torch.rand(2, 37, 53, 1, generator=g) > 0.5).float()
    assert torch.equal(refiner.refine(images), images)
    assert torch.equal(refiner.refine(images, reference, mask), images)
    for unshuffle in (1, 2):
        net = sr.RefinerNet([8, 16], unshuffle=unshuffle)
        x = torch.rand(1, 7, 21, 30, generator=g)
        assert torch.equal(net(x), torch.zeros(1, 3, 21, 30))


def test_learns_to_denoise_unseen_images_and_leaves_clean_ones(denoiser):
    targets = smooth_images(8, seed=11)  # not in the training set
    noisy = add_noise(targets, seed=12)
    before = float(psnr(noisy, targets))
    after = float(psnr(denoiser.refine(noisy), targets))
    # Measured: ~22.2 dB in, ~32 dB out. The identity (an untrained net) gains nothing.
    assert after > before + 6.0, (before, after)
    clean_out = denoiser.refine(targets)
    assert float(psnr(clean_out, targets)) > 35.0  # measured ~41 dB
    s = denoiser.stats
    assert s["iterations"] == 150 and s["pairs"] == 16 and s["parameters"] > 0 and s["seconds"] > 0
    assert s["by_kind"]["noisy"]["psnr_output"] > s["by_kind"]["noisy"]["psnr_input"] + 6.0
    assert s["final_loss"] == s["final_loss"]  # not NaN


def textured(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """Smooth fields plus per-pixel random texture: detail that a blur destroys for good."""
    g = torch.Generator().manual_seed(seed + 1000)
    return (smooth_images(n, seed, size) + 0.2 * (torch.rand(n, size, size, 3, generator=g) - 0.5)).clamp(0, 1)


def test_uses_the_reference_where_the_mask_says_it_is_valid():
    # Renders are blurred; half the pairs carry the true photo as a reference (mask 1), half none.
    targets = textured(16, seed=3)
    renders = blur(targets)
    z3, z1 = no_ref(32)
    one = torch.ones(32, 32, 1)
    pairs = [Pair(renders[i], targets[i], targets[i] if i % 2 else z3, one if i % 2 else z1) for i in range(16)]
    # Copying is local, so small crops teach it; 16 px crops keep this cheap.
    refiner = train_scene_refiner(pairs, SceneRefinerConfig(iterations=300, **{**TINY, "crop": 16, "batch": 16}),
                                  progress=False)
    new = textured(4, seed=13)
    with_ref = float(psnr(refiner.refine(blur(new), new, torch.ones(4, 32, 32, 1)), new))
    without = float(psnr(refiner.refine(blur(new)), new))
    masked_off = float(psnr(refiner.refine(blur(new), new, torch.zeros(4, 32, 32, 1)), new))
    assert with_ref > without + 5.0, (with_ref, without)
    assert masked_off == pytest.approx(without, abs=1e-4)  # a masked-off reference is no reference


def test_refine_and_training_are_deterministic(denoiser):
    images = add_noise(smooth_images(3, seed=21), seed=22)
    a = denoiser.refine(images)
    assert torch.equal(a, denoiser.refine(images))
    # A frame's output does not depend on the rest of its batch.
    assert torch.equal(a[1:2], denoiser.refine(images[1:2]))
    cfg = SceneRefinerConfig(iterations=12, **FAST)
    w1 = train_scene_refiner(denoise_pairs(), cfg, progress=False).net.state_dict()
    w2 = train_scene_refiner(denoise_pairs(), cfg, progress=False).net.state_dict()
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    w3 = train_scene_refiner(denoise_pairs(), SceneRefinerConfig(iterations=12, **{**FAST, "seed": 1}),
                             progress=False).net.state_dict()
    assert not all(torch.equal(w1[k], w3[k]) for k in w1)


def test_save_load_round_trip_and_bad_files(denoiser, tmp_path):
    folder = tmp_path / "refiner"
    denoiser.save(folder)
    meta = json.loads((folder / "refiner.json").read_text())
    assert meta["format"] == "splatfilm-scene-refiner" and meta["version"] == 1
    assert meta["config"]["base"] == TINY["base"] and meta["stats"]["iterations"] == 150
    loaded = load_refiner(folder)
    assert isinstance(loaded, SceneRefiner)
    images = add_noise(smooth_images(2, seed=31), seed=32)
    assert torch.equal(loaded.refine(images), denoiser.refine(images))

    (folder / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(SplatfilmError, match="weights.pt"):
        load_refiner(folder)
    (folder / "weights.pt").unlink()
    with pytest.raises(SplatfilmError, match="weights.pt: no such file"):
        SceneRefiner.load(folder)
    denoiser.save(folder)
    (folder / "refiner.json").write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(SplatfilmError, match="refiner.json: not a splatfilm scene refiner"):
        SceneRefiner.load(folder)
    (folder / "refiner.json").write_text("{truncated")
    with pytest.raises(SplatfilmError, match="refiner.json"):
        SceneRefiner.load(folder)
    # Weights from a different network shape.
    SceneRefiner.untrained(SceneRefinerConfig(base=8, levels=1)).save(tmp_path / "other")
    (folder / "refiner.json").write_text(json.dumps(meta))
    (folder / "weights.pt").write_bytes((tmp_path / "other" / "weights.pt").read_bytes())
    with pytest.raises(SplatfilmError, match="do not match"):
        SceneRefiner.load(folder)


def _weights(refiner: SceneRefiner) -> dict:
    return refiner.net.state_dict()


def test_checkpoint_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    cfg = SceneRefinerConfig(iterations=40, checkpoint_every=15, **FAST)
    pairs = denoise_pairs()
    straight = _weights(train_scene_refiner(pairs, cfg, progress=False))

    ckpt = tmp_path / "refiner.ckpt"
    part = train_scene_refiner(pairs, cfg, progress=False, checkpoint=ckpt, stop_at=20)
    assert part.stats["iterations"] == 20 and ckpt.exists()
    resumed = train_scene_refiner(pairs, cfg, progress=False, checkpoint=ckpt)
    assert resumed.stats["iterations"] == 40
    w = _weights(resumed)
    assert all(torch.equal(straight[k], w[k]) for k in w)  # bit for bit
    # A finished checkpoint resumes to the same refiner without training again.
    again = train_scene_refiner(pairs, cfg, progress=False, checkpoint=ckpt)
    assert all(torch.equal(straight[k], v) for k, v in _weights(again).items())

    # Ctrl-C mid-run saves the last completed iteration; the rerun picks up from there.
    ckpt2 = tmp_path / "interrupted.ckpt"
    real_lr = sr._lr_at

    def interrupt_at_27(cfg, step):
        if step == 27:
            raise KeyboardInterrupt
        return real_lr(cfg, step)

    monkeypatch.setattr(sr, "_lr_at", interrupt_at_27)
    with pytest.raises(KeyboardInterrupt):
        train_scene_refiner(pairs, cfg, progress=False, checkpoint=ckpt2)
    assert torch.load(ckpt2, weights_only=True)["step"] == 27
    monkeypatch.setattr(sr, "_lr_at", real_lr)
    w = _weights(train_scene_refiner(pairs, cfg, progress=False, checkpoint=ckpt2))
    assert all(torch.equal(straight[k], w[k]) for k in w)

    # A checkpoint made with other settings is not resumed: the run starts over.
    other = SceneRefinerConfig(iterations=40, checkpoint_every=15, **{**FAST, "seed": 5})
    fresh = _weights(train_scene_refiner(pairs, other, progress=False))
    w = _weights(train_scene_refiner(pairs, other, progress=False, checkpoint=ckpt))
    assert all(torch.equal(fresh[k], w[k]) for k in w)


def test_bad_pairs_are_one_line_errors():
    with pytest.raises(SplatfilmError, match="no training pairs"):
        train_scene_refiner([], SceneRefinerConfig(**TINY), progress=False)
    z3, z1 = no_ref()
    bad = [Pair(torch.rand(SIZE, SIZE, 3), torch.rand(SIZE, SIZE - 1, 3), z3, z1, name="view7")]
    with pytest.raises(SplatfilmError, match=r"pair 0 \(view7\): target must be \[48,48,3\]"):
        train_scene_refiner(bad, SceneRefinerConfig(**TINY), progress=False)
    bad = [Pair(torch.rand(SIZE, SIZE, 3), torch.rand(SIZE, SIZE, 3), z3, torch.zeros(SIZE, SIZE, 3))]
    with pytest.raises(SplatfilmError, match="reference_mask"):
        train_scene_refiner(bad, SceneRefinerConfig(**TINY), progress=False)
    refiner = SceneRefiner.untrained(SceneRefinerConfig(base=8, levels=1))
    with pytest.raises(SplatfilmError, match=r"\[B,H,W,3\]"):
        refiner.refine(torch.rand(8, 8, 3))
