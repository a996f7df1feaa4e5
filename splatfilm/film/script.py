"""Film scripts (FILM.yaml): a world of placed assets and a list of shots, validated up front.

    version: 1                         # schema version (default 1)
    title: demo                        # default: the file's stem
    fps: 24                            # exact: 24, 25, 30, "24000/1001", "29.97 DF" (drop-frame timecode)
    record_start: "01:00:00:00"        # the cut's first record timecode (EDL, .otio, cut movies; ";" drop-frame)
    resolution: [640, 360]
    first_frame: 1001                  # each shot's first rendered frame (a shot's frame_range is its cut's)
    handles: 0                         # extra frames rendered before and after every shot's cut
    background: [0, 0, 0]
    sh_degree: 3                       # default: what the assets store
    crf: 18                            # H.264 quality
    lens: 35mm                         # default lens of every shot (shot syntax)
    points: {table: [0, 0, 0.75]}      # named points for shots
    origin_offset: [500000, 4100000, 0]   # the point of the captures' world at the film's origin,
                                       # for assets placed by their origin_offset (below; default:
                                       # the first such asset's offset)
    effects:
      motion_blur: {shutter_deg: 180, samples: 5}   # samples: auto, from each frame's screen motion
      depth_of_field: true             # from each shot's lens f_stop and focus_distance
    assets:
      set: {file: set.ply}             # paths relative to the script
      hero:
        file: hero.ply
        canonical: true                # default: when the sidecar has a canonical transform
        position: [1, -0.5, 0]         # where the canonical frame goes in the world (Z up, m)
        yaw: 30                        # degrees about +z
        scale: 1.0
        look_height: 1.5               # shots that name `hero` aim this high above its base
        rasterize_mode: antialiased    # gsplat's classic or antialiased (default: as the asset was
                                       # trained: its sidecar, or an .spz's flag); per asset in one frame
        clean: true                    # floaters out: Gaussians fewer than 2 capture views show (assets.cleanup)
        edits: [{op: delete, sphere: {center: [..], radius: 0.3}}]   # applied at load (assets.edits);
                                       # a rigged asset's rig drops the rows clean and edits delete
        animation: {keyframes: [{time: 0, position: [..], yaw: 0, scale: 1}, ...]}   # or frame: 1001; ease
        # or walk: {points: [[..], [..]], speed: 0.8, start: 0, turn_rate: 180}   # deg/s at most
        # or physics: {drop_from: [..] | position + velocity, mass, friction, restitution, ...}
        collide: true                  # the film's simulated bodies hit its hull, standing or moving
                                       # (default for objects and moving assets; false: they pass
                                       # through it; a standing scene, not a body's set: false)
        on_ground: set                 # stand on that asset's ground plane (placement and walk z)
        shadow: true                   # a soft contact shadow on the surface under it: that ground,
                                       # the set's table top or a colliding prop's top it stands on
                                       # (default for objects; without on_ground: the first asset's);
                                       # false, or {opacity: 0.5, radius: metres} (film.shadow)
      street:
        file: street.ply               # fitted centred from a georeferenced capture (its sidecar's
                                       # frame.origin_offset): it stands where that capture puts it
                                       # beside the other such assets, moved by its offset less the
                                       # film's `origin_offset` before its own placement
        origin_offset: false           # opt out: placed by its own fields alone, centred as stored
      walker:                          # a rigged asset (WALKER.rig.npz beside it: import-mesh of a skinned glTF)
        file: walker.ply
        on_ground: set
        walk: {points: [[-2, 0, 0], [2, 0, 0]], speed: 1.2, start: 1.0}
        clips:                         # what it plays, in order of start (film.performance)
          - {clip: idle, start: 0}     # start: world seconds; speed: 1; loop: true
          - {clip: walk, start: 1.0, crossfade: 0.3}   # fades in from the clip before over 0.3 s
          - {clip: idle, start: 4.3, crossfade: 0.5, loop: false}
        # With `walk:`, a clip whose planted feet slide (a walk cycle made in place) plays at
        # the ground's pace: (metres walked) / stride cycles, so its feet do not skate. The
        # stride (world metres per cycle) is measured from the feet (the ends of ik.legs,
        # else joints named *foot*/*ankle*): their median speed while down times the clip's
        # duration; or give it: {clip: walk, stride: 1.4}. Such a clip takes no `speed`.
        # A clip whose hips carry it a stride a cycle (root motion) has that travel locked
        # out along a walk (root_motion: lock|keep); a walk cycle after another starts at
        # its phase (sync: true|false); offset: seconds into a clip to start at.
        ik:                            # feet on the ground: two-bone IK per leg [hip, knee, foot]
          legs: [[thigh_l, shin_l, foot_l], [thigh_r, shin_r, foot_r]]
          ground: set                  # whose ground plane (default: on_ground); a slope works
          align_feet: true             # tilt the feet with the slope (default)
        look_at: {joint: head, target: camera, limit: 60}   # target: [x, y, z], an asset, or
                                       # camera (each frame's shot camera); limit: degrees (default 60)
        skinning: lbs                  # or dqs (dual quaternions)
    shots:
      - name: sh010
        time: 0                        # world time of the first cut frame (default: after the last shot)
        assets: [set, hero]            # visible ones (default: all); or hide: [hero]
        handles: 8                     # 8 more frames at each end; the cut stays 3 s
        duration: 3                    # ... and the rest of a shot (see shots.shot_yaml), where any
        move: {type: dolly, ...}       # point may name an asset (a moving target if it moves),
                                       # a focus_distance too: focus follows it (shots.shot_yaml)
      - include: shots/sh020.yaml      # a shot file (as `splatfilm path` reads it); here it
        hide: [crate]                  # takes only time, assets, hide and handles

Errors name the file, the field path and the problem: `film.yaml: assets.hero.yaw: ...`.

Assets fitted (or imported) centred from captures far from the origin (a georeferenced site in
UTM or ECEF: their sidecars' frame.origin_offset, x_capture = x_asset + origin_offset) line
up as their captures do. The film world is the captures' world moved by -anchor, the anchor
being the script's `origin_offset`, else the first such asset's offset (that asset stays as
stored); each other such asset is moved by (its offset - anchor), in float64, before its own
position, yaw, scale or motion, and a shot that names it aims above its own origin so moved.
An object placed by its canonical frame, and one with `origin_offset: false`, is not moved.
Camera paths and points stay in film-world coordinates: a camera in the capture's UTM
coordinates is given less the anchor (a round `origin_offset` makes that easy). `Film.notes`
says, in one line, when assets are so placed.

A performing asset is posed per frame: the clip schedule, then IK (a foot goes as far above
the ground plane as its rest height above the soles, plus what the clip lifts it; the
pelvis lowers when a leg cannot reach), then the look-at (the joint turns from the clip's
pose by at most `limit`). Before the first clip starts, it holds that clip's first pose; a
clip that does not loop holds its last. A frame's content key covers the joint transforms,
not the script's clip list, so editing a clip re-renders only the frames whose pose changes.
What is only worth a warning (a walker's clips out of step with its walk, a jump at a cut,
a simulation that ends in the air) is told by film.checks (`film_notes`), which `render`,
`path preview` and `view` print.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from splatfilm.assets.cleanup import CleanupSettings, cached_supported, capture_cameras_of, parse_cleanup
from splatfilm.assets.edits import edit_gaussians, parse_edits
from splatfilm.errors import SplatfilmError
from splatfilm.io.inputs import read_text
from splatfilm.io.digest import content_digest
from splatfilm.io.gaussian_files import GAUSSIAN_READ_TYPES, USD_EXTENSIONS
from splatfilm.io.spz import SPZ_AXES, SPZ_DEFAULT_AXES
from splatfilm.render import RASTERIZE_MODES, rasterize_mode_key
from splatfilm.shots.shot import Shot
from splatfilm.shots.shot_yaml import key_ease, key_time, parse_shot
from splatfilm.shots.timing import (FIRST_FRAME, default_record_start, frame_timecode, parse_fps, timecode_day,
                                    timecode_frame)
from splatfilm.film.performance import PERFORMANCE_FIELDS, parse_performance
from splatfilm.film.shadow import ContactShadow, set_surface
from splatfilm.film.world import DEFAULT_TURN_RATE, Asset, KeyedMotion, PathWalk, World, load_asset
from splatfilm.scene.cameras import vector_text
from splatfilm.scene.sh import MAX_SH_DEGREE
from splatfilm.scene.transforms import WORLD_UP, Similarity, heading_about, yaw_rotation
from splatfilm.yamlfields import At, integer, load_yaml, mapping, number, schema_version, show, vec3

if TYPE_CHECKING:
    from splatfilm.assets.ground import GroundPlane
    from splatfilm.film.physics import BakedMotion, PhysicsSpec
    from splatfilm.scene.cameras import Cameras
    from splatfilm.scene.gaussians import Gaussians

# Film scripts carry `version: 1`; a script without one is version 1 (yamlfields.schema_version).
FILM_VERSION = 1
_TOP = {"version", "title", "fps", "record_start", "resolution", "first_frame", "handles", "background", "sh_degree",
        "crf", "lens", "points", "origin_offset", "effects", "assets", "shots"}
_ASSET = {"file", "canonical", "upright", "position", "yaw", "scale", "look_height", "animation", "walk", "edits",
          "on_ground", "physics", "clean", "shadow", "rasterize_mode", "origin_offset", "prim",
          "spz_axes", "collide"} | PERFORMANCE_FIELDS
_SHOT_FILM = {"time", "assets", "hide", "handles"}
_EFFECTS = {"motion_blur", "depth_of_field"}
# Notes on placement: a fitted scene whose up leans more than TILT_NOTE degrees off +z is
# shown tilted; a position's z further than ON_GROUND_NOTE metres from the ground that
# on_ground stands it on was meant for something else (a table top).
TILT_NOTE = 10.0
ON_GROUND_NOTE = 0.01


@dataclass
class FilmShot:
    """A shot of the film: its camera path (`shot`, every rendered frame, handles included),
    the world time of its first rendered frame (`world_start` seconds), which assets it sees,
    and its handles (frames at each end outside the cut)."""

    shot: Shot
    world_start: float
    visible: list[str]
    handles: int

    @property
    def name(self) -> str:
        return self.shot.name

    @property
    def cut_in(self) -> int:
        """Frame number of the shot's first frame in the cut (its head handle comes before):
        the start of its clip's source range in the edit (.otio, .edl, the cut's movies)."""
        return self.shot.first_frame + self.handles

    @property
    def cut_frames(self) -> int:
        """How many frames the shot gives the cut, from `cut_in`: its rendered frames less both
        handles; the duration of its clip's source range."""
        return self.shot.frame_count - 2 * self.handles

    @property
    def cut_start(self) -> float:
        """World time (seconds) of the shot's first frame in the cut (frame `cut_in`)."""
        return self.world_start + self.shot.time_of_frame(self.cut_in)

    @property
    def cut_end(self) -> float:
        """World time (seconds) just after the shot's last frame in the cut."""
        return self.cut_start + float(Fraction(self.cut_frames) / self.shot.fps)


