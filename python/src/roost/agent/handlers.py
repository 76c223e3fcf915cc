"""The built-in commands: ping, set-interval, collect-now, restart-agent."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from roost import __version__
from roost.agent.commands import Builtin
from roost.agent.config import MIN_INTERVAL, ArgSpec

if TYPE_CHECKING:
    from roost.agent.runner import Agent

DAY = 86_400.0


def builtins(agent: Agent) -> dict[str, Builtin]:
    names = sorted(agent.intervals)
    metric = ArgSpec("string", "|".join(re.escape(n) for n in names))

    def ping(args: dict[str, Any]) -> Any:
        return {"pong": True, "version": __version__, "ts": round(time.time(), 3)}

    def set_interval(args: dict[str, Any]) -> Any:
        agent.set_interval(args["metric"], float(args["seconds"]))
        return {"metric": args["metric"], "interval": float(args["seconds"])}

    def collect_now(args: dict[str, Any]) -> Any:
        chosen = [args["metric"]] if "metric" in args else names
        agent.collect_now(chosen)
        return {"collecting": chosen}

    def restart(args: dict[str, Any]) -> Any:
        # the reply goes out before the loop ends; systemd sees the same PID come back READY
        agent.stopping = agent.restart = True
        return {"restarting": True}

    return {
        "ping": Builtin({}, ping),
        "set-interval": Builtin({"metric": metric,
                                 "seconds": ArgSpec("number", min=MIN_INTERVAL, max=DAY)},
                                set_interval),
        "collect-now": Builtin({"metric": ArgSpec("string", metric.pattern, required=False)},
                               collect_now),
        "restart-agent": Builtin({}, restart),
    }
