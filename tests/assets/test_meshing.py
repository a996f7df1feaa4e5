"""Scene meshing: depth fusion of rendered views puts the mesh on the true surfaces (a floor at
z = 0 and a box on it), with their colours, in the scene's frame; files, CLI, camera files and
the cached collision mesh."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from splatfilm.scene.cameras import Cameras
from splatfilm.cli import main
from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.io.camera_files import write_transforms_json
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.io.images import srgb_to_linear
from splatfilm.assets.mesh_import import default_axes
from splatfilm.assets.meshing import (
    MeshSettings,
    look_at_viewmat,
    collision_mesh,
    gltf_root,
    mesh_arrays,
    mesh_scene,
    orbit_views,
    surface_depth,
    write_mesh,
)
from splatfilm.io.asset_files import collision_mesh_path
from splatfilm.render import rasterization
from splatfilm.render.projection import quat_scale_to_covar
from splatfilm.assets.open3d_loader import load_open3d
from splatfilm.scene.transforms import rotmat_to_quat

FLOOR = np.array([0.8, 0.6, 0.3])
BOX = np.array([0.2, 0.3, 0.9])
VOXEL = 0.03
FAST = MeshSettings(voxel=VOXEL, views=20, width=128, height=96)


def _face(origin, u, v, spacing, color) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    origin, u, v = map(np.asarray, (origin, u, v))
    nu, nv = max(2, round(np.linalg.norm(u) / spacing)), max(2, round(np.linalg.norm(v) / spacing))
    s, t = np.meshgrid((np.arange(nu) + 0.5) / nu, (np.arange(nv) + 0.5) / nv, indexing="ij")
    pts = origin + s.reshape(-1, 1) * u + t.reshape(-1, 1) * v
    n = np.cross(u, v) / np.linalg.norm(np.cross(u, v))
    return pts, np.broadcast_to(n, pts.shape), np.broadcast_to(color, pts.shape)


def box_on_floor() -> Gaussians:
    """A 2 x 2 m floor at z = 0 and a 0.5 m box standing on it at the origin: flat, opaque,
    overlapping Gaussians (like a fitted surface)."""
    sp = 0.04
    parts = [_face([-1, -1, 0], [2, 0, 0], [0, 2, 0], sp, FLOOR),
             _face([-0.25, -0.25, 0.5], [0.5, 0, 0], [0, 0.5, 0], sp, BOX)]
    for origin, u in (([-0.25, -0.25, 0], [0.5, 0, 0]), ([0.25, -0.25, 0], [0, 0.5, 0]),
                      ([0.25, 0.25, 0], [-0.5, 0, 0]), ([-0.25, 0.25, 0], [0, -0.5, 0])):
        parts.append(_face(origin, u, [0, 0, 0.5], sp, BOX))
    pts, normals, colors = (np.concatenate(x) for x in zip(*parts))
    helper = np.where(np.abs(normals[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    t1 = np.cross(helper, normals)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    R = np.stack([t1, np.cross(normals, t1), normals], axis=2)
    quats = rotmat_to_quat(torch.from_numpy(R)).numpy()
    scales = np.tile([0.6 * sp, 0.6 * sp, 0.002], (len(pts), 1))
    t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    return Gaussians.from_activated(t(pts), t(quats), t(scales), t(np.full(len(pts), 0.95)), colors=t(colors))


def surface_distance(p: np.ndarray) -> np.ndarray:
    """Distance [N] of points [N,3] to the nearest true surface: the floor square or the box."""
    floor_d = np.linalg.norm(np.stack([np.maximum(np.abs(p[:, 0]) - 1, 0), np.maximum(np.abs(p[:, 1]) - 1, 0),
                                       p[:, 2]], 1), axis=1)
    # Unsigned distance to the box [-0.25, 0.25]^2 x [0, 0.5] surface.
    c, h = np.array([0, 0, 0.25]), np.array([0.25, 0.25, 0.25])
    q = np.abs(p - c) - h
    outside = np.linalg.norm(np.maximum(q, 0), axis=1)
    inside = -np.minimum(q.max(axis=1), 0)
    return np.minimum(floor_d, np.where(q.max(axis=1) > 0, outside, inside))


@pytest.fixture(scope="module")
def scene_mesh():
    g = box_on_floor()
    return g, mesh_scene(g, None, FAST, progress=False)


def test_mesh_lies_on_the_true_surfaces(scene_mesh):
    _, mesh = scene_mesh
    v, f, c = mesh_arrays(mesh)
    assert len(f) > 1000
    d = surface_distance(v)
    assert np.mean(d < 2 * VOXEL) > 0.98, np.percentile(d, [50, 90, 99])
    # On the surfaces, not in front of them: fused from expected depth (the blend of the
    # Gaussians' centre depths), the mesh lay 2 cm (about the splats' 2.4 cm footprint sigma)
    # above the floor and the box's top, as Gaussians nearer an oblique camera come first.
    assert np.median(d) < 0.003
    # The floor around the box: flat at z = 0.
    on_floor = (np.abs(v[:, 2]) < 0.1) & (np.maximum(np.abs(v[:, 0]), np.abs(v[:, 1])) > 0.4)
    assert on_floor.sum() > 500 and np.abs(np.median(v[on_floor, 2])) < 0.002
    assert np.percentile(v[on_floor, 2], 90) - np.percentile(v[on_floor, 2], 10) < VOXEL
    # Bounds: the floor's square, up to the box's top (an edge overhangs where its splats are
    # drawn past it, by up to about two footprint sigmas).
    assert v.min(axis=0) == pytest.approx([-1, -1, 0], abs=0.08)
    assert v.max(axis=0) == pytest.approx([1, 1, 0.5], abs=0.08)
    # Colours: rendered floor and box colours where they belong.
    top = (v[:, 2] > 0.45) & (np.maximum(np.abs(v[:, 0]), np.abs(v[:, 1])) < 0.2)
    assert np.median(v[top, 2]) == pytest.approx(0.5, abs=0.003)
    assert np.abs(np.median(c[on_floor], axis=0) - FLOOR).max() < 0.08
    assert np.abs(np.median(c[top], axis=0) - BOX).max() < 0.08


def test_surface_depth_lies_on_a_floor_seen_obliquely():
    """The depth meshing fuses lies on a floor of flat splats (4 cm apart, 2.4 cm sigma) seen
    20 degrees above it, within a millimetre, where the renderer's expected depth is more than
    a centimetre in front of it."""
    sp = 0.04
    pts, _, colors = _face([-2, -2, 0], [4, 0, 0], [0, 4, 0], sp, FLOOR)
    t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    n = len(pts)
    g = Gaussians.from_activated(t(pts), t(np.tile([1.0, 0, 0, 0], (n, 1))),
                                 t(np.tile([0.6 * sp, 0.6 * sp, 0.002], (n, 1))), t(np.full(n, 0.95)), colors=t(colors))
    eye = np.array([0.0, -4 * np.cos(np.radians(20)), 4 * np.sin(np.radians(20))])
    V = look_at_viewmat(eye, np.zeros(3), np.array([0.0, 0.0, 1.0]))
    K = np.array([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]])
    rgb, alpha, depth = surface_depth(g, V, K, 160, 120, backend="cpu")
    with torch.no_grad():
        expected = rasterization(g, t(V[None]), t(K[None]), 160, 120, backend="cpu").depth[0, ..., 0].double().numpy()
    # Each pixel's ray meets the floor z = 0 at this camera z (rays with unit camera z).
    u, v = np.meshgrid(np.arange(160) + 0.5, np.arange(120) + 0.5)
    rays = np.stack([(u - 80) / 200.0, (v - 60) / 200.0, np.ones_like(u)], -1) @ V[:3, :3]  # in the world
    truth = -eye[2] / rays[..., 2]
    hit = eye + truth[..., None] * rays
    seen = (alpha > 0.99) & (np.abs(hit[..., :2]).max(axis=-1) < 1.5)
    height = np.abs(rays[..., 2])  # metres above the floor per metre of camera z
    above = (truth - depth)[seen] * height[seen]
    assert seen.sum() > 5000 and np.median(np.abs(above)) < 0.001 and np.percentile(np.abs(above), 95) < 0.002
    assert np.median((truth - expected)[seen] * height[seen]) > 0.01
    assert rgb[seen].mean(axis=0) == pytest.approx(FLOOR, abs=0.02)


def _tilted_layer(rng, z: float, tilt_deg: float, opacity: float, sp: float = 0.04) -> Gaussians:
    """A 4 x 4 m layer of flat splats (4 cm apart, 2.4 cm sigma, 2 mm thick) centred on the
    plane z, each tilted `tilt_deg` from it at a random azimuth, as a fit leaves them."""
    pts, _, colors = _face([-2, -2, z], [4, 0, 0], [0, 4, 0], sp, FLOOR)
    n = len(pts)
    az, t = rng.uniform(0, 2 * np.pi, n), np.radians(tilt_deg)
    normals = np.c_[np.sin(t) * np.cos(az), np.sin(t) * np.sin(az), np.full(n, np.cos(t))]
    t1 = np.cross([1.0, 0.0, 0.0], normals)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    quats = rotmat_to_quat(torch.from_numpy(np.stack([t1, np.cross(normals, t1), normals], axis=2))).numpy()
    f = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    return Gaussians.from_activated(f(pts), f(quats), f(np.tile([0.6 * sp, 0.6 * sp, 0.002], (n, 1))),
                                    f(np.full(n, opacity)), colors=f(colors))


def test_surface_depth_meets_a_semi_transparent_layer_of_tilted_splats_at_its_front():
    """A floor as a fit leaves it (scenes/set's rug): splats tilted 17 degrees from it at random
    azimuths, half transparent, with more of them 3 cm under it, seen through the first. The
    depth lies on the floor, within 2 mm (median; 1.4 and 0.2 mm) seen 20 and 35 degrees above
    it: blended with the Gaussians' own weights, the splats seen through pulled it 3.1 and
    4.9 mm under the floor (on the fitted set, its rug's mesh lay 13 mm under the rug)."""
    rng = np.random.default_rng(0)
    top, under = _tilted_layer(rng, 0.0, 17, 0.5), _tilted_layer(rng, -0.03, 17, 0.5)
    g = Gaussians(*(torch.cat([getattr(top, k), getattr(under, k)])
                    for k in ("means", "quats", "scales", "opacities", "sh0", "shN")))
    W, H, f = 160, 120, 200.0
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
    for elevation in (20, 35):
        eye = 4 * np.array([0.0, -np.cos(np.radians(elevation)), np.sin(np.radians(elevation))])
        V = look_at_viewmat(eye, np.zeros(3), np.array([0.0, 0.0, 1.0]))
        rgb, alpha, depth = surface_depth(g, V, K, W, H, backend="cpu")
        u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
        rays = np.stack([(u - W / 2) / f, (v - H / 2) / f, np.ones_like(u)], -1) @ V[:3, :3]  # in the world
        truth = -eye[2] / rays[..., 2]
        hit = eye + truth[..., None] * rays
        seen = (alpha > 0.9) & (np.abs(hit[..., :2]).max(axis=-1) < 1.5)
        above = (truth - depth)[seen] * np.abs(rays[..., 2])[seen]
        assert seen.sum() > 5000 and abs(np.median(above)) < 0.002, (elevation, np.percentile(above, [10, 50, 90]))
        # Colour and coverage are the Gaussians' own, not the denser ones'.
        assert (rgb[seen] / alpha[seen, None]).mean(axis=0) == pytest.approx(FLOOR, abs=0.02)
        assert 0.9 < np.median(alpha[seen]) < 0.995


def test_meshes_repeat_exactly():
    """The same scene meshes to the same arrays, in the same order, every time: vertices by
    position, triangles by vertex. (The TSDF's parallel surface extraction lists them in
    another order from run to run, and the physics against the mesh depends on the order.)"""
    g = box_on_floor()
    coarse = MeshSettings(voxel=0.04, views=8, width=96, height=72)
    first = mesh_arrays(mesh_scene(g, None, coarse, progress=False))
    v, f, _ = first
    assert np.array_equal(np.lexsort(v.T[::-1]), np.arange(len(v)))
    assert np.array_equal(np.lexsort(f.T[::-1]), np.arange(len(f)))
    again = mesh_arrays(mesh_scene(g, None, coarse, progress=False))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_the_dense_gaussians_are_made_once_a_mesh(monkeypatch):
    """surface_depth made the Gaussians SURFACE_DENSITY times as dense (and the means in float64)
    again for every view it fused; they are the same for every view."""
    from splatfilm.assets import meshing

    made = []

    class Counted(Gaussians):
        def __post_init__(self):
            made.append(len(self.means))
            super().__post_init__()

    monkeypatch.setattr(meshing, "Gaussians", Counted)
    g = box_on_floor()
    coarse = MeshSettings(voxel=0.04, views=6, width=64, height=48)
    mesh_scene(g, None, coarse, progress=False)
    assert made == [len(g)], made


def test_write_formats(scene_mesh, tmp_path):
    import trimesh

    o3d = load_open3d()
    _, mesh = scene_mesh
    v, f, c = mesh_arrays(mesh)
    path = tmp_path / "m.ply"
    write_mesh(mesh, path)
    back = o3d.io.read_triangle_mesh(str(path))
    assert len(back.triangles) == len(f) and back.has_vertex_colors()
    assert np.asarray(back.vertices).min(axis=0) == pytest.approx(v.min(axis=0), abs=1e-4)
    # OBJ: y up, as Blender writes and reads it; import-mesh's default takes it back upright.
    write_mesh(mesh, tmp_path / "m.obj")
    back = o3d.io.read_triangle_mesh(str(tmp_path / "m.obj"))
    assert len(back.triangles) == len(f)
    turned = v @ gltf_root()[:3, :3].T  # open3d's OBJ reader orders vertices its own way: compare sorted
    assert np.abs(np.sort(np.asarray(back.vertices), axis=0) - np.sort(turned, axis=0)).max() < 1e-4
    assert default_axes(tmp_path / "m.obj", None, None)[0].tolist() == [0.0, 1.0, 0.0]
    # glTF: y up, the scene's z-up frame under a root node that turns z to y.
    write_mesh(mesh, tmp_path / "m.glb")
    glb = trimesh.load(tmp_path / "m.glb", force="mesh")
    assert len(glb.faces) == len(f)
    assert np.abs(glb.vertices - v @ gltf_root()[:3, :3].T).max() < 1e-5
    assert glb.vertices[:, 1].min() == pytest.approx(v[:, 2].min(), abs=1e-5)  # the floor at y = 0
    # COLOR_0 is linear, as glTF defines it (float: 8 bits would band linear shadows).
    (part,) = trimesh.load(tmp_path / "m.glb").geometry.values()  # force="mesh" drops COLOR_0 with a material
    color = np.asarray(part.visual.vertex_attributes["color"])
    assert color.dtype == np.float32 and np.abs(color - srgb_to_linear(c)).max() < 1e-6
    with pytest.raises(SplatfilmError, match=r"m\.stl: unknown mesh format"):
        write_mesh(mesh, tmp_path / "m.stl")


def _floor_normal(path, mesh) -> np.ndarray:
    """The area-weighted normal [3] (unit), in the glTF's flattened coordinates, of the floor's
    triangles of `mesh` (the open3d mesh of box_on_floor written to the .glb at `path`)."""
    import trimesh

    v, f, _ = mesh_arrays(mesh)
    floor = (np.abs(v[f, 2]) < 0.01).all(axis=1) & (np.abs(v[f, :2]).max(axis=(1, 2)) > 0.4)
    glb = trimesh.load(path, force="mesh", process=False)
    assert np.array_equal(glb.faces, f)
    total = (glb.face_normals[floor] * glb.area_faces[floor, None]).sum(axis=0)
    return total / np.linalg.norm(total)


def test_glb_stands_on_the_ground_not_on_the_cameras_mean_up(scene_mesh, tmp_path, monkeypatch, capsys):
    """`fit` records frame.up as the capture cameras' mean up: 12.3 degrees off the floor's
    normal on scenes/set, and the .glb was turned by it (its floor 12.2 degrees off +y, Blender's
    import 0.38 m from the scene's frame). The sidecar's ground normal is the measured up: the
    .glb's floor is +y, and the orbit views circle about the same up."""
    import json

    from splatfilm.assets import meshing

    _, mesh = scene_mesh
    tilted = [0.0, np.sin(np.radians(12)), np.cos(np.radians(12))]
    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    (tmp_path / "set.json").write_text(json.dumps({"asset": "set.ply", "frame": {"up": tilted},
                                                   "ground": {"normal": [0.0, 0.0, 1.0], "offset": 0.0}}))
    ups = []
    monkeypatch.setattr(meshing, "mesh_scene", lambda g, cams, s, up, *a: ups.append(up) or mesh)
    assert main(["mesh", str(scene), "-o", str(tmp_path / "set.glb"), "--voxel", str(VOXEL)]) == 0
    normal = _floor_normal(tmp_path / "set.glb", mesh)
    assert np.degrees(np.arccos(normal[1])) < 0.5, normal
    np.testing.assert_allclose(ups[0], [0, 0, 1], atol=1e-12)  # the orbit views' up
    # Without a ground, frame.up is the best known.
    (tmp_path / "set.json").write_text(json.dumps({"asset": "set.ply", "frame": {"up": tilted}}))
    assert main(["mesh", str(scene), "-o", str(tmp_path / "set.glb"), "--voxel", str(VOXEL)]) == 0
    np.testing.assert_allclose(ups[1], tilted, atol=1e-12)
    normal = _floor_normal(tmp_path / "set.glb", mesh)
    assert np.degrees(np.arccos(normal[1])) == pytest.approx(12, abs=0.5)


def test_glb_and_obj_are_in_metres_where_the_scale_is_known(scene_mesh, tmp_path, monkeypatch, capsys):
    """glTF's unit is the metre (and Blender reads an OBJ's so): `mesh` wrote scene units
    whatever the sidecar's frame.scale_to_metres said. Scaled where it is known; a note says
    the scale is arbitrary where it is not. A .ply stays in the scene's units."""
    import json

    import trimesh

    from splatfilm.assets import meshing

    _, mesh = scene_mesh
    v = mesh_arrays(mesh)[0]
    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    monkeypatch.setattr(meshing, "mesh_scene", lambda *a: mesh)
    (tmp_path / "set.json").write_text(json.dumps({"asset": "set.ply", "frame": {"scale_to_metres": 2.5}}))
    for name in ("set.glb", "set.obj", "set.mesh.ply"):
        capsys.readouterr()
        assert main(["mesh", str(scene), "-o", str(tmp_path / name), "--voxel", str(VOXEL)]) == 0
        assert "note:" not in capsys.readouterr().err
    R = gltf_root()[:3, :3]
    glb = trimesh.load(tmp_path / "set.glb", force="mesh").vertices
    assert np.abs(glb - 2.5 * v @ R.T).max() < 1e-5
    obj = np.asarray(load_open3d().io.read_triangle_mesh(str(tmp_path / "set.obj")).vertices)
    assert np.abs(np.sort(obj, axis=0) - np.sort(2.5 * v @ R.T, axis=0)).max() < 1e-4
    ply = np.asarray(load_open3d().io.read_triangle_mesh(str(tmp_path / "set.mesh.ply")).vertices)
    assert np.abs(ply - v).max() < 1e-6
    (tmp_path / "set.json").write_text(json.dumps({"asset": "set.ply", "frame": {"scale_to_metres": None}}))
    assert main(["mesh", str(scene), "-o", str(tmp_path / "set.glb"), "--voxel", str(VOXEL)]) == 0
    assert np.abs(trimesh.load(tmp_path / "set.glb", force="mesh").vertices - v @ R.T).max() < 1e-5
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]  # among status lines
    assert len(notes) == 1 and "scale to metres is unknown" in notes[0], notes


def test_glb_colours_survive_import_mesh(tmp_path, capsys):
    """glTF's COLOR_0 is linear; `mesh` wrote the rendered sRGB values there, so every reader
    (import-mesh, Blender, three.js) showed them brighter: the set's mean 0.42 came back 0.67.
    Two quads, dark and light, written and imported again: the colours within 0.02 from .glb,
    .obj and .ply alike (OBJ and PLY hold sRGB, as their readers take them). The .glb has
    normals and an unlit, non-metallic material (none: the default is metallic 1)."""
    from splatfilm.assets.gltf_check import read_gltf_json

    o3d = load_open3d()
    colours = np.array([[0.1, 0.05, 0.02], [0.8, 0.6, 0.3]])
    quad = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float64)
    v = np.concatenate([quad, quad + [2.0, 0, 0]])
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]], dtype=np.int32)
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(f))
    mesh.vertex_colors = o3d.utility.Vector3dVector(np.repeat(colours, 4, axis=0))
    mesh.compute_vertex_normals()
    for name in ("m.glb", "m.obj", "m.ply"):
        write_mesh(mesh, tmp_path / name)
        out = tmp_path / f"{name.replace('.', '_')}.ply"
        capsys.readouterr()
        assert main(["import-mesh", str(tmp_path / name), "-o", str(out), "--count", "2000"]) == 0
        said = capsys.readouterr().out
        assert "colour from vertex" in said, said  # the .glb's said "material"
        g = load_gaussians(out)
        rgb = g.sh0[:, 0].double().numpy() * 0.28209479177387814 + 0.5
        x = g.means[:, 0].double().numpy()
        for colour, side in zip(colours, (x < 1.5, x > 1.5)):
            assert side.sum() > 500 and np.abs(rgb[side] - colour).max() < 0.02, (name, rgb[side].mean(axis=0))
    doc, _ = read_gltf_json(tmp_path / "m.glb", (tmp_path / "m.glb").read_bytes())
    primitive = doc["meshes"][0]["primitives"][0]
    assert {"NORMAL", "COLOR_0"} <= set(primitive["attributes"])
    material = doc["materials"][primitive["material"]]
    assert material["pbrMetallicRoughness"]["metallicFactor"] == 0 and "KHR_materials_unlit" in material["extensions"]


