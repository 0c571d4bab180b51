"""The public campaign page in headless Chromium, against the real binary.

One server for the module (`srv`), tests in order: the page's accessibility, the page without
JavaScript, the language switch, escaping of campaign texts, then one real SIP call (pjsua2)
that must raise the count on an open page and in the embedded counter on a page of another
origin without a reload, and show in the statistics, /metrics and the OpenAPI document."""
from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from pathlib import Path

import pytest

import browser
import peers
from peers import LOOPBACK, free_port
from server import Server, campaign_toml



@pytest.fixture(autouse=True)
def _needs_browser():
    peers.require(browser.available(), "chromium and chromedriver")

# A Brussels landline: the statistics must place it in Belgium and in the Brussels region.
CALLER = "+3225550101"
CALL_LIMIT_S = 40
PUBLIC_URL = "https://petition.example.org"
# Campaign texts with HTML in them: the page must show them as text.
TITLE = 'Save the <b>park</b> & "square"'
TRANSCRIPT = "Save the park now! <script>window.pwned = 1</script><img src=x onerror=\"window.pwned=2\">"
NL_TITLE = "Red het park"
FR_TITLE = "Sauvez le parc"


def toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string for this text


@pytest.fixture(scope="module")
def srv(server_factory, audio) -> Server:
    extra = (f"transcript = {toml_str(TRANSCRIPT + chr(10) * 2 + 'Second paragraph.')}\n"
             "goal = 10\n"
             f"[campaign.texts.nl]\ntitle = {toml_str(NL_TITLE)}\ntranscript = \"Red het park. Bel nu.\"\n"
             f"[campaign.texts.fr]\ntitle = {toml_str(FR_TITLE)}\ntranscript = \"Sauvez le parc.\"\n")
    cfg = f"[server]\npublic_url = \"{PUBLIC_URL}/\"\n\n" + campaign_toml(
        title=TITLE.replace("\\", "\\\\").replace('"', '\\"'),
        prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"},
        extra=extra)
    return server_factory("public", cfg, files=audio.prompts)


def page_url(srv: Server, query: str = "") -> str:
    return f"http://{LOOPBACK}:{srv.http_port}/c/demo{query}"


# Contrast of every visible text element against its effective background, per WCAG 2.1.
CONTRAST_JS = r"""
function channels(c) { return (c.match(/[\d.]+/g) || []).map(Number); }
function lum(c) {
  const [r, g, b] = channels(c).slice(0, 3).map(v => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function background(el) {
  for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor, ch = channels(c);
    if (ch.length === 3 || (ch.length === 4 && ch[3] > 0)) return c;
  }
  return "rgb(255, 255, 255)";
}
const out = [];
for (const el of document.querySelectorAll("body *")) {
  if (el.closest("svg")) continue;
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  const box = el.getBoundingClientRect();
  if (!own || box.width === 0 || box.height === 0) continue;
  const s = getComputedStyle(el);
  if (s.visibility === "hidden" || s.display === "none") continue;
  const a = lum(s.color), b = lum(background(el));
  out.push([el.tagName, el.textContent.trim().slice(0, 40), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
}
return out;
"""


def test_the_page_is_accessible(srv):
    with browser.Browser(width=390, height=844) as b:  # a phone's viewport
        b.get(page_url(srv))
        b.find("#count")
        assert b.run("return document.documentElement.lang") == "en"
        for landmark in ["header", "main", "footer", "nav[aria-label]"]:
            assert b.run(f"return document.querySelectorAll('{landmark}').length") == 1, landmark
        # The live count: a polite live region named by its heading, holding the number.
        region = b.run("""const r = document.querySelector('[aria-live="polite"]');
            return r && [r.getAttribute('role'), r.contains(document.getElementById('count')),
                         document.getElementById(r.getAttribute('aria-labelledby')).textContent];""")
        assert region == ["status", True, "Signatures so far"], region
        # Headings in order, one h1.
        levels = b.run("return [...document.querySelectorAll('h1,h2,h3')].map(h => h.tagName)")
        assert levels[0] == "H1" and levels.count("H1") == 1, levels
        # The first Tab reaches the skip link, which then shows and leads to the main content.
        b.keys("\ue004")  # Tab
        focused = b.run("""const a = document.activeElement, r = a.getBoundingClientRect();
            return [a.className, a.getAttribute('href'), r.top >= 0 && r.bottom <= innerHeight,
                    getComputedStyle(a).outlineStyle];""")
        assert focused[:3] == ["skip", "#main", True], focused
        assert focused[3] != "none", "focus is visible"
        b.keys("\ue007")  # Enter
        b.wait_for(lambda: b.run("return document.activeElement.id") == "main", what="focus on main")
        # The tel: link holds the number's digits.
        assert b.find(".number a").attr("href") == "tel:+3220000000"
        # No text below 4.5:1.
        low = [r for r in b.run(CONTRAST_JS) if r[2] < 4.5]
        assert not low, low
        assert len(b.run(CONTRAST_JS)) > 10, "the check saw the page's text"
        # No horizontal scrolling on a phone.
        assert b.run("return document.documentElement.scrollWidth <= innerWidth + 1")


