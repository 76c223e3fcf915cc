"""Typed access to a parsed TOML document whose errors read `FILE:LINE: reason`.

tomllib reports syntax errors with a line but drops positions from the parsed data; this
scanner recovers them for the simple shapes the agent config uses (tables, arrays of tables,
`key = value` lines, one-line inline tables).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"^\s*(\"[^\"]*\"|[A-Za-z0-9_-]+)\s*=")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip().strip('"') for p in dotted.split("."))


class Lines:
    """Index of `table path + key -> line number` for one TOML text."""

    def __init__(self, text: str) -> None:
        self._where: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                table = _parts(header.group(1))
                self._where.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                path = (*table, key.group(1).strip('"'))
                self._where.setdefault(path, number)
                # keys of a one-line inline table share its line
                for inner in re.findall(r"[{,]\s*([A-Za-z0-9_-]+)\s*=", line[key.end():]):
                    self._where.setdefault((*path, inner), number)

    def line(self, *path: str) -> int:
        """Line of the longest known prefix of path (the table, if the key is missing)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self._where:
                return self._where[path[:end]]
        return 1


class ConfigError(Exception):
    def __init__(self, path: Path | str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")


class Reader:
    """Typed access to the parsed document; every failure names its line."""

    def __init__(self, path: Path, text: str, data: dict[str, Any]) -> None:
        self.path, self.lines, self.data = path, Lines(text), data

    def fail(self, where: tuple[str, ...], reason: str) -> ConfigError:
        return ConfigError(self.path, self.lines.line(*where), reason)

    def table(self, *where: str) -> dict[str, Any]:
        node: Any = self.data
        for key in where:
            node = node.get(key, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise self.fail(where, f"'{'.'.join(where)}' must be a table")
        return node

    def get(self, where: tuple[str, ...], kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.table(*where[:-1]).get(where[-1], default)
        # bool is an int in Python but never a number in a config file
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            value = None
        if not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise self.fail(where, f"'{where[-1]}' must be {names.replace('str', 'a string')}")
        return value

    def number(self, where: tuple[str, ...], default: float, low: float) -> float:
        value = float(self.get(where, (int, float), default))
        if value < low:
            raise self.fail(where, f"'{where[-1]}' must be at least {low}")
        return value

    def strings(self, where: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(where, list, [])
        if not value or not all(isinstance(v, str) and v for v in value):
            raise self.fail(where, f"'{where[-1]}' must be a non-empty list of strings")
        return tuple(value)