def test_tsdf_settings_on_the_command_line(tmp_path, monkeypatch):
    """--trunc, --min-alpha and --min-component (open3d's and ns-export tsdf's settings) reach
    the TSDF: a truncation of 1 voxel meshes the scene otherwise than the default 4."""
    import trimesh

    from splatfilm.assets import meshing

    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    coarse = ["--voxel", "0.06", "--views", "6", "--width", "64", "--height", "48", "--backend", "cpu"]
    assert main(["mesh", str(scene), "-o", str(tmp_path / "a.glb"), *coarse]) == 0
    assert main(["mesh", str(scene), "-o", str(tmp_path / "b.glb"), *coarse, "--trunc", "1"]) == 0
    a, b = (trimesh.load(tmp_path / n, force="mesh") for n in ("a.glb", "b.glb"))
    assert len(a.faces) > 100 and len(b.faces) > 100 and len(a.faces) != len(b.faces)
    seen = []
    monkeypatch.setattr(meshing, "mesh_scene", lambda g, cams, s, *a: seen.append(s) or mesh_scene(g, cams, s, *a))
    assert main(["mesh", str(scene), "-o", str(tmp_path / "c.glb"), *coarse, "--trunc", "2.5", "--min-alpha", "0.8",
                 "--min-component", "7"]) == 0
    assert (seen[0].trunc_voxels, seen[0].min_alpha, seen[0].min_component) == (2.5, 0.8, 7)


