"""Checking the poses structure-from-motion found, and dropping the ones that cannot be trusted.

COLMAP registers an image once enough of its features agree with 3D points already in the
model. On repetitive scenes (floor tiles, brick, rows of windows) those features can agree
with the wrong copy of a pattern, and the image gets a confident pose that is off by tens of
degrees. Three independent signals catch that, per registered image:

- reprojection: the mean distance (px) between its features and the projections of the 3D
  points they observe, after bundle adjustment;
- support: how many 3D points it observes;
- rotation consistency: for every matched neighbour (an image pair whose matches verified
  geometrically), the relative rotation implied by the two SfM poses against the one the
  pair's own inlier matches give on their own (an essential matrix re-estimated with the
  model's refined intrinsics). A wrong pose disagrees with most of its neighbours; a right one
  with few (only those that are wrong themselves, or pairs matched on a repeated pattern).

`verify_poses` measures them, drops what fails (de-registers the image; its points lose that
observation), bundle-adjusts the rest and measures again, until nothing fails. Failing images
are dropped, not re-registered: re-registering would start again from the same ambiguous
matches that misled the mapper, and a capture is better served by its trustworthy views only.
`write_pose_table` writes the per-image verdicts as a tab-separated table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from splatfilm.io.colmap_library import kept_log_level, load_pycolmap
from splatfilm.io.atomic import atomic_write
from splatfilm.scene.transforms import rotation_angle_deg

# ---- thresholds ------------------------------------------------------------------------------

# Mean reprojection error (px) an image may have. COLMAP's mapper already deletes single
# observations over 4 px, so a right pose averages well under 1 px on sharp images (0.3-0.5 px
# on the bundled renders, ~0.5-1 px on phone photos without a lens model); an image whose
# surviving observations still average 2 px is being pulled off by its own points.
MAX_MEAN_REPROJ_PX = 2.0

# Fewest 3D points an image must observe. COLMAP registers an image from 30 2D-3D inliers
# (abs_pose_min_num_inliers); bundle adjustment's filtering can then thin that out, and an
# image left seeing fewer than 20 points has a pose resting on too little to check.
MIN_OBSERVATIONS = 20

# Largest angle (deg) between a pair's relative rotation from the two SfM poses and from its
# own matches for the pair to "agree". Measured on the bundled set's 320x240 views: the
# strongest pairs (100+ inlier matches) agree with right poses to under 1.5 deg, but weak wide
# pairs (30-60 matches, 40-70 deg apart) are off by up to 20 deg (a narrow field of view lets
# rotation trade against translation); on real phone photos (tests/fixtures/flowerpot, one
# SIMPLE_PINHOLE camera absorbing the lens's barrel distortion) right pairs are off by 5-19
# deg. The wrong poses this check exists for are off by 20-180 deg.
MAX_ROTATION_DISAGREEMENT_DEG = 20.0

# Fraction of its matched neighbours an image must agree with more than. A right pose disagrees with
# neighbours that are wrong themselves or matched on a repeated or symmetric pattern: on the
# flowerpot turntable (a round pot on a printed target), views half a turn apart match with a
# near-identity rotation, and right poses agree with only 30-60% of their 10 strongest pairs.
# A wrong pose is the odd one out against nearly all of them (the planted ones: none; one
# photo of the flowerpot posed 177 deg wrong, beside three others wrong alike: 2 of 8, exactly
# a quarter, so an image at a quarter fails).
MIN_AGREEING_FRACTION = 0.25

# Fewest inlier matches a pair needs to count as a neighbour: COLMAP verifies pairs from 15,
# but an essential matrix from fewer than 30 matches says little about the rotation.
MIN_PAIR_INLIERS = 30

# Neighbours an image is checked against: its strongest pairs (most inlier matches). They are
# the close views whose relative rotation is well determined, and the cost stays linear in
# the number of images (each pair's re-estimation takes a few ms).
MAX_NEIGHBOURS = 10

# RANSAC for re-estimating a pair's relative pose: COLMAP's two-view inlier threshold (px);
# few trials suffice since the matches are already the pair's verified inliers.
PAIR_RANSAC_MAX_ERROR_PX = 4.0
PAIR_RANSAC_TRIALS = (20, 200)

# Drop-and-readjust rounds before giving up on a model that keeps producing new failures.
MAX_ROUNDS = 5

# Observations over this reprojection error (px) and points with less triangulation angle
# (deg) than this are removed after each re-adjustment (COLMAP's mapper defaults).
FILTER_MAX_REPROJ_PX = 4.0
FILTER_MIN_TRI_ANGLE_DEG = 1.5

Log = Callable[[str], None]


@dataclass
class PoseLimits:
    """The thresholds `verify_poses` applies (defaults: the module's constants, which say why)."""

    max_reproj_px: float = MAX_MEAN_REPROJ_PX
    min_observations: int = MIN_OBSERVATIONS
    max_rotation_deg: float = MAX_ROTATION_DISAGREEMENT_DEG
    min_agreeing: float = MIN_AGREEING_FRACTION


@dataclass
class PoseCheck:
    """One image's verdict.

    registered:   SfM gave it a pose.
    kept:         the pose passed every check and stays in the model.
    reason:       why it was dropped or not registered ("" when kept).
    reproj_px:    mean reprojection error of its observations, px (nan: not registered).
    observations: 3D points it observes.
    neighbours / agreeing: matched neighbours in the rotation check / how many agree.
    median_rotation_deg: median rotation disagreement with those neighbours, deg (nan: none).
    """

    name: str
    registered: bool
    kept: bool = False
    reason: str = ""
    reproj_px: float = math.nan
    observations: int = 0
    neighbours: int = 0
    agreeing: int = 0
    median_rotation_deg: float = math.nan


@dataclass
class _Agreement:
    neighbours: int
    agreeing: int
    median_deg: float
    disagreements: list[float] = field(default_factory=list)


def pair_rotations(rec: Any, database: Path, seed: int = 0) -> dict[tuple[int, int], tuple[np.ndarray, int]]:
    """Relative rotations cam2_from_cam1 [3,3] and inlier match counts of the verified image
    pairs of `database` that are among the MAX_NEIGHBOURS strongest of one of their images
    (both registered in `rec`, >= MIN_PAIR_INLIERS inlier matches), re-estimated from those
    matches with the model's (refined) intrinsics. Keys: (id1, id2), image ids of `rec` (the
    database's, which incremental mapping keeps)."""
    pycolmap = load_pycolmap()

    registered = {iid for iid, im in rec.images.items() if im.has_pose}
    ransac = pycolmap.RANSACOptions()
    ransac.max_error = PAIR_RANSAC_MAX_ERROR_PX
    ransac.min_num_trials, ransac.max_num_trials = PAIR_RANSAC_TRIALS
    ransac.random_seed = seed
    out: dict[tuple[int, int], tuple[np.ndarray, int]] = {}
    keypoints: dict[int, np.ndarray] = {}
    db = pycolmap.Database.open(database)
    try:
        pair_ids, geometries = db.read_two_view_geometries()
        candidates: dict[tuple[int, int], np.ndarray] = {}
        for pair_id, geometry in zip(pair_ids, geometries):
            i1, i2 = pycolmap.pair_id_to_image_pair(pair_id)
            if i1 in registered and i2 in registered and len(geometry.inlier_matches) >= MIN_PAIR_INLIERS:
                candidates[(i1, i2)] = geometry.inlier_matches
        for pair in _strongest_pairs({p: len(m) for p, m in candidates.items()}, MAX_NEIGHBOURS):
            (i1, i2), matches = pair, candidates[pair]
            for i in (i1, i2):
                if i not in keypoints:
                    keypoints[i] = np.asarray(db.read_keypoints(i)[:, :2], dtype=np.float64)
            cam1 = rec.cameras[rec.image(i1).camera_id]
            cam2 = rec.cameras[rec.image(i2).camera_id]
            est = pycolmap.estimate_relative_pose(cam1, keypoints[i1][matches[:, 0]], cam2,
                                                  keypoints[i2][matches[:, 1]], ransac)
            if est is not None and est["num_inliers"] >= MIN_PAIR_INLIERS:
                out[pair] = (np.asarray(est["cam2_from_cam1"].rotation.matrix()), int(est["num_inliers"]))
    finally:
        db.close()
    return out


def _strongest_pairs(strength: dict[tuple[int, int], int], k: int, images: set[int] | None = None
                     ) -> dict[tuple[int, int], int]:
    """The pairs among the k strongest of either of their images (only pairs within `images`)."""
    per: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for pair, n in strength.items():
        if images is None or (pair[0] in images and pair[1] in images):
            for i in pair:
                per.setdefault(i, []).append((n, pair))
    keep: dict[tuple[int, int], int] = {}
    for lst in per.values():
        # Ties broken by the pair's ids, so the choice does not depend on dict order.
        for n, pair in sorted(lst, key=lambda x: (-x[0], x[1]))[:k]:
            keep[pair] = n
    return dict(sorted(keep.items()))


def _image_stats(rec) -> dict[int, tuple[float, int]]:
    """(mean reprojection error px, observed 3D points) of every registered image of `rec`."""
    stats = {}
    for iid, image in rec.images.items():
        if not image.has_pose:
            continue
        observed = [p for p in image.points2D if p.has_point3D()]
        if not observed:
            stats[iid] = (math.inf, 0)
            continue
        xy = np.array([p.xy for p in observed], dtype=np.float64)
        xyz = np.array([rec.points3D[p.point3D_id].xyz for p in observed], dtype=np.float64)
        pose = np.asarray(image.cam_from_world().matrix())
        cam = xyz @ pose[:, :3].T + pose[:, 3]
        proj = np.asarray(rec.cameras[image.camera_id].img_from_cam(cam, check_cheirality=False))
        err = np.linalg.norm(proj - xy, axis=1)
        stats[iid] = (float(np.mean(err)) if np.all(np.isfinite(err)) else math.inf, len(observed))
    return stats


def rotation_agreement(rec: Any, rotations: dict[tuple[int, int], tuple[np.ndarray, int]], image_ids: set[int],
                       max_rotation_deg: float = MAX_ROTATION_DISAGREEMENT_DEG) -> dict[int, _Agreement]:
    """Per image in `image_ids`: how its SfM poses' relative rotations agree with the pairs'
    own (`pair_rotations`), over its MAX_NEIGHBOURS strongest neighbours also in `image_ids`."""
    R = {iid: np.asarray(rec.image(iid).cam_from_world().rotation.matrix()) for iid in image_ids}
    strength = {pair: n for pair, (_rel, n) in rotations.items()}
    per: dict[int, list[tuple[int, float]]] = {iid: [] for iid in image_ids}
    for (i1, i2) in _strongest_pairs(strength, MAX_NEIGHBOURS, image_ids):
        angle = rotation_angle_deg((R[i2] @ R[i1].T).T @ rotations[(i1, i2)][0])
        per[i1].append((strength[(i1, i2)], angle))
        per[i2].append((strength[(i1, i2)], angle))
    out = {}
    for iid, lst in per.items():
        angles = [a for _n, a in sorted(lst, key=lambda x: -x[0])[:MAX_NEIGHBOURS]]
        agreeing = sum(a <= max_rotation_deg for a in angles)
        out[iid] = _Agreement(len(angles), agreeing, float(np.median(angles)) if angles else math.nan, angles)
    return out


def _rotation_failures(rec, rotations, kept: set[int], limits: PoseLimits, names: dict[int, str]) -> dict[int, str]:
    """Images whose rotations disagree with their neighbours, found greedily: the worst (lowest
    agreeing fraction) go first and the rest are judged again without them, so one wrong image
    does not drag down its right neighbours with it."""
    kept = set(kept)
    failed: dict[int, str] = {}
    while kept:
        agreement = rotation_agreement(rec, rotations, kept, limits.max_rotation_deg)
        fractions = {iid: (a.agreeing / a.neighbours if a.neighbours else -1.0) for iid, a in agreement.items()}
        worst = min(fractions.values())
        if worst > limits.min_agreeing or worst >= 1.0:
            break
        for iid, f in fractions.items():
            if f == worst:
                a = agreement[iid]
                failed[iid] = ("no matched neighbour to check its rotation against" if a.neighbours == 0 else
                               f"rotation disagrees with {a.neighbours - a.agreeing}/{a.neighbours} matched "
                               f"neighbours by a median {a.median_deg:.0f} deg")
                kept.discard(iid)
    return failed


def verify_poses(rec: Any, database: str | Path, limits: PoseLimits | None = None, seed: int = 0,
                 log: Log | None = print, adjust: bool = True) -> list[PoseCheck]:
    """Check every registered image of the pycolmap Reconstruction `rec` (made from `database`),
    drop the failing ones from `rec` in place and bundle-adjust the rest (adjust=False: only
    drop). Returns one PoseCheck per image of `rec` (registered or not), sorted by name;
    measurements of dropped images are from the round that dropped them, of kept ones from
    the final model. `log` gets one line per dropped image."""
    pycolmap = load_pycolmap()

    say = log or (lambda _msg: None)
    limits = limits or PoseLimits()
    names = {iid: im.name for iid, im in rec.images.items()}
    checks = {iid: PoseCheck(names[iid], bool(im.has_pose)) for iid, im in rec.images.items()}
    for iid, c in checks.items():
        if not c.registered:
            c.reason = "not registered by SfM"
    rotations = pair_rotations(rec, Path(database), seed)
    for _round in range(MAX_ROUNDS):
        kept = {iid for iid, im in rec.images.items() if im.has_pose}
        stats = _image_stats(rec)
        agreement = rotation_agreement(rec, rotations, kept, limits.max_rotation_deg)
        for iid in kept:
            c, a = checks[iid], agreement[iid]
            c.reproj_px, c.observations = stats[iid]
            c.neighbours, c.agreeing, c.median_rotation_deg = a.neighbours, a.agreeing, a.median_deg
        failed: dict[int, str] = {}
        for iid in kept:
            err, obs = stats[iid]
            if obs < limits.min_observations:
                failed[iid] = f"sees only {obs} 3D points (needs {limits.min_observations})"
            elif not err <= limits.max_reproj_px:
                failed[iid] = f"mean reprojection error {err:.2f} px (limit {limits.max_reproj_px:g})"
        # Rotations only once the bad fits are gone: a pose that misfits its own points is
        # wrong whatever its neighbours say, and it would count against them here.
        if not failed:
            failed = _rotation_failures(rec, rotations, kept, limits, names)
        if not failed:
            break
        for iid in sorted(failed, key=lambda i: names[i]):
            checks[iid].reason = failed[iid]
            say(f"sfm: dropped {names[iid]}: {failed[iid]}")
            rec.deregister_frame(rec.image(iid).frame_id)
        if adjust and rec.num_reg_images() >= 2:
            _readjust(pycolmap, rec)
    for iid, c in checks.items():
        c.kept = bool(rec.images[iid].has_pose) and not c.reason
    return sorted(checks.values(), key=lambda c: c.name)


def _readjust(pycolmap, rec) -> None:
    """Bundle adjustment of what is left, then COLMAP's usual filtering of bad observations."""
    options = pycolmap.BundleAdjustmentOptions()
    options.print_summary = False
    options.ceres.solver_options.num_threads = 1  # on more, Ceres's sums differ run to run (sfm's docstring)
    with kept_log_level(pycolmap):
        pycolmap.bundle_adjustment(rec, options)
    pycolmap.ObservationManager(rec).filter_all_points3D(FILTER_MAX_REPROJ_PX, FILTER_MIN_TRI_ANGLE_DEG)


TABLE_COLUMNS = ("name", "registered", "status", "reason", "reproj_px", "observations", "neighbours", "agreeing",
                 "median_rotation_deg")


def write_pose_table(path: str | Path, checks: list[PoseCheck]) -> None:
    """Write the verdicts as a tab-separated table (TABLE_COLUMNS; status kept/dropped/unregistered)."""
    def fmt(x: float) -> str:
        return "" if not math.isfinite(x) else f"{x:.3f}"

    rows = ["\t".join(TABLE_COLUMNS)]
    for c in checks:
        status = "kept" if c.kept else ("dropped" if c.registered else "unregistered")
        rows.append("\t".join([c.name, "yes" if c.registered else "no", status, c.reason, fmt(c.reproj_px),
                               str(c.observations), str(c.neighbours), str(c.agreeing), fmt(c.median_rotation_deg)]))
    atomic_write(Path(path), [("\n".join(rows) + "\n").encode()])


def read_pose_table(path: str | Path) -> list[dict[str, str]]:
    """The rows of a table `write_pose_table` wrote, as dicts keyed by TABLE_COLUMNS."""
    lines = Path(path).read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line]


