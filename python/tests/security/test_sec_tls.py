"""Server TLS contexts over real loopback sockets with certificates made by the tests."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.security.tls import (
    CIPHERS,
    TlsError,
    identity_from_cert,
    load_crl_serials,
    peer_identity,
    revoked,
    server_context,
)

from .certs import Issued, client_context, issue, make_ca, make_crl


@dataclass
class Pki:
    ca: Issued
    server: Issued
    device: Issued


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = make_ca(tmp_path)
    device = issue(ca, "pi-0001", sans=["URI:roost://fleet/pi-0001", "DNS:pi-0001.local"])
    return Pki(ca, issue(ca, "localhost", server=True), device)


@dataclass
class Outcome:
    server_error: Exception | None = None
    identity: str | None = None
    cert_der: bytes | None = None
    version: str | None = None
    cipher: str | None = None
    client_got: bytes | None = None


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> Outcome:
    """One TLS connection over loopback; the server side reports what it saw."""
    outcome = Outcome()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            conn.settimeout(10)
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    outcome.identity = peer_identity(tls)
                    outcome.cert_der = tls.getpeercert(binary_form=True)
                    outcome.version, outcome.cipher = tls.version(), tls.cipher()[0]  # type: ignore[index]
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as exc:
                outcome.server_error = exc
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                outcome.client_got = tls.recv(2)
        except (ssl.SSLError, OSError):
            pass  # the server side says why
        thread.join(15)
        assert not thread.is_alive()
    return outcome


def _ctx(pki: Pki, crl: Path | None = None, require: bool = True) -> ssl.SSLContext:
    s = pki.server
    return server_context(s.cert_path, s.key_path, pki.ca.cert_path, crl, require)


def test_good_client_certificate(pki: Pki) -> None:
    got = handshake(_ctx(pki), client_context(pki.ca, pki.device))
    assert got.server_error is None
    assert got.client_got == b"ok"
    assert got.identity == "pi-0001"
    assert got.cert_der == pki.device.der
    assert got.version in ("TLSv1.2", "TLSv1.3")


def test_client_certificate_from_another_ca(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    rogue_ca = make_ca(tmp_path / "other", cn="Rogue CA")
    rogue = issue(rogue_ca, "pi-0001")
    got = handshake(_ctx(pki), client_context(pki.ca, rogue))
    assert isinstance(got.server_error, ssl.SSLError)
    assert "unable to get local issuer certificate" in str(got.server_error)
    assert got.client_got is None


def test_expired_client_certificate(pki: Pki) -> None:
    old = issue(pki.ca, "pi-old", not_after=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    got = handshake(_ctx(pki), client_context(pki.ca, old))
    assert "certificate has expired" in str(got.server_error)
    assert got.client_got is None


def test_revoked_client_certificate(pki: Pki) -> None:
    crl = make_crl(pki.ca, revoked=[pki.device])
    got = handshake(_ctx(pki, crl), client_context(pki.ca, pki.device))
    assert "certificate revoked" in str(got.server_error)
    assert got.client_got is None
    other = issue(pki.ca, "pi-0002")
    fine = handshake(_ctx(pki, crl), client_context(pki.ca, other))
    assert fine.server_error is None and fine.identity == "pi-0002"


def test_no_client_certificate_when_required(pki: Pki) -> None:
    got = handshake(_ctx(pki), client_context(pki.ca))
    assert "peer did not return a certificate" in str(got.server_error)
    assert got.client_got is None


def test_client_certificate_optional(pki: Pki) -> None:
    got = handshake(_ctx(pki, require=False), client_context(pki.ca))
    assert got.server_error is None and got.identity is None and got.client_got == b"ok"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_tls_1_1_refused(pki: Pki) -> None:
    context = _ctx(pki)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    old = client_context(pki.ca, pki.device)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    got = handshake(context, old)
    assert isinstance(got.server_error, ssl.SSLError)
    assert "unsupported protocol" in str(got.server_error)


def test_tls_1_2_gets_a_forward_secret_aead_suite(pki: Pki) -> None:
    client = client_context(pki.ca, pki.device)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ALL:@SECLEVEL=0")  # offer everything; the server must choose well
    got = handshake(_ctx(pki), client)
    assert got.version == "TLSv1.2"
    assert got.cipher is not None and got.cipher.startswith("ECDHE-")
    assert "GCM" in got.cipher or "CHACHA20" in got.cipher
    assert CIPHERS.startswith("ECDHE")


def test_tls_1_2_without_aead_or_forward_secrecy_refused(pki: Pki) -> None:
    client = client_context(pki.ca, pki.device)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:AES128-GCM-SHA256")
    got = handshake(_ctx(pki), client)
    assert "no shared cipher" in str(got.server_error)


def test_identity_choices() -> None:
    cert = {
        "subject": ((("organizationName", "Roost"),), (("commonName", "pi-9"),)),
        "subjectAltName": (("DNS", "pi-9.local"), ("URI", "roost://pi-9"), ("email", "a@b")),
    }
    assert identity_from_cert(cert, "cn") == "pi-9"
    assert identity_from_cert(cert, "san-dns") == "pi-9.local"
    assert identity_from_cert(cert, "san-uri") == "roost://pi-9"
    assert identity_from_cert(cert, "san-email") == "a@b"
    two_cns = {"subject": ((("commonName", "a"),), (("commonName", "b"),))}
    assert identity_from_cert(two_cns, "cn") is None  # ambiguous: refuse rather than guess
    assert identity_from_cert({}, "san-uri") is None


def test_crl_serials_and_revoked(pki: Pki, tmp_path: Path) -> None:
    other = issue(pki.ca, "pi-0002")
    crl = make_crl(pki.ca, revoked=[pki.device, 12345])
    serials = load_crl_serials(crl, ca=pki.ca.cert_path)
    assert serials == {pki.device.serial, 12345}
    assert revoked(pki.device.der, serials)
    assert not revoked(other.der, serials)
    (tmp_path / "other").mkdir()
    foreign = make_crl(make_ca(tmp_path / "other", cn="Rogue CA"), revoked=[other])
    with pytest.raises(TlsError, match="not signed by the CA"):
        load_crl_serials(foreign, ca=pki.ca.cert_path)
    (tmp_path / "junk.pem").write_text("not a crl")
    with pytest.raises(TlsError, match="not a readable CRL"):
        load_crl_serials(tmp_path / "junk.pem")


def test_bad_files_raise_tls_error(pki: Pki, tmp_path: Path) -> None:
    s = pki.server
    with pytest.raises(TlsError, match="cannot load"):
        server_context(s.cert_path, tmp_path / "missing.key", None, None, False)
    with pytest.raises(TlsError, match="needs a CA"):
        server_context(s.cert_path, s.key_path, None, None, True)
    with pytest.raises(TlsError, match="cannot load"):
        server_context(s.cert_path, pki.device.key_path, None, None, False)  # key mismatch


def test_key_files_are_private(pki: Pki) -> None:
    assert pki.device.key_path.stat().st_mode & 0o777 == 0o600
    assert pki.ca.key_path.stat().st_mode & 0o777 == 0o600


def test_peer_identity_on_an_ssl_object(pki: Pki) -> None:
    """asyncio hands the server an SSLObject (memory BIOs), not an SSLSocket."""
    bios = [ssl.MemoryBIO() for _ in range(4)]
    server = _ctx(pki).wrap_bio(bios[0], bios[1], server_side=True)
    client = client_context(pki.ca, pki.device).wrap_bio(
        bios[2], bios[3], server_hostname="localhost"
    )
    done: set[str] = set()
    for _ in range(10):  # a few flights each way
        for name, side in (("client", client), ("server", server)):
            try:
                side.do_handshake()
                done.add(name)
            except ssl.SSLWantReadError:
                pass
        bios[0].write(bios[3].read())  # client -> server
        bios[2].write(bios[1].read())  # server -> client
    assert done == {"client", "server"}
    assert peer_identity(server) == "pi-0001"
    assert peer_identity(server, "san-uri") == "roost://fleet/pi-0001"
    assert peer_identity(server, "san-dns") == "pi-0001.local"
    assert peer_identity(client) == "localhost"
