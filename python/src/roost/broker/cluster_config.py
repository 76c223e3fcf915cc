"""The `[cluster]` table and `[[bridge]]` tables of the broker's TOML configuration.

    [cluster]
    node = "broker-1"                # this node; its certificate's CN is "node:broker-1"
    peers = [ { name = "broker-2", host = "10.0.0.12", port = 8884 } ]
    tls = { cert = "broker-1.crt", key = "broker-1.key", ca = "ca.crt", crl = "crl.pem" }
    qos = 2                          # the bridges' QoS: messages cross at min(qos, this)
    queue_max = 100000               # QoS 1/2 messages a node keeps for a peer that is down
    queue_expiry = 604800            # seconds a peer may stay away before its queue goes
    backoff_initial = 0.5            # seconds; reconnects wait uniform(0, min(max, 2^n))
    backoff_max = 30

    [[bridge]]                       # an external broker, Mosquitto's topic syntax
    name = "cloud"
    address = "mqtt.example.com:8883"
    topics = ["sensors/# out 1 local/ remote/", "cmd/# in 1"]
    tls = { ca = "ca.crt", cert = "c.crt", key = "c.key" }   # optional, cert/key too
    username = "roost"               # optional, with password_file (the password alone)
    client_id = "roost-bridge-cloud" # the default
    keepalive = 60

`roost.broker.config` calls `cluster()` and `bridges()`; the errors are its `_KeyError`s
so `check-config` points at the offending line.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.broker.config import (
    ConfigError,
    Listener,
    TlsFiles,
    _get,
    _indexed,
    _KeyError,
    _only,
    parse_bind,
)
from roost.broker.topics import valid_topic_filter

NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
DIRECTIONS = ("in", "out", "both")
_CLUSTER = {"node", "peers", "tls", "qos", "queue_max", "queue_expiry", "backoff_initial",
            "backoff_max"}
_BRIDGE = {"name", "address", "topics", "tls", "username", "password_file", "client_id",
           "keepalive"}
_CLIENT_TLS = {"cert", "key", "ca", "crl"}


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    node: str
    peers: tuple[Peer, ...]
    tls: TlsFiles  # the client side of the outgoing bridges
    qos: int = 2
    queue_max: int = 100_000
    queue_expiry: int = 7 * 86400
    backoff_initial: float = 0.5
    backoff_max: float = 30.0

    @property
    def identity(self) -> str:
        return node_identity(self.node)

    def peer_identities(self) -> frozenset[str]:
        return frozenset(node_identity(p.name) for p in self.peers)


@dataclass(frozen=True, slots=True)
class BridgeTopic:
    """One Mosquitto `topic` line: `PATTERN [in|out|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]]`."""

    pattern: str
    direction: str = "out"
    qos: int = 0
    local_prefix: str = ""
    remote_prefix: str = ""

    @property
    def local(self) -> str:
        return self.local_prefix + self.pattern

    @property
    def remote(self) -> str:
        return self.remote_prefix + self.pattern


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    name: str
    host: str
    port: int
    topics: tuple[BridgeTopic, ...]
    tls: TlsFiles | None = None  # cert/key may be absent: then only the server is verified
    username: str | None = None
    password_file: Path | None = None
    client_id: str = ""
    keepalive: int = 60


def link_context(tls: TlsFiles) -> ssl.SSLContext:
    """The client TLS context of a cluster link or external bridge (`_client_tls` made
    `tls`: ca is set; require_client_cert False means no certificate of ours)."""
    from roost.security.tls import client_context  # noqa: PLC0415 - cryptography-free

    mine = tls.require_client_cert
    return client_context(tls.cert if mine else None, tls.key if mine else None,
                          tls.ca or tls.cert, tls.crl)


def load_files(cluster: ClusterConfig | None, bridges: tuple[BridgeConfig, ...]) -> None:
    """Read the certificates, keys and password files the links will use, as they will;
    raises OSError or roost.security.tls.TlsError."""
    if cluster is not None:
        link_context(cluster.tls)
    for bridge in bridges:
        if bridge.password_file is not None:
            bridge.password_file.read_text(encoding="utf-8")
        if bridge.tls is not None:
            link_context(bridge.tls)


def node_identity(name: str) -> str:
    """The certificate CN, client id and username of a cluster node."""
    return f"node:{name}"


def parse_topic_line(line: str) -> BridgeTopic:
    """Mosquitto's bridge `topic` syntax (the word `topic` is optional); `""` is empty.
    Raises ValueError with the reason."""
    words = line.split()
    if words and words[0] == "topic":
        words = words[1:]
    words = ["" if w == '""' else w for w in words]
    if not 1 <= len(words) <= 5 or len(words) == 4:
        raise ValueError("expected PATTERN [in|out|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]]")
    pattern = words[0]
    direction = words[1] if len(words) > 1 else "out"
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be in, out or both, not {direction!r}")
    qos = 0
    if len(words) > 2:
        if words[2] not in ("0", "1", "2"):
            raise ValueError(f"QoS must be 0, 1 or 2, not {words[2]!r}")
        qos = int(words[2])
    local, remote = (words[3], words[4]) if len(words) == 5 else ("", "")
    for prefix in (local, remote):
        if "+" in prefix or "#" in prefix:
            raise ValueError(f"prefix {prefix!r} may not hold wildcards")
    if not pattern and not (local and remote):
        raise ValueError("an empty pattern needs both prefixes (they are then the topics)")
    topic = BridgeTopic(pattern, direction, qos, local, remote)
    for name in (topic.local, topic.remote):
        if not valid_topic_filter(name):
            raise ValueError(f"{name!r} is not a valid topic filter")
    return topic


def cluster(doc: dict[str, Any], listeners: list[Listener]) -> ClusterConfig | None:
    """The [cluster] table, checked against the listeners (exactly the cluster ones
    need it, and they need mutual TLS)."""
    table = _get(doc, "cluster", dict, None)
    marked = [i for i, lst in enumerate(listeners) if lst.cluster]
    if table is None:
        if marked:
            raise _KeyError("a cluster listener needs a [cluster] table", "listener",
                            "cluster", marked[0])
        return None
    _only(table, _CLUSTER, "cluster")
    node = _get(table, "node", str, None, "cluster")
    if node is None or not NODE_NAME.fullmatch(node):
        raise _KeyError("cluster.node must be this node's name (letters, digits, . _ -)",
                        "cluster" if node is not None else None, "node" if node is not None
                        else "cluster")
    peers = _peers(_get(table, "peers", list, [], "cluster"), node)
    tls = _client_tls(_get(table, "tls", dict, None, "cluster"), "cluster", 0, need_cert=True)
    if not marked:
        raise _KeyError("[cluster] needs a [[listener]] with cluster = true", None,
                        "cluster")
    for i in marked:
        lst = listeners[i]
        if lst.tls is None or lst.tls.ca is None or not lst.tls.require_client_cert:
            raise _KeyError("a cluster listener needs tls with ca and client certificates",
                            "listener", "cluster", i)
    qos = _get(table, "qos", int, 2, "cluster")
    if qos not in (0, 1, 2):
        raise _KeyError("cluster.qos must be 0, 1 or 2", "cluster", "qos")
    queue_max = _get(table, "queue_max", int, 100_000, "cluster")
    expiry = _get(table, "queue_expiry", int, 7 * 86400, "cluster")
    initial = _get(table, "backoff_initial", (int, float), 0.5, "cluster")
    cap = _get(table, "backoff_max", (int, float), 30, "cluster")
    if not 1 <= queue_max <= 100_000_000:
        raise _KeyError("cluster.queue_max must be between 1 and 100000000", "cluster",
                        "queue_max")
    if not 0 <= expiry <= 0xFFFFFFFF:
        raise _KeyError("cluster.queue_expiry must be 0..4294967295 seconds", "cluster",
                        "queue_expiry")
    if not 0 < initial <= cap <= 3600:
        raise _KeyError("cluster backoff needs 0 < backoff_initial <= backoff_max <= 3600",
                        "cluster", "backoff_initial" if "backoff_initial" in table
                        else "backoff_max")
    return ClusterConfig(node, peers, tls, qos, queue_max, expiry, float(initial), float(cap))


def _peers(raw: list[Any], node: str) -> tuple[Peer, ...]:
    peers: list[Peer] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"name", "host", "port"}:
            raise _KeyError("each peer is { name = \"...\", host = \"...\", port = N }",
                            "cluster", "peers")
        name, host, port = item.get("name"), item.get("host"), item.get("port")
        if not isinstance(name, str) or not NODE_NAME.fullmatch(name):
            raise _KeyError(f"peer {name!r}: a name (letters, digits, . _ -) is needed",
                            "cluster", "peers")
        if not isinstance(host, str) or not host or not isinstance(port, int) \
                or isinstance(port, bool) or not 0 < port <= 65535:
            raise _KeyError(f"peer {name!r} needs host and port (1..65535)", "cluster",
                            "peers")
        if name == node:
            raise _KeyError(f"peer {name!r} is this node itself (cluster.node)", "cluster",
                            "peers")
        if any(p.name == name for p in peers):
            raise _KeyError(f"peer {name!r} is listed twice", "cluster", "peers")
        peers.append(Peer(name, host, port))
    return tuple(peers)


def _client_tls(table: dict[str, Any] | None, where: str, i: int, *,
                need_cert: bool) -> TlsFiles:
    if table is None:
        raise _KeyError(f"{where} needs tls = {{ cert, key, ca }}", None, where, i)
    paths: dict[str, Path | None] = {}
    for name, value in table.items():
        if name not in _CLIENT_TLS:
            raise _KeyError(f"unknown tls setting {name!r}", where, "tls", i)
        if not isinstance(value, str) or not value:
            raise _KeyError(f"tls.{name}: expected a file name", where, "tls", i)
        paths[name] = Path(value)
    cert, key, ca = paths.get("cert"), paths.get("key"), paths.get("ca")
    if ca is None or (need_cert and (cert is None or key is None)) or \
            (cert is None) != (key is None):
        what = "cert, key and ca" if need_cert else "ca (and cert with key)"
        raise _KeyError(f"{where} tls needs {what}", where, "tls", i)
    # A bridge without a client certificate keeps cert=key=ca here and says so below.
    return TlsFiles(cert or ca, key or ca, ca, paths.get("crl"),
                    require_client_cert=cert is not None)


def bridges(doc: dict[str, Any]) -> tuple[BridgeConfig, ...]:
    raw = _get(doc, "bridge", list, [])
    found: list[BridgeConfig] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _KeyError("bridge must be [[bridge]] tables", None, "bridge")
        found.append(_bridge(item, i))
        if sum(1 for b in found if b.name == found[-1].name) > 1:
            raise _KeyError(f"bridge {found[-1].name!r} is configured twice", "bridge",
                            "name", i)
    return tuple(found)


def _bridge(item: dict[str, Any], i: int) -> BridgeConfig:
    get = _indexed(item, "bridge", i)
    _only(item, _BRIDGE, "bridge", i)
    name = get("name", str, None)
    if name is None or not NODE_NAME.fullmatch(name):
        raise _KeyError("a [[bridge]] needs name = \"...\" (letters, digits, . _ -)",
                        None, "bridge", i)
    address = get("address", str, None)
    if address is None:
        raise _KeyError(f"bridge {name!r} needs address = \"HOST:PORT\"", None, "bridge", i)
    try:
        where = parse_bind(address)
    except ConfigError as e:
        raise _KeyError(str(e), "bridge", "address", i) from None
    lines = get("topics", list, [])
    if not lines:
        raise _KeyError(f"bridge {name!r} needs topics = [\"PATTERN in|out|both QOS ...\"]",
                        None, "bridge", i)
    topics = []
    for line in lines:
        if not isinstance(line, str):
            raise _KeyError("bridge topics are strings", "bridge", "topics", i)
        try:
            topics.append(parse_topic_line(line))
        except ValueError as e:
            raise _KeyError(f"bridge topic {line!r}: {e}", "bridge", "topics", i) from None
    table = get("tls", dict, None)
    tls = None if table is None else _client_tls(table, "bridge", i, need_cert=False)
    username = get("username", str, None)
    password = get("password_file", str, None)
    if password is not None and username is None:
        raise _KeyError("password_file needs username", "bridge", "password_file", i)
    keepalive = get("keepalive", int, 60)
    if not 0 <= keepalive <= 65535:
        raise _KeyError("keepalive must be 0..65535", "bridge", "keepalive", i)
    return BridgeConfig(name, where.host, where.port, tuple(topics), tls, username,
                        Path(password) if password else None,
                        get("client_id", str, f"roost-bridge-{name}"), keepalive)
