"""Mutual TLS with certificates made in the test; the ACL is the one pattern of the layout."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import AgentFactory, WatcherFactory
from .harness import Server, agent_toml
from .pki import Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[Server]:
    server = Server("mosquitto", tmp_path / "broker", pki)
    server.start()
    yield server
    server.stop()


def test_agent_over_mutual_tls_confined_by_one_acl_pattern(
        tls_broker: Server, pki: Pki, agent: AgentFactory, watcher: WatcherFactory,
        tmp_path: Path) -> None:
    operator = (pki.ca, pki.issue("operator"))
    w = watcher(tls_broker.port, ["roost/#"], tls=operator)
    agent(agent_toml(tmp_path / "state", [tls_broker.port], client_id="pi-7",
                     tls=(pki.ca, pki.issue("pi-7"))))
    w.wait(lambda ms: len(w.seqs()) >= 3, "telemetry over mTLS")
    assert w.request("roost/lab/pi-7/cmd/ping", b"")["ok"] is True
    # the operator view works over the same mTLS listener
    out = subprocess.run(
        [sys.executable, "-m", "roost", "fleet", "status", "--broker",
         f"127.0.0.1:{tls_broker.port}", "--tls-ca", str(pki.ca), "--tls-cert",
         str(operator[1].cert), "--tls-key", str(operator[1].key), "--json"],
        capture_output=True, text=True, timeout=30, check=True).stdout
    (pi,) = json.loads(out)
    assert (pi["client_id"], pi["state"]) == ("pi-7", "online")


def test_agent_without_a_valid_certificate_never_publishes(
        tls_broker: Server, pki: Pki, agent: AgentFactory, watcher: WatcherFactory,
        tmp_path: Path) -> None:
    w = watcher(tls_broker.port, ["roost/#"], tls=(pki.ca, pki.issue("operator")))
    stranger = Pki(tmp_path / "other-ca").issue("pi-8")  # signed by a CA the broker ignores
    proc = agent(agent_toml(tmp_path / "state", [tls_broker.port], client_id="pi-8",
                            tls=(pki.ca, stranger)))
    proc.wait_log("broker link down")
    assert proc.proc.poll() is None  # keeps retrying with backoff, keeps queueing
    # the operator's own round trip through the broker proves the watcher is live
    w.client.publish("roost/lab/operator/probe", b"{}", qos=1)
    w.wait(lambda ms: any(m.topic.endswith("/probe") for m in ms), "the probe")
    assert not any("pi-8" in m.topic for m in w.msgs)
