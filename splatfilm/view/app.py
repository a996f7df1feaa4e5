"""The viewer in the browser: a viser server wired to a `Session`.

Scene: the static set as one splat node sent once; each moving asset its own node, re-sent
when the time changes (`set_gaussians`, so a scrub sends only what moves); guides under
`/guides` (capture cameras, each shot's path and its camera at the current time, the ground
plane, the keys being authored and their spline). A scene of more Gaussians than
`max_splats` is sent as its most visible ones (`splats.split_budget`). The browser orbits about
the world's up: +z in a film, a lone scene's own (`scene_up`), or `up` as given. GUI: the
timeline (frame slider with the shots' cuts marked, play/pause at the film's rate, steps), the
camera (look through a shot, its frame marked on the canvas; lens in mm; reset the up
direction to the camera's), the keys (add at the viewer's camera, go to, re-key, delete; the
shot's duration, which grows the timeline where it runs past its end; save as a shot file or
append to the film) and "render this frame" (splatfilm's own render beside
the live view).

Time changes are applied on one worker thread, newest request first: a scrub faster than the
world can be composed skips the frames in between instead of queueing them.
"""

from __future__ import annotations

import math
import threading
import time as _time
import traceback
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.images import to_uint8
from splatfilm.scene.cameras import fov_for_focal_px
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.transforms import WORLD_UP, look_at_rotation, quat_from_rotation, rotation_between
from splatfilm.shots.lens import Lens, focal_mm_to_fov_deg, fov_deg_to_focal_mm
from splatfilm.view.authoring import KeyedShot, append_to_film, save_shot_file
from splatfilm.view.camera import (ViewerCamera, canvas_camera, canvas_vfov, frame_mask, frame_vfov,
                                   keyframe_from_viewer, view_of_points)
from splatfilm.view.frames import FrameRenders
from splatfilm.view.session import Session
from splatfilm.view.splats import most_visible_ids, split_budget, splat_arrays

if TYPE_CHECKING:
    import torch
    import viser

FREE_CAMERA = "free camera"
# Guide colours (RGB 0-255), one per shot in turn.
SHOT_COLOURS = [(230, 80, 60), (60, 140, 230), (80, 190, 90), (220, 170, 40), (170, 90, 210), (40, 190, 190)]
KEY_COLOUR = (255, 120, 0)
CAPTURE_COLOUR = (150, 150, 150)
# Looking through a shot: the canvas outside the frame is darkened by a mask this far in front
# of the camera (m; nearer than any set, beyond the browser's 0.01 m near plane), the frame
# edged with a light band EDGE_PX pixels wide. viser draws splats after every other node,
# depth-tested against them, so the mask hides the splats behind it rather than tinting them.
MASK_DISTANCE = 0.05
MASK_COLOUR, MASK_OPACITY = (0, 0, 0), 0.8
EDGE_COLOUR, EDGE_PX = (220, 220, 220), 2.0


def _vfov(focal_mm: float, lens: Lens) -> float:
    """The viewer's vertical field of view (radians) for a focal length on the lens's sensor."""
    return math.radians(float(focal_mm_to_fov_deg(focal_mm, lens.image_height_mm)))


def _focal_mm(vfov: float, lens: Lens) -> float:
    """The focal length (mm) on the lens's sensor for the viewer's vertical field of view (radians)."""
    return float(fov_deg_to_focal_mm(math.degrees(vfov), lens.image_height_mm))


def default_save_path(session: Session, name: str) -> Path:
    """Where a new shot file goes: a keyed shot file's own file (a shot made of moves: NAME.yaml
    beside it, as keys cannot replace a move); else shots/NAME.yaml beside the input."""
    if session.kind == "shot":
        from splatfilm.shots.keyframes import KeyframePath

        keyed = isinstance(session.shots[0].shot.path, KeyframePath)
        return session.path if keyed else session.path.with_name(f"{name}.yaml")
    return session.path.parent / "shots" / f"{name}.yaml"


def scene_up(session: Session) -> np.ndarray:
    """The world's up [3] (unit) the viewer orbits about: +z for a film (its world is Z up), and
    for a lone scene (`view SCENE.ply`, or a shot file's --scene) its own: +z where it stands in
    its canonical frame, else the normal of the ground plane its sidecar records (turned to the
    capture's up), else the capture's up (`frame.up`), else +z. A bare INRIA/COLMAP scene (y
    down) has none of these: `view --up=-y` or "reset up direction" turns it."""
    from splatfilm.assets.sidecar import Sidecar
    from splatfilm.assets.asset_frame import asset_up

    if session.film is not None or len(session.world.assets) != 1:
        return WORLD_UP.copy()
    asset = next(iter(session.world.assets.values()))
    try:
        sidecar = Sidecar.of_asset(asset.source) if asset.source else None
        if sidecar is None or sidecar.canonical_transform is not None:
            return WORLD_UP.copy()
        up = asset_up(asset.source)
    except SplatfilmError:
        return WORLD_UP.copy()  # an unreadable sidecar costs the up, not the session
    R = asset.world_transform(0.0).rotation
    up = R @ np.asarray(up, dtype=np.float64)
    return up / np.linalg.norm(up)


