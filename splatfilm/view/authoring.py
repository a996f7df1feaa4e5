"""Keying a shot in the viewer: keys at world times -> a `Shot` -> a shot file or a film's shot.

Keys live on the session's timeline in world seconds; the shot they make starts at the first
key (its `time` in a film script) and ends on the last, each key at its time from there. The
shot is written in the syntax of `cameras/*.yaml` (`shots.shot_yaml.format_shot_yaml`), read
back and checked to reproduce every key's camera before it replaces anything: a new file, or
the film script with the shot appended to its `shots:` (the original kept as FILE.bak).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import atomic_write, check_output_file, read_input, read_text
from splatfilm.io.paths import recorded_path
from splatfilm.scene.cameras import Cameras
from splatfilm.shots.keyframes import Keyframe, KeyframePath
from splatfilm.shots.lens import Lens
from splatfilm.shots.shot import Shot
from splatfilm.shots.shot_yaml import SHOT_VERSION, format_shot_yaml, keyframe_fields, parse_shot
from splatfilm.view.session import Session
from splatfilm.yamlfields import load_yaml

# A saved shot must give back each key's camera this closely (metres; rotation entries; mm).
REPRODUCE_TOLERANCE = 1e-4


@dataclass
class KeyedShot:
    """Keys being authored, at world times (seconds), in time order; `name` of the shot."""

    name: str
    keys: list[Keyframe] = field(default_factory=list)

    def add(self, key: Keyframe, half_frame: float) -> int:
        """Insert `key` (its time in world seconds), replacing a key within `half_frame` seconds
        of it; returns its index."""
        for i, k in enumerate(self.keys):
            if abs(k.time - key.time) < half_frame:
                self.keys[i] = key
                return i
        self.keys.append(key)
        self.keys.sort(key=lambda k: k.time)
        return self.keys.index(key)

    def delete(self, index: int) -> None:
        """Remove key `index` (0-based); SplatfilmError when there is no such key."""
        self._check(index)
        del self.keys[index]

    def retime(self, index: int, time: float, half_frame: float) -> int:
        """Move key `index` to world time `time`; refused when another key is there."""
        self._check(index)
        if any(abs(k.time - time) < half_frame for i, k in enumerate(self.keys) if i != index):
            raise SplatfilmError(f"another key is already at {time:.3f} s")
        key = dataclasses.replace(self.keys.pop(index), time=time)
        return self.add(key, half_frame)

    def set_focal(self, index: int, focal_mm: float) -> None:
        """Set key `index`'s focal length (mm); SplatfilmError when there is no such key."""
        self._check(index)
        self.keys[index] = dataclasses.replace(self.keys[index], focal_mm=float(focal_mm))

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self.keys):
            raise SplatfilmError(f"no key {index + 1} (there are {len(self.keys)})")

    @property
    def start(self) -> float:
        """World time (seconds) of the shot's first frame: its first key."""
        if not self.keys:
            raise SplatfilmError("no keys yet: add a key at the viewer's camera first")
        return self.keys[0].time

    def shot_keys(self) -> list[Keyframe]:
        """The keys with times from the shot's start."""
        t0 = self.start
        return [dataclasses.replace(k, time=k.time - t0) for k in self.keys]

    def shot(self, session: Session) -> Shot:
        """The shot these keys make, at the session's rate, size and lens."""
        keys = self.shot_keys()
        end = keys[-1].time
        count = int(round(end * float(session.fps))) + 1
        path = KeyframePath(keys, focal_mm=session.lens.focal_mm, focus_distance=session.lens.focus_distance)
        return Shot(self.name, path, session.lens, session.fps, count)

    def preview(self, session: Session) -> np.ndarray:
        """Camera centres [F,3] at every frame of the keyed shot (the spline to draw)."""
        return self.shot(session).sample().positions

    def key_cameras(self, lens: Lens) -> Cameras:
        """Each key's own camera [K] through `lens` (what the saved shot must reproduce)."""
        c2w = np.tile(np.eye(4), (len(self.keys), 1, 1))
        focal = []
        for i, k in enumerate(self.keys):
            c2w[i, :3, :3] = k.orientation()
            c2w[i, :3, 3] = k.position
            focal.append(lens.focal_mm if k.focal_mm is None else k.focal_mm)
        return Cameras.from_c2w_opencv(c2w, lens.K(np.array(focal)), lens.width, lens.height)

    # ---- as YAML ---------------------------------------------------------------------------

    def file_fields(self, session: Session) -> dict:
        """A standalone shot file's fields (cameras/*.yaml syntax)."""
        lens = session.lens
        lens_fields: dict = {"focal_mm": lens.focal_mm}
        if lens.sensor_width_mm != 36.0:
            lens_fields["sensor_width_mm"] = lens.sensor_width_mm
        fps = session.fps
        return {"version": SHOT_VERSION, "name": self.name,
                "fps": int(fps) if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator}",
                "resolution": [session.width, session.height], "lens": lens_fields,
                "keyframes": [keyframe_fields(k) for k in self.shot_keys()]}

    def film_fields(self) -> dict:
        """The shot's entry in a film script's `shots:` (the film's rate, size and lens)."""
        return {"name": self.name, "time": float(self.start), "keyframes": [keyframe_fields(k) for k in self.shot_keys()]}


