"""Rendering: one `rasterization()` entry (gsplat on CUDA, ours on the CPU) and what it is built from.

`splatfilm.render.rasterization` is that function, exported here as gsplat's package exports
its own; it lives in `rendering` (as gsplat's in `gsplat/rendering.py`) beside the CPU path,
the gsplat call and the readable reference (`rasterize_to_pixels_reference`).

Stages named after gsplat's: `projection` (EWA projection), `tile_intersection`,
`rasterize_to_pixels` (front-to-back compositing), `spherical_harmonics`; then the frame
effects (`lens_effects`), the measures (`metrics`, `consistency`) and `render_cameras`.
"""

from splatfilm.render.rendering import (RASTERIZE_MODES, RENDER_MODES, Backend, RasterizeMode, RenderMode,
                                            RenderOutput, cuda_available, rasterization, rasterize_mode_key,
                                            rasterize_modes, resolve_backend)

__all__ = ["RASTERIZE_MODES", "RENDER_MODES", "Backend", "RasterizeMode", "RenderMode", "RenderOutput", "cuda_available",
           "rasterization", "rasterize_mode_key", "rasterize_modes", "resolve_backend"]
