//! The admin JSON endpoints: with a session (and its CSRF token on POST, in `X-CSRF-Token`)
//! or `Authorization: Bearer` with a token from `belteken admin token create`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::layout::json_error;
use super::review::{judged_state, load_queue, origin_of, set_one};
use super::{Auth, Console};

#[derive(serde::Deserialize, Default)]
pub(crate) struct QueueQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    after: Option<i64>,
}

/// `GET /console/api/queue/{slug}?state=pending`: the oldest signatures in that state.
pub(crate) async fn queue(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Query(q): Query<QueueQuery>,
) -> Response {
    let Some(store) = console.app.store.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "no store");
    };
    let state = match q.state.as_deref() {
        None => store::SignatureState::Pending,
        Some(s) => match store::SignatureState::parse(s) {
            Some(s) => s,
            None => return json_error(StatusCode::BAD_REQUEST, "unknown state"),
        },
    };
    match load_queue(store, slug, state, q.after.unwrap_or(0)).await {
        Ok((rows, total)) => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "created_at": r.created_at,
                        "state": r.state.as_str(),
                        "trust": r.trust.as_str(),
                        "channel": r.channel,
                        "from": origin_of(r),
                        "speech_ms": r.speech_ms,
                        "has_recording": r.has_recording,
                    })
                })
                .collect();
            Json(serde_json::json!({ "total": total, "signatures": items })).into_response()
        }
        Err(store::StoreError::UnknownCampaign(_)) => {
            json_error(StatusCode::NOT_FOUND, "unknown campaign")
        }
        Err(_) => json_error(StatusCode::SERVICE_UNAVAILABLE, "store error"),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct JudgeBody {
    state: String,
}

/// `POST /console/api/review/{slug}/{id}` with `{"state": "valid"|"invalid"|...}`.
pub(crate) async fn judge(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path((slug, id)): Path<(String, i64)>,
    body: Option<Json<JudgeBody>>,
) -> Response {
    let Some(store) = console.app.store.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "no store");
    };
    let Some(Json(body)) = body else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "send {\"state\": \"valid\"} as JSON",
        );
    };
    let Some(state) = judged_state(&body.state) else {
        return json_error(StatusCode::BAD_REQUEST, "unknown state");
    };
    if !super::review::may_judge(&auth, state) {
        return json_error(
            StatusCode::FORBIDDEN,
            "reviewers mark signatures valid or invalid; other states need an admin",
        );
    }
    match set_one(store, &auth, slug, id, state).await {
        Ok(a) => Json(serde_json::json!({ "id": id, "state": state.as_str(), "changed": a.changed, "action": a.id }))
            .into_response(),
        Err(store::StoreError::UnknownCampaign(_)) => json_error(StatusCode::NOT_FOUND, "unknown campaign"),
        Err(_) => json_error(StatusCode::SERVICE_UNAVAILABLE, "store error"),
    }
}

/// `GET /console/api/funnel/{slug}`: the funnel and the listening curve.
pub(crate) async fn funnel(State(console): State<Console>, Path(slug): Path<String>) -> Response {
    let Some(store) = console.app.store.clone() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "no store");
    };
    match tokio::task::spawn_blocking(move || store.funnel(&slug, None, None, None)).await {
        Ok(Ok(f)) => Json(f).into_response(),
        _ => json_error(StatusCode::SERVICE_UNAVAILABLE, "store error"),
    }
}

// The OpenAPI entries of these endpoints (served in `/api/openapi.json`).

use crate::openapi::{reference, ApiResponse, ApiRoute, Schema};
use serde_json::{json, Value};

const SLUG: &[(&str, &str)] = &[("slug", "The campaign's identifier.")];
const NO_STORE: &str = "no-store";

fn ref_error() -> Value {
    reference("Error")
}

const REFUSED: ApiResponse = ApiResponse {
    status: 401,
    description: "No session or token (403: not allowed for this role, or no CSRF token).",
    media: "application/json",
    schema: ref_error,
};

const UNKNOWN: ApiResponse = ApiResponse {
    status: 404,
    description: "No campaign with this slug.",
    media: "application/json",
    schema: ref_error,
};

