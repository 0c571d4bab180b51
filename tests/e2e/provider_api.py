"""A local stand-in for a telephony provider's REST API (Twilio, Telnyx, Vonage), over HTTPS
with a throwaway CA (certs.py), for the cloud tests.

It serves recordings the way the providers do (a GET of the recording's URL with the account's
credentials: Twilio basic auth `AccountSid:AuthToken` on `.../Recordings/RE....wav`, Telnyx and
Vonage a bearer token), accepts DELETEs of the recordings it holds (204, then 404), refuses wrong
credentials (401) and records every request (method, path, Authorization) for the assertions."""
from __future__ import annotations

import http.server
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import certs
from peers import LOOPBACK


@dataclass
class Seen:
    method: str
    path: str
    auth: str | None
    authorized: bool  # what auth_check said


def resource(path: str) -> str:
    """The resource a request path names: without the query and the format extension."""
    p = path.split("?", 1)[0]
    for ext in (".wav", ".json", ".mp3"):
        if p.endswith(ext):
            return p[: -len(ext)]
    return p


class ProviderApi:
    def __init__(self, workdir: Path, auth_check, tls: bool = True, host: str = LOOPBACK,
                 cert: certs.Certs | None = None):
        """auth_check(authorization_header) -> bool decides who may read and delete; host is a
        loopback address (the test certificate names 127.0.0.1 and 127.0.0.2); cert reuses
        another stand-in's certificate (the same test CA) instead of making one."""
        assert host.startswith("127."), host
        self.recordings: dict[str, bytes] = {}  # path without extension -> WAV
        self.deleted: set[str] = set()
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        self.auth_check = auth_check
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, code: int, body: bytes = b"", ctype: str = "application/json"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def _key(self) -> str:
                return resource(self.path)

            def do_GET(self):  # noqa: N802
                auth = self.headers.get("Authorization")
                ok = outer.auth_check(auth)
                with outer.lock:
                    outer.requests.append(Seen("GET", self.path, auth, ok))
                if not ok:
                    return self._reply(401, b'{"message":"Authenticate"}')
                with outer.lock:
                    wav = outer.recordings.get(self._key())
                    gone = self._key() in outer.deleted
                if wav is None or gone:
                    return self._reply(404, b'{"message":"not found"}')
                self._reply(200, wav, "audio/x-wav")

            def do_DELETE(self):  # noqa: N802
                auth = self.headers.get("Authorization")
                ok = outer.auth_check(auth)
                with outer.lock:
                    outer.requests.append(Seen("DELETE", self.path, auth, ok))
                if not ok:
                    return self._reply(401, b'{"message":"Authenticate"}')
                with outer.lock:
                    key = self._key()
                    known = key in outer.deletable and key not in outer.deleted
                    if known:
                        outer.deleted.add(key)
                self._reply(204 if known else 404)

            def log_message(self, *a):
                pass

        self.deletable: set[str] = set()
        self.httpd = http.server.ThreadingHTTPServer((host, 0), H)
        self.httpd.daemon_threads = True
        self.ca: Path | None = None
        scheme = "http"
        if tls:
            c = cert or certs.make(workdir / "api-certs", "api")
            self.cert = c
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(c.cert, c.key)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.ca = c.ca
            scheme = "https"
        self.base = f"{scheme}://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add_recording(self, path: str, wav: bytes, delete_path: str | None = None) -> str:
        """Serves wav at base+path (with or without an extension); DELETE of delete_path (default
        the same path) removes it. Returns the full URL without extension."""
        with self.lock:
            self.recordings[resource(path)] = wav
            self.deletable.add(resource(delete_path or path))
        return self.base + path

    def seen(self, method: str, path_prefix: str) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def wait_seen(self, method: str, path_prefix: str, timeout: float = 10.0) -> list[Seen]:
        deadline = time.monotonic() + timeout
        got = self.seen(method, path_prefix)
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
            got = self.seen(method, path_prefix)
        return got

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
