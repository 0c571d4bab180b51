"""RFC 4475 torture messages, each sent byte for byte to the real binary over UDP: the answer
is the one the RFC gives (a table below, with the section), a message that wants no answer (a
response) gets none, and OPTIONS gets 200 after every one. Then the request checks past the
parser: an SDP offer inside multipart/mixed (RFC 5621), a Contact that is no SIP URI, a
malformed SDP body (400), an offer with nothing acceptable (488), an unknown Content-Type (415
with Accept) and an unknown Require (420 with Unsupported)."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

import peers
from server import Server, campaign_toml

TORTURE = Path(__file__).resolve().parents[2] / "crates" / "sip" / "tests" / "rfc4475"

# file stem -> the answers the RFC allows (first is ours); () for "no answer".
EXPECTED: dict[str, tuple[int, ...]] = {
    # 3.1.1 valid: answered as any request of its kind is (no campaign "user": 404; a To tag
    # for no dialog: 481; REGISTER and MESSAGE: 405, we are no registrar; unknown method: 501)
    "valid-3.1.1.1-wsinv": (481,),
    "valid-3.1.1.2-intmeth": (501,),
    "valid-3.1.1.3-esc01": (404,),
    "valid-3.1.1.4-escnull": (405,),
    "valid-3.1.1.5-esc02": (501,),
    "valid-3.1.1.6-lwsdisp": (200,),
    "valid-3.1.1.7-longreq": (404,),
    "valid-3.1.1.8-dblreq": (405,),
    "valid-3.1.1.9-semiuri": (200,),
    "valid-3.1.1.10-transports": (200,),
    "valid-3.1.1.11-mpart01": (405,),
    "valid-3.1.1.12-unreason": (),
    "valid-3.1.1.13-noreason": (),
    # 3.1.2 invalid
    "invalid-3.1.2.1-badinv01": (400,),
    "invalid-3.1.2.2-clerr": (400,),
    "invalid-3.1.2.3-ncl": (400,),
    "invalid-3.1.2.4-scalar02": (400,),
    "invalid-3.1.2.5-scalarlg": (),
    "invalid-3.1.2.6-quotbal": (400,),
    "invalid-3.1.2.7-ltgtruri": (400,),
    "invalid-3.1.2.8-lwsruri": (400,),
    "invalid-3.1.2.9-lwsstart": (400,),
    "invalid-3.1.2.10-trws": (400,),
    "invalid-3.1.2.11-escruri": (400,),
    # the RFC would rather the Date were ignored when it does not matter, as here
    "invalid-3.1.2.12-baddate": (404, 400),
    "invalid-3.1.2.13-regbadct": (400,),
    "invalid-3.1.2.14-badaspec": (400,),
    "invalid-3.1.2.15-baddn": (400,),
    "invalid-3.1.2.16-badvers": (505,),
    "invalid-3.1.2.17-mismatch01": (400,),
    "invalid-3.1.2.18-mismatch02": (501, 400),
    "invalid-3.1.2.19-bigcode": (),
    # 3.2 transaction layer: 400, or the RFC 2543 transaction identifier
    "transaction-3.2.1-badbranch": (200, 400),
    # 3.3 application layer
    "app-3.3.1-insuf": (400,),
    "app-3.3.2-unkscm": (416,),
    "app-3.3.3-novelsc": (416, 404),
    "app-3.3.4-unksm2": (405, 400),
    "app-3.3.5-bext01": (420,),
    "app-3.3.6-invut": (415,),
    "app-3.3.7-regaut01": (405,),
    "app-3.3.8-multi01": (400,),
    "app-3.3.9-mcl01": (400,),
    "app-3.3.10-bcast": (),
    "app-3.3.11-zeromf": (200,),
    "app-3.3.12-cparam01": (405,),
    "app-3.3.13-cparam02": (405,),
    "app-3.3.14-regescrt": (405,),
    "app-3.3.15-sdp01": (406,),
    # 3.4 RFC 2543 syntax: taken; no campaign "UserB": 404
    "compat-3.4.1-inv2543": (404,),
    # our own: junk without a Via (dropped); a 63 KB header bomb, cut at the stack's 8 KiB
    # receive buffer, so that no answer can name its Call-ID and CSeq
    "invalid-x-binary-junk": (),
    "invalid-x-header-bomb": (),
}

# The largest UDP payload over IPv4; every message here fits (the header bomb is 63 KB).
UDP_MAX_BYTES = 65507


@pytest.fixture(scope="module")
def srv(server_factory) -> Server:
    # Every refusal counts against the source; the corpus must not get the sender banned.
    return server_factory("rfc4475", campaign_toml() + "\n[sip]\nban_after_bad_requests = 1000\n")


def _identity(data: bytes) -> tuple[str | None, str | None]:
    """(Call-ID, CSeq) of a message, compact forms included."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="replace")
    call_id = cseq = None
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        if name in ("call-id", "i") and call_id is None:
            call_id = value.strip()
        elif name == "cseq" and cseq is None:
            cseq = " ".join(value.split())
    return call_id, cseq


