"""Who may connect, publish and subscribe: the seam later issues fill with passwords,
TLS identities and ACL files. The engine asks; a policy answers without I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from roost.mqtt.packets import Connect, ReasonCode

if TYPE_CHECKING:
    from roost.broker.connection import Connection


class Policy(Protocol):
    def authenticate(self, conn: Connection, connect: Connect) -> ReasonCode:
        """SUCCESS, or the v5 reason code to refuse the CONNECT with."""
        ...

    def authorize_publish(self, conn: Connection, topic: str) -> bool: ...

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool: ...


class AnonymousPolicy:
    """No credentials are checked yet: everyone or no one, as `allow_anonymous` says.

    Clients may not publish into `$SYS/`, which only the broker writes.
    """

    def __init__(self, allow_anonymous: bool) -> None:
        self.allow_anonymous = allow_anonymous

    def authenticate(self, conn: Connection, connect: Connect) -> ReasonCode:
        return ReasonCode.SUCCESS if self.allow_anonymous else ReasonCode.NOT_AUTHORIZED

    def authorize_publish(self, conn: Connection, topic: str) -> bool:
        return not topic.startswith("$SYS/")

    def authorize_subscribe(self, conn: Connection, topic_filter: str) -> bool:
        return True
