//! The now view (the line's state, calls and signatures per minute) and the funnel with the
//! listening curve.

use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

use super::charts;
use super::layout::{blocking, head_row, page, page_with, store_of};
use super::{Auth, Console};
use crate::html::path_segment;

/// Signatures per minute over the last hour, oldest minute first (60 values), from the
/// store's per-minute counts.
fn per_minute(minutes: &[(String, u64)], now: SystemTime) -> Vec<u64> {
    let mut out = vec![0u64; 60];
    for (minute, n) in minutes {
        let Some(at) = store::parse_rfc3339(&format!("{minute}:00Z")) else {
            continue;
        };
        let Ok(ago) = now.duration_since(at) else {
            continue;
        };
        let m = (ago.as_secs() / 60) as usize;
        if let Some(slot) = 59usize.checked_sub(m).and_then(|i| out.get_mut(i)) {
            *slot += n;
        }
    }
    out
}

pub(crate) async fn now(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let at = SystemTime::now();
    let hour_ago = at - Duration::from_secs(3600);
    let minute_ago = at - Duration::from_secs(60);
    let figures = match blocking(&auth, move || {
        let mut out = Vec::new();
        for slug in store.campaigns()? {
            let minutes = store.signatures_by_minute(&slug, hour_ago)?;
            let sigs = per_minute(&minutes, at);
            let calls_hour = store.funnel(&slug, None, Some(hour_ago), None)?.calls;
            let calls_minute = store.funnel(&slug, None, Some(minute_ago), None)?.calls;
            // Calls per minute: one small indexed count per minute of the last hour.
            let mut calls = Vec::with_capacity(60);
            for m in (0..60u64).rev() {
                let from = at - Duration::from_secs((m + 1) * 60);
                let to = at - Duration::from_secs(m * 60);
                calls.push(if calls_hour == 0 {
                    0
                } else {
                    store.funnel(&slug, None, Some(from), Some(to))?.calls
                });
            }
            out.push((slug, sigs, calls_hour, calls_minute, calls));
        }
        Ok(out)
    })
    .await
    {
        Ok(f) => f,
        Err(r) => return r,
    };
    let health = console.app.status.as_ref().map(|status| status.detail());
    let body = html! {
        section aria-labelledby="line" {
            h2 id="line" { "The line" }
            @if let Some(health) = &health {
                table {
                    caption { "Server state" }
                    tbody {
                        @for (k, v) in health {
                            @if !v.is_array() {
                                tr { th scope="row" { (k.replace('_', " ")) } td { (text_of(v)) } }
                            }
                        }
                    }
                }
                @for (k, v) in health {
                    @if let serde_json::Value::Array(items) = v {
                        (table_of(k, items))
                    }
                }
            } @else {
                p { "No line status on this server." }
            }
        }
        @for (slug, sigs, calls_hour, calls_minute, calls) in &figures {
            (campaign_now(slug, sigs, *calls_hour, *calls_minute, calls))
        }
        // The team keeps this open: it reloads itself (no script needed).
        p class="note" { "This page reloads every 15 seconds." }
    };
    page_with(
        &auth,
        "Now",
        body,
        html! { meta http-equiv="refresh" content="15"; },
    )
    .into_response()
}

/// One campaign's figures and charts in the now view.
fn campaign_now(
    slug: &str,
    sigs: &[u64],
    calls_hour: u64,
    calls_minute: u64,
    calls: &[u64],
) -> Markup {
    let last_minute = sigs.last().copied().unwrap_or(0);
    let hour: u64 = sigs.iter().sum();
    // A count per minute over the last hour, as a line.
    let per_minute = |id: &str, title: &str, desc: &str, counts: &[u64]| {
        let values: Vec<f64> = counts.iter().map(|&v| v as f64).collect();
        charts::line(
            &format!("{id}-{}", path_segment(slug)),
            &format!("{title}, {slug}, last hour"),
            desc,
            "minutes (0 = an hour ago, 59 = now)",
            &values,
            0.0,
            &|v| format!("{v:.0}"),
        )
    };
    let chart = per_minute(
        "spm",
        "Signatures per minute",
        &format!("{hour} signatures in the last hour, {last_minute} in the last minute"),
        sigs,
    );
    let calls_chart = per_minute(
        "cpm",
        "Calls per minute",
        &format!("{calls_hour} calls ended in the last hour, {calls_minute} in the last minute"),
        calls,
    );
    html! {
        section {
            h2 { (slug) }
            dl class="figures" {
                dt { "Calls, last minute" } dd { (calls_minute) }
                dt { "Calls, last hour" } dd { (calls_hour) }
                dt { "Signatures, last minute" } dd { (last_minute) }
                dt { "Signatures, last hour" } dd { (hour) }
            }
            div class="charts" { (calls_chart) (chart) }
        }
    }
}

