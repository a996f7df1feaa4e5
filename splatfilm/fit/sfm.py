"""Camera poses from bare images: COLMAP structure-from-motion through pycolmap, on the CPU.

    run_sfm(images, work_dir) -> work_dir/sparse/0   (a COLMAP model; `io.camera_files.read_colmap` reads it,
                                                       work_dir/poses.tsv says which images were kept and why)
    triangulate_known_poses(images, cameras, work_dir) (3D points for a capture with poses but no points)
    frames_from_video(video, out_dir, count)          (evenly spaced PNG frames, for run_sfm)
    align_cameras(est, ref)                           (similarity between two worlds, e.g. SfM's and the truth,
                                                       by `scene.transforms.umeyama`)

The pipeline is COLMAP's: SIFT features (CPU), exhaustive matching for small photo sets or
sequential matching for video frames (with loop detection against a vocabulary built from the
capture's own features), incremental mapping, and the model with the most registered images
kept. Where incremental mapping leaves images out, global mapping (COLMAP's port of GLOMAP:
rotation averaging, then global positioning) runs on the same matches and the model that
registers more images is kept: incremental mapping grows from one two-view start and a walk
down a street (forward motion, small triangulation angles between neighbours) can offer it no
start it trusts, while global mapping uses every verified pair at once. Global positioning
starts from random camera positions, so it runs from GLOBAL_STARTS starts (seeds) and a model
is kept only if two of them agree: where the matches do not pin the cameras down (the Lund
street photos at half size, tests/fixtures/lund) the starts end in different models, up to
67% of the capture's extent apart, some of them split in two at a jump that every per-image
check below passes; where they do (the same photos at full size) they agree to 0.1%.

Runs repeat: the same images, options and seed give the same model, byte for byte on one
thread and almost always on more (with the same COLMAP; another CPU's floating point may still
differ in the last bit). Features and matching use every core (`num_threads`): COLMAP's
extractor numbers the images in the order their features finish, so `number_images_by_name`
renumbers them by file name before matching, and with a fixed RANSAC seed every pair's
verification then repeats whatever the thread count. Mapping, the final bundle adjustment and
the point triangulation run on one thread: on more, Ceres's scheduling makes a model differ
from run to run. What is left is COLMAP's threaded CPU matcher itself (where inside it is not
pinned down; its maintainers note that its faiss index build does not always repeat): matching
the bundled set's 10-image subset (45 pairs) again and again on the 2-core machine gave other
matches for some pairs in 6 of 960 runs on 8 threads, and in none of 300 on 4, 600 on 2 or 200
on 1; a run with other matches ends in a slightly different model. `num_threads=1`
(`sfm --threads 1`) repeats exactly, matching on one core.

Memory: COLMAP's CPU SIFT holds a scale space for each image it is extracting, one image a
thread, about 2.2 GB for a 12 MP photo (scaled to 3200x2400 first, then doubled in each
direction by its first octave); matching, mapping and the checks stay near 0.6 GB. On every
core of a 16-core workstation, 16 or more phone photos of one size would need 35 GB, and a
process killed for memory dies without a word. So where the caller leaves the threads to
COLMAP (-1), SIFT extraction runs on as many as the memory left holds (`sift_threads`: the
measured SIFT_BYTES_PER_PIXEL at the largest photo's size against `available_memory`, cgroup
limits included), and the log line says so where that is fewer than the cores; matching keeps
every core. The features do not depend on how many threads extracted them (each image's are
its own, and the images are numbered by name after), so the model is the same either way.

Every registered pose is then checked (`splatfilm.fit.pose_check`: reprojection error, observed
points, relative rotations against the matched neighbours'); the ones that fail are dropped and
the rest bundle-adjusted again, and a capture left with too few trustworthy poses is an error,
not a silent bad fit. Images of one size and lens share one camera (one set of intrinsics);
images of several sizes (a phone's portrait and landscape photos) or lenses (by their EXIF: a
phone's wide and ultra-wide cameras, a zoom's settings) get a camera each, refined on its own
(COLMAP's automatic camera mode groups photos with EXIF much the same way, by make, model, focal
length and size; it gives each image without EXIF a camera of its own, where here they share one
a size). The model's world is COLMAP's: arbitrary origin, rotation and scale (no metres, no
known up).

A finished model is reused: `work_dir/sfm.json` records the images (names, content hashes, sizes
and lenses) and options it was made from, and a later call with the same inputs returns the
existing `work_dir/sparse/0` at once. Short of that, the feature database is kept
(`work_dir/database.db`; `database.json` beside it says what its features and matches were made
from and whether each step finished): a call with another mapper or other pose limits reuses its
features and matches, and one after an interruption (Ctrl-C, a killed job) goes on where
extraction or matching stopped, ending in the model an uninterrupted run makes. Each mapping
run's model is kept in `work_dir/mapping/` while the database stays as it was, so a run stopped
during mapping or the pose checks, or rerun with other pose limits, maps only what it had not. The record is
checked against the database before it is believed (features missing or out of order go back
to extraction), an unreadable database is replaced, and a second run on the same folder is
refused while the first holds it (work_dir/splatfilm.lock). Extraction and matching, the long
steps (matching every pair of a few hundred photos takes hours on a small CPU), show progress
bars read off the database as COLMAP fills it.

Errors are SplatfilmErrors naming the folder or file: no images, an unreadable image, a video
that does not decode, SfM that registers too few images (how many of how many, with the likely
reason read off the feature and match counts), and too few poses that pass the checks (how many
of how many, and what the rest failed).
"""

from __future__ import annotations

import io
import math
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splatfilm.scene.cameras import Cameras, sizes_text
from splatfilm.errors import SplatfilmError
from splatfilm.io.colmap_library import colmap_log, kept_log_level, load_pycolmap, stderr_silenced
from splatfilm.fit.pose_check import PoseCheck, PoseLimits, failure_counts, summarize, verify_poses, write_pose_table
from splatfilm.io.atomic import atomic_path, atomic_write, make_folder
from splatfilm.io.cache import CacheEntry, read_record, write_record
from splatfilm.io.digest import content_digest, file_digest
from splatfilm.io.images import (PHOTO_SUFFIXES, QUARTER_TURNS, exif_orientation, list_images, photo_orientation,
                                  unread_photos_note, write_png, write_upright)
from splatfilm.io.manifest import Manifest
from splatfilm.scene.transforms import rotation_angle_deg, umeyama

CAMERA_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "OPENCV")
MATCHERS = ("auto", "exhaustive", "sequential")
MAPPERS = ("auto", "incremental", "global")

# Exhaustive matching costs n^2/2 pairs; past this many images "auto" matches sequentially
# (each image with its neighbours in name order, as video frames come). Video frames are
# matched sequentially at any count.
_AUTO_EXHAUSTIVE_MAX = 120

# Sequential matching: each frame with the frames 1, 2, 4, ... 2^(SEQUENTIAL_OVERLAP-1) ahead
# (COLMAP's quadratic overlap, which takes the place of a window of the next SEQUENTIAL_OVERLAP
# frames: as many pairs a frame, dense near it and reaching 512 frames ahead); loop detection
# every LOOP_DETECTION_PERIOD frames retrieves LOOP_DETECTION_IMAGES visually similar frames
# anywhere in the sequence, so a video that comes back to where it started closes the loop
# instead of drifting.
SEQUENTIAL_OVERLAP = 10
LOOP_DETECTION_PERIOD = 10
LOOP_DETECTION_IMAGES = 30
# The loop detector's vocabulary is built from the capture's own SIFT descriptors (COLMAP's
# published vocabulary trees are a download; this works offline): a seeded sample of at most
# VOCAB_DESCRIPTORS descriptors clustered into one visual word per VOCAB_DESCRIPTORS_PER_WORD,
# capped at VOCAB_MAX_WORDS (k-means on 50k descriptors and 1024 words: ~7 s on 2 cores).
VOCAB_DESCRIPTORS = 50_000
VOCAB_DESCRIPTORS_PER_WORD = 50
VOCAB_MAX_WORDS = 1024
VOCAB_KMEANS_ITERATIONS = 10

# Bump when the pipeline changes in a way that should invalidate reused models.
# 2: poses checked after mapping (poses.tsv), loop detection for sequences.
# 3: global mapping where incremental mapping leaves images out.
# 4: images numbered by name before matching; mapping on one thread.
# 5: photos stored turned (EXIF orientation) read upright.
_SFM_VERSION = 5

POSE_TABLE = "poses.tsv"
# Beside the feature database: what its features and matches were made from and how far they got.
DATABASE_RECORD = "database.json"
# Held (flock) while a run uses its work folder: two runs sharing a database lose features.
WORK_LOCK = "splatfilm.lock"
# SIFT on the CPU for run_sfm and triangulate_known_poses. Small images: COLMAP's SIFT already
# upsamples once (first_octave = -1); a lower peak threshold (COLMAP's default is 0.0067) also
# keeps the weaker blobs of soft, low-contrast images.
SIFT_PEAK_THRESHOLD = 0.004
SIFT_MAX_FEATURES = 8192
# COLMAP's SIFT extractor scales an image whose longer side is over this down to it first (its
# own default for SIFT, set here so that the memory estimate below and the extraction agree; not
# in the features' key since it is the default the key's pycolmap version stands for: another
# value belongs there too).
SIFT_MAX_IMAGE_SIZE = 3200
# COLMAP's CPU SIFT (VLFeat) extracts one image per thread, each thread holding its image's scale
# space: float32 Gaussian, difference-of-Gaussian and gradient levels of the first octave, which
# first_octave = -1 makes twice the image's width and height (about 18 planes in use, 288 bytes a
# pixel of the image). Measured (peak resident set less the process's own, one thread, pycolmap
# 4.2; benchmarks/README.md): 228 bytes a pixel of the image as extracted at 1000x750, 272 at
# 2000x1500, 280-284 at 1600x1200 to 3200x2400 (2.2 GB for a 12 MP photo); two threads and four
# (8 photos) take two and four times that. Rounded up for the photos in flight between the
# threads (decoded at full size).
SIFT_BYTES_PER_PIXEL = 300
UPRIGHT = "upright"  # work_dir's folder of upright copies of photos stored turned
VOCABULARY = "vocab_tree.bin"
# Seconds between looks at the database for the progress bars of extraction and matching.
PROGRESS_POLL_S = 1.0