@dataclass
class Film:
    """A parsed, validated film script. record_start: the frame number (at `fps`) of the
    cut's first frame on the record side (the EDL's record column, the .otio's
    global_start_time, the cut movies' timecode tracks); the shots' own frames keep theirs.
    notes: what `render` and `path preview` say after "note: " about how the script was read
    (assets placed by their origin_offset: `origin_note`). points: the script's named `points`
    [3] (metres, film world); `shot_points` adds its assets for a shot."""

    path: Path
    title: str
    fps: Fraction
    width: int
    height: int
    first_frame: int
    background: tuple[float, float, float]
    sh_degree: int | None
    crf: int
    world: World
    shots: list[FilmShot]
    record_start: int
    motion_blur: dict | None = None
    depth_of_field: bool = False
    raw: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    points: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def pixel_aspect(self) -> float:
        """The frames' pixel aspect ratio (width / height of a pixel as shown): the shots'
        anamorphic squeeze, which every shot of a film shares (1 for spherical lenses)."""
        return self.shots[0].shot.lens.squeeze


def _rgb(value: Any, at: At) -> tuple[float, float, float]:
    v = vec3(value, at)
    if not np.all((v >= 0) & (v <= 1)):
        at.fail(f"colour values must be in [0, 1], got {show(value)}")
    return tuple(float(x) for x in v)  # type: ignore[return-value]


# Fields of a camera key that an asset key does not take, and why (an unknown field's error
# lists what it does take).
_CAMERA_KEY_ONLY = {name: "asset keys move on Catmull-Rom curves; tension, continuity and bias shape a camera's "
                          "(Kochanek-Bartels) keys only" for name in ("tension", "continuity", "bias")}


