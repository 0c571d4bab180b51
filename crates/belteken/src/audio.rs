//! Loads a campaign's audio: its own files, the built-in demo, system prompts and number
//! clips, each decoded and pre-encoded once and shared by every call.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use flow::spec::{FlowSpec, PromptSource};
use flow::Lang;
use media::audio::Prompt;
use ring::digest::{Context, SHA256};

use crate::config::BUILTIN;

include!(concat!(env!("OUT_DIR"), "/embedded_audio.rs"));

/// The beep before the recording.
const BEEP_HZ: f32 = 1000.0;
const BEEP_LENGTH: Duration = Duration::from_millis(400);
const BEEP_AMPLITUDE: i16 = 8000;

/// A built-in WAV by its path under `audio/`.
pub fn embedded(path: &str) -> Option<&'static [u8]> {
    EMBEDDED_AUDIO
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

/// Decoded prompts shared between campaigns (system prompts, number clips, files used twice).
#[derive(Default)]
pub struct Cache {
    prompts: HashMap<String, Arc<Prompt>>,
}

impl Cache {
    fn get_or_load(
        &mut self,
        key: String,
        load: impl FnOnce() -> Result<Vec<i16>>,
    ) -> Result<Arc<Prompt>> {
        if let Some(p) = self.prompts.get(&key) {
            return Ok(p.clone());
        }
        let samples = load()?;
        let prompt = Arc::new(Prompt::from_samples(&samples));
        self.prompts.insert(key, prompt.clone());
        Ok(prompt)
    }
}

fn decode_builtin(path: &str) -> Result<Vec<i16>> {
    let bytes = embedded(path).ok_or_else(|| anyhow!("no built-in audio {path}"))?;
    media::audio::decode_wav_bytes(bytes).with_context(|| format!("built-in audio {path}"))
}

/// Uploaded clips (8 kHz samples, already trimmed and normalised) by prompt name and language;
/// each takes the place of the flow's own file for that prompt.
pub type Uploaded = HashMap<(String, Lang), Arc<Prompt>>;

/// Loads every prompt and number clip a campaign's flow can play, uploaded clips in place of
/// the campaign's own files; returns the audio and the flow version (a hash of the flow and of
/// all its audio: it changes with every clip that changes).
/// `numbers_dir`, when set, holds a campaign's own number clips as `{lang}/{token}.wav`
/// (the file names of `audio/numbers/`); a clip it lacks comes from the built-in set.
pub fn load_campaign(
    spec: &FlowSpec,
    base: &Path,
    numbers_dir: Option<&Path>,
    uploaded: &Uploaded,
    cache: &mut Cache,
) -> Result<(driver::CampaignAudio, String)> {
    let mut audio = driver::CampaignAudio::default();
    let mut version = Context::new(&SHA256);
    version.update(format!("{spec:?}").as_bytes());
    for (name, lang, source) in spec.required_prompts() {
        let upload = match source {
            PromptSource::File(_) => uploaded.get(&(name.to_string(), lang)).cloned(),
            _ => None,
        };
        let prompt = match (upload, source) {
            (Some(prompt), _) => {
                // Hash all of an uploaded clip: two uploads may share their first frame.
                let mut h = Context::new(&SHA256);
                for i in 0..prompt.frames() {
                    h.update(prompt.frame(media::Codec::Pcmu, i).unwrap_or_default());
                }
                version.update(h.finish().as_ref());
                prompt
            }
            (None, source) => match source {
                PromptSource::Beep => cache.get_or_load("beep".into(), || {
                    Ok(media::audio::tone(BEEP_HZ, BEEP_LENGTH, BEEP_AMPLITUDE))
                })?,
                PromptSource::System => {
                    let path = format!("prompts/{}/{name}.wav", lang.code());
                    cache.get_or_load(path.clone(), || decode_builtin(&path))?
                }
                PromptSource::File(file) => match file.strip_prefix(BUILTIN) {
                    Some(path) => cache.get_or_load(path.to_string(), || decode_builtin(path))?,
                    None => {
                        let full = base.join(file);
                        let key = full.display().to_string();
                        cache.get_or_load(key, || {
                            media::import::import_file(&full)
                                .with_context(|| format!("prompt {name} ({lang})"))
                        })?
                    }
                },
            },
        };
        version.update(name.as_bytes());
        version.update(lang.code().as_bytes());
        version.update(prompt.frame(media::Codec::Pcmu, 0).unwrap_or_default());
        version.update(&prompt.frames().to_le_bytes());
        audio.insert_prompt(name, lang, prompt);
    }
    for &lang in spec.languages() {
        for (clip, _) in flow::say::inventory(lang) {
            let own = numbers_dir
                .map(|dir| {
                    base.join(dir)
                        .join(lang.code())
                        .join(format!("{}.wav", clip.token))
                })
                .filter(|p| p.is_file());
            let prompt = match own {
                Some(file) => {
                    let key = file.display().to_string();
                    cache.get_or_load(key, || {
                        media::import::import_file(&file)
                            .with_context(|| format!("number clip {}", file.display()))
                    })?
                }
                None => {
                    let path = format!("numbers/{}/{}.wav", lang.code(), clip.token);
                    cache.get_or_load(path.clone(), || decode_builtin(&path))?
                }
            };
            version.update(clip.token.as_bytes());
            version.update(&prompt.frames().to_le_bytes());
            audio.insert_number(lang, clip.token, prompt);
        }
    }
    let missing = audio.missing(spec);
    if !missing.is_empty() {
        return Err(anyhow!("prompts not loaded: {}", missing.join(", ")));
    }
    let digest = version.finish();
    let hex: String = digest
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((audio, hex))
}

