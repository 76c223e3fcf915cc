"""Telemetry, birth and last will against a real broker, with the agent as a real process."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from interop.brokers import free_port

from .conftest import AgentFactory, WatcherFactory
from .harness import Server, agent_toml

ALL = ["roost/lab/#"]


def test_telemetry_arrives_with_increasing_seq_and_birth(
        broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    w = watcher(broker.port, ALL)
    agent(agent_toml(tmp_path / "state", [broker.port], collectors="load = 0.05\nuptime = 0.05"))
    w.wait(lambda ms: len(w.seqs("load")) >= 10, "10 load samples")
    seqs = w.seqs("load") + w.seqs("uptime")
    assert sorted(seqs) == sorted(set(seqs)), "one seq per sample, shared by all metrics"
    assert w.seqs("load") == sorted(w.seqs("load")) and w.seqs("load")[0] >= 1
    sample = next(m.body for m in w.msgs if m.topic == "roost/lab/pi-1/telemetry/load")
    assert set(sample) == {"ts", "seq", "value"} and set(sample["value"]) == {"1m", "5m", "15m"}
    birth = w.statuses()[0]
    assert birth["state"] == "online" and birth["version"] and birth["dropped"] == 0
    assert birth["endpoint"] == f"127.0.0.1:{broker.port}"


def test_last_will_fires_on_kill_9(broker: Server, agent: AgentFactory,
                                   watcher: WatcherFactory, tmp_path: Path) -> None:
    w = watcher(broker.port, ["roost/lab/+/status"])
    proc = agent(agent_toml(tmp_path / "state", [broker.port]))
    w.wait(lambda ms: any(s["state"] == "online" for s in w.statuses()), "online")
    proc.stop(signal.SIGKILL)
    w.wait(lambda ms: w.statuses()[-1]["state"] == "offline", "the last will")
    will = w.statuses()[-1]
    assert will["client_id"] == "pi-1" and "ts" not in will  # the will is set before connecting


def test_sigterm_publishes_offline_and_exits_cleanly(
        broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    w = watcher(broker.port, ["roost/lab/+/status"])
    proc = agent(agent_toml(tmp_path / "state", [broker.port]))
    w.wait(lambda ms: any(s["state"] == "online" for s in w.statuses()), "online")
    assert proc.stop(signal.SIGTERM) == 0
    w.wait(lambda ms: w.statuses()[-1]["state"] == "offline", "offline status")
    assert "ts" in w.statuses()[-1]  # our own goodbye, not the will


def test_fails_over_to_the_next_endpoint_in_order(
        broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    w = watcher(broker.port, ["roost/lab/+/status"])
    dead = free_port()  # nothing listens here
    proc = agent(agent_toml(tmp_path / "state", [dead, broker.port]))
    w.wait(lambda ms: any(s["state"] == "online" for s in w.statuses()), "online")
    assert w.statuses()[0]["endpoint"] == f"127.0.0.1:{broker.port}"
    proc.stop()
    log = proc.output()
    assert log.index(f"connecting to 127.0.0.1:{dead}") < log.index(
        f"connected to 127.0.0.1:{broker.port}")


def test_plugin_collector_publishes_under_its_own_metric(
        mosquitto: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    w = watcher(mosquitto.port, ["roost/lab/+/telemetry/#"])
    script = tmp_path / "rssi.py"
    script.write_text('print(\'{"dbm": -61}\')\n')
    plugin = (f"[plugins.rssi]\ncommand = ['{sys.executable}', '{script}']\ninterval = 0.2\n"
              "[plugins.slow]\ncommand = ['/bin/sleep', '5']\ninterval = 0.1\ntimeout = 0.2\n")
    agent(agent_toml(tmp_path / "state", [mosquitto.port], collectors="load = 0.1",
                     extra=plugin))
    w.wait(lambda ms: len(w.seqs("rssi")) >= 2 and len(w.seqs("load")) >= 5, "plug-in samples")
    assert next(m.body["value"] for m in w.msgs if m.topic.endswith("/rssi")) == {"dbm": -61}
    assert w.seqs("slow") == []  # timed out every time, and the rest carried on
