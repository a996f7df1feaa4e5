"""A triangle mesh of a Gaussian scene: render depth and colour from many views, fuse them
into a truncated signed distance volume (open3d's sparse `VoxelBlockGrid`; the legacy
`ScalableTSDFVolume` integrates nothing in open3d 0.20), extract the surface by marching
cubes. The mesh is in the scene's own frame and units, with vertex colours (sRGB-encoded, as
rendered); `write_mesh` turns a .glb's and an .obj's upright and to metres, and a .glb's
colours to linear.

The depth fused is `surface_depth`: each Gaussian's depth taken where the pixel ray meets it
(its plane, for a flat one; RaDe-GS's rasterized depth), blended with the weights of the
Gaussians made SURFACE_DENSITY (4) times as dense, so that a semi-transparent layer is met at
its front. The renderer's expected depth blends the Gaussians' centre depths with their own
weights instead, and at oblique views those nearer the camera are composited first, so it sits
in front of a surface by up to about the footprint sigma of its Gaussians. Measured on the
demo set's collision mesh (its table top's splats have a 1.5 cm sigma, its floor's 2.1 cm):
from expected depth the table top's mesh lay 2.8 cm above it and the floor's 2.5 cm, and a
crate dropped on the table came to rest 2.9 cm up; from `surface_depth`, 6 mm (median over the
top away from its ball and vase) and 0.0 mm, and the crate rests 2 mm up. On the fitted set
(scenes/set/fitted), whose rug's splats are half transparent (median opacity 0.44), tilted 17
degrees from it and reach 3-25 cm under it, blending plane depths with the Gaussians' own
weights put the table top's mesh 3.5 mm under it and the rug's 13 mm under (10th-90th
percentile -41 to -2 mm), pulled down by the splats seen through the layer's front, and a crate
sank to 4.7 mm under the table top; with the denser weights, 0.0 mm (-5 to +9) and 0.6 mm under
(-6 to +16), and the crate rests 1.9 mm up. (Expected depth: 3.5 mm above, 4 mm under; the
crate 2 mm up.)

Both renders are in the scene's rasterize_mode (`assets.sidecar.asset_rasterize_mode`; a
film's `rasterize_mode:` for its set), as it was trained: classic mode overstates the alpha of
an antialiased asset's small or thin Gaussians, and that alpha decides which pixels are fused.

Views: the cameras of a camera file, or `orbit_views` on the upper half of a sphere around
the scene's robust bounds, looking at its centre. Only the upper half: a thin surface (a
floor of flat Gaussians) seen from both sides gets opposite signed distances in the same
voxels, which cancel; capture cameras see a set from inside, so for rooms pass the capture's
camera file. An object's underside is not seen, so its mesh is open there, and the walls run on
past the open edge: 4.2 cm (6 voxels) below a 1 x 0.6 x 0.8 m box meshed at 7 mm. A weight
threshold trims this skirt only in part (to 2.8 cm at a weight of 3 views, 1.4 cm at 6) and
would drop surfaces few capture cameras saw; the skirt's vertices lie within 1-4 voxels of
some view's fused depth, so a test against the depths keeps them too.

Camera conventions: our viewmats are world-to-camera in OpenCV axes, which is what open3d's
`extrinsic` is; depth is camera z in scene units (depth_scale 1). Our pixel (i, j) covers
[i, i+1) x [j, j+1), and VoxelBlockGrid reads pixel (floor(u), floor(v)) for a projection
(u, v) = K x, so K is passed unchanged. (The legacy volumes read (round(u), round(v)) and
would need cx, cy less half a pixel.)
"""

from __future__ import annotations

import math
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from splatfilm.scene.cameras import Cameras, centred_K, focal_px_for_fov
from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import WORLD_UP, look_at_rotation, rotation_between, unit_vector
from splatfilm.assets.open3d_loader import load_open3d
from splatfilm.render import RasterizeMode, rasterize_mode_key, rasterization
from splatfilm.render.projection import depth_planes, quat_scale_to_covar
from splatfilm.io.asset_files import collision_mesh_path, scene_mesh_cache_path
from splatfilm import report

if TYPE_CHECKING:
    import open3d

MESH_SUFFIXES = (".glb", ".ply", ".obj")
# Initial capacity of the TSDF's hash map of 8^3-voxel blocks: it grows as needed, and every
# block reserved costs memory up front (20,000 blocks of 16^3 voxels held 1.6 GB).
BLOCKS = 1000
# Part of a collision mesh's cache key: a change to how meshes are made makes them again.
# 2: fused from `surface_depth` (on the set's surfaces, not 2-3 cm in front of them), listed in
# a canonical order.
# 3: surface_depth blends with the weights of Gaussians SURFACE_DENSITY times as dense (a
# fitted set's semi-transparent layers are met at their front, not pulled down by what is seen
# through them).
COLLISION_MESH_VERSION = 3
# surface_depth's weights: those of the Gaussians made this many times as dense. Measured on
# the fitted set's collision mesh (scenes/set; its rug's splats have opacities 0.07-0.98, median
# 0.44, some centres 3-25 cm under the rug), the table top's and rug's meshes lay 3.5 and 13 mm
# under them at 1; 0.0 and 0.6 mm at 4 (10th-90th percentile -5 to +9 mm, -6 to +16 mm); 8
# spreads them no closer (the rug's 90th percentile +24 mm). Opaque surfaces are unchanged.
SURFACE_DENSITY = 4.0


