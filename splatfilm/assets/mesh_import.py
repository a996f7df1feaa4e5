"""Characters and props from meshes: glTF/GLB, OBJ, PLY or STL in, a Gaussian asset out.

The surface is covered by flat Gaussians: samples spread evenly by area (stratified: each
face gets its share of a systematic sample, placed inside it by a low-discrepancy sequence),
each a disc in its face's plane (thin along the face normal, tangent size from the local
sample spacing), nearly opaque, coloured from the texture at its UV (bilinear, repeating;
for glTF the UV set the material names, through its KHR_texture_transform),
the vertex colours, or the material's base colour. Unlit: the asset looks like the mesh's
albedo, as a flat-shaded viewer shows it.

The asset keeps the mesh's own frame (what its file stores); its sidecar gives the
similarity into the canonical local frame (base on z = 0, centred on the z axis, up +z,
front facing -y). glTF is Y-up with the front facing +z (its specification); OBJ is taken as
Y-up too (Blender's default OBJ export), PLY and STL as Z-up with the front facing -y, unless
told otherwise (--up, --front).

Colour spaces: textures are sRGB; in glTF, vertex colours (COLOR_0) and baseColorFactor are
linear, so they are combined with the texture in linear light and the result encoded as
sRGB again, as glTF viewers do. OBJ/PLY colours are taken as the display values they hold.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from splatfilm.version import __version__
from splatfilm.assets.sidecar import Sidecar, check_sidecar_free, sidecar_path
from splatfilm.errors import SplatfilmError
from splatfilm.assets.gltf_check import check_gltf, glb_bytes, read_gltf_json
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import MAX_SH_DEGREE
from splatfilm.io.atomic import check_output_file, read_input
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_EXTENSIONS, GAUSSIAN_FILE_TYPES, save_gaussians
from splatfilm.io.images import linear_to_srgb, srgb_to_linear
from splatfilm.io.paths import recorded_path
from splatfilm.io.rig_files import RIG_FORMAT_VERSION, remove_rig, rig_path, save_rig
from splatfilm.assets.rig import MAX_INFLUENCES, GltfReader, GltfRig, interpolate_weights, read_gltf_rig
from splatfilm.scene.skeleton import Rig
from splatfilm.scene.transforms import rotmat_to_quat

__all__ = ["MESH_EXTENSIONS", "MeshAsset", "RiggedSurface", "canonical_from_vertices", "import_mesh",
           "mesh_to_gaussians", "parse_axis", "rigged_surface"]

MESH_EXTENSIONS = (".glb", ".gltf", ".obj", ".ply", ".stl")
DEFAULT_COUNT = 100_000
# Sampling holds a few hundred bytes per Gaussian at once: 20 million is about 10 GB.
MAX_COUNT = 20_000_000
OPACITY = 0.99
# Tangent standard deviation as a fraction of the local sample spacing (mean distance to the
# 3 nearest samples): large enough that neighbours overlap into an opaque surface, small
# enough to keep texture detail (checker test: PSNR against ray casting; 0.5 left a surface
# 85-95% opaque, so the far side of a closed mesh showed through).
SPACING_TO_SIGMA = 0.6
# Thickness along the normal as a fraction of the tangent size: flat, but not degenerate.
THIN = 0.02
GREY = np.array([0.7, 0.7, 0.7])  # meshes without any colour (STL)
# A glTF figure taller than this (metres, by the format's rule) was most likely modelled in
# centimetres (Khronos' Fox stands 79 "metres" high): import-mesh says so.
TALL_METRES = 20.0

_AXES = {"x": 0, "y": 1, "z": 2}


def parse_axis(text: str, what: str = "axis") -> np.ndarray:
    """A signed axis name ('z', '+z', '-y', ...) as a unit vector [3]."""
    t = text.strip().lower()
    sign = -1.0 if t.startswith("-") else 1.0
    name = t.lstrip("+-")
    if name not in _AXES or len(t) - len(name) > 1:
        raise SplatfilmError(f"{what} must be one of x, y, z, -x, -y, -z; got {text!r}")
    v = np.zeros(3)
    v[_AXES[name]] = sign
    return v


# ---- loading ------------------------------------------------------------------------------


@dataclass
class _Part:
    """One mesh of a file, in the file's root frame: vertices [V,3], faces [F,3] and the
    trimesh object (for its visual); for a rigged glTF also the skin per vertex: rig joints
    [V,K] and weights [V,K]."""

    vertices: np.ndarray
    faces: np.ndarray
    mesh: object
    joints: np.ndarray | None = None
    weights: np.ndarray | None = None


@contextmanager
def _trimesh_failures(records: list[str]):
    """Collect what trimesh's loaders log about images and materials they could not load
    (they log at debug level and go on without them)."""
    logger = logging.getLogger("trimesh")

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if any(w in msg.lower() for w in ("image", "texture", "material")):
                cause = f": {record.exc_info[1]!r}" if record.exc_info and record.exc_info[1] else ""
                records.append(msg + cause)

    handler, old_level = Catch(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


class _UriResolver:
    """Files a glTF names, found beside it: its `uri`s are URI-encoded (Blender writes
    `my%20char.bin` for "my char.bin"), which trimesh's own resolver looks up as written."""

    def __init__(self, folder: Path):
        from trimesh.resolvers import FilePathResolver

        self.files = FilePathResolver(folder)

    def get(self, name: str) -> bytes:
        from urllib.parse import unquote

        try:
            return self.files.get(name)
        except (FileNotFoundError, OSError):
            return self.files.get(unquote(name))

    __getitem__ = get

    def __getattr__(self, attr):  # keys(), write(), namespaced(), ... as trimesh's resolver
        return getattr(self.files, attr)