# Global mapping runs from this many starts (seeds seed, seed + 1, ...); its model is kept only
# if two starts put every camera centre within GLOBAL_MAX_START_DISAGREEMENT of the capture's
# extent (the largest side of the centres' bounding box) of each other, after a similarity
# alignment. Measured: 0.1% where the matches determine the cameras (Lund at full size), 2.5%
# between the two agreeing starts of the half-size cut (a straight walk, in order), 16-67%
# between the others (see the module docstring).
GLOBAL_STARTS = 3
GLOBAL_MAX_START_DISAGREEMENT = 0.05

Log = Callable[[str], None]


@dataclass
class SfmSummary:
    """What one SfM run found (also written to work_dir/sfm.json).

    images:      images given
    registered:  images with a pose in the kept model
    features:    mean SIFT keypoints an image
    verified_pairs / pairs: image pairs with a verified two-view geometry / pairs matched
    points:      3D points in the kept model
    seconds:     wall time of extraction, matching, mapping and checking
    kept:        registered images whose poses passed the checks (poses.tsv says why others failed)
    mapper:      the mapping that made the kept model: incremental or global
    """

    images: int
    registered: int
    features: float
    verified_pairs: int
    pairs: int
    points: int
    seconds: float
    kept: int = 0
    mapper: str = "incremental"


# ---- input checks -------------------------------------------------------------------------


def image_camera(path: Path) -> tuple[int, int, str]:
    """(width, height, lens) of an image file, decoding it fully so a truncated file fails here;
    the size upright, as its EXIF orientation shows it.

    lens: what the file's EXIF says of the optics that took it ('Meizu m1 note, 3.81 mm'; the
    camera's make and model, focal length, 35 mm equivalent and digital zoom, those present),
    '' without EXIF. Photos of one size with different lenses (a phone's wide and ultra-wide
    cameras, a zoom's settings, digital zoom) have different intrinsics."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            size = int(im.width), int(im.height)
            # A broken EXIF block (a bad offset) does not make the picture unreadable: no lens.
            try:
                exif = im.getexif()
            except Exception:  # Pillow raises ValueError, OSError, struct.error, ... for bad EXIF
                return size + ("",)
            if exif_orientation(exif) in QUARTER_TURNS:  # SfM sees the upright copy (_upright_folder)
                size = size[::-1]
            try:
                lens = _lens(exif, exif.get_ifd(0x8769))
            except Exception:
                lens = ""
            return size + (lens,)
    except Exception as e:  # PIL raises several types (UnidentifiedImageError, OSError, ...)
        raise SplatfilmError(f"{path}: cannot read image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def _lens(tags, exif_tags) -> str:
    """A label for the optics an image's EXIF names (see image_camera); '' for none."""
    def text(v) -> str:
        if isinstance(v, bytes):  # some writers store ASCII tags as undefined bytes
            v = v.decode("latin-1")
        return v.replace("\x00", "").strip() if isinstance(v, str) else ""

    def number(v) -> float | None:
        try:
            x = float(v)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return x if math.isfinite(x) and x > 0 else None

    body = " ".join(t for t in (text(tags.get(0x010F)), text(tags.get(0x0110))) if t)  # Make, Model
    focal, equiv, zoom = (number(exif_tags.get(tag)) for tag in (0x920A, 0xA405, 0xA404))
    parts = [body] if body else []
    parts += [f"{focal:g} mm"] if focal else []
    parts += [f"{equiv:g} mm equiv."] if equiv else []
    parts += [f"digital zoom {zoom:g}x"] if zoom and zoom != 1 else []
    return ", ".join(parts)


def _upright_folder(work: Path, root: Path, images: list, turned: set[str]) -> Path:
    """work/UPRIGHT holding every image of `images` ([name, sha1] under `root`): an upright copy
    of each `turned` one (COLMAP reads the stored pixels and ignores EXIF orientation), a link
    to the others. A copy is made again only when its photo changed (UPRIGHT/upright.json, the
    `Manifest` of the copies)."""
    folder = work / UPRIGHT
    with Manifest.load(folder / "upright.json") as made:
        for name, digest in images:
            target, source = folder / name, (root / name).resolve()
            make_folder(target.parent)
            if name in turned:
                if target.is_symlink() or not made.is_done(name, digest, [target]):
                    target.unlink(missing_ok=True)
                    write_upright(source, target)
                    made.done(name, digest)
            elif not (target.is_symlink() and os.readlink(target) == str(source)):
                target.unlink(missing_ok=True)
                made.frames.pop(name, None)
                os.symlink(source, target)
    return folder


def _resolve_images(images: str | Path | Sequence[str | Path]) -> tuple[Path, list[str], Path]:
    """(root folder, names relative to it, what to name in errors) from a folder or a list of files."""
    if isinstance(images, (str, Path)):
        root = Path(images)
        if not root.exists():
            raise SplatfilmError(f"{root}: no such folder")
        paths = list_images(root)
        if not paths:
            note = unread_photos_note(root)
            raise SplatfilmError(f"{root}: " + (note if note else f"no images ({', '.join(PHOTO_SUFFIXES)})"))
        return root, [p.name for p in paths], root
    paths = [Path(p) for p in images]
    if not paths:
        raise SplatfilmError("run_sfm: no images given")
    for p in paths:
        if not p.is_file():
            raise SplatfilmError(f"{p}: no such image")
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
    names = [p.resolve().relative_to(root).as_posix() for p in paths]
    if len(set(names)) != len(names):
        raise SplatfilmError(f"{root}: the same image is listed twice")
    return root, names, root


def check_images(root: Path, names: Sequence[str]) -> dict[tuple[int, int, str], list[str]]:
    """The image names grouped by (width, height, lens) (see image_camera), each group in the
    order of `names`, the groups in the order of their first image; raises for an unreadable file."""
    groups: dict[tuple[int, int, str], list[str]] = {}
    for name in names:
        groups.setdefault(image_camera(root / name), []).append(name)
    return groups


# ---- memory -------------------------------------------------------------------------------


def sift_thread_bytes(size: tuple[int, int], max_image_size: int = SIFT_MAX_IMAGE_SIZE) -> int:
    """Bytes one thread of COLMAP's CPU SIFT extraction holds for an image of `size` (width,
    height, pixels) once the extractor has scaled it to at most `max_image_size` pixels on its
    longer side: SIFT_BYTES_PER_PIXEL a pixel of the scaled image (2.3 GB for a 4000x3000
    photo, extracted at 3200x2400; 0.58 GB at 1600x1200)."""
    width, height = size
    scale = min(1.0, max_image_size / max(width, height, 1))
    return SIFT_BYTES_PER_PIXEL * round(width * scale) * round(height * scale)


