"""Optimise Gaussians against a capture: 3D Gaussian Splatting's recipe on either backend.

Adam with gsplat's per-parameter learning rates (simple_trainer's: 3DGS's, except opacity at
0.05 where INRIA's code now uses 0.025; positions scaled by the scene extent and decayed 100x
over the run), loss (1 - 0.2) L1 + 0.2 D-SSIM, SH degree raised every 1000
steps, densification by gsplat's `DefaultStrategy` (pure PyTorch, works on the CPU) or
`MCMCStrategy` (CUDA), an optional cap on the Gaussian count. Object captures also fit
alpha to the mask over a random background each step, so nothing grows outside the object.

Checkpoints hold everything the next step depends on (parameters, Adam moments, strategy
state, random generator states, step, per-image appearance), written atomically
(`splatfilm.fit.checkpoint`, as the scene refiner's are); `resume`
continues from one and ends bit-identical to an uninterrupted run on the CPU.

Photos with differing exposure and white balance get a per-image affine colour transform
applied to the render before the loss (`splatfilm.fit.appearance`); held-out views borrow
their nearest training view's, and are scored without it too (`evaluate`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import MAX_SH_DEGREE
from splatfilm.render.metrics import psnr, ssim
from splatfilm.render import RasterizeMode, rasterization, resolve_backend
from splatfilm.render.rendering import gsplat_lens_arguments
from splatfilm.fit.capture import Capture, scene_extent
from splatfilm.fit.checkpoint import checkpoint_matches, load_checkpoint, save_checkpoint, step_generator
from splatfilm.fit.appearance import (appearance_enabled, appearance_optimizer, appearance_sources, apply_transform,
                                      compose, fold_into_scene, identity_penalty, new_appearance)
from splatfilm.fit.init import carve_by_masks, gaussians_from_points, points_where_views_agree, random_points_in_frustums
from splatfilm.fit.lens_views import pinhole_views
from splatfilm import report

PARAM_NAMES = ("means", "quats", "scales", "opacities", "sh0", "shN")
CPU_DEFAULT_STEPS = 3000
GPU_DEFAULT_STEPS = 30000


@dataclass
class FitConfig:
    """Settings of one fit. `steps` None picks 30000 on gsplat, CPU_DEFAULT_STEPS on cpu;
    densification windows scale with the step count (see `densify_schedule`).
    strategy: default (densify and prune), mcmc (CUDA) or none (optimise the Gaussians
    there are, as refinement's continued training does); sh_degree_interval 0 trains every
    SH band from the first step.
    appearance: per-image affine colour transforms (`splatfilm.fit.appearance`): auto (on for
    captures from photos), affine or none; lr_appearance its Adam learning rate,
    appearance_reg the weight of its pull toward the identity. init_opacity, init_scale (a
    factor on the neighbour spacing), opacity_reg and scale_reg (weights on the mean activated
    opacity and scale): None takes gsplat's simple_trainer recipe for the strategy (mcmc 0.5,
    0.1, 0.01, 0.01; otherwise 0.1, 1, 0, 0). antialiased: train in gsplat's
    antialiased mode (Mip-Splatting's 2D filter with its opacity compensation, simple_trainer's
    --antialiased), which every later render of the asset then uses (its sidecar's
    `rasterize_mode`). absgrad: the default strategy grows Gaussians by AbsGS's statistic, each
    pixel's 2D-mean gradient summed as absolute values (so opposite pulls do not cancel),
    with the threshold 0.0008 gsplat's simple_trainer pairs with it (--absgrad
    --grow_grad2d 0.0008) in place of 0.0002."""

    steps: int | None = None
    backend: str = "auto"
    sh_degree: int = 3
    sh_degree_interval: int = 1000
    strategy: str = "default"
    max_gaussians: int | None = None
    seed: int = 0
    test_every: int = 8
    eval_every: int = 0
    checkpoint_every: int = 500
    ssim_lambda: float = 0.2
    alpha_lambda: float = 0.5
    init_random: int = 50_000
    init_opacity: float | None = None
    init_scale: float | None = None
    opacity_reg: float | None = None
    scale_reg: float | None = None
    lr_means: float = 1.6e-4
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20
    appearance: str = "none"
    lr_appearance: float = 5e-3
    appearance_reg: float = 1.0  # measured against 0.01 and 0.3: splatfilm.fit.appearance
    antialiased: bool = False
    absgrad: bool = False

    def __post_init__(self) -> None:
        # gsplat's simple_trainer pairs each strategy with its starting values and regularisers:
        # MCMC starts opaque and small and needs the opacity pull (it is what lets MCMC find
        # the Gaussians to relocate) and the scale pull; the default recipe has neither.
        mcmc = self.strategy == "mcmc"
        for name, with_mcmc, otherwise in (("init_opacity", 0.5, 0.1), ("init_scale", 0.1, 1.0),
                                           ("opacity_reg", 0.01, 0.0), ("scale_reg", 0.01, 0.0)):
            if getattr(self, name) is None:
                setattr(self, name, with_mcmc if mcmc else otherwise)

    @property
    def rasterize_mode(self) -> RasterizeMode:
        """The renderer's `rasterize_mode` this fit trains (and its asset renders) in."""
        return "antialiased" if self.antialiased else "classic"

    def sh_degree_at(self, step: int) -> int:
        """The highest SH degree trained at `step` (0-based): raised every sh_degree_interval
        steps up to sh_degree, as gsplat's trainer does."""
        if self.sh_degree_interval <= 0:
            return self.sh_degree
        return min(max(step, 0) // self.sh_degree_interval, self.sh_degree)

    def resolved_steps(self, backend: str) -> int:
        """The steps to run: `steps`, or the default for `backend` (gsplat 30000, cpu 3000) when unset."""
        return self.steps or (GPU_DEFAULT_STEPS if backend == "gsplat" else CPU_DEFAULT_STEPS)


def densify_schedule(steps: int) -> dict:
    """DefaultStrategy windows for a run of `steps`: gsplat's at 30k steps (start 500, stop
    15k, opacities reset every 3k: at steps 3000, 6000, 9000 and 12000, done by
    `reset_opacities_if_due` where the installed gsplat would not), scaled down for shorter runs.

    Runs under 15000 steps (the CPU's default 3000 among them) skip the reset, which needs
    thousands of steps to recover from, by setting reset_every past the run's end. That also
    turns off the rest of what DefaultStrategy ties to reset_every: it prunes Gaussians larger
    than 0.1x the scene scale only after the first reset_every steps, so short runs never prune
    oversized Gaussians (only transparent ones). Measured on the bundled set (scenes/set, 1000
    CPU steps, one seed): pruning them from the first refinement on (reset_every at
    refine_start_iter, no reset) gave 31.35 dB held out against 32.51 dB without, so short
    runs keep them."""
    if steps >= 15000:
        return {"refine_start_iter": 500, "refine_stop_iter": steps // 2, "reset_every": 3000, "refine_every": 100}
    return {"refine_start_iter": min(500, steps // 10), "refine_stop_iter": int(steps * 0.6),
            "reset_every": steps * 10, "refine_every": 100}


def mcmc_schedule(steps: int) -> dict:
    """MCMCStrategy's window for a run of `steps`: gsplat's defaults at 30k steps (relocate and
    add Gaussians from step 500 to 25000), both scaled in proportion for other step counts, as
    gsplat's simple_trainer scales them (--steps_scaler)."""
    scale = steps / GPU_DEFAULT_STEPS
    return {"refine_start_iter": round(500 * scale), "refine_stop_iter": round(25_000 * scale)}


@dataclass
class FitResult:
    """What `fit` returns.

    gaussians:  the fitted scene on the CPU, in the frame of the capture's cameras, with the SH
                degree it trained (and the median training photo's colours, with appearance).
    steps:      steps done: the run's full count, or fewer after `stop_at` or an interruption.
    metrics:    {"test": `evaluate`'s psnr (dB), ssim and views} for a finished fit with
                held-out views; else empty.
    seconds:    wall-clock training time, s, earlier runs of a resumed fit included.
    history:    rows every 10 steps ({step, loss, psnr (dB), gaussians}) and, every
                cfg.eval_every steps, {step, eval: held-out metrics}; this run's only.
    appearance: per capture image colour transforms [C,3,4] (held-out images' borrowed), or None.
    train_ids:  indices of the capture images trained on (the rest are held out)."""

    gaussians: Gaussians
    steps: int
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    history: list = field(default_factory=list)
    appearance: torch.Tensor | None = None  # [C,3,4] per capture image (held-out ones borrowed), or None
    train_ids: list = field(default_factory=list)


def check_strategy(cfg: FitConfig, backend: str) -> None:
    """A SplatfilmError where `cfg`'s strategy cannot run: an unknown one, absgrad with a
    strategy that does not densify by 2D gradients, mcmc on a `backend` (resolved: cpu or
    gsplat) without gsplat's CUDA kernels. `run_fit` asks before it loads the capture, which
    may run SfM for minutes."""
    if cfg.strategy not in ("default", "mcmc", "none"):
        raise SplatfilmError(f"unknown strategy {cfg.strategy!r}; choose default, mcmc or none")
    if cfg.absgrad and cfg.strategy != "default":
        raise SplatfilmError(f"--absgrad changes how the default strategy densifies; --strategy {cfg.strategy} "
                             "does not densify by 2D gradients")
    if cfg.strategy == "mcmc" and backend != "gsplat":
        raise SplatfilmError("--strategy mcmc needs gsplat's CUDA kernels (relocation); use the default strategy on the CPU")


def _make_strategy(cfg: FitConfig, steps: int, backend: str):
    check_strategy(cfg, backend)
    if cfg.strategy == "default":
        from gsplat.strategy import DefaultStrategy

        absgrad = {"absgrad": True, "grow_grad2d": 0.0008} if cfg.absgrad else {}
        return DefaultStrategy(verbose=False, **densify_schedule(steps), **absgrad)
    if cfg.strategy == "mcmc":
        from gsplat.strategy import MCMCStrategy

        return MCMCStrategy(cap_max=cfg.max_gaussians or 1_000_000, **mcmc_schedule(steps))
    return None  # "none"


@functools.cache
def _resets_opacity(step_post_backward: Callable) -> bool:
    """Whether DefaultStrategy's `step_post_backward` (the installed gsplat's) resets opacities
    every reset_every steps. gsplat 1.5.3 and earlier test `step % self.reset_every == 0 & step
    > 0`, which Python reads as `step % reset_every == (0 & step) > 0`, never true, so they never
    reset (fixed after 1.5.3, gsplat #776). Asked of the method itself, on one Gaussian on the
    CPU, so that neither a fixed gsplat nor an unfixed one is taken on trust."""
    from gsplat.strategy import DefaultStrategy

    strategy = DefaultStrategy(refine_start_iter=10, refine_stop_iter=10, reset_every=2, verbose=False)
    params = torch.nn.ParameterDict({"means": torch.nn.Parameter(torch.zeros(1, 3)),
                                     "scales": torch.nn.Parameter(torch.full((1, 3), -3.0)),
                                     "quats": torch.nn.Parameter(torch.tensor([[1.0, 0, 0, 0]])),
                                     "opacities": torch.nn.Parameter(torch.full((1,), 3.0))})
    optimizers = {k: torch.optim.Adam([{"params": v, "lr": 1e-3, "name": k}]) for k, v in params.items()}
    means2d = torch.zeros(1, 1, 2, requires_grad=True)
    (means2d.sum() * 0).backward()  # no 2D gradient: nothing grows
    info = {"means2d": means2d, "width": 8, "height": 8, "n_cameras": 1, "gaussian_ids": None,
            "radii": torch.ones(1, 1, 2, dtype=torch.int32)}
    step_post_backward(strategy, params, optimizers, strategy.initialize_state(scene_scale=1.0), 2, info,
                       packed=False)
    return bool(torch.sigmoid(params["opacities"]).max() <= strategy.prune_opa * 2.0 + 1e-6)


def reset_opacities_if_due(strategy, params: torch.nn.ParameterDict, optimizers: dict, state: dict,
                           step: int) -> bool:
    """After DefaultStrategy's `step_post_backward` at `step`: clamp every opacity to
    2 x prune_opa (zeroing their Adam moments) where the strategy's own reset is due (every
    reset_every steps before refine_stop_iter, as gsplat's fixed code and 3DGS do) but the
    installed gsplat does not perform it (see `_resets_opacity`); True when it reset."""
    due = 0 < step < strategy.refine_stop_iter and step % strategy.reset_every == 0
    if not due or _resets_opacity(type(strategy).step_post_backward):
        return False
    from gsplat.strategy.ops import reset_opa

    reset_opa(params=params, optimizers=optimizers, state=state, value=strategy.prune_opa * 2.0)
    return True


def adam_optimizers(params: torch.nn.ParameterDict, cfg: FitConfig, scene_scale: float) -> dict:
    """One Adam per parameter group (gsplat's strategies expect that), at cfg's learning rates;
    positions' rate scaled by the scene extent `scene_scale` (world units)."""
    lrs = {"means": cfg.lr_means * scene_scale, "quats": cfg.lr_quats, "scales": cfg.lr_scales,
           "opacities": cfg.lr_opacities, "sh0": cfg.lr_sh0, "shN": cfg.lr_shN}
    # eps as gsplat's trainer uses: tiny, so rarely-updated Gaussians still move. The fused
    # kernel (CPU and CUDA) does the same update in one pass: about 4x the default loop at
    # 100k Gaussians of SH degree 3, where Adam was a tenth of a CPU fit step.
    return {k: torch.optim.Adam([{"params": params[k], "lr": lrs[k], "name": k}], eps=1e-15, fused=True)
            for k in PARAM_NAMES}


def _initial(capture: Capture, cfg: FitConfig, rng: np.random.Generator, train_ids: list[int]) -> Gaussians:
    if capture.points is not None and len(capture.points) >= 4:
        return gaussians_from_points(capture.points, capture.point_colors, cfg.sh_degree, cfg.init_opacity, cfg.init_scale)
    # The searches below are pinhole maths: fisheye and panorama images take part through
    # pinhole views resampled from them (a panorama's cube of six); pinhole ones as they are.
    cameras, images, ids = capture.cameras, capture.images, train_ids
    if any(m != "PINHOLE" for m in cameras.camera_model):
        views = pinhole_views(capture.cameras, capture.images)
        train = set(train_ids)
        cameras, images, ids = views.cameras, views.images, [v for v, s in enumerate(views.source) if int(s) in train]
    if capture.masks is not None:
        # An object capture: start inside the visual hull its masks carve out.
        pts = np.zeros((0, 3))
        for _ in range(20):
            cand = random_points_in_frustums(cameras, cfg.init_random * 4, rng)
            pts = np.concatenate([pts, cand[carve_by_masks(cand, capture.cameras, capture.masks)]])
            if len(pts) >= cfg.init_random:
                break
        if len(pts) < 4:
            raise SplatfilmError("the object masks carve out no volume that every view agrees on; check the masks")
        pts = pts[: cfg.init_random]
    else:
        return _random_scene_initial(cameras, images, ids, cfg, rng)
    return gaussians_from_points(pts, rng.uniform(0, 1, pts.shape), cfg.sh_degree, cfg.init_opacity, cfg.init_scale)


def _random_scene_initial(cameras: Cameras, images: list[np.ndarray], train_ids: list[int], cfg: FitConfig,
                          rng: np.random.Generator) -> Gaussians:
    """A scene capture without points: random pixels of the training views placed at the depth
    their neighbouring views agree on, in their pixel's colour (see `points_where_views_agree`).
    Points spread through the frustums instead fill the room with grey fog the fit never
    clears (17.8 dB on a 72-view room after 3000 steps)."""
    pts, colors, _ = points_where_views_agree(cameras, images, train_ids, cfg.init_random, rng)
    if len(pts) < max(4, cfg.init_random // 20):
        # No two views look the same way (too few images): nothing to agree on.
        report.note(f"the views overlap too little to place {cfg.init_random} starting points; "
                    "starting from random points in their frustums")
        pts = random_points_in_frustums(cameras, cfg.init_random, rng)
        colors = rng.uniform(0, 1, pts.shape)
    return gaussians_from_points(pts, colors, cfg.sh_degree, cfg.init_opacity, cfg.init_scale)


def _to_float(image: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(image).to(device=device, dtype=torch.float32) / 255.0


def evaluate(gaussians: Gaussians, capture: Capture, indices: list[int], backend: str, sh_degree: int | None = None,
             appearance: torch.Tensor | None = None, rasterize_mode: str = "classic") -> dict:
    """Mean PSNR (dB) and SSIM over `indices` of the capture (object captures over black), over
    the capture's valid pixels only (the rest black in both images for SSIM).

    Keys: `psnr`, `ssim` (zero-padded, as 3DGS computes it; the one benchmarks/README.md's
    tables print), `ssim_valid` (over the pixels whose window lies inside the image, as gsplat
    counts it: `render.metrics.ssim`), `views`. appearance: per-image transforms
    [len(capture),3,4] applied to the renders (a fit's held-out views carry their nearest
    training view's), or None; with them, psnr/ssim/ssim_valid score the transformed renders and
    `psnr_plain`, `ssim_plain`, `ssim_valid_plain` the same renders without a transform (gsplat's
    trainer scores held-out views so: its appearance embedding at zero, no bilateral grid).
    rasterize_mode: the renderer's, as the Gaussians were trained."""
    if not indices:
        return {}
    scores: dict[str, list[float]] = {}
    with torch.no_grad():
        for i in indices:
            out = rasterization(gaussians, **capture.cameras[i].render_arguments(), backend=backend,
                                sh_degree=sh_degree, rasterize_mode=rasterize_mode)
            plain = out.rgb[0].cpu()
            preds = {"": plain}
            if appearance is not None:
                preds = {"": apply_transform(plain, appearance[i].cpu()), "_plain": plain}
            gt = _to_float(capture.images[i], "cpu")
            if capture.masks is not None:
                gt = gt * torch.from_numpy(capture.masks[i])
            mask = None
            if capture.valid is not None:  # as the loss sees them (`_step_loss`)
                mask = torch.from_numpy(capture.valid[i]).float()
                gt = gt * mask
            for suffix, pred in preds.items():
                pred = pred.clamp(0, 1)
                if mask is not None:
                    pred = pred * mask
                for key, value in ((f"psnr{suffix}", psnr(pred, gt, mask)), (f"ssim{suffix}", ssim(pred, gt, mask=mask)),
                                   (f"ssim_valid{suffix}", ssim(pred, gt, mask=mask, padding="valid"))):
                    scores.setdefault(key, []).append(float(value))
    return {**{k: float(np.mean(v)) for k, v in scores.items()}, "views": len(indices)}


def _image_for_step(train_ids: list[int], seed: int, step: int) -> int:
    """Each epoch visits every training image once, in an order drawn from (seed, epoch)."""
    n = len(train_ids)
    perm = torch.randperm(n, generator=step_generator(seed, -1 - step // n))
    return train_ids[int(perm[step % n])]


@dataclass
class _Training:
    """What a fit's steps change, and so what its checkpoints hold: the Gaussians' parameters
    (PARAM_NAMES), one Adam each, the densification strategy (None: none) and its state, and
    the per-image appearance transforms with their optimizer (None without)."""

    params: torch.nn.ParameterDict
    optimizers: dict
    strategy: Any
    strategy_state: dict
    appearance: torch.nn.ParameterDict | None = None
    appearance_optimizer: torch.optim.Optimizer | None = None

    def gaussians(self) -> Gaussians:
        """The Gaussians as they stand, detached (on the fit's device)."""
        return Gaussians(**{k: self.params[k].detach() for k in PARAM_NAMES})


def _checkpoint_state(step: int, run: _Training, cfg: FitConfig, elapsed: float, fingerprint: dict) -> dict:
    state = {
        "step": step,
        "params": {k: v.detach().cpu() for k, v in run.params.items()},
        "optimizers": {k: o.state_dict() for k, o in run.optimizers.items()},
        "strategy_state": {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in run.strategy_state.items()},
        "torch_rng": torch.get_rng_state(),
        "config": json.dumps(dataclasses.asdict(cfg)),
        "fingerprint": fingerprint,
        "elapsed": elapsed,
    }
    if run.appearance is not None:
        state["appearance"] = {k: v.detach().cpu() for k, v in run.appearance.items()}
        state["appearance_optimizer"] = run.appearance_optimizer.state_dict()
    return state


def fit(capture: Capture, cfg: FitConfig, checkpoint: Path | None = None, resume: bool = False,
        progress: bool = True, stop_at: int | None = None, init: Gaussians | None = None,
        on_step: Callable[[int, Gaussians], None] | None = None) -> FitResult:
    """Fit Gaussians to `capture`. Checkpoints go to `checkpoint` every cfg.checkpoint_every
    steps (and on Ctrl-C); with `resume`, training continues from it. `stop_at` ends the run
    early after that step with a checkpoint, as an interruption would (for tests).

    init: Gaussians to start from instead of the capture's points (continued training; its
    SH degree must be cfg.sh_degree). on_step(step, gaussians): called after each step with
    detached parameters (snapshots of an under-trained model, say); it must not modify them."""
    backend = resolve_backend(cfg.backend)
    device = torch.device("cuda" if backend == "gsplat" else "cpu")
    _check_gsplat_lenses(capture, cfg, backend)
    steps = cfg.resolved_steps(backend)
    _check_sh_degree(cfg, init)
    use_appearance = appearance_enabled(cfg.appearance, capture.source.get("type"))
    train_ids, test_ids, _ = capture.train_test(cfg.test_every)
    _, scene_scale = scene_extent(capture.cameras)
    scene_scale *= 1.1  # as gsplat's trainer does
    fingerprint = _fingerprint(capture, steps)

    torch.manual_seed(cfg.seed)
    rng_np = np.random.default_rng(cfg.seed)
    strategy = _make_strategy(cfg, steps, backend)
    ckpt = _read_checkpoint(checkpoint, resume, fingerprint, cfg)
    if ckpt is not None:
        init = Gaussians(**ckpt["params"])
    elif init is None:
        init = _initial(capture, cfg, rng_np, train_ids)
    run = _start_training(init, cfg, strategy, scene_scale, device)
    if ckpt is not None:
        _restore_training(run, ckpt, device)
    if use_appearance:
        _start_appearance(run, len(capture), cfg, device, ckpt, checkpoint)
    start_step, elapsed = (ckpt["step"] + 1, ckpt["elapsed"]) if ckpt is not None else (0, 0.0)

    lr_means0 = cfg.lr_means * scene_scale
    gamma = 0.01 ** (1.0 / steps)
    history: list[dict] = []

    def save(step: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, _checkpoint_state(step, run, cfg, elapsed + time.perf_counter() - t_start,
                                                          fingerprint))

    t_start = time.perf_counter()
    from splatfilm.render.rasterize_to_pixels import FIRST_RENDER_NOTE, kernels_cached

    # The cpu backend's first step after an install compiles its kernels (~14 s): the bar's
    # ETA from that step alone reads hours; the note stands until the step's numbers replace it.
    bar = report.progress_bar(range(start_step, steps), desc="fit", unit="step", show=progress,
                              initial=start_step, total=steps,
                              postfix=FIRST_RENDER_NOTE if backend == "cpu" and not kernels_cached() else None)
    last_step = start_step - 1
    try:
        for step in bar:
            for g in run.optimizers["means"].param_groups:
                g["lr"] = lr_means0 * gamma**step
            degree = cfg.sh_degree_at(step)
            loss, pred, gt, info = _step_loss(run, capture, cfg, _image_for_step(train_ids, cfg.seed, step), step,
                                              degree, backend, device)
            if run.strategy is not None:
                run.strategy.step_pre_backward(run.params, run.optimizers, run.strategy_state, step, info)
            loss.backward()
            with _signals_held():  # a stop lands before or after the step's updates, never between
                _apply_updates(run, cfg, step, info)
                last_step = step
            if on_step is not None:
                on_step(step, run.gaussians())
            if step % 10 == 0:
                history.append(_show_progress(bar, step, loss, pred, gt, len(run.params["means"])))
            if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and test_ids:
                history.append(_evaluate_held_out(run, capture, train_ids, test_ids, backend, degree, scene_scale, step,
                                                  cfg.rasterize_mode))
            if stop_at is not None and step >= stop_at:
                save(step)
                break
            if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < steps:
                save(step)
    except KeyboardInterrupt:
        if last_step >= start_step:
            save(last_step)
        raise
    bar.close()
    seconds = elapsed + time.perf_counter() - t_start
    return _result(run, capture, train_ids, test_ids, scene_scale, backend, last_step + 1, steps, seconds, history,
                   cfg.sh_degree_at(last_step), cfg.rasterize_mode)


def _check_gsplat_lenses(capture: Capture, cfg: FitConfig, backend: str) -> None:
    """Raise, before initialisation, for a camera gsplat cannot train through with cfg's
    strategy (or a lens it lacks, a panorama)."""
    if backend != "gsplat":
        return
    for i in range(len(capture.cameras)):
        lens = gsplat_lens_arguments(capture.cameras.camera_model[i], torch.tensor(capture.cameras.distortion[i]))
        if lens.get("with_ut") and cfg.strategy == "default":
            # gsplat's 3DGUT path leaves its 2D means without gradients, which the default
            # strategy's densification statistics read (gsplat issue 726); MCMC needs none.
            raise SplatfilmError(f"{capture.names[i]}: a distorted {capture.cameras.camera_model[i]} camera on "
                                 "backend gsplat trains through 3DGUT, which gives the default strategy no "
                                 "2D gradients; use --strategy mcmc, or --backend cpu")


def _check_sh_degree(cfg: FitConfig, init: Gaussians | None) -> None:
    if not 0 <= cfg.sh_degree <= MAX_SH_DEGREE:
        raise SplatfilmError(f"--sh-degree must be 0-{MAX_SH_DEGREE}, got {cfg.sh_degree}")
    if init is not None and init.sh_degree != cfg.sh_degree:
        raise SplatfilmError(f"the starting Gaussians have SH degree {init.sh_degree}, the fit asks for {cfg.sh_degree}")


def _fingerprint(capture: Capture, steps: int) -> dict:
    """What a checkpoint must have been made for to be resumed: the capture's image count, first
    and last names and sizes, its file's split (where it names one) and the step count."""
    sizes = [list(size) for size in capture.cameras.sizes]
    return {"images": len(capture), "names": capture.names[:3] + capture.names[-3:], "steps": steps,
            # One size as [w, h], as before, so checkpoints written then still resume.
            "sizes": sizes if len(sizes) > 1 else sizes[0],
            # The file's own split, where it has one: edited, the held-out views are others.
            **({} if capture.split is None else {"split": [list(part) for part in capture.split]})}


def _read_checkpoint(checkpoint: Path | None, resume: bool, fingerprint: dict, cfg: FitConfig) -> dict | None:
    """The checkpoint to resume from (None: start afresh, said so when `resume` finds none);
    raises for one that cannot be read or was made for another capture or other settings."""
    if not resume:
        return None
    if checkpoint is None or not checkpoint.exists():
        report.note(f"--resume: no checkpoint at {checkpoint}; starting from step 0")
        return None
    ckpt = load_checkpoint(checkpoint)
    if not checkpoint_matches(ckpt, dataclasses.asdict(cfg), fingerprint):
        raise SplatfilmError(f"{checkpoint}: checkpoint is from a different capture or settings; "
                             "rerun without --resume to start over")
    return ckpt


def _start_training(init: Gaussians, cfg: FitConfig, strategy, scene_scale: float, device) -> _Training:
    """Trainable copies of `init` on `device`, their optimizers and the strategy's fresh state."""
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(getattr(init, k).to(device).clone()) for k in PARAM_NAMES})
    optimizers = adam_optimizers(params, cfg, scene_scale)
    if cfg.strategy == "default":
        strategy.check_sanity(params, optimizers)
        strategy_state = strategy.initialize_state(scene_scale=scene_scale)
    elif strategy is None:
        strategy_state = {}
    else:
        strategy_state = strategy.initialize_state()
    return _Training(params, optimizers, strategy, strategy_state)


def _restore_training(run: _Training, ckpt: dict, device) -> None:
    """The optimizers, strategy state and torch's random state as the checkpoint holds them."""
    for k, o in run.optimizers.items():
        o.load_state_dict(ckpt["optimizers"][k])
    run.strategy_state.update({k: (v.to(device) if torch.is_tensor(v) else v)
                               for k, v in ckpt["strategy_state"].items()})
    torch.set_rng_state(ckpt["torch_rng"])


def _start_appearance(run: _Training, images: int, cfg: FitConfig, device, ckpt: dict | None,
                      checkpoint: Path | None) -> None:
    """Per-image appearance transforms for `images` images and their optimizer: identities, or
    as the checkpoint `ckpt` holds them (raises when it holds none)."""
    run.appearance = new_appearance(images, device)
    run.appearance_optimizer = appearance_optimizer(run.appearance, cfg.lr_appearance)
    if ckpt is None:
        return
    if "appearance" not in ckpt:
        raise SplatfilmError(f"{checkpoint}: checkpoint has no appearance transforms; rerun without --resume")
    with torch.no_grad():
        for k, v in run.appearance.items():
            v.copy_(ckpt["appearance"][k].to(device))
    run.appearance_optimizer.load_state_dict(ckpt["appearance_optimizer"])


def _step_loss(run: _Training, capture: Capture, cfg: FitConfig, idx: int, step: int, degree: int, backend: str,
               device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    """(loss, render [H,W,3], target [H,W,3], the renderer's info) of one step on image `idx`
    at SH degree `degree`: (1 - ssim_lambda) L1 + ssim_lambda D-SSIM over the image's valid
    pixels, for object captures over a random background with the alpha's distance from the
    mask, weighted by the image's weight, plus the appearance transform's pull toward the
    identity."""
    gt = _to_float(capture.images[idx], device)
    background = None
    if capture.masks is not None:
        background = torch.rand(3, generator=step_generator(cfg.seed, step)).to(device)
        a = torch.from_numpy(capture.masks[idx]).to(device)
        gt = gt * a + (1 - a) * background
    g = Gaussians(**{k: run.params[k] for k in PARAM_NAMES})
    out = rasterization(g, **capture.cameras[idx].render_arguments(device=device), backend=backend, sh_degree=degree,
                        background=background, rasterize_mode=cfg.rasterize_mode, absgrad=cfg.absgrad)
    pred = out.rgb[0]
    if run.appearance is not None:
        pred = apply_transform(pred, compose(run.appearance, idx), out.alpha[0] if background is not None else None,
                               background)
    if capture.valid is not None:
        # Both black where a pixel carries no data (nerfstudio multiplies render and photo by
        # its mask alike): what the photo holds there reaches neither L1 nor SSIM's window.
        valid = torch.from_numpy(capture.valid[idx]).to(device=device, dtype=torch.float32)
        pred, gt = pred * valid, gt * valid
    l1 = (pred - gt).abs().mean()
    loss = (1 - cfg.ssim_lambda) * l1 + cfg.ssim_lambda * (1 - ssim(pred, gt))
    if capture.masks is not None:
        off = (out.alpha[0] - a).abs()
        loss = loss + cfg.alpha_lambda * (off * valid if capture.valid is not None else off).mean()
    if capture.weights is not None:
        loss = loss * float(capture.weights[idx])
    if run.appearance is not None:
        loss = loss + cfg.appearance_reg * identity_penalty(run.appearance, idx)
    if cfg.opacity_reg:
        loss = loss + cfg.opacity_reg * g.activated_opacities.mean()
    if cfg.scale_reg:
        loss = loss + cfg.scale_reg * g.activated_scales.mean()
    return loss, pred, gt, out.info


def _apply_updates(run: _Training, cfg: FitConfig, step: int, info: dict) -> None:
    """One step's updates, gradients computed: every optimizer's, then the strategy's
    densification and pruning, then the cap on the Gaussian count."""
    for o in run.optimizers.values():
        o.step()
        o.zero_grad(set_to_none=True)
    if run.appearance_optimizer is not None:
        run.appearance_optimizer.step()
        run.appearance_optimizer.zero_grad(set_to_none=True)
    if cfg.strategy == "default":
        run.strategy.step_post_backward(run.params, run.optimizers, run.strategy_state, step, info, packed=False)
        reset_opacities_if_due(run.strategy, run.params, run.optimizers, run.strategy_state, step)
    elif cfg.strategy == "mcmc":
        run.strategy.step_post_backward(run.params, run.optimizers, run.strategy_state, step, info,
                                        lr=run.optimizers["means"].param_groups[0]["lr"])
    if cfg.max_gaussians and len(run.params["means"]) > cfg.max_gaussians:
        _cap(run.params, run.optimizers, run.strategy_state, cfg.max_gaussians)


def _show_progress(bar, step: int, loss: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor, gaussians: int) -> dict:
    """The step's loss, PSNR (dB) and Gaussian count, shown on the progress bar; their history row."""
    with torch.no_grad():
        p = float(psnr(pred.detach().clamp(0, 1), gt))
    bar.set_postfix(loss=f"{float(loss.detach()):.4f}", psnr=f"{p:.2f}", n=gaussians)
    return {"step": step, "loss": float(loss.detach()), "psnr": p, "gaussians": gaussians}


def _evaluate_held_out(run: _Training, capture: Capture, train_ids: list[int], test_ids: list[int], backend: str,
                       degree: int, scene_scale: float, step: int, rasterize_mode: str) -> dict:
    """PSNR and SSIM of the held-out views at this step, printed; their history row."""
    m = evaluate(run.gaussians(), capture, test_ids, backend, degree,
                 _borrowed(run.appearance, capture, train_ids, test_ids, scene_scale), rasterize_mode)
    plain = f" (without the borrowed appearance {m['psnr_plain']:.2f} dB)" if "psnr_plain" in m else ""
    report.status(f"step {step + 1}: held-out PSNR {m['psnr']:.2f} dB{plain}, SSIM {m['ssim']:.4f}")
    return {"step": step, "eval": m}


def _result(run: _Training, capture: Capture, train_ids: list[int], test_ids: list[int], scene_scale: float,
            backend: str, done: int, steps: int, seconds: float, history: list, trained_degree: int,
            rasterize_mode: str) -> FitResult:
    """The fit's result after `done` of `steps` steps: the Gaussians on the CPU, with the SH
    bands it trained (`trained_degree`), the median training photo's colours folded in where
    appearance was fitted, and, for a finished fit, the held-out views' metrics (rendered in
    `rasterize_mode`; with appearance, both with the borrowed transforms and without: `evaluate`)."""
    # Bands the schedule never reached are still their starting zeros: stored, they would make
    # the file a third bigger and tell other tools of view-dependent colour there is not.
    final = Gaussians(**{k: run.params[k].detach().cpu() for k in PARAM_NAMES}).with_sh_degree(trained_degree)
    final_appearance = _borrowed(run.appearance, capture, train_ids, test_ids, scene_scale)
    if final_appearance is not None:  # the scene takes the median training photo's colours
        final, final_appearance = fold_into_scene(final, final_appearance, train_ids)
    metrics = {}
    if done == steps and test_ids:
        metrics["test"] = evaluate(final, capture, test_ids, backend, appearance=final_appearance,
                                   rasterize_mode=rasterize_mode)
    return FitResult(gaussians=final, steps=done, metrics=metrics, seconds=seconds, history=history,
                     appearance=final_appearance, train_ids=train_ids)


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT/SIGTERM while one step changes parameters, optimizer and strategy state, and
    act on them when the step is whole: a Ctrl-C landing between two optimizers' updates left a
    checkpoint of the previous step with part of this one applied, which --resume applied
    again. (Python runs handlers on the main thread only; elsewhere nothing is held.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, _frame: caught.append(signum)) for s in stops}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in caught[:1]:
            handler = previous[s]
            if callable(handler):
                handler(s, None)
            elif handler != signal.SIG_IGN:
                signal.raise_signal(s)


def _borrowed(appearance: torch.nn.ParameterDict | None, capture: Capture, train_ids: list[int], test_ids: list[int],
              scale: float) -> torch.Tensor | None:
    """The per-image transforms [C,3,4] (detached, on the CPU) with every held-out image's
    replaced by that of its nearest training view: held-out views never trained their own."""
    if appearance is None:
        return None
    with torch.no_grad():
        t = compose(appearance).cpu()
    if test_ids:
        src = appearance_sources(capture.cameras, train_ids, capture.cameras[test_ids], scale)
        t[test_ids] = t[src]
    return t


def _cap(params, optimizers, state, cap: int) -> None:
    """Keep the `cap` most opaque Gaussians (prune the rest)."""
    from gsplat.strategy.ops import remove

    n = len(params["means"])
    keep = torch.topk(params["opacities"].detach(), cap).indices
    mask = torch.ones(n, dtype=torch.bool, device=params["means"].device)
    mask[keep] = False
    remove(params=params, optimizers=optimizers, state=state, mask=mask)
