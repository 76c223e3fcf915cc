"""Load generator roles, each run in its own process: subscriber, publisher, connector, holder.

A role connects, sets `ready`, does its work until its own deadline or until the parent sets
`stop`, and puts one result dict on `out`, including its CPU time and wall time so the
report can show the generator was not the bottleneck. Every loop ends by count or deadline.
Every role's conf has `port` and `tls`: None for plain TCP, or the client's files for
mutual TLS ({"ca", "cert", "key", "version": "1.2" | "1.3" | None for either}).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import wire

HOST = "127.0.0.1"
CONNECT_TIMEOUT = 10.0
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@functools.cache
def client_context(ca: str, cert: str, key: str, version: str | None) -> ssl.SSLContext:
    """One context per process: every handshake is a full one (no session is resumed)."""
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    if version:
        context.minimum_version = context.maximum_version = ssl.TLSVersion[
            "TLSv" + version.replace(".", "_")]
    return context


async def open_mqtt(c: dict[str, Any], client_id: str) -> Conn:
    """TCP connect, the TLS handshake when c["tls"], CONNECT, CONNACK."""
    tls = c.get("tls")
    context = client_context(tls["ca"], tls["cert"], tls["key"], tls.get("version")
                             ) if tls else None
    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, c["port"], ssl=context),
                                  CONNECT_TIMEOUT)
    w.write(wire.connect(client_id))
    ack = await asyncio.wait_for(r.readexactly(4), CONNECT_TIMEOUT)
    if ack[0] != 0x20 or ack[3] != 0:
        raise ConnectionError(f"CONNACK refused: {ack.hex()}")
    return r, w


async def subscriber(c: dict[str, Any], ready: Event, stop: Event) -> dict[str, Any]:
    """c: port, n, filter, qos, latency. Counts PUBLISH frames, acks QoS 1, keeps seqs."""
    conns = [await open_mqtt(c, f"sub{i}") for i in range(c["n"])]
    for r, w in conns:
        w.write(wire.subscribe(c["filter"], c["qos"]))
        suback = await asyncio.wait_for(r.readexactly(5), CONNECT_TIMEOUT)
        if suback[4] > 2:
            raise ConnectionError("SUBACK refused")
    st: dict[str, Any] = {"count": 0, "first_ns": 0, "last_ns": 0, "cpu_last": 0.0,
                          "seen": {}, "lat_ns": []}
    keep_seqs, keep_lat = c["qos"] > 0, c["latency"]

    async def read(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        counter = wire.FrameCounter()
        seen: dict[int, list[int]] = st["seen"]
        lat: list[int] = st["lat_ns"]
        while data := await r.read(1 << 18):
            now = time.monotonic_ns()
            pubs, _ = counter.feed(data)
            if not pubs:
                continue
            st["first_ns"] = st["first_ns"] or now
            st["count"] += len(pubs)
            if keep_seqs:
                w.write(b"".join([wire.PUBACK_FRAMES[p[0]] for p in pubs]))
                for _, pub, seq, _ in pubs:
                    seen.setdefault(pub, []).append(seq)
            if keep_lat:
                lat.extend(now - p[3] for p in pubs)
            st["last_ns"] = now
            st["cpu_last"] = time.process_time()

    cpu0 = time.process_time()
    tasks = [asyncio.create_task(read(r, w)) for r, w in conns]
    ready.set()
    await asyncio.to_thread(stop.wait, c["deadline"])
    for _ in range(15):  # then drain until 2 s of silence (a busy box stalls), 30 s at most
        before = st["count"]
        await asyncio.sleep(2)
        if st["count"] == before:
            break
    for t in tasks:
        t.cancel()
    wall = (st["last_ns"] - st["first_ns"]) / 1e9
    return {"count": st["count"], "wall": wall, "cpu": st["cpu_last"] - cpu0,
            "seen": st["seen"], "lat_ns": st["lat_ns"]}


async def _publish_conn(k: int, conn: Conn, c: dict[str, Any], end: float) -> dict[str, Any]:
    """One publisher connection: blast (rate 0) or pace, keeping a window of QoS 1 ids."""
    r, w = conn
    qos, window, interval = c["qos"], c["window"], c["n"] / c["rate"] if c["rate"] else 0.0
    batch = wire.PublishBatch(c["topic"].format(k=k), qos, max(window, c["batch"]), k)
    inflight: dict[int, int] = {}
    acked: list[int] = []
    room = asyncio.Event()

    async def read_acks() -> None:
        counter = wire.FrameCounter()
        while data := await r.read(65536):
            for kind, pid in counter.feed(data)[1]:
                seq = inflight.pop(pid, None) if kind == 4 else None
                if seq is not None:
                    acked.append(seq)
            room.set()

    reader = asyncio.create_task(read_acks())
    loop = asyncio.get_running_loop()
    seq, start = 0, loop.time()
    while (now := loop.time()) < end:
        want = window - len(inflight) if qos else c["batch"]
        if interval:  # paced: send what is due by now
            due = int((now - start) / interval) + 1 - seq
            if due <= 0:
                await asyncio.sleep(start + seq * interval - now)
                continue
            want = min(want, due)
        if want <= 0:  # the QoS 1 window is full: wait for a PUBACK
            room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(room.wait(), end - now)
            continue
        frames = batch.stamp(want, seq, time.monotonic_ns())
        if qos:
            for s in range(seq, seq + want):
                inflight[s % 65535 + 1] = s
        seq += want
        w.write(frames)
        try:  # drain() only yields when the socket buffer is full: sleep(0) lets acks in
            await asyncio.wait_for(w.drain(), max(end - loop.time(), 0.001))
        except TimeoutError:
            break
        await asyncio.sleep(0)
    sent_wall = loop.time() - start
    for _ in range(100):  # wait up to 5 s for the last PUBACKs
        if not inflight:
            break
        await asyncio.sleep(0.05)
    reader.cancel()
    w.write(wire.DISCONNECT)
    w.close()
    return {"sent": seq, "acked": acked, "unacked": len(inflight), "wall": sent_wall}


async def publisher(c: dict[str, Any], ready: Event, stop: Event) -> dict[str, Any]:
    """c: port, n, topic (with {k}), qos, window, rate (0 = as fast as possible), batch,
    duration."""
    conns = [await open_mqtt(c, f"pub{k}") for k in range(c["n"])]
    ready.set()
    cpu0 = time.process_time()
    end = asyncio.get_running_loop().time() + c["duration"]
    results = await asyncio.gather(*(_publish_conn(k, cn, c, end) for k, cn in enumerate(conns)))
    return {"sent": sum(x["sent"] for x in results), "cpu": time.process_time() - cpu0,
            "wall": max(x["wall"] for x in results),
            "acked": {k: x["acked"] for k, x in enumerate(results)},
            "unacked": sum(x["unacked"] for x in results)}


async def connector(c: dict[str, Any], ready: Event, stop: Event) -> dict[str, Any]:
    """c: port, tasks, total, duration, start_at (time.monotonic() in the parent).
    Connect, get CONNACK, DISCONNECT, again."""
    loop = asyncio.get_running_loop()
    done = [0]
    failed = [0]
    ready.set()
    await asyncio.sleep(max(c["start_at"] - time.monotonic(), 0))
    cpu0, start = time.process_time(), loop.time()
    end = start + c["duration"]

    async def churn(t: int) -> None:
        for i in range(c["total"]):
            if done[0] >= c["total"] or loop.time() >= end:
                return
            try:
                _, w = await open_mqtt(c, f"cr{t}-{i}")
            except (OSError, TimeoutError, asyncio.IncompleteReadError):  # ssl.SSLError too
                failed[0] += 1
                continue
            done[0] += 1
            w.write(wire.DISCONNECT)
            w.close()

    await asyncio.gather(*(churn(t) for t in range(c["tasks"])))
    return {"count": done[0], "failed": failed[0], "wall": loop.time() - start,
            "cpu": time.process_time() - cpu0}


async def holder(c: dict[str, Any], ready: Event, stop: Event) -> dict[str, Any]:
    """c: port, total, tasks, deadline. Open total idle connections and keep them until stop."""
    gate = asyncio.Semaphore(c["tasks"])
    conns: list[Conn] = []
    failed = [0]
    cpu0, t0 = time.process_time(), time.monotonic()

    async def one(i: int) -> None:
        async with gate:
            try:
                conns.append(await open_mqtt(c, f"idle{i}"))
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                failed[0] += 1

    with contextlib.suppress(TimeoutError):  # whatever opened within 60 s is the answer
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(c["total"]))), 60)
    opened, open_wall, cpu = len(conns), time.monotonic() - t0, time.process_time() - cpu0
    ready.set()
    await asyncio.to_thread(stop.wait, c["deadline"])
    await asyncio.sleep(0.2)  # let any close by the broker reach us
    held = sum(1 for r, _ in conns if not r.at_eof())
    for _, w in conns:
        w.close()
    return {"opened": opened, "held": held, "failed": failed[0], "wall": open_wall, "cpu": cpu}


ROLES = {"subscriber": subscriber, "publisher": publisher, "connector": connector,
         "holder": holder}


def run(role: str, conf: dict[str, Any], ready: Event, stop: Event, out: Queue[Any]) -> None:
    """Process entry point."""
    try:
        out.put(asyncio.run(ROLES[role](conf, ready, stop)))
    except Exception as err:  # reported to the parent, which fails the row
        out.put({"error": f"{role}: {type(err).__name__}: {err}"})
        ready.set()
