"""Reading and writing the files splatfilm meets: splat files (PLY, .splat) and camera files."""

from splatfilm.io.camera_files import read_cameras
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians

__all__ = ["load_gaussians", "read_cameras", "save_gaussians"]
