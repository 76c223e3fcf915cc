"""Authentication in the sans-IO engine: certificate identity, client id = identity,
password file, anonymous refusal; the server only sets `conn.identity` and `conn.auth`."""

from __future__ import annotations

from pathlib import Path

from harness import Client, World

from roost.broker.policy import ANONYMOUS_OFF, AnonymousPolicy, ListenerAuth
from roost.mqtt.packets import MQTT_5, MQTT_311, ConnAck, Connect, PropertyId
from roost.security.passwd import PasswordFile, hash_password

PASSWORDS = PasswordFile.parse(f"dashboard:{hash_password('s3cret')}\n")
DEVICES = ListenerAuth("devices", allow_anonymous=False)


def _world(tmp_path: Path) -> World:
    return World(tmp_path, policy=AnonymousPolicy(False, PASSWORDS), allow_anonymous=False)


def _connect(world: World, connect: Connect, identity: str | None = None,
             auth: ListenerAuth | None = DEVICES) -> tuple[Client, ConnAck]:
    client = world.client(connect.protocol_version)
    client.conn.identity = identity
    client.conn.auth = auth
    client.send(connect)
    return client, client.expect(ConnAck)


def test_certificate_identity_becomes_the_username(tmp_path: Path) -> None:
    world = _world(tmp_path)
    _, ack = _connect(world, Connect("pi-0001", username="root"), identity="pi-0001")
    assert ack.reason_code == 0
    assert world.broker.sessions["pi-0001"].username == "pi-0001"


def test_client_id_must_be_the_identity(tmp_path: Path) -> None:
    world = _world(tmp_path)
    client, ack = _connect(world, Connect("pi-0002"), identity="pi-0001")
    assert ack.reason_code == 0x87
    why = ack.properties[PropertyId.REASON_STRING]
    assert "'pi-0002'" in why and "'pi-0001'" in why
    assert client.closed
    assert world.broker.stats.auth_failures == 1
    _, ack = _connect(world, Connect("pi-0002", MQTT_311), identity="pi-0001")
    assert ack.reason_code == 5


def test_a_listener_may_let_identity_and_client_id_differ(tmp_path: Path) -> None:
    world = _world(tmp_path)
    loose = ListenerAuth("cluster", allow_anonymous=False, client_id_is_identity=False)
    _, ack = _connect(world, Connect("bridge-a"), identity="node-1", auth=loose)
    assert ack.reason_code == 0
    assert world.broker.sessions["bridge-a"].username == "node-1"


def test_anonymous_is_refused_with_a_reason(tmp_path: Path) -> None:
    world = _world(tmp_path)
    _, ack = _connect(world, Connect("visitor"))
    assert ack.reason_code == 0x87
    assert ack.properties[PropertyId.REASON_STRING] == ANONYMOUS_OFF
    _, ack = _connect(world, Connect("visitor", MQTT_311))
    assert ack.reason_code == 5
    open_door = ListenerAuth("local", allow_anonymous=True)
    _, ack = _connect(world, Connect("visitor"), auth=open_door)
    assert ack.reason_code == 0


def test_password_file(tmp_path: Path) -> None:
    world = _world(tmp_path)
    good = Connect("dash", MQTT_5, username="dashboard", password=b"s3cret")
    assert _connect(world, good)[1].reason_code == 0
    bad = Connect("dash2", MQTT_5, username="dashboard", password=b"guess")
    assert _connect(world, bad)[1].reason_code == 0x86
    bad_v3 = Connect("dash3", MQTT_311, username="dashboard", password=b"guess")
    assert _connect(world, bad_v3)[1].reason_code == 4
    assert world.broker.stats.auth_failures == 2
