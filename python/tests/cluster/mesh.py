"""Real cluster nodes on loopback for the cluster tests: a CA, node certificates
(CN "node:<name>", server and client use), one `roost broker run --config` per node,
and paho clients that record what they receive.

The cluster listeners need ports known before the peers start (each node's config lists
the others'), so they come from `free_port()`; everything else binds port 0.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from secure.broker import METRICS, V5, WAIT, Broker, tls_table
from security.certs import Issued, issue, make_ca
from security.procs import free_port


def wait_for(check: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Node:
    def __init__(self, name: str, directory: Path, cert: Issued, cluster_port: int) -> None:
        self.name = name
        self.directory = directory
        self.cert = cert
        self.cluster_port = cluster_port
        self.config = directory / f"{name}.toml"
        self.broker: Broker | None = None

    def start(self) -> None:
        self.broker = Broker(self.config, listeners=2)

    @property
    def port(self) -> int:
        """The plain loopback listener for the test's clients."""
        assert self.broker is not None
        return self.broker.ports[0]

    @property
    def http(self) -> int:
        assert self.broker is not None
        found = [m for m in map(METRICS.search, self.broker.lines) if m]
        return int(found[-1].group(1))

    def health(self) -> tuple[int, dict[str, object]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/healthz",
                                        timeout=WAIT) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def bridges(self) -> dict[str, bool]:
        bridges = self.health()[1]["bridges"]
        assert isinstance(bridges, dict)
        return bridges

    def kill(self) -> None:
        """kill -9: no goodbye, no last commit."""
        assert self.broker is not None
        self.broker.proc.kill()
        self.broker.proc.wait(WAIT)
        self.broker.log_path.write_text(self.broker.text)
        self.broker = None

    def stop(self) -> None:
        if self.broker is not None and self.broker.proc.poll() is None:
            self.broker.stop()
        self.broker = None


class Mesh:
    """`count` nodes, each listing every other one as a peer."""

    def __init__(self, directory: Path, count: int = 3, extra: str = "",
                 crl: Path | None = None) -> None:
        self.directory = directory
        self.ca = make_ca(directory)
        self.crl = crl
        names = [f"broker-{i + 1}" for i in range(count)]
        self.nodes = [Node(n, directory, issue(self.ca, f"node:{n}", server=True,
                                               client_too=True, name=n), free_port())
                      for n in names]
        for node in self.nodes:
            self.write_config(node, extra)

    def write_config(self, node: Node, extra: str = "") -> None:
        peers = ", ".join(f'{{ name = "{p.name}", host = "127.0.0.1", port = {p.cluster_port} }}'
                          for p in self.nodes if p is not node)
        tls = tls_table(self.ca, node.cert, **({} if self.crl is None else {"crl": self.crl}))
        node.config.write_text(f"""\
data_dir = "{self.directory / ('data-' + node.name)}"
allow_anonymous = true
sys_interval = 0
log_level = "debug"
metrics = {{ bind = "127.0.0.1", port = 0 }}

[[listener]]
bind = "127.0.0.1:0"

[[listener]]
name = "cluster"
bind = "127.0.0.1:{node.cluster_port}"
{tls}
cluster = true

[cluster]
node = "{node.name}"
peers = [ {peers} ]
{tls}
backoff_initial = 0.1
backoff_max = 1
{extra}""")

    def __getitem__(self, i: int) -> Node:
        return self.nodes[i]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        self.wait_joined()

    def wait_joined(self) -> None:
        """Every running node's bridges are all up, and a probe published on each node
        reaches a subscriber on each node (the bridges' subscriptions are in place)."""
        running = [n for n in self.nodes if n.broker is not None]
        wait_for(lambda: all(all(n.bridges().values()) for n in running), "bridges up")
        with clients() as make:
            subs = [make(n, f"probe-{n.name}") for n in running]
            for s in subs:
                s.subscribe("probe/#", 1)
            for i, n in enumerate(running):
                pub = make(n, f"prober-{n.name}")
                topic = f"probe/{i}"

                def arrived(topic: str = topic, pub: Sub = pub) -> bool:
                    if all(s.payloads(topic) for s in subs):
                        return True
                    pub.publish(topic, b"probe", 1)
                    time.sleep(0.2)
                    return False

                wait_for(arrived, f"a probe from {n.name} on every node")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class Sub:
    """A paho MQTT 5 client that records every message it receives."""

    def __init__(self, port: int, client_id: str, *, clean: bool = True,
                 expiry: int = 0) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=V5)
        self.client.reconnect_delay_set(60, 120)  # never reconnect within a test
        self.lock = threading.Lock()
        self.messages: list[mqtt.MQTTMessage] = []
        self.connected = threading.Event()
        self.gone = threading.Event()
        self.disconnect_reason: int | None = None
        self.session_present = False
        self.client.on_message = self._message
        self.client.on_connect = self._connect
        self.client.on_disconnect = self._disconnect
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if expiry:
            props.SessionExpiryInterval = expiry
        self.client.connect("127.0.0.1", port, keepalive=60, clean_start=clean,
                            properties=props)
        self.client.loop_start()
        assert self.connected.wait(WAIT), f"{client_id} did not connect"

    def _connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                 reason: object, props: object) -> None:
        self.session_present = flags.session_present
        self.connected.set()

    def _disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: object, props: object) -> None:
        self.disconnect_reason = int(getattr(reason, "value", reason))  # type: ignore[call-overload]
        self.gone.set()

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def subscribe(self, topic: str, qos: int, **options: bool) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, options=SubscribeOptions(qos=qos, **options))
        assert done.wait(WAIT), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos, retain)
        if qos:
            info.wait_for_publish(WAIT)

    def payloads(self, topic: str | None = None) -> list[bytes]:
        with self.lock:
            return [bytes(m.payload) for m in self.messages if topic is None or m.topic == topic]

    def received(self) -> list[mqtt.MQTTMessage]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def clients() -> Iterator[Callable[..., Sub]]:
    """make(node, client_id, **options) -> Sub; every one is closed on exit."""
    made: list[Sub] = []

    def make(node: Node, client_id: str, **options: object) -> Sub:
        made.append(Sub(node.port, client_id, **options))  # type: ignore[arg-type]
        return made[-1]

    try:
        yield make
    finally:
        for sub in made:
            sub.close()
