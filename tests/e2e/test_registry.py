"""The signature registry through the real binary: nothing a caller was told is lost when the
server is killed mid-burst, an operator erases a signature by number and exports the campaign
(no numbers in the export), and the same calls sign on the PostgreSQL backend."""
from __future__ import annotations

import csv
import io
import os
import random
import signal
import subprocess
import threading
import time
import zipfile

import pytest

import peers
from server import Server, binary, campaign_toml

PROMPTS = {"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"}


def _calls_in_background(srv: Server, audio, tmp_path, callers: list[str], stagger: float):
    results: dict[str, object] = {}

    def one(caller: str):
        results[caller] = peers.pj_call(srv.uri(), caller=caller, seconds=30, play=audio.speak,
                                        log=tmp_path / ("pj-%s.log" % caller[-4:]))

    threads = []
    for c in callers:
        t = threading.Thread(target=one, args=(c,), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(stagger)
    return threads, results


def _cli(srv: Server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd = [str(binary()), *args, "--config", str(srv.config), "--data-dir", str(srv.data)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, cwd=srv.dir)


def test_sigkill_during_a_burst_loses_no_counted_signature(server_factory, audio, tmp_path):
    cfg = campaign_toml(ring_seconds=0, prompts=PROMPTS)
    s = server_factory("sigkill", cfg, files=audio.prompts)
    callers = ["+3247000%04d" % (300 + i) for i in range(6)]
    threads, _ = _calls_in_background(s, audio, tmp_path, callers, stagger=0.4)
    deadline = time.monotonic() + 40
    while "result=Counted" not in s.log_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "result=Counted" in s.log_text(), s.log_text()[-3000:]
    # Kill while the burst goes on: some signatures committed, a later call still recording.
    log = s.log_text()
    while log.count("recording started") <= log.count("result=Counted") \
            and time.monotonic() < deadline:
        time.sleep(0.02)
        log = s.log_text()
    assert log.count("recording started") > log.count("result=Counted"), log[-3000:]
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(timeout=10)
    for t in threads:
        t.join(40)
    # Every signature the server counted (it logs after the commit, before the thank-you)
    # is in the database after the crash.
    counted = s.log_text().count("result=Counted")
    rows = s.query("SELECT COUNT(*) FROM signatures WHERE verified = 1")[0][0]
    assert rows >= counted >= 1, (rows, counted)
    # A restart on the same data serves the same count, from counters kept in the same
    # transactions as the rows.
    again = Server(s.dir / "again", cfg, files={k: s.dir / k for k in audio.prompts})
    again.data = s.data
    try:
        again.start()
        assert again.counts()[0] == rows
    finally:
        again.stop()


def test_operator_export_and_erase(server_factory, audio, tmp_path):
    caller = "+32470000401"
    cfg = campaign_toml(ring_seconds=0, prompts=PROMPTS)
    s = server_factory("erase", cfg, files=audio.prompts)
    try:
        r = peers.pj_call(s.uri(), caller=caller, seconds=30, play=audio.speak, log=tmp_path / "pj.log")
        assert r.confirmed, r.summary()
        assert s.wait_counts((1, 0)) == (1, 0)

        out = tmp_path / "export.zip"
        p = _cli(s, "export", "--campaign", "demo", "--out", str(out))
        assert p.returncode == 0, p.stderr
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        with zipfile.ZipFile(out) as z:
            names = z.namelist()
            rows = list(csv.DictReader(io.StringIO(z.read("signatures.csv").decode())))
            assert len(rows) == 1, rows
            wavs = [n for n in names if n.startswith("recordings/") and n.endswith(".wav")]
            assert len(wavs) == 1 and z.read(wavs[0])[:4] == b"RIFF", names
            blob = b"".join(z.read(n) for n in names)
        assert b"470000401" not in blob
        for forbidden in ("caller_key", "number", "phone"):
            assert forbidden not in rows[0], rows[0]

        p = _cli(s, "signature", "erase", "--campaign", "demo", "--number", "-", stdin="0470 00 04 01\n")
        assert p.returncode == 0, p.stderr
        assert "470000401" not in p.stdout + p.stderr
        # The live count follows the store within a couple of seconds.
        assert s.wait_counts((0, 0), timeout=10) == (0, 0)
        assert s.query("SELECT COUNT(*) FROM signatures")[0][0] == 0
        p = _cli(s, "audit", "--campaign", "demo")
        assert p.returncode == 0 and "eras" in p.stdout.lower(), p.stdout + p.stderr
    finally:
        s.stop()


def test_postgres_backend_signs(server_factory, audio, tmp_path, pg_url):
    url = pg_url
    slug = "pg%06d" % random.randrange(10**6)
    cfg = '[store]\nurl = "%s"\n\n' % url + campaign_toml(slug=slug, ring_seconds=0, prompts=PROMPTS)
    s = server_factory("pg", cfg, files=audio.prompts)
    try:
        r = peers.pj_call(s.uri(slug), caller="+32470000501", seconds=30, play=audio.speak,
                          log=tmp_path / "pj.log")
        assert r.confirmed, r.summary()
        assert s.wait_counts((1, 0), slug=slug) == (1, 0), s.log_text()[-2000:]
        assert not s.db.exists() or s.query("SELECT COUNT(*) FROM signatures")[0][0] == 0
    finally:
        s.stop()
