"""What the `common` role must leave on every host, checked on the hosts themselves."""

from __future__ import annotations

import json

from testinfra.host import Host

VENV = "/opt/roost/venv"
STATE = "/var/lib/roost"


def test_service_user_is_a_locked_system_account(host: Host) -> None:
    user = host.user("roost")
    assert user.exists
    assert user.uid < 1000
    assert user.group == "roost"
    assert user.home == STATE
    assert user.shell == "/usr/sbin/nologin"
    assert host.check_output("getent shadow roost").split(":")[1] == "!"


def test_state_dir_belongs_to_the_service_user(host: Host) -> None:
    state = host.file(STATE)
    assert state.is_directory
    assert (state.user, state.group, state.mode) == ("roost", "roost", 0o750)


def test_base_packages_are_installed(host: Host) -> None:
    for name in ("ca-certificates", "python3-apt", "python3-cryptography", "systemd-timesyncd"):
        assert host.package(name).is_installed, name


def test_venv_holds_no_pip(host: Host) -> None:
    # Made --without-pip: roles/roost_package runs pip from its wheelhouse's wheel.
    venv = "/opt/roost/venv"
    assert host.file(f"{venv}/bin/python").exists
    assert not host.file(f"{venv}/bin/pip").exists
    assert host.run(f"{venv}/bin/python -c 'import pip'").rc != 0


def test_time_sync_is_enabled_and_configured(host: Host) -> None:
    assert host.service("systemd-timesyncd").is_enabled
    dropin = host.file("/etc/systemd/timesyncd.conf.d/roost.conf")
    assert dropin.mode == 0o644
    assert "[Time]" in dropin.content_string


def test_venv_is_usable_and_read_only_to_the_service_user(host: Host) -> None:
    venv = host.file(VENV)
    assert (venv.user, venv.group, venv.mode) == ("root", "root", 0o755)
    prefix = host.check_output(f"{VENV}/bin/python -c 'import sys; print(sys.prefix)'")
    assert prefix == VENV
    assert host.run(f"runuser -u roost -- touch {VENV}/probe").rc != 0


def test_role_publishes_a_local_fact(host: Host) -> None:
    fact = json.loads(host.file("/etc/ansible/facts.d/roost_common.fact").content_string)
    assert fact == {"user": "roost", "group": "roost", "state_dir": STATE, "venv_dir": VENV}
