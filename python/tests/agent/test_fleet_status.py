"""`roost fleet status` against a real broker with real agents."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from interop.brokers import free_port
from roost.fleet.cli import table
from roost.fleet.status import Pi, fold

from .conftest import AgentFactory, WatcherFactory
from .harness import Server, agent_toml


def fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "roost", "fleet", "status", *args],
                          capture_output=True, text=True, timeout=30, check=False)


def test_fold_merges_status_and_temperature_and_ignores_garbage() -> None:
    pis: dict[tuple[str, str], Pi] = {}
    fold(pis, "roost/s/pi/status", b'{"state":"online","ts":10,"version":"1","queue_depth":3}')
    fold(pis, "roost/s/pi/telemetry/cpu_temp", b'{"ts":12.5,"seq":4,"value":51.2}')
    fold(pis, "roost/s/pi/telemetry/load", b"not json")
    fold(pis, "elsewhere/x", b"{}")
    (pi,) = pis.values()
    assert (pi.state, pi.version, pi.queue_depth, pi.temperature, pi.last_seen) == (
        "online", "1", 3, 51.2, 12.5)
    lines = table([pi], now=72.5).splitlines()
    assert lines[0].split() == ["SITE", "CLIENT", "STATE", "LAST", "SEEN", "VERSION", "TEMP",
                                "QUEUE"]
    assert lines[1].split() == ["s", "pi", "online", "1m", "ago", "1", "51.2C", "3"]


def test_status_lists_online_and_offline_pis(
        broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    w = watcher(broker.port, ["roost/lab/+/status"])
    agent(agent_toml(tmp_path / "a", [broker.port], client_id="pi-a"))
    gone = agent(agent_toml(tmp_path / "b", [broker.port], client_id="pi-b"))
    w.wait(lambda ms: len({s["client_id"] for s in w.statuses()}) == 2, "both online")
    gone.stop(signal.SIGKILL)
    w.wait(lambda ms: w.statuses()[-1]["state"] == "offline", "pi-b's will")
    done = fleet("--broker", f"127.0.0.1:{broker.port}", "--site", "lab", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["client_id"]: r for r in json.loads(done.stdout)}
    assert (rows["pi-a"]["state"], rows["pi-b"]["state"]) == ("online", "offline")
    assert rows["pi-a"]["version"] and rows["pi-a"]["queue_depth"] is not None
    assert rows["pi-a"]["last_seen"] is not None
    text = fleet("--broker", f"127.0.0.1:{broker.port}").stdout
    assert "pi-a" in text and "offline" in text and text.startswith("SITE")
    assert json.loads(fleet("--broker", f"127.0.0.1:{broker.port}", "--site", "other",
                            "--json").stdout) == []


def test_unreachable_broker_is_an_error_not_an_empty_table() -> None:
    done = fleet("--broker", f"127.0.0.1:{free_port()}", "--wait", "1")
    assert done.returncode == 2 and "roost fleet status:" in done.stderr


def test_status_with_username_and_password_file(tmp_path: Path) -> None:
    users = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(users), "ops", "s3cret"], check=True,
                   capture_output=True, timeout=30)
    server = Server("mosquitto", tmp_path / "broker",
                    extra=f"allow_anonymous false\npassword_file {users}")
    server.start()
    try:
        secret = tmp_path / "secret"
        secret.write_text("s3cret\n")
        broker = f"127.0.0.1:{server.port}"
        good = fleet("--broker", broker, "--username", "ops", "--password-file", str(secret),
                     "--json")
        assert good.returncode == 0 and json.loads(good.stdout) == [], good.stderr
        secret.write_text("wrong\n")
        bad = fleet("--broker", broker, "--username", "ops", "--password-file", str(secret))
        assert bad.returncode == 2 and "refused" in bad.stderr
    finally:
        server.stop()