@dataclass
class _GltfSource:
    """A .glb/.gltf read once for every reader of an import (the container check, the rig, the
    UV baking): its bytes, its JSON document and a .glb's BIN chunk (None for a .gltf)."""

    data: bytes
    doc: dict
    binary: bytes | None


def _read_gltf_source(path: Path) -> _GltfSource:
    """The glTF at `path` read once; SplatfilmError naming it when it cannot be read or its
    container or JSON is damaged."""
    data = read_input(path, "glTF file")
    return _GltfSource(data, *read_gltf_json(path, data))


def _placed_geometries(scene) -> list:
    """Every geometry instance of a trimesh scene, placed by its node's transform. As
    `scene.dump()`, but keeping glTF vertex attributes (COLOR_0), which a mesh copy drops."""
    out = []
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        source = scene.geometry[name]
        mesh = source.copy()
        for key, values in (getattr(getattr(source, "visual", None), "vertex_attributes", None) or {}).items():
            mesh.visual.vertex_attributes[key] = np.asarray(values).copy()
        mesh.apply_transform(transform)
        out.append(mesh)
    return out


def _texture_uv_matrix(info: dict, where: str) -> np.ndarray | None:
    """KHR_texture_transform's matrix [3,3] of a glTF texture info (offset * rotation * scale,
    on (u, v, 1) with v down, as its specification writes it), or None without one; `where`
    names the texture info in errors."""
    ext = (info.get("extensions") or {}).get("KHR_texture_transform")
    if not isinstance(ext, dict):
        return None
    try:
        ox, oy = (float(x) for x in ext.get("offset", [0.0, 0.0]))
        sx, sy = (float(x) for x in ext.get("scale", [1.0, 1.0]))
        r = float(ext.get("rotation", 0.0))
    except (TypeError, ValueError):
        raise SplatfilmError(f"{where}.extensions.KHR_texture_transform: offset and scale must be 2 numbers and "
                             f"rotation a number, got {json.dumps(ext)}") from None
    c, s = math.cos(r), math.sin(r)
    return (np.array([[1.0, 0.0, ox], [0.0, 1.0, oy], [0.0, 0.0, 1.0]])
            @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([sx, sy, 1.0]))


