"""`roost broker passwd`: edits a password file in place, keeping the other users."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from roost.security import passwd_cli
from roost.security.passwd import PasswordFile


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def _users(path: Path) -> PasswordFile:
    return PasswordFile.parse(path.read_text(), str(path))


def test_creates_a_private_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pw"
    _stdin(monkeypatch, "pa55\n")
    assert passwd_cli.main([str(path), "dash", "--iterations", "1000"]) == 0
    assert path.stat().st_mode & 0o777 == 0o600
    users = _users(path)
    assert users.verify("dash", b"pa55") and not users.verify("dash", b"pa55\n")
    assert users.hashes["dash"].iterations == 1000


@pytest.mark.skipif(not shutil.which("mosquitto_passwd"), reason="apt-get install mosquitto")
def test_changes_one_user_of_a_mosquitto_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pw"
    for flags, user, password in ((["-c", "-b"], "alice", "a1"), (["-b"], "bob", "b1")):
        cmd = ["mosquitto_passwd", *flags, str(path), user, password]
        subprocess.run(cmd, check=True, timeout=30)
    _stdin(monkeypatch, "b2\n")
    assert passwd_cli.main([str(path), "bob"]) == 0
    users = _users(path)
    assert users.verify("alice", b"a1")
    assert users.verify("bob", b"b2") and not users.verify("bob", b"b1")


def test_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pw"
    _stdin(monkeypatch, "x\n")
    passwd_cli.main([str(path), "gone"])
    assert passwd_cli.main([str(path), "gone", "--delete"]) == 0
    assert "gone" not in _users(path).hashes
    assert passwd_cli.main([str(path), "gone", "--delete"]) == 2


def test_bad_file_or_empty_password_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pw"
    path.write_text("alice:plaintext\n")
    _stdin(monkeypatch, "x\n")
    assert passwd_cli.main([str(path), "bob"]) == 2
    assert f"{path}:1:" in capsys.readouterr().err
    assert path.read_text() == "alice:plaintext\n"  # left alone
    _stdin(monkeypatch, "\n")
    assert passwd_cli.main([str(tmp_path / "new"), "bob"]) == 2
    assert not (tmp_path / "new").exists()


def test_registers_under_a_broker_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser(prog="roost broker")
    passwd_cli.add_parser(parser.add_subparsers(dest="action", required=True))
    args = parser.parse_args(["passwd", str(tmp_path / "pw"), "svc"])
    _stdin(monkeypatch, "s\n")
    assert args.func(args) == 0
    assert _users(tmp_path / "pw").verify("svc", b"s")
