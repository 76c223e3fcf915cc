"""Store and forward: broker outages, agent restarts, a full queue."""

from __future__ import annotations

import time
from pathlib import Path

from interop.brokers import free_port
from roost.agent.config import load
from roost.agent.link import Link

from .conftest import AgentFactory, WatcherFactory
from .harness import Server, agent_toml, dedupe

DOWN_FOR = 2.0  # seconds the broker stays away
RATE = 0.05  # seconds between samples


def test_samples_taken_while_broker_is_down_arrive_in_order_without_gaps(
        broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    w = watcher(broker.port, ["roost/lab/+/telemetry/#"], name="checker")
    proc = agent(agent_toml(tmp_path / "state", [broker.port], collectors=f"load = {RATE}"))
    w.wait(lambda ms: len(w.seqs()) >= 5, "samples before the outage")
    broker.stop()
    before = max(w.seqs())
    time.sleep(DOWN_FOR)  # the agent keeps sampling into its queue meanwhile
    assert proc.proc.poll() is None, "the agent must survive the outage"
    broker.start()
    expected = before + int(DOWN_FOR / RATE / 2)  # at least half the nominal rate was queued
    w.wait(lambda ms: max(w.seqs()) >= expected + 5, "the backlog and new samples")
    got = dedupe(w.seqs())
    assert got == list(range(got[0], got[-1] + 1)), "gap in the sequence"
    assert got[0] == 1


def test_queue_survives_restart_and_drops_oldest_when_full(
        broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    state, limit = tmp_path / "state", 5
    extra = f"[queue]\nmax_samples = {limit}\n"
    offline = agent(agent_toml(state, [free_port()], collectors=f"load = {RATE}", extra=extra))
    offline.wait_log("connecting to")
    time.sleep(1.0)  # ~20 samples for a queue of 5, no broker to take them
    assert offline.stop() == 0
    w = watcher(broker.port, ["roost/lab/#"])
    agent(agent_toml(state, [broker.port], collectors="load = 0", extra=extra))
    w.wait(lambda ms: len(w.seqs()) >= limit and bool(w.statuses()), "the kept samples")
    birth = w.statuses()[0]
    taken = birth["seq"]
    assert birth["dropped"] == taken - limit > 0, birth
    assert dedupe(w.seqs()) == list(range(taken - limit + 1, taken + 1)), "the newest are kept"


def test_backlog_drains_within_the_brokers_receive_maximum(
        agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    state = tmp_path / "state"
    offline = agent(agent_toml(state, [free_port()], collectors=f"load = {RATE}"))
    offline.wait_log("connecting to")
    time.sleep(0.5)
    assert offline.stop() == 0
    strict = Server("mosquitto", tmp_path / "broker", extra="max_inflight_messages 2")
    strict.start()  # CONNACK carries Receive Maximum 2; the agent's window is 20
    try:
        w = watcher(strict.port, ["roost/lab/#"])
        proc = agent(agent_toml(state, [strict.port], collectors="load = 0"))
        w.wait(lambda ms: bool(w.statuses()), "online")
        backlog = w.statuses()[0]["seq"]
        w.wait(lambda ms: dedupe(w.seqs()) == list(range(1, backlog + 1)), "the whole backlog")
        assert "link down" not in proc.output()
        assert proc.stop() == 0  # its client id is borrowed below
        # Mosquitto 2.0 tolerates an excess, so watch the window itself, in process
        link = Link(load(proc.config), b"{}", lambda: None, lambda m: None, lambda m, f: None)
        for _ in range(200):
            link.poll(0.05)
            if link.up:
                break
        assert link.up and link.room() == 2
        for n in range(5):
            link.send("roost/lab/pi-1/reply/x", str(n).encode())
        assert len(link.flying) == 2 and len(link.outbox) == 3
        for _ in range(200):
            link.poll(0.05)
            assert len(link.flying) <= 2
            if link.idle:
                break
        assert link.idle
        link.close()
    finally:
        strict.stop()
