//! The console's page frame, its static files and headers, and the home page.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup, DOCTYPE};

use super::{Auth, Console};
use crate::html::path_segment;

const CONSOLE_CSS: &str = include_str!("../../static/console.css");
const CONSOLE_JS: &str = include_str!("../../static/console.js");

/// The console's policy: like the public pages' (`script-src 'self'`, no inline script or
/// style), but its forms post to itself and it plays recordings.
pub(crate) const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; media-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'; object-src 'none'";

/// Added to every console response.
pub(crate) async fn console_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

pub(crate) async fn console_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CONSOLE_CSS,
    )
        .into_response()
}

pub(crate) async fn console_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CONSOLE_JS,
    )
        .into_response()
}

/// A JSON error body, `{"error": message}`.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// A console document: its `<head>` (with `extra_head`), then `body`.
fn document(title: &str, extra_head: Markup, body_class: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · belteken console" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
                (extra_head)
            }
            body class=[body_class] { (body) }
        }
    }
}

/// A page without the navigation (login, refusals).
pub(crate) fn page_bare(title: &str, body: Markup) -> Markup {
    document(
        title,
        html! {},
        Some("bare"),
        html! { main id="main" { (body) } },
    )
}

/// A console page: navigation for the user's role, the logout form, and `body`.
pub(crate) fn page(auth: &Auth, title: &str, body: Markup) -> Markup {
    page_with(auth, title, body, html! {})
}

/// [`page`] with more in its `<head>` (e.g. a refresh for the now view).
pub(crate) fn page_with(auth: &Auth, title: &str, body: Markup, extra_head: Markup) -> Markup {
    let body = html! {
        a class="skip" href="#main" { "Skip to content" }
        header {
            nav aria-label="Console" {
                a href="/console" { "Campaigns" }
                a href="/console/now" { "Now" }
                @if auth.is_admin() {
                    a href="/console/audit" { "Audit log" }
                    a href="/console/export" { "Export and erasure" }
                }
            }
            form method="post" action="/console/logout" class="logout" {
                (csrf_field(auth))
                span { (auth.user) " (" (auth.role.as_str()) ")" }
                " "
                button type="submit" { "Sign out" }
            }
        }
        main id="main" {
            h1 { (title) }
            (body)
        }
    };
    document(title, extra_head, None, body)
}

/// The hidden CSRF field every console form carries.
pub(crate) fn csrf_field(auth: &Auth) -> Markup {
    html! { input type="hidden" name="csrf" value=(auth.csrf); }
}

/// A table's header row: one column heading per name.
pub(crate) fn head_row<T: AsRef<str>>(columns: &[T]) -> Markup {
    html! {
        thead {
            tr {
                @for c in columns {
                    th scope="col" { (c.as_ref()) }
                }
            }
        }
    }
}

/// A page with a status and a message (errors for the person at the form).
pub(crate) fn message(auth: &Auth, status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        page(auth, title, html! { p role="alert" { (text) } }),
    )
        .into_response()
}

/// The store, or the page saying the console cannot work without it.
pub(crate) fn store_of(
    console: &Console,
    auth: &Auth,
) -> Result<std::sync::Arc<dyn store::Store>, Response> {
    console.app.store.clone().ok_or_else(|| {
        message(
            auth,
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The console needs the store.",
        )
    })
}

/// Runs a blocking store call; a failure becomes an error page.
pub(crate) async fn blocking<T: Send + 'static>(
    auth: &Auth,
    f: impl FnOnce() -> Result<T, store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(store::StoreError::UnknownCampaign(_))) => Err(message(
            auth,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such campaign.",
        )),
        Ok(Err(e @ store::StoreError::Invalid { .. })) => Err(message(
            auth,
            StatusCode::BAD_REQUEST,
            "Not done",
            &e.to_string(),
        )),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "console store call failed");
            Err(message(
                auth,
                StatusCode::SERVICE_UNAVAILABLE,
                "Store error",
                "The store could not do this; nothing was changed. Try again.",
            ))
        }
        Err(_) => Err(message(
            auth,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "Internal error.",
        )),
    }
}

/// The home page: every campaign with its counts and what the user may do with it.
pub(crate) async fn home(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let rows = match blocking(&auth, move || {
        let mut out = Vec::new();
        for slug in store.campaigns()? {
            let counts = store.counts(&slug)?;
            let (_, pending) =
                store.signatures_in_state(&slug, store::SignatureState::Pending, 0, 0)?;
            out.push((slug, counts, pending));
        }
        Ok(out)
    })
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let titles: Vec<String> = rows
        .iter()
        .map(|(slug, _, _)| {
            console
                .app
                .web
                .campaign(slug)
                .map(|c| c.title.clone())
                .unwrap_or_else(|| slug.clone())
        })
        .collect();
    let body = html! {
        @if rows.is_empty() {
            p { "No campaigns yet." }
        } @else {
            table {
                caption { "Campaigns" }
                (head_row(&["Campaign", "Signatures", "Unverified", "To review", "Actions"]))
                tbody {
                    @for ((slug, counts, pending), title) in rows.iter().zip(&titles) {
                        @let s = path_segment(slug);
                        tr {
                            th scope="row" { (title) }
                            td { (counts.signatures) }
                            td { (counts.unverified) }
                            td { (pending) }
                            td {
                                a href={ "/console/review/" (s) } { "Review" }
                                @if auth.is_admin() {
                                    " · " a href={ "/console/bulk/" (s) } { "Bulk invalidation" }
                                    " · " a href={ "/console/funnel/" (s) } { "Funnel" }
                                    " · " a href={ "/console/campaign/" (s) } { "Edit" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&auth, "Campaigns", body).into_response()
}
