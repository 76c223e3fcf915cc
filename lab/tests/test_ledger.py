"""Sequence accounting of the chaos run: holes, drops, duplicates, gaps, blind spots."""

from chaos.ledger import (
    Sample,
    Status,
    Window,
    WindowFigures,
    account,
    holes,
    longest_gap,
)

W = [Window("a", 0, 100), Window("b", 100, 200)]


def run(seqs: list[tuple[int, float]], statuses: list[Status] | None = None,
        final_seq: dict[str, int] | None = None,
        blind: list[tuple[float, float]] | None = None) -> list[WindowFigures]:
    """Samples of pi-1 made and received at the same instant."""
    return account([Sample("pi-1", s, at, at) for s, at in seqs], statuses or [], W,
                   final_seq, blind or [])


def test_a_hole_is_lost_in_the_window_its_sample_was_made() -> None:
    a, b = run([(1, 10), (2, 20), (3, 30), (6, 110), (7, 120)])
    assert (a.total("missing"), a.total("lost")) == (2, 2)
    assert (b.total("missing"), b.total("lost")) == (0, 0)


def test_the_agents_dropped_count_explains_holes() -> None:
    drops = [Status("pi-1", 5, 3, 1, 0), Status("pi-1", 40, 5, 9, 0)]
    (a, _) = run([(1, 10), (2, 20), (3, 30), (6, 110)], statuses=drops)
    assert (a.total("dropped"), a.total("lost")) == (2, 0)


def test_fewer_drops_than_holes_leave_the_rest_lost() -> None:
    drops = [Status("pi-1", 5, 0, 1, 0), Status("pi-1", 40, 1, 9, 0)]
    (a, _) = run([(1, 10), (4, 30)], statuses=drops)
    assert (a.total("missing"), a.total("dropped"), a.total("lost")) == (2, 1, 1)


def test_duplicates_count_in_the_window_they_arrive() -> None:
    a, b = run([(1, 10), (2, 20), (2, 150), (3, 160)])
    assert (a.total("duplicates"), b.total("duplicates")) == (0, 1)
    assert b.total("lost") == 0


def test_a_hole_at_the_tail_counts_once_the_last_seq_is_known() -> None:
    (a, _) = run([(1, 10), (2, 20)], final_seq={"pi-1": 4})
    assert a.total("lost") == 2
    (a, _) = run([(1, 10), (2, 20)])
    assert a.total("lost") == 0


def test_holes_while_the_checker_had_no_session_are_unseen_not_lost() -> None:
    (a, _) = run([(1, 10), (2, 20), (5, 40)], blind=[(25, 30)])
    assert (a.total("missing"), a.total("unseen"), a.total("lost")) == (2, 2, 0)
    (a, _) = run([(1, 10), (2, 20), (5, 40)], blind=[(50, 60)])
    assert a.total("lost") == 2


def test_longest_gap_includes_the_window_edges() -> None:
    assert longest_gap([10, 20, 90], 0, 100) == 70
    assert longest_gap([], 0, 100) == 100
    assert longest_gap([5, 50, 500], 0, 100) == 50
    (_, b) = run([(1, 10), (2, 20), (3, 190)])
    assert b.pis["pi-1"].longest_gap == 90


def test_holes_between_the_smallest_and_the_given_top() -> None:
    assert holes([5, 7, 9]) == [6, 8]
    assert holes([5, 6], upto=8) == [7, 8]
    assert holes([]) == []


def test_duplicates_resent_to_the_checker_are_told_apart() -> None:
    """The checker's broker resends (DUP set) after the checker reconnects; an agent's
    retransmission reaches the checker as a new delivery (DUP clear)."""
    samples = [Sample("pi-1", 1, 10, 10), Sample("pi-1", 2, 11, 11),
               Sample("pi-1", 2, 11, 12, dup=True), Sample("pi-1", 1, 10, 13)]
    (a, _) = account(samples, [], W)
    assert (a.total("duplicates"), a.total("redelivered")) == (2, 1)