/// A JSON value as text: a string without its quotes.
fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON value as a table cell shows it: as [`text_of`], and nothing for null.
fn shown(value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => text_of(other),
    }
}

/// A table of a list of JSON objects (e.g. the trunks, the calls per flow step).
fn table_of(name: &str, items: &[serde_json::Value]) -> Markup {
    let caption = name.replace('_', " ");
    let Some(serde_json::Value::Object(first)) = items.first() else {
        return html! { p { (caption) ": none." } };
    };
    let columns: Vec<&String> = first.keys().collect();
    html! {
        table class=(name) {
            caption { (caption) }
            (head_row(&columns.iter().map(|c| c.replace('_', " ")).collect::<Vec<_>>()))
            tbody {
                @for item in items {
                    tr {
                        @for c in &columns {
                            td { (shown(item.get(c.as_str()))) }
                        }
                    }
                }
            }
        }
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct FunnelQuery {
    #[serde(default)]
    version: Option<String>,
}

/// The funnel page: bars, the listening curve, and their tables.
pub(crate) async fn funnel(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path(slug): Path<String>,
    Query(q): Query<FunnelQuery>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let version = q.version.filter(|v| !v.trim().is_empty());
    let s2 = slug.clone();
    let v2 = version.clone();
    let f = match blocking(&auth, move || store.funnel(&s2, v2.as_deref(), None, None)).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    body_of(&auth, &slug, version.as_deref(), &f)
}

fn body_of(auth: &Auth, slug: &str, version: Option<&str>, f: &store::Funnel) -> Response {
    let steps: Vec<(String, u64)> = vec![
        ("calls".into(), f.calls),
        ("answered".into(), f.answered),
        ("heard the story".into(), f.story_completed),
        ("recorded".into(), f.recorded),
        ("signed".into(), f.signed),
    ];
    let answered = f.curve.first().copied().unwrap_or(0);
    let shares: Vec<f64> = f
        .curve
        .iter()
        .map(|&n| n as f64 * 100.0 / answered.max(1) as f64)
        .collect();
    // At most about 30 rows of the curve, and always its last second.
    let step = (f.curve.len() / 30).max(1);
    let body = html! {
        form method="get" class="inline" {
            label for="version" { "Flow version" }
            input id="version" name="version" value=(version.unwrap_or("")) maxlength="64";
            " "
            button { "Show" }
        }
        div class="chart-with-table" {
            (charts::bars(
                "funnel",
                &format!("Funnel of {slug}"),
                "How many calls reached each step; the table beside has the same figures.",
                &steps,
            ))
            table class="funnel" {
                caption { "Funnel" }
                (head_row(&["Step", "Calls", "Share of calls"]))
                tbody {
                    @for (label, n) in &steps {
                        @let share = if f.calls > 0 { *n as f64 * 100.0 / f.calls as f64 } else { 0.0 };
                        tr { th scope="row" { (label) } td { (n) } td { (format_args!("{share:.0}%")) } }
                    }
                }
            }
        }
        @if answered == 0 {
            p { "No answered calls yet: the listening curve appears after the first." }
        } @else {
            h2 { "Listening curve" }
            p {
                "The share of answered callers still on the line at each second of the story."
            }
            div class="chart-with-table" {
                (charts::line(
                    "curve",
                    &format!("Listening curve of {slug}"),
                    "Share of callers still listening per second of the story; the table beside has the figures.",
                    "seconds into the story",
                    &shares,
                    100.0,
                    &|v| format!("{v:.0}%"),
                ))
                table class="curve" {
                    caption { "Still listening" }
                    (head_row(&["Second", "Callers", "Share"]))
                    tbody {
                        @for ((s, n), share) in f.curve.iter().enumerate().zip(&shares) {
                            @if s % step == 0 || s + 1 == f.curve.len() {
                                tr { td { (s) } td { (n) } td { (format_args!("{share:.0}%")) } }
                            }
                        }
                    }
                }
            }
        }
    };
    page(auth, &format!("Funnel: {slug}"), body).into_response()
}
