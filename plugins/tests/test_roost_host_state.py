"""roles/common/library/roost_host_state.py, run as Ansible runs a module: a child Python
with its arguments in a file, against this machine's own dpkg, passwd, group and files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import pwd
import subprocess
import sys
import typing as t

import pytest
from ansible_collections.community.crypto.plugins.module_utils._crypto.support import (  # type: ignore[import-untyped]
    get_fingerprint_of_privatekey,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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


def test_read_returns_what_slurp_would(tmp_path: pathlib.Path) -> None:
    cert = tmp_path / "host.crt"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    result = run(tmp_path, read=[str(cert), str(tmp_path / "gone"), str(tmp_path)])
    assert result["contents"] == {str(cert): base64.b64encode(cert.read_bytes()).decode()}


def write_key(path: pathlib.Path, key: t.Any) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def test_keys_as_openssl_privatekey_compares_them(tmp_path: pathlib.Path) -> None:
    ecc, rsa_key = ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)
    write_key(tmp_path / "ecc.key", ecc)
    write_key(tmp_path / "rsa.key", rsa_key)
    (tmp_path / "junk.key").write_text("not a key\n")
    paths = [str(tmp_path / n) for n in ("ecc.key", "rsa.key", "junk.key", "gone.key")]
    result = run(tmp_path, private_keys=paths)
    owner = pwd.getpwuid(os.geteuid()).pw_name
    seen = result["private_keys"]
    group = seen[paths[0]]["group"]
    base = {"state": "file", "owner": owner, "group": group, "mode": "0600"}
    assert seen[paths[0]] == {"path": paths[0], **base, "type": "ECC", "curve": "secp256r1"}
    assert seen[paths[1]] == {"path": paths[1], **base, "type": "RSA", "size": 2048}
    assert seen[paths[2]] == {"path": paths[2], **base, "mode": "0644", "type": "unreadable"}
    assert seen[paths[3]] == {"path": paths[3], "state": "absent"}
    # The fingerprints inspect.yml compares with the certificate's: community.crypto's own.
    assert result["fingerprints"] == {
        paths[0]: get_fingerprint_of_privatekey(ecc)["sha256"],
        paths[1]: get_fingerprint_of_privatekey(rsa_key)["sha256"],
    }
    # Nothing of the private key itself leaves the host, not even its digest.
    for key in (ecc, rsa_key):
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        assert hashlib.sha1(pem).hexdigest() not in json.dumps(result)  # noqa: S324


def test_keys_without_cryptography_read_as_unknown(tmp_path: pathlib.Path) -> None:
    write_key(tmp_path / "ecc.key", ec.generate_private_key(ec.SECP256R1()))
    blocker = tmp_path / "block" / "cryptography"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('not on this host')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker.parent))
    result = run(tmp_path, env=env, private_keys=[str(tmp_path / "ecc.key")])
    assert result["private_keys"][str(tmp_path / "ecc.key")]["type"] == "unknown"
    assert result["fingerprints"] == {}
