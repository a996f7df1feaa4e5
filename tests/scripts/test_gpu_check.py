"""The GPU check rehearsed on the CPU (`scripts/gpu_check.sh --dry-run`), so the script a GPU
machine runs in its one short call cannot rot between such calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import imageio.v3 as iio

from helpers import REPO


def test_the_dry_run_runs_every_step_on_what_a_gpu_machine_has(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, SPLATFILM_PYTHON=sys.executable)
    # The dry run's own budget (300 s) is for the device call; about 70 s on 2 idle cores, but on a
    # loaded runner the last steps found too little of it left ("not run", "timed out"). Here it
    # gets the test's own limit: every step must still run and pass.
    res = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run", "--out", str(out),
                          "--budget", "580"], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    status = {s["name"]: s["status"] for s in results["steps"]}
    assert status == {"environment": "ok", "bake": "ok", "install": "ok", "build": "skipped", "tests": "ok",
                      "render": "ok", "fit": "ok", "film": "ok", "refine": "ok"}, results
    # The device call returns at most 8 files from $OUT, none in a subfolder.
    files = list(out.iterdir())
    assert len(files) <= 8 and all(f.is_file() for f in files)
    summary = (out / "summary.md").read_text()
    assert "| fit | ok |" in summary and "bare loop" in summary and "| cpu | box | 10k | 160x120 |" in summary
    # The film step rendered the demo with pybullet, open3d, ffmpeg and usd-core unimportable.
    frame = iio.imread(out / "film_sh030.png")
    assert frame.shape == (360, 640, 3) and frame.std() > 20


def test_the_dry_run_blocks_what_the_gpu_machine_lacks(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(REPO / "scripts"))
    (tmp_path / "sitecustomize.py").write_text(gpu_check.BLOCKER.format(blocked=sorted(gpu_check.NOT_ON_DEVICE)))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    probe = "import numpy\ntry:\n    import pybullet\nexcept ModuleNotFoundError as e:\n    print('blocked', e.name)"
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert res.stdout.strip() == "blocked pybullet"
