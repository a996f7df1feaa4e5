"""The one cache record (splatfilm.io.cache) and the folder digest its refiner keys use."""

from __future__ import annotations

import hashlib
import json

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
