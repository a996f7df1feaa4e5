"""Rasterize to pixels, our CPU stage: front-to-back alpha compositing of tile lists, with a hand-written backward.

Semantics are gsplat 1.5.3's `rasterize_to_pixels` (see docs/CONVENTIONS.md): tiles (lists from
`tile_intersection`) composite their list in camera-depth order, alpha = min(0.999, o * exp(-sigma)) with contributions
skipped when sigma < 0 or alpha < 1/255, and a pixel stops before the Gaussian that would
take its transmittance to 1e-4 or below.

Why the loops look the way they do (benchmarks/render.py measures them against the core's
limit): numba kernels run in the inputs' precision (float32 in fits and films). Each worker
thread takes every n-th tile of a list sorted by length, so unequal tiles spread evenly.
Inside a tile the loop runs Gaussian by Gaussian, over the rows of that Gaussian's bounding
box (outside it alpha is provably below 1/255: the box is 3.33 sigma, or the opacity-aware
extent, of the marginal), and over all pixels of a row at once, masked by the box: that
loop has no branches and an exp that LLVM vectorises (`exp_neg`), so it runs in SIMD lanes.
Rows and tiles whose pixels have all stopped are skipped; a stopped pixel keeps its
transmittance negated rather than a flag in another array. The kernels let LLVM fuse
multiplies and adds (numba's `contract` flag: one rounding per fused pair, as nvcc does for
gsplat's CUDA kernels by default), and exp's 2^n is built from its exponent bits: together
about a third fewer instructions a lane (95 to 66 in the forward). The backward walks each
tile back to front from the final transmittance and each pixel's last contributing index (as gsplat
does) and sums each Gaussian's per-lane partials inside the lane loop (`_gaussian_grads`,
the one function compiled with reassociation, so the sums stay in SIMD lanes) into one row
per (tile, Gaussian) intersection; those rows are added up per Gaussian in list order, so
gradients are bit-for-bit deterministic whatever the thread count or scheduling. On CPUs
with AVX-512 the kernels are compiled for 512-bit vectors (splatfilm/numba_target.py): a
tile row of 16 float32 pixels is then one vector.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from splatfilm.render.tile_intersection import TILE_SIZE, isect_tiles, tile_grid

# What a progress bar says until a process's first render is done, when its kernels are not
# cached yet (kernels_cached): that render compiles them, and its time alone makes an ETA of hours.
FIRST_RENDER_NOTE = "the first render after an install also compiles the CPU renderer (about 20 s)"


def kernels_cached() -> bool:
    """Whether numba's on-disk cache holds this module's kernels (compiled by an earlier run of
    this install): then a process's first render does not spend ~20 s compiling them."""
    pattern = f"{Path(__file__).stem}.*.nbi"
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if folder:
        return any(Path(folder).rglob(pattern))
    return any((Path(__file__).parent / "__pycache__").glob(pattern))


_ALPHA_MIN = 1.0 / 255.0
_ALPHA_MAX = 0.999
_T_MIN = 1e-4


def exp_neg(s: float) -> float:
    """exp(-s) in the argument's precision: math.exp for float64; for float32 a polynomial
    that LLVM can vectorise (no SVML here, so math.exp would stay a scalar call)."""
    return math.exp(-s)


