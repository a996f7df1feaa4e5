"""SfM on 12 MP phone photos: peak memory and seconds of `run_sfm` (`splatfilm sfm`), per step.

    python benchmarks/sfm_memory.py                          # 4 photos, this machine's default threads
    python benchmarks/sfm_memory.py --count 8 --threads 1
    python benchmarks/sfm_memory.py --count 8 --machine 16:8 # as a 16-core machine with 8 GB free would run

The photos are benchmarks/load.py's: the flowerpot fixture's, enlarged to 3000x4000 and, every
second one, 4000x3000 (JPEG quality 90), in a temporary folder. Each row runs `run_sfm` in a
fresh process: peak MB is that process's resident set at its high-water mark (VmHWM); the
extraction, matching and mapping columns are the largest resident set sampled (every 0.05 s)
during each step (mapping: mapping and the pose checks). The model's digest (sha256 of
sparse/0's files) tells whether two runs made the same model.

`--machine CORES:GB` runs SfM as on a machine with CORES cores and GB of memory free: the thread
count for SIFT extraction is what splatfilm chooses there (`fit.memory.sift_threads`), and COLMAP runs
that many extraction threads here. Only where the choice is fewer threads than CORES: a machine
with enough memory runs every core, which this one cannot show (use `--threads CORES`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from load import measured_in_fresh_process, peak_rss_mb, rss_mb  # noqa: E402 (benchmarks/ is on the path from here)

STEPS = ("extraction", "matching", "mapping")


def measure(folder: Path, threads: int, machine: str | None) -> dict:
    """Run SfM on `folder`/images in this process (call in a fresh one): peak resident set, per step."""
    import splatfilm.fit.memory as memory
    import splatfilm.fit.sfm as sfm
    from splatfilm.io.digest import content_digest

    if machine:
        cores, gb = machine.split(":")
        os.cpu_count = lambda: int(cores)  # noqa: E731 (this process only: what the thread choice reads)
        memory.available_memory = lambda: int(float(gb) * 1e9)  # noqa: E731
    step, peaks, lines, done = ["start"], {}, [], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peaks[step[0]] = max(peaks.get(step[0], 0.0), rss_mb() or 0.0)
            time.sleep(0.05)

    def log(message: str) -> None:
        lines.append(message)
        if "extracting SIFT" in message:
            step[0] = "extraction"
        elif "matching" in message and step[0] == "extraction":
            step[0] = "matching"
        elif message.endswith("mapping"):  # "... pairs verified; mapping"
            step[0] = "mapping"

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    model = sfm.run_sfm(folder / "images", folder / "work", num_threads=threads, log=log, progress=False, reuse=False)
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    digest = content_digest(*((model / f).read_bytes() for f in ("cameras.bin", "images.bin", "points3D.bin")))
    return {"peak_mb": peak_rss_mb(), "steps_mb": {s: peaks.get(s, 0.0) for s in STEPS}, "seconds": seconds,
            "model": digest[:12], "extraction_line": next((m for m in lines if "extracting SIFT" in m), ""),
            "kept": lines[-1] if lines else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=4, help="photos (every second one landscape)")
    parser.add_argument("--threads", type=int, default=-1, help="run_sfm's num_threads (default -1: chosen)")
    parser.add_argument("--machine", metavar="CORES:GB", help="choose the SIFT threads as a machine with CORES "
                                                               "cores and GB free would")
    parser.add_argument("--keep", type=Path, help="make the photos here (reused when there)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the fresh process's side
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.threads, args.machine)))
        return
    row = measured_in_fresh_process(__file__, args.keep, args.count, ["--threads", str(args.threads)]
                                    + (["--machine", args.machine] if args.machine else []))
    import pycolmap

    steps = ", ".join(f"{s} {row['steps_mb'][s]:.0f}" for s in STEPS)
    print(f"{platform.machine()}, {os.cpu_count()} cores, pycolmap {pycolmap.__version__}")
    print(f"{args.count} photos, threads {args.threads}{', as ' + args.machine if args.machine else ''}: "
          f"peak {row['peak_mb']:.0f} MB ({steps}), {row['seconds']:.1f} s, model {row['model']}")
    print(f"  {row['extraction_line']}\n  {row['kept']}")


if __name__ == "__main__":
    main()
