"""Twilio through its webhooks, against the real binary: this test plays Twilio's role.

It signs every request as Twilio does (X-Twilio-Signature over the public URL and the sorted
form parameters), follows the TwiML it gets back (Play: fetch the prompt and check it is a WAV;
Gather: post the Digits, here none; Record: post a RecordingUrl served by a local HTTPS server
the way Twilio's API serves it (basic auth, `.wav`, a certificate from a test CA given as
`ca_file`), then the recording status callback; Redirect: follow), and checks that the
signature is counted, its recording stored and Twilio's copy deleted (DELETE
.../Recordings/{sid}.json). The public URL is a name the server never binds
(https://line.example.test), as behind a reverse proxy."""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

import peers
from peers import LOOPBACK
from provider_api import ProviderApi
from server import campaign_toml

PUBLIC = "https://line.example.test"
SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "test-auth-token-0123456789"
DID = "+3220000001"


def signature(url: str, params: dict, token: str = TOKEN) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_twilio_docs_vector_in_python():
    # The signer every test here uses (and the providers' driver's), checked against Twilio's
    # published example, so that a 200 from the server means it agrees with Twilio.
    from cloud_providers import twilio_signature
    p = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
         "From": "+12349013030", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature(url, p, token="12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_signature("12345", url, p) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert signature(url, dict(p, Digits="1235"), token="12345") != "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


class Twilio:
    def __init__(self, server, call_sid: str, caller: str):
        peers.note_caller(caller)  # the privacy test (run last) looks for it everywhere
        self.server = server
        self.sent: list[tuple[str, dict]] = []  # every request made: (url, extra parameters)
        self.base = {"AccountSid": SID, "CallSid": call_sid, "From": caller, "Caller": caller,
                     "To": DID, "Called": DID, "CallStatus": "in-progress", "Direction": "inbound",
                     "ApiVersion": "2010-04-01"}

    def post(self, url: str, extra: dict | None = None, sign: bool = True, sig: str | None = None):
        assert url.startswith(PUBLIC), url
        self.sent.append((url, dict(extra or {})))
        params = dict(self.base)
        params.update(extra or {})
        path = url[len(PUBLIC):]
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sign:
            headers["X-Twilio-Signature"] = sig or signature(url, params)
        c = http.client.HTTPConnection(LOOPBACK, self.server.http_port, timeout=30)
        try:
            c.request("POST", path, body=urllib.parse.urlencode(params), headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def get_public(self, url: str) -> tuple[int, bytes]:
        return self.server.get(url[len(PUBLIC):])


def twilio_auth_ok(header: str | None) -> bool:
    return header == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


def config(audio, api: ProviderApi) -> str:
    return campaign_toml(prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"},
                         extra=f'dids = ["{DID}"]\n') + f"""
[cloud]
public_url = "{PUBLIC}/"
fetch_attempts = 3
fetch_pause_ms = 200
allow_private_fetch = true  # the stand-in APIs are on loopback
ca_file = "{api.ca}"

[cloud.twilio]
account_sid = "{SID}"
auth_token = "{TOKEN}"
api_base = "{api.base}"
"""


@pytest.fixture(scope="module")
def twilio_api(tmp_path_factory):
    """Twilio's REST API over HTTPS, its certificate from a test CA given as `ca_file`."""
    api = ProviderApi(tmp_path_factory.mktemp("twilio-api"), twilio_auth_ok)
    yield api
    api.close()


@pytest.fixture(scope="module")
def cloud_server(server_factory, audio, twilio_api):
    return server_factory("cloud", config(audio, twilio_api), files=audio.prompts)


def recording(api: ProviderApi, wav: bytes, sid: str) -> str:
    """A recording as Twilio announces it: RecordingUrl without extension (.wav fetches WAV)."""
    return api.add_recording(f"/2010-04-01/Accounts/{SID}/Recordings/{sid}", wav)


def run_call(server, rec_url: str | None, rec_sid: str, call_sid: str, caller: str,
             t: Twilio | None = None) -> list[str]:
    t = t or Twilio(server, call_sid, caller)
    status, body = t.post(PUBLIC + "/hooks/twilio/voice")
    assert status == 200, body
    verbs_seen = []
    for _ in range(40):
        root = ET.fromstring(body)
        verbs = list(root)
        if not verbs:
            break
        nxt = None
        for v in verbs:
            verbs_seen.append(v.tag)
            if v.tag == "Play":
                s, wav = t.get_public(v.text)
                assert s == 200 and wav[:4] == b"RIFF" and wav[8:12] == b"WAVE", v.text
            elif v.tag == "Gather":
                for p in v.findall("Play"):
                    s, wav = t.get_public(p.text)
                    assert s == 200 and wav[:4] == b"RIFF"
                assert v.get("actionOnEmptyResult") == "true"
                nxt = (v.get("action"), {"Digits": ""})
                break
            elif v.tag == "Record":
                assert rec_url, "a Record the test did not expect"
                s, b = t.post(v.get("action"), {"RecordingUrl": rec_url, "RecordingDuration": "3",
                                                "RecordingSid": rec_sid, "Digits": ""})
                assert s == 200, b
                # The recording status callback comes beside the call's flow.
                cb = t.post(v.get("recordingStatusCallback"),
                            {"RecordingUrl": rec_url, "RecordingSid": rec_sid,
                             "RecordingStatus": "completed", "RecordingDuration": "3",
                             "RecordingChannels": "1", "RecordingSource": "RecordVerb"})
                assert cb[0] in (200, 204), cb
                body = b
                nxt = "have-body"
                break
            elif v.tag == "Redirect":
                nxt = (v.text, {})
                break
            elif v.tag == "Pause":
                continue
            elif v.tag == "Hangup":
                nxt = None
                break
        if nxt is None:
            break
        if nxt != "have-body":
            status, body = t.post(nxt[0], nxt[1])
            assert status == 200, body
    # Twilio's status callback at the end of the call.
    s, _ = t.post(PUBLIC + "/hooks/twilio/status", {"CallStatus": "completed", "CallDuration": "12"})
    assert s in (200, 204)
    return verbs_seen


def summaries(server, channel: str = "twilio") -> list[tuple]:
    return server.query("SELECT answered, story_completed, recorded, signed FROM call_summaries "
                        "WHERE channel = ? ORDER BY id", (channel,))


def wait_summaries(server, n: int, timeout: float = 10.0) -> list[tuple]:
    """The channel's funnel rows once there are `n` (written by a background queue)."""
    deadline = time.monotonic() + timeout
    rows = summaries(server)
    while len(rows) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = summaries(server)
    return rows


def test_unsigned_and_wrongly_signed_are_refused(cloud_server):
    t = Twilio(cloud_server, "CAbad0000000000000000000000000000", "+32470000111")
    assert t.post(PUBLIC + "/hooks/twilio/voice", sign=False)[0] == 403
    assert t.post(PUBLIC + "/hooks/twilio/voice", sig="0/KCTR6DLpKmkAf8muzZqo1nDgQ=")[0] == 403
    # Signed for another URL (the local one instead of the public one).
    params = dict(t.base)
    wrong = signature(f"http://{LOOPBACK}:{cloud_server.http_port}/hooks/twilio/voice", params)
    assert t.post(PUBLIC + "/hooks/twilio/voice", sig=wrong)[0] == 403
    # Nothing changed: no call state, no signature.
    assert cloud_server.query("SELECT count(*) FROM cloud_calls")[0][0] == 0
    assert cloud_server.counts() == (0, 0)


def test_twilio_call_signs_with_its_recording(cloud_server, audio, twilio_api):
    # The recording comes from the provider's API over HTTPS (a certificate from the test CA
    # named by ca_file), fetched with the account's credentials, then deleted there.
    sid = "RE11111111111111111111111111111111"
    url = recording(twilio_api, audio.name.read_bytes(), sid)
    assert url.startswith("https://")
    funnel_before = len(summaries(cloud_server))
    verbs = run_call(cloud_server, url, sid, "CA11111111111111111111111111111111", "+32470123456")
    assert "Record" in verbs and "Play" in verbs and "Hangup" in verbs, (verbs, cloud_server.log_text()[-3000:])
    assert cloud_server.wait_counts((1, 0)) == (1, 0)
    st, js = cloud_server.get_json("/api/campaigns/demo")
    assert st == 200 and js["signatures"] == 1
    sigs = cloud_server.signatures()
    assert len(sigs) == 1
    assert sigs[0]["channel"] == "twilio"
    assert sigs[0]["speech_ms"] >= 500
    rec = sigs[0]["recording"]
    assert rec[:4] == b"RIFF" and len(rec) > 8000  # the caller's voice, not a placeholder
    trust = cloud_server.query("SELECT trust FROM signatures")[0][0]
    assert trust == "network"
    # Fetched as WAV over HTTPS with the account's credentials.
    gets = twilio_api.seen("GET", f"/2010-04-01/Accounts/{SID}/Recordings/{sid}.wav")
    assert gets and all(twilio_auth_ok(g.auth) for g in gets), twilio_api.requests
    # Twilio's copy is deleted once the signature is stored: DELETE .../Recordings/{sid}.json.
    deletes = twilio_api.wait_seen("DELETE", f"/2010-04-01/Accounts/{SID}/Recordings/{sid}.json")
    assert deletes and twilio_auth_ok(deletes[0].auth), (twilio_api.requests, cloud_server.log_text()[-2000:])
    assert f"/2010-04-01/Accounts/{SID}/Recordings/{sid}" in twilio_api.deleted
    # The call's funnel reaches the console like a SIP call's: answered, heard the story to
    # its end, recorded, signed.
    rows = wait_summaries(cloud_server, funnel_before + 1)
    assert len(rows) == funnel_before + 1 and rows[-1] == (1, 1, 1, 1), rows


def test_replayed_webhooks_change_nothing(cloud_server, audio, twilio_api):
    # A withheld caller's call (a second signature would count again), then every request of
    # it replayed with its valid signature: each gets an answer, nothing advances, nothing is
    # signed again.
    sid = "RE12121212121212121212121212121212"
    call_sid = "CA12121212121212121212121212121212"
    url = recording(twilio_api, audio.name.read_bytes(), sid)
    before = cloud_server.counts()
    funnel_before = len(summaries(cloud_server))
    t = Twilio(cloud_server, call_sid, "anonymous")
    verbs = run_call(cloud_server, url, sid, call_sid, "anonymous", t=t)
    assert "Record" in verbs, verbs
    want = (before[0], before[1] + 1)
    assert cloud_server.wait_counts(want) == want, cloud_server.log_text()[-3000:]
    rows = len(cloud_server.signatures())
    assert len(wait_summaries(cloud_server, funnel_before + 1)) == funnel_before + 1
    version = cloud_server.query("SELECT version FROM cloud_calls WHERE call_id = ?",
                                 (f"twilio:{call_sid}",))[0][0]
    sent = list(t.sent)
    voice = [(u, e) for u, e in sent if u.startswith(PUBLIC + "/hooks/twilio/voice")]
    assert len(voice) >= 4 and any("ev=record" in u for u, _ in voice), sent
    for u, extra in voice:
        s, _ = t.post(u, extra)
        assert s == 200, (u, s)
    # The flow's webhooks replayed: the call's state is not even written.
    assert cloud_server.query("SELECT version FROM cloud_calls WHERE call_id = ?",
                              (f"twilio:{call_sid}",))[0][0] == version
    for u, extra in sent:
        if (u, extra) not in voice:
            s, _ = t.post(u, extra)
            assert s in (200, 204), (u, s)
    assert cloud_server.counts() == want
    assert len(cloud_server.signatures()) == rows
    # The call's funnel was recorded once, however often its webhooks came: its state says
    # so, and no second row appears.
    data = cloud_server.query("SELECT data FROM cloud_calls WHERE call_id = ?", (f"twilio:{call_sid}",))[0][0]
    assert b'"summarized":true' in bytes(data), data
    assert len(wait_summaries(cloud_server, funnel_before + 2, timeout=1.0)) == funnel_before + 1


def test_same_caller_again_is_already_signed(cloud_server, audio):
    before = cloud_server.counts()
    verbs = run_call(cloud_server, None, "", "CA22222222222222222222222222222222", "0470 12 34 56")
    assert "Record" not in verbs, verbs
    assert cloud_server.counts() == before


def test_withheld_caller_counts_as_unverified(cloud_server, audio, twilio_api):
    sid = "RE33333333333333333333333333333333"
    url = recording(twilio_api, audio.name.read_bytes(), sid)
    before = cloud_server.counts()
    run_call(cloud_server, url, sid, "CA33333333333333333333333333333333", "anonymous")
    want = (before[0], before[1] + 1)
    assert cloud_server.wait_counts(want) == want
    assert twilio_api.wait_seen("DELETE", f"/2010-04-01/Accounts/{SID}/Recordings/{sid}.json")


def test_recording_from_an_untrusted_certificate_is_not_fetched(server_factory, audio, tmp_path):
    # The same API with a certificate from a CA the server does not trust: the fetch fails
    # (TLS verification), nothing is signed with a recording that could not be checked.
    other = ProviderApi(tmp_path / "other", twilio_auth_ok)
    trusted = ProviderApi(tmp_path / "trusted", twilio_auth_ok)
    try:
        srv = server_factory("cloud-untrusted", config(audio, trusted), files=audio.prompts)
        sid = "RE44444444444444444444444444444444"
        url = other.add_recording(f"/2010-04-01/Accounts/{SID}/Recordings/{sid}", audio.name.read_bytes())
        run_call(srv, url, sid, "CA44444444444444444444444444444444", "+32470999888")
        assert "recording not fetched" in srv.log_text()
        assert srv.counts() == (0, 0)
        assert not other.seen("GET", "/")  # the handshake failed before any request
    finally:
        other.close()
        trusted.close()


def test_caller_hanging_up_after_their_name_still_signs(cloud_server, audio, twilio_api):
    # The caller says their name and hangs up during the Record: Twilio requests the Record's
    # action with Digits=hangup and CallStatus=completed; the recording is fetched and signs.
    from cloud_providers import Twilio as TwilioDriver
    before = cloud_server.counts()
    sid = "RE55555555555555555555555555555555"
    url = recording(twilio_api, audio.name.read_bytes(), sid)
    d = TwilioDriver(cloud_server, DID, SID, TOKEN)
    res = d.call("+32470123999", recording=(url, sid), hangup_in_record=True)
    assert "Record" in res.verbs
    want = (before[0] + 1, before[1])
    assert cloud_server.wait_counts(want) == want, cloud_server.log_text()[-3000:]
    assert twilio_api.wait_seen("DELETE", f"/2010-04-01/Accounts/{SID}/Recordings/{sid}.json")


def follow_to_record(t: Twilio) -> ET.Element:
    """Follows a call's answers (no keys) until its Record; returns the Record verb."""
    status, body = t.post(PUBLIC + "/hooks/twilio/voice")
    assert status == 200, body
    for _ in range(40):
        nxt = None
        for v in ET.fromstring(body):
            if v.tag == "Record":
                return v
            if v.tag == "Gather":
                nxt = (v.get("action"), {"Digits": ""})
                break
            if v.tag == "Redirect":
                nxt = (v.text, {})
                break
        assert nxt, body
        status, body = t.post(*nxt)
        assert status == 200, body
    raise AssertionError("no Record")


def test_parallel_signing_webhooks_sign_once(cloud_server, audio, twilio_api):
    # The Record's action (the webhook that signs) for one call, 20 times at once, as a
    # provider's retries or a replay could: one signature, counted once. A withheld caller,
    # whose every signature would count.
    from concurrent.futures import ThreadPoolExecutor
    sid = "RE13131313131313131313131313131313"
    url = recording(twilio_api, audio.name.read_bytes(), sid)
    before = cloud_server.counts()
    rows = len(cloud_server.signatures())
    t = Twilio(cloud_server, "CA13131313131313131313131313131313", "anonymous")
    rec = follow_to_record(t)
    extra = {"RecordingUrl": url, "RecordingDuration": "3", "RecordingSid": sid, "Digits": ""}
    with ThreadPoolExecutor(max_workers=20) as ex:
        answers = list(ex.map(lambda _: t.post(rec.get("action"), extra), range(20)))
    assert all(s == 200 for s, _ in answers), [s for s, _ in answers]
    # Every webhook has been answered, so every signature it made is stored by now.
    want = (before[0], before[1] + 1)
    assert cloud_server.counts() == want, cloud_server.log_text()[-3000:]
    assert len(cloud_server.signatures()) == rows + 1
    assert twilio_api.wait_seen("DELETE", f"/2010-04-01/Accounts/{SID}/Recordings/{sid}.json")
    assert cloud_server.counts() == want


def cloud_config_without_test_setting(audio, api: ProviderApi) -> str:
    return config(audio, api).replace("allow_private_fetch = true", "allow_private_fetch = false")


def test_recording_urls_off_the_provider_are_not_fetched(cloud_server, audio, twilio_api, tmp_path):
    # A RecordingUrl over plain http (on an allowed host), and one on a host not on Twilio's
    # list (a valid certificate all the same): nothing is requested there, so the account's
    # credentials go nowhere; the call ends as a call without a recording does.
    plain = ProviderApi(tmp_path / "plain", lambda a: True, tls=False)
    # The same test CA as Twilio's stand-in: only the host differs.
    elsewhere = ProviderApi(tmp_path / "elsewhere", lambda a: True, host="127.0.0.2",
                            cert=twilio_api.cert)
    try:
        wav = audio.name.read_bytes()
        before = cloud_server.counts()
        cases = {
            "RE14141414141414141414141414141414": plain,
            "RE15151515151515151515151515151515": elsewhere,
        }
        for i, (sid, api) in enumerate(cases.items()):
            url = api.add_recording(f"/2010-04-01/Accounts/{SID}/Recordings/{sid}", wav)
            assert url.startswith("http://" if api is plain else "https://127.0.0.2:"), url
            verbs = run_call(cloud_server, url, sid, f"CA1{i}141414141414141414141414141414",
                             f"+3247014141{i}")
            assert "Record" in verbs and verbs[-1] == "Hangup", verbs
        assert plain.requests == [] and elsewhere.requests == []
        assert cloud_server.counts() == before
        log = cloud_server.log_text()
        assert "not an https:// URL" in log and "not on the provider's list" in log, log[-3000:]
    finally:
        plain.close()
        elsewhere.close()


def test_no_fetch_from_a_loopback_address_without_the_test_setting(server_factory, audio, tmp_path):
    # Twilio's own API host (api_base), but at a loopback address: without
    # allow_private_fetch the server does not connect (the name could point anywhere inside).
    api = ProviderApi(tmp_path / "api", twilio_auth_ok)
    try:
        srv = server_factory("cloud-no-private", cloud_config_without_test_setting(audio, api),
                             files=audio.prompts)
        sid = "RE16161616161616161616161616161616"
        url = recording(api, audio.name.read_bytes(), sid)
        verbs = run_call(srv, url, sid, "CA16161616161616161616161616161616", "+32470161616")
        assert "Record" in verbs and verbs[-1] == "Hangup", verbs
        assert api.requests == []
        assert srv.counts() == (0, 0)
        assert "private, loopback or link-local" in srv.log_text()
    finally:
        api.close()
