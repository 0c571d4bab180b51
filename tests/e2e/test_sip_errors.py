"""SIP error answers from the real binary, with hand-made UDP requests: an offer without a codec
we share gets 488, requests for dialogs or transactions that do not exist get 481."""
from __future__ import annotations

import pytest

import peers
from server import Server, campaign_toml


@pytest.fixture(scope="module")
def srv(server_factory, audio) -> Server:
    cfg = campaign_toml(prompts={"greeting": "greeting.wav", "story": "story.wav", "thanks": "thanks.wav"})
    return server_factory("sip-errors", cfg, files=audio.prompts)


@pytest.fixture
def raw(srv):
    r = peers.RawSip(srv.sip_port)
    yield r
    r.close()


def _show(resps, srv) -> str:
    return "\n\n".join(r.raw.decode(errors="replace") for r in resps) + \
        "\n--- server log (tail) ---\n" + srv.log_text()[-2000:]


def test_options_gets_200(srv, raw):
    resps = raw.transact(raw.request("OPTIONS", srv.uri()), timeout=5)
    assert resps and resps[-1].status == 200, _show(resps, srv)


def test_codec_less_offer_gets_488(srv, raw):
    offer = peers.sdp_offer(40002, [(96, "opus/48000/2")])
    invite = raw.request("INVITE", srv.uri(), from_user="codecless", body=offer,
                         content_type="application/sdp")
    resps = raw.transact(invite, timeout=8)
    finals = [r for r in resps if r.status >= 200]
    assert finals and finals[0].status == 488, _show(resps, srv)
    assert not any(r.status == 200 for r in resps)
    assert srv.counts() == (0, 0)


def test_bye_for_unknown_dialog_gets_481(srv, raw):
    bye = raw.request("BYE", srv.uri(), from_user="nodialog", to_tag="nosuchtag123", cseq=2)
    resps = raw.transact(bye, timeout=5)
    assert resps and resps[-1].status == 481, _show(resps, srv)


def test_cancel_for_unknown_transaction_gets_481(srv, raw):
    cancel = raw.request("CANCEL", srv.uri(), from_user="nocall")
    resps = raw.transact(cancel, timeout=5)
    assert resps and resps[-1].status == 481, _show(resps, srv)
