"""Provenance: how a file splatfilm wrote was made, carried inside the file itself.

A record (a JSON object) names the splatfilm version, the film script and its sha256, every
asset's content hash and how it was made (`asset_sources`: ORIGINS, from its sidecar), the shot
and frame(s), the colour encoding, and the IPTC digital source type (NewsCodes vocabulary
http://cv.iptc.org/newscodes/digitalsourcetype/): "compositeCapture" (a composite of elements
that are all captures of real life) for a frame rendered only from Gaussian assets fitted to
captured images; "composite" (a composite of elements, any of which may or may not be generative
AI) as soon as one asset is not known to be a capture: a mesh import, a procedural asset, a
splat with no record of its making ("compositeSynthetic" is not it: IPTC defines that as a
composite with at least one generative AI element); "compositeWithTrainedAlgorithmicMedia" once
a generative (diffusion) refiner has changed the frame. Sealed into a file, the record also
holds `content_sha256`, a hash of the file's pixels (PNG, EXR) or of its coded video
packets (MP4, MOV), so a file whose pictures were changed afterwards fails verification
(read back beside each writer with the hash of the content now: `read_png_provenance`,
io.images.read_exr_provenance, io.video.read_movie_provenance; `splatfilm provenance FILE`,
handoff/provenance.py, checks the two).

Where it goes: PNG, an iTXt chunk "splatfilm:provenance" plus an XMP packet (iTXt
"XML:com.adobe.xmp", with Iptc4xmpExt:DigitalSourceType) and an sRGB chunk; EXR, a string
attribute "splatfilm:provenance" in the header; MP4/MOV, the movie's "comment" metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from splatfilm.errors import SplatfilmError
from splatfilm.io.digest import array_digest
from splatfilm.version import __version__

KEY = "splatfilm:provenance"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
CAPTURED = IPTC + "compositeCapture"
COMPOSITE = IPTC + "composite"
REFINED = IPTC + "compositeWithTrainedAlgorithmicMedia"
# How an asset's Gaussians were made, as its sidecar records it (`assets.sidecar.asset_origin`
# names one): only "capture" lets a frame claim compositeCapture.
ORIGINS = {"capture": "fitted to captured images", "mesh": "imported from a mesh",
           "procedural": "made by a script (procedural)", "unknown": "no record of how it was made"}
DISPLAY = "display sRGB (IEC 61966-2-1): 8-bit sRGB-encoded, as the assets were fitted to photos"
LINEAR = "scene-linear Rec.709 primaries, D65 (the sRGB EOTF applied to the rendered colour)"


def provenance_record(film: str, film_sha256: str, assets: dict[str, str], shot: str | None = None,
                      frames: list[int] | None = None, refined: bool = False, colour: str = DISPLAY,
                      sources: dict[str, str] | None = None, **extra) -> dict:
    """The record of a file made from the film script `film` (its name; sha256 `film_sha256`)
    with `assets` (name -> content sha256) made as `sources` says (name -> an ORIGINS key; an
    asset missing there is "unknown"): `shot` and its film frame numbers `frames` (one for a
    still), whether a generative refiner changed the pictures, their colour encoding, and any
    `extra` fields (JSON values). The digital source type follows (module docstring)."""
    origins = {name: (sources or {}).get(name, "unknown") for name in sorted(assets)}
    captured = bool(origins) and all(o == "capture" for o in origins.values())
    made = ("fitted to captured images" if captured else "not all fitted to captured images ("
            + "; ".join(f"{name}: {ORIGINS.get(o, o)}" for name, o in origins.items()) + ")")
    record = {
        "generator": f"splatfilm {__version__}",
        "splatfilm_version": __version__,
        "film": film,
        "film_sha256": film_sha256,
        "assets": dict(sorted(assets.items())),
        "asset_sources": origins,
        "digital_source_type": REFINED if refined else CAPTURED if captured else COMPOSITE,
        "process": f"rendered from 3D Gaussian assets {made}"
                   + ("; refined by a generative (diffusion) model" if refined else ""),
        "colour": colour,
    }
    if shot is not None:
        record["shot"] = shot
    if frames is not None:
        record["frames"] = [int(f) for f in frames]
    record.update(extra)
    return record


def seal(record: dict, content_sha256: str) -> str:
    """The record with the hash of the content it describes, as compact JSON text."""
    return json.dumps({**record, "content_sha256": content_sha256}, sort_keys=True, separators=(",", ":"))


def xmp_packet(record: dict) -> str:
    """An XMP packet for the record: IPTC's DigitalSourceType, the generator, and the record
    itself as the description."""
    text = escape(json.dumps(record, sort_keys=True))
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<Iptc4xmpExt:DigitalSourceType>{escape(record["digital_source_type"])}</Iptc4xmpExt:DigitalSourceType>'
        f'<xmp:CreatorTool>{escape(record["generator"])}</xmp:CreatorTool>'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{text}</rdf:li></rdf:Alt></dc:description>'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )


def png_digest(pixels: np.ndarray) -> str:
    """The content hash of a PNG's decoded pixels [H,W,C]: uint16 for a 16-bit PNG, else 8-bit."""
    pixels = np.asarray(pixels)
    return array_digest({"pixels": pixels if pixels.dtype == np.uint16 else pixels.astype(np.uint8)})


