"""Telnyx TeXML through its webhooks, against the real binary: this test plays Telnyx's role.

Every request is signed as Telnyx signs it (Ed25519 over `telnyx-timestamp|body`, the key pair
made here and its public key in the config, as an operator copies it from the portal). The
recording comes from a local HTTPS server the way Telnyx hands it over (a pre-signed link in
`RecordingUrl`, no credentials), and the provider's copy is deleted through the TeXML REST API
(`DELETE /v2/texml/Accounts/{AccountSid}/Recordings/{RecordingSid}.json`, bearer API key)."""
from __future__ import annotations

import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import pytest

from cloud_providers import PUBLIC, Telnyx
from provider_api import ProviderApi
from server import campaign_toml

DID = "+3220000002"
ACCOUNT = "cb6cfbbc-eb00-41af-a3f3-0d7b32009e4b"
API_KEY = "KEY0123456789ABCDEF_test"


@pytest.fixture(scope="module")
def telnyx_api(tmp_path_factory):
    api = ProviderApi(tmp_path_factory.mktemp("telnyx-api"),
                      lambda a: a is None or a == f"Bearer {API_KEY}")
    yield api
    api.close()


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """Where Telnyx's pre-signed recording links point: another host, no credentials."""
    api = ProviderApi(tmp_path_factory.mktemp("telnyx-storage"), lambda a: a is None)
    yield api
    api.close()


@pytest.fixture(scope="module")
def telnyx_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def srv(server_factory, audio, telnyx_api, storage, telnyx_key, tmp_path_factory):
    t = Telnyx(None, DID, ACCOUNT, telnyx_key)
    # One CA file with both test CAs (an operator's file may hold several).
    cas = tmp_path_factory.mktemp("cas") / "cas.pem"
    cas.write_bytes(telnyx_api.ca.read_bytes() + storage.ca.read_bytes())
    cfg = campaign_toml(prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"},
                        extra=f'dids = ["{DID}"]\n') + f"""
[cloud]
public_url = "{PUBLIC}"
fetch_attempts = 3
fetch_pause_ms = 200
allow_private_fetch = true  # the stand-in APIs are on loopback
ca_file = "{cas}"

[cloud.telnyx]
public_key = "{t.public_key_b64}"
api_key = "{API_KEY}"
api_base = "{telnyx_api.base}"
"""
    return server_factory("cloud-telnyx", cfg, files=audio.prompts)


def telnyx(srv, key) -> Telnyx:
    return Telnyx(srv, DID, ACCOUNT, key)


def recording(api: ProviderApi, storage: ProviderApi, wav: bytes) -> tuple[str, str]:
    """A recording as TeXML announces it: a pre-signed storage URL and a UUID RecordingSid;
    the TeXML REST API deletes it."""
    sid = str(uuid.uuid4())
    url = storage.add_recording(f"/telnyx-recordings/{sid}.wav?X-Amz-Signature=abc", wav)
    api.add_recording(f"/v2/texml/Accounts/{ACCOUNT}/Recordings/{sid}", wav)
    return url, sid


def test_wrong_or_stale_signatures_are_refused(srv, telnyx_key):
    t = telnyx(srv, telnyx_key)
    params = t.base_params(t.new_call_sid(), "+32470555001")
    assert t.post(PUBLIC + "/hooks/telnyx/voice", params, headers={})[0] == 403
    # Signed by another key.
    other = Telnyx(srv, DID, ACCOUNT)
    body = urllib.parse.urlencode(params).encode()
    assert t.post(PUBLIC + "/hooks/telnyx/voice", params, headers=other.sign(body))[0] == 403
    # The right key, but a timestamp ten minutes old (a replayed request) or in the future.
    assert t.post(PUBLIC + "/hooks/telnyx/voice", params,
                  headers=t.sign(body, int(time.time()) - 600))[0] == 403
    assert t.post(PUBLIC + "/hooks/telnyx/voice", params,
                  headers=t.sign(body, int(time.time()) + 600))[0] == 403
    # A signature of another body (the caller changed).
    tampered = dict(params, From="+32470555002")
    assert t.post(PUBLIC + "/hooks/telnyx/voice", tampered, headers=t.sign(body))[0] == 403
    assert srv.query("SELECT count(*) FROM cloud_calls")[0][0] == 0
    assert srv.counts() == (0, 0)


