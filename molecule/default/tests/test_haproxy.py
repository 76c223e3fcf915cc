"""What the haproxy role must leave on every load balancer, and what HAProxy must do for
the Pis: checked on the hosts themselves, so it runs against any inventory
(`make verify INVENTORY=inventory/<name>`, and Molecule's default scenario).

Probes only ever connect to the inventory's own hosts: from a load balancer to its own
frontend, and from a Pi to the load balancers, as the agent does.
"""

from __future__ import annotations

import re
import shlex
import time
from typing import Any

import pytest
from probe import client_id, closed, live_pis, mqtt, other_host, revoked_pis
from testinfra.host import Host

testinfra_hosts = ["ansible://loadbalancers"]

CONFIG = "/etc/haproxy/haproxy.cfg"
SOCKET = "/run/haproxy/admin.sock"
MASTER = "/run/haproxy-master.sock"  # Debian's haproxy.service: -S /run/haproxy-master.sock
SHOW_PROC = f"echo 'show proc' | socat stdio {MASTER}"
TLS = "/etc/roost/tls"
DEFAULTS = {"haproxy_frontend_port": 8883, "haproxy_metrics_port": 8405,
            "haproxy_peers_port": 8406, "haproxy_dashboard_port": 8443}
CHECK_SETTLE = 40  # seconds: fall 3 x inter 5 s, rise 2, plus a slow broker start

def setting(host: Host, name: str) -> Any:
    """An inventory value for the host, else the role's default."""
    return host.ansible.get_variables().get(name, DEFAULTS[name])


def termination(host: Host) -> bool:
    """TLS ends at the MQTT frontend (the dashboard's HTTPS frontend always ends it)."""
    mqtt = host.file(CONFIG).content_string.partition("frontend mqtt")[2].partition("\nbackend ")[0]
    return " ssl crt " in mqtt


def dashboard(host: Host) -> bool:
    """Whether the role publishes the fleet dashboard here: by default on a load balancer
    that is also a monitoring host with the dashboard on (roles/haproxy)."""
    found = host.ansible.get_variables()
    on = str(found.get("monitoring_dashboard_enabled", True)).lower() in ("true", "yes", "1")
    default = on and found["inventory_hostname"] in found["groups"].get("monitoring", [])
    return str(found.get("haproxy_dashboard_enabled", default)).lower() in ("true", "yes", "1")


def runtime_api(host: Host, command: str) -> str:
    return str(host.check_output(f"echo {shlex.quote(command)} | socat stdio {SOCKET}"))


def proc(text: str) -> dict[str, list[int]]:
    """The master's `show proc` read: PIDs of the current and of the old workers (still
    serving the connections they had before a reload)."""
    found: dict[str, list[int]] = {"worker": [], "old": []}
    section = "worker"
    for line in text.splitlines():
        if line.startswith("# old workers"):
            section = "old"
        elif line.startswith("# programs"):
            section = ""
        elif section and line.split()[1:2] == ["worker"]:
            found[section].append(int(line.split()[0]))
    return found


def workers(host: Host) -> dict[str, list[int]]:
    return proc(host.check_output(SHOW_PROC))


def mqtt_sessions(host: Host, min_age: int = 0) -> set[tuple[str, str]]:
    """(client address, broker) of every MQTT connection at least min_age seconds old,
    in every worker, old or new."""
    pids = [pid for group in workers(host).values() for pid in group]
    out = "".join(host.check_output(f"echo '@!{pid} show sess' | socat stdio {MASTER}")
                  for pid in pids)
    # "... src=ADDR:PORT fe=mqtt be=brokers srv=NAME ts=.. epoch=.. age=1h2m3s ..."
    found = set()
    for src, srv, age in re.findall(
            r"src=(\S+) fe=mqtt be=brokers srv=(\S+) .*?age=(\S+)", out):
        seconds = sum(int(n) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
                      for n, unit in re.findall(r"(\d+)([dhms])", age))
        if seconds >= min_age:
            found.add((src, srv))
    return found


def address(host: Host) -> str:
    variables = host.ansible.get_variables()
    return str(variables.get("ansible_host") or variables["inventory_hostname"])


def test_haproxy_is_installed_running_and_enabled(host: Host) -> None:
    assert host.package("haproxy").is_installed
    service = host.service("haproxy")
    assert service.is_enabled
    assert service.is_running


def test_configuration_is_valid_and_private(host: Host) -> None:
    config = host.file(CONFIG)
    assert (config.user, config.group, config.mode) == ("root", "haproxy", 0o640)
    assert host.run(f"haproxy -c -q -f {CONFIG}").rc == 0
    assert "mode tcp" in config.content_string


