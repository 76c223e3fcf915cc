#!/usr/bin/python
"""Read, in one module run, the host state that several of the kit's tasks would set.

Each of those tasks (group, user, file, systemd_service, a `creates:` command) costs the
controller a forked worker per host even when it changes nothing. The roles ask this once
and run a task only when what it reads differs from what the task would set, so a
re-run repairs drift in what is read here and skips the rest.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

CHECKSUM_LIMIT = 1 << 20

DOCUMENTATION = r"""
module: roost_host_state
short_description: Read packages, users, groups, paths and units in one run
description:
  - Read-only; never changes the host. Names that do not exist are left out of the
    result, so a comparison against the wanted state fails and the task that sets it runs.
options:
  packages:
    description: Debian packages to ask dpkg about.
    type: list
    elements: str
    default: []
  users:
    description: Users to read from the passwd and shadow databases.
    type: list
    elements: str
    default: []
  groups:
    description: Groups to look up.
    type: list
    elements: str
    default: []
  paths:
    description: Paths to stat (following symlinks, as the file module does).
    type: list
    elements: path
    default: []
  read:
    description: Files whose content to return, as slurp does (public files only).
    type: list
    elements: path
    default: []
  private_keys:
    description: >-
      Private keys to stat and parse on the host (with Python cryptography, as
      community.crypto.openssl_privatekey does); neither the key nor a digest of it is
      returned, only its type and its public key's fingerprint.
    type: list
    elements: path
    default: []
  units:
    description: systemd units to ask about.
    type: list
    elements: str
    default: []
  container:
    description: Also ask systemd-detect-virt whether the host is a container.
    type: bool
    default: false
"""

RETURN = r"""
installed:
  description: The packages dpkg reports installed (status C(ii)).
  type: list
  elements: str
