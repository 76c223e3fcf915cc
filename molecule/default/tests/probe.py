"""The verify suite's raw MQTT client and the host lookups its probes need, shared by
test_broker.py and test_haproxy.py. Probes run on the inventory's own hosts, with the
host's own certificate (no key leaves its host), and connect only to the inventory's
load balancers and brokers.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
import testinfra
from testinfra.host import Host

# A synchronous MQTT 5 client on the standard library: runs the steps given as JSON and
# prints one JSON result per step. Steps: ["connect", CLIENT_ID] -> CONNACK reason (or
# "closed"/"error: ..."), ["sub", FILTER] -> SUBACK reason, ["pub", TOPIC, PAYLOAD] ->
# PUBACK reason (QoS 1), ["recv", SECONDS] -> [[topic, payload], ...] received meanwhile
# (it returns at the first message). With `proxy` it first sends a PROXY v2 LOCAL header,
# as a load balancer's own connection to a broker does.
CLIENT = r"""
import json, socket, ssl, sys, time
host, port, tls, ca, cert, key, steps, proxy = sys.argv[1:9]
def varint(n):
    out = b""
    while True:
        n, d = divmod(n, 128)
        out += bytes([d | (128 if n else 0)])
        if not n:
            return out
def s(b):
    return len(b).to_bytes(2, "big") + b
sock = None
pid = 0
def send(first, body):
    sock.sendall(bytes([first]) + varint(len(body)) + body)
def read(n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
def packet():
    first = read(1)[0]
    length, shift = 0, 0
    while True:
        b = read(1)[0]
        length |= (b & 127) << shift
        shift += 7
        if b < 128:
            break
    return first, read(length)
def wait_for(kind):
    while True:
        first, body = packet()
        if first >> 4 == kind:
            return body
        if first >> 4 == 3:
            received.append(decode_publish(first, body))
        if first >> 4 == 14:
            raise EOFError
def decode_publish(first, body):
    n = int.from_bytes(body[:2], "big")
    topic = body[2:2 + n].decode()
    at = 2 + n + (2 if first & 6 else 0)
    plen, shift = 0, 0
    while True:
        b = body[at]; at += 1
        plen |= (b & 127) << shift
        shift += 7
        if b < 128:
            break
    if first & 6:
        send(0x40, body[2 + n:4 + n])  # PUBACK
    return [topic, body[at + plen:].decode()]
received = []
results = []
for step in json.loads(steps):
    try:
        if step[0] == "connect":
            raw = socket.create_connection((host, int(port)), timeout=10)
            if proxy:
                raw.sendall(b"\r\n\r\n\x00\r\nQUIT\n" + b"\x20\x00\x00\x00")  # PROXY v2 LOCAL
            if tls == "tls":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.load_verify_locations(ca)
                if cert:
                    ctx.load_cert_chain(cert, key)
                raw = ctx.wrap_socket(raw, server_hostname=host)
            sock = raw
            send(0x10, s(b"MQTT") + b"\x05\x02\x00\x3c\x00" + s(step[1].encode()))
            body = wait_for(2)
            results.append(body[1])
        elif step[0] == "sub":
            pid += 1
            send(0x82, pid.to_bytes(2, "big") + b"\x00" + s(step[1].encode()) + b"\x01")
            body = wait_for(9)
            results.append(body[3 if body[2] == 0 else 2 + 1 + body[2]])
        elif step[0] == "pub":
            pid += 1
            send(0x32, s(step[1].encode()) + pid.to_bytes(2, "big") + b"\x00" + step[2].encode())
            body = wait_for(4)
            results.append(body[2] if len(body) > 2 else 0)
        elif step[0] == "recv":
            end = time.monotonic() + float(step[1])
            while time.monotonic() < end and not received:
                sock.settimeout(max(0.1, end - time.monotonic()))
                try:
                    first, body = packet()
                except socket.timeout:
                    break
                if first >> 4 == 3:
                    received.append(decode_publish(first, body))
            results.append(received[:])
            received.clear()
    except (OSError, EOFError, ssl.SSLError) as e:
        results.append("closed" if isinstance(e, EOFError) else f"error: {type(e).__name__}: {e}")
        break
print(json.dumps(results))
"""


def other_host(request: pytest.FixtureRequest, name: str) -> Host:
    """Another host of the inventory under test."""
    return testinfra.get_host(
        f"ansible://{name}", ansible_inventory=request.config.option.ansible_inventory)


def tls_files(host: Host) -> dict[str, Any]:
    """The host's TLS paths (ca, cert, key, crl), from the pki role's local fact."""
    fact: dict[str, Any] = json.loads(
        host.file("/etc/ansible/facts.d/roost_pki.fact").content_string)
    return fact


def client_id(pi: Host) -> str:
    variables = pi.ansible.get_variables()
    return str(variables.get("roost_client_id", variables["inventory_hostname"]))


def client_command(target: str, port: int, steps: list[list[str]], files: dict[str, Any], *,
                   tls: bool = True, cert: bool = True, proxy: bool = False) -> str:
    """The shell command that runs CLIENT with these TLS files against target:port."""
    args = [target, port, "tls" if tls else "plain", files["ca"],
            files["cert"] if cert else "", files["key"] if cert else "", json.dumps(steps),
            "v2" if proxy else ""]
    return f"/usr/bin/python3 -c {shlex.quote(CLIENT)} " + " ".join(
        shlex.quote(str(a)) for a in args)


def mqtt(host: Host, target: str, port: int, steps: list[list[str]], *,
         files: dict[str, Any] | None = None, tls: bool = True, cert: bool = True,
         proxy: bool = False) -> list[Any]:
    """Run CLIENT on host, with its own certificate unless other files (on that host) are
    given, or with none (cert=False); one result per step."""
    command = client_command(target, port, steps, files or tls_files(host),
                             tls=tls, cert=cert, proxy=proxy)
    result: list[Any] = json.loads(host.check_output(command))
    return result


def closed(result: list[Any]) -> bool:
    """The connection ended (closed, or a TLS or socket error) before any CONNACK."""
    return isinstance(result[0], str)


def is_revoked(crl_host: Host, pi: Host) -> bool:
    """The Pi's certificate serial is in crl_host's copy of the CRL."""
    crl = crl_host.check_output(f"openssl crl -noout -text -in {tls_files(crl_host)['crl']}")
    serial = pi.check_output(f"openssl x509 -noout -serial -in {tls_files(pi)['cert']}")
    return serial.split("=", 1)[1].upper() in re.findall(r"Serial Number: ([0-9A-F]+)", crl)


def live_pis(crl_host: Host, request: pytest.FixtureRequest) -> list[str]:
    """The inventory's Pis that are not revoked, sorted."""
    pis = crl_host.ansible.get_variables()["groups"].get("pis", [])
    return sorted(name for name in pis if not is_revoked(crl_host, other_host(request, name)))


def revoked_pis(crl_host: Host, request: pytest.FixtureRequest) -> list[str]:
    """The inventory's Pis whose certificate is revoked, sorted."""
    pis = crl_host.ansible.get_variables()["groups"].get("pis", [])
    return sorted(name for name in pis if is_revoked(crl_host, other_host(request, name)))
