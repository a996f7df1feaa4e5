"""How much each Gaussian shows in each camera: its blend weight summed over the image
(`blend_weights`), or at its best pixel (`peak_weights`).

A Gaussian's blend weight at a pixel is what alpha compositing gives its colour there,
alpha * T (its opacity times the transmittance in front of it). Summed over the pixels it is
the area, in pixels, the Gaussian effectively covers in that view: 0 for one hidden behind a
wall or outside the frame. The sum is read off the renderer's own gradient: with every colour
set to 1, the derivative of the image's sum with respect to a Gaussian's colour is exactly
that sum, so both backends count with the same semantics as they render, in the asset's
`rasterize_mode`: an antialiased Gaussian's alpha is its opacity times its compensation, as
`rasterization` composites it (classic mode overstates what a small or thin one shows).

The sum is an area: a faint or small Gaussian that every view sees (a sheer veil of 1.5 mm,
opacity 0.02 splats, 0.29 alpha where it lies) sums to a fraction of a pixel in each. The peak
says whether a view shows it at all: its alpha * T at its best pixel, which the 8-bit image
resolves once it reaches 1/255 (the smallest alpha the renderer composites).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from splatfilm.render.rendering import RasterizeMode, peak_blend_weights, rasterization
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import C0, rgb_to_sh0


def blend_weights(gaussians: Gaussians, cameras: Cameras, backend: str = "auto",
                  progress: Callable[[int], object] | None = None,
                  rasterize_mode: RasterizeMode = "classic") -> torch.Tensor:
    """Per camera and Gaussian, the blend weight summed over the camera's image [C,N] (pixels;
    float32, CPU). cameras: C views at their own sizes, each through its own lens; progress:
    called with each finished camera index, for long runs; rasterize_mode: `rasterization`'s, the
    Gaussians' as they were trained."""
    g = gaussians.to("cpu", torch.float32)
    out = torch.zeros(len(cameras), len(g))
    for c in range(len(cameras)):
        # Colour 1 everywhere: d(sum of the red channel) / d(red of Gaussian i) = sum_p w_i(p).
        sh0 = torch.full_like(g.sh0, rgb_to_sh0(1.0)).requires_grad_(True)
        white = Gaussians(g.means.detach(), g.quats.detach(), g.scales.detach(), g.opacities.detach(), sh0,
                          g.shN[:, :0].detach())
        image = rasterization(white, **cameras[c].render_arguments(), backend=backend, sh_degree=0,
                              rasterize_mode=rasterize_mode)
        image.rgb[..., 0].sum().backward()
        out[c] = sh0.grad[:, 0, 0].cpu() / C0  # d colour / d sh0 = C0
        if progress is not None:
            progress(c)
    return out


def peak_weights(gaussians: Gaussians, cameras: Cameras, progress: Callable[[int], object] | None = None,
                 rasterize_mode: RasterizeMode = "classic") -> torch.Tensor:
    """Per camera and Gaussian, its largest blend weight over the camera's image [C,N] (alpha
    * T at its best pixel, in [0, 0.999]; float32, CPU): `render.peak_blend_weights` camera by
    camera, each at its own size and through its own lens. progress: called with each
    finished camera index; rasterize_mode: the Gaussians' as they were trained."""
    g = gaussians.to("cpu", torch.float32)
    out = torch.zeros(len(cameras), len(g))
    for c in range(len(cameras)):
        out[c] = peak_blend_weights(g, **cameras[c].render_arguments(), rasterize_mode=rasterize_mode)[0]
        if progress is not None:
            progress(c)
    return out
