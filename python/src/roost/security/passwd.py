"""Password files in the format of Mosquitto's `mosquitto_passwd`, so users can migrate.

    USER:$7$ITERATIONS$SALT$HASH   PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte hash (2.0)
    USER:$6$SALT$HASH              SHA512(password + salt), the 1.x format; read only

SALT and HASH are standard base64 with padding. Blank lines and `#` comments are skipped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from roost.security.errors import LineError

PBKDF2 = "7"
SALTED_SHA512 = "6"
DEFAULT_ITERATIONS = 101  # mosquitto_passwd's default; raise it for new files if you can
SALT_BYTES = 12


class PasswdError(LineError):
    """A bad line in a password file; str() is `source:line: reason`."""


@dataclass(frozen=True, slots=True)
class Hash:
    kind: str  # PBKDF2 or SALTED_SHA512
    iterations: int
    salt: bytes
    digest: bytes

    def matches(self, password: bytes) -> bool:
        return hmac.compare_digest(
            _digest(self.kind, password, self.salt, self.iterations), self.digest
        )

    def __str__(self) -> str:
        salt = base64.b64encode(self.salt).decode()
        digest = base64.b64encode(self.digest).decode()
        if self.kind == SALTED_SHA512:
            return f"${SALTED_SHA512}${salt}${digest}"
        return f"${PBKDF2}${self.iterations}${salt}${digest}"


def _digest(kind: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    if kind == SALTED_SHA512:
        return hashlib.sha512(password + salt).digest()
    return hashlib.pbkdf2_hmac("sha512", password, salt, iterations)


def hash_password(password: bytes | str, iterations: int = DEFAULT_ITERATIONS) -> str:
    """A fresh `$7$...` hash, as `mosquitto_passwd` writes after `USER:`."""
    if isinstance(password, str):
        password = password.encode()
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = secrets.token_bytes(SALT_BYTES)
    return str(Hash(PBKDF2, iterations, salt, _digest(PBKDF2, password, salt, iterations)))


def parse_hash(text: str) -> Hash:
    """Decode `$7$...` or `$6$...`; raises ValueError with a reason."""
    parts = text.split("$")
    if len(parts) < 2 or parts[0]:
        raise ValueError("not a mosquitto_passwd hash (plain text? run `mosquitto_passwd -U`)")
    kind, fields = parts[1], parts[2:]
    if kind == PBKDF2 and len(fields) == 3:
        if not fields[0].isdigit() or int(fields[0]) < 1:
            raise ValueError(f"bad iteration count {fields[0]!r}")
        iterations = int(fields[0])
        fields = fields[1:]
    elif kind == SALTED_SHA512 and len(fields) == 2:
        iterations = 0
    elif kind.startswith("argon2"):
        raise ValueError("argon2id hashes (Mosquitto 2.1) are not supported yet")
    else:
        raise ValueError(f"unknown or malformed hash type ${kind}$")
    try:
        salt, digest = (base64.b64decode(f, validate=True) for f in fields)
    except binascii.Error:
        raise ValueError("salt or hash is not valid base64") from None
    if len(digest) != 64 or not salt:
        raise ValueError("hash is not a SHA-512 digest")
    return Hash(kind, iterations, salt, digest)


# Checked when a username is unknown, so that timing does not reveal which users exist.
_DECOY = Hash(PBKDF2, DEFAULT_ITERATIONS, bytes(SALT_BYTES), bytes(64))


class PasswordFile:
    """Users and their hashes. `verify` is what CONNECT calls; a reload parses a new file."""

    def __init__(self, hashes: dict[str, Hash] | None = None) -> None:
        self.hashes: dict[str, Hash] = dict(hashes or {})

    @classmethod
    def parse(cls, text: str, source: str = "<passwd>") -> PasswordFile:
        hashes: dict[str, Hash] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, encoded = line.partition(":")
            if not sep or not user:
                raise PasswdError(source, number, "expected USER:HASH")
            if user in hashes:
                raise PasswdError(source, number, f"user {user!r} appears twice")
            try:
                hashes[user] = parse_hash(encoded)
            except ValueError as exc:
                raise PasswdError(source, number, f"user {user!r}: {exc}") from None
        return cls(hashes)

    def verify(self, username: str, password: bytes) -> bool:
        found = self.hashes.get(username)
        if found is None:
            _DECOY.matches(password)
            return False
        return found.matches(password)

    def set(
        self, username: str, password: bytes | str, iterations: int = DEFAULT_ITERATIONS
    ) -> None:
        if not username or ":" in username or "\n" in username:
            raise ValueError("a username must be non-empty and hold no ':' or newline")
        self.hashes[username] = parse_hash(hash_password(password, iterations))

    def remove(self, username: str) -> None:
        self.hashes.pop(username, None)

    def render(self) -> str:
        """The file text, one `USER:HASH` line per user, as `mosquitto_passwd` writes it."""
        return "".join(f"{user}:{h}\n" for user, h in self.hashes.items())
