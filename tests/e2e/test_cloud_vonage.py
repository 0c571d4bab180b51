"""Vonage's Voice API through its webhooks, against the real binary: this test plays Vonage.

The answer webhook is a GET with Vonage's query parameters, events are JSON; every request
carries a signed-webhook JWT (HS256 with the account's signature secret, `payload_hash` of the
body). belteken answers NCCO. The recording comes from a local HTTPS server that serves it the
way Vonage's API does (`GET /v1/files/{uuid}`, only with an application JWT, RS256, verified
here with the application's public key) and sees the DELETE of Vonage's copy."""
from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cloud_providers import PUBLIC, Vonage, vonage_api_jwt_ok, vonage_signed_jwt
from provider_api import ProviderApi
from server import campaign_toml

DID = "+3220000003"
APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
SECRET = "vonage-signature-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def app_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def vonage_api(tmp_path_factory, app_key):
    pub = app_key.public_key()
    api = ProviderApi(tmp_path_factory.mktemp("vonage-api"), lambda a: vonage_api_jwt_ok(a, pub, APP_ID))
    yield api
    api.close()


@pytest.fixture(scope="module")
def srv(server_factory, audio, vonage_api, app_key, tmp_path_factory):
    d = tmp_path_factory.mktemp("vonage-key")
    key = d / "private.key"
    key.write_bytes(app_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    cfg = campaign_toml(prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"},
                        extra=f'dids = ["{DID}"]\n') + f"""
[cloud]
public_url = "{PUBLIC}"
fetch_attempts = 3
fetch_pause_ms = 200
allow_private_fetch = true  # the stand-in APIs are on loopback
ca_file = "{vonage_api.ca}"

[cloud.vonage]
application_id = "{APP_ID}"
private_key_file = "{key}"
signature_secret = "{SECRET}"
api_base = "{vonage_api.base}"
"""
    return server_factory("cloud-vonage", cfg, files=audio.prompts)


def vonage(srv) -> Vonage:
    return Vonage(srv, DID, SECRET, APP_ID)


def recording(api: ProviderApi, wav: bytes) -> tuple[str, str]:
    sid = str(uuid.uuid4())
    return api.add_recording(f"/v1/files/{sid}", wav), sid


def test_unsigned_or_wrongly_signed_are_refused(srv):
    v = vonage(srv)
    url = v.answer_url("+32470666001", str(uuid.uuid4()), "CON-" + str(uuid.uuid4()))
    assert v.request("GET", url, sign=False)[0] == 403
    assert v.request("GET", url, token=vonage_signed_jwt("wrong-secret", b""))[0] == 403
    # alg none, an old token (replayed), and a token whose payload_hash is for another body.
    none = vonage_signed_jwt(SECRET, b"", alg="none")
    assert v.request("GET", url, token=none)[0] == 403
    assert v.request("GET", url, token=vonage_signed_jwt(SECRET, b"", iat=int(time.time()) - 3600))[0] == 403
    body = {"status": "completed", "conversation_uuid": "CON-x", "uuid": "u", "direction": "inbound"}
    other = vonage_signed_jwt(SECRET, json.dumps({"status": "started"}).encode())
    assert v.request("POST", PUBLIC + "/hooks/vonage/event", body, token=other)[0] == 403
    assert srv.query("SELECT count(*) FROM cloud_calls")[0][0] == 0
    assert srv.counts() == (0, 0)


def test_vonage_call_signs_with_its_recording(srv, audio, vonage_api):
    v = vonage(srv)
    url, sid = recording(vonage_api, audio.name.read_bytes())
    res = v.call("+32470666002", recording=(url, sid))
    assert "record" in res.verbs and "stream" in res.verbs, (res, srv.log_text()[-3000:])
    assert srv.wait_counts((1, 0)) == (1, 0), srv.log_text()[-3000:]
    sigs = srv.signatures()
    assert len(sigs) == 1 and sigs[0]["channel"] == "vonage" and sigs[0]["verified"] == 1
    assert sigs[0]["speech_ms"] >= 500
    assert sigs[0]["recording"][:4] == b"RIFF" and len(sigs[0]["recording"]) > 8000
    assert srv.query("SELECT trust FROM signatures")[0][0] == "network"
    # Fetched with a valid application JWT (RS256 under the application's key, checked by the
    # fake API), and Vonage's copy deleted with one.
    gets = vonage_api.seen("GET", f"/v1/files/{sid}")
    assert gets and all(g.authorized for g in gets), vonage_api.requests
    dels = vonage_api.wait_seen("DELETE", f"/v1/files/{sid}")
    assert dels and dels[0].authorized, (vonage_api.requests, srv.log_text()[-2000:])
    assert f"/v1/files/{sid}" in vonage_api.deleted


def test_answer_is_ncco_and_repeats_are_harmless(srv):
    v = vonage(srv)
    conv = "CON-" + str(uuid.uuid4())
    url = v.answer_url("+32470666003", str(uuid.uuid4()), conv)
    s, body = v.request("GET", url)
    assert s == 200
    ncco = json.loads(body)
    assert isinstance(ncco, list) and ncco and all("action" in a for a in ncco)
    # Vonage retries an answer webhook that timed out: the same NCCO, one call.
    s2, body2 = v.request("GET", url)
    assert (s2, body2) == (s, body)
    assert srv.query("SELECT count(*) FROM cloud_calls WHERE call_id = ?", (f"vonage:{conv}",))[0][0] == 1


def test_withheld_caller_is_unverified(srv, audio, vonage_api):
    v = vonage(srv)
    url, sid = recording(vonage_api, audio.name.read_bytes())
    v.call("Unknown", recording=(url, sid))
    assert srv.wait_counts((1, 1)) == (1, 1), srv.log_text()[-3000:]
    assert [s["channel"] for s in srv.signatures()] == ["vonage", "vonage"]


def test_recording_event_after_the_record_action(srv, audio, vonage_api):
    # Vonage sends the recording's event when the file is ready, which may be after the NCCO
    # went on: the caller waits (an input of a few seconds) and the flow signs once it came.
    v = vonage(srv)
    before = srv.counts()
    url, sid = recording(vonage_api, audio.name.read_bytes())
    res = v.call("+32470666004", recording=(url, sid), recording_late=True)
    assert "late-recording-event" in res.verbs, res.verbs
    want = (before[0] + 1, before[1])
    assert srv.wait_counts(want) == want, srv.log_text()[-3000:]


def test_answer_by_post_and_replayed_events(srv):
    # The answer webhook configured as POST (JSON body, payload_hash signed), and an input
    # event replayed with its valid token: the same NCCO back, nothing advanced.
    v = vonage(srv)
    conv = "CON-" + str(uuid.uuid4())
    base = {"from": "32470666005", "to": v.msisdn(DID), "uuid": str(uuid.uuid4()),
            "conversation_uuid": conv, "region_url": "https://api-eu-3.vonage.com"}
    s, body = v.request("POST", PUBLIC + "/hooks/vonage/answer", base)
    assert s == 200, body
    ncco = json.loads(body)
    back = [a for a in ncco if a["action"] == "input"][0]["eventUrl"][0]
    ev = dict(base, dtmf={"digits": "", "timed_out": True}, timestamp="2026-11-29T02:00:00.000Z")
    raw = json.dumps(ev).encode()
    token = vonage_signed_jwt(SECRET, raw, application_id=APP_ID)
    s1, b1 = v.request("POST", back, ev, token=token)
    # The same token again is refused (its jti was seen); the same event with a token of its
    # own gets the same answer.
    assert v.request("POST", back, ev, token=token)[0] == 403
    s2, b2 = v.request("POST", back, ev)
    assert s1 == s2 == 200 and b1 == b2
    state = srv.query("SELECT version FROM cloud_calls WHERE call_id = ?", (f"vonage:{conv}",))
    assert state and state[0][0] == 2, state  # created, advanced once; the replay changed nothing


def test_token_claims_are_checked(srv):
    # Tokens signed with the right secret but for another application, issued minutes ahead
    # or too long ago, or for an empty body with another body's hash: refused, no call made.
    v = vonage(srv)
    conv = "CON-" + str(uuid.uuid4())
    url = v.answer_url("+32470666007", str(uuid.uuid4()), conv)
    now = int(time.time())
    refused = {
        "other application": vonage_signed_jwt(SECRET, b"", application_id="bbbbbbbb-bbbb-cccc-dddd-0123456789ab"),
        "no application": vonage_signed_jwt(SECRET, b""),
        "iat ahead": vonage_signed_jwt(SECRET, b"", application_id=APP_ID, iat=now + 200),
        "iat stale": vonage_signed_jwt(SECRET, b"", application_id=APP_ID, iat=now - 400),
        "hash of another body": vonage_signed_jwt(SECRET, b"", application_id=APP_ID,
                                                  payload_hash=hashlib.sha256(b"{}").hexdigest()),
    }
    for what, token in refused.items():
        assert v.request("GET", url, token=token)[0] == 403, what
    assert srv.query("SELECT count(*) FROM cloud_calls WHERE call_id = ?", (f"vonage:{conv}",))[0][0] == 0
    # A good token once; the very same token again (a replay) is refused.
    good = vonage_signed_jwt(SECRET, b"", application_id=APP_ID)
    assert v.request("GET", url, token=good)[0] == 200
    assert v.request("GET", url, token=good)[0] == 403
