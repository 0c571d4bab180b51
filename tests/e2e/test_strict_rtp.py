"""Strict RTP against the real binary: media is taken only from the source the server learnt
from a run of in-sequence packets, and sent only there (docs/media.md).

(a) A real pjsua2 caller in the "press 1 to sign" flow of docs/flows.md presses nothing, while a
second sender on 127.0.0.2 floods the call's RTP port with audio and RFC 4733 "1"s: the caller
must not sign, must still hear the server's prompts, and the intruder must get nothing back.
(b) An INVITE from a caller on no trunk whose SDP names a third party (a socket on 127.0.0.3):
that socket receives no RTP at all, and the call's media flows once the real caller's RTP
arrives from its own address. (c) A configured trunk's SDP is trusted: its media server gets
RTP at once."""
from __future__ import annotations

import random
import re
import socket
import struct
import time

import peers
import wavs
from server import Server, campaign_toml
from test_flows import Call, as_campaign, documented_flow

INTRUDER_IP = "127.0.0.2"
THIRD_PARTY_IP = "127.0.0.3"
FRAME_BYTES = 160  # one 20 ms G.711 frame


def rtp_packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF,
                       ssrc) + payload


def drain(sock: socket.socket) -> list[tuple[bytes, tuple]]:
    """Every datagram waiting on a non-blocking socket."""
    got = []
    while True:
        try:
            got.append(sock.recvfrom(2048))
        except BlockingIOError:
            return got


def metric(srv: Server, name: str) -> float:
    status, body = srv.get("/metrics")
    assert status == 200
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M)
    assert m, "no %s in /metrics" % name
    return float(m.group(1))


