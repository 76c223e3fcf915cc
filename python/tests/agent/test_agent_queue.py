"""The SQLite queue on disk: order, persistence of samples and seq, drop-oldest accounting."""

from __future__ import annotations

import json
from pathlib import Path

from roost.agent.queue import Queue


def seqs(q: Queue) -> list[int]:
    return [json.loads(p)["seq"] for _, _, p in q.after(0, 100)]


def test_order_seq_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    q = Queue(path, limit=100)
    assert q.push([("t/a", 1), ("t/b", {"x": 2})]) == [1, 2]
    rows = q.after(0, 10)
    assert [r[1] for r in rows] == ["t/a", "t/b"]
    q.delete([rows[0][0]])
    q.close()
    q = Queue(path, limit=100)  # a reboot: the unacknowledged sample and the counter survive
    assert q.depth == 1 and seqs(q) == [2]
    assert q.push([("t/a", 3)]) == [3]
    assert q.after(rows[1][0], 10)[0][0] > rows[1][0], "row ids never reused"


def test_full_queue_drops_oldest_and_counts(tmp_path: Path) -> None:
    q = Queue(tmp_path / "q.sqlite", limit=3)
    for v in range(5):
        q.push([("t", v)])
    assert q.depth == 3 and seqs(q) == [3, 4, 5]
    assert q.counter("dropped") == 2
    q.push([("t", 5), ("t", 6)])  # one transaction larger than the room left
    assert seqs(q) == [5, 6, 7] and q.counter("dropped") == 4


def test_delete_counts_rejected_and_ignores_rows_already_dropped(tmp_path: Path) -> None:
    q = Queue(tmp_path / "q.sqlite", limit=2)
    q.push([("t", 1), ("t", 2)])
    first = q.after(0, 1)[0][0]
    q.push([("t", 3)])  # drops `first`, not handed to paho
    q.delete([first], rejected=1)
    assert q.depth == 2 and q.counter("rejected") == 1


def test_full_queue_keeps_samples_in_flight_and_counts_only_what_never_leaves(
        tmp_path: Path) -> None:
    # The chaos run's queue-full fault: samples handed to paho are delivered after the
    # reconnect, so dropping them made `dropped` exceed the hole in the sequence.
    q = Queue(tmp_path / "q.sqlite", limit=3)
    q.push([("t", v) for v in range(3)])
    sent_upto = q.after(0, 2)[-1][0]  # seq 1 and 2 are in flight
    q.push([("t", v) for v in range(3, 6)], sent_upto)
    assert seqs(q) == [1, 2, 6] and q.counter("dropped") == 3  # 3, 4, 5 never leave
    q.delete([r[0] for r in q.after(0, 2)])  # the PUBACKs of 1 and 2
    q.push([("t", 6)], sent_upto)
    assert seqs(q) == [6, 7] and q.depth == 2 and q.counter("dropped") == 3
