"""`roost fleet command`: one MQTT 5 request to one Pi, and its answer, under a deadline.

The request carries a Message Expiry Interval equal to the timeout, so a broker that
holds it for an offline Pi answers with an error when it expires (roost broker, "Requests
are never dropped silently"); the reply topic is a fresh one under the Pi's prefix, so
the Pi's ACL lets it answer there. The Pi's retained status tells its site (when not
given) and, when nothing came back, whether it is online.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from roost.agent import topics
from roost.fleet.status import SETTLE, Access, client

GRACE = 3.0  # seconds past the expiry for the broker's answer (it checks every second)
FIND = 3.0  # seconds to find the Pi's retained status (and so its site)
NO_SUBSCRIBERS = 0x10


class CommandError(Exception):
    """The request could not be sent (connection, refusal, unknown Pi)."""


@dataclass
class Outcome:
    site: str
    reply: dict[str, Any] | None = None  # the answer's JSON object; None: nothing came
    puback: int = 0  # the broker's reason code for the request
    status: dict[str, Any] | None = None  # the Pi's retained status, if any
    waited: float = 0.0

    @property
    def by_broker(self) -> bool:
        return self.reply is not None and "broker" in self.reply and not self.reply.get("ok")


@dataclass
class _Box:
    """What paho's thread hands the caller's thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    failure: str = ""
    connected: bool = False
    subacks: int = 0
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)  # site -> status
    last_status: float = 0.0
    acks: dict[int, int] = field(default_factory=dict)  # mid -> reason code
    replies: dict[bytes, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


def parse_args(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs as a JSON object: v as JSON when it parses (5, 0.5, true), else text."""
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--arg {pair!r}: expected NAME=VALUE")
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


def send(access: Access, client_id: str, name: str, args: dict[str, Any], *, timeout: float,
         site: str | None = None) -> Outcome:
    """Send the request and wait for its answer until `timeout` + GRACE."""
    box = _Box()
    c = client(access)
    c.connect_timeout = FIND
    _wire(c, box)
    c.connect(access.host, access.port, keepalive=30, clean_start=True)
    c.loop_start()
    try:
        _wait(box, lambda: box.connected or bool(box.failure), FIND,
              f"no answer from {access.host}:{access.port} in {FIND:.0f} s")
        c.subscribe(topics.status(site or "+", client_id), qos=1)
        found = _find_site(box, site, client_id)
        corr = uuid.uuid4().bytes
        answer = f"{topics.base(found, client_id)}/reply/fleet-{corr.hex()[:12]}"
        c.subscribe(answer, qos=1)
        _wait(box, lambda: box.subacks >= 2 or bool(box.failure), FIND, "no SUBACK")
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = answer
        props.CorrelationData = corr
        props.MessageExpiryInterval = max(1, math.ceil(timeout))
        start = time.monotonic()
        info = c.publish(f"{topics.base(found, client_id)}/cmd/{name}",
                         json.dumps(args).encode(), qos=1, properties=props)
        with box.lock:
            box.changed.wait_for(
                lambda: corr in box.replies or box.acks.get(info.mid, 0) >= NO_SUBSCRIBERS
                or bool(box.failure), timeout + GRACE)
            return Outcome(found, box.replies.get(corr), box.acks.get(info.mid, 0),
                           box.statuses.get(found), round(time.monotonic() - start, 1))
    finally:
        c.disconnect()
        c.loop_stop()


def _wire(c: mqtt.Client, box: _Box) -> None:
    def on_connect(c: mqtt.Client, u: Any, f: mqtt.ConnectFlags, rc: ReasonCode,
                   p: Properties | None) -> None:
        with box.lock:
            if rc.is_failure:
                box.failure = f"the broker refused the connection: {rc}"
            box.connected = True
            box.changed.notify_all()

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode],
                     p: Properties | None) -> None:
        with box.lock:
            if any(rc.is_failure for rc in rcs):
                box.failure = f"subscription refused: {', '.join(map(str, rcs))}"
            box.subacks += 1
            box.last_status = time.monotonic()
            box.changed.notify_all()

    def on_publish(c: mqtt.Client, u: Any, mid: int, rc: ReasonCode,
                   p: Properties | None) -> None:
        with box.lock:
            box.acks[mid] = int(rc.value)
            if rc.is_failure:
                box.failure = f"the broker refused the request: {rc}"
            box.changed.notify_all()

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        parts = topics.parse(msg.topic)
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if parts is None or not isinstance(body, dict):
            return
        with box.lock:
            if parts[2] == "status":
                box.statuses[parts[0]] = body
                box.last_status = time.monotonic()
            else:
                corr = getattr(msg.properties, "CorrelationData", None)
                if corr is not None:
                    box.replies.setdefault(bytes(corr), body)
            box.changed.notify_all()

    c.on_connect, c.on_subscribe = on_connect, on_subscribe
    c.on_publish, c.on_message = on_publish, on_message


def _wait(box: _Box, ready: Any, bound: float, why: str) -> None:
    with box.lock:
        if not box.changed.wait_for(ready, bound):
            raise CommandError(why)
        if box.failure:
            raise CommandError(box.failure)


def _find_site(box: _Box, site: str | None, client_id: str) -> str:
    """The site given, or the one the Pi's retained status names (exactly one)."""
    _wait(box, lambda: box.subacks >= 1 or bool(box.failure), FIND, "no SUBACK")
    deadline = time.monotonic() + FIND
    with box.lock:  # retained messages come right after SUBACK: quiet for SETTLE = done
        while time.monotonic() - box.last_status < SETTLE and time.monotonic() < deadline:
            box.changed.wait(SETTLE)
        sites = sorted(box.statuses)
    if site is not None:
        return site
    if len(sites) != 1:
        found = f"in sites {', '.join(sites)}" if sites else "under roost/+/" + client_id
        raise CommandError(f"{'several' if sites else 'no'} retained status for {client_id} "
                           f"{found}: give --site")
    return sites[0]


def describe_status(client_id: str, status: dict[str, Any] | None) -> str:
    """A sentence on the Pi's retained status, for when nothing came back."""
    if status is None:
        return f"{client_id} has no retained status (never connected, or another site?)"
    state = status.get("state", "unknown")
    ts = status.get("ts")
    when = "" if not isinstance(ts, int | float) else time.strftime(
        " since %Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))
    if state == "offline" and ts is None:
        return f"{client_id} is offline: its last will says the broker lost its connection"
    return f"{client_id} is {state}{when}, per its retained status"