def _answers(raw: peers.RawSipAt, data: bytes, want_final: bool) -> list[peers.SipResponse]:
    """Responses to `data`: until the first final one, or for a short while when none is due."""
    call_id, cseq = _identity(data)

    def ours(r: peers.SipResponse) -> bool:
        rc = r.header("call-id")
        if call_id is not None:
            return rc == call_id
        return " ".join((r.header("cseq") or "").split()) == cseq

    raw.send(data)
    got = raw.collect(3.0 if want_final else 1.0, until=lambda r: ours(r) and r.status >= 200)
    return [r for r in got if ours(r)]


def _options_ok(raw: peers.RawSipAt, srv: Server) -> bool:
    resps = raw.transact(raw.request("OPTIONS", srv.uri()), timeout=3)
    return bool(resps) and resps[-1].status == 200


def test_every_rfc4475_message_gets_the_rfcs_answer(srv):
    files = {f.stem: f for f in TORTURE.glob("*.sip")}
    assert set(files) == set(EXPECTED), set(files) ^ set(EXPECTED)
    raw = peers.RawSipAt(srv.sip_port, "127.0.0.9")
    report, wrong = [], []
    try:
        for stem, allowed in EXPECTED.items():
            data = files[stem].read_bytes()
            assert len(data) <= UDP_MAX_BYTES, stem
            resps = _answers(raw, data, want_final=bool(allowed))
            finals = [r.status for r in resps if r.status >= 200]
            got = finals[0] if finals else None
            ok = (got in allowed) if allowed else not resps
            options = _options_ok(raw, srv)
            report.append(f"{stem}: {[r.status for r in resps]} (RFC: {allowed or 'none'}) OPTIONS after: "
                          f"{'200' if options else 'NO 200'}")
            if not ok or not options:
                wrong.append(report[-1])
    finally:
        raw.close()
    assert srv.alive() and "panicked" not in srv.log_text(), "\n".join(report)
    assert not wrong, "\n".join(wrong) + "\n\nall:\n" + "\n".join(report) + "\n" + srv.log_text()[-3000:]


def test_responses_echo_the_request_and_carry_what_their_code_needs(srv):
    """501 names the methods we take (Allow), 420 the options we lack (Unsupported), 415 the
    types we read (Accept); each keeps the request's Call-ID and CSeq."""
    raw = peers.RawSipAt(srv.sip_port, "127.0.0.9")
    try:
        for stem, header, needle in [
            ("valid-3.1.1.2-intmeth", "allow", "INVITE"),
            ("app-3.3.5-bext01", "unsupported", "nothingSupportsThis"),
            ("app-3.3.6-invut", "accept", "application/sdp"),
        ]:
            data = (TORTURE / f"{stem}.sip").read_bytes()
            resps = [r for r in _answers(raw, data, True) if r.status >= 200]
            assert resps, stem
            value = resps[0].header(header) or ""
            assert needle in value, (stem, resps[0].raw)
            call_id, cseq = _identity(data)
            assert resps[0].header("call-id") == call_id, (stem, resps[0].raw)
            assert " ".join((resps[0].header("cseq") or "").split()) == cseq, (stem, resps[0].raw)
        bext = [r for r in _answers(raw, (TORTURE / "app-3.3.5-bext01.sip").read_bytes(), True)
                if r.status >= 200][0]
        # Proxy-Require is a proxy's business; a UAS lists only Require's tags.
        assert "noProxiesSupportThis" not in (bext.header("unsupported") or ""), bext.raw
    finally:
        raw.close()


# ---------------------------------------------------------------------------------------------
# request checks past the parser


def _invite(raw: peers.RawSip, srv: Server, body: bytes, content_type: str | None,
            extra: list[str] | None = None, contact: str | None = None) -> bytes:
    msg = raw.request("INVITE", srv.uri(), from_user="tortured", body=body, content_type=content_type,
                      extra=extra)
    if contact is not None:
        msg = msg.replace(f"Contact: <sip:tortured@127.0.0.1:{raw.port}>".encode(), f"Contact: {contact}".encode())
    return msg


