"""The campaign console through the real binary and a headless Chromium: an admin made with
`belteken admin create` signs in, reviews signatures made by real pjsua2 calls with the
keyboard (the state changes in the store), bulk-invalidates with a preview and undoes it, and
sees the funnel of those calls; pages without a session, forms without their CSRF token and a
reviewer at an admin action are refused by the real server."""
from __future__ import annotations

import csv
import http.client
import io
import subprocess
import time
import urllib.parse
import zipfile

import pytest

import browser
import peers
from peers import LOOPBACK
from server import Server, binary, campaign_toml

PROMPTS = {"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"}
PASSWORD = "correct horse battery staple"
CALLERS = ["+32470000611", "+33612000612"]



@pytest.fixture(autouse=True)
def _needs_browser():
    peers.require(browser.available(), "chromium and chromedriver")


def _cli(srv: Server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd = [str(binary()), *args, "--config", str(srv.config), "--data-dir", str(srv.data)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, cwd=srv.dir)


def _request(srv: Server, method: str, path: str, body: str | None = None,
             headers: dict | None = None) -> tuple[int, dict, bytes]:
    c = http.client.HTTPConnection(LOOPBACK, srv.http_port, timeout=10)
    try:
        h = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        headers: dict = {}
        for k, v in r.getheaders():
            k = k.lower()
            # Several Set-Cookie headers: keep them all, one per line.
            headers[k] = headers[k] + "\n" + v if k in headers and k == "set-cookie" else v
        return r.status, headers, r.read()
    finally:
        c.close()


def _login_http(srv: Server, user: str) -> tuple[str, str]:
    """Signs in over plain HTTP; returns (cookie header, csrf token)."""
    status, headers, body = _request(srv, "GET", "/console/login")
    assert status == 200
    login_cookie = headers["set-cookie"].split(";")[0]
    token = body.decode().split('name="csrf" value="')[1].split('"')[0]
    form = urllib.parse.urlencode({"csrf": token, "user": user, "password": PASSWORD})
    status, headers, _ = _request(srv, "POST", "/console/login", form, {"Cookie": login_cookie})
    assert status == 303, status
    cookie = next(c for c in headers["set-cookie"].split("\n")
                  if c.startswith("belteken_console=")).split(";")[0]
    status, _, body = _request(srv, "GET", "/console", headers={"Cookie": cookie})
    assert status == 200
    return cookie, body.decode().split('name="csrf" value="')[1].split('"')[0]


def _prompt_ms(srv: Server, wav) -> float:
    """A prompt's length as callers hear it, from `belteken audio check`."""
    p = subprocess.run([str(binary()), "audio", "check", str(wav)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    line = next(l for l in p.stdout.splitlines() if "as a prompt" in l)
    return float(line.split(":", 1)[1].split(" s,")[0]) * 1000


def _states(srv: Server) -> dict[int, str]:
    return dict(srv.query("SELECT id, state FROM signatures ORDER BY id"))


def _wait(pred, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def line(server_factory, audio, tmp_path_factory):
    """A server with two real signatures and an admin and a reviewer account."""
    s = server_factory("console", campaign_toml(ring_seconds=0, prompts=PROMPTS), files=audio.prompts)
    logs = tmp_path_factory.mktemp("console-pj")
    for i, caller in enumerate(CALLERS):
        r = peers.pj_call(s.uri(), caller=caller, seconds=30, play=audio.speak, log=logs / f"pj{i}.log")
        assert r.confirmed, r.summary()
    assert s.wait_counts((2, 0), timeout=10) == (2, 0), s.log_text()[-3000:]
    for user, role in (("ada", "admin"), ("rey", "reviewer")):
        p = _cli(s, "admin", "create", "--user", user, "--role", role, "--password-stdin",
                 stdin=PASSWORD + "\n")
        assert p.returncode == 0, p.stderr
    p = _cli(s, "admin", "list")
    assert "ada\tadmin" in p.stdout and "rey\treviewer" in p.stdout, p.stdout
    # A password on the command line is not even accepted.
    p = _cli(s, "admin", "create", "--user", "eve", "--password", PASSWORD)
    assert p.returncode != 0
    return s


def test_login_review_with_the_keyboard_and_bulk_invalidation(line):
    s = line
    base = f"http://{LOOPBACK}:{s.http_port}"
    ids = sorted(_states(s))
    assert len(ids) == 2 and set(_states(s).values()) == {"pending"}
    with browser.Browser() as b:
        b.get(base + "/console/review/demo")
        b.wait_for(lambda: b.url.endswith("/console/login"), what="redirect to the login page")
        b.find("#user").send_keys("ada")
        b.find("#password").send_keys("wrong password!!")
        b.find("form.login button").click()
        b.wait_for(lambda: "Wrong user name or password" in b.source(), what="refusal")
        b.find("#user").send_keys("ada")
        b.find("#password").send_keys(PASSWORD)
        b.find("form.login button").click()
        b.wait_for(lambda: b.url.rstrip("/").endswith("/console"), what="the console home")
        cookie = next(c for c in b.cookies() if c["name"] == "belteken_console")
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict", cookie
        assert cookie["path"] == "/console"
        assert "E2E test petition" in b.find("main").text

        b.get(base + "/console/review/demo")
        rows = b.find_all("table.queue tbody tr")
        assert [int(r.attr("data-id")) for r in rows] == ids
        # The recording plays from a session-protected route as audio/wav.
        kind = b.run("return fetch(arguments[0]).then(r => r.headers.get('content-type') + ' ' + r.status)",
                     f"/console/recording/demo/{ids[0]}")
        assert kind == "audio/wav 200", kind
        # v on the first row, then i on the next (the selection moves on by itself).
        b.keys("v")
        b.wait_for(lambda: b.find(f"#sig-{ids[0]} td.state").text == "valid", what="first marked valid")
        assert _wait(lambda: _states(s)[ids[0]] == "valid", "valid in the store")
        b.keys("i")
        b.wait_for(lambda: b.find(f"#sig-{ids[1]} td.state").text == "invalid", what="second marked invalid")
        assert _wait(lambda: _states(s)[ids[1]] == "invalid", "invalid in the store")
        # Going back with k and judging again.
        b.keys("kk")
        b.keys("i")
        assert _wait(lambda: _states(s)[ids[0]] == "invalid", "first now invalid")
        # The counts follow the review (invalid signatures are not counted).
        assert s.wait_counts((0, 0), timeout=10) == (0, 0)

        # Bulk: everything from Belgium back to valid, after the preview.
        b.get(base + "/console/bulk/demo")
        b.find("#f-country").send_keys("BE")
        b.find("form.filter button").click()
        b.wait_for(lambda: b.find("#preview-count").text == "1", what="preview count")
        assert set(_states(s).values()) == {"invalid"}, "a preview changes nothing"
        b.run("document.getElementById('target').value = 'valid'")
        b.find("#reason").send_keys("checked by hand")
        b.find("form.confirm button").click()
        b.wait_for(lambda: b.find("#changed").text == "1", what="bulk result")
        be_id = s.query("SELECT id FROM signatures WHERE country = 'BE'")[0][0]
        assert _states(s)[be_id] == "valid"
        b.find("#reason").send_keys("undo the test")
        b.find("main form button").click()
        b.wait_for(lambda: "went back to their previous state" in b.source(), what="undo")
        assert _states(s)[be_id] == "invalid"

        b.get(base + "/console/audit")
        log = b.find("table.audit").text
        for expected in ("console login failed", "console login", "reviewed by ada",
                         "checked by hand (by ada)", "undo the test (by ada)"):
            assert expected in log, expected

        # The funnel of the two real calls: both answered, heard the story, recorded, signed.
        def funnel_signed():
            b.get(base + "/console/funnel/demo")
            return "<th scope=\"row\">signed</th><td>2</td>" in b.source()
        b.wait_for(funnel_signed, what="funnel with both calls")
        src = b.source()
        assert "<th scope=\"row\">heard the story</th><td>2</td>" in src
        assert "Listening curve" in src and 'role="img"' in src
        rows = s.query("SELECT answered, story_completed, recorded, signed, story_heard_ms FROM call_summaries")
        assert len(rows) == 2 and all(r[:4] == (1, 1, 1, 1) for r in rows), rows
        # The story step plays the greeting and the story, heard to the end: as long as the
        # two prompts are once imported.
        story_ms = sum(_prompt_ms(s, s.dir / f) for f in ("greeting.wav", "story.wav"))
        assert all(abs(r[4] - story_ms) <= 300 for r in rows), (rows, story_ms)

        b.find("form.logout button").click()
        b.wait_for(lambda: b.url.endswith("/console/login"), what="logged out")
        b.get(base + "/console/review/demo")
        b.wait_for(lambda: b.url.endswith("/console/login"), what="session gone")


def test_review_without_javascript(line):
    """The buttons in each row judge with a page reload when scripts are off."""
    s = line
    base = f"http://{LOOPBACK}:{s.http_port}"
    target = sorted(_states(s))[0]
    before = _states(s)[target]
    want = "valid" if before != "valid" else "invalid"
    with browser.Browser(javascript=False) as b:
        b.get(base + "/console/login")
        b.find("#user").send_keys("rey")
        b.find("#password").send_keys(PASSWORD)
        b.find("form.login button").click()
        b.wait_for(lambda: b.url.rstrip("/").endswith("/console"), what="signed in")
        b.get(base + f"/console/review/demo?state={before}")
        b.find(f"#sig-{target} button[value='{want}']").click()
        assert _wait(lambda: _states(s)[target] == want, "judged without JavaScript")
        b.wait_for(lambda: f"/console/review/demo" in b.url, what="back on the queue")
    # Put it back as it was for the tests after this one.
    with browser.Browser(javascript=False) as b:
        b.get(base + "/console/login")
        b.find("#user").send_keys("rey")
        b.find("#password").send_keys(PASSWORD)
        b.find("form.login button").click()
        b.wait_for(lambda: b.url.rstrip("/").endswith("/console"), what="signed in")
        b.get(base + f"/console/review/demo?state={want}")
        b.find(f"#sig-{target} button[value='{before}']").click()
        assert _wait(lambda: _states(s)[target] == before, "judged back")


def test_refusals_on_the_real_server(line):
    s = line
    before = _states(s)
    for method, path in (("GET", "/console"), ("GET", "/console/review/demo"),
                         ("GET", "/console/recording/demo/1"), ("GET", "/console/audit"),
                         ("POST", "/console/erase"), ("POST", "/console/review/demo/1"),
                         ("GET", "/console/api/queue/demo")):
        status, headers, body = _request(s, method, path, "state=valid" if method == "POST" else None)
        assert status in (303, 401), (method, path, status)
        assert b"RIFF" not in body
        if status == 303:
            assert headers["location"] == "/console/login"
    cookie, csrf = _login_http(s, "rey")
    # A form without its CSRF token changes nothing.
    status, _, _ = _request(s, "POST", "/console/review/demo/1", "state=pending", {"Cookie": cookie})
    assert status == 403
    # A reviewer cannot reach admin actions, even with the token.
    for path, body in (("/console/bulk/demo", f"csrf={csrf}&country=BE&target=pending&reason=x"),
                       ("/console/erase", f"csrf={csrf}&campaign=demo&number=%2B32470000611"),
                       ("/console/export/demo", f"csrf={csrf}")):
        status, _, resp = _request(s, "POST", path, body, {"Cookie": cookie})
        assert status == 403, (path, status)
        assert b"PK" not in resp[:2]
    assert _states(s) == before
    assert s.query("SELECT COUNT(*) FROM signatures")[0][0] == 2
    # The API with a token made on the command line.
    p = _cli(s, "admin", "token", "create", "--user", "ada", "--label", "e2e")
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    status, _, body = _request(s, "GET", "/console/api/funnel/demo", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and b'"signed":2' in body, body
    status, _, _ = _request(s, "GET", "/console/api/funnel/demo", headers={"Authorization": "Bearer x" * 3})
    assert status == 401
    # The passwords are stored as argon2id hashes only.
    hashes = [h for (h,) in s.query("SELECT password_hash FROM console_users")]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert PASSWORD not in s.log_text()


def test_erasure_from_the_console(line):
    s = line
    cookie, csrf = _login_http(s, "ada")
    number = "0470 00 06 11"
    form = urllib.parse.urlencode({"csrf": csrf, "campaign": "demo", "number": number, "region": "BE"})
    status, _, body = _request(s, "POST", "/console/erase", form, {"Cookie": cookie})
    assert status == 200, body
    assert b"were erased" in body and b"470" not in body
    assert s.query("SELECT COUNT(*) FROM signatures WHERE country = 'BE'")[0][0] == 0
    assert "470000611" not in s.log_text() and "0470 00 06 11" not in s.log_text()
    # Export is a ZIP for an admin.
    status, headers, body = _request(s, "POST", "/console/export/demo", f"csrf={csrf}", {"Cookie": cookie})
    assert status == 200 and headers["content-type"] == "application/zip" and body[:2] == b"PK"
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("signatures.csv").decode())))
        wavs = [n for n in z.namelist() if n.startswith("recordings/")]
    assert len(rows) == s.query("SELECT COUNT(*) FROM signatures")[0][0] == 1, rows
    # Only counted signatures' recordings go in; this one was judged invalid above.
    assert rows[0]["state"] == "invalid" and rows[0]["recording"] == "" and wavs == [], (rows, wavs)
    assert b"612000612" not in body


def test_now_shows_calls_by_flow_step(line, audio, tmp_path):
    s = line
    cookie, _ = _login_http(s, "rey")
    import threading
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("r", peers.pj_call(
        s.uri(), caller="+31612000614", seconds=30, play=audio.speak, log=tmp_path / "pj.log")), daemon=True)
    t.start()

    def in_a_step():
        status, _, body = _request(s, "GET", "/console/now", headers={"Cookie": cookie})
        assert status == 200
        html = body.decode()
        return "<caption>calls by step</caption>" in html and "<td>1</td><td>demo</td>" in html
    _wait(in_a_step, "the call on the now view", timeout=20)
    t.join(40)
    assert result["r"].confirmed, result["r"].summary()

    def gone():
        _, _, body = _request(s, "GET", "/console/now", headers={"Cookie": cookie})
        return "calls by step: none." in body.decode()
    _wait(gone, "the call gone from the now view", timeout=10)


def test_upload_new_story_audio_from_the_console(line, tmp_path):
    """An admin uploads a new story in the browser: it is converted (a stereo 44.1 kHz FLAC tone
    becomes the 8 kHz clip callers hear), can be played back, gets a new flow version, and the
    upload is in the audit log. (A call hearing an upload is in test_editing.py.)"""
    from test_editing import tone_seconds
    import wavs
    s = line
    base = f"http://{LOOPBACK}:{s.http_port}"
    flac = tmp_path / "new story.flac"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(flac), "synth", "2.5", "sine", "523",
                    "vol", "0.5"], check=True, timeout=60)
    with browser.Browser() as b:
        b.get(base + "/console/login")
        b.find("#user").send_keys("ada")
        b.find("#password").send_keys(PASSWORD)
        b.find("form.login button").click()
        b.wait_for(lambda: b.url.rstrip("/").endswith("/console"), what="the console home")

        b.get(base + "/console/campaign/demo")
        row = lambda: b.find("table.clips tbody tr:has(#f-story-en)").text
        before = row()
        assert "from the configuration" in before, before
        b.find("#f-story-en").send_keys(str(flac))
        b.find("form.upload:has(#f-story-en) button").click()
        b.wait_for(lambda: "uploaded" in b.find("table.clips tbody tr:has(#f-story-en)").text,
                   what="the clip marked uploaded")
        after = row()
        assert "2.5 s" in after, after
        version = lambda text: text.split("(flow ", 1)[1].split(")", 1)[0]
        assert version(after) != version(before), (before, after)

        # Played back as callers hear it: 8 kHz, the tone, 2.5 s.
        cookie = next(c for c in b.cookies() if c["name"] == "belteken_console")
        status, headers, body = _request(s, "GET", "/console/campaign/demo/clip/story/en",
                                         headers={"Cookie": f"belteken_console={cookie['value']}"})
        assert status == 200 and headers["content-type"] == "audio/wav", (status, headers)
        clip = wavs.read_wav(body)
        assert clip.rate == 8000
        assert abs(len(clip.samples) / clip.rate - 2.5) < 0.15, len(clip.samples)
        assert tone_seconds(clip, 523) >= 2.2

        b.get(base + "/console/audit")
        assert "ada" in b.find("table.audit").text
    p = _cli(s, "campaign", "show", "--campaign", "demo")
    assert p.returncode == 0, p.stderr
    assert version(after) in p.stdout, p.stdout
