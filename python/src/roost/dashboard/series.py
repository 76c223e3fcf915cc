"""A bounded time series for a sparkline: the last hour, at most one point per slot.

However fast a Pi reports, a series never holds more than `points + 1` samples: a new sample
in the same slot (window / points seconds wide) replaces the previous one, and samples older
than the window are pruned.
"""

from __future__ import annotations

from collections import deque

WINDOW = 3600.0
POINTS = 120  # one point per 30 s over an hour: a sparkline is about 120 px wide


class Series:
    def __init__(self, window: float = WINDOW, points: int = POINTS) -> None:
        self.window, self.slot = window, window / points
        self.data: deque[tuple[float, float]] = deque(maxlen=points + 1)

    def add(self, t: float, value: float) -> bool:
        """Record a sample; False when it is older than the newest (out of order)."""
        if self.data and t < self.data[-1][0]:
            return False
        if self.data and t // self.slot == self.data[-1][0] // self.slot:
            self.data[-1] = (t, value)
        else:
            self.data.append((t, value))
        return True

    def prune(self, now: float) -> None:
        while self.data and self.data[0][0] < now - self.window:
            self.data.popleft()

    def latest(self) -> float | None:
        return self.data[-1][1] if self.data else None

    def view(self, now: float) -> list[list[float]]:
        """[[unix time, value], ...], rounded: the page draws them 120 px wide."""
        self.prune(now)
        return [[round(t), round(v, 2)] for t, v in self.data]
