//! G.711 µ-law and A-law companding (ITU-T G.711), bit-exact with the classic Sun reference `g711.c`.
//!
//! Decoding goes through 256-entry tables built at compile time; encoding is a few shifts.

/// µ-law decode table, indexed by code.
pub const ULAW_TO_LINEAR: [i16; 256] = build_ulaw_table();
/// A-law decode table, indexed by code.
pub const ALAW_TO_LINEAR: [i16; 256] = build_alaw_table();

/// Bias added before µ-law segment search (0x84 = 132 on the 16-bit scale, 33 on 14-bit).
const ULAW_BIAS: i32 = 0x84;
/// Largest 14-bit magnitude µ-law can represent before the bias is added.
const ULAW_CLIP_14BIT: i32 = 8159;

/// Encodes one 16-bit linear sample as µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    // Work on the 14-bit magnitude as G.711 defines it.
    let mut pcm = i32::from(sample) >> 2;
    let mask: u8 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    pcm = pcm.min(ULAW_CLIP_14BIT) + (ULAW_BIAS >> 2);
    // Segment = position of the highest set bit above bit 5; pcm is in 33..=8192.
    let seg = (31 - (pcm as u32).leading_zeros()).saturating_sub(5);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let code = ((seg << 4) as u8) | (((pcm >> (seg + 1)) & 0x0F) as u8);
    code ^ mask
}

/// Decodes one µ-law code to a 16-bit linear sample.
pub fn ulaw_decode(code: u8) -> i16 {
    lookup(&ULAW_TO_LINEAR, code)
}

/// `table[code]`: a `u8` is below 256 by its type, so `get` always finds the entry and the
/// compiler drops the bounds check (the per-sample decode loop stays branch-free).
#[inline(always)]
pub(crate) fn lookup(table: &[i16; 256], code: u8) -> i16 {
    table.get(usize::from(code)).copied().unwrap_or(0)
}

/// Encodes one 16-bit linear sample as A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    // Work on the 13-bit magnitude as G.711 defines it.
    let mut pcm = i32::from(sample) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // pcm is in 0..=4096; segment boundaries are 0x1F, 0x3F, ... 0xFFF.
    if pcm > 0xFFF {
        return 0x7F ^ mask;
    }
    let seg = if pcm < 0x20 {
        0
    } else {
        (31 - (pcm as u32).leading_zeros()) - 4
    };
    let quant = if seg < 2 { pcm >> 1 } else { pcm >> seg } & 0x0F;
    (((seg << 4) as u8) | quant as u8) ^ mask
}

/// Decodes one A-law code to a 16-bit linear sample.
pub fn alaw_decode(code: u8) -> i16 {
    lookup(&ALAW_TO_LINEAR, code)
}

const fn ulaw_decode_calc(code: u8) -> i16 {
    let u = !code;
    let mut t = (((u & 0x0F) as i32) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

const fn alaw_decode_calc(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

// Evaluated at compile time: an index out of range would fail the build, never a call.
#[allow(clippy::indexing_slicing)]
const fn build_ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode_calc(i as u8);
        i += 1;
    }
    table
}

#[allow(clippy::indexing_slicing)]
const fn build_alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode_calc(i as u8);
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Code/value pairs from the G.711 tables (µ-law table 2, A-law table 1, 16-bit scaled).
    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0); // "negative zero"
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0x7E), -8);
        assert_eq!(ulaw_decode(0xF0), 120); // top of segment 0
        assert_eq!(ulaw_decode(0xEF), 132); // bottom of segment 1
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(32124), 0x80);
        assert_eq!(ulaw_encode(-32124), 0x00);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(8), 0xD5);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-8), 0x55);
        assert_eq!(alaw_encode(32256), 0xAA);
        assert_eq!(alaw_encode(-32256), 0x2A);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn ulaw_round_trips_every_code() {
        for code in 0..=255u8 {
            // 0x7F is negative zero: it decodes to 0, which encodes as positive zero 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(ulaw_encode(ulaw_decode(code)), expected, "code {code:#04x}");
        }
    }

    #[test]
    fn alaw_round_trips_every_code() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "code {code:#04x}");
        }
    }

    /// Decoded values are sign-symmetric and increase monotonically with magnitude code.
    #[test]
    fn tables_are_monotonic_and_symmetric() {
        for code in 0..=0x7Fu8 {
            assert_eq!(ulaw_decode(code), -ulaw_decode(code | 0x80));
            assert_eq!(alaw_decode(code ^ 0x80), -alaw_decode(code));
        }
        // µ-law: 0x80 (max) down to 0xFF (zero) decreases.
        for code in 0x80..0xFFu8 {
            assert!(ulaw_decode(code) > ulaw_decode(code + 1));
        }
    }

    /// Encoding every 16-bit value picks the nearest-below quantisation level: the decoded
    /// value is never further from the input than the step size of its segment.
    #[test]
    fn encode_error_is_bounded_for_all_inputs() {
        for s in i16::MIN..=i16::MAX {
            let u = i32::from(ulaw_decode(ulaw_encode(s)));
            let a = i32::from(alaw_decode(alaw_encode(s)));
            let s = i32::from(s);
            // Largest step is 1024 (µ-law) / 1024 (A-law) in the top segment, plus clipping.
            let clip_u = (s.abs() - 32124).max(0);
            let clip_a = (s.abs() - 32256).max(0);
            assert!((u - s).abs() <= 1024 + clip_u, "ulaw {s} -> {u}");
            assert!((a - s).abs() <= 1024 + clip_a, "alaw {s} -> {a}");
            // Relative error stays within G.711's ~3% for non-tiny signals.
            if s.abs() > 256 && s.abs() < 32000 {
                assert!(((u - s) as f64 / s as f64).abs() < 0.07, "ulaw {s} -> {u}");
                assert!(((a - s) as f64 / s as f64).abs() < 0.07, "alaw {s} -> {a}");
            }
        }
    }

    fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
        bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// Bit-exact against the Sun reference implementation over every input: the digests were
    /// computed with CPython's `audioop` (which carries that code) over all 65,536 samples
    /// (`lin2ulaw`/`lin2alaw`) and all 256 codes (`ulaw2lin`/`alaw2lin`, little-endian i16).
    #[test]
    fn matches_reference_implementation_everywhere() {
        let all = || i16::MIN..=i16::MAX;
        assert_eq!(fnv1a(all().map(ulaw_encode)), 0xd5ee_23f7_d0ff_ae91);
        assert_eq!(fnv1a(all().map(alaw_encode)), 0xf030_666e_b780_cf25);
        let le = |table: &'static [i16; 256]| table.iter().flat_map(|s| s.to_le_bytes());
        assert_eq!(fnv1a(le(&ULAW_TO_LINEAR)), 0xb91e_65d6_8481_a1a8);
        assert_eq!(fnv1a(le(&ALAW_TO_LINEAR)), 0x693a_40ca_62a3_d2a5);
        assert_eq!(ALAW_TO_LINEAR[..4], [-5504, -5248, -6016, -5760]);
    }
}
