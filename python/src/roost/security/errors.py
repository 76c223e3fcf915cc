"""The error every file parser in this package raises, so a reload can report any of them."""

from __future__ import annotations


class LineError(ValueError):
    """A bad line in a configuration file; str() is `source:line: reason`."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}:{line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason
