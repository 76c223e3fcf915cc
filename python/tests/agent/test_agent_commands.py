"""Command round trips over MQTT 5 request/response against a real broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .conftest import AgentFactory, WatcherFactory
from .harness import Server, Watcher, agent_toml, dedupe

CMD = "roost/lab/pi-1/cmd/"


def user_commands(tmp_path: Path) -> str:
    return f'''
[commands.mark]
argv = ["/usr/bin/touch", "{{name}}"]
[commands.mark.args]
name = {{ type = "string", pattern = "{tmp_path}/marker-[a-z]+" }}
[commands.echo]
argv = ["/bin/echo", "{{word}}"]
[commands.echo.args]
word = {{ type = "string", pattern = "[a-z]{{1,10}}" }}
[commands.fail]
argv = ["/bin/false"]
[commands.ghost]
argv = ["{tmp_path}/not-installed"]
'''


@pytest.fixture
def w(broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> Watcher:
    w = watcher(broker.port, ["roost/lab/#"])
    agent(agent_toml(tmp_path / "state", [broker.port], collectors="load = 0",
                     extra=user_commands(tmp_path)))
    w.wait(lambda ms: bool(w.statuses()), "online")
    return w


def test_ping_set_interval_collect_now(w: Watcher) -> None:
    pong = w.request(CMD + "ping", b"")
    assert pong["ok"] is True and pong["result"]["pong"] is True
    assert w.seqs("memory") == [] and w.seqs("load") == []  # both switched off in the config
    got = w.request(CMD + "collect-now", b'{"metric": "memory"}')
    assert got == {"ok": True, "result": {"collecting": ["memory"]}}
    w.wait(lambda ms: len(w.seqs("memory")) == 1, "one memory sample")
    got = w.request(CMD + "set-interval", b'{"metric": "load", "seconds": 0.05}')
    assert got == {"ok": True, "result": {"metric": "load", "interval": 0.05}}
    w.wait(lambda ms: len(w.seqs("load")) >= 3, "load at the new interval")


def test_user_defined_command_runs_fixed_argv(w: Watcher, tmp_path: Path) -> None:
    assert w.request(CMD + "echo", b'{"word": "hello"}') == {"ok": True,
                                                            "result": {"stdout": "hello\n"}}
    marker = tmp_path / "marker-yes"
    assert w.request(CMD + "mark", f'{{"name": "{marker}"}}'.encode())["ok"] is True
    assert marker.exists()
    failed = w.request(CMD + "fail", b"")
    assert failed["ok"] is False and failed["error"].startswith("exit status 1")
    ghost = w.request(CMD + "ghost", b"")
    assert ghost["ok"] is False and "cannot run" in ghost["error"]


REFUSED = [
    ("rm", b'{"name": "MARK"}', "unknown command 'rm'"),
    ("mark", b'{"name": "MARK/../../etc/x"}', "must be a string matching"),
    ("mark", b'{"name": "MARK; touch MARK"}', "must be a string matching"),
    ("mark", b'{"name": "MARK", "extra": 1}', "unknown argument(s): extra"),
    ("mark", b'{"name": 7}', "must be a string"),
    ("mark", b"", "missing argument 'name'"),
    ("mark", b"not json", "payload is not JSON"),
    ("mark", b'["MARK"]', "must be a JSON object"),
    ("set-interval", b'{"metric": "load", "seconds": -1}', "must be within"),
    ("set-interval", b'{"metric": "nope", "seconds": 1}', "must be a string matching"),
]


def test_refused_requests_get_an_error_and_run_nothing(w: Watcher, tmp_path: Path) -> None:
    # one agent for all cases: a broker and an agent per case would triple the suite's time
    marker = tmp_path / "marker-no"
    for name, payload, error in REFUSED:
        reply = w.request(CMD + name, payload.replace(b"MARK", str(marker).encode()))
        assert reply["ok"] is False and error in reply["error"], (name, payload, reply)
        assert set(reply) == {"ok", "error"}
        assert not marker.exists(), (name, payload)
    assert w.request(CMD + "ping", b"")["ok"] is True  # and the agent is still serving


def test_restart_agent_comes_back_with_the_same_pid_and_seq_counter(
        mosquitto: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    w = watcher(mosquitto.port, ["roost/lab/#"])
    proc = agent(agent_toml(tmp_path / "state", [mosquitto.port], collectors="load = 0.1"))
    w.wait(lambda ms: len(w.seqs()) >= 3, "samples before the restart")
    assert w.request(CMD + "restart-agent", b"") == {"ok": True, "result": {"restarting": True}}
    def back(ms: object) -> bool:
        states = [s["state"] for s in w.statuses()]
        return "offline" in states and "online" in states[states.index("offline"):]

    w.wait(back, "offline, then online again")
    before = max(w.seqs())
    w.wait(lambda ms: max(w.seqs()) >= before + 3, "samples after the restart")
    got = dedupe(w.seqs())
    assert got == list(range(1, got[-1] + 1)), "the counter went on where it stopped"
    assert proc.proc.poll() is None and proc.output().count("roost agent 0.1.0 as") == 2


def test_a_request_sent_while_the_agent_is_away_runs_when_it_is_back(
        broker: Server, agent: AgentFactory, watcher: WatcherFactory, tmp_path: Path) -> None:
    """The agent keeps a session on the broker: a request waits there for it."""
    w = watcher(broker.port, ["roost/lab/pi-1/status", "roost/lab/pi-1/reply/#"])
    toml = agent_toml(tmp_path / "state", [broker.port], collectors="load = 0")
    first = agent(toml)
    w.wait(lambda ms: any(m.body.get("state") == "online" for m in w.msgs), "online")
    first.stop()
    w.wait(lambda ms: ms[-1].body.get("state") == "offline", "offline")
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = "roost/lab/pi-1/reply/later"
    props.CorrelationData = b"while-away"
    w.client.publish(CMD + "ping", b"", qos=1, properties=props).wait_for_publish(15)
    agent(toml)
    msgs = w.wait(lambda ms: any(m.correlation == b"while-away" for m in ms), "the reply")
    [reply] = [m.body for m in msgs if m.correlation == b"while-away"]
    assert reply["ok"] is True and reply["result"]["pong"] is True
