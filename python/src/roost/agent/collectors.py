"""Built-in collectors. Each reads one source under `root` (the real `/` except in tests)
and returns a JSON-able value, or None when the source is missing or unreadable: a Pi
without a thermal zone or firmware interface reports nothing for that metric, never crashes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

Collector = Callable[[Path], Any]

# Raspberry Pi firmware `get_throttled` bits (now / since boot).
THROTTLE_BITS = {
    "under_voltage": 0, "freq_capped": 1, "throttled": 2, "soft_temp_limit": 3,
    "under_voltage_occurred": 16, "freq_capped_occurred": 17, "throttled_occurred": 18,
    "soft_temp_limit_occurred": 19,
}


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def cpu_temp(root: Path) -> float | None:
    """Degrees Celsius from the CPU thermal zone (the first zone if none says 'cpu')."""
    zones = sorted((root / "sys/class/thermal").glob("thermal_zone*"))
    zones.sort(key=lambda z: "cpu" not in (_read(z, "type") or ""))
    for zone in zones:
        text = _read(zone, "temp")
        if text and text.strip().lstrip("-").isdigit():
            return round(int(text) / 1000, 1)
    return None


def load(root: Path) -> dict[str, float] | None:
    text = _read(root, "proc/loadavg")
    if not text:
        return None
    one, five, fifteen = (float(v) for v in text.split()[:3])
    return {"1m": one, "5m": five, "15m": fifteen}


def memory(root: Path) -> dict[str, float] | None:
    text = _read(root, "proc/meminfo")
    if not text:
        return None
    fields = (ln.split(":", 1) for ln in text.splitlines() if ":" in ln)
    kb = {k: int(v.split()[0]) for k, v in fields}
    if "MemTotal" not in kb or "MemAvailable" not in kb:
        return None
    total, avail = kb["MemTotal"], kb["MemAvailable"]
    return {"total_kb": total, "available_kb": avail,
            "used_pct": round(100 * (total - avail) / total, 1) if total else 0.0}


def disk(root: Path) -> dict[str, float] | None:
    try:
        st = os.statvfs(root)
    except OSError:
        return None
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    return {"total_bytes": total, "free_bytes": free,
            "used_pct": round(100 * (total - free) / total, 1) if total else 0.0}


def uptime(root: Path) -> float | None:
    text = _read(root, "proc/uptime")
    return float(text.split()[0]) if text else None


def network(root: Path) -> dict[str, dict[str, int]] | None:
    text = _read(root, "proc/net/dev")
    if not text:
        return None
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        f = rest.split()
        if name.strip() != "lo" and len(f) >= 16:
            out[name.strip()] = {"rx_bytes": int(f[0]), "rx_errors": int(f[2]),
                                 "tx_bytes": int(f[8]), "tx_errors": int(f[10])}
    return out


def throttled(root: Path) -> dict[str, Any] | None:
    """Under-voltage and throttling flags from the Pi firmware, if this machine has one."""
    text = _read(root, "sys/devices/platform/soc/soc:firmware/get_throttled")
    if text is None and root == Path("/") and shutil.which("vcgencmd"):
        try:
            out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True,
                                 text=True, timeout=2, check=True).stdout
            text = out.partition("=")[2]
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        raw = int((text or "").strip(), 16)
    except ValueError:
        return None
    return {"raw": hex(raw), **{k: bool(raw >> bit & 1) for k, bit in THROTTLE_BITS.items()}}


BUILTINS: dict[str, Collector] = {
    "cpu_temp": cpu_temp, "load": load, "memory": memory, "disk": disk,
    "uptime": uptime, "network": network, "throttled": throttled,
}
