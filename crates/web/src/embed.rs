//! The embeddable counter: `/embed/{slug}`, a tiny page other sites may frame, and
//! `/static/embed.js`, the script a news site pastes to insert it.
//!
//! The page is as strict as the others except that any site may frame it
//! (`frame-ancestors *`); it updates live through the same event stream and `live.js`.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::html::{escape, path_segment, tel_target};
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
    let url = escape(&format!(
        "{}?lang={}",
        pages::campaign_url(&state, &view.slug),
        path_segment(language)
    ));
    let events = escape(&format!(
        "/api/campaigns/{}/events",
        path_segment(&view.slug)
    ));
    let mut body = format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title}</title>\n<link rel=\"stylesheet\" href=\"/static/style.css\">\n\
<script src=\"/static/live.js\" defer></script>\n</head>\n<body class=\"embed\">\n<main>\n\
<p class=\"title\"><a href=\"{url}\" target=\"_blank\" rel=\"noopener\">{title}</a></p>\n\
<p class=\"count\" role=\"status\" aria-live=\"polite\" aria-atomic=\"true\">\
<span id=\"count\" data-events=\"{events}\">{n}</span> <span class=\"unit\">{unit}</span></p>\n",
        lang = labels.lang,
        title = escape(title),
        n = counts.signatures,
        unit = labels.count_unit,
    );
    let call = match view
        .number
        .as_deref()
        .and_then(|n| tel_target(n).map(|t| (n, t)))
    {
        Some((shown, target)) => format!(
            "{}: <a href=\"{}\">{}</a>",
            labels.embed_link,
            escape(&target),
            escape(shown)
        ),
        None => format!(
            "<a href=\"{url}\" target=\"_blank\" rel=\"noopener\">{}</a>",
            labels.embed_link
        ),
    };
    if let Some(goal) = view.goal.filter(|g| *g > 0) {
        let _ = writeln!(
            body,
            "<p class=\"goal\"><progress id=\"progress\" max=\"{goal}\" value=\"{}\" \
aria-label=\"{} {goal}\">{}</progress></p>",
            counts.signatures.min(goal),
            labels.goal,
            counts.signatures
        );
    }
    let _ = write!(body, "<p>{call}</p>\n</main>\n</body>\n</html>\n");
    let mut response = (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-cache")],
        Html(body),
    )
        .into_response();
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
