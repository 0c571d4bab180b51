"""Channel conformance: the documented flows give the same result through every channel.

One server carries two campaigns: the Glenn-style voicemail (the default flow: story, beep,
say your name, at least half a second of speech signs) and "press 1 to sign" of docs/flows.md
(a menu: a key during the story signs). Each is called over native SIP (pjsua2), and through
Twilio, Telnyx and Vonage by clients that play those providers (cloud_providers.py) against
local HTTPS provider APIs (provider_api.py). For every channel the registry must end up the
same: one counted signature per caller, unverified for a withheld number, marked with its
channel and trust, a repeat caller counted once, and for the voicemail the recording that was
served (cloud: the provider's WAV exactly; SIP: the caller's voice after G.711).

Then a burst: 500 calls through the providers' webhooks at once, bounded in time, lose
nothing and count nothing twice."""
from __future__ import annotations

import concurrent.futures
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import peers
import wavs
from cloud_providers import PUBLIC, Telnyx, Twilio, Vonage, vonage_api_jwt_ok
from provider_api import ProviderApi, resource
from server import campaign_toml
from test_flows import as_campaign, documented_flow

TWILIO_SID = "AC" + "c0ffee" * 5 + "01"
TWILIO_TOKEN = "conformance-auth-token"
TELNYX_ACCOUNT = "f5586561-8ff0-4291-a51b-c7dfe4139ff9"
TELNYX_KEY = "KEYconformance"
VONAGE_APP = "bbbbbbbb-cccc-dddd-eeee-0123456789ab"
VONAGE_SECRET = "conformance-signature-secret"

VOICEMAIL_DID = "+3220000010"
PRESS1_DID = "+3220000011"
HELPLINE_DID = "+3220000012"
HELPLINE = "sip:helpline@example.org"

CHANNELS = ["sip", "twilio", "telnyx", "vonage"]
# A direct SIP call (no trunk asserting the caller ID) has only its From header.
SIP_TRUST = "from"


class Env:
    def __init__(self, srv, api, storage, telnyx_key, audio):
        self.srv, self.api, self.storage, self.telnyx_key, self.audio = srv, api, storage, telnyx_key, audio

    def provider(self, channel: str, did: str):
        if channel == "twilio":
            return Twilio(self.srv, did, TWILIO_SID, TWILIO_TOKEN)
        if channel == "telnyx":
            return Telnyx(self.srv, did, TELNYX_ACCOUNT, self.telnyx_key)
        return Vonage(self.srv, did, VONAGE_SECRET, VONAGE_APP)

    def recording(self, channel: str) -> tuple[str, str, str]:
        """(RecordingUrl, id, the resource a DELETE must reach) as each provider hands it over."""
        wav = self.audio.name.read_bytes()
        if channel == "twilio":
            sid = "RE" + uuid.uuid4().hex
            path = f"/2010-04-01/Accounts/{TWILIO_SID}/Recordings/{sid}"
            return self.api.add_recording(path, wav), sid, path
        if channel == "telnyx":
            sid = str(uuid.uuid4())
            url = self.storage.add_recording(f"/texml-recordings/{sid}.wav?X-Amz-Signature=s", wav)
            path = f"/v2/texml/Accounts/{TELNYX_ACCOUNT}/Recordings/{sid}"
            self.api.add_recording(path, wav)
            return url, sid, path
        sid = str(uuid.uuid4())
        path = f"/v1/files/{sid}"
        return self.api.add_recording(path, wav), sid, path


