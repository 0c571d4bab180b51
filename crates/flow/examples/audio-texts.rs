//! Prints every shared prompt and number clip as `kind<TAB>lang<TAB>name<TAB>text` lines, for the audio generator scripts.

use flow::{prompts, say, Lang};

fn main() {
    for lang in Lang::ALL {
        for p in prompts::SYSTEM {
            println!("prompt\t{lang}\t{}\t{}", p.name, p.text(lang));
        }
        for (clip, words) in say::inventory(lang) {
            println!("number\t{lang}\t{}\t{words}", clip.token);
        }
    }
}
