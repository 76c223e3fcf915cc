"""Real parts for the dashboard tests: a broker, `roost fleet serve` as a process, recorded
telemetry published through the broker, and bounded polling of the HTTP API."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from interop.brokers import HOST, Broker, BrokerNotReady, _spawn, start_mosquitto, start_roost

READY = re.compile(r"roost dashboard listening on (http://\S+)")
WAIT = 20.0
ARTIFACTS = Path(os.environ.get("ROOST_ARTIFACTS", "/tmp/roost-artifacts")) / "dashboard"


@contextmanager
def broker(kind: str, data: Path) -> Iterator[Broker]:
    """Mosquitto from Debian, or Roost's own broker (skipped while it cannot run yet)."""
    data.mkdir(parents=True, exist_ok=True)
    try:
        started = (start_mosquitto(data) if kind == "mosquitto"
                   else start_roost(data, sys.executable))
    except BrokerNotReady as err:
        if err.not_implemented:
            pytest.skip(f"roost broker not runnable yet: {err}")
        raise
    try:
        yield started
    finally:
        started.stop()
        print(f"--- {kind} log ---\n" + "\n".join(started.log[-30:]))


@contextmanager
def dashboard(port: int, *extra: str) -> Iterator[str]:
    """`roost fleet serve` on a free loopback port; yields its base URL."""
    cmd = [sys.executable, "-m", "roost", "fleet", "serve", "--broker", f"{HOST}:{port}",
           "--bind", f"{HOST}:0", "--log-level", "DEBUG", *extra]
    proc, found = _spawn("dashboard", cmd, READY)
    try:
        yield found.group(1)
    finally:
        proc.stop()
        print("--- dashboard log ---\n" + "\n".join(proc.log[-40:]))


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=WAIT) as reply:
        return json.load(reply)


def wait_fleet(base: str, pred: Callable[[dict[str, dict[str, Any]]], bool], what: str
               ) -> dict[str, dict[str, Any]]:
    """Poll /api/fleet until `pred(pis by client id)` holds."""
    deadline = time.monotonic() + WAIT
    while True:
        pis = {p["client_id"]: p for p in get_json(f"{base}/api/fleet")["pis"]}
        if pred(pis):
            return pis
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {pis}"
        time.sleep(0.1)


def publish(port: int, messages: list[tuple[str, bytes]], retain: bool = False) -> None:
    """Recorded telemetry: publish each (topic, payload) at QoS 1, all acknowledged."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="recorder", protocol=mqtt.MQTTv5)
    client.connect(HOST, port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT)
    finally:
        client.disconnect()
        client.loop_stop()


def recorded(site: str, client: str, now: float) -> list[tuple[str, bytes]]:
    """Half an hour of a Pi's temperature and load, then one garbled load sample."""
    base = f"roost/{site}/{client}"
    out = [(f"{base}/status", json.dumps({"state": "online", "ts": now, "version": "0.1.0",
                                          "queue_depth": 12, "dropped": 3}).encode())]
    for i in range(60):
        ts, seq = now - 1800 + 30 * i, 2 * i
        temp = 48 + 6 * ((i % 20) / 20)
        out.append((f"{base}/telemetry/cpu_temp",
                    json.dumps({"ts": ts, "seq": seq, "value": round(temp, 1)}).encode()))
        out.append((f"{base}/telemetry/load", json.dumps(
            {"ts": ts, "seq": seq + 1, "value": {"1m": round(0.2 + (i % 7) / 10, 2)}}).encode()))
    out.append((f"{base}/telemetry/load", b'{"ts": "yesterday", "value": "high"}'))
    return out
