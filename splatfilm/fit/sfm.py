"""Camera poses from bare images: COLMAP structure-from-motion through pycolmap, on the CPU.

    run_sfm(images, work_dir) -> work_dir/sparse/0   (a COLMAP model; `io.camera_files.read_colmap` reads it,
                                                       work_dir/poses.tsv says which images were kept and why)

Its neighbours: `fit.photos` (which images, their cameras, upright copies of turned photos),
`fit.feature_database` (the features and matches, made resumably), `fit.memory` (SIFT's threads
in the memory there is), `fit.triangulate` (points for known poses), `io.capture_video.frames_from_video`
(a video's frames for SfM) and `scene.cameras.align_cameras` (a model against the truth).

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
(`sfm --threads 1`) repeats exactly, matching on one core. SIFT extraction left to all cores
runs on as many as the memory left holds (`fit.memory`); the model is the same either way.
An incremental mapping resumed from its snapshot (below) is the exception: COLMAP continues the
snapshot's model with its own state begun afresh (random numbers, failed registration trials,
when the next global bundle adjustment is due), so it ends in a model of the same images that
differs from the uninterrupted run's in the last digits, not bit for bit (the bundled set's 48
views stopped after 5, 20 or 35 registrations: every image registered, reprojection error within
0.2%, camera centres within 0.04% of the capture's extent). It repeats itself: a resume from
the same snapshot gives the same model on one thread. An uninterrupted run is unchanged by the
snapshots (COLMAP only writes them out), and its mapping.json has no `resumed_from`.

Every registered pose is then checked (`splatfilm.fit.pose_check`: reprojection error, observed
points, relative rotations against the matched neighbours'); the ones that fail are dropped,
the rest bundle-adjusted again and the dropped ones, and those the mapper never registered, posed
against them (`pose_check.reregister`, kept only if they then pass; a model of fewer images than
needed is checked and added to so too, from 2), and a capture left with too few trustworthy poses is an error,
not a silent bad fit. Before that the model is judged whole (`pose_check.model_agreement`): one
that most of its calibrated pairs contradict is refused, and where both mappers made a model of
enough images, models whose relative rotations differ by more than the pose check's limit are
refused together. The verified pairs are read whole first (`pose_check.read_pair_graph`): global
mapping is not tried for images that share no verified match with the others (it cannot place
them either) nor for a camera that only turned (most pairs panoramic), and the errors and
poses.tsv say which of those it was. Images of one size and lens share one camera (one set of intrinsics);
images of several sizes (a phone's portrait and landscape photos) or lenses (by their EXIF: a
phone's wide and ultra-wide cameras, a zoom's settings) get a camera each, refined on its own
(COLMAP's automatic camera mode groups photos with EXIF much the same way, by make, model, focal
length and size; it gives each image without EXIF a camera of its own, where here they share one
a size). The model's world is COLMAP's: arbitrary origin, rotation and scale (no metres, no
known up).

A finished model is reused: `work_dir/sfm.json` records the images (names, content hashes, sizes
and lenses) and options it was made from, and a later call with the same inputs returns the
existing `work_dir/sparse/0` at once. A new model is written beside the old one and moved in
whole (sparse/, then poses.tsv and sfm.json) only when it is kept: a call that fails (too few
registered or trustworthy poses) leaves the model that was there, and writes its own verdicts to
poses.failed.tsv. Short of reuse, the feature database is kept (`fit.feature_database`): a
call with another mapper or other pose limits reuses its features and matches, one with photos
added, removed or changed extracts and matches only what is new (features are keyed per image:
content hash, size and lens), and one after an interruption goes on where extraction or
matching stopped. Each
mapping run's model is kept in `work_dir/mapping/` while the database stays as it was, so a run
stopped during mapping or the pose checks, or rerun with other pose limits, maps only what it
had not. Incremental mapping, many minutes on a CPU for hundreds of photos, also goes on
from where it stopped: as it registers images it keeps a snapshot of its model
(`mapping/incremental/snapshot/`, COLMAP's own snapshot moved into place whole, with
`snapshot.json`: the key of the mapping, the database record's included, and the digest of its
files), and a rerun continues the newest one (COLMAP's input model) if it was made from the same
database, seed and pycolmap, saying from how many registered images. A finished mapping, and
any change to the database, clears it. Global mapping has no such snapshots; its starts are
kept one by one.

Errors are SplatfilmErrors naming the folder or file: no images, an unreadable image, SfM that
registers too few images (how many of how many, with the likely reason read off the feature and
match counts), and too few poses that pass the checks (how many of how many, and what the rest
failed).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from splatfilm import report
from splatfilm.scene.cameras import sizes_text
from splatfilm.errors import SplatfilmError, last_line
from splatfilm.io.colmap_library import colmap_log, kept_log_level, load_pycolmap, stderr_silenced
from splatfilm.fit.feature_database import (VOCABULARY, Log, camera_of, database_record, database_stats,
                                            extract_resumably, features_key, match_options, match_resumably, sift_options)
from splatfilm.fit.memory import extraction_threads
from splatfilm.fit.photos import UPRIGHT, Photos, read_photos, upright_folder
from splatfilm.fit.pose_check import (MAX_ROTATION_DISAGREEMENT_DEG, NOT_REGISTERED, ONLY_ROTATES, PairGraph,
                                      PoseCheck, PoseLimits, failure_counts, model_agreement, models_disagreement,
                                      only_rotates, pair_rotations, read_pair_graph, summarize, unregistered_reason,
                                      verify_poses, write_pose_table)
from splatfilm.io.atomic import atomic_path, make_folder, work_lock
from splatfilm.io.cache import CacheEntry, read_record, write_record
from splatfilm.io.digest import file_digest, folder_digest
from splatfilm.scene.transforms import umeyama

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
# The pose table of a run that failed (too few registered or trustworthy poses): POSE_TABLE
# stays the table of the model in sparse/0, which that run leaves as it was.
FAILED_POSE_TABLE = "poses.failed.tsv"
# Bump when the pose checks change what they keep: a model checked the old way is made again
# (its features, matches and mapping runs are reused). 2: pairs judged by the geometry they
# verified with, and where the views turn, pairs that say "no turn" left out; the model judged whole.
# 3: dropped images posed again against the kept ones (`pose_check.reregister`). 4: and the images
# the mapper never registered, also where it registered fewer than needed (2 or more).
POSE_CHECKS = 4

# Global mapping runs from this many starts (seeds seed, seed + 1, ...); its model is kept only
# if two starts put every camera centre within GLOBAL_MAX_START_DISAGREEMENT of the capture's
# extent (the largest side of the centres' bounding box) of each other, after a similarity
# alignment. Measured: 0.1% where the matches determine the cameras (Lund at full size), 2.5%
# between the two agreeing starts of the half-size cut (a straight walk, in order), 16-67%
# between the others (see the module docstring).
GLOBAL_STARTS = 3
GLOBAL_MAX_START_DISAGREEMENT = 0.05

# Incremental mapping keeps a snapshot of its model in mapping/incremental/snapshot/ (with
# SNAPSHOT_RECORD) and a run stopped part way goes on from it; COLMAP writes them into
# SNAPSHOT_SCRATCH first. At most about MAPPING_SNAPSHOTS a run (`snapshot_every`), so a stop
# loses the registrations of at most 1% of the images. A snapshot costs a write of the model
# and a digest of it (~10 ms for the bundled set's 48 views, 2.4 MB: ~10% of that 4 s mapping;
# a model's files grow about as its registration work does, and the cap keeps the count down).
SNAPSHOT = "snapshot"
SNAPSHOT_RECORD = "snapshot.json"
SNAPSHOT_SCRATCH = "snapshot.scratch"
MAPPING_SNAPSHOTS = 100
# What mapping.json says of a run beside its key: not compared when it is reused.
_RUN_NOTES = ("registered", "resumed_from")


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
    log: Log | None = report.status,
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
                   work_dir, and go on where an interrupted extraction, matching or incremental
                   mapping stopped (a resumed mapping: see the module docstring).
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
    _check_choices(matcher, mapper, camera_model)
    photos = read_photos(images, say)
    n = len(photos.names)
    need = _images_needed(photos, min_registered)
    if matcher == "auto":
        matcher = "sequential" if ordered or n > _AUTO_EXHAUSTIVE_MAX else "exhaustive"

    work = Path(work_dir)
    model_dir = work / "sparse" / "0"
    inputs = _sfm_inputs(photos, {"matcher": matcher, "mapper": mapper, "camera_model": camera_model,
                                  "focal_px": focal_px, "seed": seed, "limits": (limits or PoseLimits()).__dict__,
                                  "checks": POSE_CHECKS})
    model = CacheEntry(work / "sfm.json", inputs, field="inputs")
    if reuse and _reusable(model, work, photos, need, say):
        return model_dir
    _say_if_made_otherwise(work, inputs, say)

    with work_lock(work, "sfm run"):
        with colmap_log(pycolmap, verbose):
            root = _start_run(pycolmap, work, photos, inputs["images"], seed, say)
            t0 = time.perf_counter()
            features = features_key(pycolmap, version=inputs["version"], camera_model=camera_model, focal_px=focal_px)
            record = database_record(work, features, photos.names, reuse, images=_image_keys(photos, inputs["images"]),
                                     say=lambda line: say(f"sfm: {line}"))
            _extract_features(pycolmap, work, record, photos, root, camera_model, focal_px, num_threads, say,
                              progress, verbose)
            _match_features(pycolmap, work, record, n, matcher, num_threads, seed, say, progress, verbose)
            stats = _say_database_stats(work / "database.db", say)
            graph = _pair_graph(work / "database.db", say)
            mapped = _map(pycolmap, work / "database.db", root, work / "mapping", mapper, n, seed, say,
                          {key: record.get(key) for key in ("features", "images", "matching")}, graph)
            best, used, rotations = _judge_models(work / "database.db", mapped, need, seed, photos.where, say)
            summary = SfmSummary(n, best.num_reg_images() if best is not None else 0, stats["features"],
                                 stats["verified_pairs"], stats["pairs"],
                                 best.num_points3D() if best is not None else 0, time.perf_counter() - t0, mapper=used)
            # Two poses are enough for the rest to be posed against (`pose_check.reregister`).
            if summary.registered < 2:
                _require_registered(work, photos, best, summary, need, mapped, graph)
            say(f"sfm: {used} mapping registered {summary.registered}/{n} images; checking their poses")
            checks = _complete(photos.names, verify_poses(best, work / "database.db", limits, seed=seed, log=say,
                                                          rotations=rotations, graph=graph), best, graph)
            if sum(c.kept for c in checks) < need:
                # Where the mapper registered too few, that is the error to explain (why it did, from
                # the features and matches), whatever re-registration then added.
                _require_registered(work, photos, best, summary, need, mapped, graph, checks)
        _record_checks(work, photos, checks, best, summary, t0, need, say, graph)
        _write_model(model, model_dir, best, checks, root, summary, say)
        return model_dir


def _check_choices(matcher: str, mapper: str, camera_model: str) -> None:
    """Raise for a matcher, mapper or camera model run_sfm does not know."""
    if matcher not in MATCHERS:
        raise SplatfilmError(f"run_sfm: matcher {matcher!r} is not one of {', '.join(MATCHERS)}")
    if mapper not in MAPPERS:
        raise SplatfilmError(f"run_sfm: mapper {mapper!r} is not one of {', '.join(MAPPERS)}")
    if camera_model not in CAMERA_MODELS:
        raise SplatfilmError(f"run_sfm: camera_model {camera_model!r} is not one of {', '.join(CAMERA_MODELS)}")


def _images_needed(photos: Photos, min_registered: float) -> int:
    """The fewest images the model must register and keep (see run_sfm's min_registered); raises
    when there are fewer photos than that."""
    n = len(photos.names)
    if not (0 < min_registered <= 1 or (min_registered > 1 and float(min_registered).is_integer())):
        raise SplatfilmError(f"run_sfm: min_registered {min_registered!r} is neither a fraction in (0, 1] nor a "
                             "whole count of images")
    need = max(3, math.ceil(min_registered * n) if min_registered <= 1 else int(min_registered))
    if n < need:
        raise SplatfilmError(f"{photos.where}: {n} image(s); SfM needs at least {need} overlapping views")
    return need


def _sfm_inputs(photos: Photos, options: dict) -> dict:
    """The key of a model (sfm.json's "inputs"): the pipeline's version, every image's name and
    content hash, their sizes and lenses, and the run's `options`."""
    return {
        "version": _SFM_VERSION,
        # sha1: the hash sfm.json has always recorded, so models made before stay reusable.
        "images": [[name, file_digest(photos.root / name, "sha1")] for name in photos.names],
        # One size as before, so models made before images were grouped stay reusable.
        "size": (list(next(iter(photos.groups))[:2]) if len(photos.groups) == 1
                 else [list(key) for key in photos.groups]),
        "options": options,
    }


def _image_keys(photos: Photos, images: list) -> dict[str, list]:
    """Each image's key in the feature database (`database_record`): by name, its content hash
    (`images`: [name, sha1] as in sfm.json) and the size and lens of its camera group."""
    group = {name: list(key) for key, names in photos.groups.items() for name in names}
    return {name: [digest, *group[name]] for name, digest in images}


def _reusable(model: CacheEntry, work: Path, photos: Photos, need: int, say: Log) -> bool:
    """Whether the model in work/sparse/0 was made from the same inputs, kept enough images, and
    still has the upright copies it was read from (said so when it is reused)."""
    model_dir = work / "sparse" / "0"
    record = model.lookup(model_dir / "images.bin")
    if (record is not None and record.get("summary", {}).get("kept", 0) >= need
            and (not photos.turned or read_sfm_image_root(work) is not None)):  # upright copies still there
        say(f"sfm: reusing {model_dir} ({record['summary']['kept']}/{len(photos.names)} images kept)")
        return True
    return False


def _say_if_made_otherwise(work: Path, inputs: dict, say: Log) -> None:
    """Say so when the model in `work` about to be replaced was made from the same images with
    other options: a model made on purpose with another camera model or matcher (`splatfilm
    sfm`) is not replaced unsaid when `fit` of the same photos runs SfM with its defaults."""
    if not (work / "sparse" / "0" / "images.bin").exists():
        return
    old = read_record(work / "sfm.json").get("inputs", {})
    if isinstance(old, dict) and old.get("images") == inputs["images"] and isinstance(old.get("options"), dict):
        changed = ", ".join(f"{k} {old['options'].get(k)!r} -> {inputs['options'][k]!r}"
                            for k in ("camera_model", "focal_px", "matcher", "mapper")
                            if old["options"].get(k) != inputs["options"][k])
        if changed:
            say(f"sfm: the model in {work} was made with other options ({changed}); making it again "
                f"(`splatfilm fit {work}` fits from a model as it is)")


def _start_run(pycolmap, work: Path, photos: Photos, images: list, seed: int, say: Log) -> Path:
    """Make `work` ready for a run: upright copies of the turned photos (`images`: [name, sha1]),
    COLMAP seeded. The last model, its pose table and sfm.json stay until a new model replaces
    them (`_write_model`): a run that fails leaves the model that was there. Returns the folder
    COLMAP reads the images from."""
    make_folder(work)
    root = photos.root
    if photos.turned:
        k = len(photos.turned)
        say(f"sfm: {k} photo{'s are' if k > 1 else ' is'} stored turned (EXIF "
            f"orientation); SfM and the fit read upright copies in {work / UPRIGHT}")
        root = upright_folder(work, root, images, set(photos.turned))
    pycolmap.set_random_seed(seed)
    return root


def _forget_mapping(work: Path) -> None:
    """Delete the mapping runs kept in work/mapping: they were made from the database as it
    was, and go before anything in it changes (a run stopped in between must not find them)."""
    shutil.rmtree(work / "mapping", ignore_errors=True)


def _extract_features(pycolmap, work: Path, record: dict, photos: Photos, root: Path, camera_model: str,
                      focal_px: float | None, num_threads: int, say: Log, progress: bool, verbose: bool) -> None:
    """SIFT features of every photo into work/database.db (a camera for each group of
    `photos`), unless the database's `record` says they are there; on as many threads as the
    memory holds where `num_threads` leaves it to COLMAP (`fit.memory`)."""
    n, groups = len(photos.names), photos.groups
    sizes = sizes_text({k: len(g) for k, g in groups.items()}) + (
        "; a camera for each size and lens" if len(groups) > 1 else "")
    threads, memory_note = extraction_threads(num_threads, [key[:2] for key in groups],
                                              max(len(group) for group in groups.values()),
                                              " (`splatfilm sfm --threads N` sets it)")

    def extract() -> None:
        for (width, height, _), group in groups.items():
            _extract(pycolmap, work / "database.db", root, group, (width, height), camera_model, focal_px, threads)

    extract_resumably(work, record, f"sfm: extracting SIFT features from {n} images at {sizes}{memory_note}",
                      f"{n} images at {sizes}", n, extract, say, progress, lambda: _forget_mapping(work),
                      quiet=not verbose)


def _match_features(pycolmap, work: Path, record: dict, n: int, matcher: str, num_threads: int, seed: int, say: Log,
                    progress: bool, verbose: bool) -> None:
    """Match the `n` images' features ("exhaustive" or "sequential") and verify the pairs, unless
    the database's `record` says matches made so are there."""
    match_resumably(work, record, {"matcher": matcher, "seed": seed},
                    f"sfm: {matcher} matching" + (" with loop detection" if matcher == "sequential" else ""),
                    n * (n - 1) // 2 if matcher == "exhaustive" else None,
                    lambda: _match(pycolmap, work / "database.db", matcher, num_threads, seed, work / VOCABULARY, say,
                                   quiet=not verbose), say, progress,
                    bound=sequential_pairs_bound(n) if matcher == "sequential" else None,
                    changing=lambda: _forget_mapping(work), quiet=not verbose)


def _say_database_stats(database: Path, say: Log) -> dict:
    """`database_stats` of the database, said: images without a feature, and the features and
    verified pairs the mapping starts from."""
    stats = database_stats(database)
    if stats["featureless"]:
        k = len(stats["featureless"])
        say(f"sfm: no SIFT features in {k} image{'s' if k > 1 else ''} "
            f"({', '.join(stats['featureless'][:4])}{', ...' if k > 4 else ''}): COLMAP could not decode "
            f"{'them' if k > 1 else 'it'}, or there is nothing to match")
    say(f"sfm: {stats['features']:.0f} features an image, {stats['verified_pairs']} of {stats['pairs']} "
        "pairs verified; mapping")
    return stats


def _require_registered(work: Path, photos: Photos, best, summary: SfmSummary, need: int, mapped: "Mapped",
                        graph: PairGraph, checks: list[PoseCheck] | None = None) -> None:
    """Raise, with every image in the pose table as not registered or not checked (or as
    `checks` says, when checked), when the model `best` registered fewer than `need` images
    (why, from `summary`, the pair graph and the mapping's note)."""
    if summary.registered >= need:
        return
    write_pose_table(work / FAILED_POSE_TABLE, checks or _unchecked(photos.names, best, graph))
    if best is None and mapped.note:
        # No model came out, though a mapper registered images: say which and why it was not used,
        # not "SfM registered 0".
        tried = (f"; incremental mapping registered {mapped.incremental} of {summary.images}"
                 if mapped.incremental is not None else "")
        raise SplatfilmError(f"{photos.where}: no usable SfM model (needs {need} of {summary.images} images): "
                             f"{mapped.note}{tried}")
    raise SplatfilmError(f"{photos.where}: SfM registered {summary.registered} of {summary.images} images "
                         f"(needs {need}): {_why(summary, graph)}" + (f"; {mapped.note}" if mapped.note else ""))


def _record_checks(work: Path, photos: Photos, checks: list[PoseCheck], best, summary: SfmSummary, t0: float,
                   need: int, say: Log, graph: PairGraph | None = None) -> None:
    """Complete `summary` with the images kept, the points left and the time since `t0`, and
    raise when fewer than `need` images kept their poses, writing the pose table of `checks`
    as FAILED_POSE_TABLE (`_write_model` writes a kept model's)."""
    summary.kept = sum(c.kept for c in checks)
    table = work / (POSE_TABLE if summary.kept >= need else FAILED_POSE_TABLE)
    summary.points = best.num_points3D()
    summary.seconds = time.perf_counter() - t0
    say(f"sfm: {summarize(checks)} -> {table}")
    if summary.kept < need:
        write_pose_table(table, checks)
        failed = ", ".join(f"{k} {why}" for why, k in failure_counts(checks).items())
        rotates = f": {ONLY_ROTATES}" if graph is not None and only_rotates(graph.type_counts()) else ""
        raise SplatfilmError(f"{photos.where}: only {summary.kept} of {summary.images} images have trustworthy poses "
                             f"(needs {need}){rotates}; {failed}; per-image reasons in {table}")


def _write_model(model: CacheEntry, model_dir: Path, best, checks: list[PoseCheck], root: Path,
                 summary: SfmSummary, say: Log) -> None:
    """Put the checked model `best` in place of the folder above `model_dir` (sparse/) whole,
    then its pose table (`checks`) and its record (sfm.json: the summary and where its images
    are read from, `root`). The old record goes first: a stop on the way must not leave it
    beside the new model, where it would pass for that model's."""
    work = model.path.parent
    model.path.unlink(missing_ok=True)
    with atomic_path(model_dir.parent) as partial:
        best.write(make_folder(partial / model_dir.name))
    write_pose_table(work / POSE_TABLE, checks)
    (work / FAILED_POSE_TABLE).unlink(missing_ok=True)
    # Inside the work folder (upright copies) relative to it, so a moved model keeps them.
    image_root = root.resolve()
    inside = image_root.is_relative_to(work.resolve())
    model.store(summary=summary.__dict__,
                image_root=str(image_root.relative_to(work.resolve()) if inside else image_root))
    say(f"sfm: kept {summary.kept}/{summary.images} images, {summary.points} points, {summary.seconds:.1f} s "
        f"-> {model_dir}")



def _unchecked(names: list[str], rec, graph: PairGraph | None = None) -> list[PoseCheck]:
    """Rows for a model too small to check: every image unregistered or not checked."""
    posed = {im.name for im in rec.images.values() if im.has_pose} if rec is not None else set()
    return [PoseCheck(name, True, reason="not checked: too few images registered") if name in posed else
            _unregistered(name, posed, graph) for name in names]


def _complete(names: list[str], checks: list[PoseCheck], rec=None, graph: PairGraph | None = None
              ) -> list[PoseCheck]:
    """The checks in the order of `names`, with a row for images the model `rec` never saw."""
    by_name = {c.name: c for c in checks}
    posed = {im.name for im in rec.images.values() if im.has_pose} if rec is not None else set()
    return [by_name.get(name) or _unregistered(name, posed, graph) for name in names]


def _unregistered(name: str, posed: set[str], graph: PairGraph | None) -> PoseCheck:
    """The row of an image a model registering the images `posed` (names) left out."""
    if graph is None:
        return PoseCheck(name, False, reason=NOT_REGISTERED)
    ids = {n: i for i, n in graph.names.items()}
    registered = {ids[n] for n in posed if n in ids}
    return PoseCheck(name, False, reason=unregistered_reason(ids.get(name, -1), registered, graph))


def _extract(pycolmap, database: Path, root: Path, names: list[str], size: tuple[int, int], camera_model: str,
             focal_px: float | None, num_threads: int) -> None:
    """SIFT features on the CPU into `database` for images of one `size`, all sharing one camera:
    a new one, or the one its images already in the database have (an interrupted extraction
    resumed: COLMAP skips the images whose features are there)."""
    width, height = size
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    existing = camera_of(database, names)
    if existing is not None:
        reader.existing_camera_id = existing
    f = float(focal_px) if focal_px else 1.2 * max(width, height)
    focal = [f] if camera_model.startswith("SIMPLE") else [f, f]
    extra = {"SIMPLE_PINHOLE": [], "PINHOLE": [], "SIMPLE_RADIAL": [0.0], "OPENCV": [0.0] * 4}[camera_model]
    reader.camera_params = ",".join(str(x) for x in focal + [width / 2, height / 2] + extra)
    pycolmap.extract_features(database, root, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                              reader_options=reader, extraction_options=sift_options(pycolmap, num_threads),
                              device=pycolmap.Device.cpu)


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
    matching, verification = match_options(pycolmap, num_threads, seed)
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


@dataclass
class Mapped:
    """What `_map` made.

    models:      (model, "incremental" or "global") with the most registered first (incremental on a
                 tie); both where both mappers made one.
    note:        why a global model was not used or global mapping not tried ("" if neither).
    incremental: images incremental mapping registered (None: it did not run).
    """

    models: list[tuple[Any, str]]
    note: str = ""
    incremental: int | None = None


def _map(pycolmap, database: Path, root: Path, out: Path, mapper: str, n: int, seed: int, say: Log,
         made_from: dict | None = None, graph: PairGraph | None = None) -> Mapped:
    """The models `mapper` makes (see run_sfm); global mapping is tried in "auto" only where
    incremental mapping left out images that verified pairs join to the others, and not for a
    camera that only turned (`graph`)."""
    best, got = None, None
    if mapper in ("auto", "incremental"):
        best = _mapping(pycolmap, "incremental", database, root, out / "incremental", seed, say, made_from, n)
        got = best.num_reg_images() if best is not None else 0
        models = [(best, "incremental")] if best is not None else []
        if mapper == "incremental" or got == n:
            return Mapped(models, "", got)
        joined = len(graph.components()[0]) if graph is not None else n
        if got >= joined:
            say(f"sfm: incremental mapping registered {got}/{n} images; the other {n - got} share no verified "
                "match with them, so global mapping could not place them either")
            return Mapped(models, "", got)
        say(f"sfm: incremental mapping registered {got}/{n} images; trying global mapping")
    models = [(best, "incremental")] if best is not None else []
    if graph is not None and only_rotates(graph.type_counts()):
        # Rotation averaging would turn the cameras right, but no start could place them, and the
        # starts' disagreement would advise more views closer together, which is no help.
        say("sfm: most verified pairs are panoramic, so global mapping is not tried")
        return Mapped(models, ONLY_ROTATES, got)
    starts = [_mapping(pycolmap, "global", database, root, out / f"global{k}", seed + k, say, made_from)
              for k in range(GLOBAL_STARTS)]
    pick, closest = agreeing_start(starts)
    if pick is None:
        registered = max((r.num_reg_images() for r in starts if r is not None), default=0)
        if registered == 0:
            return Mapped(models, "", got)
        apart = (f"the closest put the cameras {100 * closest:.0f}% of the capture's extent apart"
                 if math.isfinite(closest) else "no two registered 3 images in common")
        note = (f"global mapping registered {registered} of {n} images but no two of its {GLOBAL_STARTS} starts agree "
                f"({apart}): the matches do not pin the cameras down, so it was not used; take more views, closer "
                "together")
        say(f"sfm: {note}")
        return Mapped(models, note, got)
    other = starts[pick]
    if best is not None and other.num_reg_images() <= best.num_reg_images():
        return Mapped(models + [(other, "global")], "", got)
    return Mapped([(other, "global")] + models, "", got)


def _judge_models(database: Path, mapped: Mapped, need: int, seed: int, where: str, say: Log):
    """(the model to check image by image, "incremental" or "global", its `pair_rotations`) from
    what `_map` made: the first that the rotations of its CALIBRATED pairs do not refuse whole
    (`pose_check.model_agreement`); where both mappers made one of at least `need` images and
    both pass, they must agree on the images they share. (None, "incremental", None) where
    nothing was made. Raises SplatfilmError when every model is refused, or two passing ones
    disagree."""
    judged = []
    for model, kind in mapped.models:
        rotations = pair_rotations(model, database, seed)
        agreement = model_agreement(model, rotations)
        if agreement.refused():
            say(f"sfm: the {kind} model is refused: {agreement.text()}")
        judged.append((model, kind, rotations, agreement))
    passing = [j for j in judged if not j[3].refused()]
    if judged and not passing:
        model, kind, _rotations, agreement = judged[0]
        raise SplatfilmError(f"{where}: the {kind} SfM model ({model.num_reg_images()} images registered) contradicts "
                             f"its own matches, {agreement.text()}: it is wrong as a whole (a repeated or "
                             "symmetric pattern, or a background that did not move with the subject); take views "
                             "closer together")
    big = [j for j in passing if j[0].num_reg_images() >= need]
    if len(big) == 2:
        apart, shared = models_disagreement(big[0][0], big[1][0])
        if apart > MAX_ROTATION_DISAGREEMENT_DEG:
            raise SplatfilmError(f"{where}: incremental and global mapping made different models: their relative "
                                 f"rotations differ by a median {apart:.0f} deg over the {shared} images both "
                                 "registered, so neither can be trusted (a repeated or symmetric pattern, or too "
                                 "little overlap); take views closer together")
    if not passing:
        return None, "incremental", None
    model, kind, rotations, _agreement = passing[0]
    return model, kind, rotations


def _pair_graph(database: Path, say: Log) -> PairGraph:
    """The verified pairs of `database` (`pose_check.read_pair_graph`, panoramic pairs told
    apart), saying so when some images share no verified match with the largest group or the
    camera only turned."""
    graph = read_pair_graph(database, tell_panoramic=True)
    groups = graph.components()
    if len(groups) > 1:
        apart = sorted(graph.names[i] for g in groups[1:] for i in g)
        say(f"sfm: {len(apart)} image{'s share' if len(apart) > 1 else ' shares'} no verified match with the "
            f"largest group of {len(groups[0])} ({', '.join(apart[:4])}{', ...' if len(apart) > 4 else ''})")
    if only_rotates(graph.type_counts()):
        say(f"sfm: most verified pairs are panoramic: {ONLY_ROTATES}")
    return graph


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


def start_disagreement(a: Any, b: Any) -> float:
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
             made_from: dict | None = None, images: int = 0):
    """One COLMAP mapping run ("incremental" or "global") on one thread (see the module docstring); its
    model with the most registered images, or None. Kept in `out` (model/ and mapping.json) and
    reused by a later run on the same database, so a run stopped during mapping or the pose
    checks, or run again with other pose limits, does not map again what it mapped. made_from:
    what the database holds (its record's features key and matching options), part of the
    key; run_sfm also clears the runs before anything in the database changes. Incremental
    mapping of `images` images also keeps snapshots while it runs and goes on from the newest
    after an interruption (`_incremental_mapping`)."""
    done = {"kind": kind, "seed": seed, "pycolmap": pycolmap.__version__, "database": made_from}
    record, model = out / "mapping.json", out / "model"
    if record.exists() and {k: v for k, v in read_record(record).items() if k not in _RUN_NOTES} == done:
        say(f"sfm: reusing the {kind} mapping in {out}")
        shutil.rmtree(out / SNAPSHOT, ignore_errors=True)  # left by a run stopped right after its record
        return pycolmap.Reconstruction(model) if (model / "images.bin").exists() else None
    resume = _snapshot_to_resume(pycolmap, out / SNAPSHOT, done, say) if kind == "incremental" else None
    _clear_folder(out, keep=SNAPSHOT if resume is not None else None)
    if kind == "incremental":
        options = pycolmap.IncrementalPipelineOptions()
    else:
        options = pycolmap.GlobalPipelineOptions()
    options.num_threads = 1
    options.random_seed = seed
    options.min_model_size = 3
    runs = out / "runs"  # COLMAP writes every model it makes here; only the best is kept
    runs.mkdir(parents=True, exist_ok=True)
    try:
        with kept_log_level(pycolmap):
            if kind == "incremental":
                recons = _incremental_mapping(pycolmap, database, root, runs, options, out, done, images, resume, say)
            else:
                recons = pycolmap.global_mapping(database, root, runs, options=options)
    except (SplatfilmError, TypeError):
        # A snapshot that cannot be written is said as such, not as a failed mapping. A TypeError is
        # no C++ check failing: our call was wrong, or a stop signal surfaced while pybind11
        # converted arguments (the CLI ends that as a stop), and the snapshot must survive it.
        raise
    except Exception as e:  # pycolmap raises RuntimeError/ValueError from C++ checks
        say(f"sfm: {kind} mapping failed ({last_line(e)})")
        shutil.rmtree(out / SNAPSHOT, ignore_errors=True)  # mapping ended: it is not resumed
        return None
    shutil.rmtree(runs, ignore_errors=True)
    best = max(recons.values(), key=lambda r: r.num_reg_images(), default=None)
    if best is not None:
        with atomic_path(model) as partial:
            make_folder(partial)
            best.write(partial)
    write_record(record, {**done, "registered": best.num_reg_images() if best is not None else 0,
                          **({"resumed_from": resume[1]} if resume is not None else {})})
    shutil.rmtree(out / SNAPSHOT, ignore_errors=True)
    # Read back: a model read from files lists its images in another order than the one COLMAP
    # built, and what follows (the pose checks, the model written) would differ with it.
    return pycolmap.Reconstruction(model) if best is not None else None


def _incremental_mapping(pycolmap, database: Path, root: Path, runs: Path, options, out: Path, done: dict,
                         images: int, resume: tuple[Path, int] | None, say: Log) -> dict:
    """pycolmap.incremental_mapping of `database` into `runs` (its models by index), keeping a
    snapshot of the model it grows in out/snapshot (`SNAPSHOT`, with `SNAPSHOT_RECORD`: the
    mapping's key `done` and the digest of the files) every `snapshot_every(images)` registered
    images; from `resume` (the snapshot's folder and its registered images) when one is given.

    COLMAP writes each snapshot itself (snapshot_frames_freq), not atomically, into a scratch
    folder, just before it calls next_image_callback; the callback moves the finished folder
    into place atomically. Only the first model a run grows is kept so: COLMAP continues a
    single model (input_path), and one continued from a later model's snapshot would lose the
    models before it. A later model stopped part way is made again from its start."""
    scratch = out / SNAPSHOT_SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)  # COLMAP makes only the snapshot's own folder
    options.snapshot_path = scratch
    options.snapshot_frames_freq = snapshot_every(images)
    models = 0

    def started() -> None:
        nonlocal models
        models += 1

    def registered() -> None:
        written = sorted(scratch.iterdir())  # one at most: each is moved or deleted here
        if models == 1 and written:
            _keep_snapshot(written[-1], out / SNAPSHOT, done)
        for stale in written:
            shutil.rmtree(stale, ignore_errors=True)

    extra = {}
    if resume is not None:
        say(f"sfm: resuming incremental mapping from its snapshot of {resume[1]}/{images} registered images")
        extra["input_path"] = resume[0]
    try:
        return pycolmap.incremental_mapping(database, root, runs, options=options, initial_image_pair_callback=started,
                                            next_image_callback=registered, **extra)
    finally:  # a snapshot COLMAP wrote after the last one kept, up to a model's size
        shutil.rmtree(scratch, ignore_errors=True)


