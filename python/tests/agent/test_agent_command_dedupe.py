"""A command request seen twice (same command and correlation data: a QoS 1 redelivery,
a requester's retransmission after a reconnect) runs once and is answered each time with
the same reply; the record survives an agent restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .conftest import AgentFactory, WatcherFactory
from .harness import Server, Watcher, agent_toml

CMD = "roost/lab/pi-1/cmd/count"
REPLY = "roost/lab/pi-1/reply/count"


def _config(tmp_path: Path, port: int) -> str:
    runs = tmp_path / "runs"
    return agent_toml(tmp_path / "state", [port], collectors="load = 0", extra=f'''
[commands.count]
argv = ["/bin/sh", "-c", "echo run >> {runs}; wc -l < {runs}"]
''')


def _send(w: Watcher, corr: bytes) -> None:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = REPLY
    props.CorrelationData = corr
    info = w.client.publish(CMD, b"", qos=1, properties=props)
    assert info.rc == mqtt.MQTT_ERR_SUCCESS


def _replies(w: Watcher, corr: bytes, count: int) -> list[object]:
    def mine(ms: list) -> list[object]:  # type: ignore[type-arg]
        return [m.body for m in ms if m.topic == REPLY and m.correlation == corr]

    w.wait(lambda ms: len(mine(ms)) >= count, f"{count} replies")
    return mine(w.msgs)


def test_same_correlation_runs_once_and_gets_the_same_reply(
        broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    w = watcher(broker.port, ["roost/lab/#"])
    proc = agent(_config(tmp_path, broker.port))
    w.wait(lambda ms: bool(w.statuses()), "online")
    first = uuid.uuid4().bytes
    _send(w, first)
    assert _replies(w, first, 1) == [{"ok": True, "result": {"stdout": "1\n"}}]
    _send(w, first)  # redelivered
    assert _replies(w, first, 2) == [{"ok": True, "result": {"stdout": "1\n"}}] * 2
    proc.wait_log("duplicate request, its reply sent again")

    proc.stop()  # the record is on disk: a duplicate after a restart still runs nothing
    seen = len(w.statuses())
    proc = agent(_config(tmp_path, broker.port))
    # its online status follows its SUBSCRIBE on the same connection
    w.wait(lambda ms: any(s["state"] == "online" for s in w.statuses()[seen:]), "back online")
    _send(w, first)
    assert _replies(w, first, 3) == [{"ok": True, "result": {"stdout": "1\n"}}] * 3

    second = uuid.uuid4().bytes  # a new request runs
    _send(w, second)
    assert _replies(w, second, 1) == [{"ok": True, "result": {"stdout": "2\n"}}]
    assert (tmp_path / "runs").read_text() == "run\nrun\n"
