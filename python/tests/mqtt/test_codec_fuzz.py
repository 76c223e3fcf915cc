"""The h11 invariant for our decoder: whatever bytes arrive, whole or one at a time, it
returns packets or raises RemoteProtocolError, never anything else; and the way the bytes
are split never changes the outcome."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from roost.mqtt.codec import MAX_PACKET_SIZE, Decoder, decode_one, encode
from roost.mqtt.errors import InsufficientData, RemoteProtocolError
from roost.mqtt.packets import Connect, Packet

from .codec_strategies import VERSIONS, client_packets, server_packets, sessions

_examples = settings(max_examples=300, deadline=None)

# A decoder set-up: (server side?, version); version None is a broker before CONNECT.
Setup = tuple[bool, int | None]
SETUPS: list[Setup] = [(True, None)] + [(side, v) for side in (True, False) for v in VERSIONS]
Outcome = tuple[list[Packet], tuple[type[RemoteProtocolError], int] | None]


def _make(setup: Setup, limit: int) -> Decoder:
    server, version = setup
    if not server:
        return Decoder(server=False, version=version, max_packet_size=limit)
    decoder = Decoder(max_packet_size=limit)
    if version is not None:
        # The broker lowers its limit after CONNECT; the CONNECT itself gets the default.
        decoder.max_packet_size = MAX_PACKET_SIZE
        decoder.feed(encode(Connect("fuzz", version, protocol_name=_NAMES[version]), version))
        decoder.max_packet_size = limit
    return decoder


_NAMES = {3: "MQIsdp", 4: "MQTT", 5: "MQTT"}


def _outcome(setup: Setup, data: bytes, bytewise: bool, limit: int) -> Outcome:
    decoder = _make(setup, limit)
    packets: list[Packet] = []
    try:
        if bytewise:
            for i in range(len(data)):
                packets += decoder.feed(data[i : i + 1])
        else:
            packets = decoder.feed(data)
    except RemoteProtocolError as exc:
        # Dead after an error: the next bytes, even valid ones, raise again.
        try:
            decoder.feed(b"\xc0\x00")
        except RemoteProtocolError:
            return packets, (type(exc), exc.reason_code)
        raise AssertionError("decoder accepted bytes after an error") from exc
    return packets, None


def check(setup: Setup, data: bytes, limit: int) -> None:
    """Any exception but RemoteProtocolError escapes and fails the test."""
    whole, whole_error = _outcome(setup, data, False, limit)
    split, split_error = _outcome(setup, data, True, limit)
    assert split_error == whole_error
    if whole_error is None:
        assert split == whole
    else:
        assert whole == []  # whole feeding drops what preceded the bad packet


limits = st.sampled_from([MAX_PACKET_SIZE, 64, 16])
setups = st.sampled_from(SETUPS)


@_examples
@given(setups, st.binary(max_size=300), limits)
def test_any_bytes(setup: Setup, data: bytes, limit: int) -> None:
    check(setup, data, limit)


@_examples
@given(setups, st.binary(max_size=300), limits)
def test_decode_one_on_any_bytes(setup: Setup, data: bytes, limit: int) -> None:
    server, version = setup
    try:
        packet, used = decode_one(memoryview(data), version, server=server, max_packet_size=limit)
    except (InsufficientData, RemoteProtocolError):
        return
    assert 0 < used <= len(data)
    # What decode_one reads from a prefix, the Decoder reads the same way.
    assert _make(setup, limit).feed(data[:used]) == [packet]


def _valid_stream(setup: Setup) -> Any:
    server, version = setup
    if version is None:
        packets = st.one_of([sessions(v) for v in VERSIONS])
        return packets.map(lambda ps: b"".join(encode(p, ps[0].protocol_version) for p in ps))
    side = client_packets if server else server_packets
    return st.lists(side(version), min_size=1, max_size=4).map(
        lambda ps: b"".join(encode(p, version) for p in ps)
    )


_mutation = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete"]), st.integers(0, 10**6), st.integers(0, 255)
)


def mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in mutations:
        if not out:
            break
        i = where % len(out)
        if kind == "flip":
            out[i] ^= 1 << value % 8
        elif kind == "set":
            out[i] = value
        elif kind == "insert":
            out.insert(i, value)
        else:
            del out[i]
    return bytes(out)


@_examples
@given(st.data(), setups, limits)
def test_mutated_valid_packets(data: st.DataObject, setup: Setup, limit: int) -> None:
    stream = data.draw(_valid_stream(setup))
    mutations = data.draw(st.lists(_mutation, min_size=1, max_size=3))
    check(setup, mutate(stream, mutations), limit)


@_examples
@given(st.data(), setups)
def test_valid_streams_decode_the_same_in_any_split(data: st.DataObject, setup: Setup) -> None:
    stream = data.draw(_valid_stream(setup))
    whole, error = _outcome(setup, stream, False, MAX_PACKET_SIZE)
    split, _ = _outcome(setup, stream, True, MAX_PACKET_SIZE)
    assert error is None
    assert whole
    assert split == whole