@pytest.fixture(scope="module")
def env(server_factory, audio, tmp_path_factory):
    d = tmp_path_factory.mktemp("conformance")
    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (d / "vonage.key").write_bytes(app_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub = app_key.public_key()

    def api_auth(a: str | None) -> bool:
        import base64
        basic = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
        return a in (basic, f"Bearer {TELNYX_KEY}") or vonage_api_jwt_ok(a, pub, VONAGE_APP)

    # One local API stands in for the three providers' APIs (their paths do not overlap).
    api = ProviderApi(d / "api", api_auth)
    storage = ProviderApi(d / "storage", lambda a: a is None)
    (d / "cas.pem").write_bytes(api.ca.read_bytes() + storage.ca.read_bytes())
    telnyx_key = Ed25519PrivateKey.generate()
    tpub = Telnyx(None, "", "", telnyx_key).public_key_b64

    voicemail = campaign_toml(slug="voicemail", ring_seconds=1, silence_seconds=1, record_max_seconds=10,
                              prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"},
                              extra=f'dids = ["{VOICEMAIL_DID}"]\n')
    press1 = as_campaign(documented_flow("Example: press 1 to sign"), slug="press1", helpline="")
    press1 = press1.replace('title = "Trilingual test line"\n',
                            f'title = "Press 1 line"\ndefault_region = "BE"\ndids = ["{PRESS1_DID}"]\n')
    helpline = campaign_toml(slug="helpline", ring_seconds=1, silence_seconds=1, record_max_seconds=10,
                             prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"},
                             extra=f'dids = ["{HELPLINE_DID}"]\nhelpline = "{HELPLINE}"\n')
    cfg = voicemail + "\n" + press1 + "\n" + helpline + f"""
[cloud]
public_url = "{PUBLIC}"
fetch_attempts = 4
fetch_pause_ms = 200
allow_private_fetch = true  # the stand-in APIs are on loopback
ca_file = "cas.pem"

[cloud.twilio]
account_sid = "{TWILIO_SID}"
auth_token = "{TWILIO_TOKEN}"
api_base = "{api.base}"

[cloud.telnyx]
public_key = "{tpub}"
api_key = "{TELNYX_KEY}"
api_base = "{api.base}"

[cloud.vonage]
application_id = "{VONAGE_APP}"
private_key_file = "vonage.key"
signature_secret = "{VONAGE_SECRET}"
api_base = "{api.base}"
"""
    files = dict(audio.prompts)
    files["cas.pem"] = d / "cas.pem"
    files["vonage.key"] = d / "vonage.key"
    srv = server_factory("conformance", cfg, files=files)
    yield Env(srv, api, storage, telnyx_key, audio)
    api.close()
    storage.close()


def caller_for(channel: str, n: int) -> str:
    return "+324706%d%04d" % (CHANNELS.index(channel) + 1, n)


def rows(srv, slug: str) -> list[tuple]:
    return srv.query(
        "SELECT s.channel, s.verified, s.trust, s.speech_ms, s.recording FROM signatures s "
        "JOIN campaigns c ON c.id = s.campaign_id WHERE c.slug = ? ORDER BY s.id", (slug,))


def voicemail_call(env: Env, channel: str, caller: str, tmp_path) -> dict:
    """One voicemail call; returns what the channel handed over (for the assertions)."""
    if channel == "sip":
        r = peers.pj_call(env.srv.uri("voicemail"), caller=caller, seconds=40, play=env.audio.speak,
                          rec=tmp_path / f"heard-{caller[-4:]}.wav", log=tmp_path / f"pj-{caller[-4:]}.log")
        assert r.confirmed, r
        return {}
    p = env.provider(channel, VOICEMAIL_DID)
    url, sid, path = env.recording(channel)
    res = p.call(caller, recording=(url, sid))
    return {"path": path, "res": res}


@pytest.mark.parametrize("channel", CHANNELS)
def test_voicemail_flow_signs_the_same_on_every_channel(env, channel, tmp_path):
    srv = env.srv
    before = len(rows(srv, "voicemail"))
    got = voicemail_call(env, channel, caller_for(channel, 1), tmp_path)
    deadline = time.monotonic() + 15
    while len(rows(srv, "voicemail")) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    new = rows(srv, "voicemail")[before:]
    assert len(new) == 1, (new, srv.log_text()[-3000:])
    ch, verified, trust, speech_ms, rec = new[0]
    assert ch == channel
    assert verified == 1
    assert trust == SIP_TRUST if channel == "sip" else trust == "network"
    assert speech_ms >= 500
    stored = wavs.read_wav(rec)
    assert stored.rate == 8000
    spoken = wavs.read_wav(env.audio.name)
    if channel == "sip":
        # The caller's voice through G.711: about as long and as loud as what was spoken.
        v, vr = stored.voiced()
        sv, _ = spoken.voiced()
        assert abs(v - sv) < 0.6 and vr > 800, (stored.summary(), spoken.summary())
    else:
        # The provider's recording, stored exactly as served.
        assert stored.samples == spoken.samples, (stored.summary(), spoken.summary())
        dels = env.api.wait_seen("DELETE", got["path"])
        assert dels and dels[0].authorized, env.api.requests[-5:]
        assert resource(got["path"]) in env.api.deleted
    # A repeat call from the same number is already signed: nothing more is counted.
    if channel == "sip":
        voicemail_call(env, channel, caller_for(channel, 1), tmp_path)
    else:
        res = env.provider(channel, VOICEMAIL_DID).call(caller_for(channel, 1))
        assert not res.recordings  # not asked to record again
    assert len(rows(srv, "voicemail")) == before + 1


@pytest.mark.parametrize("channel", CHANNELS)
def test_withheld_number_is_unverified_on_every_channel(env, channel, tmp_path):
    srv = env.srv
    withheld = {"sip": "anonymous", "twilio": "+266696687", "telnyx": "anonymous", "vonage": "Unknown"}
    before = rows(srv, "voicemail")
    if channel == "sip":
        r = peers.pj_call(srv.uri("voicemail"), caller="anonymous", seconds=40, play=env.audio.speak,
                          rec=tmp_path / "heard-anon.wav", log=tmp_path / "pj-anon.log")
        assert r.confirmed, r
    else:
        url, sid, _ = env.recording(channel)
        env.provider(channel, VOICEMAIL_DID).call(withheld[channel], recording=(url, sid))
    deadline = time.monotonic() + 15
    while len(rows(srv, "voicemail")) < len(before) + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    new = rows(srv, "voicemail")[len(before):]
    assert len(new) == 1 and new[0][0] == channel and new[0][1] == 0, (new, srv.log_text()[-3000:])
    assert new[0][2] == "withheld"


@pytest.mark.parametrize("channel", CHANNELS)
def test_menu_flow_signs_with_a_key_on_every_channel(env, channel, tmp_path):
    srv = env.srv
    before = len(rows(srv, "press1"))
    caller = caller_for(channel, 2)
    if channel == "sip":
        r = peers.pj_call(srv.uri("press1"), caller=caller, seconds=25, dtmf="1",
                          rec=tmp_path / "heard-p1.wav", log=tmp_path / "pj-p1.log")
        assert r.confirmed, r
    else:
        res = env.provider(channel, PRESS1_DID).call(caller, keys=["1"])
        assert not res.recordings
    deadline = time.monotonic() + 15
    while len(rows(srv, "press1")) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    new = rows(srv, "press1")[before:]
    assert len(new) == 1, (new, srv.log_text()[-3000:])
    assert new[0][0] == channel and new[0][1] == 1
    # Without a key the caller does not sign (the menu times out, then goodbye).
    if channel != "sip":
        env.provider(channel, PRESS1_DID).call(caller_for(channel, 3), keys=[])
        assert len(rows(srv, "press1")) == before + 1


@pytest.mark.parametrize("channel", ["twilio", "telnyx", "vonage"])
def test_helpline_transfer_and_its_failure(env, channel):
    # The voicemail with a helpline: after signing, 0 in the thank-you menu transfers. The
    # provider dials the helpline's SIP URI; when nobody answers, the caller hears that the
    # transfer failed and goodbye, as on SIP.
    import json
    import xml.etree.ElementTree as ET
    srv = env.srv
    before = len(rows(srv, "helpline"))
    p = env.provider(channel, HELPLINE_DID)
    url, sid, _ = env.recording(channel)
    res = p.call(caller_for(channel, 4), keys=["0"], recording=(url, sid))
    assert res.dial is not None, (res.verbs, srv.log_text()[-3000:])
    action, target = res.dial
    assert target.lower() == "sip:" + HELPLINE, target
    assert any(u.endswith("/connecting.wav") for u in res.played), res.played
    assert len(rows(srv, "helpline")) == before + 1  # signed before the transfer
    if channel == "vonage":
        # The helpline leg rings (nothing changes), then is not answered.
        ring = dict(res.base, status="ringing", direction="outbound")
        assert p.request("POST", action, ring)[0] == 204
        s, body = p.request("POST", action, dict(ring, status="timeout"))
        assert s == 200, body
        urls = [a["streamUrl"][0] for a in json.loads(body) if a["action"] == "stream"]
    else:
        s, body = p.post(action, dict(res.base, DialCallStatus="no-answer", DialCallDuration="0"))
        assert s == 200, body
        urls = [v.text for v in ET.fromstring(body) if v.tag == "Play"]
    assert any(u.endswith("/transfer_failed.wav") for u in urls), (body, srv.log_text()[-2000:])
    assert len(rows(srv, "helpline")) == before + 1


def test_counts_agree_across_channels(env):
    # Every channel's signatures are in the one registry and its public count.
    srv = env.srv
    for slug in ("voicemail", "press1"):
        r = rows(srv, slug)
        counted = sum(1 for x in r if x[1] == 1)
        unverified = sum(1 for x in r if x[1] == 0)
        assert srv.wait_counts((counted, unverified), slug=slug) == (counted, unverified)
    chans = {x[0] for x in rows(srv, "voicemail")}
    assert chans == set(CHANNELS), chans


BURST = 500


def test_burst_of_500_webhook_calls_loses_nothing(env):
    """500 callers through the three providers at once, every webhook of each call signed:
    half sign the press-1 menu with a key, half leave their name on the voicemail (the
    recording fetched from the provider's API, then deleted there); each Twilio call's first
    webhook is sent twice (a provider retry). Exactly 500 signatures more, each counted once,
    every provider copy deleted, within a time bound."""
    srv = env.srv
    before = {slug: srv.counts(slug) for slug in ("press1", "voicemail")}
    chans = ["twilio", "telnyx", "vonage"]

    def one(i: int):
        ch = chans[i % 3]
        voicemail = i % 2 == 1
        p = env.provider(ch, VOICEMAIL_DID if voicemail else PRESS1_DID)
        caller = "+3247%07d" % (1000000 + i)
        sid = None
        if ch == "twilio":
            sid = "CA" + uuid.uuid4().hex
            # The retried first webhook, before the call goes on.
            s, _ = p.post(PUBLIC + p.voice_path, p.base_params(sid, caller))
            assert s == 200
        if voicemail:
            url, rec_sid, path = env.recording(ch)
            res = p.call(caller, recording=(url, rec_sid), call_sid=sid)
        else:
            path = None
            res = p.call(caller, keys=["1"], call_sid=sid)
        assert all(s in (200, 204) for s in res.statuses), res.statuses
        return ch, path

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        done = list(pool.map(one, range(BURST)))
    elapsed = time.monotonic() - t0
    assert len(done) == BURST
    half = BURST // 2
    for slug in ("press1", "voicemail"):
        want = (before[slug][0] + half, before[slug][1])
        assert srv.wait_counts(want, slug=slug, timeout=60) == want, (slug, srv.log_text()[-3000:])
    # Distinct callers: the registry holds each once.
    keys = srv.query("SELECT count(*), count(DISTINCT caller_key) FROM signatures s "
                     "JOIN campaigns c ON c.id = s.campaign_id WHERE c.slug IN ('press1', 'voicemail') "
                     "AND s.verified = 1 GROUP BY c.slug")
    assert all(k[0] == k[1] for k in keys), keys
    by = {c: srv.query("SELECT count(*) FROM signatures WHERE channel = ?", (c,))[0][0] for c in chans}
    assert all(v >= BURST // 3 for v in by.values()), by
    # Every provider copy of the 250 recordings is deleted.
    deadline = time.monotonic() + 60
    paths = {resource(p) for _, p in done if p}
    assert len(paths) == half
    while not paths <= env.api.deleted and time.monotonic() < deadline:
        time.sleep(0.2)
    assert paths <= env.api.deleted, len(paths - env.api.deleted)
    assert elapsed < 240, f"500 calls took {elapsed:.0f} s"
