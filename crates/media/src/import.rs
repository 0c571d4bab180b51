//! Prompt import: decode a file, trim the silence at its ends, normalise its loudness; and the numbers `belteken audio check` shows.
//!
//! Loudness is measured as **gated RMS**: the mean power of the 20 ms blocks louder than
//! [`LOUDNESS_GATE_DBFS`], in dBFS. Pauses between words do not pull it down, so a slow and a
//! fast speaker at the same voice level measure the same, which is the point of LUFS without
//! its K-weighting (telephone audio is band-limited to 300–3400 Hz anyway). Prompts are
//! brought to [`TARGET_LOUDNESS_DBFS`], never amplified more than [`MAX_GAIN_DB`] and never
//! past a peak of [`MAX_PEAK_DBFS`].
#![warn(clippy::arithmetic_side_effects)]
#![cfg_attr(test, allow(clippy::arithmetic_side_effects))]

use std::path::Path;
use std::time::Duration;

use crate::audio::{decode_file, AudioError};
use crate::{FRAME_SAMPLES, SAMPLE_RATE_HZ};

/// The loudness every imported prompt is brought to (gated RMS, dBFS).
pub const TARGET_LOUDNESS_DBFS: f32 = -20.0;
/// Blocks quieter than this are pauses and do not count towards loudness.
pub const LOUDNESS_GATE_DBFS: f32 = -50.0;
/// Normalisation never lifts a peak above this (headroom for G.711 and the caller's phone).
pub const MAX_PEAK_DBFS: f32 = -1.0;
/// Normalisation never amplifies more than this: a very quiet file stays quiet rather than
/// turning its noise into a roar.
pub const MAX_GAIN_DB: f32 = 24.0;
/// The ends of a prompt quieter than this are trimmed.
pub const TRIM_THRESHOLD_DBFS: f32 = -45.0;
/// Audio kept before the first and after the last sound above the threshold, so the
/// trimming never clips a soft onset or a fading word.
pub const TRIM_MARGIN: Duration = Duration::from_millis(40);
/// The window the trimming measures in (10 ms).
const TRIM_WINDOW_SAMPLES: usize = 80;
/// Levels of digital silence.
const FLOOR_DBFS: f32 = -120.0;

/// What `belteken audio check` shows about a prompt (8 kHz mono samples).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioStats {
    pub duration: Duration,
    /// The largest sample, in dBFS (0 is full scale).
    pub peak_dbfs: f32,
    /// The RMS of the whole file, pauses included, in dBFS.
    pub rms_dbfs: f32,
    /// Gated RMS (see the module docs), in dBFS: what normalisation aims at.
    pub loudness_dbfs: f32,
}

/// Measures 8 kHz mono samples.
pub fn analyze(samples: &[i16]) -> AudioStats {
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    AudioStats {
        duration: Duration::from_secs_f64(samples.len() as f64 / f64::from(SAMPLE_RATE_HZ)),
        peak_dbfs: amplitude_dbfs(f64::from(peak)),
        rms_dbfs: power_dbfs(mean_power(samples)),
        loudness_dbfs: loudness_dbfs(samples),
    }
}

/// Gated RMS in dBFS; [`FLOOR_DBFS`] when no block passes the gate.
pub fn loudness_dbfs(samples: &[i16]) -> f32 {
    let gate = db_to_power(LOUDNESS_GATE_DBFS);
    let (sum, n) = samples
        .chunks(FRAME_SAMPLES)
        .map(mean_power)
        .filter(|&p| p >= gate)
        .fold((0.0, 0usize), |(sum, n), p| (sum + p, n.saturating_add(1)));
    if n == 0 {
        FLOOR_DBFS
    } else {
        power_dbfs(sum / n as f64)
    }
}

/// The samples without the silence at their ends (see [`TRIM_THRESHOLD_DBFS`] and
/// [`TRIM_MARGIN`]); empty if nothing is louder than the threshold.
pub fn trim_silence(samples: &[i16]) -> &[i16] {
    let threshold = db_to_power(TRIM_THRESHOLD_DBFS);
    let loud = |w: &[i16]| mean_power(w) >= threshold;
    let Some(first) = samples.chunks(TRIM_WINDOW_SAMPLES).position(loud) else {
        return &[];
    };
    let last = samples
        .chunks(TRIM_WINDOW_SAMPLES)
        .rposition(loud)
        .unwrap_or(first);
    let margin = (TRIM_MARGIN.as_secs_f64() * f64::from(SAMPLE_RATE_HZ)) as usize;
    // Window indices times the window size stay within `samples.len()`; saturating anyway.
    let start = first
        .saturating_mul(TRIM_WINDOW_SAMPLES)
        .saturating_sub(margin);
    let end = last
        .saturating_add(1)
        .saturating_mul(TRIM_WINDOW_SAMPLES)
        .saturating_add(margin)
        .min(samples.len());
    samples.get(start..end).unwrap_or_default()
}

/// Scales the samples to [`TARGET_LOUDNESS_DBFS`] within [`MAX_GAIN_DB`] and
/// [`MAX_PEAK_DBFS`]; returns the gain applied, in dB. Silence is left alone.
pub fn normalize(samples: &mut [i16]) -> f32 {
    let stats = analyze(samples);
    if stats.loudness_dbfs <= FLOOR_DBFS {
        return 0.0;
    }
    let gain_db = (TARGET_LOUDNESS_DBFS - stats.loudness_dbfs)
        .min(MAX_GAIN_DB)
        .min(MAX_PEAK_DBFS - stats.peak_dbfs);
    let gain = 10f64.powf(f64::from(gain_db) / 20.0);
    for s in samples.iter_mut() {
        *s = (f64::from(*s) * gain).round().clamp(-32768.0, 32767.0) as i16;
    }
    gain_db
}

