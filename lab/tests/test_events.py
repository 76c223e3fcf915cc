"""The agents' link outages, broker placement, command outcomes, the checker's blind spots."""

from chaos.journal import Link, kill_target, link_events, outage, placement
from chaos.ledger import Window
from chaos.report import blind
from chaos.requests import Request, errors, outcomes, slowest

W = Window("cut", 100, 200)


def test_agent_journal_lines_become_link_events() -> None:
    lines = ["1000.5 pi-1 roost[7]: INFO roost.agent.link: connected to lb-1:8883",
             "1010.0 pi-1 roost[7]: WARNING roost.agent.link: broker link down (x); next",
             "1011.0 pi-1 roost[7]: INFO roost.agent.runner: collector load failed"]
    assert link_events("pi-1", lines) == [Link("pi-1", 1000.5, True),
                                          Link("pi-1", 1010.0, False)]


def test_outage_from_down_to_the_last_reconnect() -> None:
    ev = [Link("p", 110, False), Link("p", 125, True), Link("p", 130, False),
          Link("p", 131, True)]
    o = outage(ev, W)
    assert (o.down_s, o.back_after, o.up_at_end) == (16, 31, True)


def test_a_link_down_before_the_window_and_never_back() -> None:
    o = outage([Link("p", 90, False)], W)
    assert (o.down_s, o.back_after, o.up_at_end) == (100, None, False)
    assert outage([], W).down_s == 0


def test_placement_is_the_node_of_the_latest_connect() -> None:
    lines = {"broker-1": ["100.0 b1 roost[1]: INFO x: connected 'pi-1' from 10.0.0.5:1"],
             "broker-2": ["200.0 b2 roost[1]: INFO x: connected 'pi-1' from 10.0.0.5:2",
                          "300.0 b2 roost[1]: INFO x: disconnected 'pi-2' from 10.0.0.6:1"]}
    assert placement(lines) == {"pi-1": "broker-2"}


def test_command_outcomes() -> None:
    reqs = [Request("p", 110, 0, 112, True), Request("p", 120, 0, 150, False),
            Request("p", 130, 0x10), Request("p", 140, 0), Request("p", 150),
            Request("p", 250, 0, 251, True)]
    assert outcomes(reqs, W) == {"ok": 1, "error reply": 1, "refused 0x10": 1,
                                 "unanswered": 2}
    assert slowest(reqs, W) == 30


def test_blind_spans_only_reconnects_without_the_session() -> None:
    log: list[tuple[float, str]] = [
           (1, "connected to node:broker-1, session present False"), (10, "disconnected: x"),
           (12, "connected to node:broker-1, session present True"), (20, "disconnected: y"),
           (23, "connected to node:broker-2, session present False")]
    assert blind(log) == [(20, 24.0)]


def test_a_brokers_error_answer_is_an_error_reply_not_silence() -> None:
    expired = "broker broker-2: expired undelivered: pi-1 offline since 2026-11-26 06:41:02"
    reqs = [Request("p", 110, 0, 131, False, expired),
            Request("p", 120, 0, 141, False, expired.replace("06:41", "06:42")),
            Request("p", 125, 0, 126, False, "agent: unknown command 'x'")]
    assert outcomes(reqs, W) == {"error reply": 3}
    assert errors(reqs, W) == {"broker broker-2: expired undelivered": 2,
                               "agent: unknown command 'x'": 1}


def test_kill_target_is_a_broker_holding_pis() -> None:
    everyone_on_1 = {"broker-1": ["pi-1", "pi-2", "pi-3"], "broker-2": [], "broker-3": []}
    assert kill_target(everyone_on_1, "broker-1") == "broker-1"  # not the empty broker-2
    split = {"broker-1": ["pi-1", "pi-2"], "broker-2": ["pi-3"], "broker-3": []}
    assert kill_target(split, "broker-1") == "broker-2"  # spare the checker's node
    assert kill_target(split, "broker-3") == "broker-1"
    assert kill_target({"broker-1": [], "broker-2": []}, None) == "broker-1"
