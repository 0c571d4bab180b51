//! The SIP endpoint: transports, the incoming request loop and dialog event dispatch.

// Nothing a peer sends may panic this code: no slicing or indexing that can go out of bounds.
#![warn(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{TlsListenerConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::call::{self, CallSetup};
use crate::context::{CallEvent, CallMap, Context};
pub use crate::context::{EdgeConfig, Services, SipConfig};
pub use crate::metrics::Stats;
use crate::ratelimit::{Guard, Strike};
use crate::register::{self, RegisterJob, Registrations};
use crate::rtp_ports::RtpPorts;
use crate::sdp;
use crate::tls;
use crate::trunk::{
    self, CallerTrust, DidHeaders, DidSource, IdentityHeaders, Source, TrunkConfig, TrunkTransport,
    Trunks, Untrusted,
};
use crate::wire::ALLOW;

/// Events queued per call before the dispatcher waits; a call reads them every 20 ms.
const CALL_EVENT_QUEUE: usize = 32;
/// Option tags we support in Require (RFC 3261 8.2.2.3); anything else gets 420. Session
/// timers ("timer", RFC 4028) are deliberately absent: we never advertise them, so a caller's
/// Session-Expires is not answered and, per RFC 4028 section 7.2, the session has no timer.
/// `max_call` bounds every call instead.
const SUPPORTED_OPTION_TAGS: &[&str] = &["100rel"];
/// User-Agent prefixes of SIP scanners: such a source is banned at its first request.
const SCANNER_AGENTS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sundayddr",
    "iWar",
    "VaxSIPUserAgent",
    "pplsip",
];
/// Headers in one request at most; more get 400 (a header bomb).
const MAX_HEADERS: usize = 256;
/// Registrations get this long to unregister at shutdown.
const UNREGISTER_GRACE: Duration = Duration::from_secs(4);
/// Retry-After (seconds) of a 503 for a full line (node, trunk) or a drain.
const BUSY_RETRY_AFTER: u32 = 30;
/// Retry-After (seconds) of a 503 while the media threads catch up: soon better.
const SHED_RETRY_AFTER: u32 = 5;

pub use driver::{Campaign, CampaignAudio, CampaignList};

#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("cannot listen for SIP on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("SIP endpoint failed: {0}")]
    Endpoint(String),
    #[error("TLS: {0}")]
    Certificate(#[from] tls::CertificateError),
    #[error("TLS: {0}")]
    Tls(String),
    /// A part of the channel that runs as long as the channel stopped on its own.
    #[error("the SIP channel's {0} stopped")]
    Stopped(&'static str),
}

/// A bound SIP endpoint, ready to run.
pub struct SipServer {
    config: SipConfig,
    cancel: CancellationToken,
    endpoint: rsipstack::transaction::Endpoint,
    stats: Arc<Stats>,
    trunks: Arc<Trunks>,
    guard: Arc<Mutex<Guard>>,
    registrations: Registrations,
}

impl SipServer {
    /// Binds UDP and TCP on `config.listen`.
    pub async fn bind(config: SipConfig) -> Result<SipServer, SipError> {
        let addr = config.listen;
        let bind_err = |e: &dyn std::fmt::Display| SipError::Bind {
            addr,
            reason: e.to_string(),
        };
        // rsipstack binds TCP lazily and only logs a failure; bind once here to fail early.
        drop(std::net::TcpListener::bind(addr).map_err(|e| bind_err(&e))?);
        let cancel = CancellationToken::new();
        let transport = TransportLayer::new(cancel.clone());
        // UDP is bound here, behind our own gate (`wire`); added to the stack below, once the
        // gate's rate limits and trunks exist.
        let udp_socket = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(|e| bind_err(&e))?;
        let tcp = TcpListenerConnection::new(addr, None)
            .await
            .map_err(|e| bind_err(&e))?;
        transport.add_transport(tcp.into());
        if let Some(t) = &config.edge.tls {
            transport.add_transport(listen_tls(t).await?.into());
        }
        if config
            .trunks
            .iter()
            .any(|t| t.transport == TrunkTransport::Tls)
        {
            tls::install_crypto_provider();
        }
        if let Some(roots) = &config.edge.tls_roots_pem {
            transport.set_tls_config(tls::client_config(roots.clone()));
        }
        if config.trunks.is_empty() {
            warn!(
                "no trunks configured: calls are taken from any source and the From header \
                 is taken as the caller's identity, so anyone can sign as any number; \
                 configure [[trunk]] before the line is public"
            );
        }
        let trunks = Arc::new(resolve_trunks(&config.trunks).await);
        let guard = Arc::new(Mutex::new(Guard::new(config.edge.limits)));
        let stats = Arc::new(Stats::default());
        {
            // Every datagram and new connection passes here before it is parsed.
            let trunks = trunks.clone();
            let guard = guard.clone();
            transport.set_whitelist(move |ip: IpAddr| {
                let allowed = trunks.is_trusted(ip) || admit(&guard, ip);
                std::future::ready(allowed)
            });
        }
        let gated = gate_udp(udp_socket, &trunks, &guard, &stats);
        let udp = UdpConnection::from_socket(Arc::new(gated), None, Some(cancel.child_token()))
            .await
            .map_err(|e| bind_err(&e))?;
        transport.add_transport(udp.into());
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(cancel.clone())
            .with_transport_layer(transport)
            .with_user_agent(concat!("belteken/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(SipServer {
            config,
            cancel,
            endpoint,
            stats,
            trunks,
            guard,
            registrations: Registrations::default(),
        })
    }

    /// Each registration trunk's state, live (for /healthz): `.snapshot()`.
    pub fn registration_states(&self) -> Registrations {
        self.registrations.clone()
    }

    /// Live figures, shared.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Serves until `shutdown` completes. `campaigns` may be a [`CampaignList`] the caller
    /// keeps, to swap campaigns while the channel runs.
    pub async fn run(
        self,
        campaigns: impl Into<CampaignList>,
        services: Services,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), SipError> {
        let mut incoming = self
            .endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Endpoint(e.to_string()))?;
        let dialogs = Arc::new(DialogLayer::new(self.endpoint.inner.clone()));
        let (state_tx, state_rx) = dialogs.new_dialog_state_channel();
        let calls: CallMap = Arc::default();

        let endpoint_inner = self.endpoint.inner.clone();
        let mut serve = tokio::spawn(async move {
            if let Err(e) = endpoint_inner.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });
        let mut dispatcher = tokio::spawn(dispatch_dialog_states(
            self.stats.clone(),
            state_rx,
            calls.clone(),
            dialogs.clone(),
            self.config.faults.dialog.clone(),
        ));

        let registering = CancellationToken::new();
        let registration_tasks = self.start_registrations(&registering);
        let ctx = Arc::new(Context {
            config: self.config.clone(),
            campaigns: campaigns.into(),
            services,
            dialogs,
            state_tx,
            calls,
            stats: self.stats.clone(),
            trunks: self.trunks.clone(),
            guard: self.guard.clone(),
            rtp_ports: RtpPorts::new(self.config.edge.rtp_ports.clone()),
            shedding: Arc::default(),
            // Started now rather than by the first call, while INVITEs would queue behind it.
            rtp: self.start_media_threads(),
        });
        let shed_task = start_shedder(&ctx);
        // What the first call would otherwise load, while INVITEs queue behind it: the number
        // parser's metadata.
        tokio::task::spawn_blocking(store::warm_up).await.ok();
        tokio::pin!(shutdown);
        // The endpoint and the dialog dispatcher run as long as the channel: one that ends
        // first leaves the channel deaf, which the caller must hear of (see `SipError::Stopped`).
        let stopped = loop {
            tokio::select! {
                () = &mut shutdown => break None,
                tx = incoming.recv() => match tx {
                    Some(tx) => on_request_isolated(ctx.clone(), tx).await,
                    None => break Some("transaction layer"),
                },
                _ = &mut serve => break Some("endpoint"),
                _ = &mut dispatcher => break Some("dialog dispatcher"),
            }
        };
        match stopped {
            None => info!("SIP channel stopping"),
            Some(part) => tracing::error!(part, "the SIP channel's {part} stopped on its own"),
        }
        if let Some(t) = shed_task {
            t.abort();
        }
        stop_registrations(&registering, registration_tasks).await;
        self.cancel.cancel();
        serve.abort();
        dispatcher.abort();
        match stopped {
            None => Ok(()),
            Some(part) => Err(SipError::Stopped(part)),
        }
    }
}

