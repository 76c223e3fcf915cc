"""Sans-IO rate limit for log lines about one peer: a client retrying a bad certificate
every second must not fill the journal, yet nothing it did goes uncounted."""

from __future__ import annotations


class PerKey:
    """At most one event per key per `interval` seconds; the rest are counted and the
    count is handed to the next event let through. Time is passed in."""

    __slots__ = ("interval", "keys", "max_keys")

    def __init__(self, interval: float = 60.0, max_keys: int = 4096) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self.keys: dict[str, tuple[float, int]] = {}  # key -> (when let through, held back)

    def allow(self, key: str, now: float) -> int | None:
        """None: hold this event back; else how many were held back since the last one."""
        seen = self.keys.get(key)
        if seen is not None and now - seen[0] < self.interval:
            self.keys[key] = (seen[0], seen[1] + 1)
            return None
        if seen is None and len(self.keys) >= self.max_keys:
            self._forget(now)
        self.keys[key] = (now, 0)
        return 0 if seen is None else seen[1]

    def _forget(self, now: float) -> None:
        """Drop keys whose window is over; if all are recent (a flood of addresses),
        drop them all rather than grow: a few extra lines are the lesser harm."""
        old = [key for key, (when, _) in self.keys.items() if now - when >= self.interval]
        for key in old:
            del self.keys[key]
        if len(self.keys) >= self.max_keys:
            self.keys.clear()
