"""Limits and shutdown against the real binary: a call past `max_calls` gets 503 with Retry-After,
SIGTERM drains (new calls get 503, the call in progress finishes and signs, then the process
exits), and a second SIGTERM stops at once."""
from __future__ import annotations

import signal
import threading
import time

import peers
from server import Server, campaign_toml

PROMPTS = {"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"}
DRAIN_CALLER = "+32470000101"
BUSY_CALLER = "+32470000102"


def _background_call(srv: Server, audio, tmp_path, caller: str, seconds: float = 40):
    box = {}

    def run():
        box["r"] = peers.pj_call(srv.uri(), caller=caller, seconds=seconds, play=audio.speak,
                                 log=tmp_path / ("pj-%s.log" % caller[-3:]))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _wait_log(srv: Server, needle: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in srv.log_text():
            return True
        time.sleep(0.05)
    return False


def _invite(srv: Server, user: str):
    raw = peers.RawSip(srv.sip_port)
    try:
        offer = peers.sdp_offer(40010, [(0, "PCMU/8000")])
        msg = raw.request("INVITE", srv.uri(), from_user=user, body=offer, content_type="application/sdp")
        return [r for r in raw.transact(msg, timeout=8) if r.status >= 200]
    finally:
        raw.close()


def test_call_past_max_calls_gets_503(server_factory, audio, tmp_path):
    cfg = "[server]\nmax_calls = 1\n\n" + campaign_toml(ring_seconds=1, prompts=PROMPTS)
    s = server_factory("max-calls", cfg, files=audio.prompts)
    try:
        t, box = _background_call(s, audio, tmp_path, BUSY_CALLER)
        assert _wait_log(s, " call ", 10), s.log_text()[-2000:]
        finals = _invite(s, "second")
        assert finals and finals[0].status == 503, (finals, s.log_text()[-2000:])
        assert finals[0].header("retry-after"), finals[0].raw
        t.join(60)
        assert box["r"].confirmed, box["r"].summary()
        assert s.wait_counts((1, 0)) == (1, 0)  # the call in progress kept its quality and signed
    finally:
        s.stop()


def test_sigterm_drains_then_exits(server_factory, audio, tmp_path):
    cfg = "[server]\ndrain_seconds = 60\n\n" + campaign_toml(ring_seconds=1, prompts=PROMPTS)
    s = server_factory("drain", cfg, files=audio.prompts)
    t, box = _background_call(s, audio, tmp_path, DRAIN_CALLER)
    assert _wait_log(s, " call ", 10), s.log_text()[-2000:]
    s.proc.send_signal(signal.SIGTERM)
    assert _wait_log(s, "draining", 5), s.log_text()[-2000:]
    finals = _invite(s, "latecomer")
    assert finals and finals[0].status == 503, (finals, s.log_text()[-2000:])
    t.join(60)
    r = box["r"]
    assert r.confirmed and r.result["hung_up_by"] == "remote", r.summary()  # heard it to the end
    s.proc.wait(timeout=15)
    assert s.proc.returncode == 0, s.log_text()[-2000:]
    assert "all calls finished" in s.log_text()
    # The store was closed: the WAL went into the database file and the side files are gone.
    assert "store closed" in s.log_text(), s.log_text()[-2000:]
    assert s.left_open() == [], s.left_open()
    sigs = s.signatures()
    assert len(sigs) == 1 and sigs[0]["verified"] == 1, sigs
    s.stop()


def test_second_sigterm_stops_at_once(server_factory, audio, tmp_path):
    cfg = "[server]\ndrain_seconds = 600\n\n" + campaign_toml(ring_seconds=1, prompts=PROMPTS)
    s = server_factory("drain-twice", cfg, files=audio.prompts)
    t, box = _background_call(s, audio, tmp_path, "+32470000103", seconds=30)
    assert _wait_log(s, " call ", 10), s.log_text()[-2000:]
    s.proc.send_signal(signal.SIGTERM)
    assert _wait_log(s, "draining", 5), s.log_text()[-2000:]
    s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(timeout=15)  # far less than drain_seconds: the second signal did not wait
    assert s.proc.returncode == 0, s.log_text()[-2000:]
    assert "second signal: stopping now" in s.log_text()
    assert s.left_open() == [], s.left_open()
    t.join(40)
    s.stop()
