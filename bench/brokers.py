"""Start Debian's Mosquitto and Roost on loopback for the benchmark; read their RSS and CPU."""

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
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Broker:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: list[str] = field(default_factory=list)

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        m = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(m.group(1)) if m else 0

    def cpu_s(self) -> float:
        """User + system CPU seconds the broker has used so far."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def waited_s(self) -> float:
        """Seconds the broker's main thread sat runnable but waiting for a CPU."""
        return int(Path(f"/proc/{self.proc.pid}/schedstat").read_text().split()[1]) / 1e9

    def stop(self) -> None:
        stop(self.proc, 10)


def _launch(name: str, cmd: list[str], ready: re.Pattern[str]) -> tuple[Broker, re.Match[str]]:
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    broker = Broker(name, 0, proc)
    found: list[re.Match[str]] = []
    seen = threading.Event()

    def drain() -> None:  # a full stderr pipe would stall the broker
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if len(broker.log) < 1000:
                broker.log.append(line)
            if not found and (m := ready.search(line)):
                found.append(m)
                seen.set()

    threading.Thread(target=drain, daemon=True).start()
    for _ in range(300):  # up to 15 s
        if seen.wait(0.05):
            return broker, found[0]
        if proc.poll() is not None:
            break
    broker.stop()
    raise RuntimeError(f"{name} did not start: {' | '.join(broker.log[-5:])}")


def start_mosquitto(workdir: Path) -> Broker:
    for _attempt in range(5):  # Mosquitto cannot bind port 0: find a port, retry on a race
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {port} {HOST}\n"
            "allow_anonymous true\n"
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
            # Never drop an acknowledged QoS 1 message for a slow subscriber (default 1000);
            # Roost gets the same limit.
            "max_queued_messages 1000000\n"
            "log_dest none\n"  # no per-connection log lines while we open 10,000
        )
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if proc.poll() is not None:
                break
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return Broker("mosquitto", port, proc)
            except OSError:
                time.sleep(0.05)
        proc.kill()
        proc.wait(5)
    raise RuntimeError("mosquitto did not start on a free port after 5 attempts")


def start_roost(workdir: Path, python: str, durability: str = "batched") -> Broker:
    cmd = [python, "-m", "roost", "broker", "run", "--bind", f"{HOST}:0",
           "--allow-anonymous", "--data-dir", str(workdir), "--durability", durability,
           "--max-queued-messages", "1000000", "--log-level", "warning"]
    broker, m = _launch("roost", cmd, re.compile(r"roost broker listening on [\d.]+:(\d+)"))
    broker.port = int(m.group(1))
    return broker
