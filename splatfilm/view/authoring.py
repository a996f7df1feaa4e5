"""Keying a shot in the viewer: keys at world times -> a `Shot` -> a shot file or a film's shot.

Keys live on the session's timeline in world seconds. A new shot starts at its first key (its
`time` in a film script) and ends on its last, or runs the duration set for it (written as its
`duration`); a shot file opened in the viewer keeps its own start, length, first frame number,
lens and interpolation, and each key its ease, tension, continuity, bias and focus
(`KeyedShot.for_session`). The shot is written in the syntax of
`cameras/*.yaml` (`shots.shot_yaml.format_shot_yaml`), times on their frames and positions
rounded to 1e-6, read back and checked to be the keyed shot at every frame before it replaces
anything: a new file, a keyed shot file (never a film script or a shot made of moves), or the
film script with the shot appended to its `shots:` as text. A file is kept as FILE.bak the
first time a session writes it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.film.script import FilmShot, shot_names, shot_points
from splatfilm.io.atomic import atomic_write, check_output_file
from splatfilm.io.inputs import read_input, read_text
from splatfilm.io.paths import recorded_path
from splatfilm.scene.cameras import Cameras
from splatfilm.shots.keyframes import Keyframe, KeyframePath
from splatfilm.shots.lens import Lens
from splatfilm.shots.pose import FocusOn
from splatfilm.shots.shot import Shot
from splatfilm.shots.shot_yaml import SHOT_VERSION, format_shot_yaml, keyframe_fields, lens_fields, parse_shot
from splatfilm.shots.timing import FIRST_FRAME, duration_frames, frames_through
from splatfilm.view.session import Session
from splatfilm.yamlfields import load_yaml

# A saved shot must give back the keyed shot's camera at every frame this closely (metres;
# rotation entries; mm).
REPRODUCE_TOLERANCE = 1e-4
# Decimals written for positions (m), angles (deg) and lens lengths: 1e-6, far inside the above.
DIGITS = 6


@dataclass
class KeyedShot:
    """Keys being authored, at world times (seconds), in time order, and the shot they make.

    name: the shot's name; origin: world time of the shot's first frame (None: its first key);
    frame_count: the shot's length in frames as opened or set (`set_duration`; None: it ends on
    its last key; it grows to reach a later key); first_frame: film frame number of its first frame; interpolation:
    the shot's `interpolation:` as written (the path's state: speed, loop, and the tension,
    continuity and bias new keys get); carried: other fields of the file it was opened from,
    written back as they were (`description`, `points`, and `comment`: its opening comment);
    focus: the lens's focus where it is on a subject (`lens: {focus_distance: table}`, a
    `pose.FocusOn`, which the session's `Lens` cannot hold); None: the lens's own."""

    name: str
    keys: list[Keyframe] = field(default_factory=list)
    origin: float | None = None
    frame_count: int | None = None
    first_frame: int = FIRST_FRAME
    interpolation: dict = field(default_factory=dict)
    carried: dict = field(default_factory=dict)
    focus: FocusOn | None = None

    @classmethod
    def for_session(cls, session: Session) -> "KeyedShot":
        """A new shot for a film or a scene (named by `next_shot_name`); a shot file's own shot,
        keys, framing and interpolation, or, for a shot made of moves (which keys cannot
        express), an empty one beside it named NAME_keyed."""
        if session.kind != "shot":
            return cls(next_shot_name(session), first_frame=session.film.first_frame if session.film else FIRST_FRAME)
        fs = session.shots[0]
        shot = fs.shot
        text = read_text(session.path, "shot YAML file")
        raw = load_yaml(text, str(session.path))  # read and checked once already
        length_given = any(k in raw for k in ("duration", "frames", "frame_range"))
        keyed = cls(shot.name, origin=fs.world_start, frame_count=shot.frame_count if length_given else None,
                    first_frame=shot.first_frame)
        if not isinstance(shot.path, KeyframePath):
            keyed.name = f"{shot.name}_keyed"  # a new shot over the same frames; its file says nothing of it
            return keyed
        keyed.keys = [dataclasses.replace(k, time=fs.world_start + k.time) for k in shot.path.keyframes]
        keyed.interpolation = dict(raw.get("interpolation") or {})
        keyed.carried = {k: raw[k] for k in ("description", "points") if k in raw}
        if isinstance(shot.path.focus_distance, FocusOn):
            keyed.focus = shot.path.focus_distance
        head = re.match(r"(?:#[^\n]*\n)+", text)  # the file's opening comment, written back above it
        if head:
            keyed.carried["comment"] = "\n".join(line[1:].removeprefix(" ") for line in head.group(0).splitlines())
        return keyed

    def styled(self, key: Keyframe) -> Keyframe:
        """A new key with the path's tension, continuity and bias (its `interpolation`'s)."""
        return dataclasses.replace(key, **{k: float(self.interpolation.get(k, 0.0))
                                           for k in ("tension", "continuity", "bias")})

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

    def repose(self, index: int, pose: Keyframe, focal_mm: float | None = None) -> None:
        """Move key `index` to the camera `pose` (a key at the viewer's camera): its position and
        orientation (a key given by rotation stays one), and its focal length only when
        `focal_mm` (mm) is given; its time, eases, tension, continuity, bias and focus stay."""
        self._check(index)
        old = self.keys[index]
        if old.look_at is None or pose.look_at is None:
            aim = {"look_at": None, "rotation": pose.orientation(), "roll_deg": 0.0}
        else:
            aim = {"look_at": pose.look_at, "rotation": None, "roll_deg": pose.roll_deg}
        lens = {} if focal_mm is None else {"focal_mm": float(focal_mm)}
        self.keys[index] = dataclasses.replace(old, position=pose.position, **aim, **lens)

    def set_duration(self, seconds: float | None, fps: Fraction) -> None:
        """Make the shot `seconds` long at `fps` (`frame_count`, as a shot file's `duration:`
        counts it: `timing.duration_frames`); None or 0: it ends on its last key. It still
        grows to reach a later key. SplatfilmError for a negative length or one under a frame."""
        if seconds is None or seconds == 0:
            self.frame_count = None
            return
        if not seconds > 0:  # NaN too
            raise SplatfilmError(f"a shot's duration must be > 0 seconds (0: it ends on its last key), got {seconds:g}")
        count = duration_frames(seconds, fps)
        if count < 1:
            raise SplatfilmError(f"{seconds:g} s is shorter than one frame at {fps} fps")
        self.frame_count = count

    def frame_total(self, fps: Fraction) -> int:
        """The shot's frames at `fps`: `frame_count`, or through its last key where that is later
        (as the reader counts a shot that ends on its last key, the key on its last frame);
        with no keys yet, `frame_count` (0 when unset)."""
        if not self.keys:
            return self.frame_count or 0
        return max(self.frame_count or 0, frames_through(self.shot_keys(fps)[-1].time, fps))

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self.keys):
            raise SplatfilmError(f"no key {index + 1} (there are {len(self.keys)})")

    @property
    def start(self) -> float:
        """World time (seconds) of the shot's first frame: its origin, else its first key."""
        if not self.keys:
            raise SplatfilmError("no keys yet: add a key at the viewer's camera first")
        return self.keys[0].time if self.origin is None else self.origin

    def shot_keys(self, fps: Fraction) -> list[Keyframe]:
        """The keys with times from the shot's start (seconds), on the frame they are keyed on
        exactly (world times carry float noise from the timeline's start)."""
        t0 = self.start
        if self.keys[0].time < t0 - 1e-9:
            raise SplatfilmError(f"key 1 at {self.keys[0].time:.3f} s is before the shot's first frame ({t0:.3f} s)")
        return [dataclasses.replace(k, time=tidy_time(max(k.time - t0, 0.0), fps)) for k in self.keys]

    def shot(self, session: Session) -> Shot:
        """The shot these keys make, at the session's rate, size and lens: what is saved."""
        fps, lens = session.fps, session.lens
        keys = self.shot_keys(fps)
        count = self.frame_total(fps)
        loop = bool(self.interpolation.get("loop", False))
        end = float(Fraction(count) / fps)
        focus = lens.focus_distance if self.focus is None else self.focus
        path = KeyframePath(keys, focal_mm=lens.focal_mm, focus_distance=focus, loop=loop,
                            loop_time=end if loop else None, constant_speed=self.interpolation.get("speed") == "constant")
        return Shot(self.name, path, lens, fps, count, self.first_frame, loop)

    def preview(self, session: Session) -> np.ndarray:
        """Camera centres [F,3] at every frame of the keyed shot (the spline to draw)."""
        return self.shot(session).sample().positions

    def key_cameras(self, lens: Lens) -> Cameras:
        """Each key's own camera [K] through `lens`."""
        c2w = np.tile(np.eye(4), (len(self.keys), 1, 1))
        focal = []
        for i, k in enumerate(self.keys):
            c2w[i, :3, :3] = k.orientation()
            c2w[i, :3, 3] = k.position
            focal.append(lens.focal_mm if k.focal_mm is None else k.focal_mm)
        return Cameras.from_c2w_opencv(c2w, lens.K(np.array(focal)), lens.width, lens.height)

    # ---- as YAML ---------------------------------------------------------------------------

    def keyframe_list(self, fps: Fraction) -> list[dict]:
        """The `keyframes:` entries, each with only what the reader would not give it anyway
        (the interpolation's tension, continuity, bias and end eases), rounded to `DIGITS`; a
        look-at on one of the carried `points` by its name."""
        keys = self.shot_keys(fps)
        interp = {k: float(self.interpolation.get(k, 0.0)) for k in ("tension", "continuity", "bias")}
        ease = float(self.interpolation.get("ease", 0.0))
        points = {name: [round(float(v), DIGITS) + 0.0 for v in p] for name, p in (self.carried.get("points") or {}).items()}
        out = []
        for i, k in enumerate(keys):
            defaults = {**interp, "ease_out": ease if i == 0 else 0.0, "ease_in": ease if i == len(keys) - 1 else 0.0}
            entry = keyframe_fields(k, defaults, DIGITS)
            named = next((name for name, p in points.items() if p == entry.get("look_at")), None)
            if named is not None:
                entry["look_at"] = named
            out.append(entry)
        return out

    def file_fields(self, session: Session) -> dict:
        """A standalone shot file's fields (cameras/*.yaml syntax)."""
        fps = session.fps
        out: dict = {"version": SHOT_VERSION, "name": self.name}
        if "description" in self.carried:
            out["description"] = self.carried["description"]
        out["fps"] = int(fps) if fps.denominator == 1 else f"{fps.numerator}/{fps.denominator}"
        out.update(self.length_fields(fps))
        if self.first_frame != FIRST_FRAME:
            out["first_frame"] = self.first_frame
        out["resolution"] = [session.width, session.height]
        out["lens"] = lens_fields(session.lens, self.focus)
        if "points" in self.carried:
            out["points"] = self.carried["points"]
        out["keyframes"] = self.keyframe_list(fps)
        if self.interpolation:
            out["interpolation"] = self.interpolation
        return out

    def length_fields(self, fps: Fraction) -> dict:
        """The shot's length as its file or film entry gives it: `duration` (seconds) where
        its frames at `fps` make a length in whole milliseconds, else `frames`; none where it
        ends on its last key (`frame_count` None), which the reader counts itself."""
        if self.frame_count is None:
            return {}
        count = self.frame_total(fps)
        seconds = Fraction(count) / fps
        if (seconds * 1000).denominator == 1:  # a length in seconds that reads as one
            return {"duration": int(seconds) if seconds.denominator == 1 else float(seconds)}
        return {"frames": count}

    def film_fields(self, fps: Fraction) -> dict:
        """The shot's entry in a film script's `shots:` (the film's rate, size and lens)."""
        out = {"name": self.name, "time": tidy_time(self.start, fps), **self.length_fields(fps),
               "keyframes": self.keyframe_list(fps)}
        if self.interpolation:
            out["interpolation"] = self.interpolation
        return out


def tidy_time(seconds: float, fps: Fraction) -> float:
    """`seconds` on the frame of rate `fps` it is within a millionth of a frame of, exactly
    (frame n at float(n / fps)), else rounded to a nanosecond: 0.9999999999999998 -> 1.0."""
    n = round(seconds * fps)
    if abs(seconds * float(fps) - n) < 1e-6:
        return float(Fraction(n) / fps) + 0.0
    return round(seconds, 9) + 0.0


def check_reproduces(written: Shot, keyed: KeyedShot, session: Session, where: str) -> None:
    """Raise SplatfilmError unless the shot as written (`written`, read back) is the keyed shot
    (`KeyedShot.shot`): the same frames and frame numbers, lens, and camera (position,
    rotation, focal length, focus) at every frame and every key within REPRODUCE_TOLERANCE."""
    want = keyed.shot(session)
    if (written.frame_count, written.first_frame) != (want.frame_count, want.first_frame):
        raise SplatfilmError(f"{where}: the written shot has frames {written.first_frame}-{written.last_frame}, not "
                             f"{want.first_frame}-{want.last_frame}; nothing saved")
    if dataclasses.replace(written.lens, focal_mm=want.lens.focal_mm) != want.lens:
        raise SplatfilmError(f"{where}: the written shot's lens does not read back ({written.lens}); nothing saved")
    times = np.union1d(want.times, [k.time for k in keyed.shot_keys(session.fps)])
    got, ref = written.sample(times), want.sample(times)
    cams_got, cams_ref = got.to_cameras(written.lens), ref.to_cameras(want.lens)
    focus_got, focus_ref = np.nan_to_num(got.focus_distance, nan=-1.0), np.nan_to_num(ref.focus_distance, nan=-1.0)
    error = max(float(np.abs(cams_got.to_c2w_opencv() - cams_ref.to_c2w_opencv()).max()),
                float(np.abs(got.focal_mm - ref.focal_mm).max()), float(np.abs(focus_got - focus_ref).max()))
    if error > REPRODUCE_TOLERANCE:
        raise SplatfilmError(f"{where}: the written shot does not reproduce the keyed one (off by {error:.2g}); "
                             "nothing saved")


def next_shot_name(session: Session) -> str:
    """sh010, sh020, ...: the first such name after the session's shots that is free."""
    taken = {fs.name for fs in session.shots}
    n = (len(session.shots) + 1) * 10
    while f"sh{n:03d}" in taken:
        n += 10
    return f"sh{n:03d}"


def _backup(path: Path, session: Session) -> Path | None:
    """Copy an existing file to FILE.bak the first time `session` writes it (later writes keep
    that copy: the file as it was before the session); None when no copy is made."""
    key = path.resolve()
    if not path.exists() or key in session.backed_up:
        return None
    bak = path.with_name(path.name + ".bak")
    # Atomically: a backup cut short by a full disk would otherwise replace the good one.
    atomic_write(bak, [read_input(path, "file to back up")])
    session.backed_up.add(key)
    return bak


def _check_replaceable(path: Path) -> None:
    """Refuse to write a keyed shot over a file that is not one: a film script, or a shot made
    of moves (a dolly, an orbit: keys cannot say what it did)."""
    if not path.exists():
        return
    try:
        data = load_yaml(read_text(path, "shot YAML file"), str(path))
    except SplatfilmError:
        return  # unreadable as YAML: nothing a shot could lose; it is kept as .bak
    if not isinstance(data, dict):
        return
    what = ("a film script" if {"assets", "shots"} & set(data) else
            "a shot made of moves" if {"move", "moves", "camera"} & set(data) else None)
    if what is not None:
        raise SplatfilmError(f"{path}: is {what}, which a keyed shot would replace; save the keys to a new file")


def save_shot_file(keyed: KeyedShot, session: Session, path: str | Path) -> Path:
    """Write the keyed shot as a shot file at `path`, after checking that the file reads back
    to the keyed shot at every frame (`check_reproduces`). An existing keyed shot file is kept
    as PATH.bak the first time the session saves over it; a film script or a shot made of
    moves is not replaced. Returns the path."""
    path = check_output_file(path)
    _check_replaceable(path)
    fields = keyed.file_fields(session)
    comment = keyed.carried.get("comment")
    if session.kind == "film":
        # An include is relative to the script's folder (film/script.py), with / separators.
        ref = recorded_path(path.resolve(), session.path.parent.resolve())
        start = tidy_time(keyed.start, session.fps)
        comment = (f"Keyed in `splatfilm view {session.path.name}` from world time {start:g} s; "
                   f"in the film: - {{include: {ref}, time: {start!r}}}")
    text = format_shot_yaml(fields, comment=comment)
    shot = parse_shot(load_yaml(text, str(path)), str(path), default_name=path.stem)
    check_reproduces(shot, keyed, session, str(path))
    _backup(path, session)
    atomic_write(path, [text.encode()])
    return path


def _with_entry(text: str, entry: dict, where: str) -> str:
    """`text` (a film script) with `entry` added as the last item of its block `shots:` list,
    as text: every other line, comments included, as it was."""
    lines = text.splitlines(keepends=True)
    top = next((i for i, line in enumerate(lines) if re.match(r"shots\s*:", line)), None)
    if top is None:
        raise SplatfilmError(f"{where}: has no `shots:` to append to")
    rest = lines[top].split(":", 1)[1].strip()
    if rest and not rest.startswith("#"):
        raise SplatfilmError(f"{where}: `shots:` is written on one line; write it as a list, one `- ` a shot, to append to it")
    last, indent = top, None
    for i in range(top + 1, len(lines)):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            continue  # a comment at the margin belongs to what follows it
        if not line[0].isspace() and not line.startswith("-"):
            break  # the next top-level field
        if indent is None and line.lstrip().startswith("-"):
            indent = len(line) - len(line.lstrip())
        last = i
    indent = 2 if indent is None else indent
    body = format_shot_yaml(entry, indent=indent + 2)
    item = " " * indent + "- " + body[indent + 2:]
    head = "".join(lines[:last + 1])
    return head + ("" if head.endswith("\n") else "\n") + item + "".join(lines[last + 1:])


def append_to_film(keyed: KeyedShot, session: Session) -> Path:
    """Append the keyed shot to the film script's `shots:` as text (every other line and
    comment kept), after checking the script then reads as it did plus the shot, which
    reproduces the keyed one at every frame, and that no shot in the script as it is now has
    its name. The script is kept as FILM.yaml.bak the first time the session writes it; the
    shot joins the session's timeline. Returns the script's path."""
    if session.kind != "film" or session.film is None:
        raise SplatfilmError(f"{session.path}: is not a film script; save the shot as a file instead")
    path = session.path
    text = read_text(path, "film script (YAML)")
    data = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise SplatfilmError(f"{path}: is no longer a film script (a mapping of fields); nothing saved")
    if keyed.name in shot_names(data.get("shots"), path.parent):
        raise SplatfilmError(f"{path}: already has a shot called {keyed.name!r}")
    entry = keyed.film_fields(session.fps)
    new = _with_entry(text, entry, str(path))
    back = load_yaml(new, str(path))
    shots = back.get("shots") if isinstance(back, dict) else None
    if not isinstance(shots, list) or {**back, "shots": shots[:-1]} != {**data, "shots": data.get("shots") or []}:
        raise SplatfilmError(f"{path}: the shot could not be added as text without changing the rest; nothing saved")
    # Check the entry as the film will read it: its rate, size, first frame and lens.
    raw = shots[-1]
    defaults = {"fps": back.get("fps", 24), "resolution": [session.width, session.height],
                "first_frame": back.get("first_frame", FIRST_FRAME)}
    if "lens" in back:
        defaults["lens"] = back["lens"]
    shot_fields = {k: v for k, v in raw.items() if k != "time"}
    at = f"shots[{len(shots) - 1}]"
    # The film's points and assets, as its shots name them (a key's look_at, the lens's focus).
    points = shot_points(session.film.points, session.world, entry["time"])
    shot = parse_shot(shot_fields, str(path), at, points=points, defaults=defaults)
    want = keyed
    if keyed.focus is None and isinstance(shot.path.focus_distance, FocusOn):
        # The entry writes no lens: this focus on a subject is the film's `lens:`, which the
        # session's lens (metres) cannot hold; the keys are checked against it as the film reads them.
        want = dataclasses.replace(keyed, focus=shot.path.focus_distance)
    check_reproduces(shot, want, session, str(path))
    if raw.get("time") != entry["time"]:
        raise SplatfilmError(f"{path}: the appended shot's time does not read back; nothing saved")
    _backup(path, session)
    atomic_write(path, [new.encode()])
    # On the timeline as the film has it: its handles (the film's) around the cut.
    handles = int(back.get("handles", 0) or 0)
    rendered = parse_shot(shot_fields, str(path), at, points=points, defaults=defaults, handles=handles).with_handles(handles)
    session.add_shot(FilmShot(rendered, entry["time"] - float(Fraction(handles) / session.fps),
                              list(session.world.assets), handles))
    return path
