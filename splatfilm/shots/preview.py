"""See a shot before rendering it: a plan of the path over the scene, and a contact sheet.

`draw_path_preview` draws, over the scene's Gaussians seen from above (and, below it, from the
front), the camera path with a dot per frame (dot spacing shows speed and easing), the first
and last frames, and a frustum at each key of the path labelled with its frame number.
`render_contact_sheet` renders every Nth frame small and tiles them with their frame numbers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.io.atomic import check_output_file
from splatfilm.io.images import to_uint8, write_png
from splatfilm.shots.lens import focal_mm_to_pixels
from splatfilm.shots.shot import Shot

_BG = (24, 24, 28)
_GRID = (62, 62, 70)
_TEXT = (230, 230, 230)
_KEY = (255, 210, 60)
_START, _END = (90, 220, 120), (240, 80, 80)


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def check_png_output(path: str | os.PathLike) -> None:
    """Fail before drawing or rendering when `path` cannot take a PNG: another file type by its
    name, a folder, or an unwritable place (SplatfilmError naming it)."""
    if Path(path).suffix.lower() != ".png":
        raise SplatfilmError(f"{path}: previews and contact sheets are PNG images; name the file *.png")
    check_output_file(path)


class _View:
    """An orthographic view of the world: world axes (a, b) to image x (right) and y (up),
    `depth` the axis pointing at the viewer (larger: nearer), placed in a canvas rectangle."""

    def __init__(self, a: int, b: int, depth: int, depth_sign: float, lo: np.ndarray, hi: np.ndarray,
                 ppm: float, left: int, top: int):
        self.a, self.b, self.depth, self.depth_sign = a, b, depth, depth_sign
        self.lo, self.hi, self.ppm, self.left, self.top = lo, hi, ppm, left, top
        self.width = int(math.ceil((hi[a] - lo[a]) * ppm))
        self.height = int(math.ceil((hi[b] - lo[b]) * ppm))

    def px(self, p: np.ndarray) -> np.ndarray:
        """Canvas pixel coordinates [...,2] (x, y) of world points [...,3]."""
        p = np.asarray(p, dtype=np.float64)
        x = self.left + (p[..., self.a] - self.lo[self.a]) * self.ppm
        y = self.top + (self.hi[self.b] - p[..., self.b]) * self.ppm
        return np.stack([x, y], axis=-1)


def _paint_gaussians(canvas: np.ndarray, view: _View, means: np.ndarray, colors: np.ndarray, sigma: np.ndarray) -> None:
    """Paint Gaussians as squares of about their footprint, nearest to the viewer on top."""
    xy = np.round(view.px(means)).astype(np.int64)
    key = view.depth_sign * means[:, view.depth]
    radius = np.clip(np.round(1.2 * sigma * view.ppm), 0, 6).astype(np.int64)
    pix, keys, idx = [], [], []
    for r in np.unique(radius):
        sel = np.nonzero(radius == r)[0]
        offs = np.arange(-r, r + 1)
        dx, dy = (g.reshape(-1) for g in np.meshgrid(offs, offs))
        x = (xy[sel, 0][:, None] + dx).reshape(-1)
        y = (xy[sel, 1][:, None] + dy).reshape(-1)
        inside = (x >= view.left) & (x < view.left + view.width) & (y >= view.top) & (y < view.top + view.height)
        pix.append((y * canvas.shape[1] + x)[inside])
        keys.append(np.repeat(key[sel], len(dx))[inside])
        idx.append(np.repeat(sel, len(dx))[inside])
    pix, keys, idx = np.concatenate(pix), np.concatenate(keys), np.concatenate(idx)
    if not len(pix):
        return
    order = np.lexsort((keys, pix))
    pix, idx = pix[order], idx[order]
    last = np.r_[pix[1:] != pix[:-1], True]  # per pixel, the nearest Gaussian (sorted last)
    flat = canvas.reshape(-1, 3)
    flat[pix[last]] = (np.clip(colors[idx[last]], 0, 1) * 200).astype(np.uint8)  # a little dim: the path stands out


def _frustum(shot: Shot, sample, i: int, length: float) -> np.ndarray:
    """Camera centre and the four image corners at `length` metres along the view axis [5,3]."""
    lens = shot.lens
    fy = focal_mm_to_pixels(sample.focal_mm[i], lens.width, lens.image_width_mm)
    fx = fy / lens.squeeze  # an anamorphic lens sees squeeze times wider
    corners = []
    for u, v in ((0, 0), (lens.width, 0), (lens.width, lens.height), (0, lens.height)):
        d = np.array([(u - lens.width / 2) / fx, (v - lens.height / 2) / fy, 1.0]) * length
        corners.append(sample.rotations[i] @ d + sample.positions[i])
    return np.vstack([sample.positions[i][None], np.array(corners)])


def draw_path_preview(shot: Shot, gaussians: Gaussians | None, out_path: str | os.PathLike,
                      width: int = 1200) -> None:
    """Write a PNG: the shot's path over the scene from above (x right, y up) and from the
    front (x right, z up), frame dots, first/last frames, key frusta with frame numbers."""
    from PIL import Image, ImageDraw

    check_png_output(out_path)
    sample = shot.sample()
    key_times = shot.key_times()
    keys = shot.sample(np.array(key_times))
    pts = [sample.positions]
    means = colors = sigma = None
    if gaussians is not None and len(gaussians):
        g = gaussians.detach().to("cpu", torch.float64)
        keep = (g.activated_opacities > 0.2).numpy()
        means = g.means.numpy()[keep]
        colors = g.base_colors.numpy()[keep]
        sigma = g.activated_scales.numpy()[keep].max(axis=1)
        if len(means):
            pts.append(np.percentile(means, [0.5, 99.5], axis=0))
    allp = np.vstack(pts)
    span = float(np.max(allp.max(0) - allp.min(0)))
    length = max(0.15 * span, 0.05)
    frusta = [_frustum(shot, keys, i, length) for i in range(len(keys))]
    allp = np.vstack([allp, *frusta])
    pad = 0.06 * max(span, 0.5)
    lo, hi = allp.min(0) - pad, allp.max(0) + pad

    header, margin = 80, 16
    ppm = (width - 2 * margin) / (hi[0] - lo[0])
    # Keep the whole plan under ~1.6 x width: very deep scenes get a smaller scale.
    ppm = min(ppm, 1.6 * width / ((hi[1] - lo[1]) + (hi[2] - lo[2])))
    top = _View(0, 1, 2, 1.0, lo, hi, ppm, margin, header)
    front = _View(0, 2, 1, -1.0, lo, hi, ppm, margin, header + top.height + 40)
    H = front.top + front.height + margin
    width = max(top.width + 2 * margin, 560)  # room for the header text
    canvas = np.empty((H, width, 3), dtype=np.uint8)
    canvas[:] = _BG
    if means is not None and len(means):
        for view in (top, front):
            _paint_gaussians(canvas, view, means, colors, sigma)
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    small, big = _font(13), _font(17)

    lens = shot.lens
    focal = sample.focal_mm
    focal_text = f"{focal[0]:g} mm" if np.allclose(focal, focal[0]) else f"{focal.min():.4g}-{focal.max():.4g} mm"
    draw.text((margin, 10), f"{shot.name}: frames {shot.first_frame}-{shot.last_frame} ({shot.frame_count} at "
              f"{shot.fps} fps, {float(shot.duration):.3f} s)", fill=_TEXT, font=big)
    squeeze = "" if lens.squeeze == 1 else f" {lens.squeeze:g}x anamorphic"
    draw.text((margin, 34), f"lens {focal_text}{squeeze} on {lens.sensor_width_mm:g} mm sensor, {lens.width}x{lens.height};"
              f" dots: one per frame; yellow: keys", fill=_TEXT, font=small)

    step = 0.5 if span < 4 else (1.0 if span < 12 else 5.0)
    for view, label in ((top, "top (x right, y up)"), (front, "front (x right, z up)")):
        box = [view.left, view.top, view.left + view.width, view.top + view.height]
        for axis, horizontal in ((view.a, False), (view.b, True)):
            for v in np.arange(math.ceil(lo[axis] / step) * step, hi[axis], step):
                p = lo.copy()
                p[axis] = v
                x, y = view.px(p)
                if horizontal:
                    draw.line([box[0], y, box[2], y], fill=_GRID, width=1)
                    draw.text((box[0] + 3, y - 14), f"{v:g}", fill=_GRID, font=small)
                else:
                    draw.line([x, box[1], x, box[3]], fill=_GRID, width=1)
                    draw.text((x + 3, box[3] - 15), f"{v:g}", fill=_GRID, font=small)
        draw.rectangle(box, outline=(120, 120, 130))
        draw.text((box[0], box[1] - 18), f"{label}, grid {step:g} m", fill=_TEXT, font=small)

        xy = view.px(sample.positions)
        n = len(xy)
        for i in range(n - 1):
            t = i / max(n - 2, 1)
            color = (int(80 + 170 * t), int(170 - 90 * t), int(255 - 100 * t))
            draw.line([tuple(xy[i]), tuple(xy[i + 1])], fill=color, width=2)
        for x, y in xy:
            draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(235, 235, 235))
        for fr, ktime in zip(frusta, key_times):
            f = view.px(fr)
            for c in range(1, 5):
                draw.line([tuple(f[0]), tuple(f[c])], fill=_KEY, width=1)
            draw.polygon([tuple(f[c]) for c in range(1, 5)], outline=_KEY)
            frame = shot.first_frame + ktime * float(shot.fps)
            text = f"{frame:.0f}" if abs(frame - round(frame)) < 1e-6 else f"{frame:.1f}"
            draw.text((f[0][0] + 6, f[0][1] + 4), text, fill=_KEY, font=small)
        for (x, y), color in ((xy[0], _START), (xy[-1], _END)):
            draw.ellipse([x - 5, y - 5, x + 5, y + 5], outline=color, width=2)
    write_png(out_path, np.asarray(img))


def tile_images(images: list[np.ndarray | None], labels: list[str], out_path: str | os.PathLike,
                columns: int | None = None) -> None:
    """Tile uint8 images [H,W,3] of one size into a labelled contact sheet PNG (atomic); a
    None leaves its cell empty."""
    from PIL import Image, ImageDraw

    th, tw = next(im for im in images if im is not None).shape[:2]
    cols = columns or min(len(images), 4)
    rows = math.ceil(len(images) / cols)
    gap, label = 6, 18
    sheet = Image.new("RGB", (cols * (tw + gap) + gap, rows * (th + label + gap) + gap), _BG)
    draw = ImageDraw.Draw(sheet)
    font = _font(12)
    for k, (im, text) in enumerate(zip(images, labels)):
        if im is None:
            continue
        x = gap + (k % cols) * (tw + gap)
        y = gap + (k // cols) * (th + label + gap)
        sheet.paste(Image.fromarray(im), (x, y + label))
        draw.text((x, y + 2), text, fill=_TEXT, font=font)
    write_png(out_path, np.asarray(sheet))


def contact_sheet_picks(count: int, every: int | None = None, most: int | None = None) -> list[int]:
    """Indices of the frames a contact sheet of `count` (>= 1) frames shows: every `every`-th
    (default: about 12 in all), and the last always; with `most` (>= 2), at most that many,
    spread evenly from the first to the last."""
    every = every or max(1, math.ceil(count / 12))
    picks = list(range(0, count, every))
    if picks[-1] != count - 1:
        picks.append(count - 1)
    if most is not None and len(picks) > most:
        picks = sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})
    return picks


def render_contact_sheet(shot: Shot, gaussians: Gaussians, out_path: str | os.PathLike, every: int | None = None,
                         thumb_width: int = 240, columns: int | None = None, backend: str = "auto",
                         rasterize_mode: str = "classic") -> list[int]:
    """Render every `every`-th frame (default: about 12 frames; the last frame always) at
    `thumb_width` pixels wide and tile them, labelled with frame number and focal length, into
    a PNG (rasterize_mode: the scene's, as it was trained). An anamorphic lens's frames are
    rendered desqueezed: the thumbnails have the picture's shown aspect (`Lens.display_aspect`)
    and square pixels. Returns the frame numbers shown."""
    from splatfilm.render import rasterization

    check_png_output(out_path)
    n = shot.frame_count
    picks = contact_sheet_picks(n, every)
    lens = shot.lens
    th = max(1, round(thumb_width / lens.display_aspect))
    cams = shot.cameras()[np.array(picks)].resized(thumb_width, th)
    focal = shot.sample().focal_mm[picks]
    images = []
    g = gaussians.to("cpu", torch.float32)
    for start in range(0, len(cams), 8):
        out = rasterization(g, **cams[start:start + 8].render_arguments(), backend=backend, near_plane=lens.near,
                            far_plane=lens.far, rasterize_mode=rasterize_mode)
        images.extend(to_uint8(out.rgb.detach().cpu().numpy()))
    labels = [f"{shot.first_frame + i}  {focal[k]:.3g} mm" for k, i in enumerate(picks)]
    tile_images(images, labels, out_path, columns)
    return [shot.first_frame + i for i in picks]
