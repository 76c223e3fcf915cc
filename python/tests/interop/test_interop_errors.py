"""Bad input closes only the offending connection; everyone else carries on."""

from __future__ import annotations

import pytest

from . import raw
from .brokers import Broker
from .clients import Peer, publish_once

# A wildcard in a PUBLISH topic: 0x90 Topic Name invalid fits best; Mosquitto sends 0x82
# Protocol Error; section 4.13 also allows 0x81 Malformed Packet.
WILDCARD_REASONS = {0x81, 0x82, 0x90}
KEEP_ALIVE_TIMEOUT = 0x8D
TOPIC_ALIAS_INVALID = 0x94


def test_wildcard_publish_topic_v5(broker: Broker) -> None:
    bad = raw.RawClient(broker)
    bad.handshake("bad")
    bad.send(raw.publish("a/#", b"x"))
    sent = bad.closed()  # the connection must end, with at most a DISCONNECT first
    assert len(sent) <= 1, sent
    if sent:
        kind, _, body = sent[0]
        assert kind == raw.DISCONNECT and body[0] in WILDCARD_REASONS, sent


def test_topic_alias_above_maximum(broker: Broker) -> None:
    probe = Peer(broker, "probe").connect()
    limit = getattr(probe.connack_props, "TopicAliasMaximum", 0)
    probe.disconnect()
    assert limit < 65535, "no alias can be above this maximum"
    bad = raw.RawClient(broker)
    bad.handshake("bad")
    bad.send(raw.publish("ta/x", b"x", props=raw.prop(0x23, limit + 1, 2)))
    sent = bad.closed()
    assert len(sent) <= 1, sent
    if sent:
        kind, _, body = sent[0]
        assert kind == raw.DISCONNECT and body[0] in {0x82, TOPIC_ALIAS_INVALID}, sent


def test_wildcard_publish_topic_v311(broker: Broker) -> None:
    bad = raw.RawClient(broker)
    bad.handshake("bad", version=4)
    bad.send(raw.publish("a/+", b"x", version=4))
    assert bad.closed() == []  # 3.1.1 has no server DISCONNECT: just a close


MALFORMED = {
    "remaining length of five bytes": b"\x30\xff\xff\xff\xff\x01",
    "reserved packet type 0": b"\x00\x00",
    "subscribe with wrong fixed-header flags": b"\x80\x06\x00\x01\x00\x01a\x00",
    "topic not valid utf-8": raw.frame(0x30, b"\x00\x02\xc3\x28\x00payload"),
    "second connect": raw.connect("again"),
}


@pytest.mark.parametrize("garbage", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_closes_only_that_connection(broker: Broker, garbage: bytes) -> None:
    keeper = Peer(broker, "keeper").connect()
    keeper.subscribe("ok/#", qos=1)
    publish_once(broker, "ok/kept", b"stored")  # not retained: a live check below
    Peer(broker, "setter").connect().publish("ok/retained", b"kept", qos=1, retain=True)
    assert keeper.get_many(2)
    bad = raw.RawClient(broker)
    bad.handshake("bad")
    bad.send(garbage)
    sent = bad.closed()
    assert all(kind == raw.DISCONNECT for kind, _, _ in sent), sent
    # The rest of the broker is untouched: live traffic and retained state both still work.
    publish_once(broker, "ok/after", b"still here")
    assert keeper.get().payload == b"still here"
    late = Peer(broker, "late").connect()
    late.subscribe("ok/retained", qos=1)
    assert late.get().payload == b"kept"
    keeper.disconnect()
    late.disconnect()


def test_silent_client_dropped_after_one_and_a_half_keepalives(broker: Broker,
                                                              version: int) -> None:
    watcher = Peer(broker, "watcher").connect()
    watcher.subscribe("will/#", qos=1)
    quiet = raw.RawClient(broker)
    quiet.handshake("quiet", version=version, keepalive=1, will=("will/quiet", b"timed out"))
    sent = quiet.closed(timeout=10)  # no PINGREQ for 1.5 s: the broker hangs up
    assert sent in ([], [(raw.DISCONNECT, 0, bytes([KEEP_ALIVE_TIMEOUT]))]), sent  # v5 may say why
    assert watcher.get().payload == b"timed out"  # and, the link being lost, sends the will
    watcher.disconnect()


def test_garbage_instead_of_connect(broker: Broker) -> None:
    keeper = Peer(broker, "keeper").connect()
    keeper.subscribe("ok", qos=1)
    bad = raw.RawClient(broker)
    bad.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert bad.closed() == []  # no CONNACK to something that never sent CONNECT
    publish_once(broker, "ok", b"fine")
    assert keeper.get().payload == b"fine"
    keeper.disconnect()
