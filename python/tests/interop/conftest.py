"""The `broker` fixture: every interop test runs against Mosquitto (the reference) and Roost.

Mosquitto proves the test is right; Roost must pass the same test. Each test gets a fresh
broker on a free loopback port, so sessions and retained messages never leak between tests.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .brokers import Broker, BrokerNotReady, start_mosquitto, start_roost


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/interop/" in str(item.path):
            item.add_marker(pytest.mark.interop)


@pytest.fixture(params=["mosquitto", "roost"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    name: str = request.param
    data = tmp_path / f"{name}-data"
    data.mkdir()
    try:
        if name == "mosquitto":
            if shutil.which("mosquitto") is None:
                pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
            b = start_mosquitto(data)
        else:
            b = start_roost(data, sys.executable)
    except BrokerNotReady as err:
        if err.not_implemented:
            pytest.skip(f"roost broker cannot start yet: {err}")
        raise
    yield b
    crashed = b.proc.poll() is not None
    b.stop()
    print(f"--- {name} log (last lines) ---\n" + "\n".join(b.log[-40:]))
    if crashed:
        pytest.fail(f"{name} exited during the test with code {b.proc.returncode}")


@pytest.fixture(params=[4, 5], ids=["v311", "v5"])
def version(request: pytest.FixtureRequest) -> int:
    """MQTT protocol level, for tests that hold for both 3.1.1 and 5.0."""
    level: int = request.param
    return level
