//! The signature registry's commands: retention, erasure, export, bulk review (invalidation
//! and its reversal), the anomaly report and the audit log. Flattened into the binary's
//! command line; every command takes the usual `--config` / `--data-dir`.

use std::io::{BufRead, BufWriter};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{bail, Context as _, Result};

// Registry commands (see `run`). A plain comment: a doc comment here would replace the
// binary's own `about` once the enum is flattened into its command line.
#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Retention: delete what every campaign's policy says is due.
    Retention {
        #[command(subcommand)]
        cmd: RetentionCommand,
    },
    /// Single signatures.
    Signature {
        #[command(subcommand)]
        cmd: SignatureCommand,
    },
    /// Write a campaign's delivery ZIP: signatures.csv (no numbers), recordings/<id>.wav and
    /// summary.csv.
    Export {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        campaign: String,
        /// The ZIP file to write (mode 0600: it holds voices).
        #[arg(long, value_name = "FILE.zip")]
        out: PathBuf,
    },
    /// Set the state of every signature a filter selects (invalid by default), after showing
    /// how many it selects. Reversible with `revert`.
    Invalidate {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        campaign: String,
        /// A prefix block as the anomaly report shows it, e.g. "+32 4701".
        #[arg(long)]
        prefix_block: Option<String>,
        /// Caller country (ISO 3166, e.g. BE), or "none".
        #[arg(long)]
        country: Option<String>,
        /// network, from or withheld.
        #[arg(long)]
        trust: Option<String>,
        /// Signed at or after (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Signed before (same format).
        #[arg(long)]
        until: Option<String>,
        /// Why (kept in the audit log; numbers in it are removed).
        #[arg(long)]
        reason: String,
        /// The state to set: invalid, fraudulent, valid or pending.
        #[arg(long, default_value = "invalid")]
        mark: String,
        /// Only show how many signatures the filter selects.
        #[arg(long)]
        dry_run: bool,
    },
    /// Undo an `invalidate` by its action number.
    Revert {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        action: i64,
        #[arg(long)]
        reason: String,
    },
    /// Signatures per minute per prefix block and per country, with bursts flagged.
    Anomalies {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        campaign: String,
        /// Flag a prefix block with this many signatures in one minute.
        #[arg(long, default_value_t = store::AnomalyThresholds::default().per_prefix_block_per_minute)]
        per_block_per_minute: u64,
        /// Flag a country with this many signatures in one minute.
        #[arg(long, default_value_t = store::AnomalyThresholds::default().per_country_per_minute)]
        per_country_per_minute: u64,
        /// Flag this many withheld numbers in one minute.
        #[arg(long, default_value_t = store::AnomalyThresholds::default().withheld_per_minute)]
        withheld_per_minute: u64,
    },
    /// Print the audit log (erasures, reviews, retention); it never holds a number.
    Audit {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        campaign: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum RetentionCommand {
    /// Apply every campaign's retention policy now.
    Run {
        #[command(flatten)]
        common: crate::Common,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum SignatureCommand {
    /// Erase a caller's signature and recording, found through the hash of their number.
    Erase {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        campaign: String,
        /// The caller's number in any notation; "-" reads it from standard input (keeps it
        /// out of the shell history). Never printed.
        #[arg(long)]
        number: String,
        /// Region for numbers written without a country code.
        #[arg(long, default_value = "BE")]
        region: String,
    },
}

impl RegistryCommand {
    /// The `--config` / `--data-dir` options of the command.
    pub fn common(&self) -> &crate::Common {
        match self {
            RegistryCommand::Retention {
                cmd: RetentionCommand::Run { common },
            }
            | RegistryCommand::Signature {
                cmd: SignatureCommand::Erase { common, .. },
            }
            | RegistryCommand::Export { common, .. }
            | RegistryCommand::Invalidate { common, .. }
            | RegistryCommand::Revert { common, .. }
            | RegistryCommand::Anomalies { common, .. }
            | RegistryCommand::Audit { common, .. } => common,
        }
    }
}

fn parse_time(what: &str, s: &Option<String>) -> Result<Option<SystemTime>> {
    s.as_deref()
        .map(|s| {
            store::parse_rfc3339(s)
                .with_context(|| format!("--{what}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"))
        })
        .transpose()
}

/// Runs a registry command on an open store. The campaigns of the configuration must have been
/// ensured and configured (`Campaigns::configure_campaign`) first, so that retention sees their
/// policies.
///
/// `secret` loads the secret key (and checks it against the store); only commands that turn a
/// number into its key call it, so the others neither need the key nor make one.
pub fn run(
    cmd: RegistryCommand,
    store: &dyn store::Store,
    secret: &dyn Fn() -> Result<store::Secret>,
) -> Result<()> {
    match cmd {
        RegistryCommand::Retention {
            cmd: RetentionCommand::Run { .. },
        } => {
            let report = store.retention_run(SystemTime::now())?;
            if report.steps.is_empty() {
                println!("retention: nothing due");
            }
            for (slug, step, n) in report.steps {
                println!("{slug}: {}: {n} signatures", step.as_str());
            }
        }
        RegistryCommand::Signature {
            cmd:
                SignatureCommand::Erase {
                    campaign,
                    number,
                    region,
                    ..
                },
        } => {
            let number = if number == "-" {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the number from standard input")?;
                line
            } else {
                number
            };
            let secret = secret()?;
            let caller = store::identify_caller(Some(number.trim()), &region, &secret);
            drop(number);
            let Some(key) = caller.key() else {
                bail!("that is not a phone number this line would have recognised");
            };
            let mut erased = store.erase(&campaign, key)?;
            if let Some(old) = caller.previous_key() {
                erased |= store.erase(&campaign, old)?;
            }
            if erased {
                println!("{campaign}: the signature and its recording were erased");
            } else {
                println!("{campaign}: no signature from that number");
            }
        }
        RegistryCommand::Export { campaign, out, .. } => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let n = store::export(store, &campaign, BufWriter::new(file))?;
            println!("{campaign}: {n} signatures exported to {}", out.display());
        }
        RegistryCommand::Invalidate {
            campaign,
            prefix_block,
            country,
            trust,
            since,
            until,
            reason,
            mark,
            dry_run,
            ..
        } => {
            let state = store::SignatureState::parse(&mark)
                .context("--mark: expected invalid, fraudulent, valid or pending")?;
            let trust = trust
                .as_deref()
                .map(|t| {
                    store::Trust::parse(t).context("--trust: expected network, from or withheld")
                })
                .transpose()?;
            let filter = store::SignatureFilter {
                prefix_block,
                country,
                trust,
                since: parse_time("since", &since)?,
                until: parse_time("until", &until)?,
                state: None,
            };
            if filter == store::SignatureFilter::default() {
                bail!("give at least one of --prefix-block, --country, --trust, --since, --until");
            }
            let n = store.preview(&campaign, &filter)?;
            println!("{campaign}: {n} signatures match {}", filter.describe());
            if dry_run {
                return Ok(());
            }
            let action = store.review(&campaign, &filter, state, &reason)?;
            println!(
                "{campaign}: action {}: {} signatures set to {} (undo: belteken revert --action {} --reason ...)",
                action.id,
                action.changed,
                state.as_str(),
                action.id
            );
        }
        RegistryCommand::Revert { action, reason, .. } => {
            let n = store.revert_review(action, &reason)?;
            println!("action {action}: {n} signatures restored");
        }
        RegistryCommand::Anomalies {
            campaign,
            per_block_per_minute,
            per_country_per_minute,
            withheld_per_minute,
            ..
        } => {
            let report = store.anomalies(
                &campaign,
                &store::AnomalyThresholds {
                    per_prefix_block_per_minute: per_block_per_minute,
                    per_country_per_minute,
                    withheld_per_minute,
                },
            )?;
            println!(
                "{campaign}: {} signatures, {} bursts flagged",
                report.total,
                report.flagged.len()
            );
            for (label, buckets) in [("FLAGGED", &report.flagged), ("busiest", &report.busiest)] {
                for b in buckets {
                    println!(
                        "{label:8} {}  {:12} {:10} {:6}/min",
                        b.minute,
                        b.dimension.as_str(),
                        b.value,
                        b.count
                    );
                }
            }
        }
        RegistryCommand::Audit { campaign, .. } => {
            for e in store.audit_log(campaign.as_deref())? {
                println!(
                    "{} {} {:10} {}",
                    e.at,
                    e.campaign.as_deref().unwrap_or("-"),
                    e.action,
                    e.detail
                );
            }
        }
    }
    Ok(())
}
