//! Writes canonical 16-bit PCM mono WAV files (44-byte RIFF header), e.g. for recordings.
#![warn(clippy::arithmetic_side_effects)]
#![cfg_attr(test, allow(clippy::arithmetic_side_effects))]

/// Size of the canonical RIFF/WAVE header this module writes.
pub const WAV_HEADER_LEN: usize = 44;
/// Most samples a WAV file can hold: the RIFF size field is 32 bits.
pub const MAX_WAV_SAMPLES: usize = ((u32::MAX as usize) - 36) / 2;

/// Encodes `samples` as a 16-bit little-endian mono WAV at `sample_rate` Hz. Input beyond
/// [`MAX_WAV_SAMPLES`] (over 4 GiB) is truncated, as the format cannot describe it.
pub fn pcm16_mono(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let samples = samples.get(..MAX_WAV_SAMPLES).unwrap_or(samples);
    // Fits in u32: bounded by MAX_WAV_SAMPLES above.
    let data_bytes = samples.len().saturating_mul(2);
    let data_len = u32::try_from(data_bytes).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(WAV_HEADER_LEN.saturating_add(data_bytes));
    out.extend_from_slice(b"RIFF");
    // The RIFF size counts the 36 header bytes after this field and the data.
    out.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&sample_rate.saturating_mul(2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_header() {
        let wav = pcm16_mono(&[1, -2], 8000);
        let expected: [u8; 48] = [
            b'R', b'I', b'F', b'F', 40, 0, 0, 0, b'W', b'A', b'V', b'E', //
            b'f', b'm', b't', b' ', 16, 0, 0, 0, 1, 0, 1, 0, //
            0x40, 0x1F, 0, 0, 0x80, 0x3E, 0, 0, 2, 0, 16, 0, //
            b'd', b'a', b't', b'a', 4, 0, 0, 0, 1, 0, 0xFE, 0xFF,
        ];
        assert_eq!(wav, expected);
        assert_eq!(pcm16_mono(&[], 8000).len(), WAV_HEADER_LEN);
    }

    #[test]
    fn our_decoder_reads_what_we_write() {
        let samples: Vec<i16> = (0..8000)
            .map(|i| ((i * 37) % 20000 - 10000) as i16)
            .collect();
        let back = crate::audio::decode_wav_bytes(&pcm16_mono(&samples, 8000)).expect("valid wav");
        assert_eq!(back, samples);
    }
}
