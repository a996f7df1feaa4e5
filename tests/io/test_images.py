"""Images (splatfilm.io.images): every pixel layout a camera or an editor writes comes back as
8-bit RGB or RGBA as stored; EXIF orientation is read, and an upright copy written; the sRGB
transfer both ways, 8-bit rounding, box downscaling, unpremultiplying and PNG writing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from splatfilm.errors import SplatfilmError
from splatfilm.io.images import (
    downscale,
    linear_to_srgb,
    srgb_to_linear,
    to_uint8,
    unpremultiply,
    write_png,
)
from splatfilm.io.photos import (
    photo_orientation,
    read_photo,
    write_upright,
)


def _pattern(w=24, h=16) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 10, y * 15, (x + y) * 5], axis=-1).astype(np.uint8)


def test_every_layout_reads_as_8_bit_rgb_or_rgba(tmp_path):
    rgb = _pattern()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "print.jpg", quality=100)
    cmyk = read_photo(tmp_path / "print.jpg")
    assert cmyk.shape == (16, 24, 3) and np.abs(cmyk.astype(int) - rgb).mean() < 6  # not K read as alpha
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    assert read_photo(tmp_path / "grey.png").shape == (16, 24, 3)
    grey16 = (rgb[..., 0].astype(np.uint16) * 257)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    np.testing.assert_array_equal(read_photo(tmp_path / "grey16.png")[..., 1], rgb[..., 0])
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "palette.png", transparency=0)
    assert read_photo(tmp_path / "palette.png").shape == (16, 24, 4)
    Image.fromarray(np.dstack([rgb, np.full((16, 24), 200, np.uint8)])).save(tmp_path / "rgba.png")
    assert read_photo(tmp_path / "rgba.png")[0, 0, 3] == 200
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(SplatfilmError, match=r"broken\.jpg: cannot read image"):
        read_photo(tmp_path / "broken.jpg")


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_photo_stored_turned_gets_an_upright_copy(tmp_path, orientation):
    upright = Image.fromarray(_pattern())
    turn = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    upright.transpose(turn).save(tmp_path / "stored.jpg", quality=100, exif=exif.tobytes())
    assert photo_orientation(tmp_path / "stored.jpg") == orientation
    assert photo_orientation(tmp_path / "nowhere.jpg") == 1
    with Image.open(tmp_path / "stored.jpg") as im:  # the test's own premise: a viewer shows it upright
        assert ImageOps.exif_transpose(im).size == upright.size
    write_upright(tmp_path / "stored.jpg", tmp_path / "upright.jpg")
    copy = read_photo(tmp_path / "upright.jpg")
    assert copy.shape == (16, 24, 3) and np.abs(copy.astype(int) - _pattern()).mean() < 4
    with Image.open(tmp_path / "upright.jpg") as im:
        assert im.getexif().get(0x0112) == 1 and im.getexif().get(0x010F) == "PhoneMaker"


def test_srgb_decoding_and_encoding_are_inverses_and_not_clipped():
    v = np.linspace(-0.5, 2.0, 251)
    assert np.allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-12)
    assert np.isclose(srgb_to_linear(0.5), 0.21404114048223255) and np.isclose(linear_to_srgb(0.0031308), 0.04045, atol=1e-6)
    # HDR values keep their order above 1 (an EXR is not clipped); negatives mirror.
    assert srgb_to_linear(2.0) > srgb_to_linear(1.5) > 1.0 and srgb_to_linear(-0.5) == -srgb_to_linear(0.5)


def test_to_uint8_clips_and_rounds_half_up():
    assert to_uint8(np.arange(256) / 255.0).tolist() == list(range(256))
    ties = np.array([0.5, 64.5, 253.5], dtype=np.float32) / np.float32(255)  # exactly k + 0.5 once times 255
    assert to_uint8(ties).tolist() == [1, 65, 254]
    assert to_uint8(np.array([-0.2, 1.7])).tolist() == [0, 255]


def test_downscale_averages_each_block_and_keeps_the_type():
    blocks = np.kron(np.array([[0, 100], [200, 50]]), np.ones((3, 3)))  # 6 x 6, four 3 x 3 blocks
    rgb = np.repeat(blocks[..., None], 3, axis=-1).astype(np.uint8)
    small = downscale(rgb, 2, 2)
    assert small.dtype == np.uint8 and small[..., 0].tolist() == [[0, 100], [200, 50]]
    mask = (blocks[..., None] / 200).astype(np.float32)
    assert downscale(mask, 2, 2).dtype == np.float32 and np.allclose(downscale(mask, 2, 2)[..., 0], [[0, 0.5], [1, 0.25]])
    assert downscale(rgb, 6, 6) is rgb


def test_unpremultiply_takes_off_the_background_and_divides_by_alpha():
    colour, bg = np.array([0.2, 0.6, 1.0]), np.array([0.04, 0.04, 0.05])
    alpha = np.array([[[0.5], [1.0], [0.0]]])
    rgb = alpha * colour + (1 - alpha) * bg
    straight = unpremultiply(rgb, alpha, bg)
    assert np.allclose(straight[0, :2], colour) and (straight[0, 2] == 0).all()
    assert np.allclose(unpremultiply(alpha * colour, alpha)[0, 0], colour)


def test_write_png_stores_uint8_pixels_as_they_are_and_float_colour_with_straight_alpha(tmp_path):
    pixels = _pattern()
    rgba = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 77, np.uint8)], axis=-1)
    write_png(tmp_path / "u8.png", rgba)
    assert np.array_equal(read_photo(tmp_path / "u8.png"), rgba)
    alpha = np.full((2, 2, 1), 0.5)
    write_png(tmp_path / "f.png", np.full((2, 2, 3), 0.25), alpha)  # 0.25 over black at half coverage: 0.5
    assert read_photo(tmp_path / "f.png")[0, 0].tolist() == [128, 128, 128, 128]


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("provenance", [None, {"film": "f.yaml", "digital_source_type": "composite", "generator": "splatfilm"}])
def test_write_png_compresses_fast_and_keeps_the_pixels(tmp_path, provenance, bits):
    """Frames are intermediates: zlib level 1 (its header's FLEVEL 0, "fastest"), not Pillow's
    6 (FLEVEL 2), which cost as much CPU as rendering a demo frame. The same pixels."""
    rgb = np.random.default_rng(1).random((16, 24, 3))
    write_png(tmp_path / "f.png", rgb, provenance=provenance, bits=bits)
    data = (tmp_path / "f.png").read_bytes()
    at = data.index(b"IDAT")
    assert data[at + 4] == 0x78 and data[at + 5] >> 6 == 0
    if bits == 8:
        assert np.array_equal(read_photo(tmp_path / "f.png"), to_uint8(rgb))
    else:
        from splatfilm.io.images import to_uint16
        from splatfilm.io.png import decode_png16

        assert np.array_equal(decode_png16(data), to_uint16(rgb))


@pytest.mark.parametrize("provenance", [None, {"film": "f.yaml", "digital_source_type": "composite", "generator": "splatfilm"}])
def test_write_png_says_an_anamorphic_pixel_aspect_in_phys_and_nothing_else_changes(tmp_path, provenance):
    """pHYs with unit 0 (aspect only): pixels per unit (1, 2) for pixels twice as wide, so a
    reader sees 2:1; (100, 133) for 1.33. Square pixels: the same bytes as before, no pHYs."""
    import struct

    rgb = np.random.default_rng(0).random((6, 8, 3))
    write_png(tmp_path / "plain.png", rgb, provenance=provenance)
    write_png(tmp_path / "square.png", rgb, provenance=provenance, pixel_aspect=1.0)
    assert (tmp_path / "plain.png").read_bytes() == (tmp_path / "square.png").read_bytes()
    assert b"pHYs" not in (tmp_path / "plain.png").read_bytes()
    for aspect, ppu in ((2.0, (1, 2)), (1.33, (100, 133))):
        write_png(tmp_path / "wide.png", rgb, provenance=provenance, pixel_aspect=aspect)
        data = (tmp_path / "wide.png").read_bytes()
        at = data.index(b"pHYs")
        x, y, unit = struct.unpack(">IIB", data[at + 4:at + 13])
        assert (x, y, unit) == (*ppu, 0) and y / x == pytest.approx(aspect)
        assert at < data.index(b"IDAT")
        with Image.open(tmp_path / "wide.png") as im:
            assert im.info["aspect"] == ppu and "dpi" not in im.info
            assert np.array_equal(np.asarray(im), np.asarray(Image.open(tmp_path / "plain.png")))


def _chunks(data: bytes) -> list[bytes]:
    """The chunk types of PNG bytes, in order."""
    import struct

    kinds, off = [], 8
    while off + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[off:off + 8])
        kinds.append(kind)
        off += 12 + n
    return kinds


@pytest.mark.parametrize("bits", [8, 16])
def test_every_png_says_srgb_with_or_without_provenance(tmp_path, bits):
    """A PNG written without provenance (`--no-provenance`) had no sRGB chunk: only
    png_with_provenance added it, so the same frame was tagged or untagged by that option."""
    rgb = np.random.default_rng(0).random((6, 8, 3))
    for provenance in (None, {"film": "f.yaml", "digital_source_type": "composite", "generator": "splatfilm"}):
        write_png(tmp_path / "f.png", rgb, provenance=provenance, bits=bits)
        kinds = _chunks((tmp_path / "f.png").read_bytes())
        assert kinds.count(b"sRGB") == 1 and kinds.index(b"sRGB") < kinds.index(b"IDAT")
        with Image.open(tmp_path / "f.png") as im:
            assert im.info.get("srgb") == 0


def test_a_16_bit_frames_provenance_decodes_its_pixels_once(tmp_path, monkeypatch):
    """read_png_provenance decoded a 16-bit PNG twice: Pillow's load (to 8 bits, thrown away),
    then decode_png16 of the file read again. Now the record and the pixels come from one
    read of the bytes, as Pillow's text would give them, and the digest is the same."""
    import io
    import json

    from PIL import ImageFile, PngImagePlugin

    from splatfilm.io.png import decode_png16, png_chunk, png_itxt, png_text
    from splatfilm.io.provenance import png_digest, read_png_provenance

    ramp = np.repeat(np.linspace(0, 1, 64)[None, :, None], 3, axis=-1).repeat(3, axis=0)
    write_png(tmp_path / "r16.png", ramp, bits=16, provenance={"film": "f.yaml", "digital_source_type": "composite",
                                                                 "generator": "splatfilm"})
    data = (tmp_path / "r16.png").read_bytes()
    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: loads.append(im) or real_load(im))
    text, digest = read_png_provenance(tmp_path / "r16.png")
    assert not loads  # Pillow decoded nothing
    assert digest == png_digest(decode_png16(data)) and json.loads(text)["content_sha256"] == digest
    # png_text reads what Pillow's text does: tEXt, zTXt, iTXt (compressed or not), after IDAT too
    info = PngImagePlugin.PngInfo()
    info.add_text("plain", "caf\xe9")
    info.add_text("squeezed", "z" * 200, zip=True)
    info.add_itxt("wide", "\u2713 ok", lang="en", tkey="Wide")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "t.png", pnginfo=info)
    png = (tmp_path / "t.png").read_bytes()
    late = png[:-12] + png_itxt("late", "after the pixels", compressed=True) + png[-12:]
    with Image.open(io.BytesIO(late)) as im:
        assert png_text(late) == dict(im.text) and len(im.text) == 4
    assert png_text(png[:-12] + png_chunk(b"zTXt", b"bad\x00\x00nonsense") + png[-12:]).keys() == {"plain", "squeezed", "wide"}


