"""The one content digest and the one resumable-job manifest (splatfilm.io.digest, io.manifest)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from splatfilm.io.cache import read_record
from splatfilm.io.digest import array_digest, content_digest, file_digest
from splatfilm.io.manifest import MANIFEST_VERSION, Manifest


def test_content_digest_keeps_the_keys_made_before():
    desc = {"b": [1.5, "x"], "a": {"d": None, "c": True}}
    # The film / render-cameras / collision-mesh form: one JSON part, sorted keys.
    assert content_digest(desc) == hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()
    # The physics form: JSON, then raw bytes.
    pts = np.arange(6.0).reshape(2, 3)
    h = hashlib.sha256(json.dumps(desc, sort_keys=True).encode())
    h.update(pts.tobytes())
    assert content_digest(desc, pts.tobytes()) == h.hexdigest()
    # Arrays hash as their bytes in C order (triangulation's key), without a copy made first.
    rgba = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    h = hashlib.sha256(np.ascontiguousarray(rgba[..., :3]).tobytes())
    h.update(json.dumps(["PINHOLE"]).encode())
    assert content_digest(rgba[..., :3], ["PINHOLE"]) == h.hexdigest()
    # Refine's per-scene refiner key was made without sorted keys.
    parts = ["scene", {"z": 1, "a": 2}]
    assert content_digest(parts, sort_keys=False) == hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    assert content_digest(parts, sort_keys=False) != content_digest(parts)


def test_file_digest_streams_any_algorithm(tmp_path):
    p = tmp_path / "f.bin"
    data = bytes(range(256)) * 9000  # more than one 1 MiB chunk
    p.write_bytes(data)
    assert file_digest(p) == hashlib.sha256(data).hexdigest()
    assert file_digest(p, "sha1") == hashlib.sha1(data).hexdigest()


def test_manifest_keeps_only_unchanged_existing_files(tmp_path):
    png = tmp_path / "a.png"
    m = Manifest(tmp_path / "m.json")
    m.done("a.png", "k1")
    assert not m.is_done("a.png", "k1", [png])  # recorded, but the file is gone
    png.write_bytes(b"x")
    assert m.is_done("a.png", "k1", [png]) and not m.is_done("a.png", "k2", [png])
    assert not m.is_done("b.png", "k1", [])


def test_manifest_saves_every_few_records_and_on_the_way_out(tmp_path):
    path = tmp_path / "m.json"
    with pytest.raises(KeyboardInterrupt):
        with Manifest(path, save_every=3) as m:
            m.section("movies")["x.mp4"] = "d"
            for i in range(4):
                m.done(f"{i}.png", f"k{i}")
                if i == 2:
                    assert set(json.loads(path.read_text())["frames"]) == {"0.png", "1.png", "2.png"}
            raise KeyboardInterrupt
    data = json.loads(path.read_text())
    assert data["version"] == MANIFEST_VERSION and len(data["frames"]) == 4 and data["movies"] == {"x.mp4": "d"}
    again = Manifest.load(path)
    assert again.frames == {f"{i}.png": f"k{i}" for i in range(4)} and again.section("movies") == {"x.mp4": "d"}


def test_manifest_saves_after_every_record_by_default(tmp_path):
    """A killed job (no way out to save on) lost up to 7 finished files' records, made again."""
    path = tmp_path / "m.json"
    m = Manifest.load(path)
    m.done("a.png", "k1")
    assert Manifest.load(path).frames == {"a.png": "k1"}


def test_manifest_is_written_by_the_one_record_writer(tmp_path, monkeypatch):
    """Manifest.save wrote its JSON by hand beside io.cache.write_record. The bytes are the
    same but for write_record's trailing newline; a manifest saved without one still reads."""
    from splatfilm.io import manifest as manifest_module
    from splatfilm.io.cache import write_record

    written = []
    monkeypatch.setattr(manifest_module, "write_record",
                        lambda *a, **kw: written.append(a[0]) or write_record(*a, **kw), raising=False)
    path = tmp_path / "m.json"
    m = Manifest(path, sections={"masters": {"b": "2", "a": "1"}})
    m.done("f.png", "k1")
    m.save()
    assert written == [path, path]  # saved after the record, and by save()
    data = {"frames": {"f.png": "k1"}, "masters": {"a": "1", "b": "2"}, "version": MANIFEST_VERSION}
    assert path.read_bytes() == (json.dumps(data, indent=1) + "\n").encode()
    path.write_bytes(json.dumps(data, indent=1).encode())  # as splatfilm wrote it before
    again = Manifest.load(path)
    assert again.frames == {"f.png": "k1"} and again.section("masters") == {"a": "1", "b": "2"}


