"""Real nodes on loopback: a request that expires in an offline client's session on one
node is answered with an error by that node, once, to a requester on another node; the
nodes that merely had no subscriber say nothing."""

from __future__ import annotations

import json

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .mesh import Mesh, Sub, clients, wait_for

REPLY = "roost/home/pi-x/reply/test"


def _request(requester: Sub, corr: bytes, expiry: int) -> None:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = REPLY
    props.CorrelationData = corr
    props.MessageExpiryInterval = expiry
    requester.client.publish("roost/home/pi-x/cmd/ping", b"{}", 1,
                             properties=props).wait_for_publish(15)


def _answers(requester: Sub) -> list[tuple[bytes, dict[str, object]]]:
    return [(bytes(getattr(m.properties, "CorrelationData", b"")), json.loads(m.payload))
            for m in requester.received() if m.topic == REPLY]


def test_expired_request_is_answered_once_across_the_bridge(mesh: Mesh) -> None:
    holder, far = mesh[2], mesh[0]
    with clients() as make:
        pi = make(holder, "pi-x", clean=False, expiry=600)
        pi.subscribe("roost/home/pi-x/cmd/#", 1)
        pi.close()  # offline; its session waits on broker-3
        requester = make(far, "ops-requests")
        requester.subscribe("roost/home/+/reply/#", 1)
        _request(requester, b"first", 1)
        wait_for(lambda: _answers(requester), "the error answer")
        _request(requester, b"second", 1)  # expires after the first: any late copy of
        wait_for(lambda: len(_answers(requester)) >= 2, "the second answer")  # it is in
        answers = _answers(requester)
        assert [corr for corr, _ in answers] == [b"first", b"second"]
        body = answers[0][1]
        assert body["ok"] is False and body["broker"] == holder.name
        assert str(body["error"]).startswith("expired undelivered: pi-x offline since ")
        # The request never reaches the Pi late.
        pi = make(holder, "pi-x", clean=False, expiry=600)
        assert pi.session_present
        pi.publish("roost/home/pi-x/end", b"", 1)
        assert pi.received() == []
