//! Cloud telephony: the same campaigns and flows through provider webhooks (Twilio, Telnyx
//! TeXML, Vonage NCCO), next to the native SIP channel.
//!
//! Each webhook is one input to the call's [`flow::engine::Engine`]. The call's state between
//! webhooks lives in the store ([`store::Calls::save_call`]), so any node can answer the next
//! one: the facts the call started with and its input log (inputs with their offset in ms from
//! the call's start). A webhook rebuilds the engine by replaying the log (the engine is
//! deterministic and sans-IO), feeds the new input, carries out the actions (sign, withdraw)
//! and answers with TwiML for what the caller must hear or do next.

// Webhook bodies (forms, JSON, JWTs) and URLs are untrusted input: no indexing or slicing
// that could panic on them; tests may index what they built themselves.
#![warn(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

mod call;
pub mod fetch;
#[doc(hidden)]
pub mod fuzzing;
mod ncco;
pub mod sig;
mod twiml;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;

pub use call::{CallRecord, CALL_STATE_TTL};

use driver::{Campaign, CampaignList};

/// Twilio account settings.
#[derive(Clone)]
pub struct TwilioAccount {
    /// Account SID: the user name for the REST API; requests must name it.
    pub account_sid: String,
    /// Signs the webhooks (HMAC-SHA1) and is the password for the REST API.
    pub auth_token: String,
    /// The REST API base, `https://api.twilio.com`.
    pub api_base: String,
    /// Delete Twilio's copy of a recording once the signature is stored.
    pub delete_recordings: bool,
    /// Where recordings may be fetched from (and the credentials sent): Twilio's hosts and
    /// `api_base`'s.
    pub fetch_hosts: fetch::HostList,
}

impl std::fmt::Debug for TwilioAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioAccount")
            .field("account_sid", &self.account_sid)
            .field("api_base", &self.api_base)
            .field("delete_recordings", &self.delete_recordings)
            .field("fetch_hosts", &self.fetch_hosts)
            .finish_non_exhaustive()
    }
}

/// Telnyx (TeXML) account settings.
#[derive(Clone)]
pub struct TelnyxAccount {
    /// The account's Ed25519 public key (base64), from the portal.
    pub public_key: String,
    /// API key (v2, a bearer token): deletes recordings.
    pub api_key: Option<String>,
    /// The REST API base, `https://api.telnyx.com`.
    pub api_base: String,
    /// Delete Telnyx's copy of a recording once the signature is stored.
    pub delete_recordings: bool,
    /// How far `telnyx-timestamp` may be from the clock.
    pub timestamp_tolerance: Duration,
    /// Where recordings may be fetched from: Telnyx's API and the storage its pre-signed links
    /// point at, and `api_base`'s host. The API key only ever goes to `api_base`.
    pub fetch_hosts: fetch::HostList,
}

impl std::fmt::Debug for TelnyxAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelnyxAccount")
            .field("public_key", &self.public_key)
            .field("api_base", &self.api_base)
            .field("delete_recordings", &self.delete_recordings)
            .field("fetch_hosts", &self.fetch_hosts)
            .finish_non_exhaustive()
    }
}

/// Vonage (Voice API application) settings.
#[derive(Clone)]
pub struct VonageAccount {
    /// The application's id: the JWTs for the API name it.
    pub application_id: String,
    /// The application's private key: signs the API JWTs (RS256) that fetch recordings.
    pub private_key: Arc<sig::RsaSigner>,
    /// The account's signature secret: signed webhooks are HS256 JWTs with it.
    pub signature_secret: String,
    /// The API base, `https://api.nexmo.com`.
    pub api_base: String,
    /// Delete Vonage's copy of a recording once the signature is stored.
    pub delete_recordings: bool,
    /// How old a webhook JWT's `iat` may be (and how long its `jti` is remembered).
    pub jwt_tolerance: Duration,
    /// Where recordings may be fetched from and deleted (and the application JWT sent):
    /// Vonage's API hosts and `api_base`'s.
    pub fetch_hosts: fetch::HostList,
    /// The webhook JWTs seen lately (`jti`), refused when they come again.
    pub seen_tokens: Arc<sig::SeenTokens>,
}

impl std::fmt::Debug for VonageAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VonageAccount")
            .field("application_id", &self.application_id)
            .field("api_base", &self.api_base)
            .field("delete_recordings", &self.delete_recordings)
            .field("fetch_hosts", &self.fetch_hosts)
            .finish_non_exhaustive()
    }
}

/// Everything the webhook handlers need.
#[derive(Clone)]
pub struct CloudState {
    /// The public base URL the provider calls (scheme, host, optional path prefix, no trailing
    /// slash), e.g. `https://line.example.org`; signatures are computed over it, so it must be
    /// exactly what the provider's console holds (also behind a reverse proxy).
    pub public_url: String,
    /// The campaigns the webhooks serve, replaceable while the server runs (shared with the
    /// SIP channel and the pages): an edit made in the console reaches the next webhook. Edits
    /// change texts and audio clips, never the flow's steps, so a call in progress replays its
    /// inputs over the same steps; its next prompts come from the new audio and its signature
    /// carries the flow version in effect when it signs.
    pub campaigns: CampaignList,
    pub store: Arc<dyn store::Store>,
    pub hub: store::CountHub,
    pub secret: Arc<store::Secret>,
    pub twilio: Option<TwilioAccount>,
    pub telnyx: Option<TelnyxAccount>,
    pub vonage: Option<VonageAccount>,
    /// Longest call, after which the state expires.
    pub max_call: Duration,
    /// Fetch attempts for a recording, and the first pause between them.
    pub fetch_attempts: u32,
    pub fetch_pause: Duration,
    /// The client for the providers' APIs (recordings), with its trust roots.
    pub http: fetch::Client,
    /// Where each call's funnel summary goes when its flow ends (the console's funnel).
    pub summaries: Option<store::CallSummaries>,
}

impl CloudState {
    fn campaign_by_did(&self, to: &str) -> Option<Arc<Campaign>> {
        self.campaigns.find(to.trim(), |did, to| did == to)
    }

    /// The store and the live count, as the call driver uses them.
    fn petition(&self) -> driver::Petition {
        driver::Petition {
            store: self.store.clone(),
            hub: self.hub.clone(),
        }
    }

    fn campaign(&self, slug: &str) -> Option<Arc<Campaign>> {
        self.campaigns.get(slug)
    }
}

/// Where each provider's recordings are fetched from by default (see [`fetch::HostList`]):
/// Twilio serves them from its REST API; Telnyx's `RecordingUrl` is a pre-signed link to its
/// storage on Amazon S3 (no credentials go there); Vonage's `recording_url` is on its API,
/// global or regional (`api-us-1.vonage.com`, `api-eu-3.vonage.com`).
pub const TWILIO_FETCH_HOSTS: &[&str] = &["api.twilio.com"];
pub const TELNYX_FETCH_HOSTS: &[&str] = &["api.telnyx.com", "s3.amazonaws.com"];
pub const VONAGE_FETCH_HOSTS: &[&str] = &[
    "api.nexmo.com",
    "api-*.nexmo.com",
    "api.vonage.com",
    "api-*.vonage.com",
];

/// Largest webhook body accepted, in bytes (Twilio's forms are a few hundred bytes).
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// The webhook routes; merge them into the web router.
pub fn router(state: CloudState) -> Router {
    call::webhook_routes()
        .route(
            "/hooks/prompts/{slug}/{kind}/{lang}/{file}",
            get(call::prompt_wav),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
        .with_state(state)
}
