"""Runs the real belteken binary for the end-to-end tests.

`belteken serve --data-dir TMP/data --sip-listen 127.0.0.1:P --http-listen 127.0.0.1:H
 --config TMP/config.toml`, stdout+stderr to TMP/server.log, ready when GET /healthz answers,
stopped with SIGTERM. The binary is $BELTEKEN_BIN (default target/release/belteken).

Fixtures: `server_factory` (session): start(name, config=..., files={...}) -> Server; every
server started is also in `Server.all` so the privacy test can read every log and database."""
from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from peers import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[2]


def binary() -> Path:
    p = Path(os.environ.get("BELTEKEN_BIN", "target/release/belteken"))
    return p if p.is_absolute() else REPO / p


def campaign_toml(*, slug="demo", title="E2E test petition", language="en", ring_seconds=1,
                  record_max_seconds=10, silence_seconds=1, min_speech_ms=500,
                  prompts: dict | None = None, extra: str = "") -> str:
    """A config with one campaign; prompts = {"greeting": "greeting.wav", ...} relative to the
    config file, or None for the built-in demo audio."""
    s = f"""[[campaign]]
slug = "{slug}"
title = "{title}"
number = "+32 2 000 00 00"
default_region = "BE"
language = "{language}"
ring_seconds = {ring_seconds}
record_max_seconds = {record_max_seconds}
silence_seconds = {silence_seconds}
min_speech_ms = {min_speech_ms}
{extra}"""
    if prompts:
        s += "\n[campaign.prompts]\n" + "".join(f'{k} = "{v}"\n' for k, v in prompts.items())
    return s


class Server:
    all: list["Server"] = []

    def __init__(self, workdir: Path, config: str, files: dict[str, Path] | None = None,
                 env: dict | None = None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data = self.dir / "data"
        self.config = self.dir / "config.toml"
        self.config.write_text(config)
        for name, src in (files or {}).items():
            (self.dir / name).parent.mkdir(parents=True, exist_ok=True)
            (self.dir / name).write_bytes(Path(src).read_bytes())
        self.sip_port = free_port(udp=True, tcp=True)
        self.http_port = free_port(udp=False, tcp=True)
        self.log = self.dir / "server.log"
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.stop_seconds: float | None = None
        self.env = env
        Server.all.append(self)

    @property
    def db(self) -> Path:
        return self.data / "belteken.db"

    def uri(self, user: str = "demo") -> str:
        return f"sip:{user}@127.0.0.1:{self.sip_port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def launch(self) -> "Server":
        """Starts the process without waiting for it to be ready (see `start`)."""
        exe = binary()
        if not exe.exists():
            pytest.fail(f"server binary {exe} not found (set BELTEKEN_BIN or run cargo build --release)")
        cmd = [str(exe), "serve", "--data-dir", str(self.data),
               "--sip-listen", f"{LOOPBACK}:{self.sip_port}",
               "--http-listen", f"{LOOPBACK}:{self.http_port}",
               "--config", str(self.config)]
        env = dict(os.environ)
        env.update(self.env or {})
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.dir)
        return self

    def wait_exit(self, timeout: float) -> int | None:
        """Waits up to `timeout` for the process to exit by itself; its exit code, or None."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self.exit_code is None:
            self.exit_code = self.proc.returncode
            self._logf.close()
        return self.exit_code

    def start(self, ready_timeout: float = 30.0) -> "Server":
        self.launch()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._logf.close()
                pytest.fail(f"belteken exited with {self.proc.returncode} before /healthz answered:\n"
                            + self.log_text()[-4000:])
            try:
                status, body = self.get("/healthz", timeout=1)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"belteken did not answer /healthz within {ready_timeout} s:\n" + self.log_text()[-4000:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None or self.exit_code is not None:
            return self.exit_code
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.stop_seconds = time.monotonic() - t0
        self.exit_code = self.proc.returncode
        self._logf.close()
        return self.exit_code

    # -- HTTP -----------------------------------------------------------------------------------
    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        c = http.client.HTTPConnection(LOOPBACK, self.http_port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def get_json(self, path: str):
        status, body = self.get(path)
        return status, json.loads(body) if body else None

    def counts(self, slug: str = "demo") -> tuple[int, int]:
        status, js = self.get_json(f"/api/campaigns/{slug}")
        assert status == 200, (status, js)
        return js["signatures"], js["unverified"]

    def wait_counts(self, want: tuple[int, int], slug: str = "demo", timeout: float = 5.0) -> tuple[int, int]:
        """Polls the API until the counts equal want (or timeout); returns the last counts."""
        deadline = time.monotonic() + timeout
        got = self.counts(slug)
        while got != want and time.monotonic() < deadline:
            time.sleep(0.1)
            got = self.counts(slug)
        return got

    # -- database -------------------------------------------------------------------------------
    def query(self, sql: str, args=()) -> list[tuple]:
        """Reads the server's SQLite file. While the server runs, as one more reader beside it.
        Once it has exited, from a copy (with its WAL, if one was left), so that the harness
        never writes into the server's data directory: WAL recovery would rebuild `-shm`."""
        if self.alive():
            return self._query_file(self.db, sql, args)
        with tempfile.TemporaryDirectory() as d:
            copy = Path(d) / self.db.name
            for suffix in ("", "-wal"):
                src = Path(str(self.db) + suffix)
                if src.exists():
                    shutil.copyfile(src, str(copy) + suffix)
            return self._query_file(copy, sql, args)

    @staticmethod
    def _query_file(path, sql: str, args) -> list[tuple]:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def left_open(self) -> list[str]:
        """The SQLite side files (-wal, -shm) in the data directory: none after a clean exit."""
        return sorted(p.name for p in self.db.parent.glob(self.db.name + "-*"))

    def signatures(self, slug: str = "demo") -> list[dict]:
        rows = self.query(
            "SELECT s.id, s.caller_key, s.verified, s.channel, s.speech_ms, s.recording, s.created_at "
            "FROM signatures s JOIN campaigns c ON c.id = s.campaign_id WHERE c.slug = ? ORDER BY s.id",
            (slug,))
        keys = ["id", "caller_key", "verified", "channel", "speech_ms", "recording", "created_at"]
        return [dict(zip(keys, r)) for r in rows]