@dataclass
class MeshSettings:
    """voxel: TSDF voxel edge in scene units (None: the robust bounds' diagonal / 200, i.e.
    4 cm for an 8 m room); views: orbit views when no cameras are given; width x height: the
    render size (a camera file's cameras are scaled to `width`, keeping their aspect); fov_deg:
    vertical field of view of orbit views; min_alpha: pixels less opaque are not fused;
    trunc_voxels: TSDF truncation in voxels; min_component: connected pieces of fewer triangles
    are dropped (floaters); backend: the renderer's."""

    voxel: float | None = None
    views: int = 48
    width: int = 320
    height: int = 240
    fov_deg: float = 60.0
    min_alpha: float = 0.5
    trunc_voxels: float = 4.0
    min_component: int = 50
    backend: str = "auto"

    def check(self, where: str | Path) -> None:
        """SplatfilmError "WHERE: what is wrong" for a setting meshing cannot use (`where`: the
        scene, for the message); meshing takes minutes, so check first."""
        if self.voxel is not None and not 0 < self.voxel < float("inf"):
            raise SplatfilmError(f"{where}: the voxel size must be > 0 scene units, got {self.voxel}")
        # Marching cubes needs both voxels either side of the surface within the truncation.
        if not 1 <= self.trunc_voxels < float("inf"):
            raise SplatfilmError(f"{where}: the TSDF truncation (--trunc) must be at least 1 voxel, "
                                 f"got {self.trunc_voxels}")
        if not 0 < self.min_alpha <= 1:
            raise SplatfilmError(f"{where}: the least alpha fused (--min-alpha) must be in (0, 1], "
                                 f"got {self.min_alpha}")
        if isinstance(self.min_component, bool) or not isinstance(self.min_component, int) or self.min_component < 0:
            raise SplatfilmError(f"{where}: the smallest piece kept (--min-component) must be 0 or a whole number of "
                                 f"triangles, got {self.min_component}")


def scene_bounds(gaussians: Gaussians) -> tuple[np.ndarray, np.ndarray]:
    """Robust bounds (min [3], max [3]) of the opaque Gaussian centres."""
    from splatfilm.assets.asset_frame import robust_bounds

    return robust_bounds(gaussians, min_opacity=0.5, percentile=0.5)


def look_at_viewmat(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """World-to-camera [4,4] in OpenCV axes (x right, y down, +z forward) at `eye` facing `target`."""
    V = np.eye(4)
    V[:3, :3] = look_at_rotation(eye, target, up).T
    V[:3, 3] = -V[:3, :3] @ eye
    return V


def orbit_views(lo: np.ndarray, hi: np.ndarray, count: int, width: int, height: int, fov_deg: float = 60.0,
                up: np.ndarray = WORLD_UP, min_elevation_deg: float = 15.0, max_elevation_deg: float = 80.0) -> Cameras:
    """`count` cameras on the upper half of the sphere around the box lo..hi [3] (elevations
    between the given angles above the plane normal to `up`, azimuths by the golden angle),
    each looking at the box's centre from far enough that the box's bounding sphere fits
    the vertical field of view."""
    up = unit_vector(up, "up")
    centre = (lo + hi) / 2
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
    fov = math.radians(fov_deg)
    dist = 1.05 * radius / math.sin(fov / 2)
    a = unit_vector(np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0]), "axis")
    b = np.cross(up, a)
    fy = focal_px_for_fov(fov, height)
    K = centred_K(fy, fy, width, height)
    viewmats = []
    for i in range(count):
        # Spread uniformly over the band's area: uniform in sin(elevation).
        s0, s1 = math.sin(math.radians(min_elevation_deg)), math.sin(math.radians(max_elevation_deg))
        elev = math.asin(s0 + (s1 - s0) * (i + 0.5) / count)
        azim = i * math.pi * (3 - math.sqrt(5))
        direction = math.cos(elev) * (math.cos(azim) * a + math.sin(azim) * b) + math.sin(elev) * up
        viewmats.append(look_at_viewmat(centre + dist * direction, centre, up))
    return Cameras(np.stack(viewmats), K, width, height)


def _scaled(cameras: Cameras, width: int) -> Cameras:
    """The cameras as pinholes rendering `width` pixels wide (aspect kept; distortion dropped)."""
    s = width / cameras.widths.astype(np.float64)
    Ks = cameras.Ks.copy()
    Ks[:, :2, :] *= s[:, None, None]  # continuous pixel coordinates scale with the image
    Ks[:, 2, 2] = 1.0
    heights = np.maximum(1, np.round(cameras.heights * s)).astype(np.int64)
    return Cameras(cameras.viewmats, Ks, width, heights)


