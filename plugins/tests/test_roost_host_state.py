"""roles/common/library/roost_host_state.py, run as Ansible runs a module: a child Python
with its arguments in a file, against this machine's own dpkg, passwd, group and files."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import pwd
import subprocess
import sys
import typing as t

import pytest

MODULE = pathlib.Path(__file__).resolve().parents[2] / "roles/common/library/roost_host_state.py"


def run(tmp: pathlib.Path, env: dict[str, str] | None = None, **args: t.Any) -> dict[str, t.Any]:
    argsfile = tmp / "args.json"
    argsfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run(
        [sys.executable, str(MODULE), str(argsfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    result: dict[str, t.Any] = json.loads(done.stdout)
    return result


def test_packages_dpkg_has_installed(tmp_path: pathlib.Path) -> None:
    result = run(tmp_path, packages=["dpkg", "no-such-package-roost", "bash"])
    assert sorted(result["installed"]) == ["bash", "dpkg"]
    assert result["changed"] is False


def test_users_as_the_user_module_would_set_them(tmp_path: pathlib.Path) -> None:
    nobody = pwd.getpwnam("nobody")
    result = run(tmp_path, users=["nobody", "no-such-user-roost"])
    assert result["users"] == {
        "nobody": {
            "name": "nobody",
            "group": "nogroup",
            "home": nobody.pw_dir,
            "shell": nobody.pw_shell,
            # Debian's nobody has "*" in shadow: not the "!" of a locked kit account.
            "password": "set",
        }
    }
    assert "nobody" in json.dumps(result) and "*" not in json.dumps(result["users"])


@pytest.mark.skipif(os.geteuid() != 0, reason="reads /etc/shadow")
def test_a_locked_account_reads_as_bang(tmp_path: pathlib.Path) -> None:
    locked = [
        line.split(":")[0]
        for line in pathlib.Path("/etc/shadow").read_text().splitlines()
        if line.split(":")[1:2] == ["!"]
    ]
    if not locked:
        pytest.skip("no account with a password field of exactly !")
    result = run(tmp_path, users=locked[:1])
    assert result["users"][locked[0]]["password"] == "!"  # noqa: S105


def test_groups_that_exist(tmp_path: pathlib.Path) -> None:
    result = run(tmp_path, groups=["root", "no-such-group-roost", "nogroup"])
    assert result["groups"] == ["root", "nogroup"]


def test_paths_follow_links_as_the_file_module_does(tmp_path: pathlib.Path) -> None:
    directory = tmp_path / "dir"
    directory.mkdir()
    directory.chmod(0o750)
    regular = tmp_path / "file"
    regular.write_text("x")
    regular.chmod(0o640)
    (tmp_path / "link").symlink_to(directory)
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    owner = pwd.getpwuid(os.geteuid()).pw_name
    paths = {name: str(tmp_path / name) for name in ("dir", "file", "link", "dangling", "gone")}
    result = run(tmp_path, paths=list(paths.values()))["paths"]
    group = result[paths["dir"]]["group"]
    assert result[paths["dir"]] == {
        "path": paths["dir"],
        "state": "directory",
        "owner": owner,
        "group": group,
        "mode": "0750",
    }
    assert result[paths["file"]] == {
        "path": paths["file"],
        "state": "file",
        "owner": owner,
        "group": group,
        "mode": "0640",
        "sha1": hashlib.sha1(b"x").hexdigest(),  # noqa: S324 (as hash('sha1') in a role)
    }
    assert result[paths["link"]] == {**result[paths["dir"]], "path": paths["link"]}
    assert result[paths["dangling"]] == {"path": paths["dangling"], "state": "absent"}
    assert result[paths["gone"]] == {"path": paths["gone"], "state": "absent"}


def fake_systemctl(tmp: pathlib.Path, output: str) -> dict[str, str]:
    """This machine has no systemd: a stand-in that prints what `systemctl show` would."""
    bindir = tmp / "bin"
    bindir.mkdir()
    script = bindir / "systemctl"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")
    script.chmod(0o755)
    return dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")


def test_units_in_the_order_asked(tmp_path: pathlib.Path) -> None:
    env = fake_systemctl(
        tmp_path,
        "Id=a.service\nActiveState=active\nUnitFileState=enabled\n\n"
        "Id=b.service\nActiveState=inactive\nUnitFileState=\n",
    )
    result = run(tmp_path, env=env, units=["a.service", "b.service"])
    assert result["units"] == {
        "a.service": {"enabled": "enabled", "active": "active"},
        "b.service": {"enabled": "", "active": "inactive"},
    }


def test_units_answer_must_match_the_question(tmp_path: pathlib.Path) -> None:
    env = fake_systemctl(tmp_path, "Id=a.service\nActiveState=active\nUnitFileState=enabled\n")
    result = run(tmp_path, env=env, units=["a.service", "b.service"])
    assert result["failed"] is True
    assert "1 of 2 units" in result["msg"]
