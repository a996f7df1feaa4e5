"""Characters and props from meshes: glTF/GLB, OBJ, PLY or STL in, a Gaussian asset out.

The surface is covered by flat Gaussians: samples spread evenly by area (stratified: each
face gets its share of a systematic sample, placed inside it by a low-discrepancy sequence),
each a disc in its face's plane (thin along the face normal, tangent size from the local
sample spacing, narrowed across a surface narrower than that), nearly opaque, coloured from
the texture averaged over the disc's footprint (for glTF the UV set the material names,
through its KHR_texture_transform, read by its sampler's wrap modes and magnification
filter, and at the disc's centre alone where its minification filter has no mip-maps; a
cut-out's colour averaged premultiplied by its alpha), the vertex colours, or the material's
base colour. Unlit: the asset looks like the
mesh's albedo, as a flat-shaded viewer shows it. Splats have no facing, so a single-sided glTF
material (`doubleSided: false`) is seen from both sides.

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
from splatfilm.assets.sidecar import Sidecar, check_sidecar_free
from splatfilm.io.asset_files import rig_path, sidecar_path
from splatfilm.errors import SplatfilmError
from splatfilm.assets.gltf_check import check_gltf, check_required_extensions, glb_bytes, read_gltf_json
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import MAX_SH_DEGREE
from splatfilm.io.atomic import check_output_file
from splatfilm.io.inputs import read_input
from splatfilm.io.gaussian_files import GAUSSIAN_FILE_EXTENSIONS, GAUSSIAN_FILE_TYPES, save_gaussians
from splatfilm.io.images import linear_to_srgb, srgb_to_linear
from splatfilm.io.paths import recorded_path
from splatfilm.io.rig_files import RIG_FORMAT_VERSION, carry_rig, skin_joint_count
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
# Where the surface is narrower than a disc (a strip, a wire, a hair card, a thin fin), the
# disc's sigma across it is at most this fraction of the surface's width there, so it renders
# about as wide as the mesh: a 2 mm strip under 100k samples per m^2 (5 mm apart along it)
# drew 11.9 mm at alpha 0.5 with round discs and draws 2.2 mm (median; 2.7 at most). Smaller
# fractions draw it narrower but patchy (0.2: 1.6 mm, its centre line at alpha 0.35 in places);
# larger ones wider (0.4: 2.5 mm, 3.3 at most). The width is measured along the surface itself
# (through neighbouring faces, not across one face), so fine tessellation and long sliver
# triangles keep round discs.
WIDTH_TO_SIGMA = 0.3
# The surface is followed across an edge where it turns by less than this (degrees); a sharper
# crease (the sides of a square wire, a fin's back) ends it, as a boundary edge does.
CREASE_DEGREES = 60.0
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


# glTF sampler enums (WebGL's): wrapping, and the filters (NEAREST picks one texel).
REPEAT, CLAMP_TO_EDGE, MIRRORED_REPEAT = 10497, 33071, 33648
NEAREST, LINEAR = 9728, 9729
MIPMAP_FILTERS = (9984, 9985, 9986, 9987)  # NEAREST_MIPMAP_NEAREST ... LINEAR_MIPMAP_LINEAR


@dataclass(frozen=True)
class Sampler:
    """How a texture is read: glTF `wrapS` / `wrapT` (REPEAT, CLAMP_TO_EDGE or MIRRORED_REPEAT)
    and whether magnification takes the nearest texel (`magFilter` NEAREST) or blends four;
    whether minification averages over the footprint (`minFilter` a *_MIPMAP_* one, or none
    given) or reads the one texel (NEAREST, `min_nearest`) or four (LINEAR) at its centre, as a
    GPU minifies a texture without mip-maps."""

    wrap_s: int = REPEAT
    wrap_t: int = REPEAT
    nearest: bool = False
    mipmaps: bool = True
    min_nearest: bool = False


@dataclass
class _Part:
    """One mesh of a file, in the file's root frame: vertices [V,3], faces [F,3] and the
    trimesh object (for its visual); for a rigged glTF also the skin per vertex: rig joints
    [V,K] and weights [V,K]; how its base colour texture is read (a glTF's sampler)."""

    vertices: np.ndarray
    faces: np.ndarray
    mesh: object
    joints: np.ndarray | None = None
    weights: np.ndarray | None = None
    sampler: Sampler = field(default_factory=Sampler)


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
    source = _GltfSource(data, *read_gltf_json(path, data))
    # Before the rig reader or trimesh see accessors a compression extension left empty.
    check_required_extensions(path, source.doc)
    return source


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


def _baked_texture_coordinates(path: Path, source: _GltfSource) -> dict | None:
    """The glTF document with the UVs its base colour textures really use put in TEXCOORD_0 (a new
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
    return doc


_MATERIAL_TAG = "splatfilm material "


def _material_samplers(path: Path, doc: dict) -> dict[int, Sampler]:
    """The sampler of each glTF material's base colour texture that is not the default
    (repeat, bilinear), by material index. trimesh reads no sampler: it always repeats."""
    textures, samplers = doc.get("textures") or [], doc.get("samplers") or []
    out = {}
    for m, material in enumerate(doc.get("materials") or []):
        info = ((material or {}).get("pbrMetallicRoughness") or {}).get("baseColorTexture")
        if not isinstance(info, dict) or not isinstance(info.get("index"), int) or not 0 <= info["index"] < len(textures):
            continue
        index = (textures[info["index"]] or {}).get("sampler")
        if index is None:
            continue
        where = f"textures[{info['index']}].sampler"
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(samplers) \
                or not isinstance(samplers[index], dict):
            raise SplatfilmError(f"{path}: {where} refers to samplers[{index!r}], but the file has {len(samplers)}")
        sampler = samplers[index]
        wraps = []
        for axis in ("wrapS", "wrapT"):
            mode = sampler.get(axis, REPEAT)
            if mode not in (REPEAT, CLAMP_TO_EDGE, MIRRORED_REPEAT):
                raise SplatfilmError(f"{path}: samplers[{index}].{axis} is {mode!r}; glTF allows {REPEAT} (repeat), "
                                     f"{CLAMP_TO_EDGE} (clamp to edge) or {MIRRORED_REPEAT} (mirrored repeat)")
            wraps.append(mode)
        mag = sampler.get("magFilter", LINEAR)
        if mag not in (NEAREST, LINEAR):
            raise SplatfilmError(f"{path}: samplers[{index}].magFilter is {mag!r}; glTF allows {NEAREST} (nearest) or "
                                 f"{LINEAR} (linear)")
        minify = sampler.get("minFilter", MIPMAP_FILTERS[-1])
        if minify not in (NEAREST, LINEAR, *MIPMAP_FILTERS):
            raise SplatfilmError(f"{path}: samplers[{index}].minFilter is {minify!r}; glTF allows {NEAREST} (nearest), "
                                 f"{LINEAR} (linear) or {MIPMAP_FILTERS[0]}-{MIPMAP_FILTERS[-1]} (mip-mapped)")
        found = Sampler(wraps[0], wraps[1], mag == NEAREST, minify in MIPMAP_FILTERS, minify == NEAREST)
        if found != Sampler():
            out[m] = found
    return out


def _prepared_gltf(path: Path, source: _GltfSource) -> tuple[bytes | None, dict[str, Sampler]]:
    """What trimesh is given to read instead of the file (None: the file as it is) and the
    samplers of its materials (`_material_samplers`) by the names given them here: materials
    with a sampler are renamed with their index (`_MATERIAL_TAG`), the one thing of a glTF
    material that reaches trimesh's copy of it, so each part finds its sampler by its
    material's name; the names are used nowhere else."""
    samplers = _material_samplers(path, source.doc)
    doc = _baked_texture_coordinates(path, source)
    if samplers:
        doc = copy.deepcopy(source.doc) if doc is None else doc
        for m in samplers:
            doc["materials"][m]["name"] = f"{_MATERIAL_TAG}{m}"
    samplers = {f"{_MATERIAL_TAG}{m}": sampler for m, sampler in samplers.items()}
    if doc is None:
        return None, samplers
    return (glb_bytes(doc, source.binary) if path.suffix.lower() == ".glb" else json.dumps(doc).encode("utf-8")), samplers


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
    baked, samplers = None, {}
    if path.suffix.lower() in (".glb", ".gltf"):
        source = source or _read_gltf_source(path)
        check_gltf(path, (source.doc, source.binary))
        baked, samplers = _prepared_gltf(path, source)
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
            name = str(getattr(getattr(g.visual, "material", None), "name", None) or "")
            parts.append(_Part(np.asarray(g.vertices, dtype=np.float64), faces, g,
                               sampler=samplers.get(name, Sampler())))
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
        out.append(_Part(inst.rest, part.faces, part.mesh, inst.joints, inst.weights, part.sampler))
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


def _welded_neighbours(tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per face and edge (edge k runs from corner k to corner k + 1) the face across it and
    that face's index of the same edge, [F,3] each, -1 where the edge is a boundary (or is
    shared by more than two faces). Corners are matched by position, so UV and normal seams,
    which split vertices, do not cut the surface."""
    size = float(np.ptp(tris.reshape(-1, 3), axis=0).max()) or 1.0
    keys = np.round(tris.reshape(-1, 3) / (1e-7 * size)).astype(np.int64)
    _, ids = np.unique(keys, axis=0, return_inverse=True)
    ids = ids.reshape(-1, 3)
    a, b = ids, np.roll(ids, -1, axis=1)
    edges = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=2).reshape(-1, 2)  # [3F,2]
    _, edge_id, counts = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    edge_id = edge_id.reshape(-1)
    order = np.argsort(edge_id, kind="stable")
    first = np.searchsorted(edge_id[order], np.arange(len(counts)))
    pair = counts[edge_id] == 2
    slot = np.arange(len(edge_id))
    mate = np.where(order[first[edge_id]] == slot, order[np.minimum(first[edge_id] + 1, len(order) - 1)],
                    order[first[edge_id]])
    mate = np.where(pair, mate, -1)
    face = np.where(mate >= 0, mate // 3, -1).reshape(-1, 3)
    edge = np.where(mate >= 0, mate % 3, -1).reshape(-1, 3)
    # Two corners of one face welded together (a degenerate face) share no edge with anyone.
    face[a == b], edge[a == b] = -1, -1
    return face, edge


def _surface_extent(tris: np.ndarray, start: np.ndarray, points: np.ndarray, directions: np.ndarray,
                    limit: np.ndarray, max_steps: int = 64) -> np.ndarray:
    """How far [R] the surface goes from each point [R,3] on face start [R] along a direction
    [R,3] in that face's plane, followed across edges onto neighbouring faces (the direction
    unfolded about each edge) until a boundary edge or a crease sharper than CREASE_DEGREES;
    at most limit [R]. A walk that is still going after max_steps faces counts as limit."""
    neighbour, their_edge = _welded_neighbours(tris)
    corners = tris
    along = np.roll(tris, -1, axis=1) - tris  # [F,3,3] edge k: corner k -> k + 1
    normal = np.cross(along[:, 0], -along[:, 2])
    area2 = np.linalg.norm(normal, axis=1)
    normal = normal / np.maximum(area2, 1e-300)[:, None]
    inward = np.cross(normal[:, None, :], along)  # [F,3,3] in the face's plane, towards its inside
    inward /= np.maximum(np.linalg.norm(inward, axis=2, keepdims=True), 1e-300)
    unit_along = along / np.maximum(np.linalg.norm(along, axis=2, keepdims=True), 1e-300)
    flat = area2 > 0
    crease = math.cos(math.radians(CREASE_DEGREES))

    face, p, u = start.copy(), points.copy(), directions.copy()
    travelled = np.zeros(len(start))
    out = np.array(limit, dtype=np.float64)
    live = np.arange(len(start))
    for _ in range(max_steps):
        if not len(live):
            break
        f = face[live]
        facing = np.einsum("rkc,rc->rk", inward[f], u[live])  # < 0: moving towards edge k
        inside = np.einsum("rkc,rkc->rk", inward[f], p[live][:, None, :] - corners[f])
        with np.errstate(divide="ignore", invalid="ignore"):
            reach = np.where(facing < -1e-12, np.maximum(inside, 0.0) / -facing, np.inf)
        k = np.argmin(reach, axis=1)
        step = reach[np.arange(len(live)), k]
        total = travelled[live] + step
        beyond = ~np.isfinite(step) | (total >= limit[live])
        g, kg = neighbour[f, k], their_edge[f, k]
        ends = ~beyond & (g < 0)
        out[live[ends]] = total[ends]
        turn = np.full(len(live), -1.0)
        ok = ~beyond & (g >= 0)
        turn[ok] = np.einsum("rc,rc->r", -inward[f[ok], k[ok]], inward[g[ok], kg[ok]])
        creased = ok & (turn < crease)
        out[live[creased]] = total[creased]
        go = ok & ~creased & flat[np.maximum(g, 0)]  # a degenerate face ahead: unknown, counts as limit
        r = live[go]
        p[r] = p[r] + step[go, None] * u[r]
        # Unfolded about the edge: the part along it kept, the part across it turned into the
        # next face's plane.
        e = unit_along[f[go], k[go]]
        a = np.einsum("rc,rc->r", u[r], e)
        b = np.einsum("rc,rc->r", u[r], -inward[f[go], k[go]])
        turned = a[:, None] * e + b[:, None] * inward[g[go], kg[go]]
        u[r] = turned / np.maximum(np.linalg.norm(turned, axis=1, keepdims=True), 1e-300)
        travelled[r], face[r] = total[go], g[go]
        live = r
    return out


def _fitted_discs(tris: np.ndarray, face: np.ndarray, points: np.ndarray,
                  sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's disc: its frame [N,3,3] (columns: two tangents and the face normal) and
    its two tangent standard deviations [N,2] (mesh units). A round disc of `sigma` [N] in its
    face's frame, except where the surface is narrower than 1/WIDTH_TO_SIGMA sigma: there the
    disc turns to lie along the surface's narrowest width (of 4 directions 45 degrees apart,
    each measured both ways by `_surface_extent`) and each of its sigmas is at most
    WIDTH_TO_SIGMA times the width along it."""
    frames = _face_frames(tris)[face]
    sigmas = np.stack([sigma, sigma], axis=1)
    angles = np.radians([0.0, 45.0, 90.0, 135.0])
    dirs = np.cos(angles)[None, :, None] * frames[:, None, :, 0] + np.sin(angles)[None, :, None] * frames[:, None, :, 1]
    n, d = len(points), len(angles)
    starts, where = np.tile(face, 2 * d), np.tile(points, (2 * d, 1))
    heading = np.concatenate([dirs.transpose(1, 0, 2).reshape(-1, 3), -dirs.transpose(1, 0, 2).reshape(-1, 3)])
    reach = np.tile(sigma / WIDTH_TO_SIGMA, 2 * d)
    extent = _surface_extent(tris, starts, where, heading, reach).reshape(2, d, n)
    width = (extent[0] + extent[1]).T  # [N,4]
    narrow = np.nonzero((WIDTH_TO_SIGMA * width < sigma[:, None]).any(axis=1))[0]
    if len(narrow):
        across = np.argmin(width[narrow], axis=1)
        lengthwise = (across + 2) % d
        t1 = dirs[narrow, lengthwise]
        frames[narrow] = np.stack([t1, np.cross(frames[narrow, :, 2], t1), frames[narrow, :, 2]], axis=2)
        sigmas[narrow, 0] = np.minimum(sigma[narrow], WIDTH_TO_SIGMA * width[narrow, lengthwise])
        sigmas[narrow, 1] = np.minimum(sigma[narrow], WIDTH_TO_SIGMA * width[narrow, across])
    return frames, sigmas


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


