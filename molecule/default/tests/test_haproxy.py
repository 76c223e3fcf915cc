"""What the haproxy role must leave on every load balancer, and what HAProxy must do for
the Pis: checked on the hosts themselves, so it runs against any inventory
(`make verify INVENTORY=inventory/<name>`, and Molecule's default scenario).

Probes only ever connect to the inventory's own hosts: from a load balancer to its own
frontend, and from a Pi to the load balancers, as the agent does.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from typing import Any

import pytest
import testinfra
from testinfra.host import Host

testinfra_hosts = ["ansible://loadbalancers"]

CONFIG = "/etc/haproxy/haproxy.cfg"
SOCKET = "/run/haproxy/admin.sock"
MASTER = "/run/haproxy-master.sock"  # Debian's haproxy.service: -S /run/haproxy-master.sock
TLS = "/etc/roost/tls"
DEFAULTS = {"haproxy_frontend_port": 8883, "haproxy_metrics_port": 8405,
            "haproxy_peers_port": 8406}
CHECK_SETTLE = 40  # seconds: fall 3 x inter 5 s, rise 2, plus a slow broker start

# Opens a TCP connection (TLS if a CA is given, with a client certificate if one is
# given), sends an MQTT 3.1.1 CONNECT and prints what came back as JSON:
# {"outcome": "connack", "code": N} | {"outcome": "closed"} | {"outcome": "error", ...}.
PROBE = r"""
import json, socket, ssl, sys
host, port, client_id, ca, cert, key = sys.argv[1:7]
cid = client_id.encode()
var = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
packet = b"\x10" + bytes([len(var)]) + var
try:
    sock = socket.create_connection((host, int(port)), timeout=10)
    if ca:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        sock = ctx.wrap_socket(sock, server_hostname=host)
    sock.sendall(packet)
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            break
        data += chunk
    if len(data) == 4 and data[0] == 0x20:
        print(json.dumps({"outcome": "connack", "code": data[3]}))
    else:
        print(json.dumps({"outcome": "closed", "data": data.hex()}))
except (OSError, ssl.SSLError) as e:
    print(json.dumps({"outcome": "error", "error": f"{type(e).__name__}: {e}"}))
"""


# From a load balancer (the only address a broker's device listener trusts for PROXY),
# straight to one broker: PROXY v2 LOCAL, TLS with the load balancer's certificate, an
# MQTT 3.1.1 CONNECT and SUBSCRIBE; prints the first PUBLISH topic (or why none came)
# as JSON: {"outcome": "message", "topic": T} | {"outcome": "refused", ...} | ...
SUBSCRIBER = r"""
import json, socket, ssl, sys, time
host, port, client_id, topic, ca, cert, key, wait = sys.argv[1:9]

def string(text):
    data = text.encode()
    return len(data).to_bytes(2, "big") + data

def packet(kind, body):
    size, length = len(body), b""
    while True:
        byte, size = size % 128, size // 128
        length += bytes([byte | (128 if size else 0)])
        if not size:
            return bytes([kind]) + length + body

def read(sock):
    head = sock.recv(1)
    if not head:
        raise EOFError("closed")
    size, shift = 0, 0
    while True:
        byte = sock.recv(1)[0]
        size += (byte & 127) << shift
        shift += 7
        if byte < 128:
            break
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            raise EOFError("closed")
        body += chunk
    return head[0], body

try:
    raw = socket.create_connection((host, int(port)), timeout=10)
    raw.sendall(b"\r\n\r\n\x00\r\nQUIT\n" + b"\x20\x00\x00\x00")  # PROXY v2 LOCAL
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert, key)
    sock = ctx.wrap_socket(raw, server_hostname=host)
    sock.sendall(packet(0x10, string("MQTT") + b"\x04\x02\x00\x3c" + string(client_id)))
    kind, body = read(sock)
    if kind != 0x20 or body[1] != 0:
        print(json.dumps({"outcome": "refused", "connack": body.hex()}))
        sys.exit()
    sock.sendall(packet(0x82, b"\x00\x01" + string(topic) + b"\x00"))
    deadline = time.monotonic() + float(wait)
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            kind, body = read(sock)
        except TimeoutError:
            break
        if kind == 0x90 and body[2] >= 0x80:
            print(json.dumps({"outcome": "denied", "suback": body.hex()}))
            sys.exit()
        if kind & 0xF0 == 0x30:
            size = int.from_bytes(body[:2], "big")
            print(json.dumps({"outcome": "message", "topic": body[2:2 + size].decode()}))
            sys.exit()
    print(json.dumps({"outcome": "timeout"}))
except (OSError, ssl.SSLError, EOFError, IndexError) as e:
    print(json.dumps({"outcome": "error", "error": f"{type(e).__name__}: {e}"}))
"""


def setting(host: Host, name: str) -> Any:
    """An inventory value for the host, else the role's default."""
    return host.ansible.get_variables().get(name, DEFAULTS[name])


def termination(host: Host) -> bool:
    return " ssl crt " in host.file(CONFIG).content_string


def runtime_api(host: Host, command: str) -> str:
    return str(host.check_output(f"echo {shlex.quote(command)} | socat stdio {SOCKET}"))


def workers(host: Host) -> dict[str, list[int]]:
    """The master's `show proc`: PIDs of the current and of the old workers (still
    serving the connections they had before a reload)."""
    found: dict[str, list[int]] = {"worker": [], "old": []}
    section = "worker"
    for line in host.check_output(f"echo 'show proc' | socat stdio {MASTER}").splitlines():
        if line.startswith("# old workers"):
            section = "old"
        elif line.startswith("# programs"):
            section = ""
        elif section and line.split()[1:2] == ["worker"]:
            found[section].append(int(line.split()[0]))
    return found


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