def test_orbit_views_look_at_the_scene():
    lo, hi = np.array([-1.0, -1, 0]), np.array([1.0, 1, 0.5])
    cams = orbit_views(lo, hi, 12, 64, 48)
    centre = np.array([0, 0, 0.25])
    for V in cams.viewmats:
        p = V[:3, :3] @ centre + V[:3, 3]
        assert p[0] == pytest.approx(0, abs=1e-9) and p[1] == pytest.approx(0, abs=1e-9) and p[2] > 0
        eye = -V[:3, :3].T @ V[:3, 3]
        assert eye[2] > centre[2]  # above: the upper half of the sphere


def test_cli_with_a_camera_file(tmp_path, capsys):
    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    cams = orbit_views(np.array([-1.0, -1, 0]), np.array([1.0, 1, 0.5]), 10, 200, 150)
    write_transforms_json(tmp_path / "transforms.json", Cameras(cams.viewmats, cams.Ks, 200, 150))
    out = tmp_path / "set.glb"
    assert main(["mesh", str(scene), "-o", str(out), "--cameras", str(tmp_path / "transforms.json"),
                 "--voxel", "0.04", "--width", "100"]) == 0
    assert f"10 views from {tmp_path / 'transforms.json'}" in capsys.readouterr().out
    import trimesh

    v = trimesh.load(out, force="mesh").vertices @ gltf_root()[:3, :3]  # back from glTF's y up
    assert np.mean(surface_distance(v) < 0.08) > 0.97


