"""Fixtures for the agent tests: a broker (Mosquitto, and Roost's own), agent processes and
subscribers that are always cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import AgentProc, Server, Watcher

AgentFactory = Callable[..., AgentProc]
WatcherFactory = Callable[..., Watcher]


def _server(kind: str, data: Path) -> Iterator[Server]:
    server = Server(kind, data)
    server.start()
    yield server
    log = server.proc.log if server.proc else []
    server.stop()
    print(f"--- {kind} log (last lines) ---\n" + "\n".join(log[-30:]))


@pytest.fixture(params=["mosquitto", "roost"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """Either broker: the agent must not depend on which one it talks to."""
    yield from _server(request.param, tmp_path / "broker")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Server]:
    """Mosquitto only: for tests that restart the broker with persistence in place."""
    yield from _server("mosquitto", tmp_path / "broker")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentFactory]:
    started: list[AgentProc] = []

    def start(toml: str, **kw: Any) -> AgentProc:
        proc = AgentProc(tmp_path, toml, **kw)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
        print(f"--- agent {proc.config.name} log ---\n{proc.output()[-3000:]}")


@pytest.fixture
def watcher() -> Iterator[WatcherFactory]:
    opened: list[Watcher] = []

    def open_(*args: Any, **kw: Any) -> Watcher:
        w = Watcher(*args, **kw)
        opened.append(w)
        return w

    yield open_
    for w in opened:
        w.close()
