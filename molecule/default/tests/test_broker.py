"""What the `broker` role must leave on every broker node, and what the brokers must do
for (and against) the Pis: checked on the hosts themselves, with real TLS and MQTT.

The devices' listener requires a PROXY v2 header from a load balancer (HAProxy in TLS
passthrough). The MQTT tests therefore run a small relay on a load balancer that does
what HAProxy does, a PROXY v2 header then the bytes as they come, one port per broker;
the Pis connect through it with their own certificates, so no key leaves its host. The
relay runs only during this module, on the scenario's own containers.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from typing import Any

import pytest
from probe import (
    client_command,
    client_id,
    closed,
    live_pis,
    mqtt,
    other_host,
    revoked_pis,
    tls_files,
)
from testinfra.host import Host

testinfra_hosts = ["ansible://brokers"]

UNIT = "roost-broker.service"
TLS = "/etc/roost/tls"
SITE = "home"
PORTS = {"devices": 8883, "cluster": 8884, "metrics": 9883}
RELAY_BASE = 18800  # relay port for the i-th broker: RELAY_BASE + i
MAX_EXPOSURE = 2.5

# A TCP relay that sends a PROXY v2 header (the client's and the relay's addresses), then
# copies bytes both ways: HAProxy's `send-proxy-v2` in TLS passthrough, in 30 lines.
RELAY = r"""
import asyncio, ipaddress, socket, sys
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except OSError:
        pass
    finally:
        w.close()
def handler(target, port):
    async def handle(r, w):
        src, dst = w.get_extra_info("peername"), w.get_extra_info("sockname")
        header = (SIG + b"\x21\x11" + (12).to_bytes(2, "big")
                  + ipaddress.IPv4Address(src[0]).packed + ipaddress.IPv4Address(dst[0]).packed
                  + src[1].to_bytes(2, "big") + dst[1].to_bytes(2, "big"))
        try:
            br, bw = await asyncio.open_connection(target, port)
        except OSError:
            w.close()
            return
        bw.write(header)
        await asyncio.gather(pipe(r, bw), pipe(br, w))
    return handle
async def main():
    bind = sys.argv[1]
    servers = []
    for spec in sys.argv[2:]:
        listen, target, port = spec.split(":")
        servers.append(await asyncio.start_server(handler(target, int(port)), bind, int(listen)))
    await asyncio.sleep(600)  # bounded: the test stops it long before