def test_collision_mesh_is_cached(tmp_path, monkeypatch):
    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    coarse = MeshSettings(voxel=0.06, views=8, width=64, height=48)
    v1, f1 = collision_mesh(scene, coarse, progress=False)
    assert len(f1) > 100
    assert collision_mesh_path(scene).exists() and collision_mesh_path(scene).with_suffix(".json").exists()
    from splatfilm.assets import meshing

    def fail(*a, **k):
        raise AssertionError("meshed again")

    monkeypatch.setattr(meshing, "mesh_scene", fail)

    def no_open3d():  # a render node given the cached mesh (the GPU check's machine) has none
        raise SplatfilmError("open3d is needed here and does not import")

    with monkeypatch.context() as m:
        m.setattr(meshing, "load_open3d", no_open3d)
        v2, f2 = collision_mesh(scene, coarse, progress=False)
    assert np.array_equal(v1, v2) and np.array_equal(f1, f2)
    # Other settings, or other scene contents: meshed again.
    with pytest.raises(AssertionError, match="meshed again"):
        collision_mesh(scene, MeshSettings(voxel=0.05, views=8, width=64, height=48), progress=False)
    save_gaussians(scene, box_on_floor().transformed(translation=torch.tensor([0.0, 0.0, 0.1])))
    with pytest.raises(AssertionError, match="meshed again"):
        collision_mesh(scene, coarse, progress=False)


