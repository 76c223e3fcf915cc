"""Retained messages by topic: a dict for exact lookups plus a trie of topic levels so a
wildcard SUBSCRIBE visits only the branches its filter can match."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    topic: str | None = None  # set when a message is retained at exactly this node


class RetainedIndex(Generic[T]):
    def __init__(self) -> None:
        self._messages: dict[str, T] = {}
        self._root = _Node()

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def node_count(self) -> int:
        """Trie nodes below the root; 0 once every message is deleted."""
        stack = [self._root]
        count = -1
        while stack:
            node = stack.pop()
            count += 1
            stack.extend(node.children.values())
        return count

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._messages.items())

    def get(self, topic: str) -> T | None:
        return self._messages.get(topic)

    def set(self, topic: str, message: T) -> None:
        if topic not in self._messages:
            node = self._root
            for level in topic.split("/"):
                child = node.children.get(level)
                if child is None:
                    child = node.children[level] = _Node()
                node = child
            node.topic = topic
        self._messages[topic] = message

    def delete(self, topic: str) -> bool:
        """Forget the message on `topic` and prune emptied nodes; True if there was one."""
        if topic not in self._messages:
            return False
        del self._messages[topic]
        levels = topic.split("/")
        path = [self._root]
        for level in levels:
            path.append(path[-1].children[level])
        path[-1].topic = None
        for depth in range(len(levels), 0, -1):
            node = path[depth]
            if node.children or node.topic is not None:
                break
            del path[depth - 1].children[levels[depth - 1]]
        return True

    def match(self, topic_filter: str) -> list[tuple[str, T]]:
        """Messages whose topic matches a valid plain filter (no `$share/` prefix).

        Topics starting with `$` are not matched by a wildcard in the first level.
        """
        if "+" not in topic_filter and "#" not in topic_filter:
            message = self._messages.get(topic_filter)
            return [] if message is None else [(topic_filter, message)]
        found: list[str] = []
        self._walk(self._root, topic_filter.split("/"), 0, found)
        messages = self._messages
        return [(topic, messages[topic]) for topic in found]

    def _walk(self, node: _Node, levels: list[str], depth: int, found: list[str]) -> None:
        if depth == len(levels):
            if node.topic is not None:
                found.append(node.topic)
            return
        level = levels[depth]
        if level == "#":
            if node.topic is not None and depth > 0:
                found.append(node.topic)  # "a/#" also matches "a"
            stack = [c for k, c in node.children.items() if not (depth == 0 and k[:1] == "$")]
            while stack:
                below = stack.pop()
                if below.topic is not None:
                    found.append(below.topic)
                stack.extend(below.children.values())
        elif level == "+":
            for key, child in node.children.items():
                if not (depth == 0 and key[:1] == "$"):
                    self._walk(child, levels, depth + 1, found)
        else:
            exact = node.children.get(level)
            if exact is not None:
                self._walk(exact, levels, depth + 1, found)