asyncio.run(main())
"""


def name_of(host: Host) -> str:
    return str(host.ansible.get_variables()["inventory_hostname"])


def groups(host: Host) -> dict[str, list[str]]:
    return dict(host.ansible.get_variables()["groups"])


def address(host: Host) -> str:
    return str(host.ansible("setup", "gather_subset=!all,network")
               ["ansible_facts"]["ansible_default_ipv4"]["address"])


def show(host: Host, prop: str) -> str:
    return str(host.check_output(f"systemctl show -p {prop} --value {UNIT}"))


class Lab:
    """The relay on the first load balancer, the two Pis whose agents it paused (the
    first two that are not revoked) and the revoked Pis (playbooks/revoke.yml)."""

    def __init__(self, request: pytest.FixtureRequest, host: Host) -> None:
        names = groups(host)
        self.brokers = sorted(names["brokers"])
        self.lb = other_host(request, names["loadbalancers"][0])
        self.pis = [other_host(request, n) for n in live_pis(host, request)[:2]]
        self.ids = [client_id(p) for p in self.pis]
        self.revoked = [other_host(request, n) for n in revoked_pis(host, request)]
        self.lb_address = address(self.lb)
        self.addresses = {b: address(other_host(request, b)) for b in self.brokers}

    def port(self, broker: str) -> int:
        return RELAY_BASE + self.brokers.index(broker)


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, host: Host) -> Iterator[Lab]:
    lab = Lab(request, host)
    if len(lab.pis) < 2:
        pytest.skip("the ACL tests need two Pis")
    specs = [f"{lab.port(b)}:{lab.addresses[b]}:{PORTS['devices']}" for b in lab.brokers]
    lab.lb.run("systemctl stop roost-test-relay.service")
    lab.lb.check_output(
        "systemd-run --unit roost-test-relay --property RuntimeMaxSec=900 /usr/bin/python3 -c "
        + shlex.quote(RELAY) + " " + lab.lb_address + " " + " ".join(specs))
    # The agents own the Pis' client ids: pause them, or they and the probes would take
    # over each other's sessions.
    for pi in lab.pis:
        pi.run("systemctl stop roost-agent.service")
    deadline = time.monotonic() + 30
    while lab.lb.run(f"ss -Htln 'sport = :{lab.port(lab.brokers[-1])}' | grep -q .").rc:
        assert time.monotonic() < deadline, "the relay did not start"
        time.sleep(0.5)
    yield lab
    lab.lb.run("systemctl stop roost-test-relay.service")
    for pi in lab.pis:
        pi.run("systemctl start roost-agent.service")


# --- the node itself ----------------------------------------------------------------


def test_broker_is_enabled_active_and_sent_ready(host: Host) -> None:
    service = host.service("roost-broker")
    assert service.is_enabled
    assert service.is_running
    assert show(host, "Type") == "notify"  # active means READY=1 arrived
    assert show(host, "WatchdogUSec") == "30s"
    assert show(host, "NRestarts") == "0"


def test_broker_runs_as_roost_from_the_root_owned_venv(host: Host) -> None:
    pid = show(host, "MainPID")
    assert host.check_output(f"ps -o user= -p {pid}") == "roost"
    assert host.run("runuser -u roost -- touch /opt/roost/venv/probe").rc != 0


def test_listens_on_its_three_ports_only(host: Host) -> None:
    pid = show(host, "MainPID")
    lines = host.check_output("ss -Htlnp").splitlines()
    mine = sorted({int(line.split()[3].rsplit(":", 1)[1])
                   for line in lines if f"pid={pid}," in line})
    assert mine == sorted(PORTS.values())
    everything = {int(line.split()[3].rsplit(":", 1)[1]) for line in lines}
    assert 1883 not in everything
    metrics = [line.split()[3] for line in lines if line.split()[3].endswith(":9883")]
    assert metrics == [f"{address(host)}:9883"]  # the node's address, not every interface


def test_node_key_is_roots_and_reaches_the_broker_only_as_a_credential(host: Host) -> None:
    name = name_of(host)
    key = host.file(f"{TLS}/{name}.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert host.run(f"runuser -u roost -- cat {TLS}/{name}.key").rc != 0
    unit = host.file("/etc/systemd/system/roost-broker.service").content_string
    assert f"LoadCredential=node.key:{TLS}/{name}.key" in unit
    cert = host.file(f"{TLS}/{name}.crt")
    assert (cert.user, cert.mode) == ("root", 0o644)
    assert host.file(f"{TLS}/crl.pem").mode == 0o644


def test_node_certificate_chains_to_the_ca_with_its_node_name(host: Host) -> None:
    name = name_of(host)
    assert host.check_output(
        f"openssl verify -CAfile {TLS}/ca.crt -crl_check -CRLfile {TLS}/crl.pem {TLS}/{name}.crt"
    ).endswith(": OK")
    subject = host.check_output(
        f"openssl x509 -noout -subject -nameopt RFC2253 -in {TLS}/{name}.crt")
    assert subject == f"subject=CN=node:{name}"
    sans = host.check_output(f"openssl x509 -noout -ext subjectAltName -in {TLS}/{name}.crt")
    assert f"IP Address:{address(host)}" in sans  # where its peers connect


def test_config_and_acl_come_from_the_inventory(host: Host) -> None:
    config = host.file("/etc/roost/broker.toml")
    assert (config.user, config.group, config.mode) == ("root", "roost", 0o640)
    assert host.run("/opt/roost/venv/bin/roost broker check-config /etc/roost/broker.toml").rc == 0
    text = config.content_string
    assert 'proxy_protocol = "v2"' in text
    assert "allow_anonymous = false" in text
    acl = host.file("/etc/roost/acl")
    assert (acl.user, acl.group, acl.mode) == ("root", "roost", 0o640)
    assert f"pattern readwrite roost/{SITE}/%c/#" in acl.content_string


def test_cluster_peers_are_the_other_brokers(host: Host) -> None:
    text = host.file("/etc/roost/broker.toml").content_string
    name = name_of(host)
    assert f'node = "{name}"' in text
    for peer in groups(host)["brokers"]:
        assert (f'name = "{peer}"' in text) == (peer != name), peer


def healthz(host: Host) -> dict[str, Any]:
    out = host.check_output(
        "python3 -c " + shlex.quote(
            "import json, urllib.request; r = urllib.request.urlopen("
            f"'http://{address(host)}:{PORTS['metrics']}/healthz', timeout=5); "
            "print(json.dumps({'status': r.status, 'body': r.read().decode()}))"))
    result: dict[str, Any] = json.loads(out)
    return result


def test_healthz_says_accepting_and_every_bridge_is_up(host: Host) -> None:
    health = healthz(host)
    assert health["status"] == 200, health
    body = json.loads(health["body"])
    assert body["accepting"] is True, body
    peers = sorted(set(groups(host)["brokers"]) - {name_of(host)})
    deadline = time.monotonic() + 60  # a peer restarted last may still be reconnecting
    while sorted(b for b, up in body["bridges"].items() if up) != peers:
        assert time.monotonic() < deadline, body
        time.sleep(2)
        body = json.loads(healthz(host)["body"])


def test_unit_is_hardened(host: Host) -> None:
    assert show(host, "NoNewPrivileges") == "yes"
    assert show(host, "ProtectSystem") == "strict"
    assert show(host, "CapabilityBoundingSet") == ""
    exposure = host.check_output(f"systemd-analyze security {UNIT} | tail -1")
    assert float(exposure.split()[-3]) <= MAX_EXPOSURE, exposure


# --- what a Pi can and cannot do -----------------------------------------------------


def test_pi_is_refused_without_the_load_balancers_proxy_header(
        host: Host, lab: Lab) -> None:
    # Straight to the broker: the Pi is no trusted proxy, so the broker closes the socket.
    target = lab.addresses[name_of(host)]
    result = mqtt(lab.pis[0], target, PORTS["devices"], [["connect", lab.ids[0]]])
    assert closed(result), result


def test_pi_connects_with_its_certificate_through_a_proxy(host: Host, lab: Lab) -> None:
    result = mqtt(lab.pis[0], lab.lb_address, lab.port(name_of(host)),
                  [["connect", lab.ids[0]]])
    assert result == [0], result


def test_client_id_must_be_the_certificates_name(host: Host, lab: Lab) -> None:
    result = mqtt(lab.pis[0], lab.lb_address, lab.port(name_of(host)),
                  [["connect", lab.ids[1]]])
    assert result != [0], result


def test_anonymous_and_plaintext_are_refused(host: Host, lab: Lab) -> None:
    port = lab.port(name_of(host))
    anonymous = mqtt(lab.pis[0], lab.lb_address, port, [["connect", "anon"]], cert=False)
    assert closed(anonymous), anonymous
    plain = mqtt(lab.pis[0], lab.lb_address, port, [["connect", "plain"]], tls=False)
    assert closed(plain), plain


def test_pi_uses_its_own_topics_only(host: Host, lab: Lab) -> None:
    me, them = lab.ids
    mine, theirs = f"roost/{SITE}/{me}", f"roost/{SITE}/{them}"
    result = mqtt(lab.pis[0], lab.lb_address, lab.port(name_of(host)), [
        ["connect", me],
        ["sub", f"{mine}/probe/#"],      # granted QoS 1 (the agent's retained topics aside)
        ["sub", f"{theirs}/#"],          # 0x87 not authorized
        ["sub", f"roost/{SITE}/+/status"],  # wider than its own topics
        ["sub", "#"],
        ["pub", f"{mine}/probe/own", "ok"],             # delivered to itself
        ["pub", f"{theirs}/telemetry/probe", "intrusion"],  # 0x87
        ["pub", f"{theirs}/cmd/reboot", "intrusion"],
        ["recv", "2"],
    ])
    assert result[:8] == [0, 1, 0x87, 0x87, 0x87, 0, 0x87, 0x87], result
    assert result[8] == [[f"{mine}/probe/own", "ok"]], result


def needs_acl_extra(lab: Lab) -> None:
    """molecule/default/host_vars gives the second Pi write on the first Pi's commands; an
    inventory without such an extra (a lab's) cannot run the tests that use it."""
    rule = f"write roost/{SITE}/{lab.ids[0]}/cmd/#"
    if rule not in lab.pis[1].ansible.get_variables().get("broker_acl_host_rules", []):
        pytest.skip(f"{lab.ids[1]} has no broker_acl_host_rules entry {rule!r} "
                    "(molecule/default/host_vars has one)")


def test_per_host_acl_extra_is_granted_and_nothing_more(host: Host, lab: Lab) -> None:
    # molecule/default/host_vars: the second Pi may write the first Pi's commands only.
    needs_acl_extra(lab)
    first, second = lab.ids
    acl = host.file("/etc/roost/acl").content_string
    assert f"user {second}\ntopic write roost/{SITE}/{first}/cmd/#" in acl
    result = mqtt(lab.pis[1], lab.lb_address, lab.port(name_of(host)), [
        ["connect", second],
        ["pub", f"roost/{SITE}/{first}/cmd/ping", "hello"],
        ["pub", f"roost/{SITE}/{first}/telemetry/fake", "lie"],
        ["sub", f"roost/{SITE}/{first}/cmd/#"],
    ])
    assert result[:3] == [0, 0x10, 0x87] or result[:3] == [0, 0, 0x87], result
    assert result[3] == 0x87, result


def test_a_message_crosses_the_cluster(host: Host, lab: Lab) -> None:
    # The first Pi subscribes to its commands on the next broker; the second Pi (allowed
    # by its ACL extra) publishes one through this broker: the bridge must carry it over.
    needs_acl_extra(lab)
    first, second = lab.ids
    here = name_of(host)
    there = lab.brokers[(lab.brokers.index(here) + 1) % len(lab.brokers)]
    topic = f"roost/{SITE}/{first}/cmd/cross-{here}"
    command = client_command(
        lab.lb_address, lab.port(there),
        [["connect", first], ["sub", f"roost/{SITE}/{first}/cmd/#"], ["recv", "25"]],
        tls_files(lab.pis[0]))
    out = "/run/roost-test-sub.json"
    lab.pis[0].run("systemctl stop roost-test-sub.service; "
                   "systemctl reset-failed roost-test-sub.service")
    lab.pis[0].check_output(
        f"rm -f {out}; systemd-run --unit roost-test-sub --property RuntimeMaxSec=60 "
        f"--property StandardOutput=file:{out} {command}")
    time.sleep(3)  # connected and subscribed, and the subscription known on every node
    sent = mqtt(lab.pis[1], lab.lb_address, lab.port(here),
                [["connect", second], ["pub", topic, "across"]])
    assert sent[0] == 0, sent
    deadline = time.monotonic() + 40
    while lab.pis[0].run(f"test -s {out}").rc != 0:
        assert time.monotonic() < deadline, "the subscriber never finished"
        time.sleep(1)
    received = json.loads(lab.pis[0].file(out).content_string)
    assert received[:2] == [0, 1], received
    assert received[2] == [[topic, "across"]], received


# --- after playbooks/revoke.yml (Molecule's side effect revokes molecule-pi-3) --------


def test_revoked_pi_is_refused_by_this_broker(host: Host, lab: Lab) -> None:
    """Straight to this node (through the relay, so the PROXY header is right): every
    broker got the CRL and re-read it, not only the one HAProxy picks for the Pi."""
    if not lab.revoked:
        pytest.skip("no Pi is revoked (playbooks/revoke.yml -e host=<pi> revokes one)")
    port = lab.port(name_of(host))
    assert mqtt(lab.pis[0], lab.lb_address, port, [["connect", lab.ids[0]]]) == [0]
    for pi in lab.revoked:
        result = mqtt(pi, lab.lb_address, port, [["connect", client_id(pi)]])
        assert closed(result), (client_id(pi), result)
