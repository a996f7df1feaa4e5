"""A film's cameras as one asset sees them: what `splatfilm refine --shots FILM.yaml` refines toward."""

from __future__ import annotations

from pathlib import Path

from splatfilm.errors import SplatfilmError
from splatfilm.film.script import Film
from splatfilm.scene.cameras import Cameras


def film_cameras_for_asset(film: Film, scene_path: str | Path) -> Cameras:
    """Every frame's camera of every shot of `film` that sees the asset stored at
    `scene_path`, moved into that file's own frame (the frame its Gaussians are in), in shot
    and frame order."""
    scene_path = Path(scene_path).resolve()
    names = [n for n, a in film.world.assets.items() if a.source and Path(a.source).resolve() == scene_path]
    if not names:
        raise SplatfilmError(f"{film.path}: no asset of this film is {scene_path} (its assets: "
                             f"{', '.join(str(a.source) for a in film.world.assets.values())})")
    asset = film.world.assets[names[0]]
    out = []
    for fs in film.shots:
        if names[0] not in fs.visible:
            continue
        cams = fs.shot.cameras()
        for i in range(len(cams)):
            tf = asset.world_transform(fs.world_start + float(fs.shot.times[i]))
            R, t, s = tf.rotation, tf.translation, tf.scale
            # World -> asset frame is the inverse similarity.
            out.append(cams[i].transformed(R.T, -(R.T @ t) / s, 1.0 / s))
    if not out:
        raise SplatfilmError(f"{film.path}: no shot sees {names[0]}")
    return Cameras.concat(out)
