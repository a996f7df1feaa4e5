"""Render the bundled captures with Mitsuba 3 (physically based, `scalar_rgb`, CPU).

Three captures, each a nerfstudio dataset (transforms.json + images/, exact cameras):

    scenes/set/               a small film set: a room with three walls (brick, painted plaster
                              with posters, wallpaper over wood panelling), a wooden floor with a
                              rug, a table with books, a vase and a globe, crates and a potted
                              plant. Z up, metres (the film-world convention). 48 training views.
    scenes/set/heldout/       a separate smooth camera path through the set (30 frames), the
                              ground truth for how a fitted scene does on a shot it never saw.
    scenes/character/         an object capture of a toy explorer figure, RGBA (transparent
                              background, alpha from Mitsuba's film), 30 views around it, in the
                              canonical object frame (base on z = 0, up +z, front facing -y).

Textures are generated here with numpy (wood, brick, plaster, fabric, posters, maps) so that
SIFT finds ~1,500 features per 320x240 view and structure-from-motion registers every
view; they are detailed but not finer than a few pixels at 320x240, so 3DGS can fit them.
Materials are diffuse apart from a mildly glossy vase and a gold buckle; light is a sky through the open top,
a softbox and a sun. Deterministic: fixed seeds for the textures and the renderer.

    pip install -e '.[capture]'                   # mitsuba>=3.5 (only this script needs it)
    python scenes/make_captures.py                # all three, ~5 minutes on 2 idle cores
    python scenes/make_captures.py --only set --spp 16     # one capture, quicker and noisier
    python scenes/make_captures.py --only rig     # the explorer as a rigged glTF (no Mitsuba)

The explorer is also written as a rigged glTF (character/explorer_rigged.glb): the same
primitives as triangle meshes, a skeleton, skin weights and idle/walk clips authored here
(`write_explorer_gltf`), for `splatfilm rig` to bind the fitted capture to.

Camera conventions: Mitsuba's camera space is x left, y up, looking down +z, so
c2w_mitsuba = c2w_opencv @ diag(-1, -1, 1, 1); every run checks this by rendering a small
emissive marker at known points (table corners, the character's nose) and comparing its image
centroid with the projection by splatfilm's `Cameras` read back from the written transforms.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 320, 240

# Mitsuba camera axes (x left, y up, z forward) from OpenCV's (x right, y down, z forward).
_CV_TO_MI = np.diag([-1.0, -1.0, 1.0, 1.0])
# nerfstudio / OpenGL camera axes (x right, y up, looking down -z) from OpenCV's.
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])

# One exposure for every view of a capture (views must agree on brightness to be fittable).
SET_EXPOSURE = 1.0
CHARACTER_EXPOSURE = 1.0


# ---- procedural textures (uint8 sRGB [H,W,3], row 0 at the top of the surface) -----------------


def value_noise(rng: np.random.Generator, h: int, w: int, cell_y: float, cell_x: float | None = None) -> np.ndarray:
    """Smooth random noise [h,w] in [0,1] with features about `cell_y` x `cell_x` pixels."""
    cell_x = cell_y if cell_x is None else cell_x
    gh, gw = int(h / cell_y) + 3, int(w / cell_x) + 3
    grid = rng.random((gh, gw))
    y, x = np.arange(h) / cell_y, np.arange(w) / cell_x
    y0, x0 = y.astype(int), x.astype(int)
    # Smoothstep weights: no visible grid creases, unlike plain bilinear.
    fy, fx = y - y0, x - x0
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    a = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    b = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return a * (1 - fy[:, None]) + b * fy[:, None]


def fbm(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 5, aspect: float = 1.0) -> np.ndarray:
    """Fractal noise [h,w] in about [0,1]: octaves of value noise, each half the size and weight.

    aspect > 1 stretches features along x (wood grain)."""
    total, norm, amp = np.zeros((h, w)), 0.0, 1.0
    for _ in range(octaves):
        if cell < 1.0:
            break
        total += amp * value_noise(rng, h, w, cell, cell * aspect)
        norm += amp
        cell, amp = cell / 2, amp / 2
    return total / norm


def _u8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _mix(a, b, t):
    """Per-pixel blend of colours a and b [..,3] by t [..] in [0,1]."""
    t = np.asarray(t)[..., None]
    return np.asarray(a) * (1 - t) + np.asarray(b) * t


def wood(rng: np.random.Generator, h: int, w: int, px_per_m: float, plank_m: float = 0.14,
         tone=(0.55, 0.36, 0.2), along_x: bool = False) -> np.ndarray:
    """Wooden planks with grain, staggered joints and dark gaps; planks run along y (rows) or x."""
    if along_x:
        return wood(rng, w, h, px_per_m, plank_m, tone).transpose(1, 0, 2)
    plank = max(4, int(plank_m * px_per_m))
    col = np.arange(w) // plank
    n = col.max() + 1
    tints = rng.uniform(0.75, 1.2, n)
    # Grain: stretched noise warped into ring-like streaks along the plank (rows = along y here).
    streak = fbm(rng, w, h, cell=0.05 * px_per_m, octaves=4, aspect=12.0).T
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (np.arange(w)[None, :] / (0.012 * px_per_m) + 6 * streak))
    grain = 0.8 + 0.12 * rings + 0.2 * (fbm(rng, h, w, 0.2 * px_per_m, 4) - 0.5)
    rgb = np.asarray(tone)[None, None] * (grain * tints[col][None, :])[..., None]
    # Plank ends: a joint every 0.6-1.6 m, offset per plank.
    joints = np.zeros((h, w), bool)
    for c in range(n):
        length = int(rng.uniform(0.6, 1.6) * px_per_m)
        start = int(rng.uniform(0, length))
        rows = np.arange(start % length, h, length)
        cols = slice(c * plank, (c + 1) * plank)
        for r in rows:
            joints[r:r + 2, cols] = True
    gaps = (np.arange(w) % plank < 2)[None, :] | joints
    rgb[gaps] *= 0.35
    return _u8(rgb)


def brick(rng: np.random.Generator, h: int, w: int, px_per_m: float) -> np.ndarray:
    """Running-bond brick with per-brick colour, speckle, soot and grey mortar."""
    bh, bw, mortar = 0.075 * px_per_m, 0.23 * px_per_m, max(1.5, 0.012 * px_per_m)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    row = (yy // bh).astype(int)
    shift = (row % 2) * bw / 2
    colb = ((xx + shift) // bw).astype(int)
    rng_colors = rng.uniform(0, 1, (row.max() + 2, colb.max() + 2, 3))
    base = np.array([0.55, 0.24, 0.16])
    tint = 0.75 + 0.5 * rng_colors[row, colb]
    rgb = base * tint * np.array([1.0, 0.9, 0.85])
    speck = fbm(rng, h, w, 0.03 * px_per_m, 3)
    rgb *= (0.9 + 0.2 * speck)[..., None]
    soot = fbm(rng, h, w, 0.6 * px_per_m, 4)
    rgb *= (0.65 + 0.5 * soot)[..., None]
    in_mortar = ((yy % bh) < mortar) | (((xx + shift) % bw) < mortar)
    mortar_rgb = np.array([0.62, 0.6, 0.55]) * (0.8 + 0.3 * speck)[..., None]
    rgb = np.where(in_mortar[..., None], mortar_rgb, rgb)
    return _u8(rgb)


def plaster(rng: np.random.Generator, h: int, w: int, px_per_m: float, color=(0.78, 0.72, 0.6)) -> np.ndarray:
    """Painted plaster: soft blotches, fine trowel texture and a few hairline cracks."""
    blotch = fbm(rng, h, w, 0.8 * px_per_m, 5)
    fine = fbm(rng, h, w, 0.04 * px_per_m, 3)
    rgb = np.asarray(color) * (0.8 + 0.3 * blotch + 0.05 * (fine - 0.5))[..., None]
    crack_field = fbm(rng, h, w, 0.3 * px_per_m, 4)
    cracks = np.abs(crack_field - 0.5) < 0.006
    rgb[cracks] *= 0.6
    return _u8(rgb)


def fabric(rng: np.random.Generator, h: int, w: int, px_per_m: float, c1, c2, check_m: float = 0.06) -> np.ndarray:
    """Woven plaid: two colours in crossing bands, a fine weave and slub noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    p = check_m * px_per_m
    band_x = (np.sin(2 * np.pi * xx / p) > 0.3).astype(float)
    band_y = (np.sin(2 * np.pi * yy / p) > 0.3).astype(float)
    thin = ((xx % p) < max(1, p / 10)) | ((yy % p) < max(1, p / 10))
    t = 0.5 * (band_x + band_y)
    rgb = _mix(c1, c2, t)
    rgb[thin] = rgb[thin] * 0.5 + 0.5 * np.array([0.95, 0.9, 0.7])
    weave = 0.96 + 0.04 * np.sign(np.sin(np.pi * xx / 1.5) * np.sin(np.pi * yy / 1.5))
    slub = fbm(rng, h, w, 0.1 * px_per_m, 3)
    return _u8(rgb * (weave * (0.85 + 0.3 * slub))[..., None])


