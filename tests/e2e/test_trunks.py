"""Trunk-grade SIP against real peers: belteken registers to Kamailio (digest MD5 and SHA-256,
qop=auth, a stale nonce, UDP and TCP), a PJSIP caller reaches the campaign's DID through
Kamailio, a wrong password is reported and retried with back-off; static (IP) trunks accept
INVITEs only from their networks and believe P-Asserted-Identity only from there; sipvicious
gets one answer for every user and gets banned.

The provider side lives on 127.0.0.2 (Kamailio, or a raw socket bound there); callers and
scanners use 127.0.0.1, 127.0.0.5 and 127.0.0.6. Everything stays on loopback."""
from __future__ import annotations

import os
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import kamailio
import peers
from server import Server, campaign_toml

DID = "+3220000000"
PROVIDER_IP = "127.0.0.2"


def _campaign(ring_seconds: float = 1) -> str:
    return campaign_toml(ring_seconds=ring_seconds, extra=f'dids = ["{DID}"]\n')


def _register_trunk(k: kamailio.Kamailio, *, transport: str, password: str, expires: int = 10) -> str:
    return f"""
[[trunk]]
name = "kam"
mode = "register"
transport = "{transport}"
registrar = "{k.uri_host}"
username = "belteken"
password = "{password}"
expires_seconds = {expires}
dids = ["{DID}"]
"""


def _static_trunk(extra: str = "") -> str:
    return f"""
[[trunk]]
name = "carrier"
mode = "static"
trusted = ["{PROVIDER_IP}/32"]
{extra}
"""


def _wait_log(srv: Server, pattern: str, count: int = 1, timeout: float = 20.0) -> list[str]:
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        hits = [l for l in srv.log_text().splitlines() if rx.search(l)]
        if len(hits) >= count or time.monotonic() > deadline:
            return hits
        time.sleep(0.2)


def _tail(srv: Server, k: kamailio.Kamailio | None = None) -> str:
    out = "\n--- belteken log ---\n" + srv.log_text()[-4000:]
    if k is not None:
        out += "\n--- kamailio log ---\n" + "\n".join(
            l for l in k.log().splitlines() if "NOTICE" in l or "ERROR" in l)[-3000:]
    return out


@pytest.fixture
def _kamailio_required():
    peers.require(kamailio.available(), "kamailio")


needs_kamailio = pytest.mark.usefixtures("_kamailio_required")


@pytest.fixture
def kam(tmp_path):
    made = []

    def make(**kw) -> kamailio.Kamailio:
        k = kamailio.Kamailio(tmp_path / f"kamailio{len(made)}", aor="belteken",
                              asserted="+32470000077", **kw)
        made.append(k)
        return k

    yield make
    for k in made:
        k.stop()


# ---------------------------------------------------------------------------------------------
# registration


@needs_kamailio
@pytest.mark.parametrize("transport,algorithm,stale", [("udp", "MD5", False), ("tcp", "SHA-256", True)])
def test_register_refresh_call_and_unregister(server_factory, kam, tmp_path, transport, algorithm, stale):
    k = kam(password="s3cret", algorithm=algorithm, stale_once=stale)
    srv = server_factory(f"reg-{transport}", _campaign() + _register_trunk(k, transport=transport, password="s3cret"))
    assert _wait_log(srv, r"registered trunk=kam"), _tail(srv, k)
    assert k.wait_for(f"REGOK belteken expires=10 proto={transport}"), _tail(srv, k)
    if stale:
        assert k.count("REGSTALE-FORCED") == 1, _tail(srv, k)
    # A refresh before the 10 s binding runs out (the cached nonce, the next nonce count).
    assert _wait_log(srv, r"registration refreshed trunk=kam", timeout=12), _tail(srv, k)
    # The operator sees it on /healthz and /metrics.
    status, health = srv.get_json("/healthz")
    assert status == 200 and health["trunks"][0]["trunk"] == "kam", health
    assert health["trunks"][0]["registration"] == "registered", health
    assert health["trunks"][0]["registrations"] >= 2, health
    _, metrics = srv.get("/metrics")
    assert b'belteken_trunk_registered{trunk="kam"} 1' in metrics, metrics

    # A PJSIP caller dials the DID at the provider; Kamailio routes it to our binding.
    res = peers.pj_call(f"sip:{DID}@{k.uri_host}", caller="+32470000001", seconds=6,
                        log=tmp_path / f"pj-{transport}.log")
    assert res.confirmed, res.summary() + _tail(srv, k)
    assert k.count("ROUTED INVITE") >= 1
    accepted = _wait_log(srv, r"INVITE accepted trunk=kam")
    assert accepted and f"called={DID}" in accepted[0] and "network-asserted" in accepted[0], _tail(srv, k)
    assert _wait_log(srv, rf'transport="{transport}"'), _tail(srv, k)

    # Clean shutdown unregisters (Expires: 0).
    assert srv.stop() == 0
    assert k.wait_for("expires=0", timeout=5), _tail(srv, k)
    assert "unregistered trunk=kam" in srv.log_text()


