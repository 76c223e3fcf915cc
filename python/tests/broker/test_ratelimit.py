"""roost.broker.ratelimit.PerKey: one event per key per interval, the rest counted."""

from __future__ import annotations

from roost.broker.ratelimit import PerKey


def test_one_event_per_key_per_interval_and_the_rest_counted() -> None:
    limit = PerKey(interval=60)
    assert limit.allow("10.0.0.1", 0) == 0
    assert limit.allow("10.0.0.1", 1) is None
    assert limit.allow("10.0.0.1", 59.9) is None
    assert limit.allow("10.0.0.2", 2) == 0  # another key has its own window
    assert limit.allow("10.0.0.1", 60) == 2  # what was held back since the last one
    assert limit.allow("10.0.0.1", 61) is None


def test_memory_is_bounded_under_a_flood_of_keys() -> None:
    limit = PerKey(interval=60, max_keys=100)
    for i in range(1000):
        assert limit.allow(f"k{i}", i / 1000) == 0
        assert len(limit.keys) <= 100
    assert limit.allow("late", 1000) == 0  # old keys are forgotten first
    assert len(limit.keys) == 1
