"""Assets: the sidecar every splat file carries, mesh import, edits, ground planes, scene meshes."""
