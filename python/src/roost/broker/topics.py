"""Topic names and topic filters (MQTT 5.0 sections 4.7 and 4.8): the broker's limits on
top of the codec's syntax (`roost.mqtt.topic_syntax`), the `$share/{group}/{filter}` parts,
the reference matcher the router is tested against, and the upkeep of the tries keyed by
topic level that the router and retained index walk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from roost.mqtt import topic_syntax

MAX_TOPIC_LEVELS = 128  # default limit; deep topics only cost memory in the tries
MAX_TOPIC_LENGTH = 65535  # UTF-8 bytes, the size of an MQTT string
SHARE_PREFIX = topic_syntax.SHARE_PREFIX


def _within_limits(topic: str, max_levels: int) -> bool:
    """The broker's limits on top of the codec's syntax: no U+0000, at most
    MAX_TOPIC_LENGTH bytes of UTF-8, at most max_levels levels."""
    if "\0" in topic or len(topic) > MAX_TOPIC_LENGTH:
        return False
    if not topic.isascii():
        try:
            if len(topic.encode()) > MAX_TOPIC_LENGTH:
                return False
        except UnicodeEncodeError:  # lone surrogates are not UTF-8
            return False
    return topic.count("/") < max_levels


def valid_topic_name(topic: str, *, max_levels: int = MAX_TOPIC_LEVELS) -> bool:
    """A name a client may PUBLISH to: non-empty, no wildcards, no U+0000."""
    return topic_syntax.valid_topic_name(topic) and _within_limits(topic, max_levels)


def valid_topic_filter(topic_filter: str, *, max_levels: int = MAX_TOPIC_LEVELS) -> bool:
    """A filter a client may SUBSCRIBE to, plain or `$share/{group}/{filter}`."""
    if len(topic_filter) > MAX_TOPIC_LENGTH or not topic_syntax.valid_topic_filter(topic_filter):
        return False
    _, inner = parse_shared(topic_filter)  # well formed: the syntax check passed
    return _within_limits(inner, max_levels)


def parse_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split `$share/g/a/+` into ("g", "a/+"); a plain filter gives (None, filter).

    Raises ValueError when the share part is malformed: empty group, a group holding
    `+` or `#`, or no filter after the group. The filter itself is not validated here.
    """
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    group, sep, inner = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not group or "+" in group or "#" in group:
        raise ValueError(f"bad share name in {topic_filter!r}")
    if not sep or not inner:
        raise ValueError(f"no topic filter after the share name in {topic_filter!r}")
    return group, inner


def matches(topic_filter: str, topic: str) -> bool:
    """Whether a valid plain filter matches a valid topic name; slow and obviously right.

    Topics starting with `$` are not matched by a filter starting with a wildcard.
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    want = topic_filter.split("/")
    have = topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True  # also matches the parent level: "a/#" matches "a"
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


class LevelNode(Protocol):
    children: dict[str, Any]  # topic level -> node of the same type

    def empty(self) -> bool: ...


N = TypeVar("N", bound=LevelNode)


def trie_find(root: N, topic: str) -> N | None:
    node: N | None = root
    for level in topic.split("/"):
        if node is None:
            break
        node = node.children.get(level)
    return node


def trie_insert(root: N, topic: str, make: Callable[[], N]) -> N:
    """The node for `topic`, made with its missing ancestors."""
    node = root
    for level in topic.split("/"):
        child = node.children.get(level)
        if child is None:
            child = node.children[level] = make()
        node = child
    return node


def trie_prune(root: LevelNode, topic: str) -> None:
    """Drop the empty nodes at the end of `topic`'s path, so no stale nodes pile up."""
    levels = topic.split("/")
    path = [root]
    for level in levels[:-1]:
        path.append(path[-1].children[level])
    for parent, level in zip(reversed(path), reversed(levels), strict=True):
        if not parent.children[level].empty():
            return
        del parent.children[level]


def trie_size(root: LevelNode) -> int:
    """Nodes below the root."""
    stack = [root]
    count = -1
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node.children.values())
    return count