def _motion(data: dict, at: At, base: Similarity, fps: Fraction, frame_zero: int) -> KeyedMotion | PathWalk | None:
    """An asset's `animation` or `walk` (None: neither), its keys' unset fields carried over
    from `base` (its placement). frame_zero: the film frame number at world time 0, the cut's
    first frame as the film numbers a shot that starts then: an animation key's `frame: N` is
    world time (N - frame_zero) / fps, as a first shot's camera key counts it."""
    if "animation" in data and "walk" in data:
        at.fail("give `animation` or `walk`, not both")
    if "animation" in data:
        a_at = at["animation"]
        anim = mapping(data["animation"], a_at, {"keyframes"})
        keys = anim.get("keyframes")
        if not isinstance(keys, list) or not keys:
            a_at["keyframes"].fail("expected a non-empty list of {time | frame, position, yaw, scale, ease}")
        times, pos, yaws, scales, ease_in, ease_out = [], [], [], [], [], []
        base_yaw = heading_about(base.rotation[:, 0], WORLD_UP)
        for i, raw in enumerate(keys):
            k_at = a_at["keyframes"][i]
            if isinstance(raw, dict):
                for name in raw:
                    if name in _CAMERA_KEY_ONLY:
                        k_at[name].fail(_CAMERA_KEY_ONLY[name])
            k = mapping(raw, k_at, {"time", "frame", "position", "yaw", "scale", "ease", "ease_in", "ease_out"})
            t, field = key_time(k, k_at, fps, frame_zero, world=True)
            if times and not t > times[-1]:
                k_at[field].fail(f"is not after keyframes[{i - 1}] ({times[-1]:g} s)")
            times.append(t)
            pos.append(vec3(k["position"], k_at["position"]) if "position" in k else (pos[-1] if pos else base.translation))
            yaws.append(number(k["yaw"], k_at["yaw"]) if "yaw" in k else (yaws[-1] if yaws else base_yaw))
            scales.append(number(k["scale"], k_at["scale"], "positive") if "scale" in k else (scales[-1] if scales else base.scale))
            e_in, e_out = key_ease(k, k_at)
            ease_in.append(e_in)
            ease_out.append(e_out)
        return KeyedMotion(np.array(times), np.array(pos), np.array(yaws), np.array(scales), np.array(ease_in),
                           np.array(ease_out))
    if "walk" in data:
        w_at = at["walk"]
        w = mapping(data["walk"], w_at, {"points", "speed", "start", "turn_rate"})
        pts = w.get("points")
        if not isinstance(pts, list) or len(pts) < 2:
            w_at["points"].fail("expected at least two points [x, y, z]")
        points = np.array([vec3(p, w_at["points"][i]) for i, p in enumerate(pts)])
        if np.linalg.norm(np.diff(points, axis=0), axis=1).min() < 1e-6:
            w_at["points"].fail("two consecutive points coincide")
        speed = number(w.get("speed", 1.0), w_at["speed"], "positive")
        turn_rate = number(w.get("turn_rate", DEFAULT_TURN_RATE), w_at["turn_rate"], "positive")
        return PathWalk(points, speed, number(w.get("start", 0.0), w_at["start"]), base.scale, turn_rate)
    return None


class _Deferred:
    """Work on a film's assets that waits until its shots are checked, as a physics bake does
    (physics.PendingBake): an asset's `clean` (its capture's views rendered, half a minute cold
    for the bundled set) and what reads the cleaned Gaussians after it (its edits, the contact
    shadows lying on it), so a typo in a shot is told at once. Each asset's steps run in the
    order given, once; `run` does them at once for what needs that asset's Gaussians first (a
    ground plane estimated from them, a bake)."""

    def __init__(self) -> None:
        self._steps: dict[str, list[Callable[[], None]]] = {}
        self._last: list[Callable[[], None]] = []

    def add(self, name: str, step: Callable[[], None]) -> None:
        """Let `step` wait, after whatever waits for asset `name` already."""
        self._steps.setdefault(name, []).append(step)

    def then(self, name: str, step: Callable[[], None]) -> None:
        """`step` after asset `name`'s waiting work: now when none waits."""
        if name in self._steps:
            self.add(name, step)
        else:
            step()

    def run(self, name: str) -> None:
        """Asset `name`'s waiting work, now (nothing when none waits)."""
        for step in self._steps.pop(name, []):
            step()

    def after_all(self, step: Callable[[], None]) -> None:
        """Let `step` wait until every asset's waiting work is done (`run_all`)."""
        self._last.append(step)

    def run_all(self) -> None:
        """Every asset's waiting work, in script order, then what waits for all of it."""
        for name in list(self._steps):
            self.run(name)
        last, self._last = self._last, []
        for step in last:
            step()


def _clean(asset: Asset, cleanup: CleanupSettings, cameras: Cameras, cache: Path, at: At, file_sha256: str) -> None:
    """Take the floaters out of `asset` (assets.cleanup, `cleanup` its settings) against its
    capture's `cameras`, counted once and cached in `cache` (keyed with `file_sha256`, its
    file's digest); errors name its `clean` field (`at`). A rigged asset's rig rows follow
    (Asset.kept)."""
    try:
        keep = cached_supported(asset.source, asset.gaussians, cleanup, cache, cameras=cameras,
                                scene_sha256=file_sha256, rasterize_mode=asset.rasterize_mode)
    except SplatfilmError as e:
        at.fail(str(e))
    _keep(asset, asset.gaussians.select(torch.nonzero(keep).reshape(-1)), keep.cpu().numpy())


def _edit(asset: Asset, edits: list, to_world: Similarity) -> None:
    """Apply `edits` (assets.edits) to `asset`'s Gaussians, a world-frame selection through `to_world`."""
    # edit_gaussians' errors name the script and the edit's field path already.
    _keep(asset, *edit_gaussians(asset.gaussians, edits, to_world))


def _keep(asset: Asset, gaussians: Gaussians, kept: np.ndarray) -> None:
    """Give `asset` `gaussians`: those of its current ones that `kept` (bool) marks, in order,
    noting which of its file's they are (Asset.kept), for its rig's rows."""
    asset.gaussians = gaussians
    if asset.kept is None:
        asset.kept = kept
    else:
        asset.kept = asset.kept.copy()
        asset.kept[asset.kept] = kept


def _lay_shadow(asset: Asset, scene: Asset) -> None:
    """Lay `asset`'s contact shadow on the raised surfaces of `scene` as the film shows it
    (its Gaussians cleaned and edited, where it stands at time 0)."""
    asset.shadow = dataclasses.replace(asset.shadow, surface=set_surface(scene.gaussians, scene.world_transform(0.0)))


def ground_plane(scene: Asset) -> GroundPlane:
    """The world-frame ground plane of a scene asset (where it stands at time 0): from its
    sidecar (`splatfilm ground`), else estimated now from its Gaussians (SplatfilmError if
    none is found)."""
    from splatfilm.assets.ground import estimate_ground, read_ground
    from splatfilm.assets.asset_frame import sidecar_up

    plane = read_ground(scene.source)
    if plane is None:
        plane = estimate_ground(scene.gaussians, sidecar_up(scene.source))
    return plane.transformed(scene.world_transform(0.0))


def _ground_of(scene: Asset, at: At, deferred: _Deferred):
    """`ground_plane`, failing at `at` with the fix when none is recorded and none is found;
    one estimated from the Gaussians has the scene's waiting work (`deferred`: its clean) done first."""
    from splatfilm.assets.ground import read_ground

    if read_ground(scene.source) is not None:
        return ground_plane(scene)
    deferred.run(scene.name)
    try:
        return ground_plane(scene)
    except SplatfilmError as e:
        at.fail(f"no ground plane for {scene.name!r} ({e}); run splatfilm ground {scene.source}")


