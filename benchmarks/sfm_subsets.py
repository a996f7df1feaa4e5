"""SfM pose checks on subsets of the flowerpot's 16 photos against its own COLMAP model.

python benchmarks/sfm_subsets.py [OUT_DIR]: runs `splatfilm sfm` on every other, every third,
the first and last 8, all 16 and four random subsets of tests/fixtures/flowerpot/images, aligns
each kept model to the fixture's by its rotations and prints how many kept poses are right
(within 10 deg), how far off the wrong ones are and how many were re-registered after a drop. A
wrong pose kept is what the checks exist to prevent.
"""

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycolmap

from splatfilm.fit.pose_check import read_pose_table
from splatfilm.scene.transforms import rotation_angle_deg

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/sfm_subsets")
    imgs = sorted(glob.glob(str(REPO / "tests/fixtures/flowerpot/images/*.jpg")))
    truth = pycolmap.Reconstruction(str(REPO / "tests/fixtures/flowerpot/sparse/0"))
    T = {im.name: np.asarray(im.cam_from_world().rotation.matrix()) for im in truth.images.values()}
    rng = np.random.default_rng(0)
    subsets = {"even": imgs[0::2], "odd": imgs[1::2], "third0": imgs[0::3], "third1": imgs[1::3],
               "third2": imgs[2::3], "first8": imgs[:8], "last8": imgs[8:], "all": imgs}
    for k in range(4):
        subsets[f"rand{k}"] = sorted(rng.choice(imgs, size=int(rng.integers(6, 11)), replace=False))
    print("| subset | photos | kept | right | wrong (deg off) | re-registered |\n|---|---|---|---|---|---|")
    for name, sub in subsets.items():
        d = out / name
        shutil.rmtree(d, ignore_errors=True)
        (d / "images").mkdir(parents=True)
        for f in sub:
            shutil.copy(f, d / "images")
        r = subprocess.run([sys.executable, "-m", "splatfilm", "sfm", str(d / "images"), "-o", str(d / "sfm")],
                           cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
        if r.returncode:
            print(f"| {name} | {len(sub)} | error | | {r.stderr.strip().splitlines()[-1][:90]}... | |", flush=True)
            continue
        rec = pycolmap.Reconstruction(str(d / "sfm" / "sparse" / "0"))
        R = {im.name: np.asarray(im.cam_from_world().rotation.matrix()) for im in rec.images.values() if im.has_pose}
        best = None
        for anchor in R:  # the alignment that makes the most poses right
            e = {n: rotation_angle_deg((R[n] @ R[anchor].T).T @ (T[n] @ T[anchor].T)) for n in R}
            right = sum(v < 10 for v in e.values())
            if best is None or right > best[0]:
                best = (right, e)
        wrong = sorted(round(v) for v in best[1].values() if v >= 10)
        again = sum(r["status"] == "re-registered" for r in read_pose_table(d / "sfm" / "poses.tsv"))
        print(f"| {name} | {len(sub)} | {len(R)} | {best[0]} | {len(wrong)} {wrong if wrong else ''} | {again} |",
              flush=True)


if __name__ == "__main__":
    main()
