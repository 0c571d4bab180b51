//! One provider call across its webhooks: authenticate, load the call's state, replay its
//! input log into a fresh engine, feed the new input, carry out the actions, answer TwiML.

use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{routing, Router};
use base64::Engine as _;
use driver::Driver;
use flow::engine::{CallFacts, Input, PromptRef, SignResult};
use flow::Lang;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tracing::{info, warn};

use driver::Campaign;

use crate::twiml::{self, Next};
use crate::CloudState;

/// How long a call's state outlives `max_call` (late status callbacks still find it).
pub const CALL_STATE_TTL: Duration = Duration::from_secs(600);
/// Times a webhook is retried when another node changed the call meanwhile.
const SAVE_RETRIES: usize = 4;
/// Pauses (of 2 s) the caller waits for a recording the provider has not made available yet.
const MAX_AWAITS: u32 = 5;

/// How much earlier than the flow's timer a provider's wait may end and still count as it.
const EARLY_WAKE_MS: u64 = 1500;

/// Caller IDs the providers send for a withheld number.
const WITHHELD: &[&str] = &[
    "anonymous",
    "restricted",
    "private",
    "unknown",
    "unavailable",
    "+266696687",
    "+86282452253",
    "+7378742833",
    "+2562533",
    "+8656696",
];

/// Whether a provider's `From` is a withheld number.
pub fn is_withheld(from: &str) -> bool {
    let f = from.trim();
    let f = f.strip_prefix("sip:").unwrap_or(f);
    let user = f.split('@').next().unwrap_or(f);
    user.is_empty() || WITHHELD.iter().any(|w| user.eq_ignore_ascii_case(w))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t")]
enum LoggedInput {
    Answered,
    Digit { d: char },
    PromptFinished,
    RecordingFinished { speech_ms: u64, length_ms: u64 },
    Signed { r: u8, n: u64 },
    Withdrawn { ok: bool },
    TransferResult { ok: bool },
    Timer,
    Hangup,
}

impl LoggedInput {
    fn input(self) -> Input {
        match self {
            LoggedInput::Answered => Input::Answered,
            LoggedInput::Digit { d } => Input::Digit(d),
            LoggedInput::PromptFinished => Input::PromptFinished,
            LoggedInput::RecordingFinished {
                speech_ms,
                length_ms,
            } => Input::RecordingFinished {
                speech: Duration::from_millis(speech_ms),
                length: Duration::from_millis(length_ms),
            },
            LoggedInput::Signed { r, n } => Input::Signed(match r {
                0 => SignResult::Counted { number: n },
                1 => SignResult::AlreadySigned,
                2 => SignResult::Unverified,
                _ => SignResult::Failed,
            }),
            LoggedInput::Withdrawn { ok } => Input::Withdrawn(ok),
            LoggedInput::TransferResult { ok } => Input::TransferResult(ok),
            LoggedInput::Timer => Input::Timer,
            LoggedInput::Hangup => Input::Hangup,
        }
    }

    fn signed(r: SignResult) -> LoggedInput {
        match r {
            SignResult::Counted { number } => LoggedInput::Signed { r: 0, n: number },
            SignResult::AlreadySigned => LoggedInput::Signed { r: 1, n: 0 },
            SignResult::Unverified => LoggedInput::Signed { r: 2, n: 0 },
            SignResult::Failed => LoggedInput::Signed { r: 3, n: 0 },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Facts {
    already_signed: bool,
    anonymous: bool,
    outside_dates: bool,
    language: Option<String>,
    count: u64,
}

/// A recording fetched from the provider, kept until the flow takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Take {
    wav_b64: String,
    speech_ms: u64,
    length_ms: u64,
    /// The provider's name of the recording (deleted there once the signature is stored).
    #[serde(default)]
    sid: Option<String>,
    /// The provider account it belongs to (Telnyx's `AccountSid`).
    #[serde(default)]
    account: Option<String>,
    /// Where it was fetched (Vonage deletes the file at the same URL).
    #[serde(default)]
    url: Option<String>,
}

/// A provider copy of a recording to delete, once the call's state is saved.
#[derive(Debug, Clone)]
struct Deletion {
    sid: String,
    account: Option<String>,
    url: Option<String>,
}

/// What the store keeps of a call between webhooks (JSON). No phone number: the caller is
/// identified again from each webhook's `From`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallRecord {
    provider: String,
    slug: String,
    started_unix_ms: u64,
    facts: Facts,
    /// The inputs so far, with their offset from the start in ms.
    log: Vec<(u64, LoggedInput)>,
    /// The last answer, sent again for a repeated (retried or replayed) webhook.
    last_answer: String,
    /// A `<Record>` is out and its recording not yet given to the flow.
    recording_open: bool,
    recording_url: Option<String>,
    fetched: Option<Take>,
    take: Option<Take>,
    awaits: u32,
    hung_up: bool,
    /// A webhook has claimed the call's signature (saved before it signs) and its result is
    /// not in the log yet: no other webhook signs meanwhile, whatever the concurrency.
    #[serde(default)]
    signing: bool,
    /// Provider copies this webhook is done with (not stored: carried out after the save).
    #[serde(skip)]
    deletes: Vec<Deletion>,
    /// The call's funnel summary has been made (once, by the webhook whose save ended it).
    #[serde(default)]
    summarized: bool,
    /// The summary this webhook made (not stored: recorded after the save).
    #[serde(skip)]
    summary: Option<store::CallSummary>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Which provider a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Twilio,
    Telnyx,
    Vonage,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Twilio => "twilio",
            Provider::Telnyx => "telnyx",
            Provider::Vonage => "vonage",
        }
    }

    fn from_name(name: &str) -> Provider {
        match name {
            "telnyx" => Provider::Telnyx,
            "vonage" => Provider::Vonage,
            _ => Provider::Twilio,
        }
    }

    /// The answer in this provider's language.
    fn render(self, next: &Next) -> String {
        match self {
            Provider::Twilio => twiml::render_for(next, twiml::Dialect::Twilio),
            Provider::Telnyx => twiml::render_for(next, twiml::Dialect::Telnyx),
            Provider::Vonage => crate::ncco::render(next),
        }
    }

    /// The path of the webhook that the answers' callbacks go to.
    fn callback_path(self) -> &'static str {
        match self {
            Provider::Twilio => "/hooks/twilio/voice",
            Provider::Telnyx => "/hooks/telnyx/voice",
            Provider::Vonage => "/hooks/vonage/event",
        }
    }

    fn recording_path(self) -> &'static str {
        match self {
            Provider::Twilio => "/hooks/twilio/recording",
            Provider::Telnyx => "/hooks/telnyx/recording",
            Provider::Vonage => "/hooks/vonage/event",
        }
    }

    /// The `ev` of the recording callback, for a provider with one URL for all events.
    fn recording_event(self) -> Option<&'static str> {
        match self {
            Provider::Vonage => Some("recording"),
            Provider::Twilio | Provider::Telnyx => None,
        }
    }
}

