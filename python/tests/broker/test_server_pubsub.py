"""`roost broker run` over real sockets with paho-mqtt 2.x, both protocol versions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Paho, RoostProcess
from paho.mqtt.enums import MQTTProtocolVersion

PROTOCOLS = {"v311": MQTTProtocolVersion.MQTTv311, "v5": MQTTProtocolVersion.MQTTv5}


@pytest.fixture(scope="module")
def roost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoostProcess]:
    proc = RoostProcess(tmp_path_factory.mktemp("roost") / "data")
    yield proc
    assert proc.stop() == 0


@pytest.mark.parametrize("name", PROTOCOLS)
def test_publish_qos_0_1_2_reaches_a_wildcard_subscriber(roost: RoostProcess,
                                                         name: str) -> None:
    sub = Paho(roost.port, f"sub-{name}", PROTOCOLS[name])
    pub = Paho(roost.port, f"pub-{name}", PROTOCOLS[name])
    try:
        sub.subscribe(f"{name}/#", 2)
        for qos in (0, 1, 2):
            pub.client.publish(f"{name}/q{qos}", f"m{qos}".encode(), qos).wait_for_publish(15)
        got = sub.wait_for(3)
        assert sorted((m.topic, m.payload, m.qos) for m in got) == [
            (f"{name}/q0", b"m0", 0), (f"{name}/q1", b"m1", 1), (f"{name}/q2", b"m2", 2)]
    finally:
        sub.close()
        pub.close()


@pytest.mark.parametrize("name", PROTOCOLS)
def test_retained_message_is_sent_on_subscribe(roost: RoostProcess, name: str) -> None:
    pub = Paho(roost.port, f"rpub-{name}", PROTOCOLS[name])
    pub.client.publish(f"ret/{name}", b"kept", 1, retain=True).wait_for_publish(15)
    pub.close()
    sub = Paho(roost.port, f"rsub-{name}", PROTOCOLS[name])
    try:
        sub.subscribe(f"ret/{name}", 1)
        got = sub.wait_for(1)
        assert [(m.topic, m.payload, m.retain) for m in got] == [(f"ret/{name}", b"kept", True)]
    finally:
        sub.close()


def test_anonymous_on_a_public_address_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "roost", "broker", "run", "--bind", "0.0.0.0:0",
         "--allow-anonymous", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert "loopback" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_port_in_use_is_a_one_line_error(roost: RoostProcess, tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "roost", "broker", "run", "--bind", f"127.0.0.1:{roost.port}",
         "--allow-anonymous", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("roost broker: ")
    assert "Traceback" not in result.stderr