impl Context {
    /// Whether the media threads are falling behind (see `shed`).
    fn shedding(&self) -> bool {
        self.shedding.load(Ordering::Relaxed)
    }

    fn campaign_for(&self, user: &str) -> Option<Arc<Campaign>> {
        let wanted = trunk::normalize_did(user);
        self.campaigns
            .find(user, |did, _| trunk::normalize_did(did) == wanted)
    }

    /// Counts a bad request from an untrusted source; logs a ban when it starts one.
    fn strike(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        strike(&self.trunks, &self.guard, ip);
    }

    fn is_banned(&self, ip: Option<IpAddr>) -> bool {
        ip.is_some_and(|ip| {
            self.guard
                .lock()
                .is_ok_and(|g| g.is_banned(ip, Instant::now()))
        })
    }

    /// Bans `ip` at once (a scanner that names itself).
    fn ban_now(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        if self.trunks.is_trusted(ip) {
            return;
        }
        let Ok(mut g) = self.guard.lock() else { return };
        let mut strike = Strike::Counted;
        for _ in 0..g.limits().bad_requests_before_ban.max(1) {
            strike = g.bad_request(ip, Instant::now());
            if strike != Strike::Counted {
                break;
            }
        }
        drop(g);
        log_strike(ip, strike);
    }
}

/// Counts a bad request from `ip` unless it is a trunk's; logs a ban when it starts one.
fn strike(trunks: &Trunks, guard: &Mutex<Guard>, ip: IpAddr) {
    if trunks.is_trusted(ip) {
        return;
    }
    let strike = match guard.lock() {
        Ok(mut g) => g.bad_request(ip, Instant::now()),
        Err(_) => return,
    };
    log_strike(ip, strike);
}

fn log_strike(ip: IpAddr, strike: Strike) {
    if let Strike::Banned(d) = strike {
        // The source address only: never a caller's number.
        warn!(source = %ip, ban_s = d.as_secs(), "source banned after repeated bad requests");
    }
}

/// The transport-level gate: banned sources are dropped, the rest are rate-limited.
fn admit(guard: &Mutex<Guard>, ip: IpAddr) -> bool {
    let Ok(mut g) = guard.lock() else {
        return true;
    };
    let (ok, strike) = g.allow_packet(ip, Instant::now());
    drop(g);
    if let Some(s) = strike {
        log_strike(ip, s);
    }
    ok
}

/// The TLS listener, once its certificate and key are found good and its address free.
async fn listen_tls(settings: &tls::TlsSettings) -> Result<TlsListenerConnection, SipError> {
    tls::check_certificate(&settings.cert_pem, &settings.key_pem)?;
    let addr = settings.listen;
    // As for TCP: bound once here to fail early.
    drop(
        std::net::TcpListener::bind(addr).map_err(|e| SipError::Bind {
            addr,
            reason: e.to_string(),
        })?,
    );
    TlsListenerConnection::new(addr, None, tls::listener_config(settings))
        .await
        .map_err(|e| SipError::Tls(e.to_string()))
}

