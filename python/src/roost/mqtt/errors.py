"""Errors raised by the codec and the session state machine.

Split as h11 does: a RemoteProtocolError is the peer's fault (close that connection with
its reason code); a LocalProtocolError is our own bug (we tried to encode nonsense).
"""

from __future__ import annotations

from roost.mqtt.packets import ReasonCode


class InsufficientData(Exception):
    """The buffer holds only part of a packet; feed more bytes."""


class RemoteProtocolError(Exception):
    """The peer sent bytes or a packet sequence that breaks the protocol."""

    reason_code: ReasonCode = ReasonCode.PROTOCOL_ERROR

    def __init__(self, message: str, reason_code: ReasonCode | None = None) -> None:
        super().__init__(message)
        if reason_code is not None:
            self.reason_code = reason_code


class MalformedPacket(RemoteProtocolError):
    reason_code = ReasonCode.MALFORMED_PACKET


class ProtocolError(RemoteProtocolError):
    reason_code = ReasonCode.PROTOCOL_ERROR


class PacketTooLarge(RemoteProtocolError):
    reason_code = ReasonCode.PACKET_TOO_LARGE


class UnsupportedProtocolVersion(RemoteProtocolError):
    """CONNECT named a protocol level we do not speak (answered with CONNACK 0x84 / rc 1)."""

    reason_code = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION


class LocalProtocolError(Exception):
    """We were asked to encode something the protocol does not allow (a bug on our side)."""
