//! Importing prompts in every supported format from tiny committed fixtures (see fixtures/README.md).

use std::path::{Path, PathBuf};

use media::audio::{decode_file, AudioError};
use media::import::{analyze, import_file, TARGET_LOUDNESS_DBFS};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Each fixture is 0.3 s silence, 0.6 s of 440 Hz at -15 dBFS RMS, 0.3 s silence.
#[test]
fn mp3_ogg_flac_decode_to_8k_mono_and_import() {
    for name in [
        "tone-16k-mono.flac",
        "tone-48k-stereo.ogg",
        "tone-44k1-stereo.mp3",
    ] {
        let path = fixture(name);
        let decoded = decode_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let stats = analyze(&decoded);
        let secs = stats.duration.as_secs_f64();
        assert!((1.18..=1.26).contains(&secs), "{name}: {secs} s");
        assert!(
            (stats.loudness_dbfs + 15.05).abs() < 0.7,
            "{name}: {stats:?}"
        );
        // The tone starts at 0.3 s; an MP3 without a LAME header keeps its encoder delay
        // (1105 samples at 44.1 kHz, 25 ms), which the trimming removes anyway.
        let onset = decoded.iter().position(|s| s.abs() > 500).unwrap_or(0);
        assert!(
            (2300..=2650).contains(&onset),
            "{name}: onset at sample {onset}"
        );

        let prompt = import_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let stats = analyze(&prompt);
        let ms = stats.duration.as_millis();
        assert!((590..=700).contains(&ms), "{name}: trimmed to {ms} ms");
        assert!(
            (stats.loudness_dbfs - TARGET_LOUDNESS_DBFS).abs() < 0.5,
            "{name}: {stats:?}"
        );
        assert!(stats.peak_dbfs < -1.0 + 0.01);
    }
}

#[test]
fn errors_name_the_file_and_the_reason() {
    let err = import_file(Path::new("/nonexistent/belteken/story.mp3")).expect_err("missing");
    let text = err.to_string();
    assert!(text.contains("/nonexistent/belteken/story.mp3"), "{text}");
    assert!(matches!(err, AudioError::Read { .. }));

    let dir = std::env::temp_dir().join(format!("belteken-import-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Garbage in every extension, and a truncated real file: errors, never panics.
    for ext in ["mp3", "ogg", "flac", "wav"] {
        let bad = dir.join(format!("bad.{ext}"));
        std::fs::write(&bad, b"this is not audio at all, not even a little").expect("write");
        let err = import_file(&bad).expect_err("garbage");
        assert!(err.to_string().contains(&format!("bad.{ext}")), "{err}");
    }
    for name in [
        "tone-16k-mono.flac",
        "tone-48k-stereo.ogg",
        "tone-44k1-stereo.mp3",
    ] {
        let bytes = std::fs::read(fixture(name)).expect("fixture");
        for cut in [0, 10, 100, bytes.len() / 3, bytes.len() - 7] {
            let _ = media::audio::decode_bytes(&bytes[..cut], None);
        }
        // Flipped bytes in the middle.
        let mut bent = bytes.clone();
        for i in (bytes.len() / 4..bytes.len() / 2).step_by(97) {
            bent[i] ^= 0x5A;
        }
        let _ = media::audio::decode_bytes(&bent, None);
    }
    // Silence is refused by name.
    let silent = dir.join("silent.wav");
    std::fs::write(&silent, media::wav::pcm16_mono(&[0; 8000], 8000)).expect("write");
    let err = import_file(&silent).expect_err("silent");
    assert!(
        err.to_string().contains("silent.wav") && err.to_string().contains("silent"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// A FLAC file of 8 KB whose Vorbis comment states a length of gigabytes: refused before the
/// decoder allocates it (found by fuzzing; the decoder would ask for 2.4 GB).
#[test]
fn a_comment_length_past_its_block_is_refused_before_decoding() {
    let path = fixture("lying-comment.flac");
    let bytes = std::fs::read(&path).expect("fixture");
    // The fuzzer's first byte (its choice of extension) stays: the probe skips leading junk.
    assert!(matches!(
        media::audio::decode_bytes(&bytes, Some("flac")),
        Err(AudioError::BadHeader(_))
    ));
}
