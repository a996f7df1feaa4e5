"""Niantic .spz reading and writing: round trips within the format's steps, hand-built files with
known bytes, version 4's zstd container, the axes (as stored by default, as splat-transform 3.x
writes and reads them, or RUB, as splat-transform 2.x's), and one-line errors."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_same_gaussians, float32_nbytes, random_gaussians, traced_peak

from splatfilm.errors import SplatfilmError
from splatfilm.io.gaussian_files import load_gaussians, save_gaussians
from splatfilm.io.spz import decode_spz, encode_spz, rdf_rub_sh_signs, read_spz, write_spz
from splatfilm.scene.gaussians import Gaussians
from splatfilm.scene.sh import rotate_sh_coeffs


FIXTURES = Path(__file__).parent.parent / "fixtures" / "spz"


def _gaussians(n=300, degree=3, seed=0) -> Gaussians:
    g = random_gaussians(n, degree, dtype=torch.float32, seed=seed, sh_rest=0.3)
    # Keep every value inside the ranges SPZ can hold, so the round trip is bounded by its steps.
    return Gaussians(g.means.clamp(-3, 3), g.quats, g.scales.clamp(-9.5, 5.5), g.opacities.clamp(-5, 5),
                     g.sh0.clamp(-3, 3), g.shN.clamp(-0.99, 0.99))


def _rotation_angle(qa: torch.Tensor, qb: torch.Tensor) -> torch.Tensor:
    qa = qa / qa.norm(dim=1, keepdim=True)
    qb = qb / qb.norm(dim=1, keepdim=True)
    return 2 * torch.arccos((qa * qb).sum(1).abs().clamp(max=1.0))


@pytest.mark.parametrize("version", [2, 3])
def test_round_trip_within_the_quantisation(tmp_path, version):
    g = _gaussians()
    path = tmp_path / "a.spz"
    write_spz(path, g, version=version)
    h = read_spz(path)
    assert h.sh_degree == 3 and len(h) == len(g)
    step = 2.0**-12
    assert (h.means - g.means).abs().max() <= step / 2 + 1e-6
    assert (h.scales - g.scales).abs().max() <= 1 / 32 + 1e-6
    assert (torch.sigmoid(h.opacities) - torch.sigmoid(g.opacities)).abs().max() <= 0.5 / 255 + 1e-6
    assert (h.sh0 - g.sh0).abs().max() <= 0.5 / (0.15 * 255) + 1e-6
    # Band 1 keeps 5 bits (steps of 8/128), the higher bands 4 (16/128); plus the 1/128 rounding.
    assert (h.shN[:, :3] - g.shN[:, :3]).abs().max() <= 4 / 128 + 0.5 / 128 + 1e-6
    assert (h.shN[:, 3:] - g.shN[:, 3:]).abs().max() <= 8 / 128 + 0.5 / 128 + 1e-6
    angle = _rotation_angle(h.quats, g.quats)
    # v3: 9 bits of each small component; v2: 8-bit x y z with w derived, coarse near w = 0.
    assert angle.max() < (0.005 if version == 3 else 0.2)
    if version == 2:
        assert angle.median() < 0.02


def test_a_hand_built_version_2_file(tmp_path):
    # Two Gaussians, SH degree 1, 12 fractional bits.
    header = struct.pack("<IIIBBBB", 0x5053474E, 2, 2, 1, 12, 0, 0)
    positions = bytes([0x00, 0x10, 0x00,  0x00, 0xF8, 0xFF,  0x00, 0x00, 0x00,   # (1, -0.5, 0)
                       0x01, 0x00, 0x00,  0x00, 0x00, 0x80,  0xFF, 0xFF, 0x7F])  # (1/4096, -2048, ~2048)
    alphas = bytes([191, 0])
    colours = bytes([128, 255, 0,  64, 64, 64])
    scales = bytes([128, 144, 0,  160, 160, 160])
    rotations = bytes([128, 128, 128,  255, 128, 128])
    sh = bytes([128, 136, 120, 0, 255, 128, 128, 128, 128]) + bytes([128] * 9)
    path = tmp_path / "hand.spz"
    path.write_bytes(gzip.compress(header + positions + alphas + colours + scales + rotations + sh))
    # As stored by default, as splat-transform 3.x writes and reads them.
    plain = load_gaussians(path)
    np.testing.assert_allclose(plain.means.numpy(), [[1.0, -0.5, 0.0], [1 / 4096, -2048.0, (2**23 - 1) / 4096]],
                               rtol=1e-7)
    x = 128 / 127.5 - 1
    np.testing.assert_allclose(plain.quats[0].numpy(), [math.sqrt(1 - 3 * x * x), x, x, x], rtol=1e-6)
    np.testing.assert_allclose(plain.shN[0].numpy(), (np.array([[128, 136, 120], [0, 255, 128], [128] * 3]) - 128) / 128,
                               atol=1e-7)
    # A file stored in SPZ's RUB axes (axes="rub"), read back into the PLY's (RDF): y and z negate.
    g = read_spz(path, axes="rub")
    assert len(g) == 2 and g.sh_degree == 1
    np.testing.assert_allclose(g.means.numpy(), [[1.0, 0.5, 0.0], [1 / 4096, 2048.0, -(2**23 - 1) / 4096]], rtol=1e-7)
    np.testing.assert_allclose(torch.sigmoid(g.opacities).numpy(), [191 / 255, 0.5 / 255], rtol=1e-5)
    np.testing.assert_allclose(g.sh0[:, 0].numpy(), (np.array([[128, 255, 0], [64, 64, 64]]) / 255 - 0.5) / 0.15,
                               rtol=1e-6)
    np.testing.assert_allclose(g.scales.numpy(), [[-2.0, -1.0, -10.0], [0.0, 0.0, 0.0]])
    x = 128 / 127.5 - 1
    w = math.sqrt(1 - 3 * x * x)
    np.testing.assert_allclose(g.quats[0].numpy(), [w, x, -x, -x], rtol=1e-6)
    x1 = 255 / 127.5 - 1  # (1, x, x) -> w from what is left, clamped at 0
    np.testing.assert_allclose(g.quats[1].numpy(), [0.0, x1, -x, -x], atol=1e-6)
    # Band 1 is (y, z, x) with m = -1, 0, 1: the half turn about x flips the first two.
    signs = np.array([-1, -1, 1])[:, None]
    expected = (np.array([[128, 136, 120], [0, 255, 128], [128, 128, 128]]) - 128) / 128 * signs
    np.testing.assert_allclose(g.shN[0].numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(g.shN[1].numpy(), 0.0)


def test_a_hand_built_version_3_file_and_smallest_three():
    s = math.sqrt(0.5)
    header = struct.pack("<IIIBBBB", 0x5053474E, 3, 2, 0, 10, 1, 0)
    positions = bytes([0x00, 0x04, 0x00] + [0x00] * 6 + [0x00] * 9)  # (1, 0, 0) at 10 bits; the origin
    rot_identity = struct.pack("<I", 3 << 30)  # w largest, x y z = 0
    rot_z90 = struct.pack("<I", (2 << 30) | 511)  # z largest; x, y 0; w = sqrt(1/2)
    data = header + positions + bytes([255, 128]) + bytes([128] * 6) + bytes([160] * 6) + rot_identity + rot_z90
    g = decode_spz(data)
    np.testing.assert_allclose(g.means.numpy(), [[1, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(g.quats.numpy(), [[1, 0, 0, 0], [s, 0, 0, s]], atol=1e-7)
    # Read as RUB, a quarter turn about the file's z (back) is one about the PLY's -z (forward).
    np.testing.assert_allclose(decode_spz(data, axes="rub").quats.numpy(), [[1, 0, 0, 0], [s, 0, 0, -s]], atol=1e-7)
    # What we write decodes to the same rotations and bytes.
    again = encode_spz(g, version=3)
    assert again[16 + 18 + 2 + 6 + 6:][:8] == rot_identity + rot_z90


def test_written_bytes_follow_the_layout(tmp_path):
    g = Gaussians.from_activated(torch.tensor([[1.0, 2.0, -3.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
                                 torch.tensor([[math.exp(-2.0)] * 3]), torch.tensor([0.75]),
                                 colors=torch.tensor([[0.5, 0.5, 0.5]]))
    data = encode_spz(g, version=2)
    magic, version, count, degree, bits, flags, reserved = struct.unpack("<IIIBBBB", data[:16])
    assert (magic, version, count, degree, bits, flags, reserved) == (0x5053474E, 2, 1, 0, 12, 0, 0)
    body = data[16:]
    fixed = [int.from_bytes(body[3 * i:3 * i + 3], "little", signed=True) for i in range(3)]
    assert fixed == [4096, 8192, -12288]  # as they are
    rub = encode_spz(g, version=2, axes="rub")[16:]
    assert [int.from_bytes(rub[3 * i:3 * i + 3], "little", signed=True) for i in range(3)] == [4096, -8192, 12288]
    assert body[9] == round(0.75 * 255)  # alpha
    assert list(body[10:13]) == [128, 128, 128]  # grey: sh0 = 0 -> 127.5 rounds to 128
    assert list(body[13:16]) == [128, 128, 128]  # (log s + 10) * 16
    assert list(body[16:19]) == [128, 128, 128]  # identity rotation, x y z = 0
    assert len(body) == 19
    # The same Gaussians give the same file (gzip without a timestamp).
    write_spz(tmp_path / "a.spz", g)
    write_spz(tmp_path / "b.spz", g)
    assert (tmp_path / "a.spz").read_bytes() == (tmp_path / "b.spz").read_bytes()


def _stored_positions(payload: bytes) -> np.ndarray:
    """The fixed-point positions [N,3] (int) of an uncompressed SPZ version 2 or 3 payload."""
    n = struct.unpack("<I", payload[8:12])[0]
    p = np.frombuffer(payload[16:16 + 9 * n], np.uint8).reshape(n, 3, 3).astype(np.int64)
    fixed = p[..., 0] | (p[..., 1] << 8) | (p[..., 2] << 16)
    return np.where(fixed & 0x800000, fixed - (1 << 24), fixed)


def _assert_on_ply(g: Gaussians, ply: Gaussians) -> None:
    """`g` (read from an .spz of `ply`) matches it in every attribute within SPZ's steps."""
    assert len(g) == len(ply) == 200 and g.sh_degree == 3
    assert (g.means - ply.means).abs().max() <= 2.0**-12 / 2 + 1e-6
    assert _rotation_angle(g.quats, ply.quats).max() < 0.005
    assert (g.shN[:, :3] - ply.shN[:, :3]).abs().max() <= 4 / 128 + 0.5 / 128 + 1e-6
    assert (g.shN[:, 3:] - ply.shN[:, 3:]).abs().max() <= 8 / 128 + 0.5 / 128 + 1e-6
    assert (g.sh0 - ply.sh0).abs().max() <= 0.5 / (0.15 * 255) + 1e-6
    assert (g.scales - ply.scales).abs().max() <= 1 / 32 + 1e-6
    assert (torch.sigmoid(g.opacities) - torch.sigmoid(ply.opacities)).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("name", ["random.st370.v4.spz", "random.st370.v3.spz"])
