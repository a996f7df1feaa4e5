"""Reading and writing the files splatfilm meets: splat files (PLY, .splat) and camera files."""

from .camera_files import read_cameras
from .gaussian_files import load_gaussians, save_gaussians

__all__ = ["load_gaussians", "read_cameras", "save_gaussians"]