def test_two_runs_meshing_one_set_at_once_do_not_collide(tmp_path, monkeypatch):
    """Two runs meshing the same set at once (two films, or render workers, on one set) wrote
    the same temporary file (.set.collision.obj.tmp.obj): the later rename found it gone (a
    traceback), or moved the other run's half-written mesh into place."""
    from splatfilm.assets import meshing

    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    coarse = MeshSettings(voxel=0.06, views=8, width=64, height=48)
    o3d = meshing.load_open3d()
    real, written, other = o3d.io.write_triangle_mesh, [], []

    def write(path, mesh, **options):
        written.append(path)
        ok = real(path, mesh, **options)
        if len(written) == 1:  # while this run's mesh waits for its rename, another run meshes the set
            other.append(collision_mesh(scene, coarse, progress=False))
        return ok

    monkeypatch.setattr(o3d.io, "write_triangle_mesh", write)
    v, f = collision_mesh(scene, coarse, progress=False)
    assert len(written) == 2 and written[0] != written[1]
    assert np.array_equal(v, other[0][0]) and np.array_equal(f, other[0][1]) and len(f) > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.collision.json", "set.collision.obj", "set.ply"]
    assert "object name: set.collision\n" in collision_mesh_path(scene).read_text()  # not a temporary name


def test_collision_mesh_is_made_again_when_meshing_changes(tmp_path, monkeypatch):
    """A collision mesh cached by an older way of meshing (one fused from expected depth, 2-3 cm
    in front of the set's surfaces) is not reused."""
    from splatfilm.assets import meshing

    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    coarse = MeshSettings(voxel=0.06, views=8, width=64, height=48)
    collision_mesh(scene, coarse, progress=False)
    real, seen = meshing.mesh_scene, []
    monkeypatch.setattr(meshing, "mesh_scene", lambda *a, **k: seen.append(1) or real(*a, **k))
    collision_mesh(scene, coarse, progress=False)
    assert not seen
    monkeypatch.setattr(meshing, "COLLISION_MESH_VERSION", meshing.COLLISION_MESH_VERSION - 1)
    collision_mesh(scene, coarse, progress=False)
    assert seen


