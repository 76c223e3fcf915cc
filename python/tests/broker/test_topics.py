"""Topic validation and matching against the examples of MQTT 5.0 sections 4.7 and 4.8."""

from __future__ import annotations

import pytest

from roost.broker.topics import (
    MAX_TOPIC_LENGTH,
    matches,
    parse_shared,
    valid_topic_filter,
    valid_topic_name,
)

VALID_FILTERS = [
    "sport/tennis/player1/#",  # 4.7.1.2
    "sport/#",
    "#",
    "+",  # 4.7.1.3
    "+/tennis/#",
    "sport/+/player1",
    "sport/+",
    "+/+",
    "/+",
    "$SYS/#",  # 4.7.2
    "$SYS/monitor/+",
    "/",  # 4.7.3: "/" alone is two empty levels
    "a//b",
    "sport tennis",  # spaces are allowed
    "Ünïcode/€",
    "$share/consumer1/sport/tennis/+",  # 4.8.2
    "$share/consumer2/sport/tennis/+",
    "$share/consumer1//finance",
    "$share/consumer1/+/finance",
    "$share/g/#",
    "$share",  # not a shared subscription: no "/" after the prefix
    "$sharex/g/a",
]

INVALID_FILTERS = [
    "",  # 4.7.3: at least one character
    "sport/tennis#",  # 4.7.1.2
    "sport/tennis/#/ranking",
    "sport+",  # 4.7.1.3
    "sport/+x",
    "#/a",
    "##",
    "a/b\0c",  # U+0000
    "a\ud800",  # a lone surrogate is not UTF-8
    "$share/",  # 4.8.2: ShareName must be at least one character
    "$share//a",
    "$share/g",  # ShareName must be followed by "/" and a filter
    "$share/g/",
    "$share/g+/a",  # ShareName must not contain "+" or "#"
    "$share/#/a",
    "$share/g/a#",  # the filter must itself be valid
    "$share/g/a/#/b",
]

VALID_NAMES = [
    "sport/tennis/player1",
    "sport/",
    "/finance",
    "/",
    "a//b",
    "$SYS/monitor/Clients",
    "ACCOUNTS",
    "a b",
    "€",
]

INVALID_NAMES = ["", "sport/+", "sport/#", "#", "+", "a+b", "a#", "\0", "a\ud800"]


@pytest.mark.parametrize("topic_filter", VALID_FILTERS)
def test_valid_filters(topic_filter: str) -> None:
    assert valid_topic_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", INVALID_FILTERS)
def test_invalid_filters(topic_filter: str) -> None:
    assert not valid_topic_filter(topic_filter)


@pytest.mark.parametrize("topic", VALID_NAMES)
def test_valid_names(topic: str) -> None:
    assert valid_topic_name(topic)


@pytest.mark.parametrize("topic", INVALID_NAMES)
def test_invalid_names(topic: str) -> None:
    assert not valid_topic_name(topic)


def test_level_limit() -> None:
    assert valid_topic_name("a/b/c", max_levels=3)
    assert not valid_topic_name("a/b/c/d", max_levels=3)
    assert valid_topic_filter("a/+/#", max_levels=3)
    assert not valid_topic_filter("a/+/c/#", max_levels=3)
    assert not valid_topic_name("/" * 128)  # 129 empty levels over the default of 128
    # The share prefix does not count against the limit; the filter after it does.
    assert valid_topic_filter("$share/g/a/b/c", max_levels=3)
    assert not valid_topic_filter("$share/g/a/b/c/d", max_levels=3)


def test_length_limit_counts_utf8_bytes() -> None:
    assert valid_topic_name("a" * MAX_TOPIC_LENGTH, max_levels=1)
    assert not valid_topic_name("a" * (MAX_TOPIC_LENGTH + 1), max_levels=1)
    euros = "€" * (MAX_TOPIC_LENGTH // 3)  # 3 bytes each
    assert valid_topic_name(euros, max_levels=1)
    assert not valid_topic_name(euros + "ab", max_levels=1)
    assert not valid_topic_filter(euros + "ab", max_levels=1)


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [
        ("$share/consumer1/sport/tennis/+", ("consumer1", "sport/tennis/+")),
        ("$share/consumer1//finance", ("consumer1", "/finance")),
        ("$share/g/#", ("g", "#")),
        ("sport/#", (None, "sport/#")),
        ("$share", (None, "$share")),
        ("$SYS/#", (None, "$SYS/#")),
    ],
)
def test_parse_shared(topic_filter: str, expected: tuple[str | None, str]) -> None:
    assert parse_shared(topic_filter) == expected


@pytest.mark.parametrize(
    "topic_filter", ["$share/", "$share//a", "$share/g", "$share/g/", "$share/+/b"]
)
def test_parse_shared_rejects_malformed(topic_filter: str) -> None:
    with pytest.raises(ValueError, match=r"share name|no topic filter"):
        parse_shared(topic_filter)


MATCHING = [
    ("sport/tennis/player1/#", "sport/tennis/player1"),  # 4.7.1.2
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking"),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"),
    ("sport/#", "sport"),
    ("#", "sport/tennis"),
    ("sport/tennis/+", "sport/tennis/player1"),  # 4.7.1.3
    ("sport/tennis/+", "sport/tennis/player2"),
    ("sport/+", "sport/"),
    ("+/+", "/finance"),
    ("/+", "/finance"),
    ("$SYS/#", "$SYS/monitor/Clients"),  # 4.7.2
    ("$SYS/monitor/+", "$SYS/monitor/Clients"),
    ("$SYS/#", "$SYS"),
    ("a/$x/+", "a/$x/y"),  # "$" only matters in the first level
    ("+/#", "a/$x"),
    ("a//b", "a//b"),
    ("a/+/b", "a//b"),
]

NOT_MATCHING = [
    ("sport/tennis/+", "sport/tennis/player1/ranking"),  # 4.7.1.3
    ("sport/+", "sport"),
    ("+", "/finance"),
    ("#", "$SYS/monitor/Clients"),  # 4.7.2
    ("+/monitor/Clients", "$SYS/monitor/Clients"),
    ("#", "$SYS"),
    ("+", "$SYS"),
    ("ACCOUNTS", "Accounts"),  # 4.7.3: case sensitive
    ("sport", "sport/"),
    ("a/b", "a//b"),
    ("a/+", "a/b/c"),
]


@pytest.mark.parametrize(("topic_filter", "topic"), MATCHING)
def test_matches(topic_filter: str, topic: str) -> None:
    assert matches(topic_filter, topic)


@pytest.mark.parametrize(("topic_filter", "topic"), NOT_MATCHING)
def test_does_not_match(topic_filter: str, topic: str) -> None:
    assert not matches(topic_filter, topic)
