"""Films: a world of persistent assets, shots through it, rendered and edited.

script.py: the film script; checks.py: its warnings (cuts' continuity, simulations, walkers'
clips); world.py, physics.py: the world and its motion; frame_render.py: one frame (key,
render, files); passes.py: its compositing passes (mattes, motion); render.py:
`render_film`; workers.py: processes and Ray; refinement.py: `render --refine`; cut.py: the
edit's movies (its timeline: handoff/editorial.py; its timecode: shots/timing.py);
asset_cameras.py: a film's cameras
in an asset's own frame (for `refine --shots`).
"""

from splatfilm.film.frame_render import FrameRenderer
from splatfilm.film.render import FilmOutputs, RenderOptions, render_film
from splatfilm.film.script import Film, FilmShot, parse_film

__all__ = ["Film", "FilmOutputs", "FilmShot", "FrameRenderer", "RenderOptions", "parse_film", "render_film"]
