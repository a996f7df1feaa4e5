"""Write what the refiner adds back into the persistent scene: Difix3D's progressive 3D update.

Round r of R: for each target camera (the film's shot cameras, or any camera file), take the
nearest capture camera and step a fraction r/R of the way from it toward the target
(positions linearly, orientations by slerp). Render the current scene there, refine the
render (its reference: the nearest capture photos reprojected through the rendered depth),
and add the refined image to training as a pseudo-view that weighs less than a real photo.
Then continue optimising the same Gaussians on photos plus pseudo-views. Stepping out from
the capture lets each round start from renders the previous round already improved, so the
refiner never has to fix a view far from anything it knows.

Each round's scene and pseudo-views are saved in a work folder; a rerun with the same inputs
skips finished rounds.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from splatfilm.scene.cameras import Cameras
from splatfilm.errors import SplatfilmError
from splatfilm.fit.capture import Capture
from splatfilm.fit.trainer import FitConfig, fit
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import rotation_slerp
from splatfilm.io.atomic import atomic_write
from splatfilm.io.digest import array_digest, content_digest
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.io.images import to_uint8
from splatfilm.render import rasterize_mode_key
from splatfilm.refine.pairs import capture_photos, reference_sources, reference_view, render_depths, render_view
from splatfilm.refine.refiner import Refiner
from splatfilm import report


@dataclass
class DistillConfig:
    """rounds: progressive steps from the capture to the targets; views: pseudo-views per
    round (targets evenly subsampled; 0 = all); steps: optimisation steps per round;
    pseudo_weight: a pseudo-view's loss weight (a photo's is 1); lr_means: the position
    learning rate (per unit of scene scale) for the continued training, the end of a fit's
    decayed schedule by default, so the scene is refined rather than re-fitted."""

    rounds: int = 3
    views: int = 12
    steps: int = 400
    pseudo_weight: float = 0.5
    lr_means: float = 1.6e-6
    seed: int = 0
    backend: str = "auto"

    def __post_init__(self) -> None:
        for name in ("pseudo_weight", "lr_means"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise SplatfilmError(f"refine: {name.replace('_', '-')} must be a finite number >= 0, got {v!r}")


def step_toward(start: Cameras, target: Cameras, fraction: float) -> Cameras:
    """Cameras a `fraction` of the way from `start` to `target` (both length C): centres
    linearly, orientations by slerp; intrinsics and size are the target's."""
    a, b = start.to_c2w_opencv(), target.to_c2w_opencv()
    w = np.full(len(a), float(fraction))
    c2w = np.tile(np.eye(4), (len(a), 1, 1))
    c2w[:, :3, :3] = rotation_slerp(a[:, :3, :3], b[:, :3, :3], w)
    c2w[:, :3, 3] = (1 - w[:, None]) * a[:, :3, 3] + w[:, None] * b[:, :3, 3]
    return Cameras(np.linalg.inv(c2w), target.Ks, target.widths, target.heights)


def _subsample(n: int, k: int) -> list[int]:
    if k <= 0 or k >= n:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})


def _save_views(path: Path, cams: Cameras, images: list[np.ndarray], masks: list[np.ndarray] | None) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, viewmats=cams.viewmats, Ks=cams.Ks, widths=cams.widths, heights=cams.heights,
                        images=np.stack(images), masks=np.stack(masks) if masks else np.zeros(0))
    atomic_write(path, [buf.getvalue()])


def _load_views(path: Path) -> tuple[Cameras, list[np.ndarray], list[np.ndarray] | None]:
    with np.load(path, allow_pickle=False) as z:
        cams = Cameras(z["viewmats"], z["Ks"], z["widths"], z["heights"])
        masks = list(z["masks"]) if z["masks"].size else None
        return cams, list(z["images"]), masks


def pseudo_views(scene: Gaussians, capture: Capture, targets: Cameras, refiner: Refiner, fraction: float,
                 backend: str, rasterize_mode: str = "classic") -> tuple[Cameras, list[np.ndarray],
                                                                          list[np.ndarray] | None]:
    """Refined renders of `scene` at cameras `fraction` of the way from each target's nearest
    capture camera to the target: (cameras, uint8 images [H,W,3], object masks [H,W,1] or None).
    rasterize_mode: the scene's, as it was trained."""
    ids = list(range(len(capture)))
    starts = capture.cameras[[row[0] for row in reference_sources(capture.cameras, ids, targets, 1)]]
    cams = step_toward(starts, targets, fraction)
    photos = capture_photos(capture)
    depths = render_depths(scene, capture.cameras, ids, backend, rasterize_mode)
    images, masks = [], []
    for i in range(len(cams)):
        view = render_view(scene, cams[i], backend, rasterize_mode=rasterize_mode)
        ref, mask = reference_view(photos, capture.cameras, depths, cams[i], view, ids)
        out = refiner.refine(view.rgb[None], ref[None], mask[None], view.depth[None])[0]
        images.append(to_uint8(out.detach().cpu().numpy()))  # as a photo's PNG holds it
        if capture.masks is not None:
            masks.append(view.alpha.numpy().astype(np.float32))
    return cams, images, masks if capture.masks is not None else None


