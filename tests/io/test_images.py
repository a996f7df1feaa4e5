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
    photo_orientation,
    read_photo,
    srgb_to_linear,
    to_uint8,
    unpremultiply,
    write_png,
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
