"""The dashboard on a listener that wants the certificate's CN as client id (the kit's
devices listener): Roost's own broker over mutual TLS with the kit's ACL for a dashboard
account. Without `--client-id` the broker refuses it; with its CN it reads the fleet."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.harness import AgentProc, agent_toml
from agent.pki import Pki
from secure.broker import Broker

from .harness import WAIT, dashboard, get_json, wait_fleet

pytestmark = pytest.mark.interop

ACCOUNT = "fleet:mon-1"
# As roles/broker renders it for a monitoring host (templates/acl.j2).
ACL = f"""\
pattern readwrite roost/lab/%c/#

user {ACCOUNT}
topic deny roost/+/{ACCOUNT}/#
topic read roost/lab/+/status
topic read roost/lab/+/telemetry/#
topic read $SYS/broker/#
"""


def start(tmp_path: Path, pki: Pki) -> Broker:
    server = pki.issue("broker", server=True)
    (tmp_path / "acl").write_text(ACL)
    config = tmp_path / "broker.toml"
    config.write_text(f"""\
acl_file = "{tmp_path / 'acl'}"
sys_interval = 1

[[listener]]
bind = "127.0.0.1:0"
tls = {{ cert = "{server.cert}", key = "{server.key}", ca = "{pki.ca}" }}
""")
    return Broker(config)


def test_the_certificate_cn_as_client_id_reads_the_fleet_and_a_random_one_is_refused(
        tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    broker = start(tmp_path, pki)
    port = broker.ports[0]
    ident = pki.issue(ACCOUNT)
    tls = ("--tls-ca", str(pki.ca), "--tls-cert", str(ident.cert), "--tls-key", str(ident.key))
    agent = AgentProc(tmp_path, agent_toml(tmp_path / "pi-1", [port], client_id="pi-1",
                                           tls=(pki.ca, pki.issue("pi-1"))))
    try:
        with dashboard(port, *tls) as url:  # a random client id
            assert broker.wait_log("is not its certificate identity 'fleet:mon-1'"), broker.text
            time.sleep(1)
            view = get_json(f"{url}/api/fleet")
            assert view["pis"] == [] and view["brokers"][0]["link"] != "up", view
        with dashboard(port, *tls, "--client-id", ACCOUNT, "--site", "lab") as url:
            pis = wait_fleet(url, lambda p: p.get("pi-1", {}).get("state") == "online",
                             "pi-1 online through the account's ACL")
            assert set(pis) == {"pi-1"}
            deadline = time.monotonic() + WAIT
            while (node := get_json(f"{url}/api/fleet")["brokers"][0])["link"] != "up":
                assert time.monotonic() < deadline, node
                time.sleep(0.1)
    finally:
        agent.stop()
        broker.stop()
