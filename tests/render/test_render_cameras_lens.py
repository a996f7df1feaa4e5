"""render-cameras on a distorted capture reproduces its plates.

The plates are made without splatfilm's lens code: pinhole renders over a wider field, warped
into OPENCV-distorted photos by OpenCV (`cv2.undistortPoints` gives, for every distorted pixel,
where it sits in the pinhole image)."""

from __future__ import annotations

import cv2
import imageio.v3 as iio
import numpy as np
import torch

from helpers import SCENES
from splatfilm.io.camera_files import read_transforms_json, write_transforms_json
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.io.images import write_png
from splatfilm.render import rasterization
from splatfilm.render.projection import project_gaussians, quat_scale_to_covar
from splatfilm.render.render_cameras import RenderSettings, render_cameras
from splatfilm.scene.cameras import Cameras

W, H = 120, 90
DIST = [-0.28, 0.07, 0.0, 0.0, 0.003, -0.002]  # k1 k2 k3 k4 p1 p2: a wide lens's barrel


def cv_K(K):
    K = np.array(K, dtype=np.float64)
    K[0, 2] -= 0.5
    K[1, 2] -= 0.5
    return K


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2)))


def test_render_cameras_reproduces_distorted_plates(tmp_path):
    g = load_gaussians(SCENES / "set" / "fitted" / "set.ply")
    base = read_transforms_json(SCENES / "set" / "transforms.json")[[4]].resized(W, H)
    # The scene cut to what the camera sees (over a wide margin), to keep the test quick.
    V, K = base.to_tensors(torch.float32)
    K[:, :2, :2] *= 0.4
    radii = project_gaussians(g.means, quat_scale_to_covar(g.quats, g.activated_scales), V, K, W, H).radii
    g = g.select(radii[0, :, 0] > 0)
    scene = tmp_path / "scene.ply"
    save_gaussians(scene, g)
    cams = Cameras(base.viewmats, base.Ks, W, H, np.array([DIST]), "OPENCV", ["images/a.png"])
    (tmp_path / "cap" / "images").mkdir(parents=True)
    # The pinhole source covers 1.6x the frame so every distorted pixel finds its scene point.
    Ws, Hs = int(1.6 * W), int(1.6 * H)
    plates, pinholes = [], []
    for i in range(len(cams)):
        K = cams.Ks[i]
        Ks = K.copy()
        Ks[0, 2], Ks[1, 2] = Ws / 2, Hs / 2
        V = torch.tensor(cams.viewmats[i:i + 1], dtype=torch.float32)
        with torch.no_grad():
            src = rasterization(g, V, torch.tensor(Ks[None], dtype=torch.float32), Ws, Hs, backend="cpu").rgb[0].numpy()
            pinholes.append(rasterization(g, V, torch.tensor(K[None], dtype=torch.float32), W, H,
                                          backend="cpu").rgb[0].numpy())
        grid = np.stack(np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64)), -1).reshape(-1, 1, 2)
        dcv = np.array([DIST[0], DIST[1], DIST[4], DIST[5], DIST[2]])
        at = cv2.undistortPoints(grid, cv_K(K), dcv, P=cv_K(Ks),
                                 criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10)).reshape(H, W, 2)
        assert at[..., 0].min() > 0 and at[..., 0].max() < Ws - 1 and at[..., 1].min() > 0 and at[..., 1].max() < Hs - 1
        plate = cv2.remap(src, at[..., 0].astype(np.float32), at[..., 1].astype(np.float32), cv2.INTER_LINEAR)
        write_png(tmp_path / "cap" / cams.names[i], plate)
        plates.append(iio.imread(tmp_path / "cap" / cams.names[i]))
    write_transforms_json(tmp_path / "cap" / "transforms.json", cams)

    written = render_cameras(scene, tmp_path / "cap" / "transforms.json", tmp_path / "out",
                             RenderSettings(backend="cpu"), progress=False)
    for i, png in enumerate(written):
        frame = iio.imread(png)
        undistorted = np.clip(np.round(pinholes[i] * 255), 0, 255)
        # Measured: 32.2 dB against the plate; the same camera without its distortion: 21.6 dB.
        assert psnr(frame, plates[i]) > 29.0
        assert psnr(undistorted, plates[i]) < 25.0
