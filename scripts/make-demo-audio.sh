#!/usr/bin/env bash
# Regenerates the built-in demo prompts in audio/demo/{en,nl}/ from the texts below:
# espeak-ng speaks each text, sox trims the edges and converts to 8 kHz mono 16-bit WAV
# (what the binary embeds with include_bytes!). transcript.txt holds greeting + story.
# Needs espeak-ng and sox. Output differs slightly between espeak-ng versions; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."

EN_GREETING="Hello, and welcome to this demo petition line for the online safety of young people."
EN_STORY="One photo, shared without consent, can destroy a young life. It spreads from phone to phone, and it never really goes away. The law should protect young people better, and make sure such images are taken down fast. After the beep, say your first and last name to sign."
EN_THANKS="Your name has been recorded. Thank you for signing. Goodbye."

NL_GREETING="Hallo, en welkom bij deze demo petitielijn voor de online veiligheid van jongeren."
NL_STORY="Eén foto, gedeeld zonder toestemming, kan een jong leven kapotmaken. Hij gaat van telefoon naar telefoon, en verdwijnt nooit echt. De wet moet jongeren beter beschermen, en zulke beelden snel laten verwijderen. Zeg na de piep je voornaam en achternaam om te tekenen."
NL_THANKS="Je naam is opgenomen. Bedankt om te tekenen. Tot ziens."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# speak VOICE TEXT OUT.wav
speak() {
    espeak-ng -v "$1" -s 175 -w "$tmp/raw.wav" "$2"
    # trim leading/trailing silence, leave 0.2 s of air at the end, then 8 kHz mono s16
    sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$3" \
        silence -l 1 0.02 0.5% -1 0.35 0.5% reverse silence 1 0.02 0.5% reverse pad 0 0.2 gain -n -3
}

for lang in en nl; do
    dir="audio/demo/$lang"
    mkdir -p "$dir"
    if [ "$lang" = en ]; then
        voice=en-gb; g=$EN_GREETING; s=$EN_STORY; t=$EN_THANKS
    else
        voice=nl; g=$NL_GREETING; s=$NL_STORY; t=$NL_THANKS
    fi
    speak "$voice" "$g" "$dir/greeting.wav"
    speak "$voice" "$s" "$dir/story.wav"
    speak "$voice" "$t" "$dir/thanks.wav"
    printf '%s\n\n%s\n' "$g" "$s" > "$dir/transcript.txt"
done

for f in audio/demo/*/*.wav; do
    printf '%-28s %6.2f s %7d bytes\n' "$f" "$(soxi -D "$f")" "$(stat -c %s "$f")"
done
du -cb audio/demo/*/*.wav | tail -1