def test_splat_transform_3_files_read_onto_their_ply_by_default(name):
    """splat-transform 3.7.0 (npm's latest, behind SuperSplat) stores a PLY's axes as they are
    (tests/fixtures/spz/README.md): read by default, its file lands on the PLY it was made from,
    every attribute within the format's steps; read as RUB it stands metres off, upside down."""
    ply = load_gaussians(FIXTURES / "random.ply")
    _assert_on_ply(load_gaussians(FIXTURES / name), ply)
    assert (read_spz(FIXTURES / name, axes="rub").means - ply.means).abs().max() > 1.0


@pytest.mark.parametrize("name", ["random.st271.v4.spz", "random.st271.v3.spz"])
def test_splat_transform_2_files_read_onto_their_ply_as_rub(name):
    """splat-transform 2.7.1 wrote SPZ through Niantic's library in SPZ's RUB axes: read with
    axes="rub" (`--spz-axes rub`), its file lands on its PLY; by default (as stored) it stands
    metres off, upside down, its rotations and SH turned."""
    ply = load_gaussians(FIXTURES / "random.ply")
    _assert_on_ply(read_spz(FIXTURES / name, axes="rub"), ply)
    assert (load_gaussians(FIXTURES / name).means - ply.means).abs().max() > 1.0


def test_written_files_hold_the_axes_as_given(tmp_path):
    """A file splatfilm writes by default stores positions as given (axes="rub": y and z negated):
    the payload is splat-transform 3.7.0's version 3 file of the same PLY byte for byte, and with
    axes="rub" 2.7.1's (rotations and SH turned as Niantic's library turns them)."""
    ply = load_gaussians(FIXTURES / "random.ply")
    save_gaussians(tmp_path / "ours.spz", ply)
    save_gaussians(tmp_path / "rub.spz", ply, spz_axes="rub")
    payload = gzip.decompress((tmp_path / "ours.spz").read_bytes())
    rub = gzip.decompress((tmp_path / "rub.spz").read_bytes())
    assert payload[12] == 3 and payload[13] == 12  # SH degree, fractional bits
    want = np.rint(ply.means.double().numpy() * 2**12).astype(np.int64)
    np.testing.assert_array_equal(_stored_positions(payload), want)
    np.testing.assert_array_equal(_stored_positions(rub), want * np.array([1, -1, -1]))
    assert payload == gzip.decompress((FIXTURES / "random.st370.v3.spz").read_bytes())
    assert rub == gzip.decompress((FIXTURES / "random.st271.v3.spz").read_bytes())


