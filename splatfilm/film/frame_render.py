"""One frame of a film: its content key, its render (motion blur, depth of field) and its files.

A frame's key covers everything the frame depends on: the visible assets' file contents and
world transforms at its (sub-frame) times (and the joint transforms of rigged assets that
perform: clips, IK, look-at, the last perhaps at the frame's camera), its cameras, size and render settings, and which
side files it has. A rerun keeps a frame whose files exist with the same key.

With passes (film/passes.py) a frame also writes SHOT.FRAME.exr: scene-linear RGBA, depth,
per-asset mattes and motion vectors, all from the frame's one rasterization call. Every EXR of a
frame carries OpenEXR's standard attributes for it (`exr_header`): its timecode, the film's rate
and its camera. With provenance every file carries its record (io/provenance.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.film.passes import layer_name, matte_names, motion_to_nuke, pass_features
from splatfilm.film.script import Film, FilmShot
from splatfilm.shots.timing import frame_timecode, timecode_fields
from splatfilm.io.digest import content_digest, file_digest
from splatfilm.io.images import (ExrFormat, composite_encoded, exr_frame_header, handoff_alpha, handoff_depth,
                                 premultiplied_linear, srgb_to_linear, unpremultiply, write_depth,
                                 write_exr_layers, write_png)
from splatfilm.render import rasterization, resolve_backend
from splatfilm.render.lens_effects import apply_depth_of_field, motion_samples, shutter_interval, shutter_times
from splatfilm.scene.cameras import Cameras


@dataclass
class FrameSample:
    """What one frame samples of its shot. times: shot-relative seconds, one, or S spread over
    the open shutter (motion blur); cameras [S] at those times; dof: per time (focal_mm,
    f_stop, focus_distance m) for depth of field, or None without it."""

    times: list[float]
    cameras: Cameras
    dof: list[tuple[float, float, float] | None]


def provenance_facts(film: Film) -> dict:
    """What every provenance record of `film` shares: the script's file name and sha256,
    every asset's content hash and how its sidecar says it was made (`assets.sidecar.asset_origin`;
    io.provenance.provenance_record's `film`, `film_sha256`, `assets` and `sources`)."""
    from splatfilm.assets.sidecar import asset_origin

    return {"film": Path(film.path).name, "film_sha256": file_digest(film.path),
            "assets": {n: a.digest for n, a in film.world.assets.items()},
            "sources": {n: asset_origin(a.source) if a.source else "unknown" for n, a in film.world.assets.items()}}


@dataclass
class FrameImage:
    """A rendered frame: rgb [H,W,3] (background composited), alpha [H,W,1], depth [H,W,1]
    (float64), and with passes the mattes (piece name -> coverage [H,W]) and motion [H,W,2]
    (pixels to the next frame, x right, y down; 0 where nothing is seen)."""

    rgb: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray
    mattes: dict[str, np.ndarray] | None = None
    motion: np.ndarray | None = None


@dataclass
class FrameJob:
    """A frame to render: frame `frame_index` of shot `shot_index`, its content key, and the
    files it writes (depth / alpha EXRs and the passes EXR only when asked for)."""

    shot_index: int
    frame_index: int
    key: str
    png: Path
    depth: Path | None = None
    alpha: Path | None = None
    passes: Path | None = None

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.png, self.depth, self.alpha, self.passes) if p is not None]

    @property
    def unasked(self) -> list[Path]:
        """The side files this frame could have (side_files) that this job does not write."""
        return [p for p in side_files(self.png) if p not in self.files]


def side_files(png: Path) -> tuple[Path, Path, Path]:
    """The depth, alpha and passes EXRs a frame SHOT.FRAME.png may have beside it."""
    stem = png.with_suffix("")
    return (stem.with_name(stem.name + ".depth.exr"), stem.with_name(stem.name + ".alpha.exr"),
            stem.with_name(stem.name + ".exr"))