/// Largest upload accepted for conversion, in bytes (a long story as a high-rate WAV).
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;
/// Longest clip after trimming.
pub const MAX_CLIP_DURATION: Duration = Duration::from_secs(10 * 60);

/// An upload converted to what callers hear.
pub struct Converted {
    /// 8 kHz mono, trimmed and loudness-normalised, as a 16-bit WAV file (for the store and
    /// for playback).
    pub wav: Vec<u8>,
    pub duration: Duration,
}

/// Converts uploaded audio (WAV, MP3, OGG/Vorbis or FLAC, told apart by content) as prompt
/// files are imported: decoded to 8 kHz mono, trimmed, loudness-normalised. The error says
/// what is wrong in words for the person who uploaded it.
pub fn convert_upload(data: &[u8]) -> Result<Converted, String> {
    if data.is_empty() {
        return Err("the file is empty".into());
    }
    if data.len() > MAX_UPLOAD_BYTES {
        return Err(format!(
            "the file is too big ({} MiB; at most {} MiB)",
            data.len() / (1024 * 1024),
            MAX_UPLOAD_BYTES / (1024 * 1024)
        ));
    }
    let decoded = media::audio::decode_bytes(data, None).map_err(|e| match e {
        media::audio::AudioError::Decode(_)
        | media::audio::AudioError::NoAudioTrack
        | media::audio::AudioError::UnknownSampleRate => {
            "this is not an audio file belteken can read (use WAV, MP3, OGG or FLAC)".to_string()
        }
        media::audio::AudioError::TooLong { max } => {
            format!(
                "the audio is too long (at most {} minutes)",
                max.as_secs() / 60
            )
        }
        other => format!("cannot convert the audio: {other}"),
    })?;
    let samples = media::import::prepare(&decoded).map_err(|e| match e {
        media::audio::AudioError::Silent { .. } => "the audio is silent".to_string(),
        other => format!("cannot convert the audio: {other}"),
    })?;
    let duration =
        Duration::from_millis(samples.len() as u64 * 1000 / u64::from(media::SAMPLE_RATE_HZ));
    if duration > MAX_CLIP_DURATION {
        return Err(format!(
            "the audio is too long ({} s; at most {} minutes)",
            duration.as_secs(),
            MAX_CLIP_DURATION.as_secs() / 60
        ));
    }
    let wav = media::wav::pcm16_mono(&samples, media::SAMPLE_RATE_HZ);
    Ok(Converted { wav, duration })
}

/// A stored clip (an 8 kHz WAV written by [`convert_upload`]) as a prompt.
pub fn prompt_from_wav(wav: &[u8]) -> Result<Arc<Prompt>> {
    let samples = media::audio::decode_wav_bytes(wav).context("stored clip")?;
    Ok(Arc::new(Prompt::from_samples(&samples)))
}

