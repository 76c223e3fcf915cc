"""An external bridge from Roost to Mosquitto (Debian's), in both directions, with
prefixes, and loop-safe on a `both` pattern."""

from __future__ import annotations

import collections
import json
import os
import pwd
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from secure.broker import METRICS, Broker
from security.procs import daemon, free_port, mosquitto

from .mesh import Sub, wait_for

pytestmark = pytest.mark.interop


class Pair:
    def __init__(self, roost: Broker, mosq: int) -> None:
        self.roost, self.mosq = roost, mosq
        self.subs: list[Sub] = []

    def client(self, where: str, client_id: str) -> Sub:
        port = self.roost.ports[0] if where == "roost" else self.mosq
        self.subs.append(Sub(port, client_id))
        return self.subs[-1]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with mosquitto(tmp_path, "allow_anonymous true\n") as port:
        config = tmp_path / "roost.toml"
        config.write_text(f"""\
allow_anonymous = true
sys_interval = 0
data_dir = "{tmp_path / 'data'}"
metrics = {{ bind = "127.0.0.1", port = 0 }}
[[listener]]
bind = "127.0.0.1:0"
[[bridge]]
name = "mosq"
address = "127.0.0.1:{port}"
topics = ["out/# out 1 local/ remote/", "in/# in 2 local/ remote/", "both/# both 1",
          "two/# out 2"]
""")
        roost = Broker(config)
        http = int(next(m for m in map(METRICS.search, roost.lines) if m).group(1))

        def up() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=20) as r:
                return bool(json.loads(r.read())["external_bridges"]["mosq"])

        found = Pair(roost, port)
        try:
            wait_for(up, "the bridge to Mosquitto")
            yield found
        finally:
            for s in found.subs:
                s.close()
            roost.stop()


def _at_least(sub: Sub, topic: str, count: int) -> bool:
    return len(sub.payloads(topic)) >= count


def test_out_with_prefixes(pair: Pair) -> None:
    remote = pair.client("mosq", "remote-sub")
    remote.subscribe("remote/out/#", 1)
    local = pair.client("roost", "local-pub")
    for i in range(5):
        local.publish("local/out/a", f"m{i}".encode(), 1)
    local.publish("local/elsewhere", b"not bridged", 1)
    wait_for(lambda: len(remote.payloads()) >= 5, "the messages on Mosquitto")
    assert remote.payloads("remote/out/a") == [f"m{i}".encode() for i in range(5)]
    exact = pair.client("mosq", "remote-sub-2")
    exact.subscribe("two/#", 2)
    for i in range(5):
        local.publish("two/x", f"q{i}".encode(), 2)
    wait_for(lambda: len(exact.payloads()) >= 5, "the QoS 2 messages on Mosquitto")
    assert exact.payloads() == [f"q{i}".encode() for i in range(5)]
    assert {m.qos for m in exact.received()} == {2}


def test_in_with_prefixes(pair: Pair) -> None:
    local = pair.client("roost", "local-sub")
    local.subscribe("local/in/#", 2)
    remote = pair.client("mosq", "remote-pub")

    def probe() -> bool:  # the bridge's subscription on Mosquitto may lag its CONNACK
        remote.publish("remote/in/probe", b"p", 1)
        return bool(local.payloads("local/in/probe"))

    wait_for(probe, "the bridge subscribed on Mosquitto")
    for i in range(5):
        remote.publish("remote/in/b", f"m{i}".encode(), 2)
    wait_for(lambda: len(local.payloads("local/in/b")) >= 5, "the messages in Roost")
    assert local.payloads("local/in/b") == [f"m{i}".encode() for i in range(5)]
    assert {m.qos for m in local.received() if m.topic == "local/in/b"} == {2}


def test_both_never_loops(pair: Pair) -> None:
    local, remote = pair.client("roost", "l"), pair.client("mosq", "r")
    local.subscribe("both/#", 1)
    remote.subscribe("both/#", 1)
    lp, rp = pair.client("roost", "lp"), pair.client("mosq", "rp")

    def probe() -> bool:
        rp.publish("both/probe", b"p", 1)
        return bool(local.payloads("both/probe"))

    wait_for(probe, "the bridge subscribed on Mosquitto")
    sent = []
    for i in range(5):
        lp.publish("both/r", f"l{i}".encode(), 1)
        rp.publish("both/m", f"r{i}".encode(), 1)
        sent += [f"l{i}".encode(), f"r{i}".encode()]
    lp.publish("both/end", b"end", 1)
    rp.publish("both/end", b"end", 1)
    for s in (local, remote):
        wait_for(partial(_at_least, s, "both/end", 2), "both end markers")
        counts = collections.Counter(p for p in s.payloads() if p in sent)
        assert sorted(counts) == sorted(sent)
        assert set(counts.values()) == {1}, counts.most_common(3)
        assert s.payloads("both/end") == [b"end", b"end"]


def test_out_messages_wait_for_mosquitto_to_return(tmp_path: Path) -> None:
    """Mosquitto stops; QoS 1 messages published in Roost meanwhile wait in the bridge's
    local session and reach Mosquitto once it is back (its persistent subscriber gets
    them), each once and in order."""
    port = free_port()
    user = pwd.getpwuid(os.getuid()).pw_name
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nuser {user}\nallow_anonymous true\n"
                    f"persistence true\npersistence_location {tmp_path}/\nlog_dest stderr\n")
    config = tmp_path / "roost.toml"
    config.write_text(f"""\
allow_anonymous = true
sys_interval = 0
data_dir = "{tmp_path / 'data'}"
[[listener]]
bind = "127.0.0.1:0"
[[bridge]]
name = "mosq"
address = "127.0.0.1:{port}"
topics = ["q/# out 1"]
""")
    mosq = ["mosquitto", "-c", str(conf)]
    sent = [f"m{i}".encode() for i in range(10)]
    roost: Broker | None = None
    subs: list[Sub] = []
    try:
        with daemon(mosq, tmp_path / "mosquitto-1.log", port):
            roost = Broker(config)
            assert roost.wait_log("bridge mosq up")
            keeper = Sub(port, "keeper", clean=False, expiry=3600)
            keeper.subscribe("q/#", 1)
            keeper.close()
        assert roost.wait_log(r"bridge mosq \(")  # the link saw Mosquitto go
        local = Sub(roost.ports[0], "q-pub")
        subs.append(local)
        for payload in sent:
            local.publish("q/x", payload, 1)
        with daemon(mosq, tmp_path / "mosquitto-2.log", port):
            assert roost.wait_log("bridge mosq up", 2)
            back = Sub(port, "keeper", clean=False, expiry=3600)
            subs.append(back)
            local.publish("q/end", b"end", 1)
            wait_for(partial(_at_least, back, "q/end", 1), "the end marker on Mosquitto")
            assert back.payloads("q/x") == sent
    finally:
        for s in subs:
            s.close()
        if roost is not None:
            roost.stop()
