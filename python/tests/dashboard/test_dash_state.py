"""The dashboard's state model, sans-IO: payloads good and bad, bounds, staleness."""

from __future__ import annotations

import json
from typing import Any

import pytest

from roost.dashboard.fleet import MAX_PIS, Fleet
from roost.dashboard.nodes import Node
from roost.dashboard.series import POINTS, Series

T0 = 1_700_000_000.0
STATUS = "roost/lab/pi-1/status"
TEMP = "roost/lab/pi-1/telemetry/cpu_temp"
LOAD = "roost/lab/pi-1/telemetry/load"


def js(**body: Any) -> bytes:
    return json.dumps(body).encode()


def pi_view(fleet: Fleet, now: float, client: str = "pi-1") -> dict[str, Any]:
    return next(p for p in fleet.view(now)["pis"] if p["client_id"] == client)


def online(fleet: Fleet, now: float = T0) -> None:
    fleet.fold(STATUS, js(state="online", ts=now, version="0.1.0", queue_depth=4, dropped=2),
               False, now)


def test_status_and_telemetry_make_an_online_pi_with_sparklines() -> None:
    fleet = Fleet(stale_after=60)
    online(fleet)
    for i in range(3):
        t = T0 + 60 * i  # one sample per 30 s slot
        fleet.fold(TEMP, js(ts=t, seq=i, value=40.0 + i), False, t)
        fleet.fold(LOAD, js(ts=t, seq=i, value={"1m": 0.5 * i, "5m": 0.1, "15m": 0.1}), False, t)
    view = pi_view(fleet, T0 + 120)
    assert (view["state"], view["version"], view["queue_depth"], view["dropped"]) == (
        "online", "0.1.0", 4, 2)
    assert view["last_seen"] == T0 + 120
    assert view["metrics"]["cpu_temp"]["latest"] == 42.0
    assert [p[1] for p in view["metrics"]["load"]["points"]] == [0.0, 0.5, 1.0]
    assert view["unreadable"] == []


@pytest.mark.parametrize("payload", [
    b"not json", b"\xff\xfe", b"[1, 2]", b"null", b'{"ts": 1}', b'{"value": "hot"}',
    b'{"value": true}', b'{"value": NaN}', b'{"value": Infinity}', b'{"value": {"1m": 1}}',
    b"[" * 100_000, b'{"value": 1, "pad": "' + b"x" * 70_000 + b'"}',
])
def test_a_malformed_temperature_is_unreadable_and_breaks_nothing(payload: bytes) -> None:
    fleet = Fleet(stale_after=60)
    online(fleet)
    fleet.fold(TEMP, js(ts=T0, seq=1, value=50.0), False, T0)
    fleet.fold(TEMP, payload, False, T0 + 1)
    view = pi_view(fleet, T0 + 1)
    temp = view["metrics"]["cpu_temp"]
    assert temp["unreadable"] and view["unreadable"] == ["cpu_temp"]
    assert temp["latest"] == 50.0  # the last good value stays for the sparkline
    assert view["state"] == "online"
    json.dumps(fleet.view(T0 + 1))  # the page's data is still serialisable
    fleet.fold(TEMP, js(ts=T0 + 2, seq=2, value=51.0), False, T0 + 2)
    assert not pi_view(fleet, T0 + 2)["metrics"]["cpu_temp"]["unreadable"]


def test_malformed_status_and_other_metrics_are_listed_as_unreadable() -> None:
    fleet = Fleet(stale_after=60)
    fleet.fold(STATUS, b'{"state": "sleeping"}', False, T0)
    fleet.fold("roost/lab/pi-1/telemetry/memory", b"{}", False, T0)
    view = pi_view(fleet, T0)
    assert view["unreadable"] == ["memory", "status"]
    assert view["state"] == "never seen"  # nothing readable arrived: no sign of life


def test_odd_field_types_in_a_status_are_dropped_not_shown() -> None:
    fleet = Fleet(stale_after=60)
    fleet.fold(STATUS, js(state="online", ts=T0, version=["x"], queue_depth=-1, dropped=True),
               False, T0)
    view = pi_view(fleet, T0)
    assert (view["state"], view["version"], view["queue_depth"], view["dropped"]) == (
        "online", None, None, None)


def test_foreign_topics_and_empty_levels_are_ignored() -> None:
    fleet = Fleet(stale_after=60)
    for topic in ("other/lab/pi/status", "roost/lab/pi/cmd/ping", "roost//pi/status",
                  "roost/lab/pi/status/extra", "roost/lab/pi/telemetry"):
        assert not fleet.fold(topic, js(state="online", ts=T0, value=1), False, T0)
    assert fleet.view(T0)["pis"] == []


