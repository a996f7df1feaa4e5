"""How many threads COLMAP's CPU SIFT extraction can run on in the memory there is, for SfM
(`fit.sfm`) and triangulation (`fit.triangulate`).

COLMAP's CPU SIFT holds a scale space for each image it is extracting, one image a thread,
about 2.2 GB for a 12 MP photo (scaled to 3200x2400 first, then doubled in each direction by its
first octave); matching, mapping and the checks stay near 0.6 GB. On every core of a 16-core
workstation, 16 or more phone photos of one size would need 35 GB, and a process killed for
memory dies without a word. So where the caller leaves the threads to COLMAP (-1), SIFT
extraction runs on as many as the memory left holds (`sift_threads`: the measured
SIFT_BYTES_PER_PIXEL at the largest photo's size against `available_memory`, cgroup limits
included), and the log line says so where that is fewer than the cores (`extraction_threads`);
matching keeps every core. The features do not depend on how many threads extracted them (each
image's are its own, and the images are numbered by name after), so the model is the same
either way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from splatfilm.fit.feature_database import SIFT_MAX_IMAGE_SIZE

# COLMAP's CPU SIFT (VLFeat) extracts one image per thread, each thread holding its image's scale
# space: float32 Gaussian, difference-of-Gaussian and gradient levels of the first octave, which
# first_octave = -1 makes twice the image's width and height (about 18 planes in use, 288 bytes a
# pixel of the image). Measured (peak resident set less the process's own, one thread, pycolmap
# 4.2; benchmarks/README.md): 228 bytes a pixel of the image as extracted at 1000x750, 272 at
# 2000x1500, 280-284 at 1600x1200 to 3200x2400 (2.2 GB for a 12 MP photo); two threads and four
# (8 photos) take two and four times that. Rounded up for the photos in flight between the
# threads (decoded at full size).
SIFT_BYTES_PER_PIXEL = 300


def sift_thread_bytes(size: tuple[int, int], max_image_size: int = SIFT_MAX_IMAGE_SIZE) -> int:
    """Bytes one thread of COLMAP's CPU SIFT extraction holds for an image of `size` (width,
    height, pixels) once the extractor has scaled it to at most `max_image_size` pixels on its
    longer side: SIFT_BYTES_PER_PIXEL a pixel of the scaled image (2.3 GB for a 4000x3000
    photo, extracted at 3200x2400; 0.58 GB at 1600x1200)."""
    width, height = size
    scale = min(1.0, max_image_size / max(width, height, 1))
    return SIFT_BYTES_PER_PIXEL * round(width * scale) * round(height * scale)


def sift_threads(available: int | None, size: tuple[int, int], cores: int, images: int | None = None) -> int:
    """How many threads COLMAP's CPU SIFT extraction of images of `size` (width, height, pixels;
    the largest, for several) should run on: one a core (`cores`, what COLMAP's -1 takes), no
    more than `images` (each thread extracts one image at a time; None: any number), and no
    more than `available` bytes of memory hold at sift_thread_bytes(size) a thread. At least 1,
    even where that one does not fit. available None (unknown): not bounded by memory."""
    threads = max(1, min(cores, images) if images else cores)
    if available is not None:
        threads = min(threads, available // sift_thread_bytes(size))
    return max(1, int(threads))


def available_memory(root: Path = Path("/")) -> int | None:
    """Bytes of memory this process can still take: the kernel's MemAvailable (/proc/meminfo),
    or less where a cgroup memory limit on this process (a container, a batch job) leaves less
    room, at any level from its group up to the mount's root (cgroup v2 memory.max, v1
    memory.limit_in_bytes, less the usage without the page cache it can reclaim,
    inactive_file, as `docker stats` counts it). None where /proc/meminfo cannot be read (not
    Linux). root: the file system's root (tests point it at a folder)."""
    try:
        meminfo = (root / "proc" / "meminfo").read_text()
    except OSError:
        return None
    available = None
    for line in meminfo.splitlines():
        key, _, value = line.partition(":")
        if key == "MemAvailable" and value.split()[:1] and value.split()[0].isdigit():
            available = int(value.split()[0]) * 1024  # kB
    if available is None:
        return None
    for room in _cgroup_rooms(root):
        available = min(available, room)
    return max(0, available)


def _cgroup_rooms(root: Path) -> list[int]:
    """Bytes left under each memory limit set on this process's cgroups (see available_memory)."""
    try:
        lines = (root / "proc" / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return []
    mount = root / "sys" / "fs" / "cgroup"
    rooms = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "" and path:  # v2: one hierarchy
            base, files = mount, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            base, files = mount / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
        else:
            continue
        # A container sees its own group mounted as the root while /proc names its path on the
        # host: look at the named group and each level above it, the mount's root included.
        group = Path(path.lstrip("/"))
        for folder in dict.fromkeys([base / group, *(base / p for p in group.parents)]):
            room = _cgroup_room(folder, *files)
            if room is not None:
                rooms.append(room)
    return rooms


def _cgroup_room(folder: Path, limit_file: str, usage_file: str, inactive_key: str) -> int | None:
    try:
        limit_text = (folder / limit_file).read_text().strip()
        usage = int((folder / usage_file).read_text().strip())
    except (OSError, ValueError):
        return None
    if not limit_text.isdigit() or int(limit_text) >= 1 << 60:  # "max", or v1's "no limit" (about 2^63)
        return None
    inactive = 0
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == inactive_key and value.strip().isdigit():
                inactive = int(value)
    except OSError:
        pass
    return int(limit_text) - max(0, usage - inactive)


def extraction_threads(num_threads: int, sizes: Sequence[tuple[int, int]], most_images: int,
                       hint: str = "") -> tuple[int, str]:
    """(threads for SIFT extraction, what the log line adds): `num_threads` where the caller
    chose (> 0); else sift_threads for this machine's cores and available_memory, the largest of
    `sizes` (width, height) and `most_images` (the largest group extracted at once), and -1
    (all, as before) where that takes every core it could use. Where fewer, the note says why,
    and `hint` how to choose."""
    if num_threads > 0 or not sizes:
        return num_threads, ""
    size = max(sizes, key=sift_thread_bytes)
    cores = os.cpu_count() or 1
    available = available_memory()
    threads = sift_threads(available, size, cores, most_images)
    usable = min(cores, most_images)
    each = sift_thread_bytes(size)
    short = available is not None and each > available  # not even one thread fits
    if threads >= usable and not short:
        return num_threads, ""
    amount = lambda b: f"{b / 1e9:.1f} GB" if b >= 1e8 else f"{b / 1e6:.1f} MB"  # noqa: E731
    note = (f"a thread takes about {amount(each)} at this size and {amount(available)} of memory is free"
            + (", so it may run out" if short else "") + hint)
    if threads >= usable:  # one core: nothing to take away, only the warning
        return num_threads, "; " + note
    return threads, f"; on {threads} thread{'s' if threads > 1 else ''}, not {usable}: " + note
