//! JSON endpoints: health, the campaign list and one campaign with its counts.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::{AppState, CampaignView};

/// Counts change with each call; a second of caching absorbs a burst of polling clients
/// without showing a stale number for long.
const COUNT_CACHE: &str = "public, max-age=1";

/// `GET /healthz`: the process is up and serving, plus what the [`crate::Status`] adds
/// (trunk registrations, calls in progress). Never cached.
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("status".into(), "ok".into());
    if let Some(status) = &state.status {
        for (k, v) in status.health() {
            if k != "status" {
                body.insert(k, v);
            }
        }
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::Value::Object(body)),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format. Counts come from the hub (memory).
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(4096);
    out.push_str("# HELP belteken_signatures Signatures counted, per campaign.\n# TYPE belteken_signatures gauge\n");
    for c in state.web.campaigns.snapshot().iter() {
        let n = state.web.hub.current(&c.slug);
        let _ = writeln!(
            out,
            "belteken_signatures{{campaign=\"{}\"}} {}",
            c.slug, n.signatures
        );
    }
    out.push_str("# HELP belteken_signatures_unverified Unverified signatures (withheld caller ID), per campaign.\n# TYPE belteken_signatures_unverified gauge\n");
    for c in state.web.campaigns.snapshot().iter() {
        let n = state.web.hub.current(&c.slug);
        let _ = writeln!(
            out,
            "belteken_signatures_unverified{{campaign=\"{}\"}} {}",
            c.slug, n.unverified
        );
    }
    let open = state
        .max_event_streams
        .saturating_sub(state.event_streams.available_permits());
    let _ = writeln!(
        out,
        "# HELP belteken_sse_streams Open live-count streams.\n# TYPE belteken_sse_streams gauge\nbelteken_sse_streams {open}"
    );
    if let Some(status) = &state.status {
        status.metrics(&mut out);
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response()
}

/// One campaign as the API shows it.
#[derive(Serialize)]
struct CampaignJson<'a> {
    slug: &'a str,
    title: &'a str,
    signatures: u64,
    unverified: u64,
    sip_uri: &'a str,
    number: Option<&'a str>,
    language: &'a str,
}

fn campaign_json<'a>(view: &'a CampaignView, state: &AppState) -> CampaignJson<'a> {
    let counts = state.web.hub.current(&view.slug);
    CampaignJson {
        slug: &view.slug,
        title: &view.title,
        signatures: counts.signatures,
        unverified: counts.unverified,
        sip_uri: &view.sip_uri,
        number: view.number.as_deref(),
        language: &view.language,
    }
}

#[derive(Serialize)]
struct ListJson<'a> {
    campaigns: Vec<CampaignJson<'a>>,
}

/// `GET /api/campaigns`: `{"campaigns":[…]}`, each element shaped like the single-campaign
/// answer.
pub(crate) async fn list(State(state): State<AppState>) -> Response {
    let snapshot = state.web.campaigns.snapshot();
    let campaigns: Vec<CampaignJson<'_>> =
        snapshot.iter().map(|c| campaign_json(c, &state)).collect();
    (
        [(header::CACHE_CONTROL, COUNT_CACHE)],
        Json(ListJson { campaigns }),
    )
        .into_response()
}

/// `GET /api/campaigns/{slug}`.
pub(crate) async fn campaign(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    match state.web.campaign(&slug) {
        Some(view) => (
            [(header::CACHE_CONTROL, COUNT_CACHE)],
            Json(campaign_json(&view, &state)),
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "unknown campaign"),
    }
}

/// A JSON error body `{"error": message}`; never cached. Messages are fixed strings of ours,
/// never an internal error's text.
pub(crate) fn error(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}
