"""A headless Chromium driven over the DevTools protocol through a pipe (no port, no network, no
extra package): open a local page, collect console errors and requests, evaluate scripts, take a
screenshot. Used by the report's browser tests; :func:`find_chromium` is None when none is installed.

Chromium's ``--remote-debugging-pipe`` reads NUL-terminated JSON commands from fd 3 and writes
replies and events to fd 4.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--no-default-browser-check",
    "--remote-debugging-pipe",
]

#: the child: moves the pipe ends it was given to fd 3 and fd 4, then becomes chromium
_AS_FD_3_AND_4 = """
import fcntl, os, sys
r, w = (int(a) for a in sys.argv[1:3])
hi_r, hi_w = fcntl.fcntl(r, fcntl.F_DUPFD, 100), fcntl.fcntl(w, fcntl.F_DUPFD, 100)
os.dup2(hi_r, 3); os.dup2(hi_w, 4)
for fd in {r, w, hi_r, hi_w} - {3, 4}:
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


def find_chromium() -> str | None:
    """The Chromium executable (``LMACZS_CHROMIUM`` or chromium / chromium-browser on PATH), or None."""
    for name in (os.environ.get("LMACZS_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page; ``with Browser(exe) as b: b.open(url)``."""

    def __init__(self, exe: str, width: int = 1280, height: int = 900, timeout: float = 60.0) -> None:
        self.exe, self.width, self.height, self.timeout = exe, width, height, timeout
        self.events: list[dict] = []
        self._replies: queue.Queue[dict] = queue.Queue()
        self._next_id = 0
        self._session: str | None = None

    # -- process and pipe ---------------------------------------------------------------
    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="lmaczs-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        self.proc = subprocess.Popen(
            [sys.executable, "-c", _AS_FD_3_AND_4, str(to_child_r), str(from_child_w), self.exe, *FLAGS,
             f"--user-data-dir={self._profile.name}", f"--window-size={self.width},{self.height}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_child_r, from_child_w),
        )
        os.close(to_child_r)
        os.close(from_child_w)
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                  session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call("Browser.close", session=False, wait=False)
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a browser that does not close is killed
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._to_child)
            self._profile.cleanup()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._replies.put({"closed": True})
                os.close(self._from_child)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                (self._replies.put(msg) if "id" in msg else self.events.append(msg))

    # -- the protocol ---------------------------------------------------------------------
    def call(self, method: str, params: dict | None = None, session: bool = True,
             wait: bool = True) -> dict:
        """Send one DevTools command and return its result (raises on a protocol error)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self._session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        if not wait:
            return {}
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                reply = self._replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BrowserError(f"{method}: no reply in {self.timeout:.0f} s") from None
            if reply.get("closed"):
                raise BrowserError(f"{method}: chromium exited")
            if reply["id"] == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_for(lambda e: e.get("method") == "Page.loadEventFired", "the page's load event")

    def wait_for(self, pred, what: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for e in list(self.events):
                if pred(e):
                    return e
            time.sleep(0.05)
        raise BrowserError(f"waited {self.timeout:.0f} s for {what}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited); page exceptions raise."""
        r = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                           "returnByValue": True})
        if "exceptionDetails" in r:
            raise BrowserError(f"script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self) -> bytes:
        """PNG of the viewport."""
        return base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])

    # -- what happened --------------------------------------------------------------------
    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads since the page was opened."""
        found = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description")))
                                                    for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                found.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                found.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                found.append(f"load failed: {p.get('errorText')}")
        return found

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]
