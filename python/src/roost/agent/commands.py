"""Commands from the operator: an allow-list, with every argument validated before anything
runs. User-defined commands run a fixed argv from the config with validated arguments put in
place of whole `{name}` elements: never a shell, never a partial string substitution.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from roost.agent.config import ArgSpec, UserCommand

MAX_OUTPUT = 4096  # of stdout/stderr echoed in a reply


class CommandError(Exception):
    """The request is refused; nothing was executed."""


@dataclass(frozen=True)
class Builtin:
    args: dict[str, ArgSpec]
    run: Callable[[dict[str, Any]], Any]


def parse_payload(payload: bytes) -> dict[str, Any]:
    """A request payload is a JSON object of arguments (empty payload: no arguments)."""
    if not payload.strip():
        return {}
    try:
        value = json.loads(payload)
    except ValueError as err:
        raise CommandError(f"payload is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise CommandError("payload must be a JSON object of arguments")
    return value


def validate(specs: dict[str, ArgSpec], args: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(args) - set(specs))
    if unknown:
        raise CommandError(f"unknown argument(s): {', '.join(unknown)}")
    for name, spec in specs.items():
        if name not in args:
            if spec.required:
                raise CommandError(f"missing argument '{name}'")
            continue
        _check(name, spec, args[name])
    return args


def _check(name: str, spec: ArgSpec, value: Any) -> None:
    if spec.type == "string":
        if not isinstance(value, str) or not re.fullmatch(spec.pattern, value):
            raise CommandError(f"argument '{name}' must be a string matching {spec.pattern!r}")
        return
    numeric = (int,) if spec.type == "int" else (int, float)
    if isinstance(value, bool) or not isinstance(value, numeric) or not math.isfinite(value):
        kind = "an integer" if spec.type == "int" else "a number"
        raise CommandError(f"argument '{name}' must be {kind}")
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        raise CommandError(f"argument '{name}' must be within [{spec.min}, {spec.max}]")


def user_argv(command: UserCommand, args: dict[str, Any]) -> list[str]:
    return [str(args[e[1:-1]]) if e.startswith("{") and e.endswith("}") else e
            for e in command.argv]


def run_user(command: UserCommand, args: dict[str, Any]) -> dict[str, Any]:
    """Run in a worker thread; raises CommandError if the program cannot run or times out."""
    argv = user_argv(command, args)
    try:
        done = subprocess.run(argv, capture_output=True, timeout=command.timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise CommandError(f"timed out after {command.timeout}s") from err
    except OSError as err:
        raise CommandError(f"cannot run {argv[0]}: {err.strerror}") from err
    if done.returncode != 0:
        raise CommandError(f"exit status {done.returncode}: "
                           f"{done.stderr[-MAX_OUTPUT:].decode(errors='replace')}")
    return {"stdout": done.stdout[-MAX_OUTPUT:].decode(errors="replace")}


def reply(ok: bool, value: Any) -> bytes:
    return json.dumps({"ok": True, "result": value} if ok else {"ok": False, "error": str(value)},
                      separators=(",", ":")).encode()
