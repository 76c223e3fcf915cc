"""Debian's headless Chromium driven over the DevTools protocol, with a small stdlib
WebSocket client (RFC 6455, client side: masked text frames out, text frames in)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from interop.brokers import Broker

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0"]
WAIT = 20.0


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


class Browser:
    """One headless Chromium with one page; `call` sends a DevTools command to that page."""

    def __init__(self) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="roost-chromium-"))
        self.log = (self.profile / "chromium.log").open("wb")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        self.ids = 0
        try:
            self.ws = WebSocket(self._page_url())
        except BaseException:
            self.close()
            raise

    def _page_url(self) -> str:
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + WAIT
        while True:
            assert self.proc.poll() is None, f"chromium exited: {self.output()[-2000:]}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            lines = active.read_text().split() if active.exists() else []
            if len(lines) == 2:
                with urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/list",
                                            timeout=WAIT) as reply:
                    pages = [t for t in json.load(reply) if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            time.sleep(0.1)

    def output(self) -> str:
        return (self.profile / "chromium.log").read_text(errors="replace")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:  # events arrive in between; only our answer counts
            message = json.loads(self.ws.recv())
            if message.get("id") == self.ids:
                assert "error" not in message, f"{method}: {message['error']}"
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def size(self, width: int, height: int, mobile: bool = False) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        data = self.call("Page.captureScreenshot", format="png",
                         captureBeyondViewport=full_page)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def wait_for(self, expression: str, what: str, timeout: float = WAIT) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {what}; last {value!r}"
            time.sleep(0.1)

    def close(self) -> None:
        if hasattr(self, "ws"):
            self.ws.close()
        Broker("chromium", 0, self.proc).stop()  # the same terminate, then kill
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
