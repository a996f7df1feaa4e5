"""Content digests: what a cache or a resumable job compares to decide what to redo.

Every content key in splatfilm is made here, so two places that hash the same inputs agree
and a key's value only changes when its inputs do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks. algorithm: any hashlib name
    (sha256; SfM's records keep sha1 so models made before stay reusable)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_digest(*parts, sort_keys: bool = True) -> str:
    """sha256 (hex) of `parts` in order: bytes as they are, numpy arrays as their bytes in C
    order (neither dtype nor shape: `array_digest` holds those), anything else as its JSON text
    (`sort_keys`; objects JSON cannot write as their str()). One part that is a dict or list
    gives sha256(json.dumps(part, sort_keys=True)), the form the film and render manifests,
    the collision mesh and the physics caches were keyed with. sort_keys=False only keeps the
    values of keys first made without it (refine's per-scene refiner)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p))  # one array copied at a time, if at all
        else:
            h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=sort_keys, default=str).encode())
    return h.hexdigest()


def array_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 (hex) of named arrays, in name order: each name, dtype, shape and bytes (C order).
    What a sealed provenance record's `content_sha256` holds for a PNG's or EXR's pixels."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def folder_digest(folder: str | Path, skip_suffixes: tuple[str, ...] = ()) -> str:
    """sha256 (hex) of a folder's files, in the order of their paths relative to it: each
    path, size and `file_digest`. Files whose names end in one of `skip_suffixes` are left out
    (a refiner's training checkpoints). Every byte is read, however big the file (a diffusion
    model's gigabytes take seconds): a file rewritten in place with the same size and time is
    another folder."""
    folder = Path(folder)
    parts = []
    for p in sorted(q for q in folder.rglob("*") if q.is_file() and not q.name.endswith(skip_suffixes)):
        parts.append(f"{p.relative_to(folder)}:{p.stat().st_size}".encode())
        parts.append(file_digest(p).encode())
    return content_digest(*parts)
