"""PNG files byte by byte, where Pillow cannot write or read them: 16-bit RGB and RGBA
(`encode_png16`, `decode_png16`; Pillow holds 16 bits in grey images only, and reads 16-bit
colour as 8-bit), chunks added to PNG bytes (`png_chunk`, `png_itxt`, `png_with_chunk`) and
read from them (`png_chunks`, `png_text`).
io.images writes frames with these; io.provenance seals 16-bit frames with them."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SRGB_INTENT = b"\x00"  # an sRGB chunk's rendering intent: perceptual
# zlib level of the PNGs splatfilm writes (io.images, io.provenance, encode_png16): 1, not
# Pillow's and zlib's 6. A film's frames are intermediates, read once into a movie or a
# grade: at 6 writing a 720p frame cost as much CPU as rendering it at demo size; 1 writes it
# in about a third of the CPU time (0.07 s against 0.19 s) for files about 11% larger (1.81 MB
# against 1.63 MB); 3 wins back 1.5% of that for 30% more time. The pixels are the same.
PNG_COMPRESS_LEVEL = 1


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type (4 ASCII bytes), body, CRC."""
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_itxt(keyword: str, text: str, compressed: bool = False) -> bytes:
    """An iTXt chunk holding `text` (UTF-8) under `keyword` (no language tag), zlib-compressed
    when asked, as Pillow's PngInfo.add_itxt writes it."""
    import zlib

    body = text.encode("utf-8")
    return png_chunk(b"iTXt", keyword.encode("latin-1") + b"\x00" + (b"\x01\x00" if compressed else b"\x00\x00")
                     + b"\x00\x00" + (zlib.compress(body) if compressed else body))


def png_with_chunk(png: bytes, chunk: bytes) -> bytes:
    """PNG bytes with `chunk` (`png_chunk`) inserted right after IHDR, before any IDAT."""
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR's length and type, its 13 bytes, its CRC
    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("png_with_chunk: not a PNG starting with IHDR")
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def encode_png16(pixels: np.ndarray, chunks: list[bytes] = ()) -> bytes:
    """PNG bytes of 16-bit pixels uint16 [H,W,3|4] (RGB or RGBA), with `chunks` (`png_chunk`)
    before the image data. Pillow writes 16-bit grey only, so the file is made here: each row
    with PNG's Sub filter (smooth gradients compress), deflated at PNG_COMPRESS_LEVEL."""
    import zlib

    h, w, c = pixels.shape
    if c not in (3, 4) or pixels.dtype != np.uint16:
        raise ValueError("encode_png16: expected uint16 [H,W,3|4]")
    rows = np.ascontiguousarray(pixels.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    bpp = 2 * c
    filtered = rows.copy()
    filtered[:, bpp:] = rows[:, bpp:] - rows[:, :-bpp]  # uint8 arithmetic wraps, as the filter wants
    raw = np.concatenate([np.ones((h, 1), np.uint8), filtered], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2 if c == 3 else 6, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + b"".join(chunks)
            + png_chunk(b"IDAT", zlib.compress(raw, PNG_COMPRESS_LEVEL)) + png_chunk(b"IEND", b""))


def png_chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, body) of each chunk of PNG bytes, in file order (CRCs not checked); a chunk cut
    short by the file's end gives what there is of it."""
    off = 8
    while off + 8 <= len(png):
        n, kind = struct.unpack(">I4s", png[off:off + 8])
        yield kind, png[off + 8:off + 8 + n]
        off += 12 + n


def png_text(png: bytes) -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) of PNG bytes, keyword -> text, wherever they lie
    (before or after the image data), a later chunk of a keyword winning, as Pillow's
    `PngImageFile.text` reads them, but without decoding the pixels. A chunk that does not
    decode (bad compression or UTF-8) is left out, as Pillow leaves it."""
    import zlib

    text = {}
    for kind, body in png_chunks(png):
        if kind not in (b"tEXt", b"zTXt", b"iTXt") or b"\x00" not in body:
            continue
        keyword, rest = body.split(b"\x00", 1)
        try:
            if kind == b"tEXt":
                value = rest.decode("latin-1")
            elif kind == b"zTXt":
                value = zlib.decompress(rest[1:]).decode("latin-1")
            else:  # compression flag, method, language tag \0, translated keyword \0, text
                flag, rest = rest[:1], rest[2:]
                rest = rest.split(b"\x00", 2)[2]
                value = (zlib.decompress(rest) if flag == b"\x01" else rest).decode("utf-8")
        except (zlib.error, UnicodeError, IndexError):
            continue
        text[keyword.decode("latin-1")] = value
    return text


def png_bit_depth(png: bytes) -> int:
    """The bits per sample a PNG's IHDR says (1, 2, 4, 8 or 16); 0 for bytes that are not a PNG."""
    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR" or len(png) < 25:
        return 0
    return png[24]


def decode_png16(png: bytes) -> np.ndarray:
    """The pixels uint16 [H,W,3|4] of a 16-bit RGB or RGBA PNG, non-interlaced (what
    `encode_png16` and other writers make; Pillow reads such a file as 8-bit). ValueError for
    another kind of PNG."""
    import zlib

    if png_bit_depth(png) != 16:
        raise ValueError("decode_png16: not a 16-bit PNG")
    w, h, _, colour, _, _, interlace = struct.unpack(">IIBBBBB", png[16:29])
    if colour not in (2, 6) or interlace:
        raise ValueError("decode_png16: only non-interlaced 16-bit RGB or RGBA")
    c = 3 if colour == 2 else 4
    bpp, stride = 2 * c, w * c * 2
    idat = [body for kind, body in png_chunks(png) if kind == b"IDAT"]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, stride + 1)
    out = np.zeros((h, stride), np.int64)
    prev = np.zeros(stride, np.int64)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int64)
        if f == 1:  # Sub: a running sum per byte of a pixel
            line = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) % 256
        elif f == 2:
            line = (line + prev) % 256
        elif f in (3, 4):  # Average and Paeth depend on the byte just decoded: byte by byte
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, cc = prev[i], (prev[i - bpp] if i >= bpp else 0)
                if f == 3:
                    line[i] = (line[i] + (a + b) // 2) % 256
                else:
                    p = a + b - cc
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else cc)) % 256
        elif f != 0:
            raise ValueError(f"decode_png16: unknown row filter {f}")
        out[y] = prev = line
    return out.astype(np.uint8).view(">u2").reshape(h, w, c).astype(np.uint16)
