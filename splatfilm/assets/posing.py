"""Posed copies of rigged assets: a clip at a time, written as a new asset in the same frame."""

from __future__ import annotations

import math
from pathlib import Path

from splatfilm.assets.sidecar import Sidecar, carry_rasterize_mode, check_sidecar_free
from splatfilm.io.asset_files import check_beside_free, rig_path, sidecar_path
from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import check_output_file
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_EXTENSIONS, GAUSSIAN_FILE_TYPES, load_gaussians, save_gaussians
from splatfilm.io.rig_files import load_rig, remove_rig
from splatfilm.scene.skeleton import Rig, global_transforms, sample_clip
from splatfilm.scene.skinning import METHODS, pose_gaussians
from splatfilm.version import __version__

__all__ = ["asset_rig", "pose_asset"]


def asset_rig(asset: str | Path, num_gaussians: int | None = None) -> Rig:
    """The rig beside an asset (ASSET.rig.npz), or a one-line error saying it has none."""
    asset = Path(asset)
    path = rig_path(asset)
    if not path.exists():
        if not asset.exists():
            raise SplatfilmError(f"{asset}: no such file")
        raise SplatfilmError(f"{asset}: has no rig ({path.name} is not beside it); `splatfilm import-mesh` writes one "
                             "for a skinned glTF")
    return load_rig(path, num_gaussians)


def pose_asset(asset: str | Path, output: str | Path, clip: str, time: float, method: str = "lbs") -> Sidecar:
    """Write OUTPUT: the asset's Gaussians in `clip` at `time` seconds into it, counted from
    its first key (as a film's clip plays count: a Blender export keyed from frame 1 has its
    keys from 1/fps s in the file, and time 0 is that first key), held at its last key past
    its end, in the asset's frame, with a sidecar copy noting the pose (the canonical
    transform kept, so the posed copy stands where the asset stands). Returns the sidecar."""
    asset, output = Path(asset), Path(output)
    if output.suffix.lower() not in GAUSSIAN_FILE_EXTENSIONS:
        raise SplatfilmError(f"{output}: the posed copy is a {GAUSSIAN_FILE_TYPES} file (sidecar .json beside it)")
    if output.resolve() == asset.resolve():
        raise SplatfilmError(f"{output}: is the asset itself; write the posed copy to another file")
    check_output_file(output)
    check_sidecar_free(output)
    check_beside_free(asset, output)  # the rig removed beside OUTPUT would be the asset's own
    if not math.isfinite(time) or time < 0:
        raise SplatfilmError(f"--time must be a number of seconds >= 0, got {time}")
    if method not in METHODS:
        raise SplatfilmError(f"unknown skinning method {method!r}; choose lbs or dqs")
    gaussians = load_gaussians(asset)
    rig = asset_rig(asset, len(gaussians))
    try:
        c = rig.clip(clip)
    except SplatfilmError as e:
        raise SplatfilmError(f"{asset}: {e}") from None
    posed = pose_gaussians(gaussians, rig, global_transforms(rig, sample_clip(rig, c, c.start + time)), method)

    sidecar = Sidecar.of_asset(asset) or Sidecar({})
    sidecar.pop("rig", None)
    sidecar.setdefault("splatfilm_version", __version__)
    sidecar.setdefault("kind", "object")
    sidecar["asset"] = output.name
    sidecar["num_gaussians"] = len(posed)
    means = posed.means.detach().double()
    if isinstance(sidecar.get("frame"), dict) and "bounds_min" in sidecar["frame"]:
        sidecar["frame"]["bounds_min"] = means.min(dim=0).values.tolist()
        sidecar["frame"]["bounds_max"] = means.max(dim=0).values.tolist()
    sidecar["pose"] = {"asset": asset.name, "rig": rig_path(asset).name, "clip": c.name, "time": time,
                       "clip_start": c.start, "clip_duration": c.duration, "method": method,
                       "note": "a posed copy in the asset's frame (no rig of its own); the canonical transform is "
                               "the rest asset's, so it stands where the asset stands"}
    save_gaussians(output, posed, antialiased=carry_rasterize_mode(asset, sidecar))
    remove_rig(output)  # the copy does not move any more; a rig left beside it would bind it again
    sidecar.write(sidecar_path(output))
    return sidecar