def server_rtp_port(call: Call, timeout: float = 10) -> int:
    """The server's RTP port, as the caller's pjsua2 prints it once media is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"^MEDIA remote 127\.0\.0\.1:(\d+)", call.pj.log.read_text(errors="replace"), re.M)
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    raise AssertionError("no MEDIA remote line:\n" + call.pj.log.read_text(errors="replace")[-3000:])


def test_injected_audio_and_digits_from_another_source_are_dropped(server_factory, audio, tmp_path):
    cfg = as_campaign(documented_flow("Example: press 1 to sign"), slug="belgium", helpline="")
    cfg = cfg.replace("seconds = 2", "seconds = 1", 1)
    files = {"greeting.wav": audio.greeting, "story.wav": audio.story}
    srv = server_factory("strict-a", cfg, files=files)

    caller = Call(srv, "+32470000901", audio.quiet, tmp_path)
    caller.at_step("story")
    # The server has learnt the caller's source (the caller sends RTP from the answer on).
    caller.wait_for(r"caller's RTP source learnt", timeout=10)
    rtp_port = server_rtp_port(caller)
    # The telephone-event payload types pjsua2 may have offered (the server answers with the
    # offer's): a "1" goes out on each; the server ignores the types it did not negotiate.
    event_types = (96, 97, 101, 120, 121)
    attack_started = time.monotonic()

    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind((INTRUDER_IP, 0))
    intruder.setblocking(False)
    try:
        # 8 s (the story, the count and into the menu) of in-sequence audio every 10 ms, and
        # a "1" (RFC 4733 event 1: start, continuation, three end packets) every 300 ms.
        ssrc, seq, ts = random.randrange(1, 2**32), random.randrange(0, 2**16), random.randrange(0, 2**32)
        tone = bytes([0x10, 0x90] * (FRAME_BYTES // 2))
        sent = 0
        back: list = []
        deadline = attack_started + 8.0
        next_digit = attack_started
        while time.monotonic() < deadline:
            # µ-law and A-law alike, whichever the call negotiated (the bytes are loud in both).
            intruder.sendto(rtp_packet(8 if sent % 2 else 0, seq, ts, ssrc, tone), ("127.0.0.1", rtp_port))
            seq, ts, sent = seq + 1, ts + FRAME_BYTES, sent + 1
            if time.monotonic() >= next_digit:
                next_digit += 0.3
                for te in event_types:
                    for k, (flags, dur) in enumerate([(0x0A, 160), (0x0A, 320), (0x8A, 480),
                                                      (0x8A, 480), (0x8A, 480)]):
                        body = struct.pack("!BBH", 1, flags, dur)
                        intruder.sendto(rtp_packet(te, seq, ts, ssrc, body, marker=(k == 0)),
                                        ("127.0.0.1", rtp_port))
                        seq, sent = seq + 1, sent + 1
                    ts += 480
            back += drain(intruder)
            time.sleep(0.01)
        back += drain(intruder)
        assert sent > 500

        # The real caller pressed nothing: the menu runs out and the call ends unsigned.
        caller.wait_for(r"call ended .*outcome=\w+", timeout=60)
        ended = time.monotonic()
        r = caller.pj.wait()
        assert r.confirmed, r.summary()
        log = caller.log()
        assert "result=Counted" not in log, log[-3000:]
        assert "DTMF" not in log, "a digit reached the flow:\n" + log[-3000:]
        assert srv.counts("belgium") == (0, 0)
        assert srv.query("SELECT COUNT(*) FROM signatures") == [(0,)]
        assert back == [], "the server sent %d packets to the intruder" % len(back)
        # The server counted what it dropped.
        assert metric(srv, "belteken_rtp_foreign_packets_total") >= sent * 0.9
        assert INTRUDER_IP not in log, "an address in the log"

        # And the caller heard the prompts throughout, the attack included: the menu prompt
        # ("press 1 to sign") is said three times after the attack began.
        heard = wavs.read_wav(caller.heard)
        assert heard.voiced()[0] >= 3.0, heard.summary()
        attack_at_s = heard.seconds - (ended - attack_started)
        windows = heard.windows()
        start = max(0, int(attack_at_s * 50))
        voiced_after = sum(1 for w in windows[start:] if w > 300) / 50
        assert voiced_after >= 2.0, "%.2f s voiced after the attack began; %s" % (voiced_after, heard.summary())
    finally:
        intruder.close()


def _sdp(ip: str, port: int) -> bytes:
    sid = random.randrange(1, 2**31)
    lines = ["v=0", "o=- %d %d IN IP4 %s" % (sid, sid, ip), "s=-", "c=IN IP4 %s" % ip, "t=0 0",
             "m=audio %d RTP/AVP 0 101" % port, "a=rtpmap:0 PCMU/8000",
             "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def _in_dialog(raw: peers.RawSip, invite: bytes, ok: peers.SipResponse, method: str, cseq: int) -> bytes:
    """ACK (for the 2xx) or BYE in the INVITE's dialog, in a transaction of its own."""
    head = invite.split(b"\r\n\r\n")[0].decode().split("\r\n")
    keep = {}
    for line in head[1:]:
        keep.setdefault(line.split(":", 1)[0].strip().lower(), line)
    ruri = head[0].split(" ")[1]
    branch = "z9hG4bK" + "".join(random.choice("abcdef0123456789") for _ in range(12))
    msg = ["%s %s SIP/2.0" % (method, ruri),
           "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (raw.port, branch),
           "Max-Forwards: 70", keep["from"], "To: " + (ok.header("to") or ""), keep["call-id"],
           "CSeq: %d %s" % (cseq, method), "Content-Length: 0"]
    return ("\r\n".join(msg) + "\r\n\r\n").encode()


