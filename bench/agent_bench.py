"""Agent footprint on this machine: `python bench/agent_bench.py [--duration 600]`.

Runs Mosquitto on a free loopback port and the agent as a real process, then measures:
- idle: default intervals (10-60 s), CPU share of one core and RSS over `--idle` seconds;
- load: every built-in metric at 1 sample/s for `--duration` seconds; RSS sampled every
  `--every` seconds, growth = median of the last fifth minus median of the first fifth
  (after a warm-up), and a subscriber checks nothing was lost (seq without gaps).
Targets (issue 6): RSS <= 40 MB, idle CPU <= 1% of a core, no growth under load.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HZ = os.sysconf("SC_CLK_TCK")
METRICS = ("cpu_temp", "load", "memory", "disk", "uptime", "network", "throttled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def start_mosquitto(d: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    f"user {pwd.getpwuid(os.getuid()).pw_name}\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def start_agent(d: Path, port: int, name: str, interval: float | None) -> subprocess.Popen[bytes]:
    collectors = "".join(f"{m} = {interval}\n" for m in METRICS) if interval else ""
    conf = d / f"{name}.toml"
    conf.write_text(f'site = "bench"\nclient_id = "{name}"\nstate_dir = "{d / name}"\n'
                    f'[broker]\nendpoints = ["127.0.0.1:{port}"]\n[collectors]\n{collectors}')
    return subprocess.Popen([sys.executable, "-m", "roost", "agent", "run", "--config",
                             str(conf), "--log-level", "WARNING"],
                            stdout=subprocess.DEVNULL, stderr=(d / f"{name}.log").open("wb"))


class Counter:
    """Counts telemetry and checks each metric's seq only grows; all seqs together must
    have no gaps (one counter per agent)."""

    def __init__(self, port: int, name: str) -> None:
        self.seqs: set[int] = set()
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"count-{name}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"roost/bench/{name}/telemetry/+", qos=1)
        self.client.loop_start()

    def _message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.retain:
            with self.lock:
                self.seqs.add(json.loads(msg.payload)["seq"])

    def report(self) -> dict[str, int]:
        with self.lock:
            s = sorted(self.seqs)
        gaps = (s[-1] - s[0] + 1 - len(s)) if s else 0
        return {"samples": len(s), "gaps": gaps}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def measure(pid: int, seconds: float, every: float) -> dict[str, Any]:
    warm = min(10.0, seconds / 5)
    time.sleep(warm)  # imports and first connection are not the steady state
    c0, t0 = cpu_s(pid), time.monotonic()
    series: list[tuple[float, int]] = []
    while time.monotonic() - t0 < seconds - warm:
        series.append((round(time.monotonic() - t0, 1), rss_kb(pid)))
        time.sleep(min(every, max(0.0, seconds - warm - (time.monotonic() - t0))))
    series.append((round(time.monotonic() - t0, 1), rss_kb(pid)))
    wall = time.monotonic() - t0
    cpu = cpu_s(pid) - c0
    fifth = max(1, len(series) // 5)
    first = statistics.median(r for _, r in series[:fifth])
    last = statistics.median(r for _, r in series[-fifth:])
    return {"seconds": round(wall, 1), "cpu_pct_of_core": round(100 * cpu / wall, 3),
            "rss_mb_max": round(max(r for _, r in series) / 1024, 2),
            "rss_mb_first_fifth": round(first / 1024, 2),
            "rss_mb_last_fifth": round(last / 1024, 2),
            "rss_growth_kb": round(last - first), "rss_series_kb": series}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600, help="load phase, seconds")
    ap.add_argument("--idle", type=float, default=60, help="idle phase, seconds")
    ap.add_argument("--every", type=float, default=10, help="RSS sampling period, seconds")
    ap.add_argument("--out", type=Path, help="write the JSON result here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        broker, port = start_mosquitto(d)
        result: dict[str, Any] = {"python": sys.version.split()[0]}
        try:
            for phase, interval, seconds in (("idle", None, args.idle),
                                             ("load", 1.0, args.duration)):
                counter = Counter(port, phase)
                agent = start_agent(d, port, phase, interval)
                try:
                    result[phase] = measure(agent.pid, seconds, args.every)
                    assert agent.poll() is None, (d / f"{phase}.log").read_text()
                finally:
                    agent.terminate()
                    agent.wait(10)
                    time.sleep(0.5)
                    result[phase]["delivered"] = counter.report()
                    counter.close()
        finally:
            broker.terminate()
            broker.wait(10)
    summary = {k: {m: v for m, v in p.items() if m != "rss_series_kb"}
               for k, p in result.items() if isinstance(p, dict)}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
