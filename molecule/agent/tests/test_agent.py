"""What the `agent` and `roost_package` roles must leave on a Pi, checked on the Pi."""

from __future__ import annotations

import re

from testinfra.host import Host

VENV = "/opt/roost/venv"
UNIT = "roost-agent.service"
MAX_EXPOSURE = 2.5


def _show(host: Host, prop: str) -> str:
    return str(host.check_output(f"systemctl show -p {prop} --value {UNIT}"))


def test_agent_is_enabled_active_and_sent_ready(host: Host) -> None:
    service = host.service("roost-agent")
    assert service.is_enabled
    assert service.is_running
    # Type=notify: "active" means READY=1 arrived; with no broker it keeps connecting.
    assert _show(host, "Type") == "notify"
    assert _show(host, "ActiveState") == "active"
    assert "queue" in _show(host, "StatusText")
    assert _show(host, "WatchdogUSec") == "30s"


def test_agent_runs_as_its_own_user_from_the_root_owned_venv(host: Host) -> None:
    pid = _show(host, "MainPID")
    assert host.check_output(f"ps -o user= -p {pid}") == "roost-agent"
    assert host.user("roost-agent").shell == "/usr/sbin/nologin"
    venv = host.file(VENV)
    assert (venv.user, venv.mode) == ("root", 0o755)
    assert host.run(f"runuser -u roost-agent -- {VENV}/bin/roost --help").rc == 0
    assert host.run(f"runuser -u roost-agent -- touch {VENV}/probe").rc != 0


def test_package_was_installed_offline_from_the_wheelhouse(host: Host) -> None:
    # The venv's stamp: "<sources> <extras>" (roles/roost_package); a Pi has no extras.
    stamp = host.file(f"{VENV}/roost-build").content_string.strip()
    assert re.fullmatch(r"[0-9a-f]{16}", stamp)
    builds = host.check_output("ls /opt/roost/wheelhouse").split()
    assert len(builds) == 1 and re.fullmatch(r"[0-9a-f]{16}", builds[0])
    wheels = host.check_output(f"ls /opt/roost/wheelhouse/{builds[0]}")
    assert all(w.endswith("-py3-none-any.whl") for w in wheels.split())
    # The venv holds no pip: run the wheelhouse's, as roles/roost_package's handler does.
    pip = host.check_output(f"ls /opt/roost/wheelhouse/{builds[0]}/pip-*.whl")
    assert host.run(f"{VENV}/bin/python {pip}/pip check --disable-pip-version-check").rc == 0


def test_config_comes_from_the_inventory(host: Host) -> None:
    config = host.file("/etc/roost/agent.toml")
    assert (config.user, config.group, config.mode) == ("root", "roost-agent", 0o640)
    text = config.content_string
    assert 'client_id = "molecule-agent-pi-1"' in text
    assert 'endpoints = ["127.0.0.1:8883"]' in text  # from the loadbalancers group
    assert "session_expiry = 86400" in text  # commands wait a day for an absent Pi
    assert host.run(f"{VENV}/bin/roost agent check-config /etc/roost/agent.toml").rc == 0


def test_key_reaches_the_agent_only_as_a_credential(host: Host) -> None:
    key = "/etc/roost/tls/molecule-agent-pi-1.key"
    assert host.file(key).mode == 0o600
    assert host.run(f"runuser -u roost-agent -- cat {key}").rc != 0
    unit = host.file(f"/etc/systemd/system/{UNIT}").content_string
    assert f"LoadCredential=agent.key:{key}" in unit  # `systemctl show` hides it


def test_state_directory_holds_the_queue(host: Host) -> None:
    state = host.file("/var/lib/roost-agent")
    assert (state.user, state.mode) == ("roost-agent", 0o700)
    assert host.file("/var/lib/roost-agent/queue.sqlite").exists


def test_unit_is_hardened(host: Host) -> None:
    report = host.check_output(f"systemd-analyze security --no-pager {UNIT}")
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", report)
    assert match, report
    assert float(match.group(1)) <= MAX_EXPOSURE
    assert match.group(2) == "OK"
