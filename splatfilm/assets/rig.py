"""Skinned glTF 2.0: skeleton, skins, per-vertex joints and weights, animation clips.

`read_gltf_rig` reads what trimesh drops from a .glb/.gltf (parsed with pygltflib; the
accessors decoded here): the node hierarchy (TRS or matrix nodes), the skins (joints,
inverse bind matrices), every triangle primitive's JOINTS_n/WEIGHTS_n sets, and the
animations (translation, rotation and scale channels; LINEAR, STEP, CUBICSPLINE).
Accessors: every component type, normalised integers (UNSIGNED_BYTE/SHORT weights,
BYTE/SHORT rotations), interleaved buffer views (byteStride), sparse accessors, GLB
buffers, data URIs and external .bin files beside a .gltf.

The skeleton is every node of the file, parents first: a joint of a skin, an ancestor that
moves it (an armature root with a transform), or a node carrying a mesh; so a clip that
animates any of them poses the asset, and a mesh that is not skinned but hangs under a
joint (a helmet under the head) follows that joint rigidly. Joint names are node names
(made unique; "node<i>" where a node has none).

Frames: everything is in the glTF scene frame (the root of the node hierarchy), the frame
`splatfilm import-mesh` keeps for any glTF. A skinned primitive is placed at the rest
pose, as glTF viewers draw it: each vertex by sum_k w_k G_jk IBM_jk (G: the joints' global
transforms from the nodes' own TRS; the skinned mesh node's own transform is ignored, as
the specification says). For the usual export, whose bind pose is its rest pose, that is
where a static import of the same file puts it. Non-skinned meshes are placed by their
node's global transform (as trimesh does) and bound to that node with weight 1.

Morph targets are not imported: the base shape is, and the rig's notes say so (with the
default weights viewers would apply); a clip that animates only morph weights is left out.

Broken files end in a SplatfilmError "FILE: field.path: what is wrong", e.g.
"hero.glb: meshes[0].primitives[0].attributes.JOINTS_0: vertex 12 names joint 7, but
skins[0] has 3 joints".
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.inputs import read_input
from splatfilm.scene.skeleton import PATHS, Animation, Channel, JointTRS, matrix_to_trs

__all__ = ["GltfReader", "GltfRig", "RigInstance", "interpolate_weights", "read_gltf_rig",
           "MAX_INFLUENCES"]

MAX_INFLUENCES = 4  # joints per Gaussian
_COMPONENTS = {5120: ("<i1", 1, 127.0), 5121: ("<u1", 1, 255.0), 5122: ("<i2", 2, 32767.0),
               5123: ("<u2", 2, 65535.0), 5125: ("<u4", 4, None), 5126: ("<f4", 4, None)}
_TYPES = {"SCALAR": (1, 1), "VEC2": (2, 1), "VEC3": (3, 1), "VEC4": (4, 1), "MAT2": (2, 2), "MAT3": (3, 3),
          "MAT4": (4, 4)}  # (rows, columns)
_TRIANGLES, _TRIANGLE_STRIP = 4, 5  # the primitive modes trimesh turns into faces


@dataclass
class RigInstance:
    """One triangle primitive as placed in the scene by one node.

    field: its name in messages ("meshes[0].primitives[1]"); static [V,3]: the vertices by
    the node's global transform (where trimesh puts them); rest [V,3]: at the rest pose
    (skinned, or the same as static); joints [V,K] (rig joint indices) and weights [V,K]
    (rows sum to 1)."""

    field: str
    static: np.ndarray
    rest: np.ndarray
    joints: np.ndarray
    weights: np.ndarray


@dataclass
class GltfRig:
    """What a skinned glTF holds beyond its meshes: the skeleton (joint_names, parents,
    rest, inverse_binds as in `splatfilm.scene.skeleton.Rig`), the clips, the placed
    triangle primitives, and notes on what was left out. in_skin [J] bool: which joints a
    skin lists (the rest are nodes that move or carry them, `Rig.in_skin`)."""

    joint_names: list[str]
    parents: np.ndarray
    rest: JointTRS
    inverse_binds: np.ndarray
    clips: dict[str, Animation]
    instances: list[RigInstance]
    nodes: list[int]  # glTF node index of each joint
    notes: list[str] = field(default_factory=list)
    in_skin: np.ndarray | None = None


def _get(obj, name: str, default=None):
    """A glTF property from pygltflib's objects or plain dicts (what it leaves undecoded)."""
    if obj is None:
        return default
    value = obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)
    return default if value is None else value


