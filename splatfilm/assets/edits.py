"""Non-destructive edits of a Gaussian asset: select a region, then delete it, keep only it,
recolour it or scale its opacity. The asset file is never changed; edits are applied when
the asset is loaded (a film script's `edits:`) or baked into a copy (`splatfilm edit`).

A list of edits in YAML, applied in order:

    - op: delete                                  # delete | keep | recolour | opacity
      box: {min: [-1, -1, 0], max: [1, 1, 0.05]}  # or {centre: [..], size: [..], yaw: 30}
      frame: asset                                # asset (default) | world
      invert: false                               # select everything outside instead
    - op: recolour
      sphere: {centre: [0, 0, 1.6], radius: 0.2}  # no shape: the whole asset
      tint: [1.0, 0.8, 0.8]                       # gains on linear R, G, B
      exposure: 0.5                               # stops: x 2^0.5 in linear light
      brightness: 0.05                            # added to the encoded base colour
      saturation: 0.5                             # 0 grey (same luminance), 1 unchanged, > 1 more
    - op: opacity
      ellipsoid: {centre: [0, 0, 1], radii: [0.3, 0.3, 0.6], rotation: [0, 0, 45]}
      factor: 0.5

A rigged asset's rig follows the edits: delete and keep drop the rows of the Gaussians they
remove (`edit_gaussians` says which it kept; `io.rig_files.carry_rig` writes the copy's rig),
recolour and opacity keep every Gaussian.

A Gaussian is selected when its centre is inside the shape. Shapes are in the asset's own
frame (what its file stores) or, with `frame: world`, in the film world: such a selection
is resolved once against the asset-to-world transform the caller gives (the asset's
placement), and from then on belongs to the asset, moving with it when it moves.

Colour: the colours are display sRGB-encoded, as the photos were (docs/CONVENTIONS.md).
Exposure, tint and saturation act in linear light, as Nuke's Grade and Saturation and
Resolve's gain do: with dec and enc the sRGB EOTF and its inverse (`io.images`), a colour
becomes rgb' = enc(k * (M (2^exposure * dec(rgb)))) + b, with M the saturation matrix
(Rec. 709 luminance weights, so `saturation: 0` keeps a colour's linear luminance Y, not its
luma Y'), k the tint (a white balance: linear gains, so tint 0.5 takes grey 0.5 to linear
0.5 * 0.214) and b the brightness, an offset added to the encoded result (a lift, which
also lifts black). A stop up takes grey 0.5 to 0.686, not to 1.0 (scaling the encoded values
doubled them); saturation before the tint, so `saturation: 0` with a tint gives a tinted
monochrome. The base colour (SH DC term) takes all of it. The higher SH bands hold
view-dependent offsets around it, and the transfer is not linear in the encoded values, so
they take its local slope at their Gaussian's base colour (a first-order step: the Jacobian
diag(1 / dec'(out)) A diag(dec'(rgb)) with A = k M 2^exposure, per Gaussian; exact for
exposure alone above the sRGB toe, where it is affine, close for small view offsets
otherwise), so view-dependent colour scales with the base colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from splatfilm.assets.sidecar import Sidecar, carry_rasterize_mode, check_sidecar_free
from splatfilm.io.asset_files import check_beside_free, sidecar_path
from splatfilm.assets.asset_frame import robust_bounds
from splatfilm.errors import SplatfilmError
from splatfilm.io.images import linear_to_srgb, srgb_to_linear, srgb_to_linear_slope
from splatfilm.scene.gaussians import Gaussians, opacity_logit
from splatfilm.scene.sh import rgb_to_sh0, sh0_to_rgb
from splatfilm.scene.transforms import Similarity, euler_xyz_rotation, yaw_rotation
from splatfilm.yamlfields import At, load_yaml, mapping, number, show, vec3
from splatfilm import report

__all__ = ["Box", "ColourAdjust", "Edit", "Ellipsoid", "Selection", "Sphere", "apply_edits", "bake_edits",
           "edit_gaussians", "parse_edits"]

OPS = ("delete", "keep", "recolour", "opacity")
LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 luminance Y of linear R, G, B


# ---- shapes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A box of `size` [3] (full edge lengths) centred at `centre` [3], turned `yaw_deg`
    degrees about +z."""

    centre: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw_deg: float = 0.0

    def contains(self, p: np.ndarray) -> np.ndarray:
        """Which points [N,3] are inside (boundary included): bool [N]."""
        local = (p - np.asarray(self.centre)) @ yaw_rotation(self.yaw_deg)
        return np.all(np.abs(local) <= np.asarray(self.size) / 2, axis=1)