@needs_kamailio
def test_wrong_password_is_reported_and_retried_with_backoff(server_factory, kam):
    k = kam(password="s3cret")
    srv = server_factory("reg-wrong", _campaign() + _register_trunk(k, transport="udp", password="Pw-9f3kq-bad"))
    fails = _wait_log(srv, r"registration failed trunk=kam", count=3, timeout=20)
    assert len(fails) >= 3, _tail(srv, k)
    assert all("authentication failed (401)" in l and "check username, password" in l for l in fails), fails
    delays = [float(re.search(r"retry_in_s=([0-9.]+)", l).group(1)) for l in fails[:3]]
    assert delays[0] >= 2 and delays[1] > delays[0] and delays[2] > delays[1], delays
    assert "registered trunk" not in srv.log_text()
    status, health = srv.get_json("/healthz")
    assert health["trunks"][0]["registration"] == "failed", health
    # The reason is in the log (above) and the console, never on the public /healthz.
    assert "last_error" not in health["trunks"][0], health
    assert "401" not in json.dumps(health), health
    # The password never reaches the log.
    assert "Pw-9f3kq-bad" not in srv.log_text()
    assert k.count("REGFAIL") >= 2


@needs_kamailio
def test_reregisters_after_the_registrar_comes_back(server_factory, kam):
    k = kam(password="s3cret")
    srv = server_factory("reg-restart", _campaign() + _register_trunk(k, transport="tcp", password="s3cret"))
    assert _wait_log(srv, r"registered trunk=kam"), _tail(srv, k)
    k.stop()
    assert _wait_log(srv, r"registration failed trunk=kam", timeout=30), _tail(srv, k)
    k.start()
    assert _wait_log(srv, r"registered trunk=kam", count=2, timeout=30), _tail(srv, k)
    assert k.wait_for("REGOK belteken", timeout=5)


# ---------------------------------------------------------------------------------------------
# static trunks: who may call, whose identity is believed, where the DID is


def _invite(raw: peers.RawSip, srv: Server, user: str, *, from_user: str = "+32470000009",
            extra: list[str] | None = None) -> bytes:
    body = peers.sdp_offer(40010, [(0, "PCMU/8000")])
    return raw.request("INVITE", f"sip:{user}@127.0.0.1:{srv.sip_port}", from_user=from_user, body=body,
                       content_type="application/sdp", extra=extra)


def _ring_then_cancel(raw: peers.RawSipAt, invite: bytes) -> list[peers.SipResponse]:
    raw.send(invite)
    resps = raw.collect(5, until=lambda r: r.status == 180 or r.status >= 300)
    if resps and resps[-1].status == 180:
        raw.send(raw.cancel_for(invite))
        more = raw.collect(5, until=lambda r: r.status == 487)
        for r in more:
            if r.status == 487:
                raw.send(raw.ack_for(invite, r))
        resps += more
    return resps


