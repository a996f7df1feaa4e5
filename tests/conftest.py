"""Fixtures tests in more than one folder use (shared plain helpers are in helpers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import blob_splats, square_splats

from splatfilm.io.gaussian_files import save_gaussians


@pytest.fixture()
def film_dir(tmp_path: Path) -> Path:
    """A wall (red, the plane y = 0) and a blue character, in a tiny film of two shots."""
    save_gaussians(tmp_path / "wall.ply", square_splats([0, 0, 1.0], 2.0, [0.9, 0.1, 0.1], normal_axis=1))
    save_gaussians(tmp_path / "hero.ply", blob_splats([0.1, 0.2, 0.9]))
    (tmp_path / "hero.json").write_text(json.dumps({"kind": "object", "canonical_transform": {
        "rotation": np.eye(3).tolist(), "translation": [0, 0, 0], "scale": 1.0}}))
    script = {
        "title": "tiny", "fps": 24, "resolution": [64, 36], "handles": 1,
        "assets": {"wall": {"file": "wall.ply"},
                   "hero": {"file": "hero.ply", "position": [0, -1.0, 0.5], "look_height": 0.35}},
        "shots": [
            {"name": "sh010", "frames": 6, "camera": {"position": [0, -4, 1.0], "look_at": [0, 0, 1.0]},
             "move": {"type": "dolly", "distance": 0.5}},
            {"name": "sh020", "frames": 5, "hide": ["hero"], "camera": {"position": [1, -3, 1.2], "look_at": [0, 0, 1.0]},
             "move": {"type": "pan", "degrees": 5}},
        ],
    }
    (tmp_path / "film.yaml").write_text(yaml.safe_dump(script, sort_keys=False))
    return tmp_path
