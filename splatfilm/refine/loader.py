"""Refiner folders: which backend a folder holds (`refiner_kind`, `load_refiner`) and its identity
(`refiner_digest`).

Kept apart from the interface (refiner.py) because it imports the backends, which import the
interface.
"""

from __future__ import annotations

from pathlib import Path

import torch

from splatfilm.errors import SplatfilmError
from splatfilm.io.digest import folder_digest
from splatfilm.refine.refiner import Refiner


def refiner_digest(folder: str | Path) -> str:
    """Identity of a refiner folder: the `io.digest.folder_digest` of its files but the
    training checkpoints (*.ckpt.pt), which a finished refiner does not read. Every file's
    bytes count, a diffusion model's gigabytes too: weights replaced in place are a new refiner."""
    return folder_digest(folder, skip_suffixes=(".ckpt.pt",))


def load_refiner(path: str | Path, device: str | torch.device | None = None, prompt: str = "") -> Refiner:
    """A refiner from a local folder: a diffusers pipeline folder (model_index.json) gives a
    `DiffusionRefiner`; a folder written by `SceneRefiner.save` (refiner.json) a `SceneRefiner`.
    device: where the network runs; None takes CUDA when there is one (a diffusion UNet on the
    CPU costs seconds per frame), else the CPU. Inputs may live anywhere. prompt: the text a
    diffusion refiner is conditioned on; a per-scene refiner has none, so a prompt for one
    is a one-line error."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    p = Path(path)
    if refiner_kind(p) == "diffusers":
        from splatfilm.refine.diffusion import DiffusionRefiner

        return DiffusionRefiner.from_folder(p, device=device, prompt=prompt)
    from splatfilm.refine.scene_refiner import SceneRefiner

    if prompt:
        raise SplatfilmError(f"{p}: a per-scene refiner takes no prompt (--refiner-prompt is for a diffusers refiner)")

    return SceneRefiner.load(p, device=device)


def refiner_kind(path: str | Path) -> str:
    """What kind of refiner the local folder `path` holds: "diffusers" (a pipeline with
    model_index.json) or "splatfilm" (written by `splatfilm refine`, with refiner.json); a
    one-line SplatfilmError naming the folder when it is neither. Loads nothing (`load_refiner`
    asks it to choose the loader)."""
    p = Path(path)
    if not p.is_dir():
        raise SplatfilmError(f"{p}: refiner not found (expected a local folder: a diffusers pipeline "
                             "with model_index.json, or one written by `splatfilm refine` with refiner.json)")
    if (p / "model_index.json").exists():
        return "diffusers"
    if (p / "refiner.json").exists():
        return "splatfilm"
    raise SplatfilmError(f"{p}: neither model_index.json (diffusers) nor refiner.json (splatfilm) in this folder")
