"""The metrics and health endpoint over mutual TLS (`metrics.tls`), for Prometheus and
HAProxy health checks when it is not on loopback: a client certificate from the Roost CA
gets /metrics and /healthz, a client without one gets nothing."""

from __future__ import annotations

import http.client
import ssl
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.broker.config import ConfigError, load
from roost.cli import main
from security.certs import Issued, client_context, issue, make_ca

from .broker import METRICS, WAIT, Broker, tls_table


@dataclass
class Lab:
    ca: Issued
    scraper: Issued
    port: int


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("metricstls")
    ca = make_ca(tmp)
    server, scraper = issue(ca, "localhost", server=True), issue(ca, "prometheus")
    config = tmp / "broker.toml"
    config.write_text(f"""\
metrics = {{ bind = "127.0.0.1:0", {tls_table(ca, server, require_client_cert=True)} }}
[[listener]]
bind = "127.0.0.1:0"
allow_anonymous = true
""")
    assert main(["broker", "check-config", str(config)]) == 0
    broker = Broker(config)
    try:
        match = METRICS.search(broker.text)
        assert match, broker.text
        yield Lab(ca, scraper, int(match.group(1)))
    finally:
        assert broker.stop() == 0


def _get(port: int, path: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    context.check_hostname = False
    with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", timeout=WAIT,
                                context=context) as answer:
        return answer.status, answer.read()


def test_client_certificate_gets_health_and_metrics(lab: Lab) -> None:
    context = client_context(lab.ca, lab.scraper)
    assert _get(lab.port, "/healthz", context)[0] == 200
    status, body = _get(lab.port, "/metrics", context)
    assert status == 200
    assert b"roost_connections" in body


def test_client_without_certificate_is_refused(lab: Lab) -> None:
    with pytest.raises((OSError, http.client.HTTPException)):  # URLError, SSLError, reset
        _get(lab.port, "/healthz", client_context(lab.ca))


def test_plain_http_on_the_tls_endpoint_gets_no_answer(lab: Lab) -> None:
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{lab.port}/healthz", timeout=WAIT)


@pytest.mark.parametrize(("table", "host", "port"), [
    ('{ bind = "127.0.0.1", port = 9999 }', "127.0.0.1", 9999),  # the first shape
    ('{ bind = "127.0.0.1:9998" }', "127.0.0.1", 9998),
    ('{ bind = "[::1]:9997" }', "::1", 9997),
    ('{ bind = "::1" }', "::1", 9883),
])
def test_metrics_bind_shapes(tmp_path: Path, table: str, host: str, port: int) -> None:
    path = tmp_path / "broker.toml"
    path.write_text(f'metrics = {table}\n[[listener]]\nbind = "127.0.0.1:1"\n')
    metrics = load(path).metrics
    assert metrics is not None
    assert (metrics.host, metrics.port, metrics.tls) == (host, port, None)


def test_bad_metrics_tls_names_the_metrics_line(tmp_path: Path) -> None:
    path = tmp_path / "broker.toml"
    path.write_text('log_level = "info"\n'
                    'metrics = { bind = "10.0.0.1:9883", tls = { cert = "a", key = "b" } }\n'
                    '[[listener]]\nbind = "127.0.0.1:1"\n')
    with pytest.raises(ConfigError, match="metrics: tls: client certificates") as err:
        load(path)
    assert err.value.line == 2


def test_metrics_off_loopback_without_tls_is_allowed_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broker.toml"
    path.write_text('metrics = { bind = "0.0.0.0:9883" }\n[[listener]]\nbind = "127.0.0.1:1"\n')
    assert main(["broker", "check-config", str(path)]) == 0
    assert "warning: metrics on 0.0.0.0:9883 without tls" in capsys.readouterr().err
