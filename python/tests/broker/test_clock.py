"""The server's clock follows monotonic time, so a stepped wall clock moves no timer."""

from __future__ import annotations

import time

import pytest

from roost.broker import server


def test_clock_ignores_wall_clock_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    before = server.clock()
    monkeypatch.setattr(time, "time", lambda: before + 86_400 * 90)  # NTP: +90 days
    assert server.clock() - before < 3600  # a keepalive timer would have fired


def test_clock_advances_with_monotonic_time(monkeypatch: pytest.MonkeyPatch) -> None:
    start = time.monotonic()
    before = server.clock()
    monkeypatch.setattr(time, "monotonic", lambda: start + 42.0)
    assert server.clock() - before == pytest.approx(42.0, abs=1.0)
