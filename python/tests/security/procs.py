"""Run a real daemon (Mosquitto, HAProxy) for a test and stop it however the test ends."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from roost.testing import stop

HOST = "127.0.0.1"
START_TIMEOUT = 15.0


def free_port() -> int:
    """For daemons that cannot bind port 0 themselves; callers retry on a clash."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def listening(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
    except OSError:
        return False
    return True


@contextmanager
def daemon(
    cmd: Sequence[str], log: Path, port: int | None = None, pass_fds: Sequence[int] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """Start cmd, wait until `port` accepts (when given), stop it on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=tuple(pass_fds)
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while port is not None and not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[0]} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield proc
    finally:
        stop(proc)


@contextmanager
def mosquitto(directory: Path, settings: str) -> Iterator[int]:
    """A Mosquitto on a free loopback port with extra `settings`; yields the port."""
    for _attempt in range(5):
        port = free_port()
        conf = directory / "mosquitto.conf"
        user = pwd.getpwuid(os.getuid()).pw_name  # as root it would switch to "mosquitto"
        conf.write_text(f"listener {port} {HOST}\nuser {user}\nlog_dest stderr\n{settings}")
        try:
            with daemon(["mosquitto", "-c", str(conf)], directory / "mosquitto.log", port):
                yield port
                return
        except RuntimeError as err:
            if "Address already in use" not in str(err):
                raise
    raise RuntimeError("mosquitto: no free port after 5 attempts")
