"""Tile intersection, our CPU stage: which Gaussians each 16x16 tile must composite, front to back.

gsplat 1.5.3 does this in two calls, `isect_tiles` (one (tile, depth) key per intersection,
radix-sorted) and `isect_offset_encode` (where each tile's run starts); `isect_tiles` here
returns the same lists directly: a Gaussian is listed in every tile its opacity-aware bounding
box touches, and walking Gaussians in depth order fills each list already sorted.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

TILE_SIZE = 16


@njit(cache=True)
def _tile_bounds(mx, my, rx, ry, tile_size, tiles_x, tiles_y):
    # gsplat's isect_tiles: [floor((m - r) / ts), ceil((m + r) / ts)) clamped to the grid.
    x0 = min(max(int(math.floor((mx - rx) / tile_size)), 0), tiles_x)
    x1 = min(max(int(math.ceil((mx + rx) / tile_size)), 0), tiles_x)
    y0 = min(max(int(math.floor((my - ry) / tile_size)), 0), tiles_y)
    y1 = min(max(int(math.ceil((my + ry) / tile_size)), 0), tiles_y)
    return x0, x1, y0, y1


@njit(cache=True)
def _walk_band(bounds, order, lo, hi, tiles_x, slots, flat_ids, fill):
    """Every Gaussian (in `order`) in the tiles of tile rows [lo, hi) its bounds [M,4] touch:
    counted into slots[t + 1] (fill=False), or written to flat_ids[slots[t]] with slots[t]
    advanced (fill=True, slots the tiles' cursors)."""
    for i in range(order.shape[0]):
        for ty in range(max(bounds[i, 2], lo), min(bounds[i, 3], hi)):
            for tx in range(bounds[i, 0], bounds[i, 1]):
                t = ty * tiles_x + tx
                if fill:
                    flat_ids[slots[t]] = order[i]
                    slots[t] += 1
                else:
                    slots[t + 1] += 1


@njit(parallel=True, cache=True)
def _bin_gaussians(means2d, radii, order, tile_size, tiles_x, tiles_y, n_workers):
    """Tile lists in depth order. order: Gaussian ids sorted front to back (culled ones may be
    included: a radius <= 0 in either axis culls, as in gsplat's isect_tiles).
    Returns (tile_offsets [T+1] int64, flat_ids [M] int32).

    In parallel and still deterministic: the image is cut into bands of tile rows, dealt
    round-robin to the workers (dense and sparse rows even out); each band walks every
    Gaussian in depth order and fills only its own tiles, so each list comes out sorted
    whichever thread fills it."""
    n_tiles = tiles_x * tiles_y
    M = order.shape[0]
    bounds = np.empty((M, 4), dtype=np.int32)
    for i in prange(M):
        g = order[i]
        if radii[g, 0] <= 0 or radii[g, 1] <= 0:
            bounds[i, 0], bounds[i, 1], bounds[i, 2], bounds[i, 3] = 0, 0, 0, 0
        else:
            x0, x1, y0, y1 = _tile_bounds(means2d[g, 0], means2d[g, 1], radii[g, 0], radii[g, 1], tile_size, tiles_x,
                                          tiles_y)
            bounds[i, 0], bounds[i, 1], bounds[i, 2], bounds[i, 3] = x0, x1, y0, y1
    n_bands = min(tiles_y, 4 * n_workers)
    band_rows = (tiles_y + n_bands - 1) // max(n_bands, 1)
    counts = np.zeros(n_tiles + 1, dtype=np.int64)
    flat_ids = np.empty(0, dtype=np.int32)
    for worker in prange(n_workers):
        for b in range(worker, n_bands, n_workers):
            _walk_band(bounds, order, b * band_rows, min(tiles_y, (b + 1) * band_rows), tiles_x, counts, flat_ids,
                       False)
    offsets = np.cumsum(counts)
    cursor = offsets[:-1].copy()
    flat_ids = np.empty(offsets[-1], dtype=np.int32)
    # Walking the Gaussians front to back fills every tile's list already sorted by depth.
    for worker in prange(n_workers):
        for b in range(worker, n_bands, n_workers):
            _walk_band(bounds, order, b * band_rows, min(tiles_y, (b + 1) * band_rows), tiles_x, cursor, flat_ids,
                       True)
    return offsets, flat_ids


def tile_grid(width: int, height: int, tile_size: int = TILE_SIZE) -> tuple[int, int]:
    """Tiles across and down an image of width x height pixels."""
    return (width + tile_size - 1) // tile_size, (height + tile_size - 1) // tile_size


def isect_tiles(means2d: np.ndarray, radii: np.ndarray, depths: np.ndarray, width: int, height: int,
                  tile_size: int = TILE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Tile lists for one camera, each sorted front to back.

    means2d [N,2] pixels, radii [N,2] int (0 in either axis = culled), depths [N] camera z. Returns
    tile_offsets [T+1] int64 and flat_ids [M] int32 (Gaussian ids; tile t owns
    flat_ids[tile_offsets[t]:tile_offsets[t+1]]), tiles in row-major order.
    """
    tiles_x, tiles_y = tile_grid(width, height, tile_size)
    visible = np.nonzero((radii[:, 0] > 0) & (radii[:, 1] > 0))[0]  # gsplat drops either radius <= 0
    order = visible[_depth_order(depths[visible])].astype(np.int64)
    # Thread count read here: inside the kernel it would stop the kernel from being cached.
    return _bin_gaussians(means2d, radii, order, tile_size, tiles_x, tiles_y, max(1, numba.get_num_threads()))


def _depth_order(depths: np.ndarray) -> np.ndarray:
    """Indices that sort depths [M] front to back, ties by index (deterministic lists)."""
    if depths.dtype == np.float32 and not np.signbit(depths).any():
        # A non-negative float32's bits order as the float does: one 64-bit key (depth bits,
        # then index) sorts with numpy's SIMD sort, about 8x a stable argsort, same order.
        key = (depths.view(np.uint32).astype(np.uint64) << np.uint64(32)) | np.arange(len(depths), dtype=np.uint64)
        key.sort()
        return (key & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return np.argsort(depths, kind="stable")
