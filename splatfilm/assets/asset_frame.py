"""The geometry of an asset's frame, as a sidecar records it (`assets.sidecar`): the capture's
up (`estimate_up`; `sidecar_up`, `asset_up` read it back), the bounds of its opaque Gaussians
(`robust_bounds`), how an asset stands on z = 0 (`stand_on_base`: an object's canonical
transform, `canonical_transform`, `canonical_height`; a scene's upright frame)
and the origin offset of a capture stored centred (`origin_offset_for`, `origin_offset_note`,
`origin_offset`, `cameras_in_asset_frame`: when fit and import store a capture far from the
origin centred).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from splatfilm.assets.sidecar import Sidecar
from splatfilm.scene.cameras import Cameras, vector_text
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import WORLD_UP, Similarity, axis_rotation, rotation_between, unit_vector
from splatfilm.yamlfields import At, vec3
from splatfilm import report


# A capture whose centre lies farther from the origin than this many times its extent (fit:
# the largest distance of a camera from the cameras' centre; import: half the diagonal of the
# splat's robust bounds) is fitted or imported and stored centred:
# float32 (the renderer, the trainer, PLY files) keeps about 7 digits, so a georeferenced
# capture (COLMAP model_aligner into ECEF or UTM, ODM's shots) at millions of metres holds its
# Gaussians to decimetres. Measured on tests/fixtures/flowerpot (radius 4) rendered shifted
# against unshifted: 94 dB at 25x its radius, 80 dB at 350x, 67 dB at 3500x, 54 dB at 35000x,
# 22 dB at 1.4e6x (UTM); a 600-step fit of a ring capture (radius 3, 64x48 px) lost 0.4 dB
# held out at 4.7e4x and 4.4 dB at 1.9e6x. Centred from 1e4x: renders still agree to ~60 dB
# there, and a capture nearer its origin keeps its world's frame, so captures of one world
# (a room and an object from one AR session, two scans of a site) still line up in a film;
# ordinary captures (nerfstudio's, COLMAP's own gauge) sit within a few extents of the origin.
# Assets stored centred line up in a film by their offsets (film.script).
FAR_FROM_ORIGIN = 1e4


def origin_offset_for(centre: np.ndarray, radius: float) -> np.ndarray | None:
    """The offset [3] (world units, float64) to move a capture whose centre [3] and extent
    `radius` are these (fit: its cameras', `scene_extent`; import: its splat's) by -offset
    before it is fitted or written, or None when its centre is within FAR_FROM_ORIGIN extents
    of the origin (kept where it is). The centre rounded to a power of ten below the extent
    (whole metres for a capture metres across), so the recorded offset reads as the capture's
    file does."""
    if not np.linalg.norm(centre) > FAR_FROM_ORIGIN * radius:
        return None
    step = 10.0 ** math.floor(math.log10(radius))
    return np.round(centre / step) * step + 0.0  # + 0.0: no "-0" in the sidecar or the note


def origin_offset_note(offset: np.ndarray, radius: float, what: str, done: str, frame_files: str = "") -> str:
    """The note `fit` and `import` print when they store `what` (the capture, the splat) of
    extent `radius` centred, moved by -`offset` [3] (origin_offset_for): how far out it lay,
    what was `done` ("fitted and written"), and where the offset is kept; `frame_files`: a
    clause naming the files written in the asset's frame too."""
    distance = float(np.linalg.norm(offset))
    return (f"note: {what} lies {distance:.6g} units from its world's origin, {distance / radius:.0f} times its "
            f"size: {done} with its world moved by -{vector_text(offset)} (the sidecar's frame.origin_offset; "
            f"{frame_files}render-cameras, clean --cameras, mesh --cameras and refine move the capture's own camera "
            "files there, and a film places it by it beside other assets that have one)")


def origin_offset(asset: str | Path) -> np.ndarray | None:
    """An asset's frame.origin_offset [3] (its sidecar's; `Sidecar.origin_offset`), or None."""
    sidecar = Sidecar.of_asset(asset)
    return None if sidecar is None else sidecar.origin_offset


def cameras_in_asset_frame(asset: str | Path, cameras: Cameras, source: str | Path) -> Cameras:
    """`cameras` (read from `source`) in `asset`'s frame: an asset fitted centred from a capture
    far from the origin (frame.origin_offset) takes its capture's own camera files moved by
    -origin_offset, said in a note (`Cameras.in_asset_frame`); any other as they are."""
    offset = origin_offset(asset)
    if offset is None:
        return cameras
    moved, note = cameras.in_asset_frame(offset, source, asset)
    if note is not None:
        report.note(note)
    return moved


def sidecar_up(asset: str | Path) -> np.ndarray:
    """The capture's up [3] (unit) in an asset's frame: its sidecar's frame.up, else +z."""
    sidecar = Sidecar.of_asset(asset)
    up = sidecar.up if sidecar is not None else None
    return WORLD_UP.copy() if up is None else up


def asset_up(asset: str | Path) -> np.ndarray:
    """The asset's up [3] (unit) in its own frame, as well as its sidecar knows it: an object's
    canonical +z (where a film stands it), else the normal of its recorded ground plane, turned
    to frame.up's side (a level measured on the scene itself), else frame.up, else +z.
    frame.up (`sidecar_up`) is the capture cameras' mean up, which leans as they were held:
    12.3 degrees from the floor's normal on scenes/set. What a lone asset is shown upright
    about (`view`) and meshed upright by (`mesh`); `ground` itself looks for a plane facing
    `sidecar_up`. SplatfilmError for an unreadable sidecar."""
    sidecar = Sidecar.of_asset(asset)
    if sidecar is None:
        return WORLD_UP.copy()
    canonical = sidecar.canonical_transform
    if canonical is not None:
        return unit_vector(canonical.rotation.T @ WORLD_UP, f"{sidecar.source}: canonical_transform's up")
    up = sidecar.up if sidecar.up is not None else WORLD_UP.copy()
    if sidecar.ground is not None:
        normal = unit_vector(vec3(sidecar.ground["normal"], At(sidecar.source)["ground"]["normal"]),
                             f"{sidecar.source}: ground.normal")
        up = normal if float(normal @ up) >= 0 else -normal
    return up


