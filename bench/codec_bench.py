"""MQTT codec throughput: `python bench/codec_bench.py [--count N]`.

Decodes and encodes N 64-byte QoS 1 PUBLISH packets (whole packet, fixed header included)
for MQTT 3.1.1 and 5.0. Decoding feeds 4 KiB chunks to a server-side Decoder, as the
broker's socket reads would. Each figure is the best of several rounds, in CPU time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from roost.mqtt.codec import Decoder, encode
from roost.mqtt.packets import MQTT_5, Connect, Publish

TOPIC = "roost/site/pi-17/telemetry"
CHUNK = 4096


def rate(count: int, run: Callable[[], None], rounds: int = 5) -> float:
    """Best of `rounds`, in CPU time: the codec is single-threaded pure Python, and CPU
    time stays steady when other processes share the machine (wall time does not)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return count / best


def sample(version: int, size: int = 64) -> Publish:
    empty = len(encode(Publish(TOPIC, b"", 1, packet_id=1), version))
    return Publish(TOPIC, b"x" * (size - empty), 1, packet_id=1)


def bench(version: int, count: int) -> None:
    packet = sample(version)
    wire = encode(packet, version)
    assert len(wire) == 64
    packets = [Publish(TOPIC, packet.payload, 1, packet_id=1 + n % 65535) for n in range(count)]
    stream = b"".join(encode(p, version) for p in packets)
    chunks = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]
    hello = encode(Connect("bench", version), version)

    def decode() -> None:
        decoder = Decoder()
        decoder.feed(hello)
        got = 0
        for chunk in chunks:
            got += len(decoder.feed(chunk))
        assert got == count

    def encode_all() -> None:
        for p in packets:
            encode(p, version)

    name = "5.0" if version == MQTT_5 else "3.1.1"
    print(f"MQTT {name}: decode {rate(count, decode):>10,.0f} packets/s")
    print(f"MQTT {name}: encode {rate(count, encode_all):>10,.0f} packets/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200_000)
    args = parser.parse_args()
    for version in (4, MQTT_5):
        bench(version, args.count)


if __name__ == "__main__":
    main()
