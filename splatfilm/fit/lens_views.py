"""Pinhole views of lens images: what a pinhole camera at the same pose would have seen, resampled
from a fisheye or panorama photo through its lens.

The fit itself renders through every camera's own model; the tools that think in pinhole
projections (the plane sweep and frustum sampling of `splatfilm.fit.init`, COLMAP's
triangulation of panoramas) look at lens images through these views instead:
- PINHOLE: the camera and image as they are;
- OPENCV, OPENCV_FISHEYE: the same pose, intrinsics and size without the distortion (a
  fisheye's pinhole view sees the part of its image within atan(half size / f) of the axis);
- EQUIRECTANGULAR: six views, a cube around the camera (forward, right, back, left, up, down),
  each `fov_deg` wide at the panorama's own pixels per radian in its centre.

The same resampling undistorts OPENCV photos for fitting (`Undistorter`). It works as OpenCV's
initUndistortRectifyMap and remap do: a float32 map per camera, made once and reused for every
image of that camera, each computed a band of pixels at a time, so a 12 MP phone photo needs
its map (100 MB) and a few MB of working space, not gigabytes of whole-image float64 arrays.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from splatfilm.scene.cameras import Cameras, centred_K
from splatfilm.render.camera_models import lens_visible, project_points

# Pixels a map or a resampled image is worked on at a time: the float64 maths of a band this
# size takes a few MB whatever the image's size (OpenCV's remap works in blocks alike). Small
# enough that torch runs each op of the map's (a band's [n,2] or [n,3] tensors too) on the
# calling thread: past 32768 elements (its grain size) it hands every op to its thread pool,
# which on a busy 2-core machine made a 12 MP map take 50 s instead of 1.
BAND_PIXELS = 1 << 14

# Cube faces of a panorama as rotations from the view's axes into the panorama camera's (OpenCV
# axes: x right, y down, z forward); columns are the view's x, y, z.
_CUBE_FACES = {
    "front": np.eye(3),
    "right": np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]),
    "back": np.array([[-1.0, 0, 0], [0, 1, 0], [0, 0, -1]]),
    "left": np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]]),
    "up": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
    "down": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
}


@dataclass
class PinholeViews:
    """V pinhole views of C lens cameras. cameras: PINHOLE `Cameras` [V]; images: V uint8
    [h,w,3]; masks: V float32 [h,w,1] or None; valid: V bool [h,w,1], pixels whose ray the
    source lens images (False where it sees nothing: outside its image or beyond its fold);
    source: [V] int, the index of the camera each view comes from."""

    cameras: Cameras
    images: list[np.ndarray]
    masks: list[np.ndarray] | None
    valid: list[np.ndarray]
    source: np.ndarray


def remap(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear sample image [H,W,C] (uint8 or float) at (u, v) pixel-index coordinates (any
    shape S, float32 or float64; pixel centres at integers), clamped to the border: [*S,C],
    uint8 for uint8 images (rounded), else float32. Worked a band of BAND_PIXELS at a time."""
    h, w = image.shape[:2]
    flat = image.reshape(h * w, -1)
    uf, vf = np.ravel(u), np.ravel(v)
    out = np.empty((uf.size, flat.shape[1]), np.uint8 if image.dtype == np.uint8 else np.float32)
    for s in range(0, uf.size, BAND_PIXELS):
        band = slice(s, s + BAND_PIXELS)
        out[band] = _bilinear(flat, w, h, uf[band], vf[band], image.dtype == np.uint8)
    return out.reshape(np.shape(u) + (flat.shape[1],))


def _bilinear(flat: np.ndarray, w: int, h: int, u: np.ndarray, v: np.ndarray, rounded: bool) -> np.ndarray:
    """`remap` of one band: flat [H*W,C] image, u, v [n] -> [n,C] (float32, or rounded to uint8)."""
    u = np.clip(u, 0, w - 1)
    v = np.clip(v, 0, h - 1)
    u0 = np.minimum(np.floor(u).astype(np.intp), w - 2) if w > 1 else np.zeros(u.shape, np.intp)
    v0 = np.minimum(np.floor(v).astype(np.intp), h - 2) if h > 1 else np.zeros(v.shape, np.intp)
    fu, fv = (u - u0).astype(np.float32)[:, None], (v - v0).astype(np.float32)[:, None]
    du, dv = (1 if w > 1 else 0), (w if h > 1 else 0)
    i = v0 * w + u0
    px = lambda j: flat[j].astype(np.float32)  # noqa: E731
    top = px(i) * (1 - fu) + px(i + du) * fu
    bot = px(i + dv) * (1 - fu) + px(i + dv + du) * fu
    out = top * (1 - fv) + bot * fv
    return np.clip(out + 0.5, 0, 255).astype(np.uint8) if rounded else out