@pytest.fixture(scope="module")
def static_srv(server_factory) -> Server:
    cfg = _campaign(ring_seconds=10) + _static_trunk() + """
[sip]
ban_after_bad_requests = 12
ban_seconds = 120
"""
    return server_factory("static-trunk", cfg)


def test_static_trunk_believes_asserted_identity(static_srv):
    raw = peers.RawSipAt(static_srv.sip_port, PROVIDER_IP)
    try:
        inv = _invite(raw, static_srv, DID, extra=["P-Asserted-Identity: <sip:+32470000055@127.0.0.2>"])
        resps = _ring_then_cancel(raw, inv)
    finally:
        raw.close()
    codes = [r.status for r in resps]
    assert 180 in codes and 487 in codes, (codes, _tail(static_srv))
    hits = _wait_log(static_srv, r"INVITE accepted trunk=carrier")
    assert hits and "network-asserted" in hits[-1], _tail(static_srv)


def test_static_trunk_privacy_id_withholds(static_srv):
    raw = peers.RawSipAt(static_srv.sip_port, PROVIDER_IP)
    try:
        inv = _invite(raw, static_srv, DID, extra=["P-Asserted-Identity: <sip:+32470000056@127.0.0.2>",
                                                   "Privacy: id"])
        _ring_then_cancel(raw, inv)
    finally:
        raw.close()
    hits = _wait_log(static_srv, r'INVITE accepted trunk=carrier.*trust="withheld"')
    assert hits, _tail(static_srv)


def test_untrusted_source_gets_403_for_every_user_and_is_not_believed(static_srv):
    raw = peers.RawSipAt(static_srv.sip_port, "127.0.0.1")
    try:
        answers = set()
        for user in [DID, "demo", "100", "+3299999999", "admin"]:
            inv = _invite(raw, static_srv, user, extra=["P-Asserted-Identity: <sip:+32470000057@127.0.0.2>"])
            resps = raw.transact(inv, timeout=5)
            answers.add(tuple(r.status for r in resps if r.status >= 200))
    finally:
        raw.close()
    assert answers == {(403,)}, answers
    assert "INVITE accepted" not in "\n".join(
        l for l in static_srv.log_text().splitlines() if "+32470000057" in l)
    assert "+32470000057" not in static_srv.log_text()


def test_did_from_diversion(server_factory):
    cfg = _campaign(ring_seconds=10) + _static_trunk('did_from = "Diversion"')
    srv = server_factory("diversion", cfg)
    raw = peers.RawSipAt(srv.sip_port, PROVIDER_IP)
    try:
        inv = _invite(raw, srv, "+32470999999",
                      extra=[f"Diversion: <sip:{DID}@127.0.0.2>;reason=unconditional;counter=1"])
        resps = _ring_then_cancel(raw, inv)
    finally:
        raw.close()
    assert 180 in [r.status for r in resps], _tail(srv)
    assert _wait_log(srv, rf"INVITE accepted trunk=carrier called={re.escape(DID)}"), _tail(srv)


def test_unknown_did_from_a_trunk_goes_to_the_default_campaign(server_factory):
    cfg = _campaign(ring_seconds=10) + _static_trunk() + '\n[server]\ndefault_campaign = "demo"\n'
    srv = server_factory("default-campaign", cfg)
    raw = peers.RawSipAt(srv.sip_port, PROVIDER_IP)
    try:
        resps = _ring_then_cancel(raw, _invite(raw, srv, "+3250123456"))
    finally:
        raw.close()
    assert 180 in [r.status for r in resps], _tail(srv)
    assert _wait_log(srv, r"INVITE accepted trunk=carrier called=\+3250123456 campaign=demo"), _tail(srv)
    # Without a trunk the same call is still a 404 (no default for strangers).
    raw = peers.RawSipAt(srv.sip_port, "127.0.0.1")
    try:
        resps = raw.transact(_invite(raw, srv, "+3250123456"), timeout=5)
    finally:
        raw.close()
    assert resps and resps[-1].status in (403, 404), resps


