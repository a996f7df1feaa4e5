"""Small rigged glTF files built with pygltflib for the rig and skinning tests, and a skinning
reference written from the glTF 2.0 specification (independent of splatfilm's code).

The standard model is a limb: an open tube of radius 0.2 along +y (glTF's up) from y = 0 to
y = 2, three bones (root at y = 0, mid at y = 1, tip at y = 2) under an armature node that
may carry a transform, weights blending root -> mid around y = 1 and mid -> tip near the top.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field

import numpy as np
import pygltflib
from scipy.spatial.transform import Rotation

FLOAT, UBYTE, USHORT = 5126, 5121, 5123


# ---- a tiny writer ----------------------------------------------------------------------------


class Builder:
    """Accumulates one binary buffer, buffer views and accessors into a pygltflib GLTF2."""

    def __init__(self):
        self.g = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0"))
        self.blob = bytearray()

    def view(self, data: bytes, stride: int | None = None) -> int:
        while len(self.blob) % 4:
            self.blob.append(0)
        self.g.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data),
                                                       byteStride=stride))
        self.blob += data
        return len(self.g.bufferViews) - 1

    def accessor(self, array, ctype: int = FLOAT, kind: str | None = None, normalized: bool = False,
                 view: int | None = None, offset: int = 0, count: int | None = None, sparse=None) -> int:
        """An accessor of `array` (its own tightly packed view), or over an existing `view`."""
        a = None if array is None else np.asarray(array)
        if kind is None:
            n = 1 if a.ndim == 1 else a.shape[1]
            kind = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}[n]
        if a is not None and view is None:
            dtype = {FLOAT: "<f4", UBYTE: "<u1", USHORT: "<u2", 5125: "<u4"}[ctype]
            view = self.view(a.astype(dtype).tobytes())
        kw = {}
        if a is not None and ctype == FLOAT and kind != "MAT4":
            kw = {"min": np.asarray(a).reshape(len(a), -1).min(0).tolist(),
                  "max": np.asarray(a).reshape(len(a), -1).max(0).tolist()}
        self.g.accessors.append(pygltflib.Accessor(bufferView=view, byteOffset=offset, componentType=ctype,
                                                   normalized=normalized, count=len(a) if count is None else count,
                                                   type=kind, sparse=sparse, **kw))
        return len(self.g.accessors) - 1

    def node(self, **kw) -> int:
        self.g.nodes.append(pygltflib.Node(**kw))
        return len(self.g.nodes) - 1

    def save(self, path, how: str = "glb") -> None:
        """how: 'glb', 'datauri' (a .gltf with the buffer inline) or 'bin' (a .gltf and a .bin)."""
        blob = bytes(self.blob)
        if how == "glb":
            self.g.buffers = [pygltflib.Buffer(byteLength=len(blob))]
            self.g.set_binary_blob(blob)
            self.g.save_binary(str(path))
            return
        if how == "datauri":
            uri = "data:application/octet-stream;base64," + base64.b64encode(blob).decode()
        else:
            uri = path.with_suffix(".bin").name
            path.with_suffix(".bin").write_bytes(blob)
        self.g.buffers = [pygltflib.Buffer(byteLength=len(blob), uri=uri)]
        path.write_text(self.g.gltf_to_json())


# ---- the limb -----------------------------------------------------------------------------------


def tube(radius=0.2, length=2.0, rings=17, segments=12, y0=0.0):
    """An open tube along +y: vertices [V,3], triangles [F,3] (counter-clockwise outside)."""
    ys = np.linspace(y0, y0 + length, rings)
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    v = np.array([[radius * np.cos(t), y, -radius * np.sin(t)] for y in ys for t in a])
    f = []
    for i in range(rings - 1):
        for k in range(segments):
            a0, a1 = i * segments + k, i * segments + (k + 1) % segments
            b0, b1 = a0 + segments, a1 + segments
            f += [[a0, a1, b1], [a0, b1, b0]]
    return v, np.array(f)


def limb_weights(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joints [V,4] and weights [V,4] (float) for heights y: root below 0.7, mid above 1.3,
    blended between; the tip takes a share above 1.7."""
    t = np.clip((y - 0.7) / 0.6, 0.0, 1.0)
    tip = np.clip((y - 1.7) / 0.3, 0.0, 1.0) * 0.5
    joints = np.tile([0, 1, 2, 0], (len(y), 1))
    weights = np.stack([1 - t, t * (1 - tip), t * tip, np.zeros_like(t)], axis=1)
    return joints, weights


