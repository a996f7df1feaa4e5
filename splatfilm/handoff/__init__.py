"""Hand-off to the rest of a production pipeline: the edit as an OpenTimelineIO timeline and a CMX3600 EDL,
the world as a USD stage, editorial masters, and checking and signing the provenance every output carries. The
passes themselves come out of each frame's own render call (splatfilm.film.passes); the provenance record is
written by the file writers (splatfilm.io.provenance)."""
