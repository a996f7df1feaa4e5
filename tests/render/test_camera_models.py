"""Camera models (render/camera_models.py, the lens path of render/projection.py) against
OpenCV's projectPoints / fisheye.projectPoints, gsplat's PyTorch fisheye reference, nerfstudio's
equirectangular rays, autograd, and images: a distorted render undistorted by OpenCV matches the
pinhole render."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from helpers import SCENES, intrinsics, look_at
from splatfilm.errors import SplatfilmError
from splatfilm.io.camera_files import read_transforms_json
from splatfilm.io.gaussian_files import load_gaussians
from splatfilm.render import rasterization
from splatfilm.render.camera_models import check_lens, fold_limit, lens_projection, pixel_rays, project_points
from splatfilm.render.projection import project_gaussians, quat_scale_to_covar
from splatfilm.render.rendering import gsplat_lens_arguments
from splatfilm.scene.gaussians import Gaussians

f64 = torch.float64
K = np.array([[300.0, 0, 160.0], [0, 310.0, 120.0], [0, 0, 1]])
OPENCV_CASES = [
    [-0.2, 0.05, 0.01, 0.0, 0.002, -0.001],
    [0.3, -0.1, 0.02, 0.0, -0.004, 0.003],
    [-0.05, 0.0, 0.0, 0.0, 0.0, 0.0],
]
FISHEYE_CASES = [[0.1, -0.05, 0.02, -0.01, 0, 0], [-0.03, 0.01, 0.0, 0.0, 0, 0], [0, 0, 0, 0, 0, 0]]


def points(n=300, seed=0, spread=(0.6, 0.5, 0.3), z=2.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) * spread + [0.0, 0.0, z]


def proj(P, model, d, Kc=K):
    return project_points(torch.tensor(P)[None], torch.tensor(Kc)[None], model, torch.tensor(d, dtype=f64)[None])[0]


@pytest.mark.parametrize("model,d", [("PINHOLE", [0] * 6), ("EQUIRECTANGULAR", [0] * 6)]
                         + [("OPENCV", d) for d in OPENCV_CASES] + [("OPENCV_FISHEYE", d) for d in FISHEYE_CASES])
def test_pixel_rays_invert_project_points(d, model):
    """pixel_rays is project_points' inverse, scaled as depth measures: z = 1, or unit length."""
    P = points()
    uv = proj(P, model, d)
    rays, ok = pixel_rays(uv[None], torch.tensor(K)[None], model, torch.tensor(d, dtype=f64)[None])
    assert ok.all()
    assert (proj(rays[0].numpy(), model, d) - uv).abs().max() < 1e-9
    direction = P / np.linalg.norm(P, axis=1, keepdims=True)
    scale = 1.0 if model == "EQUIRECTANGULAR" else P[:, 2:] / np.linalg.norm(P, axis=1, keepdims=True)
    assert np.abs(rays[0].numpy() - direction / scale).max() < 1e-9


def cv_K(Kc):
    """OpenCV puts pixel centres on integers, splatfilm on half-integers."""
    Kc = np.array(Kc, dtype=np.float64)
    Kc[0, 2] -= 0.5
    Kc[1, 2] -= 0.5
    return Kc


# ---- point projection ------------------------------------------------------------------------


@pytest.mark.parametrize("d", OPENCV_CASES)
def test_opencv_matches_cv2_project_points(d):
    P = points()
    ref, _ = cv2.projectPoints(P, np.zeros(3), np.zeros(3), cv_K(K), np.array([d[0], d[1], d[4], d[5], d[2]]))
    np.testing.assert_allclose(proj(P, "OPENCV", d).numpy() - 0.5, ref[:, 0], atol=1e-9)


def test_opencv_k4_is_nerfstudios_r8_term():
    P = points(50)
    d = [-0.1, 0.02, 0.0, 0.004, 0.0, 0.0]
    xn, yn = P[:, 0] / P[:, 2], P[:, 1] / P[:, 2]
    r2 = xn**2 + yn**2
    radial = 1 - 0.1 * r2 + 0.02 * r2**2 + 0.004 * r2**4
    np.testing.assert_allclose(proj(P, "OPENCV", d).numpy(), np.stack([300 * xn * radial + 160, 310 * yn * radial + 120], -1))


