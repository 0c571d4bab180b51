//! Review: the queue with recordings, one-key judging, bulk invalidation with its preview and
//! reversal, the audit log, export and erasure.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};

use super::layout::{blocking, csrf_field, head_row, message, page, store_of};
use super::{Auth, Console};
use crate::html::path_segment;

/// Signatures the queue page shows at once.
pub(crate) const QUEUE_PAGE: usize = 100;

/// The state a reviewer may give with one key.
pub(crate) fn judged_state(s: &str) -> Option<store::SignatureState> {
    match s {
        "valid" => Some(store::SignatureState::Valid),
        "invalid" => Some(store::SignatureState::Invalid),
        "fraudulent" => Some(store::SignatureState::Fraudulent),
        "pending" => Some(store::SignatureState::Pending),
        _ => None,
    }
}

/// Whether `auth` may give a signature this state: a reviewer judges (valid or invalid);
/// marking fraud or sending a signature back to pending is an admin's call.
pub(crate) fn may_judge(auth: &Auth, state: store::SignatureState) -> bool {
    auth.is_admin()
        || matches!(
            state,
            store::SignatureState::Valid | store::SignatureState::Invalid
        )
}

/// Where a signature's caller is from, as the review shows it (no number: a class).
pub(crate) fn origin_of(row: &store::SignatureRow) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &row.country {
        parts.push(c.clone());
    }
    if let Some(r) = row.be_region {
        parts.push(r.as_str().to_string());
    }
    if let Some(k) = row.kind {
        parts.push(k.as_str().to_string());
    }
    if parts.is_empty() {
        "unknown".into()
    } else {
        parts.join(", ")
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct QueueQuery {
    #[serde(default)]
    state: Option<String>,
    /// Show signatures after this id (the next page).
    #[serde(default)]
    after: Option<i64>,
}

/// A page of the signatures of a campaign in a state, oldest first, and their number.
pub(crate) async fn load_queue(
    store: std::sync::Arc<dyn store::Store>,
    slug: String,
    state: store::SignatureState,
    after: i64,
) -> Result<(Vec<store::SignatureRow>, u64), store::StoreError> {
    tokio::task::spawn_blocking(move || store.signatures_in_state(&slug, state, after, QUEUE_PAGE))
        .await
        .unwrap_or(Err(store::StoreError::Closed))
}

pub(crate) async fn queue(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path(slug): Path<String>,
    Query(q): Query<QueueQuery>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let state = q
        .state
        .as_deref()
        .and_then(store::SignatureState::parse)
        .unwrap_or(store::SignatureState::Pending);
    let s2 = slug.clone();
    let after = q.after.unwrap_or(0);
    let (rows, total) = match blocking(&auth, move || {
        store.signatures_in_state(&s2, state, after, QUEUE_PAGE)
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let seg = path_segment(&slug);
    let csrf = csrf_field(&auth);
    let body = html! {
        nav class="states" aria-label="Signature state" {
            @for st in store::SignatureState::ALL {
                a href={ "/console/review/" (seg) "?state=" (st.as_str()) }
                    aria-current=[(st == state).then_some("page")] { (st.as_str()) }
            }
        }
        p { (total) " signature(s) " (state.as_str()) "; showing " (rows.len()) " from the oldest on." }
        p class="keys" id="keys" {
            "Keys: " kbd { "j" } "/" kbd { "k" } " or arrows to move, " kbd { "space" }
            " to play, " kbd { "v" } " valid, " kbd { "i" } " invalid."
        }
        table class="queue" data-campaign=(seg) aria-describedby="keys" {
            caption { "Signatures to review" }
            (head_row(&["#", "Signed", "Trust", "Channel", "From", "Speech", "Recording", "State", "Judge"]))
            tbody {
                @for r in &rows {
                    tr id={ "sig-" (r.id) } data-id=(r.id) tabindex="-1" {
                        td { (r.id) }
                        td { time { (r.created_at) } }
                        td class={ "trust-" (r.trust.as_str()) } { (r.trust.as_str()) }
                        td { (r.channel) }
                        td { (origin_of(r)) }
                        td { (format_args!("{:.1}", f64::from(r.speech_ms) / 1000.0)) " s" }
                        td {
                            @if r.has_recording {
                                audio controls preload="none"
                                    src={ "/console/recording/" (seg) "/" (r.id) }
                                    aria-label={ "Recording of signature " (r.id) } {}
                            } @else {
                                "none"
                            }
                        }
                        td class="state" { (r.state.as_str()) }
                        td {
                            form method="post" action={ "/console/review/" (seg) "/" (r.id) }
                                class="judge" {
                                (csrf)
                                button name="state" value="valid" data-key="v" { "Valid" }
                                " "
                                button name="state" value="invalid" data-key="i" { "Invalid" }
                            }
                        }
                    }
                }
            }
        }
        @if rows.len() == QUEUE_PAGE {
            @if let Some(last) = rows.last() {
                p {
                    a href={ "/console/review/" (seg) "?state=" (state.as_str()) "&after=" (last.id) } {
                        "Next " (QUEUE_PAGE)
                    }
                }
            }
        }
    };
    let title = format!("Review: {slug}");
    page(&auth, &title, body).into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct JudgeForm {
    #[serde(default)]
    state: String,
}

/// Sets one signature's state; the audit entry names the reviewer.
pub(crate) async fn set_one(
    store: std::sync::Arc<dyn store::Store>,
    auth: &Auth,
    slug: String,
    id: i64,
    state: store::SignatureState,
) -> Result<store::ReviewAction, store::StoreError> {
    let reason = format!("reviewed by {}", auth.user);
    tokio::task::spawn_blocking(move || {
        store.set_states(&slug, &[id], state, &reason, &format!("signature {id}"))
    })
    .await
    .unwrap_or(Err(store::StoreError::Closed))
}

pub(crate) async fn judge(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path((slug, id)): Path<(String, i64)>,
    headers: HeaderMap,
    Form(form): Form<JudgeForm>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(state) = judged_state(&form.state) else {
        return message(&auth, StatusCode::BAD_REQUEST, "Not done", "Unknown state.");
    };
    if !may_judge(&auth, state) {
        return message(
            &auth,
            StatusCode::FORBIDDEN,
            "Not done",
            "Reviewers mark signatures valid or invalid; other states need an admin.",
        );
    }
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    match set_one(store, &auth, slug.clone(), id, state).await {
        Ok(action) => {
            if wants_json {
                axum::Json(serde_json::json!({
                    "id": id, "state": state.as_str(), "changed": action.changed, "action": action.id
                }))
                .into_response()
            } else {
                Redirect::to(&format!("/console/review/{}#sig-{id}", path_segment(&slug)))
                    .into_response()
            }
        }
        Err(store::StoreError::UnknownCampaign(_)) => message(
            &auth,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such campaign.",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "review failed");
            message(
                &auth,
                StatusCode::SERVICE_UNAVAILABLE,
                "Not done",
                "The store could not save this; try again.",
            )
        }
    }
}

/// A signature's recording as audio/wav, for the `<audio>` in the queue.
pub(crate) async fn recording(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path((slug, id)): Path<(String, i64)>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match blocking(&auth, move || store.recording(&slug, id)).await {
        Ok(Some(wav)) => (
            [
                (header::CONTENT_TYPE, "audio/wav"),
                (header::CACHE_CONTROL, "private, no-store"),
            ],
            wav,
        )
            .into_response(),
        Ok(None) => message(
            &auth,
            StatusCode::NOT_FOUND,
            "Not found",
            "No such recording.",
        ),
        Err(r) => r,
    }
}

/// The bulk invalidation filter as the form sends it.
#[derive(serde::Deserialize, Default, Clone)]
pub(crate) struct FilterForm {
    #[serde(default)]
    prefix_block: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    trust: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    preview: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    expected: String,
}

impl FilterForm {
    /// The store filter, or a message saying which field is wrong.
    pub(crate) fn filter(&self) -> Result<store::SignatureFilter, String> {
        let opt = |s: &str| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        };
        let time = |s: &str, what: &str| -> Result<Option<std::time::SystemTime>, String> {
            match opt(s) {
                None => Ok(None),
                Some(t) => store::parse_rfc3339(&t.replace('T', " ").replace('Z', ""))
                    .or_else(|| store::parse_rfc3339(&t))
                    .or_else(|| store::parse_rfc3339(&format!("{}:00", t.replace('T', " "))))
                    .map(Some)
                    .ok_or_else(|| format!("{what}: use YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)")),
            }
        };
        let trust = match opt(&self.trust) {
            None => None,
            Some(t) => Some(store::Trust::parse(&t).ok_or("unknown trust level")?),
        };
        let state = match opt(&self.state) {
            None => None,
            Some(s) => Some(store::SignatureState::parse(&s).ok_or("unknown state")?),
        };
        Ok(store::SignatureFilter {
            prefix_block: opt(&self.prefix_block),
            country: opt(&self.country).map(|c| {
                if c == "none" {
                    c
                } else {
                    c.to_ascii_uppercase()
                }
            }),
            trust,
            since: time(&self.since, "from")?,
            until: time(&self.until, "until")?,
            state,
        })
    }

    fn is_empty(&self) -> bool {
        [
            &self.prefix_block,
            &self.country,
            &self.trust,
            &self.since,
            &self.until,
            &self.state,
        ]
        .iter()
        .all(|s| s.trim().is_empty())
    }
}

/// The filter's fields: (name, label, hint) and the value the form sent.
fn filter_values(f: &FilterForm) -> [(&'static str, &'static str, &'static str, &str); 6] {
    [
        (
            "prefix_block",
            "Prefix block",
            "as the anomaly report shows it, e.g. +32 4701",
            &f.prefix_block,
        ),
        (
            "country",
            "Country",
            "ISO code, e.g. BE, or none",
            &f.country,
        ),
        ("trust", "Trust", "network, from or withheld", &f.trust),
        (
            "since",
            "From",
            "YYYY-MM-DD or YYYY-MM-DD HH:MM, UTC",
            &f.since,
        ),
        ("until", "Until", "before this time, same format", &f.until),
        (
            "state",
            "State",
            "pending, valid, invalid or fraudulent",
            &f.state,
        ),
    ]
}

/// The filter's fields to fill in, or (`hidden`) carried along to the confirmation.
fn filter_fields(f: &FilterForm, hidden: bool) -> Markup {
    html! {
        @for (name, label, hint, value) in filter_values(f) {
            @if hidden {
                input type="hidden" name=(name) value=(value);
            } @else {
                label for={ "f-" (name) } { (label) }
                input id={ "f-" (name) } name=(name) value=(value)
                    aria-describedby={ "h-" (name) } maxlength="100";
                small id={ "h-" (name) } { (hint) }
            }
        }
    }
}

/// The filter form; with `preview=1`, also how many signatures it selects and the form to
/// confirm with a reason.
pub(crate) async fn bulk_form(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path(slug): Path<String>,
    Query(form): Query<FilterForm>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let seg = path_segment(&slug);
    let filter_form = html! {
        form method="get" action={ "/console/bulk/" (seg) } class="filter" {
            fieldset {
                legend { "Which signatures" }
                (filter_fields(&form, false))
            }
            input type="hidden" name="preview" value="1";
            button type="submit" { "Preview" }
        }
    };
    let mut preview = None;
    if form.preview == "1" {
        let filter = match checked_filter(&form, &auth) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let s2 = slug.clone();
        let f2 = filter.clone();
        let n = match blocking(&auth, move || store.preview(&s2, &f2)).await {
            Ok(n) => n,
            Err(r) => return r,
        };
        preview = Some((n, filter.describe()));
    }
    let body = html! {
        (filter_form)
        @if let Some((n, described)) = &preview {
            section aria-labelledby="preview" {
                h2 id="preview" { "Preview" }
                p class="preview" role="status" {
                    strong id="preview-count" { (n) } " signature(s) match: " (described) "."
                }
                form method="post" action={ "/console/bulk/" (seg) } class="confirm" {
                    (csrf_field(&auth))
                    (filter_fields(&form, true))
                    input type="hidden" name="expected" value=(n);
                    label for="target" { "Set them to" }
                    select id="target" name="target" {
                        @for target in ["invalid", "fraudulent", "valid", "pending"] {
                            option value=(target) { (target) }
                        }
                    }
                    label for="reason" { "Reason (kept in the audit log)" }
                    input id="reason" name="reason" required maxlength="400";
                    button type="submit" { "Confirm" }
                }
            }
        }
    };
    page(&auth, &format!("Bulk invalidation: {slug}"), body).into_response()
}

/// The form's filter, refused when it is malformed or empty (an empty filter would select
/// every signature of the campaign).
#[allow(clippy::result_large_err)]
fn checked_filter(form: &FilterForm, auth: &Auth) -> Result<store::SignatureFilter, Response> {
    let filter = form
        .filter()
        .map_err(|m| message(auth, StatusCode::BAD_REQUEST, "Not done", &m))?;
    if form.is_empty() {
        return Err(message(
            auth,
            StatusCode::BAD_REQUEST,
            "Not done",
            "Give at least one criterion: an empty filter would select every signature.",
        ));
    }
    Ok(filter)
}

pub(crate) async fn bulk_apply(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path(slug): Path<String>,
    Form(form): Form<FilterForm>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filter = match checked_filter(&form, &auth) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(target) = judged_state(form.target.trim()) else {
        return message(
            &auth,
            StatusCode::BAD_REQUEST,
            "Not done",
            "Choose the state to set.",
        );
    };
    if form.reason.trim().is_empty() {
        return message(&auth, StatusCode::BAD_REQUEST, "Not done", "Give a reason.");
    }
    let reason = format!("{} (by {})", form.reason.trim(), auth.user);
    let s2 = slug.clone();
    let action = match blocking(&auth, move || store.review(&s2, &filter, target, &reason)).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let note = match form.expected.trim().parse::<u64>() {
        Ok(n) if n != action.changed => {
            format!(" The preview showed {n}; signatures arrived or were judged in between.")
        }
        _ => String::new(),
    };
    let body = html! {
        p role="status" {
            "Done: " strong id="changed" { (action.changed) } " signature(s) set to "
            (target.as_str()) " (action " (action.id) ")." (note)
        }
        form method="post" action={ "/console/revert/" (action.id) } {
            (csrf_field(&auth))
            label for="reason" { "Reason for undoing" }
            input id="reason" name="reason" required maxlength="400";
            button type="submit" { "Undo this action" }
        }
        p { a href={ "/console/review/" (path_segment(&slug)) } { "Back to the review" } }
    };
    page(&auth, "Bulk invalidation done", body).into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct RevertForm {
    #[serde(default)]
    reason: String,
}

pub(crate) async fn revert(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path(action): Path<i64>,
    Form(form): Form<RevertForm>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if form.reason.trim().is_empty() {
        return message(&auth, StatusCode::BAD_REQUEST, "Not done", "Give a reason.");
    }
    let reason = format!("{} (by {})", form.reason.trim(), auth.user);
    match blocking(&auth, move || store.revert_review(action, &reason)).await {
        Ok(n) => message(
            &auth,
            StatusCode::OK,
            "Undone",
            &format!("{n} signature(s) went back to their previous state."),
        ),
        Err(r) => r,
    }
}

/// Audit entries per page.
const AUDIT_PAGE: usize = 200;

#[derive(serde::Deserialize, Default)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    campaign: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

/// The audit log, newest first, a page at a time, for one campaign or all.
pub(crate) async fn audit(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let campaign = q.campaign.filter(|c| !c.is_empty());
    let c2 = campaign.clone();
    let (entries, slugs) = match blocking(&auth, move || {
        Ok((
            store.audit_recent(c2.as_deref(), q.before, AUDIT_PAGE)?,
            store.campaigns()?,
        ))
    })
    .await
    {
        Ok(e) => e,
        Err(r) => return r,
    };
    let older = (entries.len() == AUDIT_PAGE)
        .then(|| entries.last())
        .flatten()
        .map(|last| match campaign.as_deref() {
            Some(c) => format!(
                "/console/audit?campaign={}&before={}",
                path_segment(c),
                last.id
            ),
            None => format!("/console/audit?before={}", last.id),
        });
    let body = html! {
        form method="get" class="inline" {
            label for="campaign" { "Campaign" }
            " "
            select id="campaign" name="campaign" {
                option value="" { "all, and the console's own" }
                @for slug in &slugs {
                    option selected[Some(slug) == campaign.as_ref()] { (slug) }
                }
            }
            " "
            button { "Show" }
        }
        table class="audit" {
            caption { "Audit log, newest first" }
            (head_row(&["When (UTC)", "Campaign", "Action", "Detail"]))
            tbody {
                @for e in &entries {
                    tr {
                        td { (e.at) }
                        td { (e.campaign.as_deref().unwrap_or("")) }
                        td { (e.action) }
                        td { (e.detail) }
                    }
                }
            }
        }
        @if let Some(older) = &older {
            p { a href=(older) { "Older entries" } }
        }
    };
    page(&auth, "Audit log", body).into_response()
}

/// Export buttons per campaign and the erasure form.
pub(crate) async fn export_form(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let slugs = match blocking(&auth, move || store.campaigns()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let csrf = csrf_field(&auth);
    let body = html! {
        h2 { "Export" }
        p {
            "The delivery ZIP: signatures.csv (no numbers), the recordings and summary.csv. \
             It holds voices: keep it safe."
        }
        ul class="exports" {
            @for slug in &slugs {
                li {
                    form method="post" action={ "/console/export/" (path_segment(slug)) } {
                        (csrf)
                        button type="submit" { "Export " (slug) }
                    }
                }
            }
        }
        h2 { "Erasure" }
        p {
            "Erases a caller's signature and recording when they ask. The number is only \
             turned into its key; it is not stored, logged or shown."
        }
        @if console.app.secret.is_some() {
            form method="post" action="/console/erase" class="erase" autocomplete="off" {
                (csrf)
                label for="campaign" { "Campaign" }
                select id="campaign" name="campaign" {
                    @for slug in &slugs {
                        option { (slug) }
                    }
                }
                label for="number" { "The caller's phone number" }
                input id="number" name="number" type="tel" required maxlength="40"
                    autocomplete="off";
                label for="region" { "Country the number is from when it has no +" }
                input id="region" name="region" value="BE" maxlength="2";
                button type="submit" { "Erase their signature" }
            }
        } @else {
            p { "Erasure needs the caller key, which this server was not given." }
        }
    };
    page(&auth, "Export and erasure", body).into_response()
}

pub(crate) async fn export(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Path(slug): Path<String>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let s2 = slug.clone();
    let user = auth.user.clone();
    // The ZIP holds every recording, so it goes to a private temporary file (unlinked at
    // once: only the open handle reaches it) and is streamed from there, not held in memory.
    let zip = match blocking(&auth, move || {
        let mut file = private_temp_file()?;
        let n = store::export(store.as_ref(), &s2, &mut file)?;
        store.record_audit(Some(&s2), "export", &format!("{n} signatures, by {user}"))?;
        let length = file
            .stream_position()
            .map_err(|source| store::StoreError::Io {
                what: "export file",
                source,
            })?;
        file.seek(SeekFrom::Start(0))
            .map_err(|source| store::StoreError::Io {
                what: "export file",
                source,
            })?;
        Ok((file, length))
    })
    .await
    {
        Ok(z) => z,
        Err(r) => return r,
    };
    let (file, length) = zip;
    let file = tokio::fs::File::from_std(file);
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let name: String = slug
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}-export.zip\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// A new file only this process can read, already removed from its directory.
fn private_temp_file() -> Result<std::fs::File, store::StoreError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| store::StoreError::Io {
        what: "export file",
        source,
    };
    let path = std::env::temp_dir().join(format!("belteken-export-{}.zip", store::new_token()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    std::fs::remove_file(&path).map_err(io)?;
    Ok(file)
}

pub(crate) async fn erase(
    State(console): State<Console>,
    Extension(auth): Extension<Auth>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let store = match store_of(&console, &auth) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(secret) = console.app.secret.clone() else {
        return message(
            &auth,
            StatusCode::SERVICE_UNAVAILABLE,
            "Not done",
            "Erasure needs the caller key.",
        );
    };
    let campaign = form.get("campaign").cloned().unwrap_or_default();
    let region = form
        .get("region")
        .map(|r| r.trim().to_ascii_uppercase())
        .filter(|r| r.len() == 2)
        .unwrap_or_else(|| "BE".into());
    let number = form.get("number").cloned().unwrap_or_default();
    drop(form);
    let caller = store::identify_caller(Some(number.trim()), &region, &secret);
    drop(number);
    let user = auth.user.clone();
    let c2 = campaign.clone();
    let erased = match blocking(&auth, move || {
        let Some(key) = caller.key() else {
            return Ok(None);
        };
        let mut erased = store.erase(&c2, key)?;
        if let Some(old) = caller.previous_key() {
            erased |= store.erase(&c2, old)?;
        }
        store.record_audit(
            Some(&c2),
            "erasure request",
            &format!(
                "by {user}: {}",
                if erased {
                    "erased"
                } else {
                    "no signature found"
                }
            ),
        )?;
        Ok(Some(erased))
    })
    .await
    {
        Ok(e) => e,
        Err(r) => return r,
    };
    match erased {
        None => message(
            &auth,
            StatusCode::BAD_REQUEST,
            "Not done",
            "That is not a phone number this line would have recognised.",
        ),
        Some(true) => message(
            &auth,
            StatusCode::OK,
            "Erased",
            &format!("{campaign}: the signature and its recording were erased."),
        ),
        Some(false) => message(
            &auth,
            StatusCode::OK,
            "Nothing to erase",
            &format!("{campaign}: no signature from that number."),
        ),
    }
}
