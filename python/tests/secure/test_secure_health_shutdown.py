"""/healthz says 503 from the SIGTERM on: with `shutdown_grace` the broker keeps serving
that long so a load balancer's health checks move new clients elsewhere first, and a
second signal ends the wait."""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from pathlib import Path

from .broker import METRICS, WAIT, Broker, Client


def _health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=WAIT) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_healthz_is_503_once_sigterm_arrives(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('shutdown_grace = 600\nmetrics = { bind = "127.0.0.1:0" }\n'
                      '[[listener]]\nbind = "127.0.0.1:0"\nallow_anonymous = true\n')
    broker = Broker(config)
    try:
        match = METRICS.search(broker.text)
        assert match, broker.text
        http = int(match.group(1))
        assert _health(http) == 200
        broker.proc.send_signal(signal.SIGTERM)
        assert broker.wait_log(r"shutting down in 600s")
        assert _health(http) == 503
        client = Client(broker.ports[0], "late")  # still served during the grace
        client.close()
        assert client.accepted, client.result
    finally:
        assert broker.stop() == 0  # the second signal: no 600 s wait
    assert "shutting down in 600s" in broker.text
    assert broker.text.count("INFO roost.broker: shutting down\n") == 1
