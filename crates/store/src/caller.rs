//! Caller identity: the only place a raw phone number is handled; it leaves as an HMAC key.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use phonenumber::country;

use crate::class::{classify, NumberClass};
use crate::secret::hmac_sha256;
use crate::Secret;

/// Longest caller string we look at, in bytes. SIP user parts are short; anything longer is
/// not a phone number and is not worth parsing.
pub const MAX_CALLER_INPUT_BYTES: usize = 64;

/// Most digits we accept in the input: E.164 allows 15, plus room for an international prefix
/// ("00", "011") and a national trunk prefix.
const MAX_INPUT_DIGITS: usize = 20;

/// Fewest digits of a full international (E.164) number we accept as a phone number. Shorter
/// strings are PBX extensions or service codes, which identify nobody.
const MIN_E164_DIGITS: usize = 8;

/// Most digits of an E.164 number (ITU-T E.164).
const MAX_E164_DIGITS: usize = 15;

/// Pseudonymous caller key: lowercase hex of HMAC-SHA256(secret, E.164 number).
///
/// It prints only its first 8 hex digits: with the secret, a full key can be brute-forced back
/// into a phone number, so it is treated as personal data too.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CallerKey(String);

impl CallerKey {
    /// The full hex key, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn short(&self) -> &str {
        self.0.get(..8).unwrap_or(&self.0)
    }
}

impl fmt::Display for CallerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.short())
    }
}

impl fmt::Debug for CallerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallerKey({}…)", self.short())
    }
}

/// Who is calling, as far as the network told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerIdentity {
    /// A phone number was presented; `country` is its ISO 3166 region ("BE") when the number
    /// belongs to one; `class` what else is kept about it. `previous` is the key under the
    /// previous secret while a key rotation is under way: a signature found under it is
    /// re-keyed, never counted again.
    Verified {
        key: CallerKey,
        country: Option<String>,
        class: NumberClass,
        previous: Option<CallerKey>,
    },
    /// No usable number: anonymous, restricted, an extension, or garbage.
    Withheld,
}

impl CallerIdentity {
    /// The key when the caller is verified.
    pub fn key(&self) -> Option<&CallerKey> {
        match self {
            CallerIdentity::Verified { key, .. } => Some(key),
            CallerIdentity::Withheld => None,
        }
    }

    /// The key under the previous secret, during a key rotation.
    pub fn previous_key(&self) -> Option<&CallerKey> {
        match self {
            CallerIdentity::Verified { previous, .. } => previous.as_ref(),
            CallerIdentity::Withheld => None,
        }
    }

    /// The number's classification when the caller is verified.
    pub fn class(&self) -> Option<&NumberClass> {
        match self {
            CallerIdentity::Verified { class, .. } => Some(class),
            CallerIdentity::Withheld => None,
        }
    }

    /// The number's country when the caller is verified and it has one.
    pub fn country(&self) -> Option<&str> {
        match self {
            CallerIdentity::Verified { country, .. } => country.as_deref(),
            CallerIdentity::Withheld => None,
        }
    }
}

/// Turns the user part of a SIP P-Asserted-Identity or From into a caller identity.
///
/// Accepted notations: "+32470000001", "0032470000001", "0470000001" (national, using
/// `default_region`), visual separators (space, `-`, `.`, `(`, `)`, `/`), a leading "%2B" for an
/// escaped "+", and tel-URI parameters after ";" (ignored). Anything with letters or other
/// symbols is `Withheld`.
///
/// Rule for a number to count as verified: the phonenumber crate parses it to a known country
/// calling code and its E.164 form has 8 to 15 digits. We deliberately do not require
/// `phonenumber::is_valid`: its range metadata lags real allocations (and rejects the
/// fictional test ranges), and what makes a caller ID trustworthy is the trunk that asserted
/// it, not the range it falls in.
///
/// The raw number and its E.164 form stay inside this function; only the HMAC leaves.
pub fn identify_caller(
    raw_user: Option<&str>,
    default_region: &str,
    secret: &Secret,
) -> CallerIdentity {
    let Some(parsed) = parse_number(raw_user, default_region) else {
        return CallerIdentity::Withheld;
    };
    let key = hmac_key(secret.as_bytes(), &parsed.e164);
    let previous = secret.previous_bytes().map(|b| hmac_key(b, &parsed.e164));
    CallerIdentity::Verified {
        key,
        country: parsed.country,
        class: parsed.class,
        previous,
    }
}

/// Loads what the number parser builds on first use (its metadata and patterns, tens of
/// milliseconds), so that the first caller after a start does not wait for it, nor the calls
/// queued behind them. Parses a fixed number of no one (a Brussels number of the form used in
/// examples); nothing is kept.
pub fn warm_up() {
    let _ = parse_number(Some("+3225000000"), "BE");
    let _ = parse_number(Some("0470000000"), "BE");
}