def test_manifest_reads_both_version_1_layouts(tmp_path):
    film = tmp_path / "film.json"  # the film's: frames and sections, no version field
    film.write_text(json.dumps({"frames": {"s/s.1001.png": "k"}, "movies": {"s.mp4": "d"}, "refine": {"s": True}}))
    m = Manifest.load(film)
    assert m.frames == {"s/s.1001.png": "k"} and m.section("refine") == {"s": True}
    flat = tmp_path / "render.json"  # render-cameras': frame keys at the top level
    flat.write_text(json.dumps({"frame_00000.png": "k0", "frame_00001.png": "k1"}))
    m = Manifest.load(flat)
    assert m.frames == {"frame_00000.png": "k0", "frame_00001.png": "k1"} and m.sections == {}
    m.save()
    assert json.loads(flat.read_text()) == {"version": MANIFEST_VERSION, "frames": m.frames}


@pytest.mark.parametrize("text", ["{\"frames\": {\"a.png\"", "\xff\xfe", "[1, 2]", "",
                                  json.dumps({"version": MANIFEST_VERSION + 1, "frames": {"a.png": "k"}}),
                                  json.dumps({"version": "2", "frames": {"a.png": "k"}})])
def test_an_unreadable_manifest_is_empty_so_the_work_is_redone(tmp_path, text):
    path = tmp_path / "m.json"
    path.write_bytes(text.encode("latin-1"))
    assert Manifest.load(path).frames == {}
    assert read_record(path) == {} or read_record(path).get("version") is not None


def test_refiner_digest_keeps_its_value_and_skips_checkpoints(tmp_path):
    from splatfilm.refine.loader import refiner_digest

    (tmp_path / "sub").mkdir()
    (tmp_path / "refiner.json").write_text("{}")
    (tmp_path / "sub" / "weights.bin").write_bytes(b"\x01" * 1000)
    # The value as it was first computed (a refined film's frame keys depend on it).
    h = hashlib.sha256()
    for rel in ("refiner.json", "sub/weights.bin"):
        p = tmp_path / rel
        h.update(f"{rel}:{p.stat().st_size}".encode())
        h.update(hashlib.sha256(p.read_bytes()).hexdigest().encode())
    assert refiner_digest(tmp_path) == h.hexdigest()
    (tmp_path / "train.ckpt.pt").write_bytes(b"ckpt")
    assert refiner_digest(tmp_path) == h.hexdigest()
    (tmp_path / "sub" / "weights.bin").write_bytes(b"\x02" * 1000)
    assert refiner_digest(tmp_path) != h.hexdigest()


def test_refiner_digest_reads_big_files_too(tmp_path, monkeypatch):
    """A weight file over 64 MB changed in place, its size and modification time kept (a
    retrained model copied with `cp -p`, an archive's times), was counted by size and time: the
    film kept the frames the old refiner made."""
    import os

    from splatfilm.refine.loader import refiner_digest

    big = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate((64 << 20) + 1)  # sparse: no disk, and quick to read back
    before, stat = refiner_digest(tmp_path), big.stat()
    with open(big, "r+b") as f:
        f.seek(1 << 20)
        f.write(b"\x01")
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert big.stat().st_size == stat.st_size and big.stat().st_mtime_ns == stat.st_mtime_ns
    assert refiner_digest(tmp_path) != before


def test_array_digest_names_dtype_and_shape():
    # The sealed provenance of files already written holds this value: it must not change.
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    h = hashlib.sha256(b"Z|<f4|(2, 3)|" + a.tobytes())
    assert array_digest({"Z": a}) == h.hexdigest()
    assert array_digest({"Z": a}) != array_digest({"Z": a.reshape(3, 2)})