@dataclass
class Surfels:
    """What `surface_depth` needs of a scene whatever the view, made once for every view
    (`surfels`): the means [N,3] and `covars` [N,3,3] (float64, CPU, scene units) its depth
    planes come from, and `dense`, the Gaussians made SURFACE_DENSITY times as dense, whose
    weights blend them; `sigma` [N] float64, each one's largest standard deviation (scene
    units), which bounds where a render draws it (`drawable`)."""

    means: torch.Tensor
    covars: torch.Tensor
    dense: Gaussians
    sigma: torch.Tensor


def surfels(gaussians: Gaussians) -> Surfels:
    """The `Surfels` of a scene. The covariances: each Gaussian's thinnest axis thinned by its
    flatness, s_min -> s_min^2 / s_mid. A flat Gaussian (a splat on a surface) then spreads its
    depth along its mid-plane, as a 2DGS surfel does, where its thickness would take part of the
    slope off (12% for a 2 mm thick, 2 cm wide splat seen 15 degrees above its plane); a round
    one keeps its shape. The dense Gaussians: opacity 1 - (1 - o)^k, k = SURFACE_DENSITY."""
    with torch.no_grad():
        # Only what the covariances need goes to float64: the whole scene would take its SH too
        # (1.15 GB more at 3M Gaussians).
        scales = torch.exp(gaussians.scales.detach().to(device="cpu", dtype=torch.float64))
        ordered, order = torch.sort(scales, dim=-1)
        thin = ordered[..., 0] ** 2 / ordered[..., 1].clamp_min(1e-30)
        quats = gaussians.quats.detach().to(device="cpu", dtype=torch.float64)
        covars = quat_scale_to_covar(quats, scales.scatter(-1, order[..., :1], thin[..., None]))
        means = gaussians.means.detach().to(device="cpu", dtype=torch.float64)
        # logit(1 - (1 - o)^k) = log(1 - e^-ks) + ks, with s = softplus(logit o) = -log(1 - o).
        ks = SURFACE_DENSITY * torch.nn.functional.softplus(gaussians.opacities.detach().double())
        dense = Gaussians(gaussians.means, gaussians.quats, gaussians.scales,
                          (torch.log(-torch.expm1(-ks)) + ks).to(gaussians.dtype), gaussians.sh0, gaussians.shN)
    return Surfels(means, covars, dense, ordered[..., 2])


def drawable(prepared: Surfels, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
             near_plane: float = 0.01) -> torch.Tensor:
    """A bool [N]: the Gaussians of `prepared` a pinhole render (`rasterization`, gsplat's
    rules) may draw from viewmat [4,4] / K [3,3] (float64) into width x height pixels; every
    one it draws is in it. The render keeps a Gaussian at least `near_plane` in front whose box,
    3.33 sigma of its 2D covariance J S J^T + 0.3 px^2, meets the image; this bounds that box by
    the Frobenius norm of J (its tangent clamped as the render clamps it) times the largest
    sigma, with a pixel and a hair in front to spare for the render's float32."""
    means_c = prepared.means @ viewmat[:3, :3].T + viewmat[:3, 3]
    x, y, z = means_c.unbind(-1)
    ahead = z >= near_plane * (1 - 1e-3)
    zs = torch.where(ahead, z, torch.ones_like(z))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tx = torch.minimum(torch.maximum(x / zs, -(cx / fx + 0.15 * width / fx)), (width - cx) / fx + 0.15 * width / fx)
    ty = torch.minimum(torch.maximum(y / zs, -(cy / fy + 0.15 * height / fy)), (height - cy) / fy + 0.15 * height / fy)
    j2 = (fx**2 * (1 + tx**2) + fy**2 * (1 + ty**2)) / zs**2  # |J|_F^2
    r = 3.33 * torch.sqrt(j2 * prepared.sigma**2 + 0.3) + 2.0
    u, v = fx * x / zs + cx, fy * y / zs + cy
    return ahead & (u + r > 0) & (u - r < width) & (v + r > 0) & (v - r < height)


