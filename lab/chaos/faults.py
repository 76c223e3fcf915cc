"""The faults, one function each: inject, wait (bounded) until the fault is removed, and
say when. Each returns (restored_at, notes)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chaos.lab import Lab, LabError, run

Result = tuple[float, dict[str, Any]]
BROKER = "roost-broker.service"


def kill_broker(lab: Lab, node: str) -> Result:
    """SIGKILL to every process of the broker unit; systemd's Restart= brings it back."""
    def restarts() -> int:
        return int(lab.sh(node, "systemctl", "show", "-p", "NRestarts", "--value", BROKER))

    before = restarts()
    lab.sh(node, "systemctl", "kill", "--signal=SIGKILL", "--kill-whom=all", BROKER)
    deadline = time.time() + 120
    while time.time() < deadline:
        if restarts() > before and lab.unit_active(node, BROKER):
            return time.time(), {"node": node}
        time.sleep(0.5)
    raise LabError(f"the broker on {node} did not come back within 120 s of SIGKILL")


def restart_haproxy(lab: Lab, lb: str) -> Result:
    lab.sh(lb, "systemctl", "restart", "haproxy.service", timeout=120)
    return time.time(), {"host": lb}


def rolling_restart(lab: Lab) -> Result:
    """Every broker restarted one at a time by the kit, each healthy before the next."""
    t0 = time.time()
    lab.playbook("playbooks/restart-brokers.yml", timeout=900)
    return time.time(), {"playbook_s": round(time.time() - t0, 1)}


def cut(lab: Lab, pi: str, seconds: float) -> Result:
    """Take the Pi off the lab network, then put it back under its name."""
    container = lab.container(pi)
    run("docker", "network", "disconnect", lab.name, container)
    try:
        time.sleep(seconds)
    finally:
        run("docker", "network", "connect", "--alias", pi, lab.name, container)
    return time.time(), {"pi": pi, "cut_s": seconds}


def revoke(lab: Lab, pi: str) -> Result:
    """The kit's revocation: CRL to brokers and load balancers, brokers reloaded."""
    t0 = time.time()
    lab.playbook("playbooks/revoke.yml", "-e", f"host={pi}", timeout=900)
    return time.time(), {"pi": pi, "playbook_s": round(time.time() - t0, 1)}


def readmit(lab: Lab, pi: str, extra_vars: Path) -> Result:
    """Undo a revocation: a new key and certificate for the Pi, and its agent restarted."""
    t0 = time.time()
    lab.playbook("playbooks/pki.yml", "playbooks/agent.yml", "--limit", pi,
                 "-e", "pki_force_renew=true", "-e", f"@{extra_vars}", timeout=900)
    return time.time(), {"pi": pi, "playbook_s": round(time.time() - t0, 1)}