class SseClient:
    """Reads GET path as text/event-stream on a thread; events go to .events (a queue) as
    (event, data) with data parsed as JSON when it is JSON. Handles chunked encoding."""

    def __init__(self, port: int, path: str, timeout: float = 10.0):
        self.events: queue.Queue = queue.Queue()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self._stop = False
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.sock.recv(4096)
            if not d:
                raise ConnectionError("SSE: connection closed before headers: %r" % buf)
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        self.status = int(lines[0].split()[1])
        for l in lines[1:]:
            k, _, v = l.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._raw = rest
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        text = b""
        raw = self._raw
        self.sock.settimeout(0.5)
        while not self._stop:
            # decode what we have
            if self.chunked:
                while True:
                    nl = raw.find(b"\r\n")
                    if nl < 0:
                        break
                    try:
                        size = int(raw[:nl].split(b";")[0], 16)
                    except ValueError:
                        return
                    if len(raw) < nl + 2 + size + 2:
                        break
                    text += raw[nl + 2:nl + 2 + size]
                    raw = raw[nl + 2 + size + 2:]
                    if size == 0:
                        return
            else:
                text += raw
                raw = b""
            text = text.replace(b"\r\n", b"\n")
            while b"\n\n" in text:
                block, _, text = text.partition(b"\n\n")
                ev, data = "message", []
                for line in block.decode(errors="replace").split("\n"):
                    if line.startswith(":"):
                        continue
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "event":
                        ev = v
                    elif k == "data":
                        data.append(v)
                if not data:
                    continue
                d = "\n".join(data)
                try:
                    d = json.loads(d)
                except ValueError:
                    pass
                self.events.put((ev, d))
            try:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return
                raw += chunk
            except socket.timeout:
                continue
            except OSError:
                return

    def next(self, timeout: float) -> tuple[str, object] | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(timeout=2)


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    """start(name, config=TOML, files={name: path}) -> a started Server; all are stopped at the end."""
    started: list[Server] = []

    def start(name: str, config: str, files: dict[str, Path] | None = None, env: dict | None = None) -> Server:
        s = Server(tmp_path_factory.mktemp(name), config, files, env)
        started.append(s)
        return s.start()

    yield start
    for s in started:
        s.stop()