def _shadow(data: dict, at: At, asset: Asset, ground) -> ContactShadow | None:
    """An asset's contact shadow (film.shadow): by default for objects (characters, props: a
    sidecar `kind: object`) standing on a ground plane, off for scenes; `shadow:` says otherwise.
    `ground`: the plane of its `on_ground` asset, or when it has none and asks for a shadow, of
    the film's first asset (its z kept: a cup on a table prop). It lies on the ground plane only
    until `_lay_shadow` gives it the set's surfaces and `_Bodies.lay_shadows` the props' hulls."""
    from splatfilm.assets.sidecar import Sidecar
    from splatfilm.assets.asset_frame import robust_bounds

    value = data.get("shadow")
    s_at = at["shadow"]
    if value is False:
        return None
    if value is not None and value is not True and not isinstance(value, dict):
        s_at.fail(f"expected true, false or {{opacity, radius}}, got {show(value)}")
    if ground is None:
        if value is not None:
            s_at.fail("a contact shadow lies on a ground plane: give the asset `on_ground` (or list its set first)")
        return None
    if value is None:
        sidecar = Sidecar.of_asset(asset.source)
        if sidecar is None or sidecar.get("kind") != "object":
            return None  # a scene (a set) casts none by default
    options = mapping(value, s_at, {"opacity", "radius"}) if isinstance(value, dict) else {}
    opacity = number(options.get("opacity", 0.5), s_at["opacity"], "positive")
    if opacity >= 1:
        s_at["opacity"].fail(f"must be below 1, got {opacity:g}")
    if "radius" in options:
        radius = number(options["radius"], s_at["radius"], "positive")
    else:  # the footprint: a third of the asset's wider side, at its scale in the world
        lo, hi = robust_bounds(asset.local.transform_gaussians(asset.gaussians))
        radius = max(0.35 * float(max(hi[0] - lo[0], hi[1] - lo[1])) * asset.place_at(0.0).scale, 1e-3)
    return ContactShadow(ground, radius, opacity)


def _perform(asset: Asset, data: dict, at: At, earlier: dict[str, Asset], names: list[str],
             deferred: _Deferred) -> None:
    """Give a rigged asset its clips, IK and look-at (film.performance); its digest then
    covers its rig file too. deferred: the earlier assets' waiting work (a ground plane
    estimated from one's Gaussians has it done first)."""
    from splatfilm.io.digest import file_digest
    from splatfilm.io.asset_files import rig_path

    def ground_of(ref: Any, g_at: At):
        if ref not in earlier:
            g_at.fail(f"expected the name of an asset listed before this one, got {show(ref)}")
        return _ground_of(earlier[ref], g_at, deferred)

    walks = isinstance(asset.motion, PathWalk)
    scale = asset.motion.scale if walks else asset.placement.scale
    deferred.run(asset.name)  # its clean and edits first: the rig binds the Gaussians they leave
    asset.performance = parse_performance(data, at, asset.name, Path(asset.source), asset.gaussians, asset.local,
                                          scale, asset.motion.stepping if walks else None, ground_of,
                                          [str(n) for n in names], asset.motion.stride_scale if walks else None,
                                          kept=asset.kept)
    asset.digest = content_digest((asset.digest + file_digest(rig_path(asset.source))).encode())


def _world_extent(asset: Asset) -> float:
    """The longest side (film metres) of the bounds of an asset's opaque Gaussians where it stands at time 0."""
    from splatfilm.assets.asset_frame import robust_bounds

    means = asset.world_transform(0.0).apply(asset.gaussians.means.detach().cpu().double().numpy())
    lo, hi = robust_bounds(asset.gaussians, means=means)
    return float(np.max(hi - lo))


def _stored_scene_note(asset: Asset, first: Asset, source: str, scaled: bool, cropped: bool) -> list[str]:
    """The note (one line, in a list; none when it stands fine) on a fitted scene (sidecar
    `kind: scene`) placed in a film beside its first asset (the set) without `upright`, a
    canonical frame or a georeference (frame.origin_offset) to place it: shown in its
    capture's frame, it leans as that capture's up leans (more than TILT_NOTE degrees off +z),
    may span more than the whole set (a tabletop around the prop wanted; not judged when
    `cropped` by a keep edit, applied later), and is in SfM units when its sidecar's
    scale_to_metres is unknown."""
    from splatfilm.assets.sidecar import Sidecar
    from splatfilm.assets.asset_frame import asset_up

    sidecar = Sidecar.of_asset(asset.source)
    # One turned by its canonical frame is not shown as stored (an origin_offset's move or a scale to metres is).
    if sidecar is None or sidecar.get("kind") != "scene" or not np.allclose(asset.local.rotation, np.eye(3)):
        return []
    up = asset.world_transform(0.0).rotation @ asset_up(asset.source)
    tilt = float(np.degrees(np.arccos(np.clip(up[2], -1.0, 1.0))))
    extent, set_extent = _world_extent(asset), _world_extent(first)
    unknown = sidecar.frame.get("scale_to_metres") is None and not scaled
    wrong = []
    if tilt > TILT_NOTE:
        wrong.append(f"its up is {tilt:.0f} deg off the film's +z")
    if extent > set_extent and not cropped:
        wrong.append(f"it spans {extent:.2f} m, more than {first.name!r} ({set_extent:.2f} m)")
    if not wrong and not unknown:
        return []
    if unknown:
        wrong.append("its scale to metres is unknown (its size is its capture's SfM units; `splatfilm ground "
                     f"{asset.source} --camera-height METRES` measures it)")
    note = (f"{source}: assets.{asset.name}: a fitted scene placed as its capture stored it: {'; '.join(wrong)}. "
            f"Give it `upright: true` (its ground plane on z = 0, its up +z), `scale:` to size it, and "
            f"`edits: [{{op: keep, box: ...}}]` to crop it to the part wanted")
    return [note]


