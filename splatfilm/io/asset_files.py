"""The files beside an asset, ASSET.ply / ASSET.spz / ASSET.splat, and where each lives: one
home for every such path, so a copy (edit, clean, pose, import) knows what belongs to its input.

    ASSET.json              its sidecar (`sidecar_path`; the schema: `assets.sidecar.Sidecar`)
    ASSET.cameras.json      the cameras it was fitted from, in its frame (`capture_cameras_path`)
    ASSET.masks.npz         an object's outline in each of those cameras (`capture_masks_path`)
    ASSET.rig.npz           a skinned asset's rig (`rig_path`; the format: `io.rig_files`)
    ASSET.appearance.json   a fit's per-image appearance transforms (`appearance_path`;
                            `fit.appearance`)
    SCENE.collision.obj     a scene's cached collision mesh (`collision_mesh_path`; `assets.meshing`)
    SCENE.mesh.npz          a scene's cached TSDF mesh (`scene_mesh_cache_path`; `assets.meshing`)

with the capture side files' readers and writers, `carry_capture_cameras` for a copy, and
`check_beside_free`, which refuses a copy whose side files would be its input's.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.scene.cameras import Cameras


def sidecar_path(asset: str | Path) -> Path:
    """The sidecar of an asset file: ASSET.json beside ASSET.ply / ASSET.splat."""
    return Path(asset).with_suffix(".json")


def check_beside_free(input_path: str | Path, output: str | Path) -> None:
    """Raise SplatfilmError when writing OUTPUT, a copy of the asset at `input_path` (edit,
    clean, pose), would write over or remove a file that lies beside the input and belongs to
    it: HERO.ply -> HERO.spz in one folder share HERO.rig.npz and HERO.cameras.json."""
    for beside in (rig_path, capture_cameras_path, capture_masks_path):
        theirs = beside(input_path)
        if theirs.exists() and beside(output).resolve() == theirs.resolve():
            raise SplatfilmError(f"{output}: its {theirs.name} would overwrite or remove the input's; give the copy "
                                 "another name")


def capture_cameras_path(asset: str | Path) -> Path:
    """ASSET.cameras.json beside ASSET.ply: the cameras it was fitted from, in its own frame, as
    a nerfstudio transforms.json (`fit` writes it). Meshing and collisions render from them:
    they see what the capture saw, from where it saw it (inside a room, not an orbit around it)."""
    asset = Path(asset)
    return asset.with_name(asset.stem + ".cameras.json")


def write_capture_cameras(asset: str | Path, cameras: Cameras | None) -> Path:
    """Record `cameras` (in the asset's frame) beside `asset` as capture_cameras_path(asset);
    None: the asset has none, and a file left there (by an earlier output of that name) goes."""
    from splatfilm.io.camera_files import write_transforms_json

    path = capture_cameras_path(asset)
    if cameras is None:
        path.unlink(missing_ok=True)
        return path
    write_transforms_json(path, cameras, {"splatfilm": "the cameras this asset was fitted from"})
    return path


def read_capture_cameras(asset: str | Path) -> Cameras | None:
    """The cameras recorded beside `asset` (capture_cameras_path), or None when there are none."""
    from splatfilm.io.camera_files import read_cameras

    path = capture_cameras_path(asset)
    return read_cameras(path) if path.exists() else None


def capture_masks_path(asset: str | Path) -> Path:
    """ASSET.masks.npz beside ASSET.ply: an object's outline in each of its capture cameras
    (capture_cameras_path, in that order), which `clean` keeps its Gaussians inside."""
    asset = Path(asset)
    return asset.with_name(asset.stem + ".masks.npz")


def write_capture_masks(asset: str | Path, masks: list[np.ndarray] | None) -> Path:
    """Record an object's masks (C arrays [H,W] or [H,W,1], the object where >= 0.5, at its
    capture cameras' sizes) beside `asset` as capture_masks_path(asset); None: it has none, and
    a file left there by an earlier output of that name goes."""
    from splatfilm.io.atomic import atomic_write

    path = capture_masks_path(asset)
    if masks is None:
        path.unlink(missing_ok=True)
        return path
    buf = io.BytesIO()
    np.savez_compressed(buf, **{f"view_{i:05d}": np.asarray(m).reshape(m.shape[:2]) >= 0.5 for i, m in enumerate(masks)})
    atomic_write(path, [buf.getvalue()])
    return path


def read_capture_masks(asset: str | Path) -> list[np.ndarray] | None:
    """The masks recorded beside `asset` (capture_masks_path) as C bool arrays [H,W,1], or None."""
    path = capture_masks_path(asset)
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            return [data[k][..., None].astype(bool) for k in sorted(data.files)]
    except Exception as e:  # numpy raises ValueError, OSError, BadZipFile, ... for a broken file
        raise SplatfilmError(f"{path}: cannot read the capture's masks ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def carry_capture_cameras(source: str | Path, output: str | Path, cameras: Cameras | None) -> None:
    """Record `cameras` (`source`'s capture cameras in `output`'s frame; None: none) beside
    `output`, and with them `source`'s object masks: they belong to those views (a similarity
    moving cameras and Gaussians together leaves them right), and a masks file left by an
    earlier output of that name would outline another capture."""
    write_capture_cameras(output, cameras)
    write_capture_masks(output, read_capture_masks(source) if cameras is not None else None)


RIG_SUFFIX = ".rig.npz"


def rig_path(asset: str | os.PathLike) -> Path:
    """Where an asset's rig lives: ASSET.rig.npz beside ASSET.ply / ASSET.splat."""
    return Path(asset).with_suffix(RIG_SUFFIX)


def scene_mesh_cache_path(scene: str | Path) -> Path:
    """SCENE.mesh.npz beside SCENE.ply: `export_scene_mesh`'s last TSDF mesh, with its record
    SCENE.mesh.json."""
    scene = Path(scene)
    return scene.with_name(scene.stem + ".mesh.npz")


def collision_mesh_path(scene: str | Path) -> Path:
    """SCENE.collision.obj beside SCENE.ply."""
    scene = Path(scene)
    return scene.with_name(scene.stem + ".collision.obj")


def appearance_path(asset: str | Path) -> Path:
    """ASSET.appearance.json beside ASSET.ply: the per-image appearance transforms a fit with
    appearance writes (`fit.appearance`)."""
    return Path(asset).with_suffix(".appearance.json")