def surface_depth(gaussians: Gaussians, viewmat: np.ndarray, K: np.ndarray, width: int, height: int,
                  backend: str = "auto",
                  prepared: Surfels | None = None,
                  rasterize_mode: RasterizeMode = "classic") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pinhole view of the scene for meshing: (rgb [H,W,3] composited over black, alpha
    [H,W], depth [H,W] camera z in scene units, 0 where alpha is 0), float64. The depth is
    the blend of each Gaussian's depth where the pixel ray meets it (`projection.depth_planes`
    of the `surfels` covariances), not of its centre's: it lies on a surface of flat Gaussians
    however obliquely it is seen. The blend's weights are those of the Gaussians made
    SURFACE_DENSITY times as dense: the depth of the front of a semi-transparent layer of
    Gaussians, where the photos saw its surface, not of the Gaussians seen through it; an
    opaque surface's depth is unchanged. rgb and alpha are the scene's own (two renders).
    viewmat [4,4] world-to-camera (OpenCV axes), K [3,3] pixels. prepared: `surfels(gaussians)`,
    where a caller rendering many views made it once. rasterize_mode: both renders', the
    scene's as it was trained (antialiased: each Gaussian's opacity, and each dense one's, times
    its compensation)."""
    V = torch.tensor(np.asarray(viewmat)[None], dtype=torch.float64)
    Kt = torch.tensor(np.asarray(K)[None], dtype=torch.float64)
    prepared = surfels(gaussians) if prepared is None else prepared
    with torch.no_grad():
        # Depth planes only for the Gaussians the render can draw (`drawable`); the others'
        # features are never blended, so zeros do: at 3M Gaussians and 48 views the planes of
        # every one took a minute.
        shown = torch.nonzero(drawable(prepared, V[0], Kt[0], width, height)).reshape(-1)
        means2d, depths, grads = depth_planes(prepared.means[shown], prepared.covars[shown], V, Kt, width, height)
        # Pixel offsets from the image centre keep the blended terms small (float32 on gsplat).
        centre = torch.tensor([width / 2, height / 2], dtype=torch.float64)
        offset = depths - (grads * (means2d - centre)).sum(-1)
        features = torch.zeros((1, len(prepared.means), 3), dtype=torch.float64)
        features[:, shown] = torch.cat([offset[..., None], grads], dim=-1)  # [1,N,3]
        V, Kt = V.to(gaussians.dtype), Kt.to(gaussians.dtype)
        # Colour and coverage are the Gaussians' own: the rasterizer's 0.999 cap on a Gaussian's
        # alpha and its stop at a transmittance of 1e-4 keep the true alpha from being read back
        # from the denser render.
        out = rasterization(gaussians, V, Kt, width, height, backend=backend, rasterize_mode=rasterize_mode)
        planes = rasterization(prepared.dense, V, Kt, width, height, backend=backend, sh_degree=0,
                               rasterize_mode=rasterize_mode,
                               features=features.to(device=gaussians.device, dtype=gaussians.dtype))
    alpha = out.alpha[0, ..., 0].double().cpu().numpy()
    dense_alpha = planes.alpha[0, ..., 0].double().cpu().numpy()
    blend = planes.features[0].double().cpu().numpy()
    # Pixel (i, j)'s centre is (i + 0.5, j + 0.5), where the renderer evaluates the Gaussians.
    du = (np.arange(width) + 0.5 - width / 2)[None, :]
    dv = (np.arange(height) + 0.5 - height / 2)[:, None]
    depth = np.where((alpha > 0) & (dense_alpha > 0),
                     (blend[..., 0] + du * blend[..., 1] + dv * blend[..., 2]) / np.maximum(dense_alpha, 1e-10), 0.0)
    rgb = out.rgb[0].double().cpu().numpy()
    return rgb, alpha, depth


def fuse_mesh(gaussians: Gaussians, cameras: Cameras, voxel: float, settings: MeshSettings | None = None,
              progress: bool = True, rasterize_mode: RasterizeMode = "classic") -> open3d.geometry.TriangleMesh:
    """Render every camera in `rasterize_mode` (the scene's), fuse `surface_depth` (alpha >=
    min_alpha) and colour into a TSDF with `voxel` edge (scene units), and return the extracted
    open3d (legacy) TriangleMesh: scene frame, vertex colours in [0, 1], vertex normals.
    SplatfilmError when voxel <= 0 or no view sees an opaque pixel."""
    settings = settings or MeshSettings()
    o3d = load_open3d()
    o3c = o3d.core
    if not voxel > 0:
        raise SplatfilmError(f"voxel size must be > 0, got {voxel}")
    device = o3c.Device("CPU:0")
    grid = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight", "color"), attr_dtypes=(o3c.float32, o3c.float32, o3c.float32),
        attr_channels=((1), (1), (3)), voxel_size=float(voxel), block_resolution=8, block_count=BLOCKS, device=device)
    trunc = float(settings.trunc_voxels)
    prepared = surfels(gaussians)
    fused = 0
    for i in report.progress_bar(range(len(cameras)), desc="mesh", unit="view", show=progress):
        w, h = int(cameras.widths[i]), int(cameras.heights[i])
        rgb, alpha, depth = surface_depth(gaussians, cameras.viewmats[i], cameras.Ks[i], w, h, settings.backend,
                                          prepared, rasterize_mode)
        keep = alpha >= settings.min_alpha
        if not keep.any():
            continue
        depth = np.where(keep, depth, 0.0).astype(np.float32)
        # Rendered colour is composited over black: divide by alpha for the surface's own colour.
        rgb = np.clip(rgb / np.maximum(alpha, 1e-6)[..., None], 0.0, 1.0)
        depth_im = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(depth[..., None]), device=device))
        color_im = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(rgb.astype(np.float32)), device=device))
        # open3d's kernels read pixel floor(u), floor(v) for a projection (u, v) = K x: the
        # same pixel-centre convention as ours, so K goes in unchanged.
        K = o3c.Tensor(np.ascontiguousarray(cameras.Ks[i]), device=device)
        E = o3c.Tensor(np.ascontiguousarray(cameras.viewmats[i]), device=device)
        depth_max = float(depth.max()) + 1.0
        blocks = grid.compute_unique_block_coordinates(depth_im, K, E, 1.0, depth_max, trunc)
        grid.integrate(blocks, depth_im, color_im, K, K, E, 1.0, depth_max, trunc)
        fused += 1
    if fused == 0:
        raise SplatfilmError("no view saw any opaque part of the scene: nothing to mesh")
    mesh = _in_canonical_order(grid.extract_triangle_mesh(weight_threshold=1.0).to_legacy())
    mesh.remove_degenerate_triangles()
    if settings.min_component > 1 and len(mesh.triangles):
        cluster, count, _ = mesh.cluster_connected_triangles()
        small = np.asarray(count)[np.asarray(cluster)] < settings.min_component
        mesh.remove_triangles_by_mask(small)
    mesh.remove_unreferenced_vertices()
    mesh.compute_vertex_normals()
    return mesh


def _in_canonical_order(mesh):
    """The open3d mesh with its vertices sorted by position (then colour) and its triangles by
    their vertices (each turned to start at its lowest, keeping its winding). The TSDF's
    surface extraction runs in parallel and lists the same vertices and triangles in another
    order from run to run; the simplification and the physics that follow depend on the order
    (Bullet's contacts do), so a fresh mesh would give a dropped prop another path each time."""
    o3d = load_open3d()
    v, f, c = mesh_arrays(mesh)
    order = np.lexsort(np.concatenate([v, c], axis=1).T[::-1])
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    f = rank[f]
    f = np.take_along_axis(f, (np.argmin(f, axis=1)[:, None] + np.arange(3)) % 3, axis=1)
    f = f[np.lexsort(f.T[::-1])]
    out = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v[order]),
                                    o3d.utility.Vector3iVector(f.astype(np.int32)))
    if mesh.has_vertex_colors():
        out.vertex_colors = o3d.utility.Vector3dVector(c[order])
    return out


