"""Three real nodes on loopback: a message published on any node reaches every
matching subscriber on every node once, at the QoS both ends allow, and never loops."""

from __future__ import annotations

import collections

import pytest

from .mesh import Mesh, clients, wait_for

COUNT = 30


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_cross_node_delivery_at_each_qos(mesh: Mesh, qos: int) -> None:
    with clients() as make:
        subs = [make(node, f"sub-{qos}-{node.name}") for node in mesh.nodes]
        for s in subs:
            s.subscribe(f"x{qos}/#", qos)
        pub = make(mesh[0], f"pub-{qos}")
        sent = [f"m{i}".encode() for i in range(COUNT)]
        for payload in sent:
            pub.publish(f"x{qos}/t", payload, qos)
        if qos == 0:  # QoS 0 may be lost by definition; on loopback it is not
            wait_for(lambda: all(len(s.payloads()) >= COUNT for s in subs), "QoS 0 copies")
        else:
            wait_for(lambda: all(len(s.payloads()) >= COUNT for s in subs), "every message")
        pub.publish(f"x{qos}/end", b"end", 1)  # anything duplicated is in before this
        wait_for(lambda: all(s.payloads(f"x{qos}/end") for s in subs), "the end marker")
        for s in subs:
            assert s.payloads(f"x{qos}/t") == sent  # once each, in order
            assert {m.qos for m in s.received() if m.topic.endswith("/t")} == {qos}


def test_no_duplicates_with_overlapping_wildcards(mesh: Mesh) -> None:
    """Every node publishes; on every node one client holds three overlapping
    subscriptions (one copy each, merged) and three clients hold one each."""
    filters = ["o/#", "o/+/c", "+/b/c"]
    with clients() as make:
        merged = [make(n, f"merged-{n.name}") for n in mesh.nodes]
        single = {(n.name, f): make(n, f"single-{n.name}-{i}")
                  for n in mesh.nodes for i, f in enumerate(filters)}
        for s in merged:
            for f in filters:
                s.subscribe(f, 2)
        for (_, f), s in single.items():
            s.subscribe(f, 2)
        pubs = [make(n, f"opub-{n.name}") for n in mesh.nodes]
        sent = []
        for i in range(10):
            for j, p in enumerate(pubs):
                payload = f"{j}-{i}".encode()
                p.publish("o/b/c", payload, 1 + i % 2)
                sent.append(payload)
        everyone = [*merged, *single.values()]
        wait_for(lambda: all(len(s.payloads()) >= len(sent) for s in everyone), "all copies")
        for p in pubs:
            p.publish("o/b/end", b"end", 1)
        wait_for(lambda: all(len(s.payloads("o/b/end")) >= 1 for s in merged), "end markers")
        for s in everyone:
            counts = collections.Counter(s.payloads("o/b/c"))
            assert sorted(counts) == sorted(sent)
            assert set(counts.values()) == {1}, f"duplicates: {counts.most_common(3)}"


def test_bridges_report_up(mesh: Mesh) -> None:
    for node in mesh.nodes:
        status, body = node.health()
        assert status == 200
        assert body["node"] == node.name
        assert body["bridges"] == {p.name: True for p in mesh.nodes if p is not node}
