"""Caller identity from text the line does not control, through the real binary: a From user
that is not ASCII (an emoji) gets an answer and the line goes on signing; a number typed with
narrow no-break spaces (as documents group digits) erases its signature from the command line
and from the console, and no digit of it reaches standard error, standard output or the log."""
from __future__ import annotations

import re
import subprocess
import urllib.parse

import peers
from server import Server, binary, campaign_toml
from test_console import PASSWORD, _login_http, _request

PROMPTS = {"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"}
NNBSP = "\u202f"  # NARROW NO-BREAK SPACE


def _cli(srv: Server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd = [str(binary()), *args, "--config", str(srv.config), "--data-dir", str(srv.data)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, cwd=srv.dir)


def _grouped(national: str) -> str:
    """0470000902 -> '04 70 00 09 02' (digits in pairs, as French typography groups them) with
    narrow no-break spaces: the first one falls inside the first three bytes."""
    return NNBSP.join(national[i:i + 2] for i in range(0, len(national), 2))


def _no_digits_of(number: str, text: str) -> bool:
    """True when text holds no run of the number's last seven digits, in any grouping."""
    tail = re.sub(r"\D", "", number)[-7:]
    return tail not in re.sub(r"\D", "", text)


def _sign(srv: Server, audio, tmp_path, caller: str, want: tuple[int, int]) -> None:
    r = peers.pj_call(srv.uri(), caller=caller, seconds=30, play=audio.speak,
                      log=tmp_path / ("pj-%s.log" % caller[-4:]))
    assert r.confirmed, r.summary()
    assert srv.wait_counts(want, timeout=10) == want, srv.log_text()[-3000:]


def _ack_and_bye(raw: peers.RawSip, invite: bytes, ok: peers.SipResponse) -> None:
    """Ends a call a raw INVITE set up: ACK for the 200, then BYE (answered or not)."""
    lines = invite.split(b"\r\n\r\n")[0].decode().split("\r\n")
    keep = {}
    for l in lines[1:]:
        keep.setdefault(l.split(":", 1)[0].strip().lower(), l)
    contact = ok.header("contact") or ""
    target = contact[contact.find("<") + 1:contact.find(">")] if "<" in contact else lines[0].split(" ")[1]
    to = "To: " + (ok.header("to") or "")
    cseq = int(keep["cseq"].split(":", 1)[1].split()[0])
    for method, n in (("ACK", cseq), ("BYE", cseq + 1)):
        via = "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s%d;rport" % (raw.port, method.lower(), n)
        msg = ["%s %s SIP/2.0" % (method, target), via, "Max-Forwards: 70", keep["from"], to,
               keep["call-id"], "CSeq: %d %s" % (n, method), "Content-Length: 0"]
        data = ("\r\n".join(msg) + "\r\n\r\n").encode()
        if method == "ACK":
            raw.send(data)
        else:
            raw.transact(data, timeout=5)


def test_emoji_from_gets_an_answer_and_the_line_goes_on(server_factory, audio, tmp_path):
    s = server_factory("caller-utf8", campaign_toml(ring_seconds=0, prompts=PROMPTS),
                       files=audio.prompts)
    raw = peers.RawSip(s.sip_port)
    try:
        offer = peers.sdp_offer(peers.free_port(span=2, even=True), [(0, "PCMU/8000")])
        for user in ("\U0001F600", "0\u00e9\U0001F600", "4" + NNBSP + "70"):
            invite = raw.request("INVITE", s.uri(), from_user=user, body=offer,
                                 content_type="application/sdp")
            resps = raw.transact(invite, timeout=8)
            finals = [r for r in resps if r.status >= 200]
            assert finals, "no final answer to an INVITE from %r:\n%s" % (
                user, s.log_text()[-3000:])
            if finals[0].status == 200:
                _ack_and_bye(raw, invite, finals[0])
        resps = raw.transact(raw.request("OPTIONS", s.uri()), timeout=5)
        assert resps and resps[-1].status == 200, s.log_text()[-3000:]
        assert "panicked" not in s.log_text(), s.log_text()[-3000:]
    finally:
        raw.close()
    # A normal caller still signs.
    _sign(s, audio, tmp_path, "+32470000901", (1, 0))
    assert s.alive()


def test_erase_with_narrow_no_break_spaces_on_the_command_line(server_factory, audio, tmp_path):
    caller = "+32470000902"
    s = server_factory("erase-nnbsp", campaign_toml(ring_seconds=0, prompts=PROMPTS),
                       files=audio.prompts)
    _sign(s, audio, tmp_path, caller, (1, 0))
    typed = _grouped("0470000902")
    for number_arg, stdin in (("-", typed + "\n"), (typed, None)):
        p = _cli(s, "signature", "erase", "--campaign", "demo", "--number", number_arg, stdin=stdin)
        assert "panicked" not in p.stderr, "the erase command panicked"
        assert _no_digits_of(caller, p.stdout + p.stderr), "the number reached the output"
        assert p.returncode == 0, "exit %d: %s" % (p.returncode, re.sub(r"\d", "#", p.stderr))
    assert s.wait_counts((0, 0), timeout=10) == (0, 0)
    assert s.query("SELECT COUNT(*) FROM signatures")[0][0] == 0
    assert _no_digits_of(caller, s.log_text())


def test_erase_with_narrow_no_break_spaces_in_the_console(server_factory, audio, tmp_path):
    caller = "+32470000903"
    s = server_factory("console-erase-nnbsp", campaign_toml(ring_seconds=0, prompts=PROMPTS),
                       files=audio.prompts)
    _sign(s, audio, tmp_path, caller, (1, 0))
    p = _cli(s, "admin", "create", "--user", "ada", "--role", "admin", "--password-stdin",
             stdin=PASSWORD + "\n")
    assert p.returncode == 0, p.stderr
    cookie, csrf = _login_http(s, "ada")
    form = urllib.parse.urlencode({"csrf": csrf, "campaign": "demo", "region": "BE",
                                   "number": _grouped("0470000903")})
    status, _, body = _request(s, "POST", "/console/erase", form, {"Cookie": cookie})
    assert status == 200, (status, body[:500])
    assert b"were erased" in body
    assert s.wait_counts((0, 0), timeout=10) == (0, 0)
    # The server is alive and said nothing of the number, nor of a panic.
    status, _ = s.get("/healthz")
    assert status == 200
    assert "panicked" not in s.log_text(), s.log_text()[-3000:]
    assert _no_digits_of(caller, s.log_text())
