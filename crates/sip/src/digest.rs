//! Digest authentication as a client (RFC 2617, RFC 7616, RFC 8760 for SIP): parses
//! WWW-Authenticate/Proxy-Authenticate challenges and builds the answering header.
//!
//! Our own because rsipstack 0.7.14 rejects `algorithm=SHA-256` (it knows only the non-standard
//! spelling `SHA256`), formats the nonce count in decimal and has no `-sess` variants.

use md5::{Digest as _, Md5};
use ring::digest::{digest, SHA256};

/// Longest challenge header we look at.
const MAX_CHALLENGE_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" | "SHA256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" | "SHA256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                hex(digest(&SHA256, data.as_bytes()).as_ref())
            }
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Preference when a server offers several challenges (RFC 8760: strongest first).
    fn strength(self) -> u8 {
        match self {
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest challenge we can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The server offered qop=auth (else the RFC 2069 form without qop is used).
    pub qop_auth: bool,
    pub stale: bool,
}

/// Splits `k=v, k="v, with comma"` into pairs; values lose their quotes.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    out
}

/// Parses one challenge header value; `None` if it is no digest challenge we can answer.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    if value.len() > MAX_CHALLENGE_BYTES {
        return None;
    }
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    let mut algorithm = Some(Algorithm::Md5);
    let mut qop: Option<String> = None;
    let mut stale = false;
    for (k, v) in params(rest) {
        match k.as_str() {
            "realm" => realm = Some(v),
            "nonce" => nonce = Some(v),
            "opaque" => opaque = Some(v),
            "algorithm" => algorithm = Algorithm::parse(&v),
            "qop" => qop = Some(v),
            "stale" => stale = v.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    let qop_auth = match &qop {
        None => false,
        Some(q) => {
            if q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                true
            } else {
                // auth-int only: not offered for REGISTER by any registrar we know.
                return None;
            }
        }
    };
    Some(Challenge {
        realm: realm?,
        nonce: nonce.filter(|n| !n.is_empty())?,
        opaque,
        algorithm: algorithm?,
        qop_auth,
        stale,
    })
}

/// The strongest answerable challenge among several header values.
pub fn best_challenge<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    values
        .into_iter()
        .filter_map(parse_challenge)
        .max_by_key(|c| c.algorithm.strength())
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The credentials for one request: the Authorization (or Proxy-Authorization) value.
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    ch: &Challenge,
    nc: u32,
    cnonce: &str,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
) -> String {
    let alg = ch.algorithm;
    let mut ha1 = alg.hash(&format!("{username}:{}:{password}", ch.realm));
    if alg.is_sess() {
        ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", ch.nonce));
    }
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    let nc_text = format!("{nc:08x}");
    let response = if ch.qop_auth {
        alg.hash(&format!("{ha1}:{}:{nc_text}:{cnonce}:auth:{ha2}", ch.nonce))
    } else {
        alg.hash(&format!("{ha1}:{}:{ha2}", ch.nonce))
    };
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
        quote(username),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(uri),
        quote(&response),
        alg.as_str()
    );
    if ch.qop_auth {
        out.push_str(&format!(
            ", qop=auth, nc={nc_text}, cnonce={}",
            quote(cnonce)
        ));
    }
    if let Some(o) = &ch.opaque {
        out.push_str(&format!(", opaque={}", quote(o)));
    }
    out
}

/// A fresh client nonce.
pub fn cnonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_of(header: &str) -> String {
        params(header.trim_start_matches("Digest "))
            .into_iter()
            .find(|(k, _)| k == "response")
            .map(|(_, v)| v)
            .expect("a response")
    }

    #[test]
    fn rfc2617_md5_example() {
        let ch = parse_challenge(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("valid");
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert!(ch.qop_auth);
        let h = authorization(
            &ch,
            1,
            "0a4f113b",
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(response_of(&h), "6629fae49393a05397450978507c4ef1");
        assert!(h.contains("nc=00000001"));
        assert!(h.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
    }

    #[test]
    fn rfc7616_sha256_and_md5_examples() {
        let sha = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        let md5 = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        let best = best_challenge([md5, sha]).expect("answerable");
        assert_eq!(best.algorithm, Algorithm::Sha256);
        let cn = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let h = authorization(
            &best,
            1,
            cn,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(
            response_of(&h),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(h.contains("algorithm=SHA-256"));
        let m = parse_challenge(md5).expect("valid");
        let h = authorization(
            &m,
            1,
            cn,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(response_of(&h), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn nonce_count_is_hex_and_stale_is_read() {
        let ch = parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=auth, stale=true")
            .expect("valid");
        assert!(ch.stale);
        let h = authorization(&ch, 10, "c", "u", "p", "REGISTER", "sip:r");
        assert!(h.contains("nc=0000000a"), "{h}");
    }

    #[test]
    fn unanswerable_challenges() {
        assert!(parse_challenge("Basic realm=\"x\"").is_none());
        assert!(
            parse_challenge("Digest realm=\"x\", nonce=\"n\", algorithm=SHA-512-256").is_none()
        );
        assert!(parse_challenge("Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\"").is_none());
        assert!(parse_challenge("Digest nonce=\"n\"").is_none());
        assert!(parse_challenge("Digest realm=\"x\"").is_none());
        assert!(parse_challenge("").is_none());
        assert!(parse_challenge("Digest realm=\"unterminated, nonce=").is_none());
        let no_qop = parse_challenge("Digest realm=\"x\", nonce=\"n\"").expect("RFC 2069 form");
        assert!(!no_qop.qop_auth);
        assert!(!authorization(&no_qop, 1, "c", "u", "p", "REGISTER", "sip:x").contains("nc="));
    }

    #[test]
    fn params_survive_junk() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // An escaped quote stays in its value; the next pair is still read.
        assert_eq!(
            params("a=\"b\\\"c\", d=e"),
            pairs(&[("a", "b\"c"), ("d", "e")])
        );
        // An unterminated quoted value ends the input, not the parser.
        assert_eq!(params("a=\"\\"), pairs(&[("a", "")]));
        assert_eq!(params("="), pairs(&[]));
        assert_eq!(params(",,,"), pairs(&[]));
        assert_eq!(params("\u{0}\u{ff}=x"), pairs(&[("\u{0}\u{ff}", "x")]));
        // None of it is a challenge we could answer (no realm and nonce).
        for junk in ["=", ",,,", "a=\"\\", "a=\"b\\\"c\", d=e", "\u{0}\u{ff}=x"] {
            assert!(
                parse_challenge(&format!("Digest {junk}")).is_none(),
                "{junk:?}"
            );
        }
    }
}
