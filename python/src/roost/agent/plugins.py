"""Plug-in collectors: an executable that prints JSON, or a Python entry point in the
`roost.collectors` group (a callable taking no arguments and returning a JSON-able value).
A failing, slow or garbage-printing plug-in yields None; it never stops the agent.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from roost.agent.config import Plugin

log = logging.getLogger(__name__)
GROUP = "roost.collectors"
MAX_OUTPUT = 64 * 1024  # a sample is a message, not a log file


def run_command(argv: tuple[str, ...], timeout: float) -> Any:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("collector %s failed: %s", argv[0], err)
        return None
    if done.returncode != 0 or len(done.stdout) > MAX_OUTPUT:
        log.warning("collector %s exited %d with %d bytes", argv[0], done.returncode,
                    len(done.stdout))
        return None
    try:
        return json.loads(done.stdout)
    except ValueError:
        log.warning("collector %s did not print JSON", argv[0])
        return None


def load_entry_point(name: str) -> Callable[[], Any] | None:
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            func: Callable[[], Any] = ep.load()
            return func
    return None


def collect(plugin: Plugin) -> Any:
    """One sample from a plug-in; called from a worker thread, so it may block up to timeout."""
    if plugin.command:
        return run_command(plugin.command, plugin.timeout)
    try:
        func = load_entry_point(plugin.entry_point)
        if func is None:
            log.warning("no entry point %r in group %s", plugin.entry_point, GROUP)
            return None
        value = func()
        json.dumps(value)  # refuse what cannot be published
        return value
    except Exception as err:  # a plug-in is foreign code: contain whatever it raises
        log.warning("collector %s raised %r", plugin.name, err)
        return None
