"""Password files: Mosquitto's own tool and broker agree with ours, both directions."""

from __future__ import annotations

import base64
import hashlib
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.security.passwd import (
    SALTED_SHA512,
    Hash,
    PasswdError,
    PasswordFile,
    hash_password,
    parse_hash,
)

from .procs import HOST, mosquitto

needs_mosquitto = pytest.mark.skipif(
    not (shutil.which("mosquitto_passwd") and shutil.which("mosquitto")),
    reason="apt-get install mosquitto mosquitto-clients",
)


def test_hash_format_and_verify() -> None:
    encoded = hash_password(b"pa55", iterations=101)
    kind, iterations, salt, digest = encoded.split("$")[1:]
    assert (kind, iterations) == ("7", "101")
    assert len(base64.b64decode(salt)) == 12
    assert base64.b64decode(digest) == hashlib.pbkdf2_hmac(
        "sha512", b"pa55", base64.b64decode(salt), 101
    )
    assert hash_password(b"pa55") != encoded  # fresh salt each time
    users = PasswordFile.parse(f"svc:{encoded}\n")
    assert users.verify("svc", b"pa55")
    assert not users.verify("svc", b"pa56")
    assert not users.verify("other", b"pa55")


def test_old_salted_sha512_lines_verify() -> None:
    salt = b"0123456789ab"
    old = Hash(SALTED_SHA512, 0, salt, hashlib.sha512(b"legacy" + salt).digest())
    users = PasswordFile.parse(f"# migrated from 1.6\n\nold:{old}\n")
    assert str(old).startswith("$6$")
    assert users.verify("old", b"legacy")
    assert not users.verify("old", b"legacY")


def test_set_remove_render_roundtrip() -> None:
    users = PasswordFile()
    users.set("a", "one")
    users.set("b", b"two", iterations=1000)
    again = PasswordFile.parse(users.render())
    assert again.verify("a", b"one") and again.verify("b", b"two")
    assert again.hashes["b"].iterations == 1000
    again.remove("a")
    assert not again.verify("a", b"one")
    with pytest.raises(ValueError):
        users.set("c:d", "x")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("alice", "expected USER:HASH"),
        ("alice:plaintext", "not a mosquitto_passwd hash"),
        ("alice:$7$abc$c2FsdA==$aGFzaA==", "bad iteration count"),
        ("alice:$7$101$!!!$aGFzaA==", "not valid base64"),
        ("alice:$7$101$c2FsdA==$aGFzaA==", "not a SHA-512 digest"),
        ("alice:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "argon2id"),
        ("alice:$5$c2FsdA==$aGFzaA==", "unknown or malformed"),
    ],
)
def test_bad_lines_name_the_line(line: str, reason: str) -> None:
    with pytest.raises(PasswdError) as caught:
        PasswordFile.parse(f"# header\n{line}\n", "pw")
    assert str(caught.value).startswith("pw:2: ")
    assert reason in str(caught.value)


def test_duplicate_user_is_an_error() -> None:
    line = f"a:{hash_password(b'x')}\n"
    with pytest.raises(PasswdError, match="appears twice"):
        PasswordFile.parse(line + line)


def test_parse_hash_rejects_zero_iterations() -> None:
    with pytest.raises(ValueError, match="iteration"):
        parse_hash("$7$0$c2FsdA==$" + base64.b64encode(bytes(64)).decode())


@needs_mosquitto
def test_file_from_mosquitto_passwd_verifies(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    run = ["mosquitto_passwd", "-b", str(path)]
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(path), "alice", "s3cret"], check=True, timeout=30
    )
    subprocess.run([*run, "bob", "with:colon and spaces é"], check=True, timeout=30)
    sha512 = ["mosquitto_passwd", "-H", "sha512", "-b", str(path), "carol", "old-style"]
    subprocess.run(sha512, check=True, timeout=30)  # the 1.x format, still on offer
    assert ":$6$" in path.read_text().splitlines()[2]
    users = PasswordFile.parse(path.read_text(), str(path))
    assert users.verify("carol", b"old-style") and not users.verify("carol", b"old-stylE")
    assert users.verify("alice", b"s3cret")
    assert users.verify("bob", "with:colon and spaces é".encode())
    assert not users.verify("alice", b"s3creT")


@pytest.fixture
def mosquitto_with(tmp_path: Path) -> Iterator[tuple[int, PasswordFile]]:
    users = PasswordFile()
    users.set("svc", b"pa55")
    salt = b"abcdefghijkl"
    users.hashes["legacy"] = Hash(SALTED_SHA512, 0, salt, hashlib.sha512(b"old" + salt).digest())
    (tmp_path / "pw").write_text(users.render())
    settings = f"allow_anonymous false\npassword_file {tmp_path}/pw\n"
    with mosquitto(tmp_path, settings) as port:
        yield port, users


def _publish(port: int, user: str, password: str) -> subprocess.CompletedProcess[str]:
    cmd = shlex.split(f"mosquitto_pub -h {HOST} -p {port} -t roost/test -m hi -i t-{user}")
    cmd += ["-u", user, "-P", password]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=20)


@needs_mosquitto
def test_mosquitto_accepts_lines_we_write(mosquitto_with: tuple[int, PasswordFile]) -> None:
    port, _ = mosquitto_with
    assert _publish(port, "svc", "pa55").returncode == 0
    assert _publish(port, "legacy", "old").returncode == 0
    refused = _publish(port, "svc", "wrong")
    assert refused.returncode != 0
    assert "not authori" in refused.stderr
