"""One frame of a film: its content key, its render (motion blur, depth of field) and its files.

A frame's key covers everything the frame depends on: the visible assets' file contents and
world transforms at its (sub-frame) times (and the joint transforms of rigged assets that
perform: clips, IK, look-at, the last perhaps at the frame's camera), its cameras, size and render settings, and which
side files it has. A rerun keeps a frame whose files exist with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.film.script import Film, FilmShot
from splatfilm.io.digest import content_digest
from splatfilm.io.images import write_depth, write_png
from splatfilm.render import render, resolve_backend
from splatfilm.render.lens_effects import apply_depth_of_field, shutter_times
from splatfilm.scene.cameras import Cameras


@dataclass
class FrameSample:
    """What one frame samples of its shot. times: shot-relative seconds, one, or S spread over
    the open shutter (motion blur); cameras [S] at those times; dof: per time (focal_mm,
    f_stop, focus_distance m) for depth of field, or None without it."""

    times: list[float]
    cameras: Cameras
    dof: list[tuple[float, float, float] | None]


@dataclass
class FrameJob:
    """A frame to render: frame `frame_index` of shot `shot_index`, its content key, and the
    files it writes (depth / alpha EXRs only when asked for)."""

    shot_index: int
    frame_index: int
    key: str
    png: Path
    depth: Path | None = None
    alpha: Path | None = None

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.png, self.depth, self.alpha) if p is not None]


@dataclass
class FrameRenderer:
    """Renders frames of `film` with one backend ("auto" is resolved once, here) and writes
    them with the asked-for side files (`depth`, `alpha`: EXRs beside each PNG). A frame's
    cameras are sampled once and kept, so its key and its render see the same numbers; the
    film must not change while the renderer is in use."""

    film: Film
    backend: str = "auto"
    depth: bool = False
    alpha: bool = False
    _samples: dict[tuple[str, int], FrameSample] = field(default_factory=dict, init=False, repr=False)
    _centres: dict[tuple[str, int], Cameras] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.backend = resolve_backend(self.backend)

    def sample(self, fs: FilmShot, i: int) -> FrameSample:
        """Frame i's sub-frame times, cameras and depth-of-field settings (cached)."""
        cached = self._samples.get((fs.name, i))
        if cached is not None:
            return cached
        film, lens = self.film, fs.shot.lens
        t = float(fs.shot.times[i])
        times = [t]
        if film.motion_blur:
            times = shutter_times(t, float(film.fps), film.motion_blur["shutter_deg"], film.motion_blur["samples"])
        path = fs.shot.sample(np.array(times))
        dof: list[tuple[float, float, float] | None] = [None] * len(times)
        if film.depth_of_field:
            if lens.f_stop is None:
                raise SplatfilmError(f"{film.path}: shot {fs.name}: depth_of_field needs the lens's f_stop")
            for k in range(len(times)):
                focus = path.focus_distance[k]
                if not np.isfinite(focus):
                    raise SplatfilmError(f"{film.path}: shot {fs.name}: depth_of_field needs a focus_distance")
                dof[k] = (float(path.focal_mm[k]), float(lens.f_stop), float(focus))
        sample = FrameSample(times, path.to_cameras(lens), dof)
        self._samples[(fs.name, i)] = sample
        return sample

    def camera(self, fs: FilmShot, i: int) -> Cameras:
        """The camera [1] at frame i's own time (the shutter's centre under motion blur)."""
        sample = self.sample(fs, i)
        if len(sample.times) == 1:
            return sample.cameras
        if (fs.name, i) not in self._centres:
            t = float(fs.shot.times[i])
            self._centres[(fs.name, i)] = fs.shot.sample(np.array([t])).to_cameras(fs.shot.lens)
        return self._centres[(fs.name, i)]

    def eyes(self, fs: FilmShot, i: int) -> list[np.ndarray | None]:
        """The camera centre [3] (world) at each of frame i's times, for assets that look at
        the camera; None each when no visible asset does (their frames do not depend on it)."""
        sample = self.sample(fs, i)
        if not self.film.world.needs_camera(fs.visible):
            return [None] * len(sample.times)
        return list(sample.cameras.centers)

    def key(self, fs: FilmShot, i: int) -> str:
        """Content hash of frame i's inputs (module docstring)."""
        film, lens = self.film, fs.shot.lens
        sample = self.sample(fs, i)
        cams = sample.cameras
        eyes = self.eyes(fs, i)
        return content_digest({
            "world": [film.world.signature(fs.world_start + t, fs.visible, eyes[k]) for k, t in enumerate(sample.times)],
            "viewmats": np.round(cams.viewmats, 9).tolist(),
            "Ks": np.round(cams.Ks, 9).tolist(),
            "size": [film.width, film.height],
            "near_far": [lens.near, lens.far],
            "background": list(film.background),
            "sh_degree": film.sh_degree,
            "backend": self.backend,
            "dof": sample.dof,
            "aux": [self.depth, self.alpha],
            # Only a distorting lens adds to the key, so pinhole frames keep the keys they had.
            **({} if lens.model == "pinhole" else {"lens": [lens.model, list(lens.distortion)]}),
        })

    def render(self, fs: FilmShot, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB [H,W,3] (background composited), alpha [H,W,1] and depth [H,W,1] (float64) of
        frame i: every visible asset in one rasterization call; the sub-frame renders averaged
        for motion blur (alpha and depth too)."""
        film, lens = self.film, fs.shot.lens
        sample = self.sample(fs, i)
        eyes = self.eyes(fs, i)
        rgb = alpha = depth = None
        for k, t in enumerate(sample.times):
            g = film.world.compose(fs.world_start + t, fs.visible, eyes[k])
            degree = min(film.sh_degree, g.sh_degree) if film.sh_degree is not None else None
            viewmats, Ks = sample.cameras[k].to_tensors(g.dtype)
            if sample.dof[k] is not None:
                g = apply_depth_of_field(g, viewmats[0], Ks[0], film.width, film.height, *sample.dof[k],
                                         lens.sensor_width_mm)
            # A distorting lens adds its model (keeping the pinhole call as it was).
            lens_args = {} if lens.model == "pinhole" else {"camera_model": lens.camera_model,
                                                            "distortion": torch.tensor([lens.distortion])}
            with torch.no_grad():
                out = render(g, viewmats, Ks, film.width, film.height, backend=self.backend, sh_degree=degree,
                             background=film.background, near_plane=lens.near, far_plane=lens.far, **lens_args)
            r, a, d = (x[0].cpu().double().numpy() for x in (out.rgb, out.alpha, out.depth))
            rgb = r if rgb is None else rgb + r
            alpha = a if alpha is None else alpha + a
            depth = d if depth is None else depth + d
        n = len(sample.times)
        return rgb / n, alpha / n, depth / n

    def job(self, out_dir: Path, shot_index: int, i: int, key: str) -> FrameJob:
        """Frame i of shot `shot_index` as a job writing into out_dir/SHOT/SHOT.FRAME.png (and
        .depth.exr / .alpha.exr)."""
        fs = self.film.shots[shot_index]
        stem = out_dir / fs.name / f"{fs.name}.{int(fs.shot.frame_numbers[i]):04d}"
        return FrameJob(shot_index, i, key, stem.with_name(stem.name + ".png"),
                        stem.with_name(stem.name + ".depth.exr") if self.depth else None,
                        stem.with_name(stem.name + ".alpha.exr") if self.alpha else None)

    def write(self, job: FrameJob, rgb: np.ndarray | None = None, alpha: np.ndarray | None = None,
              depth: np.ndarray | None = None) -> None:
        """Write a job's files: the frame rendered now, or the given rgb [H,W,3] (with its
        alpha and depth [H,W,1], for the side files)."""
        if rgb is None:
            rgb, alpha, depth = self.render(self.film.shots[job.shot_index], job.frame_index)
        # Side files first, the PNG last: a PNG on disk means the frame is complete.
        if job.depth is not None:
            write_depth(job.depth, depth)
        if job.alpha is not None:
            write_depth(job.alpha, alpha, channel="A")
        write_png(job.png, rgb)
