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
  pair's own inlier matches give on their own. The pair is verified again with the model's
  refined cameras, as COLMAP verifies pairs (`pycolmap.estimate_calibrated_two_view_geometry`),
  and its rotation is that of the geometry it verifies with: the essential matrix's (CALIBRATED,
  or UNCALIBRATED: a fundamental matrix explains more of its matches) or the homography's (a
  flat target, a static background, a camera that only turns). Where the capture's views turn
  (a turntable, an orbit), a pair that says the camera did not turn though the model turns it is
  left out (`STILL_AXIS_DEG`): on the flowerpot's first 13 photos, such pairs, matched on the
  static background or the target's symmetric pattern, are 53 of the 57 pairs that disagree
  with the right model, and counting them (with every pair re-estimated as an essential matrix,
  as this check once did) dropped 4 of 13 right poses. A wrong pose disagrees with most of its
  neighbours; a right one with few.

The rotations of the CALIBRATED pairs also judge the model whole (`model_agreement`): a right
model disagrees with few of them, one turned wrong as a whole (global mapping of a turntable
capture that follows the static background) with most, which no per-image check can see, since
every pose of such a model agrees with the others. Where the views turn, "no turn" confirms
nothing either (`confirmed_groups`): every other flowerpot photo (8) mapped three views 120-180
deg off the truth, next to the view the static background says, and two more turned 180 deg as
a pair; each agreed with most of its pairs, which said the camera did not turn. Only poses joined
to the largest group by agreeing pairs that turn (`confirms_turn`) stay. Whether the views
turn is judged from the pairs as well as the model (`views_turn`): every third flowerpot photo's
model left all the ring's views where the background says, so it turns few of its pairs, though
38% of them turn 20 deg or more. `read_pair_graph` reads the verified pairs whole: which images
they join (`PairGraph.components`) and whether the camera only turned (`only_rotates`).

