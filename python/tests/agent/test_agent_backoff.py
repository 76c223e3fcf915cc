"""Backoff with full jitter, capped, endpoints in order."""

from __future__ import annotations

import random

from roost.agent.backoff import Backoff


def test_full_jitter_grows_to_the_cap_and_rotates_endpoints() -> None:
    b = Backoff(["a", "b"], initial=1.0, cap=8.0, rng=random.Random(1))
    assert b.next() == ("a", 0.0)  # first attempt right away
    seen: list[tuple[str, float]] = []
    for _ in range(8):
        b.failed()
        seen.append(b.next())
    assert [e for e, _ in seen] == ["b", "a"] * 4
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(0 <= d <= c for (_, d), c in zip(seen, ceilings, strict=True))
    assert max(d for _, d in seen[3:]) > 4, "jitter spans the whole range up to the cap"


def test_jitter_spreads_a_fleet() -> None:
    delays = []
    for seed in range(200):
        b = Backoff(["a"], initial=1.0, cap=60.0, rng=random.Random(seed))
        b.next()
        for _ in range(6):
            b.failed()
        delays.append(b.next()[1])
    assert min(delays) < 4 and max(delays) > 28  # spread over [0, 32], not in lockstep


def test_lost_connection_retries_the_preferred_endpoint_jittered() -> None:
    b = Backoff(["a", "b"], initial=0.5, cap=8.0, rng=random.Random(2))
    b.next()
    b.failed()
    b.next()
    b.connected()
    b.lost()
    endpoint, delay = b.next()
    assert endpoint == "a" and 0 <= delay <= 0.5