def test_the_last_will_turns_a_pi_offline_and_a_clean_stop_says_so() -> None:
    fleet = Fleet(stale_after=60)
    online(fleet)
    fleet.fold(STATUS, js(state="offline", client_id="pi-1", version="0.1.0"), False, T0 + 1)
    view = pi_view(fleet, T0 + 1)
    assert (view["state"], view["reason"], view["last_seen"]) == ("offline", "last will", T0)
    fleet.fold(STATUS, js(state="offline", ts=T0 + 2), False, T0 + 2)
    assert pi_view(fleet, T0 + 2)["reason"] == "stopped"
    online(fleet, T0 + 3)
    assert pi_view(fleet, T0 + 3)["state"] == "online"


def test_silence_longer_than_stale_after_is_offline() -> None:
    fleet = Fleet(stale_after=30)
    online(fleet)
    assert pi_view(fleet, T0 + 30)["state"] == "online"
    view = pi_view(fleet, T0 + 31)
    assert (view["state"], view["reason"]) == ("offline", "silent for over 30s")
    fleet.fold(TEMP, js(ts=T0 + 40, seq=9, value=40), False, T0 + 40)
    assert pi_view(fleet, T0 + 41)["state"] == "online"


def test_retained_messages_count_by_their_own_time_not_arrival() -> None:
    fleet = Fleet(stale_after=60)
    fleet.fold(STATUS, js(state="online", ts=T0 - 3600), True, T0)  # a Pi gone for an hour
    assert pi_view(fleet, T0)["state"] == "offline"
    fleet.fold("roost/lab/pi-2/telemetry/load", js(value=1.0), True, T0)  # no stamp: unknown age
    assert pi_view(fleet, T0, "pi-2")["state"] == "never seen"
    fleet.fold("roost/lab/pi-3/telemetry/load", js(ts=T0 + 999, value=1.0), False, T0)
    assert pi_view(fleet, T0, "pi-3")["last_seen"] == T0  # a clock ahead is clipped


def test_duplicates_by_sequence_number_are_folded_once() -> None:
    fleet = Fleet(stale_after=60)
    sample = js(ts=T0, seq=7, value=1.5)
    assert fleet.fold(LOAD, sample, False, T0)
    assert not fleet.fold(LOAD, sample, False, T0 + 1)  # QoS 1 resend or a second node
    assert len(pi_view(fleet, T0 + 1)["metrics"]["load"]["points"]) == 1


def test_inventory_pis_are_never_seen_until_they_report() -> None:
    fleet = Fleet(stale_after=60, inventory=["pi-1", "pi-9", "pi-9"], site="lab")
    assert [(p["client_id"], p["state"]) for p in fleet.view(T0)["pis"]] == [
        ("pi-1", "never seen"), ("pi-9", "never seen")]
    online(fleet)
    view = fleet.view(T0)
    assert [(p["client_id"], p["state"]) for p in view["pis"]] == [
        ("pi-1", "online"), ("pi-9", "never seen")]
    assert view["counts"] == {"online": 1, "offline": 0, "never seen": 1}
    assert view["keys"] == [["lab", "pi-1"], ["lab", "pi-9"]]
    assert not fleet.fold("roost/other/pi-5/status", js(state="online", ts=T0), False, T0)


def test_series_keeps_one_hour_and_a_bounded_number_of_points() -> None:
    series = Series()
    for i in range(20_000):  # 5.5 hours at one sample a second
        series.add(T0 + i, float(i))
    assert len(series.data) <= POINTS + 1
    points = series.view(T0 + 19_999)
    assert points[0][0] >= T0 + 19_999 - 3600 and points[-1][1] == 19_999.0
    assert not series.add(T0, 1.0)  # out of order: refused, the series stays sorted


def test_the_number_of_pis_is_bounded() -> None:
    fleet = Fleet(stale_after=60)
    for i in range(MAX_PIS + 5):
        fleet.fold(f"roost/lab/pi-{i}/status", js(state="online", ts=T0), False, T0)
    assert len(fleet.pis) == MAX_PIS


def test_broker_node_rates_from_sys_counters() -> None:
    node = Node("b1:1883")
    node.fold("$SYS/broker/version", b"mosquitto version 2.0.11", T0)
    node.fold("$SYS/broker/clients/connected", b"12", T0)
    node.fold("$SYS/broker/messages/received", b"100", T0)
    node.fold("$SYS/broker/messages/received", b"300", T0 + 10)
    node.fold("$SYS/broker/messages/sent", b"junk", T0 + 10)
    node.fold("$SYS/broker/uptime", b"42 seconds", T0 + 10)
    assert not node.fold("$SYS/broker/load/bytes/received/1min", b"1", T0)
    view = node.view()
    assert (view["connections"], view["received_per_s"], view["sent_per_s"], view["uptime"],
            view["version"]) == (12, 20.0, None, 42, "mosquitto version 2.0.11")
    node.fold("$SYS/broker/messages/received", b"5", T0 + 20)  # restarted: no negative rate
    assert node.view()["received_per_s"] == 20.0
