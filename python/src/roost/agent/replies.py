"""The replies the agent sent, so a request it sees again (the same command and MQTT 5
correlation data: a QoS 1 redelivery, or the requester's retransmission after a reconnect)
gets its reply again instead of running twice.

SQLite in the state directory, fsynced like the queue: a duplicate of `restart-agent`
that arrives after the restart is still recognised. Bounded: the newest `limit` requests,
none older than `window` seconds. A request still running when a duplicate arrives
answers once, when it ends; one interrupted by a crash is answered with an error and not
run again (at most once).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from roost.agent import commands as cmds

SCHEMA = """
CREATE TABLE IF NOT EXISTS reply (command TEXT NOT NULL, correlation BLOB NOT NULL,
                                  at REAL NOT NULL, payload BLOB,  -- NULL: still running
                                  PRIMARY KEY (command, correlation));
CREATE INDEX IF NOT EXISTS reply_at ON reply (at);
"""
INTERRUPTED = cmds.reply(False, "interrupted by an agent restart; not run again")


class Replies:
    def __init__(self, path: Path, window: float = 3600.0, limit: int = 1000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.window, self.limit = window, limit
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit: one row a time
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.db.execute("UPDATE reply SET payload=? WHERE payload IS NULL", (INTERRUPTED,))

    def begin(self, command: str, correlation: bytes, now: float) -> tuple[bool, bytes | None]:
        """(True, None): a new request, run it and `finish` it. (False, reply): a duplicate,
        send `reply` again; (False, None): a duplicate of one still running, drop it."""
        row = self.db.execute("SELECT payload FROM reply WHERE command=? AND correlation=? "
                              "AND at>=?", (command, correlation, now - self.window)).fetchone()
        if row is not None:
            return False, row[0]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO reply VALUES (?, ?, ?, NULL)",
                            (command, correlation, now))
            self.db.execute("DELETE FROM reply WHERE at<? OR rowid NOT IN "
                            "(SELECT rowid FROM reply ORDER BY at DESC LIMIT ?)",
                            (now - self.window, self.limit))
        return True, None

    def finish(self, command: str, correlation: bytes, payload: bytes) -> None:
        self.db.execute("UPDATE reply SET payload=? WHERE command=? AND correlation=?",
                        (payload, command, correlation))

    def close(self) -> None:
        self.db.close()
