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


def test_ssim_valid_padding_counts_only_windows_inside_the_image():
    """padding="valid" is gsplat's count (fused-ssim's "valid", torchmetrics): the mean over the
    pixels whose 11x11 window lies inside the image, as an unpadded convolution computes it;
    "same" (3DGS's, the default) zero-pads and counts the border too."""
    import torch.nn.functional as F

    from splatfilm.render.metrics import gaussian_window_1d

    g = torch.Generator().manual_seed(1)
    a = torch.rand(30, 40, 3, generator=g)
    b = (a + 0.2 * torch.randn(30, 40, 3, generator=g)).clamp(0, 1)
    w1 = gaussian_window_1d(11, 1.5, torch.float64)
    win = (w1[:, None] * w1[None, :]).expand(3, 1, 11, 11)
    x, y = (t.double().permute(2, 0, 1)[None] for t in (a, b))

    def blur(t):
        return F.conv2d(t, win, groups=3)  # no padding: 'valid'

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ref = (((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))).mean()
    assert abs(float(ssim(a, b, padding="valid")) - float(ref)) < 1e-5
    assert abs(float(ssim(a, b)) - float(ref)) > 1e-3  # the zero-padded border counts in "same"
    mask = torch.ones(30, 40, 1)
    assert abs(float(ssim(a, b, mask=mask, padding="valid")) - float(ref)) < 1e-5
