"""A panic ends one request or one call, never the server; a core part that stops makes the
server fail loudly (503 on /healthz, then a non-zero exit) instead of running deaf.

The panics are injected with BELTEKEN_FAULT (docs/operations.md): a request carrying the header
`X-Belteken-Fault: <marker>` panics where the fault says. Normal callers (pjsua2) run beside the
faulty ones and must not notice."""
from __future__ import annotations

import http.client
import re
import socket
import threading
import time

import pytest

import peers
from peers import LOOPBACK
from server import Server, campaign_toml

FAULTS = ("sip-request:req-boom,sip-call:call-boom,sip-media:media-boom,"
          "sip-dialog:dialog-boom,http-request:http-boom")
CALL_LIMIT_S = 40
# A grace of 5 s before the exit, plus the shutdown.
EXIT_WITHIN_S = 20


@pytest.fixture(scope="module")
def srv(server_factory, audio) -> Server:
    cfg = campaign_toml(prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"})
    return server_factory("isolation", cfg, files=audio.prompts, env={"BELTEKEN_FAULT": FAULTS})


def _show(srv: Server, *parts) -> str:
    out = [p.summary() if hasattr(p, "summary") else str(p) for p in parts]
    return "\n".join(out) + "\n--- server log (tail) ---\n" + srv.log_text()[-3000:]


def _fault(marker: str) -> list[str]:
    return ["X-Belteken-Fault: " + marker]


def _poll(what, timeout: float, every: float = 0.1):
    """Calls what() until it returns something true (bounded); returns the last value."""
    deadline = time.monotonic() + timeout
    got = what()
    while not got and time.monotonic() < deadline:
        time.sleep(every)
        got = what()
    return got


def _health(srv: Server):
    try:
        return srv.get_json("/healthz")
    except (OSError, ValueError):
        return None, None


def _idle(srv: Server) -> bool:
    status, js = _health(srv)
    return status == 200 and js["calls_in_progress"] == 0


def _metric(srv: Server, name: str) -> float:
    status, body = srv.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def _sign(srv: Server, audio, tmp_path, caller: str) -> peers.PjResult:
    return peers.pj_call(srv.uri(), caller=caller, seconds=CALL_LIMIT_S, play=audio.speak,
                         rec=tmp_path / f"heard-{caller[-3:]}.wav", log=tmp_path / f"pj-{caller[-3:]}.log")


class RawCall:
    """One call placed by hand over UDP: INVITE (with an SDP offer for a local socket), the
    2xx ACK, in-dialog requests, and the server's BYE, answered."""

    def __init__(self, srv: Server, extra: list[str] | None = None):
        self.raw = peers.RawSip(srv.sip_port)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((LOOPBACK, 0))
        offer = peers.sdp_offer(self.rtp.getsockname()[1], [(0, "PCMU/8000"), (101, "telephone-event/8000")])
        self.invite = self.raw.request("INVITE", srv.uri(), from_user="isolation", body=offer,
                                       content_type="application/sdp", extra=extra)
        self.head = self._headers(self.invite)
        self.cseq = 1
        self.ok: peers.SipResponse | None = None
        self.requests: list[bytes] = []

    @staticmethod
    def _headers(msg: bytes) -> dict[str, str]:
        lines = msg.split(b"\r\n\r\n")[0].decode().split("\r\n")
        out: dict[str, str] = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            out.setdefault(k.strip().lower(), v.strip())
        return out

    def close(self):
        self.raw.close()
        self.rtp.close()

    def answer(self, timeout: float = 15) -> list[peers.SipResponse]:
        """Sends the INVITE, waits for its final response and ACKs a 2xx."""
        resps = self.raw.transact(self.invite, timeout=timeout)
        finals = [r for r in resps if r.status >= 200]
        if finals and finals[0].status == 200:
            self.ok = finals[0]
            self._send_in_dialog("ACK", cseq=1)
        return resps

    def _target(self) -> str:
        contact = self.ok.header("contact") or ""
        return contact.split("<", 1)[-1].split(">", 1)[0]

    def _send_in_dialog(self, method: str, cseq: int, body: bytes = b"", content_type: str | None = None,
                        extra: list[str] | None = None) -> bytes:
        hdr = ["%s %s SIP/2.0" % (method, self._target()),
               "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s;rport" % (self.raw.port, peers._tok()),
               "Max-Forwards: 70", "From: " + self.head["from"], "To: " + self.ok.header("to"),
               "Call-ID: " + self.head["call-id"], "CSeq: %d %s" % (cseq, method)] + (extra or [])
        if content_type:
            hdr.append("Content-Type: " + content_type)
        hdr.append("Content-Length: %d" % len(body))
        msg = ("\r\n".join(hdr) + "\r\n\r\n").encode() + body
        self.raw.send(msg)
        return msg

    def request(self, method: str, timeout: float, **kw) -> peers.SipResponse | None:
        """Sends an in-dialog request (once) and returns its final response, if any."""
        self.cseq += 1
        self._send_in_dialog(method, self.cseq, **kw)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.raw.recv(max(deadline - time.monotonic(), 0.01))
            if data is None:
                continue
            r = peers.parse_response(data)
            if r is None:
                self._on_request(data)
                continue
            if r.status >= 200 and (r.header("cseq") or "").startswith("%d " % self.cseq):
                return r
        return None

    def _on_request(self, data: bytes) -> None:
        self.requests.append(data)
        if data.startswith(b"BYE "):
            h = self._headers(data)
            ok = ["SIP/2.0 200 OK", "Via: " + h["via"], "From: " + h["from"], "To: " + h["to"],
                  "Call-ID: " + h["call-id"], "CSeq: " + h["cseq"], "Content-Length: 0"]
            self.raw.send(("\r\n".join(ok) + "\r\n\r\n").encode())

    def wait_bye(self, timeout: float) -> bool:
        """Waits for the server's BYE (answers it 200); whether it came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(r.startswith(b"BYE ") for r in self.requests):
                return True
            data = self.raw.recv(max(deadline - time.monotonic(), 0.01))
            if data is not None and peers.parse_response(data) is None:
                self._on_request(data)
        return any(r.startswith(b"BYE ") for r in self.requests)


# ---------------------------------------------------------------------------------------------


def test_a_request_that_panics_gets_500_and_the_channel_goes_on(srv, audio, tmp_path):
    raw = peers.RawSip(srv.sip_port)
    try:
        for method in ("OPTIONS", "INVITE"):
            body = peers.sdp_offer(40010, [(0, "PCMU/8000")]) if method == "INVITE" else b""
            msg = raw.request(method, srv.uri(), from_user="isolation", extra=_fault("req-boom"), body=body,
                              content_type="application/sdp" if body else None)
            resps = raw.transact(msg, timeout=8)
            finals = [r.status for r in resps if r.status >= 200]
            assert finals == [500], (method, finals, _show(srv))
        log = srv.log_text()
        assert "a SIP request's handler panicked" in log, _show(srv)
        # The panic itself is logged with its place in the code and its fixed text.
        assert re.search(r"panic thread=\S+ location=crates/sip/src/server\.rs:\d+ what=\"?fault injected", log), \
            _show(srv)
        resps = raw.transact(raw.request("OPTIONS", srv.uri()), timeout=5)
        assert resps and resps[-1].status == 200, _show(srv)
    finally:
        raw.close()
    before = srv.counts()
    r = _sign(srv, audio, tmp_path, "+32470000701")
    assert r.confirmed and r.result.get("hung_up_by") == "remote", _show(srv, r)
    assert srv.wait_counts((before[0] + 1, before[1])) == (before[0] + 1, before[1]), _show(srv, r)
    status, js = srv.get_json("/healthz")
    assert status == 200 and js["status"] == "ok", js


@pytest.mark.parametrize("marker,caller", [("call-boom", "+32470000702"), ("media-boom", "+32470000703")])
def test_a_call_that_panics_ends_with_bye_and_another_call_goes_on(srv, audio, tmp_path, marker, caller):
    panics_before = _metric(srv, "belteken_panics_contained_total")
    before = srv.counts()
    result: dict = {}
    signer = threading.Thread(target=lambda: result.setdefault("r", _sign(srv, audio, tmp_path, caller)))
    signer.start()
    faulty = RawCall(srv, extra=_fault(marker))
    try:
        # The good call is under way before the faulty one starts.
        assert _poll(lambda: (_health(srv)[1] or {}).get("calls_in_progress", 0) >= 1, 10), _show(srv)
        resps = faulty.answer()
        assert faulty.ok is not None, ([r.status for r in resps], _show(srv))
        assert faulty.wait_bye(10), _show(srv)
    finally:
        faulty.close()
        signer.join(timeout=CALL_LIMIT_S + 30)
    r = result.get("r")
    assert r is not None and r.confirmed and r.result.get("hung_up_by") == "remote", _show(srv, r)
    assert srv.wait_counts((before[0] + 1, before[1])) == (before[0] + 1, before[1]), _show(srv, r)
    # Everything the faulty call held is released.
    assert _poll(lambda: _idle(srv), 10), _show(srv)
    assert _metric(srv, "belteken_panics_contained_total") >= panics_before + 1, _show(srv)


def test_an_in_dialog_request_that_panics_ends_alone(srv):
    call = RawCall(srv)
    try:
        call.answer()
        assert call.ok is not None, _show(srv)
        dtmf = dict(body=b"Signal=1\r\nDuration=160\r\n", content_type="application/dtmf-relay")
        faulty = call.request("INFO", 3, extra=_fault("dialog-boom"), **dtmf)
        assert faulty is None or faulty.status != 200, faulty
        # The request may be answered before its handler's panic is logged.
        assert _poll(lambda: "an in-dialog request's handler panicked" in srv.log_text(), 5), \
            _show(srv)
        # The dispatcher lives: the next in-dialog request of the same call is answered.
        ok = call.request("INFO", 5, **dtmf)
        assert ok is not None and ok.status == 200, _show(srv)
        bye = call.request("BYE", 5)
        assert bye is not None and bye.status == 200, _show(srv)
    finally:
        call.close()
    assert _poll(lambda: _idle(srv), 10), _show(srv)


def test_an_http_handler_that_panics_gets_500_and_nothing_else(srv):
    c = http.client.HTTPConnection(LOOPBACK, srv.http_port, timeout=5)
    try:
        c.request("GET", "/api/campaigns/demo", headers={"X-Belteken-Fault": "http-boom"})
        r = c.getresponse()
        r.read()
        assert r.status == 500, r.status
    finally:
        c.close()
    status, js = srv.get_json("/api/campaigns/demo")
    assert status == 200 and js["slug"] == "demo", js
    status, js = srv.get_json("/healthz")
    assert status == 200 and js["status"] == "ok", js


@pytest.mark.parametrize("task", ["sync", "sip", "media", "web"])
def test_a_core_task_that_dies_fails_health_and_the_process(tmp_path, task):
    srv = Server(tmp_path / task, campaign_toml(), env={"BELTEKEN_FAULT": "core:" + task})
    srv.launch()
    try:
        if task != "web":
            def failed():
                status, js = _health(srv)
                return (status, js) if status == 503 else None
            got = _poll(failed, 10)
            assert got, _show(srv)
            status, js = got
            assert js["status"] == "failed" and task in js["stopped"], js
        code = srv.wait_exit(EXIT_WITHIN_S)
        assert code is not None and code != 0, (code, _show(srv))
        assert "a core task stopped" in srv.log_text(), _show(srv)
    finally:
        srv.stop()
