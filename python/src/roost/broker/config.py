"""The broker's TOML configuration: parse, validate, and point at the offending line.

    data_dir = "/var/lib/roost"      # omit to keep nothing on disk
    durability = "batched"           # or "strict"; see roost.broker.store
    commit_interval_ms = 5           # batched mode: delay from first change to commit
    allow_anonymous = false          # only allowed when every listener is loopback
    sys_interval = 10                # seconds between $SYS updates; 0: off
    log_level = "info"
    shutdown_grace = 0               # seconds of /healthz 503 after SIGTERM, still serving

    password_file = "/etc/roost/passwd"  # mosquitto_passwd format, for service accounts
    metrics = { bind = "127.0.0.1:9883" }  # /metrics and /healthz; also bind = HOST, port = N
    # off loopback: metrics.tls = { cert, key, ca, crl, require_client_cert = true }

    [[listener]]
    name = "devices"
    bind = ":8883"                   # a plain (non-TLS) listener must be on loopback
    tls = { cert = "server.crt", key = "server.key", ca = "ca.crt", crl = "crl.pem" }
    # ... and in tls: require_client_cert = true, identity = "cn" (or "san-dns"...)
    allow_anonymous = false          # overrides the top-level switch for this listener
    client_id_is_identity = true     # a certificate's identity must be the client id
    proxy_protocol = "off"           # "v1", "v2", "any": required from trusted_proxies;
                                     # with tls: the header first, then the handshake
    trusted_proxies = ["10.0.0.0/29"]
    proxy_tls_identity = false       # true: PROXY v2 SSL CN is the identity

    [limits]                         # every field of roost.broker.settings.Settings
    max_packet_size = 1048576

    [[listener]]                     # where the other cluster nodes connect
    name = "cluster"
    bind = ":8884"
    tls = { cert = "broker-1.crt", key = "broker-1.key", ca = "ca.crt", crl = "crl.pem" }
    cluster = true                   # only "node:<peer>" certificates of [cluster].peers

    [cluster]                        # and [[bridge]]: see roost.broker.cluster_config
    node = "broker-1"
    peers = [ { name = "broker-2", host = "10.0.0.12", port = 8884 } ]
    tls = { cert = "broker-1.crt", key = "broker-1.key", ca = "ca.crt" }

Unknown keys are refused, so each new one must be declared here first.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.broker.settings import MAX_PACKET, NEVER, Settings

if TYPE_CHECKING:
    from roost.broker.cluster_config import BridgeConfig, ClusterConfig

LOG_LEVELS = ("debug", "info", "warning", "error")
_TOP = {"data_dir", "durability", "commit_interval_ms", "allow_anonymous", "sys_interval",
        "log_level", "listener", "limits", "acl_file", "password_file", "metrics",
        "cluster", "bridge", "shutdown_grace"}
_LISTENER = {"bind", "name", "tls", "allow_anonymous", "client_id_is_identity",
             "proxy_protocol", "trusted_proxies", "proxy_tls_identity", "cluster"}
_TLS = {"cert", "key", "ca", "crl", "require_client_cert", "identity"}
IDENTITIES = ("cn", "san-dns", "san-uri", "san-email")
PROXY_MODES = ("off", "v1", "v2", "any")
# (minimum, maximum) of each limit; all are integers but connect_timeout.
_RANGES: dict[str, tuple[float, float]] = {
    "max_packet_size": (64, MAX_PACKET),
    "max_connections": (0, 10_000_000),
    "connect_timeout": (0.1, 3600),
    "max_handshakes": (1, 100_000),
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
class TlsFiles:
    cert: Path
    key: Path
    ca: Path | None = None
    crl: Path | None = None
    require_client_cert: bool = True
    identity: str = "cn"  # which certificate name becomes the username


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int
    name: str = ""
    tls: TlsFiles | None = None
    allow_anonymous: bool | None = None  # None: the top-level allow_anonymous
    client_id_is_identity: bool = True
    proxy_protocol: str = "off"
    trusted_proxies: tuple[str, ...] = ()
    proxy_tls_identity: bool = False
    cluster: bool = False  # only the [cluster] peers' node certificates may connect

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
    password_file: Path | None = None
    metrics: Listener | None = None  # where /metrics and /healthz are served over HTTP
    cluster: ClusterConfig | None = None
    bridges: tuple[BridgeConfig, ...] = ()  # external brokers
    shutdown_grace: float = 0.0  # seconds /healthz says 503 before the listeners close

    def anonymous(self, listener: Listener) -> bool:
        """Whether this listener accepts clients without credentials."""
        if listener.allow_anonymous is None:
            return self.settings.allow_anonymous
        return listener.allow_anonymous


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


def check_exposure(config: Config) -> None:
    """Plain TCP and anonymous access are for loopback only: a Pi fleet's LAN is no
    trusted network."""
    if config.settings.allow_anonymous:
        public = [str(lst) for lst in config.listeners
                  if not lst.loopback and lst.allow_anonymous is None]
        if public:
            raise ConfigError("allow_anonymous needs every listener on a loopback address, "
                              f"not {', '.join(public)}")
    for i, lst in enumerate(config.listeners):
        if lst.loopback:
            continue
        if lst.tls is None and not lst.proxy_tls_identity:
            raise _KeyError(f"listener {lst}: plain TCP is only allowed on loopback; "
                            "add tls = {...}", "listener", "bind", i)
        if lst.allow_anonymous:
            raise _KeyError(f"listener {lst}: allow_anonymous needs a loopback address",
                            "listener", "allow_anonymous", i)


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
        check_exposure(config)
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


def _only(table: dict[str, Any], known: set[str], name: str, index: int = 0) -> None:
    """Refuse the first key of a [name] table that is not a known setting."""
    for key in table:
        if key not in known:
            raise _KeyError(f"unknown {name} setting {key!r}", name, key, index)


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
        listeners.append(_listener(item, i))
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
    password_file = _get(doc, "password_file", str, None)
    from roost.broker import cluster_config  # noqa: PLC0415 - it imports this module

    return Config(listeners, Path(data_dir) if data_dir else None, durability,
                  interval / 1000, log_level, Path(acl_file) if acl_file else None, settings,
                  Path(password_file) if password_file else None, _metrics(doc),
                  cluster_config.cluster(doc, listeners), cluster_config.bridges(doc),
                  shutdown_grace=_shutdown_grace(doc))


def _shutdown_grace(doc: dict[str, Any]) -> float:
    grace = _get(doc, "shutdown_grace", (int, float), 0)
    if not 0 <= grace <= 3600:
        raise _KeyError("shutdown_grace must be between 0 and 3600 seconds", None,
                        "shutdown_grace")
    return float(grace)


def _metrics(doc: dict[str, Any]) -> Listener | None:
    table = _get(doc, "metrics", dict, None)
    if table is None:
        return None
    unknown = set(table) - {"bind", "port", "tls"}
    if unknown:
        raise _KeyError(f"unknown metrics setting {sorted(unknown)[0]!r}", None, "metrics")
    host, port = table.get("bind", "127.0.0.1"), table.get("port", 9883)
    if isinstance(host, str) and "port" not in table:  # bind = "HOST:PORT" also works
        try:
            where = parse_bind(host)
            host, port = where.host, where.port
        except ConfigError:
            pass  # a bare HOST (or v6 address) with the default port
    if not isinstance(host, str) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise _KeyError("metrics needs bind = \"HOST:PORT\" (or \"HOST\" and port = "
                        "0..65535)", None, "metrics")
    tls = table.get("tls")
    if tls is not None and not isinstance(tls, dict):
        raise _KeyError("metrics.tls: expected a table", None, "metrics")
    try:
        files = None if tls is None else _tls(tls, 0)
    except _KeyError as e:  # reported on the metrics line
        raise _KeyError(f"metrics: {e}", None, "metrics") from None
    return Listener(host, port, name="metrics", tls=files)


def _indexed(item: dict[str, Any], table: str, i: int) -> Callable[..., Any]:
    """`_get` in the i-th `[[table]]`: errors name that table's line."""
    def get(key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        try:
            return _get(item, key, kind, default, table)
        except _KeyError as e:
            e.index = i
            raise

    return get


def _listener(item: dict[str, Any], i: int) -> Listener:
    get = _indexed(item, "listener", i)
    _only(item, _LISTENER, "listener", i)
    bind = get("bind", str, None)
    if bind is None:
        raise _KeyError("a [[listener]] needs bind = \"HOST:PORT\"", None, "listener", i)
    try:
        where = parse_bind(bind)
    except ConfigError as e:
        raise _KeyError(str(e), "listener", "bind", i) from None
    proxy = get("proxy_protocol", str, "off")
    if proxy not in PROXY_MODES:
        raise _KeyError(f"proxy_protocol must be one of {', '.join(PROXY_MODES)}",
                        "listener", "proxy_protocol", i)
    trusted = get("trusted_proxies", list, [])
    try:
        for net in trusted:
            ipaddress.ip_network(net)
    except (TypeError, ValueError):
        raise _KeyError(f"trusted_proxies: {net!r} is not an address or network",
                        "listener", "trusted_proxies", i) from None
    if proxy != "off" and not trusted:
        raise _KeyError("proxy_protocol needs trusted_proxies", "listener", "proxy_protocol", i)
    tls = get("tls", dict, None)
    if get("proxy_tls_identity", bool, False) and proxy not in ("v2", "any"):
        raise _KeyError("proxy_tls_identity needs proxy_protocol \"v2\" or \"any\"",
                        "listener", "proxy_tls_identity", i)
    files = None if tls is None else _tls(tls, i)
    if files is not None and not files.require_client_cert \
            and get("proxy_tls_identity", bool, False):
        raise _KeyError("proxy_tls_identity with tls needs require_client_cert = true: the "
                        "load balancer proves itself with its certificate", "listener",
                        "proxy_tls_identity", i)
    return Listener(
        where.host, where.port, name=get("name", str, str(where)),
        tls=files,
        allow_anonymous=get("allow_anonymous", bool, None),
        client_id_is_identity=get("client_id_is_identity", bool, True),
        proxy_protocol=proxy, trusted_proxies=tuple(trusted),
        proxy_tls_identity=get("proxy_tls_identity", bool, False),
        cluster=get("cluster", bool, False))


def _tls(table: dict[str, Any], i: int) -> TlsFiles:
    for name in table:
        if name not in _TLS:
            raise _KeyError(f"unknown tls setting {name!r}", "listener", "tls", i)
    paths: dict[str, Path | None] = {}
    for name in ("cert", "key", "ca", "crl"):
        value = table.get(name)
        if value is not None and not isinstance(value, str):
            raise _KeyError(f"tls.{name}: expected a file name", "listener", "tls", i)
        paths[name] = Path(value) if value else None
    require = table.get("require_client_cert", True)
    identity = table.get("identity", "cn")
    cert, key = paths["cert"], paths["key"]
    if cert is None or key is None:
        raise _KeyError("tls needs cert and key", "listener", "tls", i)
    if not isinstance(require, bool):
        raise _KeyError("tls.require_client_cert: expected bool", "listener", "tls", i)
    if identity not in IDENTITIES:
        raise _KeyError(f"tls.identity must be one of {', '.join(IDENTITIES)}",
                        "listener", "tls", i)
    if (require or paths["crl"]) and paths["ca"] is None:
        raise _KeyError("tls: client certificates and a CRL need ca", "listener", "tls", i)
    return TlsFiles(cert, key, paths["ca"], paths["crl"], require, identity)


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