def test_without_javascript_the_page_shows_the_count_as_of_load(srv):
    sigs, unverified = srv.counts()
    with browser.Browser(javascript=False) as b:
        b.get(page_url(srv))
        assert b.find("#count").text == str(sigs)
        assert b.find("#unverified").text == str(unverified)
        assert b.find("#goal-text").text == f"{sigs} of 10 ({sigs * 10}%)"
        assert b.find(".number a").text == "+32 2 000 00 00"
        # The script did not run: nothing would have changed the count, and the page is whole.
        assert "What you will hear" in b.find("#story-heading").text


def test_the_language_switch(srv):
    with browser.Browser() as b:
        b.get(page_url(srv))
        b.find("nav.languages a[hreflang='nl']").click()
        b.wait_for(lambda: b.run("return document.documentElement.lang") == "nl", what="Dutch page")
        assert b.find("h1").text == NL_TITLE
        assert b.find("#count-heading").text == "Handtekeningen tot nu toe"
        assert b.find("nav.languages a[aria-current='page']").text == "Nederlands"
        b.find("nav.languages a[hreflang='fr']").click()
        b.wait_for(lambda: b.run("return document.documentElement.lang") == "fr", what="French page")
        assert b.find("h1").text == FR_TITLE
        assert b.find("#count-heading").text == "Signatures à ce jour"
        # The switch keeps the live count working in the new language.
        assert b.find("#count").text == str(srv.counts()[0])


def test_html_in_campaign_texts_is_shown_as_text(srv):
    with browser.Browser() as b:
        b.get(page_url(srv))
        assert b.find("h1").text == TITLE
        assert b.title == TITLE
        assert b.run("return document.querySelectorAll('h1 *, .story script, .story img').length") == 0
        assert TRANSCRIPT in b.find(".story p").text
        assert b.run("return typeof window.pwned") == "undefined"
        og = b.run("return document.querySelector('meta[property=\"og:title\"]').content")
        assert og == TITLE
        desc = b.run("return document.querySelector('meta[property=\"og:description\"]').content")
        assert desc == "Save the park now!"
        url = b.run("return document.querySelector('meta[property=\"og:url\"]').content")
        assert url == f"{PUBLIC_URL}/c/demo?lang=en"