/// Which webhook this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    Voice,
    Status,
    Recording,
}

struct Request {
    provider: Provider,
    hook: Hook,
    /// `ev` and `seq` from the query string (our own callback URLs).
    ev: String,
    seq: Option<usize>,
    params: Vec<(String, String)>,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The tag of the state our callback URLs carry (`ev`, `seq`), bound to the call: base64url
/// of the first 16 bytes of HMAC-SHA256 with a key derived from the installation secret, so
/// that every node sharing the secret checks it (a new secret after a rotation makes the
/// calls in progress at the restart end early).
fn state_tag(state: &CloudState, call_id: &str, ev: &str, seq: Option<usize>) -> String {
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &state.secret.derive_key("belteken cloud callback state"),
    );
    let seq = seq.map(|s| s.to_string()).unwrap_or_default();
    let mac = ring::hmac::sign(&key, format!("{call_id}\n{ev}\n{seq}").as_bytes());
    let bytes = mac.as_ref();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.get(..16).unwrap_or(bytes))
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "forbidden\n").into_response()
}

fn answer(provider: Provider, body: String) -> Response {
    let ctype = match provider {
        Provider::Vonage => "application/json",
        Provider::Twilio | Provider::Telnyx => "application/xml; charset=utf-8",
    };
    ([(header::CONTENT_TYPE, ctype)], body).into_response()
}

/// Vonage's JSON (or, for a GET answer webhook, query) fields under the names the rest of
/// this module uses (Twilio's): `conversation_uuid` is the call (every event carries it),
/// numbers get their `+` (Vonage sends `447700900000`), `dtmf.digits`, `recording_url`,
/// `recording_uuid`, and the caller's leg's terminal `status`. `None`: not a Vonage request.
pub(crate) fn vonage_params(body: &[u8], query: &str, ev: &str) -> Option<Vec<(String, String)>> {
    let fields: Vec<(String, serde_json::Value)> = if body.is_empty() {
        form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect()
    } else {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
            _ => return None,
        }
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    };
    let number = |n: String| {
        if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) {
            format!("+{n}")
        } else {
            n
        }
    };
    let mut out = Vec::new();
    if let Some(c) = get("conversation_uuid") {
        out.push(("CallSid".to_string(), c));
    }
    if let Some(f) = get("from") {
        out.push(("From".to_string(), number(f)));
    }
    if let Some(t) = get("to") {
        out.push(("To".to_string(), number(t)));
    }
    if let Some(serde_json::Value::Object(dtmf)) =
        fields.iter().find(|(k, _)| k == "dtmf").map(|(_, v)| v)
    {
        if let Some(serde_json::Value::String(d)) = dtmf.get("digits") {
            out.push(("Digits".to_string(), d.clone()));
        }
    }
    if let Some(u) = get("recording_url") {
        out.push(("RecordingUrl".to_string(), u));
    }
    if let Some(u) = get("recording_uuid") {
        out.push(("RecordingSid".to_string(), u));
    }
    let status = get("status").unwrap_or_default();
    let inbound = get("direction").is_none_or(|d| d == "inbound");
    match ev {
        // The helpline leg's events (connect's synchronous eventUrl).
        "dial" => {
            let s = match status.as_str() {
                "completed" => "completed",
                "failed" | "rejected" | "busy" | "timeout" | "unanswered" | "cancelled" => "failed",
                _ => "",
            };
            out.push(("DialCallStatus".to_string(), s.to_string()));
        }
        // The caller's own leg (the other leg's events come to the same URL).
        "" if inbound => {
            let s = match status.as_str() {
                "completed" => Some("completed"),
                "busy" => Some("busy"),
                "failed" | "rejected" => Some("failed"),
                "timeout" | "unanswered" => Some("no-answer"),
                "cancelled" => Some("canceled"),
                _ => None,
            };
            if let Some(s) = s {
                out.push(("CallStatus".to_string(), s.to_string()));
            }
        }
        _ => {}
    }
    Some(out)
}

