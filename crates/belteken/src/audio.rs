//! Loads a campaign's audio: its own files, the built-in demo, system prompts and number
//! clips, each decoded and pre-encoded once and shared by every call.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use flow::spec::{FlowSpec, PromptSource};
use media::audio::Prompt;
use sha2::{Digest, Sha256};

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

/// Loads every prompt and number clip a campaign's flow can play; returns the audio and
/// the flow version (a hash of the flow and of all its audio).
/// `numbers_dir`, when set, holds a campaign's own number clips as `{lang}/{token}.wav`
/// (the file names of `audio/numbers/`); a clip it lacks comes from the built-in set.
pub fn load_campaign(
    spec: &FlowSpec,
    base: &Path,
    numbers_dir: Option<&Path>,
    cache: &mut Cache,
) -> Result<(sip::CampaignAudio, String)> {
    let mut audio = sip::CampaignAudio::default();
    let mut version = Sha256::new();
    version.update(format!("{spec:?}").as_bytes());
    for (name, lang, source) in spec.required_prompts() {
        let prompt = match source {
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
        };
        version.update(name.as_bytes());
        version.update(lang.code().as_bytes());
        version.update(prompt.frame(media::Codec::Pcmu, 0).unwrap_or_default());
        version.update(prompt.frames().to_le_bytes());
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
            version.update(prompt.frames().to_le_bytes());
            audio.insert_number(lang, clip.token, prompt);
        }
    }
    let missing = audio.missing(spec);
    if !missing.is_empty() {
        return Err(anyhow!("prompts not loaded: {}", missing.join(", ")));
    }
    let digest = version.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok((audio, hex))
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
        let (_, v1) = load_campaign(&c.flow, &c.base, None, &mut cache).expect("loads");
        let (_, v2) = load_campaign(&c.flow, &c.base, None, &mut Cache::default()).expect("loads");
        assert_eq!(v1, v2);
        assert_eq!(v1.len(), 16);

        // A campaign's own clip replaces the built-in one, and changes the flow version.
        let dir = std::env::temp_dir().join(format!("belteken-numbers-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("en")).expect("temp dir");
        let tone = media::audio::tone(440.0, Duration::from_millis(2500), 8000);
        std::fs::write(dir.join("en/7.wav"), media::wav::pcm16_mono(&tone, 8000)).expect("write");
        let (audio, v3) =
            load_campaign(&c.flow, &c.base, Some(&dir), &mut Cache::default()).expect("loads");
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
}
