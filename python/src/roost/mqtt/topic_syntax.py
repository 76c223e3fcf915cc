"""The syntax of topic names and filters (MQTT 5.0 section 4.7, 4.8.2), as far as the codec
must enforce it. Policy limits (levels, length) belong to the broker, not here."""

from __future__ import annotations

SHARE_PREFIX = "$share/"


def valid_topic_name(topic: str) -> bool:
    return bool(topic) and "+" not in topic and "#" not in topic


def _valid_filter(topic_filter: str) -> bool:
    if not topic_filter:
        return False
    if "+" not in topic_filter and "#" not in topic_filter:
        return True
    levels = topic_filter.split("/")
    for level in levels[:-1]:
        if level != "+" and ("+" in level or "#" in level):
            return False
    last = levels[-1]
    return last in ("+", "#") or ("+" not in last and "#" not in last)


def valid_topic_filter(topic_filter: str) -> bool:
    """A plain filter, or `$share/{group}/{filter}` with a non-empty group free of wildcards."""
    if not topic_filter.startswith(SHARE_PREFIX):
        return _valid_filter(topic_filter)
    group, slash, inner = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not group or not slash or "+" in group or "#" in group:
        return False
    return _valid_filter(inner)


def is_shared(topic_filter: str) -> bool:
    return topic_filter.startswith(SHARE_PREFIX)