/// Authenticates the request; `None` when it must be refused (403).
fn authenticate(
    state: &CloudState,
    provider: Provider,
    hook: Hook,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Request> {
    let query = uri.query().unwrap_or("");
    let mut params: Vec<(String, String)> = match provider {
        Provider::Vonage => Vec::new(),
        Provider::Twilio | Provider::Telnyx => form_urlencoded::parse(body).into_owned().collect(),
    };
    let ok = match provider {
        Provider::Twilio => {
            let Some(account) = &state.twilio else {
                return None;
            };
            let mut url = format!("{}{}", state.public_url, uri.path());
            if !query.is_empty() {
                url.push('?');
                url.push_str(query);
            }
            let signature = headers
                .get("x-twilio-signature")
                .and_then(|v| v.to_str().ok());
            let valid = crate::sig::twilio_valid(&account.auth_token, &url, &params, signature);
            let account_ok = params
                .iter()
                .find(|(k, _)| k == "AccountSid")
                .is_none_or(|(_, v)| *v == account.account_sid);
            valid && account_ok
        }
        Provider::Telnyx => {
            let Some(account) = &state.telnyx else {
                return None;
            };
            let now = unix_ms(SystemTime::now()) / 1000;
            crate::sig::telnyx_valid(
                &account.public_key,
                headers
                    .get("telnyx-signature-ed25519")
                    .and_then(|v| v.to_str().ok()),
                headers
                    .get("telnyx-timestamp")
                    .and_then(|v| v.to_str().ok()),
                body,
                now,
                account.timestamp_tolerance.as_secs(),
            )
        }
        Provider::Vonage => {
            let Some(account) = &state.vonage else {
                return None;
            };
            let now = unix_ms(SystemTime::now()) / 1000;
            let check = crate::sig::VonageCheck {
                secret: &account.signature_secret,
                application_id: &account.application_id,
                tolerance_secs: account.jwt_tolerance.as_secs(),
                seen: &account.seen_tokens,
            };
            crate::sig::vonage_valid(
                &check,
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok()),
                body,
                now,
            )
        }
    };
    if !ok {
        warn!(
            provider = provider.name(),
            path = uri.path(),
            "webhook refused: bad signature"
        );
        return None;
    }
    let mut ev = String::new();
    let mut seq = None;
    let mut tag = None;
    let mut state_given = false;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "ev" => {
                ev = v.into_owned();
                state_given = true;
            }
            "seq" => {
                seq = v.parse().ok();
                state_given = true;
            }
            "t" => tag = Some(v.into_owned()),
            _ => {}
        }
    }
    let mut hook = hook;
    if provider == Provider::Vonage {
        params = vonage_params(body, query, &ev)?;
    }
    // `ev` and `seq` come from the callback URLs of our own answers, which the providers do
    // not sign (Telnyx and Vonage sign the body only): they count only with our tag.
    if state_given {
        let call_sid = params
            .iter()
            .find(|(k, _)| k == "CallSid")
            .map_or("", |(_, v)| v.as_str());
        let call_id = format!("{}:{call_sid}", provider.name());
        let want = state_tag(state, &call_id, &ev, seq);
        if !tag.is_some_and(|t| bool::from(t.as_bytes().ct_eq(want.as_bytes()))) {
            warn!(
                provider = provider.name(),
                path = uri.path(),
                "webhook refused: callback state without our tag"
            );
            return None;
        }
    }
    if provider == Provider::Vonage {
        // One event URL for everything: the call's own events, and the callbacks of the
        // answers (`ev`), the recording's among them.
        if hook == Hook::Status {
            hook = match ev.as_str() {
                "" => Hook::Status,
                "recording" => Hook::Recording,
                _ => Hook::Voice,
            };
        }
    }
    Some(Request {
        provider,
        hook,
        ev,
        seq,
        params,
    })
}