`verify_poses` measures them, drops what fails (de-registers the image; its points lose that
observation), bundle-adjusts the rest and measures again, until nothing fails. Rotations are
judged once, on the poses as mapped, against every registered image but the ones whose
rotations fail: an image dropped for its reprojection error or its support keeps counting as a
neighbour, so a right pose does not fail because its agreeing neighbours were dropped for other
reasons (with `--max-reproj 0.5` on the flowerpot's first 13 photos, 151110 once did). Then
`reregister` poses each dropped image again, and each image the mapper never registered
(`add_unseen_images`), from its matches to the 3D points of the kept poses
alone (the check's largest confirmed group, where the views turn), and keeps it only if it passes
the same checks against them: a pose the mapper took from matches on a static background or a
repeated pattern can come out right from the points of trustworthy views, and one that comes out
wrong again is refused again. On the flowerpot's 16 photos with 5 of them stored turned, 151056,
mapped 179.5 deg wrong and dropped, comes back within 1.3 deg; on subsets of them
(benchmarks/sfm_subsets.py) most dropped images share too few matches with those points to be
posed (COLMAP's 30 inliers), 151056 is posed 180 deg wrong again (the target's symmetric pattern)
and refused, and 151128 in the fourth random subset comes back within 1.1 deg. The images no
subset's mapper registered reach too few of the kept poses' points to be posed (the second random subset: 7-27
of 30, against the 41 points of the two poses it kept). A re-registered pose is not kept on the
strength of its 2D-3D support when its pairs say only "no turn": 151056, posed 180 deg wrong
again on every other and every third photo, rests on 43 of 56 and 38 of 42 matches to the
core's points (77%, 90%) at 0.57 px, more, in a larger share and closer than the right poses of
151100 in the first 8 (31 of 50, 62%, 1.12 px), which the rotation check refuses for its "no
turn" pairs, and 151128 in the fourth random subset (36 of 54, 67%, 1.09 px).
`write_pose_table` writes the per-image verdicts as a tab-separated table (re-registered images
say so).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from splatfilm import report
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

# Fraction of its counted neighbours (those STILL_AXIS_DEG leaves in) an image must agree with
# more than. Measured on the flowerpot (tests/fixtures/flowerpot, a round pot on a printed target
# on a turntable): right poses agree with 55-100% of theirs where at least 2 disagree, in the
# first 13 photos, all 16 and the 16 with some turned or cut as another lens; the wrong ones
# (151056 posed 180 deg wrong, 151100 150 deg) with 14-33% (2 of 7, 2 of 6, 1 of 7); the
# planted wrong poses on the bundled set with none.
MIN_AGREEING_FRACTION = 0.4

# Fewest disagreeing neighbours that fail an image. One pair can be matched on a repeated
# pattern: on the flowerpot's first 13 photos, 151045 agrees with 1 of its 2 counted pairs
# though its pose is within 2 deg of the truth.
MIN_DISAGREEING = 2

# A pair whose own rotation turns the optical axis by less than this (deg) says the camera did
# not turn. Where the model turns most pairs further apart (a turntable, an orbit), such a pair
# that disagrees with it is left out of the vote: its matches lie on something that did not
# move with the subject (the static background past a turntable) or on a pattern that repeats
# under a turn (the printed target), and say "no turn" whatever the poses. On the flowerpot's
# first 13 photos (right model), 53 of the 57 pairs (of 77) that disagree by over
# MAX_ROTATION_DISAGREEMENT_DEG turn the axis by 1-9 deg, against 1 of the 20 that agree (the
# adjacent photos, 28 deg of turntable apart, turn it 15-20 deg); counted, they made right poses
# agree with 10-20% of their pairs, as few as the wrong ones. Where the model itself turns most
# pairs by less (a walk down a street: 68 of the 71 agreeing pairs of tests/fixtures/lund turn
# it under 10 deg), they count: near views are all such a capture has to check a pose by. An
# image with no other pair is judged by them.
STILL_AXIS_DEG = 10.0

# Where the views turn, the poses that stay are those joined to the largest group by pairs that
# agree with the model and turn the camera by at least this (deg, the whole relative rotation,
# a turn about the optical axis included: a camera looking down on a turntable only rolls), or
# by STILL_AXIS_DEG as a CALIBRATED pair nearer the model's turn than no turn (`confirms_turn`:
# all 80 flowerpot photos, taken 1-2 s apart, have a view whose neighbours turn 13-18 deg). A
# pair matched on a static background or on a pattern that repeats under a turn says "no turn"
# (1-15 deg) and agrees with a model that wrongly leaves the camera where it was: on every other
# flowerpot photo (8), 3 photos posed 120-180 deg wrong, next to the view they were placed on,
# agreed with 3 of 4, 2 of 2 and 2 of 4 such pairs, and two posed 180 deg wrong agreed with each
# other (a pair that turns 40 deg) and with the rest only by a 38-match pair turning 13.5 deg.
# Right neighbours on the turntable turn 22-65 deg (28 deg of turntable apart or more).
CONFIRMING_TURN_DEG = 20.0

# The share of a capture's pairs that must turn the camera by CONFIRMING_TURN_DEG or more for
# its views to count as turning whatever its model says (`views_turn`). A model that leaves a
# turntable's views where the static background says barely turns, though its pairs do: every
# third flowerpot photo's model, 38% of 13 pairs. Turntable captures measured 38-75%; a walk
# down a street (tests/fixtures/lund) 1% (1 of 72).
TURNING_PAIRS_SHARE = 0.25

# Fewest inlier matches a pair needs to count as a neighbour: COLMAP verifies pairs from 15,
# but an essential matrix from fewer than 30 matches says little about the rotation.
MIN_PAIR_INLIERS = 30

# Neighbours an image is checked against: its strongest verified pairs (most inlier matches),
# whatever geometry they verify with again (`PairRotation.kind`). They are the close views whose
# relative rotation is well determined. Pairs are verified again among each image's
# MAX_CANDIDATES strongest, so the cost stays linear in the number of images (each pair's
# verification takes a few ms) while the pairs that fail it, or fall under MIN_PAIR_INLIERS,
# still leave an image its strongest ones that pass.
MAX_NEIGHBOURS = 10
MAX_CANDIDATES = 30

# RANSAC for verifying a pair again: COLMAP's two-view inlier threshold (px); few trials
# suffice since the matches are already the pair's verified inliers.
PAIR_RANSAC_MAX_ERROR_PX = 4.0
PAIR_RANSAC_TRIALS = (20, 200)

# A model is refused whole when more than this share of its CALIBRATED pairs (`pair_rotations`)
# disagree with it by over MAX_ROTATION_DISAGREEMENT_DEG, given at least MIN_MODEL_PAIRS of them.
# Measured on the flowerpot fixture's first 13 photos: 2 of 17 (12%) for the right incremental
# model; 15 of 19 (79%) for the global model of the same photos, whose cameras barely turn (it
# follows the static background past the turntable) and sit ~90 deg off the truth.
MAX_MODEL_DISAGREEING = 0.5
MIN_MODEL_PAIRS = 5

# A capture "only rotates" when more than this share of its verified pairs are PANORAMIC; a
# PLANAR_OR_PANORAMIC pair counts so when its homography leaves the camera within this fraction
# of its distance to the plane (a pure turn, told apart from a flat scene seen from places).
NO_PARALLAX_SHARE = 0.5
NO_PARALLAX_TRANSLATION = 0.02

# Drop-and-readjust rounds before giving up on a model that keeps producing new failures.
MAX_ROUNDS = 5

# A dropped image is posed again from its matches to the 3D points of the poses kept (`reregister`)
# as COLMAP's mapper registers one: RANSAC over 2D-3D correspondences within REREGISTER_MAX_ERROR_PX
# (abs_pose_max_error), kept with at least REREGISTER_MIN_INLIERS inliers (abs_pose_min_num_inliers)
# that are REREGISTER_MIN_INLIER_RATIO of its correspondences (abs_pose_min_inlier_ratio).
REREGISTER_MAX_ERROR_PX = 12.0
REREGISTER_MIN_INLIERS = 30
REREGISTER_MIN_INLIER_RATIO = 0.25

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
    reregistered: why it was dropped (or NOT_REGISTERED: SfM left it out) before it was posed
                  again against the kept poses and passed the checks (`reregister`; "" when it
                  was not).
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
    reregistered: str = ""


class PairRotation(NamedTuple):
    """A verified pair's own relative rotation (`pair_rotations`).

    rotation:   cam2_from_cam1 [3,3].
    inliers:    inlier matches it rests on.
    kind:       how the pair verified: CALIBRATED (the rotation its essential matrix's), HOMOGRAPHY
                (PLANAR or PANORAMIC: its homography's) or UNCALIBRATED (an essential matrix
                explains fewer of its matches than a fundamental one: its rotation is the least sure).
    """

    rotation: np.ndarray
    inliers: int
    kind: str = "CALIBRATED"


Rotations = dict[tuple[int, int], PairRotation]


@dataclass
class _Agreement:
    neighbours: int
    agreeing: int
    median_deg: float
    disagreements: list[float] = field(default_factory=list)


def pair_rotations(rec: Any, database: Path, seed: int = 0, unposed: set[int] | None = None) -> Rotations:
    """The own relative rotations of the verified image pairs of `database` (both images
    registered in `rec`, or, where `unposed` (image ids of `rec`) is given, registered or in it,
    and only the pairs with one of them; >= MIN_PAIR_INLIERS
    inlier matches, among the MAX_CANDIDATES strongest of one of their images), from their inlier matches verified again with the model's (refined)
    cameras, as COLMAP verifies pairs: the essential matrix's of a pair that comes out
    CALIBRATED or UNCALIBRATED, the homography's (COLMAP's decomposition, the solution its
    cheirality test picks) of one that comes out PLANAR or PANORAMIC (`PairRotation.kind`). Keys: (id1, id2), image ids of `rec` (the database's, which the
    mappers keep)."""
    pycolmap = load_pycolmap()

    registered = {iid for iid, im in rec.images.items() if im.has_pose} | (unposed or set())
    options = pycolmap.TwoViewGeometryOptions()
    options.compute_relative_pose = True
    options.ransac.max_error = PAIR_RANSAC_MAX_ERROR_PX
    options.ransac.min_num_trials, options.ransac.max_num_trials = PAIR_RANSAC_TRIALS
    options.ransac.random_seed = seed
    kinds = pycolmap.TwoViewGeometryConfiguration
    homography = {kinds.PLANAR, kinds.PANORAMIC, kinds.PLANAR_OR_PANORAMIC}
    out: Rotations = {}
    keypoints: dict[int, np.ndarray] = {}
    db = pycolmap.Database.open(database)
    try:
        pair_ids, geometries = db.read_two_view_geometries()
        candidates: dict[tuple[int, int], np.ndarray] = {}
        for pair_id, geometry in zip(pair_ids, geometries):
            i1, i2 = pycolmap.pair_id_to_image_pair(pair_id)
            if i1 in registered and i2 in registered and len(geometry.inlier_matches) >= MIN_PAIR_INLIERS:
                candidates[(i1, i2)] = geometry.inlier_matches
        for pair in _strongest_pairs({p: len(m) for p, m in candidates.items()}, MAX_CANDIDATES):
            if unposed is not None and not set(pair) & unposed:
                continue  # the registered images' pairs: made already, not made again
            (i1, i2), matches = pair, candidates[pair]
            for i in (i1, i2):
                if i not in keypoints:
                    keypoints[i] = np.asarray(db.read_keypoints(i)[:, :2], dtype=np.float64)
            cam1 = rec.cameras[rec.image(i1).camera_id]
            cam2 = rec.cameras[rec.image(i2).camera_id]
            geometry = pycolmap.estimate_calibrated_two_view_geometry(cam1, keypoints[i1], cam2, keypoints[i2],
                                                                      matches, options)
            kind = ("HOMOGRAPHY" if geometry.config in homography else
                    kinds(geometry.config).name if geometry.config in (kinds.CALIBRATED, kinds.UNCALIBRATED) else None)
            if kind is not None and len(geometry.inlier_matches) >= MIN_PAIR_INLIERS:
                out[pair] = PairRotation(np.asarray(geometry.cam2_from_cam1.rotation.matrix()),
                                         len(geometry.inlier_matches), kind)
    finally:
        db.close()
    return out


def _strongest_pairs(strength: dict[tuple[int, int], int], k: int) -> dict[tuple[int, int], int]:
    """The pairs among the k strongest of either of their images."""
    per: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for pair, n in strength.items():
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


def model_rotations(rec: Any, rotations: Rotations, image_ids: set[int]) -> dict[tuple[int, int], np.ndarray]:
    """The SfM model's relative rotation cam2_from_cam1 [3,3] of each pair of `rotations` whose
    two images are both in `image_ids` (registered images of `rec`), in `rotations`' order."""
    R = {iid: np.asarray(rec.image(iid).cam_from_world().rotation.matrix()) for iid in image_ids}
    return {(i1, i2): R[i2] @ R[i1].T for i1, i2 in rotations if i1 in R and i2 in R}


def rotation_agreement(rec: Any, rotations: Rotations, image_ids: set[int],
                       max_rotation_deg: float = MAX_ROTATION_DISAGREEMENT_DEG,
                       turning: bool | None = None) -> dict[int, _Agreement]:
    """Per image in `image_ids`: how its SfM poses' relative rotations agree with the pairs'
    own (`pair_rotations`: CALIBRATED, HOMOGRAPHY and UNCALIBRATED alike), over its
    MAX_NEIGHBOURS strongest neighbours also in `image_ids`. Where the model turns most of its
    pairs' optical axes apart by more than STILL_AXIS_DEG (a turntable, an orbit), a pair whose
    own rotation leaves the optical axis within STILL_AXIS_DEG and that disagrees is left out
    (see STILL_AXIS_DEG), unless an image has no other pair. turning: whether the views turn
    (`views_turn`), when judged already over more images than `image_ids`."""
    model = model_rotations(rec, rotations, image_ids)
    pairs = {pair: rotations[pair] for pair in model}
    turning = views_turn(model, pairs) if turning is None else turning
    counted: dict[int, list[tuple[int, float]]] = {iid: [] for iid in image_ids}
    still: dict[int, list[tuple[int, float]]] = {iid: [] for iid in image_ids}
    for (i1, i2), r in pairs.items():
        angle = rotation_angle_deg(model[(i1, i2)].T @ r.rotation)
        to = still if turning and angle > max_rotation_deg and axis_turn_deg(r.rotation) < STILL_AXIS_DEG else counted
        to[i1].append((r.inliers, angle))
        to[i2].append((r.inliers, angle))
    out = {}
    for iid in image_ids:
        lst = counted[iid] or still[iid]
        found = [a for _n, a in sorted(lst, key=lambda x: -x[0])[:MAX_NEIGHBOURS]]
        agreeing = sum(a <= max_rotation_deg for a in found)
        out[iid] = _Agreement(len(found), agreeing, float(np.median(found)) if found else math.nan, found)
    return out


def confirms_turn(pair: PairRotation, disagreement_deg: float,
                  max_rotation_deg: float = MAX_ROTATION_DISAGREEMENT_DEG) -> bool:
    """Whether a pair confirms a pose where the views turn: it agrees with the model
    (`disagreement_deg`, its rotation's angle from the model's, within `max_rotation_deg`) and
    says the camera turned: by CONFIRMING_TURN_DEG or more, or (an essential matrix's rotation,
    CALIBRATED) by STILL_AXIS_DEG or more and nearer the model's turn than no turn (a dense
    capture's neighbours, 13-18 deg apart, agree within 1 deg)."""
    if disagreement_deg > max_rotation_deg:
        return False
    turn = rotation_angle_deg(pair.rotation)
    return turn >= CONFIRMING_TURN_DEG or (pair.kind == "CALIBRATED" and turn >= STILL_AXIS_DEG
                                           and disagreement_deg <= turn / 2)


def views_turn(model: dict[tuple[int, int], np.ndarray], rotations: Rotations) -> bool:
    """Whether a capture's views turn round what they see (a turntable, an orbit), from the
    model's relative rotations of its pairs, cam2_from_cam1 [3,3] by pair (`model`), and the
    pairs' own (`rotations`): the model turns most optical axes by over STILL_AXIS_DEG, or at
    least TURNING_PAIRS_SHARE of the pairs turn the camera by CONFIRMING_TURN_DEG or more
    whatever the model says (one that leaves a turntable's views where the static background
    says turns few)."""
    if not model:
        return False
    if float(np.median([axis_turn_deg(m) for m in model.values()])) > STILL_AXIS_DEG:
        return True
    turned = sum(rotation_angle_deg(rotations[pair].rotation) >= CONFIRMING_TURN_DEG for pair in model)
    return turned >= TURNING_PAIRS_SHARE * len(model)


def axis_turn_deg(rotation: np.ndarray) -> float:
    """The angle (deg) a relative rotation cam2_from_cam1 [3,3] turns the optical axis by (its
    turn about the axis left out: a photo stored turned a quarter is no turn)."""
    return math.degrees(math.acos(max(-1.0, min(1.0, float(rotation[2, 2])))))


def _rotation_failures(rec, rotations, registered: set[int], limits: PoseLimits, turning: bool | None = None
                       ) -> tuple[dict[int, str], dict[int, _Agreement]]:
    """(the images whose rotations disagree with their neighbours and why, every image's
    agreement when it was judged), found greedily among `registered`: the worst (lowest
    agreeing fraction) go first and the rest are judged again without them, so one wrong image
    does not drag down its right neighbours with it. turning: whether the views turn
    (`views_turn`), when judged already over the poses as mapped."""
    kept = set(registered)
    failed: dict[int, str] = {}
    judged: dict[int, _Agreement] = {}
    # Whether the views turn is the capture's, judged once over every registered image: dropping
    # the images whose pairs turn would otherwise make the rest look like a walk.
    if turning is None:
        turning = views_turn(model_rotations(rec, rotations, registered), rotations)
    while kept:
        agreement = rotation_agreement(rec, rotations, kept, limits.max_rotation_deg, turning)
        judged.update(agreement)
        # One disagreeing pair alone does not fail an image: it may be matched on a repeated pattern.
        fractions = {iid: (a.agreeing / a.neighbours if a.neighbours else -1.0) for iid, a in agreement.items()
                     if a.neighbours == 0 or a.neighbours - a.agreeing >= MIN_DISAGREEING}
        if not fractions:
            break
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
    # Only where the views turn: elsewhere a pose with one disagreeing pair alone stays (above).
    groups = confirmed_groups(rec, rotations, kept, limits.max_rotation_deg, turning) if turning else []
    for group in groups[1:]:
        for iid in group:
            failed[iid] = (f"no agreeing neighbour that turns joins it to the largest group of poses "
                           f"({len(groups[0])} images): it rests on pairs that say the camera did not turn")
    return failed, judged


def confirmed_groups(rec: Any, rotations: Rotations, image_ids: set[int],
                     max_rotation_deg: float = MAX_ROTATION_DISAGREEMENT_DEG,
                     turning: bool | None = None) -> list[set[int]]:
    """The images of `image_ids` joined by pairs (`pair_rotations`) whose own rotation agrees
    with the model's within `max_rotation_deg`, largest group first (ties: by first name).
    Where the views turn (`views_turn`: a turntable, an orbit), only pairs that say the camera
    turned join (`confirms_turn`): "no turn" is what a static background says whatever the
    poses, so it confirms none. turning: as `rotation_agreement`'s."""
    model = model_rotations(rec, rotations, image_ids)
    turning = views_turn(model, rotations) if turning is None else turning
    joining = {}
    for pair, m in model.items():
        disagreement = rotation_angle_deg(m.T @ rotations[pair].rotation)
        if (confirms_turn(rotations[pair], disagreement, max_rotation_deg) if turning
                else disagreement <= max_rotation_deg):
            joining[pair] = ""
    return PairGraph({iid: rec.image(iid).name for iid in image_ids}, joining).components()


@dataclass
class ModelAgreement:
    """How a whole model agrees with the rotations of its CALIBRATED pairs (`model_agreement`).

    pairs:        CALIBRATED pairs between registered images (`pair_rotations`).
    disagreeing:  those whose rotation is over the limit (deg) off the model's.
    median_deg:   median disagreement over all of them, deg (nan: no pair).
    """

    pairs: int
    disagreeing: int
    median_deg: float

    @property
    def share(self) -> float:
        """The share of pairs that disagree (0 with no pair)."""
        return self.disagreeing / self.pairs if self.pairs else 0.0

    def refused(self) -> bool:
        """Whether the model is to be refused: most of enough pairs disagree with it."""
        return self.pairs >= MIN_MODEL_PAIRS and self.share > MAX_MODEL_DISAGREEING

    def text(self) -> str:
        """'k of n calibrated image pairs disagree ... (median x deg)'."""
        return (f"{self.disagreeing} of {self.pairs} calibrated image pairs disagree with its rotations by over "
                f"{MAX_ROTATION_DISAGREEMENT_DEG:g} deg (median {self.median_deg:.0f} deg)")


def model_agreement(rec: Any, rotations: Rotations,
                    max_rotation_deg: float = MAX_ROTATION_DISAGREEMENT_DEG) -> ModelAgreement:
    """How the registered poses of the pycolmap Reconstruction `rec` agree with every CALIBRATED
    pair of `rotations` (`pair_rotations` of that model) between two of its registered images."""
    R = {iid: np.asarray(im.cam_from_world().rotation.matrix()) for iid, im in rec.images.items() if im.has_pose}
    angles = [rotation_angle_deg((R[i2] @ R[i1].T).T @ r.rotation) for (i1, i2), r in rotations.items()
              if i1 in R and i2 in R and r.kind == "CALIBRATED"]
    return ModelAgreement(len(angles), sum(a > max_rotation_deg for a in angles),
                          float(np.median(angles)) if angles else math.nan)


def verify_poses(rec: Any, database: str | Path, limits: PoseLimits | None = None, seed: int = 0,
                 log: Log | None = report.status, adjust: bool = True,
                 rotations: Rotations | None = None, graph: PairGraph | None = None,
                 reregister_dropped: bool = True) -> list[PoseCheck]:
    """Check every registered image of the pycolmap Reconstruction `rec` (made from `database`),
    drop the failing ones from `rec` in place and bundle-adjust the rest (adjust=False: only
    drop). Returns one PoseCheck per image of `rec` (registered or not), sorted by name;
    measurements of dropped images are from the round that dropped them, of kept ones from
    the final model (their rotation agreement: from the poses as mapped). `log` gets one line
    per dropped image. rotations: `pair_rotations(rec, database, seed)`, and graph:
    `read_pair_graph(database)`, when already made. reregister_dropped (with adjust): the dropped
    images, and those of `database` the mapper never registered (added to `rec` unposed,
    `add_unseen_images`), are posed again against the kept ones (`reregister`)."""
    pycolmap = load_pycolmap()

    say = log or (lambda _msg: None)
    limits = limits or PoseLimits()
    if reregister_dropped and adjust:
        add_unseen_images(rec, database)
    names = {iid: im.name for iid, im in rec.images.items()}
    checks = {iid: PoseCheck(names[iid], bool(im.has_pose)) for iid, im in rec.images.items()}
    registered = {iid for iid, im in rec.images.items() if im.has_pose}
    if graph is None and len(registered) < len(checks):
        graph = read_pair_graph(database)
    for iid, c in checks.items():
        if not c.registered:
            c.reason = unregistered_reason(iid, registered, graph)
    if rotations is None:
        rotations = pair_rotations(rec, Path(database), seed)
    # Judged once, on the poses as mapped, against every registered image: see the module docstring.
    turning = views_turn(model_rotations(rec, rotations, registered), rotations)
    rotation_failed, agreement = _rotation_failures(rec, rotations, registered, limits, turning)
    for iid, a in agreement.items():
        c = checks[iid]
        c.neighbours, c.agreeing, c.median_rotation_deg = a.neighbours, a.agreeing, a.median_deg
    for _round in range(MAX_ROUNDS):
        kept = {iid for iid, im in rec.images.items() if im.has_pose}
        stats = _image_stats(rec)
        for iid in kept:
            checks[iid].reproj_px, checks[iid].observations = stats[iid]
        failed: dict[int, str] = {}
        for iid in kept:
            err, obs = stats[iid]
            if obs < limits.min_observations:
                failed[iid] = f"sees only {obs} 3D points (needs {limits.min_observations})"
            elif not err <= limits.max_reproj_px:
                failed[iid] = f"mean reprojection error {err:.2f} px (limit {limits.max_reproj_px:g})"
            elif iid in rotation_failed:
                failed[iid] = rotation_failed[iid]
        if not failed:
            break
        for iid in sorted(failed, key=lambda i: names[i]):
            checks[iid].reason = failed[iid]
            say(f"sfm: dropped {names[iid]}: {failed[iid]}")
            rec.deregister_frame(rec.image(iid).frame_id)
        if adjust and rec.num_reg_images() >= 2:
            _readjust(pycolmap, rec)
    if reregister_dropped and adjust:
        reregister(rec, database, checks, rotations, limits, turning, seed, say)
        # Its bundle adjustments move the kept poses and points too: measure them on the final model.
        for iid, (err, obs) in _image_stats(rec).items():
            checks[iid].reproj_px, checks[iid].observations = err, obs
    for iid, c in checks.items():
        c.kept = bool(rec.images[iid].has_pose) and not c.reason
    return sorted(checks.values(), key=lambda c: c.name)


def reregister(rec: Any, database: str | Path, checks: dict[int, PoseCheck], rotations: Rotations,
               limits: PoseLimits, turning: bool, seed: int = 0, log: Log | None = report.status) -> list[int]:
    """Pose the registered images `verify_poses` dropped, and those SfM did not register
    (NOT_REGISTERED; in `rec` unposed: `add_unseen_images`), (`checks` by image id, their
    verdicts, updated in place) again against the poses it kept in the pycolmap Reconstruction
    `rec`, and keep those that then pass its checks; returns their ids (by name). The pairs of a
    never-registered image are verified as `pair_rotations` verifies the others'. The core is
    what the check kept: where the views turn, the largest group its agreeing pairs that turn confirm
    (`confirmed_groups`), so an image posed from it lands in that group's frame. Each dropped
    image is posed from its verified matches with the core's images to their 3D points
    (`pycolmap.estimate_and_refine_absolute_pose`, as COLMAP's mapper registers an image:
    REREGISTER_*), then judged by the rotation check against the core alone (`rotations`:
    `pair_rotations`; `turning`: `views_turn` as judged on the poses as mapped); it stays when
    it passes and no core image fails with it, and its 2D-3D inliers become observations. Those
    kept join the core and the rest are tried again against it, until none is added; the model
    is bundle-adjusted after each round, and a pose whose reprojection error or support then
    fails is dropped again. A pose the mapper got wrong from matches on a static background or a
    repeated pattern is posed again from the points of the kept poses alone, which those
    matches do not explain; with fewer than 2 poses kept there are no points to pose from."""
    pycolmap = load_pycolmap()

    say = log or (lambda _msg: None)
    core = {iid for iid, im in rec.images.items() if im.has_pose}
    # An image with no verified pair with the mapped ones (NO_MATCH) has nothing to be posed from.
    todo = sorted((iid for iid, c in checks.items()
                   if iid not in core and (c.registered or c.reason == NOT_REGISTERED)), key=lambda i: checks[i].name)
    if not todo:
        return []
    if len(core) < 2:
        for iid in todo:
            checks[iid].reason += (f"; not re-registered: {len(core)} pose{'' if len(core) == 1 else 's'} kept, too "
                                    "few to pose it against")
        return []
    unseen = {iid for iid in todo if not checks[iid].registered}
    if unseen:
        # `rotations` has the pairs of the images registered when it was made: the check of a
        # never-registered image needs its pairs with the core's as well.
        rotations = {**rotations, **pair_rotations(rec, Path(database), seed, unposed=unseen)}
    matches = _verified_matches(pycolmap, database, set(todo))
    added: list[int] = []
    why_not: dict[int, str] = {}
    while todo:
        accepted = []
        # A core pose that fails against the core alone (bundle adjustment moved it) is no fault
        # of an image posed again.
        failing = set(_rotation_failures(rec, rotations, core, limits, turning)[0])
        for iid in todo:
            posed = _pose_from_points(pycolmap, rec, iid, core, matches, seed)
            if isinstance(posed, str):
                why_not[iid] = posed
                continue
            pose, inliers = posed
            frame = rec.image(iid).frame_id
            rec.frame(frame).rig_from_world = pose
            rec.register_frame(frame)
            failed, agreement = _rotation_failures(rec, rotations, core | {iid}, limits, turning)
            spoilt = sorted(checks[i].name for i in (failed.keys() & core) - failing)
            if iid in failed or spoilt:
                why_not[iid] = (f"posed again, {failed[iid]}" if iid in failed else
                                f"posed again, it makes the rotation check fail {spoilt[0]}")
                rec.deregister_frame(frame)
                continue
            for point2D, point3D in inliers:
                rec.add_observation(point3D, pycolmap.TrackElement(iid, point2D))
            a = agreement[iid]
            c = checks[iid]
            c.neighbours, c.agreeing, c.median_rotation_deg = a.neighbours, a.agreeing, a.median_deg
            accepted.append(iid)
        if not accepted:
            break
        _readjust(pycolmap, rec)
        stats = _image_stats(rec)
        against = len(core)
        for iid in accepted:
            c = checks[iid]
            c.reproj_px, c.observations = stats[iid]
            if c.observations < limits.min_observations or not c.reproj_px <= limits.max_reproj_px:
                why_not[iid] = (f"posed again, it sees only {c.observations} 3D points" if c.observations <
                                limits.min_observations else f"posed again, its mean reprojection error is "
                                f"{c.reproj_px:.2f} px")
                rec.deregister_frame(rec.image(iid).frame_id)
                continue
            c.reregistered, c.reason = c.reason, ""
            why_not.pop(iid, None)
            core.add(iid)
            added.append(iid)
            say(f"sfm: re-registered {c.name} against {against} kept poses ({c.agreeing}/{c.neighbours} "
                f"matched neighbours agree)")
        if not core & set(accepted):
            break
        todo = [iid for iid in todo if iid not in core]
    for iid, why in why_not.items():
        if iid not in core:
            checks[iid].reason += f"; not re-registered: {why}"
    return sorted(added, key=lambda i: checks[i].name)


def add_unseen_images(rec: Any, database: str | Path) -> list[int]:
    """Add to the pycolmap Reconstruction `rec`, unposed, the images of `database` it does not
    have (a mapper's model on disk holds only the images it registered), with their keypoints as
    points2D, so that `reregister` can pose them; returns their ids. An image whose camera or rig
    `rec` lacks (no image of its size and lens registered) is left out: it has no refined camera
    to be posed with."""
    pycolmap = load_pycolmap()

    added = []
    db = pycolmap.Database.open(database)
    try:
        for image in sorted(db.read_all_images(), key=lambda im: im.image_id):
            if rec.exists_image(image.image_id) or not rec.exists_camera(image.camera_id):
                continue
            frame = db.read_frame(image.frame_id)
            if not rec.exists_rig(frame.rig_id) or rec.exists_frame(frame.frame_id):
                continue
            keypoints = np.asarray(db.read_keypoints(image.image_id)[:, :2], dtype=np.float64)
            image.points2D = pycolmap.Point2DList([pycolmap.Point2D(xy) for xy in keypoints])
            rec.add_frame(frame)
            rec.add_image(image)
            added.append(image.image_id)
    finally:
        db.close()
    return added


def _verified_matches(pycolmap, database: str | Path, images: set[int]) -> dict[tuple[int, int], np.ndarray]:
    """The inlier matches [n, 2] (point2D indices of id1, id2) of every verified pair of `database`
    with one of `images` in it, by (id1, id2)."""
    db = pycolmap.Database.open(database)
    try:
        pair_ids, geometries = db.read_two_view_geometries()
        out = {}
        for pair_id, geometry in zip(pair_ids, geometries):
            pair = pycolmap.pair_id_to_image_pair(pair_id)
            if (pair[0] in images or pair[1] in images) and len(geometry.inlier_matches):
                out[pair] = np.asarray(geometry.inlier_matches)
    finally:
        db.close()
    return out


def _pose_from_points(pycolmap, rec, image: int, core: set[int], matches: dict[tuple[int, int], np.ndarray],
                      seed: int) -> tuple[Any, list[tuple[int, int]]] | str:
    """(cam_from_world of `image` (pycolmap Rigid3d) posed from its matches with the `core`
    images to the 3D points they observe, its inlier (point2D index, point3D id) pairs), or why
    it could not be posed. Each of its points and each 3D point is used once, strongest pair
    first."""
    found: dict[int, int] = {}
    taken: set[int] = set()
    pairs = sorted(((pair, m) for pair, m in matches.items() if image in pair and (set(pair) - {image}) & core),
                   key=lambda x: (-len(x[1]), x[0]))
    for (i1, i2), m in pairs:
        other, ours, theirs = (i2, m[:, 0], m[:, 1]) if i1 == image else (i1, m[:, 1], m[:, 0])
        points = rec.image(other).points2D
        for mine, their in zip(ours.tolist(), theirs.tolist()):
            p = points[their]
            if p.has_point3D() and mine not in found and p.point3D_id not in taken:
                found[mine] = p.point3D_id
                taken.add(p.point3D_id)
    if len(found) < REREGISTER_MIN_INLIERS:
        return f"only {len(found)} of its matches reach 3D points of the kept poses (needs {REREGISTER_MIN_INLIERS})"
    ids = list(found)
    own = rec.image(image).points2D
    xy = np.array([own[i].xy for i in ids], dtype=np.float64)
    xyz = np.array([rec.points3D[found[i]].xyz for i in ids], dtype=np.float64)
    estimation = pycolmap.AbsolutePoseEstimationOptions()
    estimation.ransac.max_error = REREGISTER_MAX_ERROR_PX
    estimation.ransac.min_inlier_ratio = REREGISTER_MIN_INLIER_RATIO
    estimation.ransac.random_seed = seed
    refinement = pycolmap.AbsolutePoseRefinementOptions()
    refinement.print_summary = False
    with kept_log_level(pycolmap):
        result = pycolmap.estimate_and_refine_absolute_pose(xy, xyz, rec.cameras[rec.image(image).camera_id],
                                                            estimation, refinement)
    inliers = int(result["num_inliers"]) if result is not None else 0
    if inliers < max(REREGISTER_MIN_INLIERS, REREGISTER_MIN_INLIER_RATIO * len(ids)):
        return (f"{inliers} of its {len(ids)} matches to 3D points of the kept poses agree on a pose "
                f"(needs {REREGISTER_MIN_INLIERS} and {REREGISTER_MIN_INLIER_RATIO:.0%})")
    mask = np.asarray(result["inlier_mask"], dtype=bool)
    return result["cam_from_world"], [(i, found[i]) for i, inlier in zip(ids, mask) if inlier]


@dataclass
class PairGraph:
    """The verified image pairs of a COLMAP database (`read_pair_graph`).

    names: image id -> name, every image of the database.
    pairs: (id1, id2) -> the pair's configuration as COLMAP verified it (a
           TwoViewGeometryConfiguration name; PLANAR_OR_PANORAMIC told apart where read so).
    """

    names: dict[int, str]
    pairs: dict[tuple[int, int], str]

    def components(self) -> list[set[int]]:
        """The images joined by verified pairs, largest group first (an image without a verified
        pair is a group of its own; ties in the order of their first name)."""
        parent = {i: i for i in self.names}

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i1, i2 in self.pairs:
            parent[root(i1)] = root(i2)
        groups: dict[int, set[int]] = {}
        for i in self.names:
            groups.setdefault(root(i), set()).add(i)
        return sorted(groups.values(), key=lambda g: (-len(g), min(self.names[i] for i in g)))

    def linked(self, image: int, others: set[int]) -> bool:
        """Whether `image` has a verified pair with one of `others`."""
        return any((i1 == image and i2 in others) or (i2 == image and i1 in others) for i1, i2 in self.pairs)

    def type_counts(self) -> dict[str, int]:
        """How many pairs verified as each configuration."""
        counts: dict[str, int] = {}
        for kind in self.pairs.values():
            counts[kind] = counts.get(kind, 0) + 1
        return counts


def only_rotates(counts: dict[str, int]) -> bool:
    """Whether pair-type counts (`PairGraph.type_counts`) say the camera only turned: most
    verified pairs PANORAMIC (a homography explains their matches and leaves the camera where it
    was), where SfM has no parallax to place cameras or points by."""
    total = sum(counts.values())
    return total > 0 and counts.get("PANORAMIC", 0) > NO_PARALLAX_SHARE * total


ONLY_ROTATES = ("the camera only rotates (no parallax): SfM cannot place it; fit needs views from different "
                "places")


def read_pair_graph(database: str | Path, tell_panoramic: bool = False) -> PairGraph:
    """The verified pairs of `database` (`PairGraph`). tell_panoramic: take PLANAR_OR_PANORAMIC
    pairs apart as COLMAP does (`pycolmap.estimate_two_view_geometry_pose`, the homography
    decomposed with the database's cameras), PANORAMIC also where the camera moved less than
    NO_PARALLAX_TRANSLATION of its distance to the plane."""
    pycolmap = load_pycolmap()

    kinds = pycolmap.TwoViewGeometryConfiguration
    db = pycolmap.Database.open(database)
    try:
        images = {im.image_id: im for im in db.read_all_images()}
        cameras = {c.camera_id: c for c in db.read_all_cameras()}
        pairs: dict[tuple[int, int], str] = {}
        keypoints: dict[int, np.ndarray] = {}
        pair_ids, geometries = db.read_two_view_geometries()
        for pair_id, geometry in zip(pair_ids, geometries):
            pair = pycolmap.pair_id_to_image_pair(pair_id)
            kind = kinds(geometry.config)
            if tell_panoramic and kind == kinds.PLANAR_OR_PANORAMIC:
                for i in pair:
                    if i not in keypoints:
                        keypoints[i] = np.asarray(db.read_keypoints(i)[:, :2], dtype=np.float64)
                points = [keypoints[i][geometry.inlier_matches[:, k]] for k, i in enumerate(pair)]
                cams = [cameras[images[i].camera_id] for i in pair]
                if pycolmap.estimate_two_view_geometry_pose(cams[0], points[0], cams[1], points[1], geometry):
                    kind = kinds(geometry.config)
                    if np.linalg.norm(geometry.cam2_from_cam1.translation) < NO_PARALLAX_TRANSLATION:
                        kind = kinds.PANORAMIC
            pairs[pair] = kind.name
    finally:
        db.close()
    return PairGraph({i: im.name for i, im in images.items()}, pairs)


def unregistered_reason(image: int, registered: set[int], graph: PairGraph | None) -> str:
    """Why an image is not in a model registering `registered`: no verified pair with any of
    them (an unrelated image, or one that overlaps no mapped view), or SfM did not place it."""
    if graph is not None and registered and not graph.linked(image, registered):
        return NO_MATCH
    return NOT_REGISTERED


NOT_REGISTERED = "not registered by SfM"
NO_MATCH = "no verified match with the mapped images"


def models_disagreement(a: Any, b: Any) -> tuple[float, int]:
    """(median over the pairs of images registered in both pycolmap Reconstructions of the angle
    between their relative rotations in a and in b, deg (nan: fewer than 2 shared); how many
    images they share, by name)."""
    ra = {im.name: np.asarray(im.cam_from_world().rotation.matrix()) for im in a.images.values() if im.has_pose}
    rb = {im.name: np.asarray(im.cam_from_world().rotation.matrix()) for im in b.images.values() if im.has_pose}
    shared = sorted(set(ra) & set(rb))
    angles = [rotation_angle_deg((ra[m] @ ra[n].T).T @ (rb[m] @ rb[n].T))
              for k, n in enumerate(shared) for m in shared[k + 1:]]
    return (float(np.median(angles)) if angles else math.nan), len(shared)


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
    """Write the verdicts as a tab-separated table (TABLE_COLUMNS; status kept, re-registered (kept:
    dropped, or not registered by SfM, then posed against the kept poses and passed; reason says
    which), dropped or unregistered)."""
    def fmt(x: float) -> str:
        return "" if not math.isfinite(x) else f"{x:.3f}"

    rows = ["\t".join(TABLE_COLUMNS)]
    for c in checks:
        status = (("re-registered" if c.reregistered else "kept") if c.kept else
                  "dropped" if c.registered else "unregistered")
        reason = (c.reason if not (c.kept and c.reregistered) else f"dropped first: {c.reregistered}" if c.registered
                  else f"{c.reregistered} at first")
        rows.append("\t".join([c.name, "yes" if c.registered else "no", status, reason, fmt(c.reproj_px),
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
    again = sum(bool(c.reregistered) and c.registered for c in kept)
    later = sum(bool(c.reregistered) and not c.registered for c in kept)
    parts = [f"kept {len(kept)} of {len(checks)} images ({registered} registered"
             + (f", {again} of them re-registered after a drop" if again else "")
             + (f", {later} more posed against the kept ones)" if later else ")")]
    if kept:
        errs = np.array([c.reproj_px for c in kept])
        parts.append(f"reprojection {np.median(errs):.2f} px median, {errs.max():.2f} px worst")
    reasons = failure_counts(checks)
    if reasons:
        parts.append("; ".join(f"{n} {why}" for why, n in reasons.items()))
    return ", ".join(parts)


def failure_counts(checks: list[PoseCheck]) -> dict[str, int]:
    """How many images failed for each kind of reason (not registered, no verified match, too
    few points, reprojection, rotation, no neighbour, no turning neighbour), in that order,
    leaving out kinds with none."""
    kinds = {NOT_REGISTERED: "not registered", NO_MATCH: "had no verified match with the mapped images",
             "sees only": "saw too few 3D points",
             "mean reprojection": "had a high reprojection error",
             "rotation disagrees": "disagreed in rotation with their matched neighbours",
             "no matched neighbour": "had no matched neighbour to check against",
             "no agreeing neighbour that turns": "were joined to the other poses only by pairs that say the camera "
                                                 "did not turn"}
    counts: dict[str, int] = {}
    for c in checks:
        if c.kept:
            continue
        for key, label in kinds.items():
            if c.reason.startswith(key):
                counts[label] = counts.get(label, 0) + 1
                break
    return {label: counts[label] for label in kinds.values() if label in counts}
