"""`roost broker acl-test`: output names the deciding rule; exit status 0 / 1 / 2."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from roost.security import acl_cli

ACL = "user dash\ntopic read roost/#\n\npattern readwrite roost/+/%c/#\n"


@pytest.fixture
def acl_file(tmp_path: Path) -> Path:
    path = tmp_path / "acl.conf"
    path.write_text(ACL)
    return path


def test_allow_prints_the_rule(acl_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--acl", str(acl_file), "--client", "pi-7", "--topic", "roost/site/pi-7/t"]
    assert acl_cli.main([*argv, "--access", "write"]) == 0
    assert capsys.readouterr().out == f"allow  ({acl_file}:4: pattern readwrite roost/+/%c/#)\n"


def test_deny_by_default(acl_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--acl", str(acl_file), "--client", "pi-7", "--user", "dash", "--topic", "x/y"]
    assert acl_cli.main([*argv, "--access", "read"]) == 1
    assert capsys.readouterr().out == "deny  (default deny: no rule matched)\n"


def test_subscribe_checks_the_filter(acl_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--acl", str(acl_file), "--client", "pi-7", "--topic", "roost/#"]
    assert acl_cli.main([*argv, "--access", "subscribe"]) == 1
    assert acl_cli.main([*argv, "--access", "subscribe", "--user", "dash"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("allow  (")


def test_bad_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.acl"
    bad.write_text("topic read a\ntopic rw b\n")
    argv = ["--client", "c", "--topic", "a", "--access", "read"]
    assert acl_cli.main(["--acl", str(bad), *argv]) == 2
    assert f"{bad}:2: bad access 'rw'" in capsys.readouterr().err
    assert acl_cli.main(["--acl", str(tmp_path / "missing"), *argv]) == 2


def test_wildcard_topic_for_read_is_refused(acl_file: Path) -> None:
    argv = ["--acl", str(acl_file), "--client", "c", "--topic", "roost/#", "--access", "read"]
    assert acl_cli.main(argv) == 2


def test_registers_under_a_broker_parser(acl_file: Path) -> None:
    parser = argparse.ArgumentParser(prog="roost broker")
    acl_cli.add_parser(parser.add_subparsers(dest="action", required=True))
    argv = shlex.split("acl-test --client c --user dash --topic roost/a --access read")
    args = parser.parse_args([*argv, "--acl", str(acl_file)])
    assert args.func(args) == 0
