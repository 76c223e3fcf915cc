"""Full meshes of 2 and 5 nodes: each message published on each node reaches a
subscriber on every node exactly once."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from .mesh import Mesh, clients, wait_for


@pytest.mark.parametrize("size", [2, 5])
def test_every_node_to_every_node_once(tmp_path: Path, size: int) -> None:
    mesh = Mesh(tmp_path, size)
    try:
        mesh.start()
        with clients() as make:
            subs = [make(n, f"s-{n.name}") for n in mesh.nodes]
            for s in subs:
                s.subscribe("z/#", 1)
            pubs = [make(n, f"p-{n.name}") for n in mesh.nodes]
            sent = []
            for i in range(5):
                for j, p in enumerate(pubs):
                    p.publish(f"z/{j}", f"{j}-{i}".encode(), 1)
                    sent.append(f"{j}-{i}".encode())
            for p in pubs:
                p.publish("z/end", b"end", 1)
            wait_for(lambda: all(len(s.payloads("z/end")) >= size for s in subs), "the ends")
            for s in subs:
                counts = collections.Counter(s.payloads())
                assert sorted(p for p in counts if p != b"end") == sorted(sent)
                assert counts[b"end"] == size
                assert all(counts[p] == 1 for p in sent), counts.most_common(3)
    finally:
        mesh.stop()


def test_the_bridge_qos_caps_what_crosses(tmp_path: Path) -> None:
    """With `qos = 1` a QoS 2 message reaches a QoS 2 subscriber on the other node at
    QoS 1, and a local one at QoS 2."""
    mesh = Mesh(tmp_path, 2, extra="qos = 1\n")
    try:
        mesh.start()
        with clients() as make:
            here, there = make(mesh[0], "here"), make(mesh[1], "there")
            for s in (here, there):
                s.subscribe("cap/#", 2)
            make(mesh[0], "capper").publish("cap/x", b"two", 2)
            wait_for(lambda: here.payloads() and there.payloads(), "both copies")
            assert [m.qos for m in here.received()] == [2]
            assert [m.qos for m in there.received()] == [1]
    finally:
        mesh.stop()