def test_untrusted_drop_gives_no_answer(server_factory):
    cfg = _campaign() + _static_trunk() + '\n[sip]\nuntrusted = "drop"\n'
    srv = server_factory("drop", cfg)
    raw = peers.RawSipAt(srv.sip_port, "127.0.0.1")
    try:
        resps = raw.transact(_invite(raw, srv, DID), timeout=3)
        opts = raw.transact(raw.request("OPTIONS", srv.uri()), timeout=3)
    finally:
        raw.close()
    assert [r.status for r in resps] == [], resps
    assert opts and opts[-1].status == 200  # the source is not banned by one INVITE


def test_open_mode_does_not_believe_asserted_identity(server_factory):
    """No trunk configured (the demo): anyone may call, but P-Asserted-Identity counts for
    nothing; the caller is who From says, and the log says so."""
    srv = server_factory("open-pai", _campaign(ring_seconds=10))
    raw = peers.RawSipAt(srv.sip_port, "127.0.0.1")
    try:
        inv = _invite(raw, srv, "demo", extra=["P-Asserted-Identity: <sip:+32470000058@127.0.0.2>"])
        resps = _ring_then_cancel(raw, inv)
    finally:
        raw.close()
    assert 180 in [r.status for r in resps], _tail(srv)
    hits = _wait_log(srv, r"INVITE accepted trunk=- ")
    assert hits and 'trust="from-header"' in hits[-1], _tail(srv)


# ---------------------------------------------------------------------------------------------
# scanners and bans


