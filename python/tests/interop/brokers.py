"""Start Mosquitto or Roost as a real process on a free loopback port and wait until it listens."""

from __future__ import annotations

import os
import pwd
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from roost.testing import stop

HOST = "127.0.0.1"
START_TIMEOUT = 30.0  # a Python broker on a box with load average 20 can need it
MOSQUITTO_READY = re.compile(r"mosquitto version \S+ running")
ROOST_READY = re.compile(r"roost broker listening on 127\.0\.0\.1:(\d+)")
ROOST_MISSING = ("not implemented yet", "unrecognized arguments")


class BrokerNotReady(Exception):
    def __init__(self, message: str, not_implemented: bool = False) -> None:
        super().__init__(message)
        self.not_implemented = not_implemented


@dataclass
class Broker:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: list[str] = field(default_factory=list)
    host: str = HOST

    def stop(self) -> None:
        stop(self.proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _spawn(name: str, cmd: list[str], ready: re.Pattern[str]) -> tuple[Broker, re.Match[str]]:
    """Run cmd, drain its stderr in a thread (a full pipe would stall the broker)."""
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log: list[str] = []
    found: list[re.Match[str]] = []
    seen = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            log.append(line)
            m = ready.search(line)
            if m and not found:
                found.append(m)
                seen.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not seen.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
            reader.join(2)
            tail = " | ".join(log[-5:]) or "(no output)"
            missing = proc.returncode == 2 and any(s in tail for s in ROOST_MISSING)
            raise BrokerNotReady(f"{name} exited with {proc.returncode}: {tail}", missing)
    return Broker(name, 0, proc, log), found[0]


def start_mosquitto(data: Path, extra: str = "") -> Broker:
    """extra: more mosquitto.conf lines, applied to the one listener."""
    # Mosquitto cannot bind port 0: pick a free port, retry if someone takes it first.
    for _attempt in range(5):
        port = free_port()
        conf = data / "mosquitto.conf"
        conf.write_text(
            f"listener {port} {HOST}\n"
            "allow_anonymous true\n"
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"  # as root it would switch to "mosquitto"
            "persistence true\n"
            f"persistence_location {data}/\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            + extra
        )
        try:
            broker, _ = _spawn("mosquitto", ["mosquitto", "-c", str(conf)], MOSQUITTO_READY)
        except BrokerNotReady as err:
            if "Address already in use" in str(err):
                continue
            raise
        broker.port = port
        return broker
    raise BrokerNotReady("mosquitto: no free port after 5 attempts")


def start_roost(data: Path, python: str, extra: str = "") -> Broker:
    """extra: more TOML for a config file (top-level keys, then tables such as [limits])."""
    if extra:
        conf = data / "roost.toml"
        conf.write_text(f'data_dir = "{data}"\nallow_anonymous = true\n{extra}\n'
                        f'[[listener]]\nbind = "{HOST}:0"\n')
        cmd = [python, "-m", "roost", "broker", "run", "--config", str(conf)]
    else:
        cmd = [python, "-m", "roost", "broker", "run", "--bind", f"{HOST}:0",
               "--allow-anonymous", "--data-dir", str(data)]
    broker, m = _spawn("roost", cmd, ROOST_READY)
    broker.port = int(m.group(1))
    return broker


def restart(broker: Broker, data: Path, python: str) -> None:
    """SIGTERM, then the same broker on the same data directory (a new port), in place."""
    broker.stop()
    again = start_mosquitto(data) if broker.name == "mosquitto" else start_roost(data, python)
    broker.proc, broker.port, broker.log = again.proc, again.port, broker.log + again.log
