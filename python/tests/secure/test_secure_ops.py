"""Operations: the Prometheus endpoint (every name the alert rules use, with values that
follow what clients did), and /healthz, which HAProxy can poll without an MQTT session."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from roost.broker import config as cfg
from roost.broker.server import Server
from roost.broker.store import NullStore
from security.certs import Issued, client_context, issue, make_ca

from .broker import METRICS, WAIT, Broker, Client, tls_table, write_passwd
from .pki import Pki

NAMES = {
    "roost_connections", "roost_messages_received", "roost_messages_sent",
    "roost_bytes_received", "roost_bytes_sent", "roost_messages_dropped",
    "roost_queued_messages", "roost_retained_messages", "roost_acl_denials",
    "roost_tls_failures", "roost_auth_failures", "roost_certificate_expiry_timestamp_seconds",
    "roost_requests_answered_undelivered",
}


@dataclass
class Lab:
    ca: Issued
    server: Issued
    device: Issued
    broker: Broker
    http: int


def _config(directory: Path, ca: Issued, server: Issued, metrics_port: int = 0) -> Path:
    acl = directory / "acl"
    acl.write_text("pattern readwrite pi/%c/#\n")
    config = directory / "broker.toml"
    config.write_text(f"""\
acl_file = "{acl}"
password_file = "{write_passwd(directory)}"
metrics = {{ bind = "127.0.0.1", port = {metrics_port} }}
[[listener]]
name = "devices"
bind = "127.0.0.1:0"
{tls_table(ca, server, require_client_cert=False)}
""")
    return config


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Lab]:
    broker = Broker(_config(tmp_path_factory.mktemp("ops"), pki.ca, pki.server))
    match = METRICS.search(broker.text)
    assert match, broker.text
    yield Lab(pki.ca, pki.server, pki.device, broker, int(match.group(1)))
    assert broker.stop() == 0


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = _get(port, "/metrics")
    assert status == 200
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def _eventually(port: int, name: str, labels: dict[str, str], least: float) -> float:
    key = (name, tuple(sorted(labels.items())))
    deadline = time.monotonic() + WAIT
    value = -1.0
    while time.monotonic() < deadline:
        value = _samples(port).get(key, -1.0)
        if value >= least:
            break
        time.sleep(0.1)
    return value


def test_every_metric_name_the_alert_rules_use_is_exported(lab: Lab) -> None:
    status, text = _get(lab.http, "/metrics")
    assert status == 200
    assert {f.name for f in text_string_to_metric_families(text)} == NAMES


def test_metrics_follow_the_clients(lab: Lab) -> None:
    device = Client(lab.broker.ports[0], "pi-0001", context=client_context(lab.ca, lab.device))
    try:
        assert device.accepted
        assert _eventually(lab.http, "roost_connections", {}, 1) >= 1
        for i in range(3):
            device.client.publish("pi/pi-0001/t", b"x", qos=1).wait_for_publish(WAIT)
            device.client.publish(f"pi/other/{i}", b"x", qos=1).wait_for_publish(WAIT)
        device.client.publish("pi/pi-0001/kept", b"x", qos=0, retain=True)
        assert _eventually(lab.http, "roost_messages_received_total", {"qos": "1"}, 6) == 6
        assert _eventually(lab.http, "roost_acl_denials_total", {"access": "publish"}, 3) == 3
        assert _eventually(lab.http, "roost_retained_messages", {}, 1) == 1
        assert _eventually(lab.http, "roost_bytes_received_total", {}, 100) >= 100
    finally:
        device.close()
    bad = Client(lab.broker.ports[0], "dash", context=client_context(lab.ca),
                 username="dashboard", password="nope")
    bad.close()
    assert _eventually(lab.http, "roost_auth_failures_total", {}, 1) >= 1
    rogue = make_ca(lab.server.directory, cn="Rogue", name="rogue")
    stranger = issue(rogue, "pi-0001", name="stranger")
    refused = Client(lab.broker.ports[0], "pi-0001", context=client_context(lab.ca, stranger))
    refused.close()
    assert _eventually(lab.http, "roost_tls_failures_total", {}, 1) >= 1


def test_certificate_expiry_is_the_server_certificates(lab: Lab) -> None:
    expires = lab.server.cert.not_valid_after_utc.timestamp()
    key = ("roost_certificate_expiry_timestamp_seconds", (("certificate", "devices"),))
    assert _samples(lab.http)[key] == expires


def test_healthz_is_200_while_serving_and_unknown_paths_404(lab: Lab) -> None:
    assert _get(lab.http, "/healthz")[0] == 200
    assert _get(lab.http, "/nope")[0] == 404


def test_healthz_is_503_before_listening_and_while_stopping(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    config = cfg.load(_config(tmp_path, ca, issue(ca, "localhost", server=True)))

    async def scenario() -> list[int]:
        server = Server(config, NullStore())
        http = await server.start_http()
        assert http is not None
        codes = [await asyncio.to_thread(lambda: _get(http[1], "/healthz")[0])]
        await server.start()
        codes.append(await asyncio.to_thread(lambda: _get(http[1], "/healthz")[0]))
        server.accepting = False  # what stop() does first
        codes.append(await asyncio.to_thread(lambda: _get(http[1], "/healthz")[0]))
        await server.stop()
        return codes

    assert asyncio.run(scenario()) == [503, 200, 503]
