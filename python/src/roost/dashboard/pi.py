"""One Pi as the dashboard sees it, folded from its status and telemetry messages.

Sans-IO: every method takes `now` (wall-clock seconds). Only readable messages are signs of
life; an unreadable one marks that metric "unreadable" until a readable one replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roost.dashboard import payloads
from roost.dashboard.series import Series

SPARKLINES = {"cpu_temp": payloads.number, "load": payloads.load_1m}
NEVER_SEEN = "never seen"


@dataclass
class Pi:
    site: str
    client_id: str
    status: str | None = None  # "online" / "offline" as the retained status says
    stopped_at: float | None = None  # the offline status's own time; a last will has none
    last_seen: float | None = None
    version: str | None = None
    queue_depth: int | None = None
    dropped: int | None = None
    rev: int = 0  # bumped on every change, so the page is sent only what changed
    unreadable: set[str] = field(default_factory=set)
    series: dict[str, Series] = field(default_factory=lambda: {m: Series() for m in SPARKLINES})
    seqs: dict[str, tuple[int, float]] = field(default_factory=dict)

    def fold_status(self, payload: bytes, retained: bool, now: float) -> bool:
        data = payloads.body(payload)
        state = data.get("state") if data else None
        if data is None or state not in ("online", "offline"):
            return self._unreadable("status")
        self.unreadable.discard("status")
        self.status = str(state)
        # a clean stop stamps its offline status; the last will (set at connect) cannot
        self.stopped_at = payloads.stamp(data, now) if state == "offline" else None
        self.version = payloads.text(data.get("version")) or self.version
        if state == "online":
            self._alive(data, retained, now)
            self.queue_depth = payloads.count(data.get("queue_depth"))
            self.dropped = payloads.count(data.get("dropped"))
        self.rev += 1
        return True

    def fold_telemetry(self, metric: str, payload: bytes, retained: bool, now: float) -> bool:
        data = payloads.body(payload)
        if data is None or "value" not in data:
            return self._unreadable(metric)
        seq, ts = data.get("seq"), payloads.stamp(data, now)
        if isinstance(seq, int) and ts is not None:
            last = self.seqs.get(metric)
            if last and seq <= last[0] and ts <= last[1]:
                return False  # a QoS 1 duplicate, or the same sample via a second node
            self.seqs[metric] = (seq, ts)
        reader = SPARKLINES.get(metric)
        value = reader(data["value"]) if reader else None
        if reader and value is None:
            return self._unreadable(metric)
        self.unreadable.discard(metric)
        when = self._alive(data, retained, now)
        if reader and value is not None and when is not None:
            self.series[metric].add(when, value)
        self.rev += 1
        return True

    def state(self, now: float, stale_after: float) -> tuple[str, str]:
        """(state, reason): online, offline (last will, stopped, silent) or never seen."""
        if self.status == "offline":
            return "offline", "stopped" if self.stopped_at else "last will"
        if self.last_seen is None:
            return NEVER_SEEN, ""
        if now - self.last_seen > stale_after:
            return "offline", f"silent for over {stale_after:g}s"
        return "online", ""

    def view(self, now: float, stale_after: float, series: bool = True) -> dict[str, Any]:
        state, reason = self.state(now, stale_after)
        metrics = {m: {"latest": s.latest(), "points": s.view(now) if series else [],
                       "unreadable": m in self.unreadable} for m, s in self.series.items()}
        return {"site": self.site, "client_id": self.client_id, "state": state,
                "reason": reason, "last_seen": self.last_seen, "version": self.version,
                "queue_depth": self.queue_depth, "dropped": self.dropped, "metrics": metrics,
                "unreadable": sorted(self.unreadable)}

    def _alive(self, data: dict[str, Any], retained: bool, now: float) -> float | None:
        """The message's time, if known: its stamp, else now for a live (not retained) one."""
        ts = payloads.stamp(data, now)
        when = ts if ts is not None else (None if retained else now)
        if when is not None:
            self.last_seen = max(self.last_seen or 0.0, when)
        return when

    def _unreadable(self, metric: str) -> bool:
        if metric in self.unreadable:
            return False
        self.unreadable.add(metric)
        self.rev += 1
        return True