/// A number that passed [`identify_caller`]'s rule. Crate-private: it holds the raw number.
pub(crate) struct ParsedNumber {
    pub e164: String,
    pub country: Option<String>,
    pub class: NumberClass,
}

/// Parses and classifies the number by the rule documented on [`identify_caller`].
pub(crate) fn parse_number(raw_user: Option<&str>, default_region: &str) -> Option<ParsedNumber> {
    let normalized = raw_user.and_then(normalize)?;
    let region: Option<country::Id> = default_region.trim().to_ascii_uppercase().parse().ok();
    // `normalized` is "+digits" or "digits", bounded in length, so the parser sees only input of
    // the shape it was built for. It still contains `unwrap`s of its own; a panic there must
    // not take down a call, so it counts as "no usable number".
    let parsed = panic::catch_unwind(AssertUnwindSafe(|| {
        phonenumber::parse(region, &normalized).map(|n| {
            let class = classify(&n);
            (n, class)
        })
    }));
    let Ok(Ok((number, class))) = parsed else {
        return None;
    };
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    let digits = e164.strip_prefix('+').unwrap_or(&e164);
    if !(MIN_E164_DIGITS..=MAX_E164_DIGITS).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // One number, one key: the E.164 form must parse back to itself. The parser keeps extra
    // leading zeros of a national number ("0000470000000" gives "+3200470000000", which parses
    // again as "+32470000000"), so without this check a caller could sign again by padding
    // their number with zeros.
    let stable = panic::catch_unwind(AssertUnwindSafe(|| {
        // With the same region: the parser's reading of a "+" number depends on it.
        phonenumber::parse(region, &e164)
            .map(|n| n.format().mode(phonenumber::Mode::E164).to_string() == e164)
            .unwrap_or(false)
    }));
    if !matches!(stable, Ok(true)) {
        return None;
    }
    let country = number.country().id().map(|id| id.as_ref().to_owned());
    Some(ParsedNumber {
        e164,
        country,
        class,
    })
}

fn hmac_key(secret: &[u8], e164: &str) -> CallerKey {
    CallerKey(hex::encode(hmac_sha256(secret, e164.as_bytes())))
}

/// Fewest digits an input needs for its E.164 form to reach [`MIN_E164_DIGITS`]: the parser
/// adds at most a country code (three digits) to what it was given. Shorter inputs never reach
/// the parser, whose code for them has out-of-range slices of its own.
const MIN_INPUT_DIGITS: usize = MIN_E164_DIGITS - MAX_COUNTRY_CODE_DIGITS;

/// Most digits of a country calling code (ITU-T E.164).
const MAX_COUNTRY_CODE_DIGITS: usize = 3;

