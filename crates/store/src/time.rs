//! RFC 3339 UTC timestamps from `SystemTime`, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `t` as "YYYY-MM-DDTHH:MM:SSZ" (UTC, whole seconds). Times before 1970 are clamped
/// to the epoch; a server clock that wrong has bigger problems.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses "YYYY-MM-DD" (midnight UTC), "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DD HH:MM:SS"
/// (UTC). None for anything else, or a time before 1970.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let at = |i: usize| b.get(i).copied();
    if b.len() < 10 || at(4) != Some(b'-') || at(7) != Some(b'-') {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let secs_of_day = match b.len() {
        10 => 0,
        19 | 20 => {
            if !matches!(at(10), Some(b'T' | b' ')) || at(13) != Some(b':') || at(16) != Some(b':')
            {
                return None;
            }
            if b.len() == 20 && at(19) != Some(b'Z') {
                return None;
            }
            let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
            if hh > 23 || mm > 59 || ss > 60 {
                return None;
            }
            hh * 3600 + mm * 60 + ss
        }
        _ => return None,
    };
    let days = days_from_civil(y, m as u32, d as u32);
    let secs = u64::try_from(days * 86_400 + secs_of_day).ok()?;
    Some(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// (year, month, day) to days since 1970-01-01, Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let at = |s: u64| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    /// Operators type these (`--since`, console filters): odd text is None, never a panic.
    #[test]
    fn odd_text_is_not_a_time() {
        for s in [
            "",
            "2025",
            "2025-06-01T",
            "2025-06-01T12:00:0😀",
            "2025-06-😀",
            "😀😀😀",
            "2025-06-01\u{202f}12:00:00Z",
            "2025-06-01T12:00:00Zé",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s:?}");
        }
    }

    #[test]
    fn parse_round_trips() {
        for s in [0u64, 951_782_400, 1_709_210_096, 4_102_444_799] {
            let t = UNIX_EPOCH + Duration::from_secs(s);
            assert_eq!(parse_rfc3339(&rfc3339_utc(t)), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2024-02-29"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_164_800))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29 12:34:56"),
            parse_rfc3339("2024-02-29T12:34:56Z")
        );
        for bad in [
            "",
            "2024-13-01",
            "2024-02-29T12:34",
            "1969-12-31",
            "abcd-ef-gh",
            "2024-02-29X",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
