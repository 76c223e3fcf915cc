"""End to end in Debian's headless Chromium (DevTools) and Firefox ESR (Marionette), the same
assertions in both: real broker, real agents, recorded telemetry, `roost fleet serve` as a
process. The page lists the Pis, shows unreadable and never-seen ones, fits a phone's
width, and turns a Pi offline when its agent is killed (last will) without a reload.
Screenshots (desktop and phone size) go to $ROOST_ARTIFACTS/dashboard/BROWSER-*.png."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.harness import AgentProc, agent_toml

from .browsers import BINARIES, Browser, binary, open_browser
from .harness import ARTIFACTS, broker, dashboard, publish, recorded, wait_fleet

pytestmark = pytest.mark.interop

CARD = "document.querySelector('[data-pi=\"{}\"]')"
DESKTOP, PHONE = (1280, 900), (390, 844)


@pytest.fixture(params=sorted(BINARIES))
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    name: str = request.param
    if binary(name) is None:
        exe, package = BINARIES[name]
        pytest.skip(f"{exe} not installed (apt-get install {package})")
    b = open_browser(name, tmp_path / name)
    try:
        yield b
    finally:
        b.close()


def state_of(b: Browser, client: str) -> str | None:
    card = CARD.format(client)
    value = b.evaluate(f"{card} && {card}.dataset.state")
    return str(value) if value else None


def shoot(b: Browser, name: str) -> None:
    for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
        b.size(width, height, mobile=label == "phone")
        time.sleep(0.2)  # one frame for layout; the shot itself is what is checked
        assert b.evaluate("document.documentElement.scrollWidth") <= width, (
            f"{label}: the page is wider than the {width} px viewport")
        shot = b.screenshot(ARTIFACTS / f"{b.name}-{name}-{label}.png")
        assert shot.stat().st_size > 1000
    b.screenshot(ARTIFACTS / f"{b.name}-{name}-phone-full.png", full_page=True)


@pytest.mark.parametrize("kind", ["mosquitto", "roost"])
def test_page_lists_pis_and_shows_a_killed_agent_offline(kind: str, tmp_path: Path,
                                                         browser: Browser) -> None:
    agents: list[AgentProc] = []
    inventory = tmp_path / "inventory"
    inventory.write_text("pi-1\npi-2\npi-rec\npi-ghost\n")
    with broker(kind, tmp_path / "broker") as b, dashboard(
            b.port, "--site", "lab", "--inventory-file", str(inventory),
            "--stale-after", "120") as url:
        try:
            for name in ("pi-1", "pi-2"):
                agents.append(AgentProc(tmp_path, agent_toml(
                    tmp_path / name, [b.port], client_id=name, collectors="load = 0.2")))
            # Both listed is not enough: the inventory lists them before the reader has
            # subscribed. Online means it has, so the recording below is not published early.
            wait_fleet(url, lambda p: all(p.get(n, {}).get("state") == "online"
                                          for n in ("pi-1", "pi-2")), "both agents online")
            publish(b.port, recorded("lab", "pi-rec", time.time()))
            browser.navigate(url + "/")
            for name in ("pi-1", "pi-2"):
                browser.wait_for(f"{CARD.format(name)}?.dataset.state === 'online'",
                                 f"{name} online on the page")
            assert state_of(browser, "pi-ghost") == "never seen"
            rec = CARD.format("pi-rec")
            browser.wait_for(f"{rec}?.textContent.includes('unreadable')",
                             "pi-rec's garbled load shown as unreadable")
            assert browser.evaluate(f"{rec}.querySelectorAll('polyline').length") >= 1
            assert browser.evaluate("document.getElementById('n-online').textContent") in (
                "2", "3")
            assert browser.evaluate("document.getElementById('live').dataset.live") == "up"
            shoot(browser, f"{kind}-fleet")

            agents[1].stop(signal.SIGKILL)  # no goodbye: only the broker's last will tells
            browser.wait_for(f"{CARD.format('pi-2')}?.dataset.state === 'offline'",
                             "pi-2 offline after kill -9")
            badge = browser.evaluate(f"{CARD.format('pi-2')}.querySelector('.badge').textContent")
            assert badge == "offline (last will)"
            assert state_of(browser, "pi-1") == "online"
            shoot(browser, f"{kind}-pi-2-killed")
        finally:
            for proc in agents:
                proc.stop()