class GltfReader:
    """Buffers and accessors of one glTF file, with errors naming the file and field."""

    def __init__(self, path: Path, data: bytes | None = None):
        """data: the file's bytes, where already read."""
        self.path = path
        data = read_input(path, "glTF file") if data is None else data
        import pygltflib

        try:
            if path.suffix.lower() == ".glb" or data[:4] == b"glTF":
                self.gltf = pygltflib.GLTF2.load_from_bytes(data)
                if self.gltf is None:
                    raise ValueError("no JSON chunk")
            else:
                self.gltf = pygltflib.GLTF2.gltf_from_json(data.decode("utf-8"))
        except Exception as e:  # pygltflib raises whatever json/struct/dataclasses raise
            raise SplatfilmError(f"{path}: cannot read the glTF ({type(e).__name__}: {e})") from None
        self._buffers: dict[int, bytes] = {}

    def fail(self, where: str, what: str) -> SplatfilmError:
        """The error to raise for `what` is wrong at field path `where`, prefixed with the file."""
        return SplatfilmError(f"{self.path}: {where}: {what}")

    def items(self, name: str) -> list:
        """The top-level array `name` (`nodes`, `accessors`, ...); [] where the file has none."""
        return list(getattr(self.gltf, name, None) or [])

    def index(self, name: str, i: object, where: str) -> Any:
        """The i-th entry of a top-level array (a pygltflib object), or a SplatfilmError at
        `where` when i is not an int within it."""
        items = self.items(name)
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(items):
            raise self.fail(where, f"{name}[{i}] does not exist (the file has {len(items)})")
        return items[i]

    def buffer(self, i: int, where: str) -> bytes:
        """The bytes of buffer i (the GLB chunk, a data URI or a file beside the glTF), read once;
        SplatfilmError when they cannot be read or are shorter than its byteLength."""
        if i in self._buffers:
            return self._buffers[i]
        buf = self.index("buffers", i, where)
        uri = _get(buf, "uri")
        here = f"buffers[{i}]"
        if uri is None:
            data = self.gltf.binary_blob()
            if data is None:
                raise self.fail(here, "no uri and no GLB binary chunk")
        elif uri.startswith("data:"):
            try:
                data = base64.b64decode(uri.split(",", 1)[1], validate=False)
            except (IndexError, binascii.Error, ValueError) as e:
                raise self.fail(here + ".uri", f"not a base64 data URI ({e})") from None
        else:
            file = self.path.parent / unquote(uri)
            try:
                data = file.read_bytes()
            except OSError as e:
                raise self.fail(here + ".uri", f"cannot read {file} ({e.strerror or e})") from None
        need = _get(buf, "byteLength", 0)
        if len(data) < need:
            raise self.fail(here, f"byteLength is {need} but the data has {len(data)} bytes")
        self._buffers[i] = data
        return data

    def view(self, i: int, where: str) -> tuple[bytes, int, int, int | None]:
        """(buffer bytes, view start, view length, byteStride or None)."""
        v = self.index("bufferViews", i, where)
        here = f"bufferViews[{i}]"
        data = self.buffer(_get(v, "buffer", -1), here + ".buffer")
        start, length = _get(v, "byteOffset", 0), _get(v, "byteLength", 0)
        if start < 0 or length < 0 or start + length > len(data):
            raise self.fail(here, f"bytes {start}..{start + length} lie outside the buffer ({len(data)} bytes)")
        return data, start, length, _get(v, "byteStride")

    def _elements(self, view: int, offset: int, count: int, ctype: int, rows: int, cols: int,
                  where: str) -> np.ndarray:
        """count elements [count, cols, rows] from a buffer view (columns padded to 4 bytes)."""
        data, start, length, stride = self.view(view, where + ".bufferView")
        fmt, size, _ = _COMPONENTS[ctype]
        col_bytes = rows * size
        col_stride = (col_bytes + 3) // 4 * 4 if cols > 1 else col_bytes
        elem = col_stride * (cols - 1) + col_bytes
        stride = stride or col_stride * cols
        if stride < elem:
            raise self.fail(where, f"byteStride {stride} is smaller than one element ({elem} bytes)")
        if count and (offset < 0 or offset + stride * (count - 1) + elem > length):
            raise self.fail(where, f"{count} elements from byte {offset} run past the end of bufferViews[{view}] "
                                   f"({length} bytes)")
        raw = np.frombuffer(data, dtype=np.uint8)
        within = (np.arange(cols)[:, None] * col_stride + np.arange(col_bytes)[None, :]).reshape(-1)
        idx = start + offset + stride * np.arange(count)[:, None] + within[None, :]
        return np.ascontiguousarray(raw[idx]).view(fmt).reshape(count, cols, rows)

    def accessor(self, i: object, where: str, types: tuple[str, ...], components: tuple[int, ...] | None = None,
                 integer: bool = False) -> np.ndarray:
        """Accessor i decoded: float64 [count, n] (normalised integers scaled to [0,1] or
        [-1,1]; matrices [count, rows, cols]), or int64 for `integer` accessors."""
        acc = self.index("accessors", i, where)
        here = f"accessors[{i}]"
        ctype, kind, count = _get(acc, "componentType"), _get(acc, "type"), _get(acc, "count")
        if ctype not in _COMPONENTS:
            raise self.fail(here + ".componentType", f"unknown component type {ctype}")
        if kind not in _TYPES:
            raise self.fail(here + ".type", f"unknown type {kind!r}")
        if kind not in types:
            raise self.fail(where, f"{here} is a {kind}; expected {' or '.join(types)}")
        if components is not None and ctype not in components:
            names = {5120: "BYTE", 5121: "UNSIGNED_BYTE", 5122: "SHORT", 5123: "UNSIGNED_SHORT", 5125: "UNSIGNED_INT",
                     5126: "FLOAT"}
            raise self.fail(where, f"{here} holds {names[ctype]}; expected {' or '.join(names[c] for c in components)}")
        if not isinstance(count, int) or count < 0:
            raise self.fail(here + ".count", f"not a count: {count!r}")
        rows, cols = _TYPES[kind]
        view = _get(acc, "bufferView")
        if view is None:
            out = np.zeros((count, cols, rows), dtype=_COMPONENTS[ctype][0])
        else:
            out = self._elements(view, _get(acc, "byteOffset", 0), count, ctype, rows, cols, here)
        sparse = _get(acc, "sparse")
        if sparse is not None:
            out = out.copy()
            self._apply_sparse(sparse, out, ctype, rows, cols, here + ".sparse")
        out = np.swapaxes(out, 1, 2)  # glTF matrices are column-major: [count, rows, cols]
        if integer:
            return out.astype(np.int64).reshape(count, -1) if cols == 1 else out.astype(np.int64)
        scale = _COMPONENTS[ctype][2]
        values = out.astype(np.float64)
        if scale is not None and _get(acc, "normalized", False):
            values = np.maximum(values / scale, -1.0)
        if not np.all(np.isfinite(values)):
            raise self.fail(where, f"{here} holds values that are not finite (NaN or infinity)")
        return values.reshape(count, -1) if cols == 1 else values

    def _apply_sparse(self, sparse, out: np.ndarray, ctype: int, rows: int, cols: int, here: str) -> None:
        count = _get(sparse, "count", 0)
        ind, val = _get(sparse, "indices"), _get(sparse, "values")
        if ind is None or val is None or not isinstance(count, int) or count < 1:
            raise self.fail(here, "needs count >= 1, indices and values")
        ictype = _get(ind, "componentType")
        if ictype not in (5121, 5123, 5125):
            raise self.fail(here + ".indices.componentType", f"must be an unsigned integer type, got {ictype}")
        idx = self._elements(_get(ind, "bufferView", -1), _get(ind, "byteOffset", 0), count, ictype, 1, 1,
                             here + ".indices").reshape(-1).astype(np.int64)
        if np.any(idx >= len(out)):
            raise self.fail(here + ".indices", f"index {int(idx.max())} is out of range (count {len(out)})")
        if np.any(np.diff(idx) <= 0):
            raise self.fail(here + ".indices", "indices must strictly increase")
        out[idx] = self._elements(_get(val, "bufferView", -1), _get(val, "byteOffset", 0), count, ctype, rows, cols,
                                  here + ".values")


