"""Per-image appearance for fitting photos: exposure and white balance differ between real
photos; a per-image affine colour transform absorbs that so the scene does not.

Each capture image i has a transform T_i [3,4] (a 3x3 colour matrix and a bias, in linear
[0,1] display-RGB units), applied to the render before the loss: pred'_i = M_i pred + b_i.
They start at the identity and train with their own (small) learning rate and a pull toward
the identity, so the scene keeps the colours most photos agree on; the channel-mixing part
learns slower than the per-channel gains (see MIX_LR_FACTOR). The fitted .ply stays the
plain scene; the transforms are written beside it (OUT.appearance.json) and in checkpoints.
Held-out views have no transform of their own: they borrow the one of the nearest training
view (by position and viewing direction), as gsplat's trainer evaluates its appearance
models.

Why affine and not gsplat's bilateral grid: the grid (16x16x8 cells of 3x4 transforms per
image) also absorbs vignetting and local tone mapping, but costs a trilinear slice per
pixel per step and needs a total-variation loss to stay smooth; on the CPU, where a step
is ~0.1-0.3 s, exposure and white balance are what photos of one capture differ by most.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write
from splatfilm.scene.cameras import Cameras

APPEARANCE_MODES = ("auto", "affine", "none")
# Sources whose images are photos: exposure varies between them (see `appearance_enabled`).
PHOTO_SOURCES = ("colmap", "images", "video")


def appearance_enabled(mode: str, source_type: str | None) -> bool:
    """Whether a fit uses per-image appearance. mode: auto, affine or none; auto turns it on
    for captures that come from photos (a COLMAP model, bare images or a video posed by
    structure from motion) and off for nerfstudio transforms.json captures, which are mostly
    renders with exact cameras and constant exposure (Blender-made sets, splatfilm's bundled
    captures); a transforms.json of photos asks for it with `--appearance affine`."""
    if mode not in APPEARANCE_MODES:
        raise SplatfilmError(f"--appearance must be one of {', '.join(APPEARANCE_MODES)}, got {mode!r}")
    if mode == "auto":
        return source_type in PHOTO_SOURCES
    return mode == "affine"


def identity_transforms(count: int, device=None) -> torch.Tensor:
    """`count` identity transforms [count,3,4] (float32)."""
    t = torch.zeros(count, 3, 4, device=device)
    t[:, :, :3] = torch.eye(3, device=device)
    return t


def apply_transform(rgb: torch.Tensor, transform: torch.Tensor, alpha: torch.Tensor | None = None,
                    background: torch.Tensor | None = None) -> torch.Tensor:
    """rgb [H,W,3] through transform [3,4]. With `alpha` [H,W,1] and `background` [3] (an
    object capture rendered over a background), only the object's premultiplied colour is
    transformed: the background is the fit's own, not the photo's."""
    M, b = transform[:, :3], transform[:, 3]
    if alpha is None or background is None:
        return rgb @ M.T + b
    behind = (1 - alpha) * background
    return (rgb - behind) @ M.T + alpha * b + behind


# The colour matrix's off-diagonal part (cross-talk between channels) learns 10x slower than
# the per-channel gains: on the mostly unsaturated colours of real scenes a gain and a mix of
# channels fit a photo equally well, and Adam would move them at the same speed.
MIX_LR_FACTOR = 0.1


def new_appearance(count: int, device=None) -> torch.nn.ParameterDict:
    """Identity transforms for `count` images as trainable parts: `gain` [C,3] (the matrix's
    diagonal), `mix` [C,3,3] (its off-diagonal; the diagonal entries are unused) and
    `bias` [C,3]."""
    return torch.nn.ParameterDict({
        "gain": torch.nn.Parameter(torch.ones(count, 3, device=device)),
        "mix": torch.nn.Parameter(torch.zeros(count, 3, 3, device=device)),
        "bias": torch.nn.Parameter(torch.zeros(count, 3, device=device)),
    })


def appearance_optimizer(parts: torch.nn.ParameterDict, lr: float) -> torch.optim.Optimizer:
    """Adam over the parts: gains and bias at `lr`, the channel mix at MIX_LR_FACTOR x lr."""
    return torch.optim.Adam([{"params": [parts["gain"]], "lr": lr, "name": "gain"},
                             {"params": [parts["mix"]], "lr": lr * MIX_LR_FACTOR, "name": "mix"},
                             {"params": [parts["bias"]], "lr": lr, "name": "bias"}])


def compose(parts: torch.nn.ParameterDict | dict, index=slice(None)) -> torch.Tensor:
    """The transforms [...,3,4] of images `index` (an int gives one [3,4]) from their parts."""
    gain, mix, bias = parts["gain"][index], parts["mix"][index], parts["bias"][index]
    off = 1 - torch.eye(3, device=gain.device)
    return torch.cat([torch.diag_embed(gain) + mix * off, bias[..., None]], -1)


def identity_penalty(parts: torch.nn.ParameterDict, index: int) -> torch.Tensor:
    """Mean squared distance of image `index`'s transform from the identity (a scalar)."""
    t = compose(parts, index)
    return ((t - identity_transforms(1, t.device)[0]) ** 2).mean()


def nearest_views(cameras: Cameras, candidates: list[int], queries: Cameras, scale: float) -> list[int]:
    """For each camera of `queries`, the index (into `cameras`) among `candidates` nearest to
    it: distance between centres over `scale` plus (1 - cos) of the angle between the
    optical axes, so a view from the same place looking elsewhere is not 'near'."""
    if not candidates:
        raise SplatfilmError("no training views to borrow an appearance from")
    c2w = cameras.to_c2w_opencv()[candidates]
    q = queries.to_c2w_opencv()
    d = np.linalg.norm(q[:, None, :3, 3] - c2w[None, :, :3, 3], axis=2) / max(scale, 1e-9)
    cos = np.einsum("qi,ci->qc", q[:, :3, 2], c2w[:, :3, 2])
    return [candidates[int(k)] for k in np.argmin(d + (1 - cos), axis=1)]


def write_appearance(path: Path, transforms: torch.Tensor, names: list[str], train_ids: list[int]) -> None:
    """Write per-image transforms [C,3,4] as JSON (atomically): one entry per capture image,
    `matrix` 3x3 and `bias` 3; held-out images carry the transform they borrowed."""
    t = transforms.detach().cpu().double().numpy()
    trained = set(train_ids)
    doc = {
        "model": "affine",
        "note": "per capture image: colour' = matrix @ colour + bias on the render, RGB in [0,1]; "
                "the .ply is the scene without it",
        "images": [{"name": n, "trained": i in trained, "matrix": np.round(t[i, :, :3], 6).tolist(),
                    "bias": np.round(t[i, :, 3], 6).tolist()} for i, n in enumerate(names)],
    }
    atomic_write(path, [json.dumps(doc, indent=1).encode()])
