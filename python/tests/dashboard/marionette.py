"""Debian's headless Firefox ESR driven over Marionette, the remote protocol built into
Firefox (it has no CDP any more), with a small stdlib client. The wire: TCP, each message
`<length>:<json>`; the server greets first ({"marionetteProtocol": 3, ...}); commands are
`[0, id, name, params]`, replies `[1, id, error, result]`. With `marionette.port` 0 the
kernel picks the port and Firefox writes it to MarionetteActivePort in the profile
(Firefox 95 on; the pref is documented as "0: the system allocates a free port")."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

from .browsers import START_WAIT, WAIT, Browser, binary

FIREFOX = binary("firefox") or "/usr/bin/firefox-esr"
PREFS: dict[str, object] = {
    "marionette.port": 0,
    # Test traffic stays on loopback: anything else goes to a proxy that is not there
    # (Firefox never proxies 127.0.0.1 itself), on top of Marionette's recommended prefs
    # that already turn updates, telemetry and safe browsing off.
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "ui.useOverlayScrollbars": 1,  # as on a phone: the page gets the viewport's full width
}
# --remote-allow-system-access: the chrome context, needed once to let the window go
# narrower than the toolbar's minimum width (500 px), for the phone-sized viewport.
FLAGS = ["--headless", "--marionette", "--remote-allow-system-access", "--no-remote"]


class Firefox(Browser):
    """Headless Firefox with one Marionette session; `call` sends one command."""

    name = "firefox"

    def __init__(self, profile: Path) -> None:
        self.ids, self.buffer, self.unclamped = 0, b"", False
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "user.js").write_text("".join(
            f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items()))
        super().__init__([FIREFOX, *FLAGS, "--profile", str(profile), "about:blank"], profile)

    def _connect(self) -> None:
        port = int(self.port_file("MarionetteActivePort", 1)[0])
        self.sock = socket.create_connection(("127.0.0.1", port), START_WAIT)
        hello = self._read()
        assert hello.get("marionetteProtocol") == 3, f"not Marionette 3: {hello}"
        timeouts = {"pageLoad": int(WAIT * 1000), "script": int(WAIT * 1000)}
        self.call("WebDriver:NewSession", capabilities={"alwaysMatch": {"timeouts": timeouts}})
        self.sock.settimeout(WAIT + 10)  # a script may take WAIT before Firefox answers

    def _disconnect(self) -> None:
        if hasattr(self, "sock"):
            self.sock.close()

    def _read(self) -> Any:
        while b":" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b":")
        assert head.isdigit(), f"bad Marionette frame {head[:40]!r}"
        size = int(head)
        while len(self.buffer) < size:
            self._fill()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return json.loads(body)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"Marionette closed the connection: {self.output()[-2000:]}"
        self.buffer += chunk

    def call(self, command: str, **params: Any) -> Any:
        self.ids += 1
        data = json.dumps([0, self.ids, command, params]).encode()
        self.sock.sendall(b"%d:%s" % (len(data), data))
        while True:
            message = self._read()
            if isinstance(message, list) and message[:2] == [1, self.ids]:
                error, result = message[2], message[3]
                assert error is None, f"{command}: {error['error']}: {error['message']}"
                return result

    def navigate(self, url: str) -> None:
        self.call("WebDriver:Navigate", url=url)  # returns once the page has loaded

    def evaluate(self, expression: str) -> Any:
        return self.call("WebDriver:ExecuteScript", script=f"return ({expression});",
                         args=[])["value"]

    def size(self, width: int, height: int, mobile: bool = False) -> None:
        """`mobile` (Chromium's touch and meta-viewport emulation) has no Marionette
        counterpart; the viewport's CSS width, what the page's layout sees, is the same."""
        if not self.unclamped:
            self.call("Marionette:SetContext", value="chrome")
            try:
                self.call("WebDriver:ExecuteScript", args=[],
                          script="document.documentElement.style.minWidth = '0px';")
            finally:
                self.call("Marionette:SetContext", value="content")
            self.unclamped = True
        extra_w, extra_h = self.evaluate("[window.outerWidth - window.innerWidth, "
                                         "window.outerHeight - window.innerHeight]")
        self.call("WebDriver:SetWindowRect", width=width + extra_w, height=height + extra_h)
        inner = self.evaluate("[window.innerWidth, window.innerHeight]")
        assert inner == [width, height], f"firefox viewport {inner}, not {width}x{height}"

    def _png(self, full_page: bool) -> bytes:
        data = self.call("WebDriver:TakeScreenshot", full=full_page, hash=False)["value"]
        return base64.b64decode(data)
