"""What the browser tests need from a browser, whichever protocol drives it: the process in
a process group of its own with its profile in the test's directory, a page to drive
(navigate, evaluate, size, screenshot), bounded polling, and a teardown that always kills.
cdp.py (Chromium, DevTools) and marionette.py (Firefox, Marionette) fill in the protocol."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

WAIT = 20.0
START_WAIT = 60.0  # a browser's first start on a loaded 2-core box is slow
# binary, and the Debian package that provides it (lab/deps.sh installs both)
BINARIES = {"chromium": ("chromium", "chromium"), "firefox": ("firefox-esr", "firefox-esr")}


def binary(name: str) -> str | None:
    return shutil.which(BINARIES[name][0])


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it (helpers too)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


class Browser:
    """One headless browser process with one page. Subclasses connect in `_connect` and
    implement the page commands."""

    name = "browser"

    def __init__(self, argv: list[str], profile: Path) -> None:
        self.profile = profile
        profile.mkdir(parents=True, exist_ok=True)
        self._log_path = profile.parent / f"{self.name}.log"
        self.log = self._log_path.open("wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, start_new_session=True)
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError

    def navigate(self, url: str) -> None:
        raise NotImplementedError

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able values only)."""
        raise NotImplementedError

    def size(self, width: int, height: int, mobile: bool = False) -> None:
        """The page's viewport, in CSS pixels."""
        raise NotImplementedError

    def _png(self, full_page: bool) -> bytes:
        raise NotImplementedError

    def port_file(self, name: str, lines: int) -> list[str]:
        """The first lines of a file the browser writes into its profile once it listens."""
        path = self.profile / name
        deadline = time.monotonic() + START_WAIT
        while True:
            assert self.proc.poll() is None, f"{self.name} exited: {self.output()[-2000:]}"
            assert time.monotonic() < deadline, f"{self.name} did not write {name}"
            found = path.read_text().split() if path.exists() else []
            if len(found) >= lines:
                return found
            time.sleep(0.1)

    def output(self) -> str:
        return self._log_path.read_text(errors="replace")

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self._png(full_page))
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
        try:
            self._disconnect()
        except OSError:
            pass
        finally:
            kill_group(self.proc)
            self.log.close()


def open_browser(name: str, profile: Path) -> Browser:
    from .cdp import Chromium
    from .marionette import Firefox

    return Chromium(profile) if name == "chromium" else Firefox(profile)
