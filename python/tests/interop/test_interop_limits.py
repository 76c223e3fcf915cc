"""Limits a broker announces and enforces, and what it tells about itself, on Mosquitto and
Roost configured alike: server keep alive, maximum packet size, maximum connections, the
CONNECT timeout, topic aliases towards the client, and the `$SYS/broker/` topics."""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import raw
from .brokers import Broker, start_mosquitto, start_roost
from .clients import WAIT, Peer, publish_once

KEEPALIVE, PACKET, CONNECTIONS = 10, 1000, 3
MOSQUITTO = (f"max_keepalive {KEEPALIVE}\nmax_packet_size {PACKET}\n"
             f"max_connections {CONNECTIONS}\nsys_interval 1\n")
ROOST = (f"sys_interval = 1\n[limits]\nmax_keepalive = {KEEPALIVE}\n"
         f"max_packet_size = {PACKET}\nmax_connections = {CONNECTIONS}\nconnect_timeout = 1\n")
SYS_TOPICS = ("version", "uptime", "clients/connected", "messages/received",
              "messages/sent", "bytes/received", "bytes/sent")


@pytest.fixture(params=["mosquitto", "roost"])
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    if request.param == "mosquitto":
        if shutil.which("mosquitto") is None:
            pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
        b = start_mosquitto(tmp_path, MOSQUITTO)
    else:
        b = start_roost(tmp_path, sys.executable, ROOST)
    yield b
    b.stop()
    print(f"--- {b.name} log (last lines) ---\n" + "\n".join(b.log[-40:]))


def test_server_keep_alive_caps_the_client(limited: Broker) -> None:
    peer = Peer(limited, "ka").connect()  # asks for 30 s
    assert peer.connack_props.ServerKeepAlive == KEEPALIVE
    peer.disconnect()


def test_maximum_packet_size_announced_and_enforced(limited: Broker) -> None:
    peer = Peer(limited, "mp").connect()
    assert peer.connack_props.MaximumPacketSize == PACKET
    peer.disconnect()
    big = raw.RawClient(limited)
    big.handshake("big")
    big.send(raw.publish("mp/t", b"x" * (2 * PACKET), qos=1, pid=1))
    sent = big.closed()
    # v5 section 3.14.2.1: 0x95 Packet too large, then the connection closes.
    assert [(kind, body[:1]) for kind, _, body in sent] == [(raw.DISCONNECT, b"\x95")]
    big.close()
    small = Peer(limited, "after").connect()  # the broker itself is fine
    small.disconnect()


def test_maximum_connections(limited: Broker) -> None:
    held = [raw.RawClient(limited) for _ in range(CONNECTIONS)]
    for i, c in enumerate(held):
        c.handshake(f"held-{i}")
    extra = raw.RawClient(limited)
    with contextlib.suppress(OSError):  # closed before CONNECT could even be written
        extra.send(raw.connect("one-too-many"))
    refused = [(kind, body) for kind, _, body in extra.closed()]
    # Closed without a successful CONNACK (Roost may say why: 0x97 Quota exceeded).
    assert all(kind != raw.CONNACK or body[1] != 0 for kind, body in refused), refused
    extra.close()
    held.pop().close()
    for _ in range(int(WAIT / 0.1)):  # the broker notices the close asynchronously
        again = raw.RawClient(limited)
        again.send(raw.connect("room-again"))
        packet = again.read()
        again.close()
        if packet is not None and packet[0] == raw.CONNACK and packet[2][1] == 0:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("no room for a connection after one of the held ones closed")
    for c in held:
        c.close()


def test_connect_timeout(limited: Broker) -> None:
    if limited.name == "mosquitto":
        pytest.skip("Mosquitto 2.0 has no CONNECT timeout setting")
    silent = socket.create_connection((limited.host, limited.port), timeout=WAIT)
    silent.settimeout(WAIT)
    try:
        assert silent.recv(1) == b""  # closed by the broker, nothing sent
    except ConnectionResetError:
        pass
    finally:
        silent.close()


def test_sys_topics(limited: Broker) -> None:
    for i in range(3):
        publish_once(limited, "sys/probe", b"%d" % i)
    watcher = Peer(limited, "sys-watcher").connect()
    watcher.subscribe("$SYS/broker/#", qos=0)
    seen: dict[str, bytes] = {}
    wanted = {f"$SYS/broker/{t}" for t in SYS_TOPICS}

    def counted() -> bool:  # retained values may predate us: wait for a fresh round
        return (wanted <= seen.keys()
                and int(seen["$SYS/broker/clients/connected"]) >= 1
                and int(seen["$SYS/broker/messages/received"]) >= 3  # the probes, at least
                and int(seen["$SYS/broker/bytes/received"]) > 0)

    deadline = time.monotonic() + WAIT
    while not counted() and time.monotonic() < deadline:
        msg = watcher.get(max(deadline - time.monotonic(), 0.1))
        seen[msg.topic] = bytes(msg.payload)
    assert counted(), seen
    assert seen["$SYS/broker/version"].startswith(limited.name.encode())
    assert seen["$SYS/broker/uptime"].endswith(b" seconds")
    watcher.disconnect()


def _resolve(aliases: dict[int, str], body: bytes) -> tuple[str, int | None]:
    """The topic of a v5 PUBLISH (QoS 0) after its Topic Alias (0x23), if any."""
    n = struct.unpack_from("!H", body)[0]
    topic, pos = body[2:2 + n].decode(), 2 + n
    end_len, pos = raw.varint_at(body, pos)
    props, alias = body[pos:pos + end_len], None
    i = 0
    while i < len(props):  # the broker sends few property kinds; 0x23 is two bytes
        pid = props[i]
        if pid == 0x23:
            alias = struct.unpack_from("!H", props, i + 1)[0]
            i += 3
        elif pid == 0x0B:  # subscription identifier, a variable byte integer
            _, i = raw.varint_at(props, i + 1)
        else:
            raise AssertionError(f"unexpected property {pid:#x} in {props!r}")
    if alias is not None:
        if topic:
            aliases[alias] = topic
        topic = aliases[alias]
    return topic, alias


def test_topic_alias_towards_client(broker: Broker) -> None:
    sub = raw.RawClient(broker)
    sub.handshake("alias-sub", props=raw.prop(0x22, 2, 2))  # Topic Alias Maximum 2
    sub.send(raw.subscribe("al/#", 0, 1))
    sub.expect(raw.SUBACK)
    topics = ["al/a", "al/b", "al/a", "al/c", "al/b", "al/a"]
    pub = Peer(broker, "alias-pub").connect()
    for t in topics:
        pub.publish(t, t.encode())
    aliases: dict[int, str] = {}
    got, used = [], []
    for _ in topics:
        kind, flags, body = sub.read() or (0, 0, b"")
        assert kind == raw.PUBLISH
        topic, alias = _resolve(aliases, body)
        assert topic == raw.publish_fields(flags, body)[2].decode()  # payload names the topic
        got.append(topic)
        used.append(alias)
    assert got == topics
    assert all(a is None or 1 <= a <= 2 for a in used)  # never above what the client allows
    if broker.name == "roost":  # Mosquitto 2.0 sends no aliases; Roost saves the bytes
        assert any(a is not None for a in used[2:])
    pub.disconnect()
    sub.close()
