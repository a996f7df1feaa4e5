"""Refiner folders: which backend a folder holds (`load_refiner`) and its identity (`refiner_digest`).

Kept apart from the interface (refiner.py) because it imports the backends, which import the
interface.
"""

from __future__ import annotations

from pathlib import Path

import torch

from splatfilm.errors import SplatfilmError
from splatfilm.io.digest import content_digest, file_digest
from splatfilm.refine.refiner import Refiner


def refiner_digest(folder: str | Path) -> str:
    """Identity of a refiner folder: file names, sizes and (for files under 64 MB) contents,
    so retrained weights count as a new refiner without hashing gigabytes of a diffusion
    model (big files count by size and modification time). Training checkpoints are left out."""
    folder = Path(folder)
    parts = []
    for p in sorted(q for q in folder.rglob("*") if q.is_file() and not q.name.endswith(".ckpt.pt")):
        st = p.stat()
        parts.append(f"{p.relative_to(folder)}:{st.st_size}".encode())
        parts.append((file_digest(p) if st.st_size < 64 << 20 else str(st.st_mtime_ns)).encode())
    return content_digest(*parts)


def load_refiner(path: str | Path, device: str | torch.device | None = None) -> Refiner:
    """A refiner from a local folder: a diffusers pipeline folder (model_index.json) gives a
    `DiffusionRefiner`; a folder written by `SceneRefiner.save` (refiner.json) a `SceneRefiner`.
    device: where the network runs; None takes CUDA when there is one (a diffusion UNet on the
    CPU costs seconds per frame), else the CPU. Inputs may live anywhere."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    p = Path(path)
    if not p.is_dir():
        raise SplatfilmError(f"{p}: refiner not found (expected a local folder: a diffusers pipeline "
                             "with model_index.json, or one written by `splatfilm refine` with refiner.json)")
    if (p / "model_index.json").exists():
        from splatfilm.refine.diffusion import DiffusionRefiner

        return DiffusionRefiner.from_folder(p, device=device)
    if (p / "refiner.json").exists():
        from splatfilm.refine.scene_refiner import SceneRefiner

        return SceneRefiner.load(p, device=device)
    raise SplatfilmError(f"{p}: neither model_index.json (diffusers) nor refiner.json (splatfilm) in this folder")
