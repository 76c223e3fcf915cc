"""A throwaway PKI for tests: a CA, server and client certificates, CRLs, as PEM files.

Other suites can reuse it:

    ca = make_ca(tmp_path)
    server = issue(ca, "localhost", server=True)
    device = issue(ca, "pi-0001")
    crl = make_crl(ca, revoked=[device])
    ssl_ctx = client_context(ca, device)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path
    directory: Path  # where this PKI writes its files

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def bundle(self) -> Path:
        """Certificate and key in one file, as HAProxy's `crt` wants."""
        path = self.directory / f"{self.cert_path.stem}.bundle.pem"
        _write(path, self.cert_path.read_bytes() + self.key_path.read_bytes(), 0o600)
        return path


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _save(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Issued:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(key_path, key_pem, 0o600)
    return Issued(cert, key, cert_path, key_path, directory)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(entry: str) -> x509.GeneralName:
    kind, _, value = entry.partition(":")
    if kind == "DNS":
        return x509.DNSName(value)
    if kind == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    if kind == "URI":
        return x509.UniformResourceIdentifier(value)
    if kind == "email":
        return x509.RFC822Name(value)
    raise ValueError(f"SAN {entry!r}: use DNS:, IP:, URI: or email:")


def make_ca(directory: Path, cn: str = "Roost Test CA", name: str = "ca") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return _save(directory, name, cert, key)


def issue(
    ca: Issued,
    cn: str,
    *,
    server: bool = False,
    sans: Sequence[str] = (),
    not_after: dt.datetime | None = None,
    name: str | None = None,
    client_too: bool = False,
) -> Issued:
    """A leaf certificate signed by `ca`; a server gets DNS:localhost and IP:127.0.0.1;
    `client_too`: a server certificate that is also a client's (a cluster node's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    end = not_after or now + 10 * DAY
    names = [*sans, *(["DNS:localhost", "IP:127.0.0.1"] if server and not sans else [])]
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    usages = [usage, ExtendedKeyUsageOID.CLIENT_AUTH] if server and client_too else [usage]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, end) - DAY)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_san(n) for n in names]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    return _save(ca.directory, name or cn, cert, key)


def make_crl(ca: Issued, revoked: Iterable[Issued | int] = (), name: str = "crl") -> Path:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - DAY)
        .next_update(now + 7 * DAY)
    )
    for item in revoked:
        serial = item if isinstance(item, int) else item.serial
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - DAY)
        builder = builder.add_revoked_certificate(entry.build())
    path = ca.directory / f"{name}.pem"
    crl = builder.sign(ca.key, hashes.SHA256())
    _write(path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
    return path


def client_context(ca: Issued, client: Issued | None = None) -> ssl.SSLContext:
    """A client context trusting `ca`, presenting `client` when given."""
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    if client is not None:
        context.load_cert_chain(client.cert_path, client.key_path)
    return context
