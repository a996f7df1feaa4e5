"""What a world is made of: Gaussians, cameras, spherical harmonics, rotations and similarity transforms."""
