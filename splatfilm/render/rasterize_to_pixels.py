"""Rasterize to pixels, our CPU stage: front-to-back alpha compositing of tile lists, with a hand-written backward.

Semantics are gsplat 1.5.3's `rasterize_to_pixels` (see docs/CONVENTIONS.md): tiles (lists from
`tile_intersection`) composite their list in camera-depth order, alpha = min(0.999, o * exp(-sigma)) with contributions
skipped when sigma < 0 or alpha < 1/255, and a pixel stops before the Gaussian that would
take its transmittance to 1e-4 or below.

Why the loops look the way they do: numba kernels run one tile per task (parallel over
tiles). Inside a tile the loop runs Gaussian by Gaussian and only over the pixels of that
Gaussian's bounding box, since outside it alpha is provably below 1/255 (the box is
3.33 sigma, or the opacity-aware extent, of the marginal); that keeps the per-pixel
depth order exact while touching a fraction of the tile. The backward writes one gradient
row per (tile, Gaussian) intersection and reduces the rows serially in a fixed order, so
gradients are bit-for-bit deterministic whatever the thread count or scheduling.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import njit, prange, types
from numba.extending import overload

from splatfilm.render.tile_intersection import TILE_SIZE, isect_tiles, tile_grid

_ALPHA_MIN = 1.0 / 255.0
_ALPHA_MAX = 0.999
_T_MIN = 1e-4


def exp_neg(s):
    """exp(-s) in the argument's precision: math.exp for float64; for float32 a polynomial
    that LLVM can vectorise (no SVML here, so math.exp would stay a scalar call)."""
    return math.exp(-s)


@overload(exp_neg)
def _exp_neg_overload(s):
    if s != types.float32:
        return lambda s: math.exp(-s)

    def impl(s):
        # Cody-Waite: -s = n ln2 + r with |r| <= ln2 / 2, exp(r) by Cephes' expf polynomial
        # (relative error about 1e-7, as expf). s is clamped to [0, 20]: beyond, alpha is below
        # 1/255 for any opacity under 1e6, and 2^n stays a shift of an int32.
        s = min(max(s, np.float32(0.0)), np.float32(20.0))
        n = np.floor(s * np.float32(-1.4426950408889634) + np.float32(0.5))  # float32, not math.floor's int
        r = (-s - n * np.float32(0.693359375)) - n * np.float32(-2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        p = p * (r * r) + r + np.float32(1.0)
        return p * (np.float32(np.int32(1) << (np.int32(n) + np.int32(30))) * np.float32(2.0**-30))

    return impl


@njit(cache=True)
def _pixel_range(m, r, lo, hi):
    # Pixels whose centre lies within [m - r, m + r], widened by one pixel against rounding,
    # clipped to the tile span [lo, hi).
    p0 = int(math.floor(m - r - 0.5)) - 1
    p1 = int(math.ceil(m + r - 0.5)) + 2
    return max(p0, lo), min(p1, hi)


@njit(cache=True)
def _row_span(mx, dy, ca, cb, cc, sigma_max, px0, px1):
    """Pixels of one row whose centre can reach alpha >= 1/255: where the conic quadratic
    0.5 a dx^2 + b dx dy + 0.5 c dy^2 <= sigma_max, widened by a pixel against rounding and
    clipped to [px0, px1). Thin, tilted splats cover a small part of their bounding box."""
    if ca <= 0.0:
        return px0, px1  # not positive definite: keep the whole box, the alpha test decides
    disc = (cb * dy) ** 2 - ca * (cc * dy * dy - 2.0 * sigma_max)
    if disc < 0.0:
        return px0, px0
    root = math.sqrt(disc)
    # dx = mx - (px + 0.5) lies in [(-b dy - root) / a, (-b dy + root) / a]
    lo = mx - (-cb * dy + root) / ca - 0.5
    hi = mx - (-cb * dy - root) / ca - 0.5
    return max(px0, int(math.floor(lo)) - 1), min(px1, int(math.ceil(hi)) + 2)


@njit(cache=True)
def _tile_rect(t, tiles_x, tile_size, width, height):
    """Pixel rectangle [x0, x1) x [y0, y1) of tile t (row-major), clipped to the image."""
    x0 = (t % tiles_x) * tile_size
    y0 = (t // tiles_x) * tile_size
    return x0, y0, min(x0 + tile_size, width), min(y0 + tile_size, height)


@njit(cache=True)
def _splat(means2d, conics, opacities, radii, g, tx0, tx1, ty0, ty1):
    """Gaussian g as the kernels use it: mean, conic, opacity, the pixel box it can touch in
    this tile, and the largest sigma at which it still reaches alpha 1/255 (< 0: never)."""
    mx = float(means2d[g, 0])
    my = float(means2d[g, 1])
    op = float(opacities[g])
    bx0, bx1 = _pixel_range(mx, float(radii[g, 0]), tx0, tx1)
    py0, py1 = _pixel_range(my, float(radii[g, 1]), ty0, ty1)
    sigma_max = math.log(op / _ALPHA_MIN) if op >= _ALPHA_MIN else -1.0
    return mx, my, float(conics[g, 0]), float(conics[g, 1]), float(conics[g, 2]), op, bx0, bx1, py0, py1, sigma_max


@njit(parallel=True, cache=True)
def _forward_kernel(means2d, conics, opacities, feats, radii, tile_offsets, flat_ids, width, height, tile_size, tiles_x,
                    out_feats, out_T, out_last):
    n_tiles = tile_offsets.shape[0] - 1
    K = feats.shape[1]
    for t in prange(n_tiles):
        tx0, ty0, tx1, ty1 = _tile_rect(t, tiles_x, tile_size, width, height)
        tw = tx1 - tx0
        n_pix = tw * (ty1 - ty0)
        T = np.ones(n_pix)
        acc = np.zeros((n_pix, K))
        last = np.full(n_pix, -1, dtype=np.int64)
        done = np.zeros(n_pix, dtype=np.bool_)
        n_done = 0
        for k in range(tile_offsets[t], tile_offsets[t + 1]):
            mx, my, ca, cb, cc, op, bx0, bx1, py0, py1, sigma_max = _splat(
                means2d, conics, opacities, radii, flat_ids[k], tx0, tx1, ty0, ty1)
            if sigma_max < 0.0:
                continue
            g = flat_ids[k]
            for py in range(py0, py1):
                dy = my - (py + 0.5)
                row = (py - ty0) * tw - tx0
                px0, px1 = _row_span(mx, dy, ca, cb, cc, sigma_max, bx0, bx1)
                for px in range(px0, px1):
                    li = row + px
                    if done[li]:
                        continue
                    dx = mx - (px + 0.5)
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0.0:
                        continue
                    alpha = min(_ALPHA_MAX, op * math.exp(-sigma))
                    if alpha < _ALPHA_MIN:
                        continue
                    next_T = T[li] * (1.0 - alpha)
                    if next_T <= _T_MIN:
                        done[li] = True
                        n_done += 1
                        continue
                    w = alpha * T[li]
                    for ch in range(K):
                        acc[li, ch] += w * feats[g, ch]
                    T[li] = next_T
                    last[li] = k
            if n_done == n_pix:
                break
        for py in range(ty0, ty1):
            for px in range(tx0, tx1):
                li = (py - ty0) * tw + (px - tx0)
                for ch in range(K):
                    out_feats[py, px, ch] = acc[li, ch]
                out_T[py, px] = T[li]
                out_last[py, px] = last[li]


@njit(parallel=True, cache=True)
def _backward_kernel(means2d, conics, opacities, feats, radii, tile_offsets, flat_ids, width, height, tile_size, tiles_x,
                     T_final, last_ids, g_feats, g_alpha, g_isect):
    """g_isect [M, 6 + K]: per intersection d/d(mean x, mean y, conic a, b, c, opacity, feats)."""
    n_tiles = tile_offsets.shape[0] - 1
    K = feats.shape[1]
    for t in prange(n_tiles):
        start = tile_offsets[t]
        end = tile_offsets[t + 1]
        if end == start:
            continue
        tx0, ty0, tx1, ty1 = _tile_rect(t, tiles_x, tile_size, width, height)
        tw = tx1 - tx0
        n_pix = tw * (ty1 - ty0)
        T = np.empty(n_pix)
        S = np.zeros((n_pix, K))  # colour composited behind the current Gaussian
        gF = np.empty((n_pix, K))
        gT = np.empty(n_pix)  # dL/dalpha_out * T_final, reused at every step
        last = np.empty(n_pix, dtype=np.int64)
        d_f = np.empty(K)
        max_last = start - 1
        for py in range(ty0, ty1):
            for px in range(tx0, tx1):
                li = (py - ty0) * tw + (px - tx0)
                T[li] = T_final[py, px]
                last[li] = last_ids[py, px]
                max_last = max(max_last, last[li])
                gT[li] = g_alpha[py, px] * T_final[py, px]
                for ch in range(K):
                    gF[li, ch] = g_feats[py, px, ch]
        for k in range(max_last, start - 1, -1):
            g = flat_ids[k]
            mx, my, ca, cb, cc, op, bx0, bx1, py0, py1, sigma_max = _splat(
                means2d, conics, opacities, radii, g, tx0, tx1, ty0, ty1)
            d_mx = 0.0
            d_my = 0.0
            d_a = 0.0
            d_b = 0.0
            d_c = 0.0
            d_op = 0.0
            d_f[:] = 0.0
            if sigma_max < 0.0:
                py1 = py0  # can never reach alpha 1/255: no pixel to visit
            for py in range(py0, py1):
                dy = my - (py + 0.5)
                row = (py - ty0) * tw - tx0
                px0, px1 = _row_span(mx, dy, ca, cb, cc, sigma_max, bx0, bx1)
                for px in range(px0, px1):
                    li = row + px
                    if k > last[li]:
                        continue
                    dx = mx - (px + 0.5)
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0.0:
                        continue
                    vis = math.exp(-sigma)
                    alpha = min(_ALPHA_MAX, op * vis)
                    if alpha < _ALPHA_MIN:
                        continue
                    one_minus = 1.0 - alpha
                    T[li] /= one_minus  # transmittance in front of this Gaussian
                    w = alpha * T[li]
                    d_alpha = 0.0
                    for ch in range(K):
                        f = feats[g, ch]
                        d_alpha += gF[li, ch] * (f * T[li] - S[li, ch] / one_minus)
                        d_f[ch] += w * gF[li, ch]
                        S[li, ch] += f * w
                    # alpha_out = 1 - T_final; dT_final/dalpha = -T_final / (1 - alpha)
                    d_alpha += gT[li] / one_minus
                    if op * vis <= _ALPHA_MAX:
                        d_op += d_alpha * vis
                        d_sigma = -d_alpha * op * vis
                        d_a += 0.5 * d_sigma * dx * dx
                        d_b += d_sigma * dx * dy
                        d_c += 0.5 * d_sigma * dy * dy
                        d_mx += d_sigma * (ca * dx + cb * dy)
                        d_my += d_sigma * (cc * dy + cb * dx)
            g_isect[k, 0] = d_mx
            g_isect[k, 1] = d_my
            g_isect[k, 2] = d_a
            g_isect[k, 3] = d_b
            g_isect[k, 4] = d_c
            g_isect[k, 5] = d_op
            for ch in range(K):
                g_isect[k, 6 + ch] = d_f[ch]
        for k in range(max_last + 1, end):
            for j in range(g_isect.shape[1]):
                g_isect[k, j] = 0.0


@njit(cache=True)
def _reduce_isect(flat_ids, g_isect, out):
    # Serial, in list order: the same sum in the same order on every run.
    for k in range(flat_ids.shape[0]):
        g = flat_ids[k]
        for j in range(g_isect.shape[1]):
            out[g, j] += g_isect[k, j]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().cpu().numpy()


class _RasterizeCPU(torch.autograd.Function):
    """Composites per-camera screen-space Gaussians; gradients by our hand-written backward."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, feats, radii, depths, width, height, tile_size):
        C = means2d.shape[0]
        K = feats.shape[-1]
        dtype = means2d.dtype
        tiles_x, _ = tile_grid(width, height, tile_size)
        out_feats = np.zeros((C, height, width, K), dtype=_np(means2d).dtype)
        # Transmittance stays float64: the backward divides it back through every alpha.
        out_T = np.ones((C, height, width), dtype=np.float64)
        out_last = np.full((C, height, width), -1, dtype=np.int64)
        bins = []
        arrays = []
        for c in range(C):
            m2, co, op, fe, ra = (_np(x[c]) for x in (means2d, conics, opacities, feats, radii))
            offsets, flat_ids = isect_tiles(m2, ra, _np(depths[c]), width, height, tile_size)
            _forward_kernel(m2, co, op, fe.astype(m2.dtype, copy=False), ra, offsets, flat_ids, width, height, tile_size,
                            tiles_x, out_feats[c], out_T[c], out_last[c])
            bins.append((offsets, flat_ids))
            arrays.append((m2, co, op, fe.astype(m2.dtype, copy=False), ra))
        ctx.bins = bins
        ctx.arrays = arrays
        ctx.out_T = out_T
        ctx.out_last = out_last
        ctx.geometry = (width, height, tile_size, tiles_x)
        ctx.shapes = (means2d.shape, feats.shape, dtype, means2d.device)
        feats_t = torch.from_numpy(out_feats).to(means2d.device)
        alphas_t = torch.from_numpy((1.0 - out_T[..., None]).astype(out_feats.dtype)).to(means2d.device)
        return feats_t, alphas_t

    @staticmethod
    def backward(ctx, g_feats, g_alphas):
        width, height, tile_size, tiles_x = ctx.geometry
        (C, N, _), feats_shape, dtype, device = ctx.shapes
        K = feats_shape[-1]
        g_feats = torch.zeros((C, height, width, K), dtype=dtype) if g_feats is None else g_feats
        g_alphas = torch.zeros((C, height, width, 1), dtype=dtype) if g_alphas is None else g_alphas
        gf = _np(g_feats)
        ga = _np(g_alphas)[..., 0]
        grads = np.zeros((C, N, 6 + K), dtype=np.float64)
        for c in range(C):
            offsets, flat_ids = ctx.bins[c]
            m2, co, op, fe, ra = ctx.arrays[c]
            g_isect = np.empty((flat_ids.shape[0], 6 + K), dtype=m2.dtype)
            _backward_kernel(m2, co, op, fe, ra, offsets, flat_ids, width, height, tile_size, tiles_x,
                             ctx.out_T[c], ctx.out_last[c], gf[c], ga[c], g_isect)
            _reduce_isect(flat_ids, g_isect, grads[c])
        grads_t = torch.from_numpy(grads).to(device=device, dtype=dtype)
        return (grads_t[..., 0:2], grads_t[..., 2:5], grads_t[..., 5], grads_t[..., 6:], None, None, None, None, None)


def rasterize_to_pixels(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    opacities: torch.Tensor,
    feats: torch.Tensor,
    radii: torch.Tensor,
    depths: torch.Tensor,
    width: int,
    height: int,
    tile_size: int = TILE_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite screen-space Gaussians front to back, differentiably.

    means2d [C,N,2] pixels; conics [C,N,3]; opacities [C,N] (after any antialiasing
    factor); feats [C,N,K] any per-Gaussian features (RGB, depth, ...); radii [C,N,2]
    int32 (0 = culled); depths [C,N] sort keys. Returns accumulated features
    [C,H,W,K] (no background) and alpha [C,H,W,1]. Gradients flow to means2d, conics,
    opacities and feats. float32 and float64 both work (accumulation is in float64).
    """
    return _RasterizeCPU.apply(means2d, conics, opacities, feats, radii, depths, width, height, tile_size)


def set_num_threads(n: int) -> None:
    """Threads for the CPU kernels (default: all cores)."""
    numba.set_num_threads(n)
