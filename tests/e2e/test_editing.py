"""End to end: a campaign edited while the line runs, with `belteken campaign` on the store.

One server (`srv`) runs throughout; the tests run in order and build on each other. An
uploaded story (a 660 Hz tone made with sox, as stereo 44.1 kHz FLAC so that it goes through
the whole conversion) is heard by the next real pjsua2 caller, whose signature carries the new
flow version; a title and goal set with the command line show on the API and the page within
seconds; bad uploads are refused in words and change nothing; a reset brings the file back."""
from __future__ import annotations

import csv
import io
import math
import os
import random
import re
import secrets
import zipfile
import subprocess
import threading
import time
from pathlib import Path

import pytest

import peers
import wavs
from conftest import STORY_S
from server import Server, binary, campaign_toml

BEFORE_CALLER = "+32470000201"
AFTER_CALLER = "+32470000202"
PG_CALLER = "+32470000203"
DURING_CALLER = "+32470000204"
CALL_LIMIT_S = 40
TONE_HZ = 660
PICKUP_S = 5.0  # an edit made on the store is in effect on a running server within this


def cli(srv: Server, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(binary()), "campaign", args[0], "--config", str(srv.config),
           "--data-dir", str(srv.data), *args[1:]]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120, cwd=srv.dir, stdin=subprocess.DEVNULL)
    if ok:
        assert p.returncode == 0, f"{cmd}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def show(srv: Server) -> dict[str, str]:
    out = cli(srv, "show").stdout
    m = re.search(r"flow version: ([0-9a-f]+)", out)
    e = re.search(r"edit version: (\d+)", out)
    assert m and e, out
    return {"flow": m.group(1), "edit": e.group(1), "text": out}


def ctx(srv: Server, *parts) -> str:
    out = [p.summary() if hasattr(p, "summary") else str(p) for p in parts]
    return "\n".join(out) + "\n--- server log (tail) ---\n" + srv.log_text()[-3000:]


def tone_seconds(w: wavs.Wav, hz: float, win_ms: int = 100, min_share: float = 0.6) -> float:
    """Seconds of `w` in windows whose energy is mostly one sine at `hz` (Goertzel)."""
    n = w.rate * win_ms // 1000
    k = 2 * math.cos(2 * math.pi * hz / w.rate)
    found = 0
    for i in range(0, len(w.samples) - n + 1, n):
        seg = w.samples[i:i + n]
        energy = sum(x * x for x in seg)
        if energy / n < 300.0 ** 2:
            continue
        s1 = s2 = 0.0
        for x in seg:
            s1, s2 = x + k * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - k * s1 * s2
        # A pure sine over n samples: power = (A n / 2)^2, energy = A^2 n / 2.
        if power / (energy * n / 2) > min_share:
            found += 1
    return found * win_ms / 1000


def last_flow_version(srv: Server) -> str | None:
    rows = srv.query("SELECT s.flow_version FROM signatures s JOIN campaigns c ON c.id = s.campaign_id "
                     "WHERE c.slug = 'demo' ORDER BY s.id DESC LIMIT 1")
    return rows[0][0] if rows else None


def wait_for(what: str, check, timeout: float = PICKUP_S, srv: Server | None = None):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}" + (ctx(srv) if srv else ""))
        time.sleep(0.1)


@pytest.fixture(scope="module")
def srv(server_factory, audio):
    cfg = campaign_toml(ring_seconds=1, silence_seconds=1, record_max_seconds=10,
                        prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"})
    return server_factory("editing", cfg, files=audio.prompts)


@pytest.fixture(scope="module")
def state() -> dict:
    return {}


def call(srv: Server, audio, tmp_path: Path, caller: str) -> tuple[peers.PjResult, wavs.Wav]:
    rec = tmp_path / "heard.wav"
    r = peers.pj_call(srv.uri(), caller=caller, seconds=CALL_LIMIT_S, play=audio.speak, rec=rec,
                      log=tmp_path / "pjcall.log")
    assert r.confirmed, ctx(srv, r)
    return r, wavs.read_wav(rec)


def test_the_file_story_is_heard_before_any_upload(srv, audio, tmp_path, state):
    before = show(srv)
    assert before["edit"] == "0" and "(as in the file)" in before["text"], before["text"]
    assert re.search(r"clip story \(en\): [\d.]+ s, from the file", before["text"]), before["text"]
    state["file_flow"] = before["flow"]
    r, heard = call(srv, audio, tmp_path, BEFORE_CALLER)
    assert srv.wait_counts((1, 0)) == (1, 0), ctx(srv, r)
    # The spoken story has no long stretch of a pure 660 Hz tone.
    assert tone_seconds(heard, TONE_HZ) < 0.5, heard.summary()
    assert last_flow_version(srv) == before["flow"]


def test_an_uploaded_story_is_heard_by_the_next_caller(srv, audio, tmp_path, state):
    story = tmp_path / "story.flac"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(story), "synth", str(STORY_S),
                    "sine", str(TONE_HZ), "vol", "0.3"], check=True, timeout=30)
    p = cli(srv, "upload", "--clip", "story", "--lang", "en", str(story))
    m = re.search(r"replaced: ([\d.]+) s; flow version ([0-9a-f]+)", p.stdout)
    assert m, p.stdout
    assert abs(float(m.group(1)) - STORY_S) < 0.2, p.stdout
    new_flow = m.group(2)
    assert new_flow != state["file_flow"]
    state["upload_flow"] = new_flow
    after = show(srv)
    assert after["flow"] == new_flow and after["edit"] != "0", after["text"]
    assert re.search(r"clip story \(en\): 3\.\d s, uploaded", after["text"]), after["text"]
    # The running server applies it within seconds (it says so in its log).
    wait_for("the server applies the upload",
             lambda: any("campaign edit in effect" in l and new_flow in l
                         for l in srv.log_text().splitlines()), srv=srv)

    r, heard = call(srv, audio, tmp_path, AFTER_CALLER)
    assert srv.wait_counts((2, 0)) == (2, 0), ctx(srv, r)
    # The caller heard the tone for about as long as the story lasts.
    heard_s = tone_seconds(heard, TONE_HZ)
    assert heard_s >= STORY_S - 0.6, f"{heard_s} s of {TONE_HZ} Hz; {heard.summary()}"
    # Their signature carries the flow version they heard.
    assert last_flow_version(srv) == new_flow, ctx(srv, r)
    audit = srv.query("SELECT action, detail FROM audit WHERE campaign = 'demo' AND action = 'clip_upload'")
    assert len(audit) == 1 and "story (en)" in audit[0][1], audit


