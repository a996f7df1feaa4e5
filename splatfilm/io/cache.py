"""Caches: work kept with a JSON record of the content key it was made from, and reused only
while the key is the same.

A key is made of content digests (`io.digest`: the bytes of the input files, arrays and
folders, and the settings), never of names, sizes or modification times: a file rewritten in
place with the same size and time is a new input. docs/CONVENTIONS.md "Caches" lists them.

`CacheEntry`: one cached result, its record and key (`lookup` before the work, `store` after).
`read_record` / `write_record`: a JSON record, for the records of resumable work too (SfM's
database and mapping runs, io.manifest's `Manifest`).

Anything unreadable -- a missing, truncated or corrupt record, or one of another layout --
reads as empty: the work is then simply done again, which is always safe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splatfilm.io.atomic import atomic_write


def read_record(path: str | Path) -> dict:
    """The JSON object stored in `path`; {} when there is none or it cannot be read (the
    cached work is then redone)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):  # ValueError: corrupt JSON or bytes that are not UTF-8
        return {}
    return data if isinstance(data, dict) else {}


def write_record(path: str | Path, record: dict, indent: int | None = 1, sort_keys: bool = False) -> None:
    """Write `record` as JSON (one trailing newline), atomically."""
    atomic_write(Path(path), [(json.dumps(record, indent=indent, sort_keys=sort_keys) + "\n").encode()])


@dataclass(frozen=True)
class CacheEntry:
    """A result cached under `key`, with its record (a JSON object) at `path`.

    key: the content key of everything the result is made from, a digest
    (`io.digest.content_digest`) or a JSON object of digests and settings. The record holds it
    in `field` ("key"; SfM's records: "inputs"), beside what else `store` is given: the whole
    result when it is small (a bake), or notes on one kept in files beside it. indent: the
    record's JSON indent.
    """

    path: Path
    key: Any
    field: str = "key"
    indent: int | None = 1

    @classmethod
    def in_folder(cls, folder: str | Path, kind: str, key: str) -> CacheEntry:
        """The entry FOLDER/KIND-KEY.json (the digest `key`'s first 32 hex digits), for a cache
        folder of many results each held whole in its record (a film's .splatfilm-cache/)."""
        return cls(Path(folder) / f"{kind}-{key[:32]}.json", key, indent=None)

    def lookup(self, *files: str | Path) -> dict | None:
        """The record when it was made from `key` and every one of `files` (the result, where it
        is kept beside the record) exists; None when the result has to be made (again)."""
        if not all(Path(f).exists() for f in files):
            return None
        record = read_record(self.path)
        return record if record.get(self.field) == self.key else None

    def store(self, **fields: Any) -> None:
        """Record, atomically, that the result was made from `key`, with `fields` (JSON values).
        Write the result's own files first: a record names only finished work."""
        write_record(self.path, {self.field: self.key, **fields}, indent=self.indent)
