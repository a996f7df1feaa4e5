"""The CPU that numba compiles splatfilm's kernels for: the host, with full-width vectors.

On CPUs with AVX-512, LLVM's tuning for them (`prefer-256-bit`) keeps loops in 256-bit
vectors. The rasterizer's inner loops run over a 16-pixel tile row, which in float32 is
exactly one 512-bit vector, and they run 1.5x (forward) and 1.15x (backward) faster with the
full width (benchmarks/README.md, issue 17). Results are unchanged: the forward is lane-wise
arithmetic, and the backward's sums are fixed per compiled kernel.

This has to happen before numba builds its CPU target (its first `@njit` anywhere in the
process), so `splatfilm/__init__.py` calls it first. A user's own NUMBA_CPU_FEATURES wins.
"""

from __future__ import annotations

import os
import sys


def prefer_full_width_vectors() -> bool:
    """Ask numba (NUMBA_CPU_FEATURES, its documented switch, and `numba.config` when numba is
    already imported) for the host's features with 512-bit vectors preferred. True when asked;
    False when the CPU has no AVX-512 or the user chose features. Without effect, silently,
    in a process where numba compiled something before splatfilm was imported."""
    if os.environ.get("NUMBA_CPU_FEATURES"):
        return False
    try:
        import llvmlite.binding as llvm
    except ImportError:  # numba not installed: nothing to tune
        return False
    features = llvm.get_host_cpu_features()
    if not features.get("avx512f"):
        return False
    wide = features.flatten() + ",-prefer-256-bit"
    os.environ["NUMBA_CPU_FEATURES"] = wide  # worker processes inherit it
    if "numba" in sys.modules:
        config = sys.modules["numba"].config
        if config.CPU_FEATURES is None:
            config.CPU_FEATURES = wide
    return True
