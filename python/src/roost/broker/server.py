"""The one module that does network I/O: asyncio Protocols around the sans-IO engine.

Every socket event is handed to the engine with the wall-clock time; afterwards
`flush()` writes whatever the engine queued for any connection and closes the ones it
marked. Store commits happen here too: in strict mode before any reply of the chunk
leaves, in batched mode `commit_interval` after the first uncommitted change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import sqlite3
import ssl
import sys
import time
from asyncio import sslproto
from pathlib import Path
from typing import TYPE_CHECKING

from roost import sdnotify
from roost.broker.config import Config
from roost.broker.connection import Connection
from roost.broker.engine import Broker
from roost.broker.listeners import ListenerState
from roost.broker.policy import AclPolicy, AnonymousPolicy, Policy
from roost.broker.ratelimit import PerKey
from roost.broker.store import NullStore, SqliteStore, Store
from roost.mqtt.errors import InsufficientData
from roost.mqtt.packets import ReasonCode
from roost.security.acl import Acl
from roost.security.errors import LineError
from roost.security.passwd import PasswordFile
from roost.security.proxy import (
    V1_MAX,
    V1_PREFIX,
    V2_HEADER,
    V2_SIGNATURE,
    ProxyError,
    ProxyInfo,
    parse_proxy,
)
from roost.security.tls import TlsError, certificate_serial, peer_identity

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from roost.broker.links import Links

log = logging.getLogger("roost.broker")

HTTP_TIMEOUT = 5.0  # seconds for a scraper to send its request
_WALL0, _MONO0 = time.time(), time.monotonic()


def clock() -> float:
    """The engine's `now`: wall time at start plus monotonic time since. A Pi without a
    real-time clock steps its clock by months when NTP syncs after boot; keepalive, will
    delay and expiry timers must neither fire nor stall because of it. Deadlines kept in
    the store are wall times, re-anchored at the next start."""
    return _WALL0 + (time.monotonic() - _MONO0)
HTTP_TIMEOUT = 5.0  # seconds for a scraper to send its request
MAX_PROXY_HEADER = 16 + 4096  # HAProxy's TLVs (SSL, CN, ALPN) are far shorter

# A client that reads slower than we write is dropped beyond this much buffered output.
MAX_WRITE_BUFFER = 64 * 1024 * 1024

# Bytes of ciphertext one read of a TLS connection takes from its socket, and of clear text
# one read takes from OpenSSL, on the stock event loop. Its SSL transport
# (asyncio.sslproto.SSLProtocol, Python 3.11-3.13) gives every connection a zero-filled
# 256 KiB read buffer of this size, for as long as the connection lives: 292 KB of RSS per
# idle mutual-TLS connection instead of uvloop's 38 KB (1,000 connections on loopback),
# 1.4 GB for 5,000 devices. 16 KiB is one full TLS record; a larger packet takes more
# reads, nothing else. uvloop's transport has its own buffers and ignores this.
TLS_READ_BUFFER = 16 * 1024


def _forwarded(info: ProxyInfo) -> str | None:
    """The client's HOST:PORT a PROXY header names; None for LOCAL and UNKNOWN."""
    if info.source_addr is None:
        return None
    host = f"[{info.source_addr}]" if ":" in info.source_addr else info.source_addr
    return f"{host}:{info.source_port}"


