//! What rendering a public page costs, through the router as a request would reach it. Not
//! run by default (it measures, it asserts nothing about speed):
//!
//! ```sh
//! cargo test --release -p web --test render_cost -- --ignored --nocapture
//! ```
//!
//! It prints microseconds per request for the campaign page with its statistics (chart,
//! tables, Open Graph tags, embed code), the embeddable counter and the index.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use store::{CountHub, Secret};
use tower::ServiceExt;
use web::{router_with, Campaign, Options, WebState};

mod common;
use common::{sign, TempStore};

/// Requests timed per page, after as many to warm up.
const ROUNDS: u32 = 5_000;

fn campaign() -> Campaign {
    Campaign {
        slug: "demo".into(),
        title: "Save the \"park\" <now>".into(),
        number: Some("+32 2 000 00 00".into()),
        sip_uri: "sip:demo@127.0.0.1:5060".into(),
        transcript: "Save the <b>park</b>! Call now.\n\nSecond paragraph,\nwith a line break.\n\n\
                     A third paragraph that says a little more about the park."
            .into(),
        language: "en".into(),
        goal: Some(1000),
        translations: vec![web::Translation {
            language: "nl".into(),
            title: "Red het park".into(),
            transcript: "Red het park. Bel nu.".into(),
        }],
        ..Campaign::new("demo")
    }
}

/// The status and body of `GET uri`.
async fn get(app: &Router, uri: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, body.to_vec())
}

/// Microseconds per request for `uri`, and its body's length.
async fn time(app: &Router, uri: &str) -> (f64, usize) {
    let mut len = 0;
    for _ in 0..ROUNDS {
        len = get(app, uri).await.1.len();
    }
    let start = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(get(app, uri).await);
    }
    (start.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS), len)
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement; run it with --ignored --nocapture"]
async fn public_page_render_cost() {
    let temp = TempStore::new("render-cost");
    let store = temp.store.clone();
    store.ensure_campaign("demo", "Demo").expect("campaign");
    let secret = Secret::from_bytes([7; 32]);
    // Numbers from several countries and Belgian regions, so that every table has rows.
    for i in 0..60u32 {
        let number = match i % 6 {
            0 => format!("+3225{:06}", 100_000 + i),
            1 => format!("+3242{:06}", 100_000 + i),
            2 => format!("+3291{:06}", 100_000 + i),
            3 => format!("+32470{:06}", 100_000 + i),
            4 => format!("+3120{:07}", 1_000_000 + i),
            _ => format!("+3361{:07}", 1_000_000 + i),
        };
        sign(store.as_ref(), &number, &secret);
    }
    let state = WebState {
        campaigns: vec![campaign()].into(),
        hub: CountHub::default(),
    };
    state
        .hub
        .reset("demo", store.counts("demo").expect("counts"));
    let app = router_with(
        state,
        Options {
            store: Some(store.clone()),
            public_url: Some("https://sign.example.org".into()),
            ..Options::default()
        },
    );
    // The statistics are computed in the background: wait for the chart.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&get(&app, "/c/demo").await.1).contains("class=\"chart\"") {
        assert!(Instant::now() < deadline, "the statistics never came");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for uri in ["/c/demo", "/c/demo?lang=nl", "/embed/demo", "/"] {
        assert_eq!(get(&app, uri).await.0, StatusCode::OK, "{uri}");
        let (micros, len) = time(&app, uri).await;
        println!("{uri}: {micros:.1} µs per request, {len} bytes");
    }
}