def png_with_provenance(pixels: np.ndarray, record: dict) -> bytes:
    """PNG bytes of 8- or 16-bit pixels [H,W,3|4] (uint8 / uint16) carrying the sealed record
    (iTXt), its XMP and an sRGB chunk (the pixels are display sRGB); deflated at
    io.png.PNG_COMPRESS_LEVEL."""
    import io

    from PIL import Image, PngImagePlugin

    from splatfilm.io.png import PNG_COMPRESS_LEVEL, SRGB_INTENT, encode_png16, png_chunk, png_itxt

    sealed, xmp = seal(record, png_digest(pixels)), xmp_packet(record)
    if np.asarray(pixels).dtype == np.uint16:  # Pillow writes 16-bit grey only
        return encode_png16(pixels, [png_chunk(b"sRGB", SRGB_INTENT), png_itxt(KEY, sealed, compressed=True),
                                     png_itxt("XML:com.adobe.xmp", xmp)])
    info = PngImagePlugin.PngInfo()
    info.add(b"sRGB", SRGB_INTENT)
    info.add_itxt(KEY, sealed, zip=True)
    info.add_itxt("XML:com.adobe.xmp", xmp)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", pnginfo=info, compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def read_png_provenance(path: Path) -> tuple[str | None, str]:
    """(the sealed record's text a PNG carries, None when it carries none; `png_digest` of its
    pixels now). SplatfilmError for a file that is not a readable PNG. io.images and io.video
    read their EXRs' and movies' records the same way."""
    import io
    import zlib

    from PIL import Image

    # Pillow itself, not io.images.read_image: the record is in a text chunk, and the pixels
    # are hashed as stored (read_image turns palette, grey and 16-bit PNGs into 8-bit RGB).
    from splatfilm.io.png import decode_png16, png_bit_depth, png_text

    try:
        data = Path(path).read_bytes()
        if png_bit_depth(data) == 16 and data[25:26] in (b"\x02", b"\x06"):
            # Pillow would decode 16-bit RGB(A) to 8 bits, which are not the pixels sealed:
            # they, and the record, are read from the bytes here, the pixels decoded once.
            text, pixels = png_text(data).get(KEY), decode_png16(data)
        else:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                text = im.text.get(KEY) if hasattr(im, "text") else None
                pixels = np.asarray(im)
    except (OSError, ValueError, zlib.error) as e:
        raise SplatfilmError(f"{path}: not a readable PNG ({e})") from None
    return text, png_digest(pixels)
