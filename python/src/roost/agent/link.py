"""The agent's one MQTT 5 connection (paho-mqtt 2), connected by hand: our backoff and
failover (backoff.py), our disk queue; paho only keeps the in-flight window in memory and
retransmits it after a reconnect. Driven from the agent's loop thread via `poll()`.

The in-flight window is ours too: paho ignores the broker's Receive Maximum, and exceeding
it is a protocol error, so every QoS 1 publish counts against `limit` (learnt from CONNACK)
and status messages and replies wait in a small outbox when the window is full.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from roost import mqttclient, sdnotify
from roost.agent import topics
from roost.agent.backoff import Backoff
from roost.agent.config import Config, Endpoint

log = logging.getLogger(__name__)


class State(enum.Enum):
    DOWN = "down"
    CONNECTING = "connecting"
    UP = "up"


class Link:
    def __init__(self, cfg: Config, will: bytes, on_up: Callable[[], None],
                 on_message: Callable[[mqtt.MQTTMessage], None],
                 on_ack: Callable[[int, bool], None]) -> None:
        self.cfg = cfg
        self.on_up, self.on_message, self.on_ack = on_up, on_message, on_ack
        # Binds nothing: the unit forbids it (roost/mqttclient.py).
        c = mqttclient.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                              protocol=mqtt.MQTTv5)
        c.connect_timeout = cfg.connect_timeout
        c.max_inflight_messages_set(0)  # unlimited in paho: the window below decides
        self.limit = cfg.inflight
        self.flying: set[int] = set()
        self.outbox: deque[tuple[str, bytes, bool, Properties | None]] = deque()
        if cfg.tls:
            c.tls_set(ca_certs=str(cfg.tls.ca), certfile=str(cfg.tls.cert),
                      keyfile=str(cfg.tls.key))
        c.will_set(topics.status(cfg.site, cfg.client_id), will, qos=1, retain=True)
        c.on_connect, c.on_disconnect = self._connected, self._disconnected
        c.on_publish, c.on_message = self._published, self._message
        self.client = c
        self.backoff: Backoff[Endpoint] = Backoff(cfg.endpoints, cfg.backoff_initial,
                                                  cfg.backoff_cap)
        self.state, self.since = State.DOWN, 0.0
        self.endpoint, self.next_attempt = self.backoff.next()  # first attempt right away

    @property
    def up(self) -> bool:
        return self.state is State.UP

    def poll(self, timeout: float) -> None:
        """Connect when due, or run paho's network loop for at most `timeout` seconds."""
        now = time.monotonic()
        if self.state is State.DOWN:
            if now < self.next_attempt:
                time.sleep(min(timeout, self.next_attempt - now))
                return
            self._attempt()
            return
        rc = self.client.loop(timeout)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self._down(f"network loop: {mqtt.error_string(rc)}")
        elif self.state is State.CONNECTING and now - self.since > self.cfg.connect_timeout:
            self._down("no CONNACK in time")

    def room(self) -> int:
        """How many more samples may go out now."""
        return self.limit - len(self.flying) - len(self.outbox) if self.up else 0

    @property
    def idle(self) -> bool:
        return not self.flying and not self.outbox

    def publish(self, topic: str, payload: bytes, retain: bool = False,
                properties: Properties | None = None) -> int:
        """Publish at QoS 1 (only when room() > 0); paho keeps it until PUBACK, across
        reconnects. Returns the mid."""
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        self.flying.add(info.mid)
        return int(info.mid)

    def send(self, topic: str, payload: bytes, retain: bool = False,
             properties: Properties | None = None) -> None:
        """Publish now if the window allows, else after the next PUBACK."""
        self.outbox.append((topic, payload, retain, properties))
        self._flush()

    def _flush(self) -> None:
        while self.outbox and self.up and len(self.flying) < self.limit:
            self.publish(*self.outbox.popleft())

    def close(self) -> None:
        if self.state is not State.DOWN:
            self.client.disconnect()
            self.client.loop(0.2)
        self.state = State.DOWN

    def _attempt(self) -> None:
        e = self.endpoint
        log.info("connecting to %s", e)
        # A lasting session: commands sent while we are away wait for us on the broker,
        # or expire there with an error answer to their requester (roost broker).
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry
        try:
            self.client.connect(e.host, e.port, keepalive=self.cfg.keepalive,
                                clean_start=self.cfg.session_expiry == 0, properties=props)
        except (OSError, ValueError) as err:  # refused, unreachable, DNS, TLS handshake
            self.state = State.CONNECTING  # so that _down() counts the failure
            self._down(f"{type(err).__name__}: {err}")
            return
        self.state, self.since = State.CONNECTING, time.monotonic()

    def _down(self, why: str) -> None:
        if self.state is State.DOWN:
            return
        if self.state is State.UP:
            self.backoff.lost()
        else:
            self.backoff.failed()
        self.state = State.DOWN
        self.endpoint, delay = self.backoff.next()
        self.next_attempt = time.monotonic() + delay
        log.warning("broker link down (%s); next try %s in %.2fs", why, self.endpoint, delay)
        # `systemctl status` must not keep saying "connected to ..." (runner sets that).
        sdnotify.notify(f"STATUS=broker link down ({why}); next try {self.endpoint}")

    # paho callbacks: they run inside client.loop(), in the agent's loop thread.
    def _connected(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                   reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            self._down(f"CONNACK {reason}")
            return
        log.info("connected to %s", self.endpoint)
        self.limit = min(self.cfg.inflight, int(getattr(properties, "ReceiveMaximum", 65535)))
        self.state = State.UP
        self.backoff.connected()
        client.subscribe(topics.commands(self.cfg.site, self.cfg.client_id), qos=1)
        self.on_up()
        self._flush()

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                      reason: ReasonCode, properties: Properties | None) -> None:
        self._down(f"disconnected: {reason}")

    def _published(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                   properties: Properties | None) -> None:
        self.flying.discard(mid)
        self.on_ack(mid, reason.is_failure)
        self._flush()

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.on_message(msg)


def reply_properties(correlation: bytes | None) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if correlation is not None:
        props.CorrelationData = correlation
    return props
