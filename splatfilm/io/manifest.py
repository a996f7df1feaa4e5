"""Records of finished work, so that a rerun redoes only what changed.

`Manifest`: a resumable job's record in its output folder (`render`, `render-cameras`, SfM's
upright copies of turned photos): per output file, the content key (`io.digest`) of everything
it was made from. A file whose key is unchanged and which exists is kept; anything else is made
again. The record is saved (atomically) after every file and when the job ends, however it
ends, and every output file is written atomically, so an interrupted job, even a killed one,
resumes with nothing done twice.

Anything unreadable -- a missing, truncated or corrupt file, or one a newer splatfilm wrote
-- reads as empty: the job then simply redoes the work, which is always safe. A cached result
with a record of its own is an `io.cache.CacheEntry`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from splatfilm.io.cache import read_record, write_record

# Version 2: {"version": 2, "frames": {file: key}, SECTION: {...}}. Version 1 (no `version`
# field) had the film's layout without the field, and render-cameras' keys at the top level.
MANIFEST_VERSION = 2


class Manifest:
    """Per output file of a job (its path relative to the job's folder, as a str) the content
    key it was made from, and named `sections` for the job's other records (the film keeps
    its movies' keys and the refine gate's verdicts there). Saved every `save_every` records:
    after each by default, since a record lost with a killed job is a file made again (a
    frame: seconds to minutes), a save a small JSON file. Use as a context manager to save
    on the way out, whatever happens inside."""

    def __init__(self, path: str | Path, frames: dict[str, str] | None = None,
                 sections: dict[str, dict] | None = None, save_every: int = 1):
        self.path = Path(path)
        self.frames: dict[str, str] = frames if frames is not None else {}
        self.sections: dict[str, dict] = sections if sections is not None else {}
        self.save_every = save_every
        self._unsaved = 0

    @classmethod
    def load(cls, path: str | Path, save_every: int = 1) -> Manifest:
        """The manifest at `path`; an empty one when it is missing or unreadable (module
        docstring: every frame is then made again)."""
        data = read_record(path)
        version = data.pop("version", 1)
        if not isinstance(version, int) or not 1 <= version <= MANIFEST_VERSION:
            data = {}  # written by a newer splatfilm: its layout is unknown here
        frames = data.pop("frames", {})
        frames = {k: v for k, v in frames.items() if isinstance(v, str)} if isinstance(frames, dict) else {}
        sections = {}
        for name, value in data.items():
            if isinstance(value, dict):
                sections[name] = value
            elif version == 1 and isinstance(value, str):
                frames[name] = value  # render-cameras' version 1: frame keys at the top level
        return cls(path, frames, sections, save_every)

    def is_done(self, name: str, key: str, files: Iterable[Path]) -> bool:
        """True when `name` was made from `key` and every one of its `files` exists."""
        return self.frames.get(name) == key and all(Path(p).exists() for p in files)

    def done(self, name: str, key: str) -> None:
        """Record that `name` was made from `key`; saves every `save_every` records."""
        self.frames[name] = key
        self._unsaved += 1
        if self._unsaved >= self.save_every:
            self.save()

    def section(self, name: str) -> dict:
        """The named section (created empty), kept and saved with the frames."""
        return self.sections.setdefault(name, {})

    def save(self) -> None:
        """Write the manifest (its sections, version and frames) atomically, keys sorted."""
        data = {**self.sections, "version": MANIFEST_VERSION, "frames": self.frames}
        write_record(self.path, data, indent=1, sort_keys=True)
        self._unsaved = 0

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.save()  # every finished file is recorded, also after an interruption or an error