@pytest.mark.parametrize("name,make,args,message", [
    ("notaudio.mp3", lambda p: p.write_text("this is not audio, only text " * 50),
     ("--clip", "story", "--lang", "en"), "not an audio file"),
    ("silent.wav", lambda p: wavs.silence(2, p), ("--clip", "story", "--lang", "en"), "silent"),
    ("tone.wav", None, ("--clip", "no-such-clip", "--lang", "en"), 'no clip "no-such-clip"'),
    ("tone.wav", None, ("--clip", "story", "--lang", "de"), "unknown language"),
])
def test_a_bad_upload_is_refused_and_changes_nothing(srv, tmp_path, state, name, make, args, message):
    f = tmp_path / name
    if make is None:
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", str(f), "synth", "1", "sine", "440"],
                       check=True, timeout=30)
    else:
        make(f)
    before = show(srv)
    uploads = len(srv.query("SELECT id FROM audit WHERE action = 'clip_upload'"))
    p = cli(srv, "upload", *args, str(f), ok=False)
    assert p.returncode != 0, p.stdout
    assert message in p.stderr, p.stderr
    assert "panicked" not in p.stderr, p.stderr
    after = show(srv)
    assert (after["flow"], after["edit"]) == (before["flow"], before["edit"])
    assert after["flow"] == state["upload_flow"]
    assert len(srv.query("SELECT id FROM audit WHERE action = 'clip_upload'")) == uploads


def test_title_and_goal_set_on_the_command_line_show_within_seconds(srv):
    title = "Red de bijen & de <vlinders>"
    p = cli(srv, "set", "--title", title, "--goal", "4321")
    assert "changed" in p.stdout, p.stdout
    t0 = time.monotonic()
    wait_for("the API shows the new title",
             lambda: srv.get_json("/api/campaigns/demo")[1]["title"] == title, srv=srv)
    status, page = srv.get("/c/demo")
    assert status == 200
    page = page.decode()
    assert "Red de bijen &amp; de &lt;vlinders&gt;" in page, page[:2000]
    assert "<vlinders>" not in page
    assert 'max="4321"' in page, page[:2000]
    assert time.monotonic() - t0 < PICKUP_S
    # The audio did not change with the texts.
    assert show(srv)["flow"] == srv_flow(srv)
    # Bad values are refused in words.
    bad = cli(srv, "set", "--opens", "2030-02-01", "--closes", "2030-01-01", ok=False)
    assert bad.returncode != 0 and "open before it closes" in bad.stderr, bad.stderr
    bad = cli(srv, "set", "--title", "x" * 300, ok=False)
    assert bad.returncode != 0 and "too long" in bad.stderr, bad.stderr
    assert srv.get_json("/api/campaigns/demo")[1]["title"] == title


def srv_flow(srv: Server) -> str:
    out = cli(srv, "show").stdout
    return re.search(r"flow version: ([0-9a-f]+)", out).group(1)


def test_reset_brings_back_the_file(srv, state):
    cli(srv, "reset")
    wait_for("the API shows the file's title again",
             lambda: srv.get_json("/api/campaigns/demo")[1]["title"] == "E2E test petition", srv=srv)
    s = show(srv)
    assert s["flow"] == state["file_flow"], s["text"]
    assert re.search(r"clip story \(en\): [\d.]+ s, from the file", s["text"]), s["text"]
    actions = [a for (a,) in srv.query("SELECT action FROM audit WHERE campaign = 'demo' ORDER BY id")]
    assert actions[-1] == "campaign_reset", actions
    assert "campaign_edit" in actions and "clip_upload" in actions, actions
    assert srv.alive()



