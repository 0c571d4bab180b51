"""End to end against the real binary: callers (pjsua2, baresip, raw UDP) sign the petition.

The tests in this file run in order on one server (`srv`): the counts build on each other.
Caller numbers are Belgian mobile numbers; the last test checks that none of them, in any
notation, reached the log or the database files."""
from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

import peers
import wavs
from conftest import GREETING_S, STORY_S, THANKS_S
from server import REPO, Server, SseClient, campaign_toml

PJ_CALLER = "+32470000001"
BARESIP_CALLER = "+32470000002"
SSE_CALLER = "+32470000003"
DEMO_CALLER = "+32470000004"
RING_CALLER = "+32470000005"
TCP_CALLER = "+32470000006"

# a signing call: ring 1 s + prompts + beep + name + silence + thanks, about 12 s
CALL_LIMIT_S = 40
VOICED_RMS_MIN = 800.0  # espeak-ng speech through G.711 measures ~3,000 over its voiced windows


def ctx(srv: Server, *parts) -> str:
    """Failure context: driver summaries and the server log's tail."""
    out = [p.summary() if hasattr(p, "summary") else str(p) for p in parts]
    return "\n".join(out) + "\n--- server log (tail) ---\n" + srv.log_text()[-3000:]


@pytest.fixture(scope="module")
def srv(server_factory, audio):
    cfg = campaign_toml(ring_seconds=1, silence_seconds=1, record_max_seconds=10,
                        prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"})
    return server_factory("main", cfg, files=audio.prompts)


def sign_with_pjsua(srv: Server, audio, tmp_path: Path, caller: str, **kw) -> peers.PjResult:
    return peers.pj_call(srv.uri(), caller=caller, seconds=CALL_LIMIT_S, play=audio.speak,
                         rec=tmp_path / "heard.wav", log=tmp_path / "pjcall.log", **kw)


# ---------------------------------------------------------------------------------------------


def test_startup_output(srv):
    log = srv.log_text()
    assert "belteken is ready" in log, ctx(srv)
    assert re.search(r"call:\s+sip:demo@127\.0\.0\.1:%d\b" % srv.sip_port, log), ctx(srv)
    assert re.search(r"page:\s+http://127\.0\.0\.1:%d/c/demo\b" % srv.http_port, log), ctx(srv)


def test_http_basics(srv):
    status, js = srv.get_json("/healthz")
    assert status == 200 and js["status"] == "ok", js
    status, js = srv.get_json("/api/campaigns/demo")
    assert status == 200
    assert js["slug"] == "demo" and js["title"] == "E2E test petition"
    assert (js["signatures"], js["unverified"]) == (0, 0), js
    status, body = srv.get("/api/campaigns/no-such-campaign")
    assert status == 404, body
    assert body.strip().startswith(b"{"), body  # 404 as JSON
    status, body = srv.get("/c/demo")
    assert status == 200 and b"E2E test petition" in body, body[:500]
    status, body = srv.get("/")
    assert status == 200 and b"/c/demo" in body, body[:500]


def test_pjsua_caller_signs(srv, audio, tmp_path):
    before = srv.counts()
    r = sign_with_pjsua(srv, audio, tmp_path, PJ_CALLER)
    assert any(s.startswith("CALLSTATE EARLY 180") for s in r.callstates), ctx(srv, r)  # it rang
    assert r.confirmed, ctx(srv, r)
    assert r.result["connect_ms"] >= 800, ctx(srv, r)  # ring_seconds = 1
    assert r.result["hung_up_by"] == "remote", ctx(srv, r)  # the server ends the call

    heard = wavs.read_wav(tmp_path / "heard.wav")
    voiced, _ = heard.voiced()
    # greeting + story + thanks were heard (the test prompts hold ~4 s of speech in 6 s)
    assert heard.seconds >= GREETING_S + STORY_S + THANKS_S, heard.summary()
    assert voiced >= 3.0, heard.summary()

    assert srv.wait_counts((before[0] + 1, before[1])) == (before[0] + 1, before[1]), ctx(srv, r)
    sigs = srv.signatures()
    assert len(sigs) == 1, sigs
    sig = sigs[0]
    assert sig["verified"] == 1
    assert sig["caller_key"] and "470000001" not in sig["caller_key"]
    assert sig["speech_ms"] >= 500, sig["speech_ms"]
    rec = wavs.read_wav(sig["recording"])
    voiced_s, voiced_rms = rec.voiced()
    assert rec.seconds >= 0.5, rec.summary()
    assert voiced_s >= 0.5 and voiced_rms >= VOICED_RMS_MIN, rec.summary()


def test_same_number_again_does_not_count(srv, audio, tmp_path):
    before = srv.counts()
    r = sign_with_pjsua(srv, audio, tmp_path, PJ_CALLER)
    assert r.confirmed and r.result["hung_up_by"] == "remote", ctx(srv, r)  # heard it all
    # A repeat caller is recognised before the flow starts: they hear that they already
    # signed (and may hear the story again or withdraw); nothing new is signed.
    ended = [l for l in srv.log_text().splitlines() if "call ended" in l]
    assert "outcome=Completed" in ended[-1], ctx(srv, r)
    assert srv.counts() == before, ctx(srv, r)
    assert len(srv.signatures()) == 1


def test_baresip_caller_signs(srv, audio, tmp_path):
    before = srv.counts()
    b = peers.baresip_call(tmp_path / "baresip", srv.uri(), user=BARESIP_CALLER, play=audio.speak,
                           seconds=CALL_LIMIT_S)
    assert b.established, ctx(srv, b, b.log[-2000:])
    assert b.closed is not None, ctx(srv, b)
    assert srv.wait_counts((before[0] + 1, before[1])) == (before[0] + 1, before[1]), ctx(srv, b)
    sigs = srv.signatures()
    assert len(sigs) == 2 and sigs[1]["verified"] == 1, sigs
    assert sigs[0]["caller_key"] != sigs[1]["caller_key"]
    rec = wavs.read_wav(sigs[1]["recording"])
    voiced_s, voiced_rms = rec.voiced()
    assert voiced_s >= 0.5 and voiced_rms >= VOICED_RMS_MIN, rec.summary()
    assert b.recordings, "baresip recorded nothing"
    heard = wavs.read_wav(b.recordings[0])
    assert heard.voiced()[0] >= 3.0, heard.summary()


def test_baresip_caller_over_tcp_signs(srv, audio, tmp_path):
    before = srv.counts()
    b = peers.baresip_call(tmp_path / "baresip", srv.uri() + ";transport=tcp", user=TCP_CALLER,
                           play=audio.speak, seconds=CALL_LIMIT_S)
    assert b.established, ctx(srv, b, b.log[-2000:])
    want = (before[0] + 1, before[1])
    assert srv.wait_counts(want) == want, ctx(srv, b)
    assert "transport=\"tcp\"" in srv.log_text(), ctx(srv, b)


def test_hangup_while_ringing(server_factory, audio, tmp_path):
    cfg = campaign_toml(ring_seconds=4, prompts={"greeting": "greeting.wav", "story": "story.wav",
                                                 "thanks": "thanks.wav"})
    s = server_factory("ringing", cfg, files=audio.prompts)
    try:
        r = peers.pj_call(s.uri(), caller=RING_CALLER, seconds=15, play=audio.speak,
                          hangup_after_ms=1500, log=tmp_path / "pjcall.log")
        assert any(x.startswith("CALLSTATE EARLY 180") for x in r.callstates), ctx(s, r)
        assert not r.confirmed, ctx(s, r)
        assert r.last_status == 487, ctx(s, r)
        # The server's own verdict on the call: ended while ringing, nothing signed.
        deadline = time.monotonic() + 10
        while "outcome=AbandonedRinging" not in s.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "outcome=AbandonedRinging" in s.log_text(), ctx(s, r)
        assert s.counts() == (0, 0), ctx(s, r)
        assert s.signatures() == []
        assert s.alive()
    finally:
        s.stop()


def test_anonymous_caller_is_unverified(srv, audio, tmp_path):
    before = srv.counts()
    r = sign_with_pjsua(srv, audio, tmp_path, "anonymous", from_uri="sip:anonymous@anonymous.invalid",
                        display="Anonymous")
    assert r.confirmed, ctx(srv, r)
    want = (before[0], before[1] + 1)
    assert srv.wait_counts(want) == want, ctx(srv, r)
    unverified = [s for s in srv.signatures() if not s["verified"]]
    assert len(unverified) == 1 and unverified[0]["caller_key"] is None, unverified


def test_sse_sees_count_update(srv, audio, tmp_path):
    sse = SseClient(srv.http_port, "/api/campaigns/demo/events")
    try:
        assert sse.status == 200, sse.headers
        assert sse.headers.get("content-type", "").startswith("text/event-stream"), sse.headers
        first = sse.next(5)
        assert first is not None, "no event at once"
        ev, data = first
        now = srv.counts()
        assert ev == "count" and (data["signatures"], data["unverified"]) == now, first
        r = sign_with_pjsua(srv, audio, tmp_path, SSE_CALLER)
        assert r.confirmed, ctx(srv, r)
        deadline = time.monotonic() + 10
        seen = [first]
        while time.monotonic() < deadline:
            e = sse.next(deadline - time.monotonic())
            if e is None:
                break
            seen.append(e)
            if e[0] == "count" and e[1]["signatures"] == now[0] + 1:
                break
        else:
            pass
        assert seen[-1][0] == "count" and seen[-1][1]["signatures"] == now[0] + 1, (seen, ctx(srv, r))
        assert seen[-1][1]["unverified"] == now[1], seen
    finally:
        sse.close()


def test_metrics_and_health_report_the_calls(srv):
    sigs, unverified = srv.counts()
    status, body = srv.get("/metrics")
    assert status == 200, body[:300]
    text = body.decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    assert values['belteken_signatures{campaign="demo"}'] == sigs, text
    assert values['belteken_signatures_unverified{campaign="demo"}'] == unverified, text
    assert values["belteken_calls_total"] >= sigs + unverified, text
    assert values["belteken_rtp_packets_sent_total"] >= 50 * 5, text  # several calls of 5 s or more
    assert values["belteken_calls_in_progress"] == 0, text
    status, js = srv.get_json("/healthz")
    assert status == 200 and js["status"] == "ok" and js["calls_in_progress"] == 0, js


def _expect_400_or_nothing(raw: peers.RawSip, srv: Server, name: str, data: bytes) -> None:
    raw.send(data)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        got = raw.recv(max(deadline - time.monotonic(), 0.01))
        if got is None:
            break
        resp = peers.parse_response(got)
        assert resp is not None and resp.status == 400, (name, got[:400], ctx(srv))


def test_malformed_datagrams_then_options(srv):
    raw = peers.RawSip(srv.sip_port)
    try:
        valid = raw.request("INVITE", srv.uri(), body=peers.sdp_offer(40000, [(0, "PCMU/8000")]),
                            content_type="application/sdp")
        junk = {
            "random bytes": random.Random(1234).randbytes(400),
            "truncated INVITE": valid[:90],
            "INVITE, garbage headers, no Call-ID": (
                "INVITE %s SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKjunk1;rport\r\n"
                "From: <<<sip:@@@>>;tag=\r\n"
                "To: \x01\x02garbage\r\n"
                "CSeq: banana INVITE\r\n"
                ":::: no name\r\n"
                "Content-Length: 5\r\n\r\nhello" % (srv.uri(), raw.port)).encode(),
            "request line only": ("INVITE %s SIP/2.0\r\n\r\n" % srv.uri()).encode(),
            "binary zeros": b"\x00" * 1200,
        }
        for name, data in junk.items():
            _expect_400_or_nothing(raw, srv, name, data)
        opts = raw.transact(raw.request("OPTIONS", srv.uri()), timeout=5)
        assert opts and opts[-1].status == 200, ([o.raw[:200] for o in opts], ctx(srv))
        assert srv.alive(), ctx(srv)
    finally:
        raw.close()


def test_content_length_beyond_datagram_is_rejected(srv):
    """RFC 3261 18.3: a UDP request that ends before its Content-Length is an error; the
    element SHOULD answer 400. (OPTIONS, so that a wrongly accepted request starts no call.)"""
    raw = peers.RawSip(srv.sip_port)
    try:
        req = raw.request("OPTIONS", srv.uri(), body=b"x", content_type="text/plain")
        req = req.replace(b"Content-Length: 1", b"Content-Length: 500")
        _expect_400_or_nothing(raw, srv, "Content-Length 500, body 1 byte", req)
        opts = raw.transact(raw.request("OPTIONS", srv.uri()), timeout=5)
        assert opts and opts[-1].status == 200, ([o.raw[:200] for o in opts], ctx(srv))
    finally:
        raw.close()


def test_builtin_demo_story_is_heard(server_factory, audio, tmp_path):
    demo_dir = REPO / "audio" / "demo" / "en"
    greeting = wavs.read_wav(demo_dir / "greeting.wav")
    story = wavs.read_wav(demo_dir / "story.wav")
    gs = greeting.seconds + story.seconds
    s = server_factory("builtin", campaign_toml(title="Built-in demo", ring_seconds=1))  # no prompts
    try:
        r = peers.pj_call(s.uri(), caller=DEMO_CALLER, seconds=1.5 + gs + 3, play=audio.quiet,
                          rec=tmp_path / "heard.wav", log=tmp_path / "pjcall.log")
        assert r.confirmed, ctx(s, r)
        heard = wavs.read_wav(tmp_path / "heard.wav")
        assert heard.seconds >= gs, (heard.summary(), gs)
        expected_voiced = greeting.voiced()[0] + story.voiced()[0]
        part = wavs.Wav(heard.rate, 1, 1, heard.samples[: int((gs + 1) * heard.rate)])
        voiced_s, voiced_rms = part.voiced()
        assert voiced_s >= 0.7 * expected_voiced, (part.summary(), expected_voiced)
        assert voiced_rms >= VOICED_RMS_MIN, part.summary()
        assert heard.rms(0.5, gs) >= 300, heard.summary()
        assert s.counts() == (0, 0)  # a silent caller does not sign
        # the public page shows the built-in transcript
        transcript = (demo_dir / "transcript.txt").read_text()
        status, body = s.get("/c/demo")
        assert status == 200
        assert b"say your first and last name" in body, body[:1000]
        assert transcript.split(".")[0].encode() in body, body[:1000]
    finally:
        s.stop()


def test_sigterm_stops_cleanly(srv):
    code = srv.stop(timeout=10)
    assert code == 0 and srv.stop_seconds < 10, (code, srv.stop_seconds, srv.log_text()[-2000:])
