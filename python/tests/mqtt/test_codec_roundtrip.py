"""encode -> decode is the identity for every valid packet, whole or in pieces."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roost.mqtt.codec import Decoder, decode_one, encode
from roost.mqtt.errors import InsufficientData
from roost.mqtt.packets import Connect, Packet

from .codec_strategies import VERSIONS, any_packet, server_packets, sessions

_examples = settings(max_examples=300, deadline=None)


def _decode(data: bytes, version: int, from_client: bool, packet: Packet) -> tuple[Packet, int]:
    # A server decoder has no version until CONNECT; a CONNECT is only valid first.
    level = None if isinstance(packet, Connect) else version
    return decode_one(memoryview(data), level, server=from_client)


@_examples
@given(any_packet())
def test_encode_then_decode_is_identity(case: tuple[int, bool, Packet]) -> None:
    version, from_client, packet = case
    data = encode(packet, version)
    decoded, used = _decode(data, version, from_client, packet)
    assert decoded == packet
    assert used == len(data)


@_examples
@given(any_packet())
def test_every_strict_prefix_needs_more_data(case: tuple[int, bool, Packet]) -> None:
    version, from_client, packet = case
    data = encode(packet, version)
    for cut in range(len(data)):
        with pytest.raises(InsufficientData):
            _decode(data[:cut], version, from_client, packet)
        decoder = Decoder(server=from_client, version=None if from_client else version)
        if from_client and not isinstance(packet, Connect):
            decoder.version = version
        assert decoder.feed(data[:cut]) == []
        assert decoder.feed(data[cut:]) == [packet]


@_examples
@given(st.one_of([sessions(v) for v in VERSIONS]))
def test_server_decoder_takes_a_session_whole_or_byte_by_byte(packets: list[Packet]) -> None:
    connect = packets[0]
    assert isinstance(connect, Connect)
    version = connect.protocol_version
    data = b"".join(encode(p, version) for p in packets)
    whole = Decoder()
    assert whole.feed(data) == packets
    assert whole.version == version
    bytewise = Decoder()
    got = [p for i in range(len(data)) for p in bytewise.feed(data[i : i + 1])]
    assert got == packets


_server_streams = st.one_of(
    [st.tuples(st.just(v), st.lists(server_packets(v), min_size=1, max_size=5)) for v in VERSIONS]
)


@_examples
@given(_server_streams, st.integers(1, 7))
def test_client_decoder_takes_a_stream_in_any_chunks(
    case: tuple[int, list[Packet]], chunk: int
) -> None:
    version, packets = case
    data = b"".join(encode(p, version) for p in packets)
    decoder = Decoder(server=False, version=version)
    got = [p for i in range(0, len(data), chunk) for p in decoder.feed(data[i : i + chunk])]
    assert got == packets
