"""`splatfilm import`: Gaussians from a splat file another tool wrote (a USD splat prim, `.spz`,
`.splat`, PLY) as an asset, with a sidecar saying where they came from."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from splatfilm.assets.sidecar import (
    Sidecar,
    asset_rasterize_mode,
    check_sidecar_free,
    origin_offset_for,
    origin_offset_note,
    robust_bounds,
    sidecar_path,
)
from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import (
    USD_EXTENSIONS,
    check_gaussian_output,
    load_gaussians_centred,
    save_gaussians,
    saved_sh_degree,
)
from splatfilm.io.ply import is_compressed_ply_name, ply_extra_properties
from splatfilm.io.spz import SPZ_DEFAULT_AXES
from splatfilm.io.camera_files import nerfstudio_to_capture
from splatfilm.io.paths import recorded_path
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import Similarity
from splatfilm.version import __version__


def dropped_note(source: Path, output: Path, source_degree: int, sh_degree: int | None = None) -> str | None:
    """The note `import` prints when `output` keeps less than `source` holds: SH bands above
    what its format stores (or `sh_degree` asks for) and a PLY's extra vertex properties
    (`io.ply.ply_extra_properties`), which no format splatfilm writes carries, and a compressed
    PLY's quantisation; None if nothing."""
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
    if not dropped:
        return None
    return f"note: {output.name} keeps {source.name}'s Gaussians without " + " and ".join(dropped)


def recentre_far_out(g: Gaussians, means: np.ndarray) -> tuple[Gaussians, np.ndarray | None]:
    """`g` moved by -offset when its positions `means` [N,3] (world units; float64 where the
    file held them so) lie far from their world's origin, as `fit` tells it
    (`assets.sidecar.origin_offset_for`, on the splat's own robust extent), with that offset
    [3] (float64), said in a note; else `g` as it is and None. The move is made on `means`, so
    float64 positions keep their precision until the centred ones are stored."""
    lo, hi = robust_bounds(g, means=means)
    radius = float(np.linalg.norm(hi - lo)) / 2
    offset = origin_offset_for((lo + hi) / 2, radius) if radius > 0 else None
    if offset is None:
        return g, None
    print(origin_offset_note(offset, radius, "the splat", "written"))
    centred = torch.from_numpy(np.asarray(means, dtype=np.float64) - offset).to(g.means.dtype)
    return replace(g, means=centred.to(g.means.device)), offset


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
    the prim's own frame). spz_axes: for an .spz source or output, "rub" (SPZ's own axes,
    turned into the PLY's) or "ply" (as stored; `splatfilm.io.spz`), recorded in the sidecar's
    source. dataparser_transforms (a nerfstudio run's dataparser_transforms.json),
    with transforms_json (the dataset it trained on): Gaussians that `ns-export gaussian-splat`
    wrote in the run's normalised world, moved back into the capture's
    (`io.camera_files.nerfstudio_to_capture`), so its transforms.json cameras render them. A
    capture's world far from the origin (a georeferenced one, as `fit` tells it:
    `assets.sidecar.origin_offset_for`) is written centred, moved by -frame.origin_offset in
    float64, as `fit` writes it, and said in a note; so is any other source whose own positions
    lie that far out (a georeferenced PLY, SPZ or USD prim: `recentre_far_out`)."""
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
    if to_capture is not None:
        # The splat's own extent decides, as the cameras' does in fit; the offset is taken off in
        # float64 with the move, so no float32 ever holds the capture's own coordinates.
        lo, hi = robust_bounds(g, means=means)
        radius = to_capture.scale * float(np.linalg.norm(hi - lo)) / 2
        offset = origin_offset_for(to_capture.apply((lo + hi) / 2), radius) if radius > 0 else None
        if origin is not None:
            to_capture = to_capture @ Similarity(translation=origin)
        if offset is not None:
            to_capture = Similarity(translation=-offset) @ to_capture
            print(origin_offset_note(offset, radius, "the splat", "written"))
        g = to_capture.transform_gaussians(g)
    else:
        g, offset = recentre_far_out(g, means)
        if offset is None and origin is not None:  # not far enough out to centre: stored as the file has it
            g = replace(g, means=torch.from_numpy(means).to(g.means.dtype))
    note = dropped_note(source, output, g.sh_degree, sh_degree)
    g = g.with_sh_degree(saved_sh_degree(output, g.sh_degree if sh_degree is None else sh_degree))
    # Trained antialiased (an .spz's flag, or the source's sidecar): the copy renders so too.
    mode = asset_rasterize_mode(source)
    save_gaussians(output, g, spz_axes=spz_axes, antialiased=mode == "antialiased")
    if note is not None:
        print(note)
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
