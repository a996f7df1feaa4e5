"""The one cache record (splatfilm.io.cache) and the folder digest its refiner keys use."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from helpers import read_only
from splatfilm.io.cache import CacheEntry, read_record, write_record
from splatfilm.io.digest import content_digest, folder_digest


def test_records_round_trip_and_missing_reads_empty(tmp_path):
    assert read_record(tmp_path / "none.json") == {}
    write_record(tmp_path / "sub" / "r.json", {"key": "k", "n": [1, 2]}, indent=2)
    assert read_record(tmp_path / "sub" / "r.json") == {"key": "k", "n": [1, 2]}
    assert (tmp_path / "sub" / "r.json").read_text().endswith("}\n")


def test_an_entry_is_found_only_with_its_key_and_its_files(tmp_path):
    result = tmp_path / "points.npz"
    entry = CacheEntry(tmp_path / "work" / "r.json", {"digest": "abc", "seed": 0}, field="inputs")
    assert entry.lookup() is None  # nothing cached yet
    entry.store(points=3)
    # The layout SfM's records always had: the key in its field, then the rest, in order.
    assert (tmp_path / "work" / "r.json").read_text() == \
        json.dumps({"inputs": {"digest": "abc", "seed": 0}, "points": 3}, indent=1) + "\n"
    assert entry.lookup() == {"inputs": {"digest": "abc", "seed": 0}, "points": 3}
    assert entry.lookup(result) is None  # the result kept beside the record is gone
    result.write_bytes(b"x")
    assert entry.lookup(result) is not None
    assert CacheEntry(entry.path, {"digest": "abd", "seed": 0}, field="inputs").lookup(result) is None
    assert CacheEntry(entry.path, entry.key).lookup(result) is None  # the key under another field
    entry.path.write_text('{"inputs": ')  # a record cut short: made again
    assert entry.lookup(result) is None


def test_an_entry_in_a_cache_folder_is_named_by_its_key(tmp_path):
    key = content_digest({"scene_sha256": "0" * 64})
    entry = CacheEntry.in_folder(tmp_path, "physics", key)
    assert entry.path == tmp_path / f"physics-{key[:32]}.json"
    entry.store(motion=[1, 2])
    # One line, as the bakes in .splatfilm-cache/ were always written.
    assert entry.path.read_text() == json.dumps({"key": key, "motion": [1, 2]}) + "\n"
    assert entry.lookup() == {"key": key, "motion": [1, 2]}


def test_folder_digest_counts_names_sizes_and_every_byte(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "sub" / "w.bin").write_bytes(b"\x01" * 1000)
    h = hashlib.sha256()
    for rel in ("a.json", "sub/w.bin"):
        data = (tmp_path / rel).read_bytes()
        h.update(f"{rel}:{len(data)}".encode())
        h.update(hashlib.sha256(data).hexdigest().encode())
    assert folder_digest(tmp_path) == h.hexdigest()
    (tmp_path / "train.ckpt.pt").write_bytes(b"ckpt")
    assert folder_digest(tmp_path, skip_suffixes=(".ckpt.pt",)) == h.hexdigest()
    assert folder_digest(tmp_path) != h.hexdigest()
    (tmp_path / "sub" / "w.bin").write_bytes(b"\x02" * 1000)
    assert folder_digest(tmp_path, skip_suffixes=(".ckpt.pt",)) != h.hexdigest()


def test_a_cache_beside_a_read_only_input_goes_under_the_cache_root(tmp_path, monkeypatch):
    """Caches could only be written beside their inputs: a published set on a read-only mount
    failed after the work (`cannot write: Read-only file system`, after 56 s of meshing)."""
    from splatfilm.errors import SplatfilmError
    from splatfilm.io.cache import CACHE_ENV, cache_location, cache_root_for

    monkeypatch.delenv(CACHE_ENV, raising=False)
    ro, out = tmp_path / "ro", tmp_path / "out"
    ro.mkdir()
    mesh = ro / "set.collision.obj"
    beside = CacheEntry(mesh.with_suffix(".json"), "k1")
    assert beside.placed(mesh) == (beside, (mesh,))  # writable: beside the input, as always
    read_only(monkeypatch, ro)
    # No cache root: told before the work, naming the folder and the way out.
    with pytest.raises(SplatfilmError, match=rf"{ro}: cannot write the cache set.collision.json there.*{CACHE_ENV}"):
        beside.placed(mesh)
    with cache_root_for(None, out / ".splatfilm-cache"):
        entry, (moved,) = beside.placed(mesh)
        assert moved == cache_location(mesh) and entry.path == moved.with_suffix(".json")
        assert (out / ".splatfilm-cache") in moved.parents and moved.name == "set.collision.obj"
        moved.parent.mkdir(parents=True)
        moved.write_text("mesh")
        entry.store(n=1)
        again, files = beside.placed(mesh)
        assert again.lookup(*files) == {"key": "k1", "n": 1}  # found there next time
        # A film's cache folder beside a read-only script: its records go there too.
        keyed = CacheEntry.in_folder(ro / ".splatfilm-cache", "physics", "ab" * 32)
        assert (out / ".splatfilm-cache") in keyed.path.parents
    assert CACHE_ENV not in os.environ  # the root was the command's alone
    # --cache-dir over $SPLATFILM_CACHE over the output's folder.
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    with cache_root_for(None, out):
        assert (tmp_path / "env") in cache_location(mesh).parents
    with cache_root_for(tmp_path / "given", out):
        assert (tmp_path / "given") in cache_location(mesh).parents
    assert os.environ[CACHE_ENV] == str(tmp_path / "env")
    # A root that cannot be written either: told at once.
    read_only(monkeypatch, ro, tmp_path / "env")
    with pytest.raises(SplatfilmError, match=rf"{tmp_path / 'env'}: cannot write caches there"):
        beside.placed(mesh)


def test_a_cache_already_beside_a_read_only_input_is_still_read(tmp_path, monkeypatch):
    """A cache published with the asset (its collision mesh, made where it was writable) is
    used in place, not made again under the cache root."""
    from splatfilm.io.cache import CACHE_ENV

    monkeypatch.delenv(CACHE_ENV, raising=False)  # no root needed: nothing is written
    mesh = tmp_path / "set.collision.obj"
    entry = CacheEntry(mesh.with_suffix(".json"), "k1")
    mesh.write_text("mesh")
    entry.store()
    read_only(monkeypatch, tmp_path)
    assert entry.placed(mesh) == (entry, (mesh,))
