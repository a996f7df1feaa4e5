"""Writing rendered frames: 8-bit PNG (RGB or RGBA), 32-bit float depth as EXR or .npy.

Every write is atomic (see `io.atomic`): an interrupted job never leaves a half-written frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write, cannot_write, make_folder, temp_path_for


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[H,W,C] floats in [0,1] -> uint8, rounded to nearest."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_png(path: str | os.PathLike, rgb: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Save an 8-bit PNG atomically.

    rgb [H,W,3] in [0,1]; with `alpha` [H,W,1] the PNG is RGBA with straight (not
    premultiplied) colour, so `rgb` must be the colour composited over black, which is
    what a render without background returns.
    """
    import imageio.v3 as iio

    if alpha is not None:
        a = alpha.astype(np.float64)
        straight = np.where(a > 0, rgb / np.maximum(a, 1e-12), 0.0)
        image = np.concatenate([straight, a], axis=-1)
    else:
        image = rgb
    data = iio.imwrite("<bytes>", to_uint8(image), extension=".png")
    atomic_write(path, [data])


def write_depth(path: str | os.PathLike, depth: np.ndarray, channel: str = "Z") -> None:
    """Save depth [H,W] or [H,W,1] (or any one-channel float image, e.g. alpha with channel
    "A") as 32-bit float, atomically: `.exr` (one channel, named Z for depth as Nuke and
    Blender read it; ZIP compression) or `.npy`."""
    path = Path(path)
    depth = np.ascontiguousarray(np.asarray(depth, dtype=np.float32).reshape(depth.shape[0], depth.shape[1]))
    if path.suffix == ".npy":
        import io

        buf = io.BytesIO()
        np.save(buf, depth)
        atomic_write(path, [buf.getvalue()])
    elif path.suffix == ".exr":
        import OpenEXR

        make_folder(path.parent)
        tmp = temp_path_for(path)
        try:
            header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
            with OpenEXR.File(header, {channel: depth}) as f:
                f.write(str(tmp))
            os.replace(tmp, path)
        except BaseException as e:
            tmp.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise cannot_write(path, e) from None
            raise
    else:
        raise SplatfilmError(f"{path}: depth is written as .exr or .npy, not {path.suffix!r}")


def read_depth(path: str | os.PathLike, channel: str = "Z") -> np.ndarray:
    """Read a one-channel map [H,W] float32 written by `write_depth`."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    import OpenEXR

    with OpenEXR.File(str(path)) as f:
        return np.asarray(f.channels()[channel].pixels, dtype=np.float32)
