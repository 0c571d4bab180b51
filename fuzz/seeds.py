#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) from the project's own test
data: the RFC 4475 messages, the media fixtures, the flows of docs/flows.md, and requests shaped
like the end-to-end tests' (tests/e2e). Run from the repository root; the output is committed."""
import base64, hashlib, hmac, io, json, math, os, struct, urllib.parse, wave

C = 'fuzz/corpus'


def put(t, name, data):
    d = os.path.join(C, t)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# sip_message: the RFC 4475 torture messages plus the traffic the line sees
src = 'crates/sip/tests/rfc4475'
for f in sorted(os.listdir(src)):
    if f.endswith('.sip'):
        put('sip_message', f, open(os.path.join(src, f), 'rb').read())
sdp_offer = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
             "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")
invite = ("INVITE sip:demo@127.0.0.1:5060 SIP/2.0\r\n"
          "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK776asdhds;rport\r\n"
          "Max-Forwards: 70\r\n"
          "To: <sip:+3220000000@127.0.0.1>\r\n"
          "From: \"Jan\" <sip:+32470000001@127.0.0.1:5090>;tag=1928301774\r\n"
          "P-Asserted-Identity: <tel:+32470000001;cpc=ordinary>\r\n"
          "Remote-Party-ID: <sip:0470000001@trunk.invalid>;party=calling;privacy=off\r\n"
          "Privacy: none\r\n"
          "Diversion: <sip:+3220000001@trunk.invalid>;reason=unconditional\r\n"
          "Call-ID: a84b4c76e66710@127.0.0.1\r\n"
          "CSeq: 314159 INVITE\r\n"
          "Contact: <sip:caller@127.0.0.1:5090>\r\n"
          "Require: 100rel\r\n"
          "User-Agent: fuzz\r\n"
          "Content-Type: application/sdp\r\n"
          f"Content-Length: {len(sdp_offer)}\r\n\r\n") + sdp_offer
put('sip_message', 'invite-pai.sip', invite)
info_body = "Signal=5\r\nDuration=160\r\n"
info = ("INFO sip:belteken@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 127.0.0.1:5090;branch=z9hG4bKinfo1\r\n"
        "To: <sip:demo@127.0.0.1>;tag=abc\r\nFrom: <sip:0470000001@127.0.0.1>;tag=xyz\r\n"
        "Call-ID: info-1@127.0.0.1\r\nCSeq: 2 INFO\r\nContent-Type: application/dtmf-relay\r\n"
        f"Content-Length: {len(info_body)}\r\n\r\n") + info_body
put('sip_message', 'info-dtmf.sip', info)
resp = ("SIP/2.0 401 Unauthorized\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKreg1;received=127.0.0.1;rport=5060\r\n"
        "From: <sip:belteken@registrar.invalid>;tag=r1\r\nTo: <sip:belteken@registrar.invalid>;tag=s1\r\n"
        "Call-ID: reg-1@127.0.0.1\r\nCSeq: 1 REGISTER\r\n"
        "WWW-Authenticate: Digest realm=\"registrar.invalid\", nonce=\"abc123\", qop=\"auth\", "
        "algorithm=SHA-256, opaque=\"o\"\r\n"
        "WWW-Authenticate: Digest realm=\"registrar.invalid\", nonce=\"abc123\", algorithm=MD5\r\n"
        "Min-Expires: 120\r\nContent-Length: 0\r\n\r\n")
put('sip_message', 'register-401.sip', resp)
opts = ("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKopt\r\n"
        "From: \"sipvicious\"<sip:100@127.0.0.1>;tag=6665\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: 1@1\r\n"
        "CSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n")
put('sip_message', 'options-scanner.sip', opts)

# sdp
put('sdp', 'offer-g711-te.sdp', sdp_offer)
put('sdp', 'offer-two-streams.sdp',
    "v=0\r\no=- 2 2 IN IP6 ::1\r\ns=-\r\nt=0 0\r\na=sendonly\r\n"
    "m=video 5000 RTP/AVP 96\r\nc=IN IP6 ::1\r\na=rtpmap:96 H264/90000\r\n"
    "m=audio 5002 RTP/SAVP 0\r\nm=audio 5004/2 RTP/AVP 8 0\r\nc=IN IP4 0.0.0.0/127\r\n"
    "a=inactive\r\na=ptime:30\r\n")
