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
                                   frame), scale_to_metres (number or null), scale_from
                                   (object: what that scale was measured from, `method`
                                   camera_height or known_distance, `metres`, `cameras`),
                                   note (str),
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

The geometry a sidecar records (estimate_up, robust_bounds, canonical_transform, origin
offsets) is in `assets.asset_frame`; the paths of the files beside an asset (this sidecar's
too, `sidecar_path`) are in `io.asset_files`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.asset_files import sidecar_path
from splatfilm.scene.transforms import Similarity, unit_vector
from splatfilm.yamlfields import At, integer, number, schema_version, show, vec3

SIDECAR_VERSION = 1
_OBJECTS = ("source", "import", "training", "metrics", "timing", "edits", "refined", "rig", "pose", "cleaned")
_STRINGS = ("splatfilm_version", "asset", "kind", "rasterize_mode")


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
                             f"replace that record (give the output another name than {path.stem}.*, such as "
                             f"{path.stem}_web{Path(asset).suffix})")


def _another_asset(owner: Any, asset: str | Path) -> bool:
    """Whether a sidecar's `asset` field names another asset file than `asset`, one still there."""
    return isinstance(owner, str) and owner != Path(asset).name and (Path(asset).parent / owner).is_file()


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
            if "scale_from" in frame:
                _object(frame["scale_from"], f_at["scale_from"])
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
