"""Durable broker state in SQLite (stdlib `sqlite3`, WAL journal).

What is kept: retained messages, and for every persistent session (MQTT 5 session
expiry > 0, or 3.1.1 clean session 0) its expiry, username, pending delayed will,
subscriptions, queued and in-flight outgoing QoS 1/2 messages, and the incoming QoS 2
packet ids awaiting PUBREL.

The engine calls the write methods below as state changes; they only record the change
in memory. Nothing reaches the file until `commit()`, which the server calls:

- durability = "batched" (default): the server commits a few milliseconds after the
  first uncommitted change (`commit_interval`). A PUBACK/PUBREC may leave before the
  message it acknowledges is committed: a crash (`kill -9`, power loss) within that
  window loses the changes of that window, nothing older. `synchronous=NORMAL`: a
  committed batch survives the process being killed; a power cut may also lose the
  last committed batches.
- durability = "strict": the server commits, with `synchronous=FULL` (fsync), after
  handling each chunk of bytes read from a socket and before writing any reply of that
  chunk, so a PUBACK/PUBREC leaves only once the message is on disk.

Changes that cancel within one batch (a message queued and acknowledged before the
commit) never touch the file, so a fast subscriber costs no disk writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Protocol

from roost.broker.message import Message, Outgoing, SessionRecord, Snapshot
from roost.broker.router import SubOptions
from roost.broker.session import Session
from roost.mqtt.packets import Properties, PropertyId, Will


class Store(Protocol):
    def load(self) -> Snapshot: ...
    def set_retained(self, topic: str, message: Message | None) -> None: ...
    def save_session(self, s: Session) -> None: ...
    def delete_session(self, client_id: str) -> None: ...
    def save_subscription(self, client_id: str, topic_filter: str, opts: SubOptions) -> None:
        ...
    def delete_subscription(self, client_id: str, topic_filter: str) -> None: ...
    def save_outgoing(self, client_id: str, out: Outgoing, new: bool) -> None: ...
    def delete_outgoing(self, client_id: str, seq: int) -> None: ...
    def add_incoming(self, client_id: str, packet_id: int) -> None: ...
    def delete_incoming(self, client_id: str, packet_id: int) -> None: ...
    @property
    def dirty(self) -> bool: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


class NullStore:
    """Keeps nothing: a broker run without a data directory."""

    dirty = False

    def load(self) -> Snapshot:
        return Snapshot()

    def set_retained(self, topic: str, message: Message | None) -> None:
        pass

    def save_session(self, s: Session) -> None:
        pass

    def delete_session(self, client_id: str) -> None:
        pass

    def save_subscription(self, client_id: str, topic_filter: str, opts: SubOptions) -> None:
        pass

    def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        pass

    def save_outgoing(self, client_id: str, out: Outgoing, new: bool) -> None:
        pass

    def delete_outgoing(self, client_id: str, seq: int) -> None:
        pass

    def add_incoming(self, client_id: str, packet_id: int) -> None:
        pass

    def delete_incoming(self, client_id: str, packet_id: int) -> None:
        pass

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


SCHEMA = """
CREATE TABLE IF NOT EXISTS retained (
    topic TEXT PRIMARY KEY, payload BLOB, qos INTEGER, props TEXT, expires_at REAL);
CREATE TABLE IF NOT EXISTS sessions (
    client_id TEXT PRIMARY KEY, expiry INTEGER, expires_at REAL, username TEXT,
    will TEXT, will_at REAL);
CREATE TABLE IF NOT EXISTS subscriptions (
    client_id TEXT, filter TEXT, qos INTEGER, no_local INTEGER, rap INTEGER, rh INTEGER,
    sub_id INTEGER, PRIMARY KEY (client_id, filter));
CREATE TABLE IF NOT EXISTS outgoing (
    client_id TEXT, seq INTEGER, packet_id INTEGER, released INTEGER, topic TEXT,
    payload BLOB, msg_qos INTEGER, qos INTEGER, retain INTEGER, props TEXT,
    sub_ids TEXT, expires_at REAL, PRIMARY KEY (client_id, seq));
