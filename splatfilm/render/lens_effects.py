"""Lens effects built on the renderer: depth of field and motion blur.

Depth of field works on the Gaussians, so both backends render it the same way: each
Gaussian's circle of confusion (thin lens: from focal length, f-stop and focus distance) is
turned into a blur of standard deviation a quarter of its diameter, added isotropically to
the Gaussian's 3D covariance at its depth (sqrt(s^2 + sigma^2) per axis keeps its
orientation; an anamorphic lens's blur is 1 / squeeze as wide across the camera, below), and its opacity is scaled by the ratio of the 2D footprint areas before and
after as `rasterization` draws them (with its 0.3 px blur, or in antialiased mode without it, as its
compensation does), so an out-of-focus Gaussian spreads the alpha it had over more pixels.
Motion blur averages renders at sub-frame times stratified over the open shutter; how many can
follow from how far the Gaussians move on screen while it is open (`motion_samples`).
"""

from __future__ import annotations

import math

import torch

from splatfilm.scene.gaussians import Gaussians, opacity_logit
from splatfilm.render.projection import project_gaussians, quat_scale_to_covar
from splatfilm.render.rendering import RasterizeMode
from splatfilm.scene.transforms import rotmat_to_quat


def circle_of_confusion_px(depth: torch.Tensor, focal_mm: float, f_stop: float, focus_distance: float,
                           sensor_width_mm: float, width_px: int) -> torch.Tensor:
    """Diameter in pixels of the blur circle of points at camera depth `depth` [...] (metres),
    thin-lens model: c = A f |z - S| / (z (S - f)) with aperture A = f / N."""
    f = focal_mm / 1000.0
    s = max(float(focus_distance), f * 1.001)
    aperture = f / f_stop
    z = depth.clamp_min(1e-6)
    c_sensor = aperture * f * (z - s).abs() / (z * (s - f))
    return c_sensor / (sensor_width_mm / 1000.0) * width_px


def apply_depth_of_field(g: Gaussians, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
                         focal_mm: float, f_stop: float, focus_distance: float, sensor_width_mm: float = 36.0,
                         rasterize_mode: RasterizeMode | torch.Tensor = "classic",
                         pixel_aspect: float = 1.0) -> Gaussians:
    """Gaussians [N] as one camera sees them through a lens focused at `focus_distance` metres
    with aperture f/`f_stop`: blurred by their circle of confusion, each keeping the alpha it
    spreads over the image (opacity x footprint area) as `rasterization` draws it in `rasterize_mode`
    ("classic", "antialiased", or bool [N], True where antialiased).
    viewmat [4,4] world-to-camera (OpenCV), K [3,3]. pixel_aspect: an anamorphic lens's
    squeeze (K's fy / fx): the circle of confusion is measured on the sensor, so it is exact
    along the image's height (fy); the blur is a front anamorphic's oval, squeeze times taller
    than wide once desqueezed: the blur added
    is a camera-space covariance diag(sigma^2 / squeeze^2, sigma^2, sigma^2) (sigma its
    size in the scene), so across the plate it is sigma_y / squeeze^2 pixels and, each pixel
    squeeze wide, sigma_y / squeeze as shown. A spherical lens's blur is isotropic (the
    Gaussian keeps its axes, bit for bit as before)."""
    with torch.no_grad():
        vm, Ks = viewmat[None].to(g.dtype), K[None].to(g.dtype)
        depth = g.means @ vm[0, :3, :3][2] + vm[0, 2, 3]
        coc = circle_of_confusion_px(depth, focal_mm, f_stop, focus_distance, sensor_width_mm, width)
        # The blur in pixels down the image over fy (= fx x pixel_aspect): its size in the scene.
        sigma_world = (coc / 4.0) * depth.clamp_min(1e-6) / (Ks[0, 0, 0] * pixel_aspect)
        scales, quats = g.activated_scales, g.quats
        cov_before = quat_scale_to_covar(quats, scales)
        if pixel_aspect == 1:
            new_scales = torch.sqrt(scales**2 + sigma_world[:, None] ** 2)
            cov_after = quat_scale_to_covar(quats, new_scales)
        else:
            # The oval is the lens's, fixed to the camera: added in camera space, then the sum
            # re-split into axes (eigenvectors, made a right-handed rotation) and scales.
            rot = vm[0, :3, :3]
            shape = torch.tensor([1.0 / pixel_aspect**2, 1.0, 1.0], dtype=g.dtype, device=depth.device)
            blur = rot.T @ torch.diag(shape) @ rot
            # In float64: float32 loses a flat splat's thin axis (1e-5 of 5e-2 came back 0.3x to 3x).
            cov = quat_scale_to_covar(quats.double(), scales.double())
            cov = cov + sigma_world.double()[:, None, None] ** 2 * blur.double()
            variances, axes = torch.linalg.eigh(0.5 * (cov + cov.transpose(-1, -2)))
            axes = axes * torch.linalg.det(axes).sign()[:, None, None]
            new_scales = variances.clamp_min(1e-30).sqrt().to(g.dtype)
            quats = rotmat_to_quat(axes).to(g.dtype)
            cov_after = quat_scale_to_covar(quats, new_scales)
        before = project_gaussians(g.means, cov_before, vm, Ks, width, height)
        after = project_gaussians(g.means, cov_after, vm, Ks, width, height)
        # A splat's summed alpha is opacity x 2 pi sqrt(det) of the covariance it is drawn with:
        # the dilated one (cov + 0.3 px I; det = 1 / det(conic)) in classic mode, which is most of
        # a sub-pixel Gaussian's footprint, so leaving it out dims small highlights to a few
        # percent; the undilated one in antialiased mode, whose compensation
        # sqrt(det / det_dilated) scales the opacity back down to it (det = comp^2 / det(conic)).
        drawn_before, drawn_after = (1.0 / (p.conics[0, :, 0] * p.conics[0, :, 2] - p.conics[0, :, 1] ** 2)
                                     for p in (before, after))
        if isinstance(rasterize_mode, torch.Tensor) or rasterize_mode == "antialiased":
            aa = rasterize_mode.to(depth.device) if isinstance(rasterize_mode, torch.Tensor) else torch.tensor(True)
            drawn_before = torch.where(aa, before.compensations[0] ** 2 * drawn_before, drawn_before)
            drawn_after = torch.where(aa, after.compensations[0] ** 2 * drawn_after, drawn_after)
        ratio = torch.sqrt(drawn_before.clamp_min(1e-20) / drawn_after.clamp_min(1e-20)).clamp(0.0, 1.0)
        ratio = torch.where(torch.isfinite(ratio), ratio, torch.ones_like(ratio))
        op = g.activated_opacities * ratio
        return Gaussians(g.means, quats, torch.log(new_scales), opacity_logit(op, 1e-7), g.sh0, g.shN)