def probe(host: Host, target: str, port: int, client_id: str, *, ca: str = "",
          cert: str = "", key: str = "") -> dict[str, Any]:
    args = " ".join(shlex.quote(str(a)) for a in (target, port, client_id, ca, cert, key))
    out = host.check_output(f"python3 -c {shlex.quote(PROBE)} {args}")
    result: dict[str, Any] = json.loads(out)
    return result


def other_host(request: pytest.FixtureRequest, name: str) -> Host:
    return testinfra.get_host(
        f"ansible://{name}", ansible_inventory=request.config.option.ansible_inventory)


def address(host: Host) -> str:
    variables = host.ansible.get_variables()
    return str(variables.get("ansible_host") or variables["inventory_hostname"])


def tls_files(host: Host) -> dict[str, str]:
    """The host's TLS files, from the pki role's local fact."""
    fact = json.loads(host.file("/etc/ansible/facts.d/roost_pki.fact").content_string)
    return {k: str(fact[k]) for k in ("ca", "cert", "key")}


def is_revoked(lb: Host, pi: Host) -> bool:
    """The Pi's certificate serial is in the load balancer's copy of the CRL."""
    crl = lb.check_output(f"openssl crl -noout -text -in {TLS}/crl.pem")
    serial = pi.check_output(f"openssl x509 -noout -serial -in {tls_files(pi)['cert']}")
    return serial.split("=", 1)[1].upper() in re.findall(r"Serial Number: ([0-9A-F]+)", crl)


def live_pis(lb: Host, request: pytest.FixtureRequest) -> list[str]:
    """The inventory's Pis that are not revoked."""
    pis = lb.ansible.get_variables()["groups"].get("pis", [])
    return [name for name in pis if not is_revoked(lb, other_host(request, name))]


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
    across a reload."""
    ports: set[tuple[str | None, int]] = {(None, setting(host, "haproxy_frontend_port")),
                                          (None, setting(host, "haproxy_metrics_port"))}
    if termination(host):
        ports.add(("127.0.0.1", setting(host, "haproxy_peers_port")))
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
    result = probe(host, "127.0.0.1", setting(host, "haproxy_frontend_port"), "probe")
    assert result["outcome"] != "connack", result


def test_tls_without_a_client_certificate_is_refused(host: Host) -> None:
    result = probe(host, "127.0.0.1", setting(host, "haproxy_frontend_port"), "probe",
                   ca=f"{TLS}/ca.crt")
    assert result["outcome"] != "connack" or result["code"] != 0, result


def test_a_pi_certificate_reaches_a_broker_through_the_load_balancer(
        host: Host, request: pytest.FixtureRequest) -> None:
    # The Pi's own certificate with a client id that is not its CN: a broker must answer
    # with CONNACK 5, not authorized (the client id must be the certificate's identity):
    # TLS, the PROXY header and MQTT all went through, and the Pi agent's session is left
    # alone.
    pis = live_pis(host, request)
    if not pis:
        pytest.skip("no Pi in the inventory, or all revoked")
    pi = other_host(request, pis[0])
    files = tls_files(pi)
    result = probe(pi, address(host), setting(host, "haproxy_frontend_port"),
                   "roost-lb-probe", ca=files["ca"], cert=files["cert"], key=files["key"])
    assert result == {"outcome": "connack", "code": 5}, result


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
    client_id = str(pi.ansible.get_variables().get("roost_client_id", name))
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
    files = tls_files(host)
    args = " ".join(shlex.quote(str(a)) for a in (
        broker_address, variables.get("roost_broker_port", 8883),
        variables["inventory_hostname"], f"roost/+/{client_id}/telemetry/#",
        files["ca"], files["cert"], files["key"], 90))
    result = json.loads(host.check_output(f"python3 -c {shlex.quote(SUBSCRIBER)} {args}"))
    if result["outcome"] == "denied":
        pytest.skip(f"the brokers' ACL does not let {variables['inventory_hostname']} read "
                    "telemetry (grant it read on roost/+/+/telemetry/# to run this test)")
    assert result["outcome"] == "message", (broker, result)
    assert result["topic"].split("/")[2] == client_id, result


def test_a_reload_keeps_established_connections(host: Host) -> None:
    before = mqtt_sessions(host, min_age=10)  # not a connection being refused right now
    if not before:
        pytest.skip("no MQTT connection through this load balancer to watch")
    old = set(workers(host)["worker"])
    host.check_output("systemctl reload haproxy.service")
    deadline = time.monotonic() + 30
    while old & set(workers(host)["worker"]):  # until the master has a new worker
        assert time.monotonic() < deadline, workers(host)
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
    balancer's CRL): their own certificate and client id get no session."""
    pis = host.ansible.get_variables()["groups"].get("pis", [])
    checked = 0
    for name in pis:
        pi = other_host(request, name)
        files = tls_files(pi)
        if not is_revoked(host, pi):
            continue
        client_id = str(pi.ansible.get_variables().get("roost_client_id", name))
        result = probe(pi, address(host), setting(host, "haproxy_frontend_port"), client_id,
                       ca=files["ca"], cert=files["cert"], key=files["key"])
        assert result["outcome"] != "connack" or result["code"] != 0, (name, result)
        checked += 1
    if not checked:
        pytest.skip("no Pi is revoked (playbooks/revoke.yml -e host=<pi> revokes one)")
