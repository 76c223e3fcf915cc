"""`roost fleet command` against the Roost broker and a real agent: the Pi's answer, the
broker's error answer for a Pi that is offline, and a clear exit when nothing comes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import AgentFactory, WatcherFactory, _server
from .harness import WAIT, AgentProc, Server, Watcher, agent_toml


@pytest.fixture
def roost(tmp_path: Path) -> Iterator[Server]:
    yield from _server("roost", tmp_path / "broker")


def fleet_command(port: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "roost", "fleet", "command", *argv,
                           "--broker", f"127.0.0.1:{port}"], capture_output=True, text=True,
                          timeout=WAIT * 2, check=False)


@pytest.fixture
def online(roost: Server, agent: AgentFactory, watcher: WatcherFactory,
           tmp_path: Path) -> tuple[Watcher, AgentProc]:
    """pi-1's agent, online; a watcher of its status."""
    w = watcher(roost.port, ["roost/lab/pi-1/status"])
    proc = agent(agent_toml(tmp_path / "state", [roost.port], collectors="load = 0"))
    w.wait(lambda ms: any(m.body.get("state") == "online" for m in ms), "pi-1 online")
    return w, proc


def test_the_pis_answer_is_printed(roost: Server, online: tuple[Watcher, AgentProc]) -> None:
    done = fleet_command(roost.port, "pi-1", "set-interval", "--arg", "metric=load",
                         "--arg", "seconds=5", "--timeout", "10")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True,
                                       "result": {"metric": "load", "interval": 5.0}}
    done = fleet_command(roost.port, "pi-1", "nope", "--timeout", "10")
    assert done.returncode == 1
    assert json.loads(done.stdout)["ok"] is False
    assert "pi-1 answered with an error: unknown command 'nope'" in done.stderr


def test_an_offline_pi_gets_the_brokers_error_answer(
        roost: Server, online: tuple[Watcher, AgentProc]) -> None:
    w, proc = online
    proc.stop()  # a clean stop: its session stays on the broker (session_expiry)
    w.wait(lambda ms: ms[-1].body.get("state") == "offline", "pi-1 offline")
    done = fleet_command(roost.port, "pi-1", "ping", "--timeout", "1")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["broker"] == "roost"
    assert "the broker answered for pi-1 with an error: expired undelivered: pi-1 " \
           "offline since " in done.stderr


def test_silence_ends_at_the_deadline_with_the_pis_status(roost: Server,
                                                          watcher: WatcherFactory) -> None:
    watcher(roost.port, ["roost/lab/pi-9/cmd/+"], name="pi-9")  # takes requests, never answers
    done = fleet_command(roost.port, "pi-9", "ping", "--site", "lab", "--timeout", "1")
    assert done.returncode == 3
    assert "no answer from pi-9 within 4 s; pi-9 has no retained status" in done.stderr
    done = fleet_command(roost.port, "pi-0", "ping", "--site", "lab", "--timeout", "1")
    assert done.returncode == 3
    assert "nobody is subscribed to pi-0's commands" in done.stderr


def test_an_unknown_pi_without_a_site_is_a_usage_error(roost: Server) -> None:
    done = fleet_command(roost.port, "pi-7", "ping")
    assert done.returncode == 2
    assert "no retained status for pi-7 under roost/+/pi-7: give --site" in done.stderr
