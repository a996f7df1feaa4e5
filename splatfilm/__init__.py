"""splatfilm: films from persistent 3D Gaussian scenes."""

from .errors import SplatfilmError
from .gaussians import Gaussians

__version__ = "0.1.0"

__all__ = ["Gaussians", "SplatfilmError", "__version__"]
