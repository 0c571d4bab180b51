//! JSON endpoints: health, the campaign list and one campaign with its counts.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use prometheus_client::encoding::{text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::{AppState, Campaign, Collector};

/// Counts change with each call; a second of caching absorbs a burst of polling clients
/// without showing a stale number for long.
const COUNT_CACHE: &str = "public, max-age=1";

/// `GET /healthz`: the process is up and serving, plus what the [`crate::Status`] adds
/// (trunk registrations, calls in progress). Never cached.
/// A part that stopped makes it 503 with `"status": "failed"` and the parts in `stopped`.
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let mut body = serde_json::Map::new();
    let stopped = state
        .status
        .as_ref()
        .map(|s| s.stopped())
        .unwrap_or_default();
    let healthy = stopped.is_empty();
    body.insert(
        "status".into(),
        if healthy { "ok" } else { "failed" }.into(),
    );
    if !healthy {
        body.insert("stopped".into(), stopped.into());
    }
    if let Some(status) = &state.status {
        for (k, v) in status.health() {
            if k != "status" && k != "stopped" {
                body.insert(k, v);
            }
        }
    }
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::Value::Object(body)),
    )
        .into_response()
}

/// The web's own figures: counts per campaign (from the hub) and open live-count streams.
#[derive(Debug)]
struct WebMetrics {
    /// (campaign, signatures, unverified)
    counts: Vec<(String, u64, u64)>,
    open_streams: usize,
}

impl Collector for WebMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let mut family = e.encode_descriptor(
            "belteken_signatures",
            "Signatures counted, per campaign.",
            None,
            MetricType::Gauge,
        )?;
        for (slug, n, _) in &self.counts {
            ConstGauge::new(i64::try_from(*n).unwrap_or(i64::MAX))
                .encode(family.encode_family(&[("campaign", slug.as_str())])?)?;
        }
        let mut family = e.encode_descriptor(
            "belteken_signatures_unverified",
            "Unverified signatures (withheld caller ID), per campaign.",
            None,
            MetricType::Gauge,
        )?;
        for (slug, _, n) in &self.counts {
            ConstGauge::new(i64::try_from(*n).unwrap_or(i64::MAX))
                .encode(family.encode_family(&[("campaign", slug.as_str())])?)?;
        }
        ConstGauge::new(i64::try_from(self.open_streams).unwrap_or(i64::MAX)).encode(
            e.encode_descriptor(
                "belteken_sse_streams",
                "Open live-count streams.",
                None,
                MetricType::Gauge,
            )?,
        )
    }
}

/// `GET /metrics`: the OpenMetrics text format, read at each scrape. Counts come from the hub
/// (memory), the rest from the server's [`Status::collectors`](crate::Status::collectors).
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let counts = state
        .web
        .campaigns
        .snapshot()
        .iter()
        .map(|c| {
            let n = state.web.hub.current(&c.slug);
            (c.slug.clone(), n.signatures, n.unverified)
        })
        .collect();
    let open_streams = state
        .max_event_streams
        .saturating_sub(state.event_streams.available_permits());
    let mut registry = Registry::default();
    registry.register_collector(Box::new(WebMetrics {
        counts,
        open_streams,
    }));
    for collector in state.status.iter().flat_map(|s| s.collectors()) {
        registry.register_collector(collector);
    }
    let mut out = String::with_capacity(8192);
    if let Err(e) = text::encode(&mut out, &registry) {
        tracing::error!(error = %e, "cannot encode /metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
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

fn campaign_json<'a>(view: &'a Campaign, state: &AppState) -> CampaignJson<'a> {
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

pub(crate) use crate::openapi::error;

// The API's route table: the router mounts exactly these, and `/api/openapi.json` documents
// exactly these. New JSON endpoints get an entry here (or in a table of their own, mounted
// and documented the same way).

use axum::routing::{get, MethodRouter};
use serde_json::{json, Value};

use crate::openapi::{reference, ApiResponse, ApiRoute, Schema};

fn schema_campaign() -> Value {
    json!({
        "type": "object",
        "required": ["slug", "title", "signatures", "unverified", "sip_uri", "number", "language"],
        "additionalProperties": false,
        "properties": {
            "slug": { "type": "string", "description": "URL-safe identifier." },
            "title": { "type": "string" },
            "signatures": { "type": "integer", "minimum": 0,
                            "description": "Counted signatures of callers with a known number." },
            "unverified": { "type": "integer", "minimum": 0,
                            "description": "Counted signatures of callers who withheld their number." },
            "sip_uri": { "type": "string", "description": "SIP address to call directly." },
            "number": { "type": ["string", "null"], "description": "Phone number to call, as displayed." },
            "language": { "type": "string", "description": "The campaign's main language." },
        },
    })
}

fn schema_campaign_list() -> Value {
    json!({
        "type": "object",
        "required": ["campaigns"],
        "additionalProperties": false,
        "properties": { "campaigns": { "type": "array", "items": reference("Campaign") } },
    })
}

fn schema_error() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": { "error": { "type": "string" } },
    })
}

