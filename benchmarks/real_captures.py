"""Public real captures for `benchmarks/fit.py --data DIR`: fetch (git, needs network) and prepare.

    python benchmarks/real_captures.py prepare flowerpot /tmp/real/flowerpot   # 80 phone photos, bare (SfM)
    python benchmarks/real_captures.py prepare lund /tmp/real/lund             # 29 phone photos, bare (SfM)
    python benchmarks/real_captures.py prepare fox /tmp/real/fox               # 50 frames, transforms.json, OPENCV
    python benchmarks/real_captures.py prepare sceaux /tmp/real/sceaux         # 11 photos of a castle, bare (SfM)
    python benchmarks/real_captures.py fixture flowerpot tests/fixtures/flowerpot  # rebuild a test fixture's cut
    python benchmarks/real_captures.py fixture lund tests/fixtures/lund

`--source CLONE` uses an existing clone (or any folder laid out like the repository) instead
of cloning the repository at its pinned commit into a temporary folder. Nothing here runs in
the tests; the fixture it writes is committed (tests/fixtures/flowerpot, see its README.md).

| name      | what                                                           | licence                              |
|-----------|----------------------------------------------------------------|--------------------------------------|
| flowerpot | a clay pot on a printed scale target, turntable, Meizu m1 note; all 80 photos, 49 upright and 31 landscape | CC BY-SA 4.0 (README.md, license.md) |
| lund      | a walk down a street of terraced houses in Lund, phone photos  | BSD-2-Clause (the repository LICENSE)|
| fox       | a mounted fox head on wallpaper, phone video frames, OPENCV k1 k2 p1 p2 | NVIDIA Source Code License-NC: non-commercial; never committed here |
| sceaux    | the facade of the Château de Sceaux, 11 photos (openMVG's sample) | none stated, (c) 2012 Pierre Moulon: fetched to measure, never committed here |
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Source:
    repo: str          # https clone URL
    commit: str        # the commit the figures in benchmarks/README.md were made from
    subdir: str        # the capture inside the repository
    licence: str
    licence_where: str


SOURCES = {
    "flowerpot": Source("https://github.com/natowi/dataset_flowerpot", "bfef9dc6642da5f5b3cc0fdae5816d4bfd5d59b5",
                        "full_dataset", "CC BY-SA 4.0 (by Natowi)", "README.md and license.md of the repository"),
    "lund": Source("https://github.com/mapillary/OpenSfM", "238744cdf3b5d50149c50d136a87f7fea25ad5cd",
                   "data/lund/images", "BSD-2-Clause (c) 2014 mapillary",
                   "LICENSE at the repository root; data/ carries no other licence"),
    "fox": Source("https://github.com/NVlabs/instant-ngp", "abe236ee00cf90cfca6e36e65c00435d5b21f50a",
                  "data/nerf/fox", "NVIDIA Source Code License-NC (non-commercial use only)",
                  "LICENSE.txt and README.md 'License and Citation' of the repository"),
    "sceaux": Source("https://github.com/openMVG/ImageDataset_SceauxCastle",
                     "fde7f5faba555e3c54700477c304488613346a19", "images",
                     "no licence stated; Copyright 2012 Pierre MOULON (measurement only, never committed)",
                     "Readme.txt of the repository"),
}

# Flowerpot: the photos are 3104x4192 (13 MP); SfM and fitting on 2 CPU cores want an eighth
# of that, 388x524 (an exact factor, so intrinsics scale exactly), as the fixture keeps them.
FLOWERPOT_PREPARE_FACTOR = 8
SCEAUX_PREPARE_FACTOR = 4  # 2832x2128 -> 708x532
FIXTURE_FACTOR = 8
FIXTURE_SFM_FACTOR = 4  # the fixture's own model: SfM on twice the size it keeps
FIXTURE_EVERY = 3   # every 3rd portrait photo: 13 of the side ring (about 28 degrees apart), 3 from above
FIXTURE_COUNT = 16
FIXTURE_QUALITY = 90
# Lund: all 29 photos at half size (512x384). Forward motion down a street: COLMAP's incremental
# mapping finds no start it trusts there, global mapping chains them (tests/fit/test_sfm.py).
LUND_FIXTURE_FACTOR = 2


def checkout(name: str, source: Path | None) -> Path:
    """The folder of capture `name`: inside `source` when given, else a sparse clone at the pinned commit."""
    src = SOURCES[name]
    if source is not None:
        for cand in (source / src.subdir, source):
            if cand.is_dir():
                return cand
        raise SystemExit(f"{source}: no {src.subdir} here")
    dest = Path(tempfile.mkdtemp(prefix=f"splatfilm-{name}-"))
    print(f"cloning {src.repo} ({src.subdir} at {src.commit[:10]}) into {dest}")
    run = lambda *a: subprocess.run(["git", *a], cwd=dest, check=True)  # noqa: E731
    run("init", "-q")
    run("remote", "add", "origin", src.repo)
    run("sparse-checkout", "set", "--no-cone", src.subdir, "/LICENSE*", "/README*", "/license*")
    run("fetch", "-q", "--depth", "1", "--filter=blob:none", "origin", src.commit)
    run("checkout", "-q", "FETCH_HEAD")
    return dest / src.subdir


def _jpegs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))


def _portrait(paths: list[Path]) -> list[Path]:
    """The flowerpot photos taken upright (49 of 80: a ring around the pot and a few from above;
    the other 31, a low ring, are landscape); the fixture keeps to these, one camera."""
    from PIL import Image

    keep = []
    for p in paths:
        with Image.open(p) as im:
            if im.height > im.width:
                keep.append(p)
    return keep


def exif_exposure(path: Path) -> dict:
    """The exposure a photo's EXIF records: exposure time (s), ISO, f-number, focal length (mm)."""
    from PIL import Image
    from PIL.ExifTags import IFD

    with Image.open(path) as im:
        exif = im.getexif().get_ifd(IFD.Exif)
    value = lambda tag: None if exif.get(tag) is None else float(exif.get(tag))  # noqa: E731
    return {"exposure_time_s": value(33434), "iso": value(34855), "f_number": value(33437),
            "focal_length_mm": value(37386)}