def _assets(value: Any, at: At, folder: Path, deferred: _Deferred, fps: Fraction, frame_zero: int,
            anchor: np.ndarray | None = None, notes: list[str] | None = None) -> World:
    """The film's world: its assets loaded, placed and checked; what would be slow (cleaning and
    what reads the cleaned Gaussians, bakes) is left in `deferred` and PendingBakes. anchor:
    the script's `origin_offset` [3] (None: the first asset's that has one; module docstring).
    notes: where to add the notes on how assets were placed (`Film.notes`). fps, frame_zero:
    how animation keys' `frame:` count (`_motion`)."""
    from splatfilm.assets.ground import ground_height

    if not isinstance(value, dict) or not value:
        at.fail("expected a mapping of asset names to {file, ...} (at least one asset)")
    notes = [] if notes is None else notes
    assets: dict[str, Asset] = {}
    bodies = _Bodies(assets, folder, deferred)
    for name, raw in value.items():
        a_at = at[str(name)]
        data = mapping(raw, a_at, _ASSET)
        if "file" not in data or not isinstance(data["file"], str):
            a_at["file"].fail(f"missing: the asset's {GAUSSIAN_READ_TYPES} file, relative to the script")
        path = (folder / data["file"]).resolve()
        if not path.exists():
            a_at["file"].fail(f"{path}: no such file")
        pos = vec3(data["position"], a_at["position"]) if "position" in data else np.zeros(3)
        yaw = number(data.get("yaw", 0.0), a_at["yaw"])
        scale = number(data.get("scale", 1.0), a_at["scale"], "positive")
        ground = None
        if "on_ground" in data:
            ref = data["on_ground"]
            if ref not in assets:
                a_at["on_ground"].fail(f"expected the name of an asset listed before this one, got {show(ref)}")
            ground = _ground_of(assets[ref], a_at["on_ground"], deferred)
            height = float(ground_height(ground, pos[0], pos[1]))
            if "position" in data and abs(pos[2] - height) > ON_GROUND_NOTE:
                notes.append(f"{at.source}: assets.{name}.position: z {pos[2]:g} is replaced by {ref}'s ground "
                             f"height there, {height:.3f} (on_ground); to stand it on a raised surface (a table "
                             f"top), drop on_ground and keep the z")
            pos[2] = height
        placement = Similarity(yaw_rotation(yaw), pos, scale)
        kinds = [k for k in ("animation", "walk", "physics") if k in data]
        if len(kinds) > 1:
            a_at.fail(f"give one of animation, walk or physics, not {' and '.join(kinds)}")
        motion = _motion(data, a_at, placement, fps, frame_zero)
        if ground is not None and isinstance(motion, PathWalk):
            motion.points[:, 2] = ground_height(ground, motion.points[:, 0], motion.points[:, 1])
            motion.__post_init__()  # the curve follows the snapped points
        elif ground is not None and isinstance(motion, KeyedMotion):
            motion.positions[:, 2] = ground_height(ground, motion.positions[:, 0], motion.positions[:, 1])
            motion.__post_init__()
        canonical = data.get("canonical")
        if canonical is not None and not isinstance(canonical, bool):
            a_at["canonical"].fail(f"expected true or false, got {show(canonical)}")
        upright = data.get("upright", False)
        if not isinstance(upright, bool):
            a_at["upright"].fail(f"expected true or false, got {show(upright)}")
        look = number(data["look_height"], a_at["look_height"]) if "look_height" in data else None
        mode = data.get("rasterize_mode")
        if mode is not None and mode not in RASTERIZE_MODES:
            a_at["rasterize_mode"].fail(f"expected classic or antialiased, got {show(mode)}")
        edits = parse_edits(data["edits"], a_at["edits"]) if "edits" in data else []
        cleanup = parse_cleanup(data.get("clean"), a_at["clean"])
        cameras = None
        if cleanup is not None:
            try:  # read now: a missing or broken camera file is told with the script's other errors
                cameras = capture_cameras_of(path)
            except SplatfilmError as e:
                a_at["clean"].fail(str(e))
        by_offset = data.get("origin_offset", True)
        if not isinstance(by_offset, bool):
            a_at["origin_offset"].fail(f"expected true or false (false: not placed by its sidecar's "
                                       f"frame.origin_offset), got {show(by_offset)}")
        prim = data.get("prim")
        if prim is not None and (not isinstance(prim, str) or path.suffix.lower() not in USD_EXTENSIONS):
            a_at["prim"].fail(f"expected the path of a splat prim in the asset's USD file ({'/'.join(USD_EXTENSIONS)}), "
                              f"got {show(prim)} for {path.name}")
        spz_axes = data.get("spz_axes", SPZ_DEFAULT_AXES)
        if spz_axes not in SPZ_AXES or (spz_axes != SPZ_DEFAULT_AXES and path.suffix.lower() != ".spz"):
            a_at["spz_axes"].fail(f"expected {' or '.join(SPZ_AXES)} for an .spz file, got {show(spz_axes)} "
                                  f"for {path.name}")
        try:
            asset = load_asset(str(name), path, placement, motion, canonical, look, mode, prim, spz_axes, upright)
        except SplatfilmError as e:
            a_at.fail(str(e))
        if not by_offset:
            asset.origin_offset = None
        if asset.origin_offset is not None:
            # Before anything reads where it stands: a later asset's ground, its own edits and shadow.
            anchor = asset.origin_offset if anchor is None else anchor
            asset.align_to(anchor)
        elif assets and not upright:  # one placed by its capture's georeference stands where it should
            notes += _stored_scene_note(asset, next(iter(assets.values())), at.source, "scale" in data,
                                        any(e.op == "keep" for e in edits))
        # A shadow asked for without on_ground (a cup keyed onto a table prop, keeping its z) lies on the
        # first asset's ground, as a simulated body without one falls onto that asset.
        shade = data.get("on_ground")
        if shade is None and assets and (data.get("shadow") is True or isinstance(data.get("shadow"), dict)):
            shade = next(iter(assets))
            ground = _ground_of(assets[shade], a_at["shadow"], deferred)
        asset.shadow = _shadow(data, a_at, asset, ground)
        if asset.shadow is not None:  # on the set's table top, say, as the film shows the set
            deferred.then(shade, functools.partial(_lay_shadow, asset, assets[shade]))
        if cleanup is not None:
            # Floaters out (assets.cleanup), counted once against the capture's cameras and cached,
            # once the shots are checked. The content key takes the settings now, as it always has:
            # frames rendered before cleaning waited keep their keys.
            # asset.digest is still load_asset's (the file's; with a prim or .spz axes, theirs too):
            # the count's key reuses it.
            deferred.add(str(name), functools.partial(_clean, asset, cleanup, cameras, folder / ".splatfilm-cache",
                                                      a_at["clean"], asset.digest))
            # A non-classic asset's count is in its mode (it was classic's): its key says so, so
            # frames cached from a classic count are not reused.
            counted_in = "".join(rasterize_mode_key(asset.rasterize_mode).values())
            asset.digest = content_digest((asset.digest + repr(cleanup) + counted_in).encode())
        spec = None
        if "physics" in data:
            from splatfilm.film.physics import parse_physics

            spec = parse_physics(data["physics"], a_at["physics"], placement)
        bodies.collides(asset, data.get("collide"), a_at["collide"], spec is not None)
        if edits:
            # Non-destructive: the file stays as captured; every shot sees the edited asset. A
            # world-frame selection is taken where the asset stands at time 0 (a simulated body:
            # its start pose, where it waits before `start`), then moves with it.
            start = Similarity(spec.rotation, spec.position, spec.scale) if spec is not None else None
            to_world = (motion.at(0.0) if motion is not None else start if start is not None else placement) @ asset.local
            deferred.then(str(name), functools.partial(_edit, asset, edits, to_world))  # after its clean
            # Labels name the script's path: left out, so a moved project keeps its frames.
            unlabelled = [dataclasses.replace(e, label="") for e in edits]
            asset.digest = content_digest((asset.digest + repr(unlabelled)).encode())
        if any(k in data for k in PERFORMANCE_FIELDS):
            _perform(asset, data, a_at, assets, list(value), deferred)
        if spec is not None:
            scene = assets[data["on_ground"]] if "on_ground" in data else next(iter(assets.values()), None)
            if scene is not None and scene.name in bodies.opted_out:
                a_at["physics"].fail(f"falls onto {scene.name}, which says `collide: false`: a body always collides "
                                     f"with its set (its `collider` says how); drop that `collide`")
            # Simulated once with the film's other bodies against the set, baked and cached beside the
            # script (renders stay deterministic), once the shots are checked or when something needs a body first.
            asset.motion = bodies.add(spec, asset, scene, a_at["physics"])
        elif asset.performance is not None and asset.performance.ik is not None:
            # Its foot plants are kept beside the script: worked out once for the film, not by every run.
            where = asset.motion.key() if asset.motion is not None else asset.placement.matrix().tolist()
            asset.performance.keep_plants(folder / ".splatfilm-cache", content_digest({"asset": asset.digest, "placement": where}),
                                          asset.place_at)
        assets[str(name)] = asset
    deferred.after_all(bodies.lay_shadows)
    return World(assets, anchor)


