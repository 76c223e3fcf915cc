"""Retained messages: set, replace, clear; retain handling and retain as published (v5)."""

from __future__ import annotations

import pytest

from .brokers import Broker
from .clients import WAIT, MosquittoSub, Peer, mosquitto_pub


def test_retained_set_replace_clear(broker: Broker, version: int) -> None:
    pub = Peer(broker, "pub", version).connect()
    pub.publish("r/t", b"first", qos=1, retain=True)
    pub.publish("r/t", b"second", qos=1, retain=True)
    late = Peer(broker, "late", version).connect()
    late.subscribe("r/#")
    got = late.get()
    assert (got.payload, got.retain) == (b"second", True)
    pub.publish("r/t", b"", qos=1, retain=True)  # an empty retained payload clears it
    cleared = late.get()  # the clear itself is forwarded to current subscribers
    assert (cleared.payload, cleared.retain) == (b"", False)
    later = Peer(broker, "later", version).connect()
    later.subscribe("r/#")
    pub.publish("r/marker", b"marker", qos=1)
    assert later.until(b"marker") == []
    for p in (pub, late, later):
        p.disconnect()


def test_retained_with_cli_tools(broker: Broker, version: int) -> None:
    mosquitto_pub(broker, version, "-r", "-q", "1", "-t", "cli/r", "-m", "kept")
    sub = MosquittoSub(broker, version, "-t", "cli/#", "-v", "-C", "1")
    assert sub.payloads(1) == ["cli/r kept"]
    assert sub.proc.wait(WAIT) == 0


@pytest.mark.parametrize(("handling", "first", "again"), [(0, True, True), (1, True, False),
                                                         (2, False, False)])
def test_retain_handling(broker: Broker, handling: int, first: bool, again: bool) -> None:
    pub = Peer(broker, "pub").connect()
    pub.publish("h/t", b"kept", qos=1, retain=True)
    sub = Peer(broker, "sub").connect()
    sent = []
    for n in range(2):  # the second SUBSCRIBE replaces an existing subscription
        sub.subscribe("h/t", qos=1, retainHandling=handling)
        pub.publish("h/t", f"marker{n}", qos=1)
        sent.append(sub.until(f"marker{n}".encode()) != [])
    assert sent == [first, again]
    pub.disconnect()
    sub.disconnect()


@pytest.mark.parametrize("rap", [False, True])
def test_retain_as_published(broker: Broker, rap: bool) -> None:
    sub = Peer(broker, "sub").connect()
    sub.subscribe("p/t", qos=1, retainAsPublished=rap)
    pub = Peer(broker, "pub").connect()
    pub.publish("p/t", b"live", qos=1, retain=True)
    assert sub.get().retain is rap
    late = Peer(broker, "late").connect()
    late.subscribe("p/t", qos=1, retainAsPublished=rap)
    assert late.get().retain is True  # sent because it is retained: always flagged
    for p in (pub, sub, late):
        p.disconnect()
