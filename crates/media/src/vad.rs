//! Energy-based speech detection per 20 ms frame, with an adaptive noise floor and a short hangover.

/// Default absolute threshold: frames quieter than this RMS level are never speech.
pub const DEFAULT_THRESHOLD_DBFS: f32 = -40.0;
/// A frame must also be this far above the tracked noise floor to count as speech.
pub const DEFAULT_FLOOR_MARGIN_DB: f32 = 10.0;
/// Default hangover: speech continues this many frames (200 ms) after the last voiced one,
/// so the gaps between syllables do not end it.
pub const DEFAULT_HANGOVER_FRAMES: u32 = 10;
/// Level reported for digital silence (an all-zero frame has no finite dB value).
pub const SILENCE_DBFS: f32 = -96.0;
/// The noise floor rises at most this much per non-speech frame (5 dB/s at 20 ms)...
const FLOOR_RISE_DB_PER_QUIET_FRAME: f32 = 0.1;
/// ...and this much per speech frame (0.5 dB/s), so long speech does not become "noise".
const FLOOR_RISE_DB_PER_SPEECH_FRAME: f32 = 0.01;
/// The floor never climbs above this, so loud speech is always speech.
const MAX_NOISE_FLOOR_DBFS: f32 = -25.0;

/// RMS level of `samples` in dBFS, where 0 dBFS is an RMS of 32768 (a full-scale sine is
/// about -3 dBFS). Empty or all-zero input gives [`SILENCE_DBFS`].
pub fn rms_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return SILENCE_DBFS;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / samples.len() as f64).sqrt();
    if rms <= 0.0 {
        return SILENCE_DBFS;
    }
    ((20.0 * (rms / 32768.0).log10()) as f32).max(SILENCE_DBFS)
}

/// Speech detector for one audio stream.
#[derive(Debug, Clone)]
pub struct Vad {
    threshold_dbfs: f32,
    margin_db: f32,
    hangover_frames: u32,
    noise_floor_dbfs: f32,
    hangover_left: u32,
    voiced: bool,
    last_level_dbfs: f32,
}

impl Default for Vad {
    fn default() -> Self {
        Vad::new(DEFAULT_THRESHOLD_DBFS)
    }
}

impl Vad {
    /// A detector with the given absolute threshold (RMS dBFS) and default margin and hangover.
    pub fn new(threshold_dbfs: f32) -> Self {
        Vad {
            threshold_dbfs,
            margin_db: DEFAULT_FLOOR_MARGIN_DB,
            hangover_frames: DEFAULT_HANGOVER_FRAMES,
            noise_floor_dbfs: threshold_dbfs - DEFAULT_FLOOR_MARGIN_DB,
            hangover_left: 0,
            voiced: false,
            last_level_dbfs: SILENCE_DBFS,
        }
    }

    /// Sets how many frames speech lasts after the last voiced frame.
    pub fn with_hangover_frames(mut self, frames: u32) -> Self {
        self.hangover_frames = frames;
        self
    }

    /// Classifies one frame (normally 160 samples) and returns whether we are in speech,
    /// hangover included. An empty frame changes nothing.
    pub fn is_speech(&mut self, frame: &[i16]) -> bool {
        if frame.is_empty() {
            return self.voiced || self.hangover_left > 0;
        }
        let level = rms_dbfs(frame);
        self.last_level_dbfs = level;
        self.voiced = level > self.threshold_dbfs && level > self.noise_floor_dbfs + self.margin_db;

        // Track the floor: fall at once to quieter frames, rise slowly otherwise.
        if level < self.noise_floor_dbfs {
            self.noise_floor_dbfs = level;
        } else {
            let rise = if self.voiced {
                FLOOR_RISE_DB_PER_SPEECH_FRAME
            } else {
                FLOOR_RISE_DB_PER_QUIET_FRAME
            };
            self.noise_floor_dbfs = (self.noise_floor_dbfs + rise)
                .min(level)
                .min(MAX_NOISE_FLOOR_DBFS);
        }

        if self.voiced {
            self.hangover_left = self.hangover_frames;
            true
        } else if self.hangover_left > 0 {
            self.hangover_left -= 1;
            true
        } else {
            false
        }
    }