def test_collision_mesh_renders_from_the_capture_cameras_recorded_beside_the_scene(tmp_path, monkeypatch):
    from splatfilm.assets import meshing
    from splatfilm.io.asset_files import capture_cameras_path

    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    coarse = MeshSettings(voxel=0.06, views=8, width=64, height=48)
    seen = []
    real = meshing.mesh_scene
    monkeypatch.setattr(meshing, "mesh_scene", lambda g, cams, *a, **k: seen.append(cams) or real(g, cams, *a, **k))
    collision_mesh(scene, coarse, progress=False)
    assert seen[-1] is None  # no cameras recorded: orbit views
    cams = orbit_views(np.array([-1.0, -1, 0]), np.array([1.0, 1, 0.5]), 5, 200, 150)
    write_transforms_json(capture_cameras_path(scene), Cameras(cams.viewmats, cams.Ks, 200, 150))
    collision_mesh(scene, coarse, progress=False)  # new cameras: meshed again, from them
    assert len(seen) == 2 and len(seen[-1]) == 5
    collision_mesh(scene, coarse, progress=False)
    assert len(seen) == 2  # and cached


def test_surface_depth_renders_in_the_scenes_rasterize_mode():
    """An antialiased scene's small or thin Gaussians render fainter than classic mode draws
    them, and surface_depth's alpha decides which pixels are fused (min_alpha 0.5). A 3 mm
    cable seen from 3 m (0.05 px across) rendered classic at alpha 0.999 over 68 pixels and was
    meshed; antialiased, as such a scene renders, it shows at 0.10 and is not."""
    from helpers import splats

    x = np.arange(-1, 1, 0.01)
    g = splats(np.c_[x, np.zeros_like(x), np.full_like(x, 0.5)], size=0.003, opacity=0.9)
    g = Gaussians(g.means, g.quats, g.scales + torch.log(torch.tensor([3.0, 1.0, 1.0])), g.opacities, g.sh0, g.shN)
    w, h = 64, 48
    V = look_at_viewmat(np.array([0.0, -3.0, 0.5]), np.array([0.0, 0.0, 0.5]), np.array([0.0, 0.0, 1.0]))
    K = np.array([[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]])
    vt, kt = torch.tensor(V[None], dtype=torch.float32), torch.tensor(K[None], dtype=torch.float32)
    for mode, fused in (("classic", True), ("antialiased", False)):
        rgb, alpha, depth = surface_depth(g, V, K, w, h, "cpu", rasterize_mode=mode)
        out = rasterization(g, vt, kt, w, h, backend="cpu", rasterize_mode=mode)
        np.testing.assert_array_equal(alpha, out.alpha[0, ..., 0].double().numpy())
        np.testing.assert_array_equal(rgb, out.rgb[0].double().numpy())
        assert bool((alpha >= MeshSettings().min_alpha).any()) == fused, (mode, alpha.max())
        seen = alpha > 0.05
        assert seen.sum() > 60 and np.abs(depth[seen] - 3.0).max() < 5e-3  # on the cable either way
    assert surface_depth(g, V, K, w, h, "cpu")[1].max() > 0.99  # classic by default