def _downscale(src: Path, dst: Path, factor: int, quality: int) -> tuple[int, int]:
    """Box-filter `src` down by an integer factor into a JPEG without metadata; its size."""
    from PIL import Image, ImageOps

    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.width // factor, im.height // factor
        im.resize((w, h), Image.BOX).save(dst, quality=quality)
    return w, h


def prepare(name: str, out: Path, source: Path | None) -> None:
    """Write capture `name` into `out` as `splatfilm fit` takes it (bare images/ or transforms.json)."""
    src = SOURCES[name]
    folder = checkout(name, source)
    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    if name == "flowerpot":
        for p in _jpegs(folder):  # 49 upright and 31 landscape: SfM gives each size its camera
            _downscale(p, out / "images" / p.name, FLOWERPOT_PREPARE_FACTOR, 92)
    elif name == "lund":
        for p in _jpegs(folder):
            shutil.copyfile(p, out / "images" / p.name)
    elif name == "sceaux":
        for p in _jpegs(folder):
            _downscale(p, out / "images" / p.name.lower(), SCEAUX_PREPARE_FACTOR, 92)
    else:  # fox: instant-ngp's transforms.json (nerfstudio reads it as it is) and its frames
        # The file lists 67 frames, the repository keeps 50 of their images (commit "Smaller fox
        # dataset"); instant-ngp skips the missing ones, splatfilm refuses them: keep the 50.
        meta = json.loads((folder / "transforms.json").read_text())
        frames = [f for f in meta["frames"] if (folder / f["file_path"]).exists()]
        print(f"fox: {len(meta['frames']) - len(frames)} of {len(meta['frames'])} frames have no image; left out")
        (out / "transforms.json").write_text(json.dumps({**meta, "frames": frames}, indent=1))
        for p in _jpegs(folder / "images"):
            shutil.copyfile(p, out / "images" / p.name)
    (out / "SOURCE.txt").write_text(f"{src.repo} at {src.commit}, {src.subdir}\nlicence: {src.licence} "
                                    f"({src.licence_where})\n")
    print(f"{name}: {len(_jpegs(out / 'images'))} images in {out} ({src.licence})")


