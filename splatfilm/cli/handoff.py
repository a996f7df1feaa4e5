"""The hand-off options of `splatfilm render` (--passes, --masters, --burn-in, --sign,
--no-provenance, --png-bits, --exr-half, --exr-compression) and the `splatfilm provenance FILE` command."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from splatfilm.cli.args import Subparsers
from splatfilm.io.images import EXR_COMPRESSIONS, ExrFormat

if TYPE_CHECKING:
    from splatfilm.film.script import Film


@dataclass
class Handoff:
    """What `render` hands on besides frames and the edit: the passes, the ProRes masters
    (with burn-in), provenance, the C2PA key and certificate (or None), and `kept`: the codecs
    of masters already in the output folder, each with its recorded burn-in
    (masters.kept_masters, looked up once a render), which the render remakes too. png_bits:
    8 or 16 bits a channel in the frames' PNGs (the masters are made from them); exr: how the
    EXRs (passes, alpha, depth) store their channels (io.images.ExrFormat)."""

    passes: tuple[str, ...]
    masters: tuple[str, ...]
    burn_in: bool
    provenance: bool
    sign: tuple[str, str] | None
    kept: dict[str, bool] = field(default_factory=dict)
    png_bits: int = 8
    exr: ExrFormat = field(default_factory=ExrFormat)

    @property
    def needs_alpha(self) -> bool:
        """ProRes 4444 carries the frames' alpha, so the render writes it beside them."""
        return "prores4444" in self.masters + tuple(self.kept) and not self.passes


def add_handoff_options(p: argparse.ArgumentParser) -> None:
    """Add render's hand-off options to `p`: --passes, --masters, --burn-in, --sign, --no-provenance,
    --png-bits, --exr-half, --exr-compression."""
    p.add_argument("--passes", nargs="?", const="all", metavar="LIST",
                   help="also write a multi-layer scene-linear EXR per frame (SHOT/SHOT.FRAME.exr): all (default) "
                        "or some of rgba,depth,mattes,motion")
    p.add_argument("--masters", metavar="LIST", help="ProRes masters of every shot and the cut in OUT/masters: "
                                                     "prores422hq, prores4444 (with alpha) or both, comma-separated")
    p.add_argument("--burn-in", action="store_true", help="burn the shot name, frame and lens into the masters (dailies)")
    p.add_argument("--sign", nargs=2, metavar=("KEY", "CERT"),
                   help="sign every PNG, MP4 and MOV with C2PA: a PEM private key (ES256 or PS256) and its PEM "
                        "certificate chain (signer first, then its CA)")
    p.add_argument("--no-provenance", action="store_true",
                   help="leave out the provenance record every frame, EXR and movie otherwise carries")
    p.add_argument("--png-bits", type=int, choices=[8, 16], default=8,
                   help="bits a channel in the frames' PNGs (default 8); 16 for grading without banding, and the "
                        "masters' 10 bits then come from them")
    p.add_argument("--exr-half", action="store_true",
                   help="store the EXRs' channels (passes, --alpha) as 16-bit half floats, depth (Z) still "
                        "32-bit: about half the size")
    p.add_argument("--exr-compression", choices=list(EXR_COMPRESSIONS), default="zip",
                   help="the EXRs' compression (passes, --alpha, --depth; default zip; piz suits grainy pictures, "
                        "dwaa and dwab are lossy and smallest, pxr24 rounds floats to 24 bits)")


def handoff_options(args: argparse.Namespace) -> Handoff:
    """The hand-off options checked (names, key and certificate files), before the film is
    parsed (`render_film` parses it)."""
    from splatfilm.errors import SplatfilmError
    from splatfilm.film.passes import parse_passes
    from splatfilm.handoff.masters import kept_masters, parse_masters

    passes = parse_passes(args.passes)
    masters = parse_masters(args.masters)
    if args.burn_in and not masters:
        raise SplatfilmError("--burn-in: burns into the ProRes masters; give --masters too")
    exr = ExrFormat(args.exr_half, args.exr_compression)
    if exr != ExrFormat() and not (passes or getattr(args, "alpha", False) or getattr(args, "depth", False)):
        raise SplatfilmError("--exr-half and --exr-compression: they shape the passes, alpha and depth EXRs; "
                             "give --passes, --alpha or --depth too")
    if masters and getattr(args, "frames_only", False):
        raise SplatfilmError("--masters are made from the edit, which --frames-only leaves for a later run")
    if args.sign:
        for path, what in zip(args.sign, ("key", "certificate")):
            try:
                open(path, "rb").close()
            except OSError as e:
                raise SplatfilmError(f"{path}: cannot read the {what} for --sign: {e.strerror or e}") from None
        if args.no_provenance:
            raise SplatfilmError("--sign signs the provenance record: leave out --no-provenance")
        from splatfilm.handoff.provenance import c2pa_module

        c2pa_module()
    kept = kept_masters(args.output)
    return Handoff(passes, masters, args.burn_in, not args.no_provenance,
                   tuple(args.sign) if args.sign else None, kept, args.png_bits, exr)


def finish_render(h: Handoff, film: Film, output: str, frames_only: bool = False) -> None:
    """After the frames and the movies of `film` (as render_film parsed it): the timeline
    (.otio, .edl), the masters (those asked for and those already there, so that none shows
    old frames; with `frames_only` both wait, as the movies do), then the signatures."""
    if not frames_only:
        from splatfilm.handoff.editorial import write_editorial

        write_editorial(film, output, log=print)
    if (h.masters or h.kept) and not frames_only:
        from splatfilm.handoff.masters import write_masters

        paths = write_masters(film, output, h.masters, burn_in=h.burn_in, provenance=h.provenance, kept=h.kept)
        print(f"masters: {len(paths)} ProRes file(s) in {output}/masters")
    if h.sign:
        from splatfilm.handoff.provenance import sign_outputs

        n = sign_outputs(output, *h.sign)
        print(f"signed {n} file(s) with C2PA")


def _cmd_provenance(args: argparse.Namespace) -> None:
    from splatfilm.errors import SplatfilmError
    from splatfilm.handoff.provenance import describe, inspect_file

    failed = []
    for path in args.files:
        ins = inspect_file(path)
        print("\n".join(describe(ins)))
        if ins.ok:
            print("  verified")
        else:
            failed.append(f"{ins.path}: {'; '.join(ins.problems)}")
    if failed:
        raise SplatfilmError(failed[0] if len(failed) == 1 else f"{len(failed)} files fail verification; first: "
                             f"{failed[0]}")


def add_provenance_command(sub: Subparsers) -> None:
    """Add `splatfilm provenance FILE...` (print and verify a rendered file's record) to `sub`."""
    p = sub.add_parser("provenance", help="print and verify the provenance a rendered file carries",
                       description="Print how FILE (a frame .png, passes .exr, .mp4 or ProRes .mov that splatfilm "
                                   "wrote) was made -- splatfilm version, film script and asset hashes, shot and "
                                   "frame, IPTC digital source type -- and verify it: the pictures must match the "
                                   "hash in the record, and a C2PA signature must validate. Exit status 2 when not.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=_cmd_provenance)
