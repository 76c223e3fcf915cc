"""Sequence accounting for the chaos run: pure functions over what the checker recorded.

Every agent numbers its samples with one counter (`seq`) that never goes back, so the
checker can tell, per Pi: which numbers never arrived (holes), which arrived twice
(duplicates), and how long it waited between two arrivals (delivery gaps). A hole is
charged to the fault window in which its sample was made (the `ts` of the sample before
it); the agent's own `dropped` counter (queue full) explains holes, anything beyond is lost.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    pi: str
    seq: int
    ts: float  # when the agent made it (its clock)
    at: float  # when the checker received it (our clock)
    dup: bool = False  # DUP flag: the checker's broker sent it again (checker reconnect)


@dataclass(frozen=True)
class Status:
    pi: str
    at: float
    dropped: int
    seq: int
    queue_depth: int


@dataclass(frozen=True)
class Window:
    name: str
    start: float
    end: float

    def holds(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass
class PiFigures:
    received: int = 0
    duplicates: int = 0
    redelivered: int = 0  # of those, with DUP set: resent to the checker by its broker
    missing: int = 0  # holes charged to this window
    unseen: int = 0  # of those, holes while the checker itself had no session
    dropped: int = 0  # the agent's dropped counter grew by this much
    lost: int = 0  # holes the drops do not explain
    longest_gap: float = 0.0


@dataclass
class WindowFigures:
    window: Window
    pis: dict[str, PiFigures] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.pis.values())

    def longest_gap(self) -> tuple[float, str]:
        """The longest gap of any Pi in this window, and whose it was."""
        return max(((f.longest_gap, pi) for pi, f in self.pis.items()), default=(0.0, ""))


def holes(seqs: Iterable[int], upto: int | None = None) -> list[int]:
    """Numbers missing between the smallest seq seen and `upto` (else the largest seen)."""
    seen = set(seqs)
    if not seen:
        return []
    top = max(seen) if upto is None else max(upto, *seen)
    return [s for s in range(min(seen), top + 1) if s not in seen]


def longest_gap(arrivals: Iterable[float], start: float, end: float) -> float:
    """Longest stretch of [start, end] without an arrival."""
    marks = [start, *sorted(t for t in arrivals if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(marks))


def dropped_in(statuses: list[Status], window: Window) -> int:
    """How much the agent's dropped counter grew between the last report before the window
    and the last one inside it (statuses of one Pi)."""
    before = [s.dropped for s in statuses if s.at < window.start]
    inside = [s.dropped for s in statuses if window.holds(s.at)]
    if not inside:
        return 0
    return max(inside) - (max(before) if before else min(inside))


def account(samples: list[Sample], statuses: list[Status], windows: list[Window],
            final_seq: dict[str, int] | None = None,
            blind: Sequence[tuple[float, float]] = ()) -> list[WindowFigures]:
    """Figures per window and Pi. `final_seq`: per Pi, a seq known to be acknowledged (a
    status with an empty queue), so holes at the tail count too. `blind`: intervals in
    which the checker had no session (it moved to another node); a hole whose neighbours
    arrived on both sides of one is `unseen`, not lost."""
    by_pi: dict[str, list[Sample]] = defaultdict(list)
    for s in sorted(samples, key=lambda s: s.at):
        by_pi[s.pi].append(s)
    result = [WindowFigures(w) for w in windows]
    for pi, mine in by_pi.items():
        figures = [r.pis.setdefault(pi, PiFigures()) for r in result]
        first: dict[int, Sample] = {}
        for s in mine:
            for w, f in zip(windows, figures, strict=True):
                if w.holds(s.at):
                    f.received += 1
                    f.duplicates += s.seq in first
                    f.redelivered += s.seq in first and s.dup
            first.setdefault(s.seq, s)
        ordered = sorted(first)
        for hole in holes(first, (final_seq or {}).get(pi)):
            i = bisect.bisect_left(ordered, hole)
            before = first[ordered[i - 1]]  # holes lie above the smallest seq seen
            after = first[ordered[i]].at if i < len(ordered) else float("inf")
            unseen = any(a <= after and before.at <= b for a, b in blind)
            for w, f in zip(windows, figures, strict=True):
                if w.holds(before.ts):  # charged where the sample before it was made
                    f.missing += 1
                    f.unseen += unseen
        pi_statuses = [st for st in statuses if st.pi == pi]
        for w, f in zip(windows, figures, strict=True):
            f.dropped = dropped_in(pi_statuses, w)
            f.lost = max(0, f.missing - f.unseen - f.dropped)
            f.longest_gap = round(longest_gap([s.at for s in mine], w.start, w.end), 2)
    return result
