"""Rig files: an asset's skeleton, clips and skin weights, beside the asset as `ASSET.rig.npz`.

`splatfilm import-mesh RIGGED.glb -o HERO.ply` writes HERO.ply, HERO.json and
HERO.rig.npz. The rig file is a NumPy .npz archive (a zip of .npy arrays), read with
`allow_pickle=False`: nothing in it is executed. Version 1 holds:

- `header`: a uint8 array of UTF-8 JSON:
  `{"format": "splatfilm-rig", "version": 1, "splatfilm_version", "asset": "HERO.ply",
  "num_gaussians": N, "joints": [{"name", "parent", "skin"}...], "clips": [{"name", "start", "duration",
  "channels": [{"joint", "path", "interpolation", "keys"}...]}...], "source": {...}}`.
  `parent` is a joint index, -1 for a root, and always smaller than the joint's own index
  (parents come first); `skin` is true for a joint a glTF skin lists, false for a node kept
  for its transform (an armature above the skeleton, a mesh's node; files written before
  it was kept have none: not known). `path` is translation, rotation or scale; `interpolation` is
  LINEAR, STEP or CUBICSPLINE (glTF's meanings); `start` is the clip's first key (seconds,
  as the glTF times it: 1/fps for Blender's default export) and `duration` the seconds from
  there to its last key. Files written before `start` was kept have none: it reads as 0,
  their `duration` then being the last key's time, as it was written.
- `rest_translation` [J,3], `rest_rotation` [J,4] (w, x, y, z), `rest_scale` [J,3], all
  float64: each joint's rest transform relative to its parent, T * R * S.
- `inverse_binds` [J,4,4] float64: from the asset's frame into each joint's space at bind
  time (column vectors: x_joint = M @ [x, 1]).
- `gaussian_joints` [N,4] int32 and `gaussian_weights` [N,4] float32: the joints each
  Gaussian of the asset follows and their weights (each row sums to 1; unused slots have
  weight 0).
- `clip<c>_channel<k>_times` [K] float64 (seconds, increasing) and
  `clip<c>_channel<k>_values`, float64 [K,C] (C = 3, or 4 for rotations as (w, x, y, z))
  or, for CUBICSPLINE, [K,3,C] (in-tangent, value, out-tangent per key).

Frames: joints and Gaussians share the asset's frame (for a glTF import, the glTF scene
frame); the Gaussians in ASSET.ply sit at the rest pose. A joint's global transform is
the product of its ancestors' local transforms; a Gaussian in a pose follows the blend of
G_j(pose) IBM_j (IBM_j G_j(rest))^-1 applied to its rest place (`splatfilm.scene.skinning`).

A file without `version` in its header is read as version 1; a newer version is refused.
Writes are atomic. Writing an asset without a rig removes a rig file left beside it. A copy
that keeps some of a rigged asset's Gaussians (`splatfilm edit`, `splatfilm clean`) gets the
same skeleton and clips binding the kept ones (`carry_rig`). Row i binds the asset file's
Gaussian i as it is read back: a `*.compressed.ply` or a `.splat` holds its Gaussians in
another order than they were saved in, and `carry_rig` puts the rows in that order.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write
from splatfilm.io.inputs import read_input
from splatfilm.scene.skeleton import INTERPOLATIONS, PATHS, Animation, Channel, JointTRS, Rig
from splatfilm.version import __version__
from splatfilm.io.asset_files import rig_path

__all__ = ["RIG_FORMAT_VERSION", "carry_rig", "joints_text", "load_rig", "remove_rig",
           "save_rig", "skin_joint_count"]

RIG_FORMAT_VERSION = 1


def remove_rig(asset: str | os.PathLike) -> None:
    """Remove the rig file beside an asset, if any (the asset was replaced by one without)."""
    try:
        rig_path(asset).unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise SplatfilmError(f"{rig_path(asset)}: cannot remove the old rig ({e.strerror or e})") from None


def carry_rig(output: str | os.PathLike, rig: Rig | None, kept: np.ndarray | None,
              sidecar: MutableMapping[str, Any] | None = None, *, written: np.ndarray | None) -> None:
    """Give OUTPUT, just saved, the rig of its Gaussians: `rig` (the input's or a new one, or
    None) binding the Gaussians `kept` picks (bool [N_rig], or indices; None: all), in their
    order, then in `written`'s, the order `io.gaussian_files.save_gaussians` returned for OUTPUT
    (indices into the kept Gaussians, or None: as given), since a `*.compressed.ply` or a
    `.splat` holds them in another; written beside OUTPUT, and `sidecar`'s rig record (the
    output's sidecar, if given) pointed at it. With no rig, a rig file left beside OUTPUT (it
    would bind other Gaussians) and the record go. `written` has no default: every writer of a
    rig beside Gaussians says what order it saved them in."""
    output = Path(output)
    if rig is not None:
        if kept is not None:
            rig = rig.select_gaussians(kept)
        if written is not None:
            rig = rig.select_gaussians(written)
        save_rig(rig_path(output), rig, output.name)
        if sidecar is not None and isinstance(sidecar.get("rig"), dict):
            sidecar["rig"]["file"] = rig_path(output).name
    else:
        remove_rig(output)
        if sidecar is not None:
            sidecar.pop("rig", None)


def skin_joint_count(rig: Rig) -> int | None:
    """How many of `rig`'s joints a glTF skin lists (the rest are nodes kept for their
    transforms: an armature, a mesh's node); None where the rig does not say (`Rig.in_skin`)."""
    return None if rig.in_skin is None else int(np.count_nonzero(rig.in_skin))


