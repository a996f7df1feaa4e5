"""Gaussians as OpenUSD `UsdVol.ParticleField3DGaussianSplat` prims (usd-core >= 26.03), both ways.

The schema's conventions (usdVol/schema.usda), and how splatfilm's raw parameters map:

    positions                           point3f[N]   means, in the prim's own space
    orientations                        quatf[N]     quats normalised; USD's quatf is (real, i, j, k),
                                                     our (w, x, y, z) (numpy views of a QuatfArray
                                                     are (i, j, k, real): converted here)
    scales                              float3[N]    exp(scales): LINEAR, not log
    opacities                           float[N]     sigmoid(opacities): LINEAR in [0, 1], not logit
    radiance:sphericalHarmonicsDegree   uniform int  the SH degree d
    radiance:sphericalHarmonicsCoefficients float3[N (d+1)^2]
                                                     per particle sh0 then shN (3DGS's order: band by
                                                     band, m = -l..l, colour inner), the raw 3DGS
                                                     coefficients (rgb = 0.5 + C0 sh0 + ...). The
                                                     schema's own attribute, no primvar: readers
                                                     stripe it by (d+1)^2 from the degree, so it
                                                     carries no interpolation / elementSize
    extent                              float3[2]    the box each Gaussian can draw in (alpha >= 1/255,
                                                     at most 3 sigma: the renderer's opacity-aware
                                                     bound, inside the kernel's 99.7% support), as
                                                     UsdGeomPoints' extent counts its widths
    projectionModeHint = perspective, sortingModeHint = zDepth   (how splatfilm renders: EWA
                                                     projection, tiles sorted by camera z)
    colorSpace:name = srgb_rec709_scene (UsdColorSpaceAPI): the coefficients give sRGB-encoded
                                                     colour, as 3DGS trains them on photos

Reading takes the float attributes, else the half ones (`positionsh`, ...), and the schema's
defaults for what is missing or too short (identity rotation, unit scale, opaque, a grey DC
term); longer arrays are cut to the number of positions. The values round trip within float32
(the linear scale and opacity pass through exp/log and sigmoid/logit).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_path
from splatfilm.scene.gaussians import Gaussians, opacity_logit, opacity_sigmoid
from splatfilm.scene.sh import MAX_SH_DEGREE
from splatfilm.scene.transforms import Similarity, quat_to_rotmat

__all__ = ["splat_prims", "drawn_extent", "write_splat_prim", "gaussians_of_prim", "read_usd_splats",
           "write_usd_splats", "read_usd_world_splats", "open_usd_stage", "export_usd_stage", "usd_path_problem",
           "stage_to_world"]

# Opacities of 0 and 1 read as these, so their logits stay finite.
_OPACITY_EPS = 1e-7
# Linear scales of 0 read as this, so their log stays finite.
_MIN_SCALE = 1e-30


def _pxr():
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdVol, Vt
    except ImportError as e:
        raise SplatfilmError(f"USD files need usd-core >= 26.03 ({e}); pip install usd-core") from None
    if not hasattr(UsdVol, "ParticleField3DGaussianSplat"):
        raise SplatfilmError("this usd-core has no UsdVol.ParticleField3DGaussianSplat (needs usd-core >= 26.03)")
    return Gf, Sdf, Usd, UsdGeom, UsdVol, Vt


def open_usd_stage(path: str | os.PathLike) -> Any:
    """The stage of a USD file, or a one-line SplatfilmError naming it."""
    _, _, Usd, _, _, _ = _pxr()
    path = Path(path)
    if not path.exists():
        raise SplatfilmError(f"{path}: no such file")
    if path.is_dir():
        raise SplatfilmError(f"{path}: is a folder, not a USD file")
    try:
        stage = Usd.Stage.Open(str(path))
    except Exception as e:  # pxr raises Tf.ErrorException with a multi-line text
        first = str(e).strip().splitlines()
        raise SplatfilmError(f"{path}: not a readable USD file ({first[-1].strip() if first else 'unknown error'})") from None
    if stage is None:
        raise SplatfilmError(f"{path}: not a readable USD file")
    return stage


def usd_path_problem(path: str | os.PathLike) -> str | None:
    """Why USD cannot write a file at `path`, or None when it can. USD keeps its layers'
    names as UTF-8 text, so a path whose bytes are not UTF-8 (a folder named on a Latin-1
    system, which Python holds as surrogate escapes) cannot be handed to it."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return "USD needs a UTF-8 path"
    return None