def test_telnyx_call_signs_with_its_recording(srv, audio, telnyx_api, storage, telnyx_key):
    t = telnyx(srv, telnyx_key)
    url, sid = recording(telnyx_api, storage, audio.name.read_bytes())
    res = t.call("+32470555003", recording=(url, sid))
    assert "Record" in res.verbs and "Play" in res.verbs and "Hangup" in res.verbs, (res, srv.log_text()[-3000:])
    assert srv.wait_counts((1, 0)) == (1, 0)
    sigs = srv.signatures()
    assert len(sigs) == 1 and sigs[0]["channel"] == "telnyx"
    assert sigs[0]["verified"] == 1 and sigs[0]["speech_ms"] >= 500
    assert sigs[0]["recording"][:4] == b"RIFF" and len(sigs[0]["recording"]) > 8000
    assert srv.query("SELECT trust FROM signatures")[0][0] == "network"
    # The pre-signed link is fetched without credentials (the API key stays with the API).
    gets = storage.seen("GET", f"/telnyx-recordings/{sid}.wav")
    assert gets and all(g.auth is None for g in gets)
    # Telnyx's copy is deleted through the TeXML REST API with the API key.
    dels = telnyx_api.wait_seen("DELETE", f"/v2/texml/Accounts/{ACCOUNT}/Recordings/{sid}.json")
    assert dels and dels[0].auth == f"Bearer {API_KEY}", (telnyx_api.requests, srv.log_text()[-2000:])


def test_texml_answers_use_telnyx_attributes(srv, telnyx_key):
    # A first request for a new call: the answer is TeXML with Telnyx's Gather and Record forms.
    t = telnyx(srv, telnyx_key)
    params = t.base_params(t.new_call_sid(), "+32470555004")
    s, body = t.post(PUBLIC + "/hooks/telnyx/voice", params)
    assert s == 200 and body.startswith(b"<?xml") and b"<Response>" in body, body
    assert b"actionOnEmptyResult" not in body
    # The same signed request again (Telnyx retries a webhook that timed out) gets the same
    # answer and does not start a second call.
    s2, body2 = t.post(PUBLIC + "/hooks/telnyx/voice", params)
    assert (s2, body2) == (s, body)
    assert srv.query("SELECT count(*) FROM cloud_calls WHERE call_id = ?", (f"telnyx:{params['CallSid']}",))[0][0] == 1


def test_withheld_caller_is_unverified(srv, audio, telnyx_api, storage, telnyx_key):
    t = telnyx(srv, telnyx_key)
    url, sid = recording(telnyx_api, storage, audio.name.read_bytes())
    t.call("anonymous", recording=(url, sid))
    assert srv.wait_counts((1, 1)) == (1, 1)
    sigs = srv.signatures()
    assert [s["channel"] for s in sigs] == ["telnyx", "telnyx"]
    assert telnyx_api.wait_seen("DELETE", f"/v2/texml/Accounts/{ACCOUNT}/Recordings/{sid}.json")


def test_callback_state_cannot_be_forged(srv, telnyx_key):
    # Telnyx signs the body, not the URL: a captured request posted again with another `ev`
    # or `seq` in the query (or without our tag) is refused and changes nothing.
    t = telnyx(srv, telnyx_key)
    params = t.base_params(t.new_call_sid(), "+32470555006")
    s, body = t.post(PUBLIC + "/hooks/telnyx/voice", params)
    assert s == 200, body
    root = ET.fromstring(body)
    action = next(v.get("action") or v.text for v in root.iter() if v.get("action") or v.tag == "Redirect")
    u = urllib.parse.urlparse(action)
    q = dict(urllib.parse.parse_qsl(u.query))
    assert {"ev", "seq"} <= q.keys(), action
    call_id = f"telnyx:{params['CallSid']}"
    version = srv.query("SELECT version FROM cloud_calls WHERE call_id = ?", (call_id,))[0][0]

    def with_query(**changes) -> str:
        new = {k: v for k, v in dict(q, **changes).items() if v is not None}
        return urllib.parse.urlunparse(u._replace(query=urllib.parse.urlencode(new)))

    forged = [
        with_query(ev="record" if q["ev"] != "record" else "gather"),
        with_query(seq=str(int(q["seq"]) + 1)),
        with_query(seq=str(int(q["seq"]) - 1)),
        with_query(t=None),
        with_query(t="A" * len(q.get("t", "AAAA"))),
    ]
    for url in forged:
        assert t.post(url, dict(params, Digits="1"))[0] == 403, url
    assert srv.query("SELECT version FROM cloud_calls WHERE call_id = ?", (call_id,))[0][0] == version
    assert "t" in q, action
    # The callback as given still works.
    assert t.post(action, params)[0] == 200
    assert srv.query("SELECT version FROM cloud_calls WHERE call_id = ?", (call_id,))[0][0] == version + 1
