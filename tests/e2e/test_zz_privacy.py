"""Runs last (by name): no caller number used by any test, in any notation, reached a server's
log or database files (belteken.db, -wal, -shm)."""
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
