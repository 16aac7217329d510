"""Drive a real headless Chromium over the DevTools protocol, through a pipe (no extra library).

Why a pipe: ``--remote-debugging-pipe`` makes Chromium read protocol commands from fd 3 and write
answers to fd 4 as NUL-terminated JSON, so a test can load a page, evaluate JavaScript after the
page's own scripts ran (pytest-html draws its table in JS), read computed styles, watch every
network request and take a screenshot, with nothing but the standard library.

Runs Debian's ``chromium`` (installed by .ci/run) headless; as root it needs --no-sandbox.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe",
]


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def can_unshare_network() -> bool:
    """True when this process may start a child in a new, empty network namespace (root, no seccomp ban)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        return subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class BrowserError(RuntimeError):
    pass


OFFLINE_FLAGS = ["--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]


class Browser:
    """One headless Chromium with one page.

    ``offline=True`` starts it with no network: in an empty network namespace (``unshare -n``) where
    this process may create one, else with every host unresolvable and a dead proxy. ``offline_by``
    says which.
    """

    def __init__(self, chromium: str, *, offline: bool = False, timeout: float = 30.0,
                 width: int = 1400, height: int = 1000) -> None:
        self.timeout = timeout
        self.events: list[dict] = []
        self._next_id = 0
        self._buf = b""
        self._profile = tempfile.mkdtemp(prefix="labcheck-chromium-")
        argv = [chromium, *FLAGS, f"--user-data-dir={self._profile}", f"--window-size={width},{height}",
                "about:blank"]
        self.offline_by = ""
        if offline and can_unshare_network():
            argv = ["unshare", "-n", *argv]
            self.offline_by = "network namespace"
        elif offline:
            argv[1:1] = OFFLINE_FLAGS
            self.offline_by = "unresolvable hosts, dead proxy"
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def wire_fds() -> None:  # in the child: fd 3 = commands in, fd 4 = answers out
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the browser; closed in close()
        self.proc = subprocess.Popen(argv, pass_fds=(3, 4), preexec_fn=wire_fds,  # noqa: PLW1509
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        os.close(cmd_r)
        os.close(res_w)
        try:
            page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
            self.session = self.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})[
                "sessionId"]
            for domain in ("Page", "Network", "Runtime"):
                self.call(f"{domain}.enable", session=self.session)
            self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                             "deviceScaleFactor": 1, "mobile": False},
                      session=self.session)
        except Exception:
            self.close()
            raise

    # --- protocol -----------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise BrowserError(f"no answer from Chromium within {self.timeout:g}s; its log:\n{self.log()}")
            chunk = os.read(self._res_r, 1 << 16)
            if not chunk:
                raise BrowserError(f"Chromium exited (rc={self.proc.poll()}); its log:\n{self.log()}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        msg = json.loads(raw)
        if "method" in msg:
            self.events.append(msg)
        return msg

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def wait_event(self, method: str) -> dict:
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._read_message(deadline)
            if msg.get("method") == method:
                return msg

    # --- page ---------------------------------------------------------------------------------------
    def open(self, path: Path) -> None:
        """Load a local file and wait until its load event (pytest-html has drawn the table by then)."""
        self.events.clear()
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=self.session)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-compatible values only)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requested_urls(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.events
                if ev.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session=self.session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def log(self) -> str:
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").splitlines()
        return "\n".join(line for line in lines if "dbus" not in line)[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrowserError, OSError):
                self.call("Browser.close")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for fd in (self._cmd_w, self._res_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
