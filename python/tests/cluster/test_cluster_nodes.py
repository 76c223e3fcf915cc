"""Cluster behaviour across real nodes: retained convergence, client-id takeover across
nodes, and who may use the cluster listener."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from secure.broker import Client
from security.certs import client_context, issue
from security.procs import mosquitto

from .mesh import Mesh, clients, wait_for

STAMP = "roost-stamp"


def _retained(mesh: Mesh, topic: str) -> list[list[bytes]]:
    """What a fresh subscriber on each node gets for `topic` right after subscribing."""
    found = []
    with clients() as make:
        for node in mesh.nodes:
            s = make(node, f"look-{node.name}")
            s.subscribe(topic, 1)
            s.subscribe("look/end", 0)
            s.publish("look/end", b"x", 0)
            wait_for(partial(s.payloads, "look/end"), "the marker")
            found.append(s.payloads(topic))
    return found


def test_retained_reaches_every_node_and_clearing_propagates(mesh: Mesh) -> None:
    with clients() as make:
        make(mesh[0], "rpub").publish("r/x", b"one", 1, retain=True)
    wait_for(lambda: _retained(mesh, "r/x") == [[b"one"]] * 3, "r/x everywhere")
    with clients() as make:
        make(mesh[1], "rclear").publish("r/x", b"", 1, retain=True)
    wait_for(lambda: _retained(mesh, "r/x") == [[]] * 3, "r/x cleared everywhere")


def test_concurrent_retained_updates_converge_on_one_value(mesh: Mesh) -> None:
    with clients() as make:
        a, b = make(mesh[0], "ra"), make(mesh[1], "rb")
        for i in range(5):
            a.publish("r/race", f"a{i}".encode(), 0, retain=True)
            b.publish("r/race", f"b{i}".encode(), 0, retain=True)

    def agreed() -> bool:
        seen = _retained(mesh, "r/race")
        return all(len(s) == 1 for s in seen) and len({s[0] for s in seen}) == 1

    wait_for(agreed, "one value of r/race on every node")
    with clients() as make:  # the value kept carries the greatest stamp
        s = make(mesh[2], "rstamp")
        s.subscribe("r/race", 1)
        wait_for(lambda: bool(s.received()), "r/race")
        (msg,) = s.received()
        stamp = dict(getattr(msg.properties, "UserProperty", []))[STAMP]
        assert stamp.split()[1] in ("broker-1", "broker-2")
        assert msg.payload in (b"a4", b"b4")


def test_a_client_id_connected_on_another_node_takes_over(mesh: Mesh) -> None:
    with clients() as make:
        first = make(mesh[0], "roaming")
        first.subscribe("t/#", 1)
        second = make(mesh[1], "roaming")
        assert first.gone.wait(20), "the old connection stayed"
        assert first.disconnect_reason == 0x8E  # Session taken over
        assert second.connected.is_set() and not second.gone.is_set()
        again = make(mesh[2], "roaming")  # and on to the third node
        assert second.gone.wait(20)
        assert second.disconnect_reason == 0x8E
        assert not again.gone.is_set()


@pytest.mark.parametrize("cn", ["pi-0001", "node:intruder", "node:broker-1"])
def test_the_cluster_listener_refuses_non_peers(mesh: Mesh, cn: str) -> None:
    """A device certificate from the same CA, a node of no [cluster].peers, and the
    node's own name: CONNACK 0x87; the peers' bridges stay up."""
    cert = issue(mesh.ca, cn, name=f"stranger-{cn.replace(':', '-')}")
    client = Client(mesh[0].cluster_port, cn, context=client_context(mesh.ca, cert))
    try:
        assert client.result == 0x87, client.result
    finally:
        client.close()
    assert all(mesh[0].bridges().values())


def test_the_cluster_listener_refuses_a_client_without_certificate(mesh: Mesh) -> None:
    client = Client(mesh[0].cluster_port, "node:broker-2", context=client_context(mesh.ca))
    try:
        assert client.result != 0
    finally:
        client.close()


def test_a_peer_without_its_node_certificate_is_refused(tmp_path: Path) -> None:
    """broker-1's peer "broker-2" is answered by a server whose certificate, from the
    same CA and valid for 127.0.0.1, is not "node:broker-2": the bridge stays down."""
    mesh = Mesh(tmp_path, 2)
    impostor = issue(mesh.ca, "impostor", server=True)
    settings = (f"cafile {mesh.ca.cert_path}\ncertfile {impostor.cert_path}\n"
                f"keyfile {impostor.key_path}\nallow_anonymous true\n")
    with mosquitto(tmp_path, settings) as port:
        mesh[1].cluster_port = port
        mesh.write_config(mesh[0])
        mesh[0].start()
        try:
            broker = mesh[0].broker
            assert broker is not None
            assert broker.wait_log("certificate names 'impostor', not 'node:broker-2'")
            assert mesh[0].bridges() == {"broker-2": False}
            assert mesh[0].health()[0] == 200
        finally:
            mesh.stop()
