//! The shared system prompts every campaign can use by name (shipped in `audio/prompts/{lang}/`), and the beep.
//!
//! A flow names prompts; a name resolves first to the campaign's own files
//! (`[campaign.flow.prompts]`), then to one of these. Their texts live here so the generator
//! script (`scripts/make-prompts.sh`) and any transcript shown on the web say the same thing.

use crate::Lang;

/// The beep before a recording: a tone the channel makes, not a file.
pub const BEEP: &str = "beep";

/// One shared prompt: its name (the file stem) and its text in nl, fr and en.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemPrompt {
    pub name: &'static str,
    pub nl: &'static str,
    pub fr: &'static str,
    pub en: &'static str,
}

impl SystemPrompt {
    /// The text in `lang`.
    pub fn text(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Nl => self.nl,
            Lang::Fr => self.fr,
            Lang::En => self.en,
        }
    }

    /// The file's path relative to the repository's `audio/prompts/` directory.
    pub fn relative_path(&self, lang: Lang) -> String {
        format!("{}/{}.wav", lang.code(), self.name)
    }
}

/// The language menu says each choice in its own language, so it is the same in every set.
const LANGUAGE_MENU: &str =
    "Voor Nederlands, druk 1. Pour le français, appuyez sur 2. For English, press 3.";

/// Every shared prompt.
pub const SYSTEM: &[SystemPrompt] = &[
    SystemPrompt {
        name: "already_signed",
        nl: "Je hebt deze petitie al getekend. Bedankt voor je steun.",
        fr: "Vous avez déjà signé cette pétition. Merci pour votre soutien.",
        en: "You have already signed this petition. Thank you for your support.",
    },
    SystemPrompt {
        name: "press_1_story",
        nl: "Om het verhaal opnieuw te horen, druk 1.",
        fr: "Pour réécouter l'histoire, appuyez sur 1.",
        en: "To hear the story again, press 1.",
    },
    SystemPrompt {
        name: "press_9_withdraw",
        nl: "Om je handtekening in te trekken, druk 9.",
        fr: "Pour retirer votre signature, appuyez sur 9.",
        en: "To withdraw your signature, press 9.",
    },
    SystemPrompt {
        name: "withdraw_confirm",
        nl: "Je handtekening en je opname worden gewist. Druk 1 om te bevestigen.",
        fr: "Votre signature et votre enregistrement seront supprimés. Pour confirmer, appuyez sur 1.",
        en: "Your signature and your recording will be deleted. To confirm, press 1.",
    },
    SystemPrompt {
        name: "withdrawn",
        nl: "Je handtekening is ingetrokken en je opname is gewist.",
        fr: "Votre signature a été retirée et votre enregistrement supprimé.",
        en: "Your signature has been withdrawn and your recording deleted.",
    },
    SystemPrompt {
        name: "withdraw_cancelled",
        nl: "Je handtekening blijft staan.",
        fr: "Votre signature est conservée.",
        en: "Your signature stays.",
    },
    SystemPrompt {
        name: "keep_or_rerecord",
        nl: "Druk 1 om deze opname te bewaren. Druk 2 om opnieuw op te nemen.",
        fr: "Pour garder cet enregistrement, appuyez sur 1. Pour recommencer, appuyez sur 2.",
        en: "To keep this recording, press 1. To record again, press 2.",
    },
    SystemPrompt {
        name: "language_menu",
        nl: LANGUAGE_MENU,
        fr: LANGUAGE_MENU,
        en: LANGUAGE_MENU,
    },
    SystemPrompt {
        name: "signature_number_is",
        nl: "Je handtekening heeft nummer",
        fr: "Votre numéro de signature est le",
        en: "Your signature number is",
    },
    SystemPrompt {
        name: "count_is",
        nl: "Het aantal handtekeningen tot nu toe is",
        fr: "Le nombre de signatures à ce jour est de",
        en: "The number of signatures so far is",
    },
    SystemPrompt {
        name: "helpline_offer",
        nl: "Om met iemand van onze hulplijn te spreken, druk 0.",
        fr: "Pour parler à quelqu'un de notre ligne d'aide, appuyez sur 0.",
        en: "To speak to someone from our helpline, press 0.",
    },
    SystemPrompt {
        name: "connecting",
        nl: "Een ogenblik, we verbinden je door.",
        fr: "Un instant, nous vous mettons en relation.",
        en: "Please hold, we are connecting you.",
    },
    SystemPrompt {
        name: "transfer_failed",
        nl: "Sorry, er kan nu niemand je oproep aannemen.",
        fr: "Désolé, personne ne peut prendre votre appel pour le moment.",
        en: "Sorry, nobody can take your call right now.",
    },
    SystemPrompt {
        name: "invalid_choice",
        nl: "Dat is geen geldige keuze.",
        fr: "Ce choix n'est pas valide.",
        en: "That is not a valid choice.",
    },
    SystemPrompt {
        name: "no_input",
        nl: "We hebben geen keuze gehoord.",
        fr: "Nous n'avons pas entendu votre choix.",
        en: "We did not hear your choice.",
    },
    SystemPrompt {
        name: "press_1_to_sign",
        nl: "Druk 1 om deze petitie te tekenen.",
        fr: "Pour signer cette pétition, appuyez sur 1.",
        en: "To sign this petition, press 1.",
    },
    SystemPrompt {
        name: "signed",
        nl: "Bedankt, je handtekening is geteld.",
        fr: "Merci, votre signature a été comptée.",
        en: "Thank you, your signature has been counted.",
    },
    SystemPrompt {
        name: "not_signed",
        nl: "We hebben je naam niet gehoord, dus je handtekening is niet geteld.",
        fr: "Nous n'avons pas entendu votre nom, votre signature n'a donc pas été comptée.",
        en: "We did not hear your name, so your signature was not counted.",
    },
    SystemPrompt {
        name: "campaign_closed",
        nl: "Deze petitie is nu niet open om te tekenen.",
        fr: "Cette pétition n'est pas ouverte aux signatures pour le moment.",
        en: "This petition is not open for signatures right now.",
    },
    SystemPrompt {
        name: "line_busy",
        nl: "Al onze lijnen zijn bezet. Bel later opnieuw.",
        fr: "Toutes nos lignes sont occupées. Merci de rappeler plus tard.",
        en: "All our lines are busy. Please call again later.",
    },
    SystemPrompt {
        name: "technical_problem",
        nl: "Sorry, door een technisch probleem is je handtekening niet bewaard. Bel later opnieuw.",
        fr: "Désolé, un problème technique a empêché d'enregistrer votre signature. Merci de rappeler plus tard.",
        en: "Sorry, a technical problem stopped us from saving your signature. Please call again later.",
    },
    SystemPrompt {
        name: "goodbye",
        nl: "Tot ziens.",
        fr: "Au revoir.",
        en: "Goodbye.",
    },
];

/// The shared prompt called `name`, if there is one.
pub fn system(name: &str) -> Option<&'static SystemPrompt> {
    SYSTEM.iter().find(|p| p.name == name)
}

/// Whether `name` needs no campaign file: a shared prompt or the beep.
pub fn is_builtin(name: &str) -> bool {
    name == BEEP || system(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_file_stems() {
        for (i, p) in SYSTEM.iter().enumerate() {
            assert!(
                p.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                p.name
            );
            assert!(SYSTEM[..i].iter().all(|q| q.name != p.name), "{}", p.name);
            assert_ne!(p.name, BEEP);
            for l in Lang::ALL {
                assert!(!p.text(l).is_empty());
            }
        }
        assert!(is_builtin("beep") && is_builtin("goodbye") && !is_builtin("story"));
    }
}
