"""Who receives a PUBLISH: a trie of subscriptions keyed by topic level, with a cache.

A fleet publishes on a bounded set of topics, so the result of a trie walk is cached per
topic until the next subscription change. Shared groups are cached as candidate sets and
the member is picked on every call, so round robin keeps turning on cached topics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from roost.broker.topics import (
    MAX_TOPIC_LENGTH,
    parse_shared,
    trie_find,
    trie_insert,
    trie_prune,
    trie_size,
    valid_topic_filter,
)

Match = tuple[str, "SubOptions"]


@dataclass(slots=True, frozen=True)
class SubOptions:
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0
    subscription_id: int | None = None


@dataclass(slots=True, eq=False)
class _Group:
    """The members of one shared subscription: same share name and same filter."""

    members: dict[str, SubOptions] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    turn: int = 0  # index in `order` where the next search for a member starts

    def pick(self, available: Callable[[str], bool], publisher: str | None) -> Match | None:
        order = self.order
        count = len(order)
        fallback = -1
        for step in range(count):
            i = (self.turn + step) % count
            client_id = order[i]
            options = self.members[client_id]
            if options.no_local and client_id == publisher:
                continue
            if available(client_id):
                self.turn = i + 1
                return client_id, options
            if fallback < 0:
                fallback = i
        if fallback < 0:
            return None
        self.turn = fallback + 1
        client_id = order[fallback]
        return client_id, self.members[client_id]


@dataclass(slots=True, eq=False)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    subs: dict[str, SubOptions] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.children or self.subs or self.groups)


@dataclass(slots=True, eq=False)
class _Entry:
    """A cached walk: the plain matches and the shared groups that match a topic."""

    plain: list[Match]
    no_local: bool  # some plain match has no_local set, so filter by publisher
    groups: list[_Group]


class Router:
    """Subscriptions by client and filter. `cache_size` bounds the topics whose results
    are kept (about 600 bytes each); 0 turns the cache off."""

    def __init__(self, *, cache_size: int = 65536) -> None:
        self.available: Callable[[str], bool] = lambda _: True
        self._root = _Node()
        self._clients: dict[str, dict[str, SubOptions]] = {}
        self._count = 0
        self._cache: dict[str, _Entry] = {}
        self._cache_size = cache_size
        self._evictions = 0
        self._no_local = 0  # subscriptions with No Local set; 0 skips that check

    def __len__(self) -> int:
        return self._count

    @property
    def node_count(self) -> int:
        """Trie nodes below the root; 0 once every subscription is gone."""
        return trie_size(self._root)

    def subscribe(self, client_id: str, topic_filter: str, options: SubOptions) -> bool:
        """Add or replace a subscription; True if this client already had the filter."""
        if not valid_topic_filter(topic_filter, max_levels=MAX_TOPIC_LENGTH + 1):
            raise ValueError(f"invalid topic filter {topic_filter!r}")
        group_name, inner = parse_shared(topic_filter)
        node = trie_insert(self._root, inner, _Node)
        if group_name is None:
            node.subs[client_id] = options
        else:
            group = node.groups.get(group_name)
            if group is None:
                group = node.groups[group_name] = _Group()
            if client_id not in group.members:
                group.order.append(client_id)
            group.members[client_id] = options
        filters = self._clients.setdefault(client_id, {})
        previous = filters.get(topic_filter)
        filters[topic_filter] = options
        self._count += previous is None
        self._no_local += options.no_local - (previous is not None and previous.no_local)
        self._changed()
        return previous is not None

    def unsubscribe(self, client_id: str, topic_filter: str) -> bool:
        """Remove a subscription and prune emptied trie nodes; True if it existed."""
        filters = self._clients.get(client_id)
        removed = None if filters is None else filters.pop(topic_filter, None)
        if filters is None or removed is None:
            return False
        if not filters:
            del self._clients[client_id]
        group_name, inner = parse_shared(topic_filter)
        node = trie_find(self._root, inner)
        assert node is not None  # the client index and the trie agree
        if group_name is None:
            del node.subs[client_id]
        else:
            group = node.groups[group_name]
            del group.members[client_id]
            group.order.remove(client_id)
            if not group.members:
                del node.groups[group_name]
        trie_prune(self._root, inner)
        self._count -= 1
        self._no_local -= removed.no_local
        self._changed()
        return True

    def remove_client(self, client_id: str) -> None:
        for topic_filter in list(self._clients.get(client_id, ())):
            self.unsubscribe(client_id, topic_filter)

    def subscriptions(self, client_id: str) -> dict[str, SubOptions]:
        """The client's filters as sent (with any `$share/` prefix) and their options."""
        return dict(self._clients.get(client_id, {}))

    def match(self, topic: str, publisher: str | None = None) -> list[Match]:
        """(client_id, options) per matching subscription; one member per shared group.

        `topic` must be a valid topic name. A client with overlapping filters appears
        once per filter. No Local subscriptions of `publisher` are skipped.
        """
        entry = self._cache.get(topic)
        if entry is None:
            entry = self._walk(topic)
            self._remember(topic, entry)
        if entry.no_local and publisher is not None:
            result = [m for m in entry.plain if not (m[1].no_local and m[0] == publisher)]
        else:
            result = entry.plain.copy()
        for group in entry.groups:
            chosen = group.pick(self.available, publisher)
            if chosen is not None:
                result.append(chosen)
        return result

    def _changed(self) -> None:
        self._cache.clear()
        self._evictions = 0

    def _remember(self, topic: str, entry: _Entry) -> None:
        # When the topics outgrow the cache, evict the newest entry so the older ones
        # keep hitting (LRU would miss every time on a fleet's cyclic publishing), and
        # start afresh after `cache_size` evictions so a new topic set takes over.
        cache = self._cache
        if len(cache) >= self._cache_size:
            if self._evictions >= self._cache_size:
                self._evictions = 0
                cache.clear()
            elif cache:
                self._evictions += 1
                cache.popitem()
        if self._cache_size > 0:
            cache[topic] = entry

    def _walk(self, topic: str) -> _Entry:
        hits: list[_Node] = []  # nodes whose subscriptions match
        nodes = [self._root]
        wild = not topic.startswith("$")  # "$" topics: no "+" or "#" at the first level
        for level in topic.split("/"):
            found = []
            for node in nodes:
                children = node.children
                if wild:
                    below = children.get("#")
                    if below is not None:
                        hits.append(below)
                    below = children.get("+")
                    if below is not None:
                        found.append(below)
                below = children.get(level)
                if below is not None:
                    found.append(below)
            if not found:
                break
            nodes = found
            wild = True
        else:
            for node in nodes:
                hits.append(node)
                below = node.children.get("#")
                if below is not None:
                    hits.append(below)  # "a/#" also matches "a"
        plain: list[Match] = []
        groups: list[_Group] = []
        for node in hits:
            if node.subs:
                plain.extend(node.subs.items())
            if node.groups:
                groups.extend(node.groups.values())
        no_local = self._no_local > 0 and any(options.no_local for _, options in plain)
        return _Entry(plain, no_local, groups)