class _Protocol(asyncio.Protocol):
    __slots__ = ("conn", "forwarded", "listener", "peer", "pending", "proxied_cn", "serial",
                 "server", "transport")

    def __init__(self, server: Server, listener: ListenerState,
                 forwarded: str | None = None, proxied_cn: str | None = None) -> None:
        self.server = server
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.conn: Connection | None = None
        self.forwarded = forwarded  # a TLS listener's PROXY address, read before the handshake
        self.proxied_cn = proxied_cn  # and the CN the proxy verified (proxy_tls_identity)
        self.peer = ""
        self.serial: int | None = None  # the client certificate's, for CRL reloads
        self.pending = b""  # bytes before a complete PROXY header

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        tls = self.listener.tls
        identity = None
        if tls is not None:  # the handshake is over: asyncio's SSL transport calls us after
            sslobj = transport.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True)
            self.serial = None if der is None else certificate_serial(der)
            identity = peer_identity(sslobj, tls.identity)
            if self.listener.config.proxy_tls_identity:
                # TLS re-encrypted by the load balancer: the certificate is the proxy's
                # own; the client is the one it verified and named in the header.
                identity = self.proxied_cn
        proxy = self.listener.proxy
        if proxy is None or tls is not None:  # TLS: PROXY was read before the handshake
            if self.forwarded is not None:
                log.debug("%s is %s by PROXY", self.peer, self.forwarded)
                self.peer = self.forwarded
            self.attach(identity)
        elif not isinstance(peer, tuple) or not proxy.trusted(peer[0]):
            log.warning("closing %s: not a trusted proxy on %s", self.peer,
                        self.listener.auth.name)
            transport.abort()  # type: ignore[attr-defined]
        else:  # the header must come within connect_timeout, like a CONNECT
            asyncio.get_running_loop().call_later(
                self.server.config.settings.connect_timeout, self._header_timeout)

    def _header_timeout(self) -> None:
        if self.conn is None and self.transport is not None:
            log.info("closing %s: no PROXY header in time", self.peer)
            self.transport.abort()

    def _proxy_header(self, data: bytes) -> None:
        """Read the PROXY header, then hand the client over to the engine."""
        transport = self.transport
        assert transport is not None
        self.pending += data
        try:
            info, used = parse_proxy(self.pending)
            wanted = self.listener.config.proxy_protocol
            if wanted not in ("any", f"v{info.version}"):
                raise ProxyError(f"PROXY v{info.version} where {wanted} is configured")
        except InsufficientData:
            if len(self.pending) < MAX_PROXY_HEADER:
                return
            info, used = None, 0
            why = "PROXY header too long"
        except ProxyError as e:
            info, used, why = None, 0, str(e)
        if info is None:
            log.warning("closing %s: %s", self.peer, why)
            transport.abort()
            return
        rest, self.pending = self.pending[used:], b""
        proxied = self.peer
        self.peer = _forwarded(info) or self.peer
        log.debug("%s is %s by PROXY v%d", proxied, self.peer, info.version)
        identity = None
        if self.listener.config.proxy_tls_identity and info.ssl_verified:
            identity = info.ssl_cn  # HAProxy verified the certificate and names it
        self.attach(identity)
        if rest:
            self.data_received(rest)

    def attach(self, identity: str | None) -> None:
        """The transport is ready for MQTT: hand it to the engine."""
        self.conn = conn = self.server.broker.connection_made(
            self.peer, clock(), identity=identity, auth=self.listener.auth)
        conn.handle = self
        if conn.closing:  # over max_connections
            self.server.flush()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            self._proxy_header(data)
            return
        server = self.server
        server.broker.data_received(conn, data, clock())
        server.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        conn = self.conn
        if conn is not None:
            self.server.broker.connection_lost(conn, clock())
            self.server.flush()
        self.transport = None


def _tls_reason(error: Exception, timeout: float) -> str:
    """OpenSSL's words without the `[SSL: CODE]` and `(_ssl.c:N)` wrapping."""
    if isinstance(error, ssl.SSLError):
        return re.sub(r"^\[SSL: \w+\] | \(_ssl\.c:\d+\)$", "", str(error.args[-1]))
    if isinstance(error, ConnectionAbortedError | TimeoutError):
        return f"no handshake within {timeout:g} s"
    if isinstance(error, ConnectionResetError):
        return "closed during the handshake"
    return str(error) or type(error).__name__


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                        size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise ProxyError("closed inside the PROXY header")
        data += chunk
    return data