def _final(raw: peers.RawSip, msg: bytes, timeout: float = 8.0) -> peers.SipResponse | None:
    finals = [r for r in raw.transact(msg, timeout=timeout) if r.status >= 200]
    return finals[0] if finals else None


def _hang_up(raw: peers.RawSip, invite: bytes, ok: peers.SipResponse) -> None:
    """ACKs a 200 and sends BYE, so the call ends at once."""
    lines = invite.split(b"\r\n\r\n")[0].decode().split("\r\n")
    keep = {l.split(":", 1)[0].strip().lower(): l for l in lines[1:]}
    to = "To: " + (ok.header("to") or "")
    target = (ok.header("contact") or "").strip("<>").split(">")[0]
    for method, cseq in (("ACK", 1), ("BYE", 2)):
        msg = [f"{method} {target} SIP/2.0",
               f"Via: SIP/2.0/UDP 127.0.0.1:{raw.port};branch=z9hG4bK{method.lower()}{time.monotonic_ns()};rport",
               "Max-Forwards: 70", keep["from"], to, keep["call-id"], f"CSeq: {cseq} {method}",
               "Content-Length: 0"]
        raw.send(("\r\n".join(msg) + "\r\n\r\n").encode())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        data = raw.recv(0.2)
        r = peers.parse_response(data) if data else None
        if r is not None and r.status == 200 and "BYE" in (r.header("cseq") or ""):
            return


@pytest.fixture
def raw(srv):
    r = peers.RawSip(srv.sip_port)
    yield r
    r.close()


def test_an_offer_inside_multipart_mixed_is_taken(srv, raw):
    sdp = peers.sdp_offer(41002, [(0, "PCMU/8000")])
    boundary = "unique-boundary-1"
    body = (f"--{boundary}\r\nContent-Type: application/sdp\r\n\r\n").encode() + sdp + \
        (f"\r\n--{boundary}\r\nContent-Type: application/resource-lists+xml\r\n"
         f"Content-Disposition: recipient-list\r\n\r\n<resource-lists/>\r\n--{boundary}--\r\n").encode()
    invite = _invite(raw, srv, body, f'multipart/mixed;boundary="{boundary}"')
    final = _final(raw, invite)
    assert final is not None and final.status == 200, (final.raw if final else None, srv.log_text()[-2000:])
    assert b"m=audio" in final.body and b"RTP/AVP 0" in final.body, final.raw
    _hang_up(raw, invite, final)


def test_a_contact_that_is_no_sip_uri_is_not_refused(srv, raw):
    invite = _invite(raw, srv, peers.sdp_offer(41004, [(0, "PCMU/8000")]), "application/sdp",
                     contact="<tel:+3220000001>")
    final = _final(raw, invite)
    assert final is not None and final.status == 200, (final.raw if final else None, srv.log_text()[-2000:])
    _hang_up(raw, invite, final)


def test_a_malformed_sdp_body_is_a_bad_request(srv, raw):
    body = b"v=0\r\nthis is not sdp\r\nm=audio many RTP/AVP 0\r\n"
    final = _final(raw, _invite(raw, srv, body, "application/sdp"))
    assert final is not None and final.status == 400, final.raw if final else None


def test_an_offer_with_no_codec_we_take_gets_488(srv, raw):
    body = peers.sdp_offer(41006, [(96, "opus/48000/2"), (9, "G722/8000")])
    final = _final(raw, _invite(raw, srv, body, "application/sdp"))
    assert final is not None and final.status == 488, final.raw if final else None


def test_an_unknown_content_type_gets_415_with_accept(srv, raw):
    final = _final(raw, _invite(raw, srv, b"<audio/>", "application/x-unheard-of"))
    assert final is not None and final.status == 415, final.raw if final else None
    assert "application/sdp" in (final.header("accept") or ""), final.raw


def test_an_unknown_require_gets_420_with_unsupported(srv, raw):
    body = peers.sdp_offer(41008, [(0, "PCMU/8000")])
    final = _final(raw, _invite(raw, srv, body, "application/sdp", extra=["Require: foo-bar, 100rel"]))
    assert final is not None and final.status == 420, final.raw if final else None
    assert final.header("unsupported") == "foo-bar", final.raw
