//! The router end to end through `tower::ServiceExt::oneshot`: pages, JSON API, SSE, headers.

use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use futures_util::StreamExt;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use store::{CountHub, Counts};
use tower::ServiceExt;
use web::{router, router_with, Campaign, Options, WebState};

/// Only guards against a hanging test; never an assertion about speed.
const HANG_GUARD: Duration = Duration::from_secs(10);

const EVIL_TITLE: &str = "Save the <script>alert(1)</script> park & \"square\"";

fn campaigns() -> Vec<Campaign> {
    vec![
        Campaign {
            slug: "demo".into(),
            title: "Demo: call and sign".into(),
            number: Some("+32 2 000 00 00".into()),
            sip_uri: "sip:demo@127.0.0.1:5060".into(),
            transcript: "First paragraph.\n\nSecond <b>bold</b> & more.".into(),
            language: "en".into(),
            goal: Some(1000),
            translations: vec![web::Translation {
                language: "fr".into(),
                title: "Démo : appeler et signer".into(),
                transcript: "Premier paragraphe.".into(),
            }],
            ..Campaign::new("demo")
        },
        Campaign {
            slug: "evil".into(),
            title: EVIL_TITLE.into(),
            number: None,
            sip_uri: "sip:evil@127.0.0.1:5060".into(),
            transcript: "<script>alert('t')</script>".into(),
            language: "nl".into(),
            goal: None,
            translations: Vec::new(),
            ..Campaign::new("evil")
        },
    ]
}

fn state() -> WebState {
    WebState {
        campaigns: campaigns().into(),
        hub: CountHub::default(),
    }
}

async fn get(app: Router, uri: &str) -> Response {
    let request = Request::get(uri)
        .body(Body::empty())
        .expect("static request is valid");
    tokio::time::timeout(HANG_GUARD, app.oneshot(request))
        .await
        .expect("response in time")
        .expect("router is infallible")
}

async fn text(response: Response) -> String {
    let bytes = tokio::time::timeout(
        HANG_GUARD,
        axum::body::to_bytes(response.into_body(), 1 << 20),
    )
    .await
    .expect("body in time")
    .expect("body readable");
    String::from_utf8(bytes.to_vec()).expect("utf-8 body")
}

async fn json(response: Response) -> serde_json::Value {
    serde_json::from_str(&text(response).await).expect("JSON body")
}

fn header_of(response: &Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .expect("ASCII header")
}