def export_usd_stage(stage: Any, path: str | os.PathLike) -> None:
    """Write `stage`'s root layer to `path` atomically (.usda text, .usd / .usdc binary crate);
    a one-line SplatfilmError when USD cannot write there (`usd_path_problem`)."""
    path = Path(path)
    problem = usd_path_problem(path)
    if problem:
        raise SplatfilmError(f"{path}: {problem}")
    with atomic_path(path) as tmp:
        if not stage.GetRootLayer().Export(str(tmp)):
            raise SplatfilmError(f"{path}: USD could not write the file")


def splat_prims(stage: Any) -> list:
    """Every ParticleField3DGaussianSplat prim on the stage, in traversal order."""
    _, _, Usd, _, UsdVol, _ = _pxr()
    return [p for p in stage.Traverse(Usd.TraverseInstanceProxies()) if p.IsA(UsdVol.ParticleField3DGaussianSplat)]


def _time(time):
    _, _, Usd, _, _, _ = _pxr()
    return Usd.TimeCode.EarliestTime() if time is None else Usd.TimeCode(time)


def drawn_extent(g: Gaussians) -> np.ndarray:
    """The box [2, 3] (min, max) in the Gaussians' own space that holds everything they can
    draw: each one's ellipsoid out to where its alpha falls below 1/255 (k = sqrt(2 ln(255 a))
    standard deviations, at most 3), as the renderer's opacity-aware boxes; zeros for none."""
    g = g.detach().to("cpu", torch.float64)
    if len(g) == 0:
        return np.zeros((2, 3))
    means = g.means.numpy()
    R = quat_to_rotmat(g.quats).numpy()
    alpha = g.activated_opacities.numpy()
    k = np.minimum(3.0, np.sqrt(2.0 * np.log(np.maximum(255.0 * alpha, 1.0))))[:, None]  # 0: too faint to draw
    with np.errstate(over="ignore", invalid="ignore"):
        axes = R * np.exp(g.scales.numpy())[:, None, :]  # columns: the principal axes, 1 sigma long
        reach = k * np.sqrt((axes ** 2).sum(axis=2))  # [N, 3] the drawn ellipsoid's half-width per axis
    reach = np.where(k > 0, reach, 0.0)
    return np.stack([(means - reach).min(axis=0), (means + reach).max(axis=0)])


def write_splat_prim(field: Any, g: Gaussians, time: float | None = None) -> None:
    """Set a ParticleField3DGaussianSplat schema object's attributes from `g` (in the prim's own
    space), at time code `time` (None: the default value, for Gaussians that do not change)."""
    Gf, Sdf, Usd, UsdGeom, UsdVol, Vt = _pxr()
    tc = Usd.TimeCode.Default() if time is None else Usd.TimeCode(time)
    g = g.detach().to("cpu", torch.float64)
    n, d = len(g), g.sh_degree
    q = g.quats.numpy()
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), np.array([1.0, 0.0, 0.0, 0.0]))
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    means = f32(g.means.numpy())
    field.CreatePositionsAttr().Set(Vt.Vec3fArray.FromNumpy(means), tc)
    field.CreateOrientationsAttr().Set(Vt.QuatfArray.FromNumpy(f32(q[:, [1, 2, 3, 0]])), tc)
    with np.errstate(over="ignore"):
        field.CreateScalesAttr().Set(Vt.Vec3fArray.FromNumpy(f32(np.exp(g.scales.numpy()))), tc)
        field.CreateOpacitiesAttr().Set(Vt.FloatArray.FromNumpy(f32(opacity_sigmoid(g.opacities.numpy()))), tc)
    field.CreateRadianceSphericalHarmonicsDegreeAttr().Set(d)
    coeffs = field.CreateRadianceSphericalHarmonicsCoefficientsAttr()
    coeffs.Set(Vt.Vec3fArray.FromNumpy(f32(g.sh.numpy().reshape(n * (d + 1) ** 2, 3))), tc)
    # Centres alone would leave out the Gaussians' own size: a viewer frames and culls by extent.
    field.CreateExtentAttr().Set(Vt.Vec3fArray.FromNumpy(f32(drawn_extent(g))), tc)
    field.CreateProjectionModeHintAttr().Set("perspective")
    field.CreateSortingModeHintAttr().Set("zDepth")
    prim = field.GetPrim()
    if not prim.HasAPI(Usd.ColorSpaceAPI):
        Usd.ColorSpaceAPI.Apply(prim).CreateColorSpaceNameAttr().Set(Gf.ColorSpaceNames.SRGBRec709)


