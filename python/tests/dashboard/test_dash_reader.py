"""The dashboard outlives its brokers: started before the broker it shows the link down and
connects when the broker comes; a broker going away is shown, and the page keeps serving."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from agent.harness import Server

from .harness import WAIT, dashboard, get_json, publish, wait_fleet

pytestmark = pytest.mark.interop


def wait_link(url: str, pred: Any, what: str) -> str:
    deadline = time.monotonic() + WAIT
    while True:
        brokers = get_json(f"{url}/api/fleet")["brokers"]
        if brokers and pred(brokers[0]["link"]):
            return str(brokers[0]["link"])
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {brokers}"
        time.sleep(0.1)


def test_started_before_the_broker_and_survives_its_restart(tmp_path: Path) -> None:
    server = Server("mosquitto", tmp_path / "broker")  # a free port, nothing listening yet
    try:
        with dashboard(server.port) as url:
            wait_link(url, lambda link: link != "connecting", "a failed first attempt")
            assert get_json(f"{url}/api/fleet")["pis"] == []
            server.start()
            wait_link(url, lambda link: link == "up", "the link up once the broker runs")
            status = {"state": "online", "ts": time.time(), "version": "9.9"}
            publish(server.port, [("roost/lab/pi-7/status", json.dumps(status).encode())],
                    retain=True)
            wait_fleet(url, lambda p: p.get("pi-7", {}).get("version") == "9.9", "pi-7")
            server.stop()
            assert wait_link(url, lambda link: link != "up", "the link down").startswith(
                ("down", "unreachable"))
            assert wait_fleet(url, lambda p: "pi-7" in p, "pi-7 still listed")
            server.start()  # persistence keeps the retained status
            wait_link(url, lambda link: link == "up", "reconnected")
    finally:
        server.stop()
