//! `belteken campaign show|set|upload|reset`: campaign editing from the command line, on the
//! store, as the console does it (same checks, same audit entries). A running server picks a
//! change up within seconds (see `campaign_admin::follow`).

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};
use web::CampaignAdmin as _;

use crate::campaign_admin::Editor;
use crate::config::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum CampaignCommand {
    /// Show a campaign's texts, number, goal, dates and clips as in effect now.
    Show {
        #[command(flatten)]
        common: crate::Common,
        /// The campaign's slug (default: the only campaign).
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Change a campaign's texts, number, goal or dates (what is not given stays).
    Set {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        campaign: Option<String>,
        /// The language of --title and --transcript-file (default: the campaign's main one).
        #[arg(long)]
        lang: Option<String>,
        #[arg(long)]
        title: Option<String>,
        /// A UTF-8 text file with the transcript; "-" reads standard input.
        #[arg(long, value_name = "FILE")]
        transcript_file: Option<PathBuf>,
        /// The display number, e.g. "+32 2 000 00 00"; "" for none.
        #[arg(long)]
        number: Option<String>,
        /// The number of signatures aimed for; 0 for none.
        #[arg(long)]
        goal: Option<u64>,
        /// When the line opens (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC); "" for always.
        #[arg(long)]
        opens: Option<String>,
        /// When the line closes (same format); "" for never.
        #[arg(long)]
        closes: Option<String>,
    },
    /// Convert an audio file (WAV, MP3, OGG or FLAC) and put it in place of one of the
    /// campaign's clips; the next call hears it under a new flow version.
    Upload {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        campaign: Option<String>,
        /// The clip's name in the flow, e.g. "story" (see `campaign show`).
        #[arg(long)]
        clip: String,
        #[arg(long)]
        lang: String,
        /// The audio file.
        file: PathBuf,
    },
    /// Drop every edit and uploaded clip of a campaign: the configuration file's version is
    /// back.
    Reset {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        campaign: Option<String>,
    },
}

impl CampaignCommand {
    pub fn common(&self) -> &crate::Common {
        match self {
            CampaignCommand::Show { common, .. }
            | CampaignCommand::Set { common, .. }
            | CampaignCommand::Upload { common, .. }
            | CampaignCommand::Reset { common, .. } => common,
        }
    }
}

/// Who made an edit from the command line, for the audit log.
fn actor() -> String {
    let user = std::env::var("USER").unwrap_or_default();
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(40)
        .collect();
    if user.is_empty() {
        "command line".into()
    } else {
        format!("command line ({user})")
    }
}

fn pick(settings: &Settings, campaign: Option<String>) -> Result<String> {
    match campaign {
        Some(slug) => {
            if settings.campaigns.iter().any(|c| c.slug == slug) {
                Ok(slug)
            } else {
                let known: Vec<&str> = settings.campaigns.iter().map(|c| c.slug.as_str()).collect();
                bail!("unknown campaign {slug:?} (known: {})", known.join(", "))
            }
        }
        None => match settings.campaigns.as_slice() {
            [only] => Ok(only.slug.clone()),
            _ => bail!("several campaigns: say which with --campaign"),
        },
    }
}

/// Reads at most `limit` bytes (one more to notice a bigger file).
fn read_limited(path: &PathBuf, limit: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(bytes)
}

pub fn run(cmd: CampaignCommand, settings: &Settings, store: Arc<dyn store::Store>) -> Result<()> {
    let editor = Editor::new(settings.campaigns.clone(), store, None);
    match cmd {
        CampaignCommand::Show { campaign, .. } => {
            let slug = pick(settings, campaign)?;
            let form = editor
                .edit_form(&slug)
                .ok_or_else(|| anyhow!("cannot read campaign {slug}"))?;
            let (flow_version, edit_version) = editor.versions(&slug)?;
            println!("campaign {slug}");
            println!("  flow version: {flow_version}");
            println!(
                "  edit version: {edit_version}{}",
                if edit_version == 0 {
                    " (as in the file)"
                } else {
                    ""
                }
            );
            println!("  number: {}", form.number.as_deref().unwrap_or("(none)"));
            println!(
                "  goal: {}",
                form.goal.map_or("(none)".into(), |g| g.to_string())
            );
            println!("  opens: {}", form.opens.as_deref().unwrap_or("(always)"));
            println!("  closes: {}", form.closes.as_deref().unwrap_or("(never)"));
            for t in &form.texts {
                println!("  [{}] title: {}", t.language, t.title);
                let words = t.transcript.split_whitespace().count();
                println!("  [{}] transcript: {words} words", t.language);
            }
            for clip in editor.clips(&slug) {
                println!(
                    "  clip {} ({}): {:.1} s{}",
                    clip.name,
                    clip.language,
                    clip.duration_ms as f64 / 1000.0,
                    if clip.uploaded {
                        ", uploaded"
                    } else {
                        ", from the file"
                    }
                );
            }
        }
        CampaignCommand::Set {
            campaign,
            lang,
            title,
            transcript_file,
            number,
            goal,
            opens,
            closes,
            ..
        } => {
            let slug = pick(settings, campaign)?;
            let mut form = editor
                .edit_form(&slug)
                .ok_or_else(|| anyhow!("cannot read campaign {slug}"))?;
            let transcript = match &transcript_file {
                None => None,
                Some(path) => {
                    let bytes = read_limited(path, crate::campaign_admin::MAX_TRANSCRIPT_BYTES)?;
                    Some(
                        String::from_utf8(bytes)
                            .map_err(|_| anyhow!("the transcript file is not UTF-8 text"))?,
                    )
                }
            };
            if title.is_some() || transcript.is_some() {
                let language = match lang {
                    Some(l) => l.trim().to_ascii_lowercase(),
                    None => form
                        .texts
                        .first()
                        .map(|t| t.language.clone())
                        .unwrap_or_default(),
                };
                let i = match form.texts.iter().position(|t| t.language == language) {
                    Some(i) => i,
                    None => {
                        // A new language needs both.
                        let (Some(t), Some(tr)) = (&title, &transcript) else {
                            bail!("{language} is a new language for this campaign: give both --title and --transcript-file");
                        };
                        form.texts.push(web::Translation {
                            language: language.clone(),
                            title: t.clone(),
                            transcript: tr.clone(),
                        });
                        form.texts.len() - 1
                    }
                };
                if let Some(t) = title {
                    form.texts[i].title = t;
                }
                if let Some(tr) = transcript {
                    form.texts[i].transcript = tr;
                }
            } else if lang.is_some() {
                bail!("--lang goes with --title or --transcript-file");
            }
            if let Some(n) = number {
                form.number = (!n.trim().is_empty()).then_some(n);
            }
            if let Some(g) = goal {
                form.goal = (g > 0).then_some(g);
            }
            if let Some(o) = opens {
                form.opens = (!o.trim().is_empty()).then_some(o);
            }
            if let Some(c) = closes {
                form.closes = (!c.trim().is_empty()).then_some(c);
            }
            editor
                .apply_edit(&slug, &form, &actor())
                .map_err(|e| anyhow!(e))?;
            let (flow_version, edit_version) = editor.versions(&slug)?;
            println!("campaign {slug} changed (edit version {edit_version}, flow version {flow_version})");
        }
        CampaignCommand::Upload {
            campaign,
            clip,
            lang,
            file,
            ..
        } => {
            let slug = pick(settings, campaign)?;
            let data = read_limited(&file, crate::audio::MAX_UPLOAD_BYTES)?;
            let info = editor
                .upload_clip(&slug, &clip, &lang, &data, &actor())
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            println!(
                "clip {} ({}) of {slug} replaced: {:.1} s; flow version {}",
                info.name,
                info.language,
                info.duration_ms as f64 / 1000.0,
                info.flow_version
            );
        }
        CampaignCommand::Reset { campaign, .. } => {
            let slug = pick(settings, campaign)?;
            editor.reset(&slug, &actor())?;
            let (flow_version, _) = editor.versions(&slug)?;
            println!(
                "campaign {slug} is back to the configuration file (flow version {flow_version})"
            );
        }
    }
    Ok(())
}
