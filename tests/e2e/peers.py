"""Real SIP peers for the end-to-end tests: a pjsua2 caller (pjcall.py in a subprocess), a baresip
caller driven over ctrl_tcp, a raw UDP SIP helper for hand-made and malformed datagrams, and
free-port picking. Every wait here is bounded. Traffic goes to 127.0.0.1 only."""
from __future__ import annotations

import json
import re
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"

# ---------------------------------------------------------------------------------------------
# ports

_handed_out: set[int] = set()


def _free(port: int, udp: bool, tcp: bool) -> bool:
    kinds = ([socket.SOCK_DGRAM] if udp else []) + ([socket.SOCK_STREAM] if tcp else [])
    socks = []
    try:
        for kind in kinds:
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind((LOOPBACK, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(udp: bool = True, tcp: bool = False, span: int = 1, even: bool = False) -> int:
    """A port P on 127.0.0.1 such that P..P+span-1 are free for the given protocols and were not
    handed out before in this process. span=2 for RTP+RTCP or baresip's SIP (+1 for TLS)."""
    rng = random.Random()
    for _ in range(2000):
        p = rng.randrange(20000, 60000 - span)
        if even and p % 2:
            p += 1
        ports = range(p, p + span)
        if any(q in _handed_out for q in ports):
            continue
        if all(_free(q, udp, tcp) for q in ports):
            _handed_out.update(ports)
            return p
    raise RuntimeError("no free port found")


# ---------------------------------------------------------------------------------------------
# pjsua2 caller


@dataclass
class PjResult:
    returncode: int
    output: str
    result: dict = field(default_factory=dict)

    @property
    def last_status(self):
        return self.result.get("last_status")

    @property
    def confirmed(self) -> bool:
        return bool(self.result.get("confirmed"))

    @property
    def callstates(self) -> list[str]:
        return [l for l in self.output.splitlines() if l.startswith("CALLSTATE")]

    def summary(self) -> str:
        return "pjcall rc=%s RESULT=%s\n%s" % (self.returncode, self.result, "\n".join(self.callstates))


def _pjcall_cmd(**kw) -> list[str]:
    cmd = [sys.executable, str(HERE / "pjcall.py")]
    for k, v in kw.items():
        if v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        cmd += [flag] if v is True else [flag, str(v)]
    return cmd


def _parse_pj(rc: int, out: str) -> PjResult:
    res = PjResult(rc, out)
    # PJSIP's own log can land on the same line as our RESULT: find it anywhere in a line.
    for m in re.finditer(r"RESULT (\{[^\n]*?\})(?=\s|$)", out):
        try:
            res.result = json.loads(m.group(1))
        except json.JSONDecodeError:
            continue
    return res


# Every caller number any test used, so that the privacy test (run last) can look for them all.
CALLERS_USED: set[str] = set()


def note_caller(user: str) -> None:
    if any(ch.isdigit() for ch in user):
        CALLERS_USED.add(user)


# Headers that carry who calls (compact From is "f"), and a number in their URI.
_CALLER_HEADERS = {"from", "f", "p-asserted-identity", "p-preferred-identity", "remote-party-id"}
_URI_NUMBER = re.compile(r"(?:sips?|tel):(\+|%2[bB])?([0-9][0-9().\-]*)")
# Fewest digits of what the privacy test treats as a phone number in hand-made SIP text (user
# parts such as "user1" are not numbers, and their digits alone would match anywhere).
_MIN_NUMBER_DIGITS = 8


def note_sip_text(data: bytes) -> None:
    """Notes every number a hand-made SIP message carries as a caller (From,
    P-Asserted-Identity, ...), for the privacy test."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="replace")
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if not sep or name.strip().lower() not in _CALLER_HEADERS:
            continue
        for plus, number in _URI_NUMBER.findall(value):
            digits = "".join(ch for ch in number if ch.isdigit())
            if len(digits) >= _MIN_NUMBER_DIGITS:
                CALLERS_USED.add(("+" if plus else "") + digits)


def pj_call(uri: str, *, caller: str = "pjcall", seconds: float = 30, play=None, rec=None,
            dtmf: str | None = None, hangup_after_ms: int | None = None,
            dtmf_plan: str | None = None, linger_ms: int | None = None,
            from_uri: str | None = None, display: str | None = None,
            log: Path | None = None) -> PjResult:
    """Place one call with pjsua2 and wait for it to end (bounded by `seconds` + a margin)."""
    note_caller(caller)
    cmd = _pjcall_cmd(uri=uri, caller=caller, from_uri=from_uri, display=display, seconds=seconds, play=play,
                      rec=rec, dtmf=dtmf, hangup_after_ms=hangup_after_ms,
                      dtmf_plan=dtmf_plan, linger_ms=linger_ms,
                      port=free_port(), rtp_port=free_port(span=2, even=True))
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=seconds + (linger_ms or 0) / 1000 + 20)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        out, rc = out + "\nTIMEOUT: pjcall did not exit", -1
    if log is not None:
        Path(log).write_text(out)
    return _parse_pj(rc, out)


class PjInteractive:
    """A pjsua2 call whose keys the test presses while it runs (`press`), e.g. when the
    server's log says which step the caller is in."""

    def __init__(self, uri: str, *, caller: str, play, seconds: float = 60, rec=None,
                 linger_ms: int | None = None, log: Path):
        note_caller(caller)
        self.seconds = seconds + (linger_ms or 0) / 1000
        self.log = Path(log)
        cmd = _pjcall_cmd(uri=uri, caller=caller, seconds=seconds, play=play, rec=rec,
                          dtmf_stdin=True, linger_ms=linger_ms,
                          port=free_port(), rtp_port=free_port(span=2, even=True))
        self._out = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self._out,
                                     stderr=subprocess.STDOUT, text=True)

    def press(self, digits: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(digits + "\n")
        self.proc.stdin.flush()

    def speak(self) -> None:
        """Plays the --play file from its beginning, now."""
        self.press("!play")

    def wait(self) -> PjResult:
        try:
            rc = self.proc.wait(timeout=self.seconds + 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=10)
        self._out.close()
        return _parse_pj(rc, self.log.read_text(errors="replace"))


class PjListener:
    """pjsua2 callee (auto-answer), used to check the other drivers without the server."""

    def __init__(self, *, play, rec, seconds: float = 20, answer_after_ms: int = 0,
                 user: str = "pjuas", log: Path | None = None):
        self.port = free_port()
        self.user = user
        self.seconds = seconds
        self.log = log
        cmd = _pjcall_cmd(listen=True, caller=user, seconds=seconds, play=play, rec=rec,
                          answer_after_ms=answer_after_ms or None, port=self.port,
                          rtp_port=free_port(span=2, even=True))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # wait for READY (bounded)
        deadline = time.monotonic() + 10
        self._lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self._lines.append(line)
            if line.startswith("READY"):
                return
        raise RuntimeError("pjcall --listen did not start:\n" + "".join(self._lines))

    @property
    def uri(self) -> str:
        return "sip:%s@127.0.0.1:%d" % (self.user, self.port)

    def wait(self) -> PjResult:
        try:
            rest, _ = self.proc.communicate(timeout=self.seconds + 20)
            rc = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate(timeout=10)
            rc = -1
        out = "".join(self._lines) + (rest or "")
        if self.log is not None:
            Path(self.log).write_text(out)
        return _parse_pj(rc, out)


# ---------------------------------------------------------------------------------------------
# baresip caller


BARESIP_MODULES = "/usr/lib/baresip/modules"


@dataclass
class BaresipResult:
    events: list[dict]
    closed: dict | None
    established: bool
    log: str
    recordings: list[Path]

    def summary(self) -> str:
        return "baresip events:\n" + "\n".join(
            "%s %s" % (e.get("type"), e.get("param", "")) for e in self.events)


class Baresip:
    """One baresip process with its own config dir, driven over ctrl_tcp (netstring JSON).

    user: the account's user part, which is the caller ID in From (e.g. +32470000002).
    play: WAV it sends (aufile ends the call when the file ends, so it is padded with 60 s).
    auto_answer: answer incoming calls (to use it as a callee)."""

    def __init__(self, workdir: Path, *, user: str, play: Path, auto_answer: bool = False):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.recdir = self.dir / "rec"
        self.recdir.mkdir(exist_ok=True)
        self.user = user
        note_caller(user)
        self.sip_port = free_port(udp=True, tcp=True, span=2)  # +1 is taken for TLS
        self.ctrl_port = free_port(udp=False, tcp=True)
        self.rtp_base = free_port(span=20, even=True)
        padded = self.dir / "source.wav"
        subprocess.run(["sox", str(play), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                        str(padded), "pad", "0", "60"], check=True, timeout=30)
        (self.dir / "config").write_text(f"""poll_method\t\tepoll
net_interface\t\t127.0.0.1
sip_listen\t\t127.0.0.1:{self.sip_port}
audio_player\t\taubridge,nullplay
audio_source\t\taufile,{padded}
audio_alert\t\taubridge,nullplay
ausrc_srate\t\t8000
ausrc_channels\t\t1
auplay_srate\t\t8000
auplay_channels\t\t1
rtp_ports\t\t{self.rtp_base}-{self.rtp_base + 19}
module_path\t\t{BARESIP_MODULES}
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
module_app\t\taccount.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
ctrl_tcp_listen\t\t127.0.0.1:{self.ctrl_port}
snd_path\t\t{self.recdir}
statmode_default\toff
""")
        am = ";answermode=auto" if auto_answer else ""
        (self.dir / "accounts").write_text(f"<sip:{user}@127.0.0.1:{self.sip_port}>;regint=0{am}\n")
        (self.dir / "contacts").write_text("")
        self.logpath = self.dir / "baresip.log"
        self._logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(["baresip", "-f", str(self.dir)], stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=subprocess.STDOUT)
        self.events: list[dict] = []
        self._buf = b""
        self.sock = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                self.sock = socket.create_connection((LOOPBACK, self.ctrl_port), timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        if self.sock is None:
            self.stop()
            raise RuntimeError("baresip did not start; log:\n" + self.logpath.read_text(errors="replace"))

    @property
    def uri(self) -> str:
        return "sip:%s@127.0.0.1:%d" % (self.user, self.sip_port)

    # -- ctrl_tcp ------------------------------------------------------------------------------
    def command(self, cmd: str, params: str = "") -> None:
        js = json.dumps({"command": cmd, "params": params, "token": cmd}).encode()
        self.sock.sendall(b"%d:%s," % (len(js), js))

    def _read_messages(self, timeout: float) -> list[dict]:
        self.sock.settimeout(max(timeout, 0.01))
        try:
            data = self.sock.recv(65536)
            if not data:
                return []
            self._buf += data
        except socket.timeout:
            pass
        except OSError:
            return []
        out = []
        while True:
            colon = self._buf.find(b":")
            if colon < 0:
                break
            try:
                n = int(self._buf[:colon])
            except ValueError:  # out of sync: drop the buffer
                self._buf = b""
                break
            if len(self._buf) < colon + 1 + n + 1:
                break
            payload = self._buf[colon + 1:colon + 1 + n]
            self._buf = self._buf[colon + 1 + n + 1:]
            try:
                msg = json.loads(payload)
            except ValueError:
                continue
            out.append(msg)
        for m in out:
            if m.get("event"):
                self.events.append(m)
        return out

    def wait_event(self, types: set[str], timeout: float) -> dict | None:
        for e in self.events:
            if e.get("type") in types:
                return e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self._read_messages(deadline - time.monotonic()):
                if m.get("event") and m.get("type") in types:
                    return m
            if self.proc.poll() is not None:
                return None
        return None

    # -- calls ---------------------------------------------------------------------------------
    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def hangup(self) -> None:
        self.command("hangup")

    def result(self) -> BaresipResult:
        closed = next((e for e in self.events if e.get("type") == "CALL_CLOSED"), None)
        est = any(e.get("type") == "CALL_ESTABLISHED" for e in self.events)
        return BaresipResult(self.events, closed, est, self.logpath.read_text(errors="replace"),
                             sorted(self.recdir.glob("dump-*-dec.wav")))

    def stop(self) -> None:
        if self.proc.poll() is None and self.sock is not None:
            try:
                self.command("quit")
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.sock is not None:
            self.sock.close()
        self._logf.close()


def baresip_call(workdir: Path, uri: str, *, user: str, play: Path, seconds: float = 30,
                 hangup_after_s: float | None = None) -> BaresipResult:
    """Dial uri from a fresh baresip whose account user is `user`, wait for CALL_CLOSED (the far
    end hangs up) or hang up after hangup_after_s / seconds, then quit baresip."""
    note_caller(user)
    b = Baresip(workdir, user=user, play=play)
    try:
        b.dial(uri)
        limit = seconds if hangup_after_s is None else hangup_after_s
        if b.wait_event({"CALL_CLOSED"}, limit) is None:
            b.hangup()
            b.wait_event({"CALL_CLOSED"}, 5)
        time.sleep(0.3)  # let sndfile close its WAVs
    finally:
        b.stop()
    return b.result()


# ---------------------------------------------------------------------------------------------
# raw UDP SIP


@dataclass
class SipResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        compact = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
                   "c": "content-type"}
        for k, v in self.headers:
            k = k.lower()
            if compact.get(k, k) == name:
                return v
        return None


def parse_response(data: bytes) -> SipResponse | None:
    """Parses a SIP response; None if it is not one."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", errors="replace").split("\r\n")
    first = lines[0].split(" ", 2)
    if len(first) < 2 or not first[0].startswith("SIP/2.0") or not first[1].isdigit():
        return None
    headers = []
    for l in lines[1:]:
        k, sep, v = l.partition(":")
        if sep:
            headers.append((k.strip(), v.strip()))
    return SipResponse(int(first[1]), first[2] if len(first) > 2 else "", headers, body, data)


def _tok(n=10) -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


class RawSip:
    """A UDP socket on 127.0.0.1 for hand-made SIP requests and junk datagrams."""

    def __init__(self, server_port: int):
        self.dest = (LOOPBACK, server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def send(self, data: bytes) -> None:
        note_sip_text(data)
        self.sock.sendto(data, self.dest)

    def recv(self, timeout: float) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65535)
            return data
        except socket.timeout:
            return None

    def request(self, method: str, ruri: str, *, from_user: str = "rawsip", call_id: str | None = None,
                from_tag: str | None = None, to_tag: str | None = None, cseq: int = 1,
                branch: str | None = None, body: bytes = b"", content_type: str | None = None,
                extra: list[str] | None = None) -> bytes:
        branch = branch or "z9hG4bK" + _tok()
        call_id = call_id or _tok(16) + "@127.0.0.1"
        from_tag = from_tag or _tok(8)
        to = "<%s>" % ruri + (";tag=%s" % to_tag if to_tag else "")
        hdr = [
            "%s %s SIP/2.0" % (method, ruri),
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (self.port, branch),
            "Max-Forwards: 70",
            "From: <sip:%s@127.0.0.1:%d>;tag=%s" % (from_user, self.port, from_tag),
            "To: %s" % to,
            "Call-ID: %s" % call_id,
            "CSeq: %d %s" % (cseq, method),
            "Contact: <sip:%s@127.0.0.1:%d>" % (from_user, self.port),
            "User-Agent: belteken-e2e-raw",
        ] + (extra or [])
        if content_type:
            hdr.append("Content-Type: %s" % content_type)
        hdr.append("Content-Length: %d" % len(body))
        return ("\r\n".join(hdr) + "\r\n\r\n").encode() + body

    def transact(self, msg: bytes, timeout: float = 5.0, retransmit: bool = True) -> list[SipResponse]:
        """Sends a request, retransmits it like a UDP client would (T1=0.5 s doubling) until a
        response arrives, and collects responses until a final one (>= 200) or timeout.
        Non-2xx finals to an INVITE are ACKed."""
        out: list[SipResponse] = []
        deadline = time.monotonic() + timeout
        self.send(msg)
        next_tx, interval = time.monotonic() + 0.5, 0.5
        while time.monotonic() < deadline:
            wait = min(deadline, next_tx) - time.monotonic()
            data = self.recv(max(wait, 0.01))
            if data is None:
                if retransmit and not out and time.monotonic() >= next_tx:
                    self.send(msg)
                    interval = min(interval * 2, 4)
                    next_tx = time.monotonic() + interval
                continue
            r = parse_response(data)
            if r is None:
                continue
            out.append(r)
            if r.status >= 200:
                if msg.startswith(b"INVITE ") and r.status >= 300:
                    self.send(self.ack_for(msg, r))
                break
        return out

    @staticmethod
    def ack_for(invite: bytes, resp: SipResponse) -> bytes:
        """The hop-by-hop ACK for a non-2xx final response (RFC 3261 17.1.1.3)."""
        lines = invite.split(b"\r\n\r\n")[0].decode().split("\r\n")
        ruri = lines[0].split(" ")[1]
        keep = {}
        for l in lines[1:]:
            k = l.split(":", 1)[0].strip().lower()
            keep.setdefault(k, l)
        cseq_no = keep["cseq"].split(":", 1)[1].split()[0]
        to = "To: " + (resp.header("to") or keep["to"].split(":", 1)[1].strip())
        ack = ["ACK %s SIP/2.0" % ruri, keep["via"], "Max-Forwards: 70", keep["from"], to,
               keep["call-id"], "CSeq: %s ACK" % cseq_no, "Content-Length: 0"]
        return ("\r\n".join(ack) + "\r\n\r\n").encode()


def sdp_offer(port: int, payloads: list[tuple[int, str | None]], session_id: int | None = None) -> bytes:
    """An SDP offer for one audio stream on 127.0.0.1:port; payloads = [(pt, 'opus/48000/2'), ...]."""
    sid = session_id or random.randrange(1, 2**31)
    lines = ["v=0", "o=- %d %d IN IP4 127.0.0.1" % (sid, sid), "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
             "m=audio %d RTP/AVP %s" % (port, " ".join(str(pt) for pt, _ in payloads))]
    for pt, rtpmap in payloads:
        if rtpmap:
            lines.append("a=rtpmap:%d %s" % (pt, rtpmap))
    lines.append("a=sendrecv")
    return ("\r\n".join(lines) + "\r\n").encode()


def which(prog: str) -> bool:
    return shutil.which(prog) is not None


def under_ci() -> bool:
    """Whether the tests run in CI (CI set to anything but "", "0" or "false")."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def require(available: bool, what: str) -> None:
    """Call at the start of a test (or fixture) that needs a peer: nothing when it is there.
    When it is missing, the test fails under CI, which must run every test, and is skipped only
    when run by hand."""
    if available:
        return
    if under_ci():
        pytest.fail(f"missing: {what} (CI must run this test)", pytrace=False)
    pytest.skip(f"missing: {what}")


def env_with(**kw) -> dict:
    e = dict(os.environ)
    e.update({k: str(v) for k, v in kw.items()})
    return e


# ---------------------------------------------------------------------------------------------
# raw UDP SIP from another loopback address (trunk tests: 127.0.0.2 plays the provider)


class RawSipAt(RawSip):
    """RawSip bound to another loopback address (127.0.0.0/8), so that the server sees a
    different source. Via still names 127.0.0.1; the server answers to `received`/`rport`."""

    def __init__(self, server_port: int, bind_ip: str):
        assert bind_ip.startswith("127."), "loopback only"
        self.dest = (LOOPBACK, server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind_ip, 0))
        self.port = self.sock.getsockname()[1]

    def collect(self, timeout: float, until=None) -> list[SipResponse]:
        """Responses arriving within timeout; stops early when until(resp) is true."""
        out: list[SipResponse] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.recv(max(deadline - time.monotonic(), 0.01))
            if data is None:
                continue
            r = parse_response(data)
            if r is None:
                continue
            out.append(r)
            if until is not None and until(r):
                break
        return out

    @staticmethod
    def cancel_for(invite: bytes) -> bytes:
        """The CANCEL for an INVITE (same Via branch, Call-ID, From, To, CSeq number)."""
        lines = invite.split(b"\r\n\r\n")[0].decode().split("\r\n")
        ruri = lines[0].split(" ")[1]
        keep = {}
        for l in lines[1:]:
            k = l.split(":", 1)[0].strip().lower()
            keep.setdefault(k, l)
        cseq_no = keep["cseq"].split(":", 1)[1].split()[0]
        cancel = ["CANCEL %s SIP/2.0" % ruri, keep["via"], "Max-Forwards: 70", keep["from"], keep["to"],
                  keep["call-id"], "CSeq: %s CANCEL" % cseq_no, "Content-Length: 0"]
        return ("\r\n".join(cancel) + "\r\n\r\n").encode()