async fn handle(
    state: CloudState,
    provider: Provider,
    hook: Hook,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Authentication comes before anything else: nothing is read or written for a bad one.
    let Some(req) = authenticate(&state, provider, hook, &uri, &headers, &body) else {
        return forbidden();
    };
    // The helpline leg ringing or answering changes nothing yet.
    if req.ev == "dial" && req.param("DialCallStatus") == Some("") {
        return StatusCode::NO_CONTENT.into_response();
    }
    let Some(call_sid) = req.param("CallSid").map(str::to_owned) else {
        return (StatusCode::BAD_REQUEST, "no CallSid\n").into_response();
    };
    if call_sid.is_empty() || call_sid.len() > 100 {
        return (StatusCode::BAD_REQUEST, "bad CallSid\n").into_response();
    }
    let call_id = format!("{}:{call_sid}", provider.name());
    // A recording the provider says is ready (or that the Record action names) is fetched
    // here, before the state is loaded: the fetch may take seconds.
    let fetched = if needs_fetch(&req) {
        fetch_recording(&state, &req).await
    } else {
        None
    };
    let st = state.clone();
    let result = tokio::task::spawn_blocking(move || process(&st, &req, &call_id, fetched)).await;
    let result = result.map(|r| {
        r.map(|(answer, deletes)| {
            for d in deletes {
                tokio::spawn(delete_recording(state.clone(), provider, d));
            }
            answer
        })
    });
    match result {
        Ok(Ok(Some(body))) => answer(provider, body),
        Ok(Ok(None)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => {
            warn!(error = %e, "webhook failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn needs_fetch(req: &Request) -> bool {
    match req.hook {
        Hook::Recording => req
            .param("RecordingStatus")
            .is_none_or(|s| s == "completed"),
        Hook::Voice => req.ev == "record" || req.ev == "await",
        Hook::Status => false,
    }
}

async fn fetch_recording(state: &CloudState, req: &Request) -> Option<Take> {
    let url = req.param("RecordingUrl")?;
    if url.is_empty() {
        return None;
    }
    // Twilio serves the recording as WAV at the URL with `.wav`.
    let url = if req.provider == Provider::Twilio && !url.ends_with(".wav") {
        format!("{url}.wav")
    } else {
        url.to_string()
    };
    // Twilio serves recordings with the account's credentials; Telnyx's RecordingUrl is a
    // pre-signed link (the API key only goes to Telnyx's own API); Vonage's wants an
    // application JWT. Each only to the provider's own hosts (the client checks every hop).
    let vonage_jwt;
    let (auth, hosts) = match req.provider {
        Provider::Twilio => {
            let a = state.twilio.as_ref()?;
            (
                crate::fetch::Auth::Basic(a.account_sid.as_str(), a.auth_token.as_str()),
                &a.fetch_hosts,
            )
        }
        Provider::Telnyx => {
            let a = state.telnyx.as_ref()?;
            let auth = match &a.api_key {
                Some(key) if url.starts_with(&format!("{}/", a.api_base)) => {
                    crate::fetch::Auth::Bearer(key.as_str())
                }
                _ => crate::fetch::Auth::None,
            };
            (auth, &a.fetch_hosts)
        }
        Provider::Vonage => {
            let a = state.vonage.as_ref()?;
            vonage_jwt = vonage_jwt_for(a, &url);
            let auth = match &vonage_jwt {
                Some(jwt) => crate::fetch::Auth::Bearer(jwt.as_str()),
                None => crate::fetch::Auth::None,
            };
            (auth, &a.fetch_hosts)
        }
    };
    let attempts = if req.ev == "await" {
        1
    } else {
        state.fetch_attempts
    };
    let bytes = match state
        .http
        .request(
            crate::fetch::Method::Get,
            &url,
            auth,
            hosts,
            attempts,
            state.fetch_pause,
        )
        .await
    {
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "recording not fetched");
            return None;
        }
    };
    let sid = req
        .param("RecordingSid")
        .filter(|s| valid_sid(s))
        .map(str::to_owned);
    let account = req
        .param("AccountSid")
        .filter(|s| valid_sid(s))
        .map(str::to_owned);
    let mut take = tokio::task::spawn_blocking(move || take_of(&bytes))
        .await
        .ok()
        .flatten()?;
    take.sid = sid;
    take.account = account;
    take.url = Some(url);
    Some(take)
}

/// The application JWT for a Vonage API URL: only for an `https://` URL on the account's
/// hosts (Vonage's and `api_base`'s), never for another.
fn vonage_jwt_for(a: &crate::VonageAccount, url: &str) -> Option<String> {
    let host = crate::fetch::host_of(url)?;
    if !(url.starts_with("https://") && a.fetch_hosts.allows(&host)) {
        return None;
    }
    a.private_key
        .vonage_jwt(&a.application_id, unix_ms(SystemTime::now()) / 1000)
}

/// Whether a provider's id (recording SID, account SID, UUID) is safe to put in a URL path.
fn valid_sid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Deletes the provider's copy of a recording, retried a bounded number of times; failures are
/// logged (with the provider and the error, nothing about the caller).
async fn delete_recording(state: CloudState, provider: Provider, d: Deletion) {
    use crate::fetch::{Auth, FetchError, Method};
    let jwt;
    let (url, auth, hosts) = match provider {
        Provider::Vonage => {
            let Some(a) = state.vonage.as_ref().filter(|a| a.delete_recordings) else {
                return;
            };
            let Some(url) = d.url.clone() else {
                return;
            };
            let Some(token) = vonage_jwt_for(a, &url) else {
                warn!(
                    provider = provider.name(),
                    "recording not deleted at the provider: not a Vonage URL"
                );
                return;
            };
            jwt = token;
            (url, Auth::Bearer(jwt.as_str()), &a.fetch_hosts)
        }
        Provider::Twilio => {
            let Some(a) = state.twilio.as_ref().filter(|a| a.delete_recordings) else {
                return;
            };
            (
                format!(
                    "{}/2010-04-01/Accounts/{}/Recordings/{}.json",
                    a.api_base, a.account_sid, d.sid
                ),
                Auth::Basic(a.account_sid.as_str(), a.auth_token.as_str()),
                &a.fetch_hosts,
            )
        }
        Provider::Telnyx => {
            let Some(a) = state.telnyx.as_ref().filter(|a| a.delete_recordings) else {
                return;
            };
            let (Some(key), Some(account)) = (a.api_key.as_deref(), d.account.as_deref()) else {
                warn!(
                    provider = provider.name(),
                    "recording not deleted at the provider: no API key or account"
                );
                return;
            };
            (
                format!(
                    "{}/v2/texml/Accounts/{account}/Recordings/{}.json",
                    a.api_base, d.sid
                ),
                Auth::Bearer(key),
                &a.fetch_hosts,
            )
        }
    };
    match state
        .http
        .request(
            Method::Delete,
            &url,
            auth,
            hosts,
            state.fetch_attempts,
            state.fetch_pause,
        )
        .await
    {
        // Gone already (a retried delete, or deleted by hand) is as good.
        Ok(_) | Err(FetchError::Status(404)) => {
            info!(
                provider = provider.name(),
                "provider's copy of the recording deleted"
            );
        }
        Err(e) => {
            warn!(provider = provider.name(), error = %e, "provider's copy of the recording not deleted");
        }
    }
}

/// Converts a fetched recording to the stored form (8 kHz 16-bit WAV, like a native one)
/// and measures its speech.
fn take_of(bytes: &[u8]) -> Option<Take> {
    let mut samples = match media::audio::decode_wav_bytes(bytes) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "recording is not a WAV");
            return None;
        }
    };
    let max_samples = (store::MAX_RECORDING_BYTES - media::wav::WAV_HEADER_LEN) / 2;
    samples.truncate(max_samples);
    let samples = samples.as_slice();
    let start = Instant::now();
    let limits = media::recorder::RecorderLimits {
        max: Duration::from_secs(3600),
        silence_end: Duration::from_secs(3600),
        initial_silence: Duration::from_secs(3600),
    };
    let mut rec = media::recorder::Recorder::new(limits, start);
    for (i, frame) in samples.chunks(160).enumerate() {
        rec.push(start + Duration::from_millis(20 * i as u64), frame);
    }
    let wav = media::wav::pcm16_mono(samples, 8000);
    Some(Take {
        wav_b64: base64::engine::general_purpose::STANDARD.encode(wav),
        speech_ms: u64::try_from(rec.speech().as_millis()).unwrap_or(u64::MAX),
        length_ms: samples.len() as u64 / 8,
        sid: None,
        account: None,
        url: None,
    })
}

/// The outcome of one webhook: the answer, or none (204).
fn process(
    state: &CloudState,
    req: &Request,
    call_id: &str,
    fetched: Option<Take>,
) -> Result<(Option<String>, Vec<Deletion>), store::StoreError> {
    let mut deletes = Vec::new();
    let answer = process_state(state, req, call_id, fetched, &mut deletes)?;
    Ok((answer, deletes))
}

