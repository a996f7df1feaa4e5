"""What the viewer shows, without a browser: the world, its shots, and a timeline over them.

A session is opened on a film script, a Gaussian scene or a shot file (`open_session`), which
is read and validated in full first, so bad input fails with the one-line error before any
server starts. Its timeline runs over world time in frames of the film's rate: frame n is at
`start + n / fps` seconds. Assets that neither move nor perform are the static set, composed
once; the others are composed per time, each as `splatfilm render` composes it (placement,
walk, physics, pose, contact shadow), with the camera of the shot that shows that time for the
ones that look at the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.film.script import Film, FilmShot, find_shot, is_film_script
from splatfilm.film.world import World
from splatfilm.io.gaussian_files import GAUSSIAN_READ_EXTENSIONS, GAUSSIAN_READ_TYPES
from splatfilm.scene.cameras import Cameras
from splatfilm.scene.gaussians import Gaussians
from splatfilm.shots.lens import Lens
from splatfilm.shots.shot import Shot

SCENE_SUFFIXES = GAUSSIAN_READ_EXTENSIONS  # every file `render` reads
SHOT_SUFFIXES = (".yaml", ".yml")
# A scene alone gets this much timeline to key a shot over (seconds), at these settings.
SCENE_TIMELINE_S = 10.0
SCENE_FPS = Fraction(24)
SCENE_RESOLUTION = (1920, 1080)


@dataclass
class Session:
    """A world and its shots on one timeline.

    path: the file opened; kind: "film", "scene" or "shot"; film: the parsed film (kind
    "film"), else None; world: the assets; shots: the film's shots (a shot file's one shot;
    none for a scene); fps: the timeline's rate; width, height: the image size of new shots;
    lens: the lens new shots get (the film's default lens); background: RGB in [0, 1];
    start, end: the timeline's world-time range in seconds; notes: the film's warnings
    (checks.film_notes), as `render` says them (notes: `report.note`); backed_up: the files this
    session has saved over, each kept as FILE.bak the first time (later saves keep that copy)."""

    path: Path
    kind: str
    film: Film | None
    world: World
    shots: list[FilmShot]
    fps: Fraction
    width: int
    height: int
    lens: Lens
    background: tuple[float, float, float]
    start: float
    end: float
    notes: list[str] = field(default_factory=list)
    moving: list[str] = field(default_factory=list, init=False)
    static: list[str] = field(default_factory=list, init=False)
    backed_up: set[Path] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.moving, self.static = [], []
        for name, asset in self.world.assets.items():
            (self.moving if asset.motion is not None or asset.performance is not None else self.static).append(name)

    # ---- the timeline ----------------------------------------------------------------------

    @property
    def frame_count(self) -> int:
        """Frames on the timeline (its last frame is at or just after `end`)."""
        return max(1, int(math.ceil((self.end - self.start) * self.fps - 1e-9)) + 1)

    def time_of(self, frame: int) -> float:
        """World time (seconds) of timeline frame `frame` (clamped to the timeline)."""
        frame = min(max(int(frame), 0), self.frame_count - 1)
        return self.start + float(Fraction(frame) / self.fps)

    def frame_of(self, time: float) -> int:
        """The timeline frame nearest world time `time` (clamped)."""
        return min(max(int(round((time - self.start) * float(self.fps))), 0), self.frame_count - 1)

    def marks(self) -> list[tuple[int, str]]:
        """Timeline frames where the shots' cuts start, with the shots' names."""
        return [(self.frame_of(fs.cut_start), fs.name) for fs in self.shots]

    def shot_at(self, time: float, prefer: str | None = None) -> FilmShot | None:
        """The shot the film shows at world time `time`: the one whose cut holds it, else one
        whose handles do; `prefer` (a shot name) wins when it holds the time at all."""
        half = 0.5 / float(self.fps)
        holding = [fs for fs in self.shots
                   if fs.world_start - half <= time < fs.world_start + float(fs.shot.duration) - half]
        for fs in holding:
            if fs.name == prefer:
                return fs
        for fs in holding:
            if fs.cut_start - half <= time < fs.cut_end - half:
                return fs
        return holding[0] if holding else None

    def add_shot(self, fs: FilmShot) -> None:
        """Put a shot made in this session (appended to the film) on the timeline, which grows
        to hold it."""
        self.shots = [*self.shots, fs]  # a new list: a copy of this session keeps its own
        self.extend_to(fs.world_start + float(Fraction(fs.shot.frame_count - 1) / fs.shot.fps))

    def extend_to(self, time: float) -> None:
        """Grow the timeline's end to world time `time` (seconds) where it ends before it (a
        keyed shot made longer than the timeline: a scene's is SCENE_TIMELINE_S, a shot
        file's its shot)."""
        self.end = max(self.end, float(time))

    def shot_named(self, name: str) -> FilmShot:
        """The shot called `name` (`film.script.find_shot`)."""
        return find_shot(self.shots, name, self.path)

    @staticmethod
    def shot_frame(fs: FilmShot, time: float) -> int:
        """Frame index within shot `fs` nearest world time `time` (clamped to its frames)."""
        i = int(round((time - fs.world_start) * float(fs.shot.fps)))
        return min(max(i, 0), fs.shot.frame_count - 1)

    def label(self, time: float, prefer: str | None = None) -> str:
        """What the timeline shows at `time`: world time, and the shot and film frame number there."""
        fs = self.shot_at(time, prefer)
        text = f"t = {time:.3f} s"
        if fs is not None:
            i = self.shot_frame(fs, time)
            in_cut = fs.cut_in <= fs.shot.first_frame + i < fs.cut_in + fs.cut_frames
            text += f" · {fs.name} frame {fs.shot.first_frame + i}" + ("" if in_cut else " (handle)")
        return text

    def shot_camera(self, fs: FilmShot, time: float) -> Cameras:
        """Shot `fs`'s camera [1] at its frame nearest world time `time`, through its lens."""
        i = self.shot_frame(fs, time)
        return fs.shot.sample(np.array([fs.shot.times[i]])).to_cameras(fs.shot.lens)

    def eye(self, time: float, prefer: str | None = None) -> np.ndarray | None:
        """The camera centre [3] of the shot at `time`, for assets that look at the camera."""
        fs = self.shot_at(time, prefer)
        return None if fs is None else self.shot_camera(fs, time).centers[0]

    # ---- the world at a time ---------------------------------------------------------------

    def static_gaussians(self) -> Gaussians:
        """Every asset that stands still, in world coordinates (sent to the browser once)."""
        return self.world.compose(0.0, self.static) if self.static else Gaussians.empty()

    def moving_gaussians(self, time: float, eye: np.ndarray | None = None) -> dict[str, Gaussians]:
        """Each moving or performing asset at world time `time`, in world coordinates, with its
        contact shadow; eye [3]: the camera centre for assets that look at it."""
        return {name: self.world.compose(time, [name], eye) for name in self.moving}

    def capture_cameras(self) -> dict[str, Cameras]:
        """Per asset with recorded capture cameras (ASSET.cameras.json), those cameras in the
        world, placed with the asset at time 0."""
        from splatfilm.io.asset_files import read_capture_cameras

        out = {}
        for name, asset in self.world.assets.items():
            if not asset.source:
                continue
            try:
                cams = read_capture_cameras(asset.source)
            except SplatfilmError:
                continue  # an unreadable side file costs the frustums, not the session
            if cams is None or len(cams) == 0:
                continue
            tf = asset.world_transform(0.0)
            out[name] = cams.transformed(tf.rotation, tf.translation, tf.scale)
        return out

    def ground_planes(self) -> dict:
        """The ground planes (assets.ground.GroundPlane, world frame) of the assets others stand
        on (a film's `on_ground`), and of any asset whose sidecar records one."""
        from splatfilm.assets.ground import read_ground
        from splatfilm.film.script import ground_plane

        named = set()
        if self.film is not None:
            for raw in (self.film.raw.get("assets") or {}).values():
                if isinstance(raw, dict) and isinstance(raw.get("on_ground"), str):
                    named.add(raw["on_ground"])
        out = {}
        for name in self.static:
            asset = self.world.assets[name]
            try:
                if name in named:
                    out[name] = ground_plane(asset)
                else:
                    plane = read_ground(asset.source) if asset.source else None
                    if plane is not None:
                        out[name] = plane.transformed(asset.world_transform(0.0))
            except SplatfilmError:
                continue
        return out


def _film_lens(film: Film) -> Lens:
    """The lens a new shot of `film` gets: the film's default (`lens:`), at its resolution."""
    from splatfilm.shots.shot_yaml import parse_shot

    defaults = {"fps": film.raw.get("fps", 24), "resolution": [film.width, film.height]}
    lens = film.raw.get("lens")
    if isinstance(lens, dict) and isinstance(lens.get("focus_distance"), (str, list)):
        # Focus on a subject (a point, an asset) is each shot's to follow, which a Lens (metres)
        # cannot hold, and the probe has none of the film's points to name.
        lens = {k: v for k, v in lens.items() if k != "focus_distance"}
    if lens is not None:
        defaults["lens"] = lens
    probe = {"frames": 1, "camera": {"position": [0, 0, 0], "look_at": [0, 1, 0]}}
    return parse_shot(probe, str(film.path), "lens", defaults=defaults).lens


def _session_of_film(path: Path) -> Session:
    from splatfilm.film.checks import film_notes
    from splatfilm.film.script import parse_film

    film = parse_film(path)
    start = min([0.0] + [fs.world_start for fs in film.shots])
    end = max(fs.world_start + float(Fraction(fs.shot.frame_count - 1) / fs.shot.fps) for fs in film.shots)
    return Session(path, "film", film, film.world, list(film.shots), film.fps, film.width, film.height,
                   _film_lens(film), film.background, start, max(end, start), film_notes(film))


def _scene_world(scene: Path) -> World:
    from splatfilm.film.world import load_asset
    from splatfilm.scene.transforms import Similarity

    if not scene.exists():
        raise SplatfilmError(f"{scene}: no such file")
    if scene.suffix.lower() not in SCENE_SUFFIXES:
        raise SplatfilmError(f"{scene}: expected a Gaussian scene ({GAUSSIAN_READ_TYPES})")
    # Shown where a film script places it unmoved: a scene as stored (its frame is the film
    # world's), an object (a sidecar with a canonical transform: a mesh import, an object
    # capture) in its canonical frame, Z up, base on z = 0, as `canonical: true` defaults to.
    asset = load_asset(scene.stem, scene, Similarity())
    return World({scene.stem: asset})


def _session_of_scene(path: Path) -> Session:
    width, height = SCENE_RESOLUTION
    return Session(path, "scene", None, _scene_world(path), [], SCENE_FPS, width, height,
                   Lens(width=width, height=height), (0.0, 0.0, 0.0), 0.0, SCENE_TIMELINE_S)


def _session_of_shot(path: Path, scene: Path | None) -> Session:
    from splatfilm.shots.shot_yaml import load_shot

    shot: Shot = load_shot(path)
    world = _scene_world(scene) if scene is not None else World({})
    fs = FilmShot(shot, 0.0, list(world.assets), 0)
    end = float(Fraction(shot.frame_count - 1) / shot.fps)
    return Session(path, "shot", None, world, [fs], shot.fps, shot.lens.width, shot.lens.height, shot.lens,
                   (0.0, 0.0, 0.0), 0.0, max(end, SCENE_TIMELINE_S if shot.frame_count == 1 else end))


def open_session(path: str | Path, scene: str | Path | None = None) -> Session:
    """Read and validate what `splatfilm view` was given: a film script (FILM.yaml), a shot
    file (SHOT.yaml; `scene` a .ply to see it in) or a Gaussian scene (GAUSSIAN_READ_TYPES). Raises
    SplatfilmError naming the file and what is wrong."""
    path = Path(path)
    if not path.exists():
        raise SplatfilmError(f"{path}: no such file")
    if path.is_dir():
        raise SplatfilmError(f"{path}: is a folder; expected a film script, a shot file or a scene "
                              f"({GAUSSIAN_READ_TYPES})")
    suffix = path.suffix.lower()
    if suffix in SCENE_SUFFIXES:
        if scene is not None:
            raise SplatfilmError(f"{path}: --scene goes with a shot file, not a scene")
        return _session_of_scene(path)
    if suffix not in SHOT_SUFFIXES:
        raise SplatfilmError(f"{path}: expected a film script or shot file (.yaml) or a scene ({GAUSSIAN_READ_TYPES})")
    if is_film_script(path):
        if scene is not None:
            raise SplatfilmError(f"{path}: a film script names its own assets; --scene goes with a shot file")
        return _session_of_film(path)
    return _session_of_shot(path, Path(scene) if scene is not None else None)
