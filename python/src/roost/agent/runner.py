"""The agent's main loop: one thread owns the queue, the link and the schedule; collectors
of plug-ins and user commands run in worker threads and hand results back through `done`.
"""

from __future__ import annotations

import json
import logging
import os
import queue as stdqueue
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from roost import __version__, sdnotify
from roost.agent import topics
from roost.agent.collectors import BUILTINS
from roost.agent.config import Config
from roost.agent.handlers import builtins, handle
from roost.agent.link import Link
from roost.agent.plugins import collect as collect_plugin
from roost.agent.queue import Queue
from roost.agent.replies import Replies

log = logging.getLogger(__name__)
SHUTDOWN_GRACE = 2.0


class Agent:
    def __init__(self, cfg: Config, root: Path = Path("/")) -> None:
        self.cfg, self.root = cfg, root
        self.queue = Queue(cfg.state_dir / "queue.sqlite", cfg.queue_max)
        self.replies = Replies(cfg.state_dir / "replies.sqlite")  # commands seen, by correlation
        self.intervals = {**cfg.intervals, **{n: p.interval for n, p in cfg.plugins.items()}}
        now = time.monotonic()
        self.due = {n: now for n, every in self.intervals.items() if every > 0}
        self.inflight: dict[int, int] = {}  # paho mid -> queue row id
        self.sent_upto = 0  # highest row id handed to paho
        self.acked: list[int] = []
        self.rejected = 0
        self.done: stdqueue.SimpleQueue[Callable[[], None]] = stdqueue.SimpleQueue()
        self.running: set[str] = set()  # plug-ins and commands in worker threads
        self.stopping = self.restart = False
        self.next_status = now + cfg.status_interval
        self.watchdog = sdnotify.watchdog_period()
        self.next_ping = now
        self.builtins = builtins(self)
        self.link = Link(cfg, self._status(False, stamp=False), self._on_up,
                         partial(handle, self), self._on_ack)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        sdnotify.notify("READY=1", f"STATUS=queue {self.queue.depth} samples; connecting")
        log.info("roost agent %s as %s in site %s", __version__, self.cfg.client_id, self.cfg.site)
        while not self.stopping:
            self.step()
        self._shutdown()
        if self.restart:
            log.info("restarting on request")
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606
        return 0

    def step(self) -> None:
        now = time.monotonic()
        wake = min([self.next_status, now + 1.0, *self.due.values()])
        if self.watchdog:
            wake = min(wake, self.next_ping)
        if self.running:  # a worker may finish any moment; its reply should not wait
            wake = min(wake, now + 0.05)
        self.link.poll(max(0.0, wake - now) if not self.acked else 0.0)
        while not self.done.empty():
            self.done.get()()
        self._collect()
        self._flush()
        self._drain()
        now = time.monotonic()
        if now >= self.next_status and self.link.up:
            self._publish_status()
        if self.watchdog and now >= self.next_ping:
            sdnotify.notify("WATCHDOG=1")
            self.next_ping = now + self.watchdog

    def collect_now(self, names: list[str]) -> None:
        now = time.monotonic()
        for name in names:
            self.due[name] = now

    def set_interval(self, name: str, seconds: float) -> None:
        self.intervals[name] = seconds
        self.due[name] = min(self.due.get(name, float("inf")), time.monotonic() + seconds)

    def _collect(self) -> None:
        now = time.monotonic()
        samples: list[tuple[str, Any]] = []
        for name, when in list(self.due.items()):
            if when > now:
                continue
            every = self.intervals[name]
            if every > 0:
                self.due[name] = max(when + every, now)  # no catch-up bursts
            else:
                del self.due[name]  # switched off; collect-now asked for one sample
            if name in BUILTINS:
                value = self._safe(name, BUILTINS[name])
                if value is not None:
                    samples.append((self._topic(name), value))
            elif name not in self.running:
                plugin = self.cfg.plugins[name]
                self.spawn(name, partial(collect_plugin, plugin), partial(self._push_one, name))
        if samples:
            self.queue.push(samples, self.sent_upto)

    def _safe(self, name: str, func: Callable[[Path], Any]) -> Any:
        try:
            return func(self.root)
        except Exception as err:  # an odd /proc or /sys must not stop the agent
            log.warning("collector %s failed: %r", name, err)
            return None

    def _push_one(self, name: str, value: Any) -> None:
        if value is not None:
            self.queue.push([(self._topic(name), value)], self.sent_upto)

    def _topic(self, metric: str) -> str:
        return topics.telemetry(self.cfg.site, self.cfg.client_id, metric)

    def spawn(self, key: str, work: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """Run work in a thread; `then(result)` runs later in the loop thread."""
        self.running.add(key)

        def body() -> None:
            try:
                result = work()
            except Exception:  # the worker must still hand its key back
                log.exception("worker %s failed", key)
                result = None

            def finish() -> None:
                self.running.discard(key)
                then(result)

            self.done.put(finish)

        threading.Thread(target=body, name=key, daemon=True).start()

    def _drain(self) -> None:
        """Hand the oldest queued samples to paho, in order, up to the in-flight window."""
        room = self.link.room()
        if room <= 0:
            return
        for row_id, topic, payload in self.queue.after(self.sent_upto, room):
            # retained, so `roost fleet status` finds the latest value of every metric
            self.inflight[self.link.publish(topic, payload, retain=True)] = row_id
            self.sent_upto = row_id

    def _on_ack(self, mid: int, failed: bool) -> None:
        row_id = self.inflight.pop(mid, None)
        if row_id is not None:
            self.acked.append(row_id)
            if failed:  # e.g. 0x87 not authorized: retrying cannot help
                self.rejected += 1

    def _flush(self) -> None:
        if self.acked:
            self.queue.delete(self.acked, self.rejected)
            self.acked, self.rejected = [], 0

    def _on_up(self) -> None:
        # paho retransmits what it holds; continue after the last row handed to it
        self._publish_status()
        sdnotify.notify(f"STATUS=connected to {self.link.endpoint}")

    def _status(self, online: bool, stamp: bool = True) -> bytes:
        """The status JSON; the last will (set once, sent later) carries no timestamp."""
        body: dict[str, Any] = {"state": "online" if online else "offline",
                                "client_id": self.cfg.client_id, "version": __version__}
        if stamp:
            body["ts"] = round(time.time(), 3)
        if online:
            body |= {"endpoint": str(self.link.endpoint),
                     "queue_depth": self.queue.depth, "dropped": self.queue.counter("dropped"),
                     "rejected": self.queue.counter("rejected"),
                     "seq": self.queue.counter("seq")}
        return json.dumps(body, separators=(",", ":")).encode()

    def _publish_status(self, online: bool = True) -> None:
        self.next_status = time.monotonic() + self.cfg.status_interval
        self.link.send(topics.status(self.cfg.site, self.cfg.client_id), self._status(online),
                       retain=True)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _shutdown(self) -> None:
        if self.link.up:  # say goodbye, and let what is in flight be acknowledged
            self._publish_status(online=False)
            deadline = time.monotonic() + SHUTDOWN_GRACE
            while not self.link.idle and self.link.up and time.monotonic() < deadline:
                self.link.poll(0.05)
        self.link.close()
        self._flush()
        self.queue.close()
        self.replies.close()
        sdnotify.notify("STOPPING=1")