fn process_state(
    state: &CloudState,
    req: &Request,
    call_id: &str,
    fetched: Option<Take>,
    deletes: &mut Vec<Deletion>,
) -> Result<Option<String>, store::StoreError> {
    let mut saved = None;
    for _ in 0..SAVE_RETRIES {
        let now = SystemTime::now();
        let loaded = state.store.load_call(call_id, now)?;
        let (version, mut rec) = match loaded {
            Some(s) => match serde_json::from_slice::<CallRecord>(&s.data) {
                Ok(r) => (s.version, r),
                Err(_) => return Ok(Some(req.provider.render(&Next::Hangup))),
            },
            None => {
                if req.hook != Hook::Voice || !req.ev.is_empty() {
                    // Unknown or expired call.
                    return Ok(match req.hook {
                        Hook::Voice => Some(req.provider.render(&Next::Hangup)),
                        _ => None,
                    });
                }
                match new_record(state, req, now) {
                    Some(r) => (0, r),
                    None => {
                        info!(provider = req.provider.name(), "call to an unknown number");
                        return Ok(Some(req.provider.render(&Next::Hangup)));
                    }
                }
            }
        };
        let Some(campaign) = state.campaign(&rec.slug) else {
            return Ok(Some(req.provider.render(&Next::Hangup)));
        };
        // A repeated webhook (the provider retried, or someone replays a signed request)
        // gets the same answer and changes nothing.
        if req.hook == Hook::Voice {
            let repeated = if req.ev.is_empty() {
                version != 0
            } else {
                req.seq != Some(rec.log.len())
            };
            if repeated {
                return Ok(Some(rec.last_answer.clone()));
            }
        }
        let inputs = inputs_of(req, &mut rec, fetched.clone());
        let step = advance(state, &campaign, req, call_id, &mut rec, &inputs, now, None);
        if save(state, call_id, version, &mut rec, now, deletes)? {
            saved = Some((step, rec, campaign));
            break;
        }
        // Another node answered a webhook of this call meanwhile: start over.
    }
    let Some((mut step, mut rec, campaign)) = saved else {
        return Err(changed_too_often());
    };
    // The signature this webhook claimed: only the webhook whose claim was saved gets here,
    // so a call signs at most once however many of its webhooks race. A flow signs once;
    // the bound only keeps a strange one from looping.
    for _ in 0..MAX_SIGNS_PER_WEBHOOK {
        let Step::Claimed(next, job) = step else {
            break;
        };
        let result = job.sign(&state.petition());
        step = finish_sign(
            state, &campaign, req, call_id, result, next, &mut rec, deletes,
        )?;
    }
    let answer = match step {
        Step::Answer(a) => a,
        Step::Claimed(..) => req.provider.render(&Next::Hangup),
    };
    Ok(match req.hook {
        Hook::Voice => Some(answer),
        _ => None,
    })
}

/// Most signatures one webhook makes (a flow has one `sign` on any path).
const MAX_SIGNS_PER_WEBHOOK: usize = 2;

fn changed_too_often() -> store::StoreError {
    store::StoreError::Invalid {
        what: "call state",
        why: "changed by others too often",
    }
}

/// Saves the call if nobody changed it since `version`; the provider copies it is done with
/// go to `deletes` then.
fn save(
    state: &CloudState,
    call_id: &str,
    version: i64,
    rec: &mut CallRecord,
    now: SystemTime,
    deletes: &mut Vec<Deletion>,
) -> Result<bool, store::StoreError> {
    let data = serde_json::to_vec(&*rec).unwrap_or_default();
    let expires = now + state.max_call + CALL_STATE_TTL;
    let ok = state.store.save_call(call_id, version, &data, expires)?;
    if ok {
        deletes.append(&mut rec.deletes);
        if let (Some(summary), Some(summaries)) = (rec.summary.take(), &state.summaries) {
            summaries.record(summary);
        }
    } else {
        rec.deletes.clear();
        rec.summary = None;
    }
    Ok(ok)
}

/// Feeds the result of the signature this webhook claimed to the call as it is now (other
/// webhooks may have come meanwhile), clears the claim, and carries on.
#[allow(clippy::too_many_arguments)]
fn finish_sign(
    state: &CloudState,
    campaign: &Campaign,
    req: &Request,
    call_id: &str,
    result: SignResult,
    next: Option<Next>,
    out: &mut CallRecord,
    deletes: &mut Vec<Deletion>,
) -> Result<Step, store::StoreError> {
    for _ in 0..SAVE_RETRIES {
        let now = SystemTime::now();
        let loaded = state.store.load_call(call_id, now)?;
        let Some((version, mut rec)) = loaded.and_then(|l| {
            serde_json::from_slice::<CallRecord>(&l.data)
                .ok()
                .map(|r| (l.version, r))
        }) else {
            // Expired meanwhile: the signature stands, the call is over.
            return Ok(Step::Answer(req.provider.render(&Next::Hangup)));
        };
        if !rec.signing {
            // Nobody else clears a claim; nothing to feed.
            return Ok(Step::Answer(rec.last_answer.clone()));
        }
        rec.signing = false;
        // The signature has its own copy of the recording: the provider's copy goes.
        if let Some(t) = rec.take.take() {
            if result != SignResult::Failed {
                queue_deletion(&mut rec, &t);
            }
        }
        let input = [Some(LoggedInput::signed(result))];
        let step = advance(
            state,
            campaign,
            req,
            call_id,
            &mut rec,
            &input,
            now,
            next.clone(),
        );
        if save(state, call_id, version, &mut rec, now, deletes)? {
            *out = rec;
            return Ok(step);
        }
    }
    Err(changed_too_often())
}

fn new_record(state: &CloudState, req: &Request, now: SystemTime) -> Option<CallRecord> {
    let to = req.param("To").unwrap_or("");
    let campaign = state.campaign_by_did(to)?;
    let caller = identity(state, &campaign, req);
    let anonymous = matches!(caller, store::CallerIdentity::Withheld);
    let already_signed = state.petition().already_signed(&campaign.slug, &caller);
    info!(provider = req.provider.name(), campaign = %campaign.slug, withheld = anonymous, "cloud call");
    Some(CallRecord {
        provider: req.provider.name().into(),
        slug: campaign.slug.clone(),
        started_unix_ms: unix_ms(now),
        facts: Facts {
            already_signed,
            anonymous,
            outside_dates: campaign.outside_dates(now),
            language: campaign
                .did_languages
                .get(to.trim())
                .map(|l| l.code().to_string()),
            count: state.petition().count(&campaign.slug),
        },
        log: Vec::new(),
        last_answer: String::new(),
        recording_open: false,
        recording_url: None,
        fetched: None,
        take: None,
        awaits: 0,
        hung_up: false,
        signing: false,
        deletes: Vec::new(),
        summarized: false,
        summary: None,
    })
}

fn identity(state: &CloudState, campaign: &Campaign, req: &Request) -> store::CallerIdentity {
    let from = req.param("From").unwrap_or("");
    if is_withheld(from) {
        return store::CallerIdentity::Withheld;
    }
    store::identify_caller(Some(from), &campaign.default_region, &state.secret)
}

