"""SqliteStore: what is committed comes back from a reopened file, and nothing else."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from roost.broker.message import Message, Outgoing
from roost.broker.router import SubOptions
from roost.broker.session import Session
from roost.broker.store import SqliteStore, props_from_json, props_to_json
from roost.mqtt.packets import PropertyId, Will

P = PropertyId
PROPS = {
    P.PAYLOAD_FORMAT_INDICATOR: 1,
    P.CONTENT_TYPE: "text/plain",
    P.RESPONSE_TOPIC: "reply/here",
    P.CORRELATION_DATA: b"\x00\xffid",
    P.USER_PROPERTY: [("a", "1"), ("a", "2"), ("b", "")],
}


def test_properties_round_trip_through_json() -> None:
    assert props_from_json(props_to_json(PROPS)) == PROPS
    assert props_from_json(props_to_json({})) == {}


def test_committed_state_comes_back_after_reopen(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store = SqliteStore(db)
    store.set_retained("a/b", Message("a/b", b"kept", 1, True, PROPS, 123.5))
    store.set_retained("a/gone", Message("a/gone", b"x", 0, True))
    store.set_retained("a/gone", None)
    s = Session("c1", 3600)
    s.username = "alice"
    s.will = Will("w/t", b"\x00bye", 1, True, {P.CONTENT_TYPE: "x"})
    s.will_at = 99.5
    store.save_session(s)
    store.save_subscription("c1", "a/#", SubOptions(1, True, True, 2, 7))
    store.save_subscription("c1", "$share/g/x", SubOptions(2))
    msg = Message("a/b", b"q", 2, False, PROPS)
    store.save_outgoing("c1", Outgoing(1, msg, 2, False, (7, 9)), True)
    inflight = Outgoing(2, msg, 1, True, (), packet_id=42, released=True)
    store.save_outgoing("c1", inflight, True)
    store.add_incoming("c1", 5)
    store.commit()
    store.db.close()  # as after kill -9: no close(), only what was committed

    snap = SqliteStore(db).load()
    [kept] = snap.retained
    assert (kept.topic, kept.payload, kept.qos, kept.properties, kept.expires_at) == (
        "a/b", b"kept", 1, PROPS, 123.5)
    [rec] = snap.sessions
    assert (rec.client_id, rec.expiry, rec.expires_at, rec.username) == (
        "c1", 3600, None, "alice")
    assert (rec.will, rec.will_at) == (s.will, 99.5)
    assert rec.subscriptions == {"a/#": SubOptions(1, True, True, 2, 7),
                                 "$share/g/x": SubOptions(2)}
    assert [(o.seq, o.qos, o.sub_ids, o.packet_id, o.released, o.retain)
            for o in rec.outgoing] == [(1, 2, (7, 9), 0, False, False),
                                       (2, 1, (), 42, True, True)]
    assert rec.outgoing[0].message.properties == PROPS
    assert rec.incoming == {5}


def test_uncommitted_changes_are_not_on_disk(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store = SqliteStore(db)
    store.save_session(Session("c1", 60))
    store.commit()
    store.set_retained("t", Message("t", b"x", 0, True))
    assert store.dirty
    store.db.close()
    snap = SqliteStore(db).load()
    assert snap.retained == []
    assert [r.client_id for r in snap.sessions] == ["c1"]


def test_acked_within_a_batch_never_touches_the_file(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    store.save_session(Session("c1", 60))
    msg = Message("t", b"x", 1, False)
    store.save_outgoing("c1", Outgoing(1, msg, 1, False), True)
    store.save_outgoing("c1", Outgoing(1, msg, 1, False, packet_id=3), False)
    store.delete_outgoing("c1", 1)
    assert store._outgoing.rows == {}
    store.commit()
    assert store.db.execute("SELECT count(*) FROM outgoing").fetchone() == (0,)


def test_delete_then_recreate_session_in_one_batch(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store = SqliteStore(db)
    store.save_session(Session("c1", 60))
    store.save_subscription("c1", "old", SubOptions())
    store.add_incoming("c1", 9)
    store.commit()
    store.delete_session("c1")
    store.save_session(Session("c1", 30))
    store.save_subscription("c1", "new", SubOptions())
    store.close()
    [rec] = SqliteStore(db).load().sessions
    assert (rec.expiry, list(rec.subscriptions), rec.incoming) == (30, ["new"], set())


def test_deleted_outgoing_row_stays_deleted(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store = SqliteStore(db)
    store.save_session(Session("c1", 60))
    store.save_outgoing("c1", Outgoing(1, Message("t", b"x", 1, False), 1, False), True)
    store.commit()
    store.save_outgoing("c1", Outgoing(1, Message("t", b"x", 1, False), 1, False, (), 4), False)
    store.delete_outgoing("c1", 1)
    store.close()
    [rec] = SqliteStore(db).load().sessions
    assert rec.outgoing == []


def test_failed_commit_keeps_changes_for_the_next_one(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store = SqliteStore(db)
    store.save_session(Session("c1", 60))
    blocker = sqlite3.connect(db, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    store.db.execute("PRAGMA busy_timeout=0")
    with pytest.raises(sqlite3.OperationalError):
        store.commit()
    assert store.dirty
    blocker.rollback()
    blocker.close()
    store.commit()
    store.db.close()
    assert [r.client_id for r in SqliteStore(db).load().sessions] == ["c1"]