/// The UDP socket behind our gate: datagrams from a source that is no trunk's are
/// rate-limited (and banned sources dropped) before they are parsed, and their defects count
/// against the source.
fn gate_udp(
    socket: tokio::net::UdpSocket,
    trunks: &Arc<Trunks>,
    guard: &Arc<Mutex<Guard>>,
    stats: &Arc<Stats>,
) -> crate::udp_gate::GatedUdp {
    let admit: crate::udp_gate::Admit = {
        let trunks = trunks.clone();
        let guard = guard.clone();
        Arc::new(move |ip: IpAddr| trunks.is_trusted(ip) || admit(&guard, ip))
    };
    let strike: crate::udp_gate::Strike = {
        let trunks = trunks.clone();
        let guard = guard.clone();
        Arc::new(move |ip: IpAddr| strike(&trunks, &guard, ip))
    };
    crate::udp_gate::GatedUdp::new(socket, admit, strike, stats.clone())
}

/// The trunks, with each registration trunk's registrar and proxy addresses trusted too.
async fn resolve_trunks(configs: &[TrunkConfig]) -> Trunks {
    let mut trunks = Trunks::new(configs.to_vec());
    for t in configs {
        let Some(reg) = &t.register else { continue };
        if let Some(proxy) = reg.proxy {
            trunks.trust(&t.name, proxy.ip());
        }
        let r = reg.registrar.as_str();
        let default_port = if t.transport == TrunkTransport::Tls {
            5061
        } else {
            5060
        };
        let host = if r.parse::<std::net::SocketAddr>().is_ok() {
            r.to_string()
        } else if let Ok(ip) = r.trim_matches(['[', ']']).parse::<IpAddr>() {
            std::net::SocketAddr::new(ip, default_port).to_string()
        } else if r.contains(':') {
            r.to_string()
        } else {
            format!("{r}:{default_port}")
        };
        match tokio::net::lookup_host(host.clone()).await {
            Ok(addrs) => {
                for a in addrs {
                    trunks.trust(&t.name, a.ip());
                }
            }
            Err(e) => {
                warn!(trunk = %t.name, error = %e, "cannot resolve the registrar; only the trunk's `trusted` networks are accepted")
            }
        }
    }
    trunks
}

impl SipServer {
    /// The media threads; `None` (and a warning) when they cannot start.
    fn start_media_threads(&self) -> Option<Arc<crate::rtp_engine::RtpEngine>> {
        match crate::rtp_engine::RtpEngine::start(
            crate::rtp_engine::default_threads(),
            self.stats.clone(),
            self.config.faults.media_thread,
        ) {
            Ok(engine) => Some(engine),
            Err(e) => {
                warn!(error = %e, "the RTP engine did not start; calls will get 503");
                None
            }
        }
    }

    fn start_registrations(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let host = uri_host(self.config.advertise);
        let mut tasks = Vec::new();
        for t in self.trunks.all() {
            let Some(reg) = &t.register else { continue };
            let port = match (t.transport, &self.config.edge.tls) {
                (TrunkTransport::Tls, Some(tls)) => tls.listen.port(),
                _ => self.config.listen.port(),
            };
            let job = RegisterJob {
                trunk: t.name.clone(),
                transport: t.transport,
                config: reg.clone(),
                contact_host: host.clone(),
                contact_port: port,
            };
            tasks.push(tokio::spawn(register::run(
                self.endpoint.inner.clone(),
                job,
                self.registrations.clone(),
                stop.child_token(),
            )));
        }
        tasks
    }
}

/// The shedding verdict, revised every window from the media threads' figures whether or not
/// INVITEs arrive (so each verdict covers one recent window); `None` when shedding is off.
fn start_shedder(ctx: &Context) -> Option<JoinHandle<()>> {
    let percent = ctx.config.shed_late_percent;
    (percent > 0.0).then(|| {
        let verdict = ctx.shedding.clone();
        let stats = ctx.stats.clone();
        let mut shedder = crate::shed::Shedder::new(percent);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(crate::shed::WINDOW);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let (rounds, late) = stats.metrics.pacing_rounds();
                let now = std::time::Instant::now();
                verdict.store(shedder.update(now, rounds, late), Ordering::Relaxed);
            }
        })
    })
}

/// Stops the registrations, giving them `UNREGISTER_GRACE` to unregister.
async fn stop_registrations(registering: &CancellationToken, tasks: Vec<JoinHandle<()>>) {
    registering.cancel();
    let _ = tokio::time::timeout(UNREGISTER_GRACE, async {
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;
}

/// The source address of a request.
fn source_ip(tx: &Transaction) -> Option<IpAddr> {
    tx.connection
        .as_ref()
        .and_then(|c| c.get_remote_addr())
        .and_then(|a| a.get_socketaddr().ok())
        .map(|a| a.ip())
}

fn is_scanner(tx: &Transaction) -> bool {
    tx.original.header_value("User-Agent").is_some_and(|ua| {
        let ua = ua.to_ascii_lowercase();
        SCANNER_AGENTS
            .iter()
            .any(|s| ua.starts_with(&s.to_ascii_lowercase()))
    })
}

/// What is wrong with a request the parser let through (RFC 4475 section 3.1.2): a SIP
/// version other than 2.0 (505), a CSeq method that is not the request's, a second CSeq,
/// Call-ID, From or To, or too many headers (400).
fn request_defect(tx: &Transaction) -> Option<(StatusCode, &'static str)> {
    let req = &tx.original;
    if req.version != rsipstack::sip::Version::V2 {
        return Some((StatusCode::VersionNotSupported, "only SIP/2.0"));
    }
    if req.headers.iter().count() > MAX_HEADERS {
        return Some((StatusCode::BadRequest, "too many headers"));
    }
    for name in ["CSeq", "Call-ID", "From", "To"] {
        let n = req
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .count();
        if n != 1 {
            return Some((
                StatusCode::BadRequest,
                "CSeq, Call-ID, From and To must appear once",
            ));
        }
    }
    let cseq_method = req
        .header_value("CSeq")
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string));
    if cseq_method.as_deref() != Some(req.method.to_string().as_str()) {
        return Some((
            StatusCode::BadRequest,
            "the CSeq method is not the request's",
        ));
    }
    None
}