@dataclass
class FrameRenderer:
    """Renders frames of `film` with one backend ("auto" is resolved once, here) and writes
    them with the asked-for side files (`depth`, `alpha`: EXRs beside each PNG; `passes`:
    names from film.passes.PASS_NAMES for the passes EXR; every EXR stored as `exr` says), its PNGs
    `png_bits` (8 or 16) a channel. With `provenance` every file carries its record. A
    frame's cameras are sampled once and kept, so its key and its render see the same
    numbers; the film must not change while the renderer is in use."""

    film: Film
    backend: str = "auto"
    depth: bool = False
    alpha: bool = False
    passes: tuple[str, ...] = ()
    provenance: bool = False
    png_bits: int = 8
    exr: ExrFormat = field(default_factory=ExrFormat)
    _samples: dict[tuple[str, int], FrameSample] = field(default_factory=dict, init=False, repr=False)
    _centres: dict[tuple[str, int], Cameras] = field(default_factory=dict, init=False, repr=False)
    _last: tuple[tuple[str, int], FrameImage] | None = field(default=None, init=False, repr=False)
    _facts: dict | None = field(default=None, init=False, repr=False)
    # The world's poses, shared by a frame's key and its render (World.remembering).
    _joints: dict = field(default_factory=dict, init=False, repr=False)

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
            samples = film.motion_blur["samples"]
            if samples == "auto":
                samples = self._motion_samples(fs, t)
            times = shutter_times(t, float(film.fps), film.motion_blur["shutter_deg"], samples)
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

    def _motion_samples(self, fs: FilmShot, t: float) -> int:
        """`samples: auto`'s count for the frame at shot time t: what the visible Gaussians'
        screen travel between the shutter's opening and closing needs (motion_samples)."""
        film, lens = self.film, fs.shot.lens
        ends = shutter_interval(t, float(film.fps), film.motion_blur["shutter_deg"])
        cams = fs.shot.sample(np.array(ends)).to_cameras(lens)
        needs = film.world.needs_camera(fs.visible)
        gs = [film.world.compose(fs.world_start + e, fs.visible, cams.centers[k] if needs else None)
              for k, e in enumerate(ends)]
        return motion_samples(gs[0], gs[1], **cams.render_arguments(gs[0].dtype))

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
        with self.film.world.remembering(self._joints):
            return self._key(fs, i)

    def _key(self, fs: FilmShot, i: int) -> str:
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
            # Passes and provenance add to the key only when on, so other frames keep their keys.
            **({"passes": list(self.passes)} if self.passes else {}),
            # EXRs carry exr_header's attributes since version 1, and hand-off alpha and depth
            # (solid where covered, far where empty) since 2: an older EXR is written again.
            **({"exr_header": 2} if self.passes or self.depth or self.alpha else {}),
            **({"provenance": 1} if self.provenance else {}),
            # 16-bit PNGs and EXRs (passes, depth, alpha) stored otherwise than 32-bit ZIP, only
            # where asked for.
            **({"png_bits": self.png_bits} if self.png_bits != 8 else {}),
            **({"exr_format": [self.exr.half, self.exr.compression]}
               if (self.passes or self.depth or self.alpha) and self.exr != ExrFormat() else {}),
            # Versions of the lens effects, only where a frame has them (the rest keep their keys):
            # depth of field keeps a splat's alpha as drawn (with the 0.3 px blur) since 2, and
            # motion blur samples the middles of the shutter's slices, not its ends, since 2, and
            # averages them in linear light since 3.
            **({"dof_version": 2} if any(d is not None for d in sample.dof) else {}),
            **({"shutter_version": 3} if len(sample.times) > 1 else {}),
            # Only a distorting lens adds to the key, so pinhole frames keep the keys they had.
            **({} if lens.model == "pinhole" else {"lens": [lens.model, list(lens.distortion)]}),
            # Only an anamorphic lens adds its squeeze (the EXRs' and movies' pixel aspect), and
            # since version 2 its oval depth of field and its PNGs' pHYs pixel aspect.
            **({} if lens.squeeze == 1 else {"squeeze": lens.squeeze, "anamorphic_version": 2}),
        })

    def render(self, fs: FilmShot, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB [H,W,3] (background composited), alpha [H,W,1] and depth [H,W,1] (float64) of
        frame i: every visible asset in one rasterization call; the sub-frame renders averaged
        for motion blur, their colour in linear light (`premultiplied_linear`, encoded once
        after: `composite_encoded`), alpha too, depth weighted by each sub-frame's alpha, so it
        stays the expected depth of what is seen, 0 where nothing is."""
        image = self.render_frame(fs, i)
        return image.rgb, image.alpha, image.depth

    def render_frame(self, fs: FilmShot, i: int) -> FrameImage:
        """Frame i as `render` makes it, with its mattes and motion when the renderer has those
        passes (composited in the same call; averaged over sub-frames like the colour). The
        last frame rendered is kept, so writing it after a look (refine) renders it once."""
        if self._last is not None and self._last[0] == (fs.name, i):
            return self._last[1]
        with self.film.world.remembering(self._joints):
            image = self._render_frame(fs, i)
        self._last = ((fs.name, i), image)
        return image

    def _render_frame(self, fs: FilmShot, i: int) -> FrameImage:
        film, lens = self.film, fs.shot.lens
        sample = self.sample(fs, i)
        eyes = self.eyes(fs, i)
        mattes, motion = "mattes" in self.passes, "motion" in self.passes
        pieces = matte_names(film.world)
        rgb = alpha = depth = extra = None
        for k, t in enumerate(sample.times):
            features = None
            # `compose`'s join, its parts kept: each asset composites in its own rasterize_mode.
            parts = film.world.parts(fs.world_start + t, fs.visible, eyes[k])
            g, mode = film.world.join(parts)
            if mattes or motion:
                features = pass_features(parts, pieces, mattes, self._motion_inputs(fs, i, k) if motion else None,
                                         lens.near)
            degree = min(film.sh_degree, g.sh_degree) if film.sh_degree is not None else None
            camera = sample.cameras[k].render_arguments(g.dtype)
            if sample.dof[k] is not None:
                g = apply_depth_of_field(g, camera["viewmats"][0], camera["Ks"][0], film.width, film.height,
                                         *sample.dof[k], lens.image_width_mm, rasterize_mode=mode,
                                         pixel_aspect=lens.squeeze)
            with torch.no_grad():
                out = rasterization(g, **camera, backend=self.backend, sh_degree=degree, background=film.background,
                                    near_plane=lens.near, far_plane=lens.far, rasterize_mode=mode, features=features)
            r, a, d = (x[0].cpu().double().numpy() for x in (out.rgb, out.alpha, out.depth))
            if len(sample.times) > 1:
                # A shutter integrates light: averaged as encoded values a streak of white over
                # black came out 0.5 encoded, 0.214 of the light (31% too dark in the EXR).
                r = premultiplied_linear(r, a, film.background)
            rgb = r if rgb is None else rgb + r
            alpha = a if alpha is None else alpha + a
            # Accumulated (alpha-weighted) depth: a sub-frame that sees nothing at a pixel has
            # depth 0 there, which a plain mean would count as a surface at the lens.
            depth = a * d if depth is None else depth + a * d
            if out.features is not None:
                f = out.features[0].cpu().double().numpy()
                extra = f if extra is None else extra + f
        n = len(sample.times)
        # One sample is the renderer's colour untouched (no decode and encode to round).
        rgb = rgb if n == 1 else composite_encoded(rgb / n, alpha / n, film.background)
        # Expected depth over the open shutter, as the renderer's is within one sub-frame.
        image = FrameImage(rgb, alpha / n, np.where(alpha > 0, depth / np.where(alpha > 0, alpha, 1.0), 0.0))
        if extra is not None:
            extra = extra / n
            if mattes:
                image.mattes = {p: extra[..., j] for j, p in enumerate(pieces)}
            if motion:
                # Composited displacement over alpha: the mean of what the pixel shows.
                a = image.alpha
                image.motion = np.where(a > 1e-6, extra[..., -2:] / np.maximum(a, 1e-6), 0.0)
        return image

    def _motion_inputs(self, fs: FilmShot, i: int, k: int) -> tuple:
        """What pass_features needs for motion at sub-frame k of frame i: the world's parts one
        frame later, and the cameras (viewmat, K) now and then."""
        film, lens = self.film, fs.shot.lens
        sample = self.sample(fs, i)
        t_next = sample.times[k] + 1.0 / float(film.fps)
        cam_next = fs.shot.sample(np.array([t_next])).to_cameras(lens)
        eye = cam_next.centers[0] if film.world.needs_camera(fs.visible) else None
        after = film.world.parts(fs.world_start + t_next, fs.visible, eye)
        V0, K0 = sample.cameras[k].to_tensors(torch.float64)
        V1, K1 = cam_next.to_tensors(torch.float64)
        return after, V0[0], K0[0], V1[0], K1[0]

    def facts(self) -> dict:
        """What every provenance record of this film shares (`provenance_facts`, computed once)."""
        if self._facts is None:
            self._facts = provenance_facts(self.film)
        return self._facts

    def job(self, out_dir: Path, shot_index: int, i: int, key: str) -> FrameJob:
        """Frame i of shot `shot_index` as a job writing into out_dir/SHOT/SHOT.FRAME.png (and
        .depth.exr / .alpha.exr, and SHOT.FRAME.exr with passes)."""
        fs = self.film.shots[shot_index]
        png = out_dir / fs.name / f"{fs.name}.{int(fs.shot.frame_numbers[i]):04d}.png"
        depth, alpha, passes = side_files(png)
        return FrameJob(shot_index, i, key, png, depth if self.depth else None, alpha if self.alpha else None,
                        passes if self.passes else None)

    def write(self, job: FrameJob, rgb: np.ndarray | None = None, alpha: np.ndarray | None = None,
              depth: np.ndarray | None = None, refined: bool = False) -> None:
        """Write a job's files: the frame rendered now, or the given rgb [H,W,3] (with its
        alpha and depth [H,W,1], for the side files; `refined`: a generative refiner made
        it, which its provenance says)."""
        fs = self.film.shots[job.shot_index]
        image = None
        if rgb is None or job.passes is not None:
            image = self.render_frame(fs, job.frame_index)
        if rgb is None:
            rgb, alpha, depth = image.rgb, image.alpha, image.depth
        exr = self.exr_header(fs, job.frame_index) if job.depth or job.alpha or job.passes else None
        record = None
        if self.provenance:
            from splatfilm.io.provenance import provenance_record

            frame = int(fs.shot.frame_numbers[job.frame_index])
            # An image sequence has no timecode track: the record says which timecode the frame
            # number is, as the shot's movie and the EDL count it.
            record = provenance_record(**self.facts(), shot=fs.name, frames=[frame], refined=refined,
                                       timecode=frame_timecode(frame, self.film.fps))
        # Side files first, the PNG last: a PNG on disk means the frame is complete. They are
        # hand-off: solid alpha where the pixel is covered, far depth where nothing is seen.
        solid, far = handoff_alpha(alpha), handoff_depth(depth, alpha)
        if job.depth is not None:
            write_depth(job.depth, far, provenance=record, attributes=exr, fmt=self.exr)
        if job.alpha is not None:
            write_depth(job.alpha, solid, channel="A", provenance=record, attributes=exr, fmt=self.exr)
        if job.passes is not None:
            self._write_passes(job.passes, rgb, alpha, solid, far, image, record, exr)
        write_png(job.png, rgb, provenance=record, pixel_aspect=fs.shot.lens.squeeze, bits=self.png_bits)

    def exr_header(self, fs: FilmShot, i: int) -> dict:
        """OpenEXR's standard attributes of frame i's EXRs (io.images.exr_frame_header): the
        timeCode of its frame number at the film's rate (as `frame_timecode` counts it), the
        rate, an anamorphic lens's squeeze as pixelAspectRatio, and its camera at the frame's
        own time (the shutter's centre) as worldToCamera and, where a pinhole matrix can say it (a pinhole or OPENCV lens, its distortion left
        out), worldToNDC."""
        cam = self.camera(fs, i)
        pinhole = cam.camera_model[0] in ("PINHOLE", "OPENCV")
        return exr_frame_header(timecode_fields(int(fs.shot.frame_numbers[i]), self.film.fps), self.film.fps,
                                cam.viewmats[0], cam.Ks[0] if pinhole else None, (self.film.width, self.film.height),
                                (fs.shot.lens.near, fs.shot.lens.far), pixel_aspect=fs.shot.lens.squeeze)

    def _write_passes(self, path: Path, rgb: np.ndarray, alpha: np.ndarray, solid: np.ndarray, far: np.ndarray,
                      image: FrameImage, record: dict | None, exr: dict | None = None) -> None:
        """The passes EXR (docs/CONVENTIONS.md): RGBA premultiplied scene-linear, without the
        film's background: the written colour with the background taken off, unpremultiplied,
        decoded by the sRGB EOTF and premultiplied again by the hand-off alpha (1 where the
        pixel is covered: `handoff_alpha`); Z with `handoff_depth`'s far value where nothing is
        seen. alpha: the renderer's; solid, far: the hand-off alpha and depth (`handoff_alpha`,
        `handoff_depth`), the frame's side files'."""
        from splatfilm.io.provenance import LINEAR

        linear = srgb_to_linear(unpremultiply(rgb, alpha, self.film.background)) * solid
        channels = {"R": linear[..., 0], "G": linear[..., 1], "B": linear[..., 2], "A": solid[..., 0]}
        if "depth" in self.passes:
            channels["Z"] = far[..., 0]
        if image.mattes is not None:
            # Mattes are coverage inside the composite: scaled with alpha, they still add up to A.
            scale = np.where(solid > alpha, solid / np.maximum(alpha, 1e-6), 1.0)[..., 0]
            for piece, m in image.mattes.items():
                channels[f"{layer_name(piece)}.A"] = m * scale
        if image.motion is not None:
            channels["forward.u"], channels["forward.v"] = motion_to_nuke(image.motion)
        if record is not None:
            record = {**record, "colour": LINEAR}
        fs_attrs = {**(exr or {}), "splatfilm:passes": ",".join(self.passes),
                    "splatfilm:mattes": ",".join(f"{layer_name(p)}={p}" for p in (image.mattes or {}))}
        write_exr_layers(path, channels, provenance=record, attributes=fs_attrs, fmt=self.exr)
