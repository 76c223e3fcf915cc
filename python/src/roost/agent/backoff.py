"""Reconnect schedule: endpoints tried in their configured order, with exponential backoff
and full jitter (a uniform delay in [0, min(cap, initial * 2**(failures-1))]) before each
retry, so a fleet that lost its brokers together does not come back in lockstep.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Backoff(Generic[T]):
    def __init__(self, endpoints: Sequence[T], initial: float, cap: float,
                 rng: random.Random | None = None) -> None:
        self.endpoints, self.initial, self.cap = list(endpoints), initial, cap
        self.tries = 0  # attempts in this streak: picks the endpoint
        self.failures = 0  # picks the delay
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)

    def next(self) -> tuple[T, float]:
        """The endpoint for the next attempt and how long to wait before it."""
        endpoint = self.endpoints[self.tries % len(self.endpoints)]
        self.tries += 1
        if self.failures == 0:
            return endpoint, 0.0
        ceiling = min(self.cap, self.initial * 2 ** min(self.failures - 1, 32))
        return endpoint, self.rng.uniform(0, ceiling)

    def failed(self) -> None:
        self.failures += 1

    def connected(self) -> None:
        self.tries = self.failures = 0

    def lost(self) -> None:
        """A working connection dropped: retry from the preferred endpoint, but jittered,
        since every Pi on that broker noticed at the same moment."""
        self.tries, self.failures = 0, 1
