//! The now view (the line's state, calls and signatures per minute) and the funnel with the
//! listening curve.

use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::charts;
use super::layout::{blocking, page, page_with, store_of};
use super::{Auth, Console};
use crate::html::{escape, path_segment};

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
    let mut body = String::from("<section aria-labelledby=\"line\"><h2 id=\"line\">The line</h2>");
    match &console.app.status {
        Some(status) => {
            let health = status.detail();
            let mut tables = String::new();
            body.push_str("<table><caption>Server state</caption><tbody>");
            for (k, v) in &health {
                match v {
                    serde_json::Value::Array(items) => tables.push_str(&table_of(k, items)),
                    other => {
                        let shown = match other {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        body.push_str(&format!(
                            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                            escape(&k.replace('_', " ")),
                            escape(&shown)
                        ));
                    }
                }
            }
            body.push_str("</tbody></table>");
            body.push_str(&tables);
        }
        None => body.push_str("<p>No line status on this server.</p>"),
    }
    body.push_str("</section>");
    for (slug, sigs, calls_hour, calls_minute, calls) in &figures {
        let last_minute = sigs.last().copied().unwrap_or(0);
        let hour: u64 = sigs.iter().sum();
        let id = format!("spm-{}", path_segment(slug));
        let values: Vec<f64> = sigs.iter().map(|&v| v as f64).collect();
        let chart = charts::line(
            &id,
            &format!("Signatures per minute, {slug}, last hour"),
            &format!("{hour} signatures in the last hour, {last_minute} in the last minute"),
            "minutes (0 = an hour ago, 59 = now)",
            &values,
            0.0,
            &|v| format!("{v:.0}"),
        );
        let calls_values: Vec<f64> = calls.iter().map(|&v| v as f64).collect();
        let calls_chart = charts::line(
            &format!("cpm-{}", path_segment(slug)),
            &format!("Calls per minute, {slug}, last hour"),
            &format!(
                "{calls_hour} calls ended in the last hour, {calls_minute} in the last minute"
            ),
            "minutes (0 = an hour ago, 59 = now)",
            &calls_values,
            0.0,
            &|v| format!("{v:.0}"),
        );
        body.push_str(&format!(
            "<section><h2>{title}</h2><dl class=\"figures\">\
             <dt>Calls, last minute</dt><dd>{calls_minute}</dd><dt>Calls, last hour</dt><dd>{calls_hour}</dd>\
             <dt>Signatures, last minute</dt><dd>{last_minute}</dd><dt>Signatures, last hour</dt><dd>{hour}</dd></dl>\
             <div class=\"charts\">{calls_chart}{chart}</div></section>",
            title = escape(slug)
        ));
    }
    // The team keeps this open: it reloads itself (no script needed).
    body.push_str("<p class=\"note\">This page reloads every 15 seconds.</p>");
    page_with(
        &auth,
        "Now",
        &body,
        "<meta http-equiv=\"refresh\" content=\"15\">",
    )
    .into_response()
}

/// A table of a list of JSON objects (e.g. the trunks, the calls per flow step).
fn table_of(name: &str, items: &[serde_json::Value]) -> String {
    let caption = escape(&name.replace('_', " "));
    let Some(serde_json::Value::Object(first)) = items.first() else {
        return format!("<p>{caption}: none.</p>");
    };
    let columns: Vec<&String> = first.keys().collect();
    let mut out = format!(
        "<table class=\"{}\"><caption>{caption}</caption><thead><tr>",
        escape(name)
    );
    for c in &columns {
        out.push_str(&format!(
            "<th scope=\"col\">{}</th>",
            escape(&c.replace('_', " "))
        ));
    }
    out.push_str("</tr></thead><tbody>");
    for item in items {
        out.push_str("<tr>");
        for c in &columns {
            let v = match item.get(c.as_str()) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            out.push_str(&format!("<td>{}</td>", escape(&v)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
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
    let mut body = format!(
        "<form method=\"get\" class=\"inline\"><label for=\"version\">Flow version</label>\
         <input id=\"version\" name=\"version\" value=\"{}\" maxlength=\"64\"> <button>Show</button></form>",
        escape(version.unwrap_or(""))
    );
    body.push_str("<div class=\"chart-with-table\">");
    body.push_str(&charts::bars(
        "funnel",
        &format!("Funnel of {slug}"),
        "How many calls reached each step; the table beside has the same figures.",
        &steps,
    ));
    body.push_str("<table class=\"funnel\"><caption>Funnel</caption><thead><tr><th scope=\"col\">Step</th>\
                   <th scope=\"col\">Calls</th><th scope=\"col\">Share of calls</th></tr></thead><tbody>");
    for (label, n) in &steps {
        let share = if f.calls > 0 {
            *n as f64 * 100.0 / f.calls as f64
        } else {
            0.0
        };
        body.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{n}</td><td>{share:.0}%</td></tr>",
            escape(label)
        ));
    }
    body.push_str("</tbody></table></div>");
    let answered = f.curve.first().copied().unwrap_or(0);
    if answered == 0 {
        body.push_str("<p>No answered calls yet: the listening curve appears after the first.</p>");
    } else {
        let shares: Vec<f64> = f
            .curve
            .iter()
            .map(|&n| n as f64 * 100.0 / answered as f64)
            .collect();
        body.push_str(
            "<h2>Listening curve</h2><p>The share of answered callers still on the line at \
                       each second of the story.</p><div class=\"chart-with-table\">",
        );
        body.push_str(&charts::line(
            "curve",
            &format!("Listening curve of {slug}"),
            "Share of callers still listening per second of the story; the table beside has the figures.",
            "seconds into the story",
            &shares,
            100.0,
            &|v| format!("{v:.0}%"),
        ));
        body.push_str("<table class=\"curve\"><caption>Still listening</caption><thead><tr>\
                       <th scope=\"col\">Second</th><th scope=\"col\">Callers</th><th scope=\"col\">Share</th></tr></thead><tbody>");
        let step = (f.curve.len() / 30).max(1);
        for ((s, n), share) in f.curve.iter().enumerate().zip(&shares) {
            if s % step != 0 && s + 1 != f.curve.len() {
                continue;
            }
            body.push_str(&format!(
                "<tr><td>{s}</td><td>{n}</td><td>{share:.0}%</td></tr>"
            ));
        }
        body.push_str("</tbody></table></div>");
    }
    page(auth, &format!("Funnel: {slug}"), &body).into_response()
}
