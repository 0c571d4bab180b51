//! The belteken binary: command line, configuration, sockets, runtime and shutdown.

mod admin_cli;
mod audio;
mod campaign_admin;
mod campaign_cli;
mod config;
mod config_error;
mod faults;
mod http_server;
mod providers;
mod registry_cli;
mod trunks;
mod web_config;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use tracing::{info, warn};

use config::Settings;

/// A self-hosted phone-petition line: call and sign.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Configuration file (TOML); without one, the built-in demo campaign runs.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the database and the secret key live [default: ./belteken-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the line: SIP and the web pages.
    Serve {
        #[command(flatten)]
        common: Common,
        /// SIP address, UDP and TCP [default: 127.0.0.1:5060].
        #[arg(long, value_name = "ADDR:PORT")]
        sip_listen: Option<SocketAddr>,
        /// Web address [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR:PORT")]
        http_listen: Option<SocketAddr>,
    },
    /// Check the counters of every campaign against the signatures and repair them.
    Recount {
        #[command(flatten)]
        common: Common,
    },
    #[command(flatten)]
    Registry(registry_cli::RegistryCommand),
    /// Campaign texts, dates, goal and audio as edited while the line runs (as the console
    /// does); a running server picks changes up within seconds.
    Campaign {
        #[command(subcommand)]
        command: campaign_cli::CampaignCommand,
    },
    /// Console users and API tokens.
    Admin {
        #[command(subcommand)]
        cmd: admin_cli::AdminCommand,
    },
    /// Audio tools.
    Audio {
        #[command(subcommand)]
        command: AudioCommand,
    },
    /// Write the recordings of a campaign as WAV files into a directory.
    ExportRecordings {
        #[command(flatten)]
        common: Common,
        /// The campaign's slug.
        #[arg(long)]
        campaign: String,
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AudioCommand {
    /// Decode a WAV, MP3, OGG/Vorbis or FLAC file as a prompt would be, and show its
    /// duration, peak and loudness before and after import (trim and normalisation).
    Check {
        /// The audio file.
        file: PathBuf,
    },
}

fn load_settings(common: &Common) -> Result<Settings> {
    let mut settings = match &common.config {
        None => config::defaults(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let base = path.parent().unwrap_or(Path::new("."));
            config::parse(&text, &path.display().to_string(), base)?
        }
    };
    if let Some(dir) = &common.data_dir {
        settings.data_dir = dir.clone();
    }
    Ok(settings)
}

/// The store the configuration names (PostgreSQL) or SQLite in the data dir, with every
/// campaign registered and its policy applied.
fn open_store(settings: &Settings) -> Result<Arc<dyn store::Store>> {
    create_private_dir(&settings.data_dir)?;
    let store: Arc<dyn store::Store> = match &settings.store_url {
        Some(url) => Arc::new(
            store::PgStore::connect(url).context("cannot connect to the PostgreSQL store")?,
        ),
        None => {
            let db = settings.data_dir.join("belteken.db");
            Arc::new(
                store::SqliteStore::open(&db)
                    .with_context(|| format!("cannot open {}", db.display()))?,
            )
        }
    };
    for c in &settings.campaigns {
        store.ensure_campaign(&c.slug, &c.title)?;
        store.configure_campaign(&c.slug, &c.registry)?;
    }
    // Campaign edits made at run time win over the file (closing time, title).
    campaign_admin::Editor::new(settings.campaigns.clone(), store.clone(), None)
        .apply_to_store()?;
    Ok(store)
}

/// The key that turns numbers into hashes: `BELTEKEN_SECRET` (hex) or the data dir's
/// `secret.key` (made on first start), with `BELTEKEN_SECRET_PREVIOUS` or
/// `secret.previous.key` during a rotation; checked against the fingerprint the store keeps,
/// so that a node never runs with another key than the store's.
fn load_secret(settings: &Settings, store: &dyn store::Store) -> Result<store::Secret> {
    let secret = match std::env::var("BELTEKEN_SECRET") {
        Ok(hex) => {
            let secret = store::Secret::from_hex(hex.trim())
                .context("BELTEKEN_SECRET is not 64 hex digits")?;
            match std::env::var("BELTEKEN_SECRET_PREVIOUS") {
                Ok(hex) => secret.with_previous(
                    store::Secret::from_hex(hex.trim())
                        .context("BELTEKEN_SECRET_PREVIOUS is not 64 hex digits")?,
                ),
                Err(_) => secret,
            }
        }
        Err(_) => {
            if std::env::var_os("BELTEKEN_SECRET_PREVIOUS").is_some() {
                bail!(
                    "BELTEKEN_SECRET_PREVIOUS is set without BELTEKEN_SECRET: give both keys in \
                     the environment, or use secret.previous.key beside secret.key"
                );
            }
            create_private_dir(&settings.data_dir)?;
            store::Secret::load_dir(&settings.data_dir).context("cannot load the secret key")?
        }
    };
    match store::check_secret(store, &secret)
        .context("the secret key does not belong to this store")?
    {
        store::SecretCheck::Same => {}
        store::SecretCheck::Claimed => {
            tracing::info!("the store now names this secret key (by its fingerprint)");
        }
        store::SecretCheck::Rotated => tracing::info!(
            "key rotation: the store now names the new secret key; callers are re-keyed as \
             they call again"
        ),
    }
    Ok(secret)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

/// Logs a panic where it happens, without its message when the message was formatted at run
/// time (it may quote what it failed on: a header, a caller's number). A fixed message and the
/// place in the code are enough to find the bug. Replaces the default hook, which prints the
/// message to standard error.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&'static str>()
            .copied()
            .unwrap_or("(withheld: it may quote call data)");
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("?"),
            %location,
            what,
            "panic"
        );
    }));
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rsipstack=off".into()),
        )
        .init();
    log_panics();
    match cli.command {
        Command::Serve {
            common,
            sip_listen,
            http_listen,
        } => {
            let mut settings = load_settings(&common)?;
            if let Some(a) = sip_listen {
                settings.sip_listen = a;
            }
            if let Some(a) = http_listen {
                settings.http_listen = a;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")?;
            let faults = match std::env::var("BELTEKEN_FAULT") {
                Ok(text) => faults::parse(&text)?,
                Err(_) => faults::Faults::default(),
            };
            let served = runtime.block_on(serve(settings, faults));
            // Every task (and with it every call's hold on the store) ends here.
            runtime.shutdown_timeout(SHUTDOWN_LIMIT);
            let served = served?;
            let failed = served.failed.clone();
            served.close();
            match failed {
                // A non-zero exit, so that a supervisor restarts the line.
                Some(why) => Err(anyhow::anyhow!("stopped because {why}")),
                None => Ok(()),
            }
        }
        Command::Audio {
            command: AudioCommand::Check { file },
        } => {
            let raw = media::audio::decode_file(&file)?;
            let before = media::import::analyze(&raw);
            let prepared = media::import::import_file(&file)?;
            let after = media::import::analyze(&prepared);
            println!("{}", file.display());
            for (label, s) in [("as decoded (8 kHz mono)", before), ("as a prompt", after)] {
                println!(
                    "  {label}: {:.2} s, peak {:.1} dBFS, RMS {:.1} dBFS, loudness {:.1} dBFS",
                    s.duration.as_secs_f64(),
                    s.peak_dbfs,
                    s.rms_dbfs,
                    s.loudness_dbfs
                );
            }
            Ok(())
        }
        Command::Registry(cmd) => {
            let settings = load_settings(cmd.common())?;
            let store = open_store(&settings)?;
            registry_cli::run(cmd, store.as_ref(), &|| {
                load_secret(&settings, store.as_ref())
            })
        }
        Command::Campaign { command } => {
            let settings = load_settings(command.common())?;
            let store = open_store(&settings)?;
            campaign_cli::run(command, &settings, store)
        }
        Command::Admin { cmd } => {
            let settings = load_settings(cmd.common())?;
            let store = open_store(&settings)?;
            admin_cli::run(cmd, store.as_ref())
        }
        Command::Recount { common } => {
            let settings = load_settings(&common)?;
            let store = open_store(&settings)?;
            for c in &settings.campaigns {
                let before = store.counts(&c.slug)?;
                let after = store.recount(&c.slug)?;
                let state = if before == after { "ok" } else { "repaired" };
                println!(
                    "{}: {} signatures, {} unverified ({state})",
                    c.slug, after.signatures, after.unverified
                );
            }
            Ok(())
        }
        Command::ExportRecordings {
            common,
            campaign,
            out,
        } => {
            let settings = load_settings(&common)?;
            let store = open_store(&settings)?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let recordings = store.recordings(&campaign)?;
            for r in &recordings {
                let kind = if r.verified { "verified" } else { "unverified" };
                let path = out.join(format!("{campaign}-{:06}-{kind}.wav", r.id));
                std::fs::write(&path, &r.wav)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!(
                "{} recordings written to {}",
                recordings.len(),
                out.display()
            );
            Ok(())
        }
    }
}

/// The provider webhooks (crates/cloud) over the same campaigns, store and count.
fn cloud_router(
    c: &providers::CloudSettings,
    campaigns: driver::CampaignList,
    settings: &Settings,
    store: &Arc<dyn store::Store>,
    hub: &store::CountHub,
    secret: &Arc<store::Secret>,
    summaries: &store::CallSummaries,
) -> axum::Router {
    info!(public_url = %c.public_url, twilio = c.twilio.is_some(), telnyx = c.telnyx.is_some(), vonage = c.vonage.is_some(), "cloud telephony webhooks");
    cloud::router(cloud::CloudState {
        public_url: c.public_url.clone(),
        campaigns,
        store: store.clone(),
        hub: hub.clone(),
        secret: secret.clone(),
        twilio: c.twilio.clone(),
        telnyx: c.telnyx.clone(),
        vonage: c.vonage.clone(),
        max_call: settings.max_call,
        fetch_attempts: c.fetch_attempts,
        fetch_pause: c.fetch_pause,
        http: c.http.clone(),
        summaries: Some(summaries.clone()),
    })
}

/// The SIP channel's figures, for `/healthz` and `/metrics`, and the core tasks that stopped.
struct SipStatus {
    stats: Arc<sip::Stats>,
    registrations: sip::Registrations,
    stopped: Stopped,
}

impl web::Status for SipStatus {
    fn stopped(&self) -> Vec<String> {
        self.stopped.list()
    }

    fn detail(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = self.health();
        // Why each registration last failed: for the team in the console, not for /healthz.
        let errors: std::collections::HashMap<String, Option<String>> = self
            .registrations
            .snapshot()
            .into_iter()
            .map(|r| (r.trunk, r.last_error))
            .collect();
        if let Some(serde_json::Value::Array(trunks)) = m.get_mut("trunks") {
            for t in trunks.iter_mut() {
                if let serde_json::Value::Object(t) = t {
                    let error = t
                        .get("trunk")
                        .and_then(|n| n.as_str())
                        .and_then(|n| errors.get(n).cloned().flatten());
                    t.insert("last_error".into(), error.into());
                }
            }
        }
        m
    }

    fn health(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert(
            "calls_in_progress".into(),
            self.stats.calls_in_progress.load(Ordering::Relaxed).into(),
        );
        m.insert(
            "draining".into(),
            self.stats.draining.load(Ordering::Relaxed).into(),
        );
        let trunks: Vec<serde_json::Value> = self
            .registrations
            .snapshot()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "trunk": r.trunk,
                    "registration": r.status.as_str(),
                    "registrations": r.registrations,
                    "consecutive_failures": r.consecutive_failures,
                    "expires_in_seconds": r.expires_at.and_then(|t| t.duration_since(std::time::SystemTime::now()).ok()).map(|d| d.as_secs()),
                })
            })
            .collect();
        m.insert("trunks".into(), trunks.into());
        let by_step: Vec<serde_json::Value> = self
            .stats
            .calls_by_step
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|((campaign, step), n)| {
                serde_json::json!({ "campaign": campaign, "step": step, "calls": n })
            })
            .collect();
        m.insert("calls_by_step".into(), by_step.into());
        m
    }

    fn collectors(&self) -> Vec<Box<dyn web::Collector>> {
        vec![
            Box::new(self.stats.clone()),
            Box::new(self.registrations.clone()),
        ]
    }
}

