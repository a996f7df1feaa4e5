"""`splatfilm provenance FILE`: what a file splatfilm wrote says of how it was made, checked.

Reading (io/provenance.py says where each kind keeps its record): the record is parsed and
its `content_sha256` compared with the hash of the file's pixels (PNG, EXR) or coded video
packets (MP4, MOV) computed now, so pictures changed after writing fail. A file signed with
C2PA (`sign_file`, `render --sign KEY CERT`) is also validated by c2pa-python: its manifest,
claim signature and the hash binding the manifest to the file's bytes. A certificate not on
a C2PA trust list is reported as such (a throwaway test certificate is valid but untrusted).

Signing: PNG, MP4 and MOV carry a C2PA manifest (c2pa.actions: created, with the record's
IPTC digital source type; org.splatfilm.provenance: the record); EXR has no C2PA binding and
keeps the unsigned record. The key is an ES256 (P-256) or PS256 (RSA) private key (PEM), the
certificate a PEM chain, signer first; C2PA validators refuse a self-signed signer, so the
chain needs a CA above the signer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from splatfilm.errors import SplatfilmError
from splatfilm.io.images import read_exr_provenance
from splatfilm.io.provenance import COMPOSITE, read_png_provenance
from splatfilm.io.video import read_movie_provenance

MIME = {".png": "image/png", ".mp4": "video/mp4", ".mov": "video/quicktime"}
KINDS = (".png", ".exr", ".mp4", ".mov")
_READERS = {".png": read_png_provenance, ".exr": read_exr_provenance}  # else a movie


@dataclass
class Inspection:
    """What a file carries. record: its provenance record (None: none); content_ok: whether
    its pixels or video match the record's hash; c2pa: the C2PA manifest's summary when
    signed (state, the signer, problems), else None; problems: why verification fails."""

    path: Path
    kind: str
    record: dict | None
    content_ok: bool
    c2pa: dict | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_c2pa(path: Path) -> dict | None:
    """The C2PA summary of a PNG/MP4/MOV: {"state": "Valid"/"Invalid"/..., "signer",
    "problems": [validation codes other than an untrusted signer], "trusted": bool,
    "source_type", "record"}; None when the file has no C2PA manifest."""
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        return None
    try:
        import c2pa
    except ImportError:  # an optional extra: without it a signature is neither read nor refused
        return {"state": "not checked (c2pa-python is not installed)", "problems": [], "trusted": False,
                "signer": None, "source_type": None, "record": None}
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader(mime, f)
            data = json.loads(reader.json())
    except Exception as e:  # c2pa.C2paError and its kinds: no manifest reads as unsigned
        if "ManifestNotFound" in type(e).__name__ or "no JUMBF" in str(e) or "not found" in str(e).lower():
            return None
        return {"state": "Invalid", "problems": [str(e).splitlines()[0] if str(e) else type(e).__name__],
                "trusted": False, "signer": None, "source_type": None, "record": None}
    active = data.get("manifests", {}).get(data.get("active_manifest", ""), {})
    statuses = data.get("validation_status") or []
    problems = [s.get("code", "") for s in statuses if s.get("code") != "signingCredential.untrusted"]
    source = record = None
    for a in active.get("assertions", []):
        if a.get("label", "").startswith("c2pa.actions"):
            acts = a.get("data", {}).get("actions", [])
            source = next((x.get("digitalSourceType") for x in acts if x.get("digitalSourceType")), None)
        if a.get("label") == "org.splatfilm.provenance":
            record = a.get("data")
    return {"state": data.get("validation_state", "Invalid" if problems else "Valid"), "problems": problems,
            "trusted": not any(s.get("code") == "signingCredential.untrusted" for s in statuses),
            "signer": (active.get("signature_info") or {}).get("issuer"), "source_type": source, "record": record}


def inspect_file(path: str | Path) -> Inspection:
    """Read and verify what `path` (.png, .exr, .mp4, .mov) carries (module docstring)."""
    path = Path(path)
    kind = path.suffix.lower()
    if kind not in KINDS:
        raise SplatfilmError(f"{path}: splatfilm keeps provenance in .png, .exr, .mp4 and .mov files, "
                             f"not {path.suffix or 'files without an extension'}")
    if not path.is_file():
        raise SplatfilmError(f"{path}: no such file")
    text, actual = _READERS.get(kind, read_movie_provenance)(path)
    record = None
    problems = []
    if text is None:
        problems.append("carries no splatfilm provenance record")
    else:
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise ValueError
        except ValueError:
            record = None
            problems.append("its provenance record is not valid JSON")
    content_ok = record is not None and record.get("content_sha256") == actual
    if record is not None and not content_ok:
        problems.append("its pictures do not match the hash in its provenance record (changed after it was written)")
    c2 = read_c2pa(path)
    if c2 is not None and (c2["problems"] or c2["state"] == "Invalid"):
        problems.append(f"its C2PA manifest does not validate ({', '.join(c2['problems']) or c2['state']})")
    return Inspection(path, kind.lstrip("."), record, content_ok, c2, problems)


def describe(ins: Inspection) -> list[str]:
    """Lines for a person: what the file says, and the verdict."""
    lines = [f"{ins.path} ({ins.kind})"]
    r = ins.record or {}
    for key in ("generator", "film", "film_sha256", "shot", "frames", "frame_range", "timecode", "cut", "master",
                "burn_in", "digital_source_type", "process", "colour"):
        if key in r:
            lines.append(f"  {key}: {r[key]}")
    for name, digest in (r.get("assets") or {}).items():
        lines.append(f"  asset {name}: {digest}")
    if ins.record is not None:
        lines.append(f"  content: {'matches' if ins.content_ok else 'DOES NOT match'} content_sha256 "
                     f"{r.get('content_sha256', '?')}")
    if ins.c2pa is None:
        lines.append("  C2PA: not signed")
    else:
        c = ins.c2pa
        trust = "trusted signer" if c["trusted"] else "signer not on a C2PA trust list"
        lines.append(f"  C2PA: {c['state']} ({trust}; issuer {c['signer']}; source type {c['source_type']})")
    return lines


def sign_file(path: str | Path, key: str | Path, cert: str | Path) -> bool:
    """Sign a PNG/MP4/MOV in place with a C2PA manifest holding its provenance record
    (module docstring); False (nothing done) for kinds C2PA cannot bind (EXR). One-line
    SplatfilmErrors for unreadable keys or certificates and refused signatures."""
    path = Path(path)
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        return False
    c2pa = c2pa_module()
    from splatfilm.io.atomic import atomic_path

    key_pem, cert_pem = _read_pem(key, "private key"), _read_pem(cert, "certificate chain")
    alg = b"ps256" if b"BEGIN RSA" in key_pem or _is_rsa(key_pem) else b"es256"
    text, _ = _READERS.get(path.suffix.lower(), read_movie_provenance)(path)
    record = json.loads(text) if text else {}
    manifest = {
        "claim_generator_info": [{"name": "splatfilm", "version": record.get("splatfilm_version", "")}],
        "title": path.name,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created",
                # A file without a record claims no capture: IPTC's "composite" says nothing of its parts.
                "digitalSourceType": record.get("digital_source_type", COMPOSITE),
                "softwareAgent": {"name": "splatfilm", "version": record.get("splatfilm_version", "")}}]}},
            {"label": "org.splatfilm.provenance", "data": record},
        ],
    }
    with atomic_path(path) as tmp:
        try:
            signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg, cert_pem, key_pem, None))
            builder = c2pa.Builder(json.dumps(manifest))
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                builder.sign(signer, mime, src, dst)
        except OSError as e:
            raise SplatfilmError(f"{path}: cannot sign: {e.strerror or e}") from None
        except Exception as e:  # c2pa.C2paError: a key and certificate that do not match, a refused chain, ...
            raise SplatfilmError(f"{path}: C2PA signing failed: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return True


def c2pa_module() -> ModuleType:
    """c2pa-python, or a one-line error saying how to install it."""
    try:
        import c2pa
    except ImportError as e:
        raise SplatfilmError(f"--sign needs c2pa-python ({e}); pip install 'splatfilm[c2pa]'") from None
    return c2pa


def _read_pem(path: str | Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SplatfilmError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if b"-----BEGIN" not in data:
        raise SplatfilmError(f"{path}: not a PEM {what}")
    return data


def _is_rsa(key_pem: bytes) -> bool:
    try:  # a PKCS#8 PEM does not say its algorithm in its header; cryptography (if present) reads it
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:
        return False
    try:
        return isinstance(load_pem_private_key(key_pem, password=None), rsa.RSAPrivateKey)
    except (ValueError, TypeError):
        return False


def sign_outputs(out_dir: str | Path, key: str | Path, cert: str | Path) -> int:
    """Sign every PNG, MP4 and MOV under a render's folder (hidden work folders left out);
    returns how many were signed."""
    out = Path(out_dir)
    n = 0
    for p in sorted(out.rglob("*")):
        if p.suffix.lower() in MIME and not any(part.startswith(".") for part in p.relative_to(out).parts):
            n += sign_file(p, key, cert)
    return n
