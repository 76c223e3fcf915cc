"""Map a TOML key path back to its line, so semantic errors read `FILE:LINE: reason`.

tomllib reports syntax errors with a line but drops positions from the parsed data; this
scanner recovers them for the simple shapes the agent config uses (tables, arrays of tables,
`key = value` lines, one-line inline tables).
"""

from __future__ import annotations

import re

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