def test_a_call_in_progress_keeps_the_story_it_started_with(srv, audio, tmp_path, state):
    """Uploaded while a caller's phone rings: that call still hears the file's story and signs
    under the file's flow version; the upload is for the next call."""
    assert show(srv)["flow"] == state["file_flow"]
    story = tmp_path / "story.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(story), "synth", str(STORY_S),
                    "sine", str(TONE_HZ), "vol", "0.3"], check=True, timeout=30)
    accepted = srv.log_text().count("INVITE accepted")
    rec = tmp_path / "heard.wav"
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("r", peers.pj_call(
        srv.uri(), caller=DURING_CALLER, seconds=CALL_LIMIT_S, play=audio.speak, rec=rec,
        log=tmp_path / "pjcall.log")))
    t.start()
    try:
        wait_for("the call is accepted", lambda: srv.log_text().count("INVITE accepted") > accepted,
                 timeout=10, srv=srv)
        t0 = time.monotonic()
        p = cli(srv, "upload", "--clip", "story", "--lang", "en", str(story))
        new_flow = re.search(r"flow version ([0-9a-f]+)", p.stdout).group(1)
        assert new_flow != state["file_flow"]
        wait_for("the server applies the upload",
                 lambda: any("campaign edit in effect" in l and new_flow in l
                             for l in srv.log_text().splitlines()), srv=srv)
        # Swapped while the call rings or greets (1 s ring + 2 s greeting): before its story.
        swapped_after = time.monotonic() - t0
        assert t.is_alive() and swapped_after < 2.8, f"swapped {swapped_after:.1f} s after the answer"
    finally:
        t.join(CALL_LIMIT_S + 30)
    r = result.get("r")
    assert r is not None and r.confirmed, ctx(srv, *(x for x in [r] if x))
    assert srv.wait_counts((3, 0)) == (3, 0), ctx(srv, r)
    heard = wavs.read_wav(rec)
    assert tone_seconds(heard, TONE_HZ) < 0.5, heard.summary()
    assert last_flow_version(srv) == state["file_flow"], ctx(srv, r)
    assert show(srv)["flow"] == new_flow
    cli(srv, "reset")


def test_two_nodes_on_postgres_follow_an_upload_made_on_the_command_line(server_factory, audio,
                                                                          tmp_path, pg_url):
    url = pg_url
    # The nodes of one store share its secret key (a node with another key refuses to start).
    shared_key = {"BELTEKEN_SECRET": secrets.token_hex(32)}
    slug = "ed%06d" % random.randrange(10**6)
    cfg = '[store]\nurl = "%s"\n\n' % url + campaign_toml(
        slug=slug, ring_seconds=1, silence_seconds=1, record_max_seconds=10,
        prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"})
    a = server_factory("edit-pg-a", cfg, files=audio.prompts, env=shared_key)
    b = server_factory("edit-pg-b", cfg, files=audio.prompts, env=shared_key)
    story = tmp_path / "story.ogg"
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", str(story), "synth", str(STORY_S),
                    "sine", str(TONE_HZ), "vol", "0.3"], check=True, timeout=30)
    p = cli(a, "upload", "--campaign", slug, "--clip", "story", "--lang", "en", str(story))
    new_flow = re.search(r"flow version ([0-9a-f]+)", p.stdout).group(1)
    title = "Gedeelde campagne"
    cli(a, "set", "--campaign", slug, "--title", title)
    # Both nodes follow within seconds: the texts on the API, the audio in their logs.
    for node in (a, b):
        wait_for("the node shows the new title",
                 lambda: node.get_json(f"/api/campaigns/{slug}")[1]["title"] == title, srv=node)
        wait_for("the node applies the upload",
                 lambda: any("campaign edit in effect" in l and new_flow in l
                             for l in node.log_text().splitlines()), srv=node)
    # A call to the other node hears the new story and signs under its flow version.
    rec = tmp_path / "heard.wav"
    r = peers.pj_call(b.uri(slug), caller=PG_CALLER, seconds=CALL_LIMIT_S, play=audio.speak,
                      rec=rec, log=tmp_path / "pjcall.log")
    assert r.confirmed, ctx(b, r)
    assert b.wait_counts((1, 0), slug=slug) == (1, 0), ctx(b, r)
    heard = wavs.read_wav(rec)
    assert tone_seconds(heard, TONE_HZ) >= STORY_S - 0.6, heard.summary()
    out = tmp_path / "export.zip"
    subprocess.run([str(binary()), "export", "--config", str(a.config), "--data-dir", str(a.data),
                    "--campaign", slug, "--out", str(out)], check=True, timeout=120,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with zipfile.ZipFile(out) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("signatures.csv").decode())))
    assert [r["flow_version"] for r in rows] == [new_flow], rows