users:
  description: >-
    Per existing user: name, group (the primary group's name), home, shell, and password
    (C(!) when the shadow field is exactly C(!), a locked account; otherwise C(set); the
    field itself is never returned).
  type: dict
groups:
  description: The names of the groups that exist.
  type: list
  elements: str
paths:
  description: >-
    Per path: path, state (directory, file, absent or other), owner, group (names, or
    the number when it has none), mode (four octal digits), and for a regular file of
    at most 1 MiB its content's sha1.
  type: dict
contents:
  description: Per file asked in I(read) that exists (at most 1 MiB), its base64 content.
  type: dict
private_keys:
  description: >-
    Per key: as I(paths) (without sha1), plus type (ECC, RSA, Ed25519, ...; C(unreadable)
    when it does not parse, C(unknown) without cryptography), and curve (ECC) or size (RSA).
  type: dict
fingerprints:
  description: >-
    Per key that parsed, the sha256 fingerprint of its public key, colon-separated hex
    (community.crypto's public_key_fingerprints.sha256).
  type: dict
units:
  description: Per unit, systemd's UnitFileState (enabled) and ActiveState (active).
  type: dict
container:
  description: Whether systemd-detect-virt --container found one (only when asked).
  type: bool
"""


def installed(module: AnsibleModule, packages: list[str]) -> list[str]:
    if not packages:
        return []
    # rc 1 when dpkg knows some name not: the others are still listed.
    _, out, _ = module.run_command(
        ["dpkg-query", "--show", "--showformat", "${db:Status-Abbrev}${Package}\\n", *packages]
    )
    return [line[3:] for line in out.splitlines() if line.startswith("ii ")]


def shadow() -> dict[str, str]:
    with open("/etc/shadow", encoding="utf-8") as lines:
        return {f[0]: f[1] for f in (line.split(":") for line in lines) if len(f) > 1}


def name_of(lookup, number: int) -> str:  # type: ignore[no-untyped-def]
    try:
        return str(lookup(number)[0])
    except KeyError:
        return str(number)


def users(names: list[str]) -> dict[str, dict[str, str]]:
    found = {}
    passwords = shadow() if names else {}
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        found[name] = {
            "name": name,
            "group": name_of(grp.getgrgid, entry.pw_gid),
            "home": entry.pw_dir,
            "shell": entry.pw_shell,
            "password": "!" if passwords.get(name) == "!" else "set",
        }
    return found


def groups(names: list[str]) -> list[str]:
    found = []
    for name in names:
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        found.append(name)
    return found


def path_state(path: str, checksum: bool = True) -> dict[str, str]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {"path": path, "state": "absent"}
    if stat.S_ISDIR(st.st_mode):
        state = "directory"
    elif stat.S_ISREG(st.st_mode):
        state = "file"
    else:
        state = "other"
    found = {
        "path": path,
        "state": state,
        "owner": name_of(pwd.getpwuid, st.st_uid),
        "group": name_of(grp.getgrgid, st.st_gid),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
    }
    # What the copy and template modules compare before they write: a role passes the
    # sha1 of the content it would write. Config-sized files only.
    if checksum and state == "file" and st.st_size <= CHECKSUM_LIMIT:
        with open(path, "rb") as f:
            found["sha1"] = hashlib.sha1(f.read()).hexdigest()  # noqa: S324 (as Ansible's checksum)
    return found


def content(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            data = f.read(CHECKSUM_LIMIT + 1)
    except (FileNotFoundError, IsADirectoryError):
        return None
    return base64.b64encode(data).decode() if len(data) <= CHECKSUM_LIMIT else None


def key_state(path: str) -> tuple[dict[str, str | int], str | None]:
    """What openssl_privatekey's full_idempotence compares, and the public fingerprint."""
    # No sha1: not even a digest of a private key is made or leaves the host.
    found: dict[str, str | int] = dict(path_state(path, checksum=False))
    if found["state"] != "file":
        return found, None
    try:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import (  # noqa: PLC0415
            ec,
            ed448,
            ed25519,
            rsa,
            x448,
            x25519,
        )
    except ImportError:
        found["type"] = "unknown"
        return found, None
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (ValueError, TypeError):  # not PEM, not a key, or encrypted
        found["type"] = "unreadable"
        return found, None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        found.update(type="ECC", curve=key.curve.name)
    elif isinstance(key, rsa.RSAPrivateKey):
        found.update(type="RSA", size=key.key_size)
    else:  # the names openssl_privatekey's type option uses
        kinds = {"Ed25519": ed25519.Ed25519PrivateKey, "Ed448": ed448.Ed448PrivateKey,
                 "X25519": x25519.X25519PrivateKey, "X448": x448.X448PrivateKey}
        found["type"] = next((k for k, c in kinds.items() if isinstance(key, c)), "other")
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.sha256(public).hexdigest()
    return found, ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def units(module: AnsibleModule, names: list[str]) -> dict[str, dict[str, str]]:
    if not names:
        return {}
    rc, out, err = module.run_command(
        ["systemctl", "show", "--property=Id,UnitFileState,ActiveState", "--", *names]
    )
    if rc != 0:
        module.fail_json(msg=f"systemctl show failed: {err.strip()}", rc=rc)
    # One block per unit, in the order asked, separated by blank lines.
    blocks = [
        dict(line.split("=", 1) for line in b.splitlines() if "=" in line)
        for b in out.split("\n\n")
    ]
    blocks = [b for b in blocks if b]
    if len(blocks) != len(names):
        module.fail_json(msg=f"systemctl show answered for {len(blocks)} of {len(names)} units")
    return {
        name: {"enabled": b.get("UnitFileState", ""), "active": b.get("ActiveState", "")}
        for name, b in zip(names, blocks, strict=True)
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "users": {"type": "list", "elements": "str", "default": []},
            "groups": {"type": "list", "elements": "str", "default": []},
            "paths": {"type": "list", "elements": "path", "default": []},
            "read": {"type": "list", "elements": "path", "default": []},
            "private_keys": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "container": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    result = {
        "changed": False,
        "installed": installed(module, p["packages"]),
        "users": users(p["users"]),
        "groups": groups(p["groups"]),
        "paths": {path: path_state(path) for path in p["paths"]},
        "units": units(module, p["units"]),
    }
    contents = {path: data for path in p["read"] if (data := content(path)) is not None}
    keys, fingerprints = {}, {}
    for path in p["private_keys"]:
        keys[path], fingerprint = key_state(path)
        if fingerprint:
            fingerprints[path] = fingerprint
    result.update(contents=contents, private_keys=keys, fingerprints=fingerprints)
    if p["container"]:
        # rc 1 and "none" on bare metal or a VM.
        rc, out, err = module.run_command(["systemd-detect-virt", "--container"])
        if rc not in (0, 1):
            module.fail_json(msg=f"systemd-detect-virt failed: {(err or out).strip()}", rc=rc)
        result["container"] = rc == 0
    module.exit_json(**result)


if __name__ == "__main__":
    main()
