"""Load a capture for fitting: cameras, images (and object alpha), initial points.

What DATA holds decides the kind:
- a nerfstudio dataset folder (`transforms.json` + images; `mask_path` per frame; the
  `ply_file_path` point cloud when present; `train_filenames` / `val_filenames` /
  `test_filenames` as its split), frames sorted by file name as nerfstudio's dataparser sorts
  them;
- a COLMAP folder (a model where `camera_files.find_colmap_model` looks: `sparse/0`,
  `sparse`, nerfstudio's `colmap/sparse/0`, binary or text, beside `images/`), points3D kept;
- a folder of bare images, or a video file: poses come from structure-from-motion first
  (`splatfilm.fit.sfm`), its model saved in a work folder beside the output for reuse.

RGBA images with any transparent pixel make an object capture (a character or a prop): the
alpha channel becomes the alpha target. Masks make one the same way, each mask becoming its
image's alpha (`read_object_mask`: black and white, white = the object; named like its image,
or its name with .png, as nerfstudio's `masks_path` names them):
`--masks DIR` (`masks=`) for bare photos, a video's frames, a COLMAP folder or a nerfstudio
dataset. Only there: a transforms.json `mask_path` keeps nerfstudio's meaning (its black
pixels are left out of the loss and the held-out metrics, as undistortion's unsampled border
is, `valid`: ns-process-data's --crop-factor and fisheye-circle masks, or per frame a passer-by
or a rig to ignore), and so does a `masks/` folder beside images/ (nerfstudio's colmap
`masks_path`), which is not read without `--masks` (a note says so); the capture stays a scene.

Everything is read and checked here, before any long work starts: missing or unreadable
images, sizes other than the cameras say, duplicate names, empty folders, NaN poses each
give one SplatfilmError naming the file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from splatfilm.scene.cameras import Cameras
from splatfilm.fit.lens_views import Undistorter
from splatfilm.errors import SplatfilmError
from splatfilm.io.camera_files import find_colmap_model, read_colmap, read_transforms_json_capture
from splatfilm.io.colmap_library import load_pycolmap
from splatfilm.io.images import downscale
from splatfilm.io.photos import (IMAGE_SUFFIXES, list_images, photo_folder, read_photo, read_photo_profiled,
                                 unread_photos_note)

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}
# Camera models the fit trains through (renders with their own projection); OPENCV images are
# undistorted into pinhole ones instead.
LENS_MODELS_FITTED = ("OPENCV_FISHEYE", "EQUIRECTANGULAR")
# The COLMAP camera model SfM gives bare photos and video frames for a fit (`fit.sfm.CAMERA_MODELS`):
# OPENCV (k1 k2 p1 p2), as nerfstudio's ns-process-data gives a "perspective" capture, since
# phone and action-camera lenses distort: the flowerpot fixture's phone photos have k1 0.13,
# k2 -0.27, and a pinhole puts their rays a median 0.8 px, up to 7.6 px, off at 388x524. The
# fit undistorts OPENCV images into the same pinhole camera before training (`Undistorter`).
SFM_CAMERA_MODEL = "OPENCV"


@dataclass
class Capture:
    """A loaded capture at training resolution. C images.

    cameras: `Cameras`: PINHOLE (OPENCV images are undistorted into the same pinhole camera),
    or OPENCV_FISHEYE / EQUIRECTANGULAR with their distortion, images as shot (the fit renders
    through that lens; a capture may mix models);
    images: C uint8 arrays [H,W,3]; masks: C float32 arrays [H,W,1] in [0,1], the alpha
    target of an object capture (None for a scene); valid: C bool arrays [H,W,1] or None,
    pixels that carry data (False where undistortion had nothing to sample or a nerfstudio
    `mask_path` leaves the pixel out), the only pixels the loss and metrics see;
    points / point_colors: [P,3] world positions and RGB in [0,1] to start from, or None;
    weights: C loss weights, or None for 1 each (refinement's pseudo-views weigh less than photos);
    split: (train, held-out) indices the capture's file names (nerfstudio's
    train/val/test_filenames), None to hold out every n-th image (`train_test`).
    """

    cameras: Cameras
    images: list[np.ndarray]
    names: list[str]
    masks: list[np.ndarray] | None = None
    valid: list[np.ndarray] | None = None
    points: np.ndarray | None = None
    point_colors: np.ndarray | None = None
    source: dict = field(default_factory=dict)
    weights: list[float] | None = None
    split: tuple[list[int], list[int]] | None = None

    @property
    def is_object(self) -> bool:
        return self.masks is not None

    def train_test(self, test_every: int) -> tuple[list[int], list[int], str]:
        """(train indices, held-out indices, how they were chosen in words): the split the
        capture's file names (`split`), else every `test_every`-th image held out
        (`split_indices`); test_every 0 trains on every image, whatever the file names."""
        if self.split is not None and test_every > 0:
            return list(self.split[0]), list(self.split[1]), "transforms.json's *_filenames"
        train, test = split_indices(len(self), test_every)
        return train, test, f"one in {test_every}" if test_every > 0 else "--test-every 0"

    def subset(self, indices: list[int]) -> "Capture":
        """The capture restricted to `indices` (in that order); points are kept."""
        pick = lambda xs: None if xs is None else [xs[i] for i in indices]  # noqa: E731
        split = None
        if self.split is not None:
            parts = [set(part) for part in self.split]
            split = tuple([j for j, i in enumerate(indices) if i in part] for part in parts)
        return Capture(self.cameras[list(indices)], pick(self.images), pick(self.names), pick(self.masks),
                       pick(self.valid), self.points, self.point_colors, dict(self.source), pick(self.weights), split)

    def downscaled(self, factor: float | None, max_size: int | None = None) -> "Capture":
        """The capture at 1/factor of its resolution, or with its longer side capped at
        max_size pixels (cameras with their images, masks and valid pixels)."""
        cams, images, masks, valid = [], [], [], []
        for i in range(len(self)):
            cam = self.cameras[i]
            w, h = _target_size(int(cam.widths[0]), int(cam.heights[0]), factor, max_size)
            cams.append(cam.resized(w, h) if (w, h) != (int(cam.widths[0]), int(cam.heights[0])) else cam)
            image, mask, ok = _resized_view(self.images[i], self.masks[i] if self.masks is not None else None,
                                            self.valid[i] if self.valid is not None else None, w, h)
            images.append(image)
            if self.masks is not None:
                masks.append(mask)
            if self.valid is not None:
                valid.append(ok)
        return Capture(Cameras.concat(cams), images, list(self.names), masks if self.masks is not None else None,
                       valid if self.valid is not None else None, self.points, self.point_colors,
                       dict(self.source), None if self.weights is None else list(self.weights), self.split)

    def translated(self, offset: np.ndarray) -> "Capture":
        """The capture moved by `offset` [3] (world units, float64): cameras and points; images
        as they are. Points come back float64, so a far capture moved near the origin keeps
        the precision its file had."""
        offset = np.asarray(offset, dtype=np.float64).reshape(3)
        points = None if self.points is None else np.asarray(self.points, dtype=np.float64) + offset
        return Capture(self.cameras.transformed(translation=offset), self.images, self.names, self.masks, self.valid,
                       points, self.point_colors, dict(self.source), self.weights, self.split)

    def __len__(self) -> int:
        return len(self.images)


def _resized_view(image: np.ndarray, mask: np.ndarray | None, valid: np.ndarray | None, width: int,
                  height: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One view's image, mask and valid pixels (either may be None) at width x height: a pixel
    stays valid only where all it covers was."""
    return (downscale(image, width, height), downscale(mask, width, height) if mask is not None else None,
            downscale(valid.astype(np.float32), width, height) > 0.999 if valid is not None else None)


