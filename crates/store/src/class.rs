//! Classification of a phone number from the number alone, stored beside its key: number type,
//! Belgian region of a fixed line (from its zone), and a coarse prefix block. Nothing here can
//! be turned back into the number.

use phonenumber::{PhoneNumber, Type};

/// Fewest numbers that share a prefix block: the block keeps the country code and the leading
/// national digits, and always leaves at least five digits out (100,000 numbers for a full
/// length number; never fewer than this).
pub const PREFIX_BLOCK_MIN_NUMBERS: u64 = 10_000;

/// National digits a prefix block never keeps, whatever the number's length.
const PREFIX_BLOCK_DROPPED_DIGITS: usize = 5;

/// Most national digits a prefix block keeps (an operator range is named by about this many).
const PREFIX_BLOCK_MAX_DIGITS: usize = 4;

/// What kind of line a number belongs to, by its range.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub enum NumberKind {
    Mobile,
    Fixed,
    Voip,
    Premium,
    TollFree,
    /// Anything else, or ranges that are fixed or mobile (North America) or unassigned.
    Unknown,
}

impl NumberKind {
    pub const ALL: [NumberKind; 6] = [
        NumberKind::Mobile,
        NumberKind::Fixed,
        NumberKind::Voip,
        NumberKind::Premium,
        NumberKind::TollFree,
        NumberKind::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Mobile => "mobile",
            NumberKind::Fixed => "fixed",
            NumberKind::Voip => "voip",
            NumberKind::Premium => "premium",
            NumberKind::TollFree => "toll_free",
            NumberKind::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<NumberKind> {
        NumberKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Belgium's three regions, which the Chamber's petition thresholds are set per.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, serde::Serialize)]
pub enum BelgianRegion {
    Flanders,
    Wallonia,
    Brussels,
}

impl BelgianRegion {
    pub fn as_str(self) -> &'static str {
        match self {
            BelgianRegion::Flanders => "flanders",
            BelgianRegion::Wallonia => "wallonia",
            BelgianRegion::Brussels => "brussels",
        }
    }

