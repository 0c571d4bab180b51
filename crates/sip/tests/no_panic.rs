//! Nothing a peer sends panics the SIP channel's parsing: whole datagrams through rsipstack's
//! parser and our header handling (`sip::fuzzing::sip_message`), SDP offers, caller and called
//! numbers, digest challenges; on arbitrary bytes and on mutations of real messages. The fuzz
//! targets in `fuzz/` search the same entry points for longer.

use std::net::SocketAddr;

use proptest::prelude::*;
use sip::trunk::{self, IdentityHeaders};
use sip::{digest, identity, sdp};

const INVITE: &str = "INVITE sip:demo@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+3220000000@127.0.0.1>\r\n\
From: \"Jan\" <sip:+32470000001@127.0.0.1:5090>;tag=1928301774\r\n\
P-Asserted-Identity: <tel:+32470000001;cpc=ordinary>\r\n\
Remote-Party-ID: <sip:0470000001@trunk.invalid>;party=calling;privacy=off\r\n\
Call-ID: a84b4c76e66710@127.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:caller@127.0.0.1:5090>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 129\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

const CHALLENGE: &str = "SIP/2.0 401 Unauthorized\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKreg1\r\n\
From: <sip:belteken@registrar.invalid>;tag=r1\r\n\
To: <sip:belteken@registrar.invalid>;tag=s1\r\n\
Call-ID: reg-1@127.0.0.1\r\n\
CSeq: 1 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=\"auth\", algorithm=SHA-256\r\n\
Content-Length: 0\r\n\r\n";

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=ptime:20\r\na=sendrecv\r\n";

/// A real message with a few bytes overwritten, inserted or cut: what the parser sees from a
/// broken or hostile peer far more often than uniform noise.
fn mutated(seed: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len();
    (
        proptest::collection::vec((0..len, any::<u8>(), 0u8..3), 1..8),
        0..=len,
    )
        .prop_map(move |(edits, cut)| {
            let mut bytes = seed.as_bytes().to_vec();
            for (at, byte, how) in edits {
                let at = at.min(bytes.len().saturating_sub(1));
                match how {
                    0 if !bytes.is_empty() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ if !bytes.is_empty() => {
                        bytes.remove(at);
                    }
                    _ => {}
                }
            }
            bytes.truncate(cut.max(bytes.len() / 2));
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_as_a_sip_message(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = sip::fuzzing::sip_message(&bytes);
    }

    #[test]
    fn a_mutated_invite(bytes in mutated(INVITE)) {
        let _ = sip::fuzzing::sip_message(&bytes);
    }

    #[test]
    fn a_mutated_challenge(bytes in mutated(CHALLENGE)) {
        let _ = sip::fuzzing::sip_message(&bytes);
    }

    #[test]
    fn an_invite_with_any_identity_headers(from in ".{0,80}", pai in ".{0,80}", privacy in ".{0,20}") {
        let msg = INVITE
            .replace("\"Jan\" <sip:+32470000001@127.0.0.1:5090>", &from.replace(['\r', '\n'], ""))
            .replace("<tel:+32470000001;cpc=ordinary>", &pai.replace(['\r', '\n'], ""))
            .replace("Max-Forwards: 70", &format!("Privacy: {}", privacy.replace(['\r', '\n'], "")));
        let _ = sip::fuzzing::sip_message(msg.as_bytes());
    }

    #[test]
    fn any_sdp_offer(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(offer) = sdp::parse(&bytes) {
            let _ = sdp::negotiate(&offer);
        }
    }

    #[test]
    fn a_mutated_offer_is_answered_with_sdp_we_parse(bytes in mutated(OFFER)) {
        let Ok(offer) = sdp::parse(&bytes) else { return Ok(()) };
        let Ok(chosen) = sdp::negotiate(&offer) else { return Ok(()) };
        let local = SocketAddr::from(([127, 0, 0, 1], 40000));
        let answer = sdp::answer(&offer, &chosen, local, 1, 1);
        let parsed = sdp::parse(answer.as_bytes());
        prop_assert!(parsed.is_ok(), "our answer does not parse: {answer:?}");
    }

    #[test]
    fn any_header_value(value in ".{0,200}") {
        let _ = identity::uri_user(&value);
        let _ = trunk::normalize_did(&value);
        let _ = digest::parse_challenge(&value);
        let headers = IdentityHeaders {
            p_asserted_identity: Some(&value),
            remote_party_id: Some(&value),
            privacy: Some(&value),
            from: Some(&value),
        };
        for trusted in [false, true] {
            if let (Some(user), _) = trunk::caller_identity(headers, trusted) {
                prop_assert!(user.len() <= identity::MAX_USER_BYTES);
            }
        }
    }
}
