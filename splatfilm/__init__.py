"""splatfilm: films from persistent 3D Gaussian scenes."""

from splatfilm.numba_target import passive_openmp_waits, prefer_full_width_vectors

prefer_full_width_vectors()  # before any module builds a numba kernel
passive_openmp_waits()  # before torch and numba load their OpenMP runtimes

from splatfilm.errors import SplatfilmError  # noqa: E402
from splatfilm.scene.gaussians import Gaussians  # noqa: E402
from splatfilm.version import __version__  # noqa: E402


__all__ = ["Gaussians", "SplatfilmError", "__version__"]
