"""Access control lists in Mosquitto's `acl_file` syntax, with Mosquitto's precedence.

    # comment                       blank lines and comments are ignored
    topic read $SYS/#               rules before any `user` line apply to anonymous clients
    user dashboard                  the rules after it apply to that username
    topic [read|write|readwrite|deny] TOPIC
    pattern [read|write|readwrite|deny] roost/site/%c/#   applies to every client

Order of evaluation, as in Mosquitto 2.0: the client's own `topic` rules (its user block, or
the anonymous block when it has no username), then the `pattern` rules; within each list the
`deny` rules come first and then the others in file order. The first rule whose topic matches
and that is a `deny` or grants the access decides; nothing deciding means deny.

`%c` and `%u` must fill a whole level. A client id or username holding `+` or `#` skips every
pattern, as in Mosquitto; a slot whose value is empty or holds `/` makes that pattern not
apply, where Mosquitto 2.0 would let client `a/b` reach `roost/site/a/b/...`.

Mosquitto's file plugin does not check SUBSCRIBE at all; Roost does, so that a wildcard never
gets wider than the rules: a filter is allowed when a rule granting read covers every topic
the filter can match (`roost/#` is not covered by `roost/site/%c/#`), and denied when a
`deny` rule covers it. Deliveries are re-checked with READ on the concrete topic anyway.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypeVar

from roost.broker.topics import parse_shared, valid_topic_filter
from roost.security.errors import LineError

K = TypeVar("K")
V = TypeVar("V")

WILDCARDS = frozenset("+#")  # in a client id or username: every pattern is skipped
CLIENT_CACHE = 4096  # compiled rule lists kept per (client id, username)
TOPIC_CACHE = 256  # decisions kept per client; deliveries repeat the same topics


class AclError(LineError):
    """A bad line in an ACL file; str() is `source:line: reason`."""


def _remember(cache: dict[K, V], key: K, value: V, size: int) -> V:
    """Store in a bounded cache, dropping the oldest entry: hits stay one dict lookup."""
    if len(cache) >= size:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


class Access(enum.Enum):
    READ = "read"  # a message on this topic may be delivered to the client
    WRITE = "write"  # the client may publish to this topic
    SUBSCRIBE = "subscribe"  # the client may subscribe to this filter


_READ, _WRITE = Access.READ, Access.WRITE  # enum attribute lookups are slow in 3.11


class Grant(enum.Enum):
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"
    DENY = "deny"

    def allows(self, access: Access) -> bool:
        if access is Access.WRITE:
            return self in (Grant.WRITE, Grant.READWRITE)
        return self in (Grant.READ, Grant.READWRITE)


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # "topic" or "pattern"
    grant: Grant
    topic: str
    user: str | None  # the user block a `topic` rule sits in; None for anonymous / patterns
    source: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.kind} {self.grant.value} {self.topic}"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: Rule | None  # the rule that decided; None means nothing matched
    reason: str = ""

    def __str__(self) -> str:
        word = "allow" if self.allowed else "deny"
        return f"{word}  ({self.rule or self.reason})"


DEFAULT_DENY = Decision(False, None, "default deny: no rule matched")


def _levels(topic: str) -> tuple[str, ...]:
    return tuple(topic.split("/"))


def _covers(rule: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    """Whether every topic the filter `wanted` can match is also matched by `rule`; for a
    plain topic name that is simply "rule matches topic". `$` topics need a literal level."""
    if wanted[0][:1] == "$" and rule[0] in ("+", "#"):
        return False
    for i, level in enumerate(rule):
        if level == "#":
            return True
        if i >= len(wanted):
            return False
        have = wanted[i]
        if have == "#" or (level != "+" and (have == "+" or level != have)):
            return False
    return len(wanted) == len(rule)


@dataclass(slots=True)
class ClientAcl:
    """The rules of one (client id, username), compiled; `check` is what deliveries call."""

    rules: tuple[tuple[Rule, tuple[str, ...]], ...]
    default: Decision = DEFAULT_DENY
    _read: dict[str, Decision] = field(default_factory=dict)  # one cache per access kind:
    _write: dict[str, Decision] = field(default_factory=dict)  # no tuple keys, no enum hash
    _subscribe: dict[str, Decision] = field(default_factory=dict)

    def can_read(self, topic: str) -> bool:
        """The per-delivery check: may a message on `topic` go to this client?"""
        found = self._read.get(topic)
        if found is None:
            found = _remember(self._read, topic, self._decide(topic, _READ), TOPIC_CACHE)
        return found.allowed

    def check(self, topic: str, access: Access) -> Decision:
        if access is _READ:
            cache = self._read
        elif access is _WRITE:
            cache = self._write
        else:
            cache = self._subscribe
        found = cache.get(topic)
        if found is None:
            found = _remember(cache, topic, self._decide(topic, access), TOPIC_CACHE)
        return found

    def _decide(self, topic: str, access: Access) -> Decision:
        if access is Access.SUBSCRIBE:
            try:
                topic = parse_shared(topic)[1]
            except ValueError:
                return Decision(False, None, "malformed shared subscription")
        levels = _levels(topic)
        for rule, pattern in self.rules:
            if _covers(pattern, levels):
                if rule.grant is Grant.DENY:
                    return Decision(False, rule)
                if rule.grant.allows(access):
                    return Decision(True, rule)
        return self.default


def _deny_first(rules: list[Rule]) -> list[Rule]:
    return sorted(rules, key=lambda r: r.grant is not Grant.DENY)  # stable: file order kept


class Acl:
    """A parsed ACL file. Immutable once parsed: a reload builds a new one and swaps it in."""

    def __init__(self, users: dict[str | None, list[Rule]], patterns: list[Rule]) -> None:
        self._users = {user: _deny_first(rules) for user, rules in users.items()}
        self._patterns = _deny_first(patterns)
        self._clients: dict[tuple[str, str | None], ClientAcl] = {}

    @property
    def rules(self) -> list[Rule]:
        """Every rule in file order, for tools that list them."""
        every = [r for rules in self._users.values() for r in rules] + self._patterns
        return sorted(every, key=lambda r: r.line)

    @classmethod
    def parse(cls, text: str, source: str = "<acl>") -> Acl:
        users: dict[str | None, list[Rule]] = {}
        patterns: list[Rule] = []
        user: str | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keyword, _, rest = line.replace("\t", " ").partition(" ")
            rest = rest.strip()
            if keyword == "user":
                if not rest:
                    raise AclError(source, number, "missing username after `user`")
                user = rest
            elif keyword in ("topic", "pattern"):
                rule = _parse_rule(keyword, rest, user, source, number)
                if keyword == "pattern":
                    patterns.append(rule)
                else:
                    users.setdefault(user, []).append(rule)
            else:
                raise AclError(source, number, f"unknown keyword {keyword!r}")
        return cls(users, patterns)

    def client(self, client_id: str, username: str | None) -> ClientAcl:
        """The compiled rules for one client; the engine may keep this per session."""
        key = (client_id, username)
        found = self._clients.get(key)
        if found is None:
            found = _remember(self._clients, key, self._compile(client_id, username), CLIENT_CACHE)
        return found

    def check(self, client_id: str, username: str | None, topic: str, access: Access) -> Decision:
        return self.client(client_id, username).check(topic, access)

    def _compile(self, client_id: str, username: str | None) -> ClientAcl:
        rules = [(r, _levels(r.topic)) for r in self._users.get(username, [])]
        default = DEFAULT_DENY
        identities = [client_id] if username is None else [client_id, username]
        if any(WILDCARDS.intersection(name) for name in identities):
            # as Mosquitto: a client named `+` would otherwise read everyone's `%c` subtree
            default = Decision(False, None, "default deny: + or # in client id or username")
        else:
            for rule in self._patterns:
                levels = _fill(rule.topic, client_id, username)
                if levels is not None:
                    rules.append((rule, levels))
        return ClientAcl(tuple(rules), default)


def _fill(topic: str, client_id: str, username: str | None) -> tuple[str, ...] | None:
    """A pattern's levels with %c / %u filled, or None when the pattern cannot apply: an
    empty id, no username, or a `/` that would make one slot span several levels (Mosquitto
    2.0 lets client `a/b` write `roost/site/a/b/...` under `roost/site/%c/#`; Roost does not).
    """
    out = []
    for level in _levels(topic):
        value = {"%c": client_id, "%u": username or ""}.get(level, level)
        if level in ("%c", "%u") and (not value or "/" in value):
            return None
        out.append(value)
    return tuple(out)


def _parse_rule(kind: str, rest: str, user: str | None, source: str, line: int) -> Rule:
    if not rest:
        raise AclError(source, line, f"missing topic after `{kind}`")
    first, _, topic = rest.partition(" ")
    topic = topic.strip()
    if not topic:  # one word: the topic, with readwrite access
        first, topic = "readwrite", first
    try:
        grant = Grant(first)
    except ValueError:
        reason = f"bad access {first!r}: read, write, readwrite or deny"
        raise AclError(source, line, reason) from None
    if not valid_topic_filter(topic) or topic.startswith("$share/"):
        raise AclError(source, line, f"invalid topic filter {topic!r}")
    if kind == "pattern":
        for level in _levels(topic):
            if level not in ("%c", "%u") and ("%c" in level or "%u" in level):
                raise AclError(
                    source, line, f"%c / %u must fill a whole topic level, not {level!r}"
                )
    return Rule(kind, grant, topic, None if kind == "pattern" else user, source, line)