# A splat's colour is the texture averaged over its footprint: a 3 x 3 grid of taps at
# 0 and +-TAP_SPREAD sigma along its two axes (weights exp(-a^2/2) for a = 0, +-1), each tap
# read from the mip level whose texels are as wide as the taps are apart. The taps' variance
# (0.55 TAP_SPREAD^2) and the level's box (1/12 of its texel squared) make a filter of about
# 0.8 sigma. A 2-texel checker under splats of 1.5 texels sigma renders an even grey (pixel std
# 0.003 against 0.18 read at each centre; 0.8 sigma: 0.01); the price is softer edges where
# the texture is about as coarse as the splats (a 16-texel checker under 1.1-texel splats:
# 1.4 dB less PSNR against unfiltered ray casting; 0.8 sigma: 0.9 dB).
TAP_SPREAD = 1.0
# Footprints up to this sigma (texels) read the texture at their centre, as the sampler's
# magnification filter has it; point sampling aliases only from about here (samples 1.7 sigma
# apart against a texture's finest detail, 2 texels a period).
MAGNIFIED_TEXELS = 0.5
_TAP_WEIGHT = math.exp(-0.5)


def _wrapped(i: np.ndarray, n: int, mode: int) -> np.ndarray:
    """Texel indices [M] wrapped into 0..n-1 as OpenGL wraps them (glTF points there)."""
    if mode == CLAMP_TO_EDGE:
        return np.clip(i, 0, n - 1)
    if mode == MIRRORED_REPEAT:
        p = i % (2 * n)
        return np.where(p < n, p, 2 * n - 1 - p)
    return i % n