put('sdp', 'offer-hold.sdp',
    "v=0\no=- 3 3 IN IP4 127.0.0.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 0 RTP/AVP 8\na=recvonly\n")


# rtp
def rtp(pt, seq, ts, ssrc, payload, marker=0, pad=0, csrc=(), ext=None):
    b0 = 0x80 | (0x20 if pad else 0) | (0x10 if ext is not None else 0) | len(csrc)
    h = struct.pack('!BBHII', b0, (marker << 7) | pt, seq, ts, ssrc)
    for c in csrc:
        h += struct.pack('!I', c)
    if ext is not None:
        h += struct.pack('!HH', 0xBEDE, len(ext) // 4) + ext
    p = payload
    if pad:
        p += b'\0' * (pad - 1) + bytes([pad])
    return h + p


put('rtp', 'pcmu.bin', rtp(0, 1, 160, 0x1234, b'\xff' * 160, marker=1))
put('rtp', 'pcma-csrc-ext-pad.bin',
    rtp(8, 2, 320, 0x1234, b'\xd5' * 160, pad=4, csrc=(1, 2), ext=b'\x10\x01\x00\x00'))
put('rtp', 'event.bin', rtp(101, 3, 480, 0x1234, bytes([5, 0x0a, 0, 160])))
put('rtp', 'rtcp-rr.bin', struct.pack('!BBHI', 0x80, 201, 1, 0x1234))


# dtmf: records of 4 timestamp bytes, 1 length byte, the payload
def rec(ts, payload):
    return struct.pack('!IB', ts, len(payload)) + payload


put('dtmf', 'press-5.bin', rec(1000, bytes([5, 0x0a, 0, 160])) + rec(1000, bytes([5, 0x0a, 1, 64]))
    + rec(1000, bytes([5, 0x8a, 3, 32])))
put('dtmf', 'star-hash-wrap.bin', rec(0xffffff00, bytes([10, 0x0a, 0, 160]))
    + rec(0x100, bytes([11, 0x8a, 0, 160])) + rec(5, bytes([16, 0, 0, 0])))

# caller_number: region byte (index into fuzz/src/lib.rs REGIONS) + the notations of
# crates/store/tests/caller.rs
for i, (r, n) in enumerate([(0, "+32470000001"), (0, "0470000001"), (0, "0032470000001"),
                            (0, "+32 470/00.00-01"), (0, "%2B32470000001;npdi"), (0, "(0470) 00 00 01"),
                            (2, "+33612345678"), (3, "+1 (202) 555-0143"), (0, "anonymous"),
                            (5, "0470000001"), (6, "+3225000000"), (1, "0201234567")]):
    put('caller_number', f'n{i:02}.txt', bytes([r]) + n.encode())

# flow_toml: every flow block of docs/flows.md (config examples are the binary's, not a flow)
doc = open('docs/flows.md').read()
for i, block in enumerate(doc.split("```toml\n")[1:]):
    block = block.split("```")[0]
    if "[[campaign]]" in block:
        continue
    put('flow_toml', f'docs-flows-{i:02}.toml', block)
# and the flows written out in the engine's tests
tests = open('crates/flow/tests/engine.rs').read()
for i, block in enumerate(tests.split('r#"')[1:]):
    block = block.split('"#')[0]
    if "[[step]]" in block:
        put('flow_toml', f'engine-tests-{i:02}.toml', block)


# audio_import: hint byte (index into HINTS in the target) + the file
def wav(rate, ch, width, n):
    bio = io.BytesIO()
    w = wave.open(bio, 'wb')
    w.setnchannels(ch)
    w.setsampwidth(width)
    w.setframerate(rate)
    fr = b''
    for i in range(n):
        v = int(8000 * math.sin(2 * math.pi * 440 * i / rate))
        s = {1: struct.pack('<B', (v >> 8) + 128), 2: struct.pack('<h', v),
             3: struct.pack('<i', v << 8)[1:], 4: struct.pack('<i', v << 16)}[width]
        fr += s * ch
    w.writeframes(fr)
    w.close()
    return bio.getvalue()


for f, h in [('tone-16k-mono.flac', 4), ('tone-44k1-stereo.mp3', 2), ('tone-48k-stereo.ogg', 3)]:
    put('audio_import', f, bytes([h]) + open('crates/media/tests/fixtures/' + f, 'rb').read())
put('audio_import', 'tone-8k-mono.wav', bytes([1]) + wav(8000, 1, 2, 1600))
put('audio_import', 'tone-22k-stereo-24bit.wav', bytes([0]) + wav(22050, 2, 3, 2205))
put('audio_import', 'tone-11k-8bit.wav', bytes([1]) + wav(11025, 1, 1, 1100))

# webhook: signature NUL query NUL body, as in tests/e2e/cloud_providers.py
tw = urllib.parse.urlencode({"AccountSid": "AC123", "CallSid": "CA1234567890ABCDE", "From": "+32470000001",
                             "Caller": "+32470000001", "To": "+3220000000", "CallStatus": "in-progress",
                             "Direction": "inbound", "Digits": "1"})
put('webhook', 'twilio-voice.bin', b"0/KCTR6DLpKmkAf8muzZqo1nDgQ=\0ev=gather&seq=3\0" + tw.encode())
tx = urllib.parse.urlencode({"AccountSid": "acc", "CallSid": "v3:abc", "From": "+32470000001",
                             "To": "+3220000000", "RecordingUrl": "https://api.telnyx.invalid/rec.wav",
                             "RecordingSid": "r1", "RecordingDuration": "3"})
put('webhook', 'telnyx-recording.bin', b"c2lnbmF0dXJl\0" b"1700000000\0" + tx.encode())


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b'=')