# The second singular value of the cameras' stacked x axes below this times sqrt(count) (an RMS
# cosine of 0.17, 10 degrees: nerfstudio's threshold) leaves the x axes all but one direction.
_VERTICAL_MIN_SPREAD = 0.17


def estimate_up(cameras: Cameras) -> np.ndarray:
    """World up [3] (unit): the direction perpendicular to every camera's x axis (the smallest
    right singular vector of the stacked x axes [C,3], OpenCV's x right), signed to agree with
    the mean of the cameras' up directions (-y).

    People hold cameras level (no roll) but pitch them at what they shoot, so the x axes lie
    in the horizontal plane whatever the pitch, while the mean up direction leans toward the
    side the cameras stand on by their mean pitch (12.3 degrees on the bundled set; 25.6 with
    its cameras pitched 15 degrees further down, past `ground`'s 20-degree limit). This is
    nerfstudio's `auto_orient_and_center_poses(method="vertical")`. Where the x axes do not
    constrain it (all but one direction: a dolly or a tilt with the camera's x fixed, a single
    camera), the mean up is taken with its component along that shared x axis removed; +z when
    even that is nothing."""
    c2w = cameras.to_c2w_opencv()
    mean_up = -c2w[:, :3, 1].mean(axis=0)
    x_axes = c2w[:, :3, 0]
    _, spread, vt = np.linalg.svd(x_axes)  # vt [3,3] even for one or two cameras
    if len(spread) >= 2 and spread[1] > _VERTICAL_MIN_SPREAD * np.sqrt(len(x_axes)):
        up = vt[2] if vt[2] @ mean_up >= 0 else -vt[2]
    else:
        up = mean_up - vt[0] * (vt[0] @ mean_up)
    n = np.linalg.norm(up)
    return up / n if n > 1e-8 else np.array([0.0, 0.0, 1.0])


def robust_bounds(gaussians: Gaussians, min_opacity: float = 0.5, percentile: float = 1.0,
                  means: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds (min [3], max [3]) of the means of Gaussians at least `min_opacity`
    opaque, between the `percentile` and 100 - `percentile` percentiles, so stray floaters do
    not stretch them; `means` [N,3]: the positions to bound in place of `gaussians.means` (a
    file's float64 ones)."""
    with torch.no_grad():
        keep = (gaussians.activated_opacities >= min_opacity).cpu().numpy()
        pts = gaussians.means.cpu().double().numpy() if means is None else np.asarray(means, dtype=np.float64)
        pts = pts[keep] if keep.sum() >= 10 else pts
    if len(pts) == 0:
        return np.zeros(3), np.zeros(3)
    return np.percentile(pts, percentile, axis=0), np.percentile(pts, 100 - percentile, axis=0)


def canonical_height(gaussians: Gaussians, canonical: dict) -> float:
    """An object's height in its own units: the z extent of its opaque Gaussians (`robust_bounds`)
    turned into the canonical frame `canonical` ({"rotation", ...}, as `canonical_transform`
    gives it, scale 1)."""
    R = torch.tensor(canonical["rotation"], dtype=gaussians.dtype)
    lo, hi = robust_bounds(gaussians.transformed(R))
    return float(hi[2] - lo[2])


def stand_on_base(gaussians: Gaussians, rotation: np.ndarray, floor_point: np.ndarray | None = None) -> Similarity:
    """x -> R x + t: turned by `rotation` [3,3] (the asset's up onto +z), then moved so that the
    middle of its opaque Gaussians' `robust_bounds` lies on the z axis and its base on z = 0:
    `floor_point` [3] (asset frame; a point of its ground plane) where given, else the bottom
    of those bounds. How an object's canonical frame (`canonical_transform`) and a scene's
    upright frame (`assets.ground.upright_frame`) stand. In the asset's own units."""
    turn = Similarity(rotation)
    lo, hi = robust_bounds(turn.transform_gaussians(gaussians))
    base = lo[2] if floor_point is None else float(turn.apply(floor_point)[2])
    return Similarity(translation=[-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -base]) @ turn


def canonical_transform(gaussians: Gaussians, cameras: Cameras, up: np.ndarray) -> dict:
    """Similarity from an object asset's own frame into its canonical local frame: base on
    z = 0, centred on the z axis, up +z, front facing -y (`stand_on_base`). The front is taken
    to face the capture's first camera (turn the asset at placement if it does not). Returns
    {"rotation": [3][3], "translation": [3], "scale": 1.0} for x -> s R x + t."""
    R_up = rotation_between(up, WORLD_UP)
    lo, hi = robust_bounds(gaussians)
    centre = (lo + hi) / 2
    to_cam = R_up @ (cameras.centers[0] - centre)
    heading = np.arctan2(to_cam[1], to_cam[0])
    # Turn about z so the first camera's direction (seen from the object) becomes -y.
    turn = -np.pi / 2 - heading
    stood = stand_on_base(gaussians, axis_rotation("z", turn) @ R_up)
    return {"rotation": stood.rotation.tolist(), "translation": stood.translation.tolist(), "scale": 1.0}
