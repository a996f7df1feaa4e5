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


# ---- a walking figure ---------------------------------------------------------------------------

BIPED_JOINTS = ["hips", "spine", "neck", "head", "thigh_l", "shin_l", "foot_l", "thigh_r", "shin_r", "foot_r"]
BIPED_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8]
BIPED_REST = [(0, 0.9, 0), (0, 0.25, 0), (0, 0.35, 0), (0, 0.1, 0), (0.12, -0.05, 0), (0, -0.4, 0), (0, -0.4, 0),
              (-0.12, -0.05, 0), (0, -0.4, 0), (0, -0.4, 0)]
LEG = 0.4  # thigh and shin length (m)
SOLE = 0.05  # the foot joint's height above the soles at rest (m)
WALK_STRIDE = 1.0  # ground covered per cycle of `walk` (m): the planted feet's belt speed times its duration
WALK_DURATION = 1.0
WALK_HIP = 0.8  # hips height while walking (the legs bend a little)


def tube_between(p0, p1, radius, segments=10, rings=5):
    """An open tube from p0 to p1 [3]: vertices [V,3], triangles [F,3]."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = p1 - p0
    v0, f = tube(radius=radius, length=1.0, rings=rings, segments=segments)  # along +y, y in [0, 1]
    y = np.array([0.0, 1.0, 0.0])
    u = axis / np.linalg.norm(axis)
    R = Rotation.align_vectors([u], [y])[0].as_matrix() if abs(u @ y) < 1 - 1e-9 else np.diag([1, np.sign(u @ y), 1])
    scaled = v0 * [1.0, np.linalg.norm(axis), 1.0]
    return scaled @ R.T + p0, f


def _leg_angles(dz, dy):
    """Thigh and shin rotations about x (radians, local) putting the foot at (dz, dy) from the
    thigh joint, the knee forward (+z, the glTF front); and the foot's, keeping it level."""
    d = min(np.hypot(dz, dy), 2 * LEG - 1e-9)
    psi = np.arctan2(-dz, -dy)  # of the hip -> foot line from straight down, positive backwards
    alpha = np.arccos(np.clip(d / (2 * LEG), -1, 1))  # two equal bones
    thigh = psi - alpha
    ky, kz = -LEG * np.cos(thigh), -LEG * np.sin(thigh)
    shin_global = np.arctan2(-(dz - kz), -(dy - ky))
    return thigh, shin_global - thigh, -shin_global


def walk_foot(phase):
    """The walk's foot (z forward, y up; glTF frame, relative to the ground under the hips) at
    a cycle phase in [0, 1): planted (y = SOLE) sliding back at the belt speed for 60% of the
    cycle, then swung forward with a lift."""
    phase = phase % 1.0
    a, stance = 0.5 * WALK_STRIDE * 0.6, 0.6  # the foot travels 2a while planted, in 0.6 of the cycle
    if phase < stance:
        return a - 2 * a * phase / stance, SOLE
    u = (phase - stance) / (1 - stance)
    return -a + 2 * a * (1 - np.cos(np.pi * u)) / 2, SOLE + 0.08 * np.sin(np.pi * u)


def _qx(angle):
    return [np.sin(angle / 2), 0.0, 0.0, np.cos(angle / 2)]


def biped_clip_keys(keys_per_cycle=24):
    """{clip: {joint index: {path: (times [K], values [K,C] xyzw)}}} of the figure's clips:
    `walk` (in place, one cycle, looped), `idle` (breathing, feet planted, 2 s) and `wave`
    (the head nods, 1 s: a clip that differs from idle)."""
    clips = {}
    times = np.linspace(0, WALK_DURATION, keys_per_cycle + 1)
    walk = {0: {"translation": ([0.0, WALK_DURATION], [[0, WALK_HIP, 0], [0, WALK_HIP, 0]])}}
    for side, (thigh, shin, foot) in ((0.0, (4, 5, 6)), (0.5, (7, 8, 9))):
        rot = [[], [], []]
        for t in times:
            z, y = walk_foot(t / WALK_DURATION + side)
            for k, angle in enumerate(_leg_angles(z, y - (WALK_HIP - 0.05))):
                rot[k].append(_qx(angle))
        for k, joint in enumerate((thigh, shin, foot)):
            walk[joint] = {"rotation": (times, rot[k])}
    clips["walk"] = walk
    idle_t = np.array([0.0, 1.0, 2.0])
    hips = [0.88, 0.86, 0.88]
    idle = {0: {"translation": (idle_t, [[0, h, 0] for h in hips])}}
    for thigh, shin, foot in ((4, 5, 6), (7, 8, 9)):
        angles = [_leg_angles(0.0, SOLE - (h - 0.05)) for h in hips]
        for k, joint in enumerate((thigh, shin, foot)):
            idle[joint] = {"rotation": (idle_t, [_qx(a[k]) for a in angles])}
    clips["idle"] = idle
    clips["nod"] = {3: {"rotation": ([0.0, 0.5, 1.0], [_qx(0.0), _qx(0.4), _qx(0.0)])}}
    return clips


