"""What the monitoring role must leave on every monitoring host, and what Prometheus must
see: every broker node and every load balancer scraped with `up == 1`. Checked on the
hosts themselves, so it runs against any inventory (`make verify INVENTORY=inventory/<name>`,
and Molecule's default scenario). An inventory without a `monitoring` group has no host
to test here: pytest skips these tests (empty parameter set).

Probes only connect to the monitoring host's own loopback (Prometheus's API, the
dashboard) and, as the dashboard does, to a load balancer of the inventory (its MQTT
frontend; the dashboard's HTTPS frontend when the monitoring host is that load balancer);
Prometheus itself scrapes the inventory's own hosts.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
from probe import client_id, live_pis, other_host
from testinfra.host import Host

testinfra_hosts = ["ansible://monitoring"]

CONFIG = "/etc/prometheus/prometheus.yml"
DEFAULTS: dict[str, Any] = {
    "monitoring_listen_address": "127.0.0.1:9090",
    "monitoring_dashboard_enabled": True,
    "monitoring_dashboard_port": 8088,
    "haproxy_dashboard_port": 8443,
    "haproxy_dashboard_user": "roost",
}
KEY = "/etc/roost/tls/dashboard.key"
CERT = "/etc/roost/tls/dashboard.crt"
CA = "/etc/roost/tls/ca.crt"
ONLINE = 120  # seconds: agents report every 60 s; the dashboard may have just (re)started
FIRST_SCRAPES = 60  # seconds: a scrape interval (15 s) after a (re)start, on a busy machine

# GET a loopback URL on the host; prints {"status": N, "body": "..."} or {"error": "..."}.
GET = r"""
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as reply:
        print(json.dumps({"status": reply.status, "body": reply.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": ""}))
except OSError as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
"""


def setting(host: Host, name: str) -> Any:
    """An inventory variable of the host, else the role's default."""
    return host.ansible.get_variables().get(name, DEFAULTS[name])


def truth(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("true", "yes", "1")


def enabled(host: Host, name: str) -> bool:
    return truth(setting(host, name))


def brokers_tls(host: Host, request: pytest.FixtureRequest) -> bool:
    """Whether the brokers serve metrics over mutual TLS, from their inventory variables
    (roles/broker: broker_metrics_tls, default roost_broker_metrics_tls), as the role reads it."""
    found = set()
    for name in host.ansible.get_variables()["groups"].get("brokers", []):
        variables = other_host(request, name).ansible.get_variables()
        found.add(truth(variables.get("broker_metrics_tls",
                                      variables.get("roost_broker_metrics_tls", False))))
    return True in found


def get(host: Host, url: str) -> dict[str, Any]:
    out = host.run(f"python3 -c {shlex.quote(GET)} {shlex.quote(url)}")
    assert out.rc == 0, out.stderr
    reply: dict[str, Any] = json.loads(out.stdout)
    return reply


def api(host: Host) -> str:
    return f"http://{setting(host, 'monitoring_listen_address')}/api/v1"


def targets(host: Host) -> list[dict[str, Any]]:
    reply = get(host, f"{api(host)}/targets?state=active")
    assert reply.get("status") == 200, reply
    active: list[dict[str, Any]] = json.loads(reply["body"])["data"]["activeTargets"]
    return active


def summary(active: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{t['labels'].get('job')}/{t['labels'].get('node', t['labels'].get('instance'))}"
                  f" {t['health']} {t.get('lastError', '')}".rstrip() for t in active)


def test_prometheus_is_installed_running_and_enabled(host: Host) -> None:
    assert host.package("prometheus").is_installed
    service = host.service("prometheus")
    assert service.is_running
    assert service.is_enabled


def test_rendered_configuration_passes_promtool(host: Host) -> None:
    out = host.run(f"promtool check config {CONFIG}")
    assert out.rc == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_api_listens_where_configured_only(host: Host) -> None:
    address = str(setting(host, "monitoring_listen_address"))
    port = address.rpartition(":")[2]
    listening = host.run("ss -Hltn").stdout.split("\n")
    local = {line.split()[3] for line in listening if line.strip()}
    assert address in local, local
    assert not {a for a in local if a.rpartition(":")[2] == port} - {address}, local


def test_every_broker_and_load_balancer_is_scraped_and_up(host: Host) -> None:
    groups = host.ansible.get_variables()["groups"]
    wanted = {("roost-broker", b) for b in groups.get("brokers", [])}
    wanted |= {("haproxy", lb) for lb in groups.get("loadbalancers", [])}
    assert wanted, "no broker or load balancer in the inventory"
    deadline = time.monotonic() + FIRST_SCRAPES
    while True:
        active = targets(host)
        up = {(t["labels"].get("job"), t["labels"].get("node")) for t in active
              if t["health"] == "up"}
        if wanted <= up and all(t["health"] == "up" for t in active):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"not every target up after {FIRST_SCRAPES} s: {summary(active)}")
        time.sleep(3)
    # Exactly the inventory's hosts: nobody typed a target by hand, none is missing.
    scraped = {(t["labels"]["job"], t["labels"]["node"]) for t in active
               if t["labels"].get("job") in ("roost-broker", "haproxy")}
    assert scraped == wanted
    # ... and `up` says so too, as the alert rules read it.
    reply = get(host, f"{api(host)}/query?query=up")
    samples = json.loads(reply["body"])["data"]["result"]
    values = {(s["metric"].get("job"), s["metric"].get("node")): s["value"][1] for s in samples}
    assert all(values.get(w) == "1" for w in wanted), values


def test_alert_rules_are_loaded(host: Host) -> None:
    reply = get(host, f"{api(host)}/rules")
    assert reply.get("status") == 200, reply
    groups = json.loads(reply["body"])["data"]["groups"]
    alerts = {r["name"] for g in groups for r in g["rules"] if r.get("type") == "alerting"}
    assert {"RoostBrokerDown", "RoostBridgeDown", "RoostPiOffline"} <= alerts, alerts


def test_scrape_key_reaches_prometheus_only_as_a_credential(
        host: Host, request: pytest.FixtureRequest) -> None:
    config = host.file(CONFIG).content_string
    if not brokers_tls(host, request):
        assert "scheme: https" not in config
        pytest.skip("the brokers' metrics endpoints are plain HTTP (roost_broker_metrics_tls)")
    assert "scheme: https" in config
    name = host.ansible.get_variables()["inventory_hostname"]
    key = host.file(f"/etc/roost/tls/{name}.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    dropin = host.file("/etc/systemd/system/prometheus.service.d/roost-credentials.conf")
    assert dropin.contains(f"LoadCredential=roost-scrape.key:/etc/roost/tls/{name}.key")
    assert "/run/credentials/prometheus.service/roost-scrape.key" in config


def test_dashboard_answers_on_loopback(host: Host) -> None:
    if not enabled(host, "monitoring_dashboard_enabled"):
        pytest.skip("the dashboard is off (monitoring_dashboard_enabled)")
    assert host.service("roost-dashboard").is_running
    port = setting(host, "monitoring_dashboard_port")
    deadline = time.monotonic() + 30
    while (reply := get(host, f"http://127.0.0.1:{port}/")).get("status") != 200:
        if time.monotonic() > deadline:
            pytest.fail(f"dashboard on 127.0.0.1:{port}: {reply}")
        time.sleep(2)


# --- The dashboard as the kit deploys it: a read-only service account through the load
# balancer, published over HTTPS with a password on a load balancer that hosts it.

# GET over HTTPS, the CA's certificate checked for the host name; optional basic auth.
# Prints {"status": N, "body": "...", "auth": "WWW-Authenticate"} or {"error": "..."}.
GET_TLS = r"""
import base64, json, ssl, sys, urllib.error, urllib.request
url, ca, login = sys.argv[1:4]
request = urllib.request.Request(url)
if login:
    request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
context = ssl.create_default_context(cafile=ca)
try:
    with urllib.request.urlopen(request, timeout=10, context=context) as reply:
        print(json.dumps({"status": reply.status, "body": reply.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": "", "auth": e.headers.get("WWW-Authenticate")}))
except OSError as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
"""

# As the dashboard's account (its certificate, client id = CN), through a load balancer:
# SUBSCRIBE to what it may read and to more, PUBLISH QoS 1 to a Pi's topic and to its own
# subtree. Prints {"connect": RC, "suback": {FILTER: RC}, "puback": {TOPIC: RC}}.
ACCOUNT_PROBE = r"""
import json, sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
host, port, account, ca, cert, key, readable, wide, *topics = sys.argv[1:]
out, done = {"suback": {}, "puback": {}}, threading.Event()
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=account, protocol=mqtt.MQTTv5)
c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
acks = {}
def connected(c, u, f, rc, p):
    out["connect"] = rc.value
    if rc.is_failure:
        done.set()
        return
    mid = c.subscribe([(readable, 0), (wide, 0)])[1]
    acks[mid] = "sub"
def subscribed(c, u, mid, rcs, p):
    out["suback"] = {readable: rcs[0].value, wide: rcs[1].value}
    for topic in topics:
        acks[c.publish(topic, b"probe", qos=1).mid] = topic
def published(c, u, mid, rc, p):
    out["puback"][acks[mid]] = rc.value
    if len(out["puback"]) == len(topics):
        done.set()
c.on_connect, c.on_subscribe, c.on_publish = connected, subscribed, published
c.connect(host, int(port), keepalive=30)
c.loop_start()
done.wait(30)
c.disconnect()
c.loop_stop()
print(json.dumps(out))
"""


def dashboard_on(host: Host) -> None:
    if not enabled(host, "monitoring_dashboard_enabled"):
        pytest.skip("the dashboard is off (monitoring_dashboard_enabled)")


def variables(host: Host) -> dict[str, Any]:
    found: dict[str, Any] = host.ansible.get_variables()
    return found


def account(host: Host) -> str:
    found = variables(host)
    return str(found.get("roost_dashboard_account", f"fleet:{found['inventory_hostname']}"))


def pi_ids(host: Host, request: pytest.FixtureRequest) -> set[str]:
    """The client ids of the inventory's Pis that are not revoked (Molecule's side effect
    revokes one; a broker's copy of the CRL says which)."""
    broker = other_host(request, sorted(variables(host)["groups"]["brokers"])[0])
    return {client_id(other_host(request, name)) for name in live_pis(broker, request)}


def load_balancer(host: Host, request: pytest.FixtureRequest) -> tuple[str, int]:
    """The frontend the dashboard reads through (roles/monitoring): this host if it is a
    load balancer, else the first one."""
    found = variables(host)
    lbs = found["groups"].get("loadbalancers", [])
    name = found["inventory_hostname"] if found["inventory_hostname"] in lbs else lbs[0]
    lb_vars = other_host(request, name).ansible.get_variables()
    return str(lb_vars.get("ansible_host", name)), int(lb_vars.get("haproxy_frontend_port", 8883))


def published(host: Host) -> bool:
    """Whether this host's HAProxy publishes the dashboard (roles/haproxy's default: a load
    balancer that is also a monitoring host)."""
    found = variables(host)
    default = found["inventory_hostname"] in found["groups"].get("loadbalancers", [])
    return truth(found.get("haproxy_dashboard_enabled", default))


def password(host: Host, request: pytest.FixtureRequest) -> str:
    """The inventory's password, else the one the controller generated (roles/haproxy:
    ~/.roost/secrets/<inventory directory name>/dashboard-password)."""
    found = variables(host)
    for name in ("haproxy_dashboard_password", "vault_haproxy_dashboard_password"):
        if found.get(name):
            return str(found[name])
    inventory = Path(request.config.option.ansible_inventory)
    directory = inventory if inventory.is_dir() else inventory.parent
    path = Path(os.environ["HOME"], ".roost", "secrets", directory.name, "dashboard-password")
    return path.read_text().strip()


def get_tls(host: Host, url: str, login: str = "") -> dict[str, Any]:
    out = host.run(f"python3 -c {shlex.quote(GET_TLS)} {shlex.quote(url)} {CA} "
                   f"{shlex.quote(login)}")
    assert out.rc == 0, out.stderr
    reply: dict[str, Any] = json.loads(out.stdout)
    return reply


def test_dashboard_key_stays_here_and_names_the_account(host: Host) -> None:
    dashboard_on(host)
    key = host.file(KEY)
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    unit = host.file("/etc/systemd/system/roost-dashboard.service").content_string
    assert f"LoadCredential=dashboard.key:{KEY}" in unit
    assert f"--client-id {account(host)}" in unit and "--bind 127.0.0.1:" in unit
    # The certificate's CN is the account, for client authentication only.
    code = ("import sys; from cryptography import x509; "
            "c = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read()); "
            "print(c.subject.rfc4514_string()); "
            "print(','.join(u._name for u in c.extensions.get_extension_for_class("
            "x509.ExtendedKeyUsage).value))")
    subject, usage = host.check_output(f"python3 -c {shlex.quote(code)} {CERT}").splitlines()
    assert subject == f"CN={account(host)}"
    assert usage == "clientAuth"


def test_dashboard_lists_every_pi_of_the_inventory_online(
        host: Host, request: pytest.FixtureRequest) -> None:
    dashboard_on(host)
    wanted = pi_ids(host, request)
    assert wanted, "no Pi in the inventory"
    port = setting(host, "monitoring_dashboard_port")
    deadline = time.monotonic() + ONLINE
    while True:
        reply = get(host, f"http://127.0.0.1:{port}/api/fleet")
        view = json.loads(reply.get("body") or "{}")
        online = {p["client_id"] for p in view.get("pis", []) if p.get("state") == "online"}
        if wanted <= online:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"not every Pi online after {ONLINE} s: {view or reply}")
        time.sleep(3)
    # ... read through the load balancer as the account: one link, up, nothing refused.
    assert [b["link"] for b in view["brokers"]] == ["up"], view["brokers"]


def test_page_through_the_load_balancer_needs_the_password(
        host: Host, request: pytest.FixtureRequest) -> None:
    dashboard_on(host)
    if not published(host):
        pytest.skip("this host's HAProxy does not publish the dashboard "
                    "(haproxy_dashboard_enabled)")
    name = variables(host).get("ansible_host", variables(host)["inventory_hostname"])
    base = f"https://{name}:{setting(host, 'haproxy_dashboard_port')}"
    user = setting(host, "haproxy_dashboard_user")
    for login in ("", f"{user}:wrong-password", f"nobody:{password(host, request)}"):
        refused = get_tls(host, f"{base}/api/fleet", login)
        assert refused.get("status") == 401, (login.split(":")[0], refused)
        assert "Basic" in (refused.get("auth") or ""), refused
    login = f"{user}:{password(host, request)}"
    page = get_tls(host, f"{base}/", login)
    assert page.get("status") == 200 and "<html" in page["body"].lower(), page
    fleet = json.loads(get_tls(host, f"{base}/api/fleet", login)["body"])
    online = {p["client_id"] for p in fleet["pis"] if p["state"] == "online"}
    assert pi_ids(host, request) <= online, fleet["pis"]


def test_dashboard_account_reads_but_cannot_publish(
        host: Host, request: pytest.FixtureRequest) -> None:
    """Runs last: the probe uses the account's client id, so the dashboard stops meanwhile
    (one client id, one session) and is started again after."""
    dashboard_on(host)
    lb, port = load_balancer(host, request)
    site = str(variables(host).get("roost_site", "home"))
    pi = sorted(pi_ids(host, request))[0]
    me = account(host)
    args = [lb, str(port), me, CA, CERT, KEY, f"roost/{site}/+/status", "roost/#",
            f"roost/{site}/{pi}/status", f"roost/{site}/{me}/status", f"roost/{site}/x/cmd/y"]
    host.check_output("systemctl stop roost-dashboard")
    try:
        out = host.run(f"{shlex.quote('/opt/roost/venv/bin/python')} -c "
                       f"{shlex.quote(ACCOUNT_PROBE)} {' '.join(map(shlex.quote, args))}")
    finally:
        host.check_output("systemctl start roost-dashboard")
    assert out.rc == 0, out.stderr
    result = json.loads(out.stdout)
    assert result.get("connect") == 0, result
    # It may read the fleet's status, and nothing wider.
    assert result["suback"] == {args[6]: 0, "roost/#": 0x87}, result
    # Every publish is refused (0x87 not authorized), its own subtree included.
    assert result["puback"] == dict.fromkeys(args[8:], 0x87), result
