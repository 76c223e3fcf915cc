"""When each agent's broker link went down and came back, from its journal: the agent logs
`connected to HOST:PORT` and `broker link down (why)`. Pure parsing and arithmetic; the
lines come from `journalctl -o short-unix` on each Pi (the containers share our clock).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from chaos.ledger import Window

_LINE = re.compile(r"^(\d+(?:\.\d+)?) .*?(connected to \S+|broker link down)")


@dataclass(frozen=True)
class Link:
    pi: str
    at: float
    up: bool


def link_events(pi: str, lines: Iterable[str]) -> list[Link]:
    out = []
    for line in lines:
        m = _LINE.match(line)
        if m:
            out.append(Link(pi, float(m.group(1)), m.group(2).startswith("connected")))
    return out


@dataclass(frozen=True)
class Outage:
    down_s: float  # time without a link inside the window
    back_after: float | None  # seconds from the window's start to the last reconnect
    up_at_end: bool


def outage(events: list[Link], window: Window) -> Outage:
    """One Pi's link in a window. Before its first event there, it was in the state of the
    last event before the window (up if none)."""
    events = sorted(events, key=lambda e: e.at)
    prior = [e for e in events if e.at < window.start]
    up = prior[-1].up if prior else True
    down_s, since, back = 0.0, window.start, None
    for e in events:
        if not window.holds(e.at) or e.up == up:
            continue
        if e.up:
            down_s += e.at - since
            back = e.at - window.start
        since, up = e.at, e.up
    if not up:
        down_s += window.end - since
    return Outage(round(down_s, 2), None if back is None else round(back, 2), up)


_CONNECT = re.compile(r"^(\d+(?:\.\d+)?) .*\bconnected '([^']+)' from")


def placement(lines_by_node: dict[str, list[str]]) -> dict[str, str]:
    """Client id -> the broker node it connected to last, from the brokers' journals
    (`connected 'ID' from ...`)."""
    latest: dict[str, tuple[float, str]] = {}
    for node, lines in lines_by_node.items():
        for line in lines:
            m = _CONNECT.match(line)
            if m and float(m.group(1)) >= latest.get(m.group(2), (0.0, ""))[0]:
                latest[m.group(2)] = (float(m.group(1)), node)
    return {client: node for client, (_, node) in latest.items()}


def kill_target(held: dict[str, list[str]], checker_node: str | None) -> str:
    """The broker for `kill -9`, from the Pis each holds: one holding Pis (the most),
    other than the checker's own node when another one holds Pis too. (Preferring any
    node but the checker's once killed a node holding no Pi: nothing was measured.)"""
    return min(sorted(held), key=lambda b: (not held[b], b == checker_node, -len(held[b])))
