"""The monitoring role's templates rendered by real Ansible from a sample inventory, checked by
`promtool check config` / `check rules` (as the role's `validate:` does), and the alert
rules' unit tests in roles/monitoring/files/tests/ run with `promtool test rules`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "monitoring"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PROMTOOL = shutil.which("promtool")

pytestmark = [
    pytest.mark.skipif(PROMTOOL is None,
                       reason="promtool not installed (apt-get install prometheus)"),
    pytest.mark.skipif(not PLAYBOOK.exists(),
                       reason=f"no ansible-playbook next to {sys.executable}"),
]

INVENTORY = """\
all:
  children:
    brokers:
      hosts:
        broker-1: {ansible_host: 10.0.0.1}
        broker-2: {ansible_host: 10.0.0.2, roost_broker_metrics_port: 9999, roost_broker_port: 1883}
        broker-3: {}
    loadbalancers:
      hosts:
        lb-1: {ansible_host: 10.0.0.9}
    pis:
      hosts:
        pi-1: {}
        pi-2: {roost_client_id: greenhouse-north}
    monitoring:
      hosts:
        mon-1: {ansible_connection: local, ansible_python_interpreter: "PYTHON"}
""".replace("PYTHON", sys.executable)

RENDER = """\
- name: Render the monitoring role's templates as the role does
  hosts: monitoring
  gather_facts: false
  vars_files: ["{role}/defaults/main.yml", "{role}/vars/main.yml"]
  tasks:
    - name: Alert rules
      ansible.builtin.template:
        src: "{role}/templates/roost-alerts.yml.j2"
        dest: "{out}/rules/roost-alerts.yml"
        mode: "0644"
        validate: promtool check rules %s
    - name: Prometheus configuration
      ansible.builtin.template:
        src: "{role}/templates/prometheus.yml.j2"
        dest: "{out}/prometheus.yml"
        mode: "0644"
        validate: promtool check config %s
    - name: Other templates
      ansible.builtin.template:
        src: "{role}/templates/{{{{ item }}}}.j2"
        dest: "{out}/{{{{ item }}}}"
        mode: "0644"
      loop: [roost-dashboard.service, dashboard-inventory, prometheus.default]
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("monitoring")
    (out / "rules").mkdir()
    (out / "hosts.yml").write_text(INVENTORY)
    (out / "render.yml").write_text(RENDER.format(role=ROLE, out=out))
    done = subprocess.run([str(PLAYBOOK), "-i", str(out / "hosts.yml"), str(out / "render.yml"),
                           "-e", f"monitoring_rules_dir={out}/rules",
                           "-e", '{"monitoring_dashboard_enabled": true}'],
                          capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_scrape_targets_come_from_the_inventory(rendered: Path) -> None:
    config = (rendered / "prometheus.yml").read_text()
    for target in ('"10.0.0.1:9883"', '"10.0.0.2:9999"', '"broker-3:9883"', '"10.0.0.9:8405"',
                   '"127.0.0.1:8088"'):
        assert target in config
    check = subprocess.run([str(PROMTOOL), "check", "config", str(rendered / "prometheus.yml")],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "1 rule files found" in check.stdout


def test_dashboard_unit_and_inventory_come_from_the_inventory(rendered: Path) -> None:
    unit = (rendered / "roost-dashboard.service").read_text()
    # One endpoint, the load balancer's frontend, as the service account's CN.
    for arg in ("--broker 10.0.0.9:8883 ", "--bind 127.0.0.1:8088", "--site home",
                "--inventory-file /etc/roost/dashboard/inventory",
                "--tls-ca /etc/roost/tls/ca.crt", "--client-id fleet:mon-1",
                "--tls-cert /etc/roost/tls/dashboard.crt --tls-key %d/dashboard.key",
                "LoadCredential=dashboard.key:/etc/roost/tls/dashboard.key",
                "/opt/roost/venv/bin/roost fleet serve"):
        assert arg in unit
    assert unit.count("--broker") == 1 and "--username" not in unit
    ids = [ln for ln in (rendered / "dashboard-inventory").read_text().splitlines()
           if ln and not ln.startswith("#")]
    assert ids == ["pi-1", "greenhouse-north"]


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say(rendered: Path) -> None:
    tests = sorted((ROLE / "files" / "tests").glob("*.yml"))
    rules = (rendered / "rules" / "roost-alerts.yml").read_text()
    alerts = {ln.split(":", 1)[1].strip() for ln in rules.splitlines()
              if ln.strip().startswith("- alert:")}
    tested = {a for a in alerts for t in tests if f"alertname: {a}" in t.read_text()}
    assert tested == alerts, f"alerts without a unit test: {alerts - tested}"
    copies = rendered / "rules" / "tests"  # the tests load ../roost-alerts.yml
    copies.mkdir(exist_ok=True)
    for test in tests:
        shutil.copy(test, copies / test.name)
    done = subprocess.run([str(PROMTOOL), "test", "rules", *sorted(map(str, copies.iterdir()))],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(tests)