def mesh_scene(gaussians: Gaussians, cameras: Cameras | None = None, settings: MeshSettings | None = None,
               up: np.ndarray = WORLD_UP, progress: bool = True,
               rasterize_mode: RasterizeMode = "classic") -> open3d.geometry.TriangleMesh:
    """The scene's open3d TriangleMesh from `cameras` (scaled to settings.width) or orbit views,
    rendered in `rasterize_mode` (the scene's, as it was trained)."""
    settings = settings or MeshSettings()
    lo, hi = scene_bounds(gaussians)
    voxel = settings.voxel or max(float(np.linalg.norm(hi - lo)) / 200, 1e-4)
    if cameras is None:
        if settings.views < 1:
            raise SplatfilmError(f"need at least one view, got {settings.views}")
        cameras = orbit_views(lo, hi, settings.views, settings.width, settings.height, settings.fov_deg, up)
    else:
        cameras = _scaled(cameras, settings.width)
    return fuse_mesh(gaussians, cameras, voxel, settings, progress, rasterize_mode)


def gltf_root(up: np.ndarray = WORLD_UP) -> np.ndarray:
    """The glTF root node's matrix [4,4]: the smallest rotation taking the scene's `up` to
    glTF's +y (for a Z-up scene, (x, y, z) -> (x, z, -y))."""
    m = np.eye(4)
    m[:3, :3] = rotation_between(up, np.array([0.0, 1.0, 0.0]))
    return m


def check_mesh_output(path: str | Path) -> Path:
    """`path` as a Path if a mesh can be written there (a known format by its name, a writable
    place), else a SplatfilmError naming it; meshing takes minutes, so check first."""
    from splatfilm.io.atomic import check_output_file

    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise SplatfilmError(f"{path}: unknown mesh format (use {', '.join(MESH_SUFFIXES)})")
    return check_output_file(path)


def write_mesh(mesh: open3d.geometry.TriangleMesh, path: str | Path, up: np.ndarray = WORLD_UP,
               scale: float = 1.0) -> None:
    """Write an open3d TriangleMesh with vertex colours (sRGB-encoded, as rendered) as .glb,
    .ply or .obj (by suffix).

    A .ply holds the scene's frame and units, with sRGB colour bytes, as PLY readers take them.
    glTF is y-up and in metres by definition, so a .glb holds the vertices times `scale`
    (scene units to metres) under a root node turning the scene's `up` to +y (`gltf_root`):
    the mesh stands upright in glTF viewers, and Blender's importer (glTF y-up -> its z-up)
    returns the scene's coordinates times `scale`, turned by the small rotation that takes `up`
    to +z (none, so exactly them, when up is +z). Readers that flatten the node (trimesh.load)
    give glTF's coordinates: apply gltf_root(up)'s inverse and divide by `scale` for the
    scene's. Its COLOR_0 is linear (float), as glTF defines it, with vertex normals and an
    unlit material (KHR_materials_unlit: the colours are the scene's lighting, baked; readers
    without it fall back to a rough dielectric, metallic 0, roughness 1). OBJ has no nodes and no
    stated up or units; it is written as the .glb's flattened coordinates (y-up, times
    `scale`), as Blender's OBJ exporter writes and its importer (and `import-mesh`) read by
    default, with sRGB vertex colours, as OBJ readers take them. SplatfilmError for an unknown
    suffix, an empty mesh or a write open3d refuses."""
    from splatfilm.io.atomic import atomic_write, make_folder

    o3d = load_open3d()
    path = check_mesh_output(path)
    suffix = path.suffix.lower()
    if len(mesh.triangles) == 0:
        raise SplatfilmError(f"{path}: the mesh is empty (no surface was found)")
    make_folder(path.parent)
    if suffix == ".glb":
        # open3d 0.20 writes .glb files that readers reject (a buffer view past its buffer), and
        # trimesh writes COLOR_0 as 8-bit, which bands linear colours in the shadows.
        atomic_write(path, [_glb(mesh, up, scale)])
        return
    if suffix == ".obj":
        mesh = o3d.geometry.TriangleMesh(mesh).scale(scale, np.zeros(3)).rotate(gltf_root(up)[:3, :3], np.zeros(3))
    if not o3d.io.write_triangle_mesh(str(path), mesh, write_ascii=False, compressed=False):
        raise SplatfilmError(f"{path}: cannot write the mesh")