def check_reproduces(shot: Shot, keyed: KeyedShot, lens: Lens, where: str) -> None:
    """Raise SplatfilmError unless `shot` gives back every key's camera (position, rotation,
    focal length) within REPRODUCE_TOLERANCE at the key's time."""
    times = np.array([k.time for k in keyed.shot_keys()])
    got = shot.sample(times).to_cameras(shot.lens)
    want = keyed.key_cameras(lens)
    error = max(float(np.abs(got.to_c2w_opencv() - want.to_c2w_opencv()).max()),
                float(np.abs(np.asarray(got.Ks) - np.asarray(want.Ks)).max() / lens.focal_px * lens.focal_mm))
    if error > REPRODUCE_TOLERANCE:
        raise SplatfilmError(f"{where}: the written shot does not reproduce its keys (off by {error:.2g}); nothing saved")


def next_shot_name(session: Session) -> str:
    """sh010, sh020, ...: the first such name after the session's shots that is free."""
    taken = {fs.name for fs in session.shots}
    n = (len(session.shots) + 1) * 10
    while f"sh{n:03d}" in taken:
        n += 10
    return f"sh{n:03d}"


def _backup(path: Path) -> Path | None:
    """Copy an existing file to FILE.bak (replacing an older backup); None when there is no file."""
    if not path.exists():
        return None
    bak = path.with_name(path.name + ".bak")
    # Atomically: a backup cut short by a full disk would otherwise replace the good one.
    atomic_write(bak, [read_input(path, "file to back up")])
    return bak


def save_shot_file(keyed: KeyedShot, session: Session, path: str | Path) -> Path:
    """Write the keyed shot as a shot file at `path` (an existing one is kept as PATH.bak),
    after checking that the file parses back to the keyed cameras. Returns the path."""
    path = check_output_file(path)
    fields = keyed.file_fields(session)
    comment = None
    if session.kind == "film":
        # An include is relative to the script's folder (film/script.py), with / separators.
        ref = recorded_path(path.resolve(), session.path.parent.resolve())
        comment = (f"Keyed in `splatfilm view {session.path.name}` from world time {keyed.start:g} s; "
                   f"in the film: - {{include: {ref}, time: {keyed.start!r}}}")
    text = format_shot_yaml(fields, comment=comment)
    shot = parse_shot(load_yaml(text, str(path)), str(path), default_name=path.stem)
    check_reproduces(shot, keyed, session.lens, str(path))
    _backup(path)
    atomic_write(path, [text.encode()])
    return path


def _shots_is_last(text: str) -> bool:
    """Whether `shots:` is the script's last top-level field (so an entry can be appended as text)."""
    top = [m.group(1) for m in re.finditer(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", text, flags=re.M)]
    return bool(top) and top[-1] == "shots"


def append_to_film(keyed: KeyedShot, session: Session) -> Path:
    """Append the keyed shot to the film script's `shots:` (comments and layout kept when
    `shots:` is its last field; otherwise the script is rewritten from its parsed content),
    after checking the entry parses back to the keyed cameras; the original is kept as
    FILM.yaml.bak. Returns the script's path."""
    if session.kind != "film" or session.film is None:
        raise SplatfilmError(f"{session.path}: is not a film script; save the shot as a file instead")
    path = session.path
    if any(fs.name == keyed.name for fs in session.shots):
        raise SplatfilmError(f"{path}: already has a shot called {keyed.name!r}")
    entry = keyed.film_fields()
    text = read_text(path, "film script (YAML)")
    if _shots_is_last(text):
        body = format_shot_yaml(entry, indent=4)
        new = text.rstrip("\n") + "\n  - " + body[4:]
    else:
        data = load_yaml(text, str(path))
        data["shots"] = list(data.get("shots") or []) + [entry]
        new = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    # Check the entry as the film will read it: its rate, size and lens.
    data = load_yaml(new, str(path))
    raw = data["shots"][-1]
    defaults = {"fps": data.get("fps", 24), "resolution": [session.width, session.height]}
    if "lens" in data:
        defaults["lens"] = data["lens"]
    shot_fields = {k: v for k, v in raw.items() if k != "time"}
    shot = parse_shot(shot_fields, str(path), f"shots[{len(data['shots']) - 1}]", defaults=defaults)
    check_reproduces(shot, keyed, session.lens, str(path))
    if abs(float(raw["time"]) - keyed.start) > 1e-12:
        raise SplatfilmError(f"{path}: the appended shot's time does not read back; nothing saved")
    _backup(path)
    atomic_write(path, [new.encode()])
    return path
