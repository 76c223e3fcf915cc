"""Mutual TLS end to end: a real broker process, certificates made here, paho clients.

Every rule of issue 4's "Listeners and identity" with its negative case: the right
certificate gets in and its CN becomes the client's identity; a wrong CA, an expired or
revoked certificate, no certificate, a client id that is not the CN, anonymous clients
and bad passwords are refused.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.mqtt.codec import encode
from roost.mqtt.packets import MQTT_311, Connect
from security.certs import Issued, client_context, issue, make_ca

from .broker import PASSWORD, V5, V311, WAIT, Broker, Client, tls_table, write_passwd
from .pki import Pki

NOT_AUTHORIZED = 0x87
BAD_PASSWORD = 0x86


@dataclass
class Lab:
    dir: Path
    ca: Issued
    device: Issued
    revoked: Issued
    broker: Broker

    @property
    def tls_port(self) -> int:
        return self.broker.ports[0]

    @property
    def password_port(self) -> int:
        return self.broker.ports[1]

    def context(self, client: Issued | None) -> ssl.SSLContext:
        return client_context(self.ca, client)


def write_config(directory: Path, ca: Issued, server: Issued, crl: Path) -> Path:
    config = directory / "broker.toml"
    config.write_text(f"""\
password_file = "{write_passwd(directory)}"

[[listener]]
name = "devices"
bind = "127.0.0.1:0"
{tls_table(ca, server, crl=crl)}

[[listener]]
name = "services"
bind = "127.0.0.1:0"
{tls_table(ca, server, require_client_cert=False)}
""")
    return config


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("mtls")
    broker = Broker(write_config(directory, pki.ca, pki.server, pki.crl), listeners=2)
    yield Lab(directory, pki.ca, pki.device, pki.revoked, broker)
    assert broker.stop() == 0


@pytest.mark.parametrize(("protocol", "client_id"), [(V311, "pi-0001"), (V5, "pi-0001"),
                                                     (V5, "")], ids=["v311", "v5", "v5-empty"])
def test_good_certificate_connects_as_its_cn(lab: Lab, protocol: object,
                                             client_id: str) -> None:
    """An empty client id takes the CN (else it would be refused as a mismatch)."""
    client = Client(lab.tls_port, client_id, protocol=protocol,  # type: ignore[arg-type]
                    context=lab.context(lab.device))
    try:
        assert client.accepted, client.result
    finally:
        client.close()


def test_client_id_other_than_the_cn_is_refused_and_logged(lab: Lab) -> None:
    client = Client(lab.tls_port, "pi-0002", context=lab.context(lab.device))
    client.close()
    assert client.result == NOT_AUTHORIZED
    assert lab.broker.wait_log(r"client id 'pi-0002' is not its certificate identity 'pi-0001'")


def _raw_v311_connack(lab: Lab, client_id: str) -> bytes:
    context = lab.context(lab.device)
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", lab.tls_port), timeout=WAIT) as raw, \
            context.wrap_socket(raw) as tls:
        tls.sendall(encode(Connect(client_id, protocol_version=MQTT_311), MQTT_311))
        return tls.recv(4)


def test_v311_mismatch_gets_return_code_5(lab: Lab) -> None:
    assert _raw_v311_connack(lab, "pi-0009") == b"\x20\x02\x00\x05"
    assert _raw_v311_connack(lab, "pi-0001") == b"\x20\x02\x00\x00"


def _refused_at_tls(client: Client) -> bool:
    client.close()
    return isinstance(client.result, str)


def test_certificate_from_another_ca_is_refused(lab: Lab, tmp_path: Path) -> None:
    rogue_ca = make_ca(tmp_path, cn="Rogue CA")
    rogue = issue(rogue_ca, "pi-0001")
    context = client_context(lab.ca, rogue)  # trusts our server, presents the rogue cert
    assert _refused_at_tls(Client(lab.tls_port, "pi-0001", context=context))


def test_expired_certificate_is_refused(lab: Lab) -> None:
    expired = issue(lab.ca, "pi-0007", name="expired",
                    not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    assert _refused_at_tls(Client(lab.tls_port, "pi-0007", context=lab.context(expired)))


def test_revoked_certificate_is_refused(lab: Lab) -> None:
    context = lab.context(lab.revoked)
    assert _refused_at_tls(Client(lab.tls_port, "pi-0666", context=context))


def test_no_certificate_is_refused_where_one_is_required(lab: Lab) -> None:
    assert _refused_at_tls(Client(lab.tls_port, "pi-0001", context=lab.context(None)))


@pytest.mark.parametrize("protocol", [V311, V5], ids=["v311", "v5"])
def test_anonymous_is_refused_with_a_reason(lab: Lab, protocol: object) -> None:
    client = Client(lab.password_port, "visitor", protocol=protocol,  # type: ignore[arg-type]
                    context=lab.context(None))
    client.close()
    assert client.result == NOT_AUTHORIZED  # paho maps v3 return code 5 to 0x87
    assert lab.broker.wait_log("not authorized: anonymous access is off")


def test_password_file_lets_a_service_account_in(lab: Lab) -> None:
    client = Client(lab.password_port, "dash-1", context=lab.context(None),
                    username="dashboard", password=PASSWORD)
    try:
        assert client.accepted, client.result
    finally:
        client.close()


@pytest.mark.parametrize(("user", "password"), [("dashboard", "guess"), ("nobody", PASSWORD)])
def test_bad_password_or_unknown_user_is_refused(lab: Lab, user: str, password: str) -> None:
    client = Client(lab.password_port, "dash-2", context=lab.context(None),
                    username=user, password=password)
    client.close()
    assert client.result == BAD_PASSWORD


def test_certificate_on_the_optional_listener_still_names_the_client(lab: Lab) -> None:
    client = Client(lab.password_port, "pi-0003", context=lab.context(lab.device))
    client.close()
    assert client.result == NOT_AUTHORIZED


def test_plain_mqtt_on_a_tls_listener_gets_no_connack(lab: Lab) -> None:
    with socket.create_connection(("127.0.0.1", lab.tls_port), timeout=WAIT) as raw:
        raw.sendall(encode(Connect("pi-0001"), 5))
        try:
            answer = raw.recv(100)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"\x20")
