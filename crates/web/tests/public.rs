//! The public page's statistics (from a real SQLite store), the embeddable counter, Open
//! Graph tags and the OpenAPI document, through the router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use store::{CountHub, Secret, SignatureState};
use tower::ServiceExt;
use web::{router, router_with, Campaign, Options, WebState};

mod common;
use common::{sign, TempStore};

/// Only guards against a hanging test; never an assertion about speed.
const HANG_GUARD: Duration = Duration::from_secs(10);
/// How long a test waits for the background statistics (they refresh every few seconds).
const STATS_DEADLINE: Duration = Duration::from_secs(30);

fn view(slug: &str, title: &str) -> Campaign {
    Campaign {
        slug: slug.into(),
        title: title.into(),
        number: Some("+32 2 000 00 00".into()),
        sip_uri: format!("sip:{slug}@127.0.0.1:5060"),
        transcript: "Save the <b>park</b>! Call now.\n\nSecond paragraph.".into(),
        language: "en".into(),
        goal: Some(100),
        translations: vec![web::Translation {
            language: "nl".into(),
            title: "Red het park".into(),
            transcript: "Red het park. Bel nu.".into(),
        }],
        ..Campaign::new(slug)
    }
}

fn state() -> WebState {
    WebState {
        campaigns: vec![view("demo", "Save the \"park\" <now>")].into(),
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
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body readable");
    String::from_utf8(bytes.to_vec()).expect("utf-8 body")
}

fn header_of<'a>(response: &'a Response, name: &header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .expect("ASCII header")
}

