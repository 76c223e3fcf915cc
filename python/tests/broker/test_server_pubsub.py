"""`roost broker run` over real sockets with paho-mqtt 2.x, both protocol versions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from harness import RoostProcess
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

PROTOCOLS = {"v311": MQTTProtocolVersion.MQTTv311, "v5": MQTTProtocolVersion.MQTTv5}


@pytest.fixture(scope="module")
def roost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoostProcess]:
    proc = RoostProcess(tmp_path_factory.mktemp("roost") / "data")
    yield proc
    assert proc.stop() == 0


class Paho:
    """A connected paho client that records what it receives."""

    def __init__(self, port: int, client_id: str, protocol: MQTTProtocolVersion,
                 **connect: object) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.arrived = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol)
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.connect("127.0.0.1", port, **connect)  # type: ignore[arg-type]
        self.client.loop_start()
        assert connected.wait(5), "no CONNACK"

    def _on_message(self, client: mqtt.Client, userdata: object,
                    msg: mqtt.MQTTMessage) -> None:
        with self.arrived:
            self.messages.append(msg)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.messages) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
            return list(self.messages)

    def subscribe(self, topic: str, qos: int) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos)
        assert done.wait(5), "no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("name", PROTOCOLS)
def test_publish_qos_0_1_2_reaches_a_wildcard_subscriber(roost: RoostProcess,
                                                         name: str) -> None:
    sub = Paho(roost.port, f"sub-{name}", PROTOCOLS[name])
    pub = Paho(roost.port, f"pub-{name}", PROTOCOLS[name])
    try:
        sub.subscribe(f"{name}/#", 2)
        for qos in (0, 1, 2):
            pub.client.publish(f"{name}/q{qos}", f"m{qos}".encode(), qos).wait_for_publish(5)
        got = sub.wait_for(3)
        assert sorted((m.topic, m.payload, m.qos) for m in got) == [
            (f"{name}/q0", b"m0", 0), (f"{name}/q1", b"m1", 1), (f"{name}/q2", b"m2", 2)]
    finally:
        sub.close()
        pub.close()


@pytest.mark.parametrize("name", PROTOCOLS)
def test_retained_message_is_sent_on_subscribe(roost: RoostProcess, name: str) -> None:
    pub = Paho(roost.port, f"rpub-{name}", PROTOCOLS[name])
    pub.client.publish(f"ret/{name}", b"kept", 1, retain=True).wait_for_publish(5)
    pub.close()
    sub = Paho(roost.port, f"rsub-{name}", PROTOCOLS[name])
    try:
        sub.subscribe(f"ret/{name}", 1)
        got = sub.wait_for(1)
        assert [(m.topic, m.payload, m.retain) for m in got] == [(f"ret/{name}", b"kept", True)]
    finally:
        sub.close()


def test_anonymous_on_a_public_address_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "roost", "broker", "run", "--bind", "0.0.0.0:0",
         "--allow-anonymous", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert "loopback" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