@dataclass
class LensMap:
    """Where each pixel of a pinhole view [h,w] samples a lens image: u, v float32 [h,w], its
    pixel-index coordinates there (pixel centres at integers; `remap` takes them), and ok
    bool [h,w]: the lens images that pixel's ray (within its fold, and inside its image, see
    `lens_map`)."""

    u: np.ndarray
    v: np.ndarray
    ok: np.ndarray


def lens_map(camera: Cameras, view: Cameras, rotation: np.ndarray | None = None, reach: float = 0.5) -> LensMap:
    """The `LensMap` of a PINHOLE `view` (1 element) into the image of the lens `camera` (1
    element) at the same position; rotation [3,3]: from the view's axes into the camera's
    (None: the same axes). A ray counts as inside the lens image when it lands at most `reach`
    pixels beyond the outermost pixel centres (0.5: the image's edge; 0: where bilinear sampling
    still has four pixels); a panorama sees every direction. Computed in float64 a band of
    rows at a time (`project_points`), kept in float32 (as OpenCV's CV_32FC1 maps)."""
    model = camera.camera_model[0]
    W, H = int(camera.widths[0]), int(camera.heights[0])
    w, h = int(view.widths[0]), int(view.heights[0])
    K = view.Ks[0]
    R = np.eye(3) if rotation is None else np.asarray(rotation, np.float64)
    Ks, distortion = torch.tensor(camera.Ks), torch.tensor(camera.distortion)
    x = (np.arange(w) + 0.5 - K[0, 2]) / K[0, 0]
    out = LensMap(np.empty((h, w), np.float32), np.empty((h, w), np.float32), np.empty((h, w), bool))
    rows = max(1, BAND_PIXELS // max(w, 1))
    for r in range(0, h, rows):
        y = (np.arange(r, min(h, r + rows)) + 0.5 - K[1, 2]) / K[1, 1]
        xs, ys = np.broadcast_arrays(x[None, :], y[:, None])
        rays = np.stack([xs, ys, np.ones_like(xs)], -1).reshape(-1, 3) @ R.T
        uv = project_points(torch.from_numpy(rays)[None], Ks, model, distortion)[0].numpy()
        u, v = uv[:, 0] - 0.5, uv[:, 1] - 0.5  # pixel-index coordinates
        ok = lens_visible(rays, model, camera.distortion[0])
        if model != "EQUIRECTANGULAR":  # a panorama sees every direction (its seam wraps)
            ok &= (u >= -reach) & (u <= W - 1 + reach) & (v >= -reach) & (v <= H - 1 + reach)
        band = slice(r, r + len(y))
        out.u[band], out.v[band], out.ok[band] = u.reshape(-1, w), v.reshape(-1, w), ok.reshape(-1, w)
    return out


class Undistorter:
    """Undistorts the images of OPENCV cameras into the same pinhole camera (same pose,
    intrinsics and size), as gsplat's and nerfstudio's trainers do. One `LensMap` per distinct
    camera (model, size, intrinsics, distortion): made for the first image that needs it, kept
    while later ones still do, dropped after the last, so a capture of a phone's portrait and
    landscape photos holds two, whatever their order.

    cameras: the capture's `Cameras` [C]; indices: the images that will be undistorted (each
    once). nerfstudio's r^8 term k4 is undistorted with the rest (`project_points` and the
    fold of `lens_visible` both include it)."""

    def __init__(self, cameras: Cameras, indices: list[int] | np.ndarray) -> None:
        self._cameras = cameras
        self._keys = {int(i): _lens_key(cameras, int(i)) for i in indices}
        self._left = Counter(self._keys.values())
        self._maps: dict[tuple, LensMap] = {}

    def __call__(self, i: int, image: np.ndarray, alpha: np.ndarray | None = None, valid: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Image i undistorted: (image uint8 [H,W,3], alpha float32 [H,W,1] or None, valid bool
        [H,W,1]: pixels whose ray the lens images within the photo's outermost pixel centres
        and, given the photo's own `valid` bool [H,W,1] (a loss mask), whose bilinear sample
        touches only valid photo pixels)."""
        key = self._keys[int(i)]
        m = self._maps.get(key)
        if m is None:
            cam = self._cameras[int(i)]
            m = lens_map(cam, view_cameras(cam)[0], reach=0.0)
        self._left[key] -= 1
        if self._left[key] > 0:
            self._maps[key] = m
        else:
            self._maps.pop(key, None)
        ok = m.ok[..., None]
        if valid is not None:
            ok = ok & (remap(valid.astype(np.float32), m.u, m.v) > 0.999)
        return remap(image, m.u, m.v), None if alpha is None else remap(alpha, m.u, m.v), ok


def _lens_key(cameras: Cameras, i: int) -> tuple:
    """What a camera's lens map depends on: model, size, intrinsics, distortion."""
    return (cameras.camera_model[i], int(cameras.widths[i]), int(cameras.heights[i]),
            cameras.Ks[i].tobytes(), cameras.distortion[i].tobytes())


def view_cameras(camera: Cameras, fov_deg: float = 90.0) -> tuple[Cameras, np.ndarray]:
    """The pinhole views of one camera (a 1-element `Cameras`, see the module docstring) and
    their rotations [V,3,3] from view axes into that camera's."""
    model = camera.camera_model[0]
    if model != "EQUIRECTANGULAR":
        view = Cameras(camera.viewmats, camera.Ks, camera.widths, camera.heights, None, "PINHOLE", camera.names)
        return view, np.eye(3)[None]
    fx, fy = camera.Ks[0, 0, 0], camera.Ks[0, 1, 1]
    half = math.tan(math.radians(fov_deg) / 2)
    w, h = max(1, round(2 * fx * half)), max(1, round(2 * fy * half))
    K = centred_K(fx, fy, w, h)
    c2w = camera.to_c2w_opencv()[0]
    rotations = np.stack(list(_CUBE_FACES.values()))
    poses = np.tile(np.eye(4), (len(rotations), 1, 1))
    poses[:, :3, :3] = c2w[:3, :3] @ rotations
    poses[:, :3, 3] = c2w[:3, 3]
    name = camera.names[0]
    names = [None if name is None else f"{name}#{face}" for face in _CUBE_FACES]
    return Cameras.from_c2w_opencv(poses, K, w, h, None, "PINHOLE", names), rotations


def pinhole_views(cameras: Cameras, images: list[np.ndarray], masks: list[np.ndarray] | None = None,
                  fov_deg: float = 90.0) -> PinholeViews:
    """Pinhole views (module docstring) of `cameras` with their images (uint8 [H,W,3]) and masks
    (float [H,W,1]) resampled bilinearly: each view pixel's ray goes through the source lens
    (`project_points`). fov_deg: the field of view of a panorama's cube faces."""
    cams, ims, ms, valid, source = [], [], [], [], []
    for i in range(len(cameras)):
        cam = cameras[i]
        views, rotations = view_cameras(cam, fov_deg)
        if cam.camera_model[0] == "PINHOLE":
            cams.append(views)
            ims.append(images[i])
            ms.append(None if masks is None else masks[i])
            valid.append(np.ones(images[i].shape[:2] + (1,), bool))
            source.append(i)
            continue
        for v in range(len(views)):
            m = lens_map(cam, views[v], rotations[v])
            ok = m.ok[..., None]
            cams.append(views[v])
            ims.append(np.where(ok, remap(images[i][..., :3], m.u, m.v), 0).astype(np.uint8))
            ms.append(None if masks is None else np.where(ok, remap(masks[i], m.u, m.v), 0.0).astype(np.float32))
            valid.append(ok)
            source.append(i)
    return PinholeViews(Cameras.concat(cams), ims, None if masks is None else ms, valid, np.array(source))
