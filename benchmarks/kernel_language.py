"""Would another kernel language beat numba on the compositing arithmetic? The forward's
per-lane work (benchmarks/render.py's roofline loop) as hand-vectorised C++ (explicit 16-wide
float32 vectors, g++ -O3 -march=native) against numba's loop, on one thread, alternately.

    python benchmarks/kernel_language.py            # needs g++ (or CXX) on the PATH

Prints lanes per second for each and their ratio, and checks both give the same state (to
float32 rounding). Nothing in splatfilm depends on a C++ compiler: this is a measurement.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import splatfilm  # noqa: E402,F401  (numba's target: 512-bit vectors where the CPU has them)
from render import _roofline_forward, roofline  # noqa: E402

SOURCE = Path(__file__).resolve().parent / "roofline_simd.cpp"


def build(out_dir: Path) -> Path:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        sys.exit("error: no C++ compiler (g++ or clang++, or CXX): nothing to compare")
    lib = out_dir / "roofline_simd.so"
    subprocess.run([cxx, "-O3", "-march=native", "-mprefer-vector-width=512", "-ffp-contract=fast", "-shared", "-fPIC",
                    str(SOURCE), "-o", str(lib)], check=True)
    return lib


def tile_state(rng: np.random.Generator) -> np.ndarray:
    state = np.zeros((12, 256), np.float32)
    state[5:] = rng.uniform(0, 1, (7, 256))
    state[6] = np.arange(256) % 16 + 0.5
    state[7] = np.arange(256) // 16 + 0.5
    return state


def main() -> None:
    import numba

    numba.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        lib = ctypes.CDLL(str(build(Path(tmp))))
        rng = np.random.default_rng(0)
        n, reps = 2048, 20
        cov = rng.uniform(2.0, 40.0, (n, 2))
        params = np.ascontiguousarray(np.stack([rng.uniform(0, 16, n), rng.uniform(0, 16, n), 1 / cov[:, 0],
                                                rng.uniform(-0.01, 0.01, n), 1 / cov[:, 1], rng.uniform(0.05, 0.5, n)],
                                               1).astype(np.float32))
        feats = rng.uniform(0, 1, (n, 4)).astype(np.float32)

        def ptr(a):
            return a.ctypes.data_as(ctypes.c_void_p)

        a, b = tile_state(rng), None
        b = a.copy()
        lib.roof(ptr(params), ptr(feats), ptr(a), n, 1)
        _roofline_forward(params, feats, b, 1)
        print(f"same state: max difference {np.abs(a - b).max():.1e} (float32 rounding)")
        print("| round | C++ explicit SIMD M lanes/s | numba M lanes/s | C++ / numba |")
        print("|---|---|---|---|")
        for rnd in range(3):
            state = tile_state(rng)
            best = min(_timed_c(lib, ptr, params, feats, state, n, reps) for _ in range(5))
            c_rate = n * 256 * reps / best
            nb_rate = roofline()
            print(f"| {rnd + 1} | {c_rate / 1e6:.0f} | {nb_rate / 1e6:.0f} | {c_rate / nb_rate:.2f} |", flush=True)


def _timed_c(lib, ptr, params, feats, state, n: int, reps: int) -> float:
    t = time.perf_counter()
    lib.roof(ptr(params), ptr(feats), ptr(state), n, reps)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
