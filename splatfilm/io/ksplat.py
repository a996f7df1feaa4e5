"""GaussianSplats3D `.ksplat` files (mkkellogg's viewer's own, "compressed splat buffer"), read.
Little-endian throughout:

    header, 4096 bytes     u8 version major (0), minor (>= 1); u32 at 4 the sections, at 16 the
                           Gaussians; u16 at 20 the compression level (0, 1, 2); f32 at 36 and
                           40 level 2's SH range (0 meaning -1.5 and 1.5)
    section headers        1024 bytes each: u32 at 0 its Gaussians, at 4 the room for them, at 8
                           the bucket capacity, at 12 the buckets; f32 at 16 a bucket's block
                           size; u16 at 20 a bucket's bytes; u32 at 24 the position range (0:
                           the level's, 32767), at 32 the full buckets, at 36 the partly filled
                           ones; u16 at 40 the SH degree
    each section's data    u32 length of each partly filled bucket, the buckets' centres (f32
                           x y z), then one record per Gaussian, bucket by bucket (full ones
                           first), as many records as the section has room for
    a record               level 0: f32 position, f32 LINEAR scale, f32 quaternion (w x y z),
                           u8 rgba as `.splat`'s (`io.splat.decode_rgba`), f32 SH; levels 1
                           and 2: u16 position as (p - centre) / (block / 2) * range + range,
                           f16 scale and quaternion, u8 rgba, SH as f16 (level 1) or a byte
                           between the header's SH range (level 2)
The SH coefficients are stored by band, each band channel by channel: band 1's red, green and
blue 3 each, then band 2's 5 each (GaussianSplats3D writes up to band 2; band 3, 7 each, is read
as splat-transform reads it). Positions, rotations and SH are in the INRIA PLY's frame, as
GaussianSplats3D converts a PLY's columns unchanged. Writing is not supported.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.io.inputs import read_input, trailing_bytes_note
from splatfilm.io.splat import decode_rgba, log_scales
from splatfilm.scene.gaussians import Gaussians

__all__ = ["read_ksplat"]

_HEADER = 4096
_SECTION_HEADER = 1024
# Per compression level: the dtype of positions, of scales and rotations, of SH, and the
# default position range.
_LEVELS = {0: ("<f4", "<f4", "<f4", 1), 1: ("<u2", "<f2", "<f2", 32767), 2: ("<u2", "<f2", "u1", 32767)}
# Level 2's SH range when the header leaves it 0 (GaussianSplats3D's default, 3 wide).
_SH_HALF_RANGE = 1.5


def _error(path: Path, problem: str) -> SplatfilmError:
    return SplatfilmError(f"{path}: {problem}")


def _sh_order(degree: int) -> np.ndarray:
    """For each stored SH value of a record, its place in our [K*3] (coefficient-major, channel
    last) layout of shN."""
    places = []
    first = 0
    for band in range(1, degree + 1):
        width = 2 * band + 1
        places += [(first + c) * 3 + channel for channel in range(3) for c in range(width)]
        first += width
    return np.array(places, np.int64)


def read_ksplat(path: str | os.PathLike, notes: list[str] | None = None) -> Gaussians:
    """Read a `.ksplat` file (compression level 0, 1 or 2; SH degree 0-3, the highest of its
    sections, lower ones zero-padded) into float32 `Gaussians`, its sections in order and each
    section's Gaussians in its bucket order. Colour and opacity decode as `.splat`'s; scales are
    the log of the stored linear ones. notes: a list the one-line notes for the reader are
    appended to (bytes after the last section's records)."""
    path = Path(path)
    data = read_input(path, ".ksplat file")
    if len(data) < _HEADER:
        raise _error(path, f"not a .ksplat file ({len(data)} bytes; its header alone is {_HEADER})")
    head = np.frombuffer(data, np.uint8, _HEADER)
    major, minor = int(head[0]), int(head[1])
    if major != 0 or minor < 1:
        raise _error(path, f"not a .ksplat file, or version {major}.{minor}, which is not read (0.1 and later 0.x are)")
    u32 = np.frombuffer(data, "<u4", 5)
    sections, total = int(u32[1]), int(u32[4])
    level = int(np.frombuffer(data, "<u2", 1, 20)[0])
    if level not in _LEVELS:
        raise _error(path, f"compression level {level} is not one of 0, 1, 2")
    sh_lo, sh_hi = (float(v) for v in np.frombuffer(data, "<f4", 2, 36))
    sh_lo, sh_hi = sh_lo or -_SH_HALF_RANGE, sh_hi or _SH_HALF_RANGE
    vector, turn_type, sh_type, default_range = _LEVELS[level]
    base = _HEADER + sections * _SECTION_HEADER
    if base > len(data):
        raise _error(path, f"its {sections} section headers run past the file's end")
    parts = []
    for s in range(sections):
        at = _HEADER + s * _SECTION_HEADER
        u32 = np.frombuffer(data, "<u4", 10, at).astype(np.int64)
        count, room, capacity, buckets = (int(v) for v in u32[:4])
        block = float(np.frombuffer(data, "<f4", 1, at + 16)[0])
        bucket_bytes = int(np.frombuffer(data, "<u2", 1, at + 20)[0])
        span = int(u32[6]) or default_range
        full, partial = int(u32[8]), int(u32[9])
        degree = int(np.frombuffer(data, "<u2", 1, at + 40)[0])
        if degree > 3:
            raise _error(path, f"section {s}'s SH degree {degree} is not 0-3")
        if count > room:
            raise _error(path, f"section {s} holds {count} Gaussians in room for {room}")
        n_sh = 3 * ((degree + 1) ** 2 - 1)
        record = np.dtype([("position", vector, (3,)), ("scale", turn_type, (3,)), ("rotation", turn_type, (4,)),
                           ("rgba", "u1", (4,)), ("sh", sh_type, (n_sh,))])
        lengths_at, centres_at = base, base + 4 * partial
        records_at = centres_at + bucket_bytes * buckets
        end = records_at + record.itemsize * room
        if end > len(data):
            raise _error(path, f"section {s} runs past the file's end ({end} bytes of {len(data)}); truncated?")
        rec = np.frombuffer(data, record, count, records_at)
        position = rec["position"].astype(np.float64)
        if level > 0:
            lengths = np.concatenate([np.full(full, capacity, np.int64),
                                      np.frombuffer(data, "<u4", partial, lengths_at).astype(np.int64)])
            if len(lengths) != buckets or lengths.sum() < count or bucket_bytes < 12:
                raise _error(path, f"section {s}'s buckets ({buckets}: {full} full of {capacity}, {partial} partly "
                                   f"filled) do not hold its {count} Gaussians")
            centres = np.frombuffer(data, "<f4", 3 * buckets, centres_at).reshape(buckets, 3) if bucket_bytes == 12 \
                else np.stack([np.frombuffer(data, "<f4", 3, centres_at + b * bucket_bytes) for b in range(buckets)])
            bucket = np.repeat(np.arange(buckets), lengths)[:count]
            position = (position - span) * (block / 2.0 / span) + centres[bucket].astype(np.float64)
        shN = np.zeros((count, 15 * 3), np.float64)
        if n_sh:
            sh = rec["sh"].astype(np.float64)
            if level == 2:
                sh = sh_lo + sh / 255.0 * (sh_hi - sh_lo)
            shN[:, _sh_order(degree)] = sh
        sh0, opacities = decode_rgba(rec["rgba"])
        parts.append((position, log_scales(rec["scale"]), rec["rotation"].astype(np.float64), opacities, sh0, shN,
                      degree))
        base = end
    if notes is not None and base < len(data):
        notes.append(trailing_bytes_note(path, len(data) - base, "its last section's records"))
    got = sum(len(p[0]) for p in parts)
    if got != total:
        raise _error(path, f"its sections hold {got} Gaussians; its header says {total}")
    degree = max((p[6] for p in parts), default=0)
    k = (degree + 1) ** 2 - 1

    def cat(i: int, shape: tuple[int, ...]) -> torch.Tensor:
        joined = np.concatenate([p[i] for p in parts]) if parts else np.zeros((0, *shape))
        return torch.from_numpy(np.ascontiguousarray(joined, np.float32))

    return Gaussians(means=cat(0, (3,)), quats=cat(2, (4,)), scales=cat(1, (3,)), opacities=cat(3, ()),
                     sh0=cat(4, (3,)).reshape(-1, 1, 3), shN=cat(5, (45,)).reshape(-1, 15, 3)[:, :k].contiguous())
