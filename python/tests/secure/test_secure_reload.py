"""SIGHUP end to end: certificates, CRL and password file are re-read without dropping
compliant clients; a newly revoked certificate's client is disconnected (0x98); a bad
file is refused with its line and the running configuration stays."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.security.passwd import hash_password
from security.certs import Issued, client_context, issue, make_ca, make_crl

from .broker import PASSWORD, WAIT, Broker, Client, tls_table, write_passwd

ADMINISTRATIVE_ACTION = 0x98


@dataclass
class Lab:
    dir: Path
    ca: Issued
    server: Issued
    crl: Path
    passwd: Path
    broker: Broker

    def client(self, cert: Issued | None, client_id: str, **kw: str) -> Client:
        return Client(self.broker.ports[0], client_id, context=client_context(self.ca, cert),
                      **kw)  # type: ignore[arg-type]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    ca = make_ca(tmp_path)
    server = issue(ca, "localhost", server=True)
    crl = make_crl(ca)
    passwd = write_passwd(tmp_path)
    config = tmp_path / "broker.toml"
    config.write_text(f"""\
password_file = "{passwd}"
[[listener]]
bind = "127.0.0.1:0"
{tls_table(ca, server, crl=crl, require_client_cert=False)}
""")
    broker = Broker(config)
    yield Lab(tmp_path, ca, server, crl, passwd, broker)
    assert broker.stop() == 0


def test_reloaded_crl_disconnects_only_the_revoked_client(lab: Lab) -> None:
    good = issue(lab.ca, "pi-0001")
    bad = issue(lab.ca, "pi-0002")
    keeper = lab.client(good, "pi-0001")
    doomed = lab.client(bad, "pi-0002")
    assert keeper.accepted and doomed.accepted
    make_crl(lab.ca, revoked=[bad])  # rewrites lab.crl in place
    lab.broker.reload()
    try:
        assert doomed.gone.wait(WAIT)
        assert doomed.disconnect_reason == ADMINISTRATIVE_ACTION
        assert lab.broker.wait_log("revoked")
        # the compliant client is still served: a round trip through the broker
        keeper.client.subscribe("pi/pi-0001/echo", 0)
        keeper.client.publish("pi/pi-0001/echo", b"still here", 0)
        assert _wait(lambda: bool(keeper.messages))
        assert not keeper.gone.is_set()
        # and the revoked certificate no longer gets in at all
        again = lab.client(bad, "pi-0002")
        again.close()
        assert not again.accepted
    finally:
        keeper.close()
        doomed.close()


def _wait(ready: object) -> bool:
    import time

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _server_serial(lab: Lab) -> int:
    context = client_context(lab.ca)
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", lab.broker.ports[0]), timeout=WAIT) as raw, \
            context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    from roost.security.tls import certificate_serial

    return certificate_serial(der)


def test_reload_picks_up_a_renewed_server_certificate(lab: Lab) -> None:
    assert _server_serial(lab) == lab.server.serial
    renewed = issue(lab.ca, "localhost", server=True, name="renewed")
    shutil.copy(renewed.cert_path, lab.server.cert_path)
    shutil.copy(renewed.key_path, lab.server.key_path)
    lab.broker.reload()
    assert lab.broker.wait_log("reloaded")
    assert _server_serial(lab) == renewed.serial


def test_reload_picks_up_a_new_password(lab: Lab) -> None:
    lab.passwd.write_text(f"dashboard:{hash_password('n3w')}\n")
    lab.broker.reload()
    assert lab.broker.wait_log("reloaded")
    old = lab.client(None, "dash", username="dashboard", password=PASSWORD)
    old.close()
    new = lab.client(None, "dash", username="dashboard", password="n3w")
    new.close()
    assert (old.accepted, new.accepted) == (False, True)


@pytest.mark.parametrize("broken", ["passwd", "crl", "cert"])
def test_bad_file_on_reload_is_refused_and_the_running_config_stays(
        lab: Lab, broken: str) -> None:
    device = issue(lab.ca, "pi-0001")
    connected = lab.client(device, "pi-0001")
    assert connected.accepted
    target = {"passwd": lab.passwd, "crl": lab.crl, "cert": lab.server.cert_path}[broken]
    target.write_text("dashboard $7$nonsense\n" if broken == "passwd" else "garbage\n")
    lab.broker.reload()
    try:
        assert lab.broker.wait_log("reload refused, keeping the running configuration")
        if broken == "passwd":
            assert lab.broker.wait_log(rf"{lab.passwd}:1: ")
        assert not connected.gone.is_set()
        fresh = lab.client(device, "pi-0001b", username=None)  # type: ignore[arg-type]
        fresh.close()
        assert fresh.result == 0x87  # handshake fine (old files), CN mismatch as ever
        service = lab.client(None, "dash", username="dashboard", password=PASSWORD)
        service.close()
        assert service.accepted
        assert _server_serial(lab) == lab.server.serial
    finally:
        connected.close()
