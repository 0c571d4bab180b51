//! Audio decoding (WAV, MP3, OGG/Vorbis, FLAC → 8 kHz mono i16 via symphonia and rubato), pre-encoded prompts, and tones.
//!
//! Loudness normalisation and silence trimming for imported prompts are in [`crate::import`].

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rubato::{FftFixedIn, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use thiserror::Error;

use crate::{Codec, FRAME_DURATION, FRAME_SAMPLES, SAMPLE_RATE_HZ};

/// Largest audio file we import (a 10-minute 48 kHz stereo 24-bit WAV is ~173 MB).
pub const MAX_AUDIO_FILE_BYTES: usize = 256 * 1024 * 1024;
/// Longest audio we import; prompts are minutes, not hours.
pub const MAX_AUDIO_DURATION: Duration = Duration::from_secs(15 * 60);
/// Accepted source sample rates, Hz.
pub const MIN_SOURCE_RATE_HZ: u32 = 1_000;
pub const MAX_SOURCE_RATE_HZ: u32 = 384_000;
/// Longest tone [`tone`] generates; longer requests are cut to this.
pub const MAX_TONE_DURATION: Duration = Duration::from_secs(10);
/// Fade in and out of [`tone`], so the beep does not click.
pub const TONE_FADE: Duration = Duration::from_millis(5);
/// Input frames per resampler call: the FFT size is rounded up from this.
const RESAMPLE_CHUNK_FRAMES: usize = 1024;

/// Why audio could not be imported.
#[derive(Debug, Error)]
pub enum AudioError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        source: Box<AudioError>,
    },
    #[error("audio file is larger than {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
    #[error("audio is longer than {max:?}")]
    TooLong { max: Duration },
    #[error("not a decodable audio file: {0}")]
    Decode(#[from] SymphoniaError),
    #[error(transparent)]
    BadHeader(#[from] crate::tags::BadHeader),
    #[error("the file has no audio track")]
    NoAudioTrack,
    #[error("the file does not state its sample rate")]
    UnknownSampleRate,
    #[error("sample rate {0} Hz is outside {MIN_SOURCE_RATE_HZ}..={MAX_SOURCE_RATE_HZ} Hz")]
    UnsupportedSampleRate(u32),
    #[error("cannot set up resampling: {0}")]
    ResamplerSetup(#[from] rubato::ResamplerConstructionError),
    #[error("resampling failed: {0}")]
    Resample(#[from] rubato::ResampleError),
    #[error("the audio is silent (nothing above {threshold_dbfs} dBFS)")]
    Silent { threshold_dbfs: f32 },
}

/// Reads and decodes an audio file (WAV, MP3, OGG/Vorbis or FLAC, told apart by their
/// content; the extension is only a hint); errors name the path.
pub fn decode_file(path: &Path) -> Result<Vec<i16>, AudioError> {
    let read_err = |source| AudioError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit so an oversized file is detected without reading it all.
    file.take(MAX_AUDIO_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let hint = path.extension().and_then(|e| e.to_str());
    decode_bytes(&bytes, hint).map_err(|e| AudioError::InFile {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

/// Decodes a WAV file (any rate, any channel count, 8/16/24/32-bit integer or float, A-law
/// or µ-law) to 8 kHz mono: channels are averaged, then resampled with a band-limited FFT
/// resampler. The output has `ceil(frames * 8000 / rate)` samples.
pub fn decode_wav_bytes(bytes: &[u8]) -> Result<Vec<i16>, AudioError> {
    decode_bytes(bytes, Some("wav"))
}

/// Decodes an audio file's bytes (WAV, MP3, OGG/Vorbis or FLAC; `extension` is a hint for
/// the format probe) to 8 kHz mono, as [`decode_wav_bytes`] does. Encoder delay and padding
/// (MP3, Vorbis) are removed where the file states them; a corrupt packet is skipped.
pub fn decode_bytes(bytes: &[u8], extension: Option<&str>) -> Result<Vec<i16>, AudioError> {
    if bytes.len() > MAX_AUDIO_FILE_BYTES {
        return Err(AudioError::TooLarge {
            max_bytes: MAX_AUDIO_FILE_BYTES,
        });
    }
    crate::tags::check_comment_lengths(bytes)?;
    // symphonia needs an owned 'static source; one copy at import time is fine.
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(ext);
    }
    let format_options = FormatOptions {
        enable_gapless: true,
        ..FormatOptions::default()
    };
    let probed = symphonia::default::get_probe().format(
        &hint,
        source,
        &format_options,
        &MetadataOptions::default(),
    )?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or(AudioError::NoAudioTrack)?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .ok_or(AudioError::UnknownSampleRate)?;
    if !(MIN_SOURCE_RATE_HZ..=MAX_SOURCE_RATE_HZ).contains(&rate) {
        return Err(AudioError::UnsupportedSampleRate(rate));
    }
    let mut decoder =
        symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default())?;
    let max_frames = u64::from(rate) * MAX_AUDIO_DURATION.as_secs();

    let mut sink = MonoSink::new(rate)?;
    let mut interleaved: Option<SampleBuffer<f32>> = None;
    let mut frames_in: u64 = 0;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break
            }
            Err(e) => return Err(e.into()),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // One damaged packet of a compressed stream: skip it, as players do.
            Err(SymphoniaError::DecodeError(_)) if frames_in > 0 => continue,
            Err(e) => return Err(e.into()),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let needed = decoded.frames() * channels;
        let buf = match &mut interleaved {
            Some(buf) if buf.capacity() >= needed => buf,
            slot => slot.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        frames_in += (buf.samples().len() / channels) as u64;
        if frames_in > max_frames {
            return Err(AudioError::TooLong {
                max: MAX_AUDIO_DURATION,
            });
        }
        sink.push(buf.samples(), channels)?;
    }
    sink.finish(frames_in)
}

/// Collects mono audio at the source rate and resamples it to 8 kHz as whole chunks fill.
struct MonoSink {
    rate: u32,
    /// Mono input not yet handed to the resampler (or everything, at 8 kHz).
    pending: Vec<f32>,
    resampler: Option<FftFixedIn<f32>>,
    scratch: Vec<Vec<f32>>,
    out: Vec<f32>,
}

impl MonoSink {
    fn new(rate: u32) -> Result<Self, AudioError> {
        let resampler = if rate == SAMPLE_RATE_HZ {
            None
        } else {
            Some(FftFixedIn::new(
                rate as usize,
                SAMPLE_RATE_HZ as usize,
                RESAMPLE_CHUNK_FRAMES,
                1,
                1,
            )?)
        };
        let scratch = resampler
            .as_ref()
            .map(|r| r.output_buffer_allocate(true))
            .unwrap_or_default();
        Ok(MonoSink {
            rate,
            pending: Vec::new(),
            resampler,
            scratch,
            out: Vec::new(),
        })
    }

    fn push(&mut self, interleaved: &[f32], channels: usize) -> Result<(), AudioError> {
        let scale = 1.0 / channels as f32;
        self.pending.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };
        let mut used = 0usize;
        // Whole chunks of the size the resampler asks for, while the pending samples hold one.
        while let Some(chunk) = used
            .checked_add(resampler.input_frames_next())
            .and_then(|end| self.pending.get(used..end))
        {
            let (consumed, produced) =
                resampler.process_into_buffer(&[chunk], &mut self.scratch, None)?;
            used = used.saturating_add(consumed);
            self.out
                .extend_from_slice(first_channel(&self.scratch, produced));
        }
        self.pending.drain(..used);
        Ok(())
    }

    fn finish(mut self, frames_in: u64) -> Result<Vec<i16>, AudioError> {
        let expected =
            usize::try_from((frames_in * u64::from(SAMPLE_RATE_HZ)).div_ceil(u64::from(self.rate)))
                .unwrap_or(usize::MAX);
        let mono = match self.resampler.as_mut() {
            None => self.pending,
            Some(resampler) => {
                if !self.pending.is_empty() {
                    let (_, produced) = resampler.process_partial_into_buffer(
                        Some(&[self.pending.as_slice()]),
                        &mut self.scratch,
                        None,
                    )?;
                    self.out
                        .extend_from_slice(first_channel(&self.scratch, produced));
                }
                // Flush the resampler's delay line with silence until the tail is out.
                let delay = resampler.output_delay();
                // Each flush yields at least one FFT block; a few always suffice, the bound
                // only guards against a resampler that yields nothing.
                for _ in 0..16 {
                    if self.out.len() >= delay + expected {
                        break;
                    }
                    let (_, produced) = resampler.process_partial_into_buffer(
                        None::<&[&[f32]]>,
                        &mut self.scratch,
                        None,
                    )?;
                    self.out
                        .extend_from_slice(first_channel(&self.scratch, produced));
                }
                self.out.drain(..delay.min(self.out.len()));
                self.out
            }
        };
        let mut samples: Vec<i16> = mono.iter().map(|&x| f32_to_i16(x)).collect();
        samples.truncate(expected);
        Ok(samples)
    }
}

/// The `produced` samples the resampler wrote into its (one, mono) output channel; it never
/// reports more than the buffer it was given holds.
fn first_channel(scratch: &[Vec<f32>], produced: usize) -> &[f32] {
    scratch
        .first()
        .and_then(|channel| channel.get(..produced))
        .unwrap_or_default()
}

fn f32_to_i16(x: f32) -> i16 {
    // Resampling can overshoot full scale slightly; clamp rather than wrap.
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// A prompt pre-encoded once in both G.711 laws, shared read-only by every call (wrap it in
/// an `Arc`). Frames are 20 ms (160 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pcmu: Box<[u8]>,
    pcma: Box<[u8]>,
    frames: usize,
}

impl Prompt {
    /// Encodes 8 kHz mono samples, padding the last frame with silence to 160 samples.
    pub fn from_samples(samples: &[i16]) -> Prompt {
        let frames = samples.len().div_ceil(FRAME_SAMPLES);
        let len = frames * FRAME_SAMPLES;
        let encode = |codec: Codec| {
            let mut bytes = vec![0u8; len];
            codec.encode(samples, &mut bytes);
            let silence = match codec {
                Codec::Pcmu => crate::g711::ulaw_encode(0),
                Codec::Pcma => crate::g711::alaw_encode(0),
            };
            // `encode` wrote `samples.len()` bytes of the `len >= samples.len()`.
            if let Some(tail) = bytes.get_mut(samples.len()..) {
                tail.fill(silence);
            }
            bytes.into_boxed_slice()
        };
        Prompt {
            pcmu: encode(Codec::Pcmu),
            pcma: encode(Codec::Pcma),
            frames,
        }
    }

    /// Frame `index` (160 bytes) in `codec`, or `None` past the end.
    pub fn frame(&self, codec: Codec, index: usize) -> Option<&[u8]> {
        let bytes = match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        };
        let start = index.checked_mul(FRAME_SAMPLES)?;
        bytes.get(start..start.checked_add(FRAME_SAMPLES)?)
    }

    /// Number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Playing time (frames × 20 ms).
    pub fn duration(&self) -> Duration {
        FRAME_DURATION.saturating_mul(u32::try_from(self.frames).unwrap_or(u32::MAX))
    }
}

/// A sine tone at 8 kHz with a 5 ms fade in and out (the beep). `duration` is capped at
/// [`MAX_TONE_DURATION`].
pub fn tone(freq_hz: f32, duration: Duration, amplitude: i16) -> Vec<i16> {
    let duration = duration.min(MAX_TONE_DURATION);
    let rate = f64::from(SAMPLE_RATE_HZ);
    let n = (duration.as_secs_f64() * rate).round() as usize;
    let fade = ((TONE_FADE.as_secs_f64() * rate) as usize)
        .min(n / 2)
        .max(1);
    let step = std::f64::consts::TAU * f64::from(freq_hz) / rate;
    (0..n)
        .map(|i| {
            let edge = i.min(n - 1 - i);
            let gain = if edge < fade {
                edge as f64 / fade as f64
            } else {
                1.0
            };
            (f64::from(amplitude) * gain * (step * i as f64).sin()).round() as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::rms_dbfs;

    /// Builds a WAV of any layout: 16-bit or 24-bit integer or 32-bit float, interleaved.
    fn wav_bytes(rate: u32, channels: u16, format: SampleFormat, frames: &[Vec<f64>]) -> Vec<u8> {
        let (tag, bits) = match format {
            SampleFormat::I16 => (1u16, 16u16),
            SampleFormat::I24 => (1, 24),
            SampleFormat::F32 => (3, 32),
        };
        let block = channels * bits / 8;
        let mut data = Vec::new();
        for frame in frames {
            assert_eq!(frame.len(), usize::from(channels));
            for &x in frame {
                match format {
                    SampleFormat::I16 => {
                        data.extend_from_slice(&((x * 32767.0) as i16).to_le_bytes())
                    }
                    SampleFormat::I24 => {
                        data.extend_from_slice(&((x * 8_388_607.0) as i32).to_le_bytes()[..3])
                    }
                    SampleFormat::F32 => data.extend_from_slice(&(x as f32).to_le_bytes()),
                }
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        out.extend_from_slice(&block.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        out
    }

    #[derive(Clone, Copy)]
    enum SampleFormat {
        I16,
        I24,
        F32,
    }

    fn sine(rate: u32, freq: f64, seconds: f64, amp: f64) -> Vec<f64> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| amp * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin())
            .collect()
    }

    /// The middle of the output (edges excluded) must be a sine of the same level.
    fn assert_level(out: &[i16], expected_dbfs: f32) {
        let mid = &out[out.len() / 10..out.len() * 9 / 10];
        let level = rms_dbfs(mid);
        assert!(
            (level - expected_dbfs).abs() < 0.5,
            "{level} vs {expected_dbfs}"
        );
    }

    #[test]
    fn stereo_22050_16bit_resamples_to_8k() {
        let s = sine(22050, 440.0, 1.5, 0.5);
        let frames: Vec<Vec<f64>> = s.iter().map(|&x| vec![x, x]).collect();
        let out =
            decode_wav_bytes(&wav_bytes(22050, 2, SampleFormat::I16, &frames)).expect("valid wav");
        assert_eq!(out.len(), 12000);
        // 0.5 amplitude sine: 20*log10(0.5/sqrt 2) = -9.03 dBFS.
        assert_level(&out, -9.03);
    }

    #[test]
    fn mono_48k_float_and_44k1_24bit() {
        let s = sine(48000, 1000.0, 1.0, 0.25);
        let frames: Vec<Vec<f64>> = s.iter().map(|&x| vec![x]).collect();
        let out =
            decode_wav_bytes(&wav_bytes(48000, 1, SampleFormat::F32, &frames)).expect("float wav");
        assert_eq!(out.len(), 8000);
        assert_level(&out, -15.05);

        let s = sine(44100, 300.0, 0.7, 0.25);
        let frames: Vec<Vec<f64>> = s.iter().map(|&x| vec![x]).collect();
        let out =
            decode_wav_bytes(&wav_bytes(44100, 1, SampleFormat::I24, &frames)).expect("24-bit wav");
        assert_eq!(out.len(), 5600);
        assert_level(&out, -15.05);
    }

    #[test]
    fn stereo_is_averaged_and_8k_passes_through() {
        // Left has the tone, right is silent: the mix is 6 dB down.
        let s = sine(8000, 500.0, 0.5, 0.5);
        let frames: Vec<Vec<f64>> = s.iter().map(|&x| vec![x, 0.0]).collect();
        let out = decode_wav_bytes(&wav_bytes(8000, 2, SampleFormat::I16, &frames)).expect("valid");
        assert_eq!(out.len(), 4000);
        assert_level(&out, -9.03 - 6.02);
    }

    /// The resampler's delay is compensated: a tone starting at 0.5 s still starts at sample 4000.
    #[test]
    fn resampling_keeps_timing() {
        let mut s = vec![0.0; 11025];
        s.extend(sine(22050, 440.0, 0.5, 0.5));
        let frames: Vec<Vec<f64>> = s.iter().map(|&x| vec![x]).collect();
        let out =
            decode_wav_bytes(&wav_bytes(22050, 1, SampleFormat::I16, &frames)).expect("valid");
        assert_eq!(out.len(), 8000);
        let onset = out
            .iter()
            .position(|s| s.abs() > 1000)
            .expect("tone present");
        assert!((3995..=4010).contains(&onset), "onset at {onset}");
        assert!(rms_dbfs(&out[..3900]) < -50.0, "no pre-echo of note");
    }

    #[test]
    fn high_frequencies_are_filtered_out() {
        // 6 kHz cannot exist at 8 kHz: it must be removed, not aliased to 2 kHz.
        let s = sine(48000, 6000.0, 1.0, 0.5);
        let frames: Vec<Vec<f64>> = s.iter().map(|&x| vec![x]).collect();
        let out =
            decode_wav_bytes(&wav_bytes(48000, 1, SampleFormat::I16, &frames)).expect("valid");
        assert!(rms_dbfs(&out[800..7200]) < -60.0);
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert!(matches!(decode_wav_bytes(b""), Err(AudioError::Decode(_))));
        assert!(matches!(
            decode_wav_bytes(b"not a wav file at all"),
            Err(AudioError::Decode(_))
        ));
        let frames: Vec<Vec<f64>> = sine(16000, 440.0, 0.1, 0.5)
            .into_iter()
            .map(|x| vec![x])
            .collect();
        let good = wav_bytes(16000, 1, SampleFormat::I16, &frames);
        // Every truncation and a sweep of single-byte corruptions in the header.
        for len in 0..good.len().min(200) {
            let _ = decode_wav_bytes(&good[..len]);
        }
        for at in 0..44 {
            for v in [0u8, 1, 0x7F, 0xFF] {
                let mut bad = good.clone();
                bad[at] = v;
                let _ = decode_wav_bytes(&bad);
            }
        }
        let mut odd_rate = good.clone();
        odd_rate[24..28].copy_from_slice(&500u32.to_le_bytes());
        assert!(matches!(
            decode_wav_bytes(&odd_rate),
            Err(AudioError::UnsupportedSampleRate(500))
        ));
    }

    #[test]
    fn decode_file_names_the_path() {
        let missing = Path::new("/nonexistent/belteken/prompt.wav");
        let err = decode_file(missing).expect_err("missing file");
        assert!(
            err.to_string().contains("/nonexistent/belteken/prompt.wav"),
            "{err}"
        );

        let dir = std::env::temp_dir().join(format!("belteken-media-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let bad = dir.join("bad.wav");
        std::fs::write(&bad, b"RIFF....garbage").expect("write temp file");
        let err = decode_file(&bad).expect_err("garbage");
        assert!(matches!(err, AudioError::InFile { .. }));
        assert!(err.to_string().contains("bad.wav"), "{err}");

        let good = dir.join("good.wav");
        std::fs::write(&good, crate::wav::pcm16_mono(&[100; 400], 8000)).expect("write temp file");
        assert_eq!(decode_file(&good).expect("valid"), vec![100; 400]);
        std::fs::remove_dir_all(&dir).expect("clean up temp dir");
    }

    #[test]
    fn prompt_pads_and_serves_frames() {
        let samples = tone(440.0, Duration::from_millis(50), 8000); // 400 samples
        let p = Prompt::from_samples(&samples);
        assert_eq!(p.frames(), 3);
        assert_eq!(p.duration(), Duration::from_millis(60));
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for i in 0..3 {
                assert_eq!(p.frame(codec, i).expect("in range").len(), 160);
            }
            assert_eq!(p.frame(codec, 3), None);
            assert_eq!(p.frame(codec, usize::MAX), None);
            let mut decoded = Vec::new();
            codec.decode(p.frame(codec, 2).expect("in range"), &mut decoded);
            assert!(
                decoded[80..].iter().all(|&s| s.abs() <= 8),
                "padding is silence"
            );
        }
        assert_eq!(p.frame(Codec::Pcmu, 0).expect("frame")[0], 0xFF);
        assert_eq!(p.frame(Codec::Pcma, 0).expect("frame")[0], 0xD5);
        let empty = Prompt::from_samples(&[]);
        assert_eq!((empty.frames(), empty.duration()), (0, Duration::ZERO));
        assert_eq!(empty.frame(Codec::Pcmu, 0), None);
    }

    #[test]
    fn tone_shape() {
        let t = tone(1000.0, Duration::from_millis(250), 8000);
        assert_eq!(t.len(), 2000);
        assert_eq!(t[0], 0);
        assert!(t[..40].iter().all(|s| s.abs() < 8000));
        assert!(t.iter().map(|s| s.abs()).max() >= Some(7990));
        // Fades: the first and last 2 ms are much quieter than the middle.
        assert!(rms_dbfs(&t[..16]) < rms_dbfs(&t[1000..1016]) - 6.0);
        assert!(rms_dbfs(&t[1984..]) < rms_dbfs(&t[1000..1016]) - 6.0);
        assert_eq!(tone(440.0, Duration::from_secs(3600), 100).len(), 80_000);
        assert!(tone(440.0, Duration::ZERO, 100).is_empty());
        assert_eq!(tone(440.0, Duration::from_micros(125), 100).len(), 1);
    }
}
