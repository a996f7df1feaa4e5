"""Lens models for projection: where a camera-space point lands in the image, and the local
Jacobian of that mapping (the EWA linearisation), for each camera model a `Cameras` holds.

Pure PyTorch (differentiable through autograd; float32 or float64); see docs/CONVENTIONS.md,
"Camera models", for the formulas. Distortion is a [C,6] tensor in nerfstudio's order
(k1, k2, k3, k4, p1, p2); intrinsics K [C,3,3] in pixels.

    PINHOLE          u = fx x/z + cx                                     (no coefficients)
    OPENCV           radial-tangential on (x/z, y/z): k1 k2 k3 (k4: nerfstudio's r^8) p1 p2
    OPENCV_FISHEYE   equidistant: r_px = f * theta * (1 + k1 t^2 + k2 t^4 + k3 t^6 + k4 t^8)
    EQUIRECTANGULAR  u = fx * longitude + cx, v = fy * latitude + cy       (fx, fy pixels per radian)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.cameras import check_camera_model

# Below this angle from the optical axis the fisheye Jacobian uses its small-angle limit: the
# exact expression divides by r^2 there (float32 would turn it into inf/nan).
_FISHEYE_SMALL_ANGLE = 1e-3


def check_lens(camera_model: str, distortion: torch.Tensor | np.ndarray | Sequence[float] | None) -> None:
    """Raise SplatfilmError when `camera_model` is unknown or `distortion` [C,6] (or [6]) sets a
    coefficient the model does not use (a wrong model silently renders a wrong image)."""
    check_camera_model(camera_model)
    if distortion is None:
        return
    d = distortion.detach().cpu().numpy() if isinstance(distortion, torch.Tensor) else np.asarray(distortion, float)
    d = d.reshape(-1, 6)
    if not np.all(np.isfinite(d)):
        raise SplatfilmError("lens distortion has non-finite values")
    unused = {"PINHOLE": [0, 1, 2, 3, 4, 5], "OPENCV": [], "OPENCV_FISHEYE": [4, 5],
              "EQUIRECTANGULAR": [0, 1, 2, 3, 4, 5]}[camera_model]
    names = ("k1", "k2", "k3", "k4", "p1", "p2")
    for j in unused:
        nonzero = np.nonzero(d[:, j])[0]
        if len(nonzero):
            value = d[nonzero[0], j]
            hint = " (use OPENCV for lens distortion)" if camera_model == "PINHOLE" else ""
            raise SplatfilmError(f"{camera_model} camera with {names[j]} = {value:g}: the model has no {names[j]}{hint}")


def fold_limit(k1: float, k2: float, k3: float, k4: float) -> float:
    """Where a radial polynomial stops growing: the smallest a > 0 with
    d/da [a (1 + k1 a^2 + k2 a^4 + k3 a^6 + k4 a^8)] = 0, or inf if it grows for ever.

    For OPENCV `a` is the undistorted radius sqrt(x^2 + y^2) / z; for OPENCV_FISHEYE it is the
    angle theta. Beyond it the model folds back and would paint points outside the field of
    view into the image, so projection culls Gaussians there (gsplat marks such points invalid).
    """
    # 1 + 3 k1 s + 5 k2 s^2 + 7 k3 s^3 + 9 k4 s^4 = 0 in s = a^2; np.roots wants the highest power first.
    coeffs = np.trim_zeros(np.array([9 * k4, 7 * k3, 5 * k2, 3 * k1, 1.0]), "f")
    roots = np.roots(coeffs) if len(coeffs) > 1 else np.array([])
    real = roots[(np.abs(roots.imag) < 1e-9 * np.maximum(1.0, np.abs(roots.real))) & (roots.real > 0)].real
    return float(math.sqrt(real.min())) if len(real) else math.inf


def _coefficients(distortion: torch.Tensor | None, C: int, like: torch.Tensor) -> list[torch.Tensor]:
    """k1, k2, k3, k4, p1, p2, each [C,1], on `like`'s dtype and device."""
    if distortion is None:
        d = torch.zeros(C, 6, dtype=like.dtype, device=like.device)
    else:
        d = torch.as_tensor(distortion, dtype=like.dtype, device=like.device).reshape(-1, 6).expand(C, 6)
    return [c[:, None] for c in d.unbind(-1)]


def _radial_distort(a, k1, k2, k3, k4):
    """a * (1 + k1 a^2 + k2 a^4 + k3 a^6 + k4 a^8) for numpy arrays (per-camera limits)."""
    s = a * a
    return a * (1 + s * (k1 + s * (k2 + s * (k3 + s * k4))))


