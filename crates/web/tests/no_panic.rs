//! No public request panics the web router or gets a server error: arbitrary paths, query
//! strings (`?lang=`) and Accept-Language headers on every public route. The console's forms
//! and uploads are searched by the fuzz target `console_forms` in `fuzz/`.

use axum::body::Body;
use axum::http::{header, Request};
use proptest::prelude::*;
use store::CountHub;
use tower::ServiceExt;
use web::{router, Campaign, WebState};

fn state() -> WebState {
    WebState {
        campaigns: vec![Campaign {
            slug: "demo".into(),
            title: "Demo".into(),
            number: Some("+32 2 000 00 00".into()),
            sip_uri: "sip:demo@127.0.0.1:5060".into(),
            transcript: "Story.".into(),
            language: "en".into(),
            goal: Some(100),
            translations: vec![web::Translation {
                language: "fr".into(),
                title: "Démo".into(),
                transcript: "Histoire.".into(),
            }],
            ..Campaign::new("demo")
        }]
        .into(),
        hub: CountHub::default(),
    }
}

const ROUTES: &[&str] = &[
    "/",
    "/c/demo",
    "/c/",
    "/embed/demo",
    "/api/campaigns/demo",
    "/api/openapi.json",
    "/healthz",
    "/console/login",
    "/static/embed.js",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_public_request(
        route in 0usize..ROUTES.len(),
        suffix in "[a-zA-Z0-9%/._~-]{0,24}",
        query in "[ -~]{0,40}",
        language in "[ -~]{0,60}",
    ) {
        let uri = format!(
            "{}{suffix}?{}",
            ROUTES[route],
            query.replace(['#', ' '], "")
        );
        let Ok(request) = Request::get(uri.as_str())
            .header(header::ACCEPT_LANGUAGE, language.as_str())
            .body(Body::empty())
        else {
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let status = runtime.block_on(async {
            router(state()).oneshot(request).await.expect("the router is infallible").status()
        });
        prop_assert!(!status.is_server_error(), "{uri}: {status}");
    }
}