@pytest.mark.parametrize("degree", [3, 4])
def test_axis_flip_is_the_half_turn_about_x(degree):
    g = random_gaussians(20, degree, seed=3)
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
    turned = rotate_sh_coeffs(g.shN, R)
    signs = torch.tensor(rdf_rub_sh_signs(degree))[None, :, None]
    assert torch.allclose(turned, g.shN * signs, atol=1e-12)


def test_degree_4_is_written_in_version_3_and_refused_in_version_2(tmp_path):
    """SPZ's header allows SH degree 0-4 from version 3 (72 coefficients a Gaussian at 4; the
    higher bands 4 bits); version 2 stops at 3, so a degree-4 asset is not cut down to it."""
    g = _gaussians(60, 4)
    write_spz(tmp_path / "a.spz", g)
    h = read_spz(tmp_path / "a.spz")
    assert h.sh_degree == 4 and len(h) == 60
    assert (h.shN[:, 15:] - g.shN[:, 15:]).abs().max() <= 8 / 128 + 0.5 / 128 + 1e-6
    assert (h.shN[:, 15:] - g.shN[:, 15:]).abs().max() < (g.shN[:, 15:]).abs().max() / 4  # band 4 is kept
    with pytest.raises(SplatfilmError, match="SPZ version 2 holds SH up to degree 3, not 4"):
        write_spz(tmp_path / "b.spz", g, version=2)
    assert not (tmp_path / "b.spz").exists()


