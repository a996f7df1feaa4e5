"""Floater clean-up: remove the Gaussians no capture view supports.

A fitted scene keeps Gaussians that the capture never shows: behind walls, outside every
frame, or fitted to one photo and hanging in front of it. Seen from a new angle they are
floaters. A Gaussian is supported by a view when it shows there: its largest blend weight in
that view's image, alpha * T at its best pixel (`render.contributions.peak_weights`), is at
least `min_peak` (default 1/255: the 8-bit step, and the smallest alpha the renderer
composites). Those supported by fewer than `min_views` of the capture's cameras are removed;
with the default 2, that is the unseen ones and the ones only one photo shows. The weights are
counted in the asset's rasterize_mode (`assets.sidecar.asset_rasterize_mode`; a film's
`rasterize_mode:` for its asset), as it renders.

A view used to count when the Gaussian's blend weight summed over the image reached 0.05 px:
an area, so faint or fine content that every view sees fell under it. On the bundled set that
removed 6,520 of 70,000 Gaussians, 3,110 of them seen by 10 or more of the 48 views; a sheer
veil of 1.5 mm splats of opacity 0.02 (alpha 0.29 where it lies, in all 48 views) went whole.
By the peak the set loses 3,327 (4.8%), 3,319 of them among the 6,520; the veil stays. (gsplat's
trainer prunes by opacity alone, below 0.005.)

    splatfilm clean SCENE.ply -o CLEAN.ply [--cameras CAMS] [--min-views 2] [--min-peak 0.00392]

and in a film script, under an asset: `clean: true` (or `clean: {min_views: 3}`), applied
before its edits once the script's shots are checked, and cached beside the script.

An object asset also loses what lies outside its visual hull: fit records an object capture's
masks beside it (ASSET.masks.npz, one for each of ASSET.cameras.json's views), and a Gaussian
whose centre lands off the object in at least half of the views that have it in frame
(`outside_hull`, HULL_OUTSIDE_SHARE) is removed. The views show such Gaussians (they are not
unseen) but only against the background: the see-through haze a fit from masked phone photos
leaves around and under the object (the flowerpot's, down to 70 units below its base).

A rigged asset's rig follows, as it follows an edit: the clean copy's rig (and a film's
performing figure) binds the Gaussians kept, their rows in their order (`Rig.select_gaussians`),
then in the order the copy's file holds them (`io.rig_files.carry_rig`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.render.contributions import peak_weights
from splatfilm.render.rendering import RasterizeMode, rasterize_mode_key, resolve_backend
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.yamlfields import At, integer, mapping, number, show
from splatfilm import report


MIN_PEAK = 1.0 / 255.0
# The share of the views with a Gaussian's centre in frame that must put it off the object's
# mask for the Gaussian to go: a half leaves what a few poor masks cut off.
HULL_OUTSIDE_SHARE = 0.5


@dataclass
class CleanupSettings:
    """min_views: views that must show a Gaussian for it to stay; min_peak: its largest blend
    weight in a view (alpha * T at its best pixel, in (0, 1)) that counts as showing it there;
    width: the views' render width in pixels (None: the cameras' own; smaller is faster and
    counts more coarsely: a Gaussian under a pixel across is spread over more of a pixel)."""

    min_views: int = 2
    min_peak: float = MIN_PEAK
    width: int | None = None

    def __post_init__(self) -> None:
        if self.min_views < 1:
            raise SplatfilmError(f"min_views must be >= 1, got {self.min_views}")
        if not 0 < self.min_peak < 1:
            raise SplatfilmError(f"min_peak must be in (0, 1), got {self.min_peak}")


def supported(gaussians: Gaussians, cameras: Cameras, settings: CleanupSettings | None = None,
              backend: str = "auto", progress: bool = False,
              rasterize_mode: RasterizeMode = "classic") -> torch.Tensor:
    """Which Gaussians [N] (bool) enough of `cameras` show (module docstring), their blend
    weights counted in `rasterize_mode` (the Gaussians' as they were trained). backend: the
    renderer asked for; the peaks are counted by the cpu backend's kernels whichever it is
    (`render.rendering.peak_blend_weights`), so a name it does not know is still an error."""
    settings = settings or CleanupSettings()
    resolve_backend(backend)
    if settings.width is not None:
        cameras = Cameras.concat([c.resized(settings.width, max(1, round(settings.width * int(c.heights[0])
                                                                           / int(c.widths[0])))) for c in cameras])
    bar = None
    if progress:
        bar = report.progress_bar(total=len(cameras), desc="views", unit="view")
    try:
        peaks = peak_weights(gaussians, cameras, (lambda _: bar.update()) if bar is not None else None,
                             rasterize_mode)
    finally:
        if bar is not None:
            bar.close()
    return (peaks >= settings.min_peak).sum(dim=0) >= settings.min_views


def outside_hull(gaussians: Gaussians, cameras: Cameras, masks: list) -> torch.Tensor:
    """Which Gaussians [N] (bool) lie outside an object's visual hull: their centres land off
    the object (mask below 0.5) in at least HULL_OUTSIDE_SHARE of the views (C cameras, C masks
    [H,W,1] at the cameras' sizes) that have them in frame. Ones no view has in frame are not."""
    from splatfilm.assets.visual_hull import hull_votes

    if len(masks) != len(cameras):
        raise SplatfilmError(f"{len(masks)} masks for {len(cameras)} capture cameras")
    seen, inside = hull_votes(gaussians.means.detach().cpu().numpy().astype(np.float64), cameras, masks)
    return torch.from_numpy((seen > 0) & (seen - inside >= HULL_OUTSIDE_SHARE * seen))


def capture_masks_of(scene: str | Path, cameras: Cameras, cameras_path: str | Path | None = None) -> list | None:
    """The object masks fit recorded beside `scene` when they belong to `cameras` (the capture's
    own, not another --cameras file), checked against their sizes; None for none."""
    from splatfilm.io.asset_files import capture_masks_path, read_capture_masks

    if cameras_path is not None:
        return None
    masks = read_capture_masks(scene)
    if masks is None:
        return None
    sizes = [(m.shape[1], m.shape[0]) for m in masks]
    if sizes != list(zip(cameras.widths.tolist(), cameras.heights.tolist())):
        raise SplatfilmError(f"{capture_masks_path(scene)}: its masks do not match the {len(cameras)} capture cameras "
                             "beside it (remove it to clean without the object's outline)")
    return masks


def capture_cameras_of(scene: str | Path, cameras_path: str | Path | None = None) -> Cameras:
    """`cameras_path`'s cameras (in the scene's frame: `cameras_in_asset_frame`), else the
    capture's recorded beside the scene, else an error."""
    from splatfilm.assets.asset_frame import cameras_in_asset_frame
    from splatfilm.io.asset_files import capture_cameras_path, read_capture_cameras
    from splatfilm.io.camera_files import read_cameras

    if cameras_path is not None:
        return cameras_in_asset_frame(scene, read_cameras(cameras_path), cameras_path)
    cams = read_capture_cameras(scene)
    if cams is None:
        raise SplatfilmError(f"{scene}: no capture cameras recorded beside it ({capture_cameras_path(scene).name}, "
                             "which fit writes); give the capture's camera file with --cameras")
    return cams


def clean_asset(scene: str | Path, output: str | Path, cameras_path: str | Path | None = None,
                settings: CleanupSettings | None = None, backend: str = "auto", progress: bool = True) -> dict:
    """`splatfilm clean`: write `output` (any Gaussian file) with the unsupported Gaussians of `scene`
    removed, its sidecar noting what was done, the cameras counted with beside it and, for a
    rigged `scene`, its rig binding the Gaussians kept (OUTPUT.rig.npz, as `edit` writes one).
    Counted in `scene`'s own rasterize_mode; an object with its masks recorded beside it also
    loses what lies outside its visual hull (`outside_hull`), its masks carried to `output`.
    Returns {kept, removed, views, outside_hull (None without masks), seconds}."""
    from splatfilm.assets.sidecar import Sidecar, asset_rasterize_mode, carry_rasterize_mode, check_sidecar_free
    from splatfilm.io.asset_files import (check_beside_free, rig_path, sidecar_path, write_capture_cameras,
                                          write_capture_masks)
    from splatfilm.assets.asset_frame import robust_bounds
    from splatfilm.io.gaussian_files import check_gaussian_output, load_gaussians, save_gaussians
    from splatfilm.io.rig_files import carry_rig, load_rig

    t0 = time.perf_counter()
    scene, output = Path(scene), Path(output)
    if not scene.exists():
        raise SplatfilmError(f"{scene}: no such file")
    if output.resolve() == scene.resolve():
        raise SplatfilmError(f"{output}: the output would overwrite the input; write the clean copy beside it")
    check_gaussian_output(output)
    check_sidecar_free(output)
    check_beside_free(scene, output)
    settings = settings or CleanupSettings()
    # Read first: a broken sidecar, camera file or rig fails before any work.
    sidecar = Sidecar.of_asset(scene) or Sidecar()
    cameras = capture_cameras_of(scene, cameras_path)
    g = load_gaussians(scene)
    rig = load_rig(rig_path(scene), len(g)) if rig_path(scene).exists() else None
    masks = capture_masks_of(scene, cameras, cameras_path)
    keep = supported(g, cameras, settings, backend, progress, asset_rasterize_mode(scene))
    outside = outside_hull(g, cameras, masks) if masks is not None else torch.zeros(len(g), dtype=torch.bool)
    keep &= ~outside
    clean = g.select(torch.nonzero(keep).reshape(-1))
    written = save_gaussians(output, clean, antialiased=carry_rasterize_mode(scene, sidecar))
    carry_rig(output, rig, keep.cpu().numpy(), sidecar, written=written)
    write_capture_cameras(output, cameras)
    write_capture_masks(output, masks)
    sidecar["asset"] = output.name
    sidecar["num_gaussians"] = len(clean)
    if "frame" in sidecar:
        lo, hi = robust_bounds(clean)
        sidecar["frame"].update(bounds_min=lo.tolist(), bounds_max=hi.tolist())
    sidecar["cleaned"] = {"from": str(scene.resolve()), "removed": int(len(g) - len(clean)), **asdict(settings),
                          "outside_hull": None if masks is None else int(outside.sum())}
    sidecar.write(sidecar_path(output))
    return {"kept": len(clean), "removed": len(g) - len(clean), "views": len(cameras),
            "outside_hull": None if masks is None else int(outside.sum()), "seconds": time.perf_counter() - t0}


def parse_cleanup(value: Any, at: At) -> CleanupSettings | None:
    """A film script's `clean:` (true, false, or {min_views, min_peak, width})."""
    if value is False or value is None:
        return None
    if value is True:
        return CleanupSettings()
    if not isinstance(value, dict):
        at.fail(f"expected true, false or {{min_views, min_peak, width}}, got {show(value)}")
    if "min_weight" in value:
        at["min_weight"].fail("is gone: a view now shows a Gaussian when its largest blend weight there reaches "
                              "min_peak (default 1/255), not when its summed weight reaches so many pixels")
    data = mapping(value, at, {"min_views", "min_peak", "width"})
    min_peak = number(data.get("min_peak", MIN_PEAK), at["min_peak"], "positive")
    if not min_peak < 1:
        at["min_peak"].fail(f"must be below 1 (a blend weight), got {min_peak}")
    return CleanupSettings(
        min_views=integer(data.get("min_views", 2), at["min_views"], 1),
        min_peak=min_peak,
        width=integer(data["width"], at["width"], 1) if data.get("width") is not None else None)


def cached_supported(scene: str | Path, gaussians: Gaussians, settings: CleanupSettings, cache_dir: str | Path,
                     backend: str = "auto", progress: bool = True, cameras: Cameras | None = None,
                     scene_sha256: str | None = None, rasterize_mode: RasterizeMode | None = None) -> torch.Tensor:
    """`supported` for the asset file `scene` (its Gaussians as loaded) against the capture
    cameras recorded beside it (`cameras`: those, already read), read from
    `cache_dir`/clean-KEY.json when an earlier run counted the same file, cameras and
    settings, else counted and written there. scene_sha256: the file's `file_digest`, when
    the caller has it (a film's loader took it): a set's file is read once, not twice.
    rasterize_mode: the mode to count in (a film's for the asset), None: the file's own."""
    from splatfilm.assets.sidecar import asset_rasterize_mode
    from splatfilm.io.asset_files import capture_cameras_path, capture_masks_path
    from splatfilm.io.cache import CacheEntry
    from splatfilm.io.digest import content_digest, file_digest


    cameras = cameras if cameras is not None else capture_cameras_of(scene)
    masks = capture_masks_of(scene, cameras)
    record = {"scene_sha256": scene_sha256 if scene_sha256 is not None else file_digest(scene),
              "cameras_sha256": file_digest(capture_cameras_path(scene)), "settings": asdict(settings)}
    if masks is not None:  # keys without masks stay as they were: earlier caches still hit
        record["masks_sha256"] = file_digest(capture_masks_path(scene))
    mode = rasterize_mode if rasterize_mode is not None else asset_rasterize_mode(scene)
    record.update(rasterize_mode_key(mode))
    cache = CacheEntry.in_folder(cache_dir, "clean", content_digest(record))
    data = cache.lookup() or {}
    if isinstance(data.get("removed"), list):
        keep = torch.ones(len(gaussians), dtype=torch.bool)
        keep[torch.tensor(data["removed"], dtype=torch.long)] = False
        return keep
    keep = supported(gaussians, cameras, settings, backend, progress, mode)
    if masks is not None:
        keep &= ~outside_hull(gaussians, cameras, masks)
    cache.store(**record, removed=torch.nonzero(~keep).reshape(-1).tolist())
    return keep

