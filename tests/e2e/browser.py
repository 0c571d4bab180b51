"""A headless Chromium for the browser tests, driven over the W3C WebDriver protocol.

Debian's `chromium` and `chromium-driver` packages; chromedriver listens on a free loopback
port and this module speaks its HTTP/JSON protocol with the standard library alone.

    with Browser() as b:                 # Browser(javascript=False) for the no-JS page
        b.get("http://127.0.0.1:8080/c/demo")
        el = b.find("#count")            # CSS selector; waits until it appears
        el.text; el.click(); el.send_keys("x"); el.attr("href")
        b.wait_for(lambda: b.find("#count").text == "2", timeout=20)
        b.run("return document.title")   # JavaScript in the page
        b.keys("v")                      # key presses to the focused element / page
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from peers import free_port

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def available() -> bool:
    return bool(shutil.which("chromedriver") and shutil.which("chromium"))


class WebDriverError(RuntimeError):
    pass


class Element:
    def __init__(self, browser: "Browser", eid: str):
        self.b = browser
        self.id = eid

    def _p(self, suffix: str) -> str:
        return f"/session/{self.b.session}/element/{self.id}{suffix}"

    @property
    def text(self) -> str:
        return self.b._cmd("GET", self._p("/text"))

    def attr(self, name: str):
        return self.b._cmd("GET", self._p(f"/attribute/{name}"))

    def prop(self, name: str):
        return self.b._cmd("GET", self._p(f"/property/{name}"))

    def click(self) -> None:
        self.b._cmd("POST", self._p("/click"), {})

    def clear(self) -> None:
        self.b._cmd("POST", self._p("/clear"), {})

    def send_keys(self, text: str) -> None:
        self.b._cmd("POST", self._p("/value"), {"text": text})

    def find(self, css: str) -> "Element":
        r = self.b._cmd("POST", self._p("/element"), {"using": "css selector", "value": css})
        return Element(self.b, r[ELEMENT])


class Browser:
    def __init__(self, *, javascript: bool = True, width: int = 1280, height: int = 900):
        self.port = free_port(udp=False, tcp=True)
        self.profile = tempfile.mkdtemp(prefix="belteken-chromium-")
        self.proc = subprocess.Popen(
            ["chromedriver", f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                self._raw("GET", "/status")
                break
            except (OSError, WebDriverError):
                if time.monotonic() > deadline:
                    self.proc.kill()
                    raise
                time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
                "--no-first-run", "--disable-extensions"]
        opts: dict = {"args": args, "binary": shutil.which("chromium")}
        if not javascript:
            opts["prefs"] = {"profile.managed_default_content_settings.javascript": 2}
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": opts,
            "timeouts": {"implicit": 0, "pageLoad": 30000, "script": 30000}}}}
        r = self._raw("POST", "/session", caps)
        self.session = r["value"]["sessionId"]

    # -- protocol --------------------------------------------------------------------------
    def _raw(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                v = json.loads(e.read()).get("value", {})
                raise WebDriverError(f"{v.get('error')}: {v.get('message', '')[:300]}") from None
            except ValueError:
                raise WebDriverError(f"HTTP {e.code}") from None

    def _cmd(self, method: str, path: str, body: dict | None = None):
        return self._raw(method, path, body).get("value")

    def _s(self, suffix: str) -> str:
        return f"/session/{self.session}{suffix}"

    # -- navigation and queries ------------------------------------------------------------
    def get(self, url: str) -> None:
        self._cmd("POST", self._s("/url"), {"url": url})

    @property
    def url(self) -> str:
        return self._cmd("GET", self._s("/url"))

    @property
    def title(self) -> str:
        return self._cmd("GET", self._s("/title"))

    def source(self) -> str:
        return self._cmd("GET", self._s("/source"))

    def find(self, css: str, timeout: float = 10) -> Element:
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = self._cmd("POST", self._s("/element"), {"using": "css selector", "value": css})
                return Element(self, r[ELEMENT])
            except WebDriverError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def find_all(self, css: str) -> list[Element]:
        r = self._cmd("POST", self._s("/elements"), {"using": "css selector", "value": css})
        return [Element(self, e[ELEMENT]) for e in r]

    def run(self, script: str, *args):
        return self._cmd("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def keys(self, text: str) -> None:
        """Types text as key presses into whatever has focus (the page's keyboard handlers
        see real keydown/keyup events)."""
        actions = []
        for ch in text:
            actions += [{"type": "keyDown", "value": ch}, {"type": "keyUp", "value": ch}]
        self._cmd("POST", self._s("/actions"),
                  {"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})
        self._cmd("DELETE", self._s("/actions"))

    def wait_for(self, predicate, timeout: float = 20, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            try:
                v = predicate()
                if v:
                    return v
            except WebDriverError as e:
                last_err = e
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}" + (f" ({last_err})" if last_err else ""))

    def cookies(self) -> list[dict]:
        return self._cmd("GET", self._s("/cookie"))

    def close(self) -> None:
        try:
            self._raw("DELETE", self._s(""))
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
