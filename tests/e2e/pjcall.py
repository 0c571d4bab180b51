#!/usr/bin/env python3
"""One pjsua2 (PJSIP) call, as a subprocess: pjsua2 must end with libDestroy() + os._exit().

Caller (UAC):
  pjcall.py --caller +32470000001 --uri sip:demo@127.0.0.1:5060 --play speak.wav \
            --rec heard.wav --seconds 30 [--dtmf 1] [--hangup-after-ms 1500]
Callee (UAS, used to check this driver against other peers):
  pjcall.py --listen --play speak.wav --rec heard.wav --seconds 20 [--answer-after-ms 500]

Prints `CALLSTATE <state> <last status>` lines, `MEDIA active`, `MEDIA remote <addr:port>`,
`DTMF <digit>`, and at the end
one `RESULT {json}` line: last_status, last_reason, confirmed, dtmf (digits received),
connect_ms (from start to CONFIRMED), end_ms, hung_up_by ("local"/"remote"/"timeout"/null).
The SIP messages are in the output too (PJSIP log level 4), which helps when a test fails.
"""
import argparse
import json
import os
import sys
import time
import traceback

import pjsua2 as pj

ap = argparse.ArgumentParser()
ap.add_argument("--uri", help="call this URI (UAC mode)")
ap.add_argument("--listen", action="store_true", help="wait for one call and answer it (UAS)")
ap.add_argument("--caller", default="pjcall", help="user part of From (the caller ID)")
ap.add_argument("--from-uri", help="full From URI, overrides --caller (e.g. sip:anonymous@anonymous.invalid)")
ap.add_argument("--display", default="", help="display name in From")
ap.add_argument("--port", type=int, default=0, help="local SIP UDP port (0: any)")
ap.add_argument("--rtp-port", type=int, default=0, help="local RTP port (0: any)")
ap.add_argument("--play", help="WAV played to the other side once media is up (8 kHz mono s16)")
ap.add_argument("--rec", help="WAV recording of what the other side sends")
ap.add_argument("--seconds", type=float, default=30.0, help="hard limit for the whole run")
ap.add_argument("--dtmf", default="", help="RFC 4733 digits to send once confirmed")
ap.add_argument("--dtmf-after-ms", type=int, default=2000, help="delay after CONFIRMED for --dtmf")
ap.add_argument("--dtmf-info", action="store_true", help="send --dtmf as SIP INFO instead of RFC 4733")
ap.add_argument("--dtmf-plan", default="", help="RFC 4733 digits at times after CONFIRMED: '2@1500,1@14000'")
ap.add_argument("--dtmf-stdin", action="store_true",
                help="send the digits of each line read from standard input (RFC 4733); a line "
                     "'!play' starts --play from its beginning (then it does not start by itself)")
ap.add_argument("--linger-ms", type=int, default=0,
                help="keep handling events this long after the call ended (a transfer's new call)")
ap.add_argument("--hangup-after-ms", type=int, help="hang up (CANCEL/BYE) this long after the INVITE")
ap.add_argument("--answer-after-ms", type=int, default=0, help="UAS: 180 at once, 200 after this")
ap.add_argument("--log-level", type=int, default=4)
args = ap.parse_args()
if bool(args.uri) == bool(args.listen):
    ap.error("give exactly one of --uri and --listen")

T0 = time.monotonic()


def ms():
    return int((time.monotonic() - T0) * 1000)


state = {"call": None, "done": False, "confirmed": False, "status": None, "reason": "",
         "dtmf": "", "connect_ms": None, "end_ms": None, "hung_up_by": None,
         "incoming_ms": None, "invite_ms": 0}