@dataclass(frozen=True)
class Sphere:
    """A ball of `radius` around `centre` [3], in the selection's frame and its units."""

    centre: tuple[float, float, float]
    radius: float

    def contains(self, p: np.ndarray) -> np.ndarray:
        """Which points [N,3] are inside (boundary included): bool [N]."""
        return np.sum((p - np.asarray(self.centre)) ** 2, axis=1) <= self.radius**2


@dataclass(frozen=True)
class Ellipsoid:
    """Semi-axes `radii` [3] along the columns of `rotation` [3][3], centred at `centre`."""

    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    rotation: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

    def contains(self, p: np.ndarray) -> np.ndarray:
        """Which points [N,3] are inside (boundary included): bool [N]."""
        local = (p - np.asarray(self.centre)) @ np.asarray(self.rotation) / np.asarray(self.radii)
        return np.sum(local**2, axis=1) <= 1.0


Shape = Box | Sphere | Ellipsoid


@dataclass(frozen=True)
class Selection:
    """Gaussians whose centres are inside `shape` (None: all of them) in `frame`; `invert`
    selects the rest instead."""

    shape: Shape | None = None
    frame: Literal["asset", "world"] = "asset"
    invert: bool = False

    def mask(self, means: np.ndarray, asset_to_world: Similarity | None, label: str) -> np.ndarray:
        """bool [N] for Gaussian centres `means` [N,3] in the asset frame."""
        if self.shape is None:
            inside = np.ones(len(means), dtype=bool)
        else:
            if self.frame == "world":
                if asset_to_world is None:
                    raise SplatfilmError(f"{label}: frame: world needs the asset's placement in a world "
                                         "(use it in a film script, or give the shape in the asset frame)")
                means = asset_to_world.apply(means)
            inside = self.shape.contains(means)
        return ~inside if self.invert else inside


