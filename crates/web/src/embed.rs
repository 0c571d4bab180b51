//! The embeddable counter: `/embed/{slug}`, a tiny page other sites may frame, and
//! `/static/embed.js`, the script a news site pastes to insert it.
//!
//! The page is as strict as the others except that any site may frame it
//! (`frame-ancestors *`); it updates live through the same event stream and `live.js`.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, DOCTYPE};

use crate::html::{path_segment, tel_target};
use crate::pages::{self, LangQuery};
use crate::AppState;

const EMBED_JS: &str = include_str!("../static/embed.js");

/// The site-wide policy, but framable by any site.
pub(crate) const EMBED_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors *; object-src 'none'";

/// `GET /embed/{slug}`: the count, the number and a link to the campaign page.
pub(crate) async fn page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(view) = state.web.campaign(&slug) else {
        return pages::fallback(axum::http::Uri::from_static("/embed")).await;
    };
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let language = pages::pick_language(&view, query.lang.as_deref(), accept);
    let labels = pages::labels(language);
    let (title, _) = view.texts(language);
    let counts = state.web.hub.current(&view.slug);
    let url = format!(
        "{}?lang={}",
        pages::campaign_url(&state, &view.slug),
        path_segment(language)
    );
    let events = format!("/api/campaigns/{}/events", path_segment(&view.slug));
    let call = view
        .number
        .as_deref()
        .and_then(|n| tel_target(n).map(|t| (n, t)));
    let body = html! {
        (DOCTYPE)
        html lang=(labels.lang) {
            (pages::head_of(title, html! {}))
            body class="embed" {
                main {
                    p class="title" {
                        a href=(url) target="_blank" rel="noopener" { (title) }
                    }
                    p class="count" role="status" aria-live="polite" aria-atomic="true" {
                        span id="count" data-events=(events) { (counts.signatures) }
                        " "
                        span class="unit" { (labels.count_unit) }
                    }
                    @if let Some(goal) = view.goal.filter(|g| *g > 0) {
                        p class="goal" {
                            progress id="progress" max=(goal) value=(counts.signatures.min(goal))
                                aria-label={ (labels.goal) " " (goal) } {
                                (counts.signatures)
                            }
                        }
                    }
                    p {
                        @match &call {
                            Some((shown, target)) => {
                                (labels.embed_link) ": " a href=(target) { (shown) }
                            }
                            None => {
                                a href=(url) target="_blank" rel="noopener" { (labels.embed_link) }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut response =
        (StatusCode::OK, [(header::CACHE_CONTROL, "no-cache")], body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(EMBED_CONTENT_SECURITY_POLICY),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    response
}

/// `GET /static/embed.js`.
pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        EMBED_JS,
    )
        .into_response()
}