class Call(pj.Call):
    def __init__(self, acc, cid=pj.PJSUA_INVALID_ID):
        super().__init__(acc, cid)
        self.player = None
        self.recorder = None

    def onCallState(self, prm):
        ci = self.getInfo()
        print("CALLSTATE %s %d %s t=%d" % (ci.stateText, ci.lastStatusCode, ci.lastReason, ms()),
              flush=True)
        if ci.lastStatusCode:
            state["status"] = ci.lastStatusCode
            state["reason"] = ci.lastReason
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and not state["confirmed"]:
            state["confirmed"] = True
            state["connect_ms"] = ms()
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            state["done"] = True
            state["end_ms"] = ms()
            if state["hung_up_by"] is None:
                state["hung_up_by"] = "remote"

    def onCallMediaState(self, prm):
        try:
            ci = self.getInfo()  # keep a reference: iterating getInfo().media reads freed memory
            for mi in ci.media:
                if (mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                        and self.recorder is None and self.player is None):
                    am = self.getAudioMedia(mi.index)
                    print("MEDIA active t=%d" % ms(), flush=True)
                    try:  # where the other side's RTP is (tests aim a second sender at it)
                        print("MEDIA remote %s" % self.getStreamInfo(mi.index).remoteRtpAddress,
                              flush=True)
                    except Exception:
                        traceback.print_exc()
                    state["media"] = am
                    if args.play and not args.dtmf_stdin:
                        self.player = pj.AudioMediaPlayer()
                        self.player.createPlayer(args.play, pj.PJMEDIA_FILE_NO_LOOP)
                        self.player.startTransmit(am)
                    if args.rec:
                        self.recorder = pj.AudioMediaRecorder()
                        self.recorder.createRecorder(args.rec)
                        am.startTransmit(self.recorder)
        except Exception:
            traceback.print_exc()

    def onDtmfDigit(self, prm):
        state["dtmf"] += prm.digit
        print("DTMF %s t=%d" % (prm.digit, ms()), flush=True)


class Acc(pj.Account):
    def onIncomingCall(self, prm):
        c = Call(self, prm.callId)
        if state["call"] is not None:  # one call only
            op = pj.CallOpParam()
            op.statusCode = 486
            c.hangup(op)
            return
        state["call"] = c
        state["incoming_ms"] = ms()
        op = pj.CallOpParam()
        op.statusCode = 180 if args.answer_after_ms > 0 else 200
        c.answer(op)


ep = pj.Endpoint()
ep.libCreate()
cfg = pj.EpConfig()
cfg.uaConfig.threadCnt = 0
cfg.uaConfig.mainThreadOnly = True
cfg.logConfig.level = args.log_level
cfg.logConfig.consoleLevel = args.log_level
cfg.medConfig.clockRate = 8000
cfg.medConfig.sndClockRate = 8000
cfg.medConfig.noVad = True
cfg.medConfig.ecTailLen = 0
ep.libInit(cfg)
tc = pj.TransportConfig()
tc.port = args.port
tc.boundAddress = tc.publicAddress = "127.0.0.1"
tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
local_port = ep.transportGetInfo(tid).localName.split(":")[-1]
ep.libStart()
ep.audDevManager().setNullDev()  # no sound card; the conference bridge still runs on a clock
for c in ep.codecEnum2():  # G.711 only
    ep.codecSetPriority(c.codecId, 255 if c.codecId.startswith(("PCMU", "PCMA")) else 0)

ac = pj.AccountConfig()
uri = args.from_uri or "sip:%s@127.0.0.1:%s" % (args.caller, local_port)
ac.idUri = ('"%s" <%s>' % (args.display, uri)) if args.display else uri
ac.mediaConfig.transportConfig.port = args.rtp_port
ac.mediaConfig.transportConfig.portRange = 0 if args.rtp_port else 1000
ac.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
ac.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
acc = Acc()
acc.create(ac)
print("READY sip=127.0.0.1:%s t=%d" % (local_port, ms()), flush=True)

if args.uri:
    call = Call(acc)
    state["call"] = call
    state["invite_ms"] = ms()
    call.makeCall(args.uri, pj.CallOpParam(True))

answered = False
hung_up = False
dtmf_sent = False
plan = []
for item in filter(None, args.dtmf_plan.split(",")):
    digit, _, at = item.partition("@")
    plan.append((int(at), digit))