def test_mesh_and_collision_meshes_render_a_scene_in_its_rasterize_mode(tmp_path, monkeypatch, capsys):
    """`mesh` and the collision mesh rendered every scene classic; they take the asset's mode
    (its sidecar's rasterize_mode, an .spz flag) or a film's for it. A classic mesh's cache
    record is the one it always had; an antialiased one's says so, and is not the classic's."""
    import json

    from splatfilm.assets import meshing
    from splatfilm.assets.sidecar import Sidecar
    from splatfilm.io.asset_files import sidecar_path

    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    coarse = MeshSettings(voxel=0.06, views=8, width=64, height=48)
    real, modes = meshing.rasterization, []
    monkeypatch.setattr(meshing, "rasterization",
                        lambda *a, **k: modes.append(k.get("rasterize_mode", "classic")) or real(*a, **k))
    record = collision_mesh_path(scene).with_suffix(".json")
    collision_mesh(scene, coarse, progress=False)
    assert modes and set(modes) == {"classic"} and "rasterize_mode" not in json.loads(record.read_text())
    Sidecar({"rasterize_mode": "antialiased"}).write(sidecar_path(scene))
    modes.clear()
    collision_mesh(scene, coarse, progress=False)  # the file's own mode: meshed again, in it
    assert len(modes) == 2 * 8 and set(modes) == {"antialiased"}
    assert json.loads(record.read_text())["rasterize_mode"] == "antialiased"
    modes.clear()
    collision_mesh(scene, coarse, progress=False)
    assert not modes  # cached
    collision_mesh(scene, coarse, progress=False, rasterize_mode="classic")  # a film's override
    override = record.with_name(f"{collision_mesh_path(scene).stem}-classic.json")
    assert modes and set(modes) == {"classic"} and "rasterize_mode" not in json.loads(override.read_text())
    # Each has a file of its own: two films rendering the set either way do not mesh it in turn.
    assert json.loads(record.read_text())["rasterize_mode"] == "antialiased"
    modes.clear()
    collision_mesh(scene, coarse, progress=False)
    collision_mesh(scene, coarse, progress=False, rasterize_mode="classic")
    assert not modes
    assert main(["mesh", str(scene), "-o", str(tmp_path / "set.mesh.ply"), "--voxel", "0.06", "--views", "4",
                 "--width", "64", "--height", "48", "--backend", "cpu"]) == 0
    assert len(modes) == 2 * 4 and set(modes) == {"antialiased"}


def test_mesh_reruns_reuse_the_integrated_mesh_and_write_the_same_bytes(tmp_path, monkeypatch, capsys):
    """`splatfilm mesh` integrated every view again on a rerun with the same inputs (28 s twice
    for one set, the same .glb); its TSDF mesh is kept beside the scene under their key."""
    from splatfilm.assets import meshing
    from splatfilm.io.asset_files import scene_mesh_cache_path

    scene = tmp_path / "set.ply"
    save_gaussians(scene, box_on_floor())
    calls = []
    fuse = meshing.fuse_mesh
    monkeypatch.setattr(meshing, "fuse_mesh", lambda *a, **k: calls.append(1) or fuse(*a, **k))
    args = ["mesh", str(scene), "--views", "6", "--width", "64", "--height", "48", "--voxel", "0.06"]
    outputs = {}
    for name in ("a.glb", "b.glb", "c.ply"):
        assert main([*args, "-o", str(tmp_path / name)]) == 0
        outputs[name] = (tmp_path / name).read_bytes()
    assert len(calls) == 1 and outputs["a.glb"] == outputs["b.glb"]
    assert "is used" in capsys.readouterr().err
    # Another setting, or the scene changed: integrated again.
    assert main([*args[:-1], "0.05", "-o", str(tmp_path / "d.glb")]) == 0
    assert len(calls) == 2
    save_gaussians(scene, box_on_floor().transformed(translation=torch.tensor([0.0, 0.0, 0.1])))
    assert main([*args, "-o", str(tmp_path / "e.glb")]) == 0
    assert len(calls) == 3
    # A mesh made afresh writes the bytes the cached one does.
    scene_mesh_cache_path(scene).unlink()
    save_gaussians(scene, box_on_floor())
    assert main([*args, "-o", str(tmp_path / "f.ply")]) == 0
    assert len(calls) == 4 and (tmp_path / "f.ply").read_bytes() == outputs["c.ply"]


