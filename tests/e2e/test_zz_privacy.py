"""Runs last (by name): no caller number used by any test, in any notation, reached a server's
log or database files (belteken.db, -wal, -shm). The numbers are those the test callers called
from (pjsua2, baresip), the ones Kamailio asserted, and every number hand-made SIP text carried
as a caller (From, P-Asserted-Identity: peers.note_sip_text)."""
from __future__ import annotations

from pathlib import Path

import peers
from server import Server


def notations(number: str) -> list[str]:
    digits = "".join(ch for ch in number if ch.isdigit())
    out = {number, digits}
    if digits.startswith("32") and len(digits) >= 10:  # a Belgian number: +32 470 00 00 01
        sub = digits[2:]  # 470000001
        spaced = "%s %s %s %s" % (sub[:3], sub[3:5], sub[5:7], sub[7:])
        out |= {sub, "0" + sub, "0032" + sub, spaced, "0" + spaced, "+32 " + spaced}
    return sorted(out)


def test_notations_cover_the_usual_spellings():
    n = notations("+32470000001")
    for want in ("+32470000001", "32470000001", "0470000001", "470000001", "0470 00 00 01"):
        assert want in n, n


def test_numbers_in_hand_made_sip_are_noted():
    before = set(peers.CALLERS_USED)
    msg = ("INVITE sip:+3220000000@127.0.0.1 SIP/2.0\r\n"
           "f: <sip:%2B32470009991@127.0.0.1>;tag=a\r\n"
           "P-Asserted-Identity: <sip:+32-470-00.99.92@127.0.0.2>, <tel:0470009993>\r\n"
           "To: <sip:+3220000000@127.0.0.1>\r\nContact: <sip:user1@127.0.0.1>\r\n\r\n")
    try:
        peers.note_sip_text(msg.encode())
        added = peers.CALLERS_USED - before
        assert added == {"+32470009991", "+32470009992", "0470009993"}, added
    finally:
        peers.CALLERS_USED.difference_update(peers.CALLERS_USED - before)


def test_no_caller_number_in_any_log_or_database():
    servers = [s for s in Server.all if s.proc is not None]
    assert servers, "no server ran"
    assert peers.CALLERS_USED, "no test call noted its caller number"
    leaks = []
    for s in servers:
        files = [s.log] + [Path(str(s.db) + suffix) for suffix in ("", "-wal", "-shm")]
        for f in files:
            if not f.exists():
                continue
            data = f.read_bytes()
            for number in sorted(peers.CALLERS_USED):
                for n in notations(number):
                    i = data.find(n.encode())
                    if i >= 0:
                        leaks.append("%s: %r near %r" % (f, n, data[max(0, i - 120):i + 60]))
    assert not leaks, "\n".join(leaks)
