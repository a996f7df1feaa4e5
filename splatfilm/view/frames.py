""""Render this frame": splatfilm's own render of what the viewer looks at, since the
browser's splat shader is an approximation (view-independent colour, no depth of field or
motion blur, its own sorting)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from splatfilm.film.frame_render import FrameRenderer
from splatfilm.film.script import FilmShot
from splatfilm.render import rasterization, resolve_backend
from splatfilm.scene.cameras import Cameras
from splatfilm.view.session import Session


@dataclass
class FrameRenders:
    """Renders for one session with one backend ("auto" resolved once)."""

    session: Session
    backend: str = "auto"
    _film_renderer: FrameRenderer | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.backend = resolve_backend(self.backend)
        if self.session.film is not None:
            self._film_renderer = FrameRenderer(self.session.film, self.backend)

    def shot_frame(self, fs: FilmShot, time: float) -> np.ndarray:
        """The frame of shot `fs` nearest world time `time` as the film renders it (its lens,
        depth of field and motion blur when the film has them): RGB [H,W,3] in [0, 1]."""
        i = self.session.shot_frame(fs, time)
        if self._film_renderer is not None:
            return self._film_renderer.render(fs, i)[0]
        cams = self.session.shot_camera(fs, time)
        lens = fs.shot.lens
        return self.camera(cams, time, fs.visible, lens.near, lens.far)

    def camera(self, cams: Cameras, time: float, visible: list[str] | None = None, near: float = 0.01,
               far: float = 1e10) -> np.ndarray:
        """Camera cams[0] (through its own lens) on the world at `time`: RGB [H,W,3] in [0, 1]."""
        world = self.session.world
        if not world.assets:
            return np.zeros((int(cams.heights[0]), int(cams.widths[0]), 3)) + np.asarray(self.session.background)
        # Not `compose`: the film renders each asset in its own rasterize_mode, which `join` keeps.
        g, mode = world.join(world.parts(time, visible, cams.centers[0]))
        with torch.no_grad():
            out = rasterization(g, **cams[:1].render_arguments(g.dtype), backend=self.backend,
                                background=self.session.background, near_plane=near, far_plane=far, rasterize_mode=mode)
        return out.rgb[0].cpu().double().numpy()
