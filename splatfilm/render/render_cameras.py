"""Render a splat file from every camera of a camera file: `splatfilm render-cameras`.

Resumable: a manifest in the output folder records, per frame, a hash of everything the
frame depends on (scene file contents, camera, size, settings). A frame whose files exist
and whose hash matches is not rendered again; anything else is. One render at a time writes
in a folder (`io.atomic.work_lock`), clearing what a killed one left half written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.io.images import BACKGROUND_Z, handoff_depth, write_depth, write_png
from splatfilm.io.atomic import check_output_folder, clear_scratch, work_lock
from splatfilm.io.digest import content_digest
from splatfilm.io.manifest import Manifest
from splatfilm.render import rasterization, resolve_backend
from splatfilm.render.camera_models import check_lens
from splatfilm.render.rendering import gsplat_lens_arguments
from splatfilm import report

MANIFEST = ".splatfilm-render.json"


@dataclass
class RenderSettings:
    """What `render-cameras` varies. width/height: None keeps each camera's own size (one
    given alone keeps the aspect ratio). background: RGB in [0,1]; transparent: RGBA PNGs."""

    backend: str = "auto"
    width: int | None = None
    height: int | None = None
    sh_degree: int | None = None
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    transparent: bool = False
    depth: str | None = None  # None, "exr" or "npy"
    rasterize_mode: str = "classic"


def output_stem(name: str | None, index: int) -> str:
    """`images/frame_00012.png` -> `frame_00012`; no name -> `00012` (5 digits)."""
    if name:
        return Path(name).stem
    return f"{index:05d}"


def _photo_at(cameras_path: Path, name: str | None, png: Path) -> Path | None:
    """The capture photo that writing `png` would replace, else None. A PNG capture's frames are
    named as its photos, so `-o` naming the capture's image folder would overwrite them. A camera
    file's image names are relative to its folder (nerfstudio) or to an `images/` folder beside
    the model (COLMAP: DATA/sparse/0 with DATA/images)."""
    if not name or not png.exists():
        return None
    bases = [cameras_path.parent] if cameras_path.is_file() else [cameras_path, *cameras_path.parents[:2]]
    for base in bases:
        for photo in (base / name, base / "images" / name):
            if photo.exists() and photo.samefile(png):
                return photo
    return None


def _target_size(w: int, h: int, settings: RenderSettings) -> tuple[int, int]:
    if settings.width and settings.height:
        return settings.width, settings.height
    if settings.width:
        return settings.width, max(1, round(h * settings.width / w))
    if settings.height:
        return max(1, round(w * settings.height / h)), settings.height
    return w, h


def render_cameras(scene_path: str | Path, cameras_path: str | Path, out_dir: str | Path,
                   settings: RenderSettings | None = None, dataparser_transforms: str | Path | None = None,
                   transforms_json: str | Path | None = None, progress: bool = True,
                   origin_offset: np.ndarray | None = None) -> list[Path]:
    """Render `scene_path` (any Gaussian file) from every camera in `cameras_path` (transforms.json,
    camera_path.json or a COLMAP model folder) into PNGs in `out_dir`, each through its own
    camera model and lens distortion (so a distorted capture's frames match its photos).
    Returns the PNG paths.
    Frames already rendered with the same inputs are kept, not rendered again.
    `dataparser_transforms` / `transforms_json`: see `io.camera_files.read_camera_path_json`.
    `origin_offset` [3]: the scene's frame.origin_offset (a capture fitted centred): cameras in
    the capture's own world are moved into the scene's frame (`Cameras.in_asset_frame`)."""
    from splatfilm.io.camera_files import read_cameras
    from splatfilm.io.gaussian_files import gaussian_file_digest, load_gaussians

    settings = settings or RenderSettings()
    scene_path, cameras_path, out_dir = Path(scene_path), Path(cameras_path), check_output_folder(out_dir)
    backend = resolve_backend(settings.backend)
    gaussians = load_gaussians(scene_path)
    cams = read_cameras(cameras_path, dataparser_transforms=dataparser_transforms, transforms_json=transforms_json)
    if len(cams) == 0:
        raise SplatfilmError(f"{cameras_path}: no cameras in the file")
    if origin_offset is not None:
        cams, note = cams.in_asset_frame(origin_offset, cameras_path, scene_path)
        if note is not None:
            report.note(note)
    degree = gaussians.sh_degree if settings.sh_degree is None else settings.sh_degree
    if not 0 <= degree <= gaussians.sh_degree:
        raise SplatfilmError(f"--sh-degree {degree}: {scene_path} stores SH up to degree {gaussians.sh_degree}")
    for i in range(len(cams)):  # a lens the backend cannot render fails now, not after hours
        try:
            check_lens(cams.camera_model[i], cams.distortion[i])
            if backend == "gsplat":
                gsplat_lens_arguments(cams.camera_model[i], torch.as_tensor(cams.distortion[i]))
        except SplatfilmError as e:
            raise SplatfilmError(f"{cameras_path}: camera {i}: {e}") from None

    stems = [output_stem(n, i) for i, n in enumerate(cams.names)]
    dupes = {s for s in stems if stems.count(s) > 1}
    if dupes:
        raise SplatfilmError(f"{cameras_path}: several cameras would write {sorted(dupes)[0]}.png (duplicate image names)")
    for i, (name, stem) in enumerate(zip(cams.names, stems)):
        photo = _photo_at(cameras_path, name, out_dir / f"{stem}.png")
        if photo is not None:
            raise SplatfilmError(f"{out_dir}: is where camera {i}'s photo is ({photo}), which its render would "
                                 "replace; render into another folder")

    scene_hash = gaussian_file_digest(scene_path)
    common = {"scene": scene_hash, "backend": backend, "sh_degree": degree,
              "background": list(settings.background), "transparent": settings.transparent,
              "depth": settings.depth, "mode": settings.rasterize_mode,
              # Depth files hold BACKGROUND_Z where nothing is seen (they held 0): written again.
              **({"depth_background": BACKGROUND_Z} if settings.depth else {})}
    if backend == "cpu":
        gaussians = gaussians.to("cpu")

    written, skipped = [], 0
    # Saved after every frame and on the way out, also after an interruption.
    with work_lock(out_dir, "render-cameras"), Manifest.load(out_dir / MANIFEST) as manifest:
        clear_scratch(out_dir)  # what a killed render was writing: the folder is ours now
        for i in report.progress_bar(range(len(cams)), desc="render", unit="frame", show=progress):
            cam = cams[i]
            w0, h0 = int(cam.widths[0]), int(cam.heights[0])
            w, h = _target_size(w0, h0, settings)
            if (w, h) != (w0, h0):
                cam = cam.resized(w, h)
            png = out_dir / f"{stems[i]}.png"
            depth_file = out_dir / f"{stems[i]}.depth.{settings.depth}" if settings.depth else None
            lens = {} if cam.camera_model[0] == "PINHOLE" else {
                "camera_model": cam.camera_model[0], "distortion": cam.distortion[0].tolist()}
            key = content_digest({**common, "viewmat": cam.viewmats[0].tolist(), "K": cam.Ks[0].tolist(),
                                  "size": [w, h], **lens})
            written.append(png)
            if manifest.is_done(png.name, key, [p for p in (png, depth_file) if p is not None]):
                skipped += 1
                continue
            with torch.no_grad():
                out = rasterization(gaussians, **cam.render_arguments(gaussians.dtype), backend=backend,
                                    sh_degree=degree, background=None if settings.transparent else settings.background,
                                    rasterize_mode=settings.rasterize_mode)
            alpha = out.alpha[0].cpu().numpy()
            write_png(png, out.rgb[0].cpu().numpy(), alpha if settings.transparent else None)
            if depth_file is not None:
                write_depth(depth_file, handoff_depth(out.depth[0].cpu().numpy(), alpha))
            manifest.done(png.name, key)
    if skipped and progress:
        report.status(f"kept {skipped} frame(s) already rendered with the same inputs")
    others = sorted(p.name for p in out_dir.glob("*.png") if p not in set(written))
    if others and progress:  # an earlier render of other cameras: left alone, but not unsaid
        report.note(f"{out_dir} also holds {len(others)} other PNG(s) ({', '.join(others[:3])}"
                    f"{', ...' if len(others) > 3 else ''}), not from these cameras")
    return written