@pytest.mark.parametrize("d", FISHEYE_CASES)
def test_fisheye_matches_cv2_fisheye_project_points(d):
    P = points(spread=(1.5, 1.2, 0.3), z=1.0)  # up to ~60 degrees off axis
    ref, _ = cv2.fisheye.projectPoints(P[:, None, :], np.zeros(3), np.zeros(3), cv_K(K), np.array(d[:4], dtype=float))
    np.testing.assert_allclose(proj(P, "OPENCV_FISHEYE", d).numpy() - 0.5, ref[:, 0], atol=1e-9)


def test_fisheye_matches_gsplat_torch_reference():
    from gsplat.cuda._torch_impl import _fisheye_proj

    P = torch.tensor(points(100, spread=(1.2, 1.0, 0.3), z=1.5))[None]
    rng = np.random.default_rng(1)
    A = torch.tensor(rng.normal(size=(100, 3, 3)) * 0.05)
    covs = (A @ A.transpose(-1, -2))[None]
    means2d_ref, cov2d_ref = _fisheye_proj(P, covs, torch.tensor(K)[None], 320, 240)
    uv, J = lens_projection(P, torch.tensor(K)[None], "OPENCV_FISHEYE", None)
    # gsplat nudges x and the angle by 1e-7 to avoid dividing by zero; otherwise the same maths.
    torch.testing.assert_close(uv, means2d_ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(J @ covs @ J.transpose(-1, -2), cov2d_ref, atol=1e-3, rtol=1e-5)


def nerfstudio_equirect_direction(u, v, w, h):
    """nerfstudio's Cameras ray for an equirectangular pixel (fx = w/2, fy = h, OpenGL axes),
    returned in OpenCV camera axes."""
    cx, cy, fx, fy = w / 2, h / 2, w / 2, h
    cu, cv = (u - cx) / fx, -(v - cy) / fy
    theta, phi = -np.pi * cu, np.pi * (0.5 - cv)
    d_gl = np.stack([-np.sin(theta) * np.sin(phi), np.cos(phi), -np.cos(theta) * np.sin(phi)], -1)
    return d_gl * [1, -1, -1]


def test_equirectangular_is_nerfstudios_panorama():
    w, h = 400, 200
    Ke = np.array([[w / (2 * np.pi), 0, w / 2], [0, h / np.pi, h / 2], [0, 0, 1]])
    rng = np.random.default_rng(2)
    uv = np.stack([rng.uniform(1, w - 1, 200), rng.uniform(1, h - 1, 200)], -1)
    dirs = nerfstudio_equirect_direction(uv[:, 0], uv[:, 1], w, h) * rng.uniform(0.5, 5, (200, 1))
    np.testing.assert_allclose(proj(dirs, "EQUIRECTANGULAR", [0] * 6, Ke).numpy(), uv, atol=1e-9)
    # Forward is the centre, right a quarter turn later, up is the top row, behind is the seam.
    named = proj(np.array([[0, 0, 1.0], [1, 0, 0], [0, -1, 1e-9], [-1e-9, 0, -1]]), "EQUIRECTANGULAR", [0] * 6, Ke)
    np.testing.assert_allclose(named.numpy()[[0, 1, 3]], [[200, 100], [300, 100], [0, 100]], atol=1e-5)
    assert named[2, 1] == pytest.approx(0, abs=1e-5)  # the pole (its longitude is anything)


# ---- Jacobians and gradients ------------------------------------------------------------------


@pytest.mark.parametrize("model, d", [("OPENCV", OPENCV_CASES[0]), ("OPENCV_FISHEYE", FISHEYE_CASES[0]),
                                      ("EQUIRECTANGULAR", [0] * 6), ("PINHOLE", [0] * 6)])
def test_jacobian_is_the_derivative_of_the_projection(model, d):
    P = torch.tensor(np.concatenate([points(20, seed=3), [[0, 0, 2.0], [1e-7, -2e-7, 1.0], [3e-3, 1e-3, 1.0]]]))
    _, J = lens_projection(P[None], torch.tensor(K)[None], model, torch.tensor(d, dtype=f64)[None])
    def one(p):
        return project_points(p[None, None], torch.tensor(K)[None], model, torch.tensor(d, dtype=f64)[None])[0, 0]

    for i in range(len(P)):
        torch.testing.assert_close(J[0, i], torch.autograd.functional.jacobian(one, P[i]), atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize("model, d", [("OPENCV", OPENCV_CASES[0]), ("OPENCV_FISHEYE", FISHEYE_CASES[0]),
                                      ("EQUIRECTANGULAR", [0] * 6)])
def test_projection_gradcheck(model, d):
    rng = np.random.default_rng(4)
    means = torch.tensor(rng.normal(size=(4, 3)) * 0.4, requires_grad=True)
    quats = torch.tensor(rng.normal(size=(4, 4)), requires_grad=True)
    scales = torch.tensor(np.exp(rng.normal(size=(4, 3)) * 0.3 - 2.5), requires_grad=True)
    V = look_at((0.2, -3.0, 0.5), (0, 0, 0))[None]
    Kc = (intrinsics(60.0, 62.0, 40.0, 30.0) if model != "EQUIRECTANGULAR"
          else intrinsics(80 / (2 * math.pi), 40 / math.pi, 40.0, 20.0))[None]
    dist = torch.tensor(d, dtype=f64)[None]

    def f(means, quats, scales):
        p = project_gaussians(means, quat_scale_to_covar(quats, scales), V, Kc, 80, 60 if model != "EQUIRECTANGULAR" else 40,
                              camera_model=model, distortion=dist)
        assert (p.radii > 0).all()
        return p.means2d, p.conics

    assert torch.autograd.gradcheck(f, (means, quats, scales), eps=1e-6, atol=1e-5, rtol=1e-4)


# ---- culling, seams, checks ---------------------------------------------------------------------


def test_fold_is_culled():
    # r (1 - 0.3 r^2) stops growing at r = 1/3 sqrt(10/3)... = sqrt(1 / 0.9): beyond it the model
    # folds back into the image, so Gaussians there are culled (a ghost otherwise).
    d = [-0.3, 0, 0, 0, 0, 0]
    assert fold_limit(*d[:4]) == pytest.approx(math.sqrt(1 / 0.9))
    assert fold_limit(0.1, 0.01, 0, 0) == math.inf
    means = torch.tensor([[0.2, 0.0, 1.0], [1.5, 0.0, 1.0]], dtype=f64)  # r = 0.2 and r = 1.5 (folded)
    uv = proj(means.numpy(), "OPENCV", d)
    assert 0 < uv[1, 0] < 320  # the folded point lands inside the image...
    covars = torch.eye(3, dtype=f64).expand(2, 3, 3) * 1e-4
    p = project_gaussians(means, covars, torch.eye(4, dtype=f64)[None], torch.tensor(K)[None], 320, 240,
                          camera_model="OPENCV", distortion=torch.tensor([d], dtype=f64))
    assert p.radii[0, 0, 0] > 0 and p.radii[0, 1, 0] == 0  # ...but is not drawn


def splat_scene(positions, colors, scale=0.08):
    n = len(positions)
    rgb = torch.tensor(colors, dtype=torch.float32)
    return Gaussians(
        means=torch.tensor(positions, dtype=torch.float32),
        quats=torch.tensor([[1.0, 0, 0, 0]] * n),
        scales=torch.full((n, 3), math.log(scale)),
        opacities=torch.full((n,), 4.0),
        sh0=((rgb - 0.5) / 0.28209479177387814)[:, None, :],
        shN=torch.zeros(n, 0, 3),
    )


def test_equirectangular_sees_all_round_and_joins_the_seam():
    # Camera at the origin looking down +y (world z up); red ahead, green behind (on the seam),
    # blue to the right, white overhead.
    g = splat_scene([[0, 2, 0], [0, -2, 0], [2, 0, 0], [0, 0, 2]], [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], 0.15)
    V = look_at((0, 0, 0), (0, 1, 0)).float()[None]
    w, h = 128, 64
    Ke = intrinsics(w / (2 * math.pi), h / math.pi, w / 2, h / 2).float()[None]
    out = rasterization(g, V, Ke, w, h, backend="cpu", camera_model="EQUIRECTANGULAR")
    rgb = out.rgb[0]
    assert rgb[32, 64, 0] > 0.8 and rgb[32, 96, 2] > 0.8  # ahead, right
    # Overhead, on the pole: a band across the top rows, wider than half the panorama.
    assert rgb[0, :, 0].max() > 0.8 and (rgb[0, :, 0] > 0.1).sum() > 64 and rgb[8:24, :, 1].sum() < 1.0
    # The Gaussian behind straddles the seam: half of it at each edge, the same on both sides.
    left, right = rgb[26:39, :5, 1], rgb[26:39, -5:, 1].flip(1)
    assert left.max() > 0.8 and right.max() > 0.8
    torch.testing.assert_close(left, right, atol=0.02, rtol=0)
    assert out.depth[0, 32, 64, 0] == pytest.approx(2.0, abs=0.05)  # depth is the distance


def test_lens_checks_and_gsplat_arguments():
    with pytest.raises(SplatfilmError, match="OPENCV_FISHEYE camera with p1 = 0.01: the model has no p1"):
        check_lens("OPENCV_FISHEYE", [0, 0, 0, 0, 0.01, 0])
    with pytest.raises(SplatfilmError, match="PINHOLE camera with k1"):
        check_lens("PINHOLE", [0.1, 0, 0, 0, 0, 0])
    with pytest.raises(SplatfilmError, match="not one of"):
        check_lens("FISHEYE624", None)
    with pytest.raises(SplatfilmError, match="gsplat' has no equirectangular camera; the cpu backend renders it"):
        gsplat_lens_arguments("EQUIRECTANGULAR", None)
    with pytest.raises(SplatfilmError, match="k4"):
        gsplat_lens_arguments("OPENCV", torch.tensor([[0.1, 0, 0, 0.01, 0, 0]]))
    assert gsplat_lens_arguments("PINHOLE", None) == {}
    assert gsplat_lens_arguments("OPENCV_FISHEYE", torch.zeros(2, 6)) == {"camera_model": "fisheye"}
    a = gsplat_lens_arguments("OPENCV", torch.tensor([[0.1, 0.2, 0.3, 0, 0.4, 0.5]]))
    assert a["with_ut"] and a["with_eval3d"] and a["camera_model"] == "pinhole"
    torch.testing.assert_close(a["radial_coeffs"], torch.tensor([[0.1, 0.2, 0.3, 0, 0, 0]]))
    torch.testing.assert_close(a["tangential_coeffs"], torch.tensor([[0.4, 0.5]]))
    a = gsplat_lens_arguments("OPENCV_FISHEYE", torch.tensor([[0.1, 0.2, 0.3, 0.4, 0, 0]]))
    assert a["camera_model"] == "fisheye" and a["with_ut"] and a["radial_coeffs"].shape == (1, 4)
    with pytest.raises(SplatfilmError, match="no p2"):
        rasterization(splat_scene([[0, 0, 2]], [[1, 1, 1]]), torch.eye(4)[None], torch.tensor(K).float()[None], 32, 24,
                      backend="cpu", camera_model="OPENCV_FISHEYE", distortion=[0, 0, 0, 0, 0, 0.1])


# ---- images: a distorted render, undistorted by OpenCV, is the pinhole render ------------------


@pytest.fixture(scope="module")
def set_view():
    g = load_gaussians(SCENES / "set" / "fitted" / "set.ply")
    cam = read_transforms_json(SCENES / "set" / "transforms.json")[5].resized(160, 120)
    V, Kc = cam.to_tensors(torch.float32)
    # Only what this camera can see (a generous frustum), to keep the test fast.
    keep = project_gaussians(g.means.double(), quat_scale_to_covar(g.quats, g.activated_scales).double(), V.double(),
                             Kc.double() * torch.tensor([[0.5, 1, 1], [1, 0.5, 1], [1, 1, 1]], dtype=f64),
                             160, 120).radii[0, :, 0] > 0
    g = g.select(keep)
    with torch.no_grad():
        pinhole = rasterization(g, V, Kc, 160, 120, backend="cpu").rgb[0].numpy()
    return g, V, Kc, pinhole


def psnr_np(a, b, mask):
    return float(10 * np.log10(1.0 / ((a - b) ** 2)[mask].mean()))


@pytest.mark.parametrize("model, d, scale", [("OPENCV", [-0.25, 0.06, 0.0, 0.0, 0.002, -0.003], 1.0),
                                             ("OPENCV_FISHEYE", [0.08, -0.02, 0.01, 0.0, 0.0, 0.0], 0.8)])
def test_distorted_render_undistorts_to_the_pinhole_render(set_view, model, d, scale):
    g, V, Kc, pinhole = set_view
    Kd = Kc.clone()
    Kd[0, 0, 0] *= scale
    Kd[0, 1, 1] *= scale
    K_cv, Kd_cv = cv_K(Kc[0].double().numpy()), cv_K(Kd[0].double().numpy())
    if model == "OPENCV":
        maps = cv2.initUndistortRectifyMap(Kd_cv, np.array([d[0], d[1], d[4], d[5], d[2]]), None, K_cv, (160, 120),
                                           cv2.CV_32FC1)
    else:
        maps = cv2.fisheye.initUndistortRectifyMap(Kd_cv, np.array(d[:4]), np.eye(3), K_cv, (160, 120), cv2.CV_32FC1)
    mask = (maps[0] >= 0) & (maps[0] <= 159) & (maps[1] >= 0) & (maps[1] <= 119)
    scores = []
    wrong = list(d)
    wrong[0] = -wrong[0]
    for coeffs in (d, wrong):
        with torch.no_grad():
            img = rasterization(g, V, Kd, 160, 120, backend="cpu", camera_model=model, distortion=coeffs).rgb[0].numpy()
        scores.append(psnr_np(cv2.remap(img, *maps, cv2.INTER_LINEAR), pinhole, mask))
    assert mask.mean() > 0.95
    # Measured: OPENCV 34.7 dB (19.1 with k1 flipped), fisheye 29.6 dB (22.5 flipped); the
    # undistortion's own resampling blur keeps the right lens from scoring higher.
    assert scores[0] > 27.5 and scores[1] < 25.0, scores


def test_a_wide_distorted_lens_does_not_smear_gaussians_beyond_the_frame_across_it():
    """A 72 px focal OPENCV lens (k1 -0.2, k2 0.05: its curve steepens past the frame) over the
    whole set: the Jacobian was taken at 1.3x the field, where the slope is 2.9 against 1.06 at
    the edge, and Gaussians outside the frame were drawn as a haze across it (18 dB undistorted
    against the pinhole render; 28.5 dB clamped at the frame's edge)."""
    g = load_gaussians(SCENES / "set" / "fitted" / "set.ply")
    cam = read_transforms_json(SCENES / "set" / "transforms.json")[12].resized(192, 108)
    V, K = cam.to_tensors(torch.float32)
    K[0, :2, :2] *= 0.45
    d = [-0.2, 0.05, 0.0, 0.0, 0.0, 0.0]
    with torch.no_grad():
        pinhole = rasterization(g, V, K, 192, 108, backend="cpu").rgb[0].numpy()
        img = rasterization(g, V, K, 192, 108, backend="cpu", camera_model="OPENCV", distortion=d).rgb[0].numpy()
    K_cv = cv_K(K[0].double().numpy())
    maps = cv2.initUndistortRectifyMap(K_cv, np.array([d[0], d[1], d[4], d[5], d[2]]), None, K_cv, (192, 108),
                                       cv2.CV_32FC1)
    mask = (maps[0] >= 0) & (maps[0] <= 191) & (maps[1] >= 0) & (maps[1] <= 107)
    assert psnr_np(cv2.remap(img, *maps, cv2.INTER_LINEAR), pinhole, mask) > 26.0


def test_every_lens_function_refuses_an_unknown_camera_model_in_the_same_words():
    from splatfilm.render.camera_models import check_lens, lens_projection, lens_visible, pixel_rays
    from splatfilm.scene.cameras import CAMERA_MODELS, Cameras, check_camera_model

    for model in CAMERA_MODELS:
        check_camera_model(model)
    expected = "camera model 'FISHEYE624' is not one of PINHOLE, OPENCV, OPENCV_FISHEYE, EQUIRECTANGULAR"
    K = torch.tensor([[[100.0, 0, 32], [0, 100, 24], [0, 0, 1]]])
    calls = [lambda: check_camera_model("FISHEYE624"),
             lambda: check_lens("FISHEYE624", None),
             lambda: lens_visible(np.ones((1, 3)), "FISHEYE624"),
             lambda: pixel_rays(torch.ones(1, 1, 2), K, "FISHEYE624"),
             lambda: lens_projection(torch.ones(1, 1, 3), K, "FISHEYE624")]
    for call in calls:
        with pytest.raises(SplatfilmError) as e:
            call()
        assert str(e.value) == expected
    with pytest.raises(SplatfilmError) as e:
        Cameras(np.eye(4)[None], K.numpy(), 64, 48, camera_model="FISHEYE624")
    assert str(e.value) == "camera 0: " + expected
