"""Differential test: Mosquitto 2.0 enforcing an ACL file agrees with `Acl.check` on READ
and WRITE for every (client, topic) pair below.

No waiting for a message that should not come: a QoS 1 PUBACK means Mosquitto has already
queued the message to subscribers, and a later SUBACK to the subscriber travels behind it
on the same connection, so once the SUBACK is in, whatever was delivered has arrived.
"""

from __future__ import annotations

import itertools
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from roost.security.acl import Access, Acl

from .procs import HOST, mosquitto

pytestmark = pytest.mark.skipif(not shutil.which("mosquitto"), reason="apt-get install mosquitto")

ACL = """\
topic read public/#
topic write anon/out

user dash
topic read roost/#
topic deny roost/secrets/#
topic readwrite dash/state

user ops
topic roost/cmd/#
topic deny roost/cmd/halt

user observer
topic read #

user writer
topic write #

pattern readwrite roost/site/%c/#
pattern read config/%u/+
pattern deny roost/site/%c/locked
pattern write up/%u/%c
"""

IDENTITIES = [
    ("pi-1", None),
    ("pi-2", "dash"),
    ("cli", "ops"),
    ("pi-3", "pi-3"),
    ("pi+x", None),
    ("web", "u#1"),
    ("pi-4", "a/b"),
]
TOPICS = [
    "public/news",
    "anon/out",
    "roost/site/pi-1/t",
    "roost/site/pi-1/locked",
    "roost/site/pi-2/t",
    "roost/site/pi-4/t",
    "roost/site/web/t",
    "roost/secrets/k",
    "roost/x",
    "dash/state",
    "roost/cmd/reboot",
    "roost/cmd/halt",
    "config/pi-3/wifi",
    "config/dash/a",
    "up/pi-3/pi-3",
    "up/dash/pi-2",
    "other",
]
TIMEOUT = 10


class Peer:
    """A paho client whose `sync()` proves every message sent to it so far has arrived."""

    def __init__(self, port: int, client_id: str, username: str | None) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if username is not None:
            self.client.username_pw_set(username)
        self.payloads: list[bytes] = []
        self._acked: set[int] = set()
        self._changed = threading.Condition()
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(HOST, port)
        self.client.loop_start()
        self.sync()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        with self._changed:
            self.payloads.append(message.payload)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _rcs: Any, _p: Any) -> None:
        with self._changed:
            self._acked.add(mid)
            self._changed.notify_all()

    def subscribe(self, topic_filter: str) -> None:
        _, mid = self.client.subscribe(topic_filter, qos=0)
        with self._changed:
            assert self._changed.wait_for(lambda: mid in self._acked, TIMEOUT), "no SUBACK"

    def sync(self) -> None:
        self.subscribe("sync/never/used")

    def publish(self, topic: str, payload: bytes) -> None:
        sent = self.client.publish(topic, payload, qos=1)
        sent.wait_for_publish(TIMEOUT)
        assert sent.is_published(), "no PUBACK"

    def got(self, payload: bytes) -> bool:
        self.sync()
        with self._changed:
            return payload in self.payloads

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("acl-mosquitto")
    (tmp / "acl").write_text(ACL)
    with mosquitto(tmp, f"allow_anonymous true\nacl_file {tmp}/acl\n") as broker_port:
        yield broker_port


@pytest.mark.parametrize(("client_id", "username"), IDENTITIES)
def test_mosquitto_agrees(port: int, client_id: str, username: str | None) -> None:
    acl = Acl.parse(ACL)
    observer, writer = Peer(port, "observer", "observer"), Peer(port, "writer", "writer")
    observer.subscribe("#")
    peer = Peer(port, client_id, username)
    peer.subscribe("#")  # Mosquitto 2.0 does not check SUBSCRIBE; deliveries are checked
    seen: dict[tuple[str, Access], bool] = {}
    try:
        cases = itertools.product(TOPICS, (Access.READ, Access.WRITE))
        for n, (topic, access) in enumerate(cases):
            payload = f"{n}:{client_id}:{topic}".encode()
            if access is Access.READ:
                writer.publish(topic, payload)
                seen[topic, access] = peer.got(payload)
            else:
                peer.publish(topic, payload)
                seen[topic, access] = observer.got(payload)
    finally:
        for p in (peer, observer, writer):
            p.close()
    ours = {key: acl.check(client_id, username, *key).allowed for key in seen}
    assert ours == seen
    assert any(seen.values()) == (username != "u#1")  # allows are exercised too
