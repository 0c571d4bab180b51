//! Numbers as recorded word clips (`say_count`, `say_number`) in Dutch, French and English, up to 999,999,999.
//!
//! A number becomes a list of [`NumberClip`]s, each one recorded word or word group, played
//! back to back. The inventories are chosen so the clips compose the way each language is
//! spoken:
//! - **nl** fuses units and tens ("eenentwintig") and hundreds ("tweehonderd"), so 21–99 and
//!   100–900 are whole clips; `duizend` and `miljoen` join them: "tweeduizend
//!   driehonderdvijfenveertig", "een miljoen".
//! - **fr** has clips for 0–19, the tens to 60, the whole 70–79 and 90–99 forms
//!   ("soixante-et-onze", "quatre-vingt-dix-sept"), "quatre-vingts" and the prefix
//!   "quatre-vingt", "et" (for "vingt et un"), "cent"/"cents", "mille", "million"/"millions".
//! - **en** has 0–19, the tens, "hundred", "thousand", "million" and "and" (British usage:
//!   "one hundred and five", "two thousand and five").
//!
//! The clip files are `audio/numbers/{lang}/{token}.wav`; [`inventory`] lists every token
//! with the words it says (the generator script speaks them), and [`spell`] writes a number
//! out from the same clips, which is how the rules are tested.

// Every index below is a digit group of a number clamped to `MAX_SAYABLE` (`parts`): a group
// is below 1000, its hundreds below 10 and its rest below 100, the lengths of the tables.
// Nothing here reads outside input.
#![allow(clippy::indexing_slicing)]

use crate::Lang;

/// The largest number [`clips`] speaks; larger numbers are clamped to it.
pub const MAX_SAYABLE: u64 = 999_999_999;

/// One recorded word or word group of a language's number set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NumberClip {
    pub lang: Lang,
    /// The file stem under `audio/numbers/{lang}/`, e.g. `"21"`, `"100s"`, `"and"`.
    pub token: &'static str,
}

impl NumberClip {
    /// The words this clip says, as written.
    pub fn text(&self) -> &'static str {
        text(self.lang, self.token).unwrap_or("")
    }

    /// The clip's path relative to the repository's `audio/numbers/` directory.
    pub fn relative_path(&self) -> String {
        format!("{}/{}.wav", self.lang.code(), self.token)
    }
}

/// How a clip joins the one before it when written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// Written as one word with the previous clip ("twee|honderd").
    Fused,
    Space,
    Hyphen,
}

const NUM: [&str; 100] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32",
    "33", "34", "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46", "47", "48",
    "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63", "64",
    "65", "66", "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "80",
    "81", "82", "83", "84", "85", "86", "87", "88", "89", "90", "91", "92", "93", "94", "95", "96",
    "97", "98", "99",
];
const HUNDREDS: [&str; 10] = [
    "", "100", "200", "300", "400", "500", "600", "700", "800", "900",
];

const NL_UNITS: [&str; 20] = [
    "nul",
    "een",
    "twee",
    "drie",
    "vier",
    "vijf",
    "zes",
    "zeven",
    "acht",
    "negen",
    "tien",
    "elf",
    "twaalf",
    "dertien",
    "veertien",
    "vijftien",
    "zestien",
    "zeventien",
    "achttien",
    "negentien",
];
const NL_TENS: [&str; 10] = [
    "", "", "twintig", "dertig", "veertig", "vijftig", "zestig", "zeventig", "tachtig", "negentig",
];
const FR_UNITS: [&str; 20] = [
    "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
    "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf",
];
const FR_TENS: [&str; 7] = [
    "",
    "",
    "vingt",
    "trente",
    "quarante",
    "cinquante",
    "soixante",
];
const EN_UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// Every clip of a language's number set with the words it says, in a stable order.
pub fn inventory(lang: Lang) -> Vec<(NumberClip, String)> {
    let mut tokens: Vec<&'static str> = Vec::new();
    match lang {
        Lang::Nl => {
            tokens.extend(NUM.iter());
            tokens.extend(&HUNDREDS[1..]);
            tokens.extend(["1000", "1000000"]);
        }
        Lang::Fr => {
            tokens.extend(&NUM[..20]);
            tokens.extend(["20", "30", "40", "50", "60"]);
            tokens.extend(&NUM[70..80]);
            tokens.extend(["80", "80x"]);
            tokens.extend(&NUM[90..100]);
            tokens.extend(["and", "100", "100s", "1000", "1000000", "1000000s"]);
        }
        Lang::En => {
            tokens.extend(&NUM[..20]);
            tokens.extend(["20", "30", "40", "50", "60", "70", "80", "90"]);
            tokens.extend(["100", "1000", "1000000", "and"]);
        }
    }
    tokens
        .into_iter()
        .map(|token| {
            let words = text(lang, token).unwrap_or_default().to_owned();
            (NumberClip { lang, token }, words)
        })
        .collect()
}