def test_listens_on_the_mqtt_and_exporter_ports_only(host: Host) -> None:
    """Plus, in termination mode, the loopback peers port that carries the stick table
    across a reload, and the fleet dashboard's HTTPS port on a monitoring host."""
    ports: set[tuple[str | None, int]] = {(None, setting(host, "haproxy_frontend_port")),
                                          (None, setting(host, "haproxy_metrics_port"))}
    if termination(host):
        ports.add(("127.0.0.1", setting(host, "haproxy_peers_port")))
    if dashboard(host):
        ports.add((None, setting(host, "haproxy_dashboard_port")))
    lines = host.check_output("ss -Hlntup").splitlines()
    haproxy = [line.split()[4].rsplit(":", 1) for line in lines if '"haproxy"' in line]
    bound = {(addr if addr == "127.0.0.1" else None, int(port)) for addr, port in haproxy}
    assert bound == ports, haproxy


def test_runtime_api_is_a_local_socket(host: Host) -> None:
    sock = host.file(SOCKET)
    assert sock.is_socket
    assert sock.mode == 0o660
    assert "Name: HAProxy" in runtime_api(host, "show info")


def test_every_broker_is_a_backend_and_up(host: Host) -> None:
    brokers = set(host.ansible.get_variables()["groups"]["brokers"])
    deadline = time.monotonic() + CHECK_SETTLE
    while True:
        # show servers state: "be_id be_name srv_id srv_name srv_addr srv_op_state ...";
        # op state 2 is running, admin state 0 is ready.
        rows = [line.split() for line in runtime_api(host, "show servers state brokers")
                .splitlines()[1:] if line and not line.startswith("#")]
        state = {row[3]: (int(row[5]), int(row[6])) for row in rows}
        if set(state) == brokers and all(s == (2, 0) for s in state.values()):
            break
        assert time.monotonic() < deadline, f"backends not all up: {state}"
        time.sleep(2)


def test_exporter_serves_prometheus_metrics(host: Host) -> None:
    url = f"http://{address(host)}:{setting(host, 'haproxy_metrics_port')}/metrics"
    body = host.check_output(
        f"python3 -c 'import sys, urllib.request; "
        f"sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "
        f"{shlex.quote(url)}")
    assert re.search(r'^haproxy_backend_active_servers\{proxy="brokers"\} [1-9]', body, re.M)


def test_plaintext_mqtt_is_refused(host: Host) -> None:
    result = mqtt(host, "127.0.0.1", setting(host, "haproxy_frontend_port"),
                  [["connect", "probe"]], tls=False)
    assert closed(result), result


def test_tls_without_a_client_certificate_is_refused(host: Host) -> None:
    result = mqtt(host, "127.0.0.1", setting(host, "haproxy_frontend_port"),
                  [["connect", "probe"]], cert=False)
    assert result != [0], result


def test_a_pi_certificate_reaches_a_broker_through_the_load_balancer(
        host: Host, request: pytest.FixtureRequest) -> None:
    # The Pi's own certificate with a client id that is not its CN: a broker must answer
    # with CONNACK 0x87, not authorized (the client id must be the certificate's identity):
    # TLS, the PROXY header and MQTT all went through, and the Pi agent's session is left
    # alone.
    pis = live_pis(host, request)
    if not pis:
        pytest.skip("no Pi in the inventory, or all revoked")
    result = mqtt(other_host(request, pis[0]), address(host),
                  setting(host, "haproxy_frontend_port"), [["connect", "roost-lb-probe"]])
    assert result == [0x87], result


def test_every_pi_agent_is_connected_through_a_load_balancer(
        host: Host, request: pytest.FixtureRequest) -> None:
    """Every Pi that is not revoked has an MQTT connection through one of the load
    balancers (the agent's own StatusText is not trusted: it may lag a lost link)."""
    variables = host.ansible.get_variables()
    pis = live_pis(host, request)
    if not pis:
        pytest.skip("no Pi in the inventory, or all revoked")
    lbs = [other_host(request, lb) for lb in variables["groups"]["loadbalancers"]]
    addresses = {name: set(other_host(request, name).check_output("hostname -I").split())
                 for name in pis}
    deadline = time.monotonic() + 90  # the agent's backoff is capped at 60 s
    while True:
        sources = {src.rsplit(":", 1)[0].strip("[]") for lb in lbs for src, _ in mqtt_sessions(lb)}
        missing = [name for name in pis if not addresses[name] & sources]
        if not missing:
            break
        assert time.monotonic() < deadline, f"no connection through a load balancer: {missing}"
        time.sleep(3)


