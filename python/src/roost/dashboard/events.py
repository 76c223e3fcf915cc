"""Server-sent events for one page: the full fleet first, then only the Pis whose data or
derived state changed (a Pi going stale changes no message, so the state is compared too),
at most one event per `MIN_GAP` seconds, and a comment as a heartbeat when all is quiet."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from roost.dashboard.fleet import Fleet, Key
from roost.dashboard.hub import Hub

MIN_GAP = 0.5  # seconds between two events: a busy fleet must not flood a phone
HEARTBEAT = 15.0  # proxies close idle connections; a comment keeps this one open


class Stream:
    def __init__(self, hub: Hub, clock: Callable[[], float] = time.monotonic) -> None:
        self.hub, self.clock = hub, clock
        self.version = -1  # the first call sends at once
        self.marks: dict[Key, tuple[int, str]] | None = None
        self.rest: tuple[Any, ...] = ()
        self.sent_at = clock()

    def next(self, timeout: float) -> bytes:
        """The next chunk to write: an event, a heartbeat, or b"" (nothing yet)."""
        gap = MIN_GAP - (self.clock() - self.sent_at)
        if self.marks is not None and gap > 0:
            time.sleep(gap)
        self.version = self.hub.wait(self.version, timeout)
        update = self.hub.read(self._update)
        if update is not None:
            self.sent_at = self.clock()
            return b"data: " + json.dumps(update, separators=(",", ":")).encode() + b"\n\n"
        if self.clock() - self.sent_at >= HEARTBEAT:
            self.sent_at = self.clock()
            return b": keepalive\n\n"
        return b""

    def _update(self, fleet: Fleet, now: float) -> dict[str, Any] | None:
        marks = fleet.marks(now)
        first = self.marks is None
        changed = [k for k, m in marks.items() if first or (self.marks or {}).get(k) != m]
        view = fleet.view(now, None if first else changed)
        rest = (view["counts"], view["keys"], view["brokers"])
        if not first and not changed and rest == self.rest:
            return None
        self.marks, self.rest = marks, rest
        view["full"] = first
        return view
