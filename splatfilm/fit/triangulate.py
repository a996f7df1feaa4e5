"""3D points for a capture whose camera poses are known but which has no point cloud
(`triangulate_known_poses`): COLMAP's SIFT features and matches in a feature database
(`fit.feature_database`, resumable as SfM's), then its point triangulator with the poses and
intrinsics held fixed.
"""

from __future__ import annotations

import io
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from splatfilm import report
from splatfilm.scene.cameras import Cameras
from splatfilm.errors import SplatfilmError, last_line
from splatfilm.io.colmap_library import colmap_log, load_pycolmap
from splatfilm.fit.feature_database import (Log, database_record, database_stats, extract_resumably, features_key,
                                            match_options, match_resumably, sift_options)
from splatfilm.fit.memory import extraction_threads
from splatfilm.io.atomic import atomic_write, make_folder, work_lock
from splatfilm.io.cache import CacheEntry
from splatfilm.io.digest import content_digest
from splatfilm.io.images import write_png

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
    log: Log | None = report.status,
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
    _check_views(images, cameras)
    n = len(cameras)
    work = Path(work_dir)
    result_path = work / "points.npz"
    inputs = {"version": _TRIANGULATION_VERSION, "views": n, "digest": _views_digest(images, cameras), "seed": seed}
    triangulation = CacheEntry(work / "triangulation.json", inputs, field="inputs")
    if reuse and triangulation.lookup(result_path) is not None:
        with np.load(result_path) as z:
            points, colors = z["points"], z["colors"]
        say(f"triangulate: reusing {len(points)} points from {result_path}")
        return points, colors

    t0 = time.perf_counter()
    with work_lock(work, "triangulation"):
        with colmap_log(pycolmap, verbose):
            names = [f"{i:05d}.png" for i in range(n)]
            _start_run(work, [triangulation.path, result_path])
            features = features_key(pycolmap, **{key: inputs[key] for key in ("version", "views", "digest")})
            record = database_record(work, features, names, reuse)
            _write_views(work / "images", names, images, record)
            pycolmap.set_random_seed(seed)
            _extract_views(pycolmap, work, record, names, cameras, num_threads, say, progress, verbose)
            rec = _posed_reconstruction(pycolmap, work / "database.db", names, cameras)
            _match_views(pycolmap, work, record, names, cameras, num_threads, seed, say, progress, verbose)
            stats = database_stats(work / "database.db")
            say(f"triangulate: {stats['features']:.0f} features an image, {stats['verified_pairs']} of "
                f"{stats['pairs']} pairs verified; triangulating with the poses fixed")
            rec = _triangulate(pycolmap, rec, work, seed, say)
        points, colors = _points_of(rec)
        buf = io.BytesIO()
        np.savez(buf, points=points, colors=colors)
        atomic_write(result_path, [buf.getvalue()])
        triangulation.store(points=len(points), seconds=round(time.perf_counter() - t0, 2))
        say(f"triangulate: {len(points)} points from {n} views, {time.perf_counter() - t0:.1f} s -> {result_path}")
        return points, colors


def _check_views(images: Sequence[np.ndarray], cameras: Cameras) -> None:
    """Raise unless there is one uint8 image of its camera's size for each of at least 2
    cameras, none of them a panorama (COLMAP has no such camera)."""
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


def _views_digest(images: Sequence[np.ndarray], cameras: Cameras) -> str:
    """The content digest of the views' colours and every camera's pose, intrinsics, size and lens."""
    return content_digest(*(im[..., :3] for im in images),
                          *(np.asarray(a) for a in (cameras.viewmats, cameras.Ks, cameras.widths, cameras.heights,
                                                    cameras.distortion)), list(cameras.camera_model))


def _start_run(work: Path, stale: list[Path]) -> None:
    """Make `work` ready for a run: the last result (`stale`: its record and points) and
    COLMAP's model gone."""
    make_folder(work)
    for path in stale:
        path.unlink(missing_ok=True)
    shutil.rmtree(work / "model", ignore_errors=True)


