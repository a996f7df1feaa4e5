"""`splatfilm import`: Gaussians from a splat file another tool wrote (a USD splat prim, `.spz`,
`.splat`, PLY) as an asset, with a sidecar saying where they came from. A source that is itself
a splatfilm asset (a sidecar beside it) is converted: its sidecar, rig and capture cameras come
along (`carry_asset_record`), as `edit` carries them."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from splatfilm.assets.ground import GroundPlane
from splatfilm.assets.sidecar import Sidecar, asset_rasterize_mode, check_sidecar_free
from splatfilm.io.asset_files import (
    capture_cameras_path,
    carry_capture_cameras,
    check_beside_free,
    read_capture_cameras,
    rig_path,
    sidecar_path,
)
from splatfilm.assets.asset_frame import origin_offset_for, origin_offset_note, robust_bounds
from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import (
    USD_EXTENSIONS,
    check_gaussian_output,
    load_gaussians_centred,
    save_gaussians,
    saved_sh_degree,
)
from splatfilm.io.ply import is_compressed_ply_name, ply_extra_properties
from splatfilm.io.spz import RUB_TURN, SPZ_DEFAULT_AXES
from splatfilm.io.camera_files import nerfstudio_to_capture
from splatfilm.io.paths import recorded_path
from splatfilm.io.rig_files import carry_rig, load_rig, remove_rig
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import Similarity
from splatfilm.version import __version__
from splatfilm import report


def dropped_note(source: Path, output: Path, source_degree: int, sh_degree: int | None = None) -> str | None:
    """The note `import` prints when `output` keeps less than `source` holds: SH bands above
    what its format stores (or `sh_degree` asks for) and a PLY's extra vertex properties
    (`io.ply.ply_extra_properties`), which no format splatfilm writes carries, and a compressed
    PLY's or a SOG's quantisation; None if nothing."""
    kept = saved_sh_degree(output, source_degree if sh_degree is None else sh_degree)
    dropped = []
    if kept < source_degree:
        coefficients = 3 * ((source_degree + 1) ** 2 - (kept + 1) ** 2)
        bands = f"{kept + 1}-{source_degree}" if kept + 1 < source_degree else f"{source_degree}"
        dropped.append(f"SH band{'s' if kept + 1 < source_degree else ''} {bands} ({coefficients} coefficients "
                       f"a Gaussian; {output.name} holds degree {kept})")
    if source.suffix.lower() == ".ply":
        extra = ply_extra_properties(source)
        if extra:
            dropped.append(f"the PLY propert{'ies' if len(extra) > 1 else 'y'} {', '.join(extra)}")
    if is_compressed_ply_name(output):
        dropped.append("full precision (a compressed PLY stores each to 8-11 bits of its chunk of 256's ranges)")
    if output.suffix.lower() == ".sog":
        dropped.append("full precision (a SOG stores positions to 16 bits, rotations and opacity to 8, scales, "
                       "colours and SH through 256-entry codebooks and an SH palette)")
    if not dropped:
        return None
    return f"note: {output.name} keeps {source.name}'s Gaussians without " + " and ".join(dropped)


def recentre_far_out(g: Gaussians, means: np.ndarray) -> tuple[Gaussians, np.ndarray | None]:
    """`g` moved by -offset when its positions `means` [N,3] (world units; float64 where the
    file held them so) lie far from their world's origin, as `fit` tells it
    (`assets.asset_frame.origin_offset_for`, on the splat's own robust extent), with that offset
    [3] (float64), said in a note; else `g` as it is and None. The move is made on `means`, so
    float64 positions keep their precision until the centred ones are stored."""
    lo, hi = robust_bounds(g, means=means)
    radius = float(np.linalg.norm(hi - lo)) / 2
    offset = origin_offset_for((lo + hi) / 2, radius) if radius > 0 else None
    if offset is None:
        return g, None
    report.note(origin_offset_note(offset, radius, "the splat", "written"))
    centred = torch.from_numpy(np.asarray(means, dtype=np.float64) - offset).to(g.means.dtype)
    return replace(g, means=centred.to(g.means.device)), offset


def source_record(source: Path) -> Sidecar | None:
    """The sidecar of `source` when it is a splatfilm asset (`Sidecar.of_asset`), else None:
    also for a JSON beside it that is not one of ours (another tool's of the same stem), said
    in a note, since a foreign splat's neighbour is no reason to refuse the conversion."""
    try:
        return Sidecar.of_asset(source)
    except SplatfilmError as e:
        report.note(f"{sidecar_path(source).name} is not read as {source.name}'s sidecar ({e}); nothing carried "
                    "from it")
        return None


def carry_asset_record(source: Path, output: Path, record: Sidecar, g: Gaussians, moved: Similarity | None,
                       step: dict, capture_offset: np.ndarray | None = None,
                       far_offset: np.ndarray | None = None, *, written: np.ndarray | None) -> Sidecar:
    """The sidecar of `output`, a conversion of the asset `source` whose sidecar is `record`,
    with `g` [N Gaussians] as saved, and write its rig and capture cameras beside it; `written`:
    the order `save_gaussians` returned for `output` (the rig's rows follow it: `carry_rig`).

    `moved`: what import did to the positions, source file -> output file (x_out = s R x_src + t;
    None when not known as a similarity: a USD prim placed by its stage with --world). The frame's
    up and front, the canonical transform, the ground plane and the capture cameras follow it, so
    the copy stands, grounds and meshes as the source did. A rig is carried only unmoved (its rest
    pose and clips would have to move with the Gaussians); an origin_offset only through a pure
    translation. What cannot follow is dropped with a note. `step` (the import's own record) is
    appended to `converted`, the record's history of conversions; `capture_offset`: the
    origin_offset of a --dataparser-transforms import (the output's frame is that capture's
    world moved by it); `far_offset`: the offset `recentre_far_out` took off."""
    sidecar = Sidecar(record.data)
    rig = load_rig(rig_path(source), len(g)) if rig_path(source).exists() else None
    cameras = read_capture_cameras(source)
    dropped = []
    if moved is None:
        for key, what in (("canonical_transform", "canonical transform"), ("ground", "ground plane")):
            if sidecar.pop(key, None) is not None:
                dropped.append(what)
        frame = sidecar.get("frame")
        if isinstance(frame, dict):
            for key in ("up", "front", "origin_offset"):
                if frame.pop(key, None) is not None:
                    dropped.append(f"frame.{key}")
        if cameras is not None:
            dropped.append(f"capture cameras ({capture_cameras_path(source).name})")
            cameras = None
        why = "--world placed the Gaussians by the prim's transform, which they do not follow"
    else:
        R, t, s = moved.rotation, moved.translation, moved.scale
        if sidecar.canonical_transform is not None:
            ct = sidecar.canonical_transform @ moved.inverse()
            sidecar["canonical_transform"] = {"rotation": ct.rotation.tolist(), "translation": ct.translation.tolist(),
                                              "scale": ct.scale}
        if sidecar.ground is not None:
            ground = GroundPlane.from_dict(sidecar.ground, str(sidecar_path(source))).transformed(moved)
            sidecar["ground"] = {**sidecar.ground, **ground.to_dict()}
        if cameras is not None and not moved.is_identity():
            cameras = cameras.transformed(R, t, s)
        frame = dict(sidecar.frame)
        for key in ("up", "front"):
            if key in frame:
                frame[key] = (R @ np.asarray(frame[key], dtype=np.float64)).tolist()
        if frame.get("scale_to_metres") is not None:
            frame["scale_to_metres"] = frame["scale_to_metres"] / s
        own_offset = sidecar.origin_offset
        if capture_offset is not None:
            frame["origin_offset"] = capture_offset.tolist()
        elif own_offset is not None and np.allclose(R, np.eye(3)) and s == 1.0:
            # x_world = x_src + offset = x_out - t + offset
            frame["origin_offset"] = (own_offset - t + 0.0).tolist()
        elif own_offset is not None:
            frame.pop("origin_offset")
            dropped.append("frame.origin_offset")
        elif far_offset is not None:
            frame["origin_offset"] = far_offset.tolist()
        if frame or "frame" in sidecar:
            lo, hi = robust_bounds(g)
            frame.update(bounds_min=lo.tolist(), bounds_max=hi.tolist())
            sidecar["frame"] = frame
        why = "import moved the Gaussians (" + ", ".join(
            f"--{k.replace('_', '-')}" if k != "origin_offset" else "centred far from the origin"
            for k in ("spz_axes", "dataparser_transforms", "origin_offset")
            if k in step and (k != "spz_axes" or step[k] != SPZ_DEFAULT_AXES)) + ")"
    if rig is not None and (moved is None or not moved.is_identity()):
        dropped.append(f"rig ({rig_path(source).name})")
        rig = None
    if dropped:
        report.note(f"{output.name} keeps {source.name}'s sidecar without its {', '.join(dropped)}: {why}")
    carry_rig(output, rig, None, sidecar, written=written)
    carry_capture_cameras(source, output, cameras)
    sidecar["asset"] = output.name
    sidecar["num_gaussians"] = len(g)
    sidecar.setdefault("source", step)  # a record that never said where it came from: from here
    converted = sidecar.get("converted")
    sidecar["converted"] = (list(converted) if isinstance(converted, list) else []) + [step]
    return sidecar


def import_splats(source: str | os.PathLike, output: str | os.PathLike, prim: str | None = None,
                  time_code: float | None = None, world: bool = False,
                  spz_axes: str = SPZ_DEFAULT_AXES, dataparser_transforms: str | os.PathLike | None = None,
                  transforms_json: str | os.PathLike | None = None,
                  sh_degree: int | None = None) -> tuple[Gaussians, Sidecar]:
    """Read `source` and write its Gaussians to `output` (any format `save_gaussians` writes)
    and a sidecar `output`.json; returns both, the Gaussians as written (SH degree `sh_degree`,
    default the source's, at most what the output's format holds). What the output cannot
    carry (SH bands, a PLY's extra properties) is named in a note.

    USD only: prim (the splat prim's path; default the file's only one), time_code (default
    its first sample) and world (placed by the prim's transform, Z up in metres, instead of
    the prim's own frame). spz_axes: for an .spz source or output, "ply" (as stored, as
    splat-transform 3.x writes them) or "rub" (turned between RUB and the PLY's axes, for
    splat-transform 2.x's and Scaniverse's files; `splatfilm.io.spz`), recorded in the sidecar's
    source. dataparser_transforms (a nerfstudio run's dataparser_transforms.json),
    with transforms_json (the dataset it trained on): Gaussians that `ns-export gaussian-splat`
    wrote in the run's normalised world, moved back into the capture's
    (`io.camera_files.nerfstudio_to_capture`), so its transforms.json cameras render them. A
    capture's world far from the origin (a georeferenced one, as `fit` tells it:
    `assets.asset_frame.origin_offset_for`) is written centred, moved by -frame.origin_offset in
    float64, as `fit` writes it, and said in a note; so is any other source whose own positions
    lie that far out (a georeferenced PLY, SPZ or USD prim: `recentre_far_out`).

    A source with a splatfilm sidecar (an asset: fitted, imported from a mesh, edited, rigged) is
    converted: the output's sidecar is the source's (kind, frame, canonical transform, ground,
    its history) with this import appended to `converted`, and its rig and capture cameras are
    written beside the output, each following what import did to the positions
    (`carry_asset_record`)."""
    source, output = Path(source), Path(output)
    is_usd = source.suffix.lower() in USD_EXTENSIONS
    if not is_usd and (prim is not None or time_code is not None or world):
        raise SplatfilmError(f"{source}: --prim, --frame and --world apply to USD files only")
    spz_ends = [p.suffix.lower() == ".spz" for p in (source, output)]
    if spz_axes != SPZ_DEFAULT_AXES and not any(spz_ends):
        raise SplatfilmError(f"{source}: --spz-axes applies to .spz files only")
    # Read and written in the same axes, the file's are kept: asking for other axes would change nothing.
    if spz_axes != SPZ_DEFAULT_AXES and all(spz_ends):
        raise SplatfilmError(f"{source}: --spz-axes {spz_axes} with .spz on both sides changes nothing; go through "
                             f"a .ply (import {source.name} -o NAME.ply --spz-axes {spz_axes}, then import that)")
    if transforms_json is not None and dataparser_transforms is None:
        raise SplatfilmError(f"{transforms_json}: --transforms-json goes with --dataparser-transforms")
    to_capture = (nerfstudio_to_capture(dataparser_transforms, transforms_json)
                  if dataparser_transforms is not None else None)
    if output.resolve() == source.resolve():  # its sidecar (the asset's frame, its history) would be replaced
        raise SplatfilmError(f"{output}: the output would overwrite the source; import into another file")
    check_gaussian_output(output)
    check_sidecar_free(output)
    check_beside_free(source, output)
    record = source_record(source)
    if is_usd:
        from splatfilm.io.usd_splats import read_usd_splats

        g = read_usd_splats(source, prim, time_code, world=world)
        if len(g) == 0:
            raise SplatfilmError(f"{source}: the splat prim holds no Gaussians")
        origin = None
    else:
        g, origin = load_gaussians_centred(source, spz_axes=spz_axes if spz_ends[0] else SPZ_DEFAULT_AXES)
    # A file's double positions (a georeferenced PLY) come centred on `origin`; float64 below.
    means = g.means.detach().cpu().double().numpy() + (0.0 if origin is None else origin)
    offset = None
    # What import does to the positions, source file -> output file, for the sidecar to follow.
    moved = None if world else Similarity(RUB_TURN) if spz_axes != SPZ_DEFAULT_AXES and spz_ends[0] else Similarity()
    if to_capture is not None:
        # The splat's own extent decides, as the cameras' does in fit; the offset is taken off in
        # float64 with the move, so no float32 ever holds the capture's own coordinates.
        lo, hi = robust_bounds(g, means=means)
        radius = to_capture.scale * float(np.linalg.norm(hi - lo)) / 2
        offset = origin_offset_for(to_capture.apply((lo + hi) / 2), radius) if radius > 0 else None
        if offset is not None:
            to_capture = Similarity(translation=-offset) @ to_capture
            report.note(origin_offset_note(offset, radius, "the splat", "written"))
        moved = None if moved is None else to_capture @ moved
        if origin is not None:
            to_capture = to_capture @ Similarity(translation=origin)
        g = to_capture.transform_gaussians(g)
    else:
        g, offset = recentre_far_out(g, means)
        if offset is None and origin is not None:  # not far enough out to centre: stored as the file has it
            g = replace(g, means=torch.from_numpy(means).to(g.means.dtype))
        if offset is not None and moved is not None:
            moved = Similarity(translation=-offset) @ moved
    if spz_axes != SPZ_DEFAULT_AXES and spz_ends[1] and moved is not None:  # written turned: read back so by default
        moved = Similarity(RUB_TURN) @ moved
    note = dropped_note(source, output, g.sh_degree, sh_degree)
    g = g.with_sh_degree(saved_sh_degree(output, g.sh_degree if sh_degree is None else sh_degree))
    # Trained antialiased (an .spz's flag, or the source's sidecar): the copy renders so too.
    mode = asset_rasterize_mode(source)
    written = save_gaussians(output, g, spz_axes=spz_axes, antialiased=mode == "antialiased")
    if note is not None:
        report.note(note)
    origin = {"type": "import", "path": recorded_path(source.resolve(), output.resolve().parent),
              "format": source.suffix.lower().lstrip(".")}
    if is_usd:
        origin.update({"prim": prim, "time_code": time_code, "world": world})
    if any(spz_ends):  # which axes the .spz was taken to hold: the default has changed before
        origin["spz_axes"] = spz_axes
    if to_capture is not None:
        origin["dataparser_transforms"] = recorded_path(Path(dataparser_transforms).resolve(), output.resolve().parent)
        if transforms_json is not None:
            origin["transforms_json"] = recorded_path(Path(transforms_json).resolve(), output.resolve().parent)
    if record is not None:
        if offset is not None:
            origin["origin_offset"] = offset.tolist()
        sidecar = carry_asset_record(source, output, record, g, moved, origin,
                                     capture_offset=offset if to_capture is not None else None,
                                     far_offset=offset if to_capture is None else None, written=written)
        sidecar["rasterize_mode"] = mode
        sidecar.write(sidecar_path(output))
        return g, sidecar
    # A plain splat has none of an asset's side files: ones an earlier output of this name left
    # (a rig would bind these Gaussians, cameras and masks would be another capture's) go.
    remove_rig(output)
    carry_capture_cameras(source, output, None)
    sidecar = Sidecar({"splatfilm_version": __version__, "asset": output.name, "kind": "scene", "source": origin,
                       "num_gaussians": len(g), "rasterize_mode": mode})
    if world:  # placed in splatfilm's world: its frame is known
        sidecar["frame"] = {"note": "the USD stage's world, turned Z up in metres", "up": [0.0, 0.0, 1.0],
                            "scale_to_metres": 1.0}
    if offset is not None and to_capture is not None:
        sidecar["frame"] = {"note": "the capture's world (its transforms.json's, else COLMAP's) moved by -origin_offset "
                                    "(x_capture = x_asset + origin_offset); no rotation or scale",
                            "origin_offset": offset.tolist()}
    elif offset is not None:
        frame = dict(sidecar.get("frame") or {})
        frame["note"] = (frame.get("note", "the source's world") + " moved by -origin_offset "
                         "(x_source = x_asset + origin_offset); no rotation or scale")
        frame["origin_offset"] = offset.tolist()
        sidecar["frame"] = frame
    sidecar.write(sidecar_path(output))
    return g, sidecar