def _read_loss_mask(path: Path) -> np.ndarray:
    """A nerfstudio mask_path image as bool [H,W,1]: True where the pixel counts (non-zero, as
    nerfstudio reads it), False where black."""
    im = read_photo(path) if path.suffix.lower() in IMAGE_SUFFIXES else None
    if im is None:
        raise SplatfilmError(f"{path}: mask is not an image file")
    from PIL import Image

    with Image.open(path) as raw:
        if raw.mode in ("I;16", "I;16L", "I;16B", "I"):
            # Read as stored: a 16-bit mask of 0 and 1 (as a label tool writes it) is kept where
            # 1; brought down to 8 bits (read_photo) every pixel was 0, the whole image left out.
            return np.asarray(raw)[..., None] > 0
    return im[..., 0:1] > 0


def read_object_mask(path: Path) -> np.ndarray:
    """An object mask image as float32 [H,W,1] in {0, 1}: 1 where white (the object). Black and
    white, 8 or 16 bit (16-bit 0/1 label images too); a soft or JPEG-noisy edge is thresholded
    at half. Raises SplatfilmError for a file that is no image, a colour image, or one whose
    grey pixels are more than MASK_GREY_MAX of it (a photo or a depth map given as a mask)."""
    from PIL import Image

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise SplatfilmError(f"{path}: mask is not an image file ({', '.join(IMAGE_SUFFIXES)})")
    im = read_photo(path)
    with Image.open(path) as raw:
        if raw.mode in ("I;16", "I;16L", "I;16B", "I"):
            grey = np.asarray(raw).astype(np.float64)
            top = grey.max() if grey.max() > 0 else 1.0
            grey = grey / (1.0 if top == 1 else top)  # 0/1 labels as written, else 0..max
        else:
            if im.shape[-1] == 4 and (im[..., 3] < 255).any():
                raise SplatfilmError(f"{path}: mask has transparent pixels; a mask is black and white, white = "
                                     "the object (or give the photos an alpha channel instead)")
            rgb = im[..., :3].astype(np.int16)
            if (np.abs(rgb - rgb[..., :1]) > MASK_COLOUR_TOLERANCE).any():
                raise SplatfilmError(f"{path}: mask is in colour; a mask is black and white, white = the object")
            grey = rgb[..., 0] / 255.0
    soft = float(((grey > 0.1) & (grey < 0.9)).mean())
    if soft > MASK_GREY_MAX:
        raise SplatfilmError(f"{path}: mask is not black and white ({100 * soft:.0f}% of its pixels are grey); "
                             "white = the object, black = the rest")
    return (grey >= 0.5).astype(np.float32)[..., None]


