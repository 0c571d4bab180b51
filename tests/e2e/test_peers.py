"""Checks the test drivers against each other, without the server: if these fail, the
end-to-end failures say nothing about belteken."""
from __future__ import annotations

import wavs
import peers


def test_pjsua_calls_baresip(audio, tmp_path):
    b = peers.Baresip(tmp_path / "bs", user="callee", play=audio.greeting, auto_answer=True)
    try:
        r = peers.pj_call(b.uri, caller="+32470000099", seconds=4, play=audio.speak,
                          rec=tmp_path / "heard.wav", dtmf="5", log=tmp_path / "pj.log")
        b.wait_event({"CALL_CLOSED"}, 5)
    finally:
        b.stop()
    res = b.result()
    assert r.confirmed and r.result["hung_up_by"] == "timeout", r.summary()
    assert any(e.get("type") == "CALL_DTMF_START" and e.get("param") == "5" for e in res.events), res.summary()
    heard = wavs.read_wav(tmp_path / "heard.wav")
    assert heard.voiced()[0] >= 1.0, heard.summary()  # the greeting prompt, played by baresip
    assert "sip:+32470000099@127.0.0.1" in res.log + str(res.events)


def test_baresip_calls_pjsua_which_answers_late(audio, tmp_path):
    l = peers.PjListener(play=audio.greeting, rec=tmp_path / "uas.wav", seconds=15, answer_after_ms=1000,
                         log=tmp_path / "uas.log")
    b = peers.baresip_call(tmp_path / "bs", l.uri, user="+32470000098", play=audio.name, hangup_after_s=5)
    u = l.wait()
    assert b.established and b.closed is not None, b.summary()
    assert any(e.get("type") == "CALL_RINGING" for e in b.events), b.summary()
    assert u.confirmed and u.result["hung_up_by"] == "remote", u.summary()
    assert "From: <sip:+32470000098@127.0.0.1:" in u.output
    assert wavs.read_wav(tmp_path / "uas.wav").voiced()[0] >= 0.5
    assert b.recordings and wavs.read_wav(b.recordings[0]).voiced()[0] >= 1.0


def test_pjsua_cancel_while_ringing_gives_487(audio, tmp_path):
    l = peers.PjListener(play=audio.greeting, rec=tmp_path / "uas.wav", seconds=10, answer_after_ms=5000)
    r = peers.pj_call(l.uri, seconds=10, play=audio.speak, hangup_after_ms=1500)
    u = l.wait()
    assert not r.confirmed and r.last_status == 487, r.summary()
    assert u.last_status == 487, u.summary()


def test_raw_options_and_bye_against_pjsua(audio, tmp_path):
    l = peers.PjListener(play=audio.greeting, rec=tmp_path / "uas.wav", seconds=4)
    raw = peers.RawSip(l.port)
    try:
        opts = raw.transact(raw.request("OPTIONS", l.uri), timeout=3)
        bye = raw.transact(raw.request("BYE", l.uri, to_tag="x1"), timeout=3)
        inv = raw.transact(raw.request("INVITE", l.uri, body=peers.sdp_offer(40004, [(96, "opus/48000/2")]),
                                       content_type="application/sdp"), timeout=3)
    finally:
        raw.close()
        l.wait()
    assert opts and opts[-1].status == 200
    assert bye and bye[-1].status == 481
    assert inv and inv[-1].status == 488, [r.raw for r in inv]
