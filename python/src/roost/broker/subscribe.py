"""SUBSCRIBE and UNSUBSCRIBE: validate, authorize, record (router and store), answer,
then send the retained messages the retain handling option asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.broker.connection import Connection
from roost.broker.message import Outgoing
from roost.broker.router import SubOptions
from roost.broker.session import Session
from roost.broker.topics import parse_shared, valid_topic_filter
from roost.mqtt.errors import ProtocolError
from roost.mqtt.packets import (
    MQTT_5,
    PropertyId,
    ReasonCode,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
)

if TYPE_CHECKING:
    from roost.broker.engine import Broker


class Subscriptions:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.settings = broker.settings
        self.store = broker.store

    def subscribe(self, conn: Connection, p: Subscribe, now: float) -> None:
        s = conn.session
        assert s is not None
        v5 = conn.version == MQTT_5
        sub_id = p.properties.get(PropertyId.SUBSCRIPTION_IDENTIFIER) if v5 else None
        codes: list[int] = []
        retained: list[tuple[str, SubOptions]] = []
        for sub in p.subscriptions:
            f = sub.topic_filter
            if not self._valid(f):
                codes.append(ReasonCode.TOPIC_FILTER_INVALID if v5 else 0x80)
                continue
            group, inner = parse_shared(f)
            if group is not None and sub.no_local:
                raise ProtocolError("no local on a shared subscription")
            if not self.broker.policy.authorize_subscribe(conn, f):
                self.broker.stats.acl_denials["subscribe"] += 1
                codes.append(ReasonCode.NOT_AUTHORIZED if v5 else 0x80)
                continue
            rh = int(sub.retain_handling)
            opts = SubOptions(sub.qos, sub.no_local, sub.retain_as_published, rh, sub_id)
            existed = self.broker.router.subscribe(s.client_id, f, opts)
            if s.persistent:
                self.store.save_subscription(s.client_id, f, opts)
            codes.append(sub.qos)
            # Shared subscriptions get no retained messages (MQTT 5.0 section 4.8.2).
            if group is None and (rh == 0 or (rh == 1 and not existed)):
                retained.append((inner, opts))
        conn.send(SubAck(p.packet_id, tuple(codes)))
        for f, opts in retained:
            self._send_retained(s, f, opts, now)

    def _send_retained(self, s: Session, topic_filter: str, opts: SubOptions,
                       now: float) -> None:
        ids = () if opts.subscription_id is None else (opts.subscription_id,)
        policy = self.broker.policy
        for topic, msg in self.broker.retained.match(topic_filter):
            if policy.checks_reads and not policy.authorize_read(s.client_id, s.username, topic):
                self.broker.stats.acl_denials["read"] += 1
                continue
            if msg.expires_at is not None and msg.expires_at <= now:
                self.broker.retained.delete(topic)
                self.store.set_retained(topic, None)
                continue
            out = Outgoing(0, msg, min(msg.qos, opts.qos), True, ids)
            self.broker.deliverer.deliver(s, out, now)

    def unsubscribe(self, conn: Connection, p: Unsubscribe, now: float) -> None:
        s = conn.session
        assert s is not None
        codes: list[int] = []
        for f in p.topic_filters:
            if self.broker.router.unsubscribe(s.client_id, f):
                if s.persistent:
                    self.store.delete_subscription(s.client_id, f)
                codes.append(ReasonCode.SUCCESS)
            else:
                codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
        conn.send(UnsubAck(p.packet_id, tuple(codes) if conn.version == MQTT_5 else ()))

    def _valid(self, topic_filter: str) -> bool:
        limit = self.settings.max_topic_length
        return valid_topic_filter(topic_filter, max_levels=self.settings.max_topic_levels) and (
            len(topic_filter) <= limit or len(topic_filter.encode()) <= limit)
