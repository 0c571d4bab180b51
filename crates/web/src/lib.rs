//! The HTTP face of belteken: public campaign pages, the JSON API and the live count over SSE.
//!
//! The router serves counts from the in-memory [`store::CountHub`], never from a database read
//! per request: the binary seeds the hub at start and the SIP channel publishes after each
//! signature. The router binds nothing; the binary serves it on a socket it bound.

// Parsers of what clients send must not panic on any input: no slicing that can fall off a
// string's end or a character boundary, no indexing that can be out of range.
#![warn(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

mod api;
mod chart;
mod client;
mod console;
mod embed;
mod events;
mod html;
mod openapi;
mod pages;
mod serve;
mod stats;

pub use client::{client_ip, AddressKey, IpNet, IpNetError, TrustedProxies};
pub use serve::{
    serve, HttpLimits, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, MAX_BODY_BYTES,
};

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tokio::sync::{watch, Semaphore};

/// The campaigns the pages show: the same list the calls run, so a campaign edited in the
/// console shows its new texts on the next request.
pub use driver::{Campaign, CampaignList, Translation};
/// What adds its figures to `/metrics` (see [`Status::collectors`]).
pub use prometheus_client::collector::Collector;

/// Everything the handlers read. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    pub campaigns: CampaignList,
    pub hub: store::CountHub,
}

impl WebState {
    fn campaign(&self, slug: &str) -> Option<Arc<Campaign>> {
        self.campaigns.get(slug)
    }
}

/// What the rest of the server reports through the web layer: details for `/healthz` and
/// lines for `/metrics`. The binary implements it over the SIP channel's figures.
pub trait Status: Send + Sync + 'static {
    /// Extra fields merged into the `/healthz` JSON object (e.g. trunk registration states).
    /// Public: no error text, nothing a stranger should read.
    fn health(&self) -> serde_json::Map<String, serde_json::Value>;
    /// The same with details for the console's team (e.g. why a registration failed).
    fn detail(&self) -> serde_json::Map<String, serde_json::Value> {
        self.health()
    }
    /// The parts of the server that stopped when they should run as long as it does (e.g.
    /// "sip", "media"): `/healthz` then answers 503 naming them. None: all is well.
    fn stopped(&self) -> Vec<String> {
        Vec::new()
    }
    /// The server's metrics beside the web's own, read at each scrape of `/metrics`.
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        Vec::new()
    }
}

/// Why [`CampaignAdmin`] did not make a change; nothing changed. The text says why, for the
/// person at the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("unknown campaign {0:?}")]
    UnknownCampaign(String),
    /// What was sent cannot be taken as it is (a field, a language, a file).
    #[error("{0}")]
    Refused(String),
    /// The change was acceptable but could not be stored or put in effect.
    #[error("{0}")]
    Failed(String),
}

/// What a campaign team may change from the console. The binary carries it out: it validates,
/// keeps the change in the store (so that it survives a restart and reaches every node) and
/// puts it in effect for the next page view and the next call. The methods block: handlers
/// call them through `spawn_blocking`. An error's text is for the person at the form.
pub trait CampaignAdmin: Send + Sync + 'static {
    /// The editable fields of a campaign as they are now; None for an unknown campaign.
    fn edit_form(&self, slug: &str) -> Option<CampaignEdit>;
    /// Applies an edit made by `actor` (a console user name, for the audit log).
    fn apply_edit(&self, slug: &str, edit: &CampaignEdit, actor: &str) -> Result<(), AdminError>;
    /// The campaign's replaceable audio clips (e.g. "story", "greeting") per language.
    fn clips(&self, slug: &str) -> Vec<ClipInfo>;
    /// Converts uploaded audio (WAV, MP3, OGG or FLAC, as the file came) and puts it in place
    /// of the clip; the next call plays it under a new flow version. `clip` and `language` name
    /// one of [`CampaignAdmin::clips`]. A file that is not audio, is silent, too big (64 MiB)
    /// or too long (10 minutes) is refused with a message saying so, and nothing changes.
    fn upload_clip(
        &self,
        slug: &str,
        clip: &str,
        language: &str,
        data: &[u8],
        actor: &str,
    ) -> Result<ClipInfo, AdminError>;
    /// A clip as callers hear it (8 kHz WAV), for playback in the browser.
    fn clip_wav(&self, slug: &str, clip: &str, language: &str) -> Option<Vec<u8>>;
}

/// A campaign's editable fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CampaignEdit {
    /// Title and transcript per language; the first is the campaign's main language.
    pub texts: Vec<Translation>,
    /// Display number, e.g. "+32 2 000 00 00".
    pub number: Option<String>,
    pub goal: Option<u64>,
    /// When the line opens and closes (RFC 3339 UTC); outside them callers hear the closed
    /// message.
    pub opens: Option<String>,
    pub closes: Option<String>,
}

/// One replaceable audio clip of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipInfo {
    /// The prompt's name in the flow, e.g. "story".
    pub name: String,
    pub language: String,
    pub duration_ms: u64,
    /// The flow version calls get now (it changes with every upload).
    pub flow_version: String,
    /// Whether the clip was uploaded from the console (else it comes from the config).
    pub uploaded: bool,
}

/// Default for [`Options::max_event_streams`].
pub const DEFAULT_MAX_EVENT_STREAMS: usize = 10_000;
/// Default for [`Options::max_event_streams_per_address`].
pub const DEFAULT_MAX_EVENT_STREAMS_PER_ADDRESS: usize = 16;