def test_16_bit_png_frames_keep_a_smooth_ramp_and_their_provenance(tmp_path):
    """Every PNG was 8-bit: a ramp kept 256 values, near black one step is ~8% in linear light.
    16-bit PNGs keep 65536; their provenance seals the 16-bit pixels and still verifies."""
    import json

    from splatfilm.io.png import decode_png16
    from splatfilm.io.provenance import read_png_provenance

    ramp = np.repeat(np.linspace(0, 1, 2048)[None, :, None], 3, axis=-1).repeat(2, axis=0)
    write_png(tmp_path / "r8.png", ramp)
    write_png(tmp_path / "r16.png", ramp, bits=16, provenance={"film": "f.yaml", "digital_source_type": "composite", "generator": "splatfilm"})
    write_png(tmp_path / "a16.png", ramp * 0.5, np.full(ramp.shape[:2] + (1,), 0.5), bits=16)
    assert len(np.unique(read_photo(tmp_path / "r8.png"))) == 256
    pixels = decode_png16((tmp_path / "r16.png").read_bytes())
    assert pixels.dtype == np.uint16 and pixels.shape == (2, 2048, 3) and len(np.unique(pixels)) == 2048
    assert np.abs(pixels / 65535.0 - ramp).max() <= 0.5 / 65535 + 1e-12
    rgba = decode_png16((tmp_path / "a16.png").read_bytes())
    assert rgba.shape == (2, 2048, 4) and (rgba[..., 3] == 32768).all()
    assert np.abs(rgba[..., :3] / 65535.0 - ramp).max() < 2e-5  # straight colour, as the 8-bit path writes
    # Pillow and imageio read it (as 8-bit); its record verifies against the 16-bit pixels.
    with Image.open(tmp_path / "r16.png") as im:
        assert im.size == (2048, 2) and im.info.get("srgb") == 0
    text, digest = read_png_provenance(tmp_path / "r16.png")
    assert json.loads(text)["content_sha256"] == digest
    # a foreign 16-bit PNG's other row filters decode too (what a grading package writes)
    import zlib

    rows = np.ascontiguousarray(pixels[:, :5].astype(">u2")).view(np.uint8).reshape(2, -1)
    for f in (0, 2, 3, 4):
        raw = bytearray()
        prev = np.zeros(rows.shape[1], np.int64)
        for r in rows.astype(np.int64):
            if f == 2:
                enc = (r - prev) % 256
            elif f in (3, 4):
                enc = np.zeros_like(r)
                for i in range(len(r)):
                    a, b, c = (r[i - 6] if i >= 6 else 0), prev[i], (prev[i - 6] if i >= 6 else 0)
                    if f == 3:
                        pred = (a + b) // 2
                    else:
                        p = a + b - c
                        pred = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
                    enc[i] = (r[i] - pred) % 256
            else:
                enc = r
            raw += bytes([f]) + enc.astype(np.uint8).tobytes()
            prev = r
        from splatfilm.io.png import encode_png16, png_chunk

        png = encode_png16(pixels[:, :5])
        at = png.index(b"IDAT") - 4
        png = png[:at] + png_chunk(b"IDAT", zlib.compress(bytes(raw))) + png_chunk(b"IEND", b"")
        assert np.array_equal(decode_png16(png), pixels[:, :5]), f


