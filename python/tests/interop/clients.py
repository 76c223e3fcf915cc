"""Clients for the interop tests: paho-mqtt 2.x, Debian's mosquitto_pub/sub, and a raw socket.

Every wait is bounded by WAIT seconds; a missing packet fails the test instead of hanging.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from .brokers import Broker

WAIT = 10.0  # generous: a passing test never waits it out, a loaded box may need it
LIFETIME = 120.0  # no client thread outlives this, whatever the test does
Message = mqtt.MQTTMessage


def props(packet_type: int, **values: Any) -> Properties:
    """paho Properties from keyword names, e.g. props(PacketTypes.CONNECT, ReceiveMaximum=2)."""
    p = Properties(packet_type)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(p, name, value)
    return p


class Peer:
    """A paho client on its own bounded network thread, with no automatic reconnect."""

    def __init__(self, broker: Broker, client_id: str = "", version: int = 5,
                 clean: bool = True) -> None:
        self.broker = broker
        self.version = version
        self.clean = clean
        extra: dict[str, Any] = {} if version == 5 else {"clean_session": clean}
        proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=proto, **extra)
        self.messages: queue.Queue[Message] = queue.Queue()
        self.connected = threading.Event()
        self.gone = threading.Event()
        self.session_present = False
        self.connack_rc = -1
        self.connack_props: Any = None
        self.disconnect_rc: int | None = None
        self._subacks: dict[int, list[int]] = {}
        self._suback_seen = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        c = self.client
        c.on_connect = self._on_connect
        c.on_message = lambda _c, _u, msg: self.messages.put(msg)
        c.on_subscribe = self._on_subscribe
        c.on_unsubscribe = self._on_subscribe  # same shape: mid and reason codes
        c.on_disconnect = self._on_disconnect

    def _on_connect(self, _c: Any, _u: Any, flags: Any, rc: Any, properties: Any) -> None:
        self.session_present = bool(flags.session_present)
        self.connack_rc = rc.value
        self.connack_props = properties
        self.connected.set()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, rcs: list[Any], _p: Any) -> None:
        with self._suback_seen:
            self._subacks[mid] = [rc.value for rc in rcs]
            self._suback_seen.notify_all()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.disconnect_rc = rc.value
        self.gone.set()

    def _run(self) -> None:
        deadline = time.monotonic() + LIFETIME
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self.client.loop(0.02) != mqtt.MQTT_ERR_SUCCESS:
                break
        self.gone.set()

    def will(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
             **will_props: Any) -> Peer:
        p = props(PacketTypes.WILLMESSAGE, **will_props) if will_props else None
        self.client.will_set(topic, payload, qos, retain, properties=p)
        return self

    def connect(self, **connect_props: Any) -> Peer:
        """Connect and wait for CONNACK; connect_props are v5 CONNECT properties."""
        kw: dict[str, Any] = {}
        if self.version == 5:
            kw["clean_start"] = self.clean
            if connect_props:
                kw["properties"] = props(PacketTypes.CONNECT, **connect_props)
        self.client.connect(self.broker.host, self.broker.port, keepalive=30, **kw)
        self._thread.start()
        assert self.connected.wait(WAIT), f"{self.broker.name}: no CONNACK"
        assert self.connack_rc == 0, f"{self.broker.name}: CONNACK refused {self.connack_rc}"
        return self

    def subscribe(self, topic: str, qos: int = 1, sub_id: int | None = None,
                  **options: Any) -> list[int]:
        """Subscribe and wait for SUBACK; options are paho SubscribeOptions (v5 only)."""
        if self.version == 5:
            p = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id) if sub_id else None
            _, mid = self.client.subscribe(topic, options=SubscribeOptions(qos, **options),
                                           properties=p)
        else:
            _, mid = self.client.subscribe(topic, qos)
        return self._acked(mid, topic)

    def unsubscribe(self, topic: str) -> list[int]:
        _, mid = self.client.unsubscribe(topic)
        return self._acked(mid, topic)

    def _acked(self, mid: int | None, topic: str) -> list[int]:
        """Wait for the SUBACK or UNSUBACK of mid."""
        assert mid is not None
        with self._suback_seen:
            got = self._suback_seen.wait_for(lambda: mid in self._subacks, WAIT)
        assert got, f"{self.broker.name}: no SUBACK/UNSUBACK for {topic}"
        return self._subacks[mid]

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0,
                retain: bool = False, **publish_props: Any) -> None:
        """Publish and wait until the flow completes (sent for QoS 0, PUBACK/PUBCOMP above)."""
        p = props(PacketTypes.PUBLISH, **publish_props) if publish_props else None
        info = self.client.publish(topic, payload, qos, retain, properties=p)
        info.wait_for_publish(WAIT)
        assert info.is_published(), f"{self.broker.name}: publish to {topic!r} not completed"

    def get(self, timeout: float = WAIT) -> Message:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.broker.name}: no message within {timeout}s") from None

    def get_many(self, count: int, timeout: float = WAIT) -> list[Message]:
        return [self.get(timeout) for _ in range(count)]

    def until(self, marker: bytes, timeout: float = WAIT) -> list[Message]:
        """Messages received before the one whose payload is marker.

        Publishing a marker after the action under test turns "nothing arrives" into an
        ordering check instead of a guess at how long to wait.
        """
        seen: list[Message] = []
        for _ in range(1000):
            msg = self.get(timeout)
            if msg.payload == marker:
                return seen
            seen.append(msg)
        raise AssertionError("marker never arrived")

    def disconnect(self) -> None:
        """Clean DISCONNECT, then stop the network thread."""
        self.client.disconnect()
        self.gone.wait(WAIT)
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(WAIT)
        sock = self.client.socket()
        if sock is not None:
            sock.close()  # without a DISCONNECT first, the broker sees the link drop


def publish_once(broker: Broker, topic: str, payload: bytes, version: int = 5,
                 qos: int = 1) -> None:
    """Publish one message from a short-lived client (markers, triggers)."""
    peer = Peer(broker, "", version).connect()
    peer.publish(topic, payload, qos=qos)
    peer.disconnect()


def user_props(msg: Message) -> list[tuple[str, str]]:
    return list(getattr(msg.properties, "UserProperty", []))


def mprops(msg: Message) -> Any:
    """A received message's v5 properties, as paho's untyped attribute bag."""
    return msg.properties


def mosquitto_pub(broker: Broker, version: int, *args: str) -> None:
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", _cli_v(version)]
    done = subprocess.run([*cmd, *args], capture_output=True, timeout=WAIT * 2, check=False)
    assert done.returncode == 0, f"mosquitto_pub failed: {done.stderr.decode()}"


class MosquittoSub:
    """mosquitto_sub in the background; returns once its SUBACK came back."""

    def __init__(self, broker: Broker, version: int, *args: str) -> None:
        # stdbuf: its -d lines are not flushed on a pipe otherwise
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", broker.host, "-p", str(broker.port),
               "-V", _cli_v(version), "-W", "30", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        for _ in range(100):
            line = self._line()
            if "received SUBACK" in line:
                return
        raise AssertionError("mosquitto_sub never got its SUBACK")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def _line(self) -> str:
        try:
            return self.lines.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError("mosquitto_sub printed nothing") from None

    def payloads(self, count: int) -> list[str]:
        """The next count payload lines, skipping the debug lines that -d adds."""
        out: list[str] = []
        for _ in range(1000):
            if len(out) == count:
                return out
            line = self._line()
            if not line.startswith(("Client ", "Subscribed (mid")):
                out.append(line)
        raise AssertionError("too many debug lines")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(WAIT)


def _cli_v(version: int) -> str:
    return "mqttv5" if version == 5 else "mqttv311"