def _glb(mesh: open3d.geometry.TriangleMesh, up: np.ndarray, scale: float) -> bytes:
    """The .glb bytes `write_mesh` writes: one primitive (float32 POSITION times `scale`, unit
    NORMAL, float32 linear COLOR_0, uint32 indices) under the root node gltf_root(up)."""
    from splatfilm.assets.gltf_check import glb_bytes
    from splatfilm.io.images import srgb_to_linear
    from splatfilm.version import __version__

    v, f, c = mesh_arrays(mesh)
    if not mesh.has_vertex_normals():
        mesh = load_open3d().geometry.TriangleMesh(mesh).compute_vertex_normals()
    n = np.asarray(mesh.vertex_normals, dtype=np.float64)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    # glTF requires unit normals; a vertex only on degenerate triangles has none.
    n = np.where(length > 1e-12, n / np.maximum(length, 1e-12), unit_vector(up, "up"))
    arrays = [(v * scale).astype("<f4"), n.astype("<f4"), srgb_to_linear(np.clip(c, 0.0, 1.0)).astype("<f4"),
              f.astype("<u4").reshape(-1)]
    views, blob = [], b""
    for k, a in enumerate(arrays):
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": a.nbytes,
                      "target": 34963 if k == 3 else 34962})  # element array (indices), else vertex attributes
        blob += a.tobytes()  # every array is 4-byte elements: each view stays aligned
    position = arrays[0]
    accessors = [{"bufferView": 0, "componentType": 5126, "count": len(v), "type": "VEC3",
                  "min": position.min(axis=0).tolist(), "max": position.max(axis=0).tolist()},
                 {"bufferView": 1, "componentType": 5126, "count": len(v), "type": "VEC3"},
                 {"bufferView": 2, "componentType": 5126, "count": len(v), "type": "VEC3"},
                 {"bufferView": 3, "componentType": 5125, "count": f.size, "type": "SCALAR"}]
    doc = {"asset": {"version": "2.0", "generator": f"splatfilm {__version__}"},
           "extensionsUsed": ["KHR_materials_unlit"],
           "scene": 0, "scenes": [{"nodes": [0]}],
           "nodes": [{"name": "scene", "mesh": 0, "matrix": gltf_root(up).T.reshape(-1).tolist()}],  # column-major
           "meshes": [{"name": "scene", "primitives": [{"attributes": {"POSITION": 0, "NORMAL": 1, "COLOR_0": 2},
                                                         "indices": 3, "material": 0, "mode": 4}]}],
           "materials": [{"name": "baked", "extensions": {"KHR_materials_unlit": {}},
                          "pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0,
                                                   "roughnessFactor": 1.0}}],
           "accessors": accessors, "bufferViews": views, "buffers": [{"byteLength": len(blob)}]}
    return glb_bytes(doc, blob)


