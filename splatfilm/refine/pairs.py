"""Training pairs for a per-scene refiner, made from the scene's own capture (Difix3D's curation).

A refiner has to learn what this scene's renders get wrong away from the capture. Each pair
puts a degraded render of a capture view beside the real photo of that view:
- heldout: the capture is split into folds; a model fitted without a fold renders the fold's
  views (novel-view artefacts: floaters, holes, blur where coverage was thin), at the end of
  its run and half way through;
- undertrained: the same fold models early in their run render their own training views
  (the blur and missing detail of an unconverged fit);
- lowres: a model fitted at a lower resolution renders the views at full size (soft detail);
- final: the scene itself renders its capture views (nearly right: teaches the refiner to
  leave good renders alone).

Every pair also carries a reference: the nearest other photo the model was fitted on,
reprojected into the view through the model's rendered depth (`reference_view`), the same
reference the refiner gets at render time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from splatfilm.scene.cameras import Cameras, nearest_views
from splatfilm.render.consistency import reproject
from splatfilm.errors import SplatfilmError
from splatfilm.fit.capture import Capture, scene_extent
from splatfilm.fit.trainer import PARAM_NAMES, FitConfig, fit
from splatfilm.scene.gaussians import Gaussians
from splatfilm.render import rasterization
from splatfilm.refine.refiner import Pair
from splatfilm import report


@dataclass
class PairConfig:
    """How many pairs of each kind to make. folds: leave-fold-out fits (0 = none), each
    `steps` long; undertrained: fractions of that run at which snapshots render the fold's
    training views; lowres: the downscale factor of the low-resolution fit (0 = none)."""

    folds: int = 3
    steps: int = 800
    undertrained: tuple[float, ...] = (0.1, 0.3)
    lowres: float = 2.0
    final: bool = True
    sh_degree: int = 1
    seed: int = 0
    backend: str = "auto"


@dataclass
class View:
    """One rendered view: rgb [H,W,3], alpha and depth [H,W,1], float32 on the CPU."""

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor


def render_view(g: Gaussians, cam: Cameras, backend: str, sh_degree: int | None = None,
                background: torch.Tensor | tuple[float, float, float] | None = None,
                rasterize_mode: str = "classic") -> View:
    """Render one camera (a `Cameras` of length 1) through its own lens without gradients;
    background RGB [3] in [0, 1] (default black), rgb clamped to [0, 1]; rasterize_mode: g's,
    as it was trained."""
    with torch.no_grad():
        out = rasterization(g, **cam.render_arguments(), backend=backend, sh_degree=sh_degree, background=background,
                            rasterize_mode=rasterize_mode)
    return View(out.rgb[0].float().cpu().clamp(0, 1), out.alpha[0].float().cpu(), out.depth[0].float().cpu())


# A reprojected reference is only useful where it sees the same surfaces, so the viewing
# direction weighs twice what it does when a held-out view borrows an appearance
# (fit.appearance.appearance_sources). Neither weight was tuned; changing one changes the picks.
REFERENCE_ANGLE_WEIGHT = 2.0


def reference_sources(cameras: Cameras, candidates: list[int], queries: Cameras, k: int = 2) -> list[list[int]]:
    """For each camera of `queries`, the k candidates (indices into `cameras`) that best see
    what it sees, best first: `scene.cameras.nearest_views` with positions relative to the
    rig's extent (`scene_extent`) and REFERENCE_ANGLE_WEIGHT on the viewing direction."""
    _, radius = scene_extent(cameras)
    return nearest_views(cameras, candidates, queries, scale=radius, angle_weight=REFERENCE_ANGLE_WEIGHT, k=k)