def joints_text(record: MutableMapping[str, Any]) -> str:
    """A sidecar's rig record's joints as `import-mesh` and `rig` print them: "19 joints", or
    where its skin lists fewer (`skin_joints`), "19 nodes, 16 of them skin joints", so the count
    matches what `pose --joints` lists and what a film's ik and look_at may name."""
    nodes, skin = record["joints"], record.get("skin_joints")
    return f"{nodes} joints" if skin is None or skin == nodes else f"{nodes} nodes, {skin} of them skin joints"


def save_rig(path: str | os.PathLike, rig: Rig, asset_name: str) -> None:
    """Write `rig` to `path` (a .rig.npz), atomically, its rows as given; beside Gaussians just
    saved, `carry_rig` puts them in the order the file holds those in."""
    header = {
        "format": "splatfilm-rig",
        "version": RIG_FORMAT_VERSION,
        "splatfilm_version": __version__,
        "asset": asset_name,
        "num_gaussians": int(len(rig.joints)),
        "joints": [{"name": n, "parent": int(p)} | ({} if rig.in_skin is None else {"skin": bool(rig.in_skin[j])})
                   for j, (n, p) in enumerate(zip(rig.joint_names, rig.parents))],
        "clips": [{"name": c.name, "start": float(c.start), "duration": float(c.duration),
                   "channels": [{"joint": int(ch.joint), "path": ch.path, "interpolation": ch.interpolation,
                                 "keys": int(len(ch.times))} for ch in c.channels]} for c in rig.clips.values()],
        "source": rig.source,
    }
    arrays = {
        "header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        "rest_translation": np.asarray(rig.rest.translation, np.float64),
        "rest_rotation": np.asarray(rig.rest.rotation, np.float64),
        "rest_scale": np.asarray(rig.rest.scale, np.float64),
        "inverse_binds": np.asarray(rig.inverse_binds, np.float64),
        "gaussian_joints": np.asarray(rig.joints, np.int32),
        "gaussian_weights": np.asarray(rig.weights, np.float32),
    }
    for c, clip in enumerate(rig.clips.values()):
        for k, ch in enumerate(clip.channels):
            arrays[f"clip{c}_channel{k}_times"] = np.asarray(ch.times, np.float64)
            arrays[f"clip{c}_channel{k}_values"] = np.asarray(ch.values, np.float64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, [buf.getbuffer()])


