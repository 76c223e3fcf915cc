"""ACL file parsing and Mosquitto-compatible decisions, plus Roost's SUBSCRIBE coverage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.broker.topics import matches
from roost.security.acl import Access, Acl, AclError

READ, WRITE, SUB = Access.READ, Access.WRITE, Access.SUBSCRIBE

FLEET = """\
# anonymous clients may only read the public board
topic read public/#

user dashboard
topic read roost/#
topic deny roost/secrets/#
topic readwrite dash/state

user ops
topic roost/cmd/#

# every device: its own subtree, and the shared config
pattern readwrite roost/site/%c/#
pattern read config/%u/+
pattern deny roost/site/%c/locked
"""


@pytest.fixture
def acl() -> Acl:
    return Acl.parse(FLEET, "acl.conf")


def test_default_deny_when_nothing_matches(acl: Acl) -> None:
    decision = acl.check("pi-1", None, "elsewhere/x", WRITE)
    assert not decision.allowed
    assert decision.rule is None
    assert str(decision) == "deny  (default deny: no rule matched)"


def test_anonymous_rules_apply_only_without_username(acl: Acl) -> None:
    assert acl.check("pi-1", None, "public/news", READ).allowed
    assert not acl.check("pi-1", None, "public/news", WRITE).allowed
    # a named user without a `topic public/#` rule does not inherit the anonymous block
    assert not acl.check("pi-1", "dashboard", "public/news", READ).allowed


def test_user_block_and_deciding_rule(acl: Acl) -> None:
    decision = acl.check("web", "dashboard", "roost/site/pi-1/temp", READ)
    assert decision.allowed
    assert str(decision) == "allow  (acl.conf:5: topic read roost/#)"
    assert not acl.check("web", "dashboard", "roost/site/pi-1/temp", WRITE).allowed
    assert acl.check("web", "dashboard", "dash/state", WRITE).allowed


def test_one_word_rule_means_readwrite(acl: Acl) -> None:
    assert acl.check("cli", "ops", "roost/cmd/reboot", WRITE).allowed
    assert acl.check("cli", "ops", "roost/cmd/reboot", READ).allowed


def test_deny_wins_over_an_earlier_allow(acl: Acl) -> None:
    decision = acl.check("web", "dashboard", "roost/secrets/key", READ)
    assert not decision.allowed
    assert decision.rule is not None and decision.rule.line == 6


def test_pattern_substitutes_client_id(acl: Acl) -> None:
    decision = acl.check("pi-1", None, "roost/site/pi-1/temp", WRITE)
    assert decision.allowed
    assert str(decision.rule) == "acl.conf:13: pattern readwrite roost/site/%c/#"
    assert not acl.check("pi-1", None, "roost/site/pi-2/temp", WRITE).allowed
    assert not acl.check("pi-1", None, "roost/site/pi-1/locked", WRITE).allowed


def test_pattern_with_username_needs_one(acl: Acl) -> None:
    assert acl.check("x", "pi-1", "config/pi-1/wifi", READ).allowed
    assert not acl.check("x", None, "config/pi-1/wifi", READ).allowed


@pytest.mark.parametrize("client_id", ["pi+1", "pi#", "pi/1", "+", "#", ""])
def test_dangerous_or_empty_ids_never_match_a_pattern(client_id: str) -> None:
    acl = Acl.parse("pattern readwrite roost/site/%c/#\npattern readwrite a/%c\n")
    assert not acl.check(client_id, None, f"roost/site/{client_id}/x", WRITE).allowed
    assert not acl.check(client_id, None, "roost/site/+/x", SUB).allowed
    assert not acl.check(client_id, None, "a/", WRITE).allowed


def test_wildcard_username_skips_all_patterns_but_not_its_topic_rules() -> None:
    acl = Acl.parse("pattern readwrite c/%c\nuser a+b\ntopic read plain\n")
    assert acl.check("c", "a+b", "plain", READ).allowed
    decision = acl.check("c", "a+b", "c/c", READ)
    assert not decision.allowed and "+ or #" in str(decision)


def test_slash_skips_only_the_patterns_it_would_fill() -> None:
    acl = Acl.parse("pattern readwrite c/%c/#\npattern readwrite u/%u/#\n")
    assert acl.check("pi-4", "a/b", "c/pi-4/t", WRITE).allowed  # as Mosquitto 2.0.11
    assert not acl.check("pi-4", "a/b", "u/a/b/t", WRITE).allowed
    assert not acl.check("pi/4", None, "c/pi/4/t", WRITE).allowed  # Mosquitto allows this


def test_user_topic_rules_come_before_patterns() -> None:
    # Mosquitto's order: the user's own list first, then patterns (deny-first in each list)
    acl = Acl.parse("pattern deny a/%c\nuser u\ntopic readwrite a/#\n")
    assert acl.check("c", "u", "a/c", WRITE).allowed
    assert not acl.check("c", None, "a/c", WRITE).allowed


def test_dollar_topics_need_a_literal_first_level() -> None:
    acl = Acl.parse("topic read #\ntopic read +/broker/#\ntopic read $SYS/broker/uptime\n")
    assert acl.check("c", None, "a/b", READ).allowed
    assert not acl.check("c", None, "$SYS/broker/load", READ).allowed
    assert acl.check("c", None, "$SYS/broker/uptime", READ).allowed
    assert not acl.check("c", None, "$SYS/#", SUB).allowed


def test_subscribe_needs_a_rule_covering_the_whole_filter(acl: Acl) -> None:
    assert acl.check("pi-1", None, "roost/site/pi-1/#", SUB).allowed
    assert acl.check("pi-1", None, "roost/site/pi-1/+/temp", SUB).allowed
    assert not acl.check("pi-1", None, "roost/#", SUB).allowed
    assert not acl.check("pi-1", None, "roost/site/+/temp", SUB).allowed
    assert not acl.check("pi-1", None, "#", SUB).allowed
    # write-only grants do not allow subscribing
    assert not Acl.parse("topic write a/#").check("c", None, "a/b", SUB).allowed


def test_subscribe_denied_when_a_deny_covers_it_and_filtered_per_topic(acl: Acl) -> None:
    assert not acl.check("web", "dashboard", "roost/secrets/#", SUB).allowed
    assert acl.check("web", "dashboard", "roost/#", SUB).allowed  # partly denied space
    assert not acl.check("web", "dashboard", "roost/secrets/a", READ).allowed  # per delivery


def test_shared_subscription_checked_on_its_filter(acl: Acl) -> None:
    assert acl.check("pi-1", None, "$share/g/roost/site/pi-1/#", SUB).allowed
    assert not acl.check("pi-1", None, "$share/g/roost/#", SUB).allowed


def test_duplicate_user_blocks_merge() -> None:
    acl = Acl.parse("user u\ntopic read a\nuser v\ntopic read b\nuser u\ntopic read c\n")
    assert acl.check("x", "u", "a", READ).allowed
    assert acl.check("x", "u", "c", READ).allowed
    assert not acl.check("x", "u", "b", READ).allowed


def test_comments_blanks_and_spaces() -> None:
    acl = Acl.parse("  # indented comment\n\n\ttopic\tread   a/b  \nuser  Big Name  \ntopic c\n")
    assert acl.check("x", None, "a/b", READ).allowed
    assert acl.check("x", "Big Name", "c", WRITE).allowed


def test_cached_decisions_stay_per_client(acl: Acl) -> None:
    for _ in range(3):
        assert acl.check("pi-1", None, "roost/site/pi-1/t", READ).allowed
        assert not acl.check("pi-2", None, "roost/site/pi-1/t", READ).allowed
    client = acl.client("pi-1", None)
    assert client is acl.client("pi-1", None)
    for i in range(1000):  # past the cache size, answers stay right
        assert client.check(f"roost/site/pi-1/{i}", WRITE).allowed
        assert not client.check(f"roost/site/pi-2/{i}", WRITE).allowed
        assert client.can_read(f"roost/site/pi-1/{i}")
        assert not client.can_read(f"roost/site/pi-2/{i}")
        assert not client.can_read("roost/site/pi-1/locked")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("topic read a\nbogus a\n", 2, "unknown keyword 'bogus'"),
        ("topic reed a/b\n", 1, "bad access 'reed'"),
        ("topic read a/#/b\n", 1, "invalid topic filter 'a/#/b'"),
        ("\n\ntopic read a+\n", 3, "invalid topic filter"),
        ("pattern read site/x%c/#\n", 1, "must fill a whole topic level"),
        ("pattern read site/%u%c\n", 1, "must fill a whole topic level"),
        ("user\n", 1, "missing username"),
        ("topic\n", 1, "missing topic"),
    ],
)
def test_bad_lines_name_source_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(AclError) as caught:
        Acl.parse(text, "site.acl")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"site.acl:{line}: ")
    assert reason in str(caught.value)


LEVEL = st.sampled_from(["a", "b", "c", "$x"])
TOPIC = st.lists(LEVEL, min_size=1, max_size=4).map("/".join)
FILTER_LEVEL = st.sampled_from(["a", "b", "+", "$x"])


@st.composite
def filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(FILTER_LEVEL, min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


@given(rule=filters(), wanted=filters(), topic=TOPIC)
def test_a_covered_subscription_never_reaches_an_unreadable_topic(
    rule: str, wanted: str, topic: str
) -> None:
    acl = Acl.parse(f"topic read {rule}\n")
    if acl.check("c", None, wanted, SUB).allowed and matches(wanted, topic):
        assert acl.check("c", None, topic, READ).allowed


@given(rule=filters(), topic=TOPIC)
def test_read_agrees_with_the_reference_matcher(rule: str, topic: str) -> None:
    acl = Acl.parse(f"topic read {rule}\n")
    assert acl.check("c", None, topic, READ).allowed == matches(rule, topic)


WORDS = st.sampled_from(["topic", "pattern", "user", "read", "deny", "#", "%c", "a/+", " ", "\t"])


@given(st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=12).map(" ".join))
def test_any_text_parses_or_names_its_line(text: str) -> None:
    try:
        acl = Acl.parse(text, "fuzz")
    except AclError as exc:
        assert str(exc).startswith(f"fuzz:{exc.line}: ")
        assert 1 <= exc.line <= max(1, len(text.splitlines()))
        return
    for client_id, username in (("c", None), ("c", "u"), ("+", "#")):
        assert isinstance(acl.check(client_id, username, "a/b", WRITE).allowed, bool)
        assert isinstance(acl.check(client_id, username, "a/#", SUB).allowed, bool)