# ---- operations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ColourAdjust:
    """rgb' = enc(k * (M (2^exposure * dec(rgb)))) + b: exposure, saturation matrix M and
    tint k in linear light, brightness b added to the encoded result (see the module
    docstring)."""

    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure: float = 0.0
    brightness: float = 0.0
    saturation: float = 1.0

    def linear_matrix(self) -> np.ndarray:
        """A [3,3]: what the adjustment does to linear-light colours (column vectors), the
        tint times the saturation matrix times the exposure gain."""
        return np.asarray(self.tint, dtype=np.float64)[:, None] * self.saturation_matrix() * 2.0**self.exposure

    def transfer(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(enc(A dec(rgb)) [...,3], pre [...,3], post [...,3]) for sRGB-encoded colours rgb
        [...,3] (float64), A = `linear_matrix` (not clipped; brightness is left to the caller).
        pre and post give its Jacobian at rgb, diag(post) A diag(pre): pre = dec'(rgb), post =
        1 / dec'(out) (what the higher SH bands are mapped by)."""
        rgb = np.asarray(rgb, dtype=np.float64)
        A = self.linear_matrix()
        if np.array_equal(A, np.eye(3)):  # exact, so a brightness alone adds b and nothing else
            return rgb, np.ones_like(rgb), np.ones_like(rgb)
        out = linear_to_srgb(srgb_to_linear(rgb) @ A.T)
        # enc'(y) = 1 / dec'(enc(y)): the chain rule through decode, A, encode.
        return out, srgb_to_linear_slope(rgb), 1.0 / srgb_to_linear_slope(out)

    def saturation_matrix(self) -> np.ndarray:
        """[3,3] on linear colours: lerp between the luminance grey (s = 0, Rec. 709 Y) and the
        colour (s = 1)."""
        s = self.saturation
        return (1 - s) * np.outer(np.ones(3), LUMA) + s * np.eye(3)


@dataclass(frozen=True)
class Edit:
    """One edit: `op` on the Gaussians `selection` picks. recolour uses `colour`; opacity
    multiplies opacities by `opacity_factor`. `label` names it in messages
    (`film.yaml: assets.hero.edits[2]`)."""

    op: Literal["delete", "keep", "recolour", "opacity"]
    selection: Selection = field(default_factory=Selection)
    colour: ColourAdjust = field(default_factory=ColourAdjust)
    opacity_factor: float = 1.0
    label: str = "edit"


def _recolour(g: Gaussians, mask: torch.Tensor, adj: ColourAdjust) -> Gaussians:
    """New Gaussians with the colour adjustment applied to the selected ones (SH: see module)."""
    dtype = g.dtype
    A = torch.as_tensor(adj.linear_matrix(), dtype=dtype, device=g.device)
    rgb = sh0_to_rgb(g.sh0[:, 0])  # base colour before the renderer's clamp
    graded, pre, post = (torch.as_tensor(x, dtype=dtype, device=g.device)
                         for x in adj.transfer(rgb.detach().cpu().double().numpy()))
    new_rgb = graded + adj.brightness
    sh0 = torch.where(mask[:, None, None], rgb_to_sh0(new_rgb)[:, None, :], g.sh0)
    shN = g.shN
    if shN.shape[1] > 0:
        shN = torch.where(mask[:, None, None], ((shN * pre[:, None, :]) @ A.T) * post[:, None, :], shN)
    return replace(g, sh0=sh0, shN=shN)


def _scale_opacity(g: Gaussians, mask: torch.Tensor, factor: float) -> Gaussians:
    # eps 1e-6 keeps the logit finite at factor 0 or when scaled past 1
    logit = opacity_logit(g.activated_opacities * factor, 1e-6)
    return replace(g, opacities=torch.where(mask, logit, g.opacities))


def edit_gaussians(gaussians: Gaussians, edits: list[Edit], asset_to_world: Similarity | None = None
                   ) -> tuple[Gaussians, np.ndarray]:
    """The Gaussians after `edits`, in order (new tensors; the input is not modified), and
    which of the input's they are: kept, bool [N], True for each one still there. delete and
    keep drop Gaussians without reordering the rest; recolour and opacity keep every one. So
    the output's i-th Gaussian is the input's i-th True in `kept`, and a rig's per-Gaussian
    rows follow with `Rig.select_gaussians(kept)`.

    gaussians: in the asset frame; asset_to_world: where the asset is placed, for selections
    in `frame: world`. A delete, recolour or opacity edit that selects nothing is skipped with
    a note on stderr; a keep that selects nothing, or a delete of every Gaussian, is an
    error: either would leave nothing, and a keep skipped kept everything (a typo'd box
    passed unnoticed)."""
    g = gaussians
    kept = np.ones(len(gaussians), dtype=bool)
    for edit in edits:
        means = g.means.detach().cpu().double().numpy()
        mask_np = edit.selection.mask(means, asset_to_world, edit.label)
        if not mask_np.any():
            if edit.op == "keep":
                raise SplatfilmError(f"{edit.label}: keep selects no Gaussians of the asset (of {len(g)}); "
                                     "check its shape's centre, size and frame")
            report.note(f"{edit.label} ({edit.op}) selects no Gaussians; skipped")
            continue
        mask = torch.as_tensor(mask_np, device=g.device)
        if edit.op == "delete":
            if mask_np.all():
                raise SplatfilmError(f"{edit.label}: delete would remove every Gaussian of the asset")
            g = g.select(~mask)
            kept[kept] = ~mask_np
        elif edit.op == "keep":
            g = g.select(mask)
            kept[kept] = mask_np
        elif edit.op == "recolour":
            g = _recolour(g, mask, edit.colour)
        elif edit.op == "opacity":
            g = _scale_opacity(g, mask, edit.opacity_factor)
        else:
            raise SplatfilmError(f"{edit.label}: unknown op {edit.op!r} (expected one of {', '.join(OPS)})")
    return g, kept


def apply_edits(gaussians: Gaussians, edits: list[Edit], asset_to_world: Similarity | None = None) -> Gaussians:
    """The Gaussians after `edits`: `edit_gaussians` for a caller with no per-Gaussian data
    (a rig) to carry along."""
    return edit_gaussians(gaussians, edits, asset_to_world)[0]


# ---- YAML ---------------------------------------------------------------------------------

_SELECTION = {"box", "sphere", "ellipsoid", "frame", "invert"}
_FIELDS = {
    "delete": _SELECTION,
    "keep": _SELECTION,
    "recolour": _SELECTION | {"tint", "exposure", "brightness", "saturation"},
    "opacity": _SELECTION | {"factor"},
}


def _floats(v: np.ndarray) -> tuple[float, ...]:
    return tuple(float(x) for x in v)


def _parse_shape(data: dict, at: At) -> Shape | None:
    given = [k for k in ("box", "sphere", "ellipsoid") if k in data]
    if len(given) > 1:
        at.fail(f"give one shape, not {' and '.join(given)}")
    if not given:
        return None
    kind = given[0]
    s_at = at[kind]
    if isinstance(data[kind], dict) and "center" in data[kind] and "centre" not in data[kind]:
        # Accept the American spelling too (Blender and most tools write "center").
        data = {**data, kind: {("centre" if k == "center" else k): v for k, v in data[kind].items()}}
    if kind == "box":
        d = mapping(data["box"], s_at, {"min", "max", "centre", "size", "yaw"})
        if "min" in d or "max" in d:
            if not {"min", "max"} <= set(d) or {"centre", "size", "yaw"} & set(d):
                s_at.fail("give min and max corners, or centre and size (and yaw), not a mix")
            lo, hi = vec3(d["min"], s_at["min"]), vec3(d["max"], s_at["max"])
            if np.any(hi < lo):
                s_at["max"].fail(f"is below min on some axis ({hi.tolist()} < {lo.tolist()})")
            return Box(_floats((lo + hi) / 2), _floats(hi - lo))
        if not {"centre", "size"} <= set(d):
            s_at.fail("needs min and max corners, or centre and size")
        size = vec3(d["size"], s_at["size"])
        if np.any(size < 0):
            s_at["size"].fail(f"must not be negative, got {size.tolist()}")
        return Box(_floats(vec3(d["centre"], s_at["centre"])), _floats(size), number(d.get("yaw", 0.0), s_at["yaw"]))
    if kind == "sphere":
        d = mapping(data["sphere"], s_at, {"centre", "radius"})
        if not {"centre", "radius"} <= set(d):
            s_at.fail("needs centre and radius")
        return Sphere(_floats(vec3(d["centre"], s_at["centre"])), number(d["radius"], s_at["radius"], "positive"))
    d = mapping(data["ellipsoid"], s_at, {"centre", "radii", "rotation"})
    if not {"centre", "radii"} <= set(d):
        s_at.fail("needs centre and radii (and optionally rotation: [x, y, z] degrees)")
    radii = vec3(d["radii"], s_at["radii"])
    if np.any(radii <= 0):
        s_at["radii"].fail(f"must be > 0, got {radii.tolist()}")
    rot = euler_xyz_rotation(vec3(d["rotation"], s_at["rotation"])) if "rotation" in d else np.eye(3)
    return Ellipsoid(_floats(vec3(d["centre"], s_at["centre"])), _floats(radii), tuple(_floats(r) for r in rot))


def _parse_edit(raw: Any, at: At) -> Edit:
    if not isinstance(raw, dict):
        at.fail(f"expected a mapping with op: {' | '.join(OPS)}, got {show(raw)}")
    if "op" not in raw:
        at.fail(f"missing `op` ({' | '.join(OPS)})")
    op = raw["op"]
    if op not in OPS:
        at["op"].fail(f"expected one of {', '.join(OPS)}, got {show(op)}")
    data = mapping(raw, at, _FIELDS[op] | {"op"})
    shape = _parse_shape(data, at)
    if shape is None and op in ("delete", "keep"):
        at.fail(f"{op} needs a shape: box, sphere or ellipsoid")
    frame = data.get("frame", "asset")
    if frame not in ("asset", "world"):
        at["frame"].fail(f"expected asset or world, got {show(frame)}")
    invert = data.get("invert", False)
    if not isinstance(invert, bool):
        at["invert"].fail(f"expected true or false, got {show(invert)}")
    selection = Selection(shape, frame, invert)
    label = f"{at.source}: {at.where}" if at.where else at.source
    if op == "recolour":
        known = {"tint", "exposure", "brightness", "saturation"} & set(data)
        if not known:
            at.fail("recolour needs at least one of tint, exposure, brightness, saturation")
        tint = (1.0, 1.0, 1.0)
        if "tint" in data:
            t = vec3(data["tint"], at["tint"])
            if np.any(t < 0):
                at["tint"].fail(f"must not be negative, got {t.tolist()}")
            tint = _floats(t)
        colour = ColourAdjust(tint, number(data.get("exposure", 0.0), at["exposure"]),
                              number(data.get("brightness", 0.0), at["brightness"]),
                              number(data.get("saturation", 1.0), at["saturation"], "nonneg"))
        return Edit(op, selection, colour=colour, label=label)
    if op == "opacity":
        if "factor" not in data:
            at.fail("opacity needs factor (a multiplier of the opacity, >= 0)")
        return Edit(op, selection, opacity_factor=number(data["factor"], at["factor"], "nonneg"), label=label)
    return Edit(op, selection, label=label)


def parse_edits(value: Any, at: At) -> list[Edit]:
    """Edits from a YAML list (see the module docstring); errors name the field path
    (`film.yaml: assets.hero.edits[1].sphere.radius: must be > 0, got -1`)."""
    if not isinstance(value, list):
        at.fail(f"expected a list of edits ({{op: {' | '.join(OPS)}, ...}}), got {show(value)}")
    return [_parse_edit(raw, at[i]) for i, raw in enumerate(value)]


# ---- baking a copy ------------------------------------------------------------------------


def bake_edits(input_path: str | Path, edits_path: str | Path, output_path: str | Path) -> Sidecar:
    """`splatfilm edit`: apply the edits in EDITS.yaml (a list, or a mapping with `edits:`;
    asset frame only) to INPUT and write OUTPUT with a sidecar OUTPUT.json: INPUT's sidecar
    (if any) with the count, bounds and the edits noted. What lies beside INPUT about its
    Gaussians comes along: its rig (OUTPUT.rig.npz: the same skeleton and clips binding the
    Gaussians the edits keep, in the order OUTPUT holds them: `carry_rig`) and its capture
    cameras (OUTPUT.cameras.json, as `clean` records them; edits do not move the asset).
    Returns the sidecar."""
    from splatfilm.io.asset_files import carry_capture_cameras, read_capture_cameras, rig_path
    from splatfilm.io.gaussian_files import check_gaussian_output, load_gaussians, save_gaussians
    from splatfilm.io.inputs import read_text
    from splatfilm.io.rig_files import carry_rig, load_rig

    input_path, edits_path, output_path = Path(input_path), Path(edits_path), Path(output_path)
    if output_path.resolve() == input_path.resolve():
        raise SplatfilmError(f"{output_path}: the output would overwrite the input; edits keep the captured asset")
    check_gaussian_output(output_path)
    check_sidecar_free(output_path)
    check_beside_free(input_path, output_path)
    doc = load_yaml(read_text(edits_path, "YAML list of edits"), str(edits_path))
    at = At(str(edits_path))
    if isinstance(doc, dict):
        doc, at = mapping(doc, at, {"edits"}).get("edits"), at["edits"]
    edits = parse_edits(doc, at)
    world = [e.label for e in edits if e.selection.frame == "world" and e.selection.shape is not None]
    if world:
        raise SplatfilmError(f"{world[0]}: frame: world needs a placement; `splatfilm edit` works in the asset "
                             "frame (use world-frame edits in a film script)")
    # Read first: a broken sidecar, rig or camera file fails before any work.
    sidecar = Sidecar.of_asset(input_path) or Sidecar()
    gaussians = load_gaussians(input_path)
    rig = load_rig(rig_path(input_path), len(gaussians)) if rig_path(input_path).exists() else None
    cameras = read_capture_cameras(input_path)
    g, kept = edit_gaussians(gaussians, edits)
    written = save_gaussians(output_path, g, antialiased=carry_rasterize_mode(input_path, sidecar))
    carry_rig(output_path, rig, kept, sidecar, written=written)
    carry_capture_cameras(input_path, output_path, cameras)
    sidecar["asset"] = output_path.name
    sidecar["num_gaussians"] = len(g)
    if "frame" in sidecar:
        lo, hi = robust_bounds(g)
        sidecar["frame"].update(bounds_min=lo.tolist(), bounds_max=hi.tolist())
    # The canonical transform (if any) is kept as it was: the edited asset stands where the
    # original stood, even when an edit removes its base.
    sidecar["edits"] = {"from": str(input_path.resolve()), "file": str(edits_path.resolve()), "edits": doc}
    sidecar.write(sidecar_path(output_path))
    return sidecar
