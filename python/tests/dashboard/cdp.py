"""Debian's headless Chromium driven over the DevTools protocol, with a small stdlib
WebSocket client (RFC 6455, client side: masked text frames out, text frames in)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .browsers import WAIT, Browser, binary

CHROMIUM = binary("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0"]


class WebSocket:
    def __init__(self, url: str, timeout: float = WAIT) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "DevTools closed the connection during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head.decode(errors="replace")

    def send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        size = len(data)
        if size < 126:
            head = struct.pack("!BB", 0x81, 0x80 | size)
        elif size < 1 << 16:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self) -> str:
        """The next whole text message (continuation frames joined)."""
        parts: list[bytes] = []
        while True:
            first, second = self._exact(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._exact(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._exact(8))[0]
            payload = self._exact(size)
            opcode = first & 0x0F
            assert opcode != 0x8, "DevTools closed the connection"
            if opcode in (0x0, 0x1):
                parts.append(payload)
                if first & 0x80:
                    return b"".join(parts).decode()

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "DevTools connection closed"
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        self.sock.close()


class Chromium(Browser):
    """Headless Chromium; `call` sends a DevTools command to its one page."""

    name = "chromium"

    def __init__(self, profile: Path) -> None:
        self.ids = 0
        super().__init__([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                         profile)

    def _connect(self) -> None:
        port = self.port_file("DevToolsActivePort", 2)[0]
        deadline = time.monotonic() + WAIT
        while True:  # the port is written before the first page is listed
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                        timeout=WAIT) as reply:
                pages = [t for t in json.load(reply) if t.get("type") == "page"]
            if pages:
                break
            assert time.monotonic() < deadline, "chromium lists no page"
            time.sleep(0.1)
        self.ws = WebSocket(str(pages[0]["webSocketDebuggerUrl"]))
        self.call("Page.enable")

    def _disconnect(self) -> None:
        if hasattr(self, "ws"):
            self.ws.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:  # events arrive in between; only our answer counts
            message = json.loads(self.ws.recv())
            if message.get("id") == self.ids:
                assert "error" not in message, f"{method}: {message['error']}"
                result: dict[str, Any] = message["result"]
                return result

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def size(self, width: int, height: int, mobile: bool = False) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)

    def _png(self, full_page: bool) -> bytes:
        data = self.call("Page.captureScreenshot", format="png",
                         captureBeyondViewport=full_page)["data"]
        return base64.b64decode(data)
