"""The store-and-forward queue: every sample is written here before it is published.

SQLite in WAL mode with synchronous=FULL: each commit is fsynced, so after a power cut
(the normal way a Pi stops) neither a queued sample nor the sequence counter goes back.
NORMAL would be faster but may lose the last commits; losing the counter would reuse
sequence numbers and a subscriber that drops duplicates by `seq` would then drop new
samples. A Pi samples a few metrics per second at most, so the extra fsync is affordable;
samples due together are written in one transaction.

Bounded: when full, the oldest rows not yet handed to paho are deleted and counted in
`dropped` (the queue holds `limit` plus the in-flight window at most).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sample (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                                   payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counter VALUES ('seq', 0), ('dropped', 0), ('rejected', 0);
"""


class Queue:
    def __init__(self, path: Path, limit: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.limit = limit
        self.db = sqlite3.connect(path, isolation_level=None)  # explicit transactions
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.depth: int = self.db.execute("SELECT count(*) FROM sample").fetchone()[0]

    def counter(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM counter WHERE name=?", (name,)).fetchone()
        return int(row[0])

    def push(self, samples: Iterable[tuple[str, Any]], sent_upto: int = 0) -> list[int]:
        """Queue (topic, value) pairs as `{"ts", "seq", "value"}` JSON; return their seqs.
        Rows up to `sent_upto` are in paho's hands, which delivers them after a reconnect
        anyway: a full queue drops the oldest rows after them, so `dropped` counts only
        samples that never leave."""
        seqs: list[int] = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            seq = self.counter("seq")
            for topic, value in samples:
                seq += 1
                body = json.dumps({"ts": round(time.time(), 3), "seq": seq, "value": value},
                                  separators=(",", ":"))
                self.db.execute("INSERT INTO sample (topic, payload) VALUES (?, ?)",
                                (topic, body.encode()))
                seqs.append(seq)
            self.db.execute("UPDATE counter SET value=? WHERE name='seq'", (seq,))
            self.depth += len(seqs)
            excess = self.depth - self.limit
            if excess > 0:  # drop oldest: the newest state of a Pi matters most
                gone = self.db.execute(
                    "DELETE FROM sample WHERE id IN (SELECT id FROM sample WHERE id > ? "
                    "ORDER BY id LIMIT ?)", (sent_upto, excess)).rowcount
                self.db.execute("UPDATE counter SET value=value+? WHERE name='dropped'", (gone,))
                self.depth -= gone
        return seqs

    def after(self, row_id: int, limit: int) -> list[tuple[int, str, bytes]]:
        """The oldest rows with id > row_id, in order."""
        return self.db.execute("SELECT id, topic, payload FROM sample WHERE id > ? "
                               "ORDER BY id LIMIT ?", (row_id, limit)).fetchall()

    def delete(self, row_ids: Iterable[int], rejected: int = 0) -> None:
        """Forget acknowledged rows (rejected: how many the broker refused, counted apart)."""
        ids = [(i,) for i in row_ids]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            before = self.db.total_changes
            self.db.executemany("DELETE FROM sample WHERE id=?", ids)
            self.depth -= self.db.total_changes - before  # rows dropped meanwhile don't count
            if rejected:
                self.db.execute("UPDATE counter SET value=value+? WHERE name='rejected'",
                                (rejected,))

    def close(self) -> None:
        self.db.close()
