"""Image quality metrics: PSNR and SSIM (differentiable, as 3D Gaussian Splatting trains with).

SSIM uses the standard 11x11 Gaussian window with sigma 1.5 and constants
C1 = 0.01^2, C2 = 0.03^2 for images in [0, 1], zero-padded ('same' size), as the
original 3DGS code and fused-ssim do.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """PSNR in dB of images [..., H, W, 3] in [0,1]; `mask` [..., H, W, 1] limits the pixels."""
    diff = (a - b) ** 2
    if mask is not None:
        mse = (diff * mask).sum() / (mask.sum() * a.shape[-1]).clamp_min(1)
    else:
        mse = diff.mean()
    return -10.0 * torch.log10(mse.clamp_min(1e-12))


def _window(size: int, sigma: float, channels: int, dtype, device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of images [H,W,3] or [B,H,W,3] in [0,1] (a scalar tensor, differentiable)."""
    if a.ndim == 3:
        a, b = a[None], b[None]
    x = a.permute(0, 3, 1, 2)
    y = b.permute(0, 3, 1, 2)
    c = x.shape[1]
    w = _window(window, sigma, c, x.dtype, x.device)
    pad = window // 2
    conv = lambda t: F.conv2d(t, w, padding=pad, groups=c)  # noqa: E731
    mu_x, mu_y = conv(x), conv(y)
    sxx = conv(x * x) - mu_x**2
    syy = conv(y * y) - mu_y**2
    sxy = conv(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean()


def psnr_from_mse(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-12))