def _sipvicious(tool: str, *args: str, timeout: float = 60) -> str:
    home = tempfile.mkdtemp(prefix="sipvicious-")
    try:
        p = subprocess.run([tool, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, env=peers.env_with(HOME=home), stdin=subprocess.DEVNULL)
        return p.stdout
    except subprocess.TimeoutExpired as e:
        return (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_sipvicious_finds_nothing_and_is_banned(server_factory):
    peers.require(shutil.which("sipvicious_svwar") is not None, "sipvicious")
    srv = server_factory("scanner", _campaign() + _static_trunk())
    out_map = _sipvicious("sipvicious_svmap", "-b", "127.0.0.5", "-P", str(peers.free_port()),
                          "-p", str(srv.sip_port), "127.0.0.1", timeout=30)
    out_war = _sipvicious("sipvicious_svwar", "-b", "127.0.0.5", "-P", str(peers.free_port()),
                          "-p", str(srv.sip_port), "-e", "100-300", "-m", "INVITE", "--force",
                          "127.0.0.1", timeout=60)
    # No extension is reported as existing.
    found = [l for l in out_war.splitlines() if re.match(r"^\|\s*\d+\s*\|", l)]
    assert not found, out_war
    bans = _wait_log(srv, r"source banned.*source=127\.0\.0\.5|source=127\.0\.0\.5.*source banned", timeout=5)
    assert bans, out_map + out_war + _tail(srv)
    assert srv.alive()
    # The ban is per source: the provider still gets through.
    raw = peers.RawSipAt(srv.sip_port, PROVIDER_IP)
    try:
        opts = raw.transact(raw.request("OPTIONS", srv.uri()), timeout=3)
    finally:
        raw.close()
    assert opts and opts[-1].status == 200


def test_user_sweep_gets_one_answer_then_a_ban(server_factory):
    """A sweep over users without a scanner's User-Agent: the same 403 for every user until the
    source is banned, then silence; the ban is logged with the source address only."""
    cfg = _campaign() + _static_trunk() + "\n[sip]\nban_after_bad_requests = 10\nban_seconds = 60\n"
    srv = server_factory("sweep", cfg)
    raw = peers.RawSipAt(srv.sip_port, "127.0.0.6")
    statuses = []
    try:
        for ext in range(100, 125):
            resps = raw.transact(_invite(raw, srv, str(ext), from_user=str(ext)), timeout=1.0, retransmit=False)
            statuses.append(resps[-1].status if resps else None)
    finally:
        raw.close()
    answered = [s for s in statuses if s is not None]
    assert set(answered) == {403}, statuses
    assert 8 <= len(answered) <= 10, statuses
    assert statuses[-1] is None, statuses
    bans = _wait_log(srv, r"source banned")
    assert bans and "source=127.0.0.6" in bans[0], _tail(srv)
    assert "+32" not in bans[0]


def test_require_timer_gets_420(server_factory):
    """We do not implement RFC 4028 session timers and never advertise them: a caller that
    requires them gets 420 with Unsupported: timer."""
    srv = server_factory("require", _campaign())
    raw = peers.RawSip(srv.sip_port)
    try:
        inv = _invite(raw, srv, "demo", extra=["Require: timer", "Session-Expires: 1800;refresher=uac",
                                               "Supported: timer"])
        resps = raw.transact(inv, timeout=5)
    finally:
        raw.close()
    final = [r for r in resps if r.status >= 200]
    assert final and final[0].status == 420, [r.status for r in resps]
    assert (final[0].header("Unsupported") or "").strip() == "timer"


def test_retransmitted_invite_is_one_call(server_factory):
    srv = server_factory("retransmit", _campaign(ring_seconds=10))
    raw = peers.RawSipAt(srv.sip_port, "127.0.0.1")
    try:
        inv = _invite(raw, srv, "demo")
        raw.send(inv)
        time.sleep(0.3)  # paces the retransmissions as a UDP client's timer would (by design)
        raw.send(inv)  # the same branch: a retransmission
        time.sleep(0.3)
        raw.send(inv)
        resps = raw.collect(3, until=lambda r: r.status == 180)
        raw.send(raw.cancel_for(inv))
        more = raw.collect(5, until=lambda r: r.status == 487)
        for r in more:
            if r.status == 487:
                raw.send(raw.ack_for(inv, r))
                raw.send(raw.ack_for(inv, r))  # a retransmitted ACK is harmless
    finally:
        raw.close()
    assert 180 in [r.status for r in resps], _tail(srv)
    # Every copy arrived before the CANCEL; once the call has ended, each was handled.
    assert _wait_log(srv, r"call ended"), _tail(srv)
    assert len([l for l in srv.log_text().splitlines() if "INVITE accepted" in l]) == 1, _tail(srv)
    assert srv.alive()


# ---------------------------------------------------------------------------------------------
# TLS


def test_register_over_tls_verifies_the_provider(server_factory, kam, tmp_path):
    peers.require(kamailio.tls_available(), "kamailio's tls module")
    import certs
    good = certs.make(tmp_path / "good", "provider")
    other = certs.make(tmp_path / "other", "stranger")
    k = kam(password="s3cret", tls=good)
    trunk = f"""
[[trunk]]
name = "kam"
mode = "register"
transport = "tls"
registrar = "{k.ip}:{k.tls_port}"
username = "belteken"
password = "s3cret"
expires_seconds = 30
dids = ["{DID}"]
"""
    srv = server_factory("reg-tls", _campaign() + trunk + '\n[sip]\ntls_ca_file = "provider-ca.pem"\n',
                         files={"provider-ca.pem": good.ca})
    assert _wait_log(srv, r"registered trunk=kam"), _tail(srv, k)
    assert k.wait_for("proto=tls"), _tail(srv, k)
    res = peers.pj_call(f"sip:{DID}@{k.uri_host}", caller="+32470000002", seconds=5,
                        log=tmp_path / "pj-tls.log")
    assert res.confirmed, res.summary() + _tail(srv, k)
    assert _wait_log(srv, r'transport="tls"'), _tail(srv, k)

    # A provider whose certificate does not chain to the configured roots is refused.
    srv2 = server_factory("reg-tls-bad", _campaign() + trunk + '\n[sip]\ntls_ca_file = "other-ca.pem"\n',
                          files={"other-ca.pem": other.ca})
    fails = _wait_log(srv2, r"registration failed trunk=kam", timeout=20)
    assert fails, _tail(srv2, k)
    assert "registered trunk" not in srv2.log_text()
    assert k.wait_for("unknown ca", timeout=5), _tail(srv2, k)


def test_baresip_calls_over_tls(server_factory, audio, tmp_path):
    import certs
    c = certs.make(tmp_path / "certs", "belteken")
    tls_port = peers.free_port(udp=False, tcp=True)
    cfg = _campaign() + f"""
[sip]
tls_listen = "127.0.0.1:{tls_port}"
tls_cert = "belteken.pem"
tls_key = "belteken.key"
"""
    srv = server_factory("tls-in", cfg, files={"belteken.pem": c.cert, "belteken.key": c.key})
    b = peers.Baresip(tmp_path / "baresip-tls", user="+32470000003", play=audio.quiet)
    try:
        b.dial(f"sip:demo@127.0.0.1:{tls_port};transport=tls")
        est = b.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 15)
        b.hangup()
        b.wait_event({"CALL_CLOSED"}, 5)
    finally:
        b.stop()
    r = b.result()
    assert est is not None and est.get("type") == "CALL_ESTABLISHED", r.summary() + r.log[-3000:] + _tail(srv)
    assert _wait_log(srv, r'transport="tls"'), _tail(srv)


# ---------------------------------------------------------------------------------------------
# in-dialog robustness


def test_hold_and_resume_from_baresip(server_factory, audio, tmp_path):
    srv = server_factory("hold", _campaign())
    b = peers.Baresip(tmp_path / "baresip-hold", user="+32470000004", play=audio.quiet)
    try:
        b.dial(srv.uri("demo"))
        est = b.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 15)
        assert est is not None and est.get("type") == "CALL_ESTABLISHED", b.result().summary()
        # The caller stays on hold, then resumed, for a while each: these pace the real peer
        # (a hold is a span of time), they wait for nothing.
        time.sleep(1.0)
        b.command("hold")
        time.sleep(1.5)
        b.command("resume")
        time.sleep(1.5)
        closed_early = any(e.get("type") == "CALL_CLOSED" for e in b.events) or \
            b.wait_event({"CALL_CLOSED"}, 0.5) is not None
        b.hangup()
        b.wait_event({"CALL_CLOSED"}, 5)
    finally:
        b.stop()
    r = b.result()
    assert not closed_early, r.summary() + _tail(srv)
    # The hold and the resume re-INVITE were each answered with SDP (after the first answer).
    answers = [e for e in r.events if e.get("type") == "CALL_REMOTE_SDP"]
    assert len(answers) >= 3, r.summary()
    assert srv.alive()
    assert "panicked" not in srv.log_text()