/// The words of one clip, or `None` if the token is not in the language's set.
pub fn text(lang: Lang, token: &str) -> Option<&'static str> {
    // Whole-number tokens first; the named ones after.
    if let Ok(n) = token.parse::<usize>() {
        return number_text(lang, n);
    }
    match (lang, token) {
        (Lang::Fr, "80x") => Some("quatre-vingt"),
        (Lang::Fr, "and") => Some("et"),
        (Lang::Fr, "100s") => Some("cents"),
        (Lang::Fr, "1000000s") => Some("millions"),
        (Lang::En, "and") => Some("and"),
        _ => None,
    }
}

fn number_text(lang: Lang, n: usize) -> Option<&'static str> {
    // The remainders: zero for a round ten or hundred.
    let (round_ten, round_hundred) = (n % 10, n % 100);
    match lang {
        Lang::Nl => match n {
            0..=19 => Some(NL_UNITS[n]),
            20..=99 if round_ten == 0 => Some(NL_TENS[n / 10]),
            20..=99 => NL_COMPOUND.get(n - 20).copied(),
            100 => Some("honderd"),
            200..=900 if round_hundred == 0 => NL_HUNDREDS.get(n / 100 - 2).copied(),
            1000 => Some("duizend"),
            1_000_000 => Some("miljoen"),
            _ => None,
        },
        Lang::Fr => match n {
            0..=19 => Some(FR_UNITS[n]),
            20..=60 if round_ten == 0 => Some(FR_TENS[n / 10]),
            70..=79 => Some(FR_70S[n - 70]),
            80 => Some("quatre-vingts"),
            90..=99 => Some(FR_90S[n - 90]),
            100 => Some("cent"),
            1000 => Some("mille"),
            1_000_000 => Some("million"),
            _ => None,
        },
        Lang::En => match n {
            0..=19 => Some(EN_UNITS[n]),
            20..=90 if round_ten == 0 => Some(EN_TENS[n / 10]),
            100 => Some("hundred"),
            1000 => Some("thousand"),
            1_000_000 => Some("million"),
            _ => None,
        },
    }
}

/// The clips that say `n` in `lang` (numbers above [`MAX_SAYABLE`] are clamped to it).
pub fn clips(lang: Lang, n: u64) -> Vec<NumberClip> {
    parts(lang, n)
        .into_iter()
        .map(|(_, token)| NumberClip { lang, token })
        .collect()
}

/// `n` written out in words from the same clips [`clips`] plays.
pub fn spell(lang: Lang, n: u64) -> String {
    let mut out = String::new();
    for (join, token) in parts(lang, n) {
        if !out.is_empty() {
            match join {
                Join::Fused => {}
                Join::Space => out.push(' '),
                Join::Hyphen => out.push('-'),
            }
        }
        out.push_str(text(lang, token).unwrap_or_default());
    }
    out
}

fn parts(lang: Lang, n: u64) -> Vec<(Join, &'static str)> {
    let n = n.min(MAX_SAYABLE);
    let mut out = Vec::new();
    if n == 0 {
        out.push((Join::Space, NUM[0]));
        return out;
    }
    // Each group is below 1000, so the casts cannot truncate.
    let millions = (n / 1_000_000) as usize;
    let thousands = (n / 1000 % 1000) as usize;
    let rest = (n % 1000) as usize;
    match lang {
        Lang::Nl => nl(millions, thousands, rest, &mut out),
        Lang::Fr => fr(millions, thousands, rest, &mut out),
        Lang::En => en(millions, thousands, rest, &mut out),
    }
    out
}