async def _read_proxy(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                      wanted: str) -> ProxyInfo:
    """Read a PROXY header and not one byte more: what follows is the client's TLS."""
    data = await _recv_exactly(loop, sock, len(V1_PREFIX))
    if data == V1_PREFIX:  # a CRLF-ended line: byte by byte, at most V1_MAX
        while not data.endswith(b"\r\n") and len(data) < V1_MAX:
            data += await _recv_exactly(loop, sock, 1)
    elif V2_SIGNATURE.startswith(data):
        data += await _recv_exactly(loop, sock, V2_HEADER - len(data))
        length = int.from_bytes(data[V2_HEADER - 2:V2_HEADER], "big")
        if not data.startswith(V2_SIGNATURE):
            raise ProxyError("no PROXY protocol header")
        if V2_HEADER + length > MAX_PROXY_HEADER:
            raise ProxyError("PROXY header too long")
        data += await _recv_exactly(loop, sock, length)
    try:
        info, _ = parse_proxy(data)  # a TLS ClientHello instead of a header fails here
    except InsufficientData:
        raise ProxyError("PROXY v1 line too long or not ended by CRLF") from None
    if wanted not in ("any", f"v{info.version}"):
        raise ProxyError(f"PROXY v{info.version} where {wanted} is configured")
    return info


def open_store(config: Config) -> Store:
    if config.data_dir is None:
        log.warning("no data_dir: retained messages and sessions will not survive a restart")
        return NullStore()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStore(Path(config.data_dir) / "roost.db", strict=config.durability == "strict")


def load_acl(path: Path) -> Acl:
    """Parse an ACL file; raises OSError or LineError (`FILE:LINE: reason`)."""
    return Acl.parse(path.read_text(encoding="utf-8"), source=str(path))


def load_passwords(path: Path) -> PasswordFile:
    """Parse a mosquitto_passwd file; raises OSError or LineError."""
    return PasswordFile.parse(path.read_text(encoding="utf-8"), source=str(path))


def make_policy(config: Config) -> Policy:
    allow = config.settings.allow_anonymous
    passwords = None if config.password_file is None else load_passwords(config.password_file)
    nodes = frozenset() if config.cluster is None else config.cluster.peer_identities()
    if config.acl_file is None:
        return AnonymousPolicy(allow, passwords, nodes)
    return AclPolicy(allow, load_acl(config.acl_file), passwords, nodes)


