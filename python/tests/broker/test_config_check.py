"""`roost broker check-config`: exit 0, or exit 1 with FILE:LINE: reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from roost.broker.config import ConfigError, load, parse_bind
from roost.cli import main

GOOD = """\
data_dir = "/var/lib/roost"
durability = "strict"
commit_interval_ms = 2
allow_anonymous = false
sys_interval = 30
log_level = "warning"

[[listener]]
bind = "127.0.0.1:1883"

[[listener]]
bind = "[::1]:1884"

[limits]
max_packet_size = 65536
max_queued_messages = 500
connect_timeout = 2.5
"""


def test_good_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "broker.toml"
    path.write_text(GOOD)
    config = load(path)
    assert [str(lst) for lst in config.listeners] == ["127.0.0.1:1883", "[::1]:1884"]
    assert config.durability == "strict"
    assert config.commit_interval == 0.002
    assert config.settings.max_packet_size == 65536
    assert config.settings.connect_timeout == 2.5
    assert config.settings.sys_interval == 30
    assert main(["broker", "check-config", str(path)]) == 0


BAD = [
    ('durability = "sometimes"\n', 1, "durability"),
    ('log_level = "info"\nverbose = true\n', 2, "unknown setting 'verbose'"),
    ('[limits]\nmax_inflight = 0\n', 2, "max_inflight must be between"),
    ('[limits]\n\nmax_packet_size = "big"\n', 3, "expected int"),
    ('[limits]\nmax_banana = 3\n', 2, "unknown limit"),
    ('[[listener]]\nbind = "127.0.0.1:1883"\n[[listener]]\nbind = "nowhere"\n', 4,
     "HOST:PORT"),
    ('[[listener]]\nbind = "127.0.0.1:1883"\nport = 3\n', 3, "unknown listener setting"),
    ('allow_anonymous = true\n[[listener]]\nbind = "0.0.0.0:1883"\n', 1, "loopback"),
    ('durability = \n', 1, "Invalid"),
    ('sys_interval = -1\n', 1, "sys_interval"),
    ('shutdown_grace = -1\n', 1, "shutdown_grace must be between"),
    ('[[listener]]\nbind = "0.0.0.0:1883"\n', 2, "plain TCP is only allowed on loopback"),
    ('[[listener]]\nbind = "127.0.0.1:1"\n[[listener]]\nbind = "10.0.0.1:8883"\n'
     'tls = { cert = "s.crt", key = "s.key", ca = "ca.crt" }\nallow_anonymous = true\n', 6,
     "allow_anonymous needs a loopback"),
    ('[[listener]]\nbind = "127.0.0.1:1"\ntls = { cert = "a", key = "b", colour = 1 }\n', 3,
     "unknown tls setting 'colour'"),
    ('[[listener]]\nbind = "127.0.0.1:1"\ntls = { cert = "a", key = "b" }\n', 3,
     "need ca"),
    ('[[listener]]\nbind = "127.0.0.1:1"\ntls = { cert = "a", key = "b", ca = "c", '
     'identity = "dn" }\n', 3, "identity must be one of"),
    ('[[listener]]\nbind = "127.0.0.1:1"\nproxy_protocol = "v2"\n', 3, "trusted_proxies"),
    ('[[listener]]\nbind = "127.0.0.1:1"\nproxy_protocol = "v3"\n', 3, "proxy_protocol"),
    ('[[listener]]\nbind = "127.0.0.1:1"\nproxy_protocol = "v1"\n'
     'trusted_proxies = ["10.0.0.300"]\n', 4, "not an address"),
    ('[[listener]]\nbind = "127.0.0.1:1"\nproxy_protocol = "v1"\n'
     'trusted_proxies = ["10.0.0.3"]\nproxy_tls_identity = true\n', 5, "needs proxy_protocol"),
    ('[[listener]]\nbind = "127.0.0.1:1"\n'
     'tls = { cert = "a", key = "b", ca = "c", require_client_cert = false }\n'
     'proxy_protocol = "v2"\ntrusted_proxies = ["10.0.0.3"]\nproxy_tls_identity = true\n', 6,
     "needs require_client_cert"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD)
def test_bad_config_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   text: str, line: int, reason: str) -> None:
    if "listener" not in text:
        text += '[[listener]]\nbind = "127.0.0.1:1883"\n'
    path = tmp_path / "broker.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert err.value.line == line
    assert reason in str(err.value)
    assert main(["broker", "check-config", str(path)]) == 1
    out = capsys.readouterr().err.strip()
    assert out.startswith(f"{path}:{line}: ")


def test_missing_listener(tmp_path: Path) -> None:
    path = tmp_path / "broker.toml"
    path.write_text('durability = "batched"\n')
    with pytest.raises(ConfigError, match="listener"):
        load(path)


def test_missing_file(tmp_path: Path) -> None:
    assert main(["broker", "check-config", str(tmp_path / "nope.toml")]) == 1


@pytest.mark.parametrize(("text", "host", "port"), [
    ("127.0.0.1:0", "127.0.0.1", 0), ("[::1]:1883", "::1", 1883), (":1883", "0.0.0.0", 1883),
    ("localhost:5", "localhost", 5)])
def test_parse_bind(text: str, host: str, port: int) -> None:
    listener = parse_bind(text)
    assert (listener.host, listener.port) == (host, port)


@pytest.mark.parametrize("text", ["1883", "host:99999", "[::1]", "a:b"])
def test_parse_bind_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_bind(text)


def test_check_config_reports_a_bad_acl_file(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic read ok/#\ntopic fly away\n")
    path = tmp_path / "broker.toml"
    path.write_text(f'acl_file = "{acl}"\n[[listener]]\nbind = "127.0.0.1:1883"\n')
    assert main(["broker", "check-config", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"{acl}:2: ")
    acl.write_text("topic read ok/#\n")
    assert main(["broker", "check-config", str(path)]) == 0


def test_run_refuses_a_bad_acl_file(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("bogus line\n")
    result = subprocess.run(
        [sys.executable, "-m", "roost", "broker", "run", "--bind", "127.0.0.1:0",
         "--allow-anonymous", "--data-dir", str(tmp_path), "--acl-file", str(acl)],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert f"{acl}:1:" in result.stderr
