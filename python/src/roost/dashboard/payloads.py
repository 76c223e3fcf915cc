"""Defensive readers for what arrives over MQTT. Each returns None for anything unexpected
(not JSON, not an object, a bool where a number belongs, NaN, absurd nesting or size), so
one bad payload marks one metric "unreadable" and never raises into the reader thread.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_PAYLOAD = 64 * 1024
MAX_TEXT = 64  # versions and other labels shown on the page


def body(payload: bytes) -> dict[str, Any] | None:
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return data if isinstance(data, dict) else None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: Any) -> int | None:
    """A non-negative integer (queue depth, dropped samples)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def text(value: Any) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) and value else None


def stamp(data: dict[str, Any], now: float) -> float | None:
    """The sample's own time; a clock ahead of ours is clipped to now."""
    ts = number(data.get("ts"))
    return None if ts is None or ts <= 0 else min(ts, now)


def load_1m(value: Any) -> float | None:
    """The agent sends {"1m", "5m", "15m"}; a plain number is accepted too."""
    return number(value.get("1m")) if isinstance(value, dict) else number(value)


def sys_number(payload: bytes) -> float | None:
    """`$SYS` payloads are plain text: "42", or "1234 seconds" for the uptime."""
    try:
        head = payload[:64].decode("ascii").split(maxsplit=1)
        return number(float(head[0])) if head else None
    except (UnicodeDecodeError, ValueError):
        return None
