"""Client certificates for the scale run's simulated devices and its probe, signed by the
lab's CA on the controller (roles/pki keeps it in ~/.roost/pki/<inventory name>).

Each certificate looks like a Pi's from roles/pki: CN = client id, clientAuth, ECDSA P-256,
valid from an hour ago. Key and certificate share one 0600 PEM file (Python's ssl loads
both from it). They are cached in a directory named after the CA certificate's digest, so
a rerun signs nothing and a new lab CA gets new ones.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAYS = 30


def ca_dir(inventory: Path) -> Path:
    """roles/pki's default pki_ca_dir for this inventory."""
    return Path.home() / ".roost" / "pki" / inventory.resolve().name


def issue(inventory: Path, cache: Path, names: list[str]) -> tuple[Path, dict[str, Path]]:
    """-> (the CA certificate, each name's PEM with key and certificate)."""
    ca = ca_dir(inventory)
    ca_pem = (ca / "ca.crt").read_bytes()
    out = cache / ("certs-" + hashlib.sha256(ca_pem).hexdigest()[:16])
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = {n: out / f"{n}.pem" for n in names}
    missing = [n for n, p in paths.items() if not p.exists()]
    if missing:
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
        ca_key = serialization.load_pem_private_key((ca / "ca.key").read_bytes(), None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise SystemExit(f"{ca / 'ca.key'}: expected the pki role's EC key")
        for n in missing:
            _write(paths[n], *_sign(n, ca_cert, ca_key))
    return ca / "ca.crt", paths


def _sign(name: str, ca_cert: x509.Certificate,
          ca_key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                     False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            cert.public_bytes(serialization.Encoding.PEM))


def _write(path: Path, key: bytes, cert: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + cert)
    tmp.replace(path)  # a run stopped halfway never leaves a half-written PEM behind