/// A refusal for what the headers ask (RFC 3261 section 8.2.2): a Request-URI scheme we do
/// not serve (416), an option tag in Require we lack (420 with Unsupported).
#[warn(clippy::string_slice, clippy::indexing_slicing)]
fn header_refusal(tx: &Transaction) -> Option<(StatusCode, Vec<Header>)> {
    let scheme_ok = match &tx.original.uri.scheme {
        Some(rsipstack::sip::Scheme::Sip | rsipstack::sip::Scheme::Sips) => true,
        Some(rsipstack::sip::Scheme::Other(s)) => s.eq_ignore_ascii_case("tel"),
        None => false,
    };
    if !scheme_ok {
        return Some((StatusCode::UnsupportedUriScheme, vec![]));
    }
    let unsupported = unsupported_requirements(tx);
    if !unsupported.is_empty() {
        let h = Header::Other("Unsupported".into(), unsupported.join(", "));
        return Some((StatusCode::BadExtension, vec![h]));
    }
    None
}

/// The SDP offer of an INVITE: `Err` with the refusal when its body cannot be read (415 with
/// Accept, 406, 400); `Ok(Err(..))` when it reads as SDP we cannot take (for a 488).
#[allow(clippy::type_complexity)]
#[warn(clippy::string_slice, clippy::indexing_slicing)]
fn offer_in_body(
    tx: &Transaction,
) -> Result<Result<sdp::Offer, sdp::SdpError>, (StatusCode, Vec<Header>)> {
    let req = &tx.original;
    let accept_types = || Header::Other("Accept".into(), crate::body::ACCEPTED.into());
    let encoding = req.header_value("Content-Encoding").unwrap_or_default();
    if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
        let h = Header::Other("Accept-Encoding".into(), "identity".into());
        return Err((StatusCode::UnsupportedMediaType, vec![accept_types(), h]));
    }
    let content_type = req.header_value("Content-Type");
    let sdp_bytes = match crate::body::session_description(content_type.as_deref(), &req.body) {
        Ok(b) => b,
        Err(crate::body::BodyError::Unsupported) => {
            return Err((StatusCode::UnsupportedMediaType, vec![accept_types()]));
        }
        Err(e @ crate::body::BodyError::Malformed) => {
            let w = Header::Other("Warning".into(), format!("399 belteken \"{e}\""));
            return Err((StatusCode::BadRequest, vec![w]));
        }
    };
    let accept: Vec<String> = req
        .headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Accept"))
        .map(|h| h.value().to_string())
        .collect();
    if !accept.is_empty() && !crate::body::accepts_sdp(&accept.join(",")) {
        return Err((StatusCode::NotAcceptable, vec![]));
    }
    match sdp::parse(sdp_bytes) {
        Err(e) if e.is_malformed() && !sdp_bytes.is_empty() => {
            let w = Header::Other("Warning".into(), format!("399 belteken \"{e}\""));
            Err((StatusCode::BadRequest, vec![w]))
        }
        other => Ok(other),
    }
}

