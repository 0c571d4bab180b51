"""Kamailio (the Debian package) as a SIP trunk provider for the end-to-end tests: a registrar
(usrloc + registrar, digest auth against one static password, MD5 or SHA-256, qop=auth with
nonce-count checks, optionally one stale=true challenge) that routes INVITEs for DIDs to the
registered belteken with lookup("location"), adding a P-Asserted-Identity as a provider does.

Kamailio listens on 127.0.0.2 (UDP and TCP), so that belteken can tell it from callers on
127.0.0.1. Started in the foreground, logging to a file; stopped with SIGTERM."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import peers

KAMAILIO_IP = "127.0.0.2"

CONFIG = r"""#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:{ip}:{port}
listen=tcp:{ip}:{port}
{tls_listen}alias="{ip}:{port}"
tcp_accept_aliases=yes
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
{tls_module}modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 10)
modparam("registrar", "max_expires", 3600)
modparam("auth", "secret", "belteken-e2e-secret")
modparam("auth", "qop", "auth")
modparam("auth", "nonce_count", 1)
modparam("auth", "algorithm", "{algorithm}")
modparam("pv", "shvset", "stale_sent=i:0")

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route() || is_method("ACK")) {{ t_relay(); }}
        else {{ sl_send_reply("404", "Not here"); }}
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("REGISTER")) {{
        $var(rc) = pv_www_authenticate("$td", "{password}", "0");
        if ($var(rc) < 0) {{
            if ($var(rc) == -5) {{
                xlog("L_NOTICE", "REGCHALLENGE $tU from $si:$sp proto=$proto\n");
                www_challenge("$td", "1");
            }} else if ($var(rc) == -4 || $var(rc) == -6) {{
                xlog("L_NOTICE", "REGSTALE $tU rc=$var(rc)\n");
                www_challenge("$td", "17");
            }} else {{
                xlog("L_NOTICE", "REGFAIL $tU rc=$var(rc)\n");
                www_challenge("$td", "1");
            }}
            exit;
        }}
        if ({stale_once} && $shv(stale_sent) == 0) {{
            $shv(stale_sent) = 1;
            xlog("L_NOTICE", "REGSTALE-FORCED $tU\n");
            www_challenge("$td", "17");
            exit;
        }}
        xlog("L_NOTICE", "REGOK $tU expires=$hdr(Expires) proto=$proto\n");
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (is_method("INVITE")) {{
        record_route();
        append_hf("P-Asserted-Identity: <sip:{asserted}@{ip}>\r\n");
        $rU = "{aor}";
        if (!lookup("location")) {{
            xlog("L_NOTICE", "NOTREGISTERED\n");
            sl_send_reply("404", "Not registered");
            exit;
        }}
        xlog("L_NOTICE", "ROUTED INVITE to $ru\n");
        t_relay();
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"""


TLS_CFG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = {key}
certificate = {cert}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


def available() -> bool:
    return shutil.which("kamailio") is not None


def module_dir() -> Path | None:
    """Where this machine's Kamailio keeps its modules: what dpkg says the package installed,
    else the first multiarch (or plain) library directory that has them."""
    try:
        p = subprocess.run(["dpkg", "-L", "kamailio"], capture_output=True, text=True, timeout=30)
        for line in p.stdout.splitlines():
            if line.endswith("/kamailio/modules/tm.so"):
                return Path(line).parent
    except (OSError, subprocess.TimeoutExpired):
        pass
    for tm in sorted(Path("/usr/lib").glob("*/kamailio/modules/tm.so")) + \
            [Path("/usr/lib/kamailio/modules/tm.so"), Path("/usr/local/lib64/kamailio/modules/tm.so")]:
        if tm.exists():
            return tm.parent
    return None


def tls_available() -> bool:
    d = module_dir() if available() else None
    return d is not None and (d / "tls.so").exists()


class Kamailio:
    """A registrar on 127.0.0.2:port. aor: the user belteken registers as; asserted: the caller
    number it puts in P-Asserted-Identity of INVITEs it routes."""

    def __init__(self, workdir: Path, *, password: str, aor: str, asserted: str,
                 algorithm: str = "MD5", stale_once: bool = False, tls=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = peers.free_port(udp=True, tcp=True)
        self.ip = KAMAILIO_IP
        self.tls_port = peers.free_port(udp=False, tcp=True) if tls is not None else None
        tls_listen = tls_module = ""
        if tls is not None:
            (self.dir / "tls.cfg").write_text(TLS_CFG.format(key=tls.key, cert=tls.cert))
            tls_listen = f"enable_tls=yes\nlisten=tls:{self.ip}:{self.tls_port}\n"
            tls_module = f'loadmodule "tls.so"\nmodparam("tls", "config", "{self.dir / "tls.cfg"}")\n'
        peers.note_caller(asserted)  # it asserts this number in the INVITEs it routes
        cfg = CONFIG.format(ip=self.ip, port=self.port, password=password, aor=aor, asserted=asserted,
                            algorithm=algorithm, stale_once="1" if stale_once else "0",
                            tls_listen=tls_listen, tls_module=tls_module)
        self.cfg = self.dir / "kamailio.cfg"
        self.cfg.write_text(cfg)
        check = subprocess.run(["kamailio", "-c", "-f", str(self.cfg)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError("kamailio config check failed:\n" + check.stdout[-3000:])
        self.run = self.dir / "run"
        self.run.mkdir(exist_ok=True)
        self.logpath = self.dir / "kamailio.log"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self._logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            ["kamailio", "-f", str(self.cfg), "-DD", "-E", "-Y", str(self.run),
             "-P", str(self.run / "k.pid"), "-m", "32", "-M", "4"],
            stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kamailio exited:\n" + self.log()[-3000:])
            if self._options_ok():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("kamailio did not answer OPTIONS:\n" + self.log()[-3000:])

    def _options_ok(self) -> bool:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", 0))
            lp = s.getsockname()[1]
            msg = (f"OPTIONS sip:{self.ip}:{self.port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bKkamready{time.monotonic_ns()}\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\n"
                   f"To: <sip:{self.ip}:{self.port}>\r\nCall-ID: kamready{time.monotonic_ns()}\r\n"
                   "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
            s.sendto(msg, (self.ip, self.port))
            s.settimeout(0.5)
            data, _ = s.recvfrom(4096)
            return data.startswith(b"SIP/2.0 200")
        except OSError:
            return False
        finally:
            s.close()

    def log(self) -> str:
        return self.logpath.read_text(errors="replace") if self.logpath.exists() else ""

    def count(self, marker: str) -> int:
        return self.log().count(marker)

    def wait_for(self, marker: str, count: int = 1, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(marker) >= count:
                return True
            time.sleep(0.2)
        return self.count(marker) >= count

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None:
            self._logf.close()
        self.proc = None

    @property
    def uri_host(self) -> str:
        return f"{self.ip}:{self.port}"