def snapshot_every(images: int) -> int:
    """Registered images between two snapshots of an incremental mapping of `images` images: at
    most about MAPPING_SNAPSHOTS snapshots a run (every image up to that many)."""
    return max(1, math.ceil(images / MAPPING_SNAPSHOTS))


def _keep_snapshot(written: Path, snapshot: Path, done: dict) -> None:
    """Make `written` (a model folder COLMAP just finished writing) the snapshot at `snapshot`,
    with its record (`done` and the digest of its files), atomically (`io.atomic.atomic_path`):
    a stop on the way leaves the snapshot before it, or none."""
    with atomic_path(snapshot) as partial:
        os.replace(written, partial)
        write_record(partial / SNAPSHOT_RECORD, {**done, "files": folder_digest(partial)})


def _snapshot_to_resume(pycolmap, snapshot: Path, done: dict, say: Log) -> tuple[Path, int] | None:
    """(`snapshot`, its registered images) when it is a whole snapshot of the mapping `done`
    describes (the same database record, seed and pycolmap; files as they were written), else
    None (said when one was there and cannot be used)."""
    if not snapshot.is_dir():
        return None
    record = read_record(snapshot / SNAPSHOT_RECORD)
    files = record.pop("files", None)
    why = None
    if record != done:
        why = "it was made from another database, seed or pycolmap"
    elif files != folder_digest(snapshot, skip_suffixes=(SNAPSHOT_RECORD,)):
        why = "its files are not as they were written"
    else:
        try:
            registered = pycolmap.Reconstruction(snapshot).num_reg_images()
        except (RuntimeError, ValueError) as e:  # what pycolmap raises for a model it cannot read
            why = f"it cannot be read ({last_line(e)})"
    if why is not None:
        say(f"sfm: not resuming incremental mapping from {snapshot}: {why}")
        return None
    return snapshot, registered