def origin_note(world: World, source: str, given: bool) -> list[str]:
    """The note (one line, in a list; none when nothing moves) saying which assets of `world`
    (read from the script `source`) stand by their frame.origin_offset, about which anchor
    (`given`: the script's `origin_offset`, else the first such asset's) and moved by what."""
    placed = [n for n, a in world.assets.items() if a.origin_offset is not None]
    moved = [n for n in placed if world.assets[n].shift is not None]
    if not moved:
        return []
    whose = "the script's origin_offset" if given else f"{placed[0]}'s frame.origin_offset"
    # To the micrometre (no -0): the offsets' own float64 digits millions of metres out are noise below it.
    shifts = ", ".join(f"{n} by {vector_text(np.round(world.assets[n].shift, 6) + 0.0)}" for n in moved)
    return [f"{source}: {', '.join(placed)} stand where their captures put them (their sidecars' frame.origin_offset): "
            f"the film world is their captures' world moved by -{vector_text(world.origin_offset)} ({whose}); "
            f"moved before their own placement: {shifts}"]


class _Bodies:
    """A film's simulated bodies (`physics:`), baked together in one world (physics.physics_motions)
    when the first of them is asked for, with the film's other colliding assets (`assets`, the
    film's, as read so far; `collides`) as kinematic bodies, moving or standing; cached in the
    script's folder. Each body's errors name its `physics` field. The bodies and their sets are
    simulated as the film shows them: their waiting work (`deferred`) first."""

    def __init__(self, assets: dict[str, Asset], folder: Path, deferred: _Deferred) -> None:
        self.assets = assets
        self.folder = folder
        self.deferred = deferred
        self.entries: list[tuple[PhysicsSpec, Asset, Asset | None, At]] = []
        self.motions: list[BakedMotion] | None = None
        self.colliders: dict[str, bool] = {}  # by asset name: whether the bodies hit its hull
        self.opted_out: set[str] = set()  # the names whose script says `collide: false`

    def collides(self, asset: Asset, value: Any, at: At, simulated: bool) -> None:
        """Record whether the bodies hit `asset` (its script's `collide` field, `value`; None
        when not given): by default an object (sidecar `kind: object`: a prop, a character) or
        an asset with its own motion does, as Unreal's placed meshes block by default; a scene
        standing still does not (its hull would fill the room; `collide: true` opts one in, as
        Blender's passive rigid bodies are opted in). A body (`simulated`) always collides."""
        from splatfilm.assets.sidecar import Sidecar

        if value is not None and not isinstance(value, bool):
            at.fail(f"expected true or false, got {show(value)}")
        if simulated and value is False:
            at.fail("a simulated body always collides (with its set, the other bodies and the colliding assets); "
                    "`collide: false` is for the assets the bodies would meet")
        if value is False:
            self.opted_out.add(asset.name)
        if value is None:
            sidecar = Sidecar.of_asset(asset.source)
            value = asset.motion is not None or (sidecar is not None and sidecar.get("kind") == "object")
        self.colliders[asset.name] = value

    def add(self, spec: PhysicsSpec, asset: Asset, scene: Asset | None, at: At):
        """Body `asset` under `spec` against `scene`: its PendingBake."""
        from splatfilm.film.physics import PendingBake

        self.entries.append((spec, asset, scene, at))
        return PendingBake(functools.partial(self.motion, len(self.entries) - 1))

    def movers(self) -> list[Asset]:
        """The film's colliding assets the bodies meet as kinematic bodies (physics.Mover): those
        that collide, other than the bodies and their sets."""
        from splatfilm.film.physics import BakedMotion, PendingBake

        scenes = {id(scene) for _, _, scene, _ in self.entries if scene is not None}
        # Standing props (a table, a globe) collide as well as moving ones: a body dropped over a
        # table lands on its top (a mover whose place never changes), rather than passing through it.
        return [a for a in self.assets.values() if self.colliders.get(a.name, False) and id(a) not in scenes
                and not isinstance(a.motion, (PendingBake, BakedMotion))]

    def lay_shadows(self) -> None:
        """Lay every asset's contact shadow on the movers' hulls too (physics.lay_prop_shadows),
        as the bodies meet them; once the assets' waiting work is done (their hulls are of the
        Gaussians the film shows)."""
        from splatfilm.film.physics import lay_prop_shadows, world_steps

        t0 = world_steps([spec for spec, _, _, _ in self.entries])[0] if self.entries else 0.0
        lay_prop_shadows(list(self.assets.values()), self.movers(), t0)

    def motion(self, index: int) -> BakedMotion:
        """Body `index`'s motion, every body baked on the first call."""
        from splatfilm.film.physics import BodyError, physics_motions

        if self.motions is None:
            for _, asset, scene, _ in self.entries:
                self.deferred.run(asset.name)
                if scene is not None:
                    self.deferred.run(scene.name)
            movers = self.movers()
            for mover in movers:
                self.deferred.run(mover.name)
            try:
                self.motions = physics_motions([(spec, asset, scene) for spec, asset, scene, _ in self.entries], movers,
                                               self.folder / ".splatfilm-cache")
            except BodyError as e:
                self.entries[e.index][3].fail(str(e))
            except SplatfilmError as e:
                self.entries[index][3].fail(str(e))
        if index >= len(self.motions):
            self.entries[index][3].fail("is simulated with the film's other bodies, which were baked before it was "
                                        "read (an asset listed before it needs where one of them is): list it earlier")
        return self.motions[index]


def _bake(world: World) -> None:
    """Simulate every body still pending (physics.PendingBake), in script order, and give it
    the baked motion: what renders, the USD stage and physics_notes read."""
    from splatfilm.film.physics import PendingBake

    for asset in world.assets.values():
        if isinstance(asset.motion, PendingBake):
            asset.motion = asset.motion.motion()


def _included_shot(fields: dict, at: At, folder: Path, points: dict, defaults: dict, handles: int) -> Shot:
    """The shot of a film's `- include: shots/sh010.yaml` (a shot file that `splatfilm path`
    reads too): the film's fps, resolution and lens are its defaults, its assets its points;
    its cut, `handles` frames after its `first_frame` (`shot_yaml.parse_shot`). Its frame numbers
    are the file's alone: a `frame:` key keeps its place in the cut (as `time:` keys do)."""
    from splatfilm.shots.shot_yaml import load_shot

    extra = sorted(set(fields) - {"include"})
    if extra:
        at[extra[0]].fail("an included shot takes only time, assets, hide and handles here; "
                          "its other fields belong in its file")
    ref = fields["include"]
    if not isinstance(ref, str) or not ref:
        at["include"].fail(f"expected the path of a shot YAML file, relative to the script, got {show(ref)}")
    try:
        return load_shot(folder / ref, points=points, defaults=defaults, handles=handles, numbered_alone=True)
    except SplatfilmError as e:
        at["include"].fail(str(e))