def test_sdp_naming_a_third_party_gets_no_rtp(server_factory, tmp_path):
    srv = server_factory("strict-b", campaign_toml())  # no trunks: a caller from anywhere

    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind((THIRD_PARTY_IP, 0))
    victim.setblocking(False)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the real caller's media
    rtp.bind(("127.0.0.1", 0))
    rtp.setblocking(False)
    raw = peers.RawSip(srv.sip_port)
    peers.note_caller("+32470000902")
    try:
        invite = raw.request("INVITE", srv.uri(), from_user="+32470000902",
                             body=_sdp(THIRD_PARTY_IP, victim.getsockname()[1]),
                             content_type="application/sdp")
        responses = raw.transact(invite, timeout=10)
        ok = responses[-1] if responses else None
        assert ok is not None and ok.status == 200, [r.status for r in responses]
        raw.send(_in_dialog(raw, invite, ok, "ACK", 1))
        m = re.search(rb"m=audio (\d+) ", ok.body)
        assert m, ok.body
        server_rtp = ("127.0.0.1", int(m.group(1)))

        # Two seconds of the call with nothing from the caller: the server plays its greeting
        # to no one (a third party named in SDP is no one's media address).
        reflected = []
        quiet_until = time.monotonic() + 2.0
        while time.monotonic() < quiet_until:
            reflected += drain(victim)
            time.sleep(0.02)
        assert reflected == [], "%d RTP packets reflected at the third party" % len(reflected)
        assert drain(rtp) == []

        # The real caller's RTP arrives (from 127.0.0.1, not the SDP's address): the server
        # learns it and the call's audio flows there, and still never to the third party.
        ssrc, seq, ts = random.randrange(1, 2**32), random.randrange(0, 2**16), random.randrange(0, 2**32)
        silence = bytes([0xFF] * FRAME_BYTES)
        received: list = []
        deadline = time.monotonic() + 5.0
        next_send = time.monotonic()
        while time.monotonic() < deadline and len(received) < 50:
            if time.monotonic() >= next_send:
                rtp.sendto(rtp_packet(0, seq, ts, ssrc, silence), server_rtp)
                seq, ts = seq + 1, ts + FRAME_BYTES
                next_send += 0.02
            received += drain(rtp)
            reflected += drain(victim)
            time.sleep(0.005)
        assert len(received) >= 50, "%d RTP packets reached the caller" % len(received)
        assert all(addr == server_rtp for _, addr in received)
        assert all(data[1] & 0x7F == 0 for data, _ in received), "PCMU"
        assert reflected == [], "%d RTP packets reflected at the third party" % len(reflected)

        bye = _in_dialog(raw, invite, ok, "BYE", 2)
        finals = raw.transact(bye, timeout=5)
        assert finals and finals[-1].status == 200, [r.status for r in finals]
        reflected += drain(victim)
        assert reflected == []
    finally:
        raw.close()
        rtp.close()
        victim.close()


def test_a_trunks_media_server_gets_rtp_before_sending_any(server_factory):
    """A configured trunk's SDP is trusted: its media server (at another address than its
    signalling) gets the call's audio at once, and the inbound side still latches."""
    did = "+3220000000"
    cfg = campaign_toml(extra='dids = ["%s"]\n' % did) + """
[[trunk]]
name = "carrier"
mode = "static"
trusted = ["%s/32"]
""" % INTRUDER_IP  # here 127.0.0.2 is the provider's signalling
    srv = server_factory("strict-trunk", cfg)
    media_server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media_server.bind(("127.0.0.4", 0))
    media_server.setblocking(False)
    raw = peers.RawSipAt(srv.sip_port, INTRUDER_IP)
    peers.note_caller("+32470000903")
    try:
        invite = raw.request("INVITE", "sip:%s@127.0.0.1:%d" % (did, srv.sip_port), from_user="+32470000903",
                             body=_sdp("127.0.0.4", media_server.getsockname()[1]),
                             content_type="application/sdp")
        responses = raw.transact(invite, timeout=10)
        ok = responses[-1] if responses else None
        assert ok is not None and ok.status == 200, [r.status for r in responses]
        raw.send(_in_dialog(raw, invite, ok, "ACK", 1))
        received: list = []
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and len(received) < 25:
            received += drain(media_server)
            time.sleep(0.02)
        assert len(received) >= 25, "%d RTP packets reached the trunk's media server" % len(received)
        bye = _in_dialog(raw, invite, ok, "BYE", 2)
        finals = raw.transact(bye, timeout=5)
        assert finals and finals[-1].status == 200, [r.status for r in finals]
    finally:
        raw.close()
        media_server.close()
