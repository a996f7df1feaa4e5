"""Hand-off of a rendered film: provenance in every output kind (and tampering caught), C2PA
signatures, ProRes masters that probe with the edit's timecode and reels, one-line errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import cli_error, write_walking_film
from splatfilm.cli import main
from splatfilm.handoff.provenance import inspect_file
from splatfilm.io.images import read_exr_layers, write_exr_layers
from splatfilm.io.provenance import CAPTURED, COMPOSITE, KEY, REFINED, provenance_record
from splatfilm.io.video import ffmpeg_exe, probe_frames, probe_reel, probe_timecode


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway ES256 signer: key.pem and chain.pem (signer, then the CA that issued it:
    C2PA refuses self-signed signers)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "splatfilm tests")])

    def usage(sign_certs: bool):
        return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs,
                             crl_sign=sign_certs, encipher_only=False, decipher_only=False)

    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def cert(subject, pub, is_ca):
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("test CA")).public_key(pub)
             .serial_number(x509.random_serial_number()).not_valid_before(start)
             .not_valid_after(start + dt.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
             .add_extension(usage(is_ca), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
        if not is_ca:
            b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
        return b.sign(ca_key, hashes.SHA256())

    pem = serialization.Encoding.PEM
    (folder / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "chain.pem").write_bytes(cert("test signer", key.public_key(), False).public_bytes(pem)
                                       + cert("test CA", ca_key.public_key(), True).public_bytes(pem))
    return folder / "key.pem", folder / "chain.pem"


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    return write_walking_film(tmp_path_factory.mktemp("handoff"))


@pytest.fixture(scope="module")
def rendered(film, tmp_path_factory) -> Path:
    """The film rendered from the command line with passes, both masters burnt in, signed."""
    out = film.parent / "out"
    key, chain = make_certificate(tmp_path_factory.mktemp("cert"))
    assert main(["render", str(film), "-o", str(out), "--backend", "cpu", "--passes", "--depth", "--alpha", "--masters",
                 "prores422hq,prores4444", "--burn-in", "--sign", str(key), str(chain)]) == 0
    return out


def _outputs(out: Path) -> list[Path]:
    return [out / "sh010" / "sh010.1001.png", out / "sh010" / "sh010.1003.exr", out / "sh010" / "sh010.1002.depth.exr",
            out / "sh010" / "sh010.1002.alpha.exr", out / "sh010.mp4",
            out / "passes.mp4", out / "masters" / "sh010.prores422hq.mov", out / "masters" / "passes.prores4444.mov"]


def test_every_output_kind_carries_its_provenance(film, rendered, capsys):
    film_sha = hashlib.sha256(film.read_bytes()).hexdigest()
    hero_sha = hashlib.sha256((film.parent / "hero.ply").read_bytes()).hexdigest()
    for path in _outputs(rendered):
        ins = inspect_file(path)
        assert ins.ok and ins.content_ok, (path, ins.problems)
        r = ins.record
        assert r["film_sha256"] == film_sha and r["assets"]["hero"] == hero_sha, path
        # The walking film's wall and hero were made by the test, with no record of a capture.
        assert r["digital_source_type"] == COMPOSITE and r["splatfilm_version"], path
        if path.suffix != ".exr":  # C2PA binds PNG, MP4 and MOV; EXR keeps the unsigned record
            assert ins.c2pa["state"] in ("Valid", "Trusted") and not ins.c2pa["problems"], (path, ins.c2pa)
            assert ins.c2pa["record"]["content_sha256"] == r["content_sha256"]
    assert inspect_file(rendered / "sh010" / "sh010.1001.png").record["frames"] == [1001]
    # Each record says its timecode as the EDL counts it: a frame's, a shot movie's first, the cut's record start.
    assert inspect_file(rendered / "sh010" / "sh010.1002.png").record["timecode"] == "00:00:41:18"
    assert inspect_file(rendered / "sh010" / "sh010.1003.exr").record["timecode"] == "00:00:41:19"
    assert inspect_file(rendered / "sh010.mp4").record["timecode"] == probe_timecode(rendered / "sh010.mp4")
    assert inspect_file(rendered / "passes.mp4").record["timecode"] == probe_timecode(rendered / "passes.mp4")
    assert probe_timecode(rendered / "passes.mp4") == "01:00:00:00"  # the record start
    assert inspect_file(rendered / "sh010" / "sh010.1003.exr").record["colour"].startswith("scene-linear")
    assert inspect_file(rendered / "passes.mp4").record["cut"] == ["sh010"]
    # The PNG says it is display sRGB and carries the IPTC source type in XMP too.
    from PIL import Image

    with Image.open(rendered / "sh010" / "sh010.1002.png") as im:
        assert "Iptc4xmpExt:DigitalSourceType" in im.text["XML:com.adobe.xmp"] and COMPOSITE in im.text["XML:com.adobe.xmp"]
        assert im.info.get("srgb") == 0
    assert main(["provenance", *map(str, _outputs(rendered))]) == 0
    printed = capsys.readouterr().out
    assert printed.count("  verified") == len(_outputs(rendered))
    assert "  timecode: 00:00:41:17\n" in printed  # sh010.1001.png


def test_tampered_files_fail_verification(rendered, tmp_path, capsys):
    from PIL import Image, PngImagePlugin

    # A PNG repainted but keeping its record (and losing its C2PA manifest).
    png = tmp_path / "frame.png"
    with Image.open(rendered / "sh010" / "sh010.1001.png") as im:
        pixels = np.array(im)
        info = PngImagePlugin.PngInfo()
        info.add_itxt(KEY, im.text[KEY])
    pixels[5, 5] = 255 - pixels[5, 5]
    Image.fromarray(pixels).save(png, pnginfo=info)
    # An EXR with one matte value changed, header kept.
    exr = tmp_path / "frame.exr"
    channels, header = read_exr_layers(rendered / "sh010" / "sh010.1003.exr")
    channels["matte_hero.A"][3, 3] += 0.5
    record = json.loads(header[KEY])
    write_exr_layers(exr, channels, attributes={KEY: json.dumps(record)})
    # A signed movie with a byte of its pictures flipped.
    mov = tmp_path / "shot.mov"
    shutil.copy(rendered / "masters" / "sh010.prores422hq.mov", mov)
    data = bytearray(mov.read_bytes())
    at = data.find(b"mdat") + 4000
    data[at] ^= 0xFF
    mov.write_bytes(bytes(data))
    for path in (png, exr, mov):
        ins = inspect_file(path)
        assert not ins.ok and not ins.content_ok, path
        err = cli_error(capsys, ["provenance", path], name=path)
        assert "do not match" in err
    assert inspect_file(mov).c2pa["state"] == "Invalid"  # the signature's hash binding breaks too


def test_a_refined_record_says_trained_algorithmic_media():
    r = provenance_record("film.yaml", "0" * 64, {"set": "1" * 64}, shot="sh010", frames=[1001], refined=True)
    assert r["digital_source_type"] == REFINED
    assert r["digital_source_type"].endswith("/compositeWithTrainedAlgorithmicMedia")


def _probe(path: Path) -> str:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def test_prores_masters_probe_with_the_edits_timecode_and_reels(film, rendered):
    edl = (rendered / "passes.edl").read_text()
    event = next(line for line in edl.splitlines() if line.startswith("001"))
    reel, source_in = event.split()[1], event.split()[4]
    hq, alpha = rendered / "masters" / "sh010.prores422hq.mov", rendered / "masters" / "sh010.prores4444.mov"
    assert "prores (HQ)" in _probe(hq) and "yuv422p10le" in _probe(hq)
    assert "prores (4444)" in _probe(alpha) and "yuva444p" in _probe(alpha)
    for movie in (hq, alpha):
        assert probe_frames(movie)[0] == 3
        assert probe_timecode(movie) == source_in == "00:00:41:17"  # frame 1001 at 24 fps, as the EDL says
        assert probe_reel(movie) == reel == "sh010"
    cut = rendered / "masters" / "passes.prores422hq.mov"
    assert probe_frames(cut)[0] == 3 and probe_timecode(cut) == "01:00:00:00" == event.split()[6]
    # The 4444's alpha is the render's: clear where nothing is, opaque on the wall (and the burn-in band).
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(alpha), pix_fmt="rgba", bpp=4)
    meta = next(reader)
    frame = np.frombuffer(next(reader), np.uint8).reshape(meta["size"][1], meta["size"][0], 4)
    assert frame[..., 3].min() == 0 and frame[..., 3].max() == 255
    assert frame[-2, :, 3].min() == 255  # the burn-in band is opaque
    # Solid where the render is covered (1/255 or less left through): A is exactly 1 in the EXR
    # the master's alpha comes from, and 255 in the master, so a holdout lets no plate through.
    from splatfilm.film import FrameRenderer, parse_film

    f = parse_film(film)
    raw = FrameRenderer(f, "cpu").render(f.shots[0], 0)[1][..., 0]
    solid = raw >= 1 - 1 / 255
    assert solid.sum() > 500 and raw.max() < 0.99991  # the renderer's own alpha stops at 0.9999
    assert np.all(frame[..., 3][solid] == 255)
    assert np.array_equal(read_exr_layers(rendered / "sh010" / "sh010.1001.exr")[0]["A"] == 1, solid)


def test_bad_hand_off_inputs_are_one_line_errors(film, tmp_path, capsys):
    out = tmp_path / "out"
    cli_error(capsys, ["render", film, "-o", out, "--backend", "cpu", "--passes", "rgba,normals"], name="normals")
    cli_error(capsys, ["render", film, "-o", out, "--backend", "cpu", "--masters", "h265"], name="h265")
    cli_error(capsys, ["render", film, "-o", out, "--backend", "cpu", "--burn-in"], name="--masters")
    cli_error(capsys, ["render", film, "-o", out, "--backend", "cpu", "--sign", tmp_path / "no.key",
                       tmp_path / "no.pem"], name="no.key")
    assert not out.exists()  # all refused before any work
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cli_error(capsys, ["render", film, "-o", blocker / "out", "--backend", "cpu", "--passes"], name="cannot write")
    cli_error(capsys, ["provenance", tmp_path / "missing.png"], name="no such file")
    cli_error(capsys, ["provenance", film], name="film.yaml")
    plain = tmp_path / "plain.png"
    import imageio.v3 as iio

    iio.imwrite(plain, np.zeros((4, 4, 3), np.uint8))
    assert "carries no splatfilm provenance" in cli_error(capsys, ["provenance", plain], name="plain.png")
    (tmp_path / "bad.exr").write_text("not an exr")
    cli_error(capsys, ["provenance", tmp_path / "bad.exr"], name="bad.exr")
    (tmp_path / "bad.mov").write_text("not a movie")
    cli_error(capsys, ["provenance", tmp_path / "bad.mov"], name="bad.mov")


def _first_frame(movie: Path) -> np.ndarray:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(movie), pix_fmt="rgb24")
    meta = next(reader)
    return np.frombuffer(next(reader), np.uint8).reshape(meta["size"][1], meta["size"][0], 3).astype(float)


def test_a_render_without_masters_remakes_the_masters_there_and_drops_stale_side_files(tmp_path, capsys,
                                                                                          monkeypatch):
    """Masters and passes from a first render; the shot changes; a plain render must leave no
    file showing the old frames: the masters are remade from the new frames (an editor relinks
    the EDL to them), the passes EXRs it does not write are removed. The masters there are
    looked up once a render (the options' check and the masters each looked them up)."""
    from splatfilm.handoff import masters

    import imageio.v3 as iio
    import yaml

    film = write_walking_film(tmp_path, frames=2)
    out = tmp_path / "out"
    assert main(["render", str(film), "-o", str(out), "--backend", "cpu", "--passes", "--masters", "prores422hq"]) == 0
    script = yaml.safe_load(film.read_text())
    script["shots"][0]["camera"]["position"] = [-1.2, -3.0, 1.6]  # another view of the wall
    film.write_text(yaml.safe_dump(script, sort_keys=False))
    old = _first_frame(out / "masters" / "sh010.prores422hq.mov")
    capsys.readouterr()
    assert main(["render", str(film), "-o", str(out), "--backend", "cpu", "--shots", "sh010"]) == 0
    assert "removed 2 depth/alpha/passes EXR(s)" in capsys.readouterr().err  # a status line (splatfilm.report)
    new = iio.imread(out / "sh010" / "sh010.1001.png")[..., :3].astype(float)
    moved = np.abs(old - new).mean()
    assert moved > 15  # the edit changed the pictures
    from splatfilm.io.images import srgb_to_linear

    signal = srgb_to_linear(new / 255) ** (1 / 2.4) * 255  # the masters' Rec.709 (BT.1886) signal of it
    for movie in ("sh010.prores422hq.mov", "passes.prores422hq.mov"):
        # 4:2:2 chroma on the small textured wall costs ~7 levels; the old frames are > 15 off.
        assert np.abs(_first_frame(out / "masters" / movie) - signal).mean() < min(8, moved / 2), movie
    assert not list((out / "sh010").glob("*.1001.exr"))
    # A new record start alone (no frame changed) moves the cut's master with the cut and the EDL.
    assert probe_timecode(out / "masters" / "passes.prores422hq.mov") == "01:00:00:00"
    film.write_text(yaml.safe_dump({**script, "record_start": "00:59:50:00"}, sort_keys=False))
    lookups = []
    kept_masters = masters.kept_masters
    monkeypatch.setattr(masters, "kept_masters", lambda out_dir: lookups.append(out_dir) or kept_masters(out_dir))
    assert main(["render", str(film), "-o", str(out), "--backend", "cpu"]) == 0
    assert len(lookups) == 1, lookups
    event = next(line for line in (out / "passes.edl").read_text().splitlines() if line.startswith("001"))
    assert (probe_timecode(out / "masters" / "passes.prores422hq.mov") == probe_timecode(out / "passes.mp4")
            == event.split()[6] == "00:59:50:00")
    assert probe_timecode(out / "masters" / "sh010.prores422hq.mov") == "00:00:41:17"  # the source side stays


def test_only_masters_whose_making_was_recorded_are_remade(tmp_path):
    """A master without a record of its burn-in (made before records were kept, or the
    manifest lost) was remade as if without burn-in, re-encoding a dailies master and losing
    its burn-in when no frame changed; it is now left alone. A bad record is no traceback."""
    from splatfilm.film.render import MANIFEST
    from splatfilm.handoff.masters import kept_masters
    from splatfilm.io.manifest import Manifest

    (tmp_path / "masters").mkdir()
    for codec in ("prores422hq", "prores4444"):
        (tmp_path / "masters" / f"sh010.{codec}.mov").write_bytes(b"")
    assert kept_masters(tmp_path) == {}
    with Manifest.load(tmp_path / MANIFEST) as manifest:
        manifest.section("master_codecs").update({"prores422hq": {"burn_in": True}, "prores4444": "odd"})
    assert kept_masters(tmp_path) == {"prores422hq": True}


def test_the_source_type_follows_how_the_assets_were_made(tmp_path):
    """compositeCapture was stamped on every render; it is claimed only when every asset's
    sidecar says it was fitted to captured images. A mesh import (the demo's crate), a
    procedural set or a splat without a record makes the frame IPTC's plain "composite"."""
    import yaml

    from splatfilm.film.frame_render import provenance_facts
    from splatfilm.film.script import parse_film

    scenes = Path(__file__).parents[2] / "scenes"
    fitted, crate, procedural = (scenes / "character/fitted/hero.ply", scenes / "demo/crate.ply",
                                 scenes / "demo/scene.ply")
    shots = [{"name": "sh010", "frames": 1, "camera": {"position": [0, -4, 1], "look_at": [0, 0, 0.5]}}]

    def record(assets: dict) -> dict:
        path = tmp_path / f"film{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump({"version": 1, "title": "t", "fps": 24, "resolution": [32, 20],
                                        "assets": {n: {"file": str(f)} for n, f in assets.items()}, "shots": shots}))
        return provenance_record(**provenance_facts(parse_film(path)), shot="sh010", frames=[1001])

    r = record({"hero": fitted})
    assert r["digital_source_type"] == CAPTURED == "http://cv.iptc.org/newscodes/digitalsourcetype/compositeCapture"
    assert r["asset_sources"] == {"hero": "capture"} and "fitted to captured images" in r["process"]
    r = record({"hero": fitted, "crate": crate})
    assert r["digital_source_type"] == COMPOSITE == "http://cv.iptc.org/newscodes/digitalsourcetype/composite"
    assert r["asset_sources"] == {"crate": "mesh", "hero": "capture"}
    assert "not all fitted to captured images (crate: imported from a mesh; hero: fitted" in r["process"], r["process"]
    assert record({"set": procedural})["asset_sources"] == {"set": "procedural"}
    assert record({"set": procedural})["digital_source_type"] == COMPOSITE
    # A diffusion refiner's frame says so whatever its assets.
    facts = provenance_facts(parse_film(next(tmp_path.glob("film*.yaml"))))
    assert provenance_record(**facts, refined=True)["digital_source_type"] == REFINED


