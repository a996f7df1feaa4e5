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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from splatfilm.scene.cameras import Cameras
from splatfilm.render.camera_models import lens_visible, project_points

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
    """Bilinear sample image [H,W,C] (uint8 or float) at (u, v) pixel-index coordinates (pixel
    centres at integers), clamped to the border; uint8 images are rounded back to uint8."""
    h, w = image.shape[:2]
    u = np.clip(u, 0, w - 1)
    v = np.clip(v, 0, h - 1)
    u0 = np.minimum(np.floor(u).astype(int), w - 2) if w > 1 else np.zeros_like(u, int)
    v0 = np.minimum(np.floor(v).astype(int), h - 2) if h > 1 else np.zeros_like(v, int)
    fu, fv = (u - u0)[..., None], (v - v0)[..., None]
    im = image.astype(np.float32)
    top = im[v0, u0] * (1 - fu) + im[v0, u0 + 1] * fu
    bot = im[v0 + 1, u0] * (1 - fu) + im[v0 + 1, u0 + 1] * fu
    out = top * (1 - fv) + bot * fv
    return np.clip(out + 0.5, 0, 255).astype(np.uint8) if image.dtype == np.uint8 else out


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
    K = np.array([[fx, 0, w / 2], [0, fy, h / 2], [0, 0, 1]])
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
        W, H = int(cam.widths[0]), int(cam.heights[0])
        for v in range(len(views)):
            w, h = int(views.widths[v]), int(views.heights[v])
            K = views.Ks[v]
            xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
            rays = np.stack([(xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1], np.ones_like(xs)], -1) @ rotations[v].T
            rays = rays.reshape(-1, 3)
            uv = project_points(torch.from_numpy(rays)[None], torch.tensor(cam.Ks), cam.camera_model[0],
                                torch.tensor(cam.distortion))[0].numpy()
            u, vv = uv[:, 0] - 0.5, uv[:, 1] - 0.5  # pixel-index coordinates
            ok = lens_visible(rays, cam.camera_model[0], cam.distortion[0])
            if cam.camera_model[0] != "EQUIRECTANGULAR":  # a panorama sees every direction (its seam wraps)
                ok &= (u >= -0.5) & (u <= W - 0.5) & (vv >= -0.5) & (vv <= H - 0.5)
            u, vv, ok = u.reshape(h, w), vv.reshape(h, w), ok.reshape(h, w, 1)
            cams.append(views[v])
            ims.append(np.where(ok, remap(images[i][..., :3], u, vv), 0).astype(np.uint8))
            ms.append(None if masks is None else np.where(ok, remap(masks[i], u, vv), 0.0).astype(np.float32))
            valid.append(ok)
            source.append(i)
    return PinholeViews(Cameras.concat(cams), ims, None if masks is None else ms, valid, np.array(source))
