"""The checker: one MQTT 5 client through the load balancer, with a persistent session,
that records every telemetry sample, every agent status and every command reply, and
sends `ping` requests to the Pis, each with a Message Expiry Interval so that the broker
holding an unreachable Pi's session answers it with an error. paho's own thread does
the I/O; the lists are read under `lock`, which is never held while calling paho (paho
calls on_publish holding its own lock: the other order would deadlock).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from chaos.ledger import Sample, Status
from chaos.requests import Request

SESSION_EXPIRY = 3600  # the run is shorter: the session outlives every reconnect
log = logging.getLogger("chaos.checker")


class Checker:
    def __init__(self, host: str, port: int, tls: tuple[Path, Path, Path], site: str,
                 client_id: str, *, ping_expiry: int = 20) -> None:
        self.host, self.port, self.site = host, port, site
        self.ping_expiry = ping_expiry
        self.lock = threading.Lock()
        self.samples: list[Sample] = []
        self.statuses: list[Status] = []
        self.requests: dict[bytes, Request] = {}
        self.by_mid: dict[int, bytes] = {}
        self.acks: dict[int, int] = {}  # PUBACKs that came before ping() recorded the mid
        self.retained = 0  # replays of retained telemetry after a new session: not counted
        self.log: list[tuple[float, str]] = []  # our own connects and disconnects
        ca, cert, key = tls
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(cert), str(key))
        # We dial the load balancer's address, which the brokers' certificates do not
        # name; the chain is still checked against the lab's CA, and the CN in _connected.
        ctx.check_hostname = False
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.tls_set_context(ctx)
        c.reconnect_delay_set(1, 4)
        c.enable_logger(log)  # paho's own reasons for a lost connection (socket errors)
        c.on_connect, c.on_disconnect = self._connected, self._disconnected
        c.on_message, c.on_publish = self._message, self._published
        self.client = c

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY
        # Clean start only the first time: reconnects resume the session (paho's default).
        self.client.connect(self.host, self.port, keepalive=10,
                            clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def ping(self, pi: str) -> None:
        """Send `ping` to a Pi as an MQTT 5 request that expires after `ping_expiry`
        seconds; its reply (the agent's, or the broker's error) comes to reply/chaos."""
        corr = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = f"roost/{self.site}/{pi}/reply/chaos"
        props.CorrelationData = corr
        props.MessageExpiryInterval = self.ping_expiry
        with self.lock:
            self.requests[corr] = Request(pi, time.time())
        info = self.client.publish(f"roost/{self.site}/{pi}/cmd/ping", b"{}", qos=1,
                                   properties=props)
        with self.lock:  # on_publish may have run before publish() returned
            if info.mid in self.acks:
                self.requests[corr].puback = self.acks.pop(info.mid)
            else:
                self.by_mid[info.mid] = corr

    def _note(self, what: str) -> None:
        with self.lock:
            self.log.append((time.time(), what))

    def _connected(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                   reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            self._note(f"refused: {reason}")
            return
        cn = _peer_cn(client)
        if not cn.startswith("node:"):
            self._note(f"not a broker: CN {cn!r}; disconnecting")
            client.disconnect()
            return
        self._note(f"connected to {cn}, session present {flags.session_present}")
        if not flags.session_present:  # new session: subscribe again
            client.subscribe([(f"roost/{self.site}/+/telemetry/#", 1),
                              (f"roost/{self.site}/+/status", 1),
                              (f"roost/{self.site}/+/reply/chaos", 1)])

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                      reason: ReasonCode, properties: Properties | None) -> None:
        self._note(f"disconnected: {reason}")

    def _published(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                   properties: Properties | None) -> None:
        with self.lock:
            corr = self.by_mid.pop(mid, None)
            if corr is not None:
                self.requests[corr].puback = int(reason.value)
            else:
                self.acks[mid] = int(reason.value)

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        parts = msg.topic.split("/")
        if len(parts) < 4:
            return
        pi, kind = parts[2], parts[3]
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            if kind == "telemetry":
                if msg.retain:
                    self.retained += 1
                else:
                    self.samples.append(Sample(pi, int(body["seq"]), float(body["ts"]), now,
                                               bool(msg.dup)))
            elif kind == "status" and body.get("state") == "online":
                self.statuses.append(Status(pi, now, int(body["dropped"]), int(body["seq"]),
                                            int(body["queue_depth"])))
            elif kind == "reply":
                corr = getattr(msg.properties, "CorrelationData", None)
                req = self.requests.get(corr) if corr else None
                if req is not None and req.reply_at is None:
                    req.reply_at, req.ok = now, bool(body.get("ok"))
                    if not req.ok:
                        who = f"broker {body['broker']}" if "broker" in body else "agent"
                        req.error = f"{who}: {body.get('error')}"


def _peer_cn(client: mqtt.Client) -> str:
    sock = client.socket()
    cert: Any = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
    for rdn in (cert or {}).get("subject", ()):  # ((("commonName", "node:x"),), ...)
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""