/// The prompts of a flow that an upload may replace: the campaign's own (file) prompts, by
/// name and language, in the flow's order.
pub fn replaceable_prompts(spec: &FlowSpec) -> Vec<(String, Lang)> {
    spec.required_prompts()
        .into_iter()
        .filter(|(_, _, src)| matches!(src, PromptSource::File(_)))
        .map(|(name, lang, _)| (name.to_string(), lang))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_system_and_number_audio_is_built_in() {
        for path in [
            "demo/en/greeting.wav",
            "demo/nl/story.wav",
            "prompts/fr/already_signed.wav",
            "numbers/nl/21.wav",
        ] {
            let samples = decode_builtin(path).expect(path);
            assert!(samples.len() > 800, "{path}: {} samples", samples.len());
        }
        assert!(embedded("nope.wav").is_none());
    }

    #[test]
    fn the_demo_campaign_loads_with_a_stable_version() {
        let settings = crate::config::defaults();
        let c = &settings.campaigns[0];
        let mut cache = Cache::default();
        let (_, v1) =
            load_campaign(&c.flow, &c.base, None, &Uploaded::new(), &mut cache).expect("loads");
        let (_, v2) = load_campaign(
            &c.flow,
            &c.base,
            None,
            &Uploaded::new(),
            &mut Cache::default(),
        )
        .expect("loads");
        assert_eq!(v1, v2);
        assert_eq!(v1.len(), 16);
        // Signatures record the version they were made under: the same flow and audio keep
        // giving the same one (SHA-256 of the flow and its audio, first 8 bytes in hex). It
        // changes only when the demo flow or its audio does.
        assert_eq!(v1, "fe317ae789383b00");

        // A campaign's own clip replaces the built-in one, and changes the flow version.
        let dir = std::env::temp_dir().join(format!("belteken-numbers-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("en")).expect("temp dir");
        let tone = media::audio::tone(440.0, Duration::from_millis(2500), 8000);
        std::fs::write(dir.join("en/7.wav"), media::wav::pcm16_mono(&tone, 8000)).expect("write");
        let (audio, v3) = load_campaign(
            &c.flow,
            &c.base,
            Some(&dir),
            &Uploaded::new(),
            &mut Cache::default(),
        )
        .expect("loads");
        let _ = std::fs::remove_dir_all(&dir);
        assert_ne!(v1, v3);
        let seven = audio
            .resolve(&flow::engine::PromptRef::Number(flow::say::NumberClip {
                lang: flow::Lang::En,
                token: "7",
            }))
            .expect("clip 7");
        // The imported tone is trimmed but about 2.5 s long, unlike the spoken "seven".
        assert!(
            seven.duration() > Duration::from_secs(2),
            "{:?}",
            seven.duration()
        );
    }

    #[test]
    fn uploads_are_converted_or_refused_in_plain_words() {
        let tone = media::audio::tone(440.0, Duration::from_millis(2000), 3000);
        let mut padded = vec![0i16; 4000];
        padded.extend(&tone);
        padded.extend(vec![0i16; 4000]);
        let wav = media::wav::pcm16_mono(&padded, 8000);
        let c = convert_upload(&wav).expect("converts");
        // Trimmed: the half seconds of silence around the tone are gone.
        assert!(
            (1900..=2200).contains(&c.duration.as_millis()),
            "{:?}",
            c.duration
        );
        let samples = media::audio::decode_wav_bytes(&c.wav).expect("wav");
        assert_eq!(samples.len() as u128, c.duration.as_millis() * 8);
        // Normalised: louder than it came.
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!(peak > 3000, "{peak}");

        let err = convert_upload(b"<html>not audio</html>")
            .err()
            .expect("refused");
        assert!(err.contains("not an audio file"), "{err}");
        let err = convert_upload(&[]).err().expect("refused");
        assert!(err.contains("empty"), "{err}");
        let silent = media::wav::pcm16_mono(&[0i16; 16000], 8000);
        let err = convert_upload(&silent).err().expect("refused");
        assert!(err.contains("silent"), "{err}");
        let huge = vec![0u8; MAX_UPLOAD_BYTES + 1];
        let err = convert_upload(&huge).err().expect("refused");
        assert!(err.contains("too big"), "{err}");
    }

    #[test]
    fn an_uploaded_clip_replaces_the_file_and_changes_the_flow_version() {
        let settings = crate::config::defaults();
        let c = &settings.campaigns[0];
        let replaceable = replaceable_prompts(&c.flow);
        assert!(
            replaceable.contains(&("story".to_string(), Lang::En)),
            "{replaceable:?}"
        );
        let mut cache = Cache::default();
        let (_, v1) =
            load_campaign(&c.flow, &c.base, None, &Uploaded::new(), &mut cache).expect("loads");
        let tone = media::audio::tone(523.0, Duration::from_millis(3000), 8000);
        let converted = convert_upload(&media::wav::pcm16_mono(&tone, 8000)).expect("converts");
        let prompt = prompt_from_wav(&converted.wav).expect("prompt");
        let mut uploaded = Uploaded::new();
        uploaded.insert(("story".into(), Lang::En), prompt.clone());
        let (audio, v2) =
            load_campaign(&c.flow, &c.base, None, &uploaded, &mut cache).expect("loads");
        assert_ne!(v1, v2);
        // An uploaded clip enters the version as the SHA-256 of all its frames.
        assert_eq!(v2, "7c1975d16bab0fcb");
        let story = audio
            .resolve(&flow::engine::PromptRef::Prompt {
                name: "story".into(),
                lang: Lang::En,
            })
            .expect("story");
        assert!(Arc::ptr_eq(&story, &prompt));
        // Another clip of the same length gives yet another version; the same clip, the same.
        let other = media::audio::tone(700.0, Duration::from_millis(3000), 8000);
        let other = convert_upload(&media::wav::pcm16_mono(&other, 8000)).expect("converts");
        uploaded.insert(
            ("story".into(), Lang::En),
            prompt_from_wav(&other.wav).expect("prompt"),
        );
        let (_, v3) = load_campaign(&c.flow, &c.base, None, &uploaded, &mut cache).expect("loads");
        assert_ne!(v3, v2);
        assert_ne!(v3, v1);
        uploaded.insert(("story".into(), Lang::En), prompt);
        let (_, v4) = load_campaign(&c.flow, &c.base, None, &uploaded, &mut cache).expect("loads");
        assert_eq!(v4, v2);
    }
}
