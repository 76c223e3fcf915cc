"""Real parts for the agent tests: a restartable Mosquitto, an agent process, a subscriber."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from interop.brokers import HOST, MOSQUITTO_READY, ROOST_READY, Broker, _spawn, free_port

from .pki import Identity, Pki

WAIT = 15.0  # upper bound of every wait; tests pass far sooner


class Server:
    """Mosquitto or the Roost broker on a fixed free port, so it can stop and start in place."""

    def __init__(self, kind: str, data: Path, pki: Pki | None = None, extra: str = "") -> None:
        self.kind, self.data, self.pki, self.port = kind, data, pki, free_port()
        self.extra = extra  # more mosquitto.conf lines
        self.proc: Broker | None = None
        self.data.mkdir(parents=True, exist_ok=True)

    def config(self) -> str:
        lines = [f"listener {self.port} {HOST}", f"user {pwd.getpwuid(os.getuid()).pw_name}",
                 "persistence true", f"persistence_location {self.data}/",
                 "log_dest stderr", "log_type all", self.extra]
        if self.pki is None:
            anonymous = [] if "allow_anonymous" in self.extra else ["allow_anonymous true"]
            return "\n".join([*lines, *anonymous, ""])
        server = self.pki.issue("broker", server=True)
        acl = self.data / "acl"
        # the one pattern that confines every Pi, plus an operator account
        acl.write_text("pattern readwrite roost/lab/%c/#\n\n"
                       "user operator\ntopic readwrite roost/#\n")
        return "\n".join([*lines, f"cafile {self.pki.ca}", f"certfile {server.cert}",
                          f"keyfile {server.key}", "require_certificate true",
                          "use_identity_as_username true", f"acl_file {acl}", ""])

    def start(self) -> None:
        if self.kind == "roost":
            cmd = [sys.executable, "-m", "roost", "broker", "run", "--bind",
                   f"{HOST}:{self.port}", "--allow-anonymous", "--data-dir", str(self.data)]
            self.proc, _ = _spawn("roost", cmd, ROOST_READY)
            return
        conf = self.data / "mosquitto.conf"
        conf.write_text(self.config())
        self.proc, _ = _spawn("mosquitto", ["mosquitto", "-c", str(conf)], MOSQUITTO_READY)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()  # SIGTERM: Mosquitto saves its persistence file on the way out
            self.proc = None


def agent_toml(state: Path, ports: list[int], *, client_id: str = "pi-1", extra: str = "",
               collectors: str = "load = 0.1", tls: tuple[Path, Identity] | None = None) -> str:
    endpoints = ", ".join(f'"{HOST}:{p}"' for p in ports)
    off = "\n".join(f"{m} = 0" for m in ("cpu_temp", "memory", "disk", "uptime", "network",
                                         "throttled", "load") if f"{m} =" not in collectors)
    text = (f'site = "lab"\nclient_id = "{client_id}"\nstate_dir = "{state}"\n'
            f"[broker]\nendpoints = [{endpoints}]\nbackoff_initial = 0.05\nbackoff_cap = 0.3\n"
            f"connect_timeout = 2\n[status]\ninterval = 0.5\n[collectors]\n{collectors}\n{off}\n")
    if tls:
        ca, ident = tls
        text += f'[tls]\nca = "{ca}"\ncert = "{ident.cert}"\nkey = "{ident.key}"\n'
    return text + extra


class AgentProc:
    """`python -m roost agent run` as a real process (kill -9 must be possible)."""

    def __init__(self, directory: Path, toml: str, env: dict[str, str] | None = None) -> None:
        self.config = directory / f"agent-{uuid.uuid4().hex[:6]}.toml"
        self.config.write_text(toml)
        self.log = self.config.with_suffix(".log")
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "roost", "agent", "run", "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, **(env or {})})

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(WAIT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, text: str) -> None:
        deadline = time.monotonic() + WAIT
        while text not in self.output():
            assert self.proc.poll() is None, f"agent exited: {self.output()[-2000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in the agent log"
            time.sleep(0.05)


@dataclass(frozen=True)
class Msg:
    topic: str
    body: Any
    correlation: bytes | None


class Watcher:
    """A paho subscriber with a persistent session, so it misses nothing across a broker
    restart; `wait()` polls its inbox under a deadline."""

    def __init__(self, port: int, filters: list[str], name: str = "",
                 tls: tuple[Path, Identity] | None = None) -> None:
        self.msgs: list[Msg] = []
        self.cond = threading.Condition()
        self.filters = filters
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=name or f"watch-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        if tls:
            self.client.tls_set(ca_certs=str(tls[0]), certfile=str(tls[1].cert),
                                keyfile=str(tls[1].key))
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._connected
        self.client.on_subscribe = self._subscribed
        self.client.on_message = self._message
        self.ready = threading.Event()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 300
        self.client.connect(HOST, port, keepalive=10, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.ready.wait(WAIT), "watcher could not subscribe"

    def _connected(self, c: mqtt.Client, u: Any, f: mqtt.ConnectFlags, rc: ReasonCode,
                   p: Properties | None) -> None:
        c.subscribe([(t, 1) for t in self.filters])

    def _subscribed(self, c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode],
                    p: Properties | None) -> None:
        self.ready.set()

    def _message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = msg.payload
        corr = getattr(msg.properties, "CorrelationData", None)
        with self.cond:
            self.msgs.append(Msg(msg.topic, body, corr))
            self.cond.notify_all()

    def wait(self, pred: Callable[[list[Msg]], bool], what: str, timeout: float = WAIT
             ) -> list[Msg]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.msgs):
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}; got {len(self.msgs)} messages"
                self.cond.wait(min(left, 0.2))
            return list(self.msgs)

    def seqs(self, metric: str = "load") -> list[int]:
        with self.cond:
            return [m.body["seq"] for m in self.msgs if m.topic.endswith(f"/telemetry/{metric}")]

    def statuses(self) -> list[dict[str, Any]]:
        with self.cond:
            return [m.body for m in self.msgs if m.topic.endswith("/status")]

    def request(self, topic: str, payload: bytes, timeout: float = WAIT) -> Any:
        """MQTT 5 request/response: publish with a response topic and correlation data."""
        corr = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = answer = topic.replace("/cmd/", "/reply/")
        props.CorrelationData = corr
        self.client.publish(topic, payload, qos=1, properties=props)

        def mine(m: Msg) -> bool:  # not our own request, if we also subscribed to it
            return m.topic == answer and m.correlation == corr

        msgs = self.wait(lambda ms: any(map(mine, ms)), f"reply to {topic}", timeout)
        return next(m.body for m in msgs if mine(m))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def dedupe(seqs: list[int]) -> list[int]:
    """What a subscriber keeps: drop anything not newer than the newest seen (QoS 1 dups)."""
    out: list[int] = []
    for s in seqs:
        if not out or s > out[-1]:
            out.append(s)
    return out