def reference_view(photos: list[torch.Tensor], cameras: Cameras, depths: dict[int, torch.Tensor], cam: Cameras,
                   view: View, candidates: list[int], k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest candidate photos reprojected into `cam` through `view`'s depth: (reference
    [H,W,3], mask [H,W,1]) float32; the nearest fills first, the next fills its holes.
    photos: float [H,W,3] per capture view; depths: rendered depth [H,W,1] per candidate
    (the same model's, so occlusion is tested against what that model believes)."""
    h, w = view.rgb.shape[:2]
    ref = torch.zeros(h, w, 3, dtype=torch.float64)
    mask = torch.zeros(h, w, dtype=torch.bool)
    for j in reference_sources(cameras, candidates, cam, k)[0]:
        warped, vis = reproject(view.depth, cam, photos[j], depths[j], cameras[j], alpha_a=view.alpha)
        new = vis & ~mask
        ref[new] = warped[new]
        mask |= new
    return ref.float(), mask[..., None].float()


def capture_photos(capture: Capture) -> list[torch.Tensor]:
    """The capture's photos as float32 [H,W,3] in [0,1] on the CPU, an object capture's
    multiplied by its masks (what the renders of it are compared with)."""
    out = []
    for i in range(len(capture)):
        im = torch.from_numpy(capture.images[i]).float() / 255.0
        if capture.masks is not None:
            im = im * torch.from_numpy(capture.masks[i])
        out.append(im)
    return out


def render_depths(g: Gaussians, cameras: Cameras, ids: list[int], backend: str,
                  rasterize_mode: str = "classic") -> dict[int, torch.Tensor]:
    """Per camera index in `ids`, g's rendered depth [H,W,1] (camera z, float32, CPU): what
    `reference_view` reprojects photos through; rasterize_mode: g's, as it was trained."""
    return {i: render_view(g, cameras[i], backend, rasterize_mode=rasterize_mode).depth for i in ids}


def _pairs_for(g: Gaussians, capture: Capture, photos, targets: list[int], sources: list[int], backend: str,
               kind: str, depths=None, rasterize_mode: str = "classic") -> list[Pair]:
    """Pairs for `targets` rendered by g, with references from `sources` (never the target
    itself); `depths` of the sources default to g's, rendered once with the targets' views."""
    views = {i: render_view(g, capture.cameras[i], backend, rasterize_mode=rasterize_mode)
             for i in dict.fromkeys(targets)}
    if depths is None:
        depths = {i: views[i].depth if i in views
                  else render_view(g, capture.cameras[i], backend, rasterize_mode=rasterize_mode).depth
                  for i in sources}
    pairs = []
    for i in targets:
        cam = capture.cameras[i]
        view = views[i]
        ref, mask = reference_view(photos, capture.cameras, depths, cam, view, [j for j in sources if j != i])
        pairs.append(Pair(render=view.rgb, target=photos[i], reference=ref, reference_mask=mask, kind=kind,
                          name=capture.names[i]))
    return pairs


def make_pairs(capture: Capture, scene: Gaussians | None, cfg: PairConfig, progress: bool = True,
               rasterize_mode: str = "classic") -> list[Pair]:
    """Pairs from `capture` (the photos the scene was fitted on) and the fitted `scene`.
    rasterize_mode: the scene's, as it was trained; the stand-in fits train in it too, so
    their artefacts are those the scene's renders have."""
    n = len(capture)
    if n < 3:
        raise SplatfilmError(f"a per-scene refiner needs at least 3 capture views to make training pairs, got {n}")
    photos = capture_photos(capture)
    ids = list(range(n))
    fit_cfg = FitConfig(steps=cfg.steps, backend=cfg.backend, sh_degree=cfg.sh_degree, seed=cfg.seed,
                        test_every=0, checkpoint_every=0, antialiased=rasterize_mode == "antialiased")
    pairs: list[Pair] = []
    folds = min(cfg.folds, n // 2)
    for f in range(folds):
        held = ids[f::folds]
        train = [i for i in ids if i not in held]
        sub = capture.subset(train)
        want = {max(1, int(round(cfg.steps * u))) - 1 for u in cfg.undertrained} | {cfg.steps // 2 - 1}
        snaps: dict[int, Gaussians] = {}

        def keep(step: int, g: Gaussians) -> None:
            if step in want:
                snaps[step] = Gaussians(**{k: getattr(g, k).clone() for k in PARAM_NAMES})

        if progress:
            report.status(f"refiner pairs: fold {f + 1}/{folds} ({len(train)} views fitted, {len(held)} held out)")
        result = fit(sub, fit_cfg, progress=progress, on_step=keep)
        g = result.gaussians
        depths = render_depths(g, capture.cameras, train, cfg.backend, rasterize_mode)
        pairs += _pairs_for(g, capture, photos, held, train, cfg.backend, "heldout", depths, rasterize_mode)
        half = snaps.get(cfg.steps // 2 - 1)
        if half is not None:
            pairs += _pairs_for(half, capture, photos, held, train, cfg.backend, "heldout", depths, rasterize_mode)
        for step in sorted(want - {cfg.steps // 2 - 1}):
            if step in snaps:
                pairs += _pairs_for(snaps[step], capture, photos, train, train, cfg.backend, "undertrained", depths,
                                    rasterize_mode)
    if cfg.lowres and cfg.lowres > 1:
        if progress:
            report.status(f"refiner pairs: a fit at 1/{cfg.lowres:g} resolution")
        low = fit(capture.downscaled(cfg.lowres), fit_cfg, progress=progress).gaussians
        pairs += _pairs_for(low, capture, photos, ids, ids, cfg.backend, "lowres", rasterize_mode=rasterize_mode)
    if cfg.final and scene is not None:
        pairs += _pairs_for(scene, capture, photos, ids, ids, cfg.backend, "final", rasterize_mode=rasterize_mode)
    if not pairs:
        raise SplatfilmError("no refiner pairs: enable folds, lowres or final")
    return pairs
