"""Per-image appearance for fitting photos: exposure and white balance differ between real
photos; a per-image affine colour transform absorbs that so the scene does not.

Each capture image i has a transform T_i [3,4] (a 3x3 colour matrix and a bias, in linear
[0,1] display-RGB units), applied to the render before the loss: pred'_i = M_i pred + b_i.
They start at the identity and train with their own (small) learning rate and a pull toward
the identity; the channel-mixing part learns slower than the per-channel gains (see
MIX_LR_FACTOR). Scene colour and transforms trade freely (a darker scene under brighter
transforms renders the same photos), and in training they drift together: on real photos
every transform ended 3-35% brighter with a colour cast, so the plain scene, the .ply a film
renders, was 1-5 dB off its own photos. Re-centring the transforms during training jostles
every image's transform at every step; instead `fold_into_scene` moves the common part into
the scene once the fit ends: the scene takes the colours of the median training photo (the
transforms' entry-wise median over the training images) and each transform keeps only how its
photo differs from that, rendering exactly what it rendered before. The fitted .ply stays the
plain scene; the transforms are written beside it (OUT.appearance.json) and in checkpoints.
Held-out views have no transform of their own: the fit's held-out PSNR/SSIM borrow the one of
the nearest training view (by position and viewing direction), and are reported beside the
same views' scores without a transform (`psnr_plain`, `ssim_plain`), which is how gsplat's
trainer scores its appearance models (a zero appearance embedding, no bilateral grid; it adds a
colour-corrected cc_psnr, fitted to each photo, which splatfilm does not report).

The pull toward the identity (FitConfig.appearance_reg, weight 1 on the mean squared entry
distance) is what keeps a transform from soaking up what the scene should learn where few
photos see it. Measured on three real captures, three seeds each (benchmarks/README.md): at
0.01 a street walk in changing light gained 0.8 dB on the plain scene but 11 photos of a
castle lost 0.9 dB; at 0.3 the castle still lost 0.5; at 1 the street gains 0.5 (1.0 with
transforms), the castle 0.25 and a turntable capture stays within seed noise.

Why affine and not gsplat's bilateral grid: the grid (16x16x8 cells of 3x4 transforms per
image) also absorbs vignetting and local tone mapping, but costs a trilinear slice per
pixel per step and needs a total-variation loss to stay smooth; on the CPU, where a step
is ~0.1-0.3 s, exposure and white balance are what photos of one capture differ by most.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write
from splatfilm.scene.cameras import Cameras, nearest_views
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import rgb_to_sh0
from splatfilm.yamlfields import At, schema_version

APPEARANCE_MODES = ("auto", "affine", "none")
APPEARANCE_VERSION = 1
"""Schema version of `ASSET.appearance.json` (a file without one is version 1)."""
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


def identity_transforms(count: int, device: torch.device | str | None = None) -> torch.Tensor:
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


def new_appearance(count: int, device: torch.device | str | None = None) -> torch.nn.ParameterDict:
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


def compose(parts: torch.nn.ParameterDict | dict, index: int | slice | torch.Tensor = slice(None)) -> torch.Tensor:
    """The transforms [...,3,4] of images `index` (an int gives one [3,4]) from their parts."""
    gain, mix, bias = parts["gain"][index], parts["mix"][index], parts["bias"][index]
    off = 1 - torch.eye(3, device=gain.device)
    return torch.cat([torch.diag_embed(gain) + mix * off, bias[..., None]], -1)


def fold_into_scene(gaussians: Gaussians, transforms: torch.Tensor, train_ids: list[int]
                    ) -> tuple[Gaussians, torch.Tensor]:
    """(scene, transforms) with the transforms' common part moved into the scene's colours.

    gaussians:  the fitted scene (SH colours, gsplat's `rgb = 0.5 + SH`).
    transforms: [C,3,4] per capture image, as trained (held-out images' borrowed).
    train_ids:  the images whose transforms were trained; their entry-wise median T is the
                common part. The returned scene's colours are T applied to the old ones (every
                SH band through T's matrix, its bias into the DC term), and each transform
                T_i becomes T_i after T's inverse, so every image renders as before (exactly
                where the render is opaque and no colour clamps at 0).
    A median transform that is not invertible (never seen) leaves both unchanged."""
    med = transforms[train_ids].double().median(0).values
    M, b = med[:, :3], med[:, 3]
    if not torch.linalg.cond(M) < 1e6:
        return gaussians, transforms
    M_inv = torch.linalg.inv(M)
    sh0 = gaussians.sh0.double()
    dc = rgb_to_sh0(M @ torch.full((3,), 0.5, dtype=torch.float64) + b)
    scene = dataclasses.replace(gaussians, sh0=(sh0 @ M.T + dc).to(gaussians.sh0.dtype),
                                shN=(gaussians.shN.double() @ M.T).to(gaussians.shN.dtype))
    Mi = transforms[..., :3].double() @ M_inv
    bi = transforms[..., 3].double() - (Mi @ b[:, None])[..., 0]
    return scene, torch.cat([Mi, bi[..., None]], -1).to(transforms.dtype)


def identity_penalty(parts: torch.nn.ParameterDict, index: int) -> torch.Tensor:
    """Mean squared distance of image `index`'s transform from the identity (a scalar)."""
    t = compose(parts, index)
    return ((t - identity_transforms(1, t.device)[0]) ** 2).mean()


def appearance_sources(cameras: Cameras, train_ids: list[int], queries: Cameras, scale: float) -> list[int]:
    """For each camera of `queries`, the training view (an index into `cameras`, among
    `train_ids`) whose transform it borrows: `scene.cameras.nearest_views` with the distance
    between centres over `scale` (scene units) plus (1 - cos) of the angle between the optical
    axes, so a view from the same place looking elsewhere is not 'near'."""
    if not train_ids:
        raise SplatfilmError("no training views to borrow an appearance from")
    return [row[0] for row in nearest_views(cameras, train_ids, queries, scale=scale, angle_weight=1.0)]


def write_appearance(path: Path, transforms: torch.Tensor, names: list[str], train_ids: list[int]) -> None:
    """Write per-image transforms [C,3,4] as JSON (atomically): one entry per capture image,
    `matrix` 3x3 and `bias` 3; held-out images carry the transform they borrowed. names: each
    image's `name`, as the asset's cameras file names its frame (`file_path`:
    `io.camera_files.frame_names`), not a path that depends on where the fit ran."""
    t = transforms.detach().cpu().double().numpy()
    trained = set(train_ids)
    doc = {
        "version": APPEARANCE_VERSION,
        "model": "affine",
        "note": "per capture image: colour' = matrix @ colour + bias on the render, RGB in [0,1]; "
                "the .ply is the scene without it",
        "images": [{"name": n, "trained": i in trained, "matrix": np.round(t[i, :, :3], 6).tolist(),
                    "bias": np.round(t[i, :, 3], 6).tolist()} for i, n in enumerate(names)],
    }
    atomic_write(path, [json.dumps(doc, indent=1).encode()])


def read_appearance(path: Path) -> dict[str, torch.Tensor]:
    """The transforms `write_appearance` wrote: capture image name -> [3,4] float32 (matrix | bias).
    Raises SplatfilmError for a file that is not such a document."""
    try:
        doc = json.loads(Path(path).read_text())
        schema_version(doc.get("version"), At(str(path), "version"), APPEARANCE_VERSION)
        out = {}
        for entry in doc["images"]:
            matrix = np.asarray(entry["matrix"], dtype=np.float32).reshape(3, 3)
            bias = np.asarray(entry["bias"], dtype=np.float32).reshape(3, 1)
            out[str(entry["name"])] = torch.from_numpy(np.concatenate([matrix, bias], 1))
    except OSError as e:
        raise SplatfilmError(f"{path}: cannot read ({e.strerror or e})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SplatfilmError(f"{path}: not an appearance file ({type(e).__name__}: {e})") from None
    return out
