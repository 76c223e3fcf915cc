"""Wire primitives shared by the codec: integers, variable byte integers, strings, binary.

Readers take (buffer, position, end of packet) and return (value, new position). Running
past `end` inside a packet is malformed, never "need more data": the body is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from struct import Struct

from roost.mqtt.errors import LocalProtocolError, MalformedPacket

U16 = Struct("!H")
U32 = Struct("!I")
VARINT_MAX = 268_435_455


def read_u8(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise MalformedPacket("packet ends inside a byte field")
    return buf[pos], pos + 1


def read_u16(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 2 > end:
        raise MalformedPacket("packet ends inside a two-byte integer")
    return buf[pos] << 8 | buf[pos + 1], pos + 2


def read_u32(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 4 > end:
        raise MalformedPacket("packet ends inside a four-byte integer")
    return U32.unpack_from(buf, pos)[0], pos + 4


def read_varint(
    buf: bytes | memoryview,
    pos: int,
    end: int,
    short: Callable[[str], Exception] = MalformedPacket,
) -> tuple[int, int]:
    """`short` is what running out of bytes means: malformed inside a packet, or
    InsufficientData while reading a fixed header."""
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= end:
            raise short("packet ends inside a variable byte integer")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            # The spec asks for the shortest form; a trailing zero byte is padding.
            if byte == 0 and shift:
                raise MalformedPacket("variable byte integer not in its shortest form")
            return value, pos
    raise MalformedPacket("variable byte integer longer than four bytes")


def read_str(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    """An MQTT UTF-8 string: strict UTF-8 (which already refuses surrogates), no U+0000."""
    start = pos + 2
    if start > end:
        raise MalformedPacket("packet ends inside a string length")
    stop = start + (buf[pos] << 8 | buf[pos + 1])
    if stop > end:
        raise MalformedPacket("string runs past the end of the packet")
    try:
        value = buf[start:stop].decode()
    except UnicodeDecodeError:
        raise MalformedPacket("string is not well-formed UTF-8") from None
    if "\x00" in value:
        raise MalformedPacket("string contains U+0000")
    return value, stop


def read_bin(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    size, pos = read_u16(buf, pos, end)
    stop = pos + size
    if stop > end:
        raise MalformedPacket("binary data runs past the end of the packet")
    return buf[pos:stop], stop


_SMALL_VARINTS = tuple(bytes((n,)) for n in range(128))


def varint(value: int) -> bytes:
    if value < 128:
        if value < 0:
            raise LocalProtocolError(f"negative variable byte integer {value}")
        return _SMALL_VARINTS[value]
    if value > VARINT_MAX:
        raise LocalProtocolError(f"variable byte integer {value} too large")
    out = bytearray()
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def u16(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{value} does not fit in two bytes")
    return U16.pack(value)


def u32(value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"{value} does not fit in four bytes")
    return U32.pack(value)


def bin_field(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise LocalProtocolError("binary field longer than 65535 bytes")
    return U16.pack(len(data)) + data


def str_field(value: str) -> bytes:
    if "\x00" in value:
        raise LocalProtocolError("MQTT strings cannot contain U+0000")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError("string is not encodable as UTF-8 (lone surrogate?)") from None
    if len(raw) > 0xFFFF:
        raise LocalProtocolError("string longer than 65535 bytes")
    return U16.pack(len(raw)) + raw