/// Trims and normalises decoded 8 kHz mono audio into a prompt; fails on silence.
pub fn prepare(samples: &[i16]) -> Result<Vec<i16>, AudioError> {
    let mut out = trim_silence(samples).to_vec();
    if out.is_empty() {
        return Err(AudioError::Silent {
            threshold_dbfs: TRIM_THRESHOLD_DBFS,
        });
    }
    normalize(&mut out);
    Ok(out)
}

/// Reads a prompt file (WAV, MP3, OGG/Vorbis or FLAC, any rate and channel count) into
/// trimmed, loudness-normalised 8 kHz mono samples. Errors name the file and the reason.
pub fn import_file(path: &Path) -> Result<Vec<i16>, AudioError> {
    let samples = decode_file(path)?;
    prepare(&samples).map_err(|e| AudioError::InFile {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

fn mean_power(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    energy / samples.len() as f64 / (32768.0 * 32768.0)
}

fn power_dbfs(power: f64) -> f32 {
    if power <= 0.0 {
        return FLOOR_DBFS;
    }
    ((10.0 * power.log10()) as f32).max(FLOOR_DBFS)
}

fn amplitude_dbfs(amplitude: f64) -> f32 {
    if amplitude <= 0.0 {
        return FLOOR_DBFS;
    }
    ((20.0 * (amplitude / 32768.0).log10()) as f32).max(FLOOR_DBFS)
}

fn db_to_power(db: f32) -> f64 {
    10f64.powf(f64::from(db) / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone;

    fn silence(ms: u64) -> Vec<i16> {
        vec![0; (ms * 8) as usize]
    }

    #[test]
    fn analyze_a_tone() {
        // A sine of amplitude 8000: peak -12.25 dBFS, RMS 3 dB lower.
        let t = tone(1000.0, Duration::from_secs(1), 8000);
        let s = analyze(&t);
        assert_eq!(s.duration, Duration::from_secs(1));
        assert!((s.peak_dbfs + 12.25).abs() < 0.05, "{s:?}");
        assert!((s.rms_dbfs + 15.26).abs() < 0.1, "{s:?}");
        assert!((s.loudness_dbfs - s.rms_dbfs).abs() < 0.1, "{s:?}");
        // Pauses lower the RMS, not the loudness.
        let mut paused = t.clone();
        paused.extend(silence(1000));
        let p = analyze(&paused);
        assert!((p.rms_dbfs - (s.rms_dbfs - 3.01)).abs() < 0.1, "{p:?}");
        assert!((p.loudness_dbfs - s.loudness_dbfs).abs() < 0.1, "{p:?}");
        let empty = analyze(&[]);
        assert_eq!(
            (empty.duration, empty.peak_dbfs),
            (Duration::ZERO, FLOOR_DBFS)
        );
    }

    #[test]
    fn trims_both_ends_with_a_margin() {
        let mut s = silence(500);
        s.extend(tone(440.0, Duration::from_millis(600), 8000));
        s.extend(silence(700));
        let t = trim_silence(&s);
        // 600 ms of tone (its 5 ms fades may fall below the threshold) plus up to 40 ms each side.
        let ms = t.len() / 8;
        assert!((600..=690).contains(&ms), "{ms} ms");
        assert!(trim_silence(&silence(300)).is_empty());
        assert!(trim_silence(&[]).is_empty());
        // Quiet noise below the threshold counts as silence.
        let hiss: Vec<i16> = (0..4000)
            .map(|i| if i % 2 == 0 { 50 } else { -50 })
            .collect();
        assert!(trim_silence(&hiss).is_empty());
    }

    #[test]
    fn normalizes_to_the_target_within_limits() {
        let mut quiet = tone(440.0, Duration::from_secs(1), 1000);
        let gain = normalize(&mut quiet);
        assert!((analyze(&quiet).loudness_dbfs - TARGET_LOUDNESS_DBFS).abs() < 0.1);
        assert!(gain > 10.0);

        let mut loud = tone(440.0, Duration::from_secs(1), 30000);
        normalize(&mut loud);
        assert!((analyze(&loud).loudness_dbfs - TARGET_LOUDNESS_DBFS).abs() < 0.1);

        // Spiky audio: the peak limit wins over the loudness target.
        let mut spiky = tone(440.0, Duration::from_secs(1), 300);
        spiky[4000] = 30000;
        normalize(&mut spiky);
        let s = analyze(&spiky);
        assert!(s.peak_dbfs <= MAX_PEAK_DBFS + 0.01, "{s:?}");

        // Very quiet audio gets at most MAX_GAIN_DB.
        let mut whisper = tone(440.0, Duration::from_secs(1), 250); // -45.4 dBFS
        let gain = normalize(&mut whisper);
        assert!((gain - MAX_GAIN_DB).abs() < 0.01);

        let mut nothing = silence(100);
        assert_eq!(normalize(&mut nothing), 0.0);
        assert!(matches!(prepare(&nothing), Err(AudioError::Silent { .. })));
    }
}
