"""Our codec against real clients: Mosquitto's command-line tools talk to a one-connection
responder that decodes with `Decoder` and answers with `encode` over a loopback socket."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from roost.mqtt.codec import Decoder, encode
from roost.mqtt.packets import (
    MQTT_5,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PropertyId,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    Will,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients missing"),
]
P = PropertyId
VERSION_FLAGS = {3: "mqttv31", 4: "mqttv311", 5: "mqttv5"}
DELIVERY = Publish("a/b", b"from roost", 1, packet_id=7)


def _replies(packet: Packet, version: int) -> Iterator[Packet]:
    """What a broker answers; a SUBSCRIBE also gets one delivery."""
    if isinstance(packet, Connect):
        yield ConnAck()
    elif isinstance(packet, Publish) and packet.qos and packet.packet_id:
        yield PubAck(packet.packet_id) if packet.qos == 1 else PubRec(packet.packet_id)
    elif isinstance(packet, PubRel):
        yield PubComp(packet.packet_id)
    elif isinstance(packet, Subscribe):
        yield SubAck(packet.packet_id, tuple(s.qos for s in packet.subscriptions))
        props = {P.USER_PROPERTY: [("from", "roost")]} if version == MQTT_5 else {}
        yield Publish(DELIVERY.topic, DELIVERY.payload, 1, packet_id=7, properties=props)
    elif isinstance(packet, PingReq):
        yield PingResp()


class Responder:
    """Accepts one connection on a free loopback port and answers it from a thread."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port: int = self.listener.getsockname()[1]
        self.received: list[Packet] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(10)
                decoder = Decoder()
                while data := conn.recv(65536):
                    for packet in decoder.feed(data):
                        self.received.append(packet)
                        assert decoder.version is not None
                        for reply in _replies(packet, decoder.version):
                            conn.sendall(encode(reply, decoder.version))
        except BaseException as exc:  # re-raised in the test's thread
            self.error = exc

    def __enter__(self) -> Responder:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.thread.join(timeout=10)
        self.listener.close()
        assert not self.thread.is_alive(), "the client never closed its connection"
        if self.error is not None:
            raise self.error


def converse(args: list[str]) -> tuple[list[Packet], str]:
    """Run a Mosquitto client against a Responder; return what it sent and printed."""
    with Responder() as responder:
        done = subprocess.run(
            [*args, "-h", "127.0.0.1", "-p", str(responder.port)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    return responder.received, done.stdout


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub(version: int, qos: int) -> None:
    args = ["mosquitto_pub", "-V", VERSION_FLAGS[version], "-i", "pub-1", "-t", "roost/t"]
    args += ["-m", "hello", "-q", str(qos), "-r", "-u", "user", "-P", "pw", "-k", "30"]
    args += ["--will-topic", "roost/will", "--will-payload", "bye", "--will-qos", "1"]
    if version == MQTT_5:
        args += ["-D", "publish", "user-property", "k", "v"]
        args += ["-D", "publish", "message-expiry-interval", "30"]
        args += ["-D", "connect", "session-expiry-interval", "60"]
    received, _ = converse(args)
    connect, publish, *rest = received
    assert isinstance(connect, Connect)
    assert (connect.protocol_version, connect.client_id, connect.keepalive) == (
        version,
        "pub-1",
        30,
    )
    assert (connect.username, connect.password) == ("user", b"pw")
    assert connect.will == Will("roost/will", b"bye", 1)
    assert isinstance(publish, Publish)
    assert (publish.topic, publish.payload, publish.qos, publish.retain) == (
        "roost/t",
        b"hello",
        qos,
        True,
    )
    if version == MQTT_5:
        assert connect.properties[P.SESSION_EXPIRY_INTERVAL] == 60
        assert publish.properties == {
            P.USER_PROPERTY: [("k", "v")],
            P.MESSAGE_EXPIRY_INTERVAL: 30,
        }
    assert rest == ([PubRel(publish.packet_id or 0)] if qos == 2 else []) + [Disconnect()]


@pytest.mark.parametrize("version", [4, 5])
def test_mosquitto_sub_reads_our_packets(version: int) -> None:
    args = ["mosquitto_sub", "-V", VERSION_FLAGS[version], "-t", "a/+", "-q", "1", "-C", "1"]
    args += ["-F", "%t %p"]
    received, output = converse(args)
    assert output.strip() == "a/b from roost"
    subscribe = received[1]
    assert isinstance(subscribe, Subscribe)
    assert [(s.topic_filter, s.qos) for s in subscribe.subscriptions] == [("a/+", 1)]
    assert PubAck(7) in received  # it acknowledged our QoS 1 delivery


@pytest.mark.parametrize("version", [4, 5])
def test_paho_client(version: int) -> None:
    protocol = paho.MQTTv5 if version == MQTT_5 else paho.MQTTv311
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="paho-1", protocol=protocol)
    messages: list[tuple[str, bytes]] = []
    got = threading.Event()

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        messages.append((message.topic, bytes(message.payload)))
        got.set()

    client.on_message = on_message
    with Responder() as responder:
        client.connect("127.0.0.1", responder.port, keepalive=30)
        client.loop_start()
        try:
            client.publish("roost/p", b"exactly once", qos=2).wait_for_publish(timeout=10)
            client.subscribe("a/+", qos=1)
            assert got.wait(timeout=10)
            client.disconnect()
        finally:
            client.loop_stop()
    assert messages == [("a/b", b"from roost")]
    publish = next(p for p in responder.received if isinstance(p, Publish))
    assert (publish.topic, publish.payload, publish.qos) == ("roost/p", b"exactly once", 2)
    assert PubRel(publish.packet_id or 0) in responder.received
    assert PubAck(7) in responder.received
    assert responder.received[-1] == Disconnect()
