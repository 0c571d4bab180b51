"""The cloud providers' side of a call, for the cloud tests: each class plays one provider
towards belteken's webhooks with realistic requests (the field names and values the provider
documents), signs them as the provider does, and follows belteken's answers the way the
provider's call engine would.

- Twilio: form-encoded webhooks signed with X-Twilio-Signature (HMAC-SHA1 over the public URL
  and the sorted parameters); answers are TwiML.
- Telnyx TeXML: form-encoded webhooks with TeXML's field names, signed with Ed25519 over
  `timestamp|body` (telnyx-signature-ed25519, telnyx-timestamp); answers are TeXML.

A call follows a script: `keys` are pressed, one per Gather the caller meets (None: no key),
and a Record is answered with a recording served by the provider's API (provider_api.py).
The public base URL is a name the server never binds, as behind a reverse proxy."""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import peers
from peers import LOOPBACK

PUBLIC = "https://line.example.test"


def twilio_signature(token: str, url: str, params: dict) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


@dataclass
class CallResult:
    verbs: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)  # prompt URLs, in order
    recordings: list[str] = field(default_factory=list)  # recording ids handed over
    statuses: list[int] = field(default_factory=list)


class Provider:
    """What the TwiML dialects share: posting a signed form and following the answers."""

    name = ""
    voice_path = ""
    status_path = ""

    def __init__(self, server, did: str):
        self.server = server
        self.did = did

    # -- to be provided per provider ----------------------------------------------------------
    def base_params(self, call_sid: str, caller: str) -> dict:
        raise NotImplementedError

    def headers_for(self, url: str, params: dict, body: bytes) -> dict:
        raise NotImplementedError

    def recording_params(self, rec_url: str, rec_sid: str, status: bool) -> dict:
        raise NotImplementedError

    def new_call_sid(self) -> str:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def post(self, url: str, params: dict, headers: dict | None = None) -> tuple[int, bytes]:
        assert url.startswith(PUBLIC), url
        body = urllib.parse.urlencode(params).encode()
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(self.headers_for(url, params, body) if headers is None else headers)
        c = http.client.HTTPConnection(LOOPBACK, self.server.http_port, timeout=30)
        try:
            c.request("POST", url[len(PUBLIC):], body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def call(self, caller: str, *, keys=(), recording: tuple[str, str] | None = None,
             call_sid: str | None = None, hangup_in_record: bool = False) -> CallResult:
        """One call from `caller`: follows the answers to the end, then the status callback."""
        peers.note_caller(caller)  # the privacy test (run last) looks for it everywhere
        call_sid = call_sid or self.new_call_sid()
        base = self.base_params(call_sid, caller)
        keys = list(keys)
        res = CallResult()

        def post(url, extra=None):
            p = dict(base)
            p.update(extra or {})
            s, b = self.post(url, p)
            res.statuses.append(s)
            return s, b

        status, body = post(PUBLIC + self.voice_path)
        assert status == 200, body
        for _ in range(60):
            verbs = list(ET.fromstring(body))
            nxt = None
            for v in verbs:
                res.verbs.append(v.tag)
                if v.tag == "Play":
                    self.fetch_prompt(v.text, res)
                elif v.tag == "Gather":
                    for p in v.findall("Play"):
                        self.fetch_prompt(p.text, res)
                    key = keys.pop(0) if keys else None
                    if key is not None:
                        nxt = (v.get("action"), {"Digits": key})
                        break
                    if self.empty_gather_calls_action(v):
                        nxt = (v.get("action"), {"Digits": ""})
                        break
                    continue  # on to the next verb (TeXML: the Redirect)
                elif v.tag == "Record":
                    assert recording, f"a Record the script did not expect: {res.verbs}"
                    rec_url, rec_sid = recording
                    res.recordings.append(rec_sid)
                    extra = self.recording_params(rec_url, rec_sid, status=False)
                    if hangup_in_record:
                        extra["Digits"] = "hangup"
                        extra["CallStatus"] = "completed"
                    s, b = post(v.get("action"), extra)
                    assert s == 200, b
                    # The recording status callback comes beside the call's flow.
                    cb = post(v.get("recordingStatusCallback"),
                              self.recording_params(rec_url, rec_sid, status=True))
                    assert cb[0] in (200, 204), cb
                    body = b
                    nxt = "have-body"
                    break
                elif v.tag == "Redirect":
                    nxt = (v.text, {})
                    break
                elif v.tag in ("Pause",):
                    continue
                elif v.tag in ("Hangup", "Dial"):
                    nxt = None
                    break
            if nxt is None:
                break
            if nxt != "have-body":
                status, body = post(nxt[0], nxt[1])
                assert status == 200, body
        s, _ = post(PUBLIC + self.status_path, {"CallStatus": "completed", "CallDuration": "12"})
        assert s in (200, 204)
        return res

    def empty_gather_calls_action(self, gather) -> bool:
        return gather.get("actionOnEmptyResult") == "true"

    def fetch_prompt(self, url: str, res: CallResult):
        assert url.startswith(PUBLIC + "/hooks/prompts/"), url
        s, wav = self.server.get(url[len(PUBLIC):])
        assert s == 200 and wav[:4] == b"RIFF" and wav[8:12] == b"WAVE", url
        res.played.append(url)


class Twilio(Provider):
    name = "twilio"
    voice_path = "/hooks/twilio/voice"
    status_path = "/hooks/twilio/status"

    def __init__(self, server, did: str, account_sid: str, token: str):
        super().__init__(server, did)
        self.account_sid = account_sid
        self.token = token

    def new_call_sid(self) -> str:
        return "CA" + uuid.uuid4().hex

    def base_params(self, call_sid: str, caller: str) -> dict:
        return {"AccountSid": self.account_sid, "CallSid": call_sid, "From": caller, "Caller": caller,
                "To": self.did, "Called": self.did, "CallStatus": "in-progress", "Direction": "inbound",
                "ApiVersion": "2010-04-01", "FromCountry": "BE", "ToCountry": "BE"}

    def headers_for(self, url: str, params: dict, body: bytes) -> dict:
        return {"X-Twilio-Signature": twilio_signature(self.token, url, params),
                "I-Twilio-Idempotency-Token": str(uuid.uuid4())}

    def recording_params(self, rec_url: str, rec_sid: str, status: bool) -> dict:
        p = {"RecordingUrl": rec_url, "RecordingSid": rec_sid, "RecordingDuration": "3"}
        if status:
            p.update({"RecordingStatus": "completed", "RecordingChannels": "1",
                      "RecordingSource": "RecordVerb", "RecordingStartTime": "Sun, 29 Nov 2026 02:00:00 +0000"})
        else:
            p["Digits"] = ""
        return p


class Telnyx(Provider):
    name = "telnyx"
    voice_path = "/hooks/telnyx/voice"
    status_path = "/hooks/telnyx/status"

    def __init__(self, server, did: str, account_sid: str, key: Ed25519PrivateKey | None = None):
        super().__init__(server, did)
        self.account_sid = account_sid
        self.key = key or Ed25519PrivateKey.generate()
        self.clock_skew = 0

    @property
    def public_key_b64(self) -> str:
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def new_call_sid(self) -> str:
        return "v3:" + base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes[:10]).decode().rstrip("=")

    def base_params(self, call_sid: str, caller: str) -> dict:
        return {"AccountSid": self.account_sid, "CallSid": call_sid, "CallSidLegacy": call_sid,
                "ConnectionId": "1494404757140276705", "From": caller, "To": self.did,
                "CallStatus": "in-progress", "Direction": "inbound", "CallerId": caller}

    def sign(self, body: bytes, timestamp: int | None = None) -> dict:
        ts = str(int(time.time()) + self.clock_skew if timestamp is None else timestamp)
        sig = self.key.sign(ts.encode() + b"|" + body)
        return {"telnyx-signature-ed25519": base64.b64encode(sig).decode(), "telnyx-timestamp": ts}

    def headers_for(self, url: str, params: dict, body: bytes) -> dict:
        return self.sign(body)

    def recording_params(self, rec_url: str, rec_sid: str, status: bool) -> dict:
        p = {"RecordingUrl": rec_url, "RecordingSid": rec_sid, "RecordingDuration": "3"}
        if status:
            p.update({"RecordingStatus": "completed", "RecordingChannels": "1",
                      "RecordingSource": "RecordVerb"})
        else:
            p["Digits"] = ""
        return p

    def empty_gather_calls_action(self, gather) -> bool:
        # TeXML has no actionOnEmptyResult: without a key the next verb runs.
        assert gather.get("actionOnEmptyResult") is None
        return False