/// Marker inputs: `None` stands for "the timer, when it is due".
fn inputs_of(
    req: &Request,
    rec: &mut CallRecord,
    fetched: Option<Take>,
) -> Vec<Option<LoggedInput>> {
    let mut out = Vec::new();
    let digit = req
        .param("Digits")
        .and_then(|d| d.chars().next())
        .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'));
    let terminal = req.param("CallStatus").is_some_and(|s| {
        matches!(
            s,
            "completed" | "busy" | "failed" | "no-answer" | "canceled"
        )
    });
    match (req.hook, req.ev.as_str()) {
        (Hook::Voice, "") => out.push(Some(LoggedInput::Answered)),
        (Hook::Voice, "played") => out.push(Some(LoggedInput::PromptFinished)),
        (Hook::Voice, "gather") => out.push(Some(match digit {
            Some(d) => LoggedInput::Digit { d },
            None => LoggedInput::PromptFinished,
        })),
        (Hook::Voice, "wait") => out.push(digit.map(|d| LoggedInput::Digit { d })),
        (Hook::Voice, "dial") => {
            let ok = req
                .param("DialCallStatus")
                .is_some_and(|s| s == "completed" || s == "answered");
            out.push(Some(LoggedInput::TransferResult { ok }));
        }
        (Hook::Voice, "record" | "await") | (Hook::Recording, _) => {
            if let Some(url) = req.param("RecordingUrl") {
                rec.recording_url = Some(url.to_string());
            }
            if let Some(t) = fetched {
                rec.fetched = Some(t);
            }
            let give_up = rec.hung_up || terminal || rec.awaits >= MAX_AWAITS;
            if rec.recording_open && req.hook == Hook::Voice {
                match rec.fetched.take() {
                    Some(t) => {
                        out.push(Some(LoggedInput::RecordingFinished {
                            speech_ms: t.speech_ms,
                            length_ms: t.length_ms,
                        }));
                        rec.take = Some(t);
                        rec.recording_open = false;
                    }
                    None if give_up => {
                        warn!("no recording from the provider: nothing to sign with");
                        out.push(Some(LoggedInput::RecordingFinished {
                            speech_ms: 0,
                            length_ms: 0,
                        }));
                        rec.recording_open = false;
                    }
                    None => rec.awaits += 1,
                }
            } else if rec.recording_open && rec.hung_up {
                // The caller is gone and the Record action may never come: finish here.
                if let Some(t) = rec.fetched.take() {
                    out.push(Some(LoggedInput::RecordingFinished {
                        speech_ms: t.speech_ms,
                        length_ms: t.length_ms,
                    }));
                    rec.take = Some(t);
                    rec.recording_open = false;
                }
            }
        }
        _ => {}
    }
    if terminal && !rec.hung_up {
        rec.hung_up = true;
        out.push(Some(LoggedInput::Hangup));
    }
    out
}

impl Take {
    /// The take as the signature keeps it.
    fn recording(&self) -> Option<driver::Recording> {
        let wav = base64::engine::general_purpose::STANDARD
            .decode(&self.wav_b64)
            .ok()?;
        Some(driver::Recording {
            wav,
            speech: Duration::from_millis(self.speech_ms),
        })
    }
}

/// Queues the deletion of a take's provider copy.
fn queue_deletion(rec: &mut CallRecord, t: &Take) {
    if let Some(sid) = &t.sid {
        rec.deletes.push(Deletion {
            sid: sid.clone(),
            account: t.account.clone(),
            url: t.url.clone(),
        });
    }
}

/// The answer a webhook is making: the call driver's channel for one provider request.
struct Webhook<'a> {
    state: &'a CloudState,
    campaign: &'a Campaign,
    /// What the provider is to do next (its callback URL is filled in at the end).
    next: Option<Next>,
    /// A recording was asked for.
    recording: bool,
    /// The flow threw the last take away.
    discarded: bool,
}

impl driver::Channel for Webhook<'_> {
    fn play(&mut self, _now: Instant, prompts: &[PromptRef], barge_in: bool) -> bool {
        if prompts.is_empty() {
            return false;
        }
        let urls: Vec<String> = prompts
            .iter()
            .map(|p| prompt_url(self.state, self.campaign, p))
            .collect();
        self.next = Some(if barge_in {
            Next::GatherPlay {
                urls,
                action: String::new(),
            }
        } else {
            Next::Play {
                urls,
                action: String::new(),
            }
        });
        true
    }

    fn start_recording(&mut self, limits: driver::RecordingLimits) {
        self.recording = true;
        self.next = Some(Next::Record {
            max_seconds: limits.max.as_secs().max(1),
            silence_seconds: limits.silence_end.as_secs_f64().ceil().max(1.0) as u64,
            action: String::new(),
            status_callback: String::new(),
        });
    }

    fn discard_recording(&mut self) {
        self.discarded = true;
    }

    fn transfer(&mut self, uri: String) {
        self.next = Some(Next::Dial {
            uri,
            action: String::new(),
        });
    }

    fn hangup(&mut self) {
        self.next = Some(Next::Hangup);
    }
}

/// The channel for a call's past webhooks, replayed: what they asked for was done then.
struct Replay;

impl driver::Channel for Replay {
    fn play(&mut self, _now: Instant, prompts: &[PromptRef], _barge_in: bool) -> bool {
        // As the webhook that played it: an empty prompt list was over at once.
        !prompts.is_empty()
    }
    fn start_recording(&mut self, _limits: driver::RecordingLimits) {}
    fn transfer(&mut self, _uri: String) {}
    fn hangup(&mut self) {}
}

/// What [`advance`] came to.
enum Step {
    /// The answer to send.
    Answer(String),
    /// The flow signs: the claim is in the record, to be saved before signing; then the
    /// result is fed and the answer made, starting from this next step.
    Claimed(Option<Next>, driver::SignJob),
}

