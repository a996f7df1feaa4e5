"""Checkpoints of a resumable training run: the fit's (`fit.trainer`) and the per-scene
refiner's (`refine.scene_refiner`).

A run that draws everything random from (seed, step) through `step_generator` needs no random
state in its checkpoints and replays exactly on resume. A checkpoint is a dict of tensors and
plain values, written by torch.save in one atomic write (a run killed while saving leaves the
previous checkpoint whole) and read back with weights_only=True (a checkpoint is data; unpickling
one must not run code). Each carries `config`, the run's settings as JSON, and `fingerprint`,
what the run trained on; `checkpoint_matches` says whether a run may resume from it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from splatfilm.errors import SplatfilmError, first_line
from splatfilm.io.atomic import atomic_write


def step_generator(seed: int, key: int) -> torch.Generator:
    """A CPU generator that depends only on (seed, key) (a step, or a negative key for an
    epoch's order): what each step sees needs no RNG state in checkpoints and replays exactly on
    resume. Checkpoints written before rely on this mapping staying as it is."""
    return torch.Generator().manual_seed((seed * 1_000_003 + key) % (2**63))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` (tensors, state dicts, numbers, strings) to `path` by torch.save, atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, [buf.getvalue()])


def load_checkpoint(path: Path, what: str = "checkpoint", advice: str = "") -> Any:
    """What `save_checkpoint` wrote to `path`, on the CPU, read with weights_only=True. Raises
    SplatfilmError '{path}: cannot read {what} (the error's first line){advice}' for a file that
    cannot be read or holds more than tensors and plain values."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SplatfilmError(f"{path}: cannot read {what} ({first_line(e)}){advice}") from None


def checkpoint_matches(ckpt: Any, config: dict, fingerprint: Any) -> bool:
    """Whether a run with settings `config` (a dataclass's asdict) on data `fingerprint` may
    resume from `ckpt`: a dict whose `fingerprint` equals it and whose `config` JSON reads back
    equal to `config`."""
    if not isinstance(ckpt, dict) or ckpt.get("fingerprint") != fingerprint:
        return False
    try:
        return json.loads(ckpt.get("config")) == config
    except (TypeError, ValueError):
        return False
