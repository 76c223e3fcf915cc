"""One generator process of the scale run: simulated devices, each with its own client
certificate and its own TLS connection through the load balancer, behaving like the agent
where the broker can tell: client id = certificate CN, a subscription to its command
topic, QoS 1 telemetry on roost/<site>/<id>/telemetry/scale with at most 20 messages in
flight, and the agent's own reconnect schedule (roost.agent.backoff: full jitter).

Frames come from bench/wire.py (pre-encoded, a sequence number and send time stamped in).
The parent drives the process over a Pipe; each command gets one dict back:
  {"cmd": "status"}   connected, full_at (when all were last connected), failures, cpu
  {"cmd": "publish", "rate": msg/s per device, "duration": s}   that stage's figures
  {"cmd": "since", "t": monotonic}   per device, seconds from t to its first CONNACK after
  {"cmd": "close"}    DISCONNECT everything; the process ends
It also ends by itself after conf["deadline"] seconds or when the parent goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import wire
from load import client_context
from roost.agent import topics
from roost.agent.backoff import Backoff
from roost.mqtt.codec import encode
from roost.mqtt.packets import MQTT_311, PingReq

PINGREQ = encode(PingReq(), MQTT_311)
WINDOW = 20  # QoS 1 messages in flight per device: the agent's agent_queue_inflight
TIMEOUT = 10.0  # TCP connect, TLS handshake and CONNACK, per attempt
DRAIN = 10.0  # after a stage, how long to wait for the last PUBACKs
ERRORS = (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError)


@dataclass
class Device:
    index: int  # the publisher number stamped into each payload
    client_id: str
    cert: str
    key: str
    source: str  # local address: the load balancer hashes clients by it
    backoff: Backoff[str]
    batch: wire.PublishBatch
    inflight: dict[int, int] = field(default_factory=dict)  # packet id -> seq
    acked: list[int] = field(default_factory=list)
    seq: int = 0
    slot: int = 0  # publishing slots used in the current stage
    offset: float = 0.0  # where in each interval its slot falls, 0..1
    connects: list[float] = field(default_factory=list)  # monotonic time of each CONNACK


@dataclass
class Stage:
    start: float
    end: float
    interval: float
    sent: int = 0
    skipped: int = 0  # slots that found the window full (the agent would queue them)


class Fleet:
    def __init__(self, c: dict[str, Any]) -> None:
        self.c = c
        self.devices = [
            Device(i, cid, cert, key, c["sources"][i % len(c["sources"])],
                   Backoff([c["host"]], c["backoff_initial"], c["backoff_cap"]),
                   wire.PublishBatch(topics.telemetry(c["site"], cid, "scale"), 1, 1, i))
            for i, cid, cert, key in c["devices"]]
        self.stage: Stage | None = None
        self.changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.writers: dict[int, asyncio.StreamWriter] = {}
        self.gate = asyncio.Semaphore(c["gate"])
        self.connected = self.failures = self.dropped_inflight = 0
        self.full_at = 0.0

    async def open(self, d: Device) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        c = self.c
        r, w = await asyncio.wait_for(asyncio.open_connection(
            c["host"], c["port"], ssl=client_context(c["ca"], d.cert, d.key, None),
            server_hostname=c["server_hostname"], local_addr=(d.source, 0)), TIMEOUT)
        try:
            w.write(wire.connect(d.client_id, c["keepalive"])
                    + wire.subscribe(topics.commands(c["site"], d.client_id), 1))
            ack = await asyncio.wait_for(r.readexactly(4), TIMEOUT)
            if ack[0] != 0x20 or ack[3] != 0:
                raise ConnectionError(f"CONNACK refused: {ack.hex()}")
        except BaseException:
            w.close()
            raise
        return r, w

    async def live(self, d: Device) -> None:
        """Connect, serve until the connection drops, back off, again (until cancelled).
        The first connection waits for the gate, so connect-all is not a storm of its own."""
        first = True
        while True:
            _, delay = d.backoff.next()
            await asyncio.sleep(delay)
            try:
                if first:
                    async with self.gate:
                        r, w = await self.open(d)
                else:
                    r, w = await self.open(d)
            except ERRORS:
                self.failures += 1
                d.backoff.failed()
                continue
            first = False
            d.backoff.connected()
            d.connects.append(time.monotonic())
            self.connected += 1
            if self.connected == len(self.devices):
                self.full_at = d.connects[-1]
            self.writers[d.index] = w
            try:
                await self.serve(d, r, w)
            finally:
                self.connected -= 1
                self.writers.pop(d.index, None)
                self.dropped_inflight += len(d.inflight)
                d.inflight.clear()  # clean session: the broker forgot them too
                w.close()
            d.backoff.lost()

    async def serve(self, d: Device, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        tasks = {asyncio.create_task(self.read(d, r)), asyncio.create_task(self.talk(d, w))}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()

    async def read(self, d: Device, r: asyncio.StreamReader) -> None:
        counter = wire.FrameCounter()
        with contextlib.suppress(*ERRORS):
            while data := await r.read(65536):
                for kind, pid in counter.feed(data)[1]:
                    if kind == 4 and (seq := d.inflight.pop(pid, None)) is not None:
                        d.acked.append(seq)

    async def talk(self, d: Device, w: asyncio.StreamWriter) -> None:
        """Publish in the stage's slots; otherwise PINGREQ at half the keepalive."""
        with contextlib.suppress(*ERRORS):
            await self._talk(d, w)

    async def _talk(self, d: Device, w: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        last, ping = loop.time(), self.c["keepalive"] / 2
        while True:
            now, st = loop.time(), self.stage
            due = st.start + (d.offset + d.slot) * st.interval if st else None
            if st is None or due is None or due >= st.end:
                due = None
            wake = min(due, last + ping) if due is not None else last + ping
            if wake > now:
                await asyncio.wait([self.changed], timeout=wake - now)
                continue
            if st is not None and due is not None:
                d.slot += 1
                if len(d.inflight) >= WINDOW:
                    st.skipped += 1
                    continue
                d.inflight[d.seq % 65535 + 1] = d.seq
                w.write(bytes(d.batch.stamp(1, d.seq, time.monotonic_ns())))
                d.seq += 1
                st.sent += 1
            else:
                w.write(PINGREQ)
            last = now
            if w.transport.get_write_buffer_size() > 65536:
                await w.drain()

    def wake(self) -> None:
        self.changed.set_result(None)
        self.changed = asyncio.get_running_loop().create_future()

    async def publish(self, rate: float, duration: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        rng = random.Random()  # noqa: S311 (spreading slots, not secrets)
        for d in self.devices:
            d.slot, d.offset = 0, rng.random()
        first = {d.index: len(d.acked) for d in self.devices}
        cpu0, start = time.process_time(), loop.time()
        st = self.stage = Stage(start, start + duration, 1 / rate)
        self.wake()
        await asyncio.sleep(duration)
        for _ in range(int(DRAIN * 10)):
            if not any(d.inflight for d in self.devices):
                break
            await asyncio.sleep(0.1)
        self.stage = None
        acked = {d.index: d.acked[first[d.index]:] for d in self.devices}
        return {"sent": st.sent, "skipped": st.skipped, "acked": acked,
                "unacked": sum(len(d.inflight) for d in self.devices),
                "cpu": time.process_time() - cpu0, "wall": loop.time() - start}

    def status(self) -> dict[str, Any]:
        return {"n": len(self.devices), "connected": self.connected, "full_at": self.full_at,
                "failures": self.failures, "cpu": time.process_time(),
                "dropped_inflight": self.dropped_inflight}

    def since(self, t: float) -> list[float | None]:
        return [next((x - t for x in d.connects if x >= t), None) for d in self.devices]

    def close(self) -> None:
        for w in list(self.writers.values()):
            w.write(wire.DISCONNECT)
            w.close()


async def serve_parent(c: dict[str, Any], conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def pump() -> None:  # a daemon thread: a silent parent cannot keep the process alive
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = {"cmd": "close"}
            loop.call_soon_threadsafe(inbox.put_nowait, msg)
            if msg["cmd"] == "close":
                return

    threading.Thread(target=pump, daemon=True).start()
    fleet = Fleet(c)
    lives = [asyncio.create_task(fleet.live(d)) for d in fleet.devices]
    end = loop.time() + c["deadline"]
    while True:
        try:
            msg = await asyncio.wait_for(inbox.get(), max(end - loop.time(), 0))
        except TimeoutError:
            msg = {"cmd": "close"}
        cmd = msg["cmd"]
        if cmd == "close":
            fleet.close()
            for t in lives:
                t.cancel()
            await asyncio.sleep(0.5)  # let the DISCONNECTs out
            with contextlib.suppress(OSError):
                conn.send({"cpu": time.process_time()})
            return
        if cmd == "status":
            reply: Any = fleet.status()
        elif cmd == "publish":
            reply = await fleet.publish(msg["rate"], msg["duration"])
        elif cmd == "since":
            reply = fleet.since(msg["t"])
        else:
            reply = {"error": f"unknown command {cmd!r}"}
        conn.send(reply)


def main(c: dict[str, Any], conn: Connection) -> None:
    """Process entry point."""
    asyncio.run(serve_parent(c, conn))