def test_info_dtmf_from_pjsua2(server_factory, tmp_path, audio):
    srv = server_factory("info-dtmf", _campaign())
    cmd = peers._pjcall_cmd(uri=srv.uri("demo"), caller="+32470000006", seconds=7, dtmf="5",
                            dtmf_after_ms=1500, dtmf_info=True, play=audio.quiet,
                            port=peers.free_port(), rtp_port=peers.free_port(span=2, even=True))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=40)
    (tmp_path / "pj-info.log").write_text(p.stdout)
    assert "DTMF-SENT 5" in p.stdout, p.stdout[-3000:]
    assert "INFO sip:" in p.stdout, p.stdout[-3000:]
    hits = _wait_log(srv, r"DTMF \(INFO\)", timeout=5)
    assert hits and "digit=5" in hits[0], _tail(srv)


# ---------------------------------------------------------------------------------------------
# RFC 4475 torture messages over the socket

TORTURE = Path(__file__).resolve().parents[2] / "crates" / "sip" / "tests" / "rfc4475"


def test_rfc4475_messages_over_the_socket(server_factory):
    srv = server_factory("torture", _campaign() + "\n[sip]\nban_after_bad_requests = 1000\n")
    files = sorted(TORTURE.glob("*.sip"))
    assert len(files) >= 20
    verdicts = {}
    raw = peers.RawSipAt(srv.sip_port, "127.0.0.7")
    try:
        for f in files:
            raw.send(f.read_bytes())
            resps = raw.collect(0.6)
            verdicts[f.name] = [r.status for r in resps]
            # Answer any INVITE that got a final answer, so nothing retransmits.
        opts = raw.transact(raw.request("OPTIONS", srv.uri()), timeout=3)
    finally:
        raw.close()
    report = "\n".join(f"{k}: {v}" for k, v in verdicts.items())
    assert opts and opts[-1].status == 200, report + _tail(srv)
    assert srv.alive() and "panicked" not in srv.log_text(), report + _tail(srv)
    # Answers go to the Via address (received=127.0.0.1, port 5060 when there is no rport), so a
    # message whose Via has no rport gets its answer elsewhere: [] here means "not seen".
    for name, statuses in verdicts.items():
        # Every answer RFC 4475 gives is checked in test_rfc4475.py; here only that nothing
        # malformed is accepted (baddate: the RFC would rather its Date were ignored).
        if name.startswith("invalid-") and "baddate" not in name:
            # Refused: dropped, or a 4xx/5xx; never accepted.
            assert all(s >= 400 or s < 200 for s in statuses), report
            assert not any(s == 180 for s in statuses), report
    assert verdicts["invalid-3.1.2.2-clerr.sip"] == [400], report
    assert verdicts["invalid-3.1.2.16-badvers.sip"] in ([505], []), report
    assert verdicts["invalid-3.1.2.17-mismatch01.sip"] == [400], report
    assert verdicts["app-3.3.8-multi01.sip"] in ([400], []), report
    assert verdicts["invalid-x-header-bomb.sip"] in ([400], []), report
    # Valid requests the parser takes get a proper answer (not 400).
    assert verdicts["valid-3.1.1.6-lwsdisp.sip"] == [200], report
    assert 400 not in verdicts["valid-3.1.1.3-esc01.sip"], report