fn assert_security_headers(response: &Response) {
    let csp = header_of(response, header::CONTENT_SECURITY_POLICY);
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(
        header_of(response, header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
    assert_eq!(header_of(response, header::REFERRER_POLICY), "no-referrer");
}

#[tokio::test]
async fn healthz_is_ok() {
    let response = get(router(state()), "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response);
    assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-store");
    assert_eq!(json(response).await, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn campaign_page_shows_title_number_sip_transcript_and_count() {
    let state = state();
    state.hub.publish(
        "demo",
        Counts {
            signatures: 1234,
            unverified: 56,
        },
    );
    let response = get(router(state), "/c/demo").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response);
    assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/html"));
    let body = text(response).await;

    assert!(
        body.to_ascii_lowercase().starts_with("<!doctype html>"),
        "{body}"
    );
    assert!(body.contains("<html lang=\"en\">"), "{body}");
    for landmark in ["<header>", "<main id=\"main\" tabindex=\"-1\">", "<footer>"] {
        assert!(body.contains(landmark), "missing {landmark}: {body}");
    }
    assert!(body.contains("<h1>Demo: call and sign</h1>"), "{body}");
    assert!(
        body.contains("<title>Demo: call and sign</title>"),
        "{body}"
    );
    assert!(
        body.contains("<a href=\"tel:+3220000000\">+32 2 000 00 00</a>"),
        "{body}"
    );
    assert!(
        body.contains("<a href=\"sip:demo@127.0.0.1:5060\">sip:demo@127.0.0.1:5060</a>"),
        "{body}"
    );
    assert!(body.contains("<p>First paragraph.</p>"), "{body}");
    assert!(
        body.contains("<p>Second &lt;b&gt;bold&lt;/b&gt; &amp; more.</p>"),
        "{body}"
    );
    assert!(
        body.contains(
            "<p class=\"count\" role=\"status\" aria-live=\"polite\" aria-atomic=\"true\" \
             aria-labelledby=\"count-heading\"><span id=\"count\" \
             data-events=\"/api/campaigns/demo/events\">1234</span> \
             <span class=\"unit\">signatures</span></p>"
        ),
        "{body}"
    );
    assert!(body.contains("<span id=\"unverified\">56</span>"), "{body}");
    assert!(body.contains("Unverified signatures:"), "{body}");
    assert!(
        body.contains("<progress id=\"progress\" max=\"1000\" value=\"1000\">1234</progress>"),
        "the goal is reached and the bar full: {body}"
    );
    // The only script is the external one; no inline code.
    assert_eq!(body.matches("<script").count(), 1, "{body}");
    assert!(
        body.contains("<script src=\"/static/live.js\" defer></script>"),
        "{body}"
    );
    assert!(
        body.contains("<a class=\"skip\" href=\"#main\">Skip to content</a>"),
        "{body}"
    );
    assert!(body.contains("1234 of 1000 (123%)"), "{body}");
    // Open Graph from the first sentence; no og:url without a configured public address.
    assert!(
        body.contains("<meta property=\"og:title\" content=\"Demo: call and sign\">"),
        "{body}"
    );
    assert!(
        body.contains("<meta property=\"og:description\" content=\"First paragraph.\">"),
        "{body}"
    );
    assert!(!body.contains("og:url"), "{body}");
    assert!(
        !body.contains("embed-snippet"),
        "no embed code to paste elsewhere without an absolute address: {body}"
    );
    assert!(!body.contains("og:image"), "{body}");
    // Without a store there are no statistics to show.
    assert!(!body.contains("class=\"chart\""), "{body}");
}

#[tokio::test]
async fn campaign_page_escapes_title_and_transcript() {
    let response = get(router(state()), "/c/evil").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text(response).await;
    let escaped_title =
        "Save the &lt;script&gt;alert(1)&lt;/script&gt; park &amp; &quot;square&quot;";
    assert!(
        body.contains(&format!("<h1>{escaped_title}</h1>")),
        "{body}"
    );
    assert!(
        body.contains(&format!("<title>{escaped_title}</title>")),
        "{body}"
    );
    assert!(
        body.contains("<p>&lt;script&gt;alert('t')&lt;/script&gt;</p>"),
        "{body}"
    );
    assert!(!body.contains("alert(1)</script>"), "{body}");
    assert!(!body.contains("<script>"), "{body}");
    // No number configured: no tel link. Dutch labels and lang.
    assert!(!body.contains("tel:"), "{body}");
    assert!(body.contains("<html lang=\"nl\">"), "{body}");
    assert!(body.contains("Handtekeningen"), "{body}");
    // Counts default to zero before anything is published.
    assert!(body.contains("data-events=\"/api/campaigns/evil/events\">0</span>"));
}

#[tokio::test]
async fn unknown_campaign_page_is_an_html_404() {
    let response = get(router(state()), "/c/nope").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&response);
    assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/html"));
    let body = text(response).await;
    assert!(body.contains("<h1>Campaign not found</h1>"), "{body}");

    let response = get(router(state()), "/no/such/path").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/html"));
}

#[tokio::test]
async fn index_links_every_campaign() {
    let response = get(router(state()), "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text(response).await;
    assert!(
        body.contains("<li><a href=\"/c/demo\">Demo: call and sign</a> <span class=\"tally-line\">0 signatures</span></li>"),
        "{body}"
    );
    assert!(
        body.contains("<a href=\"/c/evil\">Save the &lt;script&gt;"),
        "{body}"
    );
    assert!(!body.contains("<script>"), "{body}");
}

#[tokio::test]
async fn static_files_have_their_types() {
    let response = get(router(state()), "/static/live.js").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/javascript"));
    assert!(text(response).await.contains("EventSource"));

    let response = get(router(state()), "/static/style.css").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/css"));
}

#[tokio::test]
async fn api_campaign_shows_counts_from_the_hub() {
    let state = state();
    state.hub.publish(
        "demo",
        Counts {
            signatures: 7,
            unverified: 2,
        },
    );
    let response = get(router(state), "/api/campaigns/demo").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response);
    assert_eq!(
        header_of(&response, header::CACHE_CONTROL),
        "public, max-age=1"
    );
    assert_eq!(
        json(response).await,
        serde_json::json!({
            "slug": "demo",
            "title": "Demo: call and sign",
            "signatures": 7,
            "unverified": 2,
            "sip_uri": "sip:demo@127.0.0.1:5060",
            "number": "+32 2 000 00 00",
            "language": "en",
        })
    );
}

#[tokio::test]
async fn api_list_has_every_campaign() {
    let response = get(router(state()), "/api/campaigns").await;
    assert_eq!(response.status(), StatusCode::OK);
    let value = json(response).await;
    let list = value["campaigns"].as_array().expect("campaigns array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["slug"], "demo");
    assert_eq!(list[1]["slug"], "evil");
    assert_eq!(list[1]["number"], serde_json::Value::Null);
    assert_eq!(list[1]["signatures"], 0);
}

#[tokio::test]
async fn api_unknown_campaign_is_a_json_404() {
    for uri in ["/api/campaigns/nope", "/api/campaigns/nope/events"] {
        let response = get(router(state()), uri).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_security_headers(&response);
        assert_eq!(
            json(response).await,
            serde_json::json!({"error": "unknown campaign"}),
            "{uri}"
        );
    }
    let response = get(router(state()), "/api/nothing").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json(response).await,
        serde_json::json!({"error": "not found"})
    );
}

/// Reads the body until one whole event (ended by a blank line) that is not a keep-alive
/// comment has arrived; returns its text.
async fn next_event(body: &mut BodyDataStream, buffer: &mut String) -> Option<String> {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let is_comment = event.lines().all(|line| line.starts_with(':'));
            if !is_comment {
                return Some(event);
            }
        }
        let chunk = tokio::time::timeout(HANG_GUARD, body.next())
            .await
            .expect("event in time")?
            .expect("body chunk");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8 event"));
    }
}

#[tokio::test]
async fn events_send_the_current_count_then_each_change() {
    let state = state();
    let hub = state.hub.clone();
    hub.publish(
        "demo",
        Counts {
            signatures: 3,
            unverified: 1,
        },
    );
    let response = get(router(state), "/api/campaigns/demo/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response);
    assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/event-stream"));
    let mut body = response.into_body().into_data_stream();
    let mut buffer = String::new();

    let first = next_event(&mut body, &mut buffer)
        .await
        .expect("first event");
    assert_eq!(
        first,
        "event: count\ndata: {\"signatures\":3,\"unverified\":1}\n\n"
    );

    hub.publish(
        "demo",
        Counts {
            signatures: 4,
            unverified: 1,
        },
    );
    let second = next_event(&mut body, &mut buffer)
        .await
        .expect("second event");
    assert_eq!(
        second,
        "event: count\ndata: {\"signatures\":4,\"unverified\":1}\n\n"
    );

    // A burst: the stream may skip values in between, but must end on the latest.
    for n in 5..=20 {
        hub.publish(
            "demo",
            Counts {
                signatures: n,
                unverified: 2,
            },
        );
    }
    let latest = "event: count\ndata: {\"signatures\":20,\"unverified\":2}\n\n";
    loop {
        let event = next_event(&mut body, &mut buffer)
            .await
            .expect("burst event");
        if event == latest {
            break;
        }
        assert!(
            event.starts_with("event: count\ndata: {\"signatures\":"),
            "{event}"
        );
    }
}

#[tokio::test]
async fn events_are_limited_and_end_on_shutdown() {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let app = router_with(
        state(),
        Options {
            max_event_streams: 1,
            shutdown: Some(shutdown),
            ..Options::default()
        },
    );

    let response = get(app.clone(), "/api/campaigns/demo/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let mut buffer = String::new();
    let first = next_event(&mut body, &mut buffer)
        .await
        .expect("first event");
    assert!(first.contains("\"signatures\":0"), "{first}");

    // The one slot is taken: the next viewer is told to come back later.
    let refused = get(app.clone(), "/api/campaigns/evil/events").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));

    // Shutdown ends the open stream, which gives its slot back.
    stop.send(true).expect("stream holds a receiver");
    assert_eq!(next_event(&mut body, &mut buffer).await, None);
    drop(body);
    let response = get(app, "/api/campaigns/evil/events").await;
    assert_eq!(response.status(), StatusCode::OK);
}

struct FakeStatus;

impl web::Status for FakeStatus {
    fn health(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("calls_in_progress".into(), 3.into());
        m.insert("status".into(), "overridden?".into());
        m
    }
    fn collectors(&self) -> Vec<Box<dyn web::Collector>> {
        vec![Box::new(TestGauge)]
    }
}

#[derive(Debug)]
struct TestGauge;

impl web::Collector for TestGauge {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        ConstGauge::new(7i64).encode(e.encode_descriptor(
            "belteken_test",
            "A test figure.",
            None,
            MetricType::Gauge,
        )?)
    }
}

