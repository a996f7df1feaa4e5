"""Atomic writes (splatfilm.io.atomic): a file appears whole or not at all."""

from __future__ import annotations

import os

import pytest

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_path, atomic_write


def test_atomic_path_replaces_on_success_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "sub" / "clip.mp4"
    with atomic_path(target) as tmp:
        assert tmp.name == "clip.mp4" and tmp.parent.parent == target.parent  # a writer sees the real name
        assert not target.exists()
        tmp.write_bytes(b"new")
        (tmp.parent / "clip.mtl").write_text("a side file")
    assert target.read_bytes() == b"new"
    assert os.listdir(target.parent) == ["clip.mp4"]
    assert target.stat().st_mode & 0o644 == 0o644 or os.name == "nt"


def test_atomic_path_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "a.exr"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="encoder"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("encoder failed")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.exr"]


def test_two_writers_of_one_file_do_not_share_a_temporary_one(tmp_path):
    target = tmp_path / "set.collision.obj"
    with atomic_path(target) as first:
        first.write_text("first")
        with atomic_path(target) as second:
            assert second != first
            second.write_text("second")
        assert first.read_text() == "first"
    assert target.read_text() == "first" and os.listdir(tmp_path) == ["set.collision.obj"]


def test_atomic_path_writes_a_folder(tmp_path):
    target = tmp_path / "model"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "images.bin").write_bytes(b"x")
    assert (target / "images.bin").read_bytes() == b"x" and os.listdir(tmp_path) == ["model"]


def test_atomic_path_errors_are_one_line(tmp_path):
    (tmp_path / "taken").write_text("a file where a folder should be")
    with pytest.raises(SplatfilmError, match=r"taken is a file, not a folder"):
        with atomic_path(tmp_path / "taken" / "a.png") as tmp:
            tmp.write_bytes(b"x")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(SplatfilmError, match=r"dir\.mp4: cannot write: it is a folder, not a file"):
        with atomic_path(tmp_path / "dir.mp4") as tmp:
            tmp.write_bytes(b"x")
    with pytest.raises(SplatfilmError, match=r"dir\.mp4: cannot write: it is a folder"):
        atomic_write(tmp_path / "dir.mp4", [b"x"])
    assert sorted(os.listdir(tmp_path)) == ["dir.mp4", "taken"]


def test_an_error_of_another_file_inside_is_not_blamed_on_the_output(tmp_path):
    """An input missing inside `atomic_path` (ffmpeg's binary, a source image) read as
    'OUT: cannot write: No such file or directory'."""
    target = tmp_path / "out.mp4"
    with pytest.raises(FileNotFoundError) as e:
        with atomic_path(target):
            open(tmp_path / "missing_input.png", "rb")
    assert e.value.filename == str(tmp_path / "missing_input.png")
    with pytest.raises(SplatfilmError, match=r"out.mp4: cannot write"):  # the writer's own file: still the output
        with atomic_path(target) as tmp:
            raise OSError(28, "No space left on device", str(tmp))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_folder_written_through_atomic_path_replaces_an_old_folder(tmp_path):
    target = tmp_path / "model"
    (target).mkdir()
    (target / "old.bin").write_bytes(b"old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.bin").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_an_upright_copy_that_cannot_be_written_names_the_copy(tmp_path, monkeypatch):
    from PIL import Image

    from splatfilm.io.photos import write_upright

    src = tmp_path / "src.jpg"
    Image.new("RGB", (8, 4)).save(src)

    def full(self, fp, *args, **kwargs):
        raise OSError(28, "No space left on device", str(fp))

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(SplatfilmError) as e:
        write_upright(src, tmp_path / "up" / "src.jpg")
    assert str(e.value).startswith(f"{tmp_path / 'up' / 'src.jpg'}: cannot write: No space left"), str(e.value)


def test_a_folder_that_cannot_be_moved_into_place_leaves_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "snapshot"
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    real, failed = os.replace, []

    def second_fails(src, dst):  # the new folder's move into place, once
        if str(dst) == str(target) and not failed:
            failed.append(src)
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(SplatfilmError, match="cannot write"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "new.bin").write_bytes(b"new")
    monkeypatch.undo()
    assert sorted(p.name for p in target.iterdir()) == ["old.bin"] and os.listdir(tmp_path) == ["snapshot"]
