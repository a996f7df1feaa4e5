"""antimatter15 `.splat` files: a headerless array of 32-byte records, little-endian.

    float32 x, y, z            position
    float32 sx, sy, sz         LINEAR scale (standard deviations)
    uint8   r, g, b, a         rgb = clip((0.5 + C0 * sh0) * 255), a = sigmoid(opacity) * 255
    uint8   qw, qx, qy, qz     normalised quaternion as q * 128 + 128, clipped to 0..255

Writing follows antimatter15's `convert.py`: records sorted by -exp(sum of log scales) *
sigmoid(opacity) (biggest, most opaque first; so a file reads back in another order than it
was given, which `write_splat` returns) and the uint8 fields truncated (numpy astype).
The format holds no higher SH bands: `shN` is dropped on write and empty on read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians, opacity_logit, opacity_sigmoid
from splatfilm.scene.sh import rgb_to_sh0, sh0_to_rgb
from splatfilm.io.atomic import atomic_write
from splatfilm.io.inputs import read_input

__all__ = ["read_splat", "write_splat", "SPLAT_DTYPE", "decode_rgba", "log_scales"]

SPLAT_DTYPE = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)), ("rot", "u1", (4,))])
assert SPLAT_DTYPE.itemsize == 32

# Alpha is clamped to [1/2, 255 - 1/2] / 255 before the logit, so 0 and 255 stay finite.
_ALPHA_EPS = 0.5 / 255
# Linear scales of 0 (or underflowed) are read as this, so their log stays finite.
_MIN_SCALE = 1e-30


def _error(path: Path, problem: str) -> SplatfilmError:
    return SplatfilmError(f"{path}: {problem}")


def decode_rgba(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sh0 [N,3] and opacity logits [N] (float64) from the bytes [N,4] that antimatter15's
    `.splat` and GaussianSplats3D's `.ksplat` share: rgb = (0.5 + C0 * sh0) * 255, alpha =
    sigmoid(opacity) * 255 (clamped to [0.5/255, 1 - 0.5/255] before the logit, so 0 and 255
    stay finite)."""
    unit = np.asarray(rgba, np.float64) / 255.0
    return rgb_to_sh0(unit[:, :3]), opacity_logit(unit[:, 3], _ALPHA_EPS)


def log_scales(linear: np.ndarray) -> np.ndarray:
    """Log scales (float64) from the linear ones those formats store; 0 (or an underflow) reads as
    a tiny finite one."""
    return np.log(np.maximum(np.abs(np.asarray(linear, np.float64)), _MIN_SCALE))


def read_splat(path: str | os.PathLike) -> Gaussians:
    """Read an antimatter15 `.splat` file into float32 `Gaussians` (SH degree 0).

    Inverse of the encoding: sh0 = (rgb/255 - 0.5) / C0, opacity = logit(a/255) with a/255
    clamped to [0.5/255, 1 - 0.5/255], scales = log|s|, quats = (q - 128) / 128 (an all-128
    quaternion, which has no direction, reads as the identity).
    """
    path = Path(path)
    data = read_input(path, ".splat file")
    if data[:4] == b"ply\n" or data[:5] == b"ply\r\n":
        raise _error(path, "is a PLY file, not an antimatter15 .splat file (rename it to .ply)")
    if len(data) % SPLAT_DTYPE.itemsize:
        raise _error(path, f"size {len(data)} bytes is not a multiple of 32 (the size of a .splat record); "
                           "the file is truncated or not a .splat file")
    rec = np.frombuffer(data, dtype=SPLAT_DTYPE)
    n = len(rec)
    means = rec["position"].astype(np.float32)
    lin = rec["scale"].astype(np.float64)
    for name, arr in (("position", means), ("scale", lin)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise _error(path, f"has {bad} non-finite values (NaN/inf) in {name}")
    scales = log_scales(lin)
    sh0, opacities = decode_rgba(rec["rgba"])
    quats = (rec["rot"].astype(np.float64) - 128.0) / 128.0
    quats[~quats.any(axis=1)] = (1.0, 0.0, 0.0, 0.0)
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
    return Gaussians(
        means=t(means),
        quats=t(quats),
        scales=t(scales),
        opacities=t(opacities),
        sh0=t(sh0.reshape(n, 1, 3)),
        shN=torch.zeros(n, 0, 3, dtype=torch.float32),
    )


def splat_order(g: Gaussians) -> np.ndarray:
    """antimatter15's record order: by -exp(scale_0 + scale_1 + scale_2) * sigmoid(opacity)."""
    s = g.scales.detach().cpu().to(torch.float64).numpy().sum(axis=1)
    o = g.opacities.detach().cpu().to(torch.float64).numpy()
    with np.errstate(over="ignore"):
        key = -np.exp(s) / (1.0 + np.exp(-o))
    return np.argsort(key, kind="stable")


def encode_splat(g: Gaussians, order: np.ndarray | None = None) -> np.ndarray:
    """The `.splat` records [N] (SPLAT_DTYPE) for `g`, in antimatter15's order (`order`:
    `splat_order(g)` when the caller has it already)."""
    g = g.detach().to("cpu")
    order = splat_order(g) if order is None else order
    means = g.means.to(torch.float64).numpy()[order]
    log_s = g.scales.to(torch.float64).numpy()[order]
    sh0 = g.sh0.to(torch.float64).numpy().reshape(-1, 3)[order]
    op = g.opacities.to(torch.float64).numpy()[order]
    q = g.quats.to(torch.float64).numpy()[order]
    rec = np.zeros(len(order), dtype=SPLAT_DTYPE)
    rec["position"] = means
    with np.errstate(over="ignore"):
        rec["scale"] = np.exp(log_s)
    rgba = np.concatenate([sh0_to_rgb(sh0), opacity_sigmoid(op)[:, None]], axis=1)
    rec["rgba"] = (rgba * 255).clip(0, 255).astype(np.uint8)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), np.array([1.0, 0.0, 0.0, 0.0]))
    rec["rot"] = (q * 128 + 128).clip(0, 255).astype(np.uint8)
    return rec


def write_splat(path: str | os.PathLike, g: Gaussians) -> np.ndarray:
    """Write `g` as an antimatter15 `.splat` file (atomically). Higher SH bands are dropped.
    Returns the order the file holds them in (`splat_order`: int64 [N], record r is g[order[r]]),
    which whatever is kept per Gaussian beside the file (a rig's rows) must follow.

    Non-finite values (NaN/inf, or a scale too large for float32) are refused.
    """
    path = Path(path)
    with np.errstate(over="ignore", invalid="ignore"):
        checks = {
            "means": g.means.detach().cpu().numpy(),
            "scales": np.exp(g.scales.detach().cpu().to(torch.float64).numpy()).astype(np.float32),
            "quats": g.quats.detach().cpu().numpy(),
            "opacities": g.opacities.detach().cpu().numpy(),
            "sh0": g.sh0.detach().cpu().numpy(),
        }
    bad = {k: int(np.count_nonzero(~np.isfinite(v))) for k, v in checks.items()}
    bad = {k: v for k, v in bad.items() if v}
    if bad:
        parts = ", ".join(f"{v} in {k}" for k, v in bad.items())
        raise _error(path, f"cannot write Gaussians with {sum(bad.values())} non-finite values (NaN/inf): {parts}")
    order = splat_order(g)
    atomic_write(path, [encode_splat(g, order).tobytes()])
    return order
