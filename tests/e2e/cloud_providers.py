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
    # A transfer the call ended in: (callback URL, target as the provider would dial it).
    dial: tuple[str, str] | None = None
    base: dict = field(default_factory=dict)  # the call's own parameters


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
        res = CallResult(base=base)

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
                elif v.tag == "Dial":
                    target = v[0]
                    res.dial = (v.get("action"), f"{target.tag}:{target.text}")
                    nxt = None
                    break
                elif v.tag == "Hangup":
                    nxt = None
                    break
            if nxt is None:
                break
            if nxt != "have-body":
                status, body = post(nxt[0], nxt[1])
                assert status == 200, body
        if res.dial is None:
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


# -- Vonage ------------------------------------------------------------------------------------

def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def vonage_signed_jwt(secret: str, body: bytes, *, iat: int | None = None, alg: str = "HS256",
                      api_key: str = "abcd1234", application_id: str = "", jti: str | None = None,
                      payload_hash: str | None = None) -> str:
    """A Vonage signed-webhook token: HS256 with the signature secret, `iat`, `jti`, `iss`,
    `application_id`, `payload_hash` (hex SHA-256 of the body, the empty one's for a GET)."""
    header = b64url(('{"alg":"%s","typ":"JWT"}' % alg).encode())
    claims = {"iat": int(time.time()) if iat is None else iat, "jti": jti or str(uuid.uuid4()),
              "iss": "Vonage", "api_key": api_key, "application_id": application_id,
              "payload_hash": payload_hash or hashlib.sha256(body).hexdigest()}
    import json
    c = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{header}.{c}".encode(), hashlib.sha256).digest()
    return f"{header}.{c}.{b64url(sig)}"


def vonage_api_jwt_ok(authorization: str | None, public_key, application_id: str) -> bool:
    """Whether a request to Vonage's API carries a valid application JWT (RS256)."""
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    if not authorization or not authorization.startswith("Bearer "):
        return False
    try:
        h, c, s = authorization[len("Bearer "):].split(".")
        header = json.loads(b64url_decode(h))
        claims = json.loads(b64url_decode(c))
        if header.get("alg") != "RS256" or claims.get("application_id") != application_id:
            return False
        if abs(claims["iat"] - time.time()) > 60 or claims["exp"] < time.time() or not claims.get("jti"):
            return False
        public_key.verify(b64url_decode(s), f"{h}.{c}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return True
    except Exception:  # noqa: BLE001  (any malformed token is simply not valid)
        return False


class Vonage:
    """Vonage's Voice API towards belteken: the answer webhook (GET, query parameters), event
    webhooks as JSON, each signed with a JWT (HS256, the signature secret, payload_hash);
    NCCO answers followed action by action."""

    name = "vonage"

    def __init__(self, server, did: str, secret: str, application_id: str):
        self.server = server
        self.did = did  # E.164 with +; Vonage sends it without
        self.secret = secret
        self.application_id = application_id

    def msisdn(self, n: str) -> str:
        return n[1:] if n.startswith("+") else n

    def request(self, method: str, url: str, body: dict | None = None,
                token: str | None = None, sign: bool = True) -> tuple[int, bytes]:
        import json
        assert url.startswith(PUBLIC), url
        raw = json.dumps(body).encode() if body is not None else b""
        h = {}
        if raw:
            h["Content-Type"] = "application/json"
        if sign:
            h["Authorization"] = "Bearer " + (token or vonage_signed_jwt(
                self.secret, raw, application_id=self.application_id))
        c = http.client.HTTPConnection(LOOPBACK, self.server.http_port, timeout=30)
        try:
            c.request(method, url[len(PUBLIC):], body=raw or None, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def answer_url(self, caller: str, call_uuid: str, conv: str) -> str:
        q = urllib.parse.urlencode({"to": self.msisdn(self.did), "from": self.msisdn(caller),
                                    "uuid": call_uuid, "conversation_uuid": conv,
                                    "region_url": "https://api-eu-3.vonage.com"})
        return f"{PUBLIC}/hooks/vonage/answer?{q}"

    def call(self, caller: str, *, keys=(), recording: tuple[str, str] | None = None,
             call_sid: str | None = None, recording_late: bool = False) -> CallResult:
        """recording_late: the recording's event comes after the record action has ended and
        the NCCO's next input has been answered (Vonage sends it when the file is ready)."""
        import json
        peers.note_caller(caller)
        call_uuid = str(uuid.uuid4())
        conv = call_sid or "CON-" + str(uuid.uuid4())
        keys = list(keys)
        rec_event = None
        base = {"from": self.msisdn(caller), "to": self.msisdn(self.did), "uuid": call_uuid,
                "conversation_uuid": conv}
        res = CallResult(base=base)

        def event(url, body):
            s, b = self.request("POST", url, body)
            res.statuses.append(s)
            return s, b

        now = lambda: time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())  # noqa: E731
        s, _ = event(PUBLIC + "/hooks/vonage/event", dict(base, status="started", direction="inbound",
                                                           timestamp=now()))
        assert s in (200, 204)
        s, b = self.request("GET", self.answer_url(caller, call_uuid, conv))
        res.statuses.append(s)
        assert s == 200, b
        event(PUBLIC + "/hooks/vonage/event", dict(base, status="answered", direction="inbound",
                                                    timestamp=now()))
        ncco = json.loads(b)
        for _ in range(80):
            nxt = None
            for a in ncco:
                kind = a["action"]
                res.verbs.append(kind)
                if kind == "stream":
                    url = a["streamUrl"][0]
                    assert url.startswith(PUBLIC + "/hooks/prompts/"), url
                    st, wav = self.server.get(url[len(PUBLIC):])
                    assert st == 200 and wav[:4] == b"RIFF", url
                    res.played.append(url)
                elif kind == "record":
                    assert recording, f"a record the script did not expect: {res.verbs}"
                    assert a["format"] == "wav" and a["eventUrl"]
                    rec_url, rec_sid = recording
                    res.recordings.append(rec_sid)
                    rec_event = (a["eventUrl"][0], {
                        "start_time": now(), "recording_url": rec_url, "size": 48044,
                        "recording_uuid": rec_sid, "end_time": now(), "conversation_uuid": conv,
                        "timestamp": now()})
                    if not recording_late:
                        st, _ = event(*rec_event)
                        assert st in (200, 204)
                        rec_event = None
                elif kind == "input":
                    q = urllib.parse.parse_qs(urllib.parse.urlparse(a["eventUrl"][0]).query)
                    asks = q.get("ev", [""])[0] in ("gather", "wait")
                    key = keys.pop(0) if (asks and keys) else None
                    st, b = event(a["eventUrl"][0], dict(
                        base, dtmf={"digits": key or "", "timed_out": key is None},
                        speech={"results": []}, timestamp=now()))
                    assert st == 200, b
                    nxt = json.loads(b)
                    if recording_late and rec_event is not None:
                        res.verbs.append("late-recording-event")
                        st, _ = event(*rec_event)
                        assert st in (200, 204)
                        rec_event = None
                    break
                elif kind == "connect":
                    ep = a["endpoint"][0]
                    res.dial = (a["eventUrl"][0], f"{ep['type']}:{ep.get('uri') or ep.get('number')}")
                    nxt = None
                    break
                else:
                    raise AssertionError(f"unexpected NCCO action {a}")
            if nxt is None:
                break
            ncco = nxt
        if res.dial is None:
            s, _ = event(PUBLIC + "/hooks/vonage/event", dict(base, status="completed", direction="inbound",
                                                               duration="12", timestamp=now()))
            assert s in (200, 204), s
        return res
