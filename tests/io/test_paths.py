"""Paths as written files record them: relative to the file's folder, on the paths as written."""

from __future__ import annotations

import os

from splatfilm.io import paths
from splatfilm.io.paths import recorded_path, relative_path


def test_relative_path_keeps_symlinked_folders_and_slashes(tmp_path, monkeypatch):
    real = tmp_path / "real"
    (real / "shots").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "shots").symlink_to(real / "shots")
    # Through the link, as written: resolving it would name the real folder instead.
    assert relative_path(tmp_path / "out" / "shots" / "a.png", tmp_path / "out") == "shots/a.png"
    assert relative_path(real / "x.ply", tmp_path / "out" / "deep") == "../../real/x.ply"
    monkeypatch.chdir(tmp_path)
    assert relative_path("real/x.ply", "out") == "../real/x.ply"  # relative inputs: from the current folder
    assert relative_path(os.fspath(tmp_path / "out"), tmp_path / "out") == "."


def test_recorded_path_falls_back_to_the_absolute_path_where_none_is_relative(tmp_path, monkeypatch):
    """The one home of "relative, else absolute" (sidecars, USD stages, the viewer's include)."""
    assert recorded_path(tmp_path / "a" / "x.ply", tmp_path / "b") == "../a/x.ply"
    monkeypatch.setattr(paths.os.path, "relpath", lambda *a: (_ for _ in ()).throw(ValueError("another drive")))
    assert recorded_path(tmp_path / "a" / "x.ply", tmp_path / "b") == (tmp_path / "a" / "x.ply").as_posix()