def _clear_folder(folder: Path, keep: str | None = None) -> None:
    """Delete what `folder` holds but the entry named `keep`."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name == keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


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


def _why(s: SfmSummary, graph: PairGraph | None = None) -> str:
    """The likely reason SfM registered too few images, from its feature and match counts and the
    verified pairs (`graph`): the camera only turned, images matching none of the others, too
    little texture or overlap."""
    if graph is not None and only_rotates(graph.type_counts()):
        return ONLY_ROTATES
    if s.features < 300:
        return (f"only {s.features:.0f} SIFT features an image: the images have too little texture "
                "(smooth or blurry surfaces, or too small); use sharper, more detailed views")
    groups = graph.components() if graph is not None else []
    if len(groups) > 1:
        apart = sorted(graph.names[i] for g in groups[1:] for i in g)
        listed = ", ".join(apart[:4]) + (", ..." if len(apart) > 4 else "")
        return (f"the largest group of images joined by verified matches has {len(groups[0])} of {s.images}; "
                f"{len(apart)} share no verified match with it ({listed}): images of something else, or views "
                "with nothing in common with the rest")
    if s.verified_pairs < s.images - 1:
        return (f"only {s.verified_pairs} of {s.pairs} image pairs share enough matched features: "
                "neighbouring views overlap too little; take more views, closer together")
    return (f"{s.verified_pairs} image pairs matched but the views did not chain into one model: "
            "the camera may only rotate (no parallax), the scene may be repetitive, or views too far apart")