# ---- the skeleton --------------------------------------------------------------------------


def _hierarchy(r: GltfReader) -> tuple[list[int], np.ndarray]:
    """Node indices parents-first and the parent of each node (-1 for roots)."""
    nodes = r.items("nodes")
    parent = np.full(len(nodes), -1, dtype=np.int64)
    for i, node in enumerate(nodes):
        for k, c in enumerate(_get(node, "children", [])):
            if not isinstance(c, int) or not 0 <= c < len(nodes):
                raise r.fail(f"nodes[{i}].children[{k}]", f"node {c} does not exist (the file has {len(nodes)})")
            if parent[c] >= 0 or c == i:
                raise r.fail(f"nodes[{i}].children[{k}]", f"node {c} already has a parent (nodes[{parent[c]}])"
                             if parent[c] >= 0 else "a node cannot be its own child")
            parent[c] = i
    order: list[int] = []
    stack = [i for i in range(len(nodes)) if parent[i] < 0][::-1]
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(reversed(_get(nodes[i], "children", [])))
    if len(order) < len(nodes):
        stuck = min(set(range(len(nodes))) - set(order))
        raise r.fail(f"nodes[{stuck}]", "the node hierarchy has a cycle through this node")
    return order, parent


def _node_trs(r: GltfReader, i: int, node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rest translation [3], (w, x, y, z) rotation [4] and scale [3] of node i."""
    here = f"nodes[{i}]"
    m = _get(node, "matrix")
    if m is not None:
        a = np.asarray(m, dtype=np.float64)
        if a.shape != (16,) or not np.all(np.isfinite(a)):
            raise r.fail(here + ".matrix", "must be 16 finite numbers")
        t, q, s, exact = matrix_to_trs(a.reshape(4, 4).T)
        if not exact:
            raise r.fail(here + ".matrix", "is not a translation * rotation * scale matrix (shear, zero scale or "
                                           "projection), as glTF requires")
        return t, q, s
    values = []
    for name, default in (("translation", [0.0, 0.0, 0.0]), ("rotation", [0.0, 0.0, 0.0, 1.0]),
                          ("scale", [1.0, 1.0, 1.0])):
        a = np.asarray(_get(node, name, default), dtype=np.float64)
        if a.shape != (len(default),) or not np.all(np.isfinite(a)):
            raise r.fail(f"{here}.{name}", f"must be {len(default)} finite numbers")
        values.append(a)
    t, q_xyzw, s = values
    n = np.linalg.norm(q_xyzw)
    if n < 1e-6:
        raise r.fail(here + ".rotation", "is a zero quaternion")
    return t, np.roll(q_xyzw / n, 1), s


def _invertible(m: np.ndarray) -> bool:
    """Whether a 4x4 affine matrix has an invertible linear part (relative to its size)."""
    L = m[:3, :3]
    size = np.linalg.norm(L) / np.sqrt(3.0)
    return bool(size > 0 and abs(np.linalg.det(L)) > 1e-9 * size ** 3)


# ---- the meshes ----------------------------------------------------------------------------


def _prim_attributes(prim) -> dict:
    attrs = _get(prim, "attributes", {})
    return dict(attrs) if isinstance(attrs, dict) else {k: v for k, v in vars(attrs).items() if v is not None}


def _used_vertices(r: GltfReader, prim, count: int, where: str) -> np.ndarray:
    """Which of the primitive's `count` vertices its triangles use [count] bool."""
    used = np.zeros(count, dtype=bool)
    ind = _get(prim, "indices")
    if ind is None:
        used[:] = True
        return used
    idx = r.accessor(ind, where + ".indices", ("SCALAR",), (5121, 5123, 5125), integer=True).reshape(-1)
    if len(idx) and (idx.min() < 0 or idx.max() >= count):
        raise r.fail(where + ".indices", f"vertex index {int(idx.max())} is out of range ({count} vertices)")
    used[idx] = True
    return used


def _skin_weights(r: GltfReader, attrs: dict, count: int, skin_joints: list[int], skin: int, used: np.ndarray,
                  where: str) -> tuple[np.ndarray, np.ndarray]:
    """Every JOINTS_n/WEIGHTS_n set of a skinned primitive: node indices [V,4n] and weights
    [V,4n], renormalised to sum to 1."""
    sets = []
    k = 0
    while f"JOINTS_{k}" in attrs or f"WEIGHTS_{k}" in attrs:
        jn, wn = f"JOINTS_{k}", f"WEIGHTS_{k}"
        if jn not in attrs or wn not in attrs:
            raise r.fail(f"{where}.attributes", f"{jn if jn not in attrs else wn} is missing beside "
                                                f"{wn if jn not in attrs else jn}")
        j = r.accessor(attrs[jn], f"{where}.attributes.{jn}", ("VEC4",), (5121, 5123), integer=True)
        w = r.accessor(attrs[wn], f"{where}.attributes.{wn}", ("VEC4",), (5126, 5121, 5123))
        for name, a in ((jn, j), (wn, w)):
            if len(a) != count:
                raise r.fail(f"{where}.attributes.{name}", f"has {len(a)} entries for {count} vertices")
        if np.any(w < -1e-6):
            v = int(np.nonzero((w < -1e-6).any(axis=1))[0][0])
            raise r.fail(f"{where}.attributes.{wn}", f"vertex {v} has a negative weight")
        bad = (j >= len(skin_joints)) & (w > 0)
        if bad.any():
            v = int(np.nonzero(bad.any(axis=1))[0][0])
            raise r.fail(f"{where}.attributes.{jn}", f"vertex {v} names joint {int(j[v][bad[v]][0])}, but "
                                                     f"skins[{skin}] has {len(skin_joints)} joints")
        sets.append((np.where(w > 0, j, 0), np.maximum(w, 0.0)))
        k += 1
    if not sets:
        raise r.fail(f"{where}.attributes", f"JOINTS_0 and WEIGHTS_0 are missing on a mesh skinned by skins[{skin}]")
    joints = np.concatenate([s[0] for s in sets], axis=1)
    weights = np.concatenate([s[1] for s in sets], axis=1)
    total = weights.sum(axis=1)
    zero = (total <= 0) & used
    if zero.any():
        raise r.fail(f"{where}.attributes.WEIGHTS_0", f"vertex {int(np.nonzero(zero)[0][0])} has all-zero weights "
                                                      "(it follows no joint)")
    weights = weights / np.where(total > 0, total, 1.0)[:, None]
    return np.asarray(skin_joints, dtype=np.int64)[joints], weights


# ---- animations ----------------------------------------------------------------------------


def _clips(r: GltfReader, joint_of_node: np.ndarray, notes: list[str]) -> dict[str, Animation]:
    clips: dict[str, Animation] = {}
    for a, anim in enumerate(r.items("animations")):
        here = f"animations[{a}]"
        name = _get(anim, "name") or f"animation_{a}"
        if name in clips:
            name = f"{name}_{a}"
        samplers = _get(anim, "samplers", [])
        channels = []
        for c, ch in enumerate(_get(anim, "channels", [])):
            where = f"{here}.channels[{c}]"
            target = _get(ch, "target")
            path, node = _get(target, "path"), _get(target, "node")
            if path == "weights" or node is None:
                notes.append(f"{where}: {'morph target weights' if path == 'weights' else 'no target node'} "
                             "(not animated by splatfilm)")
                continue
            if path not in PATHS:
                raise r.fail(where + ".target.path", f"unknown path {path!r}; glTF animates translation, rotation, "
                                                     "scale or weights")
            if not isinstance(node, int) or not 0 <= node < len(joint_of_node):
                raise r.fail(where + ".target.node", f"node {node} does not exist (the file has "
                                                     f"{len(joint_of_node)} nodes)")
            s = _get(ch, "sampler")
            if not isinstance(s, int) or not 0 <= s < len(samplers):
                raise r.fail(where + ".sampler", f"sampler {s} does not exist ({here} has {len(samplers)})")
            sw = f"{here}.samplers[{s}]"
            interp = _get(samplers[s], "interpolation", "LINEAR")
            if interp not in ("LINEAR", "STEP", "CUBICSPLINE"):
                raise r.fail(sw + ".interpolation", f"unknown interpolation {interp!r}; use LINEAR, STEP or "
                                                    "CUBICSPLINE")
            times = r.accessor(_get(samplers[s], "input"), sw + ".input", ("SCALAR",), (5126,)).reshape(-1)
            if len(times) == 0:
                raise r.fail(sw + ".input", "has no keyframes")
            if np.any(np.diff(times) <= 0):
                raise r.fail(sw + ".input", "keyframe times must strictly increase")
            size = PATHS[path]
            comps = (5126, 5120, 5121, 5122, 5123) if path == "rotation" else (5126,)
            values = r.accessor(_get(samplers[s], "output"), sw + ".output", (f"VEC{size}",), comps)
            per_key = 3 if interp == "CUBICSPLINE" else 1
            if len(values) != per_key * len(times):
                raise r.fail(sw + ".output", f"has {len(values)} values for {len(times)} keyframes"
                                             + (" (CUBICSPLINE needs 3 per key)" if per_key == 3 else ""))
            if path == "rotation":
                values = np.roll(values, 1, axis=-1)  # glTF (x, y, z, w) -> (w, x, y, z)
                keys = values[1::3] if per_key == 3 else values
                if np.any(np.linalg.norm(keys, axis=1) < 1e-6):
                    raise r.fail(sw + ".output", "a rotation keyframe is a zero quaternion")
            if per_key == 3:
                values = values.reshape(len(times), 3, size)
            channels.append(Channel(int(joint_of_node[node]), path, interp, times, values))
        if not channels:  # a clip that would list but pose nothing (a face's morph weights alone)
            notes.append(f"{here} ({name!r}): moves no node splatfilm poses; left out of the clips")
            continue
        # Its keys' span, not 0 to the last key: Blender keys from frame 1 (1/fps s) unless told
        # to slide to zero, and a loop over [0, last] held the first pose a frame each cycle.
        clips[name] = Animation.of_channels(name, channels)
    return clips


# ---- the whole file ------------------------------------------------------------------------


def read_gltf_rig(path: str | Path, data: bytes | None = None) -> GltfRig | None:
    """The skeleton, clips and placed triangle primitives of a skinned glTF (None when the
    file has no skins). data: the file's bytes, where already read."""
    path = Path(path)
    r = GltfReader(path, data)
    skins = r.items("skins")
    if not skins:
        return None
    nodes = r.items("nodes")
    order, parent_node = _hierarchy(r)
    joint_of_node = np.empty(len(nodes), dtype=np.int64)
    joint_of_node[order] = np.arange(len(order))
    trs = [_node_trs(r, i, nodes[i]) for i in order]
    rest = JointTRS(np.array([t[0] for t in trs]).reshape(-1, 3), np.array([t[1] for t in trs]).reshape(-1, 4),
                    np.array([t[2] for t in trs]).reshape(-1, 3))
    parents = np.array([joint_of_node[parent_node[i]] if parent_node[i] >= 0 else -1 for i in order], dtype=np.int64)
    local = rest.matrices()
    G = np.empty_like(local)
    for j, p in enumerate(parents):
        G[j] = local[j] if p < 0 else G[p] @ local[j]

    # Inverse binds: a skin's for its joints; for other nodes the inverse of the rest pose.
    ibm = np.array([np.linalg.inv(g) if _invertible(g) else np.eye(4) for g in G]).reshape(-1, 4, 4)
    bound = np.full(len(order), -1)
    skin_joints: list[list[int]] = []
    for s, skin in enumerate(skins):
        here = f"skins[{s}]"
        joints = list(_get(skin, "joints", []))
        if not joints:
            raise r.fail(here + ".joints", "a skin needs at least one joint")
        for k, n in enumerate(joints):
            if not isinstance(n, int) or not 0 <= n < len(nodes):
                raise r.fail(f"{here}.joints[{k}]", f"node {n} does not exist (the file has {len(nodes)} nodes)")
        acc = _get(skin, "inverseBindMatrices")
        if acc is None:  # the specification: identity matrices
            mats = np.broadcast_to(np.eye(4), (len(joints), 4, 4))
        else:
            mats = r.accessor(acc, here + ".inverseBindMatrices", ("MAT4",), (5126,))
            if len(mats) < len(joints):
                raise r.fail(here + ".inverseBindMatrices", f"has {len(mats)} matrices for {len(joints)} joints")
        for k, n in enumerate(joints):
            m = mats[k]
            if not _invertible(m) or not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6):
                raise r.fail(f"{here}.inverseBindMatrices[{k}]", f"the matrix of joint {k} (nodes[{n}]) is not an "
                                                                 "invertible affine transform")
            j = joint_of_node[n]
            if bound[j] >= 0 and not np.allclose(ibm[j], m, atol=1e-5 * max(1.0, np.abs(m).max())):
                raise r.fail(f"{here}.inverseBindMatrices[{k}]", f"nodes[{n}] is bound differently by "
                                                                 f"skins[{bound[j]}]; one bind per joint")
            ibm[j], bound[j] = m, s
        skin_joints.append([int(joint_of_node[n]) for n in joints])

    # Triangle primitives of the default scene, each where its node puts it.
    scenes = r.items("scenes")
    scene = _get(r.gltf, "scene", 0)
    roots = list(_get(scenes[scene], "nodes", [])) if scenes and 0 <= scene < len(scenes) else \
        [i for i in range(len(nodes)) if parent_node[i] < 0]
    todo, placed = list(reversed(roots)), []
    while todo:
        n = todo.pop()
        if not isinstance(n, int) or not 0 <= n < len(nodes):
            raise r.fail(f"scenes[{scene}].nodes", f"node {n} does not exist")
        placed.append(n)
        todo.extend(reversed(_get(nodes[n], "children", [])))
    S_rest = G @ ibm
    instances = []
    notes: list[str] = []
    for n in placed:
        m = _get(nodes[n], "mesh")
        if m is None:
            continue
        mesh = r.index("meshes", m, f"nodes[{n}].mesh")
        targets = max((len(_get(prim, "targets", []) or []) for prim in _get(mesh, "primitives", [])), default=0)
        if targets and not any(note.startswith(f"meshes[{m}]:") for note in notes):
            weights = np.asarray(_get(nodes[n], "weights", None) or _get(mesh, "weights", None) or [0.0], np.float64)
            shown = ", ".join(f"{w:g}" for w in weights)
            notes.append(f"meshes[{m}]: {targets} morph target(s) left out: the base shape is imported"
                         + (f" (the default weights [{shown}] that viewers apply are not)" if np.any(weights != 0)
                            else ""))
        skin = _get(nodes[n], "skin")
        if skin is not None and not (isinstance(skin, int) and 0 <= skin < len(skins)):
            raise r.fail(f"nodes[{n}].skin", f"skins[{skin}] does not exist (the file has {len(skins)})")
        for p, prim in enumerate(_get(mesh, "primitives", [])):
            where = f"meshes[{m}].primitives[{p}]"
            if _get(prim, "mode", _TRIANGLES) not in (_TRIANGLES, _TRIANGLE_STRIP):
                continue
            attrs = _prim_attributes(prim)
            if "POSITION" not in attrs:
                raise r.fail(where + ".attributes", "POSITION is missing")
            v = r.accessor(attrs["POSITION"], where + ".attributes.POSITION", ("VEC3",))
            static = v @ G[joint_of_node[n], :3, :3].T + G[joint_of_node[n], :3, 3]
            if skin is None:
                one = np.ones((len(v), 1))
                instances.append(RigInstance(where, static, static, np.full((len(v), 1), joint_of_node[n]), one))
                continue
            used = _used_vertices(r, prim, len(v), where)
            joints, weights = _skin_weights(r, attrs, len(v), skin_joints[skin], skin, used, where)
            A = np.einsum("vk,vkij->vij", weights, S_rest[joints])  # [V,4,4]
            det = np.linalg.det(A[:, :3, :3])
            size = np.linalg.norm(A[:, :3, :3], axis=(1, 2)) / np.sqrt(3.0)
            flat = used & ~(np.abs(det) > 1e-9 * size ** 3)
            if flat.any():
                raise r.fail(f"skins[{skin}]", f"vertex {int(np.nonzero(flat)[0][0])} of {where} is squashed flat at "
                                               "the rest pose (its blended skinning matrix is not invertible)")
            rest_pos = np.einsum("vij,vj->vi", A[:, :3, :3], v) + A[:, :3, 3]
            instances.append(RigInstance(where, static, rest_pos, joints, weights))

    clips = _clips(r, joint_of_node, notes)
    names, seen = [], set()
    for i in order:
        name = _get(nodes[i], "name") or f"node{i}"
        if name in seen:
            name = f"{name}#{i}"
        seen.add(name)
        names.append(name)
    return GltfRig(names, parents, rest, ibm, clips, instances, list(order), notes, bound >= 0)


