"""Call flows from configuration alone, against the real binary: the trilingual Belgian flow of
docs/flows.md as written (language menu with barge-in, record and keep or record again, the
signature number said in each language, withdrawal by phone, and press 0 for the helpline: the
caller gets a REFER and a baresip helpline answers the transferred call)."""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import peers
import wavs
from server import REPO, Server

LANG_DIGIT = {"nl": "1", "fr": "2", "en": "3"}


def documented_flow(title: str) -> str:
    """The ```toml block of docs/flows.md under the heading `title`."""
    text = (REPO / "docs" / "flows.md").read_text()
    section = text.split("## " + title, 1)[1]
    return section.split("```toml", 1)[1].split("```", 1)[0]


def as_campaign(flow: str, *, slug: str, helpline: str) -> str:
    """A flow file's TOML moved under one campaign: [x] -> [campaign.flow.x], [[step]] ->
    [[campaign.flow.step]], top-level keys under [campaign.flow]."""
    top, body, in_table = [], [], False
    for line in flow.splitlines():
        stripped = line.strip()
        if stripped.startswith("[["):
            in_table = True
            body.append(line.replace("[[", "[[campaign.flow.", 1))
        elif stripped.startswith("["):
            in_table = True
            body.append(line.replace("[", "[campaign.flow.", 1))
        elif not in_table:
            if stripped.startswith("helpline"):
                line = 'helpline = "%s"' % helpline if helpline else ""
            top.append(line)
        else:
            body.append(line)
    head = '[[campaign]]\nslug = "%s"\ntitle = "Trilingual test line"\n\n[campaign.flow]\n' % slug
    return head + "\n".join(top) + "\n\n" + "\n".join(body) + "\n"


class Call:
    """One interactive caller and the server's log lines about its call."""

    def __init__(self, srv: Server, caller: str, audio_file: Path, tmp: Path, linger_ms=None):
        self.srv = srv
        self.mark = len(srv.log_text())
        self.pj = peers.PjInteractive(srv.uri("belgium"), caller=caller, play=audio_file, seconds=90,
                                      rec=tmp / ("heard-%s.wav" % caller[-3:]), linger_ms=linger_ms,
                                      log=tmp / ("pj-%s.log" % caller[-3:]))
        self.heard = tmp / ("heard-%s.wav" % caller[-3:])

    def log(self) -> str:
        return self.srv.log_text()[self.mark:]

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log())
            if m:
                return m
            time.sleep(0.05)
        raise AssertionError("no %r in the server log:\n%s\n--- pjcall ---\n%s"
                             % (pattern, self.log()[-3000:], self.pj.log.read_text()[-3000:]))

    def at_step(self, step: str, timeout: float = 30) -> re.Match:
        return self.wait_for(r' step=%s lang=(\w+)' % re.escape(step), timeout)


def _server(server_factory, audio, tmp_path, helpline: str) -> Server:
    files = {}
    for lang in ("nl", "fr", "en"):
        files[f"{lang}/greeting.wav"] = audio.greeting
        files[f"{lang}/story.wav"] = audio.story
        files[f"{lang}/thanks.wav"] = audio.thanks
    cfg = as_campaign(documented_flow("Example: a trilingual Belgian line"), slug="belgium",
                      helpline=helpline)
    cfg = cfg.replace("seconds = 3", "seconds = 1", 1)  # ring 1 s instead of 3: a faster test
    return server_factory("flows", cfg, files=files)