/// Limits and the shutdown signal for [`router_with`].
#[derive(Clone)]
pub struct Options {
    /// Open SSE streams at most, over all campaigns; one more gets 503 with `Retry-After`.
    pub max_event_streams: usize,
    /// Open SSE streams at most from one client address (an IPv6 client: its /64); one more
    /// gets 429 with `Retry-After`, so that one client cannot take every stream.
    pub max_event_streams_per_address: usize,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client (for the
    /// per-address limits); empty: the socket's peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// When this turns `true` (or its sender is dropped) every open SSE stream ends, so that a
    /// graceful shutdown of the server does not wait forever on pages left open.
    pub shutdown: Option<watch::Receiver<bool>>,
    /// The rest of the server's figures, for `/healthz` and `/metrics`.
    pub status: Option<Arc<dyn Status>>,
    /// The registry, for what is not served from the count hub (statistics, the console).
    /// Its methods block: handlers call them through `spawn_blocking`.
    pub store: Option<Arc<dyn store::Store>>,
    /// Campaign editing from the console.
    pub admin: Option<Arc<dyn CampaignAdmin>>,
    /// The address the public reaches this server at, e.g. "https://sign.example.org"
    /// (no trailing slash), for Open Graph tags and the embed snippet; None: relative links.
    pub public_url: Option<String>,
    /// The caller key, for erasure by phone number from the console.
    pub secret: Option<store::Secret>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("max_event_streams", &self.max_event_streams)
            .field(
                "max_event_streams_per_address",
                &self.max_event_streams_per_address,
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("shutdown", &self.shutdown.is_some())
            .field("status", &self.status.is_some())
            .field("store", &self.store.is_some())
            .field("admin", &self.admin.is_some())
            .field("public_url", &self.public_url)
            .field("secret", &self.secret.is_some())
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_event_streams: DEFAULT_MAX_EVENT_STREAMS,
            max_event_streams_per_address: DEFAULT_MAX_EVENT_STREAMS_PER_ADDRESS,
            trusted_proxies: TrustedProxies::default(),
            shutdown: None,
            status: None,
            store: None,
            admin: None,
            public_url: None,
            secret: None,
        }
    }
}

/// The state each handler gets: the public state plus the limits.
#[derive(Clone)]
struct AppState {
    web: WebState,
    event_streams: Arc<Semaphore>,
    max_event_streams: usize,
    /// Open SSE streams per client address.
    streams_by_address: events::PerAddress,
    trusted_proxies: TrustedProxies,
    shutdown: Option<watch::Receiver<bool>>,
    status: Option<Arc<dyn Status>>,
    store: Option<Arc<dyn store::Store>>,
    admin: Option<Arc<dyn CampaignAdmin>>,
    /// Page statistics, filled by a background task when there is a store.
    stats: stats::StatsCache,
    public_url: Option<String>,
    secret: Option<store::Secret>,
}

/// The whole HTTP surface with default [`Options`] (no shutdown signal).
pub fn router(state: WebState) -> Router {
    router_with(state, Options::default())
}

/// The whole HTTP surface; the README lists the routes.
pub fn router_with(state: WebState, options: Options) -> Router {
    let permits = options.max_event_streams.min(Semaphore::MAX_PERMITS);
    let app = AppState {
        web: state,
        event_streams: Arc::new(Semaphore::new(permits)),
        max_event_streams: permits,
        streams_by_address: events::PerAddress::new(options.max_event_streams_per_address),
        trusted_proxies: options.trusted_proxies,
        shutdown: options.shutdown,
        status: options.status,
        store: options.store,
        admin: options.admin,
        stats: stats::StatsCache::default(),
        public_url: options.public_url,
        secret: options.secret,
    };
    // The page statistics come from the store in the background (needs a Tokio runtime).
    if let (Some(store), Ok(runtime)) = (&app.store, tokio::runtime::Handle::try_current()) {
        runtime.spawn(stats::run(
            app.stats.clone(),
            store.clone(),
            app.web.campaigns.clone(),
            app.web.hub.clone(),
            app.shutdown.clone(),
        ));
    }
    // The JSON API, health and metrics: mounted from the table `/api/openapi.json` documents.
    let mut routes = Router::new();
    for (doc, handler) in api::routes() {
        routes = routes.route(doc.path, handler);
    }
    routes
        .route("/", get(pages::index))
        .route("/c/{slug}", get(pages::campaign))
        .route("/static/live.js", get(pages::live_js))
        .route("/static/style.css", get(pages::style_css))
        .route("/static/embed.js", get(embed::script))
        .route("/embed/{slug}", get(embed::page))
        .merge(console::routes(app.clone()))
        .fallback(pages::fallback)
        .layer(axum::middleware::from_fn(catch_panic))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// Middleware: a handler that panics answers its own request with a bare 500, and nothing
/// else is touched (without it the connection would close with no answer). The binary also
/// puts it around the routes it adds (the provider webhooks).
pub async fn catch_panic(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::response::IntoResponse as _;
    use futures_util::FutureExt as _;
    let method = request.method().clone();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(_) => {
            // The method alone: a path or query may hold personal data.
            tracing::warn!(%method, "an HTTP handler panicked: that request ends here (500)");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CACHE_CONTROL, "no-store")],
                "internal error\n",
            )
                .into_response()
        }
    }
}

/// The CSS is served as a file, so no inline style or script is allowed anywhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/// Added to every response, including errors and the fallback. A response that set its own
/// policy keeps it; only the embeddable counter's policy lets other sites frame it.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    let framable = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .is_some_and(|v| v == embed::EMBED_CONTENT_SECURITY_POLICY);
    if !framable {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