@intrinsic
def _pow2_float32(typingctx, n):
    """2.0**n as float32 for an integer n in [-126, 127]: the exponent bits set directly, which
    LLVM vectorises (a shift of 1 through int64 and back does not, cheaply)."""
    if not isinstance(n, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        v = args[0]
        if v.type.width > 32:
            v = builder.trunc(v, i32)
        elif v.type.width < 32:
            v = builder.sext(v, i32)
        bits = builder.shl(builder.add(v, ir.Constant(i32, 127)), ir.Constant(i32, 23))
        return builder.bitcast(bits, ir.FloatType())

    return types.float32(n), codegen


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
        return p * _pow2_float32(np.int32(n))

    return impl


@njit(cache=True)
def _pixel_range(m, r, lo, hi):
    # Pixels whose centre lies within [m - r, m + r], widened by one pixel against rounding,
    # clipped to the tile span [lo, hi).
    p0 = int(math.floor(m - r - 0.5)) - 1
    p1 = int(math.ceil(m + r - 0.5)) + 2
    return max(p0, lo), min(p1, hi)


@njit(cache=True)
def _tile_rect(t, tiles_x, tile_size, width, height):
    """Pixel rectangle [x0, x1) x [y0, y1) of tile t (row-major), clipped to the image."""
    x0 = (t % tiles_x) * tile_size
    y0 = (t // tiles_x) * tile_size
    return x0, y0, min(x0 + tile_size, width), min(y0 + tile_size, height)


@njit(cache=True)
def _pixel_centres(x0, y0, tile_size, out_x, out_y, out_edges):
    # Per pixel of a tile (flat, row stride tile_size), its centre, and the tile's column
    # edges x0 + i, in the kernel's precision.
    for r in range(tile_size):
        for i in range(tile_size):
            out_x[r * tile_size + i] = x0 + i + 0.5
            out_y[r * tile_size + i] = y0 + r + 0.5
    for i in range(tile_size + 1):
        out_edges[i] = x0 + i


@njit(cache=True)
def _rows_full(T, ts, row_full):
    """Marks the rows (of ts pixels in the flat `T`, negative where a pixel has stopped) whose
    pixels have all stopped; True when every row has."""
    zero = T[0] - T[0]
    n_full = 0
    for r in range(ts):
        full = True
        for i in range(r * ts, r * ts + ts):
            full = full and T[i] < zero
        row_full[r] = full
        n_full += full
    return n_full == ts


@njit(cache=True, fastmath={"contract"})
def _add4(a0, a1, a2, a3, w, f0, f1, f2, f3, u0, u1):
    """a_c[u0:u1] += w[u0:u1] * f_c for four channel rows (separate arguments: LLVM then
    vectorises the one loop over all four)."""
    for li in range(u0, u1):
        x = w[li]
        a0[li] += x * f0
        a1[li] += x * f1
        a2[li] += x * f2
        a3[li] += x * f3


@njit(parallel=True, cache=True, fastmath={"contract"})
def _forward_kernel(means2d, conics, opacities, feats, radii, tile_offsets, flat_ids, tile_order, width, height,
                    tile_size, tiles_x, n_workers, cst, out_feats, out_T, out_last, out_peak):
    """out_peak [M] (empty: not wanted): per intersection, the largest blend weight alpha * T
    the Gaussian got in the tile (left as given where it blended nowhere)."""
    half, a_min, a_max, t_min = cst[0], cst[1], cst[2], cst[3]
    one = half + half
    zero = half - half
    K = feats.shape[1]
    ts = tile_size
    n_pix = ts * ts
    n_tiles = tile_order.shape[0]
    for worker in prange(n_workers):
        # Per-pixel state of one tile, flat (row stride ts): a Gaussian's box rows are one run.
        T = np.empty(n_pix, dtype=cst.dtype)
        acc = np.empty((K, n_pix), dtype=cst.dtype)
        last = np.empty(n_pix, dtype=np.int32)
        w_pix = np.empty(n_pix, dtype=cst.dtype)
        row_full = np.empty(ts, dtype=np.bool_)
        xc = np.empty(n_pix, dtype=cst.dtype)
        yc = np.empty(n_pix, dtype=cst.dtype)
        edges = np.empty(ts + 1, dtype=cst.dtype)
        for j in range(worker, n_tiles, n_workers):
            t = tile_order[j]
            tx0, ty0, tx1, ty1 = _tile_rect(t, tiles_x, ts, width, height)
            tw = tx1 - tx0
            th = ty1 - ty0
            _pixel_centres(tx0, ty0, ts, xc, yc, edges)
            acc[:, :] = zero
            last[:] = -1
            start = tile_offsets[t]
            # A stopped pixel keeps its transmittance negated (one array less in the lane loop);
            # pixels outside the image (edge tiles) start stopped.
            for li in range(n_pix):
                T[li] = -one if (li % ts >= tw) or (li // ts >= th) else one
            row_full[:] = False
            for k in range(start, tile_offsets[t + 1]):
                g = flat_ids[k]
                op = opacities[g]
                if not op >= a_min:
                    continue  # can never reach alpha 1/255
                mx = means2d[g, 0]
                my = means2d[g, 1]
                ca = conics[g, 0]
                cb = conics[g, 1]
                cc = conics[g, 2]
                bx0, bx1 = _pixel_range(float(mx), float(radii[g, 0]), tx0, tx1)
                py0, py1 = _pixel_range(float(my), float(radii[g, 1]), ty0, ty1)
                # The box's columns as pixel-centre bounds: a float compare keeps lanes float-wide.
                x_lo = edges[bx0 - tx0]
                x_hi = edges[bx1 - tx0]
                k32 = np.int32(k)
                r0 = py0 - ty0
                r1 = max(py1 - ty0, r0)
                # Rows whose pixels have all stopped drop out at either end of the box.
                while r0 < r1 and row_full[r0]:
                    r0 += 1
                while r1 > r0 and row_full[r1 - 1]:
                    r1 -= 1
                l0 = r0 * ts
                l1 = r1 * ts
                # Unsigned indices: numba then skips its negative-index wraparound, which
                # would keep LLVM from vectorising.
                u0 = np.uint64(l0)
                u1 = np.uint64(l1)
                # Every pixel of the box's rows at once (SIMD lanes); the box and the tests mask them.
                for li in range(u0, u1):
                    dx = mx - xc[li]
                    dy = my - yc[li]
                    sigma = half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    alpha = min(a_max, op * exp_neg(sigma))
                    T_i = T[li]
                    next_T = T_i * (one - alpha)
                    ok = (sigma >= zero) & (alpha >= a_min) & (xc[li] > x_lo) & (xc[li] < x_hi) & (T_i > zero)
                    stop = ok & (next_T <= t_min)
                    use = ok & (not stop)
                    w_pix[li] = alpha * T_i if use else zero
                    T[li] = next_T if use else (-T_i if stop else T_i)
                    last[li] = k32 if use else last[li]
                # Four channels a pass (colour and depth: the whole of it), each weight read once.
                ch = 0
                while ch + 4 <= K:
                    _add4(acc[ch], acc[ch + 1], acc[ch + 2], acc[ch + 3], w_pix, feats[g, ch], feats[g, ch + 1],
                          feats[g, ch + 2], feats[g, ch + 3], u0, u1)
                    ch += 4
                for c in range(ch, K):
                    f = feats[g, c]
                    for li in range(u0, u1):
                        acc[c, li] += w_pix[li] * f
                if out_peak.shape[0] > 0:
                    peak = zero
                    for li in range(u0, u1):
                        peak = max(peak, w_pix[li])
                    out_peak[k] = peak
                # Now and then, which rows have stopped (a count inside the lane loop would
                # keep it from vectorising); the tile stops when all have.
                if (k - start) % 16 == 15 and _rows_full(T, ts, row_full):
                    break
            for r in range(th):
                for i in range(tw):
                    li = r * ts + i
                    for ch in range(K):
                        out_feats[ty0 + r, tx0 + i, ch] = acc[ch, li]
                    out_T[ty0 + r, tx0 + i] = abs(T[li])
                    out_last[ty0 + r, tx0 + i] = last[li]


@njit(cache=True, fastmath={"reassoc", "contract"})
def _gaussian_grads(k, g, u0, u1, feats, op, mx, my, ca, cb, cc, half, xc, yc, gF, gT, GS, w_p, T_p, inv_p, vis_p,
                    D, g_isect, absgrad):
    """One (tile, Gaussian) intersection's gradient row g_isect[:, k], summed over its lanes
    u0..u1 (zero where it did not blend), and the loss gradient of the colour behind it
    (GS = sum over channels of dL/dcolour * colour behind) brought in front of it. With
    `absgrad`, rows 6 + K and 7 + K get the sums of each pixel's |d/d(mean x)| and
    |d/d(mean y)| (AbsGS; gsplat's v_means2d_abs).

    Per pixel the channels enter d(alpha) only through D = sum_ch dL/dcolour_ch * f_ch and
    GS, so one scalar per pixel stands for the colour behind, whatever the channel count.
    The sums may reassociate (flag on this function only), so LLVM keeps them in SIMD lanes;
    the order is still fixed by the loop, so every run gives the same bits."""
    zero = half - half
    K = feats.shape[1]
    for li in range(u0, u1):
        D[li] = zero
    for ch in range(K):
        f = feats[g, ch]
        s = zero
        for li in range(u0, u1):
            gf = gF[ch, li]
            D[li] += gf * f
            s += w_p[li] * gf
        g_isect[6 + ch, k] = s
    if absgrad:
        # A loop of its own, before GS moves in front of this Gaussian, so the loop below (every
        # fit step's) is the same code whether or not absolute gradients are asked for.
        a0 = zero
        a1 = zero
        for li in range(u0, u1):
            d_sigma = -(T_p[li] * D[li] + (gT[li] - GS[li]) * inv_p[li]) * op * vis_p[li]
            dx = mx - xc[li]
            dy = my - yc[li]
            a0 += abs(d_sigma * (ca * dx + cb * dy))
            a1 += abs(d_sigma * (cc * dy + cb * dx))
        g_isect[6 + K, k] = a0
        g_isect[7 + K, k] = a1
    s0 = zero
    s1 = zero
    s2 = zero
    s3 = zero
    s4 = zero
    s5 = zero
    for li in range(u0, u1):
        # d colour / d alpha = f T_front - S_behind / (1 - alpha); alpha_out = 1 - T_final
        # and dT_final/dalpha = -T_final / (1 - alpha)
        gs = GS[li]
        d = D[li]
        d_alpha = T_p[li] * d + (gT[li] - gs) * inv_p[li]
        GS[li] = gs + w_p[li] * d
        vis = vis_p[li]
        d_sigma = -d_alpha * op * vis
        dx = mx - xc[li]
        dy = my - yc[li]
        s5 += d_alpha * vis
        s2 += half * d_sigma * dx * dx
        s3 += d_sigma * dx * dy
        s4 += half * d_sigma * dy * dy
        s0 += d_sigma * (ca * dx + cb * dy)
        s1 += d_sigma * (cc * dy + cb * dx)
    g_isect[0, k] = s0
    g_isect[1, k] = s1
    g_isect[2, k] = s2
    g_isect[3, k] = s3
    g_isect[4, k] = s4
    g_isect[5, k] = s5


@njit(parallel=True, cache=True, fastmath={"contract"})
def _backward_kernel(means2d, conics, opacities, feats, radii, tile_offsets, flat_ids, tile_order, width, height,
                     tile_size, tiles_x, n_workers, cst, T_final, last_ids, g_feats, g_alpha, g_isect):
    """g_isect [6 + K, M]: per intersection d/d(mean x, mean y, conic a, b, c, opacity, feats);
    [8 + K, M]: then the sums of |d/d(mean x)| and |d/d(mean y)| over its pixels (absgrad)."""
    half, a_min, a_max = cst[0], cst[1], cst[2]
    one = half + half
    zero = half - half
    K = feats.shape[1]
    F = g_isect.shape[0]
    absgrad = F > 6 + K
    ts = tile_size
    n_pix = ts * ts
    n_tiles = tile_order.shape[0]
    for worker in prange(n_workers):
        T = np.empty(n_pix, dtype=cst.dtype)
        GS = np.empty(n_pix, dtype=cst.dtype)  # sum over channels of dL/dcolour * colour behind
        gF = np.empty((K, n_pix), dtype=cst.dtype)
        gT = np.empty(n_pix, dtype=cst.dtype)  # dL/dalpha_out * T_final
        last = np.empty(n_pix, dtype=np.int32)
        row_last = np.empty(ts, dtype=np.int64)
        xc = np.empty(n_pix, dtype=cst.dtype)
        yc = np.empty(n_pix, dtype=cst.dtype)
        edges = np.empty(ts + 1, dtype=cst.dtype)
        w_p = np.empty(n_pix, dtype=cst.dtype)  # 0 where the Gaussian did not blend
        T_p = np.empty(n_pix, dtype=cst.dtype)
        inv_p = np.empty(n_pix, dtype=cst.dtype)
        vis_p = np.empty(n_pix, dtype=cst.dtype)
        D = np.empty(n_pix, dtype=cst.dtype)
        for j in range(worker, n_tiles, n_workers):
            t = tile_order[j]
            start = tile_offsets[t]
            end = tile_offsets[t + 1]
            tx0, ty0, tx1, ty1 = _tile_rect(t, tiles_x, ts, width, height)
            tw = tx1 - tx0
            th = ty1 - ty0
            _pixel_centres(tx0, ty0, ts, xc, yc, edges)
            T[:] = one
            last[:] = -1
            gT[:] = zero
            gF[:, :] = zero
            GS[:] = zero
            row_last[:] = -1
            max_last = start - 1
            for r in range(th):
                for i in range(tw):
                    li = r * ts + i
                    T[li] = T_final[ty0 + r, tx0 + i]
                    last[li] = last_ids[ty0 + r, tx0 + i]
                    row_last[r] = max(row_last[r], last[li])
                    gT[li] = g_alpha[ty0 + r, tx0 + i] * T_final[ty0 + r, tx0 + i]
                    for ch in range(K):
                        gF[ch, li] = g_feats[ty0 + r, tx0 + i, ch]
                max_last = max(max_last, row_last[r])
            for k in range(max_last, start - 1, -1):
                g = flat_ids[k]
                op = opacities[g]
                k32 = np.int32(k)
                r0 = 0
                r1 = 0
                if op >= a_min:
                    py0, py1 = _pixel_range(float(means2d[g, 1]), float(radii[g, 1]), ty0, ty1)
                    r0 = py0 - ty0
                    r1 = py1 - ty0
                    # Rows where no pixel reaches this far back drop out at either end.
                    while r0 < r1 and row_last[r0] < k:
                        r0 += 1
                    while r1 > r0 and row_last[r1 - 1] < k:
                        r1 -= 1
                if r0 == r1:
                    for q in range(F):
                        g_isect[q, k] = zero
                    continue
                mx = means2d[g, 0]
                my = means2d[g, 1]
                ca = conics[g, 0]
                cb = conics[g, 1]
                cc = conics[g, 2]
                bx0, bx1 = _pixel_range(float(mx), float(radii[g, 0]), tx0, tx1)
                x_lo = edges[bx0 - tx0]
                x_hi = edges[bx1 - tx0]
                # Unsigned lane indices: numba then skips its negative-index wraparound, which
                # would keep LLVM from vectorising.
                u0 = np.uint64(r0 * ts)
                u1 = np.uint64(r1 * ts)
                for li in range(u0, u1):
                    dx = mx - xc[li]
                    dy = my - yc[li]
                    sigma = half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    vis = exp_neg(sigma)
                    alpha = min(a_max, op * vis)
                    ok = (k32 <= last[li]) & (sigma >= zero) & (alpha >= a_min) & (xc[li] > x_lo) & (xc[li] < x_hi)
                    inv = one / (one - alpha)
                    T_i = T[li]
                    T_front = T_i * inv  # transmittance in front of this Gaussian
                    T[li] = T_front if ok else T_i
                    w_p[li] = alpha * T_front if ok else zero
                    # Where it did not blend, zeros keep the lanes out of every sum below.
                    T_p[li] = T_front if ok else zero
                    inv_p[li] = inv if ok else zero
                    vis_p[li] = vis if ok & (op * vis <= a_max) else zero  # clamped at 0.999: no gradient
                _gaussian_grads(k, g, u0, u1, feats, op, mx, my, ca, cb, cc, half, xc, yc, gF, gT, GS, w_p, T_p, inv_p,
                                vis_p, D, g_isect, absgrad)
            for k in range(max(max_last + 1, start), end):
                for q in range(F):
                    g_isect[q, k] = zero


@njit(parallel=True, cache=True)
def _reduce_isect(flat_ids, g_isect, out):
    # One field per task, each summed in list order: the same sums on every run.
    for q in prange(g_isect.shape[0]):
        for k in range(flat_ids.shape[0]):
            out[q, flat_ids[k]] += g_isect[q, k]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().cpu().numpy()


def _constants(dtype) -> np.ndarray:
    # The kernels' thresholds in the inputs' precision, so float32 inputs run float32 maths.
    return np.array([0.5, _ALPHA_MIN, _ALPHA_MAX, _T_MIN], dtype=dtype)


def _tile_order(tile_offsets: np.ndarray) -> np.ndarray:
    """Tiles longest list first: dealt round-robin to the threads, they even out."""
    return np.argsort(-np.diff(tile_offsets), kind="stable")


def _workers(tile_order: np.ndarray) -> int:
    # One task per thread (numba's thread count, read here: inside a kernel it would stop the
    # kernel from being cached).
    return max(1, min(numba.get_num_threads(), len(tile_order)))


class _RasterizeCPU(torch.autograd.Function):
    """Composites per-camera screen-space Gaussians; gradients by our hand-written backward."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, feats, radii, depths, width, height, tile_size, absgrad):
        C = means2d.shape[0]
        K = feats.shape[-1]
        dtype = means2d.dtype
        tiles_x, _ = tile_grid(width, height, tile_size)
        np_dtype = _np(means2d).dtype
        cst = _constants(np_dtype)
        out_feats = np.zeros((C, height, width, K), dtype=np_dtype)
        out_T = np.ones((C, height, width), dtype=np_dtype)
        out_last = np.full((C, height, width), -1, dtype=np.int32)
        bins = []
        arrays = []
        for c in range(C):
            m2, co, op, fe, ra = (_np(x[c]) for x in (means2d, conics, opacities, feats, radii))
            co, op, fe = (x.astype(np_dtype, copy=False) for x in (co, op, fe))
            offsets, flat_ids = isect_tiles(m2, ra, _np(depths[c]), width, height, tile_size)
            order = _tile_order(offsets)
            _forward_kernel(m2, co, op, fe, ra, offsets, flat_ids, order, width, height, tile_size, tiles_x,
                            _workers(order), cst, out_feats[c], out_T[c], out_last[c], np.empty(0, dtype=np_dtype))
            bins.append((offsets, flat_ids, order))
            arrays.append((m2, co, op, fe, ra))
        ctx.bins = bins
        ctx.arrays = arrays
        ctx.out_T = out_T
        ctx.out_last = out_last
        ctx.geometry = (width, height, tile_size, tiles_x)
        ctx.shapes = (means2d.shape, feats.shape, dtype, means2d.device)
        ctx.absgrad = absgrad
        if absgrad:  # the tensor that backward gives its `.absgrad`, as gsplat's does
            ctx.save_for_backward(means2d)
        feats_t = torch.from_numpy(out_feats).to(means2d.device)
        alphas_t = torch.from_numpy(1.0 - out_T[..., None]).to(means2d.device)
        return feats_t, alphas_t

    @staticmethod
    def backward(ctx, g_feats, g_alphas):
        width, height, tile_size, tiles_x = ctx.geometry
        (C, N, _), feats_shape, dtype, device = ctx.shapes
        K = feats_shape[-1]
        g_feats = torch.zeros((C, height, width, K), dtype=dtype) if g_feats is None else g_feats
        g_alphas = torch.zeros((C, height, width, 1), dtype=dtype) if g_alphas is None else g_alphas
        np_dtype = ctx.out_T.dtype
        cst = _constants(np_dtype)
        gf = _np(g_feats).astype(np_dtype, copy=False)
        ga = _np(g_alphas)[..., 0].astype(np_dtype, copy=False)
        F = 6 + K + (2 if ctx.absgrad else 0)
        grads = np.zeros((C, F, N), dtype=np.float64)
        for c in range(C):
            offsets, flat_ids, order = ctx.bins[c]
            m2, co, op, fe, ra = ctx.arrays[c]
            g_isect = np.empty((F, flat_ids.shape[0]), dtype=np_dtype)
            _backward_kernel(m2, co, op, fe, ra, offsets, flat_ids, order, width, height, tile_size, tiles_x,
                             _workers(order), cst, ctx.out_T[c], ctx.out_last[c], gf[c], ga[c], g_isect)
            _reduce_isect(flat_ids, g_isect, grads[c])
        grads_t = torch.from_numpy(grads).to(device=device, dtype=dtype).transpose(1, 2)
        if ctx.absgrad:
            (means2d,) = ctx.saved_tensors
            means2d.absgrad = grads_t[..., 6 + K:]
        return (grads_t[..., 0:2], grads_t[..., 2:5], grads_t[..., 5], grads_t[..., 6:6 + K], None, None, None, None,
                None, None)


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
    absgrad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite screen-space Gaussians front to back, differentiably.

    means2d [C,N,2] pixels; conics [C,N,3]; opacities [C,N] (after any antialiasing
    factor); feats [C,N,K] any per-Gaussian features (RGB, depth, ...); radii [C,N,2]
    int32 (0 = culled); depths [C,N] sort keys. Returns accumulated features
    [C,H,W,K] (no background) and alpha [C,H,W,1]. Gradients flow to means2d, conics,
    opacities and feats. float32 and float64 both work; the kernels compute in means2d's
    precision (float32: as gsplat's CUDA kernels do).
    absgrad: backward also sets `means2d.absgrad` [C,N,2], per Gaussian the sum over pixels
    of the absolute value of each pixel's loss gradient w.r.t. its 2D mean, x and y apart
    (AbsGS's densification statistic, as gsplat's `rasterize_to_pixels(absgrad=True)`);
    each backward replaces it.
    """
    return _RasterizeCPU.apply(means2d, conics, opacities, feats, radii, depths, width, height, tile_size, absgrad)


def rasterize_to_pixels_reference(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    opacities: torch.Tensor,
    feats: torch.Tensor,
    radii: torch.Tensor,
    depths: torch.Tensor,
    width: int,
    height: int,
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """`rasterize_to_pixels` written out plainly, to read and to test it against: brute-force
    per-pixel front-to-back compositing with gsplat 1.5.3's rules, in float64 PyTorch.

    Every pixel sees every Gaussian with both radii > 0 (no tiles, no bounding boxes), in
    stable depth order: alpha = min(0.999, o exp(-sigma)) with d = mean2d - pixel centre,
    skipped where sigma < 0 or alpha < 1/255, and the pixel stops before the Gaussian that
    would take its transmittance T to 1e-4 or below. Differentiable with autograd; slow
    (a Python loop over the Gaussians: tests' sizes only). Inputs as `rasterize_to_pixels`'s
    ([C,N,...]); returns accumulated feats [C,H,W,K] and alpha [C,H,W,1] (float64) and, per
    camera, how many pixels stopped on the transmittance threshold.
    """
    C, N, K = feats.shape
    f64 = torch.float64
    means2d, conics, opacities, feats = (t.to(f64) for t in (means2d, conics, opacities, feats))
    ys, xs = torch.meshgrid(torch.arange(height, dtype=f64) + 0.5, torch.arange(width, dtype=f64) + 0.5, indexing="ij")
    xs, ys = xs.reshape(-1), ys.reshape(-1)
    out_f, out_a, stopped = [], [], []
    for c in range(C):
        ids = torch.nonzero((radii[c] > 0).all(-1))[:, 0]
        order = ids[torch.argsort(depths[c, ids].detach(), stable=True)]
        T = torch.ones(xs.shape[0], dtype=f64)
        acc = torch.zeros(xs.shape[0], K, dtype=f64)
        done = torch.zeros(xs.shape[0], dtype=torch.bool)
        for g in order.tolist():
            dx = means2d[c, g, 0] - xs
            dy = means2d[c, g, 1] - ys
            a, b, cc = conics[c, g]
            sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
            alpha = torch.clamp_max(opacities[c, g] * torch.exp(-sigma), _ALPHA_MAX)
            use = ~done & (sigma >= 0) & (alpha >= _ALPHA_MIN)
            next_T = T * (1.0 - alpha)
            stop = use & (next_T <= _T_MIN)
            done = done | stop
            use = use & ~stop
            w = torch.where(use, alpha * T, torch.zeros_like(T))
            acc = acc + w[:, None] * feats[c, g][None, :]
            T = torch.where(use, next_T, T)
        out_f.append(acc.reshape(height, width, K))
        out_a.append((1.0 - T).reshape(height, width, 1))
        stopped.append(int(done.sum()))
    return torch.stack(out_f), torch.stack(out_a), stopped


def rasterize_peak_weights(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    opacities: torch.Tensor,
    radii: torch.Tensor,
    depths: torch.Tensor,
    width: int,
    height: int,
    tile_size: int = TILE_SIZE,
) -> torch.Tensor:
    """Per camera and Gaussian, its largest blend weight over the image [C,N] (alpha * T at its
    best pixel, as `rasterize_to_pixels` composites it with the same inputs: 0 where it
    blends nowhere, culled, hidden or off the image); not differentiable. Inputs as
    `rasterize_to_pixels`'s; float32 or float64, computed in means2d's precision."""
    C, N = means2d.shape[:2]
    tiles_x, _ = tile_grid(width, height, tile_size)
    np_dtype = _np(means2d).dtype
    cst = _constants(np_dtype)
    out = np.zeros((C, N), dtype=np_dtype)
    for c in range(C):
        m2, co, op, ra = (_np(x[c]) for x in (means2d, conics, opacities, radii))
        co, op = (x.astype(np_dtype, copy=False) for x in (co, op))
        offsets, flat_ids = isect_tiles(m2, ra, _np(depths[c]), width, height, tile_size)
        order = _tile_order(offsets)
        isect_peak = np.zeros(flat_ids.shape[0], dtype=np_dtype)
        _forward_kernel(m2, co, op, np.zeros((N, 0), dtype=np_dtype), ra, offsets, flat_ids, order, width, height,
                        tile_size, tiles_x, _workers(order), cst, np.zeros((height, width, 0), dtype=np_dtype),
                        np.ones((height, width), dtype=np_dtype), np.full((height, width), -1, dtype=np.int32),
                        isect_peak)
        # A maximum: the same whatever order the tiles ran in.
        np.maximum.at(out[c], flat_ids, isect_peak)
    return torch.from_numpy(out).to(means2d.device)


def set_num_threads(n: int) -> None:
    """Threads for the CPU kernels (default: all cores)."""
    numba.set_num_threads(n)
