"""A batch of cameras in splatfilm's internal convention (see docs/CONVENTIONS.md).

Stored, float64 numpy on the CPU (cameras are few; precision matters more than speed):
    viewmats    [C, 4, 4]  world-to-camera, OpenCV axes (x right, y down, looking down +z)
    Ks          [C, 3, 3]  intrinsics in pixels (fx, fy per radian for EQUIRECTANGULAR);
                           pixel (i, j) covers [i, i+1) x [j, j+1)
    widths      [C]        int64 image width in pixels
    heights     [C]        int64 image height in pixels
    distortion  [C, 6]     (k1, k2, k3, k4, p1, p2), nerfstudio's order; zeros for none
    camera_model  C strings: "PINHOLE", "OPENCV" (radial-tangential), "OPENCV_FISHEYE" (equidistant)
                  or "EQUIRECTANGULAR" (longitude/latitude; fx, fy in pixels per radian)
    names         C image paths as the source wrote them, or None

There is no separate single-camera type: a camera is a 1-element `Cameras` (`cams[i]`).

Other conventions converted here:
    OpenGL / nerfstudio / Blender camera-to-world: c2w_gl = c2w_cv @ diag(1, -1, -1, 1)
    COLMAP: world-to-camera in OpenCV axes as a unit quaternion (qw, qx, qy, qz) and t [3]

`align_cameras` compares two sets of cameras of the same images (an SfM model and the true
cameras) up to a similarity, by `scene.transforms.umeyama`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike

from splatfilm.errors import SplatfilmError
from splatfilm.scene.transforms import quat_from_rotation, rotation_angle_deg, rotation_from_quat, umeyama

CAMERA_MODELS = ("PINHOLE", "OPENCV", "OPENCV_FISHEYE", "EQUIRECTANGULAR")
"""Projection models a `Cameras` may hold (nerfstudio's names; distortion in (k1,k2,k3,k4,p1,p2));
docs/CONVENTIONS.md gives each one's projection."""


def check_camera_model(model: str, where: str | None = None) -> None:
    """Raise SplatfilmError '[where: ]camera model 'X' is not one of PINHOLE, ...' unless
    `model` is one of CAMERA_MODELS."""
    if model not in CAMERA_MODELS:
        raise SplatfilmError(("" if where is None else f"{where}: ")
                             + f"camera model {model!r} is not one of {', '.join(CAMERA_MODELS)}")


# Flipping y and z turns OpenCV camera axes into OpenGL ones and back (it is its own inverse).
_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])

# Rotation blocks further than this from orthonormal are not camera poses (a scaled or sheared
# matrix); float32 files are good to ~1e-7, so this only catches real mistakes.
_ORTHO_TOL = 1e-3
# Largest image side a camera may render: a 32768^2 float RGBA frame is already 16 GiB.
MAX_IMAGE_SIDE = 32768


def sizes_text(counts: dict[tuple, int], most: int = 4) -> str:
    """Image sizes for a message: '388x524' for one; '388x524 (49), 524x388 (31)' for several
    (with how many images have each), the first `most` then '... and K more'. A key is (width,
    height) or (width, height, label), the label (a lens: '3.81 mm') shown where labels differ."""
    if len(counts) == 1:
        return "{}x{}".format(*next(iter(counts))[:2])
    labelled = len({key[2:] for key in counts}) > 1
    items = [f"{key[0]}x{key[1]}" + (f", {key[2] or 'lens unknown'}" if labelled else "") + f" ({k})"
             for key, k in counts.items()]
    more = f" ... and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def vector_text(v: ArrayLike) -> str:
    """A vector [K] for a message: '(x, y, z)', each to 10 significant digits, enough for a
    frame.origin_offset millions of metres out to read to the millimetre."""
    return "(" + ", ".join(f"{x:.10g}" for x in np.asarray(v).reshape(-1)) + ")"


