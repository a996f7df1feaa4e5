"""Previews of a film's shot with the whole world in it: the path over every visible asset as
it stands when the shot's cut starts (characters posed, props where physics has them), and a
contact sheet of its frames rendered as `splatfilm render` renders them.

    splatfilm path preview FILM.yaml --shot sh020 -o preview.png [--contact-sheet SHEET.png]
"""

from __future__ import annotations

from pathlib import Path

from splatfilm.film.frame_render import FrameRenderer
from splatfilm.film.script import Film, FilmShot


def draw_film_path_preview(film: Film, fs: FilmShot, output: str | Path) -> None:
    """`shots.preview.draw_path_preview` of the shot over the world as it is at its first cut
    frame: every asset the shot sees, placed, posed and moved as it renders."""
    from splatfilm.shots.preview import draw_path_preview

    eye = fs.shot.cameras()[fs.handles].centers[0]
    world = film.world.compose(fs.cut_start, fs.visible, eye)
    draw_path_preview(fs.shot, world, output)


def render_film_contact_sheet(film: Film, fs: FilmShot, output: str | Path, every: int | None = None,
                              thumb_width: int = 240, backend: str = "auto") -> list[int]:
    """Render every `every`-th frame of the shot's cut (default: about 12; its last cut frame
    always) as the film renders it, `thumb_width` pixels wide, into a labelled contact sheet
    PNG (frame number, world time, focal length); an anamorphic shot's frames desqueezed (the
    thumbnails' height divided by the squeeze), made small in linear light as the render's
    contact sheet is (`downscale_display`). Returns the frame numbers shown."""
    from splatfilm.io.images import downscale_display, to_uint8
    from splatfilm.shots.preview import contact_sheet_picks, tile_images

    first_cut = fs.handles  # the first cut frame's index in the shot
    picks = [first_cut + i for i in contact_sheet_picks(fs.cut_frames, every)]
    renderer = FrameRenderer(film, backend)
    focal = fs.shot.sample().focal_mm
    thumbs, labels = [], []
    h = max(1, round(thumb_width * film.height / (film.width * film.pixel_aspect)))
    for i in picks:
        rgb = renderer.render(fs, i)[0]
        thumbs.append(downscale_display(to_uint8(rgb)[..., :3], thumb_width, h))
        frame = fs.shot.first_frame + i
        labels.append(f"{frame}  t={fs.world_start + float(fs.shot.times[i]):.2f}s  {focal[i]:.0f}mm")
    tile_images(thumbs, labels, output)
    return [fs.shot.first_frame + i for i in picks]
