"""Commands on the agent's side: the built-ins (ping, set-interval, collect-now,
restart-agent) and the dispatch of an MQTT 5 request to a built-in or a user command,
with the reply sent to its response topic and correlation data."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from roost import __version__
from roost.agent import commands as cmds
from roost.agent import topics
from roost.agent.commands import Builtin
from roost.agent.config import MIN_INTERVAL, ArgSpec, UserCommand
from roost.agent.link import reply_properties

if TYPE_CHECKING:
    from roost.agent.runner import Agent

log = logging.getLogger(__name__)
DAY = 86_400.0
MAX_WORKERS = 4  # user commands running at once; more are refused, not queued


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


def handle(agent: Agent, msg: mqtt.MQTTMessage) -> None:
    name = msg.topic.rsplit("/", 1)[-1]
    props = msg.properties
    target = getattr(props, "ResponseTopic", None) or topics.reply(
        agent.cfg.site, agent.cfg.client_id, name)
    correlation: bytes | None = getattr(props, "CorrelationData", None)

    def answer(ok: bool, value: Any) -> None:
        payload = cmds.reply(ok, value)
        if correlation is not None and not msg.retain:
            agent.replies.finish(name, correlation, payload)
        agent.link.send(target, payload, properties=reply_properties(correlation))

    if correlation is not None and not msg.retain:
        fresh, stored = agent.replies.begin(name, correlation, time.time())
        if not fresh:  # a redelivered request: never run twice
            if stored is None:
                log.info("command %s: duplicate of a request still running, dropped", name)
            else:
                log.info("command %s: duplicate request, its reply sent again", name)
                agent.link.send(target, stored, properties=reply_properties(correlation))
            return
    try:
        if msg.retain:
            raise cmds.CommandError("retained commands are refused (they would replay)")
        args = cmds.parse_payload(bytes(msg.payload))
        if name in agent.builtins:
            spec = agent.builtins[name]
            answer(True, spec.run(cmds.validate(spec.args, args)))
        elif name in agent.cfg.commands:
            command = agent.cfg.commands[name]
            _user(agent, command, cmds.validate(command.args, args), answer)
        else:
            raise cmds.CommandError(f"unknown command '{name}'")
    except cmds.CommandError as err:
        log.warning("command %s refused: %s", name, err)
        answer(False, err)
    except Exception as err:  # a request must never take the agent down
        log.exception("command %s failed", name)
        answer(False, f"internal error: {type(err).__name__}")


def _user(agent: Agent, command: UserCommand, args: dict[str, Any],
          answer: Callable[[bool, Any], None]) -> None:
    key = f"cmd/{command.name}"
    if sum(k.startswith("cmd/") for k in agent.running) >= MAX_WORKERS or key in agent.running:
        raise cmds.CommandError("busy: too many commands running")

    def work() -> tuple[bool, Any]:
        try:
            return True, cmds.run_user(command, args)
        except cmds.CommandError as err:
            return False, err
        except Exception as err:  # contained here: the reply must still go out
            log.exception("command %s failed", command.name)
            return False, f"internal error: {type(err).__name__}"

    agent.spawn(key, work, lambda r: answer(*r))
