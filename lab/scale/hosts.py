"""What the scale run asks of the lab's containers: addresses, the brokers' process state,
memory and /healthz, HAProxy's limits and restart, the Pis' agents. Only containers and the
network labelled by lab/up.sh for this lab are touched, and every call has a timeout."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

LABEL = "io.roost.lab"


def sh(*argv: str, timeout: float = 30, stdin: str | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:4])}...: {done.stderr.strip() or done.returncode}")
    return done.stdout


def in_host(container: str, script: str, timeout: float = 30) -> str:
    return sh("docker", "exec", container, "sh", "-c", script, timeout=timeout)


def group(lab: str, name: str) -> list[str]:
    """Container names of one inventory group of this lab, in host order."""
    out = sh("docker", "ps", "--filter", f"label={LABEL}=1", "--filter",
             f"label={LABEL}.group={name}", "--filter", f"network={lab}",
             "--format", "{{.Names}}")
    return sorted(out.split(), key=lambda n: [int(x) if x.isdigit() else x
                                              for x in re.split(r"(\d+)", n)])


def address(container: str, lab: str) -> str:
    return sh("docker", "inspect", "-f",
              f'{{{{(index .NetworkSettings.Networks "{lab}").IPAddress}}}}', container).strip()


def network(lab: str) -> tuple[str, ipaddress.IPv4Network]:
    """The lab network's bridge interface on this machine and its subnet."""
    info = json.loads(sh("docker", "network", "inspect", lab))[0]
    if info.get("Labels", {}).get(LABEL) != "1":
        raise SystemExit(f"docker network {lab} is not a Roost lab's (make scale-lab)")
    bridge = info.get("Options", {}).get("com.docker.network.bridge.name") or \
        "br-" + info["Id"][:12]
    return bridge, ipaddress.IPv4Network(info["IPAM"]["Config"][0]["Subnet"])


def source_addresses(subnet: ipaddress.IPv4Network, n: int) -> list[str]:
    """n addresses from the top of the lab's subnet, far from the ones docker hands out
    (it counts up from .2), for the simulated devices' connections."""
    top = int(subnet.broadcast_address) - 1
    if n > subnet.num_addresses // 2:
        raise SystemExit(f"{n} source addresses do not fit the upper half of {subnet}")
    return [str(ipaddress.IPv4Address(top - i)) for i in range(n)]


def set_sources(bridge: str, addrs: list[str], present: bool) -> None:
    """Add (or remove) the addresses on the lab's bridge: HAProxy balances by source
    address, so devices behind one address would all reach the same broker."""
    verb = "add" if present else "del"
    lines = "".join(f"address {verb} {a}/32 dev {bridge}\n" for a in addrs)
    sh("ip", "-force", "-batch", "-", stdin=lines)


def broker_state(container: str) -> dict[str, Any]:
    """MainPID, NRestarts, ActiveState and the resident memory of roost-broker: now
    (VmRSS), its peak since the process started (VmHWM)."""
    out = in_host(container, "systemctl show -p MainPID -p NRestarts -p ActiveState "
                  "roost-broker; pid=$(systemctl show -p MainPID --value roost-broker); "
                  "grep -E 'VmRSS|VmHWM' /proc/$pid/status || true")
    state: dict[str, Any] = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    mb = {k: round(int(m.group(1)) / 1024, 1) if (m := re.search(rf"{k}:\s+(\d+) kB", out))
          else None for k in ("VmRSS", "VmHWM")}
    return {"pid": int(state.get("MainPID", 0)), "restarts": int(state.get("NRestarts", 0)),
            "active": state.get("ActiveState", "?"), "rss_mb": mb["VmRSS"],
            "peak_rss_mb": mb["VmHWM"]}


def broker_alarms(container: str, since: float) -> list[str]:
    """roost-broker's journal lines since `since` (epoch) that say the node fell over:
    a watchdog kill, a crash or a restart by systemd."""
    out = in_host(container, f"journalctl -u roost-broker --since @{int(since)} -q "
                  "--no-pager -o short-iso | grep -E 'Watchdog timeout|Main process exited|"
                  "Scheduled restart|Failed with result|Traceback' || true")
    return out.splitlines()


def http_get(url: str, timeout: float = 15) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (lab http)
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)


def metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None


def haproxy(container: str, cmd: str) -> str:
    return in_host(container, f"echo '{cmd}' | socat stdio /run/haproxy/admin.sock")


def haproxy_limits(container: str) -> dict[str, Any]:
    """The process's maxconn and file descriptor limit, and the mqtt frontend's limit."""
    info = dict(line.split(": ", 1) for line in haproxy(container, "show info").splitlines()
                if ": " in line)
    stat = haproxy(container, "show stat").splitlines()
    head = stat[0].lstrip("# ").split(",")
    front = next(dict(zip(head, row.split(","), strict=False)) for row in stat[1:]
                 if row.startswith("mqtt,FRONTEND"))
    return {"maxconn": int(info["Maxconn"]), "maxsock": int(info["Maxsock"]),
            "ulimit_n": int(info["Ulimit-n"]), "frontend_limit": int(front["slim"])}


def restart_haproxy(container: str) -> float:
    """systemctl restart haproxy; -> seconds it took (every connection is cut)."""
    t0 = time.monotonic()
    in_host(container, "systemctl restart haproxy", timeout=60)
    return time.monotonic() - t0


def agent_active(container: str) -> bool:
    return in_host(container, "systemctl is-active roost-agent || true").strip() == "active"


def agent_back(container: str, since: float) -> float | None:
    """Epoch time of the agent's first 'connected to' log line after `since`, or None."""
    out = in_host(container, f"journalctl -u roost-agent --since @{int(since)} -o short-unix "
                  "-q --no-pager | grep 'connected to' || true")
    return next((t for t in (float(line.split()[0]) for line in out.splitlines())
                 if t >= since), None)


def short(container: str) -> str:
    """roost-scale-broker-1 -> broker-1"""
    m = re.search(r"(broker|lb|pi)-\d+$", container)
    return m.group(0) if m else container


def each(fn: Any, items: list[Any]) -> list[Any]:
    """fn over items at once (docker exec is slow on a loaded machine)."""
    with ThreadPoolExecutor(max(len(items), 1)) as pool:
        return list(pool.map(fn, items))
