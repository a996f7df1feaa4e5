"""Image metrics (splatfilm.render.metrics)."""

from __future__ import annotations

import torch

from splatfilm.render.metrics import ssim


def test_ssim_over_a_mask_leaves_out_pixels_black_in_both_images():
    """Held-out SSIM blacks out the pixels a capture leaves out (a nerfstudio mask, an
    undistorted border) in both images; averaged over the whole image, each counted as a
    perfect 1, so half an image left out read 0.95 where its seen half scores 0.90."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(48, 64, 3, generator=g)
    b = (a + 0.15 * torch.randn(48, 64, 3, generator=g)).clamp(0, 1)
    mask = torch.zeros(48, 64, 1)
    mask[:, :32] = 1
    seen = float(ssim(a[:, :32], b[:, :32]))
    blacked = float(ssim(a * mask, b * mask))
    masked = float(ssim(a * mask, b * mask, mask=mask))
    assert blacked > seen + 0.03  # what the mean over every pixel said
    assert abs(masked - seen) < 0.02
    assert abs(float(ssim(a, b, mask=torch.ones(48, 64, 1))) - float(ssim(a, b))) < 1e-6