class Server:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.strict = config.durability == "strict"
        self.policy = make_policy(config)
        self.broker = Broker(config.settings, store, now=clock(), policy=self.policy)
        self.listeners = [ListenerState(lst, config.anonymous(lst)) for lst in config.listeners]
        self.servers: list[asyncio.Server] = []
        self._accepting: list[tuple[socket.socket, asyncio.Task[None]]] = []  # PROXY + TLS
        self._handshakes: set[asyncio.Task[None]] = set()
        self._tls_log = PerKey(interval=60.0)  # failed handshakes: a line per address a minute
        self.tls_failures = 0
        self.accepting = False  # what /healthz reports: listening and not shutting down
        self.registry: CollectorRegistry | None = None  # made with the metrics endpoint
        self.metrics_listener: ListenerState | None = None  # its TLS, reloaded on SIGHUP
        self.http_server: asyncio.Server | None = None  # closed last: 503 while stopping
        self._commit_handle: asyncio.TimerHandle | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._watchdog = sdnotify.watchdog_period()  # systemd WatchdogSec, halved
        self._watchdog_at = 0.0
        self.links: Links | None = None  # cluster peers and external bridges

    async def start_http(self) -> tuple[str, int] | None:
        """Serve /metrics and /healthz on the `metrics` address; returns it once bound."""
        where = self.config.metrics
        if where is None:
            return None
        from prometheus_client import CollectorRegistry  # noqa: PLC0415 - slow to import

        from roost.broker.metrics import BrokerCollector  # noqa: PLC0415

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(BrokerCollector(self))
        if not where.loopback and where.tls is None:
            log.warning("metrics on %s without tls: anyone on the network can read them", where)
        self.metrics_listener = state = ListenerState(where, anonymous=False)
        srv = await asyncio.start_server(
            self._http, where.host, where.port, reuse_address=True, ssl=state.front_context(),
            ssl_handshake_timeout=HTTP_TIMEOUT if state.tls else None)
        self.http_server = srv
        host, port = srv.sockets[0].getsockname()[:2]
        return host, port

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A minimal HTTP/1.0 answer: enough for Prometheus and HAProxy's httpchk."""
        try:
            request = await asyncio.wait_for(reader.readline(), HTTP_TIMEOUT)
            while await asyncio.wait_for(reader.readline(), HTTP_TIMEOUT) not in (
                    b"\r\n", b"\n", b""):
                pass
            path = request.split()[1] if len(request.split()) > 1 else b""
            if path == b"/metrics" and self.registry is not None:
                from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

                status, body, kind = "200 OK", generate_latest(self.registry), CONTENT_TYPE_LATEST
            elif path == b"/healthz":
                status = "200 OK" if self.accepting else "503 Service Unavailable"
                body, kind = self.health().encode() + b"\n", "application/json"
            else:
                status, body, kind = "404 Not Found", b"not found\n", "text/plain"
            writer.write(f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                         .encode() + body)
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    def health(self) -> str:
        """/healthz: accepting clients (the status code) and each cluster bridge's state."""
        links = self.links
        return json.dumps({
            "accepting": self.accepting, "node": "" if links is None else links.node,
            "bridges": {} if links is None else links.peers(),
            "external_bridges": {} if links is None else links.bridges()})

    async def start(self) -> list[tuple[str, int]]:
        """Listen on every configured address; returns the bound (host, port) pairs."""
        loop = asyncio.get_running_loop()
        # for every TLS connection of this process: clients, peers' links and bridges
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER
        if self.config.cluster is not None or self.config.bridges:
            from roost.broker.links import Links  # noqa: PLC0415 - clusters and bridges only

            self.links = Links(self)  # its engine hooks are in place for the first client
        bound = []
        for state in self.listeners:
            if state.tls is not None:
                bound.extend(self._listen_tls(state))
                continue
            srv = await loop.create_server(
                lambda s=state: _Protocol(self, s),
                state.config.host, state.config.port, backlog=4096, reuse_address=True,
                ssl=state.front_context(),
                ssl_handshake_timeout=self.config.settings.connect_timeout if state.tls else None)
            self.servers.append(srv)
            for sock in srv.sockets:
                host, port = sock.getsockname()[:2]
                bound.append((host, port))
        loop.call_soon(self._tick)  # after the caller has announced READY
        self.accepting = True
        if self.links is not None:
            self.links.start()
        return bound

    def _listen_tls(self, state: ListenerState) -> list[tuple[str, int]]:
        """A TLS listener accepts by hand, so that a failed handshake can be logged with
        its peer and reason (asyncio's own TLS server drops it silently), and so that
        behind a TLS-passthrough proxy the PROXY header, sent in clear before the
        client's handshake, is read up to its last byte and not one byte more."""
        config = state.config
        context = state.front_context()
        assert context is not None
        bound = []
        infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        for family, address in dict.fromkeys((i[0], i[4][:2]) for i in infos):
            sock = socket.create_server(address, family=family, backlog=4096)
            sock.setblocking(False)
            task = asyncio.get_running_loop().create_task(self._accept(state, sock, context))
            self._accepting.append((sock, task))
            host, port = sock.getsockname()[:2]
            bound.append((host, port))
        return bound

    async def _accept(self, state: ListenerState, sock: socket.socket,
                      context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.config.settings.max_handshakes)

        def done(task: asyncio.Task[None]) -> None:
            self._handshakes.discard(task)
            slots.release()

        while True:
            await slots.acquire()  # a storm waits in the backlog, not in the loop's queue
            try:
                client, address = await loop.sock_accept(sock)
            except OSError as e:  # out of file descriptors, say: wait rather than spin
                slots.release()
                log.error("accept on %s: %s", state.auth.name, e)
                await asyncio.sleep(0.1)
                continue
            task = loop.create_task(self._handshake(state, client, address, context))
            self._handshakes.add(task)
            task.add_done_callback(done)

    async def _handshake(self, state: ListenerState, sock: socket.socket,
                         address: tuple[str, int], context: ssl.SSLContext) -> None:
        """[PROXY header from a trusted proxy,] the TLS handshake, then MQTT."""
        loop = asyncio.get_running_loop()
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        peer = f"{host}:{address[1]}"
        timeout = self.config.settings.connect_timeout
        sock.setblocking(False)
        forwarded = cn = None
        proxy = state.proxy
        if proxy is not None:
            if not proxy.trusted(address[0]):
                log.warning("closing %s: not a trusted proxy on %s", peer, state.auth.name)
                sock.close()
                return
            try:
                async with asyncio.timeout(timeout):
                    info = await _read_proxy(loop, sock, state.config.proxy_protocol)
            except (ProxyError, OSError, TimeoutError) as e:
                why = "no PROXY header in time" if isinstance(e, TimeoutError) else str(e)
                log.warning("closing %s: %s", peer, why)
                sock.close()
                return
            forwarded = _forwarded(info)
            if state.config.proxy_tls_identity and info.ssl_verified:
                cn = info.ssl_cn
        try:
            await loop.connect_accepted_socket(
                lambda: _Protocol(self, state, forwarded, cn), sock, ssl=context,
                ssl_handshake_timeout=timeout)
        except (OSError, TimeoutError) as e:  # ssl.SSLError is an OSError
            sock.close()
            self._tls_failed(state, forwarded or peer, peer, e)

    def _tls_failed(self, state: ListenerState, client: str, peer: str,
                    error: Exception) -> None:
        """Count every failed handshake; log the first of each client address a minute."""
        self.tls_failures += 1
        held = self._tls_log.allow(client.rpartition(":")[0], time.monotonic())
        if held is None:
            return
        via = "" if client == peer else f" (by PROXY from {peer})"
        more = f"; {held} more from this address not logged" if held else ""
        log.warning("TLS handshake with %s%s on %s failed: %s%s", client, via,
                    state.auth.name, _tls_reason(error, self.config.settings.connect_timeout),
                    more)

    def flush(self) -> None:
        store = self.store
        if store.dirty:
            if self.strict:
                if not self._commit():  # before any PUBACK/PUBREC of this chunk leaves
                    self._abort_dirty()
                    return
            elif self._commit_handle is None:
                loop = asyncio.get_running_loop()
                self._commit_handle = loop.call_later(self.config.commit_interval, self._commit)
        stats = self.broker.stats
        for conn in self.broker.take_dirty():
            proto = conn.handle
            transport = proto.transport if proto is not None else None
            if transport is None:
                conn.out = []
                continue
            if conn.out:
                data = conn.take_output()
                stats.bytes_sent += len(data)
                transport.write(data)
                if not conn.closing and transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
                    log.warning("closing %r: it reads slower than it is sent to", conn)
                    conn.reason = "reads slower than it is sent to"
                    transport.abort()
                    continue
            if conn.closing:
                transport.close()

    def _commit(self) -> bool:
        self._commit_handle = None
        if not self.store.dirty:
            return True
        try:
            self.store.commit()
        except sqlite3.Error:
            # Kept pending; retried at the next commit. Strict mode sends no ack meanwhile.
            log.exception("store commit failed")
            return False
        return True

    def _abort_dirty(self) -> None:
        """Strict mode could not commit: drop these connections rather than send acks
        for messages that are not on disk; their clients resend on reconnect."""
        for conn in self.broker.take_dirty():
            proto = conn.handle
            conn.out = []
            if proto is not None and proto.transport is not None:
                proto.transport.abort()

    def _tick(self) -> None:
        now = clock()
        deadline = self.broker.tick(now)
        self.flush()
        if self._watchdog is not None and now >= self._watchdog_at:
            sdnotify.notify("WATCHDOG=1")  # the loop is alive: it just ran the timers
            self._watchdog_at = now + self._watchdog
        loop = asyncio.get_running_loop()
        self._tick_handle = loop.call_later(max(0.05, deadline - now), self._tick)

    def reload(self) -> None:
        """SIGHUP: re-read certificates, CRLs, the ACL and the password file. Everything is
        parsed first; one bad file keeps the whole running configuration."""
        config = self.config
        try:
            policy = make_policy(config)
            listeners = [ListenerState(lst, config.anonymous(lst)) for lst in config.listeners]
            metrics = self.metrics_listener
            metrics_tls = None if metrics is None else ListenerState(metrics.config, False).tls
            relink = None if self.links is None else self.links.reloaded()
        except (OSError, LineError, TlsError) as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            return
        self.policy = self.broker.policy = policy
        if metrics is not None:
            metrics.tls = metrics_tls
        for old, new in zip(self.listeners, listeners, strict=True):
            old.tls = new.tls  # the protocols hold `old`: new handshakes see the new files
        if relink is not None:
            relink()  # the bridges' next connections use the new certificates
        log.info("reloaded certificates, CRLs, ACL and password file")
        self._drop_revoked()

    def _drop_revoked(self) -> None:
        """A CRL is read at handshake only: clients already in are checked here."""
        for conn in list(self.broker.connections):
            proto = conn.handle
            tls = proto.listener.tls if proto is not None else None
            if tls is not None and proto.serial in tls.revoked:
                log.warning("disconnecting %r: its certificate (serial %x) is revoked",
                            conn, proto.serial)
                self.broker.disconnect(conn, ReasonCode.ADMINISTRATIVE_ACTION,
                                       "certificate revoked")
        self.flush()

    async def stop(self) -> None:
        """Close listeners, say goodbye to v5 clients, commit and close the store."""
        sdnotify.notify("STOPPING=1")
        self.accepting = False
        if self.links is not None:
            await self.links.stop()
        for srv in self.servers:
            srv.close()
        for sock, task in self._accepting:
            task.cancel()
            sock.close()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        self.broker.shutdown(clock())
        self.flush()
        if self._commit_handle is not None:
            self._commit_handle.cancel()
            self._commit_handle = None
        await asyncio.sleep(0)  # let transports hand their last bytes to the kernel
        self.store.close()
        if self.http_server is not None:  # /healthz said 503 all along
            self.http_server.close()


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT; print each bound address on stderr."""
    store = open_store(config)
    server = Server(config, store)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, server.reload)  # before anyone learns we are up
    http = await server.start_http()  # first, so /healthz says 503 until clients may come
    if http is not None:
        print(f"roost broker metrics on {http[0]}:{http[1]}", file=sys.stderr, flush=True)
    shown = []
    for host, port in await server.start():
        shown.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        print(f"roost broker listening on {shown[-1]}", file=sys.stderr, flush=True)
    sdnotify.notify("READY=1", f"STATUS=listening on {', '.join(shown)}")
    await stop.wait()
    server.accepting = False  # /healthz: 503 from now on
    if config.shutdown_grace > 0:  # time for health checks to send new clients elsewhere
        log.info("shutting down in %gs (health checks fail meanwhile; signal again: now)",
                 config.shutdown_grace)
        stop.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), config.shutdown_grace)
    log.info("shutting down")
    await server.stop()


def run(config: Config) -> None:
    """Run the broker on uvloop when it is installed, else on the stock event loop."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