def load_rig(path: str | os.PathLike, num_gaussians: int | None = None) -> Rig:
    """Read a rig file, checking every field; `num_gaussians`: the asset's count, which the
    rig must bind. Errors name the file and the field."""
    path = Path(path)
    data = read_input(path, "rig file")

    def fail(where: str, what: str) -> SplatfilmError:
        return SplatfilmError(f"{path}: {where}: {what}")

    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise SplatfilmError(f"{path}: not a splatfilm rig file ({type(e).__name__}: {e})") from None
    if "header" not in arrays:
        raise SplatfilmError(f"{path}: not a splatfilm rig file (no header)")
    try:
        header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise fail("header", f"not JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != "splatfilm-rig":
        raise fail("header.format", "is not 'splatfilm-rig'")
    version = header.get("version", 1)
    if not isinstance(version, int) or version < 1:
        raise fail("header.version", f"must be a positive integer, got {version!r}")
    if version > RIG_FORMAT_VERSION:
        raise fail("header.version", f"is {version}: written by a newer splatfilm; this one reads version "
                                     f"{RIG_FORMAT_VERSION} (upgrade splatfilm)")

    def array(name: str, shape: tuple, kind: str) -> np.ndarray:
        if name not in arrays:
            raise fail(name, "is missing")
        a = arrays[name]
        if a.dtype.kind not in kind or a.ndim != len(shape) or any(s is not None and s != d
                                                                  for s, d in zip(shape, a.shape)):
            want = "x".join("?" if s is None else str(s) for s in shape)
            raise fail(name, f"has shape {'x'.join(map(str, a.shape))} ({a.dtype}); expected {want}")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise fail(name, "holds values that are not finite")
        return a

    joints = header.get("joints")
    if not isinstance(joints, list) or not joints:
        raise fail("header.joints", "must be a non-empty list")
    names, parents = [], []
    for j, item in enumerate(joints):
        if not (isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("parent"), int)):
            raise fail(f"header.joints[{j}]", "needs a name (text) and a parent (integer)")
        if not -1 <= item["parent"] < j:
            raise fail(f"header.joints[{j}].parent", f"{item['parent']} is not an earlier joint or -1")
        if not isinstance(item.get("skin", False), bool):
            raise fail(f"header.joints[{j}].skin", f"must be true or false, got {item['skin']!r}")
        names.append(item["name"])
        parents.append(item["parent"])
    J = len(names)
    rest = JointTRS(array("rest_translation", (J, 3), "f").astype(np.float64),
                    array("rest_rotation", (J, 4), "f").astype(np.float64),
                    array("rest_scale", (J, 3), "f").astype(np.float64))
    if np.any(np.linalg.norm(rest.rotation, axis=1) < 1e-6):
        raise fail("rest_rotation", "holds a zero quaternion")
    ibm = array("inverse_binds", (J, 4, 4), "f").astype(np.float64)
    n = header.get("num_gaussians")
    g_joints = array("gaussian_joints", (n if isinstance(n, int) else None, 4), "iu").astype(np.int64)
    g_weights = array("gaussian_weights", (len(g_joints), 4), "f").astype(np.float32)
    if num_gaussians is not None and len(g_joints) != num_gaussians:
        raise fail("gaussian_joints", f"binds {len(g_joints)} Gaussians but the asset has {num_gaussians} "
                                      "(the asset was changed after its rig was written?)")
    if len(g_joints) and (g_joints.min() < 0 or g_joints.max() >= J):
        raise fail("gaussian_joints", f"joint {int(g_joints.max() if g_joints.max() >= J else g_joints.min())} is out "
                                      f"of range ({J} joints)")
    if np.any(g_weights < 0) or (len(g_weights) and np.abs(g_weights.sum(axis=1) - 1).max() > 1e-3):
        raise fail("gaussian_weights", "each row must be non-negative and sum to 1")

    clips: dict[str, Animation] = {}
    for c, item in enumerate(header.get("clips", [])):
        where = f"header.clips[{c}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise fail(where, "needs a name")
        if item["name"] in clips:
            raise fail(where + ".name", f"{item['name']!r} is used twice")
        duration = item.get("duration", 0.0)
        if not isinstance(duration, (int, float)) or not duration >= 0:
            raise fail(where + ".duration", f"must be a number of seconds >= 0, got {duration!r}")
        start = item.get("start", 0.0)
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not math.isfinite(start):
            raise fail(where + ".start", f"must be a number of seconds, got {start!r}")
        channels = []
        for k, ch in enumerate(item.get("channels", [])):
            cw = f"{where}.channels[{k}]"
            if not isinstance(ch, dict):
                raise fail(cw, "must be a mapping")
            joint, p, interp = ch.get("joint"), ch.get("path"), ch.get("interpolation")
            if not isinstance(joint, int) or not 0 <= joint < J:
                raise fail(cw + ".joint", f"{joint!r} is not a joint index (0-{J - 1})")
            if p not in PATHS:
                raise fail(cw + ".path", f"{p!r} is not translation, rotation or scale")
            if interp not in INTERPOLATIONS:
                raise fail(cw + ".interpolation", f"{interp!r} is not LINEAR, STEP or CUBICSPLINE")
            times = array(f"clip{c}_channel{k}_times", (None,), "f").astype(np.float64)
            shape = (len(times), 3, PATHS[p]) if interp == "CUBICSPLINE" else (len(times), PATHS[p])
            values = array(f"clip{c}_channel{k}_values", shape, "f").astype(np.float64)
            if len(times) == 0 or np.any(np.diff(times) <= 0):
                raise fail(f"clip{c}_channel{k}_times", "needs at least one key, at increasing times")
            channels.append(Channel(joint, p, interp, times, values))
        clips[item["name"]] = Animation(item["name"], float(duration), channels, float(start))
    source = header.get("source", {})
    # `skin` is on every joint or none (written before it was kept): then which are bones is not known.
    in_skin = np.array([item["skin"] for item in joints]) if all("skin" in item for item in joints) else None
    return Rig(names, np.array(parents, dtype=np.int64), rest, ibm, clips, g_joints, g_weights,
               source if isinstance(source, dict) else {}, in_skin)
