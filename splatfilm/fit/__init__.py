"""`splatfilm fit`: a capture in, a persistent Gaussian asset (PLY + sidecar JSON) out."""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path

import numpy as np

from splatfilm.version import __version__
from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import check_output_file
from splatfilm.io.camera_files import frame_names
from splatfilm.io.gaussian_files import save_gaussians
from splatfilm.render import resolve_backend
from splatfilm.scene.cameras import sizes_text
from splatfilm.fit.appearance import appearance_enabled, appearance_sources, write_appearance
from splatfilm.fit.capture import SFM_CAMERA_MODEL, Capture, load_capture, scene_extent
from splatfilm.assets.sidecar import Sidecar, check_sidecar_free
from splatfilm.assets.asset_frame import (
    canonical_height,
    canonical_transform,
    estimate_up,
    origin_offset_for,
    origin_offset_note,
    robust_bounds,
)
from splatfilm.io.asset_files import (
    appearance_path,
    capture_cameras_path,
    sidecar_path,
    write_capture_cameras,
    write_capture_masks,
)
from splatfilm.fit.trainer import FitConfig, FitResult, check_strategy, evaluate, fit
from splatfilm import report

__all__ = ["Capture", "FitConfig", "FitResult", "evaluate", "fit", "load_capture", "run_fit"]


# Fewer triangulated points than this start no better than a random cloud; the fit then starts
# from its random initialisation instead.
MIN_TRIANGULATED_POINTS = 100
# Longer image side (px) features are found at when triangulating (COLMAP's SIFT caps at 3200;
# half that keeps a phone photo's detail at a quarter of the cost).
TRIANGULATION_MAX_SIZE = 1600
# Longer image side (px) a fit trains at unless --downscale or --max-size says otherwise: a
# 12-megapixel phone photo would make every step several times slower on either backend for
# detail a fit of a few thousand steps does not reach. 3DGS's trainer caps the width at 1.6K;
# the longer side is capped here so that a portrait photo's memory and step time are bounded
# as a landscape one's are (3DGS would train a 3000x4000 portrait at 1600x2133).
FIT_MAX_SIZE = 1600


def points_from_images(capture: Capture, source: Capture, work_dir: Path) -> None:
    """Give `capture`, which has poses but no points, the points `source` (the same capture,
    possibly at another resolution) triangulates to with those poses (colours in [0,1]), in
    place; leave it without when too few come out (see MIN_TRIANGULATED_POINTS). Object
    captures keep only the points inside their masks."""
    from splatfilm.fit.init import carve_by_masks
    from splatfilm.fit.lens_views import pinhole_views
    from splatfilm.fit.triangulate import triangulate_known_poses

    images, cameras = source.images, source.cameras
    if "EQUIRECTANGULAR" in cameras.camera_model:
        # COLMAP has no panorama camera: match and triangulate the cube of pinhole views of each.
        views = pinhole_views(cameras, images)
        images, cameras = views.images, views.cameras
        report.status(f"triangulating through {len(cameras)} pinhole views of the images (a cube of six for each panorama)")
    points, colors = triangulate_known_poses(images, cameras, work_dir, log=report.status)
    if capture.masks is not None and len(points):
        inside = carve_by_masks(points, capture.cameras, capture.masks)
        points, colors = points[inside], colors[inside]
    if len(points) < MIN_TRIANGULATED_POINTS:
        report.note(f"the capture has no point cloud and only {len(points)} points triangulated from its images "
                    f"(needs {MIN_TRIANGULATED_POINTS}); starting from random points")
        return
    report.status(f"the capture has no point cloud: starting from {len(points)} points triangulated from its images")
    capture.points = points.astype(np.float64)
    capture.point_colors = colors.astype(np.float32) / 255.0
    capture.source["points"] = f"triangulated from the images with the capture's poses ({len(points)})"