fn schema_queue() -> Value {
    json!({
        "type": "object",
        "required": ["total", "signatures"],
        "properties": {
            "total": { "type": "integer", "description": "Signatures in this state." },
            "signatures": { "type": "array", "items": {
                "type": "object",
                "description": "Never a number or a key.",
                "properties": {
                    "id": { "type": "integer" },
                    "created_at": { "type": "string", "format": "date-time" },
                    "state": { "type": "string" },
                    "trust": { "type": "string" },
                    "channel": { "type": "string" },
                    "from": { "type": "string", "description": "Country, region or kind of number." },
                    "speech_ms": { "type": "integer" },
                    "has_recording": { "type": "boolean" },
                },
            }},
        },
    })
}

fn schema_judgement() -> Value {
    json!({
        "type": "object",
        "required": ["id", "state", "changed", "action"],
        "properties": {
            "id": { "type": "integer" },
            "state": { "type": "string" },
            "changed": { "type": "integer" },
            "action": { "type": "integer", "description": "The review action, for a revert." },
        },
    })
}

fn schema_funnel() -> Value {
    json!({
        "type": "object",
        "required": ["calls", "answered", "story_completed", "recorded", "signed", "curve"],
        "properties": {
            "calls": { "type": "integer" },
            "answered": { "type": "integer" },
            "story_completed": { "type": "integer", "description": "Heard the story to the end." },
            "recorded": { "type": "integer" },
            "signed": { "type": "integer" },
            "curve": { "type": "array", "items": { "type": "integer" },
                       "description": "curve[s]: answered calls still listening at second s of the story." },
        },
    })
}

fn ref_queue() -> Value {
    reference("ReviewQueue")
}
fn ref_judgement() -> Value {
    reference("Judgement")
}
fn ref_funnel() -> Value {
    reference("Funnel")
}

pub(crate) const QUEUE_ROUTE: ApiRoute = ApiRoute {
    path: "/console/api/queue/{slug}",
    method: "get",
    operation_id: "reviewQueue",
    tag: "console",
    summary: "Signatures waiting for review (or in another state), oldest first",
    description: "For reviewers and admins. A page at a time: pass the last id as `after`.",
    params: SLUG,
    query: &[
        ("state", "pending (default), valid, invalid, ..."),
        ("after", "Only signatures with a larger id."),
    ],
    cache: NO_STORE,
    needs_auth: true,
    responses: &[
        ApiResponse {
            status: 200,
            description: "The page.",
            media: "application/json",
            schema: ref_queue,
        },
        REFUSED,
        UNKNOWN,
    ],
};

pub(crate) const JUDGE_ROUTE: ApiRoute = ApiRoute {
    path: "/console/api/review/{slug}/{id}",
    method: "post",
    operation_id: "judgeSignature",
    tag: "console",
    summary: "Mark one signature valid or invalid",
    description: "Body `{\"state\": \"valid\"}`. With a session, send its CSRF token in \
`X-CSRF-Token`. Recorded in the audit log and revertible.",
    params: &[
        ("slug", "The campaign's identifier."),
        ("id", "The signature's id."),
    ],
    query: &[],
    cache: NO_STORE,
    needs_auth: true,
    responses: &[
        ApiResponse {
            status: 200,
            description: "Done.",
            media: "application/json",
            schema: ref_judgement,
        },
        REFUSED,
        UNKNOWN,
    ],
};

pub(crate) const FUNNEL_ROUTE: ApiRoute = ApiRoute {
    path: "/console/api/funnel/{slug}",
    method: "get",
    operation_id: "campaignFunnel",
    tag: "console",
    summary: "The campaign's funnel and listening curve",
    description: "Admins only. From the calls' summaries (never anything about a caller).",
    params: SLUG,
    query: &[],
    cache: NO_STORE,
    needs_auth: true,
    responses: &[
        ApiResponse {
            status: 200,
            description: "The funnel.",
            media: "application/json",
            schema: ref_funnel,
        },
        REFUSED,
    ],
};

/// The console API's entries in the OpenAPI document.
pub(crate) const DOCS: &[&ApiRoute] = &[&QUEUE_ROUTE, &JUDGE_ROUTE, &FUNNEL_ROUTE];

/// The schemas they refer to.
pub(crate) const SCHEMAS: &[&Schema] = &[
    &Schema {
        name: "ReviewQueue",
        schema: schema_queue,
    },
    &Schema {
        name: "Judgement",
        schema: schema_judgement,
    },
    &Schema {
        name: "Funnel",
        schema: schema_funnel,
    },
];
