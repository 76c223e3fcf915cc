"""The agent's TOML configuration: load, validate, and report errors as `FILE:LINE: reason`.

See README.md in this package for a commented example.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from roost.agent.tomllines import ConfigError, Reader

BUILTIN_METRICS = ("cpu_temp", "load", "memory", "disk", "uptime", "network", "throttled")
DEFAULT_INTERVALS = {"cpu_temp": 10.0, "load": 10.0, "memory": 30.0, "disk": 60.0,
                     "uptime": 60.0, "network": 30.0, "throttled": 60.0}
MIN_INTERVAL = 0.05  # fractions of a second are for tests; a Pi would use seconds
__all__ = ["ArgSpec", "Config", "ConfigError", "Endpoint", "Plugin", "Tls", "UserCommand",
           "load"]  # ConfigError lives with the TOML reader; callers get it here

LEVEL = re.compile(r"^[A-Za-z0-9._-]+$")  # one topic level an ACL `%c` can fill
ARG_TYPES = ("string", "int", "number")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class Plugin:
    name: str
    interval: float
    timeout: float
    command: tuple[str, ...] = ()
    entry_point: str = ""


@dataclass(frozen=True)
class ArgSpec:
    type: str
    pattern: str = ""
    min: float | None = None
    max: float | None = None
    required: bool = True


@dataclass(frozen=True)
class UserCommand:
    name: str
    argv: tuple[str, ...]
    args: dict[str, ArgSpec]
    timeout: float


@dataclass(frozen=True)
class Config:
    site: str
    client_id: str
    endpoints: tuple[Endpoint, ...]
    state_dir: Path
    tls: Tls | None = None
    keepalive: int = 30
    session_expiry: int = 86_400  # seconds the broker keeps our session (and commands)
    connect_timeout: float = 5.0
    backoff_initial: float = 1.0
    backoff_cap: float = 60.0
    queue_max: int = 100_000
    inflight: int = 20
    status_interval: float = 60.0
    intervals: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_INTERVALS))
    plugins: dict[str, Plugin] = field(default_factory=dict)
    commands: dict[str, UserCommand] = field(default_factory=dict)


def load(path: Path | str, *, need_credentials: bool = True) -> Config:
    """need_credentials=False (check-config outside the unit, e.g. Ansible's `validate:`)
    accepts `credential:` paths it cannot resolve without $CREDENTIALS_DIRECTORY."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(path, 0, f"cannot read: {err}") from err
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        m = re.search(r"\(at line (\d+), column \d+\)", str(err))
        line = int(m.group(1)) if m else 1
        raise ConfigError(path, line, str(err).split(" (at line")[0]) from err
    return _parse(Reader(path, text, data), need_credentials)


def _parse(r: Reader, need_credentials: bool) -> Config:
    known = {"site", "client_id", "state_dir", "broker", "tls", "queue", "status",
             "collectors", "plugins", "commands"}
    for key in r.data:
        if key not in known:
            raise r.fail((key,), f"unknown setting '{key}'")
    site = _level(r, ("site",), r.get(("site",), str, ""))
    client_id = _level(r, ("client_id",), r.get(("client_id",), str, socket.gethostname()))
    b = ("broker",)
    return Config(
        site=site,
        client_id=client_id,
        endpoints=tuple(_endpoint(r, e) for e in r.strings((*b, "endpoints"))),
        state_dir=Path(r.get(("state_dir",), str, "/var/lib/roost-agent")),
        tls=_tls(r, need_credentials) if "tls" in r.data else None,
        keepalive=int(r.number((*b, "keepalive"), 30, 5)),
        session_expiry=int(r.number((*b, "session_expiry"), 86_400, 0)),
        connect_timeout=r.number((*b, "connect_timeout"), 5.0, 0.1),
        backoff_initial=r.number((*b, "backoff_initial"), 1.0, 0.01),
        backoff_cap=r.number((*b, "backoff_cap"), 60.0, 0.01),
        queue_max=int(r.number(("queue", "max_samples"), 100_000, 1)),
        inflight=int(r.number(("queue", "inflight"), 20, 1)),
        status_interval=r.number(("status", "interval"), 60.0, MIN_INTERVAL),
        intervals=_intervals(r),
        plugins={n: _plugin(r, n) for n in r.table("plugins")},
        commands={n: _command(r, n) for n in r.table("commands")},
    )


def _level(r: Reader, where: tuple[str, ...], value: str) -> str:
    if not LEVEL.match(value):
        raise r.fail(where, f"'{where[-1]}' must be letters, digits, '.', '_' or '-' "
                            f"(it is one topic level), got {value!r}")
    return value


def _endpoint(r: Reader, text: str) -> Endpoint:
    m = re.match(r"^(\[[0-9a-fA-F:]+\]|[^:\[\]]+):(\d{1,5})$", text)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise r.fail(("broker", "endpoints"), f"endpoint {text!r} must be HOST:PORT")
    return Endpoint(m.group(1).strip("[]"), int(m.group(2)))


def _tls(r: Reader, need_credentials: bool) -> Tls:
    def file(key: str) -> Path:
        where = ("tls", key)
        value: str = r.get(where, str, "")
        if value.startswith("credential:"):  # systemd LoadCredential=
            creds = os.environ.get("CREDENTIALS_DIRECTORY", "")
            if not creds and not need_credentials:
                return Path(value)  # checked by the unit that loads the credential
            if not creds:
                raise r.fail(where, f"{value!r} needs $CREDENTIALS_DIRECTORY (LoadCredential=)")
            p = Path(creds) / value.removeprefix("credential:")
        else:
            p = Path(value)
        if not p.exists():
            raise r.fail(where, f"'{key}' file {str(p)!r} does not exist")
        if not p.is_file():
            raise r.fail(where, f"'{key}' file {str(p)!r} is not a regular file")
        try:
            with p.open("rb") as f:
                f.read(1)
        except OSError as e:
            raise r.fail(where, f"'{key}' file {str(p)!r} cannot be read: {e.strerror}") from None
        return p

    tls = Tls(file("ca"), file("cert"), file("key"))
    if all(p.is_file() for p in (tls.ca, tls.cert, tls.key)):  # else credentials: unit's
        _usable(r, tls)
    return tls


def _usable(r: Reader, tls: Tls) -> None:
    """Load the files as the TLS client will, so a bad one is a config error, not a
    traceback at the first connect."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(tls.ca))
    except (ssl.SSLError, OSError) as e:
        raise r.fail(("tls", "ca"), f"'ca' file {str(tls.ca)!r} cannot be used: "
                                    f"{_ssl_reason(e)}") from None
    try:
        context.load_cert_chain(str(tls.cert), str(tls.key))
    except (ssl.SSLError, OSError) as e:
        key = "key" if b"-----BEGIN CERTIFICATE-----" in tls.cert.read_bytes() else "cert"
        path = tls.key if key == "key" else tls.cert
        raise r.fail(("tls", key), f"'{key}' file {str(path)!r} cannot be used: "
                                   f"{_ssl_reason(e)}") from None


def _ssl_reason(error: Exception) -> str:
    text = str(error.args[-1]) if error.args else str(error)
    text = re.sub(r"^\[\w+(: \w+)?\] | \(_ssl\.c:\d+\)$", "", text)
    return "not valid PEM" if text == "PEM lib" else text  # OpenSSL's words for it


def _intervals(r: Reader) -> dict[str, float]:
    intervals = dict(DEFAULT_INTERVALS)
    for name in r.table("collectors"):
        if name not in intervals:
            raise r.fail(("collectors", name), f"unknown collector '{name}' "
                         f"(built in: {', '.join(BUILTIN_METRICS)}; add others as plugins)")
        value = r.number(("collectors", name), 0, 0)
        if 0 < value < MIN_INTERVAL:
            raise r.fail(("collectors", name), f"interval must be 0 (off) or >= {MIN_INTERVAL}")
        intervals[name] = value
    return intervals


def _plugin(r: Reader, name: str) -> Plugin:
    w = ("plugins", name)
    _level(r, w, name)
    if name in DEFAULT_INTERVALS:
        raise r.fail(w, f"plugin '{name}' clashes with a built-in collector")
    command = r.strings((*w, "command")) if "command" in r.table(*w) else ()
    entry = r.get((*w, "entry_point"), str, "")
    if bool(command) == bool(entry):
        raise r.fail(w, f"plugin '{name}' needs exactly one of 'command' or 'entry_point'")
    return Plugin(name, r.number((*w, "interval"), 60.0, MIN_INTERVAL),
                  r.number((*w, "timeout"), 5.0, 0.01), command, entry)


def _command(r: Reader, name: str) -> UserCommand:
    w = ("commands", name)
    _level(r, w, name)
    argv = r.strings((*w, "argv"))
    specs: dict[str, ArgSpec] = {}
    for arg in r.table(*w, "args"):
        a = (*w, "args", arg)
        kind = r.get((*a, "type"), str, "")
        if kind not in ARG_TYPES:
            raise r.fail(a, f"argument '{arg}' type must be one of {', '.join(ARG_TYPES)}")
        pattern = r.get((*a, "pattern"), str, "")
        if kind == "string":
            if not pattern:
                raise r.fail(a, f"string argument '{arg}' needs a 'pattern'")
            try:
                re.compile(pattern)
            except re.error as err:
                raise r.fail(a, f"argument '{arg}' pattern is invalid: {err}") from err
        bound = (int, float, type(None))
        low, high = r.get((*a, "min"), bound, None), r.get((*a, "max"), bound, None)
        specs[arg] = ArgSpec(kind, pattern, low, high, r.get((*a, "required"), bool, True))
    for element in argv:
        for ref in re.findall(r"\{([^}]*)\}", element):
            if ref not in specs or element != "{" + ref + "}" or not specs[ref].required:
                raise r.fail((*w, "argv"), f"argv element {element!r} must be a literal or "
                             "exactly '{ARG}' naming a declared, required argument")
    return UserCommand(name, argv, specs, r.number((*w, "timeout"), 10.0, 0.01))
