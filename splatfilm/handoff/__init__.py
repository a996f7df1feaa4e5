"""Hand-off to the rest of a production pipeline: the world as a USD stage, compositing passes, editorial
masters and the provenance every output carries."""
