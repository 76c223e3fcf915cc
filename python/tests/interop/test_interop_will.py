"""Will messages: sent when the link dies, not on a clean DISCONNECT; v5 will delay."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .brokers import Broker, restart
from .clients import MosquittoSub, Peer, mprops, publish_once, user_props


def _watch(broker: Broker, version: int) -> Peer:
    watcher = Peer(broker, "watcher", version).connect()
    watcher.subscribe("will/#", qos=1)
    return watcher


def test_will_sent_when_client_is_killed(broker: Broker, version: int) -> None:
    watcher = _watch(broker, version)
    doomed = MosquittoSub(broker, version, "-i", "doomed", "-t", "x", "--will-topic",
                          "will/doomed", "--will-payload", "gone", "--will-qos", "1")
    doomed.kill()  # SIGKILL: the socket dies without a DISCONNECT
    got = watcher.get()
    assert (got.topic, got.payload) == ("will/doomed", b"gone")
    watcher.disconnect()


def test_will_sent_when_paho_socket_drops(broker: Broker, version: int) -> None:
    watcher = _watch(broker, version)
    Peer(broker, "dropped", version).will("will/dropped", b"bye", qos=1).connect().close()
    assert watcher.get().payload == b"bye"
    watcher.disconnect()


def test_retained_will_kept_for_later_subscribers(broker: Broker, version: int) -> None:
    Peer(broker, "gone", version).will("status/gone", b"offline", qos=1, retain=True,
                                       ).connect().close()
    late = Peer(broker, "late", version).connect()
    late.subscribe("status/#", qos=1)
    got = late.get()
    assert (got.topic, got.payload, got.retain) == ("status/gone", b"offline", True)
    late.disconnect()


def test_will_properties_forwarded(broker: Broker) -> None:
    watcher = _watch(broker, 5)
    Peer(broker, "typed").will("will/typed", b"{}", qos=1, ContentType="application/json",
                               UserProperty=[("why", "lost")]).connect().close()
    got = watcher.get()
    assert (mprops(got).ContentType, user_props(got)) == ("application/json", [("why", "lost")])
    watcher.disconnect()


def test_no_will_on_clean_disconnect(broker: Broker, version: int) -> None:
    watcher = _watch(broker, version)
    Peer(broker, "polite", version).will("will/polite", b"bye", qos=1).connect().disconnect()
    publish_once(broker, "will/m", b"marker", version)
    assert watcher.until(b"marker") == []
    watcher.disconnect()


# Long enough that the step after the kill (a marker, a reconnect) fits in it on a busy box.
WILL_DELAY = 4


def _killed_with_delayed_will(broker: Broker, client_id: str) -> None:
    """A v5 mosquitto_sub with a WILL_DELAY will delay (session: 60 s), killed with SIGKILL."""
    MosquittoSub(broker, 5, "-i", client_id, "-t", "x", "--will-topic", f"will/{client_id}",
                 "--will-payload", "late", "-D", "will", "will-delay-interval", str(WILL_DELAY),
                 "-D", "connect", "session-expiry-interval", "60").kill()


def test_will_delay_postpones_the_will(broker: Broker) -> None:
    watcher = _watch(broker, 5)
    _killed_with_delayed_will(broker, "slow")
    publish_once(broker, "will/m", b"marker")
    assert watcher.until(b"marker") == []  # not sent at once
    assert watcher.get(timeout=WILL_DELAY + 10).payload == b"late"  # but once it is over
    watcher.disconnect()


def test_will_delay_cancelled_by_reconnect(broker: Broker) -> None:
    watcher = _watch(broker, 5)
    _killed_with_delayed_will(broker, "back")
    back = Peer(broker, "back", clean=False).connect(SessionExpiryInterval=60)
    assert back.session_present
    time.sleep(WILL_DELAY + 1)  # past the will delay: a pending will would be out by now
    publish_once(broker, "will/m", b"marker")
    assert watcher.until(b"marker") == []
    back.disconnect()
    watcher.disconnect()


def test_wills_published_at_shutdown(broker: Broker, version: int, tmp_path: Path) -> None:
    """SIGTERM to the broker: a connected client's will goes out (Mosquitto's behaviour), so
    a retained `online` status never outlives the broker that held the connection."""
    held = Peer(broker, "held", version).will("status/held", b"offline", qos=1, retain=True)
    held.connect()
    restart(broker, tmp_path / f"{broker.name}-data", sys.executable)
    held.close()
    late = Peer(broker, "late", version).connect()
    late.subscribe("status/#", qos=1)
    got = late.get()
    assert (got.topic, got.payload, got.retain) == ("status/held", b"offline", True)
    late.disconnect()