fn schema_health() -> Value {
    json!({
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": { "enum": ["ok", "failed"] },
            "stopped": {
                "type": "array",
                "items": { "type": "string" },
                "description": "With status failed: the parts that stopped (web, sync, \
    retention, edits, sip, media); the process exits and should be restarted.",
            },
        },
        "additionalProperties": true,
        "description": "Plus the SIP channel's figures: calls_in_progress, draining, trunks \
    (each with its registration state; the reason for a failure is in the log and the console).",
    })
}

fn schema_count_event() -> Value {
    json!({
        "type": "string",
        "description": "A stream of `event: count` messages whose `data` is \
    `{\"signatures\":N,\"unverified\":M}`: the current count at once, then one per change \
    (several quick changes may arrive as one with the newest count). Comment lines keep an idle \
    stream open.",
    })
}

fn schema_text() -> Value {
    json!({ "type": "string" })
}

fn schema_openapi() -> Value {
    json!({ "type": "object", "description": "This document." })
}

fn ref_campaign() -> Value {
    reference("Campaign")
}
fn ref_campaign_list() -> Value {
    reference("CampaignList")
}
fn ref_error() -> Value {
    reference("Error")
}
fn ref_health() -> Value {
    reference("Health")
}

/// The named schemas of the document.
pub(crate) const SCHEMAS: &[&Schema] = &[
    &Schema {
        name: "Campaign",
        schema: schema_campaign,
    },
    &Schema {
        name: "CampaignList",
        schema: schema_campaign_list,
    },
    &Schema {
        name: "Error",
        schema: schema_error,
    },
    &Schema {
        name: "Health",
        schema: schema_health,
    },
];

const NOT_FOUND: ApiResponse = ApiResponse {
    status: 404,
    description: "No campaign with this slug.",
    media: "application/json",
    schema: ref_error,
};
const SLUG: &[(&str, &str)] = &[("slug", "The campaign's identifier.")];

pub(crate) const LIST_ROUTE: ApiRoute = ApiRoute {
    path: "/api/campaigns",
    method: "get",
    operation_id: "listCampaigns",
    tag: "public",
    summary: "Every campaign with its live count",
    description: "Counts come from memory, never a database read per request.",
    params: &[],
    query: &[],
    cache: COUNT_CACHE,
    needs_auth: false,
    responses: &[ApiResponse {
        status: 200,
        description: "The campaigns.",
        media: "application/json",
        schema: ref_campaign_list,
    }],
};

pub(crate) const CAMPAIGN_ROUTE: ApiRoute = ApiRoute {
    path: "/api/campaigns/{slug}",
    method: "get",
    operation_id: "getCampaign",
    tag: "public",
    summary: "One campaign with its live count",
    description: "Counts come from memory, never a database read per request.",
    params: SLUG,
    query: &[],
    cache: COUNT_CACHE,
    needs_auth: false,
    responses: &[
        ApiResponse {
            status: 200,
            description: "The campaign.",
            media: "application/json",
            schema: ref_campaign,
        },
        NOT_FOUND,
    ],
};