    /// Whether the last frame itself was voiced (no hangover): use it to measure speech time.
    pub fn voiced(&self) -> bool {
        self.voiced
    }

    /// RMS level of the last non-empty frame, dBFS.
    pub fn last_level_dbfs(&self) -> f32 {
        self.last_level_dbfs
    }

    /// The tracked noise floor, dBFS.
    pub fn noise_floor_dbfs(&self) -> f32 {
        self.noise_floor_dbfs
    }

    pub fn threshold_dbfs(&self) -> f32 {
        self.threshold_dbfs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone;
    use crate::FRAME_SAMPLES;
    use std::time::Duration;

    fn frames(samples: &[i16]) -> impl Iterator<Item = &[i16]> {
        samples.chunks(FRAME_SAMPLES)
    }

    /// Deterministic white-ish noise at roughly the given peak amplitude.
    fn noise(n: usize, amplitude: i16, seed: u64) -> Vec<i16> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = ((x >> 33) as i64 % (2 * i64::from(amplitude) + 1)) - i64::from(amplitude);
                r as i16
            })
            .collect()
    }

    #[test]
    fn levels() {
        assert_eq!(rms_dbfs(&[]), SILENCE_DBFS);
        assert_eq!(rms_dbfs(&[0; 160]), SILENCE_DBFS);
        assert!((rms_dbfs(&[i16::MIN; 160]) - 0.0).abs() < 0.01);
        // Full-scale-ish sine: -3 dBFS.
        let s = tone(1000.0, Duration::from_millis(200), 32767);
        assert!((rms_dbfs(&s[80..1520]) + 3.01).abs() < 0.05);
    }

    #[test]
    fn tone_is_speech_silence_is_not_with_hangover() {
        let mut vad = Vad::default();
        for f in frames(&[0; 1600]) {
            assert!(!vad.is_speech(f));
        }
        let t = tone(300.0, Duration::from_millis(500), 3000); // about -24 dBFS
        for f in frames(&t) {
            assert!(vad.is_speech(f));
            assert!(vad.voiced());
        }
        // Hangover: 10 silent frames still speech, then not.
        for i in 0..20 {
            let speech = vad.is_speech(&[0; FRAME_SAMPLES]);
            assert_eq!(speech, i < DEFAULT_HANGOVER_FRAMES, "frame {i}");
            assert!(!vad.voiced());
        }
    }

    #[test]
    fn quiet_signal_below_threshold_is_not_speech() {
        let mut vad = Vad::default();
        let t = tone(300.0, Duration::from_millis(500), 200); // about -47 dBFS
        assert!(frames(&t).all(|f| !vad.is_speech(f)));
    }

    #[test]
    fn adapts_to_steady_noise_but_still_hears_speech_over_it() {
        let mut vad = Vad::default();
        // Steady noise around -35 dBFS: above the absolute threshold.
        let n = noise(8000 * 20, 1000, 7);
        let decisions: Vec<bool> = frames(&n).map(|f| vad.is_speech(f)).collect();
        // Eventually the floor catches up and the noise is no longer speech.
        assert!(decisions[decisions.len() - 50..].iter().all(|d| !d));
        // Speech 15 dB above the noise is still detected.
        let mut mixed = tone(300.0, Duration::from_millis(500), 8000);
        for (m, x) in mixed.iter_mut().zip(noise(4000, 1000, 9)) {
            *m = m.saturating_add(x);
        }
        assert!(frames(&mixed).skip(1).all(|f| vad.is_speech(f)));
    }

    #[test]
    fn long_speech_stays_speech() {
        let mut vad = Vad::default();
        let t = tone(200.0, Duration::from_secs(20), 2000); // about -27 dBFS, a quiet talker
        assert!(frames(&t).all(|f| vad.is_speech(f)));
    }
}