def compact_text_model(sparse: Path) -> None:
    """Shrink a COLMAP text model in place: keep only the keypoints that observe a 3D point
    (renumbering the tracks), keypoints to 1/1000 px and points to 7 digits (the fixture's
    images.txt would otherwise hold every SIFT keypoint, 7 MB)."""
    lines = (sparse / "images.txt").read_text().splitlines()
    out, remap, i = [], {}, 0
    while i < len(lines):
        if lines[i].startswith("#"):
            out.append(lines[i])
            i += 1
            continue
        head, pts = lines[i], lines[i + 1].split()
        image_id = int(head.split()[0])
        kept = []
        for k in range(0, len(pts), 3):
            if pts[k + 2] != "-1":
                remap[(image_id, k // 3)] = len(kept)
                kept.append(f"{float(pts[k]):.3f} {float(pts[k + 1]):.3f} {pts[k + 2]}")
        out += [head, " ".join(kept)]
        i += 2
    (sparse / "images.txt").write_text("\n".join(out) + "\n")
    pts_out = []
    for line in (sparse / "points3D.txt").read_text().splitlines():
        if line.startswith("#"):
            pts_out.append(line)
            continue
        f = line.split()
        track = [f"{f[j]} {remap[(int(f[j]), int(f[j + 1]))]}" for j in range(8, len(f), 2)]
        pts_out.append(" ".join([f[0], *(f"{float(x):.7g}" for x in f[1:4]), *f[4:7], f"{float(f[7]):.4f}", *track]))
    (sparse / "points3D.txt").write_text("\n".join(pts_out) + "\n")


def make_fixture(out: Path, source: Path | None, work: Path | None = None) -> None:
    """tests/fixtures/flowerpot: 16 of the upright flowerpot photos at 1/8 size, and a COLMAP model
    (one OPENCV camera) made by SfM on the same photos at 1/4 size, scaled to 1/8."""
    import pycolmap

    from splatfilm.fit.sfm import run_sfm

    folder = checkout("flowerpot", source)
    picks = _portrait(_jpegs(folder))[::FIXTURE_EVERY][:FIXTURE_COUNT]
    work = work or Path(tempfile.mkdtemp(prefix="splatfilm-fixture-"))
    (work / "images").mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for p in picks:
        _downscale(p, work / "images" / p.name, FIXTURE_SFM_FACTOR, 95)
        w, h = _downscale(p, out / "images" / p.name, FIXTURE_FACTOR, FIXTURE_QUALITY)
    model = run_sfm(work / "images", work / "sfm", camera_model="OPENCV")  # the same model every time
    rec = pycolmap.Reconstruction(str(model))
    scale = FIXTURE_SFM_FACTOR / FIXTURE_FACTOR
    for cam in rec.cameras.values():
        cam.rescale(w, h)
    for image in rec.images.values():
        for p in image.points2D:  # pycolmap hands out references: scaled in place
            p.xy = p.xy * scale
    rec.update_point_3d_errors()
    sparse = out / "sparse" / "0"
    sparse.mkdir(parents=True, exist_ok=True)
    rec.write_text(str(sparse))
    compact_text_model(sparse)
    exif = {p.name: exif_exposure(p) for p in picks}
    (out / "exif.json").write_text(json.dumps(exif, indent=1) + "\n")
    print(f"fixture: {len(picks)} images {w}x{h}, {rec.num_reg_images()} registered, {rec.num_points3D()} points, "
          f"mean reprojection error {rec.compute_mean_reprojection_error():.3f} px -> {out}")
    print(json.dumps({"camera": rec.cameras[1].todict()}, default=str))


def make_lund_fixture(out: Path, source: Path | None) -> None:
    """tests/fixtures/lund: the 29 Lund street photos at half size, without EXIF, and the licence."""
    folder = checkout("lund", source)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for p in _jpegs(folder):
        w, h = _downscale(p, out / "images" / p.name, LUND_FIXTURE_FACTOR, FIXTURE_QUALITY)
    licence = next((c / "LICENSE" for c in (folder, *folder.parents) if (c / "LICENSE").is_file()), None)
    if licence is None:
        raise SystemExit(f"{folder}: no LICENSE above it; the fixture must carry OpenSfM's BSD-2-Clause text")
    shutil.copyfile(licence, out / "LICENSE")
    print(f"fixture: {len(_jpegs(out / 'images'))} images {w}x{h} -> {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write a capture for benchmarks/fit.py --data")
    p.add_argument("name", choices=sorted(SOURCES))
    p.add_argument("out", type=Path)
    p.add_argument("--source", type=Path, help="an existing clone instead of cloning (needs network)")
    p = sub.add_parser("fixture", help="rebuild tests/fixtures/flowerpot or tests/fixtures/lund")
    p.add_argument("name", choices=("flowerpot", "lund"))
    p.add_argument("out", type=Path)
    p.add_argument("--source", type=Path)
    p.add_argument("--work", type=Path, help="flowerpot: where the 1/4-size photos and their SfM go "
                                             "(reused when unchanged)")
    args = parser.parse_args()
    if args.cmd == "prepare":
        prepare(args.name, args.out, args.source)
    elif args.name == "lund":
        make_lund_fixture(args.out, args.source)
    else:
        make_fixture(args.out, args.source, args.work)


if __name__ == "__main__":
    main()