def _default_shot_name(index: int) -> str:
    """The name of the script's shot `index` (0-based) when it gives none: sh010, sh020, ..."""
    return f"sh{(index + 1) * 10:03d}"


def shot_names(raw_shots: list, folder: Path) -> list[str]:
    """The names the shots of a script's `shots:` (as read from its YAML, unchecked) go by, as
    `_shots` names them: a shot's `name`, an included file's (or its file name's stem), else
    sh010, sh020, ... by place; an included file that does not read is left out."""
    names = []
    for i, raw in enumerate(raw_shots if isinstance(raw_shots, list) else []):
        if not isinstance(raw, dict):
            continue
        if isinstance(raw.get("include"), str):
            try:
                data = load_yaml(read_text(folder / raw["include"], "shot YAML file"), raw["include"])
            except SplatfilmError:
                continue
            name = data.get("name", Path(raw["include"]).stem) if isinstance(data, dict) else None
        else:
            name = raw.get("name", _default_shot_name(i))
        if isinstance(name, str):
            names.append(name)
    return names


def is_film_script(path: str | Path) -> bool:
    """Whether the YAML file at `path` is a film script rather than a shot file: a mapping with
    `assets` or `shots`. `shots:` is a film's alone (a shot file has none), so a script whose
    `assets:` is misspelt is still a film and gets the film's error for it. A file that does
    not read or parse is not: the shot reader then names what is wrong with it."""
    try:
        data = load_yaml(read_text(Path(path), "YAML file"), str(path))
    except SplatfilmError:
        return False
    return isinstance(data, dict) and ("assets" in data or "shots" in data)


def find_shot(shots: Sequence[FilmShot], name: str | None, path: str | Path) -> FilmShot:
    """The shot called `name` among `shots` (the shots of the film script at `path`), or with
    `name` None the film's only shot; a one-line SplatfilmError naming the script and listing
    its shots when there is no such shot (or more than one to choose from)."""
    if name is None:
        if len(shots) == 1:
            return shots[0]
        raise SplatfilmError(f"{path}: has {len(shots)} shots; name one with --shot "
                             f"({', '.join(fs.name for fs in shots)})")
    for fs in shots:
        if fs.name == name:
            return fs
    raise SplatfilmError(f"{path}: no shot called {name!r} (shots: {', '.join(fs.name for fs in shots)})")


def parse_film(path: str | Path, wanted: Sequence[str | None] | None = None) -> Film:
    """Read and validate a film script; loads its assets. Raises SplatfilmError naming the
    file, the field path and the problem. The heavy work (assets' `clean`, physics simulations
    and the collision meshes they make) comes after every shot is checked, unless a shot aims
    at a simulated body first, so a mistake in a shot is reported in seconds on a cold cache.
    wanted: names of the shots the caller will use (`render --shots`, `path preview --shot`;
    None: the film's only shot), each checked (`find_shot`) with the shots, before that heavy work."""
    path = Path(path)
    source = str(path)
    data = load_yaml(read_text(path, "film script (YAML)"), source)
    at = At(source)
    data = mapping(data, at, _TOP)
    schema_version(data.get("version"), at["version"], FILM_VERSION)
    title = data.get("title", path.stem)
    # The title names the cut's files (TITLE.mp4, .otio, .edl, masters) in the output folder.
    if not isinstance(title, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9 _.\-]*", title) or ".." in title:
        at["title"].fail(f"expected a file name of letters, digits, spaces, '_', '-' and '.' (not starting with "
                         f"'.' or holding '..' or a folder), got {show(title)}")
    try:
        fps = parse_fps(data.get("fps", 24))
        frame_timecode(0, fps)  # the edit counts in timecode: a rate it has none for is refused before rendering
    except SplatfilmError as e:
        at["fps"].fail(str(e))
    record_start = default_record_start(fps)
    if data.get("record_start") is not None:
        value = data["record_start"]
        if not isinstance(value, str):  # YAML reads an unquoted 10:00:00:00 as a base-60 number
            at["record_start"].fail(f"expected a timecode string such as \"01:00:00:00\" (quoted), got {show(value)}")
        try:
            record_start = timecode_frame(value, fps)
        except SplatfilmError as e:
            at["record_start"].fail(str(e))
    res = data.get("resolution", [640, 360])
    if not isinstance(res, list) or len(res) != 2:
        at["resolution"].fail(f"expected [width, height], got {show(res)}")
    width, height = (integer(v, at["resolution"][i], 1) for i, v in enumerate(res))
    if width % 2 or height % 2:  # H.264 4:2:0 and ProRes 422 code no odd sizes: every file one size
        at["resolution"].fail(f"{width}x{height}: width and height must be even (the MP4s and ProRes 422 "
                              f"masters cannot be {width}x{height}); use {width + width % 2}x{height + height % 2}")
    first = integer(data.get("first_frame", FIRST_FRAME), at["first_frame"], 0)
    handles_default = integer(data.get("handles", 0), at["handles"], 0)
    background = _rgb(data.get("background", [0, 0, 0]), at["background"])
    sh_degree = integer(data["sh_degree"], at["sh_degree"], 0) if data.get("sh_degree") is not None else None
    if sh_degree is not None and sh_degree > MAX_SH_DEGREE:
        # Rendering takes the lesser of this and an asset's degree: 5 would pass unnoticed.
        at["sh_degree"].fail(f"must be 0-{MAX_SH_DEGREE} (the highest SH degree gsplat renders), got {sh_degree}")
    crf = integer(data.get("crf", 18), at["crf"], 0)
    effects = mapping(data.get("effects", {}) or {}, at["effects"], _EFFECTS)
    blur = None
    if effects.get("motion_blur"):
        mb = mapping(effects["motion_blur"], at["effects"]["motion_blur"], {"shutter_deg", "samples"})
        samples = mb.get("samples", 5)
        if isinstance(samples, str) and samples != "auto":
            at["effects"]["motion_blur"]["samples"].fail(f"expected a whole number >= 2 or auto, got {show(samples)}")
        blur = {"shutter_deg": number(mb.get("shutter_deg", 180), at["effects"]["motion_blur"]["shutter_deg"], "positive"),
                # "auto": as many as the frame's screen motion needs (FrameRenderer.sample).
                "samples": samples if samples == "auto" else integer(samples, at["effects"]["motion_blur"]["samples"], 2)}
        if blur["shutter_deg"] > 360:  # a shutter open longer than a frame lasts: no camera has one
            at["effects"]["motion_blur"]["shutter_deg"].fail(f"must be at most 360 degrees (open the whole frame; "
                                                             f"180 is the film look), got {blur['shutter_deg']:g}")
    dof = effects.get("depth_of_field", False)
    if not isinstance(dof, bool):
        at["effects"]["depth_of_field"].fail(f"expected true or false, got {show(dof)}")

    if "assets" not in data:
        at.fail("missing `assets` (what the world is made of)")
    points = {}
    if data.get("points") is not None:
        p = mapping(data["points"], at["points"], set(data["points"]))
        points = {str(k): vec3(v, at["points"][str(k)]) for k, v in p.items()}
    raw_shots = data.get("shots")
    if not isinstance(raw_shots, list) or not raw_shots:
        at["shots"].fail("expected a non-empty list of shots")
    defaults = {"fps": data.get("fps", 24), "resolution": [width, height], "first_frame": first}
    if "lens" in data:
        defaults["lens"] = data["lens"]

    from splatfilm.film.physics import BakeFailed

    try:
        # The assets are loaded and placed; their cleaning (half a minute for the bundled set on a
        # cold cache) and simulations (and the collision meshes they make, minutes) wait until the
        # shots are checked, unless a shot aims at a body.
        deferred = _Deferred()
        anchor = vec3(data["origin_offset"], at["origin_offset"]) if data.get("origin_offset") is not None else None
        placing: list[str] = []
        world = _assets(data["assets"], at["assets"], path.parent, deferred, fps, first + handles_default, anchor, placing)
        clash = set(points) & set(world.assets)
        if clash:
            at["points"][sorted(clash)[0]].fail("has the name of an asset; asset names already are points")
        shots = _shots(raw_shots, at["shots"], path.parent, world, points, defaults, fps, handles_default)
        for name in wanted or ():
            find_shot(shots, name, path)
        if dof:  # told here, before the simulations, not when the shot's first frame renders
            for i, fs in enumerate(shots):
                if fs.shot.lens.f_stop is None:
                    at["shots"][i]["lens"].fail("effects.depth_of_field needs an f_stop (and a focus_distance) in "
                                                "every shot's lens; give them here or in the film's `lens`")
                if not np.all(np.isfinite(fs.shot.sample().focus_distance)):
                    at["shots"][i]["lens"].fail("effects.depth_of_field needs a focus_distance at every frame: in "
                                                "the lens (or the film's `lens`), the camera's keys or a rack_focus")
        cut_frames = sum(fs.cut_frames for fs in shots)
        if record_start + cut_frames >= timecode_day(fps):  # the EDL's last record out would wrap to 00:00:00:00
            at["record_start"].fail(f"the cut ({cut_frames} frames) would run past 24 hours of timecode from "
                                    f"{frame_timecode(record_start, fps)}; start it earlier")
        clash = next((s for s in shots if s.name == title), None)
        if clash is not None:  # the cut would overwrite that shot's movie
            at["title"].fail(f"{title!r} is also a shot's name (its movie is {title}.mp4); give the film another title")
        deferred.run_all()
        _bake(world)
    except BakeFailed as e:  # a shot aimed at a body whose bake failed: the bake's error, as it said it
        raise e.error from None
    return Film(path=path, title=str(title), fps=fps, width=width, height=height, first_frame=first,
                background=background, sh_degree=sh_degree, crf=crf, world=world, shots=shots,
                record_start=record_start, motion_blur=blur, depth_of_field=dof, raw=data,
                notes=origin_note(world, source, anchor is not None) + placing, points=points)