@dataclass
class Limb:
    """What a limb file holds, for the reference: node TRS at rest, the bind globals, the
    mesh vertices (bind space) and per-vertex joints/weights as the file stores them
    (decoded), and the clips by name: {node: {path: (interp, times, values xyzw)}}."""

    translations: list
    rotations: list  # xyzw
    scales: list
    parents: list
    joints_nodes: list  # skin joint k -> node
    ibm: np.ndarray
    meshes: list = field(default_factory=list)  # (vertices, faces, joints, weights)
    clips: dict = field(default_factory=dict)


def quat_xyzw(axis, degrees):
    return Rotation.from_rotvec(np.radians(degrees) * np.asarray(axis, float) / np.linalg.norm(axis)).as_quat()


def trs(t, q, s) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_quat(q).as_matrix() * np.asarray(s)
    m[:3, 3] = t
    return m


def write_limb(path, *, armature=((0.0, 0.0, 0.0), (0, 0, 0, 1), (1, 1, 1)), matrix_nodes=False,
               weights_as="float", interleaved=False, sparse_weights=False, second_mesh=False, extra_set=False,
               bind_differs=False, how="glb", clips=True, mutate=None) -> Limb:
    """Write the limb. weights_as: 'float', 'ubyte' or 'ushort' (normalised integers);
    interleaved: positions, joints and weights in one buffer view with byteStride;
    sparse_weights: WEIGHTS_0 as zeros + a sparse accessor; second_mesh: a sleeve around
    the mid joint as a second mesh node under the same skin; extra_set: JOINTS_1/WEIGHTS_1
    moving a share of the top ring to the tip; bind_differs: the nodes' rest pose bends the
    mid joint away from the bind pose the inverse binds were made in; mutate(builder, limb):
    a last change (for broken files)."""
    b = Builder()
    arm_t, arm_q, arm_s = armature
    T = [list(arm_t), [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    Q = [list(arm_q), [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1]]
    S = [list(arm_s), [1, 1, 1], [1, 1, 1], [1, 1, 1]]
    parents = [-1, 0, 1, 2]
    names = ["Armature", "root", "mid", "tip"]
    G = []
    for i in range(4):
        m = trs(T[i], Q[i], S[i])
        G.append(m if parents[i] < 0 else G[parents[i]] @ m)
    ibm = np.array([np.linalg.inv(G[i]) for i in (1, 2, 3)])
    if bind_differs:  # the rest pose turns mid 20 degrees about x; the binds stay at the straight pose
        Q[2] = list(quat_xyzw([1, 0, 0], 20))
    for i in range(4):
        kw = {"name": names[i], "children": [i + 1] if i < 3 else []}
        if matrix_nodes and i > 0:
            kw["matrix"] = trs(T[i], Q[i], S[i]).T.reshape(-1).tolist()
        else:
            kw.update(translation=T[i], rotation=list(Q[i]), scale=list(S[i]))
        b.node(**kw)
    limb = Limb(T, Q, S, parents, [1, 2, 3], ibm)

    # Vertices in bind space: the scene frame at the bind pose (so rest = the vertices as stored).
    local = [tube()]
    if second_mesh:
        local.append(tube(radius=0.26, length=0.6, rings=5, segments=10, y0=0.7))
    meshes = []
    for lv, lf in local:  # the limb sits where the armature puts its bones
        meshes.append((lv @ G[0][:3, :3].T + G[0][:3, 3], lf, *limb_weights(lv[:, 1])))
    mesh_nodes = []
    for mi, (mv, mf, mj, mw) in enumerate(meshes):
        attrs = {}
        if weights_as == "ubyte":
            wq = np.round(mw * 255).astype(np.uint8)
            wdec, wtype = wq / 255.0, UBYTE
        elif weights_as == "ushort":
            wq = np.round(mw * 65535).astype(np.uint16)
            wdec, wtype = wq / 65535.0, USHORT
        else:
            wq, wdec, wtype = mw.astype(np.float32), mw.astype(np.float32).astype(float), FLOAT
        if interleaved and mi == 0:
            assert wtype == UBYTE, "the interleaved layout packs ubyte weights"
            rec = b"".join(struct.pack("<3f4B4B", *p, *jj, *ww) for p, jj, ww in zip(mv, mj.astype(np.uint8), wq))
            view = b.view(rec, stride=20)
            attrs["POSITION"] = b.accessor(mv, FLOAT, "VEC3", view=view, offset=0)
            attrs["JOINTS_0"] = b.accessor(mj, UBYTE, "VEC4", view=view, offset=12)
            attrs["WEIGHTS_0"] = b.accessor(wq, UBYTE, "VEC4", normalized=True, view=view, offset=16)
        else:
            attrs["POSITION"] = b.accessor(mv)
            attrs["JOINTS_0"] = b.accessor(mj, UBYTE if mi == 0 else USHORT, "VEC4")
            if sparse_weights and mi == 0:
                # Base: all zeros (no bufferView); the sparse part gives every vertex with weight.
                idx = np.nonzero(wdec.sum(1) > 0)[0].astype(np.uint16)
                sp = pygltflib.Sparse(count=len(idx),
                                      indices=pygltflib.AccessorSparseIndices(bufferView=b.view(idx.tobytes()),
                                                                              componentType=USHORT),
                                      values=pygltflib.AccessorSparseValues(
                                          bufferView=b.view(np.asarray(wq)[idx].tobytes())))
                attrs["WEIGHTS_0"] = b.accessor(None, wtype, "VEC4", normalized=wtype != FLOAT, view=None,
                                                count=len(mv), sparse=sp)
            else:
                attrs["WEIGHTS_0"] = b.accessor(wq, wtype, "VEC4", normalized=wtype != FLOAT)
        jall, wall = mj.copy(), wdec.copy()
        if extra_set and mi == 0:
            top = local[mi][0][:, 1] > 1.9  # the top ring
            j1 = np.tile([2, 0, 0, 0], (len(mv), 1))
            w1 = np.zeros((len(mv), 4), np.float32)
            w1[top, 0] = 0.5
            attrs["JOINTS_1"] = b.accessor(j1, UBYTE, "VEC4")
            attrs["WEIGHTS_1"] = b.accessor(w1, FLOAT, "VEC4")
            jall, wall = np.concatenate([jall, j1], 1), np.concatenate([wall, w1], 1)
        # Colour bands by height and a stripe down one side, so a render shows bending and twisting.
        lv = local[mi][0]
        band = (np.floor(lv[:, 1] * 4) % 2)[:, None]
        stripe = (np.abs(np.arctan2(-lv[:, 2], lv[:, 0])) < 0.6)[:, None]
        colour = np.where(stripe, [0.05, 0.6, 0.1], np.where(band > 0, [0.8, 0.25, 0.05], [0.1, 0.2, 0.8]))
        attrs["COLOR_0"] = b.accessor(colour.astype(np.float32), FLOAT, "VEC3")
        ind = b.accessor(mf.reshape(-1).astype(np.uint16), USHORT, "SCALAR")
        b.g.meshes.append(pygltflib.Mesh(name=f"mesh{mi}", primitives=[
            pygltflib.Primitive(attributes=pygltflib.Attributes(**attrs), indices=ind)]))
        mesh_nodes.append(b.node(name=f"body{mi}", mesh=mi, skin=0))
        limb.meshes.append((mv, mf, jall, wall))
    b.g.skins.append(pygltflib.Skin(joints=[1, 2, 3], inverseBindMatrices=b.accessor(
        np.array([m.T.reshape(-1) for m in ibm]), FLOAT, "MAT4")))
    b.g.scenes.append(pygltflib.Scene(nodes=[0] + mesh_nodes))
    b.g.scene = 0
    if clips:
        add_clips(b, limb)
    if mutate is not None:
        mutate(b, limb)
    b.save(path, how)
    return limb


def add_clips(b: Builder, limb: Limb) -> None:
    """'bend' (mid about z, LINEAR), 'hop' (root translation, STEP), 'grow' (tip scale,
    CUBICSPLINE) and 'twist' (mid about its own y axis to 180 degrees, LINEAR)."""
    def clip(name, node, path, interp, times, values):
        times = np.asarray(times, np.float32)
        values = np.asarray(values, np.float32)
        inp = b.accessor(times, FLOAT, "SCALAR")
        out = b.accessor(values.reshape(-1, values.shape[-1]), FLOAT, "VEC4" if path == "rotation" else "VEC3")
        b.g.animations.append(pygltflib.Animation(name=name, samplers=[
            pygltflib.AnimationSampler(input=inp, output=out, interpolation=interp)], channels=[
            pygltflib.AnimationChannel(sampler=0, target=pygltflib.AnimationChannelTarget(node=node, path=path))]))
        limb.clips[name] = {node: {path: (interp, times.astype(float), values.astype(float))}}

    clip("bend", 2, "rotation", "LINEAR", [0.0, 1.0, 2.0],
         [limb.rotations[2], quat_xyzw([0, 0, 1], 90), quat_xyzw([0, 0, 1], 45)])
    clip("hop", 1, "translation", "STEP", [0.0, 0.5, 1.0], [[0, 0, 0], [0, 0.3, 0], [0, 0.1, 0]])
    # CUBICSPLINE: per key in-tangent, value, out-tangent.
    clip("grow", 3, "scale", "CUBICSPLINE", [0.0, 2.0],
         [[[0, 0, 0], [1, 1, 1], [0.5, 0, 0]], [[0, 1.0, 0], [2, 1, 1], [0, 0, 0]]])
    clip("twist", 2, "rotation", "LINEAR", [0.0, 0.5, 1.0],
         [limb.rotations[2], quat_xyzw([0, 1, 0], 90), quat_xyzw([0, 1, 0], 180)])


# ---- the reference: the specification's skinning -----------------------------------------------


def spec_sample(interp, times, values, t):
    """glTF sampling, written out for the tests (values as stored: xyzw rotations)."""
    if interp == "CUBICSPLINE":
        keys = values[:, 1]
    else:
        keys = values
    if t <= times[0]:
        return keys[0]
    if t >= times[-1]:
        return keys[-1]
    k = np.searchsorted(times, t, side="right") - 1
    td = times[k + 1] - times[k]
    u = (t - times[k]) / td
    if interp == "STEP":
        return keys[k]
    if interp == "CUBICSPLINE":
        p0, m0, p1, m1 = values[k, 1], td * values[k, 2], values[k + 1, 1], td * values[k + 1, 0]
        return (2 * u**3 - 3 * u**2 + 1) * p0 + (u**3 - 2 * u**2 + u) * m0 + (-2 * u**3 + 3 * u**2) * p1 \
            + (u**3 - u**2) * m1
    if values.shape[-1] == 4:
        from scipy.spatial.transform import Slerp

        return Slerp([0, 1], Rotation.from_quat([keys[k], keys[k + 1]]))(u).as_quat()
    return (1 - u) * keys[k] + u * keys[k + 1]


def spec_globals(limb: Limb, clip: str | None = None, t: float = 0.0) -> list[np.ndarray]:
    T, Q, S = [list(x) for x in limb.translations], [list(x) for x in limb.rotations], [list(x) for x in limb.scales]
    for node, paths in (limb.clips.get(clip, {}) if clip else {}).items():
        for path, (interp, times, values) in paths.items():
            v = spec_sample(interp, times, values, t)
            {"translation": T, "rotation": Q, "scale": S}[path][node] = list(v)
    G = []
    for i, p in enumerate(limb.parents):
        m = trs(T[i], Q[i], S[i])
        G.append(m if p < 0 else G[p] @ m)
    return G


def spec_skin(limb: Limb, clip: str | None = None, t: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each mesh's skinned vertices [V,3] and faces by the glTF formula
    v' = sum_k w_k G_jk IBM_jk v (weights renormalised), at `clip` time t (None: rest)."""
    G = spec_globals(limb, clip, t)
    out = []
    for v, f, j, w in limb.meshes:
        w = w / w.sum(1, keepdims=True)
        M = np.array([G[limb.joints_nodes[k]] @ limb.ibm[k] for k in range(len(limb.joints_nodes))])
        A = np.einsum("vk,vkij->vij", w, M[j])
        out.append((np.einsum("vij,vj->vi", A[:, :3, :3], v) + A[:, :3, 3], f))
    return out


def distance_to_triangles(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, nearest: int = 16) -> np.ndarray:
    """Distance [P] from each point [P,3] to the nearest of the triangles: the exact
    point-triangle distance (Ericson's region tests) to the `nearest` triangles by centroid
    (enough for the points near an evenly meshed surface these tests measure)."""
    from scipy.spatial import cKDTree

    tri = vertices[faces]  # [F,3,3]
    k = min(nearest, len(faces))
    _, cand = cKDTree(tri.mean(axis=1)).query(points, k=k)
    cand = cand.reshape(len(points), k)
    a, b, c = tri[cand, 0], tri[cand, 1], tri[cand, 2]  # [P,k,3]
    p = points[:, None, :]
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp, cp = p - b, p - c
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    denom = np.where(va + vb + vc == 0, 1.0, va + vb + vc)
    inside_pt = a + ab * (vb / denom)[..., None] + ac * (vc / denom)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ab = np.nan_to_num(np.clip(d1 / (d1 - d3), 0, 1))
        t_ac = np.nan_to_num(np.clip(d2 / (d2 - d6), 0, 1))
        t_bc = np.nan_to_num(np.clip((d4 - d3) / ((d4 - d3) + (d5 - d6)), 0, 1))
    cands = np.stack([inside_pt, a + ab * t_ab[..., None], a + ac * t_ac[..., None], b + (c - b) * t_bc[..., None]])
    dist = np.linalg.norm(cands - p[None], axis=-1)  # [4,P,k]
    dist[0] = np.where((va >= 0) & (vb >= 0) & (vc >= 0), dist[0], np.inf)
    return dist.min(axis=(0, 2))
