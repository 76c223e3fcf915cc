"""The HTTP side in-process over real sockets: routes, basic auth, SSE updates, metrics;
and the command line's refusals (non-loopback bind without users, bad files)."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from roost.dashboard.fleet import Fleet
from roost.dashboard.hub import Hub
from roost.dashboard.server import Dashboard
from roost.security.passwd import PasswordFile

T0 = 1_700_000_000.0
WAIT = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(clock: Clock) -> Hub:
    return Hub(Fleet(stale_after=60, inventory=["pi-9"], site="lab"), clock)


def serve(hub: Hub, auth: PasswordFile | None = None) -> Iterator[Dashboard]:
    server = Dashboard(("127.0.0.1", 0), hub, auth)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.close()
    thread.join(WAIT)


@pytest.fixture
def server(hub: Hub) -> Iterator[Dashboard]:
    yield from serve(hub)


def request(server: Dashboard, path: str, headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=WAIT)
    try:
        conn.request("GET", path, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        conn.close()


def feed(hub: Hub) -> None:
    hub.fold("roost/lab/pi-1/status", json.dumps(
        {"state": "online", "ts": T0, "version": "0.1.0", "queue_depth": 5,
         "dropped": 2}).encode(), False)
    hub.fold("roost/lab/pi-1/telemetry/cpu_temp", b'{"ts": 1700000000, "seq": 1, "value": 47}',
             False)
    hub.fold("roost/lab/pi-2/telemetry/load", b"\x00garbage", False)
    hub.fold_sys("b1:1883", "$SYS/broker/clients/connected", b"3")


def test_page_assets_and_security_headers(server: Dashboard) -> None:
    for path, kind in (("/", "text/html"), ("/dash.js", "text/javascript"),
                       ("/dash.css", "text/css")):
        status, headers, body = request(server, path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert headers["X-Content-Type-Options"] == "nosniff"
    script = request(server, "/dash.js")[2]
    assert b".innerHTML" not in script and b"HTML(" not in script  # fleet text is never markup
    assert request(server, "/nope")[0] == 404
    assert request(server, "/healthz")[:3:2] == (200, b"ok\n")


def test_api_fleet_snapshot(server: Dashboard, hub: Hub) -> None:
    feed(hub)
    status, headers, body = request(server, "/api/fleet")
    view = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    pis = {p["client_id"]: p for p in view["pis"]}
    assert (pis["pi-1"]["state"], pis["pi-2"]["state"], pis["pi-9"]["state"]) == (
        "online", "never seen", "never seen")
    assert pis["pi-2"]["metrics"]["load"]["unreadable"]
    assert view["brokers"][0]["connections"] == 3


def test_metrics_exposition(server: Dashboard, hub: Hub, clock: Clock) -> None:
    feed(hub)
    clock.now = T0 + 61  # pi-1 goes stale
    status, headers, body = request(server, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, s.labels.get("pi")): s.value
               for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}
    assert samples[("roost_fleet_pi_online", "pi-1")] == 0
    assert samples[("roost_fleet_pi_online", "pi-9")] == 0  # inventory, never seen
    assert samples[("roost_fleet_pi_last_seen_timestamp_seconds", "pi-1")] == T0
    assert ("roost_fleet_pi_last_seen_timestamp_seconds", "pi-9") not in samples
    assert samples[("roost_fleet_pi_queue_depth", "pi-1")] == 5
    assert samples[("roost_fleet_pi_queue_dropped_total", "pi-1")] == 2
    assert samples[("roost_fleet_broker_connections", None)] == 3
    clock.now = T0 + 1
    assert b'roost_fleet_pi_online{pi="pi-1",site="lab"} 1.0' in request(server, "/metrics")[2]


def test_basic_auth_guards_everything_but_healthz(hub: Hub) -> None:
    users = PasswordFile()
    users.set("ops", "s3cret")
    for server in serve(hub, users):
        def auth(user: str, password: str) -> dict[str, str]:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            return {"Authorization": f"Basic {token}"}

        status, headers, _ = request(server, "/api/fleet")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic ")
        for bad in (auth("ops", "wrong"), auth("nobody", "s3cret"),
                    {"Authorization": "Basic %%%"}, {"Authorization": "Bearer x"}):
            assert request(server, "/events", bad)[0] == 401
        assert request(server, "/healthz")[0] == 200
        assert request(server, "/api/fleet", auth("ops", "s3cret"))[0] == 200
        assert request(server, "/metrics", auth("ops", "s3cret"))[0] == 200


def read_event(reply: http.client.HTTPResponse) -> dict[str, Any]:
    """The next `data:` event; heartbeats (comments) are skipped."""
    while True:
        line = reply.readline()
        assert line, "event stream closed"
        if line.startswith(b"data: "):
            event: dict[str, Any] = json.loads(line[6:])
            return event


def test_events_send_everything_first_then_only_what_changed(
        server: Dashboard, hub: Hub, clock: Clock) -> None:
    feed(hub)
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=WAIT)
    try:
        conn.request("GET", "/events")
        reply = conn.getresponse()
        assert reply.getheader("Content-Type") == "text/event-stream"
        first = read_event(reply)
        assert first["full"] is True
        assert {p["client_id"] for p in first["pis"]} == {"pi-1", "pi-2", "pi-9"}
        hub.fold("roost/lab/pi-3/status", b'{"state": "online", "ts": 1700000000}', False)
        update = read_event(reply)
        assert update["full"] is False
        changed = {p["client_id"] for p in update["pis"]}
        assert "pi-3" in changed and "pi-1" not in changed
        assert ["lab", "pi-1"] in update["keys"]
        clock.now = T0 + 61  # no message at all: pi-1 and pi-3 go stale, the page is told
        stale = read_event(reply)
        assert {p["client_id"]: p["state"] for p in stale["pis"]} == {
            "pi-1": "offline", "pi-3": "offline", "pi-9": "never seen"}
    finally:
        conn.close()


def serve_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "roost", "fleet", "serve",
                           "--broker", "127.0.0.1:1", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_refuses_a_public_bind_without_users_and_bad_files(tmp_path: Path) -> None:
    done = serve_cli("--bind", "0.0.0.0:0")
    assert done.returncode == 2 and "--auth-file" in done.stderr
    bad = tmp_path / "users"
    bad.write_text("ops:plaintext\n")
    done = serve_cli("--bind", "0.0.0.0:0", "--auth-file", str(bad))
    assert done.returncode == 2 and f"{bad}:1" in done.stderr
    done = serve_cli("--bind", "nonsense")
    assert done.returncode == 2 and "HOST:PORT" in done.stderr
    done = serve_cli("--password-file", str(tmp_path / "missing"))
    assert done.returncode == 2 and "--password-file" in done.stderr
    done = serve_cli("--broker", "127.0.0.1:2", "--client-id", "fleet:mon-1")
    assert done.returncode == 2 and "one --broker" in done.stderr
