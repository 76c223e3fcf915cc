"""Read the fleet's retained status and telemetry topics for a short, bounded window and
merge them into one row per Pi."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from roost import mqttclient
from roost.agent import topics

SETTLE = 0.3  # retained messages come in a burst right after SUBACK; quiet this long = done


@dataclass
class Pi:
    site: str
    client_id: str
    state: str = "unknown"
    last_seen: float | None = None
    version: str | None = None
    temperature: float | None = None
    queue_depth: int | None = None
    dropped: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Access:
    host: str
    port: int
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    username: str | None = None
    password: str | None = None
    client_id: str | None = None  # None: a random one


def client(access: Access, prefix: str = "roost-fleet") -> mqtt.Client:
    """An MQTT 5 client for `access` (not connected yet); its id `prefix-<random>` unless
    `access` names one."""
    # Binds nothing: the dashboard's unit forbids it (roost/mqttclient.py).
    c = mqttclient.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                          client_id=access.client_id or f"{prefix}-{uuid.uuid4().hex[:8]}")
    if access.ca:
        c.tls_set(ca_certs=access.ca, certfile=access.cert, keyfile=access.key)
    if access.username:
        c.username_pw_set(access.username, access.password)
    return c


def fold(pis: dict[tuple[str, str], Pi], topic: str, payload: bytes) -> None:
    """Merge one status or telemetry message; anything unparsable is ignored."""
    parts = topics.parse(topic)
    try:
        body = json.loads(payload)
    except ValueError:
        return
    if parts is None or not isinstance(body, dict):
        return
    site, client, kind, rest = parts
    pi = pis.setdefault((site, client), Pi(site, client))
    ts = body.get("ts")
    if isinstance(ts, int | float):
        pi.last_seen = max(pi.last_seen or 0.0, float(ts))
    if kind == "status":
        pi.state = str(body.get("state", "unknown"))
        pi.version = body.get("version", pi.version)
        pi.queue_depth = body.get("queue_depth", pi.queue_depth)
        pi.dropped = body.get("dropped", pi.dropped)
    elif kind == "telemetry" and rest == "cpu_temp":
        pi.temperature = body.get("value")


def read(access: Access, site: str | None, window: float) -> list[Pi]:
    """Subscribe, collect for at most `window` seconds, return the Pis sorted by id."""
    pis: dict[tuple[str, str], Pi] = {}
    lock = threading.Lock()
    subscribed = threading.Event()
    failure: list[str] = []
    last = [time.monotonic()]
    level = site or "+"

    def on_connect(c: mqtt.Client, u: Any, f: mqtt.ConnectFlags, rc: ReasonCode,
                   p: Properties | None) -> None:
        if rc.is_failure:
            failure.append(f"broker refused the connection: {rc}")
            subscribed.set()
            return
        c.subscribe([(f"roost/{level}/+/status", 1), (f"roost/{level}/+/telemetry/+", 1)])

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode],
                     p: Properties | None) -> None:
        if any(rc.is_failure for rc in rcs):
            failure.append(f"subscription refused: {', '.join(str(rc) for rc in rcs)}")
        last[0] = time.monotonic()
        subscribed.set()

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            fold(pis, msg.topic, bytes(msg.payload))
            if msg.retain:  # live traffic never goes quiet; the retained burst does
                last[0] = time.monotonic()

    c = client(access)
    c.connect_timeout = min(window, 5.0)
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    deadline = time.monotonic() + window
    c.connect(access.host, access.port, keepalive=30, clean_start=True)
    c.loop_start()
    try:
        if not subscribed.wait(max(0.0, deadline - time.monotonic())):
            raise ConnectionError(f"no answer from {access.host}:{access.port} in {window}s")
        if failure:
            raise ConnectionError(failure[0])
        while time.monotonic() < deadline and time.monotonic() - last[0] < SETTLE:
            time.sleep(0.05)
    finally:
        c.disconnect()
        c.loop_stop()
    with lock:
        return sorted(pis.values(), key=lambda pi: (pi.site, pi.client_id))
