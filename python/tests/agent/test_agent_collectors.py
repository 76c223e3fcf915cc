"""Collectors read real files: this machine's /proc, and a fake root with Pi-shaped files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from roost.agent.collectors import BUILTINS, cpu_temp, throttled
from roost.agent.config import Plugin
from roost.agent.plugins import collect


def test_linux_sources_on_this_machine() -> None:
    root = Path("/")
    for name in ("load", "memory", "disk", "uptime", "network"):
        assert BUILTINS[name](root) is not None, name


def test_every_collector_reports_none_without_its_source(tmp_path: Path) -> None:
    for name, func in BUILTINS.items():
        if name != "disk":  # statvfs works on any directory
            assert func(tmp_path) is None, name


def test_pi_shaped_thermal_and_throttle_files(tmp_path: Path) -> None:
    for zone, kind, milli in (("thermal_zone0", "gpu-thermal", "40000"),
                              ("thermal_zone1", "cpu-thermal", "51234\n")):
        d = tmp_path / "sys/class/thermal" / zone
        d.mkdir(parents=True)
        (d / "type").write_text(kind)
        (d / "temp").write_text(milli)
    assert cpu_temp(tmp_path) == 51.2
    fw = tmp_path / "sys/devices/platform/soc/soc:firmware"
    fw.mkdir(parents=True)
    (fw / "get_throttled").write_text("10005\n")
    flags = throttled(tmp_path)
    assert flags is not None and flags["raw"] == "0x10005"
    assert flags["under_voltage"] and flags["throttled"] and not flags["freq_capped"]
    assert flags["under_voltage_occurred"] and not flags["throttled_occurred"]
    (fw / "get_throttled").write_text("garbage")
    assert throttled(tmp_path) is None


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "plugin.py"
    path.write_text(f"import sys, time\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_executable_plugins(tmp_path: Path) -> None:
    py = os.environ.get("PYTHON", __import__("sys").executable)
    ok = Plugin("p", 1, 5, command=(py, script(tmp_path, 'print(\'{"rssi": -61}\')')))
    assert collect(ok) == {"rssi": -61}
    for body in ("print('not json')", "sys.exit(3)", "time.sleep(5)"):
        bad = Plugin("p", 1, 0.5, command=(py, script(tmp_path, body)))
        assert collect(bad) is None, body
    assert collect(Plugin("p", 1, 1, command=(str(tmp_path / "missing"),))) is None
    assert collect(Plugin("p", 1, 1, entry_point="no-such-entry-point")) is None


def test_entry_point_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "roost_probe.py").write_text(
        "def good():\n    return {'answer': 42}\n"
        "def broken():\n    raise RuntimeError('sensor unplugged')\n"
        "def opaque():\n    return object()\n")
    info = tmp_path / "roost_probe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: roost-probe\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[roost.collectors]\ngood = roost_probe:good\nbroken = roost_probe:broken\n"
        "opaque = roost_probe:opaque\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # a real installed distribution, found by path
    assert collect(Plugin("p", 1, 1, entry_point="good")) == {"answer": 42}
    assert collect(Plugin("p", 1, 1, entry_point="broken")) is None
    assert collect(Plugin("p", 1, 1, entry_point="opaque")) is None