def _array(attrs, tc, width: int, n: int | None):
    """The first authored attribute's value at tc as float64 [M, width] (None if none is)."""
    for attr in attrs:
        if attr and attr.HasAuthoredValue():
            value = attr.Get(tc)
            if value is None:
                continue
            a = np.asarray(value, dtype=np.float64).reshape(-1, width) if len(value) else np.zeros((0, width))
            return a if n is None else a[:n]
    return None


def gaussians_of_prim(prim: Any, time: float | None = None, where: str = "") -> Gaussians:
    """The Gaussians [N] of a ParticleField3DGaussianSplat prim at time code `time` (None: the
    earliest sample, or the default value), in the prim's own space (float32)."""
    _, _, Usd, _, UsdVol, _ = _pxr()
    field = UsdVol.ParticleField3DGaussianSplat(prim)
    tc = _time(time)
    label = where or str(prim.GetPath())
    means = _array([field.GetPositionsAttr(), field.GetPositionshAttr()], tc, 3, None)
    if means is None:
        means = np.zeros((0, 3))
    n = len(means)
    if not np.all(np.isfinite(means)):
        raise SplatfilmError(f"{label}: positions hold non-finite values (NaN/inf)")

    def per_particle(attrs, width, default):
        a = _array(attrs, tc, width, n)
        if a is None or len(a) < n:  # the schema: too short is ignored
            return np.tile(np.asarray(default, dtype=np.float64), (n, 1))
        return a

    q_ijkr = per_particle([field.GetOrientationsAttr(), field.GetOrientationshAttr()], 4, [0.0, 0.0, 0.0, 1.0])
    quats = q_ijkr[:, [3, 0, 1, 2]]
    quats[~np.any(quats != 0, axis=1)] = (1.0, 0.0, 0.0, 0.0)
    lin = per_particle([field.GetScalesAttr(), field.GetScaleshAttr()], 3, [1.0, 1.0, 1.0])
    scales = np.log(np.maximum(np.abs(lin), _MIN_SCALE))
    alpha = per_particle([field.GetOpacitiesAttr(), field.GetOpacitieshAttr()], 1, [1.0])[:, 0]
    opacities = opacity_logit(alpha, _OPACITY_EPS)
    degree = field.GetRadianceSphericalHarmonicsDegreeAttr().Get()
    degree = 3 if degree is None else int(degree)
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise SplatfilmError(f"{label}: radiance:sphericalHarmonicsDegree {degree} is outside 0-{MAX_SH_DEGREE} "
                             "(the SH degrees splatfilm renders and rotates)")
    per = (degree + 1) ** 2
    coeffs = _array([field.GetRadianceSphericalHarmonicsCoefficientsAttr(),
                     field.GetRadianceSphericalHarmonicsCoefficientshAttr()], tc, 3, None)
    if coeffs is None or len(coeffs) < n * per:
        sh = np.zeros((n, 1, 3))  # the schema's default: a DC term of grey 0.5, degree 0
    else:
        sh = coeffs[: n * per].reshape(n, per, 3)
    for name, arr in (("orientations", quats), ("scales", lin), ("opacities", alpha), ("SH coefficients", sh)):
        if not np.all(np.isfinite(arr)):
            raise SplatfilmError(f"{label}: {name} hold non-finite values (NaN/inf)")
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
    return Gaussians(means=t(means), quats=t(quats), scales=t(scales), opacities=t(opacities),
                     sh0=t(sh[:, :1]), shN=t(sh[:, 1:]))


