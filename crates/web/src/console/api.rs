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
