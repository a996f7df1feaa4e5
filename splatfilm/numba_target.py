"""The CPU that numba compiles splatfilm's kernels for: the host, with full-width vectors; and
OpenMP threads that sleep when they have no work.

On CPUs with AVX-512, LLVM's tuning for them (`prefer-256-bit`) keeps loops in 256-bit
vectors. The rasterizer's inner loops run over a 16-pixel tile row, which in float32 is
exactly one 512-bit vector, and they run 1.5x (forward) and 1.15x (backward) faster with the
full width (benchmarks/README.md, issue 17). Results are unchanged: the forward is lane-wise
arithmetic, and the backward's sums are fixed per compiled kernel.

This has to happen before numba builds its CPU target (its first `@njit` anywhere in the
process), so `splatfilm/__init__.py` calls it first. A user's own NUMBA_CPU_FEATURES wins.

A CPU fit step runs about ten parallel regions in numba's kernels (projection, SH, binning,
forward, backward) and many more in torch's operators, each through its own libgomp (torch
bundles one; numba's omp layer links the system's). By default a libgomp worker that finishes
a region spins 300,000 times before it sleeps (GOMP_SPINCOUNT), so on a machine whose cores are
busy with anything else the idle workers take the cores from the thread with work: fit steps
ran 2-19x slower than with workers that sleep (benchmarks/README.md, "Threads on a busy
machine"). libgomp reads its environment when it is loaded, so `splatfilm/__init__.py`
sets OMP_WAIT_POLICY=PASSIVE before it imports torch; numba loads its libgomp only at its first
parallel region. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
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


def passive_openmp_waits() -> bool:
    """Ask the OpenMP runtimes of torch and numba (OMP_WAIT_POLICY=PASSIVE, their documented
    switch) to put a worker to sleep as soon as its region ends. True when asked; False when the
    user set OMP_WAIT_POLICY or GOMP_SPINCOUNT. Child processes inherit it. Without effect on a
    libgomp already loaded: torch's, in a process that imported torch before splatfilm."""
    if os.environ.get("OMP_WAIT_POLICY") or os.environ.get("GOMP_SPINCOUNT"):
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
