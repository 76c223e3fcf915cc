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


class Policy(Protocol):
    # True when deliveries must be checked one by one with `authorize_read`; the
    # router's matches are used as they are otherwise (the fast path).
    checks_reads: bool

    def authenticate(self, conn: Connection, connect: Connect) -> tuple[ReasonCode, str]:
        """SUCCESS, or the v5 reason code to refuse the CONNECT with and why."""
        ...

    def authorize_publish(self, conn: Connection, topic: str) -> bool: ...

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool: ...

    def authorize_read(self, client_id: str, username: str | None, topic: str) -> bool: ...


class AnonymousPolicy:
    """Who a client is: its certificate's identity (from TLS or a trusted PROXY header)
    becomes its username; otherwise a username and password from `passwords`; otherwise
    it is anonymous, which its listener (or `allow_anonymous`) must allow.

    Clients may not publish into `$SYS/`, which only the broker writes.
    """

    checks_reads = False

    def __init__(self, allow_anonymous: bool, passwords: PasswordFile | None = None) -> None:
        self.allow_anonymous = allow_anonymous
        self.passwords = passwords

    def authenticate(self, conn: Connection, connect: Connect) -> tuple[ReasonCode, str]:
        auth = conn.auth
        identity = conn.identity
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
        return not topic.startswith("$SYS/")

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool:
        return True

    def authorize_read(self, client_id: str, username: str | None, topic: str) -> bool:
        return True


class AclPolicy(AnonymousPolicy):
    """AnonymousPolicy plus a Mosquitto-syntax ACL file (`roost.security.acl`): PUBLISH
    needs write, SUBSCRIBE needs the filter covered, each delivery needs read."""

    checks_reads = True

    def __init__(self, allow_anonymous: bool, acl: Acl,
                 passwords: PasswordFile | None = None) -> None:
        super().__init__(allow_anonymous, passwords)
        self.acl = acl

    def authorize_publish(self, conn: Connection, topic: str) -> bool:
        acl = self.acl.client(conn.client_id, conn.username)
        return super().authorize_publish(conn, topic) and acl.check(topic, Access.WRITE).allowed

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool:
        acl = self.acl.client(conn.client_id, conn.username)
        return acl.check(topic_filter, Access.SUBSCRIBE).allowed

    def authorize_read(self, client_id: str, username: str | None, topic: str) -> bool:
        return self.acl.client(client_id, username).can_read(topic)