def _baked_texture_coordinates(path: Path, source: _GltfSource) -> bytes | None:
    """The glTF with the UVs its base colour textures really use put in TEXCOORD_0 (a new
    accessor in an added data-URI buffer), or None when it needs none. trimesh reads
    TEXCOORD_0 alone and ignores KHR_texture_transform, so a texture read through another
    set (`texCoord`) or moved, turned or tiled by the extension would be sampled in the wrong
    place and the asset coloured wrongly without a word."""
    doc = source.doc
    materials = doc.get("materials") or []
    uses: dict[int, tuple[int, np.ndarray | None]] = {}  # material -> (UV set, transform)
    for m, material in enumerate(materials):
        info = ((material or {}).get("pbrMetallicRoughness") or {}).get("baseColorTexture")
        if not isinstance(info, dict):
            continue
        matrix = _texture_uv_matrix(info, f"{path}: materials[{m}].pbrMetallicRoughness.baseColorTexture")
        ext = (info.get("extensions") or {}).get("KHR_texture_transform") or {}
        uv_set = ext.get("texCoord", info.get("texCoord", 0))
        if matrix is not None or uv_set != 0:
            uses[m] = (uv_set, matrix)
    if not uses:
        return None
    doc = copy.deepcopy(doc)  # gains the baked accessors; the source stays as the file has it
    reader = GltfReader(path, source.data)
    blob, baked = bytearray(), {}
    for i, mesh in enumerate(doc.get("meshes") or []):
        for k, prim in enumerate(mesh.get("primitives") or []):
            if prim.get("material") not in uses:
                continue
            uv_set, matrix = uses[prim["material"]]
            attrs = prim.setdefault("attributes", {})
            name = f"TEXCOORD_{uv_set}"
            if name not in attrs:
                raise SplatfilmError(f"{path}: meshes[{i}].primitives[{k}]: its material's base colour texture reads "
                                     f"{name}, which the primitive does not have")
            key = (attrs[name], uv_set, None if matrix is None else matrix.tobytes())
            if key not in baked:
                uv = reader.accessor(attrs[name], f"meshes[{i}].primitives[{k}].attributes.{name}", ("VEC2",),
                                     (5126, 5121, 5123))
                if matrix is not None:
                    uv = uv @ matrix[:2, :2].T + matrix[:2, 2]
                doc.setdefault("bufferViews", []).append({"buffer": len(doc.get("buffers") or []),
                                                          "byteOffset": len(blob), "byteLength": uv.size * 4})
                doc.setdefault("accessors", []).append({"bufferView": len(doc["bufferViews"]) - 1,
                                                        "componentType": 5126, "count": len(uv), "type": "VEC2"})
                blob += uv.astype("<f4").tobytes()
                baked[key] = len(doc["accessors"]) - 1
            attrs["TEXCOORD_0"] = baked[key]
    if not baked:
        return None
    doc.setdefault("buffers", []).append({"byteLength": len(blob), "uri": "data:application/octet-stream;base64,"
                                          + base64.b64encode(bytes(blob)).decode("ascii")})
    return glb_bytes(doc, source.binary) if path.suffix.lower() == ".glb" else json.dumps(doc).encode("utf-8")