def _undistorted_extent(e: float, k: tuple[float, float, float, float], limit: float) -> float:
    """The undistorted radius a in [0, limit] whose radial distortion reaches e (bisection; the
    polynomial increases on that interval); `limit` when it never does."""
    hi = limit if math.isfinite(limit) else max(4.0 * e, 1.0)
    while not math.isfinite(limit) and _radial_distort(hi, *k) < e and hi < 1e6:
        hi *= 2
    if _radial_distort(hi, *k) <= e:
        return hi
    lo = 0.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _radial_distort(mid, *k) < e else (lo, mid)
    return 0.5 * (lo + hi)


def opencv_limits(Ks: np.ndarray, distortion: np.ndarray, width: int, height: int) -> np.ndarray:
    """Per camera [C,5]: where the OPENCV Jacobian is clamped (x-, x+, y-, y+ of x/z, y/z) and
    the fold radius (`fold_limit`) beyond which Gaussians are culled.

    The clamp is the undistorted image: each image edge's distorted extent (e.g. (width - cx) / fx)
    is undistorted along its axis (never past the fold). Unlike the pinhole path's 1.3x field of
    view it does not reach beyond the frame: there the polynomial's slope can grow fast (k2 > 0
    turns barrel into pincushion), and a Jacobian taken that steep smears Gaussians just outside
    the frame across it.
    """
    out = np.zeros((len(Ks), 5))
    for i, (K, d) in enumerate(zip(np.asarray(Ks, float), np.asarray(distortion, float))):
        k = (d[0], d[1], d[2], d[3])
        fold = fold_limit(*k)
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        edges = [cx / fx, (width - cx) / fx, cy / fy, (height - cy) / fy]
        ext = [_undistorted_extent(max(e, 0.0), k, fold) for e in edges]
        out[i, :4] = np.minimum(ext, fold)
        out[i, 4] = fold
    return out


def fisheye_limits(distortion: np.ndarray) -> np.ndarray:
    """Per camera [C]: the largest angle from the axis an OPENCV_FISHEYE camera projects, the
    fold of its polynomial (`fold_limit`), at most pi (z >= near culls before that anyway)."""
    return np.array([min(fold_limit(*d[:4]), math.pi) for d in np.asarray(distortion, float)])


def lens_visible(points_c: np.ndarray, camera_model: str, distortion: np.ndarray | Sequence[float] | None = None,
                 near: float = 1e-6) -> np.ndarray:
    """Which camera-space points [N,3] (OpenCV axes) one camera of `camera_model` images [N]
    bool: for PINHOLE and OPENCV those in front (z > near), OPENCV also inside its fold
    (`fold_limit` of sqrt(x^2 + y^2) / z); for OPENCV_FISHEYE those within its largest angle
    from the axis (`fisheye_limits`); for EQUIRECTANGULAR all but those within `near` of the
    centre. distortion [6] (k1, k2, k3, k4, p1, p2). Whether they land inside the image is
    the caller's test."""
    check_camera_model(camera_model)
    p = np.asarray(points_c, dtype=np.float64).reshape(-1, 3)
    d = np.zeros(6) if distortion is None else np.asarray(distortion, dtype=np.float64).reshape(6)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    if camera_model == "PINHOLE":
        return z > near
    if camera_model == "OPENCV":
        return (z > near) & (np.hypot(x, y) < fold_limit(*d[:4]) * np.maximum(z, near))
    if camera_model == "OPENCV_FISHEYE":
        return np.arctan2(np.hypot(x, y), z) < fisheye_limits(d[None])[0]
    if camera_model == "EQUIRECTANGULAR":
        return np.linalg.norm(p, axis=1) > near
    raise AssertionError(f"{camera_model}: a camera model lens_visible does not handle")


