"""The broker's TOML configuration: parse, validate, and point at the offending line.

    data_dir = "/var/lib/roost"      # omit to keep nothing on disk
    durability = "batched"           # or "strict"; see roost.broker.store
    commit_interval_ms = 5           # batched mode: delay from first change to commit
    allow_anonymous = false          # only allowed when every listener is loopback
    sys_interval = 10                # seconds between $SYS updates; 0: off
    log_level = "info"

    [[listener]]
    bind = "127.0.0.1:1883"          # later issues add tls, proxy_protocol here

    [limits]                         # every field of roost.broker.settings.Settings
    max_packet_size = 1048576

Later issues add `acl_file`, TLS listeners and `[cluster]` peers: unknown keys are
refused, so each of them must be declared here first.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from roost.broker.settings import MAX_PACKET, NEVER, Settings

LOG_LEVELS = ("debug", "info", "warning", "error")
_TOP = {"data_dir", "durability", "commit_interval_ms", "allow_anonymous", "sys_interval",
        "log_level", "listener", "limits", "acl_file"}
_LISTENER = {"bind"}
# (minimum, maximum) of each limit; all are integers but connect_timeout.
_RANGES: dict[str, tuple[float, float]] = {
    "max_packet_size": (64, MAX_PACKET),
    "max_connections": (0, 10_000_000),
    "connect_timeout": (0.1, 3600),
    "max_keepalive": (1, 65535),
    "max_inflight": (1, 65535),
    "max_queued_messages": (0, 100_000_000),
    "receive_maximum": (1, 65535),
    "topic_alias_maximum": (0, 65535),
    "max_topic_length": (1, 65535),
    "max_topic_levels": (1, 65535),
    "max_session_expiry": (0, NEVER),
}


class ConfigError(Exception):
    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Config:
    listeners: list[Listener] = field(default_factory=list)
    data_dir: Path | None = None
    durability: str = "batched"
    commit_interval: float = 0.005
    log_level: str = "info"
    acl_file: Path | None = None
    settings: Settings = field(default_factory=Settings)


def parse_bind(text: str) -> Listener:
    """`HOST:PORT`, `[V6]:PORT` or `:PORT` (all interfaces)."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]*):(\d+)", text)
    if m is None:
        raise ConfigError(f"bind {text!r} is not HOST:PORT")
    host = m.group(1) or m.group(3) or "0.0.0.0"  # noqa: S104 - ":PORT" means every interface
    port = int(m.group(2) or m.group(4))
    if port > 65535:
        raise ConfigError(f"bind {text!r}: port above 65535")
    return Listener(host, port)


def check_anonymous(config: Config) -> None:
    if config.settings.allow_anonymous:
        public = [str(lst) for lst in config.listeners if not lst.loopback]
        if public:
            raise ConfigError("allow_anonymous needs every listener on a loopback address, "
                              f"not {', '.join(public)}")


def load(path: str | Path) -> Config:
    """Read and validate a config file; ConfigError carries the line when it can."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(str(e), int(m.group(1)) if m else 0) from None
    try:
        config = _build(doc)
        check_anonymous(config)
    except _KeyError as e:
        raise ConfigError(str(e), _line_of(text, e.table, e.key, e.index)) from None
    except ConfigError as e:
        if not e.line:
            e.line = _line_of(text, None, "allow_anonymous", 0)
        raise
    return config


class _KeyError(ConfigError):
    def __init__(self, message: str, table: str | None, key: str, index: int = 0) -> None:
        super().__init__(message)
        self.table = table
        self.key = key
        self.index = index


def _get(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any,
         table: str | None = None) -> Any:
    value = doc.get(key, default)
    if value is default:
        return value
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(
            k.__name__ for k in kind)
        raise _KeyError(f"{key}: expected {names}, got {value!r}", table, key)
    return value


def _build(doc: dict[str, Any]) -> Config:
    for key in doc:
        if key not in _TOP:
            raise _KeyError(f"unknown setting {key!r}", None, key)
    durability = _get(doc, "durability", str, "batched")
    if durability not in ("batched", "strict"):
        raise _KeyError(f"durability must be \"batched\" or \"strict\", not {durability!r}",
                        None, "durability")
    log_level = _get(doc, "log_level", str, "info")
    if log_level not in LOG_LEVELS:
        raise _KeyError(f"log_level must be one of {', '.join(LOG_LEVELS)}", None, "log_level")
    interval = _get(doc, "commit_interval_ms", (int, float), 5)
    if not 0 <= interval <= 10_000:
        raise _KeyError("commit_interval_ms must be between 0 and 10000", None,
                        "commit_interval_ms")
    sys_interval = _get(doc, "sys_interval", (int, float), 10)
    if sys_interval < 0:
        raise _KeyError("sys_interval must be 0 (off) or positive", None, "sys_interval")
    data_dir = _get(doc, "data_dir", str, None)
    acl_file = _get(doc, "acl_file", str, None)
    listeners = []
    raw = _get(doc, "listener", list, [])
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _KeyError("listener must be [[listener]] tables", None, "listener")
        for key in item:
            if key not in _LISTENER:
                raise _KeyError(f"unknown listener setting {key!r}", "listener", key, i)
        bind = _get(item, "bind", str, None, "listener")
        if bind is None:
            raise _KeyError("a [[listener]] needs bind = \"HOST:PORT\"", None, "listener", i)
        try:
            listeners.append(parse_bind(bind))
        except ConfigError as e:
            raise _KeyError(str(e), "listener", "bind", i) from None
    if not listeners:
        raise ConfigError("no [[listener]] configured")
    limits = _get(doc, "limits", dict, {})
    values: dict[str, Any] = {}
    names = {f.name for f in fields(Settings)}
    for key, value in limits.items():
        if key not in _RANGES or key not in names:
            raise _KeyError(f"unknown limit {key!r}", "limits", key)
        kind: type | tuple[type, ...] = (int, float) if key == "connect_timeout" else int
        _get(limits, key, kind, None, "limits")
        low, high = _RANGES[key]
        if not low <= value <= high:
            raise _KeyError(f"{key} must be between {low:g} and {high:g}", "limits", key)
        values[key] = value
    settings = Settings(allow_anonymous=_get(doc, "allow_anonymous", bool, False),
                        sys_interval=float(sys_interval), **values)
    return Config(listeners, Path(data_dir) if data_dir else None, durability,
                  interval / 1000, log_level, Path(acl_file) if acl_file else None, settings)


def _line_of(text: str, table: str | None, key: str, index: int) -> int:
    """The line where `key` is set in `table` (the index-th `[[table]]`), else 0."""
    current: str | None = None
    seen = -1
    key_re = re.compile(rf"\s*(\"?){re.escape(key)}\1\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if header:
            current = header.group(1)
            if current == table or (table is None and current == key):
                seen += 1
                if table is None and seen == index:
                    return number  # the header of the offending table itself
            continue
        if current == table and (table is None or seen == index) and key_re.match(line):
            return number
    return 0
