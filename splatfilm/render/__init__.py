"""Rendering: one `render()` entry (gsplat on CUDA, ours on the CPU) and what it is built from.

Stages named after gsplat's: `projection` (EWA projection), `tile_intersection`,
`rasterize_to_pixels` (front-to-back compositing), `spherical_harmonics`; then the frame
effects (`lens_effects`), the measures (`metrics`, `consistency`) and `render_cameras`.
"""

from splatfilm.render.rasterization import (RASTERIZE_MODES, RENDER_MODES, Backend, RasterizeMode, RenderMode,
                                            RenderOutput, cuda_available, rasterize_mode_key, rasterize_modes, render,
                                            resolve_backend)

__all__ = ["RASTERIZE_MODES", "RENDER_MODES", "Backend", "RasterizeMode", "RenderMode", "RenderOutput", "cuda_available",
           "rasterize_mode_key", "rasterize_modes", "render", "resolve_backend"]