/// How often the live counts are compared with the store (other nodes and tools change it).
const COUNT_SYNC: Duration = Duration::from_secs(1);
/// How often retention runs in `serve`.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Keeps the live counts true when another node or a command changed the store: increases
/// are published, decreases (erasure, review, retention) are applied when seen twice.
async fn sync_counts(store: Arc<dyn store::Store>, hub: store::CountHub, slugs: Vec<String>) {
    let mut lower_seen: std::collections::HashSet<String> = Default::default();
    loop {
        tokio::time::sleep(COUNT_SYNC).await;
        let s = store.clone();
        let list = slugs.clone();
        let Ok(read) = tokio::task::spawn_blocking(move || {
            list.into_iter()
                .filter_map(|slug| s.counts(&slug).ok().map(|c| (slug, c)))
                .collect::<Vec<_>>()
        })
        .await
        else {
            continue;
        };
        for (slug, counts) in read {
            let shown = hub.current(&slug);
            if counts == shown {
                lower_seen.remove(&slug);
            } else if counts.signatures >= shown.signatures && counts.unverified >= shown.unverified
            {
                hub.publish(&slug, counts);
                lower_seen.remove(&slug);
            } else if !lower_seen.insert(slug.clone()) {
                hub.reset(&slug, counts);
                lower_seen.remove(&slug);
            }
        }
    }
}

