"""The per-scene refiner: a compact conditional UNet that splatfilm trains on one scene's own capture.

Why per scene. A pretrained diffusion fixer needs downloaded weights and a GPU, and it restores
"plausible" detail from a generic prior, which can drift from frame to frame and from the real
place. A Gaussian scene's artefacts, by contrast, are specific and repeatable: the same floaters,
the same blur where the capture was thin, the same needle-like splats at grazing angles. So a
small network that sees enough (degraded render, real photo) pairs of *this* scene learns *its*
artefact -> photo mapping, from data the user already has, in minutes on a CPU, with no weights
to download. Curation of the pairs (held-out views, under-trained and low-resolution renders,
...) happens in pairs.py; this module gets a list of `Pair`.

The second input, the reference, is where the real detail comes from: for each frame, the
nearest capture photo (or the previous refined frame) reprojected into it through rendered depth,
with a mask of where that reprojection is valid. Where the mask is 1 the net can copy true
texture instead of inventing it; where it is 0 it falls back to cleaning up the render alone.

The net predicts a residual added to the render and its last convolution starts at zero, so an
untrained refiner is exactly the identity and training only ever departs from "leave the render
as it is" as far as the data justifies.

Public API
- `SceneRefinerConfig`: network size and training settings (saved in refiner.json).
- `RefinerNet`: the UNet; `forward(x [N,7,H,W]) -> residual [N,3,H,W]` (channels-first).
- `train_scene_refiner(pairs, cfg, progress, checkpoint) -> SceneRefiner`.
- `SceneRefiner`: the `Refiner` backend; `refine`, `save(folder)`, `SceneRefiner.load(folder)`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from splatfilm.errors import SplatfilmError, first_line
from splatfilm.fit.checkpoint import checkpoint_matches, load_checkpoint, save_checkpoint, step_generator
from splatfilm.io.atomic import atomic_write
from splatfilm.render.metrics import psnr, ssim
from splatfilm.refine.refiner import Pair, check_batch
from splatfilm import report

FORMAT = "splatfilm-scene-refiner"
VERSION = 1
CHECKPOINT_FORMAT = "splatfilm-scene-refiner-checkpoint"
IN_CHANNELS = 7  # render (3) + reference * mask (3) + mask (1)


@dataclass
class SceneRefinerConfig:
    """Network size and training settings. The defaults train 1500 iterations in about 4
    minutes on 2 CPU cores (0.15 s/iteration measured, independent of the pair count and size;
    ~1M parameters, 18 GFLOP per iteration) plus a few seconds of evaluation.

    Sizing, measured on a blur+noise toy scene at equal CPU cost: full-resolution convs at 16
    channels beat a 32-channel net behind a 2x pixel unshuffle by ~6 dB, so the finest level runs
    at full resolution and stays narrow; 80 px crops lose ~0.2 dB against 96 px for 30% less
    time; lr 1e-3 beats 2e-4 by ~2 dB at 1500 iterations (5e-4: -0.7 dB)."""

    base: int = 16  # channels at full resolution
    levels: int = 3  # downsamplings; inputs are padded to a multiple of unshuffle * 2**levels
    unshuffle: int = 1  # >1: the UNet runs at 1/unshuffle resolution (pixel unshuffle, as in FFDNet)
    max_channels: int = 128  # channel cap at the coarse levels, where a doubling costs the most
    iterations: int = 1500
    batch: int = 8
    crop: int = 80  # training crop side in pixels, clamped to the smallest pair
    lr: float = 1e-3  # Adam
    lr_final: float = 0.1  # cosine decay to lr * lr_final at the last iteration
    ssim_lambda: float = 0.2  # loss = (1 - ssim_lambda) * L1 + ssim_lambda * (1 - SSIM)
    flip: bool = True  # random horizontal flips: the artefacts have no handedness
    seed: int = 0
    checkpoint_every: int = 250  # iterations between checkpoints (when a checkpoint path is given)

    def channels(self) -> list[int]:
        """Channels per level, full resolution first (levels + 1 entries)."""
        return [min(self.base * 2**i, max(self.max_channels, self.base)) for i in range(self.levels + 1)]

    def check(self) -> None:
        """SplatfilmError naming the first setting out of range (sizes and counts < 1, levels < 0,
        lr <= 0, lr_final or ssim_lambda outside [0, 1])."""
        for name in ("base", "unshuffle", "iterations", "batch", "crop"):
            if getattr(self, name) < 1:
                raise SplatfilmError(f"scene refiner: {name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.lr_final <= 1.0:
            raise SplatfilmError(f"scene refiner: lr_final must be in [0, 1], got {self.lr_final}")
        if self.levels < 0:
            raise SplatfilmError(f"scene refiner: levels must be 0 or more, got {self.levels}")
        if not 0.0 <= self.ssim_lambda <= 1.0:
            raise SplatfilmError(f"scene refiner: ssim_lambda must be in [0, 1], got {self.ssim_lambda}")
        if not self.lr > 0:
            raise SplatfilmError(f"scene refiner: lr must be positive, got {self.lr}")


# --------------------------------------------------------------------------------------------- net


class _ResBlock(nn.Module):
    """Two 3x3 convs with a skip. No normalisation: GroupNorm statistics are taken over the whole
    image, so a net trained on 96 px crops would see different statistics on full frames; a
    norm-free residual block (as in EDSR) behaves the same on a crop and on the frame around it."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(x)))