/// Polls the page until `pred` holds for its body; panics at the deadline with the last body.
async fn page_until(app: &Router, uri: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + STATS_DEADLINE;
    loop {
        let body = text(get(app.clone(), uri).await).await;
        if pred(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "condition never held: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_page_shows_counted_signatures_over_time_by_country_and_region() {
    let temp = TempStore::new("stats");
    let store = temp.store.clone();
    store.ensure_campaign("demo", "Demo").expect("campaign");
    let secret = Secret::from_bytes([7; 32]);
    // Two Brussels landlines, one Liège landline, one Belgian mobile, one Dutch number.
    for number in [
        "+3225551234",
        "+3225551235",
        "+3242221111",
        "+32470123456",
        "+31201234567",
    ] {
        sign(store.as_ref(), number, &secret);
    }
    let state = state();
    let hub = state.hub.clone();
    hub.reset("demo", store.counts("demo").expect("counts"));
    let app = router_with(
        state,
        Options {
            store: Some(store.clone()),
            ..Options::default()
        },
    );
    let body = page_until(&app, "/c/demo", |b| b.contains("class=\"chart\"")).await;
    assert!(
        body.contains("role=\"img\" aria-labelledby=\"chart-title chart-desc\""),
        "{body}"
    );
    assert!(
        body.contains("<title id=\"chart-title\">Signatures over time</title>"),
        "{body}"
    );
    assert!(
        body.contains("<desc id=\"chart-desc\">5 signatures from "),
        "{body}"
    );
    // The text alternative: rows of (new, running total) per minute. The five signatures fall
    // in one minute, or two when the signing crossed a minute's end.
    let rows: Vec<(u64, u64)> = body
        .split("</tr>")
        .filter_map(|row| {
            let (rest, total) = row.strip_suffix("</td>")?.rsplit_once("<td>")?;
            let (_, new) = rest.strip_suffix("</td>")?.rsplit_once("<td>")?;
            Some((new.parse().ok()?, total.parse().ok()?))
        })
        .collect();
    assert!((1..=2).contains(&rows.len()), "{rows:?} {body}");
    assert_eq!(rows.iter().map(|(new, _)| new).sum::<u64>(), 5, "{body}");
    assert_eq!(rows.last().map(|(_, total)| *total), Some(5), "{body}");
    assert!(
        body.contains("<tr><th scope=\"row\">Belgium</th><td><span class=\"n\">4</span>"),
        "{body}"
    );
    assert!(
        body.contains("<tr><th scope=\"row\">Netherlands</th><td><span class=\"n\">1</span>"),
        "{body}"
    );
    assert!(
        body.contains("<tr><th scope=\"row\">Brussels</th><td><span class=\"n\">2</span>"),
        "{body}"
    );
    assert!(
        body.contains("<tr><th scope=\"row\">Wallonia</th><td><span class=\"n\">1</span>"),
        "{body}"
    );
    assert!(body.contains("Figures as of <time datetime=\""), "{body}");

    // A signature found invalid leaves the statistics at the next refresh.
    let rows = store.signature_rows("demo").expect("rows");
    let dutch = rows
        .iter()
        .find(|r| r.country.as_deref() == Some("NL"))
        .expect("the Dutch signature");
    store
        .set_states("demo", &[dutch.id], SignatureState::Invalid, "test", "test")
        .expect("review");
    // As the server's count sync does after a review: the live count drops, and with it the
    // statistics are read again.
    hub.reset("demo", store.counts("demo").expect("counts"));
    let body = page_until(&app, "/c/demo", |b| {
        b.contains("<desc id=\"chart-desc\">4 signatures")
    })
    .await;
    assert!(!body.contains("Netherlands"), "{body}");

    // In Dutch, with Dutch names.
    let nl = text(get(app.clone(), "/c/demo?lang=nl").await).await;
    assert!(nl.contains("<th scope=\"row\">België</th>"), "{nl}");
    assert!(nl.contains("<th scope=\"row\">Brussel</th>"), "{nl}");
}

#[tokio::test]
async fn open_graph_tags_use_the_public_address_and_escape_the_texts() {
    let app = router_with(
        state(),
        Options {
            public_url: Some("https://sign.example.org".into()),
            ..Options::default()
        },
    );
    let body = text(get(app.clone(), "/c/demo").await).await;
    assert!(
        body.contains(
            "<meta property=\"og:title\" content=\"Save the &quot;park&quot; &lt;now&gt;\">"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "<meta property=\"og:description\" content=\"Save the &lt;b&gt;park&lt;/b&gt;!\">"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "<meta property=\"og:url\" content=\"https://sign.example.org/c/demo?lang=en\">"
        ),
        "{body}"
    );
    assert!(
        body.contains("<meta name=\"twitter:card\" content=\"summary\">"),
        "{body}"
    );
    // The embed snippet names the public address.
    assert!(
        body.contains("&lt;script src=&quot;https://sign.example.org/static/embed.js&quot; data-campaign=&quot;demo&quot;"),
        "{body}"
    );
    assert!(
        body.contains("&lt;iframe src=&quot;https://sign.example.org/embed/demo?lang=en&quot; title=&quot;Live signature count&quot;"),
        "{body}"
    );
    let nl = text(get(app, "/c/demo?lang=nl").await).await;
    assert!(
        nl.contains("<meta property=\"og:description\" content=\"Red het park.\">"),
        "{nl}"
    );
    assert!(nl.contains("content=\"nl_BE\""), "{nl}");
}

#[tokio::test]
async fn the_embed_may_be_framed_anywhere_and_nothing_else_may() {
    let state = state();
    state.hub.publish(
        "demo",
        store::Counts {
            signatures: 42,
            unverified: 1,
        },
    );
    let app = router(state);
    let response = get(app.clone(), "/embed/demo?lang=nl").await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = header_of(&response, &header::CONTENT_SECURITY_POLICY).to_owned();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(response.headers().get(header::X_FRAME_OPTIONS).is_none());
    let body = text(response).await;
    assert!(body.contains("<html lang=\"nl\">"), "{body}");
    assert!(
        body.contains("data-events=\"/api/campaigns/demo/events\">42</span>"),
        "{body}"
    );
    assert!(body.contains("aria-live=\"polite\""), "{body}");
    assert!(body.contains(">Red het park</a>"), "{body}");
    assert!(body.contains("<a href=\"tel:+3220000000\">"), "{body}");
    assert!(
        body.contains("<progress id=\"progress\" max=\"100\" value=\"42\" aria-label=\"Doel: 100\">42</progress>"),
        "{body}"
    );

    let page = get(app.clone(), "/c/demo").await;
    assert!(header_of(&page, &header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
    assert_eq!(header_of(&page, &header::X_FRAME_OPTIONS), "DENY");

    let missing = get(app.clone(), "/embed/nope").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        header_of(&missing, &header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'")
    );

    let script = get(app, "/static/embed.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert!(header_of(&script, &header::CONTENT_TYPE).starts_with("text/javascript"));
    assert!(text(script).await.contains("/embed/"));
}

/// The `{slug}` of a documented path filled with a campaign that exists.
fn concrete(path: &str) -> String {
    path.replace("{slug}", "demo")
}

#[tokio::test]
async fn openapi_documents_every_api_route_with_its_caching() {
    let app = router(state());
    let response = get(app.clone(), "/api/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, &header::CACHE_CONTROL),
        "public, max-age=300"
    );
    let doc: serde_json::Value = serde_json::from_str(&text(response).await).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for expected in [
        "/api/campaigns",
        "/api/campaigns/{slug}",
        "/api/campaigns/{slug}/events",
        "/api/openapi.json",
        "/healthz",
        "/metrics",
        "/console/api/queue/{slug}",
        "/console/api/funnel/{slug}",
    ] {
        assert!(paths.contains_key(expected), "{expected} missing: {doc}");
    }
    // Every documented GET is served: a public one with the Cache-Control the document
    // states, one that needs a session or token is refused without it.
    for (path, methods) in paths {
        let methods = methods.as_object().expect("methods");
        for op in methods.values() {
            for r in find_refs(op) {
                let name = r.trim_start_matches("#/components/schemas/");
                assert!(doc["components"]["schemas"].get(name).is_some(), "{r}");
            }
        }
        let Some(get_op) = methods.get("get") else {
            continue;
        };
        let response = get(app.clone(), &concrete(path)).await;
        if get_op["security"] != serde_json::json!([]) {
            // Refused, and not because the route is missing; this router has no store, so
            // the console can check no session at all and answers 503.
            let status = response.status();
            assert!(
                (status.is_client_error() && status != StatusCode::NOT_FOUND)
                    || status == StatusCode::SERVICE_UNAVAILABLE,
                "{path} without credentials: {status}"
            );
            continue;
        }
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let cache_doc = get_op["responses"]["200"]["headers"]["Cache-Control"]["description"]
            .as_str()
            .expect("documented Cache-Control");
        let cache = header_of(&response, &header::CACHE_CONTROL);
        assert_eq!(cache_doc, format!("Always `{cache}`."), "{path}");
        if get_op["tags"][0] == "public" && !path.ends_with("/events") {
            assert!(cache.starts_with("public, max-age="), "{path} is cacheable");
        }
    }
    // The campaign schema lists exactly the fields the API answers with.
    let schema = &doc["components"]["schemas"]["Campaign"]["properties"];
    let answer: serde_json::Value =
        serde_json::from_str(&text(get(app, "/api/campaigns/demo").await).await).expect("JSON");
    let mut documented: Vec<&String> = schema.as_object().expect("properties").keys().collect();
    let mut served: Vec<&String> = answer.as_object().expect("object").keys().collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
}

fn find_refs(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| {
                if k == "$ref" {
                    v.as_str().map(str::to_owned).into_iter().collect()
                } else {
                    find_refs(v)
                }
            })
            .collect(),
        serde_json::Value::Array(items) => items.iter().flat_map(find_refs).collect(),
        _ => Vec::new(),
    }
}

/// API routes are mounted only from the documented table: no `/api/` path is spelled in a
/// `.route(` call of the router's source.
#[test]
fn no_api_route_is_mounted_outside_the_documented_table() {
    let source = include_str!("../src/lib.rs");
    for line in source.lines() {
        let line = line.trim();
        assert!(
            !(line.starts_with(".route(\"/api/")
                || line.starts_with(".route(\"/healthz")
                || line.starts_with(".route(\"/metrics")),
            "mount it through api::routes() so that /api/openapi.json documents it: {line}"
        );
    }
}

/// Checks the Prometheus text exposition format (0.0.4): every sample belongs to a family
/// announced by `# HELP` and `# TYPE` before it, names and labels are well formed, values are
/// numbers, and no family is announced twice. Returns the samples.
fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    let mut helped = std::collections::HashSet::new();
    let mut typed = std::collections::HashMap::new();
    let mut samples = Vec::new();
    let mut eof = false;
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        assert!(!eof, "a line after # EOF: {line}");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("name");
            assert!(valid_name(name), "{line}");
            assert!(helped.insert(name.to_owned()), "HELP twice: {line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("name and type");
            assert!(
                [
                    "counter",
                    "gauge",
                    "histogram",
                    "summary",
                    "unknown",
                    "info",
                    "stateset"
                ]
                .contains(&kind),
                "{line}"
            );
            assert!(
                typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice: {line}"
            );
        } else if line == "# EOF" {
            eof = true;
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
            let name = series.split('{').next().expect("name");
            assert!(valid_name(name), "{line}");
            if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
                let inner = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("labels: {line}"));
                for pair in inner.split(',') {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("label: {line}"));
                    assert!(valid_name(k), "{line}");
                    assert!(
                        v.starts_with('"') && v.ends_with('"') && v.len() >= 2,
                        "{line}"
                    );
                }
            }
            // OpenMetrics: a counter's samples end in _total, a histogram's in _bucket, _sum
            // and _count; other kinds' samples carry the family's name.
            let family = [
                ("_bucket", "histogram"),
                ("_sum", "histogram"),
                ("_count", "histogram"),
                ("_total", "counter"),
            ]
            .iter()
            .find_map(|(suffix, kind)| {
                let base = name.strip_suffix(suffix)?;
                (typed.get(base).map(String::as_str) == Some(*kind)).then_some(base)
            })
            .unwrap_or(name);
            assert_ne!(
                typed.get(name).map(String::as_str),
                Some("counter"),
                "a counter sample without _total: {line}"
            );
            assert!(typed.contains_key(family), "no # TYPE before {line}");
            assert!(helped.contains(family), "no # HELP before {line}");
            samples.push((series.to_owned(), value));
        }
    }
    assert!(eof, "no # EOF at the end");
    samples
}

