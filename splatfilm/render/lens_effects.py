"""Lens effects built on the renderer: depth of field and motion blur.

Depth of field works on the Gaussians, so both backends render it the same way: each
Gaussian's circle of confusion (thin lens: from focal length, f-stop and focus distance) is
turned into a blur of standard deviation a quarter of its diameter, added isotropically to
the Gaussian's 3D covariance at its depth (sqrt(s^2 + sigma^2) per axis keeps its
orientation), and its opacity is scaled by the ratio of the 2D footprint areas before and
after, so an out-of-focus Gaussian spreads the same energy over more pixels.
Motion blur averages renders at sub-frame times across the shutter.
"""

from __future__ import annotations

import torch

from splatfilm.scene.gaussians import Gaussians, opacity_logit
from splatfilm.render.projection import project_gaussians, quat_scale_to_covar


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
                         focal_mm: float, f_stop: float, focus_distance: float, sensor_width_mm: float = 36.0) -> Gaussians:
    """Gaussians [N] as one camera sees them through a lens focused at `focus_distance` metres
    with aperture f/`f_stop`: blurred by their circle of confusion, energy preserved.
    viewmat [4,4] world-to-camera (OpenCV), K [3,3]."""
    with torch.no_grad():
        vm, Ks = viewmat[None].to(g.dtype), K[None].to(g.dtype)
        depth = g.means @ vm[0, :3, :3][2] + vm[0, 2, 3]
        coc = circle_of_confusion_px(depth, focal_mm, f_stop, focus_distance, sensor_width_mm, width)
        sigma_world = (coc / 4.0) * depth.clamp_min(1e-6) / Ks[0, 0, 0]
        scales = g.activated_scales
        new_scales = torch.sqrt(scales**2 + sigma_world[:, None] ** 2)
        before = project_gaussians(g.means, quat_scale_to_covar(g.quats, scales), vm, Ks, width, height)
        after = project_gaussians(g.means, quat_scale_to_covar(g.quats, new_scales), vm, Ks, width, height)
        # Footprint area ~ sqrt(det(cov2d)); det = comp^2 / det(conic) (without the 0.3 px blur).
        det_before = before.compensations[0] ** 2 / (before.conics[0, :, 0] * before.conics[0, :, 2] - before.conics[0, :, 1] ** 2)
        det_after = after.compensations[0] ** 2 / (after.conics[0, :, 0] * after.conics[0, :, 2] - after.conics[0, :, 1] ** 2)
        ratio = torch.sqrt(det_before.clamp_min(1e-20) / det_after.clamp_min(1e-20)).clamp(0.0, 1.0)
        ratio = torch.where(torch.isfinite(ratio), ratio, torch.ones_like(ratio))
        op = g.activated_opacities * ratio
        return Gaussians(g.means, g.quats, torch.log(new_scales), opacity_logit(op, 1e-7), g.sh0, g.shN)


def shutter_times(frame_time: float, fps: float, shutter_deg: float, samples: int) -> list[float]:
    """Sub-frame sample times (seconds) spread evenly over the open shutter, centred on the frame."""
    open_s = shutter_deg / 360.0 / fps
    if samples <= 1:
        return [frame_time]
    return [frame_time + open_s * (i / (samples - 1) - 0.5) for i in range(samples)]
