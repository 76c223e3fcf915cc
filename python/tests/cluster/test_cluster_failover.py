"""A node killed with SIGKILL and started again: the others keep working, queue QoS 1/2
messages for it on disk, and deliver them once when it is back, with no operator
action; retained messages set meanwhile reach it too."""

from __future__ import annotations

import collections
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from security.certs import issue, make_crl

from .mesh import Mesh, clients, wait_for
from .test_cluster_nodes import _retained


def _bridge_up(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20) as r:
        text = r.read().decode()
    return {s.labels["peer"]: s.value for f in text_string_to_metric_families(text)
            if f.name == "roost_bridge_up" for s in f.samples}


def test_kill_9_and_return(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path, 3)
    try:
        mesh.start()
        a, b, c = mesh.nodes
        assert _bridge_up(a.http) == {"broker-2": 1.0, "broker-3": 1.0}
        with clients() as make:
            durable = make(c, "durable", clean=False, expiry=3600)
            durable.subscribe("k/#", 2)
            pa, pb = make(a, "kpa"), make(b, "kpb")
            pa.publish("k/a", b"before", 1)
            wait_for(lambda: durable.payloads() == [b"before"], "a message before the kill")
            c.kill()
            wait_for(lambda: not a.bridges()["broker-3"] and not b.bridges()["broker-3"],
                     "the peers notice")
            assert a.health()[0] == 200  # a peer down does not change the status code
            assert _bridge_up(a.http)["broker-3"] == 0.0
            sent = []
            for i in range(20):
                pa.publish("k/a", f"a{i}".encode(), 1)
                pb.publish("k/b", f"b{i}".encode(), 2)
                sent += [f"a{i}".encode(), f"b{i}".encode()]
            pa.publish("r/late", b"while down", 1, retain=True)
            with clients() as make_c:  # c.start() gives the node a new client port
                c.start()
                mesh.wait_joined()
                back = make_c(c, "durable", clean=False, expiry=3600)
                assert back.session_present
                wait_for(lambda: len(back.payloads()) >= len(sent), "the backlog")
                pa.publish("k/end", b"end", 1)
                wait_for(lambda: back.payloads("k/end") == [b"end"], "the end marker")
                counts = collections.Counter(back.payloads())
                assert all(counts[p] == 1 for p in sent), counts.most_common(3)
                assert back.payloads("k/a") == [p for p in sent if p.startswith(b"a")]
        assert _retained(mesh, "r/late") == [[b"while down"]] * 3
    finally:
        mesh.stop()


def test_renewed_node_certificates_after_sighup(tmp_path: Path) -> None:
    """broker-1 gets a new certificate and SIGHUP; broker-2's CRL then revokes the old
    one and SIGHUP drops broker-1's link: it comes back with the new certificate."""
    mesh = Mesh(tmp_path, 2, crl=tmp_path / "crl.pem")
    make_crl(mesh.ca)
    try:
        mesh.start()
        a, b = mesh.nodes
        assert a.broker is not None and b.broker is not None
        old = a.cert
        a.cert = issue(mesh.ca, "node:broker-1", server=True, client_too=True, name="broker-1")
        a.broker.reload()
        assert a.broker.wait_log("reloaded certificates")
        make_crl(mesh.ca, revoked=[old])
        b.broker.reload()
        assert b.broker.wait_log(r"disconnecting .*node:broker-1.* is revoked")
        assert a.broker.wait_log("bridge to broker-2 up", 2)
        mesh.wait_joined()
    finally:
        mesh.stop()