def test_trilingual_flow_end_to_end(server_factory, audio, tmp_path):
    # The helpline: baresip, answering automatically.
    helpline = peers.Baresip(tmp_path / "helpline", user="hulplijn", play=audio.quiet, auto_answer=True)
    try:
        srv = _server(server_factory, audio, tmp_path, helpline.uri)
        # The caller says their name when the recording starts (the test tells it when).
        speaking = wavs.delayed(audio.name, 0.6, tmp_path / "name-now.wav", tail_seconds=1)

        # 1. French, keep the first take, hear the signature number, press 0: the helpline.
        fr = Call(srv, "+32470000601", speaking, tmp_path, linger_ms=6000)
        assert fr.at_step("language").group(1)
        fr.pj.press(LANG_DIGIT["fr"])  # barge-in: the menu prompt is cut short
        assert fr.at_step("story").group(1) == "fr"
        fr.at_step("record")
        fr.pj.speak()
        fr.wait_for(r"recording ended")
        fr.pj.press("1")  # keep
        fr.wait_for(r"result=Counted \{ number: 1 \}")
        assert fr.at_step("number").group(1) == "fr"
        fr.at_step("offer", timeout=40)
        fr.pj.press("0")
        fr.wait_for(r"REFER to the helpline call=\S+ ok=true|REFER to the helpline.*ok=true")
        assert helpline.wait_event({"CALL_ESTABLISHED"}, 20) is not None, helpline.logpath.read_text(errors='replace')[-3000:]
        r = fr.pj.wait()
        assert r.confirmed, r.summary()
        heard = wavs.read_wav(fr.heard)
        assert heard.voiced()[0] >= 3.0, heard.summary()  # prompts and the number were heard
        assert srv.counts("belgium") == (1, 0)

        # 2. Dutch, record again once, then keep: one signature, number 2.
        nl = Call(srv, "+32470000602", speaking, tmp_path)
        nl.at_step("language")
        nl.pj.press(LANG_DIGIT["nl"])
        assert nl.at_step("story").group(1) == "nl"
        nl.at_step("record")
        nl.pj.speak()
        nl.wait_for(r"recording ended")
        nl.pj.press("2")  # record again
        # The "record again" prompt and the beep; the second take starts after them.
        nl.wait_for(r"recording started[\s\S]*recording started")
        nl.pj.speak()
        nl.wait_for(r"recording ended[\s\S]*recording ended")
        nl.pj.press("1")
        nl.wait_for(r"result=Counted \{ number: 2 \}")
        assert nl.at_step("number").group(1) == "nl"
        r = nl.pj.wait()
        assert r.result["hung_up_by"] == "remote", r.summary()
        assert srv.counts("belgium") == (2, 0)

        # 3. English.
        en = Call(srv, "+32470000603", speaking, tmp_path)
        en.at_step("language")
        en.pj.press(LANG_DIGIT["en"])
        assert en.at_step("story").group(1) == "en"
        en.at_step("record")
        en.pj.speak()
        en.wait_for(r"recording ended")
        en.pj.press("1")
        en.wait_for(r"result=Counted \{ number: 3 \}")
        assert en.at_step("number").group(1) == "en"
        en.pj.wait()
        assert srv.counts("belgium") == (3, 0)

        # 4. The French caller again: recognised, withdraws by phone, the count goes down.
        again = Call(srv, "+32470000601", speaking, tmp_path)
        again.at_step("language")
        again.pj.press(LANG_DIGIT["fr"])
        again.at_step("repeat")
        again.pj.press("9")
        again.at_step("withdraw")
        again.pj.press("1")  # confirm
        again.wait_for(r"signature withdrawn by phone .*erased=true")
        r = again.pj.wait()
        assert r.result["hung_up_by"] == "remote", r.summary()
        assert srv.wait_counts((2, 0), slug="belgium") == (2, 0)
    finally:
        helpline.stop()


def test_press_1_to_sign_flow(server_factory, audio, tmp_path):
    cfg = as_campaign(documented_flow("Example: press 1 to sign"), slug="belgium", helpline="")
    cfg = cfg.replace("seconds = 2", "seconds = 1", 1)
    files = {"greeting.wav": audio.greeting, "story.wav": audio.story}
    srv = server_factory("press1", cfg, files=files)
    quiet = audio.quiet

    # The caller hears the story and the count, then presses 1 when asked.
    a = Call(srv, "+32470000701", quiet, tmp_path)
    a.at_step("ask", timeout=30)
    a.pj.press("1")
    a.wait_for(r"result=Counted \{ number: 1 \}")
    a.at_step("number")
    r = a.pj.wait()
    assert r.result["hung_up_by"] == "remote", r.summary()
    assert srv.counts("belgium") == (1, 0)
    sig = srv.signatures("belgium")[0]
    assert sig["speech_ms"] == 0  # signed by a key: no voice was asked for

    # Barge-in: "1" during the story skips straight to the signature.
    b = Call(srv, "+32470000702", quiet, tmp_path)
    b.at_step("story")
    b.pj.press("1")
    b.wait_for(r"result=Counted \{ number: 2 \}", timeout=10)
    b.pj.wait()

    # A caller who presses nothing does not sign.
    c = Call(srv, "+32470000703", quiet, tmp_path)
    c.wait_for(r"call ended .*outcome=\w+", timeout=60)
    assert "result=Counted" not in c.log()
    c.pj.wait()
    assert srv.counts("belgium") == (2, 0)


CONTACT_FLOW = """
[[campaign]]
slug = "belgium"
title = "Contact test"
keep_contact = true

[campaign.flow]
languages = ["en"]

[[campaign.flow.step]]
name = "ask"
kind = "menu"
prompt = "press_1_to_sign"
choices = { "1" = "contact", "2" = "record" }
timeout_seconds = 5
retries = 0
next = "record"

[[campaign.flow.step]]
name = "contact"
kind = "play"
prompt = "signed"
contact = true
next = "record"

[[campaign.flow.step]]
name = "record"
kind = "record"
silence_seconds = 1

[[campaign.flow.step]]
name = "sign"
kind = "sign"
speech_ms = 500

[[campaign.flow.step]]
name = "bye"
kind = "hangup"
prompt = "goodbye"
"""


def test_contact_is_kept_encrypted_only_for_callers_who_ask(server_factory, audio, tmp_path):
    srv = server_factory("contact", CONTACT_FLOW)
    speaking = wavs.delayed(audio.name, 0.6, tmp_path / "name-now.wav", tail_seconds=1)
    for caller, digit in (("+32470000801", "1"), ("+32470000802", "2")):
        c = Call(srv, caller, speaking, tmp_path)
        c.at_step("ask")
        c.pj.press(digit)
        c.at_step("record")
        c.pj.speak()
        c.wait_for(r"result=Counted")
        c.pj.wait()
    rows = srv.query("SELECT contact IS NOT NULL FROM signatures ORDER BY id")
    assert rows == [(1,), (0,)], rows
    assert (srv.dir / "data" / "contact.key").stat().st_mode & 0o777 == 0o600