def sample_texture(image: np.ndarray, uv: np.ndarray, sampler: Sampler = Sampler(),
                   nearest: bool | None = None) -> np.ndarray:
    """One texture lookup per point: bilinear, or the nearest texel where `nearest` (default:
    the sampler's magnification filter), wrapped by the sampler. image [H,W,C] floats (row 0 at
    the top); uv [M,2] with v up (trimesh's convention: v = 0 is the bottom row); returns
    [M,C]. Texel (i, j) has its centre at u = (i + 0.5) / W, v = 1 - (j + 0.5) / H."""
    h, w = image.shape[:2]
    x = uv[:, 0] * w
    y = (1.0 - uv[:, 1]) * h
    if sampler.nearest if nearest is None else nearest:
        xi = _wrapped(np.floor(x).astype(np.int64), w, sampler.wrap_s)
        yi = _wrapped(np.floor(y).astype(np.int64), h, sampler.wrap_t)
        return image[yi, xi]
    x, y = x - 0.5, y - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    xa, xb = _wrapped(x0, w, sampler.wrap_s), _wrapped(x0 + 1, w, sampler.wrap_s)
    ya, yb = _wrapped(y0, h, sampler.wrap_t), _wrapped(y0 + 1, h, sampler.wrap_t)
    top = image[ya, xa] * (1 - fx) + image[ya, xb] * fx
    bottom = image[yb, xa] * (1 - fx) + image[yb, xb] * fx
    return top * (1 - fy) + bottom * fy


