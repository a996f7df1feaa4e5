"""An asset's sidecar: ASSET.json beside every .ply / .splat, recording where the asset came
from and its frame (up, bounds, the canonical transform of an object, the ground plane), plus
what fit, import-mesh, edit and refine note about how it was made.

`Sidecar` is a typed view of the JSON object: it keeps every key, known or not (a file written
by another version round-trips), checks the types of the keys splatfilm reads, and has one
read policy and one writer:

    Sidecar.read(path) / Sidecar.of_asset(asset)   a missing file is None; invalid JSON, a
                                                   non-object or a wrong type is a one-line
                                                   SplatfilmError "PATH: field.path: ..."
    sidecar.write(path)                            atomic, indent 2, "version" first

Schema `version` 1; a file without one is version 1 (written before versions were recorded),
one newer than this code is an error. Known keys (all optional):

    version             int        schema version (1)
    splatfilm_version   str        the splatfilm that wrote it
    asset               str        the asset file's name
    kind                str        "scene" or "object"
    num_gaussians       int
    frame               object     up [3], front [3], bounds_min [3], bounds_max [3] (asset
                                   frame), scale_to_metres (number or null), note (str),
                                   origin_offset [3]: the asset frame is its capture's world
                                   moved by -origin_offset (fit and import centre a capture
                                   far from the origin; x_capture = x_asset + origin_offset;
                                   a film places such assets by it)
    canonical_transform object     rotation [3][3], translation [3], scale (> 0, default 1):
                                   asset frame -> canonical object frame (x -> s R x + t)
    ground              object     normal [3], offset, inliers: the plane n . x + d = 0
    rig                 object     a rigged asset's rig: file (ASSET.rig.npz), version, joints
                                   (nodes), skin_joints (those the skin lists, where known),
                                   clips {name: seconds} (splatfilm.io.rig_files)
    pose                object     a posed copy's pose: asset, rig, clip, time, method
    rasterize_mode      str        gsplat's "classic" or "antialiased": how the asset was
                                   trained, so how every render composites it (absent: an
                                   .spz file's header flag says, else classic)
    converted           list       `import` steps that converted it from another file (each an
                                   object: the source's path and format, and what moved it)
    source, import, training, metrics, timing, edits, refined, cleaned: objects, kept as written

Also here: the geometry a sidecar records (estimate_up, robust_bounds, canonical_transform,
origin_offset_for: when fit and import store a capture far from the origin centred).
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.io.rig_files import rig_path
from splatfilm.scene.cameras import Cameras, vector_text
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import WORLD_UP, Similarity, axis_rotation, rotation_between, unit_vector
from splatfilm.yamlfields import At, integer, number, schema_version, show, vec3

SIDECAR_VERSION = 1
_OBJECTS = ("source", "import", "training", "metrics", "timing", "edits", "refined", "rig", "pose", "cleaned")
_STRINGS = ("splatfilm_version", "asset", "kind", "rasterize_mode")


def sidecar_path(asset: str | Path) -> Path:
    """The sidecar of an asset file: ASSET.json beside ASSET.ply / ASSET.splat."""
    return Path(asset).with_suffix(".json")


def check_sidecar_free(asset: str | Path) -> None:
    """Raise SplatfilmError when the sidecar `asset` would write belongs to another asset file
    that is still there: ASSET.ply and ASSET.spz share ASSET.json, and writing one's record
    would drop the other's frame, training and metrics."""
    path = sidecar_path(asset)
    try:
        owner = json.loads(path.read_text(encoding="utf-8")).get("asset")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return  # none, or not one of ours: nothing to keep
    if _another_asset(owner, asset):
        raise SplatfilmError(f"{path}: is the sidecar of {owner}; writing {Path(asset).name} beside it would "
                             f"replace that record (give the output another name than {path.stem}.*)")


