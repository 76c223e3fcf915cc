"""Whatever bytes a client sends after CONNECT, whole or one at a time, the engine either
handles them or closes that connection: it never raises and never hits an internal error."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
from harness import World
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.mqtt.codec import encode
from roost.mqtt.packets import (
    MQTT_5,
    MQTT_311,
    Auth,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PropertyId,
    PubAck,
    Publish,
    PubRec,
    PubRel,
    Subscribe,
    Subscription,
    Unsubscribe,
)

P = PropertyId
# Valid packets to splice between random bytes, so fuzzing reaches the handlers.
VALID: list[Packet] = [
    Publish("a/b", b"x", 1, packet_id=1),
    Publish("a/b", b"y", 2, packet_id=2, retain=True),
    Publish("t", b"", 0, retain=True),
    PubRel(2), PubAck(1), PubRec(5), PingReq(),
    Subscribe(3, (Subscription("a/#", 2), Subscription("$share/g/a/+", 1))),
    Unsubscribe(4, ("a/#",)),
]


def chunks(version: int) -> st.SearchStrategy[list[bytes]]:
    extra: list[Packet] = [Connect("again", version), Disconnect()]
    if version == MQTT_5:
        extra += [Auth(0x19), PubAck(1, 0x80, {P.REASON_STRING: "no"})]
    valid = st.sampled_from([encode(p, version) for p in VALID + extra])
    return st.lists(st.one_of(valid, st.binary(max_size=12)), max_size=12)


@pytest.mark.parametrize("version", [MQTT_311, MQTT_5], ids=["v311", "v5"])
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), split=st.booleans())
def test_any_bytes_after_connect(caplog: pytest.LogCaptureFixture, version: int,
                                 data: st.DataObject, split: bool) -> None:
    parts = data.draw(chunks(version))
    with tempfile.TemporaryDirectory() as tmp, caplog.at_level(logging.ERROR):
        world = World(Path(tmp))
        watcher, _ = world.connect("w", MQTT_5)
        watcher.send(Subscribe(1, (Subscription("#", 2),)))
        c, _ = world.connect("c", version, clean=False,
                             props={P.SESSION_EXPIRY_INTERVAL: 10} if version == MQTT_5 else {})
        blob = b"".join(parts)
        pieces = [blob[i:i + 1] for i in range(len(blob))] if split else parts
        for piece in pieces:
            c.send_bytes(piece)
        c.packets()
        c.drop()
        world.advance(20)
        watcher.packets()
        world.store.close()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Nothing the fuzzer sent may close another client.
    assert not watcher.closed


def test_fuzz_target_reports_internal_errors(caplog: pytest.LogCaptureFixture,
                                             tmp_path: Path) -> None:
    """The invariant above can fail: an engine bug is logged at ERROR."""
    world = World(tmp_path)
    c, _ = world.connect("c", MQTT_5)
    world.broker._handlers[Disconnect] = lambda *a: 1 / 0  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR):
        c.send(Disconnect())
    assert [r for r in caplog.records if r.levelno >= logging.ERROR]