def _version_4(payload: bytes, flags: int | None = None, extensions: bytes = b"") -> bytes:
    """A version 4 file of a version 3 payload (module docstring of splatfilm.io.spz): the 32-byte
    header, `extensions` (records), the table of stream sizes, each attribute a zstd stream, an
    empty one left out."""
    import zstandard

    magic, _, n, degree, bits, flags3, _ = struct.unpack("<IIIBBBB", payload[:16])
    k = (degree + 1) ** 2 - 1
    at, streams = 16, []
    for size in (9, 1, 3, 3, 4, 3 * k):
        if size:
            streams.append(payload[at:at + n * size])
        at += n * size
    packed = [zstandard.ZstdCompressor(level=3).compress(s) for s in streams]
    header = struct.pack("<IIIBBBBI", magic, 4, n, degree, bits, flags3 if flags is None else flags, len(streams),
                         32 + len(extensions))
    table = b"".join(struct.pack("<QQ", len(c), len(s)) for c, s in zip(packed, streams))
    return header + bytes(12) + extensions + table + b"".join(packed)


@pytest.mark.parametrize("degree", [0, 3, 4])
def test_version_4_reads_as_the_same_attributes_in_zstd_streams(tmp_path, degree):
    g = _gaussians(40, degree)
    payload = encode_spz(g, version=3)
    (tmp_path / "v4.spz").write_bytes(_version_4(payload))
    (tmp_path / "v3.spz").write_bytes(gzip.compress(payload))
    a, b = load_gaussians(tmp_path / "v4.spz"), load_gaussians(tmp_path / "v3.spz")
    for name in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(read_spz(tmp_path / "v4.spz", axes="rub").means, read_spz(tmp_path / "v3.spz", axes="rub").means)