def write_biped(path, keys_per_cycle=24, t0=0.0, root_motion=False) -> dict:
    """A small walking figure (glTF frame: y up, front +z; 1.78 m tall, soles at y = 0):
    hips, spine, neck, head (with a nose pointing forward), two legs of thigh, shin and
    foot; each body part a tube skinned to one joint; the clips of `biped_clip_keys`, every
    key t0 seconds later (Blender's export keys from frame 1: 1/30 s), and with root_motion
    `walk_root` too: the walk with its hips advancing WALK_STRIDE along the front per cycle
    (Mixamo's walk without "In Place"). Returns those clip keys (their times from 0)."""
    b = Builder()
    G = []
    for j, (t, p) in enumerate(zip(BIPED_REST, BIPED_PARENTS)):
        G.append(np.array(t, float) if p < 0 else G[p] + np.array(t, float))
    for j, name in enumerate(BIPED_JOINTS):
        children = [k for k, p in enumerate(BIPED_PARENTS) if p == j]
        b.node(name=name, translation=list(map(float, BIPED_REST[j])), rotation=[0, 0, 0, 1], scale=[1, 1, 1],
               children=children)
    parts = [((0, 0.82, 0), (0, 1.15, 0), 0.14, 0, (0.5, 0.5, 0.5)), ((0, 1.15, 0), (0, 1.5, 0), 0.14, 1, (0.6, 0.6, 0.6)),
             ((0, 1.5, 0), (0, 1.55, 0), 0.05, 2, (0.8, 0.6, 0.5)), ((0, 1.55, 0), (0, 1.78, 0), 0.1, 3, (0.9, 0.7, 0.6)),
             ((0, 1.66, 0.08), (0, 1.66, 0.16), 0.025, 3, (0.9, 0.2, 0.2))]
    for x, (thigh, shin, foot), colour in ((0.12, (4, 5, 6), (0.8, 0.2, 0.1)), (-0.12, (7, 8, 9), (0.1, 0.3, 0.8))):
        parts += [((x, 0.85, 0), (x, 0.45, 0), 0.06, thigh, colour), ((x, 0.45, 0), (x, 0.07, 0), 0.05, shin, colour),
                  ((x, 0.04, -0.05), (x, 0.04, 0.17), 0.04, foot, (0.2, 0.2, 0.2))]
    verts, faces, joints, colours = [], [], [], []
    for p0, p1, r, joint, colour in parts:
        v, f = tube_between(p0, p1, r)
        faces.append(f + sum(len(x) for x in verts))
        verts.append(v)
        joints.append(np.full(len(v), joint))
        colours.append(np.tile(colour, (len(v), 1)))
    v, f, j = np.concatenate(verts), np.concatenate(faces), np.concatenate(joints)
    J = np.zeros((len(v), 4), int)
    J[:, 0] = j
    W = np.zeros((len(v), 4), np.float32)
    W[:, 0] = 1.0
    attrs = {"POSITION": b.accessor(v), "JOINTS_0": b.accessor(J, UBYTE, "VEC4"), "WEIGHTS_0": b.accessor(W, FLOAT, "VEC4"),
             "COLOR_0": b.accessor(np.concatenate(colours).astype(np.float32), FLOAT, "VEC3")}
    ind = b.accessor(f.reshape(-1).astype(np.uint16), USHORT, "SCALAR")
    b.g.meshes.append(pygltflib.Mesh(name="body", primitives=[
        pygltflib.Primitive(attributes=pygltflib.Attributes(**attrs), indices=ind)]))
    body = b.node(name="body", mesh=0, skin=0)
    ibm = np.array([np.linalg.inv(trs(G[k], [0, 0, 0, 1], [1, 1, 1])) for k in range(len(BIPED_JOINTS))])
    b.g.skins.append(pygltflib.Skin(joints=list(range(len(BIPED_JOINTS))), inverseBindMatrices=b.accessor(
        np.array([m.T.reshape(-1) for m in ibm]), FLOAT, "MAT4")))
    b.g.scenes.append(pygltflib.Scene(nodes=[0, body]))
    b.g.scene = 0
    clips = biped_clip_keys(keys_per_cycle)
    if root_motion:
        times = np.linspace(0, WALK_DURATION, keys_per_cycle + 1)
        clips["walk_root"] = {**clips["walk"], 0: {"translation": (
            times, [[0, WALK_HIP, WALK_STRIDE * t / WALK_DURATION] for t in times])}}
    for name, channels in clips.items():
        samplers, chans = [], []
        for joint, paths in channels.items():
            for pth, (times, values) in paths.items():
                values = np.asarray(values, np.float32)
                inp = b.accessor(np.asarray(np.asarray(times) + t0, np.float32), FLOAT, "SCALAR")
                out = b.accessor(values, FLOAT, "VEC4" if pth == "rotation" else "VEC3")
                samplers.append(pygltflib.AnimationSampler(input=inp, output=out, interpolation="LINEAR"))
                chans.append(pygltflib.AnimationChannel(sampler=len(samplers) - 1, target=pygltflib.AnimationChannelTarget(
                    node=joint, path=pth)))
        b.g.animations.append(pygltflib.Animation(name=name, samplers=samplers, channels=chans))
    b.save(path)
    return clips