def test_a_4444_master_of_16_bit_frames_keeps_their_16_bits(film, tmp_path):
    """--png-bits 16 promises masters made from the 16-bit frames: the 4444's frames (colour off
    its background, with alpha) were read back through the 8-bit reader, a step of 1/255."""
    from splatfilm.film import parse_film
    from splatfilm.handoff.masters import _master_frames
    from splatfilm.io.images import write_depth, write_png
    from splatfilm.io.png import decode_png16

    f = parse_film(film)
    fs = f.shots[0]
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir(), dst.mkdir()
    ramp = np.linspace(0.0, 1.0, f.width)[None, :, None] * np.ones((f.height, 1, 3))
    alpha = np.ones((f.height, f.width, 1))
    for frame in fs.shot.frame_numbers:
        write_png(src / f"{fs.name}.{int(frame):04d}.png", ramp, bits=16)
        write_depth(src / f"{fs.name}.{int(frame):04d}.alpha.exr", alpha, channel="A")
    assert _master_frames(f, fs, src, dst, "prores4444", False)
    out = decode_png16((dst / f"{fs.name}.{int(fs.shot.frame_numbers[0]):04d}.png").read_bytes())
    assert out.shape == (f.height, f.width, 4) and np.all(out[..., 3] == 65535)
    assert np.abs(out[..., :3] / 65535.0 - ramp).max() < 1e-4  # solid: nothing of the background to take off