/// Applies every campaign's retention policy once an hour.
async fn run_retention(store: Arc<dyn store::Store>) {
    loop {
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.retention_run(std::time::SystemTime::now()))
            .await
        {
            Ok(Ok(report)) => info!(?report, "retention"),
            Ok(Err(e)) => tracing::warn!(error = %e, "retention failed"),
            Err(_) => {}
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}

/// How often the drain looks at the number of calls in progress.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// How long the SIP and web tasks get to stop once told to.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

/// SIGTERM and SIGINT, each delivery once.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// How long a failed server keeps answering `/healthz` with 503 (and new calls with 503)
/// before it exits, so that monitoring sees why before the supervisor restarts it.
const FAILED_GRACE: Duration = Duration::from_secs(5);

/// The core tasks that stopped, shared with `/healthz`.
#[derive(Clone, Default)]
struct Stopped(Arc<std::sync::Mutex<Vec<String>>>);

impl Stopped {
    fn add(&self, task: &str) {
        let mut list = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !list.iter().any(|t| t == task) {
            list.push(task.to_string());
        }
    }

    fn list(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A core task that ended, and how.
struct Ended {
    task: &'static str,
    how: String,
}

/// The tasks that run as long as `serve` does: the web server, the count sync, retention,
/// campaign edits, the SIP channel and the media threads' watch. Each one that ends is
/// reported on one channel; before shutdown begins, any end (a panic, an error, a return) is
/// a failure: the server says so on `/healthz` and exits non-zero rather than run deaf.
struct Core {
    ended_tx: tokio::sync::mpsc::UnboundedSender<Ended>,
    ended_rx: tokio::sync::mpsc::UnboundedReceiver<Ended>,
    aborts: Vec<(&'static str, tokio::task::AbortHandle)>,
    /// Core tasks that panic as they start (`BELTEKEN_FAULT=core:<task>`).
    faults: Vec<&'static str>,
}

impl Core {
    fn new(faults: Vec<&'static str>) -> Core {
        let (ended_tx, ended_rx) = tokio::sync::mpsc::unbounded_channel();
        Core {
            ended_tx,
            ended_rx,
            aborts: Vec::new(),
            faults,
        }
    }

    /// Runs `task` as the core task `name`.
    fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: std::future::Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        let fault = self.faults.contains(&name);
        let handle = tokio::spawn(async move {
            if fault {
                panic!("fault injected: core task");
            }
            task.await
        });
        self.aborts.push((name, handle.abort_handle()));
        let ended = self.ended_tx.clone();
        tokio::spawn(async move {
            let how = match handle.await {
                Ok(Ok(())) => "returned".to_string(),
                Ok(Err(e)) => format!("failed: {e}"),
                Err(e) if e.is_panic() => "panicked".to_string(),
                Err(_) => "was cancelled".to_string(),
            };
            let _ = ended.send(Ended { task: name, how });
        });
    }

    /// The next core task to end.
    async fn ended(&mut self) -> Ended {
        match self.ended_rx.recv().await {
            Some(e) => e,
            // Unreachable while `self` holds a sender.
            None => std::future::pending().await,
        }
    }

    /// Stops the tasks that need no goodbye (all but `keep`).
    fn abort_all_but(&self, keep: &[&str]) {
        for (name, abort) in &self.aborts {
            if !keep.contains(name) {
                abort.abort();
            }
        }
    }

    /// Waits until every task named in `tasks` that is still running ends (`gone` ended
    /// already), up to `limit`.
    async fn wait_for(&mut self, tasks: &[&'static str], gone: &[&'static str], limit: Duration) {
        let mut left: Vec<&str> = tasks
            .iter()
            .filter(|t| !gone.contains(t))
            .copied()
            .collect();
        let _ = tokio::time::timeout(limit, async {
            while !left.is_empty() {
                let e = self.ended().await;
                left.retain(|t| *t != e.task);
            }
        })
        .await;
    }
}

/// Records that a core task ended before shutdown: `/healthz` names it from now on.
fn core_failed(stopped: &Stopped, e: &Ended) -> String {
    stopped.add(e.task);
    tracing::error!(task = e.task, how = %e.how, "a core task stopped; the server stops too");
    format!("the core task `{}` {}", e.task, e.how)
}

/// What `serve` leaves to close once the runtime and its tasks are gone.
struct Served {
    store: Arc<dyn store::Store>,
    summaries: store::CallSummaries,
    /// Why the server stopped, when a core task failed (the process then exits non-zero).
    failed: Option<String>,
}

impl Served {
    /// Writes the last call summaries and closes the store: SQLite then checkpoints its WAL
    /// into the database file and removes `-wal` and `-shm`.
    fn close(self) {
        if !self.summaries.close(SHUTDOWN_LIMIT) {
            warn!("the call summary writer did not finish in time");
        }
        let holders = Arc::strong_count(&self.store) - 1;
        drop(self.store);
        if holders == 0 {
            info!("store closed");
        } else {
            warn!(holders, "the store is still in use at exit");
        }
    }
}

async fn serve(settings: Settings, faults: faults::Faults) -> Result<Served> {
    if faults.any() {
        warn!(
            ?faults,
            "BELTEKEN_FAULT is set: panics will be injected on purpose (for tests only)"
        );
    }
    // Watch signals before anything else, so that an early SIGTERM is a drain, not a kill.
    let mut signals = Signals::new()?;
    let store = open_store(&settings)?;
    let secret = Arc::new(load_secret(&settings, store.as_ref())?);
    let hub = store::CountHub::new();
    let advertise: IpAddr = settings.public_host.unwrap_or_else(|| {
        let ip = settings.sip_listen.ip();
        if ip.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            ip
        }
    });
    let sip_host = match advertise {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let sip_port = settings.sip_listen.port();

    for c in &settings.campaigns {
        hub.reset(&c.slug, store.counts(&c.slug)?);
    }
    // The campaigns as the file and the stored edits (console, `belteken campaign`) make
    // them: one list for the SIP channel, the provider webhooks and the pages, kept up to date
    // while serving by `campaign_admin::follow`.
    let campaigns = driver::CampaignList::default();
    let editor = Arc::new(campaign_admin::Editor::new(
        settings.campaigns.clone(),
        store.clone(),
        Some(campaign_admin::Live {
            campaigns: campaigns.clone(),
            sip_address: format!("{sip_host}:{sip_port}"),
        }),
    ));
    editor.load()?;

    let sip_server = sip::SipServer::bind(sip::SipConfig {
        listen: settings.sip_listen,
        advertise,
        max_calls: settings.max_calls,
        shed_late_percent: settings.shed_late_percent,
        max_call: settings.max_call,
        trunks: settings.sip_edge.trunks.clone(),
        edge: settings.sip_edge.edge.clone(),
        default_campaign: settings.default_campaign.clone(),
        faults: faults.sip.clone(),
    })
    .await?;
    let http = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", settings.http_listen))?;
    let http_addr = http.local_addr()?;

    println!("belteken is ready");
    for c in campaigns.snapshot().iter() {
        println!("  call:  {}", c.sip_uri);
        println!("  page:  http://{http_addr}/c/{}", c.slug);
    }
    info!(sip = %settings.sip_listen, http = %http_addr, data = %settings.data_dir.display(), "serving");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = Stopped::default();
    let app = web::router_with(
        web::WebState {
            campaigns: campaigns.clone(),
            hub: hub.clone(),
        },
        web::Options {
            shutdown: Some(stop_rx.clone()),
            status: Some(Arc::new(SipStatus {
                stats: sip_server.stats(),
                registrations: sip_server.registration_states(),
                stopped: stopped.clone(),
            })),
            store: Some(store.clone()),
            admin: Some(editor.clone()),
            public_url: settings.public_url.clone(),
            secret: Some((*secret).clone()),
            max_event_streams: settings.web.max_event_streams,
            max_event_streams_per_address: settings.web.max_event_streams_per_address,
            trusted_proxies: settings.web.trusted_proxies.clone(),
        },
    );
    // Each call's funnel summary, from every channel.
    let summaries = store::CallSummaries::start(store.clone())?;
    // cloud telephony: the provider webhooks beside the web routes.
    let app = match &settings.cloud {
        None => app,
        Some(c) => app.merge(cloud_router(
            c,
            campaigns.clone(),
            &settings,
            &store,
            &hub,
            &secret,
            &summaries,
        )),
    };
    // A handler that panics answers 500 to its own request (the web routes carry this layer
    // already; here it covers the provider webhooks too).
    let app = match faults.http_request.clone() {
        None => app,
        Some(marker) => app.layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(marker),
            http_fault,
        )),
    };
    let app = app.layer(axum::middleware::from_fn(web::catch_panic));
    let mut core = Core::new(faults.core.clone());
    let mut web_stop = stop_rx.clone();
    let http_limits = http_server::limits(&settings);
    info!(
        max_connections = http_limits.max_connections,
        per_address = http_limits.max_connections_per_address,
        "HTTP limits"
    );
    core.spawn("web", async move {
        web::serve(http, app, http_limits, async move {
            let _ = web_stop.wait_for(|s| *s).await;
        })
        .await;
        Ok(())
    });
    let contact_key = if settings.campaigns.iter().any(|c| c.registry.keep_contact) {
        let path = settings.data_dir.join("contact.key");
        Some(Arc::new(
            store::ContactKey::load_or_create(&path).context("cannot load contact.key")?,
        ))
    } else {
        None
    };
    let services = sip::Services {
        store: store.clone(),
        hub: hub.clone(),
        secret,
        contact_key,
        summaries: Some(summaries.clone()),
    };
    let slugs: Vec<String> = settings.campaigns.iter().map(|c| c.slug.clone()).collect();
    let (store_for_sync, hub_for_sync) = (store.clone(), hub.clone());
    core.spawn("sync", async move {
        sync_counts(store_for_sync, hub_for_sync, slugs).await;
        Ok(())
    });
    let store_for_retention = store.clone();
    core.spawn("retention", async move {
        run_retention(store_for_retention).await;
        Ok(())
    });
    core.spawn("edits", async move {
        campaign_admin::follow(editor).await;
        Ok(())
    });
    let sip_stats = sip_server.stats();
    let mut sip_stop = stop_rx.clone();
    core.spawn("sip", async move {
        sip_server
            .run(campaigns, services, async move {
                let _ = sip_stop.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| e.to_string())
    });
    let media_stats = sip_stats.clone();
    core.spawn("media", async move {
        media_stats.media_thread_stopped().await;
        Err("a media thread stopped".to_string())
    });

    // First signal: drain (new calls get 503, calls in progress finish, up to drain_seconds).
    // A second signal, or the end of the drain time, stops at once. A core task that ends
    // meanwhile fails the server: 503 on /healthz and for new calls, then a non-zero exit.
    let mut failed: Option<Ended> = tokio::select! {
        () = signals.next() => None,
        e = core.ended() => Some(e),
    };
    let mut reason = None;
    if let Some(e) = &failed {
        reason = Some(core_failed(&stopped, e));
        sip_stats.draining.store(true, Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(FAILED_GRACE) => {}
            () = signals.next() => info!("signal: stopping now"),
        }
    } else {
        sip_stats.draining.store(true, Ordering::Relaxed);
        let in_progress = sip_stats.calls_in_progress.load(Ordering::Relaxed);
        info!(
            calls = in_progress,
            limit_seconds = settings.drain.as_secs(),
            "draining"
        );
        let drained = async {
            while sip_stats.calls_in_progress.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(DRAIN_POLL).await;
            }
        };
        tokio::select! {
            () = drained => info!("all calls finished"),
            () = tokio::time::sleep(settings.drain) => {
                info!(calls = sip_stats.calls_in_progress.load(Ordering::Relaxed), "drain time is up");
            }
            () = signals.next() => info!("second signal: stopping now"),
            e = core.ended() => {
                reason = Some(core_failed(&stopped, &e));
                failed = Some(e);
            }
        }
    }
    core.abort_all_but(&["sip", "web"]);
    let _ = stop_tx.send(true);
    let gone: Vec<&'static str> = failed.iter().map(|e| e.task).collect();
    core.wait_for(&["sip", "web"], &gone, SHUTDOWN_LIMIT).await;
    Ok(Served {
        store,
        summaries,
        failed: reason,
    })
}

/// Panics the handler of a request carrying `X-Belteken-Fault: <marker>`
/// (`BELTEKEN_FAULT=http-request:<marker>`, for tests).
async fn http_fault(
    axum::extract::State(marker): axum::extract::State<Arc<str>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let marked = request
        .headers()
        .get(sip::fault::HEADER)
        .is_some_and(|v| v.as_bytes() == marker.as_bytes());
    if marked {
        panic!("fault injected: HTTP request");
    }
    next.run(request).await
}
