"""The COLMAP feature database that SfM (`fit.sfm`) and triangulation for known poses
(`fit.triangulate`) keep in their work folder: SIFT features and matches made resumably, with
progress bars, and the folder's lock.

work/database.db is kept with work/database.json beside it (`database_record`): what its
features and matches were made from and whether each step finished. A call with the same
inputs reuses its features (and its matches, with the same matching options), and one after an
interruption (Ctrl-C, a killed job) goes on where extraction (`extract_resumably`) or matching
(`match_resumably`) stopped, ending in the database an uninterrupted run makes. Where each
image has a key of its own (SfM's photos: content hash, size and lens), a call with some images
added, removed or changed deletes only the rows of the images gone or changed (their features
and the pairs they are in) and extracts and matches only what is new, as COLMAP skips the
images and pairs a database holds. The record is
checked against the database before it is believed (features missing or out of order go back
to extraction), an unreadable database is replaced, and a second run on the same folder is
refused while the first holds it (`io.atomic.work_lock`). Extraction and matching, the long steps
(matching every pair of a few hundred photos takes hours on a small CPU), show progress bars
read off the database as COLMAP fills it (`_database_progress`).

COLMAP's extractor numbers the images in the order their features finish, which on more than
one thread differs from run to run; `number_images_by_name` renumbers them by file name before
matching, so that with a fixed RANSAC seed every pair's verification repeats whatever the
thread count.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from splatfilm.io.atomic import clear_scratch
from splatfilm.io.cache import read_record, write_record
from splatfilm.io.colmap_library import load_pycolmap, stderr_silenced
from splatfilm import report

Log = Callable[[str], None]

# Beside the feature database: what its features and matches were made from and how far they got.
DATABASE_RECORD = "database.json"
# SIFT on the CPU for SfM and triangulation (`sift_options`). Small images: COLMAP's SIFT already
# upsamples once (first_octave = -1); a lower peak threshold (COLMAP's default is 0.0067) also
# keeps the weaker blobs of soft, low-contrast images.
SIFT_PEAK_THRESHOLD = 0.004
SIFT_MAX_FEATURES = 8192
# COLMAP's SIFT extractor scales an image whose longer side is over this down to it first (its
# own default for SIFT, set here so that the memory estimate (`fit.memory`) and the extraction
# agree; not in the features' key since it is the default the key's pycolmap version stands
# for: another value belongs there too).
SIFT_MAX_IMAGE_SIZE = 3200
# SfM's vocabulary for loop detection, made from the database's descriptors: goes with them.
VOCABULARY = "vocab_tree.bin"
# Seconds between looks at the database for the progress bars of extraction and matching.
PROGRESS_POLL_S = 1.0


# COLMAP's pair id of images i < j is i * _MAX_IMAGE_ID + j (kMaxNumImages, INT32_MAX).
_MAX_IMAGE_ID = 2147483647


def features_key(pycolmap: ModuleType, **inputs: Any) -> dict:
    """What a database's features depend on beyond each image's own key (`database_record`'s
    `images`): `inputs` (the run's camera settings; without per-image keys, the images too), the
    SIFT options and COLMAP's version."""
    return {**inputs, "sift": [SIFT_PEAK_THRESHOLD, SIFT_MAX_FEATURES], "pycolmap": pycolmap.__version__}


def sift_options(pycolmap: ModuleType, num_threads: int) -> Any:
    """pycolmap's FeatureExtractionOptions for SIFT on the CPU on `num_threads` threads (-1: all),
    with SIFT_MAX_IMAGE_SIZE, SIFT_PEAK_THRESHOLD and SIFT_MAX_FEATURES."""
    options = pycolmap.FeatureExtractionOptions()
    options.num_threads = num_threads
    options.max_image_size = SIFT_MAX_IMAGE_SIZE
    options.sift.peak_threshold = SIFT_PEAK_THRESHOLD
    options.sift.max_num_features = SIFT_MAX_FEATURES
    return options


@contextmanager
def _database(database: Path):
    """(connection, names of its tables) for an existing COLMAP database (never a new, empty
    one), closed on the way out. Only while COLMAP does not have it open: see _ROW_COUNTER."""
    con = sqlite3.connect(Path(database).resolve().as_uri() + "?mode=rw", uri=True)
    try:
        yield con, {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def database_record(work: Path, features: dict, names: list[str], reuse: bool,
                    images: dict[str, Any] | None = None, say: Log | None = None) -> dict:
    """The record of work/database.db (work/database.json): the inputs its features come from, whether
    their extraction finished, the matching options its matches come from and whether matching
    finished. What the record says is checked against the database (it may not have survived a
    crash the record did, or been edited since): features missing or out of name order go back
    to extraction. A database made from other `features` inputs, an unreadable one, or any when
    `reuse` is False is deleted and a new record started: stale features would mix with the new
    images'.

    images: each image's own key by name (what its features depend on: content hash, size,
    lens), or None when `features` covers the images. Given, an image whose key changed, or
    that is gone from `names`, has its rows deleted (features, frame, the pairs it is in; the
    vocabulary of loop detection, made from every image's descriptors, goes too), and the
    others keep theirs: adding one photo extracts one image and matches its pairs. say: told
    how many images changed."""
    database = work / "database.db"
    record = read_record(work / DATABASE_RECORD)
    if reuse and database.exists() and record.get("features") == features:
        before = record.get("images") if images is not None else None
        try:
            gone = _forget_images(database, before, images) if images is not None else 0
            state = _database_state(database, names)
        except sqlite3.DatabaseError:
            state = "foreign"
        if state != "foreign":
            changed = images is not None and before != images
            if changed:
                (work / VOCABULARY).unlink(missing_ok=True)
                if say is not None and isinstance(before, dict):
                    new = sum(before.get(name) != key for name, key in images.items())
                    say(f"{new} image{'s' if new != 1 else ''} new or changed and {gone} gone since {database} "
                        f"was made: keeping the features and matches of the other {len(images) - new}")
            extracted = bool(record.get("extracted")) and state == "complete"
            # Matches stay: the pairs of images still there are still right (their ids follow
            # the images when they are numbered again), and COLMAP matches only the pairs missing.
            record = {"features": features, **({"images": images} if images is not None else {}),
                      "extracted": extracted, "matching": record.get("matching"),
                      "matched": bool(record.get("matched")) and extracted and not changed}
            write_record(work / DATABASE_RECORD, record)
            return record
    # The write-ahead log first: one left beside a new database would be replayed into it.
    for stale in (work / "database.db-wal", work / "database.db-shm", database, work / VOCABULARY):
        stale.unlink(missing_ok=True)
    clear_scratch(work)  # what a killed run was writing; the work folder is ours (work_lock)
    record = {"features": features, **({"images": images} if images is not None else {}),
              "extracted": False, "matching": None, "matched": False}
    write_record(work / DATABASE_RECORD, record)
    return record


def _forget_images(database: Path, before: Any, images: dict[str, Any]) -> int:
    """Delete from `database` every image whose key in `images` is not the one `before` (the
    record's keys when its features were made) gives it, or that `images` lacks: its keypoints,
    descriptors, frame, pose prior and every pair it is in; then the cameras left without
    images, and number the rest by name. Returns how many of the deleted images are gone from
    `images` (the others are changed and extracted again)."""
    before = before if isinstance(before, dict) else {}
    with _database(database) as (con, tables):
        if "images" not in tables:
            return 0
        rows = con.execute("SELECT name, image_id FROM images").fetchall()
        drop = [(name, image_id) for name, image_id in rows
                if name not in images or before.get(name) != images[name]]
        if not drop:
            return 0
        ids = [image_id for _name, image_id in drop]
        marks = ", ".join("?" * len(ids))
        columns = {t: {row[1] for row in con.execute(f"PRAGMA table_info({t})")} for t in tables}
        with con:
            for table in ("keypoints", "descriptors", "pose_priors"):
                if "image_id" in columns.get(table, ()):
                    con.execute(f"DELETE FROM {table} WHERE image_id IN ({marks})", ids)
            if "corr_data_id" in columns.get("pose_priors", ()):
                con.execute(f"DELETE FROM pose_priors WHERE corr_sensor_type = 0 AND corr_data_id IN ({marks})", ids)
            if "frame_data" in tables:
                frames = [row[0] for row in con.execute(
                    f"SELECT frame_id FROM frame_data WHERE sensor_type = 0 AND data_id IN ({marks})", ids)]
                fmarks = ", ".join("?" * len(frames))
                con.execute(f"DELETE FROM frame_data WHERE frame_id IN ({fmarks})", frames)
                if "frames" in tables:
                    con.execute(f"DELETE FROM frames WHERE frame_id IN ({fmarks})", frames)
            for table in ("matches", "two_view_geometries"):
                if table in tables:
                    con.execute(f"DELETE FROM {table} WHERE pair_id / {_MAX_IMAGE_ID} IN ({marks}) "
                                f"OR pair_id % {_MAX_IMAGE_ID} IN ({marks})", ids + ids)
            con.execute(f"DELETE FROM images WHERE image_id IN ({marks})", ids)
    _drop_orphan_cameras(database)
    number_images_by_name(database)
    return sum(name not in images for name, _id in drop)


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


def match_options(pycolmap: ModuleType, num_threads: int, seed: int) -> tuple[Any, Any]:
    """pycolmap's (FeatureMatchingOptions, TwoViewGeometryOptions) for matching on the CPU on
    `num_threads` threads with RANSAC seeded by `seed`: SfM's and triangulation's alike."""
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = num_threads
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = seed
    return matching, verification


def _update_record(work: Path, record: dict, **changes) -> None:
    record.update(changes)
    write_record(work / DATABASE_RECORD, record)


def extract_resumably(work: Path, record: dict, label: str, what: str, n: int, extract: Callable[[], None],
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


def match_resumably(work: Path, record: dict, options: dict, label: str, total: int | None,
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


def camera_of(database: Path, names: list[str]) -> int | None:
    """The camera id the database gives images of `names` (one group: they share it), or None."""
    if not Path(database).exists():
        return None
    with _database(database) as (con, tables):
        if "images" not in tables:
            return None
        wanted = set(names)
        ids = {camera for name, camera in con.execute("SELECT name, camera_id FROM images") if name in wanted}
    return min(ids) if ids else None


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
    if not report.bars_shown(show, stream):
        yield
        return
    import subprocess

    initial = _count_rows(database, table) or 0
    started = time.time()
    bars: list = []  # drawn with the first new row, so what the step says before its first row stays above it

    def draw(rows: int) -> None:
        if not bars:
            bars.append(report.progress_bar(total=total, desc=desc, unit=unit, initial=initial, stream=stream))
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


def number_images_by_name(database: Path) -> None:
    """Renumber the images of a COLMAP database whose features were just extracted so image ids
    follow the image names (1, 2, ... in name order); their frames (one image each) take the
    same ids. COLMAP's extractor numbers images in the order their features finish, which on
    more than one thread differs from run to run, and the ids decide which image of a pair is
    the first one in matching and verification, and so their RANSAC samples. Works on the
    database's SQLite tables (COLMAP's documented schema; pycolmap cannot change an id). Pairs
    already matched (a database that kept the features and matches of the images it had when
    one was added or removed) take their images' new ids; a pair whose images would swap
    places (its matches and geometry are stored first image first) is deleted and matched
    again."""
    with _database(database) as (con, tables):
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
            for table in ("matches", "two_view_geometries"):
                if table in tables:
                    _renumber_pairs(con, table, new_id)
        _sort_frame_data(con, tables)


def _renumber_pairs(con: sqlite3.Connection, table: str, new_id: dict[int, int]) -> None:
    """Give the pairs of `table` (matches, two_view_geometries) the pair ids of their images'
    new ids (`new_id`: old image id -> new); delete a pair whose images are gone or would swap
    places. Two passes through negative ids, so no id collides on the way."""
    moved, dropped = [], []
    for (pair,) in con.execute(f"SELECT pair_id FROM {table}").fetchall():
        first, second = (new_id.get(i) for i in divmod(pair, _MAX_IMAGE_ID))
        if first is None or second is None or first >= second:
            dropped.append((pair,))
        elif first * _MAX_IMAGE_ID + second != pair:
            moved.append((-(first * _MAX_IMAGE_ID + second), pair))
    con.executemany(f"DELETE FROM {table} WHERE pair_id = ?", dropped)
    con.executemany(f"UPDATE {table} SET pair_id = ? WHERE pair_id = ?", moved)
    con.execute(f"UPDATE {table} SET pair_id = -pair_id WHERE pair_id < 0")


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


def database_stats(database: Path) -> dict:
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