pub(crate) const EVENTS_ROUTE: ApiRoute = ApiRoute {
    path: "/api/campaigns/{slug}/events",
    method: "get",
    operation_id: "campaignEvents",
    tag: "public",
    summary: "The live count as Server-Sent Events",
    description: "Open streams are limited; one more is refused with 503 and Retry-After. \
Streams end when the server shuts down (browsers reconnect by themselves).",
    params: SLUG,
    query: &[],
    cache: "no-cache",
    needs_auth: false,
    responses: &[
        ApiResponse {
            status: 200,
            description: "The event stream.",
            media: "text/event-stream",
            schema: schema_count_event,
        },
        NOT_FOUND,
        ApiResponse {
            status: 503,
            description: "Too many open streams; retry after the Retry-After seconds.",
            media: "application/json",
            schema: ref_error,
        },
    ],
};

pub(crate) const OPENAPI_ROUTE: ApiRoute = ApiRoute {
    path: "/api/openapi.json",
    method: "get",
    operation_id: "openapi",
    tag: "public",
    summary: "This document",
    description: "OpenAPI 3.1, built from the routes the server mounts.",
    params: &[],
    query: &[],
    cache: crate::openapi::OPENAPI_CACHE,
    needs_auth: false,
    responses: &[ApiResponse {
        status: 200,
        description: "The OpenAPI document.",
        media: "application/json",
        schema: schema_openapi,
    }],
};

pub(crate) const HEALTHZ_ROUTE: ApiRoute = ApiRoute {
    path: "/healthz",
    method: "get",
    operation_id: "health",
    tag: "operations",
    summary: "Whether the server is up, with the SIP channel's state",
    description: "For load balancers and monitoring.",
    params: &[],
    query: &[],
    cache: "no-store",
    needs_auth: false,
    responses: &[
        ApiResponse {
            status: 200,
            description: "Up.",
            media: "application/json",
            schema: ref_health,
        },
        ApiResponse {
            status: 503,
            description: "A part of the server stopped (named in `stopped`); the process \
exits shortly after, for its supervisor to restart it.",
            media: "application/json",
            schema: ref_health,
        },
    ],
};

pub(crate) const METRICS_ROUTE: ApiRoute = ApiRoute {
    path: "/metrics",
    method: "get",
    operation_id: "metrics",
    tag: "operations",
    summary: "Prometheus metrics",
    description: "Text exposition format 0.0.4: calls, signatures, SIP responses, RTP, \
registrations, store latency, open streams.",
    params: &[],
    query: &[],
    cache: "no-store",
    needs_auth: false,
    responses: &[ApiResponse {
        status: 200,
        description: "The metrics.",
        media: "text/plain; version=0.0.4",
        schema: schema_text,
    }],
};

/// The documented routes and their handlers, as the router mounts them.
pub(crate) fn routes() -> Vec<(&'static ApiRoute, MethodRouter<AppState>)> {
    vec![
        (&HEALTHZ_ROUTE, get(healthz)),
        (&METRICS_ROUTE, get(metrics)),
        (&LIST_ROUTE, get(list)),
        (&CAMPAIGN_ROUTE, get(campaign)),
        (&EVENTS_ROUTE, get(crate::events::stream)),
        (&OPENAPI_ROUTE, get(openapi_json)),
    ]
}

/// `/api/openapi.json`: the document of every route table the router mounts (this one and
/// the console's).
async fn openapi_json(State(_state): State<AppState>) -> Response {
    let routes = routes();
    let mut docs: Vec<&ApiRoute> = routes.iter().map(|(doc, _)| *doc).collect();
    docs.extend(crate::console::api::DOCS);
    let mut schemas: Vec<&Schema> = SCHEMAS.to_vec();
    schemas.extend(crate::console::api::SCHEMAS);
    let body = crate::openapi::document(&docs, &schemas);
    (
        [(header::CACHE_CONTROL, crate::openapi::OPENAPI_CACHE)],
        Json(body),
    )
        .into_response()
}