def test_exr_layers_can_be_half_with_float_depth_and_another_compression(tmp_path):
    """Every EXR channel was 32-bit float ZIP (5-6 MB a 640 x 360 passes frame); half RGBA,
    mattes and motion with float Z is what compositors store, at about half the size."""
    import OpenEXR

    from splatfilm.io.images import ExrFormat, write_exr_layers

    rng = np.random.default_rng(0)
    channels = {name: rng.random((32, 48)) for name in ("R", "G", "B", "A", "matte_hero.A", "forward.u")}
    channels["Z"] = np.full((32, 48), 1e10)
    write_exr_layers(tmp_path / "full.exr", channels, provenance={"film": "f.yaml", "digital_source_type": "composite", "generator": "splatfilm"})
    for compression in ("zip", "piz", "dwaa"):
        write_exr_layers(tmp_path / f"{compression}.exr", channels, provenance={"film": "f.yaml", "digital_source_type": "composite", "generator": "splatfilm"},
                         fmt=ExrFormat(half=True, compression=compression))
    with OpenEXR.File(str(tmp_path / "full.exr"), separate_channels=True) as f:
        assert f.header()["compression"] == OpenEXR.ZIP_COMPRESSION
        assert {c.type() for c in f.channels().values()} == {OpenEXR.FLOAT}
    for compression in ("zip", "piz", "dwaa"):
        with OpenEXR.File(str(tmp_path / f"{compression}.exr"), separate_channels=True) as f:
            assert f.header()["compression"] == getattr(OpenEXR, f"{compression.upper()}_COMPRESSION")
            types = {name: c.type() for name, c in f.channels().items()}
            assert types.pop("Z") == OpenEXR.FLOAT and set(types.values()) == {OpenEXR.HALF}
            assert f.channels()["Z"].pixels.max() == np.float32(1e10)
    assert (tmp_path / "zip.exr").stat().st_size < 0.7 * (tmp_path / "full.exr").stat().st_size
    import json

    from splatfilm.io.images import read_exr_provenance

    text, digest = read_exr_provenance(tmp_path / "piz.exr")
    assert json.loads(text)["content_sha256"] == digest
    with pytest.raises(SplatfilmError, match="EXR compression 'jpeg'"):
        ExrFormat(compression="jpeg")