class HostPage:
    """A news site's article on another origin (another port), with the pasted embed code."""

    def __init__(self, directory: Path, srv: Server):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "article.html").write_text(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>News</title></head>"
            "<body><h1>A news article</h1><p>Before the counter.</p>"
            f'<script src="http://{LOOPBACK}:{srv.http_port}/static/embed.js" data-campaign="demo" '
            'data-lang="nl" async></script><p id="after">After the counter.</p></body></html>')
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        handler.log_message = lambda *a: None
        self.port = free_port(udp=False, tcp=True)
        self.httpd = http.server.ThreadingHTTPServer((LOOPBACK, self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/article.html"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def enter_frame(b: browser.Browser, css: str) -> None:
    frame = b.find(css)
    b._cmd("POST", b._s("/frame"), {"id": {browser.ELEMENT: frame.id}})


def test_a_real_call_raises_the_count_on_open_pages_and_in_the_embed(srv, audio, tmp_path):
    before = srv.counts()
    host = HostPage(tmp_path / "news", srv)
    try:
        with browser.Browser() as page, browser.Browser() as news:
            page.get(page_url(srv))
            page.wait_for(lambda: page.find("#count").text == str(before[0]), what="initial count")
            page.run("window.notReloaded = true")

            news.get(host.url)
            frame = news.find("iframe")
            assert frame.attr("title") == "Live teller van de handtekeningen"
            # The iframe sits where the script was pasted, between the two paragraphs.
            assert news.run("return document.querySelector('script[data-campaign]')"
                            ".nextElementSibling.tagName") == "IFRAME"
            enter_frame(news, "iframe")
            news.wait_for(lambda: news.find("#count").text == str(before[0]), what="count in the embed")
            assert news.run("return document.documentElement.lang") == "nl"
            assert news.find(".title a").text == NL_TITLE

            r = peers.pj_call(srv.uri(), caller=CALLER, seconds=CALL_LIMIT_S, play=audio.speak,
                              rec=tmp_path / "heard.wav", log=tmp_path / "pjcall.log")
            assert r.confirmed, r.summary() + srv.log_text()[-3000:]
            want = before[0] + 1
            assert srv.wait_counts((want, before[1]), timeout=10) == (want, before[1]), \
                r.summary() + srv.log_text()[-3000:]

            page.wait_for(lambda: page.find("#count").text == str(want), timeout=10,
                          what="the open page's count to rise")
            assert page.run("return window.notReloaded === true"), "updated without a reload"
            assert page.find("#goal-text").text == f"{want} of 10 ({want * 10}%)"
            assert page.find("#progress").prop("value") == want
            news.wait_for(lambda: news.find("#count").text == str(want), timeout=10,
                          what="the embed's count to rise")
    finally:
        host.close()

    # The statistics catch up within seconds: the call shows in the chart's table, in
    # Belgium and in the Brussels region.
    with browser.Browser(javascript=False) as b:
        seen: list = []

        def stats_show_the_call() -> bool:
            b.get(page_url(srv))
            rows = b.run("""return [...document.querySelectorAll('.share tr')].map(
                tr => [...tr.cells].map(c => c.textContent.trim()).join(' '));""")
            seen[:] = rows
            return "Belgium 1" in rows and "Brussels 1" in rows
        try:
            b.wait_for(stats_show_the_call, timeout=30, what="statistics with the call")
        except AssertionError as e:
            raise AssertionError(f"{e}: rows {seen}\n" + srv.log_text()[-2000:]) from None
        assert b.run("return document.querySelector('svg.chart').getAttribute('role')") == "img"
        assert b.run("return document.querySelector('svg.chart title').textContent") == "Signatures over time"
        assert re.match(r"Figures as of \d\d:\d\d:\d\d UTC", b.find(".where .as-of").text)


def parse_metrics(text: str) -> dict[str, float]:
    """OpenMetrics text: every sample's family has # HELP and # TYPE before it, a counter's
    samples end in _total, a histogram's in _bucket, _sum or _count, and # EOF ends it."""
    helped, typed, values = set(), {}, {}
    lines = text.splitlines()
    assert lines and lines[-1] == "# EOF", lines[-3:]
    suffixes = {"histogram": r"_(bucket|sum|count)$", "counter": r"_total$"}
    for line in lines[:-1]:
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "histogram"), line
            typed[name] = kind
        elif line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            name = series.split("{")[0]
            family = name
            for kind, suffix in suffixes.items():
                base = re.sub(suffix, "", name)
                if base != name and typed.get(base) == kind:
                    family = base
            assert typed.get(family) != "counter" or family != name, f"counter without _total: {line}"
            assert family in typed and family in helped, line
            values[series] = float(value)
    return values


def test_metrics_count_the_call(srv):
    status, body = srv.get("/metrics")
    assert status == 200
    m = parse_metrics(body.decode())
    assert m['belteken_sip_responses_total{code="180"}'] >= 1, m
    assert m['belteken_sip_responses_total{code="200"}'] >= 1, m
    assert m["belteken_store_sign_seconds_count"] >= 1, m
    assert m['belteken_store_sign_seconds_bucket{le="+Inf"}'] == m["belteken_store_sign_seconds_count"]
    assert 0 < m["belteken_store_sign_seconds_sum"] < 60, m
    for state in ("ringing", "answered", "recording", "waiting"):
        assert m[f'belteken_calls_active{{state="{state}"}}'] == 0, m
    assert m["belteken_rtp_packets_sent_total"] >= 50 * 5, m
    assert "belteken_rtp_frames_late_total" in m
    assert m["belteken_rtp_packets_sent_late_total"] <= m["belteken_rtp_packets_sent_total"], m


def test_openapi_is_served_and_public_endpoints_are_cacheable(srv):
    status, doc = srv.get_json("/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3."), doc
    for path in ("/api/campaigns", "/api/campaigns/{slug}", "/api/campaigns/{slug}/events"):
        assert path in doc["paths"], doc["paths"].keys()
    import http.client
    for path in ("/api/campaigns", "/api/campaigns/demo", "/api/openapi.json", "/static/embed.js"):
        c = http.client.HTTPConnection(LOOPBACK, srv.http_port, timeout=5)
        try:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            assert r.status == 200, path
            assert r.getheader("Cache-Control", "").startswith("public, max-age="), path
        finally:
            c.close()