#[tokio::test]
async fn health_and_metrics_include_the_status() {
    let app = router_with(
        state(),
        Options {
            status: Some(std::sync::Arc::new(FakeStatus)),
            ..Options::default()
        },
    );
    let response = get(app.clone(), "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["status"], "ok", "the status field is ours: {json}");
    assert_eq!(json["calls_in_progress"], 3);

    let response = get(app, "/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/openmetrics-text; version=1.0.0"));
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(text.contains("belteken_test 7\n"), "{text}");
    assert!(
        text.contains("belteken_signatures{campaign=\"demo\"}"),
        "{text}"
    );
    assert!(text.contains("belteken_sse_streams 0\n"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

async fn page_with(app: Router, uri: &str, accept: Option<&str>) -> String {
    let mut req = axum::http::Request::builder().uri(uri);
    if let Some(a) = accept {
        req = req.header("accept-language", a);
    }
    let response = app
        .oneshot(req.body(axum::body::Body::empty()).expect("request"))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["vary"], "Accept-Language");
    text(response).await
}

#[tokio::test]
async fn the_page_speaks_the_visitors_language_and_links_the_others() {
    let app = router(state());
    // Default: the campaign's own language.
    let en = page_with(app.clone(), "/c/demo", None).await;
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("<h1>Demo: call and sign</h1>"),
        "{en}"
    );
    assert!(en.contains("hreflang=\"fr\">Français</a>"), "{en}");
    assert!(en.contains("aria-current=\"page\">English</a>"), "{en}");
    // Accept-Language, by quality; unknown languages are skipped.
    let fr = page_with(app.clone(), "/c/demo", Some("de-DE, fr-BE;q=0.8, en;q=0.5")).await;
    assert!(fr.contains("<html lang=\"fr\">"), "{fr}");
    assert!(fr.contains("<h1>Démo : appeler et signer</h1>"), "{fr}");
    assert!(fr.contains("<p>Premier paragraphe.</p>"), "{fr}");
    assert!(fr.contains("Signatures à ce jour"), "{fr}");
    // ?lang= wins over the header; a language the campaign lacks is ignored.
    let en2 = page_with(app.clone(), "/c/demo?lang=en", Some("fr")).await;
    assert!(en2.contains("<html lang=\"en\">"), "{en2}");
    let en3 = page_with(app, "/c/demo?lang=xx", None).await;
    assert!(en3.contains("<html lang=\"en\">"), "{en3}");
}

/// A status whose core part named "sip" stopped.
struct StoppedStatus;

impl web::Status for StoppedStatus {
    fn health(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
    fn stopped(&self) -> Vec<String> {
        vec!["sip".into()]
    }
}

#[tokio::test]
async fn healthz_is_503_naming_a_part_that_stopped() {
    let app = router_with(
        state(),
        Options {
            status: Some(std::sync::Arc::new(StoppedStatus)),
            ..Options::default()
        },
    );
    let response = get(app, "/healthz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["status"], "failed");
    assert_eq!(json["stopped"], serde_json::json!(["sip"]));
}

#[tokio::test]
async fn a_handler_that_panics_answers_500_and_the_router_goes_on() {
    async fn boom() -> &'static str {
        panic!("a test handler that panics")
    }
    let app = Router::new()
        .route("/boom", axum::routing::get(boom))
        .route("/fine", axum::routing::get(|| async { "fine" }))
        .layer(axum::middleware::from_fn(web::catch_panic));
    let response = get(app.clone(), "/boom").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let response = get(app, "/fine").await;
    assert_eq!(response.status(), StatusCode::OK);
}
