"""What became of each command the checker sent a Pi: a reply (ok or error; an error may
come from the broker holding the Pi's session when the request expired or was dropped
there undelivered), a refusal in the PUBACK (reason code >= 0x80, or 0x10 no
subscriber), or nothing: silently lost."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from chaos.ledger import Window


@dataclass
class Request:
    pi: str
    sent: float
    puback: int | None = None  # reason code
    reply_at: float | None = None
    ok: bool | None = None
    error: str = ""  # of an error reply; "broker <node>: ..." when the broker answered

    def outcome(self) -> str:
        if self.reply_at is not None:
            return "ok" if self.ok else "error reply"
        if self.puback is not None and self.puback >= 0x10:
            return f"refused 0x{self.puback:02X}"
        return "unanswered"


def outcomes(requests: list[Request], window: Window) -> dict[str, int]:
    """Outcome counts of the requests sent in a window, e.g. {"ok": 40, "unanswered": 2}."""
    return dict(Counter(r.outcome() for r in requests if window.holds(r.sent)))


def errors(requests: list[Request], window: Window) -> dict[str, int]:
    """Error replies of a window by who answered and the first words of why, e.g.
    {"broker broker-2: expired undelivered": 4, "agent: unknown command 'x'": 1}."""
    def kind(error: str) -> str:
        who, _, why = error.partition(": ")
        return f"{who}: {why.split(':')[0]}"

    return dict(Counter(kind(r.error) for r in requests if window.holds(r.sent) and r.error))


def slowest(requests: list[Request], window: Window) -> float:
    """Longest wait for a reply among the requests sent in a window that got one."""
    waits = [r.reply_at - r.sent for r in requests
             if window.holds(r.sent) and r.reply_at is not None]
    return round(max(waits, default=0.0), 2)