def _trunk_calls(srv: Server, trunk: str) -> int:
    status, body = srv.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(f'belteken_trunk_calls_in_progress{{trunk="{trunk}"}} '):
            return int(line.split()[-1])
    return 0


def test_trunk_max_calls_gets_503_and_frees_when_a_call_ends(server_factory):
    cfg = _campaign(ring_seconds=10) + _static_trunk("max_calls = 1")
    srv = server_factory("trunk-max-calls", cfg)
    first = peers.RawSipAt(srv.sip_port, PROVIDER_IP)
    second = peers.RawSipAt(srv.sip_port, PROVIDER_IP)
    try:
        inv1 = _invite(first, srv, DID, from_user="+32470000061")
        first.send(inv1)
        assert any(r.status == 180 for r in first.collect(5, until=lambda r: r.status == 180)), _tail(srv)
        assert _trunk_calls(srv, "carrier") == 1
        # The trunk's one channel is taken: the next call from it gets 503 with Retry-After.
        inv2 = _invite(second, srv, DID, from_user="+32470000062")
        second.send(inv2)
        finals = [r for r in second.collect(5, until=lambda r: r.status >= 200) if r.status >= 200]
        assert finals and finals[0].status == 503, (finals, _tail(srv))
        assert finals[0].header("retry-after"), finals[0].raw
        second.send(second.ack_for(inv2, finals[0]))
        # The first call ends: the channel is free again.
        first.send(first.cancel_for(inv1))
        ended = first.collect(5, until=lambda r: r.status == 487)
        assert any(r.status == 487 for r in ended), _tail(srv)
        first.send(first.ack_for(inv1, [r for r in ended if r.status == 487][0]))
        deadline = time.monotonic() + 10
        while _trunk_calls(srv, "carrier") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _trunk_calls(srv, "carrier") == 0, _tail(srv)
        inv3 = _invite(second, srv, DID, from_user="+32470000063")
        resps = _ring_then_cancel(second, inv3)
        assert 180 in [r.status for r in resps], (resps, _tail(srv))
    finally:
        first.close()
        second.close()