/// Replays the call, feeds `inputs`, carries out the actions; returns the answer, or the
/// claim of a signature to make first. `next` is a step decided before (the actions before a
/// claimed signature).
#[allow(clippy::too_many_arguments)]
fn advance(
    state: &CloudState,
    campaign: &Campaign,
    req: &Request,
    call_id: &str,
    rec: &mut CallRecord,
    inputs: &[Option<LoggedInput>],
    now: SystemTime,
    next: Option<Next>,
) -> Step {
    let base = Instant::now();
    let facts = CallFacts {
        already_signed: rec.facts.already_signed,
        anonymous: rec.facts.anonymous,
        outside_dates: rec.facts.outside_dates,
        line_full: false,
        language: rec
            .facts
            .language
            .as_deref()
            .and_then(|l| l.parse::<Lang>().ok()),
        count: rec.facts.count,
        signature_number: None,
    };
    let info = driver::CallInfo {
        id: call_id.to_string(),
        campaign: campaign.slug.clone(),
        flow_version: campaign.flow_version.clone(),
        // The caller again from this webhook's `From`: the call's state keeps no number.
        caller: std::sync::Arc::new(identity(state, campaign, req)),
        // The provider asserts the caller ID (the store keeps a withheld caller Withheld).
        trust: store::Trust::NetworkAsserted,
        channel: Provider::from_name(&rec.provider).name(),
    };
    let mut driver = Driver::new(
        campaign.flow.clone(),
        facts,
        base,
        info,
        campaign.story_step(),
        None,
    );
    let at = |ms: u64| base + Duration::from_millis(ms);
    // The call so far: what it did then is done (its store work is in the log as results).
    let mut last_ms = 0;
    for (t, input) in &rec.log {
        driver.handle(at(*t), input.input());
        driver.step(at(*t), &mut Replay);
        last_ms = *t;
    }
    driver.set_take(rec.take.as_ref().and_then(Take::recording));
    let now_ms = unix_ms(now)
        .saturating_sub(rec.started_unix_ms)
        .max(last_ms);
    let mut answer = Webhook {
        state,
        campaign,
        next,
        recording: false,
        discarded: false,
    };
    let mut claimed = None;
    let feed = |driver: &mut Driver, rec: &mut CallRecord, at_ms: u64, input: LoggedInput| {
        rec.log.push((at_ms, input));
        driver.handle(at(at_ms), input.input());
    };
    for input in inputs {
        match input {
            Some(i) => feed(&mut driver, rec, now_ms, *i),
            None => {
                // The wait is over: the timer, at its time if the provider came back a little
                // early. Much earlier (a provider's wait is shorter than the flow's) is not the
                // timer yet: the answer below waits again for the rest.
                let due = driver
                    .poll_timeout()
                    .map(|t| u64::try_from(t.duration_since(base).as_millis()).unwrap_or(u64::MAX))
                    .unwrap_or(now_ms);
                if due > now_ms + EARLY_WAKE_MS {
                    continue;
                }
                feed(&mut driver, rec, due.max(now_ms), LoggedInput::Timer);
            }
        }
        // Carry out what the flow asks until it waits on the caller or the provider.
        loop {
            let at_ms = rec.log.last().map_or(now_ms, |(t, _)| *t);
            let jobs = driver.step(at(at_ms), &mut answer);
            if std::mem::take(&mut answer.recording) {
                rec.recording_open = true;
                rec.fetched = None;
                rec.awaits = 0;
            }
            if std::mem::take(&mut answer.discarded) {
                // A take the flow throws away is deleted at the provider as well.
                if let Some(t) = rec.take.take() {
                    queue_deletion(rec, &t);
                }
            }
            let mut fed = false;
            for job in jobs {
                match job {
                    // Signed only once the claim is saved (see `process_state`); a claim
                    // already there belongs to another webhook, which feeds the result.
                    driver::Job::Sign(job) => {
                        if !rec.signing {
                            rec.signing = true;
                            claimed = Some(job);
                        }
                    }
                    withdraw @ driver::Job::Withdraw(_) => {
                        let ok = matches!(withdraw.run(&state.petition()), Input::Withdrawn(true));
                        feed(&mut driver, rec, at_ms, LoggedInput::Withdrawn { ok });
                        fed = true;
                    }
                }
            }
            if !fed {
                break;
            }
        }
    }
    let next = answer.next;
    if let Some(job) = claimed {
        return Step::Claimed(next, job);
    }
    let at = at(now_ms);
    let engine = driver.engine();
    let seq = rec.log.len();
    let provider = Provider::from_name(&rec.provider);
    let hook = |ev: &str| {
        let path = provider.callback_path();
        let tag = state_tag(state, call_id, ev, Some(seq));
        format!("{}{path}?ev={ev}&seq={seq}&t={tag}", state.public_url)
    };
    let recording_callback = match provider.recording_event() {
        Some(ev) => {
            let tag = state_tag(state, call_id, ev, None);
            format!(
                "{}{}?ev={ev}&t={tag}",
                state.public_url,
                provider.recording_path()
            )
        }
        None => format!("{}{}", state.public_url, provider.recording_path()),
    };
    let next = if rec.hung_up {
        Next::Empty
    } else {
        match next {
            Some(Next::Play { urls, .. }) => Next::Play {
                urls,
                action: hook("played"),
            },
            Some(Next::GatherPlay { urls, .. }) => Next::GatherPlay {
                urls,
                action: hook("gather"),
            },
            Some(Next::Record {
                max_seconds,
                silence_seconds,
                ..
            }) => Next::Record {
                max_seconds,
                silence_seconds,
                action: hook("record"),
                status_callback: recording_callback,
            },
            Some(Next::Dial { uri, .. }) => Next::Dial {
                uri,
                action: hook("dial"),
            },
            Some(other) => other,
            None => {
                if let Some(t) = engine.poll_timeout() {
                    let left = t.saturating_duration_since(at);
                    Next::Wait {
                        seconds: left.as_secs_f64().ceil().max(1.0) as u64,
                        action: hook("wait"),
                    }
                } else if rec.recording_open {
                    Next::Pause {
                        seconds: 2,
                        action: hook("await"),
                    }
                } else {
                    Next::Hangup
                }
            }
        }
    };
    let answer = provider.render(&next);
    rec.last_answer = answer.clone();
    // The flow is over: its funnel, once per call (recorded once this webhook's save holds).
    if driver.is_done() && !rec.summarized {
        rec.summarized = true;
        rec.summary = Some(driver.summary(at, now));
    }
    Step::Answer(answer)
}

fn prompt_url(state: &CloudState, campaign: &Campaign, p: &PromptRef) -> String {
    match p {
        PromptRef::Prompt { name, lang } => format!(
            "{}/hooks/prompts/{}/p/{}/{name}.wav",
            state.public_url,
            campaign.slug,
            lang.code()
        ),
        PromptRef::Number(clip) => format!(
            "{}/hooks/prompts/{}/n/{}/{}.wav",
            state.public_url,
            campaign.slug,
            clip.lang.code(),
            clip.token
        ),
    }
}