def _markdown_text(text: str) -> str:
    """`text` shown as it reads in markdown: its markup characters escaped."""
    return "".join("\\" + c if c in "\\`*_[]<>#|~" else c for c in text)


class Viewer:
    """A running viewer: `Viewer(session, host, port)`, then `url`; `stop()` ends it.

    backend: splatfilm's renderer for "render this frame" ("auto", "cpu", "gsplat"); up [3]:
    the world's up the browser orbits about (default `scene_up`); max_splats: the most
    Gaussians sent to the browser (None: all). `note` says how many were left out, if any."""

    def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 8080, backend: str = "auto",
                 up: np.ndarray | None = None, max_splats: int | None = None):
        import viser

        self.session = session
        self.up = scene_up(session) if up is None else np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
        self.max_splats = max_splats
        self.note = ""
        self.renders = FrameRenders(session, backend)
        self.keyed = KeyedShot.for_session(session)
        self.saved_keys = list(self.keyed.keys)  # as last saved or read: `keys_unsaved` compares
        self.frame = session.frame_of(session.shots[0].cut_start if session.shots else session.start)
        self.look_through: str | None = None
        self.focal_mm = session.lens.focal_mm
        self.status = ""
        self.last_render: np.ndarray | None = None
        self.updates = 0  # time changes applied (benchmarks count them)
        self.playing = False
        self._requested: int | None = None
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = False
        self._lock = threading.RLock()  # scene and GUI changes, from GUI callbacks and the workers
        # Per browser: (the frame's vertical field, its aspect, the canvas aspect the browser's
        # field was set for), so a canvas that changes shape keeps the whole frame in sight.
        self._framing: dict[int, tuple[float, float, float]] = {}
        # Per browser while looking through: (mask node, edge node, the geometry's key).
        self._masks: dict[int, tuple] = {}

        self.server = viser.ViserServer(host=host, port=port, label="splatfilm view", verbose=False)
        self.host, self.port = host, self.server.get_port()
        self._build_scene()
        self._build_gui()
        self.server.on_client_connect(self._on_connect)
        self.server.on_client_disconnect(self._on_disconnect)
        self._worker = threading.Thread(target=self._work, name="splatfilm-view-time", daemon=True)
        self._worker.start()
        self._player = threading.Thread(target=self._play_loop, name="splatfilm-view-play", daemon=True)
        self._player.start()
        self.request(self.frame)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def keys_unsaved(self) -> bool:
        """Whether the keys were added, changed or deleted since they were last saved, appended
        or read (each change makes new Keyframe objects, so identity tells)."""
        keys, saved = self.keyed.keys, self.saved_keys
        return not (len(keys) == len(saved) and all(a is b for a, b in zip(keys, saved)))

    def stop(self) -> None:
        """Tell the frame worker to end (it finishes the frame it is on; not waited for) and shut
        the viser server down."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.server.stop()

    # ---- scene -----------------------------------------------------------------------------

    def _build_scene(self) -> None:
        s, scene = self.session, self.server.scene
        scene.set_up_direction(self.up)
        bg = np.zeros((9, 16, 3), dtype=np.uint8) + to_uint8(np.asarray(s.background))
        scene.set_background_image(bg, format="png")
        static = s.static_gaussians()
        eye = s.eye(s.time_of(self.frame))
        moving = s.moving_gaussians(s.time_of(self.frame), eye)
        self._sent_counts(static, moving)
        self.static_node = (scene.add_gaussian_splats("/world/static", *self._splats("/world/static", static))
                            if len(static) else None)
        self.moving_nodes = {name: scene.add_gaussian_splats(f"/world/{name}", *self._splats(name, g))
                             for name, g in moving.items()}
        self.guides = scene.add_frame("/guides", show_axes=False)
        for name, cams in s.capture_cameras().items():
            c2w = cams.to_c2w_opencv()
            for i in range(len(cams)):
                h, fy = float(cams.heights[i]), float(cams.fy[i])
                scene.add_camera_frustum(f"/guides/capture/{name}/{i}", fov=fov_for_focal_px(fy, h),
                                         aspect=float(cams.widths[i]) / h, scale=0.08, color=CAPTURE_COLOUR, thickness=1.0, thickness_units="screen",
                                         wxyz=quat_from_rotation(c2w[i, :3, :3]), position=c2w[i, :3, 3])
        for name, plane in s.ground_planes().items():
            origin = -plane.offset * plane.normal
            scene.add_grid(f"/guides/ground/{name}", width=8.0, height=8.0, cell_size=0.25, section_size=1.0,
                           position=origin, wxyz=quat_from_rotation(rotation_between([0, 0, 1], plane.normal)))
        self.shot_frustums = {}
        for k, fs in enumerate(s.shots):
            self._add_shot_guides(k, fs)
        self.key_nodes: list = []

    def _add_shot_guides(self, k: int, fs) -> None:
        """Shot `fs`'s path and camera (its label, the colour of the `k`th shot)."""
        scene = self.server.scene
        colour = SHOT_COLOURS[k % len(SHOT_COLOURS)]
        positions = fs.shot.sample().positions
        if len(positions) > 1:
            segments = np.stack([positions[:-1], positions[1:]], axis=1)
            scene.add_line_segments(f"/guides/shots/{fs.name}/path", segments, colour, thickness=2.0,
                                    thickness_units="screen")
        lens = fs.shot.lens
        self.shot_frustums[fs.name] = scene.add_camera_frustum(
            f"/guides/shots/{fs.name}/camera", fov=np.radians(lens.vfov_deg), aspect=lens.display_aspect, scale=0.25,
            color=colour, thickness=2.0, thickness_units="screen")
        scene.add_label(f"/guides/shots/{fs.name}/camera/label", fs.name)

    def _sent_counts(self, static: Gaussians, moving: dict[str, Gaussians]) -> None:
        """How many of each node's Gaussians go to the browser (`self.sent`): all, or under
        max_splats each node's share (`splats.split_budget`) of its most visible (a moving asset
        keeps its count at every time); `note` says how many were left out."""
        counts = {"/world/static": len(static), **{name: len(g) for name, g in moving.items()}}
        total = sum(counts.values())
        budget = total if self.max_splats is None else min(total, int(self.max_splats))
        self.sent = split_budget(counts, budget)
        self.sent_ids: dict[str, torch.Tensor | None] = {}  # `_splats`: which of each node's are sent
        self.sent_sizes: dict[str, int] = {}
        if budget < total:
            self.note = (f"sending the browser {budget:,} of the {total:,} Gaussians (the most visible by opacity x "
                         f"footprint; {total - budget:,} left out, --max-splats); renders use all of them")

    def _splats(self, name: str, g: Gaussians) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The viser arrays of node `name`'s Gaussians g, its sent count of them: for a moving
        asset the same ones at every time, picked where it was first drawn (re-ranked as its
        posing changes its scales, the subset would flicker)."""
        if name not in self.sent_ids or len(g) != self.sent_sizes[name]:
            self.sent_ids[name], self.sent_sizes[name] = most_visible_ids(g, self.sent.get(name, len(g))), len(g)
        ids = self.sent_ids[name]
        return splat_arrays(g if ids is None else g.select(ids)).as_args()

    def _place_shot_frustums(self, t: float) -> None:
        for fs in self.session.shots:
            cams = self.session.shot_camera(fs, t)
            c2w = cams.to_c2w_opencv()[0]
            node = self.shot_frustums[fs.name]
            node.wxyz = quat_from_rotation(c2w[:3, :3])
            node.position = c2w[:3, 3]
            node.fov = fov_for_focal_px(float(cams.fy[0]), float(cams.heights[0]))

    def _draw_keys(self) -> None:
        scene = self.server.scene
        for node in self.key_nodes:
            node.remove()
        self.key_nodes = []
        lens = self.session.lens
        for i, k in enumerate(self.keyed.keys):
            focal = lens.focal_mm if k.focal_mm is None else k.focal_mm
            self.key_nodes.append(scene.add_camera_frustum(
                f"/guides/keys/{i}", fov=_vfov(focal, lens), aspect=lens.display_aspect, scale=0.2,
                color=KEY_COLOUR, wxyz=quat_from_rotation(k.orientation()), position=k.position, thickness=2.0,
                thickness_units="screen"))
        if len(self.keyed.keys) >= 2:
            positions = self.keyed.preview(self.session)
            segments = np.stack([positions[:-1], positions[1:]], axis=1)
            self.key_nodes.append(scene.add_line_segments("/guides/keys/spline", segments, KEY_COLOUR, thickness=3.0,
                                                          thickness_units="screen"))

    # ---- GUI -------------------------------------------------------------------------------

    def _build_gui(self) -> None:
        s, gui = self.session, self.server.gui
        gui.configure_theme(control_width="medium", show_logo=False, show_share_button=False)
        gui.main_panel.dock_right()  # beside the canvas, not over it
        gui.add_markdown(f"**{s.path.name}** ({s.kind}) · {len(s.world.assets)} asset(s), "
                         f"{len(s.shots)} shot(s) at {float(s.fps):g} fps"
                         + (f" · {_markdown_text(self.note)}" if self.note else ""))
        if s.notes:  # the film's warnings, where the filmmaker plans it (the status line is overwritten)
            with gui.add_folder(f"Warnings ({len(s.notes)})"):
                self.notes_md = gui.add_markdown("\n".join(f"- {_markdown_text(n)}" for n in s.notes))
        self.time_label = gui.add_markdown(s.label(s.time_of(self.frame)))
        with gui.add_folder("Timeline"):
            self.slider = gui.add_slider("frame", 0, s.frame_count - 1, 1, self.frame,
                                         marks=tuple(s.marks()) or None)
            self.slider.on_update(lambda _: self._slider_moved())
            row = gui.add_button_group("step", ("◀◀", "◀", "▶", "▶▶"))
            row.on_click(lambda e: self._step(e.target.value))
            self.play_button = gui.add_button("Play")
            self.play_button.on_click(lambda _: self.toggle_play())
        with gui.add_folder("Camera"):
            self.look_dropdown = gui.add_dropdown("look through", (FREE_CAMERA, *(fs.name for fs in s.shots)), initial_value=FREE_CAMERA)
            self.look_dropdown.on_update(lambda _: self._look_changed())
            self.lens_number = gui.add_number("lens (mm)", round(self.focal_mm, 3), min=1.0, max=2000.0, step=0.5)
            self.lens_number.on_update(lambda _: self._lens_changed())
            self.up_button = gui.add_button("Reset up direction",
                                            hint="Orbit about the camera's own up: level the view first")
            self.up_button.on_click(lambda e: self._guarded(self._reset_up, e.client))
            self.guides_box = gui.add_checkbox("guides", True)
            self.guides_box.on_update(lambda _: setattr(self.guides, "visible", self.guides_box.value))
        with gui.add_folder("Keys"):
            self.name_text = gui.add_text("shot name", self.keyed.name)
            count = self.keyed.frame_count
            self.duration_number = gui.add_number(
                "duration (s)", round(float(Fraction(count) / s.fps), 3) if count else 0.0, min=0.0, step=0.5,
                hint="The shot's length from its first frame; 0: it ends on its last key")
            self.duration_number.precision = 3  # milliseconds typed, though the arrows step half seconds
            self.duration_number.on_update(lambda _: self._guarded(self._duration_changed))
            self.add_key_button = gui.add_button("Add key")
            self.add_key_button.on_click(lambda e: self._guarded(self._add_key, e.client))
            self.key_dropdown = gui.add_dropdown("key", ("(none)",), initial_value="(none)")
            go = gui.add_button_group("selected key", ("Go to", "Re-key", "Delete"))
            go.on_click(lambda e: self._guarded(self._key_action, e.target.value, e.client))
            self.save_text = gui.add_text("save to", str(default_save_path(s, self.keyed.name)))
            self.save_button = gui.add_button("Save shot file")
            self.save_button.on_click(lambda _: self._guarded(self._save_file))
            if s.kind == "film":
                self.append_button = gui.add_button("Append to film")
                self.append_button.on_click(lambda _: self._guarded(self._append))
        with gui.add_folder("Render"):
            self.render_button = gui.add_button("Render this frame")
            # Not under the scene lock: a CPU render takes seconds, and the timeline stays live meanwhile.
            self.render_button.on_click(lambda e: self._guarded(self._render, e.client, locked=False))
            self.render_image = gui.add_image(np.zeros((9, 16, 3), dtype=np.uint8), label="splatfilm render")
        self.status_md = gui.add_markdown("")
        self._refresh_keys()

    def _guarded(self, fn, *args, locked: bool = True) -> None:
        """Run a GUI action (under the scene lock unless `locked` is False); a SplatfilmError
        shows as the status line, not a traceback."""
        try:
            if locked:
                with self._lock:
                    fn(*args)
            else:
                fn(*args)
        except SplatfilmError as e:
            self._say(f"error: {e}")
        except Exception as e:  # a bug must not kill the server; say it and keep the trace
            traceback.print_exc()
            self._say(f"error: {type(e).__name__}: {e}")

    def _say(self, text: str) -> None:
        self.status = text
        self.status_md.content = text

    def _on_connect(self, client) -> None:
        client.camera.on_update(lambda _camera: self._camera_moved(client))
        with self._lock:
            self._set_client_camera(client, self._start_view())
            if self.look_through is not None:
                self._look_through_client(client, self.session.time_of(self.frame))

    def _start_view(self) -> ViewerCamera:
        """Where a new browser starts: the first shot's first cut frame, else a capture camera,
        else looking at the world from its front."""
        s = self.session
        aspect = s.lens.display_aspect  # the browser shows the frame desqueezed
        if s.shots:
            # Behind and above the first shot's camera, looking where it looks: its frustum in view.
            fs = s.shots[0]
            c2w = s.shot_camera(fs, fs.cut_start).to_c2w_opencv()[0]
            target = c2w[:3, 3] + 2.5 * c2w[:3, 2]
            position = c2w[:3, 3] - 1.2 * c2w[:3, 2] + 0.4 * self.up
            return ViewerCamera(position, quat_from_rotation(look_at_rotation(position, target, self.up)),
                                _vfov(self.focal_mm, s.lens), target, aspect)
        captures = s.capture_cameras()
        if captures:
            cams = next(iter(captures.values()))
            return self._view_of(cams[:1], aspect)
        return view_of_points(s.static_gaussians().means.numpy(), _vfov(self.focal_mm, s.lens), aspect, self.up)

    @staticmethod
    def _view_of(cams, aspect: float) -> ViewerCamera:
        from splatfilm.view.camera import viewer_from_camera

        return viewer_from_camera(cams.to_c2w_opencv()[0], float(cams.fy[0]), int(cams.heights[0]), aspect)

    def _set_client_fov(self, client, vfov: float, frame_aspect: float) -> None:
        """The browser's field of view for a frame of `frame_aspect` whose vertical field is
        `vfov` (radians): the whole frame in sight on its canvas (camera.canvas_vfov)."""
        canvas = float(client.camera.aspect)
        self._framing[client.client_id] = (vfov, frame_aspect, canvas)
        client.camera.fov = canvas_vfov(vfov, frame_aspect, canvas)

    def _reframe(self, client) -> None:
        """After the browser reports its camera: a canvas of another shape than the one its
        field was set for (the page laid out, the window or panel resized) gets the field that
        keeps the whole frame in sight."""
        framing = self._framing.get(client.client_id)
        if framing is not None and abs(float(client.camera.aspect) - framing[2]) > 1e-3:
            self._set_client_fov(client, framing[0], framing[1])

    def _camera_moved(self, client) -> None:
        if self.look_through is None and client.client_id not in self._masks:
            self._reframe(client)  # the common case, off the scene lock: a drag reports many times a second
            return
        with self._lock:
            self._reframe(client)
            self._place_mask(client)

    def _on_disconnect(self, client) -> None:
        self._framing.pop(client.client_id, None)
        self._masks.pop(client.client_id, None)

    def _place_mask(self, client) -> None:
        """Mark the frame on this browser's canvas while looking through a shot (the canvas
        outside it darkened, its edge drawn: `camera.frame_mask`), placed at its camera; none
        otherwise."""
        if self.look_through is None:
            self._remove_mask(client.client_id)
            return
        view = self.client_view(client)
        rows = max(int(client.camera.image_height), 1)
        frame_aspect = self.session.lens.display_aspect
        key = (round(view.vfov, 6), round(view.aspect, 4), rows, frame_aspect)
        held = self._masks.get(client.client_id)
        if held is not None and held[2] == key:
            for node in held[:2]:
                node.wxyz, node.position = view.wxyz, view.position
            return
        self._remove_mask(client.client_id)
        edge = EDGE_PX * 2.0 * MASK_DISTANCE * math.tan(0.5 * view.vfov) / rows
        mask_v, edge_v, faces = frame_mask(view, frame_aspect, MASK_DISTANCE, edge)
        nodes = [client.scene.add_mesh_simple(f"/look_through/{part}", vertices, faces, color=colour, opacity=opacity,
                                              side="double", cast_shadow=False, receive_shadow=False,
                                              wxyz=view.wxyz, position=view.position)
                 for part, vertices, colour, opacity in (("mask", mask_v, MASK_COLOUR, MASK_OPACITY),
                                                          ("edge", edge_v, EDGE_COLOUR, None))]
        self._masks[client.client_id] = (*nodes, key)

    def _remove_mask(self, client_id: int) -> None:
        held = self._masks.pop(client_id, None)
        if held is not None:
            for node in held[:2]:
                node.remove()

    def _reset_up(self, client) -> None:
        """Orbit about the clicking browser's camera's up (its -y axis), as viser's COLMAP
        example does, from now on for every browser."""
        if client is None:
            raise SplatfilmError("no browser camera to take the up direction from")
        up = -self.client_view(client).rotation[:, 1]
        self.up = up / np.linalg.norm(up)
        self.server.scene.set_up_direction(self.up)
        for c in self.server.get_clients().values():
            c.camera.up_direction = self.up
        self._say(f"up direction ({self.up[0]:.3f}, {self.up[1]:.3f}, {self.up[2]:.3f})")

    def _set_client_camera(self, client, view: ViewerCamera) -> None:
        """Put the browser's camera at `view` (a frame's: its field of view and aspect)."""
        R = view.rotation
        # viser orbits about up_direction: the camera's own up would tilt the orbit axis with the
        # camera's pitch, and every drag would roll the view (a Dutch angle in the keys). A level
        # camera (x axis horizontal) orbits about the world's up; only a rolled one keeps its own.
        up = self.up if abs(float(R[:, 0] @ self.up)) < 1e-6 else -R[:, 1]
        with client.atomic():
            self._set_client_fov(client, view.vfov, view.aspect)
            client.camera.up_direction = up
            client.camera.position = view.position
            client.camera.look_at = view.look_at

    @staticmethod
    def client_view(client: viser.ClientHandle, frame_aspect: float | None = None) -> ViewerCamera:
        """The browser's camera as a ViewerCamera: its canvas's field and aspect, or with
        `frame_aspect` (width / height) the field and aspect of the frame it shows whole."""
        cam = client.camera
        view = ViewerCamera(cam.position, cam.wxyz, cam.fov, cam.look_at, cam.aspect)
        if frame_aspect is not None:
            view = ViewerCamera(view.position, view.wxyz, frame_vfov(view, frame_aspect), view.look_at, frame_aspect)
        return view

    def _frame_view(self, client) -> ViewerCamera:
        return self.client_view(client, self.session.width / self.session.height)

    # ---- time --------------------------------------------------------------------------------

    def request(self, frame: int) -> None:
        """Show timeline frame `frame` (applied on the worker thread; newer requests replace older)."""
        with self._cond:
            self._requested = min(max(int(frame), 0), self.session.frame_count - 1)
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every requested time change is applied; False on timeout."""
        end = _time.monotonic() + timeout
        with self._cond:
            while self._requested is not None or self._busy:
                left = end - _time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._requested is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                frame, self._requested, self._busy = self._requested, None, True
            try:
                with self._lock:
                    self._apply(frame)
            except Exception as e:
                traceback.print_exc()
                self._say(f"error: {type(e).__name__}: {e}")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _apply(self, frame: int) -> None:
        s = self.session
        self.frame = frame
        t = s.time_of(frame)
        eye = s.eye(t, self.look_through)
        for name, g in s.moving_gaussians(t, eye).items():
            self.moving_nodes[name].set_gaussians(*self._splats(name, g))
        self._place_shot_frustums(t)
        if self.look_through is not None:
            for client in self.server.get_clients().values():
                self._look_through_client(client, t)
        self.time_label.content = s.label(t, self.look_through)
        if self.slider.value != frame:
            self.slider.value = frame
        self.updates += 1

    def _slider_moved(self) -> None:
        if self.slider.value != self.frame:
            self.request(self.slider.value)

    def _step(self, which: str) -> None:
        s = self.session
        if which in ("◀", "▶"):
            self.request(self.frame + (1 if which == "▶" else -1))
            return
        cuts = sorted({f for f, _ in s.marks()} | {0, s.frame_count - 1})
        if which == "▶▶":
            self.request(next((f for f in cuts if f > self.frame), s.frame_count - 1))
        else:
            self.request(next((f for f in reversed(cuts) if f < self.frame), 0))

    def toggle_play(self) -> None:
        """Start or pause real-time playback (the play loop reads `playing`) and relabel the button."""
        self.playing = not self.playing
        self.play_button.label = "Pause" if self.playing else "Play"

    def _play_loop(self) -> None:
        # Real time: each tick shows the frame due now, skipping any the world could not keep up with.
        fps = float(self.session.fps)
        origin = None
        while not self._stopping:
            if not self.playing:
                origin = None
                _time.sleep(0.05)
                continue
            if origin is None:
                origin = (_time.monotonic(), self.frame if self.frame < self.session.frame_count - 1 else 0)
            due = origin[1] + int((_time.monotonic() - origin[0]) * fps)
            if due >= self.session.frame_count:
                self.playing = False
                self.play_button.label = "Play"
                continue
            if due != self.frame:
                self.request(due)
            _time.sleep(0.5 / fps)

    # ---- camera ------------------------------------------------------------------------------

    def _look_changed(self) -> None:
        choice = self.look_dropdown.value
        with self._lock:
            self.look_through = None if choice == FREE_CAMERA else choice
            for name, node in self.moving_nodes.items():
                node.visible = True
            if self.static_node is not None:
                self.static_node.visible = True
            for name, node in self.shot_frustums.items():
                node.visible = name != self.look_through  # not drawn round the lens looked through
            if self.look_through is None:
                for client_id in list(self._masks):
                    self._remove_mask(client_id)
            else:
                fs = self.session.shot_named(self.look_through)
                t = self.session.time_of(self.frame)
                if not fs.world_start <= t <= fs.world_start + float(fs.shot.duration):
                    t = fs.cut_start  # jump to the shot
                    self.frame = self.session.frame_of(t)
                for name, node in self.moving_nodes.items():
                    node.visible = name in fs.visible
                for client in self.server.get_clients().values():
                    self._look_through_client(client, t)
        self.request(self.frame)

    def _look_through_client(self, client, t: float) -> None:
        fs = self.session.shot_named(self.look_through)
        cams = self.session.shot_camera(fs, t)
        view = self._view_of(cams, self.session.lens.display_aspect)
        self._set_client_camera(client, view)
        self._place_mask(client)
        self.focal_mm = _focal_mm(view.vfov, fs.shot.lens)
        self.lens_number.value = round(self.focal_mm, 3)

    def _lens_changed(self) -> None:
        value = float(self.lens_number.value)
        if abs(value - round(self.focal_mm, 3)) < 1e-9:
            return  # our own update
        self.focal_mm = value
        vfov, aspect = _vfov(value, self.session.lens), self.session.lens.display_aspect
        for client in self.server.get_clients().values():
            self._set_client_fov(client, vfov, aspect)

    # ---- keys ----------------------------------------------------------------------------------

    def _half_frame(self) -> float:
        return 0.5 / float(self.session.fps)

    def add_key(self, view: ViewerCamera) -> int:
        """Key the shot at the current time with camera `view`; returns the key's index."""
        t = self.session.time_of(self.frame)
        key = self.keyed.styled(keyframe_from_viewer(view, t, _focal_mm(view.vfov, self.session.lens)))
        index = self.keyed.add(key, self._half_frame())
        self._fit_timeline()  # a duration set before the first key runs from it
        self._refresh_keys(index)
        self._say(f"key {index + 1} at {t:.3f} s ({key.focal_mm:g} mm); {len(self.keyed.keys)} key(s)")
        return index

    def set_duration(self, seconds: float) -> None:
        """Make the keyed shot `seconds` long (0: it ends on its last key; written as its
        `duration`, `KeyedShot.set_duration`) and grow the timeline to its last frame."""
        self.keyed.set_duration(seconds, self.session.fps)
        self._fit_timeline()
        self._draw_keys()
        if self.keyed.frame_count is None:
            self._say(f"{self.keyed.name} ends on its last key")
            return
        fps = self.session.fps
        count = self.keyed.frame_total(fps)
        longer = " (longer than asked: it runs to its last key)" if count > self.keyed.frame_count else ""
        self._say(f"{self.keyed.name}: {count} frames, {float(Fraction(count) / fps):.3f} s{longer}")

    def _duration_changed(self) -> None:
        self.set_duration(float(self.duration_number.value))

    def _fit_timeline(self) -> None:
        """Grow the timeline to the keyed shot's last frame where a set duration takes it past
        the end: from its first frame, else from now, where its first key would go."""
        keyed, s = self.keyed, self.session
        if keyed.frame_count is None:
            return
        start = keyed.start if keyed.keys else (s.time_of(self.frame) if keyed.origin is None else keyed.origin)
        count = keyed.frame_total(s.fps)
        s.extend_to(start + float(Fraction(count - 1) / s.fps))
        self.slider.max = s.frame_count - 1

    def _add_key(self, client) -> None:
        self.add_key(self._frame_view(client))

    def _selected_key(self) -> int:
        value = self.key_dropdown.value
        if value == "(none)":
            raise SplatfilmError("no key selected")
        return int(value.split(":")[0]) - 1

    def _key_action(self, action: str, client) -> None:
        i = self._selected_key()
        if action == "Delete":
            self.keyed.delete(i)
            self._refresh_keys()
            self._say(f"deleted key {i + 1}; {len(self.keyed.keys)} key(s)")
        elif action == "Go to":
            self._set_client_camera(client, self.go_to(i))
        elif action == "Re-key":
            self.rekey(i, self._frame_view(client))

    def go_to(self, index: int) -> ViewerCamera:
        """Move to key `index`'s time with the free camera and its lens in the lens field; returns
        the key's camera, for the browser to be put at."""
        key = self.keyed.keys[index]
        self.request(self.session.frame_of(key.time))
        focal = self.session.lens.focal_mm if key.focal_mm is None else key.focal_mm
        target = key.look_at if key.look_at is not None else key.position + key.orientation()[:, 2]
        self.look_dropdown.value = FREE_CAMERA
        # The field follows the lens the browser is given: "Add key" and "Re-key" read that lens.
        self.focal_mm = float(focal)
        self.lens_number.value = round(self.focal_mm, 3)
        return ViewerCamera(key.position, quat_from_rotation(key.orientation()), _vfov(focal, self.session.lens),
                            target, self.session.width / self.session.height)

    def rekey(self, index: int, view: ViewerCamera) -> None:
        """Move key `index` to the camera `view`: its pose; its focal length only where the
        lens differs from the key's (the rest of the key, its ease and tension, stays)."""
        if not 0 <= index < len(self.keyed.keys):
            raise SplatfilmError(f"no key {index + 1} (there are {len(self.keyed.keys)})")
        key = self.keyed.keys[index]
        focal = _focal_mm(view.vfov, self.session.lens)
        was = self.session.lens.focal_mm if key.focal_mm is None else key.focal_mm
        changed = abs(focal - was) > 1e-3 * was  # the browser's field of view round-trips to ~1e-6
        self.keyed.repose(index, keyframe_from_viewer(view, key.time, focal), focal if changed else None)
        self._refresh_keys(index)
        self._say(f"re-keyed key {index + 1} at {key.time:.3f} s" + (f" ({focal:g} mm)" if changed else ""))

    def _refresh_keys(self, select: int | None = None) -> None:
        options = tuple(f"{i + 1}: {k.time:.3f} s, {k.focal_mm or self.session.lens.focal_mm:.1f} mm"
                        for i, k in enumerate(self.keyed.keys)) or ("(none)",)
        self.key_dropdown.options = options
        self.key_dropdown.value = options[select if select is not None and select < len(options) else 0]
        self._draw_keys()

    def _shot_name(self) -> str:
        name = self.name_text.value.strip()
        if not name:
            raise SplatfilmError("give the shot a name")
        self.keyed.name = name
        return name

    def save_file(self, path: str | Path | None = None) -> Path:
        """Save the keys as a shot file (default: the "save to" field)."""
        self._shot_name()
        out = save_shot_file(self.keyed, self.session, path or self.save_text.value)
        self.saved_keys = list(self.keyed.keys)
        how = ("'Append to film', or include it in the film as the file's first line says, then "
               f"`splatfilm render {self.session.path.name} -o OUT --shots {self.keyed.name}` renders it"
               if self.session.kind == "film" else "`splatfilm path preview` draws its path over a scene")
        self._say(f"saved {out} ({len(self.keyed.keys)} keys); {how}")
        return out

    def _save_file(self) -> None:
        self.save_file()

    def append(self) -> Path:
        """Append the keys to the film script as a shot (`authoring.append_to_film`) and show it
        as the film's other shots: its guides, on the timeline, a choice to look through."""
        self._shot_name()
        s = self.session
        out = append_to_film(self.keyed, s)
        self.saved_keys = list(self.keyed.keys)
        fs = s.shots[-1]
        self._add_shot_guides(len(s.shots) - 1, fs)
        self._place_shot_frustums(s.time_of(self.frame))
        self.look_dropdown.options = (FREE_CAMERA, *(f.name for f in s.shots))
        self.slider.max = s.frame_count - 1  # viser sets a slider's marks only when it makes it
        self._say(f"appended {self.keyed.name} to {out} (the script before this session kept as {out.name}.bak); "
                  f"`splatfilm render {out.name} -o OUT --shots {self.keyed.name}` renders it")
        return out

    def _append(self) -> None:
        self.append()

    # ---- render --------------------------------------------------------------------------------

    def render_frame(self, view: ViewerCamera | None) -> np.ndarray:
        """splatfilm's render of the current frame: the shot looked through, else `view` at the
        session's image size (at most 960 pixels wide); uint8 [H,W,3], also shown in the GUI."""
        s = self.session
        t, look_through = s.time_of(self.frame), self.look_through  # as they are when asked
        if look_through is not None:
            rgb = self.renders.shot_frame(s.shot_named(look_through), t)
        else:
            if view is None:
                raise SplatfilmError("no browser connected: nothing to render the view of")
            width = min(s.width, 960)
            height = max(1, round(width * s.height / s.width))
            rgb = self.renders.camera(canvas_camera(view, width, height), t, None, s.lens.near, s.lens.far)
        image = to_uint8(rgb)
        self.last_render = image
        self.render_image.image = image
        return image

    def _render(self, client) -> None:
        self._say("rendering ...")
        started = _time.perf_counter()
        self.render_frame(self._frame_view(client) if client is not None else None)
        self._say(f"rendered {self.session.label(self.session.time_of(self.frame), self.look_through)} "
                  f"with {self.renders.backend} in {_time.perf_counter() - started:.1f} s")