struct HistogramStatus;

impl web::Status for HistogramStatus {
    fn health(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
    fn collectors(&self) -> Vec<Box<dyn web::Collector>> {
        vec![Box::new(XSeconds)]
    }
}

/// A histogram and a counter beside the web's gauges.
#[derive(Debug)]
struct XSeconds;

impl web::Collector for XSeconds {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        e.encode_descriptor("belteken_x_seconds", "X.", None, MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(0.35, 2, &[(0.1, 1), (f64::MAX, 1)], None)?;
        ConstCounter::new(5u64).encode(e.encode_descriptor(
            "belteken_y",
            "Y.",
            None,
            MetricType::Counter,
        )?)
    }
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text() {
    let state = state();
    state.hub.publish(
        "demo",
        store::Counts {
            signatures: 9,
            unverified: 2,
        },
    );
    let app = router_with(
        state,
        Options {
            status: Some(Arc::new(HistogramStatus)),
            ..Options::default()
        },
    );
    let samples = parse_exposition(&text(get(app, "/metrics").await).await);
    let value = |series: &str| {
        samples
            .iter()
            .find(|(s, _)| s == series)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{series} missing: {samples:?}"))
    };
    assert_eq!(value("belteken_signatures{campaign=\"demo\"}"), 9.0);
    assert_eq!(
        value("belteken_signatures_unverified{campaign=\"demo\"}"),
        2.0
    );
    assert_eq!(value("belteken_x_seconds_count"), 2.0);
    assert_eq!(value("belteken_x_seconds_bucket{le=\"+Inf\"}"), 2.0);
    assert_eq!(value("belteken_y_total"), 5.0);
}

#[test]
fn the_exposition_check_catches_a_sample_without_its_type() {
    let bad = std::panic::catch_unwind(|| parse_exposition("belteken_orphan 1\n# EOF\n"));
    assert!(bad.is_err());
    let bad = std::panic::catch_unwind(|| {
        parse_exposition("# HELP a A.\n# TYPE a gauge\na{x=1} 1\n# EOF\n")
    });
    assert!(bad.is_err(), "unquoted label value");
    let bad = std::panic::catch_unwind(|| parse_exposition("# HELP a A.\n# TYPE a gauge\na 1\n"));
    assert!(bad.is_err(), "no # EOF");
    let bad = std::panic::catch_unwind(|| {
        parse_exposition("# HELP a A.\n# TYPE a counter\na 1\n# EOF\n")
    });
    assert!(bad.is_err(), "a counter sample without _total");
    let good = parse_exposition("# HELP a A.\n# TYPE a counter\na_total 1\n# EOF\n");
    assert_eq!(good, vec![("a_total".to_string(), 1.0)]);
}

#[tokio::test]
async fn a_campaign_without_signatures_says_so_instead_of_an_empty_chart() {
    let temp = TempStore::new("empty");
    temp.store
        .ensure_campaign("demo", "Demo")
        .expect("campaign");
    let app = router_with(
        state(),
        Options {
            store: Some(temp.store.clone()),
            ..Options::default()
        },
    );
    let body = page_until(&app, "/c/demo", |b| b.contains("Figures as of")).await;
    assert!(
        body.contains("<p class=\"empty\">No signatures yet: be the first to call.</p>"),
        "{body}"
    );
    assert!(!body.contains("class=\"chart\""), "{body}");
}
