"""splatfilm: films from persistent 3D Gaussian scenes."""

from splatfilm.errors import SplatfilmError
from splatfilm.scene.gaussians import Gaussians
from splatfilm.version import __version__


__all__ = ["Gaussians", "SplatfilmError", "__version__"]