def shot_points(points: dict[str, np.ndarray], world: World, start: float) -> dict:
    """The points a film's shot whose `time` is `start` (world seconds) may name, as
    `shot_yaml.parse_shot` takes them: the script's named `points` [3] (`Film.points`) and each
    asset of `world` by its name, a still one as its aim point [3] (`Asset.target`), a moving
    one as a moving target (shot times [T] -> points [T,3], `World.target_function`)."""
    out: dict = dict(points)
    for name, asset in world.assets.items():
        out[name] = world.target_function(name, start) if asset.motion is not None else asset.target(start)
    return out


def _shots(raw_shots: list, at: At, folder: Path, world: World, points: dict[str, np.ndarray], defaults: dict,
           fps: Fraction, handles_default: int) -> list[FilmShot]:
    """The film's shots, in edit order, each checked against the world (`defaults`: the fields
    a shot inherits from the film: fps, resolution, first frame, lens)."""
    width, height = defaults["resolution"]
    shots: list[FilmShot] = []
    names: set[str] = set()
    clock = 0.0
    for i, raw in enumerate(raw_shots):
        s_at = at[i]
        if not isinstance(raw, dict):
            s_at.fail(f"a shot is a mapping of fields, got {show(raw)}")
        film_fields = {k: raw[k] for k in _SHOT_FILM if k in raw}
        shot_fields = {k: v for k, v in raw.items() if k not in _SHOT_FILM}
        start = number(film_fields["time"], s_at["time"], "nonneg") if "time" in film_fields else clock
        handles = integer(film_fields.get("handles", handles_default), s_at["handles"], 0)
        points_here = shot_points(points, world, start)
        if "include" in shot_fields:
            shot = _included_shot(shot_fields, s_at, folder, points_here, defaults, handles)
            s_at = s_at["include"]  # what the shot's own fields say is in its file
        else:
            shot = parse_shot(shot_fields, s_at.source, s_at.where, points=points_here, defaults=defaults,
                              default_name=_default_shot_name(i), handles=handles)
        rendered = shot.with_handles(handles)
        try:
            # Each frame is written with its timecode (provenance, EXRs, the shot's movie): a
            # frame number timecode cannot count would stop the render after its first frame.
            frame_timecode(rendered.first_frame, fps)
        except SplatfilmError as e:
            head = f" (the first of its {handles} head handle frames before the cut's {shot.first_frame})"
            s_at["frame_range" if "frame_range" in shot_fields else "first_frame"].fail(str(e) + (head if handles else ""))
        if shot.name in names:
            s_at["name"].fail(f"another shot is already called {shot.name!r}")
        names.add(shot.name)
        if (shot.lens.width, shot.lens.height) != (width, height):
            s_at["resolution"].fail(f"shots of one film share its resolution {width}x{height} (one edit, one MP4)")
        if shots and shot.lens.squeeze != shots[0].shot.lens.squeeze:
            # One movie has one pixel aspect: a player cannot desqueeze shots differently.
            s_at["lens"]["squeeze"].fail(f"{shot.lens.squeeze:g}: shots of one film share one anamorphic squeeze "
                                         f"(pixel aspect), here {shots[0].shot.lens.squeeze:g} from {shots[0].name} "
                                         "(one edit, one MP4)")
        if shot.fps != fps:
            s_at["fps"].fail(f"shots of one film share its rate ({fps} fps)")
        if "assets" in film_fields and "hide" in film_fields:
            s_at.fail("give `assets` (what is seen) or `hide`, not both")
        visible = list(world.assets)
        for key in ("assets", "hide"):
            if key in film_fields:
                listed = film_fields[key]
                if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
                    s_at[key].fail(f"expected a list of asset names, got {show(listed)}")
                for j, n in enumerate(listed):
                    if n not in world.assets:
                        s_at[key][j].fail(f"unknown asset {n!r} (known: {', '.join(world.assets)})")
                visible = [n for n in world.assets if (n in listed) == (key == "assets")]
        clock = start + float(shot.duration)
        shots.append(FilmShot(rendered, start - float(Fraction(handles) / fps), visible, handles))
    return shots
