"""Who may connect, publish and subscribe: the seam later issues fill with passwords,
TLS identities and ACL files. The engine asks; a policy answers without I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from roost.mqtt.packets import Connect, ReasonCode
from roost.security.acl import Access, Acl

if TYPE_CHECKING:
    from roost.broker.connection import Connection


class Policy(Protocol):
    # True when deliveries must be checked one by one with `authorize_read`; the
    # router's matches are used as they are otherwise (the fast path).
    checks_reads: bool

    def authenticate(self, conn: Connection, connect: Connect) -> ReasonCode:
        """SUCCESS, or the v5 reason code to refuse the CONNECT with."""
        ...

    def authorize_publish(self, conn: Connection, topic: str) -> bool: ...

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool: ...

    def authorize_read(self, client_id: str, username: str | None, topic: str) -> bool: ...


class AnonymousPolicy:
    """No credentials are checked yet: everyone or no one, as `allow_anonymous` says.

    Clients may not publish into `$SYS/`, which only the broker writes.
    """

    checks_reads = False

    def __init__(self, allow_anonymous: bool) -> None:
        self.allow_anonymous = allow_anonymous

    def authenticate(self, conn: Connection, connect: Connect) -> ReasonCode:
        return ReasonCode.SUCCESS if self.allow_anonymous else ReasonCode.NOT_AUTHORIZED

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

    def __init__(self, allow_anonymous: bool, acl: Acl) -> None:
        super().__init__(allow_anonymous)
        self.acl = acl

    def authorize_publish(self, conn: Connection, topic: str) -> bool:
        acl = self.acl.client(conn.client_id, conn.username)
        return super().authorize_publish(conn, topic) and acl.check(topic, Access.WRITE).allowed

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool:
        acl = self.acl.client(conn.client_id, conn.username)
        return acl.check(topic_filter, Access.SUBSCRIBE).allowed

    def authorize_read(self, client_id: str, username: str | None, topic: str) -> bool:
        return self.acl.client(client_id, username).can_read(topic)