def interpolate_weights(joints: np.ndarray, weights: np.ndarray, bary: np.ndarray,
                        keep: int = MAX_INFLUENCES) -> tuple[np.ndarray, np.ndarray]:
    """Skin weights at points inside triangles: the corners' joints [M,3,K] and weights
    [M,3,K] mixed by barycentric coordinates bary [M,3], the same joint's shares summed, the
    `keep` largest kept and renormalised. Returns joints [M,keep] int32 and weights [M,keep]
    float32 (unused slots: joint 0, weight 0), heaviest first."""
    m, _, k = joints.shape
    j = joints.reshape(m, 3 * k)
    w = (weights * bary[:, :, None]).reshape(m, 3 * k)
    order = np.argsort(j, axis=1, kind="stable")
    j = np.take_along_axis(j, order, axis=1)
    w = np.take_along_axis(w, order, axis=1)
    for c in range(1, 3 * k):  # fold runs of the same joint into their last entry
        same = j[:, c] == j[:, c - 1]
        w[:, c] += np.where(same, w[:, c - 1], 0.0)
        w[:, c - 1] = np.where(same, 0.0, w[:, c - 1])
    top = np.argsort(-w, axis=1, kind="stable")[:, :keep]
    jt, wt = np.take_along_axis(j, top, axis=1), np.take_along_axis(w, top, axis=1)
    if jt.shape[1] < keep:
        pad = keep - jt.shape[1]
        jt = np.concatenate([jt, np.zeros((m, pad), jt.dtype)], axis=1)
        wt = np.concatenate([wt, np.zeros((m, pad))], axis=1)
    total = wt.sum(axis=1, keepdims=True)
    wt = wt / np.where(total > 0, total, 1.0)
    jt = np.where(wt > 0, jt, 0)
    return jt.astype(np.int32), wt.astype(np.float32)
