"""Router: compared with a naive model built on `matches()`, plus shared-group behaviour."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from topic_strategies import plain_filters, topics

from roost.broker.router import Router, SubOptions
from roost.broker.topics import matches, parse_shared

CLIENTS = ["c1", "c2", "c3", "c4"]

filters = st.one_of(
    plain_filters,
    st.builds(lambda g, f: f"$share/{g}/{f}", st.sampled_from(["g", "h"]), plain_filters),
)
clients = st.sampled_from(CLIENTS)


class RouterMachine(RuleBasedStateMachine):
    """Random subscribe / unsubscribe / remove / match / online changes, checked against
    a flat dict of subscriptions matched by brute force over `matches()`."""

    def __init__(self) -> None:
        super().__init__()
        self.router = Router()
        self.online: set[str] = set()
        self.router.available = lambda cid: cid in self.online
        self.subs: dict[tuple[str, str], SubOptions] = {}
        self.next_id = 1  # unique ids tell which subscription each result came from

    @rule(cid=clients, topic_filter=filters, no_local=st.booleans())
    def subscribe(self, cid: str, topic_filter: str, no_local: bool) -> None:
        opts = SubOptions(no_local=no_local, subscription_id=self.next_id)
        self.next_id += 1
        existed = self.router.subscribe(cid, topic_filter, opts)
        assert existed == ((cid, topic_filter) in self.subs)
        self.subs[(cid, topic_filter)] = opts

    @rule(cid=clients, topic_filter=filters)
    def unsubscribe(self, cid: str, topic_filter: str) -> None:
        existed = self.router.unsubscribe(cid, topic_filter)
        assert existed == ((cid, topic_filter) in self.subs)
        self.subs.pop((cid, topic_filter), None)

    @rule(cid=clients)
    def remove_client(self, cid: str) -> None:
        self.router.remove_client(cid)
        self.subs = {key: opts for key, opts in self.subs.items() if key[0] != cid}

    @rule(cid=clients, online=st.booleans())
    def set_online(self, cid: str, online: bool) -> None:
        if online:
            self.online.add(cid)
        else:
            self.online.discard(cid)

    @rule(topic=topics, publisher=st.one_of(st.none(), clients))
    def match(self, topic: str, publisher: str | None) -> None:
        self.check(topic, publisher)
        self.check(topic, publisher)  # served from the cache this time

    def check(self, topic: str, publisher: str | None) -> None:
        result = self.router.match(topic, publisher)
        by_id = {opts.subscription_id: key for key, opts in self.subs.items()}
        got = Counter(by_id[opts.subscription_id] for _, opts in result)
        assert all(by_id[opts.subscription_id][0] == cid for cid, opts in result)
        want: Counter[tuple[str, str]] = Counter()
        groups: dict[str, list[str]] = {}
        for (cid, topic_filter), opts in self.subs.items():
            group, inner = parse_shared(topic_filter)
            if not matches(inner, topic) or (opts.no_local and cid == publisher):
                continue
            if group is None:
                want[(cid, topic_filter)] += 1
            else:
                groups.setdefault(topic_filter, []).append(cid)
        for topic_filter, members in groups.items():
            chosen = [cid for cid in members if got[(cid, topic_filter)]]
            assert len(chosen) == 1, (topic_filter, members, result)
            if self.online & set(members):
                assert chosen[0] in self.online
            want[(chosen[0], topic_filter)] += 1
        assert got == want

    @invariant()
    def no_stale_state(self) -> None:
        assert len(self.router) == len(self.subs)
        for cid in CLIENTS:
            mine = {f: opts for (c, f), opts in self.subs.items() if c == cid}
            assert self.router.subscriptions(cid) == mine
        prefixes: set[tuple[str, ...]] = set()
        for _, topic_filter in self.subs:
            levels = parse_shared(topic_filter)[1].split("/")
            prefixes.update(tuple(levels[:n]) for n in range(1, len(levels) + 1))
        assert self.router.node_count == len(prefixes)


RouterMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40)
test_router_agrees_with_model = RouterMachine.TestCase


def test_subscribe_replaces_options_and_reports_it() -> None:
    router = Router()
    assert not router.subscribe("c", "a/+", SubOptions(qos=0))
    assert router.subscribe("c", "a/+", SubOptions(qos=1))
    assert router.match("a/b") == [("c", SubOptions(qos=1))]
    assert len(router) == 1
    assert router.subscriptions("c") == {"a/+": SubOptions(qos=1)}


def test_overlapping_filters_give_one_entry_each() -> None:
    router = Router()
    router.subscribe("c", "a/#", SubOptions(subscription_id=1))
    router.subscribe("c", "a/+", SubOptions(subscription_id=2))
    router.subscribe("c", "$share/g/a/b", SubOptions(subscription_id=3))
    ids = sorted(opts.subscription_id or 0 for _, opts in router.match("a/b"))
    assert ids == [1, 2, 3]


def test_no_local_skips_only_the_publisher() -> None:
    router = Router()
    router.subscribe("me", "t", SubOptions(no_local=True))
    router.subscribe("you", "t", SubOptions(no_local=True))
    assert [cid for cid, _ in router.match("t", publisher="me")] == ["you"]
    assert sorted(cid for cid, _ in router.match("t")) == ["me", "you"]


def test_dollar_topics_skip_leading_wildcards() -> None:
    router = Router()
    for topic_filter in ["#", "+/monitor/Clients", "$SYS/#", "$SYS/monitor/+"]:
        router.subscribe(topic_filter, topic_filter, SubOptions())
    assert sorted(cid for cid, _ in router.match("$SYS/monitor/Clients")) == [
        "$SYS/#",
        "$SYS/monitor/+",
    ]


def test_subscribe_after_cached_match_changes_result() -> None:
    router = Router()
    router.subscribe("a", "x/#", SubOptions())
    assert router.match("x/y") == [("a", SubOptions())]
    router.subscribe("b", "x/+", SubOptions(qos=1))
    assert sorted(router.match("x/y")) == [("a", SubOptions()), ("b", SubOptions(qos=1))]
    router.unsubscribe("a", "x/#")
    assert router.match("x/y") == [("b", SubOptions(qos=1))]
    router.remove_client("b")
    assert router.match("x/y") == []


def test_result_list_is_the_callers_to_keep() -> None:
    router = Router()
    router.subscribe("a", "t", SubOptions())
    router.match("t").clear()
    assert router.match("t") == [("a", SubOptions())]


@pytest.mark.parametrize("cache_size", [0, 1, 4])
def test_cache_stays_bounded_and_correct(cache_size: int) -> None:
    router = Router(cache_size=cache_size)
    router.subscribe("a", "t/+", SubOptions())
    for _ in range(3):
        for i in range(20):
            assert router.match(f"t/{i}") == [("a", SubOptions())]
            assert len(router._cache) <= cache_size
    router.subscribe("b", "t/#", SubOptions())
    assert sorted(router.match("t/1")) == [("a", SubOptions()), ("b", SubOptions())]
    assert router.match("u/1") == []


def test_cache_keeps_old_topics_then_starts_afresh() -> None:
    router = Router(cache_size=3)
    router.subscribe("a", "t/+", SubOptions())
    for topic in ["t/0", "t/1", "t/2", "t/3", "t/4"]:
        router.match(topic)
    assert list(router._cache) == ["t/0", "t/1", "t/4"]  # the newest made way twice
    router.match("t/5")
    assert list(router._cache) == ["t/0", "t/1", "t/5"]
    router.match("t/6")  # three evictions: a topic set that moved on takes over
    assert list(router._cache) == ["t/6"]


def test_round_robin_is_fair_and_rotates_when_cached() -> None:
    router = Router()
    for cid in ["a", "b", "c"]:
        router.subscribe(cid, "$share/g/t/+", SubOptions())
    picks = [router.match("t/1")[0][0] for _ in range(30)]
    assert picks[:6] == ["a", "b", "c", "a", "b", "c"]
    assert Counter(picks) == {"a": 10, "b": 10, "c": 10}


def test_groups_are_per_name_and_filter() -> None:
    router = Router()
    router.subscribe("a", "$share/g/t", SubOptions())
    router.subscribe("b", "$share/g/t", SubOptions())
    router.subscribe("c", "$share/h/t", SubOptions())
    router.subscribe("d", "$share/g/+", SubOptions())
    for _ in range(4):
        got = sorted(cid for cid, _ in router.match("t"))
        assert len(got) == 3 and got[0] in "ab" and got[1:] == ["c", "d"]


def test_unavailable_members_are_skipped() -> None:
    router = Router()
    for cid in ["a", "b", "c"]:
        router.subscribe(cid, "$share/g/t", SubOptions())
    router.available = lambda cid: cid != "b"
    picks = [router.match("t")[0][0] for _ in range(6)]
    assert picks == ["a", "c", "a", "c", "a", "c"]


def test_no_member_available_falls_back_to_rotation() -> None:
    router = Router()
    for cid in ["a", "b"]:
        router.subscribe(cid, "$share/g/t", SubOptions())
    router.available = lambda _: False
    assert [router.match("t")[0][0] for _ in range(4)] == ["a", "b", "a", "b"]


def test_leaving_member_keeps_rotation_going() -> None:
    router = Router()
    for cid in ["a", "b", "c"]:
        router.subscribe(cid, "$share/g/t", SubOptions())
    assert router.match("t")[0][0] == "a"
    router.unsubscribe("b", "$share/g/t")
    picks = [router.match("t")[0][0] for _ in range(4)]
    assert Counter(picks) == {"a": 2, "c": 2}


def test_unsubscribe_prunes_nodes() -> None:
    router = Router()
    router.subscribe("a", "x/y/z", SubOptions())
    router.subscribe("a", "x/+", SubOptions())
    router.subscribe("b", "$share/g/x/y/z", SubOptions())
    assert router.node_count == 4
    assert router.unsubscribe("a", "x/y/z")
    assert router.node_count == 4  # the group still holds x/y/z
    assert router.unsubscribe("b", "$share/g/x/y/z")
    assert router.node_count == 2
    assert not router.unsubscribe("b", "$share/g/x/y/z")
    router.remove_client("a")
    assert router.node_count == 0
    assert router.subscriptions("a") == {}


@pytest.mark.parametrize("topic_filter", ["a/#/b", "$share/g/", "", "a+"])
def test_subscribe_rejects_invalid_filters(topic_filter: str) -> None:
    router = Router()
    with pytest.raises(ValueError, match="invalid topic filter"):
        router.subscribe("c", topic_filter, SubOptions())
    assert len(router) == 0
