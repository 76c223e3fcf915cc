"""The scale run's arithmetic (lab/scale/stats.py): the figures in README's "Scale" table
come from these functions, so each case is one a wrong formula would get wrong."""

import pytest
from scale.stats import delivery, percentile, time_to_share


def test_percentile_nearest_rank() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 9.0, 8.0, 7.0, 6.0]  # unsorted on purpose
    assert percentile(values, 50) == 5.0  # not the interpolated 5.5
    assert percentile(values, 99) == 10.0
    assert percentile(values, 0) == 1.0
    assert percentile(list(range(1, 1001)), 99) == 990
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="outside"):
        percentile(values, 101)


def test_delivery_counts_only_acknowledged_losses() -> None:
    acked = {1: [0, 1, 2, 3], 2: [0, 1]}
    seen = {1: [0, 1, 1, 3, 4], 2: [0, 1], 3: [7]}
    # publisher 1 lost seq 2, got seq 1 twice; seq 4 and publisher 3's 7 were never acked
    assert delivery(acked, seen) == {"lost": 1, "duplicates": 1, "unacked_seen": 2}
    assert delivery({5: [0]}, {}) == {"lost": 1, "duplicates": 0, "unacked_seen": 0}


def test_time_to_share_waits_for_the_last_client() -> None:
    times = [0.5, 3.0, None, 1.0, 2.0]
    assert time_to_share(times, 5, (0.5, 0.8, 1.0)) == {"50%": 2.0, "80%": 3.0, "100%": None}
    assert time_to_share([4.0, 1.0], 2)["100%"] == 4.0
    assert time_to_share([1.0] * 99 + [30.0], 100)["99%"] == 1.0
