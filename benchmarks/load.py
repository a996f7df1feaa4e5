"""Loading a phone capture for fitting: peak memory and seconds per image of `load_capture` on
12 MP OPENCV photos (undistorted as they are read).

    python benchmarks/load.py                        # 4 photos, 4000x3000 and 3000x4000, alternating
    python benchmarks/load.py --count 8 --max-size 0 --save /tmp/undistorted.npz

The capture is made from tests/fixtures/flowerpot (388x524, one OPENCV camera): its photos
enlarged to 3000x4000 (bicubic, JPEG quality 90) with the camera's intrinsics scaled to match,
every second one turned a quarter to 4000x3000 with its camera turned with it, so the capture
has two cameras as a phone's portrait and landscape photos do. Written as a nerfstudio
transforms.json in a temporary folder (nothing large is kept in the repository). Each
measurement runs `load_capture` in a fresh process: peak MB is that process's resident set at
its high-water mark (VmHWM), added MB the part above the resident set after the imports.
`--save FILE` keeps the first portrait and the first landscape image as loaded (with
`--max-size 0`: undistorted, full size), to compare the output of two versions of the code.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOWERPOT = ROOT / "tests" / "fixtures" / "flowerpot"


def make_capture(out: Path, count: int, width: int = 3000, height: int = 4000) -> None:
    """`count` OPENCV photos at width x height (portrait) and, every second one, height x width
    (landscape), with a transforms.json, in `out`."""
    from PIL import Image

    from splatfilm.io.camera_files import read_colmap, write_transforms_json
    from splatfilm.scene.cameras import Cameras

    model = read_colmap(FLOWERPOT / "sparse" / "0")
    (out / "images").mkdir(parents=True, exist_ok=True)
    cams = []
    for i in range(count):
        src = model[i % len(model)]
        name = src.names[0]
        sx, sy = width / int(src.widths[0]), height / int(src.heights[0])
        K = src.Ks[0] * np.array([[sx], [sy], [1.0]])
        dist = src.distortion[0].copy()
        pixels = np.asarray(Image.open(FLOWERPOT / "images" / name).convert("RGB").resize((width, height), Image.BICUBIC))
        viewmat = src.viewmats[0].copy()
        w, h = width, height
        if i % 2:
            # A quarter turn clockwise: x' = h - y, y' = x; in the camera, (X, Y) -> (-Y, X).
            pixels = np.rot90(pixels, -1)
            K = np.array([[K[1, 1], 0, height - K[1, 2]], [0, K[0, 0], K[0, 2]], [0, 0, 1]])
            k1, k2, k3, k4, p1, p2 = dist
            dist = np.array([k1, k2, k3, k4, p2, -p1])
            turn = np.eye(4)
            turn[:2, :2] = [[0, -1], [1, 0]]
            viewmat = turn @ viewmat
            w, h = height, width
        file = f"images/{i:03d}_{name}"
        Image.fromarray(np.ascontiguousarray(pixels)).save(out / file, quality=90)
        cams.append(Cameras(viewmat[None], K[None], [w], [h], dist[None], "OPENCV", [file]))
    write_transforms_json(out / "transforms.json", Cameras.concat(cams))


def rss_mb(field: str = "VmRSS") -> float | None:
    """This process's resident set, MB, as /proc/self/status's `field` says it (VmRSS: now;
    VmHWM: its high-water mark); None where there is no such file (not Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's resident set at its high-water mark, MB: VmHWM, which starts afresh at
    exec (Linux's ru_maxrss keeps the parent's from before the fork, here the one that made
    the photos)."""
    import resource

    peak = rss_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(folder: Path, max_size: int | None, save: Path | None) -> dict:
    """Load `folder` in this process; its peak resident set and time (call in a fresh process)."""
    import time

    from splatfilm.fit import load_capture

    base = peak_rss_mb()
    t = time.perf_counter()
    cap = load_capture(folder, folder / "work", max_size=max_size or None)
    seconds = time.perf_counter() - t
    peak = peak_rss_mb()
    if save is not None:
        portrait = next(i for i in range(len(cap)) if cap.cameras.heights[i] > cap.cameras.widths[i])
        landscape = next(i for i in range(len(cap)) if cap.cameras.heights[i] < cap.cameras.widths[i])
        np.savez(save, portrait=cap.images[portrait], landscape=cap.images[landscape],
                 portrait_valid=cap.valid[portrait], landscape_valid=cap.valid[landscape])
    sizes = sorted({(int(w), int(h)) for w, h in zip(cap.cameras.widths, cap.cameras.heights)})
    return {"images": len(cap), "sizes": sizes, "seconds": seconds, "s_per_image": seconds / len(cap),
            "peak_mb": peak, "base_mb": base, "added_mb": peak - base}


def measured_in_fresh_process(script: str, keep: Path | None, count: int, args: list[str]) -> dict:
    """The row `script --measure FOLDER ARGS` prints (its last stdout line, JSON), run in a new
    process so its peak RSS is its own, on a capture of `count` photos made in `keep` (reused
    when it has a transforms.json) or in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp) / "capture"
        if not (folder / "transforms.json").exists():
            make_capture(folder, count)
        cmd = [sys.executable, script, "--measure", str(folder), *args]
        return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=4, help="photos (every second one landscape)")
    parser.add_argument("--max-size", type=int, default=1600,
                        help="load_capture's cap on the longer side (1600: what `splatfilm fit` uses; 0: none)")
    parser.add_argument("--keep", type=Path, help="make the capture here (reused when it has a transforms.json)")
    parser.add_argument("--save", type=Path, help="write the first portrait and landscape image as loaded (.npz)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the fresh process's side
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.max_size, args.save)))
        return
    row = measured_in_fresh_process(__file__, args.keep, args.count, ["--max-size", str(args.max_size)]
                                    + (["--save", str(args.save)] if args.save else []))
    print(f"{platform.machine()}, numpy {np.__version__}")
    print(f"{row['images']} images {row['sizes']}, max size {args.max_size or 'none'}: peak {row['peak_mb']:.0f} MB "
          f"(added {row['added_mb']:.0f} MB over {row['base_mb']:.0f} MB), {row['seconds']:.1f} s, "
          f"{row['s_per_image']:.2f} s an image")


if __name__ == "__main__":
    main()
