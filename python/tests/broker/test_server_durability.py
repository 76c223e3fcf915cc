"""Restart and `kill -9`: acknowledged messages and retained messages survive."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from harness import Paho, RoostProcess
from paho.mqtt.enums import MQTTProtocolVersion

V5 = MQTTProtocolVersion.MQTTv5
V311 = MQTTProtocolVersion.MQTTv311


def _park_subscriber(port: int, protocol: MQTTProtocolVersion) -> None:
    sub = Paho(port, "parked", protocol, persistent=True)
    sub.subscribe("dur/#", 1)
    sub.close()


def _publish(port: int, protocol: MQTTProtocolVersion) -> None:
    pub = Paho(port, "publisher", protocol)
    pub.client.publish("dur/queued", b"while offline", 1).wait_for_publish(15)
    pub.client.publish("dur/kept", b"retained", 1, retain=True).wait_for_publish(15)
    pub.close()


def _on_disk(db: Path, wait: bool) -> None:
    """Strict mode: both rows are in the file once the acks arrived. Batched mode commits
    a few ms after the ack: wait (bounded) until they are."""
    deadline = time.monotonic() + (10 if wait else 0)
    for _ in range(2000):  # bounded; the deadline below ends it sooner
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            queued = con.execute("SELECT count(*) FROM outgoing").fetchone()[0]
            kept = con.execute("SELECT count(*) FROM retained").fetchone()[0]
        finally:
            con.close()
        if queued >= 1 and kept >= 1:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    raise AssertionError("the acknowledged message is not in the file")


def _check_after_restart(port: int, protocol: MQTTProtocolVersion) -> None:
    sub = Paho(port, "parked", protocol, persistent=True)
    try:
        assert sub.session_present
        got = sub.wait_for(2)
        assert sorted((m.topic, m.payload) for m in got) == [
            ("dur/kept", b"retained"), ("dur/queued", b"while offline")]
    finally:
        sub.close()
    fresh = Paho(port, "fresh", protocol)
    try:
        fresh.subscribe("dur/kept", 1)
        got = fresh.wait_for(1)
        assert [(m.topic, m.payload, m.retain) for m in got] == [("dur/kept", b"retained", True)]
    finally:
        fresh.close()


@pytest.mark.parametrize("protocol", [V311, V5], ids=["v311", "v5"])
@pytest.mark.parametrize("durability", ["strict", "batched"])
def test_kill_9_keeps_acknowledged_and_retained_messages(
        tmp_path: Path, durability: str, protocol: MQTTProtocolVersion) -> None:
    data = tmp_path / "data"
    broker = RoostProcess(data, "--durability", durability)
    try:
        _park_subscriber(broker.port, protocol)
        _publish(broker.port, protocol)
        _on_disk(data / "roost.db", wait=durability == "batched")
    finally:
        broker.kill()
    broker = RoostProcess(data, "--durability", durability)
    try:
        _check_after_restart(broker.port, protocol)
    finally:
        assert broker.stop() == 0


def test_clean_restart_keeps_sessions_and_retained(tmp_path: Path) -> None:
    data = tmp_path / "data"
    broker = RoostProcess(data)
    try:
        _park_subscriber(broker.port, V5)
        _publish(broker.port, V5)
    finally:
        assert broker.stop() == 0
    broker = RoostProcess(data)
    try:
        _check_after_restart(broker.port, V5)
    finally:
        assert broker.stop() == 0
