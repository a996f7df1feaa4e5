"""Caches: work kept with a JSON record of the content key it was made from, and reused only
while the key is the same.

A key is made of content digests (`io.digest`: the bytes of the input files, arrays and
folders, and the settings), never of names, sizes or modification times: a file rewritten in
place with the same size and time is a new input. docs/CONVENTIONS.md "Caches" lists them.

`CacheEntry`: one cached result, its record and key (`lookup` before the work, `store` after).
`CacheEntry.placed` is the one place that decides where a cache goes: beside its input when
that folder can be written (or already holds it), else under the cache root (`cache_location`:
$SPLATFILM_CACHE, a command's --cache-dir or its output's .splatfilm-cache/, `cache_root_for`),
so a read-only published asset is rendered without writing beside it.
`read_record` / `write_record`: a JSON record, for the records of resumable work too (SfM's
database and mapping runs, io.manifest's `Manifest`).

Anything unreadable -- a missing, truncated or corrupt record, or one of another layout --
reads as empty: the work is then simply done again, which is always safe.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write
from splatfilm.io.digest import content_digest

# The folder caches go to when the folder beside their inputs cannot be written.
CACHE_ENV = "SPLATFILM_CACHE"


def folder_writable(folder: str | Path) -> bool:
    """Whether files can be made in `folder`, or where it would be made (its nearest existing
    parent) when it is not there yet. os.access: a read-only mount refuses it even to root."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)


@contextmanager
def cache_root_for(cache_dir: str | Path | None, default: str | Path) -> Iterator[None]:
    """Within: caches that cannot be written beside their inputs go to `cache_dir` (a command's
    --cache-dir), else to $SPLATFILM_CACHE as set, else to `default` (the command's output
    folder's .splatfilm-cache/). Held in the environment, so the worker processes a render
    spawns (which read the film again) find them too."""
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = os.fspath(Path(cache_dir or before or default).absolute())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = before


def cache_location(path: str | Path) -> Path:
    """Where the cache file `path` (named beside its input, e.g. SCENE.collision.obj) goes when
    its folder cannot be written: the same name under the cache root, in a folder of its own
    per input folder (FOLDER-DIGEST of its absolute path: two sets both called set.ply keep
    apart). SplatfilmError when there is no cache root or it cannot be written either, told
    before the work whose result it would keep."""
    path = Path(path).absolute()
    root = os.environ.get(CACHE_ENV)
    if not root:
        raise SplatfilmError(f"{path.parent}: cannot write the cache {path.name} there (read-only); "
                             f"set {CACHE_ENV} to a folder caches may go to")
    if not folder_writable(root):
        raise SplatfilmError(f"{root}: cannot write caches there (the cache folder, {CACHE_ENV} or --cache-dir)")
    folder = path.parent
    return Path(root) / f"{folder.name}-{content_digest(os.fsencode(folder))[:16]}" / path.name


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
        folder of many results each held whole in its record (a film's .splatfilm-cache/); under
        the cache root where FOLDER cannot be written and holds no such record (`placed`)."""
        return cls(Path(folder) / f"{kind}-{key[:32]}.json", key, indent=None).placed()[0]

    def placed(self, *files: str | Path) -> tuple[CacheEntry, tuple[Path, ...]]:
        """This entry and its result's `files` (kept beside the record) where they are to be
        looked up and stored: as named, beside the input, when that folder can be written or
        already holds this result (a cache published with a read-only asset is still read);
        else under the cache root (`cache_location`). Call it before the work: a cache that
        cannot be written anywhere is told before it is made."""
        files = tuple(Path(f) for f in files)
        if folder_writable(self.path.parent) or self.lookup(*files) is not None:
            return self, files
        moved = [cache_location(f) for f in (self.path, *files)]
        return replace(self, path=moved[0]), tuple(moved[1:])

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
