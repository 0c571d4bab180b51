//! Records the caller's voice after the beep and decides, from time and speech detection, when to stop.
//!
//! Time-based: [`Recorder::poll`] works even when no audio arrives at all (a muted phone or
//! silence suppression), because the end conditions are measured against `now`.

use std::time::{Duration, Instant};

use crate::vad::Vad;
use crate::{wav, SAMPLE_RATE_HZ};

/// Samples the VAD looks at in one decision (20 ms).
const VAD_FRAME_SAMPLES: usize = crate::FRAME_SAMPLES;

/// When a recording ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderLimits {
    /// Hard cap on length, by time and by stored samples (`max` of 8 kHz audio is all we keep).
    pub max: Duration,
    /// After speech was heard, this much silence ends the recording.
    pub silence_end: Duration,
    /// With no speech at all for this long after start, give up.
    pub initial_silence: Duration,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `max` reached.
    MaxLength,
    /// Speech was heard, then `silence_end` without speech.
    SilenceAfterSpeech,
    /// No speech within `initial_silence` of the start.
    NoSpeech,
}

/// One recording: 8 kHz mono samples plus speech bookkeeping.
#[derive(Debug, Clone)]
pub struct Recorder {
    limits: RecorderLimits,
    start: Instant,
    max_samples: usize,
    samples: Vec<i16>,
    vad: Vad,
    voiced_samples: u64,
    last_speech: Option<Instant>,
    ended: Option<EndReason>,
}

impl Recorder {
    /// Starts a recording at `start` with the default [`Vad`].
    pub fn new(limits: RecorderLimits, start: Instant) -> Self {
        Self::with_vad(limits, start, Vad::default())
    }

    /// Starts a recording with a configured speech detector.
    pub fn with_vad(limits: RecorderLimits, start: Instant, vad: Vad) -> Self {
        let max_samples = duration_to_samples(limits.max);
        Recorder {
            limits,
            start,
            max_samples,
            // Grows as audio arrives; `max_samples` bounds it, so a short answer stays small.
            samples: Vec::new(),
            vad,
            voiced_samples: 0,
            last_speech: None,
            ended: None,
        }
    }

    /// Adds decoded 8 kHz audio that arrived at `now`. Audio past `max` is dropped; after the
    /// recording ended nothing is added.
    pub fn push(&mut self, now: Instant, samples: &[i16]) {
        if self.ended.is_some() {
            return;
        }
        let room = self.max_samples.saturating_sub(self.samples.len());
        let kept = samples.get(..room).unwrap_or(samples);
        // Grow geometrically but never past the cap, so memory stays within `max`.
        let needed = self.samples.len() + kept.len();
        if needed > self.samples.capacity() {
            let target = (self.samples.capacity() * 2).clamp(needed, self.max_samples.max(needed));
            self.samples.reserve_exact(target - self.samples.len());
        }
        self.samples.extend_from_slice(kept);
        for frame in kept.chunks(VAD_FRAME_SAMPLES) {
            if self.vad.is_speech(frame) {
                self.last_speech = Some(now);
            }
            if self.vad.voiced() {
                self.voiced_samples += frame.len() as u64;
            }
        }
    }

    /// Whether the recording has ended at `now`, and why. Once ended it stays ended with the
    /// same reason.
    pub fn poll(&mut self, now: Instant) -> Option<EndReason> {
        if self.ended.is_none() {
            let elapsed = now.saturating_duration_since(self.start);
            self.ended = if elapsed >= self.limits.max || self.samples.len() >= self.max_samples {
                Some(EndReason::MaxLength)
            } else if let Some(last) = self.last_speech {
                (now.saturating_duration_since(last) >= self.limits.silence_end)
                    .then_some(EndReason::SilenceAfterSpeech)
            } else {
                (elapsed >= self.limits.initial_silence).then_some(EndReason::NoSpeech)
            };
        }
        self.ended
    }

    /// The latest instant at which [`Recorder::poll`] should be called next if no audio
    /// arrives: when the earliest applicable limit runs out.
    pub fn next_timeout(&self) -> Instant {
        let max = self.start + self.limits.max;
        let quiet = match self.last_speech {
            Some(last) => last + self.limits.silence_end,
            None => self.start + self.limits.initial_silence,
        };
        max.min(quiet)
    }

    /// Total voiced audio detected so far (hangover not counted).
    pub fn speech(&self) -> Duration {
        Duration::from_nanos(self.voiced_samples * 1_000_000_000 / u64::from(SAMPLE_RATE_HZ))
    }

    /// The recorded samples (8 kHz mono).
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// The reason it ended, if [`Recorder::poll`] saw it end.
    pub fn ended(&self) -> Option<EndReason> {
        self.ended
    }

    /// The recording as a 16-bit 8 kHz mono WAV file.
    pub fn into_wav(self) -> Vec<u8> {
        wav::pcm16_mono(&self.samples, SAMPLE_RATE_HZ)
    }
}