/// The option tags in Require that we do not support.
fn unsupported_requirements(tx: &Transaction) -> Vec<String> {
    tx.original
        .headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Require"))
        .flat_map(|h| {
            h.value()
                .split(',')
                .map(|t| t.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|t| {
            !t.is_empty()
                && !SUPPORTED_OPTION_TAGS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(t))
        })
        .take(8)
        .collect()
}

fn has_to_tag(tx: &Transaction) -> bool {
    tx.original
        .to_header()
        .ok()
        .and_then(|to| to.tag().ok().flatten())
        .is_some()
}

/// Whether the body is shorter than Content-Length says: a datagram cut short
/// (RFC 3261 section 18.3 wants a 400).
fn body_truncated(tx: &Transaction) -> bool {
    tx.original
        .header_value("Content-Length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|declared| declared > tx.original.body.len())
}

/// Handles one request in a task of its own and waits for it: INVITEs are still taken one at a
/// time (admission counts cannot race), and a panic ends this request alone, answered 500 where
/// it can still be answered, never the loop that takes requests.
async fn on_request_isolated(ctx: Arc<Context>, tx: Transaction) {
    let method = tx.original.method;
    // What a 500 needs once the handler, and the transaction with it, is gone. The copy is
    // taken for answerable requests only (an ACK has no answer).
    let answer_with = (method != Method::Ack).then(|| {
        (
            tx.key.clone(),
            tx.original.clone(),
            tx.endpoint_inner.clone(),
            tx.connection.clone(),
        )
    });
    let handled = tokio::spawn(on_request(ctx.clone(), tx)).await;
    let Err(e) = handled else { return };
    if !e.is_panic() {
        return;
    }
    ctx.stats.metrics.panic_contained();
    // The method only: the request may carry a caller's number anywhere else.
    warn!(%method, "a SIP request's handler panicked: that request ends here (500)");
    if let Some((key, original, endpoint, connection)) = answer_with {
        let mut tx = Transaction::new_server(key, original, endpoint, connection);
        ctx.reply(&mut tx, StatusCode::ServerInternalError, vec![])
            .await;
    }
}

async fn on_request(ctx: Arc<Context>, mut tx: Transaction) {
    if crate::fault::marked(ctx.config.faults.request.as_ref(), &tx.original) {
        crate::fault::fire("fault injected: SIP request");
    }
    let source = source_ip(&tx);
    if is_shut_out(&ctx, &tx, source) {
        return;
    }
    if refuse_defect(&ctx, &mut tx, source).await.is_err() {
        return;
    }
    if has_to_tag(&tx) {
        in_dialog(&ctx, tx, source).await;
        return;
    }
    match tx.original.method {
        Method::Invite => {
            // A refused INVITE has had its answer (or its silence) already.
            let _refused = on_invite(ctx, tx, source).await;
        }
        Method::Options => on_options(&ctx, &mut tx, source).await,
        Method::Ack => {}
        Method::Bye
        | Method::Info
        | Method::Update
        | Method::Cancel
        | Method::Refer
        | Method::Notify
        | Method::PRack => {
            ctx.strike(source);
            ctx.reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![])
                .await;
        }
        _ => {
            // REGISTER among them: we are no registrar, and say so to every user alike.
            ctx.strike(source);
            let allow = Header::Other("Allow".into(), ALLOW.into());
            ctx.reply(&mut tx, StatusCode::MethodNotAllowed, vec![allow])
                .await;
        }
    }
}

/// Whether the request goes unheard: its source is banned, or is a scanner that names itself
/// (banned now).
fn is_shut_out(ctx: &Context, tx: &Transaction, source: Option<IpAddr>) -> bool {
    if ctx.is_banned(source) {
        // A stream connection opened before the ban: read, but never answered.
        return true;
    }
    if is_scanner(tx) {
        ctx.ban_now(source);
        return ctx.is_banned(source);
    }
    false
}

/// Refuses a request the parser let through but that is malformed (see `request_defect`) or
/// cut short (see `body_truncated`): 400 or 505 with a Warning, an ACK unanswered; both count
/// against the source.
async fn refuse_defect(
    ctx: &Context,
    tx: &mut Transaction,
    source: Option<IpAddr>,
) -> Result<(), Refused> {
    let (status, why) = match request_defect(tx) {
        Some(defect) => defect,
        None if body_truncated(tx) => {
            (StatusCode::BadRequest, "Content-Length exceeds the message")
        }
        None => return Ok(()),
    };
    ctx.strike(source);
    if tx.original.method != Method::Ack {
        let warning = Header::Other("Warning".into(), format!("399 belteken \"{why}\""));
        ctx.reply(tx, status, vec![warning]).await;
    }
    Err(Refused)
}

/// An in-dialog request: handed to its dialog, or 481.
async fn in_dialog(ctx: &Context, mut tx: Transaction, source: Option<IpAddr>) {
    match ctx.dialogs.match_dialog(&tx) {
        Some(mut dialog) => {
            tokio::spawn(async move {
                if let Err(e) = dialog.handle(&mut tx).await {
                    debug!(error = %e, "in-dialog request");
                }
            });
        }
        None => {
            if tx.original.method != Method::Ack {
                ctx.strike(source);
                ctx.reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![])
                    .await;
            }
        }
    }
}

/// OPTIONS outside a dialog: what we allow and accept, unless the headers ask for what we do
/// not serve.
async fn on_options(ctx: &Context, tx: &mut Transaction, source: Option<IpAddr>) {
    if let Some((status, headers)) = header_refusal(tx) {
        ctx.strike(source);
        ctx.reply(tx, status, headers).await;
        return;
    }
    let allow = Header::Other("Allow".into(), ALLOW.into());
    let accept = Header::Other("Accept".into(), "application/sdp".into());
    ctx.reply(tx, StatusCode::OK, vec![allow, accept]).await;
}

/// Where an INVITE stopped short of a call: its answer, if it gets one, is sent already.
struct Refused;

/// An INVITE on its way to a call: the transaction, its source and the trunk it came through.
struct Invite {
    ctx: Arc<Context>,
    tx: Transaction,
    source: Option<IpAddr>,
    /// `None` when no trunks are configured (any source may call).
    trunk: Option<TrunkConfig>,
    /// The trunk's name for the logs (`-` without one).
    trunk_name: String,
}

/// Who is calling, as far as the headers tell.
struct Caller {
    identity: store::CallerIdentity,
    trust: CallerTrust,
    /// The number, sealed, kept only if the flow hears the caller ask to be contacted.
    contact: Option<store::SealedContact>,
}

/// A new INVITE, from its source to a running call, one step after the other. A step that
/// stops the INVITE answers it (or drops it) itself.
async fn on_invite(
    ctx: Arc<Context>,
    tx: Transaction,
    source: Option<IpAddr>,
) -> Result<(), Refused> {
    ctx.stats.calls_total.fetch_add(1, Ordering::Relaxed);
    let mut invite = Invite::judge_source(ctx, tx, source).await?;
    invite.check_headers().await?;
    let offer = invite.read_offer().await?;
    let (called, campaign) = invite.find_campaign().await?;
    let offer = invite.negotiate(offer, &campaign).await?;
    invite.check_limits().await?;
    let caller = invite.identify_caller(&campaign);
    info!(trunk = %invite.trunk_name, called = %called, campaign = %campaign.slug, trust = caller.trust.as_str(), "INVITE accepted");
    let dialog = invite.open_dialog().await?;
    invite
        .start_call(called, campaign, caller, offer, dialog)
        .await;
    Ok(())
}

