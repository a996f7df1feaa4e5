"""Reading photos (splatfilm.io.images): every pixel layout a camera or an editor writes comes
back as 8-bit RGB or RGBA as stored; EXIF orientation is read, and an upright copy written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from splatfilm.errors import SplatfilmError
from splatfilm.io.images import photo_orientation, read_photo, write_upright


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