def test_thumbnails_average_light_not_encoded_values():
    """The contact sheet box-filtered the sRGB-encoded bytes: a black and white checkerboard
    became 128, where the light it sends is half of white's, 188 encoded (up to 27 codes off
    on rendered frames)."""
    from splatfilm.io.images import downscale_display

    board = (np.indices((8, 8)).sum(axis=0) % 2 * 255).astype(np.uint8)
    rgb = np.repeat(board[..., None], 3, axis=-1)
    assert downscale(rgb, 2, 2)[0, 0, 0] in (127, 128)
    small = downscale_display(rgb, 2, 2)
    assert small.dtype == np.uint8 and small.shape == (2, 2, 3) and (small == 188).all()
    flat = np.full((8, 8, 3), 77, np.uint8)
    assert (downscale_display(flat, 2, 2) == 77).all()  # a flat colour stays as it was
    rgba = np.concatenate([rgb, np.full((8, 8, 1), 255, np.uint8)], axis=-1)
    rgba[:, :, 3] = np.where(board > 0, 255, 0)  # white where opaque, nothing elsewhere
    small = downscale_display(rgba, 2, 2)
    assert (small[..., :3] == 255).all() and (small[..., 3] == 128).all()
    assert downscale_display(rgb, 8, 8) is rgb


def test_a_photo_in_another_colour_profile_is_converted_to_srgb_and_named(tmp_path):
    """read_photo ignored ICC profiles: a photo in a wide-gamut or other profile was fitted as
    raw values while every output claims sRGB / Rec.709. (ImageCms cannot make Display P3, so
    a LAB profile stands for any non-sRGB one.)"""
    from PIL import ImageCms

    from splatfilm.io.photos import read_photo_profiled

    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name, icc in (("lab.png", lab), ("srgb.png", srgb), ("none.png", None)):
        Image.fromarray(rgb).save(tmp_path / name, **({"icc_profile": icc} if icc else {}))
    assert read_photo_profiled(tmp_path / "srgb.png")[1] is None and read_photo_profiled(tmp_path / "none.png")[1] is None
    assert "lab" in read_photo_profiled(tmp_path / "lab.png")[1].lower()
    assert np.array_equal(read_photo(tmp_path / "srgb.png"), rgb)
    assert np.array_equal(read_photo(tmp_path / "none.png"), rgb)
    # A LAB profile cannot describe RGB pixels: nothing to convert with, the values stay (an
    # RGB profile such as Display P3 converts with ImageCms.profileToProfile).
    assert np.array_equal(read_photo(tmp_path / "lab.png"), rgb)
