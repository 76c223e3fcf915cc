"""Server paths over real sockets: CONNECT timeout, takeover, wills, $SYS, shutdown."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from harness import Paho, RoostProcess
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

V5 = MQTTProtocolVersion.MQTTv5
V311 = MQTTProtocolVersion.MQTTv311
CONFIG = """\
sys_interval = 1
[[listener]]
bind = "127.0.0.1:0"
[limits]
connect_timeout = 1
max_connections = 50
"""


@pytest.fixture(scope="module")
def roost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoostProcess]:
    root = tmp_path_factory.mktemp("roost")
    config = root / "broker.toml"
    config.write_text(CONFIG)
    proc = RoostProcess(root / "data", "--config", str(config))
    yield proc
    assert proc.stop() == 0


def test_silent_socket_is_dropped_after_connect_timeout(roost: RoostProcess) -> None:
    with socket.create_connection(("127.0.0.1", roost.port), timeout=15) as s:
        assert s.recv(10) == b""  # closed by the broker, not by our timeout


def test_takeover_disconnects_the_old_v5_client_with_0x8e(roost: RoostProcess) -> None:
    old = Paho(roost.port, "twin", V5)
    gone, reasons = old.watch_disconnect()
    new = Paho(roost.port, "twin", V5)
    try:
        assert gone.wait(15)
        assert reasons[0] == 0x8E
    finally:
        old.close()
        new.close()


@pytest.mark.parametrize("protocol", [V311, V5], ids=["v311", "v5"])
def test_will_is_published_when_the_socket_dies(roost: RoostProcess,
                                                protocol: MQTTProtocolVersion) -> None:
    watcher = Paho(roost.port, f"watch-{protocol}", protocol)
    watcher.subscribe(f"wills/{protocol}", 1)
    raw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"doomed-{protocol}",
                      protocol=protocol)
    raw.will_set(f"wills/{protocol}", b"doomed went away", 1)
    raw.connect("127.0.0.1", roost.port)
    raw.loop_start()
    try:
        sock = raw.socket()
        assert sock is not None
        raw.loop_stop()
        sock.close()  # no DISCONNECT: an abnormal end
        got = watcher.wait_for(1)
        assert [m.payload for m in got] == [b"doomed went away"]
    finally:
        watcher.close()


def test_sys_topics_count_clients(roost: RoostProcess) -> None:
    c = Paho(roost.port, "sys-reader", V5)
    try:
        c.subscribe("$SYS/broker/clients/connected", 0)
        c.subscribe("$SYS/broker/version", 0)
        got = c.wait_for(3)
        topics = {m.topic: m.payload for m in got}
        assert topics["$SYS/broker/version"].startswith(b"roost ")
        assert int(topics["$SYS/broker/clients/connected"]) >= 1
    finally:
        c.close()


def test_sigterm_tells_v5_clients_and_exits_0(tmp_path: Path) -> None:
    proc = RoostProcess(tmp_path / "data")
    c = Paho(proc.port, "bye", V5)
    gone, reasons = c.watch_disconnect()
    try:
        assert proc.stop() == 0
        assert gone.wait(15)
        assert reasons[0] == 0x8B
    finally:
        c.close()


def test_systemd_notify_ready_watchdog_stopping(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(15)
        env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}
        proc = RoostProcess(tmp_path / "data", env=env)
        try:
            got = [sock.recv(1024).decode() for _ in range(2)]
            assert got[0].startswith("READY=1\nSTATUS=listening on 127.0.0.1:")
            assert got[1] == "WATCHDOG=1"
        finally:
            assert proc.stop() == 0
        for _ in range(10):  # bounded: perhaps more pings, then STOPPING
            if sock.recv(1024) == b"STOPPING=1":
                break
        else:
            raise AssertionError("no STOPPING=1")
