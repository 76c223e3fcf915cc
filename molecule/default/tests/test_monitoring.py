"""What the monitoring role must leave on every monitoring host, and what Prometheus must
see: every broker node and every load balancer scraped with `up == 1`. Checked on the
hosts themselves, so it runs against any inventory (`make verify INVENTORY=inventory/<name>`,
and Molecule's default scenario). An inventory without a `monitoring` group has no host
to test here: pytest skips these tests (empty parameter set).

Probes only connect to the monitoring host's own loopback (Prometheus's API, the
dashboard); Prometheus itself scrapes the inventory's own hosts.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import pytest
import testinfra
from testinfra.host import Host

testinfra_hosts = ["ansible://monitoring"]

CONFIG = "/etc/prometheus/prometheus.yml"
DEFAULTS: dict[str, Any] = {
    "monitoring_listen_address": "127.0.0.1:9090",
    "monitoring_dashboard_enabled": False,
    "monitoring_dashboard_port": 8088,
}
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
    inventory = request.config.option.ansible_inventory
    found = set()
    for name in host.ansible.get_variables()["groups"].get("brokers", []):
        variables = testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory) \
            .ansible.get_variables()
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
        pytest.skip("the dashboard is off (monitoring_dashboard_enabled, default false)")
    assert host.service("roost-dashboard").is_running
    port = setting(host, "monitoring_dashboard_port")
    deadline = time.monotonic() + 30
    while (reply := get(host, f"http://127.0.0.1:{port}/")).get("status") != 200:
        if time.monotonic() > deadline:
            pytest.fail(f"dashboard on 127.0.0.1:{port}: {reply}")
        time.sleep(2)