def test_a_read_only_sets_collision_mesh_is_cached_under_the_cache_root(tmp_path, monkeypatch):
    """A published set on a read-only mount: its collision mesh was meshed (56 s for the
    bundled set) and then could not be written beside it (exit 2, on every render node). Now
    it is told before meshing where there is nowhere to keep it, kept under the cache root
    where there is, and one published beside the set is read in place."""
    from helpers import read_only
    from splatfilm.assets import meshing
    from splatfilm.io.cache import CACHE_ENV, cache_root_for

    monkeypatch.delenv(CACHE_ENV, raising=False)
    ro, out = tmp_path / "ro", tmp_path / "out"
    ro.mkdir()
    scene = ro / "set.ply"
    save_gaussians(scene, box_on_floor())
    coarse = MeshSettings(voxel=0.06, views=8, width=64, height=48)
    read_only(monkeypatch, ro)
    real, meshed = meshing.mesh_scene, []
    monkeypatch.setattr(meshing, "mesh_scene", lambda *a, **k: meshed.append(1) or real(*a, **k))
    with pytest.raises(SplatfilmError, match=f"{ro}: cannot write the cache set.collision.json there"):
        collision_mesh(scene, coarse, progress=False)
    assert not meshed  # before the expensive work
    with cache_root_for(None, out / ".splatfilm-cache"):
        v1, f1 = collision_mesh(scene, coarse, progress=False)
        v2, f2 = collision_mesh(scene, coarse, progress=False)
    assert len(meshed) == 1 and np.array_equal(v1, v2) and np.array_equal(f1, f2) and len(f1) > 100
    assert sorted(p.name for p in ro.iterdir()) == ["set.ply"]
    assert sorted(p.name for p in (out / ".splatfilm-cache").glob("*/*")) == ["set.collision.json", "set.collision.obj"]
    # Published with its mesh (made while it could be written): read there, with no root at all.
    monkeypatch.undo()
    monkeypatch.delenv(CACHE_ENV, raising=False)
    collision_mesh(scene, coarse, progress=False)
    read_only(monkeypatch, ro)
    monkeypatch.setattr(meshing, "mesh_scene", lambda *a, **k: pytest.fail("meshed again"))
    v3, f3 = collision_mesh(scene, coarse, progress=False)
    assert np.array_equal(v1, v3) and np.array_equal(f1, f3)


def test_depth_planes_are_made_only_for_gaussians_a_view_can_draw(monkeypatch):
    """Each view's depth planes took [N,3,3] float64 camera-space covariances of every Gaussian,
    those behind the camera or far outside the frame too (a minute over 48 views at 3M). Now
    only those `drawable` from it: every one the render draws is among them (gsplat's box,
    3.33 sigma of J S J^T + 0.3 px^2, checked against `project_gaussians` on Gaussians strewn
    around and across the frame's edges), and the view is the same to the bit."""
    from splatfilm.assets import meshing
    from splatfilm.render.projection import project_gaussians

    rng = np.random.default_rng(3)
    n, box = 4000, box_on_floor()
    g = Gaussians(torch.tensor(rng.uniform(-6, 6, (n, 3)), dtype=torch.float32),
                  torch.tensor(rng.normal(size=(n, 4)), dtype=torch.float32),
                  torch.tensor(rng.uniform(-6, -1.5, (n, 3)), dtype=torch.float32),
                  torch.tensor(rng.uniform(-2, 6, n), dtype=torch.float32),
                  torch.tensor(rng.uniform(0, 1, (n, *box.sh0.shape[1:])), dtype=torch.float32),
                  torch.zeros((n, *box.shN.shape[1:])))
    g = Gaussians.concat([g, box])
    viewmat = look_at_viewmat(np.array([0.0, -3.0, 1.0]), np.array([0.0, 0.0, 0.3]), np.array([0.0, 0.0, 1.0]))
    K = np.array([[60.0, 0, 40], [0, 60.0, 30], [0, 0, 1]])
    prepared = meshing.surfels(g)
    V, Kt = torch.tensor(viewmat, dtype=torch.float64), torch.tensor(K, dtype=torch.float64)
    shown = meshing.drawable(prepared, V, Kt, 80, 60)
    covars = quat_scale_to_covar(g.quats.double(), g.activated_scales.double())
    drawn = project_gaussians(g.means.double(), covars, V[None], Kt[None], 80, 60).radii[0].amax(-1) > 0
    assert drawn.sum() > 100 and bool(torch.all(shown[drawn]))  # none the render draws is left out
    assert shown[:n].sum() < 0.4 * n  # and most of those strewn behind or beside the view are not
    real, sizes = meshing.depth_planes, []
    monkeypatch.setattr(meshing, "depth_planes", lambda means, *a, **k: sizes.append(len(means)) or real(means, *a, **k))
    culled = meshing.surface_depth(g, viewmat, K, 80, 60, "cpu", prepared)
    assert sizes == [int(shown.sum())]
    monkeypatch.setattr(meshing, "drawable", lambda p, *a: torch.ones(len(p.means), dtype=torch.bool))  # as before
    whole = meshing.surface_depth(g, viewmat, K, 80, 60, "cpu", prepared)
    assert sizes[-1] == len(g)
    assert culled[2].any() and all(np.array_equal(a, b) for a, b in zip(culled, whole))


def test_surfels_leave_the_colours_as_they_are():
    """surfels() cast the whole scene to float64, its SH too (1.15 GB at 3M Gaussians) for
    covariances that need its quats and scales alone: SH that are not read (here on the meta
    device, where nothing can be read) are now never copied."""
    from splatfilm.assets import meshing

    g = box_on_floor()
    g = Gaussians(g.means, g.quats, g.scales, g.opacities, g.sh0, torch.empty((len(g), 15, 3), device="meta"))
    prepared = meshing.surfels(g)
    assert prepared.covars.dtype == torch.float64 and prepared.dense.shN.device.type == "meta"
