"""Importing open3d, which ground estimation and scene meshing use.

open3d's Linux wheels link the system library libusb-1.0 (for RealSense cameras, which
splatfilm never uses), and slim systems and containers lack it: `import open3d` then fails.
The `libusb-package` wheel ships that library; loading it first, globally, lets the dynamic
linker resolve open3d's dependency by its soname, with nothing installed system-wide.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from types import ModuleType

from splatfilm.errors import SplatfilmError


def _preload_libusb() -> bool:
    """Load libusb-1.0 from the libusb-package wheel, if installed; True if it was loaded."""
    try:
        import libusb_package
    except ImportError:
        return False
    for lib in sorted(Path(libusb_package.__file__).parent.glob("libusb-1.0*.so*")):
        try:
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            return True
        except OSError:
            continue
    return False


def _numba_tbb_last() -> None:
    """open3d ships an older libtbb than numba accepts; with it loaded, numba's first parallel
    kernel tries TBB, warns, and falls back to OpenMP, the layer it uses without open3d. Asking
    for OpenMP first skips the warning and changes nothing else."""
    try:
        import numba
    except ImportError:
        return
    order = list(numba.config.THREADING_LAYER_PRIORITY)
    if "tbb" in order:
        numba.config.THREADING_LAYER_PRIORITY = [layer for layer in order if layer != "tbb"] + ["tbb"]


@functools.cache
def load_open3d() -> ModuleType:
    """The open3d module, or a one-line SplatfilmError saying how to get it."""
    try:
        import open3d
    except ImportError as first:
        if "libusb" not in str(first) or not _preload_libusb():
            raise SplatfilmError(f"open3d is needed here and does not import ({first}); "
                                 "pip install open3d-cpu libusb-package (or apt-get install libusb-1.0-0)") from None
        try:
            import open3d
        except ImportError as e:
            raise SplatfilmError(f"open3d does not import ({e}); pip install open3d-cpu libusb-package") from None
    _numba_tbb_last()
    # open3d prints a line per call at its default verbosity; splatfilm reports its own progress.
    open3d.utility.set_verbosity_level(open3d.utility.VerbosityLevel.Error)
    return open3d