class Texture:
    """A texture prepared for footprint-averaged lookups: its mip pyramid (where its sampler
    has mip-maps), each level the 2 x 2 box average of the one before, in linear light
    (averaging sRGB-encoded values would darken a fine pattern), and its sampler. A cut-out's colour (`cutout`) is held premultiplied by its
    alpha and divided by the averaged alpha after each lookup, so texels that are not there
    lend a visible edge none of their colour (a leaf's transparent surround is often black or
    another colour); else alpha is averaged as one more channel and the colour straight."""

    def __init__(self, image: np.ndarray, sampler: Sampler = Sampler(), cutout: bool = False):
        """image: RGBA [H,W,4] in [0,1], colour sRGB-encoded (row 0 at the top). cutout: the
        material covers by the texture's alpha (glTF MASK or BLEND); an OPAQUE one ignores
        it, and an alpha of 0 there (a channel some exporters leave empty) must not blacken it."""
        level = np.array(image, dtype=np.float64)
        level[..., :3] = srgb_to_linear(np.clip(level[..., :3], 0.0, 1.0))
        if cutout:
            level[..., :3] *= level[..., 3:4]
        self.sampler = sampler
        self.cutout = cutout
        self.levels = [level]
        while sampler.mipmaps and max(level.shape[:2]) > 1:
            # An odd row or column is repeated, so the last texel pairs with itself.
            if level.shape[0] > 1 and level.shape[0] % 2:
                level = np.concatenate([level, level[-1:]], axis=0)
            if level.shape[1] > 1 and level.shape[1] % 2:
                level = np.concatenate([level, level[:, -1:]], axis=1)
            h, w = max(level.shape[0] // 2, 1), max(level.shape[1] // 2, 1)
            level = level.reshape(h, level.shape[0] // h, w, level.shape[1] // w, -1).mean(axis=(1, 3))
            self.levels.append(level)

    def sample(self, uv: np.ndarray, axes: np.ndarray | None = None, chunk: int = 16384) -> np.ndarray:
        """Linear RGB (straight) and alpha [M,4] of the texture averaged over footprints centred
        at uv [M,2] (v up, as `sample_texture`) spanning axes [M,2,2] (its two axes' standard
        deviations as UV vectors, one per column); without axes, or where the sampler has no
        mip-maps, one lookup at each centre. RGB is 0 where the averaged alpha of a cut-out is."""
        if axes is None:
            out = sample_texture(self.levels[0], uv, self.sampler)
        elif not self.sampler.mipmaps:
            # A GPU minifies such a texture with one lookup too: texels meant to stay crisp
            # (pixel art, a palette) keep their own colours however many a footprint spans.
            h, w = self.levels[0].shape[:2]
            sigma = np.linalg.norm(axes * np.array([w, h], dtype=np.float64)[None, :, None], axis=1).max(axis=1)
            nearest = np.where(sigma <= MAGNIFIED_TEXELS, self.sampler.nearest, self.sampler.min_nearest)
            out = np.empty((len(uv), 4))
            for flag in (False, True):
                sel = np.nonzero(nearest == flag)[0]
                out[sel] = sample_texture(self.levels[0], uv[sel], self.sampler, nearest=flag)
        else:
            out = np.empty((len(uv), 4))
            for lo in range(0, len(uv), chunk):
                out[lo:lo + chunk] = self._footprint(uv[lo:lo + chunk], axes[lo:lo + chunk])
        if self.cutout:
            alpha = out[:, 3:4]
            out[:, :3] = np.divide(out[:, :3], alpha, out=np.zeros_like(out[:, :3]), where=alpha > 1e-12)
        return out

    def _footprint(self, uv: np.ndarray, axes: np.ndarray) -> np.ndarray:
        h, w = self.levels[0].shape[:2]
        texels = axes * np.array([w, h], dtype=np.float64)[None, :, None]
        length = np.linalg.norm(texels, axis=1)  # [M,2] each axis' sigma in texels
        # Reading a texel already averages over about half a texel (the bilinear tent's sigma is
        # 0.41, the nearest box's 0.29): only what the footprint spans beyond that is spread over
        # taps, so a magnified texture reads as its sampler says.
        spread = np.sqrt(np.maximum(length ** 2 - MAGNIFIED_TEXELS ** 2, 0.0))
        scale = np.divide(spread, length, out=np.zeros_like(length), where=length > 0)
        steps = TAP_SPREAD * axes * scale[:, None, :]  # [M,2,2] UV step from tap to tap
        lod = np.log2(np.maximum(TAP_SPREAD * spread.max(axis=1), 1.0))
        lod = np.minimum(lod, len(self.levels) - 1)
        base = np.minimum(np.floor(lod).astype(np.int64), len(self.levels) - 2) if len(self.levels) > 1 \
            else np.zeros(len(uv), dtype=np.int64)
        frac = (lod - base)[:, None] if len(self.levels) > 1 else np.zeros((len(uv), 1))
        total = np.zeros((len(uv), 4))
        weights = 0.0
        for a in (-1, 0, 1):
            for b in (-1, 0, 1):
                weight = _TAP_WEIGHT ** (abs(a) + abs(b))
                tap = uv + a * steps[:, :, 0] + b * steps[:, :, 1]
                total += weight * self._trilinear(tap, base, frac)
                weights += weight
        return total / weights

    def _trilinear(self, uv: np.ndarray, base: np.ndarray, frac: np.ndarray) -> np.ndarray:
        """Lookups [M,4] at uv [M,2] between mip levels base [M] and base + 1 (weight frac [M,1])."""
        out = np.zeros((len(uv), 4))
        for level in np.unique(base):
            sel = np.nonzero(base == level)[0]
            # Level 0 is read with the sampler's magnification filter; coarser ones blend.
            value = sample_texture(self.levels[level], uv[sel], self.sampler, nearest=self.sampler.nearest and level == 0)
            if level + 1 < len(self.levels):
                value = value * (1 - frac[sel]) + sample_texture(self.levels[level + 1], uv[sel], self.sampler,
                                                                  nearest=False) * frac[sel]
            out[sel] = value
        return out


def _texture(image, sampler: Sampler, cutout: bool, path: Path, cache: dict) -> Texture:
    """A PIL image as a Texture read through `sampler`, a cut-out's or not (`Texture`; decoded
    once per image, sampler and cut-out; alpha 1 where the image has none)."""
    key = (id(image), sampler, cutout)
    if key not in cache:
        try:
            pixels = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
        except Exception as e:  # truncated or corrupt pixel data only shows when decoded
            raise SplatfilmError(f"{path}: a texture or material failed to load ({type(e).__name__}: {e})") from None
        cache[key] = Texture(pixels, sampler, cutout)
    return cache[key]


def _uv_jacobians(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Per face the linear map [F,2,3] from a displacement in its plane (mesh units) to the
    change of its UV (zero for a face without area)."""
    tri, tuv = vertices[faces], uv[faces]
    edges = np.stack([tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]], axis=2)  # [F,3,2]
    uv_edges = np.stack([tuv[:, 1] - tuv[:, 0], tuv[:, 2] - tuv[:, 0]], axis=2)  # [F,2,2]
    gram = np.einsum("fki,fkj->fij", edges, edges)
    det = gram[:, 0, 0] * gram[:, 1, 1] - gram[:, 0, 1] ** 2
    ok = det > 1e-30 * np.maximum(gram[:, 0, 0] * gram[:, 1, 1], 1e-300)
    inv = np.zeros_like(gram)
    inv[ok] = np.linalg.inv(gram[ok])
    return uv_edges @ inv @ edges.transpose(0, 2, 1)


def _unit_rgb(values) -> np.ndarray:
    """trimesh colours [..., 3 or 4] (uint8 0-255, or floats 0-1) as RGB floats in [0,1]."""
    a = np.asarray(values)
    rgb = a[..., :3].astype(np.float64)
    return rgb / 255.0 if a.dtype.kind in "iu" else rgb


def _part_colours(part: _Part, face: np.ndarray, bary: np.ndarray, axes: np.ndarray, gltf: bool, path: Path,
                  cache: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """sRGB colours [M,3] of samples on one part, their coverage [M] in [0,1], and what the
    colours came from ('texture', 'vertex', 'face', 'material' or 'none'). axes [M,3,2]: each
    sample's two tangent standard deviations (mesh units), the footprint its texture colour is
    averaged over. Coverage is a glTF material's alpha (baseColorFactor's times the texture's)
    where its alphaMode uses it: BLEND as it is, MASK as 0 or 1 by alphaCutoff (cut-out leaves,
    hair cards); else 1."""
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
        mode = getattr(mat, "alphaMode", None) if isinstance(mat, PBRMaterial) else None
        cutout = gltf and mode in ("MASK", "BLEND")
        texture = None
        if image is not None and vis.uv is not None and len(vis.uv) == len(part.vertices):
            uv = np.asarray(vis.uv, np.float64)
            footprint = _uv_jacobians(part.vertices, part.faces, uv)[face] @ axes  # [M,2,2]
            texture = _texture(image, part.sampler, cutout, path, cache).sample(per_vertex(uv), footprint)
        coverage = np.ones(len(face))
        if cutout:
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
                # The texture comes back in linear light; the clip takes off the lookup's last-bit
                # overshoot.
                lin *= np.clip(texture, 0.0, 1.0)
            coloured = vc is not None and len(vc) == len(part.vertices)
            if coloured:
                lin *= per_vertex(_unit_rgb(vc))
            source = "texture" if texture is not None else "vertex" if coloured else "material"
            return linear_to_srgb(np.clip(lin, 0.0, 1.0)), coverage, source
        if texture is not None:
            return linear_to_srgb(np.clip(texture, 0.0, 1.0)), coverage, "texture"
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
    frames, sigma = _fitted_discs(tris, face, points, SPACING_TO_SIGMA * spacing)
    axes = frames[:, :, :2] * sigma[:, None, :]  # [N,3,2] the two tangent standard deviations

    colours, coverage = np.empty((count, 3)), np.ones(count)
    sources = []
    offsets = np.cumsum([0] + [len(p.faces) for p in parts])
    cache: dict = {}
    for i, part in enumerate(parts):
        sel = np.nonzero(owner[face] == i)[0]
        if len(sel):
            colours[sel], coverage[sel], src = _part_colours(part, face[sel] - offsets[i], bary[sel], axes[sel], gltf,
                                                             path, cache)
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
    scales = torch.from_numpy(np.column_stack([sigma, THIN * sigma.min(axis=1)])).to(f32)
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
    written = save_gaussians(output, asset.gaussians)
    # Without a rig, one left by an earlier import (it would bind the wrong Gaussians) goes.
    carry_rig(output, asset.rig, None, written=written)
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
        if skin_joint_count(asset.rig) is not None:
            sidecar["rig"]["skin_joints"] = skin_joint_count(asset.rig)
        if asset.rig_notes:
            sidecar["rig"]["ignored"] = asset.rig_notes
    sidecar.write(sidecar_path(output))
    return sidecar
