"""Driving headless Chromium (Debian `chromium`) over the DevTools protocol: pages in separate browser
contexts (separate cookie jars: two annotators at once), navigation, script evaluation and real key
presses. Flags as in chromium.py, but 127.0.0.1 resolves (every other host still fails)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chromium import FLAGS, chromium
from websockets.sync.client import ClientConnection, connect

#: chromium.py's flags, without virtual time (pages wait for a real server) and with loopback reachable
_FLAGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" if f.startswith("--host-resolver-rules") else f
    for f in FLAGS
    if not f.startswith("--virtual-time-budget")
]


class Browser:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def page(self) -> Page:
        """A new tab in its own browser context (its own cookies)."""
        ctx = self.send("Target.createBrowserContext")["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank", "browserContextId": ctx})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, session)


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def eval(self, expression: str) -> Any:
        out = self.browser.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session
        )
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def wait(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy (the page may be between loads)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(f"document.readyState === 'complete' && ({expression})")
            except RuntimeError:
                value = None
            if value not in (None, False, "", 0):  # a DOM node comes back as {}
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {expression}; page: {self.text()[:500]}")
            time.sleep(0.05)

    def goto(self, url: str) -> None:
        self.browser.send("Page.navigate", {"url": url}, self.session)
        self.wait(f"location.href === {json.dumps(url)}")

    def text(self) -> str:
        try:
            return str(self.eval("document.body ? document.body.innerText : ''"))
        except RuntimeError:
            return ""

    def press(self, key: str) -> None:
        """A real key press (keydown + keyup) on the focused page."""
        code = f"Digit{key}" if key.isdigit() else f"Key{key.upper()}"
        vk = ord(key.upper())
        for kind in ("keyDown", "keyUp"):
            params = {"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk}
            if kind == "keyDown":
                params["text"] = key
            self.browser.send("Input.dispatchKeyEvent", params, self.session)


@contextmanager
def browser() -> Iterator[Browser]:
    # Chromium's helper processes (renderers, GPU, crashpad) may still write to the profile for a
    # moment after the browser process dies: the whole process group is killed, and a profile
    # folder that cannot be removed at once is left to the OS's temp cleaning
    with tempfile.TemporaryDirectory(prefix="prefmill-cdp-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [chromium(), *_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chromium did not start its DevTools endpoint")
                time.sleep(0.1)
            port, path = port_file.read_text().splitlines()[:2]
            with connect(f"ws://127.0.0.1:{port}{path}", max_size=None) as ws:
                yield Browser(ws)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