def test_dispatch_and_fractional_bits_for_big_scenes(tmp_path):
    g = _gaussians(50, 0)
    g = Gaussians(g.means * 1000, g.quats, g.scales, g.opacities, g.sh0, g.shN)  # up to 3 km out
    save_gaussians(tmp_path / "big.spz", g)
    h = load_gaussians(tmp_path / "big.spz")
    bits = gzip.decompress((tmp_path / "big.spz").read_bytes())[13]
    assert bits < 12
    assert (h.means - g.means).abs().max() <= 2.0 ** -bits / 2 + 1e-3


def _cases(tmp_path):
    good = encode_spz(_gaussians(5, 1), version=3)
    return {
        "not gzip": (b"ply\nformat ascii 1.0\n", "no gzip header"),
        "bad magic": (gzip.compress(b"\0" * 32), "not an SPZ file (magic"),
        "version 4 gzipped": (gzip.compress(good[:4] + struct.pack("<I", 4) + good[8:]), "SPZ version 4 is not supported"),
        "version 5": (_version_4(good)[:4] + struct.pack("<I", 5) + _version_4(good)[8:], "SPZ version 5"),
        "v4 truncated": (_version_4(good)[:-9], "truncated or damaged"),
        "v4 short header": (_version_4(good)[:20], "32-byte header"),
        "v4 damaged stream": (_version_4(good)[:80] + bytes(len(_version_4(good)) - 80), "damaged"),
        # The table and the stream's own header disagree on its size (45 = 5 Gaussians' positions).
        "v4 size mismatch": (_version_4(good)[:40] + struct.pack("<Q", 46) + _version_4(good)[48:], "declares 45 bytes"),
        # Without the extensions flag, bytes after the attributes are not an SPZ file's.
        "trailing bytes": (gzip.compress(good + bytes(8)), "8 bytes after the last attribute"),
        "truncated": (gzip.compress(good[:-7]), "truncated"),
        "broken gzip": (gzip.compress(good)[:-12], "gzip stream is damaged"),
    }


@pytest.mark.parametrize("case", ["not gzip", "bad magic", "version 4 gzipped", "version 5", "trailing bytes",
                                  "v4 truncated", "v4 short header", "v4 damaged stream", "v4 size mismatch",
                                  "truncated", "broken gzip"])