def sift_threads(available: int | None, size: tuple[int, int], cores: int, images: int | None = None) -> int:
    """How many threads COLMAP's CPU SIFT extraction of images of `size` (width, height, pixels;
    the largest, for several) should run on: one a core (`cores`, what COLMAP's -1 takes), no
    more than `images` (each thread extracts one image at a time; None: any number), and no
    more than `available` bytes of memory hold at sift_thread_bytes(size) a thread. At least 1,
    even where that one does not fit. available None (unknown): not bounded by memory."""
    threads = max(1, min(cores, images) if images else cores)
    if available is not None:
        threads = min(threads, available // sift_thread_bytes(size))
    return max(1, int(threads))


def available_memory(root: Path = Path("/")) -> int | None:
    """Bytes of memory this process can still take: the kernel's MemAvailable (/proc/meminfo),
    or less where a cgroup memory limit on this process (a container, a batch job) leaves less
    room, at any level from its group up to the mount's root (cgroup v2 memory.max, v1
    memory.limit_in_bytes, less the usage without the page cache it can reclaim,
    inactive_file, as `docker stats` counts it). None where /proc/meminfo cannot be read (not
    Linux). root: the file system's root (tests point it at a folder)."""
    try:
        meminfo = (root / "proc" / "meminfo").read_text()
    except OSError:
        return None
    available = None
    for line in meminfo.splitlines():
        key, _, value = line.partition(":")
        if key == "MemAvailable" and value.split()[:1] and value.split()[0].isdigit():
            available = int(value.split()[0]) * 1024  # kB
    if available is None:
        return None
    for room in _cgroup_rooms(root):
        available = min(available, room)
    return max(0, available)


def _cgroup_rooms(root: Path) -> list[int]:
    """Bytes left under each memory limit set on this process's cgroups (see available_memory)."""
    try:
        lines = (root / "proc" / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return []
    mount = root / "sys" / "fs" / "cgroup"
    rooms = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "" and path:  # v2: one hierarchy
            base, files = mount, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            base, files = mount / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
        else:
            continue
        # A container sees its own group mounted as the root while /proc names its path on the
        # host: look at the named group and each level above it, the mount's root included.
        group = Path(path.lstrip("/"))
        for folder in dict.fromkeys([base / group, *(base / p for p in group.parents)]):
            room = _cgroup_room(folder, *files)
            if room is not None:
                rooms.append(room)
    return rooms


def _cgroup_room(folder: Path, limit_file: str, usage_file: str, inactive_key: str) -> int | None:
    try:
        limit_text = (folder / limit_file).read_text().strip()
        usage = int((folder / usage_file).read_text().strip())
    except (OSError, ValueError):
        return None
    if not limit_text.isdigit() or int(limit_text) >= 1 << 60:  # "max", or v1's "no limit" (about 2^63)
        return None
    inactive = 0
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == inactive_key and value.strip().isdigit():
                inactive = int(value)
    except OSError:
        pass
    return int(limit_text) - max(0, usage - inactive)


def _extraction_threads(num_threads: int, sizes: Sequence[tuple[int, int]], most_images: int,
                        hint: str = "") -> tuple[int, str]:
    """(threads for SIFT extraction, what the log line adds): `num_threads` where the caller
    chose (> 0); else sift_threads for this machine's cores and available_memory, the largest of
    `sizes` (width, height) and `most_images` (the largest group extracted at once), and -1
    (all, as before) where that takes every core it could use. Where fewer, the note says why,
    and `hint` how to choose."""
    if num_threads > 0 or not sizes:
        return num_threads, ""
    size = max(sizes, key=sift_thread_bytes)
    cores = os.cpu_count() or 1
    available = available_memory()
    threads = sift_threads(available, size, cores, most_images)
    usable = min(cores, most_images)
    each = sift_thread_bytes(size)
    short = available is not None and each > available  # not even one thread fits
    if threads >= usable and not short:
        return num_threads, ""
    amount = lambda b: f"{b / 1e9:.1f} GB" if b >= 1e8 else f"{b / 1e6:.1f} MB"  # noqa: E731
    note = (f"a thread takes about {amount(each)} at this size and {amount(available)} of memory is free"
            + (", so it may run out" if short else "") + hint)
    if threads >= usable:  # one core: nothing to take away, only the warning
        return num_threads, "; " + note
    return threads, f"; on {threads} thread{'s' if threads > 1 else ''}, not {usable}: " + note


# ---- SfM ----------------------------------------------------------------------------------


def run_sfm(
    images: str | Path | Sequence[str | Path],
    work_dir: str | Path,
    *,
    matcher: str = "auto",
    mapper: str = "auto",
    camera_model: str = "SIMPLE_PINHOLE",
    focal_px: float | None = None,
    min_registered: float = 0.5,
    num_threads: int = -1,
    seed: int = 0,
    reuse: bool = True,
    log: Log | None = print,
    verbose: bool = False,
    ordered: bool = False,
    limits: PoseLimits | None = None,
    progress: bool = True,
) -> Path:
    """Estimate camera poses and intrinsics of `images` with COLMAP; return the model folder.

    images:        a folder (its image files, sorted by name) or a list of image files.
    work_dir:      where the database and the model go: work_dir/database.db,
                   work_dir/sparse/0 (cameras.bin, images.bin, points3D.bin), work_dir/sfm.json,
                   work_dir/poses.tsv (per image: kept or dropped, why, reprojection error,
                   observed points, neighbours and their rotation agreement).
    matcher:       "exhaustive" (every pair; best for a few dozen photos around a subject),
                   "sequential" (each image with those 1, 2, 4, ... 512 ahead in name order, and loop
                   detection; video frames), "auto": sequential for `ordered` frames, else
                   exhaustive up to 120 images, else sequential.
    mapper:        "incremental" (COLMAP's), "global" (GLOMAP's rotation averaging and global
                   positioning) or "auto": incremental, and global as well when incremental
                   registers fewer than all images, keeping the model with more registered
                   (incremental on a tie). A global model is used only if two of its
                   GLOBAL_STARTS starts (seeds seed, seed + 1, ...) agree
                   (GLOBAL_MAX_START_DISAGREEMENT).
    camera_model:  COLMAP model of the camera that the images of one size and lens share:
                   SIMPLE_PINHOLE (f, cx, cy; the default: rendered or rectified images),
                   PINHOLE, SIMPLE_RADIAL or OPENCV (lens distortion; read_colmap returns these
                   as "OPENCV" cameras).
    focal_px:      a starting focal length in pixels, for every camera; default 1.2 * the longer
                   side (COLMAP's guess without EXIF). It is refined either way.
    min_registered: fewest images whose poses the model must register and keep (after the
                   checks), as a fraction of the images (<= 1) or a count (> 1); at least 3 always.
    num_threads:   CPU threads for features and matching (-1, the default: all, and for SIFT
                   extraction no more than the memory left holds: sift_threads); mapping runs
                   on one thread. 1 repeats the model exactly; on more, COLMAP's matcher now and
                   then does not (see the module docstring).
    seed:          COLMAP's random seed (RANSAC, mapping): the same images, options and seed
                   give the same model.
    reuse:         return an existing model made from the same images and options; else reuse
                   the features (and matches, with the same matcher and seed) of the database in
                   work_dir, and go on where an interrupted extraction or matching stopped.
    log:           called with one-line progress messages (None: quiet).
    verbose:       let COLMAP print its own (long) log to stderr.
    ordered:       the images are frames of one video, in order (matched sequentially).
    limits:        thresholds of the pose checks (default: pose_check's constants).
    progress:      progress bars (on stderr, when it is a terminal) while features are extracted
                   and pairs matched.

    Raises SplatfilmError for no/unreadable images, too few registered and too few
    kept after the checks.
    """
    pycolmap = load_pycolmap()  # heavy; only SfM needs it

    say = log or (lambda _msg: None)
    progress = progress and log is not None
    seed, focal_px = int(seed), (float(focal_px) if focal_px is not None else None)  # JSON-safe
    if matcher not in MATCHERS:
        raise SplatfilmError(f"run_sfm: matcher {matcher!r} is not one of {', '.join(MATCHERS)}")
    if mapper not in MAPPERS:
        raise SplatfilmError(f"run_sfm: mapper {mapper!r} is not one of {', '.join(MAPPERS)}")
    if camera_model not in CAMERA_MODELS:
        raise SplatfilmError(f"run_sfm: camera_model {camera_model!r} is not one of {', '.join(CAMERA_MODELS)}")
    root, names, where = _resolve_images(images)
    if isinstance(images, (str, Path)) and (note := unread_photos_note(root)):
        say(f"sfm: {note}")
    turned = [name for name in names if photo_orientation(root / name) != 1]
    groups = check_images(root, names)
    n = len(names)
    need = max(3, math.ceil(min_registered * n) if min_registered <= 1 else int(min_registered))
    if n < need:
        raise SplatfilmError(f"{where}: {n} image(s); SfM needs at least {need} overlapping views")
    if matcher == "auto":
        matcher = "sequential" if ordered or n > _AUTO_EXHAUSTIVE_MAX else "exhaustive"

    work = Path(work_dir)
    model_dir = work / "sparse" / "0"
    manifest_path = work / "sfm.json"
    inputs = {
        "version": _SFM_VERSION,
        # sha1: the hash sfm.json has always recorded, so models made before stay reusable.
        "images": [[name, file_digest(root / name, "sha1")] for name in names],
        # One size as before, so models made before images were grouped stay reusable.
        "size": list(next(iter(groups))[:2]) if len(groups) == 1 else [list(key) for key in groups],
        "options": {"matcher": matcher, "mapper": mapper, "camera_model": camera_model, "focal_px": focal_px,
                    "seed": seed, "limits": (limits or PoseLimits()).__dict__},
    }
    model = CacheEntry(manifest_path, inputs, field="inputs")
    record = model.lookup(model_dir / "images.bin") if reuse else None
    if (record is not None and record.get("summary", {}).get("kept", 0) >= need
            and (not turned or read_sfm_image_root(work) is not None)):  # upright copies still there
        say(f"sfm: reusing {model_dir} ({record['summary']['kept']}/{n} images kept)")
        return model_dir
    if (model_dir / "images.bin").exists():
        old = read_record(manifest_path).get("inputs", {})
        if isinstance(old, dict) and old.get("images") == inputs["images"] and isinstance(old.get("options"), dict):
            # A model made on purpose with another camera model or matcher (`splatfilm sfm`) is
            # not replaced unsaid when `fit` of the same photos runs SfM with its defaults.
            changed = ", ".join(f"{k} {old['options'].get(k)!r} -> {inputs['options'][k]!r}"
                                for k in ("camera_model", "focal_px", "matcher", "mapper")
                                if old["options"].get(k) != inputs["options"][k])
            if changed:
                say(f"sfm: the model in {work} was made with other options ({changed}); making it again "
                    f"(`splatfilm fit {work}` fits from a model as it is)")

    with _work_lock(work, "sfm run"):
        with colmap_log(pycolmap, verbose):
            make_folder(work)
            if turned:
                say(f"sfm: {len(turned)} photo{'s are' if len(turned) > 1 else ' is'} stored turned (EXIF "
                    f"orientation); SfM and the fit read upright copies in {work / UPRIGHT}")
                root = _upright_folder(work, root, inputs["images"], set(turned))
            database = work / "database.db"
            for stale in (manifest_path, work / POSE_TABLE):
                stale.unlink(missing_ok=True)
            shutil.rmtree(work / "sparse", ignore_errors=True)
            pycolmap.set_random_seed(seed)
            t0 = time.perf_counter()

            features = _features_key(pycolmap, **{key: inputs[key] for key in ("version", "images", "size")},
                                     camera_model=camera_model, focal_px=focal_px)
            record = _database_record(work, features, names, reuse)
            sizes = sizes_text({k: len(g) for k, g in groups.items()}) + (
                "; a camera for each size and lens" if len(groups) > 1 else "")

            extract_threads, memory_note = _extraction_threads(num_threads, [key[:2] for key in groups],
                                                               max(len(group) for group in groups.values()),
                                                               " (`splatfilm sfm --threads N` sets it)")

            def extract() -> None:
                for (width, height, _), group in groups.items():
                    _extract(pycolmap, database, root, group, (width, height), camera_model, focal_px, extract_threads)

            # Mapping runs kept in work/mapping were made from the database as it was: gone
            # before anything in it changes (a run stopped in between must not find them).
            forget_mapping = lambda: shutil.rmtree(work / "mapping", ignore_errors=True)  # noqa: E731
            _extract_resumably(work, record, f"sfm: extracting SIFT features from {n} images at {sizes}{memory_note}",
                               f"{n} images at {sizes}", n, extract, say, progress, forget_mapping, quiet=not verbose)
            _match_resumably(work, record, {"matcher": matcher, "seed": seed},
                             f"sfm: {matcher} matching" + (" with loop detection" if matcher == "sequential" else ""),
                             n * (n - 1) // 2 if matcher == "exhaustive" else None,
                             lambda: _match(pycolmap, database, matcher, num_threads, seed, work / VOCABULARY, say,
                                            quiet=not verbose), say, progress,
                             bound=sequential_pairs_bound(n) if matcher == "sequential" else None,
                             changing=forget_mapping, quiet=not verbose)
            stats = _database_stats(database)
            if stats["featureless"]:
                k = len(stats["featureless"])
                say(f"sfm: no SIFT features in {k} image{'s' if k > 1 else ''} "
                    f"({', '.join(stats['featureless'][:4])}{', ...' if k > 4 else ''}): COLMAP could not decode "
                    f"{'them' if k > 1 else 'it'}, or there is nothing to match")
            say(f"sfm: {stats['features']:.0f} features an image, {stats['verified_pairs']} of {stats['pairs']} "
                "pairs verified; mapping")
            best, used, note = _map(pycolmap, database, root, work / "mapping", mapper, n, seed, say,
                                    {"features": record["features"], "matching": record["matching"]})

            registered = best.num_reg_images() if best is not None else 0
            summary = SfmSummary(n, registered, stats["features"], stats["verified_pairs"], stats["pairs"],
                                 best.num_points3D() if best is not None else 0, time.perf_counter() - t0, mapper=used)
            table = work / POSE_TABLE
            if registered < need:
                write_pose_table(table, _unchecked(names, best))
                raise SplatfilmError(f"{where}: SfM registered {registered} of {n} images (needs {need}): {_why(summary)}"
                                     + (f"; {note}" if note else ""))
            say(f"sfm: {used} mapping registered {registered}/{n} images; checking their poses")
            checks = _complete(names, verify_poses(best, database, limits, seed=seed, log=say))
        write_pose_table(table, checks)
        summary.kept = sum(c.kept for c in checks)
        summary.points = best.num_points3D()
        summary.seconds = time.perf_counter() - t0
        say(f"sfm: {summarize(checks)} -> {table}")
        if summary.kept < need:
            failed = ", ".join(f"{k} {why}" for why, k in failure_counts(checks).items())
            raise SplatfilmError(f"{where}: only {summary.kept} of {n} images have trustworthy poses (needs {need}); "
                                 f"{failed}; per-image reasons in {table}")
        make_folder(model_dir)
        best.write(model_dir)
        # Inside the work folder (upright copies) relative to it, so a moved model keeps them.
        image_root = root.resolve()
        inside = image_root.is_relative_to(work.resolve())
        model.store(summary=summary.__dict__,
                    image_root=str(image_root.relative_to(work.resolve()) if inside else image_root))
        say(f"sfm: kept {summary.kept}/{n} images, {summary.points} points, {summary.seconds:.1f} s -> {model_dir}")
        return model_dir


def _unchecked(names: list[str], rec) -> list[PoseCheck]:
    """Rows for a model too small to check: every image unregistered or not checked."""
    posed = {im.name for im in rec.images.values() if im.has_pose} if rec is not None else set()
    return [PoseCheck(name, name in posed, reason="not registered by SfM" if name not in posed else
                      "not checked: too few images registered") for name in names]


def _complete(names: list[str], checks: list[PoseCheck]) -> list[PoseCheck]:
    """The checks in the order of `names`, with a row for images the model never saw."""
    by_name = {c.name: c for c in checks}
    return [by_name.get(name) or PoseCheck(name, False, reason="not registered by SfM") for name in names]


def _features_key(pycolmap, **inputs) -> dict:
    """What a database's features depend on: `inputs` (the images and their cameras), the SIFT
    options and COLMAP's version."""
    return {**inputs, "sift": [SIFT_PEAK_THRESHOLD, SIFT_MAX_FEATURES], "pycolmap": pycolmap.__version__}


@contextmanager
def _database(database: Path):
    """(connection, names of its tables) for an existing COLMAP database (never a new, empty
    one), closed on the way out. Only while COLMAP does not have it open: see _ROW_COUNTER."""
    con = sqlite3.connect(Path(database).resolve().as_uri() + "?mode=rw", uri=True)
    try:
        yield con, {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def _database_record(work: Path, features: dict, names: list[str], reuse: bool) -> dict:
    """The record of work/database.db (work/database.json): the inputs its features come from, whether
    their extraction finished, the matching options its matches come from and whether matching
    finished. What the record says is checked against the database (it may not have survived a
    crash the record did, or been edited since): features missing or out of name order go back
    to extraction, with the matches cleared. A database made from other inputs or of other
    images, an unreadable one, or any when `reuse` is False is deleted and a new record started:
    stale features would mix with the new images'."""
    database = work / "database.db"
    record = read_record(work / DATABASE_RECORD)
    if reuse and database.exists() and record.get("features") == features:
        try:
            state = _database_state(database, names)
        except sqlite3.DatabaseError:
            state = "foreign"
        if state != "foreign":
            record = {"features": features, "extracted": bool(record.get("extracted")) and state == "complete",
                      "matching": record.get("matching"), "matched": bool(record.get("matched"))}
            if not record["extracted"]:
                record.update(matching=None, matched=False)
                _clear_matches(database)
            write_record(work / DATABASE_RECORD, record)
            return record
    # The write-ahead log first: one left beside a new database would be replayed into it.
    for stale in (work / "database.db-wal", work / "database.db-shm", database, work / VOCABULARY):
        stale.unlink(missing_ok=True)
    record = {"features": features, "extracted": False, "matching": None, "matched": False}
    write_record(work / DATABASE_RECORD, record)
    return record


def _database_state(database: Path, names: list[str]) -> str:
    """"complete": every image of `names` in the database with its keypoints and descriptors,
    numbered 1, 2, ... in name order; "partial": some of them missing; "foreign": it holds
    images that are not in `names`."""
    with _database(database) as (con, tables):
        if not {"images", "keypoints", "descriptors"} <= tables:
            return "partial"
        ids = dict(con.execute("SELECT name, image_id FROM images"))
        with_features = {row[0] for row in con.execute(
            "SELECT image_id FROM keypoints WHERE image_id IN (SELECT image_id FROM descriptors)")}
    if not set(ids) <= set(names):
        return "foreign"
    in_order = [ids.get(name) for name in sorted(names)] == list(range(1, len(names) + 1))
    return "complete" if in_order and set(ids.values()) <= with_features else "partial"


def _drop_orphan_cameras(database: Path) -> None:
    """Delete the cameras (and their rigs) no image uses, and let their ids be given again.
    COLMAP's reader writes a camera before the image that needs it is committed, so an
    extraction stopped in between leaves one behind; dropped, a resumed extraction numbers
    cameras as an uninterrupted one does."""
    if not Path(database).exists():
        return
    with _database(database) as (con, tables):
        if not {"cameras", "images"} <= tables:
            return
        with con:
            con.execute("DELETE FROM cameras WHERE camera_id NOT IN (SELECT camera_id FROM images)")
            if "rigs" in tables:  # COLMAP >= 3.12: a rig for each camera; sensor type 0 is a camera
                con.execute("DELETE FROM rigs WHERE ref_sensor_type = 0 "
                            "AND ref_sensor_id NOT IN (SELECT camera_id FROM cameras)")
            if "rig_sensors" in tables:
                con.execute("DELETE FROM rig_sensors WHERE rig_id NOT IN (SELECT rig_id FROM rigs)")
            if "sqlite_sequence" in tables:
                for table, key in (("cameras", "camera_id"), ("rigs", "rig_id")):
                    if table in tables:
                        con.execute(f"UPDATE sqlite_sequence SET seq = (SELECT IFNULL(MAX({key}), 0) FROM {table}) "
                                    "WHERE name = ?", (table,))


@contextmanager
def _work_lock(work: Path, what: str):
    """Hold work/splatfilm.lock for the run: a second run on the same folder would share its
    feature database, and COLMAP loses the features of images two writers collide on."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    make_folder(work)
    with open(work / WORK_LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SplatfilmError(f"{work}: another {what} is using this folder; wait for it to end or stop it")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _update_record(work: Path, record: dict, **changes) -> None:
    record.update(changes)
    write_record(work / DATABASE_RECORD, record)


def _extract_resumably(work: Path, record: dict, label: str, what: str, n: int, extract: Callable[[], None],
                       say: Log, progress: bool, changing: Callable[[], None] = lambda: None,
                       quiet: bool = True) -> None:
    """Run `extract()` (SIFT features of `n` images into work/database.db) unless its record says
    they are all there, then number the images by name. An interrupted extraction goes on where
    it stopped: COLMAP skips the images whose features are in. label: the step's log line
    ("sfm: extracting ..."); what: the images, for the line that says they are reused;
    changing: called before the database changes; quiet: COLMAP's stderr silenced meanwhile."""
    database = work / "database.db"
    step = label.split(":")[0]
    if record["extracted"]:
        say(f"{step}: reusing the SIFT features of {what} in {database}")
        return
    changing()
    done = _count_rows(database, "keypoints") or 0
    _drop_orphan_cameras(database)
    say(label + (f" (resuming: {done} already extracted)" if done else ""))
    with stderr_silenced(quiet) as terminal, \
            _database_progress(database, "keypoints", n, f"{step} features", "image", progress, stream=terminal):
        extract()
    number_images_by_name(database)
    _update_record(work, record, extracted=True)


def _match_resumably(work: Path, record: dict, options: dict, label: str, total: int | None,
                     match: Callable[[], None], say: Log, progress: bool, bound: int | None = None,
                     changing: Callable[[], None] = lambda: None, quiet: bool = True) -> None:
    """Run `match()` on work/database.db unless its record says matches made with `options` are
    all there. An interrupted matching with the same options goes on where it stopped (COLMAP
    skips the pairs the database already holds, and every pair's matches and verification
    repeat, exactly on one thread, so the result is the uninterrupted one); matches made with
    other options are cleared first. label: the step's log line ("sfm: exhaustive matching"); total: the
    pairs it matches, if known; bound: at most how many, when only that is known (the
    progress bar's end until the step ends); changing: called before the database changes;
    quiet: COLMAP's stderr silenced meanwhile."""
    database = work / "database.db"
    step = label.split(":")[0]
    if record["matching"] == options and record["matched"]:
        if total is None or _count_rows(database, "two_view_geometries") == total:
            say(f"{step}: reusing the matches in {database}")
            return
        _update_record(work, record, matched=False)  # fewer pairs than it says: COLMAP adds the rest
    changing()
    if record["matching"] != options:
        # Recorded as unknown first: a run killed while clearing must not find the old options
        # (their matches trusted) nor the new ones (the old matches kept as if new) next time.
        _update_record(work, record, matching=None, matched=False)
        _clear_matches(database)
        (work / VOCABULARY).unlink(missing_ok=True)
        _update_record(work, record, matching=options)
    done = _count_rows(database, "two_view_geometries") or 0
    say(label + (f" (resuming: {done} pairs already matched)" if done else ""))
    with stderr_silenced(quiet) as terminal, \
            _database_progress(database, "two_view_geometries", total or bound, f"{step} matching", "pair", progress,
                               exact=total is not None, stream=terminal):
        match()
    _update_record(work, record, matched=True)


def _clear_matches(database: Path) -> None:
    """Delete every match and two-view geometry from a COLMAP database (its features stay)."""
    if not Path(database).exists():
        return
    with _database(database) as (con, tables), con:
        for table in ("matches", "two_view_geometries"):
            if table in tables:
                con.execute(f"DELETE FROM {table}")


def _count_rows(database: Path, table: str) -> int | None:
    """Rows of `table` in a COLMAP database that nothing else has open now, or None when there
    is none yet (see _database_progress for counting while COLMAP writes)."""
    if not Path(database).exists():
        return None
    try:
        with _database(database) as (con, tables):
            return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]) if table in tables else None
    except sqlite3.Error:
        return None


# Prints the row count of a table every few seconds until its parent process is gone. It runs as
# a process of its own and opens the database as immutable (no locks, no write-ahead log): inside
# COLMAP's process, closing a second SQLite's file descriptor drops the POSIX locks COLMAP's
# SQLite holds on the file, and a reader that takes locks can fail COLMAP's writes. Measured:
# with a locking reader in the process one image's features went missing without a word in two
# of three runs; with an immutable one in the process, a model differed from the unread run's
# about once in twenty (the dropped locks are the likely cause).
_ROW_COUNTER = """
import os, sqlite3, sys, time
uri, table, every, parent = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
while os.getppid() == parent:
    try:
        con = sqlite3.connect(uri, uri=True)
        try:
            print(con.execute("SELECT COUNT(*) FROM " + table).fetchone()[0], flush=True)
        finally:
            con.close()
    except sqlite3.Error:
        pass
    time.sleep(every)
"""


@contextmanager
def _database_progress(database: Path, table: str, total: int | None, desc: str, unit: str, show: bool,
                       exact: bool = True, stream=None):
    """A progress bar (tqdm) of the rows of `table` while COLMAP fills it on its own threads:
    pycolmap reports no progress, but every image's keypoints and every pair's verified geometry
    land in the database as they finish. A separate process counts them (`_ROW_COUNTER`: only
    what COLMAP has checkpointed, so the bar can lag). Drawn only on a terminal: in a log file
    or a pipe the one-line steps `say` prints are the record. exact=False: `total` is an upper
    bound, replaced by the count reached when the step ends. stream: where to draw (default
    sys.stderr)."""
    stream = stream or sys.stderr
    if not show or not stream.isatty():
        yield
        return
    import subprocess

    from tqdm import tqdm

    initial = _count_rows(database, table) or 0
    started = time.time()
    bars: list = []  # drawn with the first new row, so what the step says before its first row stays above it

    def draw(rows: int) -> None:
        if not bars:
            # dynamic_ncols: tqdm sizes bars to the terminal only for sys.stderr/stdout otherwise
            bars.append(tqdm(total=total, desc=desc, unit=unit, initial=initial, file=stream, dynamic_ncols=True))
            bars[0].start_t = bars[0].last_print_t = started  # its time and rate from the step's start
        if rows > bars[0].n:
            bars[0].update(rows - bars[0].n)

    uri = Path(database).resolve().as_uri() + "?mode=ro&immutable=1"
    counter = subprocess.Popen([sys.executable, "-c", _ROW_COUNTER, uri, table, str(PROGRESS_POLL_S), str(os.getpid())],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def follow() -> None:
        for line in counter.stdout:
            rows = int(line) if line.strip().isdigit() else 0
            if rows > initial:
                try:
                    draw(rows)
                except (OSError, ValueError):  # stderr closed or gone
                    return

    thread = threading.Thread(target=follow, name="sfm-progress", daemon=True)
    thread.start()
    finished = False
    try:
        yield
        finished = True
    finally:
        counter.kill()
        counter.wait()
        thread.join()
        try:  # a bar that cannot be drawn (stderr closed) must not hide how the step ended
            rows = _count_rows(database, table)  # COLMAP has let go of it
            draw(max(rows or 0, initial))
            if finished and not exact:
                bars[0].total = bars[0].n
            bars[0].close()
        except (OSError, ValueError):
            pass


def _extract(pycolmap, database: Path, root: Path, names: list[str], size: tuple[int, int], camera_model: str,
             focal_px: float | None, num_threads: int) -> None:
    """SIFT features on the CPU into `database` for images of one `size`, all sharing one camera:
    a new one, or the one its images already in the database have (an interrupted extraction
    resumed: COLMAP skips the images whose features are there)."""
    width, height = size
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    existing = _camera_of(database, names)
    if existing is not None:
        reader.existing_camera_id = existing
    f = float(focal_px) if focal_px else 1.2 * max(width, height)
    focal = [f] if camera_model.startswith("SIMPLE") else [f, f]
    extra = {"SIMPLE_PINHOLE": [], "PINHOLE": [], "SIMPLE_RADIAL": [0.0], "OPENCV": [0.0] * 4}[camera_model]
    reader.camera_params = ",".join(str(x) for x in focal + [width / 2, height / 2] + extra)
    options = pycolmap.FeatureExtractionOptions()
    options.num_threads = num_threads
    options.max_image_size = SIFT_MAX_IMAGE_SIZE
    options.sift.peak_threshold = SIFT_PEAK_THRESHOLD
    options.sift.max_num_features = SIFT_MAX_FEATURES
    pycolmap.extract_features(database, root, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                              reader_options=reader, extraction_options=options, device=pycolmap.Device.cpu)


def _camera_of(database: Path, names: list[str]) -> int | None:
    """The camera id the database gives images of `names` (one group: they share it), or None."""
    if not Path(database).exists():
        return None
    with _database(database) as (con, tables):
        if "images" not in tables:
            return None
        wanted = set(names)
        ids = {camera for name, camera in con.execute("SELECT name, camera_id FROM images") if name in wanted}
    return min(ids) if ids else None


def sequential_pairs_bound(n: int) -> int:
    """At most how many image pairs sequential matching of `n` frames verifies: each frame with
    the frames 1, 2, 4, ... 2^(SEQUENTIAL_OVERLAP-1) ahead (COLMAP's quadratic overlap), then,
    for every LOOP_DETECTION_PERIOD-th frame, at most LOOP_DETECTION_IMAGES frames loop
    detection retrieves. The sequential part is exact; which retrieved pairs are new is known
    only as they come."""
    sequential = sum(max(0, n - (1 << i)) for i in range(SEQUENTIAL_OVERLAP))
    loops = -(-n // LOOP_DETECTION_PERIOD) * min(LOOP_DETECTION_IMAGES, max(n - 1, 0))
    return min(sequential + loops, n * (n - 1) // 2)


def _match(pycolmap, database: Path, matcher: str, num_threads: int, seed: int, vocab_path: Path,
           say: Log, quiet: bool = True) -> None:
    """Match features (exhaustive, or sequential with loop detection) and verify pairs geometrically."""
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = num_threads
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = seed
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(database, matching_options=matching, verification_options=verification,
                                  device=pycolmap.Device.cpu)
        return
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = SEQUENTIAL_OVERLAP
    pairing.quadratic_overlap = True
    pairing.num_threads = num_threads
    if vocab_path.exists() or _build_vocabulary(pycolmap, database, vocab_path, num_threads, seed, say, quiet):
        pairing.loop_detection = True
        pairing.loop_detection_period = LOOP_DETECTION_PERIOD
        pairing.loop_detection_num_images = LOOP_DETECTION_IMAGES
        pairing.vocab_tree_path = vocab_path
    pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                              verification_options=verification, device=pycolmap.Device.cpu)


def number_images_by_name(database: Path) -> None:
    """Renumber the images of a COLMAP database whose features were just extracted so image ids
    follow the image names (1, 2, ... in name order); their frames (one image each) take the
    same ids. COLMAP's extractor numbers images in the order their features finish, which on
    more than one thread differs from run to run, and the ids decide which image of a pair is
    the first one in matching and verification, and so their RANSAC samples. Works on the
    database's SQLite tables (COLMAP's documented schema; pycolmap cannot change an id); a
    database that already holds matches is refused, as their pair ids would go stale."""
    with _database(database) as (con, tables):
        for pairs in ("matches", "two_view_geometries"):
            if pairs in tables and con.execute(f"SELECT COUNT(*) FROM {pairs}").fetchone()[0]:
                raise SplatfilmError(f"{database}: already holds {pairs}; cannot renumber its images")
        rows = con.execute("SELECT image_id, name FROM images").fetchall()
        new_id = {old: k + 1 for k, (old, _name) in enumerate(sorted(rows, key=lambda r: r[1]))}
        if all(old == new for old, new in new_id.items()):
            _sort_frame_data(con, tables)
            return
        # (table, id column, row filter, old -> new): where an image id is stored. COLMAP >= 3.12
        # keeps frames (sensor type 0 is a camera; one image each here, so a frame takes its
        # image's new id) and ties pose priors to a frame's data.
        columns = {t: {row[1] for row in con.execute(f"PRAGMA table_info({t})")} for t in tables}
        moves = [(t, "image_id", "", new_id) for t in ("images", "keypoints", "descriptors", "pose_priors")
                 if "image_id" in columns.get(t, ())]
        if "corr_data_id" in columns.get("pose_priors", ()):
            moves.append(("pose_priors", "corr_data_id", " AND corr_sensor_type = 0", new_id))
        if "frame_data" in tables:
            moves.append(("frame_data", "data_id", " AND sensor_type = 0", new_id))
            frame_of = dict(con.execute("SELECT data_id, frame_id FROM frame_data WHERE sensor_type = 0"))
            new_frame = {frame_of[old]: new for old, new in new_id.items() if old in frame_of}
            if len(new_frame) == len(new_id) == con.execute("SELECT COUNT(*) FROM frame_data").fetchone()[0]:
                moves += [("frames", "frame_id", "", new_frame), ("frame_data", "frame_id", "", new_frame)]
        with con:
            for table, column, extra, mapping in moves:  # two passes, so no id collides on the way
                offset = max(mapping) + len(mapping) + 1
                con.execute(f"UPDATE {table} SET {column} = {column} + ? WHERE 1{extra}", (offset,))
                for old, new in mapping.items():
                    con.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?{extra}", (new, old + offset))
        _sort_frame_data(con, tables)


def _sort_frame_data(con: sqlite3.Connection, tables: set[str]) -> None:
    """Store frame_data's rows in frame order. It has no key of its own, so its rows sit in the
    order the extractor's threads finished, and whoever reads it unordered would see a
    different order each run; sorted, the database is the same whichever thread finished first."""
    if "frame_data" not in tables:
        return
    with con:
        rows = con.execute("SELECT * FROM frame_data ORDER BY frame_id, sensor_type, data_id").fetchall()
        con.execute("DELETE FROM frame_data")
        if rows:
            con.executemany(f"INSERT INTO frame_data VALUES ({', '.join('?' * len(rows[0]))})", rows)


def _build_vocabulary(pycolmap, database: Path, path: Path, num_threads: int, seed: int, say: Log,
                      quiet: bool = True) -> bool:
    """Write a visual vocabulary (pycolmap VisualIndex) of the database's own SIFT descriptors to
    `path` for loop detection; False when there are too few descriptors to cluster. quiet: hide
    what the build prints to stderr (see colmap_library.stderr_silenced)."""
    rng = np.random.default_rng(seed)
    db = pycolmap.Database.open(database)
    try:
        images = db.read_all_images()
        # An even share of the sample from every image, so a long video is never held in memory whole.
        share = math.ceil(VOCAB_DESCRIPTORS / max(len(images), 1))
        parts = []
        for im in images:
            d = db.read_descriptors(im.image_id).data
            parts.append(d[np.sort(rng.choice(len(d), share, replace=False))] if len(d) > share else d)
    finally:
        db.close()
    sample = np.concatenate(parts) if parts else np.zeros((0, 128), np.uint8)
    if len(sample) < 40 * 64:  # k-means wants ~40 samples a word
        return False
    words = int(min(VOCAB_MAX_WORDS, max(64, len(sample) // VOCAB_DESCRIPTORS_PER_WORD)))
    say(f"sfm: building a {words}-word vocabulary from {len(sample)} descriptors for loop detection")
    index = pycolmap.VisualIndex.create(128, 64)  # SIFT's 128 dimensions; 64-bit Hamming embedding
    options = pycolmap.VisualIndex.BuildOptions()
    options.num_visual_words = words
    options.num_iterations = VOCAB_KMEANS_ITERATIONS
    options.num_rounds = 1
    options.num_threads = num_threads
    descriptors = pycolmap.FeatureDescriptorsFloat(pycolmap.FeatureExtractorType.SIFT, sample.astype(np.float32))
    with stderr_silenced(quiet):
        index.build(options, descriptors)
    # Written whole or not at all: a resumed matching reuses it, so its loop pairs are the ones
    # an uninterrupted run finds.
    with atomic_path(path) as tmp:
        index.write(tmp)
    return True


def _map(pycolmap, database: Path, root: Path, out: Path, mapper: str, n: int, seed: int, say: Log,
         made_from: dict | None = None):
    """(reconstruction with the most registered images or None, "incremental" or "global", a note on
    a rejected global model or "") by `mapper` (see run_sfm)."""
    best, used = None, "incremental"
    if mapper in ("auto", "incremental"):
        best = _mapping(pycolmap, "incremental", database, root, out / "incremental", seed, say, made_from)
        got = best.num_reg_images() if best is not None else 0
        if mapper == "incremental" or got == n:
            return best, used, ""
        say(f"sfm: incremental mapping registered {got}/{n} images; trying global mapping")
    starts = [_mapping(pycolmap, "global", database, root, out / f"global{k}", seed + k, say, made_from)
              for k in range(GLOBAL_STARTS)]
    pick, closest = agreeing_start(starts)
    if pick is None:
        registered = max((r.num_reg_images() for r in starts if r is not None), default=0)
        if registered == 0:
            return best, used, ""
        apart = (f"the closest put the cameras {100 * closest:.0f}% of the capture's extent apart"
                 if math.isfinite(closest) else "no two registered 3 images in common")
        note = (f"global mapping registered {registered} but no two of its {GLOBAL_STARTS} starts agree ({apart}): "
                "the matches do not pin the cameras down, so it was not used; take more views, closer together")
        say(f"sfm: {note}")
        return best, used, note
    other = starts[pick]
    if best is not None and other.num_reg_images() <= best.num_reg_images():
        return best, used, ""
    return other, "global", ""


def agreeing_start(models: Sequence) -> tuple[int | None, float]:
    """(index of the first of `models` (pycolmap Reconstructions or None, one per start) that
    another agrees with, within GLOBAL_MAX_START_DISAGREEMENT, or None; the smallest
    disagreement between two of them)."""
    closest, pick = math.inf, None
    for i in range(len(models)):
        for j in range(i + 1, len(models)):
            if models[i] is None or models[j] is None:
                continue
            apart = start_disagreement(models[i], models[j])
            closest = min(closest, apart)
            if pick is None and apart <= GLOBAL_MAX_START_DISAGREEMENT:
                pick = i
    return pick, closest


def start_disagreement(a, b) -> float:
    """Largest distance between the camera centres of two pycolmap Reconstructions of the same images
    after a similarity alignment (by `scene.transforms.umeyama`, b onto a), as a fraction of the
    extent of a's centres (its bounding box's largest side); inf when fewer than 3 images are
    registered in both."""
    ca = {im.name: np.asarray(im.projection_center()) for im in a.images.values() if im.has_pose}
    cb = {im.name: np.asarray(im.projection_center()) for im in b.images.values() if im.has_pose}
    common = sorted(set(ca) & set(cb))
    if len(common) < 3:
        return math.inf
    A = np.array([ca[name] for name in common])
    B = np.array([cb[name] for name in common])
    extent = float(np.ptp(A, axis=0).max())
    if extent <= 0:
        return math.inf
    R, t, scale = umeyama(B, A)
    return float(np.linalg.norm(scale * B @ R.T + t - A, axis=1).max() / extent)


def _mapping(pycolmap, kind: str, database: Path, root: Path, out: Path, seed: int, say: Log,
             made_from: dict | None = None):
    """One COLMAP mapping run ("incremental" or "global") on one thread (see the module docstring); its
    model with the most registered images, or None. Kept in `out` (model/ and mapping.json) and
    reused by a later run on the same database, so a run stopped during mapping or the pose
    checks, or run again with other pose limits, does not map again what it mapped. made_from:
    what the database holds (its record's features key and matching options), part of the
    key; run_sfm also clears the runs before anything in the database changes."""
    done = {"kind": kind, "seed": seed, "pycolmap": pycolmap.__version__, "database": made_from}
    record, model = out / "mapping.json", out / "model"
    if record.exists() and {k: v for k, v in read_record(record).items() if k != "registered"} == done:
        say(f"sfm: reusing the {kind} mapping in {out}")
        return pycolmap.Reconstruction(model) if (model / "images.bin").exists() else None
    shutil.rmtree(out, ignore_errors=True)
    if kind == "incremental":
        options = pycolmap.IncrementalPipelineOptions()
        run = pycolmap.incremental_mapping
    else:
        options = pycolmap.GlobalPipelineOptions()
        run = pycolmap.global_mapping
    options.num_threads = 1
    options.random_seed = seed
    options.min_model_size = 3
    runs = out / "runs"  # COLMAP writes every model it makes here; only the best is kept
    runs.mkdir(parents=True, exist_ok=True)
    try:
        with kept_log_level(pycolmap):
            recons = run(database, root, runs, options=options)
    except Exception as e:  # pycolmap raises RuntimeError/ValueError from C++ checks
        say(f"sfm: {kind} mapping failed ({_first_line(e)})")
        return None
    shutil.rmtree(runs, ignore_errors=True)
    best = max(recons.values(), key=lambda r: r.num_reg_images(), default=None)
    if best is not None:
        with atomic_path(model) as partial:
            make_folder(partial)
            best.write(partial)
    write_record(record, {**done, "registered": best.num_reg_images() if best is not None else 0})
    # Read back: a model read from files lists its images in another order than the one COLMAP
    # built, and what follows (the pose checks, the model written) would differ with it.
    return pycolmap.Reconstruction(model) if best is not None else None


def read_sfm_image_root(work_dir: str | Path) -> Path | None:
    """The folder the images of work_dir's model are read from (the photos' own, or upright
    copies of turned ones: run_sfm), None when its sfm.json does not say or it is gone."""
    root = read_record(Path(work_dir) / "sfm.json").get("image_root")
    if not isinstance(root, str):
        return None
    folder = Path(work_dir) / root  # a relative root is inside work_dir
    return folder if folder.is_dir() else None


def read_sfm_summary(work_dir: str | Path) -> SfmSummary | None:
    """The summary of the model in work_dir (from sfm.json), None if there is none."""
    summary = read_record(Path(work_dir) / "sfm.json").get("summary")
    try:
        return SfmSummary(**summary) if isinstance(summary, dict) else None
    except TypeError:  # a record of another layout: as if there were none
        return None


def _database_stats(database: Path) -> dict:
    """Mean keypoints an image, matched and verified image pairs of a COLMAP database, and the
    names of the images without a keypoint ("featureless")."""
    pycolmap = load_pycolmap()

    db = pycolmap.Database.open(database)
    try:
        images = db.read_all_images()
        counts = [db.num_keypoints_for_image(im.image_id) for im in images]
        features = float(np.mean(counts)) if counts else 0.0
        featureless = sorted(im.name for im, k in zip(images, counts) if k == 0)
        pairs = int(db.num_matched_image_pairs())
        # Only pairs whose geometry verified with enough inliers come back here (the
        # database's num_verified_image_pairs counts failed verifications too).
        verified = len(db.read_two_view_geometries()[0])
    finally:
        db.close()
    return {"features": features, "pairs": pairs, "verified_pairs": verified, "featureless": featureless}


def _why(s: SfmSummary) -> str:
    """The likely reason SfM registered too few images, from its feature and match counts."""
    if s.features < 300:
        return (f"only {s.features:.0f} SIFT features an image: the images have too little texture "
                "(smooth or blurry surfaces, or too small); use sharper, more detailed views")
    if s.verified_pairs < s.images - 1:
        return (f"only {s.verified_pairs} of {s.pairs} image pairs share enough matched features: "
                "neighbouring views overlap too little; take more views, closer together")
    return (f"{s.verified_pairs} image pairs matched but the views did not chain into one model: "
            "the camera may only rotate (no parallax), the scene may be repetitive, or views too far apart")


# ---- points for known poses ------------------------------------------------------------------

# Captures up to this many images match every pair; larger ones match each image with its
# TRIANGULATION_NEIGHBOURS nearest cameras that look the same way (known poses say which
# views can overlap, so exhaustive matching's n^2/2 pairs are not needed).
TRIANGULATION_EXHAUSTIVE_MAX = 120
TRIANGULATION_NEIGHBOURS = 20
# Cameras whose optical axes differ by more than this (deg) rarely see the same surface from
# sides SIFT can match, so they are not paired.
TRIANGULATION_MAX_AXIS_ANGLE_DEG = 75.0

# Bump when triangulate_known_poses changes in a way that should invalidate its reused points.
_TRIANGULATION_VERSION = 2  # 2: images numbered by name, triangulation on one thread


def triangulate_known_poses(
    images: Sequence[np.ndarray],
    cameras: Cameras,
    work_dir: str | Path,
    *,
    seed: int = 0,
    num_threads: int = -1,
    reuse: bool = True,
    log: Log | None = print,
    verbose: bool = False,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """3D points of a capture whose poses are known but which has no point cloud.

    images:   C uint8 RGB images [H,W,3] (RGBA: the colour is used), the views of `cameras`.
    cameras:  their `Cameras` (PINHOLE, OPENCV or OPENCV_FISHEYE; world-to-camera in OpenCV
              axes, which is COLMAP's cam_from_world), held fixed throughout.
    work_dir: where the images, the feature database and the result go (work_dir/points.npz,
              work_dir/triangulation.json); a later call with the same images and cameras
              reuses the result, and one after an interruption goes on where extraction or
              matching stopped (as run_sfm). progress: bars on a terminal meanwhile.

    SIFT features are extracted and matched (every pair up to 120 images, else each image
    with its 20 nearest cameras facing the same way), pairs verified with the known
    intrinsics, and COLMAP's point triangulator builds tracks and triangulates them with the
    poses and intrinsics fixed (points are refined, observations over 4 px and points seen at
    under 1.5 deg of parallax are removed). num_threads: for features and matching (-1: all,
    for SIFT extraction no more than the memory left holds, as run_sfm);
    the points do not depend on it (as run_sfm's models: the same views and seed, the same
    points).

    Returns (points [M,3] float64 in the cameras' world, colours [M,3] uint8). M may be 0 (no
    texture, no overlap); the caller decides what to fall back to. Raises SplatfilmError for
    images that do not match the cameras.
    """
    pycolmap = load_pycolmap()

    say = log or (lambda _msg: None)
    progress = progress and log is not None
    seed = int(seed)  # JSON-safe
    n = len(cameras)
    if len(images) != n:
        raise SplatfilmError(f"triangulate_known_poses: {len(images)} images for {n} cameras")
    if n < 2:
        raise SplatfilmError("triangulate_known_poses: needs at least 2 views")
    if "EQUIRECTANGULAR" in cameras.camera_model:
        raise SplatfilmError("triangulate_known_poses: COLMAP has no EQUIRECTANGULAR camera "
                             "(triangulate pinhole views of the panoramas: splatfilm.fit.lens_views)")
    for i, im in enumerate(images):
        w, h = int(cameras.widths[i]), int(cameras.heights[i])
        if im.ndim != 3 or im.shape[:2] != (h, w) or im.dtype != np.uint8:
            raise SplatfilmError(f"triangulate_known_poses: image {i} is {im.shape} {im.dtype}, its camera says "
                                 f"{w}x{h} uint8")
    work = Path(work_dir)
    result_path, record_path = work / "points.npz", work / "triangulation.json"
    digest = content_digest(*(im[..., :3] for im in images),
                            *(np.asarray(a) for a in (cameras.viewmats, cameras.Ks, cameras.widths, cameras.heights,
                                                      cameras.distortion)), list(cameras.camera_model))
    inputs = {"version": _TRIANGULATION_VERSION, "views": n, "digest": digest, "seed": seed}
    triangulation = CacheEntry(record_path, inputs, field="inputs")
    if reuse and triangulation.lookup(result_path) is not None:
        with np.load(result_path) as z:
            points, colors = z["points"], z["colors"]
        say(f"triangulate: reusing {len(points)} points from {result_path}")
        return points, colors

    t0 = time.perf_counter()
    with _work_lock(work, "triangulation"):
        with colmap_log(pycolmap, verbose):
            make_folder(work)
            image_dir, database = work / "images", work / "database.db"
            for stale in (record_path, result_path):
                stale.unlink(missing_ok=True)
            shutil.rmtree(work / "model", ignore_errors=True)
            names = [f"{i:05d}.png" for i in range(n)]
            features = _features_key(pycolmap, **{key: inputs[key] for key in ("version", "views", "digest")})
            record = _database_record(work, features, names, reuse)
            if not record["extracted"] or not all((image_dir / name).exists() for name in names):
                if not record["extracted"]:
                    shutil.rmtree(image_dir, ignore_errors=True)  # another capture's views may be there
                make_folder(image_dir)
                for name, im in zip(names, images):
                    write_png(image_dir / name, im[..., :3])
            pycolmap.set_random_seed(seed)

            extract_threads, memory_note = _extraction_threads(
                num_threads, [(int(w), int(h)) for w, h in zip(cameras.widths, cameras.heights)], n)

            def extract() -> None:
                options = pycolmap.FeatureExtractionOptions()
                options.num_threads = extract_threads
                options.max_image_size = SIFT_MAX_IMAGE_SIZE
                options.sift.peak_threshold = SIFT_PEAK_THRESHOLD
                options.sift.max_num_features = SIFT_MAX_FEATURES
                pycolmap.extract_features(database, image_dir, image_names=names,
                                          camera_mode=pycolmap.CameraMode.PER_IMAGE, extraction_options=options,
                                          device=pycolmap.Device.cpu)

            _extract_resumably(work, record, f"triangulate: SIFT features of {n} views with known poses{memory_note}",
                               f"{n} views", n, extract, say, progress, quiet=not verbose)
            rec = pycolmap.Reconstruction()
            db = pycolmap.Database.open(database)
            try:
                for db_image in db.read_all_images():
                    i = names.index(db_image.name)
                    camera = _colmap_camera(pycolmap, cameras, i, db_image.camera_id)
                    db.update_camera(camera)
                    rec.add_camera_with_trivial_rig(camera)
                    V = cameras.viewmats[i]
                    pose = pycolmap.Rigid3d(pycolmap.Rotation3d(V[:3, :3]), V[:3, 3])
                    rec.add_image_with_trivial_frame(
                        pycolmap.Image(name=db_image.name, camera_id=db_image.camera_id, image_id=db_image.image_id), pose)
            finally:
                db.close()
            matching = pycolmap.FeatureMatchingOptions()
            matching.num_threads = num_threads
            verification = pycolmap.TwoViewGeometryOptions()
            verification.ransac.random_seed = seed
            if n <= TRIANGULATION_EXHAUSTIVE_MAX:
                total = n * (n - 1) // 2
                label = f"triangulate: matching all {total} pairs"

                def match() -> None:
                    pycolmap.match_exhaustive(database, matching_options=matching, verification_options=verification,
                                              device=pycolmap.Device.cpu)
            else:
                pairs = pose_pairs(cameras, TRIANGULATION_NEIGHBOURS, TRIANGULATION_MAX_AXIS_ANGLE_DEG)
                pair_file = work / "pairs.txt"
                pair_file.write_text("".join(f"{names[a]} {names[b]}\n" for a, b in pairs))
                total, label = len(pairs), f"triangulate: matching {len(pairs)} pairs of neighbouring cameras"
                pairing = pycolmap.ImportedPairingOptions()
                pairing.match_list_path = pair_file

                def match() -> None:
                    pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=pairing,
                                               verification_options=verification, device=pycolmap.Device.cpu)
            _match_resumably(work, record, {"pairs": "all" if n <= TRIANGULATION_EXHAUSTIVE_MAX else "neighbours",
                                            "seed": seed}, label, total, match, say, progress, quiet=not verbose)
            stats = _database_stats(database)
            say(f"triangulate: {stats['features']:.0f} features an image, {stats['verified_pairs']} of "
                f"{stats['pairs']} pairs verified; triangulating with the poses fixed")
            mapper = pycolmap.IncrementalPipelineOptions()
            mapper.num_threads = 1  # as run_sfm's mapping: repeatable run to run, whatever num_threads
            mapper.random_seed = seed
            make_folder(work / "model")
            try:
                rec = pycolmap.triangulate_points(rec, database, image_dir, work / "model", clear_points=True,
                                                  options=mapper, refine_intrinsics=False)
            except Exception as e:  # pycolmap raises RuntimeError/ValueError from C++ checks
                say(f"triangulate: COLMAP's triangulation failed ({_first_line(e)})")
                rec = None
        points3d = list(rec.points3D.values()) if rec is not None else []
        points = np.array([p.xyz for p in points3d], dtype=np.float64).reshape(-1, 3)
        colors = np.array([p.color for p in points3d], dtype=np.uint8).reshape(-1, 3)
        buf = io.BytesIO()
        np.savez(buf, points=points, colors=colors)
        atomic_write(result_path, [buf.getvalue()])
        triangulation.store(points=len(points), seconds=round(time.perf_counter() - t0, 2))
        say(f"triangulate: {len(points)} points from {n} views, {time.perf_counter() - t0:.1f} s -> {result_path}")
        return points, colors


def _colmap_camera(pycolmap, cameras: Cameras, i: int, camera_id: int):
    """Camera i of `cameras` as a pycolmap Camera with id `camera_id` (its focal length known)."""
    K, (k1, k2, k3, k4, p1, p2) = cameras.Ks[i], cameras.distortion[i]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    model = cameras.camera_model[i]
    if model == "OPENCV_FISHEYE":
        name, params = "OPENCV_FISHEYE", [fx, fy, cx, cy, k1, k2, k3, k4]
    elif model == "OPENCV" and k3 != 0:
        name, params = "FULL_OPENCV", [fx, fy, cx, cy, k1, k2, p1, p2, k3, 0.0, 0.0, 0.0]
    elif model == "OPENCV":
        name, params = "OPENCV", [fx, fy, cx, cy, k1, k2, p1, p2]
    else:
        name, params = "PINHOLE", [fx, fy, cx, cy]
    camera = pycolmap.Camera(model=name, width=int(cameras.widths[i]), height=int(cameras.heights[i]),
                             params=[float(x) for x in params], camera_id=camera_id)
    camera.has_prior_focal_length = True
    return camera


def pose_pairs(cameras: Cameras, neighbours: int, max_axis_angle_deg: float) -> list[tuple[int, int]]:
    """Image pairs (i < j) worth matching for known poses: per camera, its `neighbours` nearest
    cameras (by centre distance) whose optical axes are within `max_axis_angle_deg` of its own."""
    c2w = cameras.to_c2w_opencv()
    centres, axes = c2w[:, :3, 3], c2w[:, :3, 2]
    cos_max = math.cos(math.radians(max_axis_angle_deg))
    pairs: set[tuple[int, int]] = set()
    for i in range(len(cameras)):
        ok = np.flatnonzero((axes @ axes[i] >= cos_max) & (np.arange(len(cameras)) != i))
        near = ok[np.argsort(np.linalg.norm(centres[ok] - centres[i], axis=1), kind="stable")[:neighbours]]
        pairs.update((min(i, int(j)), max(i, int(j))) for j in near)
    return sorted(pairs)


# ---- video frames ---------------------------------------------------------------------------


def frames_from_video(video_path: str | Path, out_dir: str | Path, count: int, log: Log | None = print) -> list[Path]:
    """Decode `count` frames spread evenly over a video into out_dir/frame_00000.png, ...

    Frame k of count is the video's frame round(k * (N - 1) / (count - 1)) (first and last
    included). Reuses frames already written from the same video (out_dir/frames.json).
    Returns the PNG paths in order. Raises SplatfilmError if the video does not decode.
    """
    import imageio.v3 as iio

    say = log or (lambda _msg: None)
    video, out = Path(video_path), Path(out_dir)
    if not video.is_file():
        raise SplatfilmError(f"{video}: no such video")
    if count < 1:
        raise SplatfilmError(f"{video}: frame count must be >= 1, got {count}")
    # The video's bytes, not its size and time: a clip rewritten in place (a new export under
    # the same name, its time kept by a copy) is another clip.
    frames = CacheEntry(out / "frames.json", {"video_sha256": file_digest(video), "count": count})
    made = frames.lookup() or {}
    paths = [out / name for name in made.get("frames", [])]
    if paths and all(p.exists() for p in paths):
        say(f"video: reusing {len(paths)} frames in {out}")
        return paths

    total = _count_frames(video)
    picks = sorted({round(k * (total - 1) / (count - 1)) for k in range(count)}) if count > 1 else [0]
    make_folder(out)
    for stale in out.glob("frame_*.png"):
        stale.unlink()
    paths, wanted = [], set(picks)
    try:
        for index, frame in enumerate(iio.imiter(video, plugin="FFMPEG")):
            if index in wanted:
                p = out / f"frame_{len(paths):05d}.png"
                write_png(p, np.asarray(frame)[..., :3])
                paths.append(p)
            if index >= picks[-1]:
                break
    except Exception as e:  # imageio-ffmpeg raises OSError/RuntimeError with ffmpeg's output
        raise SplatfilmError(f"{video}: cannot decode video ({_first_line(e)})") from None
    if not paths:
        raise SplatfilmError(f"{video}: the video has no frames")
    frames.store(frames=[p.name for p in paths])
    say(f"video: {len(paths)} of {total} frames -> {out}")
    return paths


def _count_frames(video: Path) -> int:
    """Exact number of frames (ffmpeg decodes the stream once, without writing images)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise SplatfilmError(f"{video}: reading video needs imageio-ffmpeg (pip install imageio-ffmpeg)") from None
    try:
        n, _seconds = imageio_ffmpeg.count_frames_and_secs(str(video))
    except Exception as e:
        # ffmpeg lists the streams it found before failing: a file of sound alone says so
        # there, where its last line ("Error opening output files") would not.
        if "Stream #" in str(e) and ": Video:" not in str(e):
            raise SplatfilmError(f"{video}: the file has no video stream (sound only?)") from None
        raise SplatfilmError(f"{video}: cannot decode video ({_first_line(e)})") from None
    if n < 1:
        raise SplatfilmError(f"{video}: the video has no frames")
    return int(n)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1][:200] if lines else type(e).__name__


# ---- comparing worlds -------------------------------------------------------------------------


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