def output_paths(output: str | Path) -> dict[str, Path]:
    """OUT.ply, its sidecar OUT.json, its capture's cameras OUT.cameras.json (and an object's
    masks, OUT.masks.npz: `io.asset_files.write_capture_masks`), the checkpoint
    OUT.ckpt.pt, SfM/video work folder OUT.sfm and the per-image appearance transforms
    OUT.appearance.json (fits with appearance only)."""
    out = Path(output)
    if out.suffix.lower() not in (".ply", ".spz"):
        raise SplatfilmError(f"{out}: the output of fit is a .ply or .spz file (its sidecar .json is written beside it)")
    check_output_file(out)
    check_sidecar_free(out)
    return {"ply": out, "json": sidecar_path(out), "cameras": capture_cameras_path(out),
            "checkpoint": out.with_suffix(".ckpt.pt"), "work": out.with_suffix(".sfm"),
            "appearance": appearance_path(out)}


def run_fit(data: str | Path, output: str | Path, cfg: FitConfig, resume: bool = False,
            downscale: float | None = None, max_size: int | None = None, eval_data: str | Path | None = None,
            progress: bool = True, stop_at: int | None = None, triangulate: bool = True,
            video_frames: int = 60, camera_model: str = SFM_CAMERA_MODEL,
            masks: str | Path | None = None, known_height: float | None = None) -> Sidecar | dict:
    """Fit DATA into OUTPUT (.ply) and its sidecar; returns the sidecar (or, when stopped early,
    {"interrupted_at": step}).

    eval_data: a second capture (for instance a held-out camera path with ground-truth
    images) to report PSNR/SSIM on after fitting, as `metrics.eval_data`.
    triangulate: a capture with poses but no point cloud gets points triangulated from its
    images with the poses fixed (`fit.triangulate.triangulate_known_poses`, kept in
    OUTPUT.sfm/points) before the fit falls back to a random start. video_frames: how many
    evenly spaced frames a video DATA gives (`io.capture_video.frames_from_video`). camera_model: the
    COLMAP camera model structure-from-motion gives bare images and video frames (OPENCV by
    default: the fit undistorts them). masks: a folder of object masks named like the images
    (`fit.capture.load_capture`): an object capture, its masks written beside OUTPUT
    (OUTPUT.masks.npz) for `clean`. known_height: an object capture's real height in metres
    (its canonical frame's z extent): the sidecar's frame.scale_to_metres (SfM units have no
    scale; films apply it)."""
    paths = output_paths(output)
    backend = resolve_backend(cfg.backend)
    appearance_enabled(cfg.appearance, None)  # a bad --appearance fails before any work
    check_strategy(cfg, backend)  # --absgrad or mcmc where they cannot run
    t0 = time.perf_counter()
    capped = downscale is None and max_size is None
    if capped:
        max_size = FIT_MAX_SIZE
    capture = load_capture(data, paths["work"], downscale=downscale, max_size=max_size, video_frames=video_frames,
                           camera_model=camera_model, masks=masks)
    if known_height is not None and not capture.is_object:
        raise SplatfilmError(f"{data}: --known-height is an object's height, and this capture is a scene (give the "
                             "object's masks with --masks, or RGBA images); a scene's scale is measured on its capture "
                             "cameras after the fit (`splatfilm ground SCENE --camera-height METRES`)")
    if capture.points is None and triangulate:
        # Features come from the images at their own size (up to a cap), not the training size:
        # a downscaled view gives SIFT a fraction of the detail to match.
        full = capture
        if downscale or max_size != TRIANGULATION_MAX_SIZE:
            # Only its images are matched (the points are carved by `capture`'s masks): masks not read again.
            full = load_capture(data, paths["work"], max_size=TRIANGULATION_MAX_SIZE, video_frames=video_frames,
                                camera_model=camera_model)
        points_from_images(capture, full, paths["work"] / "points")
    extra = (load_capture(eval_data, paths["work"] / "eval", downscale=downscale, max_size=max_size,
                          camera_model=camera_model) if eval_data else None)
    centre, radius = scene_extent(capture.cameras)  # a move leaves the extent as it is
    offset = origin_offset_for(centre, radius)
    if offset is not None:
        # Fitted and written centred: a float32 PLY cannot hold the capture's own coordinates.
        capture = capture.translated(-offset)
        if extra is not None:
            extra = extra.translated(-offset)
        report.note(origin_offset_note(offset, radius, "the capture", "fitted and written",
                    f"{paths['cameras'].name} is in that frame; "))
    train_ids, test_ids, split = capture.train_test(cfg.test_every)
    kind = "object" if capture.is_object else "scene"
    for note in capture.source.get("notes", []):
        report.note(note)
    report.status(f"{kind} capture: {len(capture)} images ({len(train_ids)} train, {len(test_ids)} held out: {split}) at "
                  f"{sizes_text(capture.cameras.sizes)}"
                  + (f" (the longer side capped at {max_size} px: --max-size or --downscale to choose)"
                  if capped and max(max(size) for size in capture.cameras.sizes) == max_size else "")
                  + f", source {capture.source['type']}, backend {backend}, {cfg.resolved_steps(backend)} steps")
    trained = cfg.sh_degree_at(cfg.resolved_steps(backend) - 1)
    if trained < cfg.sh_degree:
        report.note(f"SH degree {trained} is trained and stored, not the {cfg.sh_degree} asked: a degree is added "
                    f"every {cfg.sh_degree_interval} steps, so degree {cfg.sh_degree} starts at step "
                    f"{cfg.sh_degree * cfg.sh_degree_interval}: give more --steps, or --sh-degree {trained} to say so")
    result = fit(capture, cfg, checkpoint=paths["checkpoint"], resume=resume, progress=progress, stop_at=stop_at)
    if result.steps < cfg.resolved_steps(backend):
        return {"interrupted_at": result.steps}
    metrics = dict(result.metrics)
    if extra is not None:
        app = None
        if result.appearance is not None:  # each view borrows the nearest training view's appearance
            near = appearance_sources(capture.cameras, result.train_ids, extra.cameras, radius)
            app = result.appearance[near]
        metrics["eval_data"] = {**evaluate(result.gaussians, extra, list(range(len(extra))), backend, appearance=app,
                                           rasterize_mode=cfg.rasterize_mode),
                                "path": str(eval_data)}
    save_gaussians(paths["ply"], result.gaussians, antialiased=cfg.antialiased)
    write_capture_cameras(paths["ply"], capture.cameras)
    write_capture_masks(paths["ply"], capture.masks)
    if result.appearance is not None:
        write_appearance(paths["appearance"], result.appearance, frame_names(capture.cameras), result.train_ids)
    up = estimate_up(capture.cameras)
    lo, hi = robust_bounds(result.gaussians)
    sidecar = Sidecar({
        "splatfilm_version": __version__,
        "asset": paths["ply"].name,
        "kind": kind,
        "source": {**capture.source, "images": len(capture)},
        "frame": {
            "note": ("the capture's own world frame, as its camera file defines it; no normalisation" if offset is None
                     else "the capture's world moved by -origin_offset (x_capture = x_asset + origin_offset), "
                          "as its camera file defines it otherwise; no rotation or scale"),
            **({} if offset is None else {"origin_offset": offset.tolist()}),
            "up": up.tolist(),
            "scale_to_metres": None,
            "bounds_min": lo.tolist(),
            "bounds_max": hi.tolist(),
        },
        "training": {**dataclasses.asdict(cfg), "steps": result.steps, "backend": backend,
                     "sh_degree_trained": result.gaussians.sh_degree, "downscale": downscale, "max_size": max_size,
                     "appearance_model": "affine" if result.appearance is not None else None,
                     "image_sizes": [list(size) for size in capture.cameras.sizes]},
        "num_gaussians": len(result.gaussians),
        # Every render of the asset composites it as it was trained.
        "rasterize_mode": cfg.rasterize_mode,
        "metrics": metrics,
        "timing": {"seconds": round(result.seconds, 2),
                   "seconds_per_step": round(result.seconds / max(result.steps, 1), 4),
                   "total_seconds": round(time.perf_counter() - t0, 2), "machine": platform.machine()},
    })
    if capture.is_object:
        sidecar["canonical_transform"] = canonical_transform(result.gaussians, capture.cameras, up)
        if known_height is not None:
            units = canonical_height(result.gaussians, sidecar["canonical_transform"])
            sidecar["frame"]["scale_to_metres"] = known_height / units
    sidecar.write(paths["json"])
    return sidecar