class RefinerNet(nn.Module):
    """A small UNet: `forward(x)` with x [N,7,H,W] (render, reference * mask, mask; the colours
    centred to [-1,1]) returns a residual [N,3,H,W] to add to the render in [0,1] units. Any H, W:
    inputs are replicate-padded to a multiple of unshuffle * 2**levels and the output cropped back.
    The output conv is zero-initialised, so an untrained net returns exactly zero."""

    def __init__(self, channels: list[int], unshuffle: int = 1):
        super().__init__()
        self.channels = list(channels)
        self.unshuffle = unshuffle
        levels = len(channels) - 1
        self.head = nn.Conv2d(IN_CHANNELS * unshuffle**2, channels[0], 3, padding=1)
        self.enc = nn.ModuleList(_ResBlock(channels[i]) for i in range(levels))
        # Stride-2 convs rather than pooling: they learn what to keep when halving.
        self.down = nn.ModuleList(nn.Conv2d(channels[i], channels[i + 1], 3, stride=2, padding=1) for i in range(levels))
        self.mid = nn.Sequential(_ResBlock(channels[-1]), _ResBlock(channels[-1]))
        # Bilinear upsampling + conv rather than transposed convs: no checkerboard artefacts,
        # which are exactly the kind of structure a refiner must not add.
        self.up = nn.ModuleList(nn.Conv2d(channels[i + 1], channels[i], 3, padding=1) for i in range(levels))
        self.fuse = nn.ModuleList(nn.Conv2d(2 * channels[i], channels[i], 1) for i in range(levels))
        self.dec = nn.ModuleList(_ResBlock(channels[i]) for i in range(levels))
        # The tail also sees the raw input, so that copying the reference where it is valid, or
        # passing a render through, is one linear layer away rather than a path through the net.
        self.tail = nn.Conv2d(channels[0] + IN_CHANNELS * unshuffle**2, 3 * unshuffle**2, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def levels(self) -> int:
        return len(self.channels) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The residual [N,3,H,W] for the net input x [N,7,H,W] (class docstring)."""
        h0, w0 = x.shape[-2:]
        m = self.unshuffle * 2**self.levels
        ph, pw = (-h0) % m, (-w0) % m
        if ph or pw:
            # Replicate, not zeros: a zero border reads as a dark edge the net would try to fix.
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        if self.unshuffle > 1:
            # Space-to-depth: every pixel still reaches the net losslessly while the convs run
            # on 1/unshuffle**2 as many positions (for big frames or slow machines; see the config).
            x = F.pixel_unshuffle(x, self.unshuffle)
        h = F.silu(self.head(x))
        skips = []
        for enc, down in zip(self.enc, self.down):
            h = enc(h)
            skips.append(h)
            h = F.silu(down(h))
        h = self.mid(h)
        for i in reversed(range(self.levels)):
            skip = skips[i]
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = F.silu(self.up[i](h))
            h = self.dec[i](self.fuse[i](torch.cat([h, skip], dim=1)))
        out = self.tail(torch.cat([F.silu(h), x], dim=1))
        if self.unshuffle > 1:
            out = F.pixel_shuffle(out, self.unshuffle)
        return out[..., :h0, :w0]


def _net_input(render: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[N,H,W,3], [N,H,W,3], [N,H,W,1] in [0,1] -> [N,7,H,W]. Colours are centred so that an
    invalid reference (masked to 0) sits at mid-grey for the net rather than at black."""
    x = torch.cat([(render - 0.5) * 2, (reference - 0.5) * 2 * mask, mask], dim=-1)
    return x.permute(0, 3, 1, 2)


def _apply(net: RefinerNet, render: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unclamped refined images [N,H,W,3]: render + residual. Training uses this (clamping would
    zero the gradient wherever the net overshoots); `refine` clamps."""
    return render + net(_net_input(render, reference, mask)).permute(0, 2, 3, 1)


def _make_net(cfg: SceneRefinerConfig) -> RefinerNet:
    # The init draws from torch's global generator; fork it so that building a refiner neither
    # depends on nor disturbs the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return RefinerNet(cfg.channels(), cfg.unshuffle)


# ----------------------------------------------------------------------------------------- refiner


class SceneRefiner:
    """The per-scene `Refiner` backend. Uses the reference and its mask; ignores depth: the
    reference already arrives reprojected through it, and a few dozen pairs are too few to learn
    anything reliable from raw scene-unit depth. Deterministic: frames are refined one at a time, so a frame's output
    does not depend on the rest of the batch and repeats bit for bit."""

    name = "scene"

    def __init__(self, net: RefinerNet, config: SceneRefinerConfig, stats: dict | None = None):
        self.net = net.eval()
        self.config = config
        self.stats: dict = dict(stats or {})

    @classmethod
    def untrained(cls, config: SceneRefinerConfig | None = None) -> SceneRefiner:
        """A freshly initialised refiner: exactly the identity (its output conv is zero)."""
        config = config or SceneRefinerConfig()
        config.check()
        return cls(_make_net(config), config)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> SceneRefiner:
        """Move the net to `device` in place; returns self, as nn.Module.to does."""
        self.net.to(device)
        return self

    def parameter_count(self) -> int:
        """The number of trainable weights in the net (for reports)."""
        return sum(p.numel() for p in self.net.parameters())

    @torch.no_grad()
    def refine(self, images: torch.Tensor, reference: torch.Tensor | None = None,
               reference_mask: torch.Tensor | None = None, depth: torch.Tensor | None = None) -> torch.Tensor:
        """images [B,H,W,3] in [0,1]; reference [B,H,W,3] in [0,1] or None; reference_mask
        [B,H,W,1] in {0,1} or None (all ones when a reference is given without one); depth is
        ignored. Returns clamp(images + residual, 0, 1) [B,H,W,3], on the images' device and dtype."""
        check_batch(images)
        b, h, w, _ = images.shape
        if reference is not None:
            check_batch(reference, "reference")
            if reference.shape != images.shape:
                raise SplatfilmError(f"refine: reference {tuple(reference.shape)} does not match images {tuple(images.shape)}")
        if reference_mask is not None and tuple(reference_mask.shape) != (b, h, w, 1):
            raise SplatfilmError(f"refine: reference_mask must be [B,H,W,1] = {(b, h, w, 1)}, got {tuple(reference_mask.shape)}")
        if b == 0:
            return images.clone()
        was_training = self.net.training
        self.net.eval()
        dev = self.device
        out = []
        try:
            for i in range(b):
                img = images[i:i + 1].to(dev, torch.float32)
                if reference is None:
                    ref = torch.zeros_like(img)
                    msk = torch.zeros_like(img[..., :1])
                else:
                    ref = reference[i:i + 1].to(dev, torch.float32)
                    msk = (torch.ones_like(img[..., :1]) if reference_mask is None
                           else reference_mask[i:i + 1].to(dev, torch.float32))
                out.append(_apply(self.net, img, ref, msk).clamp_(0, 1).to(images.device, images.dtype))
        finally:
            self.net.train(was_training)
        return torch.cat(out, dim=0)

    def save(self, folder: str | Path) -> None:
        """Write `folder`/refiner.json (format tag, version, config, stats) and `folder`/weights.pt
        (the net's state_dict), each atomically. Weights first: a folder whose refiner.json exists
        always has the weights it describes."""
        folder = Path(folder)
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in self.net.state_dict().items()}, buf)
        atomic_write(folder / "weights.pt", [buf.getvalue()])
        meta = {"format": FORMAT, "version": VERSION, "config": dataclasses.asdict(self.config),
                "parameters": self.parameter_count(), "stats": self.stats}
        atomic_write(folder / "refiner.json", [json.dumps(meta, indent=2).encode() + b"\n"])

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> SceneRefiner:
        """A refiner from a folder written by `save`; one-line SplatfilmErrors name the bad file."""
        folder = Path(folder)
        meta_path, weights_path = folder / "refiner.json", folder / "weights.pt"
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise SplatfilmError(f"{meta_path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SplatfilmError(f"{meta_path}: cannot read scene refiner description ({type(e).__name__})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            tag = meta.get("format") if isinstance(meta, dict) else None
            raise SplatfilmError(f"{meta_path}: not a splatfilm scene refiner (format {tag!r}, expected {FORMAT!r})")
        if meta.get("version") != VERSION:
            raise SplatfilmError(f"{meta_path}: scene refiner version {meta.get('version')!r} is not supported "
                                 f"(this splatfilm reads version {VERSION})")
        cfg = _config_from_dict(meta.get("config"), meta_path)
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise SplatfilmError(f"{weights_path}: no such file") from None
        except Exception as e:  # torch raises several types for truncated or foreign files
            raise SplatfilmError(f"{weights_path}: cannot read refiner weights ({first_line(e)})") from None
        net = _make_net(cfg)
        try:
            net.load_state_dict(state)
        except Exception as e:
            raise SplatfilmError(f"{weights_path}: weights do not match the network in refiner.json ({first_line(e)})") from None
        return cls(net.to(device), cfg, meta.get("stats") or {})


def _config_from_dict(d, where: Path) -> SceneRefinerConfig:
    if not isinstance(d, dict):
        raise SplatfilmError(f"{where}: missing config")
    known = {f.name for f in dataclasses.fields(SceneRefinerConfig)}
    try:
        # Unknown keys are dropped so that a folder written by a newer splatfilm with extra
        # training knobs still loads; the net's shape keys are all known to this version.
        cfg = SceneRefinerConfig(**{k: v for k, v in d.items() if k in known})
        cfg.check()
    except (TypeError, SplatfilmError) as e:
        raise SplatfilmError(f"{where}: bad config ({first_line(e)})") from None
    return cfg


# ---------------------------------------------------------------------------------------- training


def _check_pairs(pairs: list[Pair]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(render, target, reference, mask) float32 CPU tensors per pair, or a one-line error."""
    if not pairs:
        raise SplatfilmError("scene refiner: no training pairs (need at least one render/photo pair)")
    out = []
    for i, p in enumerate(pairs):
        label = f"scene refiner: pair {i}" + (f" ({p.name})" if p.name else "")
        if not torch.is_tensor(p.render) or p.render.ndim != 3 or p.render.shape[-1] != 3:
            shape = tuple(p.render.shape) if torch.is_tensor(p.render) else type(p.render).__name__
            raise SplatfilmError(f"{label}: render must be [H,W,3], got {shape}")
        h, w, _ = p.render.shape
        ref = p.reference if p.reference is not None else torch.zeros(h, w, 3)
        msk = p.reference_mask if p.reference_mask is not None else torch.zeros(h, w, 1)
        for what, t, c in (("target", p.target, 3), ("reference", ref, 3), ("reference_mask", msk, 1)):
            if not torch.is_tensor(t) or tuple(t.shape) != (h, w, c):
                shape = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
                raise SplatfilmError(f"{label}: {what} must be [{h},{w},{c}] like the render, got {shape}")
        out.append(tuple(t.detach().to("cpu", torch.float32) for t in (p.render, p.target, ref, msk)))
    return out


def _pair_for_sample(n: int, seed: int, sample: int) -> int:
    """Sample k of the run draws from an epoch-wise permutation, so every pair is seen once per
    epoch (a plain random draw would starve some pairs on short runs)."""
    perm = torch.randperm(n, generator=step_generator(seed, -1 - sample // n))
    return int(perm[sample % n])


def _batch(data, cfg: SceneRefinerConfig, step: int, crop: int, device) -> tuple[torch.Tensor, ...]:
    """The step's batch: (render, target, reference, mask) [B,crop,crop,C], the same crop and
    flip across the four images of a pair."""
    g = step_generator(cfg.seed, step)
    rows: list[list[torch.Tensor]] = [[], [], [], []]
    for b in range(cfg.batch):
        tensors = data[_pair_for_sample(len(data), cfg.seed, step * cfg.batch + b)]
        h, w = tensors[0].shape[:2]
        y = int(torch.randint(0, h - crop + 1, (1,), generator=g))
        x = int(torch.randint(0, w - crop + 1, (1,), generator=g))
        flip = bool(torch.rand(1, generator=g) < 0.5) and cfg.flip
        for row, t in zip(rows, tensors):
            t = t[y:y + crop, x:x + crop]
            row.append(t.flip(1) if flip else t)
    return tuple(torch.stack(r).to(device) for r in rows)


def _lr_at(cfg: SceneRefinerConfig, step: int) -> float:
    t = step / max(cfg.iterations - 1, 1)
    return cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


def _loss(cfg: SceneRefinerConfig, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    l1 = (out - target).abs().mean()
    if cfg.ssim_lambda == 0:
        return l1
    return (1 - cfg.ssim_lambda) * l1 + cfg.ssim_lambda * (1 - ssim(out, target))


def _fingerprint(pairs: list[Pair], data) -> dict:
    # Names and sizes, not pixel checksums: re-made pairs (a GPU re-render is not bit-stable)
    # should still resume, while a different pair set should not.
    return {"pairs": len(data), "sizes": sorted({(int(t[0].shape[0]), int(t[0].shape[1])) for t in data}),
            "names": [p.name for p in pairs]}


def train_scene_refiner(pairs: list[Pair], cfg: SceneRefinerConfig | None = None, progress: bool = True,
                        checkpoint: Path | None = None, device: str | torch.device = "cpu",
                        stop_at: int | None = None) -> SceneRefiner:
    """Train a `SceneRefiner` on `pairs` (render, target, reference, reference_mask [H,W,*] in
    [0,1]; pairs may differ in size, the four tensors of a pair may not).

    Each iteration takes cfg.batch random crops (cfg.crop px, clamped to the smallest pair; the
    same window and flip for a pair's four images) from pairs visited in a seeded per-epoch order,
    and minimises (1 - ssim_lambda) * L1 + ssim_lambda * (1 - SSIM) of (render + residual) vs target
    with Adam and a cosine learning-rate decay. Everything random comes from cfg.seed and the step
    number, so a run is reproducible and a resumed run replays the uninterrupted one exactly.

    checkpoint: a file; net, optimizer and step are saved to it atomically every
    cfg.checkpoint_every iterations, at the end and on Ctrl-C, and a run resumes from it when it
    exists and was made with the same config and pairs (otherwise it starts over, saying so).
    stop_at: end after that many iterations with a checkpoint, as an interruption would (tests).

    The returned refiner's `stats`: iterations, seconds (including earlier runs of a resumed
    one), final_loss, pairs, parameters, psnr_input and psnr_output (dB, mean over the training
    pairs of render vs target and refined vs target) and the same per pair kind.
    """
    cfg = cfg or SceneRefinerConfig()
    cfg.check()
    data = _check_pairs(pairs)
    device = torch.device(device)
    crop = min(cfg.crop, *(min(t[0].shape[0], t[0].shape[1]) for t in data))
    fingerprint = _fingerprint(pairs, data)
    config_json = json.dumps(dataclasses.asdict(cfg), sort_keys=True)

    net = _make_net(cfg).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    start, elapsed, last_loss = 0, 0.0, float("nan")

    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        ckpt = load_checkpoint(checkpoint, "refiner checkpoint", "; delete it to start over")
        if not checkpoint_matches(ckpt, dataclasses.asdict(cfg), fingerprint) or ckpt.get("format") != CHECKPOINT_FORMAT:
            report.note(f"{checkpoint}: checkpoint is from other settings or pairs; training from the start")
        else:
            net.load_state_dict(ckpt["net"])
            opt.load_state_dict(ckpt["optimizer"])
            start, elapsed, last_loss = int(ckpt["step"]), float(ckpt["elapsed"]), float(ckpt["loss"])

    end = cfg.iterations if stop_at is None else max(start, min(stop_at, cfg.iterations))
    done = start  # iterations completed; the net and optimizer hold exactly their result
    t0 = time.perf_counter()

    def save() -> None:
        if checkpoint is None:
            return
        state = {"format": CHECKPOINT_FORMAT, "step": done, "net": net.state_dict(),
                 "optimizer": opt.state_dict(), "config": config_json, "fingerprint": fingerprint,
                 "elapsed": elapsed + time.perf_counter() - t0, "loss": last_loss}
        save_checkpoint(checkpoint, state)

    bar = report.progress_bar(range(start, end), desc="refiner", unit="it", show=progress, initial=start,
                              total=cfg.iterations)
    updating = False
    try:
        for step in bar:
            render, target, ref, msk = _batch(data, cfg, step, crop, device)
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, step)
            loss = _loss(cfg, _apply(net, render, ref, msk), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # A Ctrl-C inside opt.step() would leave half the weights updated: such a state is
            # not saved (the last periodic checkpoint stands).
            last = float(loss.detach())
            updating = True
            opt.step()
            done, last_loss = step + 1, last
            updating = False
            if step % 10 == 0:
                bar.set_postfix(loss=f"{last_loss:.4f}")
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < end:
                save()
    except KeyboardInterrupt:
        if not updating and done > start:
            save()
        raise
    finally:
        bar.close()
    if done > start or (checkpoint is not None and not checkpoint.exists()):
        save()

    refiner = SceneRefiner(net.eval(), cfg)
    seconds = elapsed + time.perf_counter() - t0
    refiner.stats = {"iterations": done, "seconds": round(seconds, 2),
                     "final_loss": last_loss if math.isfinite(last_loss) else None,  # JSON has no NaN
                     "pairs": len(data), "crop": crop, "parameters": refiner.parameter_count(),
                     **_pair_psnr(refiner, pairs, data)}
    return refiner


def _pair_psnr(refiner: SceneRefiner, pairs: list[Pair], data) -> dict:
    """Mean PSNR (dB) over the pairs of render vs target and refined vs target, overall and per
    kind. These are training pairs, so they measure fit, not generalisation."""
    by_kind: dict[str, list[tuple[float, float]]] = {}
    for p, (render, target, ref, msk) in zip(pairs, data):
        out = refiner.refine(render[None], ref[None], msk[None])[0]
        by_kind.setdefault(p.kind or "", []).append((float(psnr(render.clamp(0, 1), target)), float(psnr(out, target))))
    every = [v for vals in by_kind.values() for v in vals]

    def mean(vals: list[tuple[float, float]], j: int) -> float:
        return round(sum(v[j] for v in vals) / len(vals), 3)

    stats = {"psnr_input": mean(every, 0), "psnr_output": mean(every, 1)}
    if any(by_kind):
        stats["by_kind"] = {k: {"pairs": len(v), "psnr_input": mean(v, 0), "psnr_output": mean(v, 1)}
                            for k, v in by_kind.items()}
    return stats
