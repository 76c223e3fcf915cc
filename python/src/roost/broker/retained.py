"""Retained messages by topic: a dict for exact lookups plus a trie of topic levels so a
wildcard SUBSCRIBE visits only the branches its filter can match."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from roost.broker.topics import trie_find, trie_insert, trie_prune, trie_size

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    topic: str | None = None  # set when a message is retained at exactly this node

    def empty(self) -> bool:
        return not self.children and self.topic is None


class RetainedIndex(Generic[T]):
    def __init__(self) -> None:
        self._messages: dict[str, T] = {}
        self._root = _Node()

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def node_count(self) -> int:
        """Trie nodes below the root; 0 once every message is deleted."""
        return trie_size(self._root)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._messages.items())

    def get(self, topic: str) -> T | None:
        return self._messages.get(topic)

    def set(self, topic: str, message: T) -> None:
        if topic not in self._messages:
            trie_insert(self._root, topic, _Node).topic = topic
        self._messages[topic] = message

    def delete(self, topic: str) -> bool:
        """Forget the message on `topic` and prune emptied nodes; True if there was one."""
        if topic not in self._messages:
            return False
        del self._messages[topic]
        node = trie_find(self._root, topic)
        assert node is not None  # the dict and the trie agree
        node.topic = None
        trie_prune(self._root, topic)
        return True

    def match(self, topic_filter: str) -> list[tuple[str, T]]:
        """Messages whose topic matches a valid plain filter (no `$share/` prefix).

        Topics starting with `$` are not matched by a wildcard in the first level.
        """
        messages = self._messages
        if "+" not in topic_filter and "#" not in topic_filter:
            return [(topic_filter, messages[topic_filter])] if topic_filter in messages else []
        nodes = [self._root]
        for depth, level in enumerate(topic_filter.split("/")):
            if level == "#":
                return [(topic, messages[topic]) for topic in _below(nodes, depth)]
            found: list[_Node] = []
            if level == "+":
                for node in nodes:
                    if depth == 0:  # "$" topics: no wildcard at the first level
                        found.extend(c for k, c in node.children.items() if k[:1] != "$")
                    else:
                        found.extend(node.children.values())
            else:
                for node in nodes:
                    exact = node.children.get(level)
                    if exact is not None:
                        found.append(exact)
            nodes = found
        return [(node.topic, messages[node.topic]) for node in nodes if node.topic is not None]


def _below(nodes: list[_Node], depth: int) -> list[str]:
    """Topics at and under `nodes` for a "#" at `depth`: "a/#" also matches "a"."""
    found = [] if depth == 0 else [n.topic for n in nodes if n.topic is not None]
    stack = [c for n in nodes for k, c in n.children.items() if depth > 0 or k[:1] != "$"]
    while stack:
        node = stack.pop()
        if node.topic is not None:
            found.append(node.topic)
        stack.extend(node.children.values())
    return found