def summarize(checks: list[PoseCheck]) -> str:
    """One line: kept of registered of total, the reprojection error range and what failed why."""
    kept = [c for c in checks if c.kept]
    registered = sum(c.registered for c in checks)
    parts = [f"kept {len(kept)} of {len(checks)} images ({registered} registered)"]
    if kept:
        errs = np.array([c.reproj_px for c in kept])
        parts.append(f"reprojection {np.median(errs):.2f} px median, {errs.max():.2f} px worst")
    reasons = failure_counts(checks)
    if reasons:
        parts.append("; ".join(f"{n} {why}" for why, n in reasons.items()))
    return ", ".join(parts)


def failure_counts(checks: list[PoseCheck]) -> dict[str, int]:
    """How many images failed for each kind of reason (not registered, too few points,
    reprojection, rotation, no neighbour), in that order, leaving out kinds with none."""
    kinds = {"not registered": "not registered", "sees only": "saw too few 3D points",
             "mean reprojection": "had a high reprojection error",
             "rotation disagrees": "disagreed in rotation with their matched neighbours",
             "no matched neighbour": "had no matched neighbour to check against"}
    counts: dict[str, int] = {}
    for c in checks:
        if c.kept:
            continue
        for key, label in kinds.items():
            if c.reason.startswith(key):
                counts[label] = counts.get(label, 0) + 1
                break
    return {label: counts[label] for label in kinds.values() if label in counts}
