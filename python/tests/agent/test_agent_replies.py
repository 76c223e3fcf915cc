"""roost.agent.replies: the record of answered commands, bounded in time and count."""

from __future__ import annotations

from pathlib import Path

from roost.agent.replies import INTERRUPTED, Replies


def test_duplicates_get_the_stored_reply_within_the_window(tmp_path: Path) -> None:
    replies = Replies(tmp_path / "r.sqlite", window=60, limit=100)
    assert replies.begin("ping", b"a", 0) == (True, None)
    assert replies.begin("ping", b"a", 1) == (False, None)  # still running
    replies.finish("ping", b"a", b"pong")
    assert replies.begin("ping", b"a", 2) == (False, b"pong")
    assert replies.begin("other", b"a", 2) == (True, None)  # another command
    assert replies.begin("ping", b"a", 61) == (True, None)  # out of the window: new


def test_only_the_newest_are_kept(tmp_path: Path) -> None:
    replies = Replies(tmp_path / "r.sqlite", window=1e9, limit=3)
    for i in range(5):
        assert replies.begin("c", bytes([i]), i)[0]
    assert replies.db.execute("SELECT count(*) FROM reply").fetchone()[0] == 3
    assert replies.begin("c", bytes([0]), 9) == (True, None)  # forgotten
    assert replies.begin("c", bytes([4]), 9) == (False, None)


def test_a_request_interrupted_by_a_crash_is_not_run_again(tmp_path: Path) -> None:
    replies = Replies(tmp_path / "r.sqlite")
    assert replies.begin("restart-unit", b"x", 0) == (True, None)
    replies.db.close()  # no finish(): the agent died meanwhile
    again = Replies(tmp_path / "r.sqlite")
    assert again.begin("restart-unit", b"x", 1) == (False, INTERRUPTED)
