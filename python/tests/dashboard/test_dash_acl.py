"""The dashboard as a read-only service account: Mosquitto with mutual TLS and an ACL that
lets the `dashboard` identity read status, telemetry and $SYS and nothing else. Everything
the dashboard needs is granted; an account without $SYS access still shows the fleet, just
no broker figures (Mosquitto 2.0 grants the SUBSCRIBE and filters at delivery)."""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path
from typing import Any

import pytest

from agent.harness import AgentProc, agent_toml
from agent.pki import Pki
from interop.brokers import HOST, MOSQUITTO_READY, _spawn, free_port

from .harness import WAIT, dashboard, get_json, wait_fleet

pytestmark = pytest.mark.interop

ACL = """\
pattern readwrite roost/lab/%c/#

user dashboard
topic read roost/+/+/status
topic read roost/+/+/telemetry/#
topic read $SYS/broker/#

user no-sys
topic read roost/+/+/status
topic read roost/+/+/telemetry/#
"""


def node(url: str, want: str | None) -> dict[str, Any]:
    """The broker node once its link is up and its version is `want` (None: not readable)."""
    deadline = time.monotonic() + WAIT
    while True:
        found = get_json(f"{url}/api/fleet")["brokers"]
        if found and found[0]["link"] == "up" and (want is None or (
                found[0]["version"] or "").startswith(want)):
            return dict(found[0])
        assert time.monotonic() < deadline, f"broker node never as expected: {found}"
        time.sleep(0.1)


def test_dashboard_reads_with_a_read_only_identity_over_mutual_tls(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    server = pki.issue("broker", server=True)
    (tmp_path / "acl").write_text(ACL)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("\n".join([
        f"listener {port} {HOST}", f"user {pwd.getpwuid(os.getuid()).pw_name}",
        f"cafile {pki.ca}", f"certfile {server.cert}", f"keyfile {server.key}",
        "require_certificate true", "use_identity_as_username true",
        f"acl_file {tmp_path / 'acl'}", "log_dest stderr", "log_type all", ""]))
    broker, _ = _spawn("mosquitto", ["mosquitto", "-c", str(conf)], MOSQUITTO_READY)
    agent = AgentProc(tmp_path, agent_toml(tmp_path / "pi-1", [port], client_id="pi-1",
                                           tls=(pki.ca, pki.issue("pi-1"))))
    try:
        for name, sys_version in (("dashboard", "mosquitto"), ("no-sys", None)):
            ident = pki.issue(name)
            with dashboard(port, "--tls-ca", str(pki.ca), "--tls-cert", str(ident.cert),
                           "--tls-key", str(ident.key)) as url:
                pis = wait_fleet(url, lambda p: p.get("pi-1", {}).get("state") == "online",
                                 "pi-1 online through the ACL")
                assert pis["pi-1"]["version"]
                seen = node(url, sys_version)
                if sys_version is None:  # retained $SYS would have come with the SUBACK
                    assert (seen["version"], seen["connections"]) == (None, None)
    finally:
        agent.stop()
        broker.stop()
        print("--- mosquitto log ---\n" + "\n".join(broker.log[-30:]))