/// Serves a campaign's prompt as an 8 kHz 16-bit WAV (what `<Play>` fetches).
pub(crate) async fn prompt_wav(
    State(state): State<CloudState>,
    Path((slug, kind, lang, file)): Path<(String, String, String, String)>,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found\n").into_response();
    let Some(campaign) = state.campaign(&slug) else {
        return not_found();
    };
    let Ok(lang) = lang.parse::<Lang>() else {
        return not_found();
    };
    let Some(name) = file.strip_suffix(".wav") else {
        return not_found();
    };
    let r = match kind.as_str() {
        "p" => PromptRef::Prompt {
            name: name.to_string(),
            lang,
        },
        "n" => match flow::say::inventory(lang)
            .into_iter()
            .find(|(c, _)| c.token == name)
        {
            Some((clip, _)) => PromptRef::Number(clip),
            None => return not_found(),
        },
        _ => return not_found(),
    };
    let Some(prompt) = campaign.audio.resolve(&r) else {
        return not_found();
    };
    let mut samples = Vec::with_capacity(prompt.frames() * 160);
    let mut i = 0;
    while let Some(frame) = prompt.frame(media::Codec::Pcmu, i) {
        samples.extend(frame.iter().map(|&b| media::g711::ulaw_decode(b)));
        i += 1;
    }
    let wav = media::wav::pcm16_mono(&samples, 8000);
    (
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        wav,
    )
        .into_response()
}

/// The webhooks: path, provider, which hook, and whether the provider may also GET it
/// (Vonage's answer URL).
#[rustfmt::skip]
const WEBHOOKS: &[(&str, Provider, Hook, bool)] = &[
    ("/hooks/twilio/voice",     Provider::Twilio, Hook::Voice,     false),
    ("/hooks/twilio/status",    Provider::Twilio, Hook::Status,    false),
    ("/hooks/twilio/recording", Provider::Twilio, Hook::Recording, false),
    ("/hooks/telnyx/voice",     Provider::Telnyx, Hook::Voice,     false),
    ("/hooks/telnyx/status",    Provider::Telnyx, Hook::Status,    false),
    ("/hooks/telnyx/recording", Provider::Telnyx, Hook::Recording, false),
    ("/hooks/vonage/answer",    Provider::Vonage, Hook::Voice,     true),
    // The application's event URL and the answers' callbacks (`ev`).
    ("/hooks/vonage/event",     Provider::Vonage, Hook::Status,    false),
];

/// The routes of [`WEBHOOKS`], each handled by [`handle`].
pub(crate) fn webhook_routes() -> Router<CloudState> {
    WEBHOOKS
        .iter()
        .fold(Router::new(), |router, &(path, provider, hook, get)| {
            let handler =
                move |State(s): State<CloudState>, uri: Uri, headers: HeaderMap, body: Bytes| {
                    handle(s, provider, hook, uri, headers, body)
                };
            let methods = routing::post(handler);
            let methods = if get { methods.get(handler) } else { methods };
            router.route(path, methods)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn vonage_fields() {
        // An input event as Vonage documents it.
        let body = br#"{"speech":{"results":[]},"dtmf":{"digits":"1","timed_out":false},"from":"447700900000","to":"447700900001","uuid":"aaaaaaaa-bbbb-cccc-dddd-0123456789ab","conversation_uuid":"CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab","timestamp":"2020-01-01T14:00:00.000Z"}"#;
        let p = vonage_params(body, "ev=gather&seq=3", "gather").expect("json");
        assert_eq!(
            get(&p, "CallSid"),
            Some("CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab")
        );
        assert_eq!(get(&p, "From"), Some("+447700900000"));
        assert_eq!(get(&p, "To"), Some("+447700900001"));
        assert_eq!(get(&p, "Digits"), Some("1"));
        // A GET answer webhook: the query.
        let p = vonage_params(
            b"",
            "to=447700900001&from=Unknown&conversation_uuid=CON-1",
            "",
        )
        .expect("query");
        assert_eq!(get(&p, "From"), Some("Unknown"));
        assert!(is_withheld(get(&p, "From").expect("from")));
        // The caller's leg ends; the other leg's end is not the caller's.
        let done = br#"{"status":"completed","direction":"inbound","conversation_uuid":"CON-1"}"#;
        let p = vonage_params(done, "", "").expect("json");
        assert_eq!(get(&p, "CallStatus"), Some("completed"));
        let other = br#"{"status":"completed","direction":"outbound","conversation_uuid":"CON-1"}"#;
        let p = vonage_params(other, "", "").expect("json");
        assert_eq!(get(&p, "CallStatus"), None);
        // The helpline leg: only final states count.
        let ringing = br#"{"status":"ringing","conversation_uuid":"CON-1"}"#;
        let p = vonage_params(ringing, "ev=dial", "dial").expect("json");
        assert_eq!(get(&p, "DialCallStatus"), Some(""));
        let timeout = br#"{"status":"timeout","conversation_uuid":"CON-1"}"#;
        let p = vonage_params(timeout, "ev=dial", "dial").expect("json");
        assert_eq!(get(&p, "DialCallStatus"), Some("failed"));
        // A recording event.
        let r = br#"{"recording_url":"https://api.nexmo.com/v1/files/aaaaaaaa-bbbb-cccc-dddd-0123456789ab","recording_uuid":"aaaaaaaa-bbbb-cccc-dddd-0123456789ab","size":12222,"conversation_uuid":"CON-1"}"#;
        let p = vonage_params(r, "ev=recording", "recording").expect("json");
        assert_eq!(
            get(&p, "RecordingSid"),
            Some("aaaaaaaa-bbbb-cccc-dddd-0123456789ab")
        );
        // Not JSON, or not an object: refused.
        assert!(vonage_params(b"[1,2]", "", "").is_none());
        assert!(vonage_params(b"to=1", "", "").is_none());
    }

    #[test]
    fn ids_safe_in_paths() {
        assert!(valid_sid("RE0123456789abcdef0123456789abcdef"));
        assert!(valid_sid("35094891-3290-4142-b2c2-b2eda57534cf"));
        for bad in ["", "../x", "a/b", "a?b", "a b", &"x".repeat(65)] {
            assert!(!valid_sid(bad), "{bad}");
        }
    }
}