def shutter_interval(frame_time: float, fps: float, shutter_deg: float) -> tuple[float, float]:
    """When the shutter opens and closes (seconds): open shutter_deg / 360 / fps seconds,
    centred on `frame_time`."""
    open_s = shutter_deg / 360.0 / fps
    return frame_time - open_s / 2, frame_time + open_s / 2


def shutter_times(frame_time: float, fps: float, shutter_deg: float, samples: int) -> list[float]:
    """`samples` sub-frame times (seconds), one at the middle of each of `samples` equal slices
    of the open shutter (`shutter_interval`), as renderers stratify shutter time. Their spread
    is the open interval's (a moving point's streak has a box's standard deviation,
    L / sqrt(12)); samples at both ends instead stretched it to L sqrt((n + 1) / (12 (n - 1))),
    22% more at 5, and lit its two ends."""
    if samples <= 1:
        return [frame_time]
    t0, t1 = shutter_interval(frame_time, fps, shutter_deg)
    return [t0 + (t1 - t0) * (i + 0.5) / samples for i in range(samples)]


MOTION_SAMPLE_SPACING = 2.0
"""How far apart, in standard deviations of its own screen footprint, a Gaussian's sub-frame
images may fall: a row of Gaussians 2 sigma apart ripples by 2 exp(-2 pi^2 / 4) = 1.4%."""

MOTION_SAMPLES_MOST = 32
"""The most sub-frames `samples: auto` renders a frame with (a sub-pixel speck crossing 40 px
while the shutter is open needs about that many)."""


def motion_samples(g_open: Gaussians, g_close: Gaussians, viewmats: torch.Tensor, Ks: torch.Tensor, width: int,
                   height: int, most: int = MOTION_SAMPLES_MOST, camera_model: str = "PINHOLE",
                   distortion: torch.Tensor | None = None) -> int:
    """How many shutter samples (1 to `most`) keep every Gaussian seen at the shutter's opening
    from strobing: its screen travel while the shutter is open over MOTION_SAMPLE_SPACING
    times its footprint's smallest standard deviation (the 0.3 px blur included), the largest
    over the Gaussians. g_open, g_close: the same Gaussians [N] at the shutter's opening and
    closing; viewmats [2,4,4], Ks [2,3,3] the cameras then (distortion [2,6] for OPENCV
    lenses). 1 where nothing moves: one render is the whole exposure."""
    if len(g_open) != len(g_close):  # the world gained or lost Gaussians mid-shutter: no pairing
        return most
    if len(g_open) == 0:
        return 1
    with torch.no_grad():
        ends = [project_gaussians(g.means, quat_scale_to_covar(g.quats, g.activated_scales), viewmats[k:k + 1],
                                  Ks[k:k + 1], width, height, g.activated_opacities, camera_model=camera_model,
                                  distortion=None if distortion is None else distortion[k:k + 1])
                for k, g in enumerate((g_open, g_close))]
        seen = (ends[0].radii[0] > 0).all(-1)
        travel = (ends[1].means2d[0] - ends[0].means2d[0]).norm(dim=-1)
        a, b, c = ends[0].conics[0].unbind(-1)  # the inverse covariance: its largest eigenvalue is 1 / sigma_min^2
        largest = 0.5 * (a + c) + torch.sqrt((0.5 * (a - c)) ** 2 + b**2)
        steps = travel * largest.clamp_min(1e-12).sqrt() / MOTION_SAMPLE_SPACING
        steps = torch.where(seen & torch.isfinite(steps), steps, torch.zeros_like(steps))
    return int(min(most, max(1, math.ceil(float(steps.max())))))
