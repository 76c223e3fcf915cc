"""The one lock around the fleet: MQTT reader threads write, HTTP threads read, and event
streams wait here for the next change."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from roost.dashboard.fleet import Fleet

T = TypeVar("T")


class Hub:
    def __init__(self, fleet: Fleet, clock: Callable[[], float] = time.time) -> None:
        self.fleet, self.clock = fleet, clock
        self.version = 0
        self.cond = threading.Condition()

    def fold(self, topic: str, payload: bytes, retained: bool) -> None:
        with self.cond:
            if self.fleet.fold(topic, payload, retained, self.clock()):
                self._changed()

    def fold_sys(self, node: str, topic: str, payload: bytes) -> None:
        with self.cond:
            if self.fleet.node(node).fold(topic, payload, self.clock()):
                self._changed()

    def link(self, node: str, state: str) -> None:
        with self.cond:
            self.fleet.node(node).link = state
            self._changed()

    def read(self, func: Callable[[Fleet, float], T]) -> T:
        with self.cond:
            return func(self.fleet, self.clock())

    def wait(self, seen: int, timeout: float) -> int:
        """Block until the version moves past `seen` or `timeout` passes; the version now."""
        with self.cond:
            self.cond.wait_for(lambda: self.version != seen, timeout)
            return self.version

    def _changed(self) -> None:
        self.version += 1
        self.cond.notify_all()