body = json.dumps({"from": "32470000001", "to": "3220000000", "uuid": "u1", "conversation_uuid": "CON-1",
                   "status": "answered", "direction": "inbound",
                   "dtmf": {"digits": "1", "timed_out": False}}).encode()
claims = json.dumps({"iat": 1700000000, "jti": "j",
                     "payload_hash": hashlib.sha256(body).hexdigest()}).encode()
h = b64u(b'{"alg":"HS256","typ":"JWT"}')
c = b64u(claims)
sig = b64u(hmac.new(b"fuzzing-signature-secret", h + b'.' + c, hashlib.sha256).digest())
put('webhook', 'vonage-event.bin', b"Bearer " + h + b'.' + c + b'.' + sig + b"\0ev=gather\0" + body)
put('webhook', 'vonage-claims.bin', b"Bearer x.y.z\0\0" + claims)
put('webhook', 'vonage-answer-get.bin',
    b"\0to=3220000000&from=32470000001&uuid=u&conversation_uuid=CON-2\0")

# console_forms: route byte (index into ROUTES in the target) + the body
put('console_forms', 'edit.txt', b'\x00' + b"lang0=nl&title0=Demo&transcript0=Hallo%0D%0Awereld&lang1=fr"
    b"&title1=D%C3%A9mo&goal=25.000&number=%2B32+2+000+00+00&opens=2026-12-01T00%3A00%3A00Z&closes=")
mp = (b"--fuzzboundary\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n"
      b"Content-Type: audio/wav\r\n\r\n" + wav(8000, 1, 2, 800) + b"\r\n--fuzzboundary--\r\n")
put('console_forms', 'upload.bin', b'\x01' + mp)
put('console_forms', 'judge.txt', b'\x02' + b"state=invalid")
put('console_forms', 'bulk.txt', b'\x03' + b"prefix_block=%2B32470&country=BE&trust=from_header"
    b"&since=2026-01-01&until=&state=&preview=1&reason=flood&target=invalid&expected=2")
put('console_forms', 'revert.txt', b'\x04' + b"reason=mistake")
put('console_forms', 'export.txt', b'\x05')
put('console_forms', 'erase.txt', b'\x06' + b"campaign=demo&number=%2B32470000001")
put('console_forms', 'api-judge.json', b'\x07' + b'{"state":"valid"}')