def check_beside_free(input_path: str | Path, output: str | Path) -> None:
    """Raise SplatfilmError when writing OUTPUT, a copy of the asset at `input_path` (edit,
    clean, pose), would write over or remove a file that lies beside the input and belongs to
    it: HERO.ply -> HERO.spz in one folder share HERO.rig.npz and HERO.cameras.json."""
    for beside in (rig_path, capture_cameras_path, capture_masks_path):
        theirs = beside(input_path)
        if theirs.exists() and beside(output).resolve() == theirs.resolve():
            raise SplatfilmError(f"{output}: its {theirs.name} would overwrite or remove the input's; give the copy "
                                 "another name")


def _another_asset(owner: Any, asset: str | Path) -> bool:
    """Whether a sidecar's `asset` field names another asset file than `asset`, one still there."""
    return isinstance(owner, str) and owner != Path(asset).name and (Path(asset).parent / owner).is_file()


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


class Sidecar(MutableMapping[str, Any]):
    """The JSON object of an asset's sidecar (module docstring), read and written as a mapping
    (`sidecar["kind"]`, `sidecar.update(...)`), with typed accessors for what splatfilm uses.
    `source` names it in error messages (the file it was read from)."""

    def __init__(self, data: Mapping[str, Any] | None = None, source: str = "sidecar"):
        self.data: dict[str, Any] = dict(data or {})
        self.source = source

    # -- mapping --------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Sidecar({self.data!r})"

    # -- reading and writing --------------------------------------------------------------

    @staticmethod
    def read(path: str | Path) -> "Sidecar | None":
        """The sidecar at `path`, checked (module docstring); None when there is no such file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise SplatfilmError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SplatfilmError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(data, dict):
            raise SplatfilmError(f"{path}: expected a JSON object, got {type(data).__name__}")
        sidecar = Sidecar(data, str(path))
        sidecar.check()
        return sidecar

    @staticmethod
    def of_asset(asset: str | Path) -> "Sidecar | None":
        """The sidecar beside an asset file (`sidecar_path`), or None: also when it is the record
        of another asset file that is there (ASSET.ply's beside ASSET.spz), whose frame and
        metrics are not this one's."""
        sidecar = Sidecar.read(sidecar_path(asset))
        return None if sidecar is not None and _another_asset(sidecar.get("asset"), asset) else sidecar

    def write(self, path: str | Path) -> Path:
        """Write to `path` atomically as this schema version (`version` first); returns `path`."""
        from splatfilm.io.atomic import atomic_write

        path = Path(path)
        if isinstance(self.data.get("asset"), str):
            check_sidecar_free(path.parent / self.data["asset"])
        self.data = {"version": SIDECAR_VERSION, **{k: v for k, v in self.data.items() if k != "version"}}
        self.source = str(path)
        self.check()
        atomic_write(path, [(json.dumps(self.data, indent=2) + "\n").encode("utf-8")])
        return path

    def check(self) -> None:
        """Raise SplatfilmError("SOURCE: field.path: what is wrong") for a known key of the wrong
        type or shape, or a version newer than this code reads."""
        d, at = self.data, At(self.source)
        schema_version(d.get("version"), at["version"], SIDECAR_VERSION)
        for key in _STRINGS:
            if key in d and not isinstance(d[key], str):
                at[key].fail(f"expected a string, got {show(d[key])}")
        for key in _OBJECTS:
            if key in d:
                _object(d[key], at[key])
        if "num_gaussians" in d:
            integer(d["num_gaussians"], at["num_gaussians"], minimum=0)
        if "converted" in d:
            if not isinstance(d["converted"], list):
                at["converted"].fail(f"expected a list of import steps, got {show(d['converted'])}")
            for i, step in enumerate(d["converted"]):
                _object(step, at["converted"][i])
        if "rasterize_mode" in d:
            from splatfilm.render import RASTERIZE_MODES

            if d["rasterize_mode"] not in RASTERIZE_MODES:
                at["rasterize_mode"].fail(f"expected classic or antialiased, got {show(d['rasterize_mode'])}")
        if "frame" in d:
            frame, f_at = _object(d["frame"], at["frame"]), at["frame"]
            for key in ("up", "front", "bounds_min", "bounds_max", "origin_offset"):
                if key in frame:
                    vec3(frame[key], f_at[key])
            for key in ("up", "front"):
                if key in frame and not np.linalg.norm(vec3(frame[key], f_at[key])) > 1e-9:
                    f_at[key].fail(f"must be a non-zero vector, got {show(frame[key])}")
            if frame.get("scale_to_metres") is not None:
                number(frame["scale_to_metres"], f_at["scale_to_metres"], "positive")
            if "note" in frame and not isinstance(frame["note"], str):
                f_at["note"].fail(f"expected a string, got {show(frame['note'])}")
        if "canonical_transform" in d:
            _similarity(d["canonical_transform"], at["canonical_transform"])
        if "ground" in d:
            g, g_at = _object(d["ground"], at["ground"]), at["ground"]
            _require(g, "normal", g_at, "{normal: [x, y, z], offset: d, inliers: f}")
            if not np.linalg.norm(vec3(g["normal"], g_at["normal"])) > 1e-9:
                g_at["normal"].fail(f"must be a non-zero vector, got {show(g['normal'])}")
            _require(g, "offset", g_at, "{normal: [x, y, z], offset: d, inliers: f}")
            number(g["offset"], g_at["offset"])
            if "inliers" in g:
                number(g["inliers"], g_at["inliers"], "nonneg")

    # -- typed accessors ------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The schema version (1 for files written before versions were recorded)."""
        return int(self.data.get("version", 1))

    @property
    def frame(self) -> dict:
        """The `frame` object ({} when absent)."""
        return self.data.get("frame", {})

    @property
    def up(self) -> np.ndarray | None:
        """frame.up [3] as a unit vector: the capture's up in the asset frame; None when absent."""
        up = self.frame.get("up")
        return None if up is None else unit_vector(vec3(up, At(self.source)["frame"]["up"]), f"{self.source}: frame.up")

    @property
    def origin_offset(self) -> np.ndarray | None:
        """frame.origin_offset [3] float64: x_capture = x_asset + origin_offset; None when the
        asset is in its capture's world as it is."""
        offset = self.frame.get("origin_offset")
        return None if offset is None else vec3(offset, At(self.source)["frame"]["origin_offset"])

    @property
    def canonical_transform(self) -> Similarity | None:
        """Asset frame -> canonical object frame; None when the sidecar has none."""
        ct = self.data.get("canonical_transform")
        return None if ct is None else Similarity.from_dict(ct)

    @property
    def rasterize_mode(self) -> str | None:
        """gsplat's "classic" or "antialiased", as the asset was trained; None when not recorded."""
        return self.data.get("rasterize_mode")

    @property
    def ground(self) -> dict | None:
        """The `ground` object {normal [3], offset, inliers} (`assets.ground.read_ground` makes a
        GroundPlane of it); None when absent."""
        return self.data.get("ground")


def _object(value: Any, at: At) -> dict:
    if not isinstance(value, dict):
        at.fail(f"expected an object, got {show(value)}")
    return value


def _require(d: dict, key: str, at: At, expected: str) -> None:
    if key not in d:
        at.fail(f"missing `{key}` (expected {expected})")


def _similarity(value: Any, at: At) -> None:
    d = _object(value, at)
    _require(d, "rotation", at, "{rotation: [3][3], translation: [3], scale: s}")
    rows = d["rotation"]
    if not isinstance(rows, list) or len(rows) != 3:
        at["rotation"].fail(f"expected 3 rows of 3 numbers, got {show(rows)}")
    R = np.array([vec3(r, at["rotation"][i]) for i, r in enumerate(rows)])
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-6 or np.linalg.det(R) < 0:
        at["rotation"].fail("is not a rotation matrix (scaled, sheared or mirrored)")
    _require(d, "translation", at, "{rotation: [3][3], translation: [3], scale: s}")
    vec3(d["translation"], at["translation"])
    if "scale" in d:
        number(d["scale"], at["scale"], "positive")


def asset_rasterize_mode(asset: str | Path) -> str:
    """How an asset file renders, gsplat's "classic" or "antialiased": its sidecar's
    `rasterize_mode`, else an .spz file's header flag (`io.spz.spz_antialiased`), else a PLY's
    Mip-Splatting filter (`io.ply.ply_mip_filtered`: antialiased), else classic."""
    try:
        sidecar = Sidecar.of_asset(asset)
    except SplatfilmError:
        # Another tool's JSON of the same stem beside a foreign splat is no record of ours;
        # commands that need the sidecar say what is wrong with it.
        sidecar = None
    if sidecar is not None and sidecar.rasterize_mode is not None:
        return sidecar.rasterize_mode
    if Path(asset).suffix.lower() == ".spz":
        from splatfilm.io.spz import spz_antialiased

        return "antialiased" if spz_antialiased(asset) else "classic"
    if Path(asset).suffix.lower() == ".ply" and Path(asset).is_file():  # a missing one is told by its reader
        from splatfilm.io.ply import ply_mip_filtered

        return "antialiased" if ply_mip_filtered(asset) else "classic"
    return "classic"


def asset_origin(asset: str | Path) -> str:
    """How an asset file's Gaussians were made, as its sidecar records it: a key of
    `io.provenance.ORIGINS`. "mesh" or "procedural" by its `source.type`; "capture" where fit
    recorded its `training` (kept through edit, clean, rig, refine and conversion); "unknown"
    without a sidecar of ours or a record of its making (another tool's splat)."""
    try:
        sidecar = Sidecar.of_asset(asset)
    except SplatfilmError:
        sidecar = None  # another tool's JSON beside its splat: no record of ours
    if sidecar is None:
        return "unknown"
    source = sidecar.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind in ("mesh", "procedural"):
        return kind
    return "capture" if isinstance(sidecar.get("training"), dict) else "unknown"


def carry_rasterize_mode(asset: str | Path, sidecar: Sidecar) -> bool:
    """Record in `sidecar` (the record of a copy of `asset`: an edit, a clean, a pose) the mode
    `asset` renders in, where it is antialiased (an .spz flag with no sidecar said so too);
    returns whether it is, the flag for the copy's .spz header."""
    mode = asset_rasterize_mode(asset)
    if mode != "classic":
        sidecar["rasterize_mode"] = mode
    return mode == "antialiased"


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
        print(note, file=sys.stderr)
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


# ---- the geometry a sidecar records -------------------------------------------------------


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


def canonical_transform(gaussians: Gaussians, cameras: Cameras, up: np.ndarray) -> dict:
    """Similarity from an object asset's own frame into its canonical local frame: base on
    z = 0, centred on the z axis, up +z, front facing -y. The front is taken to face the
    capture's first camera (turn the asset at placement if it does not). Returns
    {"rotation": [3][3], "translation": [3], "scale": 1.0} for x -> s R x + t."""
    R_up = rotation_between(up, WORLD_UP)
    lo, hi = robust_bounds(gaussians)
    centre = (lo + hi) / 2
    to_cam = R_up @ (cameras.centers[0] - centre)
    heading = np.arctan2(to_cam[1], to_cam[0])
    # Turn about z so the first camera's direction (seen from the object) becomes -y.
    turn = -np.pi / 2 - heading
    R = axis_rotation("z", turn) @ R_up
    moved = gaussians.transformed(torch.tensor(R, dtype=gaussians.dtype))
    lo2, hi2 = robust_bounds(moved)
    t = -np.array([(lo2[0] + hi2[0]) / 2, (lo2[1] + hi2[1]) / 2, lo2[2]])
    return {"rotation": R.tolist(), "translation": t.tolist(), "scale": 1.0}