def mask_paths_in(folder: Path, image_names: list[str], what: str) -> list[Path]:
    """The mask in `folder` of each image (`image_names`, relative to their folder): the same
    name, else the name with .png (nerfstudio's colmap `masks_path` naming). Raises a
    SplatfilmError naming the first image without one; `what` says where the folder came from."""
    if not folder.is_dir():
        raise SplatfilmError(f"{folder}: no such folder ({what})")
    out = []
    for name in image_names:
        candidates = [folder / name, (folder / name).with_suffix(".png")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise SplatfilmError(f"{folder}: no mask for image {name} (looked for "
                                 f"{' or '.join(sorted({c.name for c in candidates}))}; {what})")
        out.append(found)
    return out


# A mask may have this much of it grey (neither under 10% nor over 90% white): an anti-aliased
# or JPEG-compressed edge, not a photo or a depth map given as a mask.
MASK_GREY_MAX = 0.05
# How far (8-bit levels) a mask pixel's channels may differ and it still count as grey: JPEG
# chroma noise.
MASK_COLOUR_TOLERANCE = 24


def _target_size(w: int, h: int, downscale: float | None, max_size: int | None) -> tuple[int, int]:
    """The size (px) a w x h image trains at: divided by `downscale`, then further where its
    longer side (width or height, unlike 3DGS's cap on the width) is still over `max_size`."""
    factor = 1.0
    if downscale:
        factor = float(downscale)
    if max_size and max(w, h) / factor > max_size:
        factor = max(w, h) / max_size
    return max(1, round(w / factor)), max(1, round(h / factor))


def _finish(cameras: Cameras, image_paths: list[Path], mask_paths: list[Path | None] | None, source: dict,
            points=None, point_colors=None, downscale=None, max_size=None, cameras_file: Path | None = None,
            split: tuple[list[int], list[int]] | None = None, object_masks: list[Path] | None = None) -> Capture:
    """Read every image (and its loss mask, nerfstudio's shared mask_path, or its object mask,
    which becomes its alpha), check it against its camera, undistort, downscale."""
    if len(image_paths) == 0:
        raise SplatfilmError(f"{source.get('path')}: no images")
    seen: dict[str, Path] = {}
    for p in image_paths:
        key = str(p.resolve())
        if key in seen:
            raise SplatfilmError(f"{cameras_file or source.get('path')}: image {p.name} is listed twice")
        seen[key] = p
    # Undistort OPENCV cameras into the same pinhole camera (as gsplat's and nerfstudio's trainers
    # do); pixels with nothing to sample are masked out. Fisheyes and panoramas keep their lens:
    # the fit renders through it (their images cover more than any one pinhole view could).
    # Each image is undistorted and brought to its training size as it is read, so a capture
    # never holds more than one image at its stored size (and a map per camera: Undistorter).
    kept = np.array([m in LENS_MODELS_FITTED for m in cameras.camera_model])
    distorted = np.any(cameras.distortion != 0, axis=1) & ~kept
    undistort = Undistorter(cameras, np.flatnonzero(distorted))
    images, masks, valids, sized, any_alpha, any_invalid = [], [], [], [], False, False
    loss_masks: dict[Path, np.ndarray] = {}  # ns-process-data gives every frame the same one
    profiles: dict[str, int] = {}  # non-sRGB colour profiles read_photo converts from, counted
    for i, path in enumerate(image_paths):
        im, profile = read_photo_profiled(path)
        if profile:
            profiles[profile] = profiles.get(profile, 0) + 1
        w, h = int(cameras.widths[i]), int(cameras.heights[i])
        if im.shape[1] != w or im.shape[0] != h:
            raise SplatfilmError(f"{path}: image is {im.shape[1]}x{im.shape[0]} but "
                                 f"{(cameras_file or 'the camera file')} says {w}x{h}")
        alpha = None
        if im.shape[-1] == 4:
            alpha = im[..., 3:4].astype(np.float32) / 255.0
            any_alpha |= bool((im[..., 3] < 255).any())
            im = im[..., :3]
        if object_masks is not None:
            if alpha is not None and (alpha < 1).any():
                raise SplatfilmError(f"{path}: image has an alpha channel and a mask ({object_masks[i]}); "
                                     "give the object's outline one way")
            alpha = read_object_mask(object_masks[i])
            if alpha.shape[:2] != im.shape[:2]:
                raise SplatfilmError(f"{object_masks[i]}: mask is {alpha.shape[1]}x{alpha.shape[0]}, "
                                     f"image {path.name} is {w}x{h}")
            any_alpha = True
        valid = None
        if mask_paths is not None and mask_paths[i] is not None:
            if mask_paths[i] not in loss_masks:
                loss_masks[mask_paths[i]] = _read_loss_mask(mask_paths[i])
            valid = loss_masks[mask_paths[i]]
            if valid.shape[:2] != im.shape[:2]:
                raise SplatfilmError(f"{mask_paths[i]}: mask is {valid.shape[1]}x{valid.shape[0]}, "
                                     f"image {path.name} is {w}x{h}")
        if distorted[i]:
            im, alpha, valid = undistort(i, im, alpha, valid)
        any_invalid |= valid is not None and not valid.all()
        tw, th = _target_size(w, h, downscale, max_size) if downscale or max_size else (w, h)
        if (tw, th) != (w, h):
            im, alpha, valid = _resized_view(im, alpha, valid, tw, th)
        sized.append((tw, th))
        images.append(im)
        masks.append(alpha)
        valids.append(valid)
    is_object = any_alpha
    if is_object and any(m is None for m in masks):
        missing = image_paths[[m is None for m in masks].index(True)]
        raise SplatfilmError(f"{missing}: some images of this object capture have alpha, this one has none")

    cameras = Cameras(cameras.viewmats, cameras.Ks, cameras.widths, cameras.heights,
                      np.where(kept[:, None], cameras.distortion, 0.0),
                      [m if k else "PINHOLE" for m, k in zip(cameras.camera_model, kept)], cameras.names)
    if any((tw, th) != (int(cameras.widths[i]), int(cameras.heights[i])) for i, (tw, th) in enumerate(sized)):
        cameras = Cameras.concat([cameras[i].resized(tw, th) for i, (tw, th) in enumerate(sized)])
    if any_invalid:
        valids = [v if v is not None else np.ones(im.shape[:2] + (1,), bool) for v, im in zip(valids, images)]
    if profiles:
        source = {**source, "notes": source.get("notes", []) + [
            f"note: {n} photo{'s' if n > 1 else ''} carr{'y' if n > 1 else 'ies'} the colour profile {name!r}: converted to "
            "sRGB as read, as every output is sRGB / Rec.709" for name, n in sorted(profiles.items())]}
    capture = Capture(
        cameras=cameras,
        images=images,
        names=[str(p) for p in image_paths],
        masks=masks if is_object else None,
        valid=valids if any_invalid else None,
        points=points,
        point_colors=point_colors,
        source=source,
        split=split,
    )
    return capture


def _load_nerfstudio(folder: Path, downscale, max_size, masks: tuple[Path, str] | None = None) -> Capture:
    from splatfilm.io.ply import read_ply_points

    tf = folder / "transforms.json"
    capture = read_transforms_json_capture(tf)
    for i, name in enumerate(capture.cameras.names):
        if not name:
            raise SplatfilmError(f"{tf}: frame {i} has no file_path")
    # nerfstudio's dataparser sorts the frames by file name before it splits them: held-out
    # views and per-image appearance follow that order, not the file's.
    order = sorted(range(len(capture.cameras)), key=lambda i: Path(capture.cameras.names[i]))
    cameras = capture.cameras[order]
    image_paths = [folder / name for name in cameras.names]
    mask_paths = [folder / capture.mask_paths[i] if capture.mask_paths[i] else None for i in order]
    split = _file_split(tf, folder, image_paths, capture.splits)
    # --masks outlines are full size: read the full-size images, as a COLMAP folder does.
    reduced = None if masks else _reduced_copies(folder, [p.name for p in image_paths], downscale)
    reduced_masks = _reduced_copies(folder, [p.name for p in mask_paths if p is not None], downscale, "masks_")
    if reduced is not None and (reduced_masks is not None or not any(mask_paths)):
        cameras = _cameras_for(reduced, cameras, int(downscale), tf)
        image_paths, downscale = reduced, None
        masks_left = iter(reduced_masks or [])
        mask_paths = [None if p is None else next(masks_left) for p in mask_paths]
    points = colors = None
    if capture.ply_file_path:
        ply = folder / capture.ply_file_path
        if not ply.is_file():
            raise SplatfilmError(f"{tf}: ply_file_path {capture.ply_file_path} is not a file ({ply}); "
                                 "remove the key to start from points triangulated from the images")
        points, colors = read_ply_points(ply)
    source = {"type": "nerfstudio", "path": str(folder), "cameras": str(tf),
              "camera_convention": "nerfstudio transforms.json: camera-to-world, OpenGL axes, in the file's world frame"}
    if capture.has_depth:
        source["notes"] = [f"note: {tf}: depth_file_path depth maps are not used (the fit learns from colour alone)"]
    # --masks: the object's outline in each view; a frame's mask_path stays a loss mask.
    object_masks = mask_paths_in(masks[0], [p.name for p in image_paths], masks[1]) if masks else None
    return _finish(cameras, image_paths, mask_paths if any(m is not None for m in mask_paths) else None, source,
                   points, colors, downscale, max_size, cameras_file=tf, split=split, object_masks=object_masks)


def _file_split(tf: Path, folder: Path, image_paths: list[Path], splits: dict[str, list[str]]
                ) -> tuple[list[int], list[int]] | None:
    """(train, held-out) indices into `image_paths` from a transforms.json's train/val/test
    file name lists (paths relative to `folder`, as nerfstudio's dataparser matches them):
    held out = val and test; train = train_filenames, or every other image without one. None
    without any list."""
    if not splits:
        return None
    index = {os.path.normpath(p): i for i, p in enumerate(image_paths)}
    chosen = {}
    for key, names in splits.items():
        ids = set()
        for name in names:
            i = index.get(os.path.normpath(folder / name))
            if i is None:
                raise SplatfilmError(f"{tf}: {key} names {name}, which is no frame's file_path")
            ids.add(i)
        chosen[key] = ids
    held = chosen.get("val_filenames", set()) | chosen.get("test_filenames", set())
    train = chosen.get("train_filenames", set(range(len(image_paths))) - held)
    if not train:
        raise SplatfilmError(f"{tf}: its train_filenames / val_filenames / test_filenames leave no training images")
    return sorted(train), sorted(held)


def _reduced_copies(folder: Path, names: list[str], downscale, prefix: str = "images_") -> list[Path] | None:
    """The downscaled copies for `--downscale N` (a whole N > 1) of the images (or masks,
    prefix "masks_") called `names`: `images_N/NAME` beside the capture's own, where
    ns-process-data writes them and nerfstudio's dataparser reads them (Mip-NeRF 360 and
    gsplat's `--data_factor` use the same folders for COLMAP captures). None unless every one
    has a copy."""
    if not downscale or downscale <= 1 or float(downscale) != int(downscale):
        return None
    paths = [folder / f"{prefix}{int(downscale)}" / name for name in names]
    return paths if all(p.is_file() for p in paths) else None


def _cameras_for(paths: list[Path], cameras: Cameras, factor: int, cameras_file: Path) -> Cameras:
    """`cameras` resized to the downscaled copies at `paths` (each 1/factor of its camera's
    size, give or take the rounding of that division)."""
    from PIL import Image

    out = []
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            w, h = im.size
        W, H = int(cameras.widths[i]), int(cameras.heights[i])
        if abs(w - W / factor) > 1 or abs(h - H / factor) > 1:
            raise SplatfilmError(f"{path}: image is {w}x{h}, not 1/{factor} of the {W}x{H} {cameras_file} says")
        out.append(cameras[i].resized(w, h))
    return Cameras.concat(out)


def _colmap_points(model_dir: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    pycolmap = load_pycolmap()

    rec = pycolmap.Reconstruction(str(model_dir))
    pts = rec.points3D
    if len(pts) == 0:
        return None, None
    xyz = np.array([p.xyz for p in pts.values()], dtype=np.float64)  # a georeferenced model needs all of it
    rgb = np.array([p.color for p in pts.values()], dtype=np.float32) / 255.0
    return xyz, rgb


def _load_colmap(folder: Path, model: Path, image_dir: Path, downscale, max_size, source_type="colmap",
                 copies: bool = False, masks: tuple[Path, str] | None = None) -> Capture:
    """copies: read `folder`/images_N/ for --downscale N where every image has a copy there.
    masks: (folder of object masks named like the images, where it came from in words)."""
    cameras = read_colmap(model)
    image_paths = [image_dir / n for n in cameras.names]
    object_masks = mask_paths_in(masks[0], cameras.names, masks[1]) if masks else None
    reduced = _reduced_copies(folder, cameras.names, downscale) if copies and not masks else None
    if reduced is not None:
        cameras = _cameras_for(reduced, cameras, int(downscale), model)
        image_paths, downscale = reduced, None
    points, colors = _colmap_points(model)
    source = {"type": source_type, "path": str(folder), "cameras": str(model),
              "camera_convention": "COLMAP: world-to-camera, OpenCV axes, in the model's world frame"}
    if masks:
        source["masks"] = str(masks[0])
    return _finish(cameras, image_paths, None, source, points, colors, downscale, max_size, cameras_file=model,
                   object_masks=object_masks)


def load_capture(data: str | Path, work_dir: str | Path, downscale: float | None = None, max_size: int | None = None,
                 video_frames: int = 60, camera_model: str = SFM_CAMERA_MODEL,
                 masks: str | Path | None = None) -> Capture:
    """Load DATA (see the module docstring). `work_dir`: where SfM keeps its model and a video
    its frames (reused on a rerun). downscale: divide image sizes by this; max_size: cap on
    the longer side in pixels; camera_model: the COLMAP camera model SfM gives bare images and
    video frames (`fit.sfm.run_sfm`; a capture with cameras keeps its own); masks: a folder of
    object masks named like the images (a video: like its frames in WORK/frames), which makes
    an object capture. Raises SplatfilmError for anything wrong with the input."""
    data, work_dir = Path(data), Path(work_dir)
    given = None if masks is None else (Path(masks), "--masks")
    if not data.exists():
        raise SplatfilmError(f"{data}: no such file or folder")
    if downscale is not None and not 1 <= downscale < float("inf"):
        raise SplatfilmError(f"--downscale must be >= 1, got {downscale}")
    if data.is_file():
        if data.suffix.lower() not in VIDEO_SUFFIXES:
            raise SplatfilmError(f"{data}: not a capture (expected a folder or a video: {', '.join(sorted(VIDEO_SUFFIXES))})")
        from splatfilm.io.capture_video import frames_from_video

        frame_dir = work_dir / "frames"
        frames_from_video(data, frame_dir, video_frames)
        cap = _load_images(frame_dir, work_dir, downscale, max_size, "video", camera_model, given)
        cap.source["video"] = str(data)
        return cap
    if (data / "transforms.json").exists():
        return _load_nerfstudio(data, downscale, max_size, given)
    # nerfstudio reads a masks/ folder beside images/ as pixels to leave out; as outlines they would make an object.
    notes = ([f"note: {data / 'masks'}: not read; give it as --masks to fit the object it outlines "
              "(white = the object) without its surroundings"] if given is None and (data / "masks").is_dir() else [])
    model = find_colmap_model(data)
    if model is not None:
        # A model `splatfilm sfm` wrote says where its images are (the photos' folder, or
        # upright copies of turned photos); a COLMAP project keeps them in images/.
        from splatfilm.fit.sfm import read_sfm_image_root

        sfm_images = read_sfm_image_root(data)
        image_dir = sfm_images or (data / "images" if (data / "images").is_dir() else data)
        cap = _load_colmap(data, model, image_dir, downscale, max_size, copies=sfm_images is None, masks=given)
        return _with_notes(cap, notes if image_dir != data else [])
    image_dir = photo_folder(data)
    if not list_images(image_dir):
        note = unread_photos_note(image_dir)
        raise SplatfilmError(f"{data}: no transforms.json, no COLMAP model (sparse/0, colmap/sparse/0) and no images"
                             + (f" ({note})" if note else ""))
    cap = _load_images(image_dir, work_dir, downscale, max_size, "images", camera_model, given)
    return _with_notes(cap, notes if image_dir != data else [])


def _with_notes(cap: Capture, notes: list[str]) -> Capture:
    """`cap` with `notes` put before its source's own."""
    if notes:
        cap.source["notes"] = notes + cap.source.get("notes", [])
    return cap


def _load_images(image_dir: Path, work_dir: Path, downscale, max_size, kind: str, camera_model: str,
                 masks: tuple[Path, str] | None = None) -> Capture:
    from splatfilm.fit.sfm import read_sfm_image_root, run_sfm

    if masks is not None:  # a missing mask fails before structure-from-motion's minutes
        mask_paths_in(masks[0], [p.name for p in list_images(image_dir)], masks[1])
    # Video frames come in order: matched sequentially (with loop detection), photos exhaustively.
    model = run_sfm(image_dir, work_dir, ordered=kind == "video", camera_model=camera_model)
    # Photos stored turned are read from SfM's upright copies (in work_dir), as SfM read them.
    root = read_sfm_image_root(work_dir)
    if root is None or not root.resolve().is_relative_to(Path(work_dir).resolve()):
        root = image_dir
    cap = _load_colmap(image_dir, model, root, downscale, max_size, source_type=kind, masks=masks)
    cap.source["sfm_model"] = str(model)
    return cap


def split_indices(count: int, test_every: int) -> tuple[list[int], list[int]]:
    """(train, test) indices: every `test_every`-th image held out (0 = none), as 3DGS does."""
    if test_every <= 0:
        return list(range(count)), []
    test = [i for i in range(count) if i % test_every == 0]
    train = [i for i in range(count) if i % test_every != 0]
    if not train:
        raise SplatfilmError(f"--test-every {test_every} leaves no training images out of {count}")
    return train, test


def scene_extent(cameras: Cameras) -> tuple[np.ndarray, float]:
    """Centre of the camera positions and the largest distance of a camera from it (the
    'scene scale' 3DGS and gsplat use for learning rates and densification)."""
    centers = cameras.centers
    c = centers.mean(axis=0)
    radius = float(np.linalg.norm(centers - c, axis=1).max()) if len(centers) > 1 else 1.0
    return c, radius if radius > 0 and math.isfinite(radius) else 1.0
