"""Support for Roost's tests and benchmarks (not used by the broker or the agent): one way
to stop a child process, so that none outlives the test or run that started it."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop(proc: subprocess.Popen[Any], timeout: float = 5.0,
         sig: int = signal.SIGTERM) -> int:
    """Send `sig` (SIGTERM) unless it has exited, wait up to `timeout` seconds, then
    SIGKILL and wait as long again. Returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout)
