"""`splatfilm refine SCENE.ply DATA (--shots FILM.yaml | --cameras CAMERAS) -o OUT.ply`.

The target cameras come resolved: the command line reads the camera file, or the film's
cameras in SCENE's frame (film.asset_cameras), and passes them in.

Work folder OUT.refine/ (beside the output) keeps what a rerun can reuse: the per-scene
refiner (refiner/, trained once per scene and capture), its training checkpoint, and each
round's pseudo-views and scene. An interrupted refine resumes where it stopped.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from splatfilm.version import __version__
from splatfilm.assets.sidecar import Sidecar, carry_rasterize_mode, check_sidecar_free
from splatfilm.io.asset_files import sidecar_path
from splatfilm.scene.cameras import Cameras
from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write, check_output_file, make_folder
from splatfilm.io.gaussian_files import gaussian_file_digest, load_gaussians, save_gaussians
from splatfilm.render import rasterize_mode_key, resolve_backend
from splatfilm.io.digest import content_digest
from splatfilm.io.cache import read_record
from splatfilm.refine.distill import DistillConfig, progressive_update
from splatfilm.refine.pairs import PairConfig, make_pairs
from splatfilm.refine.loader import load_refiner, refiner_digest
from splatfilm.refine.refiner import Pair, Refiner
from splatfilm import report

if TYPE_CHECKING:
    from splatfilm.fit.capture import Capture
    from splatfilm.refine.scene_refiner import SceneRefinerConfig
    from splatfilm.scene.gaussians import Gaussians


def save_pairs(path: Path, pairs: list[Pair]) -> None:
    """Keep made pairs (an expensive step: several fits) so an interrupted refine reuses them."""
    arrays = {"kinds": np.array([p.kind for p in pairs]), "names": np.array([p.name for p in pairs])}
    for f in ("render", "target", "reference", "reference_mask"):
        arrays[f] = np.stack([getattr(p, f).numpy() for p in pairs])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, [buf.getvalue()])


def load_pairs(path: Path) -> list[Pair] | None:
    """Pairs saved by `save_pairs`, or None if the file cannot be read (they are made again)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            cols = {f: torch.from_numpy(z[f]) for f in ("render", "target", "reference", "reference_mask")}
            return [Pair(cols["render"][i], cols["target"][i], cols["reference"][i], cols["reference_mask"][i],
                         str(z["kinds"][i]), str(z["names"][i])) for i in range(len(z["kinds"]))]
    except (OSError, ValueError, KeyError):
        return None


def scene_refiner_for(capture: Capture, scene: Gaussians | None, folder: Path, pair_cfg: PairConfig,
                      train_cfg: SceneRefinerConfig, key: str, progress: bool = True,
                      rasterize_mode: str = "classic") -> Refiner:
    """The per-scene refiner in `folder`, trained there first unless a finished one with the
    same key (capture, scene, settings, rasterize_mode) is there; rasterize_mode: the
    scene's, as it was trained (its pairs are rendered and fitted in it)."""
    from splatfilm.refine.scene_refiner import SceneRefiner, train_scene_refiner

    stats = read_record(folder / "refiner.json").get("stats")
    if isinstance(stats, dict) and stats.get("key") == key:
        if progress:
            report.status(f"per-scene refiner: reusing {folder}")
        return SceneRefiner.load(folder)
    t0 = time.perf_counter()
    make_folder(folder)
    cache = folder / f"pairs.{key}.npz"
    pairs = load_pairs(cache) if cache.exists() else None
    if pairs is None:
        pairs = make_pairs(capture, scene, pair_cfg, progress=progress, rasterize_mode=rasterize_mode)
        save_pairs(cache, pairs)
    elif progress:
        report.status(f"per-scene refiner: reusing the {len(pairs)} pairs in {cache.name}")
    if progress:
        kinds = {k: sum(p.kind == k for p in pairs) for k in dict.fromkeys(p.kind for p in pairs)}
        report.status(f"per-scene refiner: {len(pairs)} pairs ({', '.join(f'{v} {k}' for k, v in kinds.items())}) "
                      f"in {time.perf_counter() - t0:.0f} s; training")
    refiner = train_scene_refiner(pairs, train_cfg, progress=progress, checkpoint=folder / "train.ckpt.pt")
    refiner.stats["key"] = key
    refiner.stats["pairs_seconds"] = round(time.perf_counter() - t0, 1)
    refiner.save(folder)
    return refiner


