"""Config loading: a good file, and bad ones refused with `FILE:LINE: reason`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from roost.agent.config import ConfigError, Endpoint, load

from .pki import Pki

GOOD = """\
site = "lab"
client_id = "pi-1"
state_dir = "/tmp/roost-agent"

[broker]
endpoints = ["b1.lan:8883", "[::1]:8883"]
backoff_cap = 30

[collectors]
cpu_temp = 5
network = 0

[plugins.wifi]
command = ["/usr/local/bin/wifi-quality"]
interval = 60

[commands.restart-unit]
argv = ["/usr/bin/systemctl", "restart", "{unit}"]
[commands.restart-unit.args]
unit = { type = "string", pattern = "roost-[a-z-]+\\\\.service" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_good_config(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, GOOD))
    assert cfg.endpoints == (Endpoint("b1.lan", 8883), Endpoint("::1", 8883))
    assert cfg.intervals["cpu_temp"] == 5 and cfg.intervals["network"] == 0
    assert cfg.intervals["load"] == 10  # default
    assert cfg.backoff_cap == 30 and cfg.tls is None
    assert cfg.plugins["wifi"].command == ("/usr/local/bin/wifi-quality",)
    assert cfg.commands["restart-unit"].args["unit"].pattern == r"roost-[a-z-]+\.service"


def test_client_id_defaults_to_the_hostname(tmp_path: Path) -> None:
    import socket

    cfg = load(write(tmp_path, GOOD.replace('client_id = "pi-1"\n', "")))
    assert cfg.client_id == socket.gethostname()


BAD = [
    ('site = "lab"', 'site = "lab', 1, "Illegal character"),  # TOML syntax error
    ('site = "lab"', 'site = "a/b"', 1, "one topic level"),
    ('client_id = "pi-1"', 'client_id = "pi+1"', 2, "one topic level"),
    ('state_dir = "/tmp/roost-agent"', "state_dir = 3", 3, "'state_dir' must be a string"),
    ('endpoints = ["b1.lan:8883", "[::1]:8883"]', 'endpoints = ["b1.lan"]', 6, "HOST:PORT"),
    ('endpoints = ["b1.lan:8883", "[::1]:8883"]', "endpoints = []", 6, "non-empty list"),
    ("backoff_cap = 30", "backoff_cap = -1", 7, "at least"),
    ("backoff_cap = 30", "backoff_cap = true", 7, "must be int or float"),
    ("cpu_temp = 5", "cpu_tmp = 5", 10, "unknown collector 'cpu_tmp'"),
    ("network = 0", "network = 0.001", 11, "0 (off) or >="),
    ("interval = 60", 'entry_point = "x"', 13, "exactly one of"),
    ('"{unit}"]', '"{unit}", "{other}"]', 18, "declared, required argument"),
    ('"{unit}"]', '"--unit={unit}"]', 18, "exactly '{ARG}'"),
    ('type = "string"', 'type = "path"', 20, "type must be one of"),
    (', pattern = "roost-[a-z-]+\\\\.service" ', " ", 20, "needs a 'pattern'"),
    ('pattern = "roost-', 'pattern = "(roost-', 20, "pattern is invalid"),
    ("[collectors]", "[collector]", 9, "unknown setting 'collector'"),
]


@pytest.mark.parametrize(("old", "new", "line", "reason"), BAD)
def test_bad_config_names_file_line_and_reason(
        tmp_path: Path, old: str, new: str, line: int, reason: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert reason in str(err.value)


def test_tls_files_must_exist_and_credentials_resolve(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    pki = Pki(creds)
    pki.ca.rename(creds / "ca.pem")
    device = pki.issue("pi-1")
    device.cert.rename(creds / "cert.pem")
    device.key.rename(creds / "key.pem")
    tls = '\n[tls]\nca = "credential:ca.pem"\ncert = "credential:cert.pem"\nkey = "{key}"\n'
    path = write(tmp_path, GOOD + tls.format(key="credential:key.pem"))
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=r":23: .*CREDENTIALS_DIRECTORY"):
        load(path)
    assert load(path, need_credentials=False).tls is not None  # check-config outside the unit
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = load(path)
    assert cfg.tls is not None and cfg.tls.key == creds / "key.pem"
    path = write(tmp_path, GOOD + tls.format(key=tmp_path / "missing.key"))
    with pytest.raises(ConfigError, match=r":25: 'key' file .* does not exist"):
        load(path)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "roost", "agent", *args], capture_output=True,
                          text=True, timeout=30, check=False, env=env)


def test_cli_check_config_and_run_refuse_a_bad_file(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD)
    assert run("check-config", str(good)).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("backoff_cap = 30", "backoff_cap = -1"))
    for args in (["check-config", str(bad)], ["run", "--config", str(bad)]):
        done = run(*args)
        assert done.returncode == 1
        assert done.stderr.strip() == f"{bad}:7: 'backoff_cap' must be at least 0.01"


TLS = '\n[tls]\nca = "{ca}"\ncert = "{cert}"\nkey = "{key}"\n'  # lines 23, 24, 25


def _unreadable(path: Path) -> list[str]:
    """Make `path` unreadable; the command prefix that keeps root from reading it anyway."""
    path.chmod(0)
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.parametrize("case", ["missing", "directory", "unreadable", "not-pem",
                                  "wrong-key", "bad-ca"])
def test_unusable_credential_file_is_file_line_reason_not_a_traceback(
        tmp_path: Path, case: str) -> None:
    pki = Pki(tmp_path / "pki")
    device, other = pki.issue("pi-1"), pki.issue("pi-2")
    files = {"ca": pki.ca, "cert": device.cert, "key": device.key}
    prefix: list[str] = []
    key, reason = "key", ""
    if case == "missing":
        files["key"] = tmp_path / "nope.key"
        reason = "does not exist"
    elif case == "directory":
        files["key"] = tmp_path
        reason = "is not a regular file"
    elif case == "unreadable":
        prefix = _unreadable(device.key)
        reason = "cannot be read: Permission denied"
    elif case == "not-pem":
        key = "cert"
        device.cert.write_text("not a certificate\n")
        reason = "cannot be used: not valid PEM"
    elif case == "wrong-key":
        files["key"] = other.key
        reason = "cannot be used: key values mismatch"
    else:
        key = "ca"
        pki.ca.write_text("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        reason = "cannot be used: not valid PEM"
    config = write(tmp_path, GOOD + TLS.format(**files))
    line = {"ca": 23, "cert": 24, "key": 25}[key]
    for args in (["check-config", str(config)], ["run", "--config", str(config)]):
        done = subprocess.run([*prefix, sys.executable, "-m", "roost", "agent", *args],
                              capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 1, done
        assert done.stderr.startswith(f"{config}:{line}: '{key}' file "), done.stderr
        assert reason in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