impl Invite {
    /// Judges the source first, so that an untrusted one gets one answer for every user: a
    /// trunk's address, or any address while no trunks are configured, goes on; any other is
    /// refused (403) or dropped, per `untrusted`.
    async fn judge_source(
        ctx: Arc<Context>,
        mut tx: Transaction,
        source: Option<IpAddr>,
    ) -> Result<Invite, Refused> {
        let trunk = match source.map(|ip| ctx.trunks.classify(ip)) {
            Some(Source::Open) => None,
            Some(Source::Trunk(t)) => Some(t.clone()),
            Some(Source::Unknown) | None if ctx.trunks.is_empty() => None,
            Some(Source::Unknown) | None => {
                ctx.strike(source);
                match ctx.config.edge.untrusted {
                    Untrusted::Reject => {
                        info!(source = ?source, "INVITE from no trunk's address: 403");
                        ctx.reply(&mut tx, StatusCode::Forbidden, vec![]).await;
                    }
                    Untrusted::Drop => {
                        debug!(source = ?source, "INVITE from no trunk's address: dropped")
                    }
                }
                return Err(Refused);
            }
        };
        let trunk_name = trunk.as_ref().map_or("-", |t| t.name.as_str()).to_string();
        Ok(Invite {
            ctx,
            tx,
            source,
            trunk,
            trunk_name,
        })
    }

    /// Answers the INVITE with `status`: it goes no further.
    async fn refuse(&mut self, status: StatusCode, headers: Vec<Header>) -> Refused {
        self.ctx.reply(&mut self.tx, status, headers).await;
        Refused
    }

    /// Counts a bad request against a source that is no trunk's.
    fn strike_untrusted(&self) {
        if self.trunk.is_none() {
            self.ctx.strike(self.source);
        }
    }

    /// Refuses what the headers ask and we do not serve (see `header_refusal`).
    async fn check_headers(&mut self) -> Result<(), Refused> {
        let Some((status, headers)) = header_refusal(&self.tx) else {
            return Ok(());
        };
        info!(trunk = %self.trunk_name, status = status.code(), "INVITE refused on its headers");
        Err(self.refuse(status, headers).await)
    }

    /// The body, read before the campaign is sought (RFC 3261 section 8.2.3): a type we cannot
    /// read is 415, an Accept that excludes SDP 406, a body that is no SDP at all 400. An offer
    /// that reads but cannot be taken comes back as `Ok(Err(..))`, for `negotiate`.
    async fn read_offer(&mut self) -> Result<Result<sdp::Offer, sdp::SdpError>, Refused> {
        match offer_in_body(&self.tx) {
            Ok(offer) => Ok(offer),
            Err((status, headers)) => {
                info!(trunk = %self.trunk_name, status = status.code(), "INVITE refused on its body");
                self.strike_untrusted();
                Err(self.refuse(status, headers).await)
            }
        }
    }

    /// The called number and its campaign; 404 when no campaign takes the call.
    async fn find_campaign(&mut self) -> Result<(String, Arc<Campaign>), Refused> {
        let candidates = self.called_candidates();
        if let Some(found) = self.campaign_among(&candidates) {
            return Ok(found);
        }
        // The called user is a campaign slug or DID, not a caller number: safe to log.
        let called = candidates.first().map_or("", String::as_str);
        info!(trunk = %self.trunk_name, called = %called, "INVITE for no campaign: 404");
        self.strike_untrusted();
        Err(self.refuse(StatusCode::NotFound, vec![]).await)
    }

    /// The numbers (or users) the INVITE may have called, best first, from where the trunk
    /// puts them.
    fn called_candidates(&self) -> Vec<String> {
        let did_source = match &self.trunk {
            Some(t) => t.did_from.clone(),
            None => DidSource::Auto,
        };
        let request = &self.tx.original;
        let ruri_user = request.uri.user().map(str::to_string);
        let to = request.header_value("To");
        let lookup = |name: &str| request.header_value(name);
        trunk::called_dids(
            &did_source,
            &DidHeaders {
                request_uri_user: ruri_user.as_deref(),
                to: to.as_deref(),
                other: Some(&lookup),
            },
        )
    }

    /// The first candidate that this trunk delivers and a campaign owns. A number a trunk
    /// delivers that no campaign owns goes to the default campaign, when one is configured;
    /// callers from no trunk find none.
    fn campaign_among(&self, candidates: &[String]) -> Option<(String, Arc<Campaign>)> {
        let ctx = &self.ctx;
        candidates
            .iter()
            .filter(|d| self.delivers(d))
            .find_map(|d| ctx.campaign_for(d).map(|c| (d.clone(), c)))
            .or_else(|| {
                self.trunk.as_ref()?;
                let slug = ctx.config.default_campaign.as_deref()?;
                let called = candidates.first().cloned().unwrap_or_default();
                ctx.campaign_for(slug).map(|c| (called, c))
            })
    }

    /// Whether the trunk delivers `did` (a trunk with no DIDs listed delivers any).
    fn delivers(&self, did: &str) -> bool {
        let dids = self.trunk.as_ref().map_or(&[][..], |t| t.dids.as_slice());
        dids.is_empty() || {
            let d = trunk::normalize_did(did);
            dids.iter().any(|x| trunk::normalize_did(x) == d)
        }
    }

    /// The codec and media the offer and we agree on; 488 with a Warning when none.
    async fn negotiate(
        &mut self,
        offer: Result<sdp::Offer, sdp::SdpError>,
        campaign: &Campaign,
    ) -> Result<(sdp::Offer, sdp::Negotiated), Refused> {
        let agreed = offer.and_then(|o| {
            let chosen = sdp::negotiate(&o)?;
            Ok((o, chosen))
        });
        match agreed {
            Ok(agreed) => Ok(agreed),
            Err(e) => {
                info!(campaign = %campaign.slug, reason = %e, "INVITE rejected: 488");
                let warning = Header::Other("Warning".into(), format!("304 belteken \"{e}\""));
                Err(self
                    .refuse(StatusCode::NotAcceptableHere, vec![warning])
                    .await)
            }
        }
    }

