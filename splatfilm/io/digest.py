"""Content digests: what a cache or a resumable job compares to decide what to redo.

Every content key in splatfilm is made here, so two places that hash the same inputs agree
and a key's value only changes when its inputs do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks. algorithm: any hashlib name
    (sha256; SfM's records keep sha1 so models made before stay reusable)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_digest(*parts, sort_keys: bool = True) -> str:
    """sha256 (hex) of `parts` in order: bytes as they are, anything else as its JSON text
    (`sort_keys`; objects JSON cannot write as their str()). One part that is a dict or list
    gives sha256(json.dumps(part, sort_keys=True)), the form the film and render manifests,
    the collision mesh and the physics caches were keyed with. sort_keys=False only keeps the
    values of keys first made without it (refine's per-scene refiner)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=sort_keys, default=str).encode())
    return h.hexdigest()
