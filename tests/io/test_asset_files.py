"""Where each file beside an asset lives (`io.asset_files`): one home for every such path."""

from __future__ import annotations

from pathlib import Path

from splatfilm.io.asset_files import (appearance_path, capture_cameras_path, capture_masks_path, collision_mesh_path,
                                      rig_path, scene_mesh_cache_path, sidecar_path)


def test_every_file_beside_an_asset_is_named_from_its_stem():
    hero = Path("set/hero.v2.ply")
    named = {f(hero).name for f in (sidecar_path, capture_cameras_path, capture_masks_path, rig_path,
                                     appearance_path, collision_mesh_path, scene_mesh_cache_path)}
    assert named == {"hero.v2.json", "hero.v2.cameras.json", "hero.v2.masks.npz", "hero.v2.rig.npz",
                     "hero.v2.appearance.json", "hero.v2.collision.obj", "hero.v2.mesh.npz"}
    assert {f(hero).parent for f in (sidecar_path, rig_path, collision_mesh_path)} == {Path("set")}


def test_each_moved_name_has_one_home():
    """No re-exports: sidecar.py keeps the schema; what it, rig_files, meshing, world and
    camera_models used to define is defined only in its new home (an import to use it is not a
    second definition)."""
    import importlib

    homes = {
        "splatfilm.io.asset_files": ["sidecar_path", "check_beside_free", "capture_cameras_path", "read_capture_masks",
                                     "carry_capture_cameras", "rig_path", "collision_mesh_path",
                                     "scene_mesh_cache_path", "appearance_path"],
        "splatfilm.assets.asset_frame": ["robust_bounds", "estimate_up", "canonical_transform", "origin_offset_for",
                                         "cameras_in_asset_frame", "asset_up", "sidecar_up"],
        "splatfilm.assets.ground": ["upright_frame"],
        "splatfilm.assets.visual_hull": ["hull_votes"],
    }
    old = [importlib.import_module(m) for m in ("splatfilm.assets.sidecar", "splatfilm.io.rig_files",
                                                 "splatfilm.assets.meshing", "splatfilm.film.world",
                                                 "splatfilm.render.camera_models")]
    for home, names in homes.items():
        for name in names:
            assert getattr(importlib.import_module(home), name).__module__ == home, name
            for module in old:
                assert getattr(getattr(module, name, None), "__module__", None) != module.__name__, (module, name)
