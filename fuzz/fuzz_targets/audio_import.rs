//! An audio file from the operator or the console's upload, or a recording fetched from a
//! provider: decode (WAV, MP3, OGG/Vorbis, FLAC; the first byte picks the name's extension),
//! then trim and normalise into a prompt.
#![no_main]

use libfuzzer_sys::fuzz_target;

const HINTS: &[Option<&str>] = &[None, Some("wav"), Some("mp3"), Some("ogg"), Some("flac")];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let hint = HINTS[usize::from(pick) % HINTS.len()];
    let Ok(samples) = media::audio::decode_bytes(bytes, hint) else {
        return;
    };
    let _ = media::import::analyze(&samples);
    if let Ok(prompt) = media::import::prepare(&samples) {
        assert!(prompt.len() <= samples.len());
    }
});
