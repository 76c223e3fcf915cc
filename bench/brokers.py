"""Start Debian's Mosquitto and Roost on loopback for the benchmark; read their RSS and CPU.
With `tls`, each gets one listener that requires a client certificate from the same CA."""

from __future__ import annotations

import importlib
import os
import pwd
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from roost.testing import stop

HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Tls:
    """The PEM files of a throwaway PKI: the brokers' side and the load generator's."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def client(self) -> dict[str, str]:
        """What load.py's roles need to connect (their conf["tls"])."""
        return {"ca": str(self.ca), "cert": str(self.client_cert), "key": str(self.client_key)}


@dataclass
class Broker:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: list[str] = field(default_factory=list)
    tls: dict[str, str] | None = None  # conf["tls"] for load.py's roles; None: plain TCP

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


def make_pki(directory: Path) -> Tls:
    """A CA, a server certificate for 127.0.0.1 and one client certificate (ECDSA P-256),
    made by the test suite's PKI helper (python/tests/security/certs.py, not packaged)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "tests"))
    certs = importlib.import_module("security.certs")
    ca = certs.make_ca(directory, "Roost bench CA")
    server = certs.issue(ca, "localhost", server=True)  # DNS:localhost, IP:127.0.0.1
    client = certs.issue(ca, "bench-client")
    return Tls(ca.cert_path, server.cert_path, server.key_path, client.cert_path,
               client.key_path)


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


def start_mosquitto(workdir: Path, tls: Tls | None = None) -> Broker:
    # TLS 1.2 is the minimum here (Mosquitto 2.0: tls_version is the lowest accepted).
    mtls = (f"cafile {tls.ca}\ncertfile {tls.server_cert}\nkeyfile {tls.server_key}\n"
            "require_certificate true\nuse_identity_as_username true\n"
            "tls_version tlsv1.2\n") if tls else ""
    for _attempt in range(5):  # Mosquitto cannot bind port 0: find a port, retry on a race
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {port} {HOST}\n"
            + mtls
            + f"allow_anonymous {'false' if tls else 'true'}\n"
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
                return Broker("mosquitto", port, proc, tls=tls.client() if tls else None)
            except OSError:
                time.sleep(0.05)
        proc.kill()
        proc.wait(5)
    raise RuntimeError("mosquitto did not start on a free port after 5 attempts")


def start_roost(workdir: Path, python: str, durability: str = "batched",
                tls: Tls | None = None) -> Broker:
    cmd = [python, "-m", "roost", "broker", "run", "--data-dir", str(workdir),
           "--durability", durability, "--max-queued-messages", "1000000",
           "--log-level", "warning"]
    if tls:
        # client_id_is_identity = false: the generator's many connections share one
        # certificate, each with its own client id (a fleet has one certificate per Pi).
        conf = workdir / "roost.toml"
        conf.write_text(
            "allow_anonymous = false\n[[listener]]\n"
            f'bind = "{HOST}:0"\nclient_id_is_identity = false\n'
            f'tls = {{ cert = "{tls.server_cert}", key = "{tls.server_key}", '
            f'ca = "{tls.ca}", require_client_cert = true }}\n')
        cmd += ["--config", str(conf)]
    else:
        cmd += ["--bind", f"{HOST}:0", "--allow-anonymous"]
    broker, m = _launch("roost", cmd, re.compile(r"roost broker listening on [\d.]+:(\d+)"))
    broker.port = int(m.group(1))
    broker.tls = tls.client() if tls else None
    return broker