CREATE TABLE IF NOT EXISTS incoming (
    client_id TEXT, packet_id INTEGER, PRIMARY KEY (client_id, packet_id));
"""

_TABLES = ("subscriptions", "outgoing", "incoming", "sessions")


def props_to_json(props: Properties) -> str:
    """Properties as JSON: bytes as hex under "b", user properties as pairs."""
    if not props:
        return ""
    out: dict[str, Any] = {}
    for key, value in props.items():
        out[str(int(key))] = {"b": value.hex()} if isinstance(value, bytes) else value
    return json.dumps(out)


def props_from_json(text: str) -> Properties:
    if not text:
        return {}
    props: Properties = {}
    for key, value in json.loads(text).items():
        pid = PropertyId(int(key))
        if isinstance(value, dict):
            props[pid] = bytes.fromhex(value["b"])
        elif pid == PropertyId.USER_PROPERTY:
            props[pid] = [(k, v) for k, v in value]
        else:
            props[pid] = value
    return props


def _will_from_json(text: str | None) -> Will | None:
    if not text:
        return None
    w = json.loads(text)
    return Will(w["topic"], bytes.fromhex(w["payload"]), w["qos"], w["retain"],
                props_from_json(w["props"]))


class _Pending:
    """Upserts and deletes of one table since the last commit, last write wins.

    A row first written in this batch (`new`) and deleted in the same batch is simply
    forgotten: it never existed on disk.
    """

    __slots__ = ("fresh", "rows")

    def __init__(self) -> None:
        self.rows: dict[Hashable, tuple[Any, ...] | None] = {}
        self.fresh: set[Hashable] = set()

    def put(self, key: Hashable, row: tuple[Any, ...], new: bool = False) -> None:
        if new:
            self.fresh.add(key)
        self.rows[key] = row

    def delete(self, key: Hashable) -> None:
        if key in self.fresh:
            self.fresh.discard(key)
            del self.rows[key]
        else:
            self.rows[key] = None

    def drop_client(self, client_id: str) -> None:
        for key in [k for k in self.rows if isinstance(k, tuple) and k[0] == client_id]:
            del self.rows[key]
            self.fresh.discard(key)

    def split(self) -> tuple[list[tuple[Any, ...]], list[Hashable]]:
        upserts = [row for row in self.rows.values() if row is not None]
        deletes = [key for key, row in self.rows.items() if row is None]
        return upserts, deletes

    def clear(self) -> None:
        self.rows = {}
        self.fresh = set()


class SqliteStore:
    def __init__(self, path: str | Path, *, strict: bool = False) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if strict else 'NORMAL'}")
        self.db.executescript(SCHEMA)
        self._retained = _Pending()
        self._sessions = _Pending()
        self._subs = _Pending()
        self._outgoing = _Pending()
        self._incoming = _Pending()
        self._tables = (self._retained, self._sessions, self._subs, self._outgoing,
                        self._incoming)
        self._dropped: list[str] = []  # sessions to delete, before any upsert
        self._dirty = False

    @property
    def dirty(self) -> bool:
        return self._dirty

    def set_retained(self, topic: str, message: Message | None) -> None:
        self._dirty = True
        if message is None:
            self._retained.delete(topic)
        else:
            row = (topic, message.payload, message.qos, props_to_json(message.properties),
                   message.expires_at)
            self._retained.put(topic, row)

    def save_session(self, s: Session) -> None:
        """Expiry, username and a pending delayed will; not subscriptions or messages."""
        self._dirty = True
        will = s.will
        will_json = "" if will is None else json.dumps({
            "topic": will.topic, "payload": will.payload.hex(), "qos": will.qos,
            "retain": will.retain, "props": props_to_json(will.properties)})
        row = (s.client_id, s.expiry, s.expires_at, s.username, will_json, s.will_at)
        self._sessions.put(s.client_id, row)

    def delete_session(self, client_id: str) -> None:
        self._dirty = True
        self._dropped.append(client_id)
        self._sessions.rows.pop(client_id, None)
        for table in (self._subs, self._outgoing, self._incoming):
            table.drop_client(client_id)

    def save_subscription(self, client_id: str, topic_filter: str, opts: SubOptions) -> None:
        self._dirty = True
        row = (client_id, topic_filter, opts.qos, opts.no_local, opts.retain_as_published,
               opts.retain_handling, opts.subscription_id)
        self._subs.put((client_id, topic_filter), row)

    def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        self._dirty = True
        self._subs.delete((client_id, topic_filter))

    def save_outgoing(self, client_id: str, out: Outgoing, new: bool) -> None:
        self._dirty = True
        m = out.message
        row = (client_id, out.seq, out.packet_id, out.released, m.topic, m.payload, m.qos,
               out.qos, out.retain, props_to_json(m.properties),
               ",".join(map(str, out.sub_ids)), m.expires_at)
        self._outgoing.put((client_id, out.seq), row, new)

    def delete_outgoing(self, client_id: str, seq: int) -> None:
        self._dirty = True
        self._outgoing.delete((client_id, seq))

    def add_incoming(self, client_id: str, packet_id: int) -> None:
        self._dirty = True
        self._incoming.put((client_id, packet_id), (client_id, packet_id), new=True)

    def delete_incoming(self, client_id: str, packet_id: int) -> None:
        self._dirty = True
        self._incoming.delete((client_id, packet_id))

    def commit(self) -> None:
        if not self._dirty:
            return
        db = self.db
        db.execute("BEGIN")
        try:
            for client_id in self._dropped:
                for table in _TABLES:
                    db.execute(f"DELETE FROM {table} WHERE client_id = ?", (client_id,))  # noqa: S608
            self._write("retained", self._retained, ("topic",), 5)
            self._write("sessions", self._sessions, ("client_id",), 6)
            self._write("subscriptions", self._subs, ("client_id", "filter"), 7)
            self._write("outgoing", self._outgoing, ("client_id", "seq"), 12)
            self._write("incoming", self._incoming, ("client_id", "packet_id"), 2)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")  # keep the pending changes for the next attempt
            raise
        for pending in self._tables:
            pending.clear()
        self._dropped = []
        self._dirty = False

    def _write(self, table: str, pending: _Pending, keys: tuple[str, ...], width: int) -> None:
        upserts, deletes = pending.split()
        if deletes:
            where = " AND ".join(f"{k} = ?" for k in keys)
            params = [k if isinstance(k, tuple) else (k,) for k in deletes]
            self.db.executemany(f"DELETE FROM {table} WHERE {where}", params)  # noqa: S608
        if upserts:
            marks = ",".join("?" * width)
            self.db.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", upserts)  # noqa: S608

    def load(self) -> Snapshot:
        db = self.db
        snap = Snapshot()
        for topic, payload, qos, props, expires_at in db.execute("SELECT * FROM retained"):
            snap.retained.append(
                Message(topic, payload, qos, True, props_from_json(props), expires_at))
        records: dict[str, SessionRecord] = {}
        for cid, expiry, expires_at, username, will, will_at in db.execute(
                "SELECT * FROM sessions"):
            records[cid] = SessionRecord(cid, expiry, expires_at, username,
                                         _will_from_json(will), will_at or 0.0)
        for cid, filt, qos, nl, rap, rh, sid in db.execute("SELECT * FROM subscriptions"):
            if cid in records:
                records[cid].subscriptions[filt] = SubOptions(qos, bool(nl), bool(rap), rh, sid)
        rows = db.execute("SELECT * FROM outgoing ORDER BY client_id, seq")
        for (cid, seq, pid, released, topic, payload, msg_qos, qos, retain, props, sub_ids,
             expires_at) in rows:
            if cid not in records:
                continue
            msg = Message(topic, payload, msg_qos, bool(retain), props_from_json(props),
                          expires_at)
            ids = tuple(int(i) for i in sub_ids.split(",")) if sub_ids else ()
            records[cid].outgoing.append(
                Outgoing(seq, msg, qos, bool(retain), ids, pid, bool(released)))
        for cid, pid in db.execute("SELECT * FROM incoming"):
            if cid in records:
                records[cid].incoming.add(pid)
        snap.sessions = list(records.values())
        return snap

    def close(self) -> None:
        self.commit()
        self.db.close()