def test_bad_files_give_one_line_errors(tmp_path, case):
    data, message = _cases(tmp_path)[case]
    path = tmp_path / "bad.spz"
    path.write_bytes(data)
    with pytest.raises(SplatfilmError) as e:
        load_gaussians(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_unwritable_values_are_refused(tmp_path):
    g = _gaussians(4, 0)
    g.means[1, 0] = float("nan")
    with pytest.raises(SplatfilmError, match="non-finite"):
        write_spz(tmp_path / "x.spz", g)
    far = _gaussians(4, 0)
    far.means[0, 0] = 1e7
    with pytest.raises(SplatfilmError, match="24-bit"):
        write_spz(tmp_path / "x.spz", far)
    assert not (tmp_path / "x.spz").exists()


def test_import_keeps_axes_guards_a_sidecar_and_refuses_empty_files(tmp_path, capsys):
    """`splatfilm import`: a .spz in the PLY's axes by default, --spz-axes rub for one stored in
    RUB, either recorded in the sidecar's source; a copy beside a fitted asset may not take
    its sidecar; a file with no Gaussians is an error."""
    import json

    from helpers import cli_error

    from splatfilm.cli import main
    from splatfilm.io.ply import write_ply

    g = _gaussians(30, 1)
    write_ply(tmp_path / "asset.ply", g)
    (tmp_path / "asset.json").write_text(json.dumps({"version": 1, "asset": "asset.ply", "kind": "scene",
                                                     "frame": {"up": [0.0, -1.0, 0.0]}}))
    err = cli_error(capsys, ["import", tmp_path / "asset.ply", "-o", tmp_path / "asset.spz"], "asset.json")
    assert "is the sidecar of asset.ply" in err and not (tmp_path / "asset.spz").exists()
    assert json.loads((tmp_path / "asset.json").read_text())["frame"]["up"] == [0.0, -1.0, 0.0]

    assert main(["import", str(tmp_path / "asset.ply"), "-o", str(tmp_path / "plain.spz")]) == 0
    assert main(["import", str(tmp_path / "asset.ply"), "-o", str(tmp_path / "rub.spz"), "--spz-axes", "rub"]) == 0
    assert json.loads((tmp_path / "plain.json").read_text())["source"]["spz_axes"] == "ply"
    assert json.loads((tmp_path / "rub.json").read_text())["source"]["spz_axes"] == "rub"
    plain, rub = read_spz(tmp_path / "plain.spz", axes="ply"), read_spz(tmp_path / "rub.spz", axes="ply")
    assert (plain.means - g.means).abs().max() <= 2.0**-13 + 1e-6
    assert (rub.means - g.means * torch.tensor([1.0, -1.0, -1.0])).abs().max() <= 2.0**-13 + 1e-6
    assert main(["import", str(tmp_path / "rub.spz"), "-o", str(tmp_path / "back.ply"), "--spz-axes", "rub"]) == 0
    assert main(["import", str(tmp_path / "plain.spz"), "-o", str(tmp_path / "plain_back.ply")]) == 0
    assert torch.allclose(load_gaussians(tmp_path / "back.ply").means, plain.means)
    assert torch.allclose(load_gaussians(tmp_path / "plain_back.ply").means, plain.means)
    assert json.loads((tmp_path / "back.json").read_text())["source"]["spz_axes"] == "rub"
    assert json.loads((tmp_path / "plain_back.json").read_text())["source"]["spz_axes"] == "ply"
    assert "changes nothing" in cli_error(
        capsys, ["import", tmp_path / "rub.spz", "-o", tmp_path / "again.spz", "--spz-axes", "rub"])
    assert "--spz-axes applies to .spz" in cli_error(
        capsys, ["import", tmp_path / "asset.ply", "-o", tmp_path / "x.ply", "--spz-axes", "rub"])
    assert main(["import", str(tmp_path / "asset.ply"), "-o", str(tmp_path / "x.ply")]) == 0
    assert "spz_axes" not in json.loads((tmp_path / "x.json").read_text())["source"]

    (tmp_path / "empty.splat").write_bytes(b"")
    write_ply(tmp_path / "none.ply", _gaussians(0, 0))
    for empty in ("empty.splat", "none.ply"):
        assert "holds no Gaussians" in cli_error(capsys, ["import", tmp_path / empty, "-o", tmp_path / "e.ply"], empty)


def test_the_antialiased_flag_is_written_read_and_carried_by_import(tmp_path, capsys):
    """Header flag 0x1 (trained in gsplat's antialiased mode): written on request, read from the
    header alone (versions 3 and 4), and an import records it in the copy's sidecar and, for an
    .spz copy, in its header; a plain file reads classic."""
    import json

    from splatfilm.assets.sidecar import asset_rasterize_mode
    from splatfilm.cli import main
    from splatfilm.io.spz import spz_antialiased

    g = _gaussians(40, 1)
    write_spz(tmp_path / "aa.spz", g, antialiased=True)
    write_spz(tmp_path / "plain.spz", g)
    assert gzip.decompress((tmp_path / "aa.spz").read_bytes())[14] == 0x1
    assert spz_antialiased(tmp_path / "aa.spz") and not spz_antialiased(tmp_path / "plain.spz")
    assert torch.equal(read_spz(tmp_path / "aa.spz").means, read_spz(tmp_path / "plain.spz").means)
    # Version 4 (not gzipped): the flag sits at the same byte of its 32-byte header.
    v4 = bytearray(32)
    v4[:15] = gzip.decompress((tmp_path / "aa.spz").read_bytes())[:15]
    struct.pack_into("<I", v4, 4, 4)
    (tmp_path / "v4.spz").write_bytes(bytes(v4))
    assert spz_antialiased(tmp_path / "v4.spz")
    assert asset_rasterize_mode(tmp_path / "aa.spz") == "antialiased"
    assert asset_rasterize_mode(tmp_path / "plain.spz") == "classic"

    assert main(["import", str(tmp_path / "aa.spz"), "-o", str(tmp_path / "aa.ply")]) == 0
    assert json.loads((tmp_path / "aa.json").read_text())["rasterize_mode"] == "antialiased"
    assert asset_rasterize_mode(tmp_path / "aa.ply") == "antialiased"
    assert main(["import", str(tmp_path / "aa.ply"), "-o", str(tmp_path / "again.spz")]) == 0
    assert spz_antialiased(tmp_path / "again.spz")
    assert main(["import", str(tmp_path / "plain.spz"), "-o", str(tmp_path / "plain.ply")]) == 0
    assert json.loads((tmp_path / "plain.json").read_text())["rasterize_mode"] == "classic"
    (tmp_path / "junk.spz").write_bytes(b"not a splat file at all")
    with pytest.raises(SplatfilmError, match="junk.spz"):
        spz_antialiased(tmp_path / "junk.spz")


def test_files_with_extensions_read_as_without(tmp_path):
    """Flag 0x2 (nianticlabs/spz extensions/README.md): records of (uint32 type, uint32 length,
    payload) after the attributes (gzip) or between the header and the table (version 4),
    skipped as Niantic's library skips them: the same Gaussians as the file without."""
    g = _gaussians(30, 2)
    payload = encode_spz(g, version=3)
    # SPZ_ADOBE_safe_orbit_camera (three floats) and a record of a type no reader knows.
    records = (struct.pack("<IIfff", 0xADBE0002, 12, -0.5, 0.5, 1.0) + struct.pack("<II", 0x12340001, 4)
               + b"abcd")
    flagged = payload[:14] + bytes([payload[14] | 0x2]) + payload[15:]
    (tmp_path / "plain.spz").write_bytes(gzip.compress(payload))
    (tmp_path / "ext.spz").write_bytes(gzip.compress(flagged + records))
    (tmp_path / "ext4.spz").write_bytes(_version_4(payload, flags=0x2, extensions=records))
    plain = read_spz(tmp_path / "plain.spz")
    for name in ("ext.spz", "ext4.spz"):
        h = read_spz(tmp_path / name)
        assert_same_gaussians(h, plain, name)


def test_written_at_zlib_default_level_as_niantic_writes(tmp_path):
    """Level 6 (Z_DEFAULT_COMPRESSION, nianticlabs/spz load-spz.cc): gzip's header says so with
    XFL 0 (level 9 writes 2); the payload inside is the encoder's, byte for byte."""
    g = _gaussians(200, 3)
    write_spz(tmp_path / "a.spz", g)
    raw = (tmp_path / "a.spz").read_bytes()
    assert raw[8] == 0
    assert gzip.decompress(raw) == encode_spz(g)
    assert raw == gzip.compress(encode_spz(g), compresslevel=6, mtime=0)


def test_degree_4_is_written_with_a_warning(tmp_path, capsys):
    """SPZ version 3 holds band 4 and it is kept, but SuperSplat / splat-transform read SPZ up to
    degree 3: one line says so and how to write degree 3; degree 3 says nothing."""
    write_spz(tmp_path / "d4.spz", _gaussians(20, 4))
    err = capsys.readouterr().err.strip()
    assert read_spz(tmp_path / "d4.spz").sh_degree == 4
    assert err.startswith("note: ") and "\n" not in err and "SH degree 4" in err and "splat-transform" in err
    assert "--sh-degree 3" in err
    write_spz(tmp_path / "d3.spz", _gaussians(20, 3))
    assert capsys.readouterr().err == ""


def test_reading_and_writing_hold_no_float64_copies(tmp_path):
    """A 3M-Gaussian degree-3 .spz (86 MB) once peaked at 3.02 GB to read and 2.82 GB to write:
    every attribute in float64 for the whole file (4x and 2x the Gaussians' own float32 size).
    A block at a time, reading holds the file, its payload (twice while zlib grows it) and the
    Gaussians; writing the payload and its bytes."""
    g = random_gaussians(100_000, 3, dtype=torch.float32, sh_rest=0.3)
    own = float32_nbytes(g)
    path = tmp_path / "big.spz"
    write_spz(path, g)
    for what, run, most in [("read", lambda: read_spz(path), 2.2), ("encode", lambda: encode_spz(g), 1.0),
                            ("read as RUB", lambda: read_spz(path, axes="rub"), 2.2)]:
        peak = traced_peak(run)[1]
        assert peak < most * own, f"{what}: peak {peak / own:.2f}x the Gaussians' own size"
