"""Who may connect, publish and subscribe: the seam later issues fill with passwords,
TLS identities and ACL files. The engine asks; a policy answers without I/O."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from roost.mqtt.packets import Connect, ReasonCode
from roost.security.acl import Access, Acl
from roost.security.passwd import PasswordFile

if TYPE_CHECKING:
    from roost.broker.connection import Connection


log = logging.getLogger("roost.broker")
ANONYMOUS_OFF = "not authorized: anonymous access is off"


@dataclass(frozen=True, slots=True)
class ListenerAuth:
    """What a listener asks of its clients; the server hangs it on each connection."""

    name: str = ""
    allow_anonymous: bool = False
    client_id_is_identity: bool = True  # a certificate's identity must be the client id
    cluster: bool = False  # only the cluster's peer nodes may connect here


class Policy(Protocol):
    # True when deliveries must be checked one by one with `authorize_read`; the
    # router's matches are used as they are otherwise (the fast path).
    checks_reads: bool

    def authenticate(self, conn: Connection, connect: Connect) -> tuple[ReasonCode, str]:
        """SUCCESS, or the v5 reason code to refuse the CONNECT with and why."""
        ...

    def authorize_publish(self, conn: Connection, topic: str) -> bool: ...

    def authorize_publish_as(self, client_id: str, username: str | None, topic: str) -> bool:
        """May this client publish there (asked while it is offline: the broker answers a
        request it could not deliver only where the client could have answered)."""
        ...

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool: ...

    def authorize_read(self, client_id: str, username: str | None, topic: str) -> bool: ...


class AnonymousPolicy:
    """Who a client is: its certificate's identity (from TLS or a trusted PROXY header)
    becomes its username; otherwise a username and password from `passwords`; otherwise
    it is anonymous, which its listener (or `allow_anonymous`) must allow.

    Clients may not publish into `$SYS/`, which only the broker writes, nor use
    `$cluster/`. The cluster identities (`cluster_ids`, "node:<peer>") connect on
    cluster listeners only, and nothing else does; a node may read everything (it
    delivers to its own clients under its own ACL).
    """

    checks_reads = False

    def __init__(self, allow_anonymous: bool, passwords: PasswordFile | None = None,
                 cluster_ids: frozenset[str] = frozenset()) -> None:
        self.allow_anonymous = allow_anonymous
        self.passwords = passwords
        self.cluster_ids = cluster_ids

    def authenticate(self, conn: Connection, connect: Connect) -> tuple[ReasonCode, str]:
        auth = conn.auth
        identity = conn.identity
        on_cluster = auth is not None and auth.cluster
        if on_cluster or (self.cluster_ids and conn.client_id.startswith("node:")):
            if not on_cluster or identity not in self.cluster_ids \
                    or conn.client_id != identity:
                log.warning("refusing %s: %r (certificate %r) is not a cluster peer here",
                            conn.peer, conn.client_id, identity)
                return ReasonCode.NOT_AUTHORIZED, "not authorized: not a cluster peer"
            conn.username = identity
            return ReasonCode.SUCCESS, ""
        if identity is not None:
            if (auth is None or auth.client_id_is_identity) and conn.client_id != identity:
                log.warning("refusing %s: client id %r is not its certificate identity %r",
                            conn.peer, conn.client_id, identity)
                return ReasonCode.NOT_AUTHORIZED, (
                    f"not authorized: client id {conn.client_id!r} is not the "
                    f"certificate identity {identity!r}")
            conn.username = identity
            return ReasonCode.SUCCESS, ""
        if connect.username is not None and self.passwords is not None:
            if self.passwords.verify(connect.username, connect.password or b""):
                return ReasonCode.SUCCESS, ""
            log.warning("refusing %s: bad password for user %r", conn.peer, connect.username)
            return ReasonCode.BAD_USER_NAME_OR_PASSWORD, "bad user name or password"
        anonymous = self.allow_anonymous if auth is None else auth.allow_anonymous
        if anonymous:
            return ReasonCode.SUCCESS, ""
        return ReasonCode.NOT_AUTHORIZED, ANONYMOUS_OFF

    def authorize_publish(self, conn: Connection, topic: str) -> bool:
        return self.authorize_publish_as(conn.client_id, conn.username, topic)

    def authorize_publish_as(self, client_id: str, username: str | None, topic: str) -> bool:
        return not topic.startswith(("$SYS/", "$cluster/"))

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool:
        return not topic_filter.startswith("$cluster/") or conn.client_id in self.cluster_ids

    def authorize_read(self, client_id: str, username: str | None, topic: str) -> bool:
        return True


class AclPolicy(AnonymousPolicy):
    """AnonymousPolicy plus a Mosquitto-syntax ACL file (`roost.security.acl`): PUBLISH
    needs write, SUBSCRIBE needs the filter covered, each delivery needs read."""

    checks_reads = True

    def __init__(self, allow_anonymous: bool, acl: Acl,
                 passwords: PasswordFile | None = None,
                 cluster_ids: frozenset[str] = frozenset()) -> None:
        super().__init__(allow_anonymous, passwords, cluster_ids)
        self.acl = acl

    def authorize_publish_as(self, client_id: str, username: str | None, topic: str) -> bool:
        acl = self.acl.client(client_id, username)
        return super().authorize_publish_as(client_id, username, topic) and \
            acl.check(topic, Access.WRITE).allowed

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool:
        if conn.client_id in self.cluster_ids:
            return super().authorize_subscribe(conn, topic_filter)
        acl = self.acl.client(conn.client_id, conn.username)
        return super().authorize_subscribe(conn, topic_filter) and \
            acl.check(topic_filter, Access.SUBSCRIBE).allowed

    def authorize_read(self, client_id: str, username: str | None, topic: str) -> bool:
        return client_id in self.cluster_ids or self.acl.client(client_id, username).can_read(
            topic)
