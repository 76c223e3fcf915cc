"""The scale run's subscriber: one connection through the load balancer with a service
certificate (CN scale-probe, allowed to read every device's telemetry by lab/scale/vars.yml),
subscribed at QoS 1 to roost/<site>/+/telemetry/scale. For each PUBLISH it keeps the
publisher's sequence number (to find acknowledged messages that never arrived) and the
end-to-end latency: receive time minus the send time the device stamped into the payload
(time.monotonic_ns, one clock for every process on this machine).

Commands over a Pipe, one reply each:
  {"cmd": "take"}   drain until 2 s pass without a message (30 s at most), then the
                    figures since the last take: count, seen, lat_ms, wall, cpu
  {"cmd": "close"}  disconnect; the process ends (also after conf["deadline"] seconds)
"""

from __future__ import annotations

import asyncio
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import wire
from load import client_context
from roost.agent import topics

from scale.devices import PINGREQ

TIMEOUT = 10.0


class Probe:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count, self.first_ns, self.last_ns = 0, 0, 0
        self.seen: dict[int, list[int]] = {}
        self.lat_ms: list[float] = []
        self.cpu0 = time.process_time()

    async def read(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        counter = wire.FrameCounter()
        while data := await r.read(1 << 18):
            now = time.monotonic_ns()
            pubs, _ = counter.feed(data)
            if not pubs:
                continue
            w.write(b"".join([wire.PUBACK_FRAMES[p[0]] for p in pubs]))
            self.first_ns = self.first_ns or now
            self.last_ns = now
            self.count += len(pubs)
            for _, pub, seq, sent in pubs:
                self.seen.setdefault(pub, []).append(seq)
                self.lat_ms.append((now - sent) / 1e6)

    async def take(self) -> dict[str, Any]:
        for _ in range(15):  # drain until 2 s of silence, 30 s at most
            before = self.count
            await asyncio.sleep(2)
            if self.count == before:
                break
        out = {"count": self.count, "seen": self.seen, "lat_ms": self.lat_ms,
               "wall": (self.last_ns - self.first_ns) / 1e9,
               "cpu": time.process_time() - self.cpu0}
        self.reset()
        return out


async def run(c: dict[str, Any], conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    r, w = await asyncio.wait_for(asyncio.open_connection(
        c["host"], c["port"], ssl=client_context(c["ca"], c["cert"], c["key"], None),
        server_hostname=c["server_hostname"], local_addr=(c["source"], 0)), TIMEOUT)
    w.write(wire.connect(c["client_id"], c["keepalive"])
            + wire.subscribe(topics.telemetry(c["site"], "+", "scale"), 1))
    head = await asyncio.wait_for(r.readexactly(4 + 5), TIMEOUT)  # CONNACK, SUBACK
    if head[3] != 0 or head[8] > 2:
        raise ConnectionError(f"probe refused (CONNACK, SUBACK): {head.hex()}")
    probe = Probe()
    reader = asyncio.create_task(probe.read(r, w))
    conn.send({"ready": True})
    end = loop.time() + c["deadline"]
    ping = loop.time()
    while loop.time() < end and not reader.done():
        if loop.time() - ping > c["keepalive"] / 2:  # between stages it has nothing to say
            w.write(PINGREQ)
            ping = loop.time()
        if not await asyncio.to_thread(conn.poll, 1.0):
            continue
        msg = conn.recv()
        if msg["cmd"] == "close":
            break
        conn.send(await probe.take())
    reader.cancel()
    w.write(wire.DISCONNECT)
    w.close()


def main(c: dict[str, Any], conn: Connection) -> None:
    """Process entry point; a failure reaches the parent as {"error": ...}."""
    try:
        asyncio.run(run(c, conn))
    except Exception as err:
        conn.send({"error": f"probe: {type(err).__name__}: {err}"})
