"""A glTF / GLB file's structure checked before trimesh reads it, so a damaged file is named
with what is wrong (a truncated GLB, a broken JSON chunk, an index past the end of a list)
instead of the IndexError or AssertionError trimesh's loader stops with.

Only the container and the references between its lists are checked (glTF 2.0 section 5):
chunks, JSON, buffers, bufferViews, accessors, meshes, nodes, scenes. Pixel data and accessor
contents are left to trimesh. A file whose `extensionsRequired` names an extension splatfilm
does not read (compressed geometry, KTX2 textures) is refused by name, as the specification
asks of a loader, rather than read as the zero-filled placeholders it would leave.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from splatfilm.errors import SplatfilmError
from splatfilm.io.inputs import trailing_bytes_note
from splatfilm import report

_GLB_MAGIC = b"glTF"
_JSON_CHUNK = 0x4E4F534A
_BIN_CHUNK = 0x004E4942


def check_gltf(path: str | Path, document: tuple[dict, bytes | None] | None = None) -> None:
    """Raise a SplatfilmError naming `path` when its .glb container or its glTF JSON is damaged.
    document: what `read_gltf_json` returned for it, where already read."""
    path = Path(path)
    doc, binary = read_gltf_json(path) if document is None else document
    check_required_extensions(path, doc)
    _check_references(path, doc, None if binary is None else len(binary))


# Required extensions read here (the first three) or safe to leave out of an unlit albedo copy of
# the surface: lights, and the KHR_materials_ family, which shades (all but the one that holds
# the base colour itself).
_READ_EXTENSIONS = {"KHR_texture_transform", "KHR_mesh_quantization", "EXT_texture_webp", "KHR_lights_punctual"}
_SHADING_PREFIX = "KHR_materials_"
_NOT_SHADING = {"KHR_materials_pbrSpecularGlossiness"}  # holds the base colour itself
# How to get a file without the extension. gltfpack cannot read Draco (its maintainer's word,
# meshoptimizer issue 286); glTF Transform decodes Draco and meshopt on reading and writes the
# copy uncompressed (glTF-Transform issue 150); gltfpack reads meshopt since 0.21, and -noq
# keeps it from quantizing the copy.
_HOW_TO_DECOMPRESS = {
    "KHR_draco_mesh_compression": "Draco-compressed geometry; decompress it first: gltf-transform copy IN.glb OUT.glb",
    "EXT_meshopt_compression": "meshopt-compressed data; decompress it first: gltf-transform copy IN.glb OUT.glb "
                               "(or gltfpack -i IN.glb -o OUT.glb -noq)",
    "KHR_meshopt_compression": "meshopt-compressed data; decompress it first: gltf-transform copy IN.glb OUT.glb",
    "KHR_texture_basisu": "KTX2 / Basis Universal textures; re-export it with PNG or JPEG textures",
}


def check_required_extensions(path: str | Path, doc: dict) -> None:
    """Raise a one-line SplatfilmError naming `path` when the glTF document `doc` requires an
    extension (its `extensionsRequired`) that splatfilm does not read, with how to get a copy
    without it where one is known."""
    required = doc.get("extensionsRequired", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise _fail(Path(path), "`extensionsRequired` is not a list of names")
    missing = [name for name in required if name not in _READ_EXTENSIONS
               and (not name.startswith(_SHADING_PREFIX) or name in _NOT_SHADING)]
    if missing:
        name = missing[0]
        how = _HOW_TO_DECOMPRESS.get(name, "export the model without it")
        more = f" (and {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise SplatfilmError(f"{path}: requires the glTF extension {name}{more}, which splatfilm does not read: {how}")


def read_gltf_json(path: str | Path, data: bytes | None = None) -> tuple[dict, bytes | None]:
    """(the glTF JSON document, a .glb's BIN chunk or None) of a .gltf or .glb file (by its
    suffix; `data`: its bytes, where already read); a damaged container or JSON is a
    SplatfilmError naming `path`. The one reader of the container: what reads the JSON
    without pygltflib reads it here."""
    path = Path(path)
    data = path.read_bytes() if data is None else data
    if path.suffix.lower() == ".glb":
        return _glb_chunks(path, data)
    return _json(path, data), None


def glb_bytes(doc: dict, binary: bytes | None) -> bytes:
    """A binary glTF (version 2) holding the JSON document `doc` and, when given, the BIN
    chunk `binary` (its bytes as `read_gltf_json` returns them), each chunk padded to 4 bytes
    as the container requires (JSON with spaces, BIN with zeros)."""
    text = json.dumps(doc).encode("utf-8")
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), _JSON_CHUNK) + text
    if binary is not None:
        binary = bytes(binary) + b"\0" * (-len(binary) % 4)
        body += struct.pack("<II", len(binary), _BIN_CHUNK) + binary
    return _GLB_MAGIC + struct.pack("<II", 2, 12 + len(body)) + body


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fail(path: Path, problem: str) -> SplatfilmError:
    return SplatfilmError(f"{path}: cannot read the mesh: {problem} (a damaged or incomplete glTF file)")


def _glb_chunks(path: Path, data: bytes) -> tuple[dict, bytes | None]:
    """(the JSON chunk, the BIN chunk or None) of a binary glTF."""
    if len(data) < 12 or data[:4] != _GLB_MAGIC:
        raise SplatfilmError(f"{path}: cannot read the mesh: not a binary glTF file (it does not start with 'glTF')")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise SplatfilmError(f"{path}: cannot read the mesh: glTF version {version} is not supported (expected 2)")
    if length > len(data):
        raise _fail(path, f"the header says {length} bytes but the file has {len(data)}; it is truncated")
    if length < len(data):
        report.note(trailing_bytes_note(path, len(data) - length, f"the {length} bytes its header gives"))
    chunks, offset = [], 12
    while offset + 8 <= length:
        size, kind = struct.unpack_from("<II", data, offset)
        if offset + 8 + size > length:
            raise _fail(path, f"chunk {len(chunks)} runs past the end of the file; it is truncated")
        chunks.append((kind, data[offset + 8:offset + 8 + size]))
        offset += 8 + size
    if not chunks or chunks[0][0] != _JSON_CHUNK:
        raise _fail(path, "the first chunk is not the JSON chunk")
    binary = chunks[1][1] if len(chunks) > 1 and chunks[1][0] == _BIN_CHUNK else None
    return _json(path, chunks[0][1]), binary


def _json(path: Path, text: bytes) -> dict:
    try:
        doc = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise _fail(path, "the glTF JSON is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise _fail(path, f"invalid glTF JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(doc, dict):
        raise _fail(path, f"the glTF JSON is a {type(doc).__name__}, expected an object")
    return doc


def _check_references(path: Path, doc: dict, bin_length: int | None) -> None:
    def items(name: str) -> list:
        value = doc.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise _fail(path, f"`{name}` is not a list of objects")
        return value

    # materials, textures and samplers are read by import-mesh before trimesh (UV sets, samplers).
    lists = {name: items(name) for name in ("buffers", "bufferViews", "accessors", "meshes", "nodes", "scenes",
                                            "materials", "textures", "samplers")}

    def ref(where: str, value: Any, target: str) -> None:
        n = len(lists[target])
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
            raise _fail(path, f"{where} refers to {target}[{value!r}], but the file has {n} {target}")

    for i, buffer in enumerate(lists["buffers"]):
        uri = buffer.get("uri")
        if uri is None:
            if i != 0 or bin_length is None:
                raise _fail(path, f"buffers[{i}] has no uri and the file has no binary chunk for it")
            if _whole(buffer.get("byteLength")) and buffer["byteLength"] > bin_length:
                raise _fail(path, f"buffers[{i}] is {buffer.get('byteLength')} bytes but the binary chunk holds "
                                  f"{bin_length}; it is truncated")
        elif isinstance(uri, str) and not uri.startswith("data:"):
            if not (path.parent / unquote(uri)).is_file():
                raise SplatfilmError(f"{path}: cannot read the mesh: buffers[{i}] is in {uri}, which is not beside it")
    for i, view in enumerate(lists["bufferViews"]):
        ref(f"bufferViews[{i}].buffer", view.get("buffer"), "buffers")
        size, offset, length = (lists["buffers"][view["buffer"]].get("byteLength"), view.get("byteOffset", 0),
                                view.get("byteLength"))
        if _whole(size) and _whole(offset) and _whole(length) and offset + length > size:
            end = offset + length
            raise _fail(path, f"bufferViews[{i}] ends at byte {end} of buffers[{view['buffer']}], "
                              f"which has {size}")
    for i, accessor in enumerate(lists["accessors"]):
        if "bufferView" in accessor:
            ref(f"accessors[{i}].bufferView", accessor["bufferView"], "bufferViews")
    for i, mesh in enumerate(lists["meshes"]):
        prims = mesh.get("primitives", [])
        if not isinstance(prims, list) or not all(isinstance(p, dict) for p in prims):
            raise _fail(path, f"meshes[{i}].primitives is not a list of objects")
        for j, prim in enumerate(prims):
            where = f"meshes[{i}].primitives[{j}]"
            attributes = prim.get("attributes", {})
            if not isinstance(attributes, dict):
                raise _fail(path, f"{where}.attributes is not an object")
            for name, value in attributes.items():
                ref(f"{where}.attributes.{name}", value, "accessors")
            if "indices" in prim:
                ref(f"{where}.indices", prim["indices"], "accessors")
    for i, node in enumerate(lists["nodes"]):
        if "mesh" in node:
            ref(f"nodes[{i}].mesh", node["mesh"], "meshes")
        children = node.get("children", [])
        for k, child in enumerate(children if isinstance(children, list) else [children]):
            ref(f"nodes[{i}].children[{k}]", child, "nodes")
    for i, scene in enumerate(lists["scenes"]):
        nodes = scene.get("nodes", [])
        for k, node in enumerate(nodes if isinstance(nodes, list) else [nodes]):
            ref(f"scenes[{i}].nodes[{k}]", node, "nodes")
    if "scene" in doc:
        ref("scene", doc["scene"], "scenes")
