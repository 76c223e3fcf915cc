"""The chaos run's results: figures per fault window from the checker's record and the
agents' journals, written as a table (.txt) and in full (.json)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from chaos.checker import Checker
from chaos.journal import Link, outage
from chaos.ledger import Window, account
from chaos.requests import errors, outcomes, slowest


def blind(log: list[tuple[float, str]]) -> list[tuple[float, float]]:
    """Intervals from a checker disconnect to a reconnect without its session (+1 s for
    the new subscription): what was published then was queued for a session that ended."""
    out, down = [], None
    for at, what in log:
        if what.startswith("disconnected"):
            down = at
        elif what.endswith("session present False") and down is not None:
            out.append((down, at + 1.0))
            down = None
        elif what.startswith("connected"):
            down = None
    return out


def figures(checker: Checker, windows: list[Window], notes: list[dict[str, Any]],
            links: list[Link], final: dict[str, int]) -> list[dict[str, Any]]:
    with checker.lock:
        samples, statuses = list(checker.samples), list(checker.statuses)
        requests, log = list(checker.requests.values()), list(checker.log)
    gaps = blind(log)
    rows = []
    for w, extra, f in zip(windows, notes, account(samples, statuses, windows, final, gaps),
                          strict=True):
        back = {pi: outage([e for e in links if e.pi == pi], w) for pi in f.pis}
        gap, gap_pi = f.longest_gap()
        rows.append({
            "fault": w.name, "start": w.start, "seconds": round(w.end - w.start, 1),
            "lost": f.total("lost"), "unseen": f.total("unseen"),
            "dropped": f.total("dropped"), "missing": f.total("missing"),
            "duplicates": f.total("duplicates"), "redelivered": f.total("redelivered"),
            "received": f.total("received"),
            "longest_gap_s": gap, "longest_gap_pi": gap_pi,
            "all_back_s": _all_back(back), "commands": outcomes(requests, w),
            "errors": errors(requests, w),
            "error_texts": sorted({r.error for r in requests if w.holds(r.sent) and r.error}),
            "slowest_reply_s": slowest(requests, w),
            "pis": {pi: {**vars(x), "down_s": back[pi].down_s, "back_s": back[pi].back_after}
                    for pi, x in f.pis.items()},
            **extra})
    return rows


def _all_back(back: dict[str, Any]) -> float | str:
    """Seconds from the fault until the last agent that lost its link had it back."""
    if any(not o.up_at_end for o in back.values()):
        return "never"
    return max((o.back_after or 0.0 for o in back.values()), default=0.0)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("fault", "s", "lost", "unseen", "dropped", "missing", "dup", "longest gap",
            "agents back", "commands", "load")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        cmds = ", ".join(f"{n} {k}" for k, n in sorted(r["commands"].items()))
        lines.append(" | ".join(str(x) for x in (
            r["fault"], r["seconds"], r["lost"], r["unseen"], r["dropped"], r["missing"],
            _dups(r), f"{r['longest_gap_s']} s ({r['longest_gap_pi']})",
            f"{r['all_back_s']} s", cmds, r["load"][0])))
    return "\n".join(f"| {line} |" for line in lines) + "\n"


def _dups(row: dict[str, Any]) -> str:
    resent = row.get("redelivered", 0)
    return f"{row['duplicates']} ({resent} resent to the checker)" if resent else \
        str(row["duplicates"])


def write(out: Path, checker: Checker, windows: list[Window], notes: list[dict[str, Any]],
          *, links: list[Link], final: dict[str, int],
          extra: dict[str, Any] | None = None) -> Path:
    rows = figures(checker, windows, notes, links, final)
    out.mkdir(parents=True, exist_ok=True)
    base = out / time.strftime("chaos-%Y%m%d-%H%M%S", time.gmtime())
    doc = {"rows": rows, "checker_log": checker.log, "retained_replays": checker.retained,
           "final_seq": final, **(extra or {})}
    base.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    base.with_suffix(".txt").write_text(
        "Roost chaos run (lab/chaos). lost = acknowledged samples never delivered and not\n"
        "counted as dropped by the agent; unseen = missing while the checker itself had no\n"
        "session (it moved node); dup = samples received twice ('resent to the checker':\n"
        "by its own broker after it reconnected, DUP flag set); 'agents back' = seconds\n"
        "from the fault until the last agent that lost its link was connected again;\n"
        f"commands = pings with a {checker.ping_expiry} s expiry, 'error reply' = the "
        "agent's or the broker's\nerror answer (the .json's errors say whose and why).\n\n"
        + table(rows))
    return base