    pub fn parse(s: &str) -> Option<BelgianRegion> {
        [
            BelgianRegion::Flanders,
            BelgianRegion::Wallonia,
            BelgianRegion::Brussels,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// What is kept about a number besides its keyed hash.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NumberClass {
    pub kind: NumberKind,
    /// For Belgian fixed lines: the region of the zone (see [`belgian_zone_region`]).
    pub be_region: Option<BelgianRegion>,
    /// "+<country code> <leading national digits>", e.g. "+32 4701" for +32 470 12 34 56.
    pub prefix_block: String,
}

/// Classifies a parsed number. May panic inside the phonenumber crate on odd input; the
/// caller runs it under `catch_unwind`.
pub(crate) fn classify(number: &PhoneNumber) -> NumberClass {
    let kind = match number.number_type(&phonenumber::metadata::DATABASE) {
        Type::Mobile => NumberKind::Mobile,
        Type::FixedLine => NumberKind::Fixed,
        Type::Voip => NumberKind::Voip,
        Type::PremiumRate => NumberKind::Premium,
        Type::TollFree => NumberKind::TollFree,
        _ => NumberKind::Unknown,
    };
    let national = national_digits(number);
    let code = number.code().value();
    // The metadata knows only the allocated ranges; a Belgian 8-digit number in a geographic
    // zone is a fixed line whatever the range, so trust the zone plan there.
    let be_region = match kind {
        NumberKind::Fixed | NumberKind::Unknown if code == 32 => belgian_zone_region(&national),
        _ => None,
    };
    let kind = if be_region.is_some() {
        NumberKind::Fixed
    } else {
        kind
    };
    NumberClass {
        kind,
        be_region,
        prefix_block: prefix_block(code, &national),
    }
}

/// The national significant number as digits, with the leading zeros some countries keep.
fn national_digits(number: &PhoneNumber) -> String {
    let n = number.national();
    let mut s = "0".repeat(usize::from(n.zeros()));
    s.push_str(&n.value().to_string());
    s
}

/// The country code and the leading national digits, leaving out at least
/// `PREFIX_BLOCK_DROPPED_DIGITS` digits so that at least 100,000 numbers share the block.
pub(crate) fn prefix_block(country_code: u16, national: &str) -> String {
    let keep = national
        .len()
        .saturating_sub(PREFIX_BLOCK_DROPPED_DIGITS)
        .min(PREFIX_BLOCK_MAX_DIGITS);
    // `national` is the parser's digits (ASCII), but a block must never panic on what it is
    // given: anything else, or a cut that is not a character boundary, keeps the country only.
    match national.get(..keep) {
        Some(lead) if keep > 0 && lead.bytes().all(|b| b.is_ascii_digit()) => {
            format!("+{country_code} {lead}")
        }
        _ => format!("+{country_code}"),
    }
}

/// The region of a Belgian fixed-line number (national significant number, 8 digits, without
/// the trunk 0) from its zone, per the BIPT zone list: 02 Brussels; 03 Antwerpen, 09 Gent,
/// 011-016, 050-059, 089 Flanders; 04 Liège, 010, 019, 060-087 Wallonia.
///
/// Zones follow telephone districts, not the regional border, so this is an approximation: 02
/// also covers the Flemish and Walloon municipalities around Brussels, and 056 (Kortrijk) also
/// covers Mouscron and Comines in Wallonia. Good enough for a count against thresholds, which
/// is what it is for; a zone not in the list gives None.
pub fn belgian_zone_region(national: &str) -> Option<BelgianRegion> {
    use BelgianRegion::{Brussels, Flanders, Wallonia};
    let &[first, second, ..] = national.as_bytes() else {
        return None;
    };
    if national.len() != 8 || !national.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match first {
        b'2' => return Some(Brussels),
        b'3' | b'9' => return Some(Flanders),
        b'4' => return Some(Wallonia),
        _ => {}
    }
    match [first, second] {
        [b'1', b'1'..=b'6'] | [b'5', _] | [b'8', b'9'] => Some(Flanders),
        [b'1', b'0' | b'9'] => Some(Wallonia),
        [b'6', b'0' | b'1' | b'3' | b'4' | b'5' | b'7' | b'8' | b'9'] | [b'7', b'1'] => {
            Some(Wallonia)
        }
        [b'8', b'0'..=b'7'] => Some(Wallonia),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert_eq!(
            belgian_zone_region("22345678"),
            Some(BelgianRegion::Brussels)
        );
        assert_eq!(
            belgian_zone_region("32345678"),
            Some(BelgianRegion::Flanders)
        );
        assert_eq!(
            belgian_zone_region("92345678"),
            Some(BelgianRegion::Flanders)
        );
        assert_eq!(
            belgian_zone_region("42345678"),
            Some(BelgianRegion::Wallonia)
        );
        assert_eq!(
            belgian_zone_region("16123456"),
            Some(BelgianRegion::Flanders)
        );
        assert_eq!(
            belgian_zone_region("81123456"),
            Some(BelgianRegion::Wallonia)
        );
        assert_eq!(
            belgian_zone_region("89123456"),
            Some(BelgianRegion::Flanders)
        );
        assert_eq!(
            belgian_zone_region("10123456"),
            Some(BelgianRegion::Wallonia)
        );
        assert_eq!(belgian_zone_region("78123456"), None, "078 is national");
        assert_eq!(belgian_zone_region("470123456"), None, "mobile length");
        assert_eq!(belgian_zone_region("62123456"), None, "062 is no zone");
        assert_eq!(belgian_zone_region("88123456"), None, "088 is no zone");
        assert_eq!(
            belgian_zone_region("71123456"),
            Some(BelgianRegion::Wallonia)
        );
        assert_eq!(
            belgian_zone_region("59123456"),
            Some(BelgianRegion::Flanders)
        );
        assert_eq!(belgian_zone_region("17123456"), None);
    }

    /// Not digits, or cut inside a character: an answer, never a panic.
    #[test]
    fn odd_text_gives_an_answer() {
        for s in ["", "2", "😀", "2😀345", "é2345678", "1234567é"] {
            assert_eq!(belgian_zone_region(s), None, "{s:?}");
        }
        assert_eq!(prefix_block(32, "4😀0123456"), "+32");
        assert_eq!(prefix_block(32, "é70123456"), "+32");
        assert_eq!(prefix_block(32, "abcdefghi"), "+32");
    }

    #[test]
    fn prefix_blocks_are_coarse() {
        assert_eq!(prefix_block(32, "470123456"), "+32 4701");
        assert_eq!(prefix_block(32, "21234567"), "+32 212");
        assert_eq!(prefix_block(31, "612345678"), "+31 6123");
        assert_eq!(prefix_block(1, "2025550123"), "+1 2025");
        assert_eq!(prefix_block(32, "12345"), "+32");
        // At least 10,000 numbers share every block: 5 or more digits are always left out.
        for len in 1..=15usize {
            let national = "1".repeat(len);
            let kept = prefix_block(32, &national)
                .len()
                .saturating_sub("+32 ".len());
            assert!(len - kept >= 5 || kept == 0, "{len}");
            assert!(10u64.pow((len - kept) as u32) >= PREFIX_BLOCK_MIN_NUMBERS || kept == 0);
        }
    }
}
