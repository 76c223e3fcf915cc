"""RetainedIndex: compared with a dict scanned through `matches()`."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from topic_strategies import plain_filters, topics

from roost.broker.retained import RetainedIndex
from roost.broker.topics import matches

ops = st.lists(st.tuples(st.booleans(), topics), max_size=30)


@settings(max_examples=300)
@given(ops, st.lists(plain_filters, min_size=1, max_size=5))
def test_index_agrees_with_model(script: list[tuple[bool, str]], queries: list[str]) -> None:
    index: RetainedIndex[int] = RetainedIndex()
    model: dict[str, int] = {}
    for n, (store, topic) in enumerate(script):
        if store:
            index.set(topic, n)
            model[topic] = n
        else:
            assert index.delete(topic) == (topic in model)
            model.pop(topic, None)
        assert len(index) == len(model)
        for topic_filter in queries:
            want = sorted((t, m) for t, m in model.items() if matches(topic_filter, t))
            assert sorted(index.match(topic_filter)) == want
    assert dict(index.items()) == model
    assert all(index.get(t) == m for t, m in model.items())
    for topic in list(model):
        index.delete(topic)
    assert len(index) == 0
    assert index.node_count == 0


def test_spec_examples() -> None:
    index: RetainedIndex[str] = RetainedIndex()
    for topic in ["sport", "sport/", "sport/tennis/player1", "$SYS/monitor/Clients", "/finance"]:
        index.set(topic, topic.upper())
    assert sorted(t for t, _ in index.match("sport/#")) == [
        "sport",
        "sport/",
        "sport/tennis/player1",
    ]
    assert [t for t, _ in index.match("sport/+")] == ["sport/"]
    assert sorted(t for t, _ in index.match("#")) == [
        "/finance",
        "sport",
        "sport/",
        "sport/tennis/player1",
    ]
    assert index.match("+/monitor/Clients") == []
    assert index.match("$SYS/#") == [("$SYS/monitor/Clients", "$SYS/MONITOR/CLIENTS")]
    assert sorted(t for t, _ in index.match("+/+")) == ["/finance", "sport/"]
    assert index.match("sport/tennis/player1") == [("sport/tennis/player1", "SPORT/TENNIS/PLAYER1")]


def test_set_replaces_and_delete_prunes() -> None:
    index: RetainedIndex[str] = RetainedIndex()
    index.set("a/b/c", "one")
    index.set("a/b/c", "two")
    index.set("a", "top")
    assert len(index) == 2
    assert index.get("a/b/c") == "two"
    assert index.node_count == 3
    assert index.delete("a/b/c")
    assert index.node_count == 1
    assert index.match("a/#") == [("a", "top")]
    assert not index.delete("a/b/c")
    assert index.delete("a")
    assert index.node_count == 0
    assert index.get("a") is None
