"""One read-only MQTT connection per broker endpoint, feeding the hub.

It subscribes to exactly what a dashboard service account may read: the Pis' status and
telemetry, and the broker's `$SYS/broker/#`. paho reconnects on its own; the link state is
shown on the page, so a refused login or a dead node is visible rather than an empty fleet.
"""

from __future__ import annotations

import logging
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from roost.dashboard.hub import Hub
from roost.fleet.status import Access, client

log = logging.getLogger(__name__)


def filters(site: str | None) -> list[tuple[str, int]]:
    level = site or "+"
    return [(f"roost/{level}/+/status", 1), (f"roost/{level}/+/telemetry/#", 1),
            ("$SYS/broker/#", 0)]


class Reader:
    def __init__(self, hub: Hub, access: Access, site: str | None) -> None:
        self.hub, self.access, self.site = hub, access, site
        self.node = f"{access.host}:{access.port}"
        c = client(access, "roost-dashboard")
        c.reconnect_delay_set(1, 30)
        c.on_connect, c.on_connect_fail = self._connected, self._failed
        c.on_subscribe, c.on_disconnect = self._subscribed, self._disconnected
        c.on_message = self._message
        self.client = c

    def start(self) -> None:
        self.client.connect_async(self.access.host, self.access.port, keepalive=30,
                                  clean_start=True)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _connected(self, c: mqtt.Client, u: Any, f: mqtt.ConnectFlags, rc: ReasonCode,
                   p: Properties | None) -> None:
        if rc.is_failure:
            self._link(f"refused: {rc}")
            return
        c.subscribe(filters(self.site))

    def _subscribed(self, c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode],
                    p: Properties | None) -> None:
        refused = [f for (f, _), rc in zip(filters(self.site), rcs, strict=False)
                   if rc.is_failure]
        self._link(f"up; not allowed to read {', '.join(refused)}" if refused else "up")

    def _failed(self, c: mqtt.Client, u: Any) -> None:
        self._link("unreachable")

    def _disconnected(self, c: mqtt.Client, u: Any, f: mqtt.DisconnectFlags, rc: ReasonCode,
                      p: Properties | None) -> None:
        self._link(f"down: {rc}")

    def _message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.startswith("$SYS/"):
            self.hub.fold_sys(self.node, msg.topic, bytes(msg.payload))
        else:
            self.hub.fold(msg.topic, bytes(msg.payload), bool(msg.retain))

    def _link(self, state: str) -> None:
        log.info("broker %s: %s", self.node, state)
        self.hub.link(self.node, state)