def _with_pseudo(capture: Capture, sets: list, weight: float) -> Capture:
    cams = [capture.cameras] + [s[0] for s in sets]
    images = list(capture.images) + [im for s in sets for im in s[1]]
    n_pseudo = len(images) - len(capture)
    names = list(capture.names) + [f"pseudo_{k}" for k in range(n_pseudo)]
    masks = None
    if capture.masks is not None:
        masks = list(capture.masks) + [m for s in sets for m in s[2]]
    valid = None
    if capture.valid is not None:
        valid = list(capture.valid) + [np.ones(im.shape[:2] + (1,), bool) for s in sets for im in s[1]]
    weights = [1.0] * len(capture) + [weight] * n_pseudo
    return Capture(Cameras.concat(cams), images, names, masks, valid, capture.points, capture.point_colors,
                   dict(capture.source), weights)


def scene_digest(scene: Gaussians) -> str:
    """A digest of every parameter of `scene` (means, rotations, scales, opacities, SH), so a
    scene changed in any of them (recoloured, say) is a new input to the work folder's rounds."""
    return array_digest({name: getattr(scene, name).detach().cpu().numpy()
                         for name in ("means", "quats", "scales", "opacities", "sh0", "shN")})


def progressive_update(scene: Gaussians, capture: Capture, targets: Cameras, refiner: Refiner, cfg: DistillConfig,
                       work_dir: Path | None = None, refiner_id: str = "", progress: bool = True,
                       rasterize_mode: str = "classic") -> Gaussians:
    """The refined scene: `cfg.rounds` rounds of pseudo-views toward `targets`, each followed
    by `cfg.steps` steps of continued optimisation of the same Gaussians (module docstring).
    rasterize_mode: the scene's, as it was trained; it renders and trains in it throughout."""
    if len(targets) == 0:
        raise SplatfilmError("refine: no target cameras")
    if cfg.rounds < 1:
        raise SplatfilmError(f"refine: --rounds must be at least 1, got {cfg.rounds}")
    targets = targets[_subsample(len(targets), cfg.views)]
    fit_cfg = FitConfig(steps=cfg.steps, backend=cfg.backend, sh_degree=scene.sh_degree, sh_degree_interval=0,
                        strategy="none", seed=cfg.seed, test_every=0, checkpoint_every=0,
                        lr_means=cfg.lr_means, antialiased=rasterize_mode == "antialiased")
    mode = rasterize_mode_key(rasterize_mode).values()
    base = content_digest(asdict(cfg), refiner_id, targets.viewmats.round(9).tolist(), targets.Ks.round(9).tolist(),
                          capture.names, [content_digest(im.tobytes()) for im in capture.images],
                          scene_digest(scene), *mode)[:16]
    sets = []
    current = scene
    for r in range(1, cfg.rounds + 1):
        fraction = r / cfg.rounds
        views_file = work_dir / f"round{r}.{base}.views.npz" if work_dir else None
        scene_file = work_dir / f"round{r}.{base}.ply" if work_dir else None
        if scene_file is not None and scene_file.exists() and views_file.exists():
            sets.append(_load_views(views_file))
            current = load_gaussians(scene_file)
            if progress:
                report.status(f"refine round {r}/{cfg.rounds}: done before, kept ({scene_file.name})")
            continue
        if progress:
            report.status(f"refine round {r}/{cfg.rounds}: {len(targets)} pseudo-views {fraction:.0%} of the way to the targets")
        sets.append(pseudo_views(current, capture, targets, refiner, fraction, cfg.backend, rasterize_mode))
        if views_file is not None:
            _save_views(views_file, *sets[-1])
        fit_cfg.seed = cfg.seed + r
        current = fit(_with_pseudo(capture, sets, cfg.pseudo_weight), fit_cfg, progress=progress,
                      init=current).gaussians
        if scene_file is not None:
            save_gaussians(scene_file, current)
    return current