/// Reduces a SIP user part to "+digits" or "digits", or None when it is not a phone number.
///
/// Works on characters, never on byte offsets: the input is whatever a caller put in From (or
/// an operator typed), and may hold any UTF-8.
fn normalize(raw: &str) -> Option<String> {
    if raw.len() > MAX_CALLER_INPUT_BYTES {
        return None;
    }
    // tel-URI style parameters ("+32470000001;npdi;rn=...") are not part of the number.
    let raw = raw.split(';').next().unwrap_or("").trim();
    let (plus, rest) = if let Some(rest) = raw.strip_prefix('+') {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ignore_ascii_case(raw, "%2b") {
        (true, rest)
    } else {
        (false, raw)
    };
    let mut out = String::with_capacity(rest.len() + 1);
    if plus {
        out.push('+');
    }
    let mut digits = 0usize;
    for c in rest.chars() {
        match c {
            '0'..='9' => {
                digits += 1;
                out.push(c);
            }
            // Spaces of every kind: numbers copied from documents come grouped with no-break
            // or narrow no-break spaces (U+00A0, U+202F).
            '-' | '.' | '(' | ')' | '/' => {}
            c if c.is_whitespace() => {}
            _ => return None,
        }
    }
    if !(MIN_INPUT_DIGITS..=MAX_INPUT_DIGITS).contains(&digits) {
        return None;
    }
    Some(out)
}

/// `s` without `prefix` when it starts with it, ASCII case aside; None otherwise (also when
/// `prefix.len()` is not a character boundary of `s`).
fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    s.get(prefix.len()..)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC-SHA256 of "+32470000001" under the secret of 32 bytes 0x01, and under 32 bytes
    /// 0x02. Stored signatures are found by these keys, so they never change.
    const KEY_UNDER_1: &str = "1f8d79f4ba0c8e4d41ea3c2ac1a0d2a601af665a8e130a830b9f318e2dbea186";
    const KEY_UNDER_2: &str = "cb3a60947c1d2d5302d6047cb9c568db2f3f8b419213cf137e72a8e5f584e5b3";

    #[test]
    fn caller_keys_are_stable() {
        let one = Secret::from_bytes([1; 32]);
        let two = Secret::from_bytes([2; 32]);
        let rotating = two.clone().with_previous(one.clone());
        for (secret, want, want_previous) in [
            (&one, KEY_UNDER_1, None),
            (&two, KEY_UNDER_2, None),
            (&rotating, KEY_UNDER_2, Some(KEY_UNDER_1)),
        ] {
            match identify_caller(Some("0470000001"), "BE", secret) {
                CallerIdentity::Verified { key, previous, .. } => {
                    assert_eq!(key.as_str(), want);
                    assert_eq!(previous.as_ref().map(CallerKey::as_str), want_previous);
                }
                CallerIdentity::Withheld => panic!("a Belgian mobile number is verified"),
            }
        }
    }

    #[test]
    fn normalize_shapes() {
        assert_eq!(
            normalize("+32 470/00.00-01").as_deref(),
            Some("+32470000001")
        );
        assert_eq!(
            normalize("%2B32470000001;npdi").as_deref(),
            Some("+32470000001")
        );
        assert_eq!(normalize("anonymous"), None);
        assert_eq!(normalize("++32"), None);
        assert_eq!(normalize("  "), None);
        assert_eq!(normalize("123456789012345678901"), None);
        assert_eq!(normalize("1234"), None, "too short to be a full number");
    }

    /// Any UTF-8 is input: a multi-byte character where a byte offset would fall (the "%2B"
    /// check looks at three bytes) must give an answer, not a panic.
    #[test]
    fn normalize_takes_any_utf8() {
        for raw in [
            "😀",
            "a😀",
            "😀32470000001",
            "04\u{202f}70\u{202f}12\u{202f}34\u{202f}56",
            "4\u{202f}",
            "%2\u{e9}",
            "%\u{e9}",
            "é",
            "\u{202f}",
            "+\u{202f}32\u{202f}470",
        ] {
            let _ = normalize(raw);
        }
        assert_eq!(normalize("😀"), None);
        assert_eq!(normalize("%2\u{e9}32470000001"), None);
    }

    /// Numbers pasted from documents are grouped with no-break and narrow no-break spaces.
    #[test]
    fn unicode_spaces_separate_digit_groups() {
        assert_eq!(
            normalize("04\u{202f}70\u{202f}12\u{202f}34\u{202f}56").as_deref(),
            Some("0470123456")
        );
        assert_eq!(
            normalize("+32\u{a0}470\u{a0}12\u{a0}34\u{a0}56").as_deref(),
            Some("+32470123456")
        );
    }

    #[test]
    fn one_number_has_one_key() {
        let secret = Secret::from_bytes([7; 32]);
        let plain = identify_caller(Some("0470000000"), "BE", &secret);
        let key = plain.key();
        assert!(key.is_some());
        assert_eq!(
            identify_caller(Some("+32470000000"), "BE", &secret).key(),
            key
        );
        // Padded with zeros, the number would get a key of its own: it is not a usable number.
        for raw in ["0000470000000", "+3200470000000"] {
            let identity = identify_caller(Some(raw), "BE", &secret);
            let other = identity.key();
            assert!(other.is_none() || other == key, "{raw} keyed apart");
        }
        // Dialled with the international prefix, a number keys as its E.164 form does.
        let dialled = identify_caller(Some("0047000000002"), "BE", &secret);
        let e164 = identify_caller(Some("+47000000002"), "BE", &secret);
        assert_eq!(dialled.key(), e164.key());
    }

    #[test]
    fn identify_caller_takes_any_utf8() {
        let secret = Secret::from_bytes([7; 32]);
        for raw in ["😀", "😀😀😀", "%😀", "0\u{202f}😀", "+😀", "%2😀"] {
            assert_eq!(
                identify_caller(Some(raw), "BE", &secret),
                CallerIdentity::Withheld
            );
        }
        assert!(identify_caller(
            Some("04\u{202f}70\u{202f}12\u{202f}34\u{202f}56"),
            "BE",
            &secret
        )
        .key()
        .is_some());
    }
}

/// Whether `region` is a region the number parser knows ("BE", "NL"...), for config checks.
pub fn is_known_region(region: &str) -> bool {
    region.len() == 2
        && region.chars().all(|c| c.is_ascii_uppercase())
        && region.parse::<country::Id>().is_ok()
}

#[cfg(test)]
mod region_tests {
    #[test]
    fn known_regions() {
        assert!(super::is_known_region("BE"));
        assert!(super::is_known_region("NL"));
        assert!(!super::is_known_region("be"));
        assert!(!super::is_known_region("XX"));
        assert!(!super::is_known_region(""));
    }
}
