"""The scale run's arithmetic, kept apart from sockets and containers so it can be tested:
percentiles, acknowledged-but-undelivered accounting, and how long until a share of the
fleet had reconnected."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of unsorted values; None when there are none."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0..100")
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]


def delivery(acked: Mapping[int, Iterable[int]],
             seen: Mapping[int, Iterable[int]]) -> dict[str, int]:
    """Per publisher, the sequence numbers the broker acknowledged and those the subscriber
    received. lost: acknowledged, never received (must be 0 at QoS 1); duplicates: received
    more than once; unacked_seen: received without an acknowledgement (the PUBACK was
    still on its way when the publisher stopped waiting), not a loss."""
    lost = duplicates = unacked_seen = 0
    for pub in set(acked) | set(seen):
        got = list(seen.get(pub, ()))
        have = set(got)
        sent = set(acked.get(pub, ()))
        lost += len(sent - have)
        duplicates += len(got) - len(have)
        unacked_seen += len(have - sent)
    return {"lost": lost, "duplicates": duplicates, "unacked_seen": unacked_seen}


def time_to_share(times: Iterable[float | None], total: int,
                  shares: Sequence[float] = (0.5, 0.9, 0.99, 1.0)) -> dict[str, float | None]:
    """times: seconds from an event until each client was back (None: not back). For each
    share, how long until that many of total were back; None if never."""
    done = sorted(t for t in times if t is not None)
    out: dict[str, float | None] = {}
    for share in shares:
        need = max(math.ceil(share * total), 1)
        out[f"{share * 100:g}%"] = done[need - 1] if need <= len(done) else None
    return out
