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

/// `GET /healthz`: the process is up and serving. Never cached.
pub(crate) async fn healthz() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "status": "ok" })),
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
    let campaigns: Vec<CampaignJson<'_>> = state
        .web
        .campaigns
        .iter()
        .map(|c| campaign_json(c, &state))
        .collect();
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
            Json(campaign_json(view, &state)),
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