def project_points(points_c: torch.Tensor, Ks: torch.Tensor, camera_model: str,
                   distortion: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel coordinates [C,N,2] of camera-space points [C,N,3] (OpenCV axes) through C cameras
    of one model (Ks [C,3,3], distortion [C,6]). No culling: callers decide what is visible.
    Pixel centres are at half-integers, as everywhere in splatfilm."""
    uv, _ = lens_projection(points_c, Ks, camera_model, distortion, jacobian=False)
    return uv


def pixel_rays(uv: torch.Tensor, Ks: torch.Tensor, camera_model: str, distortion: torch.Tensor | None = None,
               iterations: int = 12, tolerance: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(rays [C,N,3], ok [C,N] bool): the camera-space rays (OpenCV axes) that C cameras of one
    model (Ks [C,3,3], distortion [C,6]) image at pixel positions uv [C,N,2] (centres at
    half-integers), the inverse of `project_points`. Each ray is scaled as a rendered depth
    measures it, so ray * depth is the point: z = 1 for PINHOLE, OPENCV and OPENCV_FISHEYE
    (depth is camera z), unit length for EQUIRECTANGULAR (depth is the distance).

    PINHOLE and EQUIRECTANGULAR invert in closed form. The distorting models take a fixed
    number of Newton steps on (x/z, y/z) from the pinhole ray, with `lens_projection`'s
    Jacobian; ok is False where the lens images no ray there (beyond its fold, or a fisheye's
    90 degrees, which z = 1 cannot reach), detected as a residual above `tolerance` pixels;
    those rays are the pinhole ones."""
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    u, v = uv.unbind(-1)
    if camera_model == "EQUIRECTANGULAR":
        lon, lat = (u - cx) / fx, (v - cy) / fy
        rays = torch.stack([torch.cos(lat) * torch.sin(lon), torch.sin(lat), torch.cos(lat) * torch.cos(lon)], -1)
        return rays, torch.ones_like(u, dtype=torch.bool)
    check_camera_model(camera_model)
    pinhole = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u)], -1)
    if camera_model == "PINHOLE":
        return pinhole, torch.ones_like(u, dtype=torch.bool)
    xy = pinhole[..., :2]
    one = pinhole[..., 2:]
    for _ in range(iterations):
        est, J = lens_projection(torch.cat([xy, one], -1), Ks, camera_model, distortion)
        (a, b), (c, e) = J[..., 0, :2].unbind(-1), J[..., 1, :2].unbind(-1)
        ru, rv = (est - uv).unbind(-1)
        det = a * e - b * c  # a 2x2 solve by hand: linalg.solve raises on a singular one
        step = torch.stack([(e * ru - b * rv) / det, (a * rv - c * ru) / det], -1)
        xy = xy - torch.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0)
    rays = torch.cat([xy, one], -1)
    ok = (project_points(rays, Ks, camera_model, distortion) - uv).norm(dim=-1) <= tolerance
    # Past the fold the polynomial has a second preimage; only the one inside it is the lens's.
    d = np.zeros((Ks.shape[0], 6)) if distortion is None else \
        torch.as_tensor(distortion).detach().cpu().double().reshape(-1, 6).expand(Ks.shape[0], 6).numpy()
    radius = torch.linalg.vector_norm(xy, dim=-1)
    if camera_model == "OPENCV":
        ok &= radius < xy.new_tensor([fold_limit(*di[:4]) for di in d])[:, None]
    else:
        ok &= torch.atan(radius) < xy.new_tensor(fisheye_limits(d))[:, None]
    return torch.where(ok[..., None], rays, pinhole), ok