def mesh_arrays(mesh: open3d.geometry.TriangleMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices [V,3] float64, triangles [F,3] int64, colours [V,3] in [0,1]) of an open3d mesh."""
    v = np.asarray(mesh.vertices)
    c = np.asarray(mesh.vertex_colors) if mesh.has_vertex_colors() else np.zeros_like(v)
    return v.copy(), np.asarray(mesh.triangles).astype(np.int64), c.copy()


def export_scene_mesh(scene: str | Path, output: str | Path, cameras_path: str | Path | None = None,
                      settings: MeshSettings | None = None, progress: bool = True) -> dict:
    """`splatfilm mesh`: mesh a Gaussian scene file and write it (see write_mesh), rendered from
    `cameras_path`, else the capture's cameras recorded beside the scene (SCENE.cameras.json),
    else orbit views about the scene's up (`assets.asset_frame.asset_up`: its ground's normal where
    its sidecar records one), in the scene's own rasterize_mode. A .glb or .obj is turned so
    that up is +y and scaled by the sidecar's frame.scale_to_metres (a note on stderr where it
    is unknown); a .ply stays in the scene's frame and units. Returns a summary {vertices,
    triangles, voxel, views, cameras, seconds, bounds_min, bounds_max, up, scale_to_metres}
    (bounds: the scene's frame and units)."""
    from splatfilm.assets.sidecar import Sidecar, asset_rasterize_mode
    from splatfilm.assets.asset_frame import asset_up, cameras_in_asset_frame
    from splatfilm.io.asset_files import read_capture_cameras
    from splatfilm.io.camera_files import read_cameras
    from splatfilm.io.gaussian_files import load_gaussians

    t0 = time.perf_counter()
    settings = settings or MeshSettings()
    scene = Path(scene)
    output = check_mesh_output(output)
    if output.resolve() == scene.resolve():  # `mesh scene.ply -o scene.ply` would replace the scene by its mesh
        raise SplatfilmError(f"{output}: the output would overwrite the scene; write the mesh beside it")
    settings.check(scene)
    up = asset_up(scene)
    sidecar = Sidecar.of_asset(scene)
    scale = sidecar.frame.get("scale_to_metres") if sidecar is not None else None
    g = load_gaussians(scene)
    cams = (cameras_in_asset_frame(scene, read_cameras(cameras_path), cameras_path) if cameras_path is not None
            else read_capture_cameras(scene))
    lo, hi = scene_bounds(g)
    voxel = settings.voxel or max(float(np.linalg.norm(hi - lo)) / 200, 1e-4)
    s = MeshSettings(**{**asdict(settings), "voxel": voxel})
    mesh = _cached_scene_mesh(scene, g, cams, s, up, progress, asset_rasterize_mode(scene))
    write_mesh(mesh, output, up, 1.0 if scale is None else float(scale))
    if scale is None and output.suffix.lower() != ".ply":
        report.note(f"{scene}'s scale to metres is unknown (structure-from-motion units): {output} is in scene units, "
                    f"which Blender and glTF readers take as metres (`splatfilm ground {scene} --camera-height METRES` "
                    "measures a scene's)")
    v = np.asarray(mesh.vertices)
    source = (f"from {cameras_path}" if cameras_path is not None else
              "from the capture's cameras" if cams is not None else "orbiting it")
    return {"vertices": len(v), "triangles": len(mesh.triangles), "voxel": voxel,
            "views": len(cams) if cams is not None else s.views, "cameras": source,
            "seconds": time.perf_counter() - t0,
            "bounds_min": v.min(axis=0).tolist(), "bounds_max": v.max(axis=0).tolist(), "up": up.tolist(),
            "scale_to_metres": scale}


def _cached_scene_mesh(scene: Path, g: Gaussians, cameras: Cameras | None, settings: MeshSettings, up: np.ndarray,
                       progress: bool, mode: RasterizeMode) -> open3d.geometry.TriangleMesh:
    """`mesh_scene`'s mesh, kept in SCENE.mesh.npz under the key of the scene file's contents,
    the cameras, the settings (but the backend: either renders the same images), up, the
    rasterize mode and COLLISION_MESH_VERSION (the way meshes are made): a rerun with the same
    inputs integrates nothing and writes the same bytes. The arrays are kept in float64 as
    made, since a PLY's colour bytes would round them. A run stopped part way keeps nothing:
    its rerun integrates every view again."""
    from splatfilm.io.atomic import atomic_path
    from splatfilm.io.cache import CacheEntry
    from splatfilm.io.digest import array_digest, content_digest, file_digest

    o3d = load_open3d()
    npz = scene_mesh_cache_path(scene)
    record = {"version": COLLISION_MESH_VERSION, "scene_sha256": file_digest(scene),
              "cameras": None if cameras is None else array_digest(
                  {k: np.asarray(getattr(cameras, k)) for k in ("viewmats", "Ks", "widths", "heights")}),
              "settings": asdict(settings), "up": np.asarray(up, dtype=np.float64).tolist(), **rasterize_mode_key(mode)}
    record["settings"].pop("backend")
    # Placed before the meshing: a read-only scene folder keeps it under the cache root instead.
    cache, (npz,) = CacheEntry(npz.with_suffix(".json"), content_digest(record), indent=2).placed(npz)
    if cache.lookup(npz) is not None:
        try:
            with np.load(npz, allow_pickle=False) as kept:
                v, f, c, n = (kept[k] for k in ("vertices", "triangles", "colors", "normals"))
            mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(f))
            if len(c):
                mesh.vertex_colors = o3d.utility.Vector3dVector(c)
            mesh.vertex_normals = o3d.utility.Vector3dVector(n)
            if progress:
                report.status(f"{scene.name}: the mesh made before from the same scene, cameras and settings "
                              f"({npz.name}) is used")
            return mesh
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # unreadable: made again
    mesh = mesh_scene(g, cameras, settings, up, progress, mode)
    with atomic_path(npz) as tmp, open(tmp, "wb") as f:
        np.savez(f, vertices=np.asarray(mesh.vertices), triangles=np.asarray(mesh.triangles),
                 colors=np.asarray(mesh.vertex_colors), normals=np.asarray(mesh.vertex_normals))
    cache.store(**record)
    return mesh


# ---- collision meshes, cached beside the scene --------------------------------------------