def _pick_prim(stage, path: Path, prim: str | None):
    prims = splat_prims(stage)
    if prim is not None:
        found = stage.GetPrimAtPath(prim) if prim.startswith("/") else None
        if not found or found not in prims:
            known = ", ".join(str(p.GetPath()) for p in prims) or "none"
            raise SplatfilmError(f"{path}: no Gaussian splat prim {prim!r} (splat prims: {known})")
        return found
    if not prims:
        raise SplatfilmError(f"{path}: no Gaussian splats in this USD file (no UsdVol.ParticleField3DGaussianSplat prim)")
    if len(prims) > 1:
        names = ", ".join(str(p.GetPath()) for p in prims[:6]) + (", ..." if len(prims) > 6 else "")
        raise SplatfilmError(f"{path}: holds {len(prims)} Gaussian splat prims ({names}); name one "
                             "(splatfilm import FILE --prim PATH)")
    return prims[0]


def stage_to_world(stage: Any) -> Similarity:
    """The similarity from the stage's space into splatfilm's world (Z up, metres): a Y-up stage
    turns +y into +z, and metersPerUnit scales."""
    _, _, _, UsdGeom, _, _ = _pxr()
    R = np.eye(3)
    if UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y:
        R = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    return Similarity(R, np.zeros(3), float(UsdGeom.GetStageMetersPerUnit(stage)))


def _prim_to_world(prim, stage, tc, label: str) -> Similarity:
    _, _, _, UsdGeom, _, _ = _pxr()
    m = np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(tc), dtype=np.float64).T  # row-vector -> column
    try:
        local = Similarity.from_matrix(m)
    except SplatfilmError as e:
        raise SplatfilmError(f"{label}: its transform is not a similarity ({e})") from None
    return stage_to_world(stage) @ local


def read_usd_splats(path: str | os.PathLike, prim: str | None = None, time: float | None = None,
                    world: bool = False) -> Gaussians:
    """The Gaussians of one splat prim of a USD file (the only one, or `prim`, its path).

    time: a time code (None: the earliest sample). world: False keeps the prim's own space
    (its positions as stored); True places them by the prim's transform at that time and turns
    the stage Z up in metres (`stage_to_world`)."""
    path = Path(path)
    stage = open_usd_stage(path)
    p = _pick_prim(stage, path, prim)
    label = f"{path}: {p.GetPath()}"
    g = gaussians_of_prim(p, time, label)
    if world:
        g = _prim_to_world(p, stage, _time(time), label).transform_gaussians(g)
    return g


def read_usd_world_splats(path: str | os.PathLike, time: float | None = None) -> Gaussians:
    """Every visible splat prim of a USD file at time code `time`, placed in splatfilm's world
    (Z up, metres) and concatenated in traversal order: the stage's Gaussians as one set."""
    _, _, _, UsdGeom, _, _ = _pxr()
    path = Path(path)
    stage = open_usd_stage(path)
    prims = splat_prims(stage)
    if not prims:
        raise SplatfilmError(f"{path}: no Gaussian splats in this USD file (no UsdVol.ParticleField3DGaussianSplat prim)")
    tc = _time(time)
    parts = []
    for p in prims:
        if UsdGeom.Imageable(p).ComputeVisibility(tc) == UsdGeom.Tokens.invisible:
            continue
        label = f"{path}: {p.GetPath()}"
        g = gaussians_of_prim(p, time, label)
        if len(g):
            parts.append(_prim_to_world(p, stage, tc, label).transform_gaussians(g))
    return Gaussians.concat(parts) if parts else Gaussians.empty()


def write_usd_splats(path: str | os.PathLike, g: Gaussians, prim: str = "/Gaussians") -> None:
    """Write `g` as a one-prim USD file (atomically): `prim` is the default prim, in the
    Gaussians' own frame, on a stage marked Z up with metersPerUnit 1 (splatfilm's convention;
    the asset's sidecar says more about its frame)."""
    _, Sdf, Usd, UsdGeom, UsdVol, _ = _pxr()
    path = Path(path)
    bad = sum(int(np.count_nonzero(~np.isfinite(t.detach().cpu().numpy())))
              for t in (g.means, g.quats, g.scales, g.opacities, g.sh0, g.shN))
    if bad:
        raise SplatfilmError(f"{path}: cannot write Gaussians with {bad} non-finite values (NaN/inf)")
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    field = UsdVol.ParticleField3DGaussianSplat.Define(stage, Sdf.Path(prim))
    stage.SetDefaultPrim(field.GetPrim())
    write_splat_prim(field, g)
    export_usd_stage(stage, path)