    /// Refuses the call (503 with Retry-After, so the provider may try another node) when a
    /// limit is reached (see `limit_reached`).
    async fn check_limits(&mut self) -> Result<(), Refused> {
        let Some((why, retry_after)) = self.limit_reached() else {
            return Ok(());
        };
        self.ctx
            .stats
            .calls_rejected_busy
            .fetch_add(1, Ordering::Relaxed);
        debug!(trunk = %self.trunk_name, reason = why, "INVITE refused: 503");
        let retry = Header::Other("Retry-After".into(), retry_after.to_string());
        Err(self
            .refuse(StatusCode::ServiceUnavailable, vec![retry])
            .await)
    }

    /// The limit one more call would exceed, with the Retry-After to send: the node's, a
    /// drain, the trunk's, or the media threads' pace (counted as shed). INVITEs are taken one
    /// at a time, so this check and the count `start_call` takes cannot race.
    fn limit_reached(&self) -> Option<(&'static str, u32)> {
        let stats = &self.ctx.stats;
        if stats.calls_in_progress.load(Ordering::Relaxed) >= self.ctx.config.max_calls {
            Some(("max_calls", BUSY_RETRY_AFTER))
        } else if stats.draining.load(Ordering::Relaxed) {
            Some(("draining", BUSY_RETRY_AFTER))
        } else if self.trunk_full() {
            Some(("trunk max_calls", BUSY_RETRY_AFTER))
        } else if self.ctx.shedding() {
            stats.calls_shed.fetch_add(1, Ordering::Relaxed);
            Some(("media falling behind", SHED_RETRY_AFTER))
        } else {
            None
        }
    }

    /// Whether the trunk has as many calls in progress as it may.
    fn trunk_full(&self) -> bool {
        self.trunk.as_ref().is_some_and(|t| {
            t.max_calls
                .is_some_and(|max| self.ctx.stats.trunk_calls(&t.name) >= max)
        })
    }

    /// The caller, from the identity headers the source may be believed for. The raw number
    /// leaves this function only hashed (`identity`) or sealed (`contact`).
    fn identify_caller(&self, campaign: &Campaign) -> Caller {
        let request = &self.tx.original;
        let pai = request.header_value("P-Asserted-Identity");
        let rpid = request.header_value("Remote-Party-ID");
        let privacy = request.header_value("Privacy");
        let from = request.header_value("From");
        let (raw_user, trust) = trunk::caller_identity(
            IdentityHeaders {
                p_asserted_identity: pai.as_deref(),
                remote_party_id: rpid.as_deref(),
                privacy: privacy.as_deref(),
                from: from.as_deref(),
            },
            self.trunk.is_some(),
        );
        let services = &self.ctx.services;
        let identity = store::identify_caller(raw_user, &campaign.default_region, &services.secret);
        let contact = services
            .contact_key
            .as_ref()
            .and_then(|k| k.seal(raw_user, &campaign.default_region));
        let trust = if matches!(identity, store::CallerIdentity::Withheld) {
            CallerTrust::Withheld
        } else {
            trust
        };
        Caller {
            identity,
            trust,
            contact,
        }
    }

    /// The transport the INVITE came over.
    fn transport(&self) -> rsipstack::sip::Transport {
        self.tx
            .connection
            .as_ref()
            .map(|c| c.transport())
            .unwrap_or(rsipstack::sip::Transport::Udp)
    }

    /// The server side of the call's dialog, with our Contact on the INVITE's transport; 500
    /// when the Contact cannot be built, 400 when the INVITE makes no dialog.
    async fn open_dialog(&mut self) -> Result<InviteDialog, Refused> {
        let contact = our_contact(&self.ctx.config, self.transport());
        let contact = match rsipstack::sip::Uri::try_from(contact.as_str()) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot build Contact");
                return Err(self.refuse(StatusCode::ServerInternalError, vec![]).await);
            }
        };
        let ctx = &self.ctx;
        match ctx.dialogs.get_or_create_server_invite(
            &self.tx,
            ctx.state_tx.clone(),
            None,
            Some(contact),
        ) {
            Ok(dialog) => Ok(dialog),
            Err(e) => {
                debug!(error = %e, "cannot create a dialog");
                Err(self.refuse(StatusCode::BadRequest, vec![]).await)
            }
        }
    }

    /// Enters the call in the call table and the counts, sends 100 Trying and hands the call
    /// to a task of its own (`supervise_call`), which answers and opens its media.
    async fn start_call(
        mut self,
        called: String,
        campaign: Arc<Campaign>,
        caller: Caller,
        (offer, chosen): (sdp::Offer, sdp::Negotiated),
        dialog: InviteDialog,
    ) {
        let ctx = self.ctx.clone();
        let faults = &ctx.config.faults;
        let fault_call = crate::fault::marked(faults.call.as_ref(), &self.tx.original);
        let fault_media = crate::fault::marked(faults.media.as_ref(), &self.tx.original);
        let (events_tx, events_rx) = mpsc::channel(CALL_EVENT_QUEUE);
        if let Ok(mut calls) = ctx.calls.lock() {
            calls.insert(dialog.id(), events_tx);
        }
        // 100 Trying now; the dialog then sees itself past "Calling" and sends no second one.
        if let Err(e) = self.tx.send_trying().await {
            debug!(error = %e, "could not send 100 Trying");
        }
        let setup = CallSetup {
            contact: caller.contact,
            called,
            transport: transport_name(self.transport()),
            ctx: ctx.clone(),
            campaign,
            caller: caller.identity,
            trust: caller.trust,
            from_trunk: self.trunk.is_some(),
            offer,
            chosen,
            dialog,
            events: events_rx,
            fault_call,
            fault_media,
        };
        ctx.stats.calls_in_progress.fetch_add(1, Ordering::Relaxed);
        let counted_trunk = self.trunk.map(|t| t.name);
        if let Some(name) = &counted_trunk {
            ctx.stats.trunk_call_started(name);
        }
        tokio::spawn(supervise_call(
            setup,
            call::InviteSlot::new(self.tx),
            counted_trunk,
        ));
    }
}

