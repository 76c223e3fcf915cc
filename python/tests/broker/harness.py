"""Test helpers for the broker: an in-memory client wired to a sans-IO `Broker`, and a
real `roost broker run` subprocess on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from roost.broker.engine import Broker
from roost.broker.policy import Policy
from roost.broker.settings import Settings
from roost.broker.store import SqliteStore
from roost.mqtt.codec import Decoder, encode
from roost.mqtt.packets import MQTT_5, MQTT_311, ConnAck, Connect, Packet, Properties, Publish, Will

T = TypeVar("T")
VERSIONS = pytest.mark.parametrize("version", [MQTT_311, MQTT_5], ids=["v311", "v5"])


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0


class World:
    """A broker on a real SQLite file, a clock the test moves, and in-memory clients."""

    def __init__(self, path: Path, policy: Policy | None = None, **settings: Any) -> None:
        settings.setdefault("allow_anonymous", True)
        settings.setdefault("sys_interval", 0)
        self.path = path
        self.settings = Settings(**settings)
        self.clock = Clock()
        self.policy = policy
        self.store = SqliteStore(path / "roost.db")
        self.broker = Broker(self.settings, self.store, now=self.clock.now, policy=policy)

    def restart(self) -> None:
        """Close the store (as a clean shutdown does) and load a new broker from it."""
        self.broker.shutdown(self.clock.now)
        self.broker.take_dirty()
        self.store.close()
        self.store = SqliteStore(self.path / "roost.db")
        self.broker = Broker(self.settings, self.store, now=self.clock.now, policy=self.policy)

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.broker.tick(self.clock.now)

    def client(self, version: int = MQTT_5) -> Client:
        return Client(self, version)

    def connect(self, client_id: str, version: int = MQTT_5, *, clean: bool = True,
                keepalive: int = 0, will: Will | None = None,
                props: Properties | None = None) -> tuple[Client, ConnAck]:
        c = self.client(version)
        c.send(Connect(client_id, version, clean, keepalive, will=will,
                       properties=props or {}))
        ack = c.expect(ConnAck)
        return c, ack


class Client:
    def __init__(self, world: World, version: int) -> None:
        self.world = world
        self.version = version
        self.conn = world.broker.connection_made("test:1", world.clock.now)
        self.decoder = Decoder(server=False, version=version)
        self.inbox: list[Packet] = []

    def send(self, *packets: Packet) -> None:
        data = b"".join(encode(p, self.version) for p in packets)
        self.world.broker.data_received(self.conn, data, self.world.clock.now)

    def send_bytes(self, data: bytes) -> None:
        self.world.broker.data_received(self.conn, data, self.world.clock.now)

    def packets(self) -> list[Packet]:
        """Everything the broker sent to this client since the last call."""
        self.world.broker.take_dirty()
        data = self.conn.take_output()
        found = self.inbox + (self.decoder.feed(data) if data else [])
        self.inbox = []
        return found

    def expect(self, kind: type[T]) -> T:
        found = self.packets()
        assert found, f"expected a {kind.__name__}, got nothing"
        first, rest = found[0], found[1:]
        self.inbox = rest
        assert isinstance(first, kind), f"expected {kind.__name__}, got {first!r}"
        return first

    def publishes(self) -> list[Publish]:
        found = self.packets()
        assert all(isinstance(p, Publish) for p in found), found
        return [p for p in found if isinstance(p, Publish)]

    @property
    def closed(self) -> bool:
        return self.conn.closing

    def drop(self) -> None:
        """The network connection goes away (no DISCONNECT)."""
        self.world.broker.connection_lost(self.conn, self.world.clock.now)


LISTENING = re.compile(r"roost broker listening on 127\.0\.0\.1:(\d+)")


class RoostProcess:
    """`python -m roost broker run` on 127.0.0.1:0; the port is read from stderr."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        args = [sys.executable, "-m", "roost", "broker", "run", "--bind", "127.0.0.1:0",
                "--allow-anonymous", "--data-dir", str(data_dir), *extra]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=self.log,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        assert self.proc.stderr is not None
        self.port = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode()
            if not line:
                break
            self.log.write(line.encode())
            m = LISTENING.search(line)
            if m:
                self.port = int(m.group(1))
                break
        assert self.port, f"broker did not start; see {self.log_path}"
        # Keep draining stderr so the broker never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if self.log.closed:
                break
            self.log.write(line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.log.close()
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()


class Paho:
    """A connected paho client that records what it receives."""

    def __init__(self, port: int, client_id: str, protocol: MQTTProtocolVersion,
                 *, persistent: bool = False) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.arrived = threading.Condition()
        v5 = protocol == MQTTProtocolVersion.MQTTv5
        clean = None if v5 else not persistent
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol, clean_session=clean)
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.session_present = False

        def on_connect(client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                       *rest: object) -> None:
            self.session_present = flags.session_present
            connected.set()

        self.client.on_connect = on_connect
        if v5 and persistent:
            props = PahoProperties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
            self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        else:
            self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(15), "no CONNACK"

    def _on_message(self, client: mqtt.Client, userdata: object,
                    msg: mqtt.MQTTMessage) -> None:
        with self.arrived:
            self.messages.append(msg)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.messages) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
            return list(self.messages)

    def subscribe(self, topic: str, qos: int) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos)
        assert done.wait(15), "no SUBACK"

    def watch_disconnect(self) -> tuple[threading.Event, list[int]]:
        """An event set when the broker disconnects us, and the reason codes seen."""
        reasons: list[int] = []
        gone = threading.Event()

        def on_disconnect(client: mqtt.Client, userdata: object, flags: object,
                          reason: object, props: object) -> None:
            reasons.append(int(getattr(reason, "value", reason)))  # type: ignore[call-overload]
            gone.set()

        self.client.reconnect_delay_set(60, 120)  # do not reconnect during the test
        self.client.on_disconnect = on_disconnect
        return gone, reasons

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