def test_telemetry_through_the_load_balancer_reaches_another_broker(
        host: Host, request: pytest.FixtureRequest) -> None:
    """A Pi publishes through HAProxy to one broker; a subscriber connected straight to
    another broker node receives it: the cluster carries it across."""
    variables = host.ansible.get_variables()
    pis = live_pis(host, request)
    if not pis:
        pytest.skip("no Pi in the inventory, or all revoked")
    name = pis[0]
    pi = other_host(request, name)
    pi_id = client_id(pi)
    pi_addresses = set(pi.check_output("hostname -I").split())
    sessions = mqtt_sessions(host)
    used = {srv for src, srv in sessions if src.rsplit(":", 1)[0].strip("[]") in pi_addresses}
    assert used, f"{name} ({pi_addresses}) has no session through {host}: {sessions}"
    rows = [line.split() for line in runtime_api(host, "show servers state brokers")
            .splitlines()[1:] if line and not line.startswith("#")]
    others = [(row[3], row[4]) for row in rows if row[3] not in used]
    if not others:
        pytest.skip("one broker only: no other node to subscribe on")
    broker, broker_address = others[0]
    # Straight to that broker as a load balancer does (PROXY v2 LOCAL, its certificate).
    result = mqtt(host, broker_address, variables.get("roost_broker_port", 8883), [
        ["connect", variables["inventory_hostname"]],
        ["sub", f"roost/+/{pi_id}/telemetry/#"],
        ["recv", "90"],
    ], proxy=True)
    assert result[0] == 0, (broker, result)
    if result[1] >= 0x80:
        pytest.skip(f"the brokers' ACL does not let {variables['inventory_hostname']} read "
                    "telemetry (grant it read on roost/+/+/telemetry/# to run this test)")
    assert result[2], (broker, "no telemetry within 90 s", result)
    assert result[2][0][0].split("/")[2] == pi_id, result


def test_a_reload_keeps_established_connections(host: Host) -> None:
    before = mqtt_sessions(host, min_age=10)  # not a connection being refused right now
    if not before:
        pytest.skip("no MQTT connection through this load balancer to watch")
    old = set(workers(host)["worker"])
    host.check_output("systemctl reload haproxy.service")
    deadline = time.monotonic() + 30
    while True:  # until the master has a new worker
        # The master re-executes itself on a reload: for that moment its socket refuses.
        shown = host.run(SHOW_PROC)
        if shown.rc == 0 and not old & set(proc(shown.stdout)["worker"]):
            break
        assert time.monotonic() < deadline, (shown.stdout, shown.stderr)
        time.sleep(1)
    after = mqtt_sessions(host)
    assert before <= after, f"connections lost in the reload: {before - after}"


def test_a_reload_keeps_the_stick_table(host: Host) -> None:
    """Termination mode: which broker holds which client id survives a reload."""
    if not termination(host):
        pytest.skip("passthrough balances by source address: no stick table")

    def table() -> set[str]:
        # "0x...: key=pi-1 use=0 exp=86390410 server_id=1 server_key=broker-1"
        return set(re.findall(r"key=(\S+) .*server_key=(\S+)",
                              runtime_api(host, "show table brokers")))

    before = table()
    if not before:
        pytest.skip("the stick table is empty")
    host.check_output("systemctl reload haproxy.service")
    deadline = time.monotonic() + 30
    while not before <= table():
        assert time.monotonic() < deadline, f"lost in the reload: {before - table()}"
        time.sleep(1)


def test_revoked_pis_cannot_connect(host: Host, request: pytest.FixtureRequest) -> None:
    """Pis revoked by playbooks/revoke.yml (their certificate's serial is in the load
    balancer's CRL; Molecule's side effect revokes molecule-pi-3): their own certificate
    and client id get no session, and the agent's session from before the revocation is
    gone (the brokers, or HAProxy in termination mode, cut it at the reload)."""
    revoked = revoked_pis(host, request)
    if not revoked:
        pytest.skip("no Pi is revoked (playbooks/revoke.yml -e host=<pi> revokes one)")
    port = setting(host, "haproxy_frontend_port")
    lasting = {src.rsplit(":", 1)[0].strip("[]") for src, _ in mqtt_sessions(host, min_age=10)}
    for name in revoked:
        pi = other_host(request, name)
        result = mqtt(pi, address(host), port, [["connect", client_id(pi)]])
        assert closed(result), (name, result)
        assert not lasting & set(pi.check_output("hostname -I").split()), (name, lasting)
