"""The dashboard's HTTP side (stdlib only): the page, a JSON snapshot, server-sent events,
Prometheus metrics and a health check. With a password file every path but `/healthz`
asks for HTTP basic auth.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from roost.dashboard.events import Stream
from roost.dashboard.hub import Hub
from roost.dashboard.metrics import exposition
from roost.security.passwd import PasswordFile

log = logging.getLogger(__name__)
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/dash.js": ("dash.js", "text/javascript; charset=utf-8"),
          "/dash.css": ("dash.css", "text/css; charset=utf-8")}
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


class Dashboard(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], hub: Hub, auth: PasswordFile | None,
                 family: socket.AddressFamily = socket.AF_INET) -> None:
        self.address_family = family
        super().__init__(address, Handler)
        self.hub, self.auth = hub, auth
        self.stopping = threading.Event()

    def close(self) -> None:
        """Stop from another thread than the one in serve_forever()."""
        self.stopping.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: Dashboard
    server_version = "roost-dashboard"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif not self._authorized():
            self._send(401, b"authentication required\n", "text/plain; charset=utf-8",
                       {"WWW-Authenticate": 'Basic realm="roost fleet", charset="UTF-8"'})
        elif path in STATIC:
            name, kind = STATIC[path]
            page = resources.files("roost.dashboard").joinpath("static", name).read_bytes()
            self._send(200, page, kind)
        elif path == "/api/fleet":
            view = self.server.hub.read(lambda fleet, now: fleet.view(now))
            self._send(200, json.dumps(view).encode(), "application/json")
        elif path == "/metrics":
            self._send(200, exposition(self.server.hub), CONTENT_TYPE_LATEST)
        elif path == "/events":
            self._events()
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _authorized(self) -> bool:
        auth = self.server.auth
        if auth is None:
            return True
        kind, _, encoded = self.headers.get("Authorization", "").partition(" ")
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
            name = user.decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return kind.lower() == "basic" and bool(sep) and auth.verify(name, password)

    def _send(self, code: int, body: bytes, kind: str, extra: dict[str, str] | None = None
              ) -> None:
        self.send_response(code)
        for key, value in {**HEADERS, "Content-Type": kind, **(extra or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        self.send_response(200)
        for key, value in {**HEADERS, "Content-Type": "text/event-stream"}.items():
            self.send_header(key, value)
        self.end_headers()
        stream = Stream(self.server.hub)
        try:
            while not self.server.stopping.is_set():
                chunk = stream.next(timeout=1.0)
                if chunk:
                    self.wfile.write(chunk)
                    self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the page went away

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