def collision_mesh(scene: str | Path, settings: MeshSettings | None = None, progress: bool = True,
                   max_triangles: int = 60_000, gaussians: Gaussians | None = None,
                   variant: str | None = None,
                   rasterize_mode: RasterizeMode | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The scene's mesh for physics, (vertices [V,3], triangles [F,3]) in the scene's frame:
    read from SCENE.collision.obj when its record (SCENE.collision.json) names the same scene
    file contents, cameras and settings, else meshed from the capture's cameras recorded beside
    it (SCENE.cameras.json; orbit views when there are none: right for an object, a shell
    around a room), simplified to at most
    `max_triangles` (quadric decimation: collisions need no more, and cost per triangle) and
    written there. `gaussians` with `variant`, their content digest (a film's set after its
    edits or clean): where that is not the file's own, mesh those instead, cached as
    SCENE.collision-VARIANT.obj. rasterize_mode: the mode to render in (a film's for its set),
    None: the file's own (`assets.sidecar.asset_rasterize_mode`)."""
    from splatfilm.io.atomic import atomic_path
    from splatfilm.io.cache import CacheEntry
    from splatfilm.io.digest import content_digest, file_digest

    settings = settings or MeshSettings()
    scene = Path(scene)
    if not scene.exists():
        raise SplatfilmError(f"{scene}: no such file")
    obj = collision_mesh_path(scene)
    scene_sha256 = file_digest(scene)
    changed = gaussians is not None and bool(variant) and variant != scene_sha256
    if changed:
        obj = obj.with_name(f"{scene.stem}.collision-{variant[:16]}.obj")
    from splatfilm.assets.sidecar import asset_rasterize_mode
    from splatfilm.io.asset_files import capture_cameras_path, read_capture_cameras

    cameras = read_capture_cameras(scene)
    own = asset_rasterize_mode(scene)
    mode = rasterize_mode if rasterize_mode is not None else own
    if mode != own:
        # Another mode than the file's own (a film's override) gets a file of its own: two films
        # rendering one set either way would otherwise mesh it again each time, in turn.
        obj = obj.with_name(f"{obj.stem}-{mode}.obj")
    record = {"version": COLLISION_MESH_VERSION, "scene_sha256": scene_sha256, "settings": asdict(settings),
              "max_triangles": max_triangles,
              "cameras_sha256": file_digest(capture_cameras_path(scene)) if cameras is not None else None,
              **({"variant": variant} if changed else {}),
              **rasterize_mode_key(mode)}
    record["settings"].pop("backend")  # either backend renders the same images
    # Placed before the meshing (a minute): a read-only scene folder (a published set) keeps it
    # under the cache root instead, unless the mesh is already beside the scene.
    cache, (obj,) = CacheEntry(obj.with_suffix(".json"), content_digest(record), indent=2).placed(obj)
    if cache.lookup(obj) is not None:
        # Read without open3d: a render node given the cached mesh needs no meshing stack.
        v, f = _read_collision_obj(obj)
        if len(f):
            return v, f
    o3d = load_open3d()
    from splatfilm.assets.asset_frame import sidecar_up
    from splatfilm.io.gaussian_files import load_gaussians

    if progress:
        report.status(f"meshing {scene.name} for collisions from {len(cameras) if cameras is not None else settings.views} "
                      f"{'capture' if cameras is not None else 'orbit'} views (cached "
                      f"{'beside it as ' + obj.name if obj.parent == scene.parent else 'as ' + str(obj)})")
    mesh = mesh_scene(gaussians if changed else load_gaussians(scene), cameras, settings, sidecar_up(scene), progress,
                      mode)
    if len(mesh.triangles) == 0:
        raise SplatfilmError(f"{scene}: meshing found no surface to collide with")
    if len(mesh.triangles) > max_triangles:
        mesh = mesh.simplify_quadric_decimation(target_number_of_triangles=max_triangles)
        mesh.remove_degenerate_triangles()
        mesh.remove_unreferenced_vertices()
    # A temporary file of its own (an .mtl open3d may add beside it goes with it): another
    # process meshing the same scene at once writes its own, and one killed leaves obj as it was.
    with atomic_path(obj) as tmp:
        if not o3d.io.write_triangle_mesh(str(tmp), mesh, write_ascii=True, write_vertex_normals=False,
                                          write_vertex_colors=False, write_triangle_uvs=False):
            raise SplatfilmError(f"{obj}: cannot write the collision mesh")
    cache.store(**record)
    # Return what the file holds, so a fresh mesh and a cached one are the same numbers.
    return _read_collision_obj(obj)


def _read_collision_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices [V,3] float64, triangles [F,3] int64) of a collision mesh as `collision_mesh`
    writes it (ASCII OBJ, `v x y z` and `f a b c` lines, 1-based); empty arrays for a file
    that does not read so (it is meshed again)."""
    try:
        lines = path.read_text().splitlines()
        v = np.array([ln.split()[1:4] for ln in lines if ln.startswith("v ")], dtype=np.float64).reshape(-1, 3)
        f = np.array([[int(t.split("/")[0]) for t in ln.split()[1:4]] for ln in lines if ln.startswith("f ")],
                     dtype=np.int64).reshape(-1, 3) - 1
    except (OSError, ValueError, IndexError):
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    return v, f