def centred_K(fx: ArrayLike, fy: ArrayLike, width: ArrayLike, height: ArrayLike) -> np.ndarray:
    """Intrinsics [...,3,3] in pixels with focal lengths fx, fy (pixels; arrays broadcast) and
    the principal point at the centre of a `width` x `height` image (width / 2, height / 2:
    pixel edges at integers), as film lenses and synthetic views have it."""
    fx, fy = np.asarray(fx, dtype=np.float64), np.asarray(fy, dtype=np.float64)
    K = np.zeros(np.broadcast_shapes(fx.shape, fy.shape) + (3, 3))
    K[..., 0, 0], K[..., 1, 1] = fx, fy
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = width / 2, height / 2, 1.0
    return K


def focal_px_for_fov(fov: float, size_px: float) -> float:
    """Pinhole focal length in pixels whose field of view across `size_px` pixels is `fov`
    radians: size / 2 / tan(fov / 2)."""
    return 0.5 * size_px / math.tan(0.5 * fov)


def fov_for_focal_px(focal_px: float, size_px: float) -> float:
    """Field of view in radians across `size_px` pixels of a pinhole focal length in pixels
    (the inverse of `focal_px_for_fov`)."""
    return 2.0 * math.atan(0.5 * size_px / focal_px)


def world_to_camera(points: np.ndarray | torch.Tensor,
                    viewmat: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Camera-space points [...,3] (OpenCV axes, scene units) of world points [...,3] through one
    world-to-camera `viewmat` [4,4]: R x + t. numpy arrays or torch tensors (both of one kind)."""
    return points @ viewmat[:3, :3].T + viewmat[:3, 3]


def _as_float64(x, name: str) -> np.ndarray:
    """numpy float64 copy of an array-like or (any-device) torch tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SplatfilmError(f"Cameras.{name} is not an array of numbers ({e})") from None


def _broadcast(x: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Broadcast a per-batch value (e.g. one K [3,3] for all cameras) to the batch shape."""
    try:
        return np.ascontiguousarray(np.broadcast_to(x, shape))
    except ValueError:
        raise SplatfilmError(f"Cameras.{name} has shape {x.shape}, expected {shape}") from None


def _as_batch_c2w(c2w, name: str = "c2w") -> np.ndarray:
    """Camera-to-world [C,4,4] from [C,4,4], [C,3,4], [4,4] or [3,4]."""
    m = _as_float64(c2w, name)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] not in ((3, 4), (4, 4)):
        raise SplatfilmError(f"{name} has shape {m.shape}, expected [C,4,4] or [C,3,4]")
    if m.shape[1] == 3:
        bottom = np.broadcast_to(np.array([0.0, 0.0, 0.0, 1.0]), (m.shape[0], 1, 4))
        m = np.concatenate([m, bottom], axis=1)
    return m


@dataclass(eq=False)
class Cameras:
    """A batch of C cameras (see the module docstring for shapes and conventions).

    The constructor copies its inputs to float64 / int64 numpy and validates them; per-batch
    values broadcast, so one K [3,3], a scalar width, one distortion [6], one model string or
    `names=None` apply to every camera. Bad values raise SplatfilmError.
    """

    viewmats: np.ndarray
    Ks: np.ndarray
    widths: np.ndarray
    heights: np.ndarray
    distortion: np.ndarray | None = None
    camera_model: list[str] | str | None = None
    names: list[str | None] | None = None

    def __post_init__(self) -> None:
        v = _as_float64(self.viewmats, "viewmats")
        if v.ndim == 2:
            v = v[None]
        if v.ndim != 3 or v.shape[1:] != (4, 4):
            raise SplatfilmError(f"Cameras.viewmats has shape {v.shape}, expected [C,4,4]")
        c = v.shape[0]
        self.viewmats = v
        self.Ks = _broadcast(_as_float64(self.Ks, "Ks"), (c, 3, 3), "Ks")
        sizes = {}
        for name in ("widths", "heights"):
            s = _broadcast(_as_float64(getattr(self, name), name), (c,), name)
            if not np.all(np.isfinite(s)) or np.any(s != np.round(s)):
                raise SplatfilmError(f"Cameras.{name} must be whole numbers of pixels, got {s.tolist()}")
            sizes[name] = s.astype(np.int64)
        self.widths, self.heights = sizes["widths"], sizes["heights"]
        dist = np.zeros(6) if self.distortion is None else _as_float64(self.distortion, "distortion")
        self.distortion = _broadcast(dist, (c, 6), "distortion")
        models = self.camera_model
        if models is None:
            # No model given: the plainest one that the distortion values allow.
            models = ["PINHOLE" if not np.any(d) else "OPENCV" for d in self.distortion]
        elif isinstance(models, str):
            models = [models] * c
        self.camera_model = list(models)
        self.names = [None] * c if self.names is None else list(self.names)
        if len(self.camera_model) != c or len(self.names) != c:
            raise SplatfilmError(
                f"Cameras has {c} viewmats but {len(self.camera_model)} camera_model and {len(self.names)} names"
            )
        self._validate()

    def _validate(self) -> None:
        """Reject what would render garbage silently: non-finite or non-rigid poses, bad intrinsics."""
        for i in range(len(self)):
            v, K = self.viewmats[i], self.Ks[i]
            where = f"camera {i}" + (f" ({self.names[i]})" if self.names[i] else "")
            if not np.all(np.isfinite(v)):
                raise SplatfilmError(f"{where}: pose has non-finite values")
            if not np.allclose(v[3], [0, 0, 0, 1], atol=1e-6):
                raise SplatfilmError(f"{where}: pose bottom row is {v[3].tolist()}, expected [0, 0, 0, 1]")
            R = v[:3, :3]
            if np.abs(R @ R.T - np.eye(3)).max() > _ORTHO_TOL or np.linalg.det(R) < 0:
                raise SplatfilmError(f"{where}: pose rotation is not a rotation matrix (scaled, sheared or mirrored)")
            if not np.all(np.isfinite(K)):
                raise SplatfilmError(f"{where}: intrinsics have non-finite values")
            if K[0, 1] != 0 or K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0 or K[2, 2] != 1:
                raise SplatfilmError(f"{where}: K must be [[fx,0,cx],[0,fy,cy],[0,0,1]], got {K.tolist()}")
            if not (K[0, 0] > 0 and K[1, 1] > 0):
                raise SplatfilmError(f"{where}: focal lengths must be > 0, got fx={K[0, 0]} fy={K[1, 1]}")
            if not (0 < self.widths[i] <= MAX_IMAGE_SIDE and 0 < self.heights[i] <= MAX_IMAGE_SIDE):
                raise SplatfilmError(f"{where}: image size must be 1-{MAX_IMAGE_SIDE} pixels a side, "
                                     f"got {self.widths[i]}x{self.heights[i]}")
            if not np.all(np.isfinite(self.distortion[i])):
                raise SplatfilmError(f"{where}: distortion has non-finite values")
            model = self.camera_model[i]
            check_camera_model(model, where)
            if model == "PINHOLE" and np.any(self.distortion[i]):
                raise SplatfilmError(f"{where}: PINHOLE camera with non-zero distortion (use OPENCV)")
            if model == "EQUIRECTANGULAR" and np.any(self.distortion[i]):
                raise SplatfilmError(f"{where}: EQUIRECTANGULAR camera with non-zero distortion (it has none)")

    # ---- construction -------------------------------------------------------------------

    @staticmethod
    def from_c2w_opencv(
        c2w: ArrayLike | torch.Tensor,
        Ks: ArrayLike | torch.Tensor,
        widths: ArrayLike,
        heights: ArrayLike,
        distortion: ArrayLike | torch.Tensor | None = None,
        camera_model: list[str] | str | None = None,
        names: list[str | None] | None = None,
    ) -> "Cameras":
        """From camera-to-world [C,4,4] or [C,3,4] in OpenCV axes (other arguments as the fields)."""
        m = _as_batch_c2w(c2w)
        if not np.all(np.isfinite(m)):
            raise SplatfilmError("camera-to-world pose has non-finite values")
        try:
            viewmats = np.linalg.inv(m)
        except np.linalg.LinAlgError:
            i = next(i for i in range(len(m)) if np.linalg.matrix_rank(m[i]) < 4)
            where = f"camera {i}" + (f" ({names[i]})" if names is not None and i < len(names) and names[i] else "")
            raise SplatfilmError(f"{where}: camera-to-world pose is singular, not a rotation and translation") from None
        return Cameras(viewmats, Ks, widths, heights, distortion, camera_model, names)

    @staticmethod
    def from_c2w_opengl(
        c2w: ArrayLike | torch.Tensor,
        Ks: ArrayLike | torch.Tensor,
        widths: ArrayLike,
        heights: ArrayLike,
        distortion: ArrayLike | torch.Tensor | None = None,
        camera_model: list[str] | str | None = None,
        names: list[str | None] | None = None,
    ) -> "Cameras":
        """From camera-to-world [C,4,4] or [C,3,4] in OpenGL / nerfstudio / Blender axes (y up, -z forward)."""
        return Cameras.from_c2w_opencv(
            _as_batch_c2w(c2w) @ _FLIP_YZ, Ks, widths, heights, distortion, camera_model, names
        )

    @staticmethod
    def from_colmap(
        qvecs: ArrayLike | torch.Tensor,
        tvecs: ArrayLike | torch.Tensor,
        Ks: ArrayLike | torch.Tensor,
        widths: ArrayLike,
        heights: ArrayLike,
        distortion: ArrayLike | torch.Tensor | None = None,
        camera_model: list[str] | str | None = None,
        names: list[str | None] | None = None,
    ) -> "Cameras":
        """From COLMAP world-to-camera poses: qvecs [C,4] (qw, qx, qy, qz), tvecs [C,3]."""
        q = _as_float64(qvecs, "qvecs").reshape(-1, 4)
        t = _as_float64(tvecs, "tvecs").reshape(-1, 3)
        if q.shape[0] != t.shape[0]:
            raise SplatfilmError(f"{q.shape[0]} quaternions but {t.shape[0]} translations")
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(t))):
            raise SplatfilmError("COLMAP pose has non-finite values")
        v = np.tile(np.eye(4), (q.shape[0], 1, 1))
        if not np.all(np.linalg.norm(q, axis=-1) > 0):
            raise SplatfilmError("a COLMAP quaternion has zero length")
        v[:, :3, :3] = rotation_from_quat(q)
        v[:, :3, 3] = t
        return Cameras(v, Ks, widths, heights, distortion, camera_model, names)

    @staticmethod
    def concat(items: "Sequence[Cameras]") -> "Cameras":
        """All cameras of `items`, in order."""
        if not items:
            raise SplatfilmError("Cameras.concat needs at least one Cameras")
        return Cameras(
            np.concatenate([c.viewmats for c in items]),
            np.concatenate([c.Ks for c in items]),
            np.concatenate([c.widths for c in items]),
            np.concatenate([c.heights for c in items]),
            np.concatenate([c.distortion for c in items]),
            [m for c in items for m in c.camera_model],
            [n for c in items for n in c.names],
        )

    # ---- sizes and indexing -------------------------------------------------------------

    def __len__(self) -> int:
        return self.viewmats.shape[0]

    def __getitem__(self, index) -> "Cameras":
        """A sub-batch: an int gives a 1-element Cameras; slices, int arrays and bool masks work too."""
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"camera index {i} out of range for {len(self)} cameras")
            i %= len(self)
            index = slice(i, i + 1)
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        picks = np.arange(len(self))[index]
        return Cameras(
            self.viewmats[picks],
            self.Ks[picks],
            self.widths[picks],
            self.heights[picks],
            self.distortion[picks],
            [self.camera_model[j] for j in picks],
            [self.names[j] for j in picks],
        )

    def __iter__(self) -> Iterator["Cameras"]:
        for i in range(len(self)):
            yield self[i]

    def index_of(self, name: str) -> int:
        """The index of the camera named `name`: its image path as the source wrote it
        (`images/frame_00012.png`), else its file name (`frame_00012.png`), else that without
        its extension (`frame_00012`), as a person reading the image folder names it.
        SplatfilmError when no camera or more than one has that name."""
        for key in (lambda n: n, lambda n: Path(n).name, lambda n: Path(n).stem):
            hits = [i for i, n in enumerate(self.names) if n is not None and key(n) == name]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise SplatfilmError(f"{len(hits)} cameras are named {name!r} "
                                     f"({', '.join(str(self.names[i]) for i in hits[:3])}); give its whole path")
        known = [n for n in self.names if n is not None]
        listed = (f"they are {', '.join(known[:3])}{', ...' if len(known) > 3 else ''}" if known
                  else "none has a name")
        raise SplatfilmError(f"no camera named {name!r} among the {len(self)} cameras ({listed})")

    def __repr__(self) -> str:
        return f"Cameras(n={len(self)}, sizes={sorted(self.sizes)}, models={sorted(set(self.camera_model))})"

    # ---- intrinsics accessors -----------------------------------------------------------

    @property
    def fx(self) -> np.ndarray:
        """Focal length along x in pixels [C]."""
        return self.Ks[:, 0, 0].copy()

    @property
    def fy(self) -> np.ndarray:
        """Focal length along y in pixels [C]."""
        return self.Ks[:, 1, 1].copy()

    @property
    def cx(self) -> np.ndarray:
        """Principal point x in pixels [C] (pixel-edge convention: the image centre is width / 2)."""
        return self.Ks[:, 0, 2].copy()

    @property
    def cy(self) -> np.ndarray:
        """Principal point y in pixels [C]."""
        return self.Ks[:, 1, 2].copy()

    # ---- pose conversions ---------------------------------------------------------------

    def to_c2w_opencv(self) -> np.ndarray:
        """Camera-to-world [C,4,4] in OpenCV axes."""
        return np.linalg.inv(self.viewmats)

    def to_c2w_opengl(self) -> np.ndarray:
        """Camera-to-world [C,4,4] in OpenGL / nerfstudio / Blender axes (y up, looking down -z)."""
        return self.to_c2w_opencv() @ _FLIP_YZ

    def to_colmap(self) -> tuple[np.ndarray, np.ndarray]:
        """COLMAP world-to-camera poses: qvecs [C,4] (qw, qx, qy, qz, qw >= 0) and tvecs [C,3]."""
        return quat_from_rotation(self.viewmats[:, :3, :3]), self.viewmats[:, :3, 3].copy()

    @property
    def centers(self) -> np.ndarray:
        """Camera centres in world coordinates [C,3]."""
        return self.to_c2w_opencv()[:, :3, 3]

    @property
    def sizes(self) -> dict[tuple[int, int], int]:
        """How many cameras render each (width, height), the sizes in order of first appearance."""
        return dict(Counter(zip(self.widths.tolist(), self.heights.tolist())))

    # ---- derived cameras ----------------------------------------------------------------

    def _replace(self, viewmats=None, Ks=None, widths=None, heights=None) -> "Cameras":
        """A copy with some fields replaced (and validated again)."""
        return Cameras(
            self.viewmats if viewmats is None else viewmats,
            self.Ks if Ks is None else Ks,
            self.widths if widths is None else widths,
            self.heights if heights is None else heights,
            self.distortion,
            self.camera_model,
            self.names,
        )

    def resized(self, width: int, height: int) -> "Cameras":
        """The same cameras rendering `width` x `height` pixels (same field of view).

        Intrinsics scale by sx = width / widths and sy = height / heights; with pixel edges at
        integers, cx scales as cx * sx (no half-pixel shift). Distortion is unitless and kept.
        """
        if not (int(width) == width and int(height) == height and 0 < width <= MAX_IMAGE_SIDE
                and 0 < height <= MAX_IMAGE_SIDE):
            raise SplatfilmError(f"an image size is 1-{MAX_IMAGE_SIDE} pixels a side, got {width}x{height}")
        sx = width / self.widths
        sy = height / self.heights
        Ks = self.Ks.copy()
        Ks[:, 0, :] *= sx[:, None]
        Ks[:, 1, :] *= sy[:, None]
        return self._replace(Ks=Ks, widths=int(width), heights=int(height))

    def transformed(self, rotation: ArrayLike | None = None, translation: ArrayLike | None = None,
                    scale: float = 1.0) -> "Cameras":
        """Move the cameras by the world similarity x -> scale * R x + t, like `Gaussians.transformed`.

        rotation [3,3] proper rotation; translation [3]; scale > 0. Centres move as points,
        orientations rotate by R, intrinsics are kept: Gaussians and cameras moved by the same
        transform render the same images.
        """
        R = np.eye(3) if rotation is None else _as_float64(rotation, "rotation")
        t = np.zeros(3) if translation is None else _as_float64(translation, "translation")
        if R.shape != (3, 3) or t.shape != (3,):
            raise SplatfilmError(f"rotation must be [3,3] and translation [3], got {R.shape} and {t.shape}")
        if not scale > 0:
            raise SplatfilmError(f"scale must be > 0, got {scale}")
        c2w = self.to_c2w_opencv()
        out = np.tile(np.eye(4), (len(self), 1, 1))
        out[:, :3, :3] = R @ c2w[:, :3, :3]
        out[:, :3, 3] = scale * c2w[:, :3, 3] @ R.T + t
        return self._replace(viewmats=np.linalg.inv(out))

    def in_offset_frame(self, origin_offset: ArrayLike) -> tuple["Cameras", bool]:
        """These cameras in the frame of an asset stored with its capture's world moved by
        -origin_offset [3] (x_asset = x_capture - origin_offset; `fit` centres a capture far from
        the origin so), and whether they were moved: cameras whose mean centre lies nearer
        origin_offset than the origin are in the capture's world and move; others (the asset's
        own ASSET.cameras.json, a camera path keyed in its frame) are already there. Offsets are
        recorded only where they are many times the capture's size, so the two never mix up."""
        offset = _as_float64(origin_offset, "origin_offset").reshape(3)
        if len(self) == 0:
            return self, False
        centre = self.centers.mean(axis=0)
        if np.linalg.norm(centre - offset) >= np.linalg.norm(centre):
            return self, False
        return self.transformed(translation=-offset), True

    def in_asset_frame(self, origin_offset: ArrayLike, source: str | Path,
                       asset: str | Path) -> tuple["Cameras", str | None]:
        """`in_offset_frame` for cameras read from the file `source`, rendered on (or cleaning,
        meshing) the asset file `asset` whose frame.origin_offset [3] is `origin_offset`: the
        cameras, and the note to print where they were moved (None where they were not)."""
        moved, did = self.in_offset_frame(origin_offset)
        if not did:
            return moved, None
        return moved, (f"note: {source}: in the capture's world, {Path(asset).name}'s frame moved by its "
                       f"origin_offset; moved by -{vector_text(origin_offset)} to it")

    # ---- rendering ----------------------------------------------------------------------

    def to_tensors(
        self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(viewmats [C,4,4], Ks [C,3,3]) as torch tensors, as gsplat's `rasterization` takes them."""
        return (
            torch.tensor(self.viewmats, dtype=dtype, device=device),
            torch.tensor(self.Ks, dtype=dtype, device=device),
        )

    def render_arguments(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> dict:
        """Everything `splatfilm.render.rasterization` (and `peak_blend_weights`) takes of these
        cameras, to pass whole (`rasterization(g, **cams.render_arguments(), ...)`) so no caller
        drops the lens: viewmats [C,4,4] and Ks [C,3,3] (`to_tensors(dtype, device)`), width and
        height (pixels), camera_model, and distortion [C,6] float64 on the CPU for the two OPENCV
        models (None for PINHOLE and EQUIRECTANGULAR, which have none). One render draws one size
        through one model: cameras that differ in either are indexed one at a time (`cams[i]`)."""
        if len(self.sizes) != 1 or len(set(self.camera_model)) != 1:
            raise SplatfilmError(f"one render draws one image size through one camera model; these cameras have "
                                 f"{sizes_text(self.sizes)} through {', '.join(sorted(set(self.camera_model)))}: "
                                 f"render them one at a time")
        viewmats, Ks = self.to_tensors(dtype, device)
        model = self.camera_model[0]
        distortion = None if model in ("PINHOLE", "EQUIRECTANGULAR") else torch.tensor(self.distortion,
                                                                                         dtype=torch.float64)
        return {"viewmats": viewmats, "Ks": Ks, "width": int(self.widths[0]), "height": int(self.heights[0]),
                "camera_model": model, "distortion": distortion}


# ---- comparing worlds -----------------------------------------------------------------------


@dataclass
class Alignment:
    """Similarity x_ref = scale * R @ x_est + t between an estimated and a reference world.

    centre_errors:   [M] distance of each matched camera centre from its reference, after
                     alignment, in reference units (metres for the bundled captures).
    rotation_errors: [M] angle between aligned and reference camera orientations, degrees.
    names:           the M matched image names (matched by file name without folders).
    """

    R: np.ndarray
    t: np.ndarray
    scale: float
    centre_errors: np.ndarray
    rotation_errors: np.ndarray
    names: list[str]


def align_cameras(estimated: Cameras, reference: Cameras) -> Alignment:
    """Align `estimated` (e.g. read_colmap of an SfM model) to `reference` (e.g. the true
    transforms.json) by Umeyama on the camera centres of images with the same file name."""
    def key(name: str | None) -> str | None:
        return None if name is None else Path(name).name

    ref_index = {key(n): i for i, n in enumerate(reference.names) if n is not None}
    pairs = [(i, ref_index[key(n)]) for i, n in enumerate(estimated.names) if key(n) in ref_index]
    if len(pairs) < 3:
        raise SplatfilmError(f"align_cameras: only {len(pairs)} cameras share image names (need 3)")
    ie, ir = (np.array(x) for x in zip(*pairs))
    ce, cr = estimated.centers[ie], reference.centers[ir]
    R, t, s = umeyama(ce, cr)
    centre_err = np.linalg.norm(s * ce @ R.T + t - cr, axis=1)
    # Camera-to-world rotations: aligned = R @ R_est; compare with the reference's.
    Re = estimated.to_c2w_opencv()[ie, :3, :3]
    Rr = reference.to_c2w_opencv()[ir, :3, :3]
    angles = rotation_angle_deg(np.einsum("nji,jk,nkl->nil", Rr, R, Re))  # of R_ref^T @ R @ R_est
    return Alignment(R, t, s, centre_err, angles, [estimated.names[i] for i in ie])


def nearest_views(cameras: Cameras, candidates: Sequence[int], queries: Cameras, *, scale: float,
                  angle_weight: float, k: int = 1) -> list[list[int]]:
    """For each camera of `queries`, the `k` candidates (indices into `cameras`) that best see
    what it sees, best first: scored by the distance between the centres over `scale` (scene
    units, e.g. the rig's radius) plus `angle_weight` times (1 - cos) of the angle between the
    optical axes, so a view from the same place looking elsewhere is not near. Ties keep the
    order of `candidates`; no candidates give an empty list per query.
    Returns Q lists of min(k, len(candidates)) indices."""
    candidates = list(candidates)
    if not candidates:
        return [[] for _ in range(len(queries))]
    c2w = cameras.to_c2w_opencv()[candidates]
    q = queries.to_c2w_opencv()
    dist = np.linalg.norm(q[:, None, :3, 3] - c2w[None, :, :3, 3], axis=2) / max(scale, 1e-9)
    cos = np.clip(np.einsum("qi,ci->qc", q[:, :3, 2], c2w[:, :3, 2]), -1, 1)
    order = np.argsort(dist + angle_weight * (1 - cos), axis=1, kind="stable")[:, :k]
    return [[candidates[int(i)] for i in row] for row in order]