plan.sort()
if args.dtmf_stdin:
    os.set_blocking(sys.stdin.fileno(), False)
stdin_buf = ""
while not state["done"] and time.monotonic() - T0 < args.seconds:
    ep.libHandleEvents(10)
    c = state["call"]
    if c is None:
        continue
    if (args.listen and not answered and args.answer_after_ms > 0 and state["incoming_ms"] is not None
            and ms() - state["incoming_ms"] >= args.answer_after_ms and not state["done"]):
        op = pj.CallOpParam()
        op.statusCode = 200
        try:
            c.answer(op)
        except Exception:
            traceback.print_exc()
        answered = True
    if (args.hangup_after_ms is not None and not hung_up
            and ms() - state["invite_ms"] >= args.hangup_after_ms):
        hung_up = True
        state["hung_up_by"] = "local"
        print("HANGUP local t=%d" % ms(), flush=True)
        try:
            c.hangup(pj.CallOpParam())
        except Exception:
            traceback.print_exc()
    if args.dtmf_stdin and state["confirmed"]:
        try:
            chunk = sys.stdin.read()
        except (BlockingIOError, TypeError):
            chunk = None
        if chunk:
            stdin_buf += chunk
        while "\n" in stdin_buf:
            digits, stdin_buf = stdin_buf.split("\n", 1)
            digits = digits.strip()
            if digits == "!play" and args.play and state.get("media") is not None:
                try:
                    c.player = pj.AudioMediaPlayer()
                    c.player.createPlayer(args.play, pj.PJMEDIA_FILE_NO_LOOP)
                    c.player.startTransmit(state["media"])
                    print("PLAY t=%d" % ms(), flush=True)
                except Exception:
                    traceback.print_exc()
                continue
            if digits:
                try:
                    c.dialDtmf(digits)
                    print("DTMF-SENT %s t=%d" % (digits, ms()), flush=True)
                except Exception:
                    traceback.print_exc()
    while plan and state["confirmed"] and ms() - state["connect_ms"] >= plan[0][0]:
        at, digit = plan.pop(0)
        try:
            c.dialDtmf(digit)
            print("DTMF-SENT %s t=%d" % (digit, ms()), flush=True)
        except Exception:
            traceback.print_exc()
    if (args.dtmf and not dtmf_sent and state["confirmed"]
            and ms() - state["connect_ms"] >= args.dtmf_after_ms):
        dtmf_sent = True
        try:
            if args.dtmf_info:
                prm = pj.CallSendDtmfParam()
                prm.digits = args.dtmf
                prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
                c.sendDtmf(prm)
            else:
                c.dialDtmf(args.dtmf)  # RFC 4733 by default
            print("DTMF-SENT %s t=%d" % (args.dtmf, ms()), flush=True)
        except Exception:
            traceback.print_exc()

linger_until = time.monotonic() + args.linger_ms / 1000.0
while state["done"] and time.monotonic() < linger_until:
    ep.libHandleEvents(10)

if state["call"] is not None and not state["done"]:
    state["hung_up_by"] = "timeout"
    print("HANGUP timeout t=%d" % ms(), flush=True)
    try:
        state["call"].hangup(pj.CallOpParam())
    except Exception:
        traceback.print_exc()
    t1 = time.monotonic()
    while not state["done"] and time.monotonic() - t1 < 3:
        ep.libHandleEvents(20)

result = {k: state[k] for k in ("confirmed", "dtmf", "connect_ms", "end_ms", "hung_up_by")}
result["last_status"] = state["status"]
result["last_reason"] = state["reason"]
result["got_call"] = state["call"] is not None
print("RESULT " + json.dumps(result), flush=True)
c = state["call"]
if c is not None:
    c.recorder = c.player = None  # closes the recorder: finalises the WAV header
ep.libDestroy()  # before the Call object goes, else ~Call asserts
sys.stdout.flush()
os._exit(0)