def run_refine(scene_path: str | Path, data: str | Path, output: str | Path, targets: Cameras,
               targets_source: str | Path = "", refiner: str | Path | None = None,
               pair_cfg: PairConfig | None = None, train_cfg: SceneRefinerConfig | None = None,
               distill_cfg: DistillConfig | None = None,
               downscale: float | None = None, progress: bool = True, refiner_prompt: str = "") -> Sidecar:
    """Refine SCENE (fitted from capture DATA) toward the `targets` cameras (in SCENE's frame;
    `targets_source`: where they came from, for messages and the sidecar); writes OUTPUT
    (.ply) and its sidecar .json and returns the sidecar's content. refiner: a local refiner
    folder (diffusers or splatfilm); None trains a per-scene one. refiner_prompt: the text a
    diffusers refiner is conditioned on ("" as sd-turbo; Difix was trained with "remove degradation")."""
    from splatfilm.fit.capture import load_capture
    from splatfilm.refine.scene_refiner import SceneRefinerConfig

    t0 = time.perf_counter()
    scene_path, output = Path(scene_path), Path(output)
    if output.suffix.lower() != ".ply":
        raise SplatfilmError(f"{output}: the output of refine is a .ply file")
    check_output_file(output)
    check_sidecar_free(output)
    if len(targets) == 0:
        raise SplatfilmError(f"{targets_source or 'refine'}: no target cameras")
    sidecar = Sidecar.of_asset(scene_path) or Sidecar()  # read first: a broken one fails before any work
    distill_cfg = distill_cfg or DistillConfig()
    pair_cfg = pair_cfg or PairConfig()
    train_cfg = train_cfg or SceneRefinerConfig()
    backend = resolve_backend(distill_cfg.backend)
    distill_cfg.backend = pair_cfg.backend = backend
    work = output.with_suffix(".refine")
    scene = load_gaussians(scene_path)
    # The scene trains and renders as it was trained; the output's sidecar says so (where an
    # .spz flag alone said so, it did not).
    rasterize_mode = "antialiased" if carry_rasterize_mode(scene_path, sidecar) else "classic"
    # Every input is read before the capture, whose structure-from-motion can take long.
    if refiner is None and refiner_prompt:
        raise SplatfilmError("refine: --refiner-prompt needs --refiner (a diffusers refiner folder)")
    ref = (load_refiner(refiner, device="cuda" if backend == "gsplat" else "cpu", prompt=refiner_prompt)
           if refiner is not None else None)
    capture = load_capture(data, work / "capture", downscale=downscale)
    offset = sidecar.origin_offset
    note = capture.cameras.in_asset_frame(offset, data, scene_path)[1] if offset is not None else None
    if note is not None:
        # The capture the scene was fitted centred from, in its own world: into the scene's frame.
        report.note(note)
        capture = capture.translated(-offset)
    lens = sorted(set(capture.cameras.camera_model) - {"PINHOLE"})
    if lens:
        # Its pairs reproject photos through pinhole depth maps; a fisheye or panorama would misalign.
        raise SplatfilmError(f"{data}: refine takes pinhole (or OPENCV) captures; this one has {', '.join(lens)} "
                             "cameras (fit fits them through their lens; refining them is not supported yet)")
    report.status(f"refine: {scene_path.name} ({len(scene)} Gaussians) from {len(capture)} capture views toward "
                  f"{len(targets)} target cameras, backend {backend}")

    if ref is not None:
        refiner_id = f"{ref.name}:{refiner_digest(refiner)}"
        if refiner_prompt:  # a prompt changes what the refiner adds (none keeps earlier work folders' keys)
            refiner_id += f":{content_digest(refiner_prompt)[:16]}"
    else:
        # Unsorted keys: the form this key was first made in, so refiners trained before are reused.
        mode = rasterize_mode_key(rasterize_mode).values()
        key = content_digest([gaussian_file_digest(scene_path), capture.names,
                              [content_digest(im.tobytes()) for im in capture.images],
                              asdict(pair_cfg), asdict(train_cfg), *mode], sort_keys=False)[:16]
        ref = scene_refiner_for(capture, scene, work / "refiner", pair_cfg, train_cfg, key, progress,
                                rasterize_mode)
        refiner_id = f"scene:{key}"
    refined = progressive_update(scene, capture, targets, ref, distill_cfg, work_dir=work, refiner_id=refiner_id,
                                 progress=progress, rasterize_mode=rasterize_mode)
    save_gaussians(output, refined)
    sidecar.update({
        "splatfilm_version": __version__,
        "asset": output.name,
        "num_gaussians": len(refined),
        "refined": {"from": str(scene_path), "data": str(data), "targets": str(targets_source),
                    "target_cameras": len(targets), "refiner": refiner_id, **asdict(distill_cfg),
                    "seconds": round(time.perf_counter() - t0, 1)},
    })
    sidecar.write(sidecar_path(output))
    return sidecar