def _load_parts(path: Path, source: _GltfSource | None = None) -> list[_Part]:
    """The triangle meshes of a mesh file, in its root frame (scene node transforms applied).
    source: a glTF's bytes and JSON, where already read."""
    import trimesh

    if path.suffix.lower() not in MESH_EXTENSIONS:
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        raise SplatfilmError(f"{path}: unsupported mesh file type ({shown}); use .glb, .gltf, .obj, .ply or .stl")
    if not path.exists():
        raise SplatfilmError(f"{path}: no such file")
    if path.is_dir():
        raise SplatfilmError(f"{path}: is a folder, not a mesh file")
    if path.stat().st_size == 0:
        raise SplatfilmError(f"{path}: the file is empty")
    baked = None
    if path.suffix.lower() in (".glb", ".gltf"):
        source = source or _read_gltf_source(path)
        check_gltf(path, (source.doc, source.binary))
        baked = _baked_texture_coordinates(path, source)
    failures: list[str] = []
    try:
        with _trimesh_failures(failures):
            source = path if baked is None else io.BytesIO(baked)
            file_type = None if baked is None else ("glb" if baked[:4] == b"glTF" else "gltf")
            scene = trimesh.load(source, file_type=file_type, force="scene", process=False,
                                 resolver=_UriResolver(path.parent))
            geometries = _placed_geometries(scene)
    except SplatfilmError:
        raise
    except Exception as e:  # trimesh raises anything from KeyError to struct.error on bad files
        if failures or "image" in str(e).lower():  # PIL decoding a texture, e.g. a truncated PNG
            raise SplatfilmError(f"{path}: a texture or material failed to load ({type(e).__name__}: {e})") from None
        raise SplatfilmError(f"{path}: cannot read the mesh: a damaged or invalid {path.suffix.lower()[1:].upper()} "
                             f"file ({type(e).__name__}: {e})") from None
    if failures:
        raise SplatfilmError(f"{path}: a texture or material failed to load ({failures[0]})")
    parts = []
    for g in geometries:
        faces = np.asarray(getattr(g, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
        vertices = np.asarray(g.vertices)
        if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise SplatfilmError(f"{path}: a face refers to vertex {int(faces.max())}, but the mesh has only "
                                 f"{len(vertices)} vertices (a damaged file)")
        if len(faces):
            parts.append(_Part(np.asarray(g.vertices, dtype=np.float64), faces, g))
    if not parts:
        raise SplatfilmError(f"{path}: the file has no triangle faces (a point cloud, lines or "
                             "a Gaussian splat file?); import-mesh needs a surface")
    return parts


def _rigged_parts(parts: list[_Part], rigged: GltfRig, path: Path) -> list[_Part]:
    """The parts of a skinned glTF at its rest pose with their skin weights: each trimesh
    part is matched to the primitive instance whose node-placed vertices it holds."""
    free = list(range(len(rigged.instances)))
    out = []
    for part in parts:
        size = max(1.0, float(np.abs(part.vertices).max(initial=0.0)))
        match = next((i for i in free if rigged.instances[i].static.shape == part.vertices.shape
                      and np.allclose(rigged.instances[i].static, part.vertices, rtol=0, atol=1e-5 * size)), None)
        if match is None:
            raise SplatfilmError(f"{path}: a mesh of the file could not be matched to its glTF primitive "
                                 "(extensions that change geometry, such as Draco, are not supported for rigs)")
        free.remove(match)
        inst = rigged.instances[match]
        out.append(_Part(inst.rest, part.faces, part.mesh, inst.joints, inst.weights))
    return out


@dataclass
class RiggedSurface:
    """A skinned glTF's triangles at the rest pose, in the glTF scene frame, with their skin:
    vertices [V,3], faces [F,3], rig joints [V,K] and weights [V,K] per vertex (rows sum to
    1; unused slots weight 0), and the skeleton and clips read from the file."""

    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray
    weights: np.ndarray
    rig: GltfRig


def rigged_surface(path: str | Path) -> RiggedSurface:
    """The skinned surface of a .glb/.gltf at its rest pose (what import-mesh samples), or a
    SplatfilmError when the file is not glTF or has no skin."""
    path = Path(path)
    if path.suffix.lower() not in (".glb", ".gltf"):
        raise SplatfilmError(f"{path}: a skeleton comes from a skinned glTF (.glb or .gltf)")
    if not path.is_file():
        raise SplatfilmError(f"{path}: no such file")
    # A damaged file is named as damaged, not as a glTF without skins (what its unreadable JSON
    # would otherwise look like).
    source = _read_gltf_source(path)
    check_gltf(path, (source.doc, source.binary))
    rigged = read_gltf_rig(path, source.data) if source.doc.get("skins") else None
    if rigged is None:
        raise SplatfilmError(f"{path}: has no skin (the glTF declares no skins): nothing to bind to")
    parts = _rigged_parts(_load_parts(path, source), rigged, path)
    k = max(p.joints.shape[1] for p in parts)

    def pad(a: np.ndarray) -> np.ndarray:
        return np.pad(a, ((0, 0), (0, k - a.shape[1])))

    offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
    return RiggedSurface(np.concatenate([p.vertices for p in parts]),
                         np.concatenate([p.faces + o for p, o in zip(parts, offsets)]),
                         np.concatenate([pad(p.joints) for p in parts]), np.concatenate([pad(p.weights) for p in parts]),
                         rigged)


# ---- sampling -----------------------------------------------------------------------------


def _stratified_samples(areas: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` samples spread evenly over faces of the given areas [F]: face indices [count]
    and barycentric coordinates [count,3].

    Systematic sampling along the cumulative area (one random offset) gives every face its
    expected share within one sample, so there are no clumps or holes from chance; inside a
    face the samples follow the R2 low-discrepancy sequence (random shift per face), folded
    into the triangle."""
    cum = np.cumsum(areas)
    pos = (np.arange(count) + rng.random()) * (cum[-1] / count)
    face = np.minimum(np.searchsorted(cum, pos, side="right"), len(areas) - 1)
    rank = np.arange(count) - np.searchsorted(face, face, side="left")  # face is sorted
    g = 1.32471795724474602596  # plastic number: R2 sequence (Roberts 2018)
    step = np.array([1.0 / g, 1.0 / g**2])
    shift = rng.random((len(areas), 2))
    uv = (shift[face] + (rank[:, None] + 1) * step) % 1.0
    fold = uv.sum(axis=1) > 1.0
    uv[fold] = 1.0 - uv[fold]
    bary = np.column_stack([1.0 - uv.sum(axis=1), uv[:, 0], uv[:, 1]])
    return face, bary


def _local_spacing(points: np.ndarray, nominal: float) -> np.ndarray:
    """Mean distance [N] from each point to its 3 nearest neighbours, kept within a factor 4
    of the nominal spacing (so duplicates and lone samples do not make dots or blobs)."""
    from scipy.spatial import cKDTree

    if len(points) < 4:
        return np.full(len(points), nominal)
    d, _ = cKDTree(points).query(points, k=4)
    return np.clip(d[:, 1:].mean(axis=1), nominal / 4, nominal * 4)


def _face_frames(tris: np.ndarray) -> np.ndarray:
    """Per face a rotation [F,3,3] whose columns are two tangents and the unit normal
    (right-handed, normal by the counter-clockwise winding)."""
    e1, e2 = tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
    n = np.cross(e1, e2)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    t1 = e1 / np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-300)
    t2 = np.cross(n, t1)
    return np.stack([t1, t2, n], axis=2)


# ---- colour -------------------------------------------------------------------------------


def sample_texture(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup with repeat wrapping. image [H,W,C] floats (row 0 at the top);
    uv [M,2] with v up (trimesh's convention: v = 0 is the bottom row); returns [M,C].
    Texel (i, j) has its centre at u = (i + 0.5) / W, v = 1 - (j + 0.5) / H."""
    h, w = image.shape[:2]
    x = uv[:, 0] * w - 0.5
    y = (1.0 - uv[:, 1]) * h - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    xa, xb, ya, yb = x0 % w, (x0 + 1) % w, y0 % h, (y0 + 1) % h
    top = image[ya, xa] * (1 - fx) + image[ya, xb] * fx
    bottom = image[yb, xa] * (1 - fx) + image[yb, xb] * fx
    return top * (1 - fy) + bottom * fy


def _image_array(image, path: Path, cache: dict) -> np.ndarray:
    """A PIL image as float RGBA [H,W,4] in [0,1] (decoded once per image; alpha 1 where the
    image has none)."""
    key = id(image)
    if key not in cache:
        try:
            cache[key] = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
        except Exception as e:  # truncated or corrupt pixel data only shows when decoded
            raise SplatfilmError(f"{path}: a texture or material failed to load ({type(e).__name__}: {e})") from None
    return cache[key]


def _unit_rgb(values) -> np.ndarray:
    """trimesh colours [..., 3 or 4] (uint8 0-255, or floats 0-1) as RGB floats in [0,1]."""
    a = np.asarray(values)
    rgb = a[..., :3].astype(np.float64)
    return rgb / 255.0 if a.dtype.kind in "iu" else rgb


def _part_colours(part: _Part, face: np.ndarray, bary: np.ndarray, gltf: bool, path: Path,
                  cache: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """sRGB colours [M,3] of samples on one part, their coverage [M] in [0,1], and what the
    colours came from ('texture', 'vertex', 'face', 'material' or 'none'). Coverage is a glTF
    material's alpha (baseColorFactor's times the texture's) where its alphaMode uses it:
    BLEND as it is, MASK as 0 or 1 by alphaCutoff (cut-out leaves, hair cards); else 1."""
    from trimesh.visual.material import PBRMaterial
    from trimesh.visual.texture import TextureVisuals

    vis = part.mesh.visual
    corners = part.faces[face]  # [M,3] vertex indices

    def per_vertex(values: np.ndarray) -> np.ndarray:
        return np.einsum("mk,mkc->mc", bary, values[corners])

    if isinstance(vis, TextureVisuals):
        mat = vis.material
        if isinstance(mat, PBRMaterial):
            image, factor = mat.baseColorTexture, mat.baseColorFactor
        else:
            # OBJ: a diffuse map replaces Kd (as Blender's importer does), it does not tint it.
            image, factor = getattr(mat, "image", None), None
            if image is None:
                factor = getattr(mat, "diffuse", None)
        raw_factor = None if factor is None else np.asarray(factor).reshape(-1)
        factor = np.ones(3) if factor is None else _unit_rgb(raw_factor)
        texture = None
        if image is not None and vis.uv is not None and len(vis.uv) == len(part.vertices):
            texture = sample_texture(_image_array(image, path, cache), per_vertex(np.asarray(vis.uv, np.float64)))
        coverage = np.ones(len(face))
        mode = getattr(mat, "alphaMode", None) if isinstance(mat, PBRMaterial) else None
        if gltf and mode in ("MASK", "BLEND"):
            if raw_factor is not None and len(raw_factor) == 4:
                coverage = coverage * (raw_factor[3] / 255.0 if raw_factor.dtype.kind in "iu" else raw_factor[3])
            if texture is not None:
                coverage = coverage * texture[:, 3]
            if mode == "MASK":
                cutoff = getattr(mat, "alphaCutoff", None)
                coverage = (coverage >= (0.5 if cutoff is None else float(cutoff))).astype(np.float64)
        texture = None if texture is None else texture[:, :3]
        vc = vis.vertex_attributes.get("color") if hasattr(vis, "vertex_attributes") else None
        if gltf:
            lin = np.broadcast_to(factor, (len(face), 3)).copy()
            if texture is not None:
                # glTF's base colour textures are sRGB-encoded colours in [0,1]; the clip takes off
                # the bilinear lookup's last-bit overshoot.
                lin *= srgb_to_linear(np.clip(texture, 0.0, 1.0))
            if vc is not None and len(vc) == len(part.vertices):
                lin *= per_vertex(_unit_rgb(vc))
            return linear_to_srgb(np.clip(lin, 0.0, 1.0)), coverage, "texture" if texture is not None else "material"
        if texture is not None:
            return texture, coverage, "texture"
        return np.broadcast_to(factor, (len(face), 3)).copy(), coverage, "material"

    kind = getattr(vis, "kind", None)
    if kind == "vertex":
        rgb = per_vertex(_unit_rgb(vis.vertex_colors))
    elif kind == "face":
        rgb = _unit_rgb(vis.face_colors)[face]
    else:
        return np.broadcast_to(GREY, (len(face), 3)).copy(), np.ones(len(face)), "none"
    # glTF colours are linear: interpolated above in linear light, encoded now.
    return (linear_to_srgb(np.clip(rgb, 0.0, 1.0)) if gltf else rgb), np.ones(len(face)), kind


# ---- the asset ----------------------------------------------------------------------------


@dataclass
class MeshAsset:
    """Gaussians sampled from a mesh, in the mesh's own frame, with what the sidecar records:
    vertices [V,3] (all parts, for bounds), area (square mesh units), colour sources."""

    gaussians: Gaussians
    vertices: np.ndarray
    faces: int
    area: float
    colour_sources: list[str]
    rig: Rig | None = None
    rig_notes: list[str] = field(default_factory=list)


def mesh_to_gaussians(path: str | Path, count: int | None = None, density: float | None = None,
                      sh_degree: int = 0, seed: int = 0) -> MeshAsset:
    """Sample a mesh file's surface into flat Gaussians (float32), in the file's frame.

    count: number of Gaussians; or density: Gaussians per square mesh unit (per m^2 for a
    mesh in metres); default DEFAULT_COUNT. sh_degree: SH bands stored (higher bands zero).
    A skinned glTF is sampled at its rest pose and the asset carries its rig: each
    Gaussian takes its triangle's skin weights at its barycentric coordinates (the 4
    heaviest joints, renormalised)."""
    path = Path(path)
    if count is not None and density is not None:
        raise SplatfilmError(f"{path}: give a count or a density of Gaussians, not both")
    if not 0 <= sh_degree <= MAX_SH_DEGREE:
        raise SplatfilmError(f"{path}: sh_degree must be 0-{MAX_SH_DEGREE}, got {sh_degree}")
    gltf = path.suffix.lower() in (".glb", ".gltf")
    # The rig first: its errors name the glTF field, where trimesh's would not.
    # An empty file is left to _load_parts, which calls it empty rather than a broken container.
    source = _read_gltf_source(path) if gltf and path.is_file() and path.stat().st_size else None
    rigged = read_gltf_rig(path, source.data) if source is not None and source.doc.get("skins") else None
    parts = _load_parts(path, source)
    if rigged is not None:
        parts = _rigged_parts(parts, rigged, path)
    tris = np.concatenate([p.vertices[p.faces] for p in parts])  # [F,3,3]
    owner = np.concatenate([np.full(len(p.faces), i) for i, p in enumerate(parts)])
    areas = 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    areas = np.where(np.isfinite(areas), areas, 0.0)
    total = float(areas.sum())
    if not total > 0:
        raise SplatfilmError(f"{path}: every face has zero area; nothing to cover")
    if density is not None:
        if not (density > 0 and math.isfinite(density)):
            raise SplatfilmError(f"{path}: density must be > 0 Gaussians per square unit, got {density}")
        count = max(1, round(density * total))
    count = DEFAULT_COUNT if count is None else count
    if count < 1:
        raise SplatfilmError(f"{path}: count must be at least 1, got {count}")
    if count > MAX_COUNT:
        raise SplatfilmError(f"{path}: {count} Gaussians is more than import-mesh makes ({MAX_COUNT}); "
                             "ask for fewer (a lower count or density)")

    rng = np.random.default_rng(seed)
    face, bary = _stratified_samples(areas, count, rng)
    points = np.einsum("nk,nkc->nc", bary, tris[face])
    spacing = _local_spacing(points, math.sqrt(total / count))
    sigma = SPACING_TO_SIGMA * spacing
    frames = _face_frames(tris)[face]

    colours, coverage = np.empty((count, 3)), np.ones(count)
    sources = []
    offsets = np.cumsum([0] + [len(p.faces) for p in parts])
    cache: dict = {}
    for i, part in enumerate(parts):
        sel = np.nonzero(owner[face] == i)[0]
        if len(sel):
            colours[sel], coverage[sel], src = _part_colours(part, face[sel] - offsets[i], bary[sel], gltf, path, cache)
            sources.append(src)
    # Cut-out and see-through glTF materials: no Gaussians where the surface is not there.
    keep = coverage > 0
    if not keep.any():
        raise SplatfilmError(f"{path}: every material is fully transparent (alpha 0); nothing to cover")
    if not keep.all():
        face, bary, points, sigma, frames = face[keep], bary[keep], points[keep], sigma[keep], frames[keep]
        colours, coverage, count = colours[keep], coverage[keep], int(keep.sum())

    f32 = torch.float32
    quats = rotmat_to_quat(torch.from_numpy(frames)).to(f32)
    scales = torch.from_numpy(np.stack([sigma, sigma, THIN * sigma], axis=1)).to(f32)
    g = Gaussians.from_activated(
        means=torch.from_numpy(points).to(f32), quats=quats, scales=scales,
        opacities=torch.from_numpy(OPACITY * coverage).to(f32),
        colors=torch.from_numpy(np.clip(colours, 0.0, 1.0)).to(f32),
    ).with_sh_degree(sh_degree)
    vertices = np.concatenate([p.vertices[np.unique(p.faces)] for p in parts])  # the ones faces use
    rig = None
    if rigged is not None:
        joints, weights = _sample_skin(parts, owner, offsets, face, bary)
        rig = Rig(rigged.joint_names, rigged.parents, rigged.rest, rigged.inverse_binds, rigged.clips, joints, weights,
                  source={"file": path.name, "nodes": rigged.nodes}, in_skin=rigged.in_skin)
    return MeshAsset(g, vertices, len(tris), total, sorted(set(sources)), rig, rigged.notes if rigged else [])


def _sample_skin(parts: list[_Part], owner: np.ndarray, offsets: np.ndarray, face: np.ndarray,
                 bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skin of each sample: its triangle's corner weights mixed by its barycentric
    coordinates, the 4 heaviest joints renormalised. Returns joints [M,4], weights [M,4]."""
    joints = np.zeros((len(face), MAX_INFLUENCES), dtype=np.int32)
    weights = np.zeros((len(face), MAX_INFLUENCES), dtype=np.float32)
    for i, part in enumerate(parts):
        sel = np.nonzero(owner[face] == i)[0]
        if len(sel):
            corners = part.faces[face[sel] - offsets[i]]  # [M,3] vertex indices
            joints[sel], weights[sel] = interpolate_weights(part.joints[corners], part.weights[corners], bary[sel])
    return joints, weights


def canonical_from_vertices(vertices: np.ndarray, up: np.ndarray, front: np.ndarray) -> dict:
    """Similarity from a mesh's own frame into the canonical local frame: `up` [3] turns to
    +z, `front` [3] (perpendicular to up) to -y, then the bounding box of `vertices` [V,3]
    moves to sit on z = 0 centred on the z axis. Returns {"rotation", "translation", "scale"}
    for x -> s R x + t (s = 1: units are kept)."""
    up = up / np.linalg.norm(up)
    front = front / np.linalg.norm(front)
    if abs(float(up @ front)) > 1e-6:
        raise SplatfilmError(f"the front {front.tolist()} is not perpendicular to the up axis {up.tolist()}")
    # Rows of R are the mesh-frame directions that become x, y and z: R @ up = z, R @ front = -y.
    back = -front
    R = np.stack([np.cross(back, up), back, up])
    moved = vertices @ R.T
    lo, hi = moved.min(axis=0), moved.max(axis=0)
    t = -np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    return {"rotation": R.tolist(), "translation": t.tolist(), "scale": 1.0}


def default_axes(mesh_path: Path, up: str | None, front: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Up and front [3] in the mesh's own frame. glTF: +y up, front +z (its specification).
    OBJ says nothing; it is taken as +y up, what Blender's OBJ exporter writes by default
    (forward -Z, up +Y), Maya's Y-up world and the Y-up readers (three.js, obj2gltf) assume.
    PLY and STL: +z up (Blender's exporters of both write Z up by default). The front is -y,
    or +z when up is along y (Y-up exports, Blender's included, turn the -y front to +z)."""
    y_up = mesh_path.suffix.lower() in (".glb", ".gltf", ".obj")
    u = parse_axis(up, "--up") if up is not None else (np.array([0.0, 1.0, 0.0]) if y_up else np.array([0.0, 0.0, 1.0]))
    if front is not None:
        f = parse_axis(front, "--front")
    elif abs(u[1]) == 1.0:
        f = np.array([0.0, 0.0, 1.0])
    else:
        f = np.array([0.0, -1.0, 0.0])
    if abs(float(u @ f)) > 1e-9:
        raise SplatfilmError(f"{mesh_path}: the front ({front or f.tolist()}) must be perpendicular to the up axis "
                             f"({up or u.tolist()})")
    return u, f


def import_mesh(mesh_path: str | Path, output: str | Path, count: int | None = None, density: float | None = None,
                sh_degree: int = 0, seed: int = 0, up: str | None = None, front: str | None = None) -> Sidecar:
    """Import a mesh as a Gaussian asset: OUTPUT (a Gaussian file) in the mesh's own frame and
    its sidecar OUTPUT.json (kind "object", canonical transform); for a skinned glTF also
    its rig OUTPUT.rig.npz (`splatfilm.io.rig_files`). Returns the sidecar."""
    mesh_path, output = Path(mesh_path), Path(output)
    if output.suffix.lower() not in GAUSSIAN_FILE_EXTENSIONS:
        raise SplatfilmError(f"{output}: the output of import-mesh is a {GAUSSIAN_FILE_TYPES} file (sidecar .json "
                             "beside it)")
    if output.resolve() == mesh_path.resolve():  # a .ply mesh imported onto itself would be lost
        raise SplatfilmError(f"{output}: the output would overwrite the mesh; write the asset beside it")
    check_output_file(output)
    check_sidecar_free(output)
    up_v, front_v = default_axes(mesh_path, up, front)
    asset = mesh_to_gaussians(mesh_path, count=count, density=density, sh_degree=sh_degree, seed=seed)
    gltf = mesh_path.suffix.lower() in (".glb", ".gltf")
    save_gaussians(output, asset.gaussians)
    if asset.rig is not None:
        save_rig(rig_path(output), asset.rig, output.name)
    else:
        remove_rig(output)  # a rig left by an earlier import would bind the wrong Gaussians
    lo, hi = asset.vertices.min(axis=0), asset.vertices.max(axis=0)
    sidecar = Sidecar({
        "splatfilm_version": __version__,
        "asset": output.name,
        "kind": "object",
        "source": {"type": "mesh", "path": recorded_path(mesh_path.resolve(), output.resolve().parent), "format": mesh_path.suffix.lower().lstrip("."),
                   "faces": asset.faces, "area": asset.area, "colour": asset.colour_sources},
        "frame": {
            "note": "the mesh's own frame, as its file stores it",
            "up": up_v.tolist(),
            "front": front_v.tolist(),
            # glTF is in metres by its specification; other formats do not say.
            "scale_to_metres": 1.0 if gltf else None,
            "bounds_min": lo.tolist(),
            "bounds_max": hi.tolist(),
        },
        "import": {"count": len(asset.gaussians), "density_per_square_unit": len(asset.gaussians) / asset.area,
                   "sh_degree": sh_degree, "seed": seed, "opacity": OPACITY,
                   "normals": "from the mesh faces: each Gaussian's thin local z axis is its face normal"},
        "num_gaussians": len(asset.gaussians),
        "canonical_transform": canonical_from_vertices(asset.vertices, up_v, front_v),
    })
    height = float((hi - lo) @ np.abs(up_v))
    if gltf and height > TALL_METRES:
        sidecar["import"]["warnings"] = [
            f"the mesh is {height:.3g} m tall: glTF counts in metres, so it was probably modelled in centimetres; "
            f"place it in a film with scale: 0.01 ({0.01 * height:.3g} m)"]
    if asset.rig is not None:
        sidecar["frame"]["note"] = ("the glTF scene frame, the Gaussians at the skeleton's rest pose (where a static "
                                    "import of the file puts the mesh when its bind pose is its rest pose)")
        sidecar["rig"] = {"file": rig_path(output).name, "version": RIG_FORMAT_VERSION, "joints": asset.rig.num_joints,
                          "clips": {c.name: c.duration for c in asset.rig.clips.values()},
                          "influences": "each Gaussian follows up to 4 joints: its triangle's skin weights at its "
                                        "barycentric coordinates, the 4 heaviest renormalised"}
        if asset.rig_notes:
            sidecar["rig"]["ignored"] = asset.rig_notes
    sidecar.write(sidecar_path(output))
    return sidecar
