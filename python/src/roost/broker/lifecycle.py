"""Sessions over time: CONNECT and CONNACK, takeover, DISCONNECT, wills, keepalive,
CONNECT timeout, session expiry, and reloading persistent sessions at startup."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from roost.broker.connection import Connection
from roost.broker.message import Message
from roost.broker.session import Session
from roost.broker.settings import MAX_PACKET, NEVER
from roost.mqtt.errors import ProtocolError
from roost.mqtt.packets import (
    MQTT_5,
    MQTT_311,
    ConnAck,
    Connect,
    ConnectReturnCode,
    Disconnect,
    Properties,
    PropertyId,
    ReasonCode,
    Will,
)

if TYPE_CHECKING:
    from roost.broker.engine import Broker

log = logging.getLogger("roost.broker")

P = PropertyId
_V3_REFUSALS = {
    ReasonCode.CLIENT_IDENTIFIER_NOT_VALID: ConnectReturnCode.IDENTIFIER_REJECTED,
    ReasonCode.BAD_USER_NAME_OR_PASSWORD: ConnectReturnCode.BAD_USERNAME_OR_PASSWORD,
    ReasonCode.SERVER_UNAVAILABLE: ConnectReturnCode.SERVER_UNAVAILABLE,
    ReasonCode.SERVER_BUSY: ConnectReturnCode.SERVER_UNAVAILABLE,
}


class Lifecycle:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.settings = broker.settings
        self.store = broker.store
        self.sessions = broker.sessions

    def load(self, now: float) -> None:
        """Rebuild retained messages and persistent sessions from the store."""
        b = self.broker
        snap = self.store.load()
        for msg in snap.retained:
            if msg.expires_at is not None and msg.expires_at <= now:
                self.store.set_retained(msg.topic, None)
            else:
                b.retained.set(msg.topic, msg)
        for rec in snap.sessions:
            s = Session(rec.client_id, rec.expiry)
            s.stored = True
            s.username = rec.username
            s.will = rec.will
            s.will_at = rec.will_at
            if rec.expires_at is not None:
                s.expires_at = rec.expires_at
            elif rec.expiry != NEVER:  # it was connected when the broker stopped
                s.expires_at = now + rec.expiry
            self.sessions[s.client_id] = s
            for f, opts in rec.subscriptions.items():
                b.router.subscribe(s.client_id, f, opts)
            for out in rec.outgoing:
                if out.packet_id:
                    s.inflight[out.packet_id] = out
                else:
                    s.queue.append(out)
                s.next_seq = out.seq + 1
                b.deliverer.watch(s, out)
            s.incoming = rec.incoming
        if snap.retained or snap.sessions:
            log.info("loaded %d retained messages and %d sessions",
                     len(b.retained), len(snap.sessions))

    # -- CONNECT ------------------------------------------------------------------

    def connect(self, conn: Connection, p: Connect, now: float) -> None:
        if conn.connected or conn.session is not None:
            raise ProtocolError("second CONNECT")
        v5 = p.protocol_version == MQTT_5
        conn.version = MQTT_5 if v5 else MQTT_311
        props = p.properties if v5 else {}
        client_id = p.client_id
        assigned = False
        if not client_id and conn.identity is not None:
            client_id = conn.identity  # a certificate names its client
            assigned = v5
        elif not client_id:
            if not v5 and not p.clean_start:
                self._refuse(conn, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                             "an empty client id needs a clean session")
                return
            client_id = f"auto-{uuid.uuid4().hex}"
            assigned = v5
        if P.AUTHENTICATION_METHOD in props:
            self._refuse(conn, ReasonCode.BAD_AUTHENTICATION_METHOD,
                         "enhanced authentication is not supported")
            return
        conn.client_id = client_id
        conn.username = p.username
        policy = self.broker.policy
        rc, why = policy.authenticate(conn, p)
        if rc != ReasonCode.SUCCESS:
            self.broker.stats.auth_failures += 1
            self._refuse(conn, rc, why)
            return
        if p.will is not None and not policy.authorize_publish(conn, p.will.topic):
            self._refuse(conn, ReasonCode.NOT_AUTHORIZED, "will topic not authorized")
            return
        settings = self.settings
        if v5:
            asked = props.get(P.SESSION_EXPIRY_INTERVAL, 0)
            conn.send_quota = min(props.get(P.RECEIVE_MAXIMUM, 65535), settings.max_inflight)
            conn.max_out_size = props.get(P.MAXIMUM_PACKET_SIZE, MAX_PACKET)
            conn.alias_out_max = props.get(P.TOPIC_ALIAS_MAXIMUM, 0)
        else:
            asked = 0 if p.clean_start else NEVER
            conn.send_quota = settings.max_inflight
        expiry = min(asked, settings.max_session_expiry)
        conn.keepalive = p.keepalive
        ack: Properties = {}
        if v5 and settings.max_keepalive < 65535 \
                and (p.keepalive == 0 or p.keepalive > settings.max_keepalive):
            conn.keepalive = ack[P.SERVER_KEEP_ALIVE] = settings.max_keepalive

        s = self.sessions.get(client_id)
        if s is not None and s.conn is not None:
            self._take_over(s.conn, p.clean_start, now)
        if s is not None and p.clean_start:
            self.end_session(s, now, "it connected again with a clean start")
            s = None
        present = s is not None
        if s is None:
            s = self.sessions[client_id] = Session(client_id, expiry)
        s.will = None  # a delayed will dies when its session resumes
        s.expiry = expiry
        s.expires_at = None
        s.offline_since, s.offline_why = None, ""
        s.conn = conn
        s.username = conn.username
        conn.session = s
        conn.will = p.will
        if s.persistent:
            self.store.save_session(s)
            s.stored = True
        elif s.stored:
            self.store.delete_session(client_id)
            s.stored = False
        conn.connected = True
        conn.head = b""
        if v5:
            if assigned:
                ack[P.ASSIGNED_CLIENT_IDENTIFIER] = client_id
            if expiry != asked:
                ack[P.SESSION_EXPIRY_INTERVAL] = expiry
            if settings.receive_maximum < 65535:
                ack[P.RECEIVE_MAXIMUM] = settings.receive_maximum
            if settings.max_packet_size < MAX_PACKET:
                ack[P.MAXIMUM_PACKET_SIZE] = settings.max_packet_size
            if settings.topic_alias_maximum:
                ack[P.TOPIC_ALIAS_MAXIMUM] = settings.topic_alias_maximum
        conn.send(ConnAck(present, 0, ack))
        log.info("connected %r from %s (MQTT %s, user %r)", client_id, conn.peer,
                 "5" if v5 else "3.1.1", conn.username)
        if present:
            self.broker.deliverer.resend(s, now)
        if self.broker.on_connect is not None:
            self.broker.on_connect(conn, now)

    def _refuse(self, conn: Connection, reason: ReasonCode, why: str) -> None:
        log.info("refusing CONNECT from %s: %s", conn.peer, why)
        if conn.version == MQTT_5:
            conn.send(ConnAck(False, reason, {P.REASON_STRING: why}))
        else:
            code = _V3_REFUSALS.get(reason, ConnectReturnCode.NOT_AUTHORIZED)
            conn.send(ConnAck(False, code))
        conn.close()

    def _take_over(self, old: Connection, clean: bool, now: float) -> None:
        """Another connection claims this client id: the old one goes (0x8E)."""
        log.info("client %r connected again; closing %r", old.client_id, old)
        s = old.session
        assert s is not None
        if old.version == MQTT_5:
            old.send(Disconnect(ReasonCode.SESSION_TAKEN_OVER))
        old.close("session taken over")
        will = old.will
        old.will = None
        old.session = None
        s.conn = None
        # The will goes now unless a delay lets the resumed session cancel it.
        if will is not None and (clean or not self._will_delay(old, will)):
            self.publish_will(will, s.client_id, now)

    @staticmethod
    def _will_delay(conn: Connection, will: Will) -> int:
        if conn.version != MQTT_5:
            return 0
        delay: int = will.properties.get(P.WILL_DELAY_INTERVAL, 0)
        return delay

    # -- going away ---------------------------------------------------------------

    def disconnect(self, conn: Connection, p: Disconnect, now: float) -> None:
        s = conn.session
        assert s is not None
        if conn.version == MQTT_5:
            asked = p.properties.get(P.SESSION_EXPIRY_INTERVAL)
            if asked is not None:
                if s.expiry == 0 and asked != 0:
                    raise ProtocolError("session expiry set at DISCONNECT after 0 at CONNECT")
                s.expiry = min(asked, self.settings.max_session_expiry)
            if p.reason_code != ReasonCode.DISCONNECT_WITH_WILL:
                conn.will = None
        else:
            conn.will = None
        conn.close("client sent DISCONNECT")

    def detach(self, conn: Connection, now: float) -> None:
        """The socket is gone: publish or schedule the will, start session expiry."""
        if conn.connected:
            log.info("disconnected %r from %s (MQTT %s): %s", conn.client_id, conn.peer,
                     "5" if conn.version == MQTT_5 else "3.1.1", conn.reason)
        s = conn.session
        if s is None or s.conn is not conn:
            return
        s.conn = None
        conn.session = None
        s.offline_since, s.offline_why = now, conn.reason or "connection lost"
        self._release_will(conn, s, now)
        if s.expiry == 0:
            self.end_session(s, now, f"it disconnected ({s.offline_why}) and kept no "
                             "session")
            return
        s.expires_at = None if s.expiry == NEVER else now + s.expiry
        self.broker.deliverer.offline(s, now)
        if s.persistent:
            self.store.save_session(s)

    def _release_will(self, conn: Connection, s: Session, now: float) -> None:
        """The connection ends without DISCONNECT 0x00: its will goes now, or waits with
        the session for its delay (a resumed session cancels it)."""
        will, conn.will = conn.will, None
        if will is None:
            return
        delay = self._will_delay(conn, will)
        if delay and s.expiry:
            s.will, s.will_at = will, now + delay
        else:
            self.publish_will(will, s.client_id, now)

    def end_session(self, s: Session, now: float, why: str = "") -> None:
        """Discard a session; requests still queued or in flight for it get an error
        answer saying `why` it ended."""
        if s.will is not None:
            will = s.will
            s.will = None
            self.publish_will(will, s.client_id, now)
        self.broker.router.remove_client(s.client_id)
        if self.sessions.get(s.client_id) is s:
            del self.sessions[s.client_id]
        ended = f"not delivered: the session of {s.client_id} ended"
        self.broker.deliverer.discard(s, f"{ended} ({why})" if why else ended, now)
        if s.stored:
            self.store.delete_session(s.client_id)
            s.stored = False

    def publish_will(self, will: Will, client_id: str, now: float) -> None:
        props: Properties = {
            k: v for k, v in will.properties.items() if k != P.WILL_DELAY_INTERVAL}
        expiry = props.get(P.MESSAGE_EXPIRY_INTERVAL)
        expires = None if expiry is None else now + expiry
        msg = Message(will.topic, will.payload, will.qos, will.retain, props, expires)
        self.broker.publish(msg, client_id, now)

    def tick(self, now: float) -> None:
        settings = self.settings
        for conn in list(self.broker.connections):
            if conn.closing:
                continue
            if not conn.connected:
                if now - conn.created >= settings.connect_timeout:
                    log.info("closing %s: no CONNECT within %ss", conn.peer,
                             settings.connect_timeout)
                    conn.close()
            elif conn.keepalive and now - conn.last_seen > conn.keepalive * 1.5:
                log.info("closing %r: keepalive timeout", conn)
                if conn.version == MQTT_5:
                    conn.send(Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT))
                conn.close("keepalive timeout")
        for s in list(self.sessions.values()):
            if s.conn is not None:
                continue
            if s.will is not None and s.will_at <= now:
                will = s.will
                s.will = None
                self.publish_will(will, s.client_id, now)
                if s.stored:
                    self.store.save_session(s)
            if s.expires_at is not None and s.expires_at <= now:
                self.end_session(s, now, "its session expiry interval passed")

    def shutdown(self, now: float) -> None:
        # Wills first, while every client can still receive them: a Pi's retained `online`
        # must not outlive the broker holding its connection (Mosquitto does the same).
        # A delayed will of a lasting session stays with the session, as on a lost link.
        for conn in list(self.broker.connections):
            if conn.session is not None and conn.session.conn is conn:
                self._release_will(conn, conn.session, now)
        for conn in list(self.broker.connections):
            s = conn.session
            if conn.connected and conn.version == MQTT_5 and not conn.closing:
                conn.send(Disconnect(ReasonCode.SERVER_SHUTTING_DOWN))
            conn.close("server shutting down")
            if s is not None and s.conn is conn:
                s.conn = None
                conn.session = None
                s.offline_since, s.offline_why = now, "server shutting down"
                if s.persistent:
                    s.expires_at = None if s.expiry == NEVER else now + s.expiry
                    self.store.save_session(s)