def test_a_burnt_in_master_of_16_bit_frames_keeps_their_16_bits(film, tmp_path):
    """Pillow draws in 8 bits, and the burn-in was drawn into the frame, so a burnt-in master
    of 16-bit frames was 8-bit everywhere (256 codes at most); now only the text's coverage is
    Pillow's, laid over the frame's values: above the band the picture is the ramp it was."""
    from splatfilm.film import parse_film
    from splatfilm.handoff.masters import _master_frames
    from splatfilm.io.images import read_image_values, write_png

    f = parse_film(film)
    fs = f.shots[0]
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir(), dst.mkdir()
    ramp = np.linspace(0.0, 1.0, f.height * f.width).reshape(f.height, f.width, 1) * np.ones(3)
    for frame in fs.shot.frame_numbers:
        write_png(src / f"{fs.name}.{int(frame):04d}.png", ramp, bits=16)
    _master_frames(f, fs, src, dst, "prores422hq", True)
    out, bits = read_image_values(dst / f"{fs.name}.{int(fs.shot.frame_numbers[0]):04d}.png")
    band = np.nonzero(out[..., 0].max(axis=1) < ramp[..., 0].min(axis=1))[0]  # rows the black band darkened
    top = band.min()
    assert 6 < len(band) < f.height // 2 and band.max() == f.height - 1
    assert bits == 16 and len(np.unique(np.round(out[:top] * 65535))) > 256
    assert np.abs(out[:top] - ramp[:top]).max() <= 0.5 / 65535 + 1e-12  # rounded to 16 bits, no further
    assert out[top:].max() > 0.8 and np.all(out[top:, 0] == 0)  # white text (8 px high: thin) on the black band
