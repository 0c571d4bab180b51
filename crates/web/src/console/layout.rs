//! The console's page frame, its static files and headers, and the home page.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;

use super::{Auth, Console};
use crate::html::{escape, path_segment};

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

fn head(title: &str) -> String {
    head_with(title, "")
}

fn head_with(title: &str, extra: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{} · belteken console</title>\
         <link rel=\"stylesheet\" href=\"/static/console.css\">\
         <script src=\"/static/console.js\" defer></script>{extra}</head>",
        escape(title)
    )
}

/// A page without the navigation (login, refusals).
pub(crate) fn page_bare(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "{}<body class=\"bare\"><main id=\"main\">{body}</main></body></html>",
        head(title)
    ))
}

/// A console page: navigation for the user's role, the logout form, and `body`.
pub(crate) fn page(auth: &Auth, title: &str, body: &str) -> Html<String> {
    page_with(auth, title, body, "")
}

/// [`page`] with more in its `<head>` (e.g. a refresh for the now view).
pub(crate) fn page_with(auth: &Auth, title: &str, body: &str, extra_head: &str) -> Html<String> {
    let mut nav =
        String::from("<a href=\"/console\">Campaigns</a><a href=\"/console/now\">Now</a>");
    if auth.is_admin() {
        nav.push_str("<a href=\"/console/audit\">Audit log</a><a href=\"/console/export\">Export and erasure</a>");
    }
    Html(format!(
        "{head}<body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><nav aria-label=\"Console\">{nav}</nav>\
         <form method=\"post\" action=\"/console/logout\" class=\"logout\">{csrf}\
         <span>{user} ({role})</span> <button type=\"submit\">Sign out</button></form></header>\
         <main id=\"main\"><h1>{title}</h1>{body}</main></body></html>",
        head = head_with(title, extra_head),
        csrf = csrf_field(auth),
        user = escape(&auth.user),
        role = auth.role.as_str(),
        title = escape(title),
    ))
}

/// The hidden CSRF field every console form carries.
pub(crate) fn csrf_field(auth: &Auth) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&auth.csrf)
    )
}

/// A page with a status and a message (errors for the person at the form).
pub(crate) fn message(auth: &Auth, status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        page(
            auth,
            title,
            &format!("<p role=\"alert\">{}</p>", escape(text)),
        ),
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
    let mut body = String::from(
        "<table><caption>Campaigns</caption><thead><tr><th scope=\"col\">Campaign</th>\
         <th scope=\"col\">Signatures</th><th scope=\"col\">Unverified</th>\
         <th scope=\"col\">To review</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
    );
    for (slug, counts, pending) in &rows {
        let title = console
            .app
            .web
            .campaign(slug)
            .map(|c| c.title.clone())
            .unwrap_or_else(|| slug.clone());
        let s = path_segment(slug);
        let mut actions = format!("<a href=\"/console/review/{s}\">Review</a>");
        if auth.is_admin() {
            actions.push_str(&format!(
                " · <a href=\"/console/bulk/{s}\">Bulk invalidation</a> · \
                 <a href=\"/console/funnel/{s}\">Funnel</a> · \
                 <a href=\"/console/campaign/{s}\">Edit</a>"
            ));
        }
        body.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{pending}</td><td>{actions}</td></tr>",
            escape(&title),
            counts.signatures,
            counts.unverified
        ));
    }
    body.push_str("</tbody></table>");
    if rows.is_empty() {
        body = "<p>No campaigns yet.</p>".into();
    }
    page(&auth, "Campaigns", &body).into_response()
}
