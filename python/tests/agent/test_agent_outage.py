"""Store and forward: broker outages, agent restarts, a full queue."""

from __future__ import annotations

import time
from pathlib import Path

from interop.brokers import free_port

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
