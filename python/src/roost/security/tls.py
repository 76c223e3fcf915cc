"""TLS for broker listeners: the server context, the client identity, CRL revocation.

The server builds one context per listener and rebuilds it on SIGHUP; `revoked` lets it
drop clients that connected before a reloaded CRL revoked their certificate, because a
CRL is only consulted during the handshake.
"""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # cryptography takes seconds to import on a Pi: only CRL users pay
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes

# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are all modern already.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"
Identity = Literal["cn", "san-dns", "san-uri", "san-email"]
_SAN_TYPES = {"san-dns": "DNS", "san-uri": "URI", "san-email": "email"}


class TlsError(ValueError):
    """A certificate, key, CA or CRL file that cannot be used."""


def server_context(
    cert: Path, key: Path, ca: Path | None, crl: Path | None, require_client_cert: bool
) -> ssl.SSLContext:
    """A TLS 1.2+ server context; client certificates are checked against `ca` (and `crl`)."""
    if require_client_cert and ca is None:
        raise TlsError("requiring client certificates needs a CA file")
    if crl is not None and ca is None:
        raise TlsError("a CRL needs the CA file that issued it")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(cert, key)
        if ca is not None:
            context.load_verify_locations(cafile=ca)
            context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
        _check_crl(context, crl)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load TLS files: {exc}") from exc
    return context


def _check_crl(context: ssl.SSLContext, crl: Path | None) -> None:
    """Refuse the peer's certificate when `crl` revokes it."""
    if crl is not None:
        context.load_verify_locations(cafile=crl)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


def identity_from_cert(cert: dict[str, Any], use: Identity = "cn") -> str | None:
    """The identity in a `getpeercert()` dict; None when absent or ambiguous (two CNs)."""
    if use == "cn":
        names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    else:
        kind = _SAN_TYPES[use]
        names = [v for k, v in cert.get("subjectAltName", ()) if k == kind]
    return names[0] if len(names) == 1 else None


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket, use: Identity = "cn") -> str | None:
    """The verified client certificate's identity; None without one."""
    cert = ssl_object.getpeercert()
    return identity_from_cert(cert, use) if cert else None


def _load_crl(crl: Path) -> x509.CertificateRevocationList:
    from cryptography import x509  # noqa: PLC0415 - see the import above

    try:
        data = crl.read_bytes()
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except (OSError, ValueError) as exc:
        raise TlsError(f"{crl}: not a readable CRL: {exc}") from exc


def load_crl_serials(crl: Path, ca: Path | None = None) -> set[int]:
    """The revoked serial numbers; with `ca`, the CRL must be signed by that CA."""
    from cryptography import x509  # noqa: PLC0415

    loaded = _load_crl(crl)
    if ca is not None:
        try:
            issuer = x509.load_pem_x509_certificate(ca.read_bytes())
        except (OSError, ValueError) as exc:
            raise TlsError(f"{ca}: not a readable CA certificate: {exc}") from exc
        key: CertificateIssuerPublicKeyTypes = issuer.public_key()  # type: ignore[assignment]
        if loaded.issuer != issuer.subject or not loaded.is_signature_valid(key):
            raise TlsError(f"{crl} is not signed by the CA in {ca}")
    return {entry.serial_number for entry in loaded}


def certificate_serial(cert_der: bytes) -> int:
    """The serial number of a DER certificate (`getpeercert(binary_form=True)`)."""
    from cryptography import x509  # noqa: PLC0415

    return x509.load_der_x509_certificate(cert_der).serial_number


def not_after(cert: x509.Certificate) -> float:
    """The certificate's notAfter as a Unix time.

    `not_valid_after_utc` is cryptography 42+. Debian 12's python3-cryptography (38), which
    armhf brokers run (PyPI has no armv7l wheels, see roles/roost_package), has only
    `not_valid_after`, a naive datetime in UTC.
    """
    expires = getattr(cert, "not_valid_after_utc", None)
    if expires is None:
        expires = cert.not_valid_after.replace(tzinfo=dt.UTC)
    return float(expires.timestamp())


def revoked(cert_der: bytes, serials: set[int] | frozenset[int]) -> bool:
    """Whether a connected client's certificate (`getpeercert(binary_form=True)`) is revoked."""
    return certificate_serial(cert_der) in serials


def client_context(cert: Path | None, key: Path | None, ca: Path,
                   crl: Path | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ client context for the broker's own outgoing connections (cluster and
    external bridges): the server is verified against `ca` and its host name."""
    try:
        context = ssl.create_default_context(cafile=str(ca))  # this CA only, not the system's
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert is not None and key is not None:
            context.load_cert_chain(cert, key)
        _check_crl(context, crl)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load TLS files: {exc}") from exc
    return context