def map_texture(rng: np.random.Generator, h: int, w: int, px_per_m: float, sea=(0.2, 0.42, 0.62)) -> np.ndarray:
    """A printed map: fbm continents coloured by height, coastlines, a lat/long grid."""
    height = fbm(rng, h, w, 0.35 * max(h, w) / 1.0, 6)
    land = height > 0.52
    t = np.clip((height - 0.52) / 0.2, 0, 1)
    land_rgb = _mix([0.45, 0.6, 0.3], [0.65, 0.5, 0.3], t)
    land_rgb = _mix(land_rgb, [0.92, 0.92, 0.9], np.clip((height - 0.72) / 0.08, 0, 1))
    depth = np.clip((0.52 - height) / 0.2, 0, 1)
    sea_rgb = _mix([0.5, 0.72, 0.85], sea, depth)
    rgb = np.where(land[..., None], land_rgb, sea_rgb)
    coast = np.abs(height - 0.52) < 0.006
    rgb[coast] = [0.15, 0.15, 0.15]
    yy, xx = np.mgrid[0:h, 0:w]
    grid = ((yy % max(8, h // 6)) == 0) | ((xx % max(8, w // 8)) == 0)
    rgb[grid] = rgb[grid] * 0.6 + 0.4
    return _u8(rgb)


def poster(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A graphic poster: coloured background, big shapes, a title block and 'text' lines."""
    palette = rng.uniform(0.05, 0.95, (6, 3))
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    rgb = np.broadcast_to(palette[0], (h, w, 3)).copy()
    rgb = _mix(rgb, palette[1], 0.35 * fbm(rng, h, w, max(h, w) / 2, 3))
    for k in range(int(rng.integers(4, 8))):
        c = palette[2 + k % 4]
        kind = rng.integers(0, 3)
        cy, cx = rng.uniform(0.1, 0.65) * h, rng.uniform(0.1, 0.9) * w
        s = rng.uniform(0.08, 0.3) * min(h, w)
        if kind == 0:
            m = (yy - cy) ** 2 + (xx - cx) ** 2 < s * s
        elif kind == 1:
            m = (np.abs(yy - cy) < s * rng.uniform(0.3, 1)) & (np.abs(xx - cx) < s)
        else:  # a triangle
            m = (yy - cy > -s) & (yy - cy < s) & (np.abs(xx - cx) < (yy - cy + s) / 2)
        rgb[m] = c
    # Diagonal stripes over one band.
    band = (yy > 0.05 * h) & (yy < 0.12 * h)
    stripes = band & (((xx + yy) // max(2, w // 24)) % 2 == 0)
    rgb[stripes] = palette[3]
    # Title block and lines of 'words' in the lower third.
    ink = palette[0] * 0.2 if palette[0].mean() > 0.45 else np.array([0.95, 0.93, 0.88])
    y = int(0.7 * h)
    title = int(max(3, 0.05 * h))
    x = int(0.08 * w)
    while x < 0.85 * w:
        lw = int(rng.uniform(0.05, 0.16) * w)
        rgb[y:y + title, x:x + lw] = ink
        x += lw + max(2, title // 2)
    y += title + max(3, title)
    line = max(2, int(0.018 * h))
    while y < 0.94 * h:
        x = int(0.08 * w)
        while x < 0.9 * w:
            lw = int(rng.uniform(0.02, 0.08) * w)
            rgb[y:y + line, x:x + lw] = ink
            x += lw + max(2, line)
        y += 2 * line + 1
    frame = (yy < 0.02 * h) | (yy > 0.98 * h) | (xx < 0.02 * w) | (xx > 0.98 * w)
    rgb[frame] = [0.95, 0.95, 0.93]
    return _u8(rgb)


def rug(rng: np.random.Generator, h: int, w: int, px_per_m: float) -> np.ndarray:
    """A patterned rug: borders, a central medallion, motifs in a field and woollen noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    u, v = (xx + 0.5) / w - 0.5, (yy + 0.5) / h - 0.5
    field = np.array([0.55, 0.12, 0.12])
    rgb = np.broadcast_to(field, (h, w, 3)).copy()
    # Diamond lattice of motifs with random colours (not exactly periodic: SIFT wants uniqueness).
    cell = 0.14 * px_per_m
    iy, ix = (yy // cell).astype(int), (xx // cell).astype(int)
    cols = rng.uniform(0.1, 0.9, (iy.max() + 1, ix.max() + 1, 3))
    dy, dx = (yy % cell) / cell - 0.5, (xx % cell) / cell - 0.5
    motif = np.abs(dy) + np.abs(dx) < 0.3 + 0.1 * rng.random((iy.max() + 1, ix.max() + 1))[iy, ix]
    rgb[motif] = cols[iy, ix][motif] * np.array([1.0, 0.8, 0.5])
    r = np.sqrt((u / 0.5) ** 2 + (v / 0.5) ** 2)
    ang = np.arctan2(v, u)
    medal = r < 0.32 + 0.04 * np.sin(8 * ang)
    rgb[medal] = _mix([0.12, 0.2, 0.45], [0.85, 0.7, 0.35], (np.sin(18 * r + 4 * np.sin(6 * ang)) > 0).astype(float))[medal]
    border = np.minimum(np.minimum(u + 0.5, 0.5 - u) * w, np.minimum(v + 0.5, 0.5 - v) * h) / px_per_m
    b1 = border < 0.16
    rgb[b1] = _mix([0.1, 0.18, 0.35], [0.85, 0.75, 0.5], (np.sin((xx + yy) / (0.025 * px_per_m)) > 0.2).astype(float))[b1]
    rgb[(border > 0.16) & (border < 0.19)] = [0.85, 0.75, 0.5]
    rgb[border < 0.025] = [0.3, 0.08, 0.08]
    wool = fbm(rng, h, w, 0.05 * px_per_m, 3)
    return _u8(rgb * (0.9 + 0.15 * wool)[..., None])


def book_cover(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A cloth-bound book: one colour, a title band and scuffs."""
    c = rng.uniform(0.1, 0.8, 3)
    rgb = np.broadcast_to(c, (h, w, 3)).copy()
    yy, xx = np.mgrid[0:h, 0:w]
    rgb[(yy > 0.3 * h) & (yy < 0.45 * h)] = 1 - c * 0.7
    rgb[(xx > 0.15 * w) & (xx < 0.2 * w)] *= 0.6
    return _u8(rgb * (0.8 + 0.3 * fbm(rng, h, w, max(4, min(h, w) / 4), 3))[..., None])


def vase_paint(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Glazed pottery: bands, a zig-zag and dots around the circumference (u across, v along)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    rgb = np.broadcast_to([0.9, 0.85, 0.72], (h, w, 3)).copy()
    v = yy / h
    rgb[(v > 0.1) & (v < 0.16)] = [0.1, 0.25, 0.55]
    rgb[(v > 0.84) & (v < 0.9)] = [0.1, 0.25, 0.55]
    zig = np.abs(v - 0.5 - 0.12 * np.abs(((xx / w * 16) % 2) - 1)) < 0.035
    rgb[zig] = [0.7, 0.2, 0.1]
    dots = ((xx % (w / 24) - w / 48) ** 2 + (yy - 0.3 * h ) ** 2) < (0.02 * h) ** 2
    dots |= ((xx % (w / 20) - w / 40) ** 2 + (yy - 0.72 * h) ** 2) < (0.025 * h) ** 2
    rgb[dots] = [0.15, 0.45, 0.3]
    return _u8(rgb * (0.9 + 0.2 * fbm(rng, h, w, h / 6, 3))[..., None])


def crate(rng: np.random.Generator, h: int, w: int, px_per_m: float) -> np.ndarray:
    """A slatted crate face: light wood slats, a dark frame and a stencilled mark."""
    rgb = wood(rng, h, w, px_per_m, plank_m=0.1, tone=(0.7, 0.55, 0.35), along_x=True).astype(float) / 255
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    edge = max(3, int(0.035 * px_per_m))
    frame = (yy < edge) | (yy >= h - edge) | (xx < edge) | (xx >= w - edge) | (np.abs(xx - yy * w / h) < edge * 0.8)
    rgb[frame] *= 0.6
    cy, cx, s = h * 0.5, w * 0.5, 0.2 * min(h, w)
    ring = np.abs(np.hypot(yy - cy, xx - cx) - s) < 0.18 * s
    bar = (np.abs(yy - cy) < 0.15 * s) & (np.abs(xx - cx) < 1.3 * s)
    rgb[ring | bar] = [0.12, 0.1, 0.08]
    return _u8(rgb)


def terracotta(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    rgb = np.array([0.7, 0.36, 0.22]) * (0.8 + 0.35 * fbm(rng, h, w, h / 4, 4))[..., None]
    rgb[(np.arange(h) > 0.8 * h)] *= 0.75
    return _u8(rgb)


def foliage(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Leafy greens: clumps of light and dark leaves (features a few pixels wide at 320x240)."""
    big = fbm(rng, h, w, h / 6, 4)
    leaves = value_noise(rng, h, w, max(2, h / 40))
    t = np.clip(0.6 * big + 0.6 * leaves - 0.2, 0, 1)
    return _u8(_mix([0.05, 0.2, 0.05], [0.45, 0.65, 0.2], t))


def stamp_motifs(rng: np.random.Generator, tex: np.ndarray, count: int, size_px: tuple[int, int]) -> np.ndarray:
    """A copy of `tex` with `count` small random badges (discs, squares, triangles, rings,
    crosses in random colours) stamped on: unique detail that repetitive patterns (plaid,
    weave) lack, so SIFT matches are unambiguous."""
    out = tex.copy()
    h, w = tex.shape[:2]
    for _ in range(count):
        r = int(rng.integers(size_px[0], size_px[1] + 1)) // 2
        cy, cx = int(rng.integers(r, h - r)), int(rng.integers(r, w - r))
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        kind = rng.integers(0, 5)
        if kind == 0:
            m = xx ** 2 + yy ** 2 <= r * r
        elif kind == 1:
            m = np.ones_like(xx, bool)
        elif kind == 2:
            m = np.abs(xx) <= (yy + r) / 2
        elif kind == 3:
            m = np.abs(np.hypot(xx, yy) - 0.7 * r) < 0.3 * r
        else:
            m = (np.abs(xx) < 0.3 * r) | (np.abs(yy) < 0.3 * r)
        color = _u8(rng.uniform(0.05, 0.95, 3))
        patch = out[cy - r:cy + r + 1, cx - r:cx + r + 1]
        patch[m] = color
        # A contrasting dot in the middle of most badges.
        if r >= 4:
            patch[(xx ** 2 + yy ** 2) <= (r // 4) ** 2] = 255 - color
    return out


def skin(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return _u8(np.array([0.86, 0.64, 0.5]) * (0.9 + 0.15 * fbm(rng, h, w, h / 5, 4))[..., None])


def denim(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    twill = 0.85 + 0.15 * np.sin(2 * np.pi * (xx + yy) / 3.0)
    fade = fbm(rng, h, w, h / 5, 4)
    rgb = _mix([0.1, 0.16, 0.35], [0.45, 0.55, 0.7], 0.5 * fade) * twill[..., None]
    seam = (np.abs(xx - w * 0.5) < 1.2)
    rgb[seam] = [0.8, 0.6, 0.25]
    return _u8(rgb)


def straw(rng: np.random.Generator, h: int, w: int, band: bool = True) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    weave = np.sign(np.sin(2 * np.pi * xx / 6) * np.sin(2 * np.pi * yy / 6))
    rgb = np.array([0.85, 0.72, 0.42]) * (0.85 + 0.1 * weave + 0.2 * (fbm(rng, h, w, 16, 3) - 0.5))[..., None]
    if band:  # a red hat band around the crown
        rgb[(yy > 0.55 * h) & (yy < 0.7 * h)] = [0.5, 0.12, 0.1]
    return _u8(rgb)


def leather(rng: np.random.Generator, h: int, w: int, color=(0.35, 0.2, 0.1)) -> np.ndarray:
    grain = fbm(rng, h, w, max(3, h / 12), 4)
    rgb = np.asarray(color) * (0.75 + 0.5 * grain)[..., None]
    yy, xx = np.mgrid[0:h, 0:w]
    stitch = ((np.abs(yy - 0.12 * h) < 1) | (np.abs(yy - 0.88 * h) < 1)) & ((xx // 4) % 2 == 0)
    rgb[stitch] = [0.9, 0.85, 0.7]
    return _u8(rgb)


# ---- Mitsuba scene building -----------------------------------------------------------------


def _bitmap(tex: np.ndarray):
    """A Mitsuba bitmap texture from uint8 sRGB [H,W,3] with row 0 at the top of the surface.

    Mitsuba puts a bitmap's first row at v = 0, the bottom edge of a rectangle (checked by
    rendering), so the rows are flipped here. uint8 bitmaps are read as sRGB-encoded."""
    import mitsuba as mi

    return {"type": "bitmap", "bitmap": mi.Bitmap(np.ascontiguousarray(np.flipud(tex))), "filter_type": "bilinear"}


def _diffuse(tex: np.ndarray) -> dict:
    return {"type": "twosided", "bsdf": {"type": "diffuse", "reflectance": _bitmap(tex)}}


def _xform(m: np.ndarray):
    import mitsuba as mi

    return mi.ScalarTransform4f(np.asarray(m, dtype=np.float64).tolist())


def rectangle(origin, u, v, bsdf: dict) -> dict:
    """Rectangle origin + s*u + t*v (s, t in [0,1]); the texture's top row at t = 1, columns along u."""
    origin, u, v = (np.asarray(a, dtype=float) for a in (origin, u, v))
    n = np.cross(u, v)
    n /= np.linalg.norm(n)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = u / 2, v / 2, n, origin + (u + v) / 2
    return {"type": "rectangle", "to_world": _xform(m), "bsdf": bsdf}


def box(name: str, lo, hi, tex_fn, px_per_m: float, shapes: dict, faces: str = "xXyYzZ") -> None:
    """Axis-aligned box [lo, hi] from up to six outward-facing rectangles, each with its own
    texture tex_fn(h_px, w_px) sized to the face so texel density is uniform."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    d = hi - lo
    ex, ey, ez = np.array([d[0], 0, 0]), np.array([0, d[1], 0]), np.array([0, 0, d[2]])
    spec = {
        "x": (lo + ey, -ey, ez), "X": (np.array([hi[0], lo[1], lo[2]]), ey, ez),
        "y": (lo, ex, ez), "Y": (np.array([hi[0], hi[1], lo[2]]), -ex, ez),
        "z": (lo + ey, ex, -ey), "Z": (np.array([lo[0], lo[1], hi[2]]), ex, ey),
    }
    for f in faces:
        o, u, v = spec[f]
        w_px = max(4, int(np.linalg.norm(u) * px_per_m))
        h_px = max(4, int(np.linalg.norm(v) * px_per_m))
        shapes[f"{name}_{f}"] = rectangle(o, u, v, _diffuse(tex_fn(h_px, w_px)))


def cylinder(name: str, p0, p1, radius: float, bsdf: dict, shapes: dict, caps: tuple[dict | None, dict | None] = (None, None)) -> None:
    """Cylinder from p0 to p1 (Mitsuba's open tube) with optional disk caps (bsdfs)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    shapes[name] = {"type": "cylinder", "p0": p0.tolist(), "p1": p1.tolist(), "radius": radius, "bsdf": bsdf}
    axis = (p1 - p0) / np.linalg.norm(p1 - p0)
    for k, (p, cap) in enumerate(((p0, caps[0]), (p1, caps[1]))):
        if cap is None:
            continue
        n = axis if k == 1 else -axis
        helper = np.array([1.0, 0, 0]) if abs(n[0]) < 0.9 else np.array([0, 1.0, 0])
        a = np.cross(n, helper)
        a /= np.linalg.norm(a)
        b = np.cross(n, a)
        m = np.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = a * radius, b * radius, n, p
        shapes[f"{name}_cap{k}"] = {"type": "disk", "to_world": _xform(m), "bsdf": cap}


def sphere(center, radius: float, bsdf: dict) -> dict:
    """Sphere at `center` (metres); its uv wraps longitude along u."""
    m = np.eye(4) * radius
    m[3, 3] = 1
    m[:3, 3] = center
    return {"type": "sphere", "to_world": _xform(m), "bsdf": bsdf}


# ---- the film set ---------------------------------------------------------------------------

ROOM_X = 2.4          # side walls at x = -ROOM_X and +ROOM_X
ROOM_BACK = 1.6       # back wall at y = ROOM_BACK
ROOM_FRONT = -3.8     # floor and side walls end here (behind every camera)
WALL_H = 3.2
TABLE = {"cx": 0.0, "cy": 0.3, "w": 1.3, "d": 0.75, "h": 0.76, "top": 0.04}  # metres
# The four corners of the table top: the camera convention check renders markers there.
TABLE_CORNERS = np.array([[TABLE["cx"] + sx * TABLE["w"] / 2, TABLE["cy"] + sy * TABLE["d"] / 2, TABLE["h"]]
                          for sx in (-1, 1) for sy in (-1, 1)])


def set_shapes(seed: int = 7) -> dict:
    """Mitsuba shape dicts of the film set (Z up, metres)."""
    rng = np.random.default_rng(seed)
    shapes: dict = {}
    ppm = 200.0  # texels a metre on the big surfaces: ~2-3 texels per image pixel at 3 m

    # Floor: planks along y, and a rug under the table.
    fw, fd = 2 * ROOM_X, ROOM_BACK - ROOM_FRONT
    shapes["floor"] = rectangle([-ROOM_X, ROOM_FRONT, 0], [fw, 0, 0], [0, fd, 0],
                                _diffuse(wood(rng, int(fd * ppm), int(fw * ppm), ppm)))
    rw, rd = 2.4, 1.7
    shapes["rug"] = rectangle([TABLE["cx"] - rw / 2, TABLE["cy"] - rd / 2 - 0.1, 0.004], [rw, 0, 0], [0, rd, 0],
                              _diffuse(rug(rng, int(rd * ppm), int(rw * ppm), ppm)))

    # Back wall: painted plaster with posters and a map pasted on it.
    bw = plaster(rng, int(WALL_H * ppm), int(fw * ppm), ppm).copy()

    def paste(wall: np.ndarray, img: np.ndarray, x_m: float, top_m: float) -> None:
        r0, c0 = int((WALL_H - top_m) * ppm), int(x_m * ppm)
        wall[r0:r0 + img.shape[0], c0:c0 + img.shape[1]] = img

    paste(bw, poster(rng, int(0.9 * ppm), int(0.65 * ppm)), 0.5, 2.1)
    paste(bw, map_texture(rng, int(0.7 * ppm), int(1.1 * ppm), ppm), 1.85, 2.0)
    paste(bw, poster(rng, int(0.8 * ppm), int(0.6 * ppm)), 3.5, 2.15)
    paste(bw, poster(rng, int(0.45 * ppm), int(0.35 * ppm)), 3.0, 1.3)
    shapes["wall_back"] = rectangle([-ROOM_X, ROOM_BACK, 0], [fw, 0, 0], [0, 0, WALL_H], _diffuse(bw))

    # Left wall (x = -ROOM_X, seen from +x): brick with a framed map and a poster.
    ld = ROOM_BACK - ROOM_FRONT
    lw = brick(rng, int(WALL_H * ppm), int(ld * ppm), ppm)
    # Columns run along -y -> +y when seen from inside; column 0 is at the front (y = ROOM_FRONT).
    paste(lw, poster(rng, int(0.8 * ppm), int(0.6 * ppm)), ld - 1.4, 2.0)
    paste(lw, map_texture(rng, int(0.6 * ppm), int(0.9 * ppm), ppm), ld - 3.2, 1.9)
    shapes["wall_left"] = rectangle([-ROOM_X, ROOM_FRONT, 0], [0, ld, 0], [0, 0, WALL_H], _diffuse(lw))

    # Right wall (x = +ROOM_X, seen from -x): wood panelling below 1 m, patterned paper above.
    rwall = plaster(rng, int(WALL_H * ppm), int(ld * ppm), ppm, color=(0.55, 0.66, 0.6))
    paper = fabric(rng, rwall.shape[0], rwall.shape[1], ppm, (0.55, 0.66, 0.6), (0.75, 0.72, 0.55), check_m=0.22)
    rwall = ((rwall.astype(np.uint16) + paper) // 2).astype(np.uint8)
    panel_rows = int(1.0 * ppm)
    rwall[-panel_rows:] = wood(rng, panel_rows, rwall.shape[1], ppm, plank_m=0.3, tone=(0.45, 0.3, 0.18))
    rwall[-panel_rows - 6:-panel_rows] = [60, 40, 25]
    paste(rwall, poster(rng, int(0.85 * ppm), int(0.62 * ppm)), 1.2, 2.2)
    paste(rwall, poster(rng, int(0.5 * ppm), int(0.7 * ppm)), 3.0, 2.0)
    shapes["wall_right"] = rectangle([ROOM_X, ROOM_BACK, 0], [0, -ld, 0], [0, 0, WALL_H], _diffuse(rwall))

    # Table: wooden top and four legs.
    t = TABLE
    x0, x1 = t["cx"] - t["w"] / 2, t["cx"] + t["w"] / 2
    y0, y1 = t["cy"] - t["d"] / 2, t["cy"] + t["d"] / 2
    pp = 400.0
    box("table_top", [x0, y0, t["h"] - t["top"]], [x1, y1, t["h"]],
        lambda h, w: wood(rng, h, w, pp, plank_m=0.18, tone=(0.5, 0.3, 0.16), along_x=True), pp, shapes)
    leg = 0.06
    for i, (lx, ly) in enumerate([(x0 + 0.05, y0 + 0.05), (x1 - 0.05 - leg, y0 + 0.05),
                                  (x0 + 0.05, y1 - 0.05 - leg), (x1 - 0.05 - leg, y1 - 0.05 - leg)]):
        box(f"table_leg{i}", [lx, ly, 0], [lx + leg, ly + leg, t["h"] - t["top"]],
            lambda h, w: wood(rng, h, w, pp, plank_m=0.2, tone=(0.35, 0.2, 0.1)), pp, shapes, faces="xXyY")

    # On the table: a stack of books, a glazed vase, a globe.
    z = t["h"]
    for i, (bx, by, bw_, bd, bh) in enumerate([(-0.5, 0.1, 0.3, 0.22, 0.05), (-0.48, 0.11, 0.26, 0.2, 0.04),
                                               (-0.51, 0.09, 0.28, 0.21, 0.06)]):
        box(f"book{i}", [bx, by, z], [bx + bw_, by + bd, z + bh], lambda h, w: book_cover(rng, h, w), 600.0, shapes,
            faces="xXyYZ")
        z += bh
    z = t["h"]
    vase_tex = vase_paint(rng, 256, 512)
    vase_bsdf = {"type": "twosided", "bsdf": {"type": "roughplastic", "distribution": "ggx", "alpha": 0.25,
                                              "specular_reflectance": 0.25, "diffuse_reflectance": _bitmap(vase_tex)}}
    cylinder("vase", [0.05, 0.45, z], [0.05, 0.45, z + 0.32], 0.08, vase_bsdf, shapes,
             caps=(None, _diffuse(np.full((8, 8, 3), 40, np.uint8))))
    globe = map_texture(rng, 256, 512, 512)
    shapes["globe"] = sphere([0.38, 0.2, z + 0.14], 0.14, _diffuse(globe))
    shapes["globe_stand"] = {"type": "cylinder", "p0": [0.38, 0.2, z], "p1": [0.38, 0.2, z + 0.02], "radius": 0.07,
                             "bsdf": _diffuse(np.full((4, 4, 3), 50, np.uint8))}

    # Floor props: two stacked crates at the back left, a potted plant at the back right, a stool.
    box("crate0", [-2.2, 0.7, 0], [-1.6, 1.3, 0.6], lambda h, w: crate(rng, h, w, 300.0), 300.0, shapes, faces="xXyYZ")
    box("crate1", [-2.1, 0.85, 0.6], [-1.7, 1.25, 1.0], lambda h, w: crate(rng, h, w, 300.0), 300.0, shapes, faces="xXyYZ")
    box("crate2", [-1.5, 0.9, 0], [-1.1, 1.3, 0.4], lambda h, w: crate(rng, h, w, 300.0), 300.0, shapes, faces="xXyYZ")
    cylinder("pot", [1.7, 1.0, 0], [1.7, 1.0, 0.45], 0.2, _diffuse(terracotta(rng, 128, 512)), shapes,
             caps=(None, _diffuse(np.full((8, 8, 3), [60, 40, 25], np.uint8))))
    shapes["bush"] = sphere([1.7, 1.0, 0.8], 0.38, _diffuse(foliage(rng, 256, 512)))
    cylinder("stool", [1.2, -0.6, 0.0], [1.2, -0.6, 0.45], 0.18,
             _diffuse(wood(rng, 128, 512, 400.0, plank_m=0.08, tone=(0.6, 0.4, 0.22))), shapes,
             caps=(None, _diffuse(fabric(rng, 128, 128, 800.0, (0.2, 0.3, 0.6), (0.8, 0.8, 0.75), check_m=0.05))))
    return shapes


def set_lights() -> dict:
    """Sky through the open top (every camera looks below the wall tops), a softbox, a sun."""
    softbox = np.eye(4)
    softbox[:3, 0], softbox[:3, 1], softbox[:3, 2], softbox[:3, 3] = [1.3, 0, 0], [0, 1.0, 0], [0, 0, -1], [0.3, -1.0, 3.6]
    return {
        "sky": {"type": "constant", "radiance": {"type": "rgb", "value": [0.55, 0.6, 0.7]}},
        "softbox": {"type": "rectangle", "to_world": _xform(softbox),
                    "emitter": {"type": "area", "radiance": {"type": "rgb", "value": [3.2, 3.0, 2.7]}}},
        "sun": {"type": "directional", "direction": [-0.35, 0.45, -0.82],
                "irradiance": {"type": "rgb", "value": [1.6, 1.5, 1.3]}},
    }


# ---- cameras --------------------------------------------------------------------------------


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world [4,4] in OpenCV axes (x right, y down, looking down +z) at `eye` facing `target`."""
    from splatfilm.scene.transforms import look_at_rotation

    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = look_at_rotation(eye, target, up), eye
    return c2w


@dataclass
class Rig:
    """Cameras of one capture: OpenCV camera-to-world poses [C,4,4], one horizontal field of view."""

    c2w: np.ndarray
    fov_x_deg: float
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def focal(self) -> float:
        """fx = fy in pixels (square pixels; Mitsuba's `fov_axis: x`)."""
        return self.width / 2 / math.tan(math.radians(self.fov_x_deg) / 2)

    def K(self) -> np.ndarray:
        f = self.focal
        return np.array([[f, 0, self.width / 2], [0, f, self.height / 2], [0, 0, 1.0]])


def set_training_rig() -> Rig:
    """48 overlapping views from the open front of the room, three heights, panning across the set."""
    poses = []
    pivot = np.array([TABLE["cx"], TABLE["cy"], 0.0])
    rings = [  # (count, radius m, height m, azimuth span deg, target height, lateral target sweep m)
        (16, 3.0, 1.2, 80, 0.7, 0.5),
        (16, 2.5, 1.8, 76, 0.6, 0.9),
        (16, 3.6, 1.5, 70, 0.8, 1.5),
    ]
    for k, (n, radius, height, span, tz, sweep) in enumerate(rings):
        for i in range(n):
            s = i / (n - 1) - 0.5
            az = math.radians(s * span)
            eye = pivot + np.array([radius * math.sin(az), -radius * math.cos(az), height])
            # Targets sweep the other way to the camera: each view sees the table and one wall side.
            target = pivot + np.array([-s * 2 * sweep, 0.25 * math.cos(3 * i + k), tz])
            poses.append(look_at(eye, target))
    return Rig(np.stack(poses), fov_x_deg=62.0)


def set_heldout_rig(count: int = 30) -> Rig:
    """A smooth dolly-and-arc shot through the front half of the set, inside the training volume:
    starts low at the left, rises and crosses to the right while panning from the crates past
    the table to the plant."""
    poses = []
    for i in range(count):
        t = i / (count - 1)
        s = 0.7 * t + 0.3 * (0.5 - 0.5 * math.cos(math.pi * t))  # a gentle ease in and out
        eye = np.array([-1.3 + 2.5 * s, -2.3 + 0.5 * math.sin(math.pi * s), 1.3 + 0.4 * s])
        target = np.array([-0.9 + 1.9 * s, 0.6 - 0.2 * math.sin(math.pi * s), 0.75])
        poses.append(look_at(eye, target))
    return Rig(np.stack(poses), fov_x_deg=56.0)


# ---- the character ---------------------------------------------------------------------------



# The explorer's primitives in its canonical object frame (metres, base on z = 0, up +z, front
# -y): what Mitsuba renders (character_shapes) and what the rigged glTF triangulates
# (explorer_mesh). box: (lo, hi); tube: (p0, p1, radius), open; sphere: (centre, radius);
# disk: (centre, radius), facing +z. `caps` of a tube: which ends are closed (0: p0, 1: p1).
EXPLORER = {
    "boot_l": ("box", (-0.11, -0.09, 0.0), (-0.02, 0.05, 0.05)),
    "boot_r": ("box", (0.02, -0.09, 0.0), (0.11, 0.05, 0.05)),
    "leg_l": ("tube", (-0.065, 0.0, 0.05), (-0.065, 0.0, 0.25), 0.04),
    "leg_r": ("tube", (0.065, 0.0, 0.25), (0.065, 0.0, 0.05), 0.04),
    "torso": ("tube", (0, 0, 0.23), (0, 0, 0.44), 0.11),
    "belt": ("tube", (0, 0, 0.25), (0, 0, 0.28), 0.113),
    "buckle": ("sphere", (0, -0.115, 0.265), 0.018),
    "arm_l": ("tube", (-0.13, 0.0, 0.43), (-0.2, -0.04, 0.27), 0.035),
    "arm_r": ("tube", (0.13, 0.0, 0.43), (0.21, -0.06, 0.3), 0.035),
    "hand_l": ("sphere", (-0.2, -0.04, 0.26), 0.04),
    "hand_r": ("sphere", (0.21, -0.06, 0.29), 0.04),
    "neck": ("tube", (0, 0, 0.44), (0, 0, 0.47), 0.04),
    "head": ("sphere", (0, 0, 0.52), 0.085),
    "eye_white_-1": ("sphere", (-0.03, -0.073, 0.54), 0.018),
    "eye_white_1": ("sphere", (0.03, -0.073, 0.54), 0.018),
    "eye_-1": ("sphere", (-0.031, -0.088, 0.54), 0.008),
    "eye_1": ("sphere", (0.031, -0.088, 0.54), 0.008),
    "cheek_-1": ("sphere", (-0.05, -0.065, 0.505), 0.012),
    "cheek_1": ("sphere", (0.05, -0.065, 0.505), 0.012),
    "nose": ("sphere", (0, -0.088, 0.52), 0.014),
    "mouth": ("tube", (-0.022, -0.078, 0.49), (0.022, -0.078, 0.49), 0.006),
    "hat_crown": ("tube", (0, 0, 0.57), (0, 0, 0.66), 0.07),
    "hat_brim": ("disk", (0, 0, 0.575), 0.15),
    "backpack": ("box", (-0.09, 0.1, 0.27), (0.09, 0.18, 0.45)),
}
EXPLORER_CAPS = {"torso": (0, 1), "hat_crown": (1,)}


def character_shapes(seed: int = 11) -> dict:
    """A toy explorer in the canonical object frame: boots, denim legs, plaid shirt, belt,
    arms, a head with eyes and nose, a straw hat and a leather backpack (EXPLORER)."""
    rng = np.random.default_rng(seed)
    s: dict = {}
    g = {name: spec[1:] for name, spec in EXPLORER.items()}
    boots = lambda h, w: leather(rng, h, w, (0.25, 0.14, 0.07))
    box("boot_l", *g["boot_l"], boots, 800.0, s)
    box("boot_r", *g["boot_r"], boots, 800.0, s)
    jeans = _diffuse(stamp_motifs(rng, denim(rng, 256, 256), 10, (14, 26)))
    cylinder("leg_l", *g["leg_l"], jeans, s)
    cylinder("leg_r", *g["leg_r"], jeans, s)
    shirt_tex = fabric(rng, 256, 512, 1500.0, (0.7, 0.12, 0.1), (0.15, 0.2, 0.35), check_m=0.03)
    shirt = _diffuse(stamp_motifs(rng, shirt_tex, 40, (12, 30)))
    cylinder("torso", *g["torso"], shirt, s, caps=(_diffuse(denim(rng, 64, 64)), shirt))
    cylinder("belt", *g["belt"], _diffuse(leather(rng, 32, 256)), s)
    s["buckle"] = sphere(*g["buckle"], {"type": "twosided", "bsdf": {"type": "roughconductor", "material": "Au", "alpha": 0.3}})
    cylinder("arm_l", *g["arm_l"], shirt, s)
    cylinder("arm_r", *g["arm_r"], shirt, s)
    hand = _diffuse(skin(rng, 64, 128))
    s["hand_l"] = sphere(*g["hand_l"], hand)
    s["hand_r"] = sphere(*g["hand_r"], hand)
    p0, p1, r = g["neck"]
    s["neck"] = {"type": "cylinder", "p0": list(p0), "p1": list(p1), "radius": r, "bsdf": hand}
    s["head"] = sphere(*g["head"], _diffuse(skin(rng, 256, 512)))
    black = _diffuse(np.full((4, 4, 3), 15, np.uint8))
    white = _diffuse(np.full((4, 4, 3), 235, np.uint8))
    for side in (-1, 1):
        s[f"eye_white_{side}"] = sphere(*g[f"eye_white_{side}"], white)
        s[f"eye_{side}"] = sphere(*g[f"eye_{side}"], black)
        s[f"cheek_{side}"] = sphere(*g[f"cheek_{side}"], _diffuse(np.full((4, 4, 3), [215, 120, 110], np.uint8)))
    s["nose"] = sphere(*g["nose"], _diffuse(np.full((4, 4, 3), [205, 140, 115], np.uint8)))
    p0, p1, r = g["mouth"]
    s["mouth"] = {"type": "cylinder", "p0": list(p0), "p1": list(p1), "radius": r,
                  "bsdf": _diffuse(np.full((4, 4, 3), [120, 30, 30], np.uint8))}
    plain_straw = _diffuse(straw(rng, 256, 256, band=False))
    cylinder("hat_crown", *g["hat_crown"], _diffuse(straw(rng, 128, 512)), s, caps=(None, plain_straw))
    centre, radius = g["hat_brim"]
    m = np.eye(4)
    m[:3, :3] *= radius
    m[:3, 3] = centre
    s["hat_brim"] = {"type": "disk", "to_world": _xform(m), "bsdf": plain_straw}
    box("backpack", *g["backpack"],
        lambda h, w: stamp_motifs(rng, leather(rng, h, w, (0.3, 0.35, 0.15)), max(1, h * w // 2500), (10, 24)), 800.0, s)
    return s


# ---- the explorer as a rigged glTF (no Mitsuba) ---------------------------------------------

# Joints: (name, parent, position in the explorer's frame). Their rest rotations are the
# identity in that frame, so a clip turns a knee about x (the figure's left-right axis: a
# positive angle swings a hanging limb backwards, to +y) and a head about z.
EXPLORER_JOINTS = [
    ("hips", None, (0.0, 0.0, 0.25)),
    ("spine", "hips", (0.0, 0.0, 0.32)),
    ("neck", "spine", (0.0, 0.0, 0.44)),
    ("head", "neck", (0.0, 0.0, 0.47)),
    ("upper_arm_l", "spine", (-0.13, 0.0, 0.43)),
    ("forearm_l", "upper_arm_l", (-0.165, -0.02, 0.35)),
    ("hand_l", "forearm_l", (-0.2, -0.04, 0.27)),
    ("upper_arm_r", "spine", (0.13, 0.0, 0.43)),
    ("forearm_r", "upper_arm_r", (0.17, -0.03, 0.365)),
    ("hand_r", "forearm_r", (0.21, -0.06, 0.3)),
    ("thigh_l", "hips", (-0.065, 0.0, 0.25)),
    ("shin_l", "thigh_l", (-0.065, 0.0, 0.15)),
    ("foot_l", "shin_l", (-0.065, 0.0, 0.05)),
    ("thigh_r", "hips", (0.065, 0.0, 0.25)),
    ("shin_r", "thigh_r", (0.065, 0.0, 0.15)),
    ("foot_r", "shin_r", (0.065, 0.0, 0.05)),
]
# Flat colours (sRGB) of the parts: the mean look of the textures Mitsuba renders.
EXPLORER_COLOURS = {
    "boot": (0.27, 0.15, 0.08), "leg": (0.22, 0.3, 0.5), "torso": (0.5, 0.16, 0.16), "arm": (0.5, 0.16, 0.16),
    "belt": (0.36, 0.21, 0.1), "buckle": (0.85, 0.65, 0.2), "hand": (0.86, 0.64, 0.5), "neck": (0.86, 0.64, 0.5),
    "head": (0.86, 0.64, 0.5), "eye_white": (0.92, 0.92, 0.92), "eye": (0.06, 0.06, 0.06), "cheek": (0.84, 0.47, 0.43),
    "nose": (0.8, 0.55, 0.45), "mouth": (0.47, 0.12, 0.12), "hat": (0.83, 0.7, 0.42), "backpack": (0.32, 0.36, 0.16),
}
# The explorer's frame (Z up, front -y) in glTF's scene frame (Y up, front +z): x -> x,
# y -> -z, z -> y, a turn of -90 degrees about x. The root node "explorer" carries it.
Z_UP_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _tube_mesh(p0, p1, radius, caps=(), segments=32, step=0.01):
    """An open tube (rings about every `step` metres) with fan caps at the given ends."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = p1 - p0
    length = np.linalg.norm(axis)
    a = axis / length
    helper = np.array([1.0, 0, 0]) if abs(a[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(a, helper)
    u /= np.linalg.norm(u)
    w = np.cross(a, u)
    rings = max(2, int(round(length / step)) + 1)
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    circle = np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * w  # [S,3]
    ts = np.linspace(0.0, 1.0, rings)
    v = (p0 + ts[:, None, None] * axis + radius * circle[None]).reshape(-1, 3)
    f = []
    for i in range(rings - 1):
        for k in range(segments):
            a0, a1 = i * segments + k, i * segments + (k + 1) % segments
            f += [[a0, a1, a1 + segments], [a0, a1 + segments, a0 + segments]]
    verts, faces = [v], f
    n = len(v)
    for end in caps:  # a fan: centre plus the end ring (repeated, so the cap has its own normals)
        centre = p1 if end else p0
        ring = centre + radius * circle
        verts.append(np.vstack([centre, ring]))
        for k in range(segments):
            b, c = n + 1 + k, n + 1 + (k + 1) % segments
            faces.append([n, b, c] if end else [n, c, b])
        n += segments + 1
    return np.vstack(verts), np.array(faces)


def _sphere_mesh(centre, radius, rings=12, segments=24):
    """A UV sphere: poles plus rings of vertices."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([np.sin(theta)[:, None] * np.cos(phi), np.sin(theta)[:, None] * np.sin(phi),
                     np.cos(theta)[:, None] * np.ones_like(phi)], axis=-1).reshape(-1, 3)
    v = np.vstack([[0, 0, 1], ring, [0, 0, -1]]) * radius + np.asarray(centre, float)
    f, last = [], len(v) - 1
    for k in range(segments):
        f.append([0, 1 + k, 1 + (k + 1) % segments])
        base = 1 + (rings - 2) * segments
        f.append([last, base + (k + 1) % segments, base + k])
    for i in range(rings - 2):
        for k in range(segments):
            a0, a1 = 1 + i * segments + k, 1 + i * segments + (k + 1) % segments
            f += [[a0, a1 + segments, a1], [a0, a0 + segments, a1 + segments]]
    return v, np.array(f)


def _box_mesh(lo, hi, cells=4):
    """A closed box, each face a grid of cells x cells squares (so skin weights can vary)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    verts, faces = [], []
    t = np.linspace(0, 1, cells + 1)
    for axis in range(3):
        for side in (0, 1):
            i, j = [k for k in range(3) if k != axis]
            if side == 0:
                i, j = j, i  # keep the winding outward on both sides
            uu, vv = np.meshgrid(t, t, indexing="ij")
            p = np.zeros((cells + 1, cells + 1, 3))
            p[..., axis] = hi[axis] if side else lo[axis]
            p[..., i] = lo[i] + uu * (hi[i] - lo[i])
            p[..., j] = lo[j] + vv * (hi[j] - lo[j])
            n = sum(len(x) for x in verts)
            verts.append(p.reshape(-1, 3))
            for a in range(cells):
                for b in range(cells):
                    q = n + a * (cells + 1) + b
                    faces += [[q, q + cells + 1, q + cells + 2], [q, q + cells + 2, q + 1]]
    return np.vstack(verts), np.array(faces)


def _disk_mesh(centre, radius, rings=6, segments=48):
    """A flat disk facing +z, rings of vertices out from the centre, both sides (it is thin)."""
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rs = np.linspace(0, radius, rings + 1)[1:]
    v = np.vstack([[0, 0, 0], (rs[:, None, None] * np.stack([np.cos(ang), np.sin(ang), 0 * ang], -1)).reshape(-1, 3)])
    f = []
    for k in range(segments):
        f.append([0, 1 + k, 1 + (k + 1) % segments])
    for i in range(rings - 1):
        for k in range(segments):
            a0, a1 = 1 + i * segments + k, 1 + i * segments + (k + 1) % segments
            f += [[a0, a0 + segments, a1 + segments], [a0, a1 + segments, a1]]
    f = np.array(f)
    return v + np.asarray(centre, float), np.vstack([f, f[:, ::-1]])


def explorer_mesh() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The explorer's primitives (EXPLORER) as triangle meshes in its frame: (name, vertices
    [V,3], faces [F,3]) per part."""
    parts = []
    for name, (kind, *geom) in EXPLORER.items():
        if kind == "box":
            v, f = _box_mesh(*geom)
        elif kind == "tube":
            v, f = _tube_mesh(*geom, caps=EXPLORER_CAPS.get(name, ()))
        elif kind == "sphere":
            v, f = _sphere_mesh(*geom)
        else:
            v, f = _disk_mesh(*geom)
        parts.append((name, v, f))
    return parts


def _smooth(x, lo, hi):
    """0 below lo, 1 above hi, smoothstep between."""
    t = np.clip((np.asarray(x, float) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def explorer_weights(name: str, v: np.ndarray) -> np.ndarray:
    """Skin weights [V,J] (EXPLORER_JOINTS order) of a part's vertices: rigid per part, blended
    across the joints it bends at (knees, elbows, hips, waist, shoulders, neck)."""
    J = {n: i for i, (n, _, _) in enumerate(EXPLORER_JOINTS)}
    pos = {n: np.asarray(p) for n, _, p in EXPLORER_JOINTS}
    w = np.zeros((len(v), len(J)))
    z = v[:, 2]

    def put(joint, share):
        w[:, J[joint]] += share

    side = name[-1] if name[-2:] in ("_l", "_r") else None
    if name.startswith("boot"):
        put(f"foot_{side}", 1.0)
    elif name.startswith("leg"):
        knee, ankle = _smooth(z, 0.13, 0.17), _smooth(z, 0.05, 0.08)  # thigh above the knee, shin to the ankle
        hip = _smooth(z, 0.225, 0.25) * 0.5  # the top of the trouser leg shares the hips
        put(f"foot_{side}", (1 - ankle) * 0.5)
        put(f"shin_{side}", (1 - knee) * (1 - (1 - ankle) * 0.5))
        put(f"thigh_{side}", knee * (1 - hip))
        put("hips", knee * hip)
    elif name in ("torso", "belt", "buckle", "backpack"):
        chest = _smooth(z, 0.28, 0.34)
        if name == "backpack":
            chest = np.ones(len(v))
        put("spine", chest)
        put("hips", 1 - chest)
    elif name.startswith("arm"):
        p0, p1 = pos[f"upper_arm_{side}"], pos[f"hand_{side}"]
        s = (v - p0) @ (p1 - p0) / np.sum((p1 - p0) ** 2)  # 0 at the shoulder, 1 at the wrist
        elbow, shoulder, wrist = _smooth(s, 0.4, 0.6), (1 - _smooth(s, 0.0, 0.2)) * 0.4, _smooth(s, 0.9, 1.0) * 0.5
        put("spine", shoulder)
        put(f"upper_arm_{side}", (1 - elbow) * (1 - shoulder))
        put(f"forearm_{side}", elbow * (1 - wrist))
        put(f"hand_{side}", elbow * wrist)
    elif name.startswith("hand"):
        put(f"hand_{side}", 1.0)
    elif name == "neck":
        top = _smooth(z, 0.45, 0.47)
        put("neck", 1 - top * 0.5)
        put("head", top * 0.5)
    else:  # the head, its face and the hat
        put("head", 1.0)
    return w / w.sum(axis=1, keepdims=True)


def _axis_angle_xyzw(axis, degrees):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    h = math.radians(degrees) / 2
    return np.concatenate([a * math.sin(h), [math.cos(h)]])


def _multiply_xyzw(q1, q2):
    """Quaternion product q1 q2 in (x, y, z, w)."""
    x1, y1, z1, w1 = q1
    x2, y2, z2, w2 = q2
    return np.array([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2, w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2, w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2])


def explorer_clips() -> dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """The authored clips: {clip: {joint: {path: (times [K], values [K,C])}}}, rotations as
    (x, y, z, w) in the joint's rest frame (the explorer's axes), translations in the parent's.

    idle (4 s): breathing (the chest rises and falls twice), a slow sway of the hips, the head
    looking a little left and right, the arms hanging loose. walk (1 s): one stride cycle in
    place, left foot forward at 0 s and 1 s, right at 0.5 s; thighs swing 24 degrees each way,
    knees bend in the swing, arms swing against the legs, the hips bob twice per cycle.
    Both loop: the last key equals the first."""
    X, Y, Z = (1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0)
    hips = np.asarray(EXPLORER_JOINTS[0][2])

    def rot(times, fn):  # rotation keys from fn(t) -> list of (axis, degrees), applied in order
        keys = []
        for t in times:
            q = np.array([0.0, 0, 0, 1])
            for axis, deg in fn(t):
                q = _multiply_xyzw(q, _axis_angle_xyzw(axis, deg))
            keys.append(q)
        return times, np.array(keys)

    idle_t = np.linspace(0.0, 4.0, 33)
    tau = 2 * np.pi
    idle = {
        "hips": {"translation": (idle_t, np.array([hips + [0.003 * math.sin(tau * t / 4), 0, 0] for t in idle_t])),
                 "rotation": rot(idle_t, lambda t: [(Y, 1.5 * math.sin(tau * t / 4))])},
        "spine": {"rotation": rot(idle_t, lambda t: [(X, -1.5 * math.sin(tau * t / 2)), (Y, -1.5 * math.sin(tau * t / 4))])},
        "neck": {"rotation": rot(idle_t, lambda t: [(X, 1.0 * math.sin(tau * t / 2))])},
        "head": {"rotation": rot(idle_t, lambda t: [(Z, 8.0 * math.sin(tau * t / 4)), (X, -2.0 * math.sin(tau * t / 2))])},
        "upper_arm_l": {"rotation": rot(idle_t, lambda t: [(Y, 2.0 * math.sin(tau * t / 2)), (X, 2.0 * math.sin(tau * t / 4))])},
        "upper_arm_r": {"rotation": rot(idle_t, lambda t: [(Y, -2.0 * math.sin(tau * t / 2)), (X, -2.0 * math.sin(tau * t / 4))])},
        "forearm_l": {"rotation": rot(idle_t, lambda t: [(X, -4.0 - 2.0 * math.sin(tau * t / 2))])},
        "forearm_r": {"rotation": rot(idle_t, lambda t: [(X, -4.0 - 2.0 * math.sin(tau * t / 2))])},
    }
    walk_t = np.linspace(0.0, 1.0, 17)

    def leg(phase):  # thigh swing (negative: forward), knee bend in the swing, foot pitch
        def thigh(t):
            return [(X, -24.0 * math.cos(tau * (t - phase)))]

        def shin(t):  # the knee bends while the leg swings forward (the second half of its cycle)
            u = (t - phase) % 1.0
            return [(X, 5.0 + 40.0 * max(0.0, math.sin(tau * (u - 0.5))) ** 1.5)]

        def foot(t):
            return [(X, 10.0 * math.sin(tau * (t - phase)))]
        return thigh, shin, foot

    walk = {"hips": {"translation": (walk_t, np.array([hips + [0, 0, 0.006 * math.cos(2 * tau * t)] for t in walk_t])),
                     "rotation": rot(walk_t, lambda t: [(Z, 6.0 * math.cos(tau * t)), (Y, 2.0 * math.cos(2 * tau * t))])},
            "spine": {"rotation": rot(walk_t, lambda t: [(Z, -8.0 * math.cos(tau * t)), (X, -3.0)])},
            "head": {"rotation": rot(walk_t, lambda t: [(Z, 3.0 * math.cos(tau * t))])}}
    for s, phase, arm_sign in (("l", 0.0, 1.0), ("r", 0.5, -1.0)):
        thigh, shin, foot = leg(phase)
        walk[f"thigh_{s}"] = {"rotation": rot(walk_t, thigh)}
        walk[f"shin_{s}"] = {"rotation": rot(walk_t, shin)}
        walk[f"foot_{s}"] = {"rotation": rot(walk_t, foot)}
        # Arms swing against their own side's leg: back when the leg is forward.
        walk[f"upper_arm_{s}"] = {"rotation": rot(walk_t, lambda t, p=phase: [(X, 22.0 * math.cos(tau * (t - p)))])}
        walk[f"forearm_{s}"] = {"rotation": rot(walk_t, lambda t, p=phase: [(X, -12.0 - 8.0 * math.cos(tau * (t - p)))])}
    return {"idle": idle, "walk": walk}


def write_explorer_gltf(path: Path) -> dict:
    """Write the explorer as a rigged binary glTF: one skinned mesh of its primitives
    (vertex colours), the skeleton EXPLORER_JOINTS under a root node "explorer" that turns
    the Z-up figure into glTF's Y-up scene frame, and the clips idle and walk. Deterministic.
    Returns a summary (vertices, triangles, joints, clips)."""
    import pygltflib

    parts = explorer_mesh()
    verts = np.vstack([v for _, v, _ in parts])
    offsets = np.cumsum([0] + [len(v) for _, v, _ in parts])
    faces = np.vstack([f + o for (_, _, f), o in zip(parts, offsets)])
    weights = np.vstack([explorer_weights(name, v) for name, v, _ in parts])
    srgb = np.vstack([np.tile(EXPLORER_COLOURS[next(k for k in EXPLORER_COLOURS if name.startswith(k))], (len(v), 1))
                      for name, v, _ in parts])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    top = np.argsort(-weights, axis=1, kind="stable")[:, :4]
    joints4 = top.astype(np.uint8)
    w4 = np.take_along_axis(weights, top, axis=1)
    w4 = (w4 / w4.sum(axis=1, keepdims=True)).astype(np.float32)
    positions = (verts @ Z_UP_TO_GLTF.T).astype(np.float32)

    blob = bytearray()
    g = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0", generator="splatfilm scenes/make_captures.py"))

    def accessor(array, ctype, kind, target=None):
        data = np.ascontiguousarray(array).tobytes()
        while len(blob) % 4:
            blob.append(0)
        g.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(data), target=target))
        blob.extend(data)
        a = np.asarray(array)
        kw = {}
        if ctype == pygltflib.FLOAT and kind != "MAT4":
            flat = a.reshape(len(a), -1)
            kw = {"min": flat.min(0).tolist(), "max": flat.max(0).tolist()}
        g.accessors.append(pygltflib.Accessor(bufferView=len(g.bufferViews) - 1, componentType=ctype, count=len(a),
                                              type=kind, **kw))
        return len(g.accessors) - 1

    # Nodes: 0 the root, 1..J the joints, J+1 the mesh.
    g.nodes.append(pygltflib.Node(name="explorer", rotation=_axis_angle_xyzw(X_AXIS, -90.0).tolist(), children=[]))
    names = [n for n, _, _ in EXPLORER_JOINTS]
    world = {n: np.asarray(p, float) for n, _, p in EXPLORER_JOINTS}
    for n, parent, p in EXPLORER_JOINTS:
        local = world[n] - (world[parent] if parent else 0.0)
        g.nodes.append(pygltflib.Node(name=n, translation=local.tolist(), children=[]))
        (g.nodes[0] if parent is None else g.nodes[1 + names.index(parent)]).children.append(len(g.nodes) - 1)
    # Inverse binds: the joints' rest globals are translations in the explorer's frame, turned
    # into the scene frame by the root.
    ibm = []
    for n in names:
        G = np.eye(4)
        G[:3, :3], G[:3, 3] = Z_UP_TO_GLTF, Z_UP_TO_GLTF @ world[n]
        ibm.append(np.linalg.inv(G).T.reshape(-1))  # column-major
    attrs = pygltflib.Attributes(POSITION=accessor(positions, pygltflib.FLOAT, "VEC3", pygltflib.ARRAY_BUFFER),
                                 COLOR_0=accessor(linear.astype(np.float32), pygltflib.FLOAT, "VEC3",
                                                  pygltflib.ARRAY_BUFFER),
                                 JOINTS_0=accessor(joints4, pygltflib.UNSIGNED_BYTE, "VEC4", pygltflib.ARRAY_BUFFER),
                                 WEIGHTS_0=accessor(w4, pygltflib.FLOAT, "VEC4", pygltflib.ARRAY_BUFFER))
    indices = accessor(faces.reshape(-1).astype(np.uint32), pygltflib.UNSIGNED_INT, "SCALAR",
                       pygltflib.ELEMENT_ARRAY_BUFFER)
    g.meshes.append(pygltflib.Mesh(name="explorer", primitives=[pygltflib.Primitive(attributes=attrs,
                                                                                     indices=indices)]))
    g.skins.append(pygltflib.Skin(name="explorer", skeleton=0, joints=list(range(1, 1 + len(names))),
                                  inverseBindMatrices=accessor(np.array(ibm, np.float32), pygltflib.FLOAT, "MAT4")))
    g.nodes.append(pygltflib.Node(name="explorer_mesh", mesh=0, skin=0))
    g.scenes.append(pygltflib.Scene(name="explorer", nodes=[0, len(g.nodes) - 1]))
    g.scene = 0

    clips = explorer_clips()
    for clip, channels in clips.items():
        samplers, targets = [], []
        for joint, paths in channels.items():
            for path_name, (times, values) in paths.items():
                samplers.append(pygltflib.AnimationSampler(
                    input=accessor(np.asarray(times, np.float32), pygltflib.FLOAT, "SCALAR"),
                    output=accessor(np.asarray(values, np.float32), pygltflib.FLOAT,
                                    "VEC4" if path_name == "rotation" else "VEC3"), interpolation="LINEAR"))
                targets.append(pygltflib.AnimationChannel(sampler=len(samplers) - 1, target=pygltflib.AnimationChannelTarget(
                    node=1 + names.index(joint), path=path_name)))
        g.animations.append(pygltflib.Animation(name=clip, samplers=samplers, channels=targets))

    g.buffers = [pygltflib.Buffer(byteLength=len(blob))]
    g.set_binary_blob(bytes(blob))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    g.save_binary(str(tmp))
    tmp.replace(path)
    return {"vertices": len(verts), "triangles": len(faces), "joints": names,
            "clips": {c: float(max(t[-1] for p in ch.values() for t, _ in p.values())) for c, ch in clips.items()}}


X_AXIS = (1.0, 0.0, 0.0)


def character_lights() -> dict:
    """A soft grey sky (hidden from the camera: transparent background) and a key light at the front left."""
    key = np.eye(4)
    key[:3, 3] = [-0.9, -1.2, 1.6]
    # Mitsuba's rectangle emits along +z of its frame (look_at's forward): aim it at the figure.
    rot = look_at(key[:3, 3], [0.0, 0.0, 0.35])[:3, :3]
    key[:3, :3] = rot @ np.diag([0.4, 0.4, 1.0])  # a 0.8 m square
    return {
        "sky": {"type": "constant", "radiance": {"type": "rgb", "value": [0.75, 0.75, 0.78]}},
        "key": {"type": "rectangle", "to_world": _xform(key),
                "emitter": {"type": "area", "radiance": {"type": "rgb", "value": [4.0, 3.8, 3.4]}}},
    }


def character_rig() -> Rig:
    """30 views on three rings around the figure (8, 30 and 55 degrees up), looking at its middle."""
    poses = []
    centre = np.array([0.0, 0.0, 0.33])
    for k, (n, elev, dist) in enumerate([(12, 8.0, 1.6), (10, 30.0, 1.6), (8, 55.0, 1.5)]):
        for i in range(n):
            az = 2 * math.pi * (i + 0.5 * k) / n
            e = math.radians(elev)
            # Azimuth 0 looks at the figure's front (cameras on -y).
            eye = centre + dist * np.array([math.sin(az) * math.cos(e), -math.cos(az) * math.cos(e), math.sin(e)])
            poses.append(look_at(eye, centre))
    return Rig(np.stack(poses), fov_x_deg=36.0)


# ---- rendering and writing ------------------------------------------------------------------


def _sensor(c2w_cv: np.ndarray, rig: Rig, spp: int, rgba: bool):
    import mitsuba as mi

    return mi.load_dict({
        "type": "perspective",
        "fov": rig.fov_x_deg,
        "fov_axis": "x",
        "near_clip": 0.01,
        "to_world": _xform(c2w_cv @ _CV_TO_MI),
        "sampler": {"type": "independent", "sample_count": spp},
        "film": {"type": "hdrfilm", "width": rig.width, "height": rig.height,
                 "pixel_format": "rgba" if rgba else "rgb",
                 "rfilter": {"type": "gaussian"}},
    })


def _to_srgb_u8(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return (srgb * 255 + 0.5).astype(np.uint8)


def render_rig(scene_dict: dict, rig: Rig, spp: int, exposure: float, rgba: bool, seed: int, label: str):
    """Yield (index, uint8 image [H,W,3] or straight-alpha RGBA [H,W,4]) for every camera."""
    import mitsuba as mi

    scene = mi.load_dict(scene_dict)
    t0 = time.time()
    for i, c2w in enumerate(rig.c2w):
        img = np.array(mi.render(scene, sensor=_sensor(c2w, rig, spp, rgba), spp=spp, seed=seed + i), dtype=np.float64)
        rgb = img[..., :3] * exposure
        if rgba:
            # Mitsuba's film holds colour premultiplied by alpha; PNG wants straight alpha.
            a = np.clip(img[..., 3:4], 0, 1)
            rgb = np.where(a > 1e-4, rgb / np.maximum(a, 1e-4), 0.0)
            out = np.concatenate([_to_srgb_u8(rgb), (a * 255 + 0.5).astype(np.uint8)], axis=-1)
        else:
            out = _to_srgb_u8(rgb)
        done = i + 1
        eta = (time.time() - t0) / done * (len(rig.c2w) - done)
        print(f"  {label} {done}/{len(rig.c2w)}  ({time.time() - t0:.0f} s, ~{eta:.0f} s left)", flush=True)
        yield i, out


def write_transforms(path: Path, rig: Rig, names: list[str], extra: dict) -> None:
    """nerfstudio transforms.json: shared PINHOLE intrinsics, OpenGL camera-to-world per frame."""
    frames = [{"file_path": n, "transform_matrix": np.round(c2w @ _CV_TO_GL, 10).tolist()} for n, c2w in zip(names, rig.c2w)]
    meta = {
        "camera_model": "PINHOLE",
        "fl_x": rig.focal, "fl_y": rig.focal, "cx": rig.width / 2, "cy": rig.height / 2,
        "w": rig.width, "h": rig.height,
        **extra,
        "frames": frames,
    }
    path.write_text(json.dumps(meta, indent=1) + "\n")


def render_capture(out_dir: Path, scene_dict: dict, rig: Rig, spp: int, exposure: float, rgba: bool, seed: int,
                   extra: dict, check_point: np.ndarray) -> None:
    """Write out_dir/transforms.json, check it against Mitsuba's cameras, render out_dir/images/."""
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = [f"images/frame_{i:05d}.png" for i in range(len(rig.c2w))]
    for stale in images.glob("frame_*.png"):
        stale.unlink()
    write_transforms(out_dir / "transforms.json", rig, names, extra)
    check_camera_convention(out_dir / "transforms.json", check_point)
    for i, img in render_rig(scene_dict, rig, spp, exposure, rgba, seed, out_dir.name):
        iio.imwrite(out_dir / names[i], img, compress_level=9)


def check_camera_convention(transforms: Path, points: np.ndarray, tol_px: float = 0.3) -> float:
    """Check that splatfilm reads back the cameras Mitsuba renders with; return the worst error in pixels.

    For the first, middle and last camera of `transforms` (read by splatfilm's reader, as
    written) this renders a tiny emissive sphere alone with Mitsuba at the first of the 3D
    `points` [P,3] in view, and compares its image centroid with the projection by splatfilm's
    `Cameras`. Raises if they differ by more than tol_px (an axis flip or a half-pixel shift
    would show here).
    """
    import mitsuba as mi

    from splatfilm.io.camera_files import read_transforms_json

    cams = read_transforms_json(transforms)
    worst = 0.0
    for i in sorted({0, len(cams) // 2, len(cams) - 1}):
        K, w, h = cams.Ks[i], int(cams.widths[i]), int(cams.heights[i])
        for point in np.atleast_2d(points):
            p_cam = cams.viewmats[i] @ np.append(point, 1.0)
            expected = (K @ p_cam[:3])[:2] / p_cam[2]
            if p_cam[2] > 0 and 2 < expected[0] < w - 2 and 2 < expected[1] < h - 2:
                break
        else:
            raise RuntimeError(f"camera check: no check point is in view of camera {i} of {transforms}")
        scene = mi.load_dict({"type": "scene", "integrator": {"type": "direct"},
                              "marker": {"type": "sphere", "center": point.tolist(), "radius": 0.003,
                                         "emitter": {"type": "area", "radiance": {"type": "rgb", "value": [1.0] * 3}}}})
        rig = Rig(cams.to_c2w_opencv()[i][None], math.degrees(2 * math.atan(w / 2 / K[0, 0])), w, h)
        img = np.array(mi.render(scene, sensor=_sensor(rig.c2w[0], rig, 64, False), spp=64), dtype=np.float64)[..., 0]
        ys, xs = np.mgrid[0:h, 0:w]
        # Pixel (i, j) covers [i, i+1) x [j, j+1): its centre is (i + 0.5, j + 0.5) (docs/CONVENTIONS.md).
        got = np.array([(img * (xs + 0.5)).sum(), (img * (ys + 0.5)).sum()]) / max(img.sum(), 1e-12)
        err = float(np.linalg.norm(got - expected))
        worst = max(worst, err)
        print(f"  camera check {i}: marker at {np.round(point, 3).tolist()} renders at {got.round(2).tolist()}, "
              f"splatfilm projects {expected.round(2).tolist()} ({err:.3f} px)", flush=True)
    if worst > tol_px:
        raise RuntimeError(f"camera conventions disagree by {worst:.2f} px: fix _CV_TO_MI / write_transforms")
    return worst


def write_sparse_points(set_dir: Path) -> None:
    """Give the set capture the sparse point cloud a nerfstudio dataset carries (`ply_file_path`):
    structure-from-motion on the images alone (splatfilm.fit.sfm), its model aligned to the exact
    cameras by a similarity on the camera centres, its 3D points written as sparse_pc.ply."""
    import numpy as np
    import pycolmap

    from splatfilm.io.camera_files import read_colmap, read_transforms_json
    from splatfilm.fit.sfm import run_sfm
    from splatfilm.scene.cameras import align_cameras

    model = run_sfm(set_dir / "images", set_dir.parent / ".sfm-set")
    est = read_colmap(model)
    ref = read_transforms_json(set_dir / "transforms.json")
    a = align_cameras(est, ref)
    rec = pycolmap.Reconstruction(str(model))
    xyz = np.array([p.xyz for p in rec.points3D.values()])
    rgb = np.array([p.color for p in rec.points3D.values()], dtype=np.uint8)
    xyz = a.scale * xyz @ a.R.T + a.t
    rows = np.zeros(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    rows["x"], rows["y"], rows["z"] = xyz.T
    rows["red"], rows["green"], rows["blue"] = rgb.T
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(rows)}\n"
              + "".join(f"property {t} {n}\n" for n, t in (("x", "float"), ("y", "float"), ("z", "float"),
                                                          ("red", "uchar"), ("green", "uchar"), ("blue", "uchar")))
              + "end_header\n")
    (set_dir / "sparse_pc.ply").write_bytes(header.encode() + rows.tobytes())
    meta = json.loads((set_dir / "transforms.json").read_text())
    meta["ply_file_path"] = "sparse_pc.ply"
    (set_dir / "transforms.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(rows)} SfM points to {set_dir / 'sparse_pc.ply'} (camera centres within "
          f"{a.centre_errors.max() * 1000:.1f} mm after alignment)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["set", "heldout", "character", "rig"], action="append",
                    help="make only these (repeatable): the captures set, heldout, character, or rig (the explorer "
                         "as a rigged glTF, character/explorer_rigged.glb; needs no Mitsuba); default all")
    ap.add_argument("--spp", type=int, default=48, help="samples a pixel (default 48)")
    ap.add_argument("--out", type=Path, default=HERE, help="folder to write set/ and character/ into")
    ap.add_argument("--max-views", type=int, default=None, help="render only the first N views (previews)")
    args = ap.parse_args(argv)

    todo = args.only or ["set", "heldout", "character", "rig"]
    t_all = time.time()
    if "rig" in todo:
        out = args.out / "character" / "explorer_rigged.glb"
        info = write_explorer_gltf(out)
        print(f"wrote {out}: {info['vertices']} vertices, {info['triangles']} triangles, {len(info['joints'])} joints, "
              f"clips {', '.join(f'{k} ({v:g} s)' for k, v in info['clips'].items())}")
    if not set(todo) - {"rig"}:
        return

    import mitsuba as mi

    mi.set_variant("scalar_rgb")  # the LLVM variants crash on these CPUs

    def trim(rig: Rig) -> Rig:
        return Rig(rig.c2w[: args.max_views], rig.fov_x_deg) if args.max_views else rig

    if "set" in todo or "heldout" in todo:
        print("building the film set textures ...", flush=True)
        scene = {"type": "scene", "integrator": {"type": "path", "max_depth": 4}, **set_lights(), **set_shapes()}
        info = {"splatfilm_capture": "film set, Z up, metres (scenes/make_captures.py)"}
        if "set" in todo:
            out = args.out / "set"
            render_capture(out, scene, trim(set_training_rig()), args.spp, SET_EXPOSURE, False, 1000, info, TABLE_CORNERS)
        if "heldout" in todo:
            out = args.out / "set" / "heldout"
            render_capture(out, scene, trim(set_heldout_rig()), args.spp, SET_EXPOSURE, False, 2000,
                           {**info, "splatfilm_heldout": "camera path never used for fitting"}, TABLE_CORNERS)
        if "set" in todo:
            write_sparse_points(args.out / "set")
    if "character" in todo:
        print("building the character ...", flush=True)
        scene = {"type": "scene", "integrator": {"type": "path", "max_depth": 4, "hide_emitters": True},
                 **character_lights(), **character_shapes()}
        out = args.out / "character"
        render_capture(out, scene, trim(character_rig()), args.spp, CHARACTER_EXPOSURE, True, 3000,
                       {"splatfilm_capture": "object capture, canonical frame: base z = 0, up +z, front -y"},
                       np.array([[0.0, -0.088, 0.52], [0.0, 0.0, 0.66]]))  # nose tip, hat top
    print(f"done in {time.time() - t_all:.0f} s")


if __name__ == "__main__":
    main()
