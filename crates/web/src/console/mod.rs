//! The campaign team's console under `/console`: login, review, bulk invalidation, the audit
//! log, export and erasure, the now view, the funnel, campaign editing and the admin JSON API.
//!
//! Every route is in [`table`] with who may use it; [`routes`] builds the router from that
//! table and puts the guard in front of each route, so a route cannot be added without
//! saying who may reach it (the tests walk the same table). The guard finds the session (a
//! cookie holding a random 256-bit token, stored in the store only as its hash) or, on
//! `/console/api/`, an API token; refuses requests without one; checks the role; and on every
//! POST checks the Origin/Referer (when sent) and the session's CSRF token (a form field
//! `csrf`, the `X-CSRF-Token` header, or for file uploads the `csrf` query parameter).

// Handlers answer early with a ready page; boxing every such Response buys nothing.
#![allow(clippy::result_large_err)]

pub(crate) mod api;
pub(crate) mod auth;
mod charts;
mod edit;
mod layout;
mod now;
mod review;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::AppState;

pub(crate) use auth::Auth;

/// Who may use a route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Access {
    /// Anyone (the login page and the console's static files).
    Public,
    /// Any signed-in user: admins and reviewers.
    Reviewer,
    /// Admins only.
    Admin,
}

/// One console route.
pub(crate) struct Route {
    /// Read by the tests that walk the table.
    #[cfg_attr(not(test), allow(dead_code))]
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub handler: MethodRouter<Console>,
}

/// The console's shared state: the app's, plus the login rate limiter and session limits.
#[derive(Clone)]
pub(crate) struct Console {
    pub app: AppState,
    pub limiter: Arc<auth::LoginLimiter>,
    pub limits: store::SessionLimits,
    /// Password checks running at once, at most [`MAX_PASSWORD_CHECKS`].
    pub verifying: Arc<tokio::sync::Semaphore>,
}

/// Password checks (argon2id, 19 MiB each) that may run at once.
pub(crate) const MAX_PASSWORD_CHECKS: usize = 4;

/// Largest audio file the upload form takes.
pub(crate) const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;

/// The audio upload route: the one that takes files, so larger bodies.
const UPLOAD_ROUTE: &str = "/console/campaign/{slug}/clip/{clip}/{lang}";
/// Largest body of an upload request: the file and the multipart framing around it.
const MAX_UPLOAD_BODY_BYTES: usize = MAX_UPLOAD_BYTES + 64 * 1024;

/// The routes whose bodies may be larger than [`crate::serve::MAX_BODY_BYTES`], with their
/// limit in bytes.
pub(crate) fn larger_bodies() -> &'static [(&'static str, usize)] {
    &[(UPLOAD_ROUTE, MAX_UPLOAD_BODY_BYTES)]
}

/// Every console route. Handlers behind `Reviewer` or `Admin` get an [`Auth`] extension.
pub(crate) fn table() -> Vec<Route> {
    use Access::*;
    let r = |method, path, access, handler| Route {
        method,
        path,
        access,
        handler,
    };
    vec![
        r(
            "GET",
            "/static/console.css",
            Public,
            get(layout::console_css),
        ),
        r("GET", "/static/console.js", Public, get(layout::console_js)),
        r("GET", "/console/login", Public, get(auth::login_page)),
        r("POST", "/console/login", Public, post(auth::login)),
        r("POST", "/console/logout", Reviewer, post(auth::logout)),
        r("GET", "/console", Reviewer, get(layout::home)),
        r(
            "GET",
            "/console/review/{slug}",
            Reviewer,
            get(review::queue),
        ),
        r(
            "POST",
            "/console/review/{slug}/{id}",
            Reviewer,
            post(review::judge),
        ),
        r(
            "GET",
            "/console/recording/{slug}/{id}",
            Reviewer,
            get(review::recording),
        ),
        r("GET", "/console/bulk/{slug}", Admin, get(review::bulk_form)),
        r(
            "POST",
            "/console/bulk/{slug}",
            Admin,
            post(review::bulk_apply),
        ),
        r(
            "POST",
            "/console/revert/{action}",
            Admin,
            post(review::revert),
        ),
        r("GET", "/console/audit", Admin, get(review::audit)),
        r("GET", "/console/export", Admin, get(review::export_form)),
        r(
            "POST",
            "/console/export/{slug}",
            Admin,
            post(review::export),
        ),
        r("POST", "/console/erase", Admin, post(review::erase)),
        r("GET", "/console/now", Reviewer, get(now::now)),
        r("GET", "/console/funnel/{slug}", Admin, get(now::funnel)),
        r("GET", "/console/campaign/{slug}", Admin, get(edit::form)),
        r("POST", "/console/campaign/{slug}", Admin, post(edit::save)),
        r(
            "POST",
            UPLOAD_ROUTE,
            Admin,
            post(edit::upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY_BYTES)),
        ),
        r("GET", UPLOAD_ROUTE, Admin, get(edit::clip)),
        r(
            "GET",
            "/console/api/queue/{slug}",
            Reviewer,
            get(api::queue),
        ),
        r(
            "POST",
            "/console/api/review/{slug}/{id}",
            Reviewer,
            post(api::judge),
        ),
        r("GET", "/console/api/funnel/{slug}", Admin, get(api::funnel)),
    ]
}

/// The console's routes, guarded as [`table`] says.
pub(crate) fn routes(app: AppState) -> Router<AppState> {
    let console = Console {
        app,
        limiter: Arc::new(auth::LoginLimiter::default()),
        limits: store::SessionLimits::default(),
        verifying: Arc::new(tokio::sync::Semaphore::new(MAX_PASSWORD_CHECKS)),
    };
    let mut router: Router<Console> = Router::new();
    for route in table() {
        let handler = match route.access {
            Access::Public => route.handler,
            access => route
                .handler
                .route_layer(axum::middleware::from_fn_with_state(
                    (console.clone(), access),
                    auth::guard,
                )),
        };
        router = router.route(route.path, handler);
    }
    router
        .layer(axum::middleware::map_response(layout::console_headers))
        .with_state(console)
}