fn duration_to_samples(d: Duration) -> usize {
    let n = d.as_nanos() * u128::from(SAMPLE_RATE_HZ) / 1_000_000_000;
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone;
    use crate::{FRAME_DURATION, FRAME_SAMPLES};

    const LIMITS: RecorderLimits = RecorderLimits {
        max: Duration::from_secs(20),
        silence_end: Duration::from_secs(2),
        initial_silence: Duration::from_secs(5),
    };

    /// Feeds `samples` as 20 ms packets starting at `*t`, polling after each; returns the first end.
    fn feed(rec: &mut Recorder, t: &mut Instant, samples: &[i16]) -> Option<EndReason> {
        for frame in samples.chunks(FRAME_SAMPLES) {
            *t += FRAME_DURATION;
            rec.push(*t, frame);
            if let Some(end) = rec.poll(*t) {
                return Some(end);
            }
        }
        None
    }

    #[test]
    fn speech_then_silence_ends_with_silence_after_speech() {
        let t0 = crate::test_origin();
        let mut rec = Recorder::new(LIMITS, t0);
        let mut t = t0;
        assert_eq!(
            feed(&mut rec, &mut t, &tone(440.0, Duration::from_secs(1), 8000)),
            None
        );
        let end = feed(&mut rec, &mut t, &[0; 3 * 8000]);
        assert_eq!(end, Some(EndReason::SilenceAfterSpeech));
        // 1 s of speech, 200 ms hangover, then 2 s of silence.
        let ended_after = t - t0;
        assert!(
            ended_after >= Duration::from_millis(3150)
                && ended_after <= Duration::from_millis(3250),
            "{ended_after:?}"
        );
        let speech = rec.speech();
        assert!(
            speech >= Duration::from_millis(960) && speech <= Duration::from_millis(1000),
            "{speech:?}"
        );
        assert_eq!(rec.samples().len(), (ended_after.as_millis() * 8) as usize);
        // Sticky, and further audio is ignored.
        rec.push(t, &[1000; 160]);
        assert_eq!(
            rec.poll(t + Duration::from_secs(60)),
            Some(EndReason::SilenceAfterSpeech)
        );
        let wav = rec.into_wav();
        assert_eq!(wav.len(), 44 + (ended_after.as_millis() * 16) as usize);
    }

    #[test]
    fn no_audio_at_all_ends_with_no_speech() {
        let t0 = crate::test_origin();
        let mut rec = Recorder::new(LIMITS, t0);
        assert_eq!(rec.next_timeout(), t0 + LIMITS.initial_silence);
        assert_eq!(rec.poll(t0 + Duration::from_millis(4999)), None);
        assert_eq!(
            rec.poll(t0 + Duration::from_secs(5)),
            Some(EndReason::NoSpeech)
        );
        assert_eq!(rec.speech(), Duration::ZERO);
        assert!(rec.samples().is_empty());
    }

    #[test]
    fn silence_only_ends_with_no_speech() {
        let t0 = crate::test_origin();
        let mut rec = Recorder::new(LIMITS, t0);
        let mut t = t0;
        assert_eq!(
            feed(&mut rec, &mut t, &[0; 10 * 8000]),
            Some(EndReason::NoSpeech)
        );
        assert_eq!(t - t0, LIMITS.initial_silence);
    }

    #[test]
    fn audio_stopping_mid_speech_still_ends_by_time() {
        let t0 = crate::test_origin();
        let mut rec = Recorder::new(LIMITS, t0);
        let mut t = t0;
        feed(
            &mut rec,
            &mut t,
            &tone(440.0, Duration::from_millis(600), 8000),
        );
        // The phone goes quiet: no packets at all.
        assert_eq!(rec.next_timeout(), t + LIMITS.silence_end);
        assert_eq!(rec.poll(t + Duration::from_millis(1999)), None);
        assert_eq!(
            rec.poll(t + LIMITS.silence_end),
            Some(EndReason::SilenceAfterSpeech)
        );
    }

    #[test]
    fn continuous_speech_ends_at_max_and_memory_is_capped() {
        let t0 = crate::test_origin();
        let limits = RecorderLimits {
            max: Duration::from_secs(3),
            ..LIMITS
        };
        let mut rec = Recorder::new(limits, t0);
        // A burst of audio arriving faster than real time cannot exceed the cap.
        rec.push(t0, &tone(440.0, Duration::from_secs(5), 8000));
        assert_eq!(rec.samples().len(), 3 * 8000);
        assert_eq!(rec.poll(t0), Some(EndReason::MaxLength));
        assert_eq!(rec.samples.capacity(), 3 * 8000);

        let mut rec = Recorder::new(limits, t0);
        let mut t = t0;
        let end = feed(
            &mut rec,
            &mut t,
            &tone(440.0, Duration::from_secs(10), 8000),
        );
        assert_eq!(end, Some(EndReason::MaxLength));
        assert_eq!(t - t0, Duration::from_secs(3));
        assert_eq!(rec.samples.capacity(), 3 * 8000, "growth stops at the cap");
        assert!(rec.speech() > Duration::from_millis(2900));
    }

    #[test]
    fn pauses_between_words_do_not_end_recording() {
        let t0 = crate::test_origin();
        let mut rec = Recorder::new(LIMITS, t0);
        let mut t = t0;
        for _ in 0..4 {
            assert_eq!(
                feed(
                    &mut rec,
                    &mut t,
                    &tone(300.0, Duration::from_millis(400), 6000)
                ),
                None
            );
            assert_eq!(feed(&mut rec, &mut t, &[0; 8000]), None); // 1 s pause < 2 s
        }
        let speech = rec.speech();
        assert!(speech >= Duration::from_millis(1500) && speech <= Duration::from_millis(1600));
    }
}
