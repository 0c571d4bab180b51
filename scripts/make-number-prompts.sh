#!/usr/bin/env bash
# Regenerates the shared prompts (audio/prompts/{nl,fr,en}/NAME.wav) and the number clips
# (audio/numbers/{nl,fr,en}/TOKEN.wav) with espeak-ng, as 8 kHz mono 16-bit WAV with the
# silence at both ends trimmed. The texts come from the flow crate (crates/flow/src/prompts.rs
# and crates/flow/src/say.rs) through `cargo run -p flow --example audio-texts`, so the clips
# always match what the engine asks for. Needs cargo, espeak-ng and sox. Output differs
# slightly between espeak-ng versions; commit the result.
#   scripts/make-number-prompts.sh            # both sets
#   scripts/make-number-prompts.sh numbers    # only the number clips
#   scripts/make-number-prompts.sh prompts    # only the shared prompts
#   ENCODING=u-law scripts/make-number-prompts.sh   # 8-bit G.711 µ-law WAV: half the size
#                                                   # (4.7 MB -> 2.4 MB), no audible loss on a G.711 line
set -euo pipefail
cd "$(dirname "$0")/.."
only="${1:-}"
case "${ENCODING:-signed-integer}" in
    signed-integer) bits=16; encoding=signed-integer ;;
    u-law) bits=8; encoding=u-law ;;
    *) echo "ENCODING must be signed-integer or u-law" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

voice() {
    case "$1" in
        nl) echo nl ;;
        fr) echo fr-be ;;
        en) echo en-gb ;;
    esac
}

# speak VOICE SPEED TEXT OUT.wav PAD_SECONDS
speak() {
    espeak-ng -v "$1" -s "$2" -w "$tmp/raw.wav" -- "$3"
    # Trim the silence at both ends, leave a little air after, normalise to -3 dBFS peak,
    # then 8 kHz mono (signed 16-bit by default).
    sox "$tmp/raw.wav" -r 8000 -c 1 -b "$bits" -e "$encoding" "$4" \
        silence -l 1 0.01 0.5% -1 0.2 0.5% reverse silence 1 0.01 0.5% reverse pad 0 "$5" gain -n -3
}

cargo run -q -p flow --example audio-texts > "$tmp/texts.tsv"

while IFS=$'\t' read -r kind lang name text; do
    [ -n "$only" ] && [ "${only%s}" != "$kind" ] && continue
    case "$kind" in
        number)
            mkdir -p "audio/numbers/$lang"
            # Number words are said a little faster and with no air after: they are
            # played back to back.
            speak "$(voice "$lang")" 180 "$text" "audio/numbers/$lang/$name.wav" 0.02
            ;;
        prompt)
            mkdir -p "audio/prompts/$lang"
            out="audio/prompts/$lang/$name.wav"
            if [ "$name" = language_menu ]; then
                # Each choice in its own language and voice.
                speak nl 175 "Voor Nederlands, druk 1." "$tmp/m1.wav" 0.3
                speak fr-be 175 "Pour le français, appuyez sur 2." "$tmp/m2.wav" 0.3
                speak en-gb 175 "For English, press 3." "$tmp/m3.wav" 0.1
                sox "$tmp/m1.wav" "$tmp/m2.wav" "$tmp/m3.wav" "$out"
            else
                speak "$(voice "$lang")" 180 "$text" "$out" 0.15
            fi
            ;;
    esac
done < "$tmp/texts.tsv"

for d in audio/numbers audio/prompts; do
    [ -d "$d" ] && printf '%-16s %4d files %8d bytes\n' "$d" "$(find "$d" -name '*.wav' | wc -l)" \
        "$(du -cb "$d"/*/*.wav | tail -1 | cut -f1)"
done