fn nl(millions: usize, thousands: usize, rest: usize, out: &mut Vec<(Join, &'static str)>) {
    // 1..=999, written as one word: "honderddrieëntwintig".
    fn group(g: usize, first: Join, out: &mut Vec<(Join, &'static str)>) {
        let (h, r) = (g / 100, g % 100);
        let mut join = first;
        if h > 0 {
            out.push((join, HUNDREDS[h]));
            join = Join::Fused;
        }
        if r > 0 {
            out.push((join, NUM[r]));
        }
    }
    if millions > 0 {
        group(millions, Join::Space, out);
        out.push((Join::Space, "1000000"));
    }
    if thousands > 0 {
        // "duizend", not "een duizend"; "tweeduizend" in one word, a space after it.
        if thousands > 1 {
            group(thousands, Join::Space, out);
            out.push((Join::Fused, "1000"));
        } else {
            out.push((Join::Space, "1000"));
        }
    }
    if rest > 0 {
        group(rest, Join::Space, out);
    }
}

fn fr(millions: usize, thousands: usize, rest: usize, out: &mut Vec<(Join, &'static str)>) {
    // `before_mille`: "quatre-vingt mille", "deux cent mille" lose their plural s.
    fn group(g: usize, before_mille: bool, out: &mut Vec<(Join, &'static str)>) {
        let (h, r) = (g / 100, g % 100);
        if h > 0 {
            if h > 1 {
                out.push((Join::Space, NUM[h]));
            }
            let plural = h > 1 && r == 0 && !before_mille;
            out.push((Join::Space, if plural { "100s" } else { "100" }));
        }
        match r {
            0 => {}
            1..=19 | 70..=79 | 90..=99 => out.push((Join::Space, NUM[r])),
            80 => out.push((Join::Space, if before_mille { "80x" } else { "80" })),
            81..=89 => {
                out.push((Join::Space, "80x"));
                out.push((Join::Hyphen, NUM[r - 80]));
            }
            _ => {
                out.push((Join::Space, NUM[r / 10 * 10]));
                match r % 10 {
                    0 => {}
                    1 => {
                        out.push((Join::Space, "and"));
                        out.push((Join::Space, NUM[1]));
                    }
                    u => out.push((Join::Hyphen, NUM[u])),
                }
            }
        }
    }
    if millions > 0 {
        group(millions, false, out);
        out.push((
            Join::Space,
            if millions > 1 { "1000000s" } else { "1000000" },
        ));
    }
    if thousands > 0 {
        // "mille", not "un mille"; "mille" never takes an s.
        if thousands > 1 {
            group(thousands, true, out);
        }
        out.push((Join::Space, "1000"));
    }
    if rest > 0 {
        group(rest, false, out);
    }
}

fn en(millions: usize, thousands: usize, rest: usize, out: &mut Vec<(Join, &'static str)>) {
    fn group(g: usize, out: &mut Vec<(Join, &'static str)>) {
        let (h, r) = (g / 100, g % 100);
        if h > 0 {
            out.push((Join::Space, NUM[h]));
            out.push((Join::Space, "100"));
            if r > 0 {
                out.push((Join::Space, "and"));
            }
        }
        match r {
            0 => {}
            1..=19 => out.push((Join::Space, NUM[r])),
            _ => {
                out.push((Join::Space, NUM[r / 10 * 10]));
                if r % 10 > 0 {
                    out.push((Join::Hyphen, NUM[r % 10]));
                }
            }
        }
    }
    if millions > 0 {
        group(millions, out);
        out.push((Join::Space, "1000000"));
    }
    if thousands > 0 {
        group(thousands, out);
        out.push((Join::Space, "1000"));
    }
    if rest > 0 {
        // British "and" before a last part below a hundred: "two thousand and five".
        if rest < 100 && (millions > 0 || thousands > 0) {
            out.push((Join::Space, "and"));
        }
        group(rest, out);
    }
}

/// Dutch 20–99 as written (index `n - 20`): the units fuse with "en" ("ën" after an e).
const NL_COMPOUND: [&str; 80] = [
    "twintig",
    "eenentwintig",
    "tweeëntwintig",
    "drieëntwintig",
    "vierentwintig",
    "vijfentwintig",
    "zesentwintig",
    "zevenentwintig",
    "achtentwintig",
    "negenentwintig",
    "dertig",
    "eenendertig",
    "tweeëndertig",
    "drieëndertig",
    "vierendertig",
    "vijfendertig",
    "zesendertig",
    "zevenendertig",
    "achtendertig",
    "negenendertig",
    "veertig",
    "eenenveertig",
    "tweeënveertig",
    "drieënveertig",
    "vierenveertig",
    "vijfenveertig",
    "zesenveertig",
    "zevenenveertig",
    "achtenveertig",
    "negenenveertig",
    "vijftig",
    "eenenvijftig",
    "tweeënvijftig",
    "drieënvijftig",
    "vierenvijftig",
    "vijfenvijftig",
    "zesenvijftig",
    "zevenenvijftig",
    "achtenvijftig",
    "negenenvijftig",
    "zestig",
    "eenenzestig",
    "tweeënzestig",
    "drieënzestig",
    "vierenzestig",
    "vijfenzestig",
    "zesenzestig",
    "zevenenzestig",
    "achtenzestig",
    "negenenzestig",
    "zeventig",
    "eenenzeventig",
    "tweeënzeventig",
    "drieënzeventig",
    "vierenzeventig",
    "vijfenzeventig",
    "zesenzeventig",
    "zevenenzeventig",
    "achtenzeventig",
    "negenenzeventig",
    "tachtig",
    "eenentachtig",
    "tweeëntachtig",
    "drieëntachtig",
    "vierentachtig",
    "vijfentachtig",
    "zesentachtig",
    "zevenentachtig",
    "achtentachtig",
    "negenentachtig",
    "negentig",
    "eenennegentig",
    "tweeënnegentig",
    "drieënnegentig",
    "vierennegentig",
    "vijfennegentig",
    "zesennegentig",
    "zevenennegentig",
    "achtennegentig",
    "negenennegentig",
];
/// Dutch 200–900 (index `n / 100 - 2`).
const NL_HUNDREDS: [&str; 8] = [
    "tweehonderd",
    "driehonderd",
    "vierhonderd",
    "vijfhonderd",
    "zeshonderd",
    "zevenhonderd",
    "achthonderd",
    "negenhonderd",
];
/// French 70–79: "soixante" plus 10–19.
const FR_70S: [&str; 10] = [
    "soixante-dix",
    "soixante-et-onze",
    "soixante-douze",
    "soixante-treize",
    "soixante-quatorze",
    "soixante-quinze",
    "soixante-seize",
    "soixante-dix-sept",
    "soixante-dix-huit",
    "soixante-dix-neuf",
];
/// French 90–99: "quatre-vingt" plus 10–19.
const FR_90S: [&str; 10] = [
    "quatre-vingt-dix",
    "quatre-vingt-onze",
    "quatre-vingt-douze",
    "quatre-vingt-treize",
    "quatre-vingt-quatorze",
    "quatre-vingt-quinze",
    "quatre-vingt-seize",
    "quatre-vingt-dix-sept",
    "quatre-vingt-dix-huit",
    "quatre-vingt-dix-neuf",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lang: Lang, cases: &[(u64, &str)]) {
        for &(n, words) in cases {
            assert_eq!(spell(lang, n), words, "{lang} {n}");
        }
    }

    #[test]
    fn dutch() {
        check(
            Lang::Nl,
            &[
                (0, "nul"),
                (1, "een"),
                (7, "zeven"),
                (13, "dertien"),
                (20, "twintig"),
                (21, "eenentwintig"),
                (22, "tweeëntwintig"),
                (23, "drieëntwintig"),
                (38, "achtendertig"),
                (80, "tachtig"),
                (99, "negenennegentig"),
                (100, "honderd"),
                (101, "honderdeen"),
                (110, "honderdtien"),
                (121, "honderdeenentwintig"),
                (200, "tweehonderd"),
                (999, "negenhonderdnegenennegentig"),
                (1000, "duizend"),
                (1001, "duizend een"),
                (1100, "duizend honderd"),
                (2000, "tweeduizend"),
                (2345, "tweeduizend driehonderdvijfenveertig"),
                (21_000, "eenentwintigduizend"),
                (100_000, "honderdduizend"),
                (123_456, "honderddrieëntwintigduizend vierhonderdzesenvijftig"),
                (1_000_000, "een miljoen"),
                (2_000_000, "twee miljoen"),
                (1_001_000, "een miljoen duizend"),
                (
                    999_999_999,
                    "negenhonderdnegenennegentig miljoen negenhonderdnegenennegentigduizend negenhonderdnegenennegentig",
                ),
            ],
        );
    }

    #[test]
    fn french() {
        check(
            Lang::Fr,
            &[
                (0, "zéro"),
                (1, "un"),
                (16, "seize"),
                (17, "dix-sept"),
                (20, "vingt"),
                (21, "vingt et un"),
                (22, "vingt-deux"),
                (31, "trente et un"),
                (61, "soixante et un"),
                (69, "soixante-neuf"),
                (70, "soixante-dix"),
                (71, "soixante-et-onze"),
                (77, "soixante-dix-sept"),
                (80, "quatre-vingts"),
                (81, "quatre-vingt-un"),
                (89, "quatre-vingt-neuf"),
                (90, "quatre-vingt-dix"),
                (91, "quatre-vingt-onze"),
                (97, "quatre-vingt-dix-sept"),
                (100, "cent"),
                (101, "cent un"),
                (180, "cent quatre-vingts"),
                (200, "deux cents"),
                (201, "deux cent un"),
                (1000, "mille"),
                (1001, "mille un"),
                (2000, "deux mille"),
                (80_000, "quatre-vingt mille"),
                (200_000, "deux cent mille"),
                (280_000, "deux cent quatre-vingt mille"),
                (1_000_000, "un million"),
                (2_000_000, "deux millions"),
                (80_000_000, "quatre-vingts millions"),
                (200_000_000, "deux cents millions"),
                (
                    1_234_567,
                    "un million deux cent trente-quatre mille cinq cent soixante-sept",
                ),
            ],
        );
    }

    #[test]
    fn english() {
        check(
            Lang::En,
            &[
                (0, "zero"),
                (5, "five"),
                (19, "nineteen"),
                (21, "twenty-one"),
                (40, "forty"),
                (99, "ninety-nine"),
                (100, "one hundred"),
                (105, "one hundred and five"),
                (999, "nine hundred and ninety-nine"),
                (1000, "one thousand"),
                (2000, "two thousand"),
                (2005, "two thousand and five"),
                (2100, "two thousand one hundred"),
                (12_345, "twelve thousand three hundred and forty-five"),
                (1_000_000, "one million"),
                (1_000_005, "one million and five"),
                (
                    999_999_999,
                    "nine hundred and ninety-nine million nine hundred and ninety-nine thousand nine hundred and ninety-nine",
                ),
            ],
        );
    }

    #[test]
    fn big_numbers_are_clamped() {
        for lang in Lang::ALL {
            assert_eq!(spell(lang, u64::MAX), spell(lang, MAX_SAYABLE));
        }
    }

    /// Every clip of every number up to 100,000 (and a sweep beyond) is in the inventory, and
    /// the inventory has no clip nothing uses.
    #[test]
    fn clips_stay_inside_the_inventory() {
        for lang in Lang::ALL {
            let inv: std::collections::HashSet<&str> =
                inventory(lang).iter().map(|(c, _)| c.token).collect();
            let mut used = std::collections::HashSet::new();
            let sweep = (0..100_000).chain((0..2000u64).map(|i| i * 499_999 + 7));
            for n in sweep {
                for clip in clips(lang, n) {
                    assert!(inv.contains(clip.token), "{lang} {n}: {}", clip.token);
                    assert!(!clip.text().is_empty());
                    used.insert(clip.token);
                }
            }
            let unused: Vec<_> = inv.difference(&used).collect();
            assert!(unused.is_empty(), "{lang}: unused clips {unused:?}");
        }
    }

    /// The committed number sets have a file for every clip.
    #[test]
    fn committed_number_sets_are_complete() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../audio/numbers");
        for lang in Lang::ALL {
            for (clip, _) in inventory(lang) {
                let path = root.join(clip.relative_path());
                assert!(path.is_file(), "missing {}", path.display());
            }
        }
    }
}
