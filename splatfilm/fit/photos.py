"""The photos an SfM run reads (`fit.sfm.run_sfm`): which files (`read_photos`), the camera each
needs (`image_camera`: its upright size and, from its EXIF, its lens; `check_images` groups the
photos that share one), and upright copies of the photos stored turned (`upright_folder`).

COLMAP reads an image's stored pixels and ignores its EXIF orientation, so a photo stored turned
(as phones store portrait photos) is given to it as an upright copy, in the work folder's
UPRIGHT beside links to the other photos.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from splatfilm.errors import SplatfilmError
from splatfilm.io.atomic import make_folder
from splatfilm.io.manifest import Manifest
from splatfilm.io.photos import (PHOTO_SUFFIXES, QUARTER_TURNS, exif_orientation, list_images, photo_orientation,
                                 unread_photos_note, write_upright)

UPRIGHT = "upright"  # the work folder's folder of upright copies of photos stored turned


@dataclass
class Photos:
    """The images of one SfM run.

    root:   the folder they are read from
    names:  their paths relative to `root` (POSIX), in the order given (a folder's: by name)
    where:  what an error about them names (the folder, or the common folder of a list)
    turned: the names whose EXIF orientation is not 1 (stored mirrored or turned)
    groups: the names grouped by (width, height, lens) (`check_images`), one camera each
    """

    root: Path
    names: list[str]
    where: Path
    turned: list[str]
    groups: dict[tuple[int, int, str], list[str]]


def read_photos(images: str | Path | Sequence[str | Path], log: Callable[[str], None]) -> Photos:
    """The `Photos` of a folder (its image files, sorted by name) or a list of image files, each
    decoded once (`check_images`). A folder's photos that are not read (HEIC, raw, WebP) are
    named through `log`. Raises SplatfilmError for no images and unreadable ones."""
    root, names, where = _resolve_images(images)
    if isinstance(images, (str, Path)) and (note := unread_photos_note(root)):
        log(f"sfm: {note}")
    turned = [name for name in names if photo_orientation(root / name) != 1]
    return Photos(root, names, where, turned, check_images(root, names))


def image_camera(path: Path) -> tuple[int, int, str]:
    """(width, height, lens) of an image file, decoding it fully so a truncated file fails here;
    the size upright, as its EXIF orientation shows it.

    lens: what the file's EXIF says of the optics that took it ('Meizu m1 note, 3.81 mm'; the
    camera's make and model, focal length, 35 mm equivalent and digital zoom, those present),
    '' without EXIF. Photos of one size with different lenses (a phone's wide and ultra-wide
    cameras, a zoom's settings, digital zoom) have different intrinsics."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            size = int(im.width), int(im.height)
            # A broken EXIF block (a bad offset) does not make the picture unreadable: no lens.
            try:
                exif = im.getexif()
            except Exception:  # Pillow raises ValueError, OSError, struct.error, ... for bad EXIF
                return size + ("",)
            if exif_orientation(exif) in QUARTER_TURNS:  # SfM sees the upright copy (upright_folder)
                size = size[::-1]
            try:
                lens = _lens(exif, exif.get_ifd(0x8769))
            except Exception:
                lens = ""
            return size + (lens,)
    except Exception as e:  # PIL raises several types (UnidentifiedImageError, OSError, ...)
        raise SplatfilmError(f"{path}: cannot read image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def _lens(tags, exif_tags) -> str:
    """A label for the optics an image's EXIF names (see image_camera); '' for none."""
    def text(v) -> str:
        if isinstance(v, bytes):  # some writers store ASCII tags as undefined bytes
            v = v.decode("latin-1")
        return v.replace("\x00", "").strip() if isinstance(v, str) else ""

    def number(v) -> float | None:
        try:
            x = float(v)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return x if math.isfinite(x) and x > 0 else None

    body = " ".join(t for t in (text(tags.get(0x010F)), text(tags.get(0x0110))) if t)  # Make, Model
    focal, equiv, zoom = (number(exif_tags.get(tag)) for tag in (0x920A, 0xA405, 0xA404))
    parts = [body] if body else []
    parts += [f"{focal:g} mm"] if focal else []
    parts += [f"{equiv:g} mm equiv."] if equiv else []
    parts += [f"digital zoom {zoom:g}x"] if zoom and zoom != 1 else []
    return ", ".join(parts)


def upright_folder(work: Path, root: Path, images: list, turned: set[str]) -> Path:
    """work/UPRIGHT holding every image of `images` ([name, sha1] under `root`): an upright copy
    of each `turned` one (COLMAP reads the stored pixels and ignores EXIF orientation), a link
    to the others. A copy is made again only when its photo changed (UPRIGHT/upright.json, the
    `Manifest` of the copies)."""
    folder = work / UPRIGHT
    with Manifest.load(folder / "upright.json") as made:
        for name, digest in images:
            target, source = folder / name, (root / name).resolve()
            make_folder(target.parent)
            if name in turned:
                if target.is_symlink() or not made.is_done(name, digest, [target]):
                    target.unlink(missing_ok=True)
                    write_upright(source, target)
                    made.done(name, digest)
            elif not (target.is_symlink() and os.readlink(target) == str(source)):
                target.unlink(missing_ok=True)
                made.frames.pop(name, None)
                os.symlink(source, target)
    return folder


def _resolve_images(images: str | Path | Sequence[str | Path]) -> tuple[Path, list[str], Path]:
    """(root folder, names relative to it, what to name in errors) from a folder or a list of files."""
    if isinstance(images, (str, Path)):
        root = Path(images)
        if not root.exists():
            raise SplatfilmError(f"{root}: no such folder")
        paths = list_images(root)
        if not paths:
            note = unread_photos_note(root)
            raise SplatfilmError(f"{root}: " + (note if note else f"no images ({', '.join(PHOTO_SUFFIXES)})"))
        return root, [p.name for p in paths], root
    paths = [Path(p) for p in images]
    if not paths:
        raise SplatfilmError("run_sfm: no images given")
    for p in paths:
        if not p.is_file():
            raise SplatfilmError(f"{p}: no such image")
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
    names = [p.resolve().relative_to(root).as_posix() for p in paths]
    if len(set(names)) != len(names):
        raise SplatfilmError(f"{root}: the same image is listed twice")
    return root, names, root


def check_images(root: Path, names: Sequence[str]) -> dict[tuple[int, int, str], list[str]]:
    """The image names grouped by (width, height, lens) (see image_camera), each group in the
    order of `names`, the groups in the order of their first image; raises for an unreadable file."""
    groups: dict[tuple[int, int, str], list[str]] = {}
    for name in names:
        groups.setdefault(image_camera(root / name), []).append(name)
    return groups