/// Our Contact for a dialog on `transport`: the advertised address, and the port we listen
/// on for that transport.
fn our_contact(config: &SipConfig, transport: rsipstack::sip::Transport) -> String {
    let port = match (&transport, &config.edge.tls) {
        (rsipstack::sip::Transport::Tls, Some(t)) => t.listen.port(),
        _ => config.listen.port(),
    };
    let host = uri_host(config.advertise);
    match transport {
        rsipstack::sip::Transport::Udp => format!("sip:belteken@{host}:{port}"),
        other => format!(
            "sip:belteken@{host}:{port};transport={}",
            other.to_string().to_ascii_lowercase()
        ),
    }
}

/// An address as the host of a SIP URI (IPv6 in brackets).
fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    }
}

/// The transport's name in a call's summary.
fn transport_name(transport: rsipstack::sip::Transport) -> &'static str {
    match transport {
        rsipstack::sip::Transport::Udp => "udp",
        rsipstack::sip::Transport::Tcp => "tcp",
        rsipstack::sip::Transport::Tls => "tls",
        _ => "other",
    }
}

/// Runs one call in a task of its own. However it ends, a panic among the ways, the call
/// releases what it held: its entry in the call table, its dialog, the node's and the trunk's
/// call counts (its media stream, RTP socket and media-thread slot go when its `MediaHandle`
/// drops). A call that panicked is ended on the wire: 500 before the answer, BYE after.
async fn supervise_call(setup: CallSetup, invite: call::InviteSlot, counted_trunk: Option<String>) {
    let id = setup.dialog.id();
    let ctx = setup.ctx.clone();
    let dialog = setup.dialog.clone();
    let ran = tokio::spawn(call::run(setup, invite.clone())).await;
    if let Err(e) = ran {
        if e.is_panic() {
            ctx.stats.metrics.panic_contained();
            // The Call-ID only: never the caller's number.
            warn!(call = %id.call_id, "a call panicked: that call ends here");
            call::end_after_panic(&ctx.stats.metrics, &dialog, &invite).await;
        }
    }
    if let Ok(mut calls) = ctx.calls.lock() {
        calls.remove(&id);
    }
    ctx.dialogs.remove_dialog(&id);
    if let Some(name) = &counted_trunk {
        ctx.stats.trunk_call_ended(name);
    }
    ctx.stats.calls_in_progress.fetch_sub(1, Ordering::Relaxed);
}

/// Routes dialog state changes to their call; answers what needs no call. Each change is
/// handled in a task of its own, one after the other (a call's events stay in order): a panic
/// while handling one ends that request, never the dispatcher every call depends on.
async fn dispatch_dialog_states(
    stats: Arc<Stats>,
    mut states: DialogStateReceiver,
    calls: CallMap,
    dialogs: Arc<DialogLayer>,
    fault: Option<String>,
) {
    while let Some(state) = states.recv().await {
        let handled = tokio::spawn(dispatch_dialog_state(
            stats.clone(),
            state,
            calls.clone(),
            dialogs.clone(),
            fault.clone(),
        ))
        .await;
        if handled.as_ref().is_err_and(|e| e.is_panic()) {
            stats.metrics.panic_contained();
            warn!("an in-dialog request's handler panicked: that request ends here");
        }
    }
}

/// Whether a dialog state change carries the injected fault's marker (see `fault`).
fn dialog_fault(fault: Option<&String>, state: &DialogState) -> bool {
    match state {
        DialogState::Updated(_, req, _)
        | DialogState::Info(_, req, _)
        | DialogState::Options(_, req, _) => crate::fault::marked(fault, req),
        _ => false,
    }
}

/// Routes one dialog state change (see `dispatch_dialog_states`).
async fn dispatch_dialog_state(
    stats: Arc<Stats>,
    state: DialogState,
    calls: CallMap,
    dialogs: Arc<DialogLayer>,
    fault: Option<String>,
) {
    if dialog_fault(fault.as_ref(), &state) {
        crate::fault::fire("fault injected: in-dialog request");
    }
    let (id, event) = match state {
        DialogState::Terminated(id, reason) => {
            debug!(?reason, "dialog terminated");
            (id, CallEvent::Terminated)
        }
        DialogState::Updated(id, req, handle) => (id, CallEvent::Offer(req.body, handle)),
        DialogState::Info(id, req, handle) => {
            let digit = call::info_digit(&req.body);
            stats.metrics.response(200);
            let ok = handle.reply(StatusCode::OK).await;
            if ok.is_err() {
                debug!("INFO answer not sent");
            }
            match digit {
                Some(d) => (id, CallEvent::Digit(d)),
                None => return,
            }
        }
        DialogState::Options(_, _, handle) => {
            stats.metrics.response(200);
            let _ = handle
                .respond(
                    StatusCode::OK,
                    Some(vec![Header::Other("Allow".into(), ALLOW.into())]),
                    None,
                )
                .await;
            return;
        }
        DialogState::Refer(_, _, handle)
        | DialogState::Message(_, _, handle)
        | DialogState::Notify(_, _, handle)
        | DialogState::Publish(_, _, handle) => {
            stats.metrics.response(405);
            let _ = handle.reply(StatusCode::MethodNotAllowed).await;
            return;
        }
        DialogState::Confirmed(id, _) => (id, CallEvent::Confirmed),
        _ => return,
    };
    let sender = calls.lock().ok().and_then(|c| c.get(&id).cloned());
    match sender {
        Some(sender) => {
            if sender.send(event).await.is_err() {
                dialogs.remove_dialog(&id);
            }
        }
        None => {
            if let CallEvent::Offer(_, handle) = event {
                stats.metrics.response(481);
                let _ = handle.reply(StatusCode::CallTransactionDoesNotExist).await;
            }
        }
    }
}