def _write_views(image_dir: Path, names: list[str], images: Sequence[np.ndarray], record: dict) -> None:
    """The views as PNGs in `image_dir` for COLMAP to read, unless the database's `record` says
    their features are in and every file is there."""
    if record["extracted"] and all((image_dir / name).exists() for name in names):
        return
    if not record["extracted"]:
        shutil.rmtree(image_dir, ignore_errors=True)  # another capture's views may be there
    make_folder(image_dir)
    for name, im in zip(names, images):
        write_png(image_dir / name, im[..., :3])


def _extract_views(pycolmap, work: Path, record: dict, names: list[str], cameras: Cameras, num_threads: int,
                   say: Log, progress: bool, verbose: bool) -> None:
    """SIFT features of the views (a camera each) into work/database.db, unless the database's
    `record` says they are there; on as many threads as the memory holds (`fit.memory`)."""
    n = len(names)
    threads, memory_note = extraction_threads(
        num_threads, [(int(w), int(h)) for w, h in zip(cameras.widths, cameras.heights)], n)

    def extract() -> None:
        pycolmap.extract_features(work / "database.db", work / "images", image_names=names,
                                  camera_mode=pycolmap.CameraMode.PER_IMAGE,
                                  extraction_options=sift_options(pycolmap, threads), device=pycolmap.Device.cpu)

    extract_resumably(work, record, f"triangulate: SIFT features of {n} views with known poses{memory_note}",
                      f"{n} views", n, extract, say, progress, quiet=not verbose)


def _posed_reconstruction(pycolmap, database: Path, names: list[str], cameras: Cameras):
    """A pycolmap Reconstruction of the database's images with their known poses and cameras, no
    points; the database's cameras are given the known intrinsics, which verification uses."""
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
    return rec


def _match_views(pycolmap, work: Path, record: dict, names: list[str], cameras: Cameras, num_threads: int, seed: int,
                 say: Log, progress: bool, verbose: bool) -> None:
    """Match the views' features and verify the pairs, unless the database's `record` says
    matches made so are there: every pair up to TRIANGULATION_EXHAUSTIVE_MAX views, else the
    pairs of neighbouring cameras facing the same way (`pose_pairs`, written to work/pairs.txt)."""
    database, n = work / "database.db", len(names)
    matching, verification = match_options(pycolmap, num_threads, seed)
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
    match_resumably(work, record, {"pairs": "all" if n <= TRIANGULATION_EXHAUSTIVE_MAX else "neighbours", "seed": seed},
                    label, total, match, say, progress, quiet=not verbose)


def _triangulate(pycolmap, rec, work: Path, seed: int, say: Log):
    """COLMAP's point triangulator on `rec` (poses and intrinsics fixed) with the database's
    matches, on one thread; the reconstruction with its points (also in work/model), or None
    when COLMAP fails."""
    mapper = pycolmap.IncrementalPipelineOptions()
    mapper.num_threads = 1  # as run_sfm's mapping: repeatable run to run, whatever num_threads
    mapper.random_seed = seed
    make_folder(work / "model")
    try:
        return pycolmap.triangulate_points(rec, work / "database.db", work / "images", work / "model",
                                           clear_points=True, options=mapper, refine_intrinsics=False)
    except Exception as e:  # pycolmap raises RuntimeError/ValueError from C++ checks
        say(f"triangulate: COLMAP's triangulation failed ({last_line(e)})")
        return None


def _points_of(rec) -> tuple[np.ndarray, np.ndarray]:
    """(points [M,3] float64, colours [M,3] uint8) of a reconstruction; none of None."""
    points3d = list(rec.points3D.values()) if rec is not None else []
    points = np.array([p.xyz for p in points3d], dtype=np.float64).reshape(-1, 3)
    colors = np.array([p.color for p in points3d], dtype=np.uint8).reshape(-1, 3)
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
