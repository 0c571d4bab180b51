//! Entry points for the fuzz targets and no-panic tests: SIP bytes from the network taken the
//! way the endpoint takes them, through rsipstack's parser and then through our own header
//! handling, so that `fuzz/` needs no rsipstack type of its own.
//!
//! Not an API: nothing here is called by the server, and it may change with the server.

use std::net::{Ipv4Addr, SocketAddr};

use rsipstack::dialog::DialogId;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Request, Response, SipMessage, Transport};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::connection::SipConnection;

use crate::trunk::{self, DidHeaders, DidSource, IdentityHeaders};

/// One datagram (or one framed stream message) as a peer sent it: parsed by rsipstack, given
/// `received`/`rport` as its transport layer does, keyed as its transaction layer does, then
/// looked at the way `server.rs`, `call.rs` and `register.rs` look at requests and responses.
/// Returns the caller's raw user part when a request named one (for the caller to hash, as the
/// server does; it is never kept).
pub fn sip_message(data: &[u8]) -> Option<String> {
    let msg = SipMessage::try_from(data).ok()?;
    // What every message goes through before it reaches us; its errors drop the message.
    let source = SocketAddr::from((Ipv4Addr::LOCALHOST, 5090));
    let msg = SipConnection::update_msg_received(msg, source, Transport::Udp).ok()?;
    // Messages are written back out (replies copy the request's headers): that must not panic.
    let _ = msg.to_string();
    match msg {
        SipMessage::Request(req) => request(&req),
        SipMessage::Response(resp) => {
            response(&resp);
            None
        }
    }
}

fn request(req: &Request) -> Option<String> {
    if TransactionKey::from_request(req, TransactionRole::Server).is_err() {
        return None;
    }
    let _ = DialogId::try_from((req, TransactionRole::Server));
    // server.rs: request_defect, body_truncated, is_scanner, has_to_tag, unsupported_requirements.
    let _ = req.version == rsipstack::sip::Version::V2;
    let _ = req.headers.iter().count();
    for name in ["CSeq", "Call-ID", "From", "To"] {
        let _ = req
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .count();
    }
    let _ = req
        .header_value("CSeq")
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .as_deref()
        == Some(req.method.to_string().as_str());
    let _ = req
        .header_value("Content-Length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|declared| declared > req.body.len());
    let _ = req
        .header_value("User-Agent")
        .map(|ua| ua.to_ascii_lowercase());
    let _ = req.to_header().ok().and_then(|to| to.tag().ok().flatten());
    for h in req.headers.iter() {
        if h.name().eq_ignore_ascii_case("Require") {
            let _ = h.value().split(',').map(str::trim).count();
        }
    }
    // on_invite: the called number by every DID source, then the caller.
    let ruri_user = req.uri.user().map(str::to_string);
    let to = req.header_value("To");
    let lookup = |name: &str| req.header_value(name);
    let headers = DidHeaders {
        request_uri_user: ruri_user.as_deref(),
        to: to.as_deref(),
        other: Some(&lookup),
    };
    for source in [
        DidSource::Auto,
        DidSource::RequestUri,
        DidSource::To,
        DidSource::Header("Diversion".into()),
    ] {
        for did in trunk::called_dids(&source, &headers) {
            let _ = trunk::normalize_did(&did);
        }
    }
    let pai = req.header_value("P-Asserted-Identity");
    let rpid = req.header_value("Remote-Party-ID");
    let privacy = req.header_value("Privacy");
    let from = req.header_value("From");
    let identity = IdentityHeaders {
        p_asserted_identity: pai.as_deref(),
        remote_party_id: rpid.as_deref(),
        privacy: privacy.as_deref(),
        from: from.as_deref(),
    };
    let (untrusted, _) = trunk::caller_identity(identity, false);
    let untrusted = untrusted.map(str::to_string);
    let (trusted, _) = trunk::caller_identity(identity, true);
    // call.rs: the body of a re-INVITE, UPDATE or INFO.
    let _ = crate::call::info_digit(&req.body);
    if let Ok(offer) = crate::sdp::parse(&req.body) {
        let _ = crate::sdp::negotiate(&offer);
    }
    trusted.map(str::to_string).or(untrusted)
}

fn response(resp: &Response) {
    let _ = TransactionKey::from_response(resp, TransactionRole::Client);
    let _ = DialogId::try_from((resp, TransactionRole::Client));
    // register.rs: the registrar's challenges and its Min-Expires.
    for name in ["WWW-Authenticate", "Proxy-Authenticate"] {
        let values: Vec<String> = resp
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| h.value().to_string())
            .collect();
        if let Some(ch) = crate::digest::best_challenge(values.iter().map(String::as_str)) {
            let _ = crate::digest::authorization(
                &ch,
                1,
                "0a4f113b",
                "user",
                "secret",
                "REGISTER",
                "sip:registrar.invalid",
            );
        }
    }
    let _ = resp
        .header_value("Min-Expires")
        .and_then(|v| v.trim().parse::<u64>().ok());
}
