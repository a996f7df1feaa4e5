"""Films: a world of persistent assets, shots through it, rendered and edited."""

from splatfilm.film.render import FilmOutputs, render_film
from splatfilm.film.script import Film, FilmShot, parse_film

__all__ = ["Film", "FilmOutputs", "FilmShot", "parse_film", "render_film"]