def lens_projection(points_c: torch.Tensor, Ks: torch.Tensor, camera_model: str,
                    distortion: torch.Tensor | np.ndarray | None = None, jacobian: bool = True,
                    clamp: torch.Tensor | None = None,
                    spread: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(uv [C,N,2], J [C,N,2,3] or None): the projection of camera-space points [C,N,3] and its
    Jacobian d(uv)/d(point). `clamp` [C,4] (OPENCV only): the normalised box (x-, x+, y-, y+)
    the Jacobian's evaluation point is clamped to, like the pinhole path's tangent clamp.
    `spread` [C,N] (EQUIRECTANGULAR only): each Gaussian's size across the polar axis; the
    longitude's rate of change is taken no closer to the poles than that (see below)."""
    check_camera_model(camera_model)
    C = points_c.shape[0]
    x, y, z = points_c.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    k1, k2, k3, k4, p1, p2 = _coefficients(distortion, C, points_c)
    zero = torch.zeros_like(x)

    if camera_model == "PINHOLE":
        uv = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)
        if not jacobian:
            return uv, None
        J = torch.stack([fx / z, zero, -fx * x / z**2, zero, fy / z, -fy * y / z**2], dim=-1)
        return uv, J.reshape(x.shape + (2, 3))

    if camera_model == "OPENCV":

        def distort(xn, yn):
            r2 = xn * xn + yn * yn
            radial = 1 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * k4)))
            xd = xn * radial + 2 * p1 * xn * yn + p2 * (r2 + 2 * xn * xn)
            yd = yn * radial + p1 * (r2 + 2 * yn * yn) + 2 * p2 * xn * yn
            return xd, yd, r2, radial

        xd, yd, _, _ = distort(x / z, y / z)
        uv = torch.stack([fx * xd + cx, fy * yd + cy], dim=-1)
        if not jacobian:
            return uv, None
        xn, yn = x / z, y / z
        if clamp is not None:
            xn = torch.minimum(torch.maximum(xn, -clamp[:, 0, None]), clamp[:, 1, None])
            yn = torch.minimum(torch.maximum(yn, -clamp[:, 2, None]), clamp[:, 3, None])
        _, _, r2, radial = distort(xn, yn)
        dradial = k1 + r2 * (2 * k2 + r2 * (3 * k3 + r2 * 4 * k4))  # d radial / d r2
        dxx = radial + 2 * xn * xn * dradial + 2 * p1 * yn + 6 * p2 * xn
        dxy = 2 * xn * yn * dradial + 2 * p1 * xn + 2 * p2 * yn
        dyx = 2 * xn * yn * dradial + 2 * p1 * xn + 2 * p2 * yn
        dyy = radial + 2 * yn * yn * dradial + 6 * p1 * yn + 2 * p2 * xn
        # d(xn, yn)/d(x, y, z) = [[1/z, 0, -xn/z], [0, 1/z, -yn/z]] at the (clamped) point.
        J = torch.stack([
            fx * dxx / z, fx * dxy / z, -fx * (dxx * xn + dxy * yn) / z,
            fy * dyx / z, fy * dyy / z, -fy * (dyx * xn + dyy * yn) / z,
        ], dim=-1)
        return uv, J.reshape(x.shape + (2, 3))

    if camera_model == "OPENCV_FISHEYE":
        tiny = torch.finfo(points_c.dtype).tiny
        r = torch.sqrt(x * x + y * y + tiny)
        theta = torch.atan2(r, z)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        s = theta_d / r
        uv = torch.stack([fx * s * x + cx, fy * s * y + cy], dim=-1)
        if not jacobian:
            return uv, None
        dtheta_d = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
        rho2 = r * r + z * z
        # g = (dtheta_d * z / rho^2 - s) / r^2: ds/dx = x g, ds/dy = y g. Near the axis both terms
        # tend to 1/z and g to (2 k1 - 2/3) / rho^3; the exact branch is fed a harmless point
        # there so that neither branch puts inf/nan into the backward pass.
        small = theta < _FISHEYE_SMALL_ANGLE
        rr = torch.where(small, z.abs() + 1.0, r)
        th = torch.atan2(rr, z)
        th2 = th * th
        g_exact = ((1 + th2 * (3 * k1 + th2 * (5 * k2 + th2 * (7 * k3 + th2 * 9 * k4)))) * z / (rr * rr + z * z)
                   - th * (1 + th2 * (k1 + th2 * (k2 + th2 * (k3 + th2 * k4)))) / rr) / (rr * rr)
        g = torch.where(small, (2 * k1 - 2.0 / 3.0) / rho2 ** 1.5, g_exact)
        dz = -dtheta_d / rho2  # ds/dz
        J = torch.stack([
            fx * (s + x * x * g), fx * x * y * g, fx * x * dz,
            fy * x * y * g, fy * (s + y * y * g), fy * y * dz,
        ], dim=-1)
        return uv, J.reshape(x.shape + (2, 3))

    if camera_model == "EQUIRECTANGULAR":
        q2 = x * x + z * z
        rho2 = q2 + y * y
        # Exactly on the poles longitude is undefined; nudge x so atan2 has a gradient there.
        pole = q2 <= 1e-14 * rho2
        xs = torch.where(pole, 1e-7 * torch.sqrt(rho2) + torch.finfo(points_c.dtype).tiny, x)
        q = torch.sqrt(xs * xs + z * z)
        lon = torch.atan2(xs, z)
        lat = torch.atan2(y, q)
        uv = torch.stack([fx * lon + cx, fy * lat + cy], dim=-1)
        if not jacobian:
            return uv, None
        # Longitude changes at 1/q per unit across the polar axis, without bound at the poles. A
        # Gaussian of size `spread` near a pole covers every longitude; taking that rate no closer
        # than its own size smears it across about a turn instead of an infinite width.
        qj = q if spread is None else torch.maximum(q, spread)
        rho2 = q * q + y * y
        J = torch.stack([
            fx * z / (q * qj), zero, -fx * xs / (q * qj),
            -fy * xs * y / (q * rho2), fy * q / rho2, -fy * y * z / (q * rho2),
        ], dim=-1)
        return uv, J.reshape(x.shape + (2, 3))

    raise AssertionError(f"{camera_model}: a camera model lens_projection does not handle")
