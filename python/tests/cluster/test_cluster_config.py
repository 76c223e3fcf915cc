"""`[cluster]` and `[[bridge]]` in broker.toml: what check-config accepts and refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.broker.cluster_config import BridgeTopic, parse_topic_line
from roost.broker.config import ConfigError, load
from roost.cli import main
from secure.broker import tls_table
from security.certs import issue, make_ca

TLS = 'tls = { cert = "n.crt", key = "n.key", ca = "ca.crt" }'
LISTENER = f'[[listener]]\nname = "cluster"\nbind = ":8884"\n{TLS}\ncluster = true\n'
PEERS = ('peers = [ { name = "broker-2", host = "10.0.0.12", port = 8884 }, '
         '{ name = "broker-3", host = "broker-3.lan", port = 8884 } ]\n')
CLUSTER = f'[cluster]\nnode = "broker-1"\n{PEERS}{TLS}\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.toml"
    path.write_text(text)
    return path


def test_the_roles_config_loads(tmp_path: Path) -> None:
    text = (f'[[listener]]\nbind = "127.0.0.1:1883"\n{LISTENER}{CLUSTER}qos = 1\n'
            'queue_max = 500\nbackoff_max = 10\n'
            '[[bridge]]\nname = "cloud"\naddress = "mqtt.example.com:8883"\n'
            'topics = ["sensors/# out 1 local/ remote/", "cmd/# in 1"]\n'
            'tls = { ca = "ca.crt" }\nusername = "roost"\npassword_file = "pw"\n')
    config = load(_write(tmp_path, text))
    assert config.listeners[1].cluster
    cluster = config.cluster
    assert cluster is not None
    assert cluster.node == "broker-1" and cluster.identity == "node:broker-1"
    assert [(p.name, p.host, p.port) for p in cluster.peers] == [
        ("broker-2", "10.0.0.12", 8884), ("broker-3", "broker-3.lan", 8884)]
    assert (cluster.qos, cluster.queue_max, cluster.backoff_max) == (1, 500, 10.0)
    assert cluster.peer_identities() == {"node:broker-2", "node:broker-3"}
    (bridge,) = config.bridges
    assert (bridge.name, bridge.host, bridge.port) == ("cloud", "mqtt.example.com", 8883)
    assert bridge.topics == (BridgeTopic("sensors/#", "out", 1, "local/", "remote/"),
                             BridgeTopic("cmd/#", "in", 1))
    assert bridge.client_id == "roost-bridge-cloud"
    assert bridge.tls is not None and not bridge.tls.require_client_cert


BAD = [
    (LISTENER + CLUSTER.replace('"broker-3"', '"broker-1"'), 8, "is this node itself"),
    (LISTENER + CLUSTER.replace('"broker-3"', '"broker-2"'), 8, "listed twice"),
    (LISTENER + CLUSTER.replace(', port = 8884 }, ', ' }, '), 8, "needs host and port"),
    (LISTENER + CLUSTER.replace('host = "broker-3.lan", ', ''), 8, "needs host and port"),
    ('[[listener]]\nbind = "127.0.0.1:1"\n' + CLUSTER, 3, "cluster = true"),
    (LISTENER.replace(TLS + "\n", "").replace(":8884", "127.0.0.1:8884") + CLUSTER, 4,
     "needs tls with ca"),
    (LISTENER.replace('ca = "ca.crt" }', 'ca = "ca.crt", require_client_cert = false }')
     + CLUSTER, 5, "client certificates"),
    (LISTENER, 5, "needs a [cluster] table"),
    (LISTENER + CLUSTER.replace(TLS, 'tls = { ca = "ca.crt" }'), 9, "cert, key and ca"),
    (LISTENER + CLUSTER.replace(TLS, ''), 6, "needs tls"),
    (LISTENER + CLUSTER + "colour = 1\n", 10, "unknown cluster setting"),
    (LISTENER + CLUSTER + "qos = 3\n", 10, "cluster.qos"),
    (LISTENER + CLUSTER.replace('"broker-1"', '"a/b"', 1), 7, "cluster.node"),
    ('[[bridge]]\nname = "x"\naddress = "h:1"\ntopics = ["a/# sideways 1"]\n', 4,
     "direction must be"),
    ('[[bridge]]\nname = "x"\naddress = "h:1"\ntopics = ["a/# in 3"]\n', 4, "QoS must be"),
    ('[[bridge]]\nname = "x"\naddress = "h:1"\ntopics = ["a/# in 1 l/"]\n', 4, "expected"),
    ('[[bridge]]\nname = "x"\naddress = "h:1"\ntopics = ["a/# in 1 l/# r/"]\n', 4,
     "wildcards"),
    ('[[bridge]]\nname = "x"\naddress = "h:1"\ntopics = ["a/#/b in 1"]\n', 4,
     "not a valid topic filter"),
    ('[[bridge]]\nname = "x"\naddress = "h:1"\ntopics = []\n', 1, "needs topics"),
    ('[[bridge]]\nname = "x"\naddress = "nowhere"\ntopics = ["a"]\n', 3, "HOST:PORT"),
    ('[[bridge]]\nname = "x"\naddress = "h:1"\ntopics = ["a"]\npassword_file = "p"\n', 5,
     "needs username"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD)
def test_bad_cluster_config_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           text: str, line: int, reason: str) -> None:
    text = '[[listener]]\nbind = "127.0.0.1:1"\n' + text if "bridge" in text else text
    line += 2 if text.startswith('[[listener]]\nbind = "127.0.0.1:1"\n[[bridge') else 0
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert reason in str(err.value)
    assert err.value.line == line
    assert main(["broker", "check-config", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(("line", "topic"), [
    ("#", BridgeTopic("#", "out", 0)),
    ("topic a/+ both 2", BridgeTopic("a/+", "both", 2)),
    ('"" in 1 local/x remote/y', BridgeTopic("", "in", 1, "local/x", "remote/y")),
    ("b up", BridgeTopic("b", "", 0)),
])
def test_topic_lines(line: str, topic: BridgeTopic) -> None:
    if topic.direction == "":
        with pytest.raises(ValueError, match="direction"):
            parse_topic_line(line)
    else:
        assert parse_topic_line(line) == topic


def test_check_config_reads_the_cluster_certificates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = make_ca(tmp_path)
    node = issue(ca, "node:broker-1", server=True, client_too=True, name="broker-1")
    tls = tls_table(ca, node)
    good = (f'[[listener]]\nbind = "127.0.0.1:8884"\n{tls}\ncluster = true\n'
            f'[cluster]\nnode = "broker-1"\n{PEERS}{tls}\n')
    path = _write(tmp_path, good)
    assert main(["broker", "check-config", str(path)]) == 0
    missing = tmp_path / "gone.key"
    path.write_text(good.rsplit("tls", 1)[0] + tls.replace(str(node.key_path), str(missing)))
    assert main(["broker", "check-config", str(path)]) == 1
    assert "cannot load TLS files" in capsys.readouterr().err
